//! Runs one npfctl argv through the shared runner and says how it ended.
//!
//! In: an argv from [`crate::argv`], optional stdin bytes, the time limit. Out: stdout of
//! a successful run, or a [`Failure`] (exit status, stderr, which refusal it names), or an
//! [`NpfError`] when npfctl could not run to its end. Runs with `LC_ALL=C` so messages
//! are the C locale's. Must not: use a shell, retry, or decide what a refusal means.

use crate::parse::{classify, Said};
use crate::NpfError;
use portsentry_exec::{Program, Spec, Stdout};
use std::time::Duration;

/// An npfctl run that exited unsuccessfully.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub said: Said,
    pub argv: String,
    pub status: String,
    pub stderr: String,
}

impl Failure {
    /// The plain error: argv, exit status, stderr.
    pub fn error(self) -> NpfError {
        NpfError::Exit {
            argv: self.argv,
            status: self.status,
            stderr: self.stderr,
        }
    }
}

/// How a run ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Exit status 0, with everything printed on stdout.
    Done(String),
    Failed(Failure),
}

pub(crate) fn run(
    argv: &[String],
    stdin: Option<&[u8]>,
    limit: Duration,
) -> Result<Outcome, NpfError> {
    let shown = argv.join(" ");
    let program = Program::Argv(argv.to_vec());
    let ran = portsentry_exec::run(&Spec {
        stdin,
        stdout: Stdout::Capture,
        env: &[("LC_ALL", "C")],
        ..Spec::new(&program, limit)
    })
    .map_err(|source| NpfError::Spawn {
        argv: shown.clone(),
        source,
    })?;
    match ran.status {
        None => Err(NpfError::TimedOut {
            argv: shown,
            limit,
            stderr: ran.stderr,
        }),
        Some(st) if st.success() => Ok(Outcome::Done(
            String::from_utf8_lossy(&ran.stdout).into_owned(),
        )),
        Some(st) => Ok(Outcome::Failed(Failure {
            said: classify(&ran.stderr),
            argv: shown,
            status: st.to_string(),
            stderr: ran.stderr,
        })),
    }
}
