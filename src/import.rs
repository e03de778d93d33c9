//! Verify, inspect and import bundle files: the checks every kind shares, then dispatch.
//!
//! Order of checks on import: format version (first line), structure (trailer, header,
//! lengths), recipient, sender's pinned key, header signature, payload length and hash —
//! and only then decryption, once, inside the one store transaction of the import.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::bundle::{Bundle, Header, Kind};
use crate::crypto;
use crate::crypto::Cert;
use crate::error::{Error, Result};
use crate::site::{Role, Site};
use crate::store::OtherSender;

pub use crate::fs::{expand_paths, find_paths, Found};
pub use crate::outcome::{BatchSummary, FileReport, FileStatus, ImportOptions, Outcome};

/// `import --json-summary` (schemas/file-reports.schema.json, the object form): every file's
/// report in the order applied, the batch's totals, and the sets with parts missing.
#[derive(Debug, Serialize)]
pub struct ImportBatch<'a> {
    pub files: &'a [FileReport],
    pub summary: BatchSummary,
    pub incomplete_sets: Vec<crate::upsync::IncompleteSet>,
}

/// The exit code of a batch of files, as the README says: 0 when every file was applied or
/// already applied (hidden files skipped do not count), 3 when some were applied and others
/// refused (or a file was only partly applied), 1 (or the refusal's own code) when nothing was
/// applied because everything was refused. A site or internal failure (4, 5) wins over all.
pub fn batch_exit_code(reports: &[FileReport]) -> u8 {
    use crate::error::exit;
    if let Some(worst) = reports
        .iter()
        .map(|r| r.exit_code)
        .filter(|c| *c >= exit::SITE)
        .max()
    {
        return worst;
    }
    let refused = reports.iter().filter(|r| r.status == FileStatus::Refused);
    let passed = reports
        .iter()
        .any(|r| !matches!(r.status, FileStatus::Refused | FileStatus::Skipped));
    match (refused.clone().map(|r| r.exit_code).max(), passed) {
        (Some(code), false) => code,
        (Some(_), true) => exit::PARTIAL,
        (None, _) => reports
            .iter()
            .map(|r| r.exit_code)
            .max()
            .unwrap_or(exit::OK),
    }
}

/// The certificate of the bundle's sender, as pinned here (or carried, for enrollment
/// replies), and the organisation its key is pinned for (a centre's).
fn sender_cert(site: &Site, b: &Bundle) -> Result<(Cert, Option<String>)> {
    if b.header.kind == Kind::EnrollmentReply {
        return Ok((crate::enroll::reply_sender_cert(b)?, None));
    }
    let mut store = site.store()?;
    let tx = store.read()?;
    let (role, org, cert) = match tx.peer(&b.header.sender.fingerprint)? {
        Some(p) => {
            refuse_if_retired(&tx, b)?;
            (p.role, p.org_id, crypto::parse_cert(p.cert.as_bytes())?)
        }
        // A key not pinned here, handed over by a key that is (docs/FORMAT.md §9.1).
        None if !b.header.rollover.is_empty() => {
            let c = crate::rollover::check(&tx, &b.path, &b.header)?;
            (c.role, c.org, c.cert)
        }
        None => {
            return Err(Error::UnknownSender {
                path: b.path.clone(),
                fingerprint: b.header.sender.fingerprint.clone(),
            })
        }
    };
    if role != b.header.sender.role.as_str() {
        return Err(Error::PinnedRoleMismatch {
            path: b.path.clone(),
            claimed: b.header.sender.role.label().to_string(),
            pinned: pinned_label(&role).to_string(),
        });
    }
    let org = pinned_org(&b.path, &b.header, &role, org)?;
    if let Some(org) = &org {
        tx.refuse_if_revoked(&b.path, org)?;
    }
    Ok((cert, org))
}

/// A key retired here (replaced by a rollover, or revoked when its centre re-enrolled) may
/// no longer sign from its boundary sequence on; bundles it signed before still apply.
fn refuse_if_retired(tx: &crate::store::Tx<'_>, b: &Bundle) -> Result<()> {
    let h = &b.header;
    match tx.peer_retired(&h.sender.fingerprint)? {
        // Central's key revoked by `keys revoke-peer`: nothing it signs counts any more.
        Some(r) if r.replaced_by.is_none() && h.sender.role == Role::Central => {
            Err(Error::CentralKeyRevoked {
                path: b.path.clone(),
                fingerprint: h.sender.fingerprint.clone(),
                at: r.at,
                reason: r.reason,
            })
        }
        Some(r) if h.sequence as i64 >= r.from_seq => Err(Error::KeyRetired {
            path: b.path.clone(),
            fingerprint: h.sender.fingerprint.clone(),
            at: r.at,
            reason: r.reason,
            from_seq: r.from_seq,
            sequence: h.sequence,
        }),
        _ => Ok(()),
    }
}

/// A centre speaks only for itself: the organisation of a header from a centre is the one
/// its key is pinned for, and a header claiming another (as `org_id` or `sender.org_id`) is
/// refused naming both. `None` for central's bundles (their `org_id` is the recipient's).
fn pinned_org(path: &Path, h: &Header, role: &str, org: Option<String>) -> Result<Option<String>> {
    if role != Role::Center.as_str() {
        return Ok(None);
    }
    let pinned = org.unwrap_or_default();
    for claimed in [Some(&h.org_id), h.sender.org_id.as_ref()]
        .into_iter()
        .flatten()
    {
        if *claimed != pinned {
            return Err(Error::OrgMismatch {
                path: path.to_path_buf(),
                claimed: claimed.clone(),
                pinned,
                fingerprint: h.sender.fingerprint.clone(),
            });
        }
    }
    Ok(Some(pinned))
}

/// Check that this site is the recipient.
fn check_recipient(site: &Site, h: &Header, path: &Path) -> Result<()> {
    // A bundle written before the sender learnt this site's new key is still for this site.
    let ours = h.recipient.fingerprint == site.config.fingerprint
        || site
            .retired_fingerprints()?
            .contains(&h.recipient.fingerprint);
    if !ours || h.recipient.role != site.role() {
        let intended = match (&h.recipient.role, &h.recipient.org_id) {
            (Role::Center, Some(org)) => format!("centre {org} (key {})", h.recipient.fingerprint),
            (role, _) => format!("{role} (key {})", h.recipient.fingerprint),
        };
        return Err(Error::WrongRecipient {
            path: path.to_path_buf(),
            intended,
            this: site.describe(),
        });
    }
    if site.role() == Role::Center && site.config.org_id.as_deref() != Some(h.org_id.as_str()) {
        return Err(Error::WrongRecipient {
            path: path.to_path_buf(),
            intended: format!("centre {}", h.org_id),
            this: site.describe(),
        });
    }
    Ok(())
}

/// Everything that can be checked without decrypting: returns the opened bundle, the
/// sender's certificate and, for a centre's bundle, the organisation its key is pinned for.
pub fn verify_file(site: &Site, path: &Path) -> Result<(Bundle, Cert, Option<String>)> {
    let b = Bundle::open(path)?;
    check_recipient(site, &b.header, path)?;
    let for_role = match b.header.kind {
        Kind::Data => Role::Center,
        Kind::Results | Kind::EnrollmentReply => Role::Central,
    };
    if site.role() != for_role {
        return Err(Error::NotForThisSite {
            path: path.to_path_buf(),
            kind: b.header.kind.as_str(),
            for_role: for_role.as_str(),
            this: site.describe(),
        });
    }
    let (cert, org) = sender_cert(site, &b)?;
    b.verify(&cert)?;
    Ok((b, cert, org))
}

/// Import one file; the error is the refusal.
pub fn import_file(site: &Site, path: &Path, opts: &ImportOptions) -> Result<FileReport> {
    let (b, cert, _) = verify_file(site, path)?;
    let kind = b.header.kind;
    let mut report = FileReport {
        file: path.to_path_buf(),
        status: FileStatus::Applied,
        kind: Some(kind),
        bundle_id: Some(b.header.bundle_id.clone()),
        message: String::new(),
        suspicious: bundle_id_reused(site, &b.header)?,
        exit_code: crate::error::exit::OK,
        results: Default::default(),
    };
    let outcome = match kind {
        Kind::EnrollmentReply => {
            if crate::enroll::apply_reply(site, &b, &cert, opts.dry_run)? {
                Outcome::applied(format!("centre {} enrolled", b.header.org_id))
            } else {
                Outcome::already()
            }
        }
        Kind::Data => crate::downsync::apply(site, &b, &cert, opts)?,
        Kind::Results => crate::upsync::apply(site, &b, &cert, opts.dry_run)?,
    };
    report.message = outcome.message;
    report.results = outcome.results;
    if let Some(why) = &report.suspicious {
        report.message.push_str(&format!("; suspicious: {why}"));
    }
    if outcome.already {
        report.status = FileStatus::AlreadyApplied;
    } else if opts.dry_run {
        report.status = FileStatus::DryRun;
        report.message = format!("would apply: {}; nothing was kept", report.message);
    } else if outcome.partial {
        report.status = FileStatus::Partial;
        report.exit_code = crate::error::exit::PARTIAL;
    }
    Ok(report)
}

/// Replay detection is per sender (a bundle id is in the clear header, anyone can copy it),
/// so the same id from two senders never hides a file; it is flagged, since random ids do not
/// collide by chance.
fn bundle_id_reused(site: &Site, h: &Header) -> Result<Option<String>> {
    let mut store = site.store()?;
    let tx = store.read()?;
    let others = tx.bundle_id_other_senders(&h.sender.fingerprint, &h.bundle_id)?;
    if others.is_empty() {
        return Ok(None);
    }
    let others: Vec<String> = others
        .into_iter()
        .map(
            |OtherSender {
                 fingerprint: fpr,
                 org_id,
             }| match org_id {
                Some(org) => format!("centre {org} (key {fpr})"),
                None => format!("key {fpr}"),
            },
        )
        .collect();
    let this = match &h.sender.org_id {
        Some(org) if h.sender.role == Role::Center => {
            format!("centre {org} (key {})", h.sender.fingerprint)
        }
        _ => format!("key {}", h.sender.fingerprint),
    };
    Ok(Some(format!(
        "bundle id {} was sent by {this} and also by {}; one of them copied it, check both",
        h.bundle_id,
        others.join(", ")
    )))
}

/// Import many files, each on its own: a refused file does not stop the others.
/// `progress` sees each report as soon as its file is done (batches of hundreds of files).
pub fn import_all(
    site: &Site,
    paths: &[PathBuf],
    opts: &ImportOptions,
    mut progress: impl FnMut(usize, usize, &FileReport),
) -> Vec<FileReport> {
    // Package spooling writes into packages/: parts a killed import left there go first.
    let packages = site.packages_dir();
    if packages.is_dir() && !opts.dry_run {
        if let Err(e) = crate::site::remove_stale_parts(&packages) {
            let report = FileReport::refused(&packages, &e);
            progress(1, 1, &report);
            return vec![report];
        }
    }
    let found = in_apply_order(find_paths(paths, &["courier"]));
    let total = found.len();
    site.progress().files(total as u64);
    let mut reports = Vec::with_capacity(total);
    for (i, f) in found.into_iter().enumerate() {
        let p = match f {
            Found::File(p) => p,
            Found::Hidden(p) => {
                let report = FileReport::skipped(&p);
                progress(i + 1, total, &report);
                reports.push(report);
                continue;
            }
            Found::Unreadable(e) => {
                let mut report = FileReport::unreadable(&e);
                if !opts.dry_run {
                    note_audit(site, &report.file.clone(), &e, &mut report);
                }
                progress(i + 1, total, &report);
                reports.push(report);
                continue;
            }
        };
        // Bytes reported are the payload's entries as decrypted, not the file's: no total.
        site.progress().file(&p, None);
        let report = match import_file(site, &p, opts) {
            Ok(mut r) => {
                if let (Some(why), false) = (r.suspicious.clone(), opts.dry_run) {
                    let entry = AuditEntry {
                        action: "suspicious-bundle-id",
                        bundle_id: r.bundle_id.clone(),
                        status: Some(r.status),
                        ..AuditEntry::new(&p, why, r.exit_code)
                    };
                    note(site, &entry, &mut r);
                }
                if let (Some(dir), false) = (&opts.archive, opts.dry_run) {
                    match archive(site, &p, dir) {
                        Ok(to) => r
                            .message
                            .push_str(&format!("; archived to {}", to.display())),
                        Err(e) => r.message.push_str(&format!("; not archived: {e}")),
                    }
                }
                r
            }
            Err(e) => {
                let mut report = FileReport::refused(&p, &e);
                if !opts.dry_run {
                    note_audit(site, &p, &e, &mut report);
                }
                report
            }
        };
        progress(i + 1, total, &report);
        reports.push(report);
    }
    reports
}

/// The files found, in the order they apply: hidden and unreadable paths first (they are
/// only reported), then enrollment replies, then by sender (the organisation the header
/// names: the centre that sent it, or the centre a data bundle is for) and sequence, the parts
/// of a set in order; last, the files whose header cannot be read, in the order found (each
/// is refused in its turn). Only the clear header is read for this.
fn in_apply_order(found: Vec<Found>) -> Vec<Found> {
    type Key = (u8, u8, String, u64, u64, usize);
    let mut keyed: Vec<(Key, Found)> = found
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let key = match &f {
                Found::File(p) => match Bundle::open(p) {
                    Ok(b) => {
                        let h = b.header;
                        let rank = u8::from(h.kind != Kind::EnrollmentReply);
                        (1, rank, h.org_id, h.sequence, h.set.index, i)
                    }
                    Err(_) => (2, 0, String::new(), 0, 0, i),
                },
                Found::Hidden(_) | Found::Unreadable(_) => (0, 0, String::new(), 0, 0, i),
            };
            (key, f)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.into_iter().map(|(_, f)| f).collect()
}

/// Move a file into the archive folder (rename, or copy and remove across filesystems),
/// never overwriting a file already there. The folder is remembered first (`history
/// export` carries the bundles it holds): a file is never moved into a folder the site
/// does not know of.
fn archive(site: &Site, file: &Path, dir: &Path) -> Result<PathBuf> {
    use crate::error::IoContext;
    std::fs::create_dir_all(dir).at(dir)?;
    let name = file.file_name().ok_or_else(|| Error::Usage {
        what: format!("{} has no file name", file.display()),
    })?;
    let mut to = dir.join(name);
    let mut n = 1;
    while to.exists() {
        to = dir.join(format!("{}.{n}", name.to_string_lossy()));
        n += 1;
    }
    remember_archive_folder(site, dir)?;
    crate::failpoint::hit("import.archive")?;
    if std::fs::rename(file, &to).is_err() {
        std::fs::copy(file, &to).at(&to)?;
        std::fs::File::open(&to)
            .and_then(|f| f.sync_all())
            .at(&to)?;
        std::fs::remove_file(file).at(file)?;
    }
    Ok(to)
}

/// The `meta` key holding the folders `import --archive` moved files into: a JSON list of
/// absolute paths, in the order first used.
const ARCHIVE_FOLDERS: &str = "archive_folders";

/// The folders `import --archive` moved files into here (`history export` reads them).
pub fn archive_folders(tx: &crate::store::Tx<'_>) -> Result<Vec<PathBuf>> {
    let Some(text) = tx.meta_get(ARCHIVE_FOLDERS)? else {
        return Ok(Vec::new());
    };
    serde_json::from_str(&text).map_err(|e| {
        Error::Internal(format!(
            "meta key {ARCHIVE_FOLDERS} is not a JSON list of folders ({e})"
        ))
    })
}

/// Add `dir` (made absolute) to [`archive_folders`], in a transaction of its own, unless it
/// is there already. Not in the import's transaction: the file moves after that commit.
fn remember_archive_folder(site: &Site, dir: &Path) -> Result<()> {
    use crate::error::IoContext;
    let dir = dir.canonicalize().at(dir)?;
    if dir.to_str().is_none() {
        return Err(Error::Usage {
            what: format!(
                "archive folder {} is not UTF-8: give a folder with a plain name",
                dir.display()
            ),
        });
    }
    let mut store = site.store()?;
    if archive_folders(&store.read()?)?.contains(&dir) {
        return Ok(());
    }
    let tx = store.begin()?;
    let mut folders = archive_folders(&tx)?;
    if !folders.contains(&dir) {
        folders.push(dir);
        let text = serde_json::to_string(&folders).map_err(Error::Encode)?;
        tx.meta_set(ARCHIVE_FOLDERS, &text)?;
    }
    tx.commit()
}

/// One line of `audit.jsonl` in the home (schemas/audit-entry.schema.json): a refused
/// import, kept outside the store, which a refusal leaves exactly as it was; or a bundle id
/// seen from two senders.
#[derive(Debug, Serialize)]
struct AuditEntry {
    at: String,
    /// `import` (refused) or `suspicious-bundle-id`.
    action: &'static str,
    file: String,
    error: String,
    exit_code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    bundle_id: Option<String>,
    /// What became of a suspicious file (its report's status).
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<FileStatus>,
}

impl AuditEntry {
    fn new(path: &Path, error: String, exit_code: u8) -> Self {
        AuditEntry {
            at: crate::time::now_rfc3339(),
            action: "import",
            file: path.display().to_string(),
            error,
            exit_code,
            bundle_id: None,
            status: None,
        }
    }
}

/// Write a refusal to the audit trail; when that fails, the report says so and the exit code
/// becomes an internal failure: the refusal stands, but its record was lost.
fn note_audit(site: &Site, path: &Path, e: &Error, report: &mut FileReport) {
    let entry = AuditEntry::new(path, e.to_string(), e.exit_code());
    note(site, &entry, report);
}

/// Append `entry` to the audit trail; a failure is added to the report (exit 5).
fn note(site: &Site, entry: &AuditEntry, report: &mut FileReport) {
    if let Err(failed) = audit(site, entry) {
        report.message.push_str(&format!(
            "; and this could not be written to the audit trail ({failed})"
        ));
        report.exit_code = report.exit_code.max(crate::error::exit::INTERNAL);
    }
}

/// Append a line to the home's audit trail (created readable by its owner only).
fn audit(site: &Site, entry: &AuditEntry) -> Result<()> {
    use crate::error::IoContext;
    use std::io::Write;
    let mut line = serde_json::to_vec(entry).map_err(Error::Encode)?;
    line.push(b'\n');
    let audit = site.home.join("audit.jsonl");
    let mut open = std::fs::OpenOptions::new();
    open.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(0o600);
    }
    crate::failpoint::hit("audit.append")?;
    let mut f = open.open(&audit).at(&audit)?;
    f.write_all(&line).at(&audit)?;
    f.sync_data().at(&audit)
}

/// What `inspect` shows (no decryption, no key needed).
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub file: PathBuf,
    pub format: u64,
    pub kind: Kind,
    pub bundle_id: String,
    pub sender: crate::bundle::Party,
    pub recipient: crate::bundle::Party,
    pub org_id: String,
    pub sequence: u64,
    pub created: String,
    pub file_size: u64,
    pub payload_offset: u64,
    pub payload_size: u64,
    pub content_size: u64,
    pub part: u64,
    pub parts: u64,
    pub set_id: String,
    pub counts: std::collections::BTreeMap<String, u64>,
    /// Features the bundle requires (`rollover`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// The new keys its rollover statements claim to hand over to (unverified).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rollover_keys: Vec<String>,
    /// Where `org_id` comes from: `pinned-key` (the sender is a centre whose key is pinned
    /// in this home, for that organisation) or `claimed-unverified` (no site, or a sender
    /// not pinned here, or central: the header's word only).
    pub org_source: &'static str,
}

/// Read a bundle's header without verifying anything but its structure. With a site whose
/// store pins the sender's key, the organisation is the one that key is pinned for, and a
/// header claiming another is refused; without, it is reported as claimed, unverified.
pub fn inspect(site: Option<&Site>, path: &Path) -> Result<Inspection> {
    let b = Bundle::open(path)?;
    let mut org_source = "claimed-unverified";
    if let Some(site) = site {
        let peer = {
            let mut store = site.store()?;
            let tx = store.read()?;
            tx.peer(&b.header.sender.fingerprint)?
        };
        if let Some(p) = peer {
            if pinned_org(path, &b.header, &p.role, p.org_id)?.is_some() {
                org_source = "pinned-key";
            }
        }
    }
    let h = b.header;
    let rollover_keys = h
        .rollover
        .iter()
        .filter_map(|st| serde_json::from_str::<serde_json::Value>(&st.body).ok())
        .filter_map(|v| v["new_fingerprint"].as_str().map(String::from))
        .collect();
    Ok(Inspection {
        requires: h.requires,
        rollover_keys,
        org_source,
        file: path.to_path_buf(),
        format: h.format,
        kind: h.kind,
        bundle_id: h.bundle_id,
        sender: h.sender,
        recipient: h.recipient,
        org_id: h.org_id,
        sequence: h.sequence,
        created: h.created,
        file_size: b.file_len,
        payload_offset: h.payload.offset,
        payload_size: h.payload.length,
        content_size: h.payload.content_size,
        part: h.set.index,
        parts: h.set.count,
        set_id: h.set.id,
        counts: h.counts,
    })
}

/// Verify many files without applying anything; each gets its own report.
pub fn verify_all(site: &Site, paths: &[PathBuf]) -> Vec<FileReport> {
    find_paths(paths, &["courier"])
        .into_iter()
        .map(|f| match f {
            Found::File(p) => verify_one(site, p),
            Found::Hidden(p) => FileReport::skipped(&p),
            Found::Unreadable(e) => FileReport::unreadable(&e),
        })
        .collect()
}

/// A pinned peer's role (stored as the wire value) in a message.
fn pinned_label(role: &str) -> &str {
    if role == Role::Center.as_str() {
        Role::Center.label()
    } else {
        role
    }
}

fn verify_one(site: &Site, p: PathBuf) -> FileReport {
    match verify_file(site, &p) {
        Ok((b, _, org)) => FileReport {
            file: p.clone(),
            status: FileStatus::Ok,
            kind: Some(b.header.kind),
            bundle_id: Some(b.header.bundle_id.clone()),
            message: format!(
                "good signature by {} {}, {} bytes, part {} of {}, sequence {}",
                b.header.sender.role.label(),
                // A centre by the organisation its key is pinned for, never the claim;
                // an enrollment reply's key is not pinned yet: its claim is shown as such.
                match (&org, b.header.kind) {
                    (Some(org), _) => org.clone(),
                    (None, Kind::EnrollmentReply) => format!(
                        "{} (asking to enroll {})",
                        b.header.sender.fingerprint, b.header.org_id
                    ),
                    (None, _) => b.header.sender.fingerprint.clone(),
                },
                b.file_len,
                b.header.set.index,
                b.header.set.count,
                b.header.sequence
            ),
            suspicious: None,
            exit_code: crate::error::exit::OK,
            results: Default::default(),
        },
        Err(e) => FileReport::refused(&p, &e),
    }
}
