//! The `command` backend: blocks with the admin's own tools, given as argv templates.
//!
//! In: `BLOCK_COMMAND` and `UNBLOCK_COMMAND` as argv templates (split once when the config
//! is loaded, never by a shell), and typed targets. Out: one run of the tool per target,
//! through the shared runner with its time limit, with `$TARGET$` replaced by the
//! address literal (`addr` or `addr/len`; nothing else can reach the argv from a packet),
//! `$PORT$` by the port and `$TIMEOUT$` by the seconds left (0 = permanent).
//!
//! The tools cannot be asked what they hold, so [`Blocker::list`] is empty and
//! [`Blocker::holds_list`] says so: the daemon's store is the source of truth, and a
//! flush unblocks each stored block. A tool that cannot be started, fails or outlives the
//! time limit is an error naming the argv, the status and its stderr. Must not: run a
//! shell, substitute anything but the three tokens, or retry.

#![cfg_attr(test, allow(clippy::unwrap_used))]

use std::time::Duration;

use portsentry_blocker::{BlockError, Blocker, Held, Net, Step, Target};
use portsentry_exec::{Program, Spec, Stdout};

/// The backend's name.
pub const NAME: &str = "command";

/// Why a run of the tool failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("no UNBLOCK_COMMAND is configured, so {0} cannot be unblocked by the command backend")]
    NoUnblock(Net),
    #[error("cannot run `{argv}`")]
    Spawn {
        argv: String,
        #[source]
        source: portsentry_exec::ExecError,
    },
    #[error("`{argv}` did not end within {secs} s and was killed")]
    TimedOut { argv: String, secs: u64 },
    #[error("`{argv}` failed ({status}){}", if .stderr.is_empty() { String::new() } else { format!(": {}", .stderr) })]
    Exit {
        argv: String,
        status: String,
        stderr: String,
    },
}

/// The two templates and the time limit.
#[derive(Debug, Clone)]
pub struct Options {
    pub block: Vec<String>,
    pub unblock: Option<Vec<String>>,
    pub limit: Duration,
}

/// The command backend.
#[derive(Debug, Clone)]
pub struct Command {
    opts: Options,
}

/// `$TARGET$`, `$PORT$` and `$TIMEOUT$` replaced in each word of `template`.
pub fn plan_argv(template: &[String], target: &Target) -> Vec<String> {
    let timeout = target.timeout.map_or(0, |d| d.as_secs()).to_string();
    template
        .iter()
        .map(|w| {
            w.replace("$TARGET$", &target.net.to_string())
                .replace("$PORT$", &target.reason.port.to_string())
                .replace("$TIMEOUT$", &timeout)
        })
        .collect()
}

impl Command {
    pub fn new(opts: Options) -> Command {
        Command { opts }
    }

    fn run(&self, argv: Vec<String>) -> Result<(), CommandError> {
        let shown = argv.join(" ");
        let program = Program::Argv(argv);
        let ran = portsentry_exec::run(&Spec {
            stdout: Stdout::Capture,
            ..Spec::new(&program, self.opts.limit)
        })
        .map_err(|source| CommandError::Spawn {
            argv: shown.clone(),
            source,
        })?;
        match ran.status {
            None => Err(CommandError::TimedOut {
                argv: shown,
                secs: self.opts.limit.as_secs(),
            }),
            Some(st) if st.success() => Ok(()),
            Some(st) => Err(CommandError::Exit {
                argv: shown,
                status: st.to_string(),
                stderr: ran.stderr,
            }),
        }
    }
}

impl Blocker for Command {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Nothing to set up: the tools are the admin's.
    fn init(&mut self) -> Result<(), BlockError> {
        Ok(())
    }

    fn block(&mut self, target: &Target) -> Result<(), BlockError> {
        self.run(plan_argv(&self.opts.block, target))
            .map_err(|e| BlockError::new(NAME, Step::Block, Some(target.net), e))
    }

    fn unblock(&mut self, net: &Net) -> Result<(), BlockError> {
        let Some(t) = &self.opts.unblock else {
            return Err(BlockError::new(
                NAME,
                Step::Unblock,
                Some(*net),
                CommandError::NoUnblock(*net),
            ));
        };
        let target = Target {
            net: *net,
            timeout: None,
            reason: Default::default(),
        };
        self.run(plan_argv(t, &target))
            .map_err(|e| BlockError::new(NAME, Step::Unblock, Some(*net), e))
    }

    /// Nothing of ours can be found without the store: the daemon unblocks each block.
    fn flush(&mut self) -> Result<(), BlockError> {
        Ok(())
    }

    fn list(&mut self) -> Result<Vec<Held>, BlockError> {
        Ok(Vec::new())
    }

    fn holds_list(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests;
