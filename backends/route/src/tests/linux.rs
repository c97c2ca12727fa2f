use crate::netlink::{self, Reply};
use crate::{Route, PROTO};
use portsentry_blocker::{Blocker, Net, Target};
use std::fs::File;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

fn net(s: &str) -> Net {
    s.parse().unwrap()
}

#[cfg(target_endian = "little")]
#[test]
fn block_v4_host_bytes() {
    #[rustfmt::skip]
    let want: [u8; 44] = [
        0x2c, 0, 0, 0, 24, 0, 0x05, 0x06, 1, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr: request, ack, excl, create
        2, 32, 0, 0, 254, 0x9e, 0, 6, 0, 0, 0, 0, // rtmsg: inet /32 main proto universe blackhole
        8, 0, 1, 0, 198, 18, 0, 1, // RTA_DST
        8, 0, 15, 0, 254, 0, 0, 0, // RTA_TABLE main
    ];
    assert_eq!(netlink::encode_block(&net("198.18.0.1"), 1), want);
}

#[cfg(target_endian = "little")]
#[test]
fn block_v4_network_bytes() {
    let got = netlink::encode_block(&net("198.18.4.0/24"), 2);
    assert_eq!(got[8], 2);
    assert_eq!(&got[16..18], &[2, 24]);
    assert_eq!(&got[28..36], &[8, 0, 1, 0, 198, 18, 4, 0]);
}

#[cfg(target_endian = "little")]
#[test]
fn unblock_v6_host_bytes() {
    #[rustfmt::skip]
    let want: [u8; 56] = [
        0x38, 0, 0, 0, 25, 0, 0x05, 0x00, 7, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr
        10, 128, 0, 0, 254, 0x9e, 255, 6, 0, 0, 0, 0, // rtmsg: inet6 /128 main proto nowhere blackhole
        20, 0, 1, 0, 0xfd, 0, 0x5e, 0x5e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // RTA_DST
        8, 0, 15, 0, 254, 0, 0, 0, // RTA_TABLE main
    ];
    assert_eq!(netlink::encode_unblock(&net("fd00:5e5e::1"), 7), want);
}

#[cfg(target_endian = "little")]
#[test]
fn dump_bytes() {
    #[rustfmt::skip]
    let want: [u8; 28] = [
        0x1c, 0, 0, 0, 26, 0, 0x01, 0x03, 3, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr, REQUEST|DUMP
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // rtmsg AF_UNSPEC
    ];
    assert_eq!(netlink::encode_dump(3), want);
}

#[cfg(target_endian = "little")]
#[test]
fn parses_ack_error_and_done() {
    #[rustfmt::skip]
    let buf = [
        36, 0, 0, 0, 2, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, // -ENOENT
        28, 0, 0, 0, 24, 0, 5, 5, 9, 0, 0, 0, 0, 0, 0, 0, // the request's header
        20, 0, 0, 0, 3, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // NLMSG_DONE
    ];
    assert_eq!(
        netlink::parse(&buf).unwrap(),
        [
            Reply::Ack { seq: 9, errno: -2 },
            Reply::Done { seq: 4, errno: 0 }
        ]
    );
    assert!(netlink::parse(&buf[..30]).is_err());
}

/// A route message as a dump would carry it: same layout as a request.
fn as_dumped(mut msg: Vec<u8>) -> Vec<u8> {
    msg[4..6].copy_from_slice(&netlink::RTM_NEWROUTE.to_ne_bytes());
    msg
}

#[test]
fn recognises_only_our_routes() {
    for s in [
        "198.18.0.1",
        "198.18.4.0/24",
        "fd00:5e5e::1",
        "fd00:5e5e:1::/48",
    ] {
        let n = net(s);
        let msg = as_dumped(netlink::encode_block(&n, 5));
        let replies = netlink::parse(&msg).unwrap();
        let [Reply::Route { seq: 5, route }] = replies.as_slice() else {
            panic!("{replies:?}")
        };
        assert_eq!(route.ours(), Some(n));

        let mut other = route.clone();
        other.rt.protocol = 3; // boot: added by hand
        assert_eq!(other.ours(), None);
        let mut other = route.clone();
        other.table = 255; // local
        assert_eq!(other.ours(), None);
        let mut other = route.clone();
        other.rt.kind = 1; // unicast
        assert_eq!(other.ours(), None);
    }
    assert_eq!(PROTO, 0x9e);
}

// ---- as root, in a network namespace of our own ----

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// A network namespace deleted on drop.
struct Netns(String);

impl Netns {
    fn new() -> Result<Netns, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "psroute_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .map_err(|e| format!("cannot run ip: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "ip netns add failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let ns = Netns(name);
        ns.name().ip(&["link", "set", "lo", "up"]);
        Ok(ns)
    }

    fn name(&self) -> NsName {
        NsName(self.0.clone())
    }
}

/// A namespace by name (no ownership): for `ip -n NAME`.
struct NsName(String);

impl NsName {
    /// `ip -n NAME ARGS`, which must succeed; returns stdout.
    fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.0])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Blackhole routes in table main as (dst, protocol), both families, sorted.
    fn blackholes(&self) -> Vec<(String, String)> {
        let mut all = Vec::new();
        for fam in ["-4", "-6"] {
            let text = self.ip(&[fam, "-j", "route", "show", "type", "blackhole"]);
            let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
            for r in v.as_array().unwrap() {
                let dst = r["dst"].as_str().unwrap().to_string();
                let proto = match &r["protocol"] {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Null => "boot".to_string(),
                    other => other.to_string(),
                };
                // ip prints an unnamed protocol as "0x9e" or as the number 158.
                let proto = if proto == "158" { "0x9e".into() } else { proto };
                all.push((dst, proto));
            }
        }
        all.sort();
        all
    }
}

impl Netns {
    /// Runs `f` in a thread that has entered this namespace.
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let fd = File::open(path).unwrap();
            nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ours(list: &[(String, String)]) -> Vec<String> {
    list.iter()
        .filter(|(_, p)| p == "0x9e")
        .map(|(d, _)| d.clone())
        .collect()
}

fn listed(r: &mut Route) -> Vec<String> {
    let mut v: Vec<String> = r
        .list()
        .unwrap()
        .iter()
        .map(|h| h.net.to_string())
        .collect();
    v.sort();
    v
}

fn target(s: &str) -> Target {
    Target {
        net: net(s),
        timeout: None,
        reason: Default::default(),
    }
}

#[test]
fn namespace_block_unblock_flush_replace() {
    if !is_root() {
        eprintln!("skipped: needs root to create a network namespace");
        return;
    }
    let ns = match Netns::new() {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    };
    let name = ns.0.clone();
    // A route added by hand (default protocol): never ours.
    ns.name()
        .ip(&["route", "add", "blackhole", "198.18.9.9/32"]);
    ns.name()
        .ip(&["-6", "route", "add", "blackhole", "fd00:5e5e:9::9/128"]);
    let hand = [
        ("198.18.9.9".to_string(), "boot".to_string()),
        ("fd00:5e5e:9::9".to_string(), "boot".to_string()),
    ];

    ns.run(move || {
        let ns = NsName(name);
        let mut r = Route::new();
        r.init().unwrap();
        assert_eq!(r.name(), "route");
        assert!(listed(&mut r).is_empty());

        // block v4 and v6, hosts and networks; twice is fine
        for s in [
            "198.18.0.1",
            "fd00:5e5e::1",
            "198.18.4.0/24",
            "fd00:5e5e:1::/48",
        ] {
            r.block(&target(s)).unwrap();
            r.block(&target(s)).unwrap();
        }
        let shown = ns.blackholes();
        for h in &hand {
            assert!(shown.contains(h), "{shown:?}");
        }
        assert_eq!(
            ours(&shown),
            [
                "198.18.0.1",
                "198.18.4.0/24",
                "fd00:5e5e:1::/48",
                "fd00:5e5e::1"
            ],
            "{shown:?}"
        );
        assert_eq!(
            listed(&mut r),
            [
                "198.18.0.1",
                "198.18.4.0/24",
                "fd00:5e5e:1::/48",
                "fd00:5e5e::1"
            ]
        );

        // unblock twice, and unblocking what was never there, is fine
        r.unblock(&net("198.18.0.1")).unwrap();
        r.unblock(&net("198.18.0.1")).unwrap();
        r.unblock(&net("fd00:5e5e::1")).unwrap();
        r.unblock(&net("fd00:5e5e::1")).unwrap();
        r.unblock(&net("198.18.7.7")).unwrap();
        // blocking the address of a hand-added route never takes it over
        let e = r.block(&target("198.18.9.9")).unwrap_err();
        assert!(
            e.source.to_string().contains("portsentry did not make"),
            "{e}"
        );
        assert!(ns
            .blackholes()
            .contains(&("198.18.9.9".to_string(), "boot".to_string())));
        // unblocking a hand-added route's address leaves it alone
        r.unblock(&net("198.18.9.9")).unwrap();
        r.unblock(&net("fd00:5e5e:9::9")).unwrap();
        assert_eq!(listed(&mut r), ["198.18.4.0/24", "fd00:5e5e:1::/48"]);

        // flush removes only ours
        r.flush().unwrap();
        assert!(listed(&mut r).is_empty());
        let shown = ns.blackholes();
        assert_eq!(shown, hand, "{shown:?}");

        // replace_all leaves exactly the given ones
        for s in ["198.18.0.2", "198.18.0.3", "fd00:5e5e::2"] {
            r.block(&target(s)).unwrap();
        }
        let want = [
            target("198.18.0.3"),
            target("198.18.0.4"),
            target("fd00:5e5e::4"),
        ];
        r.replace_all(&want).unwrap();
        assert_eq!(listed(&mut r), ["198.18.0.3", "198.18.0.4", "fd00:5e5e::4"]);
        let shown = ns.blackholes();
        assert_eq!(
            ours(&shown),
            ["198.18.0.3", "198.18.0.4", "fd00:5e5e::4"],
            "{shown:?}"
        );
        for h in &hand {
            assert!(shown.contains(h), "{shown:?}");
        }
        r.replace_all(&[]).unwrap();
        assert!(listed(&mut r).is_empty());
        assert_eq!(ns.blackholes(), hand);
    });
}
