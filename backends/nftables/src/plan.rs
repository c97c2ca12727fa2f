//! The pure plan: which nf_tables messages each verb sends, as plain data.
//!
//! In: [`Options`], [`Target`]s, a [`Net`]. Out: a list of [`Msg`] (one per object change,
//! each printable as the equivalent `nft` command) and, for rules, the [`Expr`] list.
//! Must not: touch a socket, allocate libnftnl objects, or name any table but ours.
//! `encode` turns a plan into netlink bytes; `Nftables` sends them.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use portsentry_blocker::{Net, Target};

use crate::error::NftError;

/// A netfilter hook our base chains can sit on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    /// Packets for this host (`hook input`): the default.
    Input,
    /// Packets routed through this host (`hook forward`), for routers and container hosts.
    Forward,
}

impl Hook {
    /// Every hook we may own a chain on, in the order chains are created.
    pub const ALL: [Hook; 2] = [Hook::Input, Hook::Forward];

    /// Our chain's name (also the `nft` hook keyword).
    pub fn chain(self) -> &'static str {
        match self {
            Hook::Input => "input",
            Hook::Forward => "forward",
        }
    }
}

/// How the backend is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Our table in family `inet` (default `portsentry`).
    pub table: String,
    /// Hooks that get a drop chain (default: input only). Duplicates are ignored.
    pub hooks: Vec<Hook>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            table: "portsentry".to_string(),
            hooks: vec![Hook::Input],
        }
    }
}

impl Options {
    /// The requested hooks without duplicates, in [`Hook::ALL`] order.
    pub fn wanted_hooks(&self) -> Vec<Hook> {
        Hook::ALL
            .into_iter()
            .filter(|h| self.hooks.contains(h))
            .collect()
    }
}

/// Priority of our base chains: before the usual `filter` (0) chains.
pub const PRIORITY: i32 = -10;

/// Longest kernel timeout we hand out (100 years); the block store expires blocks anyway.
pub const MAX_TIMEOUT_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

/// Address family of a set, and everything that follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Our set of single addresses of this family.
    pub fn set_name(self) -> &'static str {
        match self {
            Family::V4 => "blocked4",
            Family::V6 => "blocked6",
        }
    }

    /// nft's datatype number for the key (`ipv4_addr` = 7, `ipv6_addr` = 8).
    pub fn key_type(self) -> u32 {
        match self {
            Family::V4 => 7,
            Family::V6 => 8,
        }
    }

    /// The prefix length of a single address.
    pub fn max_prefix(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// Key length in bytes.
    pub fn key_len(self) -> u32 {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }

    /// nft's name of the key datatype.
    pub fn key_name(self) -> &'static str {
        match self {
            Family::V4 => "ipv4_addr",
            Family::V6 => "ipv6_addr",
        }
    }

    /// `NFPROTO_IPV4` / `NFPROTO_IPV6`: what `meta nfproto` loads.
    pub fn nfproto(self) -> u8 {
        match self {
            Family::V4 => libc::NFPROTO_IPV4 as u8,
            Family::V6 => libc::NFPROTO_IPV6 as u8,
        }
    }

    /// Offset and length of the source address in the network header.
    pub fn saddr(self) -> (u32, u32) {
        match self {
            Family::V4 => (12, 4),
            Family::V6 => (8, 16),
        }
    }

    /// `ip` / `ip6`, as in `ip saddr`.
    pub fn nft_proto(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        }
    }
}

/// One of our sets: the addresses of one family at one prefix length. Single addresses
/// (/32, /128) live in `blocked4` / `blocked6`, which always exist; each shorter prefix
/// length in use gets its own set (`blocked4_24`, `blocked6_64`, ...) and one rule that
/// masks the source address to that length before the lookup. Unlike one `interval` set,
/// networks that overlap (a /16 and a /24 inside it) are held side by side, each with its
/// own kernel timeout, and a lookup stays a hash lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SetRef {
    pub family: Family,
    pub prefix: u8,
}

impl SetRef {
    /// The set of single addresses of a family.
    pub fn hosts(family: Family) -> SetRef {
        SetRef {
            family,
            prefix: family.max_prefix(),
        }
    }

    /// The set that holds `net`.
    pub fn of(net: &Net) -> SetRef {
        SetRef {
            family: Family::of(&net.addr()),
            prefix: net.prefix(),
        }
    }

    pub fn is_hosts(self) -> bool {
        self.prefix == self.family.max_prefix()
    }

    /// `blocked4`, `blocked6`, or `blocked4_24` for a prefix length.
    pub fn name(self) -> String {
        if self.is_hosts() {
            self.family.set_name().to_string()
        } else {
            format!("{}_{}", self.family.set_name(), self.prefix)
        }
    }

    /// The set a name of ours stands for; `None` for any other name.
    pub fn parse(name: &str) -> Option<SetRef> {
        let (base, prefix) = match name.split_once('_') {
            Some((b, p)) => (b, Some(p)),
            None => (name, None),
        };
        let family = Family::ALL.into_iter().find(|f| f.set_name() == base)?;
        let prefix = match prefix {
            None => family.max_prefix(),
            Some(p) => {
                let n = p.parse::<u8>().ok().filter(|&n| n < family.max_prefix())?;
                // digits only, no leading zero: one name per set
                if p != n.to_string() {
                    return None;
                }
                n
            }
        };
        Some(SetRef { family, prefix })
    }

    /// Transaction-local id, unique among our sets, so a rule in the same batch can name
    /// a set created there.
    pub fn set_id(self) -> u32 {
        let base = match self.family {
            Family::V4 => 0,
            Family::V6 => 33,
        };
        1 + base + u32::from(self.prefix)
    }

    /// The netmask bytes of the prefix length, in network order.
    pub fn mask(self) -> Vec<u8> {
        let len = self.family.key_len() as usize;
        (0..len)
            .map(|i| {
                let bits = usize::from(self.prefix).saturating_sub(i * 8).min(8);
                (0xff00u16 >> bits) as u8
            })
            .collect()
    }

    /// The mask as an address, as nft prints it (`255.255.255.0`).
    fn mask_text(self) -> String {
        let m = self.mask();
        match self.family {
            Family::V4 => {
                let b: [u8; 4] = m.try_into().unwrap_or_default();
                IpAddr::from(b).to_string()
            }
            Family::V6 => {
                let b: [u8; 16] = m.try_into().unwrap_or_default();
                IpAddr::from(b).to_string()
            }
        }
    }
}

/// One expression of a rule, evaluated in order; all use register 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Load `meta nfproto` (the packet's protocol family).
    MetaNfproto,
    /// Continue only if register 1 equals these bytes.
    CmpEq(Vec<u8>),
    /// Load `len` bytes at `offset` of the network header.
    NetworkPayload { offset: u32, len: u32 },
    /// Register 1 &= these bytes (the netmask of a prefix length).
    Mask(Vec<u8>),
    /// Continue only if register 1 is an element of this set.
    Lookup(SetRef),
    /// Count packets and bytes.
    Counter,
    /// Drop the packet.
    Drop,
}

/// `meta nfproto ipv4 ip saddr @blocked4 counter drop` (and the IPv6 twin); for a set of
/// networks `ip saddr & 255.255.255.0 @blocked4_24 counter drop`.
pub fn rule_exprs(set: SetRef) -> Vec<Expr> {
    let (offset, len) = set.family.saddr();
    let mut out = vec![
        Expr::MetaNfproto,
        Expr::CmpEq(vec![set.family.nfproto()]),
        Expr::NetworkPayload { offset, len },
    ];
    if !set.is_hosts() {
        out.push(Expr::Mask(set.mask()));
    }
    out.extend([Expr::Lookup(set), Expr::Counter, Expr::Drop]);
    out
}

/// One set element: a network (or a single address) and its kernel timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elem {
    pub net: Net,
    /// Milliseconds until the kernel drops the element; `None` = permanent.
    pub timeout_ms: Option<u64>,
}

impl Elem {
    /// The key bytes in network order, as the set stores them (host bits are zero).
    pub fn key(&self) -> Vec<u8> {
        match self.net.addr() {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        }
    }

    /// The element without its timeout (what a delete names).
    fn key_only(&self) -> Elem {
        Elem {
            timeout_ms: None,
            ..*self
        }
    }
}

/// One object change, in batch order. Element lists may become several netlink messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// Create the table if absent (no `NLM_F_EXCL`).
    AddTable,
    /// Create the set if absent, flags `timeout`.
    AddSet(SetRef),
    /// Create the base chain if absent.
    AddChain(Hook),
    /// Delete every rule of our chain.
    FlushChain(Hook),
    /// Append the drop rule for one set.
    AddRule(Hook, SetRef),
    /// Delete a chain we no longer want.
    DelChain(Hook),
    /// Add elements; an existing one is not an error (no `NLM_F_EXCL`).
    AddElems(SetRef, Vec<Elem>),
    /// Delete elements; a missing one fails the batch with `ENOENT`.
    DelElems(SetRef, Vec<Elem>),
    /// Delete every element of the set (`NFT_MSG_DELSETELEM` without an element list).
    FlushSet(SetRef),
    /// Delete our table with everything in it.
    DelTable,
}

impl Msg {
    /// The equivalent `nft` command, for error messages and logs.
    pub fn nft(&self, table: &str) -> String {
        match self {
            Msg::AddTable => format!("add table inet {table}"),
            Msg::AddSet(s) => format!(
                "add set inet {table} {} {{ type {}; flags timeout; }}",
                s.name(),
                s.family.key_name()
            ),
            Msg::AddChain(h) => format!(
                "add chain inet {table} {} {{ type filter hook {} priority {PRIORITY}; policy accept; }}",
                h.chain(),
                h.chain()
            ),
            Msg::FlushChain(h) => format!("flush chain inet {table} {}", h.chain()),
            Msg::AddRule(h, s) if s.is_hosts() => format!(
                "add rule inet {table} {} {} saddr @{} counter drop",
                h.chain(),
                s.family.nft_proto(),
                s.name()
            ),
            Msg::AddRule(h, s) => format!(
                "add rule inet {table} {} {} saddr & {} @{} counter drop",
                h.chain(),
                s.family.nft_proto(),
                s.mask_text(),
                s.name()
            ),
            Msg::DelChain(h) => format!("delete chain inet {table} {}", h.chain()),
            Msg::AddElems(s, e) => elems_cmd("add", table, *s, e),
            Msg::DelElems(s, e) => elems_cmd("delete", table, *s, e),
            Msg::FlushSet(s) => format!("flush set inet {table} {}", s.name()),
            Msg::DelTable => format!("delete table inet {table}"),
        }
    }
}

fn elems_cmd(verb: &str, table: &str, set: SetRef, elems: &[Elem]) -> String {
    let name = set.name();
    match elems {
        [one] => format!("{verb} element inet {table} {name} {{ {} }}", one.net),
        _ => format!(
            "{verb} element inet {table} {name} {{ {} elements }}",
            elems.len()
        ),
    }
}

/// A list of messages for one batch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub msgs: Vec<Msg>,
}

impl fmt::Display for Plan {
    /// The plan as an `nft -f` style script (element lists abbreviated).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.msgs {
            writeln!(f, "{}", m.nft("portsentry"))?;
        }
        Ok(())
    }
}

/// The host sets, IPv4 first: they always exist.
fn host_sets() -> [SetRef; 2] {
    Family::ALL.map(SetRef::hosts)
}

/// Set-up: create table, sets and chains if absent, flush our chains, re-add our rules
/// (one per host set, one per set of networks in `net_sets`, the ones that exist), and
/// delete `stale` chains (ours, on hooks no longer wanted, known to exist).
pub fn plan_init(opts: &Options, net_sets: &[SetRef], stale: &[Hook]) -> Plan {
    let hooks = opts.wanted_hooks();
    let sets: Vec<SetRef> = host_sets()
        .into_iter()
        .chain(net_sets.iter().copied().filter(|s| !s.is_hosts()))
        .collect();
    let mut msgs = vec![Msg::AddTable];
    msgs.extend(sets.iter().map(|&s| Msg::AddSet(s)));
    for &h in &hooks {
        msgs.push(Msg::AddChain(h));
        msgs.push(Msg::FlushChain(h));
        msgs.extend(sets.iter().map(|&s| Msg::AddRule(h, s)));
    }
    msgs.extend(
        stale
            .iter()
            .filter(|h| !hooks.contains(h))
            .map(|&h| Msg::DelChain(h)),
    );
    Plan { msgs }
}

/// Creates sets of networks that do not exist yet, each with its rule in every wanted
/// chain (the chains are created if absent; `init` re-adds every rule anyway). Empty
/// when `missing` is.
pub fn plan_create_sets(opts: &Options, missing: &[SetRef]) -> Plan {
    let missing: Vec<SetRef> = missing.iter().copied().filter(|s| !s.is_hosts()).collect();
    if missing.is_empty() {
        return Plan::default();
    }
    let mut msgs = vec![Msg::AddTable];
    msgs.extend(missing.iter().map(|&s| Msg::AddSet(s)));
    for h in opts.wanted_hooks() {
        msgs.push(Msg::AddChain(h));
        msgs.extend(missing.iter().map(|&s| Msg::AddRule(h, s)));
    }
    Plan { msgs }
}

/// The targets as elements, deduplicated (the last timeout wins), in first-seen order.
pub fn elems(targets: &[Target]) -> Vec<Elem> {
    let mut order: Vec<Elem> = Vec::with_capacity(targets.len());
    let mut index: HashMap<Net, usize> = HashMap::with_capacity(targets.len());
    for t in targets {
        let elem = Elem {
            net: t.net,
            timeout_ms: t.timeout.map(timeout_ms),
        };
        match index.get(&elem.net) {
            Some(&i) => order[i] = elem,
            None => {
                index.insert(elem.net, order.len());
                order.push(elem);
            }
        }
    }
    order
}

/// The sets `targets` need.
pub fn sets_of(targets: &[Target]) -> Vec<SetRef> {
    let mut s: Vec<SetRef> = targets.iter().map(|t| SetRef::of(&t.net)).collect();
    s.sort();
    s.dedup();
    s
}

/// `elems` split by set, host sets first (IPv4, IPv6), then networks by family and
/// prefix length; sets without elements are left out.
fn by_set(elems: &[Elem]) -> Vec<(SetRef, Vec<Elem>)> {
    let mut groups: std::collections::BTreeMap<(bool, SetRef), Vec<Elem>> = Default::default();
    for e in elems {
        let s = SetRef::of(&e.net);
        groups.entry((!s.is_hosts(), s)).or_default().push(*e);
    }
    groups.into_iter().map(|((_, s), e)| (s, e)).collect()
}

/// Blocks: the targets, deduplicated (the last timeout wins), as add + delete + add per
/// set. The first add makes every element exist (a no-op for existing ones), the delete
/// removes it, the second add creates it afresh with the new timeout: inside one
/// transaction that refreshes the kernel's expiry on every kernel, where a plain re-add
/// keeps the old expiry (always on kernels without element timeout updates; on newer
/// ones, 6.18 measured, whenever the timeout is unchanged). Deleting alone would fail the
/// whole batch with `ENOENT` for an element that is not there yet. The sets must exist
/// (see [`plan_create_sets`]).
pub fn plan_block(targets: &[Target]) -> Plan {
    let by_set = by_set(&elems(targets));
    let mut msgs = Vec::new();
    for (s, e) in &by_set {
        msgs.push(Msg::AddElems(*s, e.clone()));
    }
    for (s, e) in &by_set {
        msgs.push(Msg::DelElems(*s, e.iter().map(Elem::key_only).collect()));
    }
    for (s, e) in by_set {
        msgs.push(Msg::AddElems(s, e));
    }
    Plan { msgs }
}

/// Adds: the targets, deduplicated, as one add per set. For elements not in the sets yet
/// (an existing one keeps its old expiry: use [`plan_block`] to refresh).
pub fn plan_add(targets: &[Target]) -> Plan {
    let msgs = by_set(&elems(targets))
        .into_iter()
        .map(|(s, e)| Msg::AddElems(s, e))
        .collect();
    Plan { msgs }
}

/// Replace: the sets hold exactly the targets afterwards (deduplicated, the last timeout
/// wins); `existing` are the sets of networks there now (all are emptied). In batches of
/// at most `batch` targets: the first creates every set of networks a target needs and
/// empties every set; the later ones only add, so their targets may be missing between
/// the batches.
pub fn plan_replace(
    opts: &Options,
    targets: &[Target],
    existing: &[SetRef],
    batch: usize,
) -> Vec<Plan> {
    let missing: Vec<SetRef> = sets_of(targets)
        .into_iter()
        .filter(|s| !existing.contains(s))
        .collect();
    let mut chunks = targets.chunks(batch.max(1));
    let mut first = plan_create_sets(opts, &missing);
    first
        .msgs
        .extend(plan_replace_elems(&elems(chunks.next().unwrap_or(&[])), Some(existing)).msgs);
    let mut out = vec![first];
    out.extend(chunks.map(|c| plan_replace_elems(&elems(c), None)));
    out
}

// nft -f: add table inet portsentry; add set inet portsentry blocked4 { type ipv4_addr; flags timeout; }; (blocked6 alike); flush set inet portsentry blocked4; flush set inet portsentry blocked6; add element inet portsentry blocked4 { 198.18.0.1 timeout 3600000ms, ... }; (blocked6 alike)
/// Replace for deduplicated `elems` in one batch: create table and host sets if absent
/// (so the batch works before `init` too; the drop rules still come from `init`), then
/// with `flush` (the sets of networks there now) empty both host sets and those, then add
/// every element with its own timeout. One plain add per element is enough: the sets were
/// emptied earlier in the same transaction, so every element is created afresh with the
/// requested timeout, and none that is kept is ever missing (the transaction applies as a
/// whole). Without `flush` it only adds (the later batches of a replace too large for
/// one). Sets of networks must exist (see [`plan_create_sets`]).
pub fn plan_replace_elems(elems: &[Elem], flush: Option<&[SetRef]>) -> Plan {
    let mut msgs = vec![Msg::AddTable];
    msgs.extend(host_sets().map(Msg::AddSet));
    if let Some(nets) = flush {
        msgs.extend(host_sets().map(Msg::FlushSet));
        msgs.extend(
            nets.iter()
                .filter(|s| !s.is_hosts())
                .map(|&s| Msg::FlushSet(s)),
        );
    }
    msgs.extend(by_set(elems).into_iter().map(|(s, e)| Msg::AddElems(s, e)));
    Plan { msgs }
}

/// Unblock: delete the element from its set.
pub fn plan_unblock(net: &Net) -> Plan {
    let elem = Elem {
        net: *net,
        timeout_ms: None,
    };
    Plan {
        msgs: vec![Msg::DelElems(SetRef::of(net), vec![elem])],
    }
}

/// Flush: delete our table, which takes its sets, chains and rules with it.
pub fn plan_flush() -> Plan {
    Plan {
        msgs: vec![Msg::DelTable],
    }
}

/// A timeout in whole milliseconds for the kernel: rounded up (0 ms would mean
/// "permanent" to the kernel) and capped at [`MAX_TIMEOUT_MS`].
pub fn timeout_ms(d: Duration) -> u64 {
    let ms = d.as_nanos().div_ceil(1_000_000).max(1);
    u64::try_from(ms).unwrap_or(u64::MAX).min(MAX_TIMEOUT_MS)
}

/// Checks a table name: 1 to 255 bytes, no NUL (the kernel's `NFT_NAME_MAXLEN` is 256
/// with the NUL).
pub fn check_table_name(name: &str) -> Result<(), NftError> {
    if name.is_empty() || name.len() > 255 || name.contains('\0') {
        return Err(NftError::BadTableName(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str, timeout: Option<u64>) -> Target {
        Target {
            net: s.parse().unwrap(),
            timeout: timeout.map(Duration::from_secs),
            reason: Default::default(),
        }
    }

    fn e(s: &str, timeout_ms: Option<u64>) -> Elem {
        Elem {
            net: s.parse().unwrap(),
            timeout_ms,
        }
    }

    const fn set(family: Family, prefix: u8) -> SetRef {
        SetRef { family, prefix }
    }
    const H4: SetRef = set(Family::V4, 32);
    const H6: SetRef = set(Family::V6, 128);
    const N4_24: SetRef = set(Family::V4, 24);
    const N6_64: SetRef = set(Family::V6, 64);

    #[test]
    fn set_names_ids_and_masks() {
        assert_eq!(H4.name(), "blocked4");
        assert_eq!(H6.name(), "blocked6");
        assert_eq!(N4_24.name(), "blocked4_24");
        assert_eq!(N6_64.name(), "blocked6_64");
        for s in [H4, H6, N4_24, N6_64] {
            assert_eq!(SetRef::parse(&s.name()), Some(s));
        }
        for bad in [
            "blocked4_32",
            "blocked4_024",
            "blocked4_+1",
            "blocked6_128",
            "blocked4_",
            "blocked5",
            "other",
            "blocked4_x",
        ] {
            assert_eq!(SetRef::parse(bad), None, "{bad}");
        }
        assert_eq!(SetRef::parse("blocked4_0").map(|s| s.prefix), Some(0));
        // every set of ours has its own transaction id
        let mut ids: Vec<u32> = Family::ALL
            .into_iter()
            .flat_map(|f| (0..=f.max_prefix()).map(move |prefix| SetRef { family: f, prefix }))
            .map(SetRef::set_id)
            .collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert!(!ids.contains(&0));
        assert_eq!(N4_24.mask(), vec![255, 255, 255, 0]);
        assert_eq!(
            SetRef {
                family: Family::V4,
                prefix: 0
            }
            .mask(),
            vec![0; 4]
        );
        assert_eq!(
            SetRef {
                family: Family::V4,
                prefix: 20
            }
            .mask(),
            vec![255, 255, 240, 0]
        );
        assert_eq!(N6_64.mask(), [[0xff; 8], [0; 8]].concat());
        assert_eq!(SetRef::of(&"198.18.0.0/24".parse().unwrap()), N4_24);
        assert_eq!(SetRef::of(&"fd00:5e5e::1".parse().unwrap()), H6);
    }

    #[test]
    fn init_creates_then_flushes_then_adds_rules() {
        let p = plan_init(&Options::default(), &[], &[]);
        assert_eq!(
            p.msgs,
            vec![
                Msg::AddTable,
                Msg::AddSet(H4),
                Msg::AddSet(H6),
                Msg::AddChain(Hook::Input),
                Msg::FlushChain(Hook::Input),
                Msg::AddRule(Hook::Input, H4),
                Msg::AddRule(Hook::Input, H6),
            ]
        );
        assert_eq!(
            p.to_string(),
            "add table inet portsentry\n\
             add set inet portsentry blocked4 { type ipv4_addr; flags timeout; }\n\
             add set inet portsentry blocked6 { type ipv6_addr; flags timeout; }\n\
             add chain inet portsentry input { type filter hook input priority -10; policy accept; }\n\
             flush chain inet portsentry input\n\
             add rule inet portsentry input ip saddr @blocked4 counter drop\n\
             add rule inet portsentry input ip6 saddr @blocked6 counter drop\n"
        );
    }

    #[test]
    fn init_keeps_a_rule_for_every_set_of_networks() {
        let p = plan_init(&Options::default(), &[N4_24, N6_64, H4], &[]);
        assert_eq!(p.msgs[3..5], [Msg::AddSet(N4_24), Msg::AddSet(N6_64)]);
        assert_eq!(
            p.msgs[7..],
            [
                Msg::AddRule(Hook::Input, H4),
                Msg::AddRule(Hook::Input, H6),
                Msg::AddRule(Hook::Input, N4_24),
                Msg::AddRule(Hook::Input, N6_64),
            ]
        );
        assert_eq!(
            p.msgs[9].nft("portsentry"),
            "add rule inet portsentry input ip saddr & 255.255.255.0 @blocked4_24 counter drop"
        );
        assert_eq!(
            p.msgs[10].nft("portsentry"),
            "add rule inet portsentry input ip6 saddr & ffff:ffff:ffff:ffff:: @blocked6_64 counter drop"
        );
    }

    #[test]
    fn init_with_forward_and_stale_chains() {
        let opts = Options {
            table: "ps".into(),
            hooks: vec![Hook::Forward, Hook::Input, Hook::Forward],
        };
        let p = plan_init(&opts, &[], &[Hook::Forward]);
        let chains: Vec<_> = p
            .msgs
            .iter()
            .filter_map(|m| match m {
                Msg::AddChain(h) => Some(*h),
                _ => None,
            })
            .collect();
        assert_eq!(chains, vec![Hook::Input, Hook::Forward]);
        assert!(!p.msgs.iter().any(|m| matches!(m, Msg::DelChain(_))));
        assert_eq!(
            p.msgs
                .iter()
                .filter(|m| matches!(m, Msg::AddRule(..)))
                .count(),
            4
        );

        let p = plan_init(&Options::default(), &[], &[Hook::Forward]);
        assert_eq!(p.msgs.last(), Some(&Msg::DelChain(Hook::Forward)));
        assert_eq!(
            p.msgs.last().unwrap().nft("portsentry"),
            "delete chain inet portsentry forward"
        );
    }

    #[test]
    fn new_sets_of_networks_come_with_their_rules() {
        let opts = Options {
            table: "ps".into(),
            hooks: vec![Hook::Input, Hook::Forward],
        };
        assert!(plan_create_sets(&opts, &[]).msgs.is_empty());
        assert!(plan_create_sets(&opts, &[H4]).msgs.is_empty());
        assert_eq!(
            plan_create_sets(&opts, &[N4_24]).msgs,
            vec![
                Msg::AddTable,
                Msg::AddSet(N4_24),
                Msg::AddChain(Hook::Input),
                Msg::AddRule(Hook::Input, N4_24),
                Msg::AddChain(Hook::Forward),
                Msg::AddRule(Hook::Forward, N4_24),
            ]
        );
    }

    #[test]
    fn rule_expressions_check_the_family_first() {
        assert_eq!(
            rule_exprs(H4),
            vec![
                Expr::MetaNfproto,
                Expr::CmpEq(vec![2]),
                Expr::NetworkPayload { offset: 12, len: 4 },
                Expr::Lookup(H4),
                Expr::Counter,
                Expr::Drop,
            ]
        );
        assert_eq!(
            rule_exprs(H6),
            vec![
                Expr::MetaNfproto,
                Expr::CmpEq(vec![10]),
                Expr::NetworkPayload { offset: 8, len: 16 },
                Expr::Lookup(H6),
                Expr::Counter,
                Expr::Drop,
            ]
        );
        assert_eq!(
            rule_exprs(N4_24),
            vec![
                Expr::MetaNfproto,
                Expr::CmpEq(vec![2]),
                Expr::NetworkPayload { offset: 12, len: 4 },
                Expr::Mask(vec![255, 255, 255, 0]),
                Expr::Lookup(N4_24),
                Expr::Counter,
                Expr::Drop,
            ]
        );
    }

    #[test]
    fn block_is_add_delete_add_per_set_deduplicated() {
        let targets = [
            t("198.18.0.1", Some(60)),
            t("fd00:5e5e::1", None),
            t("198.18.7.0/24", Some(5)),
            t("198.18.0.2", None),
            t("198.18.0.1", Some(120)),
            t("::ffff:198.18.0.3", Some(1)),
        ];
        let p = plan_block(&targets);
        let v4 = vec![
            e("198.18.0.1", Some(120_000)),
            e("198.18.0.2", None),
            e("198.18.0.3", Some(1_000)),
        ];
        let v6 = vec![e("fd00:5e5e::1", None)];
        let n24 = vec![e("198.18.7.0/24", Some(5_000))];
        let keys = |v: &[Elem]| v.iter().map(Elem::key_only).collect::<Vec<_>>();
        assert_eq!(
            p.msgs,
            vec![
                Msg::AddElems(H4, v4.clone()),
                Msg::AddElems(H6, v6.clone()),
                Msg::AddElems(N4_24, n24.clone()),
                Msg::DelElems(H4, keys(&v4)),
                Msg::DelElems(H6, v6.clone()),
                Msg::DelElems(N4_24, keys(&n24)),
                Msg::AddElems(H4, v4),
                Msg::AddElems(H6, v6),
                Msg::AddElems(N4_24, n24),
            ]
        );
        assert_eq!(
            p.msgs[1].nft("portsentry"),
            "add element inet portsentry blocked6 { fd00:5e5e::1 }"
        );
        assert_eq!(
            p.msgs[2].nft("portsentry"),
            "add element inet portsentry blocked4_24 { 198.18.7.0/24 }"
        );
        assert_eq!(
            p.msgs[0].nft("portsentry"),
            "add element inet portsentry blocked4 { 3 elements }"
        );
        assert_eq!(sets_of(&targets), vec![N4_24, H4, H6]);
    }

    #[test]
    fn block_of_nothing_sends_nothing() {
        assert!(plan_block(&[]).msgs.is_empty());
        assert!(plan_add(&[]).msgs.is_empty());
    }

    #[test]
    fn replace_creates_flushes_every_set_then_adds_once() {
        let targets = [
            t("198.18.0.1", Some(60)),
            t("fd00:5e5e::1", None),
            t("198.18.0.2", Some(7)),
            t("198.18.0.1", Some(120)),
            t("fd00:5e5e:1::/64", Some(9)),
        ];
        let opts = Options::default();
        let p = plan_replace(&opts, &targets, &[N4_24], 100).remove(0);
        assert_eq!(
            p.msgs,
            vec![
                Msg::AddTable,
                Msg::AddSet(N6_64),
                Msg::AddChain(Hook::Input),
                Msg::AddRule(Hook::Input, N6_64),
                Msg::AddTable,
                Msg::AddSet(H4),
                Msg::AddSet(H6),
                Msg::FlushSet(H4),
                Msg::FlushSet(H6),
                Msg::FlushSet(N4_24),
                Msg::AddElems(
                    H4,
                    vec![e("198.18.0.1", Some(120_000)), e("198.18.0.2", Some(7_000))]
                ),
                Msg::AddElems(H6, vec![e("fd00:5e5e::1", None)]),
                Msg::AddElems(N6_64, vec![e("fd00:5e5e:1::/64", Some(9_000))]),
            ]
        );
        // No delete of single elements: nothing can be missing for `ENOENT`.
        assert!(!p.msgs.iter().any(|m| matches!(m, Msg::DelElems(..))));
    }

    #[test]
    fn replace_in_batches_creates_every_set_first_and_later_batches_only_add() {
        let targets = [t("198.18.0.1", None), t("198.18.7.0/24", Some(5))];
        let plans = plan_replace(&Options::default(), &targets, &[], 1);
        assert_eq!(plans.len(), 2);
        // the /24 is in the second batch; its set and rule come with the first
        assert!(plans[0].msgs.contains(&Msg::AddSet(N4_24)));
        assert!(plans[0].msgs.contains(&Msg::AddRule(Hook::Input, N4_24)));
        assert!(plans[0].msgs.contains(&Msg::FlushSet(H4)));
        assert!(!plans[1]
            .msgs
            .iter()
            .any(|m| matches!(m, Msg::FlushSet(_) | Msg::AddRule(..))));
        assert_eq!(
            plans[1].msgs.last(),
            Some(&Msg::AddElems(N4_24, vec![e("198.18.7.0/24", Some(5_000))]))
        );
    }

    #[test]
    fn replace_with_nothing_empties_every_set() {
        let p = plan_replace(&Options::default(), &[], &[], 100).remove(0);
        assert_eq!(
            p.msgs,
            vec![
                Msg::AddTable,
                Msg::AddSet(H4),
                Msg::AddSet(H6),
                Msg::FlushSet(H4),
                Msg::FlushSet(H6),
            ]
        );
        assert_eq!(
            p.to_string(),
            "add table inet portsentry\n\
             add set inet portsentry blocked4 { type ipv4_addr; flags timeout; }\n\
             add set inet portsentry blocked6 { type ipv6_addr; flags timeout; }\n\
             flush set inet portsentry blocked4\n\
             flush set inet portsentry blocked6\n"
        );
        // later batches of a big replace only add
        let p = plan_replace_elems(&[e("fd00:5e5e::2", Some(1))], None);
        assert!(!p.msgs.iter().any(|m| matches!(m, Msg::FlushSet(_))));
        assert!(matches!(p.msgs.last(), Some(Msg::AddElems(s, v)) if *s == H6 && v.len() == 1));
    }

    #[test]
    fn unblock_and_flush() {
        let p = plan_unblock(&"fd00:5e5e::9".parse().unwrap());
        assert_eq!(
            p.msgs,
            vec![Msg::DelElems(H6, vec![e("fd00:5e5e::9", None)])]
        );
        let p = plan_unblock(&"198.18.0.0/24".parse().unwrap());
        assert_eq!(
            p.msgs,
            vec![Msg::DelElems(N4_24, vec![e("198.18.0.0/24", None)])]
        );
        assert_eq!(plan_flush().msgs, vec![Msg::DelTable]);
        assert_eq!(Msg::DelTable.nft("x"), "delete table inet x");
    }

    #[test]
    fn timeouts_round_up_and_are_capped() {
        assert_eq!(timeout_ms(Duration::ZERO), 1);
        assert_eq!(timeout_ms(Duration::from_nanos(1)), 1);
        assert_eq!(timeout_ms(Duration::from_micros(1500)), 2);
        assert_eq!(timeout_ms(Duration::from_secs(3600)), 3_600_000);
        assert_eq!(timeout_ms(Duration::MAX), MAX_TIMEOUT_MS);
    }

    #[test]
    fn table_names() {
        assert!(check_table_name("portsentry").is_ok());
        assert!(check_table_name("").is_err());
        assert!(check_table_name("a\0b").is_err());
        assert!(check_table_name(&"x".repeat(255)).is_ok());
        assert!(check_table_name(&"x".repeat(256)).is_err());
    }

    #[test]
    fn keys_are_network_order_with_host_bits_clear() {
        assert_eq!(e("198.18.0.1", None).key(), vec![198, 18, 0, 1]);
        let k = e("fd00:5e5e::1", None).key();
        assert_eq!(k[..4], [0xfd, 0x00, 0x5e, 0x5e]);
        assert_eq!(k[15], 1);
        assert_eq!(e("198.18.7.9/24", None).key(), vec![198, 18, 7, 0]);
    }
}
