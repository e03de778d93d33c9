//! History archives (`history export`, `history verify-archive`, `history prune`): the
//! sync history written out as one signed, self-verifying tar file, checked anywhere with
//! the site's public certificate alone, and dropped from the store once archived.
//!
//! The file is a plain ustar archive (`tar tvf` lists it) whose every byte is checked: the
//! entries' headers are compared with the ones courier writes, their padding and the end
//! of the archive must be zeros, the entries' contents are named with their SHA-256 in a
//! manifest, and the manifest is signed with the site's key. docs/FORMAT.md §11 specifies it.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bundle::Bundle;
use crate::crypto::{self, Cert, HashingWriter};
use crate::error::{Error, IoContext, Result};
use crate::site::Site;
use crate::store::{ArchivedAction, HistoryRow};

/// The manifest's `format`.
pub const FORMAT: &str = "courier-history-archive/1";
const HISTORY: &str = "history.jsonl";
const ENTITIES: &str = "entity-history.jsonl";
const BUNDLES: &str = "bundles/";
const MANIFEST: &str = "manifest.json";
const SIGNATURE: &str = "manifest.json.sig";
const BLOCK: usize = 512;
const MANIFEST_MAX: u64 = 16 << 20;
const SIGNATURE_MAX: u64 = 64 << 10;
/// The longest line of history.jsonl or entity-history.jsonl read.
const LINE_MAX: u64 = 4 << 20;

/// The site whose history an archive holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveSite {
    pub fingerprint: String,
    pub role: String,
    pub org_id: Option<String>,
}

/// The stretch of the hash chain an archive holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSpan {
    pub first_row: i64,
    pub last_row: i64,
    pub rows: i64,
    /// The `prev_hash` of the first row: the hash the chain continues from.
    pub start_hash: String,
    /// The hash of the last row.
    pub end_hash: String,
}

/// One entry of the archive named in its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryDigest {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// manifest.json (schemas/history-archive-manifest.schema.json).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub site: ArchiveSite,
    pub created: String,
    /// The `--before` bound, when one was given.
    pub before: Option<String>,
    pub history: ChainSpan,
    pub entity_actions: u64,
    /// Every entry before the manifest, in archive order.
    pub entries: Vec<EntryDigest>,
}

/// What `history export` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Exported {
    pub file: PathBuf,
    pub bytes: u64,
    pub history: ChainSpan,
    pub entity_actions: u64,
    /// Bundle files carried under `bundles/`.
    pub bundles: usize,
    /// Archive folders or files that could not be read (left out; the export went on).
    pub warnings: Vec<String>,
    pub manifest_sha256: String,
}

/// What `history verify-archive` found (schemas/history-archive-check.schema.json).
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveCheck {
    pub file: PathBuf,
    pub site: ArchiveSite,
    pub created: String,
    pub before: Option<String>,
    pub history: ChainSpan,
    pub entity_actions: u64,
    pub bundles: usize,
    pub manifest_sha256: String,
    /// The hash of the row asked for while checking (prune), when the archive holds it.
    #[serde(skip)]
    pub hash_at: Option<String>,
    /// The `bundles/NAME` entries as the manifest lists them.
    #[serde(skip)]
    pub held: Vec<EntryDigest>,
}

fn bad(path: &Path, what: impl Into<String>) -> Error {
    Error::BadArchive {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// The header courier writes for an entry: the only one a reader accepts.
pub fn entry_header(name: &str, size: u64) -> Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name)
        .map_err(|e| Error::Internal(format!("archive entry {name}: {e}")))?;
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Ok(h)
}

/// The `--before` text as a bound, or a usage error naming the forms accepted.
pub fn before_bound(before: &str) -> Result<String> {
    crate::time::date_bound(before).ok_or_else(|| Error::Usage {
        what: format!(
            "--before {before:?}: give a date as YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)"
        ),
    })
}

// ---- writing ------------------------------------------------------------------------

/// `history export`: write the history's rows (all, or those written before `before`),
/// what they did to entities, and the bundle files of those rows found in the folders
/// `import --archive` used or in `bundle_dirs`, into `out`, signed with the site's key.
/// The rows are spooled to an unnamed temporary file beside `out`, never held in memory;
/// bundle files are copied through.
pub fn export(
    site: &Site,
    out: &Path,
    before: Option<&str>,
    bundle_dirs: &[PathBuf],
    force: bool,
) -> Result<Exported> {
    crate::site::check_output(out, force)?;
    let before = before.map(before_bound).transpose()?;
    let key = site.secret_key()?;
    let mut store = site.store()?;
    let tx = store.read()?;
    let through = last_row_to_export(&tx, before.as_deref())?;
    let tmp = crate::fs::temp_beside(out)?;
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tar = tar::Builder::new(BufWriter::new(tmp.as_file()));
    let mut ids = RowIds::new();
    let (spool, history_entry, history) = spool_rows(&tx, through, dir, &mut ids)?;
    append(&mut tar, &history_entry, spool, out)?;
    let (spool, entities_entry, entity_actions) = spool_actions(&tx, through, dir)?;
    append(&mut tar, &entities_entry, spool, out)?;
    let folders = bundle_folders(&tx, bundle_dirs)?;
    drop(tx);
    let mut warnings = Vec::new();
    let mut entries = vec![history_entry, entities_entry];
    for b in find_bundles(&folders, &ids, &mut warnings) {
        entries.extend(append_bundle(&mut tar, &b, out, &mut warnings)?);
    }
    let cert = key.public();
    let manifest = Manifest {
        format: FORMAT.into(),
        site: ArchiveSite {
            fingerprint: crypto::fingerprint(&cert),
            role: site.role().as_str().to_string(),
            org_id: site.config.org_id.clone(),
        },
        created: crate::time::now_rfc3339(),
        before,
        history,
        entity_actions,
        entries,
    };
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(Error::Encode)?;
    let signature = crypto::sign_detached(&key, &bytes)?;
    append_bytes(&mut tar, MANIFEST, &bytes, out)?;
    append_bytes(&mut tar, SIGNATURE, &signature, out)?;
    let mut w = tar.into_inner().at(out)?;
    w.flush().at(out)?;
    drop(w);
    tmp.as_file().sync_all().at(out)?;
    let size = tmp.as_file().metadata().at(out)?.len();
    tmp.persist(out).map_err(|e| Error::io(out, e.error))?;
    Ok(Exported {
        file: out.to_path_buf(),
        bytes: size,
        history: manifest.history,
        entity_actions: manifest.entity_actions,
        bundles: manifest.entries.len() - 2,
        warnings,
        manifest_sha256: sha256_hex(&bytes),
    })
}

/// The last row an export holds: the last before the bound, or the last of all.
fn last_row_to_export(tx: &crate::store::Tx<'_>, before: Option<&str>) -> Result<i64> {
    let through = match before {
        Some(date) => tx.history_prefix_before(date)?,
        None => tx.history_head()?.map(|h| h.n),
    };
    through.ok_or_else(|| Error::Usage {
        what: match before {
            Some(date) => {
                format!("no history row here was written before {date}: nothing to archive")
            }
            None => "the history here is empty: nothing to archive".into(),
        },
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    let mut w = HashingWriter::new(std::io::sink());
    let _ = w.write_all(bytes);
    w.finish().0
}

/// Write what `fill` writes into an unnamed file in `dir`; returns the file rewound and
/// the entry's digest.
fn spool(
    dir: &Path,
    name: &str,
    fill: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<(File, EntryDigest)> {
    let mut file = tempfile::tempfile_in(dir).at(dir)?;
    let mut w = HashingWriter::new(BufWriter::new(&file));
    fill(&mut w)?;
    w.flush().at(dir)?;
    let (sha256, size) = w.finish();
    file.rewind().at(dir)?;
    let entry = EntryDigest {
        name: name.into(),
        size,
        sha256,
    };
    Ok((file, entry))
}

/// One value as one JSON line.
fn write_line(w: &mut dyn Write, value: &impl Serialize, dir: &Path) -> Result<()> {
    serde_json::to_writer(&mut *w, value).map_err(Error::Encode)?;
    w.write_all(b"\n").at(dir)
}

/// The bundle (or set) ids that history rows name, each with the first row naming it.
type RowIds = HashMap<String, i64>;

/// history.jsonl: the rows up to `through`, and the span of the chain they are; the ids
/// they name go into `ids`.
fn spool_rows(
    tx: &crate::store::Tx<'_>,
    through: i64,
    dir: &Path,
    ids: &mut RowIds,
) -> Result<(File, EntryDigest, ChainSpan)> {
    let start = tx.history_start()?;
    let mut span = ChainSpan {
        first_row: 0,
        last_row: 0,
        rows: 0,
        start_hash: start.hash,
        end_hash: String::new(),
    };
    let (file, entry) = spool(dir, HISTORY, |w| {
        tx.each_history_row(Some(through), &mut |row| {
            if span.rows == 0 {
                span.first_row = row.n;
                span.start_hash = row.prev_hash.clone();
            }
            span.rows += 1;
            span.last_row = row.n;
            if let Some(id) = &row.bundle_id {
                ids.entry(id.clone()).or_insert(row.n);
            }
            write_line(w, &row, dir)?;
            span.end_hash = row.hash;
            Ok(true)
        })
    })?;
    Ok((file, entry, span))
}

/// entity-history.jsonl: what the rows up to `through` did to entities.
fn spool_actions(
    tx: &crate::store::Tx<'_>,
    through: i64,
    dir: &Path,
) -> Result<(File, EntryDigest, u64)> {
    let mut count = 0;
    let (file, entry) = spool(dir, ENTITIES, |w| {
        tx.each_archived_action(through, &mut |a| {
            count += 1;
            write_line(w, &a, dir)
        })
    })?;
    Ok((file, entry, count))
}

/// The folders to look for bundle files in: those `import --archive` moved files into,
/// then those given, each once.
fn bundle_folders(tx: &crate::store::Tx<'_>, given: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut folders = crate::import::archive_folders(tx)?;
    for dir in given {
        let dir = dir
            .canonicalize()
            .or_else(|_| std::path::absolute(dir))
            .at(dir)?;
        if !folders.contains(&dir) {
            folders.push(dir);
        }
    }
    Ok(folders)
}

/// A bundle file to carry: the first row naming it, its entry's name (after `bundles/`).
struct FoundBundle {
    row: i64,
    name: String,
    path: PathBuf,
    bundle_id: String,
}

/// The files of a folder (not hidden, not folders), by name.
fn files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let path = e?.path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if !hidden && std::fs::metadata(&path)?.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The bundle id and set id in a bundle file's clear header (no key needed).
fn header_ids(path: &Path) -> Result<(String, String)> {
    let mut file = File::open(path).map_err(|e| Error::input(path, &e))?;
    let len = file.metadata().at(path)?.len();
    let h = Bundle::read_from(path, &mut file, len)?.header;
    Ok((h.bundle_id, h.set.id))
}

/// The bundle files in `folders` whose bundle or set a row in `ids` names, ordered by
/// that row, then by name, each given an entry name of its own (`NAME.2`... after the
/// first). A folder or file that cannot be read, or a file that is not a bundle, is a
/// warning and left out.
fn find_bundles(folders: &[PathBuf], ids: &RowIds, warnings: &mut Vec<String>) -> Vec<FoundBundle> {
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    for dir in folders {
        let files = files_in(dir).unwrap_or_else(|e| {
            warnings.push(format!(
                "{}: bundle folder not read ({e}); the bundles in it are not in the archive",
                dir.display()
            ));
            Vec::new()
        });
        for path in files.into_iter().filter(|p| seen.insert(p.clone())) {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                warnings.push(format!(
                    "{}: the name is not UTF-8; left out of the archive",
                    path.display()
                ));
                continue;
            };
            match header_ids(&path) {
                Ok((id, set)) => {
                    if let Some(row) = ids.get(&id).or_else(|| ids.get(&set)) {
                        let name = name.to_string();
                        found.push(FoundBundle {
                            row: *row,
                            name,
                            path,
                            bundle_id: id,
                        });
                    }
                }
                Err(e) => warnings.push(format!("{e}; left out of the archive")),
            }
        }
    }
    found.sort_by(|a, b| (a.row, &a.name, &a.path).cmp(&(b.row, &b.name, &b.path)));
    let mut names = HashSet::new();
    for b in &mut found {
        let stem = b.name.clone();
        for n in 2.. {
            if names.insert(b.name.clone()) {
                break;
            }
            b.name = format!("{stem}.{n}");
        }
    }
    found
}

/// Copy one bundle file into the archive as `bundles/NAME`, streamed and hashed. A file
/// that can no longer be read, or now holds another bundle, is a warning and left out.
fn append_bundle<W: Write>(
    tar: &mut tar::Builder<W>,
    b: &FoundBundle,
    out: &Path,
    warnings: &mut Vec<String>,
) -> Result<Option<EntryDigest>> {
    let name = format!("{BUNDLES}{}", b.name);
    let header = match entry_header(&name, 0) {
        Ok(_) => File::open(&b.path).map_err(|e| Error::input(&b.path, &e)),
        Err(_) => Err(Error::InputUnreadable {
            path: b.path.clone(),
            what: "its name is too long for a tar entry".into(),
        }),
    }
    .and_then(|mut file| {
        let len = file.metadata().at(&b.path)?.len();
        let h = Bundle::read_from(&b.path, &mut file, len)?.header;
        file.rewind().at(&b.path)?;
        Ok((file, len, h.bundle_id))
    });
    let (file, len) = match header {
        Ok((file, len, id)) if id == b.bundle_id => (file, len),
        Ok(_) => {
            warnings.push(format!("{}: it changed while the archive was written (another bundle now); left out of the archive", b.path.display()));
            return Ok(None);
        }
        Err(e) => {
            warnings.push(format!("{e}; left out of the archive"));
            return Ok(None);
        }
    };
    let mut r = HashingReader::new(file.take(len));
    tar.append(&entry_header(&name, len)?, &mut r).at(out)?;
    let (sha256, read) = r.finish();
    if read != len {
        return Err(Error::InputUnreadable {
            path: b.path.clone(),
            what: "it was cut short while the archive was written; run history export again".into(),
        });
    }
    Ok(Some(EntryDigest {
        name,
        size: len,
        sha256,
    }))
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    e: &EntryDigest,
    from: impl Read,
    out: &Path,
) -> Result<()> {
    tar.append(&entry_header(&e.name, e.size)?, from).at(out)
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
    out: &Path,
) -> Result<()> {
    tar.append(&entry_header(name, bytes.len() as u64)?, bytes)
        .at(out)
}

// ---- reading ------------------------------------------------------------------------

/// The archive's tar stream, read block by block with the offset kept for messages.
struct Walk<'p> {
    r: BufReader<File>,
    offset: u64,
    path: &'p Path,
}

impl Walk<'_> {
    /// The next 512-byte block; `None` at the end of the file.
    fn block(&mut self) -> Result<Option<[u8; BLOCK]>> {
        let mut b = [0u8; BLOCK];
        let mut got = 0;
        while got < BLOCK {
            match self.r.read(&mut b[got..]).at(self.path)? {
                0 if got == 0 => return Ok(None),
                0 => {
                    return Err(bad(
                        self.path,
                        format!("cut short at byte {}", self.offset + got as u64),
                    ))
                }
                n => got += n,
            }
        }
        self.offset += BLOCK as u64;
        Ok(Some(b))
    }

    /// The next entry's name and size, its header checked to be the one courier writes;
    /// `None` at the end of the archive (two zero blocks, then nothing).
    fn next_entry(&mut self) -> Result<Option<(String, u64)>> {
        let at = self.offset;
        let Some(block) = self.block()? else {
            return Err(bad(
                self.path,
                format!("cut short at byte {at}: the end of the archive is missing"),
            ));
        };
        if block.iter().all(|b| *b == 0) {
            let second = self.block()?;
            if !second.is_some_and(|b| b.iter().all(|b| *b == 0)) || self.block()?.is_some() {
                return Err(bad(self.path, format!("the end of the archive (byte {at}) is not two zero blocks and nothing after")));
            }
            return Ok(None);
        }
        let header = tar::Header::from_byte_slice(&block);
        let parsed = header
            .path()
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
            .zip(header.size().ok());
        let canonical = parsed
            .as_ref()
            .map(|(name, size)| entry_header(name, *size))
            .transpose()?;
        match (parsed, canonical) {
            (Some(entry), Some(h)) if h.as_bytes()[..] == block[..] => Ok(Some(entry)),
            _ => Err(bad(
                self.path,
                format!(
                    "the entry header at byte {at} is not one courier writes (altered or damaged)"
                ),
            )),
        }
    }

    /// The `size` bytes of the current entry, as a reader; [`Walk::end_entry`] afterwards.
    fn content(&mut self, size: u64) -> std::io::Take<&mut BufReader<File>> {
        (&mut self.r).take(size)
    }

    /// After an entry's content (`read` bytes of `size`): the padding must be zeros.
    fn end_entry(&mut self, name: &str, size: u64, read: u64) -> Result<()> {
        if read != size {
            return Err(bad(self.path, format!("cut short in entry {name}")));
        }
        self.offset += size;
        let pad = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        let mut zeros = [0u8; BLOCK];
        let zeros = &mut zeros[..pad as usize];
        self.r
            .read_exact(zeros)
            .map_err(|_| bad(self.path, format!("cut short after entry {name}")))?;
        if zeros.iter().any(|b| *b != 0) {
            return Err(bad(
                self.path,
                format!(
                    "the padding after entry {name} (byte {}) is not zeros",
                    self.offset
                ),
            ));
        }
        self.offset += pad;
        Ok(())
    }
}

/// The stage of an entry by its name (see [`may_follow`]).
fn stage(name: &str) -> Option<u8> {
    match name {
        HISTORY => Some(0),
        ENTITIES => Some(1),
        MANIFEST => Some(3),
        SIGNATURE => Some(4),
        _ => name
            .strip_prefix(BUNDLES)
            .filter(|rest| !rest.is_empty() && !rest.contains('/') && !rest.starts_with('.'))
            .map(|_| 2),
    }
}

/// The order of stages: history, entity actions, bundles (none or more), manifest, signature.
fn may_follow(last: Option<u8>, st: u8) -> bool {
    matches!(
        (last, st),
        (None, 0) | (Some(0), 1) | (Some(1) | Some(2), 2 | 3) | (Some(3), 4)
    )
}

/// A `bundles/NAME` entry's header's bundle and set ids, or why it is not a bundle.
type EntryIds = std::result::Result<(String, String), String>;

/// What the walk over the entries found, before the manifest is believed.
#[derive(Default)]
struct Seen {
    entries: Vec<EntryDigest>,
    span: Option<ChainSpan>,
    hash_at: Option<String>,
    entity_actions: u64,
    /// The bundle and set ids the history rows name.
    row_ids: HashSet<String>,
    /// Each `bundles/NAME` entry: its header's bundle and set ids, or why it is no bundle.
    bundles: Vec<(String, EntryIds)>,
    bundle_names: HashSet<String>,
    manifest: Vec<u8>,
    signature: Vec<u8>,
}

/// `history verify-archive`: check an archive with the site's public certificate alone.
pub fn verify(path: &Path, cert: &Cert) -> Result<ArchiveCheck> {
    check(path, cert, None)
}

/// Check every byte of the archive at `path` (see the module's notes), noting the hash
/// of row `want` when it holds it.
pub fn check(path: &Path, cert: &Cert, want: Option<i64>) -> Result<ArchiveCheck> {
    let file = File::open(path).map_err(|e| Error::input(path, &e))?;
    let mut walk = Walk {
        r: BufReader::new(file),
        offset: 0,
        path,
    };
    let mut seen = Seen::default();
    let mut last_stage = None;
    while let Some((name, size)) = walk.next_entry()? {
        let st = stage(&name)
            .filter(|st| may_follow(last_stage, *st))
            .ok_or_else(|| {
                let at = walk.offset - BLOCK as u64;
                bad(
                    path,
                    format!("entry {name} is not expected here (byte {at})"),
                )
            })?;
        last_stage = Some(st);
        read_entry(&mut walk, &mut seen, st, &name, size, want)?;
    }
    if last_stage != Some(4) {
        return Err(bad(path, "the manifest or its signature is missing"));
    }
    believe(path, cert, seen)
}

/// Read one entry's content into what is seen.
fn read_entry(
    walk: &mut Walk<'_>,
    seen: &mut Seen,
    st: u8,
    name: &str,
    size: u64,
    want: Option<i64>,
) -> Result<()> {
    let path = walk.path;
    let start = walk.offset;
    if st == 2 && !seen.bundle_names.insert(name.to_string()) {
        let at = start - BLOCK as u64;
        return Err(bad(path, format!("entry {name} comes twice (byte {at})")));
    }
    let mut hashed = HashingReader::new(walk.content(size));
    match st {
        0 => {
            let (span, hash_at) = check_chain(&mut hashed, path, want, &mut seen.row_ids)?;
            seen.span = Some(span);
            seen.hash_at = hash_at;
        }
        1 => {
            let range = seen
                .span
                .as_ref()
                .map_or(0..=0, |s| s.first_row..=s.last_row);
            seen.entity_actions = check_actions(&mut hashed, path, range)?;
        }
        3 | 4 => {
            let cap = if st == 3 { MANIFEST_MAX } else { SIGNATURE_MAX };
            if size > cap {
                return Err(bad(
                    path,
                    format!("entry {name} is larger than {cap} bytes"),
                ));
            }
            let into = if st == 3 {
                &mut seen.manifest
            } else {
                &mut seen.signature
            };
            hashed.read_to_end(into).at(path)?;
        }
        _ => {}
    }
    crypto::drain(&mut hashed).at(path)?;
    let (sha256, read) = hashed.finish();
    walk.end_entry(name, size, read)?;
    if st == 2 {
        let ids = entry_bundle_ids(path, start, size, name)?;
        seen.bundles.push((name.to_string(), ids));
    }
    if st < 3 {
        seen.entries.push(EntryDigest {
            name: name.to_string(),
            size,
            sha256,
        });
    }
    Ok(())
}

/// The bundle and set ids in the header of the bundle that entry `name` holds (`size`
/// bytes from byte `start` of the archive at `path`), or why it is not a bundle.
fn entry_bundle_ids(path: &Path, start: u64, size: u64, name: &str) -> Result<EntryIds> {
    let file = File::open(path).map_err(|e| Error::input(path, &e))?;
    let mut window = Window {
        file,
        start,
        len: size,
        pos: 0,
    };
    Ok(Bundle::read_from(Path::new(name), &mut window, size)
        .map(|b| (b.header.bundle_id, b.header.set.id))
        .map_err(|e| e.to_string()))
}

/// An entry's content inside the archive file, read as a file of its own.
struct Window {
    file: File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Read for Window {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let max = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if max == 0 {
            return Ok(0);
        }
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = self.file.read(&mut buf[..max])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Window {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the entry")
        })?;
        Ok(self.pos)
    }
}

/// A reader that keeps the SHA-256 and count of what passed through it.
struct HashingReader<R> {
    inner: R,
    hash: HashingWriter<std::io::Sink>,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hash: HashingWriter::new(std::io::sink()),
        }
    }

    fn finish(self) -> (String, u64) {
        self.hash.finish()
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Call `f` with each line of `r` (without its newline), numbered from 1; a line longer
/// than [`LINE_MAX`] or without its newline is refused.
fn each_line(
    r: impl Read,
    path: &Path,
    name: &str,
    mut f: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<()> {
    let mut r = BufReader::new(r);
    let mut line = Vec::new();
    for n in 1.. {
        line.clear();
        (&mut r)
            .take(LINE_MAX + 1)
            .read_until(b'\n', &mut line)
            .at(path)?;
        if line.is_empty() {
            return Ok(());
        }
        if line.pop() != Some(b'\n') {
            return Err(bad(
                path,
                format!("{name} line {n} is too long or not ended"),
            ));
        }
        f(n, &line)?;
    }
    Ok(())
}

/// Walk history.jsonl: every row's hash recomputed, each row continuing the one before;
/// returns the span and the hash of row `want` when held.
fn check_chain(
    r: impl Read,
    path: &Path,
    want: Option<i64>,
    ids: &mut HashSet<String>,
) -> Result<(ChainSpan, Option<String>)> {
    let mut span: Option<ChainSpan> = None;
    let mut hash_at = None;
    each_line(r, path, HISTORY, |line_no, line| {
        let row: HistoryRow = serde_json::from_slice(line).map_err(|e| {
            bad(
                path,
                format!("{HISTORY} line {line_no} is not a history row ({e})"),
            )
        })?;
        if row.computed_hash() != row.hash {
            return Err(bad(
                path,
                format!("history row {} does not match its hash", row.n),
            ));
        }
        match &mut span {
            None => {
                span = Some(ChainSpan {
                    first_row: row.n,
                    last_row: row.n,
                    rows: 1,
                    start_hash: row.prev_hash.clone(),
                    end_hash: row.hash.clone(),
                })
            }
            Some(s) => {
                if row.n != s.last_row + 1 || row.prev_hash != s.end_hash {
                    return Err(bad(
                        path,
                        format!(
                            "history row {} does not continue row {}: the chain is broken",
                            row.n, s.last_row
                        ),
                    ));
                }
                s.last_row = row.n;
                s.rows += 1;
                s.end_hash = row.hash.clone();
            }
        }
        if want == Some(row.n) {
            hash_at = Some(row.hash);
        }
        ids.extend(row.bundle_id);
        Ok(())
    })?;
    let span = span.ok_or_else(|| bad(path, format!("{HISTORY} holds no row")))?;
    Ok((span, hash_at))
}

/// Walk entity-history.jsonl: every line an entity action of a row in `rows`.
fn check_actions(r: impl Read, path: &Path, rows: std::ops::RangeInclusive<i64>) -> Result<u64> {
    let mut count = 0;
    each_line(r, path, ENTITIES, |line_no, line| {
        let action: ArchivedAction = serde_json::from_slice(line).map_err(|e| {
            bad(
                path,
                format!("{ENTITIES} line {line_no} is not an entity action ({e})"),
            )
        })?;
        if !rows.contains(&action.sync) {
            return Err(bad(path, format!("{ENTITIES} line {line_no} names history row {}, which the archive does not hold", action.sync)));
        }
        count += 1;
        Ok(())
    })?;
    Ok(count)
}

/// The walk is done: believe the manifest only once its signature verifies with `cert`,
/// then hold what was seen against it.
fn believe(path: &Path, cert: &Cert, seen: Seen) -> Result<ArchiveCheck> {
    let fingerprint = crypto::fingerprint(cert);
    crypto::verify_detached(cert, &seen.manifest, &seen.signature).map_err(|why| {
        bad(path, format!("the manifest is not signed by the certificate given ({fingerprint}): {why}; it is another site's archive, or it was altered"))
    })?;
    let doc: serde_json::Value = serde_json::from_slice(&seen.manifest)
        .map_err(|e| bad(path, format!("the manifest is not JSON ({e})")))?;
    crate::schema::check("history-archive-manifest", &doc).map_err(|e| {
        bad(
            path,
            format!("the manifest is not one courier writes ({e})"),
        )
    })?;
    let manifest: Manifest = serde_json::from_value(doc).map_err(|e| {
        bad(
            path,
            format!("the manifest is not one courier writes ({e})"),
        )
    })?;
    if manifest.site.fingerprint != fingerprint {
        return Err(bad(
            path,
            format!(
                "the manifest names site {}, not the certificate's {fingerprint}",
                manifest.site.fingerprint
            ),
        ));
    }
    if manifest.entries != seen.entries {
        return Err(bad(
            path,
            "the entries are not the ones the manifest lists (names, sizes or SHA-256 differ)",
        ));
    }
    if Some(&manifest.history) != seen.span.as_ref()
        || manifest.entity_actions != seen.entity_actions
    {
        return Err(bad(
            path,
            "the history rows are not the ones the manifest describes",
        ));
    }
    check_bundles(path, &seen)?;
    let held = seen
        .entries
        .iter()
        .filter(|e| e.name.starts_with(BUNDLES))
        .cloned()
        .collect();
    Ok(ArchiveCheck {
        held,
        file: path.to_path_buf(),
        site: manifest.site,
        created: manifest.created,
        before: manifest.before,
        history: manifest.history,
        entity_actions: manifest.entity_actions,
        bundles: seen.bundles.len(),
        manifest_sha256: sha256_hex(&seen.manifest),
        hash_at: seen.hash_at,
    })
}

/// Every `bundles/NAME` entry is a bundle file whose bundle (or the set it is a part of)
/// a history row of the archive names.
fn check_bundles(path: &Path, seen: &Seen) -> Result<()> {
    for (name, ids) in &seen.bundles {
        match ids {
            Err(why) => {
                return Err(bad(
                    path,
                    format!("entry {name} is not a bundle file ({why})"),
                ))
            }
            Ok((id, set)) if !seen.row_ids.contains(id) && !seen.row_ids.contains(set) => {
                return Err(bad(
                    path,
                    format!(
                        "entry {name} is bundle {id}, which no history row of the archive names"
                    ),
                ))
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

// ---- pruning ------------------------------------------------------------------------

/// What `history prune` did.
#[derive(Debug, Clone, Serialize)]
pub struct Pruned {
    /// Rows dropped (0: nothing before the date that the archive holds and the store still has).
    pub rows: i64,
    /// The rows dropped: `first_row..=last_row` (absent when none).
    pub first_row: Option<i64>,
    pub last_row: Option<i64>,
    /// The row the history now starts after.
    pub start_row: i64,
    /// The history row that records the prune.
    pub recorded_in: Option<i64>,
}

/// `history prune`: drop the rows written before `before` that the archive at `archived`
/// holds, once it verifies with this site's certificate. The history must be intact and
/// signed up to the cut; the cut becomes the chain's start, signed at once with the site's
/// key (which must unlock), so `history --verify` holds.
pub fn prune(site: &Site, before: &str, archived: &Path) -> Result<Pruned> {
    let date = before_bound(before)?;
    let intact = crate::anchor::verify(site)?;
    let not_intact = |what: String| Error::HistoryNotIntact {
        path: site.store_path(),
        what,
    };
    if !intact.intact {
        return Err(not_intact(intact.problem.unwrap_or_default()));
    }
    let (start, prefix) = {
        let mut store = site.store()?;
        let tx = store.read()?;
        (tx.history_start()?, tx.history_prefix_before(&date)?)
    };
    let nothing = Pruned {
        rows: 0,
        first_row: None,
        last_row: None,
        start_row: start.row,
        recorded_in: None,
    };
    let Some(prefix) = prefix else {
        return Ok(nothing);
    };
    let check = check(archived, &site.certificate()?, Some(prefix))?;
    let span = &check.history;
    if span.first_row > start.row + 1 {
        return Err(bad(archived, format!("it starts at history row {}, and the history here starts at row {}: the rows between are in no archive given; export them first", span.first_row, start.row + 1)));
    }
    let (cut, cut_hash) = match &check.hash_at {
        Some(h) => (prefix, h.clone()),
        None if span.last_row < prefix => (span.last_row, span.end_hash.clone()),
        None => return Ok(nothing),
    };
    if cut <= start.row {
        return Ok(nothing);
    }
    if intact.signed_row.unwrap_or(0) < cut {
        return Err(not_intact(format!(
            "rows up to {cut} are not all signed yet; run 'courier history --anchor' first"
        )));
    }
    commit_prune(site, archived, &check, start.row, cut, &cut_hash)
}

/// Drop the rows up to `cut` in one transaction, after checking that the store's row
/// `cut` is the archive's, and record the prune as a history row.
fn commit_prune(
    site: &Site,
    archived: &Path,
    check: &ArchiveCheck,
    start_row: i64,
    cut: i64,
    cut_hash: &str,
) -> Result<Pruned> {
    // The new start is signed right after the commit (src/anchor.rs): the key must unlock
    // before anything is dropped.
    site.secret_key()?;
    let mut store = site.store()?;
    let tx = store.begin()?;
    if tx.history_start()?.row != start_row || tx.history_hash(cut)?.as_deref() != Some(cut_hash) {
        return Err(bad(
            archived,
            format!(
                "its history row {cut} is not this store's: it is not an archive of this history"
            ),
        ));
    }
    let rows = tx.prune_history(cut, &check.manifest_sha256)?;
    let report = format!(
        "history rows {}-{cut} dropped ({rows} rows), archived in {} (manifest SHA-256 {})",
        start_row + 1,
        archived.display(),
        check.manifest_sha256
    );
    let recorded = tx.add_history(crate::store::NewHistory {
        action: "history-prune",
        org_id: site.config.org_id.as_deref(),
        status: "success",
        counts: serde_json::json!({ "rows": rows, "first_row": start_row + 1, "last_row": cut }),
        report,
        ..Default::default()
    })?;
    tx.commit()?;
    drop(store);
    crate::anchor::anchor(site, crate::anchor::Mode::Start)?;
    Ok(Pruned {
        rows,
        first_row: Some(start_row + 1),
        last_row: Some(cut),
        start_row: cut,
        recorded_in: Some(recorded),
    })
}

/// What `history prune --delete-bundles` deleted, and what it could not read or delete.
#[derive(Debug, Default)]
pub struct Deleted {
    pub files: Vec<PathBuf>,
    pub warnings: Vec<String>,
}

/// `history prune --delete-bundles`: delete from the folders `import --archive` moved files
/// into each file whose size and SHA-256 are those of a `bundles/NAME` entry of the archive
/// at `archived` (verified again with this site's certificate first): its bytes are there.
pub fn delete_held_bundles(site: &Site, archived: &Path) -> Result<Deleted> {
    let check = check(archived, &site.certificate()?, None)?;
    let held: HashSet<(u64, String)> = check.held.into_iter().map(|e| (e.size, e.sha256)).collect();
    let folders = {
        let mut store = site.store()?;
        let tx = store.read()?;
        crate::import::archive_folders(&tx)?
    };
    let mut deleted = Deleted::default();
    for dir in folders {
        let files = files_in(&dir).unwrap_or_else(|e| {
            let what = format!(
                "{}: bundle folder not read ({e}); nothing deleted there",
                dir.display()
            );
            deleted.warnings.push(what);
            Vec::new()
        });
        for path in files {
            let digest = File::open(&path).and_then(|mut f| {
                let mut w = HashingWriter::new(std::io::sink());
                std::io::copy(&mut f, &mut w)?;
                let (sha256, size) = w.finish();
                Ok((size, sha256))
            });
            let done = match digest {
                Ok(d) if held.contains(&d) => std::fs::remove_file(&path).map(|_| true),
                Ok(_) => Ok(false),
                Err(e) => Err(e),
            };
            match done {
                Ok(true) => deleted.files.push(path),
                Ok(false) => {}
                Err(e) => deleted
                    .warnings
                    .push(format!("{}: {e}; not deleted", path.display())),
            }
        }
    }
    Ok(deleted)
}

/// `history verify-archive FILE --certificate CERT`: read the certificate (as `keys
/// export` writes it), then [`verify`].
pub fn verify_with(path: &Path, certificate: &Path) -> Result<ArchiveCheck> {
    let bytes = std::fs::read(certificate).map_err(|e| Error::input(certificate, &e))?;
    let cert = crypto::parse_cert(&bytes).map_err(|e| Error::InputUnreadable {
        path: certificate.to_path_buf(),
        what: format!(
            "not an OpenPGP certificate ({e}); give the file 'courier keys export' wrote"
        ),
    })?;
    verify(path, &cert)
}
