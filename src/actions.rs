//! Decisions the binary used to take itself, as library calls that return reports for it
//! to print: which export a site's role means, what a history query reads from the store,
//! notes about incomplete sets after an import or a verify, and a site's key summary.
//! The binary (src/bin/courier/) holds no store access; it calls these.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::downsync::{self, ExportReport};
use crate::error::{Error, Result};
use crate::import::{find_paths, Found};
use crate::site::{self, Role, Site};
use crate::store::{EntityAction, HistoryEntry, OwnKey, PeerKey};
use crate::upsync;

/// `courier export`: central exports to one centre (`to` required, no size limit); a centre
/// exports to its central (no `to`), with an optional `max_file_size` such as "4M" and what
/// to send again (`resend`). A warning about the size limit itself comes first in the
/// report's warnings.
pub fn export(
    site: &Site,
    to: Option<&str>,
    out: &Path,
    max_file_size: Option<&str>,
    resend: upsync::Resend,
) -> Result<ExportReport> {
    match site.role() {
        Role::Central => {
            let org = to.ok_or_else(|| Error::Usage {
                what: "central exports need --to ORG_ID".into(),
            })?;
            if max_file_size.is_some() {
                return Err(Error::Usage {
                    what: "--max-file-size applies to centre exports".into(),
                });
            }
            if resend != upsync::Resend::WhenDue {
                return Err(Error::Usage {
                    what: "--resend and --resend-all apply to centre exports (central's data bundles always carry what a centre may lack)".into(),
                });
            }
            downsync::export(site, org, out)
        }
        Role::Center => {
            if to.is_some() {
                return Err(Error::Usage {
                    what: "a centre exports to its central only; drop --to".into(),
                });
            }
            let max = max_file_size.map(site::parse_size).transpose()?;
            let early: Vec<String> = max
                .and_then(site::max_file_size_warning)
                .into_iter()
                .collect();
            let mut report = upsync::export(site, out, max, resend)?;
            report.warnings.splice(0..0, early);
            Ok(report)
        }
    }
}

/// `courier export --to-all`: central's next data bundle for every centre (see
/// [`downsync::export_all`]); at a centre a usage error.
pub fn export_all(site: &Site, out: &Path) -> Result<downsync::BatchExport> {
    if site.role() != Role::Central {
        return Err(Error::Usage {
            what: "--to-all is for central (a centre exports to its central only; drop --to-all)"
                .into(),
        });
    }
    downsync::export_all(site, out)
}

/// What `courier history` asks for.
pub enum HistoryQuery<'a> {
    /// Check the hash chain and its signed head.
    Verify,
    /// Sign the head of the history now (it is signed after every command that can unlock
    /// the key; this is for rows written without the passphrase).
    Anchor,
    /// What each sync did to one entity.
    Entity(&'a str),
    /// The most recent `limit` entries, optionally with one organisation only.
    Log { org: Option<&'a str>, limit: i64 },
}

/// The answer to a [`HistoryQuery`].
pub enum History {
    Verified(crate::anchor::Verification),
    Anchored(crate::anchor::Anchored),
    Entity(Vec<EntityAction>),
    Log(Vec<HistoryEntry>),
}

/// Read the sync history of a site (one read transaction).
pub fn history(site: &Site, query: HistoryQuery<'_>) -> Result<History> {
    Ok(match query {
        HistoryQuery::Verify => History::Verified(crate::anchor::verify(site)?),
        HistoryQuery::Anchor => {
            History::Anchored(crate::anchor::anchor(site, crate::anchor::Mode::Start)?)
        }
        HistoryQuery::Entity(id) => History::Entity(site.store()?.read()?.entity_actions(id)?),
        HistoryQuery::Log { org, limit } => {
            let mut store = site.store()?;
            let tx = store.read()?;
            if let Some(org) = org {
                check_org_known(site, &tx, org)?;
            }
            History::Log(tx.history(Some(org).flatten(), limit)?)
        }
    })
}

/// `history --org ORG` names a centre this site knows: at central a registered one, at a
/// centre its own organisation. Otherwise a usage error says so (an empty history would
/// look like a centre that never synced).
fn check_org_known(site: &Site, tx: &crate::store::Tx<'_>, org: &str) -> Result<()> {
    let known = match site.role() {
        Role::Central => tx.center(org)?.is_some(),
        Role::Center => site.config.org_id.as_deref() == Some(org),
    };
    if known {
        return Ok(());
    }
    Err(Error::Usage {
        what: match site.role() {
            Role::Central => format!(
                "no centre {org} is registered here, so no history names it; 'courier center list' shows the registered centres"
            ),
            Role::Center => format!(
                "this centre is {}, not {org}; its history is about itself only (drop --org)",
                site.config.org_id.as_deref().unwrap_or("?")
            ),
        },
    })
}

/// The sets whose parts are neither all among the bundle files found under `paths` nor
/// applied here before, each part missing named with the file name expected for it. A note
/// only: when the store cannot be read (its failure was reported with each file), the parts
/// applied before are not left out.
pub fn incomplete_sets(site: &Site, paths: &[PathBuf]) -> Vec<upsync::IncompleteSet> {
    let files: Vec<PathBuf> = find_paths(paths, &["courier"])
        .into_iter()
        .filter_map(|f| match f {
            Found::File(p) => Some(p),
            _ => None,
        })
        .collect();
    let mut sets = upsync::describe_sets(&files);
    if sets.is_empty() {
        return sets;
    }
    let Ok(mut store) = site.store() else {
        return sets;
    };
    let Ok(tx) = store.read() else {
        return sets;
    };
    for set in &mut sets {
        let applied = tx.set_parts_received(&set.set_id).unwrap_or_default();
        set.missing.retain(|m| !applied.contains(&m.part));
    }
    sets.retain(|s| !s.missing.is_empty());
    sets
}

/// `courier keys show` / `init --json`: who this site is.
#[derive(Debug, Serialize)]
pub struct KeyInfo {
    pub fingerprint: String,
    /// The wire value ("central", "center").
    pub role: String,
    /// The role in text ("central", "centre").
    #[serde(skip)]
    pub role_label: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub protected: bool,
    pub home: String,
    /// The site's own keys, oldest first: the current one last.
    pub keys: Vec<OwnKey>,
    /// The keys pinned for its peers, in the order they were pinned, with what became of them.
    pub peers: Vec<PeerKey>,
}

/// The key summary of a site.
pub fn key_info(site: &Site) -> Result<KeyInfo> {
    let key = crate::crypto::parse_cert(&site.secret_key_armored()?)?;
    let protected = crate::crypto::SecretKey::is_protected(&key);
    let (keys, peers) = key_history(site)?;
    Ok(KeyInfo {
        fingerprint: site.config.fingerprint.clone(),
        role: site.role().to_string(),
        role_label: site.role().label(),
        org_id: site.config.org_id.clone(),
        name: site.config.name.clone(),
        protected,
        home: site.home.display().to_string(),
        keys,
        peers,
    })
}

/// The site's own key history and its peers' keys (one read transaction). The site's first
/// key was made with the site (`created` of courier.json); a key made by `keys rotate` has
/// its own date.
fn key_history(site: &Site) -> Result<(Vec<OwnKey>, Vec<PeerKey>)> {
    let mut store = site.store()?;
    let tx = store.read()?;
    let mut keys = tx.own_keys()?;
    let current = &site.config.fingerprint;
    if !keys.iter().any(|k| &k.fingerprint == current) {
        keys.push(OwnKey {
            fingerprint: current.clone(),
            created_at: None,
            status: "current",
            replaced_by: None,
            retired_at: None,
        });
    }
    if let Some(first) = keys.first_mut().filter(|k| k.created_at.is_none()) {
        first.created_at = Some(site.config.created.clone());
    }
    Ok((keys, tx.peer_keys(None)?))
}

/// `keys passwd`: protect the site's key with `new` (or store it unprotected with `None`),
/// then sign the history's head with the key as it is now (the passphrase the command
/// started with no longer opens it).
pub fn change_passphrase(
    site: &Site,
    new: Option<&str>,
) -> Result<(crate::site::PassphraseChange, crate::anchor::Anchored)> {
    let change = site.change_passphrase(new)?;
    let pass = match new {
        Some(p) => crate::site::Passphrase::given(p),
        None => crate::site::Passphrase::none(),
    };
    let site = Site::open(&site.home, pass)?
        .with_store_password_file(site.store_password_file().map(Into::into));
    let anchored = crate::anchor::anchor(&site, crate::anchor::Mode::Extend)?;
    Ok((change, anchored))
}

/// One line about a pinned key for people (`keys show`, `center list`): whose, and what
/// became of it.
pub fn describe_peer_key(k: &PeerKey) -> String {
    let whose = match &k.org_id {
        Some(org) => format!("centre {org}"),
        None => k.role.clone(),
    };
    let fpr = crate::crypto::grouped(&k.fingerprint);
    let at = k.retired_at.as_deref().unwrap_or("");
    let from = k.retired_from_seq.unwrap_or(0);
    let reason = k.reason.as_deref().unwrap_or("");
    match (k.status, &k.replaced_by) {
        ("current", _) => format!("{whose} {fpr}: pinned {}, current", k.pinned_at),
        (_, Some(new)) => format!(
            "{whose} {fpr}: pinned {}, replaced by {new} from sequence {from} on ({at})",
            k.pinned_at
        ),
        _ if from == 0 => format!(
            "{whose} {fpr}: pinned {}, REVOKED at {at}: {reason}",
            k.pinned_at
        ),
        _ => format!(
            "{whose} {fpr}: pinned {}, REVOKED from sequence {from} on at {at}: {reason}",
            k.pinned_at
        ),
    }
}

/// One line about one of the site's own keys for people (`keys show`).
pub fn describe_own_key(k: &OwnKey) -> String {
    let made = k.created_at.as_deref().unwrap_or("?");
    match &k.replaced_by {
        Some(new) => format!(
            "{}: made {made}, replaced by {new} at {} (kept to decrypt only)",
            crate::crypto::grouped(&k.fingerprint),
            k.retired_at.as_deref().unwrap_or("?")
        ),
        None => format!(
            "{}: made {made}, current",
            crate::crypto::grouped(&k.fingerprint)
        ),
    }
}
