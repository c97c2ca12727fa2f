//! The only unsafe code of the daemon crate: Linux capabilities (the bounding set, the
//! ambient set, and capset(2)), which neither std nor nix wraps, and glibc's
//! malloc_trim(3).
//!
//! In: the capability numbers to keep. Out: the calling thread keeps exactly those in
//! its effective, permitted and bounding sets; inheritable and ambient are emptied.
//! Must not: be called once other threads run (capabilities are per thread; threads
//! made later inherit the caller's), or decide what to keep (`privileges` does).

#![allow(unsafe_code)]

use std::io;

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets in two 32-bit words.
const CAP_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The highest capability number this kernel knows.
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
        .min(63)
}

fn prctl(option: libc::c_int, arg2: libc::c_ulong, arg3: libc::c_ulong) -> io::Result<()> {
    // SAFETY: prctl with plain integer arguments; the options used here (bounding and
    // ambient set changes) read no memory of ours.
    let r = unsafe { libc::prctl(option, arg2, arg3, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Keeps only the capabilities whose bits are set in `keep` (bit N = capability N), in
/// this thread and everything it starts afterwards.
pub fn keep_only(keep: u64) -> io::Result<()> {
    // The bounding set first: dropping from it needs CAP_SETPCAP, which goes last.
    for cap in 0..=last_cap() {
        if keep & (1 << cap) == 0 {
            match prctl(libc::PR_CAPBSET_DROP, cap.into(), 0) {
                Ok(()) => {}
                // a capability this kernel does not have
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                Err(e) => return Err(e),
            }
        }
    }
    match prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        0,
    ) {
        // kernels before 4.3 have no ambient set
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
        Err(e) => return Err(e),
    }
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let word = |shift: u32| (keep >> shift) as u32;
    let data = [
        CapData {
            effective: word(0),
            permitted: word(0),
            inheritable: 0,
        },
        CapData {
            effective: word(32),
            permitted: word(32),
            inheritable: 0,
        },
    ];
    // SAFETY: capset(2) reads the header and two data structs, all of which we own and
    // which are laid out as <linux/capability.h> declares them (repr(C), version 3).
    let r = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(target_env = "gnu")]
/// Gives memory freed by a large one-off job (a 100 000-decision start) back to the
/// kernel instead of keeping it in the allocator's free lists.
pub fn trim_heap() {
    // SAFETY: malloc_trim(3) takes a plain integer and only walks glibc's own heap
    // structures under its own locks; no memory of ours is touched.
    unsafe {
        libc::malloc_trim(0);
    }
}
