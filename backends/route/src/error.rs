//! Why a step of the route backend failed.

use std::io;

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
    /// `route(8)` could not be started.
    #[error("cannot run {program}")]
    Spawn {
        program: &'static str,
        #[source]
        source: portsentry_exec::ExecError,
    },
    /// `route(8)` exited unsuccessfully.
    #[error("`{argv}` failed ({status}): {stderr}")]
    Exit {
        argv: String,
        status: String,
        stderr: String,
    },
    /// This operating system has no route backend.
    #[error("the route backend does not exist on this operating system")]
    Unsupported,
    /// A route for exactly this network exists and is not ours: left alone.
    #[error("a route for {net} exists that portsentry did not make; it is left alone")]
    NotOurs { net: portsentry_blocker::Net },
}
