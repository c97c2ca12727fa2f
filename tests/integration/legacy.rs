//! Portsentry 1.2 legacy mode with real parts (issue #10): the daemon runs detached in the
//! target namespace of a [`Bed`], under `unshare -m` with a private `/dev/log` (a Unix
//! datagram socket this test binds, mounted over `/dev/log` inside that mount namespace
//! only), and nmap or small python clients probe it from the scanner namespace. The
//! exact syslog lines, the history and blocked files, hosts.deny, the recorded commands,
//! fail2ban's shipped filter and Debian's own init script are checked. Root only;
//! without root each test prints why it skips. Everything (namespaces, daemons, helper
//! processes, mounts) goes away on drop, also when a test fails.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::netns::{Bed, SCANNER4, TARGET4};
use crate::util::{bin, is_root};

pub(crate) const PYTHON: &str = "/usr/bin/python3";
const STARTING: &str = concat!(
    "adminalert: PortSentry ",
    env!("CARGO_PKG_VERSION"),
    " is starting."
);
pub(crate) const LISTENING: &str = "adminalert: PortSentry is now active and listening.";
const SECURITY_DOWN: &str = "securityalert: PortSentry is shutting down";
pub(crate) const ADMIN_DOWN: &str = "adminalert: PortSentry is shutting down";

fn can_run(test: &str) -> bool {
    if !is_root(test) {
        return false;
    }
    if !Path::new(PYTHON).exists() {
        eprintln!("SKIP {test}: needs {PYTHON} for the test's clients and listeners");
        return false;
    }
    true
}

/// One syslog datagram: priority, PID, message.
#[derive(Debug, Clone)]
pub(crate) struct Msg {
    pub(crate) pri: u32,
    pub(crate) pid: u32,
    pub(crate) text: String,
}

fn parse_msg(raw: &str) -> Msg {
    let bad = || Msg {
        pri: 0,
        pid: 0,
        text: raw.to_string(),
    };
    let Some(rest) = raw.strip_prefix('<') else {
        return bad();
    };
    let Some((pri, rest)) = rest.split_once('>') else {
        return bad();
    };
    let Some(i) = rest.find(" portsentry[") else {
        return bad();
    };
    let rest = &rest[i + " portsentry[".len()..];
    let Some((pid, text)) = rest.split_once("]: ") else {
        return bad();
    };
    Msg {
        pri: pri.parse().unwrap_or(0),
        pid: pid.parse().unwrap_or(0),
        text: text.trim_end_matches('\n').to_string(),
    }
}

/// The private `/dev/log`: a datagram socket in a temp dir, and the overlay top layer
/// that gives `/dev` a `log` entry to mount it on.
pub(crate) struct Sink {
    dir: tempfile::TempDir,
    msgs: Arc<Mutex<Vec<Msg>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sink {
    pub(crate) fn new() -> Sink {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("devtop")).unwrap();
        std::fs::write(dir.path().join("devtop/log"), b"").unwrap();
        let sock = UnixDatagram::bind(dir.path().join("sock")).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let msgs = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (msgs.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while !s.load(Ordering::SeqCst) {
                if let Ok(n) = sock.recv(&mut buf) {
                    let raw = String::from_utf8_lossy(&buf[..n]).into_owned();
                    m.lock().unwrap().push(parse_msg(&raw));
                }
            }
        });
        Sink {
            dir,
            msgs,
            stop,
            thread: Some(thread),
        }
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    fn devtop(&self) -> PathBuf {
        self.dir.path().join("devtop")
    }

    pub(crate) fn all(&self) -> Vec<Msg> {
        self.msgs.lock().unwrap().clone()
    }

    /// The lines of one process.
    fn of(&self, pid: u32) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|m| m.pid == pid)
            .map(|m| m.text)
            .collect()
    }

    /// The distinct PIDs, in order of their first line.
    fn pids(&self) -> Vec<u32> {
        let mut out = Vec::new();
        for m in self.all() {
            if !out.contains(&m.pid) {
                out.push(m.pid);
            }
        }
        out
    }

    pub(crate) fn wait_for(&self, what: &str, pred: impl Fn(&[Msg]) -> bool) {
        let start = Instant::now();
        loop {
            if pred(&self.all()) {
                return;
            }
            if start.elapsed() > Duration::from_secs(15) {
                panic!("timed out waiting for {what}; syslog:\n{}", self.dump());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for `n` lines of `pid` after the first `from`, then a little longer to see
    /// that no more come; returns those lines.
    fn lines_after(&self, pid: u32, from: usize, n: usize) -> Vec<String> {
        self.wait_for(&format!("{n} lines of {pid} after line {from}"), |m| {
            m.iter().filter(|x| x.pid == pid).count() >= from + n
        });
        std::thread::sleep(Duration::from_millis(400));
        let got: Vec<String> = self.of(pid).into_iter().skip(from).collect();
        assert_eq!(got.len(), n, "lines of {pid}:\n{}", got.join("\n"));
        got
    }

    pub(crate) fn dump(&self) -> String {
        self.all()
            .iter()
            .map(|m| format!("<{}> [{}] {}", m.pri, m.pid, m.text))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every line is daemon.notice, has our header, and none is a 2.x scan line.
    fn check_dialect(&self) {
        for m in self.all() {
            assert_eq!(m.pri, 29, "not daemon.notice: {m:?}");
            assert!(m.pid != 0, "not a portsentry syslog line: {m:?}");
            assert!(
                !m.text.contains("Scan from:"),
                "a 2.x line in legacy mode: {m:?}"
            );
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The shell prologue that gives a fresh mount namespace the sink as `/dev/log`.
pub(crate) fn private_dev_log(sink: &Sink) -> String {
    format!(
        "mount -t overlay overlay -o lowerdir={}:/dev /dev && mount --bind {} /dev/log",
        sink.devtop().display(),
        sink.sock().display()
    )
}

/// What the portsentry parent did.
struct Run {
    code: Option<i32>,
    stderr: String,
}

/// Runs `portsentry ARGS` in `ns` under `unshare -m` with the sink as `/dev/log` (after
/// the shell snippet `setup`, if any) and waits for the parent, which exits once the
/// daemon is listening or has failed.
fn start_in(ns: &str, sink: &Sink, setup: &str, args: &[&str]) -> Run {
    let bin = bin();
    let mut script = private_dev_log(sink);
    if !setup.is_empty() {
        script.push_str(" && ");
        script.push_str(setup);
    }
    script.push_str(" && exec \"$0\" \"$@\"");
    let o = Command::new("timeout")
        .args(["-k", "2", "30", "ip", "netns", "exec", ns, "unshare", "-m"])
        .args(["sh", "-c", &script])
        .arg(&bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run portsentry");
    Run {
        code: o.status.code(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A detached daemon, killed on drop if it is still there.
struct Daemon {
    pid: u32,
}

pub(crate) fn alive(pid: u32) -> bool {
    // A daemon reparented to a PID 1 that does not reap stays a zombie: that is gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

pub(crate) fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

impl Daemon {
    /// The daemon that just said it is listening on `sink`.
    fn listening(sink: &Sink) -> Daemon {
        sink.wait_for("the readiness line", |m| {
            m.iter().any(|x| x.text == LISTENING)
        });
        let pid = sink
            .all()
            .iter()
            .rev()
            .find(|m| m.text == LISTENING)
            .map(|m| m.pid)
            .unwrap();
        assert!(alive(pid), "daemon {pid} is not running");
        Daemon { pid }
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid as i32), sig);
    }

    /// SIGTERM: the shutdown pair, and the process goes away.
    fn terminate(self, sink: &Sink) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        sink.wait_for("the shutdown pair", |m| {
            m.iter().any(|x| x.pid == self.pid && x.text == ADMIN_DOWN)
        });
        let l = sink.of(self.pid);
        assert_eq!(&l[l.len() - 2..], [SECURITY_DOWN, ADMIN_DOWN]);
        let start = Instant::now();
        while alive(self.pid) {
            assert!(start.elapsed() < Duration::from_secs(2), "still running");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if alive(self.pid) && cmdline(self.pid).contains("portsentry") {
            self.signal(nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// A python helper running in a namespace (a listener, ...), killed on drop.
pub(crate) struct Helper(Child);

impl Helper {
    /// Starts `code`, which must print `ready` once set up.
    fn start(ns: &str, code: &str) -> Helper {
        let mut c = Command::new("ip")
            .args(["netns", "exec", ns, PYTHON, "-c", code])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        if let Some(out) = c.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        assert_eq!(line.trim(), "ready", "helper did not start: {code}");
        Helper(c)
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP listener on `0.0.0.0:port` in `ns`.
pub(crate) fn tcp_listener(ns: &str, port: u16) -> Helper {
    Helper::start(
        ns,
        &format!(
            "import socket,sys,time\ns=socket.socket()\ns.bind(('0.0.0.0',{port}))\ns.listen()\nprint('ready',flush=True)\ntime.sleep(120)"
        ),
    )
}

/// Runs a python snippet in `ns` and returns its stdout.
pub(crate) fn py(bed: &Bed, ns: &str, code: &str) -> String {
    let o = bed.exec(ns, &[PYTHON, "-c", code], Duration::from_secs(10));
    assert!(
        o.status.success(),
        "python failed: {}\n{code}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Connects from the scanner to `port` and returns what the daemon sent before closing.
fn tcp_banner(bed: &Bed, port: u16) -> String {
    py(
        bed,
        &bed.scanner,
        &format!(
            "import socket\ns=socket.create_connection(('{TARGET4}',{port}),3)\ns.settimeout(3)\nb=b''\nwhile True:\n  d=s.recv(100)\n  if not d: break\n  b+=d\nprint(b.decode())"
        ),
    )
}

/// Sends an empty datagram from the scanner and returns the reply ("" if none).
fn udp_banner(bed: &Bed, port: u16) -> String {
    py(
        bed,
        &bed.scanner,
        &format!(
            "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.settimeout(0.5)\ns.sendto(b'',('{TARGET4}',{port}))\ntry:\n  print(s.recvfrom(100)[0].decode())\nexcept OSError:\n  print('')"
        ),
    )
}

/// Writes a legacy config into `dir` (history, blocked and ignore files there too).
fn legacy_config(dir: &Path, body: &str) -> String {
    let d = dir.display();
    legacy_config_files(
        dir,
        &format!("{d}/portsentry.history"),
        &format!("{d}/portsentry.blocked"),
        body,
    )
}

/// [`legacy_config`] with the history and blocked paths given (1.2: the first
/// occurrence of a key wins, so they cannot be overridden further down). A
/// `SCAN_TRIGGER="0"` goes last (1.2 logs a line when the key is missing), so the body's
/// own wins.
fn legacy_config_files(dir: &Path, history: &str, blocked: &str, body: &str) -> String {
    let p = dir.join("portsentry.conf");
    let text = format!(
        "# a Portsentry 1.2 config\nIGNORE_FILE=\"{d}/portsentry.ignore\"\nHISTORY_FILE=\"{history}\"\nBLOCKED_FILE=\"{blocked}\"\n{body}SCAN_TRIGGER=\"0\"\n",
        d = dir.display()
    );
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// Checks one 1.2 history line: epoch, the same moment in local time, host, port, proto.
fn check_history_line(line: &str, port: u16, proto: &str) {
    use chrono::TimeZone;
    let (epoch, rest) = line.split_once(" - ").expect(line);
    let epoch: i64 = epoch.parse().expect(line);
    let when = chrono::Local.timestamp_opt(epoch, 0).unwrap();
    assert_eq!(
        rest,
        format!(
            "{} Host: {SCANNER4}/{SCANNER4} Port: {port} {proto} Blocked",
            when.format("%m/%d/%Y %H:%M:%S")
        )
    );
    let now = chrono::Local::now().timestamp();
    assert!((now - epoch).abs() < 300, "{line}");
}

/// fail2ban's shipped filter over a history file: every line matched, dates from the epoch.
fn fail2ban_matches_every_line(history: &Path) {
    let filter = Path::new("/etc/fail2ban/filter.d/portsentry.conf");
    if !filter.exists() {
        eprintln!("SKIP fail2ban check: {} is not installed", filter.display());
        return;
    }
    let n = read(history).lines().count();
    assert!(n > 0);
    let o = Command::new("timeout")
        .args(["60", "fail2ban-regex"])
        .arg(history)
        .arg(filter)
        .output()
        .expect("run fail2ban-regex");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains(&format!(
            "Lines: {n} lines, 0 ignored, {n} matched, 0 missed"
        )),
        "{out}"
    );
    assert!(out.contains(&format!("[{n}] {{^LN-BEG}}Epoch")), "{out}");
}

fn attack(kind: &str, port: u16) -> String {
    format!("attackalert: {kind} from host: {SCANNER4}/{SCANNER4} to TCP port: {port}")
}

const MANUAL: &str = "adminalert: Advanced mode will manually exclude port: ";

const ALREADY_STEALTH: &str =
    "attackalert: Host: 198.18.0.1/198.18.0.1 is already blocked Ignoring";
const ALREADY_CONNECT: &str = "attackalert: Host: 198.18.0.1 is already blocked. Ignoring";

#[test]
fn stcp_every_scan_type_in_use_port_history_and_fail2ban() {
    if !can_run("stcp_every_scan_type_in_use_port_history_and_fail2ban") {
        return;
    }
    let bed = Bed::new();
    let dir = tempfile::tempdir().unwrap();
    let conf = legacy_config(
        dir.path(),
        "TCP_PORTS=\"1,11,15\"\nBLOCK_TCP=\"0\"\nSCAN_TRIGGER=\"0\"\nRESOLVE_HOST = \"0\"\n",
    );
    std::fs::write(
        dir.path().join("portsentry.ignore"),
        "127.0.0.1/32\n0.0.0.0\n",
    )
    .unwrap();
    let history = dir.path().join("portsentry.history");
    std::fs::write(&history, "kept from before\n").unwrap();
    let _busy = tcp_listener(&bed.target, 15);
    let sink = Sink::new();
    let r = start_in(&bed.target, &sink, "", &["-stcp", "-c", &conf]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stderr, sink.dump());
    let d = Daemon::listening(&sink);
    assert_eq!(
        cmdline(d.pid),
        format!("{} -stcp -c {conf}", bin().display())
    );
    assert_eq!(
        sink.of(d.pid),
        [
            STARTING,
            "adminalert: Going into stealth listen mode on TCP port: 1",
            "adminalert: Going into stealth listen mode on TCP port: 11",
            // issue #14 item 3: the listen line first, as 1.2
            "adminalert: Going into stealth listen mode on TCP port: 15",
            "adminalert: ERROR: Socket 15 is in use and will not be monitored. Attempting to continue",
            LISTENING,
        ]
    );
    // the blocked file is the mode's, truncated; the history file is kept and appended
    let blocked = dir.path().join("portsentry.blocked.stcp");
    assert_eq!(read(&blocked), "");
    assert_eq!(
        std::fs::metadata(&blocked).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // a second instance of the same mode refuses to start
    let r2 = start_in(&bed.target, &sink, "", &["-stcp", "-c", &conf]);
    assert_eq!(r2.code, Some(255));
    let busy = "adminalert: ERROR: another instance is running in stcp mode. Shutting down.";
    assert!(r2.stderr.contains(busy), "{}", r2.stderr);
    sink.wait_for("the second instance's shutdown pair", |m| {
        m.iter().any(|x| x.pid != d.pid && x.text == ADMIN_DOWN)
    });
    let second = *sink.pids().last().unwrap();
    assert_ne!(second, d.pid);
    assert_eq!(sink.of(second), [STARTING, busy, SECURITY_DOWN, ADMIN_DOWN]);
    assert!(alive(d.pid));

    let mut from = 6;
    for (flag, kind, then) in [
        (
            "-sS",
            "TCP SYN/Normal scan",
            "attackalert: Ignoring TCP response per configuration file setting.",
        ),
        ("-sF", "TCP FIN scan", ALREADY_STEALTH),
        ("-sN", " TCP NULL scan", ALREADY_STEALTH),
        ("-sX", "TCP XMAS scan", ALREADY_STEALTH),
    ] {
        // 2 is not listed and 15 is in use: only port 1 is an event
        bed.nmap(&[flag, "-p", "1,2,15", TARGET4]);
        let got = sink.lines_after(d.pid, from, 2);
        assert_eq!(got, [attack(kind, 1), then.to_string()], "{flag}");
        from += 2;
    }
    let h = read(&history);
    let lines: Vec<&str> = h.lines().collect();
    assert_eq!(lines.len(), 2, "{h}");
    assert_eq!(lines[0], "kept from before");
    check_history_line(lines[1], 1, "TCP");
    assert_eq!(read(&blocked), format!("{}\n", lines[1]));
    d.terminate(&sink);
    sink.check_dialect();
    // fail2ban's filter over the 1.2 lines only
    let only = dir.path().join("only-1.2-lines");
    std::fs::write(&only, format!("{}\n", lines[1])).unwrap();
    fail2ban_matches_every_line(&only);
}

#[test]
fn atcp_advanced_set_trigger_hosts_deny_unblock_and_service_check() {
    if !can_run("atcp_advanced_set_trigger_hosts_deny_unblock_and_service_check") {
        return;
    }
    let bed = Bed::new();
    let dir = tempfile::tempdir().unwrap();
    let deny = dir.path().join("hosts.deny");
    std::fs::write(&deny, "# local rules\n").unwrap();
    let rec = recording_script(dir.path(), 0);
    let conf = legacy_config(
        dir.path(),
        &format!(
            "TCP_PORTS=\"1\"\nADVANCED_PORTS_TCP=\"40\"\nADVANCED_EXCLUDE_TCP=\"33,31\"\nBLOCK_TCP=\"1\"\nSCAN_TRIGGER=\"2\"\nKILL_HOSTS_DENY=\"ALL: $TARGET$ : DENY\"\nHOSTS_DENY_FILE=\"{}\"\nKILL_RUN_CMD=\"{} run $TARGET$ $MODE$\"\nUNKNOWN_1_2_KEY=\"x\"\nSCAN_TRIGGER=\"9\"\n",
            deny.display(),
            rec.display()
        ),
    );
    std::fs::write(dir.path().join("portsentry.ignore"), "127.0.0.1\n").unwrap();
    // 22 has a listener; 30 only a connection in TIME_WAIT, which does not count
    let _ssh = tcp_listener(&bed.target, 22);
    py(
        &bed,
        &bed.target,
        &format!("import socket,time\nl=socket.socket()\nl.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\nl.bind(('{TARGET4}',30))\nl.listen()\nc=socket.create_connection(('{TARGET4}',30))\na,_=l.accept()\na.close()\ntime.sleep(0.1)\nc.close()\nl.close()"),
    );
    let ss = bed.exec(
        &bed.target,
        &["ss", "-tan", "sport", "= :30"],
        Duration::from_secs(5),
    );
    assert!(
        String::from_utf8_lossy(&ss.stdout).contains("TIME-WAIT"),
        "{}",
        String::from_utf8_lossy(&ss.stdout)
    );
    let sink = Sink::new();
    let r = start_in(&bed.target, &sink, "", &["-atcp", "-c", &conf]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stderr, sink.dump());
    let d = Daemon::listening(&sink);
    let ignored = |p: u16| {
        format!("adminalert: Advanced Stealth scan detection mode activated. Ignored TCP port: {p}")
    };
    assert_eq!(
        sink.of(d.pid),
        [
            STARTING.to_string(),
            "adminalert: Advanced mode will monitor first 40 ports".to_string(),
            "adminalert: Advanced mode will manually exclude port: 33 ".to_string(),
            "adminalert: Advanced mode will manually exclude port: 31 ".to_string(),
            ignored(22),
            ignored(33),
            ignored(31),
            LISTENING.to_string(),
        ]
    );
    // SCAN_TRIGGER=2 (the first occurrence wins): of two events the second is logged.
    // 22 is in use, 31 and 33 are excluded, 40 is beyond the set: silent.
    bed.nmap(&["-sS", "-p", "22,30,31,33,39,40", TARGET4]);
    let got = sink.lines_after(d.pid, 8, 3);
    let wrappers = "attackalert: Host 198.18.0.1 has been blocked via wrappers with string: \"ALL: 198.18.0.1 : DENY\"";
    let ran = format!(
        "attackalert: External command run for host: 198.18.0.1 using command: \"{} run 198.18.0.1 atcp\"",
        rec.display()
    );
    assert!(
        got[0] == attack("TCP SYN/Normal scan", 30) || got[0] == attack("TCP SYN/Normal scan", 39),
        "{got:?}"
    );
    assert_eq!(got[1..], [wrappers.to_string(), ran.clone()]);
    assert_eq!(read(&deny), "# local rules\nALL: 198.18.0.1 : DENY\n");
    // a repeat from the blocked host
    bed.nmap(&["-sF", "-p", "30", TARGET4]);
    assert_eq!(
        sink.lines_after(d.pid, 11, 2),
        [attack("TCP FIN scan", 30), ALREADY_STEALTH.to_string()]
    );
    // a service started after start-up: the set stays frozen, and the service check
    // asks the kernel (issue #14 item 5): no wait needed
    let _late = tcp_listener(&bed.target, 35);
    bed.nmap(&["-sS", "-p", "36", TARGET4]);
    assert_eq!(
        sink.lines_after(d.pid, 13, 2),
        [
            attack("TCP SYN/Normal scan", 36),
            ALREADY_STEALTH.to_string()
        ]
    );
    bed.nmap(&["-sS", "-p", "35,37", TARGET4]);
    assert_eq!(
        sink.lines_after(d.pid, 15, 2),
        [
            attack("TCP SYN/Normal scan", 37),
            ALREADY_STEALTH.to_string()
        ]
    );
    // deleting the host's line from the blocked file (as an editor does) unblocks it;
    // the identical hosts.deny line counts as success
    let blocked = dir.path().join("portsentry.blocked.atcp");
    let text = read(&blocked);
    assert_eq!(text.lines().count(), 1, "{text}");
    let tmp = dir.path().join("edited");
    std::fs::write(&tmp, "").unwrap();
    std::fs::rename(&tmp, &blocked).unwrap();
    bed.nmap(&["-sX", "-p", "39", TARGET4]);
    assert_eq!(
        sink.lines_after(d.pid, 17, 3),
        [attack("TCP XMAS scan", 39), wrappers.to_string(), ran]
    );
    // the command ran with /dev/null as stdio and without any of our sockets (pcap's
    // included)
    let io = "io=/dev/null /dev/null /dev/null  sockets=0";
    assert_eq!(
        read(&dir.path().join("record")),
        format!("run 198.18.0.1 atcp  deny=2 {io}\nrun 198.18.0.1 atcp  deny=2 {io}\n")
    );
    assert_eq!(read(&deny), "# local rules\nALL: 198.18.0.1 : DENY\n");
    let h = read(&dir.path().join("portsentry.history"));
    let lines: Vec<&str> = h.lines().collect();
    assert_eq!(lines.len(), 2, "{h}");
    check_history_line(lines[1], 39, "TCP");
    assert_eq!(read(&blocked), format!("{}\n", lines[1]));
    d.terminate(&sink);
    sink.check_dialect();
}

#[test]
fn connect_modes_banner_ignore_file_reload_and_missing_ignore_file() {
    if !can_run("connect_modes_banner_ignore_file_reload_and_missing_ignore_file") {
        return;
    }
    let bed = Bed::new();
    let dir = tempfile::tempdir().unwrap();
    let body = |banner: &str| {
        format!("TCP_PORTS=\"1,11,79\"\nUDP_PORTS=\"7,9\"\nBLOCK_TCP=\"0\"\nBLOCK_UDP=\"0\"\nPORT_BANNER=\"{banner}\"\n")
    };
    let conf = legacy_config(dir.path(), &body("BANNER-1"));
    let ignore = dir.path().join("portsentry.ignore");
    std::fs::write(&ignore, format!("# the scanner\r\n{SCANNER4}\r\n")).unwrap();
    let _busy = tcp_listener(&bed.target, 79);
    let sink = Sink::new();
    let r = start_in(&bed.target, &sink, "", &["-tcp", "-c", &conf]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stderr, sink.dump());
    let bind_err = "adminalert: ERROR: could not bind TCP socket: 79. Attempting to continue";
    // issue #14 item 4: syslog only, as 1.2 (stderr is for fatal errors)
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    let d = Daemon::listening(&sink);
    assert_eq!(
        sink.of(d.pid),
        [
            STARTING,
            "adminalert: Going into listen mode on TCP port: 1",
            "adminalert: Going into listen mode on TCP port: 11",
            // issue #14 item 3: the listen line first, then the error
            "adminalert: Going into listen mode on TCP port: 79",
            bind_err,
            LISTENING,
        ]
    );
    // an ignored source gets nothing, not even the banner
    assert_eq!(tcp_banner(&bed, 11), "");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.of(d.pid).len(), 6, "{}", sink.dump());
    // the ignore file is re-read when it changes
    std::fs::write(&ignore, "127.0.0.1\n").unwrap();
    assert_eq!(tcp_banner(&bed, 11), "BANNER-1");
    let connect =
        |p: u16| format!("attackalert: Connect from host: {SCANNER4}/{SCANNER4} to TCP port: {p}");
    assert_eq!(
        sink.lines_after(d.pid, 6, 2),
        [
            connect(11),
            "attackalert: Ignoring TCP response per configuration file setting.".to_string()
        ]
    );
    // an already-blocked host gets the banner again
    assert_eq!(tcp_banner(&bed, 1), "BANNER-1");
    assert_eq!(
        sink.lines_after(d.pid, 8, 2),
        [connect(1), ALREADY_CONNECT.to_string()]
    );
    // SIGHUP reloads the config
    legacy_config(dir.path(), &body("BANNER-2"));
    d.signal(nix::sys::signal::Signal::SIGHUP);
    assert_eq!(
        sink.lines_after(d.pid, 10, 1),
        ["adminalert: configuration and ignore file reloaded"]
    );
    assert_eq!(tcp_banner(&bed, 11), "BANNER-2");
    assert_eq!(
        sink.lines_after(d.pid, 11, 2),
        [connect(11), ALREADY_CONNECT.to_string()]
    );
    let h = read(&dir.path().join("portsentry.history"));
    assert_eq!(h.lines().count(), 1, "{h}");
    check_history_line(h.lines().next().unwrap(), 11, "TCP");

    // -udp next to it, with its own blocked file and no ignore file at all
    std::fs::remove_file(&ignore).unwrap();
    let usink = Sink::new();
    let r = start_in(&bed.target, &usink, "", &["-udp", "-c", &conf]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stderr, usink.dump());
    let u = Daemon::listening(&usink);
    assert_eq!(
        usink.of(u.pid),
        [
            STARTING,
            "adminalert: Going into listen mode on UDP port: 7",
            "adminalert: Going into listen mode on UDP port: 9",
            LISTENING,
        ]
    );
    assert_eq!(udp_banner(&bed, 7), "BANNER-2");
    let no_ignore = "attackalert: ERROR: cannot open ignore file. Blocking host anyway.";
    let uconnect =
        |p: u16| format!("attackalert: Connect from host: {SCANNER4}/{SCANNER4} to UDP port: {p}");
    assert_eq!(
        usink.lines_after(u.pid, 4, 3),
        [
            no_ignore.to_string(),
            uconnect(7),
            "attackalert: Ignoring UDP response per configuration file setting.".to_string()
        ]
    );
    assert_eq!(udp_banner(&bed, 9), "BANNER-2");
    assert_eq!(
        usink.lines_after(u.pid, 7, 3),
        [
            no_ignore.to_string(),
            uconnect(9),
            ALREADY_CONNECT.to_string()
        ]
    );
    assert_eq!(udp_banner(&bed, 8), "", "an unmonitored port");
    let h = read(&dir.path().join("portsentry.history"));
    assert_eq!(h.lines().count(), 2, "{h}");
    check_history_line(h.lines().nth(1).unwrap(), 7, "UDP");
    assert!(read(&dir.path().join("portsentry.blocked.udp")).contains("Port: 7 UDP Blocked"));
    assert!(read(&dir.path().join("portsentry.blocked.tcp")).contains("Port: 11 TCP Blocked"));
    u.terminate(&usink);
    d.terminate(&sink);
    sink.check_dialect();
    usink.check_dialect();
}

/// A command that records its arguments, how many lines hosts.deny had when it ran, and
/// what its standard streams and other descriptors were; `run` exits `run_status`.
fn recording_script(dir: &Path, run_status: u8) -> PathBuf {
    let p = dir.join("record.sh");
    let text = format!(
        "#!/bin/sh\nn=$(grep -c . {d}/hosts.deny 2>/dev/null)\nio=$(readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2 | tr '\\n' ' ')\nsocks=$(ls -l /proc/$$/fd | grep -c socket)\necho \"$1 $2 $3 $4 deny=${{n:-0}} io=$io sockets=$socks\" >> {d}/record\n[ \"$1\" = run ] && exit {run_status}\nexit 0\n",
        d = dir.display()
    );
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn actions_in_1_2_order_kill_run_cmd_first_and_failures() {
    if !can_run("actions_in_1_2_order_kill_run_cmd_first_and_failures") {
        return;
    }
    let bed = Bed::new();
    for first in [0, 1] {
        let dir = tempfile::tempdir().unwrap();
        let rec = recording_script(dir.path(), 3);
        let conf = legacy_config(
            dir.path(),
            &format!(
                "TCP_PORTS=\"11\"\nBLOCK_TCP=\"1\"\nKILL_HOSTS_DENY=\"ALL: $TARGET$ : DENY\"\nHOSTS_DENY_FILE=\"{d}/hosts.deny\"\nKILL_ROUTE=\"{r} route $TARGET$ $PORT$ $MODE$\"\nKILL_RUN_CMD=\"{r} run $TARGET$ $PORT$ $MODE$\"\nKILL_RUN_CMD_FIRST=\"{first}\"\n",
                d = dir.path().display(),
                r = rec.display()
            ),
        );
        std::fs::write(dir.path().join("portsentry.ignore"), "").unwrap();
        let sink = Sink::new();
        let r = start_in(&bed.target, &sink, "", &["-tcp", "-c", &conf]);
        assert_eq!(r.code, Some(0), "{}\n{}", r.stderr, sink.dump());
        let d = Daemon::listening(&sink);
        assert_eq!(tcp_banner(&bed, 11), "");
        let route = format!("{} route 198.18.0.1 11 tcp", rec.display());
        let run = format!("{} run 198.18.0.1 11 tcp", rec.display());
        let wrappers = "attackalert: Host 198.18.0.1 has been blocked via wrappers with string: \"ALL: 198.18.0.1 : DENY\"".to_string();
        let routed = format!("attackalert: Host 198.18.0.1 has been blocked via dropped route using command: \"{route}\"");
        let ran = format!(
            "attackalert: External command run for host: 198.18.0.1 using command: \"{run}\""
        );
        let status = format!("adminalert: command exited with status 3: \"{run}\"");
        let event =
            "attackalert: Connect from host: 198.18.0.1/198.18.0.1 to TCP port: 11".to_string();
        let want = if first == 0 {
            vec![event.clone(), wrappers, routed, ran, status]
        } else {
            vec![event.clone(), ran, status, wrappers, routed]
        };
        assert_eq!(
            sink.lines_after(d.pid, 3, 5),
            want,
            "KILL_RUN_CMD_FIRST={first}"
        );
        let io = "io=/dev/null /dev/null /dev/null  sockets=0";
        let want_rec = if first == 0 {
            format!("route 198.18.0.1 11 tcp deny=1 {io}\nrun 198.18.0.1 11 tcp deny=1 {io}\n")
        } else {
            format!("run 198.18.0.1 11 tcp deny=0 {io}\nroute 198.18.0.1 11 tcp deny=1 {io}\n")
        };
        assert_eq!(read(&dir.path().join("record")), want_rec);
        // blocked: recorded once; the next connect is a repeat and runs nothing
        assert_eq!(tcp_banner(&bed, 11), "");
        assert_eq!(
            sink.lines_after(d.pid, 8, 2),
            [event.clone(), ALREADY_CONNECT.to_string()]
        );
        assert_eq!(read(&dir.path().join("record")).lines().count(), 2);
        assert_eq!(
            read(&dir.path().join("portsentry.history")).lines().count(),
            1
        );
        d.terminate(&sink);
        sink.check_dialect();
    }

    // every action runs after one failed, and a failure means "not blocked"
    let dir = tempfile::tempdir().unwrap();
    let rec = recording_script(dir.path(), 3);
    std::fs::write(dir.path().join("real.deny"), "").unwrap();
    // a link anyone could have planted: in a sticky world-writable directory
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::os::unix::fs::symlink(dir.path().join("real.deny"), shared.join("hosts.deny")).unwrap();
    let conf = legacy_config(
        dir.path(),
        &format!(
            "UDP_PORTS=\"9\"\nBLOCK_UDP=\"1\"\nKILL_HOSTS_DENY=\"ALL: $TARGET$\"\nHOSTS_DENY_FILE=\"{d}/shared/hosts.deny\"\nKILL_RUN_CMD=\"{r} run $TARGET$ $PORT$ $MODE$\"\n",
            d = dir.path().display(),
            r = rec.display()
        ),
    );
    std::fs::write(dir.path().join("portsentry.ignore"), "").unwrap();
    let sink = Sink::new();
    let r = start_in(&bed.target, &sink, "", &["-udp", "-c", &conf]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stderr, sink.dump());
    let d = Daemon::listening(&sink);
    let run = format!("{} run 198.18.0.1 9 udp", rec.display());
    for from in [3, 8] {
        udp_banner(&bed, 9);
        let got = sink.lines_after(d.pid, from, 5);
        assert_eq!(
            got[0],
            "attackalert: Connect from host: 198.18.0.1/198.18.0.1 to UDP port: 9"
        );
        assert!(
            got[1].starts_with(&format!(
                "adminalert: ERROR: cannot add \"ALL: 198.18.0.1\" to {}/shared/hosts.deny: ",
                dir.path().display()
            )) && got[1].contains("symbolic link"),
            "{got:?}"
        );
        assert_eq!(
            got[2],
            format!(
                "attackalert: External command run for host: 198.18.0.1 using command: \"{run}\""
            )
        );
        assert_eq!(
            got[3],
            format!("adminalert: command exited with status 3: \"{run}\"")
        );
        assert_eq!(
            got[4],
            "attackalert: ERROR: Could not block host 198.18.0.1 !!"
        );
    }
    assert_eq!(read(&dir.path().join("portsentry.history")), "");
    assert_eq!(read(&dir.path().join("portsentry.blocked.udp")), "");
    assert_eq!(read(&dir.path().join("real.deny")), "");
    d.terminate(&sink);
    sink.check_dialect();
}

#[test]
fn bad_input_gives_the_stated_lines_and_exit_codes() {
    if !can_run("bad_input_gives_the_stated_lines_and_exit_codes") {
        return;
    }
    let bed = Bed::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let down = [SECURITY_DOWN, ADMIN_DOWN];
    // Runs a failing start; returns the syslog lines and stderr.
    let fails = |setup: &str, args: &[&str]| -> (Vec<String>, String) {
        let sink = Sink::new();
        let r = start_in(&bed.target, &sink, setup, args);
        assert_eq!(r.code, Some(255), "{args:?}: {}\n{}", r.stderr, sink.dump());
        sink.wait_for("the shutdown pair", |m| {
            m.iter().any(|x| x.text == ADMIN_DOWN)
        });
        sink.check_dialect();
        let pid = sink.pids()[0];
        (sink.of(pid), r.stderr)
    };

    // no config file at all
    let missing = format!("{d}/missing.conf");
    let (l, err) = fails("", &["-atcp", "-c", &missing]);
    let open = format!("adminalert: Cannot open config file: {missing}. Exiting");
    let gone = "adminalert: ERROR: Configuration files are missing/corrupted. Shutting down.";
    assert_eq!(l, [STARTING, &open, gone, down[0], down[1]]);
    assert!(err.contains(&open) && err.contains(gone), "{err}");

    // a mandatory key missing
    let conf = format!("{d}/no-history.conf");
    std::fs::write(
        &conf,
        format!("TCP_PORTS=\"1\"\nIGNORE_FILE=\"{d}/i\"\nBLOCKED_FILE=\"{d}/b\"\n"),
    )
    .unwrap();
    let (l, err) = fails("", &["-stcp", "-c", &conf]);
    let corrupt =
        "adminalert: ERROR: Your config file is corrupted/missing mandatory option! Shutting down.";
    // issue #14 item 8: 1.2's lines, and the mode's blocked file created (empty)
    assert_eq!(
        l,
        [
            STARTING,
            "adminalert: ERROR: Could not read SCAN_TRIGGER option from config file. Disabling SCAN DETECTION TRIGGER",
            "InitConfig: Cannot retrieve HISTORY_FILE option! Aborting",
            corrupt,
            down[0],
            down[1]
        ]
    );
    assert!(err.contains(corrupt), "{err}");
    assert_eq!(read(&dir.path().join("b.stcp")), "");
    // -stcp needs TCP_PORTS, -atcp does not
    let conf = legacy_config(dir.path(), "UDP_PORTS=\"1\"\n");
    let (l, _) = fails("", &["-stcp", "-c", &conf]);
    assert_eq!(
        l[1..3],
        [
            "adminalert: ERROR: Could not read TCP_PORTS option from config file",
            "adminalert: ERROR: could not go into PortSentry mode. Shutting down."
        ]
    );

    // a port list of junk: every item skipped with a line, then nothing to watch
    let conf = legacy_config(dir.path(), "TCP_PORTS=\"abc,,x-y\"\n");
    let skipped = |item: &str| {
        format!("adminalert: {d}/portsentry.conf:5: TCP_PORTS: port item \"{item}\" is not a number or a range A-B; item skipped")
    };
    let (l, err) = fails("", &["-tcp", "-c", &conf]);
    assert_eq!(
        l,
        [
            STARTING.to_string(),
            skipped("abc"),
            skipped("x-y"),
            "adminalert: ERROR: could not bind ANY TCP sockets. Shutting down.".to_string(),
            down[0].to_string(),
            down[1].to_string()
        ]
    );
    // a warning is syslog only; the fatal error goes to stderr too
    assert!(!err.contains(&skipped("abc")), "{err}");
    assert!(err.contains("could not bind ANY TCP sockets"), "{err}");
    let (l, _) = fails("", &["-stcp", "-c", &conf]);
    assert_eq!(
        l[3],
        "adminalert: ERROR: no usable TCP port in TCP_PORTS. Shutting down."
    );

    // history and blocked files in a missing or read-only directory
    let conf = legacy_config_files(
        dir.path(),
        &format!("{d}/nope/history"),
        &format!("{d}/portsentry.blocked"),
        "TCP_PORTS=\"1\"\n",
    );
    let (l, err) = fails("", &["-stcp", "-c", &conf]);
    let want = format!("adminalert: ERROR: cannot open history file {d}/nope/history: No such file or directory (os error 2). Shutting down.");
    assert_eq!(l[1], want);
    assert!(err.contains(&want), "{err}");
    assert!(!dir.path().join("nope").exists());
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let conf = legacy_config_files(
        dir.path(),
        &format!("{d}/portsentry.history"),
        &format!("{}/blocked", ro.display()),
        "TCP_PORTS=\"1\"\n",
    );
    let setup = format!(
        "mount --bind {r} {r} && mount -o remount,bind,ro {r}",
        r = ro.display()
    );
    let (l, _) = fails(&setup, &["-stcp", "-c", &conf]);
    assert_eq!(
        l[1],
        format!("adminalert: ERROR: cannot open blocked file {}/blocked.stcp: Read-only file system (os error 30). Shutting down.", ro.display())
    );

    // a binary ignore file: its lines are skipped with a bounded report; it still runs
    let conf = legacy_config(dir.path(), "UDP_PORTS=\"1-10000\"\n");
    let bytes: Vec<u8> = (0..4000u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(dir.path().join("portsentry.ignore"), &bytes).unwrap();
    let sink = Sink::new();
    let r = start_in(&bed.target, &sink, "", &["-udp", "-c", &conf]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stderr, sink.dump());
    let dm = Daemon::listening(&sink);
    let l = sink.of(dm.pid);
    // a 10 000-port list: every port bound (or reported), nothing crashes
    assert_eq!(
        l.iter()
            .filter(|x| x.starts_with("adminalert: Going into listen mode on UDP port: "))
            .count()
            + l.iter()
                .filter(|x| x.starts_with("adminalert: ERROR: could not bind UDP socket: "))
                .count(),
        10_000
    );
    let problems: Vec<&String> = l
        .iter()
        .filter(|x| x.contains("/portsentry.ignore:"))
        .collect();
    assert!(!problems.is_empty() && problems.len() <= 11, "{problems:?}");
    assert!(!r.stderr.contains("/portsentry.ignore:"), "{}", r.stderr);
    assert_eq!(udp_banner(&bed, 9999), "");
    sink.wait_for("an event", |m| {
        m.iter().any(|x| {
            x.text == "attackalert: Connect from host: 198.18.0.1/198.18.0.1 to UDP port: 9999"
        })
    });
    dm.terminate(&sink);
    // the same 10 000 ports as a comma list (a 48 KB line) load the same set
    let list: Vec<String> = (1..=10_000).map(|p| p.to_string()).collect();
    let conf = legacy_config(dir.path(), &format!("UDP_PORTS=\"{}\"\n", list.join(",")));
    let cfg = portsentry::config::Config::load(
        std::path::Path::new(&conf),
        portsentry::config::Dialect::Legacy,
    )
    .unwrap();
    assert_eq!(cfg.udp_ports.len(), 10_000);
    // an empty ignore file is fine
    std::fs::write(dir.path().join("portsentry.ignore"), b"").unwrap();
    let conf = legacy_config(dir.path(), "TCP_PORTS=\"1\"\n");
    let sink = Sink::new();
    let r = start_in(&bed.target, &sink, "", &["-stcp", "-c", &conf]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stderr, sink.dump());
    assert_eq!(r.stderr, "");
    Daemon::listening(&sink).terminate(&sink);
}

/// Output lines of a child process, collected by a thread.
fn collect_lines(r: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            l.lock().unwrap().push(line);
        }
    });
    lines
}

fn wait_line(lines: &Arc<Mutex<Vec<String>>>, what: &str, err: &Arc<Mutex<Vec<String>>>) -> String {
    let start = Instant::now();
    loop {
        if let Some(l) = lines.lock().unwrap().iter().find(|l| l.starts_with(what)) {
            return l.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no {what} line; stdout:\n{}\nstderr:\n{}",
            lines.lock().unwrap().join("\n"),
            err.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn copy_exec(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Debian's own init script, config and ignore-file builder start our binary as
/// `/usr/sbin/portsentry -atcp` and `-audp` and stop it again; a scan from the peer is
/// logged with 1.2's lines and recorded in a history file fail2ban's filter matches.
/// Everything of Debian's lives in overlays of a private mount namespace: /usr (our
/// binary, a copy so that `start-stop-daemon --exec` matches only these daemons, and the
/// builder), /etc (config, defaults, init script) and /var/lib, whose writes land in this
/// test's temp dir.
#[test]
fn debian_init_script_runs_atcp_and_audp() {
    if !can_run("debian_init_script_runs_atcp_and_audp") {
        return;
    }
    let Some(pkg) = crate::debian::debian_package() else {
        return;
    };
    for need in [
        "/lib/lsb/init-functions",
        "/sbin/start-stop-daemon",
        "/usr/bin/perl",
    ] {
        if !Path::new(need).exists() {
            eprintln!("SKIP debian_init_script_runs_atcp_and_audp: {need} is missing");
            return;
        }
    }
    // Dropped in reverse: the namespace (and every process in it) goes first, then the
    // overlay layers those processes had mounted.
    let root = tempfile::tempdir().unwrap();
    let sink = Sink::new();
    let bed = Bed::new();
    let r = root.path();
    copy_exec(&bin(), &r.join("usr/sbin/portsentry"));
    let lib = "usr/lib/portsentry/portsentry-build-ignore-file";
    copy_exec(&pkg.join(lib), &r.join(lib));
    copy_exec(
        &pkg.join("etc/init.d/portsentry"),
        &r.join("etc-up/init.d/portsentry"),
    );
    std::fs::create_dir_all(r.join("etc-up/portsentry")).unwrap();
    for f in ["portsentry.conf", "portsentry.ignore.static"] {
        std::fs::copy(
            pkg.join("etc/portsentry").join(f),
            r.join("etc-up/portsentry").join(f),
        )
        .unwrap();
    }
    std::fs::create_dir_all(r.join("etc-up/default")).unwrap();
    std::fs::write(
        r.join("etc-up/default/portsentry"),
        "TCP_MODE=\"atcp\"\nUDP_MODE=\"audp\"\n",
    )
    .unwrap();
    for d in ["etc-work", "var-up/portsentry", "var-work"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    let rd = r.display();
    let script = format!(
        "set -e\n{dev}\nmount -t overlay overlay -o lowerdir={rd}/usr:/usr /usr\n\
         mount -t overlay overlay -o lowerdir=/etc,upperdir={rd}/etc-up,workdir={rd}/etc-work /etc\n\
         mount -t overlay overlay -o lowerdir=/var/lib,upperdir={rd}/var-up,workdir={rd}/var-work /var/lib\n\
         set +e\n/etc/init.d/portsentry start; echo \"start=$?\"\nread go\n\
         /etc/init.d/portsentry stop; echo \"stop=$?\"\n",
        dev = private_dev_log(&sink)
    );
    let mut child = Command::new("timeout")
        .args(["-k", "2", "120", "ip", "netns", "exec", &bed.target])
        .args(["unshare", "-m", "sh", "-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    struct KillOnDrop<'a>(&'a mut Child);
    impl Drop for KillOnDrop<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let out = collect_lines(child.stdout.take().unwrap());
    let err = collect_lines(child.stderr.take().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    let guard = KillOnDrop(&mut child);

    let started = wait_line(&out, "start=", &err);
    assert_eq!(started, "start=0");
    let said = out.lock().unwrap().join("\n");
    assert!(
        said.contains("Starting anti portscan daemon: portsentry in atcp & audp mode."),
        "{said}"
    );
    sink.wait_for("two daemons listening", |m| {
        m.iter().filter(|x| x.text == LISTENING).count() == 2
    });
    let mut daemons = Vec::new();
    for pid in sink.pids() {
        let mode = cmdline(pid);
        daemons.push(Daemon { pid });
        let ignored = |proto: &str, p: u16| {
            format!("adminalert: Advanced Stealth scan detection mode activated. Ignored {proto} port: {p}")
        };
        let mut want = vec![
            STARTING.to_string(),
            "adminalert: Advanced mode will monitor first 1024 ports".to_string(),
        ];
        match mode.as_str() {
            "/usr/sbin/portsentry -atcp" => {
                for p in [113, 139] {
                    want.push(format!("{MANUAL}{p} "));
                }
                want.extend([ignored("TCP", 113), ignored("TCP", 139)]);
            }
            "/usr/sbin/portsentry -audp" => {
                for p in [520, 138, 137, 67] {
                    want.push(format!("{MANUAL}{p} "));
                }
                for p in [520, 138, 137, 67] {
                    want.push(ignored("UDP", p));
                }
            }
            other => panic!("unexpected process {pid}: {other:?}"),
        }
        want.push(LISTENING.to_string());
        assert_eq!(sink.of(pid), want, "{mode}");
    }
    let pid_of = |m: &str| {
        *sink
            .pids()
            .iter()
            .find(|p| cmdline(**p) == format!("/usr/sbin/portsentry -{m}"))
            .unwrap()
    };
    let (tcp, udp) = (pid_of("atcp"), pid_of("audp"));
    // Debian's builder wrote the ignore file from its static list
    let ign = read(&r.join("etc-up/portsentry/portsentry.ignore"));
    assert!(
        ign.contains("127.0.0.1/32") && ign.contains("0.0.0.0"),
        "{ign}"
    );

    // a scan: Debian's config logs only (BLOCK_x=0) and records the host once per mode
    bed.nmap(&["-sS", "-p", "1,113,1000", TARGET4]);
    bed.nmap(&["-sU", "-p", "7,137", TARGET4]);
    let got = sink.lines_after(tcp, 7, 4);
    let syn = |p: u16| attack("TCP SYN/Normal scan", p);
    assert!(
        (got[0] == syn(1) && got[2] == syn(1000)) || (got[0] == syn(1000) && got[2] == syn(1)),
        "{got:?}"
    );
    assert_eq!(
        got[1],
        "attackalert: Ignoring TCP response per configuration file setting."
    );
    assert_eq!(got[3], ALREADY_STEALTH);
    assert_eq!(
        sink.lines_after(udp, 11, 2),
        [
            "attackalert: UDP scan from host: 198.18.0.1/198.18.0.1 to UDP port: 7",
            "attackalert: Ignoring UDP response per configuration file setting.",
        ]
    );
    let history = r.join("var-up/portsentry/portsentry.history");
    let h = read(&history);
    assert_eq!(h.lines().count(), 2, "{h}");
    assert!(h.lines().any(|l| l.ends_with(" UDP Blocked")), "{h}");
    for l in h.lines() {
        let (port, proto) = if l.ends_with(" UDP Blocked") {
            (7, "UDP")
        } else if l.contains(" Port: 1 ") {
            (1, "TCP")
        } else {
            (1000, "TCP")
        };
        check_history_line(l, port, proto);
    }
    assert!(read(&r.join("var-up/portsentry/portsentry.blocked.atcp")).contains(" TCP Blocked"));
    assert!(read(&r.join("var-up/portsentry/portsentry.blocked.audp")).contains(" UDP Blocked"));

    // Debian's stop: start-stop-daemon --stop --exec /usr/sbin/portsentry
    stdin.write_all(b"go\n").unwrap();
    let stopped = wait_line(&out, "stop=", &err);
    assert_eq!(stopped, "stop=0");
    for pid in [tcp, udp] {
        sink.wait_for("the shutdown pair", |m| {
            m.iter().any(|x| x.pid == pid && x.text == ADMIN_DOWN)
        });
        let l = sink.of(pid);
        assert_eq!(&l[l.len() - 2..], [SECURITY_DOWN, ADMIN_DOWN]);
        let start = Instant::now();
        while alive(pid) {
            assert!(start.elapsed() < Duration::from_secs(2), "{pid} still runs");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    drop(guard);
    drop(daemons);
    sink.check_dialect();
    fail2ban_matches_every_line(&history);
}

/// A Debian admin keeps the 1.2 config and adds two lines to get nft blocking with
/// expiry (compat.md §10.1).
#[test]
fn legacy_config_with_typed_nft_blocking_and_expiry() {
    if !can_run("legacy_config_with_typed_nft_blocking_and_expiry") {
        return;
    }
    let bed = Bed::new();
    let dir = tempfile::tempdir().unwrap();
    let conf = legacy_config(
        dir.path(),
        &format!(
            "TCP_PORTS=\"1,11\"\nBLOCK_TCP=\"1\"\nBLOCK_BACKEND=\"nft\"\nBLOCK_TIMEOUT=\"3s\"\nBLOCK_STATE_FILE=\"{}/blocks\"\n",
            dir.path().display()
        ),
    );
    std::fs::write(dir.path().join("portsentry.ignore"), "127.0.0.1\n").unwrap();
    let sink = Sink::new();
    let r = start_in(&bed.target, &sink, "", &["-stcp", "-c", &conf]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stderr, sink.dump());
    let d = Daemon::listening(&sink);
    bed.nmap(&["-sS", "-p", "1", TARGET4]);
    sink.wait_for("the nft block", |m| {
        m.iter()
            .any(|x| x.text == "attackalert: Host 198.18.0.1 has been blocked via nft for 3s")
    });
    let o = bed.exec(
        &bed.target,
        &["nft", "-j", "list", "set", "inet", "portsentry", "blocked4"],
        Duration::from_secs(5),
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("198.18.0.1"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let blocked = dir.path().join("portsentry.blocked.stcp");
    assert!(
        read(&blocked).contains("Host: 198.18.0.1/198.18.0.1 Port: 1 TCP Blocked"),
        "{}",
        read(&blocked)
    );
    assert!(read(&dir.path().join("portsentry.history")).contains("Port: 1 TCP Blocked"));
    sink.wait_for("the expiry", |m| {
        m.iter()
            .any(|x| x.text == "attackalert: Host 198.18.0.1 block expired, unblocked")
    });
    let o = bed.exec(
        &bed.target,
        &["nft", "-j", "list", "set", "inet", "portsentry", "blocked4"],
        Duration::from_secs(5),
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains("198.18.0.1"));
    assert!(!read(&blocked).contains("198.18.0.1"), "{}", read(&blocked));
    // the next scan acts again
    bed.nmap(&["-sS", "-p", "11", TARGET4]);
    sink.wait_for("the second block", |m| {
        m.iter()
            .filter(|x| x.text == "attackalert: Host 198.18.0.1 has been blocked via nft for 3s")
            .count()
            == 2
    });
    sink.check_dialect();
    d.terminate(&sink);
}

/// Issue #17 item 1, in the 1.2 dialect: spoofed-looking sources equal to this host's own
/// address, loopback, or an ignored address get none of the actions (KILL_HOSTS_DENY,
/// KILL_ROUTE, KILL_RUN_CMD all configured); a real scanner gets all three.
#[test]
fn own_loopback_and_ignored_sources_never_get_the_actions() {
    if !can_run("own_loopback_and_ignored_sources_never_get_the_actions") {
        return;
    }
    let bed = Bed::new();
    let dir = tempfile::tempdir().unwrap();
    let rec = recording_script(dir.path(), 0);
    let conf = legacy_config(
        dir.path(),
        &format!(
            "TCP_PORTS=\"11\"\nBLOCK_TCP=\"1\"\nKILL_HOSTS_DENY=\"ALL: $TARGET$ : DENY\"\nHOSTS_DENY_FILE=\"{d}/hosts.deny\"\nKILL_ROUTE=\"{r} route $TARGET$ $PORT$ $MODE$\"\nKILL_RUN_CMD=\"{r} run $TARGET$ $PORT$ $MODE$\"\n",
            d = dir.path().display(),
            r = rec.display()
        ),
    );
    let ignore = dir.path().join("portsentry.ignore");
    std::fs::write(&ignore, format!("{SCANNER4}\n")).unwrap();
    let sink = Sink::new();
    let r = start_in(&bed.target, &sink, "", &["-stcp", "-c", &conf]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stderr, sink.dump());
    let _d = Daemon::listening(&sink);
    // this host's own address and loopback, from inside the target's namespace
    bed.nmap_from(&bed.target, &["-sS", "-p", "11", TARGET4]);
    bed.nmap_from(&bed.target, &["-sS", "-p", "11", "127.0.0.1"]);
    // an ignored scanner
    bed.nmap(&["-sS", "-p", "11", TARGET4]);
    // the same scanner once it is no longer ignored (1.2 reads the file at each event);
    // it is decided after the probes above, in capture order, so what is recorded
    // below is all that any of them did
    std::fs::write(&ignore, "").unwrap();
    bed.nmap(&["-sS", "-p", "11", TARGET4]);
    let start = Instant::now();
    while read(&dir.path().join("record")).lines().count() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the actions never ran: {}",
            sink.dump()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let record = read(&dir.path().join("record"));
    assert_eq!(record.lines().count(), 2, "{record}");
    assert!(
        record.starts_with(&format!("route {SCANNER4} 11 stcp ")),
        "{record}"
    );
    assert!(
        record.contains(&format!("\nrun {SCANNER4} 11 stcp ")),
        "{record}"
    );
    assert_eq!(
        read(&dir.path().join("hosts.deny")),
        format!("ALL: {SCANNER4} : DENY\n")
    );
}
