//! The ignore file: one IPv4/IPv6 address or CIDR per line, `#` comments.
//!
//! In: the file's bytes and its path. Out: an [`IgnoreList`] plus warnings (host bits
//! masked), or one [`IgnoreError`] naming `path:line`. Unlike 2.x and 1.2 it keeps the
//! last line without a newline, allows spaces, CRLF, upper-case hex and trailing
//! comments, masks host bits and treats `/0` as everything. No I/O beyond [`load`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use portsentry_blocker::Net;

/// Why the ignore file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    #[error("{}: cannot read the ignore file: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {problem}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        problem: String,
    },
}

/// The parsed ignore list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreList {
    nets: Vec<Net>,
}

impl IgnoreList {
    pub fn new(nets: Vec<Net>) -> Self {
        IgnoreList { nets }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }

    pub fn nets(&self) -> &[Net] {
        &self.nets
    }

    pub fn len(&self) -> usize {
        self.nets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

/// Parses ignore-file text; returns the list and warnings (`path:line: ...`).
pub fn parse(path: &Path, data: &[u8]) -> Result<(IgnoreList, Vec<String>), IgnoreError> {
    let mut nets = Vec::new();
    let mut warnings = Vec::new();
    for (idx, raw) in data.split(|&b| b == b'\n').enumerate() {
        let line = idx + 1;
        let err = |problem: String| IgnoreError::Line {
            path: path.to_path_buf(),
            line,
            problem,
        };
        let text = std::str::from_utf8(raw)
            .map_err(|_| err("line is not valid UTF-8 text".to_string()))?;
        let text = text.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        let net: Net = text
            .parse()
            .map_err(|e| err(format!("{e} (expected an address or ADDRESS/PREFIX)")))?;
        if Net::had_host_bits(text) {
            warnings.push(format!(
                "{}:{line}: {text} has host bits set; using {net}",
                path.display()
            ));
        }
        nets.push(net);
    }
    Ok((IgnoreList { nets }, warnings))
}

/// Reads and parses the ignore file at `path`.
pub fn load(path: &Path) -> Result<(IgnoreList, Vec<String>), IgnoreError> {
    let data = crate::fsutil::read_regular(path).map_err(|source| IgnoreError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[u8]) -> Result<(IgnoreList, Vec<String>), IgnoreError> {
        parse(Path::new("ign"), s)
    }

    #[test]
    fn parses_what_2x_mangled() {
        let (l, w) =
            p(b"# c\r\n 198.18.0.1 \r\n198.18.4.5/16 # lab\nFD00:5E5E::/32\n127.0.0.1").unwrap();
        assert_eq!(l.len(), 4);
        assert_eq!(
            w,
            vec!["ign:3: 198.18.4.5/16 has host bits set; using 198.18.0.0/16"]
        );
        assert!(l.contains("198.18.200.1".parse().unwrap()));
        assert!(l.contains("fd00:5e5e::7".parse().unwrap()));
        assert!(l.contains("127.0.0.1".parse().unwrap()));
        assert!(!l.contains("198.20.0.1".parse().unwrap()));
    }

    #[test]
    fn zero_prefix_is_everything() {
        let (l, _) = p(b"0.0.0.0/0\n").unwrap();
        assert!(l.contains("203.0.113.1".parse().unwrap()));
        assert!(!l.contains("::1".parse().unwrap()));
    }

    #[test]
    fn mapped_entries_match_ipv4() {
        let (l, _) = p(b"::ffff:198.18.0.7\n").unwrap();
        assert!(l.contains("198.18.0.7".parse().unwrap()));
    }

    #[test]
    fn errors_name_the_line() {
        let e = p(b"198.18.0.1\n198.18.0.1/33\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "ign:2: prefix length /33 is too long for IPv4 (at most /32) (expected an address or ADDRESS/PREFIX)"
        );
        assert!(p(b"::1/129").is_err());
        assert!(p(b"www.example.com")
            .unwrap_err()
            .to_string()
            .starts_with("ign:1: "));
        assert!(p(b"\xff\xfe\x00")
            .unwrap_err()
            .to_string()
            .starts_with("ign:1: "));
        assert!(p(b"").unwrap().0.is_empty());
    }
}
