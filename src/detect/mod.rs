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

/// SCAN_TRIGGER state.
#[derive(Debug)]
pub struct Trigger {
    threshold: u32,
    cap: usize,
    counts: HashMap<IpAddr, u32>,
    order: VecDeque<IpAddr>,
    evicted: u64,
}

impl Trigger {
    pub fn new(threshold: u32, cap: usize) -> Trigger {
        Trigger {
            threshold,
            cap: cap.max(1),
            counts: HashMap::new(),
            order: VecDeque::new(),
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
        let mut cap_reached = false;
        if !self.counts.contains_key(&src) {
            while self.counts.len() >= self.cap {
                let Some(old) = self.order.pop_front() else {
                    break;
                };
                self.counts.remove(&old);
                self.evicted += 1;
                cap_reached |= self.evicted == 1;
            }
            self.order.push_back(src);
        }
        let c = self.counts.entry(src).or_insert(0);
        *c = c.saturating_add(1);
        Hit {
            count: *c,
            triggered: *c >= self.threshold,
            cap_reached,
        }
    }

    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Sources evicted so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Forgets everything (after a reload that changes SCAN_TRIGGER).
    pub fn reset(&mut self, threshold: u32) {
        self.threshold = threshold;
        self.counts.clear();
        self.order.clear();
    }
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
}
