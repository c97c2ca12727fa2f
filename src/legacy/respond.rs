//! The 1.2 event pipeline (compat.md §10.5–§10.7), one event at a time.
//!
//! In: [`Event`]s from the capture sources (already classified by the 2.x code). Out:
//! 1.2's syslog lines, the history and blocked-file lines, and the configured actions.
//! The order per event: IPv4 only → service check (stealth) → our own addresses →
//! ignore file → SCAN_TRIGGER → banner (connect) → event line → IP-options line →
//! already blocked? → actions → record. Ignored and below-trigger events log nothing,
//! and there is never a `Scan from:` line. Building blocks come from the 2.x pipeline
//! (`Trigger`, `ServiceCheck`, `hosts_deny::add_line`, `command::run`, `AppendFile`);
//! only the order, the lines and the success rules are 1.2's. Must not: read packets or
//! parse the config.

use std::collections::HashSet;
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use super::files::{Blocked, IgnoreWatch, Verdict};
use super::Out;
use crate::config::Config;
use crate::detect::Trigger;
use crate::logging::legacy::{history_line, Legacy};
use crate::model::scan::{IpOpts, ScanKind};
use crate::model::LegacyMode;
use crate::model::{BlockMode, Proto};
use crate::respond::files::AppendFile;
use crate::respond::resolve::Resolver;
use crate::respond::service::ServiceCheck;
use crate::respond::{command, hosts_deny, Event};

/// How long to wait for another portsentry process to finish its hosts.deny change.
const HOSTS_DENY_LOCK_WAIT: Duration = Duration::from_secs(5);
/// How often the list of this host's own addresses is refreshed.
const OWN_ADDRS_MAX_AGE: Duration = Duration::from_secs(5);

/// This host's own addresses: events from them are never acted on.
struct OwnAddrs {
    set: HashSet<IpAddr>,
    taken: Option<Instant>,
}

impl OwnAddrs {
    fn contains(&mut self, src: IpAddr, dst: IpAddr) -> bool {
        if src == dst || src.is_loopback() || src.is_unspecified() {
            return true;
        }
        if self.taken.is_none_or(|t| t.elapsed() >= OWN_ADDRS_MAX_AGE) {
            self.taken = Some(Instant::now());
            if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
                self.set = addrs
                    .filter_map(|a| {
                        let sa = a.address?;
                        if let Some(v4) = sa.as_sockaddr_in() {
                            return Some(IpAddr::V4(v4.ip()));
                        }
                        sa.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
                    })
                    .collect();
            }
        }
        self.set.contains(&src)
    }
}

/// The legacy pipeline and its state.
pub struct Responder {
    mode: LegacyMode,
    cfg: Config,
    out: Arc<Out>,
    trigger: Trigger,
    ignore: IgnoreWatch,
    blocked: Blocked,
    history: AppendFile,
    service: ServiceCheck,
    resolver: Resolver,
    own: OwnAddrs,
    table_full_said: bool,
    /// Typed backends and the block store, when BLOCK_BACKEND is set.
    blocking: Option<crate::respond::blocking::Blocking>,
}

impl Responder {
    /// `blocked` (locked and emptied) and `history` (open) come from set-up.
    pub fn new(
        mode: LegacyMode,
        cfg: Config,
        out: Arc<Out>,
        blocked: Blocked,
        history: AppendFile,
    ) -> Responder {
        let ignore_path = cfg.ignore_file.clone().unwrap_or_default();
        let mut r = Responder {
            mode,
            trigger: Trigger::new(cfg.scan_trigger, crate::detect::DEFAULT_CAP),
            ignore: IgnoreWatch::new(&ignore_path),
            cfg,
            out,
            blocked,
            history,
            service: ServiceCheck::new(Duration::from_secs(1)),
            resolver: Resolver::new(Duration::from_millis(500)),
            own: OwnAddrs {
                set: HashSet::new(),
                taken: None,
            },
            table_full_said: false,
            blocking: None,
        };
        r.refresh_ignore(true);
        r
    }

    /// Typed blocking (set once at start).
    pub fn set_blocking(&mut self, b: Option<crate::respond::blocking::Blocking>) {
        self.blocking = b;
    }

    /// Whether [`Responder::tick`] has work.
    pub fn needs_tick(&self) -> bool {
        self.blocking.is_some()
    }

    /// Periodic work of typed blocking: expired blocks are lifted from the backends and
    /// their lines from this mode's blocked file, so the next scan acts again.
    pub fn tick(&mut self) {
        let Some(b) = &mut self.blocking else {
            return;
        };
        let ch = b.tick(crate::respond::blocking::unix_now());
        for ip in ch.lifted {
            if let Err(e) = self.blocked.remove(ip) {
                self.out.notice(Legacy::Admin(&format!(
                    "ERROR: cannot update {}: {e}",
                    self.blocked.path().display()
                )));
            }
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    fn refresh_ignore(&mut self, force: bool) {
        for p in self.ignore.refresh(force) {
            self.out.problem(Legacy::Admin(&p));
        }
    }

    /// Applies a reloaded config (SIGHUP) and re-reads the ignore file. The port sets,
    /// the blocked file and the instance lock stay those of the start.
    pub fn reload(&mut self, cfg: Config) {
        if cfg.scan_trigger != self.cfg.scan_trigger {
            self.trigger.reset(cfg.scan_trigger);
        }
        if cfg.history_file != self.cfg.history_file {
            if let Some(p) = &cfg.history_file {
                match super::files::open_history(p) {
                    Ok(h) => self.history = h,
                    Err(e) => self.out.notice(Legacy::Admin(&format!(
                        "ERROR: cannot open history file {}: {e}; keeping {}",
                        p.display(),
                        self.history.path().display()
                    ))),
                }
            }
        }
        if cfg.blocked_file != self.cfg.blocked_file {
            self.out.notice(Legacy::Admin(&format!(
                "BLOCKED_FILE changed; {} stays in use until the next restart",
                self.blocked.path().display()
            )));
        }
        if let Some(p) = &cfg.ignore_file {
            self.ignore.set_path(p);
        }
        self.cfg = cfg;
        self.refresh_ignore(true);
    }

    /// Handles one event.
    pub fn handle(&mut self, mut ev: Event) {
        // 1.2 was IPv4 only.
        if !ev.src.is_ipv4() {
            return;
        }
        let connect = ev.conn.is_some();
        if !connect && self.service.is_running(ev.proto, ev.dst, ev.port) {
            return;
        }
        if self.own.contains(ev.src, ev.dst) {
            return;
        }
        self.refresh_ignore(false);
        match self.ignore.check(ev.src) {
            Verdict::Listed => return,
            Verdict::NoFile => self.out.notice(Legacy::NoIgnoreFile),
            Verdict::NotListed => {}
        }
        let hit = self.trigger.hit(ev.src);
        if hit.cap_reached && !self.table_full_said {
            self.table_full_said = true;
            self.out.notice(Legacy::Admin(&format!(
                "the SCAN_TRIGGER table is full ({} sources); the oldest are forgotten",
                crate::detect::DEFAULT_CAP
            )));
        }
        if !hit.triggered {
            return;
        }
        let name = if self.cfg.resolve_host {
            self.resolver.name(ev.src)
        } else {
            ev.src.to_string()
        };
        if let Some(conn) = ev.conn.take() {
            if let Some(banner) = &self.cfg.port_banner {
                conn.answer(banner.as_bytes());
            }
        }
        self.event_lines(&ev, &name, connect);
        if self.blocked.contains(ev.src) {
            if connect {
                self.out
                    .notice(Legacy::AlreadyBlockedConnect { ip: ev.src });
            } else {
                self.out.notice(Legacy::AlreadyBlockedStealth {
                    name: &name,
                    ip: ev.src,
                });
            }
            return;
        }
        if self.act(&ev) {
            self.record(&ev, &name);
        } else {
            self.out.notice(Legacy::CouldNotBlock {
                mode: self.mode,
                name: &name,
                ip: ev.src,
            });
        }
    }

    fn event_lines(&self, ev: &Event, name: &str, connect: bool) {
        let (ip, port) = (ev.src, ev.port);
        if connect {
            self.out.notice(Legacy::Connect {
                name,
                ip,
                proto: ev.proto,
                port,
            });
            return;
        }
        match (ev.proto, ev.kind) {
            (Proto::Udp, _) | (_, ScanKind::Udp) => {
                self.out.notice(Legacy::UdpScan { name, ip, port })
            }
            (Proto::Tcp, kind) => self.out.notice(Legacy::Stealth {
                kind,
                name,
                ip,
                port,
            }),
        }
        if ev.ip_opts == IpOpts::Set {
            self.out.notice(Legacy::IpOptions {
                name,
                ip,
                proto: ev.proto,
                port,
            });
        }
    }

    /// Writes the blocked-file and history lines of a host whose response succeeded.
    fn record(&mut self, ev: &Event, name: &str) {
        let line = history_line(ev.ts.into(), name, ev.src, ev.port, ev.proto);
        if let Err(e) = self.blocked.append(ev.src, &line) {
            self.out.notice(Legacy::Admin(&format!(
                "ERROR: cannot write blocked file {}: {e}",
                self.blocked.path().display()
            )));
        }
        if let Err(e) = self.history.write_line(&line) {
            self.out.notice(Legacy::Admin(&format!(
                "ERROR: cannot write history file {}: {e}",
                self.history.path().display()
            )));
        }
    }

    /// The response (§10.7). BLOCK_x=1: every configured action runs, in 1.2's order,
    /// even after one failed; any failure means "not blocked". BLOCK_x=2: KILL_RUN_CMD
    /// only. Anything else: log only, which counts as success (1.2 then records the host).
    fn act(&mut self, ev: &Event) -> bool {
        let block = match ev.proto {
            Proto::Tcp => self.cfg.block_tcp,
            Proto::Udp => self.cfg.block_udp,
        };
        match block {
            BlockMode::LogOnly => {
                self.out.notice(Legacy::IgnoringResponse(ev.proto));
                true
            }
            BlockMode::RunCmd => self.run_cmd(ev),
            BlockMode::Block => {
                let first = self.cfg.kill_run_cmd_first;
                let mut ok = true;
                if first {
                    ok &= self.run_cmd(ev);
                }
                ok &= self.hosts_deny(ev);
                ok &= self.route(ev);
                ok &= self.typed_backends(ev);
                if !first {
                    ok &= self.run_cmd(ev);
                }
                ok
            }
        }
    }

    /// Typed backends (BLOCK_BACKEND), right after the legacy route action in both
    /// KILL_RUN_CMD_FIRST orders: true when none is configured or the host is held;
    /// the blocking module logs its own `attackalert:` lines.
    fn typed_backends(&mut self, ev: &Event) -> bool {
        let Some(b) = &mut self.blocking else {
            return true;
        };
        let reason = portsentry_blocker::Reason {
            protocol: ev.proto.to_string(),
            port: ev.port,
            scan: ev.kind.to_string(),
        };
        b.block(ev.src, reason, crate::respond::blocking::unix_now())
    }

    fn hosts_deny(&mut self, ev: &Event) -> bool {
        let Some(t) = self.cfg.legacy_hosts_deny() else {
            return true;
        };
        let line = t.render(ev.src, ev.port, self.mode.word());
        match add_hosts_deny_locked(&self.cfg.hosts_deny_file, &line) {
            Ok(_) => {
                self.out.notice(Legacy::BlockedWrappers {
                    ip: ev.src,
                    line: &line,
                });
                true
            }
            Err(e) => {
                self.out.notice(Legacy::Admin(&format!(
                    "ERROR: cannot add \"{line}\" to {}: {e}",
                    self.cfg.hosts_deny_file.display()
                )));
                false
            }
        }
    }

    fn route(&mut self, ev: &Event) -> bool {
        let Some(t) = &self.cfg.kill_route else {
            return true;
        };
        let cmd = t.render(ev.src, ev.port, self.mode.word());
        run_logged(
            &self.out,
            &cmd,
            Legacy::BlockedRoute {
                ip: ev.src,
                cmd: &cmd,
            },
        )
    }

    fn run_cmd(&mut self, ev: &Event) -> bool {
        let Some(t) = &self.cfg.kill_run_cmd else {
            return true;
        };
        let cmd = t.render(ev.src, ev.port, self.mode.word());
        run_logged(
            &self.out,
            &cmd,
            Legacy::ExternalCommand {
                ip: ev.src,
                cmd: &cmd,
            },
        )
    }
}

/// Runs a legacy command with /dev/null as its stdio and the time limit of
/// [`command::run`]. A command that started counts as success (as in 1.2): `started` is
/// logged, then `adminalert: command exited with status %d: "%s"` if it failed.
fn run_logged(out: &Out, cmd: &str, started: Legacy<'_>) -> bool {
    match command::run(cmd, true) {
        Ok(status) => {
            out.notice(started);
            match status {
                Some(st) => {
                    if let Some(code) = failed_status(st) {
                        out.notice(Legacy::CommandStatus { status: code, cmd });
                    }
                }
                None => out.notice(Legacy::Admin(&format!(
                    "command did not end within {} seconds and was killed: \"{cmd}\"",
                    command::TIME_LIMIT.as_secs()
                ))),
            }
            true
        }
        Err(e) => {
            out.notice(Legacy::Admin(&format!(
                "ERROR: cannot run command \"{cmd}\": {e}"
            )));
            false
        }
    }
}

/// The status to report for a command that did not succeed: its exit code, or 128 plus
/// the signal that ended it (as a shell says).
fn failed_status(st: ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    if st.success() {
        return None;
    }
    Some(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)))
}

/// Adds `line` to hosts.deny under a lock on its directory, so that the `-atcp` and
/// `-audp` processes never lose each other's lines. An identical line counts as success.
pub fn add_hosts_deny_locked(path: &Path, line: &str) -> io::Result<hosts_deny::Outcome> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut dir_file = std::fs::File::open(dir)?;
    let start = Instant::now();
    let _lock = loop {
        match Flock::lock(dir_file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => break l,
            Err((f, nix::errno::Errno::EWOULDBLOCK)) if start.elapsed() < HOSTS_DENY_LOCK_WAIT => {
                dir_file = f;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err((_, e)) => return Err(io::Error::from(e)),
        }
    };
    hosts_deny::add_line(path, line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::Logger;
    use crate::model::Dialect;
    use std::sync::Mutex;
    use std::time::SystemTime;

    const SRC: &str = "198.19.50.1";
    const DST: &str = "198.19.50.2";

    struct Bed {
        dir: tempfile::TempDir,
        r: Responder,
        lines: Arc<Mutex<Vec<String>>>,
    }

    impl Bed {
        fn new(mode: LegacyMode, body: &str) -> Bed {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path().display();
            std::fs::write(dir.path().join("ignore"), "127.0.0.1\n").unwrap();
            let text = format!(
                "IGNORE_FILE=\"{d}/ignore\"\nHISTORY_FILE=\"{d}/history\"\nBLOCKED_FILE=\"{d}/blocked\"\nTCP_PORTS=\"1\"\n{body}"
            );
            let cfg =
                Config::parse(&dir.path().join("conf"), text.as_bytes(), Dialect::Legacy).unwrap();
            let (log, lines) = Logger::memory(false, false);
            let out = Arc::new(Out::new(log));
            out.detached();
            let blocked = Blocked::open(&super::super::files::blocked_path(
                &dir.path().join("blocked"),
                mode,
            ))
            .unwrap();
            let history = super::super::files::open_history(&dir.path().join("history")).unwrap();
            let r = Responder::new(mode, cfg, out, blocked, history);
            Bed { dir, r, lines }
        }

        /// The lines logged since the last call.
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.lines.lock().unwrap())
        }

        fn history(&self) -> Vec<String> {
            std::fs::read_to_string(self.dir.path().join("history"))
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    fn ev(kind: ScanKind, port: u16) -> Event {
        Event {
            ts: SystemTime::now(),
            proto: if kind == ScanKind::Udp {
                Proto::Udp
            } else {
                Proto::Tcp
            },
            src: SRC.parse().unwrap(),
            dst: DST.parse().unwrap(),
            port,
            kind,
            ip_opts: IpOpts::NotSet,
            conn: None,
        }
    }

    fn stealth(kind: &str, port: u16) -> String {
        format!("attackalert: {kind} from host: {SRC}/{SRC} to TCP port: {port}")
    }

    #[test]
    fn log_only_records_the_host_once_then_it_is_already_blocked() {
        let mut b = Bed::new(LegacyMode::Stcp, "BLOCK_TCP=\"0\"\n");
        b.r.handle(ev(ScanKind::Syn, 1));
        assert_eq!(
            b.take(),
            [
                stealth("TCP SYN/Normal scan", 1),
                "attackalert: Ignoring TCP response per configuration file setting.".to_string()
            ]
        );
        b.r.handle(ev(ScanKind::Null, 2));
        assert_eq!(
            b.take(),
            [
                stealth(" TCP NULL scan", 2),
                format!("attackalert: Host: {SRC}/{SRC} is already blocked Ignoring")
            ]
        );
        let h = b.history();
        assert_eq!(h.len(), 1);
        assert!(
            h[0].ends_with(&format!(" Host: {SRC}/{SRC} Port: 1 TCP Blocked")),
            "{h:?}"
        );
        let blocked = std::fs::read_to_string(b.dir.path().join("blocked.stcp")).unwrap();
        assert_eq!(blocked, format!("{}\n", h[0]));
    }

    #[test]
    fn ignored_below_trigger_own_and_ipv6_sources_log_nothing() {
        let mut b = Bed::new(LegacyMode::Atcp, "SCAN_TRIGGER=\"3\"\n");
        std::fs::write(b.dir.path().join("ignore"), format!("{SRC}/32\n")).unwrap();
        b.r.handle(ev(ScanKind::Syn, 1));
        assert!(b.take().is_empty());
        // the ignore file is followed; SCAN_TRIGGER=3 fires at the third event
        std::fs::write(b.dir.path().join("ignore"), "# nobody\n").unwrap();
        b.r.handle(ev(ScanKind::Syn, 1));
        b.r.handle(ev(ScanKind::Fin, 2));
        assert!(b.take().is_empty());
        b.r.handle(ev(ScanKind::Xmas, 3));
        assert_eq!(b.take()[0], stealth("TCP XMAS scan", 3));
        let mut own = ev(ScanKind::Syn, 1);
        own.src = "127.0.0.1".parse().unwrap();
        b.r.handle(own);
        let mut v6 = ev(ScanKind::Syn, 1);
        v6.src = "fd00:5e5e::1".parse().unwrap();
        b.r.handle(v6);
        assert!(b.take().is_empty());
    }

    #[test]
    fn missing_ignore_file_ip_options_and_udp_lines() {
        let mut b = Bed::new(LegacyMode::Audp, "");
        std::fs::remove_file(b.dir.path().join("ignore")).unwrap();
        let mut e = ev(ScanKind::Udp, 7);
        e.ip_opts = IpOpts::Set;
        b.r.handle(e);
        assert_eq!(
            b.take(),
            [
                "attackalert: ERROR: cannot open ignore file. Blocking host anyway.".to_string(),
                format!("attackalert: UDP scan from host: {SRC}/{SRC} to UDP port: 7"),
                format!("attackalert: Packet from host: {SRC}/{SRC} to UDP port: 7 has IP options set (detection avoidance technique)."),
                "attackalert: Ignoring UDP response per configuration file setting.".to_string(),
            ]
        );
        assert!(b.history()[0].ends_with(" Port: 7 UDP Blocked"));
    }

    #[test]
    fn a_failed_action_is_not_recorded_and_the_next_event_tries_again() {
        let mut b = Bed::new(
            LegacyMode::Stcp,
            "BLOCK_TCP=\"1\"\nKILL_HOSTS_DENY=\"ALL: $TARGET$\"\nHOSTS_DENY_FILE=\"/nonexistent-dir/hosts.deny\"\nKILL_RUN_CMD=\"true $TARGET$ $PORT$ $MODE$\"\n",
        );
        for port in [1, 2] {
            b.r.handle(ev(ScanKind::Syn, port));
            let l = b.take();
            assert_eq!(l.len(), 4, "{l:?}");
            assert_eq!(l[0], stealth("TCP SYN/Normal scan", port));
            assert!(
                l[1].starts_with("adminalert: ERROR: cannot add \"ALL: 198.19.50.1\" to /nonexistent-dir/hosts.deny: "),
                "{l:?}"
            );
            assert_eq!(
                l[2],
                format!("attackalert: External command run for host: {SRC} using command: \"true {SRC} {port} stcp\"")
            );
            assert_eq!(
                l[3],
                format!("attackalert: ERROR: Could not block host {SRC}/{SRC} !!")
            );
        }
        assert!(b.history().is_empty());
    }

    #[test]
    fn block_2_runs_only_the_command_and_reports_its_status() {
        let mut b = Bed::new(
            LegacyMode::Atcp,
            "BLOCK_TCP=\"2\"\nKILL_HOSTS_DENY=\"ALL: $TARGET$\"\nKILL_RUN_CMD=\"exit 4\"\n",
        );
        b.r.handle(ev(ScanKind::Fin, 5));
        assert_eq!(
            b.take(),
            [
                stealth("TCP FIN scan", 5),
                format!(
                    "attackalert: External command run for host: {SRC} using command: \"exit 4\""
                ),
                "adminalert: command exited with status 4: \"exit 4\"".to_string(),
            ]
        );
        assert_eq!(
            b.history().len(),
            1,
            "a command that started counts as success"
        );
    }

    #[test]
    fn connect_events_get_the_banner_also_when_already_blocked() {
        use std::io::Read;
        let mut b = Bed::new(LegacyMode::Tcp, "PORT_BANNER=\"go away\"\n");
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        for want in [
            "attackalert: Ignoring TCP response per configuration file setting.".to_string(),
            format!("attackalert: Host: {SRC} is already blocked. Ignoring"),
        ] {
            let mut client = std::net::TcpStream::connect(addr).unwrap();
            let (server, _) = l.accept().unwrap();
            let mut e = ev(ScanKind::Connect, 11);
            e.conn = Some(crate::capture::Conn::Tcp(server));
            b.r.handle(e);
            let mut got = String::new();
            client.read_to_string(&mut got).unwrap();
            assert_eq!(got, "go away");
            assert_eq!(
                b.take(),
                [
                    format!("attackalert: Connect from host: {SRC}/{SRC} to TCP port: 11"),
                    want
                ]
            );
        }
    }

    #[test]
    fn status_of_failed_commands() {
        let ok = command::run("exit 0", true).unwrap().unwrap();
        assert_eq!(failed_status(ok), None);
        let three = command::run("exit 3", true).unwrap().unwrap();
        assert_eq!(failed_status(three), Some(3));
        let killed = command::run("kill -9 $$", true).unwrap().unwrap();
        assert_eq!(failed_status(killed), Some(137));
    }

    #[test]
    fn hosts_deny_under_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hosts.deny");
        let l = "ALL: 198.18.0.1 : DENY";
        assert_eq!(
            add_hosts_deny_locked(&p, l).unwrap(),
            hosts_deny::Outcome::Added
        );
        assert_eq!(
            add_hosts_deny_locked(&p, l).unwrap(),
            hosts_deny::Outcome::AlreadyThere
        );
        assert_eq!(std::fs::read_to_string(&p).unwrap(), format!("{l}\n"));
        // 30 writers at once lose nothing
        let threads: Vec<_> = (0..30)
            .map(|i| {
                let p = p.clone();
                std::thread::spawn(move || {
                    add_hosts_deny_locked(&p, &format!("ALL: 198.18.1.{i}")).unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 31);
    }
}
