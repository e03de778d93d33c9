//! A history nobody can rewrite unnoticed.
//!
//! The store's history is hash-chained (each row's hash covers the one before), which shows
//! an edit only to someone who does not recompute the chain, and never shows rows deleted
//! at the end. So after every command that changed the history, the site signs the chain's
//! head (row number and hash) with its own key and keeps the statement beside the store
//! ([`HEAD_FILE`]). `history --verify` then checks the chain, the signature, and that the
//! signed row is still there with the same hash: a recomputed chain, an edited row or rows
//! deleted at the end each fail without the key.
//!
//! Rows written by a command that could not unlock the key (a protected key and no
//! passphrase given: `results add` during an exam) stay unanchored until the next command
//! that can; `verify` counts them. A copy of an older head file put back together with an
//! older store is not detected here: keep archived history (or a bundle's peer) for that.
//!
//! The head also names where the chain starts (row and hash: row 0 until `history prune`
//! cuts it), so rows deleted at the *start*, behind a forged prune point, fail too. `history
//! prune` signs the new start itself, in the same command (it needs the key).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::site::Site;
use crate::store::Tx;

/// The signed head, in the site's home.
pub const HEAD_FILE: &str = "history-head.json";
const FORMAT: &str = "courier-history-head/2";
/// Heads signed before the start was part of the statement (the start is row 0).
const FORMAT_1: &str = "courier-history-head/1";

/// The document kept in [`HEAD_FILE`] (schemas/history-head.schema.json).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    pub format: String,
    /// Fingerprint of the key that signed.
    pub site: String,
    /// Number of the newest history row when it was signed.
    pub row: i64,
    /// That row's chain hash.
    pub hash: String,
    /// Where the chain started when signed (the prune point; 0 and zeros when never pruned).
    /// Absent from heads of format 1 (read as row 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_row: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_hash: Option<String>,
    pub signed_at: String,
    /// Detached OpenPGP signature over [`statement`], hex.
    pub signature: String,
}

/// The bytes a head's signature covers: format 2 names the chain's start, format 1 did not.
fn statement(head: &Head) -> String {
    let (site, row, hash) = (&head.site, head.row, &head.hash);
    match (&head.start_row, &head.start_hash) {
        (Some(start), Some(start_hash)) if head.format == FORMAT => {
            format!("{FORMAT}\nsite {site}\nstart {start} {start_hash}\nrow {row}\nhash {hash}\n")
        }
        _ => format!("{FORMAT_1}\nsite {site}\nrow {row}\nhash {hash}\n"),
    }
}

/// The start a head was signed with (a format-1 head: the chain's beginning).
fn signed_start(head: &Head) -> (i64, &str) {
    match (&head.start_row, &head.start_hash, head.format.as_str()) {
        (Some(r), Some(h), FORMAT) => (*r, h.as_str()),
        _ => (0, NO_ROW),
    }
}

/// What [`anchor`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchored {
    /// The head of row `n` was signed now (0: the empty history of a new site).
    Signed(i64),
    /// The signed head already names the newest row.
    Current,
    /// The key is protected and no passphrase was given: the newest rows wait for the next
    /// command that can unlock it.
    KeyLocked,
    /// Not signed, because the history does not extend the signed head (or has none): signing
    /// now would cover what was done to it. What is wrong, one sentence.
    Refused(String),
}

/// Who asks for the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// After a command: only a history that extends a good signed head (or an empty one)
    /// is signed, so tampering is never signed over.
    Extend,
    /// `history --anchor`: as [`Mode::Extend`], and an operator may also sign a history that
    /// has no head yet (one written before courier signed its history), or whose start moved
    /// after the head was signed (a `history prune` whose own signature did not complete).
    Start,
}

fn head_path(site: &Site) -> PathBuf {
    site.home.join(HEAD_FILE)
}

fn read_head(site: &Site) -> Result<Option<Head>> {
    let path = head_path(site);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::StoreDamaged {
            path,
            what: format!("the signed history head is not readable ({e})"),
        })
}

const NO_ROW: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Sign the head of the history when it moved since it was last signed (see [`Mode`]).
pub fn anchor(site: &Site, mode: Mode) -> Result<Anchored> {
    let check = verify(site)?;
    let (row, hash, start) = {
        let mut store = site.store()?;
        let tx = store.read()?;
        let start = tx.history_start()?;
        match tx.history_head()? {
            Some(head) => (head.n, head.hash, start),
            None => (start.row, start.hash.clone(), start),
        }
    };
    let has_head = head_path(site).exists();
    let may_sign = if check.intact {
        true
    } else {
        // No head over an intact chain: a new site's first rows, or a history from before
        // courier signed it; only an operator starts the signatures on a non-empty one, or
        // signs a start that moved (an interrupted prune).
        check.chain_intact
            && ((!has_head && (row == 0 || mode == Mode::Start))
                || (check.start_moved && mode == Mode::Start))
    };
    if !may_sign {
        return Ok(Anchored::Refused(
            check
                .problem
                .unwrap_or_else(|| "the history is not intact".into()),
        ));
    }
    if check.intact && has_head && check.signed_row == Some(row) {
        return Ok(Anchored::Current);
    }
    let key = match site.secret_key() {
        Ok(k) => k,
        Err(Error::PassphraseNeeded { .. }) => return Ok(Anchored::KeyLocked),
        Err(e) => return Err(e),
    };
    let mut head = Head {
        format: FORMAT.into(),
        site: key.fingerprint(),
        row,
        hash,
        start_row: Some(start.row),
        start_hash: Some(start.hash),
        signed_at: crate::time::now_rfc3339(),
        signature: String::new(),
    };
    let sig = crate::crypto::sign_detached(&key, statement(&head).as_bytes())?;
    head.signature = hex::encode(sig);
    let path = head_path(site);
    let json = serde_json::to_vec_pretty(&head).map_err(Error::Encode)?;
    crate::fs::write_atomic(&path, &json)?;
    crate::site::private_file(&path)?;
    Ok(Anchored::Signed(row))
}

/// What `history --verify` found (schemas/history-verify.schema.json).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// The store checked.
    pub store: PathBuf,
    /// Rows in the history.
    pub rows: i64,
    /// True when the chain holds, the head's signature is good and its row is unchanged.
    pub intact: bool,
    /// The newest row covered by the signed head.
    pub signed_row: Option<i64>,
    /// Rows after the signed head (written by commands that could not unlock the key).
    pub unanchored: i64,
    /// What is wrong, when not intact: one sentence.
    pub problem: Option<String>,
    /// The hash chain alone holds (whatever the signed head says).
    #[serde(skip)]
    pub chain_intact: bool,
    /// The only thing wrong: the chain starts elsewhere than where the head was signed.
    #[serde(skip)]
    pub start_moved: bool,
}

/// Check the chain and its signed head.
pub fn verify(site: &Site) -> Result<Verification> {
    let mut store = site.store()?;
    let tx = store.read()?;
    let newest = tx.history_head()?;
    let rows = newest.as_ref().map(|h| h.n).unwrap_or(0);
    let mut v = Verification {
        store: site.store_path(),
        rows,
        intact: false,
        signed_row: None,
        unanchored: 0,
        problem: None,
        chain_intact: false,
        start_moved: false,
    };
    if let Some(n) = tx.verify_history()? {
        v.problem = Some(format!(
            "history row {n} does not match its hash chain: the store was altered"
        ));
        return Ok(v);
    }
    v.chain_intact = true;
    let head = match read_head(site)? {
        Some(h) => h,
        None if newest.is_none() => {
            v.intact = true;
            return Ok(v);
        }
        None => {
            v.problem = Some(format!(
                "no signed history head ({HEAD_FILE}) beside a history of {rows} rows: it was removed, or no command has run since courier began signing (if this history was written before courier signed it, `courier history --anchor` signs it as it is)"
            ));
            return Ok(v);
        }
    };
    // Signed by this site's key, or by one it replaced since (`keys rotate`): the next
    // command signs the head again with the current key.
    let cert = match site.retired_certificate(&head.site)? {
        Some(retired) if head.site != site.config.fingerprint => retired,
        _ => site.certificate()?,
    };
    let statement = statement(&head);
    let signed = hex::decode(&head.signature)
        .map_err(|e| e.to_string())
        .and_then(|sig| crate::crypto::verify_detached(&cert, statement.as_bytes(), &sig));
    if head.site != crate::crypto::fingerprint(&cert) || signed.is_err() {
        v.problem = Some(format!(
            "the signed history head ({HEAD_FILE}) is not signed by this site's key: it was forged or edited"
        ));
        return Ok(v);
    }
    v.signed_row = Some(head.row);
    compare_with_store(&tx, &head, v)
}

/// The signed head against the store: the chain starts where it did when signed, and the
/// signed row is still there with the signed hash.
fn compare_with_store(tx: &Tx<'_>, head: &Head, mut v: Verification) -> Result<Verification> {
    let start = tx.history_start()?;
    let (start_row, start_hash) = signed_start(head);
    if (start.row, start.hash.as_str()) != (start_row, start_hash) {
        v.start_moved = true;
        v.problem = Some(format!(
            "the history starts at row {} but its signed head says row {start_row}: rows were cut after it was signed (if a `courier history prune` was interrupted before it signed, `courier history --anchor` signs the new start)",
            start.row
        ));
        return Ok(v);
    }
    let signed_hash = if head.row == start.row {
        Some(start.hash)
    } else {
        tx.history_hash(head.row)?
    };
    match signed_hash {
        None => {
            v.problem = Some(format!(
                "the history ends at row {} but its signed head names row {}: rows were deleted",
                v.rows, head.row
            ));
        }
        Some(h) if h != head.hash => {
            v.problem = Some(format!(
                "history row {} differs from the one that was signed: the chain was recomputed after an edit",
                head.row
            ));
        }
        Some(_) => {
            v.intact = true;
            v.unanchored = v.rows - head.row;
        }
    }
    Ok(v)
}
