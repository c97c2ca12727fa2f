//! Adding a line to hosts.deny the safe way.
//!
//! In: the file path and the substituted KILL_HOSTS_DENY line. Out: `Added`,
//! `AlreadyThere` or an error. The file is rewritten through a temp file, fsync and
//! rename, keeping every other line and the file mode; a symlinked or world-writable
//! file is refused. Lines are never built here: the caller substitutes the template.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Added,
    AlreadyThere,
}

/// Appends `line` unless an identical line is already in the file.
pub fn add_line(path: &Path, line: &str) -> io::Result<Outcome> {
    let (existing, mode) = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(io::Error::other(format!(
                "{} is a symbolic link; refusing to write it",
                path.display()
            )))
        }
        Ok(m) if m.mode() & 0o002 != 0 => {
            return Err(io::Error::other(format!(
                "{} is world-writable; refusing to use it",
                path.display()
            )))
        }
        Ok(m) => (std::fs::read(path)?, m.permissions().mode() & 0o7777),
        Err(e) if e.kind() == io::ErrorKind::NotFound => (Vec::new(), 0o644),
        Err(e) => return Err(e),
    };
    let text = String::from_utf8_lossy(&existing);
    if text.lines().any(|l| l.trim_end_matches('\r') == line) {
        return Ok(Outcome::AlreadyThere);
    }
    let mut data = existing.clone();
    if !data.is_empty() && !data.ends_with(b"\n") {
        data.push(b'\n');
    }
    data.extend_from_slice(line.as_bytes());
    data.push(b'\n');
    super::atomic_write(path, &data, mode)?;
    Ok(Outcome::Added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_once_and_keeps_other_lines_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hosts.deny");
        std::fs::write(&p, "# keep me\nsshd: 203.0.113.0/24").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(add_line(&p, "ALL: 198.18.0.1").unwrap(), Outcome::Added);
        assert_eq!(
            add_line(&p, "ALL: 198.18.0.1").unwrap(),
            Outcome::AlreadyThere
        );
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "# keep me\nsshd: 203.0.113.0/24\nALL: 198.18.0.1\n"
        );
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
    }

    #[test]
    fn refuses_symlinks_and_world_writable() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::write(&real, "").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(add_line(&link, "ALL: 198.18.0.1").is_err());
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(add_line(&real, "ALL: 198.18.0.1").is_err());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "");
    }
}
