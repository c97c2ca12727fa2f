//! Reading what npfctl(8) prints, and the set arithmetic of an `lpm` table: pure.
//!
//! In: npfctl's stdout and stderr as text, sets of [`Net`]s. Out: the networks a `list`
//! printed (or the line that is not one), which refusal a stderr names ([`Said`]), and
//! sets normalised so an `lpm` table takes them. Must not: run anything.
//!
//! The formats, from NetBSD's `usr.sbin/npf/npfctl/npf_cmd.c` (NetBSD 10) and
//! `npfctl.c` (NetBSD 7 to 9):
//! - `table NAME list` prints each entry with `puts(npfctl_print_addrmask(alen, "%a",
//!   &addr, mask))`: the address as `sockaddr_snprintf("%a")` writes it, then `/%u` with
//!   the prefix length unless the mask is 0 or `NPF_NO_NETMASK`. An `ipset` table keeps
//!   no mask (`198.18.0.1`, `fd00::1`); an `lpm` table keeps one for every entry, hosts
//!   included (`198.18.0.1/32`, `fd00::1/128`, `198.18.0.0/24`). Nothing else is printed.
//! - `add`, `rem`, `flush` print `npfctl: success` on stdout; `test` prints
//!   `npfctl: match` (NetBSD 10) or `npfctl: matching entry found` (NetBSD 7 to 9).
//! - Failures are `errx(EXIT_FAILURE, ...)`: exit status 1, `npfctl: MESSAGE` on stderr:
//!   EEXIST `entry already exists or is conflicting`; ENOENT `not found` (NetBSD 10) or
//!   `no matching entry was not found` (NetBSD 7 to 9); EINVAL `invalid address, mask or
//!   table ID` (the kernel's `npfctl_table()` answers EINVAL when no table has the name).
//! - `replace`: `table 'NAME' not found in the active configuration`;
//!   `PATH:LINE: mask used with the table type other than "lpm"`; an npfctl without the
//!   subcommand says `invalid command 'replace'`.

use portsentry_blocker::Net;
use std::collections::HashSet;

/// Which refusal npfctl's stderr names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Said {
    /// EEXIST: the entry, or in an `lpm` table one covering its address, is there.
    Exists,
    /// ENOENT: no such entry.
    NotFound,
    /// EINVAL: no table of that name, or an address or mask the table refuses.
    Invalid,
    /// `replace`: no table of that name is loaded.
    NoTable,
    /// This npfctl has no `table ... replace` (NetBSD 9 and older), or cannot read it
    /// from stdin.
    NoReplace,
    /// `replace`: a network in a table that is not of type `lpm`.
    MaskNeedsLpm,
    /// Anything else.
    Other,
}

/// A stderr or stdout line without its `npfctl: ` prefix (`err(3)` writes
/// `progname: message`).
fn message(line: &str) -> &str {
    let line = line.trim();
    line.split_once(": ").map_or(line, |(_, m)| m)
}

/// The refusal a failed npfctl's stderr names.
pub fn classify(stderr: &str) -> Said {
    for line in stderr.lines() {
        let m = message(line);
        let said = match m {
            "entry already exists or is conflicting" => Said::Exists,
            "not found" | "no matching entry was not found" => Said::NotFound,
            "invalid address, mask or table ID" => Said::Invalid,
            "invalid command 'replace'" => Said::NoReplace,
            _ if m.starts_with("table '")
                && m.ends_with("' not found in the active configuration") =>
            {
                Said::NoTable
            }
            _ if m.starts_with("open '-'") => Said::NoReplace,
            _ if m.ends_with("mask used with the table type other than \"lpm\"") => {
                Said::MaskNeedsLpm
            }
            _ => continue,
        };
        return said;
    }
    Said::Other
}

/// Whether a successful run printed only lines whose message is one of `expected`
/// (nothing at all also counts).
pub fn says_only(stdout: &str, expected: &[&str]) -> bool {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .all(|l| expected.contains(&message(l)))
}

/// The networks `table NAME list` printed, in its order; `Err` is the first line that is
/// not an address or `ADDR/LEN`. Empty lines are skipped.
pub fn parse_list(stdout: &str) -> Result<Vec<Net>, String> {
    let mut out = Vec::new();
    for line in stdout.lines() {
        let l = line.trim();
        if l.is_empty() {
            continue;
        }
        out.push(l.parse::<Net>().map_err(|_| line.to_string())?);
    }
    Ok(out)
}

/// Whether `net` lies inside an element of `set` (an equal one counts): what an `lpm`
/// table's longest-prefix lookup finds for every address of `net`.
pub fn covered(net: &Net, set: &HashSet<Net>) -> bool {
    (0..=net.prefix())
        .rev()
        .any(|p| Net::new(net.addr(), p).is_ok_and(|n| set.contains(&n)))
}

/// An entry of `held` narrower than `net` that holds `net`'s first address: an `lpm`
/// table refuses to add `net` beside it (`lpm_lookup` of the address finds it).
pub fn narrower_at_start<'a>(net: &Net, held: impl IntoIterator<Item = &'a Net>) -> Option<Net> {
    held.into_iter()
        .find(|h| h.prefix() > net.prefix() && h.contains(net.addr()))
        .copied()
}

/// The distinct networks of `nets` that lie inside no other, sorted. An `lpm` table
/// refuses an entry whose address an entry it holds already covers (and a table file
/// with a duplicate fails as a whole); dropping covered ones blocks the same addresses.
pub fn normalize(nets: impl IntoIterator<Item = Net>) -> Vec<Net> {
    let mut v: Vec<Net> = nets.into_iter().collect();
    // Wider first, so every net's wider neighbours are kept before it is looked at.
    v.sort_by_key(|n| (n.prefix(), *n));
    let mut kept = HashSet::with_capacity(v.len());
    for n in v {
        if !covered(&n, &kept) {
            kept.insert(n);
        }
    }
    let mut out: Vec<Net> = kept.into_iter().collect();
    out.sort();
    out
}
