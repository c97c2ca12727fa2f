//! [`BsdRoute`] against fake `route` and `netstat` programs (see [`super::fake`]), once per
//! BSD's output format: runs on Linux as any user.

use super::fake::{Tools, FOREIGN_STATE};
use crate::{BsdOs, BsdRoute, RouteError};
use portsentry_blocker::{BlockError, Blocker, Net, Step, Target};
use std::time::{Duration, Instant};

const NETSTAT4: &str = "netstat -rn -f inet";
const NETSTAT6: &str = "netstat -rn -f inet6";

fn net(s: &str) -> Net {
    s.parse().unwrap()
}

fn target(s: &str) -> Target {
    Target {
        net: net(s),
        timeout: None,
        reason: Default::default(),
    }
}

fn backend(tools: &Tools, os: BsdOs) -> BsdRoute {
    BsdRoute {
        route: tools.path("route"),
        netstat: tools.path("netstat"),
        os,
        limit: Duration::from_secs(30),
    }
}

fn listed(b: &mut BsdRoute) -> Vec<String> {
    b.list()
        .unwrap()
        .into_iter()
        .map(|h| {
            assert_eq!(h.remaining, None);
            h.net.to_string()
        })
        .collect()
}

fn cause(e: &BlockError) -> &RouteError {
    e.source.downcast_ref::<RouteError>().unwrap()
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

fn lifecycle(os: BsdOs) {
    let tools = Tools::new(os);
    let mut b = backend(&tools, os);
    assert_eq!(b.name(), "route");
    b.init().unwrap();
    assert!(tools.take_log().is_empty());

    // Every foreign route is left out: default, reject routes via the loopback, a
    // blackhole via another gateway, non-blackhole routes via the loopback, zones.
    assert_eq!(listed(&mut b), Vec::<String>::new());
    assert_eq!(tools.take_log(), [NETSTAT4, NETSTAT6]);

    b.block(&target("198.18.0.1")).unwrap();
    assert_eq!(
        tools.take_log(),
        ["route -n add -host 198.18.0.1 127.0.0.1 -blackhole"]
    );
    b.block_many(&[
        target("198.18.4.0/24"),
        target("fd00:5e5e::1"),
        target("fd00:5e5e:1::/48"),
    ])
    .unwrap();
    assert_eq!(
        tools.take_log(),
        [
            "route -n add -net 198.18.4.0/24 127.0.0.1 -blackhole",
            "route -n add -inet6 -host fd00:5e5e::1 ::1 -blackhole",
            "route -n add -inet6 -net fd00:5e5e:1::/48 ::1 -blackhole",
        ]
    );

    // Blocking twice: route(8) says the route exists, and it is ours.
    b.block(&target("198.18.0.1")).unwrap();
    b.block(&target("fd00:5e5e:1::/48")).unwrap();
    assert_eq!(
        tools.take_log(),
        [
            "route -n add -host 198.18.0.1 127.0.0.1 -blackhole",
            NETSTAT4,
            NETSTAT6,
            "route -n add -inet6 -net fd00:5e5e:1::/48 ::1 -blackhole",
            NETSTAT4,
            NETSTAT6,
        ]
    );

    // A route for exactly that network exists and is someone else's: refused, untouched.
    let e = b.block(&target("203.0.113.77")).unwrap_err();
    assert_eq!(e.to_string(), "route: block of 203.0.113.77 failed");
    assert!(matches!(cause(&e), RouteError::NotOurs { .. }), "{e:?}");
    assert_eq!(
        tools.take_log(),
        [
            "route -n add -host 203.0.113.77 127.0.0.1 -blackhole",
            NETSTAT4,
            NETSTAT6
        ]
    );

    assert_eq!(
        listed(&mut b),
        [
            "198.18.0.1",
            "198.18.4.0/24",
            "fd00:5e5e::1",
            "fd00:5e5e:1::/48"
        ]
    );
    assert_eq!(tools.take_log(), [NETSTAT4, NETSTAT6]);

    // Unblocking a missing route, or one that is not ours: success, nothing deleted.
    for other in [
        "198.18.9.9",
        "203.0.113.66",
        "203.0.113.77",
        "2001:db8:77::1",
    ] {
        b.unblock(&net(other)).unwrap();
        assert_eq!(tools.take_log(), [NETSTAT4, NETSTAT6], "{other}");
    }
    // route(8) itself saying "not in table" is success too (gone since netstat ran).
    b.delete_ours(&net("198.18.9.9")).unwrap();
    b.delete_ours(&net("fd00:5e5e:9::/48")).unwrap();
    assert_eq!(
        tools.take_log(),
        [
            "route -n delete -host 198.18.9.9",
            "route -n delete -inet6 -net fd00:5e5e:9::/48"
        ]
    );

    b.block(&target("198.18.0.2")).unwrap();
    b.unblock(&net("198.18.0.2")).unwrap();
    assert_eq!(
        tools.take_log(),
        [
            "route -n add -host 198.18.0.2 127.0.0.1 -blackhole",
            NETSTAT4,
            NETSTAT6,
            "route -n delete -host 198.18.0.2",
        ]
    );

    // Flush: exactly what list reports, each with the unblock argv; the rest stays.
    b.flush().unwrap();
    assert_eq!(
        tools.take_log(),
        [
            NETSTAT4,
            NETSTAT6,
            "route -n delete -host 198.18.0.1",
            "route -n delete -net 198.18.4.0/24",
            "route -n delete -inet6 -host fd00:5e5e::1",
            "route -n delete -inet6 -net fd00:5e5e:1::/48",
        ]
    );
    assert_eq!(tools.state(), lines(FOREIGN_STATE));
    assert_eq!(listed(&mut b), Vec::<String>::new());
    b.flush().unwrap();
    assert_eq!(tools.take_log(), [NETSTAT4, NETSTAT6, NETSTAT4, NETSTAT6]);
    assert!(!b.vanished().unwrap());
}

fn tool_fails(os: BsdOs) {
    let tools = Tools::new(os);
    let dir = tools.dir.display().to_string();
    let mut b = backend(&tools, os);

    tools.set("route.fail", true);
    let e = b.block(&target("198.18.0.1")).unwrap_err();
    assert_eq!((e.step, e.net), (Step::Block, Some(net("198.18.0.1"))));
    assert_eq!(e.to_string(), "route: block of 198.18.0.1 failed");
    assert_eq!(
        e.source.to_string(),
        format!(
            "`{dir}/route -n add -host 198.18.0.1 127.0.0.1 -blackhole` failed \
             (exit status: 1): route: writing to routing socket: Operation not permitted"
        )
    );
    assert!(
        matches!(cause(&e), RouteError::Exit { status, .. } if status.code() == Some(1)),
        "{e:?}"
    );
    tools.set("route.fail", false);
    b.block(&target("198.18.0.1")).unwrap();
    tools.set("route.fail", true);
    let e = b.unblock(&net("198.18.0.1")).unwrap_err();
    assert_eq!((e.step, e.net), (Step::Unblock, Some(net("198.18.0.1"))));
    assert!(
        e.source
            .to_string()
            .starts_with(&format!("`{dir}/route -n delete -host 198.18.0.1` failed")),
        "{e:?}"
    );
    let e = b.flush().unwrap_err();
    assert_eq!((e.step, e.net), (Step::Flush, Some(net("198.18.0.1"))));
    tools.set("route.fail", false);
    let _ = tools.take_log();

    tools.set("netstat.fail", true);
    let netstat_failed = format!(
        "`{dir}/netstat -rn -f inet` failed (exit status: 1): \
         netstat: sysctl: net.route.0.0.dump: Operation not permitted"
    );
    let e = b.list().unwrap_err();
    assert_eq!((e.step, e.net), (Step::List, None));
    assert_eq!(e.to_string(), "route: list failed");
    assert_eq!(e.source.to_string(), netstat_failed);
    let e = b.flush().unwrap_err();
    assert_eq!((e.step, e.net), (Step::Flush, None));
    assert_eq!(e.source.to_string(), netstat_failed);
    // Nothing is deleted when the table cannot be read.
    assert_eq!(tools.take_log(), [NETSTAT4, NETSTAT4]);
    let e = b.unblock(&net("198.18.0.1")).unwrap_err();
    assert_eq!(e.step, Step::Unblock);
    assert_eq!(tools.take_log(), [NETSTAT4]);
    assert!(tools
        .state()
        .contains(&"inet host 198.18.0.1 127.0.0.1 B".to_string()));
}

fn tool_hangs(os: BsdOs) {
    let tools = Tools::new(os);
    let dir = tools.dir.display().to_string();
    let mut b = backend(&tools, os);
    b.limit = Duration::from_millis(300);

    tools.set("route.hang", true);
    let started = Instant::now();
    let e = b.block(&target("198.18.0.1")).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(e.step, Step::Block);
    assert_eq!(
        e.source.to_string(),
        format!(
            "`{dir}/route -n add -host 198.18.0.1 127.0.0.1 -blackhole` did not finish \
             within 300ms and was killed; stderr: "
        )
    );
    assert!(matches!(cause(&e), RouteError::Timeout { .. }));
    tools.set("route.hang", false);

    tools.set("netstat.hang", true);
    let started = Instant::now();
    let e = b.list().unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(e.step, Step::List);
    assert!(
        e.source.to_string().starts_with(&format!(
            "`{dir}/netstat -rn -f inet` did not finish within 300ms"
        )),
        "{e:?}"
    );
}

fn tool_missing(os: BsdOs) {
    let tools = Tools::new(os);
    let dir = tools.dir.display().to_string();
    let mut b = backend(&tools, os);
    b.route = tools.path("no-route");
    let e = b.block(&target("fd00:5e5e::1")).unwrap_err();
    assert_eq!(e.step, Step::Block);
    assert_eq!(
        e.source.to_string(),
        format!("cannot run `{dir}/no-route -n add -inet6 -host fd00:5e5e::1 ::1 -blackhole`")
    );
    let RouteError::Spawn { source, .. } = cause(&e) else {
        panic!("{e:?}")
    };
    assert!(source.to_string().contains("No such file"), "{source}");

    b.netstat = tools.path("no-netstat");
    let e = b.list().unwrap_err();
    assert_eq!(
        e.source.to_string(),
        format!("cannot run `{dir}/no-netstat -rn -f inet`")
    );
    assert!(tools.take_log().is_empty());
}

/// The fake netstat prints the header each BSD prints (see the formats quoted in
/// `fake.rs`), and its output reads back as the routes given to the fake route.
fn fixture_format(os: BsdOs) {
    let tools = Tools::new(os);
    let mut b = backend(&tools, os);
    b.block(&target("198.18.0.1")).unwrap();
    b.block(&target("198.18.4.0/24")).unwrap();
    b.block(&target("fd00:5e5e::1")).unwrap();
    let v4 = tools.netstat("inet");
    let v6 = tools.netstat("inet6");
    let head = |t: &str| t.lines().take(4).collect::<Vec<_>>().join("\n");
    let (h4, h6, ours4, net4, ours6) = match os {
        BsdOs::FreeBsd => (
            "Destination        Gateway            Flags     Netif Expire",
            "Destination                       Gateway                       Flags     Netif Expire",
            "198.18.0.1         127.0.0.1          UHSB        lo0",
            "198.18.4.0/24      127.0.0.1          USB         lo0",
            "fd00:5e5e::1                      ::1                           UHSB        lo0",
        ),
        BsdOs::NetBsd => (
            "Destination        Gateway            Flags    Refs      Use    Mtu Interface",
            "Destination                             Gateway                        Flags    Refs      Use    Mtu Interface",
            "198.18.0.1         127.0.0.1          UGHBS       -        -  33624  lo0",
            "198.18.4/24        127.0.0.1          UGBS        -        -  33624  lo0",
            "fd00:5e5e::1                            ::1                            UGHBS       -        -  33624  lo0",
        ),
        BsdOs::OpenBsd => (
            "Destination        Gateway            Flags   Refs      Use   Mtu  Prio Iface",
            "Destination                        Gateway                        Flags   Refs      Use   Mtu  Prio Iface",
            "198.18.0.1         127.0.0.1          UGHBS      0        0 32768     8 lo0",
            "198.18.4/24        127.0.0.1          UGBS       0        0 32768     8 lo0",
            "fd00:5e5e::1                       ::1                            UGHBS      0        0 32768     8 lo0",
        ),
    };
    assert_eq!(head(&v4), format!("Routing tables\n\nInternet:\n{h4}"));
    assert_eq!(head(&v6), format!("Routing tables\n\nInternet6:\n{h6}"));
    assert!(v4.lines().any(|l| l == ours4), "{v4}");
    assert!(v4.lines().any(|l| l == net4), "{v4}");
    assert!(v6.lines().any(|l| l == ours6), "{v6}");
    assert!(v6.lines().any(|l| l.starts_with("fe80::bad%")), "{v6}");
    assert_eq!(
        listed(&mut b),
        ["198.18.0.1", "198.18.4.0/24", "fd00:5e5e::1"]
    );
}

macro_rules! per_os {
    ($($name:ident => $os:expr),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[test]
            fn lifecycle() {
                super::lifecycle($os)
            }

            #[test]
            fn tool_fails() {
                super::tool_fails($os)
            }

            #[test]
            fn tool_hangs() {
                super::tool_hangs($os)
            }

            #[test]
            fn tool_missing() {
                super::tool_missing($os)
            }

            #[test]
            fn fixture_format() {
                super::fixture_format($os)
            }
        }
    )*};
}

per_os!(
    freebsd => BsdOs::FreeBsd,
    netbsd => BsdOs::NetBsd,
    openbsd => BsdOs::OpenBsd,
);

#[test]
fn defaults() {
    let b = BsdRoute::new(BsdOs::OpenBsd);
    assert_eq!(b.route, std::path::Path::new("/sbin/route"));
    assert_eq!(b.netstat, std::path::Path::new("/usr/bin/netstat"));
    assert_eq!(b.limit, crate::TOOL_LIMIT);
    assert_eq!(b.os, BsdOs::OpenBsd);
    assert_eq!(
        BsdOs::native().is_some(),
        cfg!(any(
            target_os = "freebsd",
            target_os = "netbsd",
            target_os = "openbsd"
        ))
    );
}
