//! Which daemons run: a locked pid file beside the block store.
//!
//! In: the store path and (1.2 mode) the mode word. Out: a [`PidFile`] held for the
//! daemon's life (an exclusive `flock` on `<store>.daemon[.<mode>]` holding its pid), and
//! for `portsentry status` the pids of the daemons that hold theirs. The lock, not the
//! file's existence, says a daemon runs: a `kill -9` leaves a stale file that reads as
//! "not running". Must not: follow a symlink planted at the path.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// The pid file of a running daemon; the lock is released when it is dropped.
pub struct PidFile {
    _lock: Flock<File>,
}

/// Why the pid file could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum PidError {
    #[error("{}: cannot open the pid file: {source}", .path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: another portsentry daemon (pid {pid}) uses this block store", .path.display())]
    Running { path: PathBuf, pid: String },
    #[error("{}: cannot write the pid file: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn path_for(store: &Path, mode: Option<&str>) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(".daemon");
    if let Some(m) = mode {
        name.push(".");
        name.push(m);
    }
    store.with_file_name(name)
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

impl PidFile {
    /// Takes the pid file of the daemon using `store` (`mode`: the 1.2 mode word).
    pub fn take(store: &Path, mode: Option<&str>) -> Result<PidFile, PidError> {
        let path = path_for(store, mode);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let f = open(&path).map_err(|source| PidError::Open {
            path: path.clone(),
            source,
        })?;
        let mut lock = match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((mut f, _)) => {
                let mut pid = String::new();
                let _ = f.read_to_string(&mut pid);
                return Err(PidError::Running {
                    path,
                    pid: pid.trim().to_string(),
                });
            }
        };
        let write = |f: &mut File| -> std::io::Result<()> {
            f.set_len(0)?;
            f.rewind()?;
            writeln!(f, "{}", std::process::id())?;
            f.sync_data()
        };
        write(&mut lock).map_err(|source| PidError::Write { path, source })?;
        Ok(PidFile { _lock: lock })
    }
}

/// The daemons that run with `store`: (what, pid), `what` being `2.x` or the mode word.
pub fn running(store: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let base = path_for(store, None);
    let Some(dir) = base.parent().map(|d| {
        if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        }
    }) else {
        return out;
    };
    let prefix = base
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n == &prefix || n.starts_with(&format!("{prefix}.")))
        .collect();
    names.sort();
    for n in names {
        let Ok(mut f) = open(&dir.join(&n)) else {
            continue;
        };
        let mut pid = String::new();
        let _ = f.read_to_string(&mut pid);
        // Held by a daemon if we cannot take it.
        if Flock::lock(f, FlockArg::LockSharedNonblock).is_err() {
            let what = n
                .strip_prefix(&prefix)
                .and_then(|r| r.strip_prefix('.'))
                .unwrap_or("2.x")
                .to_string();
            out.push((what, pid.trim().to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_while_running_and_released_after() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("blocks");
        assert!(running(&store).is_empty());
        let p = PidFile::take(&store, None).unwrap();
        let q = PidFile::take(&store, Some("atcp")).unwrap();
        let r = running(&store);
        let me = std::process::id().to_string();
        assert_eq!(
            r,
            [("2.x".to_string(), me.clone()), ("atcp".to_string(), me)]
        );
        assert!(matches!(
            PidFile::take(&store, None),
            Err(PidError::Running { .. })
        ));
        drop((p, q));
        assert!(running(&store).is_empty());
    }
}
