//! Test centre → central: results and delivery logs over bundle files, acknowledgements,
//! re-syncs, conflicts, logs that arrive before their result, missing files, and results at
//! rest (fixtures/data/README.md, `results/` and `logs/`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

const EXEC: &str = "https://centre-001.example/tao.rdf#i176414400000";
const FINISHED: &str =
    "http://www.tao.lu/Ontologies/TAODelivery.rdf#DeliveryExecutionStatusFinished";

/// The centre's execution id `…00N`.
fn exec(n: u32) -> String {
    format!("{EXEC}{n}")
}

fn fixture(rel: &str) -> PathBuf {
    fixtures().join("data").join(rel)
}

/// Records of a fixture JSON Lines file.
fn records(rel: &str) -> Vec<Value> {
    std::fs::read_to_string(fixture(rel))
        .expect("fixture")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// Central with its data loaded, centre A (ORG-001) enrolled and holding its first bundle.
fn setup() -> World {
    let w = World::enrolled();
    w.load_fixtures();
    let files = w.export_down("ORG-001", "down-0");
    assert_eq!(files.len(), 1);
    import(&w.a, &files[0]);
    w
}

fn import(home: &Path, file: &Path) -> String {
    ok(courier(home, &["import", file.to_str().unwrap()]))
}

fn import_all(home: &Path, files: &[PathBuf]) {
    for f in files {
        import(home, f);
    }
}

/// `results add` / `logs add` of a fixture file at a centre, expecting success.
fn add(home: &Path, what: &str, rel: &str) {
    ok(courier(
        home,
        &[what, "add", fixture(rel).to_str().unwrap()],
    ));
}

/// Central exports the next data bundle for ORG-001; the centres given import it.
fn ack_down(w: &World, folder: &str, centers: &[&Path]) {
    let files = w.export_down("ORG-001", folder);
    assert_eq!(
        files.len(),
        1,
        "a data bundle carrying the acknowledgements"
    );
    for c in centers {
        import(c, &files[0]);
    }
}

/// Sync status per execution id at a centre.
fn statuses(home: &Path) -> BTreeMap<String, String> {
    results_list(home)
        .into_iter()
        .map(|r| {
            (
                r["deliveryExecutionId"].as_str().unwrap().to_string(),
                r["syncStatus"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Parse a JSON Lines file.
fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("export written")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// Central's `results export` or `logs export` (`what`), as JSON Lines.
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
    jsonl(&out)
}

/// Central's `results export --format jsonl`.
fn central_results(w: &World, name: &str) -> Vec<Value> {
    central_export(w, "results", name)
}

/// Central's `logs export --format jsonl`.
fn central_logs(w: &World, name: &str) -> Vec<Value> {
    central_export(w, "logs", name)
}

fn inspect(home: &Path, file: &Path) -> Value {
    serde_json::from_str(&ok(courier(
        home,
        &["inspect", "--json", file.to_str().unwrap()],
    )))
    .expect("inspect json")
}

fn counted(i: &Value, what: &str) -> u64 {
    i["counts"].get(what).and_then(Value::as_u64).unwrap_or(0)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn central_id(execution: &str) -> String {
    crate::common::central_execution_id("ORG-001", execution)
}

/// The computation above, pinned to values worked out once outside courier
/// (`printf 'ORG-001\n<execution id>' | sha256sum`).
#[test]
fn central_execution_ids_are_the_documented_digest() {
    assert_eq!(
        central_id(&exec(1)),
        "urn:courier:execution:9b9aa91030c6cab6fdd1ed8a96d7da62"
    );
    assert_eq!(
        central_id(&exec(4)),
        "urn:courier:execution:d80035793c45f6348b7f93cae508688a"
    );
}

fn log_key(v: &Value) -> String {
    match &v["id"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The scripted exam day: 5 results (one Active, never sent) and 12 logs go out in several
/// files of at most 32K, central imports them reversed and some twice, the reopened result
/// and a late log follow; after central's acknowledgement every Finished result is
/// synchronized, and central's exports hold each result once (the latest version), variable
/// for variable, one CSV row per variable, and each log once against central's execution id.
#[test]
fn scripted_exam_day() {
    let w = setup();
    add(&w.a, "results", "results/ORG-001-day1.jsonl");
    add(&w.a, "logs", "logs/ORG-001-day1.jsonl");
    let listed = results_list(&w.a);
    assert_eq!(listed.len(), 5, "5 results held");
    assert!(listed.iter().all(|r| r["syncStatus"] == "pending"));

    let files = w.export_up(&w.a, "up-1", &["--max-file-size", "32K"]);
    assert!(files.len() >= 2, "several files: {files:?}");
    let (mut n_results, mut n_logs) = (0, 0);
    for f in &files {
        let size = std::fs::metadata(f).unwrap().len();
        assert!(size <= 32768, "{} is {size} bytes", f.display());
        let i = inspect(&w.central, f);
        n_results += counted(&i, "results");
        n_logs += counted(&i, "logs");
    }
    assert_eq!(
        (n_results, n_logs),
        (4, 12),
        "the Active result never travels"
    );
    let st = statuses(&w.a);
    assert_eq!(st[&exec(5)], "pending", "the Active result is not sent");

    // Reverse order, then some twice.
    for f in files.iter().rev() {
        import(&w.central, f);
    }
    let before = snapshot(&w.central, true);
    let again = ok(courier(
        &w.central,
        &[
            "import",
            files[0].to_str().unwrap(),
            files[files.len() - 1].to_str().unwrap(),
        ],
    ));
    assert_eq!(again.matches(": already-applied: ").count(), 2, "{again}");
    assert_eq!(
        snapshot(&w.central, true),
        before,
        "a replay changes nothing"
    );

    // The reopened result and the late log go in a second export.
    add(&w.a, "results", "results/ORG-001-reopened.jsonl");
    add(&w.a, "logs", "logs/ORG-001-late.jsonl");
    let second = w.export_up(&w.a, "up-2", &["--max-file-size", "32K"]);
    let (mut r2, mut l2) = (0, 0);
    for f in &second {
        let i = inspect(&w.central, f);
        r2 += counted(&i, "results");
        l2 += counted(&i, "logs");
    }
    // What central has not acknowledged yet travels again; central must not duplicate it.
    assert!(l2 >= 1, "the late log travels");
    assert!(r2 >= 1, "the reopened result travels");
    for f in second.iter().rev() {
        import(&w.central, f);
    }
    ack_down(&w, "down-1", &[&w.a]);

    let (mut finished, mut active) = (0, 0);
    for r in results_list(&w.a) {
        let id = r["deliveryExecutionId"].as_str().unwrap();
        if r["state"] == FINISHED {
            assert_eq!(r["syncStatus"], "synchronized", "{id}");
            finished += 1;
        } else {
            assert_eq!(r["syncStatus"], "pending", "{id}: Active, never sent");
            active += 1;
        }
    }
    assert_eq!(
        (finished, active),
        (4, 1),
        "every result of the day was looked at"
    );

    // Results at central: each once, the latest version, variable for variable.
    let mut ingested: BTreeMap<String, Value> = BTreeMap::new();
    for r in records("results/ORG-001-day1.jsonl")
        .into_iter()
        .chain(records("results/ORG-001-reopened.jsonl"))
    {
        if r["details"]["state"] == FINISHED {
            ingested.insert(r["deliveryExecutionId"].as_str().unwrap().to_string(), r);
        }
    }
    assert_eq!(ingested.len(), 4);
    let rows = central_results(&w, "results.jsonl");
    assert_eq!(rows.len(), 4, "each result exactly once");
    let mut seen = BTreeSet::new();
    for row in &rows {
        let center_id = row["centerExecutionId"]
            .as_str()
            .expect("centerExecutionId");
        assert!(seen.insert(center_id.to_string()), "{center_id} twice");
        assert_eq!(row["orgId"], "ORG-001");
        assert_eq!(row["deliveryExecutionId"], central_id(center_id).as_str());
        let want = &ingested[center_id];
        assert_eq!(row["deliveryId"], want["deliveryId"], "{center_id}");
        assert_eq!(row["details"], want["details"], "{center_id}");
        assert_eq!(
            row["variables"], want["variables"],
            "{center_id}: variables"
        );
    }
    assert_eq!(
        rows.iter()
            .find(|r| r["centerExecutionId"] == exec(2).as_str())
            .unwrap()["variables"]
            .as_array()
            .unwrap()
            .len(),
        10,
        "the reopened result replaced, not added to"
    );

    // CSV: one row per variable.
    let csv = w.path("results.csv");
    ok(courier(
        &w.central,
        &[
            "results",
            "export",
            "--format",
            "csv",
            "--out",
            csv.to_str().unwrap(),
        ],
    ));
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("central_execution_id,"));
    let mut per_exec: BTreeMap<String, usize> = BTreeMap::new();
    for l in lines {
        let center = l.split(',').nth(1).expect("second column").to_string();
        *per_exec.entry(center).or_default() += 1;
    }
    let want: BTreeMap<String, usize> = (1..=4).map(|n| (exec(n), 10)).collect();
    assert_eq!(per_exec, want, "10 variables per result, 40 rows");

    // Logs: each once, the late one included, against central's execution id.
    let originals: BTreeMap<String, Value> = records("logs/ORG-001-day1.jsonl")
        .into_iter()
        .chain(records("logs/ORG-001-late.jsonl"))
        .map(|l| (log_key(&l), l))
        .collect();
    assert_eq!(originals.len(), 13);
    let logs = central_logs(&w, "logs.jsonl");
    assert_eq!(logs.len(), 13, "each log exactly once");
    let mut seen = BTreeSet::new();
    for l in &logs {
        let id = log_key(l);
        assert!(seen.insert(id.clone()), "log {id} twice");
        let want = &originals[&id];
        let center_exec = want["delivery_execution_id"].as_str().unwrap();
        assert_eq!(l["centerExecutionId"], center_exec, "log {id}");
        assert_eq!(l["delivery_execution_id"], central_id(center_exec).as_str());
        assert_eq!(l["orgId"], "ORG-001");
        for k in ["event_id", "data", "created_at", "created_by"] {
            assert_eq!(l[k], want[k], "log {id}: {k}");
        }
    }
    assert!(seen.contains("2000"), "the late log reached central");
}

/// After export a result is `sent`; a data bundle that does not carry central's
/// acknowledgement leaves it `sent`; only the acknowledgement makes it `synchronized`.
#[test]
fn result_is_synchronized_only_after_central_acknowledged_it() {
    let w = setup();
    add(&w.a, "results", "results/ORG-001-day1.jsonl");
    let files = w.export_up(&w.a, "up-1", &[]);
    let finished: Vec<String> = (1..=4).map(exec).collect();
    let st = statuses(&w.a);
    for id in &finished {
        assert_eq!(st[id], "sent", "{id} after export");
    }
    // A data bundle written before central saw the results carries no acknowledgement.
    ack_down(&w, "down-1", &[&w.a]);
    let st = statuses(&w.a);
    for id in &finished {
        assert_eq!(st[id], "sent", "{id}: central has not acknowledged it yet");
    }
    import_all(&w.central, &files);
    ack_down(&w, "down-2", &[&w.a]);
    let st = statuses(&w.a);
    for id in &finished {
        assert_eq!(st[id], "synchronized", "{id} after the acknowledgement");
    }
    assert_eq!(st[&exec(5)], "pending");
}

/// A result re-sent unchanged (`--resend-all` before the acknowledgement came back) is a
/// no-op at central: no second execution, no extra variables, the same export.
#[test]
fn resent_identical_result_is_a_no_op_at_central() {
    let w = setup();
    add(&w.a, "results", "results/ORG-001-day1.jsonl");
    let first = w.export_up(&w.a, "up-1", &[]);
    import_all(&w.central, &first);
    assert_eq!(count(&w.central, "central_results"), 4);
    assert_eq!(count(&w.central, "variables"), 40);
    let before = central_results(&w, "before.jsonl");

    // Without --resend-all nothing is sent twice.
    assert!(w.export_up(&w.a, "up-2a", &[]).is_empty());
    let second = w.export_up(&w.a, "up-2", &["--resend-all"]);
    let resent: u64 = second
        .iter()
        .map(|f| counted(&inspect(&w.central, f), "results"))
        .sum();
    assert_eq!(resent, 4, "unacknowledged results are sent again");
    for f in &second {
        let out = import(&w.central, f);
        assert!(out.contains("unchanged"), "{out}");
    }
    assert_eq!(count(&w.central, "central_results"), 4);
    assert_eq!(count(&w.central, "variables"), 40, "no duplicate variables");
    let after = central_results(&w, "after.jsonl");
    assert_eq!(after, before);
}

/// Two centre machines claim the same execution with different content, neither marked as
/// a re-sync: the second import exits 3 and reports the quarantine, central keeps the first
/// copy and holds the other in `quarantine`; the next data bundle marks the second
/// machine's result `conflict` with a reason, and the first machine's result still ends up
/// synchronized.
#[test]
fn same_execution_with_other_content_is_quarantined() {
    let w = setup();
    let twin = w.path("center-a-twin");
    copy_dir(&w.a, &twin);
    add(&w.a, "results", "results/ORG-001-day1.jsonl");
    add(&twin, "results", "results/ORG-001-reopened.jsonl");
    let a_rows = results_list(&w.a);
    let twin_rows = results_list(&twin);
    let rev = |rows: &[Value]| {
        rows.iter()
            .find(|r| r["deliveryExecutionId"] == exec(2).as_str())
            .unwrap()["revision"]
            .clone()
    };
    assert_eq!(rev(&a_rows), 1);
    assert_eq!(rev(&twin_rows), 1);

    let a_files = w.export_up(&w.a, "up-a", &[]);
    let twin_files = w.export_up(&twin, "up-twin", &[]);
    import_all(&w.central, &a_files);
    let o = courier(&w.central, &["import", twin_files[0].to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    let report = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        report.contains("quarantined") || report.contains("conflict"),
        "{report}"
    );
    assert!(report.contains(&exec(2)), "names the execution: {report}");

    // Central keeps the first copy.
    let day1 = records("results/ORG-001-day1.jsonl");
    let first = day1
        .iter()
        .find(|r| r["deliveryExecutionId"] == exec(2).as_str())
        .unwrap();
    let rows = central_results(&w, "results.jsonl");
    assert_eq!(rows.len(), 4);
    let kept = rows
        .iter()
        .find(|r| r["centerExecutionId"] == exec(2).as_str())
        .unwrap();
    assert_eq!(kept["details"], first["details"]);
    assert_eq!(kept["variables"], first["variables"]);
    assert_eq!(count(&w.central, "variables"), 40);

    // The other copy is in quarantine.
    let reopened = &records("results/ORG-001-reopened.jsonl")[0];
    let conn = rusqlite::Connection::open(w.central.join("store.sqlite")).unwrap();
    let q: Vec<(String, String, String)> = conn
        .prepare("SELECT execution_id, content, reason FROM quarantine")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    drop(conn);
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].0, exec(2));
    let content: Value = serde_json::from_str(&q[0].1).expect("quarantined content");
    assert_eq!(&content, reopened, "the twin's copy is kept aside whole");
    assert!(!q[0].2.is_empty());

    // The next data bundle tells the twin.
    ack_down(&w, "down-1", &[&twin, &w.a]);
    let r = results_list(&twin)
        .into_iter()
        .find(|r| r["deliveryExecutionId"] == exec(2).as_str())
        .unwrap();
    assert_eq!(r["syncStatus"], "conflict", "{r}");
    assert!(
        r["reason"].as_str().is_some_and(|s| !s.is_empty()),
        "a reason is given: {r}"
    );
    // The first machine's copy, the one central kept, is not left waiting forever: central
    // applied its file and gave no answer about it (the twin's answer took its place), so
    // it is sent again (at once with --resend; else once resend_after_hours passed).
    let more = w.export_up(&w.a, "up-a-2", &["--resend"]);
    import_all(&w.central, &more);
    ack_down(&w, "down-2", &[&w.a]);
    let st = statuses(&w.a);
    for n in 1..=4 {
        assert_eq!(st[&exec(n)], "synchronized", "{}", exec(n));
    }
}

/// Logs that arrive before their result wait at central and are applied when it arrives.
#[test]
fn logs_before_their_result_wait_then_apply() {
    let w = setup();
    add(&w.a, "results", "results/ORG-001-day1.jsonl");
    add(&w.a, "logs", "logs/ORG-001-day1.jsonl");
    let files = w.export_up(&w.a, "up-1", &["--max-file-size", "32K"]);
    let (logs_only, rest): (Vec<PathBuf>, Vec<PathBuf>) = files.iter().cloned().partition(|f| {
        let i = inspect(&w.central, f);
        counted(&i, "logs") > 0 && counted(&i, "results") == 0
    });
    assert!(
        !logs_only.is_empty() && !rest.is_empty(),
        "results and logs in different files: {files:?}"
    );
    let early: u64 = logs_only
        .iter()
        .map(|f| counted(&inspect(&w.central, f), "logs"))
        .sum();
    import_all(&w.central, &logs_only);
    assert!(
        central_logs(&w, "logs-0.jsonl").is_empty(),
        "no log is shown before its result"
    );
    assert!(count(&w.central, "waiting_logs") > 0, "they wait");
    import_all(&w.central, &rest);
    let logs = central_logs(&w, "logs-1.jsonl");
    assert_eq!(
        logs.len(),
        12,
        "the {early} early logs applied with the others"
    );
    assert_eq!(count(&w.central, "waiting_logs"), 0);
    let ids: BTreeSet<String> = logs.iter().map(log_key).collect();
    assert_eq!(ids.len(), 12);
}

/// A missing file never blocks the others: the results in the files imported are at
/// central, the import notes the missing part, and the missing file completes the set
/// later.
#[test]
fn missing_file_does_not_block_the_others() {
    let w = setup();
    add(&w.a, "results", "results/ORG-001-day1.jsonl");
    add(&w.a, "logs", "logs/ORG-001-day1.jsonl");
    let files = w.export_up(&w.a, "up-1", &["--max-file-size", "32K"]);
    assert!(files.len() >= 2);
    let per_file: Vec<u64> = files
        .iter()
        .map(|f| counted(&inspect(&w.central, f), "results"))
        .collect();
    let skip = per_file
        .iter()
        .position(|n| *n > 0)
        .expect("a file with results");
    let present: Vec<&str> = files
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != skip)
        .map(|(_, f)| f.to_str().unwrap())
        .collect();
    let mut args = vec!["import"];
    args.extend(&present);
    let out = ok(courier(&w.central, &args));
    assert!(out.contains("not among these files"), "{out}");
    let expected: u64 = per_file.iter().sum::<u64>() - per_file[skip];
    let rows = central_results(&w, "partial.jsonl");
    assert_eq!(rows.len() as u64, expected, "results of the files imported");

    import(&w.central, &files[skip]);
    assert_eq!(central_results(&w, "all.jsonl").len(), 4);
    assert_eq!(central_logs(&w, "logs.jsonl").len(), 12);
}

/// Results and logs are sealed at rest: no file under the centre's home holds a response,
/// trace or log comment in plaintext (central's store does, once decrypted there).
#[test]
fn results_are_not_readable_at_the_centre() {
    let w = setup();
    add(&w.a, "results", "results/ORG-001-day1.jsonl");
    add(&w.a, "logs", "logs/ORG-001-day1.jsonl");
    add(&w.a, "logs", "logs/ORG-001-late.jsonl");
    let files = w.export_up(&w.a, "up-1", &[]);
    let needles: [&str; 4] = [
        "W0VhIE1vOyBKdSBHYTsgTmUgVHJd", // …004's first candidateResponse
        "ZXNzYXktdHQtMDAxYy5wZGY=",     // …004's uploaded essay name
        "W0VhIE1vOyBKdSBUcl0=",         // the Active …005's response
        "Screen froze for about two minutes",
    ];
    let fixture_text = std::fs::read_to_string(fixture("results/ORG-001-day1.jsonl")).unwrap()
        + &std::fs::read_to_string(fixture("logs/ORG-001-late.jsonl")).unwrap();
    for n in needles {
        assert!(fixture_text.contains(n), "{n} is in the fixtures");
    }
    let held = files_under(&w.a);
    assert!(
        held.iter().any(|f| f.ends_with("store.sqlite")),
        "the store is among the files searched: {held:?}"
    );
    for f in held {
        let bytes = std::fs::read(&f).unwrap();
        for n in needles {
            assert!(
                !contains(&bytes, n.as_bytes()),
                "{} holds {n:?} in plaintext",
                f.display()
            );
        }
    }
    import_all(&w.central, &files);
    let store = std::fs::read(w.central.join("store.sqlite")).unwrap();
    assert!(
        contains(&store, needles[0].as_bytes()),
        "central holds it decrypted: the search is sound"
    );
}

/// A log event added after its result was synchronized (a reported irregularity) still
/// reaches central in a later sync, against central's execution id.
#[test]
fn late_log_after_synchronization_reaches_central() {
    let w = setup();
    add(&w.a, "results", "results/ORG-001-day1.jsonl");
    add(&w.a, "logs", "logs/ORG-001-day1.jsonl");
    import_all(&w.central, &w.export_up(&w.a, "up-1", &[]));
    ack_down(&w, "down-1", &[&w.a]);
    assert_eq!(statuses(&w.a)[&exec(4)], "synchronized");
    assert_eq!(central_logs(&w, "logs-0.jsonl").len(), 12);

    add(&w.a, "logs", "logs/ORG-001-late.jsonl");
    let files = w.export_up(&w.a, "up-2", &[]);
    let logs: u64 = files
        .iter()
        .map(|f| counted(&inspect(&w.central, f), "logs"))
        .sum();
    assert_eq!(logs, 1, "only the late log is owed");
    import_all(&w.central, &files);
    let logs = central_logs(&w, "logs-1.jsonl");
    assert_eq!(logs.len(), 13);
    let late = logs
        .iter()
        .find(|l| log_key(l) == "2000")
        .expect("late log");
    assert_eq!(late["event_id"], "IRREGULARITY_REPORTED");
    assert_eq!(late["delivery_execution_id"], central_id(&exec(4)).as_str());
}

/// `results add` of a file with one good and two bad records exits 3, names the bad
/// records, and stores the good one only.
#[test]
fn results_add_stores_good_records_only() {
    let w = setup();
    let o = courier(
        &w.a,
        &[
            "results",
            "add",
            fixture("results/bad.jsonl").to_str().unwrap(),
        ],
    );
    let err = refused(o, 3, "line 2");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("del-does-not-exist"), "{err}");
    assert!(!err.contains("line 1"), "{err}");
    let rows = results_list(&w.a);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["deliveryExecutionId"], exec(2).as_str());
    assert_eq!(rows[0]["syncStatus"], "pending");
}

/// With `delete_after_ack`, a result's (and a log batch's) sealed content is dropped at the
/// centre once central acknowledged it; what is not acknowledged keeps its content.
#[test]
fn delete_after_ack_drops_sealed_content_of_acknowledged_results() {
    let w = setup();
    let config = w.a.join("courier.json");
    let mut c: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    c["settings"]["delete_after_ack"] = Value::Bool(true);
    std::fs::write(&config, serde_json::to_vec_pretty(&c).unwrap()).unwrap();

    add(&w.a, "results", "results/ORG-001-day1.jsonl");
    add(&w.a, "logs", "logs/ORG-001-day1.jsonl");
    let files = w.export_up(&w.a, "up-1", &[]);
    import_all(&w.central, &files);
    ack_down(&w, "down-1", &[&w.a]);

    let conn = rusqlite::Connection::open(w.a.join("store.sqlite")).unwrap();
    let rows: Vec<(String, String, bool)> = conn
        .prepare("SELECT execution_id, sync_status, sealed IS NULL FROM results")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 5);
    for (id, status, gone) in &rows {
        if *id == exec(5) {
            assert_eq!(status, "pending");
            assert!(!gone, "the unsent result keeps its content");
        } else {
            assert_eq!(status, "synchronized", "{id}");
            assert!(gone, "{id}: sealed content kept after the acknowledgement");
        }
    }
    let (batches, kept): (i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), COUNT(sealed) FROM log_batches WHERE sync_status = 'synchronized'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (batches, kept),
        (4, 0),
        "acknowledged log batches dropped too"
    );
    drop(conn);

    // A late log for a result whose content is gone still travels.
    add(&w.a, "logs", "logs/ORG-001-late.jsonl");
    import_all(&w.central, &w.export_up(&w.a, "up-2", &[]));
    let logs = central_logs(&w, "logs.jsonl");
    assert!(
        logs.iter().any(|l| log_key(l) == "2000"),
        "late log at central"
    );
    assert_eq!(central_results(&w, "results.jsonl").len(), 4);
}

/// A batch import of a folder with `--archive`: every file applied is moved to the archive
/// folder, the refused one stays where it was (and exit code 3 says some files were applied
/// and another refused);
/// the archived files imported again are already applied.
#[test]
fn batch_import_archives_what_it_applied() {
    let w = setup();
    add(&w.a, "results", "results/ORG-001-day1.jsonl");
    add(&w.a, "logs", "logs/ORG-001-day1.jsonl");
    let files = w.export_up(&w.a, "up", &["--max-file-size", "32K"]);
    assert!(files.len() >= 2);
    let inbox = w.path("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    for f in &files {
        std::fs::copy(f, inbox.join(f.file_name().unwrap())).unwrap();
    }
    let mut bad = std::fs::read(&files[0]).unwrap();
    bad[40] ^= 1;
    std::fs::write(inbox.join("damaged.courier"), bad).unwrap();
    let archive = w.path("archive");
    let o = courier(
        &w.central,
        &[
            "import",
            inbox.to_str().unwrap(),
            "--archive",
            archive.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("[1/{}]", files.len() + 1)),
        "progress is shown: {}",
        stdout(&o)
    );
    assert_eq!(
        files_under(&inbox),
        vec![inbox.join("damaged.courier")],
        "only the refused file stays"
    );
    assert_eq!(files_under(&archive).len(), files.len());
    let again = ok(courier(&w.central, &["import", archive.to_str().unwrap()]));
    assert_eq!(
        again.matches(": already-applied: ").count(),
        files.len(),
        "{again}"
    );
}
