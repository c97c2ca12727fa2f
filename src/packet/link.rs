//! Link-layer headers: a captured frame in, the IP packet behind its link header out.
//!
//! Ethernet II (with up to two 802.1Q/802.1ad tags), Linux cooked v1/v2, BSD null and
//! OpenBSD loop; raw IP passes through. Pure; never panics, allocates or logs.

use super::{LinkType, Skip};

/// Which IP version the link header announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Network {
    Ipv4,
    Ipv6,
    /// Raw IP: the version nibble decides.
    Either,
}

pub(super) const ETHERTYPE_IPV4: u16 = 0x0800;
pub(super) const ETHERTYPE_IPV6: u16 = 0x86dd;
pub(super) const ETHERTYPE_VLAN: u16 = 0x8100;
pub(super) const ETHERTYPE_QINQ: u16 = 0x88a8;

/// The most VLAN tags walked (802.1ad outer + 802.1Q inner).
const MAX_VLAN_TAGS: usize = 2;

/// BSD address families: AF_INET everywhere, AF_INET6 on NetBSD/OpenBSD/BSD/OS (24),
/// FreeBSD/DragonFly (28) and Darwin (30), as libpcap lists them.
const AF_INET: u32 = 2;
const AF_INET6_BSD: u32 = 24;
const AF_INET6_FREEBSD: u32 = 28;
const AF_INET6_DARWIN: u32 = 30;

mod field {
    /// Ethernet II: destination (6), source (6), ethertype (2).
    pub const ETHERNET_LEN: usize = 14;
    /// SLL: packet type (2), ARPHRD (2), address length (2), address (8), protocol (2).
    pub const SLL_LEN: usize = 16;
    /// SLL2: protocol (2), reserved (2), ifindex (4), ARPHRD (2), packet type (1),
    /// address length (1), address (8).
    pub const SLL2_LEN: usize = 20;
    /// BSD null / OpenBSD loop: the address family.
    pub const LOOPBACK_LEN: usize = 4;
    /// A VLAN tag after its TPID: TCI (2), then the inner ethertype (2).
    pub const VLAN_TAG_LEN: usize = 4;
}

/// Strips the link-layer header of `frame`.
pub(super) fn strip(link: LinkType, frame: &[u8]) -> Result<(Network, &[u8]), Skip> {
    let too_short = Skip::LinkTooShort {
        link,
        len: frame.len(),
    };
    match link {
        LinkType::RawIp => Ok((Network::Either, frame)),
        LinkType::Ethernet => {
            let (header, rest) = frame
                .split_first_chunk::<{ field::ETHERNET_LEN }>()
                .ok_or(too_short)?;
            let &[_, _, _, _, _, _, _, _, _, _, _, _, type_hi, type_lo] = header;
            ethertype(
                link,
                frame.len(),
                u16::from_be_bytes([type_hi, type_lo]),
                rest,
            )
        }
        LinkType::LinuxSll => {
            let (header, rest) = frame
                .split_first_chunk::<{ field::SLL_LEN }>()
                .ok_or(too_short)?;
            let &[.., proto_hi, proto_lo] = header;
            ethertype(
                link,
                frame.len(),
                u16::from_be_bytes([proto_hi, proto_lo]),
                rest,
            )
        }
        LinkType::LinuxSll2 => {
            let (header, rest) = frame
                .split_first_chunk::<{ field::SLL2_LEN }>()
                .ok_or(too_short)?;
            let &[proto_hi, proto_lo, ..] = header;
            ethertype(
                link,
                frame.len(),
                u16::from_be_bytes([proto_hi, proto_lo]),
                rest,
            )
        }
        LinkType::Null => {
            let (&family, rest) = frame
                .split_first_chunk::<{ field::LOOPBACK_LEN }>()
                .ok_or(too_short)?;
            // Host byte order of the machine that captured: accept both.
            let le = u32::from_le_bytes(family);
            let be = u32::from_be_bytes(family);
            match (family_network(le), family_network(be)) {
                (Some(net), _) | (None, Some(net)) => Ok((net, rest)),
                (None, None) => Err(Skip::UnknownFamily(le.min(be))),
            }
        }
        LinkType::Loop => {
            let (&family, rest) = frame
                .split_first_chunk::<{ field::LOOPBACK_LEN }>()
                .ok_or(too_short)?;
            let family = u32::from_be_bytes(family);
            family_network(family)
                .map(|net| (net, rest))
                .ok_or(Skip::UnknownFamily(family))
        }
    }
}

fn family_network(family: u32) -> Option<Network> {
    match family {
        AF_INET => Some(Network::Ipv4),
        AF_INET6_BSD | AF_INET6_FREEBSD | AF_INET6_DARWIN => Some(Network::Ipv6),
        _ => None,
    }
}

/// Follows an ethertype (walking VLAN tags) to the IP packet. `frame_len` is for errors.
fn ethertype(
    link: LinkType,
    frame_len: usize,
    mut ethertype: u16,
    mut rest: &[u8],
) -> Result<(Network, &[u8]), Skip> {
    let mut tags = 0;
    loop {
        match ethertype {
            ETHERTYPE_IPV4 => return Ok((Network::Ipv4, rest)),
            ETHERTYPE_IPV6 => return Ok((Network::Ipv6, rest)),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ => {
                if tags == MAX_VLAN_TAGS {
                    return Err(Skip::TooManyVlanTags);
                }
                tags += 1;
                let (tag, inner) = rest.split_first_chunk::<{ field::VLAN_TAG_LEN }>().ok_or(
                    Skip::LinkTooShort {
                        link,
                        len: frame_len,
                    },
                )?;
                let &[_tci_hi, _tci_lo, type_hi, type_lo] = tag;
                ethertype = u16::from_be_bytes([type_hi, type_lo]);
                rest = inner;
            }
            other => return Err(Skip::NotIp(other)),
        }
    }
}
