//! The blocklist with recording backends and a manual clock: caps, escalation, expiry,
//! never-block, a failing backend beside a working one, reload handing blocks over.

use std::sync::atomic::Ordering;
use std::sync::Mutex;

use portsentry_blocker::{Call, RecordingBlocker};

use super::*;
use crate::facts::FixedFacts;

type Calls = Arc<Mutex<Vec<(&'static str, Call)>>>;

struct Bed {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    clock: ManualClock,
    calls: Calls,
    log: Arc<Mutex<Vec<String>>>,
    b: Blocklist,
}

const T0: u64 = 1_800_000_000;

fn settings() -> Settings {
    Settings {
        base: Some(Duration::from_secs(3600)),
        multiplier: 2.0,
        max: Some(Duration::from_secs(4 * 3600)),
        block_max: 100,
        block_rate: 1000,
        prefix_v6: 128,
    }
}

fn facts() -> FixedFacts {
    FixedFacts {
        own: [
            "198.18.0.2".parse().unwrap(),
            "fd00:5e5e::2".parse().unwrap(),
        ]
        .into(),
        ..FixedFacts::default()
    }
}

fn bed_with(
    settings: Settings,
    names: &[&'static str],
) -> (Bed, Vec<Arc<std::sync::atomic::AtomicBool>>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks");
    let (store, _) = Store::open(&path).unwrap();
    let calls: Calls = Arc::default();
    let mut fails = Vec::new();
    let backends: Vec<Box<dyn Blocker>> = names
        .iter()
        .map(|n| {
            let r = RecordingBlocker::new(n, calls.clone());
            fails.push(r.fail.clone());
            Box::new(r) as Box<dyn Blocker>
        })
        .collect();
    let clock = ManualClock::at(T0);
    let (logger, log) = Logger::memory(false, false);
    let ignore = IgnoreList::new(vec!["198.18.99.0/24".parse().unwrap()]);
    let b = Blocklist::new(
        store,
        backends,
        settings,
        Arc::new(clock.clone()),
        Arc::new(facts()),
        ignore,
        Arc::new(logger),
    );
    (
        Bed {
            _dir: dir,
            path,
            clock,
            calls,
            log,
            b,
        },
        fails,
    )
}

fn bed() -> Bed {
    bed_with(settings(), &["rec"]).0
}

fn det(ip: &str) -> Request {
    Request::detection(
        ip.parse().unwrap(),
        Reason {
            protocol: "TCP".into(),
            port: 143,
            scan: "TCP SYN/Normal scan".into(),
        },
    )
}

fn manual(net: &str, t: Option<u64>) -> Request {
    Request {
        net: net.parse().unwrap(),
        widen: false,
        reason: Reason::default(),
        duration: Lasting::Fixed(t.map(Duration::from_secs)),
    }
}

fn blocks(calls: &Calls) -> Vec<(&'static str, Net, Option<Duration>)> {
    calls
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(n, c)| match c {
            Call::Block(t) => Some((*n, t.net, t.timeout)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_block_is_applied_recorded_and_logged() {
    let mut bed = bed();
    let p = bed.b.block(det("198.18.7.1")).unwrap();
    assert_eq!(p.held_by, ["rec"]);
    assert_eq!(p.timeout, Some(Duration::from_secs(3600)));
    assert!(p.new);
    let r = bed.b.store().get(&p.net).unwrap();
    assert_eq!(r.expires, Some(T0 + 3600));
    assert_eq!(r.backends, ["rec"]);
    assert_eq!(
        bed.log.lock().unwrap().last().unwrap(),
        "attackalert: Host 198.18.7.1 has been blocked via rec for 1h"
    );
    // durable: another process sees it
    let (other, _) = Store::open(&bed.path).unwrap();
    assert!(other.get(&p.net).is_some_and(|r| !r.lifted));
}

#[test]
fn never_block_loopback_own_addresses_ignored_and_nets_that_contain_them() {
    let mut bed = bed();
    for (req, why) in [
        (det("127.0.0.1"), "it is an address of this host"),
        (det("::1"), "it is an address of this host"),
        (det("::ffff:127.0.0.5"), "it is an address of this host"),
        (det("198.18.0.2"), "it is an address of this host"),
        (det("198.18.99.7"), "it is in the ignore file"),
        (
            manual("198.18.0.0/24", None),
            "it contains an address of this host",
        ),
        (
            manual("198.18.0.0/16", None),
            "it contains an address of this host",
        ),
        (
            manual("0.0.0.0/0", None),
            "it contains an address of this host",
        ),
        (
            manual("127.0.0.0/7", None),
            "it contains an address of this host",
        ),
        (manual("198.18.99.128/25", None), "it is in the ignore file"),
    ] {
        let net = bed.b.settings().target_net(&req);
        assert_eq!(
            bed.b.block(req),
            Err(Refusal::Protected { net, why }),
            "{net}"
        );
    }
    assert!(blocks(&bed.calls).is_empty());
    assert_eq!(bed.b.store().active_len(), 0);
    // widening an IPv6 scanner to its /64 would cover this host: narrowed to the
    // scanner alone, and said so
    let (mut wide, _) = bed_with(
        Settings {
            prefix_v6: 64,
            ..settings()
        },
        &["rec"],
    );
    let p = wide.b.block(det("fd00:5e5e::9")).unwrap();
    assert_eq!(p.net.to_string(), "fd00:5e5e::9");
    assert!(wide.log.lock().unwrap().iter().any(|l| l.contains(
        "attackalert: fd00:5e5e::/64 not blocked as a network (it contains an address of this host): blocking fd00:5e5e::9 alone"
    )), "{:?}", wide.log.lock().unwrap());
    let p = wide.b.block(det("fd00:5e5e:1::9")).unwrap();
    assert_eq!(p.net.to_string(), "fd00:5e5e:1::/64");
}

#[test]
fn repeat_offenders_escalate_up_to_the_cap_and_expiry_lifts_on_time() {
    let mut bed = bed();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let p = bed.b.block(det("198.18.7.1")).unwrap();
        seen.push(p.timeout.unwrap().as_secs() / 3600);
        // not yet
        bed.clock.advance(p.timeout.unwrap().as_secs() - 1);
        assert!(bed.b.tick().lifted.is_empty());
        bed.clock.advance(1);
        let ch = bed.b.tick();
        assert_eq!(ch.lifted, ["198.18.7.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(bed.b.store().active_len(), 0);
    }
    assert_eq!(seen, [1, 2, 4, 4]);
    let unblocks = bed
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, c)| matches!(c, Call::Unblock(_)))
        .count();
    assert_eq!(unblocks, 4);
    assert!(bed
        .log
        .lock()
        .unwrap()
        .contains(&"attackalert: Host 198.18.7.1 block expired, unblocked".to_string()));
}

#[test]
fn a_second_detection_refreshes_without_escalating() {
    let mut bed = bed();
    bed.b.block(det("198.18.7.1")).unwrap();
    bed.clock.advance(1800);
    let p = bed.b.block(det("198.18.7.1")).unwrap();
    assert!(!p.new);
    assert_eq!(p.timeout, Some(Duration::from_secs(3600)));
    assert_eq!(
        bed.b.store().get(&p.net).unwrap().expires,
        Some(T0 + 1800 + 3600)
    );
}

#[test]
fn block_max_and_block_rate_cap_new_blocks_and_say_so() {
    let (mut bed, _) = bed_with(
        Settings {
            block_max: 3,
            ..settings()
        },
        &["rec"],
    );
    let res = bed
        .b
        .block_many((1..=5).map(|i| det(&format!("198.18.7.{i}"))).collect());
    let ok = res.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 3);
    assert!(matches!(
        res[4],
        Err(Refusal::Cap {
            what: "BLOCK_MAX active blocks reached",
            ..
        })
    ));
    // a block already active is refreshed, not refused
    assert!(bed.b.block(det("198.18.7.1")).is_ok());
    let capped = bed
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("BLOCK_MAX"))
        .count();
    assert_eq!(capped, 1, "said once per 10 s");

    let (mut bed, _) = bed_with(
        Settings {
            block_rate: 2,
            ..settings()
        },
        &["rec"],
    );
    let res = bed
        .b
        .block_many((1..=3).map(|i| det(&format!("198.18.7.{i}"))).collect());
    assert!(res[0].is_ok() && res[1].is_ok());
    assert!(matches!(
        res[2],
        Err(Refusal::Cap {
            what: "BLOCK_RATE new blocks per second reached",
            ..
        })
    ));
    // the next second has room again
    bed.clock.advance(1);
    assert!(bed.b.block(det("198.18.7.3")).is_ok());
}

#[test]
fn a_group_is_one_batch_and_one_store_append() {
    let mut bed = bed();
    let before = std::fs::read_to_string(&bed.path).unwrap().lines().count();
    let res = bed.b.block_many(vec![
        det("198.18.7.1"),
        det("198.18.7.2"),
        det("198.18.7.1"),
        det("127.0.0.1"),
    ]);
    assert!(res[0].is_ok() && res[1].is_ok() && res[2].is_ok());
    assert_eq!(res[0], res[2], "asked twice, placed once");
    assert!(res[3].is_err());
    assert_eq!(blocks(&bed.calls).len(), 2);
    let after = std::fs::read_to_string(&bed.path).unwrap().lines().count();
    assert_eq!(after - before, 2);
}

#[test]
fn a_failing_backend_beside_a_working_one() {
    let (mut bed, fails) = bed_with(settings(), &["good", "bad"]);
    fails[1].store(true, Ordering::SeqCst);
    let p = bed.b.block(det("198.18.7.1")).unwrap();
    assert_eq!(p.held_by, ["good"]);
    assert_eq!(p.errors, ["bad: block of 198.18.7.1 failed: told to fail"]);
    assert_eq!(bed.b.store().get(&p.net).unwrap().backends, ["good"]);
    assert_eq!(bed.b.failures().get("bad"), Some(&1));
    assert!(bed
        .log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.starts_with("attackalert: ERROR: could not block host 198.18.7.1: bad:")));
    // when no backend holds it, it is an error and nothing is stored
    fails[0].store(true, Ordering::SeqCst);
    let r = bed.b.block(det("198.18.7.2"));
    assert!(matches!(r, Err(Refusal::Failed { .. })), "{r:?}");
    assert!(bed.b.store().get(&"198.18.7.2".parse().unwrap()).is_none());
    // no backend at all
    let (mut none, _) = bed_with(settings(), &[]);
    assert!(matches!(
        none.b.block(det("198.18.7.1")),
        Err(Refusal::NoBackend(_))
    ));
}

#[test]
fn start_adopts_what_a_backend_holds_and_reapplies_the_store() {
    let mut bed = bed();
    bed.b.block(manual("198.18.7.1", Some(600))).unwrap();
    bed.b.block(manual("198.18.7.2", Some(60))).unwrap();
    bed.clock.advance(120);
    bed.calls.lock().unwrap().clear();
    bed.b.start().unwrap();
    // the expired one is lifted, the other re-asserted with its remaining time
    let calls = bed.calls.lock().unwrap().clone();
    assert!(calls.contains(&("rec", Call::Unblock("198.18.7.2".parse().unwrap()))));
    let reasserted: Vec<_> = calls
        .iter()
        .filter_map(|(_, c)| match c {
            Call::Block(t) => Some((t.net.to_string(), t.timeout)),
            _ => None,
        })
        .collect();
    assert_eq!(
        reasserted,
        [("198.18.7.1".to_string(), Some(Duration::from_secs(480)))]
    );
}

#[test]
fn reload_hands_blocks_to_new_backends_and_tears_down_the_old() {
    let mut bed = bed();
    bed.b.block(det("198.18.7.1")).unwrap();
    let calls = bed.calls.clone();
    let new: Vec<Box<dyn Blocker>> = vec![
        Box::new(RecordingBlocker::new("rec", calls.clone())),
        Box::new(RecordingBlocker::new("other", calls.clone())),
    ];
    calls.lock().unwrap().clear();
    let errs = bed.b.reconfigure(
        Settings {
            base: Some(Duration::from_secs(60)),
            ..settings()
        },
        Some(new),
    );
    assert!(errs.is_empty(), "{errs:?}");
    let got = calls.lock().unwrap().clone();
    // both new ones set up and given the block; the old "rec" is not flushed (same name)
    assert!(got.contains(&("other", Call::Init)));
    assert!(got
        .iter()
        .any(|(n, c)| *n == "other"
            && matches!(c, Call::Block(t) if t.net.to_string() == "198.18.7.1")));
    assert!(!got.iter().any(|(_, c)| *c == Call::Flush));
    assert_eq!(bed.b.backend_names(), ["rec", "other"]);
    // the new BLOCK_TIMEOUT applies to the next block
    let p = bed.b.block(det("198.18.7.9")).unwrap();
    assert_eq!(p.timeout, Some(Duration::from_secs(60)));
    // dropping "other" flushes it
    calls.lock().unwrap().clear();
    bed.b.reconfigure(
        settings(),
        Some(vec![Box::new(RecordingBlocker::new("rec", calls.clone()))]),
    );
    assert!(calls.lock().unwrap().contains(&("other", Call::Flush)));
}

#[test]
fn unblock_flush_and_cli_changes_followed_by_tick() {
    let mut bed = bed();
    bed.b.block(det("198.18.7.1")).unwrap();
    bed.b.block(det("198.18.7.2")).unwrap();
    assert_eq!(bed.b.unblock(&"198.18.7.1".parse().unwrap()), Ok(true));
    assert_eq!(bed.b.unblock(&"198.18.7.1".parse().unwrap()), Ok(false));
    // another process (the CLI) lifts one and adds one
    let (mut other, _) = Store::open(&bed.path).unwrap();
    other.lift(&"198.18.7.2".parse().unwrap()).unwrap();
    let mut rec = other.get(&"198.18.7.2".parse().unwrap()).unwrap().clone();
    rec.net = "198.18.7.3".parse().unwrap();
    rec.lifted = false;
    other.put(rec).unwrap();
    let ch = bed.b.tick();
    assert_eq!(ch.lifted, ["198.18.7.2".parse::<IpAddr>().unwrap()]);
    assert_eq!(ch.added, ["198.18.7.3".parse::<IpAddr>().unwrap()]);
    let (n, errs) = bed.b.flush();
    assert_eq!((n, errs.len()), (1, 0));
    assert_eq!(bed.b.store().active_len(), 0);
}

#[test]
fn vanished_objects_are_restored_on_the_next_check() {
    let mut bed = bed();
    bed.b.block(det("198.18.7.1")).unwrap();
    bed.calls.lock().unwrap().clear();
    bed.b.tick();
    // RecordingBlocker never vanishes: nothing re-asserted
    assert!(blocks(&bed.calls).is_empty());
}

#[test]
fn preview_says_what_would_happen_without_a_store() {
    let p = Preview {
        settings: settings(),
        backends: vec!["nft"],
        facts: Arc::new(facts()),
        ignore: IgnoreList::default(),
    };
    let got = p.preview(&det("198.18.7.1")).unwrap();
    assert_eq!(got.held_by, ["nft"]);
    assert_eq!(got.timeout, Some(Duration::from_secs(3600)));
    assert!(p.preview(&det("198.18.0.2")).is_err());
}

#[test]
fn a_failed_backend_is_retried_by_the_next_reconcile() {
    let (mut bed, fails) = bed_with(settings(), &["good", "bad"]);
    fails[1].store(true, Ordering::SeqCst);
    bed.b.block(det("198.18.7.1")).unwrap();
    fails[1].store(false, Ordering::SeqCst);
    bed.calls.lock().unwrap().clear();
    bed.clock.advance(RETRY_SECS - 1);
    bed.b.tick();
    assert!(blocks(&bed.calls).is_empty());
    bed.clock.advance(1);
    bed.b.tick();
    let got = blocks(&bed.calls);
    assert!(
        got.iter()
            .any(|(n, net, _)| *n == "bad" && net.to_string() == "198.18.7.1"),
        "{got:?}"
    );
    assert!(bed
        .log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("holds the stored blocks again")));
}

/// Issue #17 item 2: stored blocks of protected addresses are lifted at start, never
/// re-applied.
#[test]
fn start_never_reapplies_a_protected_block() {
    let mut bed = bed();
    // as an older version or a hand edit could have left them
    let (mut other, _) = Store::open(&bed.path).unwrap();
    for net in ["127.0.0.1", "198.18.0.0/24", "198.18.7.1"] {
        other
            .put(Record {
                net: net.parse().unwrap(),
                backends: vec!["rec"].into(),
                first_seen: T0,
                last_seen: T0,
                hits: 1,
                protocol: Default::default(),
                port: 0,
                scan: "old".into(),
                expires: None,
                offences: 1,
                lifted: false,
            })
            .unwrap();
    }
    bed.b.tick();
    bed.calls.lock().unwrap().clear();
    bed.b.start().unwrap();
    let applied: Vec<String> = blocks(&bed.calls).iter().map(|b| b.1.to_string()).collect();
    assert_eq!(applied, ["198.18.7.1"]);
    assert_eq!(bed.b.store().active_len(), 1);
    assert!(bed.log.lock().unwrap().iter().any(|l| {
        l == "adminalert: stored block of 198.18.0.0/24 lifted: it contains an address of this host"
    }));
}
