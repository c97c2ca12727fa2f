//! RESOLVE_HOST: a bounded reverse lookup for the log's name field.
//!
//! In: an address. Out: its name, or the address as text when there is none yet. Lookups
//! run on helper threads, at most [`IN_FLIGHT`] at once. A name is waited for up to the
//! budget only while the resolver answers in time: once a lookup outlived the budget, no
//! event waits again for [`SLOW_PAUSE`], so an unresponsive resolver costs one budget and
//! then nothing but missing names. A lookup that finishes late still fills the cache for
//! the next lines. Answers (negative ones too) are cached in a bounded cache. It runs
//! after the ignore and trigger checks (the executor asks only for lines it writes), never
//! in a capture thread. `$TARGET$` never uses this: it is always the IP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const CACHE: usize = 4096;
/// Lookups running at most.
pub const IN_FLIGHT: usize = 4;
/// After a lookup outlived the budget, events do not wait for names this long.
pub const SLOW_PAUSE: Duration = Duration::from_secs(10);

type Lookup = Arc<dyn Fn(IpAddr) -> Option<String> + Send + Sync>;

pub struct Resolver {
    budget: Duration,
    cache: HashMap<IpAddr, String>,
    /// Answers of lookups that finished after their event was written.
    late: Arc<Mutex<Vec<(IpAddr, String)>>>,
    in_flight: Arc<AtomicUsize>,
    slow_until: Option<Instant>,
    lookup: Lookup,
}

impl Resolver {
    pub fn new(budget: Duration) -> Resolver {
        Resolver::with_lookup(
            budget,
            Arc::new(|ip| dns_lookup::lookup_addr(&ip).ok().filter(|n| !n.is_empty())),
        )
    }

    /// With another lookup function (tests).
    pub fn with_lookup(budget: Duration, lookup: Lookup) -> Resolver {
        Resolver {
            budget,
            cache: HashMap::new(),
            late: Arc::default(),
            in_flight: Arc::default(),
            slow_until: None,
            lookup,
        }
    }

    fn remember(&mut self, ip: IpAddr, name: String) {
        if self.cache.len() >= CACHE {
            self.cache.clear();
        }
        self.cache.insert(ip, name);
    }

    pub fn name(&mut self, ip: IpAddr) -> String {
        let late = std::mem::take(&mut *self.late.lock().unwrap_or_else(|p| p.into_inner()));
        for (a, n) in late {
            self.remember(a, n);
        }
        if let Some(n) = self.cache.get(&ip) {
            return n.clone();
        }
        if self.in_flight.load(Ordering::Acquire) >= IN_FLIGHT {
            return ip.to_string();
        }
        let (tx, rx) = mpsc::channel();
        let (late, in_flight, lookup) = (
            self.late.clone(),
            self.in_flight.clone(),
            self.lookup.clone(),
        );
        in_flight.fetch_add(1, Ordering::AcqRel);
        std::thread::spawn(move || {
            let name = lookup(ip).unwrap_or_else(|| ip.to_string());
            if tx.send(name.clone()).is_err() {
                // nobody waits any more: keep it for the next line
                if let Ok(mut l) = late.lock() {
                    l.push((ip, name));
                }
            }
            in_flight.fetch_sub(1, Ordering::AcqRel);
        });
        if self.slow_until.is_some_and(|t| Instant::now() < t) {
            return ip.to_string();
        }
        match rx.recv_timeout(self.budget) {
            Ok(name) => {
                self.remember(ip, name.clone());
                name
            }
            Err(_) => {
                self.slow_until = Some(Instant::now() + SLOW_PAUSE);
                ip.to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_resolves_or_falls_back_to_the_address() {
        let mut r = Resolver::new(Duration::from_secs(2));
        let n = r.name("127.0.0.1".parse().unwrap());
        assert!(!n.is_empty());
        assert_eq!(r.name("127.0.0.1".parse().unwrap()), n);
    }

    /// Issue #17 item 5: an unresponsive resolver costs one budget, then nothing.
    #[test]
    fn an_unresponsive_resolver_costs_one_budget_then_nothing() {
        let mut r = Resolver::with_lookup(
            Duration::from_millis(300),
            Arc::new(|_| {
                std::thread::sleep(Duration::from_secs(3));
                None
            }),
        );
        let start = Instant::now();
        for i in 0..50u8 {
            let ip = IpAddr::from([198, 18, 9, i]);
            assert_eq!(r.name(ip), ip.to_string());
        }
        assert!(
            start.elapsed() < Duration::from_millis(1500),
            "{:?}",
            start.elapsed()
        );
        assert!(r.in_flight.load(Ordering::Acquire) <= IN_FLIGHT);
    }

    #[test]
    fn a_late_answer_names_the_next_line() {
        let mut r = Resolver::with_lookup(
            Duration::from_millis(50),
            Arc::new(|_| {
                std::thread::sleep(Duration::from_millis(200));
                Some("slow.example".into())
            }),
        );
        let ip: IpAddr = "198.18.9.1".parse().unwrap();
        assert_eq!(r.name(ip), "198.18.9.1");
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(r.name(ip), "slow.example");
    }
}
