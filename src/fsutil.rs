//! Writing state files safely.
//!
//! In: a path and the bytes it must hold. Out: the file replaced atomically (temp file in
//! the same directory, fsync, rename, directory fsync). Temp files get an unpredictable
//! name and are created exclusively without following a symbolic link, so nothing
//! planted in a shared directory is ever written through. Must not: leave a partial file
//! behind, or write anything but the one file.

use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Creates a new temp file beside `target` (`.NAME.tmp.PID.RANDOM`), exclusively
/// (`O_EXCL`) and without following a symbolic link (`O_NOFOLLOW`), with `mode`.
pub fn create_temp(target: &Path, mode: u32) -> std::io::Result<(File, PathBuf)> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = dir_of(target);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut last = None;
    for attempt in 0u64..16 {
        // std seeds each RandomState from the OS: a name nobody can guess in advance.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(attempt);
        let tmp = dir.join(format!(
            ".{name}.tmp.{}.{:016x}",
            std::process::id(),
            h.finish()
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
        {
            Ok(f) => return Ok((f, tmp)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("cannot create a temp file")))
}

/// Checks a path we are about to open for writing: a symbolic link there is followed only
/// when the link belongs to root and sits in a root-owned directory nobody else may
/// write to (configuration management, NixOS); a link anyone could have planted (a
/// sticky /tmp, a group-writable directory) is refused.
pub fn check_link(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_symlink() {
        return Ok(());
    }
    let dir = std::fs::metadata(dir_of(path))?;
    if meta.uid() == 0 && dir.uid() == 0 && dir.mode() & 0o022 == 0 {
        return Ok(());
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        "a symbolic link that is not root's in a directory only root may write to; refusing to follow it",
    ))
}

/// Opens `path` with `opts`, after [`check_link`]; a path that is no symbolic link is
/// opened with `O_NOFOLLOW`, so a link planted between the check and the open fails.
pub fn open_checked(path: &Path, opts: &mut std::fs::OpenOptions) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    check_link(path)?;
    let is_link = std::fs::symlink_metadata(path)
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false);
    if !is_link {
        opts.custom_flags(libc::O_NOFOLLOW);
    }
    opts.open(path)
}

/// Reads a whole file that must be a regular file (after following symbolic links): a
/// FIFO or a device would hang the read or never end, so it is refused before opening.
pub fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    std::fs::read(path)
}

fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Writes `data` to `path` atomically: temp file in the same directory, fsync, rename,
/// directory fsync.
pub fn atomic_write(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = dir_of(path);
    let (mut f, tmp) = create_temp(path, mode)?;
    let res = f
        .write_all(data)
        .and_then(|_| f.sync_all())
        .and_then(|_| std::fs::rename(&tmp, path));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue #17 item 3: a symlink planted under the old predictable temp name, or any
    /// other, is never written through.
    #[test]
    fn temp_files_are_exclusive_unpredictable_and_never_follow_links() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let target = dir.path().join("blocked");
        for i in 0..4 {
            std::os::unix::fs::symlink(
                &victim,
                dir.path().join(format!(
                    ".blocked.tmp.{}{}",
                    std::process::id(),
                    ".x".repeat(i)
                )),
            )
            .unwrap();
        }
        atomic_write(&target, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        // a planted link to the victim as the file itself is refused too
        let planted = dir.path().join("history");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let mut opts = std::fs::OpenOptions::new();
        opts.append(true).create(true);
        if nix::unistd::geteuid().is_root() {
            // root-owned link in a 0700 root-owned temp dir: an admin's own link
            assert!(open_checked(&planted, &mut opts).is_ok());
            std::fs::set_permissions(
                dir.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o1777),
            )
            .unwrap();
            assert!(open_checked(&planted, &mut opts).is_err());
        } else {
            assert!(open_checked(&planted, &mut opts).is_err());
        }
        let (_, a) = create_temp(&target, 0o600).unwrap();
        let (_, b) = create_temp(&target, 0o600).unwrap();
        assert_ne!(a, b);
    }
}
