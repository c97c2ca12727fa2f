//! Plan in, netlink batch out: turns [`Msg`]s into libnftnl objects and writes them, in
//! order, between one batch-begin and one batch-end message.
//!
//! In: the table name and a [`Plan`]. Out: an [`Encoded`] batch with one label (the
//! equivalent `nft` command) per netlink message, to name a message the kernel refuses.
//! Must not: send anything, or write an object outside our table.

use std::ffi::{CStr, CString};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use nftnl::expr::{
    Bitwise, Cmp, CmpOp, Counter, Ipv4HeaderField, Ipv6HeaderField, Lookup, Meta,
    NetworkHeaderField, Payload, Verdict,
};
use nftnl::set::Set;
use nftnl::{Batch, Chain, ChainType, FinalizedBatch, MsgType, Policy, ProtoFamily, Rule, Table};

use crate::plan::{rule_exprs, Elem, Expr, Family, Hook, Msg, Plan, SetRef, PRIORITY};
use crate::sys;

/// Elements per libnftnl set object while encoding: bounds the memory of libnftnl's
/// per-element objects; the batch bytes are the same either way.
const ELEM_CHUNK: usize = 2048;

/// A finished batch and what each of its messages does.
pub struct Encoded {
    pub batch: FinalizedBatch,
    /// One label per message between batch begin and end, in order.
    pub labels: Vec<String>,
}

impl Encoded {
    /// Sequence numbers that must each be answered, and the first message's number.
    /// nftnl asks for ACKs on batch begin/end only where the kernel gives them (6.10+);
    /// then the range holds two more numbers than there are messages.
    pub fn expected(&self) -> (Range<u32>, u32) {
        let r = self.batch.sequence_numbers();
        let first = if r.len() == self.labels.len() + 2 {
            r.start + 1
        } else {
            r.start
        };
        (r, first)
    }

    /// What the message with this sequence number does.
    pub fn label(&self, seq: u32) -> String {
        let (r, first) = self.expected();
        match seq.checked_sub(first).map(|i| self.labels.get(i as usize)) {
            Some(Some(l)) => l.clone(),
            _ if seq == 0 || seq == r.start => "batch begin".to_string(),
            _ if seq + 1 == r.end => "batch end".to_string(),
            _ => format!("message {seq}"),
        }
    }

    /// The batch as byte slices (libnftnl's pages), in order.
    pub fn pages(&self) -> Vec<&[u8]> {
        self.batch.iter().collect()
    }
}

fn cstr(s: &str) -> CString {
    // Names come from `check_table_name` (no NUL) or are our constants.
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

/// Encodes `plan` for table `inet <table>`.
pub fn encode(table: &str, plan: &Plan) -> Encoded {
    let name = cstr(table);
    let t = Table::new(&name, ProtoFamily::Inet);
    let mut batch = Batch::new();
    let mut labels = Vec::new();
    for m in &plan.msgs {
        let n = write(&mut batch, &t, m);
        labels.extend(std::iter::repeat_n(m.nft(table), n));
    }
    Encoded {
        batch: batch.finalize(),
        labels,
    }
}

/// Writes one plan message; returns how many netlink messages it took.
fn write(batch: &mut Batch, t: &Table, m: &Msg) -> usize {
    match m {
        // nft add table inet portsentry
        Msg::AddTable => {
            batch.add(t, MsgType::Add);
            1
        }
        // nft add set inet portsentry blocked4 { type ipv4_addr; flags timeout; }
        Msg::AddSet(s) => {
            let name = cstr(&s.name());
            match s.family {
                Family::V4 => batch.add(&plan_set::<Ipv4Addr>(t, &name, *s), MsgType::Add),
                Family::V6 => batch.add(&plan_set::<Ipv6Addr>(t, &name, *s), MsgType::Add),
            }
            1
        }
        // nft add chain inet portsentry input { type filter hook input priority -10; policy accept; }
        Msg::AddChain(h) => {
            batch.add(&plan_base_chain(t, *h), MsgType::Add);
            1
        }
        // nft flush chain inet portsentry input
        Msg::FlushChain(h) => {
            let c = plan_chain(t, *h);
            batch.add(&Rule::new(&c), MsgType::Del);
            1
        }
        // nft add rule inet portsentry input meta nfproto ipv4 ip saddr @blocked4 counter drop
        // (a set of networks: ... ip saddr & 255.255.255.0 @blocked4_24 counter drop)
        Msg::AddRule(h, s) => {
            let c = plan_chain(t, *h);
            let name = cstr(&s.name());
            match s.family {
                Family::V4 => {
                    let set = plan_set::<Ipv4Addr>(t, &name, *s);
                    batch.add(&plan_rule(&c, &set, *s), MsgType::Add);
                }
                Family::V6 => {
                    let set = plan_set::<Ipv6Addr>(t, &name, *s);
                    batch.add(&plan_rule(&c, &set, *s), MsgType::Add);
                }
            }
            1
        }
        // nft delete chain inet portsentry forward
        Msg::DelChain(h) => {
            batch.add(&plan_chain(t, *h), MsgType::Del);
            1
        }
        // nft add element inet portsentry blocked4 { 198.18.0.1 timeout 3600000ms }
        Msg::AddElems(f, elems) => write_elems(batch, t, *f, elems, MsgType::Add),
        // nft delete element inet portsentry blocked4 { 198.18.0.1 }
        Msg::DelElems(f, elems) => write_elems(batch, t, *f, elems, MsgType::Del),
        // nft flush set inet portsentry blocked4
        Msg::FlushSet(s) => {
            let set = cstr(&s.name());
            sys::push_flush(batch, t.get_name(), &set, ProtoFamily::Inet as u16);
            1
        }
        // nft delete table inet portsentry
        Msg::DelTable => {
            batch.add(t, MsgType::Del);
            1
        }
    }
}

// nft add set inet portsentry blocked4 { type ipv4_addr; flags timeout; }
fn plan_set<'a, K: nftnl::set::SetKey>(t: &'a Table, name: &CStr, set: SetRef) -> Set<'a, K> {
    let s = Set::<K>::new_named(name, set.set_id(), t, ProtoFamily::Inet);
    sys::set_flags(&s, libc::NFT_SET_TIMEOUT as u32);
    s
}

// nft add chain inet portsentry input   (a reference to our chain, no hook)
fn plan_chain(t: &Table, h: Hook) -> Chain<'_> {
    Chain::new(cstr(h.chain()), t)
}

// nft add chain inet portsentry input { type filter hook input priority -10; policy accept; }
fn plan_base_chain(t: &Table, h: Hook) -> Chain<'_> {
    let mut c = plan_chain(t, h);
    let hook = match h {
        Hook::Input => nftnl::Hook::In,
        Hook::Forward => nftnl::Hook::Forward,
    };
    c.set_hook(hook, PRIORITY);
    c.set_type(ChainType::Filter);
    c.set_policy(Policy::Accept);
    c
}

// nft add rule inet portsentry input meta nfproto ipv4 ip saddr @blocked4 counter drop
fn plan_rule<'a, K>(c: &'a Chain<'a>, set: &Set<'_, K>, s: SetRef) -> Rule<'a> {
    let f = s.family;
    let mut r = Rule::new(c);
    for e in rule_exprs(s) {
        match e {
            Expr::MetaNfproto => r.add_expr(&Meta::NfProto),
            Expr::CmpEq(bytes) => r.add_expr(&Cmp::new(CmpOp::Eq, bytes.as_slice())),
            Expr::NetworkPayload { .. } => r.add_expr(&Payload::Network(match f {
                Family::V4 => NetworkHeaderField::Ipv4(Ipv4HeaderField::Saddr),
                Family::V6 => NetworkHeaderField::Ipv6(Ipv6HeaderField::Saddr),
            })),
            Expr::Mask(mask) => {
                let xor = vec![0u8; mask.len()];
                r.add_expr(&Bitwise::new(mask.as_slice(), xor.as_slice()))
            }
            Expr::Lookup(_) => r.add_expr(&Lookup::new(set)),
            Expr::Counter => r.add_expr(&Counter),
            Expr::Drop => r.add_expr(&Verdict::Drop),
        }
    }
    r
}

// nft add|delete element inet portsentry blocked4 { ... }
fn write_elems(batch: &mut Batch, t: &Table, s: SetRef, elems: &[Elem], op: MsgType) -> usize {
    let set = cstr(&s.name());
    let table: &CStr = t.get_name();
    let mut n = 0;
    for chunk in elems.chunks(ELEM_CHUNK) {
        let mut list = sys::ElemList::new(table, &set, ProtoFamily::Inet as u16);
        for e in chunk {
            let timeout = if op == MsgType::Add {
                e.timeout_ms
            } else {
                None
            };
            list.push(&e.key(), timeout);
        }
        n += sys::push_elems(batch, &list, op);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::SetRef;
    use crate::plan::{plan_block, plan_flush, plan_init, plan_replace, plan_unblock, Options};
    use crate::wire;
    use portsentry_blocker::Target;
    use std::time::Duration;

    const NFNL_SUBSYS_NFTABLES: u16 = 10;

    /// (message type without subsystem, flags) of every message between begin and end.
    fn kinds(e: &Encoded) -> Vec<(u16, u16)> {
        let bytes: Vec<u8> = e.pages().concat();
        let msgs: Vec<_> = wire::messages(&bytes).map(|m| m.unwrap()).collect();
        assert_eq!(
            msgs.first().unwrap().header.kind,
            libc::NFNL_MSG_BATCH_BEGIN as u16
        );
        assert_eq!(
            msgs.last().unwrap().header.kind,
            libc::NFNL_MSG_BATCH_END as u16
        );
        msgs[1..msgs.len() - 1]
            .iter()
            .map(|m| {
                assert_eq!(m.header.kind >> 8, NFNL_SUBSYS_NFTABLES);
                // nfgenmsg: family inet
                assert_eq!(m.payload[0], libc::NFPROTO_INET as u8);
                (m.header.kind & 0xff, m.header.flags)
            })
            .collect()
    }

    const REQ: u16 = libc::NLM_F_REQUEST as u16;
    const ACK: u16 = libc::NLM_F_ACK as u16;
    const CREATE: u16 = libc::NLM_F_CREATE as u16;
    const EXCL: u16 = libc::NLM_F_EXCL as u16;
    const APPEND: u16 = libc::NLM_F_APPEND as u16;

    #[test]
    fn init_batch_creates_without_excl() {
        let e = encode("portsentry", &plan_init(&Options::default(), &[], &[]));
        let k = kinds(&e);
        assert_eq!(
            k,
            vec![
                (libc::NFT_MSG_NEWTABLE as u16, REQ | ACK),
                (libc::NFT_MSG_NEWSET as u16, REQ | ACK | CREATE | APPEND),
                (libc::NFT_MSG_NEWSET as u16, REQ | ACK | CREATE | APPEND),
                (libc::NFT_MSG_NEWCHAIN as u16, REQ | ACK | CREATE),
                (libc::NFT_MSG_DELRULE as u16, REQ | ACK),
                // Rules are always new: EXCL on NEWRULE only forbids replacing one.
                (
                    libc::NFT_MSG_NEWRULE as u16,
                    REQ | ACK | CREATE | APPEND | EXCL
                ),
                (
                    libc::NFT_MSG_NEWRULE as u16,
                    REQ | ACK | CREATE | APPEND | EXCL
                ),
            ]
        );
        assert_eq!(e.labels.len(), 7);
        assert_eq!(e.labels[4], "flush chain inet portsentry input");
        let (r, first) = e.expected();
        assert!(r.len() == 7 || r.len() == 9);
        assert_eq!(e.label(first), "add table inet portsentry");
        assert_eq!(
            e.label(first + 6),
            "add rule inet portsentry input ip6 saddr @blocked6 counter drop"
        );
    }

    #[test]
    fn a_set_of_networks_has_a_masking_rule() {
        let s = SetRef {
            family: Family::V4,
            prefix: 24,
        };
        let e = encode(
            "portsentry",
            &crate::plan::plan_create_sets(&Options::default(), &[s]),
        );
        let k: Vec<u16> = kinds(&e).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            k,
            [
                libc::NFT_MSG_NEWTABLE,
                libc::NFT_MSG_NEWSET,
                libc::NFT_MSG_NEWCHAIN,
                libc::NFT_MSG_NEWRULE
            ]
            .map(|x| x as u16)
        );
        let bytes: Vec<u8> = e.pages().concat();
        let rule = wire::messages(&bytes).nth(4).unwrap().unwrap();
        let has = |needle: &[u8]| rule.payload.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"bitwise\0"));
        assert!(has(b"lookup\0"));
        assert!(has(b"blocked4_24\0"));
        assert!(has(&[255, 255, 255, 0]));
        assert_eq!(
            e.labels[3],
            "add rule inet portsentry input ip saddr & 255.255.255.0 @blocked4_24 counter drop"
        );
    }

    #[test]
    fn sets_carry_the_timeout_flag_and_key() {
        let t = Table::new(c"portsentry", ProtoFamily::Inet);
        let s = plan_set::<Ipv4Addr>(&t, c"blocked4", SetRef::hosts(Family::V4));
        assert_eq!(sys::set_flags_of(&s), Some(libc::NFT_SET_TIMEOUT as u32));
        assert_eq!(s.get_name(), c"blocked4");
        let s = plan_set::<Ipv6Addr>(&t, c"blocked6", SetRef::hosts(Family::V6));
        assert_eq!(sys::set_flags_of(&s), Some(libc::NFT_SET_TIMEOUT as u32));
    }

    #[test]
    fn element_messages_have_no_excl_and_carry_timeouts() {
        let targets = [
            Target {
                timeout: Some(Duration::from_secs(3600)),
                ..Target::host("198.18.0.1".parse().unwrap())
            },
            Target::host("fd00:5e5e::1".parse().unwrap()),
        ];
        let e = encode("portsentry", &plan_block(&targets));
        let new = libc::NFT_MSG_NEWSETELEM as u16;
        let del = libc::NFT_MSG_DELSETELEM as u16;
        assert_eq!(
            kinds(&e),
            vec![
                (new, REQ | ACK | CREATE),
                (new, REQ | ACK | CREATE),
                (del, REQ | ACK),
                (del, REQ | ACK),
                (new, REQ | ACK | CREATE),
                (new, REQ | ACK | CREATE),
            ]
        );
        // The first NEWSETELEM has the same layout as the kernel's dump of it.
        let bytes: Vec<u8> = e.pages().concat();
        let first = wire::messages(&bytes).nth(1).unwrap().unwrap();
        let elems = wire::setelems(first.payload).unwrap();
        assert_eq!(elems.len(), 1);
        assert_eq!(elems[0].key, vec![198, 18, 0, 1]);
        assert_eq!(elems[0].timeout_ms, Some(3_600_000));
        let del = wire::messages(&bytes).nth(3).unwrap().unwrap();
        assert_eq!(wire::setelems(del.payload).unwrap()[0].timeout_ms, None);
    }

    #[test]
    fn big_batches_span_pages_and_split_messages_at_64k() {
        let targets: Vec<Target> = (0..20_000u32)
            .map(|i| Target {
                timeout: Some(Duration::from_secs(60)),
                ..Target::host(std::net::IpAddr::V4(Ipv4Addr::from(0xC612_0000 + i)))
            })
            .collect();
        let e = encode("portsentry", &plan_block(&targets));
        assert!(e.pages().len() > 1, "a batch this big spans several pages");
        let bytes: Vec<u8> = e.pages().concat();
        let mut seen = 0;
        for m in wire::messages(&bytes) {
            let m = m.unwrap();
            assert!(m.header.len <= 65535 + 4096);
            if m.header.kind & 0xff == libc::NFT_MSG_NEWSETELEM as u16 {
                seen += wire::setelems(m.payload).unwrap().len();
            }
        }
        assert_eq!(seen, 40_000);
    }

    #[test]
    fn replace_batch_flushes_with_bare_delsetelem_then_adds() {
        let targets = [
            Target {
                timeout: Some(Duration::from_secs(3600)),
                ..Target::host("198.18.0.1".parse().unwrap())
            },
            Target {
                timeout: Some(Duration::from_secs(60)),
                ..Target::host("fd00:5e5e::1".parse().unwrap())
            },
        ];
        let e = encode(
            "portsentry",
            &plan_replace(&Options::default(), &targets, &[], usize::MAX)[0],
        );
        let new = libc::NFT_MSG_NEWSETELEM as u16;
        let del = libc::NFT_MSG_DELSETELEM as u16;
        assert_eq!(
            kinds(&e),
            vec![
                (libc::NFT_MSG_NEWTABLE as u16, REQ | ACK),
                (libc::NFT_MSG_NEWSET as u16, REQ | ACK | CREATE | APPEND),
                (libc::NFT_MSG_NEWSET as u16, REQ | ACK | CREATE | APPEND),
                (del, REQ | ACK),
                (del, REQ | ACK),
                (new, REQ | ACK | CREATE),
                (new, REQ | ACK | CREATE),
            ]
        );
        assert_eq!(e.labels[3], "flush set inet portsentry blocked4");
        assert_eq!(e.labels[4], "flush set inet portsentry blocked6");
        let bytes: Vec<u8> = e.pages().concat();
        let msgs: Vec<_> = wire::messages(&bytes).map(|m| m.unwrap()).collect();
        // A flush names table (1) and set (2) and carries no element list (3): an empty
        // list would delete nothing.
        for (m, set) in [(&msgs[4], b"blocked4\0"), (&msgs[5], b"blocked6\0")] {
            let mut attrs: Vec<(u16, &[u8])> = wire::attrs(&m.payload[wire::NFGENMSG_LEN..])
                .map(|a| a.unwrap())
                .collect();
            attrs.sort();
            assert_eq!(
                attrs,
                vec![(1, &b"portsentry\0"[..]), (2, &set[..])],
                "{attrs:?}"
            );
        }
        let e4 = wire::setelems(msgs[6].payload).unwrap();
        assert_eq!(e4.len(), 1);
        assert_eq!(e4[0].key, vec![198, 18, 0, 1]);
        assert_eq!(e4[0].timeout_ms, Some(3_600_000));
        let e6 = wire::setelems(msgs[7].payload).unwrap();
        assert_eq!(e6[0].key[..4], [0xfd, 0x00, 0x5e, 0x5e]);
        assert_eq!(e6[0].timeout_ms, Some(60_000));
    }

    #[test]
    fn replace_of_100k_is_a_third_of_the_bytes_of_block() {
        let targets: Vec<Target> = (0..100_000u32)
            .map(|i| Target {
                timeout: Some(Duration::from_secs(3600)),
                ..Target::host(std::net::IpAddr::V4(Ipv4Addr::from(0xC612_0000 + i)))
            })
            .collect();
        let size = |e: &Encoded| e.pages().iter().map(|p| p.len()).sum::<usize>();
        let replace = encode(
            "portsentry",
            &plan_replace(&Options::default(), &targets, &[], usize::MAX)[0],
        );
        let block = encode("portsentry", &plan_block(&targets));
        assert!(
            size(&replace) * 2 < size(&block),
            "{} vs {}",
            size(&replace),
            size(&block)
        );
        let bytes: Vec<u8> = replace.pages().concat();
        let added: usize = wire::messages(&bytes)
            .map(|m| m.unwrap())
            .filter(|m| m.header.kind & 0xff == libc::NFT_MSG_NEWSETELEM as u16)
            .map(|m| wire::setelems(m.payload).unwrap().len())
            .sum();
        assert_eq!(added, 100_000);
    }

    #[test]
    fn unblock_and_flush_batches() {
        let e = encode("portsentry", &plan_unblock(&"198.18.0.1".parse().unwrap()));
        assert_eq!(
            kinds(&e),
            vec![(libc::NFT_MSG_DELSETELEM as u16, REQ | ACK)]
        );
        let e = encode("portsentry", &plan_flush());
        assert_eq!(kinds(&e), vec![(libc::NFT_MSG_DELTABLE as u16, REQ | ACK)]);
        assert_eq!(e.labels, vec!["delete table inet portsentry".to_string()]);
    }
}
