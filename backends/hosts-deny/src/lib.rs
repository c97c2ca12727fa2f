//! The `hosts-deny` backend: a marked block of lines in `/etc/hosts.deny`.
//!
//! In: typed targets and a line template (`KILL_HOSTS_DENY`, default `ALL: $TARGET$`).
//! Out: our lines between `# BEGIN portsentry …` and `# END portsentry`, appended at the
//! end of the file when absent; every other byte of the file is kept. Each change takes
//! an exclusive flock on `<path>.lock`, reads the file, and rewrites it through a temp
//! file (fsync, rename, directory fsync) keeping its mode and owner, or in place where
//! the file cannot be replaced (a bind mount). A link anyone could have planted and a
//! world-writable file are refused. hosts.deny has no expiry: the daemon's store expires.
//! The legacy `KILL_HOSTS_DENY` action ([`add_line`]) appends in place.

mod doc;
mod error;
mod file;
mod template;

use std::path::{Path, PathBuf};

use portsentry_blocker::{BlockError, Blocker, Held, Net, Step, Target};

pub use doc::{BEGIN, END};
pub use error::HostsDenyError;

use doc::{Doc, Entry};
use template::Template;

/// The backend's name.
const NAME: &str = "hosts-deny";

/// A hosts.deny file managed through our marked block.
#[derive(Debug, Clone)]
pub struct HostsDeny {
    path: PathBuf,
    template: String,
}

impl HostsDeny {
    /// A backend for the file at `path` writing lines from `template`
    /// (`$TARGET$`, `$PORT$`, `$MODE$`). Nothing is touched until [`Blocker::init`].
    pub fn new(path: impl Into<PathBuf>, template: impl Into<String>) -> HostsDeny {
        HostsDeny {
            path: path.into(),
            template: template.into(),
        }
    }

    /// The file this backend manages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, step: Step, net: Option<Net>, e: HostsDenyError) -> BlockError {
        BlockError::new(NAME, step, net, e)
    }

    fn template(&self) -> Result<Template, HostsDenyError> {
        Template::parse(&self.template).map_err(|why| HostsDenyError::BadTemplate {
            path: self.path.clone(),
            template: self.template.clone(),
            why,
        })
    }

    /// Renders `target`'s line, checking that it reads back as the same network.
    fn line(&self, template: &Template, target: &Target) -> Result<String, HostsDenyError> {
        let line = template.render(target);
        if template.parse_line(&line) != Some(target.net) {
            return Err(HostsDenyError::BadTemplate {
                path: self.path.clone(),
                template: self.template.clone(),
                why: "a line it makes does not read back as the same address",
            });
        }
        Ok(line)
    }

    /// Under the lock: reads, lets `edit` change our entries, and rewrites the file if
    /// its bytes changed (or if it does not exist and `create` is set).
    fn update(
        &self,
        create: bool,
        edit: impl FnOnce(&Template, &mut Vec<Entry>) -> Result<(), HostsDenyError>,
    ) -> Result<(), HostsDenyError> {
        let template = self.template()?;
        let _lock = file::lock(&self.path)?;
        let current = file::read(&self.path)?;
        let mut doc = Doc::parse(&current.bytes, &template);
        edit(&template, &mut doc.entries)?;
        let bytes = doc.render();
        if bytes != current.bytes || (create && current.owner.is_none()) {
            file::replace(&self.path, &bytes, current.owner)?;
        }
        Ok(())
    }

    /// Adds the targets not yet held; with `exact`, also drops entries not among them.
    fn put(&self, targets: &[Target], exact: bool) -> Result<(), HostsDenyError> {
        self.update(false, |template, entries| {
            if exact {
                entries.retain(|e| targets.iter().any(|t| t.net == e.net));
            }
            for t in targets {
                if !entries.iter().any(|e| e.net == t.net) {
                    entries.push(Entry {
                        net: t.net,
                        line: self.line(template, t)?,
                    });
                }
            }
            Ok(())
        })
    }
}

/// The one renderer of `KILL_HOSTS_DENY` lines, for the backend and the legacy action
/// alike: `$TARGET$` as tcpd wants it (IPv6 in brackets), `$PORT$`, `$MODE$`.
pub fn render_line(
    path: &Path,
    template: &str,
    ip: std::net::IpAddr,
    port: u16,
    mode: &str,
) -> Result<String, HostsDenyError> {
    let t = Template::parse_any(template).map_err(|why| HostsDenyError::BadTemplate {
        path: path.to_path_buf(),
        template: template.to_string(),
        why,
    })?;
    Ok(t.render_with(&Net::host(ip), port, mode))
}

/// What [`add_line`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    Added,
    /// An identical line was already in the file (counts as success).
    AlreadyThere,
}

/// The legacy `KILL_HOSTS_DENY` action (both dialects): appends one already rendered
/// line in place (one `O_APPEND` write, fsync) unless an identical line is anywhere in
/// the file, as §10.6 says. The same writer as the backend: the lock on `<path>.lock`,
/// the same refusals (a link anyone could have planted, world-writable, not a regular
/// file); so the backend, the 2.x action and every 1.2 process never lose each other's
/// lines, and a bind-mounted or append-only hosts.deny works.
pub fn add_line(path: &Path, line: &str) -> Result<Added, HostsDenyError> {
    if line.contains(['\n', '\r']) {
        return Err(HostsDenyError::BadLine {
            path: path.to_path_buf(),
        });
    }
    let _lock = file::lock(path)?;
    let current = file::read(path)?;
    let text = String::from_utf8_lossy(&current.bytes);
    if text.lines().any(|l| l.trim_end_matches('\r') == line) {
        return Ok(Added::AlreadyThere);
    }
    file::append(path, &current, line)?;
    Ok(Added::Added)
}

/// The one address of a batch worth naming in an error.
fn single(targets: &[Target]) -> Option<Net> {
    match targets {
        [t] => Some(t.net),
        _ => None,
    }
}

impl Blocker for HostsDeny {
    fn name(&self) -> &'static str {
        NAME
    }

    fn init(&mut self) -> Result<(), BlockError> {
        self.update(true, |_, _| Ok(()))
            .map_err(|e| self.err(Step::Init, None, e))
    }

    fn block(&mut self, target: &Target) -> Result<(), BlockError> {
        self.put(std::slice::from_ref(target), false)
            .map_err(|e| self.err(Step::Block, Some(target.net), e))
    }

    fn block_many(&mut self, targets: &[Target]) -> Result<(), BlockError> {
        if targets.is_empty() {
            return Ok(());
        }
        self.put(targets, false)
            .map_err(|e| self.err(Step::Block, single(targets), e))
    }

    fn replace_all(&mut self, targets: &[Target]) -> Result<(), BlockError> {
        self.put(targets, true)
            .map_err(|e| self.err(Step::Block, single(targets), e))
    }

    fn unblock(&mut self, net: &Net) -> Result<(), BlockError> {
        self.update(false, |_, entries| {
            entries.retain(|e| e.net != *net);
            Ok(())
        })
        .map_err(|e| self.err(Step::Unblock, Some(*net), e))
    }

    fn flush(&mut self) -> Result<(), BlockError> {
        self.update(false, |_, entries| {
            entries.clear();
            Ok(())
        })
        .map_err(|e| self.err(Step::Flush, None, e))
    }

    fn list(&mut self) -> Result<Vec<Held>, BlockError> {
        let run = || -> Result<Vec<Held>, HostsDenyError> {
            let template = self.template()?;
            let _lock = file::lock(&self.path)?;
            let current = file::read(&self.path)?;
            Ok(Doc::parse(&current.bytes, &template)
                .entries
                .into_iter()
                .map(|e| Held {
                    net: e.net,
                    remaining: None,
                })
                .collect())
        };
        run().map_err(|e| self.err(Step::List, None, e))
    }
}

#[cfg(test)]
mod tests;
