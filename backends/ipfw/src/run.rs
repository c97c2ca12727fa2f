//! Runs one `ipfw(8)` argv through the shared runner (`portsentry_exec::run`).
//!
//! In: an argv from [`crate::argv`] (its `argv[0]` replaced by the configured path) and
//! the time limit. Out: a [`Done`] with the exit status, stdout and stderr of a program
//! that ran to its end; a program that could not start or hit the time limit is an
//! [`IpfwError`]. Must not: use a shell, judge the exit status (callers know which
//! failures mean success), or retry.

use std::path::Path;
use std::time::Duration;

use portsentry_exec::{Program, Spec, Stdout};

use crate::IpfwError;

/// Arguments shown in errors; a 1000-key `add` is shortened to its start.
const SHOWN_ARGS: usize = 12;

/// A program that ran to its end.
#[derive(Debug)]
pub(crate) struct Done {
    /// The argv as shown in errors.
    pub argv: String,
    pub success: bool,
    /// `exit status: 1`, `signal: 9 (SIGKILL)`, ...
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

impl Done {
    /// This run as a failure.
    pub fn failed(self) -> IpfwError {
        IpfwError::Exit {
            argv: self.argv,
            status: self.status,
            stderr: if self.stderr.is_empty() {
                "(nothing on stderr)".to_string()
            } else {
                self.stderr
            },
        }
    }

    /// A line of output we do not understand.
    pub fn unparseable(self, line: String) -> IpfwError {
        IpfwError::Unparseable {
            argv: self.argv,
            line,
        }
    }
}

/// `argv` with `program` as `argv[0]`, shortened after [`SHOWN_ARGS`] arguments.
pub(crate) fn shown(program: &Path, argv: &[String]) -> String {
    let mut s = program.display().to_string();
    let rest = argv.get(1..).unwrap_or_default();
    for a in rest.iter().take(SHOWN_ARGS) {
        s.push(' ');
        s.push_str(a);
    }
    if rest.len() > SHOWN_ARGS {
        s.push_str(&format!(
            " ... ({} more arguments)",
            rest.len() - SHOWN_ARGS
        ));
    }
    s
}

/// Runs `argv` as `program` with `LC_ALL=C`, stdout captured, within `limit`.
pub(crate) fn run(program: &Path, argv: &[String], limit: Duration) -> Result<Done, IpfwError> {
    let full = Program::Argv(
        std::iter::once(program.to_string_lossy().into_owned())
            .chain(argv.iter().skip(1).cloned())
            .collect(),
    );
    let shown = shown(program, argv);
    let ran = portsentry_exec::run(&Spec {
        stdout: Stdout::Capture,
        env: &[("LC_ALL", "C")],
        ..Spec::new(&full, limit)
    })
    .map_err(|source| IpfwError::Spawn {
        argv: shown.clone(),
        source,
    })?;
    let Some(status) = ran.status else {
        return Err(IpfwError::TimedOut { argv: shown, limit });
    };
    Ok(Done {
        argv: shown,
        success: status.success(),
        status: status.to_string(),
        stdout: String::from_utf8_lossy(&ran.stdout).into_owned(),
        stderr: ran.stderr,
    })
}
