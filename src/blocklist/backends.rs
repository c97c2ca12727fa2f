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
    #[error("block backend nft: cannot open the netlink socket: {0}")]
    Open(String),
    #[error("BLOCK_PREFIX_V6={0}: the nft backend blocks single hosts only (use 128)")]
    Prefix(u8),
}

/// The configured backends, in the configured order.
pub fn make_backends(cfg: &Config) -> Result<Vec<Box<dyn Blocker>>, BuildError> {
    cfg.block_backend
        .iter()
        .map(|name| make_backend(name.resolve(), cfg))
        .collect()
}

fn make_backend(name: BackendName, cfg: &Config) -> Result<Box<dyn Blocker>, BuildError> {
    match name {
        #[cfg(target_os = "linux")]
        BackendName::Nft => {
            if cfg.block_prefix_v6 != 128 {
                return Err(BuildError::Prefix(cfg.block_prefix_v6));
            }
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
        other => Err(BuildError::NotBuilt(other)),
    }
}
