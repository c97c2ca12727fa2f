//! The argv for BSD `route(8)`: pure, so tested on every platform.

use portsentry_blocker::Net;
use std::net::IpAddr;

/// The program that `argv[0]` (`route`) names; exec'd by absolute path, never via PATH.
pub const ROUTE_PROGRAM: &str = "/sbin/route";

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
