//! SQLite: the sync history as rows that can leave the store (`history export`) and the
//! prune point it starts after once archived rows are dropped (`history prune`); the chain's
//! arithmetic is shared with every backend (`store::chain`).

use rusqlite::{params, OptionalExtension};

use super::SqliteTx;
use crate::error::{Error, Result};
use crate::store::prelude::*;
use crate::store::{ArchivedAction, HistoryRow, HistoryStart};

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
        Ok(start.unwrap_or_else(HistoryStart::beginning))
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
