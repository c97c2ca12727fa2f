//! The one command runner: every program portsentry executes goes through [`run`].
//!
//! In: a [`Program`] (an argv, or a legacy `KILL_*` shell string whose tokens were already
//! substituted, `$TARGET$` always an address literal), optional bytes for its stdin, where
//! its stdout goes, and a time limit. Out: a [`Ran`] with the exit status (or `None` when
//! the time limit killed it) and the first [`STDERR_KEEP`] bytes of its stderr, or an
//! [`ExecError`] naming the program and the step that failed.
//!
//! Rules: an argv is exec'd directly, never through a shell; only [`Program::Shell`] (the
//! compatibility path for old configs) runs `/bin/sh -c`. The child gets its own process
//! group, so the time limit kills the shell and everything it started. Every descriptor
//! other than stdin, stdout and stderr is close-on-exec in the child (capture handles,
//! netlink sockets and lock files never leak into firewall tools). Must not: read the
//! config, log, or retry.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod sys;

use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How much of a program's stderr is kept for the error message.
pub const STDERR_KEEP: usize = 4096;

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// `argv[0]` is the program (a path, or a name looked up in `PATH`), the rest its
    /// arguments, passed as they are.
    Argv(Vec<String>),
    /// A legacy `KILL_ROUTE` / `KILL_RUN_CMD` string, run as `/bin/sh -c STRING`.
    Shell(String),
}

impl Program {
    /// The program as one line, for logs and errors.
    pub fn display(&self) -> String {
        match self {
            Program::Argv(a) => a.join(" "),
            Program::Shell(s) => s.clone(),
        }
    }
}

/// Where the program's stdout goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdout {
    /// Our own stdout (2.x: a legacy command's output appears in portsentry's output).
    Inherit,
    /// /dev/null (1.2 mode, daemons).
    Null,
    /// Captured and returned in [`Ran::stdout`] (tools whose output we parse).
    Capture,
}

/// One run to make.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    pub program: &'a Program,
    /// Written to the program's stdin, which is then closed; `None`: /dev/null.
    pub stdin: Option<&'a [u8]>,
    pub stdout: Stdout,
    /// Keep stderr for [`Ran::stderr`] (true), or send it to /dev/null (1.2 mode, whose
    /// children got /dev/null as every standard stream).
    pub keep_stderr: bool,
    pub limit: Duration,
    /// Extra environment variables (for example `LC_ALL=C` for tools whose output we
    /// parse).
    pub env: &'a [(&'a str, &'a str)],
}

impl<'a> Spec<'a> {
    /// `program` with stdin and stdout on /dev/null, no extra environment, and `limit`.
    pub fn new(program: &'a Program, limit: Duration) -> Spec<'a> {
        Spec {
            program,
            stdin: None,
            stdout: Stdout::Null,
            keep_stderr: true,
            limit,
            env: &[],
        }
    }
}

/// How a program ended.
#[derive(Debug)]
pub struct Ran {
    /// `None` when the time limit was reached and the process group was killed.
    pub status: Option<ExitStatus>,
    /// With [`Stdout::Capture`]: everything it printed.
    pub stdout: Vec<u8>,
    /// The first [`STDERR_KEEP`] bytes of its stderr (the rest is read and dropped).
    pub stderr: String,
    pub elapsed: Duration,
}

impl Ran {
    /// Exited with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// The status as a shell reports it: the exit code, or 128 + the signal. `None` if it
    /// succeeded or was killed at the time limit.
    pub fn failed_code(&self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        let st = self.status?;
        if st.success() {
            return None;
        }
        Some(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)))
    }
}

/// Why a program could not be run to the end.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("empty command")]
    Empty,
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot wait for {program}: {source}")]
    Wait {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

/// Runs `spec` to its end or its time limit. `Ok` means it started; the status says how
/// it ended.
pub fn run(spec: &Spec<'_>) -> Result<Ran, ExecError> {
    let mut cmd = match spec.program {
        Program::Argv(argv) => {
            let (first, rest) = argv.split_first().ok_or(ExecError::Empty)?;
            let mut c = Command::new(first);
            c.args(rest);
            c
        }
        Program::Shell(s) => {
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg(s);
            c
        }
    };
    let name = spec.program.display();
    cmd.stdin(if spec.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(match spec.stdout {
        Stdout::Inherit => Stdio::inherit(),
        Stdout::Null => Stdio::null(),
        Stdout::Capture => Stdio::piped(),
    });
    cmd.stderr(if spec.keep_stderr {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    for (k, v) in spec.env {
        cmd.env(k, v);
    }
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    sys::close_other_fds_on_exec(&mut cmd);
    let started = Instant::now();
    // ETXTBSY: the program file is still open for writing somewhere, often only in a
    // child that another thread forked and that has not exec'd yet (a script written
    // just before): it passes within milliseconds, so try a few times.
    let mut tries = 0;
    let mut child = loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 20 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            other => {
                break other.map_err(|source| ExecError::Spawn {
                    program: name.clone(),
                    source,
                })?
            }
        }
    };
    let pid = child.id();
    // Readers and the writer run beside the wait, so a chatty program never blocks on a
    // full pipe.
    let writer = match (child.stdin.take(), spec.stdin) {
        (Some(mut pipe), Some(data)) => {
            let data = data.to_vec();
            Some(std::thread::spawn(move || {
                let _ = pipe.write_all(&data);
            }))
        }
        _ => None,
    };
    let stdout = child.stdout.take().map(|mut out| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = out.read_to_end(&mut v);
            v
        })
    });
    let stderr = child.stderr.take().map(|err| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let _ = err.take(STDERR_KEEP as u64).read_to_end(&mut kept);
            kept
        })
    });
    let status = wait(&mut child, pid, spec.limit, started).map_err(|source| ExecError::Wait {
        program: name,
        source,
    })?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout = stdout.and_then(|h| h.join().ok()).unwrap_or_default();
    let stderr = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    Ok(Ran {
        status,
        stdout,
        stderr: String::from_utf8_lossy(&stderr).trim_end().to_string(),
        elapsed: started.elapsed(),
    })
}

/// Waits with short naps (a firewall tool usually ends within milliseconds and the block
/// should be reported as soon as it does); at the limit the whole group is killed.
fn wait(
    child: &mut std::process::Child,
    pid: u32,
    limit: Duration,
    started: Instant,
) -> std::io::Result<Option<ExitStatus>> {
    let mut nap = Duration::from_micros(50);
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(Some(st));
        }
        if started.elapsed() >= limit {
            sys::kill_group(pid);
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests;
