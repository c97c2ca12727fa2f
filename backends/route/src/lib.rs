//! The `route` backend: blocks a network by adding a blackhole route for it.
//!
//! In: [`Target`]s and [`Net`]s from the daemon. Out: blackhole routes in the main table.
//! - Linux: rtnetlink (`RTM_NEWROUTE` / `RTM_DELROUTE` / `RTM_GETROUTE` dump), route type
//!   `blackhole`, table `main`, route protocol [`PROTO`]. The protocol number marks our
//!   routes, so `list`, `flush` and `replace_all` see and remove only ours and never a
//!   route someone else added. Every change is acknowledged by the kernel (`NLM_F_ACK`).
//! - FreeBSD, NetBSD, OpenBSD: [`BsdRoute`], `route(8)` exec'd with an argv (never a
//!   shell, see [`argv_block`] and [`argv_unblock`]) and `netstat -rn` read back
//!   ([`argv_list`]). A route of ours is one with the blackhole flag and the loopback
//!   gateway our argv gives, so [`Blocker::list`] and [`Blocker::flush`] see and remove
//!   only those (see [`BsdRoute`] for a limit on recent FreeBSD).
//!
//! Must not: touch a route that is not ours. The message bytes ([`netlink`]), argvs and
//! the netstat reader are pure functions, tested without root; [`BsdRoute`] is compiled on
//! every OS and tested on Linux against fake `route` and `netstat` programs.

mod argv;
mod bsd;
mod error;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub mod netlink;
mod netstat;
#[cfg(test)]
mod tests;

pub use argv::{argv_block, argv_list, argv_unblock, Family, NETSTAT_PROGRAM, ROUTE_PROGRAM};
pub use bsd::{BsdOs, BsdRoute, TOOL_LIMIT};
pub use error::RouteError;

use portsentry_blocker::{BlockError, Blocker, Held, Net, Step, Target};

/// The backend's name.
pub const NAME: &str = "route";

/// Our route protocol number (`rtm_protocol`, `ip route ... proto 0x9e`).
///
/// Linux keeps this byte with every route and reports it back in dumps; numbers up to
/// 0x7f are assigned in `/etc/iproute2/rt_protos` and by routing daemons (bird 12, zebra
/// 11, ... up to babel 42, 186-192 for FRR), so 0x9e (158) is unassigned. Every route
/// carrying it in the main table with type blackhole is ours; nothing else is.
pub const PROTO: u8 = 0x9e;

/// Blackhole routes as a [`Blocker`]: rtnetlink on Linux, [`BsdRoute`] with the system's
/// own tools on FreeBSD, NetBSD and OpenBSD.
#[derive(Debug, Default)]
pub struct Route {
    #[cfg(target_os = "linux")]
    nl: linux::Netlink,
    #[cfg(any(target_os = "freebsd", target_os = "netbsd", target_os = "openbsd"))]
    bsd: BsdRoute,
}

impl Route {
    /// A backend that opens its netlink socket (Linux) on first use; on FreeBSD, NetBSD
    /// and OpenBSD, [`BsdRoute::default`]: `/sbin/route` and `/usr/bin/netstat`.
    pub fn new() -> Route {
        Route::default()
    }
}

pub(crate) fn fail(step: Step, net: Option<Net>) -> impl FnOnce(RouteError) -> BlockError {
    move |e| BlockError::new(NAME, step, net, e)
}

#[cfg(target_os = "linux")]
impl Blocker for Route {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Opens the netlink socket; there is nothing of ours to create.
    fn init(&mut self) -> Result<(), BlockError> {
        self.nl.open().map(|_| ()).map_err(fail(Step::Init, None))
    }

    fn block(&mut self, target: &Target) -> Result<(), BlockError> {
        let net = target.net;
        self.nl.add(&net).map_err(fail(Step::Block, Some(net)))
    }

    /// Adds every wanted route, then deletes each route of ours not wanted, so no
    /// wanted network is unblocked at any moment.
    fn replace_all(&mut self, targets: &[Target]) -> Result<(), BlockError> {
        let held = self.nl.dump().map_err(fail(Step::List, None))?;
        for t in targets.iter().filter(|t| !held.contains(&t.net)) {
            self.block(t)?;
        }
        for net in held {
            if !targets.iter().any(|t| t.net == net) {
                self.unblock(&net)?;
            }
        }
        Ok(())
    }

    fn unblock(&mut self, net: &Net) -> Result<(), BlockError> {
        self.nl.delete(net).map_err(fail(Step::Unblock, Some(*net)))
    }

    /// Deletes every blackhole route carrying [`PROTO`] in the main table.
    fn flush(&mut self) -> Result<(), BlockError> {
        let held = self.nl.dump().map_err(fail(Step::Flush, None))?;
        for net in held {
            self.nl.delete(&net).map_err(fail(Step::Flush, Some(net)))?;
        }
        Ok(())
    }

    /// Blackhole routes of the main table carrying [`PROTO`], IPv4 and IPv6.
    fn list(&mut self) -> Result<Vec<Held>, BlockError> {
        let nets = self.nl.dump().map_err(fail(Step::List, None))?;
        Ok(Held::untimed(nets))
    }
}

#[cfg(any(target_os = "freebsd", target_os = "netbsd", target_os = "openbsd"))]
impl Blocker for Route {
    fn name(&self) -> &'static str {
        NAME
    }

    fn init(&mut self) -> Result<(), BlockError> {
        self.bsd.init()
    }

    fn block(&mut self, target: &Target) -> Result<(), BlockError> {
        self.bsd.block(target)
    }

    fn block_many(&mut self, targets: &[Target]) -> Result<(), BlockError> {
        self.bsd.block_many(targets)
    }

    fn unblock(&mut self, net: &Net) -> Result<(), BlockError> {
        self.bsd.unblock(net)
    }

    /// Deletes every blackhole route via the loopback address (see [`BsdRoute`]).
    fn flush(&mut self) -> Result<(), BlockError> {
        self.bsd.flush()
    }

    /// Blackhole routes via the loopback address, IPv4 and IPv6, read from `netstat -rn`.
    fn list(&mut self) -> Result<Vec<Held>, BlockError> {
        self.bsd.list()
    }

    fn vanished(&mut self) -> Result<bool, BlockError> {
        self.bsd.vanished()
    }
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd"
)))]
impl Blocker for Route {
    fn name(&self) -> &'static str {
        NAME
    }
    fn init(&mut self) -> Result<(), BlockError> {
        Err(fail(Step::Init, None)(RouteError::Unsupported))
    }
    fn block(&mut self, target: &Target) -> Result<(), BlockError> {
        Err(fail(Step::Block, Some(target.net))(RouteError::Unsupported))
    }
    fn unblock(&mut self, net: &Net) -> Result<(), BlockError> {
        Err(fail(Step::Unblock, Some(*net))(RouteError::Unsupported))
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        Err(fail(Step::Flush, None)(RouteError::Unsupported))
    }
    fn list(&mut self) -> Result<Vec<Held>, BlockError> {
        Err(fail(Step::List, None)(RouteError::Unsupported))
    }
}
