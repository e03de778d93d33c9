//! `courier results add|list|export` and `courier logs add|export`.

use courier::error::{exit, Result};
use courier::results;

use super::Ctx;
use crate::cli;
use crate::output::{err, out, print_json, warn};

/// The export to run: a format of courier's, or TAO's request bodies with their params.
enum Export {
    Courier(results::Format),
    Tao(results::SyncParams),
}

fn fmt(f: cli::OutputFormat, tao_version: Option<String>, chunk: Option<u32>) -> Export {
    match f {
        cli::OutputFormat::Jsonl => Export::Courier(results::Format::Jsonl),
        cli::OutputFormat::Csv => Export::Courier(results::Format::Csv),
        cli::OutputFormat::Tao => Export::Tao(results::SyncParams {
            tao_version: tao_version.unwrap_or_default(),
            per_body: chunk.map(|n| n as usize),
        }),
    }
}

fn short_state(s: &str) -> &str {
    s.rsplit("DeliveryExecutionStatus").next().unwrap_or(s)
}

pub fn results(ctx: &Ctx, cmd: cli::ResultsCommand) -> Result<u8> {
    match cmd {
        cli::ResultsCommand::Add { files, json } => {
            let site = ctx.open()?;
            let r = results::add_results(&site, &files)?;
            Ok(print_add(&r, json, "result"))
        }
        cli::ResultsCommand::List { json } => {
            let site = ctx.open()?;
            let rows = results::list_results(&site)?;
            if json {
                print_json(&rows);
            } else {
                for r in rows {
                    out!(
                        "{:<15} {:>8} B  rev {}  {}  {}  {}{}",
                        r.sync_status,
                        r.size,
                        r.revision,
                        r.delivery_execution_id,
                        short_state(&r.state),
                        r.test_taker,
                        r.reason
                            .as_deref()
                            .map(|why| format!("  ({why})"))
                            .unwrap_or_default()
                    );
                }
            }
            Ok(exit::OK)
        }
        cli::ResultsCommand::Export {
            format,
            tao_version,
            chunk,
            out,
            force,
        } => {
            courier::site::check_output(&out, force)?;
            let site = ctx.open()?;
            let n = match fmt(format, tao_version, chunk) {
                Export::Courier(f) => results::export_results(&site, f, &out)?,
                Export::Tao(p) => results::export_results_tao(&site, &out, &p)?,
            };
            out!("wrote {n} result(s) to {}", out.display());
            if n == 0 {
                warn(&[results::nothing_exported_warning(&out, "results")]);
            }
            Ok(exit::OK)
        }
    }
}

pub fn logs(ctx: &Ctx, cmd: cli::LogsCommand) -> Result<u8> {
    match cmd {
        cli::LogsCommand::Add { files, json } => {
            let site = ctx.open()?;
            let r = results::add_logs(&site, &files)?;
            Ok(print_add(&r, json, "log"))
        }
        cli::LogsCommand::Export {
            format,
            tao_version,
            chunk,
            out,
            force,
        } => {
            courier::site::check_output(&out, force)?;
            let site = ctx.open()?;
            let n = match fmt(format, tao_version, chunk) {
                Export::Courier(f) => results::export_logs(&site, f, &out)?,
                Export::Tao(p) => results::export_logs_tao(&site, &out, &p)?,
            };
            out!("wrote {n} log(s) to {}", out.display());
            if n == 0 {
                warn(&[results::nothing_exported_warning(&out, "delivery logs")]);
            }
            Ok(exit::OK)
        }
    }
}

fn print_add(r: &results::AddReport, json: bool, what: &str) -> u8 {
    warn(&r.warnings);
    if json {
        print_json(r);
    } else {
        let mut line = format!(
            "{what}s: {} added, {} replaced, {} unchanged, {} refused",
            r.added,
            r.replaced,
            r.unchanged,
            r.refused.len()
        );
        if !r.stale.is_empty() || !r.conflicts.is_empty() {
            line.push_str(&format!(
                ", {} stale, {} conflict(s)",
                r.stale.len(),
                r.conflicts.len()
            ));
        }
        out!("{line}");
        for f in &r.stale {
            out!(
                "stale: {}: record {}: {}",
                f.file.display(),
                f.record,
                f.reason
            );
        }
        for f in &r.conflicts {
            err!(
                "courier: conflict: {}: record {}: {}",
                f.file.display(),
                f.record,
                f.reason
            );
        }
        for line in results::refusal_lines(&r.refused) {
            err!("courier: {line}");
        }
    }
    if r.refused.is_empty() && r.conflicts.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    }
}
