//! The `nft` backend: blocks addresses in our own nf_tables table, over netlink.
//!
//! In: [`Options`] (table name, hooks) and typed targets through the
//! [`portsentry_blocker::Blocker`] trait. Out: table `inet <table>` with timeout sets
//! `blocked4`/`blocked6`, drop rules in base chains `input` (and `forward`), and the
//! elements; errors as [`NftError`], mapped to `BlockError` at the trait boundary.
//! Must not: run the `nft` binary, or read or write any table but ours.
//!
//! `replace_all` (start-up, reapply) is one batch: flush both sets, add every target.
//!
//! Layout: [`plan`] says which messages each verb sends (pure), `encode` writes them with
//! libnftnl, `link` sends a batch in one `sendmsg` and checks every ACK, `wire` parses
//! what the kernel answers (pure), `sys` holds every `unsafe` call.
//!
//! On other systems than Linux this crate is empty.

// Tests may unwrap: a panic there is a failed test, not a crashed daemon.
#![cfg_attr(test, allow(clippy::unwrap_used))]

#[cfg(target_os = "linux")]
mod backend;
#[cfg(target_os = "linux")]
pub mod bench;
#[cfg(target_os = "linux")]
mod encode;
#[cfg(target_os = "linux")]
mod error;
#[cfg(target_os = "linux")]
mod link;
#[cfg(target_os = "linux")]
pub mod plan;
#[cfg(target_os = "linux")]
mod sys;
#[cfg(target_os = "linux")]
mod watch;
#[cfg(target_os = "linux")]
mod wire;

#[cfg(target_os = "linux")]
pub use backend::{Nftables, MAX_BATCH_TARGETS};
#[cfg(target_os = "linux")]
pub use error::NftError;
#[cfg(target_os = "linux")]
pub use link::BatchStats;
#[cfg(target_os = "linux")]
pub use plan::{Hook, Options};
#[cfg(target_os = "linux")]
pub use wire::WireError;
