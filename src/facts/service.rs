//! The service check: is a local service bound to this address and port?
//!
//! In: a destination address, port and protocol. Out: yes/no, from the kernel's state at
//! that moment. On Linux the answer comes from a snapshot of the bound sockets
//! (sock_diag, about 0.1 ms; /proc/net as a fallback): one is taken at start, and when an
//! event finds it older than `max_age` a helper thread takes a new one. A "yes" is
//! answered from the snapshot. A "no" is what makes an event a scan, so a snapshot older
//! than [`MISS_FRESH`] is first replaced synchronously: a service started after the last
//! snapshot is still a service (issue #14 item 5). A flood of misses therefore costs at
//! most one snapshot per [`MISS_FRESH`], and a hit or a miss on a fresh snapshot a hash
//! lookup; an idle daemon reads nothing. Elsewhere it falls back to trying a bind, as 2.x
//! did. It never logs.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::Proto;

type Bound = HashSet<(Proto, IpAddr, u16)>;

/// A "not bound" answer trusts a snapshot at most this old; an older one is replaced
/// before answering. Only a service that started less than this before a probe of its
/// port, after another probe of any monitored port, can be missed.
pub const MISS_FRESH: Duration = Duration::from_millis(20);

pub struct ServiceCheck {
    /// The latest snapshot and when it was taken (shared with the refresher thread).
    shared: Arc<Mutex<(Arc<Bound>, Instant)>>,
    refreshing: Arc<AtomicBool>,
    max_age: Duration,
    /// The first snapshot, taken in the background while the daemon starts.
    first: Option<std::thread::JoinHandle<(Bound, Instant)>>,
}

impl ServiceCheck {
    /// Starts taking the first snapshot on a helper thread (so start-up does not wait
    /// for it); the first question waits for it if it is not there yet.
    pub fn new(max_age: Duration) -> ServiceCheck {
        let first =
            cfg!(target_os = "linux").then(|| std::thread::spawn(|| (snapshot(), Instant::now())));
        ServiceCheck {
            shared: Arc::new(Mutex::new((Arc::new(Bound::new()), Instant::now()))),
            refreshing: Arc::new(AtomicBool::new(false)),
            max_age,
            first,
        }
    }

    /// Takes a snapshot now, on this thread, and makes it the current one.
    fn refresh_now(&mut self) -> Arc<Bound> {
        let fresh = Arc::new(snapshot());
        if let Ok(mut g) = self.shared.lock() {
            *g = (fresh.clone(), Instant::now());
        }
        fresh
    }

    /// The current snapshot and when it was taken.
    fn current(&mut self) -> (Arc<Bound>, Instant) {
        if let Some(h) = self.first.take() {
            // stamped with when it was taken, not when it is first asked for
            let (first, taken) = h.join().unwrap_or_else(|_| (Bound::new(), Instant::now()));
            if let Ok(mut g) = self.shared.lock() {
                *g = (Arc::new(first), taken);
            }
        }
        let (bound, taken) = match self.shared.lock() {
            Ok(g) => (g.0.clone(), g.1),
            Err(_) => return (Arc::new(Bound::new()), Instant::now()),
        };
        if taken.elapsed() >= self.max_age && !self.refreshing.swap(true, Ordering::AcqRel) {
            let (shared, flag) = (self.shared.clone(), self.refreshing.clone());
            std::thread::spawn(move || {
                let fresh = Arc::new(snapshot());
                if let Ok(mut g) = shared.lock() {
                    *g = (fresh, Instant::now());
                }
                flag.store(false, Ordering::Release);
            });
        }
        (bound, taken)
    }

    /// Whether a service is bound on `dst:port` (or the wildcard address).
    pub fn is_running(&mut self, proto: Proto, dst: IpAddr, port: u16) -> bool {
        if cfg!(target_os = "linux") {
            let (bound, taken) = self.current();
            if holds(&bound, proto, dst, port) {
                return true;
            }
            if taken.elapsed() < MISS_FRESH {
                return false;
            }
            holds(&self.refresh_now(), proto, dst, port)
        } else {
            bind_fails(proto, dst, port)
        }
    }
}

/// Whether `bound` has a socket on `dst:port` or on the wildcard address.
fn holds(bound: &Bound, proto: Proto, dst: IpAddr, port: u16) -> bool {
    let v4any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let v6any = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    bound.contains(&(proto, dst, port))
        || bound.contains(&(proto, v6any, port))
        || (dst.is_ipv4() && bound.contains(&(proto, v4any, port)))
}

/// 2.x's way: a service runs there if we cannot bind it.
fn bind_fails(proto: Proto, dst: IpAddr, port: u16) -> bool {
    let sa = SocketAddr::new(dst, port);
    match proto {
        Proto::Tcp => std::net::TcpListener::bind(sa).is_err(),
        Proto::Udp => std::net::UdpSocket::bind(sa).is_err(),
    }
}

/// Parses the hex `ADDR:PORT` of /proc/net files.
fn parse_local(s: &str) -> Option<(IpAddr, u16)> {
    let (a, p) = s.split_once(':')?;
    let port = u16::from_str_radix(p, 16).ok()?;
    let ip = match a.len() {
        8 => IpAddr::V4(Ipv4Addr::from(u32::from_str_radix(a, 16).ok()?.to_be())),
        32 => {
            let mut b = [0u8; 16];
            for (i, chunk) in b.chunks_mut(4).enumerate() {
                let w = u32::from_str_radix(a.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&w.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some((portsentry_blocker::canonical(ip), port))
}

/// Parses one /proc/net table; TCP rows count only in LISTEN (0A), UDP rows always.
pub fn parse_table(text: &str, proto: Proto, out: &mut HashSet<(Proto, IpAddr, u16)>) {
    for line in text.lines().skip(1) {
        let mut f = line.split_whitespace();
        let (Some(_), Some(local), Some(_), Some(st)) = (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        if proto == Proto::Tcp && st != "0A" {
            continue;
        }
        if let Some((ip, port)) = parse_local(local) {
            out.insert((proto, ip, port));
        }
    }
}

/// The bound sockets, from sock_diag (fast: the kernel walks only the listening table),
/// else from /proc/net (which walks every connection and costs milliseconds).
fn snapshot() -> HashSet<(Proto, IpAddr, u16)> {
    #[cfg(target_os = "linux")]
    if let Some(b) = diag::bound() {
        return b;
    }
    proc_snapshot()
}

fn proc_snapshot() -> HashSet<(Proto, IpAddr, u16)> {
    let mut out = HashSet::new();
    for (file, proto) in [
        ("/proc/net/tcp", Proto::Tcp),
        ("/proc/net/tcp6", Proto::Tcp),
        ("/proc/net/udp", Proto::Udp),
        ("/proc/net/udp6", Proto::Udp),
    ] {
        if let Ok(text) = std::fs::read_to_string(file) {
            parse_table(&text, proto, &mut out);
        }
    }
    out
}

/// NETLINK_SOCK_DIAG queries: listening TCP sockets and bound UDP sockets of both
/// families. Plain byte buffers; any surprise makes the caller fall back to /proc.
#[cfg(target_os = "linux")]
mod diag {
    use std::collections::HashSet;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{
        recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
        SockType,
    };

    use crate::model::Proto;

    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLM_F_REQUEST: u16 = 0x1;
    const NLM_F_DUMP: u16 = 0x300;
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    const TCP_LISTEN_MASK: u32 = 1 << 10;

    /// nlmsghdr + inet_diag_req_v2 for one family and protocol.
    pub fn request(family: u8, protocol: u8, states: u32, seq: u32) -> [u8; 72] {
        let mut m = [0u8; 72];
        m[0..4].copy_from_slice(&72u32.to_ne_bytes());
        m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        m[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        m[8..12].copy_from_slice(&seq.to_ne_bytes());
        m[16] = family;
        m[17] = protocol;
        m[20..24].copy_from_slice(&states.to_ne_bytes());
        m
    }

    /// Parses one receive buffer; returns Some(done) or None on an error message.
    pub fn parse(
        buf: &[u8],
        proto: Proto,
        out: &mut HashSet<(Proto, IpAddr, u16)>,
    ) -> Option<bool> {
        let mut off = 0usize;
        while let Some(h) = buf.get(off..off + 16) {
            let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
            let kind = u16::from_ne_bytes([h[4], h[5]]);
            if len < 16 {
                return None;
            }
            match kind {
                NLMSG_DONE => return Some(true),
                NLMSG_ERROR => return None,
                SOCK_DIAG_BY_FAMILY => {
                    let body = buf.get(off + 16..off + len)?;
                    let fam = *body.first()?;
                    let port = u16::from_be_bytes([*body.get(4)?, *body.get(5)?]);
                    let ip = match i32::from(fam) {
                        libc::AF_INET => {
                            let a: [u8; 4] = body.get(8..12)?.try_into().ok()?;
                            IpAddr::V4(Ipv4Addr::from(a))
                        }
                        libc::AF_INET6 => {
                            let a: [u8; 16] = body.get(8..24)?.try_into().ok()?;
                            portsentry_blocker::canonical(IpAddr::V6(Ipv6Addr::from(a)))
                        }
                        _ => return None,
                    };
                    out.insert((proto, ip, port));
                }
                _ => {}
            }
            off += (len + 3) & !3;
        }
        Some(false)
    }

    pub fn bound() -> Option<HashSet<(Proto, IpAddr, u16)>> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkSockDiag,
        )
        .ok()?;
        let kernel = NetlinkAddr::new(0, 0);
        let mut out = HashSet::new();
        let mut buf = vec![0u8; 32 * 1024];
        let queries = [
            (
                libc::AF_INET as u8,
                libc::IPPROTO_TCP as u8,
                TCP_LISTEN_MASK,
                Proto::Tcp,
            ),
            (
                libc::AF_INET6 as u8,
                libc::IPPROTO_TCP as u8,
                TCP_LISTEN_MASK,
                Proto::Tcp,
            ),
            (
                libc::AF_INET as u8,
                libc::IPPROTO_UDP as u8,
                u32::MAX,
                Proto::Udp,
            ),
            (
                libc::AF_INET6 as u8,
                libc::IPPROTO_UDP as u8,
                u32::MAX,
                Proto::Udp,
            ),
        ];
        for (seq, (fam, ipproto, states, proto)) in queries.into_iter().enumerate() {
            let req = request(fam, ipproto, states, seq as u32 + 1);
            sendto(fd.as_raw_fd(), &req, &kernel, MsgFlags::empty()).ok()?;
            loop {
                let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()).ok()?;
                if n == 0 {
                    return None;
                }
                if parse(buf.get(..n)?, proto, &mut out)? {
                    break;
                }
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_rows() {
        let tcp = "  sl  local_address rem_address   st\n   0: 0100007F:0016 00000000:0000 0A 0\n   1: 0100007F:0017 0200007F:1234 01 0\n";
        let mut s = HashSet::new();
        parse_table(tcp, Proto::Tcp, &mut s);
        assert!(s.contains(&(Proto::Tcp, "127.0.0.1".parse().unwrap(), 22)));
        assert_eq!(s.len(), 1);
        let tcp6 = "hdr\n 0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A\n 1: 00000000000000000000000001000000:0051 00000000000000000000000000000000:0000 0A\n";
        parse_table(tcp6, Proto::Tcp, &mut s);
        assert!(s.contains(&(Proto::Tcp, "::".parse().unwrap(), 80)));
        assert!(s.contains(&(Proto::Tcp, "::1".parse().unwrap(), 81)));
    }

    #[test]
    fn refreshes_in_the_background_when_stale() {
        let mut c = ServiceCheck::new(Duration::ZERO);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let start = Instant::now();
        while !c.is_running(Proto::Tcp, ip, port) {
            assert!(start.elapsed() < Duration::from_secs(5), "never refreshed");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sock_diag_agrees_with_proc() {
        let _l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _u = std::net::UdpSocket::bind("[::1]:0").unwrap();
        let fast = diag::bound().expect("sock_diag works here");
        let slow = proc_snapshot();
        // sockets may come and go between the two reads; ours are in both
        for key in [
            (
                Proto::Tcp,
                _l.local_addr().unwrap().ip(),
                _l.local_addr().unwrap().port(),
            ),
            (
                Proto::Udp,
                _u.local_addr().unwrap().ip(),
                _u.local_addr().unwrap().port(),
            ),
        ] {
            assert!(fast.contains(&key) && slow.contains(&key), "{key:?}");
        }
    }

    /// Issue #14 item 5: a service started after the snapshot is seen at once.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_service_started_after_the_snapshot_is_seen_at_once() {
        let mut c = ServiceCheck::new(Duration::from_secs(3600));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        std::thread::sleep(MISS_FRESH * 3); // the first snapshot is taken meanwhile
        let l0 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(c.is_running(Proto::Tcp, ip, l0.local_addr().unwrap().port()));
        std::thread::sleep(MISS_FRESH);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(c.is_running(Proto::Tcp, ip, port));
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        std::thread::sleep(MISS_FRESH);
        assert!(c.is_running(Proto::Udp, ip, u.local_addr().unwrap().port()));
    }

    #[test]
    fn sees_a_real_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut c = ServiceCheck::new(Duration::from_secs(1));
        assert!(c.is_running(Proto::Tcp, "127.0.0.1".parse().unwrap(), port));
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let uport = u.local_addr().unwrap().port();
        let mut c = ServiceCheck::new(Duration::from_secs(1));
        assert!(c.is_running(Proto::Udp, "127.0.0.1".parse().unwrap(), uport));
        assert!(!c.is_running(Proto::Udp, "127.0.0.1".parse().unwrap(), port));
    }
}
