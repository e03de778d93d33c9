//! Key rotation over files (issue 11; docs/FORMAT.md §9.1).
//!
//! `keys rotate` gives a site a new certificate (a new fingerprint) and writes, for each peer,
//! a *rollover statement*: old fingerprint, new fingerprint and certificate, the sequence from
//! which the new key signs, signed by the old key and by the new one. The site signs with the
//! new key from then on and carries the statements it owes a peer in the header of every
//! bundle to it, until the peer addresses a bundle to the new key. The receiver checks each
//! statement against the key it has pinned, then pins the new key and retires the old one from
//! that sequence on: later bundles signed by the old key are refused, earlier ones (in
//! transit) still apply. The old secret key is kept for decryption only.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::bundle::{Header, RolloverStatement};
use crate::crypto::{self, Cert, SecretKey};
use crate::error::{Error, Result};
use crate::site::{Role, Site};
use crate::store::{NewHistory, Peer, Tx};

/// The signed body of a rollover statement (schemas/rollover-body.schema.json).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloverBody {
    pub kind: String,
    pub role: Role,
    pub org_id: String,
    pub old_fingerprint: String,
    pub new_fingerprint: String,
    pub new_certificate: String,
    pub from_sequence: u64,
    pub created: String,
}

const KIND: &str = "courier-rollover";

/// The peer name under which central owes its statement to a centre is the centre's org id;
/// a centre owes its statement to `central`.
const CENTRAL_PEER: &str = "central";

/// What `keys rotate` did.
#[derive(Debug, Clone, Serialize)]
pub struct Rotated {
    pub old_fingerprint: String,
    pub new_fingerprint: String,
    /// Each peer told (an org id, or `central`) and the sequence from which the new key signs.
    pub peers: Vec<(String, u64)>,
}

/// Sign a statement with the old and the new key.
pub fn sign_statement(
    old: &SecretKey,
    new: &SecretKey,
    body: &RolloverBody,
) -> Result<RolloverStatement> {
    let text = serde_json::to_string(body).map_err(Error::Encode)?;
    let old_signature = crypto::armor_signature(&crypto::sign_detached(old, text.as_bytes())?)?;
    let new_signature = crypto::armor_signature(&crypto::sign_detached(new, text.as_bytes())?)?;
    Ok(RolloverStatement {
        body: text,
        old_signature,
        new_signature,
    })
}

/// The peers to tell and the first sequence each will see signed by the new key: for central
/// every registered centre not revoked (enrolled or still to enroll with the old key); for a
/// centre its central, when it has enrolled.
fn peers_to_tell(site: &Site, tx: &Tx<'_>) -> Result<Vec<(String, String, u64)>> {
    Ok(match site.role() {
        Role::Central => tx
            .centers()?
            .into_iter()
            .filter(|c| c.revoked_at.is_none())
            .map(|c| (c.org_id.clone(), c.org_id, c.next_seq as u64))
            .collect(),
        Role::Center => {
            if tx.peer_by_role(CENTRAL_PEER)?.is_none() {
                return Ok(Vec::new());
            }
            let up: u64 = tx
                .meta_get("up_seq")?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            vec![(CENTRAL_PEER.into(), site.org_id()?.to_string(), up + 1)]
        }
    })
}

/// `keys rotate`: a new key for the site (protected like the old one), a rollover statement
/// owed to each peer, the old key kept for decryption only; recorded in the history.
pub fn rotate(site: &mut Site) -> Result<Rotated> {
    let old = site.secret_key()?;
    let protected = SecretKey::is_protected(&crypto::parse_cert(&site.secret_key_armored()?)?);
    let new_cert = crypto::generate(&site.userid(), site.passphrase().filter(|_| protected))?;
    let new =
        SecretKey::unlock(new_cert.clone(), site.passphrase()).map_err(|e| Error::KeyUnusable {
            what: e.to_string(),
        })?;
    let (old_fpr, new_fpr) = (old.fingerprint(), new.fingerprint());
    let new_certificate = crypto::armor_public(&new.public())?;
    let mut store = site.store()?;
    let tx = store.begin()?;
    let mut peers = Vec::new();
    for (peer, org, from_sequence) in peers_to_tell(site, &tx)? {
        let body = RolloverBody {
            kind: KIND.into(),
            role: site.role(),
            org_id: org,
            old_fingerprint: old_fpr.clone(),
            new_fingerprint: new_fpr.clone(),
            new_certificate: new_certificate.clone(),
            from_sequence,
            created: crate::time::now_rfc3339(),
        };
        let statement = sign_statement(&old, &new, &body)?;
        let text = serde_json::to_string(&statement).map_err(Error::Encode)?;
        tx.owe_rollover(&peer, &new_fpr, from_sequence as i64, &text)?;
        peers.push((peer, from_sequence));
    }
    let told: Vec<String> = peers.iter().map(|(p, s)| format!("{p} from {s}")).collect();
    tx.add_history(NewHistory {
        action: "keys-rotate",
        org_id: site.config.org_id.as_deref(),
        status: "success",
        counts: serde_json::json!({ "peers": peers.len() }),
        report: format!(
            "key {old_fpr} replaced by {new_fpr}; rollover owed to: {}",
            if told.is_empty() {
                "nobody (no peer yet)".into()
            } else {
                told.join(", ")
            }
        ),
        ..Default::default()
    })?;
    tx.own_key_replaced(&old_fpr, &site.config.created, &new_fpr)?;
    site.install_new_key(&new_cert)?;
    tx.commit()?;
    Ok(Rotated {
        old_fingerprint: old_fpr,
        new_fingerprint: new_fpr,
        peers,
    })
}

/// The statements owed to `peer` (an org id at central, `central` at a centre), for the
/// header of the next bundle to it.
pub fn owed(tx: &Tx<'_>, peer: &str) -> Result<Vec<RolloverStatement>> {
    tx.rollovers_owed(peer)?
        .iter()
        .map(|t| {
            serde_json::from_str(t).map_err(|e| Error::Internal(format!("rollover owed: {e}")))
        })
        .collect()
}

/// The peer a site owes statements to, seen from a bundle it received.
pub fn peer_of(h: &Header) -> &str {
    match h.sender.role {
        Role::Central => CENTRAL_PEER,
        Role::Center => &h.org_id,
    }
}

/// One step from a pinned key to the next, checked.
pub struct Link {
    pub old: String,
    pub new: String,
    pub cert: Cert,
    pub from_seq: u64,
}

/// The sender's key established from a key pinned here: the links that lead to it, its
/// certificate, and the role and organisation the first key is pinned for.
pub struct Checked {
    pub links: Vec<Link>,
    pub cert: Cert,
    pub role: String,
    pub org: Option<String>,
}

/// Check the rollover statements of a header whose sender is not pinned here: each must be
/// signed by a key pinned here (or established by the statement before it) and by the new
/// key, for the sender's role and organisation; the last leads to the key that signed the
/// header, and the header's sequence is one the new key may sign.
pub fn check(tx: &Tx<'_>, path: &Path, h: &Header) -> Result<Checked> {
    let refuse = |what: String| Error::RolloverRefused {
        path: path.to_path_buf(),
        what,
    };
    let mut links: Vec<Link> = Vec::new();
    let mut current: Option<(String, Cert, String, Option<String>)> = None;
    for st in &h.rollover {
        let body = read_body(path, st)?;
        if body.role != h.sender.role || body.org_id != h.org_id {
            return Err(refuse(format!(
                "a statement for {} {} in a bundle from {} about {}",
                body.role.label(),
                body.org_id,
                h.sender.role.label(),
                h.org_id
            )));
        }
        let new_cert = crypto::parse_cert(body.new_certificate.as_bytes())
            .ok()
            .filter(|c| crypto::fingerprint(c) == body.new_fingerprint)
            .ok_or_else(|| {
                refuse("the new certificate does not match the new fingerprint".into())
            })?;
        if let Some(p) = tx.peer(&body.new_fingerprint)? {
            let cert = crypto::parse_cert(p.cert.as_bytes())?;
            current = Some((body.new_fingerprint, cert, p.role, p.org_id));
            continue; // pinned already (an earlier bundle carried this statement)
        }
        let (old_cert, role, org) = match current.take() {
            Some((fpr, cert, role, org)) if fpr == body.old_fingerprint => (cert, role, org),
            _ => pinned_old(tx, &body, &refuse)?,
        };
        crypto::verify_armored(&old_cert, body_bytes(st), &st.old_signature).map_err(|e| {
            refuse(format!(
                "not signed by the old key {} pinned here ({e}): a forged rollover",
                body.old_fingerprint
            ))
        })?;
        crypto::verify_armored(&new_cert, body_bytes(st), &st.new_signature).map_err(|e| {
            refuse(format!(
                "not signed by the new key {} ({e})",
                body.new_fingerprint
            ))
        })?;
        links.push(Link {
            old: body.old_fingerprint,
            new: body.new_fingerprint.clone(),
            cert: new_cert.clone(),
            from_seq: body.from_sequence,
        });
        current = Some((body.new_fingerprint, new_cert, role, org));
    }
    let (fpr, cert, role, org) = current.ok_or_else(|| refuse("no statement".into()))?;
    if fpr != h.sender.fingerprint {
        return Err(refuse(format!(
            "the statements lead to key {fpr}, and the bundle is signed by key {}",
            h.sender.fingerprint
        )));
    }
    if let Some(last) = links.last() {
        if h.sequence < last.from_seq {
            return Err(refuse(format!(
                "the new key signs from sequence {} on, and this bundle says {}",
                last.from_seq, h.sequence
            )));
        }
    }
    Ok(Checked {
        links,
        cert,
        role,
        org,
    })
}

fn body_bytes(st: &RolloverStatement) -> &[u8] {
    st.body.as_bytes()
}

/// A statement's body: JSON, its schema, the right kind.
fn read_body(path: &Path, st: &RolloverStatement) -> Result<RolloverBody> {
    let v: serde_json::Value =
        serde_json::from_str(&st.body).map_err(|e| Error::RolloverRefused {
            path: path.to_path_buf(),
            what: format!(
                "statement body is not JSON ({})",
                crate::limits::quote(&e.to_string())
            ),
        })?;
    crate::schema::check("rollover-body", &v).map_err(|what| Error::RolloverRefused {
        path: path.to_path_buf(),
        what: format!("statement body: {what}"),
    })?;
    serde_json::from_value(v).map_err(|e| Error::RolloverRefused {
        path: path.to_path_buf(),
        what: crate::limits::quote(&e.to_string()),
    })
}

/// The old key of a statement as pinned here, for the statement's role and organisation,
/// and not retired already.
fn pinned_old(
    tx: &Tx<'_>,
    body: &RolloverBody,
    refuse: &dyn Fn(String) -> Error,
) -> Result<(Cert, String, Option<String>)> {
    let old = &body.old_fingerprint;
    let Some(Peer {
        role,
        org_id: org,
        cert: armored,
    }) = tx.peer(old)?
    else {
        return Err(refuse(format!(
            "the key it replaces, {old}, is not pinned here: a forged rollover"
        )));
    };
    let center_org_differs = role == Role::Center.as_str() && org.as_deref() != Some(&body.org_id);
    if role != body.role.as_str() || center_org_differs {
        return Err(refuse(format!(
            "key {old} is pinned here for another site than {} {}",
            body.role.label(),
            body.org_id
        )));
    }
    if let Some(r) = tx.peer_retired(old)? {
        return Err(refuse(format!(
            "key {old} was retired here at {} ({}); it cannot hand over again",
            r.at, r.reason
        )));
    }
    Ok((crypto::parse_cert(armored.as_bytes())?, role, org))
}

/// Inside an import's transaction, after its payload verified: pin the new keys the header's
/// statements establish (the old ones retired from the statement's sequence on), and note
/// that the sender addressed this site's key (which acknowledges this site's own rollovers
/// up to it). Returns a note for the import report when a key was pinned.
pub fn on_import(tx: &Tx<'_>, path: &Path, h: &Header) -> Result<Option<String>> {
    tx.rollovers_acked(peer_of(h), &h.recipient.fingerprint)?;
    if h.rollover.is_empty() {
        return Ok(None);
    }
    let checked = check(tx, path, h)?;
    if checked.links.is_empty() {
        return Ok(None);
    }
    let who = match &checked.org {
        Some(org) if checked.role == Role::Center.as_str() => format!("centre {org}"),
        _ => "central".to_string(),
    };
    for link in &checked.links {
        let armored = crypto::armor_public(&link.cert)?;
        tx.pin_peer(&link.new, &checked.role, checked.org.as_deref(), &armored)?;
        let reason = format!("replaced by key {} (rollover)", link.new);
        tx.retire_peer(&link.old, Some(&link.new), link.from_seq as i64, &reason)?;
        if let (Some(org), true) = (&checked.org, checked.role == Role::Center.as_str()) {
            tx.set_center_key(org, &link.new)?;
        }
        tx.add_history(NewHistory {
            action: "key-rollover",
            org_id: Some(&h.org_id),
            bundle_id: Some(&h.bundle_id),
            kind: Some(h.kind.as_str()),
            seq: Some(h.sequence as i64),
            status: "success",
            counts: serde_json::json!({}),
            report: format!(
                "{who} replaced key {} by {} from sequence {}",
                link.old, link.new, link.from_seq
            ),
        })?;
    }
    Ok(Some(format!(
        "pinned {who}'s new key {}",
        checked.links.last().map(|l| l.new.as_str()).unwrap_or("")
    )))
}
