//! The hash chain of the sync history as rows that can leave the store (`history export`)
//! and the prune point it starts after once archived rows are dropped (`history prune`).

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::SqliteTx;
use crate::error::{Error, Result};
use crate::store::prelude::*;

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

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HistoryRow> {
    Ok(HistoryRow {
        n: r.get(0)?,
        at: r.get(1)?,
        action: r.get(2)?,
        org_id: r.get(3)?,
        bundle_id: r.get(4)?,
        kind: r.get(5)?,
        seq: r.get(6)?,
        status: r.get(7)?,
        counts: r.get(8)?,
        report: r.get(9)?,
        prev_hash: r.get(10)?,
        hash: r.get(11)?,
    })
}

impl HistoryArchive for SqliteTx<'_> {
    fn history_start(&self) -> Result<HistoryStart> {
        let start = self
            .tx
            .query_row(
                "SELECT n, hash FROM history_prunes ORDER BY n DESC LIMIT 1",
                [],
                |r| {
                    Ok(HistoryStart {
                        row: r.get(0)?,
                        hash: r.get(1)?,
                    })
                },
            )
            .optional()?;
        Ok(start.unwrap_or_else(|| HistoryStart {
            row: 0,
            hash: NO_HASH.to_string(),
        }))
    }

    fn each_history_row(
        &self,
        through: Option<i64>,
        f: &mut dyn FnMut(HistoryRow) -> Result<bool>,
    ) -> Result<()> {
        let mut stmt = self.tx.prepare(
            "SELECT n, at, action, org_id, bundle_id, kind, seq, status, counts, report, prev_hash, hash
             FROM history WHERE n <= ?1 ORDER BY n",
        )?;
        let mut rows = stmt.query([through.unwrap_or(i64::MAX)])?;
        while let Some(r) = rows.next()? {
            if !f(read_row(r)?)? {
                break;
            }
        }
        Ok(())
    }

    fn each_archived_action(
        &self,
        through: i64,
        f: &mut dyn FnMut(ArchivedAction) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self.tx.prepare(
            "SELECT history_n, entity_id, type, action FROM entity_history
             WHERE history_n <= ?1 ORDER BY history_n, rowid",
        )?;
        let mut rows = stmt.query([through])?;
        while let Some(r) = rows.next()? {
            f(ArchivedAction {
                sync: r.get(0)?,
                entity_id: r.get(1)?,
                kind: r.get(2)?,
                action: r.get(3)?,
            })?;
        }
        Ok(())
    }

    fn history_prefix_before(&self, date: &str) -> Result<Option<i64>> {
        Ok(self.tx.query_row(
            "SELECT MAX(n) FROM history WHERE n < COALESCE(
                (SELECT MIN(n) FROM history WHERE at >= ?1), 9223372036854775807)",
            [date],
            |r| r.get(0),
        )?)
    }

    fn prune_history(&self, through: i64, archive_manifest_sha256: &str) -> Result<i64> {
        let hash: String = self
            .tx
            .query_row("SELECT hash FROM history WHERE n = ?1", [through], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| Error::Internal(format!("history row {through} is not stored")))?;
        self.tx.execute(
            "DELETE FROM entity_history WHERE history_n <= ?1",
            [through],
        )?;
        let rows = self
            .tx
            .execute("DELETE FROM history WHERE n <= ?1", [through])? as i64;
        self.tx.execute(
            "INSERT INTO history_prunes (n, hash, rows, archive_manifest_sha256, at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                through,
                hash,
                rows,
                archive_manifest_sha256,
                crate::time::now_rfc3339()
            ],
        )?;
        Ok(rows)
    }
}
