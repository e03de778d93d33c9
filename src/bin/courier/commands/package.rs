//! `courier package check`: QTI test packages checked before they are loaded.

use serde::Serialize;

use courier::error::exit;
use courier::package::{PackageProblem, PackageSummary};

use crate::output::{err, out, print_json};

/// One package's report (schemas/package-check.schema.json).
#[derive(Serialize)]
struct PackageReport {
    file: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    entry: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tests: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    items: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<Vec<WarningReport>>,
}

#[derive(Serialize)]
struct WarningReport {
    entry: String,
    message: String,
}

impl PackageReport {
    fn passed(file: String, summary: PackageSummary) -> Self {
        let warnings = summary
            .warnings
            .into_iter()
            .map(|w| WarningReport {
                entry: w.entry,
                message: w.message,
            })
            .collect();
        PackageReport {
            file,
            ok: true,
            entry: None,
            reason: None,
            tests: Some(summary.tests),
            items: Some(summary.items),
            warnings: Some(warnings),
        }
    }

    fn refused(file: String, entry: Option<String>, reason: String) -> Self {
        PackageReport {
            file,
            ok: false,
            entry,
            reason: Some(reason),
            tests: None,
            items: None,
            warnings: None,
        }
    }
}

pub fn check(files: &[std::path::PathBuf], json: bool) -> u8 {
    let mut code = exit::OK;
    let mut reports = Vec::new();
    for f in files {
        let file = f.display().to_string();
        let r = match std::fs::File::open(f) {
            Err(e) => PackageReport::refused(file, None, e.to_string()),
            Ok(opened) => match courier::package::check_package(std::io::BufReader::new(opened)) {
                Ok(summary) => PackageReport::passed(file, summary),
                Err(PackageProblem { entry, reason }) => {
                    PackageReport::refused(file, entry, reason)
                }
            },
        };
        if !r.ok {
            code = exit::REFUSED;
        }
        if !json {
            print_human(&r);
        }
        reports.push(r);
    }
    if json {
        print_json(&reports);
    }
    code
}

fn print_human(r: &PackageReport) {
    if r.ok {
        let warnings = r.warnings.as_deref().unwrap_or_default();
        let noted = match warnings.len() {
            0 => String::new(),
            1 => ", 1 warning".to_string(),
            n => format!(", {n} warnings"),
        };
        out!(
            "{}: ok ({} test(s), {} item(s){noted})",
            r.file,
            r.tests.unwrap_or(0),
            r.items.unwrap_or(0)
        );
        for w in warnings {
            err!("courier: {}: warning: {}: {}", r.file, w.entry, w.message);
        }
    } else {
        err!(
            "courier: {}: test package refused: {}{}; fix the package and check it again",
            r.file,
            r.entry
                .as_ref()
                .map(|e| format!("{e}: "))
                .unwrap_or_default(),
            r.reason.as_deref().unwrap_or("")
        );
    }
}
