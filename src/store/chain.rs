//! The hash chain of the sync history and the counters kept in `meta`, the same for every
//! backend: each backend stores and reads rows, the chain's arithmetic is done here once, so a
//! history written on SQLite verifies on PostgreSQL and back (`courier store migrate`).

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{HistoryArchive, Ledger, NewHistory};
use crate::error::{Error, Result};

/// The hash before the first row of a history never pruned.
pub const NO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One history row with everything its chain hash covers, as a history archive carries
/// it (schemas/history-archive-row.schema.json). `counts` is the stored JSON text, kept as
/// text: the hash covers it byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryRow {
    pub n: i64,
    pub at: String,
    pub action: String,
    pub org_id: Option<String>,
    pub bundle_id: Option<String>,
    pub kind: Option<String>,
    pub seq: Option<i64>,
    pub status: String,
    pub counts: String,
    pub report: String,
    pub prev_hash: String,
    pub hash: String,
}

impl HistoryRow {
    /// The chain hash of this row: SHA-256 of `prev_hash` (its hex text) followed by the
    /// JSON array `[at, action, org_id, bundle_id, kind, seq, status, counts, report]`.
    pub fn computed_hash(&self) -> String {
        let fields = serde_json::json!([
            self.at,
            self.action,
            self.org_id,
            self.bundle_id,
            self.kind,
            self.seq,
            self.status,
            self.counts,
            self.report
        ]);
        hex::encode(
            Sha256::new()
                .chain_update(self.prev_hash.as_bytes())
                .chain_update(fields.to_string())
                .finalize(),
        )
    }
}

/// Where the stored chain starts: after row `row` whose hash was `hash` (the newest prune
/// point), or row 0 and [`NO_HASH`] for a history never pruned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryStart {
    pub row: i64,
    pub hash: String,
}

impl HistoryStart {
    /// The start of a history never pruned.
    pub fn beginning() -> HistoryStart {
        HistoryStart {
            row: 0,
            hash: NO_HASH.to_string(),
        }
    }
}

/// What one sync did to one entity, as a history archive carries it
/// (schemas/history-archive-entity.schema.json).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchivedAction {
    /// The history row of the sync.
    pub sync: i64,
    pub entity_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub action: String,
}

/// The row [`Ledger::add_history`] appends after the chain's head (or after its start, when
/// a prune dropped every row), stamped now, with its hash computed. The caller stores it in
/// the same transaction, and must keep other writers from appending in between.
pub(crate) fn next_row<T>(tx: &T, h: NewHistory<'_>) -> Result<HistoryRow>
where
    T: Ledger + HistoryArchive + ?Sized,
{
    let (last, prev) = match tx.history_head()? {
        Some(head) => (head.n, head.hash),
        None => {
            let start = tx.history_start()?;
            (start.row, start.hash)
        }
    };
    let mut row = HistoryRow {
        n: last + 1,
        at: crate::time::now_rfc3339(),
        action: h.action.to_string(),
        org_id: h.org_id.map(str::to_string),
        bundle_id: h.bundle_id.map(str::to_string),
        kind: h.kind.map(str::to_string),
        seq: h.seq,
        status: h.status.to_string(),
        counts: h.counts.to_string(),
        report: h.report,
        prev_hash: prev,
        hash: String::new(),
    };
    row.hash = row.computed_hash();
    crate::failpoint::hit("store.history")?;
    Ok(row)
}

/// [`Ledger::verify_history`]: recompute the chain from its start; the first broken row.
pub(crate) fn verify<T>(tx: &T) -> Result<Option<i64>>
where
    T: Ledger + HistoryArchive + ?Sized,
{
    let mut prev = tx.history_start()?.hash;
    let mut broken = None;
    tx.each_history_row(None, &mut |row| {
        if row.prev_hash != prev || row.hash != row.computed_hash() {
            broken = Some(row.n);
            return Ok(false);
        }
        prev = row.hash;
        Ok(true)
    })?;
    Ok(broken)
}

/// [`Ledger::history_hash`] once the row itself was looked up (`stored`): a row no longer
/// stored may be the prune point the chain starts after.
pub(crate) fn hash_of<T>(tx: &T, n: i64, stored: Option<String>) -> Result<Option<String>>
where
    T: HistoryArchive + ?Sized,
{
    if stored.is_some() {
        return Ok(stored);
    }
    let start = tx.history_start()?;
    Ok((start.row == n && n > 0).then_some(start.hash))
}

/// [`Ledger::next_counter`]: read counter `key` of `meta`, store and return the next value.
/// `store` names the store in the error about a counter that cannot be read. The caller keeps
/// other writers from taking the same value in between.
pub(crate) fn next_counter<T>(tx: &T, key: &str, store: &Path) -> Result<i64>
where
    T: Ledger + ?Sized,
{
    let damaged = |what: String| Error::StoreDamaged {
        path: store.to_path_buf(),
        what,
    };
    let current = match tx.meta_get(key)? {
        None => 0,
        Some(v) => v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            damaged(format!(
                "counter '{key}' holds {:?}, not a sequence number",
                v.chars().take(40).collect::<String>()
            ))
        })?,
    };
    let n = current
        .checked_add(1)
        .ok_or_else(|| damaged(format!("counter '{key}' is exhausted")))?;
    tx.meta_set(key, &n.to_string())?;
    Ok(n)
}
