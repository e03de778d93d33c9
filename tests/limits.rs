//! Bounded work for any input: record limits, numbers, memory.

use std::path::Path;
use std::process::Output;

use serde_json::{json, Value};

use crate::common::*;

/// Peak RSS in KiB printed by the binary under COURIER_REPORT_PEAK_RSS=1; None where the
/// platform has no /proc/self/status.
fn peak_kib(o: &Output) -> Option<u64> {
    stderr(o)
        .lines()
        .find_map(|l| l.strip_prefix("peak RSS: "))
        .and_then(|v| v.strip_suffix(" KiB"))
        .and_then(|v| v.parse().ok())
}

/// Run courier asking for its peak RSS. With COURIER_KEEP_HOSTILE=DIR (bench/hostile-memory.sh),
/// the home and the arguments' files are first copied to DIR/NAME so that the same import
/// can be replayed, e.g. by another build.
fn courier_measured(name: &str, home: &Path, args: &[&str]) -> Output {
    if let Some(keep) = std::env::var_os("COURIER_KEEP_HOSTILE") {
        let dir = Path::new(&keep).join(name);
        let _ = std::fs::remove_dir_all(&dir);
        copy_tree(home, &dir.join("home"));
        let mut kept = vec![];
        for a in args {
            let p = Path::new(a);
            if p.is_file() {
                let to = dir.join(p.file_name().unwrap());
                std::fs::copy(p, &to).unwrap();
                kept.push(to.file_name().unwrap().to_string_lossy().into_owned());
            } else {
                kept.push(a.to_string());
            }
        }
        std::fs::write(dir.join("args"), kept.join("\n")).unwrap();
    }
    courier_env(home, args, &[("COURIER_REPORT_PEAK_RSS", "1")])
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// Assert an import stayed under 150 MiB of peak RSS (Linux); say so when not measurable.
#[track_caller]
fn assert_bounded(o: &Output, what: &str) {
    match peak_kib(o) {
        Some(kib) => {
            eprintln!("{what}: peak RSS {kib} KiB");
            assert!(kib < 150 * 1024, "{what}: peak RSS {kib} KiB, over 150 MiB");
        }
        None if cfg!(target_os = "linux") => panic!("no peak RSS reported:\n{}", stderr(o)),
        None => eprintln!("{what}: peak RSS not measurable on this platform; check skipped"),
    }
}

/// A fixture result of centre ORG-001 (held by it after the fixture down-sync).
fn a_result() -> Value {
    let text = std::fs::read_to_string(fixtures().join("data/results/ORG-001-day1.jsonl")).unwrap();
    serde_json::from_str(text.lines().next().unwrap()).unwrap()
}

/// A bundle from centre A carrying one result whose plaintext is `plain` (ids from `ids`).
fn hostile_result_bundle(w: &World, name: &str, ids: &Value, plain: &[u8]) -> std::path::PathBuf {
    let f = Forger::new(&w.a);
    let (meta, sealed) = f.seal_result_bytes(ids, plain, 1, false);
    let out = w.path(name);
    f.results_bundle(
        &out,
        &f.claim(1),
        &Forger::result_entries(&[(meta, sealed)]),
    );
    out
}

#[test]
fn an_80_mb_array_in_a_9_kb_bundle_is_kept_aside_in_bounded_memory() {
    let w = World::synced();
    let mut plain = Vec::with_capacity(80 << 20);
    plain.push(b'[');
    while plain.len() < 80 << 20 {
        plain.extend_from_slice(b"[],");
    }
    plain.extend_from_slice(b"[]]");
    let bundle = hostile_result_bundle(&w, "hostile.courier", &a_result(), &plain);
    let size = std::fs::metadata(&bundle).unwrap().len();
    assert!(size < 64 * 1024, "the bundle is small: {size} bytes");
    let o = courier_measured(
        "array-80mb",
        &w.central,
        &["import", bundle.to_str().unwrap()],
    );
    assert_bounded(&o, "80 MB array");
    let out = partly(
        o,
        "decompresses to larger than 16777216 bytes (settings.limits.record_bytes)",
    );
    assert!(
        out.len() < 1000,
        "the report quotes no document: {} bytes",
        out.len()
    );
    assert_eq!(count(&w.central, "central_results"), 0);
    assert_stored_once(&w.central, 0);
}

/// Assert exit 3 (partly applied) with `needle` in the report; returns stdout.
#[track_caller]
fn partly(o: Output, needle: &str) -> String {
    let out = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(3),
        "stdout: {out}\nstderr: {}",
        stderr(&o)
    );
    assert!(
        out.contains(needle),
        "report does not mention {needle:?}:\n{out}"
    );
    out
}

/// One result kept aside at central: its content stored once (`content_len` bytes, 0 when it
/// was never decompressed in full), and the reason, the history and the acknowledgement
/// owed to the centre short, naming it by reason and hash only.
#[track_caller]
fn assert_stored_once(central: &Path, content_len: i64) {
    let conn = rusqlite::Connection::open(central.join("store.sqlite")).unwrap();
    let (content, reason, sha): (i64, i64, String) = conn
        .query_row(
            "SELECT length(content), length(reason), content_sha256 FROM quarantine",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        content, content_len,
        "the quarantine holds the document at most once"
    );
    assert!(reason < 300, "quarantine reason of {reason} bytes");
    let history: i64 = conn
        .query_row("SELECT max(length(report)) FROM history", [], |r| r.get(0))
        .unwrap();
    assert!(history < 1000, "history report of {history} bytes");
    let (ack_reason, ack_sha): (i64, String) = conn
        .query_row(
            "SELECT length(reason), content_sha256 FROM acks_out WHERE status = 'conflict'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        ack_reason < 300,
        "acknowledgement reason of {ack_reason} bytes"
    );
    assert_eq!(
        ack_sha, sha,
        "the acknowledgement names the document by its hash"
    );
}

/// A fixture result whose variables' `correctResponse` (any JSON value) is `filler`.
fn result_with(filler: &Value, variables: usize) -> Value {
    let mut r = a_result();
    let one = r["variables"][0].clone();
    let mut vars = vec![];
    for _ in 0..variables {
        let mut v = one.clone();
        v["data"]["correctResponse"] = filler.clone();
        vars.push(v);
    }
    r["variables"] = Value::Array(vars);
    r
}

/// Set `settings.limits.NAME` in a site's courier.json.
fn set_limit(home: &Path, name: &str, value: u64) {
    let config = home.join("courier.json");
    let mut c: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    c["settings"]["limits"][name] = json!(value);
    std::fs::write(&config, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
}

#[test]
fn results_just_within_every_limit_are_stored_in_bounded_memory() {
    let w = World::synced();
    // The costliest shapes per unit that the limits let through: ~980,000 units of small
    // objects (7 units each); ~990,000 units of empty arrays; two strings of almost 8 MiB each.
    let objects = result_with(&Value::Array(vec![json!({"a": 0}); 14_000]), 10);
    let arrays = result_with(&Value::Array(vec![json!([]); 98_000]), 10);
    let text: String = (0..(8 << 20) - 200_000)
        .map(|i| char::from(b'A' + ((i * 7919 + i / 26) % 26) as u8))
        .collect();
    let strings = result_with(&Value::String(text), 2);
    for (name, r) in [
        ("objects", objects),
        ("arrays", arrays),
        ("strings", strings),
    ] {
        let plain = serde_json::to_vec(&r).unwrap();
        assert!(plain.len() < 16 << 20, "{name}: {} bytes", plain.len());
        let mut r = r;
        r["deliveryExecutionId"] = json!(format!("https://centre-001.example/tao.rdf#{name}"));
        let plain = serde_json::to_vec(&r).unwrap();
        let bundle = hostile_result_bundle(&w, &format!("{name}.courier"), &r, &plain);
        let o = courier_measured(
            &format!("within-{name}"),
            &w.central,
            &["import", bundle.to_str().unwrap()],
        );
        assert_bounded(&o, &format!("result within the limits ({name})"));
        let out = ok(o);
        assert!(out.contains("1 results stored"), "{name}: {out}");
    }
    assert_eq!(count(&w.central, "central_results"), 3);
    assert_eq!(count(&w.central, "quarantine"), 0);
}

#[test]
fn a_result_over_the_value_limit_is_kept_aside_once_and_never_parsed() {
    let w = World::synced();
    let before = snapshot(&w.central, false);
    let r = result_with(&Value::Array(vec![json!([]); 110_000]), 10);
    let plain = serde_json::to_vec(&r).unwrap();
    let bundle = hostile_result_bundle(&w, "values.courier", &r, &plain);
    let o = courier_measured("values", &w.central, &["import", bundle.to_str().unwrap()]);
    assert_bounded(&o, "result over the value limit");
    partly(
        o,
        "holds more than 1000000 JSON values (settings.limits.values)",
    );
    assert_stored_once(&w.central, plain.len() as i64);
    assert_eq!(count(&w.central, "central_results"), 0);
    assert_eq!(count(&w.central, "variables"), 0);
    assert_ne!(
        before,
        snapshot(&w.central, false),
        "the quarantine holds it"
    );
}

#[test]
fn a_result_nested_too_deep_is_kept_aside() {
    let w = World::synced();
    let mut deep = json!([]);
    for _ in 0..40 {
        deep = json!([deep]);
    }
    let r = result_with(&deep, 1);
    let plain = serde_json::to_vec(&r).unwrap();
    let bundle = hostile_result_bundle(&w, "deep.courier", &r, &plain);
    partly(
        courier(&w.central, &["import", bundle.to_str().unwrap()]),
        "nested deeper than 32 levels (settings.limits.depth)",
    );
    assert_stored_once(&w.central, plain.len() as i64);
    assert_eq!(count(&w.central, "central_results"), 0);
}

#[test]
fn a_result_naming_its_variables_twice_is_kept_aside() {
    // Valid JSON to a reader that keeps the last of two members of one name; central stores
    // the variables as sent, and two lists of them are not one: kept aside, not a crash.
    let w = World::synced();
    let r = a_result();
    let text = serde_json::to_string(&r).unwrap();
    let plain = format!("{{\"variables\":[],{}", &text[1..]).into_bytes();
    let bundle = hostile_result_bundle(&w, "twice.courier", &r, &plain);
    partly(
        courier(&w.central, &["import", bundle.to_str().unwrap()]),
        "duplicate field `variables`",
    );
    assert_stored_once(&w.central, plain.len() as i64);
    assert_eq!(count(&w.central, "central_results"), 0);
}

#[test]
fn limits_are_read_from_courier_json() {
    let w = World::synced();
    set_limit(&w.central, "variables", 3);
    let f = Forger::new(&w.a);
    let r = a_result();
    let n = r["variables"].as_array().unwrap().len();
    assert!(n > 3, "the fixture result has {n} variables");
    let sealed = f.seal_result(&r, 1, false);
    let bundle = w.path("vars.courier");
    f.results_bundle(&bundle, &f.claim(1), &Forger::result_entries(&[sealed]));
    partly(
        courier(&w.central, &["import", bundle.to_str().unwrap()]),
        &format!("holds {n} variables, more than 3 (settings.limits.variables)"),
    );
    assert_eq!(count(&w.central, "central_results"), 0);
    assert_eq!(count(&w.central, "quarantine"), 1);
}

/// A log row of the fixture execution of centre A, numbered `id`.
fn log_row(id: u64) -> Value {
    json!({
        "id": id,
        "delivery_execution_id": a_result()["deliveryExecutionId"],
        "event_id": "ITEM_ANSWERED",
        "data": {"itemId": "https://central.example/tao.rdf#item-basic-Item-Q01", "timestamp": 1764144040u64 + id},
        "created_at": format!("0.{id:08} 1764144100"),
        "created_by": "https://central.example/tao.rdf#tt-001a",
    })
}

#[test]
fn a_log_batch_over_the_limit_is_refused_and_nothing_of_it_stored() {
    let w = World::synced();
    let f = Forger::new(&w.a);
    let exec = a_result()["deliveryExecutionId"]
        .as_str()
        .unwrap()
        .to_string();
    let logs: Vec<Value> = (0..10_001).map(log_row).collect();
    let (meta, sealed) = f.seal_logs("0123456789abcdef0123456789abcdef", &exec, &logs);
    let entries = vec![
        (
            "logs/000000.json".to_string(),
            serde_json::to_vec(&meta).unwrap(),
        ),
        ("logs/000000.pgp".to_string(), sealed),
    ];
    let bundle = w.path("logs.courier");
    f.results_bundle(&bundle, &f.claim(1), &entries);
    let o = courier_measured("logs", &w.central, &["import", bundle.to_str().unwrap()]);
    assert_bounded(&o, "log batch over the limit");
    let out = partly(
        o,
        "holds 10001 logs, more than 10000 (settings.limits.logs_per_batch)",
    );
    assert!(out.len() < 1000, "{} bytes of report", out.len());
    assert_eq!(count(&w.central, "central_logs"), 0);
    assert_eq!(count(&w.central, "waiting_logs"), 0);
    assert_eq!(
        count(&w.central, "acks_out"),
        0,
        "a refused batch is not acknowledged"
    );
}

#[test]
fn results_add_refuses_a_record_over_a_limit_and_stores_the_others() {
    let w = World::synced();
    let good = a_result();
    let mut long = a_result();
    long["deliveryExecutionId"] = json!("https://centre-001.example/tao.rdf#long");
    long["details"]["label"] = json!("L".repeat(9 << 20));
    let mut bad_schema = a_result();
    bad_schema["deliveryExecutionId"] = json!("https://centre-001.example/tao.rdf#schema");
    bad_schema["variables"] = json!("V".repeat(100_000));
    let file = w.path("results.json");
    let text = serde_json::to_vec(&json!([long, bad_schema, good])).unwrap();
    std::fs::write(&file, text).unwrap();
    let o = courier_measured(
        "results-add",
        &w.a,
        &["results", "add", "--json", file.to_str().unwrap()],
    );
    assert_bounded(&o, "results add");
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["added"], 1);
    let refused = report["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 2);
    assert_eq!(refused[0]["record"], "#1 (line 1)");
    assert_eq!(
        refused[0]["reason"],
        "record holds a string longer than 8388608 bytes (settings.limits.string_bytes)"
    );
    let reason = refused[1]["reason"].as_str().unwrap();
    assert!(reason.starts_with("at /variables: \"VVV"), "{reason}");
    assert!(reason.len() < 300, "a reason of {} bytes", reason.len());
    assert_eq!(count(&w.a, "results"), 1);
}

#[test]
fn logs_add_streams_a_large_file() {
    let w = World::synced();
    let file = w.path("logs.json");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        f.write_all(b"[").unwrap();
        for id in 0..50_000 {
            if id > 0 {
                f.write_all(b",\n").unwrap();
            }
            serde_json::to_writer(&mut f, &log_row(id)).unwrap();
        }
        f.write_all(b"]").unwrap();
    }
    let o = courier_measured("logs-add", &w.a, &["logs", "add", file.to_str().unwrap()]);
    assert_bounded(&o, "logs add of 50,000 rows");
    ok(o);
    assert_eq!(count(&w.a, "log_ids"), 50_000);
    let conn = rusqlite::Connection::open(w.a.join("store.sqlite")).unwrap();
    let (batches, largest): (i64, i64) = conn
        .query_row("SELECT count(*), max(count) FROM log_batches", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(
        batches >= 5 && largest <= 10_000,
        "{batches} batches, largest {largest}"
    );
    // The same file again: every log already held.
    let again = ok(courier(&w.a, &["logs", "add", file.to_str().unwrap()]));
    assert!(
        again.contains("0 added") && again.contains("50000 unchanged"),
        "{again}"
    );
    // Central takes every batch (results first, so the logs are stored, not kept waiting).
    ok(courier(
        &w.a,
        &[
            "results",
            "add",
            fixtures()
                .join("data/results/ORG-001-day1.jsonl")
                .to_str()
                .unwrap(),
        ],
    ));
    for f in w.export_up(&w.a, "up", &[]) {
        ok(courier(&w.central, &["import", f.to_str().unwrap()]));
    }
    assert_eq!(count(&w.central, "central_logs"), 50_000);
}

#[test]
fn load_refuses_an_entity_over_a_limit_and_loads_nothing() {
    let w = World::enrolled();
    set_limit(&w.central, "depth", 4);
    let before = snapshot(&w.central, false);
    let file = w.path("entities.jsonl");
    let fixture = std::fs::read_to_string(fixtures().join("data/central.jsonl")).unwrap();
    let good = fixture
        .lines()
        .find(|l| l.contains(r#""type":"test-taker""#))
        .unwrap();
    let mut deep: Value = serde_json::from_str(good).unwrap();
    deep["id"] = json!("https://central.example/tao.rdf#tt-deep");
    deep["properties"]["http://example.org/p"] = json!([[[["x"]]]]);
    std::fs::write(&file, format!("{good}\n{deep}\n")).unwrap();
    let err = refused(
        courier(&w.central, &["load", file.to_str().unwrap()]),
        1,
        "record line 2: record nested deeper than 4 levels (settings.limits.depth); nothing was loaded",
    );
    assert!(err.contains("entities.jsonl"), "{err}");
    assert_eq!(before, snapshot(&w.central, false));
}

#[test]
fn a_limit_of_zero_in_courier_json_is_refused_naming_the_file() {
    let w = World::new();
    set_limit(&w.central, "values", 0);
    refused(
        courier(&w.central, &["history"]),
        4,
        "courier.json: at /settings/limits/values",
    );
}

/// `load` writes each record into one transaction as it reads it: a bad record after good
/// ones (deliveries with packages among them) still leaves central exactly as it was, history
/// and package folder included, and the refusal names the file and line.
#[test]
fn a_bad_record_after_many_good_ones_leaves_central_unchanged() {
    let w = World::enrolled();
    let before = snapshot(&w.central, true);
    let packages = |home: &Path| -> Vec<String> {
        std::fs::read_dir(home.join("packages"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let packages_before = packages(&w.central);
    let fixture = std::fs::read_to_string(fixtures().join("data/central.jsonl")).unwrap();
    // Package paths made absolute, as the file is written elsewhere.
    let qti = fixtures().join("qti");
    let good = fixture.replace("\"../qti/", &format!("\"{}/", qti.display()));
    let lines = good.lines().count();
    let file = w.path("entities.jsonl");
    std::fs::write(
        &file,
        format!("{good}{{\"type\":\"test-taker\",\"id\":7}}\n"),
    )
    .unwrap();
    let err = refused(
        courier(&w.central, &["load", file.to_str().unwrap()]),
        1,
        &format!("record line {}", lines + 1),
    );
    assert!(
        err.contains("entities.jsonl") && err.contains("nothing was loaded"),
        "{err}"
    );
    assert_eq!(before, snapshot(&w.central, true));
    assert_eq!(packages_before, packages(&w.central));
}
