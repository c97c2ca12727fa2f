//! CrowdSec Local API (LAPI) for portsentry: the bouncer side (the decisions stream)
//! and the watcher side (login, alerts), over a small blocking HTTP client.
//!
//! In: the LAPI URL and credentials, and typed data ([`Report`] for a block of ours).
//! Out: typed decisions ([`Ban`]) and errors with one variant per failed step. Must not:
//! decide what to block (the daemon's blocklist does, with its never-block rules), keep
//! state between calls beyond the agent's connection pool, or start threads. Facts about
//! the API as CrowdSec 1.4.6 answers are in `tests/crowdsec/README.md`.

mod alert;
mod client;
mod decision;
mod duration;

pub use alert::{alert_json, Report};
pub use client::{Lapi, LapiError};
pub use decision::{Ban, Decision, DecisionError, Stream};
pub use duration::{format_go, parse_go, GoDuration};
