//! Why a block store operation failed: one variant per step, each naming the file.
//!
//! In: the failing step's path and cause. Out: a message that names the path (and the
//! line for a bad record) without repeating the cause, which stays available as
//! `source()`. No I/O here.

use std::io;
use std::path::PathBuf;

use super::record::FORMAT_VERSION;

/// A failed step of the block store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Creating the directory that holds the store failed.
    #[error("cannot create the directory {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Opening (or creating) the sidecar lock file failed.
    #[error("cannot open the lock file {}", path.display())]
    OpenLock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Taking the exclusive `flock` on the lock file failed.
    #[error("cannot lock {}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
    /// Opening (or creating) the store file failed.
    #[error("cannot open the block store {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Checking the store file's identity and size failed.
    #[error("cannot check the block store {}", path.display())]
    Stat {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Reading the store file failed.
    #[error("cannot read the block store {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The first line is not a block store header: the file is something else.
    #[error(
        "{}:1: not a portsentry block store (the first line must be {{\"portsentry_block_store\":{}}}): {what}",
        path.display(),
        FORMAT_VERSION
    )]
    NotAStore { path: PathBuf, what: String },
    /// The header names a format version newer than this build reads.
    #[error(
        "{}:1: block store format version {found} was written by a newer portsentry; this one reads version {} only (upgrade, or move the file aside)",
        path.display(),
        FORMAT_VERSION
    )]
    FutureVersion { path: PathBuf, found: u64 },
    /// A complete line (one that ends in a newline) does not parse: real corruption.
    /// The file is left untouched.
    #[error("{}:{line}: {what}", path.display())]
    Parse {
        path: PathBuf,
        line: u64,
        what: String,
    },
    /// Cutting off an incomplete last line (left by a crash mid-append) failed.
    #[error("cannot drop the incomplete last line of {}", path.display())]
    Truncate {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Encoding a record as JSON failed.
    #[error("cannot encode a record for {}", path.display())]
    Encode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Appending a line to the journal failed.
    #[error("cannot append to the block store {}", path.display())]
    Append {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Flushing the store file to disk failed.
    #[error("cannot flush the block store {} to disk", path.display())]
    Sync {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Creating or writing the compaction snapshot failed.
    #[error("cannot write the snapshot {}", path.display())]
    WriteSnapshot {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Flushing the compaction snapshot to disk failed.
    #[error("cannot flush the snapshot {} to disk", path.display())]
    SyncSnapshot {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Renaming the snapshot over the store failed.
    #[error("cannot replace {} with the snapshot {}", to.display(), from.display())]
    Rename {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Flushing the directory (so a new file or a rename survives a crash) failed.
    #[error("cannot flush the directory {} to disk", path.display())]
    SyncDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}
