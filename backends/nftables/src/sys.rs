//! Every `unsafe` call of the crate, each with its `// SAFETY:` reasoning: raw libnftnl for
//! what the safe `nftnl` API lacks (set flags, per-element timeouts, element messages
//! without `NLM_F_EXCL`, GET requests for one table/chain/set) and socket options.
//!
//! In: names, keys, timeouts, a batch to append to, the socket. Out: bytes in the batch or
//! in a `Vec`, socket options set. Must not: send or receive messages, or let a raw
//! pointer outlive the object that owns it.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::ptr::NonNull;

use nftnl::nftnl_sys as ffi;
use nftnl::{Batch, MsgType, NlMsg};

/// Aborts like the standard library does when a small C allocation fails.
fn alloc<T>(p: *mut T) -> NonNull<T> {
    match NonNull::new(p) {
        Some(p) => p,
        None => std::process::abort(),
    }
}

/// Sets `NFTNL_SET_FLAGS` on a set (`nftnl` only sets flags for anonymous sets).
pub fn set_flags<K>(set: &nftnl::set::Set<'_, K>, flags: u32) {
    // SAFETY: `as_ptr` is the live `nftnl_set` owned by `set`, valid for this borrow;
    // NFTNL_SET_FLAGS is a u32 attribute, copied by libnftnl.
    unsafe { ffi::nftnl_set_set_u32(set.as_ptr().as_ptr(), ffi::NFTNL_SET_FLAGS as u16, flags) }
}

/// Reads `NFTNL_SET_FLAGS` back (for tests of the encoder).
#[cfg(test)]
pub fn set_flags_of<K>(set: &nftnl::set::Set<'_, K>) -> Option<u32> {
    let p = set.as_ptr().as_ptr();
    // SAFETY: `p` is the live `nftnl_set` owned by `set`; both calls only read it, and the
    // u32 is read only when the attribute is set.
    unsafe {
        ffi::nftnl_set_is_set(p, ffi::NFTNL_SET_FLAGS as u16)
            .then(|| ffi::nftnl_set_get_u32(p, ffi::NFTNL_SET_FLAGS as u16))
    }
}

/// A libnftnl set object used only to carry elements into messages: table, name and
/// family, plus the element list it owns.
pub struct ElemList {
    set: NonNull<ffi::nftnl_set>,
    family: u16,
    len: usize,
}

impl ElemList {
    pub fn new(table: &CStr, set: &CStr, family: u16) -> ElemList {
        // SAFETY: plain allocation; null is handled by `alloc`.
        let s = alloc(unsafe { ffi::nftnl_set_alloc() });
        // SAFETY: `s` is a fresh, owned `nftnl_set`; the strings are NUL-terminated and
        // libnftnl copies them (strdup) before returning.
        unsafe {
            ffi::nftnl_set_set_str(s.as_ptr(), ffi::NFTNL_SET_TABLE as u16, table.as_ptr());
            ffi::nftnl_set_set_str(s.as_ptr(), ffi::NFTNL_SET_NAME as u16, set.as_ptr());
            ffi::nftnl_set_set_u32(s.as_ptr(), ffi::NFTNL_SET_FAMILY as u16, u32::from(family));
        }
        ElemList {
            set: s,
            family,
            len: 0,
        }
    }

    /// Appends one element: `key` in network order (4 or 16 bytes), and a timeout in ms.
    pub fn push(&mut self, key: &[u8], timeout_ms: Option<u64>) {
        // SAFETY: plain allocation; null is handled by `alloc`.
        let e = alloc(unsafe { ffi::nftnl_set_elem_alloc() });
        // The key buffer in libnftnl holds 64 bytes; an address has at most 16.
        let key = &key[..key.len().min(16)];
        // SAFETY: `e` is fresh and owned; libnftnl copies `key.len()` bytes from `key`,
        // which is a live slice of at most 16 bytes. `nftnl_set_elem_add` then moves the
        // element into the list owned by `self.set` (freed with it in `Drop`).
        unsafe {
            ffi::nftnl_set_elem_set(
                e.as_ptr(),
                ffi::NFTNL_SET_ELEM_KEY as u16,
                key.as_ptr().cast::<c_void>(),
                key.len() as u32,
            );
            if let Some(ms) = timeout_ms {
                ffi::nftnl_set_elem_set_u64(e.as_ptr(), ffi::NFTNL_SET_ELEM_TIMEOUT as u16, ms);
            }
            ffi::nftnl_set_elem_add(self.set.as_ptr(), e.as_ptr());
        }
        self.len += 1;
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

impl Drop for ElemList {
    fn drop(&mut self) {
        // SAFETY: `self.set` is owned and freed exactly once; this also frees its elements.
        unsafe { ffi::nftnl_set_free(self.set.as_ptr()) }
    }
}

/// One set-element message: as many elements of the iterator as fit in 64 KiB.
struct ElemMsg<'a> {
    list: &'a ElemList,
    iter: NonNull<ffi::nftnl_set_elems_iter>,
    /// libnftnl's answer: > 0 when elements remain for another message.
    more: Cell<c_int>,
}

// SAFETY: `write` emits one nlmsghdr plus at most one 64 KiB element nest (libnftnl stops
// the nest before it overflows a u16 length), which fits the nft_nlmsg_maxsize() bytes
// that `Batch` reserves at `buf`.
unsafe impl NlMsg for ElemMsg<'_> {
    unsafe fn write(&self, buf: *mut c_void, seq: u32, msg_type: MsgType) {
        // NEWSETELEM without NLM_F_EXCL: an element that exists is not an error.
        let (kind, flags) = match msg_type {
            MsgType::Add => (
                libc::NFT_MSG_NEWSETELEM,
                libc::NLM_F_CREATE | libc::NLM_F_ACK,
            ),
            MsgType::Del => (libc::NFT_MSG_DELSETELEM, libc::NLM_F_ACK),
        };
        // SAFETY: the caller (`Batch::add`) passes a buffer with room for the largest
        // message; `self.list.set` and `self.iter` are alive for `self`'s lifetime.
        unsafe {
            let nlh = ffi::nftnl_nlmsg_build_hdr(
                buf.cast::<c_char>(),
                kind as u16,
                self.list.family,
                flags as u16,
                seq,
            );
            self.more.set(ffi::nftnl_set_elems_nlmsg_build_payload_iter(
                nlh,
                self.iter.as_ptr(),
            ));
        }
    }
}

/// Appends the elements of `list` to `batch` as NEWSETELEM (`Add`) or DELSETELEM (`Del`)
/// messages, each up to 64 KiB. Returns how many messages were added.
pub fn push_elems(batch: &mut Batch, list: &ElemList, op: MsgType) -> usize {
    if list.len() == 0 {
        return 0;
    }
    // SAFETY: `list.set` is alive; the iterator borrows it and is destroyed below, before
    // `list` can be dropped (it is borrowed for this whole function).
    let iter = alloc(unsafe { ffi::nftnl_set_elems_iter_create(list.set.as_ptr()) });
    let mut n = 0;
    loop {
        // SAFETY: `iter` is alive; `cur` only reads it.
        if unsafe { ffi::nftnl_set_elems_iter_cur(iter.as_ptr()) }.is_null() {
            break;
        }
        let msg = ElemMsg {
            list,
            iter,
            more: Cell::new(0),
        };
        batch.add(&msg, op);
        n += 1;
        if msg.more.get() <= 0 {
            break;
        }
    }
    // SAFETY: created above, destroyed once; no message refers to it any more.
    unsafe { ffi::nftnl_set_elems_iter_destroy(iter.as_ptr()) };
    n
}

/// `NFT_MSG_DELSETELEM` naming only table and set: the kernel deletes every element.
/// The list is made by `push_flush` and never holds an element.
struct FlushMsg {
    list: ElemList,
}

// SAFETY: `write` emits one nlmsghdr, the nfgenmsg and two names of at most 256 bytes
// each (the list is empty), far below the nft_nlmsg_maxsize() bytes that `Batch` reserves
// at `buf`.
unsafe impl NlMsg for FlushMsg {
    unsafe fn write(&self, buf: *mut c_void, seq: u32, _: MsgType) {
        // SAFETY: the caller (`Batch::add`) passes a buffer with room for the largest
        // message; `self.list.set` is alive for `self`'s lifetime. With an empty element
        // list libnftnl writes no NFTA_SET_ELEM_LIST_ELEMENTS attribute (an empty one
        // would delete nothing), as `nft flush set` relies on too.
        unsafe {
            let nlh = ffi::nftnl_nlmsg_build_hdr(
                buf.cast::<c_char>(),
                libc::NFT_MSG_DELSETELEM as u16,
                self.list.family,
                libc::NLM_F_ACK as u16,
                seq,
            );
            ffi::nftnl_set_elems_nlmsg_build_payload(nlh, self.list.set.as_ptr());
        }
    }
}

/// Appends `nft flush set FAMILY TABLE SET` to `batch`.
pub fn push_flush(batch: &mut Batch, table: &CStr, set: &CStr, family: u16) {
    let list = ElemList::new(table, set, family);
    batch.add(&FlushMsg { list }, MsgType::Del);
}

/// Room for a GET request: a header and two names of at most 256 bytes.
const REQUEST_WORDS: usize = 256;

/// Builds a request into an aligned buffer with `fill`, then returns its bytes.
fn request(
    kind: c_int,
    family: u16,
    flags: c_int,
    seq: u32,
    fill: impl FnOnce(*mut libc::nlmsghdr),
) -> Vec<u8> {
    let mut words = vec![0u64; REQUEST_WORDS];
    // SAFETY: `words` is 2 KiB, 8-byte aligned and outlives the call; a header is 16 bytes.
    let nlh = unsafe {
        ffi::nftnl_nlmsg_build_hdr(
            words.as_mut_ptr().cast::<c_char>(),
            kind as u16,
            family,
            flags as u16,
            seq,
        )
    };
    fill(nlh);
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let len = crate::wire::header(&bytes).map_or(0, |h| h.len as usize);
    bytes[..len.min(bytes.len())].to_vec()
}

/// `NFT_MSG_GETTABLE` for one table (`nft list table FAMILY NAME`, without the contents).
pub fn get_table_request(table: &CStr, family: u16, seq: u32) -> Vec<u8> {
    request(
        libc::NFT_MSG_GETTABLE,
        family,
        libc::NLM_F_ACK,
        seq,
        |nlh| {
            // SAFETY: plain allocation; null is handled by `alloc`.
            let t = alloc(unsafe { ffi::nftnl_table_alloc() });
            // SAFETY: `t` is fresh and owned, the name is NUL-terminated and copied; `nlh`
            // heads a 2 KiB buffer and the payload is one name of at most 256 bytes; `t` is
            // freed once.
            unsafe {
                ffi::nftnl_table_set_str(t.as_ptr(), ffi::NFTNL_TABLE_NAME as u16, table.as_ptr());
                ffi::nftnl_table_nlmsg_build_payload(nlh, t.as_ptr());
                ffi::nftnl_table_free(t.as_ptr());
            }
        },
    )
}

/// `NFT_MSG_GETCHAIN` for one chain.
pub fn get_chain_request(table: &CStr, chain: &CStr, family: u16, seq: u32) -> Vec<u8> {
    request(
        libc::NFT_MSG_GETCHAIN,
        family,
        libc::NLM_F_ACK,
        seq,
        |nlh| {
            // SAFETY: plain allocation; null is handled by `alloc`.
            let c = alloc(unsafe { ffi::nftnl_chain_alloc() });
            // SAFETY: as for the table: fresh owned object, copied NUL-terminated names, a
            // payload of two names within the 2 KiB buffer, freed once.
            unsafe {
                ffi::nftnl_chain_set_str(c.as_ptr(), ffi::NFTNL_CHAIN_TABLE as u16, table.as_ptr());
                ffi::nftnl_chain_set_str(c.as_ptr(), ffi::NFTNL_CHAIN_NAME as u16, chain.as_ptr());
                ffi::nftnl_chain_nlmsg_build_payload(nlh, c.as_ptr());
                ffi::nftnl_chain_free(c.as_ptr());
            }
        },
    )
}

/// `NFT_MSG_GETSETELEM` dump of one set (`nft list set FAMILY TABLE SET`, elements only).
pub fn get_setelems_request(table: &CStr, set: &CStr, family: u16, seq: u32) -> Vec<u8> {
    let list = ElemList::new(table, set, family);
    request(
        libc::NFT_MSG_GETSETELEM,
        family,
        libc::NLM_F_DUMP | libc::NLM_F_ACK,
        seq,
        |nlh| {
            // SAFETY: `list.set` is alive (no elements, so only table and set name are
            // written, within the 2 KiB buffer at `nlh`).
            unsafe { ffi::nftnl_set_elems_nlmsg_build_payload(nlh, list.set.as_ptr()) }
        },
    )
}

/// `NFT_MSG_GETSET` dump of the sets of one table (`nft list sets`, names only used).
pub fn get_sets_request(table: &CStr, family: u16, seq: u32) -> Vec<u8> {
    request(
        libc::NFT_MSG_GETSET,
        family,
        libc::NLM_F_DUMP | libc::NLM_F_ACK,
        seq,
        |nlh| {
            // SAFETY: plain allocation; null is handled by `alloc`.
            let s = alloc(unsafe { ffi::nftnl_set_alloc() });
            // SAFETY: as for the table: a fresh owned object, a copied NUL-terminated
            // name, a payload of one name within the 2 KiB buffer at `nlh`, freed once.
            unsafe {
                ffi::nftnl_set_set_str(s.as_ptr(), ffi::NFTNL_SET_TABLE as u16, table.as_ptr());
                ffi::nftnl_set_nlmsg_build_payload(nlh, s.as_ptr());
                ffi::nftnl_set_free(s.as_ptr());
            }
        },
    )
}

/// A dump of the rules of one chain (`nft list chain`'s rules).
pub fn get_rules_request(table: &CStr, chain: &CStr, family: u16, seq: u32) -> Vec<u8> {
    request(
        libc::NFT_MSG_GETRULE,
        family,
        libc::NLM_F_DUMP | libc::NLM_F_ACK,
        seq,
        |nlh| {
            // SAFETY: plain allocation; null is handled by `alloc`.
            let r = alloc(unsafe { ffi::nftnl_rule_alloc() });
            // SAFETY: as for the chain: a fresh owned object, copied NUL-terminated names,
            // a payload of two names within the 2 KiB buffer at `nlh`, freed once.
            unsafe {
                ffi::nftnl_rule_set_str(r.as_ptr(), ffi::NFTNL_RULE_TABLE as u16, table.as_ptr());
                ffi::nftnl_rule_set_str(r.as_ptr(), ffi::NFTNL_RULE_CHAIN as u16, chain.as_ptr());
                ffi::nftnl_rule_nlmsg_build_payload(nlh, r.as_ptr());
                ffi::nftnl_rule_free(r.as_ptr());
            }
        },
    )
}

/// The long-lived netfilter netlink socket.
pub struct NlSocket(mnl::Socket);

// SAFETY: `mnl_socket` is a heap struct holding a file descriptor and the bound address;
// it has no thread affinity. `NlSocket` is not `Sync` and every use goes through `&self`
// of the one owner, so moving it to another thread is sound.
unsafe impl Send for NlSocket {}

impl NlSocket {
    /// Opens a `NETLINK_NETFILTER` socket bound to an automatic port id.
    pub fn open() -> io::Result<NlSocket> {
        mnl::Socket::new(mnl::Bus::Netfilter).map(NlSocket)
    }

    /// The socket's netlink port id (the kernel names it in the notifications of our own
    /// changes).
    pub fn portid(&self) -> u32 {
        self.0.portid()
    }

    pub fn raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the descriptor belongs to `self.0` and stays open while `self` is
        // borrowed (it is closed only when the socket is dropped).
        unsafe { BorrowedFd::borrow_raw(self.0.as_raw_fd()) }
    }

    /// `NETLINK_CAP_ACK`: error replies echo only the failed message's header, not its
    /// (up to 64 KiB) payload.
    pub fn cap_acks(&self) -> nix::Result<()> {
        let one: c_int = 1;
        // SAFETY: the fd is an open netlink socket; `one` is a live c_int and the length
        // passed is its size.
        let r = unsafe {
            libc::setsockopt(
                self.raw_fd(),
                libc::SOL_NETLINK,
                libc::NETLINK_CAP_ACK,
                (&one as *const c_int).cast::<c_void>(),
                std::mem::size_of::<c_int>() as libc::socklen_t,
            )
        };
        nix::errno::Errno::result(r).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_the_object() {
        let r = get_table_request(c"portsentry", libc::NFPROTO_INET as u16, 9);
        let h = crate::wire::header(&r).unwrap();
        assert_eq!(h.len as usize, r.len());
        assert_eq!(h.kind, (10 << 8) | libc::NFT_MSG_GETTABLE as u16);
        assert_eq!(h.seq, 9);
        assert_eq!(h.flags, libc::NLM_F_REQUEST as u16 | libc::NLM_F_ACK as u16);
        assert!(r.windows(11).any(|w| w == b"portsentry\0"));

        let r = get_setelems_request(c"portsentry", c"blocked6", libc::NFPROTO_INET as u16, 10);
        let h = crate::wire::header(&r).unwrap();
        assert_eq!(h.kind, (10 << 8) | libc::NFT_MSG_GETSETELEM as u16);
        assert_ne!(h.flags & libc::NLM_F_DUMP as u16, 0);
        assert!(r.windows(9).any(|w| w == b"blocked6\0"));

        let r = get_chain_request(c"portsentry", c"forward", libc::NFPROTO_INET as u16, 11);
        assert!(r.windows(8).any(|w| w == b"forward\0"));
    }
}
