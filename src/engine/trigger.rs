//! The detection engine's memory: SCAN_TRIGGER counting per source, bounded.
//!
//! In: a source address per event (time passed in by the caller where needed). Out:
//! whether the event reaches the trigger. One counter per source across all ports and
//! both protocols; the table holds at most `cap` sources and evicts the oldest. No I/O,
//! no clock, no logging: the caller logs once when [`Hit::cap_reached`] first says so.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// Default bound of the per-source table.
pub const DEFAULT_CAP: usize = 65_536;

/// The verdict for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Events counted for this source, this one included.
    pub count: u32,
    pub triggered: bool,
    /// True the first time the table had to evict to make room.
    pub cap_reached: bool,
}

/// Per-family counters with their insertion order: IPv4 keys are 4 bytes, not the 17 of
/// an `IpAddr`, so a spoofed IPv4 flood costs about a third of the memory.
#[derive(Debug)]
struct Family<K> {
    counts: HashMap<K, u32>,
    /// (key, insertion sequence), oldest first.
    order: VecDeque<(K, u64)>,
}

impl<K: std::hash::Hash + Eq + Copy> Family<K> {
    fn new() -> Self {
        Family {
            counts: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn oldest(&self) -> Option<u64> {
        self.order.front().map(|(_, seq)| *seq)
    }

    fn evict_oldest(&mut self) {
        if let Some((k, _)) = self.order.pop_front() {
            self.counts.remove(&k);
        }
    }

    fn clear(&mut self) {
        self.counts = HashMap::new();
        self.order = VecDeque::new();
    }
}

/// SCAN_TRIGGER state.
#[derive(Debug)]
pub struct Trigger {
    threshold: u32,
    cap: usize,
    v4: Family<u32>,
    v6: Family<u128>,
    seq: u64,
    evicted: u64,
}

impl Trigger {
    pub fn new(threshold: u32, cap: usize) -> Trigger {
        Trigger {
            threshold,
            cap: cap.max(1),
            v4: Family::new(),
            v6: Family::new(),
            seq: 0,
            evicted: 0,
        }
    }

    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    /// Counts one event from `src`. With a threshold of 0 or 1 every event triggers and
    /// nothing is stored.
    pub fn hit(&mut self, src: IpAddr) -> Hit {
        if self.threshold <= 1 {
            return Hit {
                count: 1,
                triggered: true,
                cap_reached: false,
            };
        }
        let known = match src {
            IpAddr::V4(a) => self.v4.counts.contains_key(&u32::from(a)),
            IpAddr::V6(a) => self.v6.counts.contains_key(&u128::from(a)),
        };
        let mut cap_reached = false;
        if !known {
            while self.len() >= self.cap {
                match (self.v4.oldest(), self.v6.oldest()) {
                    (Some(a), Some(b)) if a < b => self.v4.evict_oldest(),
                    (Some(_), None) => self.v4.evict_oldest(),
                    (_, Some(_)) => self.v6.evict_oldest(),
                    (None, None) => break,
                }
                self.evicted += 1;
                cap_reached |= self.evicted == 1;
            }
            self.seq += 1;
        }
        let seq = self.seq;
        let count = match src {
            IpAddr::V4(a) => bump(&mut self.v4, u32::from(a), known, seq),
            IpAddr::V6(a) => bump(&mut self.v6, u128::from(a), known, seq),
        };
        Hit {
            count,
            triggered: count >= self.threshold,
            cap_reached,
        }
    }

    pub fn len(&self) -> usize {
        self.v4.counts.len() + self.v6.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sources evicted so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Forgets everything (after a reload that changes SCAN_TRIGGER).
    pub fn reset(&mut self, threshold: u32) {
        self.threshold = threshold;
        self.v4.clear();
        self.v6.clear();
    }
}

fn bump<K: std::hash::Hash + Eq + Copy>(f: &mut Family<K>, k: K, known: bool, seq: u64) -> u32 {
    if !known {
        f.order.push_back((k, seq));
    }
    let c = f.counts.entry(k).or_insert(0);
    *c = c.saturating_add(1);
    *c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0xc612_0000 | n))
    }

    #[test]
    fn zero_and_one_fire_on_the_first_event() {
        for t in [0, 1] {
            let mut tr = Trigger::new(t, 10);
            assert!(tr.hit(ip(1)).triggered);
            assert!(tr.is_empty());
        }
    }

    #[test]
    fn counts_per_source_and_fires_from_the_nth_on() {
        let mut tr = Trigger::new(3, 10);
        assert!(!tr.hit(ip(1)).triggered);
        assert!(!tr.hit(ip(2)).triggered);
        assert!(!tr.hit(ip(1)).triggered);
        let h = tr.hit(ip(1));
        assert_eq!((h.count, h.triggered), (3, true));
        assert!(tr.hit(ip(1)).triggered);
        assert!(!tr.hit(ip(2)).triggered);
    }

    #[test]
    fn table_is_bounded_and_evicts_the_oldest() {
        let mut tr = Trigger::new(2, 100);
        tr.hit(ip(0));
        let mut first_cap = 0;
        for n in 1..1000 {
            if tr.hit(ip(n)).cap_reached {
                first_cap += 1;
            }
        }
        assert_eq!(tr.len(), 100);
        assert_eq!(first_cap, 1);
        assert_eq!(tr.evicted(), 900);
        // ip(0) was evicted: its count starts again
        assert_eq!(tr.hit(ip(0)).count, 1);
        // the newest survive
        assert!(tr.hit(ip(999)).triggered);
    }

    #[test]
    fn eviction_is_oldest_first_across_families() {
        let mut tr = Trigger::new(2, 3);
        let v6 = |n: u16| IpAddr::V6(std::net::Ipv6Addr::new(0xfd00, 0x5e5e, 0, 0, 0, 0, 0, n));
        tr.hit(ip(1));
        tr.hit(v6(1));
        tr.hit(ip(2));
        tr.hit(v6(2)); // evicts ip(1), the oldest
        assert_eq!(tr.len(), 3);
        assert_eq!(tr.hit(v6(1)).count, 2);
        assert_eq!(tr.hit(ip(2)).count, 2);
        assert_eq!(tr.hit(ip(1)).count, 1); // forgotten; now evicts v6(1)
        assert_eq!(tr.hit(v6(1)).count, 1);
    }
}
