//! PostgreSQL: [`EntityStore`] (not yet written: every method says so).

#![allow(unused_variables)]

use super::{not_yet, PgTx};
use crate::error::Result;
use crate::store::*;

impl EntityStore for PgTx<'_> {
    fn entity(&self, id: &str) -> Result<Option<StoredEntity>> {
        Err(not_yet("entity"))
    }

    fn entity_checksum(&self, id: &str) -> Result<Option<String>> {
        Err(not_yet("entity_checksum"))
    }

    fn entity_kind(&self, id: &str) -> Result<Option<String>> {
        Err(not_yet("entity_kind"))
    }

    fn holds(&self, id: &str, kind: &str) -> Result<bool> {
        Err(not_yet("holds"))
    }

    fn entities_of_type(&self, kind: &str) -> Result<Vec<StoredEntity>> {
        Err(not_yet("entities_of_type"))
    }

    fn all_entities(&self) -> Result<Vec<StoredEntity>> {
        Err(not_yet("all_entities"))
    }

    fn inventory(&self) -> Result<Vec<ScopeItem>> {
        Err(not_yet("inventory"))
    }

    fn put_entity(&self, e: &StoredEntity) -> Result<()> {
        Err(not_yet("put_entity"))
    }

    fn delete_entity(&self, id: &str) -> Result<bool> {
        Err(not_yet("delete_entity"))
    }

    fn package_known(&self, sha256: &str) -> Result<bool> {
        Err(not_yet("package_known"))
    }

    fn add_package(&self, sha256: &str, size: u64, name: &str) -> Result<()> {
        Err(not_yet("add_package"))
    }

    fn package_hashes(&self) -> Result<Vec<String>> {
        Err(not_yet("package_hashes"))
    }

    fn drop_unused_packages(&self) -> Result<Vec<String>> {
        Err(not_yet("drop_unused_packages"))
    }

    fn deliveries_without_package(&self) -> Result<Vec<String>> {
        Err(not_yet("deliveries_without_package"))
    }

    fn record_scope(&self, org: &str, seq: i64, items: &[ScopeItem]) -> Result<()> {
        Err(not_yet("record_scope"))
    }

    fn scopes_since(&self, org: &str, from_seq: i64) -> Result<Vec<(i64, ScopeItem)>> {
        Err(not_yet("scopes_since"))
    }

    fn record_sent_pairs(&self, org: &str, seq: i64, pairs: &[(&str, &str)]) -> Result<()> {
        Err(not_yet("record_sent_pairs"))
    }

    fn pair_sent(&self, org: &str, delivery: &str, taker: &str) -> Result<bool> {
        Err(not_yet("pair_sent"))
    }

    fn delivery_sent(&self, org: &str, delivery: &str) -> Result<bool> {
        Err(not_yet("delivery_sent"))
    }

    fn forget_scopes_before(&self, org: &str, seq: i64) -> Result<()> {
        Err(not_yet("forget_scopes_before"))
    }
}
