//! TAO's own wire shapes (issue 10, fixtures/tao/, docs/TAO-SHAPES.md): entity details load
//! and travel down with references trimmed to each centre's scope; results and delivery
//! logs in TAO's shapes (request bodies included) travel up and come out of
//! `results export --format tao` / `logs export --format tao` as they went in.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn tao(name: &str) -> PathBuf {
    fixtures().join("tao").join(name)
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

const TYPES: [&str; 5] = [
    "test-center",
    "proctor",
    "test-taker",
    "eligibility",
    "delivery",
];
const TAO_VERSION: &str = "3.3.0-sprint107";

/// TAO's data folder as its sync extension leaves it: each delivery's test package at
/// `synchronisation/<delivery id>/export.zip` (what `OriginTestPackage` refers to).
fn tao_data_folder(w: &World) -> PathBuf {
    let root = w.path("tao-data");
    for (delivery, package) in [
        ("del-basic", "2.1-basic-Basic.zip"),
        ("del-sumscore", "2.1-outcomeProcessing-SumScore.zip"),
        ("del-label", "2.2-test_label_is_persisted.zip"),
    ] {
        let dir = root.join("synchronisation").join(delivery);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(
            fixtures().join("qti/valid").join(package),
            dir.join("export.zip"),
        )
        .unwrap();
    }
    root
}

/// Load every entity-details fixture at central, types told from the records.
fn load_tao_entities(w: &World) -> String {
    let root = tao_data_folder(w);
    let files: Vec<PathBuf> = TYPES
        .iter()
        .map(|t| tao(&format!("entities-details-{t}.json")))
        .collect();
    let mut args = vec!["load", "--json", "--packages", s(&root)];
    args.extend(files.iter().map(|f| s(f)));
    let o = courier(&w.central, &args);
    let err = stderr(&o);
    let out = ok(o);
    assert!(!err.contains("checksum"), "TAO's checksums match: {err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    courier::schema::check("load-report", &report).unwrap();
    for (kind, n) in [
        ("test-center", 2),
        ("proctor", 4),
        ("test-taker", 7),
        ("eligibility", 4),
        ("delivery", 3),
    ] {
        assert_eq!(report["created"][kind], n, "{kind}: {report}");
    }
    assert_eq!(report["packages"], 3, "{report}");
    out
}

/// Central exports to each centre, which applies it.
fn sync_down(w: &World, folder: &str) {
    for (home, org) in [(&w.a, "ORG-001"), (&w.b, "ORG-002")] {
        for f in w.export_down(org, &format!("{folder}-{org}")) {
            ok(courier(home, &["import", s(&f)]));
        }
    }
}

#[test]
fn tao_fixtures_match_the_schemas() {
    for t in TYPES {
        let file = tao(&format!("entities-details-{t}.json"));
        courier::schema::check("entity-details", &read_json(&file)).unwrap();
    }
    for org in ["ORG-001", "ORG-002"] {
        let file = tao(&format!("expected-test-taker-{org}.json"));
        courier::schema::check("entity-details", &read_json(&file)).unwrap();
    }
    let body = read_json(&tao("results-request-body.json"));
    courier::schema::check("results-request-body", &body).unwrap();
    for r in body["results"].as_object().unwrap().values() {
        courier::schema::check("result", r).unwrap();
    }
    let body = read_json(&tao("logs-request-body.json"));
    courier::schema::check("logs-request-body", &body).unwrap();
    for rows in body["delivery_logs"].as_object().unwrap().values() {
        for r in rows.as_array().unwrap() {
            courier::schema::check("log", r).unwrap();
        }
    }
}

/// TAO's entity details load (types told from rdf:type and roles, TAO's package
/// references found under --packages), travel down, and a test taker shared by two
/// organisations reaches each with only that organisation's eligibilities.
#[test]
fn tao_entity_details_travel_down_trimmed_to_each_centre() {
    let w = World::enrolled();
    load_tao_entities(&w);
    sync_down(&w, "down");
    for (home, org) in [(&w.a, "ORG-001"), (&w.b, "ORG-002")] {
        let expected = read_json(&tao(&format!("expected-test-taker-{org}.json")));
        let expected = expected.as_object().unwrap();
        let held = list(home, &["test-taker", "--decrypt"]);
        let ids: Vec<&str> = held.iter().map(|e| e["id"].as_str().unwrap()).collect();
        let mut want: Vec<&str> = expected.keys().map(String::as_str).collect();
        want.sort();
        assert_eq!(ids, want, "{org}: its test takers");
        for e in &held {
            let id = e["id"].as_str().unwrap();
            let exp = &expected[id]["properties"];
            assert_eq!(&e["properties"], exp, "{org}: {id}");
            let ua = courier::tao::USER_ASSIGNMENT;
            assert_eq!(e["properties"][ua], exp[ua], "{org}: {id}: UserAssignment");
            // What TAO's own formatter sends this organisation, checksum included.
            let props = exp.as_object().unwrap();
            assert_eq!(
                courier::tao::checksum(props).as_deref(),
                expected[id]["checksum"].as_str()
            );
        }
        // Proctors are linked from the user to the centre, as in TAO.
        let proctors: Vec<String> = list(home, &["proctor"])
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        let tag = org.strip_prefix("ORG-").unwrap();
        assert_eq!(proctors.len(), 2, "{org}: {proctors:?}");
        assert!(proctors
            .iter()
            .all(|p| p.contains(&format!("proctor-{tag}"))));
    }
}

/// The `uri` variant, `--type`, a checksum that differs (a warning), a record whose type
/// cannot be told (refused, naming --type), a package that cannot be found (the paths
/// tried and what they were resolved against).
#[test]
fn tao_entity_details_variants_and_refusals() {
    let w = World::new();
    let out = ok(courier(
        &w.central,
        &[
            "load",
            "--json",
            "--type",
            "test-center",
            s(&tao("entities-details-test-center-uri.json")),
        ],
    ));
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["created"]["test-center"], 2, "{report}");

    // A record edited after TAO wrote it: loaded, with a warning naming it.
    let mut details = read_json(&tao("entities-details-eligibility.json"));
    let first = details
        .as_object_mut()
        .unwrap()
        .values_mut()
        .next()
        .unwrap();
    first["properties"]["http://www.tao.lu/Ontologies/TAOProctor.rdf#ByPassProctor"] =
        Value::from("http://www.tao.lu/Ontologies/generis.rdf#True");
    let edited = w.path("eligibility-edited.json");
    std::fs::write(&edited, serde_json::to_vec_pretty(&details).unwrap()).unwrap();
    let o = courier(&w.central, &["load", s(&edited)]);
    let err = stderr(&o);
    ok(o);
    assert!(
        err.contains("1 record(s) carry a checksum other than TAO's")
            && err.contains("elig-001-basic"),
        "{err}"
    );

    // No rdf:type or role that tells the type: refused, nothing loaded.
    let before = snapshot(&w.central, true);
    let unknown = w.path("unknown.json");
    std::fs::write(
        &unknown,
        r#"{"urn:x#1": {"id": "urn:x#1", "checksum": null, "properties": {"http://www.w3.org/1999/02/22-rdf-syntax-ns#type": "urn:custom#Thing"}}}"#,
    )
    .unwrap();
    let err = refused(courier(&w.central, &["load", s(&unknown)]), 1, "--type");
    assert!(err.contains("\"urn:x#1\""), "names the record: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // TAO's package reference without the folder holding TAO's files.
    let deliveries = tao("entities-details-delivery.json");
    let err = refused(
        courier(&w.central, &["load", s(&deliveries)]),
        1,
        "No such file",
    );
    for part in [
        "file://synchronisation/del-basic%2Fexport.zip",
        "synchronisation/del-basic/export.zip",
        "resolved against",
        "--packages",
    ] {
        assert!(err.contains(part), "says {part}: {err}");
    }
    assert_eq!(snapshot(&w.central, true), before, "store unchanged");
}

/// Replace the sync_params member of a PHP-encoded request body by courier's.
fn with_couriers_sync_params(body: &str, org: &str) -> String {
    let at = body.rfind(",\"sync_params\":").expect("sync_params");
    format!(
        "{},\"sync_params\":{{\"organisation_id\":\"{org}\",\"tao_version\":\"{TAO_VERSION}\"}}}}\n",
        &body[..at]
    )
}

/// Results and delivery logs exactly as TAO produces them (item variables with a null
/// callIdTest, variable classes, an unfinished execution, is_synced and
/// log_is_after_session_sync, string ids), as JSON Lines and as the sync API's request
/// bodies, travel up and come out of central's TAO exports as the bodies that went in.
#[test]
fn tao_results_and_logs_come_out_as_the_request_bodies_that_went_in() {
    let w = World::enrolled();
    load_tao_entities(&w);
    sync_down(&w, "down");
    // The active execution travels too: TAO's statusExecutionsToSync with Active.
    let config = w.a.join("courier.json");
    let mut c: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    c["settings"]["status_executions_to_sync"] = serde_json::json!([
        "http://www.tao.lu/Ontologies/TAODelivery.rdf#DeliveryExecutionStatusFinished",
        "http://www.tao.lu/Ontologies/TAODelivery.rdf#DeliveryExecutionStatusActive"
    ]);
    std::fs::write(&config, serde_json::to_vec_pretty(&c).unwrap()).unwrap();

    let add = |what: &str, file: &str| -> Value {
        let out = ok(courier(&w.a, &[what, "add", "--json", s(&tao(file))]));
        serde_json::from_str(&out).unwrap()
    };
    let r = add("results", "results-tao.jsonl");
    assert_eq!(
        (r["added"].as_u64(), r["refused"].as_array().unwrap().len()),
        (Some(5), 0),
        "{r}"
    );
    // The request body holds the same results: nothing new.
    let r = add("results", "results-request-body.json");
    assert_eq!(r["unchanged"], 5, "{r}");
    let r = add("logs", "logs-request-body.json");
    assert_eq!(r["added"], 13, "{r}");
    let r = add("logs", "delivery-logs-tao.jsonl");
    assert_eq!(r["unchanged"], 13, "{r}");

    for f in w.export_up(&w.a, "up", &[]) {
        ok(courier(&w.central, &["import", s(&f)]));
    }
    for (what, body) in [
        ("results", "results-request-body"),
        ("logs", "logs-request-body"),
    ] {
        let out = w.path(&format!("{what}-bodies.jsonl"));
        let args = [
            "--format",
            "tao",
            "--tao-version",
            TAO_VERSION,
            "--out",
            s(&out),
        ];
        ok(courier(
            &w.central,
            &[&[what, "export"][..], &args].concat(),
        ));
        let written = std::fs::read_to_string(&out).unwrap();
        let sent = std::fs::read_to_string(tao(&format!("{body}.json"))).unwrap();
        assert_eq!(
            written,
            with_couriers_sync_params(&sent, "ORG-001"),
            "{what}"
        );
        let (written, sent): (Value, Value) = (
            serde_json::from_str(&written).unwrap(),
            serde_json::from_str(&sent).unwrap(),
        );
        courier::schema::check(body, &written).unwrap();
        // Every member but sync_params, field for field.
        let member = if what == "results" {
            "results"
        } else {
            "delivery_logs"
        };
        assert_eq!(written[member], sent[member], "{what}");
        // sync_params: organisation and TAO version as the centre sent them; the centre's
        // sync_id and box_id are not kept (docs/TAO-SHAPES.md, "sync_params").
        for key in ["organisation_id", "tao_version"] {
            assert_eq!(
                written["sync_params"][key], sent["sync_params"][key],
                "{key}"
            );
        }
        for key in ["sync_id", "box_id"] {
            assert!(sent["sync_params"].get(key).is_some(), "{key}");
            assert!(written["sync_params"].get(key).is_none(), "{key}");
        }

        // --chunk 2 (TAO's chunkSize): the same records in bodies of at most two
        // (results) or two log rows each, which merge back into the single body.
        let chunked = w.path(&format!("{what}-chunked.jsonl"));
        let args = [
            "--format",
            "tao",
            "--tao-version",
            TAO_VERSION,
            "--chunk",
            "2",
            "--out",
            s(&chunked),
        ];
        ok(courier(
            &w.central,
            &[&[what, "export"][..], &args].concat(),
        ));
        let mut merged = serde_json::Map::new();
        let mut bodies = 0;
        let mut records = 0;
        for line in std::fs::read_to_string(&chunked).unwrap().lines() {
            let doc: Value = serde_json::from_str(line).unwrap();
            courier::schema::check(body, &doc).unwrap();
            bodies += 1;
            let mut in_body = 0;
            for (exec, v) in doc[member].as_object().unwrap() {
                in_body += v.as_array().map_or(1, Vec::len);
                match merged.get_mut(exec) {
                    Some(Value::Array(held)) => held.extend(v.as_array().unwrap().clone()),
                    _ => {
                        merged.insert(exec.clone(), v.clone());
                    }
                }
            }
            assert!(in_body <= 2, "{what}: {in_body} records in one body");
            records += in_body;
        }
        assert_eq!(Value::Object(merged), written[member], "{what}");
        assert_eq!(bodies, records.div_ceil(2), "{what}: {bodies} bodies");
    }

    // --format tao needs the version TAO central checks.
    refused(
        courier(
            &w.central,
            &[
                "logs",
                "export",
                "--format",
                "tao",
                "--out",
                s(&w.path("x")),
            ],
        ),
        2,
        "--tao-version",
    );
}

/// A file of many bad records: ten lines, then the rest summed up by reason; a file of
/// the other kind is refused with the command that reads it.
#[test]
fn many_bad_tao_records_are_summed_up_and_the_wrong_kind_named() {
    let w = World::enrolled();
    // 25 results whose delivery this centre does not hold (nothing was synced yet).
    let first = std::fs::read_to_string(tao("results-tao.jsonl")).unwrap();
    let first: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    let mut text = String::new();
    for i in 0..25 {
        let mut r = first.clone();
        r["deliveryExecutionId"] = Value::from(format!("urn:x#e{i}"));
        text.push_str(&format!("{r}\n"));
    }
    let bad = w.path("bad-results.jsonl");
    std::fs::write(&bad, text).unwrap();
    let before = snapshot(&w.a, false);
    let o = courier(&w.a, &["results", "add", s(&bad)]);
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 11, "{err}");
    assert!(
        lines[10].contains("15 more record(s) refused for the same reason: delivery https://central.example/tao.rdf#del-basic is not held"),
        "{err}"
    );
    assert_eq!(snapshot(&w.a, false), before);

    for (cmd, file, hint) in [
        ("results", "logs-request-body.json", "courier logs add"),
        ("logs", "results-request-body.json", "courier results add"),
        (
            "results",
            "entities-details-test-taker.json",
            "courier load",
        ),
    ] {
        let err = refused(courier(&w.a, &[cmd, "add", s(&tao(file))]), 1, hint);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert_eq!(snapshot(&w.a, false), before);
}

/// A package that `package check` passes with a warning (a declared item, referred to by no
/// test, whose file is missing: TAO imports only referenced items) loads, and the load
/// report carries the warning once per package file, naming the delivery and the package.
#[test]
fn package_warnings_reach_the_load_report() {
    let w = World::new();
    let zip = "ok_extra_declared_item_missing.zip";
    std::fs::copy(tao("qti").join(zip), w.path(zip)).unwrap();
    let deliveries = w.path("deliveries.jsonl");
    let line = |id: &str| {
        serde_json::json!({"type": "delivery", "id": format!("https://central.example/tao.rdf#{id}"),
            "properties": {"http://www.w3.org/2000/01/rdf-schema#label": id,
                "http://www.taotesting.com/ontologies/synchro.rdf#OriginTestPackage": zip}})
        .to_string()
    };
    std::fs::write(
        &deliveries,
        format!("{}\n{}\n", line("del-warned"), line("del-same-package")),
    )
    .unwrap();
    let o = courier(&w.central, &["load", "--json", s(&deliveries)]);
    let err = stderr(&o);
    let report: Value = serde_json::from_str(&ok(o)).unwrap();
    courier::schema::check("load-report", &report).unwrap();
    assert_eq!(report["created"]["delivery"], 2, "{report}");
    assert_eq!(report["packages"], 1, "{report}");
    let warnings: Vec<&str> = report["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(warnings.len(), 1, "once per package file: {warnings:?}");
    for part in [
        "del-warned",
        zip,
        "imsmanifest.xml",
        "Q99",
        "no test refers to it",
    ] {
        assert!(warnings[0].contains(part), "says {part}: {}", warnings[0]);
    }
    assert!(!warnings[0].contains("del-same-package"), "{}", warnings[0]);
    assert_eq!(
        err.matches("courier: warning:").count(),
        1,
        "stderr too, once: {err}"
    );
    assert!(err.contains("del-warned"), "{err}");
}

/// The executions in central's `results export --format tao`, with their details.
fn central_tao_results(w: &World, name: &str) -> serde_json::Map<String, Value> {
    let out = w.path(name);
    let args = ["results", "export", "--format", "tao"];
    let more = ["--tao-version", TAO_VERSION, "--out", s(&out)];
    ok(courier(&w.central, &[&args[..], &more].concat()));
    let mut all = serde_json::Map::new();
    for line in std::fs::read_to_string(&out).unwrap().lines() {
        let body: Value = serde_json::from_str(line).unwrap();
        all.extend(body["results"].as_object().unwrap().clone());
    }
    all
}

/// TAO's centre sends only executions whose state `status_executions_to_sync` lists
/// (default: Finished). An active execution (`finishtime: null`) is held at the centre and
/// not sent; once a later `results add` brings its finished copy, that copy travels and
/// central hands it to TAO.
#[test]
fn an_active_execution_waits_until_it_finishes() {
    let w = World::enrolled();
    load_tao_entities(&w);
    sync_down(&w, "down");
    let r = ok(courier(
        &w.a,
        &["results", "add", "--json", s(&tao("results-tao.jsonl"))],
    ));
    let r: Value = serde_json::from_str(&r).unwrap();
    assert_eq!(r["added"], 5, "{r}");
    let text = std::fs::read_to_string(tao("results-tao.jsonl")).unwrap();
    let mut active: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["details"]["finishtime"].is_null())
        .expect("an active execution in the fixture");
    let id = active["deliveryExecutionId"].as_str().unwrap().to_string();
    assert!(active["details"]["state"]
        .as_str()
        .unwrap()
        .ends_with("StatusActive"));

    for f in w.export_up(&w.a, "up-1", &[]) {
        ok(courier(&w.central, &["import", s(&f)]));
    }
    let held: Vec<Value> = results_list(&w.a)
        .into_iter()
        .filter(|r| r["deliveryExecutionId"] == id.as_str())
        .collect();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["syncStatus"], "pending", "held, not sent: {held:?}");
    let at_central = central_tao_results(&w, "tao-1.jsonl");
    assert_eq!(at_central.len(), 4, "the finished ones only");
    assert!(!at_central.contains_key(&id), "{id} did not travel");

    // The test taker finishes: TAO's next export holds the finished copy.
    let finished = "0.25000000 1764160000";
    active["details"]["finishtime"] = Value::from(finished);
    active["details"]["state"] =
        Value::from("http://www.tao.lu/Ontologies/TAODelivery.rdf#DeliveryExecutionStatusFinished");
    let later = w.path("results-later.jsonl");
    std::fs::write(&later, format!("{active}\n")).unwrap();
    let r = ok(courier(&w.a, &["results", "add", "--json", s(&later)]));
    let r: Value = serde_json::from_str(&r).unwrap();
    assert_eq!(r["replaced"], 1, "{r}");

    for f in w.export_up(&w.a, "up-2", &[]) {
        ok(courier(&w.central, &["import", s(&f)]));
    }
    let at_central = central_tao_results(&w, "tao-2.jsonl");
    assert_eq!(at_central.len(), 5, "the finished copy travelled");
    assert_eq!(at_central[&id], active, "as the centre's TAO wrote it");
}
