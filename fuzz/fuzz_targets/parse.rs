//! Fuzz target: the packet parser must never panic, whatever the bytes and link type.
//!
//! In: arbitrary bytes from libFuzzer. Out: nothing; a panic is the failure.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portsentry::packet::{parse, parse_ip, LinkType};

fuzz_target!(|data: &[u8]| {
    for link in LinkType::ALL {
        if let Err(skip) = parse(link, data) {
            let _ = skip.is_malformed();
        }
    }
    let _ = parse_ip(data);
});
