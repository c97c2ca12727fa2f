//! The decisions stream (`GET /v1/decisions/stream`) and what a decision means for us.
//!
//! In: the stream's JSON. Out: [`Stream`] (`new` and `deleted`, empty for the LAPI's
//! `null`) and, per decision, a [`Ban`] of a network for a remaining time, or why it
//! is not one. Pure.

use std::time::Duration;

use portsentry_blocker::Net;
use serde::Deserialize;

use crate::duration::parse_go;

/// One decision as the LAPI sends it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Decision {
    #[serde(default)]
    pub id: i64,
    /// Remaining time, a Go duration; negative in `deleted`.
    pub duration: String,
    #[serde(default)]
    pub origin: String,
    #[serde(default)]
    pub scenario: String,
    /// `Ip` or `Range` (any case).
    pub scope: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

/// One answer of the stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Stream {
    #[serde(default, deserialize_with = "null_is_empty")]
    pub new: Vec<Decision>,
    #[serde(default, deserialize_with = "null_is_empty")]
    pub deleted: Vec<Decision>,
}

fn null_is_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Decision>, D::Error> {
    Ok(Option::<Vec<Decision>>::deserialize(d)?.unwrap_or_default())
}

/// Reads a stream answer, handing each decision to a callback (`true` for `deleted`)
/// instead of collecting them; `null` lists are empty, unknown keys skipped.
pub(crate) struct StreamSeed<'a, F>(pub &'a mut F);

impl<'de, F: FnMut(bool, Decision)> serde::de::DeserializeSeed<'de> for StreamSeed<'_, F> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: FnMut(bool, Decision)> serde::de::Visitor<'de> for StreamSeed<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object with \"new\" and \"deleted\"")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "new" => map.next_value_seed(ListSeed(&mut *self.0, false))?,
                "deleted" => map.next_value_seed(ListSeed(&mut *self.0, true))?,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// One list of a stream answer: `null` or an array of decisions.
struct ListSeed<'a, F>(&'a mut F, bool);

impl<'de, F: FnMut(bool, Decision)> serde::de::DeserializeSeed<'de> for ListSeed<'_, F> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, F: FnMut(bool, Decision)> serde::de::Visitor<'de> for ListSeed<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("null or an array of decisions")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(d) = seq.next_element::<Decision>()? {
            (self.0)(self.1, d);
        }
        Ok(())
    }
}

/// A ban of `net`: what the bouncer side applies or lifts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub net: Net,
    /// Time left; `None` when it is already over (a deletion, or expired in transit).
    pub remaining: Option<Duration>,
    pub origin: String,
    pub scenario: String,
}

/// Why a decision is not a ban we can apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    /// Not `ban` (captcha, throttle, ...): a firewall cannot serve it.
    #[error("decision {id} is a {kind:?}, not a ban")]
    NotABan { id: i64, kind: String },
    /// A scope other than Ip or Range (Country, AS, ...).
    #[error("decision {id} has scope {scope:?}; only Ip and Range are applied")]
    Scope { id: i64, scope: String },
    /// The value is not an address or network of the scope.
    #[error("decision {id}: {value:?} is not an {scope} value: {why}")]
    Value {
        id: i64,
        scope: String,
        value: String,
        why: String,
    },
    /// The duration does not parse.
    #[error("decision {id}: {why}")]
    Duration { id: i64, why: String },
}

impl Decision {
    /// The ban this decision stands for.
    pub fn ban(&self) -> Result<Ban, DecisionError> {
        if !self.kind.eq_ignore_ascii_case("ban") {
            return Err(DecisionError::NotABan {
                id: self.id,
                kind: self.kind.clone(),
            });
        }
        let value_err = |why: String| DecisionError::Value {
            id: self.id,
            scope: self.scope.clone(),
            value: self.value.clone(),
            why,
        };
        let net = if self.scope.eq_ignore_ascii_case("ip") {
            let addr = self
                .value
                .trim()
                .parse()
                .map_err(|e: std::net::AddrParseError| value_err(e.to_string()))?;
            Net::host(addr)
        } else if self.scope.eq_ignore_ascii_case("range") {
            self.value
                .trim()
                .parse::<Net>()
                .map_err(|e| value_err(e.to_string()))?
        } else {
            return Err(DecisionError::Scope {
                id: self.id,
                scope: self.scope.clone(),
            });
        };
        let d =
            parse_go(&self.duration).map_err(|why| DecisionError::Duration { id: self.id, why })?;
        Ok(Ban {
            net,
            remaining: d.remaining(),
            origin: self.origin.clone(),
            scenario: self.scenario.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lapis_stream_parses() {
        let s: Stream = serde_json::from_str(r#"{"deleted":null,"new":[
 {"duration":"29m59.530194045s","id":2,"origin":"portsentry","scenario":"portsentry/portscan","scope":"Range","type":"ban","value":"198.18.9.0/24"},
 {"duration":"59m59.530192873s","id":1,"origin":"portsentry","scenario":"portsentry/portscan","scope":"Ip","type":"ban","value":"198.18.5.5"},
 {"duration":"2h29m59.530192201s","id":3,"origin":"cscli","scenario":"manual","scope":"Range","type":"ban","value":"fd00:5e5e::/64"},
 {"duration":"3h","id":4,"origin":"crowdsec","scenario":"x","scope":"Ip","type":"captcha","value":"198.18.6.6"}]}"#).unwrap();
        assert!(s.deleted.is_empty());
        let bans: Vec<Result<Ban, DecisionError>> = s.new.iter().map(Decision::ban).collect();
        let b = bans[0].as_ref().unwrap();
        assert_eq!(b.net.to_string(), "198.18.9.0/24");
        assert_eq!(b.remaining.unwrap().as_secs(), 1799);
        assert_eq!(bans[1].as_ref().unwrap().net.to_string(), "198.18.5.5");
        assert_eq!(bans[2].as_ref().unwrap().net.to_string(), "fd00:5e5e::/64");
        assert!(matches!(bans[3], Err(DecisionError::NotABan { id: 4, .. })));
        let empty: Stream = serde_json::from_str(r#"{"deleted":null,"new":null}"#).unwrap();
        assert_eq!(empty, Stream::default());
        let filtered: Stream = serde_json::from_str(r#"{"new":[],"deleted":[]}"#).unwrap();
        assert_eq!(filtered, Stream::default());
    }

    #[test]
    fn the_stream_is_read_one_decision_at_a_time() {
        let text = r#"{"deleted":[{"duration":"-1s","id":7,"origin":"o","scenario":"s","scope":"Ip","type":"ban","value":"198.18.0.7"}],"extra":{"x":[1,2]},"new":null}"#;
        let mut got = Vec::new();
        let mut each = |deleted: bool, d: Decision| got.push((deleted, d.id));
        let mut de = serde_json::Deserializer::from_str(text);
        serde::de::DeserializeSeed::deserialize(StreamSeed(&mut each), &mut de).unwrap();
        assert_eq!(got, vec![(true, 7)]);
        let mut none = |_: bool, _: Decision| panic!("no decision expected");
        let mut de = serde_json::Deserializer::from_str(r#"{"new":[{"oops"#);
        assert!(serde::de::DeserializeSeed::deserialize(StreamSeed(&mut none), &mut de).is_err());
    }

    #[test]
    fn deletions_have_no_time_left() {
        let d = Decision {
            id: 1,
            duration: "-13.275685ms".into(),
            origin: "portsentry".into(),
            scenario: "s".into(),
            scope: "Ip".into(),
            kind: "ban".into(),
            value: "198.18.5.5".into(),
        };
        assert_eq!(d.ban().unwrap().remaining, None);
    }

    #[test]
    fn bad_values_are_named() {
        let mk = |scope: &str, value: &str, duration: &str| Decision {
            id: 9,
            duration: duration.into(),
            origin: String::new(),
            scenario: String::new(),
            scope: scope.into(),
            kind: "ban".into(),
            value: value.into(),
        };
        assert!(matches!(
            mk("Ip", "not-an-ip", "1h").ban(),
            Err(DecisionError::Value { .. })
        ));
        assert!(matches!(
            mk("Range", "198.18.0.0/33", "1h").ban(),
            Err(DecisionError::Value { .. })
        ));
        assert!(matches!(
            mk("Country", "FR", "1h").ban(),
            Err(DecisionError::Scope { .. })
        ));
        assert!(matches!(
            mk("Ip", "198.18.0.1", "7d").ban(),
            Err(DecisionError::Duration { .. })
        ));
        // a /32 as Ip scope, and a host as a Range: both fine
        assert!(mk("Range", "198.18.12.5", "1h").ban().is_ok());
    }
}
