//! What a probe was: the scan types of Portsentry's log lines, and TCP flag classification.
//!
//! In: a TCP flags byte (or the fact that it was UDP / a full connect). Out: a [`ScanKind`]
//! whose `Display` is the exact 2.x `type:` text. Pure; no I/O, no allocation.

use std::fmt;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;
pub const URG: u8 = 0x20;

/// The kind of probe, as Portsentry names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScanKind {
    /// A completed TCP connection or a UDP datagram in connect mode.
    Connect,
    Null,
    Xmas,
    Fin,
    Syn,
    /// Any other flag combination (never ACK or RST: those are not events).
    Unknown(u8),
    Udp,
}

impl ScanKind {
    /// Classifies a TCP segment by its flags in 2.x's order. `None` for segments with
    /// ACK or RST, which are never events.
    pub fn classify_tcp(flags: u8) -> Option<ScanKind> {
        if flags & (ACK | RST) != 0 {
            return None;
        }
        let f = flags & 0x3f;
        Some(if f == 0 {
            ScanKind::Null
        } else if f & (FIN | URG | PSH) == FIN | URG | PSH {
            ScanKind::Xmas
        } else if f & FIN != 0 && f & (SYN | ACK | PSH | RST | URG) == 0 {
            ScanKind::Fin
        } else if f & SYN != 0 && f & (FIN | ACK | PSH | RST | URG) == 0 {
            ScanKind::Syn
        } else {
            ScanKind::Unknown(flags)
        })
    }

    /// The 1.2 spelling (stealth TCP events): ` TCP NULL scan` has a leading space.
    pub fn legacy_text(&self) -> LegacyKind<'_> {
        LegacyKind(self)
    }
}

fn bit(flags: u8, b: u8) -> u8 {
    u8::from(flags & b != 0)
}

impl fmt::Display for ScanKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ScanKind::Connect => f.write_str("Connect"),
            ScanKind::Null => f.write_str("TCP NULL scan"),
            ScanKind::Xmas => f.write_str("TCP XMAS scan"),
            ScanKind::Fin => f.write_str("TCP FIN scan"),
            ScanKind::Syn => f.write_str("TCP SYN/Normal scan"),
            ScanKind::Udp => f.write_str("UDP"),
            ScanKind::Unknown(fl) => write!(
                f,
                "Unknown Type: TCP Packet Flags: SYN: {} FIN: {} ACK: {} PSH: {} URG: {} RST: {}",
                bit(fl, SYN),
                bit(fl, FIN),
                bit(fl, ACK),
                bit(fl, PSH),
                bit(fl, URG),
                bit(fl, RST)
            ),
        }
    }
}

/// [`ScanKind`] as 1.2 printed it.
pub struct LegacyKind<'a>(&'a ScanKind);

impl fmt::Display for LegacyKind<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ScanKind::Null => f.write_str(" TCP NULL scan"),
            k => write!(f, "{k}"),
        }
    }
}

/// The `IP opts:` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpOpts {
    Set,
    NotSet,
    Unknown,
}

impl fmt::Display for IpOpts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IpOpts::Set => "set",
            IpOpts::NotSet => "not set",
            IpOpts::Unknown => "unknown",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_in_2x_order() {
        assert_eq!(ScanKind::classify_tcp(0), Some(ScanKind::Null));
        assert_eq!(
            ScanKind::classify_tcp(FIN | URG | PSH),
            Some(ScanKind::Xmas)
        );
        assert_eq!(
            ScanKind::classify_tcp(FIN | URG | PSH | SYN),
            Some(ScanKind::Xmas)
        );
        assert_eq!(ScanKind::classify_tcp(FIN), Some(ScanKind::Fin));
        assert_eq!(ScanKind::classify_tcp(SYN), Some(ScanKind::Syn));
        assert_eq!(
            ScanKind::classify_tcp(SYN | 0x40 | 0x80),
            Some(ScanKind::Syn)
        );
        assert_eq!(ScanKind::classify_tcp(SYN | ACK), None);
        assert_eq!(ScanKind::classify_tcp(RST), None);
        assert_eq!(
            ScanKind::classify_tcp(SYN | FIN),
            Some(ScanKind::Unknown(SYN | FIN))
        );
        assert_eq!(
            ScanKind::Unknown(SYN | FIN | URG).to_string(),
            "Unknown Type: TCP Packet Flags: SYN: 1 FIN: 1 ACK: 0 PSH: 0 URG: 1 RST: 0"
        );
        assert_eq!(ScanKind::Null.legacy_text().to_string(), " TCP NULL scan");
        assert_eq!(
            ScanKind::Syn.legacy_text().to_string(),
            "TCP SYN/Normal scan"
        );
    }
}
