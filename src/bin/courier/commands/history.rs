//! `courier history`: the library reads the store (`courier::actions::history`); this
//! prints what it returns.

use courier::actions::{self, History, HistoryQuery};
use courier::anchor::Anchored;
use courier::archive;
use courier::error::{exit, Result};

use super::Ctx;
use crate::cli;
use crate::output::{err, out, print_json, warn};

pub fn history(ctx: &Ctx, a: cli::HistoryArgs) -> Result<u8> {
    if let Some(command) = a.command {
        return archive(ctx, command);
    }
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

/// `history export | verify-archive | prune` (courier::archive).
fn archive(ctx: &Ctx, command: cli::HistoryCommand) -> Result<u8> {
    use cli::HistoryCommand::*;
    match command {
        Export {
            out,
            before,
            bundles,
            force,
        } => {
            // Opened to read only: exporting adds no history row.
            let site = ctx.open_read_only()?;
            let e = archive::export(&site, &out, before.as_deref(), &bundles, force)?;
            warn(&e.warnings);
            out!(
                "history rows {}-{} ({} rows, {} entity actions, {} bundles) archived in {} ({} bytes), signed by {}",
                e.history.first_row,
                e.history.last_row,
                e.history.rows,
                e.entity_actions,
                e.bundles,
                e.file.display(),
                e.bytes,
                site.config.fingerprint
            );
        }
        VerifyArchive {
            file,
            certificate,
            json,
        } => {
            let c = archive::verify_with(&file, &certificate)?;
            if json {
                print_json(&c);
            } else {
                out!(
                    "{}: history archive intact: rows {}-{} ({} rows, {} entity actions, {} bundles) of {} {}, signed by its key",
                    c.file.display(),
                    c.history.first_row,
                    c.history.last_row,
                    c.history.rows,
                    c.entity_actions,
                    c.bundles,
                    c.site.role,
                    c.site.org_id.as_deref().unwrap_or(&c.site.fingerprint)
                );
            }
        }
        Prune {
            before,
            archived,
            delete_bundles,
        } => {
            let site = ctx.open()?;
            let p = archive::prune(&site, &before, &archived)?;
            match (p.first_row, p.last_row) {
                (Some(first), Some(last)) => out!(
                    "history rows {first}-{last} dropped ({} rows, held in {}); the history now starts after row {}",
                    p.rows,
                    archived.display(),
                    p.start_row
                ),
                _ => out!(
                    "nothing to prune: no row before {before} that {} holds is still in the store",
                    archived.display()
                ),
            }
            if delete_bundles {
                let d = archive::delete_held_bundles(&site, &archived)?;
                warn(&d.warnings);
                out!(
                    "{} archived bundle file(s) deleted: {} holds their bytes",
                    d.files.len(),
                    archived.display()
                );
            }
        }
    }
    Ok(exit::OK)
}
