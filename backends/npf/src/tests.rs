//! Tests: golden argvs, npfctl's formats, and the backend against the fake npfctl.
//!
//! In: argvs and outputs as NetBSD's npfctl(8) prints them (quoted in `parse.rs` and in
//! the fake's script), and a fake npfctl (`fake.rs`) keeping its table in a file. Out:
//! what the backend ran (the fake's argv log), what the table holds, the errors' text.
//! Must not: need root, NetBSD or a real NPF.

use crate::fake::Fake;
use crate::parse::{classify, covered, narrower_at_start, says_only, Said};
use crate::*;
use portsentry_blocker::{Blocker, Net, Reason, Step, Target};
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

fn net(s: &str) -> Net {
    s.parse().unwrap()
}

fn target(s: &str) -> Target {
    Target {
        net: net(s),
        timeout: Some(Duration::from_secs(600)),
        reason: Reason {
            protocol: "TCP".into(),
            port: 143,
            scan: "Connect".into(),
        },
    }
}

fn held_nets(npf: &mut Npf) -> Vec<Net> {
    let mut v: Vec<Net> = npf.list().unwrap().into_iter().map(|h| h.net).collect();
    v.sort();
    v
}

const NPFCTL: &str = "/sbin/npfctl";

// ---- golden argvs ----

#[test]
fn argv_add_golden() {
    let p = Path::new(NPFCTL);
    assert_eq!(
        argv_add(p, "portsentry", &net("198.18.0.1")),
        ["/sbin/npfctl", "table", "portsentry", "add", "198.18.0.1"]
    );
    assert_eq!(
        argv_add(p, "portsentry", &net("fd00:5e5e::1")),
        ["/sbin/npfctl", "table", "portsentry", "add", "fd00:5e5e::1"]
    );
    assert_eq!(
        argv_add(p, "portsentry", &net("198.18.4.7/24")),
        [
            "/sbin/npfctl",
            "table",
            "portsentry",
            "add",
            "198.18.4.0/24"
        ]
    );
    assert_eq!(
        argv_add(p, "portsentry", &net("fd00:5e5e:1:2::9/64")),
        [
            "/sbin/npfctl",
            "table",
            "portsentry",
            "add",
            "fd00:5e5e:1:2::/64"
        ]
    );
    assert_eq!(
        argv_add(p, "portsentry", &net("::ffff:198.18.0.9")),
        ["/sbin/npfctl", "table", "portsentry", "add", "198.18.0.9"]
    );
}

#[test]
fn argv_rem_golden() {
    let p = Path::new(NPFCTL);
    assert_eq!(
        argv_rem(p, "portsentry", &net("198.18.0.1")),
        ["/sbin/npfctl", "table", "portsentry", "rem", "198.18.0.1"]
    );
    assert_eq!(
        argv_rem(p, "portsentry", &net("fd00:5e5e::1")),
        ["/sbin/npfctl", "table", "portsentry", "rem", "fd00:5e5e::1"]
    );
    assert_eq!(
        argv_rem(p, "portsentry", &net("198.18.4.0/24")),
        [
            "/sbin/npfctl",
            "table",
            "portsentry",
            "rem",
            "198.18.4.0/24"
        ]
    );
}

#[test]
fn argv_list_flush_test_replace_golden() {
    let p = Path::new(NPFCTL);
    assert_eq!(
        argv_list(p, "portsentry"),
        ["/sbin/npfctl", "table", "portsentry", "list"]
    );
    assert_eq!(
        argv_flush(p, "portsentry"),
        ["/sbin/npfctl", "table", "portsentry", "flush"]
    );
    assert_eq!(
        argv_test(p, "portsentry"),
        ["/sbin/npfctl", "table", "portsentry", "test", "0.0.0.0"]
    );
    assert_eq!(
        argv_replace(p, "portsentry"),
        ["/sbin/npfctl", "table", "portsentry", "replace", "-"]
    );
}

#[test]
fn argv_uses_the_given_program_and_table() {
    assert_eq!(
        argv_list(Path::new("/usr/local/sbin/npfctl"), "scanners"),
        ["/usr/local/sbin/npfctl", "table", "scanners", "list"]
    );
    assert_eq!(Options::default().npfctl, Path::new("/sbin/npfctl"));
    assert_eq!(Options::default().table, "portsentry");
    assert_eq!(Options::default().limit, Duration::from_secs(10));
}

#[test]
fn table_file_is_one_entry_a_line() {
    assert_eq!(table_file(&[]), "");
    assert_eq!(
        table_file(&[
            net("198.18.0.1"),
            net("198.18.4.0/24"),
            net("fd00:5e5e::1"),
            net("fd00:5e5e:1::/48")
        ]),
        "198.18.0.1\n198.18.4.0/24\nfd00:5e5e::1\nfd00:5e5e:1::/48\n"
    );
}

// ---- npfctl's formats ----

#[test]
fn list_parses_ipset_and_lpm_output() {
    // `npfctl table portsentry list` of an ipset table (no masks) and of an lpm table
    // (every entry with its length, hosts too), as npfctl_print_addrmask() prints them.
    let out = "198.18.0.1\nfd00:5e5e::1\n198.18.0.2/32\nfd00:5e5e::2/128\n\
               198.18.4.0/24\nfd00:5e5e:1::/48\n\n";
    assert_eq!(
        parse_list(out).unwrap(),
        vec![
            net("198.18.0.1"),
            net("fd00:5e5e::1"),
            net("198.18.0.2"),
            net("fd00:5e5e::2"),
            net("198.18.4.0/24"),
            net("fd00:5e5e:1::/48"),
        ]
    );
    assert!(net("198.18.0.2/32").is_host());
    assert_eq!(parse_list("").unwrap(), vec![]);
}

#[test]
fn list_names_the_bad_line() {
    assert_eq!(
        parse_list("198.18.0.1\nnpfctl: success\n198.18.0.2\n"),
        Err("npfctl: success".to_string())
    );
    assert_eq!(
        parse_list("198.18.0.1/33\n"),
        Err("198.18.0.1/33".to_string())
    );
    assert_eq!(parse_list("fe80::1%wm0\n"), Err("fe80::1%wm0".to_string()));
}

#[test]
fn classifies_npfctl_refusals_of_netbsd_9_and_10() {
    let c = |s: &str| classify(s);
    assert_eq!(
        c("npfctl: entry already exists or is conflicting"),
        Said::Exists
    );
    assert_eq!(c("npfctl: not found"), Said::NotFound);
    assert_eq!(c("npfctl: no matching entry was not found"), Said::NotFound);
    assert_eq!(
        c("npfctl: invalid address, mask or table ID"),
        Said::Invalid
    );
    assert_eq!(
        c("npfctl: table 'portsentry' not found in the active configuration"),
        Said::NoTable
    );
    assert_eq!(c("npfctl: invalid command 'replace'"), Said::NoReplace);
    assert_eq!(
        c("npfctl: open '-': No such file or directory"),
        Said::NoReplace
    );
    assert_eq!(
        c("npfctl: stdin:3: mask used with the table type other than \"lpm\""),
        Said::MaskNeedsLpm
    );
    // Not "not there": npf is not loaded at all.
    assert_eq!(
        c("npfctl: cannot open '/dev/npf': No such file or directory"),
        Said::Other
    );
    assert_eq!(
        c("npfctl: ioctl(IOC_NPF_TABLE): Operation not permitted"),
        Said::Other
    );
    assert_eq!(c(""), Said::Other);
    // A warning before the refusal.
    assert_eq!(
        c("npfctl: warning - something\nnpfctl: not found"),
        Said::NotFound
    );
}

#[test]
fn success_output_is_checked() {
    assert!(says_only("npfctl: success\n", &["success"]));
    assert!(says_only("", &["success"]));
    assert!(says_only(
        "npfctl: match\n",
        &["match", "matching entry found"]
    ));
    assert!(says_only(
        "npfctl: matching entry found\n",
        &["match", "matching entry found"]
    ));
    assert!(!says_only("npfctl: success\nhello\n", &["success"]));
}

#[test]
fn normalize_drops_duplicates_and_covered_entries() {
    assert_eq!(
        normalize([
            net("198.18.0.5"),
            net("198.18.0.0/24"),
            net("198.18.0.5"),
            net("198.18.1.1"),
            net("fd00:5e5e:1::/48"),
            net("fd00:5e5e:1:2::/64"),
            net("fd00:5e5e::1"),
            net("198.18.0.0/24"),
        ]),
        vec![
            net("198.18.0.0/24"),
            net("198.18.1.1"),
            net("fd00:5e5e::1"),
            net("fd00:5e5e:1::/48"),
        ]
    );
    assert_eq!(normalize([]), vec![]);
    let set: HashSet<Net> = [net("198.18.0.0/16")].into_iter().collect();
    assert!(covered(&net("198.18.3.4"), &set));
    assert!(covered(&net("198.18.0.0/16"), &set));
    assert!(!covered(&net("198.0.0.0/8"), &set));
    assert!(!covered(&net("fd00::1"), &set));
    assert_eq!(
        narrower_at_start(
            &net("198.18.0.0/24"),
            &[net("198.18.0.9"), net("198.18.0.0")]
        ),
        Some(net("198.18.0.0"))
    );
    assert_eq!(
        narrower_at_start(&net("198.18.0.0/24"), &[net("198.18.0.9")]),
        None
    );
}

#[test]
fn setup_hint_has_the_npf_conf_lines() {
    let h = setup_hint("portsentry");
    assert!(h.contains("\n    table <portsentry> type lpm\n"), "{h}");
    assert!(
        h.contains("\n    block in final from <portsentry>\n"),
        "{h}"
    );
    assert!(h.contains("\n    npfctl reload\n"), "{h}");
    assert!(h.contains("group default"), "{h}");
}

// ---- the backend against the fake npfctl ----

#[test]
fn init_with_the_table_loaded() {
    let f = Fake::new();
    let mut npf = f.npf();
    assert_eq!(npf.name(), "npf");
    npf.init().unwrap();
    assert_eq!(f.calls(), ["table portsentry list"]);
    assert!(!npf.vanished().unwrap());
}

#[test]
fn init_without_the_table_prints_the_npf_conf_lines() {
    let f = Fake::without_table();
    let mut npf = f.npf();
    let e = npf.init().unwrap_err();
    assert_eq!(e.step, Step::Init);
    assert_eq!(e.to_string(), "npf: set-up failed");
    let cause = e.source.to_string();
    assert!(cause.starts_with(&format!(
        "npf table <portsentry> is not in the loaded NPF configuration (`{} table portsentry \
         list`: npfctl: invalid address, mask or table ID).\n",
        f.npfctl.display()
    )));
    for line in [
        "    table <portsentry> type lpm",
        "    block in final from <portsentry>",
        "    npfctl reload",
    ] {
        assert!(
            cause.lines().any(|l| l == line),
            "{line:?} missing in:\n{cause}"
        );
    }
    assert!(e.source.downcast_ref::<NpfError>().unwrap().table_missing());
    // No table: vanished, nothing held, nothing to lift or flush; blocking says why.
    assert!(npf.vanished().unwrap());
    assert!(npf.list().unwrap().is_empty());
    npf.unblock(&net("198.18.0.1")).unwrap();
    npf.flush().unwrap();
    let e = npf.block(&target("198.18.0.1")).unwrap_err();
    assert_eq!(e.net, Some(net("198.18.0.1")));
    assert!(e
        .source
        .to_string()
        .contains("block in final from <portsentry>"));
    let e = npf.replace_all(&[target("198.18.0.1")]).unwrap_err();
    assert!(e
        .source
        .to_string()
        .contains("npfctl: table 'portsentry' not found in the active configuration"));
}

#[test]
fn block_adds_and_block_twice_is_success() {
    let f = Fake::new();
    let mut npf = f.npf();
    npf.block(&target("198.18.0.1")).unwrap();
    npf.block(&target("198.18.0.1")).unwrap();
    npf.block(&target("fd00:5e5e::1")).unwrap();
    npf.block(&target("198.18.4.0/24")).unwrap();
    npf.block(&target("198.18.4.0/24")).unwrap();
    assert_eq!(
        f.table(),
        ["198.18.0.1/32", "fd00:5e5e::1/128", "198.18.4.0/24"]
    );
    assert_eq!(
        f.calls(),
        [
            "table portsentry add 198.18.0.1",
            "table portsentry add 198.18.0.1",
            "table portsentry add fd00:5e5e::1",
            "table portsentry add 198.18.4.0/24",
            "table portsentry add 198.18.4.0/24",
            // EEXIST for a network: listed to tell "already blocked" from a conflict.
            "table portsentry list",
        ]
    );
    assert_eq!(
        held_nets(&mut npf),
        vec![net("198.18.0.1"), net("198.18.4.0/24"), net("fd00:5e5e::1")]
    );
}

#[test]
fn block_of_a_network_beside_a_narrower_entry_at_its_start_is_a_conflict() {
    let f = Fake::new();
    f.seed(&["198.18.0.0/32"]);
    let mut npf = f.npf();
    let e = npf.block(&target("198.18.0.0/24")).unwrap_err();
    assert_eq!(e.net, Some(net("198.18.0.0/24")));
    assert_eq!(
        e.source.to_string(),
        "npf table <portsentry> holds 198.18.0.0, which holds the first address of \
         198.18.0.0/24; an lpm table cannot add 198.18.0.0/24 beside it (unblock \
         198.18.0.0 first)"
    );
}

#[test]
fn block_many_of_10000_is_one_list_and_one_replace() {
    let f = Fake::new();
    f.seed(&["203.0.113.7/32"]);
    let mut npf = f.npf();
    let targets: Vec<Target> = (0..10_000u32)
        .map(|i| {
            let a = std::net::Ipv4Addr::from(0xC612_0000 + i); // 198.18.0.0 + i
            target(&a.to_string())
        })
        .collect();
    let started = Instant::now();
    npf.block_many(&targets).unwrap();
    assert_eq!(
        f.calls(),
        ["table portsentry list", "table portsentry replace -"]
    );
    let input = f.replace_input();
    assert_eq!(input.lines().count(), 10_001);
    assert!(input.starts_with("198.18.0.0\n198.18.0.1\n"));
    assert!(input.ends_with("198.18.39.15\n203.0.113.7\n"));
    let held = held_nets(&mut npf);
    assert_eq!(held.len(), 10_001);
    assert!(held.contains(&net("203.0.113.7")));
    assert!(held.contains(&net("198.18.39.15")));
    assert!(started.elapsed() < Duration::from_secs(60));
    // All there already: one list, no replace.
    f.clear_calls();
    npf.block_many(&targets).unwrap();
    assert_eq!(f.calls(), ["table portsentry list"]);
}

#[test]
fn block_many_of_a_few_adds_each() {
    let f = Fake::new();
    let mut npf = f.npf();
    npf.block_many(&[]).unwrap();
    npf.block_many(&[target("198.18.0.1"), target("198.18.0.2")])
        .unwrap();
    assert_eq!(
        f.calls(),
        [
            "table portsentry add 198.18.0.1",
            "table portsentry add 198.18.0.2"
        ]
    );
}

#[test]
fn unblock_lifts_exactly_what_is_held() {
    let f = Fake::new();
    f.seed(&["198.18.0.1/32", "198.18.4.0/24", "fd00:5e5e::1/128"]);
    let mut npf = f.npf();
    npf.unblock(&net("198.18.0.1")).unwrap();
    npf.unblock(&net("fd00:5e5e::1")).unwrap();
    assert_eq!(f.table(), ["198.18.4.0/24"]);
    f.clear_calls();
    // Missing: success, and no `rem` at all.
    npf.unblock(&net("198.18.0.1")).unwrap();
    npf.unblock(&net("203.0.113.9")).unwrap();
    // A host inside a held network: an lpm `rem` would lift the network; left alone.
    npf.unblock(&net("198.18.4.9")).unwrap();
    assert_eq!(f.table(), ["198.18.4.0/24"]);
    assert_eq!(f.calls(), ["table portsentry list"; 3]);
    npf.unblock(&net("198.18.4.0/24")).unwrap();
    assert!(f.table().is_empty());
}

#[test]
fn list_reads_v4_v6_and_networks() {
    let f = Fake::new();
    f.seed(&[
        "198.18.0.1/32",
        "fd00:5e5e::1/128",
        "198.18.4.0/24",
        "fd00:5e5e:1::/48",
        "198.18.9.9",
        "fd00:5e5e::9",
    ]);
    let mut npf = f.npf();
    let held = npf.list().unwrap();
    assert!(held.iter().all(|h| h.remaining.is_none()));
    assert_eq!(
        held.iter().map(|h| h.net).collect::<Vec<_>>(),
        vec![
            net("198.18.0.1"),
            net("fd00:5e5e::1"),
            net("198.18.4.0/24"),
            net("fd00:5e5e:1::/48"),
            net("198.18.9.9"),
            net("fd00:5e5e::9"),
        ]
    );
    assert_eq!(f.calls(), ["table portsentry list"]);
}

#[test]
fn list_of_a_line_that_is_no_address_is_an_error_naming_it() {
    let f = Fake::new();
    f.seed(&["198.18.0.1/32"]);
    f.mode("garbage");
    let mut npf = f.npf();
    let e = npf.list().unwrap_err();
    assert_eq!(e.step, Step::List);
    assert_eq!(
        e.source.to_string(),
        format!(
            "`{} table portsentry list` printed a line that is not an address: \
             \"table <portsentry>: 2 entries\"",
            f.npfctl.display()
        )
    );
    assert!(npf.init().is_err());
}

#[test]
fn flush_empties_the_table() {
    let f = Fake::new();
    f.seed(&["198.18.0.1/32", "198.18.4.0/24"]);
    let mut npf = f.npf();
    npf.flush().unwrap();
    npf.flush().unwrap();
    assert!(f.table().is_empty());
    assert_eq!(f.calls(), ["table portsentry flush"; 2]);
}

#[test]
fn replace_all_loads_exactly_the_targets_in_one_run() {
    let f = Fake::new();
    f.seed(&["198.18.0.1/32", "198.18.0.2/32", "198.18.7.0/24"]);
    let mut npf = f.npf();
    npf.replace_all(&[
        target("198.18.0.2"),
        target("fd00:5e5e::7"),
        target("198.18.0.2"),
        target("198.18.9.0/24"),
        target("198.18.9.3"),
    ])
    .unwrap();
    assert_eq!(f.calls(), ["table portsentry replace -"]);
    assert_eq!(
        f.replace_input(),
        "198.18.0.2\n198.18.9.0/24\nfd00:5e5e::7\n"
    );
    assert_eq!(
        held_nets(&mut npf),
        vec![net("198.18.0.2"), net("198.18.9.0/24"), net("fd00:5e5e::7")]
    );
    npf.replace_all(&[]).unwrap();
    assert!(f.table().is_empty());
}

#[test]
fn without_replace_netbsd9_converges_one_entry_at_a_time() {
    let f = Fake::new();
    f.mode("netbsd9");
    f.seed(&["198.18.0.1/32", "198.18.0.2/32", "198.18.9.0/25"]);
    let mut npf = f.npf();
    npf.replace_all(&[
        target("198.18.0.2"),
        target("198.18.0.3"),
        target("198.18.9.0/24"),
    ])
    .unwrap();
    assert_eq!(
        f.calls(),
        [
            "table portsentry replace -",
            "table portsentry list",
            // 198.18.9.0/25 holds the first address of the wanted /24: lifted first.
            "table portsentry rem 198.18.9.0/25",
            "table portsentry add 198.18.0.3",
            "table portsentry add 198.18.9.0/24",
            "table portsentry rem 198.18.0.1",
        ]
    );
    assert_eq!(
        held_nets(&mut npf),
        vec![net("198.18.0.2"), net("198.18.0.3"), net("198.18.9.0/24")]
    );
    // NetBSD 9's "no matching entry was not found" is "not there" too.
    assert_eq!(
        classify("npfctl: no matching entry was not found"),
        Said::NotFound
    );
    assert!(!npf.vanished().unwrap());
    // block_many of many goes the same way.
    f.clear_calls();
    let many: Vec<Target> = (0..20).map(|i| target(&format!("198.18.1.{i}"))).collect();
    npf.block_many(&many).unwrap();
    assert_eq!(held_nets(&mut npf).len(), 23);
}

#[test]
fn an_ipset_table_takes_the_hosts_and_refuses_networks() {
    let f = Fake::new();
    f.mode("ipset");
    let mut npf = f.npf();
    npf.block(&target("198.18.0.1")).unwrap();
    let e = npf.block(&target("198.18.4.0/24")).unwrap_err();
    assert_eq!(e.net, Some(net("198.18.4.0/24")));
    let msg = e.source.to_string();
    assert!(msg.contains("refused the network 198.18.4.0/24"), "{msg}");
    assert!(
        msg.contains("npfctl: invalid address, mask or table ID"),
        "{msg}"
    );
    assert!(msg.contains("type lpm"), "{msg}");
    // replace_all: the hosts are loaded, the error names the network.
    let e = npf
        .replace_all(&[
            target("198.18.0.7"),
            target("fd00:5e5e::/64"),
            target("fd00::9"),
        ])
        .unwrap_err();
    assert_eq!(e.net, Some(net("fd00:5e5e::/64")));
    assert!(e
        .source
        .to_string()
        .contains("stdin:3: mask used with the table type other than \"lpm\""));
    assert_eq!(f.table(), ["198.18.0.7", "fd00::9"]);
    assert_eq!(held_nets(&mut npf), vec![net("198.18.0.7"), net("fd00::9")]);
}

#[test]
fn a_failing_npfctl_is_an_error_with_argv_status_and_stderr() {
    let f = Fake::new();
    f.seed(&["198.18.0.1/32"]);
    f.mode("broken");
    let mut npf = f.npf();
    let want = |args: &str| {
        format!(
            "`{} table portsentry {args}` failed (exit status: 1): npfctl: cannot open \
             '/dev/npf': No such file or directory",
            f.npfctl.display()
        )
    };
    let e = npf.block(&target("198.18.0.1")).unwrap_err();
    assert_eq!(e.to_string(), "npf: block of 198.18.0.1 failed");
    assert_eq!(e.source.to_string(), want("add 198.18.0.1"));
    // "No such file or directory" is not "no such entry".
    let e = npf.unblock(&net("198.18.0.1")).unwrap_err();
    assert_eq!(e.step, Step::Unblock);
    assert_eq!(e.source.to_string(), want("list"));
    let e = npf.list().unwrap_err();
    assert_eq!(e.source.to_string(), want("list"));
    assert_eq!(npf.flush().unwrap_err().source.to_string(), want("flush"));
    assert_eq!(
        npf.vanished().unwrap_err().source.to_string(),
        want("test 0.0.0.0")
    );
    assert!(npf.init().is_err());
    match *npf
        .replace_all(&[])
        .unwrap_err()
        .source
        .downcast::<NpfError>()
        .unwrap()
    {
        NpfError::Exit {
            argv,
            status,
            stderr,
        } => {
            assert_eq!(
                argv,
                format!("{} table portsentry replace -", f.npfctl.display())
            );
            assert_eq!(status, "exit status: 1");
            assert_eq!(
                stderr,
                "npfctl: cannot open '/dev/npf': No such file or directory"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_hanging_npfctl_is_killed_at_the_limit() {
    let f = Fake::new();
    f.mode("hang");
    let mut npf = f.npf_with_limit(Duration::from_millis(300));
    let started = Instant::now();
    let e = npf.block(&target("198.18.0.1")).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    let msg = e.source.to_string();
    assert!(
        msg.starts_with(&format!(
            "`{} table portsentry add 198.18.0.1` did not finish within 300ms",
            f.npfctl.display()
        )),
        "{msg}"
    );
    assert!(matches!(
        *e.source.downcast::<NpfError>().unwrap(),
        NpfError::TimedOut { .. }
    ));
}

#[test]
fn a_missing_npfctl_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-npfctl");
    let mut npf = Npf::new(Options {
        npfctl: missing.clone(),
        ..Options::default()
    });
    let e = npf.init().unwrap_err();
    assert_eq!(
        e.source.to_string(),
        format!("cannot run `{} table portsentry list`", missing.display())
    );
    assert!(matches!(
        e.source.downcast_ref::<NpfError>().unwrap(),
        NpfError::Spawn { .. }
    ));
    assert!(npf.block(&target("198.18.0.1")).is_err());
    assert!(npf.vanished().is_err());
}

#[test]
fn unexpected_output_of_a_success_is_an_error() {
    let f = Fake::new();
    f.mode("chatty");
    let mut npf = f.npf();
    let e = npf.block(&target("198.18.0.1")).unwrap_err();
    assert_eq!(
        e.source.to_string(),
        format!(
            "`{} table portsentry add 198.18.0.1` printed something unexpected: \
             \"added, probably\\n\"",
            f.npfctl.display()
        )
    );
}

#[test]
fn vanished_follows_the_table() {
    let f = Fake::new();
    let mut npf = f.npf();
    assert!(!npf.vanished().unwrap());
    npf.block(&target("0.0.0.0")).unwrap();
    assert!(!npf.vanished().unwrap()); // "match" is present too
    f.drop_table();
    assert!(npf.vanished().unwrap());
    assert_eq!(
        f.calls().last().map(String::as_str),
        Some("table portsentry test 0.0.0.0")
    );
}

#[test]
fn a_bad_table_name_runs_nothing() {
    let f = Fake::new();
    let long = "x".repeat(32);
    for bad in ["", "-t", "port sentry", ".ifnet", "a/b", long.as_str()] {
        let mut npf = Npf::new(Options {
            table: bad.to_string(),
            ..f.options()
        });
        let e = npf.init().unwrap_err();
        assert!(
            matches!(
                e.source.downcast_ref::<NpfError>().unwrap(),
                NpfError::BadTableName(_)
            ),
            "{bad:?}"
        );
    }
    assert!(f.calls().is_empty());
    // Another table than the fake's: "invalid address, mask or table ID", i.e. missing.
    let mut npf = Npf::new(Options {
        table: "scanners".into(),
        ..f.options()
    });
    assert!(npf.vanished().unwrap());
}
