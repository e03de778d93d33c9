//! Keys that changed (issue 11): pinned keys retired by a rollover or a re-enrollment, and
//! the rollover statements this site owes its peers.

use rusqlite::{params, OptionalExtension};

use super::{SqliteTx, SINCE_FLOOR};
use crate::error::Result;
use crate::store::prelude::*;

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

/// A key of this site's own, current or replaced (`keys show`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct OwnKey {
    pub fingerprint: String,
    /// When it was made (for the site's first key: the config's `created`, filled by the caller).
    pub created_at: Option<String>,
    /// "current" or "replaced".
    pub status: &'static str,
    pub replaced_by: Option<String>,
    pub retired_at: Option<String>,
}

/// A key pinned here for a peer, with what became of it (`keys show`, `center list`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PeerKey {
    pub fingerprint: String,
    /// "central" or "center".
    pub role: String,
    pub org_id: Option<String>,
    pub pinned_at: String,
    /// "current", "replaced" (a rollover) or "revoked" (re-enrollment, `keys revoke-peer`).
    pub status: &'static str,
    pub replaced_by: Option<String>,
    /// Its bundles with this sequence or a later one are refused.
    pub retired_from_seq: Option<i64>,
    pub retired_at: Option<String>,
    pub reason: Option<String>,
}

impl PeerKey {
    /// A pinned key's status from its retirement: "current", "replaced" or "revoked".
    pub fn status_of(retired_from_seq: Option<i64>, replaced_by: Option<&str>) -> &'static str {
        match (retired_from_seq, replaced_by) {
            (None, _) => "current",
            (Some(_), Some(_)) => "replaced",
            (Some(_), None) => "revoked",
        }
    }
}

impl OwnKey {
    /// An own key's status: "replaced" once another key replaced it, else "current".
    pub fn status_of(replaced_by: Option<&str>) -> &'static str {
        match replaced_by {
            Some(_) => "replaced",
            None => "current",
        }
    }
}

fn peer_key(r: &rusqlite::Row<'_>) -> rusqlite::Result<PeerKey> {
    let replaced_by: Option<String> = r.get(5)?;
    let from: Option<i64> = r.get(6)?;
    Ok(PeerKey {
        fingerprint: r.get(0)?,
        role: r.get(1)?,
        org_id: r.get(2)?,
        pinned_at: r.get(3)?,
        status: PeerKey::status_of(from, replaced_by.as_deref()),
        reason: r.get(4)?,
        replaced_by,
        retired_from_seq: from,
        retired_at: r.get(7)?,
    })
}

impl Keyring for SqliteTx<'_> {
    fn peer_retired(&self, fingerprint: &str) -> Result<Option<Retired>> {
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

    fn retire_peer(
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

    fn owe_rollover(
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

    fn rollovers_owed(&self, peer: &str) -> Result<Vec<String>> {
        let mut stmt = self.tx.prepare(
            "SELECT statement FROM rollovers_out WHERE peer = ?1 AND acked_at IS NULL
             ORDER BY rowid",
        )?;
        let rows = stmt.query_map([peer], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn rollovers_acked(&self, peer: &str, fingerprint: &str) -> Result<usize> {
        Ok(self.tx.execute(
            "UPDATE rollovers_out SET acked_at = ?1 WHERE peer = ?2 AND acked_at IS NULL
             AND rowid <= (SELECT MAX(rowid) FROM rollovers_out WHERE peer = ?2
                           AND new_fingerprint = ?3)",
            params![crate::time::now_rfc3339(), peer, fingerprint],
        )?)
    }

    fn max_seq_in(&self, kind: &str) -> Result<Option<i64>> {
        Ok(self.tx.query_row(
            &format!(
                "SELECT MAX(seq) FROM bundles WHERE direction = 'in' AND kind = ?1 {SINCE_FLOOR}"
            ),
            [kind],
            |r| r.get(0),
        )?)
    }

    fn revoked_central(&self) -> Result<Option<(String, Retired)>> {
        Ok(self
            .tx
            .query_row(
                "SELECT fingerprint, retired_from_seq, retired_at, retired_reason FROM peers
                 WHERE role = 'central' AND replaced_by IS NULL AND retired_from_seq IS NOT NULL
                 ORDER BY retired_at DESC, rowid DESC LIMIT 1",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        Retired {
                            replaced_by: None,
                            from_seq: r.get(1)?,
                            at: r.get(2)?,
                            reason: r.get(3)?,
                        },
                    ))
                },
            )
            .optional()?)
    }

    fn set_bundles_floor(&self) -> Result<()> {
        let last: i64 =
            self.tx
                .query_row("SELECT COALESCE(MAX(rowid), 0) FROM bundles", [], |r| {
                    r.get(0)
                })?;
        self.meta_set("bundles_floor", &last.to_string())
    }

    fn own_key_replaced(&self, old: &str, old_created: &str, new: &str) -> Result<()> {
        let now = crate::time::now_rfc3339();
        self.tx.execute(
            "INSERT OR IGNORE INTO own_keys (fingerprint, created_at) VALUES (?1, ?2)",
            params![old, old_created],
        )?;
        self.tx.execute(
            "UPDATE own_keys SET replaced_by = ?1, retired_at = ?2 WHERE fingerprint = ?3",
            params![new, now, old],
        )?;
        self.tx.execute(
            "INSERT OR IGNORE INTO own_keys (fingerprint, created_at) VALUES (?1, ?2)",
            params![new, now],
        )?;
        Ok(())
    }

    fn own_keys(&self) -> Result<Vec<OwnKey>> {
        let mut stmt = self.tx.prepare(
            "SELECT fingerprint, created_at, replaced_by, retired_at FROM own_keys ORDER BY rowid",
        )?;
        let rows = stmt.query_map([], |r| {
            let replaced_by: Option<String> = r.get(2)?;
            Ok(OwnKey {
                fingerprint: r.get(0)?,
                created_at: r.get(1)?,
                status: OwnKey::status_of(replaced_by.as_deref()),
                replaced_by,
                retired_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn peer_keys(&self, org: Option<&str>) -> Result<Vec<PeerKey>> {
        let mut stmt = self.tx.prepare(
            "SELECT fingerprint, role, org_id, pinned_at, retired_reason, replaced_by,
             retired_from_seq, retired_at FROM peers
             WHERE ?1 IS NULL OR org_id = ?1 ORDER BY pinned_at, rowid",
        )?;
        let rows = stmt.query_map([org], peer_key)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
