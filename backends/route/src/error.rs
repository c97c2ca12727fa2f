//! Why a step of the route backend failed.
//!
//! In: the failing rtnetlink request (Linux), or the failing `route(8)` / `netstat(1)` run
//! (its argv as one line, with the real path, the exit status and the tool's own words) or
//! the netstat line that could not be read (BSD). Out: a [`RouteError`] that the backend
//! wraps into a `BlockError` (backend, step, address) for the daemon. Must not: hide the
//! argv or what the tool said.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// One variant per step that can fail.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// Opening (or configuring) the rtnetlink socket failed.
    #[error("cannot open a netlink route socket")]
    Open(#[source] io::Error),
    /// Sending a request to the kernel failed.
    #[error("cannot send {request} to the kernel")]
    Send {
        request: &'static str,
        #[source]
        source: io::Error,
    },
    /// Receiving the kernel's answer failed (or timed out).
    #[error("no answer from the kernel to {request}")]
    Receive {
        request: &'static str,
        #[source]
        source: io::Error,
    },
    /// The kernel answered a request with an error.
    #[error("the kernel refused {request}")]
    Refused {
        request: &'static str,
        #[source]
        source: io::Error,
    },
    /// The kernel's answer could not be parsed.
    #[error("malformed netlink answer to {request}: {what}")]
    Malformed {
        request: &'static str,
        what: &'static str,
    },
    /// A configured program path (`route`, `netstat`) cannot be passed as an argv string.
    #[error("the program path {} is not valid UTF-8", .path.display())]
    BadPath { path: PathBuf },
    /// `route(8)` or `netstat(1)` could not be started (missing, not executable).
    #[error("cannot run `{argv}`")]
    Spawn {
        /// The argv as it was to be run, real path first.
        argv: String,
        #[source]
        source: portsentry_exec::ExecError,
    },
    /// `route(8)` or `netstat(1)` exited unsuccessfully.
    #[error("`{argv}` failed ({status}): {stderr}")]
    Exit {
        /// The argv as run, real path first.
        argv: String,
        status: ExitStatus,
        /// What the tool wrote to stderr; its stdout when stderr is empty (FreeBSD
        /// `route(8)` prints its reason, such as `not in table`, on stdout).
        stderr: String,
    },
    /// `route(8)` or `netstat(1)` was still running at the time limit; its process group
    /// was killed.
    #[error("`{argv}` did not finish within {limit:?} and was killed; stderr: {stderr}")]
    Timeout {
        argv: String,
        limit: Duration,
        stderr: String,
    },
    /// `netstat -rn` printed a line that cannot be read, so the routes of ours cannot be
    /// told: the list would be incomplete.
    #[error("`{argv}` printed line {number} \"{line}\", which cannot be read: {what}")]
    Parse {
        argv: String,
        /// 1-based line number in netstat's stdout.
        number: usize,
        line: String,
        what: &'static str,
    },
    /// This operating system has no route backend.
    #[error("the route backend does not exist on this operating system")]
    Unsupported,
    /// A route for exactly this network exists and is not ours: left alone.
    #[error("a route for {net} exists that portsentry did not make; it is left alone")]
    NotOurs { net: portsentry_blocker::Net },
}
