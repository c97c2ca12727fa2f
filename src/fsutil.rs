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
        let (_, a) = create_temp(&target, 0o600).unwrap();
        let (_, b) = create_temp(&target, 0o600).unwrap();
        assert_ne!(a, b);
    }
}
