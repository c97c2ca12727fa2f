//! The executor with real files in a temp dir, real commands, and the real engine.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::*;
use crate::config::{IgnoreList, Template};
use crate::engine::{Engine, Event, Ignore, Policy, Rules};
use crate::facts::FixedFacts;
use crate::model::BlockMode;

const SRC: &str = "198.19.50.1";
const DST: &str = "198.19.50.2";

struct Bed {
    dir: tempfile::TempDir,
    engine: Arc<Mutex<Engine>>,
    ex: Executor,
    mem: Arc<Mutex<Vec<String>>>,
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn rules(policy: Policy, actions: &Actions, block: BlockMode) -> Rules {
    Rules {
        policy,
        service_check: false,
        block_tcp: block,
        block_udp: block,
        hosts_deny: actions.hosts_deny.is_some(),
        route: actions.route.is_some(),
        backends: false,
        run_cmd: actions.run_cmd.is_some(),
        run_cmd_first: false,
        banner: actions.banner.is_some(),
        resolve: false,
        scan_trigger: 0,
        block_max: 100_000,
        block_rate: 1000,
    }
}

fn actions(dir: &std::path::Path) -> Actions {
    Actions {
        hosts_deny: None,
        hosts_deny_file: dir.join("hosts.deny"),
        route: None,
        route_remove: None,
        run_cmd: None,
        banner: None,
        ignore_file: String::new(),
        log_rate: 1000,
    }
}

impl Bed {
    fn new(legacy: Option<LegacyMode>, block: BlockMode, edit: impl FnOnce(&mut Actions)) -> Bed {
        let dir = tempfile::tempdir().unwrap();
        let mut a = actions(dir.path());
        edit(&mut a);
        let policy = match legacy {
            Some(m) => Policy::Legacy(m),
            None => Policy::V2 { local_check: true },
        };
        let engine = Arc::new(Mutex::new(Engine::new(
            rules(policy, &a, block),
            Ignore::List(IgnoreList::default()),
        )));
        let (log, mem) = Logger::memory(true, false);
        let records = match legacy {
            Some(mode) => Records::Legacy {
                mode,
                history: files::AppendFile::open(&dir.path().join("history")).unwrap(),
                blocked: Blocked::open(&dir.path().join(format!("blocked.{}", mode.word())))
                    .unwrap(),
            },
            None => Records::v2(
                Some(files::AppendFile::open(&dir.path().join("history")).unwrap()),
                Some(
                    files::BlockedFile::open(&dir.path().join("blocked"))
                        .unwrap()
                        .0,
                ),
            ),
        };
        let ex = Executor::new(Setup {
            log: Arc::new(log),
            legacy,
            mode_word: legacy.map_or("stealth", |m| m.word()),
            dry_run: false,
            actions: a,
            records,
            blocking: Blocking::None,
            feedback: crate::pipeline::feedback(&engine),
        });
        Bed {
            dir,
            engine,
            ex,
            mem,
        }
    }

    fn job(&self, src: &str, port: u16) -> Job {
        let ev = Event {
            ts: SystemTime::now(),
            proto: Proto::Tcp,
            src: ip(src),
            dst: ip(DST),
            port,
            kind: ScanKind::Syn,
            ip_opts: IpOpts::NotSet,
            connect: false,
        };
        let d = self
            .engine
            .lock()
            .unwrap()
            .observe(ev.ts, &ev, &FixedFacts::default());
        Job::new(d, None)
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.mem.lock().unwrap())
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }
}

fn scan(src: &str, port: u16, flags: &str) -> String {
    format!("Scan from: [{src}] ({src}) protocol: [TCP] port: [{port}] type: [TCP SYN/Normal scan] IP opts: [not set] {flags}")
}

#[test]
fn v2_hosts_deny_then_already_blocked_and_the_files() {
    let b = Bed::new(None, BlockMode::Block, |a| {
        a.hosts_deny = Some(Template("ALL: $TARGET$ : $MODE$ $PORT$".into()));
    });
    b.ex.run_group(vec![b.job(SRC, 1)]);
    assert_eq!(
        b.take(),
        [
            format!("attackalert: Host {SRC} has been blocked via wrappers with string: \"ALL: {SRC} : stealth 1\""),
            scan(SRC, 1, "ignored: [false] triggered: [true] noblock: [false] blocked: [true]"),
        ]
    );
    b.ex.run_group(vec![b.job(SRC, 2)]);
    assert_eq!(
        b.take(),
        [
            format!("attackalert: Host: {SRC}/{SRC} is already blocked Ignoring"),
            scan(
                SRC,
                2,
                "ignored: [false] triggered: [true] noblock: [false] blocked: [true]"
            ),
        ]
    );
    assert_eq!(b.read("hosts.deny"), format!("ALL: {SRC} : stealth 1\n"));
    assert_eq!(b.read("history").lines().count(), 2);
    assert_eq!(
        std::fs::metadata(b.dir.path().join("blocked"))
            .unwrap()
            .len(),
        6
    );
}

#[test]
fn v2_every_action_failed_is_reported_and_the_next_event_tries_again() {
    let b = Bed::new(None, BlockMode::Block, |a| {
        a.hosts_deny = Some(Template("ALL: $TARGET$".into()));
        a.hosts_deny_file = "/nonexistent-dir/hosts.deny".into();
    });
    for port in [1, 2] {
        b.ex.run_group(vec![b.job(SRC, port)]);
        let l = b.take();
        assert_eq!(l.len(), 3, "{l:?}");
        assert!(l[0].starts_with(&format!(
            "cannot add \"ALL: {SRC}\" to /nonexistent-dir/hosts.deny: cannot lock"
        )));
        assert_eq!(
            l[1],
            format!("attackalert: Error during target dispose {SRC}/{SRC}!")
        );
        assert!(l[2].ends_with("noblock: [false] blocked: [false]"));
    }
    assert!(!b.engine.lock().unwrap().is_blocked(ip(SRC)));
}

#[test]
fn a_slow_command_delays_only_its_own_host() {
    // issue #13: KILL_RUN_CMD="sleep" for every host; the hosts run side by side, and a
    // host's later decision waits behind its own first one.
    let out = tempfile::tempdir().unwrap();
    let ran = out.path().join("ran");
    let b = Bed::new(None, BlockMode::RunCmd, |a| {
        a.run_cmd = Some(Template(format!(
            "sleep 1; echo $TARGET$ $PORT$ >> {}",
            ran.display()
        )));
    });
    let start = std::time::Instant::now();
    let mut first: Vec<Job> = vec![b.job("198.19.50.10", 1)];
    first.extend((11..16).map(|h| b.job(&format!("198.19.50.{h}"), 1)));
    b.ex.run_group(first);
    // a later decision of a busy host queues behind its first one
    b.engine.lock().unwrap().note_unblocked(ip("198.19.50.10"));
    b.ex.run_group(vec![b.job("198.19.50.10", 2)]);
    assert!(start.elapsed() < Duration::from_millis(900));
    assert_eq!(b.ex.busy_hosts(), 6);
    b.ex.finish(Duration::from_secs(20));
    // side by side: about 2 s (host .10 twice); one after the other it would be 7 s
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let lines = b.take();
    let of10: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("198.19.50.10"))
        .collect();
    assert_eq!(of10.len(), 4, "{lines:?}");
    assert!(
        of10[1].contains("port: [1]") && of10[3].contains("port: [2]"),
        "{of10:?}"
    );
}

#[test]
fn legacy_block_0_records_the_host_once() {
    let b = Bed::new(Some(LegacyMode::Stcp), BlockMode::LogOnly, |_| {});
    b.ex.run_group(vec![b.job(SRC, 1)]);
    assert_eq!(
        b.take(),
        [
            format!("attackalert: TCP SYN/Normal scan from host: {SRC}/{SRC} to TCP port: 1"),
            "attackalert: Ignoring TCP response per configuration file setting.".to_string()
        ]
    );
    b.ex.run_group(vec![b.job(SRC, 2)]);
    assert_eq!(
        b.take()[1],
        format!("attackalert: Host: {SRC}/{SRC} is already blocked Ignoring")
    );
    let h = b.read("history");
    assert_eq!(h.lines().count(), 1);
    assert!(
        h.ends_with(&format!(" Host: {SRC}/{SRC} Port: 1 TCP Blocked\n")),
        "{h}"
    );
    assert_eq!(b.read("blocked.stcp"), h);
}

#[test]
fn legacy_a_failed_action_is_not_recorded_and_the_command_status_is_said() {
    let b = Bed::new(Some(LegacyMode::Atcp), BlockMode::Block, |a| {
        a.hosts_deny = Some(Template("ALL: $TARGET$".into()));
        a.hosts_deny_file = "/nonexistent-dir/hosts.deny".into();
        a.run_cmd = Some(Template("exit 4".into()));
    });
    for _ in 0..2 {
        b.ex.run_group(vec![b.job(SRC, 5)]);
        b.ex.finish(Duration::from_secs(10));
        let l = b.take();
        assert_eq!(l.len(), 5, "{l:?}");
        assert!(l[1].starts_with(&format!(
            "adminalert: ERROR: cannot add \"ALL: {SRC}\" to /nonexistent-dir/hosts.deny: "
        )));
        assert_eq!(
            l[2],
            format!("attackalert: External command run for host: {SRC} using command: \"exit 4\"")
        );
        assert_eq!(l[3], "adminalert: command exited with status 4: \"exit 4\"");
        assert_eq!(
            l[4],
            format!("attackalert: ERROR: Could not block host {SRC}/{SRC}!!")
        );
    }
    assert!(b.read("history").is_empty());
}

#[test]
fn legacy_hosts_deny_lines_from_many_writers_are_all_kept() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("hosts.deny");
    let threads: Vec<_> = (0..30)
        .map(|i| {
            let p = p.clone();
            std::thread::spawn(move || {
                portsentry_hosts_deny::add_line(&p, &format!("ALL: 198.18.1.{i}")).unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 30);
    assert_eq!(
        portsentry_hosts_deny::add_line(&p, "ALL: 198.18.1.7").unwrap(),
        portsentry_hosts_deny::Added::AlreadyThere
    );
}

/// In one group, a host's later decision (already blocked) is written after the one that
/// blocks it, never before.
#[test]
fn a_hosts_lines_keep_their_order_within_a_group() {
    let b = Bed::new(None, BlockMode::Block, |a| {
        a.hosts_deny = Some(Template("ALL: $TARGET$".into()));
    });
    // the typed-block step parks the first decision; use a preview so it is reached
    b.ex.set_blocking(Blocking::Preview(crate::blocklist::Preview {
        settings: crate::blocklist::Settings {
            base: None,
            multiplier: 1.0,
            max: None,
            block_max: 10,
            block_rate: 10,
            prefix_v6: 128,
        },
        backends: vec!["nft"],
        facts: Arc::new(FixedFacts::default()),
        ignore: IgnoreList::default(),
    }));
    let mut r = b.engine.lock().unwrap().rules().clone();
    r.backends = true;
    b.engine.lock().unwrap().reconfigure(r);
    let first = b.job(SRC, 1);
    let second = b.job(SRC, 2);
    b.ex.run_group(vec![first, second]);
    let lines = b.take();
    let scans: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("Scan from"))
        .collect();
    assert_eq!(scans.len(), 2, "{lines:?}");
    assert!(
        scans[0].contains("port: [1]") && scans[1].contains("port: [2]"),
        "{lines:?}"
    );
}

/// Issue #17 item 8: a flood of scan lines is capped (LOG_RATE_LIMIT) after a burst that
/// holds one host's scan of every port; held-back lines are counted, in the log only.
#[test]
fn the_flood_cap_holds_back_scan_lines_and_says_how_many() {
    let b = Bed::new(None, BlockMode::LogOnly, |a| a.log_rate = 1);
    let n = budget::BURST as usize + 500;
    // sources from 198.18.0.0/15, one event each
    let jobs: Vec<Job> = (0..n)
        .map(|i| {
            b.job(
                &format!("198.{}.{}.{}", 18 + (i >> 16) % 2, (i >> 8) & 255, i & 255),
                1,
            )
        })
        .collect();
    b.ex.run_group(jobs);
    b.ex.finish(Duration::from_secs(20));
    let lines = b.take();
    let scans = lines.iter().filter(|l| l.starts_with("Scan from:")).count();
    // the burst, plus at most a few at 1 line per second
    assert!(
        (budget::BURST as usize..budget::BURST as usize + 20).contains(&scans),
        "{scans}"
    );
    let history = b.read("history");
    assert_eq!(history.lines().count(), scans);
    let summaries: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("adminalert: flood: "))
        .collect();
    let held: u64 = summaries
        .iter()
        .map(|l| {
            l["adminalert: flood: ".len()..]
                .split(' ')
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(held as usize + scans, n, "{summaries:?}");
    assert!(
        summaries[0].contains("(LOG_RATE_LIMIT=1 lines per second after a burst of 65536); every event was still handled"),
        "{summaries:?}"
    );
    assert!(!history.contains("flood"));
}
