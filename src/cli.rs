//! The command line: Portsentry 2.x flags, our additions, management commands, and the
//! 1.2 mode words.
//!
//! In: argv. Out: an [`Invocation`] or a [`UsageError`] (with the exit code to use).
//! It only parses and checks combinations; it reads no file and starts nothing.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::TypedValueParser as _;
use clap::{ArgAction, CommandFactory, Parser, Subcommand, ValueEnum};
use portsentry_blocker::Net;

use crate::config::{self, BackendName};
use crate::exit;
use crate::model::Mode;
use crate::model::{Interfaces, LegacyMode};

/// Stealth capture method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    Pcap,
    Raw,
}

/// Log channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogOutput {
    Stdout,
    Syslog,
}

#[derive(Debug, Parser)]
#[command(
    name = "portsentry",
    version,
    about = "Detects port scans in real time and blocks the scanner in the host's firewall",
    long_about = None,
    args_override_self = true,
    after_help = "Portsentry 1.2 command lines also work: portsentry -tcp|-udp|-stcp|-sudp|-atcp|-audp [-c PATH]"
)]
pub struct Cli {
    /// Stealth mode: watch packets to the monitored ports (the default)
    #[arg(long, action = ArgAction::Count)]
    pub stealth: u8,
    /// Connect mode: bind the monitored ports
    #[arg(long, action = ArgAction::Count)]
    pub connect: u8,
    /// Stealth capture method (raw is Linux only)
    #[arg(short = 'm', long, value_enum, value_name = "pcap|raw")]
    pub method: Option<Method>,
    /// Capture interface: ALL, ALL_NLO (default), any, or a device name; repeatable
    #[arg(short = 'i', long = "interface", value_name = "NAME")]
    pub interface: Vec<String>,
    /// Where log lines go; repeatable (both = both)
    #[arg(
        short = 'l',
        long = "logoutput",
        value_enum,
        value_name = "stdout|syslog"
    )]
    pub logoutput: Vec<LogOutput>,
    /// Config file
    #[arg(short = 'c', long = "configfile", value_name = "PATH", global = true)]
    pub configfile: Option<PathBuf>,
    /// Do not skip events whose source is the destination address
    #[arg(short = 'L', long)]
    pub disable_local_check: bool,
    /// Do not skip packets to ports where a local service listens
    #[arg(short = 'S', long)]
    pub disable_service_check: bool,
    /// Detach and log to syslog only; returns once the daemon listens (non-zero if it could not start)
    #[arg(short = 'D', long)]
    pub daemon: bool,
    /// Write the daemon's pid to PATH once it listens; removed at exit
    #[arg(long, value_name = "PATH")]
    pub pidfile: Option<PathBuf>,
    /// Debug output (lines start with "debug: ")
    #[arg(short = 'd', long)]
    pub debug: bool,
    /// Verbose output
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Native block backends, overriding BLOCK_BACKEND: auto, nft, pf, ipfw, route, hosts-deny, command
    #[arg(long = "block-backend", value_name = "NAME[,NAME...]")]
    pub block_backend: Option<String>,
    /// Run the detection engine over a recorded capture and print what it would log
    #[arg(long, value_name = "FILE.pcap")]
    pub replay: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// Validate the config and ignore file and print the effective settings
    CheckConfig {
        /// Check it under the Portsentry 1.2 rules, as `portsentry -MODE` loads it
        #[arg(long, value_name = "MODE", value_parser = legacy_word())]
        legacy: Option<LegacyMode>,
    },
    /// List active blocks
    List {
        /// One JSON object per block
        #[arg(long)]
        json: bool,
    },
    /// Block an address now
    Block {
        /// An address or a network (198.51.100.7, 2001:db8::/64)
        #[arg(value_parser = parse_net, value_name = "ADDRESS")]
        addr: Net,
        /// How long (90s, 30m, 1h30m, 2d3h, 7d, bare seconds; 0 = permanent)
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_lifetime)]
        duration: Option<Lifetime>,
    },
    /// Lift blocks
    Unblock {
        /// Addresses or networks to lift
        #[arg(
            value_parser = parse_net,
            value_name = "ADDRESS",
            required_unless_present = "all"
        )]
        addrs: Vec<Net>,
        /// Lift every active block
        #[arg(long, conflicts_with = "addrs")]
        all: bool,
    },
    /// Lift expired blocks and print a review (for cron)
    Expire {
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove every block of ours from every backend and the store
    Flush,
    /// Re-assert every stored block in every backend (after a firewall reload)
    Reapply,
    /// Daemon, store and backend health and counts
    Status {
        /// One JSON object
        #[arg(long)]
        json: bool,
    },
    /// Print shell completions for bash, zsh or fish
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
}

/// A 1.2 mode word (`tcp` … `audp`), as `check-config --legacy` takes it; the words
/// are offered to shell completion.
fn legacy_word() -> impl clap::builder::TypedValueParser<Value = LegacyMode> {
    clap::builder::PossibleValuesParser::new(LegacyMode::ALL.map(|m| m.word())).map(|w| {
        LegacyMode::ALL
            .into_iter()
            .find(|m| m.word() == w)
            // only the words above get here
            .unwrap_or(LegacyMode::Tcp)
    })
}

/// The shells `completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// How long a manual block lasts: `None` = permanent (`--for 0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime(pub Option<Duration>);

fn parse_net(s: &str) -> Result<Net, String> {
    s.parse::<Net>().map_err(|e| e.to_string())
}

fn parse_lifetime(s: &str) -> Result<Lifetime, String> {
    config::parse_duration(s).map(Lifetime)
}

/// The completion script for `shell`, generated from the clap definition above.
pub fn completions(shell: CompletionShell) -> Vec<u8> {
    let shell = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "portsentry", &mut out);
    out
}

/// A parsed, checked 2.x command line.
#[derive(Debug)]
pub struct Options {
    pub mode: Mode,
    pub method: Method,
    pub interfaces: Interfaces,
    pub stdout: bool,
    pub syslog: bool,
    pub config: PathBuf,
    pub local_check: bool,
    pub service_check: bool,
    pub daemon: bool,
    pub pidfile: Option<PathBuf>,
    pub debug: bool,
    pub verbose: bool,
    pub block_backend: Option<Vec<BackendName>>,
    pub replay: Option<PathBuf>,
    pub command: Option<Command>,
}

/// What to run.
#[derive(Debug)]
pub enum Invocation {
    V2(Box<Options>),
    Legacy { mode: LegacyMode, config: PathBuf },
}

/// Why the command line was not accepted (or help/version, which exit 0).
#[derive(Debug)]
pub struct UsageError {
    pub message: String,
    pub code: i32,
}

fn usage(message: impl Into<String>) -> UsageError {
    UsageError {
        message: message.into(),
        code: exit::USAGE,
    }
}

/// Parses argv (including argv[0]).
pub fn parse<I, T>(args: I) -> Result<Invocation, UsageError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    if let Some(mode) = args
        .get(1)
        .and_then(|a| a.to_str())
        .and_then(LegacyMode::from_arg)
    {
        return parse_legacy(mode, &args[2..]);
    }
    let cli = Cli::try_parse_from(&args).map_err(|e| {
        use clap::error::ErrorKind;
        let code = match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
            _ => exit::USAGE,
        };
        UsageError {
            message: e.render().to_string(),
            code,
        }
    })?;
    check(cli).map(|o| Invocation::V2(Box::new(o)))
}

fn parse_legacy(mode: LegacyMode, rest: &[OsString]) -> Result<Invocation, UsageError> {
    let legacy_usage = || {
        usage(format!(
            "Usage: portsentry -{} [-c PATH]\n(Portsentry 1.2 mode: nothing else may follow the mode word)",
            mode.word()
        ))
    };
    match rest {
        [] => Ok(Invocation::Legacy {
            mode,
            config: PathBuf::from(config::DEFAULT_PATH),
        }),
        [flag, path] if flag == "-c" || flag == "--configfile" => Ok(Invocation::Legacy {
            mode,
            config: PathBuf::from(path),
        }),
        _ => Err(legacy_usage()),
    }
}

fn check(cli: Cli) -> Result<Options, UsageError> {
    let mode = match (cli.stealth, cli.connect) {
        (0, 0) | (1, 0) => Mode::Stealth,
        (0, 1) => Mode::Connect,
        _ => {
            return Err(usage(
                "Error: Only one mode can be specified, Use only one of --stealth or --connect",
            ))
        }
    };
    let method = cli.method.unwrap_or(Method::Pcap);
    if method == Method::Raw && !cfg!(target_os = "linux") {
        return Err(usage("Error: --method raw is only available on Linux"));
    }
    let interfaces = interfaces(&cli.interface)?;
    let block_backend = match &cli.block_backend {
        None => None,
        Some(s) => Some(
            config::parse_backends(s).map_err(|e| usage(format!("Error: --block-backend: {e}")))?,
        ),
    };
    let (stdout, syslog) = if cli.daemon {
        (false, true)
    } else if cli.logoutput.is_empty() {
        (true, false)
    } else {
        (
            cli.logoutput.contains(&LogOutput::Stdout),
            cli.logoutput.contains(&LogOutput::Syslog),
        )
    };
    if cli.replay.is_some() && cli.command.is_some() {
        return Err(usage("Error: --replay cannot be combined with a command"));
    }
    if let Some(Command::CheckConfig { legacy: Some(w) }) = &cli.command {
        if cli.stealth > 0 || cli.connect > 0 || cli.block_backend.is_some() {
            return Err(usage(format!(
                "Error: check-config --legacy {} takes the mode from the mode word; --stealth, --connect and --block-backend do not apply",
                w.word()
            )));
        }
    }
    Ok(Options {
        mode,
        method,
        interfaces,
        stdout,
        syslog,
        config: cli
            .configfile
            .unwrap_or_else(|| PathBuf::from(config::DEFAULT_PATH)),
        local_check: !cli.disable_local_check,
        service_check: !cli.disable_service_check,
        daemon: cli.daemon,
        pidfile: cli.pidfile.map(|p| std::path::absolute(&p).unwrap_or(p)),
        debug: cli.debug,
        verbose: cli.verbose,
        block_backend,
        replay: cli.replay,
        command: cli.command,
    })
}

fn interfaces(names: &[String]) -> Result<Interfaces, UsageError> {
    let alias = |n: &str| match n {
        "ALL" => Some(Interfaces::All),
        "ALL_NLO" => Some(Interfaces::AllNoLoopback),
        "any" => Some(Interfaces::Any),
        _ => None,
    };
    let mut found: Option<Interfaces> = None;
    let mut named: Vec<String> = Vec::new();
    for n in names {
        if n.is_empty() {
            return Err(usage("Error: --interface needs a name"));
        }
        match alias(n) {
            Some(a) => match &found {
                Some(prev) if *prev != a => {
                    return Err(usage(format!(
                        "Error: interface alias {n} cannot be combined with another alias"
                    )))
                }
                _ => found = Some(a),
            },
            None => {
                if !named.contains(n) {
                    named.push(n.clone());
                }
            }
        }
    }
    match (found, named.is_empty()) {
        (Some(_), false) => Err(usage(
            "Error: an interface alias (ALL, ALL_NLO, any) cannot be combined with interface names",
        )),
        (Some(a), true) => Ok(a),
        (None, false) => Ok(Interfaces::Named(named)),
        (None, true) => Ok(Interfaces::AllNoLoopback),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Invocation, UsageError> {
        parse(std::iter::once("portsentry").chain(args.iter().copied()))
    }

    fn opts(args: &[&str]) -> Options {
        match p(args) {
            Ok(Invocation::V2(o)) => *o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let o = opts(&[]);
        assert_eq!(o.mode, Mode::Stealth);
        assert_eq!(o.method, Method::Pcap);
        assert_eq!(o.interfaces, Interfaces::AllNoLoopback);
        assert!(o.stdout && !o.syslog && o.local_check && o.service_check);
        assert_eq!(o.config, PathBuf::from("/etc/portsentry/portsentry.conf"));
    }

    #[test]
    fn every_flag_long_and_short() {
        let o = opts(&[
            "--connect",
            "-m",
            "raw",
            "-i",
            "eth0",
            "--interface=eth1",
            "-l",
            "syslog",
            "--logoutput=stdout",
            "-c",
            "x.conf",
            "-L",
            "-S",
            "-d",
            "-v",
            "--block-backend=nft,hosts-deny",
        ]);
        assert_eq!(o.mode, Mode::Connect);
        assert_eq!(o.method, Method::Raw);
        assert_eq!(
            o.interfaces,
            Interfaces::Named(vec!["eth0".into(), "eth1".into()])
        );
        assert!(o.stdout && o.syslog && !o.local_check && !o.service_check && o.debug && o.verbose);
        assert_eq!(
            o.block_backend,
            Some(vec![BackendName::Nft, BackendName::HostsDeny])
        );
        let o = opts(&[
            "--stealth",
            "--method",
            "pcap",
            "--configfile",
            "y",
            "--disable-local-check",
            "--disable-service-check",
            "--daemon",
            "--debug",
            "--verbose",
        ]);
        assert!(o.daemon && !o.stdout && o.syslog && o.config == std::path::Path::new("y"));
    }

    #[test]
    fn mode_twice_or_both_is_the_2x_error() {
        for args in [
            &["--stealth", "--connect"][..],
            &["--connect", "--connect"],
            &["--stealth", "--stealth"],
        ] {
            let e = p(args).unwrap_err();
            assert_eq!(
                e.message,
                "Error: Only one mode can be specified, Use only one of --stealth or --connect"
            );
            assert_eq!(e.code, 64);
        }
    }

    #[test]
    fn interface_aliases_do_not_mix() {
        assert_eq!(opts(&["-i", "ALL"]).interfaces, Interfaces::All);
        assert_eq!(
            opts(&["-i", "any", "-i", "any"]).interfaces,
            Interfaces::Any
        );
        assert!(p(&["-i", "ALL", "-i", "eth0"]).is_err());
        assert!(p(&["-i", "ALL", "-i", "ALL_NLO"]).is_err());
        assert!(p(&["-i", "eth0", "-i", "any"]).is_err());
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            &["-m", "bpf"][..],
            &["-l", "file"],
            &["--block-backend=iptables"],
            &["--bogus"],
            &["-c"],
            &["-atcp", "-x"],
            &["stray"],
        ] {
            let e = p(args).unwrap_err();
            assert_eq!(e.code, 64, "{args:?}: {}", e.message);
        }
        assert_eq!(p(&["--help"]).unwrap_err().code, 0);
        assert_eq!(p(&["-V"]).unwrap_err().code, 0);
    }

    #[test]
    fn legacy_mode_words() {
        for m in LegacyMode::ALL {
            let arg = format!("-{}", m.word());
            match p(&[&arg]) {
                Ok(Invocation::Legacy { mode, config }) => {
                    assert_eq!(mode, m);
                    assert_eq!(config, PathBuf::from("/etc/portsentry/portsentry.conf"));
                }
                other => panic!("{other:?}"),
            }
            match p(&[&arg, "-c", "/x.conf"]) {
                Ok(Invocation::Legacy { config, .. }) => {
                    assert_eq!(config, PathBuf::from("/x.conf"))
                }
                other => panic!("{other:?}"),
            }
            assert!(p(&[&arg, "-d"]).is_err());
            assert!(p(&[&arg, "-c"]).is_err());
        }
    }

    #[test]
    fn commands_parse() {
        assert_eq!(
            opts(&["-c", "a", "check-config"]).command,
            Some(Command::CheckConfig { legacy: None })
        );
        assert_eq!(
            opts(&["check-config", "-c", "a"]).config,
            PathBuf::from("a")
        );
        assert_eq!(
            opts(&["list", "--json"]).command,
            Some(Command::List { json: true })
        );
        let net = |s: &str| s.parse::<Net>().unwrap();
        assert_eq!(
            opts(&["block", "198.18.0.1", "--for", "1h"]).command,
            Some(Command::Block {
                addr: net("198.18.0.1"),
                duration: Some(Lifetime(Some(Duration::from_secs(3600))))
            })
        );
        assert!(p(&["unblock"]).is_err());
        assert_eq!(
            opts(&["expire", "--dry-run"]).command,
            Some(Command::Expire { dry_run: true })
        );
        assert_eq!(
            opts(&["status", "--json"]).command,
            Some(Command::Status { json: true })
        );
    }

    #[test]
    fn compound_durations_for_block() {
        let life = |d: &str| match opts(&["block", "198.18.0.1", "--for", d]).command {
            Some(Command::Block { duration, .. }) => duration,
            other => panic!("{other:?}"),
        };
        let secs = |n| Some(Lifetime(Some(Duration::from_secs(n))));
        assert_eq!(life("1h30m"), secs(5400));
        assert_eq!(life("2d3h"), secs(183_600));
        assert_eq!(life("90s"), secs(90));
        assert_eq!(life("45"), secs(45));
        assert_eq!(life("0"), Some(Lifetime(None)));
        for bad in ["1h30", "30m1h", "soon", "-5s", "1.5h", ""] {
            let e = p(&["block", "198.18.0.1", "--for", bad]).unwrap_err();
            assert_eq!(e.code, 64, "{bad:?}: {}", e.message);
        }
    }

    /// Bad command arguments are usage errors (64), found before any file is read
    /// (they used to reach the store commands and exit 69).
    #[test]
    fn bad_command_arguments_exit_64() {
        for args in [
            &["block", "not-an-address"][..],
            &["block", "198.18.0.300"],
            &["block", "198.18.0.0/33"],
            &["block"],
            &["unblock", "198.18.0.1", "nope"],
            &["unblock", "--all", "198.18.0.1"],
            &["check-config", "--legacy", "xtcp"],
            &["check-config", "--legacy"],
            &["--connect", "check-config", "--legacy", "tcp"],
            &["--block-backend", "nft", "check-config", "--legacy", "atcp"],
            &["completions", "powershell"],
            &["completions"],
            &["status", "--bogus"],
        ] {
            let e = p(args).unwrap_err();
            assert_eq!(e.code, 64, "{args:?}: {}", e.message);
        }
    }

    #[test]
    fn unblock_all_or_addresses() {
        assert_eq!(
            opts(&["unblock", "--all"]).command,
            Some(Command::Unblock {
                addrs: Vec::new(),
                all: true
            })
        );
        match opts(&["unblock", "198.18.0.1", "2001:db8::/64"]).command {
            Some(Command::Unblock { addrs, all: false }) => assert_eq!(addrs.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn check_config_legacy_modes() {
        for m in LegacyMode::ALL {
            match opts(&["check-config", "--legacy", m.word()]).command {
                Some(Command::CheckConfig { legacy: Some(w) }) => assert_eq!(w, m),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn completions_come_from_the_definition() {
        for (shell, marker) in [
            (CompletionShell::Bash, "complete -F"),
            (CompletionShell::Zsh, "#compdef portsentry"),
            (CompletionShell::Fish, "complete -c portsentry"),
        ] {
            let text = String::from_utf8(completions(shell)).unwrap();
            assert!(text.contains(marker), "{shell:?}");
            for word in ["check-config", "unblock", "block-backend", "completions"] {
                assert!(text.contains(word), "{shell:?} lacks {word}");
            }
        }
    }
}
