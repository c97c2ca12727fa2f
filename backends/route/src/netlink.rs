//! rtnetlink messages for blackhole routes, built and parsed by hand (pure, no I/O).
//!
//! A request is `nlmsghdr` (16 bytes) + `rtmsg` (12 bytes) + attributes (`rtattr`, 4-byte
//! aligned). Integers are in host byte order, addresses in network byte order.

use crate::PROTO;
use portsentry_blocker::Net;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const NLMSG_HDRLEN: usize = 16;
pub const RTMSG_LEN: usize = 12;

pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_DELROUTE: u16 = 25;
pub const RTM_GETROUTE: u16 = 26;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_REPLACE: u16 = 0x100;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;

pub const AF_UNSPEC: u8 = 0;
pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;

pub const RT_TABLE_MAIN: u8 = 254;
pub const RT_SCOPE_UNIVERSE: u8 = 0;
/// In a delete request: match a route of any scope.
pub const RT_SCOPE_NOWHERE: u8 = 255;
pub const RTN_BLACKHOLE: u8 = 6;
/// A cached (cloned) route, never one of ours.
pub const RTM_F_CLONED: u32 = 0x200;

pub const RTA_DST: u16 = 1;
pub const RTA_TABLE: u16 = 15;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn family(net: &Net) -> u8 {
    match net.addr() {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    }
}

fn addr_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn push_attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    // An attribute is at most a 16-byte address, so its length always fits in u16.
    buf.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(align4(buf.len()), 0);
}

/// The fields of an `rtmsg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtMsg {
    pub family: u8,
    pub dst_len: u8,
    pub table: u8,
    pub protocol: u8,
    pub scope: u8,
    pub kind: u8,
    pub flags: u32,
}

/// A message: header, `rtmsg`, and (for a route) `RTA_DST` and `RTA_TABLE`; the length
/// is filled in last.
fn message(kind: u16, flags: u16, seq: u32, rt: RtMsg, dst: Option<&Net>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len, set below
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel fills it in
    buf.extend_from_slice(&[
        rt.family,
        rt.dst_len,
        0, // rtm_src_len
        0, // rtm_tos
        rt.table,
        rt.protocol,
        rt.scope,
        rt.kind,
    ]);
    buf.extend_from_slice(&rt.flags.to_ne_bytes());
    if let Some(net) = dst {
        push_attr(&mut buf, RTA_DST, &addr_bytes(net.addr()));
        push_attr(&mut buf, RTA_TABLE, &u32::from(RT_TABLE_MAIN).to_ne_bytes());
    }
    let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
    buf[..4].copy_from_slice(&len.to_ne_bytes());
    buf
}

fn route_msg(net: &Net, scope: u8) -> RtMsg {
    RtMsg {
        family: family(net),
        dst_len: net.prefix(),
        table: RT_TABLE_MAIN,
        protocol: PROTO,
        scope,
        kind: RTN_BLACKHOLE,
        flags: 0,
    }
}

/// `ip route add blackhole 198.18.0.1/32 proto 0x9e table main` (exclusive: a route
/// that is already there, ours or not, is never replaced).
pub fn encode_block(net: &Net, seq: u32) -> Vec<u8> {
    message(
        RTM_NEWROUTE,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        seq,
        route_msg(net, RT_SCOPE_UNIVERSE),
        Some(net),
    )
}

/// `ip route del blackhole 198.18.0.1/32 proto 0x9e table main`
///
/// The kernel deletes only a route with the same type and protocol, so a route someone
/// else added for the same destination is left alone.
pub fn encode_unblock(net: &Net, seq: u32) -> Vec<u8> {
    message(
        RTM_DELROUTE,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        route_msg(net, RT_SCOPE_NOWHERE),
        Some(net),
    )
}

/// `ip -4 route show table all; ip -6 route show table all` (one dump, all families)
pub fn encode_dump(seq: u32) -> Vec<u8> {
    let rt = RtMsg {
        family: AF_UNSPEC,
        dst_len: 0,
        table: 0,
        protocol: 0,
        scope: 0,
        kind: 0,
        flags: 0,
    };
    message(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq, rt, None)
}

/// A route from a dump: its `rtmsg`, table (`RTA_TABLE` if present) and destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    pub rt: RtMsg,
    pub table: u32,
    pub dst: Option<IpAddr>,
}

impl RouteInfo {
    /// The network if this is one of ours: a blackhole route in table main carrying
    /// [`PROTO`], not a cached clone.
    pub fn ours(&self) -> Option<Net> {
        if self.rt.protocol != PROTO
            || self.rt.kind != RTN_BLACKHOLE
            || self.table != u32::from(RT_TABLE_MAIN)
            || self.rt.flags & RTM_F_CLONED != 0
        {
            return None;
        }
        let addr = match (self.rt.family, self.dst) {
            (AF_INET, Some(a @ IpAddr::V4(_))) | (AF_INET6, Some(a @ IpAddr::V6(_))) => a,
            (AF_INET, None) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            (AF_INET6, None) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            _ => return None,
        };
        Net::new(addr, self.rt.dst_len).ok()
    }
}

/// One message of a kernel answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `NLMSG_ERROR`: `errno` 0 is an acknowledgement, otherwise a negated errno.
    Ack { seq: u32, errno: i32 },
    /// `NLMSG_DONE`: the end of a dump, with an error code where the kernel gives one.
    Done { seq: u32, errno: i32 },
    /// `RTM_NEWROUTE` in a dump.
    Route { seq: u32, route: RouteInfo },
    /// Anything else.
    Other { seq: u32 },
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

fn i32_at(b: &[u8], i: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

fn parse_route(body: &[u8]) -> Option<RouteInfo> {
    let h = body.get(..RTMSG_LEN)?;
    let rt = RtMsg {
        family: h[0],
        dst_len: h[1],
        table: h[4],
        protocol: h[5],
        scope: h[6],
        kind: h[7],
        flags: u32_at(h, 8)?,
    };
    let mut table = u32::from(rt.table);
    let mut dst = None;
    let mut i = RTMSG_LEN;
    while i + 4 <= body.len() {
        let len = usize::from(u16_at(body, i)?);
        let kind = u16_at(body, i + 2)?;
        if len < 4 || i + len > body.len() {
            return None;
        }
        let data = &body[i + 4..i + len];
        match kind {
            RTA_TABLE => table = u32_at(data, 0)?,
            RTA_DST => {
                dst = match data.len() {
                    4 => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(data).ok()?))),
                    16 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(data).ok()?))),
                    _ => return None,
                }
            }
            _ => {}
        }
        i += align4(len);
    }
    Some(RouteInfo { rt, table, dst })
}

/// Splits one datagram from the kernel into messages; `Err` names what is malformed.
pub fn parse(buf: &[u8]) -> Result<Vec<Reply>, &'static str> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + NLMSG_HDRLEN <= buf.len() {
        let len = u32_at(buf, i).ok_or("short header")? as usize;
        let kind = u16_at(buf, i + 4).ok_or("short header")?;
        let seq = u32_at(buf, i + 8).ok_or("short header")?;
        if len < NLMSG_HDRLEN || i + len > buf.len() {
            return Err("message length out of bounds");
        }
        let body = &buf[i + NLMSG_HDRLEN..i + len];
        out.push(match kind {
            NLMSG_ERROR => Reply::Ack {
                seq,
                errno: i32_at(body, 0).ok_or("short error message")?,
            },
            NLMSG_DONE => Reply::Done {
                seq,
                errno: i32_at(body, 0).unwrap_or(0),
            },
            RTM_NEWROUTE => Reply::Route {
                seq,
                route: parse_route(body).ok_or("bad route message")?,
            },
            _ => Reply::Other { seq },
        });
        i += align4(len);
    }
    if i < buf.len() && buf.len() - i >= 4 {
        return Err("trailing bytes");
    }
    Ok(out)
}
