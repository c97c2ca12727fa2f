//! Running pfctl through the shared runner (`portsentry_exec::run`).
//!
//! In: an argv from [`crate::argv`] (`argv[0]` is `pfctl`), optional bytes for stdin, and
//! the [`Options`] (names, pfctl path, time limit). Out: pfctl's stdout and stderr when
//! it exits 0; otherwise a [`PfError`] naming the argv as run (with the real path), the
//! exit status and stderr. The environment gets `LC_ALL=C`. Must not: use a shell,
//! retry, or interpret what pfctl printed.

use std::iter;

use portsentry_exec::{Program, Spec, Stdout};

use crate::{Options, PfError};

/// What a successful pfctl run printed.
#[derive(Debug)]
pub(crate) struct Output {
    /// The argv as run, for errors about the output.
    pub argv: String,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `argv` (with `argv[0]` replaced by `options.pfctl`) to its end or the limit.
pub(crate) fn run(
    options: &Options,
    argv: &[String],
    stdin: Option<&[u8]>,
) -> Result<Output, PfError> {
    options.check()?;
    let path = options.pfctl.to_str().ok_or_else(|| PfError::BadPath {
        path: options.pfctl.clone(),
    })?;
    let full: Vec<String> = iter::once(path.to_string())
        .chain(argv.iter().skip(1).cloned())
        .collect();
    let line = full.join(" ");
    let program = Program::Argv(full);
    let ran = portsentry_exec::run(&Spec {
        stdout: Stdout::Capture,
        stdin,
        env: &[("LC_ALL", "C")],
        ..Spec::new(&program, options.limit)
    })
    .map_err(|source| PfError::Spawn {
        argv: line.clone(),
        source,
    })?;
    match ran.status {
        None => Err(PfError::Timeout {
            argv: line,
            limit: options.limit,
            stderr: ran.stderr,
        }),
        Some(status) if status.success() => Ok(Output {
            argv: line,
            stdout: String::from_utf8_lossy(&ran.stdout).into_owned(),
            stderr: ran.stderr,
        }),
        Some(status) => Err(PfError::Exit {
            argv: line,
            status,
            stderr: ran.stderr,
        }),
    }
}
