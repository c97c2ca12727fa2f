//! Port lists: `1,2,10-20` parsing and a compact set for the packet hot path.
//!
//! In: a config value. Out: a [`PortSet`] (a 65 536-bit bitmap, O(1) lookup) or a
//! [`PortError`] per bad item. It does no I/O and never panics on input.

use std::fmt;

/// What is wrong with one item of a port list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("port item \"{0}\" is not a number or a range A-B")]
    NotANumber(String),
    #[error("port {0} is out of range (1-65535)")]
    OutOfRange(String),
    #[error("port range {0}-{1} is reversed")]
    Reversed(u16, u16),
}

/// A set of ports 1..=65535.
#[derive(Clone, PartialEq, Eq)]
pub struct PortSet {
    bits: Box<[u64; 1024]>,
}

impl Default for PortSet {
    fn default() -> Self {
        PortSet {
            bits: Box::new([0; 1024]),
        }
    }
}

impl fmt::Debug for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PortSet({self})")
    }
}

impl PortSet {
    pub fn new() -> Self {
        Self::default()
    }

    #[inline]
    pub fn contains(&self, port: u16) -> bool {
        self.bits[usize::from(port >> 6)] & (1u64 << (port & 63)) != 0
    }

    pub fn insert(&mut self, port: u16) {
        self.bits[usize::from(port >> 6)] |= 1u64 << (port & 63);
    }

    pub fn remove(&mut self, port: u16) {
        self.bits[usize::from(port >> 6)] &= !(1u64 << (port & 63));
    }

    pub fn insert_range(&mut self, lo: u16, hi: u16) {
        for p in lo..=hi {
            self.insert(p);
        }
    }

    pub fn extend(&mut self, other: &PortSet) {
        for (a, b) in self.bits.iter_mut().zip(other.bits.iter()) {
            *a |= *b;
        }
    }

    pub fn len(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|w| *w == 0)
    }

    /// Ports in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0..=u16::MAX).filter(move |p| self.contains(*p))
    }

    /// The set as inclusive ranges, ascending.
    pub fn ranges(&self) -> Vec<(u16, u16)> {
        let mut out: Vec<(u16, u16)> = Vec::new();
        for p in self.iter() {
            match out.last_mut() {
                Some((_, hi)) if u32::from(*hi) + 1 == u32::from(p) => *hi = p,
                _ => out.push((p, p)),
            }
        }
        out
    }
}

impl fmt::Display for PortSet {
    /// `1-3,7,9-10`; empty prints as `(none)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.ranges();
        if r.is_empty() {
            return write!(f, "(none)");
        }
        for (i, (lo, hi)) in r.iter().enumerate() {
            if i > 0 {
                write!(f, ",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

fn parse_port(s: &str) -> Result<u16, PortError> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PortError::NotANumber(s.to_string()));
    }
    match s.parse::<u32>() {
        Ok(n @ 1..=65535) => Ok(n as u16),
        _ => Err(PortError::OutOfRange(s.to_string())),
    }
}

/// One item of a port list, in config order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortItem {
    pub lo: u16,
    pub hi: u16,
}

/// Parses a comma list. Empty items are skipped. Returns the good items and the
/// errors of the bad ones (the caller decides whether a bad item is fatal).
pub fn parse_list(value: &str) -> (Vec<PortItem>, Vec<PortError>) {
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for item in value.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let parsed = match item.split_once('-') {
            None => parse_port(item).map(|p| PortItem { lo: p, hi: p }),
            Some((a, b)) => match (parse_port(a), parse_port(b)) {
                (Ok(lo), Ok(hi)) if lo <= hi => Ok(PortItem { lo, hi }),
                (Ok(lo), Ok(hi)) => Err(PortError::Reversed(lo, hi)),
                (Err(e), _) | (_, Err(e)) => Err(match e {
                    PortError::NotANumber(_) => PortError::NotANumber(item.to_string()),
                    other => other,
                }),
            },
        };
        match parsed {
            Ok(i) => items.push(i),
            Err(e) => errors.push(e),
        }
    }
    (items, errors)
}

/// The items as a set.
pub fn to_set(items: &[PortItem]) -> PortSet {
    let mut s = PortSet::new();
    for i in items {
        s.insert_range(i.lo, i.hi);
    }
    s
}

/// The ports of `items` in config order (ranges expanded), each at its first occurrence:
/// what 1.2 logged its per-port lines in.
pub fn in_order(items: &[PortItem]) -> Vec<u16> {
    let mut seen = PortSet::new();
    let mut out = Vec::new();
    for i in items {
        for p in i.lo..=i.hi {
            if !seen.contains(p) {
                seen.insert(p);
                out.push(p);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_keeps_config_order_and_first_occurrences() {
        let items = vec![
            PortItem { lo: 139, hi: 139 },
            PortItem { lo: 113, hi: 113 },
            PortItem { lo: 5, hi: 7 },
            PortItem { lo: 6, hi: 6 },
        ];
        assert_eq!(in_order(&items), vec![139, 113, 5, 6, 7]);
    }

    #[test]
    fn parses_items_and_ranges() {
        let (items, errs) = parse_list("1,,2, 10-12,7-7,");
        assert!(errs.is_empty());
        let s = to_set(&items);
        assert_eq!(s.to_string(), "1-2,7,10-12");
        assert_eq!(s.len(), 6);
        assert!(s.contains(11) && !s.contains(3) && !s.contains(0));
    }

    #[test]
    fn rejects_bad_items() {
        assert_eq!(parse_list("0").1, vec![PortError::OutOfRange("0".into())]);
        assert_eq!(
            parse_list("65536").1,
            vec![PortError::OutOfRange("65536".into())]
        );
        assert_eq!(parse_list("20-10").1, vec![PortError::Reversed(20, 10)]);
        assert_eq!(
            parse_list("abc").1,
            vec![PortError::NotANumber("abc".into())]
        );
        assert_eq!(
            parse_list("1-x").1,
            vec![PortError::NotANumber("1-x".into())]
        );
        assert_eq!(parse_list("-5").1, vec![PortError::NotANumber("-5".into())]);
        assert_eq!(parse_list("99999999999999999999").1.len(), 1);
    }

    #[test]
    fn full_range_and_edges() {
        let (items, _) = parse_list("1-65535");
        let s = to_set(&items);
        assert_eq!(s.len(), 65535);
        assert_eq!(s.to_string(), "1-65535");
        assert_eq!(PortSet::new().to_string(), "(none)");
    }
}
