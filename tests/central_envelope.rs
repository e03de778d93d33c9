//! The envelope rows of ../shared/THREATS.md played at central: results bundles from an
//! honest centre, damaged, cut short, replayed or forged on the way, and bundles another key
//! or another central wrote. Each refusal exits 1 with one line naming the file, and central's
//! store (history included) stays exactly as it was.

use std::path::{Path, PathBuf};

use crate::common::*;

/// Both centres synced, ORG-001's day-one results exported: (world, the one results bundle).
fn world_with_results() -> (World, PathBuf) {
    let w = World::synced();
    let day1 = fixtures().join("data/results/ORG-001-day1.jsonl");
    ok(courier(&w.a, &["results", "add", s(&day1)]));
    let logs = fixtures().join("data/logs/ORG-001-day1.jsonl");
    ok(courier(&w.a, &["logs", "add", s(&logs)]));
    let files = w.export_up(&w.a, "up", &[]);
    assert_eq!(files.len(), 1, "one results bundle: {files:?}");
    (w, files[0].clone())
}

/// Results of the day-one fixture in the `Finished` state: the ones a centre sends.
const FINISHED: i64 = 4;

fn write(path: &Path, bytes: &[u8]) -> PathBuf {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write variant");
    path.to_path_buf()
}

/// `courier import --json DIR` at central: every file refused (exit 1), each report naming
/// its file on one line, and central's store unchanged.
#[track_caller]
fn central_refuses_all(w: &World, dir: &Path, n: usize) {
    let before = snapshot(&w.central, true);
    for cmd in ["verify", "import"] {
        let o = courier(&w.central, &[cmd, "--json", s(dir)]);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {}", stderr(&o));
        let reports: Vec<serde_json::Value> =
            serde_json::from_str(&stdout(&o)).expect("json reports");
        assert_eq!(reports.len(), n, "{cmd}: one report per file");
        for r in &reports {
            let file = r["file"].as_str().expect("file");
            let name = Path::new(file).file_name().unwrap().to_str().unwrap();
            let msg = r["message"].as_str().expect("message");
            assert_eq!(r["status"], "refused", "{cmd} accepted {file}: {r}");
            assert!(msg.contains(name), "{cmd}: does not name {name}: {msg}");
            assert!(!msg.contains('\n'), "one line: {msg}");
        }
    }
    assert_eq!(
        snapshot(&w.central, true),
        before,
        "central's store changed"
    );
}

#[test]
fn a_results_bundle_with_any_byte_changed_is_refused_at_central() {
    let (w, f) = world_with_results();
    let orig = std::fs::read(&f).unwrap();
    let dir = w.path("flipped");
    let step = (orig.len() / 50).max(1);
    let mut n = 0;
    for (i, p) in (0..orig.len()).step_by(step).enumerate() {
        let mut b = orig.clone();
        b[p] ^= 1 << (i % 8);
        write(&dir.join(format!("flip-{p:07}.courier")), &b);
        n += 1;
    }
    central_refuses_all(&w, &dir, n);
    // The untouched file still applies: the refusals were the flips' doing.
    ok(courier(&w.central, &["import", s(&f)]));
    assert_eq!(count(&w.central, "central_results"), FINISHED);
}

#[test]
fn a_results_bundle_cut_short_or_extended_is_refused_at_central() {
    let (w, f) = world_with_results();
    let orig = std::fs::read(&f).unwrap();
    let dir = w.path("cut");
    let len = orig.len();
    let mut cuts: Vec<usize> = (0..20).map(|i| i * len / 20).collect();
    cuts.push(len - 1);
    for &c in &cuts {
        write(&dir.join(format!("cut-{c:07}.courier")), &orig[..c]);
    }
    let mut longer = orig.clone();
    longer.push(b'\n');
    write(&dir.join("longer.courier"), &longer);
    central_refuses_all(&w, &dir, cuts.len() + 1);
    ok(courier(&w.central, &["import", s(&f)]));
    assert_eq!(count(&w.central, "central_results"), FINISHED);
}

#[test]
fn a_results_bundle_imported_twice_at_central_is_already_applied() {
    let (w, f) = world_with_results();
    ok(courier(&w.central, &["import", s(&f)]));
    let before = snapshot(&w.central, true);
    let again = w.path("again.courier");
    std::fs::copy(&f, &again).unwrap();
    let out = ok(courier(&w.central, &["import", s(&again)]));
    assert!(out.contains("already applied"), "{out}");
    assert_eq!(
        snapshot(&w.central, true),
        before,
        "a replay changed the store"
    );
}

#[test]
fn a_results_bundle_signed_by_a_key_central_never_enrolled_is_refused() {
    let (w, _) = world_with_results();
    // A centre enrolled with *another* central writes a results bundle; ours never pinned it.
    let other_central = w.path("other-central");
    ok(courier(
        &other_central,
        &["init", "central", "--name", "Other"],
    ));
    let stranger = w.path("stranger");
    ok(courier(&stranger, &["init", "center", "--org", "ORG-001"]));
    handshake(&other_central, &stranger, "ORG-001", &w.path("other-work"));
    let file = w.path("stranger-up/from-stranger.courier");
    let forger = Forger::new(&stranger);
    forger.results_bundle(&file, &forger.claim(1), &[]);
    let before = snapshot(&w.central, true);
    let err = refused(courier(&w.central, &["import", s(&file)]), 1, "meant for");
    assert!(err.contains("from-stranger.courier"), "{err}");
    assert_eq!(snapshot(&w.central, true), before);
}

#[test]
fn a_results_bundle_in_another_centres_name_is_refused_at_central() {
    let (w, f) = world_with_results();
    // ORG-002 signs with its own key a bundle claiming to come from ORG-001.
    let evil = Forger::new(&w.b);
    let mut claim = evil.claim(1);
    claim.org_id = "ORG-001".into();
    let forged = w.path("evil/impostor.courier");
    evil.results_bundle(&forged, &claim, &[]);
    let before = snapshot(&w.central, true);
    let err = refused(
        courier(&w.central, &["import", s(&forged)]),
        1,
        "impostor.courier",
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert_eq!(snapshot(&w.central, true), before);
    // The honest file is unaffected.
    ok(courier(&w.central, &["import", s(&f)]));
    assert_eq!(count(&w.central, "central_results"), FINISHED);
}
