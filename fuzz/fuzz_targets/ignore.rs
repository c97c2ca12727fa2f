//! Fuzz target: the ignore file, as 2.x and as 1.2 mode read it, must never panic; a
//! list or a `path:line` error, and every listed network answers `contains`.
//!
//! In: arbitrary bytes from libFuzzer, read as an ignore file. Out: nothing; a panic is
//! the failure.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use portsentry::config::ignore;
use portsentry::legacy::files::parse_ignore;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.ignore");
    let probes = [
        IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];
    if let Ok((list, _)) = ignore::parse(path, data) {
        for ip in probes {
            let _ = list.contains(ip);
        }
    }
    let (list, _) = parse_ignore(path, data);
    for ip in probes {
        let _ = list.contains(ip);
    }
});
