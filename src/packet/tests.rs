//! Parser tests: literal byte arrays per link type, header and Skip variant; nmap's scan
//! flags; recorded .pcap fixtures; and no-panic checks over pseudo-random and truncated
//! frames.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;
use crate::model::scan::{ScanKind, ACK, FIN, PSH, RST, SYN, URG};

// ---------------------------------------------------------------------------------------
// Literal packets. Scanner 198.18.0.1 / fd00:5e5e::1, target 198.18.0.2 / fd00:5e5e::2.

const V4_A: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
const V4_B: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
const V6_A: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0x5e5e, 0, 0, 0, 0, 0, 1));
const V6_B: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0x5e5e, 0, 0, 0, 0, 0, 2));

/// IPv4 (no options) + TCP SYN, 40000 -> 79.
#[rustfmt::skip]
const IPV4_TCP: [u8; 40] = [
    0x45, 0x00, 0x00, 0x28, 0x12, 0x34, 0x00, 0x00, 0x40, 0x06, 0x00, 0x00,
    198, 18, 0, 1,
    198, 18, 0, 2,
    0x9c, 0x40, 0x00, 0x4f, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x50, 0x02, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// IPv4 with 4 bytes of options (NOP NOP NOP EOL) + TCP FIN, 40000 -> 11.
#[rustfmt::skip]
const IPV4_OPTS_TCP: [u8; 44] = [
    0x46, 0x00, 0x00, 0x2c, 0x12, 0x35, 0x00, 0x00, 0x40, 0x06, 0x00, 0x00,
    198, 18, 0, 1,
    198, 18, 0, 2,
    0x01, 0x01, 0x01, 0x00,
    0x9c, 0x40, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x50, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// IPv4 + UDP, 40000 -> 7, no payload.
#[rustfmt::skip]
const IPV4_UDP: [u8; 28] = [
    0x45, 0x00, 0x00, 0x1c, 0x12, 0x36, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00,
    198, 18, 0, 1,
    198, 18, 0, 2,
    0x9c, 0x40, 0x00, 0x07, 0x00, 0x08, 0x00, 0x00,
];

/// IPv6 + TCP SYN, 40000 -> 79.
#[rustfmt::skip]
const IPV6_TCP: [u8; 60] = [
    0x60, 0x00, 0x00, 0x00, 0x00, 0x14, 0x06, 0x40,
    0xfd, 0x00, 0x5e, 0x5e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    0xfd, 0x00, 0x5e, 0x5e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    0x9c, 0x40, 0x00, 0x4f, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x50, 0x02, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// IPv6 + UDP, 40000 -> 9.
#[rustfmt::skip]
const IPV6_UDP: [u8; 48] = [
    0x60, 0x00, 0x00, 0x00, 0x00, 0x08, 0x11, 0x40,
    0xfd, 0x00, 0x5e, 0x5e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    0xfd, 0x00, 0x5e, 0x5e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    0x9c, 0x40, 0x00, 0x09, 0x00, 0x08, 0x00, 0x00,
];

/// IPv6, hop-by-hop -> destination options -> routing -> AH -> TCP XMAS, 40000 -> 1.
#[rustfmt::skip]
const IPV6_EXT_CHAIN: [u8; 100] = [
    0x60, 0x00, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x40,
    0xfd, 0x00, 0x5e, 0x5e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    0xfd, 0x00, 0x5e, 0x5e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    // hop-by-hop: next 60, length 0 (8 bytes), PadN
    60, 0, 0x01, 0x04, 0, 0, 0, 0,
    // destination options: next 43, length 0, PadN
    43, 0, 0x01, 0x04, 0, 0, 0, 0,
    // routing: next 51, length 0, type 4, segments left 0
    51, 0, 0x04, 0x00, 0, 0, 0, 0,
    // AH: next 6, length 2 ((2 + 2) * 4 = 16 bytes), reserved, SPI, sequence, ICV
    6, 2, 0, 0, 0, 0, 0x01, 0x00, 0, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd,
    // TCP FIN+PSH+URG
    0x9c, 0x40, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x50, 0x29, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
];

const ETH_V4: [u8; 14] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
const ETH_V6: [u8; 14] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
const ETH_ARP: [u8; 14] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06,
];
/// 802.1Q TPID, TCI (priority 0, VLAN 10), then the inner ethertype follows.
const VLAN_10: [u8; 4] = [0x81, 0x00, 0x00, 0x0a];
/// 802.1ad (outer) TPID, VLAN 100.
const QINQ_100: [u8; 4] = [0x88, 0xa8, 0x00, 0x64];
const SLL_V4: [u8; 16] = [0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
const SLL_V6: [u8; 16] = [0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x86, 0xdd];
const SLL2_V4: [u8; 20] = [
    0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0,
];
const SLL2_V6: [u8; 20] = [
    0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0,
];

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn tcp4(src: IpAddr, dst: IpAddr, dport: u16, flags: u8, ip_opts: IpOpts) -> Summary {
    Summary {
        src,
        dst,
        proto: Proto::Tcp,
        sport: 40000,
        dport,
        tcp_flags: flags,
        ip_opts,
    }
}

fn udp(src: IpAddr, dst: IpAddr, dport: u16, ip_opts: IpOpts) -> Summary {
    Summary {
        proto: Proto::Udp,
        tcp_flags: 0,
        ..tcp4(src, dst, dport, 0, ip_opts)
    }
}

fn syn_v4() -> Summary {
    tcp4(V4_A, V4_B, 79, SYN, IpOpts::NotSet)
}

fn syn_v6() -> Summary {
    tcp4(V6_A, V6_B, 79, SYN, IpOpts::Unknown)
}

/// Copy of `packet` with the TCP flags byte (at `at`) set to `flags`.
fn with_byte(packet: &[u8], at: usize, value: u8) -> Vec<u8> {
    let mut p = packet.to_vec();
    p[at] = value;
    p
}

// ---------------------------------------------------------------------------------------
// Link types.

#[test]
fn link_type_from_dlt() {
    let cases = [
        (1, Some(LinkType::Ethernet)),
        (0, Some(LinkType::Null)),
        (108, Some(LinkType::Loop)),
        (12, Some(LinkType::RawIp)),
        (14, Some(LinkType::RawIp)),
        (101, Some(LinkType::RawIp)),
        (228, Some(LinkType::RawIp)),
        (229, Some(LinkType::RawIp)),
        (113, Some(LinkType::LinuxSll)),
        (276, Some(LinkType::LinuxSll2)),
        (105, None),
        (127, None),
        (-1, None),
        (i32::MAX, None),
    ];
    for (dlt, want) in cases {
        assert_eq!(LinkType::from_dlt(dlt), want, "dlt {dlt}");
    }
}

#[test]
fn ethernet_ipv4_and_ipv6() {
    assert_eq!(
        parse(LinkType::Ethernet, &cat(&[&ETH_V4, &IPV4_TCP])),
        Ok(syn_v4())
    );
    assert_eq!(
        parse(LinkType::Ethernet, &cat(&[&ETH_V6, &IPV6_TCP])),
        Ok(syn_v6())
    );
}

#[test]
fn ethernet_padding_is_trimmed_by_total_length() {
    // A 60-byte minimum Ethernet frame: 6 bytes of padding after a 40-byte IPv4 packet,
    // plus a 4-byte FCS.
    let frame = cat(&[&ETH_V4, &IPV4_UDP, &[0; 18], &[0xde, 0xad, 0xbe, 0xef]]);
    assert_eq!(
        parse(LinkType::Ethernet, &frame),
        Ok(udp(V4_A, V4_B, 7, IpOpts::NotSet))
    );
}

#[test]
fn ethernet_vlan_tags() {
    let one = cat(&[&ETH_V4[..12], &VLAN_10, &[0x08, 0x00], &IPV4_TCP]);
    assert_eq!(parse(LinkType::Ethernet, &one), Ok(syn_v4()));
    let two = cat(&[&ETH_V6[..12], &QINQ_100, &VLAN_10, &[0x86, 0xdd], &IPV6_TCP]);
    assert_eq!(parse(LinkType::Ethernet, &two), Ok(syn_v6()));
    let two_dot1q = cat(&[&ETH_V4[..12], &VLAN_10, &VLAN_10, &[0x08, 0x00], &IPV4_TCP]);
    assert_eq!(parse(LinkType::Ethernet, &two_dot1q), Ok(syn_v4()));
    let three = cat(&[
        &ETH_V4[..12],
        &QINQ_100,
        &VLAN_10,
        &VLAN_10,
        &[0x08, 0x00],
        &IPV4_TCP,
    ]);
    assert_eq!(
        parse(LinkType::Ethernet, &three),
        Err(Skip::TooManyVlanTags)
    );
    let vlan_arp = cat(&[&ETH_V4[..12], &VLAN_10, &[0x08, 0x06], &[0; 28]]);
    assert_eq!(
        parse(LinkType::Ethernet, &vlan_arp),
        Err(Skip::NotIp(0x0806))
    );
    let cut = cat(&[&ETH_V4[..12], &VLAN_10[..3]]);
    assert_eq!(
        parse(LinkType::Ethernet, &cut),
        Err(Skip::LinkTooShort {
            link: LinkType::Ethernet,
            len: 15
        })
    );
}

#[test]
fn raw_ip() {
    assert_eq!(parse(LinkType::RawIp, &IPV4_TCP), Ok(syn_v4()));
    assert_eq!(parse(LinkType::RawIp, &IPV6_TCP), Ok(syn_v6()));
    assert_eq!(parse_ip(&IPV4_TCP), Ok(syn_v4()));
    assert_eq!(parse_ip(&IPV6_TCP), Ok(syn_v6()));
}

#[test]
fn bsd_null_accepts_both_byte_orders() {
    for family in [[2, 0, 0, 0], [0, 0, 0, 2]] {
        assert_eq!(
            parse(LinkType::Null, &cat(&[&family, &IPV4_TCP])),
            Ok(syn_v4())
        );
    }
    for af in [24u8, 28, 30] {
        for family in [[af, 0, 0, 0], [0, 0, 0, af]] {
            let frame = cat(&[&family, &IPV6_TCP]);
            assert_eq!(parse(LinkType::Null, &frame), Ok(syn_v6()), "family {af}");
        }
    }
    // Linux's AF_INET6 (10) is not a BSD family.
    let frame = cat(&[&[10, 0, 0, 0], &IPV6_TCP]);
    assert_eq!(parse(LinkType::Null, &frame), Err(Skip::UnknownFamily(10)));
}

#[test]
fn openbsd_loop_is_network_order() {
    assert_eq!(
        parse(LinkType::Loop, &cat(&[&[0, 0, 0, 2], &IPV4_TCP])),
        Ok(syn_v4())
    );
    for af in [24u8, 28, 30] {
        let frame = cat(&[&[0, 0, 0, af], &IPV6_TCP]);
        assert_eq!(parse(LinkType::Loop, &frame), Ok(syn_v6()), "family {af}");
    }
    let little = cat(&[&[2, 0, 0, 0], &IPV4_TCP]);
    assert_eq!(
        parse(LinkType::Loop, &little),
        Err(Skip::UnknownFamily(0x0200_0000))
    );
}

#[test]
fn linux_cooked_v1_and_v2() {
    assert_eq!(
        parse(LinkType::LinuxSll, &cat(&[&SLL_V4, &IPV4_TCP])),
        Ok(syn_v4())
    );
    assert_eq!(
        parse(LinkType::LinuxSll, &cat(&[&SLL_V6, &IPV6_TCP])),
        Ok(syn_v6())
    );
    assert_eq!(
        parse(LinkType::LinuxSll2, &cat(&[&SLL2_V4, &IPV4_TCP])),
        Ok(syn_v4())
    );
    assert_eq!(
        parse(LinkType::LinuxSll2, &cat(&[&SLL2_V6, &IPV6_TCP])),
        Ok(syn_v6())
    );
    // A VLAN tag left in by the driver.
    let mut sll_vlan = SLL_V4;
    sll_vlan[14..].copy_from_slice(&[0x81, 0x00]);
    let frame = cat(&[&sll_vlan, &VLAN_10[2..], &[0x08, 0x00], &IPV4_TCP]);
    assert_eq!(parse(LinkType::LinuxSll, &frame), Ok(syn_v4()));
}

#[test]
fn link_type_display() {
    assert_eq!(LinkType::Ethernet.to_string(), "Ethernet");
    assert_eq!(LinkType::LinuxSll2.to_string(), "Linux cooked (SLL2)");
}

// ---------------------------------------------------------------------------------------
// IP and transport.

#[test]
fn ipv4_options_set() {
    assert_eq!(
        parse_ip(&IPV4_OPTS_TCP),
        Ok(tcp4(V4_A, V4_B, 11, FIN, IpOpts::Set))
    );
    assert_eq!(parse_ip(&IPV4_TCP).map(|s| s.ip_opts), Ok(IpOpts::NotSet));
}

#[test]
fn ipv4_total_length_beyond_capture_is_fine() {
    // total length 1500, only the headers captured (a snaplen cut).
    let mut p = IPV4_TCP;
    p[2..4].copy_from_slice(&1500u16.to_be_bytes());
    assert_eq!(parse_ip(&p), Ok(syn_v4()));
}

#[test]
fn ipv4_total_length_bounds_the_transport_header() {
    // total length 30: only 10 bytes of TCP belong to the packet, whatever follows.
    let p = with_byte(&IPV4_TCP, 3, 30);
    assert_eq!(parse_ip(&p), Err(Skip::TcpTooShort));
}

#[test]
fn ipv4_first_fragment_is_parsed() {
    // More-fragments set, offset 0: the first fragment carries the ports.
    let p = with_byte(&IPV4_TCP, 6, 0x20);
    assert_eq!(parse_ip(&p), Ok(syn_v4()));
    // Don't-fragment is irrelevant.
    let p = with_byte(&IPV4_TCP, 6, 0x40);
    assert_eq!(parse_ip(&p), Ok(syn_v4()));
}

#[test]
fn udp_v4_and_v6() {
    assert_eq!(parse_ip(&IPV4_UDP), Ok(udp(V4_A, V4_B, 7, IpOpts::NotSet)));
    assert_eq!(parse_ip(&IPV6_UDP), Ok(udp(V6_A, V6_B, 9, IpOpts::Unknown)));
    let frame = cat(&[&ETH_V6, &IPV6_UDP]);
    assert_eq!(
        parse(LinkType::Ethernet, &frame).map(|s| (s.proto, s.dport, s.tcp_flags)),
        Ok((Proto::Udp, 9, 0))
    );
}

#[test]
fn ipv6_extension_header_chain() {
    assert_eq!(
        parse_ip(&IPV6_EXT_CHAIN),
        Ok(tcp4(V6_A, V6_B, 1, FIN | PSH | URG, IpOpts::Unknown))
    );
    let frame = cat(&[&ETH_V6, &IPV6_EXT_CHAIN]);
    assert_eq!(
        parse(LinkType::Ethernet, &frame).map(|s| ScanKind::classify_tcp(s.tcp_flags)),
        Ok(Some(ScanKind::Xmas))
    );
}

/// IPv6 + one extension header of type `ext` (8 bytes: `len` 0) + `upper` (UDP 40000 -> 9).
fn ipv6_with_ext(ext: u8, ext_bytes: &[u8]) -> Vec<u8> {
    let mut p = IPV6_UDP[..40].to_vec();
    p[6] = ext;
    let payload = ext_bytes.len() + 8;
    p[4..6].copy_from_slice(&u16::try_from(payload).unwrap_or(0).to_be_bytes());
    p.extend_from_slice(ext_bytes);
    p.extend_from_slice(&IPV6_UDP[40..]);
    p
}

#[test]
fn ipv6_each_walkable_extension_header() {
    let want = Ok(udp(V6_A, V6_B, 9, IpOpts::Unknown));
    for ext in [0u8, 43, 60, 135, 139, 140] {
        // 16 bytes: length 1.
        let mut bytes = vec![17, 1];
        bytes.resize(16, 0);
        assert_eq!(parse_ip(&ipv6_with_ext(ext, &bytes)), want, "header {ext}");
    }
    // AH, length 4: (4 + 2) * 4 = 24 bytes.
    let mut ah = vec![17, 4];
    ah.resize(24, 0);
    assert_eq!(parse_ip(&ipv6_with_ext(51, &ah)), want);
}

#[test]
fn ipv6_payload_length_bounds_the_walk() {
    // Payload length 4: the UDP header is cut off, even though the bytes are there.
    let p = with_byte(&IPV6_UDP, 5, 4);
    assert_eq!(parse_ip(&p), Err(Skip::UdpTooShort));
    // Payload length beyond the capture (snaplen): what is there is used.
    let p = with_byte(&IPV6_UDP, 4, 0x05);
    assert_eq!(parse_ip(&p), Ok(udp(V6_A, V6_B, 9, IpOpts::Unknown)));
    // Payload length 0 (jumbogram): what was captured.
    let p = with_byte(&IPV6_UDP, 5, 0);
    assert_eq!(parse_ip(&p), Ok(udp(V6_A, V6_B, 9, IpOpts::Unknown)));
}

#[test]
fn ipv6_extension_header_bound() {
    let chain = |n: usize| {
        let mut ext = Vec::new();
        for _ in 0..n - 1 {
            ext.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
        }
        ext.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
        ipv6_with_ext(60, &ext)
    };
    assert_eq!(
        parse_ip(&chain(MAX_EXT_HEADERS)).map(|s| s.dport),
        Ok(9),
        "{MAX_EXT_HEADERS} headers are walked"
    );
    assert_eq!(
        parse_ip(&chain(MAX_EXT_HEADERS + 1)),
        Err(Skip::Ipv6TooManyExtHeaders)
    );
}

#[test]
fn tcp_header_with_options() {
    // Data offset 6 with 4 option bytes present.
    let mut p = IPV4_TCP.to_vec();
    p[3] = 44;
    p[32] = 0x60;
    p.extend_from_slice(&[2, 4, 5, 0xb4]);
    assert_eq!(parse_ip(&p), Ok(syn_v4()));
    // Data offset 6 but the options are missing.
    let p = with_byte(&IPV4_TCP, 32, 0x60);
    assert_eq!(parse_ip(&p), Err(Skip::TcpTooShort));
}

// ---------------------------------------------------------------------------------------
// nmap's scans, through ScanKind::classify_tcp.

#[test]
fn nmap_scan_flags_classify() {
    let cases = [
        ("-sS", SYN, Some(ScanKind::Syn)),
        ("-sF", FIN, Some(ScanKind::Fin)),
        ("-sN", 0, Some(ScanKind::Null)),
        ("-sX", FIN | PSH | URG, Some(ScanKind::Xmas)),
        ("reply RST+ACK", RST | ACK, None),
        ("reply SYN+ACK", SYN | ACK, None),
        ("SYN+FIN", SYN | FIN, Some(ScanKind::Unknown(SYN | FIN))),
    ];
    for (name, flags, want) in cases {
        for (link, frame) in [
            (
                LinkType::Ethernet,
                cat(&[&ETH_V4, &with_byte(&IPV4_TCP, 33, flags)]),
            ),
            (
                LinkType::Ethernet,
                cat(&[&ETH_V6, &with_byte(&IPV6_TCP, 53, flags)]),
            ),
            (LinkType::RawIp, with_byte(&IPV4_OPTS_TCP, 37, flags)),
        ] {
            let s = parse(link, &frame);
            assert_eq!(s.map(|s| s.tcp_flags), Ok(flags), "{name}");
            assert_eq!(
                s.map(|s| ScanKind::classify_tcp(s.tcp_flags)),
                Ok(want),
                "{name}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Every Skip variant.

/// One number per variant; the exhaustive match makes a new variant fail to compile here
/// until it gets a case below.
fn variant(skip: &Skip) -> usize {
    match skip {
        Skip::Empty => 0,
        Skip::LinkTooShort { .. } => 1,
        Skip::NotIp(_) => 2,
        Skip::UnknownFamily(_) => 3,
        Skip::TooManyVlanTags => 4,
        Skip::BadIpVersion(_) => 5,
        Skip::Ipv4TooShort(_) => 6,
        Skip::Ipv4BadHeaderLen(_) => 7,
        Skip::Ipv4HeaderTruncated { .. } => 8,
        Skip::Ipv4BadTotalLen { .. } => 9,
        Skip::Ipv4Fragment { .. } => 10,
        Skip::Ipv6TooShort(_) => 11,
        Skip::Ipv6Fragment => 12,
        Skip::Ipv6Esp => 13,
        Skip::Ipv6NoNextHeader => 14,
        Skip::Ipv6ExtTruncated(_) => 15,
        Skip::Ipv6TooManyExtHeaders => 16,
        Skip::OtherProtocol(_) => 17,
        Skip::TcpTooShort => 18,
        Skip::TcpBadDataOffset(_) => 19,
        Skip::UdpTooShort => 20,
    }
}
const VARIANTS: usize = 21;

#[test]
fn every_skip_variant() {
    let ipv6_next = |next: u8, rest: &[u8]| {
        let mut p = IPV6_UDP[..40].to_vec();
        p[6] = next;
        p[5] = u8::try_from(rest.len()).unwrap_or(0);
        p.extend_from_slice(rest);
        p
    };
    #[rustfmt::skip]
    let cases: Vec<(LinkType, Vec<u8>, Skip, bool, &str)> = vec![
        (LinkType::RawIp, vec![], Skip::Empty, true, "Empty packet, ignoring"),
        (LinkType::Ethernet, ETH_V4[..13].to_vec(),
         Skip::LinkTooShort { link: LinkType::Ethernet, len: 13 }, true,
         "Ethernet frame is too short for its link-layer header (13 bytes), ignoring"),
        (LinkType::LinuxSll2, SLL2_V4[..19].to_vec(),
         Skip::LinkTooShort { link: LinkType::LinuxSll2, len: 19 }, true,
         "Linux cooked (SLL2) frame is too short for its link-layer header (19 bytes), ignoring"),
        (LinkType::Null, vec![2, 0, 0],
         Skip::LinkTooShort { link: LinkType::Null, len: 3 }, true,
         "BSD loopback frame is too short for its link-layer header (3 bytes), ignoring"),
        (LinkType::Ethernet, cat(&[&ETH_ARP, &[0; 28]]), Skip::NotIp(0x0806), false,
         "Not an IP packet (ethertype 0x0806), ignoring"),
        (LinkType::LinuxSll, cat(&[&SLL_V4[..14], &[0x88, 0xcc], &[0; 20]]), Skip::NotIp(0x88cc), false,
         "Not an IP packet (ethertype 0x88cc), ignoring"),
        (LinkType::Null, cat(&[&[17, 0, 0, 0], &IPV4_TCP]), Skip::UnknownFamily(17), false,
         "Not an IP packet (loopback address family 17), ignoring"),
        (LinkType::Ethernet,
         cat(&[&ETH_V4[..12], &VLAN_10, &VLAN_10, &VLAN_10, &[0x08, 0x00], &IPV4_TCP]),
         Skip::TooManyVlanTags, false, "More than two VLAN tags, ignoring packet"),
        (LinkType::RawIp, with_byte(&IPV4_TCP, 0, 0x55), Skip::BadIpVersion(5), true,
         "Unexpected IP version 5, ignoring packet"),
        // The ethertype says IPv4, the packet is IPv6.
        (LinkType::Ethernet, cat(&[&ETH_V4, &IPV6_TCP]), Skip::BadIpVersion(6), true,
         "Unexpected IP version 6, ignoring packet"),
        (LinkType::Ethernet, cat(&[&ETH_V6, &IPV4_TCP, &[0; 20]]), Skip::BadIpVersion(4), true,
         "Unexpected IP version 4, ignoring packet"),
        (LinkType::RawIp, IPV4_TCP[..19].to_vec(), Skip::Ipv4TooShort(19), true,
         "IPv4 packet is too short (19 bytes), ignoring"),
        (LinkType::RawIp, with_byte(&IPV4_TCP, 0, 0x44), Skip::Ipv4BadHeaderLen(4), true,
         "IPv4 header length field is 4 (less than 5), ignoring"),
        (LinkType::RawIp, with_byte(&IPV4_TCP, 0, 0x4f),
         Skip::Ipv4HeaderTruncated { header_len: 60, len: 40 }, true,
         "IPv4 header (60 bytes) is longer than the packet (40 bytes), ignoring"),
        (LinkType::RawIp, with_byte(&IPV4_TCP, 3, 19),
         Skip::Ipv4BadTotalLen { total_len: 19, header_len: 20 }, true,
         "IPv4 total length (19) is shorter than its header (20 bytes), ignoring"),
        (LinkType::RawIp, with_byte(&with_byte(&IPV4_TCP, 6, 0x20), 7, 185),
         Skip::Ipv4Fragment { offset: 1480 }, false,
         "IPv4 fragment at offset 1480 detected, ignoring packet"),
        (LinkType::RawIp, with_byte(&IPV4_TCP, 6, 0x1f),
         Skip::Ipv4Fragment { offset: 0x1f00 * 8 }, false,
         "IPv4 fragment at offset 63488 detected, ignoring packet"),
        (LinkType::RawIp, IPV6_TCP[..39].to_vec(), Skip::Ipv6TooShort(39), true,
         "IPv6 packet is too short (39 bytes), ignoring"),
        (LinkType::Ethernet, cat(&[&ETH_V6, &IPV6_TCP[..8]]), Skip::Ipv6TooShort(8), true,
         "IPv6 packet is too short (8 bytes), ignoring"),
        (LinkType::RawIp, ipv6_next(44, &[6, 0, 0, 1, 0, 0, 0, 1]), Skip::Ipv6Fragment, false,
         "Fragment Header for IPv6 detected, ignoring packet"),
        (LinkType::RawIp, ipv6_next(0, &[44, 0, 1, 4, 0, 0, 0, 0, 6, 0, 0, 1, 0, 0, 0, 1]),
         Skip::Ipv6Fragment, false, "Fragment Header for IPv6 detected, ignoring packet"),
        (LinkType::RawIp, ipv6_next(50, &[0, 0, 1, 0, 0, 0, 0, 1]), Skip::Ipv6Esp, false,
         "ESP Header for IPv6 detected, ignoring packet"),
        (LinkType::RawIp, ipv6_next(59, &[]), Skip::Ipv6NoNextHeader, false,
         "No Next Header for IPv6 detected, ignoring packet"),
        (LinkType::RawIp, ipv6_next(0, &[17, 1, 0, 0, 0, 0, 0, 0]), Skip::Ipv6ExtTruncated(0), true,
         "IPv6 extension header 0 runs past the end of the packet, ignoring"),
        (LinkType::RawIp, ipv6_next(51, &[17]), Skip::Ipv6ExtTruncated(51), true,
         "IPv6 extension header 51 runs past the end of the packet, ignoring"),
        (LinkType::RawIp, ipv6_next(60, &[]), Skip::Ipv6ExtTruncated(60), true,
         "IPv6 extension header 60 runs past the end of the packet, ignoring"),
        (LinkType::RawIp, ipv6_next(60, &[60, 0, 0, 0, 0, 0, 0, 0].repeat(17)),
         Skip::Ipv6TooManyExtHeaders, true, "More than 16 IPv6 extension headers, ignoring packet"),
        (LinkType::RawIp, with_byte(&IPV4_UDP, 9, 1), Skip::OtherProtocol(1), false,
         "IP protocol 1 is neither TCP nor UDP, ignoring"),
        (LinkType::RawIp, ipv6_next(58, &[135, 0, 0, 0]), Skip::OtherProtocol(58), false,
         "IP protocol 58 is neither TCP nor UDP, ignoring"),
        (LinkType::RawIp, ipv6_next(0, &[58, 0, 5, 2, 0, 0, 1, 0, 143, 0, 0, 0]),
         Skip::OtherProtocol(58), false, "IP protocol 58 is neither TCP nor UDP, ignoring"),
        (LinkType::RawIp, IPV4_TCP[..39].to_vec(), Skip::TcpTooShort, true,
         "Packet is too short for TCP header, ignoring"),
        (LinkType::RawIp, with_byte(&IPV4_TCP, 32, 0x40), Skip::TcpBadDataOffset(4), true,
         "TCP data offset is 4 (less than 5), ignoring"),
        (LinkType::RawIp, IPV4_UDP[..27].to_vec(), Skip::UdpTooShort, true,
         "Packet is too short for UDP header, ignoring"),
        (LinkType::RawIp, IPV6_UDP[..47].to_vec(), Skip::UdpTooShort, true,
         "Packet is too short for UDP header, ignoring"),
    ];
    let mut seen = [false; VARIANTS];
    for (link, frame, want, malformed, text) in &cases {
        let got = parse(*link, frame);
        assert_eq!(got, Err(*want), "{text}");
        assert_eq!(want.is_malformed(), *malformed, "{text}");
        assert_eq!(want.to_string(), *text);
        if *link == LinkType::RawIp {
            assert_eq!(parse_ip(frame), Err(*want), "{text}");
        }
        seen[variant(want)] = true;
    }
    let missing: Vec<usize> = (0..VARIANTS).filter(|&i| !seen[i]).collect();
    assert!(
        missing.is_empty(),
        "Skip variants without a case: {missing:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Recorded fixtures (tests/fixtures/record.sh): nmap from 198.18.0.1 / fd00:5e5e::1 to
// 198.18.0.2 / fd00:5e5e::2, captured on the target's veth (Ethernet).

/// A minimal pcap reader: little-endian microsecond files only. Returns the link type
/// and the captured bytes of each record.
fn read_pcap(file: &[u8]) -> (i32, Vec<&[u8]>) {
    assert!(file.len() >= 24, "pcap global header");
    assert_eq!(
        file[..4],
        [0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian pcap magic"
    );
    let u32_at =
        |at: usize| u32::from_le_bytes([file[at], file[at + 1], file[at + 2], file[at + 3]]);
    let linktype = i32::try_from(u32_at(20)).unwrap_or(-1);
    let mut records = Vec::new();
    let mut at = 24;
    while at < file.len() {
        assert!(at + 16 <= file.len(), "truncated record header at {at}");
        let incl_len = u32_at(at + 8) as usize;
        let start = at + 16;
        assert!(start + incl_len <= file.len(), "truncated record at {at}");
        records.push(&file[start..start + incl_len]);
        at = start + incl_len;
    }
    (linktype, records)
}

fn check_fixture(name: &str, file: &[u8], proto: Proto, kind: ScanKind, v6: bool) {
    let (scanner, target, opts) = if v6 {
        (V6_A, V6_B, IpOpts::Unknown)
    } else {
        (V4_A, V4_B, IpOpts::NotSet)
    };
    let want_ports: &[u16] = match proto {
        Proto::Tcp => &[1, 11, 79],
        Proto::Udp => &[1, 7, 9],
    };
    let (dlt, records) = read_pcap(file);
    let link = LinkType::from_dlt(dlt);
    assert_eq!(link, Some(LinkType::Ethernet), "{name}");
    let link = link.unwrap_or(LinkType::Ethernet);
    let mut probes = Vec::new();
    for frame in records {
        match parse(link, frame) {
            Ok(s) if s.dst == target => {
                assert_eq!(
                    (s.src, s.proto, s.ip_opts),
                    (scanner, proto, opts),
                    "{name}"
                );
                let got = match proto {
                    Proto::Tcp => ScanKind::classify_tcp(s.tcp_flags),
                    Proto::Udp => (s.tcp_flags == 0).then_some(ScanKind::Udp),
                };
                assert_eq!(got, Some(kind), "{name}: {s:?}");
                probes.push(s.dport);
            }
            Ok(s) => {
                // The target's RST+ACK replies: never events.
                assert_eq!(
                    (s.src, s.dst, s.proto),
                    (target, scanner, Proto::Tcp),
                    "{name}"
                );
                assert_eq!(ScanKind::classify_tcp(s.tcp_flags), None, "{name}");
            }
            // ARP, neighbour discovery, MLD (behind a hop-by-hop header), ICMP unreachables.
            Err(skip) => assert!(
                matches!(skip, Skip::NotIp(0x0806) | Skip::OtherProtocol(1 | 58)),
                "{name}: {skip:?}"
            ),
        }
    }
    probes.sort_unstable();
    assert_eq!(probes, want_ports, "{name}");
}

#[test]
fn recorded_nmap_scans() {
    macro_rules! fixture {
        ($file:literal) => {
            (
                $file,
                &include_bytes!(concat!("../../tests/fixtures/", $file))[..],
            )
        };
    }
    let cases = [
        (fixture!("syn-v4.pcap"), Proto::Tcp, ScanKind::Syn, false),
        (fixture!("fin-v4.pcap"), Proto::Tcp, ScanKind::Fin, false),
        (fixture!("null-v4.pcap"), Proto::Tcp, ScanKind::Null, false),
        (fixture!("xmas-v4.pcap"), Proto::Tcp, ScanKind::Xmas, false),
        (fixture!("udp-v4.pcap"), Proto::Udp, ScanKind::Udp, false),
        (fixture!("syn-v6.pcap"), Proto::Tcp, ScanKind::Syn, true),
        (fixture!("fin-v6.pcap"), Proto::Tcp, ScanKind::Fin, true),
        (fixture!("null-v6.pcap"), Proto::Tcp, ScanKind::Null, true),
        (fixture!("xmas-v6.pcap"), Proto::Tcp, ScanKind::Xmas, true),
        (fixture!("udp-v6.pcap"), Proto::Udp, ScanKind::Udp, true),
    ];
    for ((name, file), proto, kind, v6) in cases {
        check_fixture(name, file, proto, kind, v6);
    }
}

// ---------------------------------------------------------------------------------------
// Never panic.

/// xorshift64*: deterministic, no dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Valid frames, with their link type and the length of their headers (link, IP,
/// transport): every shorter prefix is malformed, every longer one parses the same.
fn seeds() -> Vec<(LinkType, Vec<u8>, usize)> {
    vec![
        (LinkType::Ethernet, cat(&[&ETH_V4, &IPV4_TCP]), 54),
        (
            LinkType::Ethernet,
            cat(&[
                &ETH_V4[..12],
                &QINQ_100,
                &VLAN_10,
                &[0x08, 0x00],
                &IPV4_OPTS_TCP,
            ]),
            66,
        ),
        (LinkType::Ethernet, cat(&[&ETH_V6, &IPV6_EXT_CHAIN]), 114),
        (LinkType::RawIp, IPV4_UDP.to_vec(), 28),
        (LinkType::RawIp, IPV6_UDP.to_vec(), 48),
        (LinkType::Null, cat(&[&[2, 0, 0, 0], &IPV4_OPTS_TCP]), 48),
        (LinkType::Null, cat(&[&[0, 0, 0, 28], &IPV6_TCP]), 64),
        (LinkType::Loop, cat(&[&[0, 0, 0, 24], &IPV6_EXT_CHAIN]), 104),
        (LinkType::LinuxSll, cat(&[&SLL_V4, &IPV4_UDP]), 44),
        (LinkType::LinuxSll2, cat(&[&SLL2_V6, &IPV6_EXT_CHAIN]), 120),
    ]
}

/// Parses `frame` as every link type and as a bare IP packet; checks what an Ok says.
fn parse_all(frame: &[u8], sink: &mut String) {
    let results = LinkType::ALL
        .iter()
        .map(|&link| parse(link, frame))
        .chain([parse_ip(frame)]);
    for result in results {
        match result {
            Ok(s) => {
                if s.proto == Proto::Udp {
                    assert_eq!(s.tcp_flags, 0);
                }
                assert_eq!(s.src.is_ipv6(), s.dst.is_ipv6());
                assert_eq!(s.ip_opts == IpOpts::Unknown, s.src.is_ipv6());
            }
            Err(skip) => {
                let _ = skip.is_malformed();
                sink.clear();
                let _ = write!(sink, "{skip}");
                assert!(!sink.is_empty());
            }
        }
    }
}

#[test]
fn every_truncation() {
    let mut sink = String::new();
    for (link, frame, headers) in seeds() {
        let full = parse(link, &frame);
        assert!(full.is_ok(), "{link}: {full:?}");
        for n in 0..=frame.len() {
            let prefix = &frame[..n];
            parse_all(prefix, &mut sink);
            let got = parse(link, prefix);
            if n < headers {
                assert!(
                    got.is_err_and(|s| s.is_malformed()),
                    "{link}, {n} of {} bytes: {got:?}",
                    frame.len()
                );
            } else {
                assert_eq!(got, full, "{link}, {n} of {} bytes", frame.len());
            }
        }
    }
}

#[test]
fn no_panic_on_pseudo_random_frames() {
    let seeds = seeds();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut sink = String::new();
    let mut frame = Vec::with_capacity(256);
    for i in 0..200_000 {
        frame.clear();
        if i % 4 == 0 {
            // Pure noise, biased towards IP-looking first bytes.
            let len = rng.below(128);
            frame.extend((0..len).map(|_| rng.next() as u8));
            if let Some(first) = frame.first_mut() {
                *first = [0x45, 0x4f, 0x60, 0x02, *first][rng.below(5)];
            }
        } else {
            // A valid frame with a few bytes changed, cut at a random length.
            let (_, seed, _) = &seeds[rng.below(seeds.len())];
            frame.extend_from_slice(seed);
            for _ in 0..=rng.below(4) {
                let at = rng.below(frame.len());
                frame[at] = match rng.below(4) {
                    0 => 0,
                    1 => 0xff,
                    _ => rng.next() as u8,
                };
            }
            frame.truncate(rng.below(frame.len() + 1));
        }
        parse_all(&frame, &mut sink);
    }
}
