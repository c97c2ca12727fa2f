//! The persistent block store: the source of truth of active blocks (`docs/blocking.md` §1).
//!
//! In: records to put, nets to lift, flushes — from the daemon and from the CLI, which are
//! separate processes sharing one file. Out: the current records, durable on disk before
//! any call that changes them returns, plus warnings about crash remnants it repaired.
//! Must not: rewrite the whole file per change (a change appends one journal line; a
//! snapshot is written only now and then), lose an acknowledged change to a crash or a
//! `kill -9`, empty or rewrite a file it cannot parse, hold its lock between calls, read
//! the clock except to age out old history at compaction, or touch any backend.
//!
//! # File format
//! JSON lines, readable during an incident. A header line, then one object per change:
//! a full record on every put or lift, `{"clear":true}` on a flush. The last line for a
//! net wins.
//! ```text
//! {"portsentry_block_store":1}
//! {"net":"192.0.2.7","backends":["nft"],"first_seen":1700000000,"last_seen":1700000042,"hits":3,"protocol":"TCP","port":143,"scan":"TCP SYN/Normal scan","expires":1700003600,"offences":1,"lifted":false}
//! {"net":"2001:db8::/64","backends":["nft","hosts-deny"],"first_seen":1700000100,"last_seen":1700000100,"hits":1,"protocol":"","port":0,"scan":"manual","expires":null,"offences":1,"lifted":false}
//! {"net":"192.0.2.7","backends":["nft"],"first_seen":1700000000,"last_seen":1700000042,"hits":3,"protocol":"TCP","port":143,"scan":"TCP SYN/Normal scan","expires":1700003600,"offences":1,"lifted":true}
//! {"clear":true}
//! ```
//!
//! # Durability and locking
//! Every write (put, lift, clear) takes an exclusive `flock` on the sidecar `<path>.lock`,
//! first reads whatever another process appended since this one last looked (or the whole
//! file, if its inode changed because one of ours compacted: each compaction names its
//! snapshot's device and inode in the lock file), appends one line and
//! `fdatasync`s it, then releases the lock. `refresh` and `compact` take the same lock.
//! A line counts only once its newline is on disk: an incomplete last line is a write a
//! crash cut off, never acknowledged, and is dropped with a warning. Compaction writes
//! a temp file beside it (exclusive, unpredictable name, never through a symlink), fsyncs
//! it, renames it over the store and fsyncs the directory; it runs
//! by itself once the journal has more than max(1024, 2 × records) lines, and drops
//! lifted records whose last event is more than 30 days old.
//!
//! A store file deleted, replaced or truncated by anything but portsentry (a new inode
//! no compaction of ours announced, or a file shorter than what was read) never lifts a
//! block: what this process holds is written out again, active records of the file found
//! are taken over, that file is kept as `<path>.replaced`, and a warning says so.

mod error;
mod escalate;
mod record;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::error::Error as _;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use portsentry_blocker::Net;

pub use error::StoreError;
pub use escalate::timeout_for;
pub use record::{Names, Record, FORMAT_VERSION};

use record::Entry;

/// How long a lifted record is kept as escalation history: 30 days, in seconds.
pub const HISTORY_SECS: u64 = 30 * 24 * 60 * 60;

/// The journal is compacted once it has more lines than this, or than twice the records.
const MIN_COMPACT_LINES: u64 = 1024;

/// The records as the file says they are.
#[derive(Debug, Default)]
struct State {
    records: BTreeMap<Net, Record>,
    active: usize,
}

impl State {
    fn active_nets(&self) -> impl Iterator<Item = Net> + '_ {
        self.records.values().filter(|r| !r.lifted).map(|r| r.net)
    }

    /// Applies one journal entry; returns whether anything changed.
    fn apply(&mut self, entry: Entry) -> bool {
        match entry {
            Entry::Put(rec) => {
                let net = rec.net;
                if !rec.lifted {
                    self.active += 1;
                }
                match self.records.insert(net, rec) {
                    Some(old) => {
                        if !old.lifted {
                            self.active = self.active.saturating_sub(1);
                        }
                        self.records.get(&net) != Some(&old)
                    }
                    None => true,
                }
            }
            Entry::Clear => {
                let changed = !self.records.is_empty();
                self.records.clear();
                self.active = 0;
                changed
            }
        }
    }
}

/// The persistent block store. See the module documentation for the format and the rules.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    lock_path: PathBuf,
    lock_file: File,
    /// The journal, opened for reading and appending.
    file: File,
    /// Device and inode of `file`: a different pair at `path` means someone compacted.
    id: (u64, u64),
    /// Bytes of `file` read and applied; always just after a newline.
    offset: u64,
    /// Journal lines (after the header) read and applied.
    lines: u64,
    state: State,
    /// Bumped by every change of the records (ours, or another process's read back).
    generation: u64,
    /// Warnings gathered since the last `take_warnings`.
    warnings: Vec<String>,
    /// Nets whose record another process changed (read back by `catch_up`, a reload,
    /// or a foreign file merged) since the last `take_changed`.
    changed: Vec<Net>,
}

impl Store {
    /// Opens (creating parent dirs and the file, mode 0600) and loads the store.
    ///
    /// Errors: unreadable, a record that does not parse (`path:line: what`), a file from a
    /// future format version (naming it). A truncated last line (a crash mid-append) is
    /// reported as a warning and only that partial line is dropped. On real corruption
    /// the file is left exactly as it was.
    pub fn open(path: &Path) -> Result<(Store, Vec<String>), StoreError> {
        let dir = parent_dir(path);
        fs::create_dir_all(&dir).map_err(|source| StoreError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        let lock_path = sidecar(path, ".lock");
        let lock_file = crate::fsutil::open_checked(
            &lock_path,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600),
        )
        .map_err(|source| StoreError::OpenLock {
            path: lock_path.clone(),
            source,
        })?;
        let _guard = take_lock(&lock_file, &lock_path)?;
        let mut warnings = Vec::new();
        let (mut file, id) = open_journal(path)?;
        let loaded = load(path, &mut file, &mut warnings)?;
        let mut store = Store {
            path: path.to_path_buf(),
            lock_path,
            lock_file,
            file,
            id,
            offset: loaded.offset,
            lines: loaded.lines,
            state: loaded.state,
            generation: 0,
            warnings,
            changed: Vec::new(),
        };
        // No compaction here: opening to read (`portsentry list`) must not rewrite the
        // file; the next change compacts when it is due.
        let warnings = store.take_warnings();
        Ok((store, warnings))
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The record for `net`, active or lifted.
    pub fn get(&self, net: &Net) -> Option<&Record> {
        self.state.records.get(net)
    }

    /// Active (not lifted) records, in address order.
    pub fn active(&self) -> impl Iterator<Item = &Record> {
        self.state.records.values().filter(|r| !r.lifted)
    }

    pub fn active_len(&self) -> usize {
        self.state.active
    }

    /// A number that changes whenever the records do: a reader that saw the same
    /// number has nothing new to look at.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Every record, lifted ones (escalation history) included, in address order.
    pub fn all(&self) -> impl Iterator<Item = &Record> {
        self.state.records.values()
    }

    /// Warnings gathered since `open` or the last call: incomplete lines dropped by
    /// `refresh`, a compaction that failed after a change was already durable.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Inserts or replaces a record. Durable (fsync'd) before it returns.
    pub fn put(&mut self, rec: Record) -> Result<(), StoreError> {
        let _guard = self.lock()?;
        self.catch_up()?;
        let line = record::encode(&rec).map_err(|source| StoreError::Encode {
            path: self.path.clone(),
            source,
        })?;
        self.append(&line)?;
        self.generation += 1;
        self.state.apply(Entry::Put(rec));
        self.compact_if_due();
        Ok(())
    }

    /// Inserts or replaces many records with one append and one fsync (a group of blocks
    /// made together). Durable before it returns; all or nothing.
    pub fn put_many(&mut self, recs: Vec<Record>) -> Result<(), StoreError> {
        if recs.is_empty() {
            return Ok(());
        }
        let _guard = self.lock()?;
        self.catch_up()?;
        let mut buf = Vec::with_capacity(recs.len() * 256);
        for rec in &recs {
            record::encode_into(rec, &mut buf).map_err(|source| StoreError::Encode {
                path: self.path.clone(),
                source,
            })?;
        }
        self.append(&buf)?;
        self.lines += recs.len() as u64 - 1;
        for rec in recs {
            self.generation += 1;
            self.state.apply(Entry::Put(rec));
        }
        self.compact_if_due();
        Ok(())
    }

    /// Marks a record lifted (keeps it for escalation history). Returns whether it was
    /// active. Durable.
    pub fn lift(&mut self, net: &Net) -> Result<bool, StoreError> {
        let _guard = self.lock()?;
        self.catch_up()?;
        let mut rec = match self.state.records.get(net) {
            Some(rec) if !rec.lifted => rec.clone(),
            _ => return Ok(false),
        };
        rec.lifted = true;
        let line = record::encode(&rec).map_err(|source| StoreError::Encode {
            path: self.path.clone(),
            source,
        })?;
        self.append(&line)?;
        self.generation += 1;
        self.state.apply(Entry::Put(rec));
        self.compact_if_due();
        Ok(true)
    }

    /// Active records with `expires <= now`.
    pub fn expired(&self, now: u64) -> Vec<Net> {
        self.active()
            .filter(|r| r.expires.is_some_and(|t| t <= now))
            .map(|r| r.net)
            .collect()
    }

    /// Removes every record (flush), history included. Durable.
    pub fn clear(&mut self) -> Result<(), StoreError> {
        let _guard = self.lock()?;
        self.catch_up()?;
        self.append(record::CLEAR_LINE)?;
        self.generation += 1;
        self.state.apply(Entry::Clear);
        self.compact_if_due();
        Ok(())
    }

    /// The nets whose record another process changed since the last call (each once):
    /// what a daemon must apply or lift after a `refresh`.
    pub fn take_changed(&mut self) -> Vec<Net> {
        let mut v = std::mem::take(&mut self.changed);
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Picks up changes another process (the CLI vs the daemon) made since the last read;
    /// returns true if anything changed.
    pub fn refresh(&mut self) -> Result<bool, StoreError> {
        let _guard = self.lock()?;
        self.catch_up()
    }

    /// Rewrites a compact snapshot (temp file in the same dir, fsync, rename, fsync the
    /// dir), dropping lifted records older than 30 days by the system clock.
    pub fn compact(&mut self) -> Result<(), StoreError> {
        self.compact_at(now_unix())
    }

    /// [`Store::compact`] with the time passed in (unix seconds).
    pub fn compact_at(&mut self, now: u64) -> Result<(), StoreError> {
        let _guard = self.lock()?;
        self.catch_up()?;
        self.compact_locked(now)
    }

    fn lock(&self) -> Result<Flock<File>, StoreError> {
        take_lock(&self.lock_file, &self.lock_path)
    }

    /// Reads what was appended since `offset`, or everything if the file was replaced.
    /// Call with the lock held.
    fn catch_up(&mut self) -> Result<bool, StoreError> {
        let meta = match fs::metadata(&self.path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Removed behind our back: what we hold is the truth; write it out again
                // rather than lift every block (issue #17).
                self.warnings.push(format!(
                    "{}: the block store was removed while in use; rewritten from memory ({} active blocks kept)",
                    self.path.display(),
                    self.state.active
                ));
                self.compact_locked(now_unix())?;
                return Ok(false);
            }
            Err(source) => {
                return Err(StoreError::Stat {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let now_id = (meta.dev(), meta.ino());
        if now_id != self.id {
            // Our own compactions (this process's or another's) name their snapshot in
            // the lock file; any other new file was put there behind our back.
            if self.snapshot_mark() == Some(now_id) {
                return self.reload();
            }
            return self.replaced_behind_our_back("replaced");
        }
        if meta.len() < self.offset {
            return self.replaced_behind_our_back("truncated");
        }
        if meta.len() == self.offset {
            return Ok(false);
        }
        let buf = read_from(&self.path, &mut self.file, self.offset)?;
        let parsed = parse_lines(&self.path, &buf, self.lines + 2)?;
        let mut lines = self.lines + parsed.lines;
        let (offset, last) = finish_tail(
            &self.path,
            &mut self.file,
            self.offset + parsed.end,
            parsed.tail,
            lines + 2,
            &mut self.warnings,
        )?;
        if last.is_some() {
            lines += 1;
        }
        let mut changed = false;
        for entry in parsed.entries.into_iter().chain(last) {
            match &entry {
                Entry::Put(r) => self.changed.push(r.net),
                Entry::Clear => self.changed.extend(self.state.active_nets()),
            }
            changed |= self.state.apply(entry);
            self.generation += 1;
        }
        self.offset = offset;
        self.lines = lines;
        Ok(changed)
    }

    /// The snapshot our last compaction (in any process) installed, from the lock file.
    fn snapshot_mark(&self) -> Option<(u64, u64)> {
        let mut buf = [0u8; 64];
        let n = self.lock_file.read_at(&mut buf, 0).ok()?;
        let text = std::str::from_utf8(&buf[..n]).ok()?;
        let (dev, ino) = text.trim().split_once(' ')?;
        Some((dev.parse().ok()?, ino.parse().ok()?))
    }

    /// Names `id` as the snapshot just installed (in the lock file, read under the lock).
    fn mark_snapshot(&mut self, id: (u64, u64)) {
        let text = format!("{} {}\n", id.0, id.1);
        let res = self
            .lock_file
            .write_all_at(text.as_bytes(), 0)
            .and_then(|()| self.lock_file.set_len(text.len() as u64));
        if let Err(e) = res {
            self.warnings.push(format!(
                "{}: could not note the new snapshot ({e}); other processes will take it for a foreign file and merge it",
                self.lock_path.display()
            ));
        }
    }

    /// The store file was replaced or truncated by something that is not portsentry (an
    /// admin's copy, a restore, tampering): what we hold stays the truth, and never is a
    /// block lifted because of it. Active records of the new file that we do not hold
    /// active are taken over; the new file is kept aside as `<path>.replaced`, and the
    /// store is written again from memory. Call with the lock held.
    fn replaced_behind_our_back(&mut self, how: &str) -> Result<bool, StoreError> {
        let found = read_foreign(&self.path);
        let aside = sidecar(&self.path, ".replaced");
        let kept = match fs::rename(&self.path, &aside) {
            Ok(()) => format!("; the file found is kept as {}", aside.display()),
            Err(e) => format!("; the file found could not be kept aside ({e})"),
        };
        let mut taken = 0usize;
        let read = match found {
            Ok(records) => {
                for r in records {
                    let ours_active = self.state.records.get(&r.net).is_some_and(|m| !m.lifted);
                    if !r.lifted && !ours_active {
                        self.changed.push(r.net);
                        self.state.apply(Entry::Put(r));
                        taken += 1;
                    }
                }
                String::new()
            }
            Err(e) => format!(" (it could not be read: {})", chain(&e)),
        };
        self.warnings.push(format!(
            "{}: the block store was {how} while in use, not by portsentry{read}; rewritten from memory ({} active blocks kept, {taken} new ones taken from the file found){kept}",
            self.path.display(),
            self.state.active
        ));
        self.generation += 1;
        self.compact_locked(now_unix())?;
        Ok(taken > 0)
    }

    /// Loads the file at `path` from scratch. Call with the lock held.
    fn reload(&mut self) -> Result<bool, StoreError> {
        let (mut file, id) = open_journal(&self.path)?;
        let loaded = load(&self.path, &mut file, &mut self.warnings)?;
        let changed = loaded.state.records != self.state.records;
        if changed {
            let key = |r: &Record| (r.lifted, r.expires);
            for (net, new) in &loaded.state.records {
                if self.state.records.get(net).map(key) != Some(key(new)) {
                    self.changed.push(*net);
                }
            }
            for (net, old) in &self.state.records {
                if !old.lifted && !loaded.state.records.contains_key(net) {
                    self.changed.push(*net);
                }
            }
        }
        self.file = file;
        self.id = id;
        self.offset = loaded.offset;
        self.lines = loaded.lines;
        self.state = loaded.state;
        self.generation += 1;
        Ok(changed)
    }

    /// Appends one line and syncs it. Call with the lock held, after `catch_up`.
    fn append(&mut self, line: &[u8]) -> Result<(), StoreError> {
        if let Err(source) = self.file.write_all(line) {
            // Best effort: leave no partial line behind.
            let _ = self.file.set_len(self.offset);
            return Err(StoreError::Append {
                path: self.path.clone(),
                source,
            });
        }
        if let Err(source) = self.file.sync_data() {
            let _ = self.file.set_len(self.offset);
            return Err(StoreError::Sync {
                path: self.path.clone(),
                source,
            });
        }
        self.offset += line.len() as u64;
        self.lines += 1;
        Ok(())
    }

    /// Compacts when the journal is due. The change that led here is already durable,
    /// so a failure is only a warning. Call with the lock held.
    fn compact_if_due(&mut self) {
        let limit = MIN_COMPACT_LINES.max(2 * self.state.records.len() as u64);
        if self.lines > limit {
            if let Err(e) = self.compact_locked(now_unix()) {
                self.warnings.push(chain(&e));
            }
        }
    }

    /// Writes the snapshot and switches to it. Call with the lock held, after `catch_up`.
    fn compact_locked(&mut self, now: u64) -> Result<(), StoreError> {
        let cutoff = now.saturating_sub(HISTORY_SECS);
        let keep = |r: &Record| !r.lifted || last_event(r) >= cutoff;
        let (file, tmp) = crate::fsutil::create_temp(&self.path, 0o600).map_err(|source| {
            StoreError::WriteSnapshot {
                path: sidecar(&self.path, ".tmp"),
                source,
            }
        })?;
        let perms = self.file.metadata().ok().map(|m| m.permissions());
        let lines = match write_snapshot(
            file,
            &tmp,
            &self.path,
            self.state.records.values().filter(|r| keep(r)),
            perms,
        ) {
            Ok(lines) => lines,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if let Err(source) = fs::rename(&tmp, &self.path) {
            let _ = fs::remove_file(&tmp);
            return Err(StoreError::Rename {
                from: tmp,
                to: self.path.clone(),
                source,
            });
        }
        // The snapshot is the store now; follow it even if the directory sync fails.
        // (If reopening fails, `id` stays stale and the next call reloads.)
        self.state.records.retain(|_, r| keep(r));
        let dir = parent_dir(&self.path);
        let synced = sync_dir(&dir);
        let (file, id) = open_journal(&self.path)?;
        let len = file
            .metadata()
            .map_err(|source| StoreError::Stat {
                path: self.path.clone(),
                source,
            })?
            .len();
        self.file = file;
        self.id = id;
        self.offset = len;
        self.lines = lines;
        self.mark_snapshot(id);
        synced
    }
}

/// The records of a file found at the store's path that we did not write, read without
/// following a symlink and without writing to it. Its last complete line counts; an
/// incomplete one is ignored.
fn read_foreign(path: &Path) -> Result<Vec<Record>, StoreError> {
    let mut file =
        crate::fsutil::open_checked(path, OpenOptions::new().read(true)).map_err(|source| {
            StoreError::Open {
                path: path.to_path_buf(),
                source,
            }
        })?;
    let buf = read_from(path, &mut file, 0)?;
    let header_len = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    check_header(path, &buf[..header_len])?;
    let body = buf.get(header_len + 1..).unwrap_or_default();
    let parsed = parse_lines(path, body, 2)?;
    let mut state = State::default();
    for entry in parsed.entries {
        state.apply(entry);
    }
    Ok(state.records.into_values().collect())
}

/// The latest time something happened to a record: its last detection or its expiry.
fn last_event(r: &Record) -> u64 {
    r.last_seen.max(r.expires.unwrap_or(0))
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `e: cause: cause…`, for a warning that has no error type to travel in.
fn chain(e: &StoreError) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// `path` with `suffix` appended to its file name (`blocks` → `blocks.lock`).
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name: OsString = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn take_lock(file: &File, path: &Path) -> Result<Flock<File>, StoreError> {
    loop {
        let dup = file.try_clone().map_err(|source| StoreError::OpenLock {
            path: path.to_path_buf(),
            source,
        })?;
        match Flock::lock(dup, FlockArg::LockExclusive) {
            Ok(guard) => return Ok(guard),
            Err((_, Errno::EINTR)) => continue,
            Err((_, source)) => {
                return Err(StoreError::Lock {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Opens (creating, mode 0600) the journal for reading and appending; returns it with its
/// device and inode.
fn open_journal(path: &Path) -> Result<(File, (u64, u64)), StoreError> {
    let file = crate::fsutil::open_checked(
        path,
        OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600),
    )
    .map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let meta = file.metadata().map_err(|source| StoreError::Stat {
        path: path.to_path_buf(),
        source,
    })?;
    Ok((file, (meta.dev(), meta.ino())))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StoreError::SyncDir {
            path: dir.to_path_buf(),
            source,
        })
}

fn read_from(path: &Path, file: &mut File, offset: u64) -> Result<Vec<u8>, StoreError> {
    let mut buf = Vec::new();
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_to_end(&mut buf))
        .map_err(|source| StoreError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(buf)
}

/// Writes header and records to `tmp` and syncs it; returns the number of record lines.
fn write_snapshot<'a>(
    file: File,
    tmp: &Path,
    store: &Path,
    records: impl Iterator<Item = &'a Record>,
    perms: Option<Permissions>,
) -> Result<u64, StoreError> {
    let failed = |source: io::Error| StoreError::WriteSnapshot {
        path: tmp.to_path_buf(),
        source,
    };
    if let Some(perms) = perms {
        file.set_permissions(perms).map_err(failed)?;
    }
    let mut w = BufWriter::with_capacity(1 << 16, file);
    w.write_all(record::header_line().as_bytes())
        .map_err(failed)?;
    let mut lines = 0;
    for rec in records {
        let line = record::encode(rec).map_err(|source| StoreError::Encode {
            path: store.to_path_buf(),
            source,
        })?;
        w.write_all(&line).map_err(failed)?;
        lines += 1;
    }
    let file = w.into_inner().map_err(|e| failed(e.into_error()))?;
    file.sync_all().map_err(|source| StoreError::SyncSnapshot {
        path: tmp.to_path_buf(),
        source,
    })?;
    Ok(lines)
}

/// What follows the last newline of a read.
#[derive(Debug)]
enum Tail {
    /// Nothing: the read ended on a newline.
    None,
    /// A whole entry whose newline is missing (the write stopped just before it).
    Complete(Entry, u64),
    /// Part of a line: a write cut off by a crash. Its length.
    Torn(u64),
}

/// The complete lines of a read.
#[derive(Debug)]
struct Parsed {
    entries: Vec<Entry>,
    /// Bytes up to and including the last newline.
    end: u64,
    /// Newline-terminated lines, blank ones included.
    lines: u64,
    tail: Tail,
}

/// Parses the journal lines in `buf`; `first_line` is the file line number of the first.
/// Fails on the first complete line that does not parse.
fn parse_lines(path: &Path, buf: &[u8], first_line: u64) -> Result<Parsed, StoreError> {
    let mut entries = Vec::new();
    let mut pos = 0;
    let mut lines = 0;
    while let Some(len) = buf[pos..].iter().position(|&b| b == b'\n') {
        let line = &buf[pos..pos + len];
        if !line.iter().all(u8::is_ascii_whitespace) {
            let entry = record::parse_entry(line).map_err(|what| StoreError::Parse {
                path: path.to_path_buf(),
                line: first_line + lines,
                what,
            })?;
            entries.push(entry);
        }
        pos += len + 1;
        lines += 1;
    }
    let rest = &buf[pos..];
    let tail = if rest.is_empty() {
        Tail::None
    } else {
        match record::parse_entry(rest) {
            Ok(entry) => Tail::Complete(entry, rest.len() as u64),
            Err(_) => Tail::Torn(rest.len() as u64),
        }
    };
    Ok(Parsed {
        entries,
        end: pos as u64,
        lines,
        tail,
    })
}

/// Settles what follows the last newline (at `end`): completes a whole entry with its
/// newline, or cuts off a torn line with a warning. Returns the new end and the entry.
fn finish_tail(
    path: &Path,
    file: &mut File,
    end: u64,
    tail: Tail,
    line: u64,
    warnings: &mut Vec<String>,
) -> Result<(u64, Option<Entry>), StoreError> {
    match tail {
        Tail::None => Ok((end, None)),
        Tail::Complete(entry, len) => {
            file.write_all(b"\n").map_err(|source| StoreError::Append {
                path: path.to_path_buf(),
                source,
            })?;
            file.sync_data().map_err(|source| StoreError::Sync {
                path: path.to_path_buf(),
                source,
            })?;
            Ok((end + len + 1, Some(entry)))
        }
        Tail::Torn(len) => {
            warnings.push(format!(
                "{}:{line}: dropped an incomplete last line ({len} bytes): a write cut off by a crash, never acknowledged",
                path.display()
            ));
            file.set_len(end)
                .and_then(|()| file.sync_data())
                .map_err(|source| StoreError::Truncate {
                    path: path.to_path_buf(),
                    source,
                })?;
            Ok((end, None))
        }
    }
}

/// A whole file, loaded.
struct Loaded {
    state: State,
    offset: u64,
    lines: u64,
}

/// Loads the whole journal: checks the header, applies every line, settles the tail.
/// Writes only to repair a crash remnant (a missing header on an empty file, a torn last
/// line), and only after everything else parsed. Call with the lock held.
fn load(path: &Path, file: &mut File, warnings: &mut Vec<String>) -> Result<Loaded, StoreError> {
    let buf = read_from(path, file, 0)?;
    let Some(header_len) = buf.iter().position(|&b| b == b'\n') else {
        return start_file(path, file, &buf, warnings);
    };
    check_header(path, &buf[..header_len])?;
    let body_start = header_len as u64 + 1;
    let parsed = parse_lines(path, &buf[header_len + 1..], 2)?;
    let mut lines = parsed.lines;
    let (offset, last) = finish_tail(
        path,
        file,
        body_start + parsed.end,
        parsed.tail,
        lines + 2,
        warnings,
    )?;
    if last.is_some() {
        lines += 1;
    }
    let mut state = State::default();
    for entry in parsed.entries.into_iter().chain(last) {
        state.apply(entry);
    }
    Ok(Loaded {
        state,
        offset,
        lines,
    })
}

/// A file without a single newline: new, a header cut off while being created, a header
/// missing only its newline, or not ours.
fn start_file(
    path: &Path,
    file: &mut File,
    buf: &[u8],
    warnings: &mut Vec<String>,
) -> Result<Loaded, StoreError> {
    let header = record::header_line();
    let empty = |offset| Loaded {
        state: State::default(),
        offset,
        lines: 0,
    };
    let sync = |file: &mut File| {
        file.sync_data().map_err(|source| StoreError::Sync {
            path: path.to_path_buf(),
            source,
        })
    };
    let append = |file: &mut File, bytes: &[u8]| {
        file.write_all(bytes).map_err(|source| StoreError::Append {
            path: path.to_path_buf(),
            source,
        })
    };
    if header.as_bytes().starts_with(buf) {
        if !buf.is_empty() {
            warnings.push(format!(
                "{}:1: dropped an incomplete header ({} bytes) left by a crash while the store was created",
                path.display(),
                buf.len()
            ));
            file.set_len(0).map_err(|source| StoreError::Truncate {
                path: path.to_path_buf(),
                source,
            })?;
        }
        append(file, header.as_bytes())?;
        sync(file)?;
        sync_dir(&parent_dir(path))?;
        return Ok(empty(header.len() as u64));
    }
    check_header(path, buf)?;
    append(file, b"\n")?;
    sync(file)?;
    Ok(empty(buf.len() as u64 + 1))
}

fn check_header(path: &Path, line: &[u8]) -> Result<(), StoreError> {
    record::parse_header(line).map_err(|e| match e {
        record::HeaderError::NotAStore(what) => StoreError::NotAStore {
            path: path.to_path_buf(),
            what,
        },
        record::HeaderError::Future(found) => StoreError::FutureVersion {
            path: path.to_path_buf(),
            found,
        },
    })
}
