//! Portsentry 1.2 legacy mode (`portsentry -atcp`).
//!
//! In: the mode word and the config path. Out: an exit code.

use std::path::Path;

use crate::commands;
use crate::config::{Config, Dialect};
use crate::exit;
use crate::logging::legacy::{Legacy, LegacyMode};

/// Runs one legacy mode.
pub fn main(mode: LegacyMode, path: &Path) -> i32 {
    let cfg = match Config::load(path, Dialect::Legacy) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("{}", Legacy::ConfigMissing);
            return exit::LEGACY_FAILURE;
        }
    };
    for w in &cfg.warnings {
        eprintln!("{}", Legacy::Admin(w));
    }
    let ignore = cfg.load_ignore().ok().map(|(l, _)| l);
    commands::check_config(&cfg, ignore.as_ref(), commands::Target::Legacy(mode))
}
