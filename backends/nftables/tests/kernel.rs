//! The nft backend against the real kernel, each test in a fresh network namespace.
//!
//! In: root (tests print why they skip otherwise), `ip` and `nft` for set-up and checks.
//! Out: pass/fail; `nft -j` output is parsed to see what the backend really made.
//! Must not: touch the host's own ruleset (the backend runs only in a thread that has
//! entered the test's namespace, and every `nft` check runs through `ip netns exec`), or
//! use addresses outside 198.18.0.0/15 and fd00:5e5e::/32.
#![cfg(target_os = "linux")]
// A panic in a test is a failed test.
#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};
use portsentry_blocker::{Blocker, Held, Net, Target};
use portsentry_nftables::{bench, Hook, NftError, Nftables, Options};
use serde_json::Value;

/// Prints past the test harness's capture, so skips and timings show in a plain run.
fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

fn root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    say(&format!(
        "{test}: skipped: needs root for network namespaces and nf_tables (geteuid() != 0)"
    ));
    false
}

/// A network namespace made for one test, deleted on drop (also when the test fails).
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Netns {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "psnft_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("running ip");
        assert!(st.success(), "ip netns add {name} failed");
        Netns { name }
    }

    /// Runs `f` in a thread that has entered the namespace; panics propagate.
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        let r = std::thread::scope(|s| {
            s.spawn(|| {
                let ns = File::open(&path).expect("opening the namespace");
                setns(&ns, CloneFlags::CLONE_NEWNET).expect("setns into the test namespace");
                f()
            })
            .join()
        });
        r.unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    fn nft_output(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, "nft"]).args(args);
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("running nft");
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes()).expect("writing to nft");
        }
        child.wait_with_output().expect("waiting for nft")
    }

    /// `nft ARGS` in the namespace; panics with nft's message on failure.
    fn nft(&self, args: &[&str]) -> String {
        let out = self.nft_output(args, None);
        assert!(
            out.status.success(),
            "nft {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn nft_script(&self, script: &str) {
        let out = self.nft_output(&["-f", "-"], Some(script));
        assert!(
            out.status.success(),
            "nft -f failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["-j"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.nft(&a)).expect("nft -j prints JSON")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// The objects of one kind (`table`, `set`, `chain`, `rule`) in `nft -j` output.
fn objects<'a>(v: &'a Value, kind: &str) -> Vec<&'a Value> {
    v["nftables"]
        .as_array()
        .map(|a| a.iter().filter_map(|o| o.get(kind)).collect())
        .unwrap_or_default()
}

/// The elements of a set from `nft -j list set`: (address, timeout s, expires s).
fn elements(v: &Value) -> Vec<(String, Option<u64>, Option<u64>)> {
    let sets = objects(v, "set");
    let Some(set) = sets.first() else {
        return Vec::new();
    };
    set["elem"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| match e {
                    Value::String(s) => (s.clone(), None, None),
                    other => {
                        let e = &other["elem"];
                        (
                            e["val"].as_str().unwrap_or_default().to_string(),
                            e["timeout"].as_u64(),
                            e["expires"].as_u64(),
                        )
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

fn host(s: &str) -> Target {
    Target::host(s.parse::<IpAddr>().expect("test address"))
}

fn host_for(s: &str, secs: u64) -> Target {
    Target {
        timeout: Some(Duration::from_secs(secs)),
        ..host(s)
    }
}

fn held_of<'a>(held: &'a [Held], s: &str) -> Option<&'a Held> {
    let net: Net = s.parse().expect("test address");
    held.iter().find(|h| h.net == net)
}

fn open(opts: Options) -> Nftables {
    Nftables::new(opts).expect("opening the nft backend")
}

/// The rules of one chain as `nft -j` shows them.
fn rules_of<'a>(v: &'a Value, chain: &str) -> Vec<&'a Value> {
    objects(v, "rule")
        .into_iter()
        .filter(|r| r["chain"] == chain)
        .collect()
}

fn check_drop_rule(rule: &Value, proto: &str, set: &str) {
    let expr = rule["expr"].as_array().expect("rule expressions");
    assert_eq!(expr.len(), 3, "{rule}");
    assert_eq!(
        expr[0]["match"]["left"]["payload"]["protocol"], proto,
        "{rule}"
    );
    assert_eq!(
        expr[0]["match"]["left"]["payload"]["field"], "saddr",
        "{rule}"
    );
    assert_eq!(expr[0]["match"]["right"], format!("@{set}"), "{rule}");
    assert!(expr[1].get("counter").is_some(), "{rule}");
    assert!(expr[2].get("drop").is_some(), "{rule}");
}

#[test]
fn init_creates_exactly_our_objects() {
    if !root("init_creates_exactly_our_objects") {
        return;
    }
    let ns = Netns::new();
    ns.run(|| {
        let mut nft = open(Options::default());
        assert!(!nft.table_exists().unwrap());
        assert_eq!(nft.name(), "nft");
        nft.init().unwrap();
        assert!(nft.table_exists().unwrap());
        assert!(nft.list().unwrap().is_empty());
    });
    let v = ns.json(&["list", "ruleset"]);
    let tables = objects(&v, "table");
    assert_eq!(tables.len(), 1, "{v}");
    assert_eq!(tables[0]["family"], "inet");
    assert_eq!(tables[0]["name"], "portsentry");

    let sets = objects(&v, "set");
    assert_eq!(sets.len(), 2, "{v}");
    for (set, ty) in [("blocked4", "ipv4_addr"), ("blocked6", "ipv6_addr")] {
        let s = sets.iter().find(|s| s["name"] == set).expect(set);
        assert_eq!(s["type"], ty);
        assert_eq!(s["flags"], serde_json::json!(["timeout"]));
        assert_eq!(s["table"], "portsentry");
    }

    let chains = objects(&v, "chain");
    assert_eq!(chains.len(), 1, "{v}");
    let c = chains[0];
    assert_eq!(c["name"], "input");
    assert_eq!(c["type"], "filter");
    assert_eq!(c["hook"], "input");
    assert_eq!(c["prio"], -10);
    assert_eq!(c["policy"], "accept");

    let rules = rules_of(&v, "input");
    assert_eq!(objects(&v, "rule").len(), 2, "{v}");
    check_drop_rule(rules[0], "ip", "blocked4");
    check_drop_rule(rules[1], "ip6", "blocked6");

    // The text form is what an admin sees.
    let text = ns.nft(&["list", "table", "inet", "portsentry"]);
    assert!(
        text.contains("ip saddr @blocked4 counter packets 0 bytes 0 drop"),
        "{text}"
    );
    assert!(
        text.contains("ip6 saddr @blocked6 counter packets 0 bytes 0 drop"),
        "{text}"
    );
}

#[test]
fn forward_chain_and_own_table_name() {
    if !root("forward_chain_and_own_table_name") {
        return;
    }
    let ns = Netns::new();
    let opts = Options {
        table: "ps_test".into(),
        hooks: vec![Hook::Input, Hook::Forward],
    };
    ns.run(|| open(opts.clone()).init().unwrap());
    let v = ns.json(&["list", "table", "inet", "ps_test"]);
    let chains = objects(&v, "chain");
    assert_eq!(chains.len(), 2, "{v}");
    let fwd = chains
        .iter()
        .find(|c| c["name"] == "forward")
        .expect("forward chain");
    assert_eq!(fwd["hook"], "forward");
    assert_eq!(fwd["prio"], -10);
    let rules = rules_of(&v, "forward");
    assert_eq!(rules.len(), 2, "{v}");
    check_drop_rule(rules[0], "ip", "blocked4");
    check_drop_rule(rules[1], "ip6", "blocked6");
    assert_eq!(rules_of(&v, "input").len(), 2);

    // Configured without forward again: our forward chain goes, input stays.
    ns.run(|| {
        let mut nft = open(Options {
            hooks: vec![Hook::Input],
            ..opts.clone()
        });
        nft.init().unwrap();
        nft.init().unwrap();
    });
    let v = ns.json(&["list", "table", "inet", "ps_test"]);
    let chains = objects(&v, "chain");
    assert_eq!(chains.len(), 1, "{v}");
    assert_eq!(chains[0]["name"], "input");
    assert_eq!(objects(&v, "rule").len(), 2);
    assert_eq!(objects(&ns.json(&["list", "ruleset"]), "table").len(), 1);
}

#[test]
fn init_twice_keeps_elements_and_rules_once() {
    if !root("init_twice_keeps_elements_and_rules_once") {
        return;
    }
    let ns = Netns::new();
    ns.run(|| {
        let mut nft = open(Options::default());
        nft.init().unwrap();
        nft.block(&host_for("198.18.0.1", 3600)).unwrap();
        nft.block(&host("fd00:5e5e::1")).unwrap();
        nft.init().unwrap();
        // A restarted daemon: a new socket, init again.
        let mut again = open(Options::default());
        again.init().unwrap();
        let held = again.list().unwrap();
        assert_eq!(held.len(), 2, "{held:?}");
        assert!(held_of(&held, "198.18.0.1").unwrap().remaining.is_some());
        assert!(held_of(&held, "fd00:5e5e::1").unwrap().remaining.is_none());
    });
    let v = ns.json(&["list", "table", "inet", "portsentry"]);
    assert_eq!(objects(&v, "rule").len(), 2, "{v}");
    assert_eq!(objects(&v, "chain").len(), 1, "{v}");
    assert_eq!(
        elements(&ns.json(&["list", "set", "inet", "portsentry", "blocked4"])).len(),
        1
    );
    assert_eq!(
        elements(&ns.json(&["list", "set", "inet", "portsentry", "blocked6"])).len(),
        1
    );
}

#[test]
fn block_v4_and_v6_with_timeouts() {
    if !root("block_v4_and_v6_with_timeouts") {
        return;
    }
    let ns = Netns::new();
    ns.run(|| {
        let mut nft = open(Options::default());
        nft.init().unwrap();
        nft.block(&host_for("198.18.0.1", 3600)).unwrap();
        nft.block(&host("198.18.0.2")).unwrap();
        nft.block(&host_for("fd00:5e5e::1", 1800)).unwrap();
        // Blocking twice is success.
        nft.block(&host_for("198.18.0.1", 3600)).unwrap();
        // So is a call that names one host twice.
        nft.block_many(&[host_for("198.18.0.3", 60), host_for("198.18.0.3", 120)])
            .unwrap();
        let held = nft.list().unwrap();
        assert_eq!(held.len(), 4, "{held:?}");
        let r = held_of(&held, "198.18.0.1").unwrap().remaining.unwrap();
        assert!(
            r > Duration::from_secs(3590) && r <= Duration::from_secs(3600),
            "{r:?}"
        );
        assert_eq!(held_of(&held, "198.18.0.2").unwrap().remaining, None);
        let r = held_of(&held, "198.18.0.3").unwrap().remaining.unwrap();
        assert!(
            r > Duration::from_secs(110) && r <= Duration::from_secs(120),
            "{r:?}"
        );
        let r = held_of(&held, "fd00:5e5e::1").unwrap().remaining.unwrap();
        assert!(
            r > Duration::from_secs(1790) && r <= Duration::from_secs(1800),
            "{r:?}"
        );
    });
    let e4 = elements(&ns.json(&["list", "set", "inet", "portsentry", "blocked4"]));
    let one = e4
        .iter()
        .find(|e| e.0 == "198.18.0.1")
        .expect("198.18.0.1 in blocked4");
    assert_eq!(one.1, Some(3600));
    assert!(one.2.is_some_and(|x| x > 3590), "{one:?}");
    let two = e4
        .iter()
        .find(|e| e.0 == "198.18.0.2")
        .expect("198.18.0.2 in blocked4");
    assert_eq!((two.1, two.2), (None, None));
    let e6 = elements(&ns.json(&["list", "set", "inet", "portsentry", "blocked6"]));
    assert_eq!(e6.len(), 1);
    assert_eq!(e6[0].0, "fd00:5e5e::1");
    assert_eq!(e6[0].1, Some(1800));
}

#[test]
fn reblock_refreshes_the_kernel_timeout() {
    if !root("reblock_refreshes_the_kernel_timeout") {
        return;
    }
    let ns = Netns::new();
    let remaining = |nft: &mut Nftables, s: &str| {
        held_of(&nft.list().unwrap(), s)
            .and_then(|h| h.remaining)
            .expect("an element with a timeout")
    };
    ns.run(|| {
        let mut nft = open(Options::default());
        nft.init().unwrap();
        nft.block_many(&[host_for("198.18.0.1", 3600), host_for("fd00:5e5e::1", 3600)])
            .unwrap();
        // For comparison: the plain re-add `nft` does.
        ns.nft(&["add", "element", "inet", "portsentry", "blocked4", "{ 198.18.0.200 timeout 1h }"]);
        std::thread::sleep(Duration::from_millis(2200));
        let before = remaining(&mut nft, "198.18.0.1");
        assert!(before < Duration::from_secs(3598), "{before:?}");

        // Same timeout again: refreshed.
        nft.block_many(&[host_for("198.18.0.1", 3600), host_for("fd00:5e5e::1", 3600)])
            .unwrap();
        for a in ["198.18.0.1", "fd00:5e5e::1"] {
            let after = remaining(&mut nft, a);
            assert!(after > Duration::from_secs(3599), "{a}: {after:?} after re-block");
        }
        ns.nft(&["add", "element", "inet", "portsentry", "blocked4", "{ 198.18.0.200 timeout 1h }"]);
        let plain = remaining(&mut nft, "198.18.0.200");
        say(&format!(
            "reblock_refreshes_the_kernel_timeout: on this kernel a plain re-add (nft add element, same timeout) {} the expiry ({plain:?} left); our add+delete+add does",
            if plain > Duration::from_secs(3599) { "refreshes" } else { "does NOT refresh" }
        ));

        // Longer, shorter, permanent.
        nft.block(&host_for("198.18.0.1", 7200)).unwrap();
        assert!(remaining(&mut nft, "198.18.0.1") > Duration::from_secs(7190));
        nft.block(&host_for("198.18.0.1", 60)).unwrap();
        assert!(remaining(&mut nft, "198.18.0.1") <= Duration::from_secs(60));
        nft.block(&host("fd00:5e5e::1")).unwrap();
        let held = nft.list().unwrap();
        assert_eq!(held_of(&held, "fd00:5e5e::1").unwrap().remaining, None);
        assert_eq!(held.len(), 3, "{held:?}");
    });
    let e4 = elements(&ns.json(&["list", "set", "inet", "portsentry", "blocked4"]));
    let one = e4.iter().find(|e| e.0 == "198.18.0.1").expect("198.18.0.1");
    assert_eq!(one.1, Some(60));
    let e6 = elements(&ns.json(&["list", "set", "inet", "portsentry", "blocked6"]));
    assert_eq!(e6, vec![("fd00:5e5e::1".to_string(), None, None)]);
}

#[test]
fn unblock_twice_and_of_what_is_not_there() {
    if !root("unblock_twice_and_of_what_is_not_there") {
        return;
    }
    let ns = Netns::new();
    ns.run(|| {
        let mut nft = open(Options::default());
        // No table yet: nothing to lift, success.
        nft.unblock(&"198.18.0.1".parse().unwrap()).unwrap();
        nft.init().unwrap();
        nft.block_many(&[
            host_for("198.18.0.1", 600),
            host("fd00:5e5e::1"),
            host("198.18.0.2"),
        ])
        .unwrap();
        for _ in 0..2 {
            nft.unblock(&"198.18.0.1".parse().unwrap()).unwrap();
            nft.unblock(&"fd00:5e5e::1".parse().unwrap()).unwrap();
        }
        nft.unblock(&"fd00:5e5e::2".parse().unwrap()).unwrap();
        nft.unblock(&"198.18.0.0/24".parse().unwrap()).unwrap();
        let held = nft.list().unwrap();
        assert_eq!(held.len(), 1, "{held:?}");
        assert!(held_of(&held, "198.18.0.2").is_some());
    });
    let e4 = elements(&ns.json(&["list", "set", "inet", "portsentry", "blocked4"]));
    assert_eq!(e4, vec![("198.18.0.2".to_string(), None, None)]);
}

#[test]
fn flush_removes_our_table_and_is_idempotent() {
    if !root("flush_removes_our_table_and_is_idempotent") {
        return;
    }
    let ns = Netns::new();
    ns.run(|| {
        let mut nft = open(Options::default());
        nft.flush().unwrap();
        nft.init().unwrap();
        nft.block(&host_for("198.18.0.1", 600)).unwrap();
        nft.flush().unwrap();
        assert!(!nft.table_exists().unwrap());
        nft.flush().unwrap();
        assert!(nft.list().unwrap().is_empty());
    });
    assert_eq!(objects(&ns.json(&["list", "ruleset"]), "table").len(), 0);
}

#[test]
fn recovers_after_flush_ruleset() {
    if !root("recovers_after_flush_ruleset") {
        return;
    }
    let ns = Netns::new();
    ns.run(|| {
        let mut nft = open(Options::default());
        nft.init().unwrap();
        let targets = [
            host_for("198.18.0.1", 600),
            host_for("fd00:5e5e::1", 600),
            host("198.18.0.2"),
        ];
        nft.block_many(&targets).unwrap();
        ns.nft(&["flush", "ruleset"]);
        assert!(!nft.table_exists().unwrap());
        assert!(nft.list().unwrap().is_empty());

        // Blocking now fails, and says the objects are missing.
        let e = nft.block(&host("198.18.0.9")).unwrap_err();
        assert_eq!(e.to_string(), "nft: block of 198.18.0.9 failed");
        let cause = e
            .source
            .downcast_ref::<NftError>()
            .expect("an NftError inside");
        assert!(cause.objects_missing(), "{cause:?}");
        assert_eq!(
            cause.to_string(),
            "the kernel refused `add element inet portsentry blocked4 { 198.18.0.9 }`"
        );

        // Reconcile: init + block_many restore everything.
        nft.init().unwrap();
        nft.block_many(&targets).unwrap();
        assert!(nft.table_exists().unwrap());
        assert_eq!(nft.list().unwrap().len(), 3);
    });
    let v = ns.json(&["list", "table", "inet", "portsentry"]);
    assert_eq!(objects(&v, "rule").len(), 2, "{v}");
    assert_eq!(
        elements(&ns.json(&["list", "set", "inet", "portsentry", "blocked4"])).len(),
        2
    );
}

fn net_for(s: &str, secs: u64) -> Target {
    Target {
        net: s.parse().expect("test network"),
        timeout: Some(Duration::from_secs(secs)),
        reason: Default::default(),
    }
}

#[test]
fn networks_get_a_set_per_prefix_length_and_overlap_freely() {
    if !root("networks_get_a_set_per_prefix_length_and_overlap_freely") {
        return;
    }
    let ns = Netns::new();
    let targets = [
        net_for("198.18.4.0/24", 60),
        // a wider network around the first one: held beside it, its own timeout
        net_for("198.18.0.0/16", 120),
        host_for("198.18.4.1", 30),
        net_for("fd00:5e5e:1::/64", 90),
    ];
    ns.run(|| {
        let mut nft = open(Options::default());
        nft.init().unwrap();
        nft.block_many(&targets).unwrap();
        let held = nft.list().unwrap();
        assert_eq!(held.len(), 4, "{held:?}");
        for (t, secs) in [
            ("198.18.4.0/24", 60),
            ("198.18.0.0/16", 120),
            ("198.18.4.1", 30),
            ("fd00:5e5e:1::/64", 90),
        ] {
            let h = held_of(&held, t).unwrap_or_else(|| panic!("{t} held: {held:?}"));
            let left = h.remaining.unwrap().as_secs();
            assert!(left <= secs && left + 5 >= secs, "{t}: {left} s");
        }
        assert!(nft.check().unwrap().is_empty());
        // another process (the CLI) with its own socket finds the sets and adds no rule
        let mut other = open(Options::default());
        other.block(&net_for("198.18.5.0/24", 60)).unwrap();
        other.unblock(&"198.18.0.0/16".parse().unwrap()).unwrap();
        // twice is fine, and so is a prefix length never used
        other.unblock(&"198.18.0.0/16".parse().unwrap()).unwrap();
        other.unblock(&"198.18.0.0/20".parse().unwrap()).unwrap();
        let held = nft.list().unwrap();
        assert!(held_of(&held, "198.18.5.0/24").is_some());
        assert!(held_of(&held, "198.18.0.0/16").is_none());
        assert_eq!(held.len(), 4, "{held:?}");
    });
    let text = ns.nft(&["list", "chain", "inet", "portsentry", "input"]);
    assert!(
        text.contains("ip saddr & 255.255.255.0 == @blocked4_24 counter"),
        "{text}"
    );
    assert!(
        text.contains("ip6 saddr & ffff:ffff:ffff:ffff:: == @blocked6_64 counter"),
        "{text}"
    );
    let v = ns.json(&["list", "table", "inet", "portsentry"]);
    // blocked4, blocked6, blocked4_24, blocked4_16, blocked6_64: one rule each
    assert_eq!(objects(&v, "rule").len(), 5, "{v}");
    let e24: Vec<String> =
        elements(&ns.json(&["list", "set", "inet", "portsentry", "blocked4_24"]))
            .into_iter()
            .map(|e| e.0)
            .collect();
    assert_eq!(e24.len(), 2, "{e24:?}");
    assert!(e24.contains(&"198.18.4.0".to_string()), "{e24:?}");

    // replace: every set holds exactly the targets; init keeps one rule per set
    ns.run(|| {
        let mut nft = open(Options::default());
        nft.replace_all(&[net_for("198.18.9.0/24", 60), host_for("198.18.0.1", 60)])
            .unwrap();
        nft.init().unwrap();
        let mut held: Vec<String> = nft
            .list()
            .unwrap()
            .iter()
            .map(|h| h.net.to_string())
            .collect();
        held.sort();
        assert_eq!(held, ["198.18.0.1", "198.18.9.0/24"]);
        assert!(nft.check().unwrap().is_empty());
    });
    let v = ns.json(&["list", "table", "inet", "portsentry"]);
    assert_eq!(objects(&v, "rule").len(), 5, "{v}");
}

#[test]
fn block_many_10k_goes_out_in_one_sendmsg() {
    if !root("block_many_10k_goes_out_in_one_sendmsg") {
        return;
    }
    let ns = Netns::new();
    let mut targets = bench::targets(5_000, Some(Duration::from_secs(3600)));
    targets.extend((0..5_000u128).map(|i| Target {
        timeout: Some(Duration::from_secs(3600)),
        ..Target::host(IpAddr::V6((bench::V6_BASE + 0x1_0000_0000 + i).into()))
    }));
    ns.run(|| {
        let mut nft = open(Options::default());
        nft.init().unwrap();
        nft.block_many(&targets).unwrap();
        let stats = nft.last_batch();
        assert_eq!(stats.sendmsg_calls, 1, "{stats:?}");
        assert!(
            stats.bytes > 128 * 1024,
            "bigger than one libnftnl page: {stats:?}"
        );
        assert!(stats.pages > 1, "{stats:?}");
        assert!(stats.messages > 6, "{stats:?}");
        let held = nft.list().unwrap();
        assert_eq!(held.len(), 10_000);
        assert!(held.iter().all(|h| h.remaining.is_some()));
        // And again: every element exists already, the batch still succeeds.
        nft.block_many(&targets).unwrap();
        assert_eq!(nft.list().unwrap().len(), 10_000);
    });
    assert_eq!(
        elements(&ns.json(&["list", "set", "inet", "portsentry", "blocked4"])).len(),
        5_000
    );
    assert_eq!(
        elements(&ns.json(&["list", "set", "inet", "portsentry", "blocked6"])).len(),
        5_000
    );
}

#[test]
fn other_tables_stay_byte_for_byte_unchanged() {
    if !root("other_tables_stay_byte_for_byte_unchanged") {
        return;
    }
    let ns = Netns::new();
    ns.nft_script(concat!(
        "table inet user {\n",
        "  chain c { type filter hook input priority 0; }\n",
        "}\n",
        "table inet user2 {\n",
        "  set s { type ipv4_addr; flags timeout; elements = { 198.18.9.9 }; }\n",
        "  chain c2 {\n",
        "    type filter hook input priority -10; policy accept;\n",
        "    ip saddr @s counter accept\n",
        "  }\n",
        "}\n",
    ));
    let snapshot = || {
        (
            ns.nft(&["-a", "list", "table", "inet", "user"]),
            ns.nft(&["-a", "list", "table", "inet", "user2"]),
        )
    };
    let before = snapshot();
    ns.run(|| {
        let mut nft = open(Options {
            hooks: vec![Hook::Input, Hook::Forward],
            ..Options::default()
        });
        nft.init().unwrap();
        assert_eq!(snapshot(), before, "after init");
        nft.block_many(&[host_for("198.18.0.1", 600), host("fd00:5e5e::1")])
            .unwrap();
        nft.block(&host_for("198.18.9.9", 600)).unwrap();
        assert_eq!(snapshot(), before, "after blocks");
        nft.unblock(&"198.18.9.9".parse().unwrap()).unwrap();
        nft.unblock(&"198.18.0.1".parse().unwrap()).unwrap();
        assert_eq!(snapshot(), before, "after unblock");
        nft.init().unwrap();
        assert_eq!(nft.list().unwrap().len(), 1);
        nft.flush().unwrap();
        assert_eq!(snapshot(), before, "after flush");
    });
    let tables: Vec<String> = objects(&ns.json(&["list", "ruleset"]), "table")
        .iter()
        .map(|t| t["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(tables, vec!["user".to_string(), "user2".to_string()]);
}

#[test]
fn timing_init_and_block_many_100k() {
    if !root("timing_init_and_block_many_100k") {
        return;
    }
    let ns = Netns::new();
    ns.run(|| {
        let t = bench::time_init_and_block_many(Options::default(), 100_000).unwrap();
        assert_eq!(t.batch.sendmsg_calls, 1);
        let mut nft = open(Options::default());
        let t0 = Instant::now();
        let held = nft.list().unwrap();
        let list = t0.elapsed();
        assert_eq!(held.len(), 100_000);
        let targets = bench::targets(100_000, Some(Duration::from_secs(1800)));
        let t1 = Instant::now();
        nft.block_many(&targets).unwrap();
        let reblock = t1.elapsed();
        say(&format!(
            "timing_init_and_block_many_100k: init {:?}, block_many(100 000) {:?} \
             ({} bytes, {} messages, {} pages, {} sendmsg, {:?} of it in sendmsg + answers), \
             list {:?}, re-block all {:?}",
            t.init,
            t.block_many,
            t.batch.bytes,
            t.batch.messages,
            t.batch.pages,
            t.batch.sendmsg_calls,
            t.batch.kernel_time,
            list,
            reblock
        ));
    });
}

/// The elements of both our sets as `nft -j list set` shows them, sorted:
/// (address, timeout s).
fn both_sets(ns: &Netns, table: &str) -> Vec<(String, Option<u64>)> {
    let mut all: Vec<(String, Option<u64>)> = ["blocked4", "blocked6"]
        .iter()
        .flat_map(|set| elements(&ns.json(&["list", "set", "inet", table, set])))
        .map(|(addr, timeout, _)| (addr, timeout))
        .collect();
    all.sort();
    all
}

/// What `targets` should look like in `nft -j` output, sorted.
fn expected(targets: &[Target]) -> Vec<(String, Option<u64>)> {
    let mut e: Vec<(String, Option<u64>)> = targets
        .iter()
        .map(|t| (t.net.to_string(), t.timeout.map(|d| d.as_secs())))
        .collect();
    e.sort();
    e
}

/// `n` IPv4 and `n` IPv6 hosts starting at `first`, with timeouts of 10 to 16 minutes
/// by address (every 13th permanent), so a mix-up of timeouts shows.
fn mixed(first: u32, n: u32) -> Vec<Target> {
    let timeout = |i: u32| (i % 13 != 0).then(|| Duration::from_secs(600 + 60 * u64::from(i % 7)));
    let v4 = (first..first + n).map(|i| Target {
        timeout: timeout(i),
        ..Target::host(IpAddr::V4((bench::V4_BASE + i).into()))
    });
    let v6 = (first..first + n).map(|i| Target {
        timeout: timeout(i + 3),
        ..Target::host(IpAddr::V6(
            (bench::V6_BASE + 0x1_0000_0000 + u128::from(i)).into(),
        ))
    });
    v4.chain(v6).collect()
}

#[test]
fn replace_all_holds_exactly_the_targets_with_their_timeouts() {
    if !root("replace_all_holds_exactly_the_targets_with_their_timeouts") {
        return;
    }
    let ns = Netns::new();
    ns.nft_script(concat!(
        "table inet user {\n",
        "  set s { type ipv4_addr; flags timeout; elements = { 198.18.0.1 timeout 1h, 198.18.9.9 }; }\n",
        "  chain c { type filter hook input priority 0; ip saddr @s counter accept; }\n",
        "}\n",
    ));
    // The user's table as JSON, without the expiry that counts down by itself.
    let user = || {
        let mut v = ns.json(&["-a", "list", "table", "inet", "user"]);
        for o in v["nftables"].as_array_mut().unwrap() {
            for e in o["set"]["elem"].as_array_mut().into_iter().flatten() {
                if let Some(e) = e.get_mut("elem").and_then(Value::as_object_mut) {
                    assert!(e.remove("expires").is_some(), "{e:?}");
                }
            }
        }
        v
    };
    let before = user();
    let first = mixed(0, 5_000);
    // 5 000 others: per family 1 250 of the first (with timeouts a minute longer) and
    // 1 250 new.
    let second: Vec<Target> = mixed(3_750, 2_500)
        .into_iter()
        .map(|t| Target {
            timeout: t.timeout.map(|d| d + Duration::from_secs(60)),
            ..t
        })
        .collect();
    ns.run(|| {
        let mut nft = open(Options::default());
        nft.init().unwrap();
        nft.block_many(&[host_for("198.18.200.1", 60), host("fd00:5e5e::99")])
            .unwrap();
        nft.replace_all(&first).unwrap();
        let stats = nft.last_batch();
        assert_eq!(stats.sendmsg_calls, 1, "{stats:?}");
        assert!(stats.pages > 1, "{stats:?}");
        assert_eq!(nft.list().unwrap().len(), 10_000);
    });
    assert_eq!(both_sets(&ns, "portsentry"), expected(&first));
    assert_eq!(user(), before, "after the first replace_all");

    ns.run(|| {
        let mut nft = open(Options::default());
        nft.replace_all(&second).unwrap();
        let held = nft.list().unwrap();
        assert_eq!(held.len(), 5_000);
        // The kernel counts down from the requested timeout, not from an older one.
        let kept = held_of(&held, "198.18.15.160").unwrap(); // 198.18.0.0 + 4 000
        assert!(
            kept.remaining.unwrap() > Duration::from_secs(600 + 60 * (4_000 % 7) + 50),
            "{kept:?}"
        );
        assert!(held_of(&held, "198.18.0.1").is_none());
    });
    assert_eq!(both_sets(&ns, "portsentry"), expected(&second));
    assert_eq!(user(), before, "after the second replace_all");
    // The rules of init are still there, once.
    let v = ns.json(&["list", "table", "inet", "portsentry"]);
    assert_eq!(objects(&v, "rule").len(), 2, "{v}");

    // Replacing with nothing empties both sets and keeps table, sets and rules.
    ns.run(|| open(Options::default()).replace_all(&[]).unwrap());
    assert!(both_sets(&ns, "portsentry").is_empty());
    let v = ns.json(&["list", "table", "inet", "portsentry"]);
    assert_eq!(objects(&v, "set").len(), 2, "{v}");
    assert_eq!(objects(&v, "rule").len(), 2, "{v}");
    assert_eq!(user(), before, "after replace_all(nothing)");
}

#[test]
fn replace_all_works_without_init_and_after_flush_ruleset() {
    if !root("replace_all_works_without_init_and_after_flush_ruleset") {
        return;
    }
    let ns = Netns::new();
    let targets = [
        host_for("198.18.0.1", 600),
        host_for("fd00:5e5e::1", 1200),
        host("198.18.0.2"),
    ];
    ns.run(|| {
        let mut nft = open(Options::default());
        // No table yet: the batch creates table and sets itself.
        nft.replace_all(&targets).unwrap();
        assert_eq!(nft.list().unwrap().len(), 3);
        // init afterwards adds the rules and keeps the elements.
        nft.init().unwrap();
        assert_eq!(nft.list().unwrap().len(), 3);
        // A firewall reload: everything gone, then init + replace_all restore it.
        ns.nft(&["flush", "ruleset"]);
        assert!(nft.vanished().unwrap());
        nft.init().unwrap();
        nft.replace_all(&targets).unwrap();
        assert!(!nft.vanished().unwrap());
    });
    assert_eq!(both_sets(&ns, "portsentry"), expected(&targets));
    let v = ns.json(&["list", "table", "inet", "portsentry"]);
    assert_eq!(objects(&v, "rule").len(), 2, "{v}");
}
