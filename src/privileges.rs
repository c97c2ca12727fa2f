//! Least privilege: which capabilities the daemon keeps once it is set up, and giving
//! up the rest (issue #17; the security model is in portsentry(8), SECURITY).
//!
//! In: the loaded config and the mode. Out: a [`Keep`] (pure, [`for_daemon`] and
//! [`for_legacy`]), and [`apply`], which drops every other capability from the calling
//! thread's effective, permitted, inheritable, ambient and bounding sets and sets
//! NO_NEW_PRIVS. A config with commands of unknown needs (KILL_ROUTE, KILL_ROUTE_REMOVE,
//! KILL_RUN_CMD, BLOCK_COMMAND) keeps everything: those commands run with what root
//! has, as in Portsentry. Must not: run once other threads exist (capabilities are per
//! thread; call it before the first thread starts), or be fatal when the kernel
//! refuses (the daemon goes on, and says so).

use std::fmt;

use crate::config::{BackendName, Config};
use crate::model::{LegacyMode, Mode};

/// A Linux capability the daemon may keep (all are CAP_NET_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cap {
    /// Binding ports below 1024 (connect mode, also after a reload; 1.2's stealth modes
    /// bind a port to tell whether it is in use).
    BindService,
    /// nf_tables and routes over netlink (the nft and route backends).
    Admin,
    /// Raw and packet sockets (stealth mode's capture).
    Raw,
}

impl Cap {
    /// The kernel's number for it (<linux/capability.h>).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn number(self) -> u32 {
        match self {
            Cap::BindService => 10,
            Cap::Admin => 12,
            Cap::Raw => 13,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cap::BindService => "CAP_NET_BIND_SERVICE",
            Cap::Admin => "CAP_NET_ADMIN",
            Cap::Raw => "CAP_NET_RAW",
        }
    }
}

/// What the daemon keeps after set-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    /// Every capability, and no NO_NEW_PRIVS: the key named runs commands whose needs
    /// are not known.
    All { key: &'static str },
    /// Only these (sorted), with NO_NEW_PRIVS.
    Only(Vec<Cap>),
}

impl Keep {
    fn only(mut caps: Vec<Cap>) -> Keep {
        caps.sort();
        caps.dedup();
        Keep::Only(caps)
    }

    /// Why `self` (what the daemon holds) cannot serve `needed`, if it cannot.
    pub fn lacks(&self, needed: &Keep) -> Option<String> {
        match (self, needed) {
            (Keep::All { .. }, _) => None,
            (Keep::Only(_), Keep::All { key }) => Some(format!(
                "{key} runs commands that need privileges the daemon gave up at start; restart portsentry to use it"
            )),
            (Keep::Only(held), Keep::Only(want)) => {
                let missing: Vec<&str> = want
                    .iter()
                    .filter(|c| !held.contains(c))
                    .map(|c| c.name())
                    .collect();
                (!missing.is_empty()).then(|| {
                    format!(
                        "the new settings need {}, which the daemon gave up at start; restart portsentry to use them",
                        missing.join(", ")
                    )
                })
            }
        }
    }
}

impl fmt::Display for Keep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Keep::All { key } => write!(
                f,
                "keeping every capability: {key} runs commands whose needs are not known"
            ),
            Keep::Only(caps) if caps.is_empty() => {
                f.write_str("every capability dropped, no new privileges")
            }
            Keep::Only(caps) => {
                let names: Vec<&str> = caps.iter().map(|c| c.name()).collect();
                write!(
                    f,
                    "keeping {}; every other capability dropped, no new privileges",
                    names.join(", ")
                )
            }
        }
    }
}

/// The config keys that run commands, in the order they are named.
fn command_key(cfg: &Config) -> Option<&'static str> {
    if cfg.kill_route.is_some() {
        Some("KILL_ROUTE")
    } else if cfg.kill_route_remove.is_some() {
        Some("KILL_ROUTE_REMOVE")
    } else if cfg.kill_run_cmd.is_some() {
        Some("KILL_RUN_CMD")
    } else if cfg.block_backend.contains(&BackendName::Command) {
        Some("BLOCK_COMMAND")
    } else {
        None
    }
}

/// What the capture and the backends need: CAP_NET_ADMIN for nft and route (kept even
/// without a backend, so a reload may add one), plus the source's own.
fn network(capture: Cap) -> Keep {
    Keep::only(vec![Cap::Admin, capture])
}

/// The 2.x daemon in `mode`.
pub fn for_daemon(cfg: &Config, mode: Mode) -> Keep {
    if let Some(key) = command_key(cfg) {
        return Keep::All { key };
    }
    network(match mode {
        Mode::Stealth => Cap::Raw,
        Mode::Connect => Cap::BindService,
    })
}

/// The 1.2 daemon in `mode`.
pub fn for_legacy(cfg: &Config, mode: LegacyMode) -> Keep {
    if let Some(key) = command_key(cfg) {
        return Keep::All { key };
    }
    if mode.is_connect() {
        network(Cap::BindService)
    } else {
        // 1.2's stealth modes tell a port in use by binding it, as 1.2 did
        Keep::only(vec![Cap::Admin, Cap::Raw, Cap::BindService])
    }
}

/// Gives up what `keep` does not name. Not root: nothing to give up but new privileges.
/// Call before any thread starts.
#[cfg(target_os = "linux")]
pub fn apply(keep: &Keep) -> std::io::Result<()> {
    let Keep::Only(caps) = keep else {
        return Ok(());
    };
    if nix::unistd::geteuid().is_root() {
        let bits = caps.iter().fold(0u64, |b, c| b | 1 << c.number());
        crate::sys::keep_only(bits)?;
    }
    nix::sys::prctl::set_no_new_privs().map_err(std::io::Error::from)
}

/// Elsewhere there are no Linux capabilities to give up.
#[cfg(not(target_os = "linux"))]
pub fn apply(_keep: &Keep) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dialect;
    use std::path::Path;

    fn cfg(text: &str) -> Config {
        Config::parse(Path::new("t.conf"), text.as_bytes(), Dialect::V2).unwrap()
    }

    #[test]
    fn network_only_without_commands() {
        let c = cfg("TCP_PORTS=\"1\"\nBLOCK_BACKEND=\"nft,hosts-deny\"\n");
        assert_eq!(
            for_daemon(&c, Mode::Stealth),
            Keep::Only(vec![Cap::Admin, Cap::Raw])
        );
        assert_eq!(
            for_daemon(&c, Mode::Connect),
            Keep::Only(vec![Cap::BindService, Cap::Admin])
        );
        assert_eq!(
            for_daemon(&c, Mode::Stealth).to_string(),
            "keeping CAP_NET_ADMIN, CAP_NET_RAW; every other capability dropped, no new privileges"
        );
        assert_eq!(
            for_legacy(&c, LegacyMode::Tcp),
            Keep::Only(vec![Cap::BindService, Cap::Admin])
        );
        assert_eq!(
            for_legacy(&c, LegacyMode::Atcp),
            Keep::Only(vec![Cap::BindService, Cap::Admin, Cap::Raw])
        );
    }

    #[test]
    fn commands_keep_everything() {
        for (text, key) in [
            (
                "KILL_ROUTE=\"/sbin/route add $TARGET$ 127.0.0.1\"",
                "KILL_ROUTE",
            ),
            ("KILL_RUN_CMD=\"/bin/true $TARGET$\"", "KILL_RUN_CMD"),
            (
                "BLOCK_BACKEND=\"command\"\nBLOCK_COMMAND=\"/bin/true $TARGET$\"",
                "BLOCK_COMMAND",
            ),
        ] {
            let c = cfg(&format!("TCP_PORTS=\"1\"\n{text}\n"));
            assert_eq!(for_daemon(&c, Mode::Stealth), Keep::All { key }, "{text}");
            assert!(for_daemon(&c, Mode::Stealth).to_string().contains(key));
        }
        // KILL_HOSTS_DENY writes a line; it runs nothing
        let c = cfg("TCP_PORTS=\"1\"\nKILL_HOSTS_DENY=\"ALL: $TARGET$\"\n");
        assert!(matches!(for_daemon(&c, Mode::Connect), Keep::Only(_)));
    }

    #[test]
    fn a_reload_cannot_need_more_than_is_held() {
        let held = Keep::Only(vec![Cap::Admin, Cap::Raw]);
        assert_eq!(held.lacks(&Keep::Only(vec![Cap::Admin])), None);
        assert!(held
            .lacks(&Keep::Only(vec![Cap::BindService]))
            .unwrap()
            .contains("CAP_NET_BIND_SERVICE"));
        assert!(held
            .lacks(&Keep::All {
                key: "KILL_RUN_CMD"
            })
            .unwrap()
            .starts_with("KILL_RUN_CMD runs commands"));
        assert_eq!(
            Keep::All { key: "KILL_ROUTE" }.lacks(&Keep::All { key: "X" }),
            None
        );
    }
}
