//! `courier status`: the library computes the report (`courier::status`); this prints it.

use courier::error::{exit, Result};
use courier::status::{self, CenterRow, CenterStatus, CentralStatus, Status};
use courier::store::LastBundle;

use super::Ctx;
use crate::cli;
use crate::output::{out, print_json};

pub fn status(ctx: &Ctx, a: cli::StatusArgs) -> Result<u8> {
    let site = ctx.open_read_only()?;
    let report = status::status(&site, a.late_after)?;
    if a.json {
        print_json(&report);
        return Ok(exit::OK);
    }
    match &report {
        Status::Central(c) => print_central(c),
        Status::Center(c) => print_center(c),
    }
    Ok(exit::OK)
}

/// `courier report --out FILE`: the library writes the page; this says what it holds.
pub fn report(ctx: &Ctx, a: cli::ReportArgs) -> Result<u8> {
    let site = ctx.open_read_only()?;
    let r = courier::report::write_report(&site, &a.out, a.late_after)?;
    out!(
        "{}: exam-day report written: {} centre(s), {} result(s) received, {} late, {} results bundle(s)",
        a.out.display(),
        r.centers,
        r.results_received,
        r.late,
        r.bundles
    );
    if r.bundles_unsized > 0 {
        out!(
            "  {} results bundle(s) applied before sizes were recorded are left out of the size chart",
            r.bundles_unsized
        );
    }
    Ok(exit::OK)
}

fn bundle(b: &Option<LastBundle>) -> String {
    b.as_ref()
        .map(|b| format!("#{} at {}", b.seq, b.at))
        .unwrap_or_else(|| "none".into())
}

fn print_central(c: &CentralStatus) {
    out!(
        "{} centre(s) at {}; late after {} day(s) without a results bundle",
        c.centers.len(),
        c.generated_at,
        c.late_after_days
    );
    for r in &c.centers {
        print_center_row(r);
    }
    if c.late.is_empty() {
        out!("no centre is late");
    } else {
        out!("late: {}", c.late.join(", "));
    }
}

fn print_center_row(r: &CenterRow) {
    out!();
    out!("{} {} ({})", r.org_id, r.label, r.status);
    if let Some(f) = &r.fingerprint {
        out!("  key             {}", courier::crypto::grouped(f));
    }
    out!(
        "  enrolled        {}",
        r.enrolled_at.as_deref().unwrap_or("not yet")
    );
    if let Some(at) = &r.revoked_at {
        out!(
            "  revoked         {at}: {}",
            r.revoked_reason.as_deref().unwrap_or("")
        );
    }
    out!("  last received   {}", bundle(&r.last_received));
    out!("  last sent       {}", bundle(&r.last_sent));
    out!(
        "  results         {} received, {} kept aside; {} log(s)",
        r.results_received,
        r.results_kept_aside,
        r.logs_received
    );
    out!(
        "  not confirmed   {} data bundle(s), {} acknowledgement(s)",
        r.data_unconfirmed,
        r.acks_unconfirmed
    );
    out!(
        "  last contact    {}",
        match (&r.last_contact, r.days_since_contact) {
            (Some(at), Some(d)) => format!("{at} ({d} day(s) ago)"),
            (Some(at), None) => at.clone(),
            _ => "never".into(),
        }
    );
    if !r.missing_files.is_empty() {
        let seqs: Vec<String> = r.missing_files.iter().map(i64::to_string).collect();
        out!(
            "  files not seen  {} (lost, on their way, or acknowledgements only; the centre's status names lost results)",
            seqs.join(", ")
        );
    }
    if let Some(w) = &r.warning {
        out!("  WARNING         {w}");
    }
}

fn print_center(c: &CenterStatus) {
    out!("centre {} at {}", c.org_id, c.generated_at);
    out!(
        "waiting to be sent: {} result(s), {} log(s) in {} batch(es); {} result(s) not finished (not sent)",
        c.waiting.results,
        c.waiting.logs,
        c.waiting.log_batches,
        c.waiting.results_unfinished
    );
    if c.sent.is_empty() {
        out!("nothing sent is waiting for central's acknowledgement");
    }
    for f in &c.sent {
        out!(
            "sent, not acknowledged: {} result(s), {} log(s) in file {} ({}){}: {}",
            f.results,
            f.logs,
            f.seq
                .map(|s| format!("#{s}"))
                .unwrap_or_else(|| "?".into()),
            f.file.as_deref().unwrap_or("file not recorded"),
            f.sent_at
                .as_deref()
                .map(|t| format!(" at {t}"))
                .unwrap_or_default(),
            match f.fate {
                courier::wire::FileFate::Applied => "central applied the file; answers pending",
                courier::wire::FileFate::Missing =>
                    "MISSING at central (it applied later files): sent again by the next export after the grace period",
                courier::wire::FileFate::NotSeenYet => "central has not applied it yet",
                courier::wire::FileFate::Unknown => "central has not said",
            }
        );
    }
    let held: Vec<String> = c.results.iter().map(|(k, v)| format!("{v} {k}")).collect();
    out!(
        "results held: {}",
        if held.is_empty() {
            "none".into()
        } else {
            held.join(", ")
        }
    );
    out!("last data bundle applied: {}", bundle(&c.last_data));
}

/// `courier store migrate --to URL`: the library copies and verifies; this prints the
/// per-table summary.
pub fn store(ctx: &Ctx, cmd: cli::StoreCommand) -> Result<u8> {
    let cli::StoreCommand::Migrate { to, switch, json } = cmd;
    #[cfg(feature = "postgres")]
    {
        let mut site = ctx.open()?;
        let m = courier::migrate::to_postgres(&mut site, &to, switch)?;
        if json {
            print_json(&m);
            return Ok(exit::OK);
        }
        out!("copied {} table(s) into {}:", m.tables.len(), m.to);
        for t in &m.tables {
            out!("  {:<20} {:>12} row(s)", t.table, t.postgres_rows);
        }
        out!(
            "verified: rows equal in every table, history intact up to row {}",
            m.history_head.unwrap_or(0)
        );
        if m.switched {
            out!(
                "courier.json now names {}: this central uses PostgreSQL",
                m.to
            );
        } else {
            out!("courier.json unchanged: this central still uses store.sqlite; to move, stop imports and set settings.store to {} (or migrate into a new empty database with --switch)", m.to);
        }
        Ok(exit::OK)
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = (ctx, to, switch, json);
        Err(courier::error::Error::Usage {
            what: "this courier was built without the 'postgres' feature: store migrate is not available".into(),
        })
    }
}
