//! Detaching with a start that never lies (`-D` in 2.x mode, and 1.2 mode, `docs/compat.md`
//! §10.2): the parent returns only once the daemon is listening, or with its failure.
//!
//! In: argv and the environment. Out: in the parent, [`Started::Ready`] once the child
//! said it is listening, or [`Started::Failed`] with the child's exit code when it ended
//! (or closed the pipe) first; in the child, a process in its own session with `/` as
//! its directory, umask 077 and, once ready, its standard streams on /dev/null.
//!
//! `fork` is not safe Rust, so the parent re-executes `/proc/self/exe` with the same argv
//! (argv[0] included: `ps` keeps showing `portsentry -atcp`, which Debian's init script
//! greps for) and a marker in the environment. The child's stdout is a pipe to the parent
//! that carries one readiness byte; its stderr stays the parent's until then, so set-up
//! errors reach the terminal. Must not: log (the caller does), or touch any file but
//! /dev/null.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The environment marker that tells the re-executed process it is the daemon.
const MARKER: &str = "PORTSENTRY_DAEMON_CHILD";
/// The marker's value (anything else is not ours).
const MARKER_VALUE: &str = "1";
/// The byte the child writes when it is listening.
const READY: u8 = b'R';

/// Which side of the detach this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Started by the admin or an init script: start the daemon and wait for it.
    Parent,
    /// Started by the parent: be the daemon.
    Child,
}

/// Tells the two sides apart and removes the marker, so that commands the daemon runs
/// do not inherit it. Call before any thread starts.
pub fn role() -> Role {
    match std::env::var_os(MARKER) {
        Some(v) if v == MARKER_VALUE => {
            std::env::remove_var(MARKER);
            Role::Child
        }
        _ => Role::Parent,
    }
}

/// The program to re-execute: this very binary, even if its file was replaced since.
fn self_exe() -> PathBuf {
    let proc_exe = Path::new("/proc/self/exe");
    if proc_exe.exists() {
        return proc_exe.to_path_buf();
    }
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("portsentry"))
}

/// How the detached daemon's start ended, as the parent saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// It is listening.
    Ready,
    /// It ended before that, with this exit code (`None`: killed by a signal).
    Failed(Option<i32>),
}

/// The parent's whole job: start the child with the same argv and wait for its
/// readiness byte. Returns [`Started::Ready`] once it came, [`Started::Failed`] when the
/// child ended (or closed the pipe) without sending it, and the error when it could not
/// be started at all.
pub fn daemonize() -> io::Result<Started> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let mut cmd = Command::new(self_exe());
    if let Some(argv0) = args.first() {
        cmd.arg0(argv0);
    }
    cmd.args(args.iter().skip(1))
        .env(MARKER, MARKER_VALUE)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn()?;
    let ready = match child.stdout.take() {
        Some(mut pipe) => wait_ready(&mut pipe),
        None => false,
    };
    if ready {
        // The child runs on; it is in its own session and will be reaped by init.
        Ok(Started::Ready)
    } else {
        Ok(Started::Failed(child.wait().ok().and_then(|s| s.code())))
    }
}

/// Reads until the readiness byte (true) or end of file / an error (false).
fn wait_ready(pipe: &mut impl Read) -> bool {
    let mut buf = [0u8; 1];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => return false,
            Ok(_) if buf[0] == READY => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

/// The first steps of the child: its own session, umask 077, `/` as its directory.
/// Relative paths must be made absolute before this.
pub fn begin_child() -> nix::Result<()> {
    use nix::sys::stat::{umask, Mode};
    set_process_name();
    nix::unistd::setsid()?;
    umask(Mode::from_bits_truncate(0o077));
    nix::unistd::chdir("/")?;
    Ok(())
}

/// Re-executing `/proc/self/exe` names the process `exe`; give it back the name of
/// argv[0] (`portsentry`), which `pgrep`, `pidof` and `ps -e` show. Best effort.
fn set_process_name() {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let Some(argv0) = std::env::args_os().next() else {
            return;
        };
        let base = Path::new(&argv0)
            .file_name()
            .map(|b| b.as_bytes().to_vec())
            .unwrap_or_default();
        let base: Vec<u8> = base.into_iter().take(15).collect();
        if let Ok(name) = std::ffi::CString::new(base) {
            let _ = nix::sys::prctl::set_name(&name);
        }
    }
}

/// Tells the parent the child is listening, then puts stdin, stdout and stderr on
/// /dev/null (which also closes the pipe and the parent's stderr).
pub fn signal_ready() -> io::Result<()> {
    {
        let mut out = io::stdout().lock();
        // The parent may be gone (killed): the daemon runs on regardless.
        let _ = out.write_all(&[READY]).and_then(|_| out.flush());
    }
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    nix::unistd::dup2_stderr(&null)?;
    Ok(())
}

/// systemd's readiness protocol (`Type=notify`): one datagram `READY=1` to the socket
/// named by `$NOTIFY_SOCKET` (a path, or an abstract name written `@name`). Returns
/// whether one was sent; without the variable nothing happens.
pub fn notify_ready() -> io::Result<bool> {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    notify(&target, b"READY=1\n")?;
    Ok(true)
}

fn notify(target: &std::ffi::OsStr, msg: &[u8]) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::UnixDatagram;
    let sock = UnixDatagram::unbound()?;
    let bytes = target.as_bytes();
    match bytes.strip_prefix(b"@") {
        #[cfg(target_os = "linux")]
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(msg, &addr)?;
        }
        #[cfg(not(target_os = "linux"))]
        Some(_) => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "abstract sockets exist only on Linux",
            ))
        }
        None => {
            sock.send_to(msg, Path::new(target))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_sends_ready_to_a_path_and_an_abstract_name() {
        use std::os::unix::net::UnixDatagram;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        notify(path.as_os_str(), b"READY=1\n").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\n");
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let name = format!("portsentry-test-{}", std::process::id());
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
            let rx = UnixDatagram::bind_addr(&addr).unwrap();
            notify(std::ffi::OsStr::new(&format!("@{name}")), b"READY=1\n").unwrap();
            let n = rx.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"READY=1\n");
        }
    }

    #[test]
    fn readiness_byte_or_end_of_file() {
        assert!(wait_ready(&mut &b"R"[..]));
        assert!(wait_ready(&mut &b"xxR"[..]));
        assert!(!wait_ready(&mut &b""[..]));
        assert!(!wait_ready(&mut &b"xx"[..]));
    }

    #[test]
    fn the_parent_is_the_default_role() {
        // The test runner never carries the marker.
        assert_eq!(role(), Role::Parent);
    }
}
