//! A test bed of two network namespaces joined by a veth pair, and a daemon running in
//! one of them. Addresses: scanner 198.18.0.1/24 + fd00:5e5e::1/64, target 198.18.0.2/24
//! + fd00:5e5e::2/64. Everything is torn down on drop, even when the test fails.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const SCANNER4: &str = "198.18.0.1";
pub const TARGET4: &str = "198.18.0.2";
pub const SCANNER6: &str = "fd00:5e5e::1";
pub const TARGET6: &str = "fd00:5e5e::2";

static SEQ: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        o.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

pub struct Bed {
    pub scanner: String,
    pub target: String,
    /// The target's end of the veth pair.
    pub target_if: String,
}

impl Bed {
    pub fn new() -> Bed {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}_{n}", std::process::id() % 100_000);
        let bed = Bed {
            scanner: format!("psA_{id}"),
            target: format!("psB_{id}"),
            target_if: format!("vb{id}"),
        };
        ip(&["netns", "add", &bed.scanner]);
        ip(&["netns", "add", &bed.target]);
        let (va, vb) = (format!("va{id}"), format!("vb{id}"));
        ip(&[
            "link",
            "add",
            &va,
            "netns",
            &bed.scanner,
            "type",
            "veth",
            "peer",
            "name",
            &vb,
            "netns",
            &bed.target,
        ]);
        for (ns, dev, a4, a6) in [
            (&bed.scanner, &va, SCANNER4, SCANNER6),
            (&bed.target, &vb, TARGET4, TARGET6),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{a4}/24"), "dev", dev]);
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{a6}/64"),
                "dev",
                dev,
                "nodad",
            ]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        // Resolve neighbours before any scan: nmap's raw IPv6 probes give up otherwise.
        for dst in [TARGET4, TARGET6] {
            let o = bed.exec(
                &bed.scanner,
                &["ping", "-c", "1", "-W", "3", dst],
                Duration::from_secs(5),
            );
            assert!(
                o.status.success(),
                "ping {dst}: {}",
                String::from_utf8_lossy(&o.stdout)
            );
        }
        bed
    }

    /// Runs a command inside a namespace and waits (bounded by `timeout`).
    pub fn exec(&self, ns: &str, args: &[&str], timeout: Duration) -> Output {
        let mut c = Command::new("timeout");
        c.arg("-k")
            .arg("2")
            .arg(format!("{}", timeout.as_secs().max(1)));
        c.args(["ip", "netns", "exec", ns]).args(args);
        c.output().expect("exec in namespace")
    }

    /// A bounded nmap run from the scanner namespace.
    pub fn nmap(&self, args: &[&str]) -> Output {
        self.nmap_from(&self.scanner, args)
    }

    /// A bounded nmap run from namespace `ns` (the target scanning itself, for example).
    pub fn nmap_from(&self, ns: &str, args: &[&str]) -> Output {
        let mut a = vec![
            "nmap",
            "-n",
            "-Pn",
            "--max-retries",
            "0",
            "--host-timeout",
            "20s",
        ];
        a.extend_from_slice(args);
        let o = self.exec(ns, &a, Duration::from_secs(30));
        assert!(
            o.status.success(),
            "nmap {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    /// Starts portsentry in the target namespace.
    pub fn daemon(&self, args: &[&str]) -> Daemon {
        Daemon::start(&self.target, args)
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        for ns in [&self.scanner, &self.target] {
            // kill anything left in the namespace, then delete it
            if let Ok(o) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A portsentry process whose stdout/stderr lines are collected.
pub struct Daemon {
    child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    pub fn start(ns: &str, args: &[&str]) -> Daemon {
        let bin = crate::util::bin();
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(&bin)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("start portsentry");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(l);
                }
            });
        }
        let d = Daemon { child, lines };
        d.wait_for("readiness line", Duration::from_secs(15), |l| {
            l.iter()
                .any(|x| x == "Portsentry is now active and listening.")
        });
        d
    }

    /// The daemon's pid (`ip netns exec` execs it in place).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn snapshot(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until `pred` holds over the lines so far; panics with the lines on timeout.
    pub fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&[String]) -> bool) {
        let start = Instant::now();
        loop {
            if pred(&self.snapshot()) {
                return;
            }
            if start.elapsed() > timeout {
                panic!(
                    "timed out waiting for {what}; lines:\n{}",
                    self.snapshot().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the daemon printed exactly `line` so far.
    pub fn has_line(&self, line: &str) -> bool {
        self.snapshot().iter().any(|l| l == line)
    }

    /// The scan lines so far.
    pub fn scans(&self) -> Vec<String> {
        self.snapshot()
            .into_iter()
            .filter(|l| l.starts_with("Scan from: "))
            .collect()
    }

    /// Waits for `n` scan lines, then a little longer to make sure no more come.
    pub fn expect_scans(&self, n: usize) -> Vec<String> {
        self.wait_for(&format!("{n} scan lines"), Duration::from_secs(10), |l| {
            l.iter().filter(|x| x.starts_with("Scan from: ")).count() >= n
        });
        std::thread::sleep(Duration::from_millis(300));
        let s = self.scans();
        assert_eq!(s.len(), n, "scan lines:\n{}", s.join("\n"));
        s
    }

    /// SIGHUP.
    pub fn hup(&self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP);
    }

    /// SIGTERM; returns the exit code and how long the exit took.
    pub fn terminate(mut self) -> (Option<i32>, Duration) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let start = Instant::now();
        // `ip netns exec` execs the binary, so the child pid is portsentry itself.
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return (st.code(), start.elapsed());
            }
            if start.elapsed() > Duration::from_secs(5) {
                return (None, start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The scan line the daemon prints for one event.
pub fn scan_line(
    src: &str,
    proto: &str,
    port: u16,
    kind: &str,
    opts: &str,
    flags: [&str; 4],
) -> String {
    format!(
        "Scan from: [{src}] ({src}) protocol: [{proto}] port: [{port}] type: [{kind}] IP opts: [{opts}] ignored: [{}] triggered: [{}] noblock: [{}] blocked: [{}]",
        flags[0], flags[1], flags[2], flags[3]
    )
}

pub const LOG_ONLY: [&str; 4] = ["false", "true", "true", "false"];
pub const BLOCKED: [&str; 4] = ["false", "true", "false", "true"];

/// Writes a config for a test into `dir`.
pub fn config(dir: &Path, body: &str) -> String {
    let p = dir.join("portsentry.conf");
    let text = format!(
        "HISTORY_FILE=\"{d}/history\"\nBLOCKED_FILE=\"{d}/blocked\"\n{body}",
        d = dir.display()
    );
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// One element of a set: (address, timeout seconds, expires seconds).
pub type SetElem = (String, Option<u64>, Option<u64>);

/// The elements of our nft set `set` (table `inet portsentry`) in namespace `ns`:
/// (address, timeout seconds, expires seconds); `None` when it cannot be listed (the
/// table is not there yet).
pub fn nft_elements(ns: &str, set: &str) -> Option<Vec<SetElem>> {
    let o = Command::new("timeout")
        .args(["-k", "2", "10", "ip", "netns", "exec", ns])
        .args(["nft", "-j", "list", "set", "inet", "portsentry", set])
        .output()
        .ok()?;
    if !o.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
    let mut out = Vec::new();
    for item in v["nftables"].as_array()? {
        for e in item["set"]["elem"].as_array().into_iter().flatten() {
            match e {
                serde_json::Value::String(s) => out.push((s.clone(), None, None)),
                obj => {
                    let el = &obj["elem"];
                    out.push((
                        el["val"].as_str().unwrap_or_default().to_string(),
                        el["timeout"].as_u64(),
                        el["expires"].as_u64(),
                    ));
                }
            }
        }
    }
    Some(out)
}
