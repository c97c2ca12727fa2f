//! The flood cap on scan lines: a token bucket that lets a burst through whole (one
//! host's scan of every port, 65 536 lines) and then at most `rate` lines per second,
//! counting what it holds back.
//!
//! In: the configured rate (LOG_RATE_LIMIT, lines per second; 0 = unlimited) and, for
//! every line, the time now. Out: whether that line may be written, and how many were
//! held back since the last summary. Must not: read the clock (the caller passes it),
//! or write anything.

use std::time::{Duration, Instant};

/// Lines that always go through at once, whatever the rate: one host's scan of every
/// TCP or UDP port, logged in full.
pub const BURST: u64 = 65_536;

/// How often a summary of held-back lines is due while they are being held back.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct Budget {
    /// Lines per second; 0 = unlimited.
    rate: u64,
    /// Lines that may go now, in thousandths (refilled by elapsed time).
    milli_tokens: u64,
    last: Option<Instant>,
    /// Held back since the last summary.
    suppressed: u64,
    /// When the held-back lines began (the start of the summary's window).
    since: Option<Instant>,
}

impl Budget {
    pub fn new(rate: u64) -> Budget {
        Budget {
            rate,
            milli_tokens: Self::capacity(rate) * 1000,
            last: None,
            suppressed: 0,
            since: None,
        }
    }

    fn capacity(rate: u64) -> u64 {
        rate.max(BURST)
    }

    /// A new rate (reload); the bucket starts full.
    pub fn set_rate(&mut self, rate: u64) {
        if rate != self.rate {
            self.rate = rate;
            self.milli_tokens = Self::capacity(rate) * 1000;
        }
    }

    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// May a line go out at `now`? Counts it as held back if not.
    pub fn take(&mut self, now: Instant) -> bool {
        if self.rate == 0 {
            return true;
        }
        if let Some(last) = self.last {
            let ms = now.saturating_duration_since(last).as_millis();
            let add = u64::try_from(ms)
                .unwrap_or(u64::MAX)
                .saturating_mul(self.rate);
            self.milli_tokens = self
                .milli_tokens
                .saturating_add(add)
                .min(Self::capacity(self.rate) * 1000);
        }
        self.last = Some(now);
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            true
        } else {
            self.suppressed += 1;
            self.since.get_or_insert(now);
            false
        }
    }

    /// The held-back count and how long it covers, once a summary is due (at least
    /// [`SUMMARY_EVERY`] after the first held-back line, or `force` at the end); resets.
    pub fn summary(&mut self, now: Instant, force: bool) -> Option<(u64, Duration)> {
        let since = self.since?;
        let span = now.saturating_duration_since(since);
        if self.suppressed == 0 || (!force && span < SUMMARY_EVERY) {
            return None;
        }
        let n = self.suppressed;
        self.suppressed = 0;
        self.since = None;
        Some((n, span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_port_scan_goes_through_then_the_rate() {
        let t0 = Instant::now();
        let mut b = Budget::new(1000);
        // 65 535 ports in the same instant: all logged
        assert!((0..65_535).all(|_| b.take(t0)));
        assert!(b.take(t0));
        // the bucket is empty: the next is held back
        assert!(!b.take(t0));
        assert_eq!(b.summary(t0, false), None);
        // 10 ms later: 10 more lines
        let t1 = t0 + Duration::from_millis(10);
        assert_eq!((0..50).filter(|_| b.take(t1)).count(), 10);
        let t2 = t0 + Duration::from_secs(1);
        let (n, span) = b.summary(t2, false).unwrap();
        assert_eq!(n, 41);
        assert_eq!(span, Duration::from_secs(1));
        assert_eq!(b.summary(t2, true), None);
    }

    #[test]
    fn a_flood_is_bounded_to_the_rate() {
        let t0 = Instant::now();
        let mut b = Budget::new(1000);
        let mut logged = 0u64;
        // 9 s of 100 000 lines per second
        for ms in 0..9_000u64 {
            let now = t0 + Duration::from_millis(ms);
            logged += (0..100).filter(|_| b.take(now)).count() as u64;
        }
        assert!(logged <= BURST + 9_000, "{logged}");
        assert!(logged >= BURST + 8_900, "{logged}");
    }

    #[test]
    fn zero_is_unlimited() {
        let t0 = Instant::now();
        let mut b = Budget::new(0);
        assert!((0..200_000).all(|_| b.take(t0)));
        assert_eq!(b.summary(t0, true), None);
    }
}
