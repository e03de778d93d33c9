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

use serde_json::{json, Map, Value};

use crate::bundle::{self, Bundle, Spec};
use crate::crypto;
use crate::crypto::Cert;
use crate::entities::{self, b64, excluded_set, ScopeEntry};
use crate::error::{Error, IoContext, Result};
use crate::outcome::{ImportOptions, Outcome};
use crate::site::{Role, Site};
use crate::store::{NewHistory, ScopeItem, StoredEntity, Tx};
pub use crate::wire::{
    inventory_digest, Acks, EntityLine, ExportReport, LogAck, ResultAck, ScopeLine,
};

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
    let key = site.secret_key()?;
    let mut store = site.store()?;
    let tx = store.begin()?;
    let Some(center) = tx.center(org)? else {
        return Err(Error::Usage {
            what: format!("unknown centre {org}; register it with 'courier center add {org}'"),
        });
    };
    let (fpr, seq, acked_seq) = (center.fingerprint, center.next_seq, center.acked_seq);
    let Some(fpr) = fpr else {
        return Err(Error::Usage {
            what: format!("centre {org} has not enrolled yet; import its enrollment reply first"),
        });
    };
    let (_, _, cert_text) = tx
        .peer(&fpr)?
        .ok_or_else(|| Error::Internal(format!("no pinned key for {org}")))?;
    let center_cert = crypto::parse_cert(cert_text.as_bytes())?;
    let packages_held: BTreeSet<String> = center.packages_held.into_iter().collect();

    let scope = entities::scope(&tx, org)?;
    let warnings = scope_warnings(org, &scope);
    // What the centre may hold: the scope of the bundle it confirmed, or of any bundle
    // written after it, which it may have applied since. An entity is left out only when
    // every one of those states holds it at its current checksum.
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
    let acks = owed_acks(&tx, org)?;
    let (n_result_acks, n_log_acks) = (acks.results.len(), acks.logs.len());
    if states > 0
        && changed.is_empty()
        && deleted == 0
        && acks.results.is_empty()
        && acks.logs.is_empty()
    {
        return Ok(ExportReport {
            files: vec![],
            counts: BTreeMap::new(),
            message: format!("nothing changed for centre {org}; no bundle written"),
            warnings,
        });
    }
    // The packages the centre reported are certain only while no later bundle (which may
    // have dropped one) is outstanding.
    let held_for_sure = states == 1;
    let mut packages: BTreeMap<String, PathBuf> = BTreeMap::new();
    for e in &changed {
        if let Some(sha) = &e.package {
            if !(held_for_sure && packages_held.contains(sha)) {
                packages.insert(sha.clone(), site.package_path(sha));
            }
        }
    }
    let spec = Spec::data(&site.config.fingerprint, &fpr, org, seq as u64);
    let out = out_dir.join(format!("{org}-data-{seq:06}.courier"));
    let settings = &site.config.settings;
    let progress = site.progress();
    progress.file(&out, None);
    let (written, ()) = bundle::write(&out, spec, &key, &center_cert, |p| {
        let mut lines = p.lines("scope");
        for e in &scope {
            lines.push(&ScopeLine {
                id: e.id.clone(),
                kind: e.kind.clone(),
                checksum: e.checksum.clone(),
            })?;
        }
        lines.finish()?;
        p.count("scope", scope.len() as u64);
        let mut lines = p.lines("entities");
        for e in &changed {
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
                let blob =
                    crypto::seal(&center_cert, Value::Object(secret).to_string().as_bytes())?;
                (Some(b64(&blob)), names)
            };
            lines.push(&EntityLine {
                kind: e.kind.clone(),
                id: e.id.clone(),
                checksum: e.checksum.clone(),
                properties: props,
                sealed,
                sealed_names,
            })?;
            progress.advance(1, 0);
        }
        lines.finish()?;
        for e in &changed {
            p.count(&e.kind, 1);
        }
        for (sha, path) in &packages {
            let f = std::fs::File::open(path).at(path)?;
            let size = f.metadata().at(path)?.len();
            p.add_reader(&format!("packages/{sha}.zip"), size, f)?;
            progress.advance(0, size);
        }
        p.count("packages", packages.len() as u64);
        p.count("result-acks", acks.results.len() as u64);
        p.count("log-acks", acks.logs.len() as u64);
        p.add_json("acks.json", &acks)
    })?;
    let items: Vec<ScopeItem> = scope
        .iter()
        .map(|e| ScopeItem {
            id: e.id.clone(),
            kind: e.kind.clone(),
            checksum: e.checksum.clone(),
        })
        .collect();
    tx.record_scope(org, seq, &items)?;
    tx.record_sent_pairs(org, seq, &entities::eligible_pairs(&scope))?;
    tx.acks_carried_by(org, seq)?;
    tx.set_center_next_seq(org, seq + 1)?;
    tx.record_bundle(
        "out",
        &crate::site::bundle_record(&written.header),
        &out.to_string_lossy(),
    )?;
    let counts = written.header.counts.clone();
    tx.add_history(NewHistory {
        action: "export",
        org_id: Some(org),
        bundle_id: Some(&written.header.bundle_id),
        kind: Some("data"),
        seq: Some(seq),
        status: "success",
        counts: json!(counts),
        report: format!(
            "{} changed of {} in scope, {} left scope, {} package(s)",
            changed.len(),
            scope.len(),
            deleted,
            packages.len()
        ),
    })?;
    tx.commit()?;
    let file = written.persist()?;
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
    })
}

fn owed_acks(tx: &Tx<'_>, org: &str) -> Result<Acks> {
    let mut acks = Acks::default();
    for a in tx.owed_acks(org)? {
        if a.item == "result" {
            acks.results.push(ResultAck {
                execution_id: a.reference,
                revision: a.revision.unwrap_or(0),
                content_sha256: a.content_sha256.unwrap_or_default(),
                status: a.status,
                reason: a.reason,
            });
        } else {
            acks.logs.push(LogAck {
                batch_id: a.reference,
                status: a.status,
                reason: a.reason,
            });
        }
    }
    Ok(acks)
}

/// Centre: apply a verified data bundle in one transaction.
pub fn apply(site: &Site, b: &Bundle, cert: &Cert, opts: &ImportOptions) -> Result<Outcome> {
    site.require(Role::Center)?;
    let path = &b.path;
    let h = &b.header;
    if h.sender.role != Role::Central {
        return Err(Error::refused(
            path,
            "data bundles come from central only; refused",
        ));
    }
    let key = site.secret_key()?;
    let mut store = site.store()?;
    let tx = store.begin()?;
    if tx.bundle_seen(&h.sender.fingerprint, &h.bundle_id)? {
        return Ok(Outcome::already());
    }
    let mut rollback = false;
    if let Some(last) = tx.last_seq_in(&h.sender.fingerprint, "data")? {
        if (h.sequence as i64) <= last {
            if !opts.allow_rollback {
                return Err(Error::Rollback {
                    path: path.clone(),
                    found: h.sequence,
                    applied: last as u64,
                    sender: "central".into(),
                });
            }
            rollback = true;
        }
    }
    let mut touched: Vec<(String, String, &'static str)> = Vec::new();
    let mut scope: HashMap<String, (String, String)> = HashMap::new();
    let mut actions: BTreeMap<&'static str, BTreeMap<String, u64>> = BTreeMap::new();
    let mut seen_entities: BTreeSet<String> = BTreeSet::new();
    // Received packages wait under temporary names until the whole payload is verified.
    let mut new_packages: Vec<(String, tempfile::NamedTempFile)> = Vec::new();
    let mut acks: Option<Acks> = None;
    let limits = site.config.settings.limits;
    let note = |actions: &mut BTreeMap<&'static str, BTreeMap<String, u64>>,
                touched: &mut Vec<(String, String, &'static str)>,
                id: &str,
                kind: &str,
                action: &'static str| {
        *actions
            .entry(action)
            .or_default()
            .entry(kind.to_string())
            .or_default() += 1;
        touched.push((id.to_string(), kind.to_string(), action));
    };
    b.read_payload(&key, cert, |name, r| {
        if name.starts_with("scope-") && name.ends_with(".jsonl") {
            for_lines(path, name, &limits, r, |v| {
                crate::schema::check("data-scope", &v)
                    .map_err(|e| Error::refused(path, format!("{name}: {e}")))?;
                let l: ScopeLine = serde_json::from_value(v)
                    .map_err(|e| Error::refused(path, format!("{name}: {e}")))?;
                scope.insert(l.id, (l.kind, l.checksum));
                Ok(())
            })
        } else if name.starts_with("entities-") && name.ends_with(".jsonl") {
            for_lines(path, name, &limits, r, |v| {
                crate::schema::check("data-entity", &v)
                    .map_err(|e| Error::refused(path, format!("{name}: {e}")))?;
                let l: EntityLine = serde_json::from_value(v)
                    .map_err(|e| Error::refused(path, format!("{name}: {e}")))?;
                let action = match &tx.entity_checksum(&l.id)? {
                    None => "created",
                    Some(c) if *c == l.checksum => "touched",
                    Some(_) => "updated",
                };
                let sealed = match &l.sealed {
                    Some(s) => Some(entities::unb64(s).ok_or_else(|| {
                        Error::refused(
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
                note(&mut actions, &mut touched, &l.id, &l.kind, action);
                site.progress().advance(1, 0);
                seen_entities.insert(l.id);
                Ok(())
            })
        } else if let Some(sha) = name
            .strip_prefix("packages/")
            .and_then(|n| n.strip_suffix(".zip"))
        {
            let r = &mut crate::progress::Reading::new(r, site.progress());
            let file = receive_package(site, &tx, path, sha, r)?;
            new_packages.push((sha.to_string(), file));
            Ok(())
        } else if name == "acks.json" {
            let bytes = bundle::read_small(path, name, r, 256 << 20)?;
            let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
                Error::refused(
                    path,
                    format!("acks.json: {}", crate::limits::quote(&e.to_string())),
                )
            })?;
            acks = Some(crate::schema::read_doc(path, name, "data-acks", v)?);
            Ok(())
        } else {
            Err(Error::refused(
                path,
                format!("unexpected payload entry {name}; refused"),
            ))
        }
    })?;
    // What the centre holds and central's list does not name has left the scope.
    let held: Vec<(String, String, String)> = tx
        .inventory()?
        .into_iter()
        .map(|i| (i.id, i.kind, i.checksum))
        .collect();
    let mut missing = Vec::new();
    for (id, kind, sum) in &held {
        match scope.get(id) {
            None => {
                tx.delete_entity(id)?;
                note(&mut actions, &mut touched, id, kind, "deleted");
            }
            Some((_, want)) if !seen_entities.contains(id) => {
                if want == sum {
                    note(&mut actions, &mut touched, id, kind, "touched");
                } else {
                    missing.push(id.clone());
                }
            }
            _ => {}
        }
    }
    let held_ids: BTreeSet<&str> = held.iter().map(|(id, _, _)| id.as_str()).collect();
    missing.extend(
        scope
            .keys()
            .filter(|id| !held_ids.contains(id.as_str()) && !seen_entities.contains(*id))
            .cloned(),
    );
    // Deliveries whose package is not here cannot run: report them.
    let no_package = tx.deliveries_without_package()?;
    // Packages no delivery uses any more are dropped (files removed after commit).
    let orphans = tx.drop_unused_packages()?;
    let (acked_results, acked_logs) = match &acks {
        Some(a) => crate::results::apply_acks(site, &tx, a)?,
        None => (0, 0),
    };
    tx.record_bundle(
        "in",
        &crate::site::bundle_record(h),
        &path.to_string_lossy(),
    )?;
    let mut report = format!(
        "{}; {} package(s) received, {} dropped; {acked_results} result(s) and {acked_logs} log batch(es) acknowledged",
        summarize(&actions),
        new_packages.len(),
        orphans.len()
    );
    if rollback {
        report.push_str("; ROLLBACK applied with --allow-rollback");
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
    let history_n = tx.add_history(NewHistory {
        action: "import",
        org_id: Some(&h.org_id),
        bundle_id: Some(&h.bundle_id),
        kind: Some("data"),
        seq: Some(h.sequence as i64),
        status: if missing.is_empty() && no_package.is_empty() {
            "success"
        } else {
            "partial"
        },
        counts: json!(actions),
        report: report.clone(),
    })?;
    for (id, kind, action) in &touched {
        tx.entity_history(history_n, id, kind, action)?;
    }
    // The payload was read to its end and its inner signature checked: packages take their
    // final names now, just before the commit (removed again if the commit fails).
    let mut placed = Vec::new();
    if opts.dry_run {
        tx.finish(true)?;
        return Ok(Outcome {
            already: false,
            partial: !missing.is_empty() || !no_package.is_empty(),
            message: report,
        });
    }
    for (sha, file) in new_packages {
        let dest = site.package_path(&sha);
        let existed = dest.exists();
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
    for sha in &orphans {
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
    Ok(Outcome {
        already: false,
        partial: !missing.is_empty() || !no_package.is_empty(),
        message: report,
    })
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
            let v = parsed.map_err(|e| Error::refused(path, format!("{name} {loc}: {e}")))?;
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
        return Err(Error::refused(
            path,
            format!("package name {sha} is not a SHA-256; refused"),
        ));
    }
    let (tmp, got, size) = entities::spool_package(site, r, path)?;
    if got != sha {
        return Err(Error::refused(
            path,
            format!("package {sha} does not match its hash; refused"),
        ));
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
