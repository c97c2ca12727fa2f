//! Log rotation during a flood (issue #16): the shipped logrotate file (`contrib/logrotate`,
//! its path pointed at the test's history file) is forced while hping3 sends a bounded
//! 100 probes/s flood between the test's namespaces. Every event the daemon reported must
//! be one line in the history, in the rotated file or the new one, and the lines after
//! the rotation go to the new file. Root only; without root, logrotate or hping3 it skips
//! with the reason.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::netns::{config, Bed, TARGET4};
use crate::util::is_root;

fn lines(p: &Path) -> usize {
    std::fs::read_to_string(p).map_or(0, |t| t.lines().count())
}

#[test]
fn logrotate_during_a_flood_loses_no_history_line() {
    let test = "logrotate_during_a_flood_loses_no_history_line";
    if !is_root(test) {
        return;
    }
    for need in ["/usr/sbin/logrotate", "/usr/sbin/hping3"] {
        if !Path::new(need).exists() {
            eprintln!("SKIP {test}: needs {need}");
            return;
        }
    }
    let bed = Bed::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let conf = config(dir.path(), "TCP_PORTS=\"1\"\nUDP_PORTS=\"7\"\n");
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/logrotate/portsentry"
    ))
    .unwrap();
    let stanza = shipped.replace(
        "/var/log/portsentry.log /var/lib/portsentry/portsentry.history",
        &format!("{d}/history"),
    );
    assert!(stanza.contains(&format!("{d}/history {{")), "{stanza}");
    std::fs::write(dir.path().join("logrotate.conf"), stanza).unwrap();
    let daemon = bed.daemon(&["-c", &conf]);

    // 300 SYNs at 100/s (3 s), bounded by timeout
    let scanner = bed.scanner.clone();
    let flood = std::thread::spawn(move || {
        Command::new("timeout")
            .args(["-k", "2", "15", "ip", "netns", "exec", &scanner])
            .args([
                "hping3", "-q", "-S", "-p", "1", "-i", "u10000", "-c", "300", TARGET4,
            ])
            .output()
            .expect("hping3")
    });
    std::thread::sleep(Duration::from_millis(1500));
    let lr = Command::new("logrotate")
        .arg("-f")
        .arg("-s")
        .arg(dir.path().join("logrotate.state"))
        .arg(dir.path().join("logrotate.conf"))
        .output()
        .expect("logrotate");
    assert!(
        lr.status.success(),
        "logrotate: {}",
        String::from_utf8_lossy(&lr.stderr)
    );
    let rotated_at = lines(&dir.path().join("history.1"));
    flood.join().unwrap();
    // every probe reported: wait until the daemon's count stops moving
    let start = Instant::now();
    let mut last = (daemon.scans().len(), Instant::now());
    while start.elapsed() < Duration::from_secs(10) && last.1.elapsed() < Duration::from_millis(700)
    {
        std::thread::sleep(Duration::from_millis(50));
        let n = daemon.scans().len();
        if n != last.0 {
            last = (n, Instant::now());
        }
    }
    let events = daemon.scans().len();
    let (old, new) = (
        lines(&dir.path().join("history.1")),
        lines(&dir.path().join("history")),
    );
    assert!(events >= 250, "only {events} events of 300 probes");
    assert!(old > 0 && new > 0, "no rotation mid-flood: {old} + {new}");
    assert_eq!(
        old + new,
        events,
        "history lines lost: {old} + {new} of {events}"
    );
    // at most the lines of the moment of the rename went to the renamed file after it
    assert!(
        old <= rotated_at + 2,
        "{old} lines in the rotated file, {rotated_at} at rotation"
    );
}
