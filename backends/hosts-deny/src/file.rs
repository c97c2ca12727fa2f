//! Locked, crash-safe access to the hosts.deny file.
//!
//! In: the file path. Out: a lock guard (exclusive `flock` on the sidecar `<path>.lock`),
//! the current bytes with mode and owner, and an atomic replacement: a temp file in the
//! same directory with the old mode and owner, fsynced, renamed over the file, the
//! directory fsynced. A symlinked, world-writable or non-regular file is refused; a
//! missing file reads as empty and is created 0644.

use std::ffi::OsString;
use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg, OFlag};

use crate::error::HostsDenyError;

/// Mode of a hosts.deny we create.
const NEW_MODE: u32 = 0o644;

/// Holds the exclusive lock until dropped.
#[derive(Debug)]
pub(crate) struct Lock {
    _flock: Flock<File>,
}

/// The sidecar lock file's path: `<path>.lock`.
pub(crate) fn lock_path(path: &Path) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(".lock");
    PathBuf::from(s)
}

/// Takes the exclusive lock, waiting for other writers.
pub(crate) fn lock(path: &Path) -> Result<Lock, HostsDenyError> {
    let lpath = lock_path(path);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .open(&lpath)
        .map_err(|source| HostsDenyError::Lock {
            path: lpath.clone(),
            source,
        })?;
    let flock =
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| HostsDenyError::Lock {
            path: lpath,
            source: io::Error::from(errno),
        })?;
    Ok(Lock { _flock: flock })
}

/// Mode bits and owner of an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner {
    mode: u32,
    uid: u32,
    gid: u32,
}

/// What the file holds now; `owner` is `None` when it does not exist.
#[derive(Debug)]
pub(crate) struct Current {
    pub(crate) bytes: Vec<u8>,
    pub(crate) owner: Option<Owner>,
}

fn refuse_unsafe(path: &Path, meta: &std::fs::Metadata) -> Result<(), HostsDenyError> {
    let path = path.to_path_buf();
    if meta.file_type().is_symlink() {
        return Err(HostsDenyError::SymlinkRefused { path });
    }
    if !meta.file_type().is_file() {
        return Err(HostsDenyError::NotAFile { path });
    }
    if meta.mode() & 0o002 != 0 {
        return Err(HostsDenyError::WorldWritableRefused { path });
    }
    Ok(())
}

/// Reads the file (call with the lock held).
pub(crate) fn read(path: &Path) -> Result<Current, HostsDenyError> {
    let read_err = |source| HostsDenyError::Read {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) => refuse_unsafe(path, &meta)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Current {
                bytes: Vec::new(),
                owner: None,
            })
        }
        Err(e) => return Err(read_err(e)),
    }
    // O_NOFOLLOW closes the gap between the check above and the open.
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .open(path)
        .map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    refuse_unsafe(path, &meta)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(read_err)?;
    Ok(Current {
        bytes,
        owner: Some(Owner {
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        }),
    })
}

/// The directory holding `path` (`.` for a bare file name).
fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "hosts.deny".to_string());
    dir_of(path).join(format!(".{name}.portsentry-{}.tmp", std::process::id()))
}

/// Replaces the file with `bytes` (call with the lock held), keeping `owner`'s mode
/// and owner, or 0644 for a new file.
pub(crate) fn replace(
    path: &Path,
    bytes: &[u8],
    owner: Option<Owner>,
) -> Result<(), HostsDenyError> {
    let temp = temp_path(path);
    let result = write_temp(path, &temp, bytes, owner).and_then(|()| {
        std::fs::rename(&temp, path).map_err(|source| HostsDenyError::Rename {
            temp: temp.clone(),
            path: path.to_path_buf(),
            source,
        })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
        return result;
    }
    let dir = dir_of(path);
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| HostsDenyError::Sync { path: dir, source })
}

fn write_temp(
    path: &Path,
    temp: &Path,
    bytes: &[u8],
    owner: Option<Owner>,
) -> Result<(), HostsDenyError> {
    let werr = |source| HostsDenyError::WriteTemp {
        path: temp.to_path_buf(),
        source,
    };
    match std::fs::remove_file(temp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(werr(e)),
    }
    let mode = owner.map_or(NEW_MODE, |o| o.mode);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(temp)
        .map_err(werr)?;
    file.write_all(bytes).map_err(werr)?;
    let keep = |source| HostsDenyError::KeepOwner {
        path: path.to_path_buf(),
        temp: temp.to_path_buf(),
        source,
    };
    if let Some(o) = owner {
        let meta = file.metadata().map_err(werr)?;
        if (meta.uid(), meta.gid()) != (o.uid, o.gid) {
            std::os::unix::fs::fchown(&file, Some(o.uid), Some(o.gid)).map_err(keep)?;
        }
    }
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(keep)?;
    file.sync_all().map_err(|source| HostsDenyError::Sync {
        path: temp.to_path_buf(),
        source,
    })
}
