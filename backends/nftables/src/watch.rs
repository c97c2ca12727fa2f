//! Change notifications for our table: who touched it besides us.
//!
//! In: the kernel's nf_tables notifications (netlink group `NFNLGRP_NFTABLES`), read
//! without blocking. Out: whether any message since the last look changed an object of
//! our table (table, chain, rule, set or element of `inet TABLE`) and came from another
//! socket than ours (our own batches are announced too, with our port id). When
//! notifications were lost (the receive buffer overran, as a flood of our own blocks can
//! make it) the answer is [`Seen::Lost`], and the caller checks the table itself. Must
//! not: block, or treat other tables' changes as ours.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};

/// What the notifications since the last look say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Nothing,
    /// Someone else changed our table.
    Changed,
    /// Notifications were lost: look at the table itself.
    Lost,
}

/// Receive buffer asked for: a burst of our own blocks announces every element.
const RCVBUF: usize = 4 << 20;

/// `NFNLGRP_NFTABLES`.
const GROUP: u32 = 7;
/// `NFPROTO_INET`.
const INET: u8 = 1;
/// `NFNL_SUBSYS_NFTABLES`.
const SUBSYS: u16 = 10;
/// Message types of nf_tables that name a table in attribute 1 (`NFTA_*_TABLE`):
/// NEWTABLE(0) DELTABLE(2) NEWCHAIN(3) DELCHAIN(5) NEWRULE(6) DELRULE(8) NEWSET(9)
/// DELSET(11) NEWSETELEM(12) DELSETELEM(14).
const TABLE_MSGS: [u16; 10] = [0, 2, 3, 5, 6, 8, 9, 11, 12, 14];

/// A subscription to nf_tables change notifications.
pub struct Watch {
    sock: OwnedFd,
    buf: Vec<u8>,
}

impl Watch {
    /// Subscribes; `None` when the kernel offers no such group (then the caller keeps
    /// polling for its table).
    pub fn open() -> Option<Watch> {
        let sock = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkNetFilter,
        )
        .ok()?;
        bind(sock.as_raw_fd(), &NetlinkAddr::new(0, 1 << (GROUP - 1))).ok()?;
        // as root past rmem_max; otherwise what the limit allows
        if setsockopt(&sock, sockopt::RcvBufForce, &RCVBUF).is_err() {
            let _ = setsockopt(&sock, sockopt::RcvBuf, &RCVBUF);
        }
        Some(Watch {
            sock,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Whether `table` (family inet) was changed by another socket than `own_portid`
    /// since the last call.
    pub fn look(&mut self, table: &str, own_portid: u32) -> Seen {
        let mut changed = false;
        let mut lost = false;
        loop {
            match recv(self.sock.as_raw_fd(), &mut self.buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) => break,
                Ok(n) => changed |= foreign_change(&self.buf[..n], table, own_portid),
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                // ENOBUFS: some were lost; keep reading what is there
                Err(Errno::ENOBUFS) => lost = true,
                Err(_) => {
                    lost = true;
                    break;
                }
            }
        }
        if changed {
            Seen::Changed
        } else if lost {
            Seen::Lost
        } else {
            Seen::Nothing
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Whether the messages in `data` change an object of `table` (inet) and were sent by
/// another port than `own`.
pub fn foreign_change(data: &[u8], table: &str, own: u32) -> bool {
    let mut off = 0;
    while let Some(len) = u32_at(data, off).map(|l| l as usize) {
        if len < 16 || off + len > data.len() {
            return false;
        }
        let msg = &data[off..off + len];
        off += (len + 3) & !3;
        let (Some(ty), Some(pid)) = (u16_at(msg, 4), u32_at(msg, 12)) else {
            continue;
        };
        if ty >> 8 != SUBSYS || !TABLE_MSGS.contains(&(ty & 0xff)) || pid == own {
            continue;
        }
        // nfgenmsg: family, version, res_id
        if msg.get(16) != Some(&INET) {
            continue;
        }
        if names_table(msg.get(20..).unwrap_or_default(), table) {
            return true;
        }
    }
    false
}

/// Whether the attributes carry `table` as attribute 1 (`NFTA_*_TABLE`).
fn names_table(mut attrs: &[u8], table: &str) -> bool {
    while let (Some(len), Some(ty)) = (u16_at(attrs, 0), u16_at(attrs, 2)) {
        let len = len as usize;
        if len < 4 || len > attrs.len() {
            return false;
        }
        if ty & 0x3fff == 1 {
            let v = &attrs[4..len];
            let v = v.strip_suffix(&[0]).unwrap_or(v);
            return v == table.as_bytes();
        }
        attrs = attrs.get((len + 3) & !3..).unwrap_or_default();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ty: u16, pid: u32, family: u8, table: &str) -> Vec<u8> {
        let mut attr = Vec::new();
        let name = format!("{table}\0");
        attr.extend_from_slice(&((4 + name.len()) as u16).to_ne_bytes());
        attr.extend_from_slice(&1u16.to_ne_bytes());
        attr.extend_from_slice(name.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let len = 16 + 4 + attr.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&((SUBSYS << 8) | ty).to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&pid.to_ne_bytes());
        m.extend_from_slice(&[family, 0, 0, 0]);
        m.extend_from_slice(&attr);
        m
    }

    #[test]
    fn only_others_changes_of_our_inet_table_count() {
        // DELRULE of inet portsentry by another port: ours
        assert!(foreign_change(
            &msg(8, 77, 1, "portsentry"),
            "portsentry",
            42
        ));
        // the same by our own socket, another table, another family: not
        assert!(!foreign_change(
            &msg(8, 42, 1, "portsentry"),
            "portsentry",
            42
        ));
        assert!(!foreign_change(&msg(8, 77, 1, "filter"), "portsentry", 42));
        assert!(!foreign_change(
            &msg(8, 77, 2, "portsentry"),
            "portsentry",
            42
        ));
        // a NEWGEN (type 15) names no table
        assert!(!foreign_change(
            &msg(15, 77, 1, "portsentry"),
            "portsentry",
            42
        ));
        // two messages in one read, the second counts
        let mut two = msg(12, 42, 1, "portsentry");
        two.extend(msg(14, 9, 1, "portsentry"));
        assert!(foreign_change(&two, "portsentry", 42));
        // garbage never panics
        assert!(!foreign_change(&[1, 2, 3], "portsentry", 42));
        assert!(!foreign_change(&[0xff; 40], "portsentry", 42));
    }
}
