//! portsentry: detects port scans in real time and blocks the scanner.
//!
//! The pipeline, in the order data flows (`docs/architecture.md`):
//! capture → engine → respond (the executor) → blocklist → backends (`backends/*`),
//! with `model` (shared leaf types), `facts` (what is true of this host), `config`,
//! `store` and `logging` beside it. `main.rs` calls [`app::main`]; the other public
//! modules are public for the integration tests, the benches and the fuzz targets
//! (`cli` for the last), and the wiring (`daemon`, `control`, `respond`, ...) stays
//! private.

pub mod app;
pub mod blocklist;
pub mod capture;
pub mod cli;
pub mod commands;
pub mod config;
mod control;
mod daemon;
pub mod engine;
mod exit;
pub mod facts;
mod fsutil;
pub mod legacy;
pub mod logging;
pub mod model;
pub mod packet;
mod pidfile;
pub mod pipeline;
mod privileges;
mod process;
mod respond;
pub mod share;
pub mod store;
#[cfg(target_os = "linux")]
mod sys;
