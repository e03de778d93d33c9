//! `courier status`: what is pending, late or lost, computed from the store in one read
//! transaction and returned as a report the binary prints (schemas/status.schema.json).
//!
//! At central, one row per registered centre: what it sent and was sent, what central
//! still owes it, the upward files central never applied while it applied later ones, and
//! whether it is late (not heard from for more than `late_after_days`, counted from its
//! enrollment when it never sent a results bundle). At a centre: what waits to be sent,
//! what was sent and not acknowledged with the file it went in and where that file stands
//! at central, and the last data bundle applied. Times are this site's clock (the
//! `COURIER_NOW` variable sets it, see `time`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::Result;
use crate::site::{Role, Site};
use crate::store::{Center, LastBundle, Tx, Unsent};
use crate::wire::{FileFate, ReceivedFiles};

/// At most this many missing upward sequences are listed per centre.
const MISSING_LISTED: usize = 100;

/// The report of `courier status`.
#[derive(Debug, Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Status {
    Central(CentralStatus),
    Center(CenterStatus),
}

/// Central's view of every centre.
#[derive(Debug, Serialize)]
pub struct CentralStatus {
    /// When the report was made (central's clock).
    pub generated_at: String,
    /// The threshold used: a centre not heard from for more days than this is late.
    pub late_after_days: u64,
    pub centers: Vec<CenterRow>,
    /// Org ids of the late centres, in order.
    pub late: Vec<String>,
}

/// One centre as central sees it.
#[derive(Debug, Serialize)]
pub struct CenterRow {
    pub org_id: String,
    pub label: String,
    /// "not-enrolled", "enrolled" or "revoked".
    pub status: &'static str,
    pub fingerprint: Option<String>,
    pub enrolled_at: Option<String>,
    pub revoked_at: Option<String>,
    pub revoked_reason: Option<String>,
    /// The results bundle with the highest sequence applied from the centre.
    pub last_received: Option<LastBundle>,
    /// The data bundle written last for the centre.
    pub last_sent: Option<LastBundle>,
    /// When central last applied a results bundle of the centre.
    pub last_contact: Option<String>,
    /// Whole days since `last_contact` (null: never heard from).
    pub days_since_contact: Option<i64>,
    pub results_received: i64,
    pub results_kept_aside: i64,
    pub logs_received: i64,
    /// Data bundles written whose content the centre has not confirmed holding.
    pub data_unconfirmed: i64,
    /// Acknowledgements of its results and logs the centre has not confirmed receiving.
    pub acks_unconfirmed: i64,
    /// Upward file sequences below the highest applied that central never applied: lost,
    /// on their way, or carrying nothing but an acknowledgement. Central cannot tell which
    /// (the centre can: its `status` names the results of a lost file, and its export sends
    /// them again), and a gap stays listed after its content arrived in a later file; at
    /// most 100 listed.
    pub missing_files: Vec<i64>,
    pub late: bool,
    /// Why the centre needs attention, in one line (late).
    pub warning: Option<String>,
}

/// A centre's view of what it sent and holds.
#[derive(Debug, Serialize)]
pub struct CenterStatus {
    pub generated_at: String,
    pub org_id: String,
    /// Never sent yet.
    pub waiting: Unsent,
    /// Sent and not acknowledged, by the file they went in (oldest first).
    pub sent: Vec<SentFile>,
    /// Execution ids of results whose file central is known to miss.
    pub lost_results: Vec<String>,
    /// Results held, by sync status (`synchronized`, `conflict`, ...).
    pub results: BTreeMap<String, i64>,
    /// The last data bundle applied from central.
    pub last_data: Option<LastBundle>,
    /// When this centre last applied a data bundle (its clock): its last news from central.
    pub last_contact: Option<String>,
    pub days_since_contact: Option<i64>,
    /// Whether central ever said which of this centre's files it applied.
    pub central_reported_files: bool,
}

/// Results and log batches that went in one upward file and are not acknowledged.
#[derive(Debug, Serialize)]
pub struct SentFile {
    /// The file's upward sequence (null: sent before courier noted it).
    pub seq: Option<i64>,
    pub bundle_id: Option<String>,
    pub file: Option<String>,
    pub sent_at: Option<String>,
    /// `applied` (central applied the file, answers pending), `missing` (central applied
    /// later files but not this one), `not_seen_yet`, `unknown`.
    pub fate: FileFate,
    pub results: usize,
    pub log_batches: i64,
    pub logs: i64,
}

/// Compute the status of a site; `late_after_days` overrides the setting (central).
pub fn status(site: &Site, late_after_days: Option<u64>) -> Result<Status> {
    let mut store = site.store()?;
    let tx = store.read()?;
    let now = crate::time::unix_now();
    Ok(match site.role() {
        Role::Central => {
            let days = late_after_days.unwrap_or(site.config.settings.late_after_days);
            Status::Central(central_status(&tx, days, now)?)
        }
        Role::Center => Status::Center(center_status(site, &tx, now)?),
    })
}

/// Central's status, read in the caller's transaction (`status`, and the exam-day report).
pub fn central_status(tx: &Tx<'_>, late_after_days: u64, now: i64) -> Result<CentralStatus> {
    let mut centers = Vec::new();
    for c in tx.centers()? {
        centers.push(center_row(tx, c, late_after_days, now)?);
    }
    Ok(CentralStatus {
        generated_at: crate::time::rfc3339(now),
        late_after_days,
        late: centers
            .iter()
            .filter(|c| c.late)
            .map(|c| c.org_id.clone())
            .collect(),
        centers,
    })
}

/// One centre's row: figures from the store, then lateness and warnings.
pub fn center_row(tx: &Tx<'_>, c: Center, late_after_days: u64, now: i64) -> Result<CenterRow> {
    let f = tx.center_figures(&c.org_id, c.fingerprint.as_deref())?;
    let missing_files =
        ReceivedFiles::from_seqs(f.received_seqs.iter().copied()).missing(MISSING_LISTED);
    let since = |t: &Option<String>| t.as_deref().and_then(|t| crate::time::days_between(t, now));
    let days_since_contact = since(&f.last_contact);
    // Late: enrolled, not revoked, and silent for longer than the threshold since its last
    // results bundle (or since enrollment when it never sent one).
    let reference = f.last_contact.as_ref().or(c.enrolled_at.as_ref());
    let silent = reference
        .and_then(|t| crate::time::parse_time(t))
        .map(|t| now - t);
    let late = c.status == "enrolled"
        && silent.is_some_and(|s| s > (late_after_days as i64).saturating_mul(86_400));
    let warning = late.then(|| match days_since_contact {
        Some(d) => format!("late: no results bundle for {d} day(s)"),
        None => format!(
            "late: no results bundle since enrollment {} day(s) ago",
            since(&c.enrolled_at).unwrap_or(0)
        ),
    });
    Ok(CenterRow {
        data_unconfirmed: (c.next_seq - 1 - c.acked_seq.unwrap_or(0)).max(0),
        acks_unconfirmed: f.acks_unconfirmed,
        results_received: f.results_received,
        results_kept_aside: f.results_kept_aside,
        logs_received: f.logs_received,
        last_received: f.last_received,
        last_sent: f.last_sent,
        last_contact: f.last_contact,
        days_since_contact,
        missing_files,
        late,
        warning,
        org_id: c.org_id,
        label: c.label,
        status: c.status,
        fingerprint: c.fingerprint,
        enrolled_at: c.enrolled_at,
        revoked_at: c.revoked_at,
        revoked_reason: c.revoked_reason,
    })
}

fn center_status(site: &Site, tx: &Tx<'_>, now: i64) -> Result<CenterStatus> {
    let received = tx.central_received()?;
    let mut sent = Vec::new();
    let mut lost_results = Vec::new();
    for (seq, sent_at, results, log_batches, logs) in tx.sent_by_file()? {
        let fate = ReceivedFiles::fate(received.as_ref(), seq);
        let bundle = match seq {
            Some(s) => tx.bundle_by_seq("out", crate::bundle::Kind::Results.as_str(), s)?,
            None => None,
        };
        if fate == FileFate::Missing {
            lost_results.extend(results.iter().cloned());
        }
        sent.push(SentFile {
            seq,
            bundle_id: bundle.as_ref().map(|b| b.bundle_id.clone()),
            file: bundle.map(|b| crate::fs::file_name(std::path::Path::new(&b.file))),
            sent_at,
            fate,
            results: results.len(),
            log_batches,
            logs,
        });
    }
    let last_data = tx.last_applied(crate::bundle::Kind::Data.as_str())?;
    let last_contact = last_data.as_ref().map(|b| b.at.clone());
    Ok(CenterStatus {
        generated_at: crate::time::rfc3339(now),
        org_id: site.org_id()?.to_string(),
        waiting: tx.waiting_to_send(&site.config.settings.status_executions_to_sync)?,
        sent,
        lost_results,
        results: tx
            .results_by_status()?
            .into_iter()
            .map(|(s, n)| (s.as_str().to_string(), n))
            .collect(),
        days_since_contact: last_contact
            .as_deref()
            .and_then(|t| crate::time::days_between(t, now)),
        last_contact,
        last_data,
        central_reported_files: received.is_some(),
    })
}

/// `center list`: each registered centre with its last contact and whether it is late.
#[derive(Debug, Serialize)]
pub struct ListedCenter {
    #[serde(flatten)]
    pub center: Center,
    pub last_contact: Option<String>,
    pub days_since_contact: Option<i64>,
    pub late: bool,
}

/// Central: the registered centres, with the essentials of `status`.
pub fn list_centers(site: &Site) -> Result<Vec<ListedCenter>> {
    site.require(Role::Central)?;
    let mut store = site.store()?;
    let tx = store.read()?;
    let now = crate::time::unix_now();
    let days = site.config.settings.late_after_days;
    let mut out = Vec::new();
    for mut c in tx.centers()? {
        // The keys the centre used before its current one: replaced or revoked.
        c.earlier_keys = tx
            .peer_keys(Some(&c.org_id))?
            .into_iter()
            .filter(|k| k.status != "current")
            .collect();
        let row = center_row(&tx, c.clone(), days, now)?;
        out.push(ListedCenter {
            center: c,
            last_contact: row.last_contact,
            days_since_contact: row.days_since_contact,
            late: row.late,
        });
    }
    Ok(out)
}
