//! Locked, crash-safe access to the hosts.deny file.
//!
//! In: the file path. Out: a lock guard (exclusive `flock` on the sidecar `<path>.lock`),
//! the current bytes with mode and owner, an in-place append of one line, and a
//! replacement for edits that remove lines. The file is used where it is: an append is
//! one `O_APPEND` write of the whole line and an fsync, so a bind-mounted file, hard
//! links, `chattr +a`, owner, ACLs and labels all survive (issue #14 item 1). A
//! replacement goes through an exclusive temp file with an unpredictable name in the same
//! directory (the old mode and owner, fsync, rename, directory fsync); where rename
//! cannot work (EBUSY on a bind mount, EXDEV, EROFS, EPERM) the file is rewritten in
//! place instead. A symbolic link is followed only when it and its directory belong to
//! root and nobody else may write there; a world-writable or non-regular file is refused;
//! a missing file reads as empty and is created 0644.

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
    if !meta.file_type().is_file() {
        return Err(HostsDenyError::NotAFile { path });
    }
    if meta.mode() & 0o002 != 0 {
        return Err(HostsDenyError::WorldWritableRefused { path });
    }
    Ok(())
}

/// Where the file's bytes live: `path` itself, or the target of a symbolic link that
/// root owns in a directory only root may write to (configuration management, NixOS).
/// A link anyone else could have planted is refused.
fn resolve(path: &Path) -> Result<Option<PathBuf>, HostsDenyError> {
    let read_err = |source| HostsDenyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    if !meta.file_type().is_symlink() {
        return Ok(Some(path.to_path_buf()));
    }
    let dir = std::fs::metadata(dir_of(path)).map_err(read_err)?;
    if meta.uid() != 0 || dir.uid() != 0 || dir.mode() & 0o022 != 0 {
        return Err(HostsDenyError::SymlinkRefused {
            path: path.to_path_buf(),
        });
    }
    match std::fs::canonicalize(path) {
        Ok(real) => Ok(Some(real)),
        // a dangling link to be created: refused, we never create through a link
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(HostsDenyError::SymlinkRefused {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(read_err(e)),
    }
}

/// Opens the resolved file `real` without following a link there (one planted after
/// [`resolve`] fails) and checks what was opened.
fn open_real(real: &Path, opts: &mut OpenOptions) -> io::Result<File> {
    opts.custom_flags(OFlag::O_NOFOLLOW.bits()).open(real)
}

/// Reads the file (call with the lock held).
pub(crate) fn read(path: &Path) -> Result<Current, HostsDenyError> {
    let read_err = |source| HostsDenyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let Some(real) = resolve(path)? else {
        return Ok(Current {
            bytes: Vec::new(),
            owner: None,
        });
    };
    let mut file = match open_real(&real, OpenOptions::new().read(true)) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(HostsDenyError::SymlinkRefused {
                path: path.to_path_buf(),
            })
        }
        Err(e) => return Err(read_err(e)),
    };
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

fn sync_dir(path: &Path) -> Result<(), HostsDenyError> {
    let dir = dir_of(path);
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| HostsDenyError::Sync { path: dir, source })
}

/// Appends `line` and a newline in place (call with the lock held, after [`read`] gave
/// `current`): one `O_APPEND` write of the whole line (after a newline if the file does
/// not end with one), then fsync. A missing file is created 0644.
pub(crate) fn append(path: &Path, current: &Current, line: &str) -> Result<(), HostsDenyError> {
    let err = |source| HostsDenyError::Append {
        path: path.to_path_buf(),
        source,
    };
    let real = resolve(path)?.unwrap_or_else(|| path.to_path_buf());
    let mut data = Vec::with_capacity(line.len() + 2);
    if !current.bytes.is_empty() && !current.bytes.ends_with(b"\n") {
        data.push(b'\n');
    }
    data.extend_from_slice(line.as_bytes());
    data.push(b'\n');
    let mut opts = OpenOptions::new();
    opts.append(true);
    if current.owner.is_none() {
        opts.create(true).mode(NEW_MODE);
    }
    let mut file = open_real(&real, &mut opts).map_err(err)?;
    let meta = file.metadata().map_err(err)?;
    refuse_unsafe(path, &meta)?;
    file.write_all(&data).map_err(err)?;
    file.sync_all().map_err(|source| HostsDenyError::Sync {
        path: path.to_path_buf(),
        source,
    })?;
    if current.owner.is_none() {
        // a new file only: its directory entry must reach the disk too
        if meta.mode() & 0o7777 != NEW_MODE {
            file.set_permissions(Permissions::from_mode(NEW_MODE))
                .map_err(err)?;
        }
        sync_dir(&real)?;
    }
    Ok(())
}

/// A temp file beside `real`: an unpredictable name, created exclusively, never through
/// a link.
fn create_temp(real: &Path) -> Result<(File, PathBuf), HostsDenyError> {
    use std::hash::{BuildHasher, Hasher};
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "hosts.deny".to_string());
    let mut last = None;
    for attempt in 0u64..16 {
        // std seeds each RandomState from the OS: nobody can guess the name in advance
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(attempt);
        let temp = dir_of(real).join(format!(
            ".{name}.portsentry-{}.{:016x}.tmp",
            std::process::id(),
            h.finish()
        ));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(OFlag::O_NOFOLLOW.bits())
            .open(&temp)
        {
            Ok(f) => return Ok((f, temp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some((e, temp)),
            Err(source) => return Err(HostsDenyError::WriteTemp { path: temp, source }),
        }
    }
    let (source, path) = last.unwrap_or_else(|| (io::Error::other("no name"), real.into()));
    Err(HostsDenyError::WriteTemp { path, source })
}

/// Whether a failed rename means "this file cannot be replaced, only rewritten":
/// a bind-mounted file (EBUSY), another file system (EXDEV), or a directory or file we
/// may not replace (EROFS, EPERM: `chattr +i` on the directory, a sealed mount).
fn rename_impossible(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(nix::libc::EBUSY | nix::libc::EXDEV | nix::libc::EROFS | nix::libc::EPERM)
    )
}

/// Replaces the file with `bytes` (call with the lock held), keeping `owner`'s mode
/// and owner, or 0644 for a new file. Used for edits that remove lines; adding a line
/// is [`append`].
pub(crate) fn replace(
    path: &Path,
    bytes: &[u8],
    owner: Option<Owner>,
) -> Result<(), HostsDenyError> {
    let real = resolve(path)?.unwrap_or_else(|| path.to_path_buf());
    let (file, temp) = create_temp(&real)?;
    let result = write_temp(path, file, &temp, bytes, owner).and_then(|()| {
        std::fs::rename(&temp, &real).map_err(|source| HostsDenyError::Rename {
            temp: temp.clone(),
            path: path.to_path_buf(),
            source,
        })
    });
    match result {
        Ok(()) => sync_dir(&real),
        Err(HostsDenyError::Rename { source, .. }) if rename_impossible(&source) => {
            let _ = std::fs::remove_file(&temp);
            rewrite_in_place(path, &real, bytes)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

/// The fallback of [`replace`]: the same file, truncated and written, then fsync.
fn rewrite_in_place(path: &Path, real: &Path, bytes: &[u8]) -> Result<(), HostsDenyError> {
    let err = |source| HostsDenyError::WriteInPlace {
        path: path.to_path_buf(),
        source,
    };
    let mut file = open_real(real, OpenOptions::new().write(true)).map_err(err)?;
    refuse_unsafe(path, &file.metadata().map_err(err)?)?;
    file.set_len(0).map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(|source| HostsDenyError::Sync {
        path: path.to_path_buf(),
        source,
    })
}

fn write_temp(
    path: &Path,
    mut file: File,
    temp: &Path,
    bytes: &[u8],
    owner: Option<Owner>,
) -> Result<(), HostsDenyError> {
    let werr = |source| HostsDenyError::WriteTemp {
        path: temp.to_path_buf(),
        source,
    };
    let mode = owner.map_or(NEW_MODE, |o| o.mode);
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
