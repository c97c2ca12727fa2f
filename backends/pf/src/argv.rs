//! The argvs for pfctl(8) and the ruleset we load into our anchor: pure, so tested on
//! every platform.
//!
//! In: the anchor and table names (already checked by [`crate::Options::check`]) and
//! networks. Out: argv vectors whose `argv[0]` is `pfctl` (run as [`crate::Options::pfctl`]),
//! and the exact bytes that go to pfctl's stdin. Must not: run anything, or build any
//! shell text; every value is one argv element.

use portsentry_blocker::Net;

/// The default pfctl path; `argv[0]` of every builder is `pfctl` and is replaced by the
/// configured path when run.
pub const PFCTL_PROGRAM: &str = "/sbin/pfctl";

fn strings(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_string()).collect()
}

/// `pfctl -a ANCHOR -t TABLE -T COMMAND`
fn table_command(anchor: &str, table: &str, command: &str) -> Vec<String> {
    strings(&["pfctl", "-a", anchor, "-t", table, "-T", command])
}

/// `pfctl -s rules` (the main ruleset, where the admin's `anchor "portsentry"` line lives)
pub fn argv_main_rules() -> Vec<String> {
    strings(&["pfctl", "-s", "rules"])
}

/// `pfctl -a portsentry -s rules`
pub fn argv_anchor_rules(anchor: &str) -> Vec<String> {
    strings(&["pfctl", "-a", anchor, "-s", "rules"])
}

/// `pfctl -a portsentry -s Tables`
pub fn argv_anchor_tables(anchor: &str) -> Vec<String> {
    strings(&["pfctl", "-a", anchor, "-s", "Tables"])
}

/// `printf 'table <portsentry> persist\nblock drop in quick from <portsentry> to any\n' | pfctl -a portsentry -f -`
/// (stdin: [`anchor_ruleset`])
pub fn argv_load_anchor(anchor: &str) -> Vec<String> {
    strings(&["pfctl", "-a", anchor, "-f", "-"])
}

/// The whole ruleset of our anchor:
///
/// ```text
/// table <portsentry> persist
/// block drop in quick from <portsentry> to any
/// ```
///
/// The table is defined in the anchor so the rule uses this private table and never
/// falls back to a main-ruleset table of the same name (pfctl(8), `-a`). `persist`
/// keeps it even while no rule refers to it. The definition has no `{ }` list, so
/// pfctl loads it without addresses (parse.y sets `init_addr` only for `{ ... }` or
/// `file`), and the kernel's commit keeps the entries of an existing table
/// (pf_table.c `pfr_commit_ktable`: `shadow->pfrkt_cnt == NO_ADDRESSES`): reloading
/// this ruleset never empties the table.
pub fn anchor_ruleset(table: &str) -> String {
    format!("table <{table}> persist\nblock drop in quick from <{table}> to any\n")
}

/// `pfctl -a portsentry -t portsentry -T add 198.18.0.1`
pub fn argv_add(anchor: &str, table: &str, net: &Net) -> Vec<String> {
    let mut v = table_command(anchor, table, "add");
    v.push(net.to_string());
    v
}

/// `printf '198.18.0.1\n198.18.4.0/24\n' | pfctl -a portsentry -t portsentry -T add -f -`
/// (stdin: [`address_lines`])
pub fn argv_add_stdin(anchor: &str, table: &str) -> Vec<String> {
    let mut v = table_command(anchor, table, "add");
    v.extend(strings(&["-f", "-"]));
    v
}

/// `pfctl -a portsentry -t portsentry -T delete 198.18.0.1`
pub fn argv_delete(anchor: &str, table: &str, net: &Net) -> Vec<String> {
    let mut v = table_command(anchor, table, "delete");
    v.push(net.to_string());
    v
}

/// `printf '198.18.0.1\n198.18.4.0/24\n' | pfctl -a portsentry -t portsentry -T replace -f -`
/// (stdin: [`address_lines`])
pub fn argv_replace_stdin(anchor: &str, table: &str) -> Vec<String> {
    let mut v = table_command(anchor, table, "replace");
    v.extend(strings(&["-f", "-"]));
    v
}

/// `pfctl -a portsentry -t portsentry -T show`
pub fn argv_show(anchor: &str, table: &str) -> Vec<String> {
    table_command(anchor, table, "show")
}

/// `pfctl -a portsentry -t portsentry -T flush`
pub fn argv_flush(anchor: &str, table: &str) -> Vec<String> {
    table_command(anchor, table, "flush")
}

/// `pfctl -k 198.18.0.1` (kills the states originating from the host or network)
pub fn argv_kill_states(net: &Net) -> Vec<String> {
    vec!["pfctl".to_string(), "-k".to_string(), net.to_string()]
}

/// `-f -` input: one address (`ADDR` or `ADDR/LEN`) per line.
pub fn address_lines<'a>(nets: impl IntoIterator<Item = &'a Net>) -> Vec<u8> {
    let mut out = String::new();
    for net in nets {
        out.push_str(&net.to_string());
        out.push('\n');
    }
    out.into_bytes()
}
