//! Parsers of `ipfw(8)` output: pure, so tested on every platform.
//!
//! In: the stdout of `ipfw table NAME list`, `ipfw table NAME info` and `ipfw list NUM`
//! (run with `LC_ALL=C`). Out: networks, the table type, rule bodies; or the first line
//! that is not in the format FreeBSD's sbin/ipfw prints. Must not: guess, or skip a line
//! it does not understand (an unknown line could be an entry we would then forget).

use portsentry_blocker::Net;

/// The entries of `ipfw table NAME list`, or the first line not understood.
///
/// Format (sbin/ipfw/tables.c, `table_show_list` and `table_show_entry`):
/// FreeBSD 11 and 12 first print `--- table(NAME), set(N) ---` (`table_show_one` passes
/// `need_header = 1`); later versions print that header only for `table all list`. Then
/// one line per entry of an `addr` table: `printf("%s/%u %s\n", addr, masklen, value)`,
/// for example `198.18.0.1/32 0`, `198.18.4.0/24 0`, `fd00:5e5e::1/128 0`.
pub fn table_list(table: &str, text: &str) -> Result<Vec<Net>, String> {
    let mut nets = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = header_table(line) {
            if name == table {
                continue;
            }
            return Err(raw.to_string());
        }
        nets.push(entry(line).ok_or_else(|| raw.to_string())?);
    }
    Ok(nets)
}

/// The table a `--- table(NAME), set(N) ---` header names.
fn header_table(line: &str) -> Option<&str> {
    let inner = line.strip_prefix("--- table(")?.strip_suffix(" ---")?;
    let (name, set) = inner.split_once("), set(")?;
    let set = set.strip_suffix(')')?;
    (!set.is_empty() && set.bytes().all(|b| b.is_ascii_digit())).then_some(name)
}

/// `ADDR/LEN VALUE`: exactly two fields, the key always with its length.
fn entry(line: &str) -> Option<Net> {
    let mut fields = line.split_whitespace();
    let (key, _value) = (fields.next()?, fields.next()?);
    if fields.next().is_some() || !key.contains('/') {
        return None;
    }
    key.parse().ok()
}

/// The type `ipfw table NAME info` reports (`addr`, `iface`, `number`, `flow`, `mac`),
/// from its line ` kindex: %d, type: %s` (optionally followed by `, locked`; tables.c,
/// `table_show_info`). `None` if no such line is there.
pub fn table_type(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("kindex:")?;
        let (_, ty) = rest.split_once("type: ")?;
        let ty = ty.split(',').next()?.trim();
        (!ty.is_empty()).then(|| ty.to_string())
    })
}

/// The rules `ipfw list NUM` printed, as (number, body with single spaces), or the first
/// line not understood.
///
/// Format (sbin/ipfw/ipfw2.c, `show_static_rule`): `bprintf(bp, "%05u ", rule->rulenum)`,
/// then the action and the body, for example `00045 deny ip from table(portsentry) to any`.
/// Several rules can share one number; each is on its own line.
pub fn rule_list(text: &str) -> Result<Vec<(u32, String)>, String> {
    let mut rules = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let parsed = line.split_once(' ').and_then(|(num, body)| {
            let ok = num.len() >= 5 && num.bytes().all(|b| b.is_ascii_digit());
            let num: u32 = if ok { num.parse().ok()? } else { return None };
            let body = body.split_whitespace().collect::<Vec<_>>().join(" ");
            (!body.is_empty()).then_some((num, body))
        });
        rules.push(parsed.ok_or_else(|| raw.to_string())?);
    }
    Ok(rules)
}
