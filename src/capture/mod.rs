//! Where events come from: stealth captures (pcap, raw sockets), connect-mode
//! listeners, and recorded captures for `--replay`.
//!
//! In: devices, addresses and port sets. Out: [`Input`] messages on a channel to the one
//! thread that runs the engine. Sources never decide what an event means and never log
//! scan lines; they only parse, filter by port and forward.

pub mod connect;
pub mod pcap;
#[cfg(target_os = "linux")]
pub mod raw;

use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use crate::model::{PortSet, Proto};
use crate::packet::{Skip, Summary};

/// A connect-mode peer the engine may answer with PORT_BANNER, then drop.
#[derive(Debug)]
pub enum Conn {
    Tcp(TcpStream),
    Udp(Arc<UdpSocket>, SocketAddr),
}

impl Conn {
    /// Sends PORT_BANNER as-is (no newline added); dropping `self` then closes a TCP peer.
    pub fn answer(self, banner: &[u8]) {
        use std::io::Write;
        match self {
            Conn::Tcp(mut s) => {
                let _ = s.set_write_timeout(Some(std::time::Duration::from_millis(500)));
                let _ = s.write_all(banner);
            }
            Conn::Udp(sock, peer) => {
                let _ = sock.send_to(banner, peer);
            }
        }
    }
}

/// One message to the engine thread.
#[derive(Debug)]
pub enum Input {
    /// A stealth-mode packet to a monitored port (not yet service-checked).
    Packet { ts: SystemTime, summary: Summary },
    /// A connect-mode event: an accepted TCP connection or a UDP datagram.
    Connect {
        ts: SystemTime,
        proto: Proto,
        src: IpAddr,
        /// The connection's real local address.
        local: IpAddr,
        port: u16,
        conn: Conn,
    },
    /// accept() failed on a connect-mode TCP port.
    AcceptFailed { port: u16, errno: i32, err: String },
    /// A frame that could not be parsed (counted; logged rate-limited).
    Malformed(Skip),
    /// A capture source failed or stopped for good.
    SourceError(String),
    /// SIGHUP.
    Reload,
    /// SIGTERM / SIGINT.
    Stop,
}

/// The sink is gone (the daemon is stopping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// What every source sends its [`Input`]s to: a channel to another thread, or a
/// handler run right in the source's thread (no hand-off between threads per packet).
#[derive(Clone)]
pub struct Sender(Route);

type Handler = Arc<dyn Fn(Input) -> bool + Send + Sync>;

#[derive(Clone)]
enum Route {
    Channel(std::sync::mpsc::SyncSender<Input>),
    Inline(Handler),
}

impl Sender {
    /// Inputs go over a bounded channel (the receiver is the back-pressure).
    pub fn channel(tx: std::sync::mpsc::SyncSender<Input>) -> Sender {
        Sender(Route::Channel(tx))
    }

    /// Inputs are handled in the calling thread; the handler returns false once the
    /// daemon is stopping.
    pub fn inline(f: impl Fn(Input) -> bool + Send + Sync + 'static) -> Sender {
        Sender(Route::Inline(Arc::new(f)))
    }

    pub fn send(&self, input: Input) -> Result<(), Closed> {
        match &self.0 {
            Route::Channel(tx) => tx.send(input).map_err(|_| Closed),
            Route::Inline(f) => {
                if f(input) {
                    Ok(())
                } else {
                    Err(Closed)
                }
            }
        }
    }
}

impl From<std::sync::mpsc::SyncSender<Input>> for Sender {
    fn from(tx: std::sync::mpsc::SyncSender<Input>) -> Sender {
        Sender::channel(tx)
    }
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Route::Channel(_) => "Sender(channel)",
            Route::Inline(_) => "Sender(inline)",
        })
    }
}

/// Set when sources must stop.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst)
    }
    pub fn stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The ports watched per protocol, shared by the sources.
#[derive(Debug, Clone)]
pub struct Ports {
    pub tcp: PortSet,
    pub udp: PortSet,
}

impl Ports {
    /// Whether a parsed packet is to a monitored port (ACK/RST segments never are).
    #[inline]
    pub fn wants(&self, s: &Summary) -> bool {
        match s.proto {
            Proto::Tcp => {
                s.tcp_flags & (crate::model::scan::ACK | crate::model::scan::RST) == 0
                    && self.tcp.contains(s.dport)
            }
            Proto::Udp => self.udp.contains(s.dport),
        }
    }

    /// What a parsed frame becomes: a packet to a monitored port, a malformed frame to
    /// count, or nothing (other traffic). `ts` is asked only for a packet.
    #[inline]
    pub fn input(
        &self,
        parsed: Result<Summary, Skip>,
        ts: impl FnOnce() -> SystemTime,
    ) -> Option<Input> {
        match parsed {
            Ok(summary) if self.wants(&summary) => Some(Input::Packet { ts: ts(), summary }),
            Err(skip) if skip.is_malformed() => Some(Input::Malformed(skip)),
            _ => None,
        }
    }
}
