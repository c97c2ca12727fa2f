//! BSD: `route(8)` exec'd with an argv, never a shell.

use crate::{argv_block, argv_unblock, RouteError, ROUTE_PROGRAM};
use portsentry_blocker::Net;
use std::process::{Command, Stdio};

/// Runs `argv` (argv[0] replaced by [`ROUTE_PROGRAM`]); a missing route on delete and an
/// existing route on add count as success, so both verbs are idempotent.
fn run(argv: &[String], absent_is_ok: bool, exists_is_ok: bool) -> Result<(), RouteError> {
    let out = Command::new(ROUTE_PROGRAM)
        .args(argv.iter().skip(1))
        .stdin(Stdio::null())
        .env("LC_ALL", "C")
        .output()
        .map_err(|source| RouteError::Spawn {
            program: ROUTE_PROGRAM,
            source,
        })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let text = format!("{stderr} {}", String::from_utf8_lossy(&out.stdout));
    // "not in table" (FreeBSD, NetBSD) / "No such process" (ESRCH): nothing to delete.
    if absent_is_ok && (text.contains("not in table") || text.contains("No such process")) {
        return Ok(());
    }
    // "File exists" (EEXIST): the route is already there.
    if exists_is_ok && text.contains("File exists") {
        return Ok(());
    }
    Err(RouteError::Exit {
        argv: argv.join(" "),
        status: out.status.to_string(),
        stderr,
    })
}

pub(crate) fn block(net: &Net) -> Result<(), RouteError> {
    run(&argv_block(net), false, true)
}

pub(crate) fn unblock(net: &Net) -> Result<(), RouteError> {
    run(&argv_unblock(net), true, false)
}
