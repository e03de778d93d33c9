//! PostgreSQL: [`CentralResults`] (not yet written: every method says so).

#![allow(unused_variables)]

use serde_json::Value;

use super::{not_yet, PgTx};
use crate::error::Result;
use crate::store::*;

impl CentralResults for PgTx<'_> {
    fn central_result_version(&self, central_id: &str) -> Result<Option<(i64, String)>> {
        Err(not_yet("central_result_version"))
    }

    fn central_result_held(
        &self,
        central_id: &str,
    ) -> Result<Option<(i64, String, Option<String>)>> {
        Err(not_yet("central_result_held"))
    }

    fn quarantine_reason(&self, org: &str, execution_id: &str) -> Result<Option<String>> {
        Err(not_yet("quarantine_reason"))
    }

    fn quarantine_logs(
        &self,
        org: &str,
        batch_id: &str,
        execution_id: &str,
        reason: &str,
        bundle_id: Option<&str>,
        content: &str,
    ) -> Result<()> {
        Err(not_yet("quarantine_logs"))
    }

    fn put_central_result(
        &self,
        r: &CentralResult,
        bundle_id: &str,
        variables: &[StoredVariable<'_>],
    ) -> Result<()> {
        Err(not_yet("put_central_result"))
    }

    fn quarantine(&self, q: &Quarantined<'_>) -> Result<()> {
        Err(not_yet("quarantine"))
    }

    fn for_each_central_result(
        &self,
        each: &mut dyn FnMut(CentralResult, Vec<Value>) -> Result<()>,
    ) -> Result<u64> {
        Err(not_yet("for_each_central_result"))
    }

    fn put_central_logs(
        &self,
        org: &str,
        central_id: &str,
        execution_id: &str,
        logs: &[Value],
    ) -> Result<()> {
        Err(not_yet("put_central_logs"))
    }

    fn add_waiting_logs(
        &self,
        org: &str,
        batch_id: &str,
        execution_id: &str,
        logs: &[Value],
    ) -> Result<()> {
        Err(not_yet("add_waiting_logs"))
    }

    fn take_waiting_logs(
        &self,
        org: &str,
        execution_id: &str,
    ) -> Result<Vec<(String, std::result::Result<Vec<Value>, (String, String)>)>> {
        Err(not_yet("take_waiting_logs"))
    }

    fn for_each_central_log(
        &self,
        each: &mut dyn FnMut(&str, &str, &str, Value) -> Result<()>,
    ) -> Result<u64> {
        Err(not_yet("for_each_central_log"))
    }

    fn owe_ack(&self, org: &str, ack: &OwedAck) -> Result<()> {
        Err(not_yet("owe_ack"))
    }

    fn owe_ack_unless_owed(&self, org: &str, ack: &OwedAck) -> Result<()> {
        Err(not_yet("owe_ack_unless_owed"))
    }

    fn owed_acks(&self, org: &str) -> Result<Vec<OwedAck>> {
        Err(not_yet("owed_acks"))
    }

    fn acks_carried_by(&self, org: &str, seq: i64) -> Result<()> {
        Err(not_yet("acks_carried_by"))
    }

    fn acks_delivered(&self, org: &str, seq: i64) -> Result<()> {
        Err(not_yet("acks_delivered"))
    }
}
