//! The argvs for BSD `route(8)` and `netstat(1)`: pure, so tested on every platform.
//!
//! In: a [`Net`] (or the [`Family`] of a routing table). Out: the argv, `argv[0]` being the
//! bare program name; the caller execs the configured absolute path instead. Must not: run
//! anything, or build a shell string.

use portsentry_blocker::Net;
use std::net::IpAddr;

/// The program that `argv[0]` (`route`) names; exec'd by absolute path, never via PATH.
pub const ROUTE_PROGRAM: &str = "/sbin/route";

/// The program that `argv[0]` (`netstat`) names; exec'd by absolute path, never via PATH.
/// The same path on FreeBSD, NetBSD and OpenBSD.
pub const NETSTAT_PROGRAM: &str = "/usr/bin/netstat";

/// An address family of the routing table, as `netstat -f` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4: `-f inet`, printed under `Internet:`.
    Inet,
    /// IPv6: `-f inet6`, printed under `Internet6:`.
    Inet6,
}

impl Family {
    /// Both families, IPv4 first.
    pub const ALL: [Family; 2] = [Family::Inet, Family::Inet6];

    /// The name `netstat -f` takes.
    pub fn name(self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::Inet6 => "inet6",
        }
    }

    /// The section title netstat prints before this family's routes, without the colon.
    pub fn title(self) -> &'static str {
        match self {
            Family::Inet => "Internet",
            Family::Inet6 => "Internet6",
        }
    }
}

/// `-host ADDR` for a host, `-net ADDR/LEN` for a network; `-inet6` first for IPv6.
fn destination(net: &Net) -> Vec<String> {
    let mut v = Vec::with_capacity(3);
    if net.addr().is_ipv6() {
        v.push("-inet6".to_string());
    }
    if net.is_host() {
        v.push("-host".to_string());
        v.push(net.addr().to_string());
    } else {
        v.push("-net".to_string());
        v.push(format!("{}/{}", net.addr(), net.prefix()));
    }
    v
}

/// `route -n add -host 198.18.0.1 127.0.0.1 -blackhole` (IPv6:
/// `route -n add -inet6 -host ADDR ::1 -blackhole`; networks: `-net ADDR/LEN`).
/// `argv[0]` is `route`; it is run as [`ROUTE_PROGRAM`].
pub fn argv_block(net: &Net) -> Vec<String> {
    let mut v = vec!["route".to_string(), "-n".to_string(), "add".to_string()];
    v.extend(destination(net));
    v.push(match net.addr() {
        IpAddr::V4(_) => "127.0.0.1".to_string(),
        IpAddr::V6(_) => "::1".to_string(),
    });
    v.push("-blackhole".to_string());
    v
}

/// `route -n delete -host 198.18.0.1` (IPv6: `route -n delete -inet6 -host ADDR`;
/// networks: `-net ADDR/LEN`).
pub fn argv_unblock(net: &Net) -> Vec<String> {
    let mut v = vec!["route".to_string(), "-n".to_string(), "delete".to_string()];
    v.extend(destination(net));
    v
}

/// `netstat -rn -f inet` (IPv6: `-f inet6`): the routing table of one family, addresses
/// numeric. `argv[0]` is `netstat`; it is run as [`NETSTAT_PROGRAM`].
pub fn argv_list(family: Family) -> Vec<String> {
    vec![
        "netstat".to_string(),
        "-rn".to_string(),
        "-f".to_string(),
        family.name().to_string(),
    ]
}
