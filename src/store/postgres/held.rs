//! PostgreSQL: [`HeldResults`], a centre's results and log batches. A centre's store is
//! SQLite only (its tables are not in schema-1.sql): every method refuses with
//! [`Error::CentreStoreOnly`], naming the method, and touches nothing.

#![allow(unused_variables)]

use super::PgTx;
use crate::error::{Error, Result};
use crate::store::*;
use crate::wire::ReceivedFiles;

impl HeldResults for PgTx<'_> {
    fn result_version(&self, execution_id: &str) -> Result<Option<(i64, String, SyncStatus)>> {
        Err(centre_only("result_version"))
    }

    fn result_finishtime(&self, execution_id: &str) -> Result<Option<String>> {
        Err(centre_only("result_finishtime"))
    }

    fn put_result(&self, r: &HeldResult, sealed: &[u8]) -> Result<()> {
        Err(centre_only("put_result"))
    }

    fn held_results(&self) -> Result<Vec<HeldResult>> {
        Err(centre_only("held_results"))
    }

    fn results_to_send(&self, states: &[String]) -> Result<Vec<(String, u64)>> {
        Err(centre_only("results_to_send"))
    }

    fn sent_unacknowledged(&self, states: &[String]) -> Result<Vec<SentItem>> {
        Err(centre_only("sent_unacknowledged"))
    }

    fn waiting_to_send(&self, states: &[String]) -> Result<Unsent> {
        Err(centre_only("waiting_to_send"))
    }

    fn sealed_result(&self, execution_id: &str) -> Result<(HeldResult, Vec<u8>)> {
        Err(centre_only("sealed_result"))
    }

    fn mark_result_sent(&self, execution_id: &str, seq: i64) -> Result<()> {
        Err(centre_only("mark_result_sent"))
    }

    fn mark_result_synchronized(&self, execution_id: &str, drop_content: bool) -> Result<()> {
        Err(centre_only("mark_result_synchronized"))
    }

    fn mark_result_conflict(&self, execution_id: &str, reason: &str) -> Result<()> {
        Err(centre_only("mark_result_conflict"))
    }

    fn mark_result_kept(&self, execution_id: &str, status: SyncStatus, reason: &str) -> Result<()> {
        Err(centre_only("mark_result_kept"))
    }

    fn central_received(&self) -> Result<Option<ReceivedFiles>> {
        Err(centre_only("central_received"))
    }

    fn set_central_received(&self, received: &ReceivedFiles) -> Result<()> {
        Err(centre_only("set_central_received"))
    }

    fn sent_by_file(&self) -> Result<Vec<(Option<i64>, Option<String>, Vec<String>, i64, i64)>> {
        Err(centre_only("sent_by_file"))
    }

    fn results_by_status(&self) -> Result<Vec<(SyncStatus, i64)>> {
        Err(centre_only("results_by_status"))
    }

    fn log_known(&self, log_id: &str) -> Result<bool> {
        Err(centre_only("log_known"))
    }

    fn add_log_batch(&self, batch: &HeldLogBatch, sealed: &[u8], log_ids: &[String]) -> Result<()> {
        Err(centre_only("add_log_batch"))
    }

    fn log_batches_to_send(&self, states: &[String]) -> Result<Vec<(String, u64)>> {
        Err(centre_only("log_batches_to_send"))
    }

    fn sealed_log_batch(&self, batch_id: &str) -> Result<(HeldLogBatch, Vec<u8>)> {
        Err(centre_only("sealed_log_batch"))
    }

    fn mark_log_batch_sent(&self, batch_id: &str, seq: i64) -> Result<()> {
        Err(centre_only("mark_log_batch_sent"))
    }

    fn mark_log_batch_synchronized(&self, batch_id: &str, drop_content: bool) -> Result<bool> {
        Err(centre_only("mark_log_batch_synchronized"))
    }

    fn mark_log_batch_kept_aside(&self, batch_id: &str) -> Result<bool> {
        Err(centre_only("mark_log_batch_kept_aside"))
    }
}

/// A centre's method called on central's PostgreSQL store.
fn centre_only(method: &'static str) -> Error {
    Error::CentreStoreOnly { method }
}
