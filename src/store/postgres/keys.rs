//! PostgreSQL: [`Keyring`] (not yet written: every method says so).

#![allow(unused_variables)]

use super::{not_yet, PgTx};
use crate::error::Result;
use crate::store::*;

impl Keyring for PgTx<'_> {
    fn peer_retired(&self, fingerprint: &str) -> Result<Option<Retired>> {
        Err(not_yet("peer_retired"))
    }

    fn retire_peer(
        &self,
        fingerprint: &str,
        replaced_by: Option<&str>,
        from_seq: i64,
        reason: &str,
    ) -> Result<()> {
        Err(not_yet("retire_peer"))
    }

    fn owe_rollover(
        &self,
        peer: &str,
        new_fingerprint: &str,
        from_seq: i64,
        statement: &str,
    ) -> Result<()> {
        Err(not_yet("owe_rollover"))
    }

    fn rollovers_owed(&self, peer: &str) -> Result<Vec<String>> {
        Err(not_yet("rollovers_owed"))
    }

    fn rollovers_acked(&self, peer: &str, fingerprint: &str) -> Result<usize> {
        Err(not_yet("rollovers_acked"))
    }

    fn max_seq_in(&self, kind: &str) -> Result<Option<i64>> {
        Err(not_yet("max_seq_in"))
    }

    fn revoked_central(&self) -> Result<Option<(String, Retired)>> {
        Err(not_yet("revoked_central"))
    }

    fn set_bundles_floor(&self) -> Result<()> {
        Err(not_yet("set_bundles_floor"))
    }

    fn own_key_replaced(&self, old: &str, old_created: &str, new: &str) -> Result<()> {
        Err(not_yet("own_key_replaced"))
    }

    fn own_keys(&self) -> Result<Vec<OwnKey>> {
        Err(not_yet("own_keys"))
    }

    fn peer_keys(&self, org: Option<&str>) -> Result<Vec<PeerKey>> {
        Err(not_yet("peer_keys"))
    }
}
