//! PostgreSQL: [`Keyring`], ported from SQLite's (`store/sqlite/keys.rs`).

use postgres::Row;

use super::ledger::SINCE_FLOOR;
use super::PgTx;
use crate::error::Result;
use crate::store::prelude::*;
use crate::store::{OwnKey, PeerKey, Retired};

fn peer_key(r: &Row) -> Result<PeerKey, postgres::Error> {
    let replaced_by: Option<String> = r.try_get(5)?;
    let from: Option<i64> = r.try_get(6)?;
    Ok(PeerKey {
        fingerprint: r.try_get(0)?,
        role: r.try_get(1)?,
        org_id: r.try_get(2)?,
        pinned_at: r.try_get(3)?,
        status: PeerKey::status_of(from, replaced_by.as_deref()),
        reason: r.try_get(4)?,
        replaced_by,
        retired_from_seq: from,
        retired_at: r.try_get(7)?,
    })
}

impl Keyring for PgTx<'_> {
    fn peer_retired(&self, fingerprint: &str) -> Result<Option<Retired>> {
        self.row(
            "SELECT replaced_by, retired_from_seq, retired_at, retired_reason FROM peers
             WHERE fingerprint = $1 AND retired_from_seq IS NOT NULL",
            &[&fingerprint],
            |r| {
                Ok(Retired {
                    replaced_by: r.try_get(0)?,
                    from_seq: r.try_get(1)?,
                    at: r.try_get(2)?,
                    reason: r.try_get(3)?,
                })
            },
        )
    }

    fn retire_peer(
        &self,
        fingerprint: &str,
        replaced_by: Option<&str>,
        from_seq: i64,
        reason: &str,
    ) -> Result<()> {
        self.exec(
            "UPDATE peers SET replaced_by = $1, retired_from_seq = $2, retired_at = $3,
             retired_reason = $4 WHERE fingerprint = $5",
            &[
                &replaced_by,
                &from_seq,
                &crate::time::now_rfc3339(),
                &reason,
                &fingerprint,
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
        self.exec(
            "INSERT INTO rollovers_out (peer, new_fingerprint, from_seq, statement, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &peer,
                &new_fingerprint,
                &from_seq,
                &statement,
                &crate::time::now_rfc3339(),
            ],
        )?;
        Ok(())
    }

    fn rollovers_owed(&self, peer: &str) -> Result<Vec<String>> {
        self.rows(
            "SELECT statement FROM rollovers_out WHERE peer = $1 AND acked_at IS NULL
             ORDER BY rowid",
            &[&peer],
            |r| r.try_get(0),
        )
    }

    fn rollovers_acked(&self, peer: &str, fingerprint: &str) -> Result<usize> {
        let acked = self.exec(
            "UPDATE rollovers_out SET acked_at = $1 WHERE peer = $2 AND acked_at IS NULL
             AND rowid <= (SELECT MAX(rowid) FROM rollovers_out WHERE peer = $2
                           AND new_fingerprint = $3)",
            &[&crate::time::now_rfc3339(), &peer, &fingerprint],
        )?;
        Ok(acked as usize)
    }

    fn max_seq_in(&self, kind: &str) -> Result<Option<i64>> {
        self.value(
            &format!(
                "SELECT MAX(seq) FROM bundles WHERE direction = 'in' AND kind = $1 {SINCE_FLOOR}"
            ),
            &[&kind],
        )
    }

    fn revoked_central(&self) -> Result<Option<(String, Retired)>> {
        self.row(
            "SELECT fingerprint, retired_from_seq, retired_at, retired_reason FROM peers
             WHERE role = 'central' AND replaced_by IS NULL AND retired_from_seq IS NOT NULL
             ORDER BY retired_at COLLATE \"C\" DESC NULLS LAST, rowid DESC LIMIT 1",
            &[],
            |r| {
                Ok((
                    r.try_get(0)?,
                    Retired {
                        replaced_by: None,
                        from_seq: r.try_get(1)?,
                        at: r.try_get(2)?,
                        reason: r.try_get(3)?,
                    },
                ))
            },
        )
    }

    fn set_bundles_floor(&self) -> Result<()> {
        let last: i64 = self.value("SELECT COALESCE(MAX(rowid), 0) FROM bundles", &[])?;
        self.meta_set("bundles_floor", &last.to_string())
    }

    fn own_key_replaced(&self, old: &str, old_created: &str, new: &str) -> Result<()> {
        let now = crate::time::now_rfc3339();
        let add = "INSERT INTO own_keys (fingerprint, created_at) VALUES ($1, $2)
                   ON CONFLICT DO NOTHING";
        self.exec(add, &[&old, &old_created])?;
        self.exec(
            "UPDATE own_keys SET replaced_by = $1, retired_at = $2 WHERE fingerprint = $3",
            &[&new, &now, &old],
        )?;
        self.exec(add, &[&new, &now])?;
        Ok(())
    }

    fn own_keys(&self) -> Result<Vec<OwnKey>> {
        self.rows(
            "SELECT fingerprint, created_at, replaced_by, retired_at FROM own_keys ORDER BY rowid",
            &[],
            |r| {
                let replaced_by: Option<String> = r.try_get(2)?;
                Ok(OwnKey {
                    fingerprint: r.try_get(0)?,
                    created_at: r.try_get(1)?,
                    status: OwnKey::status_of(replaced_by.as_deref()),
                    replaced_by,
                    retired_at: r.try_get(3)?,
                })
            },
        )
    }

    fn peer_keys(&self, org: Option<&str>) -> Result<Vec<PeerKey>> {
        self.rows(
            "SELECT fingerprint, role, org_id, pinned_at, retired_reason, replaced_by,
             retired_from_seq, retired_at FROM peers
             WHERE $1::TEXT IS NULL OR org_id = $1 ORDER BY pinned_at COLLATE \"C\", rowid",
            &[&org],
            peer_key,
        )
    }
}
