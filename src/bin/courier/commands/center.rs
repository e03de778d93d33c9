//! `courier center add|revoke|list` and `courier enroll`.

use std::io::IsTerminal;

use courier::enroll;
use courier::error::{exit, Result};

use super::Ctx;
use crate::cli;
use crate::output::{err, out, print_json};

pub fn center(ctx: &Ctx, cmd: cli::CenterCommand) -> Result<u8> {
    match cmd {
        cli::CenterCommand::Add {
            org,
            label,
            out,
            expect_fingerprint,
        } => {
            let site = ctx.open()?;
            let fpr = enroll::add_center(&site, &org, &label, expect_fingerprint.as_deref(), &out)?;
            out!("registered centre {org}; enrollment file {}", out.display());
            if let Some(f) = expect_fingerprint {
                out!(
                    "only a reply with key {} will enroll it",
                    enroll::normalize_fingerprint(&f)
                );
            }
            out!("central's fingerprint (confirm by phone or on paper): {fpr}");
        }
        cli::CenterCommand::Revoke { org, reason } => {
            let site = ctx.open()?;
            let at = enroll::revoke_center(&site, &org, &reason)?;
            out!("revoked centre {org} at {at}: its bundles are refused from now on, and nothing is exported to it");
        }
        cli::CenterCommand::Reenroll { org, label, out } => {
            let site = ctx.open()?;
            let done = enroll::reenroll_center(&site, &org, &label, &out)?;
            if let Some((key, from)) = &done.revoked_key {
                out!("revoked key {key} of centre {org}: its bundles from upward sequence {from} on are refused");
            }
            out!(
                "new enrollment file for centre {org}: {}; its next data bundle carries its whole scope",
                out.display()
            );
            out!(
                "central's fingerprint (confirm by phone or on paper): {}",
                done.central_fingerprint
            );
        }
        cli::CenterCommand::List { json } => {
            let site = ctx.open()?;
            let rows = courier::status::list_centers(&site)?;
            if json {
                print_json(&rows);
            } else {
                rows.iter().for_each(print_center);
            }
        }
    }
    Ok(exit::OK)
}

pub fn enroll(ctx: &Ctx, a: cli::EnrollArgs) -> Result<u8> {
    let site = ctx.open()?;
    let mut confirm = |body: &enroll::EnrollmentBody| -> bool {
        if !std::io::stdin().is_terminal() {
            return false;
        }
        err!(
            "central '{}' fingerprint: {}",
            body.central_name,
            courier::crypto::grouped(&body.central_fingerprint)
        );
        eprint!("Does this match the fingerprint central gave you? [y/N] ");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).is_ok() && line.trim().eq_ignore_ascii_case("y")
    };
    let reply = enroll::enroll(
        &site,
        &a.file,
        a.expect_fingerprint.as_deref(),
        &a.out,
        &mut confirm,
    )?;
    out!(
        "pinned central's key; reply for central: {}",
        reply.display()
    );
    out!(
        "this centre's fingerprint (give it to central by phone or on paper): {}",
        site.config.fingerprint
    );
    Ok(exit::OK)
}

/// One line of `center list`: key, data bundles, last contact, and LATE when it is.
fn print_center(row: &courier::status::ListedCenter) {
    let r = &row.center;
    for k in &r.earlier_keys {
        out!(
            "{:<12} earlier key {}",
            r.org_id,
            courier::actions::describe_peer_key(k)
        );
    }
    if let Some(at) = &r.revoked_at {
        out!(
            "{:<12} {:<30} REVOKED at {at}: {}",
            r.org_id,
            r.label,
            r.revoked_reason.as_deref().unwrap_or("")
        );
        return;
    }
    let contact = match (&row.last_contact, row.days_since_contact) {
        (Some(_), Some(d)) => format!("last contact {d} day(s) ago"),
        (Some(at), None) => format!("last contact {at}"),
        _ => "never sent results".into(),
    };
    out!(
        "{:<12} {:<30} {} next data bundle {}, confirmed {}, {contact}{}",
        r.org_id,
        r.label,
        match (&r.fingerprint, &r.expected_fingerprint) {
            (Some(f), _) => courier::crypto::grouped(f),
            (None, Some(f)) => format!(
                "(not enrolled, expects key {})",
                courier::crypto::grouped(f)
            ),
            (None, None) => "(not enrolled)".into(),
        },
        r.next_seq,
        r.acked_seq
            .map(|s| s.to_string())
            .unwrap_or_else(|| "none".into()),
        if row.late { ", LATE" } else { "" }
    );
}
