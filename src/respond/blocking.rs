//! Typed blocking: the block store, the native backends, expiry and the safety rules.
//!
//! In: a scanner's address and why (from the rule engine), the time, and periodic
//! ticks. Out: blocks applied to every backend and recorded in the store, expired blocks
//! lifted, vanished backend objects restored, CLI changes to the store followed; its own
//! `attackalert:` lines. Backends get typed targets, never rule text. The store is the
//! source of truth; the kernel copy is the enforcement copy with the remaining time as a
//! backstop. A failure in one backend is logged and never stops the others.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portsentry_blocker::{BlockError, Blocker, Net, Reason, Target};

use crate::config::{format_duration, BackendName, Config};
use crate::logging::lines::Line;
use crate::logging::Logger;
use crate::store::{timeout_for, Record, Store};

/// How often backends are asked whether our objects vanished.
const VANISH_CHECK: Duration = Duration::from_secs(2);
/// How often this host's own addresses are re-read.
const OWN_REFRESH: Duration = Duration::from_secs(30);

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Why typed blocking could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("block backend {0}: not available in this build yet")]
    NotBuilt(BackendName),
    #[error("block backend nft: cannot open the netlink socket: {0}")]
    Open(String),
    #[error("BLOCK_PREFIX_V6={0}: the nft backend blocks single hosts only (use 128)")]
    Prefix(u8),
    #[error(transparent)]
    Backend(#[from] BlockError),
    #[error("block store: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Builds the configured backends (not yet initialised).
pub fn make_backends(cfg: &Config) -> Result<Vec<Box<dyn Blocker>>, StartError> {
    cfg.block_backend
        .iter()
        .map(|name| make_backend(name.resolve(), cfg))
        .collect()
}

fn make_backend(name: BackendName, cfg: &Config) -> Result<Box<dyn Blocker>, StartError> {
    match name {
        #[cfg(target_os = "linux")]
        BackendName::Nft => {
            if cfg.block_prefix_v6 != 128 {
                return Err(StartError::Prefix(cfg.block_prefix_v6));
            }
            let hooks = cfg
                .nft_hooks
                .iter()
                .map(|h| match h {
                    crate::config::Hook::Input => portsentry_nftables::Hook::Input,
                    crate::config::Hook::Forward => portsentry_nftables::Hook::Forward,
                })
                .collect();
            let opts = portsentry_nftables::Options {
                hooks,
                ..portsentry_nftables::Options::default()
            };
            let nft = portsentry_nftables::Nftables::new(opts)
                .map_err(|e| StartError::Open(e.to_string()))?;
            Ok(Box::new(nft))
        }
        // The lines come from KILL_HOSTS_DENY (default `ALL: $TARGET$`), in a marked block.
        BackendName::HostsDeny => Ok(Box::new(portsentry_hosts_deny::HostsDeny::new(
            cfg.hosts_deny_file.clone(),
            cfg.kill_hosts_deny
                .as_ref()
                .map_or_else(|| "ALL: $TARGET$".to_string(), |t| t.0.clone()),
        ))),
        // Blackhole routes: rtnetlink with our own protocol number on Linux, route(8)
        // with an argv on the BSDs.
        BackendName::Route => Ok(Box::new(portsentry_route::Route::new())),
        other => Err(StartError::NotBuilt(other)),
    }
}

/// What changed in the set of blocked hosts (for the block cache and BLOCKED_FILE).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub lifted: Vec<IpAddr>,
    pub added: Vec<IpAddr>,
}

pub struct Blocking {
    store: Store,
    backends: Vec<Box<dyn Blocker>>,
    /// What we applied: net -> expiry, to follow CLI changes to the store.
    applied: HashMap<Net, Option<u64>>,
    base: Option<Duration>,
    multiplier: f64,
    max: Option<Duration>,
    block_max: usize,
    block_rate: u32,
    prefix_v6: u8,
    rate_window: (u64, u32),
    cap_logged: Option<Instant>,
    own: Vec<IpAddr>,
    own_read: Instant,
    vanish_checked: Instant,
    log: Arc<Logger>,
}

fn remaining(expires: Option<u64>, now: u64) -> Option<Duration> {
    expires.map(|e| Duration::from_secs(e.saturating_sub(now).max(1)))
}

fn own_addresses() -> Vec<IpAddr> {
    pcap::Device::list()
        .map(|ds| {
            ds.iter()
                .flat_map(|d| {
                    d.addresses
                        .iter()
                        .map(|a| portsentry_blocker::canonical(a.addr))
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Blocking {
    /// Opens the store, sets up every backend (idempotent), and reconciles: unexpired
    /// blocks are (re)applied in one batch per backend, expired ones lifted, and blocks a
    /// backend holds that the store lacks (a crash between the two) are adopted.
    pub fn start(cfg: &Config, log: Arc<Logger>, now: u64) -> Result<Blocking, StartError> {
        let backends = make_backends(cfg)?;
        let (store, warnings) = Store::open(&cfg.block_state_file)?;
        for w in warnings {
            log.error(w);
        }
        let mut b = Blocking {
            store,
            backends,
            applied: HashMap::new(),
            base: cfg.block_timeout,
            multiplier: cfg.block_timeout_multiplier,
            max: cfg.block_timeout_max,
            block_max: cfg.block_max,
            block_rate: cfg.block_rate,
            prefix_v6: cfg.block_prefix_v6,
            rate_window: (0, 0),
            cap_logged: None,
            own: own_addresses(),
            own_read: Instant::now(),
            vanish_checked: Instant::now(),
            log,
        };
        for be in b.backends.iter_mut() {
            be.init()?;
        }
        b.adopt(now);
        b.lift_expired(now);
        b.reapply(now);
        Ok(b)
    }

    /// Blocks the backends hold that the store does not know: recorded as recovered.
    fn adopt(&mut self, now: u64) {
        let mut found = Vec::new();
        for be in self.backends.iter_mut() {
            match be.list() {
                Ok(held) => found.extend(held.into_iter().map(|h| (h, be.name()))),
                Err(e) => self
                    .log
                    .error(format!("attackalert: ERROR: {e}: {}", source_text(&e))),
            }
        }
        for (h, name) in found {
            if self.store.get(&h.net).is_some_and(|r| !r.lifted) {
                continue;
            }
            let rec = Record {
                net: h.net,
                backends: vec![name.to_string()],
                first_seen: now,
                last_seen: now,
                hits: 1,
                protocol: String::new(),
                port: 0,
                scan: "recovered from the firewall".to_string(),
                expires: h.remaining.map(|d| now + d.as_secs().max(1)),
                offences: 1,
                lifted: false,
            };
            if let Err(e) = self.store.put(rec) {
                self.log.error(format!("block store: {e}"));
            }
        }
    }

    /// Re-asserts every active block in every backend (start, `reapply`, after a vanish).
    pub fn reapply(&mut self, now: u64) {
        let targets: Vec<Target> = self
            .store
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
            .collect();
        // One transaction per backend that makes it hold exactly the store's blocks
        // (what it held beyond them was adopted into the store first).
        for be in self.backends.iter_mut() {
            match be.replace_all(&targets) {
                Ok(()) if !targets.is_empty() => self.log.notice(Line::Reasserted {
                    count: targets.len(),
                    how: be.name(),
                }),
                Ok(()) => {}
                Err(e) => self
                    .log
                    .error(format!("attackalert: ERROR: {e}: {}", source_text(&e))),
            }
        }
        self.applied = self.store.active().map(|r| (r.net, r.expires)).collect();
    }

    fn target_net(&self, ip: IpAddr) -> Net {
        match ip {
            IpAddr::V6(_) if self.prefix_v6 < 128 => {
                Net::new(ip, self.prefix_v6).unwrap_or_else(|_| Net::host(ip))
            }
            _ => Net::host(ip),
        }
    }

    fn is_own(&mut self, ip: IpAddr) -> bool {
        if self.own_read.elapsed() >= OWN_REFRESH {
            self.own = own_addresses();
            self.own_read = Instant::now();
        }
        ip.is_loopback() || ip.is_unspecified() || self.own.contains(&ip)
    }

    fn cap(&mut self, ip: IpAddr, what: &str) {
        let due = self
            .cap_logged
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
        if due {
            self.cap_logged = Some(Instant::now());
            self.log.error(Line::CapHit { ip, what });
        }
    }

    /// Blocks `ip` in every backend and records it. True if any backend holds it.
    pub fn block(&mut self, ip: IpAddr, reason: Reason, now: u64) -> bool {
        if self.is_own(ip) {
            self.log.notice(Line::CapHit {
                ip,
                what: "it is an address of this host",
            });
            return false;
        }
        let net = self.target_net(ip);
        let previous = self.store.get(&net).cloned();
        let active_already = previous.as_ref().is_some_and(|r| !r.lifted);
        if !active_already {
            if self.store.active_len() >= self.block_max {
                self.cap(ip, "BLOCK_MAX active blocks reached");
                return false;
            }
            if self.rate_window.0 != now {
                self.rate_window = (now, 0);
            }
            if self.rate_window.1 >= self.block_rate {
                self.cap(ip, "BLOCK_RATE new blocks per second reached");
                return false;
            }
            self.rate_window.1 += 1;
        }
        let offences = previous.as_ref().map_or(1, |r| {
            if r.lifted {
                r.offences.saturating_add(1)
            } else {
                r.offences.max(1)
            }
        });
        let timeout = timeout_for(self.base, self.multiplier, self.max, offences);
        let target = Target {
            net,
            timeout,
            reason: reason.clone(),
        };
        // The kernel first (time to block matters); the store right after, before the
        // block is reported. A crash in between is healed by `adopt` at the next start.
        let mut held_by = Vec::new();
        for be in self.backends.iter_mut() {
            match be.block(&target) {
                Ok(()) => held_by.push(be.name().to_string()),
                Err(e) => self.log.error(Line::BackendFailed {
                    ip: &net.to_string(),
                    err: &format!("{e}: {}", source_text(&e)),
                }),
            }
        }
        if held_by.is_empty() {
            return false;
        }
        let expires = timeout.map(|d| now + d.as_secs());
        let rec = Record {
            net,
            backends: held_by.clone(),
            first_seen: previous.as_ref().map_or(now, |r| r.first_seen),
            last_seen: now,
            hits: previous.as_ref().map_or(1, |r| r.hits.saturating_add(1)),
            protocol: reason.protocol.clone(),
            port: reason.port,
            scan: reason.scan.clone(),
            expires,
            offences,
            lifted: false,
        };
        if let Err(e) = self.store.put(rec) {
            self.log
                .error(format!("block store: cannot record {net}: {e}"));
        }
        self.applied.insert(net, expires);
        let until = match timeout {
            Some(d) => format!("for {}", format_duration(d)),
            None => "permanently".to_string(),
        };
        self.log.notice(Line::BlockedVia {
            ip: &net.to_string(),
            how: &held_by.join(","),
            until: &until,
        });
        true
    }

    fn unapply(&mut self, net: &Net) {
        for be in self.backends.iter_mut() {
            if let Err(e) = be.unblock(net) {
                self.log
                    .error(format!("attackalert: ERROR: {e}: {}", source_text(&e)));
            }
        }
        self.applied.remove(net);
    }

    fn lift_expired(&mut self, now: u64) -> Vec<IpAddr> {
        let mut lifted = Vec::new();
        for net in self.store.expired(now) {
            self.unapply(&net);
            match self.store.lift(&net) {
                Ok(_) => {
                    self.log.notice(Line::Expired {
                        ip: &net.to_string(),
                    });
                    lifted.push(net.addr());
                }
                Err(e) => self
                    .log
                    .error(format!("block store: cannot lift {net}: {e}")),
            }
        }
        lifted
    }

    /// Periodic work: expiry, CLI changes to the store, vanished backend objects.
    pub fn tick(&mut self, now: u64) -> Changes {
        let mut ch = Changes {
            lifted: self.lift_expired(now),
            added: Vec::new(),
        };
        match self.store.refresh() {
            Ok(true) => {
                let active: HashMap<Net, Option<u64>> =
                    self.store.active().map(|r| (r.net, r.expires)).collect();
                let gone: Vec<Net> = self
                    .applied
                    .keys()
                    .filter(|n| !active.contains_key(n))
                    .copied()
                    .collect();
                for n in gone {
                    self.unapply(&n);
                    ch.lifted.push(n.addr());
                }
                let new: Vec<Target> = active
                    .iter()
                    .filter(|(n, e)| self.applied.get(n) != Some(e))
                    .map(|(n, e)| Target {
                        net: *n,
                        timeout: remaining(*e, now),
                        reason: Reason::default(),
                    })
                    .collect();
                for be in self.backends.iter_mut() {
                    if let Err(e) = be.block_many(&new) {
                        self.log
                            .error(format!("attackalert: ERROR: {e}: {}", source_text(&e)));
                    }
                }
                ch.added.extend(new.iter().map(|t| t.net.addr()));
                self.applied = active;
            }
            Ok(false) => {}
            Err(e) => self.log.error(format!("block store: {e}")),
        }
        if self.vanish_checked.elapsed() >= VANISH_CHECK {
            self.vanish_checked = Instant::now();
            let mut lost = false;
            for be in self.backends.iter_mut() {
                match be.vanished() {
                    Ok(true) => {
                        self.log.error(format!(
                            "adminalert: the {} objects vanished (firewall flushed or reloaded); restoring them",
                            be.name()
                        ));
                        match be.init() {
                            Ok(()) => lost = true,
                            Err(e) => self
                                .log
                                .error(format!("attackalert: ERROR: {e}: {}", source_text(&e))),
                        }
                    }
                    Ok(false) => {}
                    Err(e) => self
                        .log
                        .error(format!("attackalert: ERROR: {e}: {}", source_text(&e))),
                }
            }
            if lost {
                self.reapply(now);
            }
        }
        ch
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// The cause of a backend error, for the log.
pub fn source_text(e: &BlockError) -> String {
    e.source.to_string()
}
