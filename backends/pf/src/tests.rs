//! Golden argvs, the output parsers and the name checks; the lifecycle against fake
//! pfctl scripts is in `tests/fake.rs`.

mod fake;

use crate::*;
use portsentry_blocker::Net;

fn net(s: &str) -> Net {
    s.parse().unwrap()
}

const A: &str = "portsentry";
const T: &str = "portsentry";

#[test]
fn argv_rulesets() {
    assert_eq!(argv_main_rules(), ["pfctl", "-s", "rules"]);
    assert_eq!(
        argv_anchor_rules(A),
        ["pfctl", "-a", "portsentry", "-s", "rules"]
    );
    assert_eq!(
        argv_anchor_tables(A),
        ["pfctl", "-a", "portsentry", "-s", "Tables"]
    );
    assert_eq!(
        argv_load_anchor(A),
        ["pfctl", "-a", "portsentry", "-f", "-"]
    );
    assert_eq!(
        anchor_ruleset(T),
        "table <portsentry> persist\nblock drop in quick from <portsentry> to any\n"
    );
}

#[test]
fn argv_add_and_delete_hosts_and_networks() {
    assert_eq!(
        argv_add(A, T, &net("198.18.0.1")),
        [
            "pfctl",
            "-a",
            "portsentry",
            "-t",
            "portsentry",
            "-T",
            "add",
            "198.18.0.1"
        ]
    );
    assert_eq!(
        argv_add(A, T, &net("fd00:5e5e::1")),
        [
            "pfctl",
            "-a",
            "portsentry",
            "-t",
            "portsentry",
            "-T",
            "add",
            "fd00:5e5e::1"
        ]
    );
    assert_eq!(
        argv_add(A, T, &net("198.18.4.7/24")),
        [
            "pfctl",
            "-a",
            "portsentry",
            "-t",
            "portsentry",
            "-T",
            "add",
            "198.18.4.0/24"
        ]
    );
    assert_eq!(
        argv_delete(A, T, &net("198.18.0.1")),
        [
            "pfctl",
            "-a",
            "portsentry",
            "-t",
            "portsentry",
            "-T",
            "delete",
            "198.18.0.1"
        ]
    );
    assert_eq!(
        argv_delete(A, T, &net("fd00:5e5e:1::/48")),
        [
            "pfctl",
            "-a",
            "portsentry",
            "-t",
            "portsentry",
            "-T",
            "delete",
            "fd00:5e5e:1::/48"
        ]
    );
    // IPv4-mapped addresses are written as IPv4.
    assert_eq!(argv_add(A, T, &net("::ffff:198.18.0.2"))[7], "198.18.0.2");
}

#[test]
fn argv_bulk_show_flush() {
    assert_eq!(
        argv_add_stdin(A, T),
        [
            "pfctl",
            "-a",
            "portsentry",
            "-t",
            "portsentry",
            "-T",
            "add",
            "-f",
            "-"
        ]
    );
    assert_eq!(
        argv_replace_stdin(A, T),
        [
            "pfctl",
            "-a",
            "portsentry",
            "-t",
            "portsentry",
            "-T",
            "replace",
            "-f",
            "-"
        ]
    );
    assert_eq!(
        argv_show(A, T),
        [
            "pfctl",
            "-a",
            "portsentry",
            "-t",
            "portsentry",
            "-T",
            "show"
        ]
    );
    assert_eq!(
        argv_flush(A, T),
        [
            "pfctl",
            "-a",
            "portsentry",
            "-t",
            "portsentry",
            "-T",
            "flush"
        ]
    );
    let nets = [net("198.18.0.1"), net("198.18.4.0/24"), net("fd00:5e5e::1")];
    assert_eq!(
        address_lines(&nets),
        b"198.18.0.1\n198.18.4.0/24\nfd00:5e5e::1\n".to_vec()
    );
    assert!(address_lines(&[]).is_empty());
}

#[test]
fn argv_kill_states_hosts_and_networks() {
    assert_eq!(
        argv_kill_states(&net("198.18.0.1")),
        ["pfctl", "-k", "198.18.0.1"]
    );
    assert_eq!(
        argv_kill_states(&net("fd00:5e5e::1")),
        ["pfctl", "-k", "fd00:5e5e::1"]
    );
    assert_eq!(
        argv_kill_states(&net("198.18.4.0/24")),
        ["pfctl", "-k", "198.18.4.0/24"]
    );
}

#[test]
fn argv_other_names() {
    assert_eq!(
        argv_show("filters/portsentry", "scanners"),
        [
            "pfctl",
            "-a",
            "filters/portsentry",
            "-t",
            "scanners",
            "-T",
            "show"
        ]
    );
    assert_eq!(
        anchor_ruleset("scanners"),
        "table <scanners> persist\nblock drop in quick from <scanners> to any\n"
    );
}

#[test]
fn main_ruleset_must_call_the_anchor() {
    // `pfctl -s rules` of a pf.conf with `anchor "portsentry"` (print_rule: the anchor
    // call, then ` all` for any-to-any).
    let with = "block return all\npass all flags S/SA\nanchor \"portsentry\" all\n";
    assert!(parse::references_anchor(with, A));
    assert!(parse::references_anchor("anchor \"portsentry\"\n", A));
    assert!(parse::references_anchor(
        "  anchor \"portsentry\" in on em0 all\n",
        A
    ));
    assert!(!parse::references_anchor("", A));
    assert!(!parse::references_anchor(
        "anchor \"portsentry-old\" all\n",
        A
    ));
    assert!(!parse::references_anchor(
        "anchor \"portsentry/*\" all\n",
        A
    ));
    assert!(!parse::references_anchor(
        "nat-anchor \"portsentry\" all\n",
        A
    ));
    assert!(!parse::references_anchor(
        "pass in all label \"anchor \\\"portsentry\\\"\"\n",
        A
    ));
}

#[test]
fn anchor_rule_and_table_detection() {
    let rules = "block drop in quick from <portsentry> to any\n";
    assert!(parse::has_block_rule(rules, T));
    assert!(!parse::has_block_rule(rules, "other"));
    assert!(!parse::has_block_rule("", T));
    assert!(!parse::has_block_rule(
        "pass in quick from <portsentry> to any\n",
        T
    ));
    // FreeBSD prints the name, OpenBSD name@anchor (print_table).
    assert!(parse::lists_table("portsentry\n", A, T));
    assert!(parse::lists_table("portsentry@portsentry\n", A, T));
    assert!(!parse::lists_table("portsentry@elsewhere\n", A, T));
    assert!(!parse::lists_table("", A, T));
    assert!(!parse::lists_table("portsentry2\n", A, T));
}

#[test]
fn show_output_parses_v4_v6_and_networks() {
    // print_addrx: "%c %c%s" and "/%d" below the host length (pfctl(8):
    // `# pfctl -t test -vTshow` / `   129.128.5.191`).
    let out = "   198.18.0.1\n   198.18.4.0/24\n   fd00:5e5e::1\n   fd00:5e5e:1::/48\n\n";
    assert_eq!(
        parse::entries(out).unwrap(),
        vec![
            net("198.18.0.1"),
            net("198.18.4.0/24"),
            net("fd00:5e5e::1"),
            net("fd00:5e5e:1::/48")
        ]
    );
    assert!(parse::entries("").unwrap().is_empty());
    let (line, why) = parse::entries("   198.18.0.1\n  !198.18.0.2\n").unwrap_err();
    assert_eq!(line, "  !198.18.0.2");
    assert!(why.contains("negated"));
    let (line, _) = parse::entries("   198.18.0.1\tgw.example\n").unwrap_err();
    assert_eq!(line, "   198.18.0.1\tgw.example");
    let (line, _) = parse::entries("pfctl: something else\n").unwrap_err();
    assert_eq!(line, "pfctl: something else");
}

#[test]
fn add_counts_and_absence() {
    assert_eq!(
        parse::added("1 table created.\n1/1 addresses added.\n"),
        Some(1)
    );
    assert_eq!(parse::added("0/1 addresses added.\n"), Some(0));
    assert_eq!(parse::added("10000/10000 addresses added."), Some(10000));
    assert_eq!(
        parse::added(
            "pfctl: warning: table <portsentry> already defined in anchor \"/\"\n0/1 addresses added.\n"
        ),
        Some(0)
    );
    assert_eq!(parse::added(""), None);
    assert_eq!(parse::added("0/1 addresses deleted."), None);
    assert!(parse::absent("pfctl: Table does not exist"));
    assert!(parse::absent("pfctl: Table does not exist."));
    assert!(parse::absent("pfctl: Anchor does not exist."));
    assert!(!parse::absent("pfctl: /dev/pf: Permission denied"));
}

#[test]
fn options_defaults_and_name_checks() {
    let o = Options::default();
    assert_eq!(o.pfctl, std::path::PathBuf::from("/sbin/pfctl"));
    assert_eq!(
        (o.anchor.as_str(), o.table.as_str()),
        ("portsentry", "portsentry")
    );
    assert_eq!(o.limit, std::time::Duration::from_secs(10));
    assert!(o.check().is_ok());
    let with = |anchor: &str, table: &str| Options {
        anchor: anchor.to_string(),
        table: table.to_string(),
        ..Options::default()
    };
    assert!(with("filters/portsentry", "port.sentry-1_a")
        .check()
        .is_ok());
    for (anchor, table) in [
        ("portsentry", ""),
        ("portsentry", "a b"),
        ("portsentry", "x>y"),
        ("portsentry", "x\nblock all"),
        ("portsentry", &"t".repeat(32)),
        ("", "portsentry"),
        ("_portsentry", "portsentry"),
        ("a//b", "portsentry"),
        ("a/", "portsentry"),
        ("a/*", "portsentry"),
        ("a b", "portsentry"),
    ] {
        let e = with(anchor, table).check().unwrap_err();
        assert!(matches!(e, PfError::BadName { .. }), "{anchor:?} {table:?}");
    }
    assert!(with("portsentry", &"t".repeat(31)).check().is_ok());
}

#[test]
fn missing_anchor_message_tells_the_admin_what_to_add() {
    let msg = PfError::AnchorNotReferenced {
        anchor: "portsentry".into(),
    }
    .to_string();
    assert!(msg.contains("\n    anchor \"portsentry\"\n"), "{msg}");
    assert!(msg.ends_with("\n    pfctl -f /etc/pf.conf"), "{msg}");
}
