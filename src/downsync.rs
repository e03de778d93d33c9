//! Central → test centre: data bundles.
//!
//! Central remembers, per centre, the scope list (id, checksum) of every data bundle it
//! wrote. When the centre acknowledges having applied bundle N and its inventory digest
//! equals that of N's scope list, central knows exactly what the centre holds, and the
//! next export carries only what differs. Until then every export carries the whole scope
//! (a lost bundle is covered by the next one). Each bundle also carries the full scope
//! list, so the centre deletes what left its scope.
//!
//! Payload entries, in order: `scope-*.jsonl` (schemas/data-scope.schema.json),
//! `entities-*.jsonl` (schemas/data-entity.schema.json), `packages/<sha256>.zip`,
//! `acks.json` (schemas/data-acks.schema.json).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::bundle::{self, Bundle, Header, Kind, Spec};
use crate::crypto;
use crate::crypto::Cert;
use crate::entities::{self, b64, excluded_set, ScopeEntry};
use crate::error::{Error, IoContext, Result};
use crate::outcome::{ImportOptions, Outcome};
use crate::progress::Progress;
use crate::site::{Role, Settings, Site};
use crate::store::{Center, NewHistory, OwedAck, ScopeItem, StoredEntity, Tx};
use crate::wire::ReceivedFiles;
pub use crate::wire::{inventory_digest, Acks, EntityLine, ExportReport, ScopeLine};

/// Warnings about a centre's scope: nothing at all (no test centre with its org id), or a
/// test centre that no eligibility names (nothing to take an exam with).
fn scope_warnings(org: &str, scope: &[ScopeEntry]) -> Vec<String> {
    let has = |kind: &str| scope.iter().any(|e| e.kind == kind);
    if scope.is_empty() {
        vec![format!(
            "centre {org} has nothing in scope: no test-center entity has organisationId {org}; check the org id against the entities loaded ('courier list test-center')"
        )]
    } else if !has("eligibility") {
        vec![format!(
            "centre {org}: no eligibility names its test centre, so it gets no test takers or deliveries; load its eligibilities"
        )]
    } else {
        vec![]
    }
}

/// Central: write the next data bundle for `org` into `out_dir`.
pub fn export(site: &Site, org: &str, out_dir: &Path) -> Result<ExportReport> {
    site.require(Role::Central)?;
    export_with(site, &site.secret_key()?, org, out_dir)
}

/// What became of one centre in `export --to-all` (schemas/export-batch.schema.json).
#[derive(Debug, Serialize)]
pub struct CenterExport {
    pub org_id: String,
    pub label: String,
    /// `written`, `nothing-changed`, `skipped` (revoked, or not enrolled yet) or `failed`
    /// (the message is the error; the other centres are written all the same).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip)]
    pub exit_code: u8,
}

/// `export --to-all`: every registered centre, and the totals.
#[derive(Debug, Serialize)]
pub struct BatchExport {
    pub centers: Vec<CenterExport>,
    pub written: u64,
    pub nothing_changed: u64,
    pub skipped: u64,
    pub failed: u64,
    /// The summary line printed last without --json.
    pub message: String,
}

impl BatchExport {
    /// 0 when no centre failed; when some did, a site or internal failure's code (4, 5)
    /// wins, else 3 if others were written (or had nothing new), else the failures' code.
    pub fn exit_code(&self) -> u8 {
        use crate::error::exit;
        let worst = self.centers.iter().map(|c| c.exit_code).max().unwrap_or(0);
        if self.failed == 0 {
            exit::OK
        } else if worst >= exit::SITE || self.written + self.nothing_changed == 0 {
            worst
        } else {
            exit::PARTIAL
        }
    }
}

/// Central: the next data bundle of every enrolled centre not revoked, into `out_dir`, in
/// one process with the key unlocked once; each centre in its own transaction, a failure
/// for one not stopping the others. Revoked centres and centres not enrolled yet are skipped
/// with the reason.
pub fn export_all(site: &Site, out_dir: &Path) -> Result<BatchExport> {
    site.require(Role::Central)?;
    let key = site.secret_key()?;
    let centers = site.store()?.read()?.centers()?;
    let mut batch = BatchExport {
        centers: Vec::with_capacity(centers.len()),
        written: 0,
        nothing_changed: 0,
        skipped: 0,
        failed: 0,
        message: String::new(),
    };
    for c in centers {
        let mut one = CenterExport {
            org_id: c.org_id.clone(),
            label: c.label.clone(),
            status: "skipped",
            file: None,
            message: String::new(),
            warnings: vec![],
            exit_code: crate::error::exit::OK,
        };
        if let Some(at) = &c.revoked_at {
            one.message = format!(
                "revoked on {at} ({}); nothing is exported to it",
                c.revoked_reason.as_deref().unwrap_or("no reason given")
            );
            batch.skipped += 1;
        } else if c.fingerprint.is_none() {
            one.message =
                "not enrolled yet: import its enrollment reply first (courier import FILE)".into();
            batch.skipped += 1;
        } else {
            match export_with(site, &key, &c.org_id, out_dir) {
                Ok(r) => {
                    one.warnings = r.warnings;
                    one.message = r.message;
                    one.file = r.files.into_iter().next();
                    if one.file.is_some() {
                        one.status = "written";
                        batch.written += 1;
                    } else {
                        one.status = "nothing-changed";
                        batch.nothing_changed += 1;
                    }
                }
                Err(e) => {
                    one.status = "failed";
                    one.message = e.to_string();
                    one.exit_code = e.exit_code();
                    batch.failed += 1;
                }
            }
        }
        batch.centers.push(one);
    }
    batch.message = format!(
        "{} centre(s): {} written, {} with nothing changed, {} skipped, {} failed",
        batch.centers.len(),
        batch.written,
        batch.nothing_changed,
        batch.skipped,
        batch.failed
    );
    Ok(batch)
}

/// [`export`] with central's key already unlocked.
fn export_with(
    site: &Site,
    key: &crypto::SecretKey,
    org: &str,
    out_dir: &Path,
) -> Result<ExportReport> {
    let mut store = site.store()?;
    let tx = store.begin()?;
    let (center, fpr, center_cert) = enrolled_center(site, &tx, org)?;
    let seq = center.next_seq;

    let scope = entities::trim_to_scope(&tx, entities::scope(&tx, org)?, &site.config.settings)?;
    let warnings = scope_warnings(org, &scope);
    let (changed, deleted, states) = changes(&tx, org, center.acked_seq, &scope)?;
    let acks = owed_acks(&tx, org)?;
    let received = ReceivedFiles::from_seqs(tx.received_seqs(&fpr)?);
    let (n_result_acks, n_log_acks) = (acks.results.len(), acks.logs.len());
    if states > 0 && changed.is_empty() && deleted == 0 && n_result_acks + n_log_acks == 0 {
        return Ok(nothing_changed(org, warnings));
    }
    let packages = packages_to_send(&changed, states == 1, &center.packages_held);
    let out = out_dir.join(format!("{org}-data-{seq:06}.courier"));
    let spec = Spec {
        rollover: crate::rollover::owed(&tx, org)?,
        ..Spec::data(&site.config.fingerprint, &fpr, org, seq as u64)
    };
    let progress = site.progress();
    progress.file(&out, None);
    let (written, ()) = bundle::write(&out, spec, key, &center_cert, |p| {
        write_scope(p, &scope)?;
        write_entities(p, &site.config.settings, &center_cert, &changed, progress)?;
        write_packages(p, site, &tx, &packages, progress)?;
        p.count("result-acks", acks.results.len() as u64);
        p.count("log-acks", acks.logs.len() as u64);
        p.add_json("acks.json", &acks)?;
        p.add_json(bundle::RECEIVED_ENTRY, &received)
    })?;
    record_sent(&tx, org, seq, &scope, &written.header, &out)?;
    let counts = written.header.counts.clone();
    let report = format!(
        "{}: {} changed of {} in scope, {} left scope, {} package(s), {n_result_acks} result and {n_log_acks} log-batch acknowledgement(s)",
        crate::fs::file_name(&out),
        changed.len(),
        scope.len(),
        deleted,
        packages.len()
    );
    record_export_history(&tx, org, &written.header, report, &changed)?;
    let file = bundle::persist_then_commit(vec![written], || tx.commit())?.remove(0);
    Ok(ExportReport {
        files: vec![file],
        counts,
        message: format!(
            "data bundle {seq} for centre {org}: {} changed, {deleted} removed, {} package(s), {} result and {} log-batch acknowledgement(s)",
            changed.len(),
            packages.len(),
            n_result_acks,
            n_log_acks
        ),
        warnings,
        sent: None,
    })
}

/// A registered centre that has enrolled: its record, fingerprint and pinned certificate.
fn enrolled_center(site: &Site, tx: &Tx<'_>, org: &str) -> Result<(Center, String, Cert)> {
    let Some(center) = tx.center(org)? else {
        return Err(Error::Usage {
            what: format!("unknown centre {org}; register it with 'courier center add {org}'"),
        });
    };
    if let Some(at) = center.revoked_at.clone() {
        return Err(Error::ExportToRevoked {
            org: org.to_string(),
            at,
            reason: center.revoked_reason.unwrap_or_default(),
        });
    }
    let Some(fpr) = center.fingerprint.clone() else {
        return Err(Error::CenterNotEnrolled {
            org: org.to_string(),
        });
    };
    let cert_text = tx
        .peer(&fpr)?
        .map(|p| p.cert)
        .ok_or_else(|| Error::StoreDamaged {
            path: site.store_path(),
            what: format!("no pinned key for enrolled centre {org}"),
        })?;
    let cert = crypto::parse_cert(cert_text.as_bytes())?;
    Ok((center, fpr, cert))
}

/// The entities in scope the centre may lack, how many it may hold that left the scope,
/// and how many states it may be in (0: it confirmed none, everything travels).
fn changes<'s>(
    tx: &Tx<'_>,
    org: &str,
    acked_seq: Option<i64>,
    scope: &'s [ScopeEntry],
) -> Result<(Vec<&'s ScopeEntry>, usize, usize)> {
    let (possible, states) = possible_states(tx, org, acked_seq)?;
    let in_scope: BTreeSet<&str> = scope.iter().map(|e| e.id.as_str()).collect();
    let changed: Vec<&ScopeEntry> = scope
        .iter()
        .filter(|e| {
            states == 0 || possible.get(&e.id).and_then(|c| c.get(&e.checksum)) != Some(&states)
        })
        .collect();
    let deleted = possible
        .keys()
        .filter(|id| !in_scope.contains(id.as_str()))
        .count();
    Ok((changed, deleted, states))
}

/// The packages of the changed entities, less those the centre reported holding; that
/// report is certain only while no later bundle (which may have dropped one) is
/// outstanding (`held_for_sure`).
fn packages_to_send(
    changed: &[&ScopeEntry],
    held_for_sure: bool,
    packages_held: &[String],
) -> BTreeSet<String> {
    let packages_held: BTreeSet<&String> = packages_held.iter().collect();
    let mut packages = BTreeSet::new();
    for e in changed {
        if let Some(sha) = &e.package {
            if !(held_for_sure && packages_held.contains(sha)) {
                packages.insert(sha.clone());
            }
        }
    }
    packages
}

/// What the centre may hold: the scope of the bundle it confirmed, or of any bundle
/// written after it, which it may have applied since. Returns, per id, how many of those
/// states hold each checksum, and how many states there are; an entity is left out of the
/// next bundle only when every state holds it at its current checksum.
#[allow(clippy::type_complexity)]
fn possible_states(
    tx: &Tx<'_>,
    org: &str,
    acked_seq: Option<i64>,
) -> Result<(HashMap<String, HashMap<String, usize>>, usize)> {
    let mut possible: HashMap<String, HashMap<String, usize>> = HashMap::new();
    let mut states = 0usize;
    if let Some(acked) = acked_seq {
        let mut last_seq = None;
        for (seq, item) in tx.scopes_since(org, acked)? {
            if last_seq != Some(seq) {
                states += 1;
                last_seq = Some(seq);
            }
            *possible
                .entry(item.id)
                .or_default()
                .entry(item.checksum)
                .or_default() += 1;
        }
    }
    Ok((possible, states))
}

/// The whole scope list, every time.
fn write_scope(p: &mut bundle::PayloadWriter<'_>, scope: &[ScopeEntry]) -> Result<()> {
    let mut lines = p.lines("scope");
    for e in scope {
        lines.push(&ScopeLine {
            id: e.id.clone(),
            kind: e.kind.clone(),
            checksum: e.checksum.clone(),
        })?;
    }
    lines.finish()?;
    p.count("scope", scope.len() as u64);
    Ok(())
}

/// The entities in scope the centre may lack, each as it travels ([`entity_line`]), counted
/// per type.
fn write_entities(
    p: &mut bundle::PayloadWriter<'_>,
    settings: &Settings,
    center_cert: &Cert,
    changed: &[&ScopeEntry],
    progress: &dyn Progress,
) -> Result<()> {
    let mut lines = p.lines("entities");
    for e in changed {
        lines.push(&entity_line(settings, center_cert, e)?)?;
        progress.advance(1, 0);
    }
    lines.finish()?;
    for e in changed {
        p.count(&e.kind, 1);
    }
    Ok(())
}

/// The test packages the centre lacks, streamed from central's package folder, or from the
/// store when it keeps them (checked against their hash on the way: a damaged one fails the
/// export, naming it).
fn write_packages(
    p: &mut bundle::PayloadWriter<'_>,
    site: &Site,
    tx: &Tx<'_>,
    packages: &BTreeSet<String>,
    progress: &dyn Progress,
) -> Result<()> {
    for sha in packages {
        let name = format!("packages/{sha}.zip");
        let size = if tx.keeps_package_content() {
            let Some(content) = tx.package_content(sha)? else {
                return Err(Error::PackageDamaged {
                    store: site.store_path().display().to_string(),
                    sha256: sha.clone(),
                    what: "a delivery names it, but it is not recorded".into(),
                });
            };
            p.add_reader(&name, content.size, content.reader)
                .map_err(Error::from_wrapped)?;
            content.size
        } else {
            let path = site.package_path(sha);
            let f = std::fs::File::open(&path).at(&path)?;
            let size = f.metadata().at(&path)?.len();
            p.add_reader(&name, size, f)?;
            size
        };
        progress.advance(0, size);
    }
    p.count("packages", packages.len() as u64);
    Ok(())
}

/// One entity as it travels: excluded properties left out, personal ones sealed to the
/// centre's key.
fn entity_line(settings: &Settings, center_cert: &Cert, e: &ScopeEntry) -> Result<EntityLine> {
    let excluded = excluded_set(settings, &e.kind);
    let personal: BTreeSet<&str> = settings
        .personal(&e.kind)
        .iter()
        .map(String::as_str)
        .collect();
    let mut props = Map::new();
    let mut secret = Map::new();
    for (k, v) in &e.properties {
        if excluded.contains(k.as_str()) {
            continue;
        }
        if personal.contains(k.as_str()) {
            secret.insert(k.clone(), v.clone());
        } else {
            props.insert(k.clone(), v.clone());
        }
    }
    let (sealed, sealed_names) = if secret.is_empty() {
        (None, vec![])
    } else {
        let names = secret.keys().cloned().collect();
        let blob = crypto::seal(center_cert, Value::Object(secret).to_string().as_bytes())?;
        (Some(b64(&blob)), names)
    };
    Ok(EntityLine {
        kind: e.kind.clone(),
        id: e.id.clone(),
        checksum: e.checksum.clone(),
        properties: props,
        sealed,
        sealed_names,
    })
}

/// The report of an export that found nothing to send to centre `org`: no file written.
fn nothing_changed(org: &str, warnings: Vec<String>) -> ExportReport {
    ExportReport {
        files: vec![],
        counts: BTreeMap::new(),
        message: format!("nothing changed for centre {org}; no bundle written"),
        warnings,
        sent: None,
    }
}

/// The history row of a data bundle written (`report` says what it carried), and a "sent"
/// entity action for each entity it carried (`history --entity` at central).
fn record_export_history(
    tx: &Tx<'_>,
    org: &str,
    header: &Header,
    report: String,
    changed: &[&ScopeEntry],
) -> Result<()> {
    let n = tx.add_history(NewHistory {
        action: "export",
        org_id: Some(org),
        bundle_id: Some(&header.bundle_id),
        kind: Some(Kind::Data.as_str()),
        seq: Some(header.sequence as i64),
        status: "success",
        counts: json!(header.counts),
        report,
    })?;
    for e in changed {
        tx.entity_history(n, &e.id, &e.kind, "sent")?;
    }
    Ok(())
}

/// What central remembers of a data bundle written: its scope list, the pairs it made
/// eligible, the acknowledgements it carries, the next sequence, the bundle itself.
fn record_sent(
    tx: &Tx<'_>,
    org: &str,
    seq: i64,
    scope: &[ScopeEntry],
    header: &Header,
    out: &Path,
) -> Result<()> {
    let items: Vec<ScopeItem> = scope
        .iter()
        .map(|e| ScopeItem {
            id: e.id.clone(),
            kind: e.kind.clone(),
            checksum: e.checksum.clone(),
        })
        .collect();
    tx.record_scope(org, seq, &items)?;
    tx.record_sent_pairs(org, seq, &entities::eligible_pairs(scope))?;
    tx.acks_carried_by(org, seq)?;
    tx.set_center_next_seq(org, seq + 1)?;
    tx.record_bundle(
        "out",
        &crate::site::bundle_record(header),
        &out.to_string_lossy(),
    )
}

fn owed_acks(tx: &Tx<'_>, org: &str) -> Result<Acks> {
    let mut acks = Acks::default();
    for a in tx.owed_acks(org)? {
        match a {
            OwedAck::Result(a) => acks.results.push(a),
            OwedAck::Logs(a) => acks.logs.push(a),
        }
    }
    Ok(acks)
}

/// Centre: apply a verified data bundle in one transaction.
pub fn apply(site: &Site, b: &Bundle, cert: &Cert, opts: &ImportOptions) -> Result<Outcome> {
    site.require(Role::Center)?;
    let (path, h) = (&b.path, &b.header);
    b.require_sender(Role::Central, "central")?;
    let key = site.secret_key()?;
    let mut store = site.store()?;
    let tx = store.begin()?;
    if tx.bundle_seen(&h.sender.fingerprint, &h.bundle_id)? {
        return Ok(Outcome::already());
    }
    let rollback = match check_sequence(&tx, b, opts)? {
        Sequence::Superseded(applied) => return Ok(Outcome::superseded(h.sequence, applied)),
        Sequence::Rollback => true,
        Sequence::Next => false,
    };
    let mut got = Received::default();
    b.read_payload(&key, cert, |name, r| got.entry(site, &tx, path, name, r))?;
    let rolled = crate::rollover::on_import(&tx, path, h)?;
    let missing = got.reconcile_scope(&tx)?;
    // Deliveries whose package is not here cannot run: report them.
    let no_package = tx.deliveries_without_package()?;
    // Packages no delivery uses any more are dropped (files removed after commit).
    let orphans = tx.drop_unused_packages()?;
    let (acked_results, acked_logs) = match &got.acks {
        Some(a) => crate::results::apply_acks(site, &tx, a)?,
        None => (0, 0),
    };
    if let Some(received) = &got.received {
        tx.set_central_received(received)?;
    }
    tx.record_bundle(
        "in",
        &crate::site::bundle_record(h),
        &path.to_string_lossy(),
    )?;
    let mut report = format!(
        "{}; {} package(s) received, {} dropped; {acked_results} result(s) and {acked_logs} log batch(es) acknowledged",
        summarize(&got.actions),
        got.new_packages.len(),
        orphans.len()
    );
    if rollback {
        report.push_str("; ROLLBACK applied with --allow-rollback");
    }
    if let Some(note) = rolled {
        report.push_str(&format!("; {note}"));
    }
    if !missing.is_empty() {
        report.push_str(&format!(
            "; {} entity(ies) in scope not received (next export covers them)",
            missing.len()
        ));
    }
    if !no_package.is_empty() {
        report.push_str(&format!(
            "; deliveries without their package: {}",
            no_package.join(", ")
        ));
    }
    let partial = !missing.is_empty() || !no_package.is_empty();
    let named = format!("{}: {report}", crate::fs::file_name(path));
    got.record_history(&tx, h, partial, &named)?;
    if opts.dry_run {
        tx.finish(true)?;
    } else {
        place_packages_and_commit(site, tx, got.new_packages)?;
        remove_orphan_packages(site, &orphans, &mut report);
    }
    Ok(Outcome {
        already: false,
        partial,
        message: report,
        results: Default::default(),
    })
}

/// Where a data bundle's sequence stands against the last one applied from its central.
enum Sequence {
    /// Newer: applied as usual.
    Next,
    /// Not newer, applied with `--allow-rollback` (recorded in the history).
    Rollback,
    /// Older than the one applied (a stick found later): nothing to do; the newer bundle
    /// carried everything (its whole scope list, every owed acknowledgement).
    Superseded(i64),
}

/// A data bundle older than the last one applied is superseded (exit 0, nothing changes);
/// one with the same sequence under another id means central reissued it (restored from a
/// backup) and is refused. `--allow-rollback` applies either. Data bundles come from
/// central alone, under each of its keys in turn (a rollover keeps numbering), so every one
/// applied counts.
fn check_sequence(tx: &Tx<'_>, b: &Bundle, opts: &ImportOptions) -> Result<Sequence> {
    let h = &b.header;
    let Some(last) = tx.max_seq_in(Kind::Data.as_str())? else {
        return Ok(Sequence::Next);
    };
    let seq = h.sequence as i64;
    Ok(if seq > last {
        Sequence::Next
    } else if opts.allow_rollback {
        Sequence::Rollback
    } else if seq < last {
        Sequence::Superseded(last)
    } else {
        return Err(Error::Rollback {
            path: b.path.clone(),
            found: h.sequence,
            applied: last as u64,
            sender: "central".into(),
        });
    })
}

/// What a data bundle's payload brought, entry by entry, while it is applied.
#[derive(Default)]
struct Received {
    /// Every entity touched: (id, type, action), for `history --entity`.
    touched: Vec<(String, String, &'static str)>,
    /// Central's scope list: id → (type, checksum).
    scope: HashMap<String, (String, String)>,
    /// Counts per action and type.
    actions: BTreeMap<&'static str, BTreeMap<String, u64>>,
    seen_entities: BTreeSet<String>,
    /// Received packages wait under temporary names until the whole payload is verified.
    new_packages: Vec<(String, tempfile::NamedTempFile)>,
    acks: Option<Acks>,
    /// The centre's upward files central applied (an extension entry; absent from an
    /// older central).
    received: Option<ReceivedFiles>,
}

impl Received {
    fn note(&mut self, id: &str, kind: &str, action: &'static str) {
        *self
            .actions
            .entry(action)
            .or_default()
            .entry(kind.to_string())
            .or_default() += 1;
        self.touched
            .push((id.to_string(), kind.to_string(), action));
    }

    /// One payload entry: scope lines, entity lines, a test package or the acks.
    fn entry(
        &mut self,
        site: &Site,
        tx: &Tx<'_>,
        path: &Path,
        name: &str,
        r: &mut dyn Read,
    ) -> Result<()> {
        if name.starts_with("scope-") && name.ends_with(".jsonl") {
            let limits = &site.config.settings.limits;
            for_lines(path, name, limits, r, |v| {
                let l: ScopeLine = payload_line(path, name, "data-scope", v)?;
                self.scope.insert(l.id, (l.kind, l.checksum));
                Ok(())
            })
        } else if name.starts_with("entities-") && name.ends_with(".jsonl") {
            let limits = &site.config.settings.limits;
            for_lines(path, name, limits, r, |v| {
                let l: EntityLine = payload_line(path, name, "data-entity", v)?;
                self.entity(tx, path, name, l)?;
                site.progress().advance(1, 0);
                Ok(())
            })
        } else if let Some(sha) = name
            .strip_prefix("packages/")
            .and_then(|n| n.strip_suffix(".zip"))
        {
            let r = &mut crate::progress::Reading::new(r, site.progress());
            let file = receive_package(site, tx, path, sha, r)?;
            self.new_packages.push((sha.to_string(), file));
            Ok(())
        } else if name == "acks.json" {
            let bytes = bundle::read_small(path, name, r, 256 << 20)?;
            let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
                Error::bad_payload(
                    path,
                    format!("acks.json: {}", crate::limits::quote(&e.to_string())),
                )
            })?;
            self.acks = Some(crate::schema::read_doc(path, name, "data-acks", v)?);
            Ok(())
        } else if name == bundle::RECEIVED_ENTRY {
            let bytes = bundle::read_small(path, name, r, 16 << 20)?;
            let v = crate::limits::parse(&bytes, &site.config.settings.limits)
                .map_err(|e| Error::bad_payload(path, format!("{name}: {e}; refused")))?;
            self.received = Some(crate::schema::read_doc(path, name, "data-received", v)?);
            Ok(())
        } else {
            Err(Error::bad_payload(
                path,
                format!("unexpected payload entry {name}; refused"),
            ))
        }
    }

    /// Store one entity line, noting whether it was created, updated or touched.
    fn entity(&mut self, tx: &Tx<'_>, path: &Path, name: &str, l: EntityLine) -> Result<()> {
        let action = match &tx.entity_checksum(&l.id)? {
            None => "created",
            Some(c) if *c == l.checksum => "touched",
            Some(_) => "updated",
        };
        let sealed = match &l.sealed {
            Some(s) => Some(entities::unb64(s).ok_or_else(|| {
                Error::bad_payload(
                    path,
                    format!("{name}: sealed properties of {} are not base64", l.id),
                )
            })?),
            None => None,
        };
        let package = match l
            .properties
            .get(entities::ORIGIN_PACKAGE)
            .and_then(Value::as_str)
        {
            Some(p) => p.strip_prefix("package:sha256:").map(String::from),
            None => None,
        };
        tx.put_entity(&StoredEntity {
            id: l.id.clone(),
            kind: l.kind.clone(),
            checksum: l.checksum,
            properties: l.properties,
            sealed,
            sealed_names: l.sealed_names,
            package,
        })?;
        self.note(&l.id, &l.kind, action);
        self.seen_entities.insert(l.id);
        Ok(())
    }

    /// What the centre holds and central's list does not name has left the scope: deleted.
    /// Returns the ids in scope that neither arrived nor are held as listed.
    fn reconcile_scope(&mut self, tx: &Tx<'_>) -> Result<Vec<String>> {
        let held: Vec<(String, String, String)> = tx
            .inventory()?
            .into_iter()
            .map(|i| (i.id, i.kind, i.checksum))
            .collect();
        let mut missing = Vec::new();
        for (id, kind, sum) in &held {
            match self.scope.get(id) {
                None => {
                    tx.delete_entity(id)?;
                    self.note(id, kind, "deleted");
                }
                Some((_, want)) if !self.seen_entities.contains(id) => {
                    if want == sum {
                        self.note(id, kind, "touched");
                    } else {
                        missing.push(id.clone());
                    }
                }
                _ => {}
            }
        }
        let held_ids: BTreeSet<&str> = held.iter().map(|(id, _, _)| id.as_str()).collect();
        missing.extend(
            self.scope
                .keys()
                .filter(|id| !held_ids.contains(id.as_str()) && !self.seen_entities.contains(*id))
                .cloned(),
        );
        Ok(missing)
    }

    /// The history row of this import, and what it did to each entity.
    fn record_history(&self, tx: &Tx<'_>, h: &Header, partial: bool, report: &str) -> Result<()> {
        let history_n = tx.add_history(NewHistory {
            action: "import",
            org_id: Some(&h.org_id),
            bundle_id: Some(&h.bundle_id),
            kind: Some(Kind::Data.as_str()),
            seq: Some(h.sequence as i64),
            status: if partial { "partial" } else { "success" },
            counts: json!(self.actions),
            report: report.to_string(),
        })?;
        for (id, kind, action) in &self.touched {
            tx.entity_history(history_n, id, kind, action)?;
        }
        Ok(())
    }
}

/// A scope or entity line checked against its schema, then read.
fn payload_line<T: serde::de::DeserializeOwned>(
    path: &Path,
    name: &str,
    schema: &str,
    v: Value,
) -> Result<T> {
    crate::schema::check(schema, &v)
        .map_err(|e| Error::bad_payload(path, format!("{name}: {e}")))?;
    serde_json::from_value(v).map_err(|e| Error::bad_payload(path, format!("{name}: {e}")))
}

/// The payload was read to its end and its inner signature checked: packages take their
/// final names now, just before the commit (removed again if the commit fails).
fn place_packages_and_commit(
    site: &Site,
    tx: Tx<'_>,
    new_packages: Vec<(String, tempfile::NamedTempFile)>,
) -> Result<()> {
    let mut placed = Vec::new();
    for (sha, file) in new_packages {
        let dest = site.package_path(&sha);
        let existed = dest.exists();
        crate::failpoint::hit("package.place")?;
        file.persist(&dest).map_err(|e| Error::io(&dest, e.error))?;
        if !existed {
            placed.push(dest);
        }
    }
    if let Err(e) = tx.commit() {
        // Best effort: the commit's error is the one to report, and a package file left
        // behind is content-addressed, so the next import reuses it.
        for p in &placed {
            let _ = std::fs::remove_file(p);
        }
        return Err(e);
    }
    Ok(())
}

/// After the commit: package files no delivery uses any more are removed (the report says
/// which could not be).
fn remove_orphan_packages(site: &Site, orphans: &[String], report: &mut String) {
    for sha in orphans {
        let path = site.package_path(sha);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => report.push_str(&format!(
                "; package file {} no longer needed but not removed ({e})",
                path.display()
            )),
        }
    }
}

fn summarize(actions: &BTreeMap<&'static str, BTreeMap<String, u64>>) -> String {
    let parts: Vec<String> = ["created", "updated", "touched", "deleted"]
        .iter()
        .map(|a| {
            format!(
                "{} {a}",
                actions.get(a).map(|m| m.values().sum::<u64>()).unwrap_or(0)
            )
        })
        .collect();
    parts.join(", ")
}

/// Read a JSON Lines entry of the payload record by record, within the site's limits.
pub(crate) fn for_lines(
    path: &Path,
    name: &str,
    limits: &crate::limits::Limits,
    r: &mut dyn Read,
    mut each: impl FnMut(Value) -> Result<()>,
) -> Result<()> {
    crate::limits::for_each_json(
        std::io::BufReader::new(r),
        limits,
        |e| Error::io(path, e),
        |loc, parsed| {
            let v = parsed.map_err(|e| Error::bad_payload(path, format!("{name} {loc}: {e}")))?;
            each(v)
        },
    )
}

/// Receive a test package: stream to a temporary file, check its hash and content, then
/// keep it as packages/<sha256>.zip (byte-identical to central's).
fn receive_package(
    site: &Site,
    tx: &Tx<'_>,
    path: &Path,
    sha: &str,
    r: &mut dyn Read,
) -> Result<tempfile::NamedTempFile> {
    if sha.len() != 64
        || !sha
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    {
        return Err(Error::PackageName {
            path: path.to_path_buf(),
            name: sha.to_string(),
        });
    }
    let (tmp, got, size) = entities::spool_package(site, r, path)?;
    if got != sha {
        return Err(Error::PackageMismatch {
            path: path.to_path_buf(),
            sha: sha.to_string(),
        });
    }
    let f = tmp.reopen().at(tmp.path())?;
    crate::package::check_package(std::io::BufReader::new(f)).map_err(|problem| {
        Error::BadPackage {
            path: path.join(format!("packages/{sha}.zip")),
            problem,
        }
    })?;
    tx.add_package(sha, size, &format!("{sha}.zip"))?;
    Ok(tmp)
}
