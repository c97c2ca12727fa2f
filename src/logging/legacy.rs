//! The exact Portsentry 1.2 syslog lines (`docs/compat.md` §10.4), used in legacy mode.
//!
//! In: the fields of one message. Out: its text via `Display`, byte for byte as 1.2
//! sent it after the syslog header. No decisions, no I/O.

use std::fmt;
use std::net::IpAddr;

use crate::model::scan::ScanKind;
use crate::model::{LegacyMode, Proto};

/// Every 1.2 line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Legacy<'a> {
    Starting(&'a str),
    ListenMode {
        proto: Proto,
        port: u16,
    },
    StealthListenMode {
        proto: Proto,
        port: u16,
    },
    CouldNotBind {
        proto: Proto,
        port: u16,
    },
    CouldNotBindAny {
        proto: Proto,
    },
    PortInUse(u16),
    AdvancedFirst(u32),
    AdvancedIgnored {
        proto: Proto,
        port: u16,
    },
    Listening,
    Connect {
        name: &'a str,
        ip: IpAddr,
        proto: Proto,
        port: u16,
    },
    Stealth {
        kind: ScanKind,
        name: &'a str,
        ip: IpAddr,
        port: u16,
    },
    UdpScan {
        name: &'a str,
        ip: IpAddr,
        port: u16,
    },
    IpOptions {
        name: &'a str,
        ip: IpAddr,
        proto: Proto,
        port: u16,
    },
    AlreadyBlockedConnect {
        ip: IpAddr,
    },
    AlreadyBlockedStealth {
        name: &'a str,
        ip: IpAddr,
    },
    IgnoringResponse(Proto),
    BlockedWrappers {
        ip: IpAddr,
        line: &'a str,
    },
    BlockedRoute {
        ip: IpAddr,
        cmd: &'a str,
    },
    ExternalCommand {
        ip: IpAddr,
        cmd: &'a str,
    },
    CommandStatus {
        status: i32,
        cmd: &'a str,
    },
    CouldNotBlock {
        mode: LegacyMode,
        name: &'a str,
        ip: IpAddr,
    },
    NoIgnoreFile,
    SecurityShutdown,
    AdminShutdown,
    AnotherInstance(LegacyMode),
    Corrupted,
    CannotOpenConfig(&'a str),
    ConfigMissing,
    /// 1.2's config reading, in its words (issue #14 items 6 and 8).
    QuotesMissing(&'a str),
    NoScanTrigger,
    CannotRetrieve(&'a str),
    NoPortsOption(Proto),
    NoAdvancedPorts(Proto),
    ModeFailed,
    ManualExclude(u16),
    ManualExcludeNone,
    /// A diagnostic of ours (always `adminalert: ` + text).
    Admin(&'a str),
}

impl fmt::Display for Legacy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Legacy::Starting(v) => write!(f, "adminalert: PortSentry {v} is starting."),
            Legacy::ListenMode { proto, port } => {
                write!(f, "adminalert: Going into listen mode on {proto} port: {port}")
            }
            Legacy::StealthListenMode { proto, port } => write!(
                f,
                "adminalert: Going into stealth listen mode on {proto} port: {port}"
            ),
            Legacy::CouldNotBind { proto, port } => write!(
                f,
                "adminalert: ERROR: could not bind {proto} socket: {port}. Attempting to continue"
            ),
            Legacy::CouldNotBindAny { proto } => write!(
                f,
                "adminalert: ERROR: could not bind ANY {proto} sockets. Shutting down."
            ),
            Legacy::PortInUse(p) => write!(
                f,
                "adminalert: ERROR: Socket {p} is in use and will not be monitored. Attempting to continue"
            ),
            Legacy::AdvancedFirst(n) => {
                write!(f, "adminalert: Advanced mode will monitor first {n} ports")
            }
            Legacy::AdvancedIgnored { proto, port } => write!(
                f,
                "adminalert: Advanced Stealth scan detection mode activated. Ignored {proto} port: {port}"
            ),
            Legacy::Listening => f.write_str("adminalert: PortSentry is now active and listening."),
            Legacy::Connect { name, ip, proto, port } => write!(
                f,
                "attackalert: Connect from host: {name}/{ip} to {proto} port: {port}"
            ),
            Legacy::Stealth { kind, name, ip, port } => write!(
                f,
                "attackalert: {} from host: {name}/{ip} to TCP port: {port}",
                kind.legacy_text()
            ),
            Legacy::UdpScan { name, ip, port } => write!(
                f,
                "attackalert: UDP scan from host: {name}/{ip} to UDP port: {port}"
            ),
            Legacy::IpOptions { name, ip, proto, port } => write!(
                f,
                "attackalert: Packet from host: {name}/{ip} to {proto} port: {port} has IP options set (detection avoidance technique)."
            ),
            Legacy::AlreadyBlockedConnect { ip } => {
                write!(f, "attackalert: Host: {ip} is already blocked. Ignoring")
            }
            Legacy::AlreadyBlockedStealth { name, ip } => {
                write!(f, "attackalert: Host: {name}/{ip} is already blocked Ignoring")
            }
            Legacy::IgnoringResponse(p) => write!(
                f,
                "attackalert: Ignoring {p} response per configuration file setting."
            ),
            Legacy::BlockedWrappers { ip, line } => write!(
                f,
                "attackalert: Host {ip} has been blocked via wrappers with string: \"{line}\""
            ),
            Legacy::BlockedRoute { ip, cmd } => write!(
                f,
                "attackalert: Host {ip} has been blocked via dropped route using command: \"{cmd}\""
            ),
            Legacy::ExternalCommand { ip, cmd } => write!(
                f,
                "attackalert: External command run for host: {ip} using command: \"{cmd}\""
            ),
            Legacy::CommandStatus { status, cmd } => write!(
                f,
                "adminalert: command exited with status {status}: \"{cmd}\""
            ),
            Legacy::CouldNotBlock { mode, name, ip } => match mode {
                LegacyMode::Tcp | LegacyMode::Udp => {
                    write!(f, "attackalert: ERROR: Could not block host {ip} !!")
                }
                LegacyMode::Stcp => {
                    write!(f, "attackalert: ERROR: Could not block host {name}/{ip} !!")
                }
                _ => write!(f, "attackalert: ERROR: Could not block host {name}/{ip}!!"),
            },
            Legacy::NoIgnoreFile => f.write_str(
                "attackalert: ERROR: cannot open ignore file. Blocking host anyway.",
            ),
            Legacy::SecurityShutdown => f.write_str("securityalert: PortSentry is shutting down"),
            Legacy::AdminShutdown => f.write_str("adminalert: PortSentry is shutting down"),
            Legacy::AnotherInstance(m) => write!(
                f,
                "adminalert: ERROR: another instance is running in {} mode. Shutting down.",
                m.word()
            ),
            Legacy::Corrupted => f.write_str(
                "adminalert: ERROR: Your config file is corrupted/missing mandatory option! Shutting down.",
            ),
            Legacy::CannotOpenConfig(p) => {
                write!(f, "adminalert: Cannot open config file: {p}. Exiting")
            }
            Legacy::ConfigMissing => f.write_str(
                "adminalert: ERROR: Configuration files are missing/corrupted. Shutting down.",
            ),
            Legacy::QuotesMissing(k) => {
                write!(f, "adminalert: Quotes missing from {k} token. Option skipped")
            }
            Legacy::NoScanTrigger => f.write_str(
                "adminalert: ERROR: Could not read SCAN_TRIGGER option from config file. Disabling SCAN DETECTION TRIGGER",
            ),
            // 1.2 logged this one without a prefix
            Legacy::CannotRetrieve(k) => write!(f, "InitConfig: Cannot retrieve {k} option! Aborting"),
            Legacy::NoPortsOption(p) => write!(
                f,
                "adminalert: ERROR: Could not read {p}_PORTS option from config file"
            ),
            Legacy::NoAdvancedPorts(p) => write!(
                f,
                "adminalert: ERROR: Could not read ADVANCED_PORTS_{p} option from config file. Assuming 1024."
            ),
            Legacy::ModeFailed => f.write_str(
                "adminalert: ERROR: could not go into PortSentry mode. Shutting down.",
            ),
            // sic: 1.2's line ends with a space
            Legacy::ManualExclude(p) => {
                write!(f, "adminalert: Advanced mode will manually exclude port: {p} ")
            }
            Legacy::ManualExcludeNone => {
                f.write_str("adminalert: Advanced mode will manually exclude no ports")
            }
            Legacy::Admin(s) => write!(f, "adminalert: {s}"),
        }
    }
}

/// The 1.2 history line: `%ld - %02d/%02d/%04d %02d:%02d:%02d Host: %s/%s Port: %d %s Blocked`.
pub fn history_line(
    when: chrono::DateTime<chrono::Local>,
    name: &str,
    ip: IpAddr,
    port: u16,
    proto: Proto,
) -> String {
    format!(
        "{} - {} Host: {name}/{ip} Port: {port} {proto} Blocked",
        when.timestamp(),
        when.format("%m/%d/%Y %H:%M:%S")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn every_legacy_line_is_byte_exact() {
        let a: IpAddr = "198.19.50.1".parse().unwrap();
        let n = "198.19.50.1";
        let cases: Vec<(Legacy, &str)> = vec![
            (Legacy::Starting("1.2"), "adminalert: PortSentry 1.2 is starting."),
            (Legacy::ListenMode { proto: Proto::Udp, port: 7 }, "adminalert: Going into listen mode on UDP port: 7"),
            (Legacy::StealthListenMode { proto: Proto::Tcp, port: 1 }, "adminalert: Going into stealth listen mode on TCP port: 1"),
            (Legacy::CouldNotBind { proto: Proto::Tcp, port: 22 }, "adminalert: ERROR: could not bind TCP socket: 22. Attempting to continue"),
            (Legacy::CouldNotBindAny { proto: Proto::Tcp }, "adminalert: ERROR: could not bind ANY TCP sockets. Shutting down."),
            (Legacy::PortInUse(22), "adminalert: ERROR: Socket 22 is in use and will not be monitored. Attempting to continue"),
            (Legacy::AdvancedFirst(1024), "adminalert: Advanced mode will monitor first 1024 ports"),
            (Legacy::AdvancedIgnored { proto: Proto::Tcp, port: 113 }, "adminalert: Advanced Stealth scan detection mode activated. Ignored TCP port: 113"),
            (Legacy::Listening, "adminalert: PortSentry is now active and listening."),
            (Legacy::Connect { name: n, ip: a, proto: Proto::Tcp, port: 1 }, "attackalert: Connect from host: 198.19.50.1/198.19.50.1 to TCP port: 1"),
            (Legacy::Stealth { kind: ScanKind::Null, name: n, ip: a, port: 1 }, "attackalert:  TCP NULL scan from host: 198.19.50.1/198.19.50.1 to TCP port: 1"),
            (Legacy::Stealth { kind: ScanKind::Syn, name: n, ip: a, port: 1 }, "attackalert: TCP SYN/Normal scan from host: 198.19.50.1/198.19.50.1 to TCP port: 1"),
            (Legacy::UdpScan { name: n, ip: a, port: 7 }, "attackalert: UDP scan from host: 198.19.50.1/198.19.50.1 to UDP port: 7"),
            (Legacy::IpOptions { name: n, ip: a, proto: Proto::Tcp, port: 1 }, "attackalert: Packet from host: 198.19.50.1/198.19.50.1 to TCP port: 1 has IP options set (detection avoidance technique)."),
            (Legacy::AlreadyBlockedConnect { ip: a }, "attackalert: Host: 198.19.50.1 is already blocked. Ignoring"),
            (Legacy::AlreadyBlockedStealth { name: n, ip: a }, "attackalert: Host: 198.19.50.1/198.19.50.1 is already blocked Ignoring"),
            (Legacy::IgnoringResponse(Proto::Udp), "attackalert: Ignoring UDP response per configuration file setting."),
            (Legacy::CommandStatus { status: 3, cmd: "/bin/false" }, "adminalert: command exited with status 3: \"/bin/false\""),
            (Legacy::CouldNotBlock { mode: LegacyMode::Tcp, name: n, ip: a }, "attackalert: ERROR: Could not block host 198.19.50.1 !!"),
            (Legacy::CouldNotBlock { mode: LegacyMode::Stcp, name: n, ip: a }, "attackalert: ERROR: Could not block host 198.19.50.1/198.19.50.1 !!"),
            (Legacy::CouldNotBlock { mode: LegacyMode::Audp, name: n, ip: a }, "attackalert: ERROR: Could not block host 198.19.50.1/198.19.50.1!!"),
            (Legacy::NoIgnoreFile, "attackalert: ERROR: cannot open ignore file. Blocking host anyway."),
            (Legacy::SecurityShutdown, "securityalert: PortSentry is shutting down"),
            (Legacy::AdminShutdown, "adminalert: PortSentry is shutting down"),
            (Legacy::AnotherInstance(LegacyMode::Atcp), "adminalert: ERROR: another instance is running in atcp mode. Shutting down."),
            (Legacy::Corrupted, "adminalert: ERROR: Your config file is corrupted/missing mandatory option! Shutting down."),
            (Legacy::QuotesMissing("SCAN_TRIGGER"), "adminalert: Quotes missing from SCAN_TRIGGER token. Option skipped"),
            (Legacy::NoScanTrigger, "adminalert: ERROR: Could not read SCAN_TRIGGER option from config file. Disabling SCAN DETECTION TRIGGER"),
            (Legacy::CannotRetrieve("HISTORY_FILE"), "InitConfig: Cannot retrieve HISTORY_FILE option! Aborting"),
            (Legacy::NoPortsOption(Proto::Udp), "adminalert: ERROR: Could not read UDP_PORTS option from config file"),
            (Legacy::NoAdvancedPorts(Proto::Tcp), "adminalert: ERROR: Could not read ADVANCED_PORTS_TCP option from config file. Assuming 1024."),
            (Legacy::ModeFailed, "adminalert: ERROR: could not go into PortSentry mode. Shutting down."),
            (Legacy::ManualExclude(113), "adminalert: Advanced mode will manually exclude port: 113 "),
            (Legacy::ManualExcludeNone, "adminalert: Advanced mode will manually exclude no ports"),
            (Legacy::CannotOpenConfig("/x"), "adminalert: Cannot open config file: /x. Exiting"),
            (Legacy::ConfigMissing, "adminalert: ERROR: Configuration files are missing/corrupted. Shutting down."),
        ];
        for (line, want) in cases {
            assert_eq!(line.to_string(), want);
        }
    }

    #[test]
    fn history_line_matches_1_2() {
        let when = chrono::Local.timestamp_opt(1_795_491_183, 0).unwrap();
        let got = history_line(
            when,
            "198.19.50.1",
            "198.19.50.1".parse().unwrap(),
            1,
            Proto::Tcp,
        );
        let want = format!(
            "1795491183 - {} Host: 198.19.50.1/198.19.50.1 Port: 1 TCP Blocked",
            when.format("%m/%d/%Y %H:%M:%S")
        );
        assert_eq!(got, want);
        assert!(
            LegacyMode::from_arg("-atcp") == Some(LegacyMode::Atcp)
                && LegacyMode::from_arg("atcp").is_none()
        );
    }
}
