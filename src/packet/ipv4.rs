//! IPv4: a packet starting at the IPv4 header in, a [`Summary`] out.
//!
//! Checks version, IHL and total length; trims to min(total length, captured length)
//! (a total length beyond the capture is fine: what is there is used); skips non-first
//! fragments; hands TCP/UDP to [`super::transport`]. Pure; never panics or allocates.

use std::net::{IpAddr, Ipv4Addr};

use super::{transport, Skip, Summary};
use crate::model::scan::IpOpts;

mod field {
    /// The fixed header: version/IHL, TOS, total length, id, flags/fragment offset, TTL,
    /// protocol, checksum, source, destination.
    pub const MIN_HEADER_LEN: usize = 20;
    /// The lower 13 bits of the flags/fragment-offset word, in 8-byte units.
    pub const FRAG_OFFSET_MASK: u16 = 0x1fff;
}

/// The IHL of a header without options.
const MIN_IHL: u8 = 5;

pub(super) fn parse(packet: &[u8]) -> Result<Summary, Skip> {
    let len = packet.len();
    let header = packet
        .first_chunk::<{ field::MIN_HEADER_LEN }>()
        .ok_or(Skip::Ipv4TooShort(len))?;
    let &[ver_ihl, _tos, total_hi, total_lo, _id_hi, _id_lo, frag_hi, frag_lo, _ttl, protocol, _sum_hi, _sum_lo, s0, s1, s2, s3, d0, d1, d2, d3] =
        header;

    let version = ver_ihl >> 4;
    if version != 4 {
        return Err(Skip::BadIpVersion(version));
    }
    let ihl = ver_ihl & 0x0f;
    if ihl < MIN_IHL {
        return Err(Skip::Ipv4BadHeaderLen(ihl));
    }
    let header_len = usize::from(ihl) * 4;
    if header_len > len {
        return Err(Skip::Ipv4HeaderTruncated { header_len, len });
    }
    let total_len = u16::from_be_bytes([total_hi, total_lo]);
    if usize::from(total_len) < header_len {
        return Err(Skip::Ipv4BadTotalLen {
            total_len,
            header_len,
        });
    }
    let frag_offset = u16::from_be_bytes([frag_hi, frag_lo]) & field::FRAG_OFFSET_MASK;
    if frag_offset != 0 {
        // At most 8191 * 8 = 65528: no overflow.
        return Err(Skip::Ipv4Fragment {
            offset: frag_offset * 8,
        });
    }

    let end = usize::from(total_len).min(len);
    // header_len <= end: both total_len and len are at least header_len.
    let segment = packet.get(header_len..end).unwrap_or_default();
    let ports = transport::parse(protocol, segment)?;
    Ok(Summary {
        src: IpAddr::V4(Ipv4Addr::new(s0, s1, s2, s3)),
        dst: IpAddr::V4(Ipv4Addr::new(d0, d1, d2, d3)),
        proto: ports.proto,
        sport: ports.sport,
        dport: ports.dport,
        tcp_flags: ports.tcp_flags,
        ip_opts: if ihl > MIN_IHL {
            IpOpts::Set
        } else {
            IpOpts::NotSet
        },
    })
}
