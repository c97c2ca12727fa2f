//! The only unsafe code of the runner: descriptors marked close-on-exec in the child, and
//! killing the child's process group.

#![allow(unsafe_code)]

use std::process::Command;

/// Marks every descriptor above stderr close-on-exec in the child, after fork and before
/// exec. The runtime's own error pipe is already close-on-exec, so it keeps working.
pub(crate) fn close_other_fds_on_exec(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec; it only calls
    // close_range(2), getrlimit(2) and fcntl(2), which are async-signal-safe, allocates
    // nothing and touches no lock.
    unsafe {
        cmd.pre_exec(|| {
            mark_cloexec_from(3);
            Ok(())
        });
    }
}

fn mark_cloexec_from(first: i32) {
    #[cfg(target_os = "linux")]
    {
        const CLOSE_RANGE_CLOEXEC: libc::c_uint = 4;
        // SAFETY: a raw syscall with plain integer arguments; it changes only descriptor
        // flags of this (child) process.
        let r = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                first as libc::c_uint,
                libc::c_uint::MAX,
                CLOSE_RANGE_CLOEXEC,
            )
        };
        if r == 0 {
            return;
        }
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur.min(65_536) as i32
    } else {
        1024
    };
    for fd in first..max {
        // SAFETY: fcntl on a descriptor number that may or may not be open; on a closed
        // one it fails with EBADF and changes nothing.
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}

/// Sends SIGKILL to the process group `pid` leads (the child was made a group leader).
pub(crate) fn kill_group(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals that process group; no memory is
    // involved.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

/// Test helper: clears FD_CLOEXEC, as a library that opens descriptors without it would.
#[cfg(test)]
pub(crate) fn clear_cloexec(fd: i32) {
    // SAFETY: fcntl on a descriptor the calling test owns; only its flags change.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, 0);
    }
}
