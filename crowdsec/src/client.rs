//! A small blocking HTTP client for the LAPI (ureq, no async runtime): the decisions
//! stream with a bouncer key, the watcher login and `POST /v1/alerts` with its token.
//!
//! In: the LAPI URL (`http://host:port`, `https://` with the `tls` feature) and the
//! credentials per call. Out: typed answers, or a [`LapiError`] naming the step, the URL
//! and what the LAPI said. Must not: retry or sleep (the caller decides), log, or read
//! a body without a size limit.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::decision::{Decision, Stream};

/// The most a stream answer may hold: 100 000 decisions are about 15 MB.
const STREAM_LIMIT: u64 = 512 * 1024 * 1024;
/// The most any other answer may hold.
const SMALL_LIMIT: u64 = 1024 * 1024;
/// How much of an error body is kept in the message.
const SHOWN: usize = 300;

/// Why a LAPI call failed: one variant per step.
#[derive(Debug, thiserror::Error)]
pub enum LapiError {
    /// The configured URL cannot be used.
    #[error("CrowdSec LAPI URL {url:?}: {why}")]
    Url { url: String, why: String },
    /// The CA certificates given for an https LAPI cannot be used.
    #[error("CA certificates for {url}: {why}")]
    Ca { url: String, why: String },
    /// No answer: connection refused, timeout, a broken connection, a certificate the
    /// client does not trust.
    #[error("{what} {url}: no answer")]
    Transport {
        what: &'static str,
        url: String,
        #[source]
        source: ureq::Error,
    },
    /// The key, password or token was refused (401, 403).
    #[error("{what} {url}: refused ({status}): {body}")]
    Refused {
        what: &'static str,
        url: String,
        status: u16,
        body: String,
    },
    /// Another status than the one expected.
    #[error("{what} {url}: HTTP {status}: {body}")]
    Status {
        what: &'static str,
        url: String,
        status: u16,
        body: String,
    },
    /// The answer is not what the API says it is.
    #[error("{what} {url}: the answer is not the LAPI's JSON: {why}")]
    Body {
        what: &'static str,
        url: String,
        why: String,
    },
}

impl LapiError {
    /// A refused credential (not worth retrying until something changes).
    pub fn is_refused(&self) -> bool {
        matches!(self, LapiError::Refused { .. })
    }
}

/// TLS settings trusting exactly the certificates in `pem`.
#[cfg(feature = "tls")]
fn tls_config(url: &str, pem: &[u8]) -> Result<ureq::tls::TlsConfig, LapiError> {
    let err = |why: String| LapiError::Ca {
        url: url.to_string(),
        why,
    };
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(err(format!("not PEM: {e}"))),
        }
    }
    if certs.is_empty() {
        return Err(err(
            "no certificate (-----BEGIN CERTIFICATE-----) in it".into()
        ));
    }
    Ok(ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
        .build())
}

/// A LAPI at one URL.
#[derive(Debug, Clone)]
pub struct Lapi {
    base: String,
    agent: ureq::Agent,
}

#[derive(Deserialize)]
struct Login {
    token: String,
}

impl Lapi {
    /// `url` is the LAPI's base (`http://198.18.77.2:8080`, a trailing `/` or `/v1`
    /// allowed); each call gives up after `timeout`. `agent` names us to the LAPI
    /// (`portsentry/0.1.0`; `cscli bouncers list` shows it).
    pub fn new(url: &str, timeout: Duration, agent: &str) -> Result<Lapi, LapiError> {
        Lapi::with_ca(url, timeout, agent, None)
    }

    /// As [`Lapi::new`], trusting for an https LAPI the certificates in `ca_pem` (PEM;
    /// a LAPI with its own CA or a self-signed certificate) instead of the Mozilla roots
    /// built in. Needs the `tls` feature.
    pub fn with_ca(
        url: &str,
        timeout: Duration,
        agent: &str,
        ca_pem: Option<&[u8]>,
    ) -> Result<Lapi, LapiError> {
        let err = |why: &str| LapiError::Url {
            url: url.to_string(),
            why: why.to_string(),
        };
        let base = url.trim().trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base);
        let rest = if let Some(r) = base.strip_prefix("http://") {
            r
        } else if let Some(r) = base.strip_prefix("https://") {
            if !cfg!(feature = "tls") {
                return Err(err(
                    "https needs portsentry built with the crowdsec `tls` feature; use http:// on a trusted network",
                ));
            }
            r
        } else {
            return Err(err("must start with http:// or https://"));
        };
        if rest.is_empty() || rest.contains(['/', '?', '#', ' ']) {
            return Err(err(
                "must be scheme://host[:port], as in http://127.0.0.1:8080",
            ));
        }
        let builder = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(agent);
        #[cfg(feature = "tls")]
        let builder = match ca_pem {
            None => builder,
            Some(pem) => builder.tls_config(tls_config(url, pem)?),
        };
        #[cfg(not(feature = "tls"))]
        if ca_pem.is_some() {
            return Err(LapiError::Ca {
                url: url.to_string(),
                why: "portsentry is built without the crowdsec `tls` feature".into(),
            });
        }
        let agent: ureq::Agent = builder.build().into();
        Ok(Lapi {
            base: base.to_string(),
            agent,
        })
    }

    /// The base URL, as used.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// `GET /v1/decisions/stream` (`startup=true` for everything active).
    pub fn stream(&self, key: &str, startup: bool) -> Result<Stream, LapiError> {
        let mut s = Stream::default();
        self.stream_each(key, startup, |deleted, d| {
            if deleted {
                s.deleted.push(d)
            } else {
                s.new.push(d)
            }
        })?;
        Ok(s)
    }

    /// The stream, each decision handed to `each` (`true` for a deleted one) as it is
    /// read: a 100 000-decision answer is never held whole. On an error some decisions
    /// may already have been handed over.
    pub fn stream_each(
        &self,
        key: &str,
        startup: bool,
        mut each: impl FnMut(bool, Decision),
    ) -> Result<(), LapiError> {
        const WHAT: &str = "decisions stream";
        let url = format!("{}/v1/decisions/stream", self.base);
        let mut resp = self
            .agent
            .get(&url)
            .query("startup", if startup { "true" } else { "false" })
            .header("X-Api-Key", key)
            .call()
            .map_err(|source| LapiError::Transport {
                what: WHAT,
                url: url.clone(),
                source,
            })?;
        if resp.status().as_u16() != 200 {
            return Self::body(WHAT, &url, resp, 200, SMALL_LIMIT).map(|_| ());
        }
        let reader = std::io::BufReader::with_capacity(
            64 * 1024,
            resp.body_mut().with_config().limit(STREAM_LIMIT).reader(),
        );
        let mut de = serde_json::Deserializer::from_reader(reader);
        serde::de::DeserializeSeed::deserialize(crate::decision::StreamSeed(&mut each), &mut de)
            .and_then(|()| de.end())
            .map_err(|e| LapiError::Body {
                what: WHAT,
                url,
                why: e.to_string(),
            })
    }

    /// `POST /v1/watchers/login`: a token for [`Lapi::push`] (valid one hour).
    pub fn login(&self, machine: &str, password: &str) -> Result<String, LapiError> {
        const WHAT: &str = "watcher login";
        let url = format!("{}/v1/watchers/login", self.base);
        let resp = self
            .agent
            .post(&url)
            .send_json(serde_json::json!({"machine_id": machine, "password": password}))
            .map_err(|source| LapiError::Transport {
                what: WHAT,
                url: url.clone(),
                source,
            })?;
        let body = Self::body(WHAT, &url, resp, 200, SMALL_LIMIT)?;
        let l: Login = serde_json::from_slice(&body).map_err(|e| LapiError::Body {
            what: WHAT,
            url,
            why: e.to_string(),
        })?;
        Ok(l.token)
    }

    /// `POST /v1/alerts`: the alerts' ids as the LAPI numbered them.
    pub fn push(&self, token: &str, alerts: &[Value]) -> Result<Vec<String>, LapiError> {
        const WHAT: &str = "alerts";
        let url = format!("{}/v1/alerts", self.base);
        let resp = self
            .agent
            .post(&url)
            .header("Authorization", format!("Bearer {token}"))
            .send_json(alerts)
            .map_err(|source| LapiError::Transport {
                what: WHAT,
                url: url.clone(),
                source,
            })?;
        let body = Self::body(WHAT, &url, resp, 201, SMALL_LIMIT)?;
        serde_json::from_slice(&body).map_err(|e| LapiError::Body {
            what: WHAT,
            url,
            why: e.to_string(),
        })
    }

    /// The body of a `want` answer, or the error the status stands for.
    fn body(
        what: &'static str,
        url: &str,
        mut resp: ureq::http::Response<ureq::Body>,
        want: u16,
        limit: u64,
    ) -> Result<Vec<u8>, LapiError> {
        let status = resp.status().as_u16();
        let read = resp.body_mut().with_config().limit(limit).read_to_vec();
        if status != want {
            let text = read
                .map(|b| String::from_utf8_lossy(&b).trim().to_string())
                .unwrap_or_default();
            let body: String = text.chars().take(SHOWN).collect();
            let url = url.to_string();
            return Err(if status == 401 || status == 403 {
                LapiError::Refused {
                    what,
                    url,
                    status,
                    body,
                }
            } else {
                LapiError::Status {
                    what,
                    url,
                    status,
                    body,
                }
            });
        }
        read.map_err(|e| LapiError::Body {
            what,
            url: url.to_string(),
            why: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Duration::from_secs(1);
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "http://[fd00:5e5e::2]:8080/v1",
            "http://lapi",
        ] {
            assert!(Lapi::new(ok, t, "x").is_ok(), "{ok}");
        }
        assert_eq!(
            Lapi::new("http://h:1/v1/", t, "x").unwrap().url(),
            "http://h:1"
        );
        for bad in [
            "",
            "127.0.0.1:8080",
            "ftp://h",
            "http://",
            "http://h/path",
            "http://h:1/v1/decisions",
        ] {
            assert!(Lapi::new(bad, t, "x").is_err(), "{bad}");
        }
        #[cfg(not(feature = "tls"))]
        assert!(Lapi::new("https://h:8080", t, "x")
            .unwrap_err()
            .to_string()
            .contains("tls"));
    }

    #[test]
    fn nobody_listening_is_a_transport_error() {
        // a port on loopback nothing listens on (bound and closed again)
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(9);
        let l = Lapi::new(
            &format!("http://127.0.0.1:{port}"),
            Duration::from_secs(2),
            "x",
        )
        .unwrap();
        let e = l.stream("k", true).unwrap_err();
        assert!(matches!(e, LapiError::Transport { .. }), "{e}");
        assert!(e.to_string().contains("no answer"), "{e}");
    }
}
