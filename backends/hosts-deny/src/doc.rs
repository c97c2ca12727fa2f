//! The hosts.deny text split around our marked block.
//!
//! In: the file's bytes and the line template. Out: the bytes before our block, our
//! entries (network and line), the bytes after it; and the file rebuilt from them.
//! Bytes outside the block are kept exactly (CRLF, comments, a missing final newline);
//! our block is always written with LF line ends and dropped when it holds nothing.

use portsentry_blocker::Net;

use crate::template::Template;

/// First line of our block.
pub const BEGIN: &str = "# BEGIN portsentry (managed by portsentry; do not edit inside this block)";
/// Last line of our block.
pub const END: &str = "# END portsentry";

/// One line of our block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) net: Net,
    pub(crate) line: String,
}

/// A hosts.deny file as three parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Doc {
    /// Everything before our BEGIN line (the whole file when there is no block).
    before: Vec<u8>,
    pub(crate) entries: Vec<Entry>,
    /// Everything after our END line.
    after: Vec<u8>,
    /// Whether the file had a block (its place is kept).
    had_block: bool,
}

/// A line's text without its `\n` or `\r\n`.
fn content(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

impl Doc {
    /// Splits `bytes`. The block runs from the first BEGIN line to the next END line;
    /// with no END line it runs on only while lines are entries the template reads,
    /// so a damaged block never swallows the administrator's lines.
    pub(crate) fn parse(bytes: &[u8], template: &Template) -> Doc {
        let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
        let Some(begin) = lines.iter().position(|l| content(l) == BEGIN.as_bytes()) else {
            return Doc {
                before: bytes.to_vec(),
                entries: Vec::new(),
                after: Vec::new(),
                had_block: false,
            };
        };
        let read = |l: &[u8]| {
            std::str::from_utf8(content(l))
                .ok()
                .and_then(|s| template.parse_line(s).map(|net| (net, s.to_string())))
        };
        let (body_end, after_start) = match lines[begin + 1..]
            .iter()
            .position(|l| content(l) == END.as_bytes())
        {
            Some(i) => (begin + 1 + i, begin + 2 + i),
            None => {
                let n = lines[begin + 1..]
                    .iter()
                    .take_while(|l| read(l).is_some())
                    .count();
                (begin + 1 + n, begin + 1 + n)
            }
        };
        let mut entries: Vec<Entry> = Vec::new();
        for l in &lines[begin + 1..body_end] {
            if let Some((net, line)) = read(l) {
                if !entries.iter().any(|e| e.net == net) {
                    entries.push(Entry { net, line });
                }
            }
        }
        Doc {
            before: lines[..begin].concat(),
            entries,
            after: lines[after_start..].concat(),
            had_block: true,
        }
    }

    /// The file again: our block in its old place, or appended at the end.
    pub(crate) fn render(&self) -> Vec<u8> {
        let mut out = self.before.clone();
        if !self.entries.is_empty() {
            if !out.is_empty() && !out.ends_with(b"\n") {
                out.push(b'\n');
            }
            out.extend_from_slice(BEGIN.as_bytes());
            out.push(b'\n');
            for e in &self.entries {
                out.extend_from_slice(e.line.as_bytes());
                out.push(b'\n');
            }
            out.extend_from_slice(END.as_bytes());
            out.push(b'\n');
        }
        if self.had_block || !self.entries.is_empty() {
            out.extend_from_slice(&self.after);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Template {
        Template::parse("ALL: $TARGET$").unwrap()
    }

    #[test]
    fn round_trips_and_keeps_the_block_in_place() {
        let text =
            format!("# head\r\nsshd: 203.0.113.1\r\n{BEGIN}\nALL: 198.18.0.1\n{END}\nin.ftpd: ALL");
        let doc = Doc::parse(text.as_bytes(), &t());
        assert_eq!(doc.entries.len(), 1);
        assert_eq!(doc.render(), text.as_bytes());
    }

    #[test]
    fn missing_end_stops_at_first_foreign_line() {
        let text = format!("{BEGIN}\nALL: 198.18.0.1\nsshd: ALL\n");
        let mut doc = Doc::parse(text.as_bytes(), &t());
        assert_eq!(doc.entries.len(), 1);
        doc.entries.clear();
        assert_eq!(doc.render(), b"sshd: ALL\n");
    }
}
