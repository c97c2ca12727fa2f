//! portsentry.conf: the typed [`Config`], loaded with either dialect's lookup rules.
//!
//! In: a path (or bytes) and a [`Dialect`]. Out: a [`Config`] with every key parsed and
//! validated, plus warnings; or one [`ConfigError`] naming `path:line`. Mode-dependent
//! cross-checks live in [`Config::validate`]. Nothing here opens a socket or writes a
//! file; the only I/O is reading the config and (in [`Config::load_ignore`]) the ignore file.

pub mod ignore;
pub mod lexer;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::model::ports;
pub use crate::model::ports::{PortItem, PortSet};
pub use crate::model::{BlockMode, Dialect, Mode, Proto};
pub use ignore::IgnoreList;

/// The default rule number of the ipfw backend's deny rule (see portsentry.conf(5)).
pub const DEFAULT_IPFW_RULE: u16 = 45;

/// Splits a BLOCK_COMMAND value into an argv, once, at load: words separated by blanks,
/// single quotes group a word with blanks in it. No shell: no variables, globbing,
/// redirection or escapes.
pub fn split_argv(value: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    for c in value.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quoted {
        return Err("has an unclosed single quote".to_string());
    }
    if in_word {
        out.push(cur);
    }
    if out.is_empty() {
        return Err("names no program".to_string());
    }
    Ok(out)
}

/// An argv back as a config value (words with blanks in single quotes).
pub fn join_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.is_empty() || a.contains(char::is_whitespace) {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Default config path of both dialects.
pub const DEFAULT_PATH: &str = "/etc/portsentry/portsentry.conf";

/// A native blocking backend, by the name used in `--block-backend` and BLOCK_BACKEND.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendName {
    Auto,
    Nft,
    Pf,
    Ipfw,
    Npf,
    Route,
    HostsDeny,
    Command,
}

impl BackendName {
    pub const ALL: [BackendName; 8] = [
        BackendName::Auto,
        BackendName::Nft,
        BackendName::Pf,
        BackendName::Ipfw,
        BackendName::Npf,
        BackendName::Route,
        BackendName::HostsDeny,
        BackendName::Command,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BackendName::Auto => "auto",
            BackendName::Nft => "nft",
            BackendName::Pf => "pf",
            BackendName::Ipfw => "ipfw",
            BackendName::Npf => "npf",
            BackendName::Route => "route",
            BackendName::HostsDeny => "hosts-deny",
            BackendName::Command => "command",
        }
    }

    /// Whether the backend exists on the OS this binary was built for.
    pub fn on_this_os(self) -> bool {
        match self {
            BackendName::Nft => cfg!(target_os = "linux"),
            BackendName::Pf => cfg!(any(target_os = "openbsd", target_os = "freebsd")),
            BackendName::Ipfw => cfg!(target_os = "freebsd"),
            BackendName::Npf => cfg!(target_os = "netbsd"),
            BackendName::Route => cfg!(any(
                target_os = "linux",
                target_os = "freebsd",
                target_os = "netbsd",
                target_os = "openbsd"
            )),
            BackendName::Auto | BackendName::HostsDeny | BackendName::Command => true,
        }
    }

    /// `auto` resolved for this OS.
    pub fn resolve(self) -> BackendName {
        match self {
            BackendName::Auto if cfg!(target_os = "linux") => BackendName::Nft,
            BackendName::Auto if cfg!(target_os = "freebsd") || cfg!(target_os = "openbsd") => {
                BackendName::Pf
            }
            BackendName::Auto => BackendName::Route,
            other => other,
        }
    }
}

impl fmt::Display for BackendName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses `NAME[,NAME...]`, checking each name exists on this OS.
pub fn parse_backends(s: &str) -> Result<Vec<BackendName>, String> {
    let mut out = Vec::new();
    for name in words(s) {
        let b = BackendName::ALL
            .into_iter()
            .find(|b| b.as_str() == name)
            .ok_or_else(|| {
                format!(
                    "unknown block backend \"{name}\" (known: {})",
                    BackendName::ALL.map(|b| b.as_str()).join(", ")
                )
            })?;
        if !b.on_this_os() {
            return Err(format!(
                "block backend \"{name}\" does not exist on {}",
                std::env::consts::OS
            ));
        }
        if !out.contains(&b) {
            out.push(b);
        }
    }
    if out.is_empty() {
        return Err("no block backend named".to_string());
    }
    Ok(out)
}

/// NFT_HOOKS: which base chains the nftables backend installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Input,
    Forward,
}

/// A legacy KILL_* command or line template with `$TARGET$`, `$PORT$`, `$MODE$` tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(pub String);

impl Template {
    pub fn has_target(&self) -> bool {
        self.0.contains("$TARGET$")
    }

    /// Substitutes the tokens. `$TARGET$` can only ever be an IP literal.
    pub fn render(&self, target: IpAddr, port: u16, mode: &str) -> String {
        self.0
            .replace("$TARGET$", &target.to_string())
            .replace("$PORT$", &port.to_string())
            .replace("$MODE$", mode)
    }
}

/// Why a config cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read the config file: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Lex(#[from] lexer::LexError),
    #[error("{}:{line}: {key}: {problem}", path.display())]
    Key {
        path: PathBuf,
        line: usize,
        key: String,
        problem: String,
    },
    #[error("{}: {problem}", path.display())]
    Whole { path: PathBuf, problem: String },
    #[error(transparent)]
    Ignore(#[from] ignore::IgnoreError),
}

/// The keys Portsentry 1.2 read. In 1.2 mode a value of these that 1.2 could not read
/// (no quotes, a bad number) is skipped with 1.2's line and the default applies; our
/// own keys are validated as in 2.x mode.
pub const KEYS_1_2: &[&str] = &[
    "TCP_PORTS",
    "UDP_PORTS",
    "ADVANCED_PORTS_TCP",
    "ADVANCED_PORTS_UDP",
    "ADVANCED_EXCLUDE_TCP",
    "ADVANCED_EXCLUDE_UDP",
    "IGNORE_FILE",
    "HISTORY_FILE",
    "BLOCKED_FILE",
    "RESOLVE_HOST",
    "BLOCK_TCP",
    "BLOCK_UDP",
    "KILL_ROUTE",
    "KILL_HOSTS_DENY",
    "KILL_RUN_CMD",
    "KILL_RUN_CMD_FIRST",
    "SCAN_TRIGGER",
    "PORT_BANNER",
];

/// Every key we know, in the man page's order.
pub const KEYS: &[&str] = &[
    "TCP_PORTS",
    "UDP_PORTS",
    "ADVANCED_PORTS_TCP",
    "ADVANCED_PORTS_UDP",
    "ADVANCED_EXCLUDE_TCP",
    "ADVANCED_EXCLUDE_UDP",
    "IGNORE_FILE",
    "HISTORY_FILE",
    "BLOCKED_FILE",
    "RESOLVE_HOST",
    "BLOCK_TCP",
    "BLOCK_UDP",
    "KILL_ROUTE",
    "KILL_ROUTE_REMOVE",
    "KILL_HOSTS_DENY",
    "HOSTS_DENY_FILE",
    "KILL_RUN_CMD",
    "KILL_RUN_CMD_FIRST",
    "SCAN_TRIGGER",
    "PORT_BANNER",
    "BLOCK_BACKEND",
    "BLOCK_TIMEOUT",
    "BLOCK_TIMEOUT_MULTIPLIER",
    "BLOCK_TIMEOUT_MAX",
    "BLOCK_MAX",
    "BLOCK_RATE",
    "BLOCK_PREFIX_V6",
    "BLOCK_STATE_FILE",
    "NFT_HOOKS",
    "IPFW_RULE",
    "BLOCK_COMMAND",
    "UNBLOCK_COMMAND",
    "LOG_RATE_LIMIT",
    "CROWDSEC_LAPI_URL",
    "CROWDSEC_BOUNCER_KEY",
    "CROWDSEC_BOUNCER_KEY_FILE",
    "CROWDSEC_MACHINE_ID",
    "CROWDSEC_MACHINE_PASSWORD",
    "CROWDSEC_MACHINE_PASSWORD_FILE",
    "CROWDSEC_POLL_INTERVAL",
    "CROWDSEC_CREDENTIALS_FILE",
    "CROWDSEC_CA_FILE",
    "CROWDSEC_ORIGINS",
    "CROWDSEC_SCENARIOS_CONTAINING",
    "CROWDSEC_SCENARIOS_NOT_CONTAINING",
];

/// A credential: never shown (Debug, check-config) beyond whether it is set.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The CrowdSec LAPI settings (`CROWDSEC_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crowdsec {
    pub url: Option<String>,
    /// The bouncer side (pull) is on when set.
    pub bouncer_key: Option<Secret>,
    /// The watcher side (push) is on when both are set.
    pub machine_id: Option<String>,
    pub machine_password: Option<Secret>,
    pub poll_interval: Duration,
    /// Where the key or password was read from (`..._FILE`), for check-config.
    pub bouncer_key_file: Option<PathBuf>,
    pub machine_password_file: Option<PathBuf>,
    /// cscli's credentials file the machine came from (`CROWDSEC_CREDENTIALS_FILE`).
    pub credentials_file: Option<PathBuf>,
    /// The certificates an https LAPI is checked against (`CROWDSEC_CA_FILE`), as read.
    pub ca_file: Option<PathBuf>,
    pub ca_pem: Option<Vec<u8>>,
    /// Which pulled decisions are applied (empty = no condition).
    pub filter: DecisionFilter,
}

/// Which decisions from the LAPI are applied: an origin in `origins` (when any are
/// given), a scenario containing one of `containing` (when any are given) and none of
/// `not_containing`. Deletions are not filtered (they only lift what was applied).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecisionFilter {
    pub origins: Vec<String>,
    pub containing: Vec<String>,
    pub not_containing: Vec<String>,
}

impl DecisionFilter {
    pub fn admits(&self, origin: &str, scenario: &str) -> bool {
        (self.origins.is_empty() || self.origins.iter().any(|o| o == origin))
            && (self.containing.is_empty()
                || self
                    .containing
                    .iter()
                    .any(|c| scenario.contains(c.as_str())))
            && !self
                .not_containing
                .iter()
                .any(|c| scenario.contains(c.as_str()))
    }
}

/// The items of a comma-separated list, blanks around each removed, empty ones dropped.
fn words(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|w| !w.is_empty())
}

/// [`words`], owned.
fn word_list(value: &str) -> Vec<String> {
    words(value).map(str::to_string).collect()
}

impl Crowdsec {
    /// Whether either side is on.
    pub fn enabled(&self) -> bool {
        self.bouncer_key.is_some() || self.machine_id.is_some()
    }
}

/// The typed configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub dialect: Dialect,
    pub tcp_ports: PortSet,
    pub udp_ports: PortSet,
    /// TCP_PORTS and UDP_PORTS as written (1.2 mode logs its per-port lines in order).
    pub tcp_port_items: Vec<PortItem>,
    pub udp_port_items: Vec<PortItem>,
    pub advanced_ports_tcp: Option<u16>,
    pub advanced_ports_udp: Option<u16>,
    pub advanced_exclude_tcp: Vec<PortItem>,
    pub advanced_exclude_udp: Vec<PortItem>,
    pub ignore_file: Option<PathBuf>,
    pub history_file: Option<PathBuf>,
    pub blocked_file: Option<PathBuf>,
    pub resolve_host: bool,
    pub block_tcp: BlockMode,
    pub block_udp: BlockMode,
    pub kill_route: Option<Template>,
    pub kill_route_remove: Option<Template>,
    pub kill_hosts_deny: Option<Template>,
    pub hosts_deny_file: PathBuf,
    pub kill_run_cmd: Option<Template>,
    pub kill_run_cmd_first: bool,
    pub scan_trigger: u32,
    pub port_banner: Option<String>,
    /// Native backends; empty = none configured (legacy KILL_* only).
    pub block_backend: Vec<BackendName>,
    /// `None` = permanent (the Portsentry default).
    pub block_timeout: Option<Duration>,
    pub block_timeout_multiplier: f64,
    /// `None` = no cap.
    pub block_timeout_max: Option<Duration>,
    pub block_max: usize,
    /// New blocks per second at most.
    pub block_rate: u32,
    /// Scan lines per second after a burst of 65 536 (LOG_RATE_LIMIT); 0 = unlimited.
    pub log_rate_limit: u64,
    pub block_prefix_v6: u8,
    pub block_state_file: PathBuf,
    pub nft_hooks: Vec<Hook>,
    /// The ipfw rule number of our deny rule.
    pub ipfw_rule: u16,
    /// The command backend's argv templates, split once at load.
    pub block_command: Option<Vec<String>>,
    pub unblock_command: Option<Vec<String>>,
    pub crowdsec: Crowdsec,
    /// Line on which each key took effect.
    pub lines: HashMap<&'static str, usize>,
    /// Things worth telling the admin that are not errors (`path:line: ...`).
    pub warnings: Vec<String>,
    /// 1.2 mode: the 1.2 keys whose first line had no quotes (1.2 skipped them).
    pub unquoted: Vec<&'static str>,
}

impl Config {
    /// The built-in defaults for a config at `path`.
    pub fn defaults(path: &Path, dialect: Dialect) -> Config {
        Config {
            path: path.to_path_buf(),
            dialect,
            tcp_ports: PortSet::new(),
            udp_ports: PortSet::new(),
            tcp_port_items: Vec::new(),
            udp_port_items: Vec::new(),
            advanced_ports_tcp: None,
            advanced_ports_udp: None,
            advanced_exclude_tcp: Vec::new(),
            advanced_exclude_udp: Vec::new(),
            ignore_file: None,
            history_file: None,
            blocked_file: None,
            resolve_host: false,
            block_tcp: BlockMode::LogOnly,
            block_udp: BlockMode::LogOnly,
            kill_route: None,
            kill_route_remove: None,
            kill_hosts_deny: None,
            hosts_deny_file: PathBuf::from("/etc/hosts.deny"),
            kill_run_cmd: None,
            kill_run_cmd_first: false,
            scan_trigger: 0,
            port_banner: None,
            block_backend: Vec::new(),
            block_timeout: None,
            block_timeout_multiplier: 1.0,
            block_timeout_max: None,
            block_max: 100_000,
            block_rate: 1000,
            log_rate_limit: 1000,
            block_prefix_v6: 128,
            block_state_file: PathBuf::from("/var/lib/portsentry/blocks"),
            nft_hooks: vec![Hook::Input],
            ipfw_rule: DEFAULT_IPFW_RULE,
            block_command: None,
            unblock_command: None,
            crowdsec: Crowdsec {
                url: None,
                bouncer_key: None,
                machine_id: None,
                machine_password: None,
                poll_interval: Duration::from_secs(1),
                bouncer_key_file: None,
                machine_password_file: None,
                credentials_file: None,
                ca_file: None,
                ca_pem: None,
                filter: DecisionFilter::default(),
            },
            lines: HashMap::new(),
            warnings: Vec::new(),
            unquoted: Vec::new(),
        }
    }

    /// Reads and parses the config at `path`.
    pub fn load(path: &Path, dialect: Dialect) -> Result<Config, ConfigError> {
        // A FIFO or a device would hang the read: refused before opening.
        let data = crate::fsutil::read_regular(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(path, &data, dialect)
    }

    /// Parses config text (see the module header for the dialects' rules).
    pub fn parse(path: &Path, data: &[u8], dialect: Dialect) -> Result<Config, ConfigError> {
        if dialect == Dialect::Legacy {
            return Config::parse_1_2(path, data);
        }
        let entries = lexer::lex(path, data)?;
        let mut cfg = Config::defaults(path, dialect);
        for e in &entries {
            let Some(key) = KEYS.iter().copied().find(|k| *k == e.key) else {
                match dialect {
                    Dialect::Legacy => continue,
                    Dialect::V2 => {
                        return Err(cfg.key_err(e.line, &e.key, unknown_key_problem(&e.key)))
                    }
                }
            };
            if dialect == Dialect::Legacy && cfg.lines.contains_key(key) {
                continue; // 1.2: the first occurrence wins
            }
            cfg.set(key, &e.value, e.line)?;
            cfg.lines.insert(key, e.line);
        }
        Ok(cfg)
    }

    /// 1.2's reading: the first line naming a key wins, whatever it holds; a 1.2 key
    /// 1.2 could not read is noted in `unquoted` (no quotes) or `warnings` (a value we
    /// cannot use) and keeps its default; our own keys are validated.
    fn parse_1_2(path: &Path, data: &[u8]) -> Result<Config, ConfigError> {
        let mut cfg = Config::defaults(path, Dialect::Legacy);
        let mut seen = std::collections::HashSet::new();
        for e in lexer::lex_loose(data) {
            let Some(key) = KEYS.iter().copied().find(|k| *k == e.key) else {
                continue;
            };
            if !seen.insert(key) {
                continue; // 1.2: the first occurrence wins
            }
            let ours = !KEYS_1_2.contains(&key);
            let value = match e.value {
                None if ours => {
                    return Err(cfg.key_err(
                        e.line,
                        key,
                        format!("the value must be in double quotes, as {key}=\"...\""),
                    ))
                }
                None => {
                    cfg.unquoted.push(key);
                    continue;
                }
                Some(v) if v.is_empty() && ours => {
                    return Err(cfg.key_err(e.line, key, "the value is empty"))
                }
                // 1.2 read "" as nothing: the default stays
                Some(v) if v.is_empty() => continue,
                Some(v) => v,
            };
            match cfg.set(key, &value, e.line) {
                Ok(()) => {
                    cfg.lines.insert(key, e.line);
                }
                Err(e) if !ours => cfg.warnings.push(format!("{e}; option skipped")),
                Err(e) => return Err(e),
            }
        }
        Ok(cfg)
    }

    /// A credential kept in a file of its own: its first line, which must not be empty.
    /// The whole file a `..._FILE` key names (a regular file), or `path:line` saying why
    /// it cannot be read.
    fn key_file(&self, key: &str, value: &str, line: usize) -> Result<Vec<u8>, ConfigError> {
        let path = value.trim();
        crate::fsutil::read_regular(Path::new(path))
            .map_err(|e| self.key_err(line, key, format!("cannot read {path}: {e}")))
    }

    fn secret_file(&self, key: &str, value: &str, line: usize) -> Result<Secret, ConfigError> {
        let data = self.key_file(key, value, line)?;
        let text = String::from_utf8_lossy(&data);
        let first = text.lines().next().unwrap_or("").trim();
        if first.is_empty() {
            return Err(self.key_err(line, key, format!("{} is empty", value.trim())));
        }
        Ok(Secret(first.to_string()))
    }

    /// cscli's `local_api_credentials.yaml` (what `cscli machines add NAME -f FILE`
    /// writes): flat `url:`, `login:` and `password:` lines, values bare or quoted.
    /// Returns the URL (if any and valid), the login and the password.
    fn credentials_file(
        &self,
        key: &str,
        value: &str,
        line: usize,
    ) -> Result<(Option<String>, String, Secret), ConfigError> {
        let path = value.trim();
        let data = self.key_file(key, value, line)?;
        let text = String::from_utf8_lossy(&data);
        let mut fields: HashMap<&str, String> = HashMap::new();
        for l in text.lines() {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') || l == "---" {
                continue;
            }
            let Some((k, v)) = l.split_once(':') else {
                continue;
            };
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                .unwrap_or(v);
            fields.insert(k.trim(), v.to_string());
        }
        let field = |name: &str| -> Result<String, ConfigError> {
            match fields.get(name) {
                Some(v) if !v.is_empty() => Ok(v.clone()),
                _ => Err(self.key_err(line, key, format!("{path} has no \"{name}:\" line"))),
            }
        };
        let login = field("login")?;
        let password = Secret(field("password")?);
        let url = match fields.get("url").filter(|u| !u.is_empty()) {
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
                Some(u.trim_end_matches('/').to_string())
            }
            Some(u) => {
                return Err(self.key_err(
                    line,
                    key,
                    format!("{path}: url \"{u}\" is not an http:// or https:// URL"),
                ))
            }
            None => None,
        };
        Ok((url, login, password))
    }

    fn key_err(&self, line: usize, key: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Key {
            path: self.path.clone(),
            line,
            key: key.to_string(),
            problem: problem.into(),
        }
    }

    fn warn(&mut self, line: usize, key: &str, msg: impl fmt::Display) {
        self.warnings
            .push(format!("{}:{line}: {key}: {msg}", self.path.display()));
    }

    fn ports(&mut self, key: &str, value: &str, line: usize) -> Result<Vec<PortItem>, ConfigError> {
        let (items, errors) = ports::parse_list(value);
        if let Some(e) = errors.first() {
            if self.dialect == Dialect::V2 {
                return Err(self.key_err(line, key, e.to_string()));
            }
            for e in errors {
                self.warn(line, key, format_args!("{e}; item skipped"));
            }
        }
        Ok(items)
    }

    fn flag(&mut self, key: &str, value: &str, line: usize) -> Result<bool, ConfigError> {
        match (value, self.dialect) {
            ("0", _) => Ok(false),
            ("1", _) => Ok(true),
            (_, Dialect::Legacy) => Ok(atoi(value) != 0),
            _ => Err(self.key_err(line, key, format!("\"{value}\" must be 0 or 1"))),
        }
    }

    fn block_mode(
        &mut self,
        key: &str,
        value: &str,
        line: usize,
    ) -> Result<BlockMode, ConfigError> {
        match (value, self.dialect) {
            ("0", _) => Ok(BlockMode::LogOnly),
            ("1", _) => Ok(BlockMode::Block),
            ("2", _) => Ok(BlockMode::RunCmd),
            (_, Dialect::Legacy) => Ok(match atoi(value) {
                1 => BlockMode::Block,
                2 => BlockMode::RunCmd,
                _ => BlockMode::LogOnly,
            }),
            _ => Err(self.key_err(
                line,
                key,
                format!("\"{value}\" must be 0 (log only), 1 (block) or 2 (run KILL_RUN_CMD only)"),
            )),
        }
    }

    fn number(
        &self,
        key: &str,
        value: &str,
        line: usize,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        match value.trim().parse::<u64>() {
            Ok(n)
                if (min..=max).contains(&n) && value.trim().bytes().all(|b| b.is_ascii_digit()) =>
            {
                Ok(n)
            }
            _ => Err(self.key_err(
                line,
                key,
                format!("\"{value}\" must be a whole number from {min} to {max}"),
            )),
        }
    }

    fn template(
        &mut self,
        key: &str,
        value: &str,
        line: usize,
        need_target: bool,
    ) -> Result<Template, ConfigError> {
        let t = Template(value.to_string());
        // 1.2 accepted it and said so at each block: "No target variable specified"
        if need_target && !t.has_target() && self.dialect == Dialect::V2 {
            return Err(self.key_err(line, key, "must contain the $TARGET$ token"));
        }
        Ok(t)
    }

    fn set(&mut self, key: &'static str, value: &str, line: usize) -> Result<(), ConfigError> {
        match key {
            "TCP_PORTS" => {
                self.tcp_port_items = self.ports(key, value, line)?;
                self.tcp_ports = ports::to_set(&self.tcp_port_items);
            }
            "UDP_PORTS" => {
                self.udp_port_items = self.ports(key, value, line)?;
                self.udp_ports = ports::to_set(&self.udp_port_items);
            }
            "ADVANCED_PORTS_TCP" => {
                self.advanced_ports_tcp = Some(self.number(key, value, line, 1, 65535)? as u16)
            }
            "ADVANCED_PORTS_UDP" => {
                self.advanced_ports_udp = Some(self.number(key, value, line, 1, 65535)? as u16)
            }
            "ADVANCED_EXCLUDE_TCP" => self.advanced_exclude_tcp = self.ports(key, value, line)?,
            "ADVANCED_EXCLUDE_UDP" => self.advanced_exclude_udp = self.ports(key, value, line)?,
            "IGNORE_FILE" => self.ignore_file = Some(PathBuf::from(value)),
            "HISTORY_FILE" => self.history_file = Some(PathBuf::from(value)),
            "BLOCKED_FILE" => self.blocked_file = Some(PathBuf::from(value)),
            "RESOLVE_HOST" => self.resolve_host = self.flag(key, value, line)?,
            "BLOCK_TCP" => self.block_tcp = self.block_mode(key, value, line)?,
            "BLOCK_UDP" => self.block_udp = self.block_mode(key, value, line)?,
            "KILL_ROUTE" => self.kill_route = Some(self.template(key, value, line, true)?),
            "KILL_ROUTE_REMOVE" => {
                self.kill_route_remove = Some(self.template(key, value, line, true)?)
            }
            "KILL_HOSTS_DENY" => {
                self.kill_hosts_deny = Some(self.template(key, value, line, true)?)
            }
            "HOSTS_DENY_FILE" => self.hosts_deny_file = PathBuf::from(value),
            "KILL_RUN_CMD" => self.kill_run_cmd = Some(self.template(key, value, line, false)?),
            "KILL_RUN_CMD_FIRST" => self.kill_run_cmd_first = self.flag(key, value, line)?,
            "SCAN_TRIGGER" => {
                self.scan_trigger = match self.dialect {
                    Dialect::V2 => self.number(key, value, line, 0, u64::from(u32::MAX))? as u32,
                    Dialect::Legacy => atoi(value).clamp(0, i64::from(u32::MAX)) as u32,
                }
            }
            "PORT_BANNER" => self.port_banner = Some(value.to_string()),
            "BLOCK_BACKEND" => {
                self.block_backend =
                    parse_backends(value).map_err(|p| self.key_err(line, key, p))?
            }
            "BLOCK_TIMEOUT" => {
                self.block_timeout =
                    parse_duration(value).map_err(|p| self.key_err(line, key, p))?
            }
            "BLOCK_TIMEOUT_MULTIPLIER" => {
                self.block_timeout_multiplier = match value.trim().parse::<f64>() {
                    Ok(m) if m.is_finite() && (1.0..=1000.0).contains(&m) => m,
                    _ => {
                        return Err(self.key_err(
                            line,
                            key,
                            format!("\"{value}\" must be a number from 1 to 1000"),
                        ))
                    }
                }
            }
            "BLOCK_TIMEOUT_MAX" => {
                self.block_timeout_max =
                    parse_duration(value).map_err(|p| self.key_err(line, key, p))?
            }
            "BLOCK_MAX" => self.block_max = self.number(key, value, line, 1, 10_000_000)? as usize,
            "BLOCK_RATE" => self.block_rate = self.number(key, value, line, 1, 1_000_000)? as u32,
            "CROWDSEC_LAPI_URL" => {
                let v = value.trim();
                if !(v.starts_with("http://") || v.starts_with("https://")) {
                    return Err(self.key_err(
                        line,
                        key,
                        "must be the LAPI's URL, as http://127.0.0.1:8080",
                    ));
                }
                self.crowdsec.url = Some(v.to_string());
            }
            "CROWDSEC_BOUNCER_KEY" => {
                self.crowdsec.bouncer_key = Some(Secret(value.trim().to_string()))
            }
            "CROWDSEC_MACHINE_ID" => self.crowdsec.machine_id = Some(value.trim().to_string()),
            "CROWDSEC_MACHINE_PASSWORD" => {
                self.crowdsec.machine_password = Some(Secret(value.to_string()))
            }
            "CROWDSEC_BOUNCER_KEY_FILE" => {
                self.crowdsec.bouncer_key = Some(self.secret_file(key, value, line)?);
                self.crowdsec.bouncer_key_file = Some(PathBuf::from(value.trim()));
            }
            "CROWDSEC_MACHINE_PASSWORD_FILE" => {
                self.crowdsec.machine_password = Some(self.secret_file(key, value, line)?);
                self.crowdsec.machine_password_file = Some(PathBuf::from(value.trim()));
            }
            "CROWDSEC_CREDENTIALS_FILE" => {
                let (url, login, password) = self.credentials_file(key, value, line)?;
                if self.crowdsec.url.is_none() {
                    self.crowdsec.url = url;
                }
                self.crowdsec.machine_id = Some(login);
                self.crowdsec.machine_password = Some(password);
                self.crowdsec.credentials_file = Some(PathBuf::from(value.trim()));
            }
            "CROWDSEC_ORIGINS" => self.crowdsec.filter.origins = word_list(value),
            "CROWDSEC_SCENARIOS_CONTAINING" => self.crowdsec.filter.containing = word_list(value),
            "CROWDSEC_SCENARIOS_NOT_CONTAINING" => {
                self.crowdsec.filter.not_containing = word_list(value)
            }
            "CROWDSEC_CA_FILE" => {
                let path = value.trim();
                let pem = self.key_file(key, value, line)?;
                if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                    return Err(self.key_err(
                        line,
                        key,
                        format!("{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
                    ));
                }
                self.crowdsec.ca_file = Some(PathBuf::from(path));
                self.crowdsec.ca_pem = Some(pem);
            }
            "CROWDSEC_POLL_INTERVAL" => {
                let d = parse_duration(value)
                    .map_err(|p| self.key_err(line, key, p))?
                    .ok_or_else(|| self.key_err(line, key, "must be longer than 0"))?;
                if d > Duration::from_secs(3600) {
                    return Err(self.key_err(line, key, "must be at most 1h"));
                }
                self.crowdsec.poll_interval = d;
            }
            "LOG_RATE_LIMIT" => {
                self.log_rate_limit = self.number(key, value, line, 0, 10_000_000)?
            }
            "BLOCK_PREFIX_V6" => {
                self.block_prefix_v6 = self.number(key, value, line, 16, 128)? as u8
            }
            "BLOCK_STATE_FILE" => self.block_state_file = PathBuf::from(value),
            "NFT_HOOKS" => {
                let mut hooks = Vec::new();
                for h in words(value) {
                    let hook = match h {
                        "input" => Hook::Input,
                        "forward" => Hook::Forward,
                        _ => {
                            return Err(self.key_err(
                                line,
                                key,
                                format!("unknown hook \"{h}\" (known: input, forward)"),
                            ))
                        }
                    };
                    if !hooks.contains(&hook) {
                        hooks.push(hook);
                    }
                }
                if hooks.is_empty() {
                    return Err(self.key_err(line, key, "names no hook"));
                }
                self.nft_hooks = hooks;
            }
            "IPFW_RULE" => self.ipfw_rule = self.number(key, value, line, 1, 65534)? as u16,
            "BLOCK_COMMAND" | "UNBLOCK_COMMAND" => {
                let argv = split_argv(value).map_err(|p| self.key_err(line, key, p))?;
                if !argv.iter().any(|a| a.contains("$TARGET$")) {
                    return Err(self.key_err(line, key, "has no $TARGET$"));
                }
                if !argv[0].starts_with('/') {
                    return Err(self.key_err(
                        line,
                        key,
                        format!(
                            "\"{}\" must be an absolute path (no PATH lookup, no shell)",
                            argv[0]
                        ),
                    ));
                }
                if key == "BLOCK_COMMAND" {
                    self.block_command = Some(argv);
                } else {
                    self.unblock_command = Some(argv);
                }
            }
            _ => return Err(self.key_err(line, key, unknown_key_problem(key))),
        }
        Ok(())
    }

    /// The legacy KILL_HOSTS_DENY action, unless the hosts-deny backend writes those
    /// lines itself (in its marked block, with the same template).
    pub fn legacy_hosts_deny(&self) -> Option<&Template> {
        if self.block_backend.contains(&BackendName::HostsDeny) {
            None
        } else {
            self.kill_hosts_deny.as_ref()
        }
    }

    fn line_of(&self, key: &str) -> usize {
        self.lines.get(key).copied().unwrap_or(0)
    }

    fn block_mode_of(&self, proto: Proto) -> BlockMode {
        match proto {
            Proto::Tcp => self.block_tcp,
            Proto::Udp => self.block_udp,
        }
    }

    /// The ports watched for `proto` in 2.x `mode`: the listed ports, plus in stealth
    /// mode `1..N-1` minus the excludes when ADVANCED_PORTS_x is set.
    pub fn watched(&self, proto: Proto, mode: Mode) -> PortSet {
        let (listed, adv) = match proto {
            Proto::Tcp => (&self.tcp_ports, self.advanced_ports_tcp),
            Proto::Udp => (&self.udp_ports, self.advanced_ports_udp),
        };
        let mut set = listed.clone();
        if mode == Mode::Stealth {
            if let Some(n) = adv {
                set.extend(&self.advanced_set(proto, n));
            }
        }
        set
    }

    /// `1..n-1` minus ADVANCED_EXCLUDE_x (1.2's advanced mode, before in-use ports).
    pub fn advanced_set(&self, proto: Proto, n: u16) -> PortSet {
        let mut set = PortSet::new();
        if n > 1 {
            set.insert_range(1, n - 1);
        }
        let excl = match proto {
            Proto::Tcp => &self.advanced_exclude_tcp,
            Proto::Udp => &self.advanced_exclude_udp,
        };
        for i in excl {
            for p in i.lo..=i.hi {
                set.remove(p);
            }
        }
        set
    }

    /// The 2.x cross-checks for `mode` (call after any `--block-backend` override).
    /// The CROWDSEC_* keys fit together: a URL for either side, a password with the
    /// machine and the other way round, a key and its _FILE not both.
    fn validate_crowdsec(&self) -> Result<(), ConfigError> {
        for (a, b) in [
            ("CROWDSEC_BOUNCER_KEY", "CROWDSEC_BOUNCER_KEY_FILE"),
            (
                "CROWDSEC_MACHINE_PASSWORD",
                "CROWDSEC_MACHINE_PASSWORD_FILE",
            ),
        ] {
            if self.lines.contains_key(a) && self.lines.contains_key(b) {
                let line = self.line_of(b);
                return Err(self.key_err(line, b, format!("{a} is set too; set only one")));
            }
        }
        for a in [
            "CROWDSEC_MACHINE_ID",
            "CROWDSEC_MACHINE_PASSWORD",
            "CROWDSEC_MACHINE_PASSWORD_FILE",
        ] {
            let b = "CROWDSEC_CREDENTIALS_FILE";
            if self.lines.contains_key(a) && self.lines.contains_key(b) {
                let line = self.line_of(b);
                return Err(self.key_err(
                    line,
                    b,
                    format!(
                        "{a} is set too; the credentials file names the machine and its password"
                    ),
                ));
            }
        }
        let c = &self.crowdsec;
        if c.machine_id.is_some() != c.machine_password.is_some() {
            let (key, other) = if c.machine_id.is_some() {
                (
                    "CROWDSEC_MACHINE_ID",
                    "CROWDSEC_MACHINE_PASSWORD (or _FILE)",
                )
            } else {
                ("CROWDSEC_MACHINE_PASSWORD", "CROWDSEC_MACHINE_ID")
            };
            let line = self
                .line_of(key)
                .max(self.line_of("CROWDSEC_MACHINE_PASSWORD_FILE"));
            return Err(self.key_err(line, key, format!("needs {other} as well")));
        }
        if c.enabled() && c.url.is_none() {
            let key = if c.bouncer_key.is_some() {
                if self.lines.contains_key("CROWDSEC_BOUNCER_KEY") {
                    "CROWDSEC_BOUNCER_KEY"
                } else {
                    "CROWDSEC_BOUNCER_KEY_FILE"
                }
            } else {
                "CROWDSEC_MACHINE_ID"
            };
            let line = self.line_of(key);
            return Err(self.key_err(line, key, "needs CROWDSEC_LAPI_URL"));
        }
        if let Some(url) = &c.url {
            if c.ca_pem.is_some() && !url.starts_with("https://") {
                let line = self.line_of("CROWDSEC_CA_FILE");
                return Err(self.key_err(
                    line,
                    "CROWDSEC_CA_FILE",
                    "is only for an https:// CROWDSEC_LAPI_URL",
                ));
            }
            // the client as the daemon will make it: the URL, TLS in this build, the CA
            if let Err(e) = portsentry_crowdsec::Lapi::with_ca(
                url,
                Duration::from_secs(1),
                "portsentry",
                c.ca_pem.as_deref(),
            ) {
                let key = match e {
                    portsentry_crowdsec::LapiError::Ca { .. } => "CROWDSEC_CA_FILE",
                    _ => "CROWDSEC_LAPI_URL",
                };
                let line = self
                    .line_of(key)
                    .max(self.line_of("CROWDSEC_CREDENTIALS_FILE"));
                return Err(self.key_err(line, key, e.to_string()));
            }
        }
        if c.url.is_some() && !c.enabled() {
            let line = self.line_of("CROWDSEC_LAPI_URL");
            return Err(self.key_err(
                line,
                "CROWDSEC_LAPI_URL",
                "is set but neither CROWDSEC_BOUNCER_KEY (pull) nor CROWDSEC_MACHINE_ID (push) is",
            ));
        }
        Ok(())
    }

    pub fn validate(&mut self, mode: Mode) -> Result<(), ConfigError> {
        if self.block_backend.contains(&BackendName::Command) && self.block_command.is_none() {
            let line = self.line_of("BLOCK_BACKEND");
            return Err(self.key_err(
                line,
                "BLOCK_BACKEND",
                "names the command backend but BLOCK_COMMAND is not set",
            ));
        }
        self.validate_crowdsec()?;
        if self.dialect == Dialect::Legacy {
            return Ok(());
        }
        if self.crowdsec.enabled() && self.block_backend.is_empty() {
            let line = self.line_of("CROWDSEC_LAPI_URL");
            return Err(self.key_err(
                line,
                "CROWDSEC_LAPI_URL",
                "sharing blocks needs BLOCK_BACKEND (the LAPI's decisions are applied through its backends)",
            ));
        }
        for (proto, key) in [(Proto::Tcp, "BLOCK_TCP"), (Proto::Udp, "BLOCK_UDP")] {
            let line = self.line_of(key);
            match self.block_mode_of(proto) {
                BlockMode::RunCmd if self.kill_run_cmd.is_none() => {
                    return Err(self.key_err(line, key, "is 2 (run KILL_RUN_CMD only) but KILL_RUN_CMD is not set"))
                }
                BlockMode::Block
                    if self.kill_route.is_none()
                        && self.kill_hosts_deny.is_none()
                        && self.kill_run_cmd.is_none()
                        && self.block_backend.is_empty() =>
                {
                    return Err(self.key_err(
                        line,
                        key,
                        "is 1 (block) but nothing can block: set BLOCK_BACKEND, KILL_ROUTE or KILL_HOSTS_DENY",
                    ))
                }
                _ => {}
            }
        }
        if self.watched(Proto::Tcp, mode).is_empty() && self.watched(Proto::Udp, mode).is_empty() {
            return Err(ConfigError::Whole {
                path: self.path.clone(),
                problem: format!("no TCP_PORTS or UDP_PORTS set: {mode} mode has no port to watch"),
            });
        }
        if mode == Mode::Connect
            && (self.advanced_ports_tcp.is_some() || self.advanced_ports_udp.is_some())
        {
            let line = self
                .line_of("ADVANCED_PORTS_TCP")
                .max(self.line_of("ADVANCED_PORTS_UDP"));
            self.warnings.push(format!(
                "{}:{line}: ADVANCED_PORTS_TCP/ADVANCED_PORTS_UDP are ignored in connect mode",
                self.path.display()
            ));
        }
        Ok(())
    }

    /// Loads the ignore file, if one is configured. Returns the list and warnings.
    pub fn load_ignore(&self) -> Result<(IgnoreList, Vec<String>), ConfigError> {
        match &self.ignore_file {
            None => Ok((IgnoreList::default(), Vec::new())),
            Some(p) => Ok(ignore::load(p)?),
        }
    }

    /// The effective settings, one `KEY="value"` line each, for `check-config`.
    pub fn effective(&self) -> Vec<(&'static str, String)> {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let tmpl = |t: &Option<Template>| t.as_ref().map(|t| t.0.clone());
        let dur = |d: Option<Duration>| match d {
            None => "0".to_string(),
            Some(d) => format_duration(d),
        };
        let adv = |n: Option<u16>| n.map(|n| n.to_string());
        let excl = |v: &Vec<PortItem>| {
            (!v.is_empty()).then(|| {
                v.iter()
                    .map(|i| {
                        if i.lo == i.hi {
                            i.lo.to_string()
                        } else {
                            format!("{}-{}", i.lo, i.hi)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            })
        };
        let opt = |o: Option<String>| o.unwrap_or_else(|| "(unset)".to_string());
        vec![
            ("TCP_PORTS", self.tcp_ports.to_string()),
            ("UDP_PORTS", self.udp_ports.to_string()),
            ("ADVANCED_PORTS_TCP", opt(adv(self.advanced_ports_tcp))),
            ("ADVANCED_PORTS_UDP", opt(adv(self.advanced_ports_udp))),
            (
                "ADVANCED_EXCLUDE_TCP",
                opt(excl(&self.advanced_exclude_tcp)),
            ),
            (
                "ADVANCED_EXCLUDE_UDP",
                opt(excl(&self.advanced_exclude_udp)),
            ),
            ("IGNORE_FILE", opt(path(&self.ignore_file))),
            ("HISTORY_FILE", opt(path(&self.history_file))),
            ("BLOCKED_FILE", opt(path(&self.blocked_file))),
            ("RESOLVE_HOST", u8::from(self.resolve_host).to_string()),
            ("BLOCK_TCP", self.block_tcp.number().to_string()),
            ("BLOCK_UDP", self.block_udp.number().to_string()),
            ("KILL_ROUTE", opt(tmpl(&self.kill_route))),
            ("KILL_ROUTE_REMOVE", opt(tmpl(&self.kill_route_remove))),
            ("KILL_HOSTS_DENY", opt(tmpl(&self.kill_hosts_deny))),
            (
                "HOSTS_DENY_FILE",
                self.hosts_deny_file.display().to_string(),
            ),
            ("KILL_RUN_CMD", opt(tmpl(&self.kill_run_cmd))),
            (
                "KILL_RUN_CMD_FIRST",
                u8::from(self.kill_run_cmd_first).to_string(),
            ),
            ("SCAN_TRIGGER", self.scan_trigger.to_string()),
            ("PORT_BANNER", opt(self.port_banner.clone())),
            (
                "BLOCK_BACKEND",
                if self.block_backend.is_empty() {
                    "(none: KILL_* commands only)".to_string()
                } else {
                    self.block_backend
                        .iter()
                        .map(|b| match b {
                            BackendName::Auto => format!("auto ({})", b.resolve()),
                            b => b.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                },
            ),
            ("BLOCK_TIMEOUT", dur(self.block_timeout)),
            (
                "BLOCK_TIMEOUT_MULTIPLIER",
                self.block_timeout_multiplier.to_string(),
            ),
            ("BLOCK_TIMEOUT_MAX", dur(self.block_timeout_max)),
            ("BLOCK_MAX", self.block_max.to_string()),
            ("BLOCK_RATE", self.block_rate.to_string()),
            ("BLOCK_PREFIX_V6", self.block_prefix_v6.to_string()),
            (
                "BLOCK_STATE_FILE",
                self.block_state_file.display().to_string(),
            ),
            (
                "NFT_HOOKS",
                self.nft_hooks
                    .iter()
                    .map(|h| match h {
                        Hook::Input => "input",
                        Hook::Forward => "forward",
                    })
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("IPFW_RULE", self.ipfw_rule.to_string()),
            (
                "BLOCK_COMMAND",
                opt(self.block_command.as_ref().map(|a| join_argv(a))),
            ),
            (
                "UNBLOCK_COMMAND",
                opt(self.unblock_command.as_ref().map(|a| join_argv(a))),
            ),
            ("LOG_RATE_LIMIT", self.log_rate_limit.to_string()),
            ("CROWDSEC_LAPI_URL", opt(self.crowdsec.url.clone())),
            (
                "CROWDSEC_BOUNCER_KEY",
                opt(self
                    .lines
                    .contains_key("CROWDSEC_BOUNCER_KEY")
                    .then(|| "(set)".to_string())),
            ),
            (
                "CROWDSEC_BOUNCER_KEY_FILE",
                opt(self
                    .crowdsec
                    .bouncer_key_file
                    .as_ref()
                    .map(|p| p.display().to_string())),
            ),
            ("CROWDSEC_MACHINE_ID", opt(self.crowdsec.machine_id.clone())),
            (
                "CROWDSEC_MACHINE_PASSWORD",
                opt(self
                    .lines
                    .contains_key("CROWDSEC_MACHINE_PASSWORD")
                    .then(|| "(set)".to_string())),
            ),
            (
                "CROWDSEC_MACHINE_PASSWORD_FILE",
                opt(self
                    .crowdsec
                    .machine_password_file
                    .as_ref()
                    .map(|p| p.display().to_string())),
            ),
            (
                "CROWDSEC_POLL_INTERVAL",
                format_duration(self.crowdsec.poll_interval),
            ),
            (
                "CROWDSEC_CREDENTIALS_FILE",
                opt(self
                    .crowdsec
                    .credentials_file
                    .as_ref()
                    .map(|p| p.display().to_string())),
            ),
            (
                "CROWDSEC_CA_FILE",
                opt(self
                    .crowdsec
                    .ca_file
                    .as_ref()
                    .map(|p| p.display().to_string())),
            ),
            ("CROWDSEC_ORIGINS", self.crowdsec.filter.origins.join(",")),
            (
                "CROWDSEC_SCENARIOS_CONTAINING",
                self.crowdsec.filter.containing.join(","),
            ),
            (
                "CROWDSEC_SCENARIOS_NOT_CONTAINING",
                self.crowdsec.filter.not_containing.join(","),
            ),
        ]
    }
}

fn unknown_key_problem(key: &str) -> String {
    let matches: Vec<&str> = KEYS
        .iter()
        .copied()
        .filter(|k| k.starts_with(key))
        .collect();
    match matches.as_slice() {
        [] => "unknown key".to_string(),
        m => format!(
            "unknown key (keys are never abbreviated: {key} is the start of {}{})",
            m.iter().take(3).copied().collect::<Vec<_>>().join(", "),
            if m.len() > 3 { ", ..." } else { "" }
        ),
    }
}

/// C's atoi: optional sign and leading digits, else 0 (1.2's reading of numbers).
pub fn atoi(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for b in rest.bytes().take_while(u8::is_ascii_digit) {
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg {
        -n
    } else {
        n
    }
}

/// The units of a duration, largest first: (suffix, seconds).
const DURATION_UNITS: [(char, u64); 5] = [
    ('w', 604_800),
    ('d', 86_400),
    ('h', 3600),
    ('m', 60),
    ('s', 1),
];

/// `90s`, `30m`, `12h`, `7d`, `2w`, a compound of them largest unit first (`1h30m`,
/// `2d3h`, `1w2d`), or bare seconds; `0` = permanent (`None`). One parser for the
/// config keys and the CLI's `--for`.
pub fn parse_duration(s: &str) -> Result<Option<Duration>, String> {
    let t = s.trim();
    // (the message predates compound forms; tests/integration/config_errors.rs pins it)
    let bad = || format!("\"{s}\" is not a duration such as 90s, 30m, 12h, 7d or 0 (permanent)");
    let too_long = || format!("\"{s}\" is longer than 100 years; use 0 for permanent");
    let mut rest = t;
    let mut secs: u64 = 0;
    // Index into DURATION_UNITS of the last unit seen: each later part must be smaller.
    let mut last: Option<usize> = None;
    loop {
        let split = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(split);
        if num.is_empty() || num.len() > 12 {
            return Err(bad());
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        let mut chars = tail.chars();
        let (mult, after) = match chars.next() {
            // bare seconds: only as the whole value
            None if last.is_none() => (1, ""),
            None => return Err(bad()),
            Some(c) => {
                let i = DURATION_UNITS
                    .iter()
                    .position(|(u, _)| *u == c)
                    .ok_or_else(bad)?;
                if last.is_some_and(|l| i <= l) {
                    return Err(bad());
                }
                last = Some(i);
                (DURATION_UNITS[i].1, chars.as_str())
            }
        };
        secs = n
            .checked_mul(mult)
            .and_then(|p| secs.checked_add(p))
            .ok_or_else(too_long)?;
        if after.is_empty() {
            break;
        }
        rest = after;
    }
    if secs > 100 * 365 * 86_400 {
        return Err(too_long());
    }
    Ok((secs > 0).then(|| Duration::from_secs(secs)))
}

/// The shortest exact form of a duration: `90s`, `30m`, `12h`, `7d`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    for (unit, n) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if s >= n && s % n == 0 {
            return format!("{}{unit}", s / n);
        }
    }
    format!("{s}s")
}

/// A duration in days, hours, minutes and seconds, largest first (`2d3h`, `1h30m`,
/// `45s`), showing at most `units` consecutive units from the largest non-zero one and
/// cutting (not rounding) the rest: `usize::MAX` gives the exact form, which
/// [`parse_duration`] reads back; 2 suits a countdown (`1d2h`, never `1d2h3m4s`).
pub fn format_compound(d: Duration, units: usize) -> String {
    let mut left = d.as_secs();
    let mut out = String::new();
    let mut shown = 0;
    for (unit, n) in DURATION_UNITS.iter().skip(1) {
        let q = left / n;
        left %= n;
        if shown > 0 || q > 0 {
            if shown >= units {
                break;
            }
            shown += 1;
            if q > 0 {
                out.push_str(&format!("{q}{unit}"));
            }
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(None));
        assert_eq!(parse_duration("90s"), Ok(Some(Duration::from_secs(90))));
        assert_eq!(parse_duration("45"), Ok(Some(Duration::from_secs(45))));
        assert_eq!(parse_duration("7d"), Ok(Some(Duration::from_secs(604_800))));
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("99999999999d").is_err());
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
    }

    #[test]
    fn compound_durations() {
        let secs = |s: &str| parse_duration(s).map(|d| d.map(|d| d.as_secs()));
        assert_eq!(secs("1h30m"), Ok(Some(5400)));
        assert_eq!(secs("2d3h"), Ok(Some(183_600)));
        assert_eq!(secs("1w2d3h4m5s"), Ok(Some(604_800 + 183_600 + 245)));
        assert_eq!(secs(" 1h0m "), Ok(Some(3600)));
        assert_eq!(secs("1h90m"), Ok(Some(9000)));
        assert_eq!(secs("0h0m"), Ok(None));
        for bad in [
            "30m1h", "1h1h", "1h30", "1h 30m", "h30m", "1h-30m", "1x", "1hh", "", "1.5h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(parse_duration("36500d1s")
            .unwrap_err()
            .contains("100 years"));
        assert!(parse_duration("999999999999w999999999999d").is_err());
        assert!(parse_duration("1y")
            .unwrap_err()
            .contains("is not a duration such as"));
    }

    #[test]
    fn compound_format() {
        let f = |s: u64, n: usize| format_compound(Duration::from_secs(s), n);
        assert_eq!(f(5400, usize::MAX), "1h30m");
        assert_eq!(f(183_600, usize::MAX), "2d3h");
        assert_eq!(f(45, usize::MAX), "45s");
        assert_eq!(f(0, usize::MAX), "0s");
        assert_eq!(f(93_784, usize::MAX), "1d2h3m4s");
        assert_eq!(f(93_784, 2), "1d2h");
        assert_eq!(f(86_401, 2), "1d");
        assert_eq!(f(3661, 2), "1h1m");
        assert_eq!(f(61, 2), "1m1s");
        assert_eq!(f(1_209_600, 2), "14d");
        // the exact form reads back
        for s in [
            1,
            59,
            60,
            61,
            3599,
            3600,
            5400,
            86_399,
            86_400,
            93_784,
            3_153_600_000,
        ] {
            assert_eq!(
                parse_duration(&f(s, usize::MAX)),
                Ok(Some(Duration::from_secs(s))),
                "{s}"
            );
        }
    }

    #[test]
    fn atoi_is_c_atoi() {
        assert_eq!(atoi("12abc"), 12);
        assert_eq!(atoi("abc"), 0);
        assert_eq!(atoi(" -3"), -3);
    }

    /// Every key of KEYS parses from a valid value and shows in the effective settings.
    #[test]
    fn every_key_parses_and_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("key").display().to_string();
        let pw_file = dir.path().join("pw").display().to_string();
        let creds_file = dir.path().join("creds.yaml").display().to_string();
        let ca_file = dir.path().join("ca.pem").display().to_string();
        std::fs::write(
            &ca_file,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        std::fs::write(
            &creds_file,
            "url: http://198.18.77.9:8080/\nlogin: fw1\npassword: pw\n",
        )
        .unwrap();
        std::fs::write(&key_file, "from-file\n").unwrap();
        std::fs::write(&pw_file, "pw-from-file\n").unwrap();
        let values: &[(&str, &str, &str)] = &[
            ("TCP_PORTS", "1,3-4", "1,3-4"),
            ("UDP_PORTS", "7", "7"),
            ("ADVANCED_PORTS_TCP", "100", "100"),
            ("ADVANCED_PORTS_UDP", "200", "200"),
            ("ADVANCED_EXCLUDE_TCP", "113,139", "113,139"),
            ("ADVANCED_EXCLUDE_UDP", "67-68", "67-68"),
            ("IGNORE_FILE", "/x/ignore", "/x/ignore"),
            ("HISTORY_FILE", "/x/history", "/x/history"),
            ("BLOCKED_FILE", "/x/blocked", "/x/blocked"),
            ("RESOLVE_HOST", "1", "1"),
            ("BLOCK_TCP", "2", "2"),
            ("BLOCK_UDP", "1", "1"),
            (
                "KILL_ROUTE",
                "/sbin/route add $TARGET$",
                "/sbin/route add $TARGET$",
            ),
            (
                "KILL_ROUTE_REMOVE",
                "/sbin/route del $TARGET$",
                "/sbin/route del $TARGET$",
            ),
            ("KILL_HOSTS_DENY", "ALL: $TARGET$", "ALL: $TARGET$"),
            ("HOSTS_DENY_FILE", "/x/hosts.deny", "/x/hosts.deny"),
            (
                "KILL_RUN_CMD",
                "/bin/logger $TARGET$ $PORT$ $MODE$",
                "/bin/logger $TARGET$ $PORT$ $MODE$",
            ),
            ("KILL_RUN_CMD_FIRST", "1", "1"),
            ("SCAN_TRIGGER", "3", "3"),
            ("PORT_BANNER", "go away", "go away"),
            ("BLOCK_BACKEND", "command", "command"),
            ("BLOCK_TIMEOUT", "90m", "90m"),
            ("BLOCK_TIMEOUT_MULTIPLIER", "2.5", "2.5"),
            ("BLOCK_TIMEOUT_MAX", "7d", "7d"),
            ("BLOCK_MAX", "500", "500"),
            ("BLOCK_RATE", "20", "20"),
            ("BLOCK_PREFIX_V6", "64", "64"),
            ("BLOCK_STATE_FILE", "/x/blocks", "/x/blocks"),
            ("NFT_HOOKS", "input,forward", "input,forward"),
            ("IPFW_RULE", "1200", "1200"),
            (
                "BLOCK_COMMAND",
                "/usr/local/bin/fw 'block this' $TARGET$",
                "/usr/local/bin/fw 'block this' $TARGET$",
            ),
            (
                "UNBLOCK_COMMAND",
                "/usr/local/bin/fw unblock $TARGET$",
                "/usr/local/bin/fw unblock $TARGET$",
            ),
            ("LOG_RATE_LIMIT", "0", "0"),
            (
                "CROWDSEC_LAPI_URL",
                "http://198.18.77.2:8080",
                "http://198.18.77.2:8080",
            ),
            ("CROWDSEC_BOUNCER_KEY", "k3y", "(set)"),
            ("CROWDSEC_BOUNCER_KEY_FILE", &key_file, &key_file),
            ("CROWDSEC_MACHINE_ID", "fw1", "fw1"),
            ("CROWDSEC_MACHINE_PASSWORD", "pw", "(set)"),
            ("CROWDSEC_MACHINE_PASSWORD_FILE", &pw_file, &pw_file),
            ("CROWDSEC_POLL_INTERVAL", "2s", "2s"),
            ("CROWDSEC_CREDENTIALS_FILE", &creds_file, &creds_file),
            ("CROWDSEC_CA_FILE", &ca_file, &ca_file),
            ("CROWDSEC_ORIGINS", "crowdsec, cscli", "crowdsec,cscli"),
            ("CROWDSEC_SCENARIOS_CONTAINING", "ssh,http", "ssh,http"),
            (
                "CROWDSEC_SCENARIOS_NOT_CONTAINING",
                "http-probing",
                "http-probing",
            ),
        ];
        assert_eq!(values.len(), KEYS.len());
        let text: String = values
            .iter()
            .map(|(k, v, _)| format!("{k}=\"{v}\"\n"))
            .collect();
        for dialect in [Dialect::V2, Dialect::Legacy] {
            let cfg = Config::parse(Path::new("t.conf"), text.as_bytes(), dialect).unwrap();
            let eff = cfg.effective();
            for ((k, _, want), (ek, got)) in values.iter().zip(eff.iter()) {
                assert_eq!(k, ek);
                assert_eq!(got, want, "{k}");
            }
            for (i, k) in KEYS.iter().enumerate() {
                assert_eq!(cfg.lines.get(k), Some(&(i + 1)), "{k}");
            }
        }
    }

    #[test]
    fn templates_render_tokens() {
        let t = Template("x $TARGET$ $PORT$ $MODE$ $TARGET$".into());
        assert_eq!(
            t.render("198.18.0.1".parse().unwrap(), 23, "atcp"),
            "x 198.18.0.1 23 atcp 198.18.0.1"
        );
    }
}

#[cfg(test)]
mod crowdsec_tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let mut c = Config::parse(Path::new("c.conf"), text.as_bytes(), Dialect::V2)?;
        c.validate(Mode::Stealth)?;
        Ok(c)
    }

    #[test]
    fn either_side_alone_or_both() {
        let base = "TCP_PORTS=\"1\"\nCROWDSEC_LAPI_URL=\"http://198.18.77.2:8080\"\nBLOCK_BACKEND=\"hosts-deny\"\n";
        let c = parse(&format!("{base}CROWDSEC_BOUNCER_KEY=\"abc\"\n")).unwrap();
        assert_eq!(c.crowdsec.bouncer_key, Some(Secret("abc".into())));
        assert!(c.crowdsec.machine_id.is_none());
        assert!(
            !format!("{c:?}").contains("abc"),
            "a secret in Debug output"
        );
        let c = parse(&format!(
            "{base}CROWDSEC_MACHINE_ID=\"fw1\"\nCROWDSEC_MACHINE_PASSWORD=\"pw\"\nCROWDSEC_POLL_INTERVAL=\"500\"\n"
        ))
        .unwrap();
        assert_eq!(c.crowdsec.poll_interval, Duration::from_secs(500));
        assert_eq!(c.crowdsec.machine_id.as_deref(), Some("fw1"));
    }

    #[test]
    fn what_does_not_fit_is_named_with_its_line() {
        let cases = [
            (
                "TCP_PORTS=\"1\"\nCROWDSEC_BOUNCER_KEY=\"k\"\n",
                "c.conf:2: CROWDSEC_BOUNCER_KEY",
                "needs CROWDSEC_LAPI_URL",
            ),
            (
                "TCP_PORTS=\"1\"\nCROWDSEC_LAPI_URL=\"http://h:1\"\n",
                "c.conf:2: CROWDSEC_LAPI_URL",
                "neither",
            ),
            (
                "TCP_PORTS=\"1\"\nCROWDSEC_LAPI_URL=\"h:1\"\n",
                "c.conf:2: CROWDSEC_LAPI_URL",
                "http://",
            ),
            (
                "TCP_PORTS=\"1\"\nCROWDSEC_LAPI_URL=\"http://h:1\"\nCROWDSEC_MACHINE_ID=\"m\"\n",
                "c.conf:3: CROWDSEC_MACHINE_ID",
                "needs CROWDSEC_MACHINE_PASSWORD",
            ),
            (
                "TCP_PORTS=\"1\"\nCROWDSEC_POLL_INTERVAL=\"0\"\n",
                "c.conf:2: CROWDSEC_POLL_INTERVAL",
                "longer than 0",
            ),
            (
                "TCP_PORTS=\"1\"\nCROWDSEC_LAPI_URL=\"http://h:1\"\nCROWDSEC_BOUNCER_KEY=\"k\"\n",
                "c.conf:2: CROWDSEC_LAPI_URL",
                "needs BLOCK_BACKEND",
            ),
            (
                "TCP_PORTS=\"1\"\nCROWDSEC_BOUNCER_KEY_FILE=\"/nonexistent/key\"\n",
                "c.conf:2: CROWDSEC_BOUNCER_KEY_FILE",
                "No such file",
            ),
            (
                "TCP_PORTS=\"1\"\nCROWDSEC_CREDENTIALS_FILE=\"/nonexistent/creds.yaml\"\n",
                "c.conf:2: CROWDSEC_CREDENTIALS_FILE",
                "No such file",
            ),
        ];
        for (text, at, what) in cases {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.starts_with(at) && e.contains(what), "{text:?}: {e}");
        }
    }

    #[test]
    fn cscli_credentials_file_names_url_machine_and_password() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("local_api_credentials.yaml");
        std::fs::write(
            &creds,
            "url: http://198.18.77.2:8080/\nlogin: fw1\npassword: 'p:w d'\n",
        )
        .unwrap();
        let base = format!(
            "TCP_PORTS=\"1\"\nBLOCK_BACKEND=\"hosts-deny\"\nCROWDSEC_CREDENTIALS_FILE=\"{}\"\n",
            creds.display()
        );
        let c = parse(&base).unwrap();
        assert_eq!(c.crowdsec.url.as_deref(), Some("http://198.18.77.2:8080"));
        assert_eq!(c.crowdsec.machine_id.as_deref(), Some("fw1"));
        assert_eq!(c.crowdsec.machine_password, Some(Secret("p:w d".into())));
        // an explicit URL wins, wherever it is
        let c = parse(&format!(
            "{base}CROWDSEC_LAPI_URL=\"http://198.18.77.3:8080\"\n"
        ))
        .unwrap();
        assert_eq!(c.crowdsec.url.as_deref(), Some("http://198.18.77.3:8080"));
        let e = parse(&format!("{base}CROWDSEC_MACHINE_ID=\"x\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c.conf:3: CROWDSEC_CREDENTIALS_FILE") && e.contains("set too"),
            "{e}"
        );
        std::fs::write(&creds, "url: http://h:1\nlogin: fw1\n").unwrap();
        let e = parse(&base).unwrap_err().to_string();
        assert!(e.contains("has no \"password:\" line"), "{e}");
        std::fs::write(&creds, "url: h:1\nlogin: a\npassword: b\n").unwrap();
        let e = parse(&base).unwrap_err().to_string();
        assert!(e.contains("is not an http:// or https:// URL"), "{e}");
    }

    #[test]
    fn ca_file_is_checked_the_way_the_daemon_uses_it() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let conf = |url: &str| {
            format!(
                "TCP_PORTS=\"1\"\nBLOCK_BACKEND=\"hosts-deny\"\nCROWDSEC_LAPI_URL=\"{url}\"\nCROWDSEC_BOUNCER_KEY=\"k\"\nCROWDSEC_CA_FILE=\"{}\"\n",
                ca.display()
            )
        };
        std::fs::write(&ca, "not a certificate\n").unwrap();
        let e = parse(&conf("https://198.18.77.2:8443"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c.conf:5: CROWDSEC_CA_FILE") && e.contains("no PEM certificate"),
            "{e}"
        );
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = parse(&conf("https://198.18.77.2:8443"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.conf:5: CROWDSEC_CA_FILE"), "{e}");
        let e = parse(&conf("http://198.18.77.2:8080"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c.conf:5: CROWDSEC_CA_FILE") && e.contains("only for an https://"),
            "{e}"
        );
    }
}
