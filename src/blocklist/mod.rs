//! The one owner of every block: the store, the backends, expiry, escalation, the caps
//! and the never-block rules.
//!
//! In: block requests (from the executor, in groups, and from the CLI), unblock, expire,
//! flush and reapply requests, periodic ticks, and reloads; the backends, the clock, the
//! host facts and the ignore list are injected. Out: what was placed (net, timeout,
//! backends) or why not ([`Refusal`]), backends holding exactly the store's active
//! blocks, and its own `attackalert:` lines. The design (store as the source of truth,
//! kernel copy as enforcement with the remaining time as a backstop) is in
//! `docs/blocking.md`.
//!
//! Rules: never block loopback, the unspecified address, an address of this host, or
//! anything the ignore list covers, and never a network that contains one of those
//! (`BLOCK_PREFIX_V6` widening included). `BLOCK_MAX` and `BLOCK_RATE` cap new blocks. A
//! block is reported only once it is durable in the store; a block no backend holds is
//! an error, never a stored record. A failing backend is logged, counted, and never
//! stops the others. A group of requests is one `block_many` per backend and one store
//! fsync. Must not: read the system clock except through [`Clock`], parse config files,
//! or run a shell.

pub mod backends;
pub mod clock;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use portsentry_blocker::{BlockError, Blocker, Net, Reason, Target, Text};

use crate::config::{format_duration, Config, IgnoreList};
use crate::facts::HostFacts;
use crate::logging::lines::Line;
use crate::logging::Logger;
use crate::store::{timeout_for, Record, Store, StoreError};

pub use backends::{make_backends, BuildError};
pub use clock::{unix_now, Clock, ManualClock, SystemClock};

/// How often a cap is logged at most, in seconds.
const CAP_LOG_SECS: u64 = 10;
/// After a backend failed, how long until the next reconcile retries it, in seconds.
const RETRY_SECS: u64 = 30;

/// The BLOCK_* keys the blocklist applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// BLOCK_TIMEOUT; `None` = permanent.
    pub base: Option<Duration>,
    pub multiplier: f64,
    pub max: Option<Duration>,
    pub block_max: usize,
    /// New blocks per second at most.
    pub block_rate: u32,
    pub prefix_v6: u8,
}

impl Settings {
    pub fn of(cfg: &Config) -> Settings {
        Settings {
            base: cfg.block_timeout,
            multiplier: cfg.block_timeout_multiplier,
            max: cfg.block_timeout_max,
            block_max: cfg.block_max,
            block_rate: cfg.block_rate,
            prefix_v6: cfg.block_prefix_v6,
        }
    }
}

/// How long a requested block lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lasting {
    /// BLOCK_TIMEOUT with escalation for repeat offenders.
    Policy,
    /// Exactly this (`portsentry block --for`); `None` = permanent.
    Fixed(Option<Duration>),
}

/// One block to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub net: Net,
    /// Widen an IPv6 host to BLOCK_PREFIX_V6 (detections; not manual blocks).
    pub widen: bool,
    pub reason: Reason,
    pub duration: Lasting,
}

impl Request {
    /// A detection: the scanner's address, the policy's duration.
    pub fn detection(ip: IpAddr, reason: Reason) -> Request {
        Request {
            net: Net::host(ip),
            widen: true,
            reason,
            duration: Lasting::Policy,
        }
    }
}

/// What the blocklist did with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub net: Net,
    /// `None` = permanent.
    pub timeout: Option<Duration>,
    /// The backends that hold it.
    pub held_by: Vec<&'static str>,
    /// Backends that failed (`backend: step of net failed: cause`).
    pub errors: Vec<String>,
    /// False when it was already blocked (the block was refreshed).
    pub new: bool,
}

/// Why a request was not placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{net} is not blocked: {why}")]
    Protected { net: Net, why: &'static str },
    #[error("{net} is not blocked: {what}")]
    Cap { net: Net, what: &'static str },
    #[error("{0} is not blocked: no block backend is configured (BLOCK_BACKEND)")]
    NoBackend(Net),
    #[error("{net} is not blocked: no backend holds it ({})", .errors.join("; "))]
    Failed { net: Net, errors: Vec<String> },
}

/// What changed in the set of blocked hosts (for block caches and BLOCKED_FILE).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub lifted: Vec<IpAddr>,
    pub added: Vec<IpAddr>,
}

/// One backend's health, for `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub backend: &'static str,
    /// Entries held, or why that is unknown or wrong.
    pub state: Result<usize, String>,
}

/// Why the blocklist could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("{}", describe(.0))]
    Backend(#[from] BlockError),
    #[error("block store: {}", crate::respond::chain(.0))]
    Store(#[from] StoreError),
}

/// A backend error with its cause, as logs and the CLI show it.
pub fn describe(e: &BlockError) -> String {
    format!("{e}: {}", e.source)
}

/// What differs in `be` from what it must hold, one line each: its own problems (a
/// missing table, chain, rule or set), and fewer than the `stored` blocks it must hold
/// when it holds `held` (for a backend that can list). `status` and the tick's tamper
/// repair say the same.
pub fn damage(be: &mut dyn Blocker, held: usize, stored: usize) -> Result<Vec<String>, BlockError> {
    let mut out = be.problems()?;
    if be.holds_list() && held < stored {
        out.push(format!("holds {held} of the {stored} stored blocks"));
    }
    Ok(out)
}

fn remaining(expires: Option<u64>, now: u64) -> Option<Duration> {
    expires.map(|e| Duration::from_secs(e.saturating_sub(now).max(1)))
}

fn overlaps(a: &Net, b: &Net) -> bool {
    a.contains(b.addr()) || b.contains(a.addr())
}

/// Why `net` must never be blocked, if it must not: it overlaps loopback or the
/// unspecified address, is or contains an address of this host, or overlaps the ignore
/// list. (Loopback and unspecified addresses count as addresses of this host.)
pub fn protection(net: &Net, facts: &dyn HostFacts, ignore: &IgnoreList) -> Option<&'static str> {
    let special = [
        Net::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8),
        Ok(Net::host(IpAddr::V6(Ipv6Addr::LOCALHOST))),
        Ok(Net::host(IpAddr::V4(Ipv4Addr::UNSPECIFIED))),
        Ok(Net::host(IpAddr::V6(Ipv6Addr::UNSPECIFIED))),
    ];
    if net.is_host() {
        if special.iter().flatten().any(|s| s.contains(net.addr())) {
            return Some("it is an address of this host");
        }
        if facts.is_own(net.addr()) {
            return Some("it is an address of this host");
        }
    } else if special.iter().flatten().any(|s| overlaps(s, net))
        || facts.own_addresses().into_iter().any(|a| net.contains(a))
    {
        return Some("it contains an address of this host");
    }
    if ignore.nets().iter().any(|i| overlaps(i, net)) {
        return Some("it is in the ignore file");
    }
    None
}

impl Settings {
    /// The net a request blocks: an IPv6 detection widened to BLOCK_PREFIX_V6.
    pub fn target_net(&self, req: &Request) -> Net {
        match req.net.addr() {
            IpAddr::V6(_) if req.widen && req.net.is_host() && self.prefix_v6 < 128 => {
                Net::new(req.net.addr(), self.prefix_v6).unwrap_or(req.net)
            }
            _ => req.net,
        }
    }

    /// The timeout of a request for its `offences`-th block.
    pub fn timeout(&self, req: &Request, offences: u32) -> Option<Duration> {
        match req.duration {
            Lasting::Policy => timeout_for(self.base, self.multiplier, self.max, offences),
            Lasting::Fixed(t) => t,
        }
    }
}

/// What the blocklist would do, without a store or backends (`--replay`).
pub struct Preview {
    pub settings: Settings,
    pub backends: Vec<&'static str>,
    pub facts: Arc<dyn HostFacts>,
    pub ignore: IgnoreList,
}

impl Preview {
    /// The net, the timeout (as for a first offence) and the backends; or why not.
    pub fn preview(&self, req: &Request) -> Result<Placed, Refusal> {
        let net = self.settings.target_net(req);
        if let Some(why) = protection(&net, &*self.facts, &self.ignore) {
            return Err(Refusal::Protected { net, why });
        }
        if self.backends.is_empty() {
            return Err(Refusal::NoBackend(net));
        }
        Ok(Placed {
            net,
            timeout: self.settings.timeout(req, 1),
            held_by: self.backends.clone(),
            errors: Vec::new(),
            new: true,
        })
    }
}

/// The owner of every block. See the module documentation.
pub struct Blocklist {
    store: Store,
    backends: Vec<Box<dyn Blocker>>,
    settings: Settings,
    clock: Arc<dyn Clock>,
    facts: Arc<dyn HostFacts>,
    ignore: IgnoreList,
    log: Arc<Logger>,
    /// (second, new blocks in it) for BLOCK_RATE.
    rate_window: (u64, u32),
    cap_logged: Option<u64>,
    /// Failures per backend since start.
    failures: BTreeMap<&'static str, u64>,
    /// A backend failed since the last reconcile: the next tick after RETRY_SECS
    /// reconciles every backend with the store again.
    retry_due: Option<u64>,
    /// Told (without waiting) when a block of ours is made: the CrowdSec push side.
    notify: Option<SyncSender<()>>,
    /// The earliest expiry of an active block (`None`: none expires) and the store
    /// generation it was computed at.
    next_due: Option<(Option<u64>, u64)>,
}

impl Blocklist {
    /// A blocklist over an open store. Nothing is touched until [`Blocklist::start`] or
    /// [`Blocklist::init_backends`].
    pub fn new(
        store: Store,
        backends: Vec<Box<dyn Blocker>>,
        settings: Settings,
        clock: Arc<dyn Clock>,
        facts: Arc<dyn HostFacts>,
        ignore: IgnoreList,
        log: Arc<Logger>,
    ) -> Blocklist {
        Blocklist {
            store,
            backends,
            settings,
            clock,
            facts,
            ignore,
            log,
            rate_window: (0, 0),
            cap_logged: None,
            failures: BTreeMap::new(),
            retry_due: None,
            notify: None,
            next_due: None,
        }
    }

    /// Who to tell when a block of ours (not one from elsewhere) is made.
    pub fn set_notify(&mut self, tx: SyncSender<()>) {
        self.notify = Some(tx);
    }

    /// Opens the store at the config's BLOCK_STATE_FILE (warnings are logged) and builds
    /// the blocklist over the given backends.
    pub fn open(
        cfg: &Config,
        backends: Vec<Box<dyn Blocker>>,
        clock: Arc<dyn Clock>,
        facts: Arc<dyn HostFacts>,
        ignore: IgnoreList,
        log: Arc<Logger>,
    ) -> Result<Blocklist, StoreError> {
        let (store, warnings) = Store::open(&cfg.block_state_file)?;
        for w in warnings {
            log.error(w);
        }
        Ok(Blocklist::new(
            store,
            backends,
            Settings::of(cfg),
            clock,
            facts,
            ignore,
            log,
        ))
    }

    /// Daemon start: sets up every backend (idempotent), adopts blocks a backend holds
    /// that the store lacks (a crash between the two), lifts what expired while we were
    /// away, and makes every backend hold exactly the store's active blocks.
    pub fn start(&mut self) -> Result<(), StartError> {
        self.init_backends()?;
        let now = self.clock.now();
        self.adopt(now);
        self.lift_expired(now);
        self.lift_protected();
        self.reapply();
        Ok(())
    }

    /// Stored blocks the never-block rules forbid (a loopback or own address, an ignored
    /// one, a network containing one: recorded by an older version, by hand, or before
    /// the address became ours) are lifted, never re-applied (issue #17).
    fn lift_protected(&mut self) {
        let bad: Vec<(Net, &'static str)> = self
            .store
            .active()
            .filter_map(|r| self.protection(&r.net).map(|why| (r.net, why)))
            .collect();
        for (net, why) in bad {
            self.unapply(&net);
            match self.store.lift(&net) {
                Ok(_) => self
                    .log
                    .error(format!("adminalert: stored block of {net} lifted: {why}")),
                Err(e) => self.log.error(format!(
                    "block store: cannot lift {net}: {}",
                    crate::respond::chain(&e)
                )),
            }
        }
    }

    /// Sets up every backend (the CLI does this before changing anything).
    pub fn init_backends(&mut self) -> Result<(), BlockError> {
        for be in self.backends.iter_mut() {
            be.init()?;
        }
        Ok(())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Warnings the store gathered (crash remnants it repaired).
    pub fn take_store_warnings(&mut self) -> Vec<String> {
        self.store.take_warnings()
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The names of the backends, in order.
    pub fn backend_names(&self) -> Vec<&'static str> {
        self.backends.iter().map(|b| b.name()).collect()
    }

    /// Whether any backend is configured.
    pub fn has_backends(&self) -> bool {
        !self.backends.is_empty()
    }

    /// The ignore list the never-block rule uses (reload).
    pub fn set_ignore(&mut self, ignore: IgnoreList) {
        self.ignore = ignore;
    }

    /// Active blocks as addresses (the 2.x block cache).
    pub fn active_addrs(&self) -> Vec<IpAddr> {
        self.store.active().map(|r| r.net.addr()).collect()
    }

    fn backend_failed(&mut self, e: &BlockError) -> String {
        *self.failures.entry(e.backend).or_default() += 1;
        if self.retry_due.is_none() {
            self.retry_due = Some(self.clock.now() + RETRY_SECS);
        }
        describe(e)
    }

    /// Why `net` must never be blocked, if it must not.
    pub fn protection(&self, net: &Net) -> Option<&'static str> {
        protection(net, &*self.facts, &self.ignore)
    }

    fn target_net(&self, req: &Request) -> Net {
        self.settings.target_net(req)
    }

    fn log_cap(&mut self, net: &Net, what: &str, now: u64) {
        if self.cap_logged.is_none_or(|t| now >= t + CAP_LOG_SECS) {
            self.cap_logged = Some(now);
            self.log.error(Line::CapHit {
                ip: net.addr(),
                what,
            });
        }
    }

    /// Blocks one request. See [`Blocklist::block_many`].
    pub fn block(&mut self, req: Request) -> Result<Placed, Refusal> {
        self.block_many(vec![req]).pop().unwrap_or_else(|| {
            Err(Refusal::NoBackend(Net::host(IpAddr::V4(
                Ipv4Addr::UNSPECIFIED,
            ))))
        })
    }

    /// Blocks a group: the never-block rules and caps per request, then one
    /// `block_many` per backend, one store append with one fsync, then one
    /// `attackalert: Host … has been blocked via …` line per block. Results are in the
    /// order of `reqs`; a net asked twice in one group is placed once.
    pub fn block_many(&mut self, reqs: Vec<Request>) -> Vec<Result<Placed, Refusal>> {
        self.place(reqs, true)
    }

    /// [`Blocklist::block_many`] for decisions another engine made (the CrowdSec LAPI):
    /// BLOCK_RATE, which bounds what forged packets can make us do, does not count them;
    /// the never-block rules and BLOCK_MAX still hold. No line per block (the caller
    /// sums them up), and the push side is not woken.
    pub fn block_many_shared(&mut self, reqs: Vec<Request>) -> Vec<Result<Placed, Refusal>> {
        self.place(reqs, false)
    }

    fn place(&mut self, reqs: Vec<Request>, rated: bool) -> Vec<Result<Placed, Refusal>> {
        let now = self.clock.now();
        let mut results: Vec<Option<Result<Placed, Refusal>>> = vec![None; reqs.len()];
        // (index, target, previous record, offences)
        let mut todo: Vec<(usize, Target, Option<Record>, u32)> = Vec::new();
        let mut first_of: HashMap<Net, usize> = HashMap::new();
        let mut dup: Vec<(usize, usize)> = Vec::new();
        // Blocks of this group that are not active yet (they count against BLOCK_MAX).
        let mut new_in_group = 0usize;
        for (i, req) in reqs.into_iter().enumerate() {
            let mut net = self.target_net(&req);
            // a widened network that would cover a protected address is narrowed back
            // to the scanner itself
            if net != req.net && self.protection(&req.net).is_none() {
                if let Some(why) = self.protection(&net) {
                    self.log.notice(format!(
                        "attackalert: {net} not blocked as a network ({why}): blocking {} alone",
                        req.net
                    ));
                    net = req.net;
                }
            }
            if let Some(j) = first_of.get(&net) {
                dup.push((i, *j));
                continue;
            }
            if let Some(why) = self.protection(&net) {
                self.log.notice(Line::CapHit {
                    ip: net.addr(),
                    what: why,
                });
                results[i] = Some(Err(Refusal::Protected { net, why }));
                continue;
            }
            if self.backends.is_empty() {
                results[i] = Some(Err(Refusal::NoBackend(net)));
                continue;
            }
            let previous = self.store.get(&net).cloned();
            let active_already = previous.as_ref().is_some_and(|r| !r.lifted);
            if !active_already {
                if self.store.active_len() + new_in_group >= self.settings.block_max {
                    let what = "BLOCK_MAX active blocks reached";
                    self.log_cap(&net, what, now);
                    results[i] = Some(Err(Refusal::Cap { net, what }));
                    continue;
                }
                if self.rate_window.0 != now {
                    self.rate_window = (now, 0);
                }
                if rated && self.rate_window.1 >= self.settings.block_rate {
                    let what = "BLOCK_RATE new blocks per second reached";
                    self.log_cap(&net, what, now);
                    results[i] = Some(Err(Refusal::Cap { net, what }));
                    continue;
                }
                if rated {
                    self.rate_window.1 += 1;
                }
                new_in_group += 1;
            }
            let offences = previous.as_ref().map_or(1, |r| {
                if r.lifted {
                    r.offences.saturating_add(1)
                } else {
                    r.offences.max(1)
                }
            });
            let timeout = self.settings.timeout(&req, offences);
            first_of.insert(net, i);
            todo.push((
                i,
                Target {
                    net,
                    timeout,
                    reason: req.reason,
                },
                previous,
                offences,
            ));
        }
        // The kernel first (time to block matters), the store right after, before any
        // block is reported. A crash in between is healed by `adopt` at the next start.
        let targets: Vec<Target> = todo.iter().map(|t| t.1.clone()).collect();
        // None of them held now (no active record): backends may add without refreshing,
        // which is far cheaper for a large batch. (One another process lifted in the
        // store and the kernel still holds keeps its old kernel timeout until the next
        // tick applies that change and refreshes it.)
        let all_new = todo.iter().all(|t| t.2.as_ref().is_none_or(|r| r.lifted));
        let mut held: Vec<Vec<&'static str>> = vec![Vec::new(); targets.len()];
        let mut errors: Vec<Vec<String>> = vec![Vec::new(); targets.len()];
        if !targets.is_empty() {
            for bi in 0..self.backends.len() {
                let name = self.backends[bi].name();
                // networks go only to backends that can hold them
                let (subset, index): (std::borrow::Cow<'_, [Target]>, Option<Vec<usize>>) = if self
                    .backends[bi]
                    .holds_networks()
                    || targets.iter().all(|t| t.net.is_host())
                {
                    (std::borrow::Cow::Borrowed(&targets[..]), None)
                } else {
                    let mut keep = Vec::new();
                    let mut index = Vec::new();
                    for (k, t) in targets.iter().enumerate() {
                        if t.net.is_host() {
                            keep.push(t.clone());
                            index.push(k);
                        } else {
                            errors[k].push(format!(
                                "the {name} backend holds single addresses only, not a network"
                            ));
                        }
                    }
                    (std::borrow::Cow::Owned(keep), Some(index))
                };
                let at = |j: usize| index.as_ref().map_or(j, |ix| ix[j]);
                if subset.is_empty() {
                    continue;
                }
                let res = if all_new {
                    self.backends[bi].add_many(&subset)
                } else {
                    self.backends[bi].block_many(&subset)
                };
                match res {
                    Ok(()) => (0..subset.len()).for_each(|j| held[at(j)].push(name)),
                    // One at a time, to know which ones the backend refuses.
                    Err(_) => {
                        for (j, t) in subset.iter().enumerate() {
                            let k = at(j);
                            let r = self.backends[bi].block(t);
                            match r {
                                Ok(()) => held[k].push(name),
                                Err(e) => {
                                    let text = self.backend_failed(&e);
                                    self.log.error(Line::BackendFailed {
                                        ip: &t.net.to_string(),
                                        err: &text,
                                    });
                                    errors[k].push(text);
                                }
                            }
                        }
                    }
                }
            }
        }
        for bi in 0..self.backends.len() {
            for w in self.backends[bi].take_warnings() {
                self.log
                    .error(format!("adminalert: {}: {w}", self.backends[bi].name()));
            }
        }
        let mut records = Vec::new();
        for (k, (_, t, previous, offences)) in todo.iter().enumerate() {
            if held[k].is_empty() {
                continue;
            }
            records.push(Record {
                net: t.net,
                backends: held[k].iter().map(|s| s.to_string()).collect(),
                first_seen: previous.as_ref().map_or(now, |r| r.first_seen),
                last_seen: now,
                hits: previous.as_ref().map_or(1, |r| r.hits.saturating_add(1)),
                protocol: t.reason.protocol.clone(),
                port: t.reason.port,
                scan: t.reason.scan.clone(),
                expires: t.timeout.map(|d| now + d.as_secs()),
                offences: *offences,
                lifted: false,
            });
        }
        let nets: Vec<Net> = records.iter().map(|r| r.net).collect();
        // the firewall holds them; only a restart would forget them
        let unrecorded = self.store.put_many(records).err().map(|e| {
            let cause = crate::respond::chain(&e);
            let nets: Vec<String> = nets.iter().map(Net::to_string).collect();
            self.log.error(format!(
                "block store: could not record the block of {}: {cause}; the firewall holds it, but a restart would not restore it",
                nets.join(", "),
            ));
            format!("not recorded in the block store (a restart would not restore it): {cause}")
        });
        for (k, (i, t, previous, _)) in todo.into_iter().enumerate() {
            if held[k].is_empty() {
                results[i] = Some(Err(Refusal::Failed {
                    net: t.net,
                    errors: std::mem::take(&mut errors[k]),
                }));
                continue;
            }
            // decisions from elsewhere are summed up by their source, not one line each,
            // and are not ours to share
            if rated {
                let until = match t.timeout {
                    Some(d) => format!("for {}", format_duration(d)),
                    None => "permanently".to_string(),
                };
                self.log.notice(Line::BlockedVia {
                    ip: &t.net.to_string(),
                    how: &held[k].join(","),
                    until: &until,
                });
                if let Some(tx) = &self.notify {
                    let _ = tx.try_send(());
                }
            }
            let mut errs = std::mem::take(&mut errors[k]);
            errs.extend(unrecorded.clone());
            results[i] = Some(Ok(Placed {
                net: t.net,
                timeout: t.timeout,
                held_by: std::mem::take(&mut held[k]),
                errors: errs,
                new: previous.is_none_or(|r| r.lifted),
            }));
        }
        for (i, j) in dup {
            results[i] = results[j].clone();
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(Refusal::NoBackend(Net::host(IpAddr::V4(
                        Ipv4Addr::UNSPECIFIED,
                    ))))
                })
            })
            .collect()
    }

    fn unapply(&mut self, net: &Net) -> Vec<String> {
        let mut errs = Vec::new();
        for bi in 0..self.backends.len() {
            if let Err(e) = self.backends[bi].unblock(net) {
                let text = self.backend_failed(&e);
                self.log.error(format!("attackalert: ERROR: {text}"));
                errs.push(text);
            }
        }
        errs
    }

    /// Lifts one block from every backend and the store. `Ok(false)`: it was not
    /// blocked. Backend errors are returned (the store is updated anyway, so the next
    /// reconcile does not re-add it).
    pub fn unblock(&mut self, net: &Net) -> Result<bool, Vec<String>> {
        let errs = self.unapply(net);
        let was = match self.store.lift(net) {
            Ok(w) => w,
            Err(e) => return Err(vec![format!("block store: {}", crate::respond::chain(&e))]),
        };
        if errs.is_empty() {
            Ok(was)
        } else {
            Err(errs)
        }
    }

    /// Blocks due to expire now (for `expire --dry-run`).
    pub fn due(&self) -> Vec<Net> {
        self.store.expired(self.clock.now())
    }

    /// Lifts every expired block; returns the lifted nets and the backend errors.
    pub fn expire(&mut self) -> (Vec<Net>, Vec<String>) {
        let now = self.clock.now();
        let mut lifted = Vec::new();
        let mut errs = Vec::new();
        for net in self.store.expired(now) {
            errs.extend(self.unapply(&net));
            match self.store.lift(&net) {
                Ok(_) => {
                    self.log.notice(Line::Expired {
                        ip: &net.to_string(),
                    });
                    lifted.push(net);
                }
                Err(e) => errs.push(format!(
                    "block store: cannot lift {net}: {}",
                    crate::respond::chain(&e)
                )),
            }
        }
        (lifted, errs)
    }

    /// The tick's expiry: looks at the records only when one may be due (the earliest
    /// expiry has come) or the store changed since it last looked, so 100 000 blocks
    /// cost nothing between expiries.
    fn lift_expired(&mut self, now: u64) -> Vec<IpAddr> {
        if let Some((due, generation)) = self.next_due {
            if generation == self.store.generation() && due.is_none_or(|t| now < t) {
                return Vec::new();
            }
        }
        let (lifted, _) = self.expire();
        let earliest = self.store.active().filter_map(|r| r.expires).min();
        self.next_due = Some((earliest, self.store.generation()));
        lifted.into_iter().map(|n| n.addr()).collect()
    }

    /// Removes everything of ours from every backend and empties the store; returns how
    /// many blocks were active and the backend errors.
    pub fn flush(&mut self) -> (usize, Vec<String>) {
        let mut errs = Vec::new();
        let stored: Vec<Net> = self.store.active().map(|r| r.net).collect();
        for bi in 0..self.backends.len() {
            // A backend that cannot list what it holds gets each stored block lifted.
            if !self.backends[bi].holds_list() {
                for net in &stored {
                    if let Err(e) = self.backends[bi].unblock(net) {
                        errs.push(self.backend_failed(&e));
                    }
                }
            }
            if let Err(e) = self.backends[bi].flush() {
                errs.push(self.backend_failed(&e));
            }
        }
        let n = self.store.active_len();
        if let Err(e) = self.store.clear() {
            errs.push(format!("block store: {}", crate::respond::chain(&e)));
        }
        (n, errs)
    }

    fn active_targets(&self, now: u64) -> Vec<Target> {
        self.store
            .active()
            .filter(|r| r.expires.is_none_or(|e| e > now))
            .map(|r| Target {
                net: r.net,
                timeout: remaining(r.expires, now),
                reason: Reason {
                    protocol: r.protocol.clone(),
                    port: r.port,
                    scan: r.scan.clone(),
                },
            })
            .collect()
    }

    /// Makes every backend hold exactly the store's active blocks, one transaction per
    /// backend (start, `reapply`, after a vanish). Returns how many and the errors.
    pub fn reapply(&mut self) -> (usize, Vec<String>) {
        self.reapply_logged(true)
    }

    /// What differs in backend `bi` from what it must hold (see [`damage`]), counting the
    /// unexpired stored blocks applied to it.
    fn damage(&mut self, bi: usize, now: u64) -> Vec<String> {
        let name = self.backends[bi].name();
        let stored = self
            .store
            .active()
            .filter(|r| r.expires.is_none_or(|e| e > now) && r.backends.contains(name))
            .count();
        let be = &mut self.backends[bi];
        match be.list() {
            Ok(held) => {
                damage(be.as_mut(), held.len(), stored).unwrap_or_else(|e| vec![describe(&e)])
            }
            Err(e) => vec![describe(&e)],
        }
    }

    /// [`Blocklist::reapply`], with or without its `Reasserted` line.
    fn reapply_logged(&mut self, log: bool) -> (usize, Vec<String>) {
        let now = self.clock.now();
        let targets = self.active_targets(now);
        let mut errs = Vec::new();
        for bi in 0..self.backends.len() {
            let res = self.backends[bi].replace_all(&targets);
            match res {
                Ok(()) if log && !targets.is_empty() => self.log.notice(Line::Reasserted {
                    count: targets.len(),
                    how: self.backends[bi].name(),
                }),
                Ok(()) => {}
                Err(e) => {
                    let text = self.backend_failed(&e);
                    self.log.error(format!("attackalert: ERROR: {text}"));
                    errs.push(text);
                }
            }
        }
        (targets.len(), errs)
    }

    /// Blocks the backends hold that the store does not know: recorded as recovered.
    fn adopt(&mut self, now: u64) {
        let mut found = Vec::new();
        for bi in 0..self.backends.len() {
            match self.backends[bi].list() {
                Ok(held) => found.extend(held.into_iter().map(|h| (h, self.backends[bi].name()))),
                Err(e) => {
                    let text = self.backend_failed(&e);
                    self.log.error(format!("attackalert: ERROR: {text}"));
                }
            }
        }
        let mut recs = Vec::new();
        for (h, name) in found {
            if self.store.get(&h.net).is_some_and(|r| !r.lifted)
                || recs.iter().any(|r: &Record| r.net == h.net)
            {
                continue;
            }
            recs.push(Record {
                net: h.net,
                backends: vec![name].into(),
                first_seen: now,
                last_seen: now,
                hits: 1,
                protocol: Text::default(),
                port: 0,
                scan: "recovered from the firewall".into(),
                expires: h.remaining.map(|d| now + d.as_secs().max(1)),
                offences: 1,
                lifted: false,
            });
        }
        if let Err(e) = self.store.put_many(recs) {
            self.log
                .error(format!("block store: {}", crate::respond::chain(&e)));
        }
    }

    /// Periodic work: expiry, CLI changes to the store, vanished backend objects.
    pub fn tick(&mut self) -> Changes {
        let now = self.clock.now();
        let mut ch = Changes {
            lifted: self.lift_expired(now),
            added: Vec::new(),
        };
        match self.store.refresh() {
            Ok(_) => {
                // what another process (the CLI, a merged foreign file) changed: blocks
                // now active are applied (the never-block rules hold for them too), the
                // rest lifted; both are idempotent in every backend
                let mut new: Vec<Target> = Vec::new();
                for net in self.store.take_changed() {
                    let active = self
                        .store
                        .get(&net)
                        .filter(|r| !r.lifted)
                        .map(|r| r.expires);
                    match active {
                        Some(expires) if self.protection(&net).is_none() => new.push(Target {
                            net,
                            timeout: remaining(expires, now),
                            reason: Reason::default(),
                        }),
                        Some(_) => {}
                        None => {
                            self.unapply(&net);
                            ch.lifted.push(net.addr());
                        }
                    }
                }
                for bi in 0..self.backends.len() {
                    if new.is_empty() {
                        break;
                    }
                    let nets_ok = self.backends[bi].holds_networks();
                    let new: Vec<Target> = new
                        .iter()
                        .filter(|t| nets_ok || t.net.is_host())
                        .cloned()
                        .collect();
                    if let Err(e) = self.backends[bi].block_many(&new) {
                        let text = self.backend_failed(&e);
                        self.log.error(format!("attackalert: ERROR: {text}"));
                    }
                }
                ch.added.extend(new.iter().map(|t| t.net.addr()));
            }
            Err(e) => self
                .log
                .error(format!("block store: {}", crate::respond::chain(&e))),
        }
        for w in self.store.take_warnings() {
            self.log.error(w);
        }
        // at every tick: nft answers from its change notifications, so this is cheap
        {
            let mut lost = false;
            let mut said = false;
            for bi in 0..self.backends.len() {
                let res = self.backends[bi].vanished();
                match res {
                    Ok(true) => {
                        // what is wrong, said once; a change that left everything in
                        // place (another process of ours, the CLI) is re-asserted quietly
                        let damage = self.damage(bi, now);
                        if !damage.is_empty() {
                            said = true;
                            self.log.error(format!(
                                "adminalert: the {} objects were changed by someone else ({}); restoring them",
                                self.backends[bi].name(),
                                damage.join("; ")
                            ));
                        }
                        let init = self.backends[bi].init();
                        match init {
                            Ok(()) => lost = true,
                            Err(e) => {
                                let text = self.backend_failed(&e);
                                self.log.error(format!("attackalert: ERROR: {text}"));
                            }
                        }
                    }
                    Ok(false) => {}
                    Err(e) => {
                        let text = self.backend_failed(&e);
                        self.log.error(format!("attackalert: ERROR: {text}"));
                    }
                }
            }
            if lost {
                self.reapply_logged(said);
            }
        }
        // A backend that failed is retried: every backend made to hold the store again.
        if self.retry_due.is_some_and(|t| now >= t) {
            self.retry_due = None;
            let (_, errs) = self.reapply();
            if errs.is_empty() {
                self.log.notice(Line::Reconciled);
            }
        }
        ch
    }

    /// Each backend's health now: entries held, our objects missing, or its error.
    pub fn health(&mut self) -> Vec<Health> {
        let mut out = Vec::new();
        for bi in 0..self.backends.len() {
            let name = self.backends[bi].name();
            let state = match self.backends[bi].vanished() {
                Ok(true) => Err("our objects are missing (run `portsentry reapply`)".to_string()),
                Err(e) => Err(describe(&e)),
                Ok(false) => match self.backends[bi].list() {
                    Ok(held) => Ok(held.len()),
                    Err(e) => Err(describe(&e)),
                },
            };
            out.push(Health {
                backend: name,
                state,
            });
        }
        out
    }

    /// Failures per backend since this blocklist was made.
    pub fn failures(&self) -> &BTreeMap<&'static str, u64> {
        &self.failures
    }

    /// Reload: new BLOCK_* settings apply to the next block; with `backends`, the new
    /// set is set up and given every active block, then the old backends whose names are
    /// not in the new set are flushed (a backend kept under the same name is never
    /// flushed: the new instance manages the same objects). Returns the errors.
    pub fn reconfigure(
        &mut self,
        settings: Settings,
        backends: Option<Vec<Box<dyn Blocker>>>,
    ) -> Vec<String> {
        self.settings = settings;
        let Some(mut new) = backends else {
            return Vec::new();
        };
        let mut errs = Vec::new();
        let now = self.clock.now();
        let targets = self.active_targets(now);
        for be in new.iter_mut() {
            if let Err(e) = be.init().and_then(|()| be.replace_all(&targets)) {
                errs.push(describe(&e));
            }
        }
        let keep: Vec<&'static str> = new.iter().map(|b| b.name()).collect();
        let old = std::mem::replace(&mut self.backends, new);
        for mut be in old {
            if !keep.contains(&be.name()) {
                if let Err(e) = be.flush() {
                    errs.push(describe(&e));
                }
            }
        }
        for e in &errs {
            self.log.error(format!("attackalert: ERROR: {e}"));
        }
        errs
    }
}
