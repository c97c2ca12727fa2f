//! Why a step of the npf backend failed: one variant per way it can fail.
//!
//! In: the argv that ran, how it ended, its stderr. Out: [`NpfError`], wrapped into
//! `BlockError::new("npf", step, net, err)` at the trait boundary. Must not: hide the
//! argv, the exit status or stderr of a failed npfctl.

use portsentry_blocker::Net;
use std::time::Duration;

/// What an admin adds to `/etc/npf.conf` for table `table`, and how to load it: the text
/// [`NpfError::TableMissing`] prints.
pub fn setup_hint(table: &str) -> String {
    format!(
        "Add to /etc/npf.conf, before the groups:\n\
         \x20   table <{table}> type lpm\n\
         and as the first rule of `group default` (and of every other group that passes \
         inbound traffic):\n\
         \x20   block in final from <{table}>\n\
         then load it with:\n\
         \x20   npfctl reload\n\
         (NetBSD 7 and 8 write the table as `table <{table}> type tree dynamic`; \
         `type ipset` also works while only single addresses are blocked, \
         BLOCK_PREFIX_V6=128. Start NPF with `npfctl start`, or npf=YES in /etc/rc.conf, \
         if it is not running.)"
    )
}

/// A failed step of the npf backend.
#[derive(Debug, thiserror::Error)]
pub enum NpfError {
    /// The configured table name cannot name an NPF table.
    #[error(
        "npf table name {0:?} is not usable (1 to 31 letters, digits, '_' or '-', \
         not starting with '-')"
    )]
    BadTableName(String),
    /// npfctl could not be started (missing, not executable).
    #[error("cannot run `{argv}`")]
    Spawn {
        argv: String,
        #[source]
        source: portsentry_exec::ExecError,
    },
    /// npfctl ran past the time limit and was killed.
    #[error("`{argv}` did not finish within {limit:?} and was killed: {stderr}")]
    TimedOut {
        argv: String,
        limit: Duration,
        stderr: String,
    },
    /// npfctl exited unsuccessfully with a refusal we have no better answer for.
    #[error("`{argv}` failed ({status}): {stderr}")]
    Exit {
        argv: String,
        status: String,
        stderr: String,
    },
    /// npfctl succeeded but printed something its success never prints.
    #[error("`{argv}` printed something unexpected: {output:?}")]
    Unexpected { argv: String, output: String },
    /// A line of `table NAME list` is not an address or `ADDR/LEN`.
    #[error("`{argv}` printed a line that is not an address: {line:?}")]
    BadLine { argv: String, line: String },
    /// Our table is not in the loaded NPF configuration.
    #[error(
        "npf table <{table}> is not in the loaded NPF configuration \
         (`{argv}`: {stderr}).\n{}",
        setup_hint(.table)
    )]
    TableMissing {
        table: String,
        argv: String,
        stderr: String,
    },
    /// The table refused a network: it is not of type `lpm`.
    #[error(
        "npf table <{table}> refused the network {net} (`{argv}`: {stderr}): a table of \
         type ipset holds single addresses only; declare it `table <{table}> type lpm` in \
         /etc/npf.conf and run `npfctl reload`"
    )]
    NetworkRefused {
        table: String,
        net: Net,
        argv: String,
        stderr: String,
    },
    /// An `lpm` table cannot add `net` beside the narrower entry `inside` that holds its
    /// first address.
    #[error(
        "npf table <{table}> holds {inside}, which holds the first address of {net}; \
         an lpm table cannot add {net} beside it (unblock {inside} first)"
    )]
    Conflict {
        table: String,
        net: Net,
        inside: Net,
    },
}

impl NpfError {
    /// Whether our table is not loaded (never declared, or `npfctl flush`, or a reload
    /// without it): the answer is the npf.conf lines of [`setup_hint`], then `init`.
    pub fn table_missing(&self) -> bool {
        matches!(self, NpfError::TableMissing { .. })
    }

    /// The network the error is about, where it names one.
    pub fn net(&self) -> Option<Net> {
        match self {
            NpfError::NetworkRefused { net, .. } | NpfError::Conflict { net, .. } => Some(*net),
            _ => None,
        }
    }
}
