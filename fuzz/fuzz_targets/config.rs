//! Fuzz target: the config lexer and parser in both dialects, and the value parsers
//! they use, must never panic: any bytes give a config or a `path:line` error.
//!
//! In: arbitrary bytes from libFuzzer, read as a config file. Out: nothing; a panic is
//! the failure.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use portsentry::config::{lexer, parse_backends, parse_duration, split_argv, Config};
use portsentry::model::{Dialect, Mode};

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.conf");
    let _ = lexer::lex(path, data);
    let _ = lexer::lex_loose(data);
    for dialect in [Dialect::V2, Dialect::Legacy] {
        if let Ok(mut cfg) = Config::parse(path, data, dialect) {
            let _ = cfg.effective();
            for mode in [Mode::Stealth, Mode::Connect] {
                let _ = cfg.clone().validate(mode);
            }
            let _ = cfg.validate(Mode::Connect);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_duration(text);
        let _ = split_argv(text);
        let _ = parse_backends(text);
    }
});
