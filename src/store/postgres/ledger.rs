//! PostgreSQL: [`Ledger`] and [`HistoryArchive`], ported from SQLite's (`store/sqlite/mod.rs`,
//! `store/sqlite/history.rs`); the history's chain is computed by the shared `store::chain`.
//! Appending to the history and taking a counter hold an advisory lock until the transaction
//! ends, so concurrent importers append one after another and never take the same number.

use ::postgres::Row;

use super::{Lock, PgTx};
use crate::error::{Error, Result};
use crate::store::*;

/// SQLite's `SINCE_FLOOR` (`store/sqlite/mod.rs`): bundles applied before `meta.bundles_floor`
/// (a rowid) no longer count.
pub(super) const SINCE_FLOOR: &str = "AND rowid > (SELECT COALESCE(MAX(CAST(value AS BIGINT)), 0) FROM meta WHERE key = 'bundles_floor')";

const HISTORY_COLUMNS: &str =
    "n, at, action, org_id, bundle_id, kind, seq, status, counts, report, prev_hash, hash";

fn history_row(r: &Row) -> Result<HistoryRow, postgres::Error> {
    Ok(HistoryRow {
        n: r.try_get(0)?,
        at: r.try_get(1)?,
        action: r.try_get(2)?,
        org_id: r.try_get(3)?,
        bundle_id: r.try_get(4)?,
        kind: r.try_get(5)?,
        seq: r.try_get(6)?,
        status: r.try_get(7)?,
        counts: r.try_get(8)?,
        report: r.try_get(9)?,
        prev_hash: r.try_get(10)?,
        hash: r.try_get(11)?,
    })
}

impl Ledger for PgTx<'_> {
    fn meta_get(&self, key: &str) -> Result<Option<String>> {
        self.row("SELECT value FROM meta WHERE key = $1", &[&key], |r| {
            r.try_get(0)
        })
    }

    fn meta_set(&self, key: &str, value: &str) -> Result<()> {
        self.exec(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )?;
        Ok(())
    }

    fn next_counter(&self, key: &str) -> Result<i64> {
        self.lock(Lock::Counters)?;
        crate::store::chain::next_counter(self, key, &self.shown)
    }

    // ---- peers ------------------------------------------------------------------------

    fn pin_peer(
        &self,
        fingerprint: &str,
        role: &str,
        org_id: Option<&str>,
        cert: &str,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO peers (fingerprint, role, org_id, cert, pinned_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (fingerprint) DO NOTHING",
            &[&fingerprint, &role, &org_id, &cert, &crate::time::now_rfc3339()],
        )?;
        Ok(())
    }

    fn peer(&self, fingerprint: &str) -> Result<Option<Peer>> {
        self.row(
            "SELECT role, org_id, cert FROM peers WHERE fingerprint = $1",
            &[&fingerprint],
            |r| {
                Ok(Peer {
                    role: r.try_get(0)?,
                    org_id: r.try_get(1)?,
                    cert: r.try_get(2)?,
                })
            },
        )
    }

    fn peer_by_role(&self, role: &str) -> Result<Option<PinnedPeer>> {
        self.row(
            "SELECT fingerprint, cert FROM peers WHERE role = $1 AND retired_from_seq IS NULL
             ORDER BY pinned_at COLLATE \"C\" LIMIT 1",
            &[&role],
            |r| {
                Ok(PinnedPeer {
                    fingerprint: r.try_get(0)?,
                    cert: r.try_get(1)?,
                })
            },
        )
    }

    // ---- bundles ----------------------------------------------------------------------

    fn bundle_seen(&self, sender: &str, bundle_id: &str) -> Result<bool> {
        Ok(self
            .row(
                "SELECT 1 FROM bundles WHERE sender = $1 AND bundle_id = $2",
                &[&sender, &bundle_id],
                |_| Ok(()),
            )?
            .is_some())
    }

    fn bundle_id_other_senders(&self, sender: &str, bundle_id: &str) -> Result<Vec<OtherSender>> {
        self.rows(
            "SELECT b.sender, p.org_id FROM bundles b LEFT JOIN peers p ON p.fingerprint = b.sender
             WHERE b.bundle_id = $1 AND b.sender <> $2 ORDER BY b.rowid",
            &[&bundle_id, &sender],
            |r| {
                Ok(OtherSender {
                    fingerprint: r.try_get(0)?,
                    org_id: r.try_get(1)?,
                })
            },
        )
    }

    fn last_seq_in(&self, sender: &str, kind: &str) -> Result<Option<i64>> {
        self.value(
            "SELECT MAX(seq) FROM bundles WHERE direction = 'in' AND sender = $1 AND kind = $2",
            &[&sender, &kind],
        )
    }

    fn applied_bundles(&self, kind: &str, limit: i64) -> Result<Vec<AppliedBundle>> {
        self.rows(
            &format!(
                "SELECT bundle_id, seq FROM bundles WHERE direction = 'in' AND kind = $1 {SINCE_FLOOR}
                 ORDER BY seq DESC, at COLLATE \"C\" DESC LIMIT $2"
            ),
            &[&kind, &limit],
            |r| {
                Ok(AppliedBundle {
                    bundle_id: r.try_get(0)?,
                    seq: r.try_get(1)?,
                })
            },
        )
    }

    fn last_applied_seq(&self, kind: &str) -> Result<Option<i64>> {
        self.row(
            &format!(
                "SELECT seq FROM bundles WHERE direction = 'in' AND kind = $1 {SINCE_FLOOR}
                 ORDER BY rowid DESC LIMIT 1"
            ),
            &[&kind],
            |r| r.try_get(0),
        )
    }

    fn set_parts_received(&self, set_id: &str) -> Result<Vec<u64>> {
        let parts: Vec<i64> = self.rows(
            "SELECT set_index FROM bundles WHERE direction = 'in' AND set_id = $1
             ORDER BY set_index NULLS FIRST",
            &[&set_id],
            |r| r.try_get(0),
        )?;
        Ok(parts.into_iter().map(|p| p as u64).collect())
    }

    fn record_bundle(&self, direction: &str, r: &BundleRecord<'_>, file_name: &str) -> Result<()> {
        self.exec(
            "INSERT INTO bundles (bundle_id, direction, kind, sender, recipient, org_id, seq,
                set_id, set_index, set_count, file_name, at, payload_size)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT DO NOTHING",
            &[
                &r.bundle_id,
                &direction,
                &r.kind,
                &r.sender,
                &r.recipient,
                &r.org_id,
                &(r.sequence as i64),
                &r.set_id,
                &(r.set_index as i64),
                &(r.set_count as i64),
                &file_name,
                &crate::time::now_rfc3339(),
                &(r.payload_size as i64),
            ],
        )?;
        Ok(())
    }

    // ---- history ----------------------------------------------------------------------

    fn add_history(&self, h: NewHistory<'_>) -> Result<i64> {
        self.lock(Lock::History)?;
        let row = crate::store::chain::next_row(self, h)?;
        self.exec(
            &format!(
                "INSERT INTO history ({HISTORY_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            ),
            &[
                &row.n,
                &row.at,
                &row.action,
                &row.org_id,
                &row.bundle_id,
                &row.kind,
                &row.seq,
                &row.status,
                &row.counts,
                &row.report,
                &row.prev_hash,
                &row.hash,
            ],
        )?;
        Ok(row.n)
    }

    fn history(&self, org: Option<&str>, limit: i64) -> Result<Vec<HistoryEntry>> {
        let mut out = self.rows(
            "SELECT n, at, action, org_id, bundle_id, kind, seq, status, counts, report, hash
             FROM history WHERE ($1::TEXT IS NULL OR org_id = $1) ORDER BY n DESC LIMIT $2",
            &[&org, &limit],
            |r| {
                let counts: String = r.try_get(8)?;
                Ok(HistoryEntry {
                    n: r.try_get(0)?,
                    at: r.try_get(1)?,
                    action: r.try_get(2)?,
                    org_id: r.try_get(3)?,
                    bundle_id: r.try_get(4)?,
                    kind: r.try_get(5)?,
                    seq: r.try_get(6)?,
                    status: r.try_get(7)?,
                    counts: serde_json::from_str(&counts).unwrap_or(serde_json::Value::Null),
                    report: r.try_get(9)?,
                    hash: r.try_get(10)?,
                })
            },
        )?;
        out.reverse();
        Ok(out)
    }

    fn history_head(&self) -> Result<Option<HistoryHead>> {
        self.row(
            "SELECT n, hash FROM history ORDER BY n DESC LIMIT 1",
            &[],
            |r| {
                Ok(HistoryHead {
                    n: r.try_get(0)?,
                    hash: r.try_get(1)?,
                })
            },
        )
    }

    fn history_hash(&self, n: i64) -> Result<Option<String>> {
        let stored = self.row("SELECT hash FROM history WHERE n = $1", &[&n], |r| {
            r.try_get(0)
        })?;
        crate::store::chain::hash_of(self, n, stored)
    }

    fn verify_history(&self) -> Result<Option<i64>> {
        crate::store::chain::verify(self)
    }

    fn entity_actions(&self, entity_id: &str) -> Result<Vec<EntityAction>> {
        self.rows(
            "SELECT h.n, h.at, h.bundle_id, h.seq, e.type, e.action FROM entity_history e
             JOIN history h ON h.n = e.history_n WHERE e.entity_id = $1 ORDER BY h.n, e.rowid",
            &[&entity_id],
            |r| {
                Ok(EntityAction {
                    sync: r.try_get(0)?,
                    at: r.try_get(1)?,
                    bundle_id: r.try_get(2)?,
                    seq: r.try_get(3)?,
                    kind: r.try_get(4)?,
                    action: r.try_get(5)?,
                })
            },
        )
    }

    fn entity_history(
        &self,
        history_n: i64,
        entity_id: &str,
        kind: &str,
        action: &str,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO entity_history (history_n, entity_id, type, action) VALUES ($1, $2, $3, $4)",
            &[&history_n, &entity_id, &kind, &action],
        )?;
        Ok(())
    }
}

impl HistoryArchive for PgTx<'_> {
    fn history_start(&self) -> Result<HistoryStart> {
        let start = self.row(
            "SELECT n, hash FROM history_prunes ORDER BY n DESC LIMIT 1",
            &[],
            |r| {
                Ok(HistoryStart {
                    row: r.try_get(0)?,
                    hash: r.try_get(1)?,
                })
            },
        )?;
        Ok(start.unwrap_or_else(HistoryStart::beginning))
    }

    fn each_history_row(
        &self,
        through: Option<i64>,
        f: &mut dyn FnMut(HistoryRow) -> Result<bool>,
    ) -> Result<()> {
        self.each(
            &format!("SELECT {HISTORY_COLUMNS} FROM history WHERE n <= $1 ORDER BY n"),
            &[&through.unwrap_or(i64::MAX)],
            &mut |r| f(history_row(r)?),
        )
    }

    fn each_archived_action(
        &self,
        through: i64,
        f: &mut dyn FnMut(ArchivedAction) -> Result<()>,
    ) -> Result<()> {
        self.each(
            "SELECT history_n, entity_id, type, action FROM entity_history
             WHERE history_n <= $1 ORDER BY history_n, rowid",
            &[&through],
            &mut |r| {
                f(ArchivedAction {
                    sync: r.try_get(0)?,
                    entity_id: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    action: r.try_get(3)?,
                })?;
                Ok(true)
            },
        )
    }

    fn history_prefix_before(&self, date: &str) -> Result<Option<i64>> {
        self.value(
            "SELECT MAX(n) FROM history WHERE n < COALESCE(
                (SELECT MIN(n) FROM history WHERE at COLLATE \"C\" >= $1), 9223372036854775807)",
            &[&date],
        )
    }

    fn prune_history(&self, through: i64, archive_manifest_sha256: &str) -> Result<i64> {
        let hash: String = self
            .row("SELECT hash FROM history WHERE n = $1", &[&through], |r| {
                r.try_get(0)
            })?
            .ok_or_else(|| Error::Internal(format!("history row {through} is not stored")))?;
        self.exec(
            "DELETE FROM entity_history WHERE history_n <= $1",
            &[&through],
        )?;
        let rows = self.exec("DELETE FROM history WHERE n <= $1", &[&through])? as i64;
        self.exec(
            "INSERT INTO history_prunes (n, hash, rows, archive_manifest_sha256, at)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &through,
                &hash,
                &rows,
                &archive_manifest_sha256,
                &crate::time::now_rfc3339(),
            ],
        )?;
        Ok(rows)
    }
}
