//! Golden argvs and parser tests (pure); the backend against fake `ipfw` scripts is in
//! [`fake`].

mod fake;

use portsentry_blocker::Net;

use crate::argv::*;
use crate::parse;

fn net(s: &str) -> Net {
    s.parse().unwrap()
}

fn nets(v: &[&str]) -> Vec<Net> {
    v.iter().map(|s| net(s)).collect()
}

#[test]
fn argv_table_objects() {
    assert_eq!(
        argv_table_info("portsentry"),
        ["ipfw", "table", "portsentry", "info"]
    );
    assert_eq!(
        argv_table_create("portsentry"),
        ["ipfw", "table", "portsentry", "create", "type", "addr"]
    );
    assert_eq!(
        argv_table_list("portsentry"),
        ["ipfw", "table", "portsentry", "list"]
    );
    assert_eq!(
        argv_table_flush("portsentry"),
        ["ipfw", "-q", "table", "portsentry", "flush"]
    );
    assert_eq!(
        argv_table_destroy("portsentry"),
        ["ipfw", "-q", "table", "portsentry", "destroy"]
    );
}

#[test]
fn argv_table_add_hosts_and_networks() {
    assert_eq!(
        argv_table_add("portsentry", &nets(&["198.18.0.1"])),
        [
            "ipfw",
            "-q",
            "table",
            "portsentry",
            "add",
            "198.18.0.1/32",
            "0"
        ]
    );
    assert_eq!(
        argv_table_add("portsentry", &nets(&["fd00:5e5e::1"])),
        [
            "ipfw",
            "-q",
            "table",
            "portsentry",
            "add",
            "fd00:5e5e::1/128",
            "0"
        ]
    );
    // Host bits are masked by Net; IPv4-mapped IPv6 becomes IPv4.
    assert_eq!(
        argv_table_add(
            "bad-guys",
            &nets(&["198.18.4.7/24", "fd00:5e5e:1::9/48", "::ffff:198.18.0.2"])
        ),
        [
            "ipfw",
            "-q",
            "table",
            "bad-guys",
            "add",
            "198.18.4.0/24",
            "0",
            "fd00:5e5e:1::/48",
            "0",
            "198.18.0.2/32",
            "0"
        ]
    );
}

#[test]
fn argv_table_delete_hosts_and_networks() {
    assert_eq!(
        argv_table_delete("portsentry", &nets(&["198.18.0.1"])),
        [
            "ipfw",
            "-q",
            "table",
            "portsentry",
            "delete",
            "198.18.0.1/32"
        ]
    );
    assert_eq!(
        argv_table_delete("portsentry", &nets(&["198.18.4.0/24", "fd00:5e5e::1"])),
        [
            "ipfw",
            "-q",
            "table",
            "portsentry",
            "delete",
            "198.18.4.0/24",
            "fd00:5e5e::1/128"
        ]
    );
}

fn many(n: usize) -> Vec<Net> {
    (0..n)
        .map(|i| {
            let i = i as u32;
            Net::host(std::net::Ipv4Addr::from(0xc612_0000 + i).into())
        })
        .collect()
}

#[test]
fn argv_batches_are_chunked() {
    assert!(argv_table_add_batches("portsentry", &[]).is_empty());
    assert!(argv_table_delete_batches("portsentry", &[]).is_empty());
    let small = argv_table_add_batches("portsentry", &many(3));
    assert_eq!(small.len(), 1, "one call for a small batch");
    assert_eq!(
        small[0],
        [
            "ipfw",
            "-q",
            "table",
            "portsentry",
            "add",
            "198.18.0.0/32",
            "0",
            "198.18.0.1/32",
            "0",
            "198.18.0.2/32",
            "0"
        ]
    );
    let big = argv_table_add_batches("portsentry", &many(2500));
    assert_eq!(big.len(), 3);
    assert_eq!(big[0].len(), 5 + 2 * CHUNK);
    assert_eq!(big[1].len(), 5 + 2 * CHUNK);
    assert_eq!(big[2].len(), 5 + 2 * 500);
    assert_eq!(big[0][5], "198.18.0.0/32");
    assert_eq!(big[1][5], "198.18.3.232/32", "key 1000");
    assert_eq!(big[2][big[2].len() - 2], "198.18.9.195/32", "key 2499");
    let del = argv_table_delete_batches("portsentry", &many(2001));
    assert_eq!(
        del.iter().map(Vec::len).collect::<Vec<_>>(),
        [5 + CHUNK, 5 + CHUNK, 5 + 1]
    );
    assert_eq!(
        del[2],
        [
            "ipfw",
            "-q",
            "table",
            "portsentry",
            "delete",
            "198.18.7.208/32"
        ]
    );
}

#[test]
fn argv_rule() {
    assert_eq!(argv_rule_list(45), ["ipfw", "list", "45"]);
    assert_eq!(
        argv_rule_add(45, "portsentry"),
        [
            "ipfw",
            "-q",
            "add",
            "45",
            "deny",
            "ip",
            "from",
            "table(portsentry)",
            "to",
            "any"
        ]
    );
    assert_eq!(argv_rule_delete(45), ["ipfw", "-q", "delete", "45"]);
    assert_eq!(
        rule_body("portsentry"),
        "deny ip from table(portsentry) to any"
    );
}

#[test]
fn table_names() {
    assert!(valid_table_name("portsentry"));
    assert!(valid_table_name("Port_Sentry-2.0"));
    assert!(
        valid_table_name("22"),
        "legacy numbered tables are names too"
    );
    assert!(valid_table_name(&"a".repeat(63)));
    assert!(!valid_table_name(&"a".repeat(64)));
    assert!(!valid_table_name(""));
    assert!(!valid_table_name("all"));
    assert!(!valid_table_name("port sentry"));
    assert!(!valid_table_name("t(1)"));
    assert!(!valid_table_name("-q;rm"));
}

// `ipfw table portsentry list` on FreeBSD 11/12: header, then printf("%s/%u %s\n").
const LIST_WITH_HEADER: &str = "--- table(portsentry), set(0) ---
198.18.0.1/32 0
198.18.4.0/24 0
10.0.0.0/8 0
fd00:5e5e::1/128 0
fd00:5e5e:1::/48 0
::/0 0
";

#[test]
fn parses_table_list_with_header() {
    assert_eq!(
        parse::table_list("portsentry", LIST_WITH_HEADER).unwrap(),
        nets(&[
            "198.18.0.1",
            "198.18.4.0/24",
            "10.0.0.0/8",
            "fd00:5e5e::1",
            "fd00:5e5e:1::/48",
            "::/0"
        ])
    );
}

#[test]
fn parses_table_list_without_header_and_other_values() {
    // FreeBSD 13+: no header for one table; values of other value types or `-i`.
    let text = "198.18.0.1/32 42\n203.0.113.0/24 10.0.0.1\n2001:db8::/32 0\n\n";
    assert_eq!(
        parse::table_list("portsentry", text).unwrap(),
        nets(&["198.18.0.1", "203.0.113.0/24", "2001:db8::/32"])
    );
    assert!(parse::table_list("portsentry", "").unwrap().is_empty());
    assert!(
        parse::table_list("portsentry", "--- table(portsentry), set(0) ---\n")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn table_list_refuses_what_it_does_not_understand() {
    for bad in [
        "198.18.0.1 0",                      // no length
        "198.18.0.1/32",                     // no value
        "198.18.0.1/32 0 extra",             // a third field
        "198.18.0.1/33 0",                   // impossible length
        "em0 0",                             // an iface table
        "host.example/32 0",                 // a name
        "--- table(other), set(0) ---",      // another table's header
        "--- table(portsentry), set(x) ---", // a broken header
        "ipfw: something went wrong",
    ] {
        let text = format!("198.18.0.9/32 0\n{bad}\n");
        assert_eq!(
            parse::table_list("portsentry", &text),
            Err(bad.to_string()),
            "{bad}"
        );
    }
}

#[test]
fn parses_table_type() {
    // tables.c, table_show_info.
    let info = "--- table(portsentry), set(0) ---
 kindex: 4, type: addr
 references: 1, valtype: legacy
 algorithm: addr:radix
 items: 0, size: 296
";
    assert_eq!(parse::table_type(info).as_deref(), Some("addr"));
    let locked = " kindex: 2, type: iface, locked\n";
    assert_eq!(parse::table_type(locked).as_deref(), Some("iface"));
    let flow = " kindex: 3, type: flow:src-ip,dst-port\n";
    assert_eq!(parse::table_type(flow).as_deref(), Some("flow:src-ip"));
    assert_eq!(parse::table_type("nothing useful\n"), None);
    assert_eq!(parse::table_type(""), None);
}

#[test]
fn parses_rule_list() {
    assert_eq!(
        parse::rule_list("00045 deny ip from table(portsentry) to any\n").unwrap(),
        [(45, "deny ip from table(portsentry) to any".to_string())]
    );
    assert_eq!(
        parse::rule_list("00045 allow ip from any to any via lo0\n00045  deny  ip from table(portsentry) to any\n")
            .unwrap(),
        [
            (45, "allow ip from any to any via lo0".to_string()),
            (45, "deny ip from table(portsentry) to any".to_string())
        ]
    );
    assert_eq!(
        parse::rule_list("65535 deny ip from any to any\n").unwrap(),
        [(65535, "deny ip from any to any".to_string())]
    );
    assert!(parse::rule_list("").unwrap().is_empty());
    for bad in [
        "45 deny ip from any to any",
        "## Dynamic rules:",
        "00045",
        "0004x deny",
    ] {
        assert_eq!(parse::rule_list(bad), Err(bad.to_string()), "{bad}");
    }
}
