//! portsentry: detects port scans in real time and blocks the scanner.
//!
//! The library holds every piece of the daemon so that tests and benches reach them;
//! `main.rs` only parses the command line and maps errors to exit codes.

pub mod app;
pub mod blocklist;
pub mod capture;
pub mod cli;
pub mod commands;
pub mod config;
pub mod control;
pub mod daemon;
pub mod engine;
pub mod exit;
pub mod facts;
pub mod fsutil;
pub mod legacy;
pub mod logging;
pub mod model;
pub mod packet;
pub mod pidfile;
pub mod pipeline;
pub mod respond;
pub mod store;
