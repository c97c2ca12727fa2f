//! The text form of the block store: a header line, then one JSON object per line.
//!
//! In: [`Record`]s to encode, or single lines (without their `\n`) read from the file.
//! Out: encoded lines ending in `\n`, or a parsed [`Entry`] / a message saying what is
//! wrong with a line (the caller prefixes `path:line`). No I/O here, no locking, no clock.

use portsentry_blocker::{Net, Text};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// One blocked (or formerly blocked) network: the store's unit of change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The blocked address with its prefix (`192.0.2.7`, `2001:db8::/64`).
    #[serde(with = "net_text")]
    pub net: Net,
    /// Names of the backends the block was applied to.
    pub backends: Names,
    /// First detection, unix seconds.
    pub first_seen: u64,
    /// Latest detection, unix seconds.
    pub last_seen: u64,
    pub hits: u32,
    /// `TCP`, `UDP`, or empty for a manual block.
    pub protocol: Text,
    pub port: u16,
    /// The scan type as logged (`TCP SYN/Normal scan`), or `manual`.
    pub scan: Text,
    /// When the block ends, unix seconds; `None` = permanent.
    pub expires: Option<u64>,
    /// How many times this net has been blocked (drives escalation).
    pub offences: u32,
    /// Expired or unblocked: kept only as escalation history.
    pub lifted: bool,
}

/// Backend names, in the order they were applied; equal lists share one copy (100 000
/// records name the same one or two backends). Names never contain a comma.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Names(Text);

impl Names {
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.split(',').filter(|s| !s.is_empty())
    }

    pub fn join(&self, sep: &str) -> String {
        self.iter().collect::<Vec<_>>().join(sep)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.iter().any(|n| n == name)
    }
}

impl<S: AsRef<str>> FromIterator<S> for Names {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Names {
        let parts: Vec<String> = iter
            .into_iter()
            .map(|s| s.as_ref().replace(',', ""))
            .filter(|s| !s.is_empty())
            .collect();
        Names(Text::from(parts.join(",")))
    }
}

impl<S: AsRef<str>> From<Vec<S>> for Names {
    fn from(v: Vec<S>) -> Names {
        v.into_iter().collect()
    }
}

impl<const N: usize> PartialEq<[&str; N]> for Names {
    fn eq(&self, other: &[&str; N]) -> bool {
        self.iter().eq(other.iter().copied())
    }
}

impl std::fmt::Debug for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Names {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Names, D::Error> {
        Ok(Vec::<String>::deserialize(d)?.into())
    }
}

/// One journal line after the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// Insert or replace the record for its net.
    Put(Record),
    /// Remove every record.
    Clear,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClearLine {
    clear: bool,
}

#[derive(Deserialize)]
struct Header {
    portsentry_block_store: u64,
}

/// What is wrong with a header line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Not our header at all; says why.
    NotAStore(String),
    /// Our header, from a newer format.
    Future(u64),
}

/// The first line of every store file, `\n` included.
pub(crate) fn header_line() -> String {
    format!("{{\"portsentry_block_store\":{FORMAT_VERSION}}}\n")
}

/// The line written by a flush, `\n` included.
pub(crate) const CLEAR_LINE: &[u8] = b"{\"clear\":true}\n";

pub(crate) fn parse_header(line: &[u8]) -> Result<(), HeaderError> {
    let h: Header =
        serde_json::from_slice(line).map_err(|e| HeaderError::NotAStore(describe(&e)))?;
    match h.portsentry_block_store {
        0 => Err(HeaderError::NotAStore(
            "format version 0 does not exist".into(),
        )),
        v if v > u64::from(FORMAT_VERSION) => Err(HeaderError::Future(v)),
        _ => Ok(()),
    }
}

/// Parses one journal line: a record, or `{"clear":true}`.
pub(crate) fn parse_entry(line: &[u8]) -> Result<Entry, String> {
    match serde_json::from_slice::<Record>(line) {
        Ok(rec) => Ok(Entry::Put(rec)),
        Err(rec_err) => match serde_json::from_slice::<ClearLine>(line) {
            Ok(ClearLine { clear: true }) => Ok(Entry::Clear),
            Ok(ClearLine { clear: false }) => {
                Err("{\"clear\":false} means nothing; a flush line says {\"clear\":true}".into())
            }
            Err(_) => Err(describe(&rec_err)),
        },
    }
}

/// A record as one line, `\n` included.
pub(crate) fn encode(rec: &Record) -> Result<Vec<u8>, serde_json::Error> {
    let mut v = Vec::with_capacity(256);
    encode_into(rec, &mut v)?;
    Ok(v)
}

/// A record as one line, `\n` included, appended to `buf`.
pub(crate) fn encode_into(rec: &Record, buf: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    serde_json::to_writer(&mut *buf, rec)?;
    buf.push(b'\n');
    Ok(())
}

/// serde_json's message without its "at line 1 column N" (every line is parsed alone, so
/// its line number would mislead); the column is kept.
fn describe(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let msg = match text.rfind(" at line ") {
        Some(i) => &text[..i],
        None => &text,
    };
    if e.column() > 0 {
        format!("{msg} (column {})", e.column())
    } else {
        msg.to_string()
    }
}

/// `Net` as its text (`Display`/`FromStr`), so the file stays readable.
mod net_text {
    use portsentry_blocker::Net;
    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(net: &Net, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(net)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Net, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse()
            .map_err(|e| de::Error::custom(format!("field `net`: {e}")))
    }
}
