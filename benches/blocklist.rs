//! The block path alone (issue #13): distinct addresses into the Blocklist with the nft
//! backend, in groups as the executor hands them over, each group one netlink batch and
//! one store fsync, durable before the call returns. Target: at least 20 000 blocks/s.
//! One `RESULT blocklist ...` line per group size.
//!
//! Runs only as root, in a network namespace it makes and deletes (also on failure);
//! addresses from 198.18.0.0/15 only. `cargo bench --bench blocklist`.

#[cfg(target_os = "linux")]
mod linux {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use portsentry::blocklist::{Blocklist, Request, Settings, SystemClock};
    use portsentry::config::IgnoreList;
    use portsentry::facts::FixedFacts;
    use portsentry::logging::Logger;
    use portsentry::store::Store;
    use portsentry_blocker::{Blocker, Reason};
    use portsentry_nftables::bench::Netns;
    use portsentry_nftables::{Nftables, Options};

    /// Blocks per run.
    const N: u32 = 50_000;
    const RUNS: usize = 3;

    fn run(group: usize) -> Result<Duration, String> {
        let ns = Netns::new("psblk").map_err(|e| e.to_string())?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        ns.run(|| -> Result<Duration, String> {
            let nft = Nftables::new(Options::default()).map_err(|e| e.to_string())?;
            let (store, _) = Store::open(&dir.path().join("blocks")).map_err(|e| e.to_string())?;
            let mut b = Blocklist::new(
                store,
                vec![Box::new(nft) as Box<dyn Blocker>],
                Settings {
                    base: Some(Duration::from_secs(3600)),
                    multiplier: 1.0,
                    max: None,
                    block_max: 10_000_000,
                    block_rate: u32::MAX,
                    prefix_v6: 128,
                },
                Arc::new(SystemClock),
                Arc::new(FixedFacts::default()),
                IgnoreList::default(),
                Arc::new(Logger::new(false, false, false, false)),
            );
            b.init_backends().map_err(|e| e.to_string())?;
            let reqs: Vec<Request> = (0..N)
                .map(|i| {
                    // 198.18.0.0/15 without the .0.x hosts
                    let ip = std::net::Ipv4Addr::from(0xc612_0100u32 + i);
                    Request::detection(
                        ip.into(),
                        Reason {
                            protocol: "TCP".into(),
                            port: 1,
                            scan: "TCP SYN/Normal scan".into(),
                        },
                    )
                })
                .collect();
            let start = Instant::now();
            for chunk in reqs.chunks(group) {
                let res = b.block_many(chunk.to_vec());
                if let Some(Err(e)) = res.into_iter().find(|r| r.is_err()) {
                    return Err(e.to_string());
                }
            }
            let took = start.elapsed();
            if b.store().active_len() != N as usize {
                return Err(format!("{} blocks stored", b.store().active_len()));
            }
            Ok(took)
        })
        .map_err(|e| e.to_string())?
    }

    pub fn main() {
        if !nix::unistd::geteuid().is_root() {
            println!("blocklist bench skipped: needs root (network namespaces, nftables)");
            return;
        }
        for group in [1usize, 64, 1024] {
            let mut rates = Vec::new();
            for _ in 0..RUNS {
                match run(group) {
                    Ok(d) => rates.push(f64::from(N) / d.as_secs_f64()),
                    Err(e) => {
                        println!("blocklist bench failed: {e}");
                        return;
                    }
                }
            }
            rates.sort_by(f64::total_cmp);
            println!(
                "RESULT blocklist nft group={group} blocks={N} runs={RUNS} blocks_per_s={:.0} [{:.0}-{:.0}]",
                rates[RUNS / 2],
                rates[0],
                rates[RUNS - 1]
            );
        }
    }
}

fn main() {
    #[cfg(target_os = "linux")]
    linux::main();
}
