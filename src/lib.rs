//! portsentry: detects port scans in real time and blocks the scanner.
//!
//! The library holds every piece of the daemon so that tests and benches reach them;
//! `main.rs` only parses the command line and maps errors to exit codes.

pub mod app;
pub mod capture;
pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod detect;
pub mod exit;
pub mod legacy;
pub mod logging;
pub mod model;
pub mod packet;
pub mod respond;
pub mod store;
