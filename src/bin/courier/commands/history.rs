//! `courier history`: the library reads the store (`courier::actions::history`); this
//! prints what it returns.

use courier::actions::{self, History, HistoryQuery};
use courier::anchor::Anchored;
use courier::error::{exit, Result};

use super::Ctx;
use crate::cli;
use crate::output::{err, out, print_json};

pub fn history(ctx: &Ctx, a: cli::HistoryArgs) -> Result<u8> {
    let site = ctx.open_read_only()?;
    let query = if a.verify {
        HistoryQuery::Verify
    } else if a.anchor {
        HistoryQuery::Anchor
    } else if let Some(id) = &a.entity {
        HistoryQuery::Entity(id)
    } else {
        HistoryQuery::Log {
            org: a.org.as_deref(),
            limit: a.limit,
        }
    };
    match actions::history(&site, query)? {
        History::Verified(v) => {
            if a.json {
                print_json(&v);
            } else if let Some(problem) = &v.problem {
                err!("courier: {}: {problem}", v.store.display());
            } else {
                out!(
                    "history chain intact: {} rows, signed up to row {}",
                    v.rows,
                    v.signed_row.unwrap_or(0)
                );
                if v.unanchored > 0 {
                    out!(
                        "note: the newest {} row(s) are not signed yet (written without the key's passphrase); `courier history --anchor` signs them",
                        v.unanchored
                    );
                }
            }
            if !v.intact {
                return Ok(exit::REFUSED);
            }
        }
        History::Anchored(a) => match a {
            Anchored::Signed(n) => out!("history signed up to row {n}"),
            Anchored::Current => out!("the history's signed head is already current"),
            Anchored::Refused(problem) => {
                err!("courier: the sync history was not signed: {problem}");
                return Ok(exit::REFUSED);
            }
            Anchored::KeyLocked => {
                err!("courier: the site's key is protected: give its passphrase (COURIER_PASSPHRASE or --passphrase-file) to sign the history");
                return Ok(exit::SITE);
            }
        },
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
                        "{:>4} {} {:<12} {:<16} {:<8} {:<14} {}",
                        h.n,
                        h.at,
                        h.action,
                        h.kind.as_deref().unwrap_or("-"),
                        h.org_id.as_deref().unwrap_or("-"),
                        status_words(&h.status),
                        h.report
                    );
                }
            }
        }
    }
    Ok(exit::OK)
}

/// A history row's status as words (the JSON keeps the stored value).
fn status_words(status: &str) -> &str {
    match status {
        "success" => "done",
        "partial" => "partly applied",
        other => other,
    }
}
