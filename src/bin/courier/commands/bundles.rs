//! `courier import`, `verify`, `inspect` and `export`.

use courier::error::{exit, Result};
use courier::import::{self, FileReport, FileStatus};

use super::Ctx;
use crate::cli;
use crate::output::{err, out, print_json, warn};

/// One file's outcome: refusals on stderr (one line), the rest on stdout.
fn print_report(r: &FileReport, progress: Option<(usize, usize)>) {
    let at = progress
        .map(|(i, n)| format!("[{i}/{n}] "))
        .unwrap_or_default();
    if r.status == FileStatus::Refused {
        err!("courier: {at}{}", r.message);
    } else {
        out!("{at}{}: {}: {}", r.file.display(), r.status, r.message);
    }
}

/// When no bundle file was found (only hidden ones, or none): says so, and the exit code.
fn nothing_found(reports: &[FileReport]) -> Option<u8> {
    if reports.iter().all(|r| r.status == FileStatus::Skipped) {
        err!(
            "courier: no bundle files (*.courier) found in the paths given ({} hidden file(s) skipped)",
            reports.len()
        );
        return Some(exit::USAGE);
    }
    None
}

/// The sets with a part missing, one note line each.
fn print_set_notes(sets: &[courier::upsync::IncompleteSet]) {
    for set in sets {
        out!("note: {}", set.note());
    }
}

pub fn import(ctx: &Ctx, a: cli::ImportArgs) -> Result<u8> {
    let site = ctx.open()?;
    let opts = import::ImportOptions {
        allow_rollback: a.allow_rollback,
        dry_run: a.dry_run,
        archive: a.archive.clone(),
    };
    let json = a.json || a.json_summary;
    let reports = import::import_all(&site, &a.paths, &opts, |i, n, r| {
        if !json {
            print_report(r, (n > 1).then_some((i, n)));
        }
    });
    if let Some(code) = nothing_found(&reports) {
        return Ok(code);
    }
    let summary = import::BatchSummary::of(&reports);
    let incomplete_sets = courier::actions::incomplete_sets(&site, &a.paths);
    if a.json_summary {
        print_json(&import::ImportBatch {
            files: &reports,
            summary,
            incomplete_sets,
        });
    } else if a.json {
        print_json(&reports);
    } else {
        print_set_notes(&incomplete_sets);
        out!("{}", summary.line());
    }
    Ok(import::batch_exit_code(&reports))
}

pub fn verify(ctx: &Ctx, a: cli::VerifyArgs) -> Result<u8> {
    let site = ctx.open()?;
    let reports = import::verify_all(&site, &a.paths);
    if !a.json {
        reports.iter().for_each(|r| print_report(r, None));
    }
    if let Some(code) = nothing_found(&reports) {
        return Ok(code);
    }
    if a.json {
        print_json(&reports);
    } else {
        print_set_notes(&courier::actions::incomplete_sets(&site, &a.paths));
    }
    // Nothing is applied by verify: any file refused makes it fail.
    Ok(reports
        .iter()
        .map(|r| r.exit_code)
        .max()
        .unwrap_or(exit::OK))
}

pub fn inspect(ctx: &Ctx, a: cli::InspectArgs) -> Result<u8> {
    // No key needed: the store, when there is one here, only names the sender.
    let site = ctx.open().ok();
    let mut all = Vec::new();
    for p in &a.paths {
        all.push(import::inspect(site.as_ref(), p)?);
    }
    if a.json {
        if all.len() == 1 {
            print_json(&all[0]);
        } else {
            print_json(&all);
        }
        return Ok(exit::OK);
    }
    for i in &all {
        out!("file        {}", i.file.display());
        out!("format      {}", i.format);
        out!("kind        {}", i.kind);
        out!("bundle      {}", i.bundle_id);
        out!(
            "sender      {} {}",
            i.sender.role.label(),
            courier::crypto::grouped(&i.sender.fingerprint)
        );
        out!(
            "recipient   {} {}{}",
            i.recipient.role.label(),
            courier::crypto::grouped(&i.recipient.fingerprint),
            i.recipient
                .org_id
                .as_ref()
                .map(|o| format!(" ({o})"))
                .unwrap_or_default()
        );
        out!(
            "org         {}{}",
            i.org_id,
            if i.org_source == "pinned-key" {
                " (from the sender's pinned key)"
            } else {
                " (as claimed, unverified)"
            }
        );
        out!("sequence    {}", i.sequence);
        out!("created     {}", i.created);
        out!(
            "size        {} bytes (payload {} encrypted, {} unpacked)",
            i.file_size,
            i.payload_size,
            i.content_size
        );
        out!("part        {} of {} (set {})", i.part, i.parts, i.set_id);
        let counts: Vec<String> = i.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        out!("carries     {}", counts.join(", "));
        out!();
    }
    Ok(exit::OK)
}

pub fn export(ctx: &Ctx, a: cli::ExportArgs) -> Result<u8> {
    let site = ctx.open()?;
    if a.to_all {
        return export_all(&site, &a);
    }
    use courier::upsync::Resend;
    let resend = match (a.resend, a.resend_all) {
        (_, true) => Resend::All,
        (true, false) => Resend::Missing,
        (false, false) => Resend::WhenDue,
    };
    let report = courier::actions::export(
        &site,
        a.to.as_deref(),
        &a.out,
        a.max_file_size.as_deref(),
        resend,
    )?;
    warn(&report.warnings);
    if a.json {
        print_json(&report);
    } else {
        out!("{}", report.message);
        for f in &report.files {
            out!("  {}", f.display());
        }
    }
    Ok(exit::OK)
}

/// `export --to-all`: a line per centre (and the file written), then the summary.
fn export_all(site: &courier::site::Site, a: &cli::ExportArgs) -> Result<u8> {
    let batch = courier::actions::export_all(site, &a.out)?;
    for c in &batch.centers {
        warn(&c.warnings);
    }
    if a.json {
        print_json(&batch);
    } else {
        for c in &batch.centers {
            if c.status == "failed" {
                err!("courier: {}: failed: {}", c.org_id, c.message);
                continue;
            }
            out!("{}: {}: {}", c.org_id, c.status, c.message);
            if let Some(f) = &c.file {
                out!("  {}", f.display());
            }
        }
        out!("summary: {}", batch.message);
    }
    Ok(batch.exit_code())
}
