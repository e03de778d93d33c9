//! JSON Schemas for every JSON document courier reads or writes (schemas/*.schema.json),
//! compiled once and used to check input records, configs and bundle headers.

pub mod compact;
pub mod log;
pub mod result;

use std::path::Path;
use std::sync::OnceLock;

use serde_json::Value;

use crate::error::Error;

/// Every schema, by name (the file is `schemas/<name>.schema.json`).
pub const SCHEMAS: &[(&str, &str)] = &[
    ("entity", include_str!("../schemas/entity.schema.json")),
    ("result", include_str!("../schemas/result.schema.json")),
    ("log", include_str!("../schemas/log.schema.json")),
    ("config", include_str!("../schemas/config.schema.json")),
    (
        "bundle-header",
        include_str!("../schemas/bundle-header.schema.json"),
    ),
    (
        "enrollment",
        include_str!("../schemas/enrollment.schema.json"),
    ),
    (
        "enrollment-body",
        include_str!("../schemas/enrollment-body.schema.json"),
    ),
    (
        "enrollment-reply",
        include_str!("../schemas/enrollment-reply.schema.json"),
    ),
    (
        "data-entity",
        include_str!("../schemas/data-entity.schema.json"),
    ),
    (
        "data-scope",
        include_str!("../schemas/data-scope.schema.json"),
    ),
    (
        "data-acks",
        include_str!("../schemas/data-acks.schema.json"),
    ),
    (
        "data-received",
        include_str!("../schemas/data-received.schema.json"),
    ),
    (
        "result-meta",
        include_str!("../schemas/result-meta.schema.json"),
    ),
    ("log-meta", include_str!("../schemas/log-meta.schema.json")),
    (
        "center-ack",
        include_str!("../schemas/center-ack.schema.json"),
    ),
    (
        "result-export",
        include_str!("../schemas/result-export.schema.json"),
    ),
    (
        "log-export",
        include_str!("../schemas/log-export.schema.json"),
    ),
    ("key-info", include_str!("../schemas/key-info.schema.json")),
    (
        "export-batch",
        include_str!("../schemas/export-batch.schema.json"),
    ),
    (
        "rollover-body",
        include_str!("../schemas/rollover-body.schema.json"),
    ),
    (
        "history-head",
        include_str!("../schemas/history-head.schema.json"),
    ),
    (
        "history-verify",
        include_str!("../schemas/history-verify.schema.json"),
    ),
    (
        "history-archive-manifest",
        include_str!("../schemas/history-archive-manifest.schema.json"),
    ),
    (
        "history-archive-row",
        include_str!("../schemas/history-archive-row.schema.json"),
    ),
    (
        "history-archive-entity",
        include_str!("../schemas/history-archive-entity.schema.json"),
    ),
    (
        "history-archive-check",
        include_str!("../schemas/history-archive-check.schema.json"),
    ),
    ("inspect", include_str!("../schemas/inspect.schema.json")),
    ("status", include_str!("../schemas/status.schema.json")),
    (
        "file-reports",
        include_str!("../schemas/file-reports.schema.json"),
    ),
    (
        "load-report",
        include_str!("../schemas/load-report.schema.json"),
    ),
    (
        "export-report",
        include_str!("../schemas/export-report.schema.json"),
    ),
    (
        "add-report",
        include_str!("../schemas/add-report.schema.json"),
    ),
    (
        "results-list",
        include_str!("../schemas/results-list.schema.json"),
    ),
    ("history", include_str!("../schemas/history.schema.json")),
    (
        "store-migrate",
        include_str!("../schemas/store-migrate.schema.json"),
    ),
    (
        "center-list",
        include_str!("../schemas/center-list.schema.json"),
    ),
    (
        "package-check",
        include_str!("../schemas/package-check.schema.json"),
    ),
    (
        "entity-list",
        include_str!("../schemas/entity-list.schema.json"),
    ),
    (
        "audit-entry",
        include_str!("../schemas/audit-entry.schema.json"),
    ),
    (
        "entity-history",
        include_str!("../schemas/entity-history.schema.json"),
    ),
    (
        "entity-details",
        include_str!("../schemas/entity-details.schema.json"),
    ),
    (
        "results-request-body",
        include_str!("../schemas/results-request-body.schema.json"),
    ),
    (
        "logs-request-body",
        include_str!("../schemas/logs-request-body.schema.json"),
    ),
];

/// The compiled validator of one schema, compiled on first use (compiling every schema
/// up front costs time and memory that most commands never need).
///
/// The schemas declare draft 2020-12 and use only keywords whose meaning is the same in
/// draft 7 (no `$ref` beside other assertions, no 2019+ keywords; a test keeps it so), and
/// are compiled in draft-7 mode with formats as annotations: compiling the 2020-12
/// meta-schema to check them first costs about 60 MB of memory at start-up, which the
/// exam-day memory budget cannot spare.
fn validator(name: &str) -> &'static jsonschema::Validator {
    static V: OnceLock<Vec<OnceLock<jsonschema::Validator>>> = OnceLock::new();
    let cells = V.get_or_init(|| SCHEMAS.iter().map(|_| OnceLock::new()).collect());
    let i = SCHEMAS
        .iter()
        .position(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no schema named {name}"));
    cells[i].get_or_init(|| {
        let schema: Value = serde_json::from_str(SCHEMAS[i].1)
            .unwrap_or_else(|e| panic!("schemas/{name}.schema.json is not JSON: {e}"));
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .should_validate_formats(false)
            .build(&schema)
            .unwrap_or_else(|e| panic!("schemas/{name}.schema.json is not a schema: {e}"))
    })
}

/// Check `value` against schema `name`; `Err` is a one-line reason that quotes at most
/// about 200 characters of the value (a validator's message can quote the whole of it).
pub fn check(name: &str, value: &Value) -> Result<(), String> {
    let v = validator(name);
    match v.iter_errors(value).next() {
        None => Ok(()),
        Some(e) => {
            let at = crate::limits::quote(&e.instance_path.to_string());
            let what = crate::limits::quote(&e.to_string());
            if at.is_empty() {
                Err(what)
            } else {
                Err(format!("at {at}: {what}"))
            }
        }
    }
}

/// The first integer in `value` that does not fit the store's 64-bit signed integers (a
/// number above 2^63-1, or a whole number written as a float beyond it): its JSON pointer and
/// its text. Sequences, revisions and counts are stored as SQLite integers; a larger one is
/// bad input, never cast to a negative number.
pub fn integer_beyond_i64(value: &Value) -> Option<(String, String)> {
    fn walk(v: &Value, at: &mut String) -> Option<(String, String)> {
        match v {
            Value::Number(n) if n.as_i64().is_none() && (n.is_u64() || beyond(n.as_f64())) => {
                Some((at.clone(), n.to_string()))
            }
            Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
                let len = at.len();
                at.push_str(&format!("/{i}"));
                let found = walk(item, at);
                at.truncate(len);
                found
            }),
            Value::Object(map) => map.iter().find_map(|(k, item)| {
                let len = at.len();
                at.push('/');
                at.push_str(&k.replace('~', "~0").replace('/', "~1"));
                let found = walk(item, at);
                at.truncate(len);
                found
            }),
            _ => None,
        }
    }
    // 2^63 as a float: whole floats at or beyond it do not fit either.
    fn beyond(f: Option<f64>) -> bool {
        f.is_some_and(|f| f.fract() == 0.0 && f.abs() >= 9_223_372_036_854_775_808.0)
    }
    walk(value, &mut String::new())
}

/// A small document of a bundle's payload (`name`, e.g. `results/000001.json`) checked
/// against schema `schema` and read into `T`. Every failure is the file's refusal: a number
/// beyond the store's integers, a schema failure, or a shape serde refuses.
pub fn read_doc<T: serde::de::DeserializeOwned>(
    path: &Path,
    name: &str,
    schema: &str,
    value: Value,
) -> Result<T, Error> {
    if let Some((at, number)) = integer_beyond_i64(&value) {
        return Err(Error::NumberTooLarge {
            path: path.to_path_buf(),
            what: format!("{name}, number at '{at}'"),
            value: number,
        });
    }
    check(schema, &value).map_err(|e| Error::bad_payload(path, format!("{name}: {e}; refused")))?;
    serde_json::from_value(value)
        .map_err(|e| Error::bad_payload(path, format!("{name}: {e}; refused")))
}
