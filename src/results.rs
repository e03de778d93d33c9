//! Results and delivery logs: ingest and list at the centre (sealed to central's key as
//! soon as they are stored), acknowledgements from central, and central's decrypted
//! exports (jsonl in TAO's wire shape, csv one row per variable or log).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::crypto;
use crate::downsync::Acks;
use crate::entities::for_each_record;
use crate::error::{Error, IoContext, Result};
use crate::site::{Role, Site};
use crate::store::{NewHistory, Tx};

/// Sync status of a result at the centre.
pub mod status {
    pub const PENDING: &str = "pending";
    pub const SENT: &str = "sent";
    pub const SYNCHRONIZED: &str = "synchronized";
    pub const TO_BE_RESYNCED: &str = "to_be_resynced";
    /// Central kept it aside (same id, different content); the reason says why.
    pub const CONFLICT: &str = "conflict";
}

/// A record that was not stored, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    pub file: PathBuf,
    pub record: String,
    pub reason: String,
}

/// What `results add` / `logs add` did.
#[derive(Debug, Default, Serialize)]
pub struct AddReport {
    pub added: u64,
    pub replaced: u64,
    pub unchanged: u64,
    pub refused: Vec<Refusal>,
}

/// Central's certificate as pinned at a centre.
pub fn central_cert(tx: &Tx<'_>, site: &Site) -> Result<crate::site::openpgp_cert::Cert> {
    let (_, armored) = tx.peer_by_role("central")?.ok_or_else(|| Error::Usage {
        what: format!(
            "{} is not enrolled with a central yet; run 'courier enroll' first",
            site.describe()
        ),
    })?;
    crypto::parse_cert(armored.as_bytes())
}

/// Compress then seal to central: what the centre keeps of a result or a log batch.
pub fn seal_for_central(cert: &crate::site::openpgp_cert::Cert, plain: &[u8]) -> Result<Vec<u8>> {
    let compressed = zstd::encode_all(plain, 3).map_err(|e| Error::Internal(e.to_string()))?;
    crypto::seal(cert, &compressed)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn holds(tx: &Tx<'_>, id: &str, kind: &str) -> Result<bool> {
    Ok(tx
        .conn()
        .query_row(
            "SELECT 1 FROM entities WHERE id = ?1 AND type = ?2",
            params![id, kind],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Centre: ingest results (TAO's wire shape). Good records are stored, bad ones reported.
pub fn add_results(site: &Site, files: &[PathBuf]) -> Result<AddReport> {
    site.require(Role::Center)?;
    let mut store = site.store()?;
    let tx = store.begin()?;
    let cert = central_cert(&tx, site)?;
    let mut report = AddReport::default();
    let now = crate::time::now_rfc3339();
    for file in files {
        for_each_record(file, |loc, parsed| {
            let mut refuse = |reason: String| {
                report.refused.push(Refusal {
                    file: file.clone(),
                    record: loc.to_string(),
                    reason,
                });
                Ok(())
            };
            let v = match parsed {
                Ok(v) => v,
                Err(e) => return refuse(e),
            };
            if let Err(e) = crate::schema::check("result", &v) {
                return refuse(e);
            }
            let exec = v["deliveryExecutionId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let delivery = v["deliveryId"].as_str().unwrap_or_default().to_string();
            let taker = v["details"]["test-taker"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let state = v["details"]["state"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if !holds(&tx, &delivery, "delivery")? {
                return refuse(format!("delivery {delivery} is not held by this centre"));
            }
            if !holds(&tx, &taker, "test-taker")? {
                return refuse(format!("test taker {taker} is not held by this centre"));
            }
            let plain = serde_json::to_vec(&v).map_err(|e| Error::Internal(e.to_string()))?;
            let sha = sha256_hex(&plain);
            let old: Option<(i64, String, String)> = tx
                .conn()
                .query_row(
                    "SELECT revision, content_sha256, sync_status FROM results WHERE execution_id = ?1",
                    [&exec],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let (revision, sync) = match &old {
                Some((_, s, _)) if *s == sha => {
                    report.unchanged += 1;
                    return Ok(());
                }
                Some((rev, _, st)) => {
                    report.replaced += 1;
                    let sync = if st == status::PENDING {
                        status::PENDING
                    } else {
                        status::TO_BE_RESYNCED
                    };
                    (rev + 1, sync)
                }
                None => {
                    report.added += 1;
                    (1, status::PENDING)
                }
            };
            let sealed = seal_for_central(&cert, &plain)?;
            tx.conn().execute(
                "INSERT INTO results (execution_id, delivery_id, test_taker, state, revision, content_sha256, size,
                    sealed, sync_status, reason, added_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, ?10, ?10)
                 ON CONFLICT (execution_id) DO UPDATE SET delivery_id = excluded.delivery_id,
                    test_taker = excluded.test_taker, state = excluded.state, revision = excluded.revision,
                    content_sha256 = excluded.content_sha256, size = excluded.size, sealed = excluded.sealed,
                    sync_status = excluded.sync_status, reason = NULL, updated_at = excluded.updated_at",
                params![exec, delivery, taker, state, revision, sha, plain.len() as i64, sealed, sync, now],
            )?;
            Ok(())
        })?;
    }
    tx.add_history(NewHistory {
        action: "results-add",
        org_id: site.config.org_id.as_deref(),
        status: if report.refused.is_empty() { "success" } else { "partial" },
        counts: json!({"added": report.added, "replaced": report.replaced, "unchanged": report.unchanged, "refused": report.refused.len()}),
        report: format!("{} file(s)", files.len()),
        ..Default::default()
    })?;
    tx.commit()?;
    Ok(report)
}

/// Centre: ingest delivery logs. Logs are sealed per (invocation, execution) batch.
pub fn add_logs(site: &Site, files: &[PathBuf]) -> Result<AddReport> {
    site.require(Role::Center)?;
    let mut store = site.store()?;
    let tx = store.begin()?;
    let cert = central_cert(&tx, site)?;
    let mut report = AddReport::default();
    let mut batches: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for file in files {
        for_each_record(file, |loc, parsed| {
            let v = match parsed.and_then(|v| crate::schema::check("log", &v).map(|_| v)) {
                Ok(v) => v,
                Err(reason) => {
                    report.refused.push(Refusal {
                        file: file.clone(),
                        record: loc.to_string(),
                        reason,
                    });
                    return Ok(());
                }
            };
            let id = match &v["id"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let exists = tx
                .conn()
                .query_row("SELECT 1 FROM log_ids WHERE log_id = ?1", [&id], |_| Ok(()))
                .optional()?
                .is_some();
            if exists || !seen.insert(id.clone()) {
                report.unchanged += 1;
                return Ok(());
            }
            let exec = v["delivery_execution_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            batches.entry(exec).or_default().push((id, v));
            report.added += 1;
            Ok(())
        })?;
    }
    let now = crate::time::now_rfc3339();
    for (exec, logs) in batches {
        let batch_id = crate::bundle::new_id();
        let plain = serde_json::to_vec(&logs.iter().map(|(_, v)| v).collect::<Vec<_>>())
            .map_err(|e| Error::Internal(e.to_string()))?;
        let sealed = seal_for_central(&cert, &plain)?;
        tx.conn().execute(
            "INSERT INTO log_batches (batch_id, execution_id, count, size, sealed, sync_status, added_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6)",
            params![batch_id, exec, logs.len() as i64, plain.len() as i64, sealed, now],
        )?;
        for (id, _) in &logs {
            tx.conn().execute(
                "INSERT INTO log_ids (log_id, batch_id) VALUES (?1, ?2)",
                params![id, batch_id],
            )?;
        }
    }
    tx.add_history(NewHistory {
        action: "logs-add",
        org_id: site.config.org_id.as_deref(),
        status: if report.refused.is_empty() { "success" } else { "partial" },
        counts: json!({"added": report.added, "unchanged": report.unchanged, "refused": report.refused.len()}),
        report: format!("{} file(s)", files.len()),
        ..Default::default()
    })?;
    tx.commit()?;
    Ok(report)
}

/// One row of `results list`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultRow {
    pub delivery_execution_id: String,
    pub delivery_id: String,
    pub test_taker: String,
    pub state: String,
    pub sync_status: String,
    pub revision: i64,
    pub size: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Centre: the results held and their sync status.
pub fn list_results(site: &Site) -> Result<Vec<ResultRow>> {
    site.require(Role::Center)?;
    let mut store = site.store()?;
    let tx = store.read()?;
    let mut stmt = tx.conn().prepare(
        "SELECT execution_id, delivery_id, test_taker, state, sync_status, revision, size, reason
         FROM results ORDER BY added_at, execution_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(ResultRow {
            delivery_execution_id: r.get(0)?,
            delivery_id: r.get(1)?,
            test_taker: r.get(2)?,
            state: r.get(3)?,
            sync_status: r.get(4)?,
            revision: r.get(5)?,
            size: r.get(6)?,
            reason: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Centre: apply central's acknowledgements. Returns (results, log batches) acknowledged.
pub fn apply_acks(site: &Site, tx: &Tx<'_>, acks: &Acks) -> Result<(u64, u64)> {
    let delete = site.config.settings.delete_after_ack;
    let mut n_results = 0;
    for a in &acks.results {
        let cur: Option<(i64, String)> = tx
            .conn()
            .query_row(
                "SELECT revision, content_sha256 FROM results WHERE execution_id = ?1",
                [&a.execution_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((rev, sha)) = cur else { continue };
        if rev != a.revision || sha != a.content_sha256 {
            continue; // about an older copy: the current one is still owed an answer
        }
        match a.status.as_str() {
            "stored" | "unchanged" | "replaced" => {
                let sql = if delete {
                    "UPDATE results SET sync_status = 'synchronized', reason = NULL, sealed = NULL WHERE execution_id = ?1"
                } else {
                    "UPDATE results SET sync_status = 'synchronized', reason = NULL WHERE execution_id = ?1"
                };
                tx.conn().execute(sql, [&a.execution_id])?;
                n_results += 1;
            }
            "conflict" => {
                tx.conn().execute(
                    "UPDATE results SET sync_status = 'conflict', reason = ?1 WHERE execution_id = ?2",
                    params![a.reason.as_deref().unwrap_or("conflict at central"), a.execution_id],
                )?;
                n_results += 1;
            }
            _ => {}
        }
    }
    let mut n_logs = 0;
    for l in &acks.logs {
        if l.status == "stored" {
            let sql = if delete {
                "UPDATE log_batches SET sync_status = 'synchronized', sealed = NULL WHERE batch_id = ?1"
            } else {
                "UPDATE log_batches SET sync_status = 'synchronized' WHERE batch_id = ?1"
            };
            n_logs += tx.conn().execute(sql, [&l.batch_id])? as u64;
        }
    }
    Ok((n_results, n_logs))
}

/// Output formats of central's exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

/// Write through a temporary name next to `out`, renamed when complete.
fn write_output(out: &Path, fill: impl FnOnce(&mut dyn Write) -> Result<u64>) -> Result<u64> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).at(dir)?;
    let tmp = tempfile::Builder::new()
        .prefix(".courier-")
        .suffix(".part")
        .tempfile_in(dir)
        .at(dir)?;
    let n = {
        let mut w = std::io::BufWriter::new(tmp.as_file());
        let n = fill(&mut w)?;
        w.flush().at(out)?;
        n
    };
    tmp.as_file().sync_all().at(out)?;
    tmp.persist(out).map_err(|e| Error::io(out, e.error))?;
    Ok(n)
}

/// One result as stored at central.
struct StoredResult {
    central_id: String,
    org: String,
    exec: String,
    delivery: String,
    taker: String,
    state: String,
    details: Value,
    variables: Vec<Value>,
}

/// Visit every result at central, one at a time (never the whole set in memory).
fn for_each_result(tx: &Tx<'_>, mut each: impl FnMut(StoredResult) -> Result<()>) -> Result<u64> {
    let mut results = tx.conn().prepare(
        "SELECT central_id, org_id, execution_id, delivery_id, test_taker, state, details FROM central_results
         ORDER BY org_id, execution_id",
    )?;
    let mut vars = tx
        .conn()
        .prepare("SELECT data FROM variables WHERE central_id = ?1 ORDER BY n")?;
    let mut rows = results.query([])?;
    let mut count = 0;
    while let Some(r) = rows.next()? {
        let central_id: String = r.get(0)?;
        let details: String = r.get(6)?;
        let variables: Vec<Value> = vars
            .query_map([&central_id], |v| v.get::<_, String>(0))?
            .map(|t| t.map(|t| serde_json::from_str(&t).unwrap_or(Value::Null)))
            .collect::<rusqlite::Result<_>>()?;
        each(StoredResult {
            central_id,
            org: r.get(1)?,
            exec: r.get(2)?,
            delivery: r.get(3)?,
            taker: r.get(4)?,
            state: r.get(5)?,
            details: serde_json::from_str(&details).unwrap_or(Value::Null),
            variables,
        })?;
        count += 1;
    }
    Ok(count)
}

/// Central: write every stored result, decrypted (results are stored decrypted at central).
/// jsonl rows are TAO's wire shape with central's execution id, plus `centerExecutionId`
/// and `orgId` (schemas/result-export.schema.json); csv has one row per variable.
pub fn export_results(site: &Site, format: Format, out: &Path) -> Result<u64> {
    site.require(Role::Central)?;
    let mut store = site.store()?;
    let tx = store.read()?;
    write_output(out, |w| match format {
        Format::Jsonl => for_each_result(&tx, |r| {
            let row = json!({
                "deliveryId": r.delivery,
                "deliveryExecutionId": r.central_id,
                "details": r.details,
                "variables": r.variables,
                "centerExecutionId": r.exec,
                "orgId": r.org,
            });
            serde_json::to_writer(&mut *w, &row).map_err(|e| Error::Internal(e.to_string()))?;
            w.write_all(b"\n").at(out)
        }),
        Format::Csv => {
            let mut c = csv::Writer::from_writer(w);
            c.write_record([
                "central_execution_id",
                "center_execution_id",
                "org_id",
                "delivery_id",
                "test_taker",
                "state",
                "variable_index",
                "call_id_test",
                "call_id_item",
                "test",
                "item",
                "type",
                "identifier",
                "cardinality",
                "base_type",
                "epoch",
                "value",
                "correct_response",
                "variable",
            ])
            .map_err(csv_err)?;
            let n = for_each_result(&tx, |r| {
                for (i, v) in r.variables.iter().enumerate() {
                    let d = &v["data"];
                    let value = ["candidateResponse", "value", "trace"]
                        .iter()
                        .find_map(|k| d.get(*k))
                        .map(scalar)
                        .unwrap_or_default();
                    c.write_record([
                        r.central_id.as_str(),
                        &r.exec,
                        &r.org,
                        &r.delivery,
                        &r.taker,
                        &r.state,
                        &i.to_string(),
                        &scalar(&v["callIdTest"]),
                        &scalar(&v["callIdItem"]),
                        &scalar(&v["test"]),
                        &scalar(&v["item"]),
                        &scalar(&d["type"]),
                        &scalar(&d["identifier"]),
                        &scalar(&d["cardinality"]),
                        &scalar(&d["baseType"]),
                        &scalar(&d["epoch"]),
                        &value,
                        &scalar(&d["correctResponse"]),
                        &v.to_string(),
                    ])
                    .map_err(csv_err)?;
                }
                Ok(())
            })?;
            c.flush().at(out)?;
            Ok(n)
        }
    })
}

/// Central: write every stored delivery log (schemas/log-export.schema.json for jsonl).
pub fn export_logs(site: &Site, format: Format, out: &Path) -> Result<u64> {
    site.require(Role::Central)?;
    let mut store = site.store()?;
    let tx = store.read()?;
    write_output(out, |w| {
        let mut stmt = tx.conn().prepare(
            "SELECT org_id, central_id, execution_id, data FROM central_logs ORDER BY org_id, central_id, created_at, log_id",
        )?;
        let mut rows = stmt.query([])?;
        let mut count = 0;
        if format == Format::Csv {
            let mut c = csv::Writer::from_writer(w);
            c.write_record([
                "id",
                "central_execution_id",
                "center_execution_id",
                "org_id",
                "event_id",
                "data",
                "created_at",
                "created_by",
            ])
            .map_err(csv_err)?;
            while let Some(r) = rows.next()? {
                let (org, central_id, exec, data): (String, String, String, String) =
                    (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                let v: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                c.write_record([
                    &scalar(&v["id"]),
                    &central_id,
                    &exec,
                    &org,
                    &scalar(&v["event_id"]),
                    &v["data"].to_string(),
                    &scalar(&v["created_at"]),
                    &scalar(&v["created_by"]),
                ])
                .map_err(csv_err)?;
                count += 1;
            }
            c.flush().at(out)?;
        } else {
            while let Some(r) = rows.next()? {
                let (org, central_id, exec, data): (String, String, String, String) =
                    (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                let mut v: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                v["delivery_execution_id"] = Value::String(central_id);
                v["centerExecutionId"] = Value::String(exec);
                v["orgId"] = Value::String(org);
                serde_json::to_writer(&mut *w, &v).map_err(|e| Error::Internal(e.to_string()))?;
                w.write_all(b"\n").at(out)?;
                count += 1;
            }
        }
        Ok(count)
    })
}

fn csv_err(e: csv::Error) -> Error {
    Error::Internal(format!("csv: {e}"))
}

/// A JSON value as a CSV cell: strings bare, null empty, the rest as JSON.
fn scalar(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
