//! Wiring of the daemon: sources, the engine thread, signals, `--replay`.
//!
//! In: the checked command line, the validated config and ignore list. Out: an exit
//! code. Sources run in their own threads and send [`Input`]s over one bounded channel;
//! this thread owns the [`Responder`] and handles every event, signal and error in order.

use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::capture::{self, Input, Ports, StopFlag};
use crate::cli::{Method, Options};
use crate::config::{Config, IgnoreList};
use crate::exit;
use crate::logging::lines::Line;
use crate::logging::Logger;
use crate::model::scan::{IpOpts, ScanKind};
use crate::model::{Dialect, Mode, Proto};
use crate::respond::{Event, Responder, Settings};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Depth of the control channel (signals): small, its slots are allocated up front.
const QUEUE: usize = 64;

fn ports_of(cfg: &Config, mode: Mode) -> Ports {
    Ports {
        tcp: cfg.watched(Proto::Tcp, mode),
        udp: cfg.watched(Proto::Udp, mode),
    }
}

fn settings(o: &Options, dry_run: bool) -> Settings {
    Settings {
        local_check: o.local_check,
        service_check: o.service_check && !dry_run,
        mode_word: match o.mode {
            Mode::Stealth => "stealth",
            Mode::Connect => "connect",
        },
        dry_run,
    }
}

/// Turns a source's message into an engine event (None for non-events).
pub fn event_of(input: Input) -> Result<Event, Input> {
    match input {
        Input::Packet { ts, summary: s } => {
            let kind = match s.proto {
                Proto::Tcp => match ScanKind::classify_tcp(s.tcp_flags) {
                    Some(k) => k,
                    None => return Err(Input::Packet { ts, summary: s }),
                },
                Proto::Udp => ScanKind::Udp,
            };
            Ok(Event {
                ts,
                proto: s.proto,
                src: portsentry_blocker::canonical(s.src),
                dst: portsentry_blocker::canonical(s.dst),
                port: s.dport,
                kind,
                ip_opts: s.ip_opts,
                conn: None,
            })
        }
        Input::Connect {
            ts,
            proto,
            src,
            local,
            port,
            conn,
        } => Ok(Event {
            ts,
            proto,
            src: portsentry_blocker::canonical(src),
            dst: portsentry_blocker::canonical(local),
            port,
            kind: ScanKind::Connect,
            ip_opts: IpOpts::Unknown,
            conn: Some(conn),
        }),
        other => Err(other),
    }
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
        if let Err(e) = nix::unistd::daemon(false, false) {
            eprintln!("portsentry: cannot detach: {e}");
            return exit::FAILURE;
        }
    }
    let log = Arc::new(Logger::new(o.stdout, o.syslog, o.verbose, o.debug));
    log.notice(Line::Starting(VERSION));
    let responder = match Responder::new(cfg.clone(), ignore, log.clone(), settings(&o, false)) {
        Ok(r) => Arc::new(Mutex::new(r)),
        Err(e @ crate::respond::StartError::Blocking(_)) => {
            log.error(&e);
            return exit::UNAVAILABLE;
        }
        Err(e) => {
            log.error(&e);
            return exit::FAILURE;
        }
    };
    // Sources run the rule engine in their own thread (one lock, no hand-off between
    // threads per packet); signals and ticks come to this thread over `control`.
    let (control, control_rx) = sync_channel::<Input>(QUEUE);
    let sink = {
        let (r, log, control) = (responder.clone(), log.clone(), control.clone());
        capture::Sender::inline(move |input| {
            match event_of(input) {
                Ok(ev) => lock(&r).handle(ev),
                Err(Input::Malformed(skip)) => lock(&r).malformed(skip),
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
        log.error(&msg);
        return exit::UNAVAILABLE;
    }
    drop(sink);
    if let Err(e) = start_signals(control.clone()) {
        log.error(format!("cannot install signal handlers: {e}"));
        return exit::SOFTWARE;
    }
    drop(control);
    log.notice(Line::Listening);
    control_loop(&o, control_rx, &responder, &log);
    lock(&responder).finish();
    log.notice(Line::ShuttingDown);
    stop.stop();
    exit::OK
}

/// The responder, even if a thread panicked while holding it (its state stays usable).
fn lock(r: &Mutex<Responder>) -> MutexGuard<'_, Responder> {
    r.lock().unwrap_or_else(|p| p.into_inner())
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
            let started = start_pcap(&o.interfaces, ports, tx, stop).map_err(|e| e.to_string())?;
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

/// What [`start_pcap`] started: the devices capturing now, and the devices whose
/// capture could not be opened (the supervisor retries them).
pub struct PcapStart {
    pub opened: Vec<capture::pcap::Device>,
    pub failed: Vec<capture::pcap::CaptureError>,
}

/// Opens a pcap capture on every selected device and starts the supervisor that follows
/// devices appearing and going away. Shared by the 2.x daemon and legacy mode; the
/// caller logs. Fails only when the devices cannot be listed.
pub fn start_pcap(
    sel: &crate::model::Interfaces,
    ports: &Ports,
    tx: &capture::Sender,
    stop: &StopFlag,
) -> Result<PcapStart, capture::pcap::CaptureError> {
    let devices = capture::pcap::select_devices(sel)?;
    let mut started = PcapStart {
        opened: Vec::new(),
        failed: Vec::new(),
    };
    let mut running = Vec::new();
    for d in devices {
        match capture::pcap::open(d.clone(), ports) {
            Ok(open) => {
                let flag = StopFlag::default();
                open.spawn(ports.clone(), tx.clone(), flag.clone());
                started.opened.push(d.clone());
                running.push((d, flag));
            }
            Err(e) => started.failed.push(e),
        }
    }
    let (sel, ports, tx, stop) = (sel.clone(), ports.clone(), tx.clone(), stop.clone());
    std::thread::spawn(move || {
        capture::pcap::supervise(sel, ports, tx, stop, running, Duration::from_secs(5))
    });
    Ok(started)
}

/// SIGTERM and SIGINT become [`Input::Stop`], SIGHUP [`Input::Reload`], on `tx`.
pub fn start_signals(tx: SyncSender<Input>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    std::thread::spawn(move || {
        for sig in signals.forever() {
            let msg = if sig == SIGHUP {
                Input::Reload
            } else {
                Input::Stop
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
    });
    Ok(())
}

fn reload(o: &Options, log: &Logger) -> Option<(Config, IgnoreList)> {
    let mut cfg = match Config::load(&o.config, Dialect::V2) {
        Ok(c) => c,
        Err(e) => {
            log.error(format!("reload failed, keeping the old config: {e}"));
            return None;
        }
    };
    if let Some(b) = &o.block_backend {
        cfg.block_backend = b.clone();
    }
    if let Err(e) = cfg.validate(o.mode) {
        log.error(format!("reload failed, keeping the old config: {e}"));
        return None;
    }
    match cfg.load_ignore() {
        Ok((ignore, _)) => Some((cfg, ignore)),
        Err(e) => {
            log.error(format!("reload failed, keeping the old config: {e}"));
            None
        }
    }
}

/// Signals and ticks, until SIGTERM/SIGINT.
fn control_loop(o: &Options, rx: Receiver<Input>, r: &Mutex<Responder>, log: &Logger) {
    let ticking = lock(r).needs_tick();
    let mut last_tick = std::time::Instant::now();
    while let Some(input) = next_input(&rx, ticking, &mut last_tick, || lock(r).tick()) {
        match input {
            Input::Reload => {
                if let Some((cfg, ignore)) = reload(o, log) {
                    let mut r = lock(r);
                    let old = ports_of(r.config(), o.mode);
                    let new = ports_of(&cfg, o.mode);
                    if old.tcp != new.tcp || old.udp != new.udp {
                        log.error(
                            "reload: the port lists changed; they take effect at the next restart",
                        );
                    }
                    r.reload(cfg, ignore);
                    log.notice("Configuration and ignore file reloaded");
                }
            }
            Input::Stop => return,
            _ => {}
        }
    }
}

/// How often ticks (expiry, reconcile) run while typed blocking is on.
const TICK: Duration = Duration::from_secs(1);

/// The next input; with `ticking`, runs `tick` once a second in between (an idle
/// daemon without typed blocking sleeps until a packet or a signal arrives). `None` when
/// every sender is gone.
pub fn next_input(
    rx: &Receiver<Input>,
    ticking: bool,
    last_tick: &mut std::time::Instant,
    mut tick: impl FnMut(),
) -> Option<Input> {
    if !ticking {
        return rx.recv().ok();
    }
    loop {
        if last_tick.elapsed() >= TICK {
            tick();
            *last_tick = std::time::Instant::now();
        }
        match rx.recv_timeout(TICK.saturating_sub(last_tick.elapsed())) {
            Ok(i) => return Some(i),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return None,
        }
    }
}

/// `--replay FILE`: the same pipeline over a recorded capture, packet times as the clock;
/// prints what it would log, runs and writes nothing.
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
    let mut r = match Responder::new(cfg, ignore, log, settings(o, true)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return exit::FAILURE;
        }
    };
    while let Some((ts, res)) = rp.next_packet() {
        match ports.input(res, || ts).map(event_of) {
            Some(Ok(ev)) => r.handle(ev),
            Some(Err(Input::Malformed(skip))) => r.malformed(skip),
            _ => {}
        }
    }
    r.finish();
    exit::OK
}
