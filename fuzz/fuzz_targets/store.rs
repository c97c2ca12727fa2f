//! Fuzz target: opening a block store journal with any content must never panic: it
//! loads (dropping only a torn last line, with a warning) or fails with `path:line`.
//! The real `Store::open` runs on a file in a private temp directory, so the crash
//! repairs (a torn line cut off, a missing newline completed) are exercised too.
//!
//! In: arbitrary bytes from libFuzzer, written as the journal. Out: nothing; a panic is
//! the failure. Must not: write outside its own temp directory.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portsentry::store::Store;

fn journal() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("portsentry-fuzz-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join("blocks")
    })
}

fuzz_target!(|data: &[u8]| {
    let path = journal();
    if std::fs::write(path, data).is_err() {
        return;
    }
    if let Ok((store, _)) = Store::open(path) {
        let _ = store.active_len();
        for rec in store.all() {
            let _ = rec.net.to_string();
        }
    }
});
