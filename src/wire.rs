//! The documents that travel inside payloads, as serde types: scope and entity lines of a
//! data bundle, acknowledgements of both directions, the digest of an inventory, and the
//! report of an export. They depend on nothing of the sync code, so both directions (and
//! the store's callers) can share them without importing each other.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

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
    /// `stored`, `unchanged`, `replaced`, `stale`, `conflict` or `out_of_scope`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogAck {
    pub batch_id: String,
    /// `stored`, `waiting` for its result, or `kept_aside` (see reason).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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
