//! Linux: one rtnetlink socket, a request at a time, every answer checked.

use crate::netlink::{self, Reply};
use crate::RouteError;
use nix::errno::Errno;
use nix::sys::socket::{
    recv, sendto, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};
use nix::sys::time::TimeVal;
use portsentry_blocker::Net;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// How long to wait for the kernel's answer before giving up.
const TIMEOUT_SECS: i64 = 5;
/// Large enough for any datagram of a route dump (the kernel fills at most 32 KiB).
const RECV_BUF: usize = 64 * 1024;

fn io_err(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// The rtnetlink socket (opened on first use, in the caller's network namespace).
#[derive(Debug, Default)]
pub(crate) struct Netlink {
    fd: Option<OwnedFd>,
    seq: u32,
}

impl Netlink {
    pub(crate) fn open(&mut self) -> Result<&OwnedFd, RouteError> {
        if self.fd.is_none() {
            let fd = socket(
                AddressFamily::Netlink,
                SockType::Raw,
                SockFlag::SOCK_CLOEXEC,
                SockProtocol::NetlinkRoute,
            )
            .map_err(|e| RouteError::Open(io_err(e)))?;
            setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(TIMEOUT_SECS, 0))
                .map_err(|e| RouteError::Open(io_err(e)))?;
            self.fd = Some(fd);
        }
        // Set just above.
        self.fd
            .as_ref()
            .ok_or_else(|| RouteError::Open(io::Error::other("socket not open")))
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    fn send(&mut self, msg: &[u8], request: &'static str) -> Result<(), RouteError> {
        let fd = self.open()?;
        let kernel = NetlinkAddr::new(0, 0);
        let n = sendto(fd.as_raw_fd(), msg, &kernel, MsgFlags::empty()).map_err(|e| {
            RouteError::Send {
                request,
                source: io_err(e),
            }
        })?;
        if n != msg.len() {
            return Err(RouteError::Send {
                request,
                source: io::Error::other("short write"),
            });
        }
        Ok(())
    }

    /// Receives the next datagram's messages.
    fn receive(&mut self, request: &'static str) -> Result<Vec<Reply>, RouteError> {
        let fd = self.open()?;
        let mut buf = vec![0u8; RECV_BUF];
        let n = loop {
            match recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    // A timed-out or broken socket may still hold a late answer: start over.
                    self.fd = None;
                    return Err(RouteError::Receive {
                        request,
                        source: io_err(e),
                    });
                }
                Ok(n) => break n,
            }
        };
        let data = buf.get(..n).unwrap_or_default();
        netlink::parse(data).map_err(|what| RouteError::Malformed { request, what })
    }

    /// Sends a request with `NLM_F_ACK` and waits for its acknowledgement; `ok_errnos`
    /// are kernel errors that count as success.
    fn request(
        &mut self,
        msg: Vec<u8>,
        seq: u32,
        request: &'static str,
        ok_errnos: &[Errno],
    ) -> Result<(), RouteError> {
        self.send(&msg, request)?;
        loop {
            for reply in self.receive(request)? {
                if let Reply::Ack { seq: s, errno } = reply {
                    if s != seq {
                        continue;
                    }
                    if errno == 0 || ok_errnos.iter().any(|e| -(*e as i32) == errno) {
                        return Ok(());
                    }
                    return Err(RouteError::Refused {
                        request,
                        source: io::Error::from_raw_os_error(errno.saturating_neg()),
                    });
                }
            }
        }
    }

    /// Adds the blackhole route for `net`, never replacing a route that is there: if
    /// one is, it is success only when it is ours (blocking twice), else an error.
    pub(crate) fn add(&mut self, net: &Net) -> Result<(), RouteError> {
        let seq = self.next_seq();
        let msg = netlink::encode_block(net, seq);
        match self.request(msg, seq, "adding a blackhole route", &[]) {
            Err(RouteError::Refused { source, .. })
                if source.raw_os_error() == Some(Errno::EEXIST as i32) =>
            {
                if self.dump()?.contains(net) {
                    Ok(())
                } else {
                    Err(RouteError::NotOurs { net: *net })
                }
            }
            other => other,
        }
    }

    /// Deletes our blackhole route for `net`; a missing route is success.
    pub(crate) fn delete(&mut self, net: &Net) -> Result<(), RouteError> {
        let seq = self.next_seq();
        let msg = netlink::encode_unblock(net, seq);
        self.request(
            msg,
            seq,
            "deleting a blackhole route",
            &[Errno::ENOENT, Errno::ESRCH],
        )
    }

    /// Our routes (see [`netlink::RouteInfo::ours`]), sorted, without duplicates.
    pub(crate) fn dump(&mut self) -> Result<Vec<Net>, RouteError> {
        const REQUEST: &str = "listing routes";
        let seq = self.next_seq();
        self.send(&netlink::encode_dump(seq), REQUEST)?;
        let mut nets = Vec::new();
        loop {
            for reply in self.receive(REQUEST)? {
                match reply {
                    Reply::Route { seq: s, route } if s == seq => nets.extend(route.ours()),
                    Reply::Done { seq: s, errno } if s == seq => {
                        if errno < 0 {
                            return Err(RouteError::Refused {
                                request: REQUEST,
                                source: io::Error::from_raw_os_error(errno.saturating_neg()),
                            });
                        }
                        nets.sort();
                        nets.dedup();
                        return Ok(nets);
                    }
                    Reply::Ack { seq: s, errno } if s == seq && errno != 0 => {
                        return Err(RouteError::Refused {
                            request: REQUEST,
                            source: io::Error::from_raw_os_error(errno.saturating_neg()),
                        });
                    }
                    _ => {}
                }
            }
        }
    }
}
