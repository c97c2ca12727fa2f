//! The nft backend's costs (issue #4: 100 000 blocks applied at start in under 0.3 s):
//! init + `replace_all` of 100 000 IPv4 targets against init + `block_many` of the same,
//! `replace_all` over a full set (a restart), one `block` of a new host on the long-lived
//! socket, one re-block (timeout refresh) of a held host. One `RESULT nft ...` line per
//! figure.
//!
//! Runs only as root, each measurement in a network namespace it makes for it and deletes
//! (also on failure), with the backend in a thread that entered that namespace; addresses
//! from 198.18.0.0/15 only. `cargo bench --bench nft`.

#[cfg(target_os = "linux")]
mod linux {
    use std::error::Error;
    use std::time::{Duration, Instant};

    use portsentry_blocker::Blocker;
    use portsentry_nftables::bench::{self, Netns, Timing};
    use portsentry_nftables::{NftError, Nftables, Options};

    /// Targets applied at start.
    const N: usize = 100_000;
    /// Runs per start-up figure; the median is reported.
    const RUNS: usize = 3;
    /// Single calls timed per per-call figure.
    const SINGLE: usize = 2_000;
    const HOUR: Duration = Duration::from_secs(3600);

    type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1e3
    }

    fn us(d: Duration) -> f64 {
        d.as_secs_f64() * 1e6
    }

    /// The value at quantile `q` (0..=1) of sorted `v` (nearest rank).
    fn quantile(v: &[Duration], q: f64) -> Duration {
        if v.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }

    fn median(v: &[Duration]) -> Duration {
        let mut s = v.to_vec();
        s.sort();
        quantile(&s, 0.5)
    }

    fn runs(v: &[Duration]) -> String {
        v.iter()
            .map(|d| format!("{:.1}", ms(*d)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Checks (untimed) that the kernel holds `want` elements: the timed calls did their work.
    fn check_held(want: usize) -> Res<()> {
        let held = Nftables::new(Options::default())?.held()?.len();
        if held != want {
            return Err(format!("expected {want} elements, the kernel holds {held}").into());
        }
        Ok(())
    }

    /// `RUNS` times, each in a fresh namespace: open, init, `apply` of N targets.
    fn start_up(
        what: &str,
        apply: fn(Options, usize) -> Result<Timing, NftError>,
    ) -> Res<Vec<Timing>> {
        let mut out = Vec::new();
        for _ in 0..RUNS {
            let ns = Netns::new("psbench")?;
            let t = ns.run(|| -> Res<Timing> {
                let t = apply(Options::default(), N)?;
                check_held(N)?;
                Ok(t)
            })??;
            out.push(t);
        }
        let total: Vec<Duration> = out.iter().map(|t| t.init + t.block_many).collect();
        let last = out.last().map(|t| t.batch).unwrap_or_default();
        println!(
            "RESULT nft init+{what}_100k_ipv4 {:.1} ms (median of {RUNS}, fresh namespace each: {} ms; \
             init {:.2} ms, {what} {:.1} ms; {} bytes in {} sendmsg, {:.1} ms in the kernel)",
            ms(median(&total)),
            runs(&total),
            ms(median(&out.iter().map(|t| t.init).collect::<Vec<_>>())),
            ms(median(&out.iter().map(|t| t.block_many).collect::<Vec<_>>())),
            last.bytes,
            last.sendmsg_calls,
            ms(last.kernel_time),
        );
        Ok(out)
    }

    /// A restart: 100 000 held, a new socket, init + `replace_all` of 100 000 targets of
    /// which three quarters are held (with another timeout), alternately.
    fn restart() -> Res<()> {
        const SHIFT: usize = N / 4;
        let ns = Netns::new("psbench")?;
        let times = ns.run(|| -> Res<Vec<Duration>> {
            let mut first = Nftables::new(Options::default())?;
            first.apply_init()?;
            first.apply_replace(&bench::targets(N, Some(HOUR)))?;
            let mut times = Vec::new();
            for run in 0..RUNS {
                let targets = if run % 2 == 0 {
                    bench::targets(N + SHIFT, Some(HOUR * 2)).split_off(SHIFT)
                } else {
                    bench::targets(N, Some(HOUR))
                };
                let mut nft = Nftables::new(Options::default())?;
                let t = Instant::now();
                nft.apply_init()?;
                nft.apply_replace(&targets)?;
                times.push(t.elapsed());
                check_held(N)?;
            }
            Ok(times)
        })??;
        println!(
            "RESULT nft init+replace_all_100k_ipv4_over_100k_held {:.1} ms (median of {RUNS}: {} ms; \
             three quarters of the targets held before)",
            ms(median(&times)),
            runs(&times),
        );
        Ok(())
    }

    /// Single `block` calls of new hosts, then of the same hosts again, with N held.
    fn single_calls() -> Res<()> {
        let ns = Netns::new("psbench")?;
        let (mut new, mut again) = ns.run(|| -> Res<(Vec<Duration>, Vec<Duration>)> {
            let mut nft = Nftables::new(Options::default())?;
            nft.init()?;
            let all = bench::targets(N + SINGLE, Some(HOUR));
            nft.replace_all(&all[..N])?;
            let time = |nft: &mut Nftables| -> Res<Vec<Duration>> {
                let mut v = Vec::with_capacity(SINGLE);
                for t in &all[N..] {
                    let t0 = Instant::now();
                    nft.block(t)?;
                    v.push(t0.elapsed());
                }
                Ok(v)
            };
            let new = time(&mut nft)?;
            let again = time(&mut nft)?;
            check_held(N + SINGLE)?;
            Ok((new, again))
        })??;
        new.sort();
        again.sort();
        let note = format!("{SINGLE} calls, {N} held, one long-lived socket");
        println!(
            "RESULT nft block_new_host_median {:.1} µs ({note})",
            us(quantile(&new, 0.5))
        );
        println!(
            "RESULT nft block_new_host_p99 {:.1} µs ({note})",
            us(quantile(&new, 0.99))
        );
        println!(
            "RESULT nft reblock_held_host_median {:.1} µs ({note}; add+delete+add refreshes \
             the timeout; p99 {:.1} µs)",
            us(quantile(&again, 0.5)),
            us(quantile(&again, 0.99))
        );
        Ok(())
    }

    pub fn main() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        if args.iter().any(|a| a == "--list") {
            return;
        }
        // `cargo bench FILTER` passes FILTER: run only when it names this bench.
        let filters: Vec<&str> = args
            .iter()
            .map(String::as_str)
            .filter(|a| !a.starts_with('-'))
            .collect();
        if !filters.is_empty() && !filters.iter().any(|f| "nft".contains(f)) {
            return;
        }
        if !nix::unistd::geteuid().is_root() {
            println!("nft bench: skipped: needs root for network namespaces and nf_tables");
            return;
        }
        let r = start_up("replace_all", bench::time_init_and_replace_all)
            .and_then(|_| start_up("block_many", bench::time_init_and_block_many))
            .and_then(|_| restart())
            .and_then(|_| single_calls());
        if let Err(e) = r {
            let mut msg = format!("nft bench failed: {e}");
            let mut src = e.source();
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            eprintln!("{msg}");
            std::process::exit(1);
        }
    }
}

fn main() {
    #[cfg(target_os = "linux")]
    linux::main();
    #[cfg(not(target_os = "linux"))]
    println!("nft bench: skipped: nf_tables is Linux only");
}
