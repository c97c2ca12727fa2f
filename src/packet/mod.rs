//! The packet parser: captured bytes in, a [`Summary`] of one TCP or UDP probe out.
//!
//! In: one captured frame and its [`LinkType`] ([`parse`]), or one bare IP packet from a
//! raw socket ([`parse_ip`]). Out: `Ok(Summary)` (addresses, protocol, ports, the TCP
//! flags byte, whether IPv4 options were present; `Copy`, nothing borrowed) for TCP and
//! UDP packets, or `Err(Skip)` saying why the frame is not one. [`Skip::is_malformed`]
//! separates broken packets (which the caller counts and reports, rate-limited) from
//! packets that are simply not probes (ARP, ICMP, later fragments, ESP, ...).
//!
//! It does not decide what is a scan: [`crate::model::scan::ScanKind::classify_tcp`] does that
//! from [`Summary::tcp_flags`], and the detection engine decides what is an event.
//!
//! It must not panic on any input, allocate, log, read the clock or do I/O. Every read
//! goes through `split_first_chunk`/`first_chunk`/`get` or a slice pattern; fixed-size
//! headers are then read as arrays, so no index can be pushed out of bounds by the input.
//! The layers follow smoltcp's `wire` module: one file per header, a `field` list of
//! offsets, a checked view, and literal byte arrays in the tests.

mod ipv4;
mod ipv6;
mod link;
mod transport;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;

use crate::model::scan::IpOpts;
use crate::model::Proto;

/// The link-layer header in front of the IP packet, from the capture's data link type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// Ethernet II, with up to two 802.1Q / 802.1ad VLAN tags.
    Ethernet,
    /// No link header: the IP version nibble decides.
    RawIp,
    /// BSD loopback (DLT_NULL): a 4-byte address family in the capturing host's byte order.
    Null,
    /// OpenBSD loopback (DLT_LOOP): a 4-byte address family in network byte order.
    Loop,
    /// Linux cooked capture v1 (16-byte header, protocol at offset 14).
    LinuxSll,
    /// Linux cooked capture v2 (20-byte header, protocol at offset 0).
    LinuxSll2,
}

impl LinkType {
    /// From a pcap DLT/LINKTYPE number: 1 Ethernet, 0 BSD null, 108 OpenBSD loop,
    /// 12/14/101 raw IP (and 228 IPv4-only, 229 IPv6-only), 113 Linux SLL, 276 Linux
    /// SLL2. Anything else is `None`.
    pub fn from_dlt(dlt: i32) -> Option<LinkType> {
        Some(match dlt {
            1 => LinkType::Ethernet,
            0 => LinkType::Null,
            108 => LinkType::Loop,
            12 | 14 | 101 | 228 | 229 => LinkType::RawIp,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            _ => return None,
        })
    }

    /// Every link type, for tests and fuzzing.
    pub const ALL: [LinkType; 6] = [
        LinkType::Ethernet,
        LinkType::RawIp,
        LinkType::Null,
        LinkType::Loop,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
    ];
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkType::Ethernet => "Ethernet",
            LinkType::RawIp => "raw IP",
            LinkType::Null => "BSD loopback",
            LinkType::Loop => "OpenBSD loopback",
            LinkType::LinuxSll => "Linux cooked (SLL)",
            LinkType::LinuxSll2 => "Linux cooked (SLL2)",
        })
    }
}

/// What one probe packet says, by value (Copy). Only TCP and UDP packets produce one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: Proto,
    pub sport: u16,
    pub dport: u16,
    /// TCP flags byte (0 for UDP).
    pub tcp_flags: u8,
    /// `Set` when the IPv4 header is longer than 20 bytes, `NotSet` for plain IPv4, `Unknown` for IPv6.
    pub ip_opts: IpOpts,
}

/// Why a frame produced no [`Summary`]. The `Display` texts are 2.x's where 2.x has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    /// Nothing captured.
    #[error("Empty packet, ignoring")]
    Empty,
    /// The frame ends inside its link-layer header (or a VLAN tag).
    #[error("{link} frame is too short for its link-layer header ({len} bytes), ignoring")]
    LinkTooShort { link: LinkType, len: usize },
    /// The ethertype (or SLL protocol) is not IPv4 or IPv6: ARP, LLDP, ...
    #[error("Not an IP packet (ethertype 0x{0:04x}), ignoring")]
    NotIp(u16),
    /// A BSD loopback address family that is not IPv4 or IPv6.
    #[error("Not an IP packet (loopback address family {0}), ignoring")]
    UnknownFamily(u32),
    /// More than two stacked VLAN tags.
    #[error("More than two VLAN tags, ignoring packet")]
    TooManyVlanTags,
    /// The IP version nibble is not 4 or 6, or not the one the link header announced.
    #[error("Unexpected IP version {0}, ignoring packet")]
    BadIpVersion(u8),
    /// Shorter than the 20-byte fixed IPv4 header.
    #[error("IPv4 packet is too short ({0} bytes), ignoring")]
    Ipv4TooShort(usize),
    /// The IHL field is below 5 (20 bytes).
    #[error("IPv4 header length field is {0} (less than 5), ignoring")]
    Ipv4BadHeaderLen(u8),
    /// The IHL field says the header is longer than the captured packet.
    #[error("IPv4 header ({header_len} bytes) is longer than the packet ({len} bytes), ignoring")]
    Ipv4HeaderTruncated { header_len: usize, len: usize },
    /// The total length field is shorter than the header.
    #[error(
        "IPv4 total length ({total_len}) is shorter than its header ({header_len} bytes), ignoring"
    )]
    Ipv4BadTotalLen { total_len: u16, header_len: usize },
    /// A non-first IPv4 fragment: no transport header (the first fragment has the ports).
    #[error("IPv4 fragment at offset {offset} detected, ignoring packet")]
    Ipv4Fragment { offset: u16 },
    /// Shorter than the 40-byte IPv6 header.
    #[error("IPv6 packet is too short ({0} bytes), ignoring")]
    Ipv6TooShort(usize),
    /// An IPv6 fragment header (2.x ignores every IPv6 fragment, the first one too).
    #[error("Fragment Header for IPv6 detected, ignoring packet")]
    Ipv6Fragment,
    /// An ESP header: what follows is encrypted.
    #[error("ESP Header for IPv6 detected, ignoring packet")]
    Ipv6Esp,
    /// Next header 59: nothing follows.
    #[error("No Next Header for IPv6 detected, ignoring packet")]
    Ipv6NoNextHeader,
    /// An IPv6 extension header (of this next-header number) runs past the end.
    #[error("IPv6 extension header {0} runs past the end of the packet, ignoring")]
    Ipv6ExtTruncated(u8),
    /// More than [`MAX_EXT_HEADERS`] IPv6 extension headers.
    #[error("More than {MAX_EXT_HEADERS} IPv6 extension headers, ignoring packet")]
    Ipv6TooManyExtHeaders,
    /// The transport protocol is neither TCP nor UDP (ICMP, ICMPv6, GRE, ...).
    #[error("IP protocol {0} is neither TCP nor UDP, ignoring")]
    OtherProtocol(u8),
    /// Shorter than 20 bytes, or than the TCP header's data offset.
    #[error("Packet is too short for TCP header, ignoring")]
    TcpTooShort,
    /// The TCP data offset is below 5 (20 bytes).
    #[error("TCP data offset is {0} (less than 5), ignoring")]
    TcpBadDataOffset(u8),
    /// Shorter than the 8-byte UDP header.
    #[error("Packet is too short for UDP header, ignoring")]
    UdpTooShort,
}

impl Skip {
    /// True for broken packets (truncated, bad lengths, bad version): the caller counts
    /// and reports them. False for packets that are well formed but not TCP/UDP probes:
    /// not IP, other protocols, fragments, ESP, no-next-header.
    pub fn is_malformed(&self) -> bool {
        match self {
            Skip::Empty
            | Skip::LinkTooShort { .. }
            | Skip::BadIpVersion(_)
            | Skip::Ipv4TooShort(_)
            | Skip::Ipv4BadHeaderLen(_)
            | Skip::Ipv4HeaderTruncated { .. }
            | Skip::Ipv4BadTotalLen { .. }
            | Skip::Ipv6TooShort(_)
            | Skip::Ipv6ExtTruncated(_)
            | Skip::Ipv6TooManyExtHeaders
            | Skip::TcpTooShort
            | Skip::TcpBadDataOffset(_)
            | Skip::UdpTooShort => true,
            Skip::NotIp(_)
            | Skip::UnknownFamily(_)
            | Skip::TooManyVlanTags
            | Skip::Ipv4Fragment { .. }
            | Skip::Ipv6Fragment
            | Skip::Ipv6Esp
            | Skip::Ipv6NoNextHeader
            | Skip::OtherProtocol(_) => false,
        }
    }
}

/// The most IPv6 extension headers walked before giving up on a packet.
pub const MAX_EXT_HEADERS: usize = 16;

/// Parses one captured frame whose link-layer header is `link`.
pub fn parse(link: LinkType, frame: &[u8]) -> Result<Summary, Skip> {
    match link::strip(link, frame)? {
        (link::Network::Ipv4, packet) => ipv4::parse(packet),
        (link::Network::Ipv6, packet) => ipv6::parse(packet),
        (link::Network::Either, packet) => parse_ip(packet),
    }
}

/// For raw sockets / raw-IP captures: bytes starting at the IP header (version nibble decides).
pub fn parse_ip(packet: &[u8]) -> Result<Summary, Skip> {
    let Some(&first) = packet.first() else {
        return Err(Skip::Empty);
    };
    match first >> 4 {
        4 => ipv4::parse(packet),
        6 => ipv6::parse(packet),
        version => Err(Skip::BadIpVersion(version)),
    }
}
