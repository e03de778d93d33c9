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
/// How `list` shows the package of a delivery at a central whose store keeps package
/// content (PostgreSQL): no file holds it, so no path is shown.
pub const STORED_PACKAGE_REF: &str = "postgres:sha256:";

/// Call `each(location, parsed)` for every record of a JSON array file, JSON Lines file or
/// object file (TAO's entity details, its sync request bodies: [`crate::limits::Layout`]),
/// streamed one record at a time (see [`crate::limits::Records`]). A record that is not
/// JSON or breaks a limit is passed as `Err(reason)`, so callers choose to stop or go on; a
/// broken file ends after its reason was passed on. The file, its bytes and its records are
/// reported to `progress`.
pub fn for_each_record(
    path: &Path,
    limits: &crate::limits::Limits,
    progress: &dyn Progress,
    mut each: impl FnMut(&str, std::result::Result<Value, String>) -> Result<()>,
) -> Result<()> {
    for_each_keyed_record(path, limits, progress, |at, parsed| {
        each(at.location, parsed)
    })
}

/// Where a record was read: its location for messages, the member name it was filed under
/// in an object file (an entity URI, an execution id), and how the file holds its records.
#[derive(Debug, Clone, Copy)]
pub struct RecordAt<'a> {
    pub location: &'a str,
    pub key: Option<&'a str>,
    pub mode: Option<crate::limits::Mode>,
}

/// [`for_each_record`], telling each record where it was read.
pub fn for_each_keyed_record(
    path: &Path,
    limits: &crate::limits::Limits,
    progress: &dyn Progress,
    mut each: impl FnMut(RecordAt<'_>, std::result::Result<Value, String>) -> Result<()>,
) -> Result<()> {
    for_each_split(path, limits, progress, |at, split| {
        each(at, crate::limits::parse_split(split))
    })
}

/// [`for_each_keyed_record`] with each record's text as split from the file, not parsed yet
/// (for readers that parse it their own way).
pub fn for_each_split(
    path: &Path,
    limits: &crate::limits::Limits,
    progress: &dyn Progress,
    mut each: impl FnMut(RecordAt<'_>, crate::limits::Split) -> Result<()>,
) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::input(path, &e))?;
    progress.file(path, file.metadata().ok().map(|m| m.len()));
    // Large enough to see an object file's first member name (an entity URI) at once.
    let reader = BufReader::with_capacity(64 << 10, Reading::new(file, progress));
    let mut records = crate::limits::Records::new(reader, *limits);
    while let Some((loc, split)) = records.next_record().map_err(|e| Error::input(path, &e))? {
        progress.advance(1, 0);
        let at = RecordAt {
            location: &loc,
            key: records.key(),
            mode: records.mode(),
        };
        each(at, split)?;
    }
    Ok(())
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
        // TAO's entity details carry no type: id (or uri) and checksum instead.
        if has("properties") && ["type", "id", "uri", "checksum"].iter().any(|k| has(k)) {
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

/// The canonical form of an entity's properties that its checksum is taken over: excluded
/// properties removed, keys in sorted order, the values of a multi-valued property sorted
/// (TAO's multi-values are sets: their order carries no meaning). Canonical properties are
/// their own canonical form.
pub fn canonical(properties: &Map<String, Value>, excluded: &BTreeSet<&str>) -> Map<String, Value> {
    let mut kept: Vec<(&String, &Value)> = properties
        .iter()
        .filter(|(k, _)| !excluded.contains(k.as_str()))
        .collect();
    kept.sort_by(|a, b| a.0.cmp(b.0));
    kept.into_iter()
        .map(|(k, v)| {
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
            (k.clone(), v)
        })
        .collect()
}

/// The change-detection checksum: SHA-256 over the JSON text of the [`canonical`] properties.
pub fn checksum(properties: &Map<String, Value>, excluded: &BTreeSet<&str>) -> String {
    let canon = canonical(properties, excluded);
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

/// How `load` reads its files (`courier load --type --packages`).
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The entity type of records that carry none (TAO's entity details); without it, each
    /// such record's type is told from its properties ([`crate::tao::infer_type`]).
    pub kind: Option<String>,
    /// The folder TAO's package file references (`file://synchronisation/...`) are resolved
    /// against; by default the folder of the file naming them.
    pub packages: Option<PathBuf>,
}

/// Central: load entity files and folders, all or nothing.
pub fn load(site: &Site, paths: &[PathBuf]) -> Result<LoadReport> {
    load_with(site, paths, &LoadOptions::default())
}

/// Central: load entity files and folders, all or nothing, read as `opts` says. Files are
/// JSON Lines or JSON arrays of `{"type", "id", "properties"}`, or TAO's entity details
/// (an object keyed by URI of `{id|uri, checksum, properties}`).
pub fn load_with(site: &Site, paths: &[PathBuf], opts: &LoadOptions) -> Result<LoadReport> {
    site.require(Role::Central)?;
    if let Some(kind) = opts.kind.as_deref().filter(|k| !TYPES.contains(k)) {
        return Err(Error::Usage {
            what: format!("unknown type '{kind}'; types are {}", TYPES.join(", ")),
        });
    }
    let files = crate::fs::expand_paths(paths, &["jsonl", "json"])?;
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
    let mut store = site.store()?;
    let tx = store.begin()?;
    let mut loading = Loading::new(site, &tx)?;
    load_files(site, &files, opts, &mut warnings, &mut loading)?;
    let (report, records) = loading.finish(warnings)?;
    let n = tx.add_history(NewHistory {
        action: "load",
        status: "success",
        counts: json!({"created": report.created, "updated": report.updated, "unchanged": report.unchanged}),
        report: format!(
            "loaded {records} record(s) from {}",
            crate::fs::files_named(&files)
        ),
        ..Default::default()
    })?;
    if n != loading.history_n {
        return Err(Error::Internal(format!(
            "load: the history row is {n}, not the one its entities were filed under"
        )));
    }
    tx.commit()?;
    Ok(report)
}

/// Read, check and store every record of `files` in the open transaction, one at a time (a bad
/// record refuses the whole load: the transaction is dropped); files without records and
/// checksums other than TAO's add to `warnings`.
fn load_files(
    site: &Site,
    files: &[PathBuf],
    opts: &LoadOptions,
    warnings: &mut Vec<String>,
    loading: &mut Loading<'_, '_, '_>,
) -> Result<()> {
    let mut checked_packages: HashMap<PathBuf, String> = HashMap::new();
    let p = site.progress();
    p.files(files.len() as u64);
    for file in files {
        let before = loading.records;
        let mut sums = ChecksumTally::default();
        for_each_keyed_record(file, &site.config.settings.limits, p, |at, v| {
            let loc = at.location;
            let bad = |reason: String| Error::BadRecord {
                path: file.clone(),
                record: loc.to_string(),
                reason: format!("{reason}; nothing was loaded"),
            };
            let v = v.map_err(bad)?;
            RecordKind::expect(RecordKind::Entity, file, loc, &v)?;
            let (kind, id, mut props) = read_entity(&v, at.key, opts, &mut sums).map_err(bad)?;
            let package = match kind.as_str() {
                "delivery" => {
                    let at = PackageAt {
                        file,
                        delivery: &id,
                        opts,
                    };
                    Some(
                        stage_package(&at, &mut props, &mut checked_packages, warnings)
                            .map_err(bad)?,
                    )
                }
                _ => None,
            };
            loading.store(Staged {
                kind,
                id,
                props,
                package,
            })
        })?;
        if loading.records == before {
            warnings.push(empty_file_warning(file, "entities in TAO's wire shape"));
        }
        warnings.extend(sums.warning(file));
    }
    Ok(())
}

/// The history row a load files its entities under before writing it: the next one.
fn next_history_n(tx: &Tx<'_>) -> Result<i64> {
    let last = match tx.history_head()? {
        Some(head) => head.n,
        None => tx.history_start()?.row,
    };
    Ok(last + 1)
}

/// A load under way: records go into the transaction as they are read; only what is needed
/// after the last record is kept (eligibility ids, the packages to place).
struct Loading<'s, 't, 'c> {
    site: &'s Site,
    tx: &'t Tx<'c>,
    /// The history row the entities are filed under ([`next_history_n`]).
    history_n: i64,
    report: LoadReport,
    records: u64,
    eligibilities: Vec<String>,
    /// Packages to place before commit, by hash: the file read.
    packages: BTreeMap<String, PathBuf>,
}

impl<'s, 't, 'c> Loading<'s, 't, 'c> {
    fn new(site: &'s Site, tx: &'t Tx<'c>) -> Result<Self> {
        Ok(Loading {
            site,
            tx,
            history_n: next_history_n(tx)?,
            report: LoadReport::default(),
            records: 0,
            eligibilities: Vec::new(),
            packages: BTreeMap::new(),
        })
    }

    /// Store one record, counted as created, updated or unchanged by comparing checksums with
    /// what central held, and filed for `history --entity`.
    fn store(&mut self, s: Staged) -> Result<()> {
        let sum = checksum(&s.props, &excluded_set(&self.site.config.settings, &s.kind));
        let (bucket, action) = match self.tx.entity_checksum(&s.id)? {
            None => (&mut self.report.created, "created"),
            Some(c) if c == sum => (&mut self.report.unchanged, "touched"),
            Some(_) => (&mut self.report.updated, "updated"),
        };
        *bucket.entry(s.kind.clone()).or_default() += 1;
        self.tx
            .entity_history(self.history_n, &s.id, &s.kind, action)?;
        if s.kind == "eligibility" {
            self.eligibilities.push(s.id.clone());
        }
        let package = s.package.map(|(sha, src)| {
            self.packages.entry(sha.clone()).or_insert(src);
            sha
        });
        self.records += 1;
        self.tx.put_entity(&StoredEntity {
            id: s.id,
            kind: s.kind,
            checksum: sum,
            properties: s.props,
            sealed: None,
            sealed_names: vec![],
            package,
        })
    }

    /// Place the packages, warn about what the eligibilities name that central lacks; the
    /// report and the number of records stored.
    fn finish(&mut self, warnings: Vec<String>) -> Result<(LoadReport, u64)> {
        let mut report = std::mem::take(&mut self.report);
        for (sha, src) in &self.packages {
            if store_package(self.site, self.tx, sha, src)? {
                report.packages += 1;
            }
        }
        report.warnings = warnings;
        let mut seen = std::collections::HashSet::new();
        for id in self.eligibilities.iter().filter(|id| seen.insert(*id)) {
            if let Some(e) = self.tx.entity(id)? {
                report
                    .warnings
                    .extend(dangling_references(self.tx, id, &e.properties)?);
            }
        }
        Ok((report, self.records))
    }
}

/// Where a delivery's package reference is read: the loaded file, the delivery, the options.
struct PackageAt<'a> {
    file: &'a Path,
    delivery: &'a str,
    opts: &'a LoadOptions,
}

/// A delivery's test package: find the file its `OriginTestPackage` names, check it (once per
/// file: `checked` remembers the hashes; the check's warnings go to `warnings` then, naming
/// the delivery and the package), and make the property name the package by content hash.
/// Returns (hash, package file).
fn stage_package(
    at: &PackageAt<'_>,
    props: &mut Map<String, Value>,
    checked: &mut HashMap<PathBuf, String>,
    warnings: &mut Vec<String>,
) -> std::result::Result<(String, PathBuf), String> {
    let reference = props
        .get(ORIGIN_PACKAGE)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let pkg_path = package_file(at.file, &reference, at.opts)?;
    let sha = match checked.get(&pkg_path) {
        Some(sha) => sha.clone(),
        None => {
            let (sha, summary) = check_package_file(&pkg_path)
                .map_err(|e| format!("delivery package {reference}: {e}"))?;
            warnings.extend(summary.warnings.iter().map(|w| {
                format!(
                    "delivery {} (in {}): package {reference} ({}): {w}",
                    at.delivery,
                    at.file.display(),
                    pkg_path.display()
                )
            }));
            checked.insert(pkg_path.clone(), sha.clone());
            sha
        }
    };
    props.insert(
        ORIGIN_PACKAGE.into(),
        Value::String(format!("{PACKAGE_REF}{sha}")),
    );
    Ok((sha, pkg_path))
}

/// One entity record as `load` stores it: (type, id, properties). Courier's own shape is
/// checked against entity.schema.json as it is; TAO's entity details are given their type
/// (`--type`, else told from the properties), checked the same way, and their checksum
/// compared with TAO's computation.
fn read_entity(
    v: &Value,
    key: Option<&str>,
    opts: &LoadOptions,
    sums: &mut ChecksumTally,
) -> std::result::Result<(String, String, Map<String, Value>), String> {
    let entity = match crate::tao::EntityDetails::read(v, &TYPES)? {
        None => {
            crate::schema::check("entity", v)?;
            if let Some(kind) = opts.kind.as_deref().filter(|k| v["type"] != *k) {
                return Err(format!(
                    "its type is {}, and --type says {kind}",
                    v["type"].as_str().unwrap_or_default()
                ));
            }
            v.clone()
        }
        Some(tao) => {
            if let Some(key) = key.filter(|k| *k != tao.id) {
                return Err(format!(
                    "filed under {:?} but its id is {:?}",
                    crate::limits::quote(key),
                    crate::limits::quote(&tao.id)
                ));
            }
            let kind = match &opts.kind {
                Some(k) => k.clone(),
                None => crate::tao::infer_type(&tao.properties)
                    .ok_or_else(|| {
                        format!(
                            "its entity type cannot be told from its properties (rdf:type, user roles); pass --type TYPE ({})",
                            TYPES.join(", ")
                        )
                    })?
                    .to_string(),
            };
            sums.add(&tao);
            let entity = json!({"type": kind, "id": tao.id, "properties": tao.properties});
            crate::schema::check("entity", &entity)?;
            entity
        }
    };
    let kind = entity["type"].as_str().unwrap_or_default().to_string();
    let id = entity["id"].as_str().unwrap_or_default().to_string();
    let props = entity["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    Ok((kind, id, props))
}

/// The checksums TAO's records of one file carried, compared with TAO's computation.
#[derive(Debug, Default)]
struct ChecksumTally {
    matched: u64,
    differ: Vec<String>,
}

impl ChecksumTally {
    fn add(&mut self, e: &crate::tao::EntityDetails) {
        use crate::tao::ChecksumCheck;
        match crate::tao::check_checksum(e.checksum.as_deref(), &e.properties) {
            ChecksumCheck::Matches => self.matched += 1,
            ChecksumCheck::Differs => self.differ.push(e.id.clone()),
            ChecksumCheck::Unverifiable => {}
        }
    }

    /// The warning for a file whose records' checksums differ from TAO's computation.
    fn warning(&self, file: &Path) -> Option<String> {
        let first = self.differ.first()?;
        let n = self.differ.len();
        Some(format!(
            "{}: {n} record(s) carry a checksum other than TAO's (md5 of the serialized properties), first {first}; they were loaded as they are: check that the file was not edited after TAO wrote it",
            file.display()
        ))
    }
}

/// The package file a delivery names: TAO's file reference under `--packages` (default: the
/// loaded file's folder), or a path relative to the loaded file. The error names the paths
/// tried and what they were resolved against.
fn package_file(
    file: &Path,
    reference: &str,
    opts: &LoadOptions,
) -> std::result::Result<PathBuf, String> {
    use crate::tao::PackageRef;
    let parsed = PackageRef::parse(reference)?;
    let dir = file.parent().unwrap_or(Path::new("."));
    let root = opts.packages.as_deref().unwrap_or(dir);
    let tried = parsed.candidates(dir, root);
    if let Some(found) = tried.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let against = match (&parsed, &opts.packages) {
        (PackageRef::Path(_), _) => format!("relative to {}, the folder of the loaded file", dir.display()),
        (PackageRef::Tao { .. }, Some(_)) => format!("TAO's file reference resolved against --packages {}", root.display()),
        (PackageRef::Tao { .. }, None) => format!(
            "TAO's file reference resolved against {}, the folder of the loaded file; pass --packages DIR for the folder holding TAO's file systems",
            root.display()
        ),
    };
    Err(format!(
        "delivery package {reference}: No such file: tried {} ({against})",
        tried
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
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

/// Check a package file: its SHA-256 and what the check found (warnings included).
pub fn check_package_file(path: &Path) -> Result<(String, crate::package::PackageSummary)> {
    let file = File::open(path).map_err(|e| Error::input(path, &e))?;
    let summary = crate::package::check_package(BufReader::new(file)).map_err(|problem| {
        Error::BadPackage {
            path: path.to_path_buf(),
            problem,
        }
    })?;
    let mut f = File::open(path).at(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).at(path)?;
    Ok((hex::encode(h.finalize()), summary))
}

/// Keep a checked package, content-addressed: in the store when it keeps package content
/// (PostgreSQL, in this transaction), else as a file in the home. Returns whether it is new.
fn store_package(site: &Site, tx: &Tx<'_>, sha: &str, src: &Path) -> Result<bool> {
    let known = tx.package_known(sha)?;
    if tx.keeps_package_content() {
        let mut from = File::open(src).at(src)?;
        let size = tx.put_package_content(sha, &mut from, src)?;
        tx.add_package(sha, size, &file_name_of(src))?;
        return Ok(!known);
    }
    let dest = site.package_path(sha);
    if !dest.exists() {
        let mut from = File::open(src).at(src)?;
        let (tmp, got, _) = spool_package(site, &mut from, src)?;
        if got != sha {
            return Err(Error::ChangedWhileReading {
                path: src.to_path_buf(),
            });
        }
        crate::failpoint::hit("package.place")?;
        tmp.persist(&dest).map_err(|e| Error::io(&dest, e.error))?;
    }
    let size = std::fs::metadata(&dest).at(&dest)?.len();
    tx.add_package(sha, size, &file_name_of(src))?;
    Ok(!known)
}

/// The name a package file had where it was loaded from.
fn file_name_of(src: &Path) -> String {
    src.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Stream a package into a temporary file in the packages folder, hashing it on the way and
/// flushing it to disk: (file, SHA-256, size). `origin` names the source in errors.
pub fn spool_package(
    site: &Site,
    from: &mut dyn std::io::Read,
    origin: &Path,
) -> Result<(tempfile::NamedTempFile, String, u64)> {
    let mut tmp = crate::fs::temp_beside(&site.package_path("incoming"))?;
    crate::failpoint::hit("package.spool")?;
    let mut hashing = crate::crypto::HashingWriter::new(tmp.as_file_mut());
    std::io::copy(from, &mut hashing).at(origin)?;
    let (sha256, size) = hashing.finish();
    crate::failpoint::hit("package.fsync")?;
    tmp.as_file().sync_all().at(tmp.path())?;
    Ok((tmp, sha256, size))
}

/// Central: remove entities by id, all or nothing.
pub fn remove(site: &Site, ids: &[String]) -> Result<usize> {
    site.require(Role::Central)?;
    let mut store = site.store()?;
    let tx = store.begin()?;
    let mut kinds = Vec::with_capacity(ids.len());
    for id in ids {
        let kind = tx.entity_kind(id)?;
        match kind {
            Some(kind) if tx.delete_entity(id)? => kinds.push(kind),
            _ => {
                return Err(Error::Usage {
                    what: format!("no entity with id {id}; nothing was removed"),
                })
            }
        }
    }
    let n = tx.add_history(NewHistory {
        action: "remove",
        status: "success",
        counts: json!({"removed": ids.len()}),
        report: format!("removed {} entity(ies): {}", ids.len(), ids.join(" ")),
        ..Default::default()
    })?;
    for (id, kind) in ids.iter().zip(&kinds) {
        tx.entity_history(n, id, kind, "deleted")?;
    }
    if tx.keeps_package_content() {
        // The database does not keep what no delivery uses (a SQLite central keeps its
        // package files, as before).
        tx.drop_unused_packages()?;
    }
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
    let centers: Vec<ScopeEntry> = load_type("test-center")?
        .into_iter()
        .filter(|c| values(&c.properties, ORG_ID).contains(&org))
        .collect();
    let center_ids: BTreeSet<&str> = centers.iter().map(|c| c.id.as_str()).collect();
    let mut wanted = Wanted::new();
    for c in &centers {
        want(&mut wanted, "administrator", &c.properties, CENTER_ADMIN);
        want(&mut wanted, "proctor", &c.properties, CENTER_PROCTOR);
    }
    want_staff_linked_to(tx, &center_ids, &mut wanted)?;
    let eligibilities: Vec<ScopeEntry> = load_type("eligibility")?
        .into_iter()
        .filter(|e| {
            values(&e.properties, ELIG_CENTER)
                .iter()
                .any(|c| center_ids.contains(c))
        })
        .collect();
    for e in &eligibilities {
        want(&mut wanted, "delivery", &e.properties, ELIG_DELIVERY);
        want(&mut wanted, "test-taker", &e.properties, ELIG_TAKER);
    }
    let mut out = centers.clone();
    for kind in ["administrator", "proctor", "test-taker"] {
        out.extend(wanted_of(tx, &wanted, kind)?);
    }
    out.extend(eligibilities);
    out.extend(wanted_of(tx, &wanted, "delivery")?);
    Ok(out)
}

/// The ids a centre's scope wants, by entity type.
type Wanted = BTreeMap<&'static str, BTreeSet<String>>;

/// Want, as entities of `kind`, the ids property `key` of `props` names.
fn want(wanted: &mut Wanted, kind: &'static str, props: &Map<String, Value>, key: &str) {
    wanted
        .entry(kind)
        .or_default()
        .extend(values(props, key).into_iter().map(String::from));
}

/// Want the administrators and proctors that link themselves to one of `center_ids`: TAO
/// links them from the user to the centre too (the same properties, on the user).
fn want_staff_linked_to(
    tx: &Tx<'_>,
    center_ids: &BTreeSet<&str>,
    wanted: &mut Wanted,
) -> Result<()> {
    for kind in ["administrator", "proctor"] {
        for u in tx.entities_of_type(kind)? {
            let linked = [CENTER_ADMIN, CENTER_PROCTOR]
                .iter()
                .flat_map(|p| values(&u.properties, p))
                .any(|c| center_ids.contains(c));
            if linked {
                wanted.entry(kind).or_default().insert(u.id);
            }
        }
    }
    Ok(())
}

/// The wanted entities of `kind` that central holds as that kind, in id order.
fn wanted_of(tx: &Tx<'_>, wanted: &Wanted, kind: &str) -> Result<Vec<ScopeEntry>> {
    let mut found = Vec::new();
    for id in wanted.get(kind).into_iter().flatten() {
        if let Some(e) = tx
            .entity(id)?
            .map(ScopeEntry::from)
            .filter(|e| e.kind == kind)
        {
            found.push(e);
        }
    }
    Ok(found)
}

/// Trim a centre's scope to itself: in every property, a value naming an entity central
/// holds that is not in this scope is dropped (a test taker's `UserAssignment` lists its
/// eligibilities in every organisation; a centre gets only its own). A property trimmed
/// to nothing is an empty list; `UserAssignment` is always a list, as TAO sends it. The
/// checksum of a trimmed entity is computed again (with `settings`' excluded properties).
pub fn trim_to_scope(
    tx: &Tx<'_>,
    mut scope: Vec<ScopeEntry>,
    settings: &Settings,
) -> Result<Vec<ScopeEntry>> {
    let in_scope: BTreeSet<String> = scope.iter().map(|e| e.id.clone()).collect();
    let mut held: HashMap<String, bool> = HashMap::new();
    for e in &mut scope {
        let mut changed = false;
        for (key, value) in e.properties.iter_mut() {
            let list = match value {
                Value::String(s) => vec![s.clone()],
                Value::Array(items) if items.iter().all(Value::is_string) => items
                    .iter()
                    .filter_map(|i| i.as_str().map(String::from))
                    .collect(),
                _ => continue,
            };
            let mut kept = Vec::with_capacity(list.len());
            for v in list.iter() {
                // Entity ids are URIs: other values (names, logins) need no look-up.
                let foreign = v.contains(':')
                    && !in_scope.contains(v)
                    && match held.get(v) {
                        Some(h) => *h,
                        None => {
                            let h = tx.entity_checksum(v)?.is_some();
                            held.insert(v.clone(), h);
                            h
                        }
                    };
                if !foreign {
                    kept.push(Value::String(v.clone()));
                }
            }
            let always_list = key == crate::tao::USER_ASSIGNMENT;
            if kept.len() == list.len() && !(always_list && value.is_string()) {
                continue;
            }
            *value = match (value.is_string(), kept.len(), always_list) {
                (true, 1, false) => kept.remove(0),
                _ => Value::Array(kept),
            };
            changed = true;
        }
        if changed {
            e.checksum = checksum(&e.properties, &excluded_set(settings, &e.kind));
        }
    }
    Ok(scope)
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
                let shown = if tx.keeps_package_content() {
                    format!("{STORED_PACKAGE_REF}{sha}")
                } else {
                    let p = site.package_path(sha);
                    let p = std::path::absolute(&p).unwrap_or(p);
                    p.to_string_lossy().into_owned()
                };
                props.insert(ORIGIN_PACKAGE.into(), Value::String(shown));
            }
        }
        let mut entity = json!({"type": e.kind, "id": e.id});
        match (e.sealed, &key) {
            (Some(blob), Some(key)) => {
                let plain = crate::crypto::unseal(key, &blob)?;
                let personal: Map<String, Value> =
                    serde_json::from_slice(&plain).map_err(|err| Error::StoreDamaged {
                        path: site.store_path(),
                        what: format!("sealed properties of {}: {err}", entity["id"]),
                    })?;
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
