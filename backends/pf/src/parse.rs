//! Reading pfctl's output: pure, so tested on every platform.
//!
//! In: the stdout or stderr text of one pfctl run. Out: the facts the backend needs
//! (the main ruleset evaluates our anchor; our rule and table are loaded; the entries of
//! our table; how many addresses an add really added; "does not exist"). Must not: guess.
//! A line of `-T show` that is not an address is an error naming the line.
//!
//! Formats followed (OpenBSD sbin/pfctl, pfctl_table.c 1.91 and pfctl_parser.c; FreeBSD
//! sbin/pfctl, the same code with `#ifdef`s):
//! - `-s rules`: `print_rule` prints an anchor call as `anchor "NAME"` and then the
//!   addresses, ` all` when both are any: `anchor "portsentry" all`.
//! - `-T show`: `print_addrx` prints `"%c %c%s"` (feedback character, `!` or space, the
//!   address) and `/%d` for a network: `   198.18.0.1`, `   198.18.0.0/24`,
//!   `   fd00:5e5e::1`.
//! - `-s Tables`: `print_table` prints the name, and on OpenBSD `@ANCHOR` after it.
//! - `-T add`: `xprintf` writes `%d/%d addresses added.` to stderr.
//! - a missing table: `pf_strerror(ESRCH)` `Table does not exist`; a missing anchor:
//!   `pf_strerror(EINVAL)` `Anchor does not exist` (both after `pfctl: `, on stderr).

use portsentry_blocker::Net;

/// Whether the main ruleset (`pfctl -s rules`) calls `anchor`: a line
/// `anchor "NAME"` followed by the end of the line or a space.
pub(crate) fn references_anchor(rules: &str, anchor: &str) -> bool {
    let call = format!("anchor \"{anchor}\"");
    rules.lines().any(|line| {
        line.trim_start()
            .strip_prefix(&call)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
    })
}

/// Whether our anchor's rules (`pfctl -a A -s rules`) hold a `block` rule
/// `... from <TABLE> ...`.
pub(crate) fn has_block_rule(rules: &str, table: &str) -> bool {
    let tag = format!("<{table}>");
    rules.lines().any(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words.first() == Some(&"block") && words.windows(2).any(|w| w[0] == "from" && w[1] == tag)
    })
}

/// Whether `pfctl -a A -s Tables` lists our (active) table: `TABLE` (FreeBSD) or
/// `TABLE@ANCHOR` (OpenBSD).
pub(crate) fn lists_table(tables: &str, anchor: &str, table: &str) -> bool {
    let qualified = format!("{table}@{anchor}");
    tables
        .lines()
        .map(str::trim)
        .any(|l| l == table || l == qualified)
}

/// The entries printed by `-T show`; blank lines are skipped. An unexpected line is
/// returned with why it was refused.
pub(crate) fn entries(show: &str) -> Result<Vec<Net>, (String, &'static str)> {
    let mut nets = Vec::new();
    for line in show.lines() {
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if text.starts_with('!') {
            return Err((
                line.to_string(),
                "a negated entry; portsentry never adds one",
            ));
        }
        match text.parse::<Net>() {
            Ok(net) => nets.push(net),
            Err(_) => {
                return Err((
                    line.to_string(),
                    "not an address or network (ADDR or ADDR/LEN)",
                ))
            }
        }
    }
    Ok(nets)
}

/// How many addresses `-T add` added (`N/M addresses added.` on stderr), if it says.
pub(crate) fn added(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|line| {
        let (count, rest) = line.trim().split_once('/')?;
        if !rest.contains("addresses added") {
            return None;
        }
        count.parse().ok()
    })
}

/// Whether a failed run said our table or anchor does not exist (nothing to delete,
/// nothing held).
pub(crate) fn absent(stderr: &str) -> bool {
    stderr.contains("Table does not exist") || stderr.contains("Anchor does not exist")
}
