//! The whole lifecycle against fake pfctl programs: /bin/sh scripts in a temp dir that
//! log each argv (and stdin), keep the table in a file, and answer in pfctl's formats.
//! Runs on Linux as any user.
//!
//! Every test that runs a program holds [`SPAWN`] from before it writes its script
//! until it ends, so no other test thread forks while a script is open for writing (a
//! child holding that descriptor across fork would make exec fail with ETXTBSY).

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use portsentry_blocker::{BlockError, Blocker, Net, Target};

use crate::*;

static SPAWN: Mutex<()> = Mutex::new(());

/// A fake pfctl(8). The formats it answers in, from OpenBSD sbin/pfctl (pfctl.c,
/// pfctl_table.c 1.91, pfctl_parser.c) and FreeBSD sbin/pfctl (the same code):
/// - `-T add` / `-T replace` create a missing table (CREATE_TABLE:
///   `xprintf(opts, "%d table created", nadd)`), then print to stderr
///   `xprintf(opts, "%d/%d addresses added", nadd, b.pfrb_size)`, resp.
///   `"%d addresses added"`, `"%d addresses deleted"`, `"no changes"`; xprintf appends
///   `.\n`.
/// - `-T delete`: `"%d/%d addresses deleted"`; `-T flush`: `"%d addresses deleted"`.
/// - `-T show`: print_addrx `printf("%c %c%s", ch, (ad->pfra_not?'!':' '), buf)` and
///   `"/%d"` for a network, on stdout: `   198.18.0.1`.
/// - a missing table: RVTEST `warnx("%s", pf_strerror(errno))` with ESRCH →
///   `pfctl: Table does not exist`, and pfctl_table returns -1, so pfctl exits 255; a
///   missing anchor: EINVAL → `pfctl: Anchor does not exist`.
/// - `-s Tables` (not verbose): print_table `printf("%s", ta->pfrt_name)` and, on
///   OpenBSD, `printf("@%s", ta->pfrt_anchor)`.
/// - `-s rules`: print_rule, e.g. `anchor "portsentry" all`,
///   `block drop in quick from <portsentry> to any`.
/// - `-k HOST`: `killed %d states from %d sources and %d destinations` on stderr.
/// - `-a ANCHOR -f -`: silent on success. A `table <T> persist` line without `{ }`
///   creates the table and keeps the entries of an existing one (pfr_commit_ktable,
///   `NO_ADDRESSES`).
///
/// Files in the script's directory: `log` (one line per run: the arguments),
/// `stdin.log` (everything read from stdin), `table` (the entries; absent = no table),
/// `table_name`, `anchor_rules` (absent = no anchor), `main_rules` (what `-s rules`
/// prints), `kill_fails` and `show_extra` (test switches).
const FAKE_PFCTL: &str = r##"#!/bin/sh
d=$(dirname "$0")
printf '%s\n' "$*" >> "$d/log"
anchor=""; table=""; cmd=""; show=""; file=""; kill=""
while [ $# -gt 0 ]; do
  case "$1" in
    -a) anchor=$2; shift 2 ;;
    -t) table=$2; shift 2 ;;
    -T) cmd=$2; shift 2 ;;
    -s) show=$2; shift 2 ;;
    -f) file=$2; shift 2 ;;
    -k) kill=$2; shift 2 ;;
    -*) echo "pfctl: unknown option -- $1" >&2; exit 1 ;;
    *) break ;;
  esac
done
: > "$d/in"
if [ "$file" = "-" ]; then cat > "$d/in"; cat "$d/in" >> "$d/stdin.log"; fi
for a in "$@"; do printf '%s\n' "$a" >> "$d/in"; done
count() { awk 'END { print NR }' "$1"; }
absent() { echo "pfctl: Table does not exist" >&2; exit 255; }
create() {
  if [ ! -f "$d/table" ]; then
    : > "$d/table"; echo "$table" > "$d/table_name"; echo "1 table created." >&2
  fi
}
if [ -n "$kill" ]; then
  if [ -f "$d/kill_fails" ]; then
    echo "pfctl: DIOCKILLSTATES: Operation not permitted" >&2; exit 1
  fi
  echo "killed 0 states from 1 sources and 0 destinations" >&2
  exit 0
fi
case "$cmd" in
  "") ;;
  add)
    create
    awk 'FILENAME == ARGV[1] { have[$0] = 1; next } !($0 in have) { have[$0] = 1; print }' \
      "$d/table" "$d/in" > "$d/added"
    cat "$d/added" >> "$d/table"
    echo "$(count "$d/added")/$(count "$d/in") addresses added." >&2
    exit 0 ;;
  delete)
    [ -f "$d/table" ] || absent
    awk 'FILENAME == ARGV[1] { del[$0] = 1; next } !($0 in del) { print }' \
      "$d/in" "$d/table" > "$d/kept"
    n=$(( $(count "$d/table") - $(count "$d/kept") ))
    mv "$d/kept" "$d/table"
    echo "$n/$(count "$d/in") addresses deleted." >&2
    exit 0 ;;
  replace)
    create
    awk '!($0 in seen) { seen[$0] = 1; print }' "$d/in" > "$d/new"
    a=$(awk 'FILENAME == ARGV[1] { o[$0] = 1; next } !($0 in o) { n++ } END { print n + 0 }' "$d/table" "$d/new")
    x=$(awk 'FILENAME == ARGV[1] { k[$0] = 1; next } !($0 in k) { n++ } END { print n + 0 }' "$d/new" "$d/table")
    mv "$d/new" "$d/table"
    if [ "$a" -gt 0 ]; then echo "$a addresses added." >&2; fi
    if [ "$x" -gt 0 ]; then echo "$x addresses deleted." >&2; fi
    if [ "$a" -eq 0 ] && [ "$x" -eq 0 ]; then echo "no changes." >&2; fi
    exit 0 ;;
  show)
    [ -f "$d/table" ] || absent
    sed 's/^/   /' "$d/table"
    if [ -f "$d/show_extra" ]; then cat "$d/show_extra"; fi
    exit 0 ;;
  flush)
    [ -f "$d/table" ] || absent
    echo "$(count "$d/table") addresses deleted." >&2
    : > "$d/table"
    exit 0 ;;
  *) echo "pfctl: unknown table command $cmd" >&2; exit 1 ;;
esac
case "$show" in
  "") ;;
  rules)
    if [ -z "$anchor" ]; then
      if [ -f "$d/main_rules" ]; then cat "$d/main_rules"; fi
      exit 0
    fi
    if [ ! -f "$d/anchor_rules" ]; then echo "pfctl: Anchor does not exist" >&2; exit 255; fi
    cat "$d/anchor_rules"
    exit 0 ;;
  Tables)
    if [ -f "$d/table" ]; then echo "$(cat "$d/table_name")@$anchor"; fi
    exit 0 ;;
  *) echo "pfctl: unknown show modifier $show" >&2; exit 1 ;;
esac
if [ "$file" = "-" ] && [ -n "$anchor" ]; then
  grep -v '^table ' "$d/in" > "$d/anchor_rules"
  name=$(sed -n 's/^table <\([^>]*\)> persist$/\1/p' "$d/in")
  if [ -n "$name" ] && [ ! -f "$d/table" ]; then : > "$d/table"; echo "$name" > "$d/table_name"; fi
  exit 0
fi
echo "pfctl: fake: unhandled arguments" >&2
exit 1
"##;

/// pfctl run by a user who may not open /dev/pf: `err(1, "/dev/pf")`.
const FAILING_PFCTL: &str = "#!/bin/sh\necho 'pfctl: /dev/pf: Permission denied' >&2\nexit 1\n";

/// A pfctl stuck on the device.
const HANGING_PFCTL: &str = "#!/bin/sh\nsleep 30\n";

/// The main ruleset of a pf.conf that calls our anchor, as `pfctl -s rules` prints it.
const MAIN_WITH_ANCHOR: &str =
    "block return all\npass all flags S/SA\nanchor \"portsentry\" all\npass in on egress proto tcp from any to any port = 22 flags S/SA\n";

/// The same without the anchor line.
const MAIN_WITHOUT_ANCHOR: &str = "block return all\npass all flags S/SA\n";

struct Fake {
    _lock: MutexGuard<'static, ()>,
    dir: tempfile::TempDir,
    pf: Pf,
}

impl Fake {
    /// A temp dir holding `script` as `pfctl`, and a backend using it.
    fn new(script: &str, options: impl FnOnce(&mut Options)) -> Fake {
        let lock = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pfctl");
        fs::write(&path, script).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        let mut o = Options {
            pfctl: path,
            ..Options::default()
        };
        options(&mut o);
        Fake {
            _lock: lock,
            dir,
            pf: Pf::new(o),
        }
    }

    /// The full fake with a main ruleset that calls the anchor.
    fn pfctl() -> Fake {
        let f = Fake::new(FAKE_PFCTL, |_| {});
        f.write("main_rules", MAIN_WITH_ANCHOR);
        f
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        fs::write(self.file(name), text).unwrap();
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.file(name)).unwrap_or_default()
    }

    /// The runs so far, one line of arguments each (`argv[0]` left out).
    fn log(&self) -> Vec<String> {
        self.read("log").lines().map(str::to_string).collect()
    }

    fn clear_log(&self) {
        self.write("log", "");
        self.write("stdin.log", "");
    }

    fn held(&mut self) -> Vec<Net> {
        let mut v: Vec<Net> = self.pf.list().unwrap().into_iter().map(|h| h.net).collect();
        v.sort();
        v
    }
}

fn net(s: &str) -> Net {
    s.parse().unwrap()
}

fn target(s: &str) -> Target {
    Target {
        net: net(s),
        timeout: Some(Duration::from_secs(3600)),
        reason: Default::default(),
    }
}

/// The error and its sources as one line.
fn chain(e: &BlockError) -> String {
    let mut s = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn pf_error(e: &BlockError) -> &PfError {
    e.source.downcast_ref::<PfError>().unwrap()
}

const ADD: &str = "-a portsentry -t portsentry -T add";

#[test]
fn init_without_the_anchor_line_fails_and_loads_nothing() {
    let mut f = Fake::new(FAKE_PFCTL, |_| {});
    f.write("main_rules", MAIN_WITHOUT_ANCHOR);
    let e = f.pf.init().unwrap_err();
    assert!(matches!(
        pf_error(&e),
        PfError::AnchorNotReferenced { anchor } if anchor == "portsentry"
    ));
    let msg = chain(&e);
    assert!(msg.starts_with("pf: set-up failed: "), "{msg}");
    assert!(msg.contains("\n    anchor \"portsentry\"\n"), "{msg}");
    assert!(msg.contains("pfctl -f /etc/pf.conf"), "{msg}");
    assert_eq!(f.log(), ["-s rules"]);
    assert!(!f.file("anchor_rules").exists());
    assert!(!f.file("table").exists());
}

#[test]
fn init_loads_the_rule_and_table_and_keeps_entries_when_repeated() {
    let mut f = Fake::pfctl();
    assert!(f.pf.vanished().unwrap(), "nothing loaded yet");
    f.clear_log();
    f.pf.init().unwrap();
    assert_eq!(f.log(), ["-s rules", "-a portsentry -f -"]);
    assert_eq!(f.read("stdin.log"), anchor_ruleset("portsentry"));
    assert!(
        !f.read("stdin.log").contains('{'),
        "no address list: entries stay"
    );
    assert!(f.file("table").exists(), "the table exists after init");
    assert!(f.held().is_empty());
    assert!(!f.pf.vanished().unwrap());

    f.pf.block(&target("198.18.0.1")).unwrap();
    f.pf.init().unwrap();
    assert_eq!(
        f.held(),
        [net("198.18.0.1")],
        "init again keeps the entries"
    );
    assert!(!f.pf.vanished().unwrap());
}

#[test]
fn block_adds_once_and_kills_the_states_of_new_hosts_only() {
    let mut f = Fake::pfctl();
    f.pf.init().unwrap();
    f.clear_log();
    f.pf.block(&target("198.18.0.1")).unwrap();
    assert_eq!(
        f.log(),
        [format!("{ADD} 198.18.0.1"), "-k 198.18.0.1".to_string()]
    );
    f.clear_log();
    f.pf.block(&target("198.18.0.1")).unwrap();
    assert_eq!(
        f.log(),
        [format!("{ADD} 198.18.0.1")],
        "0/1 added: no state kill"
    );
    f.pf.block(&target("fd00:5e5e::1")).unwrap();
    assert_eq!(f.held(), [net("198.18.0.1"), net("fd00:5e5e::1")]);
    assert!(f.pf.take_warnings().is_empty());
}

#[test]
fn block_many_of_10000_is_one_pfctl_run() {
    let mut f = Fake::pfctl();
    f.pf.init().unwrap();
    f.clear_log();
    let targets: Vec<Target> = (0..10_000u32)
        .map(|i| Target::host(IpAddr::V4(Ipv4Addr::from(0xc612_0000 + i))))
        .collect();
    f.pf.block_many(&targets).unwrap();
    let log = f.log();
    assert_eq!(log[0], format!("{ADD} -f -"));
    assert_eq!(
        log.len(),
        1 + STATE_KILLS_MAX,
        "one add, bounded state kills"
    );
    assert_eq!(log[1], "-k 198.18.0.0");
    assert!(log[1..].iter().all(|l| l.starts_with("-k ")));
    let stdin = f.read("stdin.log");
    assert_eq!(stdin.lines().count(), 10_000);
    assert!(stdin.starts_with("198.18.0.0\n198.18.0.1\n"));
    let mut want: Vec<Net> = targets.iter().map(|t| t.net).collect();
    want.sort();
    assert_eq!(f.held(), want);

    f.clear_log();
    f.pf.block_many(&targets[..3]).unwrap();
    assert_eq!(f.log(), [format!("{ADD} -f -")], "0/3 added: no state kill");
    f.clear_log();
    f.pf.block_many(&[]).unwrap();
    assert!(f.log().is_empty(), "nothing to add: nothing run");
}

#[test]
fn unblock_of_a_missing_entry_or_table_is_success() {
    let mut f = Fake::pfctl();
    f.pf.unblock(&net("198.18.0.9")).unwrap();
    assert_eq!(
        f.log(),
        ["-a portsentry -t portsentry -T delete 198.18.0.9"],
        "no table yet: `Table does not exist`, exit 255"
    );
    f.pf.init().unwrap();
    f.pf.block(&target("198.18.0.1")).unwrap();
    f.pf.unblock(&net("198.18.0.9")).unwrap();
    f.pf.unblock(&net("198.18.0.1")).unwrap();
    f.pf.unblock(&net("198.18.0.1")).unwrap();
    assert!(f.held().is_empty());
}

#[test]
fn list_parses_v4_v6_and_networks_and_refuses_other_lines() {
    let mut f = Fake::pfctl();
    assert!(f.pf.list().unwrap().is_empty(), "no table: nothing held");
    f.pf.init().unwrap();
    let nets = [
        "198.18.0.1",
        "198.18.4.0/24",
        "fd00:5e5e::1",
        "fd00:5e5e:1::/48",
    ];
    f.pf.block_many(&nets.map(target)).unwrap();
    let held = f.pf.list().unwrap();
    assert!(held.iter().all(|h| h.remaining.is_none()));
    assert_eq!(f.held(), nets.map(net));

    f.write("show_extra", "   not-an-address\n");
    let e = f.pf.list().unwrap_err();
    let msg = chain(&e);
    assert!(msg.starts_with("pf: list failed: "), "{msg}");
    assert!(msg.contains("\"   not-an-address\""), "{msg}");
    assert!(msg.contains("-a portsentry -t portsentry -T show"), "{msg}");
}

#[test]
fn flush_empties_the_table_and_keeps_the_rule() {
    let mut f = Fake::pfctl();
    f.pf.flush().unwrap();
    f.pf.init().unwrap();
    f.pf.block_many(&["198.18.0.1", "fd00:5e5e::1"].map(target))
        .unwrap();
    f.clear_log();
    f.pf.flush().unwrap();
    assert_eq!(f.log(), ["-a portsentry -t portsentry -T flush"]);
    assert!(f.held().is_empty());
    f.pf.flush().unwrap();
    assert!(!f.pf.vanished().unwrap());
}

#[test]
fn replace_all_is_one_run_and_holds_exactly_the_targets() {
    let mut f = Fake::pfctl();
    f.pf.init().unwrap();
    f.pf.block_many(&["198.18.0.1", "198.18.0.2"].map(target))
        .unwrap();
    f.clear_log();
    f.pf.replace_all(&["198.18.0.2", "198.18.4.0/24", "fd00:5e5e::1"].map(target))
        .unwrap();
    assert_eq!(f.log(), ["-a portsentry -t portsentry -T replace -f -"]);
    assert_eq!(
        f.read("stdin.log"),
        "198.18.0.2\n198.18.4.0/24\nfd00:5e5e::1\n"
    );
    assert_eq!(
        f.held(),
        [net("198.18.0.2"), net("198.18.4.0/24"), net("fd00:5e5e::1")]
    );
    f.pf.replace_all(&[]).unwrap();
    assert!(f.held().is_empty());
}

#[test]
fn vanished_sees_a_missing_rule_anchor_or_table() {
    let mut f = Fake::pfctl();
    f.pf.init().unwrap();
    assert!(!f.pf.vanished().unwrap());
    fs::remove_file(f.file("table")).unwrap(); // pfctl -F Tables
    assert!(f.pf.vanished().unwrap());
    f.pf.init().unwrap();
    assert!(!f.pf.vanished().unwrap());
    f.write("anchor_rules", ""); // pfctl -a portsentry -F rules
    assert!(f.pf.vanished().unwrap());
    fs::remove_file(f.file("anchor_rules")).unwrap(); // pfctl -F all
    f.clear_log();
    assert!(f.pf.vanished().unwrap());
    assert_eq!(f.log(), ["-a portsentry -s rules"]);
}

#[test]
fn other_anchor_and_table_names() {
    let mut f = Fake::new(FAKE_PFCTL, |o| {
        o.anchor = "filters/portsentry".into();
        o.table = "scanners".into();
    });
    f.write("main_rules", "anchor \"portsentry\" all\n");
    assert!(matches!(
        pf_error(&f.pf.init().unwrap_err()),
        PfError::AnchorNotReferenced { .. }
    ));
    f.write("main_rules", "anchor \"filters/portsentry\" all\n");
    f.pf.init().unwrap();
    f.pf.block(&target("198.18.0.1")).unwrap();
    assert_eq!(f.held(), [net("198.18.0.1")]);
    assert!(!f.pf.vanished().unwrap());
    assert!(f
        .log()
        .contains(&"-a filters/portsentry -t scanners -T add 198.18.0.1".to_string()));
    assert_eq!(
        f.read("anchor_rules"),
        "block drop in quick from <scanners> to any\n"
    );
}

#[test]
fn a_failing_state_kill_is_a_warning_not_a_failed_block() {
    let mut f = Fake::pfctl();
    f.pf.init().unwrap();
    f.write("kill_fails", "");
    f.pf.block(&target("198.18.0.1")).unwrap();
    assert_eq!(f.held(), [net("198.18.0.1")]);
    let w = f.pf.take_warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("198.18.0.1 is blocked"), "{}", w[0]);
    assert!(w[0].contains("-k 198.18.0.1"), "{}", w[0]);
    assert!(w[0].contains("Operation not permitted"), "{}", w[0]);
    assert!(f.pf.take_warnings().is_empty());
}

#[test]
fn a_failing_tool_shows_argv_status_and_stderr() {
    let mut f = Fake::new(FAILING_PFCTL, |_| {});
    let path = f.file("pfctl");
    let e = f.pf.block(&target("198.18.0.1")).unwrap_err();
    let argv = format!(
        "{} -a portsentry -t portsentry -T add 198.18.0.1",
        path.display()
    );
    match pf_error(&e) {
        PfError::Exit {
            argv: a,
            status,
            stderr,
        } => {
            assert_eq!(a, &argv);
            assert_eq!(status.code(), Some(1));
            assert_eq!(stderr, "pfctl: /dev/pf: Permission denied");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        chain(&e),
        format!(
            "pf: block of 198.18.0.1 failed: `{argv}` failed (exit status: 1): \
             pfctl: /dev/pf: Permission denied"
        )
    );
    for e in [
        f.pf.init().unwrap_err(),
        f.pf.unblock(&net("198.18.0.1")).unwrap_err(),
        f.pf.flush().unwrap_err(),
        f.pf.list().unwrap_err(),
        f.pf.vanished().unwrap_err(),
        f.pf.replace_all(&[]).unwrap_err(),
        f.pf.block_many(&[target("198.18.0.1")]).unwrap_err(),
    ] {
        assert!(
            matches!(pf_error(&e), PfError::Exit { .. }),
            "{}",
            chain(&e)
        );
    }
}

#[test]
fn a_hanging_tool_is_killed_at_the_time_limit() {
    let mut f = Fake::new(HANGING_PFCTL, |o| o.limit = Duration::from_millis(300));
    let started = Instant::now();
    let e = f.pf.list().unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    match pf_error(&e) {
        PfError::Timeout { argv, limit, .. } => {
            assert!(argv.ends_with("pfctl -a portsentry -t portsentry -T show"));
            assert_eq!(*limit, Duration::from_millis(300));
        }
        other => panic!("{other:?}"),
    }
    assert!(chain(&e).contains("did not finish within 300ms"));
}

#[test]
fn a_missing_tool_is_an_error() {
    let mut f = Fake::new(FAKE_PFCTL, |o| {
        o.pfctl = PathBuf::from("/nonexistent/sbin/pfctl")
    });
    let e = f.pf.init().unwrap_err();
    assert!(matches!(pf_error(&e), PfError::Spawn { .. }));
    let msg = chain(&e);
    assert!(
        msg.starts_with("pf: set-up failed: cannot run `/nonexistent/sbin/pfctl -s rules`"),
        "{msg}"
    );
    assert!(f.pf.block(&target("198.18.0.1")).is_err());
}

#[test]
fn bad_names_are_refused_before_anything_runs() {
    let mut f = Fake::new(FAKE_PFCTL, |o| o.table = "x> to any\npass all #".into());
    let e = f.pf.init().unwrap_err();
    assert!(matches!(
        pf_error(&e),
        PfError::BadName { what: "table", .. }
    ));
    assert!(f.pf.block(&target("198.18.0.1")).is_err());
    assert!(f.log().is_empty());
}
