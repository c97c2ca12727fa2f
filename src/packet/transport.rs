//! TCP and UDP headers: a protocol number and the bytes after the IP header(s) in, ports
//! and the TCP flags byte out. Pure; never panics or allocates.

use super::Skip;
use crate::model::Proto;

pub(super) const IPPROTO_TCP: u8 = 6;
pub(super) const IPPROTO_UDP: u8 = 17;

mod field {
    /// TCP: source port, destination port, sequence, acknowledgment (4 each after the
    /// ports), data offset (high nibble of byte 12), flags (byte 13), window, checksum,
    /// urgent pointer.
    pub const TCP_MIN_HEADER_LEN: usize = 20;
    /// UDP: source port, destination port, length, checksum.
    pub const UDP_HEADER_LEN: usize = 8;
}

/// The data offset of a TCP header without options.
const MIN_DATA_OFFSET: u8 = 5;

/// The transport part of a [`super::Summary`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ports {
    pub proto: Proto,
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
}

pub(super) fn parse(protocol: u8, segment: &[u8]) -> Result<Ports, Skip> {
    match protocol {
        IPPROTO_TCP => tcp(segment),
        IPPROTO_UDP => udp(segment),
        other => Err(Skip::OtherProtocol(other)),
    }
}

fn tcp(segment: &[u8]) -> Result<Ports, Skip> {
    let header = segment
        .first_chunk::<{ field::TCP_MIN_HEADER_LEN }>()
        .ok_or(Skip::TcpTooShort)?;
    let &[sport_hi, sport_lo, dport_hi, dport_lo, _seq0, _seq1, _seq2, _seq3, _ack0, _ack1, _ack2, _ack3, offset_reserved, flags, ..] =
        header;
    let data_offset = offset_reserved >> 4;
    if data_offset < MIN_DATA_OFFSET {
        return Err(Skip::TcpBadDataOffset(data_offset));
    }
    if usize::from(data_offset) * 4 > segment.len() {
        return Err(Skip::TcpTooShort);
    }
    Ok(Ports {
        proto: Proto::Tcp,
        sport: u16::from_be_bytes([sport_hi, sport_lo]),
        dport: u16::from_be_bytes([dport_hi, dport_lo]),
        tcp_flags: flags,
    })
}

fn udp(segment: &[u8]) -> Result<Ports, Skip> {
    let &[sport_hi, sport_lo, dport_hi, dport_lo, _len_hi, _len_lo, _sum_hi, _sum_lo] = segment
        .first_chunk::<{ field::UDP_HEADER_LEN }>()
        .ok_or(Skip::UdpTooShort)?;
    Ok(Ports {
        proto: Proto::Udp,
        sport: u16::from_be_bytes([sport_hi, sport_lo]),
        dport: u16::from_be_bytes([dport_hi, dport_lo]),
        tcp_flags: 0,
    })
}
