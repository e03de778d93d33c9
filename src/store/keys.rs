//! Keys that changed (issue 11): pinned keys retired by a rollover or a re-enrollment, and
//! the rollover statements this site owes its peers.

use rusqlite::{params, OptionalExtension};

use super::Tx;
use crate::error::Result;

/// A pinned key that no longer speaks for its site from a sequence on.
#[derive(Debug, Clone)]
pub struct Retired {
    /// The key that replaced it (a rollover); `None` when it was revoked (re-enrollment).
    pub replaced_by: Option<String>,
    /// Its bundles with this sequence or a later one are refused.
    pub from_seq: i64,
    pub at: String,
    pub reason: String,
}

impl Tx<'_> {
    /// Whether (and how) a pinned key was retired.
    pub fn peer_retired(&self, fingerprint: &str) -> Result<Option<Retired>> {
        Ok(self
            .tx
            .query_row(
                "SELECT replaced_by, retired_from_seq, retired_at, retired_reason FROM peers
                 WHERE fingerprint = ?1 AND retired_from_seq IS NOT NULL",
                [fingerprint],
                |r| {
                    Ok(Retired {
                        replaced_by: r.get(0)?,
                        from_seq: r.get(1)?,
                        at: r.get(2)?,
                        reason: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Retire a pinned key from sequence `from_seq` on, replaced by `replaced_by` (or revoked).
    pub fn retire_peer(
        &self,
        fingerprint: &str,
        replaced_by: Option<&str>,
        from_seq: i64,
        reason: &str,
    ) -> Result<()> {
        self.tx.execute(
            "UPDATE peers SET replaced_by = ?1, retired_from_seq = ?2, retired_at = ?3,
             retired_reason = ?4 WHERE fingerprint = ?5",
            params![
                replaced_by,
                from_seq,
                crate::time::now_rfc3339(),
                reason,
                fingerprint
            ],
        )?;
        Ok(())
    }

    /// Owe `peer` (an org id, or `central`) a rollover statement until it acknowledges it.
    pub fn owe_rollover(
        &self,
        peer: &str,
        new_fingerprint: &str,
        from_seq: i64,
        statement: &str,
    ) -> Result<()> {
        self.tx.execute(
            "INSERT INTO rollovers_out (peer, new_fingerprint, from_seq, statement, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                peer,
                new_fingerprint,
                from_seq,
                statement,
                crate::time::now_rfc3339()
            ],
        )?;
        Ok(())
    }

    /// The rollover statements `peer` has not acknowledged, oldest first (JSON text).
    pub fn rollovers_owed(&self, peer: &str) -> Result<Vec<String>> {
        let mut stmt = self.tx.prepare(
            "SELECT statement FROM rollovers_out WHERE peer = ?1 AND acked_at IS NULL
             ORDER BY rowid",
        )?;
        let rows = stmt.query_map([peer], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// `peer` addressed a bundle to this site's key `fingerprint`: every rollover up to that
    /// key is acknowledged. Returns how many were.
    pub fn rollovers_acked(&self, peer: &str, fingerprint: &str) -> Result<usize> {
        Ok(self.tx.execute(
            "UPDATE rollovers_out SET acked_at = ?1 WHERE peer = ?2 AND acked_at IS NULL
             AND rowid <= (SELECT MAX(rowid) FROM rollovers_out WHERE peer = ?2
                           AND new_fingerprint = ?3)",
            params![crate::time::now_rfc3339(), peer, fingerprint],
        )?)
    }

    /// Highest sequence of a bundle of `kind` applied here from any sender (a centre's data
    /// bundles come from its central under each of its keys in turn).
    pub fn max_seq_in(&self, kind: &str) -> Result<Option<i64>> {
        Ok(self.tx.query_row(
            "SELECT MAX(seq) FROM bundles WHERE direction = 'in' AND kind = ?1",
            [kind],
            |r| r.get(0),
        )?)
    }
}
