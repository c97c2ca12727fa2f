//! Reading our blackhole routes out of `netstat -rn -f inet|inet6` (FreeBSD, NetBSD,
//! OpenBSD): pure, so tested on every platform.
//!
//! In: netstat's stdout for one [`Family`] and the [`BsdOs`] that printed it. Out: the
//! networks of the routes that are ours, in netstat's order, each once; or the first line
//! that cannot be read. Must not: list a route without the blackhole flag `B`, or one whose
//! gateway is not the loopback address [`crate::argv_block`] gives (`127.0.0.1`, `::1`),
//! or the `default` route; guess a column from its position in the line.
//!
//! The three netstats print the same frame (sources: FreeBSD `usr.bin/netstat/route.c`
//! and `route_netlink.c`; NetBSD `sbin/route/rtutil.c`, which `netstat -r` shares;
//! OpenBSD `usr.bin/netstat/show.c`):
//!
//! ```text
//! Routing tables                 (FreeBSD: "Routing tables (fib: N)" for fib N != 0)
//!
//! Internet:                      ("Internet6:" for -f inet6)
//! Destination  Gateway  Flags  ...    FreeBSD:  Netif Expire
//!                                     NetBSD:   Refs Use Mtu Interface
//!                                     OpenBSD:  Refs Use Mtu Prio Iface
//! 198.18.0.1   127.0.0.1  UGHBS  ...
//! ```
//!
//! Every field is printed `%-*s ` (at least one space after it, never truncated with `-n`),
//! and Destination, Gateway and Flags are never empty, so a route's fields are its
//! whitespace-separated words, and the header line's words say which word is which
//! column. A column can be wider than its header (a long IPv6 address pushes the rest of
//! the line to the right), so byte positions are not used.
//!
//! Flag letters: `B` is `RTF_BLACKHOLE` and `H` is `RTF_HOST` on all three (`b` is
//! broadcast, `R` reject: neither counts). A host is printed as a bare address, a network
//! as `ADDR/LEN`; NetBSD and OpenBSD drop the trailing zero bytes of an IPv4 network
//! (`198.18.4/24`, `127/8`); a link-local IPv6 address carries its zone (`fe80::1%em0`,
//! `fe80::%em0/64`). Recent FreeBSD (14) stores every blackhole route with gateway
//! `127.0.0.1` / `::1` and without `G`, whatever gateway it was added with
//! (`nhop_set_blackhole()` in `sys/net/route/nhop_ctl.c`); FreeBSD has also been seen
//! printing the loopback gateway as `localhost` despite `-n`.

use crate::argv::Family;
use crate::bsd::BsdOs;
use portsentry_blocker::Net;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A line of netstat's output that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unreadable {
    /// 1-based.
    pub number: usize,
    pub line: String,
    pub what: &'static str,
}

/// Which word of a route line holds which column.
#[derive(Debug, Clone, Copy)]
struct Columns {
    destination: usize,
    gateway: usize,
    flags: usize,
}

impl Columns {
    fn from_header(words: &[&str]) -> Option<Columns> {
        let at = |name: &str| words.iter().position(|w| *w == name);
        Some(Columns {
            destination: at("Destination")?,
            gateway: at("Gateway")?,
            flags: at("Flags")?,
        })
    }

    /// How many words a route line needs.
    fn needed(&self) -> usize {
        self.destination.max(self.gateway).max(self.flags) + 1
    }
}

/// The networks of our blackhole routes in `text`, the stdout of `netstat -rn -f FAMILY`.
pub(crate) fn ours(text: &str, family: Family, os: BsdOs) -> Result<Vec<Net>, Unreadable> {
    // Routes before any section title count as `family`'s; under another title, skipped.
    let mut in_family = true;
    let mut columns: Option<Columns> = None;
    let mut nets = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let bad = |what| Unreadable {
            number: i + 1,
            line: raw.trim_end().to_string(),
            what,
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with("Routing tables") {
            continue;
        }
        // "Internet:", "Internet6:", "Protocol Family 18:"; a route line never ends in ':'.
        if let Some(title) = line.strip_suffix(':') {
            in_family = title == family.title();
            columns = None;
            continue;
        }
        if !in_family {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.contains(&"Destination") {
            columns = Some(
                Columns::from_header(&words)
                    .ok_or_else(|| bad("a header without Destination, Gateway and Flags"))?,
            );
            continue;
        }
        let cols = columns.ok_or_else(|| bad("a route line before the column header"))?;
        if words.len() < cols.needed() {
            return Err(bad(
                "fewer words than the Destination, Gateway and Flags columns",
            ));
        }
        let flags = words[cols.flags];
        if !flags.contains('B') || !is_loopback(words[cols.gateway], family, os) {
            continue;
        }
        match destination(words[cols.destination], family, flags.contains('H')) {
            Ok(Some(net)) if !nets.contains(&net) => nets.push(net),
            Ok(_) => {}
            Err(what) => return Err(bad(what)),
        }
    }
    Ok(nets)
}

/// The gateway [`crate::argv_block`] gives for `family`, as netstat prints it.
fn is_loopback(gateway: &str, family: Family, os: BsdOs) -> bool {
    let numeric = match family {
        Family::Inet => "127.0.0.1",
        Family::Inet6 => "::1",
    };
    gateway == numeric || (os == BsdOs::FreeBsd && gateway == "localhost")
}

/// The network a blackhole route's Destination names. `Ok(None)`: a route our argv never
/// makes (`default`, an IPv4-mapped IPv6 address), so not ours.
fn destination(text: &str, family: Family, host: bool) -> Result<Option<Net>, &'static str> {
    if text == "default" {
        return Ok(None);
    }
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    // The zone of a link-local address: fe80::1%em0, fe80::%em0/64.
    let addr = addr.split_once('%').map_or(addr, |(a, _zone)| a);
    let (ip, max) = match family {
        Family::Inet => (IpAddr::V4(ipv4(addr, prefix.is_some())?), 32),
        Family::Inet6 => (
            IpAddr::V6(
                addr.parse::<Ipv6Addr>()
                    .map_err(|_| "the destination is not an IPv6 address")?,
            ),
            128,
        ),
    };
    let prefix = match prefix {
        None if host => max,
        None => return Err("a network route (no H flag) without a prefix length"),
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or("the prefix length is not a number within the address")?,
    };
    if host && prefix != max {
        return Err("a host route (H flag) with a network prefix length");
    }
    let net = Net::new(ip, prefix).map_err(|_| "the prefix length is too long")?;
    // Net turns ::ffff:a.b.c.d into IPv4; route(8) was never asked for such a route.
    if net.addr().is_ipv4() != (family == Family::Inet) {
        return Ok(None);
    }
    Ok(Some(net))
}

/// `a.b.c.d`; with a prefix length also NetBSD's and OpenBSD's `a`, `a.b`, `a.b.c`
/// (the dropped bytes are zero).
fn ipv4(text: &str, network: bool) -> Result<Ipv4Addr, &'static str> {
    const NOT: &str = "the destination is not an IPv4 address";
    if !network {
        return text.parse().map_err(|_| NOT);
    }
    let mut bytes = [0u8; 4];
    for (n, part) in text.split('.').enumerate() {
        let slot = bytes.get_mut(n).ok_or(NOT)?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NOT);
        }
        *slot = part.parse().map_err(|_| NOT)?;
    }
    Ok(Ipv4Addr::from(bytes))
}
