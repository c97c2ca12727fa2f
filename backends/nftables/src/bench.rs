//! A timing path for the lead: synthetic targets from the test ranges, `init` +
//! `block_many` or `replace_all` timed, and a throw-away network namespace to time in.
//!
//! In: a count, a timeout, options. Out: targets, or the measured [`Timing`].
//! Must not: be pointed at a real host's ruleset by accident: the `time_*` functions
//! change the nf_tables ruleset of the calling thread's network namespace, so run them
//! through [`Netns::run`] (as `benches/nft.rs` does).

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};

use portsentry_blocker::{Blocker, Target};

use crate::backend::Nftables;
use crate::error::NftError;
use crate::link::BatchStats;
use crate::plan::Options;

/// Addresses in 198.18.0.0/15 (benchmarking range, RFC 2544).
pub const V4_BASE: u32 = 0xC612_0000;
/// Size of 198.18.0.0/15.
pub const V4_COUNT: u32 = 1 << 17;
/// fd00:5e5e::/32, a unique-local range for tests.
pub const V6_BASE: u128 = 0xfd00_5e5e_u128 << 96;

/// `n` distinct host targets: IPv4 from 198.18.0.0/15 first (up to 131 072), then IPv6
/// from fd00:5e5e::/32, all with `timeout`.
pub fn targets(n: usize, timeout: Option<Duration>) -> Vec<Target> {
    (0..n)
        .map(|i| {
            let addr = match u32::try_from(i) {
                Ok(i) if i < V4_COUNT => IpAddr::V4(Ipv4Addr::from(V4_BASE + i)),
                _ => IpAddr::V6(Ipv6Addr::from(V6_BASE + i as u128)),
            };
            Target {
                timeout,
                ..Target::host(addr)
            }
        })
        .collect()
}

/// What [`time_init_and_block_many`] measured.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub init: Duration,
    pub block_many: Duration,
    pub batch: BatchStats,
}

/// Opens the backend, runs `init`, then `block_many` with `n` synthetic targets (1 h
/// timeout), and times both. Runs in the calling thread's network namespace.
pub fn time_init_and_block_many(opts: Options, n: usize) -> Result<Timing, NftError> {
    time_init_and(opts, n, Nftables::apply_block)
}

/// As [`time_init_and_block_many`], with `replace_all` instead of `block_many`
/// (`Timing::block_many` is then the time of `replace_all`).
pub fn time_init_and_replace_all(opts: Options, n: usize) -> Result<Timing, NftError> {
    time_init_and(opts, n, Nftables::apply_replace)
}

fn time_init_and(
    opts: Options,
    n: usize,
    apply: fn(&mut Nftables, &[Target]) -> Result<(), NftError>,
) -> Result<Timing, NftError> {
    let targets = targets(n, Some(Duration::from_secs(3600)));
    let mut nft = Nftables::new(opts)?;
    let t0 = Instant::now();
    nft.apply_init()?;
    let init = t0.elapsed();
    let t1 = Instant::now();
    apply(&mut nft, &targets)?;
    let block_many = t1.elapsed();
    debug_assert_eq!(nft.name(), "nft");
    Ok(Timing {
        init,
        block_many,
        batch: nft.last_batch(),
    })
}

/// A network namespace made for timing (`ip netns add`), deleted on drop, also when
/// whatever ran in it panicked.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `<prefix>_<pid>_<n>`; fails when `ip` is missing or refuses (not root).
    pub fn new(prefix: &str) -> io::Result<Netns> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let st = Command::new("ip").args(["netns", "add", &name]).status()?;
        if !st.success() {
            return Err(io::Error::other(format!("ip netns add {name}: {st}")));
        }
        Ok(Netns { name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `f` in a new thread that has entered the namespace (the caller's thread
    /// stays where it is); a panic in `f` is resumed here.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        let ns = File::open(format!("/run/netns/{}", self.name))?;
        let r = std::thread::scope(|s| {
            s.spawn(|| {
                setns(&ns, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                Ok(f())
            })
            .join()
        });
        r.unwrap_or_else(|p| std::panic::resume_unwind(p))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_stay_in_the_test_ranges() {
        let t = targets(V4_COUNT as usize + 2, None);
        assert_eq!(t[0].net.to_string(), "198.18.0.0");
        assert_eq!(t[V4_COUNT as usize - 1].net.to_string(), "198.19.255.255");
        assert_eq!(t[V4_COUNT as usize].net.to_string(), "fd00:5e5e::2:0");
        let v6: portsentry_blocker::Net = "fd00:5e5e::/32".parse().unwrap();
        assert!(v6.contains(t[V4_COUNT as usize + 1].net.addr()));
    }
}
