//! BSD: blackhole routes made with `route(8)` and read back with `netstat(1)`, both
//! exec'd with an argv through the shared runner (`portsentry_exec::run`), never a shell.
//!
//! In: [`Target`]s and [`Net`]s from the daemon; a [`BsdRoute`] saying where the two tools
//! are, which BSD prints the table and how long a tool may run. Out: host and network
//! blackhole routes via the loopback address ([`argv_block`]); [`Blocker::list`] reads
//! `netstat -rn -f inet` and `-f inet6` and reports exactly the routes that carry the
//! blackhole flag `B` and that loopback gateway ([`crate::netstat`]), and
//! [`Blocker::flush`] deletes exactly those. The environment of both tools gets
//! `LC_ALL=C`.
//!
//! Must not: delete or claim a route that is not ours. `route add` of a network that
//! already has a route, and `route delete` of a network whose route is not ours, leave
//! that route alone. Compiled on every OS (the public [`crate::Route`] uses it only on
//! FreeBSD, NetBSD and OpenBSD), so its tests run on Linux against fake tools.
//!
//! Known limit: FreeBSD's nexthop code (14; `nhop_set_blackhole()`) stores every blackhole
//! route with gateway `127.0.0.1` / `::1`, whatever gateway it was added with, so there a
//! blackhole route that someone else added by hand looks like ours and is listed and
//! flushed.

use crate::argv::Family;
use crate::{argv_block, argv_list, argv_unblock, fail, RouteError, NAME};
use crate::{NETSTAT_PROGRAM, ROUTE_PROGRAM};
use portsentry_blocker::{BlockError, Blocker, Held, Net, Step, Target};
use portsentry_exec::{Program, Ran, Spec, Stdout};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

/// How long `route(8)` or `netstat(1)` may take by default.
pub const TOOL_LIMIT: Duration = Duration::from_secs(10);

/// Which BSD's `route(8)` and `netstat(1)` are run. The three print the same columns for
/// what we read; only FreeBSD's netstat may name the loopback gateway `localhost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BsdOs {
    FreeBsd,
    NetBsd,
    OpenBsd,
}

impl BsdOs {
    /// The BSD this program was built for; `None` on any other OS.
    pub const fn native() -> Option<BsdOs> {
        if cfg!(target_os = "freebsd") {
            Some(BsdOs::FreeBsd)
        } else if cfg!(target_os = "netbsd") {
            Some(BsdOs::NetBsd)
        } else if cfg!(target_os = "openbsd") {
            Some(BsdOs::OpenBsd)
        } else {
            None
        }
    }
}

/// Blackhole routes through `route(8)` and `netstat(1)` as a [`Blocker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BsdRoute {
    /// `route(8)`, run by this path ([`ROUTE_PROGRAM`] by default).
    pub route: PathBuf,
    /// `netstat(1)`, run by this path ([`NETSTAT_PROGRAM`] by default).
    pub netstat: PathBuf,
    /// Whose output format to read.
    pub os: BsdOs,
    /// How long one run of either tool may take before its process group is killed.
    pub limit: Duration,
}

#[cfg(any(target_os = "freebsd", target_os = "netbsd", target_os = "openbsd"))]
impl Default for BsdRoute {
    /// The system's own tools, for the BSD this was built for.
    fn default() -> BsdRoute {
        #[cfg(target_os = "freebsd")]
        let os = BsdOs::FreeBsd;
        #[cfg(target_os = "netbsd")]
        let os = BsdOs::NetBsd;
        #[cfg(target_os = "openbsd")]
        let os = BsdOs::OpenBsd;
        BsdRoute::new(os)
    }
}

/// A tool that ran to its end (with any status).
struct Finished {
    /// The argv as run, real path first, for errors.
    argv: String,
    status: ExitStatus,
    ran: Ran,
}

impl Finished {
    /// stderr and stdout together, for recognising what the tool said.
    fn said(&self) -> String {
        format!(
            "{} {}",
            self.ran.stderr,
            String::from_utf8_lossy(&self.ran.stdout)
        )
    }

    fn failed(self) -> RouteError {
        let stderr = if self.ran.stderr.is_empty() {
            String::from_utf8_lossy(&self.ran.stdout).trim().to_string()
        } else {
            self.ran.stderr
        };
        RouteError::Exit {
            argv: self.argv,
            status: self.status,
            stderr,
        }
    }
}

impl BsdRoute {
    /// The system's tools at their usual paths ([`ROUTE_PROGRAM`], [`NETSTAT_PROGRAM`]),
    /// read as `os` prints them, with [`TOOL_LIMIT`].
    pub fn new(os: BsdOs) -> BsdRoute {
        BsdRoute {
            route: PathBuf::from(ROUTE_PROGRAM),
            netstat: PathBuf::from(NETSTAT_PROGRAM),
            os,
            limit: TOOL_LIMIT,
        }
    }

    /// Runs `argv` with `argv[0]` replaced by `program`, to its end or the time limit.
    fn run(&self, program: &Path, argv: &[String]) -> Result<Finished, RouteError> {
        let path = program.to_str().ok_or_else(|| RouteError::BadPath {
            path: program.to_path_buf(),
        })?;
        let full: Vec<String> = std::iter::once(path.to_string())
            .chain(argv.iter().skip(1).cloned())
            .collect();
        let line = full.join(" ");
        let program = Program::Argv(full);
        let ran = portsentry_exec::run(&Spec {
            stdout: Stdout::Capture,
            env: &[("LC_ALL", "C")],
            ..Spec::new(&program, self.limit)
        })
        .map_err(|source| RouteError::Spawn {
            argv: line.clone(),
            source,
        })?;
        match ran.status {
            Some(status) => Ok(Finished {
                argv: line,
                status,
                ran,
            }),
            None => Err(RouteError::Timeout {
                argv: line,
                limit: self.limit,
                stderr: ran.stderr,
            }),
        }
    }

    /// Adds the blackhole route for `net`. A route that is already there is success if it
    /// is ours, [`RouteError::NotOurs`] if not.
    pub fn add(&self, net: &Net) -> Result<(), RouteError> {
        let done = self.run(&self.route, &argv_block(net))?;
        if done.status.success() {
            return Ok(());
        }
        // EEXIST: "File exists" (NetBSD, OpenBSD; FreeBSD's routing-socket warning),
        // "route already in table" (FreeBSD route(8) on stdout).
        let said = done.said();
        if said.contains("File exists") || said.contains("route already in table") {
            return if self.held()?.contains(net) {
                Ok(())
            } else {
                Err(RouteError::NotOurs { net: *net })
            };
        }
        Err(done.failed())
    }

    /// Deletes the route for `net` if it is ours; a missing route, or one that is not ours
    /// (left alone), is success.
    pub fn delete(&self, net: &Net) -> Result<(), RouteError> {
        if !self.held()?.contains(net) {
            return Ok(());
        }
        self.delete_ours(net)
    }

    /// Deletes the route for `net`, known to be ours; a missing route is success.
    pub(crate) fn delete_ours(&self, net: &Net) -> Result<(), RouteError> {
        let done = self.run(&self.route, &argv_unblock(net))?;
        if done.status.success() {
            return Ok(());
        }
        // ESRCH: "not in table" (all three route(8)s), "No such process" (the
        // routing-socket warning): gone meanwhile.
        let said = done.said();
        if said.contains("not in table") || said.contains("No such process") {
            return Ok(());
        }
        Err(done.failed())
    }

    /// The networks of our blackhole routes, IPv4 then IPv6, in netstat's order.
    pub fn held(&self) -> Result<Vec<Net>, RouteError> {
        let mut nets = Vec::new();
        for family in Family::ALL {
            let done = self.run(&self.netstat, &argv_list(family))?;
            if !done.status.success() {
                return Err(done.failed());
            }
            let text = String::from_utf8_lossy(&done.ran.stdout);
            let found =
                crate::netstat::ours(&text, family, self.os).map_err(|u| RouteError::Parse {
                    argv: done.argv.clone(),
                    number: u.number,
                    line: u.line,
                    what: u.what,
                })?;
            nets.extend(found);
        }
        Ok(nets)
    }
}

impl Blocker for BsdRoute {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Nothing to set up: `route(8)` needs no table of ours.
    fn init(&mut self) -> Result<(), BlockError> {
        Ok(())
    }

    fn block(&mut self, target: &Target) -> Result<(), BlockError> {
        let net = target.net;
        self.add(&net).map_err(fail(Step::Block, Some(net)))
    }

    /// One `route add` per target, in order; stops at the first failure.
    fn block_many(&mut self, targets: &[Target]) -> Result<(), BlockError> {
        targets.iter().try_for_each(|t| self.block(t))
    }

    fn unblock(&mut self, net: &Net) -> Result<(), BlockError> {
        self.delete(net).map_err(fail(Step::Unblock, Some(*net)))
    }

    /// Deletes exactly the routes [`Blocker::list`] reports.
    fn flush(&mut self) -> Result<(), BlockError> {
        let held = self.held().map_err(fail(Step::Flush, None))?;
        for net in held {
            self.delete_ours(&net)
                .map_err(fail(Step::Flush, Some(net)))?;
        }
        Ok(())
    }

    /// Blackhole routes via the loopback address, IPv4 and IPv6; `route(8)` keeps no
    /// timeout.
    fn list(&mut self) -> Result<Vec<Held>, BlockError> {
        let nets = self.held().map_err(fail(Step::List, None))?;
        Ok(Held::untimed(nets))
    }

    /// Routes do not vanish with a firewall reload.
    fn vanished(&mut self) -> Result<bool, BlockError> {
        Ok(false)
    }
}
