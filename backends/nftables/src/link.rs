//! The one long-lived netfilter netlink socket: sends an encoded batch in a single
//! `sendmsg` and checks the kernel's answer to every message; sends GET requests and
//! collects their replies.
//!
//! In: an [`Encoded`] batch or a request built by `sys`. Out: `Ok` when every message was
//! acknowledged, the reply messages of a request, or the [`NftError`] of the failed step.
//! Must not: split a batch over several sends (nfnetlink would abort a batch cut in two),
//! or return before every answer of a batch has been read.

use std::io::IoSlice;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recv, sendmsg, setsockopt, sockopt, MsgFlags, NetlinkAddr};
use nix::sys::time::{TimeVal, TimeValLike};

use crate::encode::Encoded;
use crate::error::NftError;
use crate::sys::NlSocket;
use crate::wire::{self, Acks, Answer, NLM_F_DUMP_INTR};

/// Receive buffer for one datagram: dump replies are at most 32 KiB, ACKs are small.
const RECV_BUF: usize = 256 * 1024;
/// Kernel receive buffer we ask for at the start; grown for batches with many ACKs.
const RCVBUF_START: usize = 1024 * 1024;
/// Room one queued ACK takes in the receive buffer (skb overhead included), generously.
const RCVBUF_PER_ACK: usize = 1024;
/// How long to wait for answers that are not queued yet. The kernel processes a batch
/// inside `sendmsg`, so its ACKs are normally all queued when it returns.
const ANSWER_WAIT: Duration = Duration::from_secs(5);
/// `iovec`s per `sendmsg` (`UIO_MAXIOV`); a batch with more pages is copied into one.
const IOV_MAX: usize = 1024;
/// Sequence numbers of GET requests start here, far from the batch numbers (1, 2, ...).
const REQUEST_SEQ_START: u32 = 0x4000_0000;

/// What the last batch took, for tests and timing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Netlink messages between batch begin and end.
    pub messages: usize,
    /// Bytes handed to the kernel.
    pub bytes: usize,
    /// `sendmsg` calls it took (always 1).
    pub sendmsg_calls: usize,
    /// libnftnl pages the batch was built in (the `iovec`s of the one `sendmsg`).
    pub pages: usize,
    /// From the start of `sendmsg` to the last answer read: the kernel's share.
    pub kernel_time: Duration,
}

pub struct Link {
    sock: NlSocket,
    sndbuf: usize,
    rcvbuf: usize,
    next_seq: u32,
    buf: Vec<u8>,
    pub last: BatchStats,
}

impl Link {
    /// Opens the socket and sets it up: capped error replies, a receive timeout (so a
    /// missing reply cannot hang the daemon), a larger receive buffer.
    pub fn open() -> Result<Link, NftError> {
        let sock = NlSocket::open().map_err(|e| match e.raw_os_error() {
            // No NETLINK_NETFILTER protocol: the kernel has no nfnetlink, so no nf_tables.
            Some(libc::EPROTONOSUPPORT) => NftError::NoNfTables(Errno::EPROTONOSUPPORT),
            _ => NftError::OpenSocket(e),
        })?;
        sock.cap_acks().map_err(|source| NftError::SocketOption {
            option: "NETLINK_CAP_ACK",
            source,
        })?;
        let tv = TimeVal::seconds(ANSWER_WAIT.as_secs() as i64);
        setsockopt(&sock.fd(), sockopt::ReceiveTimeout, &tv).map_err(|source| {
            NftError::SocketOption {
                option: "SO_RCVTIMEO",
                source,
            }
        })?;
        let mut link = Link {
            sock,
            sndbuf: 0,
            rcvbuf: 0,
            next_seq: REQUEST_SEQ_START,
            buf: vec![0; RECV_BUF],
            last: BatchStats::default(),
        };
        link.grow_rcvbuf(RCVBUF_START)?;
        Ok(link)
    }

    fn grow_rcvbuf(&mut self, want: usize) -> Result<(), NftError> {
        if want <= self.rcvbuf {
            return Ok(());
        }
        let fd = self.sock.fd();
        setsockopt(&fd, sockopt::RcvBufForce, &want)
            .or_else(|_| setsockopt(&fd, sockopt::RcvBuf, &want))
            .map_err(|source| NftError::SocketOption {
                option: "SO_RCVBUFFORCE",
                source,
            })?;
        self.rcvbuf = want;
        Ok(())
    }

    /// The kernel refuses a `sendmsg` longer than the send buffer (`EMSGSIZE`), so the
    /// buffer is raised to the batch size first (`SO_SNDBUFFORCE`, needs CAP_NET_ADMIN,
    /// which nf_tables needs anyway).
    fn grow_sndbuf(&mut self, len: usize) -> Result<(), NftError> {
        let want = len.saturating_add(4096);
        if want <= self.sndbuf {
            return Ok(());
        }
        let fd = self.sock.fd();
        setsockopt(&fd, sockopt::SndBufForce, &want)
            .or_else(|_| setsockopt(&fd, sockopt::SndBuf, &want))
            .map_err(|source| NftError::SocketOption {
                option: "SO_SNDBUFFORCE",
                source,
            })?;
        self.sndbuf = want;
        Ok(())
    }

    /// Reads and drops whatever is queued (answers to an earlier, failed exchange).
    fn drain(&mut self) {
        while let Ok(n) = recv(self.sock.raw_fd(), &mut self.buf, MsgFlags::MSG_DONTWAIT) {
            if n == 0 {
                break;
            }
        }
    }

    /// Receives one datagram into `self.buf`; `Ok(None)` when nothing is queued and
    /// `wait` is false, or the receive timeout passed.
    fn recv_one(&mut self, wait: bool) -> Result<Option<usize>, NftError> {
        let flags = if wait {
            MsgFlags::MSG_TRUNC
        } else {
            MsgFlags::MSG_TRUNC | MsgFlags::MSG_DONTWAIT
        };
        match recv(self.sock.raw_fd(), &mut self.buf, flags) {
            Ok(n) if n > self.buf.len() => Err(NftError::Truncated { len: n }),
            Ok(n) => Ok(Some(n)),
            Err(Errno::EAGAIN) => Ok(None),
            Err(Errno::EINTR) => Ok(Some(0)),
            Err(e) => Err(NftError::Receive(e)),
        }
    }

    /// Sends the batch in one `sendmsg` and checks that every message was acknowledged.
    /// On a refusal the kernel has rolled the whole batch back.
    pub fn run_batch(&mut self, enc: &Encoded) -> Result<(), NftError> {
        let pages = enc.pages();
        let bytes: usize = pages.iter().map(|p| p.len()).sum();
        self.drain();
        self.grow_sndbuf(bytes)?;
        let (expected, _) = enc.expected();
        self.grow_rcvbuf(expected.len().saturating_mul(RCVBUF_PER_ACK))?;

        let joined;
        let iov: Vec<IoSlice<'_>> = if pages.len() <= IOV_MAX {
            pages.iter().map(|p| IoSlice::new(p)).collect()
        } else {
            joined = pages.concat();
            vec![IoSlice::new(&joined)]
        };
        let kernel = NetlinkAddr::new(0, 0);
        let started = Instant::now();
        let sent = loop {
            match sendmsg(
                self.sock.raw_fd(),
                &iov,
                &[],
                MsgFlags::empty(),
                Some(&kernel),
            ) {
                Err(Errno::EINTR) => continue,
                r => break r,
            }
        }
        .map_err(|source| NftError::Send { bytes, source })?;
        self.last = BatchStats {
            messages: enc.labels.len(),
            bytes,
            sendmsg_calls: 1,
            pages: pages.len(),
            kernel_time: Duration::ZERO,
        };
        if sent != bytes {
            return Err(NftError::ShortSend { sent, bytes });
        }

        let mut acks = Acks::new(expected.clone());
        let deadline = Instant::now() + ANSWER_WAIT;
        loop {
            match self.recv_one(false)? {
                Some(n) => {
                    for m in wire::messages(&self.buf[..n]) {
                        let a =
                            wire::answer(m.map_err(NftError::Parse)?).map_err(NftError::Parse)?;
                        acks.record(&a);
                    }
                }
                None => {
                    // Nothing queued. Done if all answered, or if anything was refused:
                    // the kernel queues a failed batch's answers all at once when it has
                    // rolled the batch back, and never acks the end of a failed batch.
                    if acks.complete() || !acks.errors.is_empty() {
                        break;
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
                    let mut fds = [PollFd::new(self.sock.fd(), PollFlags::POLLIN)];
                    match poll(&mut fds, PollTimeout::from(ms)) {
                        Ok(_) | Err(Errno::EINTR) => {}
                        Err(e) => return Err(NftError::Receive(e)),
                    }
                }
            }
        }
        self.last.kernel_time = started.elapsed();
        verdict(enc, &acks)
    }

    /// A fresh sequence number for a GET request.
    /// Our socket's port id.
    pub fn portid(&self) -> u32 {
        self.sock.portid()
    }

    pub fn seq(&mut self) -> u32 {
        let s = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1).max(REQUEST_SEQ_START);
        s
    }

    /// Sends a GET request (`seq` must be the one it was built with; `what` names it in
    /// errors) and returns the payloads of its data replies, or the errno the kernel
    /// answered. A dump that the kernel marks interrupted (the ruleset changed meanwhile)
    /// is reported as `EINTR`.
    pub fn request(
        &mut self,
        req: &[u8],
        seq: u32,
        what: &str,
    ) -> Result<Result<Vec<Vec<u8>>, Errno>, NftError> {
        self.drain();
        let kernel = NetlinkAddr::new(0, 0);
        let sent = sendmsg(
            self.sock.raw_fd(),
            &[IoSlice::new(req)],
            &[],
            MsgFlags::empty(),
            Some(&kernel),
        )
        .map_err(|source| NftError::Send {
            bytes: req.len(),
            source,
        })?;
        if sent != req.len() {
            return Err(NftError::ShortSend {
                sent,
                bytes: req.len(),
            });
        }
        let mut data = Vec::new();
        let mut interrupted = false;
        loop {
            let n = match self.recv_one(true)? {
                Some(n) => n,
                None => {
                    return Err(NftError::MissingAck {
                        what: what.to_string(),
                    })
                }
            };
            for m in wire::messages(&self.buf[..n]) {
                let m = m.map_err(NftError::Parse)?;
                if m.header.seq != seq {
                    continue;
                }
                match wire::answer(m).map_err(NftError::Parse)? {
                    Answer::Data(m) => {
                        interrupted |= m.header.flags & NLM_F_DUMP_INTR != 0;
                        data.push(m.payload.to_vec());
                    }
                    // The ACK after a non-dump reply, or the end of a dump.
                    Answer::Ack { .. } | Answer::Done { .. } => {
                        return Ok(if interrupted {
                            Err(Errno::EINTR)
                        } else {
                            Ok(data)
                        });
                    }
                    Answer::Error { errno, .. } => return Ok(Err(Errno::from_raw(errno))),
                }
            }
        }
    }
}

/// The outcome of a batch from its answers: the first refusal (naming the message, or the
/// batch as a whole when the kernel refused its begin message), else the first message
/// without an answer, else success.
pub fn verdict(enc: &Encoded, acks: &Acks) -> Result<(), NftError> {
    if let Some(&(seq, errno)) = acks.errors.first() {
        let errno = Errno::from_raw(errno);
        let whole = seq == 0 || enc.label(seq) == "batch begin";
        if whole && errno == Errno::EOPNOTSUPP {
            // nfnetlink answers a batch for a subsystem it does not have this way.
            return Err(NftError::NoNfTables(errno));
        }
        return Err(NftError::Kernel {
            what: if whole {
                "the batch".to_string()
            } else {
                enc.label(seq)
            },
            errno,
        });
    }
    if let Some(seq) = acks.first_missing() {
        return Err(NftError::MissingAck {
            what: enc.label(seq),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::encode;
    use crate::plan::{plan_block, plan_flush};
    use portsentry_blocker::{BlockError, Step, Target};

    fn answered(enc: &Encoded, errors: &[(u32, i32)]) -> Acks {
        let (r, _) = enc.expected();
        let mut acks = Acks::new(r.clone());
        for seq in r {
            acks.record(&Answer::Ack { seq });
        }
        for &(seq, errno) in errors {
            acks.record(&Answer::Error { seq, errno });
        }
        acks
    }

    #[test]
    fn all_acked_is_success() {
        let enc = encode("portsentry", &plan_flush());
        assert!(verdict(&enc, &answered(&enc, &[])).is_ok());
    }

    #[test]
    fn a_kernel_without_nf_tables_is_named() {
        let enc = encode("portsentry", &plan_flush());
        for begin in [0, enc.batch.sequence_numbers().start] {
            let mut acks = Acks::new(enc.expected().0);
            acks.record(&Answer::Error {
                seq: begin,
                errno: libc::EOPNOTSUPP,
            });
            let e = verdict(&enc, &acks).unwrap_err();
            if begin != 0 && enc.expected().1 == begin {
                // Kernels before 6.10 do not ack batch begin: the number is the message's.
                continue;
            }
            assert!(
                matches!(e, NftError::NoNfTables(Errno::EOPNOTSUPP)),
                "{e:?}"
            );
            assert_eq!(
                e.to_string(),
                "the kernel has no nf_tables (load the nf_tables module, or build it in)"
            );
            let b = BlockError::new("nft", Step::Init, None, e);
            assert_eq!(b.to_string(), "nft: set-up failed");
        }
    }

    #[test]
    fn a_refused_message_is_named_by_its_nft_command() {
        let t = Target::host("198.18.0.7".parse().unwrap());
        let enc = encode("portsentry", &plan_block(&[t]));
        let (_, first) = enc.expected();
        let e = verdict(&enc, &answered(&enc, &[(first, libc::ENOENT)])).unwrap_err();
        assert!(e.objects_missing());
        assert_eq!(e.errno(), Some(Errno::ENOENT));
        assert_eq!(
            e.to_string(),
            "the kernel refused `add element inet portsentry blocked4 { 198.18.0.7 }`"
        );
        let e = verdict(&enc, &answered(&enc, &[(first + 1, libc::ENOENT)])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the kernel refused `delete element inet portsentry blocked4 { 198.18.0.7 }`"
        );
        let e = verdict(&enc, &answered(&enc, &[(0, libc::EPERM)])).unwrap_err();
        assert_eq!(e.to_string(), "the kernel refused `the batch`");
    }

    #[test]
    fn a_missing_answer_is_an_error() {
        let enc = encode("portsentry", &plan_flush());
        let (r, first) = enc.expected();
        let mut acks = Acks::new(r.clone());
        for seq in r.filter(|&s| s != first) {
            acks.record(&Answer::Ack { seq });
        }
        let e = verdict(&enc, &acks).unwrap_err();
        assert!(matches!(e, NftError::MissingAck { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "no answer from the kernel for `delete table inet portsentry`"
        );
    }
}
