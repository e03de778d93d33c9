//! PostgreSQL: [`CenterRegistry`] (not yet written: every method says so).

#![allow(unused_variables)]

use std::path::Path;

use super::{not_yet, PgTx};
use crate::error::Result;
use crate::store::*;

impl CenterRegistry for PgTx<'_> {
    fn arrivals(&self, prefix_len: usize) -> Result<Vec<(String, i64)>> {
        Err(not_yet("arrivals"))
    }

    fn received_bundles(&self) -> Result<Vec<ReceivedBundle>> {
        Err(not_yet("received_bundles"))
    }

    fn center(&self, org: &str) -> Result<Option<Center>> {
        Err(not_yet("center"))
    }

    fn centers(&self) -> Result<Vec<Center>> {
        Err(not_yet("centers"))
    }

    fn add_center(
        &self,
        org: &str,
        label: &str,
        token_sha256: &str,
        expected_fingerprint: Option<&str>,
    ) -> Result<()> {
        Err(not_yet("add_center"))
    }

    fn set_center_enrolled(&self, org: &str, fingerprint: &str) -> Result<()> {
        Err(not_yet("set_center_enrolled"))
    }

    fn set_center_key(&self, org: &str, fingerprint: &str) -> Result<()> {
        Err(not_yet("set_center_key"))
    }

    fn reset_center_for_reenrollment(
        &self,
        org: &str,
        label: &str,
        token_sha256: &str,
    ) -> Result<()> {
        Err(not_yet("reset_center_for_reenrollment"))
    }

    fn revoke_center(&self, org: &str, reason: &str) -> Result<String> {
        Err(not_yet("revoke_center"))
    }

    fn refuse_if_revoked(&self, path: &Path, org: &str) -> Result<()> {
        Err(not_yet("refuse_if_revoked"))
    }

    fn set_center_next_seq(&self, org: &str, next_seq: i64) -> Result<()> {
        Err(not_yet("set_center_next_seq"))
    }

    fn set_center_ack(
        &self,
        org: &str,
        acked_seq: Option<i64>,
        upseq: i64,
        packages: &[String],
    ) -> Result<()> {
        Err(not_yet("set_center_ack"))
    }

    fn center_figures(&self, org: &str, fingerprint: Option<&str>) -> Result<CenterFigures> {
        Err(not_yet("center_figures"))
    }

    fn received_seqs(&self, sender: &str) -> Result<Vec<i64>> {
        Err(not_yet("received_seqs"))
    }

    fn bundle_by_seq(&self, direction: &str, kind: &str, seq: i64) -> Result<Option<LastBundle>> {
        Err(not_yet("bundle_by_seq"))
    }

    fn last_applied(&self, kind: &str) -> Result<Option<LastBundle>> {
        Err(not_yet("last_applied"))
    }
}
