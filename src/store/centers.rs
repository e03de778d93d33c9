//! Central: the test centres it registered, their enrollment, and what each confirmed.

use rusqlite::{params, OptionalExtension};

use super::Tx;
use crate::error::Result;

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
    Ok(Center {
        org_id: r.get(0)?,
        label: r.get(1)?,
        token_sha256: r.get(2)?,
        fingerprint: r.get(3)?,
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
    })
}

const COLUMNS: &str = "org_id, label, token_sha256, fingerprint, enrolled_at, next_seq, acked_seq, ack_upseq, packages_held, expected_fingerprint";

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
