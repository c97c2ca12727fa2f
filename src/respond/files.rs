//! HISTORY_FILE and BLOCKED_FILE in Portsentry 2.x's formats.
//!
//! In: scan lines and blocked addresses. Out: appended history lines
//! (`<local timestamp> <scan line>`) and 2.x binary block records (`sa_family_t` in host
//! byte order, then the raw address). The history file is kept open and reopened as soon
//! as logrotate renames it (see [`AppendFile`]); parent directories are created. Nothing
//! here decides what to write.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

fn open_append(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    crate::fsutil::open_checked(
        path,
        OpenOptions::new().create(true).append(true).mode(0o600),
    )
}

#[cfg(test)]
/// The 2.x history timestamp: `YYYY-MM-DDTHH:MM:SS.mmm±HHMM`, local time.
pub fn timestamp(t: SystemTime) -> String {
    let mut out = String::new();
    Stamper::default().write(t, &mut out);
    out
}

/// Formats history timestamps, converting to local time once per second only (the
/// conversion and strftime cost more than the rest of an event).
#[derive(Debug, Default)]
pub struct Stamper {
    second: Option<u64>,
    /// `YYYY-MM-DDTHH:MM:SS` of `second`.
    head: String,
    /// `±HHMM` of `second`.
    zone: String,
}

impl Stamper {
    /// Appends the timestamp of `t` to `out`.
    pub fn write(&mut self, t: SystemTime, out: &mut String) {
        use std::fmt::Write as _;
        let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let sec = d.as_secs();
        if self.second != Some(sec) {
            let dt: chrono::DateTime<chrono::Local> = t.into();
            self.head = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
            self.zone = dt.format("%z").to_string();
            self.second = Some(sec);
        }
        out.push_str(&self.head);
        let _ = write!(out, ".{:03}", d.subsec_millis());
        out.push_str(&self.zone);
    }
}

/// An append-only log file that follows renames (logrotate, newsyslog). On Linux a
/// watcher thread (inotify on the directory) flags any rename, removal or creation of the
/// file's name, so the next line goes to the new file at once: only a line written in the
/// microseconds between the rename and the flag can land in the renamed file, which a
/// `delaycompress` rotation keeps. Elsewhere, and as a fallback, the name is checked at
/// most once a second. The watcher ends with the first event after the file is dropped.
pub struct AppendFile {
    path: PathBuf,
    file: Option<File>,
    ino: u64,
    checked: Instant,
    moved: Option<Arc<AtomicBool>>,
}

impl AppendFile {
    pub fn open(path: &Path) -> io::Result<AppendFile> {
        let file = open_append(path)?;
        let ino = file.metadata()?.ino();
        Ok(AppendFile {
            path: path.to_path_buf(),
            file: Some(file),
            ino,
            checked: Instant::now(),
            moved: watch_name(path),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line (a newline is added).
    pub fn write_line(&mut self, line: &str) -> io::Result<()> {
        let moved = self
            .moved
            .as_ref()
            .is_some_and(|m| m.swap(false, Ordering::AcqRel));
        if moved || self.checked.elapsed() >= Duration::from_secs(1) {
            self.checked = Instant::now();
            let same = std::fs::metadata(&self.path)
                .map(|m| m.ino() == self.ino)
                .unwrap_or(false);
            if !same {
                self.file = None;
            }
        }
        if self.file.is_none() {
            let f = open_append(&self.path)?;
            self.ino = f.metadata()?.ino();
            self.file = Some(f);
        }
        match self.file.as_mut() {
            Some(f) => {
                let parts = [
                    std::io::IoSlice::new(line.as_bytes()),
                    std::io::IoSlice::new(b"\n"),
                ];
                let n = f.write_vectored(&parts)?;
                if n < line.len() + 1 {
                    // a short write: finish it the slow way
                    let mut rest = Vec::with_capacity(line.len() + 1 - n);
                    rest.extend_from_slice(line.as_bytes());
                    rest.push(b'\n');
                    f.write_all(&rest[n..])?;
                }
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// The flag a watcher thread sets when `path`'s name is renamed, removed or created in
/// its directory (Linux inotify); `None` where that cannot be had.
#[cfg(target_os = "linux")]
fn watch_name(path: &Path) -> Option<Arc<AtomicBool>> {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name()?.to_os_string();
    let ino = Inotify::init(InitFlags::IN_CLOEXEC).ok()?;
    ino.add_watch(
        dir,
        AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_CREATE,
    )
    .ok()?;
    let flag = Arc::new(AtomicBool::new(false));
    let weak = Arc::downgrade(&flag);
    std::thread::Builder::new()
        .name("history-watch".into())
        .spawn(move || loop {
            let Ok(events) = ino.read_events() else {
                return;
            };
            let Some(flag) = weak.upgrade() else {
                return;
            };
            if events.iter().any(|e| e.name.as_ref() == Some(&name)) {
                flag.store(true, Ordering::Release);
            }
        })
        .ok()?;
    Some(flag)
}

#[cfg(not(target_os = "linux"))]
fn watch_name(_: &Path) -> Option<Arc<AtomicBool>> {
    None
}

#[cfg(target_os = "linux")]
const AF_INET: u16 = 2;
#[cfg(target_os = "linux")]
const AF_INET6: u16 = 10;
#[cfg(not(target_os = "linux"))]
const AF_INET: u16 = 2;
#[cfg(target_os = "freebsd")]
const AF_INET6: u16 = 28;
#[cfg(target_os = "openbsd")]
const AF_INET6: u16 = 24;
#[cfg(not(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd")))]
const AF_INET6: u16 = 24;

/// One 2.x block record.
pub fn record(ip: IpAddr) -> Vec<u8> {
    let mut v = Vec::with_capacity(18);
    let fam = match ip {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    };
    if cfg!(target_os = "linux") {
        v.extend_from_slice(&fam.to_ne_bytes());
    } else {
        v.push(fam as u8);
    }
    match ip {
        IpAddr::V4(a) => v.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => v.extend_from_slice(&a.octets()),
    }
    v
}

/// Parses records; returns the addresses and the length of the good prefix.
pub fn parse_records(data: &[u8]) -> (Vec<IpAddr>, usize) {
    let famlen = if cfg!(target_os = "linux") { 2 } else { 1 };
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(head) = data.get(i..i + famlen) {
        let fam = if famlen == 2 {
            u16::from_ne_bytes([head[0], head[1]])
        } else {
            u16::from(head[0])
        };
        let body = i + famlen;
        let ip = if fam == AF_INET {
            data.get(body..body + 4)
                .map(|b| (IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])), 4))
        } else if fam == AF_INET6 {
            data.get(body..body + 16).and_then(|b| {
                <[u8; 16]>::try_from(b)
                    .ok()
                    .map(|a| (IpAddr::V6(Ipv6Addr::from(a)), 16))
            })
        } else {
            None
        };
        match ip {
            Some((ip, n)) => {
                out.push(ip);
                i = body + n;
            }
            None => break,
        }
    }
    (out, i)
}

/// Whether `tail` (what [`parse_records`] could not read) is what a crash leaves: a
/// beginning of one record, shorter than a whole one. Anything else means the file is
/// not a blocked file of ours (a wrong BLOCKED_FILE path), and must not be cut.
pub fn is_partial_record(tail: &[u8]) -> bool {
    let famlen = if cfg!(target_os = "linux") { 2 } else { 1 };
    let fam = |b: &[u8]| {
        if famlen == 2 {
            u16::from_ne_bytes([b[0], b[1]])
        } else {
            u16::from(b[0])
        }
    };
    match tail.len() {
        0 => true,
        n if n < famlen => {
            // the first byte of a family code
            let v4 = AF_INET.to_ne_bytes();
            let v6 = AF_INET6.to_ne_bytes();
            tail[0] == v4[0] || tail[0] == v6[0]
        }
        n => {
            let f = fam(&tail[..famlen]);
            (f == AF_INET && n < famlen + 4) || (f == AF_INET6 && n < famlen + 16)
        }
    }
}

/// The block cache and its file.
pub struct BlockedFile {
    path: PathBuf,
    file: File,
}

impl BlockedFile {
    /// Opens (creating) the file, reads its records, and cuts a corrupt tail. Returns the
    /// file, the cached addresses and, if a tail was cut, a message saying so.
    pub fn open(path: &Path) -> io::Result<(BlockedFile, HashSet<IpAddr>, Option<String>)> {
        let mut file = open_append(path)?;
        let mut data = Vec::new();
        File::open(path)?.read_to_end(&mut data)?;
        let (ips, good) = parse_records(&data);
        let mut note = None;
        if !is_partial_record(&data[good..]) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "not a portsentry blocked file ({} bytes cannot be records); refusing to change it",
                    data.len() - good
                ),
            ));
        }
        if good < data.len() {
            let f = OpenOptions::new().write(true).open(path)?;
            f.set_len(good as u64)?;
            f.sync_all()?;
            note = Some(format!(
                "{}: cut a corrupt tail of {} bytes after {} records",
                path.display(),
                data.len() - good,
                ips.len()
            ));
            file = open_append(path)?;
        }
        Ok((
            BlockedFile {
                path: path.to_path_buf(),
                file,
            },
            ips.into_iter().collect(),
            note,
        ))
    }

    /// Appends one record; [`BlockedFile::sync`] makes a group of them durable with one
    /// fsync.
    pub fn append(&mut self, ip: IpAddr) -> io::Result<()> {
        self.file.write_all(&record(ip))
    }

    /// Makes the appended records durable.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Rewrites the whole file atomically (after a block was lifted).
    pub fn rewrite(&mut self, ips: &[IpAddr]) -> io::Result<()> {
        let data: Vec<u8> = ips.iter().flat_map(|ip| record(*ip)).collect();
        crate::fsutil::atomic_write(&self.path, &data, 0o600)?;
        self.file = open_append(&self.path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_2x_binary() {
        let r = record("198.18.0.1".parse().unwrap());
        if cfg!(target_os = "linux") {
            assert_eq!(r, vec![2, 0, 198, 18, 0, 1]);
            assert_eq!(record("fd00:5e5e::1".parse().unwrap()).len(), 18);
            assert_eq!(record("fd00:5e5e::1".parse().unwrap())[..2], [10, 0]);
        }
    }

    /// Issue #17 item 3: a BLOCKED_FILE path that names some other file is refused, not
    /// truncated.
    #[test]
    fn a_file_that_is_not_ours_is_never_cut() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("notes.txt");
        for text in ["hello\n", "a longer text file that is not ours at all\n"] {
            std::fs::write(&p, text).unwrap();
            assert!(BlockedFile::open(&p).is_err());
            assert_eq!(std::fs::read_to_string(&p).unwrap(), text);
        }
        assert!(is_partial_record(&[]));
        assert!(is_partial_record(
            &record("198.18.0.1".parse().unwrap())[..3]
        ));
        assert!(!is_partial_record(&record("198.18.0.1".parse().unwrap())));
    }

    #[test]
    fn corrupt_tail_is_cut_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/blocked");
        let (mut f, ips, note) = BlockedFile::open(&p).unwrap();
        assert!(ips.is_empty() && note.is_none());
        f.append("198.18.0.1".parse().unwrap()).unwrap();
        f.append("fd00:5e5e::9".parse().unwrap()).unwrap();
        drop(f);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 24);
        let mut data = std::fs::read(&p).unwrap();
        data.extend_from_slice(&[2, 0, 1]);
        std::fs::write(&p, &data).unwrap();
        let (_, ips, note) = BlockedFile::open(&p).unwrap();
        assert_eq!(ips.len(), 2);
        assert!(note
            .unwrap()
            .contains("cut a corrupt tail of 3 bytes after 2 records"));
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 24);
    }

    /// Issue #16: a rename is followed at once, not within the next second.
    #[cfg(target_os = "linux")]
    #[test]
    fn history_follows_rename_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.log");
        let mut h = AppendFile::open(&p).unwrap();
        h.write_line("one").unwrap();
        std::fs::rename(&p, dir.path().join("h.log.1")).unwrap();
        let start = Instant::now();
        while !h.moved.as_ref().is_some_and(|m| m.load(Ordering::Acquire)) {
            assert!(start.elapsed() < Duration::from_secs(2), "no inotify event");
            std::thread::sleep(Duration::from_millis(1));
        }
        h.write_line("two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("h.log.1")).unwrap(),
            "one\n"
        );
    }

    #[test]
    fn history_follows_rename() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.log");
        let mut h = AppendFile::open(&p).unwrap();
        h.write_line("one").unwrap();
        std::fs::rename(&p, dir.path().join("h.log.1")).unwrap();
        h.checked = Instant::now() - Duration::from_secs(2);
        h.write_line("two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("h.log.1")).unwrap(),
            "one\n"
        );
    }

    #[test]
    fn stamper_matches_chrono() {
        let mut st = Stamper::default();
        for t in [
            SystemTime::now(),
            std::time::UNIX_EPOCH + Duration::from_millis(1_795_491_183_082),
            std::time::UNIX_EPOCH + Duration::from_millis(1_795_491_183_999),
            std::time::UNIX_EPOCH + Duration::from_millis(1_795_491_184_001),
        ] {
            let dt: chrono::DateTime<chrono::Local> = t.into();
            let mut got = String::new();
            st.write(t, &mut got);
            assert_eq!(got, dt.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string());
        }
    }

    #[test]
    fn timestamp_shape() {
        let t = timestamp(SystemTime::now());
        assert_eq!(t.len(), "2026-11-22T18:13:43.082+0000".len(), "{t}");
        assert_eq!(&t[10..11], "T");
    }
}
