//! Escalation of block timeouts for repeat offenders.
//!
//! In: the configured base timeout, multiplier and cap, and the offence count taken from
//! the store's history. Out: the timeout for this offence. Pure arithmetic: no I/O, no
//! clock, never panics on any input.

use std::time::Duration;

/// Escalation: `base × multiplier^(offences-1)`, capped at `max`; `None` (permanent) when
/// `base` is `None`.
///
/// An offence count of 0 counts as the first offence. A multiplier that is not a number
/// or not above 0 counts as 1 (the configuration layer should have rejected it). A result
/// too large for a [`Duration`] saturates to `max`, or to [`Duration::MAX`] without a cap.
pub fn timeout_for(
    base: Option<Duration>,
    multiplier: f64,
    max: Option<Duration>,
    offences: u32,
) -> Option<Duration> {
    let base = base?;
    let steps = offences.saturating_sub(1);
    let multiplier = if multiplier.is_nan() || multiplier <= 0.0 {
        1.0
    } else {
        multiplier
    };
    let raw = if steps == 0 || multiplier == 1.0 {
        base
    } else {
        let exp = i32::try_from(steps).unwrap_or(i32::MAX);
        let secs = base.as_secs_f64() * multiplier.powi(exp);
        Duration::try_from_secs_f64(secs).unwrap_or(if secs.is_nan() {
            base
        } else {
            Duration::MAX
        })
    };
    Some(match max {
        Some(cap) => raw.min(cap),
        None => raw,
    })
}
