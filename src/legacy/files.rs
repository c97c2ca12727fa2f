//! The files of legacy mode (`docs/compat.md` §10.6): the per-mode blocked file that doubles as
//! the instance lock, the ignore file followed on change, and the history file.
//!
//! In: paths from the config. Out: membership answers (exact IP) and appended lines.
//! The blocked file and the ignore file are re-read whenever their inode, size or times
//! change, so an admin who deletes a line from `portsentry.blocked.atcp` unblocks that
//! host and an edited ignore file takes effect at the next event. Directories are never
//! created: a path in a missing directory is an error, as in 1.2. Must not: log (the
//! caller turns the returned problems into `adminalert:` lines).

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::config::ignore::{self, IgnoreError};
use crate::config::IgnoreList;
use crate::model::LegacyMode;
use crate::respond::files::AppendFile;

/// At most this many problems of one ignore file are reported per reading.
const MAX_PROBLEMS: usize = 10;

/// What identifies one version of a file: if any of it changes, the file is re-read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

/// The real blocked file of a mode: BLOCKED_FILE + `.` + the mode word
/// (`portsentry.blocked.atcp`).
pub fn blocked_path(base: &Path, mode: LegacyMode) -> PathBuf {
    let mut s: OsString = base.as_os_str().to_owned();
    s.push(".");
    s.push(mode.word());
    PathBuf::from(s)
}

/// Why the blocked file could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum BlockedError {
    /// Another process holds the lock: a second instance of the same mode.
    #[error("another instance holds the lock")]
    Busy,
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The per-mode blocked file: one history-format line per blocked host; holding its lock
/// is what makes this process the only instance of its mode.
#[derive(Debug)]
pub struct Blocked {
    path: PathBuf,
    lock: Flock<File>,
    locked_ino: u64,
    stamp: Option<Stamp>,
    ips: HashSet<IpAddr>,
}

fn open_rw(path: &Path) -> io::Result<File> {
    crate::fsutil::open_checked(
        path,
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600),
    )
}

impl Blocked {
    /// Opens the file (creating it, mode 0600, in an existing directory), takes its lock
    /// without waiting, and only then empties it: a second instance never wipes the
    /// first one's file.
    pub fn open(path: &Path) -> Result<Blocked, BlockedError> {
        let io_err = |source| BlockedError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = open_rw(path).map_err(io_err)?;
        let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((_, Errno::EWOULDBLOCK)) => return Err(BlockedError::Busy),
            Err((_, e)) => return Err(io_err(io::Error::from(e))),
        };
        lock.set_len(0).map_err(io_err)?;
        let locked_ino = lock.metadata().map_err(io_err)?.ino();
        Ok(Blocked {
            path: path.to_path_buf(),
            lock,
            locked_ino,
            stamp: stamp(path),
            ips: HashSet::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `ip` has a line (exact address match), re-reading the file if it changed.
    pub fn contains(&mut self, ip: IpAddr) -> bool {
        self.refresh();
        self.ips.contains(&ip)
    }

    /// Appends `line` (a newline is added) as the record of `ip`. The file is opened per
    /// write, so a file an editor replaced or an admin deleted is followed.
    pub fn append(&mut self, ip: IpAddr, line: &str) -> io::Result<()> {
        self.refresh();
        let mut f = crate::fsutil::open_checked(
            &self.path,
            OpenOptions::new().append(true).create(true).mode(0o600),
        )?;
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        f.write_all(&buf)?;
        self.ips.insert(ip);
        self.stamp = stamp(&self.path);
        self.relock();
        Ok(())
    }

    /// Removes the lines of `ip` (its typed block expired): rewritten atomically.
    pub fn remove(&mut self, ip: IpAddr) -> io::Result<()> {
        self.refresh();
        if !self.ips.contains(&ip) {
            return Ok(());
        }
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        let kept: String = text
            .lines()
            .filter(|l| !parse_blocked(l).contains(&ip))
            .flat_map(|l| [l, "\n"])
            .collect();
        crate::fsutil::atomic_write(&self.path, kept.as_bytes(), 0o600)?;
        self.ips.remove(&ip);
        self.stamp = stamp(&self.path);
        self.relock();
        Ok(())
    }

    /// Re-reads the file if it changed since it was last read or written (an admin
    /// deleted a line to unblock a host); returns the addresses then.
    pub fn poll(&mut self) -> Option<HashSet<IpAddr>> {
        if stamp(&self.path) == self.stamp {
            return None;
        }
        self.refresh();
        Some(self.ips.clone())
    }

    fn refresh(&mut self) {
        let now = stamp(&self.path);
        if now == self.stamp {
            return;
        }
        self.stamp = now;
        self.ips = match crate::fsutil::read_regular(&self.path) {
            Ok(data) => parse_blocked(&String::from_utf8_lossy(&data)),
            Err(_) => HashSet::new(),
        };
        self.relock();
    }

    /// After an editor replaced the file, lock the new one too, so a second instance
    /// still finds it taken.
    fn relock(&mut self) {
        let Some(s) = self.stamp else { return };
        if s.ino == self.locked_ino {
            return;
        }
        if let Ok(f) = open_rw(&self.path) {
            if let Ok(l) = Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                self.lock = l;
                self.locked_ino = s.ino;
            }
        }
    }
}

/// The addresses of a blocked file: the IP after `Host: name/` on each line (1.2's
/// format), or a line that is just an address.
pub fn parse_blocked(text: &str) -> HashSet<IpAddr> {
    text.lines().filter_map(line_ip).collect()
}

fn line_ip(line: &str) -> Option<IpAddr> {
    let line = line.trim();
    let field = match line.find("Host: ") {
        Some(i) => line.get(i + "Host: ".len()..)?.split_whitespace().next()?,
        None => line.split_whitespace().next()?,
    };
    let ip = field.rsplit('/').next()?;
    ip.parse().ok()
}

/// The outcome of the ignore check for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Listed,
    NotListed,
    /// The file cannot be read: 1.2 blocks anyway and says so.
    NoFile,
}

/// The ignore file, re-read when it changes.
#[derive(Debug)]
pub struct IgnoreWatch {
    path: PathBuf,
    stamp: Option<Stamp>,
    /// `None` while the file cannot be read.
    list: Option<IgnoreList>,
    read_once: bool,
    /// Read again since [`IgnoreWatch::changed`] was last asked.
    changed: bool,
}

impl IgnoreWatch {
    pub fn new(path: &Path) -> IgnoreWatch {
        IgnoreWatch {
            path: path.to_path_buf(),
            stamp: None,
            list: None,
            read_once: false,
            changed: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Follows a new IGNORE_FILE after a reload; the next refresh reads it.
    pub fn set_path(&mut self, path: &Path) {
        self.path = path.to_path_buf();
        self.read_once = false;
    }

    /// Re-reads the file if it changed (or was never read, or `force`). Returns the
    /// problems found in it, for the log.
    pub fn refresh(&mut self, force: bool) -> Vec<String> {
        let now = stamp(&self.path);
        if self.read_once && !force && now == self.stamp {
            return Vec::new();
        }
        self.read_once = true;
        self.changed = true;
        self.stamp = now;
        match crate::fsutil::read_regular(&self.path) {
            Ok(data) => {
                let (list, problems) = parse_ignore(&self.path, &data);
                self.list = Some(list);
                problems
            }
            Err(_) => {
                self.list = None;
                Vec::new()
            }
        }
    }

    /// Whether the file was read again since the last call.
    pub fn changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// The list, or `None` while the file cannot be read.
    pub fn list(&self) -> Option<&IgnoreList> {
        self.list.as_ref()
    }

    /// The list as the engine takes it.
    pub fn engine_view(&self) -> crate::engine::Ignore {
        match &self.list {
            Some(l) => crate::engine::Ignore::List(l.clone()),
            None => crate::engine::Ignore::Missing,
        }
    }

    /// Whether `ip` is listed (after [`IgnoreWatch::refresh`]).
    pub fn check(&self, ip: IpAddr) -> Verdict {
        match &self.list {
            None => Verdict::NoFile,
            Some(l) if l.contains(ip) => Verdict::Listed,
            Some(_) => Verdict::NotListed,
        }
    }
}

/// Parses an ignore file the way 1.2 used it: a line that is not an address or CIDR is
/// skipped (and reported) instead of making the whole file unusable. Returns the list
/// and the problems (`path:line: ...`), at most [`MAX_PROBLEMS`] plus a count.
pub fn parse_ignore(path: &Path, data: &[u8]) -> (IgnoreList, Vec<String>) {
    let mut nets = Vec::new();
    let mut problems = Vec::new();
    let mut more = 0usize;
    let shown = path.display().to_string();
    let mut report = |msg: String| {
        if problems.len() < MAX_PROBLEMS {
            problems.push(msg);
        } else {
            more += 1;
        }
    };
    for (idx, raw) in data.split(|&b| b == b'\n').enumerate() {
        let line = idx + 1;
        match ignore::parse(path, raw) {
            Ok((l, warnings)) => {
                nets.extend_from_slice(l.nets());
                for w in warnings {
                    let rest = w
                        .strip_prefix(&format!("{shown}:1: "))
                        .unwrap_or(&w)
                        .to_string();
                    report(format!("{shown}:{line}: {rest}"));
                }
            }
            Err(IgnoreError::Line { problem, .. }) => {
                report(format!("{shown}:{line}: {problem}; line skipped"));
            }
            Err(e) => report(e.to_string()),
        }
    }
    if more > 0 {
        problems.push(format!("{shown}: {more} more problems not shown"));
    }
    (IgnoreList::new(nets), problems)
}

/// Opens HISTORY_FILE for appending, creating it empty (mode 0600) if it does not exist,
/// so that fail2ban's jail finds it; its directory must exist. Never truncates.
pub fn open_history(path: &Path) -> io::Result<AppendFile> {
    crate::fsutil::open_checked(
        path,
        OpenOptions::new().append(true).create(true).mode(0o600),
    )?;
    AppendFile::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocked_membership_is_by_exact_address() {
        let s = parse_blocked(
            "1795491183 - 11/24/2026 03:33:03 Host: 211.1.2.3/211.1.2.3 Port: 1 TCP Blocked\n\
             1795491184 - 11/24/2026 03:33:04 Host: host.example/198.19.50.1 Port: 7 UDP Blocked\n\
             198.18.0.9\n\
             garbage\n",
        );
        assert!(s.contains(&ip("211.1.2.3")));
        assert!(
            !s.contains(&ip("11.1.2.3")),
            "1.2's suffix match is not copied"
        );
        assert!(s.contains(&ip("198.19.50.1")));
        assert!(s.contains(&ip("198.18.0.9")));
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn blocked_file_locks_truncates_and_follows_edits() {
        let dir = tempfile::tempdir().unwrap();
        let p = blocked_path(&dir.path().join("portsentry.blocked"), LegacyMode::Atcp);
        assert!(p.ends_with("portsentry.blocked.atcp"));
        std::fs::write(&p, "old 198.18.0.7\n").unwrap();
        let mut b = Blocked::open(&p).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "",
            "truncated at start"
        );
        assert!(matches!(Blocked::open(&p), Err(BlockedError::Busy)));
        assert_eq!(
            std::fs::metadata(&p).unwrap().len(),
            0,
            "a second instance never wipes the file"
        );
        b.append(
            ip("198.18.0.1"),
            "1 - x Host: 198.18.0.1/198.18.0.1 Port: 1 TCP Blocked",
        )
        .unwrap();
        b.append(
            ip("198.18.0.3"),
            "1 - x Host: 198.18.0.3/198.18.0.3 Port: 1 TCP Blocked",
        )
        .unwrap();
        assert!(b.contains(ip("198.18.0.1")));
        // an admin deletes the first line with an editor (new inode)
        let text = std::fs::read_to_string(&p).unwrap();
        let kept: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
        let tmp = dir.path().join("edit");
        std::fs::write(&tmp, kept).unwrap();
        std::fs::rename(&tmp, &p).unwrap();
        assert!(!b.contains(ip("198.18.0.1")));
        assert!(b.contains(ip("198.18.0.3")));
        assert!(
            matches!(Blocked::open(&p), Err(BlockedError::Busy)),
            "the replaced file is locked too"
        );
    }

    #[test]
    fn blocked_file_in_a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope/portsentry.blocked.tcp");
        match Blocked::open(&p) {
            Err(BlockedError::Io { source, .. }) => {
                assert_eq!(source.kind(), io::ErrorKind::NotFound)
            }
            other => panic!("{other:?}"),
        }
        assert!(!dir.path().join("nope").exists());
        assert!(open_history(&dir.path().join("nope/history")).is_err());
    }

    #[test]
    fn ignore_file_is_lenient_and_followed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ign");
        let mut w = IgnoreWatch::new(&p);
        assert!(w.refresh(false).is_empty());
        assert_eq!(w.check(ip("198.18.0.1")), Verdict::NoFile);
        std::fs::write(
            &p,
            b"198.18.0.1\r\n\xff\xfe junk\nwww.example.com\n0.0.0.0\n",
        )
        .unwrap();
        let problems = w.refresh(false);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].ends_with(":2: line is not valid UTF-8 text; line skipped"));
        assert!(problems[1].contains(":3: "));
        assert_eq!(w.check(ip("198.18.0.1")), Verdict::Listed);
        assert_eq!(w.check(ip("198.18.0.2")), Verdict::NotListed);
        // an empty file lists nothing
        std::fs::write(&p, b"").unwrap();
        assert!(w.refresh(false).is_empty());
        assert_eq!(w.check(ip("198.18.0.1")), Verdict::NotListed);
        // /0 is everything
        std::fs::write(&p, b"0.0.0.0/0 # all\n").unwrap();
        w.refresh(false);
        assert_eq!(w.check(ip("203.0.113.9")), Verdict::Listed);
        std::fs::remove_file(&p).unwrap();
        w.refresh(false);
        assert_eq!(w.check(ip("203.0.113.9")), Verdict::NoFile);
    }

    #[test]
    fn a_binary_ignore_file_reports_a_bounded_number_of_problems() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let (l, problems) = parse_ignore(Path::new("ign"), &data);
        assert!(l.is_empty());
        assert!(problems.len() <= MAX_PROBLEMS + 1);
    }

    #[test]
    fn history_is_created_0600_and_appended() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("history");
        std::fs::write(&p, "kept\n").unwrap();
        let mut h = open_history(&p).unwrap();
        h.write_line("new").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "kept\nnew\n");
        let q = dir.path().join("fresh");
        drop(open_history(&q).unwrap());
        assert_eq!(std::fs::read(&q).unwrap().len(), 0);
        assert_eq!(
            std::fs::metadata(&q).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
