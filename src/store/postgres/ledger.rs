//! PostgreSQL: [`Ledger`], [`HistoryArchive`] (not yet written: every method says so).

#![allow(unused_variables)]

use super::{not_yet, PgTx};
use crate::error::Result;
use crate::store::*;

impl Ledger for PgTx<'_> {
    fn meta_get(&self, key: &str) -> Result<Option<String>> {
        Err(not_yet("meta_get"))
    }

    fn meta_set(&self, key: &str, value: &str) -> Result<()> {
        Err(not_yet("meta_set"))
    }

    fn next_counter(&self, key: &str) -> Result<i64> {
        Err(not_yet("next_counter"))
    }

    fn pin_peer(
        &self,
        fingerprint: &str,
        role: &str,
        org_id: Option<&str>,
        cert: &str,
    ) -> Result<()> {
        Err(not_yet("pin_peer"))
    }

    fn peer(&self, fingerprint: &str) -> Result<Option<Peer>> {
        Err(not_yet("peer"))
    }

    fn peer_by_role(&self, role: &str) -> Result<Option<PinnedPeer>> {
        Err(not_yet("peer_by_role"))
    }

    fn bundle_seen(&self, sender: &str, bundle_id: &str) -> Result<bool> {
        Err(not_yet("bundle_seen"))
    }

    fn bundle_id_other_senders(&self, sender: &str, bundle_id: &str) -> Result<Vec<OtherSender>> {
        Err(not_yet("bundle_id_other_senders"))
    }

    fn last_seq_in(&self, sender: &str, kind: &str) -> Result<Option<i64>> {
        Err(not_yet("last_seq_in"))
    }

    fn applied_bundles(&self, kind: &str, limit: i64) -> Result<Vec<AppliedBundle>> {
        Err(not_yet("applied_bundles"))
    }

    fn last_applied_seq(&self, kind: &str) -> Result<Option<i64>> {
        Err(not_yet("last_applied_seq"))
    }

    fn set_parts_received(&self, set_id: &str) -> Result<Vec<u64>> {
        Err(not_yet("set_parts_received"))
    }

    fn record_bundle(&self, direction: &str, r: &BundleRecord<'_>, file_name: &str) -> Result<()> {
        Err(not_yet("record_bundle"))
    }

    fn add_history(&self, h: NewHistory<'_>) -> Result<i64> {
        Err(not_yet("add_history"))
    }

    fn history(&self, org: Option<&str>, limit: i64) -> Result<Vec<HistoryEntry>> {
        Err(not_yet("history"))
    }

    fn history_head(&self) -> Result<Option<HistoryHead>> {
        Err(not_yet("history_head"))
    }

    fn history_hash(&self, n: i64) -> Result<Option<String>> {
        Err(not_yet("history_hash"))
    }

    fn verify_history(&self) -> Result<Option<i64>> {
        Err(not_yet("verify_history"))
    }

    fn entity_actions(&self, entity_id: &str) -> Result<Vec<EntityAction>> {
        Err(not_yet("entity_actions"))
    }

    fn entity_history(
        &self,
        history_n: i64,
        entity_id: &str,
        kind: &str,
        action: &str,
    ) -> Result<()> {
        Err(not_yet("entity_history"))
    }
}

impl HistoryArchive for PgTx<'_> {
    fn history_start(&self) -> Result<HistoryStart> {
        Err(not_yet("history_start"))
    }

    fn each_history_row(
        &self,
        through: Option<i64>,
        f: &mut dyn FnMut(HistoryRow) -> Result<bool>,
    ) -> Result<()> {
        Err(not_yet("each_history_row"))
    }

    fn each_archived_action(
        &self,
        through: i64,
        f: &mut dyn FnMut(ArchivedAction) -> Result<()>,
    ) -> Result<()> {
        Err(not_yet("each_archived_action"))
    }

    fn history_prefix_before(&self, date: &str) -> Result<Option<i64>> {
        Err(not_yet("history_prefix_before"))
    }

    fn prune_history(&self, through: i64, archive_manifest_sha256: &str) -> Result<i64> {
        Err(not_yet("prune_history"))
    }
}
