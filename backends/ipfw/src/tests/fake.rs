//! The backend against fake `ipfw` programs: /bin/sh scripts in a temp directory that log
//! their argv, keep the table and the rules in files, and answer in the real tool's
//! formats and exit statuses (quoted from FreeBSD's sbin/ipfw in the script). No root.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use portsentry_blocker::{BlockError, Blocker, Net, Reason, Step, Target};

use crate::argv::*;
use crate::{Ipfw, IpfwError, Options};

/// A stand-in for /sbin/ipfw. State next to the script: `log` (one line of arguments per
/// run), `table.NAME` (one `KEY VALUE` line per entry; the file exists = the table
/// exists), `table.NAME.type` (another type than addr), `rules` (`NNNNN body` lines),
/// `old-header` (print the FreeBSD 11/12 header on `table NAME list`).
const FAKE_IPFW: &str = r#"#!/bin/sh
# Formats, from FreeBSD sbin/ipfw/tables.c and sbin/ipfw/ipfw2.c:
#  table NAME info    table_show_info:
#                       printf("--- table(%s), set(%u) ---\n", ...)
#                       printf(" kindex: %d, type: %s\n", ...)
#                       printf(" references: %u, valtype: %s\n", ...)
#                       printf(" algorithm: %s\n", ...)
#                       printf(" items: %u, size: %u\n", ...)
#                     no table: err(EX_OSERR, "failed to request table info") with ESRCH
#                       -> "ipfw: failed to request table info: No such process", exit 71
#  table NAME create  table exists: err(EX_OSERR, "Table creation failed") with EEXIST
#                       -> "ipfw: Table creation failed: File exists", exit 71
#  table NAME list    FreeBSD 11/12 print the header "--- table(%s), set(%u) ---" first,
#                     13+ only for "table all list"; then table_show_entry for an addr
#                     table: printf("%s/%u %s\n", addr, masklen, value); no table: as info
#  [-q] table NAME add KEY VALUE ...   (values are mandatory with more than one key)
#                     without -q an existing key: per-key report on stdout ("exists: ..."),
#                     then errx(EX_OSERR, "%s: %s", "Adding record failed",
#                     "record already exists"), exit 71; with -q it is an update, exit 0.
#                     No table: created on the fly ("DEPRECATED ... auto-created" unless -q)
#  [-q] table NAME delete KEY ...
#                     no table: errx(EX_DATAERR, "Table %s does not exist"), exit 65
#                     an absent key without -q: "Deleting record failed: record not found",
#                     exit 71; with -q exit 0
#  [-q] table NAME flush    no table: a warning only, exit 0
#  [-q] table NAME destroy  no table: a warning only (none with -q), exit 0; a table a
#                     rule references: "failed to destroy table NAME: Device busy", exit 71
#  list NUM           show_static_rule: bprintf(bp, "%05u ", rule->rulenum), the body;
#                     none: warnx("rule %u does not exist"), exit EX_UNAVAILABLE (69)
#  [-q] add NUM BODY  prints the rule as "list" does unless -q
#  [-q] delete NUM    (the text for a missing number is not checked by the backend)
d=$(dirname "$0")
printf '%s\n' "$*" >> "$d/log"
q=0
if [ "$1" = "-q" ]; then q=1; shift; fi
rules="$d/rules"
touch "$rules"
case "$1" in
table)
    name=$2; cmd=$3
    shift 3
    t="$d/table.$name"
    case "$cmd" in
    info)
        if [ ! -f "$t" ]; then
            echo "ipfw: failed to request table info: No such process" >&2
            exit 71
        fi
        type=addr
        if [ -f "$t.type" ]; then type=$(cat "$t.type"); fi
        echo "--- table($name), set(0) ---"
        echo " kindex: 1, type: $type"
        echo " references: $(grep -cF "table($name)" "$rules"), valtype: legacy"
        echo " algorithm: addr:radix"
        echo " items: $(wc -l < "$t"), size: 296"
        ;;
    create)
        if [ -f "$t" ]; then
            echo "ipfw: Table creation failed: File exists" >&2
            exit 71
        fi
        : > "$t"
        ;;
    add)
        if [ ! -f "$t" ]; then
            [ $q = 1 ] || echo "ipfw: DEPRECATED: inserting data into non-existent table $name. (auto-created)" >&2
            : > "$t"
        fi
        while [ $# -gt 0 ]; do
            printf '%s %s\n' "$1" "${2:-0}"
            shift
            if [ $# -gt 0 ]; then shift; fi
        done > "$d/new"
        dup=$(awk 'FILENAME == ARGV[1] { k[$1] = 1; next } ($1 in k) { print $1; exit }' "$t" "$d/new")
        awk '{ v[$1] = $2 } END { for (k in v) print k, v[k] }' "$t" "$d/new" | sort > "$t.tmp"
        mv "$t.tmp" "$t"
        if [ $q = 0 ] && [ -n "$dup" ]; then
            echo "exists: $dup 0"
            echo "ipfw: Adding record failed: record already exists" >&2
            exit 71
        fi
        ;;
    delete)
        if [ ! -f "$t" ]; then
            echo "ipfw: Table $name does not exist" >&2
            exit 65
        fi
        printf '%s\n' "$@" > "$d/keys"
        absent=$(awk 'FILENAME == ARGV[1] { k[$1] = 1; next } !($1 in k) { print $1; exit }' "$t" "$d/keys")
        awk 'FILENAME == ARGV[1] { k[$1] = 1; next } !($1 in k)' "$d/keys" "$t" > "$t.tmp"
        mv "$t.tmp" "$t"
        if [ $q = 0 ] && [ -n "$absent" ]; then
            echo "notfound: $absent 0"
            echo "ipfw: Deleting record failed: record not found" >&2
            exit 71
        fi
        ;;
    list)
        if [ ! -f "$t" ]; then
            echo "ipfw: failed to request table info: No such process" >&2
            exit 71
        fi
        if [ -f "$d/old-header" ]; then echo "--- table($name), set(0) ---"; fi
        cat "$t"
        ;;
    flush)
        if [ -f "$t" ]; then
            : > "$t"
        elif [ $q = 0 ]; then
            echo "ipfw: failed to flush table $name info: No such process" >&2
        fi
        ;;
    destroy)
        if [ ! -f "$t" ]; then
            [ $q = 1 ] || echo "ipfw: failed to destroy table $name: No such process" >&2
        elif grep -qF "table($name)" "$rules"; then
            echo "ipfw: failed to destroy table $name: Device busy" >&2
            exit 71
        else
            rm -f "$t" "$t.type"
        fi
        ;;
    *)
        echo "ipfw: table command $cmd is not in this fake" >&2
        exit 64
        ;;
    esac
    ;;
list)
    n=$(printf '%05d' "$2")
    if ! grep "^$n " "$rules"; then
        echo "ipfw: rule $2 does not exist" >&2
        exit 69
    fi
    ;;
add)
    n=$(printf '%05d' "$2")
    shift 2
    echo "$n $*" >> "$rules"
    sort -o "$rules" "$rules"
    [ $q = 1 ] || echo "$n $*"
    ;;
delete)
    n=$(printf '%05d' "$2")
    if ! grep -q "^$n " "$rules"; then
        echo "ipfw: rule $2 not found" >&2
        exit 69
    fi
    grep -v "^$n " "$rules" > "$rules.tmp"
    mv "$rules.tmp" "$rules"
    ;;
*)
    echo "ipfw: command $1 is not in this fake" >&2
    exit 64
    ;;
esac
exit 0
"#;

/// Writes an executable script. `cp` writes the final file in its own process: a file
/// this (multithreaded) test process had open for writing could be inherited by a child
/// another test forks at that moment, and exec'ing it would then fail with ETXTBSY.
fn install(dir: &Path, name: &str, text: &str) -> PathBuf {
    let src = dir.join(format!("{name}.src"));
    let path = dir.join(name);
    fs::write(&src, text).unwrap();
    let st = std::process::Command::new("cp")
        .arg(&src)
        .arg(&path)
        .status()
        .unwrap();
    assert!(st.success());
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

struct Fake {
    dir: tempfile::TempDir,
    b: Ipfw,
}

impl Fake {
    fn with_script(text: &str, limit: Duration) -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let ipfw = install(dir.path(), "ipfw", text);
        let b = Ipfw::new(Options {
            ipfw,
            limit,
            ..Options::default()
        });
        Fake { dir, b }
    }

    fn new() -> Fake {
        Fake::with_script(FAKE_IPFW, Duration::from_secs(10))
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// One line of arguments per run, oldest first.
    fn log(&self) -> Vec<String> {
        fs::read_to_string(self.file("log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn clear_log(&self) {
        let _ = fs::remove_file(self.file("log"));
    }

    fn table(&self) -> Option<String> {
        fs::read_to_string(self.file("table.portsentry")).ok()
    }

    fn set_table(&self, text: &str) {
        fs::write(self.file("table.portsentry"), text).unwrap();
    }

    fn rules(&self) -> String {
        fs::read_to_string(self.file("rules")).unwrap_or_default()
    }

    fn set_rules(&self, text: &str) {
        fs::write(self.file("rules"), text).unwrap();
    }

    fn nets(&mut self) -> Vec<Net> {
        let mut v: Vec<Net> = self.b.list().unwrap().into_iter().map(|h| h.net).collect();
        v.sort();
        v
    }
}

/// The logged line of an argv (its arguments after `ipfw`).
fn line(argv: Vec<String>) -> String {
    argv[1..].join(" ")
}

fn net(s: &str) -> Net {
    s.parse().unwrap()
}

fn sorted(v: &[&str]) -> Vec<Net> {
    let mut n: Vec<Net> = v.iter().map(|s| net(s)).collect();
    n.sort();
    n
}

fn target(s: &str) -> Target {
    Target {
        net: net(s),
        timeout: None,
        reason: Reason {
            protocol: "TCP".into(),
            port: 143,
            scan: "Connect".into(),
        },
    }
}

fn ipfw_error(e: &BlockError) -> &IpfwError {
    e.source.downcast_ref::<IpfwError>().unwrap()
}

const OUR_RULE: &str = "00045 deny ip from table(portsentry) to any\n";

#[test]
fn init_creates_the_table_and_the_rule_once() {
    let mut f = Fake::new();
    f.b.init().unwrap();
    assert_eq!(
        f.log(),
        [
            line(argv_rule_list(45)),
            line(argv_table_info("portsentry")),
            line(argv_table_create("portsentry")),
            line(argv_rule_add(45, "portsentry")),
        ]
    );
    assert_eq!(f.rules(), OUR_RULE);
    assert_eq!(f.table().as_deref(), Some(""));
    assert!(!f.b.vanished().unwrap());

    f.clear_log();
    f.b.init().unwrap();
    assert_eq!(
        f.log(),
        [
            line(argv_rule_list(45)),
            line(argv_table_info("portsentry"))
        ],
        "nothing is made twice"
    );
    assert_eq!(f.rules(), OUR_RULE);
}

#[test]
fn init_keeps_an_existing_table_and_its_entries() {
    let mut f = Fake::new();
    f.set_table("198.18.0.1/32 0\n");
    f.b.init().unwrap();
    assert_eq!(
        f.log(),
        [
            line(argv_rule_list(45)),
            line(argv_table_info("portsentry")),
            line(argv_rule_add(45, "portsentry")),
        ]
    );
    assert_eq!(f.nets(), sorted(&["198.18.0.1"]));
    assert_eq!(f.rules(), OUR_RULE);
}

#[test]
fn init_leaves_a_foreign_rule_alone_and_names_it() {
    let mut f = Fake::new();
    let foreign = "00045 allow ip from any to any via lo0\n";
    f.set_rules(foreign);
    let e = f.b.init().unwrap_err();
    assert_eq!(e.step, Step::Init);
    assert!(matches!(
        ipfw_error(&e),
        IpfwError::ForeignRule { rule: 45, .. }
    ));
    let text = e.source.to_string();
    assert!(text.contains("rule 45"), "{text}");
    assert!(text.contains("allow ip from any to any via lo0"), "{text}");
    assert_eq!(f.log(), [line(argv_rule_list(45))], "nothing else ran");
    assert_eq!(f.rules(), foreign);
    assert_eq!(f.table(), None, "no table made either");
    assert!(f.b.vanished().unwrap());
}

#[test]
fn init_accepts_our_rule_sharing_its_number() {
    let mut f = Fake::new();
    let shared = format!("00045 allow tcp from any to me 22 setup\n{OUR_RULE}");
    f.set_rules(&shared);
    f.b.init().unwrap();
    assert!(!f.log().iter().any(|l| l.starts_with("-q add")));
    assert_eq!(f.rules(), shared);
    assert!(!f.b.vanished().unwrap());
}

#[test]
fn init_leaves_a_table_of_another_type_alone() {
    let mut f = Fake::new();
    f.set_table("em0 0\n");
    fs::write(f.file("table.portsentry.type"), "iface").unwrap();
    let e = f.b.init().unwrap_err();
    let text = e.source.to_string();
    assert!(
        matches!(ipfw_error(&e), IpfwError::WrongTableType { found, .. } if found == "iface"),
        "{text}"
    );
    assert_eq!(
        f.log(),
        [
            line(argv_rule_list(45)),
            line(argv_table_info("portsentry"))
        ]
    );
    assert_eq!(f.rules(), "", "no rule added");
    assert!(f.b.vanished().unwrap());
}

#[test]
fn block_twice_is_success() {
    let mut f = Fake::new();
    f.b.init().unwrap();
    f.clear_log();
    for s in ["198.18.0.1", "198.18.0.1", "fd00:5e5e::1", "198.18.4.0/24"] {
        f.b.block(&target(s)).unwrap();
    }
    assert_eq!(
        f.nets(),
        sorted(&["198.18.0.1", "fd00:5e5e::1", "198.18.4.0/24"])
    );
    let add = line(argv_table_add("portsentry", &[net("198.18.0.1")]));
    assert_eq!(add, "-q table portsentry add 198.18.0.1/32 0");
    assert_eq!(f.log()[..2], [add.clone(), add]);
}

#[test]
fn without_q_the_fake_refuses_an_existing_key_like_ipfw() {
    // Guards the fake itself: -q is what makes a repeated add succeed.
    let f = Fake::new();
    f.set_table("198.18.0.1/32 0\n");
    let out = std::process::Command::new(f.file("ipfw"))
        .args(["table", "portsentry", "add", "198.18.0.1/32", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(71));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "ipfw: Adding record failed: record already exists\n"
    );
}

fn ten_thousand() -> Vec<Target> {
    (0..10_000u32)
        .map(|i| {
            let ip: std::net::IpAddr = if i % 2 == 0 {
                std::net::Ipv4Addr::from(0xc612_0000 + i).into()
            } else {
                std::net::Ipv6Addr::from(0xfd00_5e5e_u128 << 96 | u128::from(i)).into()
            };
            Target::host(ip)
        })
        .collect()
}

#[test]
fn block_many_ten_thousand_in_chunks() {
    let mut f = Fake::new();
    f.b.init().unwrap();
    f.clear_log();
    let targets = ten_thousand();
    f.b.block_many(&targets).unwrap();
    let log = f.log();
    assert_eq!(log.len(), 10_000 / CHUNK, "one run per {CHUNK} addresses");
    for l in &log {
        assert!(l.starts_with("-q table portsentry add "), "{l}");
        assert_eq!(l.split(' ').count(), 4 + 2 * CHUNK);
    }
    let mut want: Vec<Net> = targets.iter().map(|t| t.net).collect();
    want.sort();
    assert_eq!(f.nets(), want);

    // Again: every key exists already, still success.
    f.b.block_many(&targets).unwrap();
    assert_eq!(f.nets().len(), 10_000);
    f.clear_log();
    f.b.block_many(&[]).unwrap();
    assert!(f.log().is_empty(), "no run for no targets");
}

#[test]
fn unblock_of_a_missing_entry_or_table_is_success() {
    let mut f = Fake::new();
    f.b.unblock(&net("198.18.0.1")).unwrap();
    assert_eq!(
        f.log(),
        ["-q table portsentry delete 198.18.0.1/32"],
        "no table: ipfw says \"Table portsentry does not exist\", exit 65"
    );
    f.b.init().unwrap();
    f.b.block(&target("198.18.0.1")).unwrap();
    f.b.unblock(&net("198.18.0.2")).unwrap();
    assert_eq!(f.nets(), sorted(&["198.18.0.1"]));
    f.b.unblock(&net("198.18.0.1")).unwrap();
    f.b.unblock(&net("198.18.0.1")).unwrap();
    assert!(f.nets().is_empty());
}

const LISTED: &str = "198.18.0.1/32 0
198.18.4.0/24 0
10.0.0.0/8 0
fd00:5e5e::1/128 0
fd00:5e5e:1::/48 0
";

#[test]
fn list_reads_v4_v6_and_networks_in_both_formats() {
    let mut f = Fake::new();
    let want = sorted(&[
        "198.18.0.1",
        "198.18.4.0/24",
        "10.0.0.0/8",
        "fd00:5e5e::1",
        "fd00:5e5e:1::/48",
    ]);
    f.set_table(LISTED);
    assert_eq!(f.nets(), want, "FreeBSD 13+: no header");
    fs::write(f.file("old-header"), "").unwrap();
    assert_eq!(f.nets(), want, "FreeBSD 11/12: a header first");
    let held = f.b.list().unwrap();
    assert!(held.iter().all(|h| h.remaining.is_none()));
}

#[test]
fn list_of_a_missing_table_is_empty() {
    let mut f = Fake::new();
    assert!(f.b.list().unwrap().is_empty());
}

#[test]
fn list_names_a_line_it_does_not_understand() {
    let mut f = Fake::new();
    f.set_table("198.18.0.1/32 0\nsomething else entirely\n");
    let e = f.b.list().unwrap_err();
    assert_eq!(e.step, Step::List);
    let text = e.source.to_string();
    assert!(text.contains("\"something else entirely\""), "{text}");
    assert!(text.contains("/ipfw table portsentry list`"), "{text}");
}

#[test]
fn flush_removes_our_rule_and_table_and_init_restores_them() {
    let mut f = Fake::new();
    f.b.init().unwrap();
    f.b.block_many(&[target("198.18.0.1"), target("fd00:5e5e::1")])
        .unwrap();
    f.clear_log();
    f.b.flush().unwrap();
    assert_eq!(
        f.log(),
        [
            line(argv_rule_list(45)),
            line(argv_rule_delete(45)),
            line(argv_table_destroy("portsentry")),
        ]
    );
    assert_eq!(f.rules(), "");
    assert_eq!(f.table(), None);
    assert!(f.b.vanished().unwrap());
    assert!(f.b.list().unwrap().is_empty());
    f.b.flush().unwrap();

    f.b.init().unwrap();
    f.b.replace_all(&[target("198.18.0.1")]).unwrap();
    assert!(!f.b.vanished().unwrap());
    assert_eq!(f.nets(), sorted(&["198.18.0.1"]));
}

#[test]
fn flush_keeps_a_rule_number_shared_with_others_and_empties_the_table() {
    let mut f = Fake::new();
    let shared = format!("00045 count ip from any to any\n{OUR_RULE}");
    f.set_rules(&shared);
    f.b.init().unwrap();
    f.b.block(&target("198.18.0.1")).unwrap();
    f.clear_log();
    f.b.flush().unwrap();
    assert_eq!(
        f.log(),
        [
            line(argv_rule_list(45)),
            line(argv_table_destroy("portsentry")),
            line(argv_table_flush("portsentry")),
        ],
        "`ipfw delete 45` would delete the other rule too; the table is still referenced"
    );
    assert_eq!(f.rules(), shared);
    assert_eq!(f.table().as_deref(), Some(""));
}

#[test]
fn replace_all_adds_first_then_deletes() {
    let mut f = Fake::new();
    f.b.init().unwrap();
    f.b.block_many(&[
        target("198.18.0.1"),
        target("198.18.0.2"),
        target("fd00:5e5e::3"),
    ])
    .unwrap();
    f.clear_log();
    let want = [
        target("198.18.0.2"),
        target("fd00:5e5e::3"),
        target("198.18.4.0/24"),
        target("198.18.4.0/24"),
    ];
    f.b.replace_all(&want).unwrap();
    assert_eq!(
        f.log(),
        [
            line(argv_table_list("portsentry")),
            line(argv_table_add("portsentry", &[net("198.18.4.0/24")])),
            line(argv_table_delete("portsentry", &[net("198.18.0.1")])),
        ]
    );
    assert_eq!(
        f.nets(),
        sorted(&["198.18.0.2", "fd00:5e5e::3", "198.18.4.0/24"])
    );

    f.clear_log();
    f.b.replace_all(&want).unwrap();
    assert_eq!(
        f.log(),
        [line(argv_table_list("portsentry"))],
        "nothing to change"
    );
    f.b.replace_all(&[]).unwrap();
    assert!(f.nets().is_empty());
}

#[test]
fn vanished_when_the_rule_or_the_table_is_gone() {
    let mut f = Fake::new();
    assert!(f.b.vanished().unwrap(), "nothing made yet");
    f.b.init().unwrap();
    assert!(!f.b.vanished().unwrap());
    // `ipfw -f flush`: rules gone, tables stay.
    f.set_rules("");
    assert!(f.b.vanished().unwrap());
    f.b.init().unwrap();
    assert!(!f.b.vanished().unwrap());
    fs::remove_file(f.file("table.portsentry")).unwrap();
    assert!(f.b.vanished().unwrap());
}

#[test]
fn a_failing_tool_is_an_error_with_argv_status_and_stderr() {
    let mut f = Fake::with_script(
        "#!/bin/sh\necho 'ipfw: socket: Protocol not available' >&2\nexit 1\n",
        Duration::from_secs(10),
    );
    let e = f.b.init().unwrap_err();
    let text = e.source.to_string();
    assert!(matches!(ipfw_error(&e), IpfwError::Exit { .. }), "{text}");
    assert!(text.contains("/ipfw list 45`"), "{text}");
    assert!(text.contains("exit status: 1"), "{text}");
    assert!(
        text.contains("ipfw: socket: Protocol not available"),
        "{text}"
    );

    let e = f.b.block(&target("198.18.0.1")).unwrap_err();
    assert_eq!(e.to_string(), "ipfw: block of 198.18.0.1 failed");
    assert!(e.source.to_string().contains("add 198.18.0.1/32 0`"));
    assert!(f.b.unblock(&net("198.18.0.1")).is_err());
    assert!(f.b.list().is_err());
    assert!(f.b.flush().is_err());
    assert!(f.b.vanished().is_err());
    assert!(f.b.replace_all(&[target("198.18.0.1")]).is_err());

    // A 1000-key argv is shown shortened.
    let targets: Vec<Target> = ten_thousand().into_iter().take(2000).collect();
    let e = f.b.block_many(&targets).unwrap_err();
    let text = e.source.to_string();
    assert!(text.contains("(1992 more arguments)`"), "{text}");
    assert!(text.len() < 1000, "{text}");
}

#[test]
fn a_tool_printing_nonsense_is_an_error() {
    let mut f = Fake::with_script(
        "#!/bin/sh\necho 'Hello from something else'\n",
        Duration::from_secs(10),
    );
    let e = f.b.init().unwrap_err();
    assert!(
        matches!(ipfw_error(&e), IpfwError::Unparseable { line, .. } if line == "Hello from something else"),
        "{}",
        e.source
    );
    let e = f.b.vanished().unwrap_err();
    assert!(matches!(ipfw_error(&e), IpfwError::Unparseable { .. }));
    let e = f.b.list().unwrap_err();
    assert!(matches!(ipfw_error(&e), IpfwError::Unparseable { .. }));
}

#[test]
fn a_hanging_tool_is_killed_at_the_limit() {
    let mut f = Fake::with_script("#!/bin/sh\nexec sleep 30\n", Duration::from_millis(300));
    let start = Instant::now();
    let e = f.b.block(&target("198.18.0.1")).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let text = e.source.to_string();
    assert!(
        matches!(ipfw_error(&e), IpfwError::TimedOut { .. }),
        "{text}"
    );
    assert!(text.contains("did not finish within 300ms"), "{text}");
    assert!(
        text.contains("-q table portsentry add 198.18.0.1/32 0`"),
        "{text}"
    );
}

#[test]
fn a_missing_tool_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Ipfw::new(Options {
        ipfw: dir.path().join("no-such-ipfw"),
        ..Options::default()
    });
    let e = b.block(&target("198.18.0.1")).unwrap_err();
    let text = e.source.to_string();
    assert!(matches!(ipfw_error(&e), IpfwError::Spawn { .. }), "{text}");
    assert!(
        text.contains("no-such-ipfw -q table portsentry add"),
        "{text}"
    );
    assert!(b.init().is_err());
    assert!(b.list().is_err());
}

#[test]
fn an_ipv4_compatible_address_is_refused_and_the_rest_blocked() {
    let mut f = Fake::new();
    f.b.init().unwrap();
    f.clear_log();
    let e =
        f.b.block_many(&[target("::198.18.0.1"), target("198.18.0.5")])
            .unwrap_err();
    assert_eq!(e.net, Some(net("::198.18.0.1")));
    assert!(matches!(ipfw_error(&e), IpfwError::Unrepresentable { .. }));
    assert_eq!(f.log(), ["-q table portsentry add 198.18.0.5/32 0"]);
    assert_eq!(f.nets(), sorted(&["198.18.0.5"]));
    // It can never be held, so lifting it is success without a run.
    f.clear_log();
    f.b.unblock(&net("::198.18.0.1")).unwrap();
    assert!(f.log().is_empty());
    // `::1` and `::` are not IPv4-compatible in ipfw's sense.
    f.b.block(&target("::1")).unwrap();
}

#[test]
fn bad_options_run_nothing() {
    for (table, rule) in [
        ("all", 45),
        ("port sentry", 45),
        ("", 45),
        ("portsentry", 0),
        ("portsentry", 65535),
    ] {
        let f = Fake::new();
        let mut b = Ipfw::new(Options {
            table: table.to_string(),
            rule,
            ..f.b.options().clone()
        });
        let e = b.init().unwrap_err();
        assert!(
            matches!(
                ipfw_error(&e),
                IpfwError::BadTable { .. } | IpfwError::BadRule { .. }
            ),
            "{}",
            e.source
        );
        assert!(b.block(&target("198.18.0.1")).is_err());
        assert!(b.unblock(&net("198.18.0.1")).is_err());
        assert!(b.list().is_err());
        assert!(b.flush().is_err());
        assert!(b.vanished().is_err());
        assert!(f.log().is_empty(), "{table} {rule}");
    }
}

#[test]
fn other_table_name_and_rule_number() {
    let f = Fake::new();
    let mut b = Ipfw::new(Options {
        table: "scanners".to_string(),
        rule: 1234,
        ..f.b.options().clone()
    });
    b.init().unwrap();
    b.block(&target("198.18.0.1")).unwrap();
    assert_eq!(f.rules(), "01234 deny ip from table(scanners) to any\n");
    assert_eq!(
        fs::read_to_string(f.file("table.scanners")).unwrap(),
        "198.18.0.1/32 0\n"
    );
    assert!(!b.vanished().unwrap());
}
