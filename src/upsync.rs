//! Test centre → central: results, delivery logs and acknowledgements of data bundles.
//!
//! An export writes what central has not acknowledged, split into files by
//! `results_per_file` and by size (`max_file_size`); each file is a complete bundle that can
//! be verified and applied alone, in any order, any number of times.
//!
//! Payload entries: `ack.json` (schemas/center-ack.schema.json), then per result
//! `results/NNNNNN.json` (schemas/result-meta.schema.json) followed by `results/NNNNNN.pgp`
//! (the result as sealed at the centre: zstd-compressed JSON encrypted to central), and per
//! log batch `logs/NNNNNN.json` (schemas/log-meta.schema.json) and `logs/NNNNNN.pgp`.
//!
//! Central maps the centre's execution id to its own, derived from (org, execution id):
//! the mapping and the variables are written in one transaction, so a retry after a crash
//! finds either everything or nothing, never a duplicate.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::bundle::{self, Bundle, Kind, Party, SetRef, Spec, Written};
use crate::crypto;
use crate::downsync::{inventory_digest, ExportReport};
use crate::error::{Error, Result};
use crate::import::Outcome;
use crate::site::openpgp_cert::Cert;
use crate::site::{Role, Site};
use crate::store::{NewHistory, Tx};

/// Metadata travelling beside a sealed result (schemas/result-meta.schema.json).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultMeta {
    pub execution_id: String,
    pub delivery_id: String,
    pub test_taker: String,
    pub state: String,
    /// 1 for the first copy; each reopened-and-finished-again copy adds one.
    pub revision: i64,
    /// SHA-256 of the result's JSON as ingested (the sealed plaintext).
    pub content_sha256: String,
    /// Bytes of that JSON.
    pub size: i64,
    /// True when this copy replaces one sent earlier.
    pub resync: bool,
}

/// Metadata travelling beside a sealed log batch (schemas/log-meta.schema.json).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogMeta {
    pub batch_id: String,
    pub execution_id: String,
    pub count: i64,
    pub size: i64,
}

/// The centre's acknowledgement of data bundles (schemas/center-ack.schema.json).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CenterAck {
    /// The most recent data bundles applied: id and sequence.
    pub applied: Vec<AppliedBundle>,
    /// Sequence of the last data bundle applied, if any.
    pub last_seq: Option<i64>,
    /// Digest of the (id, checksum) inventory the centre holds (see `inventory_digest`).
    pub inventory_sha256: String,
    /// Test packages held, by SHA-256.
    pub packages: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliedBundle {
    pub bundle_id: String,
    pub seq: i64,
}

/// Bytes kept free in every file for the header, signature, trailer, OpenPGP and zstd
/// framing; sized by measurement on incompressible payloads with margin.
const FILE_OVERHEAD: u64 = 16 * 1024;
/// Tar framing of one entry pair (two 512-byte headers plus padding).
const ENTRY_OVERHEAD: u64 = 2048;

struct Item {
    kind: ItemKind,
    id: String,
    cost: u64,
}

enum ItemKind {
    Result,
    Logs,
}

fn center_ack(tx: &Tx<'_>) -> Result<CenterAck> {
    let mut stmt = tx.conn().prepare(
        "SELECT bundle_id, seq FROM bundles WHERE direction = 'in' AND kind = 'data' ORDER BY seq DESC, at DESC LIMIT 20",
    )?;
    let applied: Vec<AppliedBundle> = stmt
        .query_map([], |r| {
            Ok(AppliedBundle {
                bundle_id: r.get(0)?,
                seq: r.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    // The state is that of the bundle applied last (by time: a recorded rollback counts).
    let last_seq: Option<i64> = tx
        .conn()
        .query_row("SELECT seq FROM bundles WHERE direction = 'in' AND kind = 'data' ORDER BY rowid DESC LIMIT 1", [], |r| r.get(0))
        .optional()?;
    let mut stmt = tx.conn().prepare("SELECT id, checksum FROM entities")?;
    let inv: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = tx
        .conn()
        .prepare("SELECT sha256 FROM packages ORDER BY sha256")?;
    let packages: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(CenterAck {
        applied,
        last_seq,
        inventory_sha256: inventory_digest(inv.iter().map(|(a, b)| (a.as_str(), b.as_str()))),
        packages,
    })
}

/// Centre: write what central has not acknowledged into `out_dir`.
pub fn export(site: &Site, out_dir: &Path, max_file_size: Option<u64>) -> Result<ExportReport> {
    site.require(Role::Center)?;
    let org = site.org_id()?.to_string();
    let settings = &site.config.settings;
    let max = max_file_size.unwrap_or(settings.max_file_size);
    if max < 32 * 1024 {
        return Err(Error::Usage {
            what: format!("--max-file-size {max} is too small; use at least 32K"),
        });
    }
    let key = site.secret_key()?;
    let mut store = site.store()?;
    let tx = store.begin()?;
    let central = crate::results::central_cert(&tx, site)?;
    let (central_fpr, _) = tx
        .peer_by_role("central")?
        .expect("checked by central_cert");
    let ack = center_ack(&tx)?;
    let ack_json = serde_json::to_string(&ack).map_err(|e| Error::Internal(e.to_string()))?;
    let ack_digest = hex::encode(Sha256::digest(ack_json.as_bytes()));

    let states = &settings.status_executions_to_sync;
    let placeholders = (0..states.len())
        .map(|i| format!("?{}", i + 1))
        .collect::<Vec<_>>()
        .join(", ");
    let mut items: Vec<Item> = Vec::new();
    {
        let sql = format!(
            "SELECT execution_id, length(sealed) FROM results
             WHERE sync_status IN ('pending', 'to_be_resynced', 'sent') AND sealed IS NOT NULL AND state IN ({placeholders})
             ORDER BY added_at, execution_id"
        );
        let mut stmt = tx.conn().prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(states.iter()), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (id, len) = row?;
            items.push(Item {
                kind: ItemKind::Result,
                id,
                cost: len as u64 + 1024 + ENTRY_OVERHEAD,
            });
        }
        let sql = format!(
            "SELECT b.batch_id, length(b.sealed) FROM log_batches b JOIN results r ON r.execution_id = b.execution_id
             WHERE b.sync_status IN ('pending', 'sent') AND b.sealed IS NOT NULL AND r.state IN ({placeholders})
             ORDER BY b.added_at, b.batch_id"
        );
        let mut stmt = tx.conn().prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(states.iter()), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (id, len) = row?;
            items.push(Item {
                kind: ItemKind::Logs,
                id,
                cost: len as u64 + 512 + ENTRY_OVERHEAD,
            });
        }
    }
    if items.is_empty() && tx.meta_get("ack_sent")?.as_deref() == Some(ack_digest.as_str()) {
        return Ok(ExportReport {
            files: vec![],
            counts: BTreeMap::new(),
            message: format!("nothing new for central from centre {org}; no bundle written"),
        });
    }
    // Plan the files: greedy, in order, within the size budget and results_per_file.
    let budget = (max - FILE_OVERHEAD - ack_json.len() as u64 - ENTRY_OVERHEAD) / 100 * 97;
    let per_file = settings.results_per_file.max(1);
    let mut files: Vec<Vec<&Item>> = vec![vec![]];
    let (mut used, mut results_in) = (0u64, 0u64);
    for item in &items {
        if item.cost > budget {
            return Err(Error::Usage {
                what: format!(
                    "{} needs about {} bytes, more than --max-file-size {max} allows; raise it",
                    item.id, item.cost
                ),
            });
        }
        let is_result = matches!(item.kind, ItemKind::Result);
        if used + item.cost > budget || (is_result && results_in >= per_file) {
            files.push(vec![]);
            used = 0;
            results_in = 0;
        }
        used += item.cost;
        results_in += u64::from(is_result);
        files.last_mut().expect("one").push(item);
    }
    let set_id = bundle::new_id();
    let count = files.len() as u64;
    let mut written: Vec<Written> = Vec::new();
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for (i, file_items) in files.iter().enumerate() {
        let seq = tx.next_counter("up_seq")?;
        let spec = Spec {
            kind: Kind::Results,
            bundle_id: bundle::new_id(),
            set: SetRef {
                id: set_id.clone(),
                index: i as u64 + 1,
                count,
            },
            sender: Party {
                fingerprint: site.config.fingerprint.clone(),
                role: Role::Center,
                org_id: Some(org.clone()),
            },
            recipient: Party {
                fingerprint: central_fpr.clone(),
                role: Role::Central,
                org_id: None,
            },
            org_id: org.clone(),
            sequence: seq as u64,
            sender_certificate: None,
        };
        let out = out_dir.join(format!("{org}-results-{seq:06}-{}of{count}.courier", i + 1));
        let (w, ()) = bundle::write(&out, spec, &key, &central, |p| {
            p.add_bytes("ack.json", ack_json.as_bytes())?;
            for (k, item) in file_items.iter().enumerate() {
                match item.kind {
                    ItemKind::Result => {
                        let (meta, sealed) = result_for_export(&tx, &item.id)?;
                        p.add_json(&format!("results/{k:06}.json"), &meta)?;
                        p.add_bytes(&format!("results/{k:06}.pgp"), &sealed)?;
                        p.count("results", 1);
                    }
                    ItemKind::Logs => {
                        let (meta, sealed) = logs_for_export(&tx, &item.id)?;
                        p.add_json(&format!("logs/{k:06}.json"), &meta)?;
                        p.add_bytes(&format!("logs/{k:06}.pgp"), &sealed)?;
                        p.count("logs", meta.count as u64);
                        p.count("log-batches", 1);
                    }
                }
            }
            Ok(())
        })?;
        let size = w.size();
        if size > max {
            return Err(Error::Internal(format!(
                "{} came out at {size} bytes, over the limit {max}; nothing was written",
                out.display()
            )));
        }
        for (k, v) in &w.header.counts {
            *totals.entry(k.clone()).or_default() += v;
        }
        tx.record_bundle("out", &w.header, &out.to_string_lossy())?;
        written.push(w);
    }
    for item in &items {
        match item.kind {
            ItemKind::Result => tx.conn().execute(
                "UPDATE results SET sync_status = 'sent' WHERE execution_id = ?1 AND sync_status IN ('pending', 'to_be_resynced')",
                [&item.id],
            )?,
            ItemKind::Logs => tx.conn().execute("UPDATE log_batches SET sync_status = 'sent' WHERE batch_id = ?1", [&item.id])?,
        };
    }
    tx.meta_set("ack_sent", &ack_digest)?;
    tx.add_history(NewHistory {
        action: "export",
        org_id: Some(&org),
        bundle_id: Some(&set_id),
        kind: Some("results"),
        status: "success",
        counts: json!(totals),
        report: format!("{count} file(s), set {set_id}"),
        ..Default::default()
    })?;
    tx.commit()?;
    let mut paths = Vec::new();
    for w in written {
        paths.push(w.persist()?);
    }
    let message = format!(
        "{} file(s) for central: {} result(s), {} log(s)",
        paths.len(),
        totals.get("results").unwrap_or(&0),
        totals.get("logs").unwrap_or(&0)
    );
    Ok(ExportReport {
        files: paths,
        counts: totals,
        message,
    })
}

fn result_for_export(tx: &Tx<'_>, id: &str) -> Result<(ResultMeta, Vec<u8>)> {
    Ok(tx.conn().query_row(
        "SELECT execution_id, delivery_id, test_taker, state, revision, content_sha256, size, sealed, sync_status
         FROM results WHERE execution_id = ?1",
        [id],
        |r| {
            let revision: i64 = r.get(4)?;
            let status: String = r.get(8)?;
            Ok((
                ResultMeta {
                    execution_id: r.get(0)?,
                    delivery_id: r.get(1)?,
                    test_taker: r.get(2)?,
                    state: r.get(3)?,
                    revision,
                    content_sha256: r.get(5)?,
                    size: r.get(6)?,
                    resync: revision > 1 || status == "to_be_resynced",
                },
                r.get(7)?,
            ))
        },
    )?)
}

fn logs_for_export(tx: &Tx<'_>, id: &str) -> Result<(LogMeta, Vec<u8>)> {
    Ok(tx.conn().query_row(
        "SELECT batch_id, execution_id, count, size, sealed FROM log_batches WHERE batch_id = ?1",
        [id],
        |r| {
            Ok((
                LogMeta {
                    batch_id: r.get(0)?,
                    execution_id: r.get(1)?,
                    count: r.get(2)?,
                    size: r.get(3)?,
                },
                r.get(4)?,
            ))
        },
    )?)
}

/// Central's own id for a centre's execution: stable, so a retry maps to the same row.
pub fn central_execution_id(org: &str, execution_id: &str) -> String {
    let h = Sha256::new()
        .chain_update(org.as_bytes())
        .chain_update(b"\n")
        .chain_update(execution_id.as_bytes())
        .finalize();
    format!("urn:courier:execution:{}", &hex::encode(h)[..32])
}

/// Largest decompressed result or log batch accepted.
const MAX_SEALED_PLAIN: u64 = 256 << 20;

fn open_sealed(key: &crypto::SecretKey, blob: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let compressed = crypto::unseal(key, blob)
        .map_err(|e| format!("cannot be decrypted with central's key ({e})"))?;
    let mut out = Vec::new();
    zstd::stream::read::Decoder::new(&compressed[..])
        .map_err(|e| e.to_string())?
        .take(MAX_SEALED_PLAIN + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("is not a zstd stream ({e})"))?;
    if out.len() as u64 > MAX_SEALED_PLAIN {
        return Err("is larger than 256 MiB".into());
    }
    Ok(out)
}

#[derive(Default)]
struct Tally {
    counts: BTreeMap<&'static str, u64>,
    problems: Vec<String>,
}

impl Tally {
    fn add(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }
}

/// Central: apply a verified results bundle in one transaction.
pub fn apply(site: &Site, b: &Bundle, cert: &Cert) -> Result<Outcome> {
    site.require(Role::Central)?;
    let path = &b.path;
    let h = &b.header;
    if h.sender.role != Role::Center {
        return Err(Error::refused(
            path,
            "results bundles come from test centres only; refused",
        ));
    }
    let org = h.org_id.clone();
    let key = site.secret_key()?;
    let mut store = site.store()?;
    let tx = store.begin()?;
    if tx.bundle_seen(&h.bundle_id)? {
        return Ok(Outcome::already());
    }
    let mut tally = Tally::default();
    let mut pending_result: Option<(String, ResultMeta)> = None;
    let mut pending_logs: Option<(String, LogMeta)> = None;
    let mut ack: Option<CenterAck> = None;
    let bad = |what: String| Error::refused(path, format!("{what}; refused"));
    b.read_payload(&key, cert, |name, r| {
        if name == "ack.json" {
            let bytes = bundle::read_small(path, name, r, 16 << 20)?;
            let v: Value =
                serde_json::from_slice(&bytes).map_err(|e| bad(format!("ack.json: {e}")))?;
            crate::schema::check("center-ack", &v).map_err(|e| bad(format!("ack.json: {e}")))?;
            ack = Some(serde_json::from_value(v).map_err(|e| Error::Internal(e.to_string()))?);
        } else if let Some(stem) = name
            .strip_prefix("results/")
            .and_then(|n| n.strip_suffix(".json"))
        {
            let bytes = bundle::read_small(path, name, r, 1 << 20)?;
            let v: Value =
                serde_json::from_slice(&bytes).map_err(|e| bad(format!("{name}: {e}")))?;
            crate::schema::check("result-meta", &v).map_err(|e| bad(format!("{name}: {e}")))?;
            pending_result = Some((
                stem.to_string(),
                serde_json::from_value(v).map_err(|e| Error::Internal(e.to_string()))?,
            ));
        } else if let Some(stem) = name
            .strip_prefix("results/")
            .and_then(|n| n.strip_suffix(".pgp"))
        {
            let (want, meta) = pending_result
                .take()
                .ok_or_else(|| bad(format!("{name} without its metadata")))?;
            if want != stem {
                return Err(bad(format!("{name} does not follow its metadata")));
            }
            let blob = bundle::read_small(path, name, r, MAX_SEALED_PLAIN)?;
            receive_result(&tx, &key, &org, &h.bundle_id, meta, &blob, &mut tally)?;
        } else if let Some(stem) = name
            .strip_prefix("logs/")
            .and_then(|n| n.strip_suffix(".json"))
        {
            let bytes = bundle::read_small(path, name, r, 1 << 20)?;
            let v: Value =
                serde_json::from_slice(&bytes).map_err(|e| bad(format!("{name}: {e}")))?;
            crate::schema::check("log-meta", &v).map_err(|e| bad(format!("{name}: {e}")))?;
            pending_logs = Some((
                stem.to_string(),
                serde_json::from_value(v).map_err(|e| Error::Internal(e.to_string()))?,
            ));
        } else if let Some(stem) = name
            .strip_prefix("logs/")
            .and_then(|n| n.strip_suffix(".pgp"))
        {
            let (want, meta) = pending_logs
                .take()
                .ok_or_else(|| bad(format!("{name} without its metadata")))?;
            if want != stem {
                return Err(bad(format!("{name} does not follow its metadata")));
            }
            let blob = bundle::read_small(path, name, r, MAX_SEALED_PLAIN)?;
            receive_logs(&tx, &key, &org, meta, &blob, &mut tally)?;
        } else {
            return Err(bad(format!("unexpected payload entry {name}")));
        }
        Ok(())
    })?;
    if let Some(ack) = &ack {
        apply_center_ack(&tx, &org, h.sequence as i64, ack)?;
    }
    tx.record_bundle("in", h, &path.to_string_lossy())?;
    let mut report = tally
        .counts
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    if report.is_empty() {
        report = "acknowledgements only".into();
    }
    if !tally.problems.is_empty() {
        report.push_str(&format!("; quarantined: {}", tally.problems.join("; ")));
    }
    tx.add_history(NewHistory {
        action: "import",
        org_id: Some(&org),
        bundle_id: Some(&h.bundle_id),
        kind: Some("results"),
        seq: Some(h.sequence as i64),
        status: if tally.problems.is_empty() {
            "success"
        } else {
            "partial"
        },
        counts: json!(tally.counts),
        report: format!("part {} of {}: {report}", h.set.index, h.set.count),
    })?;
    tx.commit()?;
    Ok(Outcome {
        already: false,
        partial: !tally.problems.is_empty(),
        message: format!(
            "centre {org}, part {} of {}: {report}",
            h.set.index, h.set.count
        ),
    })
}

/// Record the answer owed to the centre about one result (resent until confirmed).
fn ack_result(
    tx: &Tx<'_>,
    org: &str,
    meta: &ResultMeta,
    status: &str,
    reason: Option<&str>,
) -> Result<()> {
    put_ack(
        tx,
        org,
        "result",
        &meta.execution_id,
        (Some(meta.revision), Some(&meta.content_sha256)),
        status,
        reason,
    )
}

/// Record the answer owed to the centre about one log batch.
fn ack_logs(tx: &Tx<'_>, org: &str, batch_id: &str, status: &str) -> Result<()> {
    put_ack(tx, org, "logs", batch_id, (None, None), status, None)
}

fn put_ack(
    tx: &Tx<'_>,
    org: &str,
    item: &str,
    reference: &str,
    (revision, sha): (Option<i64>, Option<&str>),
    status: &str,
    reason: Option<&str>,
) -> Result<()> {
    tx.conn().execute(
        "INSERT INTO acks_out (org_id, item, ref, revision, content_sha256, status, reason, first_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)
         ON CONFLICT (org_id, item, ref) DO UPDATE SET revision = excluded.revision,
           content_sha256 = excluded.content_sha256, status = excluded.status, reason = excluded.reason, first_seq = NULL",
        params![org, item, reference, revision, sha, status, reason],
    )?;
    Ok(())
}

fn quarantine(
    tx: &Tx<'_>,
    org: &str,
    meta: &ResultMeta,
    reason: &str,
    bundle_id: &str,
    content: &str,
    tally: &mut Tally,
) -> Result<()> {
    tx.conn().execute(
        "INSERT OR IGNORE INTO quarantine (org_id, execution_id, revision, content_sha256, reason, bundle_id, content, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![org, meta.execution_id, meta.revision, meta.content_sha256, reason, bundle_id, content, crate::time::now_rfc3339()],
    )?;
    ack_result(tx, org, meta, "conflict", Some(reason))?;
    tally.add("quarantined");
    tally
        .problems
        .push(format!("{}: {reason}", meta.execution_id));
    Ok(())
}

fn receive_result(
    tx: &Tx<'_>,
    key: &crypto::SecretKey,
    org: &str,
    bundle_id: &str,
    meta: ResultMeta,
    blob: &[u8],
    tally: &mut Tally,
) -> Result<()> {
    let plain = match open_sealed(key, blob) {
        Ok(p) => p,
        Err(e) => {
            return quarantine(
                tx,
                org,
                &meta,
                &format!("sealed result {e}"),
                bundle_id,
                "",
                tally,
            )
        }
    };
    let text = String::from_utf8_lossy(&plain).into_owned();
    if hex::encode(Sha256::digest(&plain)) != meta.content_sha256 {
        return quarantine(
            tx,
            org,
            &meta,
            "content does not match its declared hash",
            bundle_id,
            &text,
            tally,
        );
    }
    let v: Value = match serde_json::from_slice(&plain) {
        Ok(v) => v,
        Err(e) => {
            return quarantine(
                tx,
                org,
                &meta,
                &format!("not JSON ({e})"),
                bundle_id,
                &text,
                tally,
            )
        }
    };
    if let Err(e) = crate::schema::check("result", &v) {
        return quarantine(
            tx,
            org,
            &meta,
            &format!("fails the result schema: {e}"),
            bundle_id,
            &text,
            tally,
        );
    }
    if v["deliveryExecutionId"].as_str() != Some(meta.execution_id.as_str()) {
        return quarantine(
            tx,
            org,
            &meta,
            "execution id differs from its metadata",
            bundle_id,
            &text,
            tally,
        );
    }
    let central_id = central_execution_id(org, &meta.execution_id);
    let existing: Option<(i64, String)> = tx
        .conn()
        .query_row(
            "SELECT revision, content_sha256 FROM central_results WHERE central_id = ?1",
            [&central_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let status = match existing {
        None => "stored",
        Some((rev, sha)) if sha == meta.content_sha256 && rev == meta.revision => "unchanged",
        Some((rev, _)) if meta.revision < rev => {
            tally.add("stale");
            return Ok(()); // an older copy arriving late; the newer one stands
        }
        Some((rev, _)) if meta.revision > rev && meta.resync => "replaced",
        Some((rev, _)) => {
            let reason = format!("already stored with other content (revision {rev}) and this copy is not marked as a re-sync");
            return quarantine(tx, org, &meta, &reason, bundle_id, &text, tally);
        }
    };
    if status != "unchanged" {
        tx.conn()
            .execute("DELETE FROM variables WHERE central_id = ?1", [&central_id])?;
        tx.conn().execute(
            "INSERT INTO central_results (central_id, org_id, execution_id, delivery_id, test_taker, state, details,
                revision, content_sha256, bundle_id, stored_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (central_id) DO UPDATE SET delivery_id = excluded.delivery_id, test_taker = excluded.test_taker,
                state = excluded.state, details = excluded.details, revision = excluded.revision,
                content_sha256 = excluded.content_sha256, bundle_id = excluded.bundle_id, stored_at = excluded.stored_at",
            params![
                central_id, org, meta.execution_id, v["deliveryId"].as_str().unwrap_or_default(),
                v["details"]["test-taker"].as_str().unwrap_or_default(), v["details"]["state"].as_str().unwrap_or_default(),
                v["details"].to_string(), meta.revision, meta.content_sha256, bundle_id, crate::time::now_rfc3339()
            ],
        )?;
        let mut ins = tx.conn().prepare_cached(
            "INSERT INTO variables (central_id, n, call_id_test, call_id_item, test, item, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (n, var) in v["variables"].as_array().into_iter().flatten().enumerate() {
            ins.execute(params![
                central_id,
                n as i64,
                var["callIdTest"].as_str(),
                var["callIdItem"].as_str(),
                var["test"].as_str(),
                var["item"].as_str(),
                var.to_string()
            ])?;
        }
        tally.counts.insert(
            "variables",
            tally.counts.get("variables").copied().unwrap_or(0)
                + v["variables"].as_array().map_or(0, |a| a.len() as u64),
        );
    }
    tally.add(match status {
        "stored" => "results stored",
        "replaced" => "results replaced",
        _ => "results unchanged",
    });
    ack_result(tx, org, &meta, status, None)?;
    // Logs that arrived before their result are applied now.
    let mut stmt = tx.conn().prepare(
        "SELECT batch_id, content FROM waiting_logs WHERE org_id = ?1 AND execution_id = ?2",
    )?;
    let waiting: Vec<(String, String)> = stmt
        .query_map(params![org, meta.execution_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (batch_id, content) in waiting {
        let logs: Vec<Value> = serde_json::from_str(&content).unwrap_or_default();
        store_logs(tx, org, &central_id, &meta.execution_id, &logs)?;
        tx.conn().execute(
            "DELETE FROM waiting_logs WHERE org_id = ?1 AND batch_id = ?2",
            params![org, batch_id],
        )?;
        ack_logs(tx, org, &batch_id, "stored")?;
        tally.add("waiting log batches applied");
    }
    Ok(())
}

fn store_logs(
    tx: &Tx<'_>,
    org: &str,
    central_id: &str,
    execution_id: &str,
    logs: &[Value],
) -> Result<()> {
    let mut ins = tx.conn().prepare_cached(
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

fn receive_logs(
    tx: &Tx<'_>,
    key: &crypto::SecretKey,
    org: &str,
    meta: LogMeta,
    blob: &[u8],
    tally: &mut Tally,
) -> Result<()> {
    let problem = |tally: &mut Tally, what: String| {
        tally.add("log batches refused");
        tally
            .problems
            .push(format!("log batch {}: {what}", meta.batch_id));
    };
    let plain = match open_sealed(key, blob) {
        Ok(p) => p,
        Err(e) => {
            problem(tally, format!("sealed logs {e}"));
            return Ok(());
        }
    };
    let logs: Vec<Value> = match serde_json::from_slice(&plain) {
        Ok(l) => l,
        Err(e) => {
            problem(tally, format!("not a JSON array ({e})"));
            return Ok(());
        }
    };
    for l in &logs {
        if let Err(e) = crate::schema::check("log", l) {
            problem(tally, format!("a log fails the schema: {e}"));
            return Ok(());
        }
        if l["delivery_execution_id"].as_str() != Some(meta.execution_id.as_str()) {
            problem(tally, "a log names another execution than its batch".into());
            return Ok(());
        }
    }
    let central_id = central_execution_id(org, &meta.execution_id);
    let held = tx
        .conn()
        .query_row(
            "SELECT 1 FROM central_results WHERE central_id = ?1",
            [&central_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if held {
        store_logs(tx, org, &central_id, &meta.execution_id, &logs)?;
        ack_logs(tx, org, &meta.batch_id, "stored")?;
        *tally.counts.entry("logs stored").or_default() += logs.len() as u64;
    } else {
        tx.conn().execute(
            "INSERT OR IGNORE INTO waiting_logs (org_id, batch_id, execution_id, content) VALUES (?1, ?2, ?3, ?4)",
            params![org, meta.batch_id, meta.execution_id, Value::from(logs).to_string()],
        )?;
        ack_logs(tx, org, &meta.batch_id, "waiting")?;
        tally.add("log batches waiting for their result");
    }
    Ok(())
}

fn apply_center_ack(tx: &Tx<'_>, org: &str, upseq: i64, ack: &CenterAck) -> Result<()> {
    let last_upseq: i64 = tx.conn().query_row(
        "SELECT ack_upseq FROM centers WHERE org_id = ?1",
        [org],
        |r| r.get(0),
    )?;
    if upseq <= last_upseq {
        return Ok(()); // an older acknowledgement arriving late
    }
    let acked_seq = match ack.last_seq {
        Some(seq) => {
            let mut stmt = tx
                .conn()
                .prepare("SELECT id, checksum FROM export_scope WHERE org_id = ?1 AND seq = ?2")?;
            let rows: Vec<(String, String)> = stmt
                .query_map(params![org, seq], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let digest = inventory_digest(rows.iter().map(|(a, b)| (a.as_str(), b.as_str())));
            (digest == ack.inventory_sha256 && !rows.is_empty()).then_some(seq)
        }
        None => None,
    };
    tx.conn().execute(
        "UPDATE centers SET acked_seq = ?1, ack_upseq = ?2, packages_held = ?3 WHERE org_id = ?4",
        params![
            acked_seq,
            upseq,
            serde_json::to_string(&ack.packages).unwrap_or_default(),
            org
        ],
    )?;
    if let Some(seq) = ack.last_seq {
        tx.conn().execute(
            "DELETE FROM acks_out WHERE org_id = ?1 AND first_seq IS NOT NULL AND first_seq <= ?2",
            params![org, seq],
        )?;
    }
    if let Some(seq) = acked_seq {
        tx.conn().execute(
            "DELETE FROM export_scope WHERE org_id = ?1 AND seq < ?2",
            params![org, seq],
        )?;
    }
    Ok(())
}

/// Files of a results set, for reports: which parts of which sets were seen.
pub fn describe_sets(paths: &[PathBuf]) -> Vec<String> {
    let mut sets: BTreeMap<String, (u64, Vec<u64>)> = BTreeMap::new();
    for p in paths {
        if let Ok(b) = Bundle::open(p) {
            let e = sets
                .entry(b.header.set.id.clone())
                .or_insert((b.header.set.count, vec![]));
            e.1.push(b.header.set.index);
        }
    }
    sets.into_iter()
        .filter_map(|(id, (count, mut seen))| {
            seen.sort_unstable();
            seen.dedup();
            let missing: Vec<String> = (1..=count)
                .filter(|i| !seen.contains(i))
                .map(|i| i.to_string())
                .collect();
            (!missing.is_empty()).then(|| {
                format!(
                    "set {id}: part(s) {} of {count} not among these files",
                    missing.join(", ")
                )
            })
        })
        .collect()
}
