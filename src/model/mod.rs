//! Small shared types every layer uses: protocols, modes, port sets, scan kinds.
//!
//! In: nothing. Out: plain `Copy`/owned types with their exact `Display` texts. This
//! module imports nothing from the rest of the crate, does no I/O and holds no state;
//! everything else may import it.

pub mod ports;
pub mod scan;

use std::fmt;

pub use ports::{PortItem, PortSet};
pub use scan::{IpOpts, ScanKind};

/// Which program's rules the config is read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Portsentry 2.x: unknown keys are errors, the last duplicate wins.
    V2,
    /// Portsentry 1.2: unknown keys are ignored, the first occurrence wins, a bad port
    /// item is skipped with a warning.
    Legacy,
}

/// 2.x detection mode; decides which cross-checks apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Stealth,
    Connect,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Stealth => "stealth",
            Mode::Connect => "connect",
        })
    }
}

/// TCP or UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        })
    }
}

/// BLOCK_TCP / BLOCK_UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockMode {
    /// 0: log only.
    LogOnly,
    /// 1: block.
    Block,
    /// 2: run KILL_RUN_CMD only.
    RunCmd,
}

impl BlockMode {
    pub fn number(self) -> u8 {
        match self {
            BlockMode::LogOnly => 0,
            BlockMode::Block => 1,
            BlockMode::RunCmd => 2,
        }
    }
}

/// Which 1.2 mode word a process runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegacyMode {
    Tcp,
    Udp,
    Stcp,
    Sudp,
    Atcp,
    Audp,
}

impl LegacyMode {
    pub const ALL: [LegacyMode; 6] = [
        LegacyMode::Tcp,
        LegacyMode::Udp,
        LegacyMode::Stcp,
        LegacyMode::Sudp,
        LegacyMode::Atcp,
        LegacyMode::Audp,
    ];

    /// The mode word without the dash (`atcp`), as in `$MODE$` and file names.
    pub fn word(self) -> &'static str {
        match self {
            LegacyMode::Tcp => "tcp",
            LegacyMode::Udp => "udp",
            LegacyMode::Stcp => "stcp",
            LegacyMode::Sudp => "sudp",
            LegacyMode::Atcp => "atcp",
            LegacyMode::Audp => "audp",
        }
    }

    /// From a command-line argument such as `-atcp`.
    pub fn from_arg(arg: &str) -> Option<LegacyMode> {
        let w = arg.strip_prefix('-')?;
        LegacyMode::ALL.into_iter().find(|m| m.word() == w)
    }

    pub fn proto(self) -> Proto {
        match self {
            LegacyMode::Tcp | LegacyMode::Stcp | LegacyMode::Atcp => Proto::Tcp,
            _ => Proto::Udp,
        }
    }

    pub fn is_connect(self) -> bool {
        matches!(self, LegacyMode::Tcp | LegacyMode::Udp)
    }

    pub fn is_advanced(self) -> bool {
        matches!(self, LegacyMode::Atcp | LegacyMode::Audp)
    }
}

/// Which interfaces stealth mode captures on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interfaces {
    /// `ALL`: every capture device, loopback included.
    All,
    /// `ALL_NLO`: every device but loopback (the default).
    AllNoLoopback,
    /// `any`: the Linux "any" pseudo-device.
    Any,
    Named(Vec<String>),
}
