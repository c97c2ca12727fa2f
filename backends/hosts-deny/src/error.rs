//! Why a hosts.deny change failed: one variant per step, each naming the path.
//!
//! In: the failing step's path and I/O cause. Out: a [`HostsDenyError`] that the
//! backend wraps into a `BlockError` (backend, step, address) for the daemon.

use std::io;
use std::path::PathBuf;

/// One failed step of reading or rewriting hosts.deny.
#[derive(Debug, thiserror::Error)]
pub enum HostsDenyError {
    #[error("cannot lock {}", .path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write temporary file {}", .path.display())]
    WriteTemp {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot keep the owner and mode of {} on {}", .path.display(), .temp.display())]
    KeepOwner {
        path: PathBuf,
        temp: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot sync {} to disk", .path.display())]
    Sync {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot append a line to {}", .path.display())]
    Append {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot rewrite {} in place", .path.display())]
    WriteInPlace {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot rename {} to {}", .temp.display(), .path.display())]
    Rename {
        temp: PathBuf,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is a symbolic link that is not root's in a directory only root may write to; refusing to follow it", .path.display())]
    SymlinkRefused { path: PathBuf },
    #[error("{} is world-writable; refusing to use it", .path.display())]
    WorldWritableRefused { path: PathBuf },
    #[error("{} is not a regular file; refusing to use it", .path.display())]
    NotAFile { path: PathBuf },
    #[error("a line for {} contains a line break", .path.display())]
    BadLine { path: PathBuf },
    #[error("hosts.deny line template \"{template}\" for {}: {why}", .path.display())]
    BadTemplate {
        path: PathBuf,
        template: String,
        why: &'static str,
    },
}
