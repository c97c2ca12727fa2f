//! Portsentry 1.2 legacy mode (`portsentry -atcp`), `docs/compat.md` §10.
//!
//! In: the mode word and the config path. Out: an exit code; in between, a detached
//! daemon that watches one protocol the 1.2 way and logs 1.2's lines to syslog only.
//! The parent ([`process::daemonize`]) starts the child and reports whether it came up;
//! the child ([`run`]) does everything else: config, instance lock, files, sources,
//! signals, then the control loop. Events go through the same pipeline as 2.x mode
//! (`crate::pipeline`: the engine with the 1.2 policy, the executor with the 1.2 records);
//! what is 1.2's here is the process, the port sets, the files and their following.
//! Must not: print a 2.x line (`Scan from:` and friends) or write to stdout/stderr after
//! detaching.

pub mod advanced;
pub mod files;

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::capture::{self, Input, Ports, StopFlag};
use crate::config::{Config, ConfigError};
use crate::daemon::{self, VERSION};
use crate::engine::{Engine, Policy};
use crate::exit;
use crate::facts::{HostFacts, SystemFacts};
use crate::logging::legacy::Legacy;
use crate::logging::{Logger, Syslog};
use crate::model::ports::in_order;
use crate::model::Interfaces;
use crate::model::LegacyMode;
use crate::model::{Dialect, PortSet, Proto};
use crate::pipeline::{self, Pipeline};
use crate::process;
use crate::respond::{Actions, Blocking, Executor, Records, Setup};

/// Depth of the control channel (signals, source errors).
const QUEUE: usize = 64;
/// How long shutdown waits for decisions still being carried out (twice at most: the
/// queue, then commands still running; SIGTERM must end the daemon within a second).
const DRAIN: Duration = Duration::from_millis(400);
/// Descriptors kept free for files, commands and syslog when binding many ports.
const SPARE_FDS: u64 = 64;

/// The log of one legacy process: syslog only, every line at notice. Problems found
/// before detaching also go to stderr, which is still the parent's.
pub struct Out {
    log: Arc<Logger>,
    attached: AtomicBool,
}

impl Out {
    pub fn new(log: Logger) -> Out {
        Out {
            log: Arc::new(log),
            attached: AtomicBool::new(true),
        }
    }

    /// The logger itself, for parts shared with 2.x mode (typed blocking).
    pub fn logger(&self) -> Arc<Logger> {
        self.log.clone()
    }

    /// A normal line: syslog only.
    pub fn notice(&self, line: impl Display) {
        self.log.notice(line);
    }

    /// A fatal start-up error (a config that cannot be used, a set-up step that failed):
    /// syslog, and stderr while the parent still waits. Nothing else goes to stderr:
    /// 1.2 logged only to syslog (issue #14 item 4).
    pub fn config_error(&self, line: impl Display) {
        let text = line.to_string();
        self.log.notice(&text);
        if self.attached.load(Ordering::Relaxed) {
            eprintln!("{text}");
        }
    }

    /// The pair every exit ends with.
    pub fn shutdown(&self) {
        self.log.notice(Legacy::SecurityShutdown);
        self.log.notice(Legacy::AdminShutdown);
    }

    /// Set-up cannot go on: the problem, the shutdown pair, exit 255.
    fn fatal(&self, line: impl Display) -> i32 {
        self.config_error(line);
        self.shutdown();
        exit::LEGACY_FAILURE
    }

    fn detached(&self) {
        self.attached.store(false, Ordering::Relaxed);
    }
}

/// Runs one legacy mode: the parent detaches the daemon, the daemon runs.
pub fn main(mode: LegacyMode, path: &Path) -> i32 {
    match process::role() {
        process::Role::Parent => match process::daemonize() {
            Ok(process::Started::Ready) => exit::OK,
            Ok(process::Started::Failed(_)) => exit::LEGACY_FAILURE,
            Err(e) => Out::new(Logger::legacy(Syslog::new(), false)).fatal(Legacy::Admin(
                &format!("ERROR: cannot start the daemon process: {e}. Shutting down."),
            )),
        },
        process::Role::Child => run(mode, path),
    }
}

/// Why a legacy config cannot be used.
#[derive(Debug)]
pub enum LoadError {
    /// No readable file: 1.2's two lines.
    Missing(PathBuf),
    /// A line we cannot accept (one of our own keys with a bad value).
    Broken(String),
    /// A mandatory file key 1.2 could not read (`InitConfig: Cannot retrieve ...`).
    Mandatory(&'static str),
    /// The mode's port list 1.2 could not read (`Could not read TCP_PORTS ...`).
    NoPorts(Proto),
}

impl LoadError {
    /// 1.2's lines for the failure. They go to stderr too while the parent waits:
    /// these are the fatal config errors of §10.2.
    fn log(&self, out: &Out) {
        match self {
            LoadError::Missing(p) => {
                out.config_error(Legacy::CannotOpenConfig(&p.display().to_string()));
                out.config_error(Legacy::ConfigMissing);
            }
            LoadError::Broken(msg) => {
                out.config_error(Legacy::Admin(msg));
                out.config_error(Legacy::Corrupted);
            }
            LoadError::Mandatory(key) => {
                out.config_error(Legacy::CannotRetrieve(key));
                out.config_error(Legacy::Corrupted);
            }
            LoadError::NoPorts(proto) => {
                out.config_error(Legacy::NoPortsOption(*proto));
                out.config_error(Legacy::ModeFailed);
            }
        }
    }

    /// The reason in one phrase (a failed reload).
    fn why(&self) -> String {
        match self {
            LoadError::Missing(p) => format!("cannot read {}", p.display()),
            LoadError::Broken(m) => m.clone(),
            LoadError::Mandatory(k) => format!("{k} cannot be read"),
            LoadError::NoPorts(p) => format!("{p}_PORTS cannot be read"),
        }
    }
}

/// A config read the 1.2 way, with what 1.2 said while reading it.
pub struct Loaded {
    pub cfg: Config,
    /// 1.2's lines about keys it skipped, in its order (before the mode's lines).
    pub said: Vec<String>,
}

/// The keys 1.2's InitConfig read, in its order: each unreadable one got its
/// "Quotes missing" line in this order, whatever the file's order.
const INIT_ORDER: &[&str] = &[
    "BLOCK_TCP",
    "BLOCK_UDP",
    "RESOLVE_HOST",
    "SCAN_TRIGGER",
    "KILL_ROUTE",
    "KILL_HOSTS_DENY",
    "KILL_RUN_CMD",
    "KILL_RUN_CMD_FIRST",
    "BLOCKED_FILE",
    "HISTORY_FILE",
    "IGNORE_FILE",
];

/// Loads a config with 1.2's rules, saying what 1.2 said about keys it could not read
/// (issue #14 items 6 and 8): an unquoted optional value is skipped and its default
/// applies; only an unreadable mandatory key (the three files, then the mode's port
/// list) stops the start. On failure, the lines said so far come with the error.
pub fn load_config(path: &Path, mode: LegacyMode) -> Result<Loaded, (Vec<String>, LoadError)> {
    let mut cfg = match Config::load(path, Dialect::Legacy) {
        Ok(c) => c,
        Err(ConfigError::Read { .. }) => {
            return Err((Vec::new(), LoadError::Missing(path.to_path_buf())))
        }
        Err(e) => return Err((Vec::new(), LoadError::Broken(e.to_string()))),
    };
    let mut said = Vec::new();
    let unquoted = |k: &str| cfg.unquoted.contains(&k);
    let have = |k: &str| cfg.lines.contains_key(k);
    for key in INIT_ORDER.iter().copied() {
        // 1.2 read KILL_RUN_CMD_FIRST only when KILL_RUN_CMD was readable
        if key == "KILL_RUN_CMD_FIRST" && !have("KILL_RUN_CMD") {
            continue;
        }
        if unquoted(key) {
            said.push(Legacy::QuotesMissing(key).to_string());
        }
        if key == "SCAN_TRIGGER" && !have(key) {
            said.push(Legacy::NoScanTrigger.to_string());
        }
        if matches!(key, "BLOCKED_FILE" | "HISTORY_FILE" | "IGNORE_FILE") && !have(key) {
            return Err((said, LoadError::Mandatory(key)));
        }
    }
    if !have("KILL_RUN_CMD") {
        cfg.kill_run_cmd_first = false;
    }
    let proto = mode.proto();
    let ports_key = match (mode.is_advanced(), proto) {
        (false, Proto::Tcp) => "TCP_PORTS",
        (false, Proto::Udp) => "UDP_PORTS",
        (true, Proto::Tcp) => "ADVANCED_PORTS_TCP",
        (true, Proto::Udp) => "ADVANCED_PORTS_UDP",
    };
    if unquoted(ports_key) {
        said.push(Legacy::QuotesMissing(ports_key).to_string());
    }
    if !have(ports_key) {
        if !mode.is_advanced() {
            return Err((said, LoadError::NoPorts(proto)));
        }
        said.push(Legacy::NoAdvancedPorts(proto).to_string());
    }
    if mode.is_connect() && unquoted("PORT_BANNER") {
        said.push(Legacy::QuotesMissing("PORT_BANNER").to_string());
    }
    Ok(Loaded { cfg, said })
}

fn listed(cfg: &Config, proto: Proto) -> &PortSet {
    match proto {
        Proto::Tcp => &cfg.tcp_ports,
        Proto::Udp => &cfg.udp_ports,
    }
}

/// The listed ports in config order, each once (1.2 logged its lines in this order).
fn listed_in_order(cfg: &Config, proto: Proto) -> Vec<u16> {
    in_order(match proto {
        Proto::Tcp => &cfg.tcp_port_items,
        Proto::Udp => &cfg.udp_port_items,
    })
}

/// 1.2 had created (emptied) the mode's blocked file before it found HISTORY_FILE,
/// IGNORE_FILE or the port list missing (issue #14 item 8). We do the same, but only under the instance
/// lock, so a running instance's file is never wiped.
fn created_blocked_file(config_path: &Path, mode: LegacyMode) {
    if let Ok(cfg) = Config::load(config_path, Dialect::Legacy) {
        if let Some(base) = &cfg.blocked_file {
            drop(files::Blocked::open(&files::blocked_path(base, mode)));
        }
    }
}

/// The daemon: everything after the detach.
fn run(mode: LegacyMode, path: &Path) -> i32 {
    let config_path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let begun = process::begin_child();
    let out = Arc::new(Out::new(Logger::legacy(Syslog::new(), false)));
    out.notice(Legacy::Starting(VERSION));
    if let Err(e) = begun {
        out.notice(Legacy::Admin(&format!(
            "could not start a new session or change to /: {e}"
        )));
    }
    let cfg = match load_config(&config_path, mode) {
        Ok(Loaded { cfg, said }) => {
            for line in &said {
                out.notice(line);
            }
            cfg
        }
        Err((said, e)) => {
            for line in &said {
                out.notice(line);
            }
            if let LoadError::Mandatory("HISTORY_FILE" | "IGNORE_FILE") | LoadError::NoPorts(_) = e
            {
                created_blocked_file(&config_path, mode);
            }
            e.log(&out);
            out.shutdown();
            return exit::LEGACY_FAILURE;
        }
    };
    for w in &cfg.warnings {
        out.notice(Legacy::Admin(w));
    }
    let proto = mode.proto();
    let lowest = listed(&cfg, proto).iter().next().unwrap_or(u16::MAX);
    if (!mode.is_connect() || lowest < 1024) && !nix::unistd::geteuid().is_root() {
        return out.fatal(Legacy::Admin("You need to be root to run this."));
    }

    // The instance lock, then the files.
    let Some(blocked_base) = cfg.blocked_file.clone() else {
        return out.fatal(Legacy::Corrupted);
    };
    let blocked_path = files::blocked_path(&blocked_base, mode);
    let blocked = match files::Blocked::open(&blocked_path) {
        Ok(b) => b,
        Err(files::BlockedError::Busy) => return out.fatal(Legacy::AnotherInstance(mode)),
        Err(files::BlockedError::Io { path, source }) => {
            return out.fatal(Legacy::Admin(&format!(
                "ERROR: cannot open blocked file {}: {source}. Shutting down.",
                path.display()
            )))
        }
    };
    let Some(history_path) = cfg.history_file.clone() else {
        return out.fatal(Legacy::Corrupted);
    };
    let history = match files::open_history(&history_path) {
        Ok(h) => h,
        Err(e) => {
            return out.fatal(Legacy::Admin(&format!(
                "ERROR: cannot open history file {}: {e}. Shutting down.",
                history_path.display()
            )))
        }
    };
    // Least privilege, before the first thread starts (capabilities are per thread).
    // Silent when it works: 1.2 logged no such line.
    let held = crate::privileges::for_legacy(&cfg, mode);
    if let Err(e) = crate::privileges::apply(&held) {
        out.notice(Legacy::Admin(&format!(
            "could not give up privileges ({held}): {e}; running with root's capabilities"
        )));
    }
    let facts: Arc<dyn HostFacts> = SystemFacts::start(!mode.is_connect(), true);
    let ignore_path = cfg.ignore_file.clone().unwrap_or_default();
    let mut ignore = files::IgnoreWatch::new(&ignore_path);
    for p in ignore.refresh(true) {
        out.notice(Legacy::Admin(&p));
    }
    // Typed backends (BLOCK_BACKEND): the same store and backends as 2.x mode; both
    // processes of a Debian install (-atcp, -audp) share the store safely.
    let blocklist = match daemon::start_blocklist(
        &cfg,
        facts.clone(),
        ignore.list().cloned().unwrap_or_default(),
        out.logger(),
    ) {
        Ok(b) => b.map(|b| Arc::new(Mutex::new(b))),
        Err(e) => {
            return out.fatal(Legacy::Admin(&format!(
                "ERROR: cannot start typed blocking: {e}. Shutting down."
            )))
        }
    };
    let _pid = match &blocklist {
        Some(_) => match crate::pidfile::PidFile::take(&cfg.block_state_file, Some(mode.word())) {
            Ok(p) => Some(p),
            Err(e) => return out.fatal(Legacy::Admin(&format!("ERROR: {e}. Shutting down."))),
        },
        None => None,
    };
    let engine = Arc::new(Mutex::new(Engine::new(
        pipeline::rules(&cfg, Policy::Legacy(mode), true),
        ignore.engine_view(),
    )));
    let executor = Executor::new(Setup {
        log: out.logger(),
        legacy: Some(mode),
        mode_word: mode.word(),
        dry_run: false,
        actions: Actions::of(&cfg),
        records: Records::Legacy {
            mode,
            history,
            blocked,
        },
        blocking: match &blocklist {
            Some(b) => Blocking::Live(b.clone()),
            None => Blocking::None,
        },
        feedback: pipeline::feedback(&engine),
    });
    let pipe = Pipeline::start(engine, facts, executor);
    let ignore = Arc::new(Mutex::new(ignore));
    pipe.set_before(follow_files(ignore.clone(), out.clone()));

    let (tx, rx) = sync_channel::<Input>(QUEUE);
    if let Err(e) = crate::control::start_signals(tx.clone()) {
        return out.fatal(Legacy::Admin(&format!(
            "ERROR: cannot install signal handlers: {e}. Shutting down."
        )));
    }
    let stop = StopFlag::default();
    let sources = {
        let (pipe, out, tx) = (pipe.clone(), out.clone(), tx.clone());
        capture::Sender::inline(move |input| {
            match pipe.handle(input) {
                Ok(()) => {}
                Err(Input::SourceError(e)) => out.notice(Legacy::Admin(&e)),
                Err(Input::AcceptFailed { port, errno, err }) => out.notice(Legacy::Admin(
                    &format!("accept failed on TCP port {port} ({errno}: {err})"),
                )),
                Err(other @ (Input::Reload | Input::Stop)) => return tx.send(other).is_ok(),
                // Malformed frames and non-events: 1.2 said nothing about them.
                Err(_) => {}
            }
            true
        })
    };
    let started = if mode.is_connect() {
        start_connect(proto, &cfg, &out, &sources, &stop)
    } else {
        start_stealth(mode, &cfg, &out, &sources, &stop)
    };
    drop(sources);
    if let Err(code) = started {
        stop.stop();
        return code;
    }
    drop(tx);

    out.notice(Legacy::Listening);
    if let Err(e) = process::signal_ready() {
        out.notice(Legacy::Admin(&format!(
            "could not put the standard streams on /dev/null: {e}"
        )));
    }
    out.detached();
    event_loop(mode, &config_path, cfg, rx, &pipe, &ignore, &out);
    stop.stop();
    pipe.drain(DRAIN);
    out.shutdown();
    exit::OK
}

/// The open-file limit (soft), from /proc/self/limits.
fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// `-tcp`/`-udp`: one IPv4 socket per listed port.
fn start_connect(
    proto: Proto,
    cfg: &Config,
    out: &Out,
    tx: &capture::Sender,
    stop: &StopFlag,
) -> Result<(), i32> {
    let mut ports = listed(cfg, proto).clone();
    let mut skipped = Vec::new();
    if let Some(limit) = open_file_limit() {
        let room = limit.saturating_sub(SPARE_FDS) as usize;
        if ports.len() > room {
            out.notice(Legacy::Admin(&format!(
                "ERROR: {} ports but only {limit} open files allowed (ulimit -n); the highest ports are not bound",
                ports.len()
            )));
            skipped = ports.iter().skip(room).collect();
            for p in &skipped {
                ports.remove(*p);
            }
        }
    }
    let empty = PortSet::new();
    let (tcp, udp) = match proto {
        Proto::Tcp => (&ports, &empty),
        Proto::Udp => (&empty, &ports),
    };
    let (listeners, failures) = capture::connect::Listeners::bind(tcp, udp, true);
    let failed: std::collections::HashSet<u16> = failures
        .iter()
        .map(|f| f.port)
        .chain(skipped.iter().copied())
        .collect();
    // 1.2's order: each port's listen line, then its error if it failed
    for port in listed_in_order(cfg, proto) {
        out.notice(Legacy::ListenMode { proto, port });
        if failed.contains(&port) {
            out.notice(Legacy::CouldNotBind { proto, port });
        }
    }
    if listeners.bound().is_empty() {
        return Err(out.fatal(Legacy::CouldNotBindAny { proto }));
    }
    let (tx, stop) = (tx.clone(), stop.clone());
    std::thread::spawn(move || listeners.run(tx, stop));
    Ok(())
}

/// The ports a stealth mode watches, with 1.2's start-up lines.
fn stealth_ports(mode: LegacyMode, cfg: &Config, out: &Out) -> PortSet {
    let proto = mode.proto();
    if mode.is_advanced() {
        let (n, excludes) = match proto {
            Proto::Tcp => (cfg.advanced_ports_tcp, &cfg.advanced_exclude_tcp),
            Proto::Udp => (cfg.advanced_ports_udp, &cfg.advanced_exclude_udp),
        };
        let n = n.unwrap_or(1024);
        let mut set = cfg.advanced_set(proto, n);
        let busy = advanced::in_use_of(proto, &set);
        out.notice(Legacy::AdvancedFirst(u32::from(n)));
        let excluded = in_order(excludes);
        let key = match proto {
            Proto::Tcp => "ADVANCED_EXCLUDE_TCP",
            Proto::Udp => "ADVANCED_EXCLUDE_UDP",
        };
        if cfg.unquoted.contains(&key) {
            out.notice(Legacy::QuotesMissing(key));
        }
        if excluded.is_empty() {
            out.notice(Legacy::ManualExcludeNone);
        }
        for port in &excluded {
            out.notice(Legacy::ManualExclude(*port));
        }
        for port in &busy {
            set.remove(*port);
            out.notice(Legacy::AdvancedIgnored { proto, port: *port });
        }
        for port in excluded {
            out.notice(Legacy::AdvancedIgnored { proto, port });
        }
        set
    } else {
        let mut set = PortSet::new();
        for port in listed_in_order(cfg, proto) {
            out.notice(Legacy::StealthListenMode { proto, port });
            if advanced::in_use(proto, port) {
                out.notice(Legacy::PortInUse(port));
            } else {
                set.insert(port);
            }
        }
        set
    }
}

/// `-stcp`/`-sudp`/`-atcp`/`-audp`: pcap on every device but loopback.
fn start_stealth(
    mode: LegacyMode,
    cfg: &Config,
    out: &Out,
    tx: &capture::Sender,
    stop: &StopFlag,
) -> Result<(), i32> {
    let proto = mode.proto();
    if !mode.is_advanced() && listed(cfg, proto).is_empty() {
        return Err(out.fatal(Legacy::Admin(&format!(
            "ERROR: no usable {proto} port in {}. Shutting down.",
            match proto {
                Proto::Tcp => "TCP_PORTS",
                Proto::Udp => "UDP_PORTS",
            }
        ))));
    }
    let set = stealth_ports(mode, cfg, out);
    let ports = match proto {
        Proto::Tcp => Ports {
            tcp: set,
            udp: PortSet::new(),
        },
        Proto::Udp => Ports {
            tcp: PortSet::new(),
            udp: set,
        },
    };
    match capture::pcap::start(&Interfaces::AllNoLoopback, &ports, tx, stop) {
        Ok(started) => {
            for e in &started.failed {
                out.notice(Legacy::Admin(&e.to_string()));
            }
            if started.opened.is_empty() {
                out.notice(Legacy::Admin(
                    "no capture device is up yet; waiting for one to appear",
                ));
            }
            Ok(())
        }
        Err(e) => Err(out.fatal(Legacy::Admin(&format!("ERROR: {e}. Shutting down.")))),
    }
}

/// The hook run before each event and at each tick: a changed ignore file reaches the
/// engine and the blocklist; a changed blocked file (an admin deleted a line) reaches
/// the engine's block cache.
fn follow_files(ignore: Arc<Mutex<files::IgnoreWatch>>, out: Arc<Out>) -> pipeline::Hook {
    Box::new(move |pipe: &Pipeline| {
        let mut w = pipeline::lock(&ignore);
        for p in w.refresh(false) {
            out.notice(Legacy::Admin(&p));
        }
        if w.changed() {
            pipe.engine().set_ignore(w.engine_view());
            if let Some(b) = pipe.executor().blocklist() {
                pipeline::lock(&b).set_ignore(w.list().cloned().unwrap_or_default());
            }
        }
        drop(w);
        if let Some(set) = pipe.executor().poll_legacy_blocked() {
            pipe.engine().set_blocked(set);
        }
    })
}

/// SIGHUP, SIGTERM and the one-second tick, until SIGTERM/SIGINT.
fn event_loop(
    mode: LegacyMode,
    config_path: &Path,
    mut cfg: Config,
    rx: Receiver<Input>,
    pipe: &Pipeline,
    ignore: &Mutex<files::IgnoreWatch>,
    out: &Out,
) {
    let mut last_tick = std::time::Instant::now();
    loop {
        let Some(input) = crate::control::next_input(&rx, true, &mut last_tick, || pipe.tick())
        else {
            return;
        };
        match input {
            Input::Reload => cfg = reload(mode, config_path, cfg, pipe, ignore, out),
            Input::Stop => return,
            Input::SourceError(e) => out.notice(Legacy::Admin(&e)),
            _ => {}
        }
    }
}

/// SIGHUP: re-read the config and the ignore file and apply every key that can change
/// (a config that cannot be used leaves the old one in force); the keys that cannot
/// change are named.
fn reload(
    mode: LegacyMode,
    config_path: &Path,
    old: Config,
    pipe: &Pipeline,
    ignore: &Mutex<files::IgnoreWatch>,
    out: &Out,
) -> Config {
    let fail = |why: &str| {
        out.notice(Legacy::Admin(&format!(
            "ERROR: reload failed, keeping the old configuration: {why}"
        )));
    };
    let mut cfg = match load_config(config_path, mode) {
        Ok(l) => l.cfg,
        Err((_, e)) => {
            fail(&e.why());
            return old;
        }
    };
    for w in &cfg.warnings {
        out.notice(Legacy::Admin(w));
    }
    // BLOCKED_FILE holds the instance lock: it stays too.
    let mut kept = pipeline::kept_keys(&old, &cfg);
    if cfg.blocked_file != old.blocked_file {
        kept.push("BLOCKED_FILE");
    }
    pipeline::keep_fixed(&mut cfg, &old);
    cfg.blocked_file = old.blocked_file.clone();
    let history = if cfg.history_file != old.history_file {
        match cfg.history_file.as_ref().map(|p| files::open_history(p)) {
            Some(Ok(h)) => Some(h),
            Some(Err(e)) => {
                fail(&format!("cannot open the history file: {e}"));
                return old;
            }
            None => None,
        }
    } else {
        None
    };
    let mut ignore = pipeline::lock(ignore);
    if let Some(p) = &cfg.ignore_file {
        ignore.set_path(p);
    }
    for p in ignore.refresh(true) {
        out.notice(Legacy::Admin(&p));
    }
    ignore.changed();
    let list = ignore.list().cloned().unwrap_or_default();
    if let Err(why) = daemon::reload_blocking(&old, &cfg, &list, pipe, &out.logger()) {
        fail(&why);
        return old;
    }
    {
        let mut e = pipe.engine();
        e.reconfigure(pipeline::rules(&cfg, Policy::Legacy(mode), true));
        e.set_ignore(ignore.engine_view());
    }
    pipe.executor().reconfigure(Actions::of(&cfg), None);
    if let Some(h) = history {
        pipe.executor().set_history(h);
    }
    if !kept.is_empty() {
        out.notice(Legacy::Admin(&format!(
            "reload: {} cannot change while running; the old value stays until the next restart",
            kept.join(", ")
        )));
    }
    out.notice(Legacy::Admin("configuration and ignore file reloaded"));
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Result<Loaded, (Vec<String>, LoadError)> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("portsentry.conf");
        std::fs::write(&p, text).unwrap();
        load_config(&p, LegacyMode::Tcp)
    }

    const FILES: &str = "IGNORE_FILE=\"/i\"\nHISTORY_FILE=\"/h\"\nBLOCKED_FILE=\"/b\"\n";

    #[test]
    fn mandatory_keys() {
        assert!(cfg(&format!("{FILES}TCP_PORTS=\"1\"\n")).is_ok());
        assert!(matches!(
            cfg(FILES),
            Err((_, LoadError::NoPorts(Proto::Tcp)))
        ));
        assert!(matches!(
            cfg("TCP_PORTS=\"1\"\nHISTORY_FILE=\"/h\"\nBLOCKED_FILE=\"/b\"\n"),
            Err((_, LoadError::Mandatory("IGNORE_FILE")))
        ));
        // 1.2 looked for BLOCKED_FILE before HISTORY_FILE
        assert!(matches!(
            cfg("TCP_PORTS=\"1\"\nIGNORE_FILE=\"/i\"\n"),
            Err((_, LoadError::Mandatory("BLOCKED_FILE")))
        ));
        // advanced modes need no port list
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c");
        std::fs::write(&p, FILES).unwrap();
        assert!(load_config(&p, LegacyMode::Atcp).is_ok());
        assert!(matches!(
            load_config(&dir.path().join("missing"), LegacyMode::Atcp),
            Err((_, LoadError::Missing(_)))
        ));
    }

    /// Issue #14 item 6: what 1.2 could not read is skipped with its lines, in its
    /// order, and the defaults apply.
    #[test]
    fn unquoted_values_are_skipped_with_1_2s_lines() {
        let l = cfg(&format!(
            "{FILES}SCAN_TRIGGER=0\nBLOCK_TCP=1\nTCP_PORTS=\"1\"\nKILL_ROUTE=/sbin/route\nKILL_ROUTE=\"/x $TARGET$\"\n"
        ))
        .unwrap_or_else(|_| panic!("config refused"));
        assert_eq!(
            l.said,
            [
                "adminalert: Quotes missing from BLOCK_TCP token. Option skipped",
                "adminalert: Quotes missing from SCAN_TRIGGER token. Option skipped",
                "adminalert: ERROR: Could not read SCAN_TRIGGER option from config file. Disabling SCAN DETECTION TRIGGER",
                "adminalert: Quotes missing from KILL_ROUTE token. Option skipped",
            ]
        );
        assert_eq!(l.cfg.scan_trigger, 0);
        assert!(
            l.cfg.kill_route.is_none(),
            "the first line wins, even unquoted"
        );
        // an unquoted mandatory key stops the start, with both lines
        let Err((said, e)) =
            cfg("TCP_PORTS=\"1\"\nIGNORE_FILE=\"/i\"\nBLOCKED_FILE=/b\nSCAN_TRIGGER=\"1\"\n")
        else {
            panic!("accepted")
        };
        assert_eq!(
            said,
            ["adminalert: Quotes missing from BLOCKED_FILE token. Option skipped"]
        );
        assert!(matches!(e, LoadError::Mandatory("BLOCKED_FILE")));
        // our own keys are still checked
        assert!(matches!(
            cfg(&format!("{FILES}TCP_PORTS=\"1\"\nBLOCK_BACKEND=nft\n")),
            Err((_, LoadError::Broken(_)))
        ));
    }

    #[test]
    fn junk_port_items_are_skipped_with_a_warning() {
        let c = cfg(&format!("{FILES}TCP_PORTS=\"1,abc,70000,5-3,9\"\n"))
            .unwrap_or_else(|_| panic!("config refused"))
            .cfg;
        assert_eq!(c.tcp_ports.to_string(), "1,9");
        assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
    }

    #[test]
    fn open_file_limit_is_read() {
        if cfg!(target_os = "linux") {
            assert!(open_file_limit().is_some_and(|n| n > 0));
        }
    }
}
