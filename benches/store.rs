//! The block store's costs (blocking.md §1): 100 000 durable puts, opening a store that
//! large, one more put with 100 000 blocks (must not grow with the count), compaction.

use std::time::Instant;

use portsentry::store::{Record, Store};
use portsentry_blocker::Net;

fn rec(i: u32) -> Record {
    Record {
        net: Net::host(std::net::Ipv4Addr::from(0xc612_0000u32 + i).into()),
        backends: vec!["nft"].into(),
        first_seen: 1_800_000_000,
        last_seen: 1_800_000_000,
        hits: 1,
        protocol: "TCP".into(),
        port: 1,
        scan: "TCP SYN/Normal scan".into(),
        expires: Some(1_800_003_600),
        offences: 1,
        lifted: false,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("blocks");
    let Ok((mut s, _)) = Store::open(&path) else {
        return;
    };
    let n = 100_000u32;
    let t = Instant::now();
    for i in 0..n {
        if s.put(rec(i)).is_err() {
            return;
        }
    }
    let puts = t.elapsed();
    drop(s);
    let t = Instant::now();
    let Ok((mut s, _)) = Store::open(&path) else {
        return;
    };
    let open = t.elapsed();
    let t = Instant::now();
    let _ = s.put(rec(n + 1));
    let one = t.elapsed();
    let t = Instant::now();
    let _ = s.compact();
    let compact = t.elapsed();
    println!(
        "store: {n} durable puts {puts:?} ({:?}/put); open with {n} records {open:?}; one more put {one:?}; compaction {compact:?}",
        puts / n
    );
}
