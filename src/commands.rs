//! Management commands (`check-config`, `list`, `block`, ...).
//!
//! In: a loaded, validated [`Config`] and the command. Out: a report on stdout and an
//! exit code. `check-config` touches nothing; the block-store commands act on the store.

use std::io::Write;

use crate::config::{Config, Dialect, IgnoreList, Mode, Proto};
use crate::exit;
use crate::logging::legacy::LegacyMode;

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
        (Some(p), None) => out.push_str(&format!(
            "# ignore file {}: cannot be read (1.2 mode blocks anyway)\n",
            p.display()
        )),
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
    out.push_str("# OK\n");
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
