//! Fake `route(8)` and `netstat(1)` for the [`BsdRoute`] tests: /bin/sh scripts in a
//! directory of their own that log their argv to `log`, keep the routes they were given in
//! `state` (one `FAMILY host|net DEST GATEWAY B|-` line each) and print `netstat -rn -f
//! inet|inet6` as FreeBSD, NetBSD or OpenBSD print it, foreign routes included.
//!
//! Control files in the directory: `route.fail` / `netstat.fail` (exit 1 with a message on
//! stderr), `route.hang` / `netstat.hang` (sleep 30 s first).
//!
//! The scripts find their directory from `$0`, so nothing of a test is written into their
//! text, and they are written by a child `sh` (never through a file descriptor of this
//! process, which a concurrently spawned test child could inherit and so make the exec of
//! the script fail with ETXTBSY).

use crate::BsdOs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// `route -n add|delete [-inet6] -host|-net DEST [GATEWAY [-blackhole]]`.
///
/// What each route(8) says on a failure (their `newroute()`): ESRCH is `not in table` on
/// all three; EEXIST is `route already in table` on FreeBSD (sbin/route/route.c:
/// `case EEXIST: errmsg = "route already in table"`, printed on stdout as
/// `add host ADDR: gateway GW: route already in table`) and strerror `File exists` on
/// NetBSD and OpenBSD, which also warn `route: writing to routing socket: ...` on stderr.
const ROUTE: &str = r#"#!/bin/sh
OS=@OS@
dir=$(dirname "$0")
printf '%s\n' "route $*" >> "$dir/log"
if [ -e "$dir/route.fail" ]; then
    echo "route: writing to routing socket: Operation not permitted" >&2
    exit 1
fi
if [ -e "$dir/route.hang" ]; then
    sleep 30
fi
if [ "$1" != -n ]; then
    echo "fake route: expected -n first" >&2
    exit 64
fi
cmd=$2
shift 2
fam=inet
if [ "$1" = -inet6 ]; then
    fam=inet6
    shift
fi
case $1 in
-host) what=host ;;
-net) what=net ;;
*) echo "fake route: bad destination kind $1" >&2; exit 64 ;;
esac
dest=$2
touch "$dir/state"
if awk -v f="$fam" -v w="$what" -v d="$dest" \
    '$1 == f && $2 == w && $3 == d { found = 1 } END { exit !found }' "$dir/state"; then
    have=1
else
    have=0
fi
case $cmd in
add)
    gw=$3
    if [ "$#" -eq 4 ] && [ "$4" = -blackhole ]; then
        bh=B
    elif [ "$#" -eq 3 ]; then
        bh=-
    else
        echo "fake route: unexpected arguments" >&2
        exit 64
    fi
    if [ "$have" = 1 ]; then
        case $OS in
        freebsd) echo "add $what $dest: gateway $gw: route already in table" ;;
        *)
            echo "route: writing to routing socket: File exists" >&2
            echo "add $what $dest: gateway $gw: File exists"
            ;;
        esac
        exit 1
    fi
    echo "$fam $what $dest $gw $bh" >> "$dir/state"
    echo "add $what $dest: gateway $gw"
    ;;
delete)
    if [ "$#" -ne 2 ]; then
        echo "fake route: unexpected arguments" >&2
        exit 64
    fi
    if [ "$have" = 0 ]; then
        case $OS in
        freebsd) ;;
        *) echo "route: writing to routing socket: No such process" >&2 ;;
        esac
        echo "delete $what $dest: not in table"
        exit 1
    fi
    awk -v f="$fam" -v w="$what" -v d="$dest" '!($1 == f && $2 == w && $3 == d)' \
        "$dir/state" > "$dir/state.new" && mv "$dir/state.new" "$dir/state"
    echo "delete $what $dest"
    ;;
*)
    echo "fake route: unknown command $cmd" >&2
    exit 64
    ;;
esac
"#;

/// `netstat -rn -f inet|inet6`: the frame, then the OS's own part (@TABLE@: `header`,
/// `static_inet`, `static_inet6`, `state_row`), then the static routes and the state.
const NETSTAT: &str = r#"#!/bin/sh
OS=@OS@
dir=$(dirname "$0")
printf '%s\n' "netstat $*" >> "$dir/log"
if [ -e "$dir/netstat.fail" ]; then
    echo "netstat: sysctl: net.route.0.0.dump: Operation not permitted" >&2
    exit 1
fi
if [ -e "$dir/netstat.hang" ]; then
    sleep 30
fi
if [ "$#" -ne 3 ] || [ "$1" != -rn ] || [ "$2" != -f ]; then
    echo "fake netstat: expected -rn -f FAMILY" >&2
    exit 64
fi
case $3 in
inet) fam=inet; title=Internet ;;
inet6) fam=inet6; title=Internet6 ;;
*) echo "netstat: $3: unknown address family" >&2; exit 1 ;;
esac
loop() { [ "$1" = 127.0.0.1 ] || [ "$1" = ::1 ]; }
@TABLE@
echo "Routing tables"
echo
echo "$title:"
header
static_$fam
touch "$dir/state"
while read -r f what dest gw bh; do
    [ "$f" = "$fam" ] || continue
    state_row "$what" "$dest" "$gw" "$bh"
done < "$dir/state"
"#;

/// FreeBSD 14 (`usr.bin/netstat/route.c`, `route_netlink.c`):
///
/// ```text
/// pr_rthdr():  "{T:/%-*.*s} {T:/%-*.*s} {T:/%-*.*s} {T:/%*.*s} {T:/%*s}\n",
///              Destination, Gateway, Flags, Netif, Expire
/// widths:      destination 18 (inet6 with -n: 33), gateway 18 (29), flags 6, netif 8
/// p_path():    p_sockaddr("destination") "%-*s ", p_sockaddr("gateway") "%-*s ",
///              flags "{[:-%d}{:flags/%s}{]:} ", "{t:interface-name/%*.*s}"
/// flag order:  U G H R D M d X S 1 2 3 B b   (so a static blackhole host is "UHSB")
/// ```
///
/// A real FreeBSD 12 `netstat -nr` after `route add -host 192.168.1.129 127.0.0.1
/// -blackhole` (idontwatch.tv, "Null Routing IP Addresses in FreeBSD and OpenBSD"):
///
/// ```text
/// Destination        Gateway            Flags     Netif Expire
/// default            192.168.1.1        UGS         xn0
/// 192.168.1.0/24     link#2             U           xn0
/// 192.168.1.129      localhost          UGHSB       lo0
/// ```
///
/// Recent FreeBSD (14) stores a blackhole route with gateway 127.0.0.1 / ::1, without G and on
/// lo0, whatever gateway it was given (`nhop_set_blackhole()`): ours print `UHSB` / `USB`.
/// A blackhole to another gateway is shown as FreeBSD 12 kept it (`UGHSB`, its gateway).
const FREEBSD: &str = r#"
if [ "$fam" = inet ]; then wd=18; wg=18; else wd=33; wg=29; fi
header() { printf "%-${wd}s %-${wg}s %-6s %8s %6s\n" Destination Gateway Flags Netif Expire; }
row() { printf "%-${wd}s %-${wg}s %-6s %8s\n" "$1" "$2" "$3" "$4"; }
static_inet() {
    while read -r d g fl i; do row "$d" "$g" "$fl" "$i"; done <<'EOF'
default 192.0.2.1 UGS em0
127.0.0.1 link#2 UH lo0
192.0.2.0/24 link#1 U em0
192.0.2.10 link#1 UHS lo0
203.0.113.88 127.0.0.1 UGHRS lo0
EOF
}
static_inet6() {
    while read -r d g fl i; do row "$d" "$g" "$fl" "$i"; done <<'EOF'
::/96 ::1 UGRS lo0
::1 link#2 UHS lo0
::ffff:0.0.0.0/96 ::1 UGRS lo0
fe80::/10 ::1 UGRS lo0
fe80::%em0/64 link#1 U em0
fe80::5a9c:fcff:fe10:1%em0 link#1 UHS lo0
fe80::bad%em0 fe80::1%em0 UGHSB em0
fe80::%lo0/64 link#2 U lo0
fe80::1%lo0 link#2 UHS lo0
ff02::/16 ::1 UGRS lo0
EOF
}
state_row() {
    case "$4$1" in
    Bhost) if loop "$3"; then fl=UHSB; else fl=UGHSB; fi ;;
    Bnet) if loop "$3"; then fl=USB; else fl=UGSB; fi ;;
    -host) fl=UGHS ;;
    *) fl=UGS ;;
    esac
    if loop "$3"; then i=lo0; else i=em0; fi
    row "$2" "$3" "$fl" "$i"
}
"#;

/// NetBSD 7+ (`sbin/route/rtutil.c`, shared by `netstat -r`):
///
/// ```text
/// p_rthdr():   "%-*.*s %-*.*s %-6.6s %6.6s %8.8s %6.6s %s\n",
///              Destination, Gateway, Flags, Refs, Use, Mtu, Interface
/// widths:      WID_DST 18 (inet6 with -n: 39), WID_GW 18 (30)
/// p_rtentry(): p_sockaddr "%-*s ", p_sockaddr "%-*s ", p_flags "%-6.6s ",
///              "%6s %8s " "-" "-", mtu "%6"PRId64 or "%6s" "-", lock 'L' or ' ',
///              " %.16s" interface
/// netname4():  "%u/%d", "%u.%u/%d", "%u.%u.%u/%d" while the mask leaves bytes out
/// flag order:  U G H R B D M d m C L S 1 2 p l b   (a static blackhole host is "UGHBS")
/// ```
const NETBSD: &str = r#"
if [ "$fam" = inet ]; then wd=18; wg=18; else wd=39; wg=30; fi
header() {
    printf "%-${wd}.${wd}s %-${wg}.${wg}s %-6.6s %6.6s %8.8s %6.6s %s\n" \
        Destination Gateway Flags Refs Use Mtu Interface
}
row() { printf "%-${wd}s %-${wg}s %-6.6s %6s %8s %6s%s %s\n" "$1" "$2" "$3" - - "$5" " " "$4"; }
static_inet() {
    while read -r d g fl i m; do row "$d" "$g" "$fl" "$i" "$m"; done <<'EOF'
default 10.0.2.2 UGS wm0 -
10.0.2/24 link#1 UC wm0 -
10.0.2.15 link#1 UHl lo0 -
127/8 127.0.0.1 UGRS lo0 33624
127.0.0.1 lo0 UHl lo0 33624
203.0.113.88 127.0.0.1 UGHRS lo0 33624
EOF
}
static_inet6() {
    while read -r d g fl i m; do row "$d" "$g" "$fl" "$i" "$m"; done <<'EOF'
::/104 ::1 UGRS lo0 33624
::/96 ::1 UGRS lo0 33624
::1 lo0 UHl lo0 33624
::ffff:0.0.0.0/96 ::1 UGRS lo0 33624
fe80::/10 ::1 UGRS lo0 33624
fe80::%wm0/64 link#1 UC wm0 -
fe80::a00:27ff:fe12:3456%wm0 link#1 UHl lo0 -
fe80::bad%wm0 fe80::1%wm0 UGHBS wm0 -
fe80::%lo0/64 fe80::1%lo0 U lo0 -
fe80::1%lo0 lo0 UHl lo0 -
ff01:1::/32 link#1 UC wm0 -
EOF
}
"#;

/// OpenBSD (`usr.bin/netstat/show.c`):
///
/// ```text
/// pr_rthdr():  "%-*.*s %-*.*s %-6.6s %5.5s %8.8s %5.5s  %4.4s %s\n",
///              Destination, Gateway, Flags, Refs, Use, Mtu, Prio, Iface
/// widths:      WID_DST 18 (inet6 with -n: 34), WID_GW 18 (30)
/// p_rtentry(): p_sockaddr "%-*s ", p_sockaddr "%-*s ", p_flags "%-6.6s ",
///              "%5u %8llu " refs use, mtu "%5u " or "%5s " "-", lock 'L' or ' ',
///              "  %2d %.16s" priority, interface
/// netname4():  "%u/%d", "%u.%u/%d", "%u.%u.%u/%d" while the mask leaves bytes out
/// flag order:  U G H R B D M d m C X L S 1 2 3 c J P T ...   (blackhole host: "UGHBS")
/// ```
const OPENBSD: &str = r#"
if [ "$fam" = inet ]; then wd=18; wg=18; else wd=34; wg=30; fi
header() {
    printf "%-${wd}.${wd}s %-${wg}.${wg}s %-6.6s %5.5s %8.8s %5.5s  %4.4s %s\n" \
        Destination Gateway Flags Refs Use Mtu Prio Iface
}
row() {
    printf "%-${wd}s %-${wg}s %-6.6s %5s %8s %5s %s  %2s %s\n" \
        "$1" "$2" "$3" "$5" "$6" "$7" " " "$8" "$4"
}
static_inet() {
    while read -r d g fl i r u m p; do row "$d" "$g" "$fl" "$i" "$r" "$u" "$m" "$p"; done <<'EOF'
default 10.0.2.2 UGS em0 5 35 - 8
224/4 127.0.0.1 URS lo0 0 0 32768 8
10.0.2/24 10.0.2.15 UCn em0 1 0 - 4
10.0.2.2 52:54:00:12:35:02 UHLch em0 1 12 - 3
10.0.2.15 08:00:27:aa:bb:cc UHLl em0 0 30 - 1
10.0.2.255 10.0.2.15 UHb em0 0 0 - 1
127/8 127.0.0.1 UGRS lo0 0 0 32768 8
127.0.0.1 127.0.0.1 UHhl lo0 1 2 32768 1
203.0.113.88 127.0.0.1 UGHRS lo0 0 0 32768 8
EOF
}
static_inet6() {
    while read -r d g fl i r u m p; do row "$d" "$g" "$fl" "$i" "$r" "$u" "$m" "$p"; done <<'EOF'
::/96 ::1 UGRS lo0 0 0 32768 8
::1 ::1 UHhl lo0 10 18 32768 1
::ffff:0.0.0.0/96 ::1 UGRS lo0 0 0 32768 8
2002::/24 ::1 UGRS lo0 0 0 32768 8
fe80::/10 ::1 UGRS lo0 0 0 32768 8
fec0::/10 ::1 UGRS lo0 0 0 32768 8
fe80::1%lo0 fe80::1%lo0 UHl lo0 0 0 32768 1
fe80::%em0/64 fe80::a00:27ff:feaa:bbcc%em0 UCn em0 1 0 - 4
fe80::a00:27ff:feaa:bbcc%em0 08:00:27:aa:bb:cc UHLl em0 0 0 - 1
fe80::bad%em0 fe80::1%em0 UGHBS em0 0 0 - 8
ff01::%lo0/32 fe80::1%lo0 Um lo0 1 1 32768 4
ff02::/16 ::1 UGRS lo0 0 0 32768 8
EOF
}
"#;

/// NetBSD and OpenBSD: flags of a route from the state, and IPv4 networks without their
/// trailing zero bytes.
const NET_OPEN_STATE: &str = r#"
show_dest() {
    if [ "$fam" = inet ] && [ "$1" = net ]; then
        echo "$2" | awk -F/ '{
            split($1, o, "."); b = $2 + 0
            k = (b < 9) ? 1 : (b < 17) ? 2 : (b < 25) ? 3 : 4
            s = o[1]; for (i = 2; i <= k; i++) s = s "." o[i]
            print s "/" $2 }'
    else
        echo "$2"
    fi
}
state_row() {
    case "$4$1" in
    Bhost) fl=UGHBS ;;
    Bnet) fl=UGBS ;;
    -host) fl=UGHS ;;
    *) fl=UGS ;;
    esac
    d=$(show_dest "$1" "$2")
    if loop "$3"; then
        state_row_lo "$d" "$3" "$fl"
    else
        state_row_out "$d" "$3" "$fl"
    fi
}
"#;

const NETBSD_STATE: &str = r#"
state_row_lo() { row "$1" "$2" "$3" lo0 33624; }
state_row_out() { row "$1" "$2" "$3" wm0 -; }
"#;

const OPENBSD_STATE: &str = r#"
state_row_lo() { row "$1" "$2" "$3" lo0 0 0 32768 8; }
state_row_out() { row "$1" "$2" "$3" em0 0 0 - 8; }
"#;

fn os_name(os: BsdOs) -> &'static str {
    match os {
        BsdOs::FreeBsd => "freebsd",
        BsdOs::NetBsd => "netbsd",
        BsdOs::OpenBsd => "openbsd",
    }
}

/// The fake `route` for `os`.
pub fn route_script(os: BsdOs) -> String {
    ROUTE.replace("@OS@", os_name(os))
}

/// The fake `netstat` for `os`.
pub fn netstat_script(os: BsdOs) -> String {
    let table = match os {
        BsdOs::FreeBsd => FREEBSD.to_string(),
        BsdOs::NetBsd => format!("{NETBSD}{NET_OPEN_STATE}{NETBSD_STATE}"),
        BsdOs::OpenBsd => format!("{OPENBSD}{NET_OPEN_STATE}{OPENBSD_STATE}"),
    };
    NETSTAT
        .replace("@OS@", os_name(os))
        .replace("@TABLE@", &table)
}

/// Foreign routes every test starts with (state lines): none of them is ours.
pub const FOREIGN_STATE: &str = "\
inet host 203.0.113.66 192.0.2.254 B
inet host 203.0.113.77 192.0.2.1 -
inet net 203.0.113.128/25 192.0.2.254 B
inet net 198.51.100.0/24 127.0.0.1 -
inet6 host 2001:db8:77::1 2001:db8::1 B
inet6 host 2001:db8:77::2 ::1 -
";

/// A directory with a fake `route` and `netstat` in it, removed on drop.
pub struct Tools {
    pub dir: PathBuf,
}

impl Tools {
    pub fn new(os: BsdOs) -> Tools {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "portsentry-route-test-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            os_name(os)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        install(&dir.join("route"), &route_script(os));
        install(&dir.join("netstat"), &netstat_script(os));
        std::fs::write(dir.join("state"), FOREIGN_STATE).unwrap();
        Tools { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The argvs the tools were run with since the last call (`argv[0]` as the bare
    /// name).
    pub fn take_log(&self) -> Vec<String> {
        let path = self.path("log");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let _ = std::fs::remove_file(&path);
        text.lines().map(str::to_string).collect()
    }

    /// The route state lines.
    pub fn state(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("state"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Creates (or removes) a control file.
    pub fn set(&self, name: &str, on: bool) {
        if on {
            std::fs::write(self.path(name), "").unwrap();
        } else {
            let _ = std::fs::remove_file(self.path(name));
        }
    }

    /// What the fake netstat prints for `family` (`inet`, `inet6`).
    pub fn netstat(&self, family: &str) -> String {
        let out = Command::new(self.path("netstat"))
            .args(["-rn", "-f", family])
            .output()
            .unwrap();
        assert!(out.status.success());
        let _ = self.take_log();
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Tools {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes an executable script by way of a child shell (see the module header).
fn install(path: &Path, text: &str) {
    let mut child = Command::new("/bin/sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}
