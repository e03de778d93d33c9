//! Results, delivery logs and acknowledgements: at the centre (sealed results and log
//! batches waiting to travel) and at central (decrypted results, variables, logs,
//! quarantine, logs waiting for their result, acknowledgements owed to each centre).

use rusqlite::{params, OptionalExtension};
use serde_json::Value;

use super::SqliteTx;
use crate::error::{Error, Result};
use crate::store::prelude::*;
use crate::text::text_enum;
use crate::wire::{LogAck, ReceivedFiles, ResultAck};

/// The `meta` key of what central said it applied of this centre's upward files.
const CENTRAL_RECEIVED: &str = "central_received";

text_enum! {
    /// Sync status of a result at the centre (column `results.sync_status`).
    pub enum SyncStatus {
        /// Ingested, not yet exported.
        Pending = "pending",
        /// Exported in a results bundle, not yet acknowledged.
        Sent = "sent",
        /// Central acknowledged it.
        Synchronized = "synchronized",
        /// Replaced by a newer copy after it was sent: sent again.
        ToBeResynced = "to_be_resynced",
        /// Central kept it aside (same id, different content); the reason says why.
        Conflict = "conflict",
        /// Central holds a copy of this execution finished later; this one was ignored.
        Stale = "stale",
        /// Central kept it aside: its delivery or test taker is not in this centre's scope.
        OutOfScope = "out_of_scope",
    }
}

/// A result as the centre holds it (its content sealed to central).
#[derive(Debug, Clone)]
pub struct HeldResult {
    pub execution_id: String,
    pub delivery_id: String,
    pub test_taker: String,
    pub state: String,
    pub revision: i64,
    pub content_sha256: String,
    pub size: i64,
    pub sync_status: SyncStatus,
    pub reason: Option<String>,
    /// `details.finishtime` as ingested (TAO microtime); `None` while unfinished, or for a
    /// result ingested before courier kept it.
    pub finishtime: Option<String>,
}

/// A log batch as the centre holds it.
#[derive(Debug, Clone)]
pub struct HeldLogBatch {
    pub batch_id: String,
    pub execution_id: String,
    pub count: i64,
    pub size: i64,
}

/// What an upward file carries: a result or a log batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Result,
    Logs,
}

/// A result or log batch sent and not acknowledged.
#[derive(Debug, Clone)]
pub struct SentItem {
    pub kind: ItemKind,
    /// Execution id of a result, batch id of a log batch.
    pub id: String,
    /// Bytes of its sealed content.
    pub size: u64,
    /// The upward file it last went in (`None`: sent before courier kept it).
    pub sent_seq: Option<i64>,
    /// When (RFC 3339), same caveat.
    pub sent_at: Option<String>,
    /// 1 for a result; the logs in a batch.
    pub count: i64,
}

/// What waits at a centre to be sent for the first time.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Unsent {
    /// Results in a state that is sent (finished).
    pub results: i64,
    /// Results held in a state that is not sent (not finished yet).
    pub results_unfinished: i64,
    pub log_batches: i64,
    pub logs: i64,
}

/// A result as central stores it.
#[derive(Debug, Clone)]
pub struct CentralResult {
    pub central_id: String,
    pub org_id: String,
    pub execution_id: String,
    pub delivery_id: String,
    pub test_taker: String,
    pub state: String,
    pub details: Value,
    pub revision: i64,
    pub content_sha256: String,
}

/// One variable as central stores it: a few fields for queries, and its JSON text as
/// received (never re-serialised).
#[derive(Debug, Clone, Copy)]
pub struct StoredVariable<'a> {
    pub call_id_test: Option<&'a str>,
    pub call_id_item: Option<&'a str>,
    pub test: Option<&'a str>,
    pub item: Option<&'a str>,
    pub json: &'a str,
}

/// A result kept aside at central, with why.
#[derive(Debug, Clone)]
pub struct Quarantined<'a> {
    pub org_id: &'a str,
    pub execution_id: &'a str,
    pub revision: i64,
    pub content_sha256: &'a str,
    pub reason: &'a str,
    pub bundle_id: &'a str,
    /// The decrypted content as received (empty when it could not be decrypted).
    pub content: &'a str,
}

/// An acknowledgement central owes a centre: one entry of the `acks.json` it sends.
#[derive(Debug, Clone)]
pub enum OwedAck {
    Result(ResultAck),
    Logs(LogAck),
}

impl OwedAck {
    /// The row of `acks_out`: item, ref, revision, content hash, status, reason.
    #[allow(clippy::type_complexity)]
    fn row(&self) -> (&str, &str, Option<i64>, Option<&str>, &str, Option<&str>) {
        match self {
            OwedAck::Result(a) => (
                "result",
                &a.execution_id,
                Some(a.revision),
                Some(&a.content_sha256),
                a.status.as_str(),
                a.reason.as_deref(),
            ),
            OwedAck::Logs(a) => (
                "logs",
                &a.batch_id,
                None,
                None,
                a.status.as_str(),
                a.reason.as_deref(),
            ),
        }
    }
}

impl SqliteTx<'_> {
    /// `execute` through the connection's statement cache: the statements run once per
    /// result or log on the hot paths of `results add`, `logs add` and `import` are
    /// prepared once per connection, not once per row.
    fn cached_exec(&self, sql: &str, p: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.tx.prepare_cached(sql)?.execute(p)
    }

    /// `query_row` through the connection's statement cache (see [`Self::cached_exec`]).
    fn cached_row<T>(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.tx.prepare_cached(sql)?.query_row(p, f)
    }

    /// Run a query selecting (id, size) with the execution states as parameters.
    fn ids_and_sizes(&self, sql: &str, states: &[String]) -> Result<Vec<(String, u64)>> {
        let mut stmt = self.tx.prepare(sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(states.iter()), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl HeldResults for SqliteTx<'_> {
    // ---- centre: results ------------------------------------------------------------

    fn result_version(&self, execution_id: &str) -> Result<Option<(i64, String, SyncStatus)>> {
        Ok(self
            .cached_row(
                "SELECT revision, content_sha256, sync_status FROM results WHERE execution_id = ?1",
                [execution_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
    }

    fn result_finishtime(&self, execution_id: &str) -> Result<Option<String>> {
        Ok(self
            .cached_row(
                "SELECT finishtime FROM results WHERE execution_id = ?1",
                [execution_id],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    fn put_result(&self, r: &HeldResult, sealed: &[u8]) -> Result<()> {
        crate::failpoint::hit("store.result")?;
        let now = crate::time::now_rfc3339();
        self.cached_exec("INSERT INTO results (execution_id, delivery_id, test_taker, state, revision, content_sha256, size,
                sealed, sync_status, reason, added_at, updated_at, finishtime)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)
             ON CONFLICT (execution_id) DO UPDATE SET delivery_id = excluded.delivery_id,
                test_taker = excluded.test_taker, state = excluded.state, revision = excluded.revision,
                content_sha256 = excluded.content_sha256, size = excluded.size, sealed = excluded.sealed,
                sync_status = excluded.sync_status, reason = excluded.reason, updated_at = excluded.updated_at,
                finishtime = excluded.finishtime",
            params![
                r.execution_id, r.delivery_id, r.test_taker, r.state, r.revision, r.content_sha256, r.size,
                sealed, r.sync_status, r.reason, now, r.finishtime
            ],
        )?;
        Ok(())
    }

    fn held_results(&self) -> Result<Vec<HeldResult>> {
        let mut stmt = self.tx.prepare(
            "SELECT execution_id, delivery_id, test_taker, state, revision, content_sha256, size, sync_status, reason,
                finishtime
             FROM results ORDER BY added_at, execution_id",
        )?;
        let rows = stmt.query_map([], held_result)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn results_to_send(&self, states: &[String]) -> Result<Vec<(String, u64)>> {
        let sql = format!(
            "SELECT execution_id, length(sealed) FROM results
             WHERE sync_status IN ('pending', 'to_be_resynced') AND sealed IS NOT NULL AND state IN ({})
             ORDER BY added_at, execution_id",
            placeholders(states.len())
        );
        self.ids_and_sizes(&sql, states)
    }

    fn sent_unacknowledged(&self, states: &[String]) -> Result<Vec<SentItem>> {
        let sql = format!(
            "SELECT 'result', execution_id, length(sealed), sent_seq, sent_at, 1 FROM results
             WHERE sync_status = 'sent' AND sealed IS NOT NULL AND state IN ({0})
             UNION ALL
             SELECT 'logs', b.batch_id, length(b.sealed), b.sent_seq, b.sent_at, b.count
             FROM log_batches b JOIN results r ON r.execution_id = b.execution_id
             WHERE b.sync_status = 'sent' AND b.sealed IS NOT NULL AND r.state IN ({0})
             ORDER BY 4, 1 DESC, 2",
            placeholders(states.len())
        );
        let mut stmt = self.tx.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(states.iter()), |r| {
            Ok(SentItem {
                kind: if r.get::<_, String>(0)? == "result" {
                    ItemKind::Result
                } else {
                    ItemKind::Logs
                },
                id: r.get(1)?,
                size: r.get::<_, i64>(2)? as u64,
                sent_seq: r.get(3)?,
                sent_at: r.get(4)?,
                count: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn waiting_to_send(&self, states: &[String]) -> Result<Unsent> {
        let sql = format!(
            "SELECT (SELECT COUNT(*) FROM results WHERE sync_status IN ('pending', 'to_be_resynced')
                     AND state IN ({0})),
                    (SELECT COUNT(*) FROM results WHERE sync_status IN ('pending', 'to_be_resynced')
                     AND state NOT IN ({0})),
                    COUNT(*), COALESCE(SUM(b.count), 0)
             FROM log_batches b WHERE b.sync_status = 'pending'",
            placeholders(states.len())
        );
        Ok(self
            .tx
            .query_row(&sql, rusqlite::params_from_iter(states.iter()), |r| {
                Ok(Unsent {
                    results: r.get(0)?,
                    results_unfinished: r.get(1)?,
                    log_batches: r.get(2)?,
                    logs: r.get(3)?,
                })
            })?)
    }

    fn sealed_result(&self, execution_id: &str) -> Result<(HeldResult, Vec<u8>)> {
        Ok(self.cached_row("SELECT execution_id, delivery_id, test_taker, state, revision, content_sha256, size, sync_status, reason,
                finishtime, sealed
             FROM results WHERE execution_id = ?1",
            [execution_id],
            |r| Ok((held_result(r)?, r.get(10)?)),
        )?)
    }

    fn mark_result_sent(&self, execution_id: &str, seq: i64) -> Result<()> {
        crate::failpoint::hit("store.mark")?;
        self.cached_exec(
            "UPDATE results SET sync_status = 'sent', sent_seq = ?2, sent_at = ?3
             WHERE execution_id = ?1 AND sync_status IN ('pending', 'to_be_resynced', 'sent')",
            params![execution_id, seq, crate::time::now_rfc3339()],
        )?;
        Ok(())
    }

    fn mark_result_synchronized(&self, execution_id: &str, drop_content: bool) -> Result<()> {
        crate::failpoint::hit("store.mark")?;
        let sql = if drop_content {
            "UPDATE results SET sync_status = 'synchronized', reason = NULL, sealed = NULL WHERE execution_id = ?1"
        } else {
            "UPDATE results SET sync_status = 'synchronized', reason = NULL WHERE execution_id = ?1"
        };
        self.tx.execute(sql, [execution_id])?;
        Ok(())
    }

    fn mark_result_conflict(&self, execution_id: &str, reason: &str) -> Result<()> {
        self.cached_exec(
            "UPDATE results SET sync_status = 'conflict', reason = ?1 WHERE execution_id = ?2",
            params![reason, execution_id],
        )?;
        Ok(())
    }

    fn mark_result_kept(&self, execution_id: &str, status: SyncStatus, reason: &str) -> Result<()> {
        self.cached_exec(
            "UPDATE results SET sync_status = ?1, reason = ?2 WHERE execution_id = ?3",
            params![status, reason, execution_id],
        )?;
        Ok(())
    }

    fn central_received(&self) -> Result<Option<ReceivedFiles>> {
        let Some(text) = self.meta_get(CENTRAL_RECEIVED)? else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::StoreDamaged {
                path: self.path.clone(),
                what: format!("'{CENTRAL_RECEIVED}' is not a list of files ({e})"),
            })
    }

    fn set_central_received(&self, received: &ReceivedFiles) -> Result<()> {
        let text = serde_json::to_string(received).map_err(Error::Encode)?;
        self.meta_set(CENTRAL_RECEIVED, &text)
    }

    #[allow(clippy::type_complexity)]
    fn sent_by_file(&self) -> Result<Vec<(Option<i64>, Option<String>, Vec<String>, i64, i64)>> {
        let mut stmt = self.tx.prepare(
            "SELECT sent_seq, MAX(sent_at), json_group_array(id) FILTER (WHERE kind = 'result'),
                SUM(kind = 'logs'), SUM(CASE kind WHEN 'logs' THEN n ELSE 0 END)
             FROM (SELECT 'result' AS kind, execution_id AS id, 1 AS n, sent_seq, sent_at
                   FROM results WHERE sync_status = 'sent'
                   UNION ALL
                   SELECT 'logs', batch_id, count, sent_seq, sent_at
                   FROM log_batches WHERE sync_status = 'sent')
             GROUP BY sent_seq ORDER BY sent_seq",
        )?;
        let rows = stmt.query_map([], |r| {
            let ids: String = r.get(2)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                serde_json::from_str(&ids).unwrap_or_default(),
                r.get(3)?,
                r.get(4)?,
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn results_by_status(&self) -> Result<Vec<(SyncStatus, i64)>> {
        let mut stmt = self
            .tx
            .prepare("SELECT sync_status, COUNT(*) FROM results GROUP BY sync_status ORDER BY 1")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- centre: delivery logs --------------------------------------------------------

    fn log_known(&self, log_id: &str) -> Result<bool> {
        Ok(self
            .cached_row("SELECT 1 FROM log_ids WHERE log_id = ?1", [log_id], |_| {
                Ok(())
            })
            .optional()?
            .is_some())
    }

    fn add_log_batch(&self, batch: &HeldLogBatch, sealed: &[u8], log_ids: &[String]) -> Result<()> {
        crate::failpoint::hit("store.log")?;
        self.cached_exec("INSERT INTO log_batches (batch_id, execution_id, count, size, sealed, sync_status, added_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6)",
            params![batch.batch_id, batch.execution_id, batch.count, batch.size, sealed, crate::time::now_rfc3339()],
        )?;
        let mut ins = self
            .tx
            .prepare_cached("INSERT INTO log_ids (log_id, batch_id) VALUES (?1, ?2)")?;
        for id in log_ids {
            ins.execute(params![id, batch.batch_id])?;
        }
        Ok(())
    }

    fn log_batches_to_send(&self, states: &[String]) -> Result<Vec<(String, u64)>> {
        let sql = format!(
            "SELECT b.batch_id, length(b.sealed) FROM log_batches b JOIN results r ON r.execution_id = b.execution_id
             WHERE b.sync_status = 'pending' AND b.sealed IS NOT NULL AND r.state IN ({})
             ORDER BY b.added_at, b.batch_id",
            placeholders(states.len())
        );
        self.ids_and_sizes(&sql, states)
    }

    fn sealed_log_batch(&self, batch_id: &str) -> Result<(HeldLogBatch, Vec<u8>)> {
        Ok(self.cached_row("SELECT batch_id, execution_id, count, size, sealed FROM log_batches WHERE batch_id = ?1",
            [batch_id],
            |r| {
                Ok((
                    HeldLogBatch { batch_id: r.get(0)?, execution_id: r.get(1)?, count: r.get(2)?, size: r.get(3)? },
                    r.get(4)?,
                ))
            },
        )?)
    }

    fn mark_log_batch_sent(&self, batch_id: &str, seq: i64) -> Result<()> {
        self.cached_exec("UPDATE log_batches SET sync_status = 'sent', sent_seq = ?2, sent_at = ?3 WHERE batch_id = ?1",
            params![batch_id, seq, crate::time::now_rfc3339()],
        )?;
        Ok(())
    }

    fn mark_log_batch_synchronized(&self, batch_id: &str, drop_content: bool) -> Result<bool> {
        let sql = if drop_content {
            "UPDATE log_batches SET sync_status = 'synchronized', sealed = NULL WHERE batch_id = ?1"
        } else {
            "UPDATE log_batches SET sync_status = 'synchronized' WHERE batch_id = ?1"
        };
        Ok(self.tx.execute(sql, [batch_id])? > 0)
    }

    fn mark_log_batch_kept_aside(&self, batch_id: &str) -> Result<bool> {
        Ok(self.cached_exec(
            "UPDATE log_batches SET sync_status = 'kept_aside' WHERE batch_id = ?1",
            [batch_id],
        )? > 0)
    }
}

impl CentralResults for SqliteTx<'_> {
    // ---- central: results -------------------------------------------------------------

    fn central_result_version(&self, central_id: &str) -> Result<Option<(i64, String)>> {
        Ok(self
            .cached_row(
                "SELECT revision, content_sha256 FROM central_results WHERE central_id = ?1",
                [central_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    fn central_result_held(
        &self,
        central_id: &str,
    ) -> Result<Option<(i64, String, Option<String>)>> {
        Ok(self.cached_row("SELECT revision, content_sha256,
                    CASE json_type(details, '$.finishtime') WHEN 'text' THEN json_extract(details, '$.finishtime') END
                 FROM central_results WHERE central_id = ?1",
                [central_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
    }

    fn quarantine_reason(&self, org: &str, execution_id: &str) -> Result<Option<String>> {
        Ok(self.cached_row("SELECT reason FROM quarantine WHERE org_id = ?1 AND execution_id = ?2 ORDER BY n DESC LIMIT 1",
                params![org, execution_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn quarantine_logs(
        &self,
        org: &str,
        batch_id: &str,
        execution_id: &str,
        reason: &str,
        bundle_id: Option<&str>,
        content: &str,
    ) -> Result<()> {
        self.cached_exec("INSERT INTO quarantined_logs (org_id, batch_id, execution_id, reason, bundle_id, content, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (org_id, batch_id) DO UPDATE SET execution_id = excluded.execution_id,
               reason = excluded.reason, bundle_id = excluded.bundle_id, content = excluded.content, at = excluded.at",
            params![org, batch_id, execution_id, reason, bundle_id, content, crate::time::now_rfc3339()],
        )?;
        Ok(())
    }

    fn put_central_result(
        &self,
        r: &CentralResult,
        bundle_id: &str,
        variables: &[StoredVariable<'_>],
    ) -> Result<()> {
        crate::failpoint::hit("store.result")?;
        let rid: i64 = self.cached_row("INSERT INTO central_results (central_id, org_id, execution_id, delivery_id, test_taker, state, details,
                revision, content_sha256, bundle_id, stored_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (central_id) DO UPDATE SET delivery_id = excluded.delivery_id, test_taker = excluded.test_taker,
                state = excluded.state, details = excluded.details, revision = excluded.revision,
                content_sha256 = excluded.content_sha256, bundle_id = excluded.bundle_id, stored_at = excluded.stored_at
             RETURNING rid",
            params![
                r.central_id, r.org_id, r.execution_id, r.delivery_id, r.test_taker, r.state, r.details.to_string(),
                r.revision, r.content_sha256, bundle_id, crate::time::now_rfc3339()
            ],
            |row| row.get(0),
        )?;
        self.cached_exec("DELETE FROM variables WHERE rid = ?1", [rid])?;
        let mut ins = self.tx.prepare_cached(
            "INSERT INTO variables (rid, n, call_id_test, call_id_item, test, item, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (n, var) in variables.iter().enumerate() {
            ins.execute(params![
                rid,
                n as i64,
                var.call_id_test,
                var.call_id_item,
                var.test,
                var.item,
                var.json
            ])?;
        }
        Ok(())
    }

    fn quarantine(&self, q: &Quarantined<'_>) -> Result<()> {
        self.cached_exec("INSERT OR IGNORE INTO quarantine (org_id, execution_id, revision, content_sha256, reason, bundle_id, content, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![q.org_id, q.execution_id, q.revision, q.content_sha256, q.reason, q.bundle_id, q.content, crate::time::now_rfc3339()],
        )?;
        Ok(())
    }

    fn for_each_central_result(
        &self,
        each: &mut dyn FnMut(CentralResult, Vec<Value>) -> Result<()>,
    ) -> Result<u64> {
        let mut results = self.tx.prepare(
            "SELECT central_id, org_id, execution_id, delivery_id, test_taker, state, details, revision, content_sha256, rid
             FROM central_results ORDER BY org_id, execution_id",
        )?;
        let mut vars = self
            .tx
            .prepare("SELECT data FROM variables WHERE rid = ?1 ORDER BY n")?;
        let mut rows = results.query([])?;
        let mut count = 0;
        while let Some(r) = rows.next()? {
            let details: String = r.get(6)?;
            let rid: i64 = r.get(9)?;
            let result = CentralResult {
                central_id: r.get(0)?,
                org_id: r.get(1)?,
                execution_id: r.get(2)?,
                delivery_id: r.get(3)?,
                test_taker: r.get(4)?,
                state: r.get(5)?,
                details: serde_json::from_str(&details).unwrap_or(Value::Null),
                revision: r.get(7)?,
                content_sha256: r.get(8)?,
            };
            let variables: Vec<Value> = vars
                .query_map([rid], |v| v.get::<_, String>(0))?
                .map(|t| t.map(|t| serde_json::from_str(&t).unwrap_or(Value::Null)))
                .collect::<rusqlite::Result<_>>()?;
            each(result, variables)?;
            count += 1;
        }
        Ok(count)
    }

    // ---- central: logs ----------------------------------------------------------------

    fn put_central_logs(
        &self,
        org: &str,
        central_id: &str,
        execution_id: &str,
        logs: &[Value],
    ) -> Result<()> {
        crate::failpoint::hit("store.log")?;
        let mut ins = self.tx.prepare_cached(
            "INSERT OR IGNORE INTO central_logs (org_id, log_id, central_id, execution_id, event_id, data, created_at, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for l in logs {
            let id = match &l["id"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            ins.execute(params![
                org,
                id,
                central_id,
                execution_id,
                l["event_id"].as_str().unwrap_or_default(),
                l.to_string(),
                l["created_at"].as_str().unwrap_or_default(),
                l["created_by"].as_str().unwrap_or_default()
            ])?;
        }
        Ok(())
    }

    fn add_waiting_logs(
        &self,
        org: &str,
        batch_id: &str,
        execution_id: &str,
        logs: &[Value],
    ) -> Result<()> {
        self.cached_exec("INSERT OR IGNORE INTO waiting_logs (org_id, batch_id, execution_id, content) VALUES (?1, ?2, ?3, ?4)",
            params![org, batch_id, execution_id, Value::from(logs.to_vec()).to_string()],
        )?;
        Ok(())
    }

    #[allow(clippy::type_complexity)]
    fn take_waiting_logs(
        &self,
        org: &str,
        execution_id: &str,
    ) -> Result<Vec<(String, std::result::Result<Vec<Value>, (String, String)>)>> {
        let mut stmt = self.tx.prepare(
            "SELECT batch_id, content FROM waiting_logs WHERE org_id = ?1 AND execution_id = ?2",
        )?;
        let rows: Vec<(String, String)> = stmt
            .query_map(params![org, execution_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        self.cached_exec(
            "DELETE FROM waiting_logs WHERE org_id = ?1 AND execution_id = ?2",
            params![org, execution_id],
        )?;
        Ok(rows
            .into_iter()
            .map(|(id, c)| match serde_json::from_str::<Vec<Value>>(&c) {
                Ok(logs) => (id, Ok(logs)),
                Err(e) => (id, Err((c, e.to_string()))),
            })
            .collect())
    }

    fn for_each_central_log(
        &self,
        each: &mut dyn FnMut(&str, &str, &str, Value) -> Result<()>,
    ) -> Result<u64> {
        let mut stmt = self.tx.prepare(
            "SELECT org_id, central_id, execution_id, data FROM central_logs ORDER BY org_id, execution_id, created_at, log_id",
        )?;
        let mut rows = stmt.query([])?;
        let mut count = 0;
        while let Some(r) = rows.next()? {
            let (org, central_id, exec, data): (String, String, String, String) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            each(
                &org,
                &central_id,
                &exec,
                serde_json::from_str(&data).unwrap_or(Value::Null),
            )?;
            count += 1;
        }
        Ok(count)
    }

    // ---- central: acknowledgements owed -----------------------------------------------

    fn owe_ack(&self, org: &str, ack: &OwedAck) -> Result<()> {
        crate::failpoint::hit("store.ack")?;
        let (item, reference, revision, sha, status, reason) = ack.row();
        self.cached_exec("INSERT INTO acks_out (org_id, item, ref, revision, content_sha256, status, reason, first_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)
             ON CONFLICT (org_id, item, ref) DO UPDATE SET revision = excluded.revision,
               content_sha256 = excluded.content_sha256, status = excluded.status, reason = excluded.reason, first_seq = NULL",
            params![org, item, reference, revision, sha, status, reason],
        )?;
        Ok(())
    }

    fn owe_ack_unless_owed(&self, org: &str, ack: &OwedAck) -> Result<()> {
        let (item, reference, revision, sha, status, reason) = ack.row();
        self.cached_exec("INSERT INTO acks_out (org_id, item, ref, revision, content_sha256, status, reason, first_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)
             ON CONFLICT (org_id, item, ref) DO NOTHING",
            params![org, item, reference, revision, sha, status, reason],
        )?;
        Ok(())
    }

    fn owed_acks(&self, org: &str) -> Result<Vec<OwedAck>> {
        let mut stmt = self.tx.prepare(
            "SELECT item, ref, revision, content_sha256, status, reason FROM acks_out WHERE org_id = ?1 ORDER BY item, ref",
        )?;
        let rows = stmt.query_map([org], |r| {
            Ok(if r.get::<_, String>(0)? == "result" {
                OwedAck::Result(ResultAck {
                    execution_id: r.get(1)?,
                    revision: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                    content_sha256: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    status: r.get(4)?,
                    reason: r.get(5)?,
                })
            } else {
                OwedAck::Logs(LogAck {
                    batch_id: r.get(1)?,
                    status: r.get(4)?,
                    reason: r.get(5)?,
                })
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn acks_carried_by(&self, org: &str, seq: i64) -> Result<()> {
        self.cached_exec(
            "UPDATE acks_out SET first_seq = ?1 WHERE org_id = ?2 AND first_seq IS NULL",
            params![seq, org],
        )?;
        Ok(())
    }

    fn acks_delivered(&self, org: &str, seq: i64) -> Result<()> {
        self.cached_exec(
            "DELETE FROM acks_out WHERE org_id = ?1 AND first_seq IS NOT NULL AND first_seq <= ?2",
            params![org, seq],
        )?;
        Ok(())
    }
}

fn held_result(r: &rusqlite::Row<'_>) -> rusqlite::Result<HeldResult> {
    Ok(HeldResult {
        execution_id: r.get(0)?,
        delivery_id: r.get(1)?,
        test_taker: r.get(2)?,
        state: r.get(3)?,
        revision: r.get(4)?,
        content_sha256: r.get(5)?,
        size: r.get(6)?,
        sync_status: r.get(7)?,
        reason: r.get(8)?,
        finishtime: r.get(9)?,
    })
}

fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
