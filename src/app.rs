//! The program: argv in, exit code out.
//!
//! In: argv. Out: the exit code, after running the daemon, a command or a replay.
//! Config errors are printed (`path:line: ...`) and mapped to exit 78 before anything
//! is opened, bound or written.

use std::ffi::OsString;

use crate::cli::{self, Command, Invocation, Options};
use crate::commands;
use crate::config::{Config, ConfigError};
use crate::exit;
use crate::model::Dialect;

/// Runs portsentry with `args` (argv[0] included) and returns the exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    match cli::parse(args) {
        Err(e) if e.code == 0 => {
            print!("{}", e.message);
            exit::OK
        }
        Err(e) => {
            eprintln!("{}", e.message.trim_end());
            e.code
        }
        Ok(Invocation::V2(o)) => run_v2(*o),
        Ok(Invocation::Legacy { mode, config }) => crate::legacy::main(mode, &config),
    }
}

fn print_warnings(cfg: &Config) {
    for w in &cfg.warnings {
        eprintln!("warning: {w}");
    }
}

/// Loads and validates the config for a 2.x command line.
pub fn load_v2(o: &Options) -> Result<Config, ConfigError> {
    let mut cfg = Config::load(&o.config, Dialect::V2)?;
    if let Some(b) = &o.block_backend {
        cfg.block_backend = b.clone();
    }
    cfg.validate(o.mode)?;
    Ok(cfg)
}

fn run_v2(o: Options) -> i32 {
    // Commands that read no 2.x config.
    match &o.command {
        Some(Command::Completions { shell }) => return commands::completions(*shell),
        Some(Command::CheckConfig { legacy: Some(w) }) => {
            return commands::check_legacy_config(&o.config, *w)
        }
        _ => {}
    }
    let cfg = match load_v2(&o) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return exit::CONFIG;
        }
    };
    print_warnings(&cfg);
    let (ignore, warnings) = match cfg.load_ignore() {
        Ok(x) => x,
        Err(e) => {
            // check-config still shows everything else it found
            if matches!(o.command, Some(Command::CheckConfig { .. })) {
                commands::check_config(&cfg, None, commands::Target::V2(o.mode));
            }
            eprintln!("{e}");
            return exit::CONFIG;
        }
    };
    for w in warnings {
        eprintln!("warning: {w}");
    }
    match &o.command {
        Some(Command::CheckConfig { .. }) => {
            commands::check_config(&cfg, Some(&ignore), commands::Target::V2(o.mode))
        }
        Some(other) => commands::store_command(&cfg, &ignore, other),
        None => crate::daemon::run(o, cfg, ignore),
    }
}
