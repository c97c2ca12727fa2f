//! `--replay`: the engine over recorded captures (tests/fixtures, recorded in namespaces
//! by tests/fixtures/record.sh). No root needed.

use crate::util::{run, stderr, stdout, write};

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn conf(dir: &std::path::Path, extra: &str) -> String {
    write(
        dir,
        "r.conf",
        format!("TCP_PORTS=\"1,11\"\nUDP_PORTS=\"7\"\nBLOCK_TCP=\"0\"\nBLOCK_UDP=\"0\"\n{extra}")
            .as_bytes(),
    )
    .display()
    .to_string()
}

fn line(src: &str, proto: &str, port: u16, kind: &str, opts: &str, flags: &str) -> String {
    format!("Scan from: [{src}] ({src}) protocol: [{proto}] port: [{port}] type: [{kind}] IP opts: [{opts}] {flags}")
}

const LOG_ONLY: &str = "ignored: [false] triggered: [true] noblock: [true] blocked: [false]";

#[test]
fn every_fixture_gives_the_exact_lines() {
    let dir = tempfile::tempdir().unwrap();
    let c = conf(dir.path(), "");
    for (file, kind) in [
        ("syn", "TCP SYN/Normal scan"),
        ("fin", "TCP FIN scan"),
        ("null", "TCP NULL scan"),
        ("xmas", "TCP XMAS scan"),
    ] {
        for (fam, src, opts) in [
            ("v4", "198.18.0.1", "not set"),
            ("v6", "fd00:5e5e::1", "unknown"),
        ] {
            let o = run(&["-c", &c, "--replay", &format!("{FIX}/{file}-{fam}.pcap")]);
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            let mut got: Vec<String> = stdout(&o).lines().map(String::from).collect();
            got.sort();
            let mut want = vec![
                line(src, "TCP", 1, kind, opts, LOG_ONLY),
                line(src, "TCP", 11, kind, opts, LOG_ONLY),
            ];
            want.sort();
            assert_eq!(got, want, "{file}-{fam}");
        }
    }
    for (fam, src, opts) in [
        ("v4", "198.18.0.1", "not set"),
        ("v6", "fd00:5e5e::1", "unknown"),
    ] {
        let o = run(&["-c", &c, "--replay", &format!("{FIX}/udp-{fam}.pcap")]);
        let got: Vec<String> = stdout(&o).lines().map(String::from).collect();
        assert!(!got.is_empty());
        for l in got {
            assert_eq!(l, line(src, "UDP", 7, "UDP", opts, LOG_ONLY));
        }
    }
}

#[test]
fn replay_applies_trigger_and_ignore_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ign = write(dir.path(), "ign", b"fd00:5e5e::/32\n");
    let rec = dir.path().join("ran");
    let c = write(
        dir.path(),
        "r.conf",
        format!(
            "TCP_PORTS=\"1,11\"\nBLOCK_TCP=\"1\"\nSCAN_TRIGGER=\"2\"\nIGNORE_FILE=\"{}\"\nKILL_ROUTE=\"touch {} $TARGET$\"\nHISTORY_FILE=\"{}/h\"\n",
            ign.display(),
            rec.display(),
            dir.path().display()
        )
        .as_bytes(),
    );
    let o = run(&[
        "-c",
        c.to_str().unwrap(),
        "--replay",
        &format!("{FIX}/syn-v4.pcap"),
    ]);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].ends_with("ignored: [false] triggered: [false] noblock: [unset] blocked: [unset]"),
        "{out}"
    );
    assert!(lines[1].starts_with("attackalert: Host 198.18.0.1 has been blocked via dropped route using command: \"touch "), "{out}");
    assert!(
        lines[2].ends_with("ignored: [false] triggered: [true] noblock: [false] blocked: [true]"),
        "{out}"
    );
    assert!(!rec.exists(), "replay ran a command");
    assert!(
        !dir.path().join("h").exists(),
        "replay wrote the history file"
    );
    let o = run(&[
        "-c",
        c.to_str().unwrap(),
        "--replay",
        &format!("{FIX}/syn-v6.pcap"),
    ]);
    for l in stdout(&o).lines() {
        assert!(l.contains("ignored: [true] triggered: [unset]"), "{l}");
    }
}

/// Builds a pcap file (Ethernet) from frames.
fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        v.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&(f.len() as u32).to_le_bytes());
        v.extend_from_slice(&(f.len() as u32).to_le_bytes());
        v.extend_from_slice(f);
    }
    v
}

#[test]
fn malformed_frames_are_counted_and_rate_limited_never_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let c = conf(dir.path(), "");
    let mut eth = vec![0u8; 12];
    eth.extend_from_slice(&[0x08, 0x00]);
    let mut frames = Vec::new();
    for _ in 0..20 {
        let mut f = eth.clone();
        f.extend_from_slice(&[0x45, 0, 0, 40, 0, 0]); // a truncated IPv4 header
        frames.push(f);
    }
    // a bad header length and a fragment of a monitored port's packet
    let mut bad = eth.clone();
    bad.extend_from_slice(&[0x43; 40]);
    frames.push(bad);
    let p = write(dir.path(), "bad.pcap", &pcap(&frames));
    let o = run(&["-c", &c, "--replay", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 6, "{err}");
    for l in &lines[..5] {
        assert_eq!(*l, "IPv4 packet is too short (6 bytes), ignoring");
    }
    assert_eq!(
        lines[5],
        "16 more malformed packets were not logged (21 in all)"
    );
    assert!(stdout(&o).is_empty());
}

#[test]
fn a_missing_or_bad_capture_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let c = conf(dir.path(), "");
    let o = run(&["-c", &c, "--replay", "/nonexistent.pcap"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("/nonexistent.pcap: cannot read the capture file"));
    let junk = write(dir.path(), "junk.pcap", b"not a pcap");
    let o = run(&["-c", &c, "--replay", junk.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn block_2_runs_only_kill_run_cmd() {
    let dir = tempfile::tempdir().unwrap();
    let c = write(
        dir.path(),
        "r.conf",
        b"TCP_PORTS=\"1\"\nBLOCK_TCP=\"2\"\nKILL_RUN_CMD=\"/bin/echo $TARGET$ $PORT$ $MODE$\"\nKILL_ROUTE=\"/bin/false $TARGET$\"\nKILL_HOSTS_DENY=\"ALL: $TARGET$\"\n",
    );
    let o = run(&[
        "-c",
        c.to_str().unwrap(),
        "--replay",
        &format!("{FIX}/syn-v4.pcap"),
    ]);
    assert_eq!(
        stdout(&o),
        "attackalert: External command run for host: 198.18.0.1 using command: \"/bin/echo 198.18.0.1 1 stealth\"\n\
         Scan from: [198.18.0.1] (198.18.0.1) protocol: [TCP] port: [1] type: [TCP SYN/Normal scan] IP opts: [not set] ignored: [false] triggered: [true] noblock: [false] blocked: [true]\n"
    );
}

/// Issue #13: `--replay` shows the blocking decisions (what, for how long, by which
/// backends), still touching nothing.
#[test]
fn replay_shows_the_blocking_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let c = write(
        dir.path(),
        "r.conf",
        format!(
            "TCP_PORTS=\"1,11\"\nBLOCK_TCP=\"1\"\nBLOCK_BACKEND=\"nft,hosts-deny\"\nBLOCK_TIMEOUT=\"2h\"\nBLOCK_STATE_FILE=\"{d}/blocks\"\nHOSTS_DENY_FILE=\"{d}/hosts.deny\"\n",
            d = dir.path().display()
        )
        .as_bytes(),
    );
    let o = run(&[
        "-c",
        c.to_str().unwrap(),
        "--replay",
        &format!("{FIX}/syn-v4.pcap"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "replay: would block 198.18.0.1 for 2h via nft,hosts-deny",
        "{out}"
    );
    assert!(
        lines[1].ends_with("noblock: [false] blocked: [true]"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("attackalert: Host: 198.18.0.1/198.18.0.1 is already blocked"),
        "{out}"
    );
    assert_eq!(lines.len(), 4, "{out}");
    // nothing was written
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["r.conf"]);
}
