//! Central's own compromise (issue 11; docs/FORMAT.md §9.2).
//!
//! Central writes a revocation certificate of its key for safe keeping (`keys export
//! --revocation`): a standard OpenPGP key revocation signature by its primary key, with the
//! public certificate, as GnuPG writes and reads one. If central's key leaks, the operator
//! carries that file to each centre, where `keys revoke-peer FILE` checks it against the
//! central key pinned there and revokes that key: from then on the centre refuses every
//! bundle it signs, seals and exports nothing to it, and accepts a new enrollment file from
//! another central key (`courier enroll`). No bundle carries the revocation: whoever holds
//! the stolen key also writes the bundles, so the statement travels by hand, like the
//! enrollment file.

use std::path::Path;

use crate::crypto;
use crate::error::{Error, Result};
use crate::site::{Role, Site};
use crate::store::{NewHistory, PinnedPeer, Tx};

/// The reason written into central's revocation certificate.
const REASON: &str = "courier: central's key is no longer trusted (revocation certificate kept for safe keeping, applied with 'courier keys revoke-peer')";

/// `keys export --revocation --out FILE` (central): write the revocation certificate of
/// central's current key to `out` (temporary name, renamed); recorded in the history.
/// Returns the fingerprint revoked by the file.
pub fn export_certificate(site: &Site, out: &Path) -> Result<String> {
    site.require(Role::Central)?;
    let key = site.secret_key()?;
    let fpr = key.fingerprint();
    let comment = format!("Revocation certificate for courier central key {fpr}");
    let bytes = crypto::revocation_certificate(&key, REASON, &comment)?;
    let mut store = site.store()?;
    let tx = store.begin()?;
    tx.add_history(NewHistory {
        action: "keys-export-revocation",
        status: "success",
        counts: serde_json::json!({}),
        report: format!(
            "revocation certificate of key {fpr} written to {}",
            out.display()
        ),
        ..Default::default()
    })?;
    crate::fs::write_atomic(out, &bytes)?;
    crate::site::private_file(out)?;
    tx.commit()?;
    Ok(fpr)
}

/// What `keys revoke-peer` did.
#[derive(Debug, Clone)]
pub struct PeerRevoked {
    /// Central's key, now revoked here.
    pub fingerprint: String,
    /// When it was revoked here (RFC 3339).
    pub revoked_at: String,
    /// When central signed the statement, and its reason.
    pub signed: String,
    pub reason: String,
}

/// `keys revoke-peer FILE` (centre): check that `file` is a revocation certificate of the
/// central key pinned here, signed by that key, then revoke that key (every bundle it signs
/// is refused from now on) and record it in the history. A statement of another key, or a
/// forged one, is refused with the store unchanged.
pub fn revoke_peer(site: &Site, file: &Path) -> Result<PeerRevoked> {
    site.require(Role::Center)?;
    let bytes = std::fs::read(file).map_err(|e| Error::input(file, &e))?;
    let mut store = site.store()?;
    let tx = store.begin()?;
    let Some(PinnedPeer {
        fingerprint: fpr,
        cert: armored,
    }) = tx.peer_by_role("central")?
    else {
        return Err(match tx.revoked_central()? {
            Some((old, r)) => Error::Usage {
                what: format!(
                    "central's key {old} was already revoked here at {} ({}); nothing changed",
                    r.at, r.reason
                ),
            },
            None => Error::NotEnrolled {
                site: site.describe(),
            },
        });
    };
    let pinned = crypto::parse_cert(armored.as_bytes())?;
    let statement =
        crypto::check_revocation(&pinned, &bytes).map_err(|what| Error::RevocationRefused {
            path: file.to_path_buf(),
            what: format!("{what} (central's key pinned here is {fpr})"),
        })?;
    let reason = format!(
        "revoked by central's revocation certificate signed {}: {}",
        statement.signed, statement.reason
    );
    tx.retire_peer(&fpr, None, 0, &reason)?;
    tx.add_history(NewHistory {
        action: "key-revoke-peer",
        org_id: site.config.org_id.as_deref(),
        status: "success",
        counts: serde_json::json!({}),
        report: format!("revoked central's key {fpr} ({}); {reason}", file.display()),
        ..Default::default()
    })?;
    let revoked_at = tx
        .peer_retired(&fpr)?
        .map(|r| r.at)
        .ok_or_else(|| Error::Internal("revoked key not recorded".into()))?;
    tx.commit()?;
    Ok(PeerRevoked {
        fingerprint: fpr,
        revoked_at,
        signed: statement.signed,
        reason: statement.reason,
    })
}

/// At `enroll`, before central's key of `file` is pinned: an enrollment file from a central
/// key retired here (revoked, or replaced by a rollover) is refused; another key is refused
/// while a central key is pinned and in force. When the centre enrolls again after revoking
/// central's key, the bundles it applied from the old central stop counting for order and
/// acknowledgements (the new central numbers its own). Returns the revoked key, if any.
pub fn check_new_central(tx: &Tx<'_>, file: &Path, new: &str) -> Result<Option<String>> {
    let refuse = |what: String| Error::Enrollment {
        path: file.to_path_buf(),
        what,
    };
    if let Some(r) = tx.peer_retired(new)? {
        return Err(refuse(format!(
            "central's key {new} was retired here at {} ({}); ask central for an enrollment file signed by its new key",
            r.at, r.reason
        )));
    }
    if let Some(PinnedPeer {
        fingerprint: fpr, ..
    }) = tx.peer_by_role("central")?
    {
        if fpr != new {
            return Err(refuse(format!(
                "this centre is already enrolled with central {fpr}"
            )));
        }
        return Ok(None);
    }
    let revoked = tx.revoked_central()?.map(|(old, _)| old);
    if revoked.is_some() {
        tx.set_bundles_floor()?;
    }
    Ok(revoked)
}
