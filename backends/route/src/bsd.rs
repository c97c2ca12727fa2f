//! BSD: `route(8)` exec'd with an argv through the shared runner, never a shell.

use crate::{argv_block, argv_unblock, RouteError, ROUTE_PROGRAM};
use portsentry_blocker::Net;
use portsentry_exec::{Program, Spec, Stdout};
use std::time::Duration;

/// How long `route(8)` may take.
const LIMIT: Duration = Duration::from_secs(10);

/// Runs `argv` (argv[0] replaced by [`ROUTE_PROGRAM`]); a missing route on delete and an
/// existing route on add count as success, so both verbs are idempotent.
fn run(argv: &[String], absent_is_ok: bool, exists_is_ok: bool) -> Result<(), RouteError> {
    let program = Program::Argv(
        std::iter::once(ROUTE_PROGRAM.to_string())
            .chain(argv.iter().skip(1).cloned())
            .collect(),
    );
    let out = portsentry_exec::run(&Spec {
        stdout: Stdout::Capture,
        env: &[("LC_ALL", "C")],
        ..Spec::new(&program, LIMIT)
    })
    .map_err(|source| RouteError::Spawn {
        program: ROUTE_PROGRAM,
        source,
    })?;
    if out.success() {
        return Ok(());
    }
    let stderr = out.stderr.clone();
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
        status: out
            .status
            .map_or_else(|| "killed at the time limit".to_string(), |s| s.to_string()),
        stderr,
    })
}

pub(crate) fn block(net: &Net) -> Result<(), RouteError> {
    run(&argv_block(net), false, true)
}

pub(crate) fn unblock(net: &Net) -> Result<(), RouteError> {
    run(&argv_unblock(net), true, false)
}
