//! The exact Portsentry 2.x log lines (`docs/compat.md` §3).
//!
//! In: the fields of one message. Out: its text via `Display`, byte for byte as 2.x
//! prints it. Nothing else: no decisions, no I/O.

use std::fmt;
use std::net::IpAddr;

use crate::model::scan::{IpOpts, ScanKind};
use crate::model::Proto;

/// One of `true`, `false`, `unset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    True,
    False,
    Unset,
}

impl From<bool> for Flag {
    fn from(b: bool) -> Flag {
        if b {
            Flag::True
        } else {
            Flag::False
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flag::True => "true",
            Flag::False => "false",
            Flag::Unset => "unset",
        })
    }
}

/// The four outcome flags of a scan line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub ignored: Flag,
    pub triggered: Flag,
    pub noblock: Flag,
    pub blocked: Flag,
}

/// The fields of the scan line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanLine<'a> {
    pub src: IpAddr,
    pub name: &'a str,
    pub proto: Proto,
    pub port: u16,
    pub kind: ScanKind,
    pub ip_opts: IpOpts,
    pub outcome: Outcome,
}

impl fmt::Display for ScanLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.outcome;
        write!(
            f,
            "Scan from: [{}] ({}) protocol: [{}] port: [{}] type: [{}] IP opts: [{}] ignored: [{}] triggered: [{}] noblock: [{}] blocked: [{}]",
            self.src, self.name, self.proto, self.port, self.kind, self.ip_opts,
            o.ignored, o.triggered, o.noblock, o.blocked
        )
    }
}

/// Every other 2.x line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line<'a> {
    Starting(&'a str),
    Listening,
    ShuttingDown,
    IgnoredHost {
        ip: IpAddr,
        file: &'a str,
    },
    SameAddress {
        src: IpAddr,
        dst: IpAddr,
    },
    AlreadyBlocked {
        ip: IpAddr,
    },
    BlockedWrappers {
        ip: IpAddr,
        line: &'a str,
    },
    AlreadyInHostsDeny {
        ip: IpAddr,
    },
    BlockedRoute {
        ip: IpAddr,
        cmd: &'a str,
    },
    ExternalCommand {
        ip: IpAddr,
        cmd: &'a str,
    },
    DisposeError {
        ip: IpAddr,
    },
    ServiceRunning {
        ip: IpAddr,
        port: u16,
    },
    AcceptFailed {
        port: u16,
        errno: i32,
        err: &'a str,
    },
    CouldNotBind {
        proto: Proto,
        port: u16,
    },
    /// A typed backend blocked the host (`via nftables set inet portsentry blocked4`).
    BlockedVia {
        ip: &'a str,
        how: &'a str,
        until: &'a str,
    },
    /// A block expired and was lifted from the backends.
    Expired {
        ip: &'a str,
    },
    /// A backend failed for a host.
    BackendFailed {
        ip: &'a str,
        err: &'a str,
    },
    /// A safety cap stopped a block.
    CapHit {
        ip: IpAddr,
        what: &'a str,
    },
    /// The SCAN_TRIGGER table is full (said once).
    TriggerTableFull {
        cap: usize,
    },
    /// The rate limit held malformed-packet lines back.
    MalformedSuppressed {
        suppressed: u64,
        total: u64,
    },
    /// A legacy command ended with a failure status (its stderr kept).
    CommandStatus {
        status: i32,
        cmd: &'a str,
        stderr: &'a str,
    },
    /// `--replay`: what the blocklist would do with a detection.
    WouldBlock {
        result: &'a Result<crate::blocklist::Placed, crate::blocklist::Refusal>,
    },
    /// SIGHUP applied the new configuration.
    Reloaded,
    /// Every backend holds the store's blocks again after a failure.
    Reconciled,
    /// The flood cap (LOG_RATE_LIMIT) held back scan lines.
    LinesSuppressed {
        lines: u64,
        /// The span they fell in, in tenths of a second.
        tenths: u64,
        rate: u64,
    },
    /// What the daemon kept of root's capabilities after set-up.
    Privileges {
        what: &'a str,
    },
    /// What `BLOCK_BACKEND="auto"` chose on this machine, and why.
    AutoBackend {
        name: &'a str,
        why: &'a str,
    },
    /// SIGHUP: keys that cannot change while running kept their old value.
    ReloadKept {
        keys: &'a str,
    },
    /// SIGHUP: the new configuration could not be used.
    ReloadFailed {
        why: &'a str,
    },
    /// The store's blocks were applied again to a backend (start, reapply, after a flush).
    Reasserted {
        count: usize,
        how: &'a str,
    },
}

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::Starting(v) => write!(f, "Portsentry {v} is starting."),
            Line::Listening => f.write_str("Portsentry is now active and listening."),
            Line::ShuttingDown => f.write_str("Portsentry is shutting down"),
            Line::IgnoredHost { ip, file } => {
                write!(f, "Host: {ip} found in ignore file {file}, aborting actions")
            }
            Line::SameAddress { src, dst } => write!(
                f,
                "Source address {src} same as destination address {dst}, skipping"
            ),
            Line::AlreadyBlocked { ip } => {
                write!(f, "attackalert: Host: {ip}/{ip} is already blocked Ignoring")
            }
            Line::BlockedWrappers { ip, line } => write!(
                f,
                "attackalert: Host {ip} has been blocked via wrappers with string: \"{line}\""
            ),
            Line::AlreadyInHostsDeny { ip } => {
                write!(f, "Host {ip} already in hosts.deny file, skipping.")
            }
            Line::BlockedRoute { ip, cmd } => write!(
                f,
                "attackalert: Host {ip} has been blocked via dropped route using command: \"{cmd}\""
            ),
            Line::ExternalCommand { ip, cmd } => write!(
                f,
                "attackalert: External command run for host: {ip} using command: \"{cmd}\""
            ),
            Line::DisposeError { ip } => {
                write!(f, "attackalert: Error during target dispose {ip}/{ip}!")
            }
            Line::ServiceRunning { ip, port } => write!(
                f,
                "Ignoring packet from {ip} to destination port {port}, a service is running"
            ),
            Line::AcceptFailed { port, errno, err } => write!(
                f,
                "attackalert: Possible stealth scan from unknown host to TCP port: {port} (accept failed {errno}: {err})"
            ),
            Line::CouldNotBind { proto, port } => write!(
                f,
                "Could not bind {proto} socket on port {port}. Attempting to continue"
            ),
            Line::BlockedVia { ip, how, until } => {
                write!(f, "attackalert: Host {ip} has been blocked via {how} {until}")
            }
            Line::Expired { ip } => {
                write!(f, "attackalert: Host {ip} block expired, unblocked")
            }
            Line::BackendFailed { ip, err } => {
                write!(f, "attackalert: ERROR: could not block host {ip}: {err}")
            }
            Line::CapHit { ip, what } => {
                write!(f, "attackalert: Host {ip} not blocked: {what}")
            }
            Line::TriggerTableFull { cap } => write!(
                f,
                "adminalert: the SCAN_TRIGGER table is full ({cap} sources); the oldest are forgotten"
            ),
            Line::MalformedSuppressed { suppressed, total } => write!(
                f,
                "{suppressed} more malformed packets were not logged ({total} in all)"
            ),
            Line::CommandStatus { status, cmd, stderr } => {
                write!(f, "adminalert: command exited with status {status}: \"{cmd}\"")?;
                if !stderr.is_empty() {
                    write!(f, ": {stderr}")?;
                }
                Ok(())
            }
            Line::WouldBlock { result } => match result {
                Ok(p) => write!(
                    f,
                    "replay: would block {} {} via {}",
                    p.net,
                    match p.timeout {
                        Some(d) => format!("for {}", crate::config::format_duration(d)),
                        None => "permanently".to_string(),
                    },
                    p.held_by.join(",")
                ),
                Err(r) => write!(f, "replay: would not block: {r}"),
            },
            Line::Reloaded => f.write_str("Configuration and ignore file reloaded"),
            Line::LinesSuppressed {
                lines,
                tenths,
                rate,
            } => write!(
                f,
                "flood: {lines} scan lines not logged in the last {}.{} s (LOG_RATE_LIMIT={rate} lines per second after a burst of {}); every event was still handled",
                tenths / 10,
                tenths % 10,
                crate::respond::budget::BURST
            ),
            Line::Privileges { what } => write!(f, "adminalert: privileges: {what}"),
            Line::AutoBackend { name, why } => {
                write!(f, "adminalert: block backend auto: using {name} ({why})")
            }
            Line::Reconciled => f.write_str(
                "adminalert: every block backend holds the stored blocks again after a failure",
            ),
            Line::ReloadKept { keys } => write!(
                f,
                "adminalert: reload: {keys} cannot change while running; the old value stays until the next restart"
            ),
            Line::ReloadFailed { why } => {
                write!(f, "reload failed, keeping the old config: {why}")
            }
            Line::Reasserted { count, how } => {
                write!(f, "adminalert: {count} blocks re-asserted in {how}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn scan_line_is_byte_exact() {
        let l = ScanLine {
            src: ip("198.18.0.1"),
            name: "198.18.0.1",
            proto: Proto::Tcp,
            port: 79,
            kind: ScanKind::Syn,
            ip_opts: IpOpts::NotSet,
            outcome: Outcome {
                ignored: Flag::False,
                triggered: Flag::True,
                noblock: Flag::False,
                blocked: Flag::True,
            },
        };
        assert_eq!(
            l.to_string(),
            "Scan from: [198.18.0.1] (198.18.0.1) protocol: [TCP] port: [79] type: [TCP SYN/Normal scan] IP opts: [not set] ignored: [false] triggered: [true] noblock: [false] blocked: [true]"
        );
        let l = ScanLine {
            src: ip("fd00:5e5e::1"),
            name: "fd00:5e5e::1",
            proto: Proto::Udp,
            port: 7,
            kind: ScanKind::Udp,
            ip_opts: IpOpts::Unknown,
            outcome: Outcome {
                ignored: Flag::True,
                triggered: Flag::Unset,
                noblock: Flag::Unset,
                blocked: Flag::Unset,
            },
        };
        assert_eq!(
            l.to_string(),
            "Scan from: [fd00:5e5e::1] (fd00:5e5e::1) protocol: [UDP] port: [7] type: [UDP] IP opts: [unknown] ignored: [true] triggered: [unset] noblock: [unset] blocked: [unset]"
        );
    }

    #[test]
    fn every_line_is_byte_exact() {
        let a = ip("198.18.0.1");
        let cases: Vec<(Line, &str)> = vec![
            (Line::Listening, "Portsentry is now active and listening."),
            (Line::ShuttingDown, "Portsentry is shutting down"),
            (
                Line::IgnoredHost { ip: a, file: "/etc/portsentry/portsentry.ignore" },
                "Host: 198.18.0.1 found in ignore file /etc/portsentry/portsentry.ignore, aborting actions",
            ),
            (
                Line::SameAddress { src: a, dst: a },
                "Source address 198.18.0.1 same as destination address 198.18.0.1, skipping",
            ),
            (Line::AlreadyBlocked { ip: a }, "attackalert: Host: 198.18.0.1/198.18.0.1 is already blocked Ignoring"),
            (
                Line::BlockedWrappers { ip: a, line: "ALL: 198.18.0.1" },
                "attackalert: Host 198.18.0.1 has been blocked via wrappers with string: \"ALL: 198.18.0.1\"",
            ),
            (Line::AlreadyInHostsDeny { ip: a }, "Host 198.18.0.1 already in hosts.deny file, skipping."),
            (
                Line::BlockedRoute { ip: a, cmd: "/sbin/route add 198.18.0.1" },
                "attackalert: Host 198.18.0.1 has been blocked via dropped route using command: \"/sbin/route add 198.18.0.1\"",
            ),
            (
                Line::ExternalCommand { ip: a, cmd: "/bin/true" },
                "attackalert: External command run for host: 198.18.0.1 using command: \"/bin/true\"",
            ),
            (Line::DisposeError { ip: a }, "attackalert: Error during target dispose 198.18.0.1/198.18.0.1!"),
            (
                Line::ServiceRunning { ip: a, port: 22 },
                "Ignoring packet from 198.18.0.1 to destination port 22, a service is running",
            ),
            (
                Line::AcceptFailed { port: 1, errno: 103, err: "Software caused connection abort" },
                "attackalert: Possible stealth scan from unknown host to TCP port: 1 (accept failed 103: Software caused connection abort)",
            ),
            (
                Line::CouldNotBind { proto: Proto::Udp, port: 7 },
                "Could not bind UDP socket on port 7. Attempting to continue",
            ),
            (Line::Starting("0.1.0"), "Portsentry 0.1.0 is starting."),
            (
                Line::BlockedVia { ip: "198.18.0.1", how: "nft", until: "for 24h" },
                "attackalert: Host 198.18.0.1 has been blocked via nft for 24h",
            ),
            (Line::Expired { ip: "198.18.0.1" }, "attackalert: Host 198.18.0.1 block expired, unblocked"),
            (
                Line::BackendFailed { ip: "198.18.0.1", err: "nft: block of 198.18.0.1 failed: x" },
                "attackalert: ERROR: could not block host 198.18.0.1: nft: block of 198.18.0.1 failed: x",
            ),
            (
                Line::CapHit { ip: a, what: "BLOCK_MAX active blocks reached" },
                "attackalert: Host 198.18.0.1 not blocked: BLOCK_MAX active blocks reached",
            ),
            (
                Line::Reasserted { count: 3, how: "nft" },
                "adminalert: 3 blocks re-asserted in nft",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(line.to_string(), want);
        }
    }
}
