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
use crate::model::Interfaces;
use crate::model::LegacyMode;
use crate::model::{Dialect, PortItem, PortSet, Proto};
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

    /// A problem: syslog, and stderr while the parent still waits.
    pub fn problem(&self, line: impl Display) {
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
        self.problem(line);
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
    /// A line we cannot accept (a new key with a bad value, an over-long line, ...).
    Broken(String),
    /// A mandatory key is not set.
    Mandatory(&'static str),
}

impl LoadError {
    fn log(&self, out: &Out) {
        match self {
            LoadError::Missing(p) => {
                out.problem(Legacy::CannotOpenConfig(&p.display().to_string()));
                out.problem(Legacy::ConfigMissing);
            }
            LoadError::Broken(msg) => {
                out.problem(Legacy::Admin(msg));
                out.problem(Legacy::Corrupted);
            }
            LoadError::Mandatory(key) => {
                out.problem(Legacy::Admin(&format!("{key} is not set")));
                out.problem(Legacy::Corrupted);
            }
        }
    }
}

/// Loads a config with 1.2's rules and checks the keys 1.2 required for `mode`.
pub fn load_config(path: &Path, mode: LegacyMode) -> Result<Config, LoadError> {
    let cfg = match Config::load(path, Dialect::Legacy) {
        Ok(c) => c,
        Err(ConfigError::Read { .. }) => return Err(LoadError::Missing(path.to_path_buf())),
        Err(e) => return Err(LoadError::Broken(e.to_string())),
    };
    let mut need = vec!["IGNORE_FILE", "HISTORY_FILE", "BLOCKED_FILE"];
    if !mode.is_advanced() {
        need.push(match mode.proto() {
            Proto::Tcp => "TCP_PORTS",
            Proto::Udp => "UDP_PORTS",
        });
    }
    if let Some(key) = need.into_iter().find(|k| !cfg.lines.contains_key(k)) {
        return Err(LoadError::Mandatory(key));
    }
    Ok(cfg)
}

fn listed(cfg: &Config, proto: Proto) -> &PortSet {
    match proto {
        Proto::Tcp => &cfg.tcp_ports,
        Proto::Udp => &cfg.udp_ports,
    }
}

/// The daemon: everything after the detach.
fn run(mode: LegacyMode, path: &Path) -> i32 {
    let config_path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let begun = process::begin_child();
    let out = Arc::new(Out::new(Logger::legacy(Syslog::new(), false)));
    out.notice(Legacy::Starting(VERSION));
    if let Err(e) = begun {
        out.problem(Legacy::Admin(&format!(
            "could not start a new session or change to /: {e}"
        )));
    }
    let cfg = match load_config(&config_path, mode) {
        Ok(c) => c,
        Err(e) => {
            e.log(&out);
            out.shutdown();
            return exit::LEGACY_FAILURE;
        }
    };
    for w in &cfg.warnings {
        out.problem(Legacy::Admin(w));
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
    let facts: Arc<dyn HostFacts> = SystemFacts::start(!mode.is_connect(), true);
    let ignore_path = cfg.ignore_file.clone().unwrap_or_default();
    let mut ignore = files::IgnoreWatch::new(&ignore_path);
    for p in ignore.refresh(true) {
        out.problem(Legacy::Admin(&p));
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
            out.problem(Legacy::Admin(&format!(
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
    for port in listed(cfg, proto).iter() {
        if failed.contains(&port) {
            out.problem(Legacy::CouldNotBind { proto, port });
        } else {
            out.notice(Legacy::ListenMode { proto, port });
        }
    }
    if listeners.bound().is_empty() {
        return Err(out.fatal(Legacy::CouldNotBindAny { proto }));
    }
    let (tx, stop) = (tx.clone(), stop.clone());
    std::thread::spawn(move || listeners.run(tx, stop));
    Ok(())
}

/// The excluded ports of an advanced mode, in config order (ranges expanded, each once).
fn excluded_in_order(items: &[PortItem]) -> Vec<u16> {
    let mut seen = PortSet::new();
    let mut out = Vec::new();
    for i in items {
        for p in i.lo..=i.hi {
            if !seen.contains(p) {
                seen.insert(p);
                out.push(p);
            }
        }
    }
    out
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
        for port in &busy {
            set.remove(*port);
            out.notice(Legacy::AdvancedIgnored { proto, port: *port });
        }
        for port in excluded_in_order(excludes) {
            out.notice(Legacy::AdvancedIgnored { proto, port });
        }
        set
    } else {
        let mut set = PortSet::new();
        for port in listed(cfg, proto).iter() {
            if advanced::in_use(proto, port) {
                out.problem(Legacy::PortInUse(port));
            } else {
                out.notice(Legacy::StealthListenMode { proto, port });
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
                out.problem(Legacy::Admin(&e.to_string()));
            }
            if started.opened.is_empty() {
                out.problem(Legacy::Admin(
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
        Ok(c) => c,
        Err(e) => {
            let why = match e {
                LoadError::Missing(p) => format!("cannot read {}", p.display()),
                LoadError::Broken(m) => m,
                LoadError::Mandatory(k) => format!("{k} is not set"),
            };
            fail(&why);
            return old;
        }
    };
    for w in &cfg.warnings {
        out.notice(Legacy::Admin(w));
    }
    // BLOCKED_FILE holds the instance lock: it stays too.
    let mut kept = pipeline::kept_keys(&old, &cfg, pipeline::FIXED_KEYS);
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

    fn cfg(text: &str) -> Result<Config, LoadError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("portsentry.conf");
        std::fs::write(&p, text).unwrap();
        load_config(&p, LegacyMode::Tcp)
    }

    const FILES: &str = "IGNORE_FILE=\"/i\"\nHISTORY_FILE=\"/h\"\nBLOCKED_FILE=\"/b\"\n";

    #[test]
    fn mandatory_keys() {
        assert!(cfg(&format!("{FILES}TCP_PORTS=\"1\"\n")).is_ok());
        assert!(matches!(cfg(FILES), Err(LoadError::Mandatory("TCP_PORTS"))));
        assert!(matches!(
            cfg("TCP_PORTS=\"1\"\nHISTORY_FILE=\"/h\"\nBLOCKED_FILE=\"/b\"\n"),
            Err(LoadError::Mandatory("IGNORE_FILE"))
        ));
        // advanced modes need no port list
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c");
        std::fs::write(&p, FILES).unwrap();
        assert!(load_config(&p, LegacyMode::Atcp).is_ok());
        assert!(matches!(
            load_config(&dir.path().join("missing"), LegacyMode::Atcp),
            Err(LoadError::Missing(_))
        ));
    }

    #[test]
    fn junk_port_items_are_skipped_with_a_warning() {
        let c = cfg(&format!("{FILES}TCP_PORTS=\"1,abc,70000,5-3,9\"\n")).unwrap();
        assert_eq!(c.tcp_ports.to_string(), "1,9");
        assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
    }

    #[test]
    fn excludes_keep_config_order() {
        let items = vec![
            PortItem { lo: 139, hi: 139 },
            PortItem { lo: 113, hi: 113 },
            PortItem { lo: 5, hi: 7 },
            PortItem { lo: 6, hi: 6 },
        ];
        assert_eq!(excluded_in_order(&items), vec![139, 113, 5, 6, 7]);
    }

    #[test]
    fn open_file_limit_is_read() {
        if cfg!(target_os = "linux") {
            assert!(open_file_limit().is_some_and(|n| n > 0));
        }
    }
}
