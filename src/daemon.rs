//! Wiring of the 2.x daemon and `--replay`: files, blocklist, engine, executor, sources,
//! signals, reload.
//!
//! In: the checked command line, the validated config and ignore list. Out: an exit
//! code. Capture threads run the engine (through [`Pipeline`]) and hand decisions to the
//! executor thread; this thread handles signals, the once-a-second tick (expiry,
//! reconcile) and SIGHUP. Must not: decide about events, or write the contract's lines
//! itself except the start, readiness and shutdown lines.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::blocklist::{self, Blocklist, Preview, SystemClock};
use crate::capture::{self, Input, Ports, StopFlag};
use crate::cli::{Method, Options};
use crate::config::{Config, IgnoreList};
use crate::engine::{Engine, Ignore, Policy};
use crate::exit;
use crate::facts::{HostFacts, SystemFacts};
use crate::logging::lines::Line;
use crate::logging::Logger;
use crate::model::{Mode, Proto};
use crate::pipeline::{self, Pipeline};
use crate::respond::{files, Actions, Blocking, Executor, Records, Setup};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Depth of the control channel (signals, source errors).
const QUEUE: usize = 64;
/// How long shutdown waits for decisions still being carried out (twice at most: the
/// queue, then commands still running; SIGTERM must end the daemon within a second).
const DRAIN: Duration = Duration::from_millis(400);

fn ports_of(cfg: &Config, mode: Mode) -> Ports {
    Ports {
        tcp: cfg.watched(Proto::Tcp, mode),
        udp: cfg.watched(Proto::Udp, mode),
    }
}

fn mode_word(mode: Mode) -> &'static str {
    match mode {
        Mode::Stealth => "stealth",
        Mode::Connect => "connect",
    }
}

fn policy(o: &Options) -> Policy {
    Policy::V2 {
        local_check: o.local_check,
    }
}

/// Why the 2.x daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{path}: cannot open the history file: {source}")]
    History {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot open the blocked file: {source}")]
    Blocked {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Blocking(#[from] blocklist::StartError),
}

/// HISTORY_FILE and BLOCKED_FILE, opened; with the block cache BLOCKED_FILE holds.
fn open_records(cfg: &Config, log: &Logger) -> Result<(Records, HashSet<IpAddr>), StartError> {
    let history = match &cfg.history_file {
        Some(p) => Some(
            files::AppendFile::open(p).map_err(|source| StartError::History {
                path: p.display().to_string(),
                source,
            })?,
        ),
        None => None,
    };
    let mut cached = HashSet::new();
    let blocked_file = match &cfg.blocked_file {
        Some(p) => {
            let (f, ips, note) =
                files::BlockedFile::open(p).map_err(|source| StartError::Blocked {
                    path: p.display().to_string(),
                    source,
                })?;
            if let Some(n) = note {
                log.error(n);
            }
            cached = ips;
            Some(f)
        }
        None => None,
    };
    Ok((Records::v2(history, blocked_file), cached))
}

/// Opens the store and sets up the configured backends (none configured: `None`).
pub fn start_blocklist(
    cfg: &Config,
    facts: Arc<dyn HostFacts>,
    ignore: IgnoreList,
    log: Arc<Logger>,
) -> Result<Option<Blocklist>, blocklist::StartError> {
    if cfg.block_backend.is_empty() {
        return Ok(None);
    }
    let backends = blocklist::make_backends(cfg)?;
    if cfg
        .block_backend
        .contains(&crate::config::BackendName::Auto)
    {
        let (name, why) = blocklist::backends::resolve(crate::config::BackendName::Auto);
        log.notice(Line::AutoBackend {
            name: name.as_str(),
            why: &why,
        });
    }
    facts.follow();
    let mut b = Blocklist::open(cfg, backends, Arc::new(SystemClock), facts, ignore, log)?;
    b.start()?;
    Ok(Some(b))
}

pub fn run(o: Options, cfg: Config, ignore: IgnoreList) -> i32 {
    if let Some(path) = o.replay.clone() {
        return replay(&o, cfg, ignore, &path);
    }
    let lowest = cfg
        .watched(Proto::Tcp, o.mode)
        .iter()
        .chain(cfg.watched(Proto::Udp, o.mode).iter())
        .min()
        .unwrap_or(u16::MAX);
    if (o.mode == Mode::Stealth || lowest < 1024) && !nix::unistd::geteuid().is_root() {
        eprintln!("You need to be root to run this.");
        return exit::FAILURE;
    }
    if o.daemon {
        // A start that never lies: the parent returns only once the daemon listens, or
        // with the daemon's own exit code (its errors reach the parent's stderr).
        match crate::process::role() {
            crate::process::Role::Parent => {
                return match crate::process::daemonize() {
                    Ok(crate::process::Started::Ready) => exit::OK,
                    Ok(crate::process::Started::Failed(code)) => code.unwrap_or(exit::FAILURE),
                    Err(e) => {
                        eprintln!("portsentry: cannot start the daemon process: {e}");
                        exit::FAILURE
                    }
                };
            }
            crate::process::Role::Child => {
                if let Err(e) = crate::process::begin_child() {
                    eprintln!("portsentry: cannot detach: {e}");
                    return exit::FAILURE;
                }
            }
        }
    }
    // Syslog that cannot be reached at start would swallow every line: say so, and log
    // to the standard streams as well (issue #17).
    let mut stdout = o.stdout;
    if o.syslog {
        let s = crate::logging::Syslog::new();
        if !s.reachable() {
            // (-D: the standard output is the readiness pipe; the warning is what shows)
            eprintln!(
                "portsentry: warning: syslog is not reachable at {}{}",
                s.path().display(),
                if o.daemon {
                    "; log lines are lost until it is"
                } else {
                    "; log lines also go to standard output"
                }
            );
            stdout = !o.daemon;
        }
    }
    let log = Arc::new(Logger::new(stdout, o.syslog, o.verbose, o.debug));
    // Until the daemon is ready, a failure also reaches the waiting parent's stderr.
    let fail = |msg: &dyn std::fmt::Display, code: i32| {
        log.error(msg);
        if o.daemon {
            eprintln!("portsentry: {msg}");
        }
        code
    };
    log.notice(Line::Starting(VERSION));
    // Least privilege, before the first thread starts (capabilities are per thread).
    let held = crate::privileges::for_daemon(&cfg, o.mode);
    match crate::privileges::apply(&held) {
        Ok(()) => log.notice(Line::Privileges {
            what: &held.to_string(),
        }),
        Err(e) => log.error(format!(
            "could not give up privileges ({held}): {e}; running with root's capabilities"
        )),
    }
    let service_check = o.service_check && o.mode == Mode::Stealth;
    // Own addresses are followed once typed blocking asks (start_blocklist).
    let facts: Arc<dyn HostFacts> = SystemFacts::start(service_check, false);
    let (records, mut cached) = match open_records(&cfg, &log) {
        Ok(r) => r,
        Err(e) => return fail(&e, exit::FAILURE),
    };
    let blocklist = match start_blocklist(&cfg, facts.clone(), ignore.clone(), log.clone()) {
        Ok(b) => b.map(|b| Arc::new(Mutex::new(b))),
        Err(e) => return fail(&e, exit::UNAVAILABLE),
    };
    let _pid = match &blocklist {
        Some(_) => match crate::pidfile::PidFile::take(&cfg.block_state_file, None) {
            Ok(p) => Some(p),
            Err(e) => return fail(&e, exit::UNAVAILABLE),
        },
        None => None,
    };
    let engine = Arc::new(Mutex::new(Engine::new(
        pipeline::rules(&cfg, policy(&o), service_check),
        Ignore::List(ignore),
    )));
    let executor = Executor::new(Setup {
        log: log.clone(),
        legacy: None,
        mode_word: mode_word(o.mode),
        dry_run: false,
        actions: Actions::of(&cfg),
        records,
        blocking: match &blocklist {
            Some(b) => Blocking::Live(b.clone()),
            None => Blocking::None,
        },
        feedback: pipeline::feedback(&engine),
    });
    if let Some(b) = &blocklist {
        // BLOCKED_FILE is the 2.x view of the store.
        let active: HashSet<IpAddr> = pipeline::lock(b).active_addrs().into_iter().collect();
        if active != cached {
            executor.added(&active);
            cached = active;
        }
    }
    pipeline::lock(&engine).set_blocked(cached);
    let pipe = Pipeline::start(engine, facts, executor);
    // CrowdSec: the LAPI's decisions in, our blocks out (stops when dropped at exit)
    let _share = crate::share::start(&cfg, &pipe, &log);
    let (control, control_rx) = sync_channel::<Input>(QUEUE);
    let sink = {
        let (pipe, log, control) = (pipe.clone(), log.clone(), control.clone());
        capture::Sender::inline(move |input| {
            match pipe.handle(input) {
                Ok(()) => {}
                Err(Input::AcceptFailed { port, errno, err }) => log.notice(Line::AcceptFailed {
                    port,
                    errno,
                    err: &err,
                }),
                Err(Input::SourceError(e)) => log.error(e),
                Err(other @ (Input::Reload | Input::Stop)) => {
                    return control.send(other).is_ok();
                }
                Err(_) => {}
            }
            true
        })
    };
    let stop = StopFlag::default();
    let ports = ports_of(&cfg, o.mode);
    if let Err(msg) = start_sources(&o, &ports, &sink, &stop, &log) {
        return fail(&msg, exit::UNAVAILABLE);
    }
    drop(sink);
    if let Err(e) = crate::control::start_signals(control.clone()) {
        return fail(
            &format!("cannot install signal handlers: {e}"),
            exit::SOFTWARE,
        );
    }
    drop(control);
    if let Some(p) = &o.pidfile {
        let pid = format!("{}\n", std::process::id());
        if let Err(e) = crate::fsutil::atomic_write(p, pid.as_bytes(), 0o644) {
            return fail(
                &format!("{}: cannot write the pid file: {e}", p.display()),
                exit::CANTCREAT,
            );
        }
    }
    log.notice(Line::Listening);
    // systemd (Type=notify): ready now that every source and backend is up
    if let Err(e) = crate::process::notify_ready() {
        log.error(format!(
            "could not tell systemd that the daemon is ready: {e}"
        ));
    }
    if o.daemon {
        if let Err(e) = crate::process::signal_ready() {
            log.error(format!(
                "could not put the standard streams on /dev/null: {e}"
            ));
        }
    }
    control_loop(&o, cfg, control_rx, &pipe, &log, &held);
    stop.stop();
    pipe.drain(DRAIN);
    if let Some(p) = &o.pidfile {
        let _ = std::fs::remove_file(p);
    }
    log.notice(Line::ShuttingDown);
    exit::OK
}

fn start_sources(
    o: &Options,
    ports: &Ports,
    tx: &capture::Sender,
    stop: &StopFlag,
    log: &Logger,
) -> Result<(), String> {
    match (o.mode, o.method) {
        (Mode::Connect, _) => {
            let (listeners, failures) =
                capture::connect::Listeners::bind(&ports.tcp, &ports.udp, false);
            for f in &failures {
                log.error(Line::CouldNotBind {
                    proto: f.proto,
                    port: f.port,
                });
                log.debug(format!("bind {} {}: {}", f.proto, f.port, f.error));
            }
            if listeners.bound().is_empty() {
                return Err("could not bind any port; nothing to watch".to_string());
            }
            let (tx, stop) = (tx.clone(), stop.clone());
            std::thread::spawn(move || listeners.run(tx, stop));
        }
        (Mode::Stealth, Method::Raw) => {
            #[cfg(target_os = "linux")]
            {
                let src = capture::raw::RawSource::open()
                    .map_err(|e| format!("cannot open the raw packet socket: {e}"))?;
                let (tx, stop, ports) = (tx.clone(), stop.clone(), ports.clone());
                std::thread::spawn(move || src.run(ports, tx, stop));
            }
            #[cfg(not(target_os = "linux"))]
            return Err("raw sockets are only available on Linux".to_string());
        }
        (Mode::Stealth, Method::Pcap) => {
            let started =
                capture::pcap::start(&o.interfaces, ports, tx, stop).map_err(|e| e.to_string())?;
            for d in &started.opened {
                log.debug(format!(
                    "capturing on {} ({} addresses)",
                    d.name,
                    d.addrs.len()
                ));
            }
            for e in &started.failed {
                log.error(e);
            }
            if started.opened.is_empty() {
                log.error("no capture device is up yet; waiting for one to appear");
            }
        }
    }
    Ok(())
}

/// Loads and checks the config again for SIGHUP.
fn load_again(o: &Options) -> Result<(Config, IgnoreList), String> {
    let cfg = crate::app::load_v2(o).map_err(|e| e.to_string())?;
    let (ignore, _) = cfg.load_ignore().map_err(|e| e.to_string())?;
    Ok((cfg, ignore))
}

/// SIGHUP: applies every key that can change while running (the engine's rules and
/// ignore list, the actions, HISTORY_FILE and BLOCKED_FILE, the BLOCK_* keys and the
/// backends) and names the keys that kept their old value. Returns the config now in
/// force.
fn reload(
    o: &Options,
    old: Config,
    pipe: &Pipeline,
    log: &Arc<Logger>,
    held: &crate::privileges::Keep,
) -> Config {
    let (mut cfg, ignore) = match load_again(o) {
        Ok(x) => x,
        Err(why) => {
            log.error(Line::ReloadFailed { why: &why });
            return old;
        }
    };
    // Commands or sources that need what was given up at start wait for a restart.
    if let Some(why) = held.lacks(&crate::privileges::for_daemon(&cfg, o.mode)) {
        log.error(Line::ReloadFailed { why: &why });
        return old;
    }
    let kept = pipeline::kept_keys(&old, &cfg);
    pipeline::keep_fixed(&mut cfg, &old);

    // Files at new paths are opened first: if one cannot be, nothing changes.
    let records = if cfg.history_file != old.history_file || cfg.blocked_file != old.blocked_file {
        match open_records(&cfg, log) {
            Ok((r, _)) => Some(r),
            Err(e) => {
                log.error(Line::ReloadFailed {
                    why: &e.to_string(),
                });
                return old;
            }
        }
    } else {
        None
    };
    if let Err(why) = reload_blocking(&old, &cfg, &ignore, pipe, log) {
        log.error(Line::ReloadFailed { why: &why });
        return old;
    }
    let service_check = o.service_check && o.mode == Mode::Stealth;
    {
        let mut e = pipe.engine();
        e.reconfigure(pipeline::rules(&cfg, policy(o), service_check));
        e.set_ignore(Ignore::List(ignore));
    }
    let reopened = records.is_some();
    pipe.executor().reconfigure(Actions::of(&cfg), records);
    if reopened {
        // the new BLOCKED_FILE holds the current blocks
        if let Some(b) = pipe.executor().blocklist() {
            let active = pipeline::lock(&b).active_addrs().into_iter().collect();
            pipe.executor().added(&active);
        }
    }
    log.notice(Line::Reloaded);
    if !kept.is_empty() {
        log.error(Line::ReloadKept {
            keys: &kept.join(", "),
        });
    }
    cfg
}

/// The blocking part of a reload: new settings and ignore list; a changed BLOCK_BACKEND
/// sets up the new backends, hands every block over and tears down the old ones.
pub fn reload_blocking(
    old: &Config,
    cfg: &Config,
    ignore: &IgnoreList,
    pipe: &Pipeline,
    log: &Arc<Logger>,
) -> Result<(), String> {
    let settings = blocklist::Settings::of(cfg);
    match pipe.executor().blocklist() {
        Some(b) => {
            let backends = if cfg.block_backend != old.block_backend {
                Some(blocklist::make_backends(cfg).map_err(|e| e.to_string())?)
            } else {
                None
            };
            let mut b = pipeline::lock(&b);
            b.set_ignore(ignore.clone());
            b.reconfigure(settings, backends);
            if cfg.block_backend.is_empty() {
                drop(b);
                pipe.executor().set_blocking(Blocking::None);
            }
        }
        None => {
            if let Some(b) = start_blocklist(cfg, pipe.facts().clone(), ignore.clone(), log.clone())
                .map_err(|e| e.to_string())?
            {
                let active: HashSet<IpAddr> = b.active_addrs().into_iter().collect();
                pipe.executor()
                    .set_blocking(Blocking::Live(Arc::new(Mutex::new(b))));
                pipe.engine().set_blocked(active);
            }
        }
    }
    Ok(())
}

/// Signals and ticks, until SIGTERM/SIGINT.
fn control_loop(
    o: &Options,
    mut cfg: Config,
    rx: Receiver<Input>,
    pipe: &Pipeline,
    log: &Arc<Logger>,
    held: &crate::privileges::Keep,
) {
    let mut last_tick = std::time::Instant::now();
    loop {
        let ticking = pipe.executor().blocklist().is_some();
        let Some(input) = crate::control::next_input(&rx, ticking, &mut last_tick, || pipe.tick())
        else {
            return;
        };
        match input {
            Input::Reload => cfg = reload(o, cfg, pipe, log, held),
            Input::Stop => return,
            Input::SourceError(e) => log.error(e),
            _ => {}
        }
    }
}

/// `--replay FILE`: the same engine and executor over a recorded capture, packet times as
/// the clock; prints what it would log and what it would block, runs and writes nothing.
fn replay(o: &Options, cfg: Config, ignore: IgnoreList, path: &Path) -> i32 {
    let log = Arc::new(Logger::new(true, false, o.verbose, o.debug));
    let mut rp = match capture::pcap::Replay::open(path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return exit::FAILURE;
        }
    };
    let ports = ports_of(&cfg, Mode::Stealth);
    // This host's addresses count; no service is asked about (the capture is not ours).
    let facts: Arc<dyn HostFacts> = SystemFacts::start(false, false);
    let blocking = if cfg.block_backend.is_empty() {
        Blocking::None
    } else {
        Blocking::Preview(Preview {
            settings: blocklist::Settings::of(&cfg),
            backends: cfg
                .block_backend
                .iter()
                .map(|b| blocklist::backends::resolve(*b).0.as_str())
                .collect(),
            facts: facts.clone(),
            ignore: ignore.clone(),
        })
    };
    let engine = Arc::new(Mutex::new(Engine::new(
        pipeline::rules(&cfg, policy(o), false),
        Ignore::List(ignore),
    )));
    let executor = Executor::new(Setup {
        log,
        legacy: None,
        mode_word: "stealth",
        dry_run: true,
        actions: Actions::of(&cfg),
        records: Records::v2(None, None),
        blocking,
        feedback: pipeline::feedback(&engine),
    });
    while let Some((ts, res)) = rp.next_packet() {
        match ports.input(res, || ts).map(pipeline::event_of) {
            Some(Ok((ev, _))) => {
                let d = pipeline::lock(&engine).observe(ts, &ev, &*facts);
                executor.run_one(crate::respond::Job::new(d, None));
            }
            Some(Err(Input::Malformed(skip))) => executor.malformed(skip),
            _ => {}
        }
    }
    executor.finish(Duration::ZERO);
    exit::OK
}
