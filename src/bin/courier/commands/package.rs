//! `courier package check`: QTI test packages checked before they are loaded.

use serde::Serialize;

use courier::error::exit;

use crate::output::{err, out, print_json};

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
}

pub fn check(files: &[std::path::PathBuf], json: bool) -> u8 {
    let mut code = exit::OK;
    let mut reports = Vec::new();
    for f in files {
        let r = match std::fs::File::open(f) {
            Err(e) => PackageReport {
                file: f.display().to_string(),
                ok: false,
                entry: None,
                reason: Some(e.to_string()),
                tests: None,
                items: None,
            },
            Ok(file) => match courier::package::check_package(std::io::BufReader::new(file)) {
                Ok(s) => PackageReport {
                    file: f.display().to_string(),
                    ok: true,
                    entry: None,
                    reason: None,
                    tests: Some(s.tests),
                    items: Some(s.items),
                },
                Err(p) => PackageReport {
                    file: f.display().to_string(),
                    ok: false,
                    entry: p.entry.clone(),
                    reason: Some(p.reason.clone()),
                    tests: None,
                    items: None,
                },
            },
        };
        if !r.ok {
            code = exit::REFUSED;
        }
        if !json {
            if r.ok {
                out!(
                    "{}: ok ({} test(s), {} item(s))",
                    r.file,
                    r.tests.unwrap_or(0),
                    r.items.unwrap_or(0)
                );
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
        reports.push(r);
    }
    if json {
        print_json(&reports);
    }
    code
}
