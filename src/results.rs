//! Results and delivery logs: ingest and list at the centre (sealed to central's key as
//! soon as they are stored), acknowledgements from central, and central's decrypted
//! exports (jsonl in TAO's wire shape, csv one row per variable or log).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::crypto;
use crate::entities::{empty_file_warning, for_each_split, RecordKind};
use crate::error::{Error, IoContext, Result};
use crate::progress::{Progress, Writing};
use crate::site::{Role, Site};
use crate::store::{CentralResult, HeldLogBatch, HeldResult, NewHistory, SyncStatus, Tx};
use crate::wire::{AckStatus, Acks, LogAckStatus};

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
    /// Results older than the copy held (an earlier `finishtime`): ignored.
    pub stale: Vec<Refusal>,
    /// Results finished at the same time as the copy held but with other content: the
    /// held copy is kept.
    pub conflicts: Vec<Refusal>,
    /// Things to check, such as a file without records.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl AddReport {
    /// Records read so far, whatever became of them.
    fn records(&self) -> u64 {
        self.added
            + self.replaced
            + self.unchanged
            + (self.refused.len() + self.stale.len() + self.conflicts.len()) as u64
    }
}

/// Refused records listed one per line, at most this many; the rest are summed up by reason.
pub const SHOWN_REFUSALS: usize = 10;

/// The lines that tell an operator which records were refused: one per record for the
/// first [`SHOWN_REFUSALS`], then one per file and reason for the rest, most frequent
/// first (three reasons at most, then how many records remain).
pub fn refusal_lines(refused: &[Refusal]) -> Vec<String> {
    let mut lines: Vec<String> = refused
        .iter()
        .take(SHOWN_REFUSALS)
        .map(|f| {
            format!(
                "{}: record {}: {}; it was not stored",
                f.file.display(),
                f.record,
                f.reason
            )
        })
        .collect();
    let rest = refused.get(SHOWN_REFUSALS..).unwrap_or_default();
    let mut groups: Vec<((&Path, &str), usize)> = Vec::new();
    for f in rest {
        let key = (f.file.as_path(), f.reason.as_str());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => groups.push((key, 1)),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.1));
    for ((file, reason), n) in groups.iter().take(3) {
        let same = if refused[..SHOWN_REFUSALS.min(refused.len())]
            .iter()
            .any(|f| f.reason == *reason)
        {
            "for the same reason"
        } else {
            "for this reason"
        };
        lines.push(format!(
            "{}: {n} more record(s) refused {same}: {reason}",
            file.display()
        ));
    }
    let others: usize = groups.iter().skip(3).map(|g| g.1).sum();
    if others > 0 {
        lines.push(format!(
            "{others} more record(s) refused for {} other reasons; --json lists every one",
            groups.len() - 3
        ));
    }
    lines
}

/// How a copy of an execution compares with the copy already held, by finish time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Finished later (or the held copy is unfinished, or its finish time unknown).
    Newer,
    /// Finished at the same instant.
    Same,
    /// Finished earlier, or unfinished while the held copy is finished.
    Older,
}

/// Compare a copy's `finishtime` with the held copy's. `Err` when the copy's finishtime is
/// present but not a TAO microtime. A held copy without a readable finish time (unfinished,
/// or ingested before courier kept it) is replaced by any other content.
pub fn freshness(held: Option<&str>, copy: Option<&str>) -> std::result::Result<Freshness, String> {
    let parse = |t: &str| {
        crate::time::Microtime::parse(t).ok_or_else(|| {
            format!(
                "finishtime {:?} is not a TAO microtime (\"0.FRACTION SECONDS\")",
                t.chars().take(60).collect::<String>()
            )
        })
    };
    let copy = match copy.filter(|t| !t.is_empty()) {
        Some(t) => Some(parse(t)?),
        None => None,
    };
    let Some(held) = held
        .filter(|t| !t.is_empty())
        .and_then(crate::time::Microtime::parse)
    else {
        return Ok(Freshness::Newer);
    };
    Ok(match copy {
        None => Freshness::Older,
        Some(c) if c > held => Freshness::Newer,
        Some(c) if c == held => Freshness::Same,
        Some(_) => Freshness::Older,
    })
}

/// Central's certificate as pinned at a centre; refused once its key was revoked here
/// (`keys revoke-peer`) until the centre enrolls again.
pub fn central_cert(tx: &Tx<'_>, site: &Site) -> Result<crate::crypto::Cert> {
    if let Some(central) = tx.peer_by_role("central")? {
        return crypto::parse_cert(central.cert.as_bytes());
    }
    Err(match tx.revoked_central()? {
        Some((fingerprint, r)) => Error::CentralRevoked {
            fingerprint,
            at: r.at,
            reason: r.reason,
        },
        None => Error::NotEnrolled {
            site: site.describe(),
        },
    })
}

thread_local! {
    /// One zstd context per thread, reused for every record sealed: a fresh context per
    /// result or log batch is megabytes of memory zeroed each time (issue 14's profile).
    static SEAL_ZSTD: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Compress then seal to central: what the centre keeps of a result or a log batch.
pub fn seal_for_central(cert: &crate::crypto::Cert, plain: &[u8]) -> Result<Vec<u8>> {
    let compressed = SEAL_ZSTD.with(|c| {
        let mut c = c.borrow_mut();
        let z = match c.as_mut() {
            Some(z) => z,
            None => c.insert(zstd::bulk::Compressor::new(3)?),
        };
        z.compress(plain)
    });
    crypto::seal(
        cert,
        &compressed.map_err(|e| Error::Internal(e.to_string()))?,
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Centre: ingest results (TAO's wire shape). Good records are stored, bad ones reported.
pub fn add_results(site: &Site, files: &[PathBuf]) -> Result<AddReport> {
    site.require(Role::Center)?;
    let mut store = site.store()?;
    let tx = store.begin()?;
    let cert = central_cert(&tx, site)?;
    let mut report = AddReport::default();
    let mut warnings = Vec::new();
    let p = site.progress();
    p.files(files.len() as u64);
    let limits = site.config.settings.limits;
    for file in files {
        let before = report.records();
        read_ahead(
            RESULTS_AHEAD,
            |hand| {
                for_each_split(file, &limits, p, |at, split| {
                    hand(prepare_result(file, at, split)?)
                })
            },
            |prepared| add_result(&tx, &cert, file, prepared, &mut report),
        )?;
        if report.records() == before {
            warnings.push(empty_file_warning(
                file,
                "results (delivery executions with their variables)",
            ));
        }
    }
    report.warnings = warnings;
    tx.add_history(NewHistory {
        action: "results-add",
        org_id: site.config.org_id.as_deref(),
        status: if report.refused.is_empty() { "success" } else { "partial" },
        counts: json!({"added": report.added, "replaced": report.replaced, "unchanged": report.unchanged,
            "refused": report.refused.len(), "stale": report.stale.len(), "conflicts": report.conflicts.len()}),
        report: format!(
            "{}: {} result(s) added, {} replaced, {} unchanged, {} refused, {} stale, {} conflict(s)",
            crate::fs::files_named(files),
            report.added,
            report.replaced,
            report.unchanged,
            report.refused.len(),
            report.stale.len(),
            report.conflicts.len()
        ),
        ..Default::default()
    })?;
    tx.commit()?;
    Ok(report)
}

/// The fields of an incoming result that are stored beside its sealed copy.
struct IncomingResult {
    exec: String,
    delivery: String,
    taker: String,
    state: String,
    finishtime: Option<String>,
}

/// Results read ahead of the store writer in `results add`: a bound on the records held
/// (each within `limits.record_bytes`, with its sealed copy).
const RESULTS_AHEAD: usize = 4;

/// Items produced on a thread of their own (`produce` hands each over) and consumed on the
/// calling thread in the order produced, through a channel holding at most `depth`: the
/// reading, parsing and sealing on one core, the store writes (one transaction) on the
/// other. The first error of either side ends both: a producer's error comes after the
/// items before it, so the consumer meets errors in input order; when the consumer stops
/// first, the producer's next hand-over fails and its own error is dropped.
pub(crate) fn read_ahead<T: Send>(
    depth: usize,
    produce: impl FnOnce(&mut dyn FnMut(T) -> Result<()>) -> Result<()> + Send,
    mut consume: impl FnMut(T) -> Result<()>,
) -> Result<()> {
    std::thread::scope(|s| {
        let (send, items) = std::sync::mpsc::sync_channel::<Result<T>>(depth);
        s.spawn(move || {
            let mut hand = |item: T| {
                send.send(Ok(item))
                    .map_err(|_| Error::Internal("the store writer stopped".into()))
            };
            if let Err(e) = produce(&mut hand) {
                // Nobody listens when the consumer stopped first: its error is the one told.
                let _ = send.send(Err(e));
            }
        });
        for item in items {
            consume(item?)?;
        }
        Ok(())
    })
}

/// A result record as the reader thread of `results add` leaves it: refused with a reason,
/// or checked (all but what needs the store), in its canonical form and hashed.
struct Prepared {
    location: String,
    checked: std::result::Result<Checked, String>,
}

/// A result that passed the checks made without the store, ready to be stored.
struct Checked {
    r: IncomingResult,
    sha: String,
    /// The canonical form (serde_json's compact text of the record read as a `Value`): what
    /// is hashed, and sealed to central when stored.
    plain: Vec<u8>,
}

/// The work on one result record that needs no store: schema, execution filed under,
/// finish time, then its canonical form and hash. A record is first read with the typed
/// reader and written in canonical form straight from its text; anything that reader does
/// not take as it is (a refusal, a member named twice) is read again as a `Value`, for the
/// same canonical bytes and the schema's own messages.
fn prepare_result(
    file: &Path,
    at: crate::entities::RecordAt<'_>,
    split: crate::limits::Split,
) -> Result<Prepared> {
    let typed = match &split {
        crate::limits::Split::Record(text) => typed_result(at.key, text),
        _ => None,
    };
    let checked = match typed {
        Some(c) => Ok(c),
        None => {
            let parsed = crate::limits::parse_split(split);
            if let Ok(v) = &parsed {
                RecordKind::expect(RecordKind::Result, file, at.location, v)?;
            }
            match parsed.and_then(|v| check_result(at.key, v)) {
                Ok((v, r)) => {
                    let plain = serde_json::to_vec(&v).map_err(Error::Encode)?;
                    Ok(Checked {
                        r,
                        sha: sha256_hex(&plain),
                        plain,
                    })
                }
                Err(e) => Err(e),
            }
        }
    };
    Ok(Prepared {
        location: at.location.to_string(),
        checked,
    })
}

/// A result record read the fast way, when nothing in it needs a message: `None` sends it
/// the `Value` way.
fn typed_result(key: Option<&str>, text: &[u8]) -> Option<Checked> {
    let h = crate::schema::result::read_head(text)?;
    if key.is_some_and(|k| k != h.execution_id)
        || h.finishtime
            .as_deref()
            .is_some_and(|t| crate::time::Microtime::parse(t).is_none())
    {
        return None;
    }
    let mut plain = Vec::with_capacity(text.len());
    crate::schema::compact::write(text, &mut plain)?;
    Some(Checked {
        sha: sha256_hex(&plain),
        plain,
        r: IncomingResult {
            exec: h.execution_id,
            delivery: h.delivery_id,
            taker: h.test_taker,
            state: h.state,
            finishtime: h.finishtime,
        },
    })
}

/// One result record of `results add`, prepared by the reader thread: checked against the
/// store, then sealed to central and stored (added or replaced), counted as unchanged, or
/// reported (refused, stale, conflicting).
fn add_result(
    tx: &Tx<'_>,
    cert: &crate::crypto::Cert,
    file: &Path,
    p: Prepared,
    report: &mut AddReport,
) -> Result<()> {
    let refusal = |reason: String| Refusal {
        file: file.to_path_buf(),
        record: p.location.clone(),
        reason,
    };
    let c = match p.checked {
        Ok(c) => match held_here(tx, &c.r)? {
            None => c,
            Some(e) => {
                report.refused.push(refusal(e));
                return Ok(());
            }
        },
        Err(e) => {
            report.refused.push(refusal(e));
            return Ok(());
        }
    };
    let old = tx.result_version(&c.r.exec)?;
    if old.as_ref().is_some_and(|(_, s, _)| *s != c.sha)
        && !newer_than_held(tx, &c.r, refusal, report)?
    {
        return Ok(());
    }
    let Some((revision, sync)) = next_revision(old.as_ref(), &c.sha, report) else {
        return Ok(());
    };
    let r = c.r;
    tx.put_result(
        &HeldResult {
            execution_id: r.exec,
            delivery_id: r.delivery,
            test_taker: r.taker,
            state: r.state,
            revision,
            content_sha256: c.sha,
            size: c.plain.len() as i64,
            sync_status: sync,
            reason: None,
            finishtime: r.finishtime,
        },
        &seal_for_central(cert, &c.plain)?,
    )
}

/// A copy with other content than the one held replaces it only when it finished later: an
/// older copy never replaces a newer one (issue 7). Otherwise it is reported (stale,
/// conflicting, or refused when the finish times cannot be compared) and `false` returned.
fn newer_than_held(
    tx: &Tx<'_>,
    r: &IncomingResult,
    refusal: impl Fn(String) -> Refusal,
    report: &mut AddReport,
) -> Result<bool> {
    let held = tx.result_finishtime(&r.exec)?;
    let note = |what: &str| {
        refusal(format!(
            "{}: {what} (held copy finished {}, this one {}); the held copy is kept",
            r.exec,
            describe_time(held.as_deref()),
            describe_time(r.finishtime.as_deref())
        ))
    };
    match freshness(held.as_deref(), r.finishtime.as_deref()) {
        Ok(Freshness::Newer) => return Ok(true),
        Ok(Freshness::Same) => report
            .conflicts
            .push(note("same finish time as the copy held, other content")),
        Ok(Freshness::Older) => report.stale.push(note("older than the copy held")),
        Err(e) => report.refused.push(refusal(e)),
    }
    Ok(false)
}

/// Checks a parsed result without the store: its schema, the execution it is filed under,
/// its finish time. `Err(reason)` refuses it.
fn check_result(
    key: Option<&str>,
    v: Value,
) -> std::result::Result<(Value, IncomingResult), String> {
    crate::schema::check("result", &v)?;
    crate::tao::filed_under(key, &v["deliveryExecutionId"])?;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let r = IncomingResult {
        exec: text(&v["deliveryExecutionId"]),
        delivery: text(&v["deliveryId"]),
        taker: text(&v["details"]["test-taker"]),
        state: text(&v["details"]["state"]),
        finishtime: v["details"]["finishtime"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(String::from),
    };
    if let Some(t) = &r.finishtime {
        if crate::time::Microtime::parse(t).is_none() {
            return Err(format!(
                "finishtime {:?} is not a TAO microtime (\"0.FRACTION SECONDS\")",
                t.chars().take(60).collect::<String>()
            ));
        }
    }
    Ok((v, r))
}

/// The reason to refuse a result whose delivery or test taker this centre does not hold.
fn held_here(tx: &Tx<'_>, r: &IncomingResult) -> Result<Option<String>> {
    if !tx.holds(&r.delivery, "delivery")? {
        return Ok(Some(format!(
            "delivery {} is not held by this centre",
            r.delivery
        )));
    }
    if !tx.holds(&r.taker, "test-taker")? {
        return Ok(Some(format!(
            "test taker {} is not held by this centre",
            r.taker
        )));
    }
    Ok(None)
}

/// The revision and sync status a result is stored with, counted in the report as added or
/// replaced; `None` (counted as unchanged) when the copy held has the same content.
fn next_revision(
    old: Option<&(i64, String, SyncStatus)>,
    sha: &str,
    report: &mut AddReport,
) -> Option<(i64, SyncStatus)> {
    match old {
        Some((_, s, _)) if s == sha => {
            report.unchanged += 1;
            None
        }
        Some((rev, _, st)) => {
            report.replaced += 1;
            let sync = if *st == SyncStatus::Pending {
                SyncStatus::Pending
            } else {
                SyncStatus::ToBeResynced
            };
            Some((rev + 1, sync))
        }
        None => {
            report.added += 1;
            Some((1, SyncStatus::Pending))
        }
    }
}

/// A finish time for a report: the microtime as written, or "unfinished/unknown".
fn describe_time(t: Option<&str>) -> String {
    match t {
        Some(t) if !t.is_empty() => format!("{t:?}"),
        _ => "at an unknown time".into(),
    }
}

/// Bytes of log text held before the largest batch is sealed and stored: `logs add` streams
/// its files and holds at most this much (plus one record), whatever their size.
const LOG_BATCH_BYTES: usize = 4 << 20;

/// Logs of one execution waiting to be sealed: their ids and the JSON array being built.
#[derive(Default)]
struct PendingBatch {
    ids: Vec<String>,
    json: Vec<u8>,
}

/// Centre: ingest delivery logs, streamed. Logs are sealed in batches per execution; a
/// batch is sealed when it reaches `limits.logs_per_batch` logs or when the logs held reach
/// [`LOG_BATCH_BYTES`], so one invocation may write several batches for one execution.
pub fn add_logs(site: &Site, files: &[PathBuf]) -> Result<AddReport> {
    site.require(Role::Center)?;
    let limits = site.config.settings.limits;
    let mut store = site.store()?;
    let tx = store.begin()?;
    let cert = central_cert(&tx, site)?;
    let mut report = AddReport::default();
    let mut batches = LogBatches {
        tx: &tx,
        cert: &cert,
        per_batch: limits.logs_per_batch.max(1) as usize,
        pending: BTreeMap::new(),
        pending_ids: Default::default(),
        held: 0,
    };
    let mut warnings = Vec::new();
    let p = site.progress();
    p.files(files.len() as u64);
    for file in files {
        let before = report.records();
        for_each_split(file, &limits, p, |at, split| {
            add_log(file, at, split, &mut batches, &mut report)
        })?;
        if report.records() == before {
            warnings.push(empty_file_warning(
                file,
                "delivery logs (rows of TAO's delivery_log table)",
            ));
        }
    }
    report.warnings = warnings;
    batches.seal_all()?;
    tx.add_history(NewHistory {
        action: "logs-add",
        org_id: site.config.org_id.as_deref(),
        status: if report.refused.is_empty() { "success" } else { "partial" },
        counts: json!({"added": report.added, "unchanged": report.unchanged, "refused": report.refused.len()}),
        report: format!(
            "{}: {} log(s) added, {} unchanged, {} refused",
            crate::fs::files_named(files),
            report.added,
            report.unchanged,
            report.refused.len()
        ),
        ..Default::default()
    })?;
    tx.commit()?;
    Ok(report)
}

/// One log record of `logs add`: checked, then held for sealing, counted as unchanged (a
/// log already stored or held), or refused. Read with the typed check and written in
/// canonical form straight from its text; anything that check does not take as it is goes
/// the `Value` way, for the same bytes and the schema's messages.
fn add_log(
    file: &Path,
    at: crate::entities::RecordAt<'_>,
    split: crate::limits::Split,
    batches: &mut LogBatches<'_, '_>,
    report: &mut AddReport,
) -> Result<()> {
    let typed = match &split {
        crate::limits::Split::Record(text) => typed_log(at.key, text),
        _ => None,
    };
    let (exec, id, json) = match typed {
        Some(t) => t,
        None => {
            let parsed = crate::limits::parse_split(split);
            if let Ok(v) = &parsed {
                RecordKind::expect(RecordKind::Log, file, at.location, v)?;
            }
            let v = match parsed.and_then(|v| {
                crate::schema::check("log", &v)?;
                crate::tao::filed_under(at.key, &v["delivery_execution_id"])?;
                Ok(v)
            }) {
                Ok(v) => v,
                Err(reason) => {
                    report.refused.push(Refusal {
                        file: file.to_path_buf(),
                        record: at.location.to_string(),
                        reason,
                    });
                    return Ok(());
                }
            };
            let id = match &v["id"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let exec = v["delivery_execution_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (exec, id, serde_json::to_vec(&v).map_err(Error::Encode)?)
        }
    };
    // Logs already sealed (earlier, or earlier in this run) are in the store.
    if batches.pending_ids.contains(&id) || batches.tx.log_known(&id)? {
        report.unchanged += 1;
        return Ok(());
    }
    batches.hold(exec, id, &json)?;
    report.added += 1;
    Ok(())
}

/// A log record read the fast way, when nothing in it needs a message: its execution, id and
/// canonical form; `None` sends it the `Value` way.
fn typed_log(key: Option<&str>, text: &[u8]) -> Option<(String, String, Vec<u8>)> {
    let h = crate::schema::log::read(text)?;
    if key.is_some_and(|k| k != h.execution_id) {
        return None;
    }
    let mut json = Vec::with_capacity(text.len());
    crate::schema::compact::write(text, &mut json)?;
    Some((h.execution_id, h.id, json))
}

/// Logs held until sealed, per execution, with the ids and bytes held.
struct LogBatches<'t, 'c> {
    tx: &'t Tx<'t>,
    cert: &'c crate::crypto::Cert,
    per_batch: usize,
    pending: BTreeMap<String, PendingBatch>,
    pending_ids: std::collections::HashSet<String>,
    held: usize,
}

impl LogBatches<'_, '_> {
    /// Holds a log of `exec` (its canonical text); seals the execution's batch once it is full, then the largest
    /// batches while the logs held exceed [`LOG_BATCH_BYTES`].
    fn hold(&mut self, exec: String, id: String, json: &[u8]) -> Result<()> {
        let b = self.pending.entry(exec.clone()).or_default();
        let start = b.json.len();
        b.json.push(if b.ids.is_empty() { b'[' } else { b',' });
        b.json.extend_from_slice(json);
        self.held += b.json.len() - start;
        self.pending_ids.insert(id.clone());
        b.ids.push(id);
        if b.ids.len() >= self.per_batch {
            self.seal(exec)?;
        }
        while self.held > LOG_BATCH_BYTES {
            let largest = self
                .pending
                .iter()
                .max_by_key(|(_, b)| b.json.len())
                .map(|(e, _)| e.clone())
                .expect("logs are held");
            self.seal(largest)?;
        }
        Ok(())
    }

    /// Seals and stores the batch held for `exec`.
    fn seal(&mut self, exec: String) -> Result<()> {
        let b = self.pending.remove(&exec).expect("a batch is held");
        self.held -= b.json.len();
        b.ids.iter().for_each(|i| {
            self.pending_ids.remove(i);
        });
        seal_log_batch(self.tx, self.cert, exec, b)
    }

    /// Seals and stores every batch still held.
    fn seal_all(&mut self) -> Result<()> {
        for (exec, b) in std::mem::take(&mut self.pending) {
            seal_log_batch(self.tx, self.cert, exec, b)?;
        }
        Ok(())
    }
}

/// Closes a batch's JSON array, seals it to central and stores it with its logs' ids.
fn seal_log_batch(
    tx: &Tx<'_>,
    cert: &crate::crypto::Cert,
    exec: String,
    b: PendingBatch,
) -> Result<()> {
    let mut plain = b.json;
    plain.push(b']');
    let sealed = seal_for_central(cert, &plain)?;
    let batch = HeldLogBatch {
        batch_id: crate::bundle::new_id(),
        execution_id: exec,
        count: b.ids.len() as i64,
        size: plain.len() as i64,
    };
    tx.add_log_batch(&batch, &sealed, &b.ids)
}

/// One row of `results list`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultRow {
    pub delivery_execution_id: String,
    pub delivery_id: String,
    pub test_taker: String,
    pub state: String,
    pub sync_status: SyncStatus,
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
    Ok(tx
        .held_results()?
        .into_iter()
        .map(|r| ResultRow {
            delivery_execution_id: r.execution_id,
            delivery_id: r.delivery_id,
            test_taker: r.test_taker,
            state: r.state,
            sync_status: r.sync_status,
            revision: r.revision,
            size: r.size,
            reason: r.reason,
        })
        .collect())
}

/// Centre: apply central's acknowledgements. Returns (results, log batches) acknowledged.
pub fn apply_acks(site: &Site, tx: &Tx<'_>, acks: &Acks) -> Result<(u64, u64)> {
    let delete = site.config.settings.delete_after_ack;
    let mut n_results = 0;
    for a in &acks.results {
        let Some((rev, sha, _)) = tx.result_version(&a.execution_id)? else {
            continue;
        };
        if rev != a.revision || sha != a.content_sha256 {
            continue; // about an older copy: the current one is still owed an answer
        }
        match a.status {
            AckStatus::Stored | AckStatus::Unchanged | AckStatus::Replaced => {
                tx.mark_result_synchronized(&a.execution_id, delete)?
            }
            AckStatus::Conflict => tx.mark_result_conflict(
                &a.execution_id,
                a.reason.as_deref().unwrap_or("conflict at central"),
            )?,
            AckStatus::Stale => tx.mark_result_kept(
                &a.execution_id,
                SyncStatus::Stale,
                a.reason
                    .as_deref()
                    .unwrap_or("central holds a copy finished later"),
            )?,
            AckStatus::OutOfScope => tx.mark_result_kept(
                &a.execution_id,
                SyncStatus::OutOfScope,
                a.reason
                    .as_deref()
                    .unwrap_or("not in this centre's scope at central"),
            )?,
        }
        n_results += 1;
    }
    let mut n_logs = 0;
    for l in &acks.logs {
        n_logs += u64::from(match l.status {
            LogAckStatus::Stored => tx.mark_log_batch_synchronized(&l.batch_id, delete)?,
            LogAckStatus::KeptAside => tx.mark_log_batch_kept_aside(&l.batch_id)?,
            LogAckStatus::Waiting => false,
        });
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
fn write_output(
    out: &Path,
    progress: &dyn Progress,
    fill: impl FnOnce(&mut dyn Write) -> Result<u64>,
) -> Result<u64> {
    let tmp = crate::fs::temp_beside(out)?;
    crate::failpoint::hit("part.write")?;
    progress.file(out, None);
    let n = {
        let mut w = std::io::BufWriter::new(Writing::new(tmp.as_file(), progress));
        let n = fill(&mut w)?;
        w.flush().at(out)?;
        n
    };
    crate::failpoint::hit("part.fsync")?;
    tmp.as_file().sync_all().at(out)?;
    crate::failpoint::hit("part.rename")?;
    tmp.persist(out).map_err(|e| Error::io(out, e.error))?;
    Ok(n)
}

/// The warning after an export of results or logs (`what`) that wrote none.
pub fn nothing_exported_warning(out: &Path, what: &str) -> String {
    format!(
        "{}: central holds no {what} yet, so the file is empty; import the centres' results bundles first ('courier import DIR'), then export again",
        out.display()
    )
}

/// Central: write every stored result, decrypted (results are stored decrypted at central).
/// jsonl rows are TAO's wire shape with central's execution id, plus `centerExecutionId`
/// and `orgId` (schemas/result-export.schema.json); csv has one row per variable.
pub fn export_results(site: &Site, format: Format, out: &Path) -> Result<u64> {
    site.require(Role::Central)?;
    let mut store = site.store()?;
    let tx = store.read()?;
    let p = site.progress();
    write_output(out, p, |w| match format {
        Format::Jsonl => results_as_jsonl(&tx, p, out, w),
        Format::Csv => results_as_csv(&tx, p, out, w),
    })
}

/// Results as JSON Lines, one result a line; returns how many.
fn results_as_jsonl(tx: &Tx<'_>, p: &dyn Progress, out: &Path, w: &mut dyn Write) -> Result<u64> {
    tx.for_each_central_result(&mut |r, variables| {
        p.advance(1, 0);
        let row = json!({
            "deliveryId": r.delivery_id,
            "deliveryExecutionId": r.central_id,
            "details": r.details,
            "variables": variables,
            "centerExecutionId": r.execution_id,
            "orgId": r.org_id,
        });
        serde_json::to_writer(&mut *w, &row).map_err(|e| Error::io(out, e.into()))?;
        w.write_all(b"\n").at(out)
    })
}

/// The columns of the csv export of results ([`result_csv_row`]).
const RESULT_CSV_COLUMNS: [&str; 19] = [
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
];

/// Results as csv, one row per variable; returns how many results.
fn results_as_csv(tx: &Tx<'_>, p: &dyn Progress, out: &Path, w: &mut dyn Write) -> Result<u64> {
    let mut c = csv::Writer::from_writer(w);
    c.write_record(RESULT_CSV_COLUMNS)
        .map_err(|e| csv_err(out, e))?;
    let n = tx.for_each_central_result(&mut |r, variables| {
        p.advance(1, 0);
        for (i, v) in variables.iter().enumerate() {
            c.write_record(result_csv_row(&r, i, v))
                .map_err(|e| csv_err(out, e))?;
        }
        Ok(())
    })?;
    c.flush().at(out)?;
    Ok(n)
}

/// Variable `i` of result `r` as a csv row, in the order of [`RESULT_CSV_COLUMNS`]; the
/// value is the candidate's response, else the variable's value, else its trace.
fn result_csv_row(r: &CentralResult, i: usize, v: &Value) -> [String; 19] {
    let d = &v["data"];
    let value = ["candidateResponse", "value", "trace"]
        .iter()
        .find_map(|k| d.get(*k))
        .map(scalar)
        .unwrap_or_default();
    [
        r.central_id.clone(),
        r.execution_id.clone(),
        r.org_id.clone(),
        r.delivery_id.clone(),
        r.test_taker.clone(),
        r.state.clone(),
        i.to_string(),
        scalar(&v["callIdTest"]),
        scalar(&v["callIdItem"]),
        scalar(&v["test"]),
        scalar(&v["item"]),
        scalar(&d["type"]),
        scalar(&d["identifier"]),
        scalar(&d["cardinality"]),
        scalar(&d["baseType"]),
        scalar(&d["epoch"]),
        value,
        scalar(&d["correctResponse"]),
        v.to_string(),
    ]
}

/// Central: write every stored delivery log (schemas/log-export.schema.json for jsonl).
pub fn export_logs(site: &Site, format: Format, out: &Path) -> Result<u64> {
    site.require(Role::Central)?;
    let mut store = site.store()?;
    let tx = store.read()?;
    let p = site.progress();
    write_output(out, p, |w| match format {
        Format::Csv => {
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
            .map_err(|e| csv_err(out, e))?;
            let n = tx.for_each_central_log(&mut |org, central_id, exec, v| {
                p.advance(1, 0);
                c.write_record([
                    &scalar(&v["id"]),
                    central_id,
                    exec,
                    org,
                    &scalar(&v["event_id"]),
                    &v["data"].to_string(),
                    &scalar(&v["created_at"]),
                    &scalar(&v["created_by"]),
                ])
                .map_err(|e| csv_err(out, e))
            })?;
            c.flush().at(out)?;
            Ok(n)
        }
        Format::Jsonl => tx.for_each_central_log(&mut |org, central_id, exec, mut v| {
            p.advance(1, 0);
            v["delivery_execution_id"] = Value::String(central_id.to_string());
            v["centerExecutionId"] = Value::String(exec.to_string());
            v["orgId"] = Value::String(org.to_string());
            serde_json::to_writer(&mut *w, &v).map_err(|e| Error::io(out, e.into()))?;
            w.write_all(b"\n").at(out)
        }),
    })
}

/// The `sync_params` of the request bodies courier writes for a TAO central: the
/// organisation each body speaks for is added per body.
#[derive(Debug, Clone)]
pub struct SyncParams {
    /// The TAO version the bodies claim; TAO central refuses a body without a version it
    /// supports (`SyncParamsValidator`).
    pub tao_version: String,
    /// Records per request body (`--chunk`); `None` keeps courier's defaults
    /// ([`TAO_RESULTS_PER_BODY`], [`TAO_LOGS_PER_BODY`]). TAO's own client makes this its
    /// `chunkSize` option (10 results, 200 log rows by default).
    pub per_body: Option<usize>,
}

impl SyncParams {
    /// Records per body: the chosen size, else `default`; never 0.
    fn per_body(&self, default: usize) -> usize {
        self.per_body.unwrap_or(default).max(1)
    }

    fn write(&self, w: &mut dyn Write, org: &str) -> std::io::Result<()> {
        w.write_all(b"},\"sync_params\":")?;
        crate::tao::write_php_json(
            w,
            &json!({"organisation_id": org, "tao_version": self.tao_version}),
        )?;
        w.write_all(b"}\n")
    }
}

/// Results per request body in `--format tao` (TAO's own client sends 10 at a time; its
/// central takes any number).
const TAO_RESULTS_PER_BODY: usize = 100;
/// Delivery logs per request body in `--format tao` (TAO's client: 200 rows per chunk).
const TAO_LOGS_PER_BODY: usize = 200;

/// One request body being written: its organisation and how many records it holds.
#[derive(Default)]
struct OpenBody {
    org: Option<String>,
    records: usize,
}

impl OpenBody {
    /// Whether a record of `org` needs a new body.
    fn opens(&self, org: &str, per_body: usize) -> bool {
        self.org.as_deref() != Some(org) || self.records >= per_body
    }

    /// Before a record of `org`: close the body if it is another organisation's or full,
    /// open one (`{"<member>":{`) if none is. Returns whether a body was opened.
    fn before(
        &mut self,
        w: &mut dyn Write,
        org: &str,
        member: &str,
        per_body: usize,
        params: &SyncParams,
    ) -> std::io::Result<bool> {
        if self.opens(org, per_body) {
            self.close(w, params)?;
            write!(w, "{{\"{member}\":{{")?;
            self.org = Some(org.to_string());
            self.records = 0;
            return Ok(true);
        }
        Ok(false)
    }

    /// Close the body being written, if any.
    fn close(&mut self, w: &mut dyn Write, params: &SyncParams) -> std::io::Result<()> {
        if let Some(org) = self.org.take() {
            params.write(w, &org)?;
        }
        Ok(())
    }
}

/// Central: write every stored result as the request bodies TAO's central sync API
/// receives (`POST /taoSync/ResultApi/syncResults`), one body per line and per
/// organisation (at most [`TAO_RESULTS_PER_BODY`] results each), in PHP's JSON text:
/// `{"results": {"<centre's execution id>": result, ...}, "sync_params": {...}}`, each
/// result with the centre's execution id, its details and variables as the centre sent
/// them (schemas/results-request-body.schema.json).
pub fn export_results_tao(site: &Site, out: &Path, params: &SyncParams) -> Result<u64> {
    site.require(Role::Central)?;
    let mut store = site.store()?;
    let tx = store.read()?;
    let p = site.progress();
    write_output(out, p, |w| {
        let mut body = OpenBody::default();
        let per_body = params.per_body(TAO_RESULTS_PER_BODY);
        let n = tx.for_each_central_result(&mut |r, variables| {
            let php = |w: &mut dyn Write, v: &Value| crate::tao::write_php_json(w, v);
            let first = body.before(w, &r.org_id, "results", per_body, params);
            if !first.at(out)? {
                w.write_all(b",").at(out)?;
            }
            body.records += 1;
            crate::tao::write_php_string(w, &r.execution_id).at(out)?;
            w.write_all(b":{\"deliveryId\":").at(out)?;
            php(w, &Value::String(r.delivery_id)).at(out)?;
            w.write_all(b",\"deliveryExecutionId\":").at(out)?;
            php(w, &Value::String(r.execution_id)).at(out)?;
            w.write_all(b",\"details\":").at(out)?;
            php(w, &r.details).at(out)?;
            w.write_all(b",\"variables\":[").at(out)?;
            for (i, v) in variables.iter().enumerate() {
                if i > 0 {
                    w.write_all(b",").at(out)?;
                }
                php(w, v).at(out)?;
            }
            w.write_all(b"]}").at(out)
        })?;
        body.close(w, params).at(out)?;
        Ok(n)
    })
}

/// Central: write every stored delivery log as the request bodies TAO's central sync API
/// receives (`POST /taoSync/ResultApi/syncDeliveryLogs`), one body per line and per
/// organisation (at most [`TAO_LOGS_PER_BODY`] logs each), in PHP's JSON text:
/// `{"delivery_logs": {"<centre's execution id>": [log, ...], ...}, "sync_params": {...}}`,
/// each log as the centre sent it (schemas/logs-request-body.schema.json).
pub fn export_logs_tao(site: &Site, out: &Path, params: &SyncParams) -> Result<u64> {
    site.require(Role::Central)?;
    let mut store = site.store()?;
    let tx = store.read()?;
    let p = site.progress();
    write_output(out, p, |w| {
        let mut body = OpenBody::default();
        let mut group: Option<String> = None;
        let per_body = params.per_body(TAO_LOGS_PER_BODY);
        let n = tx.for_each_central_log(&mut |org, _central_id, exec, v| {
            if body.opens(org, per_body) && group.take().is_some() {
                w.write_all(b"]").at(out)?;
            }
            body.before(w, org, "delivery_logs", per_body, params)
                .at(out)?;
            body.records += 1;
            if group.as_deref() == Some(exec) {
                w.write_all(b",").at(out)?;
            } else {
                if group.is_some() {
                    w.write_all(b"],").at(out)?;
                }
                crate::tao::write_php_string(w, exec).at(out)?;
                w.write_all(b":[").at(out)?;
                group = Some(exec.to_string());
            }
            crate::tao::write_php_json(w, &v).at(out)
        })?;
        if group.is_some() {
            w.write_all(b"]").at(out)?;
        }
        body.close(w, params).at(out)?;
        Ok(n)
    })
}

fn csv_err(out: &Path, e: csv::Error) -> Error {
    Error::io(out, e.into())
}

/// A JSON value as a CSV cell: strings bare, null empty, the rest as JSON.
fn scalar(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
