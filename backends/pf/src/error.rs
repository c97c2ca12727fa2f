//! Why a step of the pf backend failed.
//!
//! In: the failing `pfctl` run (its argv as one line, exit status, stderr) or the name or
//! line that was refused. Out: a [`PfError`] that the backend wraps into a `BlockError`
//! (backend, step, address) for the daemon. Must not: hide the argv or the tool's own
//! words; every variant that comes from a run names the exact command.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// One variant per way a step can fail.
#[derive(Debug, thiserror::Error)]
pub enum PfError {
    /// The configured anchor or table name is not one pf accepts (or one we would put
    /// into rule text unquoted).
    #[error("invalid pf {what} name \"{name}\": {why}")]
    BadName {
        what: &'static str,
        name: String,
        why: &'static str,
    },
    /// The configured pfctl path cannot be passed as an argv string.
    #[error("the pfctl path {} is not valid UTF-8", .path.display())]
    BadPath { path: PathBuf },
    /// pfctl could not be started (missing, not executable).
    #[error("cannot run `{argv}`")]
    Spawn {
        argv: String,
        #[source]
        source: portsentry_exec::ExecError,
    },
    /// pfctl ended with a failure status.
    #[error("`{argv}` failed ({status}): {stderr}")]
    Exit {
        argv: String,
        status: ExitStatus,
        stderr: String,
    },
    /// pfctl was still running at the time limit; its process group was killed.
    #[error("`{argv}` did not finish within {limit:?} and was killed; stderr: {stderr}")]
    Timeout {
        argv: String,
        limit: Duration,
        stderr: String,
    },
    /// The loaded main ruleset never evaluates our anchor, so nothing we load there
    /// would block anything.
    #[error(
        "the loaded pf ruleset has no `anchor \"{anchor}\"` rule, so the rules portsentry \
         loads into that anchor would never be evaluated. Add this line to the filter rules \
         of /etc/pf.conf, before any `quick` pass rule:\n    anchor \"{anchor}\"\nthen reload \
         the ruleset:\n    pfctl -f /etc/pf.conf"
    )]
    AnchorNotReferenced { anchor: String },
    /// pfctl printed a line we do not understand.
    #[error("`{argv}` printed an unexpected line \"{line}\": {why}")]
    Unexpected {
        argv: String,
        line: String,
        why: &'static str,
    },
}
