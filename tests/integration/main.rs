//! The one integration test binary (one link step on 2 cores): CLI, config, replay, and
//! the root tests that run the daemon between network namespaces.

#![allow(clippy::unwrap_used)]

mod blocking;
mod cli;
mod config_errors;
mod crowdsec;
mod debian;
mod detect;
mod differential;
mod legacy;
mod netns;
mod replay;
mod rotation;
mod util;
