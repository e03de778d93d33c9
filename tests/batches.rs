//! Batches at central (issue 12): a folder of many centres' files applied by sender and
//! sequence whatever their names, with a summary line and the parts still missing named by
//! file; `export --to-all` writing every centre's next data bundle in one process.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

/// Centre A's results and logs in parts of at most 32K and centre B's acknowledgement-only file,
/// copied onto one stick under names whose order is the reverse of their sequence, part 2
/// of A's set left out. Returns the stick, A's files as written (in sequence order) and B's.
fn scrambled_stick(w: &World) -> (PathBuf, Vec<PathBuf>, Vec<PathBuf>) {
    let results = fixtures().join("data/results/ORG-001-day1.jsonl");
    let logs = fixtures().join("data/logs/ORG-001-day1.jsonl");
    ok(courier(&w.a, &["results", "add", s(&results)]));
    ok(courier(&w.a, &["logs", "add", s(&logs)]));
    let a = w.export_up(&w.a, "up-a", &["--max-file-size", "32K"]);
    assert!(a.len() >= 3, "several parts: {a:?}");
    let b = w.export_up(&w.b, "up-b", &[]);
    assert_eq!(b.len(), 1, "{b:?}");
    let stick = w.path("stick");
    std::fs::create_dir_all(stick.join("sub")).unwrap();
    // B's file first by name, A's parts from the last to the first, one in a subfolder.
    std::fs::copy(&b[0], stick.join("0-b.courier")).unwrap();
    let n = a.len();
    for (i, f) in a.iter().enumerate() {
        if i == 1 {
            continue;
        }
        let dir = if i == 0 {
            stick.join("sub")
        } else {
            stick.clone()
        };
        std::fs::copy(f, dir.join(format!("{}-a.courier", n - i))).unwrap();
    }
    (stick, a, b)
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn a_stick_is_applied_by_sender_and_sequence_with_a_summary_and_the_missing_part_named() {
    let w = World::synced();
    let (stick, a, _) = scrambled_stick(&w);
    let n = a.len();

    let o = courier(&w.central, &["import", "--json-summary", s(&stick)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    courier::schema::check("file-reports", &v).unwrap_or_else(|e| panic!("{e}\n{v:#}"));

    // ORG-001's parts 1, 3, 4... in sequence order, then ORG-002's file.
    let order: Vec<String> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| name(Path::new(r["file"].as_str().unwrap())))
        .collect();
    let mut expected: Vec<String> = (0..n)
        .filter(|i| *i != 1)
        .map(|i| format!("{}-a.courier", n - i))
        .collect();
    expected.push("0-b.courier".into());
    assert_eq!(order, expected, "{v:#}");

    let status: Value =
        serde_json::from_str(&ok(courier(&w.central, &["status", "--json"]))).unwrap();
    let received = status["centers"][0]["results_received"].as_u64().unwrap();
    let summary = &v["summary"];
    assert_eq!(summary["files"], n as u64, "{v:#}");
    assert_eq!(summary["applied"], n as u64, "{v:#}");
    assert_eq!(summary["refused"], 0);
    assert_eq!(summary["results_stored"], received, "{v:#}\n{status:#}");
    assert_eq!(summary["results_kept_aside"], 0);

    let sets = v["incomplete_sets"].as_array().unwrap();
    assert_eq!(sets.len(), 1, "{v:#}");
    assert_eq!(sets[0]["org_id"], "ORG-001");
    assert_eq!(sets[0]["parts"], n as u64);
    assert_eq!(sets[0]["missing"][0]["part"], 2);
    assert_eq!(sets[0]["missing"][0]["file"], name(&a[1]), "{v:#}");

    // In text, the note names the file and the last line sums up; the array form stays.
    let text = ok(courier(&w.central, &["import", s(&stick)]));
    let note = text.lines().find(|l| l.starts_with("note: ")).unwrap();
    assert!(
        note.contains(&format!("part 2 ({})", name(&a[1]))),
        "{text}"
    );
    let last = text.lines().last().unwrap();
    assert_eq!(
        last,
        format!("summary: {n} file(s): 0 applied, {n} already applied, 0 refused, 0 skipped; 0 result(s) stored, 0 kept aside"),
        "{text}"
    );
    let array: Value =
        serde_json::from_str(&ok(courier(&w.central, &["import", "--json", s(&stick)]))).unwrap();
    assert_eq!(array.as_array().unwrap().len(), n, "{array:#}");
    courier::schema::check("file-reports", &array).unwrap();

    // The missing part arrives: the set is whole, its results counted.
    let late = w.path("late");
    std::fs::create_dir_all(&late).unwrap();
    std::fs::copy(&a[1], late.join(name(&a[1]))).unwrap();
    let text = ok(courier(&w.central, &["import", s(&late)]));
    assert!(!text.contains("note: "), "{text}");
    assert!(
        text.lines().last().unwrap().starts_with(
            "summary: 1 file(s): 1 applied, 0 already applied, 0 refused, 0 skipped; "
        ),
        "{text}"
    );
}

#[test]
fn a_refused_file_and_a_hidden_one_are_counted_in_the_summary() {
    let w = World::synced();
    let (stick, _, _) = scrambled_stick(&w);
    std::fs::write(stick.join("damaged.courier"), b"not a bundle").unwrap();
    std::fs::write(stick.join("._0-b.courier"), b"AppleDouble").unwrap();
    let o = courier(&w.central, &["import", s(&stick)]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let last = stdout(&o).lines().last().unwrap().to_string();
    assert!(
        last.contains(" applied, 0 already applied, 1 refused, 1 skipped; "),
        "{last}"
    );
}

/// `export --to-all`: the centres with something new get a file, the others say why not;
/// run again, nothing new is written; the report matches its schema.
#[test]
fn export_to_all_writes_each_centres_next_bundle_in_one_process() {
    let w = World::enrolled();
    w.load_fixtures();
    let enroll = w.path("enroll-ORG-003.json");
    ok(courier(
        &w.central,
        &[
            "center",
            "add",
            "ORG-003",
            "--label",
            "Never enrolled",
            "--out",
            s(&enroll),
        ],
    ));
    ok(courier(
        &w.central,
        &[
            "center",
            "add",
            "ORG-004",
            "--label",
            "Stolen",
            "--out",
            s(&w.path("e4.json")),
        ],
    ));
    ok(courier(
        &w.central,
        &["center", "revoke", "ORG-004", "--reason", "machine stolen"],
    ));

    let down = w.path("down");
    let o = courier(
        &w.central,
        &["export", "--to-all", "--out", s(&down), "--json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    courier::schema::check("export-batch", &v).unwrap_or_else(|e| panic!("{e}\n{v:#}"));
    let statuses: Vec<(&str, &str)> = v["centers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["org_id"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("ORG-001", "written"),
            ("ORG-002", "written"),
            ("ORG-003", "skipped"),
            ("ORG-004", "skipped")
        ],
        "{v:#}"
    );
    assert_eq!(
        (v["written"].as_u64(), v["skipped"].as_u64()),
        (Some(2), Some(2))
    );
    assert!(v["centers"][3]["message"]
        .as_str()
        .unwrap()
        .contains("machine stolen"));
    let files = bundles_in(&down);
    let names: Vec<String> = files.iter().map(|f| name(f)).collect();
    assert_eq!(
        names,
        ["ORG-001-data-000001.courier", "ORG-002-data-000001.courier"]
    );

    // Each file is the one `export --to` would write: the centre applies it.
    ok(courier(&w.a, &["import", s(&files[0])]));
    ok(courier(&w.b, &["import", s(&files[1])]));

    // Centre A acknowledges; the next run writes nothing for it, B's data again (not yet
    // confirmed), and the text ends with the summary.
    for f in w.export_up(&w.a, "up-a", &[]) {
        ok(courier(&w.central, &["import", s(&f)]));
    }
    let again = w.path("down-2");
    let text = ok(courier(
        &w.central,
        &["export", "--to-all", "--out", s(&again)],
    ));
    assert!(text.contains("ORG-001: nothing-changed: "), "{text}");
    assert!(
        text.contains("ORG-003: skipped: not enrolled yet"),
        "{text}"
    );
    assert_eq!(
        text.lines().last().unwrap(),
        "summary: 4 centre(s): 1 written, 1 with nothing changed, 2 skipped, 0 failed",
        "{text}"
    );
    let names: Vec<String> = bundles_in(&again).iter().map(|f| name(f)).collect();
    assert_eq!(names, ["ORG-002-data-000002.courier"]);

    // At a centre, --to-all is a usage error.
    refused(
        courier(&w.a, &["export", "--to-all", "--out", s(&again)]),
        2,
        "--to-all is for central",
    );
}

/// `export --to-all` when one centre's export fails (its pinned certificate in the store is
/// unreadable): the others are still written, the failure is named on stderr, the summary
/// counts it, no file of the failed centre is left, and the exit code is the failure's (5).
#[test]
fn export_to_all_goes_on_past_a_failed_centre_and_says_so() {
    let w = World::enrolled();
    w.load_fixtures();
    let conn = rusqlite::Connection::open(w.central.join("store.sqlite")).unwrap();
    let changed = conn
        .execute(
            "UPDATE peers SET cert = 'not a certificate' WHERE org_id = 'ORG-002'",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);

    let down = w.path("down");
    let o = courier(&w.central, &["export", "--to-all", "--out", s(&down)]);
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(
        out.contains(
            "summary: 2 centre(s): 1 written, 0 with nothing changed, 0 skipped, 1 failed"
        ),
        "{out}"
    );
    assert!(err.contains("courier: ORG-002: failed: "), "{err}");
    let names: Vec<String> = bundles_in(&down).iter().map(|f| name(f)).collect();
    assert_eq!(names, ["ORG-001-data-000001.courier"]);
    ok(courier(&w.a, &["import", s(&bundles_in(&down)[0])]));
    // An unreadable pinned certificate is the site's own damage (exit 5), which outranks
    // the partial exit 3 a centre's ordinary failure would give (BatchExport::exit_code).
    assert_eq!(o.status.code(), Some(5), "{err}");
}
