//! The documents that travel inside payloads, as serde types: scope and entity lines of a
//! data bundle, acknowledgements of both directions, the digest of an inventory, and the
//! report of an export. They depend on nothing of the sync code, so both directions (and
//! the store's callers) can share them without importing each other.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::text::text_enum;

/// One line of `scope-*.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeLine {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub checksum: String,
}

/// One line of `entities-*.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityLine {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub checksum: String,
    pub properties: Map<String, Value>,
    /// Personal properties as one JSON object sealed to the centre's key (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sealed_names: Vec<String>,
}

/// `acks.json`: what central stored of the centre's results and logs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acks {
    pub results: Vec<ResultAck>,
    pub logs: Vec<LogAck>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultAck {
    pub execution_id: String,
    pub revision: i64,
    pub content_sha256: String,
    pub status: AckStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogAck {
    pub batch_id: String,
    pub status: LogAckStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

text_enum! {
    /// What central did with one result (schemas/data-acks.schema.json).
    pub enum AckStatus {
        /// New at central.
        Stored = "stored",
        /// The same content was already held.
        Unchanged = "unchanged",
        /// A copy finished later replaced the one held.
        Replaced = "replaced",
        /// Central holds a copy finished later; this one was ignored (see reason).
        Stale = "stale",
        /// Same id, other content central will not replace: kept aside (see reason).
        Conflict = "conflict",
        /// Its delivery or test taker was never sent to this centre: kept aside.
        OutOfScope = "out_of_scope",
    }
}

text_enum! {
    /// What central did with one log batch.
    pub enum LogAckStatus {
        Stored = "stored",
        /// Central holds the logs but not yet the result of their execution.
        Waiting = "waiting",
        /// Their result was kept aside, and so are they (see reason).
        KeptAside = "kept_aside",
    }
}

/// What an export wrote (or that there was nothing to write).
#[derive(Debug, Serialize)]
pub struct ExportReport {
    pub files: Vec<PathBuf>,
    pub counts: BTreeMap<String, u64>,
    pub message: String,
    /// Things to check, such as a centre with nothing in its scope.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Digest of an inventory: sorted `id checksum` lines.
pub fn inventory_digest<'a>(items: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut v: Vec<(&str, &str)> = items.collect();
    v.sort();
    let mut h = Sha256::new();
    for (id, sum) in v {
        h.update(id.as_bytes());
        h.update(b" ");
        h.update(sum.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::{AckStatus, LogAckStatus};

    #[test]
    fn status_texts_are_their_serde_names() {
        for s in AckStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(AckStatus::parse(s.as_str()), Some(*s));
        }
        for s in LogAckStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
