//! Peak memory of the SCAN_TRIGGER table after 1 M distinct spoofed sources
//! (issue #3 target: at most 16 MiB). Prints the VmHWM growth.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use portsentry::engine::trigger::{Trigger, DEFAULT_CAP};

fn kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    for six in [false, true] {
        let before = kib("VmHWM:");
        let mut t = Trigger::new(3, DEFAULT_CAP);
        for i in 0..1_000_000u32 {
            let ip = if six {
                IpAddr::V6(Ipv6Addr::from(
                    0xfd00_5e5e_0000_0000_0000_0000_0000_0000u128 | u128::from(i),
                ))
            } else {
                IpAddr::V4(Ipv4Addr::from(0xc612_0000u32.wrapping_add(i)))
            };
            t.hit(ip);
        }
        let after = kib("VmHWM:");
        println!(
            "trigger table, 1M distinct {} sources: {} entries kept, {} evicted, VmHWM +{} KiB ({:.1} MiB)",
            if six { "IPv6" } else { "IPv4" },
            t.len(),
            t.evicted(),
            after.saturating_sub(before),
            after.saturating_sub(before) as f64 / 1024.0
        );
        drop(t);
    }
}
