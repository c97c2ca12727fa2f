//! The argvs for FreeBSD `ipfw(8)`: pure, so tested on every platform.
//!
//! In: our table name, our rule number, networks. Out: argv vectors whose `argv[0]` is
//! `ipfw` (the runner replaces it with the configured path, [`IPFW_PROGRAM`] by default).
//! Must not: run anything, validate names (see [`valid_table_name`]), or quote for a shell
//! (argvs are exec'd directly, so `table(portsentry)` needs no quoting).

use portsentry_blocker::Net;

/// The program `argv[0]` names; exec'd by absolute path, never via `PATH`.
pub const IPFW_PROGRAM: &str = "/sbin/ipfw";

/// Table keys per `table NAME add` / `delete` call. 1000 keys are at most 45 KB of
/// arguments (an IPv6 `/128` key and its value), far below FreeBSD's 256 KB `ARG_MAX`,
/// and one sockopt buffer of about 80 KB for the kernel (it accepts up to 16 MB).
pub const CHUNK: usize = 1000;

/// The value stored with every key. `ipfw table NAME add` takes `[table-key value ...]`:
/// with more than one key the values are mandatory (tables.c reads `key value` pairs), so
/// every key gets one, also when there is just one.
pub const VALUE: &str = "0";

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

/// A table key as `ipfw table NAME list` prints it back: `ADDR/LEN`, also for hosts.
pub fn key(net: &Net) -> String {
    format!("{}/{}", net.addr(), net.prefix())
}

/// Whether `name` is a table name ipfw accepts: 1 to 63 of `A-Z a-z 0-9 _ - .`
/// (`ipfw_check_object_name` in ipfw2.c), and not `all` (reserved by `table_check_name`).
pub fn valid_table_name(name: &str) -> bool {
    (1..64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && name != "all"
}

/// `ipfw table portsentry info`
pub fn argv_table_info(table: &str) -> Vec<String> {
    words(&["ipfw", "table", table, "info"])
}

/// `ipfw table portsentry create type addr`
pub fn argv_table_create(table: &str) -> Vec<String> {
    words(&["ipfw", "table", table, "create", "type", "addr"])
}

/// `ipfw -q table portsentry add 198.18.0.1/32 0 fd00:5e5e::/48 0`
///
/// `-q` makes an existing key an update (tables.c passes `do_quiet` as the update flag)
/// and keeps the command silent, so blocking twice is success.
pub fn argv_table_add(table: &str, nets: &[Net]) -> Vec<String> {
    let mut v = words(&["ipfw", "-q", "table", table, "add"]);
    for n in nets {
        v.push(key(n));
        v.push(VALUE.to_string());
    }
    v
}

/// `ipfw -q table portsentry add K1 0 ... K1000 0`, then the next [`CHUNK`] keys; no
/// argv at all for no networks.
pub fn argv_table_add_batches(table: &str, nets: &[Net]) -> Vec<Vec<String>> {
    nets.chunks(CHUNK)
        .map(|c| argv_table_add(table, c))
        .collect()
}

/// `ipfw -q table portsentry delete 198.18.0.1/32 fd00:5e5e::/48`
///
/// `-q`: an absent key (`ENOENT`) is success, so unblocking twice is success.
pub fn argv_table_delete(table: &str, nets: &[Net]) -> Vec<String> {
    let mut v = words(&["ipfw", "-q", "table", table, "delete"]);
    v.extend(nets.iter().map(key));
    v
}

/// `ipfw -q table portsentry delete K1 ... K1000`, then the next [`CHUNK`] keys.
pub fn argv_table_delete_batches(table: &str, nets: &[Net]) -> Vec<Vec<String>> {
    nets.chunks(CHUNK)
        .map(|c| argv_table_delete(table, c))
        .collect()
}

/// `ipfw table portsentry list`
pub fn argv_table_list(table: &str) -> Vec<String> {
    words(&["ipfw", "table", table, "list"])
}

/// `ipfw -q table portsentry flush`
pub fn argv_table_flush(table: &str) -> Vec<String> {
    words(&["ipfw", "-q", "table", table, "flush"])
}

/// `ipfw -q table portsentry destroy`
pub fn argv_table_destroy(table: &str) -> Vec<String> {
    words(&["ipfw", "-q", "table", table, "destroy"])
}

/// The body of our rule exactly as `ipfw list` prints it back:
/// `deny ip from table(portsentry) to any`.
pub fn rule_body(table: &str) -> String {
    format!("deny ip from table({table}) to any")
}

/// `ipfw list 45`
pub fn argv_rule_list(rule: u16) -> Vec<String> {
    vec!["ipfw".to_string(), "list".to_string(), rule.to_string()]
}

/// `ipfw -q add 45 deny ip from 'table(portsentry)' to any`
pub fn argv_rule_add(rule: u16, table: &str) -> Vec<String> {
    let mut v = vec![
        "ipfw".to_string(),
        "-q".to_string(),
        "add".to_string(),
        rule.to_string(),
    ];
    v.extend(rule_body(table).split(' ').map(str::to_string));
    v
}

/// `ipfw -q delete 45`
pub fn argv_rule_delete(rule: u16) -> Vec<String> {
    vec![
        "ipfw".to_string(),
        "-q".to_string(),
        "delete".to_string(),
        rule.to_string(),
    ]
}
