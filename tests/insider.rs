//! A dishonest enrolled centre speaks only for itself: per-sender bundle ids, one key for one
//! centre, the organisation read from the pinned key (../shared/THREATS.md, "A dishonest insider").

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

/// The header of a bundle as `inspect --json` shows it.
fn header(home: &Path, file: &Path) -> Value {
    serde_json::from_str(&ok(courier(home, &["inspect", "--json", s(file)]))).unwrap()
}

/// `import --json` of one file at `home`: (exit code, its report).
fn import_json(home: &Path, file: &Path) -> (Option<i32>, Value) {
    let out = courier(home, &["import", "--json", s(file)]);
    let v: Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(&out), stderr(&out)));
    courier::schema::check("file-reports", &v).unwrap();
    (out.status.code(), v[0].clone())
}

/// The lines of a home's audit trail, each checked against its schema.
fn audit(home: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(home.join("audit.jsonl")).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            courier::schema::check("audit-entry", &v).unwrap();
            v
        })
        .collect()
}

/// Results of one organisation stored at central.
fn results_of(central: &Path, org: &str) -> i64 {
    let conn = rusqlite::Connection::open(central.join("store.sqlite")).unwrap();
    conn.query_row(
        "SELECT COUNT(*) FROM central_results WHERE org_id = ?1",
        [org],
        |r| r.get(0),
    )
    .unwrap()
}

/// ORG-001 honestly exports its day-1 results (four finished; the fifth execution is still
/// active and stays at the centre): the one file written.
fn honest_results(w: &World) -> PathBuf {
    let day1 = fixtures().join("data/results/ORG-001-day1.jsonl");
    ok(courier(&w.a, &["results", "add", s(&day1)]));
    let honest = w.export_up(&w.a, "up-a", &[]);
    assert_eq!(honest.len(), 1);
    honest[0].clone()
}

/// ORG-002, dishonest, copies the id of `real` from its clear header into a bundle of its own.
fn copy_of_id(w: &World, real: &Path) -> PathBuf {
    let real_id = header(&w.a, real)["bundle_id"]
        .as_str()
        .unwrap()
        .to_string();
    let evil = Forger::new(&w.b);
    let mut claim = evil.claim(1);
    claim.bundle_id = real_id;
    let forged = w.path("evil/copy.courier");
    evil.results_bundle(&forged, &claim, &[]);
    forged
}

#[test]
fn a_bundle_id_copied_by_another_centre_does_not_hide_the_real_file() {
    let w = World::synced();
    let honest = honest_results(&w);
    let forged = copy_of_id(&w, &honest);
    let id = header(&w.a, &honest)["bundle_id"]
        .as_str()
        .unwrap()
        .to_string();
    // The copy arrives first: it is ORG-002's own (empty) bundle and applies on its merits.
    let (code, first) = import_json(&w.central, &forged);
    assert_eq!(code, Some(0), "{first}");
    assert!(first.get("suspicious").is_none(), "{first}");
    // The real file still applies, its results are all there, and the reuse is flagged.
    let (code, real) = import_json(&w.central, &honest);
    assert_eq!(code, Some(0), "{real}");
    assert_eq!(real["status"], "applied", "{real}");
    assert_eq!(results_of(&w.central, "ORG-001"), 4, "{real}");
    assert_eq!(results_of(&w.central, "ORG-002"), 0);
    let why = real["suspicious"].as_str().expect("flagged as suspicious");
    for needle in [id.as_str(), "ORG-001", "ORG-002"] {
        assert!(why.contains(needle), "{why} names {needle}");
    }
    assert!(real["message"].as_str().unwrap().contains("suspicious"));
    let trail = audit(&w.central);
    assert_eq!(trail.len(), 1, "{trail:?}");
    assert_eq!(trail[0]["action"], "suspicious-bundle-id");
    assert_eq!(trail[0]["bundle_id"], id.as_str());
    assert_eq!(trail[0]["status"], "applied");
    // Once applied, the real file is a replay like any other.
    let before = snapshot(&w.central, true);
    let (code, again) = import_json(&w.central, &honest);
    assert_eq!(
        (code, again["status"].as_str()),
        (Some(0), Some("already-applied"))
    );
    assert_eq!(snapshot(&w.central, true), before);
}

#[test]
fn a_bundle_id_copied_after_the_real_file_applied_is_flagged_and_hides_nothing() {
    let w = World::synced();
    let honest = honest_results(&w);
    let (code, real) = import_json(&w.central, &honest);
    assert_eq!((code, real["status"].as_str()), (Some(0), Some("applied")));
    assert!(real.get("suspicious").is_none(), "{real}");
    let forged = copy_of_id(&w, &honest);
    // The copy is not taken for a replay of the real file: it applies as ORG-002's own
    // bundle (it carries nothing), and is flagged, naming both centres.
    let (code, copy) = import_json(&w.central, &forged);
    assert_eq!(
        (code, copy["status"].as_str()),
        (Some(0), Some("applied")),
        "{copy}"
    );
    let why = copy["suspicious"].as_str().expect("flagged as suspicious");
    assert!(why.contains("ORG-001") && why.contains("ORG-002"), "{why}");
    let human = ok(courier(&w.central, &["import", s(&forged)]));
    assert!(human.contains("suspicious"), "{human}");
    assert_eq!(results_of(&w.central, "ORG-001"), 4);
    assert_eq!(results_of(&w.central, "ORG-002"), 0);
    let trail = audit(&w.central);
    assert_eq!(trail.len(), 2, "{trail:?}");
    assert_eq!(trail[1]["status"], "already-applied");
    // The rollback check of each sender is its own: ORG-001 is not pushed back by the copy.
    let replies = w.export_down("ORG-001", "down-a2");
    for f in &replies {
        ok(courier(&w.a, &["import", s(f)]));
    }
}

/// Central's store holds no negative sequence or revision.
fn negatives(central: &Path) -> i64 {
    let conn = rusqlite::Connection::open(central.join("store.sqlite")).unwrap();
    conn.query_row(
        "SELECT (SELECT COUNT(*) FROM bundles WHERE seq < 0 OR set_index < 0 OR set_count < 0)
              + (SELECT COUNT(*) FROM history WHERE seq < 0)
              + (SELECT COUNT(*) FROM central_results WHERE revision < 0)
              + (SELECT COUNT(*) FROM quarantine WHERE revision < 0)",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// The first day-1 result, as ORG-002 might claim one of its own.
fn a_result_of_b() -> Value {
    let text = std::fs::read_to_string(fixtures().join("data/results/ORG-001-day1.jsonl")).unwrap();
    let mut v: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    v["deliveryExecutionId"] = "https://centre-002.example/tao.rdf#i1".into();
    v
}

#[test]
fn a_header_sequence_beyond_i64_is_refused_as_bad_input_and_never_stored_negative() {
    let w = World::synced();
    let honest = honest_results(&w);
    ok(courier(&w.central, &["import", s(&honest)]));
    let before = snapshot(&w.central, false);
    let evil = Forger::new(&w.b);
    let forged = w.path("evil/huge-seq.courier");
    evil.results_bundle(&forged, &evil.claim(u64::MAX), &[]);
    let err = refused(
        courier(&w.central, &["import", s(&forged)]),
        1,
        "header sequence is 18446744073709551615",
    );
    assert!(err.contains(s(&forged)), "{err}");
    refused(courier(&w.central, &["verify", s(&forged)]), 1, s(&forged));
    assert_eq!(snapshot(&w.central, false), before);
    assert_eq!(negatives(&w.central), 0);
    assert_eq!(results_of(&w.central, "ORG-001"), 4);
    // The largest number that fits is an ordinary sequence.
    let fits = w.path("evil/max-seq.courier");
    evil.results_bundle(&fits, &evil.claim(i64::MAX as u64), &[]);
    ok(courier(&w.central, &["import", s(&fits)]));
    assert_eq!(negatives(&w.central), 0);
}

#[test]
fn result_and_log_numbers_beyond_i64_are_refused_as_bad_input_not_internal_errors() {
    let w = World::synced();
    let honest = honest_results(&w);
    ok(courier(&w.central, &["import", s(&honest)]));
    let evil = Forger::new(&w.b);
    let result = a_result_of_b();
    let huge = Value::from(u64::MAX);
    let float = serde_json::json!(1e19);
    let cases: [(&str, &str, &Value); 5] = [
        ("results", "revision", &huge),
        ("results", "size", &huge),
        ("results", "revision", &float),
        ("logs", "count", &huge),
        ("logs", "size", &huge),
    ];
    for (n, (entry, field, number)) in cases.into_iter().enumerate() {
        let before = snapshot(&w.central, false);
        let entries = if entry == "results" {
            let (mut meta, blob) = evil.seal_result(&result, 1, false);
            meta[field] = number.clone();
            Forger::result_entries(&[(meta, blob)])
        } else {
            let log = serde_json::json!({"id": "l1"});
            let (mut meta, blob) = evil.seal_logs(
                "0123456789abcdef0123456789abcdef",
                "https://centre-002.example/tao.rdf#i1",
                &[log],
            );
            meta[field] = number.clone();
            vec![
                (
                    "logs/000000.json".into(),
                    serde_json::to_vec(&meta).unwrap(),
                ),
                ("logs/000000.pgp".into(), blob),
            ]
        };
        let forged = w.path(&format!("evil/huge-{n}.courier"));
        evil.results_bundle(&forged, &evil.claim(10 + n as u64), &entries);
        let err = refused(
            courier(&w.central, &["import", s(&forged)]),
            1,
            &format!("{entry}/000000.json, number at '/{field}' is {number}"),
        );
        assert!(err.contains(s(&forged)) && err.contains("refused"), "{err}");
        assert_eq!(snapshot(&w.central, false), before, "{entry} {field}");
    }
    assert_eq!(negatives(&w.central), 0);
    assert_eq!(results_of(&w.central, "ORG-001"), 4);
    assert_eq!(results_of(&w.central, "ORG-002"), 0);
}

/// Copy a home folder (a stolen centre machine, say).
fn copy_home(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_home(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// Central registers `org`; returns its enrollment file.
fn register(w: &World, org: &str, extra: &[&str]) -> PathBuf {
    let file = w.path(&format!("enroll-{org}.json"));
    let mut args = vec!["center", "add", org, "--label", org, "--out", s(&file)];
    args.extend_from_slice(extra);
    ok(courier(&w.central, &args));
    file
}

/// A centre home answers an enrollment file: (the reply folder, what `enroll` printed).
fn answer(w: &World, home: &Path, file: &Path, folder: &str) -> (PathBuf, String) {
    let central_fpr = w.fingerprint(&w.central);
    let out = w.path(folder);
    let printed = ok(courier(
        home,
        &[
            "enroll",
            s(file),
            "--expect-fingerprint",
            &central_fpr,
            "--out",
            s(&out),
        ],
    ));
    (out, printed)
}

fn center_list(central: &Path) -> Vec<Value> {
    let v: Value =
        serde_json::from_str(&ok(courier(central, &["center", "list", "--json"]))).unwrap();
    courier::schema::check("center-list", &v).unwrap();
    v.as_array().unwrap().clone()
}

#[test]
fn the_key_of_an_enrolled_centre_cannot_enroll_a_second_organisation() {
    let w = World::synced();
    let file = register(&w, "ORG-003", &[]);
    // ORG-002's operator copies its home, calls it ORG-003 and answers ORG-003's file with
    // ORG-002's key: central would then seal ORG-003's personal data to ORG-002.
    let evil = w.path("evil-home");
    copy_home(&w.b, &evil);
    let config = evil.join("courier.json");
    let mut c: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    c["org_id"] = "ORG-003".into();
    std::fs::write(&config, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    let (reply, _) = answer(&w, &evil, &file, "evil-reply");
    let before = snapshot(&w.central, false);
    let err = refused(
        courier(&w.central, &["import", s(&reply)]),
        1,
        "is already pinned for centre ORG-002",
    );
    assert!(
        err.contains("ORG-003") && err.contains(&w.fingerprint(&w.b)),
        "{err}"
    );
    assert_eq!(snapshot(&w.central, false), before);
    let rows = center_list(&w.central);
    let org3 = rows.iter().find(|r| r["org_id"] == "ORG-003").unwrap();
    assert!(org3["fingerprint"].is_null(), "{org3}");
    refused(
        courier(
            &w.central,
            &["export", "--to", "ORG-003", "--out", s(&w.path("x"))],
        ),
        4, // site state: the centre is registered, not enrolled
        "centre ORG-003 has not enrolled yet",
    );
    // The honest centres keep their keys and their data.
    let org2 = rows.iter().find(|r| r["org_id"] == "ORG-002").unwrap();
    assert_eq!(org2["fingerprint"], w.fingerprint(&w.b).as_str());
    for f in w.export_down("ORG-002", "down-b2") {
        ok(courier(&w.b, &["import", s(&f)]));
    }
}

#[test]
fn a_centre_registered_with_its_fingerprint_enrolls_only_with_that_key() {
    let w = World::synced();
    let honest = w.path("center-c");
    ok(courier(&honest, &["init", "center", "--org", "ORG-003"]));
    let fpr = w.fingerprint(&honest);
    // Read out by phone in groups of four, with spaces.
    let spaced: Vec<String> = fpr
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let file = register(&w, "ORG-003", &["--expect-fingerprint", &spaced.join(" ")]);
    let rows = center_list(&w.central);
    let org3 = rows.iter().find(|r| r["org_id"] == "ORG-003").unwrap();
    assert_eq!(org3["expected_fingerprint"], fpr.as_str());
    let listed = ok(courier(&w.central, &["center", "list"]));
    assert!(listed.contains(&courier::crypto::grouped(&fpr)), "{listed}");
    // Someone else who got hold of the enrollment file answers first, with another key.
    let other = w.path("center-impostor");
    ok(courier(&other, &["init", "center", "--org", "ORG-003"]));
    let (reply, _) = answer(&w, &other, &file, "impostor-reply");
    let before = snapshot(&w.central, false);
    let err = refused(
        courier(&w.central, &["import", s(&reply)]),
        1,
        "was registered to enroll with key",
    );
    assert!(
        err.contains(&fpr) && err.contains(&w.fingerprint(&other)),
        "{err}"
    );
    assert_eq!(snapshot(&w.central, false), before);
    // The real centre prints its own fingerprint, and its reply enrolls it.
    let (reply, printed) = answer(&w, &honest, &file, "honest-reply");
    assert!(printed.contains(&fpr), "{printed}");
    ok(courier(&w.central, &["import", s(&reply)]));
    let rows = center_list(&w.central);
    let org3 = rows.iter().find(|r| r["org_id"] == "ORG-003").unwrap();
    assert_eq!(org3["fingerprint"], fpr.as_str());
    // A fingerprint that is not one is a usage error, and registers nothing.
    let before = snapshot(&w.central, false);
    refused(
        courier(
            &w.central,
            &[
                "center",
                "add",
                "ORG-004",
                "--label",
                "x",
                "--out",
                s(&w.path("e4.json")),
                "--expect-fingerprint",
                "12AB",
            ],
        ),
        2,
        "40 hex digits",
    );
    assert_eq!(snapshot(&w.central, false), before);
}

#[test]
fn a_centre_claiming_another_organisation_is_refused_by_verify_inspect_and_import() {
    let w = World::synced();
    let honest = honest_results(&w);
    ok(courier(&w.central, &["import", s(&honest)]));
    // ORG-002 signs a bundle whose header says it comes from ORG-001.
    let evil = Forger::new(&w.b);
    let mut claim = evil.claim(5);
    claim.org_id = "ORG-001".into();
    let (meta, blob) = evil.seal_result(&a_result_of_b(), 1, false);
    let forged = w.path("evil/as-org-001.courier");
    evil.results_bundle(&forged, &claim, &Forger::result_entries(&[(meta, blob)]));
    let before = snapshot(&w.central, false);
    for cmd in ["verify", "inspect", "import"] {
        let err = refused(
            courier(&w.central, &[cmd, s(&forged)]),
            1,
            "the header claims organisation ORG-001",
        );
        assert!(
            err.contains("pinned for ORG-002") && err.contains(s(&forged)),
            "{cmd}: {err}"
        );
    }
    assert_eq!(snapshot(&w.central, false), before);
    assert_eq!(results_of(&w.central, "ORG-001"), 4);
    assert_eq!(results_of(&w.central, "ORG-002"), 0);
    // Without a site, inspect says what the header claims, and that it is unverified.
    let nowhere = w.path("no-site");
    let v = header(&nowhere, &forged);
    courier::schema::check("inspect", &v).unwrap();
    assert_eq!(
        (v["org_id"].as_str(), v["org_source"].as_str()),
        (Some("ORG-001"), Some("claimed-unverified"))
    );
    let text = ok(courier(&nowhere, &["inspect", s(&forged)]));
    assert!(text.contains("ORG-001 (as claimed, unverified)"), "{text}");
    // At central, an honest file's organisation is the one its key is pinned for.
    let v = header(&w.central, &honest);
    courier::schema::check("inspect", &v).unwrap();
    assert_eq!(
        (v["org_id"].as_str(), v["org_source"].as_str()),
        (Some("ORG-001"), Some("pinned-key"))
    );
    let text = ok(courier(&w.central, &["inspect", s(&honest)]));
    assert!(
        text.contains("ORG-001 (from the sender's pinned key)"),
        "{text}"
    );
    let said = ok(courier(&w.central, &["verify", s(&honest)]));
    assert!(said.contains("good signature by centre ORG-001"), "{said}");
}
