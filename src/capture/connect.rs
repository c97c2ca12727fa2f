//! Connect-mode listeners: one socket per monitored port, accepted connections and
//! received datagrams forwarded as [`Input::Connect`].
//!
//! In: the TCP and UDP port sets (and whether to bind IPv4 only, for the 1.2 legacy
//! modes). Out: the bound [`Listeners`] plus a [`BindFailure`] per port that could not be
//! bound; [`Listeners::run`] then sends one [`Input::Connect`] per accepted TCP connection
//! or UDP datagram (and [`Input::AcceptFailed`] when accept() fails) until the stop flag
//! is set. Addresses are reported un-mapped (`::ffff:10.0.0.1` becomes `10.0.0.1`).
//!
//! Must not: log, decide what an event means, write banners or close connections on
//! purpose (the accepted stream / UDP socket goes to the engine, which answers and drops
//! it), nor block anywhere but on the channel (back-pressure from the engine) and in
//! poll() with a short timeout so the stop flag is seen.

use std::io;
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener, UdpSocket,
};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    self, sockopt, AddressFamily, Backlog, ControlMessageOwned, MsgFlags, SockFlag, SockType,
    SockaddrIn, SockaddrIn6, SockaddrStorage,
};

use super::{Conn, Input, Sender, StopFlag};
use crate::model::{PortSet, Proto};

/// listen() backlog of every TCP listener.
const BACKLOG: i32 = 128;
/// poll() timeout; bounds how long a set stop flag goes unnoticed.
const POLL_MS: u16 = 250;
/// At most this many accepts / datagrams per socket per wake-up, so one flooded port
/// cannot starve the others or hide the stop flag.
const DRAIN_MAX: usize = 256;
/// Pause after accept() failed for lack of resources (EMFILE, ...): the pending
/// connection stays queued, so without a pause the loop would spin.
const RESOURCE_BACKOFF: Duration = Duration::from_millis(250);
/// Receive buffer for one UDP datagram (the largest possible UDP payload fits).
const UDP_BUF: usize = 64 * 1024;

/// A port that could not be bound (the caller logs `Could not bind ...`).
#[derive(Debug)]
pub struct BindFailure {
    pub proto: Proto,
    pub port: u16,
    pub error: io::Error,
}

/// The bound connect-mode sockets, TCP and UDP, each sorted by port.
#[derive(Debug, Default)]
pub struct Listeners {
    tcp: Vec<(u16, TcpListener)>,
    udp: Vec<(u16, Arc<UdpSocket>)>,
}

/// The outcome of one attempt to open a socket on one address family.
enum Attempt {
    Bound(OwnedFd),
    /// The family (or dual-stack operation) is not available on this host.
    Unavailable,
    Failed(Errno),
}

impl Listeners {
    /// Binds one dual-stack socket per port (`[::]:port` with IPV6_V6ONLY off,
    /// SO_REUSEADDR on for TCP), TCP listening (backlog 128) and UDP. When IPv6 is
    /// unavailable (EAFNOSUPPORT/EADDRNOTAVAIL on `[::]`, or IPV6_V6ONLY cannot be turned
    /// off) every later port is bound on `0.0.0.0` instead. `ipv4_only` binds `0.0.0.0`
    /// only (for the 1.2 legacy modes). Returns the bound listeners and the ports that
    /// could not be bound (the caller logs them, and errors out if nothing was bound).
    pub fn bind(tcp: &PortSet, udp: &PortSet, ipv4_only: bool) -> (Listeners, Vec<BindFailure>) {
        let mut dual = !ipv4_only;
        let mut out = Listeners::default();
        let mut failures = Vec::new();
        for (proto, ports) in [(Proto::Tcp, tcp), (Proto::Udp, udp)] {
            for port in ports.iter() {
                match open(proto, port, &mut dual) {
                    Ok(fd) => match proto {
                        Proto::Tcp => out.tcp.push((port, TcpListener::from(fd))),
                        Proto::Udp => out.udp.push((port, Arc::new(UdpSocket::from(fd)))),
                    },
                    Err(e) => failures.push(BindFailure {
                        proto,
                        port,
                        error: io::Error::from(e),
                    }),
                }
            }
        }
        out.tcp.sort_by_key(|(p, _)| *p);
        out.udp.sort_by_key(|(p, _)| *p);
        (out, failures)
    }

    /// The bound ports: TCP first, then UDP, each in ascending port order.
    pub fn bound(&self) -> Vec<(Proto, u16)> {
        self.tcp
            .iter()
            .map(|(p, _)| (Proto::Tcp, *p))
            .chain(self.udp.iter().map(|(p, _)| (Proto::Udp, *p)))
            .collect()
    }

    /// Runs until `stop` is set (noticed within [`POLL_MS`]) or the receiving side of `tx`
    /// is gone: poll() over all sockets, accept() every pending TCP connection and read
    /// every pending UDP datagram (zero-length ones included), sending one
    /// [`Input::Connect`] each. Blocks on `tx` when the channel is full. A failed poll()
    /// is reported as [`Input::SourceError`] and ends the loop.
    pub fn run(self, tx: Sender, stop: StopFlag) {
        let mut buf = vec![0u8; UDP_BUF];
        let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::in6_pktinfo);
        let ntcp = self.tcp.len();
        let mut fds: Vec<PollFd<'_>> = self
            .tcp
            .iter()
            .map(|(_, l)| l.as_fd())
            .chain(self.udp.iter().map(|(_, s)| s.as_fd()))
            .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
            .collect();
        let ready = PollFlags::POLLIN | PollFlags::POLLERR | PollFlags::POLLHUP;

        while !stop.stopped() {
            match poll(&mut fds, PollTimeout::from(POLL_MS)) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    let _ = tx.send(Input::SourceError(format!(
                        "connect-mode listeners: poll failed: {e}"
                    )));
                    return;
                }
            }
            let mut backoff = false;
            for (i, pfd) in fds.iter().enumerate() {
                if !pfd.revents().is_some_and(|r| r.intersects(ready)) {
                    continue;
                }
                let flow = if let Some((port, listener)) = self.tcp.get(i) {
                    drain_tcp(*port, listener, &tx, &mut backoff)
                } else if let Some((port, sock)) = self.udp.get(i - ntcp) {
                    drain_udp(*port, sock, &mut buf, &mut cmsg, &tx)
                } else {
                    Flow::Continue
                };
                if let Flow::Stop = flow {
                    return;
                }
                if stop.stopped() {
                    return;
                }
            }
            if backoff {
                std::thread::sleep(RESOURCE_BACKOFF);
            }
        }
    }
}

/// Whether the run loop goes on after a socket was drained.
enum Flow {
    Continue,
    /// The engine is gone.
    Stop,
}

/// Accepts every pending connection on one TCP listener.
fn drain_tcp(port: u16, listener: &TcpListener, tx: &Sender, backoff: &mut bool) -> Flow {
    for _ in 0..DRAIN_MAX {
        match listener.accept() {
            Ok((stream, peer)) => {
                // The engine writes the banner with plain blocking writes.
                let _ = stream.set_nonblocking(false);
                let src = peer.ip().to_canonical();
                let local = match stream.local_addr() {
                    Ok(a) => a.ip().to_canonical(),
                    Err(_) => unspecified_like(src),
                };
                let msg = Input::Connect {
                    ts: SystemTime::now(),
                    proto: Proto::Tcp,
                    src,
                    local,
                    port,
                    conn: Conn::Tcp(stream),
                };
                if tx.send(msg).is_err() {
                    return Flow::Stop;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let errno = Errno::from_raw(e.raw_os_error().unwrap_or(0));
                if matches!(
                    errno,
                    Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM
                ) {
                    *backoff = true;
                }
                let msg = Input::AcceptFailed {
                    port,
                    errno: errno as i32,
                    err: errno.desc().to_string(),
                };
                if tx.send(msg).is_err() {
                    return Flow::Stop;
                }
                // The next poll() tells whether more is pending.
                break;
            }
        }
    }
    Flow::Continue
}

/// Reads every pending datagram on one UDP socket.
fn drain_udp(
    port: u16,
    sock: &Arc<UdpSocket>,
    buf: &mut [u8],
    cmsg: &mut [u8],
    tx: &Sender,
) -> Flow {
    for _ in 0..DRAIN_MAX {
        let (peer, local) = {
            let mut iov = [io::IoSliceMut::new(buf)];
            let msg = match socket::recvmsg::<SockaddrStorage>(
                sock.as_raw_fd(),
                &mut iov,
                Some(&mut *cmsg),
                MsgFlags::empty(),
            ) {
                Ok(m) => m,
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                // A queued error (an ICMP report, ...) was consumed; poll again.
                Err(_) => break,
            };
            let Some(peer) = msg.address.as_ref().and_then(std_addr) else {
                continue;
            };
            let local = msg
                .cmsgs()
                .ok()
                .and_then(|mut it| it.find_map(dst_addr))
                .map(|ip| ip.to_canonical());
            (peer, local)
        };
        let src = peer.ip().to_canonical();
        let msg = Input::Connect {
            ts: SystemTime::now(),
            proto: Proto::Udp,
            src,
            local: local.unwrap_or_else(|| unspecified_like(src)),
            port,
            conn: Conn::Udp(Arc::clone(sock), peer),
        };
        if tx.send(msg).is_err() {
            return Flow::Stop;
        }
    }
    Flow::Continue
}

/// The unspecified address of `ip`'s family.
fn unspecified_like(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// A nix socket address as a std one (kept as received: the engine replies to it on the
/// same socket, so an IPv4-mapped peer stays mapped here).
fn std_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v6) = a.as_sockaddr_in6() {
        return Some(SocketAddr::V6(SocketAddrV6::from(*v6)));
    }
    a.as_sockaddr_in()
        .map(|v4| SocketAddr::V4(SocketAddrV4::from(*v4)))
}

/// The destination address of a datagram, from its packet-info control message.
fn dst_addr(c: ControlMessageOwned) -> Option<IpAddr> {
    match c {
        #[cfg(any(
            target_os = "linux",
            target_os = "android",
            target_os = "freebsd",
            target_os = "dragonfly",
            target_os = "netbsd",
            target_os = "openbsd",
            target_os = "macos",
            target_os = "ios"
        ))]
        ControlMessageOwned::Ipv6PacketInfo(pi) => {
            Some(IpAddr::V6(Ipv6Addr::from(pi.ipi6_addr.s6_addr)))
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        ControlMessageOwned::Ipv4PacketInfo(pi) => {
            Some(IpAddr::V4(Ipv4Addr::from(pi.ipi_addr.s_addr.to_ne_bytes())))
        }
        #[cfg(any(
            target_os = "freebsd",
            target_os = "dragonfly",
            target_os = "netbsd",
            target_os = "openbsd",
            target_os = "macos",
            target_os = "ios"
        ))]
        ControlMessageOwned::Ipv4RecvDstAddr(a) => {
            Some(IpAddr::V4(Ipv4Addr::from(a.s_addr.to_ne_bytes())))
        }
        _ => None,
    }
}

/// Asks for the destination address of every received datagram. Best effort: without
/// it the datagram is reported with the unspecified local address.
fn want_dst_addr(fd: &OwnedFd, v6: bool) {
    if v6 {
        #[cfg(any(
            target_os = "linux",
            target_os = "android",
            target_os = "freebsd",
            target_os = "dragonfly",
            target_os = "netbsd",
            target_os = "openbsd",
            target_os = "macos",
            target_os = "ios"
        ))]
        let _ = socket::setsockopt(fd, sockopt::Ipv6RecvPacketInfo, &true);
        // BSDs hand IPv4 datagrams on a dual-stack socket the IPv4 options.
        #[cfg(any(
            target_os = "freebsd",
            target_os = "dragonfly",
            target_os = "netbsd",
            target_os = "openbsd",
            target_os = "macos",
            target_os = "ios"
        ))]
        let _ = socket::setsockopt(fd, sockopt::Ipv4RecvDstAddr, &true);
    } else {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let _ = socket::setsockopt(fd, sockopt::Ipv4PacketInfo, &true);
        #[cfg(any(
            target_os = "freebsd",
            target_os = "dragonfly",
            target_os = "netbsd",
            target_os = "openbsd",
            target_os = "macos",
            target_os = "ios"
        ))]
        let _ = socket::setsockopt(fd, sockopt::Ipv4RecvDstAddr, &true);
    }
}

/// Opens one socket for `proto` on `port`: dual-stack while `*dual` holds, else (or
/// once IPv6 proved unavailable, which clears `*dual`) IPv4 only.
fn open(proto: Proto, port: u16, dual: &mut bool) -> Result<OwnedFd, Errno> {
    if *dual {
        match attempt(proto, port, true) {
            Attempt::Bound(fd) => return Ok(fd),
            Attempt::Failed(e) => return Err(e),
            Attempt::Unavailable => *dual = false,
        }
    }
    match attempt(proto, port, false) {
        Attempt::Bound(fd) => Ok(fd),
        Attempt::Failed(e) => Err(e),
        Attempt::Unavailable => Err(Errno::EAFNOSUPPORT),
    }
}

/// socket(), options, bind() and (TCP) listen() on `[::]:port` or `0.0.0.0:port`.
fn attempt(proto: Proto, port: u16, v6: bool) -> Attempt {
    let family = if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    let ty = match proto {
        Proto::Tcp => SockType::Stream,
        Proto::Udp => SockType::Datagram,
    };
    let unavailable = |e: Errno| {
        matches!(
            e,
            Errno::EAFNOSUPPORT | Errno::EPROTONOSUPPORT | Errno::EADDRNOTAVAIL
        )
    };
    let fd = match new_socket(family, ty) {
        Ok(fd) => fd,
        Err(e) if unavailable(e) => return Attempt::Unavailable,
        Err(e) => return Attempt::Failed(e),
    };
    if v6 && socket::setsockopt(&fd, sockopt::Ipv6V6Only, &false).is_err() {
        return Attempt::Unavailable;
    }
    if proto == Proto::Tcp {
        if let Err(e) = socket::setsockopt(&fd, sockopt::ReuseAddr, &true) {
            return Attempt::Failed(e);
        }
    }
    let bound = if v6 {
        let sa = SockaddrIn6::from(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0));
        socket::bind(fd.as_raw_fd(), &sa)
    } else {
        let sa = SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port));
        socket::bind(fd.as_raw_fd(), &sa)
    };
    match bound {
        Ok(()) => {}
        Err(e) if v6 && unavailable(e) => return Attempt::Unavailable,
        Err(e) => return Attempt::Failed(e),
    }
    match proto {
        Proto::Tcp => {
            let backlog = Backlog::new(BACKLOG).unwrap_or(Backlog::MAXCONN);
            if let Err(e) = socket::listen(&fd, backlog) {
                return Attempt::Failed(e);
            }
        }
        Proto::Udp => want_dst_addr(&fd, v6),
    }
    Attempt::Bound(fd)
}

/// A non-blocking, close-on-exec socket.
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "illumos",
    target_os = "solaris"
))]
fn new_socket(family: AddressFamily, ty: SockType) -> Result<OwnedFd, Errno> {
    socket::socket(
        family,
        ty,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
}

/// A non-blocking, close-on-exec socket.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "illumos",
    target_os = "solaris"
)))]
fn new_socket(family: AddressFamily, ty: SockType) -> Result<OwnedFd, Errno> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
    let fd = socket::socket(family, ty, SockFlag::empty(), None)?;
    fcntl(&fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    fcntl(&fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::sync::atomic::{AtomicU16, Ordering};
    use std::sync::mpsc::{sync_channel, Receiver};
    use std::thread::JoinHandle;
    use std::time::Instant;

    const WAIT: Duration = Duration::from_secs(5);

    /// Next candidate port: 40000.. plus a per-process offset, so parallel test runs
    /// rarely collide; each candidate is checked free before use.
    fn next_candidate() -> u16 {
        static NEXT: AtomicU16 = AtomicU16::new(0);
        let n = u32::from(NEXT.fetch_add(1, Ordering::Relaxed));
        let offset = (std::process::id() % 400 * 50 + n) % 20000;
        40000 + u16::try_from(offset).unwrap_or(0)
    }

    /// Whether `port` is free for TCP and UDP on both families right now.
    fn free(port: u16) -> bool {
        // Each probe socket is closed before the next one is tried.
        let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
        let v6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
        TcpListener::bind(v4).map(drop).is_ok()
            && UdpSocket::bind(v4).map(drop).is_ok()
            && (!has_ipv6()
                || (TcpListener::bind(v6).map(drop).is_ok()
                    && UdpSocket::bind(v6).map(drop).is_ok()))
    }

    fn has_ipv6() -> bool {
        UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
    }

    fn set(ports: &[u16]) -> PortSet {
        let mut s = PortSet::new();
        for p in ports {
            s.insert(*p);
        }
        s
    }

    /// Binds TCP and UDP on a free high port; another port if it got taken meanwhile.
    fn bind_free(ipv4_only: bool) -> (u16, Listeners) {
        for _ in 0..200 {
            let port = next_candidate();
            if !free(port) {
                continue;
            }
            let (l, failures) = Listeners::bind(&set(&[port]), &set(&[port]), ipv4_only);
            if failures.is_empty() {
                return (port, l);
            }
        }
        panic!("no free port found in 200 tries");
    }

    fn start(l: Listeners) -> (Receiver<Input>, StopFlag, JoinHandle<()>) {
        let (tx, rx) = sync_channel(16);
        let stop = StopFlag::default();
        let s = stop.clone();
        let h = std::thread::spawn(move || l.run(tx.into(), s));
        (rx, stop, h)
    }

    /// Sets `stop` and asserts the loop ends within about a second.
    fn stop_within(stop: &StopFlag, h: JoinHandle<()>, limit: Duration) {
        let t = Instant::now();
        stop.stop();
        while !h.is_finished() {
            assert!(
                t.elapsed() < limit,
                "run() still running {limit:?} after stop"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(h.join().is_ok(), "run() panicked");
    }

    /// The next Connect message: (proto, src, local, port, conn).
    fn next_connect(rx: &Receiver<Input>) -> (Proto, IpAddr, IpAddr, u16, Conn) {
        match rx.recv_timeout(WAIT) {
            Ok(Input::Connect {
                proto,
                src,
                local,
                port,
                conn,
                ..
            }) => (proto, src, local, port, conn),
            other => panic!("expected Input::Connect, got {other:?}"),
        }
    }

    fn check_tcp(rx: &Receiver<Input>, port: u16, ip: IpAddr) {
        let client = TcpStream::connect_timeout(&SocketAddr::new(ip, port), WAIT)
            .unwrap_or_else(|e| panic!("connect to {ip} port {port}: {e}"));
        let (proto, src, local, p, conn) = next_connect(rx);
        assert_eq!((proto, src, local, p), (Proto::Tcp, ip, ip, port));
        let Conn::Tcp(mut stream) = conn else {
            panic!("expected Conn::Tcp")
        };
        // The stream is the client's peer, and blocking writes work (banner).
        assert_eq!(
            stream.peer_addr().map(|a| a.port()).ok(),
            client.local_addr().map(|a| a.port()).ok()
        );
        assert!(stream.write_all(b"banner").is_ok());
        drop(stream);
        let mut got = Vec::new();
        let mut client = client;
        assert!(client.set_read_timeout(Some(WAIT)).is_ok());
        assert!(client.read_to_end(&mut got).is_ok());
        assert_eq!(got, b"banner");
    }

    fn check_udp(rx: &Receiver<Input>, port: u16, ip: IpAddr, payload: &[u8]) {
        let client = UdpSocket::bind(SocketAddr::new(ip, 0))
            .unwrap_or_else(|e| panic!("bind client on {ip}: {e}"));
        assert!(client.send_to(payload, SocketAddr::new(ip, port)).is_ok());
        let (proto, src, local, p, conn) = next_connect(rx);
        let want_local = if cfg!(target_os = "linux") {
            ip
        } else {
            local // best effort elsewhere
        };
        assert_eq!(
            (proto, src, local, p),
            (Proto::Udp, ip, want_local, port),
            "datagram of {} bytes",
            payload.len()
        );
        let Conn::Udp(sock, peer) = conn else {
            panic!("expected Conn::Udp")
        };
        assert_eq!(peer.ip().to_canonical(), ip);
        // The engine answers on the same socket to `peer`.
        assert!(sock.send_to(b"reply", peer).is_ok());
        let mut buf = [0u8; 16];
        assert!(client.set_read_timeout(Some(WAIT)).is_ok());
        match client.recv_from(&mut buf) {
            Ok((n, from)) => {
                assert_eq!(&buf[..n], b"reply");
                assert_eq!(from, SocketAddr::new(ip, port));
            }
            Err(e) => panic!("no reply on {ip}: {e}"),
        }
    }

    #[test]
    fn dual_stack_tcp_and_udp_events() {
        let (port, l) = bind_free(false);
        assert_eq!(l.bound(), vec![(Proto::Tcp, port), (Proto::Udp, port)]);
        let (rx, stop, h) = start(l);
        let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        check_tcp(&rx, port, v4);
        check_udp(&rx, port, v4, b"hello");
        check_udp(&rx, port, v4, b"");
        if has_ipv6() {
            check_tcp(&rx, port, v6);
            check_udp(&rx, port, v6, b"hello6");
            check_udp(&rx, port, v6, b"");
        } else {
            eprintln!("skipping the IPv6 half: no ::1 on this host");
        }
        // Several connections at once all arrive (drained per wake-up).
        let clients: Vec<_> = (0..5)
            .filter_map(|_| TcpStream::connect_timeout(&SocketAddr::new(v4, port), WAIT).ok())
            .collect();
        assert_eq!(clients.len(), 5);
        for _ in 0..5 {
            let (proto, src, _, p, _) = next_connect(&rx);
            assert_eq!((proto, src, p), (Proto::Tcp, v4, port));
        }
        stop_within(&stop, h, Duration::from_millis(1500));
    }

    #[test]
    fn ipv4_only_binds_no_ipv6() {
        let (port, l) = bind_free(true);
        let (rx, stop, h) = start(l);
        check_tcp(&rx, port, IpAddr::V4(Ipv4Addr::LOCALHOST));
        check_udp(&rx, port, IpAddr::V4(Ipv4Addr::LOCALHOST), b"x");
        if has_ipv6() {
            let r = TcpStream::connect_timeout(
                &SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
                WAIT,
            );
            assert!(
                r.is_err(),
                "[::1]:{port} must not be bound in IPv4-only mode"
            );
        }
        assert!(rx.try_recv().is_err());
        stop_within(&stop, h, Duration::from_millis(1500));
    }

    #[test]
    fn taken_ports_are_reported_and_the_rest_bound() {
        for _ in 0..100 {
            let (taken, other) = (next_candidate(), next_candidate());
            if !free(taken) || !free(other) {
                continue;
            }
            // Held by this test on both families, the way another daemon would.
            let Ok(t) = TcpListener::bind((Ipv4Addr::UNSPECIFIED, taken)) else {
                continue;
            };
            let Ok(u) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, taken)) else {
                continue;
            };
            let (l, failures) =
                Listeners::bind(&set(&[taken, other]), &set(&[other, taken]), false);
            let failed: Vec<_> = failures.iter().map(|f| (f.proto, f.port)).collect();
            if l.bound() != vec![(Proto::Tcp, other), (Proto::Udp, other)] {
                continue; // `other` got taken meanwhile
            }
            assert_eq!(failed, vec![(Proto::Tcp, taken), (Proto::Udp, taken)]);
            for f in &failures {
                assert_eq!(f.error.kind(), io::ErrorKind::AddrInUse, "{f:?}");
            }
            drop((t, u));
            return;
        }
        panic!("no free port pair found");
    }

    #[test]
    fn stops_promptly_and_when_the_engine_is_gone() {
        // Nothing bound: the loop only waits for the flag.
        let (rx, stop, h) = start(Listeners::default());
        std::thread::sleep(Duration::from_millis(50));
        stop_within(&stop, h, Duration::from_millis(1200));
        drop(rx);

        // Receiver dropped: the next event ends the loop.
        let (port, l) = bind_free(false);
        let (rx, stop, h) = start(l);
        drop(rx);
        let _c = TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), WAIT);
        let t = Instant::now();
        while !h.is_finished() && t.elapsed() < WAIT {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            h.is_finished(),
            "run() did not end after the receiver was dropped"
        );
        stop.stop();
        assert!(h.join().is_ok());
    }

    #[test]
    fn no_ports_no_listeners() {
        let (l, failures) = Listeners::bind(&PortSet::new(), &PortSet::new(), false);
        assert!(l.bound().is_empty());
        assert!(failures.is_empty());
    }
}
