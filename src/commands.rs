//! Management commands (`check-config`, `list`, `block`, `unblock`, `expire`, `flush`,
//! `reapply`, `status`, `completions`).
//!
//! In: a loaded, validated [`Config`] (or, for `check-config --legacy` and
//! `completions`, only a path or a shell) and the parsed command; arguments were
//! checked by `cli` already. Out: a report on stdout, problems on stderr, and an exit
//! code per portsentry(8): 0, 1 when a step failed, 69 when the store, a backend or the
//! privileges they need are not available (a non-root run is told it needs root), 78
//! for a config that cannot be used. Must not: change anything in `check-config`,
//! `list` or `status`, create a block store that does not exist yet for a command that
//! only reads, or decide what to block (that is the [`Blocklist`]'s job).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use portsentry_blocker::{BlockError, Blocker, Net, Reason, Text};
use serde_json::json;

use crate::blocklist::{
    make_backends, unix_now, Blocklist, BuildError, Lasting, Request, SystemClock,
};
use crate::cli::{Command, CompletionShell, Lifetime};
use crate::config::{format_compound, Config, IgnoreList};
use crate::exit;
use crate::facts::SystemFacts;
use crate::legacy::{LoadError, Loaded};
use crate::logging::legacy::Legacy;
use crate::logging::Logger;
use crate::model::{Dialect, LegacyMode, Mode, Proto};
use crate::store::{Record, Store, StoreError};

/// What `check-config` reports on: the 2.x mode, or a 1.2 mode word.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    V2(Mode),
    Legacy(LegacyMode),
}

/// The effective settings and watched port sets, as `check-config` prints them.
pub fn check_config_report(cfg: &Config, ignore: Option<&IgnoreList>, target: Target) -> String {
    let mut out = String::new();
    let dialect = match cfg.dialect {
        Dialect::V2 => "Portsentry 2.x".to_string(),
        Dialect::Legacy => {
            "Portsentry 1.2 (first occurrence wins, unknown keys ignored)".to_string()
        }
    };
    out.push_str(&format!("# {}: {dialect} config\n", cfg.path.display()));
    for (k, v) in cfg.effective() {
        if v == "(unset)" {
            out.push_str(&format!("#{k} is not set\n"));
        } else {
            out.push_str(&format!("{k}=\"{v}\"\n"));
        }
    }
    match (&cfg.ignore_file, ignore) {
        (Some(p), Some(l)) => out.push_str(&format!(
            "# ignore file {}: {} entr{}\n",
            p.display(),
            l.len(),
            if l.len() == 1 { "y" } else { "ies" }
        )),
        (Some(p), None) => match target {
            Target::V2(_) => {
                out.push_str(&format!("# ignore file {}: cannot be read\n", p.display()))
            }
            // 1.2 mode starts without one and says so at every event.
            Target::Legacy(_) => out.push_str(&format!(
                "# ignore file {}: cannot be read; 1.2 mode starts anyway and logs that it has no ignore file at every event\n",
                p.display()
            )),
        },
        (None, _) => out.push_str("# no ignore file\n"),
    }
    match target {
        Target::V2(mode) => {
            for proto in [Proto::Tcp, Proto::Udp] {
                let set = cfg.watched(proto, mode);
                out.push_str(&format!(
                    "# {proto} ports watched in {mode} mode ({}): {set}\n",
                    set.len()
                ));
            }
        }
        Target::Legacy(m) => {
            let proto = m.proto();
            let set = if m.is_advanced() {
                let n = match proto {
                    Proto::Tcp => cfg.advanced_ports_tcp,
                    Proto::Udp => cfg.advanced_ports_udp,
                }
                .unwrap_or(1024);
                cfg.advanced_set(proto, n)
            } else {
                match proto {
                    Proto::Tcp => cfg.tcp_ports.clone(),
                    Proto::Udp => cfg.udp_ports.clone(),
                }
            };
            let how = if m.is_connect() { "connect" } else { "stealth" };
            let note = if m.is_advanced() {
                ", minus the ports in use at start-up"
            } else {
                ""
            };
            out.push_str(&format!(
                "# -{}: {proto} ports watched in {how} mode ({}){note}: {set}\n",
                m.word(),
                set.len()
            ));
        }
    }
    if cfg.ignore_file.is_none() || ignore.is_some() || matches!(target, Target::Legacy(_)) {
        out.push_str("# OK\n");
    }
    out
}

/// Prints the report; returns the exit code.
pub fn check_config(cfg: &Config, ignore: Option<&IgnoreList>, target: Target) -> i32 {
    let mut report = check_config_report(cfg, ignore, target);
    let ok_line = report.ends_with("# OK\n");
    if ok_line {
        report.truncate(report.len() - "# OK\n".len());
    }
    // Each backend resolved and checked the way the daemon will use it on this machine
    // (read-only probes): a backend that cannot work here fails the check.
    let mut unusable = Vec::new();
    for name in &cfg.block_backend {
        let (real, why) = crate::blocklist::backends::resolve(*name);
        let shown = if why.is_empty() {
            real.to_string()
        } else {
            format!("{name} = {real} ({why})")
        };
        match crate::blocklist::backends::check_usable(real, cfg) {
            Ok(()) => report.push_str(&format!("# block backend {shown}: usable here\n")),
            Err(e) => {
                report.push_str(&format!("# block backend {shown}: NOT usable here\n"));
                unusable.push(e.to_string());
            }
        }
    }
    // BLOCKED_FILE as the 2.x daemon will use it: never some other file it would cut.
    if let (Target::V2(_), Some(p)) = (target, &cfg.blocked_file) {
        if let Ok(data) = crate::fsutil::read_regular(p) {
            let (_, good) = crate::respond::files::parse_records(&data);
            if !crate::respond::files::is_partial_record(&data[good..]) {
                unusable.push(format!(
                    "BLOCKED_FILE {}: not a portsentry blocked file; the daemon would refuse it",
                    p.display()
                ));
            }
        }
    }
    if ok_line && unusable.is_empty() {
        report.push_str("# OK\n");
    }
    let mut o = std::io::stdout().lock();
    if o.write_all(report.as_bytes())
        .and_then(|_| o.flush())
        .is_err()
    {
        return exit::FAILURE;
    }
    if !unusable.is_empty() {
        for e in unusable {
            eprintln!("{}: {e}", cfg.path.display());
        }
        return exit::CONFIG;
    }
    exit::OK
}

/// `check-config --legacy MODE`: loads `path` exactly as `portsentry -MODE` does
/// ([`crate::legacy::load_config`]), prints the lines 1.2 mode would log while loading
/// it (as `# -MODE logs: ...` comments), then the effective settings and the mode's port
/// set. On failure it prints the lines 1.2 mode would log and exits 78 with the reason
/// on stderr. Nothing is created or changed (1.2 mode would create the blocked file).
pub fn check_legacy_config(path: &Path, mode: LegacyMode) -> i32 {
    let tag = |line: &str| format!("# -{} logs: {line}\n", mode.word());
    let mut out = String::new();
    let code = match crate::legacy::load_config(path, mode) {
        Ok(Loaded { cfg, said }) => {
            let mut logged = said;
            logged.extend(cfg.warnings.iter().map(|w| Legacy::Admin(w).to_string()));
            // The ignore file as 1.2 mode reads it: a problem is logged and skipped; an
            // unreadable file is no reason not to start.
            let ignore = cfg.ignore_file.as_ref().and_then(|p| {
                crate::fsutil::read_regular(p)
                    .ok()
                    .map(|data| crate::legacy::files::parse_ignore(p, &data))
            });
            if let Some((_, problems)) = &ignore {
                logged.extend(problems.iter().map(|p| Legacy::Admin(p).to_string()));
            }
            for line in &logged {
                out.push_str(&tag(line));
            }
            if !print(&out) {
                return exit::FAILURE;
            }
            return check_config(
                &cfg,
                ignore.as_ref().map(|(list, _)| list),
                Target::Legacy(mode),
            );
        }
        Err((said, e)) => {
            for line in &said {
                out.push_str(&tag(line));
            }
            for line in legacy_failure_lines(&e) {
                out.push_str(&tag(&line));
            }
            eprintln!("{}", legacy_failure_reason(path, mode, &e));
            exit::CONFIG
        }
    };
    if !print(&out) {
        return exit::FAILURE;
    }
    code
}

/// The lines 1.2 mode logs when its config cannot be used (as `legacy` logs them).
fn legacy_failure_lines(e: &LoadError) -> Vec<String> {
    let two = |a: Legacy, b: Legacy| vec![a.to_string(), b.to_string()];
    match e {
        LoadError::Missing(p) => two(
            Legacy::CannotOpenConfig(&p.display().to_string()),
            Legacy::ConfigMissing,
        ),
        LoadError::Broken(m) => two(Legacy::Admin(m), Legacy::Corrupted),
        LoadError::Mandatory(k) => two(Legacy::CannotRetrieve(k), Legacy::Corrupted),
        LoadError::NoPorts(p) => two(Legacy::NoPortsOption(*p), Legacy::ModeFailed),
    }
}

/// Why a config cannot be used in 1.2 mode, in one line for stderr.
fn legacy_failure_reason(path: &Path, mode: LegacyMode, e: &LoadError) -> String {
    match e {
        LoadError::Missing(p) => format!("{}: cannot read the config file", p.display()),
        // already `path:line: KEY: message`
        LoadError::Broken(m) => m.clone(),
        LoadError::Mandatory(k) => format!(
            "{}: {k} is missing or unreadable (unquoted); 1.2 mode needs it",
            path.display()
        ),
        LoadError::NoPorts(p) => format!(
            "{}: {p}_PORTS is missing or unreadable (unquoted); -{} needs it",
            path.display(),
            mode.word()
        ),
    }
}

/// Writes `text` to stdout; false if that failed (a closed pipe).
fn print(text: &str) -> bool {
    let mut o = io::stdout().lock();
    o.write_all(text.as_bytes()).and_then(|_| o.flush()).is_ok()
}

/// `completions SHELL`: the completion script on stdout.
pub fn completions(shell: CompletionShell) -> i32 {
    let text = crate::cli::completions(shell);
    let mut o = io::stdout().lock();
    match o.write_all(&text).and_then(|_| o.flush()) {
        Ok(()) => exit::OK,
        Err(_) => exit::FAILURE,
    }
}

/// Why a block-store command could not run (exit 69): one variant per step.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Creating the directory of BLOCK_STATE_FILE failed.
    #[error("cannot create the state directory {}", path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Looking whether the store exists, or which daemons run, failed.
    #[error("cannot look into {}", path.display())]
    Inspect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Opening or reading the block store failed.
    #[error(transparent)]
    Store(StoreError),
    /// Building a backend failed.
    #[error(transparent)]
    Build(BuildError),
    /// Setting up a backend failed.
    #[error(transparent)]
    Backend(BlockError),
    /// Writing BLOCKED_FILE failed.
    #[error("cannot write BLOCKED_FILE {}", path.display())]
    BlockedFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// One of the above, refused for lack of privileges to a non-root user.
    #[error("{command} needs root{hint}")]
    NeedsRoot {
        command: &'static str,
        /// Which capability or access, if one is enough: ` (CAP_NET_ADMIN, ...)`.
        hint: String,
        #[source]
        cause: Box<CommandError>,
    },
}

/// An error and its causes on one line, each cause once.
fn render(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        cur = c.source();
    }
    text
}

/// Whether an error text is the kernel's refusal for lack of privileges.
fn says_denied(text: &str) -> bool {
    text.contains("Permission denied") || text.contains("Operation not permitted")
}

/// Whether `e` (or a cause of it) is EACCES or EPERM.
fn permission_denied(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::PermissionDenied {
                return true;
            }
        }
        if let Some(errno) = c.downcast_ref::<nix::errno::Errno>() {
            if matches!(errno, nix::errno::Errno::EPERM | nix::errno::Errno::EACCES) {
                return true;
            }
        }
        cur = c.source();
    }
    // Some backends keep a tool's or the kernel's message as text only.
    says_denied(&render(e))
}

/// What a non-root user lacks for a backend: the capability, or the access.
fn backend_hint(backend: &str) -> String {
    match backend {
        "nft" | "route" if cfg!(target_os = "linux") => {
            format!(" (CAP_NET_ADMIN, for the {backend} backend)")
        }
        "hosts-deny" => " (or write access to HOSTS_DENY_FILE, for the hosts-deny backend)".into(),
        "command" => " (or whatever BLOCK_COMMAND needs, for the command backend)".into(),
        other => format!(" (for the {other} backend)"),
    }
}

impl CommandError {
    /// For a non-root user, a refusal for lack of privileges says so first.
    fn privileges(self, command: &'static str) -> CommandError {
        if nix::unistd::geteuid().is_root() || !permission_denied(&self) {
            return self;
        }
        let hint = match &self {
            CommandError::Backend(e) => backend_hint(e.backend),
            CommandError::Build(BuildError::Open(_)) => backend_hint("nft"),
            CommandError::Build(BuildError::Unusable { name, .. }) => {
                backend_hint(&name.to_string())
            }
            _ => " (or write access to the block store's directory)".into(),
        };
        CommandError::NeedsRoot {
            command,
            hint,
            cause: Box::new(self),
        }
    }
}

/// The name of a command, for messages.
fn command_name(cmd: &Command) -> &'static str {
    match cmd {
        Command::CheckConfig { .. } => "check-config",
        Command::List { .. } => "list",
        Command::Block { .. } => "block",
        Command::Unblock { .. } => "unblock",
        Command::Expire { .. } => "expire",
        Command::Flush => "flush",
        Command::Reapply => "reapply",
        Command::Status { .. } => "status",
        Command::Completions { .. } => "completions",
    }
}

/// The block-store commands: `list`, `block`, `unblock`, `expire`, `flush`, `reapply`,
/// `status`. They go through the same [`Blocklist`] as the daemon (its never-block
/// rules, its store, its backends) and work whether or not the daemon runs: the store
/// is locked per change, and a running daemon follows it within a second.
pub fn store_command(cfg: &Config, ignore: &IgnoreList, cmd: &Command) -> i32 {
    let name = command_name(cmd);
    match run_store_command(cfg, ignore, cmd) {
        Ok(code) => code,
        Err(e) => {
            let e = e.privileges(name);
            eprintln!("portsentry: {}", render(&e));
            exit::UNAVAILABLE
        }
    }
}

/// Remaining time as `list` shows it: `1h30m`, `2d3h`, `45s`, `permanent`, `expired`.
fn remaining_text(expires: Option<u64>, now: u64) -> String {
    match expires {
        None => "permanent".to_string(),
        Some(e) if e <= now => "expired".to_string(),
        Some(e) => format_compound(Duration::from_secs(e - now), 2),
    }
}

/// A unix time as local time, `2026-12-02 23:10:05`.
fn local_time(epoch: u64) -> String {
    use chrono::TimeZone;
    i64::try_from(epoch)
        .ok()
        .and_then(|t| chrono::Local.timestamp_opt(t, 0).single())
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| format!("@{epoch}"))
}

/// Who made a block: `crowdsec` for a decision of the CrowdSec LAPI, `cli` for
/// `portsentry block` (the store records those with scan `manual` and no protocol),
/// `portsentry` for a detection.
fn origin(r: &Record) -> &'static str {
    if crate::share::from_lapi(r) {
        "crowdsec"
    } else if r.scan == "manual" && r.protocol.is_empty() {
        "cli"
    } else {
        "portsentry"
    }
}

/// Why: the scan as logged, with protocol/port when there is one.
fn reason(r: &Record) -> String {
    if r.protocol.is_empty() {
        r.scan.to_string()
    } else {
        format!("{} ({}/{})", r.scan, r.protocol, r.port)
    }
}

fn family(net: &Net) -> u8 {
    if net.addr().is_ipv4() {
        4
    } else {
        6
    }
}

/// The `list` table: a header, then one row per record, columns padded to fit.
fn list_table(recs: &[&Record], now: u64) -> String {
    let mut rows: Vec<[String; 6]> = vec![[
        "ADDRESS".into(),
        "EXPIRES".into(),
        "REMAINING".into(),
        "ORIGIN".into(),
        "BACKENDS".into(),
        "REASON".into(),
    ]];
    for r in recs {
        rows.push([
            r.net.to_string(),
            r.expires.map_or_else(|| "never".to_string(), local_time),
            remaining_text(r.expires, now),
            origin(r).to_string(),
            r.backends.join(","),
            reason(r),
        ]);
    }
    let mut width = [0usize; 6];
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < row.len() {
                line.push_str(&format!("{cell:<w$}  ", w = width[i]));
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One record as `list --json` prints it (the schema is in portsentry(8)).
fn list_json(r: &Record, now: u64) -> serde_json::Value {
    json!({
        "net": r.net.to_string(),
        "family": family(&r.net),
        "expires": r.expires,
        "remaining": r.expires.map(|e| e.saturating_sub(now)),
        "origin": origin(r),
        "backends": r.backends,
        "protocol": r.protocol,
        "port": r.port,
        "scan": r.scan,
        "hits": r.hits,
        "offences": r.offences,
        "first_seen": r.first_seen,
        "last_seen": r.last_seen,
    })
}

/// BLOCKED_FILE is the 2.x view of the store.
fn sync_blocked_file(cfg: &Config, b: &Blocklist) -> Result<(), CommandError> {
    let Some(p) = &cfg.blocked_file else {
        return Ok(());
    };
    let data: Vec<u8> = b
        .active_addrs()
        .iter()
        .flat_map(|ip| crate::respond::files::record(*ip))
        .collect();
    crate::fsutil::atomic_write(p, &data, 0o600).map_err(|source| CommandError::BlockedFile {
        path: p.clone(),
        source,
    })
}

/// The directory BLOCK_STATE_FILE lives in.
fn state_dir(cfg: &Config) -> PathBuf {
    match cfg.block_state_file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Creates the state directory if it is missing: mode 0700 like the systemd units'
/// `StateDirectoryMode=0700` (the store holds who scanned us); missing parents get the
/// usual mode. An existing directory is left as it is.
fn ensure_state_dir(cfg: &Config) -> Result<(), CommandError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = state_dir(cfg);
    let failed = |source| CommandError::StateDir {
        path: dir.clone(),
        source,
    };
    if dir.try_exists().map_err(failed)? {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {
            // exactly 0700, whatever the umask
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(failed)
        }
        // made by someone else meanwhile
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(failed(e)),
    }
}

/// The store, if there is one: a command that only reads never creates it.
fn read_store(cfg: &Config) -> Result<Option<Store>, CommandError> {
    let path = &cfg.block_state_file;
    let exists = path.try_exists().map_err(|source| CommandError::Inspect {
        path: path.clone(),
        source,
    })?;
    if !exists {
        return Ok(None);
    }
    let (store, warnings) = Store::open(path).map_err(CommandError::Store)?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    Ok(Some(store))
}

/// The blocklist over the store (created, in a 0700 directory, if missing), with the
/// configured backends (`with_backends`) or none.
fn open(cfg: &Config, ignore: &IgnoreList, with_backends: bool) -> Result<Blocklist, CommandError> {
    ensure_state_dir(cfg)?;
    let backends = if with_backends {
        make_backends(cfg).map_err(CommandError::Build)?
    } else {
        Vec::new()
    };
    // A silent logger: the commands print their own report.
    let log = Arc::new(Logger::new(false, false, false, false));
    let facts = SystemFacts::start(false, false);
    let mut b = Blocklist::open(
        cfg,
        backends,
        Arc::new(SystemClock),
        facts,
        ignore.clone(),
        log,
    )
    .map_err(CommandError::Store)?;
    for w in b.take_store_warnings() {
        eprintln!("warning: {w}");
    }
    Ok(b)
}

/// Prints step failures; the exit code: 0, 1 if a step failed, 69 if a non-root user
/// was refused for lack of privileges.
fn finish(command: &str, errors: &[String]) -> i32 {
    for e in errors {
        eprintln!("portsentry: {e}");
    }
    if errors.is_empty() {
        exit::OK
    } else if !nix::unistd::geteuid().is_root() && errors.iter().any(|e| says_denied(e)) {
        eprintln!("portsentry: {command} needs root");
        exit::UNAVAILABLE
    } else {
        exit::FAILURE
    }
}

fn run_store_command(
    cfg: &Config,
    ignore: &IgnoreList,
    cmd: &Command,
) -> Result<i32, CommandError> {
    let now = unix_now();
    let name = command_name(cmd);
    match cmd {
        Command::List { json } => {
            let store = read_store(cfg)?;
            let recs: Vec<&Record> = store.iter().flat_map(|s| s.active()).collect();
            let mut text = String::new();
            if *json {
                for r in &recs {
                    text.push_str(&list_json(r, now).to_string());
                    text.push('\n');
                }
            } else {
                text = list_table(&recs, now);
            }
            Ok(if print(&text) {
                exit::OK
            } else {
                exit::FAILURE
            })
        }
        Command::Block { addr, duration } => {
            let net = *addr;
            let timeout = match duration {
                Some(Lifetime(d)) => *d,
                None => cfg.block_timeout,
            };
            let mut b = open(cfg, ignore, true)?;
            // Refused before anything is touched.
            if let Some(why) = b.protection(&net) {
                eprintln!("portsentry: {net} is not blocked: {why}");
                return Ok(exit::FAILURE);
            }
            if !b.has_backends() {
                eprintln!(
                    "portsentry: {net} is not blocked: no block backend is configured (BLOCK_BACKEND)"
                );
                return Ok(exit::FAILURE);
            }
            b.init_backends().map_err(CommandError::Backend)?;
            let req = Request {
                net,
                widen: false,
                reason: Reason {
                    protocol: Text::default(),
                    port: 0,
                    scan: "manual".into(),
                },
                duration: Lasting::Fixed(timeout),
            };
            match b.block(req) {
                Ok(placed) => {
                    sync_blocked_file(cfg, &b)?;
                    let how_long = placed.timeout.map_or_else(
                        || "permanent".to_string(),
                        |d| format_compound(d, usize::MAX),
                    );
                    println!(
                        "blocked {} {how_long} via {}",
                        placed.net,
                        placed.held_by.join(",")
                    );
                    Ok(finish(name, &placed.errors))
                }
                Err(refusal) => {
                    eprintln!("portsentry: {refusal}");
                    match &refusal {
                        // every backend refused for lack of privileges: say so
                        crate::blocklist::Refusal::Failed { errors, .. }
                            if !nix::unistd::geteuid().is_root()
                                && errors.iter().any(|e| says_denied(e)) =>
                        {
                            eprintln!("portsentry: {name} needs root");
                            Ok(exit::UNAVAILABLE)
                        }
                        _ => Ok(exit::FAILURE),
                    }
                }
            }
        }
        Command::Unblock { addrs, all } => {
            let Some(store) = read_store(cfg)? else {
                // Nothing was ever blocked here: nothing to create, nothing to lift.
                if *all {
                    println!("no active blocks");
                }
                for net in addrs {
                    println!("was not blocked: {net}");
                }
                return Ok(exit::OK);
            };
            let nets: Vec<Net> = if *all {
                store.active().map(|r| r.net).collect()
            } else {
                addrs.clone()
            };
            drop(store);
            if nets.is_empty() {
                println!("no active blocks");
                return Ok(exit::OK);
            }
            let mut b = open(cfg, ignore, true)?;
            b.init_backends().map_err(CommandError::Backend)?;
            let mut errors = Vec::new();
            for net in nets {
                match b.unblock(&net) {
                    Ok(true) => println!("unblocked {net}"),
                    Ok(false) => println!("was not blocked: {net}"),
                    Err(errs) => {
                        errors.extend(errs);
                        println!("unblocked {net}");
                    }
                }
            }
            sync_blocked_file(cfg, &b)?;
            Ok(finish(name, &errors))
        }
        Command::Expire { dry_run } => {
            let Some(store) = read_store(cfg)? else {
                return Ok(exit::OK);
            };
            let due = store.expired(now);
            let mut errors = Vec::new();
            let mut stay: Vec<Record> = store
                .active()
                .filter(|r| !due.contains(&r.net))
                .cloned()
                .collect();
            drop(store);
            if !due.is_empty() && !dry_run {
                let mut b = open(cfg, ignore, true)?;
                b.init_backends().map_err(CommandError::Backend)?;
                let (_, errs) = b.expire();
                errors = errs;
                sync_blocked_file(cfg, &b)?;
                stay = b.store().active().cloned().collect();
            }
            if !due.is_empty() {
                for net in &due {
                    println!("{} {net}", if *dry_run { "would lift" } else { "lifted" });
                }
                println!("{} block(s) stay", stay.len());
                for r in &stay {
                    println!(
                        "  {}\t{}\t{}",
                        r.net,
                        remaining_text(r.expires, now),
                        r.scan
                    );
                }
            }
            Ok(finish(name, &errors))
        }
        Command::Flush => {
            let mut b = open(cfg, ignore, true)?;
            // flush needs no set-up; but a non-root user is told plainly that it needs
            // root rather than shown each backend's refusal
            if !nix::unistd::geteuid().is_root() {
                if let Err(e) = b.init_backends() {
                    if permission_denied(&e) {
                        return Err(CommandError::Backend(e));
                    }
                }
            }
            let (n, errs) = b.flush();
            sync_blocked_file(cfg, &b)?;
            println!("flushed {n} block(s)");
            Ok(finish(name, &errs))
        }
        Command::Reapply => {
            let mut b = open(cfg, ignore, true)?;
            b.init_backends().map_err(CommandError::Backend)?;
            let (n, errs) = b.reapply();
            println!(
                "reapplied {n} block(s) to {} backend(s)",
                b.backend_names().len()
            );
            Ok(finish(name, &errs))
        }
        Command::Status { json } => status(cfg, *json),
        Command::CheckConfig { .. } | Command::Completions { .. } => Ok(exit::OK),
    }
}

/// One daemon that runs with this store.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Instance {
    /// `2.x`, or the 1.2 mode word.
    mode: String,
    pid: Option<u32>,
}

/// Counts of the store's active blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Counts {
    active: usize,
    ipv4: usize,
    ipv6: usize,
    permanent: usize,
    /// backend name -> stored blocks it holds
    by_backend: Vec<(String, usize)>,
    /// origin (`portsentry`, `cli`, `crowdsec`) -> active blocks
    by_origin: Vec<(&'static str, usize)>,
}

impl Counts {
    fn of<'a>(recs: impl Iterator<Item = &'a Record>) -> Counts {
        let mut c = Counts::default();
        for r in recs {
            c.active += 1;
            let o = origin(r);
            match c.by_origin.iter_mut().find(|(n, _)| *n == o) {
                Some((_, k)) => *k += 1,
                None => c.by_origin.push((o, 1)),
            }
            if family(&r.net) == 4 {
                c.ipv4 += 1;
            } else {
                c.ipv6 += 1;
            }
            if r.expires.is_none() {
                c.permanent += 1;
            }
            for b in r.backends.iter() {
                match c.by_backend.iter_mut().find(|(n, _)| n == b) {
                    Some((_, k)) => *k += 1,
                    None => c.by_backend.push((b.to_string(), 1)),
                }
            }
        }
        c
    }

    fn stored_in(&self, backend: &str) -> usize {
        self.by_backend
            .iter()
            .find(|(n, _)| n == backend)
            .map_or(0, |(_, k)| *k)
    }
}

/// One backend as `status` found it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Probe {
    name: String,
    /// Entries held; `None` when our objects are not set up and nothing needs them.
    held: Result<Option<usize>, String>,
    /// What is wrong with our objects (tampering not yet repaired): a flushed chain, or
    /// fewer entries than the store's unexpired blocks in it.
    degraded: Vec<String>,
}

/// What `status` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Status {
    instances: Vec<Instance>,
    store: PathBuf,
    /// `None`: no store yet.
    counts: Option<Counts>,
    /// The configured backends, or why they could not be built.
    backends: Result<Vec<Probe>, String>,
    /// CrowdSec sharing, when configured: what the daemon last wrote about it.
    lapi: Option<Option<crate::share::Status>>,
}

impl Status {
    fn ok(&self) -> bool {
        match &self.backends {
            Ok(probes) => probes
                .iter()
                .all(|p| p.held.is_ok() && p.degraded.is_empty()),
            Err(_) => false,
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        if self.instances.is_empty() {
            out.push_str("daemon: not running\n");
        }
        for i in &self.instances {
            let pid = i
                .pid
                .map_or_else(|| "unknown".to_string(), |p| p.to_string());
            out.push_str(&format!("daemon: running ({}, pid {pid})\n", i.mode));
        }
        let store = self.store.display();
        match &self.counts {
            None => out.push_str(&format!("store {store}: not created yet (no blocks)\n")),
            Some(c) => {
                out.push_str(&format!("store {store}: {} active block(s)", c.active));
                if c.active > 0 {
                    out.push_str(&format!(
                        " ({} IPv4, {} IPv6, {} permanent)",
                        c.ipv4, c.ipv6, c.permanent
                    ));
                    let origins: Vec<String> = c
                        .by_origin
                        .iter()
                        .map(|(o, n)| format!("{o} {n}"))
                        .collect();
                    out.push_str(&format!("; by origin: {}", origins.join(", ")));
                }
                out.push('\n');
            }
        }
        match &self.lapi {
            None => {}
            Some(None) => {
                out.push_str("crowdsec: configured; no daemon has reported on the LAPI yet\n")
            }
            Some(Some(l)) => {
                let side = |name: &str, s: &Option<crate::share::Side>, what: &str| match s {
                    None => format!("{name} off"),
                    Some(s) => {
                        let last = s.last_ok.map_or_else(
                            || "never".to_string(),
                            |t| format!("{}s ago", unix_now().saturating_sub(t)),
                        );
                        let state = match &s.error {
                            None => "ok".to_string(),
                            Some(e) => format!("FAILING ({e})"),
                        };
                        format!("{name} {state}, last success {last}, {} {what}", s.done)
                    }
                };
                let mut line = format!(
                    "crowdsec: LAPI {}: {}; {}",
                    l.url,
                    side("pull", &l.pull, "decisions applied"),
                    side("push", &l.push, "blocks pushed")
                );
                if let Some(p) = &l.push {
                    line.push_str(&format!(", {} waiting", p.pending));
                }
                out.push_str(&line);
                out.push('\n');
            }
        }
        match &self.backends {
            Err(e) => out.push_str(&format!("backends: {e}\n")),
            Ok(probes) if probes.is_empty() => {
                out.push_str("backends: none configured (BLOCK_BACKEND)\n")
            }
            Ok(probes) => {
                let names: Vec<&str> = probes.iter().map(|p| p.name.as_str()).collect();
                out.push_str(&format!("backends: {}\n", names.join(", ")));
                for p in probes {
                    let stored = self.counts.as_ref().map_or(0, |c| c.stored_in(&p.name));
                    match &p.held {
                        Ok(_) if !p.degraded.is_empty() => out.push_str(&format!(
                            "backend {}: DEGRADED: {} (a running daemon repairs this within a second; without one, run `portsentry reapply`)\n",
                            p.name,
                            p.degraded.join("; ")
                        )),
                        Ok(Some(n)) => out.push_str(&format!(
                            "backend {}: ok, {n} entries held ({stored} in the store)\n",
                            p.name
                        )),
                        Ok(None) => out.push_str(&format!(
                            "backend {}: ok, not set up yet (nothing to hold)\n",
                            p.name
                        )),
                        Err(e) => out.push_str(&format!("backend {}: error: {e}\n", p.name)),
                    }
                }
            }
        }
        out
    }

    /// The `status --json` object (the schema is in portsentry(8)).
    fn json(&self) -> serde_json::Value {
        let counts = self.counts.clone().unwrap_or_default();
        let backends = match &self.backends {
            Ok(probes) => probes
                .iter()
                .map(|p| {
                    json!({
                        "name": p.name,
                        "ok": p.held.is_ok() && p.degraded.is_empty(),
                        "degraded": p.degraded,
                        "set_up": !matches!(p.held, Ok(None)),
                        "held": p.held.as_ref().ok().copied().flatten(),
                        "stored": counts.stored_in(&p.name),
                        "error": p.held.as_ref().err(),
                    })
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        json!({
            "ok": self.ok(),
            "daemon": {
                "running": !self.instances.is_empty(),
                "instances": self.instances.iter().map(|i| json!({
                    "mode": i.mode,
                    "pid": i.pid,
                })).collect::<Vec<_>>(),
            },
            "store": {
                "path": self.store.display().to_string(),
                "exists": self.counts.is_some(),
                "active": counts.active,
                "ipv4": counts.ipv4,
                "ipv6": counts.ipv6,
                "permanent": counts.permanent,
                "by_origin": counts.by_origin.iter().map(|(o, n)| (o.to_string(), json!(n))).collect::<serde_json::Map<String, serde_json::Value>>(),
            },
            "crowdsec": match &self.lapi {
                None => serde_json::Value::Null,
                Some(None) => json!({}),
                Some(Some(l)) => json!(l),
            },
            "backends": backends,
            "backend_error": self.backends.as_ref().err(),
        })
    }
}

/// Each backend's health, like [`Blocklist::health`] but without a store (`status`
/// must not create one). Missing objects are fine while nothing `needed` them: no
/// active block and no daemon (a fresh host, or after `flush`). Also returns the first
/// refusal for lack of privileges.
fn probe(
    backends: Vec<Box<dyn Blocker>>,
    needed: bool,
    unexpired: &Counts,
) -> (Vec<Probe>, Option<CommandError>) {
    let mut denied = None;
    let mut out = Vec::new();
    for mut be in backends {
        let state = match be.vanished() {
            Ok(true) => Ok(None),
            Ok(false) => be.list().map(|held| Some(held.len())),
            Err(e) => Err(e),
        };
        let held = match state {
            Ok(None) if needed => {
                Err("our objects are missing (run `portsentry reapply`)".to_string())
            }
            Ok(held) => Ok(held),
            Err(e) => {
                let text = render(&e);
                if denied.is_none() && permission_denied(&e) {
                    denied = Some(CommandError::Backend(e));
                }
                Err(text)
            }
        };
        let mut degraded = Vec::new();
        if let Ok(Some(n)) = held {
            let stored = unexpired.stored_in(be.name());
            match crate::blocklist::damage(be.as_mut(), n, stored) {
                Ok(d) => degraded = d,
                Err(e) => degraded.push(render(&e)),
            }
        }
        out.push(Probe {
            name: be.name().to_string(),
            held,
            degraded,
        });
    }
    (out, denied)
}

/// `status [--json]`: which daemons run with this store, the store's counts, each
/// backend's health. Exit 0 when nothing needs attention (a fresh host with no store
/// and no daemon included), 1 when a backend does, 69 when it cannot look.
fn status(cfg: &Config, json: bool) -> Result<i32, CommandError> {
    let path = &cfg.block_state_file;
    // The daemons' pid files are beside the store: a directory we may not read would
    // read as "not running".
    let dir = state_dir(cfg);
    if let Err(source) = std::fs::read_dir(&dir) {
        if source.kind() != io::ErrorKind::NotFound {
            return Err(CommandError::Inspect { path: dir, source });
        }
    }
    let instances: Vec<Instance> = crate::pidfile::running(path)
        .into_iter()
        .map(|(mode, pid)| Instance {
            mode,
            pid: pid.parse().ok(),
        })
        .collect();
    let store = read_store(cfg)?;
    let counts = store.as_ref().map(|s| Counts::of(s.active()));
    // what the backends must hold now: blocks that will not expire within a second
    let unexpired = store
        .as_ref()
        .map(|s| {
            let soon = unix_now() + 1;
            Counts::of(s.active().filter(|r| r.expires.is_none_or(|e| e > soon)))
        })
        .unwrap_or_default();
    drop(store);
    let needed = !instances.is_empty() || counts.as_ref().is_some_and(|c| c.active > 0);
    let (backends, denied) = match make_backends(cfg) {
        Ok(list) => {
            let (probes, denied) = probe(list, needed, &unexpired);
            (Ok(probes), denied)
        }
        Err(e) => {
            let text = render(&e);
            let denied = permission_denied(&e).then_some(CommandError::Build(e));
            (Err(text), denied)
        }
    };
    let lapi = cfg
        .crowdsec
        .enabled()
        .then(|| crate::share::read_status(path).filter(|_| !instances.is_empty()));
    let st = Status {
        instances,
        store: path.clone(),
        counts,
        backends,
        lapi,
    };
    let text = if json {
        format!("{}\n", st.json())
    } else {
        st.text()
    };
    if !print(&text) {
        return Ok(exit::FAILURE);
    }
    if let Some(e) = denied.map(|e| e.privileges("status")) {
        if matches!(e, CommandError::NeedsRoot { .. }) {
            eprintln!("portsentry: {}", render(&e));
            return Ok(exit::UNAVAILABLE);
        }
    }
    Ok(if st.ok() { exit::OK } else { exit::FAILURE })
}
