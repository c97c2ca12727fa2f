//! Management commands (`check-config`, `list`, `block`, ...).
//!
//! In: a loaded, validated [`Config`] and the command. Out: a report on stdout and an
//! exit code. `check-config` touches nothing; the block-store commands act on the store.

use std::io::Write;
use std::sync::Arc;

use portsentry_blocker::{Net, Reason};

use crate::blocklist::{
    describe, make_backends, unix_now, Blocklist, Lasting, Request, SystemClock,
};
use crate::config::{Config, IgnoreList};
use crate::exit;
use crate::facts::SystemFacts;
use crate::logging::Logger;
use crate::model::{Dialect, LegacyMode, Mode, Proto};
use crate::store::Record;

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
    let mut report = check_config_report(cfg, ignore, target);
    let ok_line = report.ends_with("# OK\n");
    if ok_line {
        report.truncate(report.len() - "# OK\n".len());
    }
    // Each backend resolved and checked the way the daemon will use it on this machine
    // (read-only probes): a backend that cannot work here fails the check.
    let mut unusable = Vec::new();
    for name in &cfg.block_backend {
        let (real, why) = crate::blocklist::backends::resolve(*name);
        let shown = if why.is_empty() {
            real.to_string()
        } else {
            format!("{name} = {real} ({why})")
        };
        match crate::blocklist::backends::check_usable(real, cfg) {
            Ok(()) => report.push_str(&format!("# block backend {shown}: usable here\n")),
            Err(e) => {
                report.push_str(&format!("# block backend {shown}: NOT usable here\n"));
                unusable.push(e.to_string());
            }
        }
    }
    // BLOCKED_FILE as the 2.x daemon will use it: never some other file it would cut.
    if let (Target::V2(_), Some(p)) = (target, &cfg.blocked_file) {
        if let Ok(data) = crate::fsutil::read_regular(p) {
            let (_, good) = crate::respond::files::parse_records(&data);
            if !crate::respond::files::is_partial_record(&data[good..]) {
                unusable.push(format!(
                    "BLOCKED_FILE {}: not a portsentry blocked file; the daemon would refuse it",
                    p.display()
                ));
            }
        }
    }
    if ok_line && unusable.is_empty() {
        report.push_str("# OK\n");
    }
    let mut o = std::io::stdout().lock();
    if o.write_all(report.as_bytes())
        .and_then(|_| o.flush())
        .is_err()
    {
        return exit::FAILURE;
    }
    if !unusable.is_empty() {
        for e in unusable {
            eprintln!("{}: {e}", cfg.path.display());
        }
        return exit::CONFIG;
    }
    exit::OK
}

/// The block-store commands: `list`, `block`, `unblock`, `expire`, `flush`, `reapply`,
/// `status`. They go through the same [`Blocklist`] as the daemon (its never-block
/// rules, its store, its backends) and work whether or not the daemon runs: the store
/// is locked per change, and a running daemon follows it within a second.
pub fn store_command(cfg: &Config, ignore: &IgnoreList, cmd: &crate::cli::Command) -> i32 {
    match run_store_command(cfg, ignore, cmd) {
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

/// BLOCKED_FILE is the 2.x view of the store.
fn sync_blocked_file(cfg: &Config, b: &Blocklist) -> Result<(), String> {
    let Some(p) = &cfg.blocked_file else {
        return Ok(());
    };
    let data: Vec<u8> = b
        .active_addrs()
        .iter()
        .flat_map(|ip| crate::respond::files::record(*ip))
        .collect();
    crate::fsutil::atomic_write(p, &data, 0o600).map_err(|e| format!("{}: {e}", p.display()))
}

/// The blocklist over the store, with the configured backends (`with_backends`) or
/// none (commands that only read the store need no privileges).
fn open(cfg: &Config, ignore: &IgnoreList, with_backends: bool) -> Result<Blocklist, String> {
    let backends = if with_backends {
        make_backends(cfg).map_err(|e| e.to_string())?
    } else {
        Vec::new()
    };
    // A silent logger: the commands print their own report.
    let log = Arc::new(Logger::new(false, false, false, false));
    let facts = SystemFacts::start(false, false);
    let b = Blocklist::open(
        cfg,
        backends,
        Arc::new(SystemClock),
        facts,
        ignore.clone(),
        log,
    )
    .map_err(|e| e.to_string())?;
    let mut b = b;
    for w in b.take_store_warnings() {
        eprintln!("warning: {w}");
    }
    Ok(b)
}

fn report(errors: &[String]) -> bool {
    for e in errors {
        eprintln!("portsentry: {e}");
    }
    !errors.is_empty()
}

fn code(failed: bool) -> i32 {
    if failed {
        exit::FAILURE
    } else {
        exit::OK
    }
}

fn parse_net(a: &str) -> Result<Net, String> {
    a.parse().map_err(|e| format!("{a}: {e}"))
}

fn run_store_command(
    cfg: &Config,
    ignore: &IgnoreList,
    cmd: &crate::cli::Command,
) -> Result<i32, String> {
    use crate::cli::Command;
    let now = unix_now();
    match cmd {
        Command::List { json } => {
            let b = open(cfg, ignore, false)?;
            let mut recs: Vec<&Record> = b.store().active().collect();
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
            let net = parse_net(addr)?;
            let timeout = match duration {
                Some(d) => crate::config::parse_duration(d)?,
                None => cfg.block_timeout,
            };
            let mut b = open(cfg, ignore, true)?;
            // Refused before anything is touched.
            if let Some(why) = b.protection(&net) {
                eprintln!("portsentry: {net} is not blocked: {why}");
                return Ok(exit::FAILURE);
            }
            if !b.has_backends() {
                eprintln!(
                    "portsentry: {net} is not blocked: no block backend is configured (BLOCK_BACKEND)"
                );
                return Ok(exit::FAILURE);
            }
            b.init_backends().map_err(|e| describe(&e))?;
            let req = Request {
                net,
                widen: false,
                reason: Reason {
                    protocol: String::new(),
                    port: 0,
                    scan: "manual".to_string(),
                },
                duration: Lasting::Fixed(timeout),
            };
            match b.block(req) {
                Ok(placed) => {
                    sync_blocked_file(cfg, &b)?;
                    println!(
                        "blocked {} {} via {}",
                        placed.net,
                        remaining_text(placed.timeout.map(|d| now + d.as_secs()), now),
                        placed.held_by.join(",")
                    );
                    Ok(code(report(&placed.errors)))
                }
                Err(refusal) => {
                    eprintln!("portsentry: {refusal}");
                    Ok(exit::FAILURE)
                }
            }
        }
        Command::Unblock { addrs } => {
            let nets = addrs
                .iter()
                .map(|a| parse_net(a))
                .collect::<Result<Vec<Net>, String>>()?;
            let mut b = open(cfg, ignore, true)?;
            b.init_backends().map_err(|e| describe(&e))?;
            let mut failed = false;
            for net in nets {
                match b.unblock(&net) {
                    Ok(true) => println!("unblocked {net}"),
                    Ok(false) => println!("was not blocked: {net}"),
                    Err(errs) => {
                        failed |= report(&errs);
                        println!("unblocked {net}");
                    }
                }
            }
            sync_blocked_file(cfg, &b)?;
            Ok(code(failed))
        }
        Command::Expire { dry_run } => {
            let ro = open(cfg, ignore, false)?;
            let due = ro.due();
            let mut failed = false;
            let mut b = ro;
            if !due.is_empty() && !dry_run {
                b = open(cfg, ignore, true)?;
                b.init_backends().map_err(|e| describe(&e))?;
                let (_, errs) = b.expire();
                failed |= report(&errs);
                sync_blocked_file(cfg, &b)?;
            }
            if !due.is_empty() {
                for net in &due {
                    println!("{} {net}", if *dry_run { "would lift" } else { "lifted" });
                }
                let stay: Vec<&Record> = b
                    .store()
                    .active()
                    .filter(|r| !due.contains(&r.net))
                    .collect();
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
            Ok(code(failed))
        }
        Command::Flush => {
            let mut b = open(cfg, ignore, true)?;
            let (n, errs) = b.flush();
            let failed = report(&errs);
            sync_blocked_file(cfg, &b)?;
            println!("flushed {n} block(s)");
            Ok(code(failed))
        }
        Command::Reapply => {
            let mut b = open(cfg, ignore, true)?;
            b.init_backends().map_err(|e| describe(&e))?;
            let (n, errs) = b.reapply();
            let failed = report(&errs);
            println!(
                "reapplied {n} block(s) to {} backend(s)",
                b.backend_names().len()
            );
            Ok(code(failed))
        }
        Command::Status => {
            let running = crate::pidfile::running(&cfg.block_state_file);
            if running.is_empty() {
                println!("daemon: not running");
            }
            for (what, pid) in &running {
                println!("daemon: running ({what}, pid {pid})");
            }
            let ro = open(cfg, ignore, false)?;
            println!(
                "store {}: {} active block(s)",
                cfg.block_state_file.display(),
                ro.store().active_len()
            );
            drop(ro);
            let mut failed = false;
            match open(cfg, ignore, true) {
                Ok(mut b) => {
                    for h in b.health() {
                        match h.state {
                            Ok(n) => println!("backend {}: ok, {n} entries held", h.backend),
                            Err(e) => {
                                failed = true;
                                println!("backend {}: error: {e}", h.backend);
                            }
                        }
                    }
                }
                Err(e) => {
                    failed = true;
                    println!("backends: {e}");
                }
            }
            Ok(code(failed))
        }
        Command::CheckConfig => Ok(exit::OK),
    }
}
