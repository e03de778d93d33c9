//! PostgreSQL: [`CenterRegistry`], ported from SQLite's (`store/sqlite/centers.rs`), and the
//! per-centre lock that lets several importers work on different centres at once.

use std::path::Path;

use postgres::Row;

use super::{Lock, PgTx};
use crate::error::{Error, Result, StoreFailure};
use crate::store::prelude::*;
use crate::store::{Center, CenterFigures, LastBundle, ReceivedBundle, CENTER_COLUMNS};

/// A centre's row (columns [`CENTER_COLUMNS`]); its packages held that are not JSON are a
/// [`StoreFailure::Shape`] error, as on SQLite.
fn center(r: &Row) -> Result<Center> {
    let held: String = r.try_get(8)?;
    let fingerprint: Option<String> = r.try_get(3)?;
    let revoked_at: Option<String> = r.try_get(10)?;
    Ok(Center {
        org_id: r.try_get(0)?,
        label: r.try_get(1)?,
        token_sha256: r.try_get(2)?,
        status: Center::status_of(revoked_at.as_deref(), fingerprint.as_deref()),
        revoked_at,
        revoked_reason: r.try_get(11)?,
        fingerprint,
        enrolled_at: r.try_get(4)?,
        next_seq: r.try_get(5)?,
        acked_seq: r.try_get(6)?,
        ack_upseq: r.try_get(7)?,
        packages_held: Center::packages_from(&held).map_err(|message| Error::Store {
            kind: StoreFailure::Shape,
            message,
        })?,
        expected_fingerprint: r.try_get(9)?,
        earlier_keys: Vec::new(),
    })
}

fn last_bundle(r: &Row) -> Result<LastBundle, postgres::Error> {
    Ok(LastBundle {
        seq: r.try_get(0)?,
        at: r.try_get(1)?,
        bundle_id: r.try_get(2)?,
        file: r.try_get(3)?,
    })
}

const LAST_BUNDLE: &str = "SELECT seq, at, bundle_id, COALESCE(file_name, '') FROM bundles";

impl PgTx<'_> {
    /// The first bundle matching `filter` (an SQL condition on `bundles` with `$1`, and its
    /// order).
    fn last_bundle(&self, filter: &str, arg: &str) -> Result<Option<LastBundle>> {
        self.row(
            &format!("{LAST_BUNDLE} WHERE {filter} LIMIT 1"),
            &[&arg],
            last_bundle,
        )
    }

    /// How many rows of `table` belong to centre `org` (`what`: `COUNT(*)`, or a distinct count).
    fn count_for(&self, what: &str, table: &str, org: &str) -> Result<i64> {
        self.value(
            &format!("SELECT {what} FROM {table} WHERE org_id = $1"),
            &[&org],
        )
    }
}

impl CenterRegistry for PgTx<'_> {
    fn lock_center(&self, org: &str) -> Result<()> {
        self.lock(Lock::Center(org))
    }

    fn arrivals(&self, prefix_len: usize) -> Result<Vec<(String, i64)>> {
        let len = i32::try_from(prefix_len).unwrap_or(i32::MAX);
        self.rows(
            "SELECT substr(stored_at, 1, $1) COLLATE \"C\" AS slot, COUNT(*) FROM central_results
             GROUP BY slot ORDER BY slot",
            &[&len],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
        )
    }

    fn received_bundles(&self) -> Result<Vec<ReceivedBundle>> {
        self.rows(
            "SELECT COALESCE(org_id, ''), seq, payload_size FROM bundles
             WHERE direction = 'in' AND kind = 'results'
             ORDER BY org_id COLLATE \"C\" NULLS FIRST, seq",
            &[],
            |r| {
                Ok(ReceivedBundle {
                    org_id: r.try_get(0)?,
                    seq: r.try_get(1)?,
                    payload_size: r.try_get(2)?,
                })
            },
        )
    }

    fn center(&self, org: &str) -> Result<Option<Center>> {
        let found = self.row(
            &format!("SELECT {CENTER_COLUMNS} FROM centers WHERE org_id = $1"),
            &[&org],
            |r| Ok(center(r)),
        )?;
        found.transpose()
    }

    fn centers(&self) -> Result<Vec<Center>> {
        let found = self.rows(
            &format!("SELECT {CENTER_COLUMNS} FROM centers ORDER BY org_id COLLATE \"C\""),
            &[],
            |r| Ok(center(r)),
        )?;
        found.into_iter().collect()
    }

    fn add_center(
        &self,
        org: &str,
        label: &str,
        token_sha256: &str,
        expected_fingerprint: Option<&str>,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO centers (org_id, label, token_sha256, created_at, expected_fingerprint)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &org,
                &label,
                &token_sha256,
                &crate::time::now_rfc3339(),
                &expected_fingerprint,
            ],
        )?;
        Ok(())
    }

    fn set_center_enrolled(&self, org: &str, fingerprint: &str) -> Result<()> {
        self.exec(
            "UPDATE centers SET fingerprint = $1, enrolled_at = $2 WHERE org_id = $3",
            &[&fingerprint, &crate::time::now_rfc3339(), &org],
        )?;
        Ok(())
    }

    fn set_center_key(&self, org: &str, fingerprint: &str) -> Result<()> {
        self.exec(
            "UPDATE centers SET fingerprint = $1 WHERE org_id = $2",
            &[&fingerprint, &org],
        )?;
        Ok(())
    }

    fn reset_center_for_reenrollment(
        &self,
        org: &str,
        label: &str,
        token_sha256: &str,
    ) -> Result<()> {
        self.exec(
            "UPDATE centers SET label = $1, token_sha256 = $2, fingerprint = NULL,
             enrolled_at = NULL, expected_fingerprint = NULL, acked_seq = NULL, ack_upseq = 0,
             packages_held = '[]', revoked_at = NULL, revoked_reason = NULL WHERE org_id = $3",
            &[&label, &token_sha256, &org],
        )?;
        Ok(())
    }

    fn revoke_center(&self, org: &str, reason: &str) -> Result<String> {
        let at = crate::time::now_rfc3339();
        self.exec(
            "UPDATE centers SET revoked_at = $1, revoked_reason = $2 WHERE org_id = $3",
            &[&at, &reason, &org],
        )?;
        Ok(at)
    }

    fn refuse_if_revoked(&self, path: &Path, org: &str) -> Result<()> {
        crate::store::refuse_revoked(self.center(org)?, path, org)
    }

    fn set_center_next_seq(&self, org: &str, next_seq: i64) -> Result<()> {
        self.exec(
            "UPDATE centers SET next_seq = $1 WHERE org_id = $2",
            &[&next_seq, &org],
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
        self.exec(
            "UPDATE centers SET acked_seq = $1, ack_upseq = $2, packages_held = $3 WHERE org_id = $4",
            &[
                &acked_seq,
                &upseq,
                &serde_json::to_string(packages).unwrap_or_default(),
                &org,
            ],
        )?;
        Ok(())
    }

    fn center_figures(&self, org: &str, fingerprint: Option<&str>) -> Result<CenterFigures> {
        let mut f = CenterFigures {
            results_received: self.count_for("COUNT(*)", "central_results", org)?,
            results_kept_aside: self.count_for(
                "COUNT(DISTINCT execution_id)",
                "quarantine",
                org,
            )?,
            logs_received: self.count_for("COUNT(*)", "central_logs", org)?,
            acks_unconfirmed: self.count_for("COUNT(*)", "acks_out", org)?,
            last_sent: self.last_bundle(
                "direction = 'out' AND kind = 'data' AND org_id = $1 ORDER BY seq DESC",
                org,
            )?,
            ..Default::default()
        };
        if let Some(fpr) = fingerprint {
            f.last_received = self.last_bundle(
                "direction = 'in' AND kind = 'results' AND sender = $1 ORDER BY seq DESC",
                fpr,
            )?;
            f.last_contact = self
                .last_bundle(
                    "direction = 'in' AND kind = 'results' AND sender = $1
                     ORDER BY at COLLATE \"C\" DESC",
                    fpr,
                )?
                .map(|b| b.at);
            f.received_seqs = self.received_seqs(fpr)?;
        }
        Ok(f)
    }

    fn received_seqs(&self, sender: &str) -> Result<Vec<i64>> {
        self.rows(
            "WITH RECURSIVE chain(f) AS (
                 SELECT $1::TEXT UNION SELECT p.fingerprint FROM peers p JOIN chain c ON p.replaced_by = c.f)
             SELECT DISTINCT seq FROM bundles
             WHERE direction = 'in' AND kind = 'results' AND sender IN (SELECT f FROM chain)
             ORDER BY seq",
            &[&sender],
            |r| r.try_get(0),
        )
    }

    fn bundle_by_seq(&self, direction: &str, kind: &str, seq: i64) -> Result<Option<LastBundle>> {
        self.row(
            &format!(
                "{LAST_BUNDLE} WHERE direction = $1 AND kind = $2 AND seq = $3
                 ORDER BY rowid DESC LIMIT 1"
            ),
            &[&direction, &kind, &seq],
            last_bundle,
        )
    }

    fn last_applied(&self, kind: &str) -> Result<Option<LastBundle>> {
        self.last_bundle("direction = 'in' AND kind = $1 ORDER BY rowid DESC", kind)
    }
}
