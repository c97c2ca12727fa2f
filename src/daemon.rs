//! Wiring of the daemon: capture, engine, responses, signals.

use crate::cli::Options;
use crate::config::{Config, IgnoreList};
use crate::exit;

pub fn run(_o: Options, _cfg: Config, _ignore: IgnoreList) -> i32 {
    eprintln!("portsentry: detection is not available in this build yet");
    exit::UNAVAILABLE
}
