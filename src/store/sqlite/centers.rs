//! Central: the test centres it registered, their enrollment, and what each confirmed.

use std::path::Path;

use rusqlite::{params, OptionalExtension};

use super::SqliteTx;
use crate::error::Result;
use crate::store::prelude::*;

/// A registered centre.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Center {
    pub org_id: String,
    pub label: String,
    /// Set once the centre's enrollment reply was imported.
    pub fingerprint: Option<String>,
    /// The key central expects the reply to carry (`center add --expect-fingerprint`).
    pub expected_fingerprint: Option<String>,
    pub enrolled_at: Option<String>,
    /// Sequence of the next data bundle.
    pub next_seq: i64,
    /// Data bundle whose content the centre confirmed holding.
    pub acked_seq: Option<i64>,
    /// "not-enrolled", "enrolled" or "revoked".
    pub status: &'static str,
    /// When central revoked the centre (`center revoke`), and why.
    pub revoked_at: Option<String>,
    pub revoked_reason: Option<String>,
    /// Keys this centre used before its current one: replaced by a rollover, or revoked when
    /// it re-enrolled, with the reason (filled only by `center list`, in the status module).
    pub earlier_keys: Vec<super::PeerKey>,
    #[serde(skip)]
    pub token_sha256: String,
    /// Upward sequence of the acknowledgement applied last.
    #[serde(skip)]
    pub ack_upseq: i64,
    /// Test packages the centre reported holding.
    #[serde(skip)]
    pub packages_held: Vec<String>,
}

impl Center {
    /// A centre's status: "revoked" once revoked, else "enrolled" once it has a key, else
    /// "not-enrolled".
    pub fn status_of(revoked_at: Option<&str>, fingerprint: Option<&str>) -> &'static str {
        match (revoked_at, fingerprint) {
            (Some(_), _) => "revoked",
            (None, Some(_)) => "enrolled",
            (None, None) => "not-enrolled",
        }
    }

    /// The packages a centre reported holding, from their stored JSON text.
    pub fn packages_from(stored: &str) -> std::result::Result<Vec<String>, String> {
        serde_json::from_str(stored)
            .map_err(|e| format!("centre's packages held are not valid JSON ({e})"))
    }
}

fn center(r: &rusqlite::Row<'_>) -> rusqlite::Result<Center> {
    let held: String = r.get(8)?;
    let fingerprint: Option<String> = r.get(3)?;
    let revoked_at: Option<String> = r.get(10)?;
    Ok(Center {
        org_id: r.get(0)?,
        label: r.get(1)?,
        token_sha256: r.get(2)?,
        status: Center::status_of(revoked_at.as_deref(), fingerprint.as_deref()),
        revoked_at,
        revoked_reason: r.get(11)?,
        fingerprint,
        enrolled_at: r.get(4)?,
        next_seq: r.get(5)?,
        acked_seq: r.get(6)?,
        ack_upseq: r.get(7)?,
        packages_held: Center::packages_from(&held).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(8, rusqlite::types::Type::Text, e.into())
        })?,
        expected_fingerprint: r.get(9)?,
        earlier_keys: Vec::new(),
    })
}

pub(crate) const CENTER_COLUMNS: &str = "org_id, label, token_sha256, fingerprint, enrolled_at, next_seq, acked_seq, ack_upseq, packages_held, expected_fingerprint, revoked_at, revoked_reason";

/// A bundle as `status` shows it: sequence, when it was written or applied here (this
/// site's clock), its id and file name.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LastBundle {
    pub seq: i64,
    pub at: String,
    pub bundle_id: String,
    pub file: String,
}

/// Central's figures about one centre, for `status`.
#[derive(Debug, Clone, Default)]
pub struct CenterFigures {
    pub results_received: i64,
    /// Executions kept aside (quarantined: conflict, out of scope, unreadable).
    pub results_kept_aside: i64,
    pub logs_received: i64,
    /// Acknowledgements central owes the centre that it has not confirmed receiving.
    pub acks_unconfirmed: i64,
    /// The results bundle with the highest sequence applied from the centre.
    pub last_received: Option<LastBundle>,
    /// When central applied a results bundle from the centre last (its clock).
    pub last_contact: Option<String>,
    /// The data bundle written last for the centre.
    pub last_sent: Option<LastBundle>,
    /// Upward sequences applied from the centre, ascending.
    pub received_seqs: Vec<i64>,
}

impl SqliteTx<'_> {
    /// The first bundle matching `filter` (an SQL condition on `bundles` with `?1`, and its
    /// order).
    fn last_bundle(&self, filter: &str, arg: &str) -> Result<Option<LastBundle>> {
        Ok(self
            .tx
            .query_row(
                &format!(
                    "SELECT seq, at, bundle_id, COALESCE(file_name, '') FROM bundles WHERE {filter} LIMIT 1"
                ),
                [arg],
                last_bundle_row,
            )
            .optional()?)
    }
}

impl CenterRegistry for SqliteTx<'_> {
    /// Nothing to take: a SQLite store has one writer at a time, whose transaction holds the
    /// whole store (`BEGIN IMMEDIATE`).
    fn lock_center(&self, _org: &str) -> Result<()> {
        Ok(())
    }

    fn arrivals(&self, prefix_len: usize) -> Result<Vec<(String, i64)>> {
        let mut stmt = self.tx.prepare(
            "SELECT substr(stored_at, 1, ?1) AS slot, COUNT(*) FROM central_results
             GROUP BY slot ORDER BY slot",
        )?;
        let rows = stmt.query_map([prefix_len as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn received_bundles(&self) -> Result<Vec<ReceivedBundle>> {
        let mut stmt = self.tx.prepare(
            "SELECT COALESCE(org_id, ''), seq, payload_size FROM bundles
             WHERE direction = 'in' AND kind = 'results' ORDER BY org_id, seq",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ReceivedBundle {
                org_id: r.get(0)?,
                seq: r.get(1)?,
                payload_size: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn center(&self, org: &str) -> Result<Option<Center>> {
        Ok(self
            .tx
            .query_row(
                &format!("SELECT {CENTER_COLUMNS} FROM centers WHERE org_id = ?1"),
                [org],
                center,
            )
            .optional()?)
    }

    fn centers(&self) -> Result<Vec<Center>> {
        let mut stmt = self.tx.prepare(&format!(
            "SELECT {CENTER_COLUMNS} FROM centers ORDER BY org_id"
        ))?;
        let rows = stmt.query_map([], center)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn add_center(
        &self,
        org: &str,
        label: &str,
        token_sha256: &str,
        expected_fingerprint: Option<&str>,
    ) -> Result<()> {
        self.tx.execute(
            "INSERT INTO centers (org_id, label, token_sha256, created_at, expected_fingerprint)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                org,
                label,
                token_sha256,
                crate::time::now_rfc3339(),
                expected_fingerprint
            ],
        )?;
        Ok(())
    }

    fn set_center_enrolled(&self, org: &str, fingerprint: &str) -> Result<()> {
        self.tx.execute(
            "UPDATE centers SET fingerprint = ?1, enrolled_at = ?2 WHERE org_id = ?3",
            params![fingerprint, crate::time::now_rfc3339(), org],
        )?;
        Ok(())
    }

    fn set_center_key(&self, org: &str, fingerprint: &str) -> Result<()> {
        self.tx.execute(
            "UPDATE centers SET fingerprint = ?1 WHERE org_id = ?2",
            params![fingerprint, org],
        )?;
        Ok(())
    }

    fn reset_center_for_reenrollment(
        &self,
        org: &str,
        label: &str,
        token_sha256: &str,
    ) -> Result<()> {
        self.tx.execute(
            "UPDATE centers SET label = ?1, token_sha256 = ?2, fingerprint = NULL,
             enrolled_at = NULL, expected_fingerprint = NULL, acked_seq = NULL, ack_upseq = 0,
             packages_held = '[]', revoked_at = NULL, revoked_reason = NULL WHERE org_id = ?3",
            params![label, token_sha256, org],
        )?;
        Ok(())
    }

    fn revoke_center(&self, org: &str, reason: &str) -> Result<String> {
        let at = crate::time::now_rfc3339();
        self.tx.execute(
            "UPDATE centers SET revoked_at = ?1, revoked_reason = ?2 WHERE org_id = ?3",
            params![at, reason, org],
        )?;
        Ok(at)
    }

    fn refuse_if_revoked(&self, path: &Path, org: &str) -> Result<()> {
        crate::store::refuse_revoked(self.center(org)?, path, org)
    }

    fn set_center_next_seq(&self, org: &str, next_seq: i64) -> Result<()> {
        self.tx.execute(
            "UPDATE centers SET next_seq = ?1 WHERE org_id = ?2",
            params![next_seq, org],
        )?;
        Ok(())
    }

    fn set_center_ack(
        &self,
        org: &str,
        acked_seq: Option<i64>,
        upseq: i64,
        packages: &[String],
    ) -> Result<()> {
        self.tx.execute(
            "UPDATE centers SET acked_seq = ?1, ack_upseq = ?2, packages_held = ?3 WHERE org_id = ?4",
            params![acked_seq, upseq, serde_json::to_string(packages).unwrap_or_default(), org],
        )?;
        Ok(())
    }

    fn center_figures(&self, org: &str, fingerprint: Option<&str>) -> Result<CenterFigures> {
        let count = |sql: &str| -> Result<i64> { Ok(self.tx.query_row(sql, [org], |r| r.get(0))?) };
        let mut f = CenterFigures {
            results_received: count("SELECT COUNT(*) FROM central_results WHERE org_id = ?1")?,
            results_kept_aside: count(
                "SELECT COUNT(DISTINCT execution_id) FROM quarantine WHERE org_id = ?1",
            )?,
            logs_received: count("SELECT COUNT(*) FROM central_logs WHERE org_id = ?1")?,
            acks_unconfirmed: count("SELECT COUNT(*) FROM acks_out WHERE org_id = ?1")?,
            last_sent: self.last_bundle(
                "direction = 'out' AND kind = 'data' AND org_id = ?1 ORDER BY seq DESC",
                org,
            )?,
            ..Default::default()
        };
        if let Some(fpr) = fingerprint {
            f.last_received = self.last_bundle(
                "direction = 'in' AND kind = 'results' AND sender = ?1 ORDER BY seq DESC",
                fpr,
            )?;
            f.last_contact = self
                .last_bundle(
                    "direction = 'in' AND kind = 'results' AND sender = ?1 ORDER BY at DESC",
                    fpr,
                )?
                .map(|b| b.at);
            f.received_seqs = self.received_seqs(fpr)?;
        }
        Ok(f)
    }

    fn received_seqs(&self, sender: &str) -> Result<Vec<i64>> {
        let mut stmt = self.tx.prepare(
            "WITH RECURSIVE chain(f) AS (
                 SELECT ?1 UNION SELECT p.fingerprint FROM peers p JOIN chain c ON p.replaced_by = c.f)
             SELECT DISTINCT seq FROM bundles
             WHERE direction = 'in' AND kind = 'results' AND sender IN (SELECT f FROM chain)
             ORDER BY seq",
        )?;
        let rows = stmt.query_map([sender], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn bundle_by_seq(&self, direction: &str, kind: &str, seq: i64) -> Result<Option<LastBundle>> {
        Ok(self
            .tx
            .query_row(
                "SELECT seq, at, bundle_id, COALESCE(file_name, '') FROM bundles
                 WHERE direction = ?1 AND kind = ?2 AND seq = ?3 ORDER BY rowid DESC LIMIT 1",
                params![direction, kind, seq],
                last_bundle_row,
            )
            .optional()?)
    }

    fn last_applied(&self, kind: &str) -> Result<Option<LastBundle>> {
        self.last_bundle("direction = 'in' AND kind = ?1 ORDER BY rowid DESC", kind)
    }
}

/// A results bundle central applied, for the exam-day report's size chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedBundle {
    pub org_id: String,
    pub seq: i64,
    /// Payload bytes; `None` when applied before sizes were recorded.
    pub payload_size: Option<i64>,
}

fn last_bundle_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LastBundle> {
    Ok(LastBundle {
        seq: r.get(0)?,
        at: r.get(1)?,
        bundle_id: r.get(2)?,
        file: r.get(3)?,
    })
}
