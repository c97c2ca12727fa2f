//! Which ports are in use at start-up (`docs/compat.md` §10.1), for `-stcp`/`-sudp` and the
//! advanced modes `-atcp`/`-audp`.
//!
//! In: a protocol and ports. Out: the ports where a bind on `0.0.0.0:port` fails now.
//! TCP probes set SO_REUSEADDR, so a port whose only sockets are in TIME_WAIT is free
//! (1.2 counted those as in use); nothing listens, and every probe socket is closed at
//! once. Must not: log, or keep any socket open.

use std::net::{Ipv4Addr, SocketAddrV4};

use nix::errno::Errno;
use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};

use crate::model::{PortSet, Proto};

/// Whether binding `0.0.0.0:port` for `proto` fails now because the address is taken.
/// A probe that fails for another reason (out of descriptors, ...) says "free":
/// watching a port too many is harmless, missing a scan is not.
pub fn in_use(proto: Proto, port: u16) -> bool {
    try_bind(proto, port) == Err(Errno::EADDRINUSE)
}

fn try_bind(proto: Proto, port: u16) -> Result<(), Errno> {
    let ty = match proto {
        Proto::Tcp => SockType::Stream,
        Proto::Udp => SockType::Datagram,
    };
    let fd = socket::socket(AddressFamily::Inet, ty, SockFlag::SOCK_CLOEXEC, None)?;
    if proto == Proto::Tcp {
        socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    let sa = SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port));
    use std::os::fd::AsRawFd;
    socket::bind(fd.as_raw_fd(), &sa)
}

/// The ports of `set` in use now, ascending.
pub fn in_use_of(proto: Proto, set: &PortSet) -> Vec<u16> {
    set.iter().filter(|p| in_use(proto, *p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_port_is_in_use_and_a_closed_one_is_not() {
        // An unprivileged high port, bound on the wildcard like a service would.
        let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(in_use(Proto::Tcp, port));
        let u = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        let uport = u.local_addr().unwrap().port();
        assert!(in_use(Proto::Udp, uport));
        drop(l);
        drop(u);
        assert!(!in_use(Proto::Tcp, port));
        assert!(!in_use(Proto::Udp, uport));
    }

    #[test]
    fn time_wait_does_not_count() {
        // The side that closes first keeps TIME_WAIT on its local port.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (a, _) = l.accept().unwrap();
        drop(a);
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(c);
        drop(l);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!in_use(Proto::Tcp, port), "TIME_WAIT on {port} counted");
    }

    #[test]
    fn in_use_of_lists_ascending() {
        let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut set = PortSet::new();
        set.insert(port);
        assert_eq!(in_use_of(Proto::Tcp, &set), vec![port]);
    }
}
