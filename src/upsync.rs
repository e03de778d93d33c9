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

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::bundle::{self, Bundle, Kind, SetRef, Spec, Written};
use crate::crypto;
use crate::crypto::Cert;
use crate::error::{Error, Result};
use crate::limits::{self, quote, Breach, Limits, MemberElements};
use crate::outcome::Outcome;
use crate::schema::result::{self as result_schema, ResultRecord};
use crate::site::{Role, Site};
use crate::store::{
    CentralResult, ItemKind, NewHistory, OwedAck, Quarantined, StoredVariable, SyncStatus, Tx,
};
use crate::wire::{
    inventory_digest, AckStatus, ExportReport, LogAck, LogAckStatus, ReceivedFiles, ResultAck,
    SentCounts,
};

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

/// A result's variables as the JSON text sealed at the centre, borrowed, not rebuilt: what
/// central stores of each variable.
#[derive(Deserialize)]
struct RawVariables<'a> {
    #[serde(borrow)]
    variables: Vec<&'a serde_json::value::RawValue>,
}

/// A result's variables as the text sealed at the centre (what central stores of each):
/// the spans the limit scan found when they are certain (one member `variables`, plainly
/// named, as many elements as parsed), else the text parsed again, which also refuses two
/// members named `variables` (JSON to serde's `Value`, where the last counts, but not one
/// list of variables to store as sent).
fn variables_as_sent(
    plain: &[u8],
    parsed: usize,
    elements: MemberElements,
) -> std::result::Result<Vec<&str>, serde_json::Error> {
    if elements.members == 1 && !elements.escaped_name && elements.spans.len() == parsed {
        let texts: Option<Vec<&str>> = (elements.spans.into_iter())
            .map(|span| std::str::from_utf8(&plain[span]).ok())
            .collect();
        if let Some(texts) = texts {
            return Ok(texts);
        }
    }
    let raw: RawVariables<'_> = serde_json::from_slice(plain)?;
    Ok(raw.variables.into_iter().map(|r| r.get()).collect())
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

impl Item {
    /// What an item costs in a file: its sealed bytes, its metadata, tar framing.
    fn new(kind: ItemKind, id: String, sealed_len: u64) -> Item {
        let meta = match kind {
            ItemKind::Result => 1024,
            ItemKind::Logs => 512,
        };
        Item {
            kind,
            id,
            cost: sealed_len + meta + ENTRY_OVERHEAD,
        }
    }
}

/// What a centre's export sends again of what it sent before and central has not
/// acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resend {
    /// Whatever central has not acknowledged once `resend_after_hours` passed since it
    /// was sent: files central is known to miss (it applied later ones), and files it has
    /// not been seen to apply at all, since the lost stick may be the centre's last one and
    /// central then cannot tell (a result sent twice is stored once).
    #[default]
    WhenDue,
    /// What central is known to miss, now (`--resend`), and what `WhenDue` sends.
    Missing,
    /// Everything not acknowledged, whatever central said (`--resend-all`).
    All,
}

fn center_ack(tx: &Tx<'_>) -> Result<CenterAck> {
    let applied = tx
        .applied_bundles(Kind::Data.as_str(), 20)?
        .into_iter()
        .map(|b| AppliedBundle {
            bundle_id: b.bundle_id,
            seq: b.seq,
        })
        .collect();
    let inventory = tx.inventory()?;
    Ok(CenterAck {
        applied,
        last_seq: tx.last_applied_seq(Kind::Data.as_str())?,
        inventory_sha256: inventory_digest(
            inventory
                .iter()
                .map(|i| (i.id.as_str(), i.checksum.as_str())),
        ),
        packages: tx.package_hashes()?,
    })
}

/// Centre: write into `out_dir` the results and log batches never sent, what central is
/// known to miss (as `resend` says), and the acknowledgement of data bundles.
pub fn export(
    site: &Site,
    out_dir: &Path,
    max_file_size: Option<u64>,
    resend: Resend,
) -> Result<ExportReport> {
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
    let central_fpr = tx
        .peer_by_role("central")?
        .expect("checked by central_cert")
        .fingerprint;
    let ack = center_ack(&tx)?;
    let ack_json = serde_json::to_string(&ack).map_err(Error::Encode)?;
    let ack_digest = hex::encode(Sha256::digest(ack_json.as_bytes()));

    let (items, sent) = items_to_send(&tx, settings, resend)?;
    if items.is_empty() && tx.meta_get("ack_sent")?.as_deref() == Some(ack_digest.as_str()) {
        return Ok(nothing_to_send(&org, sent));
    }
    let files = plan_files(
        &items,
        max,
        ack_json.len() as u64,
        settings.results_per_file,
    )?;
    let set_id = bundle::new_id();
    let set = OutgoingSet {
        site,
        key: &key,
        central: &central,
        central_fpr: &central_fpr,
        org: &org,
        ack_json: &ack_json,
        max,
        set_id: &set_id,
        count: files.len() as u64,
    };
    let mut written: Vec<Written> = Vec::new();
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for (i, file_items) in files.iter().enumerate() {
        let w = set.write_part(&tx, out_dir, i as u64 + 1, file_items)?;
        for (k, v) in &w.header.counts {
            *totals.entry(k.clone()).or_default() += v;
        }
        written.push(w);
    }
    tx.meta_set("ack_sent", &ack_digest)?;
    finish_export(tx, &org, &set_id, totals, sent, written)
}

/// The report of an export that wrote nothing, saying what waits for its grace period.
fn nothing_to_send(org: &str, sent: SentCounts) -> ExportReport {
    let mut message = format!("nothing new for central from centre {org}; no bundle written");
    if sent.held_back > 0 {
        message.push_str(&format!(
            " ({} result(s) or log batch(es) sent before are not acknowledged yet: sent again once resend_after_hours passed, or with --resend once central is known to miss them; --resend-all sends them now)",
            sent.held_back
        ));
    }
    ExportReport {
        files: vec![],
        counts: BTreeMap::new(),
        message,
        warnings: vec![],
        sent: Some(sent),
    }
}

/// What the files of one up-sync set share: the centre that signs them, central that reads
/// them, the acknowledgement each carries, the size limit, the set's id and file count.
struct OutgoingSet<'a> {
    site: &'a Site,
    key: &'a crypto::SecretKey,
    central: &'a Cert,
    central_fpr: &'a str,
    org: &'a str,
    ack_json: &'a str,
    max: u64,
    set_id: &'a str,
    count: u64,
}

impl OutgoingSet<'_> {
    /// Write part `index` of the set (the acknowledgement, then `items`) under a temporary
    /// name, refuse it when larger than the limit, and record it in `tx` as sent.
    fn write_part(
        &self,
        tx: &Tx<'_>,
        out_dir: &Path,
        index: u64,
        items: &[&Item],
    ) -> Result<Written> {
        let (org, count) = (self.org, self.count);
        let seq = tx.next_counter("up_seq")?;
        let set = SetRef {
            id: self.set_id.to_string(),
            index,
            count,
        };
        let spec = Spec {
            rollover: crate::rollover::owed(tx, "central")?,
            ..Spec::results(
                &self.site.config.fingerprint,
                self.central_fpr,
                org,
                seq as u64,
                set,
            )
        };
        let out = out_dir.join(part_file_name(org, seq as u64, index, count));
        self.site.progress().file(&out, None);
        let (w, ()) = bundle::write(&out, spec, self.key, self.central, |p| {
            p.add_bytes("ack.json", self.ack_json.as_bytes())?;
            add_items(self.site, tx, p, items)
        })?;
        let size = w.size()?;
        if size > self.max {
            return Err(Error::OutputTooLarge {
                path: out.clone(),
                size,
                max: self.max,
            });
        }
        tx.record_bundle(
            "out",
            &crate::site::bundle_record(&w.header),
            &out.to_string_lossy(),
        )?;
        for item in items {
            match item.kind {
                ItemKind::Result => tx.mark_result_sent(&item.id, seq)?,
                ItemKind::Logs => tx.mark_log_batch_sent(&item.id, seq)?,
            };
        }
        Ok(w)
    }
}

/// Record the set in the history, commit, then give the files their names.
fn finish_export(
    tx: Tx<'_>,
    org: &str,
    set_id: &str,
    totals: BTreeMap<String, u64>,
    sent: SentCounts,
    written: Vec<Written>,
) -> Result<ExportReport> {
    let names: Vec<String> = written
        .iter()
        .map(|w| crate::fs::file_name(&w.out))
        .collect();
    let what = format!(
        "{} result(s) ({} new, {} sent again), {} log(s) in {} batch(es) ({} new, {} sent again)",
        totals.get("results").unwrap_or(&0),
        sent.results_new,
        sent.results_resent,
        totals.get("logs").unwrap_or(&0),
        totals.get("log-batches").unwrap_or(&0),
        sent.log_batches_new,
        sent.log_batches_resent,
    );
    let mut counts = json!(totals);
    counts["sent"] = json!(sent);
    tx.add_history(NewHistory {
        action: "export",
        org_id: Some(org),
        bundle_id: Some(set_id),
        kind: Some(Kind::Results.as_str()),
        status: "success",
        counts,
        report: format!("{}: {what}; set {set_id}", names.join(", ")),
        ..Default::default()
    })?;
    let paths = crate::bundle::persist_then_commit(written, || tx.commit())?;
    Ok(ExportReport {
        message: format!("{} file(s) for central: {what}", paths.len()),
        files: paths,
        counts: totals,
        warnings: vec![],
        sent: Some(sent),
    })
}

/// What this export carries: results and log batches never sent (or replaced since), then
/// those sent before that `resend` says to send again; with the counts of each.
fn items_to_send(
    tx: &Tx<'_>,
    settings: &crate::site::Settings,
    resend: Resend,
) -> Result<(Vec<Item>, SentCounts)> {
    let states = &settings.status_executions_to_sync;
    let mut sent = SentCounts::default();
    let mut items: Vec<Item> = Vec::new();
    for (id, len) in tx.results_to_send(states)? {
        items.push(Item::new(ItemKind::Result, id, len));
        sent.results_new += 1;
    }
    for (id, len) in tx.log_batches_to_send(states)? {
        items.push(Item::new(ItemKind::Logs, id, len));
        sent.log_batches_new += 1;
    }
    let received = tx.central_received()?;
    let grace = i64::try_from(settings.resend_after_hours.saturating_mul(3600)).unwrap_or(i64::MAX);
    let due_before = crate::time::unix_now().saturating_sub(grace);
    for s in tx.sent_unacknowledged(states)? {
        let fate = ReceivedFiles::fate(received.as_ref(), s.sent_seq);
        let due = s
            .sent_at
            .as_deref()
            .and_then(crate::time::parse_time)
            .is_none_or(|t| t <= due_before);
        let again = match resend {
            Resend::All => true,
            Resend::Missing => fate.is_known_missing() || due,
            Resend::WhenDue => due,
        };
        if !again {
            sent.held_back += 1;
            continue;
        }
        match s.kind {
            ItemKind::Result => sent.results_resent += 1,
            ItemKind::Logs => sent.log_batches_resent += 1,
        }
        items.push(Item::new(s.kind, s.id, s.size));
    }
    Ok((items, sent))
}

/// Plan the files: greedy, in order, within the size budget (what `max` leaves beside the
/// acknowledgement of `ack_len` bytes) and `results_per_file`.
fn plan_files(
    items: &[Item],
    max: u64,
    ack_len: u64,
    results_per_file: u64,
) -> Result<Vec<Vec<&Item>>> {
    let budget = max.saturating_sub(FILE_OVERHEAD + ack_len + ENTRY_OVERHEAD) / 100 * 97;
    if budget == 0 {
        return Err(Error::Usage {
            what: format!("--max-file-size {max} leaves no room beside the acknowledgement ({ack_len} bytes); raise it"),
        });
    }
    let per_file = results_per_file.max(1);
    let mut files: Vec<Vec<&Item>> = vec![vec![]];
    let (mut used, mut results_in) = (0u64, 0u64);
    for item in items {
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
    Ok(files)
}

/// The sealed results and log batches of one file, each beside its metadata.
fn add_items(
    site: &Site,
    tx: &Tx<'_>,
    p: &mut bundle::PayloadWriter<'_>,
    items: &[&Item],
) -> Result<()> {
    for (k, item) in items.iter().enumerate() {
        match item.kind {
            ItemKind::Result => {
                let (meta, sealed) = result_for_export(tx, &item.id)?;
                p.add_json(&format!("results/{k:06}.json"), &meta)?;
                p.add_bytes(&format!("results/{k:06}.pgp"), &sealed)?;
                p.count("results", 1);
                site.progress().advance(1, sealed.len() as u64);
            }
            ItemKind::Logs => {
                let (meta, sealed) = logs_for_export(tx, &item.id)?;
                p.add_json(&format!("logs/{k:06}.json"), &meta)?;
                p.add_bytes(&format!("logs/{k:06}.pgp"), &sealed)?;
                p.count("logs", meta.count as u64);
                p.count("log-batches", 1);
                site.progress().advance(1, sealed.len() as u64);
            }
        }
    }
    Ok(())
}

fn result_for_export(tx: &Tx<'_>, id: &str) -> Result<(ResultMeta, Vec<u8>)> {
    let (r, sealed) = tx.sealed_result(id)?;
    let meta = ResultMeta {
        resync: r.revision > 1 || r.sync_status == SyncStatus::ToBeResynced,
        execution_id: r.execution_id,
        delivery_id: r.delivery_id,
        test_taker: r.test_taker,
        state: r.state,
        revision: r.revision,
        content_sha256: r.content_sha256,
        size: r.size,
    };
    Ok((meta, sealed))
}

fn logs_for_export(tx: &Tx<'_>, id: &str) -> Result<(LogMeta, Vec<u8>)> {
    let (b, sealed) = tx.sealed_log_batch(id)?;
    Ok((
        LogMeta {
            batch_id: b.batch_id,
            execution_id: b.execution_id,
            count: b.count,
            size: b.size,
        },
        sealed,
    ))
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

/// Bytes a sealed blob may have beyond its plaintext's limit (OpenPGP and zstd framing of
/// incompressible content; measured under 1 KiB for 16 MiB, kept generous).
const SEALED_OVERHEAD: u64 = 1 << 20;

thread_local! {
    /// One zstd decompression context per thread, reset for every sealed result and log
    /// batch opened, instead of a fresh one (allocated and initialised) each time.
    static OPEN_ZSTD: std::cell::RefCell<Option<zstd::zstd_safe::DCtx<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Why a sealed result or log batch could not be opened: `Err` is a one-line reason.
fn open_sealed(
    key: &crypto::SecretKey,
    blob: &[u8],
    limits: &Limits,
) -> std::result::Result<Vec<u8>, String> {
    let compressed = crypto::unseal(key, blob).map_err(|e| {
        format!(
            "cannot be decrypted with central's key ({})",
            quote(&e.to_string())
        )
    })?;
    let cap = limits.record_bytes;
    let mut out = Vec::new();
    OPEN_ZSTD
        .with(|c| {
            let mut c = c.borrow_mut();
            let dctx = match c.as_mut() {
                Some(d) => d,
                None => c.insert(zstd::zstd_safe::DCtx::create()),
            };
            let read = zstd::stream::read::Decoder::with_context(&compressed[..], dctx)
                .take(cap + 1)
                .read_to_end(&mut out);
            read
        })
        .map_err(|e| format!("is not a zstd stream ({})", quote(&e.to_string())))?;
    if out.len() as u64 > cap {
        return Err(format!(
            "decompresses to {}",
            Breach::RecordBytes { limit: cap }
        ));
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

    /// Results stored (new or replacing an older copy) and kept aside (quarantined or out
    /// of scope), for the summary of a batch.
    fn results(&self) -> crate::outcome::ResultCounts {
        let n = |k: &str| self.counts.get(k).copied().unwrap_or(0);
        crate::outcome::ResultCounts {
            stored: n("results stored") + n("results replaced"),
            kept_aside: n("quarantined") + n("results out of scope"),
        }
    }

    /// What was counted, and what was kept aside, in one line.
    fn report(&self) -> String {
        let mut report = self
            .counts
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ");
        if report.is_empty() {
            report = "acknowledgements only".into();
        }
        if !self.problems.is_empty() {
            report.push_str(&format!("; quarantined: {}", self.problems.join("; ")));
        }
        report
    }
}

/// Central: apply a verified results bundle in one transaction.
pub fn apply(site: &Site, b: &Bundle, cert: &Cert, dry_run: bool) -> Result<Outcome> {
    site.require(Role::Central)?;
    let path = &b.path;
    let h = &b.header;
    b.require_sender(Role::Center, "test centres")?;
    let org = h.org_id.clone();
    let key = site.secret_key()?;
    let mut store = site.store()?;
    let tx = store.begin()?;
    // The centre's lock first, before anything of the centre's is read: on PostgreSQL several
    // workers import at once, and two files of one centre must not both read its sequence
    // state, replay record or result versions before either commits (one would apply the
    // same file twice, or a later file on a stale state). Held until the transaction ends;
    // different centres do not wait for each other; nothing to take on SQLite.
    tx.lock_center(&org)?;
    // Checked again inside the import's transaction: a revocation made since the checks of
    // verify_file still wins.
    tx.refuse_if_revoked(path, &org)?;
    if tx.bundle_seen(&h.sender.fingerprint, &h.bundle_id)? {
        return Ok(Outcome::already());
    }
    let mut rx = Receiver {
        tx: &tx,
        org: &org,
        bundle_id: &h.bundle_id,
        limits: site.config.settings.limits,
        progress: site.progress(),
        tally: Tally::default(),
    };
    let center_ack = read_entries(b, &key, cert, &mut rx)?;
    let tally = rx.tally;
    let rolled = crate::rollover::on_import(&tx, path, h)?;
    // What a retired key's machine says it holds is not what the centre holds now.
    let current = tx.center(&org)?.and_then(|c| c.fingerprint);
    if let (Some(ack), true) = (&center_ack, current.as_ref() == Some(&h.sender.fingerprint)) {
        apply_center_ack(&tx, &org, h.sequence as i64, ack)?;
    }
    tx.record_bundle(
        "in",
        &crate::site::bundle_record(h),
        &path.to_string_lossy(),
    )?;
    let mut report = tally.report();
    if let Some(note) = rolled {
        report.push_str(&format!("; {note}"));
    }
    tx.add_history(NewHistory {
        action: "import",
        org_id: Some(&org),
        bundle_id: Some(&h.bundle_id),
        kind: Some(Kind::Results.as_str()),
        seq: Some(h.sequence as i64),
        status: if tally.problems.is_empty() {
            "success"
        } else {
            "partial"
        },
        counts: json!(tally.counts),
        report: format!(
            "{}, part {} of {}: {report}",
            crate::fs::file_name(path),
            h.set.index,
            h.set.count
        ),
    })?;
    tx.finish(dry_run)?;
    Ok(Outcome {
        already: false,
        partial: !tally.problems.is_empty(),
        results: tally.results(),
        message: format!(
            "centre {org}, part {} of {}: {report}",
            h.set.index, h.set.count
        ),
    })
}

/// Payload entries opened ahead of the store writer: a bound on the plaintexts held (each
/// within `settings.limits.record_bytes`).
const OPENED_AHEAD: usize = 4;

/// One payload entry opened by the reader thread, handed to the store writer with the
/// sealed bytes it was read from (for progress).
enum Opened {
    Ack(CenterAck),
    Result(ResultMeta, OpenResult, u64),
    Logs(LogMeta, std::result::Result<Vec<Value>, String>, u64),
}

/// The payload read, decrypted, decompressed, hashed, scanned and parsed on a thread of its
/// own, while `rx` stores what it hands over through a bounded channel, in payload order,
/// in the one transaction of the import. The first error of either side ends both (the
/// writer's first, as entries are applied in order); the centre's acknowledgement is returned.
fn read_entries(
    b: &Bundle,
    key: &crypto::SecretKey,
    cert: &Cert,
    rx: &mut Receiver<'_>,
) -> Result<Option<CenterAck>> {
    let limits = rx.limits;
    let mut ack = None;
    crate::results::read_ahead(
        OPENED_AHEAD,
        |hand| {
            let mut entries = Entries::default();
            b.read_payload(key, cert, |name, r| {
                match entries.open(key, &limits, &b.path, name, r)? {
                    Some(item) => hand(item),
                    None => Ok(()),
                }
            })
        },
        |item| {
            match item {
                Opened::Ack(a) => ack = Some(a),
                Opened::Result(meta, result, len) => {
                    rx.result(meta, result)?;
                    rx.progress.advance(1, len);
                }
                Opened::Logs(meta, logs, len) => {
                    rx.logs(meta, logs)?;
                    rx.progress.advance(1, len);
                }
            }
            Ok(())
        },
    )?;
    Ok(ack)
}

/// The payload of a results bundle, entry by entry: the centre's acknowledgement, and
/// each sealed result or log batch right after its metadata.
#[derive(Default)]
struct Entries {
    pending_result: Option<(String, ResultMeta)>,
    pending_logs: Option<(String, LogMeta)>,
}

impl Entries {
    /// One entry read and opened; `None` for metadata (kept until its sealed entry).
    fn open(
        &mut self,
        key: &crypto::SecretKey,
        lim: &Limits,
        path: &Path,
        name: &str,
        r: &mut dyn Read,
    ) -> Result<Option<Opened>> {
        let bad = |what: String| Error::bad_payload(path, format!("{what}; refused"));
        let sealed_max = lim.record_bytes + SEALED_OVERHEAD;
        if name == "ack.json" {
            let bytes = bundle::read_small(path, name, r, 16 << 20)?;
            let v = limits::parse(&bytes, lim).map_err(|e| bad(format!("ack.json: {e}")))?;
            let ack = crate::schema::read_doc(path, name, "center-ack", v)?;
            return Ok(Some(Opened::Ack(ack)));
        } else if let Some(stem) = entry_stem(name, "results/", ".json") {
            let meta = read_meta(path, name, r, lim, "result-meta")?;
            self.pending_result = Some((stem.to_string(), meta));
        } else if let Some(stem) = entry_stem(name, "results/", ".pgp") {
            let meta = follows(&mut self.pending_result, name, stem).map_err(bad)?;
            let blob = bundle::read_small(path, name, r, sealed_max)?;
            let opened = open_result(key, lim, &meta, &blob);
            return Ok(Some(Opened::Result(meta, opened, blob.len() as u64)));
        } else if let Some(stem) = entry_stem(name, "logs/", ".json") {
            let meta = read_meta(path, name, r, lim, "log-meta")?;
            self.pending_logs = Some((stem.to_string(), meta));
        } else if let Some(stem) = entry_stem(name, "logs/", ".pgp") {
            let meta = follows(&mut self.pending_logs, name, stem).map_err(bad)?;
            let blob = bundle::read_small(path, name, r, sealed_max)?;
            let logs = open_logs(key, lim, &meta, &blob);
            return Ok(Some(Opened::Logs(meta, logs, blob.len() as u64)));
        } else {
            return Err(bad(format!("unexpected payload entry {name}")));
        }
        Ok(None)
    }
}

/// `results/000001.json` → `000001` for `results/` and `.json`.
fn entry_stem<'n>(name: &'n str, folder: &str, extension: &str) -> Option<&'n str> {
    name.strip_prefix(folder)
        .and_then(|n| n.strip_suffix(extension))
}

/// The metadata of a result or log batch, within the limits, checked against its schema.
fn read_meta<T: serde::de::DeserializeOwned>(
    path: &Path,
    name: &str,
    r: &mut dyn Read,
    lim: &Limits,
    schema: &str,
) -> Result<T> {
    let bytes = bundle::read_small(path, name, r, 1 << 20)?;
    let v = limits::parse(&bytes, lim)
        .map_err(|e| Error::bad_payload(path, format!("{name}: {e}; refused")))?;
    crate::schema::read_doc(path, name, schema, v)
}

/// The metadata a sealed entry belongs to: the one read just before, of the same stem.
fn follows<T>(
    pending: &mut Option<(String, T)>,
    name: &str,
    stem: &str,
) -> std::result::Result<T, String> {
    let (want, meta) = pending
        .take()
        .ok_or_else(|| format!("{name} without its metadata"))?;
    if want != stem {
        return Err(format!("{name} does not follow its metadata"));
    }
    Ok(meta)
}

/// The answer about one result, as it travels back to the centre.
fn result_ack(meta: &ResultMeta, status: AckStatus, reason: Option<&str>) -> ResultAck {
    ResultAck {
        execution_id: meta.execution_id.clone(),
        revision: meta.revision,
        content_sha256: meta.content_sha256.clone(),
        status,
        reason: reason.map(String::from),
    }
}

/// A sealed result opened: its plaintext, what central keeps of it (or why it fails the
/// result schema), and where its variables' texts are; or why it is kept aside, with its
/// plaintext when it was read at all.
type OpenResult = std::result::Result<
    (
        Vec<u8>,
        std::result::Result<Box<ResultRecord>, String>,
        MemberElements,
    ),
    (String, Vec<u8>),
>;

/// Applies the results and log batches of one bundle from one centre.
struct Receiver<'t> {
    tx: &'t Tx<'t>,
    org: &'t str,
    bundle_id: &'t str,
    limits: Limits,
    progress: &'t dyn crate::progress::Progress,
    tally: Tally,
}

impl Receiver<'_> {
    /// Record the answer owed to the centre about one result (resent until confirmed).
    fn ack_result(&self, meta: &ResultMeta, status: AckStatus, reason: Option<&str>) -> Result<()> {
        self.tx
            .owe_ack(self.org, &OwedAck::Result(result_ack(meta, status, reason)))
    }

    /// Record the answer owed to the centre about one log batch.
    fn ack_logs(&self, batch_id: &str, status: LogAckStatus) -> Result<()> {
        self.ack_logs_with(batch_id, status, None)
    }

    fn ack_logs_with(
        &self,
        batch_id: &str,
        status: LogAckStatus,
        reason: Option<&str>,
    ) -> Result<()> {
        self.tx.owe_ack(
            self.org,
            &OwedAck::Logs(LogAck {
                batch_id: batch_id.into(),
                status,
                reason: reason.map(String::from),
            }),
        )
    }

    /// Keep a result aside with its reason, and tell the centre.
    fn quarantine(&mut self, meta: &ResultMeta, reason: &str, content: &str) -> Result<()> {
        self.quarantine_as(meta, AckStatus::Conflict, reason, content)
    }

    /// Keep a result aside, answering the centre with `status` (`conflict`, `out_of_scope`).
    /// Log batches that waited for it are kept aside with it unless central holds the
    /// execution (a first copy that was in scope).
    fn quarantine_as(
        &mut self,
        meta: &ResultMeta,
        status: AckStatus,
        reason: &str,
        content: &str,
    ) -> Result<()> {
        self.tx.quarantine(&Quarantined {
            org_id: self.org,
            execution_id: &meta.execution_id,
            revision: meta.revision,
            content_sha256: &meta.content_sha256,
            reason,
            bundle_id: self.bundle_id,
            content,
        })?;
        self.ack_result(meta, status, Some(reason))?;
        self.tally.add(if status == AckStatus::OutOfScope {
            "results out of scope"
        } else {
            "quarantined"
        });
        self.tally
            .problems
            .push(format!("{}: {reason}", quote(&meta.execution_id)));
        let central_id = central_execution_id(self.org, &meta.execution_id);
        if self.tx.central_result_version(&central_id)?.is_none() {
            let why = format!("its result was kept aside: {reason}");
            for (batch_id, logs) in self.tx.take_waiting_logs(self.org, &meta.execution_id)? {
                let text = match logs {
                    Ok(logs) => Value::from(logs).to_string(),
                    Err((text, _)) => text,
                };
                self.keep_logs_aside(&batch_id, &meta.execution_id, &why, &text)?;
            }
        }
        Ok(())
    }

    /// Keep a log batch aside with its reason, and tell the centre (which stops sending it).
    fn keep_logs_aside(
        &mut self,
        batch_id: &str,
        execution_id: &str,
        reason: &str,
        content: &str,
    ) -> Result<()> {
        self.tx.quarantine_logs(
            self.org,
            batch_id,
            execution_id,
            reason,
            Some(self.bundle_id),
            content,
        )?;
        self.ack_logs_with(batch_id, LogAckStatus::KeptAside, Some(reason))?;
        self.tally.add("log batches kept aside");
        self.tally
            .problems
            .push(format!("log batch {batch_id}: {reason}"));
        Ok(())
    }

    /// Whether a result belongs to the sender's scope: central sent this centre, in some
    /// data bundle, an eligibility naming the result's delivery with its test taker, together
    /// with that delivery and that test taker. `Some(reason)` when it does not.
    fn check_scope(&self, meta: &ResultMeta, r: &ResultRecord) -> Result<Option<String>> {
        let (delivery, taker) = (r.delivery_id.as_str(), r.test_taker());
        if meta.delivery_id != delivery || meta.test_taker != taker {
            return Ok(Some(
                "out of scope: its metadata names another delivery or test taker than its content"
                    .into(),
            ));
        }
        if self.tx.pair_sent(self.org, delivery, taker)? {
            return Ok(None);
        }
        Ok(Some(if self.tx.delivery_sent(self.org, delivery)? {
            format!(
                "out of scope: test taker {taker} was never sent to centre {} as eligible for delivery {delivery}",
                self.org
            )
        } else {
            format!(
                "out of scope: delivery {delivery} was never sent to centre {}",
                self.org
            )
        }))
    }

    /// One sealed result, opened: check, store under central's id (or keep aside).
    fn result(&mut self, meta: ResultMeta, opened: OpenResult) -> Result<()> {
        let (plain, record, elements) = match opened {
            Ok(p) => p,
            Err((reason, content)) => {
                return self.quarantine(&meta, &reason, &String::from_utf8_lossy(&content))
            }
        };
        // The content as text (borrowed when it is UTF-8), made only when kept aside.
        let text = || String::from_utf8_lossy(&plain);
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let reason = format!("fails the result schema: {e}");
                return self.quarantine(&meta, &reason, &text());
            }
        };
        if record.execution_id != meta.execution_id {
            return self.quarantine(&meta, "execution id differs from its metadata", &text());
        }
        let finishtime = record.finishtime();
        if finishtime.is_some_and(|t| crate::time::Microtime::parse(t).is_none()) {
            return self.quarantine(&meta, "finishtime is not a TAO microtime", &text());
        }
        if let Some(reason) = self.check_scope(&meta, &record)? {
            return self.quarantine_as(&meta, AckStatus::OutOfScope, &reason, &text());
        }
        let central_id = central_execution_id(self.org, &meta.execution_id);
        let held = self.tx.central_result_held(&central_id)?;
        let status = match judge_copy(held.as_ref(), &meta, finishtime) {
            Verdict::Store => AckStatus::Stored,
            Verdict::Unchanged => AckStatus::Unchanged,
            Verdict::Replace => AckStatus::Replaced,
            Verdict::Stale(reason) => {
                // An older copy arriving late (or from a second machine): the newer one
                // stands. The centre hears of it unless an answer about a newer copy is owed.
                self.tally.add("stale");
                self.tx.owe_ack_unless_owed(
                    self.org,
                    &OwedAck::Result(result_ack(&meta, AckStatus::Stale, Some(&reason))),
                )?;
                return Ok(());
            }
            Verdict::Conflict(reason) => return self.quarantine(&meta, &reason, &text()),
        };
        if status != AckStatus::Unchanged {
            let raw = match variables_as_sent(&plain, record.variables.len(), elements) {
                Ok(raw) => raw,
                Err(e) => {
                    let reason =
                        format!("variables unreadable as sent ({})", quote(&e.to_string()));
                    return self.quarantine(&meta, &reason, &text());
                }
            };
            self.store_result(&meta, &central_id, &raw, &record)?;
        }
        self.tally.add(match status {
            AckStatus::Stored => "results stored",
            AckStatus::Replaced => "results replaced",
            _ => "results unchanged",
        });
        self.ack_result(&meta, status, None)?;
        self.apply_waiting_logs(&meta, &central_id)
    }

    /// Store a result's copy under central's id, with its variables as sealed (`raw`, in the
    /// order of `r`'s).
    fn store_result(
        &mut self,
        meta: &ResultMeta,
        central_id: &str,
        raw: &[&str],
        r: &ResultRecord,
    ) -> Result<()> {
        let variables = &r.variables;
        let stored: Vec<StoredVariable<'_>> = variables
            .iter()
            .zip(raw)
            .map(|(var, text)| StoredVariable {
                call_id_test: var.call_id_test.as_deref(),
                call_id_item: var.call_id_item.as_deref(),
                test: var.test.as_deref(),
                item: var.item.as_deref(),
                json: text,
            })
            .collect();
        let result = CentralResult {
            central_id: central_id.to_string(),
            org_id: self.org.to_string(),
            execution_id: meta.execution_id.clone(),
            delivery_id: r.delivery_id.clone(),
            test_taker: r.test_taker().to_string(),
            state: r.state().to_string(),
            details: r.details.clone(),
            revision: meta.revision,
            content_sha256: meta.content_sha256.clone(),
        };
        self.tx
            .put_central_result(&result, self.bundle_id, &stored)?;
        *self.tally.counts.entry("variables").or_default() += variables.len() as u64;
        Ok(())
    }

    /// Logs that arrived before their result are applied now. One whose waiting copy
    /// cannot be read back is kept aside and not acknowledged: the centre, which still
    /// holds it as sent, sends it again.
    fn apply_waiting_logs(&mut self, meta: &ResultMeta, central_id: &str) -> Result<()> {
        for (batch_id, logs) in self.tx.take_waiting_logs(self.org, &meta.execution_id)? {
            match logs {
                Ok(logs) => {
                    self.tx
                        .put_central_logs(self.org, central_id, &meta.execution_id, &logs)?;
                    self.ack_logs(&batch_id, LogAckStatus::Stored)?;
                    self.tally.add("waiting log batches applied");
                }
                Err((text, e)) => {
                    let reason = format!(
                        "its waiting copy could not be read back ({e}); not acknowledged, the centre sends it again"
                    );
                    self.tx.quarantine_logs(
                        self.org,
                        &batch_id,
                        &meta.execution_id,
                        &reason,
                        None,
                        &text,
                    )?;
                    self.tally.add("log batches unreadable");
                    self.tally
                        .problems
                        .push(format!("log batch {batch_id}: {reason}"));
                }
            }
        }
        Ok(())
    }

    /// One sealed log batch, opened: stored against central's execution id, or kept waiting.
    fn logs(
        &mut self,
        meta: LogMeta,
        opened: std::result::Result<Vec<Value>, String>,
    ) -> Result<()> {
        let logs = match opened {
            Ok(logs) => logs,
            Err(what) => {
                self.tally.add("log batches refused");
                self.tally
                    .problems
                    .push(format!("log batch {}: {what}", quote(&meta.batch_id)));
                return Ok(());
            }
        };
        let central_id = central_execution_id(self.org, &meta.execution_id);
        if self.tx.central_result_version(&central_id)?.is_some() {
            self.tx
                .put_central_logs(self.org, &central_id, &meta.execution_id, &logs)?;
            self.ack_logs(&meta.batch_id, LogAckStatus::Stored)?;
            *self.tally.counts.entry("logs stored").or_default() += logs.len() as u64;
        } else if let Some(why) = self.tx.quarantine_reason(self.org, &meta.execution_id)? {
            // Its result was kept aside (out of scope, or unreadable): so are its logs.
            let reason = format!("its result was kept aside: {why}");
            let text = Value::from(logs).to_string();
            self.keep_logs_aside(&meta.batch_id, &meta.execution_id, &reason, &text)?;
        } else {
            self.tx
                .add_waiting_logs(self.org, &meta.batch_id, &meta.execution_id, &logs)?;
            self.ack_logs(&meta.batch_id, LogAckStatus::Waiting)?;
            self.tally.add("log batches waiting for their result");
        }
        Ok(())
    }
}

/// Open a sealed result and parse it within the limits: `Err((reason, content))` when it
/// must be kept aside, `content` being the plaintext when it was read at all (stored
/// once, as the quarantine's content; reasons never quote it).
fn open_result(
    key: &crypto::SecretKey,
    lim: &Limits,
    meta: &ResultMeta,
    blob: &[u8],
) -> OpenResult {
    let plain =
        open_sealed(key, blob, lim).map_err(|e| (format!("sealed result {e}"), Vec::new()))?;
    if hex::encode(Sha256::digest(&plain)) != meta.content_sha256 {
        return Err(("content does not match its declared hash".into(), plain));
    }
    let elements = match limits::scan_member_elements(&plain, lim, "variables") {
        Ok(elements) => elements,
        Err(b) => return Err((format!("result {b}"), plain)),
    };
    // The typed read first; when it refuses, the `Value` and the schema say why.
    let (record, found) = match result_schema::read(&plain) {
        Some(r) => {
            let found = r.variables.len();
            (Ok(Box::new(r)), Some(found))
        }
        None => {
            let v: Value = match serde_json::from_slice(&plain) {
                Ok(v) => v,
                Err(e) => return Err((format!("not JSON ({})", quote(&e.to_string())), plain)),
            };
            let found = v.get("variables").and_then(Value::as_array).map(Vec::len);
            (result_schema::from_value(v).map(Box::new), found)
        }
    };
    let limit = lim.variables;
    if let Some(found) = found.map(|n| n as u64).filter(|n| *n > limit) {
        let breach = Breach::Variables { found, limit };
        return Err((format!("result {breach}"), plain));
    }
    Ok((plain, record, elements))
}

/// A sealed log batch opened and checked: its logs, or why it is refused.
fn open_logs(
    key: &crypto::SecretKey,
    lim: &Limits,
    meta: &LogMeta,
    blob: &[u8],
) -> std::result::Result<Vec<Value>, String> {
    let plain = open_sealed(key, blob, lim).map_err(|e| format!("sealed logs {e}"))?;
    limits::scan(&plain, lim).map_err(|b| format!("log batch {b}"))?;
    let logs: Vec<Value> = serde_json::from_slice(&plain)
        .map_err(|e| format!("not a JSON array ({})", quote(&e.to_string())))?;
    let (found, limit) = (logs.len() as u64, lim.logs_per_batch);
    if found > limit {
        return Err(format!("log batch {}", Breach::Logs { found, limit }));
    }
    for l in &logs {
        crate::schema::check("log", l).map_err(|e| format!("a log fails the schema: {e}"))?;
        if l["delivery_execution_id"].as_str() != Some(meta.execution_id.as_str()) {
            return Err("a log names another execution than its batch".into());
        }
    }
    Ok(logs)
}

/// What central does with a copy of a result, given the copy it holds.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Store,
    Unchanged,
    Replace,
    Stale(String),
    Conflict(String),
}

/// The rule for two copies of one execution (issue 7): same content is unchanged; otherwise
/// the later `finishtime` wins, whatever the revisions say. A copy finished earlier (or
/// unfinished while the held copy is finished) is stale; one finished at the same instant
/// with other content is a conflict. A later copy replaces the held one only as a re-sync
/// with a higher revision (else it is a conflict: two machines claiming one execution).
/// When neither copy has a finish time, revisions decide as before.
fn judge_copy(
    held: Option<&(i64, String, Option<String>)>,
    meta: &ResultMeta,
    finishtime: Option<&str>,
) -> Verdict {
    use crate::results::{freshness, Freshness};
    let Some((rev, sha, held_ft)) = held else {
        return Verdict::Store;
    };
    if *sha == meta.content_sha256 {
        return Verdict::Unchanged;
    }
    let when = |t: Option<&str>| t.map_or("unfinished".to_string(), |t| format!("{t:?}"));
    let stale = || {
        Verdict::Stale(format!(
            "central holds revision {rev}, finished {}; this copy (revision {}, finished {}) is older and was ignored",
            when(held_ft.as_deref()),
            meta.revision,
            when(finishtime)
        ))
    };
    let held_known = held_ft
        .as_deref()
        .and_then(crate::time::Microtime::parse)
        .is_some();
    match freshness(held_ft.as_deref(), finishtime) {
        Ok(Freshness::Older) => stale(),
        Ok(Freshness::Same) => Verdict::Conflict(format!(
            "central holds revision {rev} finished at the same time ({}) with other content",
            when(finishtime)
        )),
        Ok(Freshness::Newer) | Err(_) => {
            if meta.revision > *rev && meta.resync {
                Verdict::Replace
            } else if meta.revision < *rev && !held_known {
                stale()
            } else {
                Verdict::Conflict(format!(
                    "already stored with other content (revision {rev}) and this copy is not a later re-sync"
                ))
            }
        }
    }
}

fn apply_center_ack(tx: &Tx<'_>, org: &str, upseq: i64, ack: &CenterAck) -> Result<()> {
    let Some(center) = tx.center(org)? else {
        return Ok(());
    };
    if upseq <= center.ack_upseq {
        return Ok(()); // an older acknowledgement arriving late
    }
    let acked_seq = match ack.last_seq {
        Some(seq) => {
            let sent: Vec<_> = tx
                .scopes_since(org, seq)?
                .into_iter()
                .filter(|(s, _)| *s == seq)
                .map(|(_, i)| i)
                .collect();
            let digest =
                inventory_digest(sent.iter().map(|i| (i.id.as_str(), i.checksum.as_str())));
            (digest == ack.inventory_sha256 && !sent.is_empty()).then_some(seq)
        }
        None => None,
    };
    tx.set_center_ack(org, acked_seq, upseq, &ack.packages)?;
    if let Some(seq) = ack.last_seq {
        tx.acks_delivered(org, seq)?;
    }
    if let Some(seq) = acked_seq {
        tx.forget_scopes_before(org, seq)?;
    }
    Ok(())
}

/// The name `export` gives part `index` of `count` of a centre's results set, written as
/// bundle `seq` of its up-sync sequence.
pub fn part_file_name(org: &str, seq: u64, index: u64, count: u64) -> String {
    format!("{org}-results-{seq:06}-{index}of{count}.courier")
}

/// A set of bundle files (a results export split into parts) with parts not among the files
/// given (schemas/file-reports.schema.json, `incomplete_sets`).
#[derive(Debug, Clone, Serialize)]
pub struct IncompleteSet {
    pub set_id: String,
    /// The organisation the headers name.
    pub org_id: String,
    pub parts: u64,
    pub missing: Vec<MissingPart>,
}

/// A part of a set not found, and the name `export` gave its file.
#[derive(Debug, Clone, Serialize)]
pub struct MissingPart {
    pub part: u64,
    /// The file name expected (the parts of a set take consecutive sequence numbers);
    /// absent when it cannot be told (not a results set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

impl IncompleteSet {
    /// One line for people: the set, and each part missing with its expected file name.
    pub fn note(&self) -> String {
        let parts: Vec<String> = self
            .missing
            .iter()
            .map(|m| match &m.file {
                Some(f) => format!("part {} ({f})", m.part),
                None => format!("part {}", m.part),
            })
            .collect();
        format!(
            "set {} from {}: {} of {} not among these files; import it when it turns up (if it is lost, the centre sends its content again once a data bundle from central tells it the file never arrived)",
            self.set_id,
            self.org_id,
            parts.join(", "),
            self.parts
        )
    }
}

/// The sets whose parts are not all among `paths` (bundle files; those whose header cannot
/// be read are left out), in set id order.
pub fn describe_sets(paths: &[PathBuf]) -> Vec<IncompleteSet> {
    struct Seen {
        org: String,
        count: u64,
        results: bool,
        /// (part index, sequence)
        parts: BTreeMap<u64, u64>,
    }
    let mut sets: BTreeMap<String, Seen> = BTreeMap::new();
    for p in paths {
        if let Ok(b) = Bundle::open(p) {
            let h = b.header;
            sets.entry(h.set.id.clone())
                .or_insert(Seen {
                    org: h.org_id.clone(),
                    count: h.set.count,
                    results: h.kind == Kind::Results,
                    parts: BTreeMap::new(),
                })
                .parts
                .insert(h.set.index, h.sequence);
        }
    }
    sets.into_iter()
        .filter_map(|(set_id, seen)| {
            // Any part found tells the sequence of the others (consecutive in a set).
            let (&index, &seq) = seen.parts.iter().next()?;
            let missing: Vec<MissingPart> = (1..=seen.count)
                .filter(|i| !seen.parts.contains_key(i))
                .map(|part| MissingPart {
                    part,
                    file: (seq + part)
                        .checked_sub(index)
                        .filter(|_| seen.results)
                        .map(|s| part_file_name(&seen.org, s, part, seen.count)),
                })
                .collect();
            (!missing.is_empty()).then_some(IncompleteSet {
                set_id,
                org_id: seen.org,
                parts: seen.count,
                missing,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{judge_copy, ResultMeta, Verdict};

    fn meta(revision: i64, sha: &str, resync: bool) -> ResultMeta {
        ResultMeta {
            execution_id: "e".into(),
            delivery_id: "d".into(),
            test_taker: "t".into(),
            state: "s".into(),
            revision,
            content_sha256: sha.into(),
            size: 1,
            resync,
        }
    }

    fn held(rev: i64, sha: &str, ft: Option<&str>) -> (i64, String, Option<String>) {
        (rev, sha.into(), ft.map(String::from))
    }

    const EARLY: &str = "0.54321000 1764144229";
    const LATE: &str = "0.11111100 1764151200";

    #[test]
    fn the_later_finish_time_wins_whatever_the_revisions_say() {
        let h = held(2, "b", Some(LATE));
        assert_eq!(
            judge_copy(None, &meta(1, "a", false), Some(EARLY)),
            Verdict::Store
        );
        assert_eq!(
            judge_copy(Some(&h), &meta(1, "b", false), Some(LATE)),
            Verdict::Unchanged
        );
        // A higher revision finished earlier is stale, as is an unfinished copy.
        assert!(matches!(
            judge_copy(Some(&h), &meta(3, "a", true), Some(EARLY)),
            Verdict::Stale(_)
        ));
        assert!(matches!(
            judge_copy(Some(&h), &meta(3, "a", true), None),
            Verdict::Stale(_)
        ));
        // Same instant, other content: a conflict.
        assert!(matches!(
            judge_copy(Some(&h), &meta(3, "a", true), Some(LATE)),
            Verdict::Conflict(_)
        ));
        // Later: replaced only as a re-sync with a higher revision.
        let h = held(1, "b", Some(EARLY));
        assert_eq!(
            judge_copy(Some(&h), &meta(2, "a", true), Some(LATE)),
            Verdict::Replace
        );
        assert!(matches!(
            judge_copy(Some(&h), &meta(1, "a", false), Some(LATE)),
            Verdict::Conflict(_)
        ));
        // Neither finished: revisions decide.
        let h = held(2, "b", None);
        assert!(matches!(
            judge_copy(Some(&h), &meta(1, "a", false), None),
            Verdict::Stale(_)
        ));
        assert_eq!(
            judge_copy(Some(&h), &meta(3, "a", true), None),
            Verdict::Replace
        );
    }
}
