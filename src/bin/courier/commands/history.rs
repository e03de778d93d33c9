//! `courier history`: the library reads the store (`courier::actions::history`); this
//! prints what it returns.

use courier::actions::{self, History, HistoryQuery};
use courier::error::{exit, Result};

use super::Ctx;
use crate::cli;
use crate::output::{err, out, print_json};

pub fn history(ctx: &Ctx, a: cli::HistoryArgs) -> Result<u8> {
    let site = ctx.open()?;
    let query = if a.verify {
        HistoryQuery::Verify
    } else if let Some(id) = &a.entity {
        HistoryQuery::Entity(id)
    } else {
        HistoryQuery::Log {
            org: a.org.as_deref(),
            limit: a.limit,
        }
    };
    match actions::history(&site, query)? {
        History::Verified {
            broken_row: None, ..
        } => out!("history chain intact"),
        History::Verified {
            broken_row: Some(n),
            store,
        } => {
            err!(
                "courier: {}: history row {n} does not match its hash chain; the store was altered",
                store.display()
            );
            return Ok(exit::REFUSED);
        }
        History::Entity(rows) => {
            if a.json {
                print_json(&rows);
            } else if rows.is_empty() {
                out!(
                    "no sync touched {}",
                    a.entity.as_deref().unwrap_or_default()
                );
            } else {
                for r in rows {
                    out!(
                        "{:>4} {} {:<8} {} sequence {}",
                        r.sync,
                        r.at,
                        r.action,
                        r.kind,
                        r.seq.map(|s| s.to_string()).unwrap_or_else(|| "-".into())
                    );
                }
            }
        }
        History::Log(rows) => {
            if a.json {
                print_json(&rows);
            } else {
                for h in rows {
                    out!(
                        "{:>4} {} {:<12} {:<16} {:<8} {:<11} {}",
                        h.n,
                        h.at,
                        h.action,
                        h.kind.as_deref().unwrap_or("-"),
                        h.org_id.as_deref().unwrap_or("-"),
                        h.status,
                        h.report
                    );
                }
            }
        }
    }
    Ok(exit::OK)
}
