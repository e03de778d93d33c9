//! The handshake over files.
//!
//! 1. Central registers a centre (`center add`) and writes an enrollment file: central's
//!    certificate, the org id and a one-time token, signed by central.
//! 2. The centre checks the file against the fingerprint read out by phone or on paper,
//!    pins central's certificate and writes a reply bundle (its certificate and the token,
//!    signed by the centre, encrypted to central).
//! 3. Central imports the reply: right recipient, known org, right token not used by
//!    another key; it then pins the centre's certificate.
//!
//! Only the SHA-256 of a token is stored at central, so a copy of central's store does not
//! let anyone enroll.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bundle::{self, Bundle, Kind, Spec};
use crate::crypto;
use crate::error::{Error, Result};
use crate::site::{write_atomic, Role, Site};
use crate::store::{NewHistory, Peer};

/// The signed body of an enrollment file (schemas/enrollment-body.schema.json).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentBody {
    pub org_id: String,
    pub label: String,
    pub token: String,
    pub central_fingerprint: String,
    pub central_name: String,
    pub central_certificate: String,
    pub created: String,
}

/// An enrollment file (schemas/enrollment.schema.json): the body as exact signed text.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentFile {
    pub format: u64,
    pub kind: String,
    pub body: String,
    pub signature: String,
}

/// The payload document of an enrollment reply (schemas/enrollment-reply.schema.json).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyBody {
    pub org_id: String,
    pub token: String,
    pub center_fingerprint: String,
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Normalise a fingerprint typed by a person: drop spaces and colons, upper-case.
pub fn normalize_fingerprint(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect::<String>()
        .to_uppercase()
}

/// Central: register a centre and write its enrollment file. Returns central's fingerprint.
/// With `expect_fingerprint` (the centre's, read out by phone or on paper), only a reply
/// signed by that key enrolls the centre.
pub fn add_center(
    site: &Site,
    org_id: &str,
    label: &str,
    expect_fingerprint: Option<&str>,
    out: &Path,
) -> Result<String> {
    site.require(Role::Central)?;
    crate::site::check_org_id(org_id)?;
    let expected = expect_fingerprint.map(normalize_fingerprint);
    if let Some(f) = &expected {
        if f.len() != 40 || !f.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::Usage {
                what: format!(
                    "--expect-fingerprint {f}: a key fingerprint is 40 hex digits (spaces allowed); check what the centre read out"
                ),
            });
        }
    }
    let key = site.secret_key()?;
    let mut store = site.store()?;
    let tx = store.begin()?;
    let existing = tx.center(org_id)?.map(|c| c.fingerprint);
    if let Some(fpr) = existing {
        let what = match fpr {
            Some(f) => format!("centre {org_id} is already enrolled with key {f}; for a reinstalled or replaced machine use 'courier center reenroll {org_id} --label LABEL --out FILE'"),
            None => format!("centre {org_id} is already registered and waits for its reply; use the enrollment file written then"),
        };
        return Err(Error::Usage { what });
    }
    if let Some(f) = &expected {
        if let Some(Peer {
            org_id: Some(other),
            ..
        }) = tx.peer(f)?
        {
            return Err(Error::Usage {
                what: format!("key {f} is already the key of centre {other}; one key, one centre: each centre enrolls with its own key"),
            });
        }
    }
    let (file, token, central_fpr) = enrollment_file(site, &key, org_id, label)?;
    tx.add_center(org_id, label, &sha256_hex(&token), expected.as_deref())?;
    tx.add_history(NewHistory {
        action: "center-add",
        org_id: Some(org_id),
        status: "success",
        counts: serde_json::json!({}),
        report: format!(
            "registered {org_id} ({label}); enrollment file {}",
            out.display()
        ),
        ..Default::default()
    })?;
    let json = serde_json::to_vec_pretty(&file).map_err(Error::Encode)?;
    write_atomic(out, &json)?;
    tx.commit()?;
    Ok(central_fpr)
}

/// A signed enrollment file for centre `org_id` with a fresh one-time token: (file, token,
/// central's fingerprint).
fn enrollment_file(
    site: &Site,
    key: &crypto::SecretKey,
    org_id: &str,
    label: &str,
) -> Result<(EnrollmentFile, String, String)> {
    let mut token = [0u8; 32];
    getrandom::fill(&mut token).map_err(|e| Error::Internal(e.to_string()))?;
    let token = hex::encode(token);
    let cert = site.certificate()?;
    let body = EnrollmentBody {
        org_id: org_id.to_string(),
        label: label.to_string(),
        token: token.clone(),
        central_fingerprint: crypto::fingerprint(&cert),
        central_name: site.config.name.clone().unwrap_or_default(),
        central_certificate: crypto::armor_public(&cert)?,
        created: crate::time::now_rfc3339(),
    };
    let body_text = serde_json::to_string(&body).map_err(Error::Encode)?;
    let sig = crypto::sign_detached(key, body_text.as_bytes())?;
    let file = EnrollmentFile {
        format: 1,
        kind: "courier-enrollment".into(),
        body: body_text,
        signature: crypto::armor_signature(&sig)?,
    };
    Ok((file, token, body.central_fingerprint))
}

/// What `center reenroll` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reenrolled {
    /// Central's fingerprint, to confirm by phone or on paper.
    pub central_fingerprint: String,
    /// The old machine's key, now revoked, and the first sequence of it refused.
    pub revoked_key: Option<(String, i64)>,
}

/// Central: `center reenroll ORG --label L --out FILE`, for a reinstalled or replaced
/// centre. The old key is revoked: its results bundles are accepted only with a sequence
/// below the first one central has not seen from it (signed before the revocation, as far as
/// central can know); later ones are refused. A new enrollment file is written; the new
/// machine enrolls as the first time, and the next export carries the whole scope (central
/// forgets what the old machine confirmed holding). A revocation of the centre is lifted.
pub fn reenroll_center(site: &Site, org: &str, label: &str, out: &Path) -> Result<Reenrolled> {
    site.require(Role::Central)?;
    let key = site.secret_key()?;
    let mut store = site.store()?;
    let tx = store.begin()?;
    let Some(center) = tx.center(org)? else {
        return Err(Error::Usage {
            what: format!("unknown centre {org}; register it with 'courier center add {org}'"),
        });
    };
    let revoked_key = match &center.fingerprint {
        Some(old) => {
            let from = tx.last_seq_in(old, Kind::Results.as_str())?.unwrap_or(0) + 1;
            let reason = format!("revoked: centre {org} re-enrolled");
            tx.retire_peer(old, None, from, &reason)?;
            Some((old.clone(), from))
        }
        None => None,
    };
    let (file, token, central_fingerprint) = enrollment_file(site, &key, org, label)?;
    tx.reset_center_for_reenrollment(org, label, &sha256_hex(&token))?;
    tx.add_history(NewHistory {
        action: "center-reenroll",
        org_id: Some(org),
        status: "success",
        counts: serde_json::json!({"centers": 1}),
        report: match &revoked_key {
            Some((k, from)) => format!("revoked key {k} of centre {org} from its upward sequence {from} on; new enrollment file {}", out.display()),
            None => format!("centre {org} was not enrolled; new enrollment file {}", out.display()),
        },
        ..Default::default()
    })?;
    let json = serde_json::to_vec_pretty(&file).map_err(Error::Encode)?;
    write_atomic(out, &json)?;
    tx.commit()?;
    Ok(Reenrolled {
        central_fingerprint,
        revoked_key,
    })
}

/// Read and check an enrollment file's signature; returns its body.
pub fn read_enrollment(path: &Path) -> Result<EnrollmentBody> {
    let refuse = |what: String| Error::Enrollment {
        path: path.to_path_buf(),
        what,
    };
    let bytes = std::fs::read(path).map_err(|e| Error::input(path, &e))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        refuse(format!(
            "not an enrollment file ({})",
            crate::limits::quote(&e.to_string())
        ))
    })?;
    crate::schema::check("enrollment", &value).map_err(refuse)?;
    let file: EnrollmentFile =
        serde_json::from_value(value).map_err(|e| refuse(crate::limits::quote(&e.to_string())))?;
    let body_value: serde_json::Value = serde_json::from_str(&file.body).map_err(|e| {
        refuse(format!(
            "body is not JSON ({})",
            crate::limits::quote(&e.to_string())
        ))
    })?;
    crate::schema::check("enrollment-body", &body_value).map_err(refuse)?;
    let body: EnrollmentBody = serde_json::from_value(body_value)
        .map_err(|e| refuse(crate::limits::quote(&e.to_string())))?;
    let cert = crypto::parse_cert(body.central_certificate.as_bytes())
        .map_err(|_| refuse("central's certificate in the file is unreadable".into()))?;
    if crypto::fingerprint(&cert) != body.central_fingerprint {
        return Err(refuse(
            "the certificate does not match the fingerprint in the file".into(),
        ));
    }
    crypto::verify_armored(&cert, file.body.as_bytes(), &file.signature).map_err(|e| {
        refuse(format!(
            "bad signature: {e}; the file was altered or forged"
        ))
    })?;
    Ok(body)
}

/// Centre: check an enrollment file, pin central, write the reply into `out_dir`.
/// `confirm` is asked when no fingerprint was given; it returns whether the operator
/// confirmed the printed fingerprint.
pub fn enroll(
    site: &Site,
    file: &Path,
    expect_fingerprint: Option<&str>,
    out_dir: &Path,
    confirm: &mut dyn FnMut(&EnrollmentBody) -> bool,
) -> Result<PathBuf> {
    site.require(Role::Center)?;
    let body = read_enrollment(file)?;
    let org = check_enrollment(site, file, &body, expect_fingerprint, confirm)?;
    let key = site.secret_key()?;
    let central_cert = crypto::parse_cert(body.central_certificate.as_bytes())?;
    let mut store = site.store()?;
    let tx = store.begin()?;
    let revoked = crate::revocation::check_new_central(&tx, file, &body.central_fingerprint)?;
    tx.pin_peer(
        &body.central_fingerprint,
        "central",
        None,
        &body.central_certificate,
    )?;
    let my_cert = site.certificate()?;
    let spec = Spec::enrollment_reply(
        &key.fingerprint(),
        &body.central_fingerprint,
        &org,
        crypto::armor_public(&my_cert)?,
    );
    let out = out_dir.join(format!("{org}-enrollment-reply.courier"));
    let reply = ReplyBody {
        org_id: org.clone(),
        token: body.token.clone(),
        center_fingerprint: key.fingerprint(),
    };
    let (written, ()) = bundle::write(&out, spec, &key, &central_cert, |p| {
        p.count("enrollment", 1);
        p.add_json("enrollment.json", &reply)
    })?;
    tx.add_history(NewHistory {
        action: "enroll",
        org_id: Some(&org),
        bundle_id: Some(&written.header.bundle_id),
        kind: Some(Kind::EnrollmentReply.as_str()),
        status: "success",
        counts: serde_json::json!({}),
        report: format!(
            "pinned central {}; reply {}{}",
            body.central_fingerprint,
            out.display(),
            revoked
                .map(|k| format!("; enrolled again after revoking central's key {k}"))
                .unwrap_or_default()
        ),
        ..Default::default()
    })?;
    tx.record_bundle(
        "out",
        &crate::site::bundle_record(&written.header),
        &out.to_string_lossy(),
    )?;
    let mut paths = crate::bundle::persist_then_commit(vec![written], || tx.commit())?;
    Ok(paths.remove(0))
}

/// Centre: checks that an enrollment file comes from the central expected (its fingerprint
/// given or confirmed by the operator) and enrolls this very centre. Returns its org id.
fn check_enrollment(
    site: &Site,
    file: &Path,
    body: &EnrollmentBody,
    expect_fingerprint: Option<&str>,
    confirm: &mut dyn FnMut(&EnrollmentBody) -> bool,
) -> Result<String> {
    let refuse = |what: String| Error::Enrollment {
        path: file.to_path_buf(),
        what,
    };
    match expect_fingerprint {
        Some(expected) => {
            if normalize_fingerprint(expected) != body.central_fingerprint {
                return Err(refuse(format!(
                    "central's fingerprint is {}, not the expected {}; do not enroll with this file",
                    body.central_fingerprint,
                    normalize_fingerprint(expected)
                )));
            }
        }
        None => {
            if !confirm(body) {
                return Err(refuse(
                    "central's fingerprint was not confirmed; pass --expect-fingerprint FPR".into(),
                ));
            }
        }
    }
    let org = site.org_id()?.to_string();
    if body.org_id != org {
        return Err(refuse(format!(
            "the file enrolls centre {}, and this site is centre {org}",
            body.org_id
        )));
    }
    Ok(org)
}

/// Central: the sender certificate an enrollment reply carries (checked against its header).
pub fn reply_sender_cert(b: &Bundle) -> Result<crate::crypto::Cert> {
    let text = b
        .header
        .sender_certificate
        .as_deref()
        .ok_or_else(|| Error::ReplyCertificate {
            path: b.path.clone(),
            what: "enrollment reply without the centre's certificate",
        })?;
    let cert = crypto::parse_cert(text.as_bytes()).map_err(|_| Error::ReplyCertificate {
        path: b.path.clone(),
        what: "the centre's certificate is unreadable",
    })?;
    if crypto::fingerprint(&cert) != b.header.sender.fingerprint {
        return Err(Error::ReplyCertificate {
            path: b.path.clone(),
            what: "the certificate does not match the sender in the header",
        });
    }
    Ok(cert)
}

/// Central: apply a verified enrollment reply. Returns `false` when it was already applied.
pub fn apply_reply(
    site: &Site,
    b: &Bundle,
    cert: &crate::crypto::Cert,
    dry_run: bool,
) -> Result<bool> {
    site.require(Role::Central)?;
    let key = site.secret_key()?;
    let reply = read_reply(b, &key, cert)?;
    let refuse = |what: String| Error::Enrollment {
        path: b.path.clone(),
        what,
    };
    if reply.org_id != b.header.org_id || reply.center_fingerprint != b.header.sender.fingerprint {
        return Err(refuse(
            "the reply's content does not match its header".into(),
        ));
    }
    let mut store = site.store()?;
    let tx = store.begin()?;
    // The centre's lock, as for its other files: two workers importing the same reply (or a
    // reply and a re-enrolment's) at once must not both find the centre not enrolled yet.
    tx.lock_center(&reply.org_id)?;
    if !check_reply(&tx, b, &reply)? {
        return Ok(false);
    }
    let armored = crypto::armor_public(cert)?;
    tx.pin_peer(
        &reply.center_fingerprint,
        "center",
        Some(&reply.org_id),
        &armored,
    )?;
    tx.set_center_enrolled(&reply.org_id, &reply.center_fingerprint)?;
    tx.record_bundle(
        "in",
        &crate::site::bundle_record(&b.header),
        &b.path.to_string_lossy(),
    )?;
    tx.add_history(NewHistory {
        action: "import",
        org_id: Some(&reply.org_id),
        bundle_id: Some(&b.header.bundle_id),
        kind: Some(Kind::EnrollmentReply.as_str()),
        seq: Some(b.header.sequence as i64),
        status: "success",
        counts: serde_json::json!({"centers": 1}),
        report: format!(
            "enrolled centre {} with key {}",
            reply.org_id, reply.center_fingerprint
        ),
    })?;
    tx.finish(dry_run)?;
    Ok(true)
}

/// Central: the `enrollment.json` of an enrollment reply, its only entry.
fn read_reply(
    b: &Bundle,
    key: &crate::crypto::SecretKey,
    cert: &crate::crypto::Cert,
) -> Result<ReplyBody> {
    let mut reply: Option<ReplyBody> = None;
    b.read_payload(key, cert, |name, r| {
        if name != "enrollment.json" {
            return Err(Error::bad_payload(
                &b.path,
                format!("unexpected entry {name} in an enrollment reply"),
            ));
        }
        let bytes = bundle::read_small(&b.path, name, r, 64 << 10)?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            Error::bad_payload(
                &b.path,
                format!(
                    "enrollment.json is not JSON ({})",
                    crate::limits::quote(&e.to_string())
                ),
            )
        })?;
        reply = Some(crate::schema::read_doc(
            &b.path,
            name,
            "enrollment-reply",
            v,
        )?);
        Ok(())
    })?;
    reply.ok_or_else(|| Error::bad_payload(&b.path, "enrollment reply has no enrollment.json"))
}

/// Central: checks a reply against the centre registered: known, right token, the key
/// expected (if one was), a key not pinned for another, and the token not used by another
/// key. `Ok(false)` when the centre is already enrolled with this very key.
fn check_reply(tx: &crate::store::Tx<'_>, b: &Bundle, reply: &ReplyBody) -> Result<bool> {
    let refuse = |what: String| Error::Enrollment {
        path: b.path.clone(),
        what,
    };
    tx.refuse_if_revoked(&b.path, &reply.org_id)?;
    let row = tx
        .center(&reply.org_id)?
        .map(|c| (c.token_sha256, c.fingerprint, c.expected_fingerprint));
    let Some((token_sha, enrolled, expected)) = row else {
        return Err(refuse(format!(
            "unknown centre {}; register it with 'courier center add' first",
            reply.org_id
        )));
    };
    if token_sha != sha256_hex(&reply.token) {
        return Err(refuse(format!(
            "wrong or forged token for centre {}",
            reply.org_id
        )));
    }
    if let Some(f) = &expected {
        if *f != reply.center_fingerprint {
            return Err(refuse(format!(
                "centre {} was registered to enroll with key {f}, and this reply carries key {}; refused",
                reply.org_id, reply.center_fingerprint
            )));
        }
    }
    if let Some(r) = tx.peer_retired(&reply.center_fingerprint)? {
        return Err(refuse(format!(
            "key {} was retired here at {} ({}); the centre must enroll with a new key",
            reply.center_fingerprint, r.at, r.reason
        )));
    }
    // One key, one centre: a key pinned already (for another organisation, or as central's)
    // must not enroll a second one, or that one's data would be sealed to the first.
    if let Some(Peer {
        role, org_id: org, ..
    }) = tx.peer(&reply.center_fingerprint)?
    {
        if org.as_deref() != Some(reply.org_id.as_str()) {
            let holder = match org {
                Some(org) => format!("centre {org}"),
                None => role,
            };
            return Err(refuse(format!(
                "key {} is already pinned for {holder}; one key, one centre: centre {} must enroll with its own key",
                reply.center_fingerprint, reply.org_id
            )));
        }
    }
    match enrolled {
        Some(f) if f == reply.center_fingerprint => Ok(false),
        Some(f) => Err(refuse(format!(
            "the token of centre {} was already used by key {f}; this reply carries another key",
            reply.org_id
        ))),
        None => Ok(true),
    }
}

/// Most characters of a revocation reason.
const REASON_CHARS: usize = 200;

/// Central: revoke centre `org` (`center revoke ORG --reason TEXT`). From then on its bundles
/// are refused with the reason and nothing is exported to it; what it sent before stays.
/// The reason is one line of text (no control characters); the revocation is in the history.
/// Returns when it was revoked (RFC 3339).
pub fn revoke_center(site: &Site, org: &str, reason: &str) -> Result<String> {
    site.require(Role::Central)?;
    let reason = reason.trim();
    if reason.is_empty()
        || reason.chars().count() > REASON_CHARS
        || reason.chars().any(char::is_control)
    {
        return Err(Error::Usage {
            what: format!("--reason: give one line of text (at most {REASON_CHARS} characters) saying why the centre is revoked"),
        });
    }
    let mut store = site.store()?;
    let tx = store.begin()?;
    let Some(center) = tx.center(org)? else {
        return Err(Error::Usage {
            what: format!("unknown centre {org}; 'courier center list' shows the registered ones"),
        });
    };
    if let Some(at) = center.revoked_at {
        return Err(Error::Usage {
            what: format!(
                "centre {org} was already revoked at {at} ({}); nothing changed",
                center.revoked_reason.unwrap_or_default()
            ),
        });
    }
    let at = tx.revoke_center(org, reason)?;
    tx.add_history(crate::store::NewHistory {
        action: "center-revoke",
        org_id: Some(org),
        bundle_id: None,
        kind: None,
        seq: None,
        status: "success",
        counts: serde_json::json!({"centers": 1}),
        report: format!(
            "revoked centre {org} (key {}): {reason}",
            center.fingerprint.as_deref().unwrap_or("not enrolled")
        ),
    })?;
    tx.commit()?;
    Ok(at)
}
