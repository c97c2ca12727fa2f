//! What the engine may ask about this host: is a service bound there, is this one of our
//! addresses.
//!
//! In: a protocol, address and port, or an address. Out: yes or no, from state kept in
//! memory, so answering never costs a syscall on the packet path. [`SystemFacts`] is the
//! real implementation shared by the 2.x daemon, 1.2 mode and the CLI: the service
//! snapshot of [`service`] (sock_diag, refreshed off the packet path) and one set of this
//! host's addresses, re-read whenever the kernel reports an address change (rtnetlink on
//! Linux; every few seconds elsewhere). [`FixedFacts`] answers from fixed sets, for
//! tests. Must not: log, decide anything, or block the caller on I/O.

pub mod service;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::model::Proto;

/// The two questions the engine and the blocklist ask about this host.
pub trait HostFacts: Send + Sync {
    /// Whether a local service is bound at `dst:port` (or the wildcard address).
    fn service_bound(&self, proto: Proto, dst: IpAddr, port: u16) -> bool;

    /// Whether `ip` is loopback, unspecified, or an address of one of this host's
    /// interfaces (IPv4-mapped addresses count as IPv4).
    fn is_own(&self, ip: IpAddr) -> bool;

    /// Every address of this host's interfaces (to keep networks that contain one from
    /// being blocked).
    fn own_addresses(&self) -> Vec<IpAddr>;

    /// From now on, keep the own-address set current (started only where it is asked:
    /// an idle 2.x daemon without typed blocking never asks). Idempotent.
    fn follow(&self) {}
}

/// Loopback and the unspecified addresses are never a scanner we may block.
pub fn is_special(ip: IpAddr) -> bool {
    let ip = portsentry_blocker::canonical(ip);
    ip.is_loopback() || ip.is_unspecified()
}

/// Fixed answers, for tests.
#[derive(Debug, Default, Clone)]
pub struct FixedFacts {
    pub bound: HashSet<(Proto, IpAddr, u16)>,
    pub own: HashSet<IpAddr>,
}

impl HostFacts for FixedFacts {
    fn service_bound(&self, proto: Proto, dst: IpAddr, port: u16) -> bool {
        self.bound.contains(&(proto, dst, port))
    }

    fn is_own(&self, ip: IpAddr) -> bool {
        is_special(ip) || self.own.contains(&portsentry_blocker::canonical(ip))
    }

    fn own_addresses(&self) -> Vec<IpAddr> {
        self.own.iter().copied().collect()
    }
}

/// This host's addresses, read now.
pub fn read_own_addresses() -> HashSet<IpAddr> {
    match nix::ifaddrs::getifaddrs() {
        Ok(addrs) => addrs
            .filter_map(|a| {
                let sa = a.address?;
                if let Some(v4) = sa.as_sockaddr_in() {
                    return Some(IpAddr::V4(v4.ip()));
                }
                sa.as_sockaddr_in6()
                    .map(|v6| portsentry_blocker::canonical(IpAddr::V6(v6.ip())))
            })
            .collect(),
        Err(_) => HashSet::new(),
    }
}

/// The real answers: the service snapshot and the followed address set.
pub struct SystemFacts {
    service: Option<Mutex<service::ServiceCheck>>,
    own: Arc<RwLock<HashSet<IpAddr>>>,
    following: std::sync::Once,
}

/// How often the address set is re-read where the kernel cannot tell us of changes.
const ADDRESS_POLL: Duration = Duration::from_secs(5);

impl SystemFacts {
    /// Reads the addresses now, and (with `follow`) keeps them current from a background
    /// thread for the life of the process (see [`HostFacts::follow`]). With
    /// `service_check` off, no service is ever reported bound.
    pub fn start(service_check: bool, follow: bool) -> Arc<SystemFacts> {
        let facts = Arc::new(SystemFacts {
            service: service_check
                .then(|| Mutex::new(service::ServiceCheck::new(Duration::from_secs(1)))),
            own: Arc::new(RwLock::new(read_own_addresses())),
            following: std::sync::Once::new(),
        });
        if follow {
            facts.follow();
        }
        facts
    }
}

impl HostFacts for SystemFacts {
    fn service_bound(&self, proto: Proto, dst: IpAddr, port: u16) -> bool {
        match &self.service {
            Some(s) => s
                .lock()
                .map(|mut s| s.is_running(proto, dst, port))
                .unwrap_or(false),
            None => false,
        }
    }

    fn is_own(&self, ip: IpAddr) -> bool {
        let ip = portsentry_blocker::canonical(ip);
        is_special(ip) || self.own.read().map(|g| g.contains(&ip)).unwrap_or(false)
    }

    fn own_addresses(&self) -> Vec<IpAddr> {
        self.own
            .read()
            .map(|g| g.iter().copied().collect())
            .unwrap_or_default()
    }

    fn follow(&self) {
        self.following.call_once(|| {
            let own = Arc::downgrade(&self.own);
            // re-read now: the set may be old by the time following is asked for
            if let Ok(mut g) = self.own.write() {
                *g = read_own_addresses();
            };
            std::thread::spawn(move || {
                let watch = ChangeWatch::new(ADDRESS_POLL);
                loop {
                    watch.wait();
                    let Some(own) = own.upgrade() else { return };
                    let fresh = read_own_addresses();
                    if let Ok(mut g) = own.write() {
                        *g = fresh;
                    };
                }
            });
        });
    }
}

/// Waits for the kernel to report a change of links or addresses. Linux: an rtnetlink
/// socket on the link and address groups, so an idle daemon does no work at all; the
/// burst of messages one change makes is drained before returning. Elsewhere (or if
/// the socket cannot be had): a fixed period.
pub(crate) struct ChangeWatch {
    #[cfg(target_os = "linux")]
    sock: Option<std::os::fd::OwnedFd>,
    every: Duration,
}

impl ChangeWatch {
    pub(crate) fn new(every: Duration) -> ChangeWatch {
        ChangeWatch {
            #[cfg(target_os = "linux")]
            sock: rtnetlink_groups(),
            every,
        }
    }

    pub(crate) fn wait(&self) {
        #[cfg(target_os = "linux")]
        if let Some(sock) = &self.sock {
            use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
            use nix::sys::socket::{recv, MsgFlags};
            use std::os::fd::{AsFd, AsRawFd};
            let mut buf = [0u8; 8192];
            if recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()).is_err() {
                std::thread::sleep(self.every);
                return;
            }
            // drain until quiet for 200 ms (one `ip addr add` makes several messages)
            loop {
                let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, PollTimeout::from(200u16)) {
                    Ok(n) if n > 0 => {
                        let _ = recv(sock.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT);
                    }
                    _ => return,
                }
            }
        }
        std::thread::sleep(self.every);
    }
}

#[cfg(target_os = "linux")]
fn rtnetlink_groups() -> Option<std::os::fd::OwnedFd> {
    use nix::sys::socket::{
        bind, socket, AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType,
    };
    use std::os::fd::AsRawFd;
    const RTMGRP_LINK: u32 = 0x1;
    const RTMGRP_IPV4_IFADDR: u32 = 0x10;
    const RTMGRP_IPV6_IFADDR: u32 = 0x100;
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .ok()?;
    let groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups)).ok()?;
    Some(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_own_addresses() {
        let f = SystemFacts::start(false, false);
        assert!(f.is_own("127.0.0.1".parse().unwrap()));
        assert!(f.is_own("::1".parse().unwrap()));
        assert!(f.is_own("::ffff:127.0.0.1".parse().unwrap()));
        assert!(f.is_own("0.0.0.0".parse().unwrap()));
        assert!(!f.is_own("198.18.255.254".parse().unwrap()));
        assert!(!f.service_bound(Proto::Tcp, "127.0.0.1".parse().unwrap(), 22));
        let fixed = FixedFacts {
            own: ["198.18.0.1".parse().unwrap()].into(),
            ..FixedFacts::default()
        };
        assert!(fixed.is_own("::ffff:198.18.0.1".parse().unwrap()));
        assert!(!fixed.is_own("198.18.0.2".parse().unwrap()));
    }
}
