//! The Linux raw-socket capture: one AF_PACKET socket over every interface, IPv4 and
//! IPv6, host-addressed frames only, port filter in user space.
//!
//! In: nothing but the port sets (given to [`RawSource::run`]). Out: [`Input::Packet`]
//! for every parsed TCP segment / UDP datagram addressed to this host on a monitored
//! port (never ACK or RST segments, see [`Ports::wants`]), [`Input::Malformed`] for
//! frames the parser calls malformed, [`Input::SourceError`] when the socket fails for
//! good. Frames sent by this host, broadcast, multicast and other hosts' frames are
//! dropped by the kernel's packet type (only PACKET_HOST is kept).
//!
//! The socket is SOCK_DGRAM ("cooked"): the kernel strips whatever link header the
//! device has (Ethernet, loopback's zero Ethernet header, none at all on tun, WireGuard
//! or PPP) and reports the network protocol in `sockaddr_ll`, so every interface works
//! the same way: IPv4 and IPv6 packets go to [`crate::packet::parse_ip`], other
//! protocols (ARP, ...) are dropped unparsed.
//!
//! Must not: log, judge events, or block anywhere but on the channel (back-pressure from
//! the engine) and in poll() with a short timeout so the stop flag is seen.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::SystemTime;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self, sockopt, AddressFamily, LinkAddr, SockFlag, SockProtocol, SockType};

use super::{Input, Ports, Sender, StopFlag};
use crate::packet::parse_ip;

/// poll() timeout; bounds how long a set stop flag goes unnoticed.
const POLL_MS: u16 = 250;
/// Frames read per wake-up before the stop flag is looked at again.
const DRAIN_MAX: usize = 4096;
/// Receive buffer asked of the kernel (SO_RCVBUF); failure is ignored.
const RCVBUF: usize = 4 << 20;
/// Room for one packet: GRO/BIG TCP aggregates can exceed 64 KiB. A longer one is
/// truncated by the kernel; its headers still parse.
const PACKET_BUF: usize = 256 * 1024;

/// An open AF_PACKET socket.
#[derive(Debug)]
pub struct RawSource {
    fd: OwnedFd,
}

impl RawSource {
    /// One AF_PACKET socket with protocol ETH_P_ALL (IPv4 and IPv6), receiving from all
    /// interfaces, non-blocking, close-on-exec, with a 4 MiB receive buffer if the
    /// kernel allows it. Needs CAP_NET_RAW.
    pub fn open() -> Result<RawSource, io::Error> {
        let fd = socket::socket(
            AddressFamily::Packet,
            SockType::Datagram,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            SockProtocol::EthAll,
        )?;
        // RcvBufForce passes rmem_max when privileged; fall back to the capped one.
        if socket::setsockopt(&fd, sockopt::RcvBufForce, &RCVBUF).is_err() {
            let _ = socket::setsockopt(&fd, sockopt::RcvBuf, &RCVBUF);
        }
        Ok(RawSource { fd })
    }

    /// Until `stop` is set (noticed within [`POLL_MS`]) or the receiving side of `tx` is
    /// gone: poll, then read frames until the socket would block; host-addressed ones
    /// are parsed and, if `ports` wants them, sent as [`Input::Packet`]; malformed ones as
    /// [`Input::Malformed`]; everything else is dropped. Blocks on `tx` when the channel
    /// is full. A socket error that will not go away is sent as [`Input::SourceError`]
    /// and ends the loop.
    pub fn run(self, ports: Ports, tx: Sender, stop: StopFlag) {
        let mut buf = vec![0u8; PACKET_BUF];
        while !stop.stopped() {
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(POLL_MS)) {
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Input::SourceError(format!(
                        "raw socket capture: poll failed: {e}"
                    )));
                    return;
                }
            }
            for _ in 0..DRAIN_MAX {
                let (n, from) = match socket::recvfrom::<LinkAddr>(self.fd.as_raw_fd(), &mut buf) {
                    Ok((n, Some(from))) => (n, from),
                    Ok((_, None)) => continue,
                    Err(Errno::EAGAIN) => break,
                    Err(Errno::EINTR) => continue,
                    // Transient: an interface went away, memory pressure.
                    Err(Errno::ENETDOWN | Errno::ENXIO | Errno::ENOBUFS | Errno::ENOMEM) => break,
                    Err(e) => {
                        let _ = tx.send(Input::SourceError(format!(
                            "raw socket capture: receive failed: {e}"
                        )));
                        return;
                    }
                };
                if from.pkttype() != libc::PACKET_HOST {
                    continue;
                }
                if !is_ip(from.protocol()) {
                    continue;
                }
                let Some(packet) = buf.get(..n) else {
                    continue;
                };
                let Some(msg) = ports.input(parse_ip(packet), SystemTime::now) else {
                    continue;
                };
                if tx.send(msg).is_err() {
                    return;
                }
            }
        }
    }
}

/// Whether a `sockaddr_ll` protocol (network byte order) is IPv4 or IPv6.
fn is_ip(protocol: u16) -> bool {
    matches!(
        i32::from(u16::from_be(protocol)),
        libc::ETH_P_IP | libc::ETH_P_IPV6
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PortSet, Proto};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
    use std::sync::mpsc::{sync_channel, Receiver};
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    const WAIT: Duration = Duration::from_secs(5);

    /// The raw socket needs root (CAP_NET_RAW); say why the test did nothing otherwise.
    fn privileged(test: &str) -> bool {
        match RawSource::open() {
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                eprintln!("{test}: skipped, an AF_PACKET socket needs root/CAP_NET_RAW: {e}");
                false
            }
            Err(e) => panic!("{test}: opening the raw socket failed: {e}"),
        }
    }

    /// A port nothing listens on right now (the kernel's pick, then closed).
    fn closed_port(ip: IpAddr) -> u16 {
        match TcpListener::bind(SocketAddr::new(ip, 0)).and_then(|l| l.local_addr()) {
            Ok(a) => a.port(),
            Err(e) => panic!("no port on {ip}: {e}"),
        }
    }

    fn start(ports: Ports) -> (Receiver<Input>, StopFlag, JoinHandle<()>) {
        let src = match RawSource::open() {
            Ok(s) => s,
            Err(e) => panic!("open raw source as root: {e}"),
        };
        let (tx, rx) = sync_channel(64);
        let stop = StopFlag::default();
        let s = stop.clone();
        let h = std::thread::spawn(move || src.run(ports, tx.into(), s));
        (rx, stop, h)
    }

    fn stop_within(stop: &StopFlag, h: JoinHandle<()>) {
        let t = Instant::now();
        stop.stop();
        while !h.is_finished() {
            assert!(
                t.elapsed() < Duration::from_millis(1500),
                "run() ignores stop"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(h.join().is_ok(), "run() panicked");
    }

    /// Packets for `dport` seen until `until` passes (other inputs are ignored).
    fn packets_to(rx: &Receiver<Input>, dport: u16, until: Instant) -> Vec<crate::packet::Summary> {
        let mut seen = Vec::new();
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(Input::Packet { summary, .. }) if summary.dport == dport => seen.push(summary),
                Ok(Input::SourceError(e)) => panic!("source error: {e}"),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        seen
    }

    fn ports(tcp: &[u16], udp: &[u16]) -> Ports {
        let mut p = Ports {
            tcp: PortSet::new(),
            udp: PortSet::new(),
        };
        tcp.iter().for_each(|x| p.tcp.insert(*x));
        udp.iter().for_each(|x| p.udp.insert(*x));
        p
    }

    fn has_ipv6() -> bool {
        UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
    }

    #[test]
    fn syn_to_a_closed_port_arrives_once() {
        if !privileged("syn_to_a_closed_port_arrives_once") {
            return;
        }
        let mut targets = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
        if has_ipv6() {
            targets.push(IpAddr::V6(Ipv6Addr::LOCALHOST));
        }
        for ip in targets {
            let port = closed_port(ip);
            let (rx, stop, h) = start(ports(&[port], &[]));
            // A connect() to the closed port sends one SYN; the RST answer is not wanted.
            let client = TcpStream::connect_timeout(&SocketAddr::new(ip, port), WAIT);
            assert!(client.is_err(), "port {port} on {ip} was not closed");
            let seen = packets_to(&rx, port, Instant::now() + Duration::from_millis(700));
            // Loopback shows each frame outgoing and incoming: only the incoming is kept.
            assert_eq!(seen.len(), 1, "{ip}: {seen:?}");
            let s = seen[0];
            assert_eq!((s.proto, s.src, s.dst, s.dport), (Proto::Tcp, ip, ip, port));
            assert_eq!(s.tcp_flags & 0x3f, crate::model::scan::SYN);
            stop_within(&stop, h);
        }
    }

    #[test]
    fn udp_to_a_monitored_port_arrives_and_others_do_not() {
        if !privileged("udp_to_a_monitored_port_arrives_and_others_do_not") {
            return;
        }
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let (watched, unwatched) = (closed_port(ip), closed_port(ip));
        let (rx, stop, h) = start(ports(&[], &[watched]));
        let client = match UdpSocket::bind(SocketAddr::new(ip, 0)) {
            Ok(c) => c,
            Err(e) => panic!("bind client: {e}"),
        };
        assert!(client.send_to(b"", SocketAddr::new(ip, unwatched)).is_ok());
        assert!(client
            .send_to(b"probe", SocketAddr::new(ip, watched))
            .is_ok());
        let until = Instant::now() + Duration::from_millis(700);
        let mut got = Vec::new();
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(Input::Packet { summary, .. }) => got.push(summary),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let to_test: Vec<_> = got
            .iter()
            .filter(|s| s.dport == watched || s.dport == unwatched)
            .collect();
        assert_eq!(to_test.len(), 1, "{got:?}");
        assert_eq!((to_test[0].proto, to_test[0].dport), (Proto::Udp, watched));
        stop_within(&stop, h);
    }

    #[test]
    fn open_without_root_fails_cleanly_or_works() {
        // Whatever the privileges, open() returns instead of panicking.
        match RawSource::open() {
            Ok(_) => {}
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}"),
        }
    }

    #[test]
    fn only_ip_protocols_are_parsed() {
        assert!(is_ip(0x0800u16.to_be()));
        assert!(is_ip(0x86ddu16.to_be()));
        assert!(!is_ip(0x0806u16.to_be()));
        assert!(!is_ip(0x0800));
    }
}
