//! What can fail in the nft backend, one variant per step.
//!
//! In: the step that failed and its cause. Out: [`NftError`], mapped to
//! `BlockError::new("nft", step, net, err)` at the trait boundary.
//! Must not: repeat the cause in the message (it is kept as the source).

use nix::errno::Errno;

use crate::wire::WireError;

/// A failed step of the nft backend.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// The configured table name cannot be a kernel object name.
    #[error("table name {0:?} is not usable (1 to 255 bytes, no NUL)")]
    BadTableName(String),
    /// The netfilter netlink socket could not be opened or bound (no nfnetlink in the
    /// kernel, or not allowed).
    #[error("opening the netfilter netlink socket")]
    OpenSocket(#[source] std::io::Error),
    /// A socket option (buffer sizes, receive timeout, capped ACKs) could not be set.
    #[error("setting socket option {option}")]
    SocketOption {
        option: &'static str,
        #[source]
        source: Errno,
    },
    /// The batch could not be handed to the kernel in one `sendmsg`.
    #[error("sending a {bytes}-byte batch to the kernel")]
    Send {
        bytes: usize,
        #[source]
        source: Errno,
    },
    /// `sendmsg` took only part of the batch.
    #[error("the kernel took {sent} of the {bytes} bytes of the batch")]
    ShortSend { sent: usize, bytes: usize },
    /// Reading the kernel's answers failed (a receive buffer overrun shows as `ENOBUFS`).
    #[error("receiving the kernel's answer")]
    Receive(#[source] Errno),
    /// A received message was larger than the receive buffer.
    #[error("a {len}-byte answer did not fit the receive buffer")]
    Truncated { len: usize },
    /// The kernel answered nothing for a message that asked for an ACK.
    #[error("no answer from the kernel for `{what}`")]
    MissingAck { what: String },
    /// The kernel has no nf_tables: it refused the batch as a whole.
    #[error("the kernel has no nf_tables (load the nf_tables module, or build it in)")]
    NoNfTables(#[source] Errno),
    /// The kernel refused one message of the batch (the whole batch was rolled back).
    #[error("the kernel refused `{what}`")]
    Kernel {
        what: String,
        #[source]
        errno: Errno,
    },
    /// The kernel's answer did not parse.
    #[error("parsing the kernel's answer")]
    Parse(#[source] WireError),
    /// An element key had a length no address has.
    #[error("set {set} holds a {len}-byte key")]
    BadKey { set: &'static str, len: usize },
}

impl NftError {
    /// The errno the kernel answered, if this is a refusal.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            NftError::Kernel { errno, .. } => Some(*errno),
            NftError::NoNfTables(e) => Some(*e),
            _ => None,
        }
    }

    /// Whether our table, set or chain is missing (someone ran `nft flush ruleset`, or
    /// `init` never ran): the answer is `init`, then re-apply.
    pub fn objects_missing(&self) -> bool {
        self.errno() == Some(Errno::ENOENT)
    }
}
