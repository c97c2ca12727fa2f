//! The steps of the backend: each one or a few `ipfw(8)` runs, judged by exit status,
//! stderr and parsed stdout.
//!
//! In: the [`Options`](crate::Options) of an [`Ipfw`] and networks. Out: our table and
//! rule made, changed, read or removed, or an [`IpfwError`]. The stderr texts that mean
//! "nothing to do" are those of FreeBSD's sbin/ipfw (tables.c, ipfw2.c) with `LC_ALL=C`.
//! Must not: touch a rule or table that is not ours (a foreign rule at our number, a
//! table of our name with another type), or delete a rule number other rules share.

use std::collections::HashSet;
use std::net::IpAddr;

use portsentry_blocker::Net;

use crate::argv::{
    argv_rule_add, argv_rule_delete, argv_rule_list, argv_table_add_batches, argv_table_create,
    argv_table_delete_batches, argv_table_destroy, argv_table_flush, argv_table_info,
    argv_table_list, rule_body, valid_table_name,
};
use crate::run::{self, Done};
use crate::{parse, Ipfw, IpfwError};

/// `err(EX_OSERR, "failed to request table info")` with `ESRCH`: the table does not exist
/// (`table NAME info`, `table NAME list`).
const NO_TABLE: &str = "No such process";
/// `err(EX_OSERR, "Table creation failed")` with `EEXIST`.
const TABLE_EXISTS: &str = "File exists";

/// What our table name holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TableState {
    Absent,
    /// An `addr` table: ours.
    Addr,
    /// A table of another type.
    Other(String),
}

/// What our rule number holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RuleState {
    Absent,
    /// Only our rule (possibly more than once).
    Ours,
    /// Our rule and others with the same number (their bodies).
    Shared(Vec<String>),
    /// Only rules that are not ours (their bodies).
    Foreign(Vec<String>),
}

/// Whether ipfw refuses `net` as a table key: an IPv4-compatible IPv6 address
/// (`IN6_IS_ADDR_V4COMPAT`: the first 96 bits zero, the last 32 bits above 1); tables.c
/// answers "Use IPv4 instead of v4-compatible" and rejects the whole call.
fn v4_compatible(net: &Net) -> bool {
    match net.addr() {
        IpAddr::V6(a) => {
            let s = a.segments();
            s[..6].iter().all(|x| *x == 0) && (u32::from(s[6]) << 16 | u32::from(s[7])) > 1
        }
        IpAddr::V4(_) => false,
    }
}

impl Ipfw {
    fn run(&self, argv: &[String]) -> Result<Done, IpfwError> {
        run::run(&self.opts.ipfw, argv, self.opts.limit)
    }

    /// Runs `argv`; anything but exit status 0 is an error.
    fn run_ok(&self, argv: &[String]) -> Result<Done, IpfwError> {
        let done = self.run(argv)?;
        if done.success {
            Ok(done)
        } else {
            Err(done.failed())
        }
    }

    /// Refuses options ipfw cannot take, before anything runs.
    pub(crate) fn check(&self) -> Result<(), IpfwError> {
        if !valid_table_name(&self.opts.table) {
            return Err(IpfwError::BadTable {
                table: self.opts.table.clone(),
            });
        }
        if self.opts.rule == 0 || self.opts.rule == u16::MAX {
            return Err(IpfwError::BadRule {
                rule: self.opts.rule,
            });
        }
        Ok(())
    }

    /// `ipfw table NAME info`: absent, ours, or another type.
    pub(crate) fn table_state(&self) -> Result<TableState, IpfwError> {
        let done = self.run(&argv_table_info(&self.opts.table))?;
        if !done.success {
            return if done.stderr.contains(NO_TABLE) {
                Ok(TableState::Absent)
            } else {
                Err(done.failed())
            };
        }
        match parse::table_type(&done.stdout) {
            Some(t) if t == "addr" => Ok(TableState::Addr),
            Some(t) => Ok(TableState::Other(t)),
            None => {
                let line = done
                    .stdout
                    .lines()
                    .next()
                    .unwrap_or("(no output)")
                    .to_string();
                Err(done.unparseable(line))
            }
        }
    }

    /// `ipfw list NUM`: what our rule number holds.
    pub(crate) fn rule_state(&self) -> Result<RuleState, IpfwError> {
        let rule = self.opts.rule;
        let done = self.run(&argv_rule_list(rule))?;
        if !done.success {
            // warnx("rule %u does not exist"), exit EX_UNAVAILABLE
            return if done.stderr.contains(&format!("rule {rule} does not exist")) {
                Ok(RuleState::Absent)
            } else {
                Err(done.failed())
            };
        }
        let rules = match parse::rule_list(&done.stdout) {
            Ok(r) => r,
            Err(line) => return Err(done.unparseable(line)),
        };
        if let Some((n, body)) = rules.iter().find(|(n, _)| *n != u32::from(rule)) {
            let line = format!("{n:05} {body}");
            return Err(done.unparseable(line));
        }
        if rules.is_empty() {
            // The number exists (exit 0) but nothing was printed: list_static_range counts
            // a rule of a disabled set without showing it.
            return Ok(RuleState::Foreign(vec![
                "a rule that is not shown (in a disabled set?)".to_string(),
            ]));
        }
        let ours = rule_body(&self.opts.table);
        let others: Vec<String> = rules
            .iter()
            .filter(|(_, b)| *b != ours)
            .map(|(_, b)| b.clone())
            .collect();
        Ok(if others.len() == rules.len() {
            RuleState::Foreign(others)
        } else if others.is_empty() {
            RuleState::Ours
        } else {
            RuleState::Shared(others)
        })
    }

    /// Makes our `addr` table exist; an existing one is kept with its entries.
    fn ensure_table(&self) -> Result<(), IpfwError> {
        match self.table_state()? {
            TableState::Addr => return Ok(()),
            TableState::Other(found) => {
                return Err(IpfwError::WrongTableType {
                    table: self.opts.table.clone(),
                    found,
                })
            }
            TableState::Absent => {}
        }
        let done = self.run(&argv_table_create(&self.opts.table))?;
        if done.success {
            return Ok(());
        }
        if !done.stderr.contains(TABLE_EXISTS) {
            return Err(done.failed());
        }
        // Created meanwhile by someone else: fine if it holds addresses.
        match self.table_state()? {
            TableState::Addr => Ok(()),
            TableState::Other(found) => Err(IpfwError::WrongTableType {
                table: self.opts.table.clone(),
                found,
            }),
            TableState::Absent => Err(done.failed()),
        }
    }

    /// Our table and our rule, each made only if missing. The rule number is checked
    /// first, so a foreign rule there leaves everything untouched.
    pub(crate) fn set_up(&self) -> Result<(), IpfwError> {
        self.check()?;
        let rule = self.rule_state()?;
        if let RuleState::Foreign(found) = &rule {
            return Err(IpfwError::ForeignRule {
                rule: self.opts.rule,
                found: found.join("; "),
            });
        }
        self.ensure_table()?;
        if rule == RuleState::Absent {
            self.run_ok(&argv_rule_add(self.opts.rule, &self.opts.table))?;
        }
        Ok(())
    }

    /// Adds `nets` to the table, [`crate::CHUNK`] per call; existing keys are updated
    /// (success). Networks ipfw refuses are left out, the rest is added, and then the
    /// first refused one is the error.
    pub(crate) fn add(&self, nets: &[Net]) -> Result<(), IpfwError> {
        self.check()?;
        let (refused, good): (Vec<Net>, Vec<Net>) = nets.iter().partition(|n| v4_compatible(n));
        for argv in argv_table_add_batches(&self.opts.table, &good) {
            self.run_ok(&argv)?;
        }
        match refused.first() {
            Some(net) => Err(IpfwError::Unrepresentable { net: *net }),
            None => Ok(()),
        }
    }

    /// Deletes `nets` from the table, [`crate::CHUNK`] per call; absent keys and an absent
    /// table are success.
    pub(crate) fn delete(&self, nets: &[Net]) -> Result<(), IpfwError> {
        self.check()?;
        // A key ipfw refuses can never be in the table.
        let nets: Vec<Net> = nets.iter().copied().filter(|n| !v4_compatible(n)).collect();
        // errx(EX_DATAERR, "Table %s does not exist")
        let no_table = format!("Table {} does not exist", self.opts.table);
        for argv in argv_table_delete_batches(&self.opts.table, &nets) {
            let done = self.run(&argv)?;
            if done.success {
                continue;
            }
            if done.stderr.contains(&no_table) {
                return Ok(());
            }
            return Err(done.failed());
        }
        Ok(())
    }

    /// The table's entries; an absent table holds nothing.
    pub(crate) fn held(&self) -> Result<Vec<Net>, IpfwError> {
        self.check()?;
        let done = self.run(&argv_table_list(&self.opts.table))?;
        if !done.success {
            return if done.stderr.contains(NO_TABLE) {
                Ok(Vec::new())
            } else {
                Err(done.failed())
            };
        }
        match parse::table_list(&self.opts.table, &done.stdout) {
            Ok(nets) => Ok(nets),
            Err(line) => Err(done.unparseable(line)),
        }
    }

    /// Makes the table hold exactly `nets`: adds what is missing, then deletes what is
    /// not wanted, so no wanted network is missing at any moment.
    pub(crate) fn replace(&self, nets: &[Net]) -> Result<(), ReplaceError> {
        let held: HashSet<Net> = self
            .held()
            .map_err(ReplaceError::List)?
            .into_iter()
            .collect();
        let mut want = HashSet::new();
        let to_add: Vec<Net> = nets
            .iter()
            .copied()
            .filter(|n| want.insert(*n) && !held.contains(n))
            .collect();
        let mut to_delete: Vec<Net> = held.difference(&want).copied().collect();
        to_delete.sort();
        self.add(&to_add).map_err(ReplaceError::Add)?;
        self.delete(&to_delete).map_err(ReplaceError::Delete)
    }

    /// Removes our rule (when its number holds only ours) and our table. A table still
    /// referenced by another rule cannot be destroyed (`EBUSY`); it is emptied instead.
    pub(crate) fn remove_all(&self) -> Result<(), IpfwError> {
        self.check()?;
        if self.rule_state()? == RuleState::Ours {
            self.run_ok(&argv_rule_delete(self.opts.rule))?;
        }
        // An absent table is success here: destroy only warns about ESRCH, and -q
        // silences the warning.
        if self.run(&argv_table_destroy(&self.opts.table))?.success {
            return Ok(());
        }
        self.run_ok(&argv_table_flush(&self.opts.table)).map(|_| ())
    }

    /// Whether our table (of type `addr`) or our rule is missing.
    pub(crate) fn missing(&self) -> Result<bool, IpfwError> {
        self.check()?;
        if self.table_state()? != TableState::Addr {
            return Ok(true);
        }
        Ok(!matches!(
            self.rule_state()?,
            RuleState::Ours | RuleState::Shared(_)
        ))
    }
}

/// Which part of a replacement failed.
#[derive(Debug)]
pub(crate) enum ReplaceError {
    List(IpfwError),
    Add(IpfwError),
    Delete(IpfwError),
}
