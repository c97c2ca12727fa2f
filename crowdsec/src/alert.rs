//! The alert a block of ours becomes (`POST /v1/alerts`): one ban decision, scope `Ip`
//! (or `Range` for a network), origin `portsentry`, scenario `portsentry/<scan>`, the
//! scan as the alert's one event.
//!
//! In: a [`Report`] and the time as RFC 3339 text. Out: the alert's JSON. Pure.

use std::time::Duration;

use portsentry_blocker::Net;
use serde_json::{json, Value};

use crate::duration::format_go;

/// The origin of the decisions we push (and recognise when they come back).
pub const ORIGIN: &str = "portsentry";

/// How long a permanent block of ours lasts in the LAPI: ten years.
const PERMANENT: Duration = Duration::from_secs(10 * 365 * 86_400);

/// One block of ours, as it is shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub net: Net,
    /// How long it lasts; `None` = permanent.
    pub timeout: Option<Duration>,
    /// The scan as logged (`TCP SYN/Normal scan`, `manual`).
    pub scan: String,
    /// `tcp`, `udp`, or empty.
    pub protocol: String,
    pub port: u16,
    /// This host's name, for the message.
    pub host: String,
}

impl Report {
    /// `portsentry/<scan>`: the scan in lower case, words joined by `-`
    /// (`portsentry/tcp-syn-normal-scan`).
    pub fn scenario(&self) -> String {
        let slug: Vec<String> = self
            .scan
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        if slug.is_empty() {
            "portsentry/portscan".to_string()
        } else {
            format!("portsentry/{}", slug.join("-"))
        }
    }

    fn scope(&self) -> &'static str {
        if self.net.is_host() {
            "Ip"
        } else {
            "Range"
        }
    }

    fn value(&self) -> String {
        if self.net.is_host() {
            self.net.addr().to_string()
        } else {
            self.net.to_string()
        }
    }
}

/// The alert for `r`, stamped `now` (RFC 3339, UTC): the LAPI counts a decision's time
/// from the alert's `stop_at`.
pub fn alert_json(r: &Report, now: &str) -> Value {
    let scenario = r.scenario();
    let value = r.value();
    let duration = format_go(r.timeout.unwrap_or(PERMANENT));
    let target = if r.protocol.is_empty() {
        String::new()
    } else {
        format!(" on {}/{}", r.protocol, r.port)
    };
    let mut source = json!({"scope": r.scope(), "value": value});
    if r.net.is_host() {
        source["ip"] = json!(value);
    } else {
        source["range"] = json!(value);
    }
    json!({
        "scenario": scenario,
        "scenario_hash": "",
        "scenario_version": "",
        "message": format!("portsentry on {}: {} {}{target}", r.host, value, r.scan),
        "events_count": 1,
        "start_at": now,
        "stop_at": now,
        "capacity": 0,
        "leakspeed": "0s",
        "simulated": false,
        "events": [{
            "timestamp": now,
            "meta": [
                {"key": "service", "value": "portsentry"},
                {"key": "scan", "value": r.scan},
                {"key": "protocol", "value": r.protocol},
                {"key": "dst_port", "value": r.port.to_string()},
                {"key": "source_ip", "value": value},
            ],
        }],
        "source": source,
        "decisions": [{
            "origin": ORIGIN,
            "type": "ban",
            "scope": r.scope(),
            "value": value,
            "duration": duration,
            "scenario": scenario,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_block_becomes_one_ip_ban() {
        let r = Report {
            net: "198.18.5.5".parse().unwrap(),
            timeout: Some(Duration::from_secs(3600)),
            scan: "TCP SYN/Normal scan".into(),
            protocol: "tcp".into(),
            port: 23,
            host: "fw1".into(),
        };
        let a = alert_json(&r, "2026-12-03T06:25:47Z");
        assert_eq!(a["scenario"], "portsentry/tcp-syn-normal-scan");
        assert_eq!(
            a["source"],
            json!({"scope": "Ip", "value": "198.18.5.5", "ip": "198.18.5.5"})
        );
        assert_eq!(
            a["decisions"],
            json!([{"origin": "portsentry", "type": "ban", "scope": "Ip", "value": "198.18.5.5", "duration": "3600s", "scenario": "portsentry/tcp-syn-normal-scan"}])
        );
        assert_eq!(
            a["message"],
            "portsentry on fw1: 198.18.5.5 TCP SYN/Normal scan on tcp/23"
        );
        for key in [
            "scenario_hash",
            "scenario_version",
            "events_count",
            "start_at",
            "stop_at",
            "capacity",
            "leakspeed",
            "simulated",
            "events",
        ] {
            assert!(!a[key].is_null(), "{key}");
        }
    }

    #[test]
    fn a_network_is_a_range_and_permanent_is_long() {
        let r = Report {
            net: "fd00:5e5e::/64".parse().unwrap(),
            timeout: None,
            scan: "manual".into(),
            protocol: String::new(),
            port: 0,
            host: "fw1".into(),
        };
        let a = alert_json(&r, "2026-12-03T06:25:47Z");
        assert_eq!(a["decisions"][0]["scope"], "Range");
        assert_eq!(a["decisions"][0]["value"], "fd00:5e5e::/64");
        assert_eq!(a["decisions"][0]["duration"], "315360000s");
        assert_eq!(a["scenario"], "portsentry/manual");
    }
}
