//! The pipeline shared by the 2.x daemon, 1.2 mode and `--replay`: capture inputs →
//! engine → executor → blocklist.
//!
//! In: capture [`Input`]s (in the capture threads), ticks and reloads (in the control
//! thread). Out: decisions handed to the executor thread over an unbounded channel, so a
//! capture thread only ever waits for the engine (no I/O); the executor thread takes
//! every decision waiting as one group. Also the helpers that turn a config into the
//! engine's [`Rules`] and list the keys a reload cannot change. Must not: parse config
//! files, log scan lines itself, or know which dialect's lines are written.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::capture::{Conn, Input};
use crate::config::Config;
use crate::engine::{Engine, Event, Policy, Rules};
use crate::facts::HostFacts;
use crate::model::{IpOpts, Proto, ScanKind};
use crate::respond::{Executor, Feedback, Job};

/// Most decisions the executor takes as one group.
const GROUP: usize = 4096;

/// The engine's rules from a config.
pub fn rules(cfg: &Config, policy: Policy, service_check: bool) -> Rules {
    Rules {
        policy,
        service_check,
        block_tcp: cfg.block_tcp,
        block_udp: cfg.block_udp,
        hosts_deny: cfg.legacy_hosts_deny().is_some(),
        route: cfg.kill_route.is_some(),
        backends: !cfg.block_backend.is_empty(),
        run_cmd: cfg.kill_run_cmd.is_some(),
        run_cmd_first: cfg.kill_run_cmd_first,
        banner: cfg.port_banner.is_some(),
        resolve: cfg.resolve_host,
        scan_trigger: cfg.scan_trigger,
        block_max: cfg.block_max,
        block_rate: cfg.block_rate,
    }
}

/// Keys whose value is set up once, at start, in both dialects: the port lists (sockets
/// and capture filters are built from them) and the store's path. 1.2 mode adds
/// BLOCKED_FILE, which holds its instance lock.
pub const FIXED_KEYS: &[&str] = &[
    "TCP_PORTS",
    "UDP_PORTS",
    "ADVANCED_PORTS_TCP",
    "ADVANCED_PORTS_UDP",
    "ADVANCED_EXCLUDE_TCP",
    "ADVANCED_EXCLUDE_UDP",
    "BLOCK_STATE_FILE",
];

/// Whether a reload cannot apply `key`: one of [`FIXED_KEYS`], or a `CROWDSEC_*` key
/// (the sharing threads run with the settings they started with).
pub fn is_fixed(key: &str) -> bool {
    FIXED_KEYS.contains(&key) || key.starts_with("CROWDSEC_")
}

/// Gives a reloaded config the old values of [`FIXED_KEYS`], so the config in force
/// says what really runs (and the next reload compares like with like).
pub fn keep_fixed(new: &mut Config, old: &Config) {
    new.tcp_ports = old.tcp_ports.clone();
    new.udp_ports = old.udp_ports.clone();
    new.tcp_port_items = old.tcp_port_items.clone();
    new.udp_port_items = old.udp_port_items.clone();
    new.advanced_ports_tcp = old.advanced_ports_tcp;
    new.advanced_ports_udp = old.advanced_ports_udp;
    new.advanced_exclude_tcp = old.advanced_exclude_tcp.clone();
    new.advanced_exclude_udp = old.advanced_exclude_udp.clone();
    new.block_state_file = old.block_state_file.clone();
    new.crowdsec = old.crowdsec.clone();
}

/// Keys whose new value a reload cannot apply (what they set up happens once, at
/// start, see [`is_fixed`]): those whose effective value differs between `old` and `new`.
pub fn kept_keys(old: &Config, new: &Config) -> Vec<&'static str> {
    let a = old.effective();
    let b = new.effective();
    a.iter()
        .zip(b.iter())
        .filter(|((k, va), (_, vb))| is_fixed(k) && va != vb)
        .map(|((k, _), _)| *k)
        .collect()
}

/// Turns a source's message into an engine event and the connect-mode peer; other
/// messages come back as they were.
pub fn event_of(input: Input) -> Result<(Event, Option<Conn>), Input> {
    match input {
        Input::Packet { ts, summary: s } => {
            let kind = match s.proto {
                Proto::Tcp => match ScanKind::classify_tcp(s.tcp_flags) {
                    Some(k) => k,
                    None => return Err(Input::Packet { ts, summary: s }),
                },
                Proto::Udp => ScanKind::Udp,
            };
            Ok((
                Event {
                    ts,
                    proto: s.proto,
                    src: portsentry_blocker::canonical(s.src),
                    dst: portsentry_blocker::canonical(s.dst),
                    port: s.dport,
                    kind,
                    ip_opts: s.ip_opts,
                    connect: false,
                },
                None,
            ))
        }
        Input::Connect {
            ts,
            proto,
            src,
            local,
            port,
            conn,
        } => Ok((
            Event {
                ts,
                proto,
                src: portsentry_blocker::canonical(src),
                dst: portsentry_blocker::canonical(local),
                port,
                kind: ScanKind::Connect,
                ip_opts: IpOpts::Unknown,
                connect: true,
            },
            Some(conn),
        )),
        other => Err(other),
    }
}

enum Work {
    Job(Job),
    /// Answered once everything sent before it was carried out.
    Drain(Sender<()>),
}

/// The engine (behind a lock held only while deciding), the facts, and the executor
/// thread's inbox.
pub struct Pipeline {
    engine: Arc<Mutex<Engine>>,
    facts: Arc<dyn HostFacts>,
    executor: Executor,
    work: Mutex<Sender<Work>>,
    /// Decisions handed to the executor thread and not yet carried out.
    pending: Arc<AtomicUsize>,
    before: OnceLock<Hook>,
}

/// Run before each event is decided (1.2 mode: follow the ignore and blocked files).
pub type Hook = Box<dyn Fn(&Pipeline) + Send + Sync>;

/// A lock, even if a thread panicked while holding it (the state stays usable).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the executor tells the engine: the response to this host failed.
pub fn feedback(engine: &Arc<Mutex<Engine>>) -> Feedback {
    let engine = Arc::downgrade(engine);
    Arc::new(move |ip: IpAddr| {
        if let Some(e) = engine.upgrade() {
            lock(&e).note_unblocked(ip);
        }
    })
}

impl Pipeline {
    /// Starts the executor thread.
    pub fn start(
        engine: Arc<Mutex<Engine>>,
        facts: Arc<dyn HostFacts>,
        executor: Executor,
    ) -> Arc<Pipeline> {
        let (tx, rx) = channel();
        let ex = executor.clone();
        let pending = Arc::new(AtomicUsize::new(0));
        let p = pending.clone();
        std::thread::spawn(move || run_executor(ex, rx, p));
        Arc::new(Pipeline {
            engine,
            facts,
            executor,
            work: Mutex::new(tx),
            pending,
            before: OnceLock::new(),
        })
    }

    /// Sets the hook run before each event (and at each tick). 1.2 mode re-reads its
    /// ignore and blocked files when they changed, as 1.2 did per event: a stat each,
    /// never the engine's business.
    pub fn set_before(&self, hook: Hook) {
        let _ = self.before.set(hook);
    }

    fn run_before(&self) {
        if let Some(h) = self.before.get() {
            h(self);
        }
    }

    pub fn engine(&self) -> MutexGuard<'_, Engine> {
        lock(&self.engine)
    }

    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    pub fn facts(&self) -> &Arc<dyn HostFacts> {
        &self.facts
    }

    fn send(&self, w: Work) {
        let _ = lock(&self.work).send(w);
    }

    /// In a capture thread: events go through the engine to the executor; everything
    /// else comes back to the caller.
    ///
    /// A decision with an action (a command, hosts.deny, a block) always goes to the
    /// executor thread, so capture never waits for one. A decision that only writes its
    /// lines (below the trigger, log only, already blocked: nearly every packet of a
    /// flood) is written right here when nothing is queued ahead of it: the same
    /// executor code, one bounded write, and no thread hand-off per packet. Whether it
    /// may is settled under the engine lock, so a host's lines keep their order.
    pub fn handle(&self, input: Input) -> Result<(), Input> {
        match event_of(input) {
            Ok((ev, conn)) => {
                self.run_before();
                let (d, inline) = {
                    let mut engine = lock(&self.engine);
                    let d = engine.observe(ev.ts, &ev, &*self.facts);
                    if !Executor::worth_running(&d) {
                        return Ok(());
                    }
                    // RESOLVE_HOST lookups wait (bounded) for the resolver: never here.
                    let inline = !d.acts()
                        && !d.resolve
                        && self.pending.load(Ordering::Acquire) == 0
                        && !self.executor.is_busy(d.event.src);
                    if !inline {
                        self.pending.fetch_add(1, Ordering::AcqRel);
                    }
                    (d, inline)
                };
                let job = Job::new(d, conn);
                if inline {
                    self.executor.run_one(job);
                } else {
                    self.send(Work::Job(job));
                }
                Ok(())
            }
            Err(Input::Malformed(skip)) => {
                // counted, and logged rate-limited: no hand-off either
                self.executor.malformed(skip);
                Ok(())
            }
            Err(other) => Err(other),
        }
    }

    /// Waits until every decision handed over so far was carried out (at most `wait`).
    pub fn drain(&self, wait: Duration) {
        let (tx, rx) = channel();
        self.send(Work::Drain(tx));
        let _ = rx.recv_timeout(wait);
        self.executor.finish(wait);
    }

    /// Periodic work of typed blocking: expiry and CLI changes reach the engine's block
    /// cache and the blocked files; KILL_ROUTE_REMOVE runs for lifted hosts.
    pub fn tick(&self) {
        self.run_before();
        let Some(bl) = self.executor.blocklist() else {
            return;
        };
        let ch = lock(&bl).tick();
        self.changed(ch);
    }

    /// Blocks made or lifted beside the detections (the CLI through the store, the
    /// CrowdSec LAPI): the engine's block cache and the blocked files follow.
    pub fn changed(&self, ch: crate::blocklist::Changes) {
        if ch.lifted.is_empty() && ch.added.is_empty() {
            return;
        }
        let Some(bl) = self.executor.blocklist() else {
            return;
        };
        let active: HashSet<IpAddr> = lock(&bl).active_addrs().into_iter().collect();
        {
            let mut e = lock(&self.engine);
            for ip in &ch.lifted {
                e.note_unblocked(*ip);
            }
            for ip in &ch.added {
                e.note_blocked(*ip);
            }
        }
        self.executor.lifted(&ch.lifted, &active);
        if !ch.added.is_empty() {
            self.executor.added(&active);
        }
    }
}

fn run_executor(ex: Executor, rx: Receiver<Work>, pending: Arc<AtomicUsize>) {
    // nothing allocated until the first decision: an idle executor thread costs no
    // malloc arena
    let mut jobs = Vec::new();
    let mut drains = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let mut n = 0;
        while let Some(w) = next {
            match w {
                Work::Job(j) => jobs.push(j),
                Work::Drain(tx) => drains.push(tx),
            }
            n += 1;
            next = if n < GROUP { rx.try_recv().ok() } else { None };
        }
        if !jobs.is_empty() {
            let k = jobs.len();
            ex.run_group(std::mem::take(&mut jobs));
            pending.fetch_sub(k, Ordering::AcqRel);
        }
        for d in drains.drain(..) {
            let _ = d.send(());
        }
    }
}
