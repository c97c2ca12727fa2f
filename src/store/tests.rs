//! Block store tests: temp dirs only, no root, no clock except the timing print.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use portsentry_blocker::Net;

use super::*;

/// A clock near the times in [`rec`], so lifted test records are recent history.
const NOW: u64 = 1_700_010_000;

fn net(s: &str) -> Net {
    s.parse().unwrap()
}

fn rec(n: &str) -> Record {
    Record {
        net: net(n),
        backends: vec!["nft"].into(),
        first_seen: 1_700_000_000,
        last_seen: 1_700_000_042,
        hits: 3,
        protocol: "TCP".into(),
        port: 143,
        scan: "TCP SYN/Normal scan".into(),
        expires: Some(1_700_003_600),
        offences: 1,
        lifted: false,
    }
}

fn store_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("var/lib/portsentry/blocks")
}

fn open(path: &Path) -> Store {
    let (store, warnings) = Store::open(path).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    store
}

fn header() -> String {
    record::header_line()
}

fn line_count(path: &Path) -> usize {
    fs::read_to_string(path).unwrap().lines().count()
}

fn v4(i: u32) -> Net {
    Net::host(std::net::Ipv4Addr::from(0x0a00_0000 + i).into())
}

#[test]
fn round_trip_of_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let a = Record {
        net: net("2001:db8:1:2::/64"),
        backends: vec!["nft", "hosts-deny"].into(),
        first_seen: 1,
        last_seen: u64::MAX,
        hits: u32::MAX,
        protocol: "UDP".into(),
        port: 65535,
        scan: "UDP scan \"quoted\" \\ ünïcode\n".into(),
        expires: Some(u64::MAX - 1),
        offences: 7,
        lifted: false,
    };
    let b = Record {
        net: net("192.0.2.0/24"),
        backends: Default::default(),
        first_seen: 10,
        last_seen: 20,
        hits: 0,
        protocol: Default::default(),
        port: 0,
        scan: "manual".into(),
        expires: None,
        offences: 0,
        lifted: true,
    };
    let c = rec("198.51.100.7");
    {
        let mut s = open(&path);
        for r in [&a, &b, &c] {
            s.put(r.clone()).unwrap();
        }
    }
    let s = open(&path);
    assert_eq!(s.get(&a.net), Some(&a));
    assert_eq!(s.get(&b.net), Some(&b));
    assert_eq!(s.get(&c.net), Some(&c));
    assert_eq!(s.active_len(), 2);
    let active: Vec<_> = s.active().map(|r| r.net).collect();
    assert_eq!(active, vec![c.net, a.net]);
    assert_eq!(s.all().count(), 3);
    // Readable: one JSON object per line, the net as text.
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("{\"portsentry_block_store\":1}\n"));
    assert!(text.contains("\"net\":\"2001:db8:1:2::/64\""));
    assert!(text.contains("\"net\":\"198.51.100.7\""));
    assert!(text.contains("\"expires\":null"));
}

#[test]
fn creates_dirs_and_file_mode_0600_with_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let s = open(&path);
    assert_eq!(s.active_len(), 0);
    assert_eq!(fs::read_to_string(&path).unwrap(), header());
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(path.with_file_name("blocks.lock").exists());
}

#[test]
fn reopen_after_put_lift_clear() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    {
        let mut s = open(&path);
        s.put(rec("192.0.2.1")).unwrap();
        s.put(rec("192.0.2.2")).unwrap();
    }
    {
        let mut s = open(&path);
        assert_eq!(s.active_len(), 2);
        assert!(s.lift(&net("192.0.2.1")).unwrap());
        assert!(!s.lift(&net("192.0.2.1")).unwrap(), "already lifted");
        assert!(!s.lift(&net("203.0.113.9")).unwrap(), "unknown");
    }
    {
        let mut s = open(&path);
        assert_eq!(s.active_len(), 1);
        let lifted = s.get(&net("192.0.2.1")).unwrap();
        assert!(lifted.lifted);
        assert_eq!(lifted.offences, 1);
        // Re-blocking a lifted net makes it active again.
        let mut again = rec("192.0.2.1");
        again.offences = 2;
        s.put(again.clone()).unwrap();
        assert_eq!(s.active_len(), 2);
        s.clear().unwrap();
        assert_eq!(s.active_len(), 0);
        assert!(s.get(&net("192.0.2.1")).is_none());
        s.put(rec("192.0.2.3")).unwrap();
    }
    let s = open(&path);
    assert_eq!(s.active_len(), 1);
    assert_eq!(s.all().count(), 1);
    assert!(s.get(&net("192.0.2.3")).is_some());
    assert!(fs::read_to_string(&path)
        .unwrap()
        .contains("\n{\"clear\":true}\n"));
}

#[test]
fn expired_lists_only_active_due_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&store_path(&dir));
    let mut due = rec("192.0.2.1");
    due.expires = Some(100);
    let mut later = rec("192.0.2.2");
    later.expires = Some(101);
    let mut permanent = rec("192.0.2.3");
    permanent.expires = None;
    let mut lifted = rec("192.0.2.4");
    lifted.expires = Some(50);
    lifted.lifted = true;
    for r in [due, later, permanent, lifted] {
        s.put(r).unwrap();
    }
    assert_eq!(s.expired(99), Vec::<Net>::new());
    assert_eq!(s.expired(100), vec![net("192.0.2.1")]);
    assert_eq!(s.expired(1000), vec![net("192.0.2.1"), net("192.0.2.2")]);
}

#[test]
fn escalation_arithmetic() {
    let h = Duration::from_secs(3600);
    let day = Some(Duration::from_secs(86400));
    // First offence: the base.
    assert_eq!(timeout_for(Some(h), 2.0, day, 1), Some(h));
    assert_eq!(timeout_for(Some(h), 2.0, day, 0), Some(h));
    // Doubling.
    assert_eq!(timeout_for(Some(h), 2.0, day, 2), Some(h * 2));
    assert_eq!(timeout_for(Some(h), 2.0, day, 4), Some(h * 8));
    assert_eq!(timeout_for(Some(h), 1.5, None, 2), Some(h * 3 / 2));
    // Cap.
    assert_eq!(timeout_for(Some(h), 2.0, day, 6), day);
    assert_eq!(timeout_for(Some(h), 2.0, day, u32::MAX), day);
    assert_eq!(
        timeout_for(Some(h), 2.0, None, u32::MAX),
        Some(Duration::MAX)
    );
    assert_eq!(timeout_for(Some(h), f64::INFINITY, day, 3), day);
    // Permanent stays permanent.
    assert_eq!(timeout_for(None, 2.0, day, 5), None);
    assert_eq!(timeout_for(None, 1.0, None, 1), None);
    // Multiplier 1: no escalation.
    assert_eq!(timeout_for(Some(h), 1.0, day, 100), Some(h));
    assert_eq!(timeout_for(Some(h), 1.0, None, u32::MAX), Some(h));
    // Nonsense multipliers count as 1.
    assert_eq!(timeout_for(Some(h), f64::NAN, None, 5), Some(h));
    assert_eq!(timeout_for(Some(h), -2.0, None, 5), Some(h));
    // A cap below the base caps the base too.
    assert_eq!(
        timeout_for(Some(h), 2.0, Some(Duration::from_secs(60)), 1),
        Some(Duration::from_secs(60))
    );
}

#[test]
fn torn_last_line_is_a_warning_and_the_rest_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    {
        let mut s = open(&path);
        s.put(rec("192.0.2.1")).unwrap();
        s.put(rec("192.0.2.2")).unwrap();
    }
    let good = fs::read(&path).unwrap();
    let mut torn = good.clone();
    torn.extend_from_slice(b"{\"net\":\"192.0.2.3\",\"backends\":[\"nf");
    fs::write(&path, &torn).unwrap();

    let (mut s, warnings) = Store::open(&path).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let want = format!("{}:4: dropped an incomplete last line", path.display());
    assert!(warnings[0].starts_with(&want), "{}", warnings[0]);
    assert_eq!(s.active_len(), 2);
    assert!(s.get(&net("192.0.2.3")).is_none());
    // Only the partial line was dropped, so the next append starts a clean line.
    assert_eq!(fs::read(&path).unwrap(), good);
    s.put(rec("192.0.2.4")).unwrap();
    drop(s);
    let s = open(&path);
    assert_eq!(s.active_len(), 3);
}

#[test]
fn torn_tail_of_zeros_is_dropped() {
    // Some file systems show a crashed append as zeros.
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    open(&path).put(rec("192.0.2.1")).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0; 100]);
    fs::write(&path, &bytes).unwrap();
    let (s, warnings) = Store::open(&path).unwrap();
    assert_eq!(warnings.len(), 1);
    assert_eq!(s.active_len(), 1);
}

#[test]
fn whole_last_line_without_newline_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    open(&path);
    let mut text = header();
    text.push_str(&String::from_utf8(record::encode(&rec("192.0.2.1")).unwrap()).unwrap());
    text.pop(); // the newline
    fs::write(&path, &text).unwrap();
    let mut s = open(&path);
    assert_eq!(s.active_len(), 1);
    s.put(rec("192.0.2.2")).unwrap();
    drop(s);
    assert_eq!(open(&path).active_len(), 2);
}

#[test]
fn torn_header_is_a_warning_and_a_fresh_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, "{\"portsentry_blo").unwrap();
    let (s, warnings) = Store::open(&path).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(s.active_len(), 0);
    assert_eq!(fs::read_to_string(&path).unwrap(), header());
}

#[test]
fn corrupt_middle_line_is_an_error_naming_path_line_and_file_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    {
        let mut s = open(&path);
        s.put(rec("192.0.2.1")).unwrap();
        s.put(rec("192.0.2.2")).unwrap();
        s.put(rec("192.0.2.3")).unwrap();
    }
    let text = fs::read_to_string(&path).unwrap();
    let corrupt = text.replacen("\"hits\":3", "\"hits\":\"x\"", 2);
    // Line 2 stays good; line 3 (the second record) is now the first bad one.
    let corrupt = corrupt.replacen("\"hits\":\"x\"", "\"hits\":3", 1);
    // And a torn tail, which must not be cut off either when the file is rejected.
    let corrupt = corrupt + "{\"net\":";
    fs::write(&path, &corrupt).unwrap();
    let err = Store::open(&path).unwrap_err();
    let msg = err.to_string();
    let want = format!("{}:3: ", path.display());
    assert!(msg.starts_with(&want), "{msg}");
    assert!(msg.contains("hits") || msg.contains("u32"), "{msg}");
    assert!(matches!(err, StoreError::Parse { line: 3, .. }));
    assert_eq!(fs::read_to_string(&path).unwrap(), corrupt);

    // A bad address is reported the same way.
    let bad_net = text.replacen("192.0.2.2", "192.0.2.300", 1);
    fs::write(&path, &bad_net).unwrap();
    let msg = Store::open(&path).unwrap_err().to_string();
    assert!(
        msg.starts_with(&want) && msg.contains("192.0.2.300"),
        "{msg}"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), bad_net);
}

#[test]
fn future_version_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let text = "{\"portsentry_block_store\":2}\n{\"whatever\":\"new\"}\n";
    fs::write(&path, text).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::FutureVersion { found: 2, .. }));
    let msg = err.to_string();
    assert!(msg.contains(&format!("{}:1:", path.display())), "{msg}");
    assert!(
        msg.contains("version 2") && msg.contains("version 1"),
        "{msg}"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn a_file_that_is_not_a_store_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    for text in [
        "Host: 192.0.2.1/192.0.2.1 Port: 143 TCP Blocked\n",
        "ALL: 192.0.2.1",
    ] {
        let path = dir.path().join("blocks");
        fs::write(&path, text).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
    }
}

#[test]
fn two_instances_see_each_others_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let mut daemon = open(&path);
    let mut cli = open(&path);
    assert!(!cli.refresh().unwrap());

    daemon.put(rec("192.0.2.1")).unwrap();
    assert!(cli.refresh().unwrap());
    assert_eq!(cli.get(&net("192.0.2.1")), Some(&rec("192.0.2.1")));
    assert!(!cli.refresh().unwrap());

    assert!(cli.lift(&net("192.0.2.1")).unwrap());
    assert!(daemon.refresh().unwrap());
    assert!(daemon.get(&net("192.0.2.1")).unwrap().lifted);
    assert_eq!(daemon.active_len(), 0);

    // A writer catches up before it writes: lifting what the other lifted is a no-op.
    assert!(!daemon.lift(&net("192.0.2.1")).unwrap());

    // Across a compaction by the daemon (the file is replaced: new inode).
    daemon.put(rec("192.0.2.2")).unwrap();
    let before = fs::metadata(&path).unwrap();
    daemon.compact_at(NOW).unwrap();
    let after = fs::metadata(&path).unwrap();
    assert_ne!(
        std::os::unix::fs::MetadataExt::ino(&before),
        std::os::unix::fs::MetadataExt::ino(&after)
    );
    daemon.put(rec("192.0.2.3")).unwrap();
    assert!(cli.refresh().unwrap());
    assert_eq!(cli.active_len(), 2);
    assert!(cli.get(&net("192.0.2.1")).unwrap().lifted);

    // The CLI writes without refreshing after another compaction: nothing is lost.
    daemon.compact_at(NOW).unwrap();
    cli.put(rec("192.0.2.4")).unwrap();
    daemon.lift(&net("192.0.2.2")).unwrap();
    cli.clear().unwrap();
    cli.put(rec("192.0.2.5")).unwrap();
    assert!(daemon.refresh().unwrap());
    let fresh = open(&path);
    for s in [&daemon, &cli, &fresh] {
        let nets: Vec<_> = s.all().map(|r| r.net).collect();
        assert_eq!(nets, vec![net("192.0.2.5")]);
    }
}

#[test]
fn refresh_drops_a_torn_line_left_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let mut a = open(&path);
    a.put(rec("192.0.2.1")).unwrap();
    let mut b = open(&path);
    let mut bytes = fs::read(&path).unwrap();
    let good_len = bytes.len();
    bytes.extend_from_slice(&record::encode(&rec("192.0.2.2")).unwrap());
    bytes.extend_from_slice(b"{\"net\":\"192.0.2.3\",\"hi");
    fs::write(&path, &bytes).unwrap();
    assert!(b.refresh().unwrap());
    assert_eq!(b.active_len(), 2);
    let warnings = b.take_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains(":4: dropped"), "{}", warnings[0]);
    assert!(fs::read(&path).unwrap().len() > good_len);
    a.put(rec("192.0.2.4")).unwrap();
    assert_eq!(a.active_len(), 3);
    assert!(a.take_warnings().is_empty());
    assert_eq!(open(&path).active_len(), 3);
}

#[test]
fn compaction_keeps_everything_and_shrinks_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let mut s = open(&path);
    for round in 0..3u32 {
        for i in 0..300 {
            let mut r = rec("192.0.2.1");
            r.net = v4(i);
            r.hits = round;
            s.put(r).unwrap();
        }
    }
    for i in 0..100 {
        s.lift(&v4(i)).unwrap();
    }
    let before: Vec<Record> = s.all().cloned().collect();
    assert_eq!(line_count(&path), 1 + 1000);
    s.compact_at(NOW).unwrap();
    assert_eq!(line_count(&path), 1 + 300);
    let after: Vec<Record> = s.all().cloned().collect();
    assert_eq!(before, after);
    assert_eq!(s.active_len(), 200);
    drop(s);
    let s = open(&path);
    assert_eq!(s.all().cloned().collect::<Vec<_>>(), before);
    assert_eq!(s.active_len(), 200);
    assert!(!path.with_file_name("blocks.tmp").exists());
}

#[test]
fn compaction_runs_by_itself_when_the_journal_grows() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let mut s = open(&path);
    for hits in 0..2500 {
        let mut r = rec("192.0.2.1");
        r.hits = hits;
        s.put(r).unwrap();
    }
    assert!(s.take_warnings().is_empty());
    assert!(line_count(&path) <= 1 + 1025, "{}", line_count(&path));
    drop(s);
    let s = open(&path);
    assert_eq!(s.get(&net("192.0.2.1")).unwrap().hits, 2499);
}

#[test]
fn compaction_drops_lifted_history_older_than_30_days() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let mut s = open(&path);
    let now = 1_800_000_000;
    let mut old = rec("192.0.2.1");
    old.last_seen = now - HISTORY_SECS - 10;
    old.expires = Some(now - HISTORY_SECS - 1);
    old.lifted = true;
    let mut recent = rec("192.0.2.2");
    recent.last_seen = now - HISTORY_SECS - 10;
    recent.expires = Some(now - HISTORY_SECS + 1);
    recent.lifted = true;
    let mut old_but_active = rec("192.0.2.3");
    old_but_active.last_seen = 5;
    old_but_active.expires = None;
    for r in [old, recent, old_but_active] {
        s.put(r).unwrap();
    }
    s.compact_at(now).unwrap();
    assert!(s.get(&net("192.0.2.1")).is_none());
    assert!(s.get(&net("192.0.2.2")).is_some());
    assert!(s.get(&net("192.0.2.3")).is_some());
    drop(s);
    assert_eq!(open(&path).all().count(), 2);
}

#[test]
fn compaction_keeps_the_file_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let mut s = open(&path);
    s.put(rec("192.0.2.1")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    s.compact().unwrap();
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
}

#[test]
fn ten_thousand_puts_then_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let mut s = open(&path);
    for i in 0..10_000 {
        let mut r = rec("192.0.2.1");
        r.net = v4(i);
        r.hits = i;
        s.put(r).unwrap();
    }
    assert!(s.take_warnings().is_empty());
    drop(s);
    let s = open(&path);
    assert_eq!(s.active_len(), 10_000);
    for i in (0..10_000).step_by(997) {
        assert_eq!(s.get(&v4(i)).unwrap().hits, i);
    }
}

/// Issue #17 item 4: a store file deleted while in use is written again from memory;
/// no block is lost.
#[test]
fn a_removed_store_is_rewritten_from_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let mut s = open(&path);
    s.put(rec("198.18.0.1")).unwrap();
    s.put(rec("198.18.0.2")).unwrap();
    fs::remove_file(&path).unwrap();
    assert!(!s.refresh().unwrap());
    assert_eq!(s.active_len(), 2);
    let w = s.take_warnings();
    assert!(
        w[0].contains("removed while in use; rewritten from memory"),
        "{w:?}"
    );
    // on disk again, for the next process
    let again = open(&path);
    assert_eq!(again.active_len(), 2);
}

/// Issue #17 item 4: a store file replaced by something that is not portsentry (a copy,
/// a restore, tampering) lifts nothing: memory is written out again, active records of
/// the new file are taken over, and the file found is kept aside.
#[test]
fn a_replaced_store_is_merged_into_memory_and_kept_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let mut s = open(&path);
    s.put(rec("198.18.0.1")).unwrap();
    s.put(rec("198.18.0.2")).unwrap();
    // another process of ours compacts: that is followed as usual, no warning
    let mut cli = open(&path);
    cli.lift(&net("198.18.0.2")).unwrap();
    cli.compact_at(NOW).unwrap();
    assert!(s.refresh().unwrap());
    assert_eq!(s.active_len(), 1);
    assert!(s.take_warnings().is_empty());
    // an admin's `cp` of an older store with one other block, renamed into place
    let other = dir.path().join("other");
    fs::write(
        &other,
        format!(
            "{}{}",
            header(),
            String::from_utf8(record::encode(&rec("198.18.0.9")).unwrap()).unwrap()
        ),
    )
    .unwrap();
    let mut lifted_there = rec("198.18.0.1");
    lifted_there.lifted = true;
    fs::OpenOptions::new()
        .append(true)
        .open(&other)
        .unwrap()
        .write_all(&record::encode(&lifted_there).unwrap())
        .unwrap();
    fs::rename(&other, &path).unwrap();
    assert!(s.refresh().unwrap(), "the new block is a change");
    let active: Vec<String> = s.active().map(|r| r.net.to_string()).collect();
    assert_eq!(active, ["198.18.0.1", "198.18.0.9"]);
    let w = s.take_warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("the block store was replaced while in use, not by portsentry; rewritten from memory (2 active blocks kept, 1 new ones taken from the file found); the file found is kept as"),
        "{w:?}"
    );
    assert!(sidecar(&path, ".replaced").exists());
    let again = open(&path);
    assert_eq!(again.active_len(), 2);
    // and the other process follows the rewrite (ours, announced) without a warning
    assert!(cli.refresh().unwrap());
    assert_eq!(cli.active_len(), 2);
    assert!(cli.take_warnings().is_empty());

    // truncated in place, or replaced by something that is no store: nothing lifted
    fs::write(&path, "").unwrap();
    assert!(!s.refresh().unwrap());
    assert_eq!(s.active_len(), 2);
    assert!(s.take_warnings()[0].contains("was truncated while in use"));
    fs::remove_file(&path).unwrap();
    fs::write(&path, "garbage\n").unwrap();
    assert!(!s.refresh().unwrap());
    let w = s.take_warnings();
    assert!(w[0].contains("(it could not be read: "), "{w:?}");
    assert_eq!(open(&path).active_len(), 2);
    // a symlink planted at the path is moved aside, never followed
    let target = dir.path().join("precious");
    fs::write(&target, "keep me\n").unwrap();
    fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&target, &path).unwrap();
    assert!(!s.refresh().unwrap());
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep me\n");
    assert!(!fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(open(&path).active_len(), 2);
}

/// What another process changed is reported net by net (the daemon applies or lifts
/// exactly those), through appends, a flush and a compaction alike; our own changes are
/// not.
#[test]
fn changes_by_another_process_are_named_net_by_net() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let mut daemon = open(&path);
    let mut cli = open(&path);
    daemon.put(rec("198.18.0.1")).unwrap();
    daemon.put(rec("198.18.0.2")).unwrap();
    assert!(daemon.take_changed().is_empty());
    cli.refresh().unwrap();
    cli.take_changed();
    cli.lift(&net("198.18.0.1")).unwrap();
    cli.put(rec("198.18.0.3")).unwrap();
    cli.put(rec("198.18.0.3")).unwrap();
    daemon.refresh().unwrap();
    assert_eq!(
        daemon.take_changed(),
        [net("198.18.0.1"), net("198.18.0.3")]
    );
    // a compaction by the other process: only what differs
    cli.put(rec("198.18.0.4")).unwrap();
    cli.compact_at(NOW).unwrap();
    daemon.refresh().unwrap();
    assert_eq!(daemon.take_changed(), [net("198.18.0.4")]);
    // a flush names every block that was active
    cli.clear().unwrap();
    daemon.refresh().unwrap();
    assert_eq!(
        daemon.take_changed(),
        [net("198.18.0.2"), net("198.18.0.3"), net("198.18.0.4")]
    );
    assert_eq!(daemon.active_len(), 0);
}
