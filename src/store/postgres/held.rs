//! PostgreSQL: [`HeldResults`] (not yet written: every method says so).

#![allow(unused_variables)]

use super::{not_yet, PgTx};
use crate::error::Result;
use crate::store::*;
use crate::wire::ReceivedFiles;

impl HeldResults for PgTx<'_> {
    fn result_version(&self, execution_id: &str) -> Result<Option<(i64, String, SyncStatus)>> {
        Err(not_yet("result_version"))
    }

    fn result_finishtime(&self, execution_id: &str) -> Result<Option<String>> {
        Err(not_yet("result_finishtime"))
    }

    fn put_result(&self, r: &HeldResult, sealed: &[u8]) -> Result<()> {
        Err(not_yet("put_result"))
    }

    fn held_results(&self) -> Result<Vec<HeldResult>> {
        Err(not_yet("held_results"))
    }

    fn results_to_send(&self, states: &[String]) -> Result<Vec<(String, u64)>> {
        Err(not_yet("results_to_send"))
    }

    fn sent_unacknowledged(&self, states: &[String]) -> Result<Vec<SentItem>> {
        Err(not_yet("sent_unacknowledged"))
    }

    fn waiting_to_send(&self, states: &[String]) -> Result<Unsent> {
        Err(not_yet("waiting_to_send"))
    }

    fn sealed_result(&self, execution_id: &str) -> Result<(HeldResult, Vec<u8>)> {
        Err(not_yet("sealed_result"))
    }

    fn mark_result_sent(&self, execution_id: &str, seq: i64) -> Result<()> {
        Err(not_yet("mark_result_sent"))
    }

    fn mark_result_synchronized(&self, execution_id: &str, drop_content: bool) -> Result<()> {
        Err(not_yet("mark_result_synchronized"))
    }

    fn mark_result_conflict(&self, execution_id: &str, reason: &str) -> Result<()> {
        Err(not_yet("mark_result_conflict"))
    }

    fn mark_result_kept(&self, execution_id: &str, status: SyncStatus, reason: &str) -> Result<()> {
        Err(not_yet("mark_result_kept"))
    }

    fn central_received(&self) -> Result<Option<ReceivedFiles>> {
        Err(not_yet("central_received"))
    }

    fn set_central_received(&self, received: &ReceivedFiles) -> Result<()> {
        Err(not_yet("set_central_received"))
    }

    fn sent_by_file(&self) -> Result<Vec<(Option<i64>, Option<String>, Vec<String>, i64, i64)>> {
        Err(not_yet("sent_by_file"))
    }

    fn results_by_status(&self) -> Result<Vec<(SyncStatus, i64)>> {
        Err(not_yet("results_by_status"))
    }

    fn log_known(&self, log_id: &str) -> Result<bool> {
        Err(not_yet("log_known"))
    }

    fn add_log_batch(&self, batch: &HeldLogBatch, sealed: &[u8], log_ids: &[String]) -> Result<()> {
        Err(not_yet("add_log_batch"))
    }

    fn log_batches_to_send(&self, states: &[String]) -> Result<Vec<(String, u64)>> {
        Err(not_yet("log_batches_to_send"))
    }

    fn sealed_log_batch(&self, batch_id: &str) -> Result<(HeldLogBatch, Vec<u8>)> {
        Err(not_yet("sealed_log_batch"))
    }

    fn mark_log_batch_sent(&self, batch_id: &str, seq: i64) -> Result<()> {
        Err(not_yet("mark_log_batch_sent"))
    }

    fn mark_log_batch_synchronized(&self, batch_id: &str, drop_content: bool) -> Result<bool> {
        Err(not_yet("mark_log_batch_synchronized"))
    }

    fn mark_log_batch_kept_aside(&self, batch_id: &str) -> Result<bool> {
        Err(not_yet("mark_log_batch_kept_aside"))
    }
}
