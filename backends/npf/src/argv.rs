//! The argvs for `npfctl(8)` and the table file `replace` reads: pure, tested everywhere.
//!
//! In: the npfctl path, our table's name, networks. Out: argv vectors (`argv[0]` is the
//! npfctl path, exec'd as it is, never through a shell) and the bytes fed to
//! `npfctl table NAME replace -`. Must not: run anything, or accept rule text.
//!
//! Addresses are written as [`Net`]'s `Display` gives them: a host as the bare address
//! (npfctl then sends "no mask", which both `ipset` and `lpm` tables take; `ADDR/32`
//! would carry a mask an `ipset` table refuses), a network as `ADDR/LEN` with the host
//! bits cleared.

use portsentry_blocker::Net;
use std::path::Path;

/// The npfctl NetBSD installs.
pub const NPFCTL_PROGRAM: &str = "/sbin/npfctl";

/// The address `table NAME test` is asked about by [`argv_test`]: any answer but "no such
/// table" means the table is loaded.
pub const PROBE_ADDR: &str = "0.0.0.0";

fn table_argv(npfctl: &Path, table: &str, rest: &[&str]) -> Vec<String> {
    let mut v = Vec::with_capacity(3 + rest.len());
    v.push(npfctl.to_string_lossy().into_owned());
    v.push("table".to_string());
    v.push(table.to_string());
    v.extend(rest.iter().map(|s| s.to_string()));
    v
}

/// `npfctl table portsentry add 198.18.0.1` (networks: `add 198.18.0.0/24`)
pub fn argv_add(npfctl: &Path, table: &str, net: &Net) -> Vec<String> {
    table_argv(npfctl, table, &["add", &net.to_string()])
}

/// `npfctl table portsentry rem 198.18.0.1` (networks: `rem 198.18.0.0/24`)
pub fn argv_rem(npfctl: &Path, table: &str, net: &Net) -> Vec<String> {
    table_argv(npfctl, table, &["rem", &net.to_string()])
}

/// `npfctl table portsentry list`
pub fn argv_list(npfctl: &Path, table: &str) -> Vec<String> {
    table_argv(npfctl, table, &["list"])
}

/// `npfctl table portsentry flush`
pub fn argv_flush(npfctl: &Path, table: &str) -> Vec<String> {
    table_argv(npfctl, table, &["flush"])
}

/// `npfctl table portsentry test 0.0.0.0`
pub fn argv_test(npfctl: &Path, table: &str) -> Vec<String> {
    table_argv(npfctl, table, &["test", PROBE_ADDR])
}

/// `npfctl table portsentry replace - < FILE` (FILE as [`table_file`] writes it; the
/// table keeps its name and type, NetBSD 10's npfctl reads `-` as stdin)
pub fn argv_replace(npfctl: &Path, table: &str) -> Vec<String> {
    table_argv(npfctl, table, &["replace", "-"])
}

/// The table file `replace` loads: one network per line (a host bare, a network as
/// `ADDR/LEN`), each line ending in a newline, nothing else (npfctl reads such a file
/// with `getline`, skipping empty and `#` lines). Empty for no networks.
pub fn table_file(nets: &[Net]) -> String {
    let mut s = String::with_capacity(nets.len() * 16);
    for n in nets {
        s.push_str(&n.to_string());
        s.push('\n');
    }
    s
}
