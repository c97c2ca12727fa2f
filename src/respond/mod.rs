//! The executor: carries out the engine's decisions.
//!
//! In: [`Decision`]s (with the connect-mode peer, for the banner), in groups as they
//! arrive. Out: the lines (2.x scan lines, 1.2 syslog lines), the history and blocked
//! files, hosts.deny lines, legacy `KILL_*` commands through the one runner
//! (`portsentry-exec`), typed blocks through the [`Blocklist`]; and feedback to the
//! engine when a response failed.
//!
//! Rules: the steps of one decision run in their order. A decision whose actions exec a
//! command is handed to a worker thread, so a slow command delays only the remaining
//! steps of its own host; later decisions for a host that is busy wait behind it, in
//! order. The typed blocks of every other decision of a group become one
//! [`Blocklist::block_many`] call (one backend batch, one store fsync). With `dry_run`
//! (`--replay`) nothing is run or written: actions count as done and the typed-block
//! step prints what the blocklist would do. Must not: decide anything the engine
//! decides, or read packets. The behaviour is `docs/compat.md` §5–§7 (2.x) and
//! §10.5–§10.7 (1.2).

pub mod budget;
pub mod files;
pub mod resolve;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use portsentry_exec::{Program, Spec, Stdout};

use crate::blocklist::{Blocklist, Preview, Request};
use crate::capture::Conn;
use crate::config::{Config, Template};
use crate::engine::{Action, Decision, Outcome, Say, Settle, Step};
use crate::legacy::files::Blocked;
use crate::logging::legacy::{history_line, Legacy};
use crate::logging::lines::{Flag, Line, Outcome as Flags, ScanLine};
use crate::logging::Logger;
use crate::model::{IpOpts, LegacyMode, Proto, ScanKind};
use crate::packet::Skip;

/// How long a legacy command may run before its process group is killed.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(30);
/// Worker threads for hosts whose commands run at most at once; beyond that, commands
/// run on the executor thread itself (capture is never held up either way).
const MAX_WORKERS: usize = 256;
/// Malformed-packet lines per minute before they are only counted.
const MALFORMED_PER_MINUTE: u32 = 5;

/// What the actions need from the config; replaced as a whole on reload.
#[derive(Debug, Clone)]
pub struct Actions {
    /// KILL_HOSTS_DENY as the legacy action (not when the hosts-deny backend runs).
    pub hosts_deny: Option<Template>,
    pub hosts_deny_file: PathBuf,
    pub route: Option<Template>,
    pub route_remove: Option<Template>,
    pub run_cmd: Option<Template>,
    pub banner: Option<String>,
    /// The IGNORE_FILE path as configured (for the 2.x verbose line).
    pub ignore_file: String,
    /// LOG_RATE_LIMIT: scan lines per second after a burst; 0 = unlimited.
    pub log_rate: u64,
}

impl Actions {
    pub fn of(cfg: &Config) -> Actions {
        Actions {
            hosts_deny: cfg.legacy_hosts_deny().cloned(),
            hosts_deny_file: cfg.hosts_deny_file.clone(),
            route: cfg.kill_route.clone(),
            route_remove: cfg.kill_route_remove.clone(),
            run_cmd: cfg.kill_run_cmd.clone(),
            banner: cfg.port_banner.clone(),
            ignore_file: cfg
                .ignore_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            log_rate: cfg.log_rate_limit,
        }
    }

    /// Whether `a` execs a command (and so runs on a worker).
    fn execs(&self, a: Action) -> bool {
        match a {
            Action::Route => self.route.is_some(),
            Action::RunCmd => self.run_cmd.is_some(),
            Action::HostsDeny | Action::Block => false,
        }
    }
}

/// Where the results of events are recorded, per dialect.
pub enum Records {
    /// 2.x: HISTORY_FILE gets every scan line, BLOCKED_FILE the binary block cache.
    V2 {
        history: Option<files::AppendFile>,
        blocked_file: Option<files::BlockedFile>,
        stamper: files::Stamper,
        buf: String,
    },
    /// 1.2: the history line and the `.mode` blocked file for each blocked host.
    Legacy {
        mode: LegacyMode,
        history: files::AppendFile,
        blocked: Blocked,
    },
    /// `--replay`: nothing is written.
    None,
}

impl Records {
    pub fn v2(
        history: Option<files::AppendFile>,
        blocked_file: Option<files::BlockedFile>,
    ) -> Records {
        Records::V2 {
            history,
            blocked_file,
            stamper: files::Stamper::default(),
            buf: String::with_capacity(512),
        }
    }
}

/// What runs the blocks: the blocklist, or (replay) a preview of it.
pub enum Blocking {
    None,
    Live(Arc<Mutex<Blocklist>>),
    Preview(Preview),
}

/// Told to the engine: the response to this host failed, so it is not blocked.
pub type Feedback = Arc<dyn Fn(IpAddr) + Send + Sync>;

/// One decision on its way through the executor.
pub struct Job {
    pub decision: Decision,
    pub conn: Option<Conn>,
    /// The next step to run.
    pos: usize,
    results: Vec<bool>,
    settled: Option<bool>,
    name: Option<String>,
}

impl Job {
    pub fn new(decision: Decision, conn: Option<Conn>) -> Job {
        Job {
            decision,
            conn,
            pos: 0,
            results: Vec::new(),
            settled: None,
            name: None,
        }
    }

    fn src(&self) -> IpAddr {
        self.decision.event.src
    }
}

struct Malformed {
    window: Option<Instant>,
    shown: u32,
    suppressed: u64,
    total: u64,
}

/// The executor's state, shared with its workers.
struct Inner {
    log: Arc<Logger>,
    legacy: Option<LegacyMode>,
    /// `$MODE$`: `stealth`/`connect`, or the 1.2 mode word.
    mode_word: &'static str,
    /// Where legacy commands' stdout goes (2.x: ours; 1.2: /dev/null).
    stdout: Stdout,
    dry_run: bool,
    actions: RwLock<Arc<Actions>>,
    records: Mutex<Records>,
    blocking: RwLock<Blocking>,
    feedback: Feedback,
    resolver: Mutex<resolve::Resolver>,
    malformed: Mutex<Malformed>,
    /// The flood cap on scan lines (history and log alike).
    budget: Mutex<budget::Budget>,
    /// Hosts whose decisions run (or wait to run) on workers.
    busy: Mutex<Busy>,
}

/// The per-host queues of the workers.
#[derive(Default)]
struct Busy {
    /// Per host: the decisions not yet started, in order.
    queues: HashMap<IpAddr, VecDeque<Job>>,
    /// Workers running.
    workers: usize,
    /// Hosts waiting for a worker (all [`MAX_WORKERS`] were busy), in arrival order.
    waiting: VecDeque<IpAddr>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The executor. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Executor(Arc<Inner>);

/// How the executor is set up.
pub struct Setup {
    pub log: Arc<Logger>,
    /// `None` for 2.x.
    pub legacy: Option<LegacyMode>,
    pub mode_word: &'static str,
    pub dry_run: bool,
    pub actions: Actions,
    pub records: Records,
    pub blocking: Blocking,
    pub feedback: Feedback,
}

impl Executor {
    pub fn new(s: Setup) -> Executor {
        Executor(Arc::new(Inner {
            stdout: if s.legacy.is_some() {
                Stdout::Null
            } else {
                Stdout::Inherit
            },
            log: s.log,
            legacy: s.legacy,
            mode_word: s.mode_word,
            dry_run: s.dry_run,
            // a replay prints every line it would log
            budget: Mutex::new(budget::Budget::new(if s.dry_run {
                0
            } else {
                s.actions.log_rate
            })),
            actions: RwLock::new(Arc::new(s.actions)),
            records: Mutex::new(s.records),
            blocking: RwLock::new(s.blocking),
            feedback: s.feedback,
            resolver: Mutex::new(resolve::Resolver::new(Duration::from_millis(500))),
            malformed: Mutex::new(Malformed {
                window: None,
                shown: 0,
                suppressed: 0,
                total: 0,
            }),
            busy: Mutex::new(Busy::default()),
        }))
    }

    fn actions(&self) -> Arc<Actions> {
        self.0
            .actions
            .read()
            .map(|a| a.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Reload: new actions, and (2.x) the history and blocked files at new paths.
    pub fn reconfigure(&self, actions: Actions, records: Option<Records>) {
        if !self.0.dry_run {
            lock(&self.0.budget).set_rate(actions.log_rate);
        }
        if let Ok(mut a) = self.0.actions.write() {
            *a = Arc::new(actions);
        }
        if let Some(r) = records {
            *lock(&self.0.records) = r;
        }
    }

    /// 1.2 mode: HISTORY_FILE at a new path (reload).
    pub fn set_history(&self, h: files::AppendFile) {
        if let Records::Legacy { history, .. } = &mut *lock(&self.0.records) {
            *history = h;
        }
    }

    /// Typed blocking turned on, off or replaced (reload).
    pub fn set_blocking(&self, b: Blocking) {
        if let Ok(mut g) = self.0.blocking.write() {
            *g = b;
        }
    }

    /// The blocklist, if typed blocking runs.
    pub fn blocklist(&self) -> Option<Arc<Mutex<Blocklist>>> {
        match &*self.0.blocking.read().unwrap_or_else(|p| p.into_inner()) {
            Blocking::Live(b) => Some(b.clone()),
            _ => None,
        }
    }

    /// Runs a group of decisions (everything that was waiting). See the module
    /// documentation for the order and the batching.
    pub fn run_group(&self, jobs: Vec<Job>) {
        let actions = self.actions();
        let mut inline = Vec::with_capacity(jobs.len());
        for job in jobs {
            let ip = job.src();
            let mut busy = lock(&self.0.busy);
            if let Some(q) = busy.queues.get_mut(&ip) {
                q.push_back(job);
                continue;
            }
            let execs = job.decision.steps.iter().any(|s| match s {
                Step::Act(a) => actions.execs(*a),
                _ => false,
            });
            if execs && !self.0.dry_run {
                if busy.workers < MAX_WORKERS {
                    busy.workers += 1;
                    busy.queues.insert(ip, VecDeque::new());
                    drop(busy);
                    let me = self.clone();
                    std::thread::spawn(move || me.worker(job));
                } else {
                    // every worker busy: the host waits for the first one to finish
                    busy.queues.insert(ip, VecDeque::from([job]));
                    busy.waiting.push_back(ip);
                }
            } else {
                drop(busy);
                inline.push(job);
            }
        }
        // Every inline job up to its typed block, the blocks of all of them at once, then
        // the rest of each.
        // A host's later decisions wait until its parked one is done, so its lines keep
        // their order.
        let mut parked = Vec::new();
        let mut parked_hosts = HashSet::new();
        let mut deferred = Vec::new();
        let mut settled = false;
        for mut job in inline {
            settled |= job.decision.outcome == Outcome::Respond;
            if parked_hosts.contains(&job.src()) {
                deferred.push(job);
                continue;
            }
            if self.advance(&mut job, &actions, true) {
                parked_hosts.insert(job.src());
                parked.push(job);
            }
        }
        if parked.is_empty() {
            if settled {
                self.sync_records();
            }
            return;
        }
        let oks = self.block_group(&parked);
        for (mut job, ok) in parked.into_iter().zip(oks) {
            job.results.push(ok);
            job.pos += 1;
            self.advance(&mut job, &actions, false);
        }
        for job in deferred {
            self.run_one(job);
        }
        self.sync_records();
    }

    /// One fsync of BLOCKED_FILE for the hosts a group added to it (the block store,
    /// when typed blocking runs, is durable before any block is reported).
    fn sync_records(&self) {
        if let Records::V2 {
            blocked_file: Some(f),
            ..
        } = &mut *lock(&self.0.records)
        {
            if let Err(e) = f.sync() {
                self.0
                    .log
                    .error(format!("cannot sync the blocked file: {e}"));
            }
        }
    }

    /// Runs every step of one decision now (workers, lines-only decisions in the
    /// capture thread, tests, replay).
    pub fn run_one(&self, mut job: Job) {
        let actions = self.actions();
        while self.advance(&mut job, &actions, true) {
            let ok = self.block_group(std::slice::from_ref(&job))[0];
            job.results.push(ok);
            job.pos += 1;
        }
        if job.decision.outcome == Outcome::Respond {
            self.sync_records();
        }
    }

    /// A worker: this host's decision, then those that queued behind it, then the hosts
    /// that waited for a worker.
    fn worker(&self, first: Job) {
        let mut ip = first.src();
        let mut job = first;
        loop {
            self.run_one(job);
            let mut busy = lock(&self.0.busy);
            if let Some(next) = busy.queues.get_mut(&ip).and_then(|q| q.pop_front()) {
                job = next;
                continue;
            }
            busy.queues.remove(&ip);
            loop {
                let Some(other) = busy.waiting.pop_front() else {
                    busy.workers -= 1;
                    return;
                };
                if let Some(next) = busy.queues.get_mut(&other).and_then(|q| q.pop_front()) {
                    ip = other;
                    job = next;
                    break;
                }
            }
        }
    }

    /// Whether a decision of `ip` runs or waits on a worker (later ones queue behind it).
    pub fn is_busy(&self, ip: IpAddr) -> bool {
        lock(&self.0.busy).queues.contains_key(&ip)
    }

    /// Hosts with a decision running or waiting on a worker.
    pub fn busy_hosts(&self) -> usize {
        lock(&self.0.busy).queues.len()
    }

    /// Runs steps from `job.pos`; with `stop_at_block`, stops before a typed-block step
    /// and returns true.
    fn advance(&self, job: &mut Job, actions: &Actions, stop_at_block: bool) -> bool {
        while let Some(step) = job.decision.steps.get(job.pos).copied() {
            if step == Step::Act(Action::Block) && stop_at_block {
                return true;
            }
            self.step(job, actions, step);
            job.pos += 1;
        }
        false
    }

    /// The typed blocks of a group: one request per job, one blocklist call.
    fn block_group(&self, jobs: &[Job]) -> Vec<bool> {
        let reqs: Vec<Request> = jobs
            .iter()
            .map(|j| {
                let e = &j.decision.event;
                Request::detection(
                    e.src,
                    portsentry_blocker::Reason {
                        protocol: e.proto.to_string().into(),
                        port: e.port,
                        scan: e.kind.to_string().into(),
                    },
                )
            })
            .collect();
        let blocking = self.0.blocking.read().unwrap_or_else(|p| p.into_inner());
        match &*blocking {
            Blocking::None => vec![self.0.dry_run; jobs.len()],
            Blocking::Live(b) => lock(b)
                .block_many(reqs)
                .into_iter()
                .map(|r| r.is_ok())
                .collect(),
            Blocking::Preview(p) => reqs
                .iter()
                .map(|r| {
                    let res = p.preview(r);
                    self.0.log.notice(Line::WouldBlock { result: &res });
                    res.is_ok()
                })
                .collect(),
        }
    }

    fn name(&self, job: &mut Job) -> String {
        if let Some(n) = &job.name {
            return n.clone();
        }
        let ip = job.src();
        let n = if job.decision.resolve {
            lock(&self.0.resolver).name(ip)
        } else {
            ip.to_string()
        };
        job.name = Some(n.clone());
        n
    }

    fn step(&self, job: &mut Job, actions: &Actions, step: Step) {
        match step {
            Step::Say(s) => self.say(job, actions, s),
            Step::Banner => {
                if let (Some(conn), Some(b)) = (job.conn.take(), actions.banner.as_ref()) {
                    conn.answer(b.as_bytes());
                }
            }
            Step::Act(a) => {
                let ok = self.act(job, actions, a);
                job.results.push(ok);
            }
            Step::Settle(s) => self.settle(job, s),
            Step::ScanLine {
                ignored,
                triggered,
                noblock,
                blocked,
            } => {
                let blocked = blocked.unwrap_or(Flag::from(job.settled.unwrap_or(false)));
                let flags = Flags {
                    ignored,
                    triggered,
                    noblock,
                    blocked,
                };
                self.scan_line(job, flags);
            }
        }
    }

    fn say(&self, job: &mut Job, actions: &Actions, s: Say) {
        let log = &self.0.log;
        let e = job.decision.event;
        let ip = e.src;
        match s {
            Say::ServiceRunning => log.notice(Line::ServiceRunning { ip, port: e.port }),
            Say::IgnoredHost => log.verbose(Line::IgnoredHost {
                ip,
                file: &actions.ignore_file,
            }),
            Say::SameAddress => log.debug(Line::SameAddress {
                src: ip,
                dst: e.dst,
            }),
            Say::AlreadyBlocked => log.notice(Line::AlreadyBlocked { ip }),
            Say::TriggerTableFull => {
                let line = Line::TriggerTableFull {
                    cap: crate::engine::DEFAULT_CAP,
                };
                if self.0.legacy.is_some() {
                    log.notice(line);
                } else {
                    log.error(line);
                }
            }
            Say::NoIgnoreFile => log.notice(Legacy::NoIgnoreFile),
            Say::EventLine => {
                if !self.line_allowed() {
                    return;
                }
                let name = self.name(job);
                let name = name.as_str();
                let port = e.port;
                if e.connect {
                    log.notice(Legacy::Connect {
                        name,
                        ip,
                        proto: e.proto,
                        port,
                    });
                } else {
                    match (e.proto, e.kind) {
                        (Proto::Udp, _) | (_, ScanKind::Udp) => {
                            log.notice(Legacy::UdpScan { name, ip, port })
                        }
                        (Proto::Tcp, kind) => log.notice(Legacy::Stealth {
                            kind,
                            name,
                            ip,
                            port,
                        }),
                    }
                }
            }
            Say::IpOptions => {
                let name = self.name(job);
                if e.ip_opts == IpOpts::Set {
                    log.notice(Legacy::IpOptions {
                        name: &name,
                        ip,
                        proto: e.proto,
                        port: e.port,
                    });
                }
            }
            Say::AlreadyBlockedLegacy => {
                if e.connect {
                    log.notice(Legacy::AlreadyBlockedConnect { ip });
                } else {
                    let name = self.name(job);
                    log.notice(Legacy::AlreadyBlockedStealth { name: &name, ip });
                }
            }
            Say::IgnoringResponse => log.notice(Legacy::IgnoringResponse(e.proto)),
            Say::OwnAddress => log.notice(Line::CapHit {
                ip,
                what: "it is an address of this host",
            }),
            Say::Capped(c) => {
                let what = match c {
                    crate::engine::Cap::Max => "BLOCK_MAX active blocks reached",
                    crate::engine::Cap::Rate => "BLOCK_RATE new blocks per second reached",
                };
                let line = Line::CapHit { ip, what };
                if self.0.legacy.is_some() {
                    log.notice(line);
                } else {
                    log.error(line);
                }
            }
        }
    }

    /// An admin diagnostic in the dialect's words.
    fn problem(&self, text: &str) {
        if self.0.legacy.is_some() {
            self.0.log.notice(Legacy::Admin(text));
        } else {
            self.0.log.error(text);
        }
    }

    /// A 1.2 config's KILL_HOSTS_DENY or KILL_ROUTE without `$TARGET$` (2.x refuses
    /// such a config): 1.2's line, and the action failed, so the host is not recorded.
    fn no_target(&self, key: &str) -> bool {
        self.problem(&format!(
            "No target variable specified in {key} option. Skipping."
        ));
        false
    }

    fn act(&self, job: &mut Job, actions: &Actions, a: Action) -> bool {
        let e = job.decision.event;
        let (ip, port) = (e.src, e.port);
        let log = &self.0.log;
        match a {
            Action::HostsDeny => {
                let Some(t) = &actions.hosts_deny else {
                    return true;
                };
                if !t.has_target() {
                    return self.no_target("KILL_HOSTS_DENY");
                }
                let file = &actions.hosts_deny_file;
                let rendered =
                    portsentry_hosts_deny::render_line(file, &t.0, ip, port, self.0.mode_word);
                let line = match &rendered {
                    Ok(l) => l.clone(),
                    Err(_) => t.0.clone(),
                };
                let res = match rendered {
                    Err(e) => Err(e),
                    Ok(_) if self.0.dry_run => Ok(portsentry_hosts_deny::Added::Added),
                    Ok(_) => portsentry_hosts_deny::add_line(file, &line),
                };
                match (res, self.0.legacy) {
                    (Ok(_), Some(_)) => {
                        log.notice(Legacy::BlockedWrappers { ip, line: &line });
                        true
                    }
                    (Ok(portsentry_hosts_deny::Added::Added), None) => {
                        log.notice(Line::BlockedWrappers { ip, line: &line });
                        true
                    }
                    (Ok(portsentry_hosts_deny::Added::AlreadyThere), None) => {
                        log.notice(Line::AlreadyInHostsDeny { ip });
                        true
                    }
                    (Err(err), _) => {
                        let why = chain(&err);
                        let text = format!(
                            "cannot add \"{line}\" to {}: {why}",
                            actions.hosts_deny_file.display()
                        );
                        if self.0.legacy.is_some() {
                            self.problem(&format!("ERROR: {text}"));
                        } else {
                            self.problem(&text);
                        }
                        false
                    }
                }
            }
            Action::Route => match &actions.route {
                None => true,
                Some(t) if !t.has_target() => self.no_target("KILL_ROUTE"),
                Some(t) => {
                    let cmd = t.render(ip, port, self.0.mode_word);
                    self.command(&cmd, |log, cmd| match self.0.legacy {
                        Some(_) => log.notice(Legacy::BlockedRoute { ip, cmd }),
                        None => log.notice(Line::BlockedRoute { ip, cmd }),
                    })
                }
            },
            Action::RunCmd => match &actions.run_cmd {
                None => self.0.legacy.is_some(),
                Some(t) => {
                    let cmd = t.render(ip, port, self.0.mode_word);
                    self.command(&cmd, |log, cmd| match self.0.legacy {
                        Some(_) => log.notice(Legacy::ExternalCommand { ip, cmd }),
                        None => log.notice(Line::ExternalCommand { ip, cmd }),
                    })
                }
            },
            // Only reached when a decision runs step by step outside a group.
            Action::Block => self.block_group(std::slice::from_ref(job))[0],
        }
    }

    /// Runs a legacy command string. A command that started counts as success (as in
    /// 2.x and 1.2): `started` logs its line; in 1.2 mode a failed status is reported
    /// after it.
    fn command(&self, cmd: &str, started: impl Fn(&Logger, &str)) -> bool {
        if self.0.dry_run {
            started(&self.0.log, cmd);
            return true;
        }
        let program = Program::Shell(cmd.to_string());
        let spec = Spec {
            stdout: self.0.stdout,
            keep_stderr: self.0.legacy.is_none(),
            ..Spec::new(&program, COMMAND_LIMIT)
        };
        match portsentry_exec::run(&spec) {
            Ok(ran) => {
                started(&self.0.log, cmd);
                if ran.status.is_none() {
                    self.problem(&format!(
                        "command did not end within {} seconds and was killed: \"{cmd}\"",
                        COMMAND_LIMIT.as_secs()
                    ));
                } else if let Some(code) = ran.failed_code() {
                    match self.0.legacy {
                        Some(_) => self
                            .0
                            .log
                            .notice(Legacy::CommandStatus { status: code, cmd }),
                        None => self.0.log.error(Line::CommandStatus {
                            status: code,
                            cmd,
                            stderr: &ran.stderr,
                        }),
                    }
                }
                true
            }
            Err(e) => {
                match self.0.legacy {
                    Some(_) => self.problem(&format!("ERROR: cannot run command \"{cmd}\": {e}")),
                    None => self.problem(&format!("cannot run \"{cmd}\": {e}")),
                }
                false
            }
        }
    }

    fn settle(&self, job: &mut Job, s: Settle) {
        let ok = match s {
            Settle::AnyOf => job.results.iter().any(|r| *r),
            Settle::AllOf => job.results.iter().all(|r| *r),
            Settle::Record => true,
        };
        job.settled = Some(ok);
        let ip = job.src();
        if !ok {
            (self.0.feedback)(ip);
            match self.0.legacy {
                Some(mode) => {
                    let name = self.name(job);
                    self.0.log.notice(Legacy::CouldNotBlock {
                        mode,
                        name: &name,
                        ip,
                    });
                }
                None => self.0.log.notice(Line::DisposeError { ip }),
            }
            return;
        }
        let name = self.name(job);
        let e = job.decision.event;
        let mut records = lock(&self.0.records);
        match &mut *records {
            Records::V2 { blocked_file, .. } => {
                if let Some(f) = blocked_file {
                    if let Err(err) = f.append(ip) {
                        self.0
                            .log
                            .error(format!("cannot record the block of {ip}: {err}"));
                    }
                }
            }
            Records::Legacy {
                history, blocked, ..
            } => {
                let line = history_line(e.ts.into(), &name, ip, e.port, e.proto);
                if let Err(err) = blocked.append(ip, &line) {
                    self.0.log.notice(Legacy::Admin(&format!(
                        "ERROR: cannot write blocked file {}: {err}",
                        blocked.path().display()
                    )));
                }
                if let Err(err) = history.write_line(&line) {
                    self.0.log.notice(Legacy::Admin(&format!(
                        "ERROR: cannot write history file {}: {err}",
                        history.path().display()
                    )));
                }
            }
            Records::None => {}
        }
    }

    /// Whether one more scan line may be written under the flood cap; says how many
    /// were held back, once a second while that goes on.
    fn line_allowed(&self) -> bool {
        let now = Instant::now();
        let mut b = lock(&self.0.budget);
        let ok = b.take(now);
        let due = b.summary(now, false);
        let rate = b.rate();
        drop(b);
        if let Some((n, span)) = due {
            self.say_suppressed(n, span, rate);
        }
        ok
    }

    fn say_suppressed(&self, lines: u64, span: Duration, rate: u64) {
        let text = Line::LinesSuppressed {
            lines,
            tenths: u64::try_from(span.as_millis() / 100).unwrap_or(u64::MAX),
            rate,
        }
        .to_string();
        if self.0.legacy.is_some() {
            self.0.log.notice(Legacy::Admin(&text));
        } else {
            self.0.log.error(format!("adminalert: {text}"));
        }
    }

    fn scan_line(&self, job: &mut Job, outcome: Flags) {
        use std::fmt::Write as _;
        if !self.line_allowed() {
            return;
        }
        let name = self.name(job);
        let e = job.decision.event;
        let line = ScanLine {
            src: e.src,
            name: &name,
            proto: e.proto,
            port: e.port,
            kind: e.kind,
            ip_opts: e.ip_opts,
            outcome,
        };
        let mut records = lock(&self.0.records);
        match &mut *records {
            Records::V2 {
                history,
                stamper,
                buf,
                ..
            } => {
                // One buffer, reused: `<timestamp> <scan line>`; the log gets the part
                // after the timestamp.
                buf.clear();
                if history.is_some() {
                    stamper.write(e.ts, buf);
                    buf.push(' ');
                }
                let start = buf.len();
                let _ = write!(buf, "{line}");
                self.0.log.notice(&buf[start..]);
                if let Some(h) = history {
                    if let Err(err) = h.write_line(buf) {
                        self.0
                            .log
                            .error(format!("{}: cannot write: {err}", h.path().display()));
                    }
                }
            }
            _ => self.0.log.notice(line),
        }
    }

    /// Counts a malformed frame and logs it, rate-limited.
    pub fn malformed(&self, skip: Skip) {
        let mut m = lock(&self.0.malformed);
        m.total += 1;
        let now = Instant::now();
        if m.window
            .is_none_or(|w| now.duration_since(w) >= Duration::from_secs(60))
        {
            if m.suppressed > 0 {
                self.0.log.error(Line::MalformedSuppressed {
                    suppressed: m.suppressed,
                    total: m.total,
                });
            }
            m.window = Some(now);
            m.shown = 0;
            m.suppressed = 0;
        }
        if m.shown < MALFORMED_PER_MINUTE {
            m.shown += 1;
            self.0.log.error(skip);
        } else {
            m.suppressed += 1;
        }
    }

    /// At the end (shutdown, end of a replay): waits briefly for workers, and says how
    /// many malformed-packet lines the rate limit held back.
    pub fn finish(&self, wait: Duration) {
        let start = Instant::now();
        while self.busy_hosts() > 0 && start.elapsed() < wait {
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut b = lock(&self.0.budget);
        let held = b.summary(Instant::now(), true);
        let rate = b.rate();
        drop(b);
        if let Some((n, span)) = held {
            self.say_suppressed(n, span, rate);
        }
        let mut m = lock(&self.0.malformed);
        if m.suppressed > 0 {
            self.0.log.error(Line::MalformedSuppressed {
                suppressed: m.suppressed,
                total: m.total,
            });
            m.suppressed = 0;
        }
    }

    /// Blocks lifted by the blocklist (expiry, the CLI): KILL_ROUTE_REMOVE runs for each,
    /// and the 2.x BLOCKED_FILE or the 1.2 blocked file forgets them. `active` is every
    /// address still blocked (2.x rewrites its file from it).
    pub fn lifted(&self, lifted: &[IpAddr], active: &HashSet<IpAddr>) {
        if lifted.is_empty() {
            return;
        }
        let actions = self.actions();
        if let Some(t) = &actions.route_remove {
            for ip in lifted {
                let cmd = t.render(*ip, 0, self.0.mode_word);
                self.command(&cmd, |_, _| {});
            }
        }
        self.rewrite_blocked(lifted, active);
    }

    /// Blocks added elsewhere (the CLI): 2.x's BLOCKED_FILE follows the store.
    pub fn added(&self, active: &HashSet<IpAddr>) {
        self.rewrite_blocked(&[], active);
    }

    fn rewrite_blocked(&self, lifted: &[IpAddr], active: &HashSet<IpAddr>) {
        let mut records = lock(&self.0.records);
        match &mut *records {
            Records::V2 {
                blocked_file: Some(f),
                ..
            } => {
                let ips: Vec<IpAddr> = active.iter().copied().collect();
                if let Err(e) = f.rewrite(&ips) {
                    self.0
                        .log
                        .error(format!("cannot rewrite the blocked file: {e}"));
                }
            }
            Records::Legacy { blocked, .. } => {
                for ip in lifted {
                    if let Err(e) = blocked.remove(*ip) {
                        self.0.log.notice(Legacy::Admin(&format!(
                            "ERROR: cannot update {}: {e}",
                            blocked.path().display()
                        )));
                    }
                }
            }
            _ => {}
        }
    }

    /// 1.2 mode: the blocked file's addresses if an admin changed it since we last
    /// looked (deleting a line unblocks that host).
    pub fn poll_legacy_blocked(&self) -> Option<HashSet<IpAddr>> {
        match &mut *lock(&self.0.records) {
            Records::Legacy { blocked, .. } => blocked.poll(),
            _ => None,
        }
    }

    /// Whether `outcome` leaves anything to do (1.2 drops most events silently).
    pub fn worth_running(d: &Decision) -> bool {
        !d.steps.is_empty() || d.outcome == Outcome::Respond
    }
}

/// An error with its causes, `: `-separated.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
