//! [`Nftables`]: the `Blocker` over one long-lived netlink socket.
//!
//! In: trait calls with typed targets. Out: one batch per call (set-up, blocks, replace,
//! unblock, flush) or GET requests (list, `table_exists`); `NftError` mapped to `BlockError`.
//! Must not: touch any table but `inet <table>`, or treat "already there" (block) and
//! "not there" (unblock, flush) as failures.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nix::errno::Errno;
use portsentry_blocker::{BlockError, Blocker, Held, Net, Step, Target};

use crate::encode::encode;
use crate::error::NftError;
use crate::link::{BatchStats, Link};
use crate::plan::{self, Family, Hook, Options, Plan, SetRef};
use crate::sys;
use crate::wire;

const NAME: &str = "nft";
const INET: u16 = libc::NFPROTO_INET as u16;
/// Dumps restarted at most this often when the ruleset changes under them.
const DUMP_RETRIES: usize = 3;

/// Targets per batch. Larger `block_many` and `replace_all` calls are split into several
/// batches, each atomic on its own; below this a batch (72 bytes per IPv4 target measured, about 110
/// per IPv6 target, so at most about 115 MiB) stays well below the send buffer the socket
/// can be given (`SO_SNDBUFFORCE`, about 1 GiB).
pub const MAX_BATCH_TARGETS: usize = 1 << 20;

/// The nft backend. Holds one netfilter netlink socket, in the network namespace of the
/// thread that called [`Nftables::new`].
pub struct Nftables {
    opts: Options,
    table: CString,
    link: Link,
    /// Notifications of changes to our table by anyone else (tampering, `nft flush`).
    watch: Option<crate::watch::Watch>,
    /// The watch was closed for a large batch of ours: the next look checks the table
    /// itself, as after lost notifications.
    watch_gap: bool,
    /// Our sets of networks known to exist (with their rules); `None` = ask the kernel.
    /// Another process (the CLI) may create one meanwhile: a set found missing here is
    /// looked up again before it is created.
    net_sets: Option<BTreeSet<SetRef>>,
}

/// Batches with more elements than this run with the watch closed: the kernel builds a
/// notification for every element while anyone listens (three per refreshed element),
/// which made applying 100 000 elements take seconds.
const QUIET_ABOVE: usize = 1024;

fn mapped(step: Step, net: Option<Net>) -> impl FnOnce(NftError) -> BlockError {
    move |e| BlockError::new(NAME, step, net, e)
}

/// A failed block of `targets`: names the one target, if there is one.
fn block_error(e: NftError, targets: &[Target]) -> BlockError {
    let net = match targets {
        [one] => Some(one.net),
        _ => None,
    };
    BlockError::new(NAME, Step::Block, net, e)
}

impl Nftables {
    /// Checks the options and opens the socket. Sends nothing: call `init` next.
    pub fn new(opts: Options) -> Result<Nftables, NftError> {
        plan::check_table_name(&opts.table)?;
        let table = CString::new(opts.table.clone())
            .map_err(|_| NftError::BadTableName(opts.table.clone()))?;
        let link = Link::open()?;
        Ok(Nftables {
            opts,
            table,
            link,
            watch: crate::watch::Watch::open(),
            watch_gap: false,
            net_sets: None,
        })
    }

    /// Runs `f` with the watch closed when `elements` is large (see [`QUIET_ABOVE`]).
    fn quietly<T>(&mut self, elements: usize, f: impl FnOnce(&mut Self) -> T) -> T {
        if elements <= QUIET_ABOVE || self.watch.is_none() {
            return f(self);
        }
        self.watch = None;
        self.watch_gap = true;
        let out = f(self);
        self.watch = crate::watch::Watch::open();
        out
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// What the last batch took: messages, bytes, `sendmsg` calls.
    pub fn last_batch(&self) -> BatchStats {
        self.link.last
    }

    /// Sends one plan as one batch. After a refusal, which sets exist is asked again.
    fn apply(&mut self, plan: &Plan) -> Result<(), NftError> {
        if plan.msgs.is_empty() {
            return Ok(());
        }
        let enc = encode(&self.opts.table, plan);
        let res = self.link.run_batch(&enc);
        if res.is_err() {
            self.net_sets = None;
        }
        res
    }

    /// Our sets in the kernel (host sets and sets of networks); none without a table.
    pub fn sets(&mut self) -> Result<Vec<SetRef>, NftError> {
        let what = format!("list sets table inet {}", self.opts.table);
        let table = self.table.clone();
        let Some(payloads) = self.get(what, |seq| sys::get_sets_request(&table, INET, seq))? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for p in payloads {
            if let Some(s) = wire::set_name(&p)
                .map_err(NftError::Parse)?
                .as_deref()
                .and_then(SetRef::parse)
            {
                out.push(s);
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Asks the kernel which sets of networks exist.
    fn refresh_net_sets(&mut self) -> Result<&BTreeSet<SetRef>, NftError> {
        let found = self.sets()?.into_iter().filter(|s| !s.is_hosts()).collect();
        Ok(self.net_sets.insert(found))
    }

    /// Creates the sets of networks `targets` need that do not exist yet, with their
    /// rules, in one batch.
    fn ensure_sets(&mut self, targets: &[Target]) -> Result<(), NftError> {
        let needed: Vec<SetRef> = plan::sets_of(targets)
            .into_iter()
            .filter(|s| !s.is_hosts())
            .collect();
        let known = |c: &Option<BTreeSet<SetRef>>| {
            c.as_ref()
                .is_some_and(|k| needed.iter().all(|s| k.contains(s)))
        };
        if needed.is_empty() || known(&self.net_sets) {
            return Ok(());
        }
        let have = self.refresh_net_sets()?.clone();
        let missing: Vec<SetRef> = needed.into_iter().filter(|s| !have.contains(s)).collect();
        self.apply(&plan::plan_create_sets(&self.opts, &missing))?;
        if let Some(k) = &mut self.net_sets {
            k.extend(missing);
        }
        Ok(())
    }

    /// Sends a GET request built by `build(seq)`: the reply payloads, `Ok(None)` when the
    /// object does not exist (`ENOENT`), or the refusal.
    fn get(
        &mut self,
        what: String,
        build: impl Fn(u32) -> Vec<u8>,
    ) -> Result<Option<Vec<Vec<u8>>>, NftError> {
        let mut tries = 0;
        loop {
            let seq = self.link.seq();
            match self.link.request(&build(seq), seq, &what)? {
                Ok(p) => return Ok(Some(p)),
                Err(Errno::ENOENT) => return Ok(None),
                // A dump the ruleset changed under: ask again.
                Err(Errno::EINTR) if tries < DUMP_RETRIES => tries += 1,
                // nfnetlink answers EINVAL to a GET (EOPNOTSUPP to a batch) for a
                // subsystem it does not have; our GETs are otherwise well-formed.
                Err(errno @ (Errno::EINVAL | Errno::EOPNOTSUPP)) => {
                    return Err(NftError::NoNfTables(errno))
                }
                Err(errno) => return Err(NftError::Kernel { what, errno }),
            }
        }
    }

    /// Whether our table exists (false after `nft flush ruleset`).
    pub fn table_exists(&mut self) -> Result<bool, NftError> {
        let what = format!("list table inet {}", self.opts.table);
        let table = self.table.clone();
        let found = self.get(what, |seq| sys::get_table_request(&table, INET, seq))?;
        Ok(found.is_some())
    }

    fn chain_exists(&mut self, hook: Hook) -> Result<bool, NftError> {
        let what = format!("list chain inet {} {}", self.opts.table, hook.chain());
        let table = self.table.clone();
        let chain = CString::new(hook.chain()).unwrap_or_default();
        let found = self.get(what, |seq| {
            sys::get_chain_request(&table, &chain, INET, seq)
        })?;
        Ok(found.is_some())
    }

    /// How many rules a chain of ours holds (0 when it is missing).
    fn rule_count(&mut self, hook: Hook) -> Result<usize, NftError> {
        let what = format!("list chain inet {} {}", self.opts.table, hook.chain());
        let table = self.table.clone();
        let chain = CString::new(hook.chain()).unwrap_or_default();
        let found = self.get(what, |seq| {
            sys::get_rules_request(&table, &chain, INET, seq)
        })?;
        Ok(found.map_or(0, |rules| rules.len()))
    }

    /// What differs from what must be: the table, both host sets, each configured chain,
    /// and one rule in it per set of ours. Reads only.
    pub fn check(&mut self) -> Result<Vec<String>, NftError> {
        if !self.table_exists()? {
            return Ok(vec![format!("table inet {} is missing", self.opts.table)]);
        }
        let mut out = Vec::new();
        let sets = self.sets()?;
        for s in Family::ALL.map(SetRef::hosts) {
            if !sets.contains(&s) {
                out.push(format!("set {} is missing", s.name()));
            }
        }
        for h in self.opts.wanted_hooks() {
            if !self.chain_exists(h)? {
                out.push(format!("chain {} is missing", h.chain()));
                continue;
            }
            let rules = self.rule_count(h)?;
            if rules < sets.len().max(2) {
                out.push(format!(
                    "chain {} has lost rules ({rules} of {})",
                    h.chain(),
                    sets.len().max(2)
                ));
            }
        }
        Ok(out)
    }

    /// Set-up in one batch: create what is absent, flush our chains, re-add our rules,
    /// delete our chains on hooks no longer configured. Keeps every element.
    pub fn apply_init(&mut self) -> Result<(), NftError> {
        let wanted = self.opts.wanted_hooks();
        let mut stale = Vec::new();
        for h in Hook::ALL.into_iter().filter(|h| !wanted.contains(h)) {
            if self.chain_exists(h)? {
                stale.push(h);
            }
        }
        let nets: Vec<SetRef> = self.refresh_net_sets()?.iter().copied().collect();
        self.apply(&plan::plan_init(&self.opts, &nets, &stale))
    }

    /// Adds (or refreshes) the targets, in batches of at most [`MAX_BATCH_TARGETS`]; a
    /// set of networks a target needs is created first.
    pub fn apply_block(&mut self, targets: &[Target]) -> Result<(), NftError> {
        self.apply_chunks(targets, plan::plan_block)
    }

    /// `targets` in batches of at most [`MAX_BATCH_TARGETS`], each planned by `plan`.
    fn apply_chunks(
        &mut self,
        targets: &[Target],
        plan: fn(&[Target]) -> plan::Plan,
    ) -> Result<(), NftError> {
        self.ensure_sets(targets)?;
        for chunk in targets.chunks(MAX_BATCH_TARGETS) {
            self.apply(&plan(chunk))?;
        }
        Ok(())
    }

    /// Adds targets not held yet (one add per element, no refresh), in batches of at
    /// most [`MAX_BATCH_TARGETS`].
    pub fn apply_add(&mut self, targets: &[Target]) -> Result<(), NftError> {
        self.apply_chunks(targets, plan::plan_add)
    }

    /// Makes the sets hold exactly the targets: one batch (one `sendmsg`) that creates
    /// table and sets if absent, empties every set of ours and adds every target with its
    /// own timeout (see [`plan::plan_replace`]). Works before `init` (the sets are then
    /// filled, but only `init` adds the host sets' drop rules). More than
    /// [`MAX_BATCH_TARGETS`] distinct targets take further batches that only add, so
    /// those later ones may be missing between the batches.
    pub fn apply_replace(&mut self, targets: &[Target]) -> Result<(), NftError> {
        let existing: Vec<SetRef> = self.refresh_net_sets()?.iter().copied().collect();
        for p in plan::plan_replace(&self.opts, targets, &existing, MAX_BATCH_TARGETS) {
            self.apply(&p)?;
        }
        if let Some(k) = &mut self.net_sets {
            k.extend(plan::sets_of(targets).into_iter().filter(|s| !s.is_hosts()));
        }
        Ok(())
    }

    /// Deletes one element; one that is not there (or no table) is success.
    pub fn apply_unblock(&mut self, net: &Net) -> Result<(), NftError> {
        match self.apply(&plan::plan_unblock(net)) {
            Err(e) if e.objects_missing() => Ok(()),
            r => r,
        }
    }

    /// Deletes our table; no table is success.
    pub fn apply_flush(&mut self) -> Result<(), NftError> {
        let res = match self.apply(&plan::plan_flush()) {
            Err(e) if e.objects_missing() => Ok(()),
            r => r,
        };
        self.net_sets = None;
        res
    }

    /// Reads every set of ours back. No table or set: nothing held.
    pub fn held(&mut self) -> Result<Vec<Held>, NftError> {
        let mut sets = self.sets()?;
        sets.extend(Family::ALL.map(SetRef::hosts));
        sets.sort();
        sets.dedup();
        let mut out = Vec::new();
        for s in sets {
            out.extend(self.stable_dump(s)?);
        }
        Ok(out)
    }

    /// A dump of one set that two walks in a row agree on. Right after a big insert the
    /// kernel resizes the set's hash table in the background, and a walk meanwhile can
    /// repeat some elements and miss others (seen here: 9 948 to 10 181 for 10 000);
    /// once two walks match, no resize ran between them.
    fn stable_dump(&mut self, f: SetRef) -> Result<Vec<Held>, NftError> {
        const TRIES: usize = 50;
        let nets = |v: &[Held]| {
            let mut n: Vec<Net> = v.iter().map(|h| h.net).collect();
            n.sort();
            n
        };
        let mut last = self.dump_set(f)?;
        for _ in 0..TRIES {
            let next = self.dump_set(f)?;
            if nets(&next) == nets(&last) {
                return Ok(next);
            }
            last = next;
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Ok(last)
    }

    fn dump_set(&mut self, s: SetRef) -> Result<Vec<Held>, NftError> {
        let name = s.name();
        let what = format!("list set inet {} {name}", self.opts.table);
        let table = self.table.clone();
        let set = CString::new(name).unwrap_or_default();
        let Some(payloads) = self.get(what, |seq| {
            sys::get_setelems_request(&table, &set, INET, seq)
        })?
        else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        // The kernel's walk of a hash set that resizes meanwhile can return an element
        // twice (rhashtable walks may repeat entries): each network is reported once.
        let mut seen = std::collections::HashSet::new();
        for p in payloads {
            for e in wire::setelems(&p).map_err(NftError::Parse)? {
                let addr = match (s.family, e.key.len()) {
                    (Family::V4, 4) => {
                        let b: [u8; 4] = e.key[..].try_into().unwrap_or_default();
                        IpAddr::V4(Ipv4Addr::from(b))
                    }
                    (Family::V6, 16) => {
                        let b: [u8; 16] = e.key[..].try_into().unwrap_or_default();
                        IpAddr::V6(Ipv6Addr::from(b))
                    }
                    (_, len) => {
                        return Err(NftError::BadKey {
                            set: s.family.set_name(),
                            len,
                        })
                    }
                };
                // the prefix is the set's, never longer than the family allows
                let Ok(net) = Net::new(addr, s.prefix) else {
                    continue;
                };
                if !seen.insert(net) {
                    continue;
                }
                out.push(Held {
                    net,
                    remaining: e.expiration_ms.map(std::time::Duration::from_millis),
                });
            }
        }
        Ok(out)
    }
}

impl Blocker for Nftables {
    fn name(&self) -> &'static str {
        NAME
    }

    fn init(&mut self) -> Result<(), BlockError> {
        self.apply_init().map_err(mapped(Step::Init, None))
    }

    fn block(&mut self, target: &Target) -> Result<(), BlockError> {
        self.block_many(std::slice::from_ref(target))
    }

    /// One batch (one `sendmsg`) for up to [`MAX_BATCH_TARGETS`] targets.
    fn block_many(&mut self, targets: &[Target]) -> Result<(), BlockError> {
        self.quietly(targets.len(), |s| s.apply_block(targets))
            .map_err(|e| block_error(e, targets))
    }

    /// One set per prefix length in use holds the networks.
    fn holds_networks(&self) -> bool {
        true
    }

    /// One batch of plain adds: the caller knows none of them is held.
    fn add_many(&mut self, targets: &[Target]) -> Result<(), BlockError> {
        self.quietly(targets.len(), |s| s.apply_add(targets))
            .map_err(|e| block_error(e, targets))
    }

    /// One batch: empty every set of ours, add every target (see [`Nftables::apply_replace`]).
    fn replace_all(&mut self, targets: &[Target]) -> Result<(), BlockError> {
        self.quietly(targets.len(), |s| s.apply_replace(targets))
            .map_err(|e| block_error(e, targets))
    }

    fn unblock(&mut self, net: &Net) -> Result<(), BlockError> {
        self.apply_unblock(net)
            .map_err(mapped(Step::Unblock, Some(*net)))
    }

    fn flush(&mut self) -> Result<(), BlockError> {
        self.apply_flush().map_err(mapped(Step::Flush, None))
    }

    fn list(&mut self) -> Result<Vec<Held>, BlockError> {
        self.held().map_err(mapped(Step::List, None))
    }

    /// Our table is gone (`nft flush ruleset`, a firewall reload).
    /// Anyone but us changed our table (a flushed chain or set, a deleted rule, chain or
    /// table, `nft flush ruleset`): the kernel says so on its notification group, so
    /// this costs one non-blocking read when nothing happened. Without the group, or
    /// when notifications were lost in a flood of our own, a missing table or chain is
    /// what can be seen.
    fn problems(&mut self) -> Result<Vec<String>, BlockError> {
        self.check().map_err(mapped(Step::List, None))
    }

    fn vanished(&mut self) -> Result<bool, BlockError> {
        let own = self.link.portid();
        let table = self.opts.table.clone();
        let mut seen = match &mut self.watch {
            Some(w) => w.look(&table, own),
            None => crate::watch::Seen::Nothing,
        };
        if std::mem::take(&mut self.watch_gap) && seen == crate::watch::Seen::Nothing {
            seen = crate::watch::Seen::Lost;
        }
        match seen {
            crate::watch::Seen::Changed => return Ok(true),
            // Notifications lost (a flood of our own), or not listened to during a
            // large batch: look at our table, chains and rules.
            crate::watch::Seen::Lost => {
                return self
                    .check()
                    .map(|problems| !problems.is_empty())
                    .map_err(mapped(Step::List, None));
            }
            crate::watch::Seen::Nothing => {}
        }
        self.table_exists()
            .map(|t| !t)
            .map_err(mapped(Step::List, None))
    }
}
