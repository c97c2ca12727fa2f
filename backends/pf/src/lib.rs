//! The `pf` backend: blocks networks through a pf table inside our own anchor (OpenBSD,
//! FreeBSD).
//!
//! In: [`Target`]s and [`Net`]s from the daemon, and [`Options`] (pfctl path, anchor,
//! table, time limit). Out: the entries of table `<portsentry>` inside anchor
//! `portsentry`, changed by pfctl(8) exec'd with an argv through the shared runner, never
//! a shell: one pfctl run per operation, with any number of addresses on stdin for
//! [`Blocker::block_many`] and [`Blocker::replace_all`]. The anchor holds exactly
//! [`anchor_ruleset`]: the table (`persist`) and `block drop in quick from <portsentry>
//! to any`. The admin calls the anchor from /etc/pf.conf (`anchor "portsentry"`);
//! [`Blocker::init`] checks that line and refuses to go on without it. After an address
//! is newly added, the states it already has are killed (`pfctl -k`), so an established
//! connection does not outlive the block.
//!
//! Must not: touch any rule, table or anchor but ours; edit pf.conf; keep expiry (pf
//! tables have no per-entry timeout, so [`Target::timeout`] is ignored and the daemon
//! expires and unblocks). Nothing here is cfg-gated: the crate builds, and its tests run
//! against fake pfctl scripts, on every Unix.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod argv;
mod error;
mod options;
mod parse;
mod run;
#[cfg(test)]
mod tests;

pub use argv::{
    address_lines, anchor_ruleset, argv_add, argv_add_stdin, argv_anchor_rules, argv_anchor_tables,
    argv_delete, argv_flush, argv_kill_states, argv_load_anchor, argv_main_rules,
    argv_replace_stdin, argv_show, PFCTL_PROGRAM,
};
pub use error::PfError;
pub use options::Options;

use portsentry_blocker::{BlockError, Blocker, Held, Net, Step, Target};

use run::Output;

/// The backend's name.
pub const NAME: &str = "pf";

/// At most this many `pfctl -k` runs follow one [`Blocker::block_many`]: the first
/// targets of a batch get their states killed, the others keep theirs until pf's state
/// timeouts end them (the block already drops their new packets). Large batches are
/// start-up and reapply, where the hosts were blocked before; one exec per host there
/// would cost seconds. [`Blocker::replace_all`] kills no states, for the same reason.
pub const STATE_KILLS_MAX: usize = 16;

/// How many warnings [`Pf::take_warnings`] keeps (the oldest are dropped).
const WARNINGS_KEPT: usize = 64;

/// A pf table in our anchor, as a [`Blocker`].
#[derive(Debug, Clone)]
pub struct Pf {
    options: Options,
    warnings: Vec<String>,
}

fn fail(step: Step, net: Option<Net>) -> impl FnOnce(PfError) -> BlockError {
    move |e| BlockError::new(NAME, step, net, e)
}

/// The one address of a batch worth naming in an error.
fn single(targets: &[Target]) -> Option<Net> {
    match targets {
        [t] => Some(t.net),
        _ => None,
    }
}

impl Pf {
    /// A backend with `options`; nothing runs until a [`Blocker`] method is called, and
    /// every call checks the names first.
    pub fn new(options: Options) -> Pf {
        Pf {
            options,
            warnings: Vec::new(),
        }
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    fn warn(&mut self, text: String) {
        if self.warnings.len() >= WARNINGS_KEPT {
            self.warnings.remove(0);
        }
        self.warnings.push(text);
    }

    fn run(&self, argv: &[String], stdin: Option<&[u8]>) -> Result<Output, PfError> {
        run::run(&self.options, argv, stdin)
    }

    /// `pfctl -k NET` for each of `nets`; a failure is a warning, not a failed block.
    fn kill_states<'a>(&mut self, nets: impl IntoIterator<Item = &'a Net>) {
        for net in nets {
            if let Err(e) = self.run(&argv_kill_states(net), None) {
                self.warn(format!(
                    "{NAME}: {net} is blocked, but its existing states were not killed: {e}"
                ));
            }
        }
    }

    /// Runs a command that removes entries; a missing table or anchor means there is
    /// nothing to remove, which is success.
    fn remove(&self, argv: &[String]) -> Result<(), PfError> {
        match self.run(argv, None) {
            Ok(_) => Ok(()),
            Err(PfError::Exit { ref stderr, .. }) if parse::absent(stderr) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn anchor(&self) -> &str {
        &self.options.anchor
    }

    fn table(&self) -> &str {
        &self.options.table
    }
}

impl Blocker for Pf {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Problems that did not fail a step (a `pfctl -k` that failed after the block
    /// itself succeeded), oldest first; taking them empties the list.
    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Checks that the main ruleset calls our anchor (else [`PfError::AnchorNotReferenced`],
    /// whose message is the pf.conf line to add), then loads [`anchor_ruleset`] into the
    /// anchor. Loading again replaces our one rule with itself and keeps every entry of
    /// the table (see [`anchor_ruleset`]).
    fn init(&mut self) -> Result<(), BlockError> {
        let main = self
            .run(&argv_main_rules(), None)
            .map_err(fail(Step::Init, None))?;
        if !parse::references_anchor(&main.stdout, self.anchor()) {
            return Err(fail(Step::Init, None)(PfError::AnchorNotReferenced {
                anchor: self.anchor().to_string(),
            }));
        }
        let ruleset = anchor_ruleset(self.table());
        self.run(&argv_load_anchor(self.anchor()), Some(ruleset.as_bytes()))
            .map(|_| ())
            .map_err(fail(Step::Init, None))
    }

    /// `-T add ADDR` (pfctl creates the table if it is missing); then, unless pfctl
    /// reported `0/1 addresses added.` (already blocked), kills the host's states.
    fn block(&mut self, target: &Target) -> Result<(), BlockError> {
        let net = target.net;
        let out = self
            .run(&argv_add(self.anchor(), self.table(), &net), None)
            .map_err(fail(Step::Block, Some(net)))?;
        if parse::added(&out.stderr) != Some(0) {
            self.kill_states([&net]);
        }
        Ok(())
    }

    /// One `-T add -f -` for any number of targets; then states are killed for at most
    /// [`STATE_KILLS_MAX`] of them (none when pfctl reported that nothing was new).
    fn block_many(&mut self, targets: &[Target]) -> Result<(), BlockError> {
        if targets.is_empty() {
            return Ok(());
        }
        let input = address_lines(targets.iter().map(|t| &t.net));
        let out = self
            .run(&argv_add_stdin(self.anchor(), self.table()), Some(&input))
            .map_err(fail(Step::Block, single(targets)))?;
        if parse::added(&out.stderr) != Some(0) {
            self.kill_states(targets.iter().take(STATE_KILLS_MAX).map(|t| &t.net));
        }
        Ok(())
    }

    /// One `-T replace -f -`: the kernel swaps the table's contents in one ioctl, so no
    /// target that stays is missing at any moment. Kills no states (see
    /// [`STATE_KILLS_MAX`]).
    fn replace_all(&mut self, targets: &[Target]) -> Result<(), BlockError> {
        let input = address_lines(targets.iter().map(|t| &t.net));
        self.run(
            &argv_replace_stdin(self.anchor(), self.table()),
            Some(&input),
        )
        .map(|_| ())
        .map_err(fail(Step::Block, single(targets)))
    }

    /// `-T delete ADDR`; `0/1 addresses deleted.` (absent) and a missing table are success.
    fn unblock(&mut self, net: &Net) -> Result<(), BlockError> {
        self.remove(&argv_delete(self.anchor(), self.table(), net))
            .map_err(fail(Step::Unblock, Some(*net)))
    }

    /// `-T flush`: empties our table (a missing one is already empty). Our anchor rule
    /// stays; with an empty table it blocks nothing.
    fn flush(&mut self) -> Result<(), BlockError> {
        self.remove(&argv_flush(self.anchor(), self.table()))
            .map_err(fail(Step::Flush, None))
    }

    /// `-T show`, parsed; a missing table holds nothing. `remaining` is always `None`.
    fn list(&mut self) -> Result<Vec<Held>, BlockError> {
        let out = match self.run(&argv_show(self.anchor(), self.table()), None) {
            Ok(out) => out,
            Err(PfError::Exit { ref stderr, .. }) if parse::absent(stderr) => return Ok(Vec::new()),
            Err(e) => return Err(fail(Step::List, None)(e)),
        };
        let nets = parse::entries(&out.stdout).map_err(|(line, why)| {
            fail(Step::List, None)(PfError::Unexpected {
                argv: out.argv.clone(),
                line,
                why,
            })
        })?;
        Ok(Held::untimed(nets))
    }

    /// Two runs: our anchor's rules must hold our block rule, and `-s Tables` in the
    /// anchor must list our table (`pfctl -F all` or `-F Tables` removes it while the
    /// rule stays). A missing anchor is vanished too.
    fn vanished(&mut self) -> Result<bool, BlockError> {
        let rules = match self.run(&argv_anchor_rules(self.anchor()), None) {
            Ok(out) => out,
            Err(PfError::Exit { ref stderr, .. }) if parse::absent(stderr) => return Ok(true),
            Err(e) => return Err(fail(Step::List, None)(e)),
        };
        if !parse::has_block_rule(&rules.stdout, self.table()) {
            return Ok(true);
        }
        let tables = self
            .run(&argv_anchor_tables(self.anchor()), None)
            .map_err(fail(Step::List, None))?;
        Ok(!parse::lists_table(
            &tables.stdout,
            self.anchor(),
            self.table(),
        ))
    }
}
