//! Stealth capture through libpcap, one capture per device.
//!
//! In: the interface selection and the watched ports. Out: [`Input`] messages (packets to
//! monitored ports on this host's own addresses) from one thread per device. Captures are
//! non-promiscuous, in immediate mode, with a BPF filter compiled per device so only
//! packets to the device's own non-link-local addresses and the monitored ports reach
//! user space. Devices and addresses that appear or go away are picked up by a
//! supervisor that re-lists devices every few seconds. Also: the recorded-file reader
//! used by `--replay`. Never decides what an event means.

use std::net::IpAddr;
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pcap::{Active, Capture};

use super::{Input, Ports, Sender, StopFlag};
use crate::model::Interfaces;
use crate::packet::{self, LinkType};

/// Why a capture could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot list capture devices: {0}")]
    List(#[source] pcap::Error),
    #[error("no capture device matches the interface selection")]
    NoDevice,
    #[error("{dev}: cannot open the capture: {source}")]
    Open {
        dev: String,
        #[source]
        source: pcap::Error,
    },
    #[error("{dev}: cannot set the capture filter \"{filter}\": {source}")]
    Filter {
        dev: String,
        filter: String,
        #[source]
        source: pcap::Error,
    },
    #[error("{dev}: unsupported link type {dlt}")]
    LinkType { dev: String, dlt: i32 },
    #[error("{path}: cannot read the capture file: {source}")]
    File {
        path: String,
        #[source]
        source: pcap::Error,
    },
}

/// The capture ring per device. It is resident memory for the whole run; 2 MiB holds
/// about 18 000 probes, which covers floods the engine cannot keep up with for ~0.1 s.
pub const RING: i32 = 2 << 20;

/// A capture device and its own addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub name: String,
    pub addrs: Vec<IpAddr>,
}

fn usable(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => !v4.is_link_local() && !v4.is_unspecified(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80 && !v6.is_unspecified(),
    }
}

/// The devices to capture on now, with their usable addresses (devices without one are
/// left out until they get one).
pub fn select_devices(sel: &Interfaces) -> Result<Vec<Device>, CaptureError> {
    let all = pcap::Device::list().map_err(CaptureError::List)?;
    let addrs_of = |d: &pcap::Device| -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = d.addresses.iter().map(|a| a.addr).filter(usable).collect();
        v.sort();
        v.dedup();
        v
    };
    let is_lo = |d: &pcap::Device| d.flags.is_loopback();
    let mut out: Vec<Device> = match sel {
        Interfaces::Any => {
            let mut addrs: Vec<IpAddr> = all.iter().flat_map(addrs_of).collect();
            addrs.sort();
            addrs.dedup();
            vec![Device {
                name: "any".to_string(),
                addrs,
            }]
        }
        Interfaces::All | Interfaces::AllNoLoopback => all
            .iter()
            .filter(|d| d.name != "any" && !(matches!(sel, Interfaces::AllNoLoopback) && is_lo(d)))
            .map(|d| Device {
                name: d.name.clone(),
                addrs: addrs_of(d),
            })
            .collect(),
        Interfaces::Named(names) => names
            .iter()
            .map(|n| Device {
                name: n.clone(),
                addrs: all
                    .iter()
                    .find(|d| &d.name == n)
                    .map(addrs_of)
                    .unwrap_or_default(),
            })
            .collect(),
    };
    out.retain(|d| !d.addrs.is_empty());
    Ok(out)
}

fn port_expr(set: &crate::config::PortSet) -> String {
    set.ranges()
        .iter()
        .map(|(lo, hi)| {
            if lo == hi {
                format!("dst port {lo}")
            } else {
                format!("dst portrange {lo}-{hi}")
            }
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The BPF filter for a device: its own addresses and the monitored ports.
pub fn filter_expr(addrs: &[IpAddr], ports: &Ports) -> String {
    let hosts = addrs
        .iter()
        .map(|a| format!("dst host {a}"))
        .collect::<Vec<_>>()
        .join(" or ");
    let mut protos = Vec::new();
    if !ports.tcp.is_empty() {
        protos.push(format!("(tcp and ({}))", port_expr(&ports.tcp)));
    }
    if !ports.udp.is_empty() {
        protos.push(format!("(udp and ({}))", port_expr(&ports.udp)));
    }
    if protos.is_empty() {
        return "less 0".to_string(); // matches nothing
    }
    format!("({hosts}) and ({})", protos.join(" or "))
}

/// An opened, filtered capture, ready to run in its own thread.
pub struct Open {
    pub device: Device,
    cap: Capture<Active>,
    link: LinkType,
}

/// Opens and filters the capture on one device.
pub fn open(device: Device, ports: &Ports) -> Result<Open, CaptureError> {
    let dev = device.name.clone();
    let cap = Capture::from_device(dev.as_str())
        .and_then(|c| {
            c.promisc(false)
                .immediate_mode(true)
                .snaplen(512)
                .buffer_size(RING)
                .timeout(1000)
                .open()
        })
        .map_err(|source| CaptureError::Open {
            dev: dev.clone(),
            source,
        })?;
    let mut cap = cap;
    // libpcap opens its packet socket without close-on-exec; commands must not inherit it.
    let _ = nix::fcntl::fcntl(
        &cap,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    let dlt = cap.get_datalink().0;
    let link = LinkType::from_dlt(dlt).ok_or(CaptureError::LinkType {
        dev: dev.clone(),
        dlt,
    })?;
    // Only what arrives: on `any` and on loopback every packet is seen twice otherwise.
    if cfg!(target_os = "linux") {
        let _ = cap.direction(pcap::Direction::In);
    }
    let filter = filter_expr(&device.addrs, ports);
    cap.filter(&filter, true)
        .map_err(|source| CaptureError::Filter {
            dev: dev.clone(),
            filter,
            source,
        })?;
    Ok(Open { device, cap, link })
}

fn ts_of(h: &pcap::PacketHeader) -> SystemTime {
    let secs = u64::try_from(h.ts.tv_sec).unwrap_or(0);
    let usecs = u64::try_from(h.ts.tv_usec).unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(usecs)
}

impl Open {
    /// Reads packets until `stop` (checked at least once a second).
    pub fn run(mut self, ports: Ports, tx: Sender, stop: StopFlag) {
        while !stop.stopped() {
            match self.cap.next_packet() {
                Ok(p) => {
                    let Some(msg) =
                        ports.input(packet::parse(self.link, p.data), || ts_of(p.header))
                    else {
                        continue;
                    };
                    if tx.send(msg).is_err() {
                        return;
                    }
                }
                Err(pcap::Error::TimeoutExpired) => {}
                Err(e) => {
                    if !stop.stopped() {
                        let _ = tx.send(Input::SourceError(format!(
                            "{}: capture stopped: {e}",
                            self.device.name
                        )));
                    }
                    return;
                }
            }
        }
    }

    pub fn spawn(self, ports: Ports, tx: Sender, stop: StopFlag) -> JoinHandle<()> {
        std::thread::spawn(move || self.run(ports, tx, stop))
    }
}

/// Keeps one capture per selected device running: whenever links or addresses change
/// (or every `every` where the kernel cannot tell), re-lists devices and restarts the
/// captures whose addresses changed. Runs until `stop`.
pub fn supervise(
    sel: Interfaces,
    ports: Ports,
    tx: Sender,
    stop: StopFlag,
    mut running: Vec<(Device, StopFlag)>,
    every: Duration,
) {
    let watch = crate::facts::ChangeWatch::new(every);
    while !stop.stopped() {
        watch.wait();
        let Ok(now) = select_devices(&sel) else {
            continue;
        };
        running.retain(|(d, flag)| {
            let keep = now.contains(d);
            if !keep {
                flag.stop();
            }
            keep
        });
        for d in now {
            if running.iter().any(|(r, _)| *r == d) {
                continue;
            }
            match open(d.clone(), &ports) {
                Ok(o) => {
                    let flag = StopFlag::default();
                    o.spawn(ports.clone(), tx.clone(), flag.clone());
                    running.push((d, flag));
                }
                Err(e) => {
                    let _ = tx.send(Input::SourceError(e.to_string()));
                }
            }
        }
    }
    for (_, f) in running {
        f.stop();
    }
}

/// A recorded capture file, for `--replay`: yields (timestamp, parse result).
pub struct Replay {
    cap: Capture<pcap::Offline>,
    link: LinkType,
}

impl Replay {
    pub fn open(path: &Path) -> Result<Replay, CaptureError> {
        let ferr = |source| CaptureError::File {
            path: path.display().to_string(),
            source,
        };
        let cap = Capture::from_file(path).map_err(ferr)?;
        let dlt = cap.get_datalink().0;
        let link = LinkType::from_dlt(dlt).ok_or(CaptureError::LinkType {
            dev: path.display().to_string(),
            dlt,
        })?;
        Ok(Replay { cap, link })
    }

    /// The next packet, parsed; `None` at the end of the file.
    pub fn next_packet(&mut self) -> Option<(SystemTime, Result<packet::Summary, packet::Skip>)> {
        let p = self.cap.next_packet().ok()?;
        Some((ts_of(p.header), packet::parse(self.link, p.data)))
    }
}

/// What [`start`] started: the devices capturing now, and the devices whose
/// capture could not be opened (the supervisor retries them).
pub struct PcapStart {
    pub opened: Vec<Device>,
    pub failed: Vec<CaptureError>,
}

/// Opens a pcap capture on every selected device and starts the supervisor that follows
/// devices appearing and going away. Shared by the 2.x daemon and legacy mode; the
/// caller logs. Fails only when the devices cannot be listed.
pub fn start(
    sel: &Interfaces,
    ports: &Ports,
    tx: &crate::capture::Sender,
    stop: &StopFlag,
) -> Result<PcapStart, CaptureError> {
    let devices = select_devices(sel)?;
    let mut started = PcapStart {
        opened: Vec::new(),
        failed: Vec::new(),
    };
    let mut running = Vec::new();
    for d in devices {
        match open(d.clone(), ports) {
            Ok(open) => {
                let flag = StopFlag::default();
                open.spawn(ports.clone(), tx.clone(), flag.clone());
                started.opened.push(d.clone());
                running.push((d, flag));
            }
            Err(e) => started.failed.push(e),
        }
    }
    let (sel, ports, tx, stop) = (sel.clone(), ports.clone(), tx.clone(), stop.clone());
    std::thread::spawn(move || supervise(sel, ports, tx, stop, running, Duration::from_secs(5)));
    Ok(started)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ports::{parse_list, to_set};

    #[test]
    fn filter_lists_hosts_and_port_ranges() {
        let ports = Ports {
            tcp: to_set(&parse_list("1,10-12").0),
            udp: to_set(&parse_list("7").0),
        };
        let addrs: Vec<IpAddr> = vec![
            "198.18.0.2".parse().unwrap(),
            "fd00:5e5e::2".parse().unwrap(),
        ];
        assert_eq!(
            filter_expr(&addrs, &ports),
            "(dst host 198.18.0.2 or dst host fd00:5e5e::2) and ((tcp and (dst port 1 or dst portrange 10-12)) or (udp and (dst port 7)))"
        );
        let none = Ports {
            tcp: Default::default(),
            udp: Default::default(),
        };
        assert_eq!(filter_expr(&addrs, &none), "less 0");
    }

    #[test]
    fn link_local_and_unspecified_are_not_own_addresses() {
        assert!(!usable(&"fe80::1".parse().unwrap()));
        assert!(!usable(&"169.254.1.1".parse().unwrap()));
        assert!(usable(&"198.18.0.2".parse().unwrap()));
        assert!(usable(&"::1".parse().unwrap()));
    }
}
