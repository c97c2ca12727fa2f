//! Netlink bytes in, typed answers out: message headers, ACK/error replies, attributes,
//! and the elements of a set-element dump.
//!
//! In: byte slices as received from the socket (no alignment needed) or as built by
//! libnftnl. Out: [`Message`]s, [`Answer`]s, [`DumpedElem`]s, or a [`WireError`].
//! Must not: do I/O, allocate per byte, or panic on short, truncated or hostile input.

use std::ops::Range;

/// Length of `struct nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;
/// Length of `struct nfgenmsg`, the header of every nf_tables message payload.
pub const NFGENMSG_LEN: usize = 4;

const NLMSG_ERROR: u16 = libc::NLMSG_ERROR as u16;
const NLMSG_DONE: u16 = libc::NLMSG_DONE as u16;
/// Set on a dump message when the ruleset changed while the dump ran.
pub const NLM_F_DUMP_INTR: u16 = libc::NLM_F_DUMP_INTR as u16;
const NLA_TYPE_MASK: u16 = libc::NLA_TYPE_MASK as u16;

// From <linux/netfilter/nf_tables.h>; libc does not carry the attribute numbers.
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFTA_SET_ELEM_TIMEOUT: u16 = 4;
const NFTA_SET_ELEM_EXPIRATION: u16 = 5;
const NFTA_DATA_VALUE: u16 = 1;
const NFT_SET_ELEM_INTERVAL_END: u32 = 1;

/// Bytes the kernel sent that do not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("netlink message length {len} at offset {at} is outside the {avail} bytes received")]
    BadMessageLength { at: usize, len: usize, avail: usize },
    #[error("attribute length {len} at offset {at} is outside its {avail}-byte container")]
    BadAttrLength { at: usize, len: usize, avail: usize },
    #[error("{what} is {len} bytes long, expected {expected}")]
    BadLength {
        what: &'static str,
        len: usize,
        expected: &'static str,
    },
}

/// The fixed header of one netlink message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub len: u32,
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    pub pid: u32,
}

/// One netlink message: header and payload (the bytes after the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub header: Header,
    pub payload: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2)?.try_into().ok().map(u16::from_ne_bytes)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)?.try_into().ok().map(u32::from_ne_bytes)
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// Reads the header at the start of `b`, if there is a whole one.
pub fn header(b: &[u8]) -> Option<Header> {
    Some(Header {
        len: u32_at(b, 0)?,
        kind: u16_at(b, 4)?,
        flags: u16_at(b, 6)?,
        seq: u32_at(b, 8)?,
        pid: u32_at(b, 12)?,
    })
}

/// Splits a buffer into netlink messages. Trailing bytes shorter than a header are ignored
/// (the kernel never sends them); a length pointing outside the buffer is an error.
pub fn messages(buf: &[u8]) -> impl Iterator<Item = Result<Message<'_>, WireError>> {
    let mut at = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let rest = buf.get(at..)?;
        let header = header(rest)?;
        let len = header.len as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            failed = true;
            return Some(Err(WireError::BadMessageLength {
                at,
                len,
                avail: rest.len(),
            }));
        }
        let payload = &rest[NLMSG_HDRLEN..len];
        at = at.saturating_add(align4(len));
        Some(Ok(Message { header, payload }))
    })
}

/// Splits an attribute stream into `(type, payload)` pairs; the type has the nested and
/// byte-order flags masked off.
pub fn attrs(buf: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), WireError>> {
    let mut at = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let rest = buf.get(at..)?;
        let len = usize::from(u16_at(rest, 0)?);
        let kind = u16_at(rest, 2)? & NLA_TYPE_MASK;
        if len < 4 || len > rest.len() {
            failed = true;
            return Some(Err(WireError::BadAttrLength {
                at,
                len,
                avail: rest.len(),
            }));
        }
        let payload = &rest[4..len];
        at = at.saturating_add(align4(len));
        Some(Ok((kind, payload)))
    })
}

/// What a received message means for a request or batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<'a> {
    /// `NLMSG_ERROR` with error 0: the message with this sequence number succeeded.
    Ack { seq: u32 },
    /// `NLMSG_ERROR` with an errno (positive here), or `NLMSG_DONE` carrying one.
    Error { seq: u32, errno: i32 },
    /// `NLMSG_DONE`: the dump with this sequence number is complete.
    Done { seq: u32 },
    /// Any other message (dump data, a GET reply).
    Data(Message<'a>),
}

/// Classifies one message.
pub fn answer(m: Message<'_>) -> Result<Answer<'_>, WireError> {
    let seq = m.header.seq;
    match m.header.kind {
        NLMSG_ERROR => {
            let code = i32_at(m.payload).ok_or(WireError::BadLength {
                what: "NLMSG_ERROR payload",
                len: m.payload.len(),
                expected: "at least 4",
            })?;
            if code == 0 {
                Ok(Answer::Ack { seq })
            } else {
                Ok(Answer::Error {
                    seq,
                    errno: code.saturating_neg(),
                })
            }
        }
        NLMSG_DONE => match i32_at(m.payload) {
            Some(code) if code != 0 => Ok(Answer::Error {
                seq,
                errno: code.saturating_neg(),
            }),
            _ => Ok(Answer::Done { seq }),
        },
        _ => Ok(Answer::Data(m)),
    }
}

fn i32_at(b: &[u8]) -> Option<i32> {
    b.get(..4)?.try_into().ok().map(i32::from_ne_bytes)
}

/// The replies expected for one batch, and what arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acks {
    /// Sequence numbers that must each get an ACK or an error.
    expected: Range<u32>,
    acked: Vec<bool>,
    /// Every error, in arrival order: (sequence number, errno).
    pub errors: Vec<(u32, i32)>,
}

impl Acks {
    pub fn new(expected: Range<u32>) -> Acks {
        let n = expected.len();
        Acks {
            expected,
            acked: vec![false; n],
            errors: Vec::new(),
        }
    }

    /// Notes one answer; answers for other sequence numbers (stale ones) are ignored,
    /// but errors are always kept (the kernel reports a refused batch on the batch-begin
    /// message, whose sequence number may be 0).
    pub fn record(&mut self, a: &Answer<'_>) {
        match *a {
            Answer::Ack { seq } => self.mark(seq),
            Answer::Error { seq, errno } => {
                self.mark(seq);
                self.errors.push((seq, errno));
            }
            Answer::Done { .. } | Answer::Data(_) => {}
        }
    }

    fn mark(&mut self, seq: u32) {
        if self.expected.contains(&seq) {
            let i = (seq - self.expected.start) as usize;
            if let Some(slot) = self.acked.get_mut(i) {
                *slot = true;
            }
        }
    }

    /// Whether every expected message was answered.
    pub fn complete(&self) -> bool {
        self.acked.iter().all(|&a| a)
    }

    /// The first expected sequence number still without an answer.
    pub fn first_missing(&self) -> Option<u32> {
        let i = self.acked.iter().position(|&a| !a)?;
        Some(self.expected.start + i as u32)
    }
}

/// One element from a set-element dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpedElem {
    pub key: Vec<u8>,
    /// The element's timeout in milliseconds, if it has one.
    pub timeout_ms: Option<u64>,
    /// Milliseconds until the kernel drops it, if it has a timeout.
    pub expiration_ms: Option<u64>,
}

/// The set name (`NFTA_SET_NAME`) in the payload of one `NFT_MSG_NEWSET` dump message.
pub fn set_name(payload: &[u8]) -> Result<Option<String>, WireError> {
    let attrs_bytes = payload.get(NFGENMSG_LEN..).ok_or(WireError::BadLength {
        what: "set message",
        len: payload.len(),
        expected: "at least 4",
    })?;
    for a in attrs(attrs_bytes) {
        let (kind, v) = a?;
        if kind == NFTA_SET_NAME {
            let v = v.strip_suffix(&[0]).unwrap_or(v);
            return Ok(Some(String::from_utf8_lossy(v).into_owned()));
        }
    }
    Ok(None)
}

/// Parses the payload of one `NFT_MSG_NEWSETELEM` dump message. Interval-end markers
/// are skipped.
pub fn setelems(payload: &[u8]) -> Result<Vec<DumpedElem>, WireError> {
    let attrs_bytes = payload.get(NFGENMSG_LEN..).ok_or(WireError::BadLength {
        what: "set element message",
        len: payload.len(),
        expected: "at least 4",
    })?;
    let mut out = Vec::new();
    for a in attrs(attrs_bytes) {
        let (kind, list) = a?;
        if kind != NFTA_SET_ELEM_LIST_ELEMENTS {
            continue;
        }
        // The kernel types each element NFTA_LIST_ELEM; libnftnl numbers them 1, 2, ...
        // and the kernel reads them regardless of type, so neither is checked.
        for e in attrs(list) {
            let (_, elem) = e?;
            if let Some(d) = setelem(elem)? {
                out.push(d);
            }
        }
    }
    Ok(out)
}

fn setelem(elem: &[u8]) -> Result<Option<DumpedElem>, WireError> {
    let mut key = None;
    let mut timeout_ms = None;
    let mut expiration_ms = None;
    let mut flags = 0u32;
    for a in attrs(elem) {
        let (kind, v) = a?;
        match kind {
            NFTA_SET_ELEM_KEY => {
                for d in attrs(v) {
                    let (dk, dv) = d?;
                    if dk == NFTA_DATA_VALUE {
                        key = Some(dv.to_vec());
                    }
                }
            }
            NFTA_SET_ELEM_TIMEOUT => timeout_ms = Some(be64(v, "element timeout")?),
            NFTA_SET_ELEM_EXPIRATION => expiration_ms = Some(be64(v, "element expiration")?),
            NFTA_SET_ELEM_FLAGS => flags = be32(v, "element flags")?,
            _ => {}
        }
    }
    if flags & NFT_SET_ELEM_INTERVAL_END != 0 {
        return Ok(None);
    }
    let key = key.ok_or(WireError::BadLength {
        what: "element key",
        len: 0,
        expected: "4 or 16",
    })?;
    Ok(Some(DumpedElem {
        key,
        timeout_ms,
        expiration_ms,
    }))
}

fn be64(v: &[u8], what: &'static str) -> Result<u64, WireError> {
    v.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| WireError::BadLength {
            what,
            len: v.len(),
            expected: "8",
        })
}

fn be32(v: &[u8], what: &'static str) -> Result<u32, WireError> {
    v.try_into()
        .map(u32::from_be_bytes)
        .map_err(|_| WireError::BadLength {
            what,
            len: v.len(),
            expected: "4",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A netlink message with the given header fields and payload.
    fn msg(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let len = (NLMSG_HDRLEN + payload.len()) as u32;
        let mut b = Vec::new();
        b.extend_from_slice(&len.to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&77u32.to_ne_bytes());
        b.extend_from_slice(payload);
        while b.len() % 4 != 0 {
            b.push(0);
        }
        b
    }

    fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(payload);
        while b.len() % 4 != 0 {
            b.push(0);
        }
        b
    }

    fn error(seq: u32, code: i32) -> Vec<u8> {
        let mut p = code.to_ne_bytes().to_vec();
        p.extend_from_slice(&[0; 16]); // the echoed header (NETLINK_CAP_ACK)
        msg(2, 0x100, seq, &p)
    }

    #[test]
    fn acks_and_errors() {
        let mut buf = error(5, 0);
        buf.extend(error(6, -libc::ENOENT));
        buf.extend(msg(3, 2, 7, &0i32.to_ne_bytes()));
        let got: Vec<Answer> = messages(&buf)
            .map(|m| answer(m.unwrap()).unwrap())
            .collect();
        assert_eq!(
            got,
            vec![
                Answer::Ack { seq: 5 },
                Answer::Error {
                    seq: 6,
                    errno: libc::ENOENT
                },
                Answer::Done { seq: 7 },
            ]
        );
    }

    #[test]
    fn ack_tracking() {
        let mut acks = Acks::new(3..6);
        assert_eq!(acks.first_missing(), Some(3));
        acks.record(&Answer::Ack { seq: 3 });
        acks.record(&Answer::Ack { seq: 99 });
        acks.record(&Answer::Error {
            seq: 0,
            errno: libc::EOPNOTSUPP,
        });
        assert!(!acks.complete());
        assert_eq!(acks.first_missing(), Some(4));
        acks.record(&Answer::Ack { seq: 4 });
        acks.record(&Answer::Error {
            seq: 5,
            errno: libc::EEXIST,
        });
        assert!(acks.complete());
        assert_eq!(acks.errors, vec![(0, libc::EOPNOTSUPP), (5, libc::EEXIST)]);
    }

    #[test]
    fn rejects_lengths_outside_the_buffer() {
        let mut buf = error(1, 0);
        buf[0] = 200; // claims 200 bytes
        let r: Vec<_> = messages(&buf).collect();
        assert!(matches!(r[..], [Err(WireError::BadMessageLength { .. })]));
        let mut buf = error(1, 0);
        buf[..4].copy_from_slice(&3u32.to_ne_bytes());
        assert!(messages(&buf).next().unwrap().is_err());
        assert_eq!(messages(&[1, 2, 3]).count(), 0);
        assert!(answer(Message {
            header: header(&error(1, 0)).unwrap(),
            payload: &[1, 2],
        })
        .is_err());
        let bad_attr = [200u8, 0, 1, 0, 9, 9];
        assert!(attrs(&bad_attr).next().unwrap().is_err());
    }

    /// A NEWSETELEM dump message as the kernel sends it (nested flags set on nests).
    /// A key and (timeout, expiration) in ms.
    type TestElem<'a> = (&'a [u8], Option<(u64, u64)>);

    fn setelem_payload(elems: &[TestElem<'_>]) -> Vec<u8> {
        let mut list = Vec::new();
        for (key, t) in elems {
            let mut e = attr(0x8000 | NFTA_SET_ELEM_KEY, &attr(NFTA_DATA_VALUE, key));
            if let Some((timeout, expires)) = t {
                e.extend(attr(NFTA_SET_ELEM_TIMEOUT, &timeout.to_be_bytes()));
                e.extend(attr(NFTA_SET_ELEM_EXPIRATION, &expires.to_be_bytes()));
            }
            list.extend(attr(0x8000 | 1, &e)); // NFTA_LIST_ELEM
        }
        let mut p = vec![1, 0, 0, 0]; // nfgenmsg: inet, v0, res_id
        p.extend(attr(1, b"portsentry\0"));
        p.extend(attr(2, b"blocked4\0"));
        p.extend(attr(0x8000 | NFTA_SET_ELEM_LIST_ELEMENTS, &list));
        p
    }

    #[test]
    fn parses_a_set_element_dump() {
        let p = setelem_payload(&[
            (&[198, 18, 0, 1], Some((3_600_000, 3_599_000))),
            (&[198, 18, 0, 2], None),
        ]);
        let got = setelems(&p).unwrap();
        assert_eq!(
            got,
            vec![
                DumpedElem {
                    key: vec![198, 18, 0, 1],
                    timeout_ms: Some(3_600_000),
                    expiration_ms: Some(3_599_000),
                },
                DumpedElem {
                    key: vec![198, 18, 0, 2],
                    timeout_ms: None,
                    expiration_ms: None
                },
            ]
        );
        let mut trunc = p.clone();
        trunc.truncate(p.len() - 3);
        assert!(setelems(&trunc).is_err());
        assert!(setelems(&[1]).is_err());
    }

    #[test]
    fn skips_interval_end_markers_and_rejects_bad_numbers() {
        let mut e = attr(NFTA_SET_ELEM_KEY, &attr(NFTA_DATA_VALUE, &[198, 18, 0, 0]));
        e.extend(attr(NFTA_SET_ELEM_FLAGS, &1u32.to_be_bytes()));
        assert_eq!(setelem(&e), Ok(None));
        let mut e = attr(NFTA_SET_ELEM_KEY, &attr(NFTA_DATA_VALUE, &[198, 18, 0, 0]));
        e.extend(attr(NFTA_SET_ELEM_TIMEOUT, &[1, 2, 3]));
        assert!(setelem(&e).is_err());
        assert!(setelem(&attr(NFTA_SET_ELEM_TIMEOUT, &[0; 8])).is_err());
    }
}
