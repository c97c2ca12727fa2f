//! The netstat reader on hand-written tables: what counts as ours, and what cannot be read.

use crate::netstat::{ours, Unreadable};
use crate::{BsdOs, Family};
use portsentry_blocker::Net;

fn nets(list: &[&str]) -> Vec<Net> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

/// A real FreeBSD 12 `netstat -nr` after `route add -host 192.168.1.129 127.0.0.1
/// -blackhole` (idontwatch.tv, "Null Routing IP Addresses in FreeBSD and OpenBSD"),
/// loopback gateway printed as `localhost` despite `-n`.
const FREEBSD_12: &str = "\
Routing tables

Internet:
Destination        Gateway            Flags     Netif Expire
default            192.168.1.1        UGS         xn0
10.0.0.0           link#3             UH          lo1
10.0.0.80          link#3             UH          lo1
localhost          link#1             UH          lo0
192.168.1.0/24     link#2             U           xn0
192.168.1.28       link#2             UHS         lo0
192.168.1.129      localhost          UGHSB       lo0
255.255.255.0      link#3             UH          lo1
";

#[test]
fn freebsd_12_sample() {
    assert_eq!(
        ours(FREEBSD_12, Family::Inet, BsdOs::FreeBsd).unwrap(),
        nets(&["192.168.1.129"])
    );
    // Only FreeBSD has been seen naming the gateway; elsewhere it is someone else's.
    assert_eq!(ours(FREEBSD_12, Family::Inet, BsdOs::NetBsd).unwrap(), []);
    // The IPv6 reader skips the Internet section.
    assert_eq!(ours(FREEBSD_12, Family::Inet6, BsdOs::FreeBsd).unwrap(), []);
}

#[test]
fn flags_gateways_and_destinations() {
    let text = "\
Routing tables

Internet:
Destination        Gateway            Flags   Refs      Use   Mtu  Prio Iface
default            127.0.0.1          UGSB       0        0 32768     8 lo0
10.0.2.255         127.0.0.1          UHb        0        0     -     1 em0
127/8              127.0.0.1          UGRS       0        0 32768     8 lo0
198.18.0.1         127.0.0.1          UGHBS      0        0 32768     8 lo0
198.18.0.2         127.0.0.2          UGHBS      0        0 32768     8 lo0
198.18.0.3         127.0.0.1          UGHS       0        0 32768     8 lo0
198.18.4/24        127.0.0.1          UGBS       0        0 32768     8 lo0
10/8               127.0.0.1          UGBS       0        0 32768     8 lo0
172.16.128/17      127.0.0.1          UGBS       0        0 32768     8 lo0
198.18.0.1         127.0.0.1          UGHBS      0        0 32768     8 lo0

Internet6:
Destination                        Gateway                        Flags   Refs      Use   Mtu  Prio Iface
fd00::1                            ::1                            UGHBS      0        0 32768     8 lo0
";
    assert_eq!(
        ours(text, Family::Inet, BsdOs::OpenBsd).unwrap(),
        nets(&[
            "198.18.0.1",
            "198.18.4.0/24",
            "10.0.0.0/8",
            "172.16.128.0/17"
        ])
    );
}

#[test]
fn ipv6_zones_long_addresses_and_mapped() {
    // FreeBSD 14: our routes without G; a long address pushes the rest of its line right.
    let text = "\
Routing tables

Internet6:
Destination                       Gateway                       Flags     Netif Expire
::/96                             ::1                           UGRS        lo0
fe80::%lo0/64                     link#2                        U           lo0
fe80::1%lo0                       link#2                        UHS         lo0
fe80::bad%em0                     fe80::1%em0                   UGHSB       em0
fe80::5%em0                       ::1                           UHSB        lo0
2001:db8:1234:5678:9abc:def0:1234:5678 ::1                      UHSB        lo0
::ffff:198.18.0.9                 ::1                           UHSB        lo0
fd00:5e5e:1::/48                  ::1                           USB         lo0
fd00:5e5e:2::/48                  ::1                           URS         lo0
";
    assert_eq!(
        ours(text, Family::Inet6, BsdOs::FreeBsd).unwrap(),
        nets(&[
            "fe80::5",
            "2001:db8:1234:5678:9abc:def0:1234:5678",
            "fd00:5e5e:1::/48"
        ])
    );
    assert_eq!(ours(text, Family::Inet, BsdOs::FreeBsd).unwrap(), []);
}

#[test]
fn empty_table() {
    assert_eq!(
        ours("Routing tables\n", Family::Inet6, BsdOs::OpenBsd).unwrap(),
        []
    );
    assert_eq!(ours("", Family::Inet, BsdOs::NetBsd).unwrap(), []);
}

fn unreadable(text: &str, family: Family) -> Unreadable {
    ours(text, family, BsdOs::NetBsd).unwrap_err()
}

#[test]
fn unreadable_lines_are_named() {
    let header = "Routing tables\n\nInternet:\n\
        Destination        Gateway            Flags    Refs      Use    Mtu Interface\n";

    let e = unreadable(
        "Routing tables\n\nInternet:\n198.18.0.1 127.0.0.1 UGHBS - - - lo0\n",
        Family::Inet,
    );
    assert_eq!(
        e,
        Unreadable {
            number: 4,
            line: "198.18.0.1 127.0.0.1 UGHBS - - - lo0".to_string(),
            what: "a route line before the column header",
        }
    );

    let e = unreadable(
        "Internet:\nDestination Gateway Refs Use\n1.2.3.4 5.6.7.8 1 1\n",
        Family::Inet,
    );
    assert_eq!(
        (e.number, e.line.as_str()),
        (2, "Destination Gateway Refs Use")
    );

    let e = unreadable(&format!("{header}198.18.0.1 127.0.0.1\n"), Family::Inet);
    assert_eq!(e.number, 5);
    assert_eq!(
        e.what,
        "fewer words than the Destination, Gateway and Flags columns"
    );

    // Only candidates (B, loopback gateway) must be readable.
    let ok = format!("{header}some.name 10.0.0.1 UGHS - - - wm0\n");
    assert_eq!(ours(&ok, Family::Inet, BsdOs::NetBsd).unwrap(), []);
    for (row, what) in [
        (
            "some.name          127.0.0.1          UGHBS       -        -      -  lo0",
            "the destination is not an IPv4 address",
        ),
        (
            "fd00::1            127.0.0.1          UGHBS       -        -      -  lo0",
            "the destination is not an IPv4 address",
        ),
        (
            "198.18.4.0         127.0.0.1          UGBS        -        -      -  lo0",
            "a network route (no H flag) without a prefix length",
        ),
        (
            "198.18.4           127.0.0.1          UGHBS       -        -      -  lo0",
            "the destination is not an IPv4 address",
        ),
        (
            "198.18.4.0/24      127.0.0.1          UGHBS       -        -      -  lo0",
            "a host route (H flag) with a network prefix length",
        ),
        (
            "198.18.4.0/33      127.0.0.1          UGBS        -        -      -  lo0",
            "the prefix length is not a number within the address",
        ),
        (
            "1.2.3.4.5/24       127.0.0.1          UGBS        -        -      -  lo0",
            "the destination is not an IPv4 address",
        ),
    ] {
        let e = unreadable(&format!("{header}{row}\n"), Family::Inet);
        assert_eq!((e.number, e.line.as_str(), e.what), (5, row, what), "{row}");
    }
    let e = unreadable(
        "Internet6:\nDestination Gateway Flags\n198.18.0.1 ::1 UGHBS\n",
        Family::Inet6,
    );
    assert_eq!(e.what, "the destination is not an IPv6 address");
}
