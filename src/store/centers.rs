//! Central: the test centres it registered, their enrollment, and what each confirmed.

use std::path::Path;

use rusqlite::{params, OptionalExtension};

use super::Tx;
use crate::error::{Error, Result};

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
    /// it re-enrolled, with the reason (filled by [`crate::enroll::list_centers`] only).
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

fn center(r: &rusqlite::Row<'_>) -> rusqlite::Result<Center> {
    let held: String = r.get(8)?;
    let fingerprint: Option<String> = r.get(3)?;
    let revoked_at: Option<String> = r.get(10)?;
    Ok(Center {
        org_id: r.get(0)?,
        label: r.get(1)?,
        token_sha256: r.get(2)?,
        status: match (&revoked_at, &fingerprint) {
            (Some(_), _) => "revoked",
            (None, Some(_)) => "enrolled",
            (None, None) => "not-enrolled",
        },
        revoked_at,
        revoked_reason: r.get(11)?,
        fingerprint,
        enrolled_at: r.get(4)?,
        next_seq: r.get(5)?,
        acked_seq: r.get(6)?,
        ack_upseq: r.get(7)?,
        packages_held: serde_json::from_str(&held).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                8,
                rusqlite::types::Type::Text,
                format!("centre's packages held are not valid JSON ({e})").into(),
            )
        })?,
        expected_fingerprint: r.get(9)?,
        earlier_keys: Vec::new(),
    })
}

const COLUMNS: &str = "org_id, label, token_sha256, fingerprint, enrolled_at, next_seq, acked_seq, ack_upseq, packages_held, expected_fingerprint, revoked_at, revoked_reason";

impl Tx<'_> {
    pub fn center(&self, org: &str) -> Result<Option<Center>> {
        Ok(self
            .tx
            .query_row(
                &format!("SELECT {COLUMNS} FROM centers WHERE org_id = ?1"),
                [org],
                center,
            )
            .optional()?)
    }

    pub fn centers(&self) -> Result<Vec<Center>> {
        let mut stmt = self
            .tx
            .prepare(&format!("SELECT {COLUMNS} FROM centers ORDER BY org_id"))?;
        let rows = stmt.query_map([], center)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Register a centre with the SHA-256 of its one-time token, and the fingerprint of the
    /// key its reply must carry when central was given it up front.
    pub fn add_center(
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

    /// The centre's reply was accepted: its key is the one for the org.
    pub fn set_center_enrolled(&self, org: &str, fingerprint: &str) -> Result<()> {
        self.tx.execute(
            "UPDATE centers SET fingerprint = ?1, enrolled_at = ?2 WHERE org_id = ?3",
            params![fingerprint, crate::time::now_rfc3339(), org],
        )?;
        Ok(())
    }

    /// A centre's key rolled over: its bundles are now addressed to and checked with `fingerprint`.
    pub fn set_center_key(&self, org: &str, fingerprint: &str) -> Result<()> {
        self.tx.execute(
            "UPDATE centers SET fingerprint = ?1 WHERE org_id = ?2",
            params![fingerprint, org],
        )?;
        Ok(())
    }

    /// `center reenroll`: the centre waits for a new enrollment reply (new token, no key), and
    /// central forgets what the old machine confirmed holding, so the next data bundle carries
    /// the whole scope and every package. Its data sequence goes on; a revocation is lifted.
    pub fn reset_center_for_reenrollment(
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

    /// Central revokes a centre, with the reason; returns when (RFC 3339).
    pub fn revoke_center(&self, org: &str, reason: &str) -> Result<String> {
        let at = crate::time::now_rfc3339();
        self.tx.execute(
            "UPDATE centers SET revoked_at = ?1, revoked_reason = ?2 WHERE org_id = ?3",
            params![at, reason, org],
        )?;
        Ok(at)
    }

    /// Refuse the bundle at `path` when it comes from centre `org` and central revoked it.
    pub fn refuse_if_revoked(&self, path: &Path, org: &str) -> Result<()> {
        match self.center(org)? {
            Some(Center {
                revoked_at: Some(at),
                revoked_reason,
                ..
            }) => Err(Error::CenterRevoked {
                path: path.to_path_buf(),
                org: org.to_string(),
                at,
                reason: revoked_reason.unwrap_or_default(),
            }),
            _ => Ok(()),
        }
    }

    pub fn set_center_next_seq(&self, org: &str, next_seq: i64) -> Result<()> {
        self.tx.execute(
            "UPDATE centers SET next_seq = ?1 WHERE org_id = ?2",
            params![next_seq, org],
        )?;
        Ok(())
    }

    /// Record what the centre confirmed with the acknowledgement of upward sequence `upseq`.
    pub fn set_center_ack(
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
}
