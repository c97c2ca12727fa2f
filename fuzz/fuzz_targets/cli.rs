//! Fuzz target: the command line (2.x flags and commands, and the 1.2 mode words) must
//! never panic: any argv parses or gives a usage error with exit code 64.
//!
//! In: arbitrary bytes from libFuzzer, split at NUL bytes into arguments after
//! `portsentry`. Out: nothing; a panic, or a usage error with another code, is the
//! failure.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use libfuzzer_sys::fuzz_target;
use portsentry::cli;

fuzz_target!(|data: &[u8]| {
    let mut argv = vec![OsString::from("portsentry")];
    argv.extend(
        data.split(|&b| b == 0)
            .take(32)
            .map(|a| OsString::from_vec(a.to_vec())),
    );
    if let Err(e) = cli::parse(argv) {
        // --help and --version come back as "errors" with exit 0
        assert!(e.code == 64 || e.code == 0, "exit {} for a usage error", e.code);
    }
});
