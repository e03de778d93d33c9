//! The bundle file format, version 1 (specified in docs/FORMAT.md).
//!
//! ```text
//! "COURIER-BUNDLE 1\n"                 magic and format version: read and checked first
//! payload                             an OpenPGP message: signed by the sender, encrypted
//!                                     to the recipient, whose literal data is a zstd
//!                                     stream of a tar archive
//! header                              JSON (schemas/bundle-header.schema.json): who, what,
//!                                     sequence, set, and the payload's length and SHA-256
//! signature                           OpenPGP detached signature by the sender over header
//! trailer (24 bytes)                  "CRB-TAIL" | u64 BE header length | u64 BE sig length
//! ```
//!
//! The header comes after the payload so that export streams the payload straight to disk
//! and writes what it learnt (length, hash, counts) last, as restic writes its index last.
//! Every byte is covered: the first line by the header's `format`, the payload by the
//! header's hash, the header by the signature, the signature by verification, the trailer
//! by the exact arithmetic of offsets, and nothing may follow the trailer. A file cut short
//! loses its trailer first, which is reported as incomplete.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::crypto::Cert;
use crate::crypto::{self, SecretKey};
use crate::error::{pgp, Error, IoContext, Result};
use crate::text::text_enum;

/// The two kinds of site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Central,
    Center,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Central => "central",
            Role::Center => "center",
        }
    }

    /// The role in messages and help ("centre"); [`Role::as_str`] and `Display` give the
    /// wire value ("center"), which headers, the store and JSON output keep.
    pub fn label(self) -> &'static str {
        match self {
            Role::Central => "central",
            Role::Center => "centre",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The newest bundle format this program reads and the one it writes.
pub const FORMAT: u64 = 1;
const MAGIC: &[u8] = b"COURIER-BUNDLE ";
const TRAILER_MAGIC: &[u8; 8] = b"CRB-TAIL";
const TRAILER_LEN: u64 = 24;
const MAX_HEADER: u64 = 1 << 20;
const MAX_SIGNATURE: u64 = 64 << 10;
/// Largest zstd window accepted when reading (bounds decompression memory).
const ZSTD_WINDOW_LOG_MAX: u32 = 25;

text_enum! {
    /// What a bundle carries.
    pub enum Kind {
        /// A centre's answer to an enrollment file: its certificate and the one-time token.
        EnrollmentReply = "enrollment-reply",
        /// Central → centre: entities, test packages, acknowledgements of results and logs.
        Data = "data",
        /// Centre → central: results, logs, acknowledgements of data bundles.
        Results = "results",
    }
}

/// A site named in a header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    pub fingerprint: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
}

/// Binds a file to the export it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRef {
    pub id: String,
    pub index: u64,
    pub count: u64,
}

/// Where the payload is and what it must hash to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadInfo {
    pub offset: u64,
    pub length: u64,
    pub sha256: String,
    /// Bytes of the tar archive inside (enforced while reading: no decompression bombs).
    pub content_size: u64,
}

/// The signed header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: u64,
    pub kind: Kind,
    pub bundle_id: String,
    pub set: SetRef,
    pub sender: Party,
    pub recipient: Party,
    /// The test centre this bundle concerns.
    pub org_id: String,
    /// Per (sender, recipient, kind), increasing.
    pub sequence: u64,
    /// Sender's wall clock; shown to people, never trusted for freshness.
    pub created: String,
    pub payload: PayloadInfo,
    /// What the payload carries, by type.
    pub counts: BTreeMap<String, u64>,
    /// The sender's certificate, only in enrollment replies (the recipient has not pinned it yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_certificate: Option<String>,
    /// Features a reader must understand to apply this bundle (docs/FORMAT.md §9). A reader
    /// refuses a bundle that requires a feature it does not know; version 1 defines none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// Key rollover statements of the sender, oldest first (docs/FORMAT.md §9.1): present
    /// when the sender rotated its key and the recipient has not yet addressed it at the new
    /// one; then `requires` names [`FEATURE_ROLLOVER`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollover: Vec<RolloverStatement>,
}

/// A key rollover statement (docs/FORMAT.md §9.1): `body` is the exact text of a JSON object
/// (schemas/rollover-body.schema.json), signed by the sender's old key and by its new key
/// (armored detached signatures over the UTF-8 bytes of `body`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloverStatement {
    pub body: String,
    pub old_signature: String,
    pub new_signature: String,
}

/// The feature of key rollover: a header carrying `rollover` statements requires it.
pub const FEATURE_ROLLOVER: &str = "rollover";

/// Features this reader understands (see [`Header::requires`]).
pub const KNOWN_FEATURES: &[&str] = &[FEATURE_ROLLOVER];

/// Payload entries under this prefix are extensions: a reader that does not know one skips
/// it, unless the header `requires` the feature that defines it.
pub const EXTENSION_PREFIX: &str = "ext/";

/// The extension entry of a data bundle naming the centre's upward files central applied
/// (FORMAT.md §4.1; an older reader skips it). This reader passes it to its visitor.
pub const RECEIVED_ENTRY: &str = "ext/received/results-files.json";

/// What an export decides before writing a bundle.
pub struct Spec {
    pub kind: Kind,
    pub bundle_id: String,
    pub set: SetRef,
    pub sender: Party,
    pub recipient: Party,
    pub org_id: String,
    pub sequence: u64,
    pub sender_certificate: Option<String>,
    /// Rollover statements to carry in the header (empty: none).
    pub rollover: Vec<RolloverStatement>,
}

impl Party {
    /// Central, known by its key.
    pub fn central(fingerprint: &str) -> Party {
        Party {
            fingerprint: fingerprint.to_string(),
            role: Role::Central,
            org_id: None,
        }
    }

    /// A test centre: its key and its organisation.
    pub fn center(fingerprint: &str, org_id: &str) -> Party {
        Party {
            fingerprint: fingerprint.to_string(),
            role: Role::Center,
            org_id: Some(org_id.to_string()),
        }
    }
}

impl SetRef {
    /// A set of one file, with a fresh id.
    pub fn single() -> SetRef {
        SetRef {
            id: new_id(),
            index: 1,
            count: 1,
        }
    }
}

impl Spec {
    /// Central's data bundle number `sequence` for the centre `org` holding `center_key`.
    pub fn data(central_key: &str, center_key: &str, org: &str, sequence: u64) -> Spec {
        Spec {
            kind: Kind::Data,
            bundle_id: new_id(),
            set: SetRef::single(),
            sender: Party::central(central_key),
            recipient: Party::center(center_key, org),
            org_id: org.to_string(),
            sequence,
            sender_certificate: None,
            rollover: Vec::new(),
        }
    }

    /// A centre's results bundle number `sequence`, file `set.index` of `set.count`.
    pub fn results(
        center_key: &str,
        central_key: &str,
        org: &str,
        sequence: u64,
        set: SetRef,
    ) -> Spec {
        Spec {
            kind: Kind::Results,
            bundle_id: new_id(),
            set,
            sender: Party::center(center_key, org),
            recipient: Party::central(central_key),
            org_id: org.to_string(),
            sequence,
            sender_certificate: None,
            rollover: Vec::new(),
        }
    }

    /// A centre's enrollment reply, carrying its certificate (ASCII-armoured).
    pub fn enrollment_reply(
        center_key: &str,
        central_key: &str,
        org: &str,
        certificate: String,
    ) -> Spec {
        Spec {
            kind: Kind::EnrollmentReply,
            bundle_id: new_id(),
            set: SetRef::single(),
            sender: Party::center(center_key, org),
            recipient: Party::central(central_key),
            org_id: org.to_string(),
            sequence: 1,
            sender_certificate: Some(certificate),
            rollover: Vec::new(),
        }
    }

    /// The header of a bundle written to this spec now, with its payload described and
    /// counted.
    fn into_header(self, payload: PayloadInfo, counts: BTreeMap<String, u64>) -> Header {
        Header {
            format: FORMAT,
            kind: self.kind,
            bundle_id: self.bundle_id,
            set: self.set,
            sender: self.sender,
            recipient: self.recipient,
            org_id: self.org_id,
            sequence: self.sequence,
            created: crate::time::now_rfc3339(),
            payload,
            counts,
            sender_certificate: self.sender_certificate,
            requires: if self.rollover.is_empty() {
                Vec::new()
            } else {
                vec![FEATURE_ROLLOVER.to_string()]
            },
            rollover: self.rollover,
        }
    }
}

/// A fresh random id (128 bits, hex).
pub fn new_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("system random source");
    hex::encode(b)
}

// ---- writing ------------------------------------------------------------------------------

struct Count<W> {
    inner: W,
    len: u64,
}

impl<W: Write> Write for Count<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

type Inner<'a> =
    Count<zstd::stream::write::Encoder<'static, sequoia_openpgp::serialize::stream::Message<'a>>>;

/// Appends entries to a payload being written.
pub struct PayloadWriter<'a> {
    tar: tar::Builder<Inner<'a>>,
    counts: BTreeMap<String, u64>,
    path: PathBuf,
}

fn entry_header(name: &str, size: u64) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_gnu();
    h.set_path(name)?;
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Ok(h)
}

impl<'a> PayloadWriter<'a> {
    /// Add one entry from memory.
    pub fn add_bytes(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let h = entry_header(name, bytes.len() as u64).at(&self.path)?;
        self.tar.append(&h, bytes).at(&self.path)
    }

    /// Add one entry streamed from a reader of exactly `size` bytes.
    pub fn add_reader(&mut self, name: &str, size: u64, reader: impl Read) -> Result<()> {
        let h = entry_header(name, size).at(&self.path)?;
        self.tar.append(&h, reader.take(size)).at(&self.path)
    }

    /// Add a JSON document.
    pub fn add_json(&mut self, name: &str, value: &impl Serialize) -> Result<()> {
        let bytes = serde_json::to_vec(value).map_err(Error::Encode)?;
        self.add_bytes(name, &bytes)
    }

    /// Start JSON Lines entries `prefix-000001.jsonl`, ... of at most about 1 MiB each, so
    /// a long list streams without being held whole.
    pub fn lines<'w>(&'w mut self, prefix: &str) -> JsonLines<'w, 'a> {
        JsonLines {
            w: self,
            prefix: prefix.to_string(),
            buf: Vec::new(),
            n: 0,
        }
    }

    /// Count something carried (shown by `inspect`).
    pub fn count(&mut self, what: &str, n: u64) {
        *self.counts.entry(what.to_string()).or_default() += n;
    }

    /// Bytes of tar archive written so far.
    pub fn content_size(&self) -> u64 {
        self.tar.get_ref().len
    }
}

/// See [`PayloadWriter::lines`].
pub struct JsonLines<'w, 'p> {
    w: &'w mut PayloadWriter<'p>,
    prefix: String,
    buf: Vec<u8>,
    n: u32,
}

const LINES_CHUNK: usize = 1 << 20;

impl JsonLines<'_, '_> {
    pub fn push(&mut self, value: &impl Serialize) -> Result<()> {
        serde_json::to_writer(&mut self.buf, value).map_err(Error::Encode)?;
        self.buf.push(b'\n');
        if self.buf.len() >= LINES_CHUNK {
            self.flush_chunk()?;
        }
        Ok(())
    }

    fn flush_chunk(&mut self) -> Result<()> {
        self.n += 1;
        let name = format!("{}-{:06}.jsonl", self.prefix, self.n);
        self.w.add_bytes(&name, &self.buf)?;
        self.buf.clear();
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.flush_chunk()?;
        }
        Ok(())
    }
}

/// A bundle written to a temporary name, flushed to disk, waiting for [`persist_then_commit`]
/// (the file takes its name before the store records it as sent: see there).
pub struct Written {
    tmp: tempfile::NamedTempFile,
    pub out: PathBuf,
    pub header: Header,
}

impl Written {
    /// Rename the file to its final name (callers that also commit a store use
    /// [`persist_then_commit`]).
    pub fn persist(self) -> Result<PathBuf> {
        crate::failpoint::hit("bundle.rename")?;
        self.tmp
            .persist(&self.out)
            .map_err(|e| Error::io(&self.out, e.error))?;
        Ok(self.out)
    }

    /// Size of the file in bytes. An unreadable size is an error, never 0: the size check
    /// against `--max-file-size` must not pass because the size could not be read.
    pub fn size(&self) -> Result<u64> {
        Ok(self.tmp.as_file().metadata().at(self.tmp.path())?.len())
    }
}

/// Give bundles their final names, then run `commit` (the store's record that they were
/// sent); when the commit fails, the files are removed again.
///
/// This order is the one a crash cannot break: killed after the renames and before the
/// commit, the store has not counted the bundles as sent, and the next export writes the
/// same sequence numbers under the same names with the same content, replacing them. The
/// other order (commit, then rename), found by the failpoint walk, lost the bundles: the
/// store said they were sent, the re-run had nothing left to write, and the temporary files
/// stayed on the stick.
pub fn persist_then_commit(
    written: Vec<Written>,
    commit: impl FnOnce() -> Result<()>,
) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::with_capacity(written.len());
    for w in written {
        match w.persist() {
            Ok(p) => paths.push(p),
            Err(e) => {
                remove_all(&paths);
                return Err(e);
            }
        }
    }
    if let Err(e) = commit() {
        remove_all(&paths);
        return Err(e);
    }
    Ok(paths)
}

/// Best effort: the error that made us remove them is the one to report.
fn remove_all(paths: &[PathBuf]) {
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
}

/// Write a bundle for `out` under a temporary name in the same folder. `fill` adds the
/// payload's entries.
pub fn write<T>(
    out: &Path,
    spec: Spec,
    key: &SecretKey,
    recipient: &Cert,
    fill: impl FnOnce(&mut PayloadWriter<'_>) -> Result<T>,
) -> Result<(Written, T)> {
    let tmp = crate::fs::temp_beside(out)?;
    let mut file = BufWriter::with_capacity(1 << 16, tmp.as_file().try_clone().at(tmp.path())?);
    let line = format!("COURIER-BUNDLE {FORMAT}\n");
    file.write_all(line.as_bytes()).at(tmp.path())?;
    let offset = line.len() as u64;

    let mut hc = crypto::HashingWriter::new(&mut file);
    let (content_size, counts, result) = write_payload(out, &mut hc, key, recipient, fill)?;
    let (sha256, length) = hc.finish();
    let payload = PayloadInfo {
        offset,
        length,
        sha256,
        content_size,
    };
    let header = spec.into_header(payload, counts);
    let header_bytes = serde_json::to_vec(&header).map_err(Error::Encode)?;
    let sig = crypto::sign_detached(key, &header_bytes)?;
    crate::failpoint::hit("bundle.write")?;
    write_header_and_trailer(&mut file, tmp.path(), &header_bytes, &sig)?;
    drop(file);
    crate::failpoint::hit("bundle.fsync")?;
    tmp.as_file().sync_all().at(tmp.path())?;
    Ok((
        Written {
            tmp,
            out: out.to_path_buf(),
            header,
        },
        result,
    ))
}

/// The payload: `fill`'s entries as a tar archive, zstd-compressed, signed by `key` and
/// encrypted to `recipient`, written to `w`. Returns the archive's size, the counts `fill`
/// made and what it returned.
fn write_payload<T>(
    out: &Path,
    w: impl Write + Send + Sync,
    key: &SecretKey,
    recipient: &Cert,
    fill: impl FnOnce(&mut PayloadWriter<'_>) -> Result<T>,
) -> Result<(u64, BTreeMap<String, u64>, T)> {
    let message = crypto::sign_encrypt_writer(w, key, recipient)?;
    let zstd = zstd::stream::write::Encoder::new(message, 3).at(out)?;
    let mut pw = PayloadWriter {
        tar: tar::Builder::new(Count {
            inner: zstd,
            len: 0,
        }),
        counts: BTreeMap::new(),
        path: out.to_path_buf(),
    };
    let result = fill(&mut pw)?;
    let PayloadWriter { tar, counts, .. } = pw;
    let count = tar.into_inner().at(out)?;
    let content_size = count.len;
    let message = count.inner.finish().at(out)?;
    message.finalize().map_err(pgp)?;
    Ok((content_size, counts, result))
}

/// After the payload: the header, its detached signature, and the trailer that gives both
/// lengths (see docs/FORMAT.md).
fn write_header_and_trailer(
    file: &mut impl Write,
    path: &Path,
    header_bytes: &[u8],
    sig: &[u8],
) -> Result<()> {
    file.write_all(header_bytes).at(path)?;
    file.write_all(sig).at(path)?;
    file.write_all(TRAILER_MAGIC).at(path)?;
    file.write_all(&(header_bytes.len() as u64).to_be_bytes())
        .at(path)?;
    file.write_all(&(sig.len() as u64).to_be_bytes()).at(path)?;
    file.flush().at(path)
}

// ---- reading ------------------------------------------------------------------------------

/// A bundle file whose structure has been read (nothing verified yet but its shape).
pub struct Bundle {
    pub path: PathBuf,
    pub header: Header,
    header_bytes: Vec<u8>,
    signature: Vec<u8>,
    pub file_len: u64,
}

/// Read the first line and return the format version, refusing what is not a bundle.
fn read_version(path: &Path, file: &mut impl Read) -> Result<u64> {
    let mut first = [0u8; 40];
    let mut got = 0;
    while got < first.len() {
        let n = file.read(&mut first[got..]).at(path)?;
        if n == 0 {
            break;
        }
        got += n;
        if first[..got].contains(&b'\n') {
            break;
        }
    }
    let first = &first[..got];
    if !first.starts_with(MAGIC) {
        if got < MAGIC.len() && MAGIC.starts_with(first) {
            return Err(Error::Incomplete {
                path: path.into(),
                what: format!("only {got} bytes"),
            });
        }
        return Err(Error::NotABundle { path: path.into() });
    }
    let rest = &first[MAGIC.len()..];
    let end = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| Error::Damaged {
            path: path.into(),
            what: "first line has no end".into(),
        })?;
    let digits = std::str::from_utf8(&rest[..end])
        .ok()
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
    let version: u64 = digits
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| Error::Damaged {
            path: path.into(),
            what: "format version is not a number".into(),
        })?;
    if version > FORMAT {
        return Err(Error::UnsupportedFormat {
            path: path.into(),
            found: version,
            supported: FORMAT,
        });
    }
    if version != FORMAT || digits.map(|d| d.len()) != Some(1) {
        return Err(Error::Damaged {
            path: path.into(),
            what: format!("unknown format version {version}"),
        });
    }
    Ok(version)
}

fn damaged(path: &Path, what: String) -> Error {
    Error::Damaged {
        path: path.into(),
        what,
    }
}

/// The trailer at the end: its magic, then plausible header and signature lengths that fit
/// the file after the first line. Returns (header length, signature length).
fn read_trailer(
    path: &Path,
    file: &mut (impl Read + Seek),
    file_len: u64,
    offset: u64,
) -> Result<(u64, u64)> {
    let incomplete = |what: String| Error::Incomplete {
        path: path.into(),
        what,
    };
    if file_len < offset + TRAILER_LEN {
        return Err(incomplete(format!(
            "{file_len} bytes, no header or trailer"
        )));
    }
    file.seek(SeekFrom::Start(file_len - TRAILER_LEN))
        .at(path)?;
    let mut trailer = [0u8; TRAILER_LEN as usize];
    file.read_exact(&mut trailer).at(path)?;
    if &trailer[..8] != TRAILER_MAGIC {
        return Err(incomplete(format!(
            "{file_len} bytes and no trailer at the end (cut short, or trailing bytes)"
        )));
    }
    let header_len = u64::from_be_bytes(trailer[8..16].try_into().expect("8 bytes"));
    let sig_len = u64::from_be_bytes(trailer[16..24].try_into().expect("8 bytes"));
    if header_len == 0 || header_len > MAX_HEADER || sig_len == 0 || sig_len > MAX_SIGNATURE {
        return Err(damaged(
            path,
            format!("implausible header ({header_len}) or signature ({sig_len}) length"),
        ));
    }
    if file_len < offset + header_len + sig_len + TRAILER_LEN {
        return Err(damaged(
            path,
            "header and signature lengths exceed the file".into(),
        ));
    }
    Ok((header_len, sig_len))
}

/// The header: JSON, numbers the store can keep, its schema.
fn read_header(path: &Path, header_bytes: &[u8]) -> Result<Header> {
    let value: serde_json::Value = serde_json::from_slice(header_bytes).map_err(|e| {
        damaged(
            path,
            format!(
                "header is not JSON ({})",
                crate::limits::quote(&e.to_string())
            ),
        )
    })?;
    // Numbers the store keeps must fit its integers: never cast to a negative one.
    for (at, what) in [
        ("/sequence", "header sequence"),
        ("/set/index", "header set index"),
        ("/set/count", "header set count"),
    ] {
        if let Some((_, number)) = value
            .pointer(at)
            .and_then(crate::schema::integer_beyond_i64)
        {
            return Err(Error::NumberTooLarge {
                path: path.into(),
                what: what.into(),
                value: number,
            });
        }
    }
    crate::schema::check("bundle-header", &value)
        .map_err(|e| damaged(path, format!("header: {e}")))?;
    serde_json::from_value(value).map_err(|e| {
        damaged(
            path,
            format!("header: {}", crate::limits::quote(&e.to_string())),
        )
    })
}

/// What the header says agrees with the file: format, where the payload starts and ends,
/// features required, the part of its set.
fn check_header(path: &Path, header: &Header, offset: u64, header_start: u64) -> Result<()> {
    if header.format != FORMAT {
        return Err(damaged(
            path,
            format!(
                "header says format {} but the file says {FORMAT}",
                header.format
            ),
        ));
    }
    if header.payload.offset != offset {
        return Err(damaged(
            path,
            "payload offset does not follow the first line".into(),
        ));
    }
    if offset + header.payload.length != header_start {
        return Err(damaged(
            path,
            format!(
                "payload is {} bytes, the header says {} (parts of different bundles mixed?)",
                header_start - offset,
                header.payload.length
            ),
        ));
    }
    if let Some(f) = header
        .requires
        .iter()
        .find(|f| !KNOWN_FEATURES.contains(&f.as_str()))
    {
        return Err(Error::UnknownFeature {
            path: path.to_path_buf(),
            feature: f.clone(),
        });
    }
    if header.requires.iter().any(|f| f == FEATURE_ROLLOVER) == header.rollover.is_empty() {
        return Err(damaged(
            path,
            "a header carries rollover statements exactly when it requires 'rollover'".into(),
        ));
    }
    if header.set.index == 0 || header.set.index > header.set.count {
        return Err(damaged(
            path,
            format!(
                "part {} of {} is impossible",
                header.set.index, header.set.count
            ),
        ));
    }
    Ok(())
}

impl Bundle {
    /// Refuse a bundle whose header names a sender of another role than `role` (`from`
    /// says who sends this kind, for the message).
    pub fn require_sender(&self, role: Role, from: &'static str) -> Result<()> {
        if self.header.sender.role != role {
            return Err(Error::WrongSenderRole {
                path: self.path.clone(),
                kind: self.header.kind.as_str(),
                from,
            });
        }
        Ok(())
    }

    /// Read the structure: version first, then the trailer, the header and the signature.
    /// Checks every length and offset, so that no byte of the file is left unaccounted for.
    pub fn open(path: &Path) -> Result<Bundle> {
        let mut file = File::open(path).map_err(|e| Error::input(path, &e))?;
        if file.metadata().at(path)?.is_dir() {
            return Err(Error::InputUnreadable {
                path: path.into(),
                what: "it is a folder; give bundle files (import and verify also take folders)"
                    .into(),
            });
        }
        let file_len = file.metadata().at(path)?.len();
        Bundle::read_from(path, &mut file, file_len)
    }

    /// The structure of the bundle that `file` holds from its position 0 on, `file_len`
    /// bytes long (a file, or an entry inside another file); `path` names it in errors.
    pub fn read_from(path: &Path, file: &mut (impl Read + Seek), file_len: u64) -> Result<Bundle> {
        read_version(path, file)?;
        let offset = (MAGIC.len() + 2) as u64;
        let (header_len, sig_len) = read_trailer(path, file, file_len, offset)?;
        let header_start = file_len - (header_len + sig_len + TRAILER_LEN);
        file.seek(SeekFrom::Start(header_start)).at(path)?;
        let mut header_bytes = vec![0u8; header_len as usize];
        file.read_exact(&mut header_bytes).at(path)?;
        let mut signature = vec![0u8; sig_len as usize];
        file.read_exact(&mut signature).at(path)?;
        let header = read_header(path, &header_bytes)?;
        check_header(path, &header, offset, header_start)?;
        Ok(Bundle {
            path: path.to_path_buf(),
            header,
            header_bytes,
            signature,
            file_len,
        })
    }

    /// Check the sender's detached signature over the header.
    pub fn check_signature(&self, sender: &Cert) -> Result<()> {
        if crypto::fingerprint(sender) != self.header.sender.fingerprint {
            return Err(Error::BadSignature {
                path: self.path.clone(),
                what: "header names another sender than the key given".into(),
            });
        }
        crypto::verify_detached(sender, &self.header_bytes, &self.signature).map_err(|what| {
            Error::BadSignature {
                path: self.path.clone(),
                what,
            }
        })
    }

    /// Check the payload's length and SHA-256 against the (signed) header.
    pub fn check_payload(&self) -> Result<()> {
        let mut file = File::open(&self.path).at(&self.path)?;
        file.seek(SeekFrom::Start(self.header.payload.offset))
            .at(&self.path)?;
        let mut hasher = Sha256::new();
        let mut limited = file.take(self.header.payload.length);
        let n = io::copy(&mut limited, &mut hasher).at(&self.path)?;
        if n != self.header.payload.length {
            return Err(Error::Incomplete {
                path: self.path.clone(),
                what: "payload shorter than declared".into(),
            });
        }
        if hex::encode(hasher.finalize()) != self.header.payload.sha256 {
            // The signed header binds the payload to its bundle id and its place in its set.
            let h = &self.header;
            return Err(Error::Damaged {
                path: self.path.clone(),
                what: format!(
                    "payload hash does not match the signed header (bundle {}, set {} part {} of {})",
                    h.bundle_id, h.set.id, h.set.index, h.set.count
                ),
            });
        }
        Ok(())
    }

    /// Everything that can be checked without the recipient's secret key.
    pub fn verify(&self, sender: &Cert) -> Result<()> {
        self.check_signature(sender)?;
        self.check_payload()
    }

    /// Decrypt the payload once and hand each entry to `visit` in order. Call only after
    /// [`Bundle::verify`]. The inner signature by the sender is checked at the end; an
    /// error from here means the caller must not commit what `visit` did.
    pub fn read_payload(
        &self,
        key: &SecretKey,
        sender: &Cert,
        mut visit: impl FnMut(&str, &mut dyn Read) -> Result<()>,
    ) -> Result<()> {
        let path = &self.path;
        let (mut plain, failure) = self.decrypt(key, sender)?;
        let bad_signature = |what: String| Error::BadSignature {
            path: path.clone(),
            what: format!("payload: {what}"),
        };
        {
            let mut zstd = zstd::stream::read::Decoder::new(&mut plain).at(path)?;
            zstd.window_log_max(ZSTD_WINDOW_LOG_MAX).at(path)?;
            let mut limited = CapReader {
                inner: zstd,
                left: self.header.payload.content_size,
                exceeded: false,
            };
            let drained = walk_entries(path, &mut limited, &mut visit).and_then(|()| {
                crypto::drain(&mut limited)
                    .map(|_| ())
                    .map_err(|e| damaged(path, format!("payload: {e}")))
            });
            if let Some(what) = failure.borrow_mut().take() {
                return Err(bad_signature(what));
            }
            if limited.exceeded {
                return Err(Error::PayloadOversize {
                    path: path.to_path_buf(),
                });
            }
            drained?;
        }
        crypto::drain(&mut plain).map_err(|e| bad_signature(e.to_string()))?;
        Ok(())
    }

    /// The payload's plaintext (still compressed), read through a watch that remembers a
    /// failure of decryption or of the inner signature, whichever reader up the stack sees it
    /// first, so that it is reported as such and not as a damaged entry.
    fn decrypt(
        &self,
        key: &SecretKey,
        sender: &Cert,
    ) -> Result<(Watch<crypto::Plaintext<'static>>, Failure)> {
        let path = &self.path;
        let mut file = File::open(path).at(path)?;
        file.seek(SeekFrom::Start(self.header.payload.offset))
            .at(path)?;
        let source = BufReader::with_capacity(1 << 16, file.take(self.header.payload.length));
        let decryptor = crypto::decrypt_verify_reader(source, key, sender).map_err(|e| {
            Error::BadSignature {
                path: path.clone(),
                what: format!("payload: {e}"),
            }
        })?;
        let failure = Failure::default();
        let plain = Watch {
            inner: decryptor,
            failure: failure.clone(),
        };
        Ok((plain, failure))
    }
}

/// Walk the payload's tar archive: regular files only, safe names, extensions this reader does
/// not know skipped; each entry goes to `visit`.
fn walk_entries(
    path: &Path,
    payload: &mut impl Read,
    visit: &mut impl FnMut(&str, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    let mut archive = tar::Archive::new(payload);
    let entries = archive
        .entries()
        .map_err(|e| damaged(path, format!("payload: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| damaged(path, format!("payload: {e}")))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(Error::SpecialEntry {
                path: path.to_path_buf(),
            });
        }
        let name = entry
            .path()
            .map_err(|e| damaged(path, format!("payload entry name: {e}")))?
            .to_string_lossy()
            .into_owned();
        check_entry_name(path, &name)?;
        if name.starts_with(EXTENSION_PREFIX) && name != RECEIVED_ENTRY {
            continue; // not required (checked at open): an extension this reader skips
        }
        // A read error inside an entry is the payload's fault, not this machine's; a full
        // disk while spooling it is this machine's (found by the full-disk test).
        visit(&name, &mut entry).map_err(|e| match e {
            Error::Io { path: p, source } if source.kind() == std::io::ErrorKind::StorageFull => {
                Error::DiskFull { path: p, name }
            }
            Error::Io { path: p, source } if p == *path => {
                damaged(path, format!("payload entry {name}: {source}"))
            }
            other => other,
        })?;
    }
    Ok(())
}

/// Refuse entry names that could escape a folder if ever written out.
fn check_entry_name(path: &Path, name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.starts_with('/')
        || name.starts_with('\\')
        || name.contains('\0')
        || name.contains(':')
        || name
            .split(['/', '\\'])
            .any(|c| c == ".." || c == "." || c.is_empty());
    if bad {
        return Err(Error::UnsafeEntry {
            path: path.to_path_buf(),
            name: name.to_string(),
        });
    }
    Ok(())
}

/// The first read error a [`Watch`] saw, shared with whoever reports it.
type Failure = std::rc::Rc<std::cell::RefCell<Option<String>>>;

/// Passes reads through and keeps the first error seen.
struct Watch<R> {
    inner: R,
    failure: Failure,
}

impl<R: Read> Read for Watch<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            self.failure
                .borrow_mut()
                .get_or_insert_with(|| e.to_string());
        })
    }
}

/// Reads at most `left` bytes; notes when the inner reader had more.
struct CapReader<R> {
    inner: R,
    left: u64,
    exceeded: bool,
}

impl<R: Read> Read for CapReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? > 0 {
                self.exceeded = true;
                return Err(io::Error::other("payload is larger than its signed header declares (a possible decompression bomb)"));
            }
            return Ok(0);
        }
        let max = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Read a whole small entry (JSON documents), refusing more than `cap` bytes.
pub fn read_small(path: &Path, name: &str, r: &mut dyn Read, cap: u64) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.take(cap + 1).read_to_end(&mut buf).at(path)?;
    if buf.len() as u64 > cap {
        return Err(Error::EntryOversize {
            path: path.to_path_buf(),
            name: name.to_string(),
            cap,
        });
    }
    Ok(buf)
}
