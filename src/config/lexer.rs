//! The `KEY="value"` lexer of portsentry.conf.
//!
//! In: the raw bytes of a config file and its path. Out: the `(key, value, line)`
//! entries in file order, or one [`LexError`] naming `path:line` and what is wrong.
//! It knows nothing about which keys exist or what values mean, and it does no I/O.

use std::fmt;
use std::path::{Path, PathBuf};

/// A config line longer than this is rejected rather than carried around (64 KiB fits
/// a 1.2 port list of every port below 10 000, item by item).
pub const MAX_LINE: usize = 65_536;

/// One `KEY="value"` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexProblem {
    NotUtf8,
    TooLong(usize),
    NoKey,
    NoEquals(String),
    NotQuoted(String),
    Unterminated(String),
    Empty(String),
}

impl fmt::Display for LexProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LexProblem::NotUtf8 => write!(f, "line is not valid UTF-8 text"),
            LexProblem::TooLong(n) => {
                write!(f, "line is too long ({n} bytes, at most {MAX_LINE})")
            }
            LexProblem::NoKey => write!(
                f,
                "expected KEY=\"value\" with an upper-case KEY starting in column 1"
            ),
            LexProblem::NoEquals(k) => write!(f, "{k}: expected '=' after the key"),
            LexProblem::NotQuoted(k) => {
                write!(f, "{k}: the value must be in double quotes, as {k}=\"...\"")
            }
            LexProblem::Unterminated(k) => write!(f, "{k}: the value has no closing quote"),
            LexProblem::Empty(k) => write!(f, "{k}: the value is empty"),
        }
    }
}

/// A lexer error: where and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {problem}", path.display())]
pub struct LexError {
    pub path: PathBuf,
    pub line: usize,
    pub problem: LexProblem,
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'
}

/// Splits `data` into entries. Comment lines (`#` in column 1) and blank lines are
/// skipped; a trailing `\r` is dropped; text after the closing quote is ignored.
pub fn lex(path: &Path, data: &[u8]) -> Result<Vec<Entry>, LexError> {
    let mut out = Vec::new();
    for (idx, raw) in data.split(|&b| b == b'\n').enumerate() {
        let line = idx + 1;
        let err = |problem| LexError {
            path: path.to_path_buf(),
            line,
            problem,
        };
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() > MAX_LINE {
            return Err(err(LexProblem::TooLong(raw.len())));
        }
        let text = std::str::from_utf8(raw).map_err(|_| err(LexProblem::NotUtf8))?;
        if text.starts_with('#') || text.trim().is_empty() {
            continue;
        }
        let key_len = text.bytes().take_while(|&b| is_key_byte(b)).count();
        if key_len == 0 || !text.as_bytes()[0].is_ascii_uppercase() {
            return Err(err(LexProblem::NoKey));
        }
        let key = &text[..key_len];
        let rest = text[key_len..].trim_start_matches([' ', '\t']);
        let Some(rest) = rest.strip_prefix('=') else {
            return Err(err(LexProblem::NoEquals(key.to_string())));
        };
        let rest = rest.trim_start_matches([' ', '\t']);
        let Some(rest) = rest.strip_prefix('"') else {
            return Err(err(LexProblem::NotQuoted(key.to_string())));
        };
        let Some(end) = rest.find('"') else {
            return Err(err(LexProblem::Unterminated(key.to_string())));
        };
        let value = &rest[..end];
        if value.is_empty() {
            return Err(err(LexProblem::Empty(key.to_string())));
        }
        out.push(Entry {
            key: key.to_string(),
            value: value.to_string(),
            line,
        });
    }
    Ok(out)
}

/// One line as Portsentry 1.2 read it: a key in column 1 followed by `=` or a space;
/// `value` is `None` when the line has no double quote at all (1.2: "Quotes missing"),
/// else the text after the first quote up to the next quote or unprintable character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loose {
    pub key: String,
    pub value: Option<String>,
    pub line: usize,
}

/// 1.2's reading of a config: every line that names a key as 1.2 matched it, in file
/// order, never an error (1.2 skipped what it could not read). Comments, blank lines,
/// lines not starting with a key, and lines that are not text are skipped.
pub fn lex_loose(data: &[u8]) -> Vec<Loose> {
    let mut out = Vec::new();
    for (idx, raw) in data.split(|&b| b == b'\n').enumerate() {
        let Ok(text) = std::str::from_utf8(raw) else {
            continue;
        };
        if text.starts_with('#') || raw.len() > MAX_LINE {
            continue;
        }
        let key_len = text.bytes().take_while(|&b| is_key_byte(b)).count();
        if key_len == 0 || !text.as_bytes()[0].is_ascii_uppercase() {
            continue;
        }
        if !matches!(text.as_bytes().get(key_len), Some(b'=' | b' ')) {
            continue;
        }
        let value = text.find('"').map(|i| {
            text[i + 1..]
                .chars()
                .take_while(|c| *c != '"' && !c.is_control())
                .collect::<String>()
        });
        out.push(Loose {
            key: text[..key_len].to_string(),
            value,
            line: idx + 1,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Result<Vec<Entry>, LexProblem> {
        lex(Path::new("t.conf"), s.as_bytes()).map_err(|e| e.problem)
    }

    #[test]
    fn accepts_the_forms_2x_accepts() {
        let e = one("# c\n\nTCP_PORTS=\"1,2\"\r\nUDP_PORTS = \"3\" trailing\n").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].key.as_str(), e[0].value.as_str(), e[0].line),
            ("TCP_PORTS", "1,2", 3)
        );
        assert_eq!(
            (e[1].key.as_str(), e[1].value.as_str(), e[1].line),
            ("UDP_PORTS", "3", 4)
        );
    }

    #[test]
    fn rejects_each_malformed_form() {
        assert_eq!(one("A=\"\""), Err(LexProblem::Empty("A".into())));
        assert_eq!(one("A=1"), Err(LexProblem::NotQuoted("A".into())));
        assert_eq!(one("A=\"1"), Err(LexProblem::Unterminated("A".into())));
        assert_eq!(one("A \"1\""), Err(LexProblem::NoEquals("A".into())));
        assert_eq!(one(" A=\"1\""), Err(LexProblem::NoKey));
        assert_eq!(one("a=\"1\""), Err(LexProblem::NoKey));
        assert_eq!(one("\u{1}\u{2}"), Err(LexProblem::NoKey));
        assert_eq!(
            lex(Path::new("t"), b"A=\"\xff\xfe\"").map_err(|e| e.problem),
            Err(LexProblem::NotUtf8)
        );
        let long = format!("A=\"{}\"", "1".repeat(1 << 20));
        assert_eq!(one(&long), Err(LexProblem::TooLong(long.len())));
    }

    #[test]
    fn loose_reads_as_1_2_did() {
        let e = lex_loose(
            b"# c\nSCAN_TRIGGER=0\nA = \"1\" x\nB=\"open\r\n lead=\"x\"\nCX\"y\"\nD=\"\"\n\xff=\"1\"\n",
        );
        let got: Vec<(&str, Option<&str>, usize)> = e
            .iter()
            .map(|l| (l.key.as_str(), l.value.as_deref(), l.line))
            .collect();
        assert_eq!(
            got,
            vec![
                ("SCAN_TRIGGER", None, 2),
                ("A", Some("1"), 3),
                ("B", Some("open"), 4),
                ("D", Some(""), 7),
            ]
        );
    }

    #[test]
    fn error_names_path_and_line() {
        let e = lex(Path::new("/etc/p.conf"), b"# x\nA=1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/p.conf:2: A: the value must be in double quotes, as A=\"...\""
        );
    }
}
