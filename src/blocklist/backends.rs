//! Building the configured backends from the config (the only place that knows which
//! crate implements which `BLOCK_BACKEND` name).
//!
//! In: the config. Out: boxed [`Blocker`]s, not yet initialised, or an error naming the
//! backend. Must not: touch the firewall (that is `init`'s job).

use portsentry_blocker::Blocker;

use crate::config::{BackendName, Config};

/// Why a backend cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("block backend {0}: not available in this build yet")]
    NotBuilt(BackendName),
    #[error("block backend command: BLOCK_COMMAND is not set")]
    NoCommand,
    #[error("block backend {name} cannot work here: {why}")]
    Unusable { name: BackendName, why: String },
    #[error("block backend nft: cannot open the netlink socket: {0}")]
    Open(String),
}

/// How long a firewall tool or the admin's command may run.
const TOOL_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The configured backends, in the configured order (`auto` resolved on this machine).
pub fn make_backends(cfg: &Config) -> Result<Vec<Box<dyn Blocker>>, BuildError> {
    cfg.block_backend
        .iter()
        .map(|name| make_backend(resolve(*name).0, cfg))
        .collect()
}

/// What `auto` means on this machine, and why: Linux nft; OpenBSD pf; FreeBSD pf if
/// /dev/pf is there (pf loaded), else ipfw if loaded, else route; NetBSD npf if active,
/// else route. Read-only probes; other names come back as they are.
pub fn resolve(name: BackendName) -> (BackendName, String) {
    if name != BackendName::Auto {
        return (name, String::new());
    }
    if cfg!(target_os = "linux") {
        return (BackendName::Nft, "nftables on Linux".to_string());
    }
    if cfg!(target_os = "openbsd") {
        return (BackendName::Pf, "pf on OpenBSD".to_string());
    }
    if cfg!(target_os = "freebsd") {
        if std::path::Path::new("/dev/pf").exists() {
            return (BackendName::Pf, "/dev/pf exists (pf is loaded)".to_string());
        }
        if tool_succeeds(&["/sbin/sysctl", "-n", "net.inet.ip.fw.enable"]) {
            return (
                BackendName::Ipfw,
                "ipfw is loaded (net.inet.ip.fw.enable)".to_string(),
            );
        }
        return (
            BackendName::Route,
            "neither pf nor ipfw is loaded".to_string(),
        );
    }
    if cfg!(target_os = "netbsd") {
        if tool_output(&["/sbin/npfctl", "show"]).is_some_and(|o| o.contains("active")) {
            return (BackendName::Npf, "npf is active (npfctl show)".to_string());
        }
        return (BackendName::Route, "npf is not active".to_string());
    }
    (BackendName::Route, "blackhole routes".to_string())
}

fn tool_output(argv: &[&str]) -> Option<String> {
    let program = portsentry_exec::Program::Argv(argv.iter().map(|s| s.to_string()).collect());
    let ran = portsentry_exec::run(&portsentry_exec::Spec {
        stdout: portsentry_exec::Stdout::Capture,
        env: &[("LC_ALL", "C")],
        ..portsentry_exec::Spec::new(&program, TOOL_LIMIT)
    })
    .ok()?;
    ran.success()
        .then(|| String::from_utf8_lossy(&ran.stdout).into_owned())
}

fn tool_succeeds(argv: &[&str]) -> bool {
    tool_output(argv).is_some()
}

/// Whether a backend can work on this machine, checked without changing anything (for
/// `check-config` and the rc.d prestart checks): its tool is there and its firewall is
/// loaded.
pub fn check_usable(name: BackendName, cfg: &Config) -> Result<(), BuildError> {
    let unusable = |why: String| BuildError::Unusable { name, why };
    let executable = |p: &str| {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(p) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
            Ok(_) => Err(unusable(format!("{p} is not an executable file"))),
            Err(e) => Err(unusable(format!("{p}: {e}"))),
        }
    };
    match name {
        BackendName::Auto => check_usable(resolve(name).0, cfg),
        BackendName::Pf => {
            executable("/sbin/pfctl")?;
            if !std::path::Path::new("/dev/pf").exists() {
                return Err(unusable("/dev/pf is missing: pf is not loaded".to_string()));
            }
            Ok(())
        }
        BackendName::Ipfw => {
            executable("/sbin/ipfw")?;
            if !tool_succeeds(&["/sbin/sysctl", "-n", "net.inet.ip.fw.enable"]) {
                return Err(unusable("ipfw is not loaded (kldload ipfw)".to_string()));
            }
            Ok(())
        }
        BackendName::Npf => {
            executable("/sbin/npfctl")?;
            Ok(())
        }
        BackendName::Command => {
            let argv = cfg.block_command.as_ref().ok_or(BuildError::NoCommand)?;
            executable(&argv[0])?;
            if let Some(u) = &cfg.unblock_command {
                executable(&u[0])?;
            }
            Ok(())
        }
        BackendName::Nft | BackendName::Route | BackendName::HostsDeny => {
            make_backend(name, cfg).map(|_| ())
        }
    }
}

fn make_backend(name: BackendName, cfg: &Config) -> Result<Box<dyn Blocker>, BuildError> {
    match name {
        #[cfg(target_os = "linux")]
        BackendName::Nft => {
            let hooks = cfg
                .nft_hooks
                .iter()
                .map(|h| match h {
                    crate::config::Hook::Input => portsentry_nftables::Hook::Input,
                    crate::config::Hook::Forward => portsentry_nftables::Hook::Forward,
                })
                .collect();
            let opts = portsentry_nftables::Options {
                hooks,
                ..portsentry_nftables::Options::default()
            };
            let nft = portsentry_nftables::Nftables::new(opts)
                .map_err(|e| BuildError::Open(e.to_string()))?;
            Ok(Box::new(nft))
        }
        // The lines come from KILL_HOSTS_DENY (default `ALL: $TARGET$`), in a marked block.
        BackendName::HostsDeny => Ok(Box::new(portsentry_hosts_deny::HostsDeny::new(
            cfg.hosts_deny_file.clone(),
            cfg.kill_hosts_deny
                .as_ref()
                .map_or_else(|| "ALL: $TARGET$".to_string(), |t| t.0.clone()),
        ))),
        // Blackhole routes: rtnetlink with our own protocol number on Linux, route(8)
        // with an argv on the BSDs.
        BackendName::Route => Ok(Box::new(portsentry_route::Route::new())),
        // pf: table "portsentry" in anchor "portsentry", with pfctl(8) and an argv.
        BackendName::Pf => Ok(Box::new(portsentry_pf::Pf::new(portsentry_pf::Options {
            limit: TOOL_LIMIT,
            ..portsentry_pf::Options::default()
        }))),
        // ipfw: lookup table "portsentry" and one deny rule at IPFW_RULE.
        BackendName::Ipfw => Ok(Box::new(portsentry_ipfw::Ipfw::new(
            portsentry_ipfw::Options {
                rule: cfg.ipfw_rule,
                limit: TOOL_LIMIT,
                ..portsentry_ipfw::Options::default()
            },
        ))),
        // npf: table "portsentry" of the loaded npf.conf.
        BackendName::Npf => Ok(Box::new(portsentry_npf::Npf::new(
            portsentry_npf::Options {
                limit: TOOL_LIMIT,
                ..portsentry_npf::Options::default()
            },
        ))),
        // The admin's own tools, run with an argv (never a shell).
        BackendName::Command => Ok(Box::new(portsentry_command::Command::new(
            portsentry_command::Options {
                block: cfg.block_command.clone().ok_or(BuildError::NoCommand)?,
                unblock: cfg.unblock_command.clone(),
                limit: TOOL_LIMIT,
            },
        ))),
        other => Err(BuildError::NotBuilt(other)),
    }
}
