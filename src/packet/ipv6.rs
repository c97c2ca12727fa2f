//! IPv6: a packet starting at the IPv6 header in, a [`Summary`] out.
//!
//! Trims to the payload length (0, a jumbogram, means "what was captured"), walks at
//! most [`MAX_EXT_HEADERS`] extension headers (hop-by-hop, routing, destination options,
//! AH, mobility, HIP, shim6) and hands TCP/UDP to [`super::transport`]. Fragments, ESP
//! and no-next-header end the walk with a [`Skip`]. Pure; never panics or allocates.

use std::net::{IpAddr, Ipv6Addr};

use super::{transport, Skip, Summary, MAX_EXT_HEADERS};
use crate::model::scan::IpOpts;

mod field {
    /// Version/traffic class/flow label (4), payload length (2), next header (1), hop limit (1).
    pub const FIXED_LEN: usize = 8;
    /// Source, then destination.
    pub const ADDR_LEN: usize = 16;
}

/// Next-header numbers (IANA "Assigned Internet Protocol Numbers").
mod next {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const NO_NEXT_HEADER: u8 = 59;
    pub const DEST_OPTS: u8 = 60;
    pub const MOBILITY: u8 = 135;
    pub const HIP: u8 = 139;
    pub const SHIM6: u8 = 140;
}

pub(super) fn parse(packet: &[u8]) -> Result<Summary, Skip> {
    let len = packet.len();
    let too_short = Skip::Ipv6TooShort(len);
    let (fixed, rest) = packet
        .split_first_chunk::<{ field::FIXED_LEN }>()
        .ok_or(too_short)?;
    let (&src, rest) = rest
        .split_first_chunk::<{ field::ADDR_LEN }>()
        .ok_or(too_short)?;
    let (&dst, payload) = rest
        .split_first_chunk::<{ field::ADDR_LEN }>()
        .ok_or(too_short)?;
    let &[ver_tc, _tc_flow, _flow_hi, _flow_lo, plen_hi, plen_lo, next_header, _hop_limit] = fixed;

    let version = ver_tc >> 4;
    if version != 6 {
        return Err(Skip::BadIpVersion(version));
    }
    let payload_len = usize::from(u16::from_be_bytes([plen_hi, plen_lo]));
    let payload = match payload_len {
        0 => payload,
        n => payload.get(..n).unwrap_or(payload),
    };

    let (protocol, segment) = walk_extension_headers(next_header, payload)?;
    let ports = transport::parse(protocol, segment)?;
    Ok(Summary {
        src: IpAddr::V6(Ipv6Addr::from(src)),
        dst: IpAddr::V6(Ipv6Addr::from(dst)),
        proto: ports.proto,
        sport: ports.sport,
        dport: ports.dport,
        tcp_flags: ports.tcp_flags,
        ip_opts: IpOpts::Unknown,
    })
}

/// What a next-header number means to the walk.
enum Next {
    /// An extension header whose length byte counts 8-byte units after the first 8.
    Ext8,
    /// The authentication header: (length byte + 2) 4-byte units.
    Ah,
    /// The end of the walk: an upper-layer protocol number (or a [`Skip`]).
    Upper(Result<u8, Skip>),
}

fn classify(next_header: u8) -> Next {
    match next_header {
        next::HOP_BY_HOP
        | next::ROUTING
        | next::DEST_OPTS
        | next::MOBILITY
        | next::HIP
        | next::SHIM6 => Next::Ext8,
        next::AH => Next::Ah,
        next::FRAGMENT => Next::Upper(Err(Skip::Ipv6Fragment)),
        next::ESP => Next::Upper(Err(Skip::Ipv6Esp)),
        next::NO_NEXT_HEADER => Next::Upper(Err(Skip::Ipv6NoNextHeader)),
        protocol => Next::Upper(Ok(protocol)),
    }
}

/// Skips extension headers: returns the upper-layer protocol number and its bytes.
fn walk_extension_headers(mut next_header: u8, mut rest: &[u8]) -> Result<(u8, &[u8]), Skip> {
    let mut walked = 0;
    loop {
        let header_len = match classify(next_header) {
            Next::Upper(protocol) => return protocol.map(|p| (p, rest)),
            _ if walked == MAX_EXT_HEADERS => return Err(Skip::Ipv6TooManyExtHeaders),
            Next::Ext8 => rest.get(1).map(|&len| (usize::from(len) + 1) * 8),
            Next::Ah => rest.get(1).map(|&len| (usize::from(len) + 2) * 4),
        };
        // Every walkable header starts with the next header number, then its length.
        let (Some(header_len), Some(&next)) = (header_len, rest.first()) else {
            return Err(Skip::Ipv6ExtTruncated(next_header));
        };
        rest = rest
            .get(header_len..)
            .ok_or(Skip::Ipv6ExtTruncated(next_header))?;
        next_header = next;
        walked += 1;
    }
}
