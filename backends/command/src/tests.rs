//! Tests of the command backend against fake tools that record their argv.

use std::path::{Path, PathBuf};

use portsentry_blocker::Reason;

use super::*;

/// A fake tool that records its argv, one line per run, and fails when told to.
fn tool(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\nprintf '%s|' \"$@\" >> {log}\necho >> {log}\n{body}\n",
            log = dir.join("log").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p
}

fn target(s: &str, secs: Option<u64>) -> Target {
    Target {
        net: s.parse().unwrap(),
        timeout: secs.map(Duration::from_secs),
        reason: Reason {
            protocol: "TCP".into(),
            port: 143,
            scan: "x".into(),
        },
    }
}

fn words(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn argv_templates_are_filled_word_by_word() {
    let t = words(&[
        "/sbin/fw",
        "add",
        "$TARGET$",
        "--port=$PORT$",
        "ttl $TIMEOUT$",
    ]);
    assert_eq!(
        plan_argv(&t, &target("198.18.0.1", Some(3600))),
        words(&["/sbin/fw", "add", "198.18.0.1", "--port=143", "ttl 3600"])
    );
    assert_eq!(
        plan_argv(&t, &target("fd00:5e5e::/64", None))[2],
        "fd00:5e5e::/64"
    );
}

#[test]
fn lifecycle_against_a_recording_tool() {
    let dir = tempfile::tempdir().unwrap();
    let fw = tool(dir.path(), "fw", "exit 0");
    let mut c = Command::new(Options {
        block: vec![fw.display().to_string(), "block".into(), "$TARGET$".into()],
        unblock: Some(vec![
            fw.display().to_string(),
            "unblock".into(),
            "$TARGET$".into(),
        ]),
        limit: Duration::from_secs(5),
    });
    c.init().unwrap();
    c.block(&target("198.18.0.1", None)).unwrap();
    c.block_many(&[target("198.18.0.2", None), target("fd00:5e5e::2", None)])
        .unwrap();
    c.unblock(&"198.18.0.1".parse().unwrap()).unwrap();
    assert!(c.list().unwrap().is_empty());
    assert!(!c.holds_list());
    c.flush().unwrap();
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert_eq!(
        log,
        "block|198.18.0.1|\nblock|198.18.0.2|\nblock|fd00:5e5e::2|\nunblock|198.18.0.1|\n"
    );
}

#[test]
fn failures_name_argv_status_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let bad = tool(dir.path(), "bad", "echo 'table full' >&2; exit 1");
    let mut c = Command::new(Options {
        block: vec![bad.display().to_string(), "$TARGET$".into()],
        unblock: None,
        limit: Duration::from_secs(5),
    });
    let e = c.block(&target("198.18.0.1", None)).unwrap_err();
    let text = format!("{e}: {}", e.source);
    assert!(
        text.contains(&format!("`{} 198.18.0.1` failed", bad.display())),
        "{text}"
    );
    assert!(text.contains("exit status: 1"), "{text}");
    assert!(text.ends_with("table full"), "{text}");
    // no UNBLOCK_COMMAND: unblocking is an error that says so
    let e = c.unblock(&"198.18.0.1".parse().unwrap()).unwrap_err();
    assert!(e.source.to_string().contains("no UNBLOCK_COMMAND"));
    // a missing tool, and one that hangs past the limit
    let mut c = Command::new(Options {
        block: vec!["/nonexistent/fw".into(), "$TARGET$".into()],
        unblock: None,
        limit: Duration::from_secs(5),
    });
    assert!(c.block(&target("198.18.0.1", None)).is_err());
    let slow = tool(dir.path(), "slow", "sleep 30");
    let mut c = Command::new(Options {
        block: vec![slow.display().to_string(), "$TARGET$".into()],
        unblock: None,
        limit: Duration::from_millis(300),
    });
    let start = std::time::Instant::now();
    let e = c.block(&target("198.18.0.1", None)).unwrap_err();
    assert!(e.source.to_string().contains("did not end within"));
    assert!(start.elapsed() < Duration::from_secs(5));
}
