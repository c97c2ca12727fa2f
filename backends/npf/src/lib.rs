//! The `npf` backend: blocks networks through a table of NetBSD's NPF packet filter.
//!
//! In: [`Target`]s and [`Net`]s from the daemon. Out: entries of one NPF table (default
//! `portsentry`), changed with `npfctl(8)` exec'd by argv through the shared runner
//! ([`portsentry_exec::run`]: never a shell, `LC_ALL=C`, a time limit). The argvs are
//! built by pure functions ([`argv_add`] ...), npfctl's output read by pure ones
//! ([`parse_list`] ...). Must not: edit `/etc/npf.conf`, reload or flush the NPF
//! configuration, or touch any table but ours.
//!
//! The admin declares the table and the rule that blocks it (npf.conf(5), NetBSD 9 and
//! later; [`setup_hint`] prints the lines): `table <portsentry> type lpm` and, first in
//! `group default`, `block in final from <portsentry>`. `type lpm` because only an `lpm`
//! table holds networks (`BLOCK_PREFIX_V6` below 128 blocks IPv6 networks); `type ipset`
//! works while every target is a host, and a network is then refused with
//! [`NpfError::NetworkRefused`]. [`Blocker::init`] only checks that the table is loaded
//! (`npfctl table portsentry list`); NPF cannot create a table without a reload.
//!
//! Commands and costs (one npfctl run each, a few milliseconds):
//! - `block`: `table NAME add ADDR`; "entry already exists or is conflicting" is success
//!   for a host (it, or in an `lpm` table a network holding it, is there); for a network
//!   the table is listed to tell "already blocked" from a narrower entry at its start
//!   ([`NpfError::Conflict`]).
//! - `block_many`: fewer than [`BULK_MIN`] targets are added one by one; more take two
//!   runs: `list`, then `table NAME replace -` loading the union from stdin (NetBSD 10;
//!   the kernel swaps the whole table atomically). An npfctl without `replace` (NetBSD 9
//!   and older) gets one `add` per missing entry instead, about 10 000 runs for 10 000.
//! - `replace_all`: one `replace` run (fallback as above, plus one `rem` per extra entry).
//! - `unblock`: `list`, then `rem` only when exactly that network is held: an `lpm`
//!   table's `rem ADDR` removes the longest prefix holding ADDR, so a `rem` of a host that
//!   is not held would lift the network holding it. "not found" is success.
//! - `flush`: `table NAME flush`. `list`: `table NAME list`, every entry with no timeout
//!   (NPF tables keep none; the daemon's store expires). `vanished`:
//!   `table NAME test 0.0.0.0`, which fails with "invalid address, mask or table ID" only
//!   when no table has the name.
//!
//! No table loaded: `list` holds nothing, `unblock` and `flush` have nothing to do,
//! `init` and every block fail with [`NpfError::TableMissing`], `vanished` is true.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod argv;
mod error;
mod parse;
mod tool;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

pub use argv::{
    argv_add, argv_flush, argv_list, argv_rem, argv_replace, argv_test, table_file, NPFCTL_PROGRAM,
    PROBE_ADDR,
};
pub use error::{setup_hint, NpfError};
pub use parse::{normalize, parse_list};

use parse::{covered, narrower_at_start, says_only, Said};
use portsentry_blocker::{BlockError, Blocker, Held, Net, Step, Target};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;
use tool::{Failure, Outcome};

/// The backend's name.
pub const NAME: &str = "npf";

/// From this many targets on, `block_many` rewrites the table with one `replace` instead
/// of one `add` per target.
pub const BULK_MIN: usize = 16;

/// Where npfctl is, which table is ours, how long npfctl may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Default [`NPFCTL_PROGRAM`].
    pub npfctl: PathBuf,
    /// The table's name as npf.conf writes it between `<` and `>`; default `portsentry`.
    pub table: String,
    /// The time limit of one npfctl run; default 10 s.
    pub limit: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            npfctl: PathBuf::from(NPFCTL_PROGRAM),
            table: "portsentry".to_string(),
            limit: Duration::from_secs(10),
        }
    }
}

/// Whether `name` can name an NPF table: 1 to 31 bytes (`NPF_TABLE_MAXNAMELEN` is 32 with
/// the NUL) of letters, digits, `_` and `-`, not starting with `-`. Names starting with
/// `.` are NPF's own hidden tables.
fn table_name_ok(name: &str) -> bool {
    (1..=31).contains(&name.len())
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What a `replace` did.
enum Replaced {
    Done,
    /// This npfctl cannot `replace` (from stdin).
    Unsupported,
    /// The table is not of type `lpm` and the file had networks.
    MasksRefused(Failure),
}

/// An NPF table driven by npfctl, as a [`Blocker`].
#[derive(Debug, Clone)]
pub struct Npf {
    opts: Options,
}

impl Npf {
    /// A backend with `opts`. Runs nothing; the table name is checked before every run.
    pub fn new(opts: Options) -> Npf {
        Npf { opts }
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    fn run(&self, argv: &[String], stdin: Option<&[u8]>) -> Result<Outcome, NpfError> {
        if !table_name_ok(&self.opts.table) {
            return Err(NpfError::BadTableName(self.opts.table.clone()));
        }
        tool::run(argv, stdin, self.opts.limit)
    }

    fn missing(&self, f: Failure) -> NpfError {
        NpfError::TableMissing {
            table: self.opts.table.clone(),
            argv: f.argv,
            stderr: f.stderr,
        }
    }

    /// A successful run must print only `npfctl: success` (or nothing).
    fn expect_success(argv: &[String], stdout: String) -> Result<(), NpfError> {
        if says_only(&stdout, &["success"]) {
            Ok(())
        } else {
            Err(NpfError::Unexpected {
                argv: argv.join(" "),
                output: stdout,
            })
        }
    }

    /// The table's entries, in npfctl's order (`table NAME list`);
    /// [`NpfError::TableMissing`] when no table has our name.
    pub fn held(&self) -> Result<Vec<Net>, NpfError> {
        let argv = argv_list(&self.opts.npfctl, &self.opts.table);
        match self.run(&argv, None)? {
            Outcome::Done(out) => parse_list(&out).map_err(|line| NpfError::BadLine {
                argv: argv.join(" "),
                line,
            }),
            // `list` sends no address: EINVAL can only be "no such table".
            Outcome::Failed(f) if f.said == Said::Invalid => Err(self.missing(f)),
            Outcome::Failed(f) => Err(f.error()),
        }
    }

    /// Whether a table with our name is loaded (`table NAME test 0.0.0.0`: a match and
    /// "not found" both say it is; "invalid address, mask or table ID" says it is not).
    pub fn table_exists(&self) -> Result<bool, NpfError> {
        let argv = argv_test(&self.opts.npfctl, &self.opts.table);
        match self.run(&argv, None)? {
            Outcome::Done(out) if says_only(&out, &["match", "matching entry found"]) => Ok(true),
            Outcome::Done(out) => Err(NpfError::Unexpected {
                argv: argv.join(" "),
                output: out,
            }),
            Outcome::Failed(f) => match f.said {
                Said::NotFound => Ok(true),
                Said::Invalid => Ok(false),
                _ => Err(f.error()),
            },
        }
    }

    /// `table NAME add NET`, "already there" being success (see the module doc).
    fn add(&self, net: &Net) -> Result<(), NpfError> {
        let argv = argv_add(&self.opts.npfctl, &self.opts.table, net);
        let f = match self.run(&argv, None)? {
            Outcome::Done(out) => return Self::expect_success(&argv, out),
            Outcome::Failed(f) => f,
        };
        match f.said {
            Said::Exists if net.is_host() => Ok(()),
            Said::Exists => {
                let held = self.held()?;
                let set: HashSet<Net> = held.iter().copied().collect();
                if covered(net, &set) {
                    return Ok(());
                }
                match narrower_at_start(net, &held) {
                    Some(inside) => Err(NpfError::Conflict {
                        table: self.opts.table.clone(),
                        net: *net,
                        inside,
                    }),
                    None => Err(f.error()),
                }
            }
            // No such table, or (for a network) a table that takes no masks.
            Said::Invalid => match self.held() {
                Err(e) if e.table_missing() => Err(self.missing(f)),
                Err(e) => Err(e),
                Ok(_) if !net.is_host() => Err(NpfError::NetworkRefused {
                    table: self.opts.table.clone(),
                    net: *net,
                    argv: f.argv,
                    stderr: f.stderr,
                }),
                Ok(_) => Err(f.error()),
            },
            _ => Err(f.error()),
        }
    }

    /// `table NAME rem NET`; "not found" is success. Callers check first that exactly
    /// `net` is held.
    fn rem(&self, net: &Net) -> Result<(), NpfError> {
        let argv = argv_rem(&self.opts.npfctl, &self.opts.table, net);
        match self.run(&argv, None)? {
            Outcome::Done(out) => Self::expect_success(&argv, out),
            Outcome::Failed(f) if f.said == Said::NotFound => Ok(()),
            Outcome::Failed(f) => Err(f.error()),
        }
    }

    /// Lifts exactly `net` if the table holds it; anything else (no table, not held, only
    /// a network holding it) is left alone and is success.
    pub fn remove(&self, net: &Net) -> Result<(), NpfError> {
        let held = match self.held() {
            Err(e) if e.table_missing() => return Ok(()),
            r => r?,
        };
        if held.contains(net) {
            self.rem(net)?;
        }
        Ok(())
    }

    /// `table NAME flush`; no table is success (nothing of ours to remove).
    pub fn flush_table(&self) -> Result<(), NpfError> {
        let argv = argv_flush(&self.opts.npfctl, &self.opts.table);
        match self.run(&argv, None)? {
            Outcome::Done(out) => Self::expect_success(&argv, out),
            // EINVAL: no such table, or one that cannot be flushed (type const).
            Outcome::Failed(f) if f.said == Said::Invalid => match self.table_exists()? {
                false => Ok(()),
                true => Err(f.error()),
            },
            Outcome::Failed(f) => Err(f.error()),
        }
    }

    /// `table NAME replace -` with `nets` (normalised) on stdin.
    fn replace(&self, nets: &[Net]) -> Result<Replaced, NpfError> {
        let argv = argv_replace(&self.opts.npfctl, &self.opts.table);
        let file = table_file(nets);
        match self.run(&argv, Some(file.as_bytes()))? {
            Outcome::Done(out) => Self::expect_success(&argv, out).map(|_| Replaced::Done),
            Outcome::Failed(f) => match f.said {
                Said::NoReplace => Ok(Replaced::Unsupported),
                Said::NoTable => Err(self.missing(f)),
                Said::MaskNeedsLpm => Ok(Replaced::MasksRefused(f)),
                _ => Err(f.error()),
            },
        }
    }

    /// Makes the table hold exactly `wanted` (normalised): one `replace`, or, where
    /// npfctl has none, one run per difference. A table that takes no networks gets the
    /// hosts, and the error names the first network.
    fn put_exact(&self, wanted: &[Net]) -> Result<(), NpfError> {
        match self.replace(wanted)? {
            Replaced::Done => Ok(()),
            Replaced::Unsupported => self.converge(wanted),
            Replaced::MasksRefused(f) => {
                let hosts: Vec<Net> = wanted.iter().copied().filter(Net::is_host).collect();
                match self.replace(&hosts)? {
                    Replaced::Done => {}
                    Replaced::Unsupported => self.converge(&hosts)?,
                    Replaced::MasksRefused(g) => return Err(g.error()),
                }
                match wanted.iter().find(|n| !n.is_host()) {
                    Some(net) => Err(NpfError::NetworkRefused {
                        table: self.opts.table.clone(),
                        net: *net,
                        argv: f.argv,
                        stderr: f.stderr,
                    }),
                    None => Err(f.error()),
                }
            }
        }
    }

    /// [`Npf::put_exact`] without `replace`: lifts first the entries that would make an
    /// add of a wanted network a no-op or a conflict (those holding its first address),
    /// adds what is missing, then lifts the rest. Narrowest first, since `rem` finds the
    /// longest prefix.
    fn converge(&self, wanted: &[Net]) -> Result<(), NpfError> {
        let held = self.held()?;
        let want: HashSet<Net> = wanted.iter().copied().collect();
        let mut extra: Vec<Net> = held.iter().copied().filter(|h| !want.contains(h)).collect();
        extra.sort_by_key(|n| std::cmp::Reverse(n.prefix()));
        let (first, later): (Vec<Net>, Vec<Net>) = extra
            .into_iter()
            .partition(|e| wanted.iter().any(|w| e.contains(w.addr())));
        for e in &first {
            self.rem(e)?;
        }
        let have: HashSet<Net> = held.into_iter().collect();
        for w in wanted.iter().filter(|w| !have.contains(w)) {
            self.add(w)?;
        }
        for e in &later {
            self.rem(e)?;
        }
        Ok(())
    }

    /// Blocks `targets` with `list` and one `replace` (see the module doc).
    fn block_bulk(&self, targets: &[Target]) -> Result<(), NpfError> {
        let held = self.held()?;
        let set: HashSet<Net> = held.iter().copied().collect();
        if targets.iter().all(|t| covered(&t.net, &set)) {
            return Ok(());
        }
        let wanted = normalize(held.into_iter().chain(targets.iter().map(|t| t.net)));
        self.put_exact(&wanted)
    }
}

/// The one address of a batch worth naming in an error, or the one the error names.
fn block_error(e: NpfError, targets: &[Target]) -> BlockError {
    let net = e.net().or(match targets {
        [t] => Some(t.net),
        _ => None,
    });
    BlockError::new(NAME, Step::Block, net, e)
}

fn fail(step: Step, net: Option<Net>) -> impl FnOnce(NpfError) -> BlockError {
    move |e| BlockError::new(NAME, step, net, e)
}

impl Blocker for Npf {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Checks that our table is loaded ([`NpfError::TableMissing`] prints the npf.conf
    /// lines) and that its listing parses. Creates nothing.
    fn init(&mut self) -> Result<(), BlockError> {
        self.held().map(|_| ()).map_err(fail(Step::Init, None))
    }

    /// `table NAME add ADDR`. The target's timeout is not used: NPF tables keep none.
    fn block(&mut self, target: &Target) -> Result<(), BlockError> {
        self.add(&target.net)
            .map_err(|e| block_error(e, std::slice::from_ref(target)))
    }

    /// Fewer than [`BULK_MIN`] targets: one `add` each; more: `list` and one `replace`.
    fn block_many(&mut self, targets: &[Target]) -> Result<(), BlockError> {
        if targets.len() < BULK_MIN {
            return targets.iter().try_for_each(|t| self.block(t));
        }
        self.block_bulk(targets)
            .map_err(|e| block_error(e, targets))
    }

    /// One `replace` (atomic in the kernel) loading exactly the targets.
    fn replace_all(&mut self, targets: &[Target]) -> Result<(), BlockError> {
        self.put_exact(&normalize(targets.iter().map(|t| t.net)))
            .map_err(|e| block_error(e, targets))
    }

    fn unblock(&mut self, net: &Net) -> Result<(), BlockError> {
        self.remove(net).map_err(fail(Step::Unblock, Some(*net)))
    }

    fn flush(&mut self) -> Result<(), BlockError> {
        self.flush_table().map_err(fail(Step::Flush, None))
    }

    /// Every entry, with no remaining time; no table holds nothing.
    fn list(&mut self) -> Result<Vec<Held>, BlockError> {
        match self.held() {
            Ok(nets) => Ok(Held::untimed(nets)),
            Err(e) if e.table_missing() => Ok(Vec::new()),
            Err(e) => Err(fail(Step::List, None)(e)),
        }
    }

    /// Our table is no longer loaded (`npfctl flush`, a reload of an npf.conf without it).
    fn vanished(&mut self) -> Result<bool, BlockError> {
        self.table_exists()
            .map(|t| !t)
            .map_err(fail(Step::List, None))
    }
}
