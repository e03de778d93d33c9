//! PostgreSQL: [`CentralResults`], ported from SQLite's (src/store/sqlite/results.rs): the same
//! rows, order and answers. The bulk of a national exam day goes in with `COPY ... FROM STDIN
//! (FORMAT binary)`: a result's variables straight into `variables`, a batch of logs through
//! a temporary table (a log id already stored is kept once, which COPY alone cannot do). Reads
//! of every result or log go through a portal, a batch at a time.

use std::collections::HashMap;

use ::postgres::binary_copy::BinaryCopyInWriter;
use ::postgres::types::{ToSql, Type};
use ::postgres::Row;
use serde_json::Value;

use super::rows::{get, shape};
use super::PgTx;
use crate::error::Result;
use crate::store::*;
use crate::wire::{AckStatus, LogAck, LogAckStatus, ResultAck};

/// Results read per fetch by [`CentralResults::for_each_central_result`], with their variables.
const RESULTS_PER_FETCH: i32 = 64;

/// Logs read per fetch by [`CentralResults::for_each_central_log`].
const LOGS_PER_FETCH: i32 = 1000;

/// Where a batch of logs is copied before it joins `central_logs`: private to the
/// connection, emptied after each batch and at commit.
const LOGS_IN: &str = "CREATE TEMP TABLE IF NOT EXISTS courier_logs_in (
        n BIGINT NOT NULL, log_id TEXT NOT NULL, event_id TEXT NOT NULL, data TEXT NOT NULL,
        created_at TEXT NOT NULL, created_by TEXT NOT NULL) ON COMMIT DELETE ROWS";

impl PgTx<'_> {
    /// Write rows of `types` with `COPY ... FROM STDIN (FORMAT binary)`; `sql` is the COPY.
    fn copy_rows<'r>(
        &self,
        sql: &str,
        types: &[Type],
        rows: impl Iterator<Item = Vec<&'r (dyn ToSql + Sync)>>,
    ) -> Result<u64> {
        let mut tx = self.tx.borrow_mut();
        let mut writer = BinaryCopyInWriter::new(tx.copy_in(sql)?, types);
        for row in rows {
            writer.write(&row)?;
        }
        Ok(writer.finish()?)
    }

    /// The variables of the results with ids `rids`, each result's in order.
    fn variables_of(&self, rids: &[i64]) -> Result<HashMap<i64, Vec<Value>>> {
        let mut by_rid: HashMap<i64, Vec<Value>> = HashMap::new();
        for v in self.all_rows(
            "SELECT rid, data FROM variables WHERE rid = ANY($1) ORDER BY rid, n",
            &[&rids],
        )? {
            let data: String = get(&v, 1)?;
            by_rid
                .entry(get(&v, 0)?)
                .or_default()
                .push(serde_json::from_str(&data).unwrap_or(Value::Null));
        }
        Ok(by_rid)
    }
}

fn central_result(r: &Row) -> Result<CentralResult> {
    let details: String = get(r, 6)?;
    Ok(CentralResult {
        central_id: get(r, 0)?,
        org_id: get(r, 1)?,
        execution_id: get(r, 2)?,
        delivery_id: get(r, 3)?,
        test_taker: get(r, 4)?,
        state: get(r, 5)?,
        details: serde_json::from_str(&details).unwrap_or(Value::Null),
        revision: get(r, 7)?,
        content_sha256: get(r, 8)?,
    })
}

fn owed_ack(r: &Row) -> Result<OwedAck> {
    let status: String = get(r, 4)?;
    let unknown = || shape(format!("acks_out: unknown status {status:?}"));
    Ok(if get::<String>(r, 0)? == "result" {
        OwedAck::Result(ResultAck {
            execution_id: get(r, 1)?,
            revision: get::<Option<i64>>(r, 2)?.unwrap_or(0),
            content_sha256: get::<Option<String>>(r, 3)?.unwrap_or_default(),
            status: AckStatus::parse(&status).ok_or_else(unknown)?,
            reason: get(r, 5)?,
        })
    } else {
        OwedAck::Logs(LogAck {
            batch_id: get(r, 1)?,
            status: LogAckStatus::parse(&status).ok_or_else(unknown)?,
            reason: get(r, 5)?,
        })
    })
}

/// A log's id as stored: its text, or the JSON of an id that is not a string.
fn log_id(l: &Value) -> String {
    match &l["id"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl CentralResults for PgTx<'_> {
    // ---- central: results -------------------------------------------------------------

    fn central_result_version(&self, central_id: &str) -> Result<Option<(i64, String)>> {
        self.one_row(
            "SELECT revision, content_sha256 FROM central_results WHERE central_id = $1",
            &[&central_id],
        )?
        .map(|r| Ok((get(&r, 0)?, get(&r, 1)?)))
        .transpose()
    }

    fn central_result_held(
        &self,
        central_id: &str,
    ) -> Result<Option<(i64, String, Option<String>)>> {
        let Some(r) = self.one_row(
            "SELECT revision, content_sha256, details FROM central_results WHERE central_id = $1",
            &[&central_id],
        )?
        else {
            return Ok(None);
        };
        let details: String = get(&r, 2)?;
        let details: Value = serde_json::from_str(&details)
            .map_err(|e| shape(format!("result {central_id}: stored details: {e}")))?;
        let finishtime = details["finishtime"].as_str().map(str::to_string);
        Ok(Some((get(&r, 0)?, get(&r, 1)?, finishtime)))
    }

    fn quarantine_reason(&self, org: &str, execution_id: &str) -> Result<Option<String>> {
        self.opt_value(
            "SELECT reason FROM quarantine WHERE org_id = $1 AND execution_id = $2
             ORDER BY n DESC LIMIT 1",
            &[&org, &execution_id],
        )
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
        self.exec(
            "INSERT INTO quarantined_logs (org_id, batch_id, execution_id, reason, bundle_id, content, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (org_id, batch_id) DO UPDATE SET execution_id = excluded.execution_id,
               reason = excluded.reason, bundle_id = excluded.bundle_id, content = excluded.content, at = excluded.at",
            &[&org, &batch_id, &execution_id, &reason, &bundle_id, &content, &crate::time::now_rfc3339()],
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
        let row = self.one_row(
            "INSERT INTO central_results (central_id, org_id, execution_id, delivery_id, test_taker, state, details,
                revision, content_sha256, bundle_id, stored_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (central_id) DO UPDATE SET delivery_id = excluded.delivery_id, test_taker = excluded.test_taker,
                state = excluded.state, details = excluded.details, revision = excluded.revision,
                content_sha256 = excluded.content_sha256, bundle_id = excluded.bundle_id, stored_at = excluded.stored_at
             RETURNING rid",
            &[
                &r.central_id, &r.org_id, &r.execution_id, &r.delivery_id, &r.test_taker, &r.state,
                &r.details.to_string(), &r.revision, &r.content_sha256, &bundle_id, &crate::time::now_rfc3339(),
            ],
        )?;
        let rid: i64 = match row {
            Some(row) => get(&row, 0)?,
            None => return Err(shape("central_results: no rid returned".into())),
        };
        self.exec("DELETE FROM variables WHERE rid = $1", &[&rid])?;
        if variables.is_empty() {
            return Ok(());
        }
        let numbers: Vec<i64> = (0..variables.len() as i64).collect();
        self.copy_rows(
            "COPY variables (rid, n, call_id_test, call_id_item, test, item, data) FROM STDIN (FORMAT binary)",
            &[Type::INT8, Type::INT8, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT],
            variables.iter().zip(&numbers).map(|(v, n)| {
                let row: Vec<&(dyn ToSql + Sync)> =
                    vec![&rid, n, &v.call_id_test, &v.call_id_item, &v.test, &v.item, &v.json];
                row
            }),
        )?;
        Ok(())
    }

    fn quarantine(&self, q: &Quarantined<'_>) -> Result<()> {
        self.exec(
            "INSERT INTO quarantine (org_id, execution_id, revision, content_sha256, reason, bundle_id, content, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            &[
                &q.org_id, &q.execution_id, &q.revision, &q.content_sha256, &q.reason, &q.bundle_id, &q.content,
                &crate::time::now_rfc3339(),
            ],
        )?;
        Ok(())
    }

    fn for_each_central_result(
        &self,
        each: &mut dyn FnMut(CentralResult, Vec<Value>) -> Result<()>,
    ) -> Result<u64> {
        self.each_batch(
            "SELECT central_id, org_id, execution_id, delivery_id, test_taker, state, details, revision,
                content_sha256, rid
             FROM central_results ORDER BY org_id COLLATE \"C\", execution_id COLLATE \"C\"",
            &[],
            RESULTS_PER_FETCH,
            &mut |rows| {
                let rids = rows.iter().map(|r| get(r, 9)).collect::<Result<Vec<i64>>>()?;
                let mut variables = self.variables_of(&rids)?;
                for (r, rid) in rows.iter().zip(&rids) {
                    each(central_result(r)?, variables.remove(rid).unwrap_or_default())?;
                }
                Ok(())
            },
        )
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
        if logs.is_empty() {
            return Ok(());
        }
        self.exec(LOGS_IN, &[])?;
        let rows: Vec<(i64, String, &str, String, &str, &str)> = logs
            .iter()
            .enumerate()
            .map(|(n, l)| {
                let text = |k: &str| l[k].as_str().unwrap_or_default();
                (
                    n as i64,
                    log_id(l),
                    text("event_id"),
                    l.to_string(),
                    text("created_at"),
                    text("created_by"),
                )
            })
            .collect();
        self.copy_rows(
            "COPY courier_logs_in (n, log_id, event_id, data, created_at, created_by) FROM STDIN (FORMAT binary)",
            &[Type::INT8, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT],
            rows.iter().map(|(n, id, event, data, at, by)| {
                let row: Vec<&(dyn ToSql + Sync)> = vec![n, id, event, data, at, by];
                row
            }),
        )?;
        self.exec(
            "INSERT INTO central_logs (org_id, log_id, central_id, execution_id, event_id, data, created_at, created_by)
             SELECT $1, log_id, $2, $3, event_id, data, created_at, created_by FROM courier_logs_in ORDER BY n
             ON CONFLICT (org_id, log_id) DO NOTHING",
            &[&org, &central_id, &execution_id],
        )?;
        self.exec("DELETE FROM courier_logs_in", &[])?;
        Ok(())
    }

    fn add_waiting_logs(
        &self,
        org: &str,
        batch_id: &str,
        execution_id: &str,
        logs: &[Value],
    ) -> Result<()> {
        self.exec(
            "INSERT INTO waiting_logs (org_id, batch_id, execution_id, content) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&org, &batch_id, &execution_id, &Value::from(logs.to_vec()).to_string()],
        )?;
        Ok(())
    }

    #[allow(clippy::type_complexity)]
    fn take_waiting_logs(
        &self,
        org: &str,
        execution_id: &str,
    ) -> Result<Vec<(String, std::result::Result<Vec<Value>, (String, String)>)>> {
        let rows = self.all_rows(
            "WITH taken AS (DELETE FROM waiting_logs WHERE org_id = $1 AND execution_id = $2
                            RETURNING batch_id, content)
             SELECT batch_id, content FROM taken ORDER BY batch_id COLLATE \"C\"",
            &[&org, &execution_id],
        )?;
        rows.iter()
            .map(|r| {
                let (id, c): (String, String) = (get(r, 0)?, get(r, 1)?);
                Ok(match serde_json::from_str::<Vec<Value>>(&c) {
                    Ok(logs) => (id, Ok(logs)),
                    Err(e) => (id, Err((c, e.to_string()))),
                })
            })
            .collect()
    }

    fn for_each_central_log(
        &self,
        each: &mut dyn FnMut(&str, &str, &str, Value) -> Result<()>,
    ) -> Result<u64> {
        self.each_batch(
            "SELECT org_id, central_id, execution_id, data FROM central_logs
             ORDER BY org_id COLLATE \"C\", execution_id COLLATE \"C\", created_at COLLATE \"C\",
                log_id COLLATE \"C\"",
            &[],
            LOGS_PER_FETCH,
            &mut |rows| {
                for r in &rows {
                    let (org, central_id, exec, data): (String, String, String, String) =
                        (get(r, 0)?, get(r, 1)?, get(r, 2)?, get(r, 3)?);
                    let log = serde_json::from_str(&data).unwrap_or(Value::Null);
                    each(&org, &central_id, &exec, log)?;
                }
                Ok(())
            },
        )
    }

    // ---- central: acknowledgements owed -----------------------------------------------

    fn owe_ack(&self, org: &str, ack: &OwedAck) -> Result<()> {
        crate::failpoint::hit("store.ack")?;
        let (item, reference, revision, sha, status, reason) = ack.row();
        self.exec(
            "INSERT INTO acks_out (org_id, item, ref, revision, content_sha256, status, reason, first_seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)
             ON CONFLICT (org_id, item, ref) DO UPDATE SET revision = excluded.revision,
               content_sha256 = excluded.content_sha256, status = excluded.status, reason = excluded.reason,
               first_seq = NULL",
            &[&org, &item, &reference, &revision, &sha, &status, &reason],
        )?;
        Ok(())
    }

    fn owe_ack_unless_owed(&self, org: &str, ack: &OwedAck) -> Result<()> {
        let (item, reference, revision, sha, status, reason) = ack.row();
        self.exec(
            "INSERT INTO acks_out (org_id, item, ref, revision, content_sha256, status, reason, first_seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)
             ON CONFLICT (org_id, item, ref) DO NOTHING",
            &[&org, &item, &reference, &revision, &sha, &status, &reason],
        )?;
        Ok(())
    }

    fn owed_acks(&self, org: &str) -> Result<Vec<OwedAck>> {
        self.all_rows(
            "SELECT item, ref, revision, content_sha256, status, reason FROM acks_out WHERE org_id = $1
             ORDER BY item COLLATE \"C\", ref COLLATE \"C\"",
            &[&org],
        )?
        .iter()
        .map(owed_ack)
        .collect()
    }

    fn acks_carried_by(&self, org: &str, seq: i64) -> Result<()> {
        self.exec(
            "UPDATE acks_out SET first_seq = $1 WHERE org_id = $2 AND first_seq IS NULL",
            &[&seq, &org],
        )?;
        Ok(())
    }

    fn acks_delivered(&self, org: &str, seq: i64) -> Result<()> {
        self.exec(
            "DELETE FROM acks_out WHERE org_id = $1 AND first_seq IS NOT NULL AND first_seq <= $2",
            &[&org, &seq],
        )?;
        Ok(())
    }
}
