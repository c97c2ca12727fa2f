//! portsentry: detects port scans in real time and blocks the scanner.
//!
//! The library holds every piece of the daemon so that tests and benches reach them;
//! `main.rs` only parses the command line and maps errors to exit codes.

pub mod config;
pub mod packet;
pub mod scan;
