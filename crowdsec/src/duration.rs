//! Go `time.Duration` strings, as the LAPI writes them (`167h59m56.61241141s`,
//! `-13.275685ms`, `0s`) and reads them (`3600s`).
//!
//! In: text. Out: a signed duration, or why not. Pure.

use std::time::Duration;

/// A signed duration: the LAPI gives negative ones for expired and deleted decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoDuration {
    pub negative: bool,
    pub magnitude: Duration,
}

impl GoDuration {
    /// The remaining time, if any is left.
    pub fn remaining(self) -> Option<Duration> {
        (!self.negative && !self.magnitude.is_zero()).then_some(self.magnitude)
    }
}

/// Nanoseconds per unit, longest suffix first so `ms` is not read as `m`.
const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a Go duration: an optional sign, then one or more `<number><unit>` parts
/// (decimals allowed), or a bare `0`.
pub fn parse_go(text: &str) -> Result<GoDuration, String> {
    let bad = || format!("{text:?} is not a Go duration such as 1h30m or 59m59.5s");
    let mut s = text.trim();
    let negative = match s.as_bytes().first() {
        Some(b'-') => {
            s = &s[1..];
            true
        }
        Some(b'+') => {
            s = &s[1..];
            false
        }
        _ => false,
    };
    if s == "0" {
        return Ok(GoDuration {
            negative: false,
            magnitude: Duration::ZERO,
        });
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut nanos: u128 = 0;
    while !s.is_empty() {
        let int_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (int, rest) = s.split_at(int_end);
        let (frac, rest) = match rest.strip_prefix('.') {
            Some(r) => {
                let e = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
                r.split_at(e)
            }
            None => ("", rest),
        };
        if (int.is_empty() && frac.is_empty()) || int.len() > 20 {
            return Err(bad());
        }
        let (unit, rest) = UNITS
            .iter()
            .rev()
            .filter(|(u, _)| rest.starts_with(u))
            .max_by_key(|(u, _)| u.len())
            .map(|(u, n)| (*n, &rest[u.len()..]))
            .ok_or_else(bad)?;
        let whole: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let mut part = whole.checked_mul(unit).ok_or_else(bad)?;
        // the fraction, to nanosecond precision
        let mut scale = unit;
        for d in frac.bytes().take(30) {
            scale /= 10;
            part += u128::from(d - b'0') * scale;
        }
        nanos = nanos.checked_add(part).ok_or_else(bad)?;
        s = rest;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| bad())?;
    Ok(GoDuration {
        negative: negative && nanos > 0,
        magnitude: Duration::new(secs, (nanos % 1_000_000_000) as u32),
    })
}

/// Whole seconds as Go reads them: `3600s`; at least `1s`.
pub fn format_go(d: Duration) -> String {
    format!("{}s", d.as_secs().max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> (bool, u128) {
        let d = parse_go(s).unwrap();
        (d.negative, d.magnitude.as_nanos())
    }

    #[test]
    fn what_the_lapi_writes() {
        assert_eq!(ns("167h59m56.61241141s"), (false, 604_796_612_411_410));
        assert_eq!(ns("3h59m59.96s"), (false, 14_399_960_000_000));
        assert_eq!(ns("-13.275685ms"), (true, 13_275_685));
        assert_eq!(ns("-2.277521769s"), (true, 2_277_521_769));
        assert_eq!(ns("4.808545419s"), (false, 4_808_545_419));
        assert_eq!(ns("0s"), (false, 0));
        assert_eq!(ns("0"), (false, 0));
        assert_eq!(ns("1.5µs"), (false, 1500));
        assert_eq!(ns("2h30m"), (false, 9_000_000_000_000));
        assert_eq!(ns("-0s"), (false, 0));
        assert_eq!(
            parse_go("29m59.5s").unwrap().remaining(),
            Some(Duration::from_millis(1_799_500))
        );
        assert_eq!(parse_go("-1s").unwrap().remaining(), None);
        assert_eq!(parse_go("0s").unwrap().remaining(), None);
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in [
            "",
            "-",
            "7d",
            "30",
            "h",
            "1h-5m",
            ".s",
            "1.5",
            "99999999999999999999999h",
            "1 h",
        ] {
            assert!(parse_go(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn formats_whole_seconds() {
        assert_eq!(format_go(Duration::from_secs(3600)), "3600s");
        assert_eq!(format_go(Duration::from_millis(10)), "1s");
        let back = parse_go(&format_go(Duration::from_secs(90))).unwrap();
        assert_eq!(back.remaining(), Some(Duration::from_secs(90)));
    }
}
