//! Table tests of both rule orders (no I/O, fixed host facts).

use super::*;
use crate::facts::FixedFacts;
use portsentry_blocker::Net;

use Action::*;
use Flag::{False as F, True as T, Unset as U};

const SRC: &str = "198.18.7.1";
const DST: &str = "198.18.0.2";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ev(proto: Proto, kind: ScanKind) -> Event {
    Event {
        ts: SystemTime::UNIX_EPOCH,
        proto,
        src: ip(SRC),
        dst: ip(DST),
        port: 143,
        kind,
        ip_opts: IpOpts::NotSet,
        connect: kind == ScanKind::Connect,
    }
}

fn syn() -> Event {
    ev(Proto::Tcp, ScanKind::Syn)
}

fn rules(policy: Policy) -> Rules {
    Rules {
        policy,
        service_check: true,
        block_tcp: BlockMode::Block,
        block_udp: BlockMode::Block,
        hosts_deny: true,
        route: true,
        backends: true,
        run_cmd: true,
        run_cmd_first: false,
        banner: false,
        resolve: false,
        scan_trigger: 0,
        block_max: 100_000,
        block_rate: 1000,
    }
}

fn v2() -> Rules {
    rules(Policy::V2 { local_check: true })
}

fn legacy(mode: LegacyMode) -> Rules {
    rules(Policy::Legacy(mode))
}

fn engine(r: Rules) -> Engine {
    Engine::new(r, Ignore::List(IgnoreList::default()))
}

fn observe(e: &mut Engine, ev: &Event) -> Decision {
    e.observe(SystemTime::UNIX_EPOCH, ev, &FixedFacts::default())
}

fn scan(ignored: Flag, triggered: Flag, noblock: Flag, blocked: Flag) -> Step {
    Step::scan(ignored, triggered, noblock, blocked)
}

const RESULT: Step = Step::ScanLine {
    ignored: F,
    triggered: T,
    noblock: F,
    blocked: None,
};

#[test]
fn v2_acts_in_the_configured_order_then_the_scan_line() {
    let mut e = engine(v2());
    let d = observe(&mut e, &syn());
    assert_eq!(d.outcome, Outcome::Respond);
    assert_eq!(
        d.steps,
        [
            Step::Act(HostsDeny),
            Step::Act(Route),
            Step::Act(Block),
            Step::Act(RunCmd),
            Step::Settle(Settle::AnyOf),
            RESULT
        ]
    );
    // KILL_RUN_CMD_FIRST
    let mut r = v2();
    r.run_cmd_first = true;
    let d = observe(&mut engine(r), &syn());
    assert_eq!(d.steps[0], Step::Act(RunCmd));
    assert_eq!(d.steps[1], Step::Act(HostsDeny));
    // only what is configured
    let mut r = v2();
    (r.hosts_deny, r.route, r.run_cmd) = (false, false, false);
    let d = observe(&mut engine(r), &syn());
    assert_eq!(
        d.steps,
        [Step::Act(Block), Step::Settle(Settle::AnyOf), RESULT]
    );
}

#[test]
fn v2_already_blocked_until_the_executor_says_it_failed() {
    let mut e = engine(v2());
    assert!(observe(&mut e, &syn()).acts());
    let d = observe(&mut e, &ev(Proto::Udp, ScanKind::Udp));
    assert_eq!(d.outcome, Outcome::AlreadyBlocked);
    assert_eq!(d.steps, [Step::Say(Say::AlreadyBlocked), scan(F, T, F, T)]);
    e.note_unblocked(ip(SRC));
    assert_eq!(observe(&mut e, &syn()).outcome, Outcome::Respond);
}

#[test]
fn v2_block_modes() {
    let mut r = v2();
    (r.block_tcp, r.block_udp) = (BlockMode::LogOnly, BlockMode::RunCmd);
    let mut e = engine(r);
    let d = observe(&mut e, &syn());
    assert_eq!(d.outcome, Outcome::LogOnly);
    assert_eq!(d.steps, [scan(F, T, T, F)]);
    // BLOCK_x = 0 never fills the block cache
    assert_eq!(observe(&mut e, &syn()).outcome, Outcome::LogOnly);
    let d = observe(&mut e, &ev(Proto::Udp, ScanKind::Udp));
    assert_eq!(
        d.steps,
        [Step::Act(RunCmd), Step::Settle(Settle::AnyOf), RESULT]
    );
}

#[test]
fn v2_ignore_trigger_local_and_service() {
    let mut e = Engine::new(
        v2(),
        Ignore::List(IgnoreList::new(vec!["198.18.7.0/24"
            .parse::<Net>()
            .unwrap()])),
    );
    let d = observe(&mut e, &syn());
    assert_eq!(d.outcome, Outcome::Ignored);
    assert_eq!(d.steps, [Step::Say(Say::IgnoredHost), scan(T, U, U, U)]);

    let mut r = v2();
    r.scan_trigger = 3;
    let mut e = engine(r);
    for _ in 0..2 {
        let d = observe(&mut e, &syn());
        assert_eq!(d.outcome, Outcome::BelowTrigger);
        assert_eq!(d.steps, [scan(F, F, U, U)]);
    }
    // the third event from the source triggers, on any port and protocol
    assert_eq!(
        observe(&mut e, &ev(Proto::Udp, ScanKind::Udp)).outcome,
        Outcome::Respond
    );

    let mut e = engine(v2());
    let mut local = syn();
    local.dst = local.src;
    let d = observe(&mut e, &local);
    assert_eq!(d.outcome, Outcome::Local);
    assert_eq!(d.steps, [Step::Say(Say::SameAddress), scan(T, T, T, F)]);
    // -L: the local check is off
    let mut e = engine(rules(Policy::V2 { local_check: false }));
    assert_eq!(observe(&mut e, &local).outcome, Outcome::Respond);

    // a bound service (stealth only), and -S
    let facts = FixedFacts {
        bound: [(Proto::Tcp, ip(DST), 143)].into(),
        ..FixedFacts::default()
    };
    let mut e = engine(v2());
    let d = e.observe(SystemTime::UNIX_EPOCH, &syn(), &facts);
    assert_eq!(d.outcome, Outcome::ServiceRunning);
    assert_eq!(d.steps, [Step::Say(Say::ServiceRunning)]);
    let mut connect = ev(Proto::Tcp, ScanKind::Connect);
    connect.dst = ip(DST);
    assert_eq!(
        e.observe(SystemTime::UNIX_EPOCH, &connect, &facts).outcome,
        Outcome::Respond
    );
    let mut r = v2();
    r.service_check = false;
    let mut e = engine(r);
    assert_eq!(
        e.observe(SystemTime::UNIX_EPOCH, &syn(), &facts).outcome,
        Outcome::Respond
    );
}

#[test]
fn v2_banner_after_the_local_check_and_before_block_0() {
    let mut r = v2();
    r.banner = true;
    r.block_tcp = BlockMode::LogOnly;
    let mut e = engine(r);
    let d = observe(&mut e, &ev(Proto::Tcp, ScanKind::Connect));
    assert_eq!(d.steps, [Step::Banner, scan(F, T, T, F)]);
    // stealth events never get a banner
    assert_eq!(observe(&mut e, &syn()).steps, [scan(F, T, T, F)]);
}

#[test]
fn legacy_order_and_lines() {
    let mut e = engine(legacy(LegacyMode::Stcp));
    let mut first = syn();
    first.ip_opts = IpOpts::Set;
    let d = observe(&mut e, &first);
    assert_eq!(
        d.steps,
        [
            Step::Say(Say::EventLine),
            Step::Say(Say::IpOptions),
            Step::Act(HostsDeny),
            Step::Act(Route),
            Step::Act(Block),
            Step::Act(RunCmd),
            Step::Settle(Settle::AllOf),
        ]
    );
    let d = observe(&mut e, &syn());
    assert_eq!(d.outcome, Outcome::AlreadyBlocked);
    assert_eq!(
        d.steps,
        [
            Step::Say(Say::EventLine),
            Step::Say(Say::AlreadyBlockedLegacy)
        ]
    );
}

#[test]
fn legacy_block_0_records_and_block_2_runs_the_command_only() {
    let mut r = legacy(LegacyMode::Atcp);
    r.block_tcp = BlockMode::LogOnly;
    r.block_udp = BlockMode::RunCmd;
    r.run_cmd_first = true;
    let mut e = engine(r);
    let d = observe(&mut e, &syn());
    assert_eq!(d.outcome, Outcome::LogOnly);
    assert_eq!(
        d.steps,
        [
            Step::Say(Say::EventLine),
            Step::Say(Say::IgnoringResponse),
            Step::Settle(Settle::Record)
        ]
    );
    let mut u = ev(Proto::Udp, ScanKind::Udp);
    u.src = ip("198.18.7.9");
    let d = observe(&mut e, &u);
    assert_eq!(
        d.steps,
        [
            Step::Say(Say::EventLine),
            Step::Act(RunCmd),
            Step::Settle(Settle::AllOf)
        ]
    );
}

#[test]
fn legacy_drops_ipv6_own_ignored_below_trigger_and_bound_silently() {
    let facts = FixedFacts {
        bound: [(Proto::Tcp, ip(DST), 143)].into(),
        own: [ip("198.18.9.9")].into(),
    };
    let mut r = legacy(LegacyMode::Stcp);
    r.scan_trigger = 2;
    let mut e = Engine::new(
        r,
        Ignore::List(IgnoreList::new(vec!["198.18.8.0/24"
            .parse::<Net>()
            .unwrap()])),
    );
    let at = SystemTime::UNIX_EPOCH;
    let mut free = syn();
    free.port = 144;
    for (src, port, want) in [
        ("fd00:5e5e::1", 144, Outcome::NotIpv4),
        (SRC, 143, Outcome::ServiceRunning),
        ("198.18.9.9", 144, Outcome::OwnAddress),
        ("127.0.0.1", 144, Outcome::OwnAddress),
        ("198.18.8.1", 144, Outcome::Ignored),
        (SRC, 144, Outcome::BelowTrigger),
        (SRC, 144, Outcome::Respond),
    ] {
        let mut x = free;
        x.src = ip(src);
        x.port = port;
        let d = e.observe(at, &x, &facts);
        assert_eq!(d.outcome, want, "{src}:{port}");
        if want != Outcome::Respond {
            assert!(d.steps.is_empty(), "{src}: {:?}", d.steps);
        }
    }
    // a missing ignore file: said on every event, and the host is blocked anyway
    let mut e = Engine::new(legacy(LegacyMode::Sudp), Ignore::Missing);
    let d = observe(&mut e, &ev(Proto::Udp, ScanKind::Udp));
    assert_eq!(d.steps[0], Step::Say(Say::NoIgnoreFile));
    assert!(d.acts());
}

#[test]
fn legacy_connect_mode_banner_even_when_already_blocked() {
    let mut r = legacy(LegacyMode::Tcp);
    r.banner = true;
    let mut e = engine(r);
    let c = ev(Proto::Tcp, ScanKind::Connect);
    assert_eq!(
        observe(&mut e, &c).steps[..2],
        [Step::Banner, Step::Say(Say::EventLine)]
    );
    assert_eq!(
        observe(&mut e, &c).steps,
        [
            Step::Banner,
            Step::Say(Say::EventLine),
            Step::Say(Say::AlreadyBlockedLegacy)
        ]
    );
}

#[test]
fn a_full_trigger_table_is_said_once() {
    let mut r = v2();
    r.scan_trigger = 5;
    let mut e = engine(r);
    let mut said = 0;
    for i in 0..(DEFAULT_CAP as u32 + 10) {
        let mut x = syn();
        x.src = IpAddr::V4(std::net::Ipv4Addr::from(0xC612_0000 + i));
        let d = observe(&mut e, &x);
        said += d
            .steps
            .iter()
            .filter(|s| **s == Step::Say(Say::TriggerTableFull))
            .count();
    }
    assert_eq!(said, 1);
}

#[test]
fn reconfigure_resets_the_trigger_only_when_it_changes() {
    let mut r = v2();
    r.scan_trigger = 2;
    let mut e = engine(r.clone());
    assert_eq!(observe(&mut e, &syn()).outcome, Outcome::BelowTrigger);
    r.block_tcp = BlockMode::LogOnly;
    e.reconfigure(r.clone());
    assert_eq!(observe(&mut e, &syn()).outcome, Outcome::LogOnly);
    r.scan_trigger = 3;
    e.reconfigure(r);
    assert_eq!(observe(&mut e, &syn()).outcome, Outcome::BelowTrigger);
}

/// Issue #17 item 1: a spoofed source that is this host (or loopback) gets no KILL_*
/// action in 2.x mode.
#[test]
fn v2_never_acts_on_this_host_or_loopback() {
    let facts = FixedFacts {
        own: [ip(DST)].into(),
        ..FixedFacts::default()
    };
    let mut e = engine(rules(Policy::V2 { local_check: false }));
    for src in [DST, "127.0.0.1", "::1"] {
        let mut x = syn();
        x.src = ip(src);
        let d = e.observe(SystemTime::UNIX_EPOCH, &x, &facts);
        assert_eq!(d.outcome, Outcome::OwnAddress, "{src}");
        assert_eq!(d.steps, [Step::Say(Say::OwnAddress), scan(F, T, T, F)]);
        assert!(!e.is_blocked(ip(src)));
    }
}

/// Issue #17 item 1: BLOCK_MAX and BLOCK_RATE bound the legacy actions too.
#[test]
fn block_max_and_block_rate_bound_every_response() {
    let mut r = v2();
    r.block_rate = 2;
    let mut e = engine(r);
    let at = |s: u64| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s);
    let mut outs = Vec::new();
    for i in 0..4 {
        let mut x = syn();
        x.src = ip(&format!("198.18.7.{}", 10 + i));
        outs.push(e.observe(at(100), &x, &FixedFacts::default()));
    }
    assert_eq!(outs[1].outcome, Outcome::Respond);
    assert_eq!(outs[2].outcome, Outcome::Capped);
    assert_eq!(outs[2].steps[0], Step::Say(Say::Capped(Cap::Rate)));
    assert_eq!(outs[3].steps, [scan(F, T, F, F)], "said once");
    // the next second has room again
    let mut x = syn();
    x.src = ip("198.18.7.20");
    assert_eq!(
        e.observe(at(101), &x, &FixedFacts::default()).outcome,
        Outcome::Respond
    );

    let mut r = legacy(LegacyMode::Stcp);
    r.block_max = 1;
    let mut e = engine(r);
    assert_eq!(observe(&mut e, &syn()).outcome, Outcome::Respond);
    let mut x = syn();
    x.src = ip("198.18.7.99");
    let d = observe(&mut e, &x);
    assert_eq!(d.outcome, Outcome::Capped);
    assert!(d.steps.contains(&Step::Say(Say::Capped(Cap::Max))));
}
