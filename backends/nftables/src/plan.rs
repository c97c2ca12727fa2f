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

    /// Our set for this family.
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

    /// Transaction-local id of the set, so a rule in the same batch can name it.
    pub fn set_id(self) -> u32 {
        match self {
            Family::V4 => 1,
            Family::V6 => 2,
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

/// One expression of a rule, evaluated in order; all use register 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Load `meta nfproto` (the packet's protocol family).
    MetaNfproto,
    /// Continue only if register 1 equals these bytes.
    CmpEq(Vec<u8>),
    /// Load `len` bytes at `offset` of the network header.
    NetworkPayload { offset: u32, len: u32 },
    /// Continue only if register 1 is an element of the named set.
    Lookup(&'static str),
    /// Count packets and bytes.
    Counter,
    /// Drop the packet.
    Drop,
}

/// `meta nfproto ipv4 ip saddr @blocked4 counter drop` (and the IPv6 twin).
pub fn rule_exprs(family: Family) -> Vec<Expr> {
    let (offset, len) = family.saddr();
    vec![
        Expr::MetaNfproto,
        Expr::CmpEq(vec![family.nfproto()]),
        Expr::NetworkPayload { offset, len },
        Expr::Lookup(family.set_name()),
        Expr::Counter,
        Expr::Drop,
    ]
}

/// One set element: a host address and its kernel timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elem {
    pub addr: IpAddr,
    /// Milliseconds until the kernel drops the element; `None` = permanent.
    pub timeout_ms: Option<u64>,
}

impl Elem {
    /// The key bytes in network order, as the set stores them.
    pub fn key(&self) -> Vec<u8> {
        match self.addr {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        }
    }
}

/// One object change, in batch order. Element lists may become several netlink messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// Create the table if absent (no `NLM_F_EXCL`).
    AddTable,
    /// Create the set if absent, flags `timeout`.
    AddSet(Family),
    /// Create the base chain if absent.
    AddChain(Hook),
    /// Delete every rule of our chain.
    FlushChain(Hook),
    /// Append the drop rule for one family.
    AddRule(Hook, Family),
    /// Delete a chain we no longer want.
    DelChain(Hook),
    /// Add elements; an existing one is not an error (no `NLM_F_EXCL`).
    AddElems(Family, Vec<Elem>),
    /// Delete elements; a missing one fails the batch with `ENOENT`.
    DelElems(Family, Vec<Elem>),
    /// Delete every element of the set (`NFT_MSG_DELSETELEM` without an element list).
    FlushSet(Family),
    /// Delete our table with everything in it.
    DelTable,
}

impl Msg {
    /// The equivalent `nft` command, for error messages and logs.
    pub fn nft(&self, table: &str) -> String {
        match self {
            Msg::AddTable => format!("add table inet {table}"),
            Msg::AddSet(f) => format!(
                "add set inet {table} {} {{ type {}; flags timeout; }}",
                f.set_name(),
                f.key_name()
            ),
            Msg::AddChain(h) => format!(
                "add chain inet {table} {} {{ type filter hook {} priority {PRIORITY}; policy accept; }}",
                h.chain(),
                h.chain()
            ),
            Msg::FlushChain(h) => format!("flush chain inet {table} {}", h.chain()),
            Msg::AddRule(h, f) => format!(
                "add rule inet {table} {} {} saddr @{} counter drop",
                h.chain(),
                f.nft_proto(),
                f.set_name()
            ),
            Msg::DelChain(h) => format!("delete chain inet {table} {}", h.chain()),
            Msg::AddElems(f, e) => elems_cmd("add", table, *f, e),
            Msg::DelElems(f, e) => elems_cmd("delete", table, *f, e),
            Msg::FlushSet(f) => format!("flush set inet {table} {}", f.set_name()),
            Msg::DelTable => format!("delete table inet {table}"),
        }
    }
}

fn elems_cmd(verb: &str, table: &str, family: Family, elems: &[Elem]) -> String {
    let set = family.set_name();
    match elems {
        [one] => format!("{verb} element inet {table} {set} {{ {} }}", one.addr),
        _ => format!(
            "{verb} element inet {table} {set} {{ {} elements }}",
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

/// Set-up: create table, sets and chains if absent, flush our chains, re-add our rules,
/// and delete `stale` chains (ours, on hooks no longer wanted, known to exist).
pub fn plan_init(opts: &Options, stale: &[Hook]) -> Plan {
    let hooks = opts.wanted_hooks();
    let mut msgs = vec![Msg::AddTable];
    msgs.extend(Family::ALL.map(Msg::AddSet));
    for &h in &hooks {
        msgs.push(Msg::AddChain(h));
        msgs.push(Msg::FlushChain(h));
        msgs.extend(Family::ALL.map(|f| Msg::AddRule(h, f)));
    }
    msgs.extend(
        stale
            .iter()
            .filter(|h| !hooks.contains(h))
            .map(|&h| Msg::DelChain(h)),
    );
    Plan { msgs }
}

/// The host targets, deduplicated (the last timeout wins), in first-seen order; and the
/// targets that are networks, not hosts (the sets have no `interval` flag yet, so those
/// cannot be held).
pub fn hosts(targets: &[Target]) -> (Vec<Elem>, Vec<Net>) {
    let mut order: Vec<Elem> = Vec::with_capacity(targets.len());
    let mut index: HashMap<IpAddr, usize> = HashMap::with_capacity(targets.len());
    let mut rejected = Vec::new();
    for t in targets {
        if !t.net.is_host() {
            rejected.push(t.net);
            continue;
        }
        let elem = Elem {
            addr: t.net.addr(),
            timeout_ms: t.timeout.map(timeout_ms),
        };
        match index.get(&elem.addr) {
            Some(&i) => order[i] = elem,
            None => {
                index.insert(elem.addr, order.len());
                order.push(elem);
            }
        }
    }
    (order, rejected)
}

/// `hosts` split by family, IPv4 first; families without hosts are left out.
fn by_family(hosts: &[Elem]) -> Vec<(Family, Vec<Elem>)> {
    Family::ALL
        .into_iter()
        .map(|f| {
            let e: Vec<Elem> = hosts
                .iter()
                .filter(|e| Family::of(&e.addr) == f)
                .copied()
                .collect();
            (f, e)
        })
        .filter(|(_, e)| !e.is_empty())
        .collect()
}

/// Blocks: the host targets, deduplicated (the last timeout wins), as add + delete + add
/// per family. The first add makes every element exist (a no-op for existing ones), the
/// delete removes it, the second add creates it afresh with the new timeout: inside one
/// transaction that refreshes the kernel's expiry on every kernel, where a plain re-add
/// keeps the old expiry (always on kernels without element timeout updates; on newer
/// ones, 6.18 measured, whenever the timeout is unchanged). Deleting alone would fail the
/// whole batch with `ENOENT` for an element that is not there yet.
///
/// Returns the plan and the targets that are networks, not hosts.
pub fn plan_block(targets: &[Target]) -> (Plan, Vec<Net>) {
    let (hosts, rejected) = hosts(targets);
    let by_family = by_family(&hosts);
    let mut msgs = Vec::new();
    for (f, e) in &by_family {
        msgs.push(Msg::AddElems(*f, e.clone()));
    }
    for (f, e) in &by_family {
        let keys = e
            .iter()
            .map(|x| Elem {
                timeout_ms: None,
                ..*x
            })
            .collect();
        msgs.push(Msg::DelElems(*f, keys));
    }
    for (f, e) in by_family {
        msgs.push(Msg::AddElems(f, e));
    }
    (Plan { msgs }, rejected)
}

/// Adds: the host targets, deduplicated, as one add per family. For elements not in the
/// sets yet (an existing one keeps its old expiry: use [`plan_block`] to refresh).
///
/// Returns the plan and the targets that are networks, not hosts.
pub fn plan_add(targets: &[Target]) -> (Plan, Vec<Net>) {
    let (hosts, rejected) = hosts(targets);
    let msgs = by_family(&hosts)
        .into_iter()
        .map(|(f, e)| Msg::AddElems(f, e))
        .collect();
    (Plan { msgs }, rejected)
}

/// Replace: the sets hold exactly the host targets afterwards (deduplicated, the last
/// timeout wins). Returns the plan and the targets that are networks, not hosts.
pub fn plan_replace(targets: &[Target]) -> (Plan, Vec<Net>) {
    let (hosts, rejected) = hosts(targets);
    (plan_replace_hosts(&hosts, true), rejected)
}

// nft -f: add table inet portsentry; add set inet portsentry blocked4 { type ipv4_addr; flags timeout; }; (blocked6 alike); flush set inet portsentry blocked4; flush set inet portsentry blocked6; add element inet portsentry blocked4 { 198.18.0.1 timeout 3600000ms, ... }; (blocked6 alike)
/// Replace for deduplicated `hosts` in one batch: create table and sets if absent (so the
/// batch works before `init` too; the drop rules still come from `init`), then with
/// `flush` empty both sets, then add every host with its own timeout. One plain add per
/// element is enough: the sets were emptied earlier in the same transaction, so every
/// element is created afresh with the requested timeout, and none that is kept is ever
/// missing (the transaction applies as a whole). Without `flush` it only adds (the later
/// batches of a replace too large for one).
pub fn plan_replace_hosts(hosts: &[Elem], flush: bool) -> Plan {
    let mut msgs = vec![Msg::AddTable];
    msgs.extend(Family::ALL.map(Msg::AddSet));
    if flush {
        msgs.extend(Family::ALL.map(Msg::FlushSet));
    }
    msgs.extend(
        by_family(hosts)
            .into_iter()
            .map(|(f, e)| Msg::AddElems(f, e)),
    );
    Plan { msgs }
}

/// Unblock: delete the element. Empty for a network (we never hold one).
pub fn plan_unblock(net: &Net) -> Plan {
    if !net.is_host() {
        return Plan::default();
    }
    let elem = Elem {
        addr: net.addr(),
        timeout_ms: None,
    };
    Plan {
        msgs: vec![Msg::DelElems(Family::of(&elem.addr), vec![elem])],
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
            timeout: timeout.map(Duration::from_secs),
            ..Target::host(s.parse().unwrap())
        }
    }

    #[test]
    fn init_creates_then_flushes_then_adds_rules() {
        let p = plan_init(&Options::default(), &[]);
        assert_eq!(
            p.msgs,
            vec![
                Msg::AddTable,
                Msg::AddSet(Family::V4),
                Msg::AddSet(Family::V6),
                Msg::AddChain(Hook::Input),
                Msg::FlushChain(Hook::Input),
                Msg::AddRule(Hook::Input, Family::V4),
                Msg::AddRule(Hook::Input, Family::V6),
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
    fn init_with_forward_and_stale_chains() {
        let opts = Options {
            table: "ps".into(),
            hooks: vec![Hook::Forward, Hook::Input, Hook::Forward],
        };
        let p = plan_init(&opts, &[Hook::Forward]);
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

        let p = plan_init(&Options::default(), &[Hook::Forward]);
        assert_eq!(p.msgs.last(), Some(&Msg::DelChain(Hook::Forward)));
        assert_eq!(
            p.msgs.last().unwrap().nft("portsentry"),
            "delete chain inet portsentry forward"
        );
    }

    #[test]
    fn rule_expressions_check_the_family_first() {
        assert_eq!(
            rule_exprs(Family::V4),
            vec![
                Expr::MetaNfproto,
                Expr::CmpEq(vec![2]),
                Expr::NetworkPayload { offset: 12, len: 4 },
                Expr::Lookup("blocked4"),
                Expr::Counter,
                Expr::Drop,
            ]
        );
        assert_eq!(
            rule_exprs(Family::V6),
            vec![
                Expr::MetaNfproto,
                Expr::CmpEq(vec![10]),
                Expr::NetworkPayload { offset: 8, len: 16 },
                Expr::Lookup("blocked6"),
                Expr::Counter,
                Expr::Drop,
            ]
        );
    }

    #[test]
    fn block_is_add_delete_add_per_family_deduplicated() {
        let targets = [
            t("198.18.0.1", Some(60)),
            t("fd00:5e5e::1", None),
            t("198.18.0.2", None),
            t("198.18.0.1", Some(120)),
            t("::ffff:198.18.0.3", Some(1)),
        ];
        let (p, rejected) = plan_block(&targets);
        assert!(rejected.is_empty());
        let v4 = vec![
            Elem {
                addr: "198.18.0.1".parse().unwrap(),
                timeout_ms: Some(120_000),
            },
            Elem {
                addr: "198.18.0.2".parse().unwrap(),
                timeout_ms: None,
            },
            Elem {
                addr: "198.18.0.3".parse().unwrap(),
                timeout_ms: Some(1_000),
            },
        ];
        let v6 = vec![Elem {
            addr: "fd00:5e5e::1".parse().unwrap(),
            timeout_ms: None,
        }];
        let keys4 = v4
            .iter()
            .map(|e| Elem {
                timeout_ms: None,
                ..*e
            })
            .collect();
        assert_eq!(
            p.msgs,
            vec![
                Msg::AddElems(Family::V4, v4.clone()),
                Msg::AddElems(Family::V6, v6.clone()),
                Msg::DelElems(Family::V4, keys4),
                Msg::DelElems(Family::V6, v6.clone()),
                Msg::AddElems(Family::V4, v4),
                Msg::AddElems(Family::V6, v6),
            ]
        );
        assert_eq!(
            p.msgs[1].nft("portsentry"),
            "add element inet portsentry blocked6 { fd00:5e5e::1 }"
        );
        assert_eq!(
            p.msgs[0].nft("portsentry"),
            "add element inet portsentry blocked4 { 3 elements }"
        );
    }

    #[test]
    fn block_rejects_networks_but_keeps_hosts() {
        let net: Net = "198.18.0.0/24".parse().unwrap();
        let targets = [
            Target {
                net,
                timeout: None,
                reason: Default::default(),
            },
            t("198.18.1.1", None),
        ];
        let (p, rejected) = plan_block(&targets);
        assert_eq!(rejected, vec![net]);
        assert_eq!(p.msgs.len(), 3);
        let (p, rejected) = plan_block(&targets[..1]);
        assert_eq!(rejected, vec![net]);
        assert!(p.msgs.is_empty());
    }

    #[test]
    fn block_of_nothing_sends_nothing() {
        assert!(plan_block(&[]).0.msgs.is_empty());
    }

    #[test]
    fn replace_creates_flushes_both_sets_then_adds_once() {
        let targets = [
            t("198.18.0.1", Some(60)),
            t("fd00:5e5e::1", None),
            t("198.18.0.2", Some(7)),
            t("198.18.0.1", Some(120)),
        ];
        let (p, rejected) = plan_replace(&targets);
        assert!(rejected.is_empty());
        let v4 = vec![
            Elem {
                addr: "198.18.0.1".parse().unwrap(),
                timeout_ms: Some(120_000),
            },
            Elem {
                addr: "198.18.0.2".parse().unwrap(),
                timeout_ms: Some(7_000),
            },
        ];
        let v6 = vec![Elem {
            addr: "fd00:5e5e::1".parse().unwrap(),
            timeout_ms: None,
        }];
        assert_eq!(
            p.msgs,
            vec![
                Msg::AddTable,
                Msg::AddSet(Family::V4),
                Msg::AddSet(Family::V6),
                Msg::FlushSet(Family::V4),
                Msg::FlushSet(Family::V6),
                Msg::AddElems(Family::V4, v4),
                Msg::AddElems(Family::V6, v6),
            ]
        );
        // No delete of single elements: nothing can be missing for `ENOENT`.
        assert!(!p.msgs.iter().any(|m| matches!(m, Msg::DelElems(..))));
        assert_eq!(
            p.to_string(),
            "add table inet portsentry\n\
             add set inet portsentry blocked4 { type ipv4_addr; flags timeout; }\n\
             add set inet portsentry blocked6 { type ipv6_addr; flags timeout; }\n\
             flush set inet portsentry blocked4\n\
             flush set inet portsentry blocked6\n\
             add element inet portsentry blocked4 { 2 elements }\n\
             add element inet portsentry blocked6 { fd00:5e5e::1 }\n"
        );
    }

    #[test]
    fn replace_with_nothing_empties_both_sets() {
        let (p, rejected) = plan_replace(&[]);
        assert!(rejected.is_empty());
        assert_eq!(
            p.msgs,
            vec![
                Msg::AddTable,
                Msg::AddSet(Family::V4),
                Msg::AddSet(Family::V6),
                Msg::FlushSet(Family::V4),
                Msg::FlushSet(Family::V6),
            ]
        );
        // Only IPv6 hosts: both sets are still flushed, only blocked6 gets elements.
        let (p, _) = plan_replace(&[t("fd00:5e5e::2", Some(1))]);
        assert_eq!(p.msgs.len(), 6);
        assert!(matches!(p.msgs[5], Msg::AddElems(Family::V6, ref e) if e.len() == 1));
    }

    #[test]
    fn replace_rejects_networks_and_later_batches_only_add() {
        let net: Net = "fd00:5e5e::/64".parse().unwrap();
        let targets = [
            t("198.18.0.1", None),
            Target {
                net,
                timeout: None,
                reason: Default::default(),
            },
        ];
        let (p, rejected) = plan_replace(&targets);
        assert_eq!(rejected, vec![net]);
        assert_eq!(p.msgs.len(), 6);
        let (hosts, _) = hosts(&targets);
        let p = plan_replace_hosts(&hosts, false);
        assert!(!p.msgs.iter().any(|m| matches!(m, Msg::FlushSet(_))));
        assert_eq!(p.msgs.last(), Some(&Msg::AddElems(Family::V4, hosts)));
        assert_eq!(
            Msg::FlushSet(Family::V6).nft("ps"),
            "flush set inet ps blocked6"
        );
    }

    #[test]
    fn unblock_and_flush() {
        let p = plan_unblock(&"fd00:5e5e::9".parse().unwrap());
        assert_eq!(
            p.msgs,
            vec![Msg::DelElems(
                Family::V6,
                vec![Elem {
                    addr: "fd00:5e5e::9".parse().unwrap(),
                    timeout_ms: None
                }]
            )]
        );
        assert!(plan_unblock(&"198.18.0.0/16".parse().unwrap())
            .msgs
            .is_empty());
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
    fn keys_are_network_order() {
        let e = Elem {
            addr: "198.18.0.1".parse().unwrap(),
            timeout_ms: None,
        };
        assert_eq!(e.key(), vec![198, 18, 0, 1]);
        let e = Elem {
            addr: "fd00:5e5e::1".parse().unwrap(),
            timeout_ms: None,
        };
        assert_eq!(e.key()[..4], [0xfd, 0x00, 0x5e, 0x5e]);
        assert_eq!(e.key()[15], 1);
    }
}
