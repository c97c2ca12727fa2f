//! Management commands (`check-config`, `list`, `block`, ...).
//!
//! In: a loaded, validated [`Config`] and the command. Out: a report on stdout and an
//! exit code. `check-config` touches nothing; the block-store commands act on the store.

use std::io::Write;

use crate::config::{Config, IgnoreList};
use crate::exit;
use crate::model::LegacyMode;
use crate::model::{Dialect, Mode, Proto};

/// What `check-config` reports on: the 2.x mode, or a 1.2 mode word.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    V2(Mode),
    Legacy(LegacyMode),
}

/// The effective settings and watched port sets, as `check-config` prints them.
pub fn check_config_report(cfg: &Config, ignore: Option<&IgnoreList>, target: Target) -> String {
    let mut out = String::new();
    let dialect = match cfg.dialect {
        Dialect::V2 => "Portsentry 2.x".to_string(),
        Dialect::Legacy => {
            "Portsentry 1.2 (first occurrence wins, unknown keys ignored)".to_string()
        }
    };
    out.push_str(&format!("# {}: {dialect} config\n", cfg.path.display()));
    for (k, v) in cfg.effective() {
        if v == "(unset)" {
            out.push_str(&format!("#{k} is not set\n"));
        } else {
            out.push_str(&format!("{k}=\"{v}\"\n"));
        }
    }
    match (&cfg.ignore_file, ignore) {
        (Some(p), Some(l)) => out.push_str(&format!(
            "# ignore file {}: {} entr{}\n",
            p.display(),
            l.len(),
            if l.len() == 1 { "y" } else { "ies" }
        )),
        (Some(p), None) => {
            out.push_str(&format!("# ignore file {}: cannot be read\n", p.display()))
        }
        (None, _) => out.push_str("# no ignore file\n"),
    }
    match target {
        Target::V2(mode) => {
            for proto in [Proto::Tcp, Proto::Udp] {
                let set = cfg.watched(proto, mode);
                out.push_str(&format!(
                    "# {proto} ports watched in {mode} mode ({}): {set}\n",
                    set.len()
                ));
            }
        }
        Target::Legacy(m) => {
            let proto = m.proto();
            let set = if m.is_advanced() {
                let n = match proto {
                    Proto::Tcp => cfg.advanced_ports_tcp,
                    Proto::Udp => cfg.advanced_ports_udp,
                }
                .unwrap_or(1024);
                cfg.advanced_set(proto, n)
            } else {
                match proto {
                    Proto::Tcp => cfg.tcp_ports.clone(),
                    Proto::Udp => cfg.udp_ports.clone(),
                }
            };
            let how = if m.is_connect() { "connect" } else { "stealth" };
            let note = if m.is_advanced() {
                ", minus the ports in use at start-up"
            } else {
                ""
            };
            out.push_str(&format!(
                "# -{}: {proto} ports watched in {how} mode ({}){note}: {set}\n",
                m.word(),
                set.len()
            ));
        }
    }
    if cfg.ignore_file.is_none() || ignore.is_some() {
        out.push_str("# OK\n");
    }
    out
}

/// Prints the report; returns the exit code.
pub fn check_config(cfg: &Config, ignore: Option<&IgnoreList>, target: Target) -> i32 {
    let report = check_config_report(cfg, ignore, target);
    let mut o = std::io::stdout().lock();
    if o.write_all(report.as_bytes())
        .and_then(|_| o.flush())
        .is_err()
    {
        return exit::FAILURE;
    }
    exit::OK
}

/// The block-store commands: `list`, `block`, `unblock`, `expire`, `flush`, `reapply`,
/// `status`. They work whether or not the daemon runs: the store is locked per change,
/// and a running daemon follows the store within a second.
pub fn store_command(cfg: &Config, cmd: &crate::cli::Command) -> i32 {
    match run_store_command(cfg, cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("portsentry: {e}");
            exit::UNAVAILABLE
        }
    }
}

fn remaining_text(expires: Option<u64>, now: u64) -> String {
    match expires {
        None => "permanent".to_string(),
        Some(e) if e <= now => "expired".to_string(),
        Some(e) => crate::config::format_duration(std::time::Duration::from_secs(e - now)),
    }
}

fn sync_blocked_file(cfg: &Config, store: &crate::store::Store) -> Result<(), String> {
    let Some(p) = &cfg.blocked_file else {
        return Ok(());
    };
    let ips: Vec<std::net::IpAddr> = store.active().map(|r| r.net.addr()).collect();
    let data: Vec<u8> = ips
        .iter()
        .flat_map(|ip| crate::respond::files::record(*ip))
        .collect();
    crate::respond::atomic_write(p, &data, 0o600).map_err(|e| format!("{}: {e}", p.display()))
}

fn open_backends(cfg: &Config) -> Result<Vec<Box<dyn portsentry_blocker::Blocker>>, String> {
    let mut bs = crate::respond::blocking::make_backends(cfg).map_err(|e| e.to_string())?;
    for b in bs.iter_mut() {
        b.init().map_err(|e| format!("{e}: {}", e.source))?;
    }
    Ok(bs)
}

fn run_store_command(cfg: &Config, cmd: &crate::cli::Command) -> Result<i32, String> {
    use crate::cli::Command;
    use crate::respond::blocking::unix_now;
    use crate::store::{Record, Store};
    use portsentry_blocker::{Net, Reason, Target};

    let now = unix_now();
    let (mut store, warnings) = Store::open(&cfg.block_state_file).map_err(|e| e.to_string())?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    match cmd {
        Command::List { json } => {
            let mut recs: Vec<&Record> = store.active().collect();
            recs.sort_by_key(|r| r.net);
            for r in recs {
                if *json {
                    let line = serde_json::json!({
                        "net": r.net.to_string(),
                        "expires": r.expires,
                        "remaining": r.expires.map(|e| e.saturating_sub(now)),
                        "backends": r.backends,
                        "protocol": r.protocol,
                        "port": r.port,
                        "scan": r.scan,
                        "hits": r.hits,
                        "offences": r.offences,
                        "first_seen": r.first_seen,
                        "last_seen": r.last_seen,
                    });
                    println!("{line}");
                } else {
                    println!(
                        "{}\t{}\t{}\t{} {} {}\thits={}",
                        r.net,
                        remaining_text(r.expires, now),
                        r.backends.join(","),
                        r.protocol,
                        r.port,
                        r.scan,
                        r.hits
                    );
                }
            }
            Ok(exit::OK)
        }
        Command::Block { addr, duration } => {
            let net: Net = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
            let timeout = match duration {
                Some(d) => crate::config::parse_duration(d)?,
                None => cfg.block_timeout,
            };
            let mut backends = open_backends(cfg)?;
            let target = Target {
                net,
                timeout,
                reason: Reason {
                    protocol: String::new(),
                    port: 0,
                    scan: "manual".to_string(),
                },
            };
            let mut held = Vec::new();
            let mut failed = false;
            for b in backends.iter_mut() {
                match b.block(&target) {
                    Ok(()) => held.push(b.name().to_string()),
                    Err(e) => {
                        eprintln!("portsentry: {e}: {}", e.source);
                        failed = true;
                    }
                }
            }
            let prev = store.get(&net).cloned();
            store
                .put(Record {
                    net,
                    backends: held,
                    first_seen: prev.as_ref().map_or(now, |r| r.first_seen),
                    last_seen: now,
                    hits: prev.as_ref().map_or(1, |r| r.hits.saturating_add(1)),
                    protocol: String::new(),
                    port: 0,
                    scan: "manual".to_string(),
                    expires: timeout.map(|d| now + d.as_secs()),
                    offences: prev.as_ref().map_or(1, |r| r.offences.max(1)),
                    lifted: false,
                })
                .map_err(|e| e.to_string())?;
            sync_blocked_file(cfg, &store)?;
            println!(
                "blocked {net} {}",
                remaining_text(timeout.map(|d| now + d.as_secs()), now)
            );
            Ok(if failed { exit::FAILURE } else { exit::OK })
        }
        Command::Unblock { addrs } => {
            let mut backends = open_backends(cfg)?;
            let mut failed = false;
            for a in addrs {
                let net: Net = a.parse().map_err(|e| format!("{a}: {e}"))?;
                for b in backends.iter_mut() {
                    if let Err(e) = b.unblock(&net) {
                        eprintln!("portsentry: {e}: {}", e.source);
                        failed = true;
                    }
                }
                let was = store.lift(&net).map_err(|e| e.to_string())?;
                println!(
                    "{} {net}",
                    if was { "unblocked" } else { "was not blocked:" }
                );
            }
            sync_blocked_file(cfg, &store)?;
            Ok(if failed { exit::FAILURE } else { exit::OK })
        }
        Command::Expire { dry_run } => {
            let due = store.expired(now);
            let mut failed = false;
            if !due.is_empty() && !dry_run {
                let mut backends = open_backends(cfg)?;
                for net in &due {
                    for b in backends.iter_mut() {
                        if let Err(e) = b.unblock(net) {
                            eprintln!("portsentry: {e}: {}", e.source);
                            failed = true;
                        }
                    }
                    store.lift(net).map_err(|e| e.to_string())?;
                }
                sync_blocked_file(cfg, &store)?;
            }
            if !due.is_empty() {
                for net in &due {
                    println!("{} {net}", if *dry_run { "would lift" } else { "lifted" });
                }
                let stay: Vec<&Record> = store.active().filter(|r| !due.contains(&r.net)).collect();
                println!("{} block(s) stay", stay.len());
                for r in stay {
                    println!(
                        "  {}\t{}\t{}",
                        r.net,
                        remaining_text(r.expires, now),
                        r.scan
                    );
                }
            }
            Ok(if failed { exit::FAILURE } else { exit::OK })
        }
        Command::Flush => {
            let mut failed = false;
            for b in crate::respond::blocking::make_backends(cfg)
                .map_err(|e| e.to_string())?
                .iter_mut()
            {
                if let Err(e) = b.flush() {
                    eprintln!("portsentry: {e}: {}", e.source);
                    failed = true;
                }
            }
            let n = store.active_len();
            store.clear().map_err(|e| e.to_string())?;
            sync_blocked_file(cfg, &store)?;
            println!("flushed {n} block(s)");
            Ok(if failed { exit::FAILURE } else { exit::OK })
        }
        Command::Reapply => {
            let mut backends = open_backends(cfg)?;
            let targets: Vec<Target> = store
                .active()
                .filter(|r| r.expires.is_none_or(|e| e > now))
                .map(|r| Target {
                    net: r.net,
                    timeout: r
                        .expires
                        .map(|e| std::time::Duration::from_secs(e.saturating_sub(now).max(1))),
                    reason: Reason::default(),
                })
                .collect();
            let mut failed = false;
            for b in backends.iter_mut() {
                if let Err(e) = b.replace_all(&targets) {
                    eprintln!("portsentry: {e}: {}", e.source);
                    failed = true;
                }
            }
            println!(
                "reapplied {} block(s) to {} backend(s)",
                targets.len(),
                backends.len()
            );
            Ok(if failed { exit::FAILURE } else { exit::OK })
        }
        Command::Status => {
            println!(
                "store {}: {} active block(s)",
                cfg.block_state_file.display(),
                store.active_len()
            );
            let mut failed = false;
            match crate::respond::blocking::make_backends(cfg) {
                Ok(mut bs) => {
                    for b in bs.iter_mut() {
                        match (b.vanished(), b.list()) {
                            (Ok(false), Ok(held)) => {
                                println!("backend {}: ok, {} entries held", b.name(), held.len())
                            }
                            (Ok(true), _) => {
                                failed = true;
                                println!("backend {}: our objects are missing (run `portsentry reapply`)", b.name())
                            }
                            (Err(e), _) | (_, Err(e)) => {
                                failed = true;
                                println!("backend {}: error: {e}: {}", b.name(), e.source)
                            }
                        }
                    }
                }
                Err(e) => {
                    failed = true;
                    println!("backends: {e}");
                }
            }
            Ok(if failed { exit::FAILURE } else { exit::OK })
        }
        Command::CheckConfig => Ok(exit::OK),
    }
}
