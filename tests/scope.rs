//! Results and logs must belong to the sender's scope, and an older copy never replaces a
//! newer one, at the centre and at central (issue 7; ../shared/THREATS.md, "A dishonest
//! insider": results for another organisation's delivery or test taker, or for ids that never
//! existed; an older copy of a result re-added or re-sent after a newer one).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::*;

const TAO: &str = "https://central.example/tao.rdf#";
const EXEC: &str = "https://centre-001.example/tao.rdf#i176414400000";

/// A central entity id (`del-basic`, `tt-001a`, ...).
fn id(name: &str) -> String {
    format!("{TAO}{name}")
}

/// The honest centre's execution id `…00N`.
fn exec(n: u32) -> String {
    format!("{EXEC}{n}")
}

fn fixture(rel: &str) -> PathBuf {
    fixtures().join("data").join(rel)
}

fn records(rel: &str) -> Vec<Value> {
    std::fs::read_to_string(fixture(rel))
        .expect("fixture")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn add(home: &Path, what: &str, rel: &str) {
    ok(courier(
        home,
        &[what, "add", fixture(rel).to_str().unwrap()],
    ));
}

fn import(home: &Path, file: &Path) -> std::process::Output {
    courier(home, &["import", file.to_str().unwrap()])
}

fn all_output(o: &std::process::Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

/// Central's `results export` or `logs export` as JSON Lines.
fn central_export(w: &World, what: &str, name: &str) -> Vec<Value> {
    let out = w.path(name);
    ok(courier(
        &w.central,
        &[
            what,
            "export",
            "--format",
            "jsonl",
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    std::fs::read_to_string(&out)
        .expect("export written")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// Central's results (or logs) of one organisation.
fn of_org(rows: &[Value], org: &str) -> Vec<Value> {
    rows.iter().filter(|r| r["orgId"] == org).cloned().collect()
}

/// Central's result for a centre's execution.
fn central_result(w: &World, org: &str, execution: &str) -> Option<Value> {
    central_export(w, "results", "one.jsonl")
        .into_iter()
        .find(|r| r["orgId"] == org && r["centerExecutionId"] == execution)
}

/// Rows of a query on a site's store, each column as text.
fn rows(home: &Path, sql: &str) -> Vec<Vec<String>> {
    let conn = rusqlite::Connection::open(home.join("store.sqlite")).expect("store opens");
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                Ok(match r.get::<_, rusqlite::types::Value>(i)? {
                    rusqlite::types::Value::Text(t) => t,
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    other => format!("{other:?}"),
                })
            })
            .collect()
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// A copy of `base` claiming another execution, delivery and test taker.
fn result_for(base: &Value, execution: &str, delivery: &str, taker: &str) -> Value {
    let mut r = base.clone();
    r["deliveryExecutionId"] = json!(execution);
    r["details"]["identifier"] = json!(execution);
    r["deliveryId"] = json!(delivery);
    r["details"]["test-taker"] = json!(taker);
    r
}

/// Two logs of an execution, with log ids from `first`.
fn logs_for(execution: &str, first: u64) -> Vec<Value> {
    (0..2)
        .map(|i| {
            json!({
                "id": first + i,
                "delivery_execution_id": execution,
                "event_id": "ITEM_ANSWERED",
                "data": {"note": "forged"},
                "created_at": format!("0.{i}0000000 1764144100"),
                "created_by": id("tt-002a"),
            })
        })
        .collect()
}

/// A payload entry pair for one log batch, numbered `k`.
fn log_entries(k: usize, sealed: &(Value, Vec<u8>)) -> Vec<(String, Vec<u8>)> {
    vec![
        (
            format!("logs/{k:06}.json"),
            serde_json::to_vec(&sealed.0).unwrap(),
        ),
        (format!("logs/{k:06}.pgp"), sealed.1.clone()),
    ]
}

/// A payload entry pair for one result, numbered `k`.
fn result_entries(k: usize, sealed: &(Value, Vec<u8>)) -> Vec<(String, Vec<u8>)> {
    vec![
        (
            format!("results/{k:06}.json"),
            serde_json::to_vec(&sealed.0).unwrap(),
        ),
        (format!("results/{k:06}.pgp"), sealed.1.clone()),
    ]
}

/// The dishonest operator also writes its forged results and log batches into its own
/// store, as `sent`, so that central's answers about them have rows to land on.
fn plant(home: &Path, results: &[&(Value, Vec<u8>)], batches: &[&(Value, Vec<u8>)]) {
    use courier::store::{HeldLogBatch, HeldResult, SyncStatus};
    let site = courier::site::Site::open(home, courier::site::Passphrase::none()).unwrap();
    let mut store = site.store().unwrap();
    let tx = store.begin().unwrap();
    for (meta, sealed) in results {
        let s = |k: &str| meta[k].as_str().unwrap().to_string();
        tx.put_result(
            &HeldResult {
                execution_id: s("execution_id"),
                delivery_id: s("delivery_id"),
                test_taker: s("test_taker"),
                state: s("state"),
                revision: meta["revision"].as_i64().unwrap(),
                content_sha256: s("content_sha256"),
                size: meta["size"].as_i64().unwrap(),
                sync_status: SyncStatus::Sent,
                reason: None,
                finishtime: None,
            },
            sealed,
        )
        .unwrap();
    }
    for (meta, sealed) in batches {
        let batch = HeldLogBatch {
            batch_id: meta["batch_id"].as_str().unwrap().into(),
            execution_id: meta["execution_id"].as_str().unwrap().into(),
            count: meta["count"].as_i64().unwrap(),
            size: meta["size"].as_i64().unwrap(),
        };
        tx.add_log_batch(&batch, sealed, &[]).unwrap();
    }
    tx.commit().unwrap();
}

/// Sync status and reason per execution id at a centre.
fn statuses(home: &Path) -> BTreeMap<String, (String, String)> {
    results_list(home)
        .into_iter()
        .map(|r| {
            (
                r["deliveryExecutionId"].as_str().unwrap().to_string(),
                (
                    r["syncStatus"].as_str().unwrap().to_string(),
                    r["reason"].as_str().unwrap_or_default().to_string(),
                ),
            )
        })
        .collect()
}

/// ORG-002, enrolled and dishonest, uploads results for ORG-001's delivery and test taker
/// (one with ORG-001's own execution id), for its own delivery with ORG-001's test taker,
/// for ids that never existed, and logs for them, beside one honest result of its own.
/// Central keeps every foreign result and its logs aside with the reason, exits 3, counts
/// them in the report; ORG-001's results and logs are exactly as before; the honest
/// result is stored; logs whose result never came keep waiting, never shown. After the
/// next data bundle the hostile centre sees each result `out_of_scope` with its reason.
#[test]
fn a_hostile_centre_cannot_file_results_outside_its_scope() {
    let w = World::synced();
    add(&w.a, "results", "results/ORG-001-day1.jsonl");
    add(&w.a, "logs", "logs/ORG-001-day1.jsonl");
    for f in w.export_up(&w.a, "up-a", &[]) {
        ok(import(&w.central, &f));
    }
    let honest_results = of_org(&central_export(&w, "results", "r0.jsonl"), "ORG-001");
    let honest_logs = of_org(&central_export(&w, "logs", "l0.jsonl"), "ORG-001");
    assert_eq!(honest_results.len(), 4);
    assert_eq!(honest_logs.len(), 12);

    let forger = Forger::new(&w.b);
    let base = &records("results/ORG-001-day1.jsonl")[0];
    let b_exec = |n: u32| format!("https://centre-002.example/tao.rdf#x{n}");
    // ORG-001's delivery and test taker, under ORG-001's own execution id.
    let theirs = result_for(base, &exec(1), &id("del-basic"), &id("tt-001a"));
    // A test taker ORG-002 holds (tt-shared), for a delivery only ORG-001 was sent.
    let shared = result_for(base, &b_exec(2), &id("del-basic"), &id("tt-shared"));
    // ORG-002's own delivery with ORG-001's test taker.
    let wrong_taker = result_for(base, &b_exec(3), &id("del-label"), &id("tt-001c"));
    // Ids that never existed.
    let ghost = result_for(base, &b_exec(4), &id("del-ghost"), &id("tt-ghost"));
    // In scope: ORG-002's delivery with a test taker eligible for it there.
    let own = result_for(base, &b_exec(5), &id("del-sumscore"), &id("tt-002a"));
    let sealed: Vec<(Value, Vec<u8>)> = [&theirs, &shared, &wrong_taker, &ghost, &own]
        .iter()
        .map(|r| forger.seal_result(r, 1, false))
        .collect();
    let batch = |exec: &str, first: u64| {
        forger.seal_logs(&courier::bundle::new_id(), exec, &logs_for(exec, first))
    };
    // Logs of the ghost travel before their result, those of `theirs` after it; logs of
    // an execution whose result never comes wait.
    let ghost_logs = batch(&b_exec(4), 9000);
    let theirs_logs = batch(&exec(1), 9010);
    let own_logs = batch(&b_exec(5), 9020);
    let orphan_logs = batch(&b_exec(6), 9030);
    let mut entries = log_entries(0, &ghost_logs);
    for (k, s) in sealed.iter().enumerate() {
        entries.extend(result_entries(k, s));
    }
    entries.extend(log_entries(1, &theirs_logs));
    entries.extend(log_entries(2, &own_logs));
    entries.extend(log_entries(3, &orphan_logs));
    let file = w.path("hostile/ORG-002-results.courier");
    forger.results_bundle(&file, &forger.claim(1), &entries);

    let o = import(&w.central, &file);
    let report = all_output(&o);
    assert_eq!(o.status.code(), Some(3), "{report}");
    assert!(report.contains("4 results out of scope"), "{report}");
    assert!(report.contains("2 log batches kept aside"), "{report}");
    assert!(report.contains("1 results stored"), "{report}");

    // ORG-001's results and logs are untouched; only the in-scope result of ORG-002 is in.
    let results = central_export(&w, "results", "r1.jsonl");
    assert_eq!(of_org(&results, "ORG-001"), honest_results);
    let b_rows = of_org(&results, "ORG-002");
    assert_eq!(b_rows.len(), 1, "{b_rows:?}");
    assert_eq!(b_rows[0]["centerExecutionId"], b_exec(5).as_str());
    let logs = central_export(&w, "logs", "l1.jsonl");
    assert_eq!(of_org(&logs, "ORG-001"), honest_logs);
    let b_logs = of_org(&logs, "ORG-002");
    assert_eq!(
        b_logs.len(),
        2,
        "only the in-scope result's logs: {b_logs:?}"
    );
    assert!(b_logs
        .iter()
        .all(|l| l["centerExecutionId"] == b_exec(5).as_str()));

    // The foreign results are kept aside, each with its reason.
    let q: BTreeMap<String, (String, String)> = rows(
        &w.central,
        "SELECT execution_id, org_id, reason FROM quarantine",
    )
    .into_iter()
    .map(|r| (r[0].clone(), (r[1].clone(), r[2].clone())))
    .collect();
    assert_eq!(q.len(), 4, "{q:?}");
    let never_sent = |d: &str| format!("delivery {} was never sent to centre ORG-002", id(d));
    for (exec_id, want) in [
        (exec(1), never_sent("del-basic")),
        (b_exec(2), never_sent("del-basic")),
        (
            b_exec(3),
            format!(
                "test taker {} was never sent to centre ORG-002 as eligible for delivery {}",
                id("tt-001c"),
                id("del-label")
            ),
        ),
        (b_exec(4), never_sent("del-ghost")),
    ] {
        let (org, reason) = &q[&exec_id];
        assert_eq!(org, "ORG-002");
        assert!(reason.contains(&want), "{exec_id}: {reason}");
        assert!(report.contains(&exec_id), "the report names {exec_id}");
    }
    // Their logs too; the orphan batch waits, and is not among central's logs.
    let ql: BTreeMap<String, String> = rows(
        &w.central,
        "SELECT execution_id, reason FROM quarantined_logs WHERE org_id = 'ORG-002'",
    )
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone()))
    .collect();
    assert_eq!(
        ql.keys().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from([exec(1), b_exec(4)])
    );
    assert!(ql[&b_exec(4)].contains("its result was kept aside"));
    assert!(ql[&b_exec(4)].contains(&never_sent("del-ghost")));
    assert_eq!(
        rows(&w.central, "SELECT org_id, execution_id FROM waiting_logs"),
        vec![vec!["ORG-002".to_string(), b_exec(6)]]
    );

    // The hostile centre hears why, in the next data bundle.
    plant(
        &w.b,
        &sealed.iter().collect::<Vec<_>>(),
        &[&ghost_logs, &theirs_logs, &own_logs, &orphan_logs],
    );
    for f in w.export_down("ORG-002", "down-b-2") {
        ok(import(&w.b, &f));
    }
    let st = statuses(&w.b);
    for n in [2, 3, 4] {
        let (status, reason) = &st[&b_exec(n)];
        assert_eq!(status, "out_of_scope", "{}", b_exec(n));
        assert!(reason.contains("never sent to centre ORG-002"), "{reason}");
    }
    assert_eq!(st[&exec(1)].0, "out_of_scope");
    assert_eq!(st[&b_exec(5)].0, "synchronized");
    let text = ok(courier(&w.b, &["results", "list"]));
    assert!(
        text.contains(&never_sent("del-ghost")),
        "the reason is shown: {text}"
    );
    let batches: BTreeMap<String, String> =
        rows(&w.b, "SELECT execution_id, sync_status FROM log_batches")
            .into_iter()
            .map(|r| (r[0].clone(), r[1].clone()))
            .collect();
    assert_eq!(batches[&b_exec(4)], "kept_aside");
    assert_eq!(batches[&exec(1)], "kept_aside");
    assert_eq!(batches[&b_exec(5)], "synchronized");
    assert!(
        !["synchronized", "kept_aside"].contains(&batches[&b_exec(6)].as_str()),
        "still waiting for its result, so sent again: {batches:?}"
    );
}

/// A delivery that left a centre's scope after the exam still counts: ORG-001's results
/// for `del-basic` are accepted after central removed the eligibility, the centre applied
/// that change, and central forgot the scope list that had sent it.
#[test]
fn a_delivery_that_left_the_scope_after_the_exam_still_counts() {
    let w = World::synced();
    // One result per file, so that the acknowledgement in the first file is applied
    // before the results of the others are judged.
    let config = w.a.join("courier.json");
    let mut c: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    c["settings"]["results_per_file"] = json!(1);
    std::fs::write(&config, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    add(&w.a, "results", "results/ORG-001-day1.jsonl");

    ok(courier(&w.central, &["remove", &id("elig-001-basic")]));
    for f in w.export_down("ORG-001", "down-a-2") {
        ok(import(&w.a, &f));
    }
    assert!(
        list(&w.a, &["delivery"])
            .iter()
            .all(|e| e["id"] != id("del-basic").as_str()),
        "del-basic left the centre's scope"
    );

    let files = w.export_up(&w.a, "up-a", &[]);
    assert_eq!(files.len(), 4, "one result per file");
    ok(import(&w.central, &files[0]));
    let remembered = |seq: i64| {
        rows(
            &w.central,
            &format!("SELECT COUNT(*) FROM export_scope WHERE org_id = 'ORG-001' AND seq = {seq}"),
        )[0][0]
            .clone()
    };
    assert_eq!(remembered(1), "0", "the first scope list is forgotten");
    for f in &files[1..] {
        let o = import(&w.central, f);
        assert_eq!(o.status.code(), Some(0), "{}", all_output(&o));
    }
    let results = of_org(&central_export(&w, "results", "r.jsonl"), "ORG-001");
    assert_eq!(results.len(), 4);
    assert_eq!(
        results
            .iter()
            .filter(|r| r["deliveryId"] == id("del-basic").as_str())
            .count(),
        3
    );
    assert_eq!(count(&w.central, "quarantine"), 0);
}

/// At a centre, yesterday's results file added again after a result was reopened and
/// finished again is reported stale and changes nothing; central then holds the reopened
/// copy. A copy with the same finish time and other content is a conflict (exit 3), and the
/// held copy stays.
#[test]
fn yesterdays_results_added_again_never_replace_the_reopened_copy() {
    let w = World::synced();
    add(&w.a, "results", "results/ORG-001-day1.jsonl");
    add(&w.a, "results", "results/ORG-001-reopened.jsonl");
    let before = results_list(&w.a);
    let day1 = fixture("results/ORG-001-day1.jsonl");
    let out = ok(courier(
        &w.a,
        &["results", "add", "--json", day1.to_str().unwrap()],
    ));
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["added"], 0);
    assert_eq!(r["replaced"], 0, "{r}");
    assert_eq!(r["unchanged"], 4);
    let stale = r["stale"].as_array().unwrap();
    assert_eq!(stale.len(), 1, "{r}");
    let reason = stale[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&exec(2)) && reason.contains("older"),
        "{reason}"
    );
    assert_eq!(results_list(&w.a), before, "nothing changed");
    let text = ok(courier(&w.a, &["results", "add", day1.to_str().unwrap()]));
    assert!(text.contains("1 stale"), "{text}");

    // Same finish time, other content: a conflict; the held copy stays.
    let mut other = records("results/ORG-001-reopened.jsonl")[0].clone();
    other["variables"][0]["data"]["candidateResponse"] = json!("b3RoZXI=");
    let file = w.path("other.jsonl");
    std::fs::write(&file, format!("{other}\n")).unwrap();
    let err = refused(
        courier(&w.a, &["results", "add", file.to_str().unwrap()]),
        3,
        "conflict",
    );
    assert!(err.contains(&exec(2)), "{err}");
    assert_eq!(results_list(&w.a), before, "nothing changed");

    for f in w.export_up(&w.a, "up-a", &[]) {
        ok(import(&w.central, &f));
    }
    let reopened = &records("results/ORG-001-reopened.jsonl")[0];
    let held = central_result(&w, "ORG-001", &exec(2)).expect("at central");
    assert_eq!(held["details"], reopened["details"]);
    assert_eq!(held["variables"], reopened["variables"]);
}

/// At central, an older copy sent as a later revision (re-sync) by the centre's own key is
/// stale: ignored, exit 0, the newer copy kept; one finished at the same instant with other
/// content is kept aside (exit 3). Central's results stay exactly as they were.
#[test]
fn an_older_copy_sent_as_a_later_revision_is_stale_at_central() {
    let w = World::synced();
    add(&w.a, "results", "results/ORG-001-day1.jsonl");
    add(&w.a, "results", "results/ORG-001-reopened.jsonl");
    for f in w.export_up(&w.a, "up-a", &[]) {
        ok(import(&w.central, &f));
    }
    let reopened = &records("results/ORG-001-reopened.jsonl")[0];
    let before = central_export(&w, "results", "before.jsonl");
    let held = central_result(&w, "ORG-001", &exec(2)).unwrap();
    assert_eq!(held["details"], reopened["details"]);

    let forger = Forger::new(&w.a);
    let yesterday = records("results/ORG-001-day1.jsonl")
        .into_iter()
        .find(|r| r["deliveryExecutionId"] == exec(2).as_str())
        .unwrap();
    let file = w.path("stale/ORG-001-results.courier");
    let sealed = forger.seal_result(&yesterday, 3, true);
    forger.results_bundle(&file, &forger.claim(100), &result_entries(0, &sealed));
    let o = import(&w.central, &file);
    assert_eq!(o.status.code(), Some(0), "{}", all_output(&o));
    assert!(all_output(&o).contains("1 stale"), "{}", all_output(&o));
    assert_eq!(central_export(&w, "results", "after-1.jsonl"), before);

    let mut other = reopened.clone();
    other["variables"][0]["data"]["candidateResponse"] = json!("b3RoZXI=");
    let file = w.path("same-time/ORG-001-results.courier");
    let sealed = forger.seal_result(&other, 4, true);
    forger.results_bundle(&file, &forger.claim(101), &result_entries(0, &sealed));
    let o = import(&w.central, &file);
    assert_eq!(o.status.code(), Some(3), "{}", all_output(&o));
    assert!(
        all_output(&o).contains("finished at the same time"),
        "{}",
        all_output(&o)
    );
    assert_eq!(central_export(&w, "results", "after-2.jsonl"), before);
    let q = rows(&w.central, "SELECT execution_id, revision FROM quarantine");
    assert_eq!(q, vec![vec![exec(2), "4".to_string()]]);
}

/// A waiting log batch whose stored copy cannot be read back is never acknowledged as
/// stored: central keeps it aside with the reason and exits 3, the centre sends it again
/// with its next export, and then every log is at central.
#[test]
fn a_waiting_log_batch_that_cannot_be_read_back_is_kept_aside_and_sent_again() {
    let w = World::synced();
    add(&w.a, "results", "results/ORG-001-day1.jsonl");
    add(&w.a, "logs", "logs/ORG-001-day1.jsonl");
    let files = w.export_up(&w.a, "up-1", &["--max-file-size", "32K"]);
    let counts = |f: &Path| -> Value {
        let i: Value = serde_json::from_str(&ok(courier(
            &w.central,
            &["inspect", "--json", f.to_str().unwrap()],
        )))
        .unwrap();
        i["counts"].clone()
    };
    let (logs_only, rest): (Vec<PathBuf>, Vec<PathBuf>) = files.iter().cloned().partition(|f| {
        let c = counts(f);
        c["logs"].as_u64().unwrap_or(0) > 0 && c["results"].as_u64().unwrap_or(0) == 0
    });
    assert!(!logs_only.is_empty() && !rest.is_empty(), "{files:?}");
    for f in &logs_only {
        ok(import(&w.central, f));
    }
    let waiting = count(&w.central, "waiting_logs");
    assert!(waiting > 0);
    // The store is damaged where the waiting batches are kept.
    let conn = rusqlite::Connection::open(w.central.join("store.sqlite")).unwrap();
    conn.execute("UPDATE waiting_logs SET content = '[{\"id\": 1000,'", [])
        .unwrap();
    drop(conn);

    let mut worst = 0;
    let mut report = String::new();
    for f in &rest {
        let o = import(&w.central, f);
        worst = worst.max(o.status.code().unwrap());
        report.push_str(&all_output(&o));
    }
    assert_eq!(worst, 3, "{report}");
    assert!(report.contains("could not be read back"), "{report}");
    assert_eq!(count(&w.central, "quarantined_logs"), waiting);
    let early = 12 - central_export(&w, "logs", "l1.jsonl").len();
    assert!(
        early > 0,
        "the unreadable batches are not among central's logs"
    );

    // Not acknowledged: the centre still holds them as sent, learns that central applied
    // their file without storing them, and sends them again (at once with --resend; else
    // once settings.resend_after_hours passed).
    for f in w.export_down("ORG-001", "down-2") {
        ok(import(&w.a, &f));
    }
    let unsent = rows(
        &w.a,
        "SELECT COUNT(*) FROM log_batches WHERE sync_status != 'synchronized'",
    );
    assert_eq!(unsent[0][0], waiting.to_string());
    for f in w.export_up(&w.a, "up-2", &["--resend"]) {
        ok(import(&w.central, &f));
    }
    assert_eq!(central_export(&w, "logs", "l2.jsonl").len(), 12);
    for f in w.export_down("ORG-001", "down-3") {
        ok(import(&w.a, &f));
    }
    assert_eq!(
        rows(
            &w.a,
            "SELECT COUNT(*) FROM log_batches WHERE sync_status != 'synchronized'"
        )[0][0],
        "0"
    );
}

/// A central store from before the scope rule learns, when it is migrated, the pairs its
/// remembered scope lists sent: exactly those the export recorded.
#[test]
fn a_store_from_before_the_scope_rule_is_backfilled_from_the_scope_lists_it_remembers() {
    let w = World::synced();
    let pairs = || {
        rows(
            &w.central,
            "SELECT org_id, delivery_id, test_taker FROM sent_pairs ORDER BY 1, 2, 3",
        )
    };
    let recorded = pairs();
    let eligible = |org: &str, d: &str, takers: &[&str]| -> Vec<Vec<String>> {
        takers
            .iter()
            .map(|t| vec![org.to_string(), id(d), id(t)])
            .collect()
    };
    let mut want = [
        eligible("ORG-001", "del-basic", &["tt-001a", "tt-001b", "tt-shared"]),
        eligible("ORG-001", "del-label", &["tt-001b", "tt-001c"]),
        eligible("ORG-002", "del-label", &["tt-002b", "tt-002c"]),
        eligible(
            "ORG-002",
            "del-sumscore",
            &["tt-002a", "tt-002b", "tt-shared"],
        ),
    ]
    .concat();
    want.sort();
    assert_eq!(recorded, want);

    // Back to schema 1, as a store written by the previous courier (the later migrations
    // undone too; the per-sender rebuild of `bundles` applies again as it is).
    let conn = rusqlite::Connection::open(w.central.join("store.sqlite")).unwrap();
    conn.execute_batch(
        "DROP TABLE sent_pairs; DROP TABLE quarantined_logs;
         ALTER TABLE results DROP COLUMN finishtime;
         ALTER TABLE centers DROP COLUMN expected_fingerprint;
         ALTER TABLE centers DROP COLUMN revoked_at; ALTER TABLE centers DROP COLUMN revoked_reason;
         DROP TABLE rollovers_out; ALTER TABLE peers DROP COLUMN replaced_by;
         ALTER TABLE peers DROP COLUMN retired_from_seq; ALTER TABLE peers DROP COLUMN retired_at;
         ALTER TABLE peers DROP COLUMN retired_reason;
         ALTER TABLE results DROP COLUMN sent_seq; ALTER TABLE results DROP COLUMN sent_at;
         ALTER TABLE log_batches DROP COLUMN sent_seq; ALTER TABLE log_batches DROP COLUMN sent_at;
         DROP TABLE history_prunes;
         DROP TABLE own_keys;
         ALTER TABLE bundles DROP COLUMN payload_size;
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);
    ok(courier(&w.central, &["center", "list"]));
    assert_eq!(pairs(), recorded);
}
