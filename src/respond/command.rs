//! Legacy KILL_ROUTE / KILL_RUN_CMD commands, run the way Portsentry ran them.
//!
//! In: a command line whose tokens were already substituted (`$TARGET$` is always an IP
//! literal). Out: whether it started, and its exit status. It runs `/bin/sh -c` (the
//! compatibility path; typed backends never come here) with stdin on /dev/null and a
//! time limit, and its output goes to our stdout.

use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a legacy command may run before it is killed.
pub const TIME_LIMIT: Duration = Duration::from_secs(30);

/// Runs `cmd` through `/bin/sh -c`. `Ok` means it started (what 2.x counts as success),
/// with its exit status if it ended within the time limit.
pub fn run(cmd: &str, quiet: bool) -> std::io::Result<Option<ExitStatus>> {
    let mut c = Command::new("/bin/sh");
    c.arg("-c").arg(cmd).stdin(Stdio::null());
    if quiet {
        c.stdout(Stdio::null()).stderr(Stdio::null());
    }
    let mut child = c.spawn()?;
    let start = Instant::now();
    // Short naps: a typical firewall command ends within a few milliseconds and the
    // block should be reported as soon as it does.
    let nap = Duration::from_micros(100);
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(Some(st));
        }
        if start.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(nap);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_and_reports_status() {
        let st = super::run("exit 3", true).unwrap().unwrap();
        assert_eq!(st.code(), Some(3));
    }
}
