//! Tests of the backend against files in temp directories (no root needed).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use portsentry_blocker::{Blocker, Net, Reason, Target};

use super::*;

fn target(s: &str) -> Target {
    Target {
        net: s.parse().unwrap(),
        timeout: None,
        reason: Reason {
            protocol: "TCP".into(),
            port: 143,
            scan: "Connect".into(),
        },
    }
}

fn net(s: &str) -> Net {
    s.parse().unwrap()
}

fn setup(content: Option<&str>) -> (tempfile::TempDir, PathBuf, HostsDeny) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hosts.deny");
    if let Some(c) = content {
        fs::write(&path, c).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    }
    let hd = HostsDeny::new(&path, "ALL: $TARGET$");
    (dir, path, hd)
}

fn read(p: &PathBuf) -> String {
    fs::read_to_string(p).unwrap()
}

fn nets(hd: &mut HostsDeny) -> Vec<Net> {
    let mut v: Vec<Net> = hd.list().unwrap().into_iter().map(|h| h.net).collect();
    v.sort();
    v
}

#[test]
fn keeps_other_lines_and_adds_a_final_newline_before_the_block() {
    let orig = "# hosts.deny\n\nsshd: 203.0.113.0/24\n# trailing comment";
    let (_d, p, mut hd) = setup(Some(orig));
    hd.init().unwrap();
    assert_eq!(read(&p), orig, "init adds no block");
    hd.block(&target("198.18.0.1")).unwrap();
    hd.block(&target("fd00:5e5e::1")).unwrap();
    assert_eq!(
        read(&p),
        format!("{orig}\n{BEGIN}\nALL: 198.18.0.1\nALL: [fd00:5e5e::1]\n{END}\n")
    );
    hd.flush().unwrap();
    assert_eq!(read(&p), format!("{orig}\n"));
    assert!(!read(&p).contains("portsentry"));
}

#[test]
fn crlf_file_stays_crlf_outside_the_block() {
    let orig = "# dos file\r\nin.telnetd: ALL\r\n";
    let (_d, p, mut hd) = setup(Some(orig));
    hd.block(&target("198.18.0.1")).unwrap();
    let after = fs::read(&p).unwrap();
    assert!(after.starts_with(orig.as_bytes()));
    assert_eq!(nets(&mut hd), vec![net("198.18.0.1")]);
    hd.unblock(&net("198.18.0.1")).unwrap();
    assert_eq!(fs::read(&p).unwrap(), orig.as_bytes());
}

#[test]
fn block_is_idempotent_and_ipv6_is_bracketed() {
    let (_d, p, mut hd) = setup(Some("sshd: ALL\n"));
    let t = target("fd00:5e5e::1");
    hd.block(&t).unwrap();
    hd.block(&t).unwrap();
    hd.block_many(&[t.clone(), t.clone()]).unwrap();
    let text = read(&p);
    assert_eq!(text.matches("ALL: [fd00:5e5e::1]\n").count(), 1);
    assert_eq!(text.matches(BEGIN).count(), 1);
    hd.block(&target("198.18.0.0/16")).unwrap();
    hd.block(&target("fd00:5e5e::/32")).unwrap();
    let text = read(&p);
    assert!(text.contains("ALL: 198.18.0.0/16\n"));
    assert!(text.contains("ALL: [fd00:5e5e::]/32\n"));
    assert_eq!(nets(&mut hd).len(), 3);
}

#[test]
fn unblock_removes_its_line_and_missing_is_success() {
    let (_d, p, mut hd) = setup(Some("sshd: ALL\n"));
    hd.block_many(&[target("198.18.0.1"), target("198.18.0.2")])
        .unwrap();
    hd.unblock(&net("198.18.0.1")).unwrap();
    hd.unblock(&net("198.18.0.1")).unwrap();
    hd.unblock(&net("198.18.9.9")).unwrap();
    assert_eq!(
        read(&p),
        format!("sshd: ALL\n{BEGIN}\nALL: 198.18.0.2\n{END}\n")
    );
    hd.unblock(&net("198.18.0.2")).unwrap();
    assert_eq!(read(&p), "sshd: ALL\n");
}

#[test]
fn list_round_trips_with_ports_and_mode() {
    let (_d, p, _) = setup(None);
    let mut hd = HostsDeny::new(p.clone(), "ALL: $TARGET$ # port $PORT$ $MODE$");
    let ts = [
        target("198.18.0.1"),
        target("fd00:5e5e::1"),
        target("198.18.4.0/24"),
        target("fd00:1::/48"),
    ];
    hd.block_many(&ts).unwrap();
    assert!(read(&p).contains("ALL: 198.18.0.1 # port 143 stealth\n"));
    let held = hd.list().unwrap();
    assert_eq!(
        held.iter().map(|h| h.net).collect::<Vec<_>>(),
        ts.iter().map(|t| t.net).collect::<Vec<_>>()
    );
    assert!(held.iter().all(|h| h.remaining.is_none()));
}

#[test]
fn replace_all_leaves_exactly_the_given_hosts() {
    let (_d, p, mut hd) = setup(Some("sshd: ALL\n"));
    hd.block_many(&[
        target("198.18.0.1"),
        target("198.18.0.2"),
        target("198.18.0.3"),
    ])
    .unwrap();
    hd.replace_all(&[
        target("198.18.0.2"),
        target("fd00:5e5e::7"),
        target("198.18.0.2"),
    ])
    .unwrap();
    assert_eq!(nets(&mut hd), vec![net("198.18.0.2"), net("fd00:5e5e::7")]);
    assert!(read(&p).starts_with("sshd: ALL\n"));
    hd.replace_all(&[]).unwrap();
    assert_eq!(read(&p), "sshd: ALL\n");
}

#[test]
fn missing_file_is_created_0644_by_init() {
    let (_d, p, mut hd) = setup(None);
    hd.unblock(&net("198.18.0.1")).unwrap();
    hd.flush().unwrap();
    assert!(hd.list().unwrap().is_empty());
    assert!(!p.exists());
    hd.init().unwrap();
    assert_eq!(read(&p), "");
    assert_eq!(
        fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
        0o644
    );
    hd.init().unwrap();
    assert_eq!(read(&p), "");
}

#[test]
fn mode_and_owner_are_kept() {
    use std::os::unix::fs::MetadataExt;
    let (d, p, mut hd) = setup(Some("sshd: ALL\n"));
    fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
    let before = fs::metadata(&p).unwrap();
    // Held open, the old inode cannot be freed and its number reused by a later file
    // (that made the inode comparison below fail now and then).
    let _old = fs::File::open(&p).unwrap();
    hd.block(&target("198.18.0.1")).unwrap();
    hd.unblock(&net("198.18.0.1")).unwrap();
    hd.block(&target("198.18.0.2")).unwrap();
    let after = fs::metadata(&p).unwrap();
    assert_eq!(after.permissions().mode() & 0o7777, 0o640);
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    assert_ne!(after.ino(), before.ino(), "rewritten through a temp file");
    let leftovers: Vec<_> = fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn symlink_is_refused_and_target_unchanged() {
    let (d, real, _) = setup(Some("sshd: ALL\n"));
    // a link anyone could have planted: in a sticky world-writable directory
    let shared = d.path().join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let link = shared.join("link.deny");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let mut hd = HostsDeny::new(&link, "ALL: $TARGET$");
    for e in [
        hd.init().unwrap_err(),
        hd.block(&target("198.18.0.1")).unwrap_err(),
        hd.list().unwrap_err(),
    ] {
        assert_eq!(e.backend, "hosts-deny");
        let cause = e.source.to_string();
        assert!(cause.contains("symbolic link"), "{cause}");
        assert!(cause.contains(&link.display().to_string()), "{cause}");
    }
    assert_eq!(read(&real), "sshd: ALL\n");
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn world_writable_is_refused_and_file_unchanged() {
    let (_d, p, mut hd) = setup(Some("sshd: ALL\n"));
    fs::set_permissions(&p, fs::Permissions::from_mode(0o666)).unwrap();
    let e = hd.block(&target("198.18.0.1")).unwrap_err();
    assert_eq!(e.net, Some(net("198.18.0.1")));
    let cause = e.source.to_string();
    assert!(cause.contains("world-writable"), "{cause}");
    assert!(cause.contains(&p.display().to_string()), "{cause}");
    assert!(hd.init().is_err());
    assert_eq!(read(&p), "sshd: ALL\n");
    assert_eq!(
        fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o666
    );
}

#[test]
fn two_instances_share_the_file() {
    let (_d, p, mut a) = setup(Some("sshd: ALL\n"));
    let mut b = HostsDeny::new(&p, "ALL: $TARGET$");
    a.init().unwrap();
    b.init().unwrap();
    a.block(&target("198.18.0.1")).unwrap();
    assert_eq!(nets(&mut b), vec![net("198.18.0.1")]);
    b.block(&target("198.18.0.2")).unwrap();
    assert_eq!(nets(&mut a), vec![net("198.18.0.1"), net("198.18.0.2")]);
    // Concurrent writers serialise on the lock and lose nothing.
    let threads: Vec<_> = (0..4u8)
        .map(|i| {
            let mut h = HostsDeny::new(&p, "ALL: $TARGET$");
            std::thread::spawn(move || {
                for j in 0..10u8 {
                    h.block(&target(&format!("198.19.{i}.{j}"))).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(a.list().unwrap().len(), 42);
    assert!(p.with_extension("deny.lock").exists());
}

#[test]
fn bad_template_is_an_error_naming_the_path() {
    let (_d, p, _) = setup(Some("sshd: ALL\n"));
    let mut hd = HostsDeny::new(&p, "ALL: 198.18.0.1");
    let e = hd.init().unwrap_err();
    assert!(e.source.to_string().contains("$TARGET$"));
    assert_eq!(hd.name(), "hosts-deny");
    assert_eq!(read(&p), "sshd: ALL\n");
}

#[test]
fn damaged_block_without_end_keeps_admin_lines() {
    let orig = format!("{BEGIN}\nALL: 198.18.0.1\nsshd: 203.0.113.5\n");
    let (_d, p, mut hd) = setup(Some(&orig));
    assert_eq!(nets(&mut hd), vec![net("198.18.0.1")]);
    hd.block(&target("198.18.0.2")).unwrap();
    assert_eq!(
        read(&p),
        format!("{BEGIN}\nALL: 198.18.0.1\nALL: 198.18.0.2\n{END}\nsshd: 203.0.113.5\n")
    );
}

/// Issue #13: one renderer for the backend and the legacy action; one writer.
#[test]
fn the_legacy_action_renders_and_writes_like_the_backend() {
    let (_d, p, _) = setup(Some("sshd: ALL\n"));
    let v6: std::net::IpAddr = "fd00:5e5e::1".parse().unwrap();
    let line = render_line(&p, "ALL: $TARGET$ : $MODE$ $PORT$", v6, 7, "atcp").unwrap();
    assert_eq!(line, "ALL: [fd00:5e5e::1] : atcp 7");
    assert_eq!(add_line(&p, &line).unwrap(), Added::Added);
    assert_eq!(add_line(&p, &line).unwrap(), Added::AlreadyThere);
    assert_eq!(read(&p), "sshd: ALL\nALL: [fd00:5e5e::1] : atcp 7\n");
    // a 1.2 template without $TARGET$ still renders (1.2 accepted it)
    assert_eq!(
        render_line(&p, "ALL: everyone", v6, 7, "atcp").unwrap(),
        "ALL: everyone"
    );
    // the same refusals as the backend: a link anyone could have planted (here in a
    // sticky world-writable directory) is never followed
    let (d2, _, _) = setup(None);
    let shared = d2.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let q = shared.join("hosts.deny");
    std::os::unix::fs::symlink(&p, &q).unwrap();
    assert!(matches!(
        add_line(&q, "ALL: 198.18.0.1"),
        Err(HostsDenyError::SymlinkRefused { .. })
    ));
    assert!(add_line(&p, "ALL: 198.18.0.1\nALL: ALL").is_err());
}

/// Issue #14 item 1: the line is appended to the file itself (same inode: hard links,
/// `chattr +a`, owner and labels survive), and a root-owned link in a root-only
/// directory is followed to its target, which keeps being the file.
#[test]
fn add_line_appends_in_place_and_follows_roots_own_links() {
    use std::os::unix::fs::MetadataExt;
    let (d, p, _) = setup(Some("sshd: ALL"));
    let other = d.path().join("hard-link");
    std::fs::hard_link(&p, &other).unwrap();
    let ino = std::fs::metadata(&p).unwrap().ino();
    assert_eq!(add_line(&p, "ALL: 198.18.0.1").unwrap(), Added::Added);
    assert_eq!(std::fs::metadata(&p).unwrap().ino(), ino);
    assert_eq!(read(&other), "sshd: ALL\nALL: 198.18.0.1\n");
    // the backend's rewrite (which can remove lines) still keeps the content
    let mut b = HostsDeny::new(&p, "ALL: $TARGET$");
    b.init().unwrap();
    if std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
    {
        // tempdir: root's, mode 0700: a link there is trusted
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert_eq!(add_line(&link, "ALL: 198.18.0.2").unwrap(), Added::Added);
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(read(&p).ends_with("ALL: 198.18.0.2\n"));
        let mut b = HostsDeny::new(&link, "ALL: $TARGET$");
        b.block(&target("198.18.0.3")).unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(read(&p).contains("ALL: 198.18.0.3"));
    }
}
