//! Every JSON document courier reads or writes has a schema in schemas/ (the project's
//! convention): here real documents, produced by the real binary on real scenarios, are
//! checked against them — every `--json` output, courier.json, enrollment files, bundle
//! headers, result and log exports — and every schema file is registered and compiles.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::*;

/// Check a document against schema `name`, with the document in the failure message.
#[track_caller]
fn check(name: &str, doc: &Value) {
    if let Err(e) = courier::schema::check(name, doc) {
        panic!(
            "document does not match schemas/{name}.schema.json: {e}\n{}",
            serde_json::to_string_pretty(doc).unwrap()
        );
    }
}

/// Run courier, expect success, parse stdout as JSON.
#[track_caller]
fn json_out(home: &Path, args: &[&str]) -> Value {
    let out = ok(courier(home, args));
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("stdout of {args:?} is not JSON ({e}):\n{out}"))
}

/// Run courier, expect exit `code`, parse stdout as JSON.
#[track_caller]
fn json_out_code(home: &Path, args: &[&str], code: i32) -> Value {
    let o = courier(home, args);
    assert_eq!(
        o.status.code(),
        Some(code),
        "{args:?}\nstdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("stdout of {args:?} is not JSON ({e}):\n{}", stdout(&o)))
}

/// Run courier with `--json` appended, check stdout against `schema`, return it.
#[track_caller]
fn checked(home: &Path, args: &[&str], schema: &str) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let v = json_out(home, &a);
    check(schema, &v);
    v
}

fn data(rel: &str) -> PathBuf {
    fixtures().join("data").join(rel)
}

fn read_json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()))
}

/// The JSON lines of a file.
fn read_jsonl(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// Check the signed header of a bundle file (bundle::Header) against bundle-header.
#[track_caller]
fn check_header(file: &Path) -> Value {
    let b =
        courier::bundle::Bundle::open(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let h = serde_json::to_value(&b.header).unwrap();
    check("bundle-header", &h);
    h
}

/// Check courier.json of a site.
#[track_caller]
fn check_config(home: &Path) -> Value {
    let v = read_json(&home.join("courier.json"));
    check("config", &v);
    v
}

/// `list --json` of a site: the whole list against entity-list, each item against entity.
#[track_caller]
fn check_list(home: &Path, args: &[&str]) -> Vec<Value> {
    let mut a = vec!["list"];
    a.extend_from_slice(args);
    let v = checked(home, &a, "entity-list");
    let items = v.as_array().expect("list is an array").clone();
    for e in &items {
        check("entity", e);
    }
    items
}

/// Statuses of a file-reports document.
fn statuses(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect()
}

// ---- the schema files themselves ---------------------------------------------------------------

#[test]
fn every_schema_file_is_registered_and_compiles() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let mut on_disk = BTreeSet::new();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".schema.json") {
            on_disk.insert(stem.to_string());
        } else {
            panic!("schemas/{name}: not named <name>.schema.json");
        }
    }
    let registered: BTreeSet<String> = courier::schema::SCHEMAS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert_eq!(
        registered.len(),
        courier::schema::SCHEMAS.len(),
        "a schema is registered twice in courier::schema::SCHEMAS"
    );
    let forgotten: Vec<_> = on_disk.difference(&registered).collect();
    assert!(
        forgotten.is_empty(),
        "schemas/ files missing from courier::schema::SCHEMAS (src/schema.rs): {forgotten:?}"
    );
    let missing: Vec<_> = registered.difference(&on_disk).collect();
    assert!(
        missing.is_empty(),
        "registered schemas without a file: {missing:?}"
    );

    for (name, text) in courier::schema::SCHEMAS {
        // The registered text is the file (include_str of schemas/<name>.schema.json).
        let file = std::fs::read_to_string(dir.join(format!("{name}.schema.json"))).unwrap();
        assert_eq!(
            *text, file,
            "SCHEMAS entry {name} does not hold schemas/{name}.schema.json"
        );
        let v: Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("schemas/{name}.schema.json is not JSON: {e}"));
        assert_eq!(
            v["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}: not draft 2020-12"
        );
        assert_eq!(
            v["$id"],
            format!("https://courier.example/schemas/{name}.schema.json"),
            "{name}: wrong $id"
        );
        for key in ["title", "description"] {
            assert!(
                v[key].as_str().is_some_and(|t| !t.is_empty()),
                "{name}: no {key}"
            );
        }
        // Self-contained: every $ref points inside the same document.
        let mut refs = Vec::new();
        collect_refs(&v, &mut refs);
        for r in refs {
            assert!(r.starts_with("#"), "{name}: $ref {r} leaves the file");
        }
        // Compiles (check panics on a schema that does not); the result does not matter.
        let _ = courier::schema::check(name, &json!({}));
        let _ = courier::schema::check(name, &json!([]));
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    if let Some(r) = x.as_str() {
                        out.push(r.to_string());
                    }
                }
                collect_refs(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

/// The schemas refuse what the code never writes (they are not just `true`).
#[test]
fn output_schemas_refuse_wrong_documents() {
    let bad: &[(&str, Value)] = &[
        (
            "key-info",
            json!({"fingerprint": "x", "role": "central", "protected": false, "home": "h"}),
        ),
        (
            "key-info",
            json!({"fingerprint": "A".repeat(40), "role": "center", "protected": false, "home": "h"}),
        ),
        (
            "file-reports",
            json!([{"file": "f", "status": "done", "message": ""}]),
        ),
        (
            "file-reports",
            json!([{"file": "f", "status": "applied", "message": ""}]),
        ),
        ("file-reports", json!([])),
        (
            "file-reports",
            json!({"files": [{"file": "f", "status": "refused", "message": "m"}], "summary": {"files": 1}, "incomplete_sets": []}),
        ),
        ("inspect", json!([])),
        (
            "load-report",
            json!({"created": {"user": 1}, "updated": {}, "unchanged": {}, "packages": 0}),
        ),
        (
            "export-report",
            json!({"files": [], "counts": {"scope": 1}, "message": "m"}),
        ),
        (
            "add-report",
            json!({"added": 0, "replaced": 0, "unchanged": 0, "refused": [{"file": "f", "record": "3", "reason": "r"}]}),
        ),
        (
            "results-list",
            json!([{"deliveryExecutionId": "e", "deliveryId": "d", "testTaker": "t", "state": "http://www.tao.lu/Ontologies/TAODelivery.rdf#DeliveryExecutionStatusFinished", "syncStatus": "done", "revision": 1, "size": 1}]),
        ),
        ("results-list", json!([{"delivery_execution_id": "e"}])),
        (
            "history",
            json!([{"n": 1, "at": "t", "action": "import", "status": "success", "counts": {}, "report": "", "hash": "0".repeat(64)}]),
        ),
        (
            "center-list",
            json!([{"org_id": "ORG-1", "label": "l", "next_seq": 1}]),
        ),
        ("package-check", json!([{"file": "f", "ok": true}])),
        (
            "package-check",
            json!([{"file": "f", "ok": false, "tests": 1, "items": 1}]),
        ),
        (
            "package-check",
            json!([{"file": "f", "ok": false, "reason": "r", "warnings": []}]),
        ),
        (
            "package-check",
            json!([{"file": "f", "ok": true, "tests": 1, "items": 1, "warnings": ["w"]}]),
        ),
        (
            "entity-list",
            json!([{"type": "user", "id": "x", "properties": {}}]),
        ),
    ];
    for (name, doc) in bad {
        assert!(
            courier::schema::check(name, doc).is_err(),
            "schemas/{name}.schema.json accepts {doc}"
        );
    }
}

// ---- documents of enrollment and site creation ---------------------------------------------

/// `init --json`, `keys show --json`, courier.json, the enrollment file, the enrollment reply,
/// `center list --json` before and after enrollment, `package check --json`.
#[test]
fn site_and_enrollment_documents() {
    let dir = tempfile::tempdir().unwrap();
    let central = dir.path().join("central");
    let center = dir.path().join("center");

    let k = checked(
        &central,
        &["init", "central", "--name", "Central"],
        "key-info",
    );
    assert_eq!(k["role"], "central");
    assert!(k.get("org_id").is_none() && k["name"] == "Central");
    let k = checked(&center, &["init", "center", "--org", "ORG-009"], "key-info");
    assert_eq!(k["org_id"], "ORG-009");
    assert!(k.get("name").is_none());
    let fpr = checked(&central, &["keys", "show"], "key-info")["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    checked(&center, &["keys", "show"], "key-info");
    check_config(&central);
    check_config(&center);

    // Registered, not enrolled: the enrollment fields are null.
    let file = dir.path().join("enroll-ORG-009.json");
    ok(courier(
        &central,
        &[
            "center",
            "add",
            "ORG-009",
            "--label",
            "Centre nine",
            "--out",
            s(&file),
        ],
    ));
    let rows = checked(&central, &["center", "list"], "center-list");
    assert_eq!(rows[0]["fingerprint"], Value::Null);
    assert_eq!(rows[0]["acked_seq"], Value::Null);

    let enrollment = read_json(&file);
    check("enrollment", &enrollment);
    let body: Value = serde_json::from_str(enrollment["body"].as_str().unwrap()).unwrap();
    check("enrollment-body", &body);

    let replies = dir.path().join("replies");
    ok(courier(
        &center,
        &[
            "enroll",
            s(&file),
            "--expect-fingerprint",
            &fpr,
            "--out",
            s(&replies),
        ],
    ));
    let reply_files = bundles_under(&replies);
    assert_eq!(reply_files.len(), 1);
    let h = check_header(&reply_files[0]);
    assert_eq!(h["kind"], "enrollment-reply");
    let i = checked(&central, &["inspect", s(&reply_files[0])], "inspect");
    assert!(i.is_object());
    let r = checked(&central, &["verify", s(&replies)], "file-reports");
    assert_eq!(statuses(&r), ["ok"]);
    let r = checked(&central, &["import", s(&replies)], "file-reports");
    assert_eq!(statuses(&r), ["applied"]);
    let r = checked(&central, &["import", s(&replies)], "file-reports");
    assert_eq!(statuses(&r), ["already-applied"]);

    let rows = checked(&central, &["center", "list"], "center-list");
    assert!(rows[0]["fingerprint"].is_string());
    check_config(&central);
    check_config(&center);
    checked(&central, &["history"], "history");
    checked(&center, &["history"], "history");
    checked(&center, &["list"], "entity-list");

    let qti = fixtures().join("qti");
    let missing = dir.path().join("no-such.zip");
    let v = json_out_code(
        &central,
        &[
            "package",
            "check",
            s(&qti.join("valid/2.1-basic-Basic.zip")),
            s(&qti.join("invalid/MalformedXMLTest.zip")),
            s(&missing),
            s(&fixtures().join("tao/qti/ok_extra_declared_item_missing.zip")),
            "--json",
        ],
        1,
    );
    check("package-check", &v);
    let oks: Vec<bool> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ok"].as_bool().unwrap())
        .collect();
    assert_eq!(oks, [true, false, false, true]);
    assert_eq!(v[0]["warnings"], json!([]));
    assert_eq!(v[3]["warnings"][0]["entry"], "imsmanifest.xml");
    let v = checked(
        &central,
        &[
            "package",
            "check",
            s(&qti.join("valid/2.1-basic-Basic.zip")),
        ],
        "package-check",
    );
    assert_eq!(v.as_array().unwrap().len(), 1);
}

// ---- central → centre ----------------------------------------------------------------------

/// `load --json`, `export --json` at central, data bundle headers, `verify`/`inspect`/`import
/// --json` (applied, already applied, refused), `list --json` at both ends.
#[test]
fn downsync_documents() {
    let w = World::enrolled();
    let load = checked(
        &w.central,
        &["load", s(&data("central.jsonl"))],
        "load-report",
    );
    assert_eq!(load["created"]["test-taker"], 8);
    let load = checked(
        &w.central,
        &["load", s(&data("update.jsonl"))],
        "load-report",
    );
    assert!(load["updated"].as_object().is_some_and(|m| !m.is_empty()));
    ok(courier(
        &w.central,
        &["remove", "https://central.example/tao.rdf#elig-001-label"],
    ));
    // Central holds everything, with excluded properties, nothing sealed.
    let all = check_list(&w.central, &[]);
    assert!(all.iter().all(|e| e.get("encryptedProperties").is_none()));
    check_list(&w.central, &["delivery", "test-taker"]);

    let down_a = w.path("down-a");
    let down_b = w.path("down-b");
    let r = checked(
        &w.central,
        &["export", "--to", "ORG-001", "--out", s(&down_a)],
        "export-report",
    );
    assert_eq!(r["files"].as_array().unwrap().len(), 1);
    checked(
        &w.central,
        &["export", "--to", "ORG-002", "--out", s(&down_b)],
        "export-report",
    );
    let fa = bundles_under(&down_a);
    let fb = bundles_under(&down_b);
    for f in fa.iter().chain(&fb) {
        assert_eq!(check_header(f)["kind"], "data");
    }

    // inspect: one file → an object, several → an array.
    assert!(checked(&w.a, &["inspect", s(&fa[0])], "inspect").is_object());
    let many = checked(&w.a, &["inspect", s(&fa[0]), s(&fb[0])], "inspect");
    assert_eq!(many.as_array().unwrap().len(), 2);

    let r = checked(&w.a, &["verify", s(&down_a)], "file-reports");
    assert_eq!(statuses(&r), ["ok"]);
    // Centre A given both: its own verifies, B's is refused (wrong recipient).
    let both = json_out_code(&w.a, &["verify", s(&down_a), s(&down_b), "--json"], 1);
    check("file-reports", &both);
    assert_eq!(statuses(&both), ["ok", "refused"]);
    let r = json_out_code(&w.a, &["import", s(&down_b), "--json"], 1);
    check("file-reports", &r);
    assert_eq!(statuses(&r), ["refused"]);

    let r = checked(&w.a, &["import", s(&down_a)], "file-reports");
    assert_eq!(statuses(&r), ["applied"]);
    let r = checked(&w.a, &["import", s(&down_a)], "file-reports");
    assert_eq!(statuses(&r), ["already-applied"]);
    checked(&w.b, &["import", s(&down_b)], "file-reports");

    // A centre: personal properties sealed, or shown with --decrypt.
    let sealed = check_list(&w.a, &[]);
    assert!(sealed
        .iter()
        .any(|e| e.get("encryptedProperties").is_some()));
    let open = check_list(&w.a, &["--decrypt"]);
    assert!(open.iter().all(|e| e.get("encryptedProperties").is_none()));
    check_list(&w.b, &["test-taker"]);
    check_list(&w.b, &["delivery"]);

    check_config(&w.central);
    check_config(&w.a);
    checked(&w.central, &["center", "list"], "center-list");
    checked(&w.central, &["history"], "history");
    checked(&w.central, &["history", "--org", "ORG-001"], "history");
    checked(&w.a, &["history"], "history");
}

// ---- centre → central ----------------------------------------------------------------------

/// `results add`/`logs add --json` (with refusals), `results list --json` through the sync
/// statuses, `export --json` at a centre (results, acknowledgements only, nothing), results
/// bundle headers, import at central, the jsonl exports, `history --json`, `center list --json`.
#[test]
fn upsync_documents() {
    let w = World::enrolled();
    w.load_fixtures();
    let down = w.export_down("ORG-001", "down-1");
    ok(courier(&w.a, &["import", s(&down[0])]));

    let r = checked(
        &w.a,
        &["results", "add", s(&data("results/ORG-001-day1.jsonl"))],
        "add-report",
    );
    assert_eq!(r["added"], 5);
    // Refused records: exit 3, and the report says which and why.
    let r = json_out_code(
        &w.a,
        &["results", "add", s(&data("results/bad.jsonl")), "--json"],
        3,
    );
    check("add-report", &r);
    assert_eq!(r["refused"].as_array().unwrap().len(), 2);
    let r = checked(
        &w.a,
        &["logs", "add", s(&data("logs/ORG-001-day1.jsonl"))],
        "add-report",
    );
    assert!(r["added"].as_u64().unwrap() > 0);
    checked(
        &w.a,
        &["logs", "add", s(&data("logs/ORG-001-day1.jsonl"))],
        "add-report",
    );

    let list = checked(&w.a, &["results", "list"], "results-list");
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["syncStatus"] == "pending"));

    let up1 = w.path("up-1");
    let r = checked(&w.a, &["export", "--out", s(&up1)], "export-report");
    assert!(!r["files"].as_array().unwrap().is_empty());
    let files = bundles_under(&up1);
    for f in &files {
        assert_eq!(check_header(f)["kind"], "results");
    }
    checked(&w.a, &["inspect", s(&files[0])], "inspect");
    let statuses_sent: BTreeSet<String> = checked(&w.a, &["results", "list"], "results-list")
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["syncStatus"].as_str().unwrap().to_string())
        .collect();
    assert!(statuses_sent.contains("sent"));

    let r = checked(&w.central, &["verify", s(&up1)], "file-reports");
    assert!(statuses(&r).iter().all(|s| *s == "ok"));
    let r = checked(&w.central, &["import", s(&up1)], "file-reports");
    assert!(statuses(&r).iter().all(|s| *s == "applied"));

    // Central's exports: one JSON object per line.
    let rj = w.path("results.jsonl");
    let lj = w.path("logs.jsonl");
    ok(courier(
        &w.central,
        &["results", "export", "--format", "jsonl", "--out", s(&rj)],
    ));
    ok(courier(
        &w.central,
        &["logs", "export", "--format", "jsonl", "--out", s(&lj)],
    ));
    let rows = read_jsonl(&rj);
    assert_eq!(rows.len(), 4);
    rows.iter().for_each(|r| check("result-export", r));
    let logs = read_jsonl(&lj);
    assert!(!logs.is_empty());
    logs.iter().for_each(|l| check("log-export", l));

    // Acknowledgements back down; results become synchronized.
    let down2 = w.path("down-2");
    let r = checked(
        &w.central,
        &["export", "--to", "ORG-001", "--out", s(&down2)],
        "export-report",
    );
    assert!(r["counts"]["result-acks"].as_u64().unwrap() > 0);
    let down2_files = bundles_under(&down2);
    down2_files.iter().for_each(|f| {
        check_header(f);
    });
    checked(&w.a, &["import", s(&down2)], "file-reports");
    let list = checked(&w.a, &["results", "list"], "results-list");
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["syncStatus"] == "synchronized"));

    // A reopened result: replaced, to be re-synced.
    let r = checked(
        &w.a,
        &["results", "add", s(&data("results/ORG-001-reopened.jsonl"))],
        "add-report",
    );
    assert_eq!(r["replaced"], 1);
    let list = checked(&w.a, &["results", "list"], "results-list");
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["syncStatus"] == "to_be_resynced"));

    // The re-sync (with the acknowledgement of data bundle 2); a result stays "sent" (and
    // is sent again) until central acknowledges it.
    let up2 = w.path("up-2");
    checked(&w.a, &["export", "--out", s(&up2)], "export-report");
    bundles_under(&up2).iter().for_each(|f| {
        check_header(f);
    });
    checked(&w.central, &["import", s(&up2)], "file-reports");
    ok(courier(
        &w.central,
        &[
            "results",
            "export",
            "--format",
            "jsonl",
            "--out",
            s(&rj),
            "--force",
        ],
    ));
    read_jsonl(&rj)
        .iter()
        .for_each(|r| check("result-export", r));

    // Central acknowledges the re-sync; the centre then sends its acknowledgement of that
    // data bundle only, and after that has nothing new: no file.
    let down3 = w.path("down-3");
    checked(
        &w.central,
        &["export", "--to", "ORG-001", "--out", s(&down3)],
        "export-report",
    );
    bundles_under(&down3).iter().for_each(|f| {
        check_header(f);
    });
    checked(&w.a, &["import", s(&down3)], "file-reports");
    let list = checked(&w.a, &["results", "list"], "results-list");
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["syncStatus"] != "sent" && r["syncStatus"] != "to_be_resynced"));
    let up3 = w.path("up-3");
    checked(&w.a, &["export", "--out", s(&up3)], "export-report");
    bundles_under(&up3).iter().for_each(|f| {
        check_header(f);
    });
    checked(&w.central, &["import", s(&up3)], "file-reports");
    let up4 = w.path("up-4");
    let r = checked(&w.a, &["export", "--out", s(&up4)], "export-report");
    assert_eq!(r["files"], json!([]), "nothing new: no file");
    // Central too: nothing changed, nothing to acknowledge.
    let down4 = w.path("down-4");
    let r = checked(
        &w.central,
        &["export", "--to", "ORG-001", "--out", s(&down4)],
        "export-report",
    );
    assert_eq!(r["files"], json!([]), "nothing changed: no file");

    let centers = checked(&w.central, &["center", "list"], "center-list");
    assert!(centers
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["acked_seq"].is_i64()));
    let h = checked(&w.central, &["history"], "history");
    let actions: BTreeSet<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains("import") && actions.contains("export"));
    checked(&w.central, &["history", "--limit", "3"], "history");
    let h = checked(&w.a, &["history"], "history");
    let actions: BTreeSet<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains("results-add") && actions.contains("logs-add"));
    check_config(&w.a);
}

/// A refused import leaves the store as it was and is recorded, beside it, in the home's
/// audit trail (audit.jsonl), one schema-valid line per refusal naming the file.
#[test]
fn refused_imports_are_recorded_in_the_audit_trail() {
    let w = World::enrolled();
    w.load_fixtures();
    let files = w.export_down("ORG-001", "down");
    let before = crate::common::snapshot(&w.b, true);
    let o = courier(&w.b, &["import", s(&files[0])]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        before,
        crate::common::snapshot(&w.b, true),
        "store unchanged"
    );
    let lines = read_jsonl(&w.b.join("audit.jsonl"));
    assert_eq!(lines.len(), 1, "one refusal, one line");
    check("audit-entry", &lines[0]);
    assert!(lines[0]["file"]
        .as_str()
        .unwrap()
        .ends_with("ORG-001-data-000001.courier"));
    assert!(lines[0]["error"]
        .as_str()
        .unwrap()
        .contains("meant for centre ORG-001"));
    assert_eq!(lines[0]["exit_code"], 1);
    ok(courier(&w.a, &["import", s(&files[0])]));
    assert!(
        !w.a.join("audit.jsonl").exists(),
        "an applied bundle is not an audit entry"
    );
}

/// The schemas are compiled in draft-7 mode (src/schema.rs says why): they must not use
/// anything whose meaning differs from draft 2020-12 there — `$ref` beside assertions, or
/// keywords that draft 7 does not know.
#[test]
fn schemas_mean_the_same_in_draft_7_and_2020_12() {
    fn walk(v: &Value, at: &str, file: &str, bad: &mut Vec<String>) {
        const LATE: &[&str] = &[
            "prefixItems",
            "unevaluatedProperties",
            "unevaluatedItems",
            "dependentRequired",
            "dependentSchemas",
            "$anchor",
            "$dynamicRef",
            "$dynamicAnchor",
            "minContains",
            "maxContains",
        ];
        match v {
            Value::Object(m) => {
                if m.contains_key("$ref") {
                    let extra: Vec<&String> = m
                        .keys()
                        .filter(|k| {
                            ![
                                "$ref",
                                "description",
                                "title",
                                "$comment",
                                "examples",
                                "default",
                            ]
                            .contains(&k.as_str())
                        })
                        .collect();
                    if !extra.is_empty() {
                        bad.push(format!("{file}{at}: $ref beside {extra:?}"));
                    }
                }
                for (k, x) in m {
                    if LATE.contains(&k.as_str()) && at.split('/').next_back() != Some("properties")
                    {
                        bad.push(format!("{file}{at}: keyword {k}"));
                    }
                    walk(x, &format!("{at}/{k}"), file, bad);
                }
            }
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, x)| walk(x, &format!("{at}/{i}"), file, bad)),
            _ => {}
        }
    }
    let mut bad = Vec::new();
    for (name, text) in courier::schema::SCHEMAS {
        walk(&serde_json::from_str(text).unwrap(), "", name, &mut bad);
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

// ---- key rotation ---------------------------------------------------------------------------

/// After `keys rotate` at both roles: `keys rotate --json`, the headers of the bundles that
/// carry rollover statements, each statement's body, `inspect --json` of such a bundle,
/// courier.json with the new fingerprint, and the history with `keys-rotate` and
/// `key-rollover` rows.
#[test]
fn rotation_documents() {
    let w = World::synced();
    for home in [&w.central, &w.a] {
        let rotated = json_out(home, &["keys", "rotate", "--json"]);
        assert!(rotated["new_fingerprint"].is_string(), "{rotated}");
        check_config(home);
    }
    let down = w.export_down("ORG-001", "down-rot");
    let up = w.export_up(&w.a, "up-rot", &[]);
    for (home, file) in [(&w.a, &down[0]), (&w.central, &up[0])] {
        let header = check_header(file);
        let statements = header["rollover"].as_array().expect("rollover statements");
        assert!(!statements.is_empty());
        for st in statements {
            let body: Value = serde_json::from_str(st["body"].as_str().unwrap()).unwrap();
            check("rollover-body", &body);
        }
        let inspected = checked(home, &["inspect", file.to_str().unwrap()], "inspect");
        assert_eq!(inspected["requires"][0], "rollover", "{inspected}");
        ok(courier(home, &["import", file.to_str().unwrap()]));
    }
    for home in [&w.central, &w.a] {
        let history = json_out(home, &["history", "--json"]);
        check("history", &history);
        assert!(history.to_string().contains("key-rollover"), "{history}");
        let shown = checked(home, &["keys", "show"], "key-info");
        assert_eq!(shown["keys"].as_array().unwrap().len(), 2, "{shown}");
        assert!(shown["peers"].to_string().contains("replaced"), "{shown}");
    }
    // A centre re-enrolled: its earlier key, revoked, with the reason.
    let file = w.dir.path().join("reenroll-ORG-002.json");
    reenroll(&w.central, "ORG-002", &file);
    let rows = checked(&w.central, &["center", "list"], "center-list");
    assert!(rows.to_string().contains("revoked"), "{rows}");
}

/// `status --json` at central and at a centre, before and after results travelled.
#[test]
fn status_reports_match_their_schema() {
    let w = World::synced();
    checked(&w.central, &["status"], "status");
    checked(&w.a, &["status"], "status");
    ok(courier(
        &w.a,
        &["results", "add", s(&data("results/ORG-001-day1.jsonl"))],
    ));
    for f in w.export_up(&w.a, "up-1", &[]) {
        ok(courier(&w.central, &["import", s(&f)]));
    }
    let c = checked(&w.central, &["status"], "status");
    assert_eq!(c["centers"][0]["results_received"], 4, "{c:#}");
    let a = checked(&w.a, &["status"], "status");
    assert_eq!(a["sent"][0]["results"], 4, "{a:#}");
    checked(&w.central, &["center", "list"], "center-list");
}

/// Whether the `Value` path accepts a result record's text: it parses, and passes the schema.
fn schema_accepts(text: &[u8]) -> Option<courier::schema::result::ResultRecord> {
    let v: Value = serde_json::from_slice(text).ok()?;
    courier::schema::result::from_value(v).ok()
}

/// A good record changed by `f`, as text.
fn changed(good: &Value, f: impl FnOnce(&mut Value)) -> String {
    let mut v = good.clone();
    f(&mut v);
    v.to_string()
}

/// Records the schema refuses (and a few it accepts), made from a good one: every member
/// the schema constrains, missing, null, of another type, empty or outside its enum.
fn generated_records(good: &Value) -> Vec<String> {
    let mut out = vec![good.to_string()];
    let mut each = |f: &dyn Fn(&mut Value)| out.push(changed(good, f));
    for key in ["deliveryId", "deliveryExecutionId", "details", "variables"] {
        each(&|v| drop(v.as_object_mut().unwrap().remove(key)));
        for bad in [json!(null), json!(""), json!(7), json!([]), json!({})] {
            each(&|v| v[key] = bad.clone());
        }
    }
    each(&|v| v["extra"] = json!(1));
    let details = [
        "identifier",
        "label",
        "test-taker",
        "starttime",
        "finishtime",
        "state",
    ];
    for key in details.into_iter().chain(["further"]) {
        each(&|v| drop(v["details"].as_object_mut().unwrap().remove(key)));
        for other in [
            json!(null),
            json!(""),
            json!(1.5),
            json!(["x"]),
            json!({"a": 1}),
        ] {
            each(&|v| v["details"][key] = other.clone());
        }
    }
    let var = ["type", "callIdTest", "callIdItem", "test", "item", "data"];
    for key in var.into_iter().chain(["extra"]) {
        each(&|v| drop(v["variables"][0].as_object_mut().unwrap().remove(key)));
        for other in [
            json!(null),
            json!(""),
            json!(0),
            json!([]),
            json!({"a": [1e300]}),
        ] {
            each(&|v| v["variables"][0][key] = other.clone());
        }
    }
    let data = [
        "type",
        "identifier",
        "cardinality",
        "baseType",
        "epoch",
        "candidateResponse",
        "correctResponse",
        "value",
        "normalMinimum",
        "normalMaximum",
        "trace",
        "taoExtra",
    ];
    for key in data {
        each(&|v| {
            drop(
                v["variables"][0]["data"]
                    .as_object_mut()
                    .unwrap()
                    .remove(key),
            )
        });
        for other in [
            json!(null),
            json!(""),
            json!("single"),
            json!("outcomeVariable"),
            json!(true),
            json!(-3),
            json!(2.5),
            json!([1, {"b": null}]),
            json!({"c": "d"}),
        ] {
            each(&|v| v["variables"][0]["data"][key] = other.clone());
        }
    }
    each(&|v| v["variables"][0] = json!([1, 2]));
    each(&|v| v["variables"] = json!({"0": {}}));
    out.push("[]".into());
    out.push("{".into());
    let text = good.to_string();
    // A number beyond f64, an invalid escape and a lone surrogate where anything goes.
    for inner in [r#"1e400"#, r#""\x""#, r#""\ud800""#, r#"-0.5e-3"#] {
        let extra = format!(r#"{{"taoExtra":{inner},"#);
        out.push(text.replacen(r#""data":{"#, &format!(r#""data":{extra}"#), 1));
        out.push(text.replacen(r#""details":{"#, &format!(r#""details":{extra}"#), 1));
    }
    out
}

/// Result records to compare readers on: every result record of the fixtures (JSON Lines and
/// TAO's request body) and records generated from two good ones (`generated_records`).
fn result_records() -> Vec<String> {
    let mut records: Vec<String> = Vec::new();
    for f in ["ORG-001-day1.jsonl", "ORG-001-reopened.jsonl", "bad.jsonl"] {
        let text = std::fs::read_to_string(data("results").join(f)).unwrap();
        records.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(String::from),
        );
    }
    let tao = fixtures().join("tao");
    let text = std::fs::read_to_string(tao.join("results-tao.jsonl")).unwrap();
    records.extend(
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(String::from),
    );
    let body = read_json(&tao.join("results-request-body.json"));
    let tao_records = body["results"].as_object().unwrap().values();
    records.extend(tao_records.map(Value::to_string));
    let good: Vec<Value> = records
        .iter()
        .filter(|r| schema_accepts(r.as_bytes()).is_some())
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    assert!(good.len() >= 10, "good fixture records: {}", good.len());
    for g in good.iter().take(2) {
        records.extend(generated_records(g));
    }
    records
}

/// The typed reader of central's import (`schema::result::read`) and result.schema.json
/// accept and refuse the same records: every result record in the fixtures and records
/// generated from them with each constrained member changed; when both accept, they read
/// the same delivery, execution, details and variable keys.
#[test]
fn typed_result_reader_agrees_with_the_result_schema() {
    let records = result_records();
    let (mut accepted, mut refused) = (0, 0);
    for r in &records {
        let typed = courier::schema::result::read(r.as_bytes());
        let schema = schema_accepts(r.as_bytes());
        assert_eq!(typed, schema, "typed reader and schema disagree on\n{r}");
        if typed.is_some() {
            accepted += 1
        } else {
            refused += 1
        }
    }
    assert!(
        accepted > 20 && refused > 100,
        "{accepted} accepted, {refused} refused"
    );
}

/// The canonical form a centre hashes and seals a result in, written straight from the text
/// (`schema::compact::write`), is byte for byte what the `Value` round trip writes, for every
/// record the readers are compared on, written compactly and pretty-printed, and for scalars
/// whose form serde_json normalises; a member named twice and text that is not one JSON
/// value are refused. The centre's typed check (`read_head`) accepts what `read` accepts.
#[test]
fn compact_form_is_what_a_value_round_trip_writes() {
    let mut texts = result_records();
    let pretty: Vec<String> = texts
        .iter()
        .filter_map(|t| serde_json::from_str::<Value>(t).ok())
        .map(|v| serde_json::to_string_pretty(&v).unwrap())
        .collect();
    texts.extend(pretty);
    for scalar in [
        r#"1.0"#,
        r#"1E2"#,
        r#"-0"#,
        r#"-0.0"#,
        r#"18446744073709551615"#,
        r#"18446744073709551616"#,
        r#"-9223372036854775808"#,
        r#"0.1"#,
        r#"1e-7"#,
        r#"123456789012345678901234567890"#,
        r#""a\/b\u00e9\ud83d\ude00\t\"""#,
        r#""é😀\u001f""#,
        r#" [ 1 , { "a" : [ ] , "b" : { } } , null , true , false ] "#,
    ] {
        texts.push(scalar.to_string());
        texts.push(format!(r#"{{"k":{scalar},"l":[{scalar}]}}"#));
    }
    let (mut same, mut refused) = (0, 0);
    for t in &texts {
        let mut out = b"kept".to_vec();
        let compact = courier::schema::compact::write(t.as_bytes(), &mut out);
        match serde_json::from_str::<Value>(t) {
            Ok(v) => {
                assert!(compact.is_some(), "compact refused\n{t}");
                assert_eq!(
                    String::from_utf8(out[4..].to_vec()).unwrap(),
                    serde_json::to_string(&v).unwrap(),
                    "compact form differs for\n{t}"
                );
                same += 1;
            }
            Err(_) => {
                assert!(compact.is_none(), "compact took what is not JSON\n{t}");
                assert_eq!(out, b"kept", "a refusal left output behind");
                refused += 1;
            }
        }
        let head = courier::schema::result::read_head(t.as_bytes());
        let full = courier::schema::result::read(t.as_bytes());
        assert_eq!(
            head.is_some(),
            full.is_some(),
            "read_head and read disagree on\n{t}"
        );
        if let (Some(h), Some(f)) = (head, full) {
            assert_eq!(
                (
                    h.execution_id.as_str(),
                    h.delivery_id.as_str(),
                    h.test_taker.as_str()
                ),
                (
                    f.execution_id.as_str(),
                    f.delivery_id.as_str(),
                    f.test_taker()
                ),
            );
            assert_eq!(
                (h.state.as_str(), h.finishtime.as_deref()),
                (f.state(), f.finishtime())
            );
        }
    }
    assert!(
        same > 500 && refused > 3,
        "{same} compared, {refused} refused"
    );
    for twice in [
        r#"{"a":1,"a":2}"#,
        r#"{"x":[{"b":1,"c":2,"b":3}]}"#,
        r#"{"a\u0062":1,"ab":2}"#,
    ] {
        let mut out = Vec::new();
        assert_eq!(
            courier::schema::compact::write(twice.as_bytes(), &mut out),
            None,
            "a member named twice was taken: {twice}"
        );
        assert!(out.is_empty());
    }
    // Many members: past the short list, names are checked through a set.
    let many: Vec<String> = (0..40).map(|i| format!(r#""m{i}":{i}"#)).collect();
    let mut out = Vec::new();
    let text = format!("{{{}}}", many.join(","));
    assert!(courier::schema::compact::write(text.as_bytes(), &mut out).is_some());
    assert_eq!(out, text.as_bytes());
    let mut out = Vec::new();
    let text = format!(r#"{{{},"m33":0}}"#, many.join(","));
    assert!(courier::schema::compact::write(text.as_bytes(), &mut out).is_none());
}

/// The typed check of `logs add` (`schema::log::read`) and log.schema.json agree: every log
/// record of the fixtures (JSON Lines, TAO's request body) and logs made from a good one with
/// each member missing, null or of another type are accepted by both or refused by both,
/// and when both accept they read the same id and execution. The typed check may refuse an
/// integer written as a float (`7.0`), which the schema takes: such a log goes the `Value`
/// way, so this is allowed and shown below.
#[test]
fn typed_log_reader_agrees_with_the_log_schema() {
    let mut logs: Vec<String> = Vec::new();
    for f in [
        data("logs").join("ORG-001-day1.jsonl"),
        data("logs").join("ORG-001-late.jsonl"),
        fixtures().join("tao").join("delivery-logs-tao.jsonl"),
    ] {
        let text = std::fs::read_to_string(f).unwrap();
        logs.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(String::from),
        );
    }
    let body = read_json(&fixtures().join("tao").join("logs-request-body.json"));
    for batch in body["delivery_logs"].as_object().unwrap().values() {
        logs.extend(batch.as_array().unwrap().iter().map(Value::to_string));
    }
    let good: Value = serde_json::from_str(&logs[0]).unwrap();
    let members = [
        "id",
        "delivery_execution_id",
        "event_id",
        "data",
        "created_at",
        "is_synced",
        "log_is_after_session_sync",
        "created_by",
        "extra",
    ];
    for key in members {
        logs.push(changed(&good, |v| {
            drop(v.as_object_mut().unwrap().remove(key))
        }));
        for other in [
            json!(null),
            json!(""),
            json!(7),
            json!(-7),
            json!(1.5),
            json!(true),
            json!([1]),
            json!({"a": 1}),
            json!("0.5 1764144000"),
            json!("1764144000.25"),
            json!("1764144000"),
            json!("0.5 x"),
            json!("1.2.3"),
            json!(" 0.5 1"),
        ] {
            logs.push(changed(&good, |v| v[key] = other.clone()));
        }
    }
    let (mut accepted, mut refused) = (0, 0);
    for l in &logs {
        let typed = courier::schema::log::read(l.as_bytes());
        let v: Option<Value> = serde_json::from_str(l).ok();
        let schema = v
            .as_ref()
            .filter(|v| courier::schema::check("log", v).is_ok());
        assert_eq!(
            typed.is_some(),
            schema.is_some(),
            "typed check and schema disagree on\n{l}"
        );
        if let (Some(t), Some(v)) = (typed, schema) {
            let id = match &v["id"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(
                (t.id.as_str(), t.execution_id.as_str()),
                (id.as_str(), v["delivery_execution_id"].as_str().unwrap())
            );
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    assert!(
        accepted > 20 && refused > 60,
        "{accepted} accepted, {refused} refused"
    );
    let float_id = changed(&good, |v| v["id"] = json!(7.0));
    let v: Value = serde_json::from_str(&float_id).unwrap();
    let schema_takes_it = courier::schema::check("log", &v).is_ok();
    assert!(courier::schema::log::read(float_id.as_bytes()).is_none() || !schema_takes_it);
}
