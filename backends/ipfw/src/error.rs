//! Why a step of the ipfw backend failed: one variant per failed step.
//!
//! In: the argv that ran (shortened for display), its exit status and stderr, or the
//! object that was in the way. Out: an [`IpfwError`] the backend wraps into a
//! `BlockError` (backend, step, address) for the daemon. Must not: retry or log.

use std::time::Duration;

use portsentry_blocker::Net;

/// One failed step of talking to `ipfw(8)`.
#[derive(Debug, thiserror::Error)]
pub enum IpfwError {
    /// The configured table name is not one ipfw accepts; nothing was run.
    #[error("\"{table}\" is not an ipfw table name (1 to 63 of A-Z a-z 0-9 _ - ., not \"all\")")]
    BadTable { table: String },
    /// The configured rule number cannot hold our rule; nothing was run.
    #[error("rule number {rule} cannot be used: it must be 1 to 65534 (0 means \"next free\" to ipfw, 65535 is its default rule)")]
    BadRule { rule: u16 },
    /// An IPv4-compatible IPv6 network (`::a.b.c.d`), which ipfw refuses as a table key
    /// ("Use IPv4 instead of v4-compatible"); the other networks of the batch were blocked.
    #[error("{net} is an IPv4-compatible IPv6 network, which ipfw refuses as a table key")]
    Unrepresentable { net: Net },
    /// The program could not be started (missing, not executable).
    #[error("cannot run `{argv}`")]
    Spawn {
        argv: String,
        #[source]
        source: portsentry_exec::ExecError,
    },
    /// The program was still running at the time limit; its process group was killed.
    #[error("`{argv}` did not finish within {limit:?} and was killed")]
    TimedOut { argv: String, limit: Duration },
    /// The program exited unsuccessfully (and not in a way that means success here).
    #[error("`{argv}` failed ({status}): {stderr}")]
    Exit {
        argv: String,
        status: String,
        stderr: String,
    },
    /// The program succeeded but printed a line we do not understand.
    #[error("`{argv}` printed a line portsentry does not understand: \"{line}\"")]
    Unparseable { argv: String, line: String },
    /// A table of our name exists but does not hold addresses; it is left alone.
    #[error("ipfw table {table} exists with type \"{found}\", not \"addr\"; portsentry leaves it alone (choose another table name or destroy it)")]
    WrongTableType { table: String, found: String },
    /// Our rule number holds someone else's rule; it is left alone.
    #[error("ipfw rule {rule} is already in use by: {found}; portsentry leaves it alone (choose another rule number)")]
    ForeignRule { rule: u16, found: String },
}

impl IpfwError {
    /// The network this error is about, where it names one.
    pub fn net(&self) -> Option<Net> {
        match self {
            IpfwError::Unrepresentable { net } => Some(*net),
            _ => None,
        }
    }
}
