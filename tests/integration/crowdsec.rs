//! Issue #18: blocks shared through a real CrowdSec LAPI (Debian's crowdsec 1.4.6, run
//! by `tests/crowdsec/lapi` inside a namespace the test made), never a mock.
//!
//! Topology: the usual bed (scanner 198.18.0.1, host A 198.18.0.2), a second bed for
//! host B (its own scanner namespace unused), and a veth pair between A (198.19.1.1) and
//! B (198.19.1.2). The LAPI listens in A on 198.19.1.1:8080; both daemons share it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::netns::*;
use crate::util::is_root;

const LAPI_ADDR: &str = "198.19.1.1";
const B_ADDR: &str = "198.19.1.2";

fn lapi_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/crowdsec/lapi")
}

/// Root and crowdsec present, or the reason printed.
fn can_run(test: &str) -> bool {
    if !is_root(test) {
        return false;
    }
    let found = ["crowdsec", "cscli"].iter().all(|b| {
        Command::new("sh")
            .args(["-c", &format!("command -v {b}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !found {
        eprintln!("SKIP {test}: crowdsec/cscli not installed (.ci/deps installs them)");
    }
    found
}

/// A LAPI in namespace `ns`; stopped (by pid) on drop.
struct Lapi {
    dir: tempfile::TempDir,
    url: String,
}

impl Lapi {
    fn start(ns: &str, listen: &str) -> Lapi {
        let lapi = Lapi {
            url: format!("http://{listen}"),
            dir: tempfile::tempdir().unwrap(),
        };
        lapi.launch(ns, listen);
        lapi
    }

    /// A LAPI serving https with `cert` and `key` (PEM files).
    fn start_tls(ns: &str, listen: &str, cert: &Path, key: &Path) -> Lapi {
        let lapi = Lapi {
            url: format!("https://{listen}"),
            dir: tempfile::tempdir().unwrap(),
        };
        lapi.launch_with(ns, listen, Some((cert, key)));
        lapi
    }

    /// `lapi start` in this LAPI's directory (a first start, or again after `stop`).
    fn launch(&self, ns: &str, listen: &str) {
        self.launch_with(ns, listen, None);
    }

    fn launch_with(&self, ns: &str, listen: &str, tls: Option<(&Path, &Path)>) {
        let mut c = Command::new(lapi_script());
        c.arg("start").arg(self.dir.path()).args([ns, listen]);
        if let Some((cert, key)) = tls {
            c.env("LAPI_TLS_CERT", cert).env("LAPI_TLS_KEY", key);
        }
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "lapi start: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn stop(&self) {
        let _ = Command::new(lapi_script())
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }

    fn cscli(&self, args: &[&str]) -> String {
        let o = Command::new(lapi_script())
            .arg("cscli")
            .arg(self.dir.path())
            .arg("--error")
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "cscli {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    fn bouncer(&self, name: &str) -> String {
        self.cscli(&["bouncers", "add", name, "-o", "raw"])
            .trim()
            .to_string()
    }

    fn machine(&self, name: &str, password: &str) {
        let f = self.dir.path().join(format!("{name}.yaml"));
        self.cscli(&[
            "machines",
            "add",
            name,
            "--password",
            password,
            "-f",
            f.to_str().unwrap(),
        ]);
    }

    /// Every decision the LAPI holds for `value`, any origin.
    fn decisions_for(&self, value: &str) -> Vec<serde_json::Value> {
        let out = self.cscli(&["decisions", "list", "-a", "-i", value, "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_default();
        let mut all = Vec::new();
        for alert in v.as_array().into_iter().flatten() {
            for d in alert["decisions"].as_array().into_iter().flatten() {
                all.push(d.clone());
            }
        }
        all
    }
}

impl Drop for Lapi {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A veth pair between the two beds' target namespaces.
fn link(a: &Bed, b: &Bed) {
    let id = a.target_if.trim_start_matches("vb");
    let (x, y) = (format!("cx{id}"), format!("cy{id}"));
    let run = |args: &[&str]| {
        let o = Command::new("ip").args(args).output().unwrap();
        assert!(
            o.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(&[
        "link", "add", &x, "netns", &a.target, "type", "veth", "peer", "name", &y, "netns",
        &b.target,
    ]);
    run(&[
        "-n",
        &a.target,
        "addr",
        "add",
        &format!("{LAPI_ADDR}/30"),
        "dev",
        &x,
    ]);
    run(&[
        "-n",
        &b.target,
        "addr",
        "add",
        &format!("{B_ADDR}/30"),
        "dev",
        &y,
    ]);
    run(&["-n", &a.target, "link", "set", &x, "up"]);
    run(&["-n", &b.target, "link", "set", &y, "up"]);
}

/// The IPv4 set's elements in namespace `ns`: (address, timeout left in s); empty
/// before the table exists.
fn set4(ns: &str) -> Vec<(String, Option<u64>)> {
    nft_elements(ns, "blocked4")
        .unwrap_or_default()
        .into_iter()
        .map(|(a, _, expires)| (a, expires))
        .collect()
}

fn wait_until(what: &str, limit: Duration, f: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if f() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{what}: not within {limit:?}\n{}",
            threads()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every portsentry thread's name and where it waits, for a failure message.
fn threads() -> String {
    let mut out = String::new();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let exe = std::fs::read_link(p.path().join("exe")).unwrap_or_default();
        if !exe.to_string_lossy().ends_with("/portsentry") {
            continue;
        }
        for t in std::fs::read_dir(p.path().join("task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let r = |f: &str| std::fs::read_to_string(t.path().join(f)).unwrap_or_default();
            out.push_str(&format!(
                "{:?} {} {} [{}]\n",
                p.file_name(),
                r("comm").trim(),
                r("wchan"),
                r("syscall").trim()
            ));
        }
    }
    out
}

fn conf(dir: &Path, name: &str, url: &str, extra: &str) -> String {
    std::fs::create_dir_all(dir.join(name)).unwrap();
    config(
        &dir.join(name),
        &format!(
            "TCP_PORTS=\"1,11\"\nBLOCK_TCP=\"1\"\nBLOCK_BACKEND=\"nft\"\nBLOCK_TIMEOUT=\"1h\"\nBLOCK_STATE_FILE=\"{}/{name}/blocks\"\nCROWDSEC_LAPI_URL=\"{url}\"\nCROWDSEC_POLL_INTERVAL=\"1s\"\n{extra}",
            dir.display()
        ),
    )
}

/// Scenarios 1 to 5 of issue #18 (6 is the next test), with one LAPI and two hosts.
#[test]
fn two_hosts_share_blocks_through_a_real_lapi() {
    if !can_run("two_hosts_share_blocks_through_a_real_lapi") {
        return;
    }
    let a = Bed::new();
    let b = Bed::new();
    link(&a, &b);
    let lapi = Lapi::start(&a.target, &format!("{LAPI_ADDR}:8080"));
    let key_a = lapi.bouncer("host-a");
    let key_b = lapi.bouncer("host-b");
    lapi.machine("host-a", "pw-a-123456");
    lapi.machine("host-b", "pw-b-123456");
    let dir = tempfile::tempdir().unwrap();
    let ca = conf(
        dir.path(),
        "a",
        &lapi.url,
        // A's machine from the credentials file cscli wrote for it
        &format!(
            "CROWDSEC_BOUNCER_KEY=\"{key_a}\"\nCROWDSEC_CREDENTIALS_FILE=\"{}\"\nIGNORE_FILE=\"{}/a-ignore\"\n",
            lapi.dir.path().join("host-a.yaml").display(),
            dir.path().display()
        ),
    );
    // the fleet's own link is never blocked on A (B's address gets a decision below)
    std::fs::write(dir.path().join("a-ignore"), "198.19.1.0/30\n").unwrap();
    std::fs::write(dir.path().join("b-ignore"), "198.18.44.0/24\n").unwrap();
    let cb = conf(
        dir.path(),
        "b",
        &lapi.url,
        &format!(
            "CROWDSEC_BOUNCER_KEY=\"{key_b}\"\nCROWDSEC_MACHINE_ID=\"host-b\"\nCROWDSEC_MACHINE_PASSWORD=\"pw-b-123456\"\nIGNORE_FILE=\"{}/b-ignore\"\nBLOCK_BACKEND=\"nft,route\"\n",
            dir.path().display()
        ),
    );
    let da = a.daemon(&["-c", &ca]);
    let db = b.daemon(&["-c", &cb]);
    for d in [&da, &db] {
        assert!(
            d.snapshot().iter().any(|l| l.starts_with(
                "adminalert: crowdsec: sharing blocks with the LAPI at http://198.19.1.1:8080: pull (bouncer) and push (watcher), every 1s"
            )),
            "{:?}",
            d.snapshot()
        );
    }

    // (1) a scan against A puts the scanner into B's kernel set
    a.nmap(&["-sS", "-p", "1", TARGET4]);
    let scanned = Instant::now();
    da.expect_scans(1);
    wait_until("scanner in A's set", Duration::from_secs(10), || {
        set4(&a.target).iter().any(|e| e.0 == SCANNER4)
    });
    let took = wait_until("scanner in B's set", Duration::from_secs(10), || {
        set4(&b.target).iter().any(|e| e.0 == SCANNER4)
    });
    eprintln!(
        "propagation A -> LAPI -> B: {:?} after A's block, {:?} after the scan",
        took,
        scanned.elapsed()
    );
    // the LAPI holds exactly one decision for it, ours
    let ds = lapi.decisions_for(SCANNER4);
    assert_eq!(ds.len(), 1, "{ds:?}");
    assert_eq!(ds[0]["origin"], "portsentry");
    assert_eq!(ds[0]["scenario"], "portsentry/tcp-syn-normal-scan");
    // B lists it with its origin; A's own block coming back is not applied twice
    let list_b = Command::new("ip")
        .args(["netns", "exec", &b.target])
        .arg(crate::util::bin())
        .args(["-c", &cb, "list", "--json"])
        .output()
        .unwrap();
    let rec: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&list_b.stdout)
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(rec["net"], SCANNER4);
    assert_eq!(rec["origin"], "crowdsec");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(lapi.decisions_for(SCANNER4).len(), 1, "pushed twice");
    // status shows the LAPI's health and the blocks by origin
    let st = Command::new("ip")
        .args(["netns", "exec", &b.target])
        .arg(crate::util::bin())
        .args(["-c", &cb, "status", "--json"])
        .output()
        .unwrap();
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(st["crowdsec"]["url"], "http://198.19.1.1:8080", "{st}");
    assert_eq!(st["crowdsec"]["pull"]["ok"], true, "{st}");
    assert_eq!(st["crowdsec"]["push"]["ok"], true, "{st}");
    assert_eq!(st["store"]["by_origin"]["crowdsec"], 1, "{st}");

    // (2) an admin's decision reaches both kernels with its time; deleting it lifts it
    lapi.cscli(&["decisions", "add", "-i", "198.18.50.5", "-d", "30s"]);
    wait_until("cscli decision in B", Duration::from_secs(8), || {
        set4(&b.target).iter().any(|e| e.0 == "198.18.50.5")
    });
    let el = set4(&b.target)
        .into_iter()
        .find(|e| e.0 == "198.18.50.5")
        .unwrap();
    assert!(el.1.is_some_and(|t| t <= 30), "{el:?}");
    lapi.cscli(&["decisions", "delete", "-i", "198.18.50.5"]);
    let lifted = wait_until(
        "deleted decision lifted in B",
        Duration::from_secs(8),
        || !set4(&b.target).iter().any(|e| e.0 == "198.18.50.5"),
    );
    eprintln!("deletion lifted after {lifted:?}");

    // (3) a Range decision blocks every address inside it: B's nft backend holds the
    // whole /24 in its set of /24s, and its route backend as one blackhole route
    lapi.cscli(&["decisions", "add", "--range", "198.18.9.0/24", "-d", "1h"]);
    wait_until(
        "the range in B's nft set of /24s",
        Duration::from_secs(8),
        || {
            nft_elements(&b.target, "blocked4_24")
                .unwrap_or_default()
                .iter()
                .any(|e| e.0 == "198.18.9.0" && e.2.is_some_and(|x| x <= 3600))
        },
    );
    wait_until(
        "the range as a blackhole route in B",
        Duration::from_secs(8),
        || {
            let o = Command::new("ip")
                .args(["-n", &b.target, "-j", "route", "show", "type", "blackhole"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&o.stdout).contains("\"198.18.9.0/24\"")
        },
    );
    let o = Command::new("ip")
        .args(["-n", &b.target, "-j", "route", "get", "198.18.9.77"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(
        text.contains("blackhole") || text.contains("Invalid argument"),
        "{text}"
    );

    // (5) decisions for B's own address or an ignored one are never applied
    lapi.cscli(&["decisions", "add", "-i", B_ADDR, "-d", "1h"]);
    lapi.cscli(&["decisions", "add", "-i", "198.18.44.9", "-d", "1h"]);
    lapi.cscli(&["decisions", "add", "-i", "198.18.50.6", "-d", "1h"]);
    wait_until("a later decision in B", Duration::from_secs(8), || {
        set4(&b.target).iter().any(|e| e.0 == "198.18.50.6")
    });
    let held = set4(&b.target);
    assert!(
        !held.iter().any(|e| e.0 == B_ADDR || e.0 == "198.18.44.9"),
        "{held:?}"
    );
    for (ip, why) in [
        (B_ADDR, "it is an address of this host"),
        ("198.18.44.9", "it is in the ignore file"),
    ] {
        assert!(
            db.has_line(&format!("attackalert: Host {ip} not blocked: {why}")),
            "{:?}",
            db.snapshot()
        );
    }

    // (4) the LAPI goes away: no crash, one line; blocks made meanwhile are pushed once
    // it is back, none twice
    lapi.stop();
    wait_until(
        "A's one line about the LAPI",
        Duration::from_secs(10),
        || {
            da.snapshot()
                .iter()
                .any(|l| l.starts_with("adminalert: crowdsec: pulling decisions failed"))
        },
    );
    // a block made while it is away (host A, from its command line)
    let o = Command::new("ip")
        .args(["netns", "exec", &a.target])
        .arg(crate::util::bin())
        .args(["-c", &ca, "block", "198.18.60.7", "--for", "1h"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    wait_until("A failing to push it", Duration::from_secs(10), || {
        da.snapshot()
            .iter()
            .any(|l| l.starts_with("adminalert: crowdsec: pushing our blocks failed"))
    });
    let lines = da.snapshot();
    for side in ["pulling decisions", "pushing our blocks"] {
        let n = lines
            .iter()
            .filter(|l| l.starts_with(&format!("adminalert: crowdsec: {side} failed")))
            .count();
        assert_eq!(n, 1, "{side}: {lines:?}");
    }
    lapi.launch(&a.target, &format!("{LAPI_ADDR}:8080"));
    wait_until(
        "the block made meanwhile reaches B",
        Duration::from_secs(40),
        || set4(&b.target).iter().any(|e| e.0 == "198.18.60.7"),
    );
    assert!(
        da.snapshot()
            .iter()
            .any(|l| l.starts_with("adminalert: crowdsec: pulling decisions works again")),
        "{:?}",
        da.snapshot()
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(lapi.decisions_for("198.18.60.7").len(), 1);
    assert_eq!(lapi.decisions_for(SCANNER4).len(), 1);
    for d in [&da, &db] {
        assert!(
            Path::new(&format!("/proc/{}", d.pid())).exists(),
            "a daemon died"
        );
    }
}

/// Scenario 6: a wrong key or garbage from the "LAPI" is a clear error and applies
/// nothing.
#[test]
fn a_wrong_key_or_garbage_applies_nothing() {
    if !can_run("a_wrong_key_or_garbage_applies_nothing") {
        return;
    }
    let a = Bed::new();
    let lapi = Lapi::start(&a.target, "127.0.0.1:8081");
    lapi.cscli(&["decisions", "add", "-i", "198.18.50.9", "-d", "1h"]);
    let dir = tempfile::tempdir().unwrap();
    let c = conf(
        dir.path(),
        "a",
        &lapi.url,
        "CROWDSEC_BOUNCER_KEY=\"not-a-key\"\n",
    );
    let d = a.daemon(&["-c", &c]);
    d.wait_for("the refusal", Duration::from_secs(10), |l| {
        l.iter().any(|x| {
            x.starts_with("adminalert: crowdsec: pulling decisions failed: decisions stream http://127.0.0.1:8081/v1/decisions/stream: refused (403): {\"message\":\"access forbidden\"}")
        })
    });
    assert!(set4(&a.target).is_empty());
    drop(d);
    // something that answers HTTP with garbage
    let junk = Command::new("ip")
        .args(["netns", "exec", &a.target, "python3", "-c"])
        .arg("import http.server as h\nclass H(h.BaseHTTPRequestHandler):\n    def do_GET(s):\n        s.send_response(200); s.end_headers(); s.wfile.write(b'{\"new\": [{\"oops\"')\n    def log_message(s, *a): pass\nh.HTTPServer(('127.0.0.1', 8082), H).serve_forever()\n")
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _junk = Kill(junk);
    std::thread::sleep(Duration::from_millis(300));
    let c = conf(
        dir.path(),
        "g",
        "http://127.0.0.1:8082",
        "CROWDSEC_BOUNCER_KEY=\"k\"\n",
    );
    let d = a.daemon(&["-c", &c]);
    d.wait_for("the garbage", Duration::from_secs(10), |l| {
        l.iter().any(|x| {
            x.starts_with("adminalert: crowdsec: pulling decisions failed: decisions stream http://127.0.0.1:8082/v1/decisions/stream: the answer is not the LAPI's JSON")
        })
    });
    assert!(set4(&a.target).is_empty());
}

/// A CA and a server certificate for 127.0.0.1 signed by it, made with openssl in `dir`:
/// (CA certificate, server certificate, server key).
fn test_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |cmd: String| {
        let args: Vec<&str> = cmd.split_whitespace().collect();
        let o = Command::new("openssl").args(&args).output().unwrap();
        assert!(
            o.status.success(),
            "openssl {cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let d = dir.display();
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    run(format!(
        "req -x509 {ec} -keyout {d}/ca.key -out {d}/ca.pem -days 2 -subj /CN=portsentry-test-CA"
    ));
    run(format!(
        "req {ec} -keyout {d}/lapi.key -out {d}/lapi.csr -subj /CN=lapi"
    ));
    run(format!(
        "x509 -req -in {d}/lapi.csr -CA {d}/ca.pem -CAkey {d}/ca.key -CAcreateserial -out {d}/lapi.pem -days 2 -extfile {d}/ext"
    ));
    (
        dir.join("ca.pem"),
        dir.join("lapi.pem"),
        dir.join("lapi.key"),
    )
}

/// An https LAPI: decisions arrive when CROWDSEC_CA_FILE names its CA, and without it
/// the certificate is refused with a clear line and nothing is applied.
#[test]
fn https_lapi_with_its_own_ca_and_an_origin_filter() {
    if !can_run("https_lapi_with_its_own_ca_and_an_origin_filter") {
        return;
    }
    let a = Bed::new();
    let pki = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_pki(pki.path());
    let lapi = Lapi::start_tls(&a.target, "127.0.0.1:8443", &cert, &key);
    let bouncer = lapi.bouncer("tls-host");
    lapi.cscli(&["decisions", "add", "-i", "198.18.50.7", "-d", "1h"]);
    let dir = tempfile::tempdir().unwrap();
    let c = conf(
        dir.path(),
        "t",
        &lapi.url,
        &format!(
            "CROWDSEC_BOUNCER_KEY=\"{bouncer}\"\nCROWDSEC_CA_FILE=\"{}\"\n",
            ca.display()
        ),
    );
    let d = a.daemon(&["-c", &c]);
    wait_until("the decision over https", Duration::from_secs(8), || {
        set4(&a.target).iter().any(|e| e.0 == "198.18.50.7")
    });
    drop(d);
    // the same LAPI without its CA: refused, said so, nothing applied
    lapi.cscli(&["decisions", "add", "-i", "198.18.50.8", "-d", "1h"]);
    let c = conf(
        dir.path(),
        "u",
        &lapi.url,
        &format!("CROWDSEC_BOUNCER_KEY=\"{bouncer}\"\n"),
    );
    let d = a.daemon(&["-c", &c]);
    d.wait_for("the untrusted certificate", Duration::from_secs(10), |l| {
        l.iter().any(|x| {
            x.starts_with("adminalert: crowdsec: pulling decisions failed: decisions stream https://127.0.0.1:8443/v1/decisions/stream: no answer")
                && x.to_lowercase().contains("certificate")
        })
    });
    assert!(!set4(&a.target).iter().any(|e| e.0 == "198.18.50.8"));
    drop(d);
    // with the CA, but only decisions of origin "crowdsec": cscli's two are left out
    let c = conf(
        dir.path(),
        "f",
        &lapi.url,
        &format!(
            "CROWDSEC_BOUNCER_KEY=\"{bouncer}\"\nCROWDSEC_CA_FILE=\"{}\"\nCROWDSEC_ORIGINS=\"crowdsec\"\n",
            ca.display()
        ),
    );
    let d = a.daemon(&["-c", &c]);
    d.wait_for("the filtered start", Duration::from_secs(10), |l| {
        l.iter().any(|x| {
            x == "adminalert: crowdsec: applied 0 of 0 decisions from the LAPI at start (2 more left out by the CROWDSEC_ORIGINS/_SCENARIOS_* filter)"
        })
    });
    assert!(!set4(&a.target).iter().any(|e| e.0 == "198.18.50.8"));
}
