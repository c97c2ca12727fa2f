//! From an event to its outcome: the rule engine of compat.md §5, in order.
//!
//! In: [`Event`]s (a classified probe with its time). Out: log lines, history lines, the
//! block cache and BLOCKED_FILE, and the configured actions (hosts.deny, legacy
//! commands, typed backends). The order per event: service check (stealth), ignore
//! list, SCAN_TRIGGER, local check, banner (connect), BLOCK_x, already blocked, actions,
//! then the scan line. It never reads packets and never parses config.

pub mod blocking;
pub mod command;
pub mod files;
pub mod hosts_deny;
pub mod resolve;
pub mod service;

use std::collections::HashSet;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::capture::Conn;
use crate::config::{Config, IgnoreList};
use crate::detect::Trigger;
use crate::logging::lines::{Flag, Line, Outcome, ScanLine};
use crate::logging::Logger;
use crate::model::scan::{IpOpts, ScanKind};
use crate::model::{BlockMode, Proto};
use crate::packet::Skip;

/// One detection event.
#[derive(Debug)]
pub struct Event {
    pub ts: SystemTime,
    pub proto: Proto,
    pub src: IpAddr,
    /// The address the probe was sent to (connect mode: the real local address).
    pub dst: IpAddr,
    pub port: u16,
    pub kind: ScanKind,
    pub ip_opts: IpOpts,
    /// Connect mode: the peer to answer with PORT_BANNER.
    pub conn: Option<Conn>,
}

/// Run-time switches from the command line.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub local_check: bool,
    pub service_check: bool,
    /// `$MODE$`: `stealth` or `connect`.
    pub mode_word: &'static str,
    /// `--replay`: print what would happen, run and write nothing.
    pub dry_run: bool,
}

/// Writes `data` to `path` atomically: temp file in the same directory, fsync, rename,
/// directory fsync.
pub fn atomic_write(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    let res = f
        .write_all(data)
        .and_then(|_| f.sync_all())
        .and_then(|_| std::fs::rename(&tmp, path));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Rate limit for malformed-packet lines: a few per minute, then a summary.
struct Malformed {
    window: Option<Instant>,
    shown: u32,
    suppressed: u64,
    total: u64,
}

const MALFORMED_PER_MINUTE: u32 = 5;

/// The per-event pipeline and its state.
pub struct Responder {
    cfg: Config,
    ignore: IgnoreList,
    log: Arc<Logger>,
    trigger: Trigger,
    blocked: HashSet<IpAddr>,
    blocked_file: Option<files::BlockedFile>,
    history: Option<files::AppendFile>,
    /// Stealth mode with the service check on only.
    service: Option<service::ServiceCheck>,
    settings: Settings,
    malformed: Malformed,
    resolver: resolve::Resolver,
    /// Typed backends and the block store, when BLOCK_BACKEND is set.
    blocking: Option<blocking::Blocking>,
    stamper: files::Stamper,
    line_buf: String,
}

/// Why the responder could not start.
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
    Blocking(#[from] blocking::StartError),
}

impl Responder {
    /// Opens HISTORY_FILE and BLOCKED_FILE (unless `settings.dry_run`) and loads the
    /// block cache.
    pub fn new(
        cfg: Config,
        ignore: IgnoreList,
        log: Arc<Logger>,
        settings: Settings,
    ) -> Result<Responder, StartError> {
        let mut blocked = HashSet::new();
        let mut blocked_file = None;
        let mut history = None;
        if !settings.dry_run {
            if let Some(p) = &cfg.history_file {
                history =
                    Some(
                        files::AppendFile::open(p).map_err(|source| StartError::History {
                            path: p.display().to_string(),
                            source,
                        })?,
                    );
            }
            if let Some(p) = &cfg.blocked_file {
                let (f, ips, note) =
                    files::BlockedFile::open(p).map_err(|source| StartError::Blocked {
                        path: p.display().to_string(),
                        source,
                    })?;
                if let Some(n) = note {
                    log.error(n);
                }
                blocked = ips;
                blocked_file = Some(f);
            }
        }
        let blocking = if cfg.block_backend.is_empty() || settings.dry_run {
            None
        } else {
            let b = blocking::Blocking::start(&cfg, log.clone(), blocking::unix_now())?;
            // BLOCKED_FILE is the 2.x view of the store.
            let active: HashSet<IpAddr> = b.store().active().map(|r| r.net.addr()).collect();
            if active != blocked {
                blocked = active;
                if let Some(f) = &mut blocked_file {
                    let ips: Vec<IpAddr> = blocked.iter().copied().collect();
                    if let Err(e) = f.rewrite(&ips) {
                        log.error(format!("cannot rewrite the blocked file: {e}"));
                    }
                }
            }
            Some(b)
        };
        Ok(Responder {
            blocking,
            stamper: files::Stamper::default(),
            line_buf: String::with_capacity(512),
            trigger: Trigger::new(cfg.scan_trigger, crate::detect::DEFAULT_CAP),
            cfg,
            ignore,
            log,
            blocked,
            blocked_file,
            history,
            service: (settings.service_check && settings.mode_word == "stealth")
                .then(|| service::ServiceCheck::new(Duration::from_secs(1))),
            settings,
            resolver: resolve::Resolver::new(Duration::from_millis(500)),
            malformed: Malformed {
                window: None,
                shown: 0,
                suppressed: 0,
                total: 0,
            },
        })
    }

    /// Applies a reloaded config and ignore list (SIGHUP).
    pub fn reload(&mut self, cfg: Config, ignore: IgnoreList) {
        if cfg.scan_trigger != self.cfg.scan_trigger {
            self.trigger.reset(cfg.scan_trigger);
        }
        self.cfg = cfg;
        self.ignore = ignore;
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Whether [`Responder::tick`] has work (expiry, reconcile).
    pub fn needs_tick(&self) -> bool {
        self.blocking.is_some()
    }

    /// Periodic work: expired blocks lifted (and KILL_ROUTE_REMOVE run), CLI changes
    /// followed, vanished firewall objects restored; the block cache and BLOCKED_FILE
    /// follow.
    pub fn tick(&mut self) {
        let Some(b) = &mut self.blocking else {
            return;
        };
        let ch = b.tick(blocking::unix_now());
        if ch.lifted.is_empty() && ch.added.is_empty() {
            return;
        }
        for ip in &ch.lifted {
            self.blocked.remove(ip);
            if let Some(t) = self.cfg.kill_route_remove.clone() {
                let cmd = t.render(*ip, 0, self.settings.mode_word);
                self.run_legacy(&cmd);
            }
        }
        self.blocked.extend(ch.added.iter().copied());
        if let Some(f) = &mut self.blocked_file {
            let ips: Vec<IpAddr> = self.blocked.iter().copied().collect();
            if let Err(e) = f.rewrite(&ips) {
                self.log
                    .error(format!("cannot rewrite the blocked file: {e}"));
            }
        }
    }

    /// Counts a malformed frame and logs it, rate-limited.
    pub fn malformed(&mut self, skip: Skip) {
        let m = &mut self.malformed;
        m.total += 1;
        let now = Instant::now();
        if m.window
            .is_none_or(|w| now.duration_since(w) >= Duration::from_secs(60))
        {
            if m.suppressed > 0 {
                self.log.error(format!(
                    "{} more malformed packets were not logged ({} in all)",
                    m.suppressed, m.total
                ));
            }
            m.window = Some(now);
            m.shown = 0;
            m.suppressed = 0;
        }
        if m.shown < MALFORMED_PER_MINUTE {
            m.shown += 1;
            self.log.error(skip);
        } else {
            m.suppressed += 1;
        }
    }

    /// At the end (shutdown, end of a replay): says how many malformed-packet lines the
    /// rate limit held back.
    pub fn finish(&mut self) {
        if self.malformed.suppressed > 0 {
            self.log.error(format!(
                "{} more malformed packets were not logged ({} in all)",
                self.malformed.suppressed, self.malformed.total
            ));
            self.malformed.suppressed = 0;
        }
    }

    fn scan_line(&mut self, ev: &Event, name: &str, outcome: Outcome) {
        use std::fmt::Write as _;
        let line = ScanLine {
            src: ev.src,
            name,
            proto: ev.proto,
            port: ev.port,
            kind: ev.kind,
            ip_opts: ev.ip_opts,
            outcome,
        };
        // One buffer, reused: `<timestamp> <scan line>`; stdout gets the part after the
        // timestamp.
        let mut buf = std::mem::take(&mut self.line_buf);
        buf.clear();
        if self.history.is_some() {
            self.stamper.write(ev.ts, &mut buf);
            buf.push(' ');
        }
        let start = buf.len();
        let _ = write!(buf, "{line}");
        self.log.notice(&buf[start..]);
        if let Some(h) = &mut self.history {
            if let Err(e) = h.write_line(&buf) {
                self.log
                    .error(format!("{}: cannot write: {e}", h.path().display()));
            }
        }
        self.line_buf = buf;
    }

    /// Handles one event (compat.md §5).
    pub fn handle(&mut self, mut ev: Event) {
        let service_running = match (&mut self.service, &ev.conn) {
            (Some(s), None) => s.is_running(ev.proto, ev.dst, ev.port),
            _ => false,
        };
        if service_running {
            self.log.notice(Line::ServiceRunning {
                ip: ev.src,
                port: ev.port,
            });
            return;
        }
        let name = if self.cfg.resolve_host {
            self.resolver.name(ev.src)
        } else {
            ev.src.to_string()
        };
        // 1. ignore list
        if self.ignore.contains(ev.src) {
            let file = self
                .cfg
                .ignore_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            self.log.verbose(Line::IgnoredHost {
                ip: ev.src,
                file: &file,
            });
            self.scan_line(
                &ev,
                &name,
                Outcome {
                    ignored: Flag::True,
                    triggered: Flag::Unset,
                    noblock: Flag::Unset,
                    blocked: Flag::Unset,
                },
            );
            return;
        }
        // 2. SCAN_TRIGGER
        let hit = self.trigger.hit(ev.src);
        if hit.cap_reached {
            self.log.error(format!(
                "adminalert: the SCAN_TRIGGER table is full ({} sources); the oldest are forgotten",
                crate::detect::DEFAULT_CAP
            ));
        }
        if !hit.triggered {
            self.scan_line(
                &ev,
                &name,
                Outcome {
                    ignored: Flag::False,
                    triggered: Flag::False,
                    noblock: Flag::Unset,
                    blocked: Flag::Unset,
                },
            );
            return;
        }
        // 3. local check
        if self.settings.local_check && ev.src == ev.dst {
            self.log.debug(Line::SameAddress {
                src: ev.src,
                dst: ev.dst,
            });
            self.scan_line(
                &ev,
                &name,
                Outcome {
                    ignored: Flag::True,
                    triggered: Flag::True,
                    noblock: Flag::True,
                    blocked: Flag::False,
                },
            );
            return;
        }
        // 4. banner (connect mode)
        if let (Some(conn), Some(banner)) = (ev.conn.take(), self.cfg.port_banner.as_ref()) {
            conn.answer(banner.as_bytes());
        }
        // 5. BLOCK_x = 0
        let mode = match ev.proto {
            Proto::Tcp => self.cfg.block_tcp,
            Proto::Udp => self.cfg.block_udp,
        };
        if mode == BlockMode::LogOnly {
            self.scan_line(
                &ev,
                &name,
                Outcome {
                    ignored: Flag::False,
                    triggered: Flag::True,
                    noblock: Flag::True,
                    blocked: Flag::False,
                },
            );
            return;
        }
        // 6. already blocked
        if self.blocked.contains(&ev.src) {
            self.log.notice(Line::AlreadyBlocked { ip: ev.src });
            self.scan_line(
                &ev,
                &name,
                Outcome {
                    ignored: Flag::False,
                    triggered: Flag::True,
                    noblock: Flag::False,
                    blocked: Flag::True,
                },
            );
            return;
        }
        // 7. act
        let ok = self.act(&ev, mode);
        if ok {
            self.blocked.insert(ev.src);
            if let Some(f) = &mut self.blocked_file {
                if let Err(e) = f.append(ev.src) {
                    self.log
                        .error(format!("cannot record the block of {}: {e}", ev.src));
                }
            }
        } else {
            self.log.notice(Line::DisposeError { ip: ev.src });
        }
        // 8. the scan line
        self.scan_line(
            &ev,
            &name,
            Outcome {
                ignored: Flag::False,
                triggered: Flag::True,
                noblock: Flag::False,
                blocked: Flag::from(ok),
            },
        );
    }

    fn run_cmd(&mut self, ev: &Event) -> bool {
        let Some(t) = self.cfg.kill_run_cmd.clone() else {
            return false;
        };
        let cmd = t.render(ev.src, ev.port, self.settings.mode_word);
        let ok = self.run_legacy(&cmd);
        if ok {
            self.log.notice(Line::ExternalCommand {
                ip: ev.src,
                cmd: &cmd,
            });
        }
        ok
    }

    fn run_legacy(&mut self, cmd: &str) -> bool {
        if self.settings.dry_run {
            return true;
        }
        match command::run(cmd, false) {
            Ok(_) => true,
            Err(e) => {
                self.log.error(format!("cannot run \"{cmd}\": {e}"));
                false
            }
        }
    }

    /// Runs the configured actions in 2.x's order; true if any succeeded.
    fn act(&mut self, ev: &Event, mode: BlockMode) -> bool {
        if mode == BlockMode::RunCmd {
            return self.run_cmd(ev);
        }
        let mut ok = false;
        if self.cfg.kill_run_cmd_first {
            ok |= self.run_cmd(ev);
        }
        if let Some(t) = self.cfg.legacy_hosts_deny().cloned() {
            let line = t.render(ev.src, ev.port, self.settings.mode_word);
            let res = if self.settings.dry_run {
                Ok(hosts_deny::Outcome::Added)
            } else {
                hosts_deny::add_line(&self.cfg.hosts_deny_file, &line)
            };
            match res {
                Ok(hosts_deny::Outcome::Added) => {
                    ok = true;
                    self.log.notice(Line::BlockedWrappers {
                        ip: ev.src,
                        line: &line,
                    });
                }
                Ok(hosts_deny::Outcome::AlreadyThere) => {
                    ok = true;
                    self.log.notice(Line::AlreadyInHostsDeny { ip: ev.src });
                }
                Err(e) => self.log.error(format!(
                    "{}: cannot add \"{line}\": {e}",
                    self.cfg.hosts_deny_file.display()
                )),
            }
        }
        if let Some(t) = self.cfg.kill_route.clone() {
            let cmd = t.render(ev.src, ev.port, self.settings.mode_word);
            if self.run_legacy(&cmd) {
                ok = true;
                self.log.notice(Line::BlockedRoute {
                    ip: ev.src,
                    cmd: &cmd,
                });
            }
        }
        if let Some(b) = &mut self.blocking {
            let reason = portsentry_blocker::Reason {
                protocol: ev.proto.to_string(),
                port: ev.port,
                scan: ev.kind.to_string(),
            };
            let now = ev
                .ts
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_else(|_| blocking::unix_now());
            ok |= b.block(ev.src, reason, now);
        } else if self.settings.dry_run && !self.cfg.block_backend.is_empty() {
            ok = true;
        }
        if !self.cfg.kill_run_cmd_first {
            ok |= self.run_cmd(ev);
        }
        ok
    }
}
