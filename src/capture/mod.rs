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

use crate::config::{PortSet, Proto};
use crate::packet::{Skip, Summary};

/// A connect-mode peer the engine may answer with PORT_BANNER, then drop.
#[derive(Debug)]
pub enum Conn {
    Tcp(TcpStream),
    Udp(Arc<UdpSocket>, SocketAddr),
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

/// The sending side every source gets.
pub type Sender = std::sync::mpsc::SyncSender<Input>;

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
                s.tcp_flags & (crate::scan::ACK | crate::scan::RST) == 0
                    && self.tcp.contains(s.dport)
            }
            Proto::Udp => self.udp.contains(s.dport),
        }
    }
}
