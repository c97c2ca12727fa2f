//! The Blocker trait every firewall backend implements, and the typed data it takes.
//!
//! In: a [`Target`] (an address with a prefix, an optional kernel timeout, a reason).
//! Out: the backend's state changes, or a [`BlockError`] naming backend, step and address.
//! Backends never receive rule text. `block` and `unblock` are idempotent: blocking twice,
//! or unblocking what is not there, is success. This crate does no I/O itself; its test
//! doubles ([`NullBlocker`], [`RecordingBlocker`]) only remember what they were asked.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod text;
pub use text::Text;

/// An address with a prefix length; host bits are always zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

/// Why a string is not a [`Net`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error("\"{0}\" is not an IPv4 or IPv6 address")]
    BadAddress(String),
    #[error("prefix length \"{0}\" is not a number")]
    BadPrefix(String),
    #[error("prefix length /{prefix} is too long for {family} (at most /{max})")]
    PrefixTooLong {
        prefix: u32,
        family: &'static str,
        max: u8,
    },
}

impl Net {
    /// A network; host bits of `addr` are cleared. IPv4-mapped IPv6 addresses
    /// (`::ffff:a.b.c.d`) with a prefix of at least 96 become plain IPv4.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Net, NetError> {
        let (addr, prefix) = match addr {
            IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => (IpAddr::V4(v4), prefix - 96),
                None => (addr, prefix),
            },
            _ => (addr, prefix),
        };
        let max = max_prefix(&addr);
        if prefix > max {
            return Err(NetError::PrefixTooLong {
                prefix: prefix.into(),
                family: family(&addr),
                max,
            });
        }
        Ok(Net {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// One host: /32 or /128 (IPv4-mapped addresses become IPv4).
    pub fn host(addr: IpAddr) -> Net {
        let addr = canonical(addr);
        Net {
            addr,
            prefix: max_prefix(&addr),
        }
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn is_host(&self) -> bool {
        self.prefix == max_prefix(&self.addr)
    }

    /// Whether `ip` lies inside this network (IPv4-mapped addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                mask(ip, self.prefix) == self.addr
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 becomes IPv4; everything else is unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

fn max_prefix(addr: &IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

fn family(addr: &IpAddr) -> &'static str {
    if addr.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

impl FromStr for Net {
    type Err = NetError;

    /// `ADDR` or `ADDR/LEN`; host bits are masked (see [`Net::had_host_bits`]).
    fn from_str(s: &str) -> Result<Net, NetError> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| NetError::BadAddress(a.to_string()))?;
        let prefix = match p {
            None => max_prefix(&addr),
            Some(p) => {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 3 {
                    return Err(NetError::BadPrefix(p.to_string()));
                }
                let n: u32 = p.parse().map_err(|_| NetError::BadPrefix(p.to_string()))?;
                if n > u32::from(max_prefix(&addr)) {
                    return Err(NetError::PrefixTooLong {
                        prefix: n,
                        family: family(&addr),
                        max: max_prefix(&addr),
                    });
                }
                n as u8
            }
        };
        Net::new(addr, prefix)
    }
}

impl Net {
    /// Whether the text `s` (`ADDR/LEN`) named an address with host bits set.
    pub fn had_host_bits(s: &str) -> bool {
        match (s.parse::<Net>(), s.split_once('/')) {
            (Ok(n), Some((a, _))) => a.parse::<IpAddr>().map(canonical).ok() != Some(n.addr),
            _ => false,
        }
    }
}

impl fmt::Display for Net {
    /// A host prints as the bare address, a network as `addr/len`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_host() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// Why a host is blocked: the scan that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reason {
    /// `TCP` or `UDP`.
    pub protocol: Text,
    pub port: u16,
    /// The scan type as logged (`TCP SYN/Normal scan`, `Connect`, ...).
    pub scan: Text,
}

/// What a backend is asked to block or unblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub net: Net,
    /// Remaining time for kernels that expire entries themselves; `None` = permanent.
    pub timeout: Option<Duration>,
    pub reason: Reason,
}

impl Target {
    pub fn host(addr: IpAddr) -> Target {
        Target {
            net: Net::host(addr),
            timeout: None,
            reason: Reason::default(),
        }
    }
}

/// One entry a backend actually holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub net: Net,
    /// What the kernel still counts down, where it keeps a timeout.
    pub remaining: Option<Duration>,
}

impl Held {
    /// Entries of a backend that keeps no per-entry timeout.
    pub fn untimed(nets: impl IntoIterator<Item = Net>) -> Vec<Held> {
        nets.into_iter()
            .map(|net| Held {
                net,
                remaining: None,
            })
            .collect()
    }
}

/// The step of a backend that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Init,
    Block,
    Unblock,
    Flush,
    List,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Init => "set-up",
            Step::Block => "block",
            Step::Unblock => "unblock",
            Step::Flush => "flush",
            Step::List => "list",
        })
    }
}

/// A backend failure: which backend, which step, which address, and the cause.
#[derive(Debug, thiserror::Error)]
#[error("{backend}: {step}{} failed", .net.map(|n| format!(" of {n}")).unwrap_or_default())]
pub struct BlockError {
    pub backend: &'static str,
    pub step: Step,
    pub net: Option<Net>,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl BlockError {
    pub fn new(
        backend: &'static str,
        step: Step,
        net: Option<Net>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> BlockError {
        BlockError {
            backend,
            step,
            net,
            source: source.into(),
        }
    }
}

/// A firewall mechanism that can hold a set of blocked networks.
pub trait Blocker: Send {
    /// The backend's name as selected on the command line (`nft`, `route`, ...).
    fn name(&self) -> &'static str;
    /// Makes our own table/anchor/marker exist, touching nothing else. Idempotent.
    fn init(&mut self) -> Result<(), BlockError>;
    /// Blocks one target. Blocking what is already blocked is success (and refreshes
    /// a kernel timeout where there is one).
    fn block(&mut self, target: &Target) -> Result<(), BlockError>;
    /// Blocks many targets; backends that can batch override this.
    fn block_many(&mut self, targets: &[Target]) -> Result<(), BlockError> {
        targets.iter().try_for_each(|t| self.block(t))
    }
    /// Blocks targets the caller knows are not held now (new blocks): a backend may skip
    /// what [`Blocker::block_many`] does to refresh existing entries. The default is
    /// `block_many`.
    fn add_many(&mut self, targets: &[Target]) -> Result<(), BlockError> {
        self.block_many(targets)
    }
    /// Makes the backend hold exactly `targets` (start-up, reapply after a firewall reload):
    /// one transaction where the backend can, with no moment in which a held target is
    /// missing. The default blocks each target (which keeps entries not in `targets`).
    fn replace_all(&mut self, targets: &[Target]) -> Result<(), BlockError> {
        self.block_many(targets)
    }
    /// Lifts one block. Lifting what is not there is success.
    fn unblock(&mut self, net: &Net) -> Result<(), BlockError>;
    /// Removes everything of ours.
    fn flush(&mut self) -> Result<(), BlockError>;
    /// What the backend actually holds now.
    fn list(&mut self) -> Result<Vec<Held>, BlockError>;
    /// Whether our objects vanished (someone flushed the ruleset or restarted the
    /// firewall), so everything must be set up and applied again. Cheap: called often.
    fn vanished(&mut self) -> Result<bool, BlockError> {
        Ok(false)
    }
    /// What is wrong with our objects now, one line each (a chain without our rule, a
    /// missing table); empty when all is as it must be or the backend cannot tell.
    /// Read-only: `portsentry status` calls it.
    fn problems(&mut self) -> Result<Vec<String>, BlockError> {
        Ok(Vec::new())
    }
    /// Problems that did not fail a step (pf: killing a new host's states failed after
    /// the block itself succeeded); taking them empties the list. The daemon logs them.
    fn take_warnings(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// Whether the backend can hold a network (a prefix shorter than a host's). One that
    /// cannot is never asked to (the blocklist says so for each such block).
    fn holds_networks(&self) -> bool {
        true
    }
    /// Whether [`Blocker::list`] tells what the backend holds. A backend that cannot (the
    /// admin's own tools) gets every stored block unblocked one by one on a flush.
    fn holds_list(&self) -> bool {
        true
    }
}

/// A blocker that does nothing and holds nothing.
#[derive(Debug, Default)]
pub struct NullBlocker;

impl Blocker for NullBlocker {
    fn name(&self) -> &'static str {
        "null"
    }
    fn init(&mut self) -> Result<(), BlockError> {
        Ok(())
    }
    fn block(&mut self, _: &Target) -> Result<(), BlockError> {
        Ok(())
    }
    fn unblock(&mut self, _: &Net) -> Result<(), BlockError> {
        Ok(())
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        Ok(())
    }
    fn list(&mut self) -> Result<Vec<Held>, BlockError> {
        Ok(Vec::new())
    }
}

/// One call a [`RecordingBlocker`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Init,
    Block(Target),
    Unblock(Net),
    Flush,
    List,
}

/// A blocker that records its calls (in a shared log, so several can show their
/// order) and holds entries in memory; it can be told to fail.
#[derive(Debug, Clone)]
pub struct RecordingBlocker {
    pub name: &'static str,
    pub log: Arc<Mutex<Vec<(&'static str, Call)>>>,
    pub held: Vec<Held>,
    /// While set, every call fails (shared, so a test can flip it after handing the
    /// blocker over).
    pub fail: Arc<std::sync::atomic::AtomicBool>,
}

impl RecordingBlocker {
    pub fn new(name: &'static str, log: Arc<Mutex<Vec<(&'static str, Call)>>>) -> Self {
        RecordingBlocker {
            name,
            log,
            held: Vec::new(),
            fail: Arc::default(),
        }
    }

    fn record(&self, step: Step, net: Option<Net>, call: Call) -> Result<(), BlockError> {
        if let Ok(mut log) = self.log.lock() {
            log.push((self.name, call));
        }
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(BlockError::new(self.name, step, net, "told to fail"));
        }
        Ok(())
    }
}

impl Blocker for RecordingBlocker {
    fn name(&self) -> &'static str {
        self.name
    }
    fn init(&mut self) -> Result<(), BlockError> {
        self.record(Step::Init, None, Call::Init)
    }
    fn block(&mut self, target: &Target) -> Result<(), BlockError> {
        self.record(Step::Block, Some(target.net), Call::Block(target.clone()))?;
        self.held.retain(|h| h.net != target.net);
        self.held.push(Held {
            net: target.net,
            remaining: target.timeout,
        });
        Ok(())
    }
    fn unblock(&mut self, net: &Net) -> Result<(), BlockError> {
        self.record(Step::Unblock, Some(*net), Call::Unblock(*net))?;
        self.held.retain(|h| h.net != *net);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        self.record(Step::Flush, None, Call::Flush)?;
        self.held.clear();
        Ok(())
    }
    fn list(&mut self) -> Result<Vec<Held>, BlockError> {
        self.record(Step::List, None, Call::List)?;
        Ok(self.held.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_masks() {
        let n: Net = "198.18.1.7/24".parse().unwrap();
        assert_eq!(n.to_string(), "198.18.1.0/24");
        assert!(Net::had_host_bits("198.18.1.7/24"));
        assert!(!Net::had_host_bits("198.18.1.0/24"));
        assert!(n.contains("198.18.1.200".parse().unwrap()));
        assert!(!n.contains("198.18.2.1".parse().unwrap()));
        let all4: Net = "0.0.0.0/0".parse().unwrap();
        assert!(all4.contains("203.0.113.9".parse().unwrap()));
        assert!(!all4.contains("fd00:5e5e::1".parse().unwrap()));
        let v6: Net = "fd00:5e5e::/32".parse().unwrap();
        assert!(v6.contains("fd00:5e5e:1::9".parse().unwrap()));
    }

    #[test]
    fn mapped_addresses_become_ipv4() {
        let n: Net = "::ffff:198.18.0.1".parse().unwrap();
        assert_eq!(n.to_string(), "198.18.0.1");
        let n: Net = "::ffff:198.18.0.0/112".parse().unwrap();
        assert_eq!(n.to_string(), "198.18.0.0/16");
        assert!(
            Net::host("198.18.0.1".parse().unwrap()).contains("::ffff:198.18.0.1".parse().unwrap())
        );
    }

    #[test]
    fn rejects_bad_text() {
        assert!(matches!(
            "198.18.0.1/33".parse::<Net>(),
            Err(NetError::PrefixTooLong { .. })
        ));
        assert!(matches!(
            "::1/129".parse::<Net>(),
            Err(NetError::PrefixTooLong { .. })
        ));
        assert!(matches!(
            "198.18.0.1/".parse::<Net>(),
            Err(NetError::BadPrefix(_))
        ));
        assert!(matches!(
            "198.18.0.1/-1".parse::<Net>(),
            Err(NetError::BadPrefix(_))
        ));
        assert!(matches!(
            "host.example".parse::<Net>(),
            Err(NetError::BadAddress(_))
        ));
    }

    #[test]
    fn recording_blocker_is_idempotent_and_can_fail() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut b = RecordingBlocker::new("rec", log.clone());
        let t = Target::host("198.18.0.9".parse().unwrap());
        b.block(&t).unwrap();
        b.block(&t).unwrap();
        assert_eq!(b.list().unwrap().len(), 1);
        b.unblock(&t.net).unwrap();
        b.unblock(&t.net).unwrap();
        assert!(b.list().unwrap().is_empty());
        b.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let e = b.block(&t).unwrap_err();
        assert_eq!(e.to_string(), "rec: block of 198.18.0.9 failed");
        assert_eq!(log.lock().unwrap().len(), 7);
    }
}
