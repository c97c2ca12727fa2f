//! Sharing blocks through a CrowdSec Local API (issue #18): the bouncer side applies the
//! LAPI's ban decisions through the [`Blocklist`], the watcher side pushes our own blocks
//! as alerts. Two plain threads; neither ever holds up detection or blocking.
//!
//! In: the `CROWDSEC_*` settings, the pipeline (its blocklist, and its block caches that
//! must follow what we add or lift) and the logger. Out: blocks made and lifted with the
//! origin `crowdsec` in the store (scan `crowdsec <origin> <scenario>`), alerts in the
//! LAPI, a push mark beside the store (`BLOCK_STATE_FILE.crowdsec-pushed`: our blocks up
//! to it are acknowledged, so a restart pushes the rest; only a crash between sending a
//! batch and marking it sends that batch again), and a status
//! file (`BLOCK_STATE_FILE.crowdsec`) that `portsentry status` shows. Must not: decide
//! what may be blocked (the blocklist's never-block rules and BLOCK_MAX hold for the
//! LAPI's decisions too), take a lock while waiting on the network, or log more than one
//! line when the LAPI goes away and one when it is back.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portsentry_blocker::{Net, Reason, Text};
#[cfg(test)]
use portsentry_crowdsec::Stream;
use portsentry_crowdsec::{alert_json, Ban, Decision, Lapi, LapiError, Report};
use serde::{Deserialize, Serialize};

use crate::blocklist::{unix_now, Changes, Lasting, Request};
use crate::config::{Config, DecisionFilter};
use crate::logging::Logger;
use crate::pipeline::{lock, Pipeline};
use crate::store::Record;

/// The scan text of a block that came from the LAPI starts with this.
pub const FROM_LAPI: &str = "crowdsec ";
/// The longest wait between tries while the LAPI does not answer.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Each HTTP call gives up after this (a 100 000-decision stream takes about 2 s).
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Alerts per `POST /v1/alerts`.
const PUSH_BATCH: usize = 200;
/// The status file is written when a side's health changes, else at most this often
/// (each write is an fsync'd rename).
const STATUS_EVERY: Duration = Duration::from_secs(30);
/// Decisions applied per blocklist call.
const APPLY_SLICE: usize = 4096;
/// Bad decisions logged one by one per pull; the rest are counted.
const BAD_SHOWN: usize = 3;

/// Whether a stored block came from the LAPI.
pub fn from_lapi(r: &Record) -> bool {
    r.scan.starts_with(FROM_LAPI)
}

/// What the status file says (and `portsentry status` shows).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Status {
    pub url: String,
    pub pull: Option<Side>,
    pub push: Option<Side>,
}

/// One side's health.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Side {
    /// The last call succeeded.
    pub ok: bool,
    /// Unix time of the last successful call.
    pub last_ok: Option<u64>,
    /// Why the last call failed.
    pub error: Option<String>,
    /// Pull: decisions applied in all; push: alerts accepted in all.
    pub done: u64,
    /// Push: our blocks not yet acknowledged.
    pub pending: u64,
}

/// The status file beside the store.
pub fn status_path(store: &Path) -> PathBuf {
    let mut s = store.as_os_str().to_owned();
    s.push(".crowdsec");
    PathBuf::from(s)
}

fn mark_path(store: &Path) -> PathBuf {
    let mut s = store.as_os_str().to_owned();
    s.push(".crowdsec-pushed");
    PathBuf::from(s)
}

/// Reads the status file the daemon writes, if there is one.
pub fn read_status(store: &Path) -> Option<Status> {
    let data = crate::fsutil::read_regular(&status_path(store)).ok()?;
    serde_json::from_slice(&data).ok()
}

/// The running share threads; they stop when this is dropped.
pub struct Share {
    stop: Arc<AtomicBool>,
}

impl Drop for Share {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Shared between the two threads and the status file.
struct State {
    path: PathBuf,
    status: Mutex<Status>,
    written: Mutex<Option<Instant>>,
}

impl State {
    fn update(&self, pull: bool, f: impl FnOnce(&mut Side)) {
        let snapshot = {
            let mut st = lock(&self.status);
            let side = if pull { &mut st.pull } else { &mut st.push };
            let s = side.get_or_insert_with(Side::default);
            let was_ok = s.ok;
            f(s);
            let changed = was_ok != s.ok;
            let mut w = lock(&self.written);
            let due = w.is_none_or(|t| t.elapsed() >= STATUS_EVERY);
            if !(changed || due) {
                return;
            }
            *w = Some(Instant::now());
            st.clone()
        };
        if let Ok(text) = serde_json::to_vec(&snapshot) {
            let _ = crate::fsutil::atomic_write(&self.path, &text, 0o600);
        }
    }
}

/// Starts whichever sides the config turns on; `None` when neither is, or there is no
/// blocklist to share (the config check requires BLOCK_BACKEND).
pub fn start(cfg: &Config, pipe: &Arc<Pipeline>, log: &Arc<Logger>) -> Option<Share> {
    let c = &cfg.crowdsec;
    let url = c.url.as_deref()?;
    if !c.enabled() {
        return None;
    }
    pipe.executor().blocklist()?;
    let agent = format!("portsentry/{}", env!("CARGO_PKG_VERSION"));
    let lapi = match Lapi::with_ca(url, HTTP_TIMEOUT, &agent, c.ca_pem.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            log.error(format!("adminalert: crowdsec: {e}; not sharing blocks"));
            return None;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let state = Arc::new(State {
        path: status_path(&cfg.block_state_file),
        status: Mutex::new(Status {
            url: lapi.url().to_string(),
            ..Status::default()
        }),
        written: Mutex::new(None),
    });
    let mut sides = Vec::new();
    if let Some(key) = &c.bouncer_key {
        let (lapi, key, pipe, log, stop, state) = (
            lapi.clone(),
            key.0.clone(),
            pipe.clone(),
            log.clone(),
            stop.clone(),
            state.clone(),
        );
        let interval = c.poll_interval;
        let filter = c.filter.clone();
        std::thread::Builder::new()
            .name("crowdsec-pull".into())
            .spawn(move || {
                let pull = Pull {
                    lapi,
                    key,
                    filter,
                    interval,
                };
                pull_loop(&pull, &pipe, &log, &stop, &state)
            })
            .ok()?;
        sides.push("pull (bouncer)");
    }
    if let (Some(id), Some(pw)) = (&c.machine_id, &c.machine_password) {
        let watcher = Watcher {
            lapi: lapi.clone(),
            machine: id.clone(),
            password: pw.0.clone(),
            token: None,
            mark: Mark::load(&mark_path(&cfg.block_state_file)),
            mark_path: mark_path(&cfg.block_state_file),
            host: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            clean_at: None,
        };
        // woken at once by each block of ours, so it is sent without waiting a poll
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        if let Some(bl) = pipe.executor().blocklist() {
            lock(&bl).set_notify(tx);
        }
        let (pipe, log, stop, state) = (pipe.clone(), log.clone(), stop.clone(), state.clone());
        let interval = c.poll_interval;
        std::thread::Builder::new()
            .name("crowdsec-push".into())
            .spawn(move || push_loop(watcher, interval, &rx, &pipe, &log, &stop, &state))
            .ok()?;
        sides.push("push (watcher)");
    }
    log.notice(format!(
        "adminalert: crowdsec: sharing blocks with the LAPI at {}: {}, every {}",
        lapi.url(),
        sides.join(" and "),
        crate::config::format_duration(c.poll_interval)
    ));
    Some(Share { stop })
}

/// Sleeps `d`, waking early when asked to stop; false then.
fn pause(stop: &AtomicBool, d: Duration) -> bool {
    wait(stop, None, d)
}

/// Waits `d`, or less when `wake` says a block of ours was made; false when asked to
/// stop (looked at every 100 ms).
fn wait(stop: &AtomicBool, wake: Option<&Receiver<()>>, d: Duration) -> bool {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        let step = left.min(Duration::from_millis(100));
        match wake.map(|rx| rx.recv_timeout(step)) {
            Some(Ok(())) => return true,
            Some(Err(RecvTimeoutError::Timeout)) => {}
            // no wake-ups (or the blocklist is gone): sleep
            None | Some(Err(RecvTimeoutError::Disconnected)) => std::thread::sleep(step),
        }
    }
    false
}

/// One line when a side stops working, one when it works again.
struct Health {
    side: &'static str,
    down: bool,
    backoff: Duration,
}

impl Health {
    fn failed(&mut self, log: &Logger, url: &str, e: &LapiError, interval: Duration) {
        if !self.down {
            log.error(format!(
                "adminalert: crowdsec: {} failed: {}; retrying, up to every {}s, until the LAPI at {url} answers",
                self.side,
                crate::respond::chain(e),
                BACKOFF_MAX.as_secs()
            ));
            self.down = true;
            self.backoff = interval;
        }
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX).max(interval);
    }

    fn worked(&mut self, log: &Logger, url: &str, what: &str) {
        if self.down {
            log.notice(format!(
                "adminalert: crowdsec: {} works again with the LAPI at {url}{what}",
                self.side
            ));
            self.down = false;
        }
    }

    fn wait(&self, interval: Duration) -> Duration {
        if self.down {
            self.backoff
        } else {
            interval
        }
    }
}

/// What the bouncer side reads, and how often.
struct Pull {
    lapi: Lapi,
    key: String,
    filter: DecisionFilter,
    interval: Duration,
}

fn pull_loop(pull: &Pull, pipe: &Pipeline, log: &Logger, stop: &AtomicBool, state: &State) {
    let Pull {
        lapi,
        key,
        filter,
        interval,
    } = pull;
    let interval = *interval;
    let mut startup = true;
    let mut health = Health {
        side: "pulling decisions",
        down: false,
        backoff: interval,
    };
    loop {
        let t = Instant::now();
        let now = unix_now();
        let mut plan = Plan::default();
        let mut tally = Tally::default();
        let (mut new, mut deleted) = (0usize, 0usize);
        // applied a slice at a time as the answer is read, so a start with 100 000
        // decisions never holds them all; an answer that breaks off leaves the slices
        // before the break applied, and the next pull asks for everything again
        let got = lapi.stream_each(key, startup, |del, d| {
            if del {
                deleted += 1;
            } else {
                new += 1;
            }
            plan.take(del, &d, now, filter);
            if plan.bans.len() >= APPLY_SLICE || plan.lifts.len() >= APPLY_SLICE {
                apply(&mut plan, pipe, log, &mut tally);
            }
        });
        match got {
            Ok(()) => {
                apply(&mut plan, pipe, log, &mut tally);
                report(&plan, &tally, startup, log);
                let n = tally.applied;
                if new + deleted > 0 {
                    log.debug(format!(
                        "crowdsec: pulled and applied {new} new and {deleted} deleted decisions in {} ms",
                        t.elapsed().as_millis()
                    ));
                }
                health.worked(log, lapi.url(), "");
                startup = false;
                state.update(true, |s| {
                    s.ok = true;
                    s.error = None;
                    s.last_ok = Some(unix_now());
                    s.done += n as u64;
                });
            }
            Err(e) => {
                health.failed(log, lapi.url(), &e, interval);
                state.update(true, |s| {
                    s.ok = false;
                    s.error = Some(crate::respond::chain(&e));
                });
            }
        }
        if !pause(stop, health.wait(interval)) {
            return;
        }
    }
}

/// What one answer of the stream asks for, split from the decisions themselves.
#[derive(Debug, Default, PartialEq, Eq)]
struct Plan {
    /// Lift these (a deleted decision), unless we applied them after `deleted_at`.
    lifts: Vec<(Net, u64)>,
    /// Apply these.
    bans: Vec<(Net, Duration, Text)>,
    /// Decisions we cannot use: the first few, and how many in all.
    bad: Vec<String>,
    bad_count: usize,
    /// Bans left out by the CROWDSEC_ORIGINS / _SCENARIOS_* filter.
    filtered: usize,
}

impl Plan {
    /// Takes one decision of an answer (pure): a deletion with the time it happened, a
    /// ban with the time it has left, or what is wrong with it.
    fn take(&mut self, deleted: bool, d: &Decision, now: u64, filter: &DecisionFilter) {
        match (deleted, d.ban()) {
            (true, Ok(Ban { net, .. })) => {
                let ago = portsentry_crowdsec::parse_go(&d.duration)
                    .map(|g| g.magnitude.as_secs())
                    .unwrap_or(0);
                self.lifts.push((net, now.saturating_sub(ago)));
            }
            (
                false,
                Ok(Ban {
                    net,
                    remaining: Some(left),
                    origin,
                    scenario,
                }),
            ) if filter.admits(&origin, &scenario) => {
                self.bans
                    .push((net, left, format!("{FROM_LAPI}{origin} {scenario}").into()))
            }
            (
                false,
                Ok(Ban {
                    remaining: Some(_), ..
                }),
            ) => self.filtered += 1,
            // expired on the way
            (false, Ok(_)) => {}
            (_, Err(e)) => {
                if self.bad.len() < BAD_SHOWN {
                    self.bad.push(e.to_string());
                }
                self.bad_count += 1;
            }
        }
    }
}

/// Reads one whole answer (tests).
#[cfg(test)]
fn plan(stream: Stream, now: u64) -> Plan {
    let mut p = Plan::default();
    for d in &stream.deleted {
        p.take(true, d, now, &DecisionFilter::default());
    }
    for d in &stream.new {
        p.take(false, d, now, &DecisionFilter::default());
    }
    p
}

/// What one pull did, gathered over its slices and logged once at its end.
#[derive(Debug, Default)]
struct Tally {
    applied: usize,
    asked: usize,
    refused: usize,
    first_refusal: Option<String>,
}

/// Applies the lifts and bans taken so far through the blocklist (one batch per
/// backend) and empties them from `p`; its `bad` decisions stay for [`report`].
fn apply(p: &mut Plan, pipe: &Pipeline, log: &Logger, tally: &mut Tally) {
    let lifts = std::mem::take(&mut p.lifts);
    let bans = std::mem::take(&mut p.bans);
    let Some(bl) = pipe.executor().blocklist() else {
        return;
    };
    let now = unix_now();
    let mut ch = Changes::default();
    {
        let mut b = lock(&bl);
        for (net, deleted_at) in lifts {
            let lift = b.store().get(&net).is_some_and(|r| {
                // ours stay ours; a re-applied one stays until its own deletion
                !r.lifted && from_lapi(r) && r.last_seen < deleted_at
            });
            if lift {
                match b.unblock(&net) {
                    Ok(_) => ch.lifted.push(net.addr()),
                    Err(errs) => {
                        for e in errs {
                            log.error(format!("adminalert: crowdsec: lifting {net}: {e}"));
                        }
                    }
                }
            }
        }
        // at most APPLY_SLICE bans (the pull applies as soon as it has that many): one
        // batch per backend. A net twice in one answer is one block (the blocklist
        // merges a group's duplicates), and in a later slice it is in the store already,
        // applied again only if longer.
        let reqs: Vec<Request> = bans
            .into_iter()
            .filter(|(net, left, _)| {
                let until = now + left.as_secs();
                !b.store().get(net).is_some_and(|r| {
                    // our own block (perhaps coming back from the LAPI), or one already
                    // held at least as long
                    !r.lifted && (!from_lapi(r) || r.expires.is_none_or(|e| e >= until))
                })
            })
            .map(|(net, left, scan)| Request {
                net,
                widen: false,
                reason: Reason {
                    protocol: Text::default(),
                    port: 0,
                    scan,
                },
                duration: Lasting::Fixed(Some(left)),
            })
            .collect();
        tally.asked += reqs.len();
        for r in b.block_many_shared(reqs) {
            match r {
                Ok(placed) => {
                    tally.applied += 1;
                    ch.added.push(placed.net.addr());
                }
                // logged by the blocklist, one line each, as for a scan
                Err(crate::blocklist::Refusal::Protected { .. }) => {}
                Err(other) => {
                    tally.refused += 1;
                    tally.first_refusal.get_or_insert_with(|| other.to_string());
                }
            }
        }
    }
    pipe.changed(ch);
}

/// The lines one pull ends with: decisions that could not be used or applied, and at
/// start how many were applied.
fn report(p: &Plan, tally: &Tally, startup: bool, log: &Logger) {
    for why in &p.bad {
        log.error(format!("adminalert: crowdsec: decision not applied: {why}"));
    }
    if p.bad_count > p.bad.len() {
        log.error(format!(
            "adminalert: crowdsec: {} more decisions not applied this pull",
            p.bad_count - p.bad.len()
        ));
    }
    if let Some(example) = &tally.first_refusal {
        log.error(format!(
            "adminalert: crowdsec: {} decisions not applied this pull, such as: {example}",
            tally.refused
        ));
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if tally.asked > APPLY_SLICE {
        crate::sys::trim_heap();
    }
    if startup && tally.asked + p.filtered > 0 {
        let left_out = match p.filtered {
            0 => String::new(),
            n => format!(" ({n} more left out by the CROWDSEC_ORIGINS/_SCENARIOS_* filter)"),
        };
        log.notice(format!(
            "adminalert: crowdsec: applied {} of {} decisions from the LAPI at start{left_out}",
            tally.applied, tally.asked
        ));
    }
}

/// Our blocks the LAPI has acknowledged: every one blocked before `until`, and those
/// blocked in the second `until` itself that are listed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct Mark {
    until: u64,
    at_until: Vec<String>,
}

impl Mark {
    /// The mark on file; at the first start with pushing on, a new one from now, written
    /// at once (blocks from before sharing was configured stay local, and those made
    /// later are pushed even if the LAPI never answered before a restart).
    fn load(path: &Path) -> Mark {
        if let Some(m) = crate::fsutil::read_regular(path)
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
        {
            return m;
        }
        let m = Mark {
            until: unix_now(),
            at_until: Vec::new(),
        };
        m.save(path);
        m
    }

    fn save(&self, path: &Path) {
        if let Ok(text) = serde_json::to_vec(self) {
            let _ = crate::fsutil::atomic_write(path, &text, 0o600);
        }
    }

    fn covers(&self, r: &Record) -> bool {
        r.last_seen < self.until
            || (r.last_seen == self.until && self.at_until.contains(&r.net.to_string()))
    }

    fn advance(&mut self, pushed: &[Record]) {
        for r in pushed {
            if r.last_seen > self.until {
                self.until = r.last_seen;
                self.at_until.clear();
            }
            if r.last_seen == self.until {
                self.at_until.push(r.net.to_string());
            }
        }
    }
}

struct Watcher {
    lapi: Lapi,
    machine: String,
    password: String,
    token: Option<String>,
    mark: Mark,
    mark_path: PathBuf,
    host: String,
    /// The store's generation when everything of ours had been pushed: until it
    /// changes there is nothing to look for (no scan of every record each poll).
    clean_at: Option<u64>,
}

impl Watcher {
    /// Our blocks not yet pushed, oldest first, and the store's generation they were
    /// read at.
    fn pending(&self, pipe: &Pipeline) -> (Vec<Record>, u64) {
        let Some(bl) = pipe.executor().blocklist() else {
            return (Vec::new(), 0);
        };
        let b = lock(&bl);
        let generation = b.store().generation();
        if self.clean_at == Some(generation) {
            return (Vec::new(), generation);
        }
        let mut out: Vec<Record> = b
            .store()
            .active()
            .filter(|r| !from_lapi(r) && r.scan != "recovered from the firewall")
            .filter(|r| !self.mark.covers(r))
            .cloned()
            .collect();
        drop(b);
        out.sort_by_key(|r| r.last_seen);
        (out, generation)
    }

    fn report(&self, r: &Record, now: u64) -> Report {
        Report {
            net: r.net,
            timeout: r
                .expires
                .map(|e| Duration::from_secs(e.saturating_sub(now).max(1))),
            scan: r.scan.to_string(),
            protocol: r.protocol.to_ascii_lowercase(),
            port: r.port,
            host: self.host.clone(),
        }
    }

    /// Pushes one batch, logging in first or again when the token is refused.
    fn push(&mut self, batch: &[Record]) -> Result<(), LapiError> {
        let now = unix_now();
        let stamp = chrono::DateTime::from_timestamp(i64::try_from(now).unwrap_or(0), 0)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default();
        let alerts: Vec<serde_json::Value> = batch
            .iter()
            .map(|r| alert_json(&self.report(r, now), &stamp))
            .collect();
        let token = self.token()?;
        match self.lapi.push(&token, &alerts) {
            // an expired token, or the LAPI restarted with a new secret: once more
            Err(e) if e.is_refused() => {
                self.token = None;
                let token = self.token()?;
                self.lapi.push(&token, &alerts).map(drop)
            }
            other => other.map(drop),
        }
    }

    /// The watcher token, logging in when there is none.
    fn token(&mut self) -> Result<String, LapiError> {
        if let Some(t) = &self.token {
            return Ok(t.clone());
        }
        let t = self.lapi.login(&self.machine, &self.password)?;
        self.token = Some(t.clone());
        Ok(t)
    }
}

fn push_loop(
    mut w: Watcher,
    interval: Duration,
    rx: &Receiver<()>,
    pipe: &Pipeline,
    log: &Logger,
    stop: &AtomicBool,
    state: &State,
) {
    let mut health = Health {
        side: "pushing our blocks",
        down: false,
        backoff: interval,
    };
    loop {
        let (pending, generation) = w.pending(pipe);
        let mut pushed = 0u64;
        let mut failure = None;
        for batch in pending.chunks(PUSH_BATCH) {
            match w.push(batch) {
                Ok(()) => {
                    w.mark.advance(batch);
                    w.mark.save(&w.mark_path);
                    pushed += batch.len() as u64;
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let left = pending.len() as u64 - pushed;
        if left == 0 {
            w.clean_at = Some(generation);
        }
        match failure {
            None => {
                let what = if pushed > 0 {
                    format!("; {pushed} blocks pushed")
                } else {
                    String::new()
                };
                health.worked(log, w.lapi.url(), &what);
                state.update(false, |s| {
                    s.ok = true;
                    s.error = None;
                    s.last_ok = Some(unix_now());
                    s.done += pushed;
                    s.pending = left;
                });
            }
            Some(e) => {
                health.failed(log, w.lapi.url(), &e, interval);
                state.update(false, |s| {
                    s.ok = false;
                    s.error = Some(crate::respond::chain(&e));
                    s.done += pushed;
                    s.pending = left;
                });
            }
        }
        // while the LAPI is away, wake-ups do not shorten the pause
        let more = if health.down {
            pause(stop, health.wait(interval))
        } else {
            wait(stop, Some(rx), interval)
        };
        if !more {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(id: i64, duration: &str, scope: &str, value: &str, kind: &str) -> Decision {
        Decision {
            id,
            duration: duration.into(),
            origin: "cscli".into(),
            scenario: "manual 'ban' from 'x'".into(),
            scope: scope.into(),
            kind: kind.into(),
            value: value.into(),
        }
    }

    #[test]
    fn a_stream_becomes_a_plan() {
        let s = Stream {
            new: vec![
                d(1, "29s", "Ip", "198.18.5.5", "ban"),
                d(2, "1h", "Range", "198.18.9.0/24", "ban"),
                d(3, "-1s", "Ip", "198.18.5.6", "ban"),
                d(4, "1h", "Ip", "198.18.5.7", "captcha"),
                d(5, "1h", "Ip", "garbage", "ban"),
            ],
            deleted: vec![d(6, "-2.5s", "Ip", "198.18.5.8", "ban")],
        };
        let p = plan(s, 1000);
        assert_eq!(p.lifts, vec![("198.18.5.8".parse().unwrap(), 998)]);
        assert_eq!(p.bans.len(), 2);
        assert_eq!(p.bans[0].1, Duration::from_secs(29));
        assert_eq!(p.bans[0].2, "crowdsec cscli manual 'ban' from 'x'");
        assert_eq!(p.bans[1].0.to_string(), "198.18.9.0/24");
        assert_eq!(p.bad.len(), 2, "{:?}", p.bad);
        assert_eq!(p.bad_count, 2);
    }

    #[test]
    fn the_filter_leaves_out_bans_by_origin_and_scenario() {
        let mut ssh = d(1, "1h", "Ip", "198.18.5.1", "ban");
        ssh.origin = "crowdsec".into();
        ssh.scenario = "crowdsecurity/ssh-bf".into();
        let mut http = d(2, "1h", "Ip", "198.18.5.2", "ban");
        http.origin = "crowdsec".into();
        http.scenario = "crowdsecurity/http-probing".into();
        let manual = d(3, "1h", "Ip", "198.18.5.3", "ban");
        let gone = d(4, "-1s", "Ip", "198.18.5.4", "ban");
        let run = |f: &DecisionFilter| {
            let mut p = Plan::default();
            for x in [&ssh, &http, &manual] {
                p.take(false, x, 1000, f);
            }
            p.take(true, &gone, 1000, f);
            let bans: Vec<String> = p.bans.iter().map(|b| b.0.to_string()).collect();
            (bans, p.filtered, p.lifts.len())
        };
        let all = DecisionFilter::default();
        assert_eq!(
            run(&all),
            (
                vec![
                    "198.18.5.1".into(),
                    "198.18.5.2".into(),
                    "198.18.5.3".into()
                ],
                0,
                1
            )
        );
        let origins = DecisionFilter {
            origins: vec!["crowdsec".into()],
            ..Default::default()
        };
        assert_eq!(
            run(&origins),
            (vec!["198.18.5.1".into(), "198.18.5.2".into()], 1, 1)
        );
        let scen = DecisionFilter {
            containing: vec!["crowdsecurity/".into()],
            not_containing: vec!["http".into()],
            ..Default::default()
        };
        // deletions are never filtered: they only lift what was applied
        assert_eq!(run(&scen), (vec!["198.18.5.1".into()], 2, 1));
    }

    #[test]
    fn the_push_mark_covers_what_was_acknowledged() {
        let rec = |net: &str, t: u64| Record {
            net: net.parse().unwrap(),
            backends: Default::default(),
            first_seen: t,
            last_seen: t,
            hits: 1,
            protocol: "TCP".into(),
            port: 1,
            scan: "TCP SYN/Normal scan".into(),
            expires: None,
            offences: 1,
            lifted: false,
        };
        let mut m = Mark {
            until: 100,
            at_until: vec![],
        };
        assert!(m.covers(&rec("198.18.0.1", 99)));
        assert!(!m.covers(&rec("198.18.0.1", 100)));
        m.advance(&[rec("198.18.0.1", 100), rec("198.18.0.2", 101)]);
        assert_eq!(m.until, 101);
        assert!(m.covers(&rec("198.18.0.1", 100)));
        assert!(m.covers(&rec("198.18.0.2", 101)));
        assert!(!m.covers(&rec("198.18.0.3", 101)));
        assert!(!m.covers(&rec("198.18.0.4", 102)));
    }
}
