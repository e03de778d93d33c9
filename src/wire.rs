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
    /// Centre: how many results and log batches are sent for the first time, and how many
    /// again (central is known to miss them, or `--resend-all`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<SentCounts>,
}

/// A centre export's items, new and sent again.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SentCounts {
    pub results_new: u64,
    pub results_resent: u64,
    pub log_batches_new: u64,
    pub log_batches_resent: u64,
    /// Sent and not acknowledged, not sent again this time: central may not have seen
    /// their file yet, or the grace period (`resend_after_hours`) has not passed.
    pub held_back: u64,
}

/// `ext/received/results-files.json` of a data bundle (schemas/data-received.schema.json):
/// the centre's upward files central has applied, by sequence, as ranges. Always the whole
/// list, so the newest data bundle applied tells everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceivedFiles {
    pub applied: Vec<SeqRange>,
}

/// Sequences `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeqRange {
    pub first: i64,
    pub last: i64,
}

/// Where an upward file stands at central, as the centre learns it from [`ReceivedFiles`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFate {
    /// Central applied the file; what it carried and is still unanswered was not kept
    /// (a log batch waiting for its result, or one refused there).
    Applied,
    /// Central applied later files but not this one: lost, or still on its way.
    Missing,
    /// Central has not applied any file from this one on: not carried yet.
    NotSeenYet,
    /// Central never said (an older central), or the item was sent before courier noted
    /// its file.
    Unknown,
}

impl FileFate {
    /// Whether central is known not to hold what the file carried (`--resend` sends it at
    /// once): it applied later files, applied this one without keeping all of it, or never
    /// said.
    pub fn is_known_missing(self) -> bool {
        !matches!(self, FileFate::NotSeenYet)
    }
}

impl ReceivedFiles {
    /// Ranges of ascending, de-duplicated sequences.
    pub fn from_seqs(seqs: impl IntoIterator<Item = i64>) -> ReceivedFiles {
        let mut applied: Vec<SeqRange> = Vec::new();
        for s in seqs {
            match applied.last_mut() {
                Some(r) if s <= r.last => {}
                Some(r) if s == r.last + 1 => r.last = s,
                _ => applied.push(SeqRange { first: s, last: s }),
            }
        }
        ReceivedFiles { applied }
    }

    pub fn contains(&self, seq: i64) -> bool {
        self.applied.iter().any(|r| r.first <= seq && seq <= r.last)
    }

    pub fn highest(&self) -> Option<i64> {
        self.applied.last().map(|r| r.last)
    }

    /// Sequences below the highest applied that central has not applied (at most `max`).
    pub fn missing(&self, max: usize) -> Vec<i64> {
        let mut out = Vec::new();
        let mut next = 1;
        for r in &self.applied {
            out.extend((next..r.first).take(max.saturating_sub(out.len())));
            next = r.last + 1;
        }
        out
    }

    /// The fate of the file with sequence `seq` (`None`: not known).
    pub fn fate(received: Option<&ReceivedFiles>, seq: Option<i64>) -> FileFate {
        let (Some(r), Some(seq)) = (received, seq) else {
            return FileFate::Unknown;
        };
        if r.contains(seq) {
            FileFate::Applied
        } else if r.highest().is_some_and(|h| h > seq) {
            FileFate::Missing
        } else {
            FileFate::NotSeenYet
        }
    }
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
    use super::{AckStatus, FileFate, LogAckStatus, ReceivedFiles, SeqRange};

    #[test]
    fn received_files_are_ranges_with_their_gaps() {
        let r = ReceivedFiles::from_seqs([1, 2, 3, 5, 5, 8, 9]);
        let range = |first, last| SeqRange { first, last };
        assert_eq!(r.applied, vec![range(1, 3), range(5, 5), range(8, 9)]);
        assert_eq!(r.missing(10), vec![4, 6, 7]);
        assert_eq!(r.missing(2), vec![4, 6]);
        let fate = |seq| ReceivedFiles::fate(Some(&r), Some(seq));
        assert_eq!(fate(5), FileFate::Applied);
        assert_eq!(fate(6), FileFate::Missing);
        assert_eq!(fate(10), FileFate::NotSeenYet);
        assert_eq!(ReceivedFiles::fate(None, Some(1)), FileFate::Unknown);
    }

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
