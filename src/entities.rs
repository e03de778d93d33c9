//! Entities in TAO's wire shape (`{"type", "id", "properties"}`): reading input files,
//! checksums, central's `load` and `remove`, scope of one centre, and `list`.
//!
//! A delivery's `OriginTestPackage` names a zip file when loaded; the package is checked,
//! stored by content hash, and the property then holds `package:sha256:<hex>`, so that
//! the checksum follows the package's content, not where it was loaded from. `list` shows
//! it as the path of the stored file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, IoContext, Result};
use crate::progress::{Progress, Reading};
use crate::site::{Role, Settings, Site};
use crate::store::{NewHistory, StoredEntity, Tx};

/// Entity types in the order they flow.
pub const TYPES: [&str; 6] = [
    "test-center",
    "administrator",
    "proctor",
    "test-taker",
    "eligibility",
    "delivery",
];

pub const ORG_ID: &str = "http://www.taotesting.com/ontologies/synchro.rdf#organisationId";
pub const ORIGIN_PACKAGE: &str =
    "http://www.taotesting.com/ontologies/synchro.rdf#OriginTestPackage";
pub const CENTER_ADMIN: &str = "http://www.tao.lu/Ontologies/TAOTestCenter.rdf#administrator";
pub const CENTER_PROCTOR: &str = "http://www.tao.lu/Ontologies/TAOTestCenter.rdf#assignedProctor";
pub const ELIG_CENTER: &str = "http://www.tao.lu/Ontologies/TAOProctor.rdf#EligibileTestCenter";
pub const ELIG_DELIVERY: &str = "http://www.tao.lu/Ontologies/TAOProctor.rdf#EligibileDelivery";
pub const ELIG_TAKER: &str = "http://www.tao.lu/Ontologies/TAOProctor.rdf#EligibileTestTaker";
const PACKAGE_REF: &str = "package:sha256:";

/// Call `each(location, parsed)` for every record of a JSON array file or JSON Lines file,
/// streamed one record at a time (see [`crate::limits::Records`]). A record that is not
/// JSON or breaks a limit is passed as `Err(reason)`, so callers choose to stop or go on; a
/// broken array ends the file after its reason was passed on. The file, its bytes and its
/// records are reported to `progress`.
pub fn for_each_record(
    path: &Path,
    limits: &crate::limits::Limits,
    progress: &dyn Progress,
    mut each: impl FnMut(&str, std::result::Result<Value, String>) -> Result<()>,
) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::input(path, &e))?;
    progress.file(path, file.metadata().ok().map(|m| m.len()));
    let file = Reading::new(file, progress);
    crate::limits::for_each_json(
        BufReader::new(file),
        limits,
        |e| Error::input(path, &e),
        |loc, parsed| {
            progress.advance(1, 0);
            each(loc, parsed)
        },
    )
}

/// The kinds of record courier reads from files, told apart by their shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// `{"type", "id", "properties"}`: read by `load`.
    Entity,
    /// A delivery execution with its variables: read by `results add`.
    Result,
    /// A row of TAO's `delivery_log` table: read by `logs add`.
    Log,
}

impl RecordKind {
    /// What the shape of `v` says it is, if it is clearly one of the kinds.
    pub fn of(v: &Value) -> Option<RecordKind> {
        let has = |k: &str| v.get(k).is_some();
        if has("properties") && has("type") {
            Some(RecordKind::Entity)
        } else if has("deliveryExecutionId") && has("variables") {
            Some(RecordKind::Result)
        } else if has("delivery_execution_id") && has("event_id") {
            Some(RecordKind::Log)
        } else {
            None
        }
    }

    /// "an entity", "a result", "a delivery log": for messages.
    pub fn described(self) -> &'static str {
        match self {
            RecordKind::Entity => "an entity (TAO wire shape)",
            RecordKind::Result => "a result (delivery execution)",
            RecordKind::Log => "a delivery log",
        }
    }

    /// The command that reads this kind of record.
    pub fn command(self) -> &'static str {
        match self {
            RecordKind::Entity => "courier load",
            RecordKind::Result => "courier results add",
            RecordKind::Log => "courier logs add",
        }
    }

    /// Refuse a file whose record at `loc` is clearly another kind than `expected`.
    pub fn expect(expected: RecordKind, path: &Path, loc: &str, v: &Value) -> Result<()> {
        match RecordKind::of(v) {
            Some(found) if found != expected => Err(Error::WrongKindOfFile {
                path: path.to_path_buf(),
                record: loc.to_string(),
                found: found.described(),
                expected: expected.described(),
                command: found.command(),
            }),
            _ => Ok(()),
        }
    }
}

/// The warning for an input file that held no record.
pub fn empty_file_warning(path: &Path, what: &str) -> String {
    format!(
        "{}: no records found; check that it is the right file and holds {what}, one per line or as a JSON array",
        path.display()
    )
}

/// The change-detection checksum: SHA-256 over the properties with keys sorted,
/// multi-values sorted, excluded properties removed.
pub fn checksum(properties: &Map<String, Value>, excluded: &BTreeSet<&str>) -> String {
    let mut canon: BTreeMap<&str, Value> = BTreeMap::new();
    for (k, v) in properties {
        if excluded.contains(k.as_str()) {
            continue;
        }
        let v = match v {
            Value::Array(items) => {
                let mut items: Vec<String> = items
                    .iter()
                    .map(|i| i.as_str().unwrap_or_default().to_string())
                    .collect();
                items.sort();
                Value::from(items)
            }
            other => other.clone(),
        };
        canon.insert(k, v);
    }
    hex::encode(Sha256::digest(
        serde_json::to_vec(&canon).expect("JSON of JSON"),
    ))
}

/// The excluded properties of a type, as a set.
pub fn excluded_set<'s>(settings: &'s Settings, kind: &str) -> BTreeSet<&'s str> {
    settings.excluded(kind).map(String::as_str).collect()
}

/// Values of a property as a list of strings (a single string is a list of one).
pub fn values<'v>(props: &'v Map<String, Value>, key: &str) -> Vec<&'v str> {
    match props.get(key) {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// What `load` did.
#[derive(Debug, Default, serde::Serialize)]
pub struct LoadReport {
    pub created: BTreeMap<String, u64>,
    pub updated: BTreeMap<String, u64>,
    pub unchanged: BTreeMap<String, u64>,
    pub packages: u64,
    /// Things to check: files without records, eligibilities naming entities central lacks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

struct Staged {
    kind: String,
    id: String,
    props: Map<String, Value>,
    package: Option<(String, PathBuf)>,
}

/// Central: load entity files and folders, all or nothing.
pub fn load(site: &Site, paths: &[PathBuf]) -> Result<LoadReport> {
    site.require(Role::Central)?;
    let files = crate::fs::expand_paths(paths, &["jsonl", "json"])?;
    let mut staged: Vec<Staged> = Vec::new();
    let mut package_cache: HashMap<PathBuf, String> = HashMap::new();
    let mut warnings = Vec::new();
    if files.is_empty() {
        warnings.push(format!(
            "no entity files (*.jsonl, *.json) in {}; check the folder",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let p = site.progress();
    p.files(files.len() as u64);
    for file in &files {
        let before = staged.len();
        for_each_record(file, &site.config.settings.limits, p, |loc, v| {
            let bad = |reason: String| Error::BadRecord {
                path: file.clone(),
                record: loc.to_string(),
                reason,
            };
            let v = v.map_err(|e| bad(format!("{e}; nothing was loaded")))?;
            RecordKind::expect(RecordKind::Entity, file, loc, &v)?;
            crate::schema::check("entity", &v)
                .map_err(|e| bad(format!("{e}; nothing was loaded")))?;
            let kind = v["type"].as_str().unwrap_or_default().to_string();
            let id = v["id"].as_str().unwrap_or_default().to_string();
            let mut props = v["properties"].as_object().cloned().unwrap_or_default();
            let mut package = None;
            if kind == "delivery" {
                let rel = props
                    .get(ORIGIN_PACKAGE)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let pkg_path = file.parent().unwrap_or(Path::new(".")).join(&rel);
                let sha = match package_cache.get(&pkg_path) {
                    Some(sha) => sha.clone(),
                    None => {
                        let sha = check_package_file(&pkg_path).map_err(|e| {
                            bad(format!("delivery package {rel}: {e}; nothing was loaded"))
                        })?;
                        package_cache.insert(pkg_path.clone(), sha.clone());
                        sha
                    }
                };
                props.insert(
                    ORIGIN_PACKAGE.into(),
                    Value::String(format!("{PACKAGE_REF}{sha}")),
                );
                package = Some((sha, pkg_path));
            }
            staged.push(Staged {
                kind,
                id,
                props,
                package,
            });
            Ok(())
        })?;
        if staged.len() == before {
            warnings.push(empty_file_warning(file, "entities in TAO's wire shape"));
        }
    }
    let mut store = site.store()?;
    let tx = store.begin()?;
    let mut report = LoadReport::default();
    for s in &staged {
        if let Some((sha, src)) = &s.package {
            if store_package(site, &tx, sha, src)? {
                report.packages += 1;
            }
        }
        let sum = checksum(&s.props, &excluded_set(&site.config.settings, &s.kind));
        let bucket = match tx.entity_checksum(&s.id)? {
            None => &mut report.created,
            Some(c) if c == sum => &mut report.unchanged,
            Some(_) => &mut report.updated,
        };
        *bucket.entry(s.kind.clone()).or_default() += 1;
        tx.put_entity(&StoredEntity {
            id: s.id.clone(),
            kind: s.kind.clone(),
            checksum: sum,
            properties: s.props.clone(),
            sealed: None,
            sealed_names: vec![],
            package: s.package.as_ref().map(|p| p.0.clone()),
        })?;
    }
    for s in staged.iter().filter(|s| s.kind == "eligibility") {
        if let Some(w) = dangling_references(&tx, &s.id, &s.props)? {
            warnings.push(w);
        }
    }
    report.warnings = warnings;
    tx.add_history(NewHistory {
        action: "load",
        status: "success",
        counts: json!({"created": report.created, "updated": report.updated, "unchanged": report.unchanged}),
        report: format!("loaded {} records from {} file(s)", staged.len(), files.len()),
        ..Default::default()
    })?;
    tx.commit()?;
    Ok(report)
}

/// What an eligibility names that central does not hold (its centre, delivery, test takers),
/// as a warning line: a centre would receive the eligibility without them.
fn dangling_references(
    tx: &Tx<'_>,
    id: &str,
    props: &Map<String, Value>,
) -> Result<Option<String>> {
    let mut missing = Vec::new();
    for (key, kind) in [
        (ELIG_CENTER, "test-center"),
        (ELIG_DELIVERY, "delivery"),
        (ELIG_TAKER, "test-taker"),
    ] {
        for v in values(props, key) {
            if !tx.holds(v, kind)? {
                missing.push(format!("{kind} {v}"));
            }
        }
    }
    if missing.is_empty() {
        return Ok(None);
    }
    let n = missing.len();
    let shown = missing.into_iter().take(5).collect::<Vec<_>>().join(", ");
    let more = if n > 5 {
        format!(" and {} more", n - 5)
    } else {
        String::new()
    };
    Ok(Some(format!(
        "eligibility {id} names {shown}{more}, which central does not hold; load them too, or the centre cannot use this eligibility"
    )))
}

/// The short form of an entity id for tables: the part after `#`, else after the last `/`.
pub fn short_id(id: &str) -> &str {
    id.rsplit_once('#')
        .or_else(|| id.trim_end_matches('/').rsplit_once('/'))
        .map(|(_, tail)| tail)
        .filter(|t| !t.is_empty())
        .unwrap_or(id)
}

/// `list` for people: a header and one aligned line per entity (type, short id, label; a
/// label still sealed shows as such). `--json` gives the wire shape instead.
pub fn table(list: &[Value]) -> Vec<String> {
    const LABEL: &str = "http://www.w3.org/2000/01/rdf-schema#label";
    let rows: Vec<(String, String, String)> = list
        .iter()
        .map(|e| {
            let label = match e["properties"][LABEL].as_str() {
                Some(l) => l.to_string(),
                None if e["encryptedProperties"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|n| n == LABEL)) =>
                {
                    "(encrypted: add --decrypt)".to_string()
                }
                None => "-".to_string(),
            };
            let id = e["id"].as_str().unwrap_or_default();
            (
                e["type"].as_str().unwrap_or_default().to_string(),
                short_id(id).to_string(),
                label,
            )
        })
        .collect();
    let w_id = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(0)
        .max(2);
    let mut out = vec![format!("{:<13} {:<w_id$} LABEL", "TYPE", "ID")];
    for (kind, id, label) in rows {
        out.push(format!("{kind:<13} {id:<w_id$} {label}"));
    }
    if list.is_empty() {
        out.push("(no entities held)".to_string());
    }
    out
}

/// Check a package file and return its SHA-256.
pub fn check_package_file(path: &Path) -> Result<String> {
    let file = File::open(path).map_err(|e| Error::input(path, &e))?;
    crate::package::check_package(BufReader::new(file)).map_err(|problem| Error::BadPackage {
        path: path.to_path_buf(),
        problem,
    })?;
    let mut f = File::open(path).at(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).at(path)?;
    Ok(hex::encode(h.finalize()))
}

/// Copy a checked package into the home (content-addressed). Returns whether it is new.
fn store_package(site: &Site, tx: &Tx<'_>, sha: &str, src: &Path) -> Result<bool> {
    let dest = site.package_path(sha);
    let known = tx.package_known(sha)?;
    if !dest.exists() {
        let mut from = File::open(src).at(src)?;
        let (tmp, got, _) = spool_package(site, &mut from, src)?;
        if got != sha {
            return Err(Error::refused(
                src,
                "package changed while being loaded; load again",
            ));
        }
        tmp.persist(&dest).map_err(|e| Error::io(&dest, e.error))?;
    }
    let size = std::fs::metadata(&dest).at(&dest)?.len();
    let name = src
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    tx.add_package(sha, size, &name)?;
    Ok(!known)
}

/// Stream a package into a temporary file in the packages folder, hashing it on the way and
/// flushing it to disk: (file, SHA-256, size). `origin` names the source in errors.
pub fn spool_package(
    site: &Site,
    from: &mut dyn std::io::Read,
    origin: &Path,
) -> Result<(tempfile::NamedTempFile, String, u64)> {
    let mut tmp = crate::fs::temp_beside(&site.package_path("incoming"))?;
    let mut hashing = crate::crypto::HashingWriter::new(tmp.as_file_mut());
    std::io::copy(from, &mut hashing).at(origin)?;
    let (sha256, size) = hashing.finish();
    tmp.as_file().sync_all().at(tmp.path())?;
    Ok((tmp, sha256, size))
}

/// Central: remove entities by id, all or nothing.
pub fn remove(site: &Site, ids: &[String]) -> Result<usize> {
    site.require(Role::Central)?;
    let mut store = site.store()?;
    let tx = store.begin()?;
    for id in ids {
        if !tx.delete_entity(id)? {
            return Err(Error::Usage {
                what: format!("no entity with id {id}; nothing was removed"),
            });
        }
    }
    tx.add_history(NewHistory {
        action: "remove",
        status: "success",
        counts: json!({"removed": ids.len()}),
        report: ids.join(" "),
        ..Default::default()
    })?;
    tx.commit()?;
    Ok(ids.len())
}

/// One entity of a centre's scope at central.
#[derive(Debug, Clone)]
pub struct ScopeEntry {
    pub id: String,
    pub kind: String,
    pub checksum: String,
    pub properties: Map<String, Value>,
    pub package: Option<String>,
}

impl From<StoredEntity> for ScopeEntry {
    fn from(e: StoredEntity) -> Self {
        ScopeEntry {
            id: e.id,
            kind: e.kind,
            checksum: e.checksum,
            properties: e.properties,
            package: e.package,
        }
    }
}

/// Central: the scope of one centre, in flow order (DOMAIN.md): its test-centre record;
/// the administrators and proctors linked to it; its eligibilities; the deliveries and
/// test takers those name.
pub fn scope(tx: &Tx<'_>, org: &str) -> Result<Vec<ScopeEntry>> {
    let load_type = |kind: &str| -> Result<Vec<ScopeEntry>> {
        Ok(tx
            .entities_of_type(kind)?
            .into_iter()
            .map(ScopeEntry::from)
            .collect())
    };
    let get = |id: &str| -> Result<Option<ScopeEntry>> { Ok(tx.entity(id)?.map(ScopeEntry::from)) };
    let centers: Vec<ScopeEntry> = load_type("test-center")?
        .into_iter()
        .filter(|c| values(&c.properties, ORG_ID).contains(&org))
        .collect();
    let center_ids: BTreeSet<&str> = centers.iter().map(|c| c.id.as_str()).collect();
    let mut wanted: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for c in &centers {
        wanted.entry("administrator").or_default().extend(
            values(&c.properties, CENTER_ADMIN)
                .into_iter()
                .map(String::from),
        );
        wanted.entry("proctor").or_default().extend(
            values(&c.properties, CENTER_PROCTOR)
                .into_iter()
                .map(String::from),
        );
    }
    let eligibilities: Vec<ScopeEntry> = load_type("eligibility")?
        .into_iter()
        .filter(|e| {
            values(&e.properties, ELIG_CENTER)
                .iter()
                .any(|c| center_ids.contains(c))
        })
        .collect();
    for e in &eligibilities {
        wanted.entry("delivery").or_default().extend(
            values(&e.properties, ELIG_DELIVERY)
                .into_iter()
                .map(String::from),
        );
        wanted.entry("test-taker").or_default().extend(
            values(&e.properties, ELIG_TAKER)
                .into_iter()
                .map(String::from),
        );
    }
    let mut out = centers.clone();
    for kind in ["administrator", "proctor", "test-taker"] {
        for id in wanted.get(kind).into_iter().flatten() {
            if let Some(e) = get(id)?.filter(|e| e.kind == kind) {
                out.push(e);
            }
        }
    }
    out.extend(eligibilities);
    for id in wanted.get("delivery").into_iter().flatten() {
        if let Some(e) = get(id)?.filter(|e| e.kind == "delivery") {
            out.push(e);
        }
    }
    Ok(out)
}

/// The (delivery, test taker) pairs a scope makes eligible: each eligibility's delivery
/// with each of its test takers, when the scope carries that delivery and that test taker.
/// Central records them at export: a result is in a centre's scope only for such a pair.
pub fn eligible_pairs(scope: &[ScopeEntry]) -> Vec<(&str, &str)> {
    let of_type = |kind: &str| -> BTreeSet<&str> {
        scope
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.id.as_str())
            .collect()
    };
    let (deliveries, takers) = (of_type("delivery"), of_type("test-taker"));
    let mut pairs = BTreeSet::new();
    for e in scope.iter().filter(|e| e.kind == "eligibility") {
        for d in values(&e.properties, ELIG_DELIVERY) {
            for t in values(&e.properties, ELIG_TAKER) {
                if deliveries.contains(d) && takers.contains(t) {
                    pairs.insert((d, t));
                }
            }
        }
    }
    pairs.into_iter().collect()
}

/// `list`: the entities a site holds, in the wire shape `load` reads.
pub fn list(site: &Site, types: &[String], decrypt: bool) -> Result<Vec<Value>> {
    for t in types {
        if !TYPES.contains(&t.as_str()) {
            return Err(Error::Usage {
                what: format!("unknown type '{t}'; types are {}", TYPES.join(", ")),
            });
        }
    }
    let key = if decrypt && site.role() == Role::Center {
        Some(site.secret_key()?)
    } else {
        None
    };
    let mut store = site.store()?;
    let tx = store.read()?;
    let mut out = Vec::new();
    for e in tx.all_entities()? {
        if !types.is_empty() && !types.contains(&e.kind) {
            continue;
        }
        let mut props = e.properties;
        if let Some(Value::String(s)) = props.get(ORIGIN_PACKAGE) {
            if let Some(sha) = s.strip_prefix(PACKAGE_REF) {
                let p = site.package_path(sha);
                let shown = std::path::absolute(&p).unwrap_or(p);
                props.insert(
                    ORIGIN_PACKAGE.into(),
                    Value::String(shown.to_string_lossy().into_owned()),
                );
            }
        }
        let mut entity = json!({"type": e.kind, "id": e.id});
        match (e.sealed, &key) {
            (Some(blob), Some(key)) => {
                let plain = crate::crypto::unseal(key, &blob)?;
                let personal: Map<String, Value> =
                    serde_json::from_slice(&plain).map_err(|e| Error::Internal(e.to_string()))?;
                props.extend(personal);
            }
            (Some(_), None) => entity["encryptedProperties"] = json!(e.sealed_names),
            _ => {}
        }
        entity["properties"] = Value::Object(props);
        out.push(entity);
    }
    Ok(out)
}

/// Base64 for sealed blobs inside JSON.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decode base64 from JSON.
pub fn unb64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}
