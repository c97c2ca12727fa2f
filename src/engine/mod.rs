//! The decision engine: one event in, one decision out.
//!
//! In: the time, an [`Event`] (a classified probe: who, where, which port, what kind),
//! and [`HostFacts`] (is a service bound there, is this one of our addresses). Out: a
//! [`Decision`]: the outcome plus the ordered [`Step`]s the executor carries out (lines,
//! banner, actions in the configured order, the settle step, the 2.x scan line). The
//! engine keeps the SCAN_TRIGGER table, the ignore list and the "already blocked" cache;
//! the executor tells it when a response failed or a block was lifted.
//!
//! The 2.x rule order (`docs/compat.md` §5) and the 1.2 order (§10.5, §10.7) are two
//! [`Policy`]s of the same [`Engine::observe`]. Must not: do I/O, read the clock, log,
//! resolve names, or know about files, commands or backends beyond "is one configured".

#[cfg(test)]
mod tests;
pub mod trigger;

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::SystemTime;

use crate::config::IgnoreList;
use crate::facts::HostFacts;
use crate::logging::lines::{Flag, Outcome as Flags};
use crate::model::{BlockMode, IpOpts, LegacyMode, Proto, ScanKind};

pub use trigger::{Trigger, DEFAULT_CAP};

/// One detection event: plain data, the connection itself stays with the executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub ts: SystemTime,
    pub proto: Proto,
    pub src: IpAddr,
    /// The address the probe was sent to (connect mode: the real local address).
    pub dst: IpAddr,
    pub port: u16,
    pub kind: ScanKind,
    pub ip_opts: IpOpts,
    /// A connect-mode event (a completed accept or a datagram on a bound port).
    pub connect: bool,
}

/// Which program's rules the engine follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Portsentry 2.x (`docs/compat.md` §5); `local_check` is off with `-L`.
    V2 { local_check: bool },
    /// Portsentry 1.2 in one mode (`docs/compat.md` §10).
    Legacy(LegacyMode),
}

/// What the engine needs to know of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub policy: Policy,
    /// Stealth events to a bound service are dropped (off with `-S`).
    pub service_check: bool,
    pub block_tcp: BlockMode,
    pub block_udp: BlockMode,
    /// Which actions are configured: KILL_HOSTS_DENY (the legacy action), KILL_ROUTE,
    /// typed backends (BLOCK_BACKEND), KILL_RUN_CMD.
    pub hosts_deny: bool,
    pub route: bool,
    pub backends: bool,
    pub run_cmd: bool,
    pub run_cmd_first: bool,
    /// PORT_BANNER is set.
    pub banner: bool,
    /// RESOLVE_HOST: the executor looks the name up for the lines.
    pub resolve: bool,
    pub scan_trigger: u32,
    /// BLOCK_MAX and BLOCK_RATE bound every response, the legacy `KILL_*` actions too:
    /// hosts counted as blocked at most, and new responses per second at most.
    pub block_max: usize,
    pub block_rate: u32,
}

/// The ignore list, or (1.2 mode) the fact that the ignore file could not be read.
#[derive(Debug, Clone)]
pub enum Ignore {
    List(IgnoreList),
    Missing,
}

/// The outcome of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stealth: a local service is bound there; not an event.
    ServiceRunning,
    /// 1.2 mode: an IPv6 source (1.2 was IPv4 only).
    NotIpv4,
    /// 1.2 mode: from this host itself.
    OwnAddress,
    Ignored,
    BelowTrigger,
    /// 2.x local check: source == destination.
    Local,
    /// BLOCK_x = 0 (2.x: nothing more; 1.2: the host is recorded as blocked).
    LogOnly,
    /// BLOCK_MAX or BLOCK_RATE held the response back.
    Capped,
    AlreadyBlocked,
    /// The configured response runs.
    Respond,
}

/// A line the executor writes (it knows the name, address, port and kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Say {
    /// 2.x: `Ignoring packet from %s to destination port %d, a service is running`.
    ServiceRunning,
    /// 2.x verbose: `Host: %s found in ignore file %s, aborting actions`.
    IgnoredHost,
    /// 2.x debug: `Source address %s same as destination address %s, skipping`.
    SameAddress,
    /// 2.x: `attackalert: Host: %s/%s is already blocked Ignoring`.
    AlreadyBlocked,
    /// The SCAN_TRIGGER table is full (said once).
    TriggerTableFull,
    /// 1.2: `attackalert: ERROR: cannot open ignore file. Blocking host anyway.`
    NoIgnoreFile,
    /// 1.2: the connect / stealth / UDP event line.
    EventLine,
    /// 1.2: the IP-options line.
    IpOptions,
    /// 1.2: already blocked (connect and stealth modes word it differently).
    AlreadyBlockedLegacy,
    /// 1.2: `attackalert: Ignoring TCP response per configuration file setting.`
    IgnoringResponse,
    /// `attackalert: Host %s not blocked: it is an address of this host`.
    OwnAddress,
    /// `attackalert: Host %s not blocked: BLOCK_MAX …` / `BLOCK_RATE …` (said at most
    /// once per 10 s).
    Capped(Cap),
}

/// Which cap held a response back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    Max,
    Rate,
}

/// A response action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// KILL_HOSTS_DENY.
    HostsDeny,
    /// KILL_ROUTE.
    Route,
    /// The typed backends, through the blocklist.
    Block,
    /// KILL_RUN_CMD.
    RunCmd,
}

/// How the results of the actions before it decide "blocked".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// 2.x: blocked if any action succeeded; then the host goes to BLOCKED_FILE, else
    /// `attackalert: Error during target dispose`.
    AnyOf,
    /// 1.2: blocked if every action succeeded (none configured counts as success); then
    /// the history and blocked-file line, else `Could not block host`.
    AllOf,
    /// 1.2 BLOCK_x = 0: recorded as blocked with no action.
    Record,
}

/// One thing to do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Say(Say),
    /// Connect mode: send PORT_BANNER to the peer.
    Banner,
    Act(Action),
    Settle(Settle),
    /// 2.x: the scan line (and its history line), last; `blocked: None` means the
    /// result of the settle step.
    ScanLine {
        ignored: Flag,
        triggered: Flag,
        noblock: Flag,
        blocked: Option<Flag>,
    },
}

impl Step {
    fn scan(ignored: Flag, triggered: Flag, noblock: Flag, blocked: Flag) -> Step {
        Step::ScanLine {
            ignored,
            triggered,
            noblock,
            blocked: Some(blocked),
        }
    }

    /// The scan line's flags once `ok` (the settle result) is known.
    pub fn flags(ignored: Flag, triggered: Flag, noblock: Flag, blocked: Flag) -> Flags {
        Flags {
            ignored,
            triggered,
            noblock,
            blocked,
        }
    }
}

/// What to do about one event: plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// When the engine decided (the clock of the caller: wall time, or packet time in a
    /// replay).
    pub at: SystemTime,
    pub event: Event,
    pub outcome: Outcome,
    /// Look the source's name up for the lines (RESOLVE_HOST).
    pub resolve: bool,
    pub steps: Vec<Step>,
}

impl Decision {
    /// Whether any step runs a response action.
    pub fn acts(&self) -> bool {
        self.steps.iter().any(|s| matches!(s, Step::Act(_)))
    }
}

/// The engine's state: rules, ignore list, SCAN_TRIGGER table, block cache.
#[derive(Debug)]
pub struct Engine {
    rules: Rules,
    ignore: Ignore,
    trigger: Trigger,
    blocked: HashSet<IpAddr>,
    table_full_said: bool,
    /// (second, responses in it) for BLOCK_RATE.
    rate: (u64, u32),
    /// When a cap was last said (seconds).
    cap_said: Option<u64>,
}

impl Engine {
    pub fn new(rules: Rules, ignore: Ignore) -> Engine {
        Engine {
            trigger: Trigger::new(rules.scan_trigger, DEFAULT_CAP),
            rules,
            ignore,
            blocked: HashSet::new(),
            table_full_said: false,
            rate: (0, 0),
            cap_said: None,
        }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// New rules (reload); a changed SCAN_TRIGGER starts counting afresh.
    pub fn reconfigure(&mut self, rules: Rules) {
        if rules.scan_trigger != self.rules.scan_trigger {
            self.trigger.reset(rules.scan_trigger);
        }
        self.rules = rules;
    }

    pub fn set_ignore(&mut self, ignore: Ignore) {
        self.ignore = ignore;
    }

    /// Replaces the block cache (start, BLOCKED_FILE or store changed elsewhere).
    pub fn set_blocked(&mut self, ips: impl IntoIterator<Item = IpAddr>) {
        self.blocked = ips.into_iter().collect();
    }

    /// A block was made elsewhere (the CLI, the store).
    pub fn note_blocked(&mut self, ip: IpAddr) {
        self.blocked.insert(ip);
    }

    /// A response failed or a block was lifted: the next event acts again.
    pub fn note_unblocked(&mut self, ip: IpAddr) {
        self.blocked.remove(&ip);
    }

    pub fn is_blocked(&self, ip: IpAddr) -> bool {
        self.blocked.contains(&ip)
    }

    fn block_mode(&self, proto: Proto) -> BlockMode {
        match proto {
            Proto::Tcp => self.rules.block_tcp,
            Proto::Udp => self.rules.block_udp,
        }
    }

    /// The configured actions of BLOCK_x = 1 in their order.
    fn actions(&self, steps: &mut Vec<Step>) {
        let r = &self.rules;
        if r.run_cmd && r.run_cmd_first {
            steps.push(Step::Act(Action::RunCmd));
        }
        if r.hosts_deny {
            steps.push(Step::Act(Action::HostsDeny));
        }
        if r.route {
            steps.push(Step::Act(Action::Route));
        }
        if r.backends {
            steps.push(Step::Act(Action::Block));
        }
        if r.run_cmd && !r.run_cmd_first {
            steps.push(Step::Act(Action::RunCmd));
        }
    }

    /// Counts the event for SCAN_TRIGGER; says so once when the table is full.
    fn count(&mut self, src: IpAddr, steps: &mut Vec<Step>) -> bool {
        let hit = self.trigger.hit(src);
        if hit.cap_reached && !self.table_full_said {
            self.table_full_said = true;
            steps.push(Step::Say(Say::TriggerTableFull));
        }
        hit.triggered
    }

    /// Whether a new response may run now (BLOCK_MAX, BLOCK_RATE); when not, the line
    /// that says so (at most once per 10 s).
    fn capped(&mut self, now: u64, steps: &mut Vec<Step>) -> bool {
        let cap = if self.blocked.len() >= self.rules.block_max {
            Some(Cap::Max)
        } else {
            if self.rate.0 != now {
                self.rate = (now, 0);
            }
            (self.rate.1 >= self.rules.block_rate).then_some(Cap::Rate)
        };
        match cap {
            None => {
                self.rate.1 += 1;
                false
            }
            Some(c) => {
                if self.cap_said.is_none_or(|t| now >= t + 10) {
                    self.cap_said = Some(now);
                    steps.push(Step::Say(Say::Capped(c)));
                }
                true
            }
        }
    }

    /// Decides what to do about `ev`. See the module documentation.
    pub fn observe(&mut self, now: SystemTime, ev: &Event, facts: &dyn HostFacts) -> Decision {
        let mut steps = Vec::with_capacity(8);
        let secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let outcome = match self.rules.policy {
            Policy::V2 { local_check } => self.v2(ev, facts, local_check, secs, &mut steps),
            Policy::Legacy(_) => self.legacy(ev, facts, secs, &mut steps),
        };
        Decision {
            at: now,
            event: *ev,
            outcome,
            resolve: self.rules.resolve,
            steps,
        }
    }

    /// The 2.x order: service check, ignore, trigger, local check, banner, BLOCK_x = 0,
    /// already blocked, actions, scan line.
    fn v2(
        &mut self,
        ev: &Event,
        facts: &dyn HostFacts,
        local_check: bool,
        now: u64,
        steps: &mut Vec<Step>,
    ) -> Outcome {
        use Flag::{False as F, True as T, Unset as U};
        if !ev.connect && self.rules.service_check && facts.service_bound(ev.proto, ev.dst, ev.port)
        {
            steps.push(Step::Say(Say::ServiceRunning));
            return Outcome::ServiceRunning;
        }
        if let Ignore::List(l) = &self.ignore {
            if l.contains(ev.src) {
                steps.push(Step::Say(Say::IgnoredHost));
                steps.push(Step::scan(T, U, U, U));
                return Outcome::Ignored;
            }
        }
        if !self.count(ev.src, steps) {
            steps.push(Step::scan(F, F, U, U));
            return Outcome::BelowTrigger;
        }
        if local_check && ev.src == ev.dst {
            steps.push(Step::Say(Say::SameAddress));
            steps.push(Step::scan(T, T, T, F));
            return Outcome::Local;
        }
        if ev.connect && self.rules.banner {
            steps.push(Step::Banner);
        }
        let mode = self.block_mode(ev.proto);
        if mode == BlockMode::LogOnly {
            steps.push(Step::scan(F, T, T, F));
            return Outcome::LogOnly;
        }
        if self.blocked.contains(&ev.src) {
            steps.push(Step::Say(Say::AlreadyBlocked));
            steps.push(Step::scan(F, T, F, T));
            return Outcome::AlreadyBlocked;
        }
        // Never-block holds for the legacy KILL_* actions too: loopback and this host's
        // own addresses (a spoofed source) get no response at all (issue #17).
        if facts.is_own(ev.src) {
            steps.push(Step::Say(Say::OwnAddress));
            steps.push(Step::scan(F, T, T, F));
            return Outcome::OwnAddress;
        }
        if self.capped(now, steps) {
            steps.push(Step::scan(F, T, F, F));
            return Outcome::Capped;
        }
        if mode == BlockMode::RunCmd {
            if self.rules.run_cmd {
                steps.push(Step::Act(Action::RunCmd));
            }
        } else {
            self.actions(steps);
        }
        steps.push(Step::Settle(Settle::AnyOf));
        steps.push(Step::ScanLine {
            ignored: F,
            triggered: T,
            noblock: F,
            blocked: None,
        });
        // Counted as blocked until the executor says the response failed, so the events
        // that follow while it runs are "already blocked".
        self.blocked.insert(ev.src);
        Outcome::Respond
    }

    /// The 1.2 order: IPv4 only, service check (stealth), own addresses, ignore file,
    /// trigger, banner, event lines, already blocked, response, record.
    fn legacy(
        &mut self,
        ev: &Event,
        facts: &dyn HostFacts,
        now: u64,
        steps: &mut Vec<Step>,
    ) -> Outcome {
        if !ev.src.is_ipv4() {
            return Outcome::NotIpv4;
        }
        if !ev.connect && self.rules.service_check && facts.service_bound(ev.proto, ev.dst, ev.port)
        {
            return Outcome::ServiceRunning;
        }
        if ev.src == ev.dst || facts.is_own(ev.src) {
            return Outcome::OwnAddress;
        }
        match &self.ignore {
            Ignore::List(l) if l.contains(ev.src) => return Outcome::Ignored,
            Ignore::List(_) => {}
            Ignore::Missing => steps.push(Step::Say(Say::NoIgnoreFile)),
        }
        if !self.count(ev.src, steps) {
            return Outcome::BelowTrigger;
        }
        if ev.connect && self.rules.banner {
            steps.push(Step::Banner);
        }
        steps.push(Step::Say(Say::EventLine));
        if !ev.connect && ev.ip_opts == IpOpts::Set {
            steps.push(Step::Say(Say::IpOptions));
        }
        if self.blocked.contains(&ev.src) {
            steps.push(Step::Say(Say::AlreadyBlockedLegacy));
            return Outcome::AlreadyBlocked;
        }
        if self.block_mode(ev.proto) != BlockMode::LogOnly && self.capped(now, steps) {
            return Outcome::Capped;
        }
        self.blocked.insert(ev.src);
        match self.block_mode(ev.proto) {
            BlockMode::LogOnly => {
                steps.push(Step::Say(Say::IgnoringResponse));
                steps.push(Step::Settle(Settle::Record));
                Outcome::LogOnly
            }
            BlockMode::RunCmd => {
                if self.rules.run_cmd {
                    steps.push(Step::Act(Action::RunCmd));
                }
                steps.push(Step::Settle(Settle::AllOf));
                Outcome::Respond
            }
            BlockMode::Block => {
                self.actions(steps);
                steps.push(Step::Settle(Settle::AllOf));
                Outcome::Respond
            }
        }
    }
}
