//! The `KILL_HOSTS_DENY` line template: rendering a line and reading one back.
//!
//! In: a template such as `ALL: $TARGET$` (`$TARGET$`, `$PORT$`, `$MODE$`). Out: the
//! line for a target (IPv6 in brackets as tcpd wants, a network as `addr/len`), and the
//! network a line of our block names, or `None` for a line the template cannot produce.

use std::net::IpAddr;

use portsentry_blocker::{Net, Target};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(String),
    Target,
    Port,
    Mode,
}

/// The mode word `$MODE$` stands for.
const MODE: &str = "stealth";

/// A parsed line template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    toks: Vec<Tok>,
}

impl Template {
    /// Splits `text` into literals and placeholders; `Err` says why it is unusable.
    pub(crate) fn parse_any(text: &str) -> Result<Template, &'static str> {
        if text.contains(['\n', '\r']) {
            return Err("contains a line break");
        }
        let mut toks = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while !rest.is_empty() {
            let found = [
                ("$TARGET$", Tok::Target),
                ("$PORT$", Tok::Port),
                ("$MODE$", Tok::Mode),
            ]
            .into_iter()
            .find(|(k, _)| rest.starts_with(k));
            match found {
                Some((key, tok)) => {
                    if !lit.is_empty() {
                        toks.push(Tok::Lit(std::mem::take(&mut lit)));
                    }
                    toks.push(tok);
                    rest = &rest[key.len()..];
                }
                None => {
                    let mut chars = rest.chars();
                    if let Some(c) = chars.next() {
                        lit.push(c);
                    }
                    rest = chars.as_str();
                }
            }
        }
        if !lit.is_empty() {
            toks.push(Tok::Lit(lit));
        }
        Ok(Template { toks })
    }

    /// [`Template::parse_any`], and the template must name the target (the backend reads
    /// its lines back).
    pub(crate) fn parse(text: &str) -> Result<Template, &'static str> {
        let t = Template::parse_any(text)?;
        if !t.toks.contains(&Tok::Target) {
            return Err("has no $TARGET$");
        }
        Ok(t)
    }

    /// The line for `target`, without a line terminator.
    pub(crate) fn render(&self, target: &Target) -> String {
        self.render_with(&target.net, target.reason.port, MODE)
    }

    /// The line for `net` with `$PORT$` and `$MODE$` as given (the legacy action's
    /// `$MODE$` is the running mode's word).
    pub(crate) fn render_with(&self, net: &Net, port: u16, mode: &str) -> String {
        let mut out = String::new();
        for tok in &self.toks {
            match tok {
                Tok::Lit(l) => out.push_str(l),
                Tok::Target => out.push_str(&target_text(net)),
                Tok::Port => out.push_str(&port.to_string()),
                Tok::Mode => out.push_str(mode),
            }
        }
        out
    }

    /// The network named by `line` if the template can produce it (trailing blanks ignored).
    pub(crate) fn parse_line(&self, line: &str) -> Option<Net> {
        let mut found = None;
        if matches(&self.toks, line.trim_end(), &mut found) {
            found
        } else {
            None
        }
    }
}

/// How tcpd wants an address: IPv6 in brackets, a network with `/len`.
pub(crate) fn target_text(net: &Net) -> String {
    let addr = match net.addr() {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    };
    if net.is_host() {
        addr
    } else {
        format!("{addr}/{}", net.prefix())
    }
}

/// Reads back what [`target_text`] writes (brackets optional).
fn parse_target(s: &str) -> Option<Net> {
    let plain = match s.strip_prefix('[') {
        Some(inner) => {
            let (addr, rest) = inner.split_once(']')?;
            if !addr.contains(':') {
                return None;
            }
            format!("{addr}{rest}")
        }
        None => s.to_string(),
    };
    if plain.contains(['[', ']']) {
        return None;
    }
    plain.parse().ok()
}

/// Matches `s` against `toks`, trying every split for placeholders; every
/// `$TARGET$` must name the same network.
fn matches(toks: &[Tok], s: &str, found: &mut Option<Net>) -> bool {
    let Some((first, rest)) = toks.split_first() else {
        return s.is_empty();
    };
    match first {
        Tok::Lit(l) => s
            .strip_prefix(l.as_str())
            .is_some_and(|r| matches(rest, r, found)),
        Tok::Mode => s
            .strip_prefix(MODE)
            .is_some_and(|r| matches(rest, r, found)),
        Tok::Port => {
            let digits = s.bytes().take_while(u8::is_ascii_digit).count().min(5);
            (1..=digits)
                .any(|end| s[..end].parse::<u16>().is_ok() && matches(rest, &s[end..], found))
        }
        Tok::Target => (1..=s.len())
            .filter(|&end| s.is_char_boundary(end))
            .any(|end| {
                let Some(net) = parse_target(&s[..end]) else {
                    return false;
                };
                if found.is_some_and(|f| f != net) {
                    return false;
                }
                let before = *found;
                *found = Some(net);
                if matches(rest, &s[end..], found) {
                    true
                } else {
                    *found = before;
                    false
                }
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portsentry_blocker::Reason;

    fn target(s: &str, port: u16) -> Target {
        Target {
            net: s.parse().unwrap(),
            timeout: None,
            reason: Reason {
                protocol: "TCP".into(),
                port,
                scan: Default::default(),
            },
        }
    }

    #[test]
    fn renders_and_reads_back() {
        let t = Template::parse("ALL: $TARGET$ : DENY # $PORT$ $MODE$").unwrap();
        for (net, line) in [
            ("198.18.0.1", "ALL: 198.18.0.1 : DENY # 23 stealth"),
            ("fd00:5e5e::1", "ALL: [fd00:5e5e::1] : DENY # 23 stealth"),
            ("198.18.0.0/16", "ALL: 198.18.0.0/16 : DENY # 23 stealth"),
            (
                "fd00:5e5e::/32",
                "ALL: [fd00:5e5e::]/32 : DENY # 23 stealth",
            ),
        ] {
            let tg = target(net, 23);
            assert_eq!(t.render(&tg), line);
            assert_eq!(t.parse_line(line), Some(tg.net));
        }
        assert_eq!(t.parse_line("sshd: 198.18.0.1"), None);
        assert_eq!(
            t.parse_line("ALL: 198.18.0.1 : DENY # 99999999 stealth"),
            None
        );
    }

    #[test]
    fn default_template_and_adjacent_placeholders() {
        let t = Template::parse("ALL: $TARGET$").unwrap();
        assert_eq!(t.parse_line("ALL: 198.18.0.1  "), "198.18.0.1".parse().ok());
        let t = Template::parse("$TARGET$$PORT$").unwrap();
        let tg = target("198.18.0.1", 80);
        assert_eq!(t.parse_line(&t.render(&tg)), Some(tg.net));
    }

    #[test]
    fn rejects_unusable_templates() {
        assert!(Template::parse("ALL: 198.18.0.1").is_err());
        assert!(Template::parse("ALL: $TARGET$\nALL: x").is_err());
    }
}
