//! A minimal syslog client: RFC 3164 datagrams to the local log socket.
//!
//! In: a severity and a message. Out: one datagram `<PRI>Mmm dd hh:mm:ss portsentry[PID]: msg`
//! on `/dev/log` (`/var/run/log` on the BSDs), facility daemon. It reconnects once when
//! the log daemon restarted; it never blocks the caller for long and never panics.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Mutex;

/// LOG_DAEMON.
const FACILITY: u8 = 3 << 3;

/// Syslog severities we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Err = 3,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

pub struct Syslog {
    path: PathBuf,
    sock: Mutex<Option<UnixDatagram>>,
}

fn default_path() -> PathBuf {
    if cfg!(target_os = "linux") {
        PathBuf::from("/dev/log")
    } else {
        PathBuf::from("/var/run/log")
    }
}

impl Syslog {
    pub fn new() -> Syslog {
        Syslog::at(default_path())
    }

    pub fn at(path: PathBuf) -> Syslog {
        Syslog {
            path,
            sock: Mutex::new(None),
        }
    }

    fn connect(&self) -> Option<UnixDatagram> {
        let s = UnixDatagram::unbound().ok()?;
        s.connect(&self.path).ok()?;
        s.set_write_timeout(Some(std::time::Duration::from_millis(200)))
            .ok()?;
        Some(s)
    }

    /// Whether the log socket takes datagrams now (checked at start: a daemon that logs
    /// to syslog must not lose every line silently).
    pub fn reachable(&self) -> bool {
        self.connect().is_some()
    }

    /// The socket's path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Formats one datagram (public for tests).
    pub fn format(sev: Severity, msg: &str) -> String {
        let now = chrono::Local::now();
        format!(
            "<{}>{} portsentry[{}]: {}",
            FACILITY | sev as u8,
            now.format("%b %e %H:%M:%S"),
            std::process::id(),
            msg
        )
    }

    pub fn send(&self, sev: Severity, msg: &str) {
        let line = Syslog::format(sev, msg);
        let Ok(mut guard) = self.sock.lock() else {
            return;
        };
        for _ in 0..2 {
            if guard.is_none() {
                *guard = self.connect();
            }
            match guard.as_ref() {
                Some(s) if s.send(line.as_bytes()).is_ok() => return,
                Some(_) => *guard = None,
                None => return,
            }
        }
    }
}

impl Default for Syslog {
    fn default() -> Self {
        Syslog::new()
    }
}
