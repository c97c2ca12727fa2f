//! The `ipfw` backend (FreeBSD 11 and later): a named lookup table of blocked networks and
//! one deny rule that references it.
//!
//! In: [`Target`]s and [`Net`]s from the daemon, and [`Options`] (the ipfw path, table
//! name, rule number, time limit). Out: entries of the table and our rule, changed only
//! through `ipfw(8)` exec'd with an argv (never a shell) by the shared runner
//! `portsentry_exec::run`, with `LC_ALL=C`. Every argv is built by a pure function
//! ([`argv_table_add`], [`argv_rule_add`], ...) and every output is parsed strictly: a
//! line we do not understand is an error naming it. Must not: touch a rule or table
//! that is not ours, or panic on anything the tool does (missing, failing, hanging past
//! [`Options::limit`], printing nonsense: each is an [`IpfwError`]).
//!
//! Objects:
//! - the table: `ipfw table portsentry create type addr` (IPv4 and IPv6 keys in one
//!   table), made only when `ipfw table portsentry info` says it is absent; an existing
//!   `addr` table is kept with its entries, a table of our name with another type is an
//!   error.
//! - the rule: `ipfw -q add 45 deny ip from table(portsentry) to any` (`ip` matches IPv4
//!   and IPv6), made only when `ipfw list 45` says the number is free. If the number
//!   holds only rules that are not exactly ours, that is an error naming the number and
//!   what is there; nothing is added or deleted.
//!
//! Default rule number [`DEFAULT_RULE`] = 45: rules run in number order, so ours must come
//! before the rules that allow traffic. `/etc/rc.firewall` puts its NAT rule at 50 (after
//! an in-kernel `nat` the packet is accepted and no later rule is reached, unless
//! `one_pass` is disabled), its loopback rules at 100 to 500 and numbers every other rule
//! automatically from there in steps of 100 (`net.inet.ip.fw.autoinc_step`), up to the
//! default rule 65535. The Handbook's example ruleset allows the LAN and loopback
//! interfaces at 5 and 10 and starts `check-state` at 101. 45 is after those trusted
//! interfaces, before every NAT and allow rule of both, and not a multiple of ten (the
//! numbers people pick for their own rules), so it rarely collides; when it does,
//! [`Blocker::init`] says so and [`Options::rule`] moves it.
//!
//! Idempotence: `-q` on `table NAME add` turns an existing key into an update and on
//! `table NAME delete` makes an absent key success (sbin/ipfw/tables.c passes `do_quiet`
//! as the update flag and ignores `EEXIST` on add and `ENOENT` on delete). Adds go
//! [`CHUNK`] keys per call.
//!
//! [`Blocker::replace_all`] compares with `ipfw table NAME list`, adds the missing
//! networks, then deletes the unwanted ones: no wanted network is missing at any moment
//! (flush + add would leave the table empty between the two calls); unwanted entries stay
//! until the last delete call returns. [`Blocker::flush`] deletes our rule (only when its
//! number holds nothing else: `ipfw delete NUM` removes every rule of that number) and
//! destroys the table; a table still referenced by a rule is emptied instead.
//! [`Blocker::vanished`] is true when the table or the rule is missing (`ipfw -f flush`
//! or a reload of rc.firewall removes the rule; tables survive a rule flush).
//!
//! The crate builds and its tests run on every Unix: they use fake `ipfw` scripts.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod argv;
mod error;
mod ops;
mod parse;
mod run;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use portsentry_blocker::{BlockError, Blocker, Held, Net, Step, Target};

pub use argv::{
    argv_rule_add, argv_rule_delete, argv_rule_list, argv_table_add, argv_table_add_batches,
    argv_table_create, argv_table_delete, argv_table_delete_batches, argv_table_destroy,
    argv_table_flush, argv_table_info, argv_table_list, key, rule_body, valid_table_name, CHUNK,
    IPFW_PROGRAM, VALUE,
};
pub use error::IpfwError;

use ops::ReplaceError;

/// The backend's name.
pub const NAME: &str = "ipfw";

/// Our table's default name.
pub const DEFAULT_TABLE: &str = "portsentry";

/// Our rule's default number (why 45: see the crate documentation).
pub const DEFAULT_RULE: u16 = 45;

/// How long one `ipfw` run may take by default.
pub const DEFAULT_LIMIT: Duration = Duration::from_secs(10);

/// Where ipfw is and which objects are ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The program to run ([`IPFW_PROGRAM`]).
    pub ipfw: PathBuf,
    /// Our table ([`DEFAULT_TABLE`]); 1 to 63 of `A-Z a-z 0-9 _ - .`, not `all`.
    pub table: String,
    /// Our rule's number ([`DEFAULT_RULE`]); 1 to 65534.
    pub rule: u16,
    /// How long one run may take before it is killed ([`DEFAULT_LIMIT`]).
    pub limit: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            ipfw: PathBuf::from(IPFW_PROGRAM),
            table: DEFAULT_TABLE.to_string(),
            rule: DEFAULT_RULE,
            limit: DEFAULT_LIMIT,
        }
    }
}

/// An ipfw table and its deny rule as a [`Blocker`].
#[derive(Debug, Clone)]
pub struct Ipfw {
    opts: Options,
}

impl Ipfw {
    /// A backend with `opts`; nothing runs until a [`Blocker`] method is called (bad
    /// options are reported there, before anything runs).
    pub fn new(opts: Options) -> Ipfw {
        Ipfw { opts }
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }
}

fn fail(step: Step, net: Option<Net>) -> impl FnOnce(IpfwError) -> BlockError {
    move |e| {
        let net = e.net().or(net);
        BlockError::new(NAME, step, net, e)
    }
}

/// The one network of a batch worth naming in an error.
fn single(targets: &[Target]) -> Option<Net> {
    match targets {
        [t] => Some(t.net),
        _ => None,
    }
}

fn nets(targets: &[Target]) -> Vec<Net> {
    targets.iter().map(|t| t.net).collect()
}

impl Blocker for Ipfw {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Makes our table and rule exist (each only if missing).
    fn init(&mut self) -> Result<(), BlockError> {
        self.set_up().map_err(fail(Step::Init, None))
    }

    fn block(&mut self, target: &Target) -> Result<(), BlockError> {
        self.add(std::slice::from_ref(&target.net))
            .map_err(fail(Step::Block, Some(target.net)))
    }

    /// [`CHUNK`] networks per `ipfw` run.
    fn block_many(&mut self, targets: &[Target]) -> Result<(), BlockError> {
        self.add(&nets(targets))
            .map_err(fail(Step::Block, single(targets)))
    }

    /// Adds what is missing, then deletes what is not wanted (see the crate documentation).
    fn replace_all(&mut self, targets: &[Target]) -> Result<(), BlockError> {
        self.replace(&nets(targets)).map_err(|e| match e {
            ReplaceError::List(e) => fail(Step::List, None)(e),
            ReplaceError::Add(e) => fail(Step::Block, single(targets))(e),
            ReplaceError::Delete(e) => fail(Step::Unblock, None)(e),
        })
    }

    fn unblock(&mut self, net: &Net) -> Result<(), BlockError> {
        self.delete(std::slice::from_ref(net))
            .map_err(fail(Step::Unblock, Some(*net)))
    }

    /// Deletes our rule and destroys our table (see the crate documentation).
    fn flush(&mut self) -> Result<(), BlockError> {
        self.remove_all().map_err(fail(Step::Flush, None))
    }

    /// The table's entries (no table: nothing). ipfw keeps no timeout, so `remaining` is
    /// always `None`.
    fn list(&mut self) -> Result<Vec<Held>, BlockError> {
        let nets = self.held().map_err(fail(Step::List, None))?;
        Ok(Held::untimed(nets))
    }

    /// Our table or our rule is missing (two `ipfw` runs, one when the table is gone).
    fn vanished(&mut self) -> Result<bool, BlockError> {
        self.missing().map_err(fail(Step::List, None))
    }
}
