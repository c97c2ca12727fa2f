use crate::{argv_block, argv_list, argv_unblock, Family};
use portsentry_blocker::Net;

fn net(s: &str) -> Net {
    s.parse().unwrap()
}

#[test]
fn argv_host_v4() {
    assert_eq!(
        argv_block(&net("198.18.0.1")),
        [
            "route",
            "-n",
            "add",
            "-host",
            "198.18.0.1",
            "127.0.0.1",
            "-blackhole"
        ]
    );
    assert_eq!(
        argv_unblock(&net("198.18.0.1")),
        ["route", "-n", "delete", "-host", "198.18.0.1"]
    );
}

#[test]
fn argv_host_v6() {
    assert_eq!(
        argv_block(&net("fd00:5e5e::1")),
        [
            "route",
            "-n",
            "add",
            "-inet6",
            "-host",
            "fd00:5e5e::1",
            "::1",
            "-blackhole"
        ]
    );
    assert_eq!(
        argv_unblock(&net("fd00:5e5e::1")),
        ["route", "-n", "delete", "-inet6", "-host", "fd00:5e5e::1"]
    );
}

#[test]
fn argv_networks() {
    assert_eq!(
        argv_block(&net("198.18.4.7/24")),
        [
            "route",
            "-n",
            "add",
            "-net",
            "198.18.4.0/24",
            "127.0.0.1",
            "-blackhole"
        ]
    );
    assert_eq!(
        argv_unblock(&net("198.18.4.0/24")),
        ["route", "-n", "delete", "-net", "198.18.4.0/24"]
    );
    assert_eq!(
        argv_block(&net("fd00:5e5e:1::/48")),
        [
            "route",
            "-n",
            "add",
            "-inet6",
            "-net",
            "fd00:5e5e:1::/48",
            "::1",
            "-blackhole"
        ]
    );
    assert_eq!(
        argv_unblock(&net("fd00:5e5e:1::/48")),
        [
            "route",
            "-n",
            "delete",
            "-inet6",
            "-net",
            "fd00:5e5e:1::/48"
        ]
    );
}

#[test]
fn argv_netstat() {
    assert_eq!(argv_list(Family::Inet), ["netstat", "-rn", "-f", "inet"]);
    assert_eq!(argv_list(Family::Inet6), ["netstat", "-rn", "-f", "inet6"]);
    assert_eq!(crate::ROUTE_PROGRAM, "/sbin/route");
    assert_eq!(crate::NETSTAT_PROGRAM, "/usr/bin/netstat");
}

mod bsd;
mod fake;
#[cfg(target_os = "linux")]
mod linux;
mod netstat;
