//! A delivery log record (schemas/log.schema.json) checked straight from its text, for
//! `logs add` at a centre and central's import of log batches: no `Value` tree per log.
//!
//! As with results ([`super::result`]), the typed read accepts only what the schema accepts
//! and may refuse more (a member named twice, an `id` written as a float such as `7.0`): the
//! caller then reads the record as a `Value` and checks it with the schema, whose message is
//! the one reported. `tests/schemas.rs` checks that both agree.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::result::{present, AnyJson, Object, Text};

/// What is kept of a log record that passed the schema.
#[derive(Debug, Clone, PartialEq)]
pub struct LogHead {
    /// The log's id as text: a string as written, an integer in decimal (as the `Value`
    /// path writes it).
    pub id: String,
    /// `delivery_execution_id`: the centre's execution id.
    pub execution_id: String,
}

/// The typed check of a log record's text: `None` when it refuses (read it as a `Value` and
/// check it with the schema then, for the message).
pub fn read(text: &[u8]) -> Option<LogHead> {
    let w: Object<WireLog<'_>> = serde_json::from_slice(text).ok()?;
    let w = w.0;
    if w.delivery_execution_id.0.is_empty()
        || w.event_id.0.is_empty()
        || w.created_by.0.is_empty()
        || !microtime_pattern(&w.created_at.0)
    {
        return None;
    }
    Some(LogHead {
        id: w.id.0,
        execution_id: w.delivery_execution_id.0.into_owned(),
    })
}

/// The schema's `created_at` pattern: `^(0\.[0-9]+ [0-9]+|[0-9]+(\.[0-9]+)?)$`.
fn microtime_pattern(s: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some((fraction, seconds)) = s.strip_prefix("0.").and_then(|r| r.split_once(' ')) {
        if digits(fraction) && digits(seconds) {
            return true;
        }
    }
    match s.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(s),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireLog<'a> {
    id: Id,
    #[serde(borrow)]
    delivery_execution_id: Text<'a>,
    #[serde(borrow)]
    event_id: Text<'a>,
    #[allow(dead_code)]
    data: AnyJson,
    #[serde(borrow)]
    created_at: Text<'a>,
    #[serde(default, deserialize_with = "present")]
    #[allow(dead_code)]
    is_synced: Option<Synced>,
    #[serde(default, deserialize_with = "present")]
    #[allow(dead_code)]
    log_is_after_session_sync: Option<bool>,
    #[serde(borrow)]
    created_by: Text<'a>,
}

/// `id`: a string or an integer, kept as text.
struct Id(String);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
                Ok(s.to_owned())
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<String, E> {
                Ok(n.to_string())
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<String, E> {
                Ok(n.to_string())
            }
        }
        d.deserialize_any(V).map(Id)
    }
}

/// `is_synced`: a string, an integer or a boolean.
struct Synced;

impl<'de> Deserialize<'de> for Synced {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Synced;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, an integer or a boolean")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Synced, E> {
                Ok(Synced)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Synced, E> {
                Ok(Synced)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Synced, E> {
                Ok(Synced)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Synced, E> {
                Ok(Synced)
            }
        }
        d.deserialize_any(V)
    }
}
