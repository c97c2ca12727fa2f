//! The one place every message goes through.
//!
//! In: a [`Level`] and a message (usually a [`lines::Line`] or [`legacy::Legacy`], whose
//! `Display` is the exact text). Out: stdout lines flushed one by one (errors on stderr),
//! syslog datagrams, or an in-memory list for tests. It decides nothing about what to log.

pub mod legacy;
pub mod lines;
pub mod syslog;

use std::fmt::Display;
use std::io::Write;
use std::sync::{Arc, Mutex};

pub use self::syslog::{Severity, Syslog};

/// How important a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Notice,
    Verbose,
    Debug,
}

/// Where messages go.
pub struct Logger {
    stdout: bool,
    syslog: Option<Syslog>,
    memory: Option<Arc<Mutex<Vec<String>>>>,
    verbose: bool,
    debug: bool,
    /// 1.2 dialect: everything at notice, no `debug: ` prefix games.
    legacy: bool,
}

impl Logger {
    pub fn new(stdout: bool, syslog: bool, verbose: bool, debug: bool) -> Logger {
        Logger {
            stdout,
            syslog: syslog.then(Syslog::new),
            memory: None,
            verbose: verbose || debug,
            debug,
            legacy: false,
        }
    }

    /// The 1.2 dialect: syslog only, every line at notice.
    pub fn legacy(syslog: Syslog, debug: bool) -> Logger {
        Logger {
            stdout: false,
            syslog: Some(syslog),
            memory: None,
            verbose: debug,
            debug,
            legacy: true,
        }
    }

    /// A logger that keeps lines in memory (as printed on stdout/stderr) for tests.
    pub fn memory(verbose: bool, debug: bool) -> (Logger, Arc<Mutex<Vec<String>>>) {
        let mem = Arc::new(Mutex::new(Vec::new()));
        (
            Logger {
                stdout: false,
                syslog: None,
                memory: Some(mem.clone()),
                verbose: verbose || debug,
                debug,
                legacy: false,
            },
            mem,
        )
    }

    pub fn is_legacy(&self) -> bool {
        self.legacy
    }

    pub fn debug_enabled(&self) -> bool {
        self.debug
    }

    pub fn log(&self, level: Level, msg: impl Display) {
        match level {
            Level::Verbose if !self.verbose => return,
            Level::Debug if !self.debug => return,
            _ => {}
        }
        let text = if level == Level::Debug && !self.legacy {
            format!("debug: {msg}")
        } else {
            msg.to_string()
        };
        if let Some(mem) = &self.memory {
            if let Ok(mut m) = mem.lock() {
                m.push(text.clone());
            }
        }
        if self.stdout {
            if level == Level::Error {
                let mut e = std::io::stderr().lock();
                let _ = writeln!(e, "{text}");
            } else {
                let mut o = std::io::stdout().lock();
                let _ = writeln!(o, "{text}");
                let _ = o.flush();
            }
        }
        if let Some(s) = &self.syslog {
            let sev = if self.legacy {
                Severity::Notice
            } else {
                match level {
                    Level::Error => Severity::Err,
                    Level::Notice => Severity::Notice,
                    Level::Verbose => Severity::Info,
                    Level::Debug => Severity::Debug,
                }
            };
            s.send(sev, &text);
        }
    }

    pub fn notice(&self, msg: impl Display) {
        self.log(Level::Notice, msg)
    }

    pub fn error(&self, msg: impl Display) {
        self.log(Level::Error, msg)
    }

    pub fn verbose(&self, msg: impl Display) {
        self.log(Level::Verbose, msg)
    }

    pub fn debug(&self, msg: impl Display) {
        self.log(Level::Debug, msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_filter_and_debug_is_prefixed() {
        let (l, mem) = Logger::memory(false, false);
        l.notice("a");
        l.verbose("b");
        l.debug("c");
        l.error("d");
        assert_eq!(*mem.lock().unwrap(), vec!["a", "d"]);
        let (l, mem) = Logger::memory(false, true);
        l.verbose("b");
        l.debug("c");
        assert_eq!(*mem.lock().unwrap(), vec!["b", "debug: c"]);
    }

    #[test]
    fn syslog_datagram_shape() {
        let s = Syslog::format(Severity::Notice, "hello");
        assert!(s.starts_with("<29>"), "{s}");
        assert!(s.ends_with(&format!(" portsentry[{}]: hello", std::process::id())));
        assert!(Syslog::format(Severity::Err, "x").starts_with("<27>"));
    }

    #[test]
    fn syslog_reaches_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let l = Logger::legacy(Syslog::at(path), false);
        l.error("adminalert: x");
        let mut buf = [0u8; 512];
        let n = rx.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(
            got.starts_with("<29>") && got.ends_with("]: adminalert: x"),
            "{got}"
        );
    }
}
