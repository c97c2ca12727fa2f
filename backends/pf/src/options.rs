//! What the pf backend is configured with, and the check of the names in it.
//!
//! In: the pfctl path, our anchor and table names, the time limit of one pfctl run.
//! Out: [`Options`] (with defaults `/sbin/pfctl`, `portsentry`, `portsentry`, 10 s) and
//! [`Options::check`], which refuses a name pf would refuse or that could change the
//! meaning of the rule text we load. Must not: touch the system.

use std::path::PathBuf;
use std::time::Duration;

use crate::argv::PFCTL_PROGRAM;
use crate::PfError;

/// pf's `PF_TABLE_NAME_SIZE` (32) minus the terminating NUL.
const TABLE_NAME_MAX: usize = 31;
/// pf's `PF_ANCHOR_NAME_SIZE` (64) minus the NUL: the longest path component.
const ANCHOR_COMPONENT_MAX: usize = 63;
/// `MAXPATHLEN` (1024) minus the NUL: the longest anchor path.
const ANCHOR_PATH_MAX: usize = 1023;

/// The configuration of [`crate::Pf`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The pfctl program, exec'd directly (never through a shell or `PATH`).
    pub pfctl: PathBuf,
    /// Our anchor (`-a`); may be a path such as `filters/portsentry`.
    pub anchor: String,
    /// Our table inside the anchor (`-t`).
    pub table: String,
    /// How long one pfctl run may take before its process group is killed.
    pub limit: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            pfctl: PathBuf::from(PFCTL_PROGRAM),
            anchor: "portsentry".to_string(),
            table: "portsentry".to_string(),
            limit: Duration::from_secs(10),
        }
    }
}

/// Letters, digits, `_`, `-` and `.`: what pf.conf accepts unquoted in a name, and
/// nothing that could end `<table>` or a line of the ruleset we load.
fn plain(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

fn bad(what: &'static str, name: &str, why: &'static str) -> PfError {
    PfError::BadName {
        what,
        name: name.to_string(),
        why,
    }
}

impl Options {
    /// Refuses names pf would refuse or that are not plain words.
    pub fn check(&self) -> Result<(), PfError> {
        let table = self.table.as_str();
        if table.is_empty() {
            return Err(bad("table", table, "it is empty"));
        }
        if table.len() > TABLE_NAME_MAX {
            return Err(bad("table", table, "longer than 31 bytes"));
        }
        if !plain(table) {
            return Err(bad(
                "table",
                table,
                "only letters, digits, '_', '-' and '.' are allowed",
            ));
        }
        let anchor = self.anchor.as_str();
        if anchor.is_empty() {
            return Err(bad(
                "anchor",
                anchor,
                "it is empty (that is the main ruleset)",
            ));
        }
        if anchor.len() > ANCHOR_PATH_MAX {
            return Err(bad("anchor", anchor, "longer than 1023 bytes"));
        }
        for part in anchor.split('/') {
            if part.is_empty() {
                return Err(bad("anchor", anchor, "an empty path component"));
            }
            if part.len() > ANCHOR_COMPONENT_MAX {
                return Err(bad(
                    "anchor",
                    anchor,
                    "a path component longer than 63 bytes",
                ));
            }
            if !plain(part) {
                return Err(bad(
                    "anchor",
                    anchor,
                    "only letters, digits, '_', '-', '.' and '/' are allowed",
                ));
            }
            if part.starts_with('_') {
                return Err(bad(
                    "anchor",
                    anchor,
                    "names starting with '_' are reserved by pf",
                ));
            }
        }
        Ok(())
    }
}
