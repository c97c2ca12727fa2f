//! A fake `npfctl` for the tests: a /bin/sh script in a temp directory.
//!
//! In: the files the test leaves in the directory (`table` holds the table, one entry a
//! line; mode files switch behaviours). Out: answers in npfctl's real formats (quoted in
//! the script), every argv appended to `argv.log`, the last `replace` stdin kept in
//! `replace.in`. Must not: need root, or NetBSD.

use crate::{Npf, Options};
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The script; `@DIR@` becomes the temp directory.
const SCRIPT: &str = r#"#!/bin/sh
# A fake npfctl(8). It answers as NetBSD 10's usr.sbin/npf/npfctl/npf_cmd.c does, or
# (with the file "netbsd9") as NetBSD 9's npfctl.c, which has no `table ... replace`:
#   add, rem, flush:  printf("%s: %s\n", getprogname(), "success")          (stdout)
#   test:             ... "match" (NetBSD 9: "matching entry found")         (stdout)
#   list:             puts(npfctl_print_addrmask(ent->alen, "%a", &ent->addr, ent->mask))
#                     per entry: ADDR, or ADDR/LEN unless the mask is 0 or NPF_NO_NETMASK;
#                     an lpm table keeps a length for hosts too (ADDR/32, ADDR/128)
#   EEXIST:  errx(EXIT_FAILURE, "entry already exists or is conflicting")
#   ENOENT:  errx(EXIT_FAILURE, "not found")  (NetBSD 9: "no matching entry was not found")
#   EINVAL:  errx(EXIT_FAILURE, "invalid address, mask or table ID"), also when no table
#            has the name (the kernel's npfctl_table() returns EINVAL then)
#   replace: errx(EXIT_FAILURE, "table '%s' not found in the active configuration", name)
#            errx(EXIT_FAILURE, "%s:%d: mask used with the table type other than \"lpm\"",
#                 fname, l)   (fname is "stdin" for "-")
#            an npfctl without it: errx(EXIT_FAILURE, "invalid command '%s'", cmd)
# Mode files: hang, broken, netbsd9, ipset (no masks, hosts kept bare), garbage (list
# prints a line that is no address), chatty (add prints something odd and exits 0).
D='@DIR@'
printf '%s\n' "$*" >> "$D/argv.log"
P=npfctl
fail() { printf '%s: %s\n' "$P" "$1" >&2; exit 1; }
ok() { printf '%s: %s\n' "$P" "$1"; exit 0; }
[ -e "$D/hang" ] && exec sleep 30
[ -e "$D/broken" ] && fail "cannot open '/dev/npf': No such file or directory"
T="$D/table"
NOTFOUND="not found"
MATCH=match
if [ -e "$D/netbsd9" ]; then
	NOTFOUND="no matching entry was not found"
	MATCH="matching entry found"
fi
[ "$1" = table ] && [ $# -ge 3 ] || fail "usage: npfctl table \"table-name\" ..."
name=$2
cmd=$3
if [ "$name" != portsentry ] || [ ! -e "$T" ]; then
	[ "$cmd" = replace ] && fail "table '$name' not found in the active configuration"
	fail "invalid address, mask or table ID"
fi
# The entry as the table keeps it; status 1 for a mask in an ipset table.
norm() {
	case $1 in
	*/*) [ -e "$D/ipset" ] && return 1; printf '%s\n' "$1" ;;
	*:*) if [ -e "$D/ipset" ]; then printf '%s\n' "$1"; else printf '%s/128\n' "$1"; fi ;;
	*) if [ -e "$D/ipset" ]; then printf '%s\n' "$1"; else printf '%s/32\n' "$1"; fi ;;
	esac
}
# lpm_lookup() of an entry's first address, as far as this fake goes: an entry that
# starts at the same address.
held_at() { awk -F/ -v a="${1%/*}" '$1 == a { f = 1 } END { exit !f }' "$T"; }
case $cmd in
add)
	e=$(norm "$4") || fail "invalid address, mask or table ID"
	held_at "$e" && fail "entry already exists or is conflicting"
	if [ -e "$D/chatty" ]; then echo "added, probably"; exit 0; fi
	printf '%s\n' "$e" >> "$T"
	ok success ;;
rem)
	e=$(norm "$4") || fail "invalid address, mask or table ID"
	grep -qxF -- "$e" "$T" || fail "$NOTFOUND"
	grep -vxF -- "$e" "$T" > "$T.new"
	mv "$T.new" "$T"
	ok success ;;
list)
	[ -e "$D/garbage" ] && echo "table <portsentry>: 2 entries"
	cat "$T" ;;
flush)
	: > "$T"
	ok success ;;
test)
	e=$(norm "$4") || fail "invalid address, mask or table ID"
	grep -qxF -- "$e" "$T" && ok "$MATCH"
	fail "$NOTFOUND" ;;
replace)
	[ -e "$D/netbsd9" ] && fail "invalid command 'replace'"
	[ "$4" = - ] || fail "open '$4': No such file or directory"
	cat > "$D/replace.in"
	n=0
	while IFS= read -r l; do
		n=$((n + 1))
		case $l in ''|'#'*) continue ;; esac
		norm "$l" || fail "stdin:$n: mask used with the table type other than \"lpm\""
	done < "$D/replace.in" > "$T.new"
	[ -z "$(sort "$T.new" | uniq -d)" ] || fail "npf_table_replace(<$name>): File exists"
	mv "$T.new" "$T" ;;
*)
	fail "invalid command '$cmd'" ;;
esac
"#;

pub(crate) struct Fake {
    dir: tempfile::TempDir,
    pub npfctl: PathBuf,
}

impl Fake {
    /// A fake whose table `portsentry` is loaded and empty.
    pub fn new() -> Fake {
        let f = Fake::without_table();
        f.seed(&[]);
        f
    }

    /// A fake with no table loaded.
    pub fn without_table() -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap().to_string();
        assert!(!d.contains('\''), "temp dir {d} cannot be quoted");
        let src = dir.path().join("npfctl.sh");
        fs::write(&src, SCRIPT.replace("@DIR@", &d)).unwrap();
        let npfctl = dir.path().join("npfctl");
        // Copied by a child process, so no thread of this test binary ever holds the
        // executable open for writing (a fork meanwhile would make exec fail, ETXTBSY).
        let st = Command::new("/bin/sh")
            .args(["-c", "cp \"$1\" \"$2\" && chmod 755 \"$2\"", "sh"])
            .arg(&src)
            .arg(&npfctl)
            .status()
            .unwrap();
        assert!(st.success());
        Fake { dir, npfctl }
    }

    /// Switches a behaviour on (see the script's mode files).
    pub fn mode(&self, name: &str) {
        fs::write(self.dir.path().join(name), "").unwrap();
    }

    /// Loads the table with exactly these lines (as the table keeps them).
    pub fn seed(&self, lines: &[&str]) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        fs::write(self.dir.path().join("table"), text).unwrap();
    }

    /// Unloads the table (`npfctl flush`, a reload without it).
    pub fn drop_table(&self) {
        fs::remove_file(self.dir.path().join("table")).unwrap();
    }

    /// The table's lines.
    pub fn table(&self) -> Vec<String> {
        fs::read_to_string(self.dir.path().join("table"))
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    /// Every call's arguments (without argv[0]), one string each.
    pub fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.dir.path().join("argv.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    pub fn clear_calls(&self) {
        let _ = fs::remove_file(self.dir.path().join("argv.log"));
    }

    /// What the last `replace` read from stdin.
    pub fn replace_input(&self) -> String {
        fs::read_to_string(self.dir.path().join("replace.in")).unwrap()
    }

    pub fn options(&self) -> Options {
        Options {
            npfctl: self.npfctl.clone(),
            ..Options::default()
        }
    }

    pub fn npf(&self) -> Npf {
        Npf::new(self.options())
    }

    pub fn npf_with_limit(&self, limit: Duration) -> Npf {
        Npf::new(Options {
            limit,
            ..self.options()
        })
    }
}
