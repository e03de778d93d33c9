//! A crash at every write (issue 13), built with `--features failpoints` only: for each
//! command, every failpoint it reaches (listed by running it with `COURIER_FAILPOINT=list`,
//! so a new point is walked without touching this file) is armed in turn, as an error and as
//! a process exit; the command must fail (or, for the steps after its commit that are
//! warnings by design: signing the history's head, archiving the input, report the
//! failure), then a clean re-run must leave the world as a run that never failed (or, after
//! a failure past the commit, as two clean runs): the same store rows, the same files, no
//! `.part`, an intact history, and bundles the recipient applies to the same effect.
//!
//! What legitimately differs between two honest runs and is left out of the comparison:
//! random bundle, set and log-batch ids (columns `bundle_id`, `set_id`, `batch_id`, any 32
//! hex digits in other text, and the history's `hash` and `prev_hash`, which cover them;
//! `history --verify` checks the chain instead), what is sealed afresh for each write
//! (column `sealed`), the size of a bundle's payload (column `payload_size`: the random ids
//! inside it compress to a few bytes more or less), the audit trail (`audit.jsonl`, which records the failed attempt), and the
//! bytes of files that are encrypted or signed afresh each time (`*.courier`, the signed
//! history head `history-head.json`): bundles are compared by what their recipient does with them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::*;

/// The clock of every command of the walk.
const NOW: &str = "2026-06-01T09:00:00Z";

/// A name reached more often than this is armed at its first, second and last hit only.
const HITS_WALKED: usize = 3;

fn run(world: &Path, home: &str, args: &[String], failpoint: Option<&str>) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut env = vec![("COURIER_NOW", NOW)];
    if let Some(f) = failpoint {
        env.push(("COURIER_FAILPOINT", f));
    }
    courier_env(&world.join(home), &args, &env)
}

/// One command to walk: run at `home` (a folder of the world) with `args`, where `{w}`
/// stands for the world's folder; `then` is applied after it (at `then.0`, the bundles
/// written under `then.1`) to compare the bundles by their effect.
struct Case {
    name: &'static str,
    home: &'static str,
    args: Vec<&'static str>,
    then: Option<(&'static str, &'static str)>,
}

impl Case {
    fn args(&self, world: &Path) -> Vec<String> {
        self.args
            .iter()
            .map(|a| a.replace("{w}", s(world)))
            .collect()
    }
}

/// A copy of the template world, in a fresh folder.
fn copy_world(template: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(template, dir.path());
    dir
}

/// The failpoints a clean run reached, in order, each with the number of its hits.
fn reached(o: &Output) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for line in stderr(o).lines() {
        if let Some(name) = line.strip_prefix("courier-failpoint: ") {
            match counts.iter_mut().find(|(n, _)| n == name) {
                Some((_, c)) => *c += 1,
                None => counts.push((name.to_string(), 1)),
            }
        }
    }
    counts
}

/// Which hits of a point reached `count` times are armed.
fn hits_walked(count: usize) -> Vec<usize> {
    if count <= HITS_WALKED {
        (1..=count).collect()
    } else {
        vec![1, 2, count]
    }
}

/// Every row of every store of the world, volatile columns left out (see the module doc).
fn stores(world: &Path) -> String {
    let mut out = String::new();
    for home in ["central", "center-a", "center-b", "center-c"] {
        let db = world.join(home).join("store.sqlite");
        if db.exists() {
            out.push_str(&format!("#### {home}\n{}", dump(&db, world)));
        }
    }
    out
}

const VOLATILE: &[&str] = &[
    "bundle_id",
    "set_id",
    "hash",
    "prev_hash",
    "sealed",
    "batch_id",
    "payload_size",
];

/// `text` with every random id (32 hex digits: bundle, set and log-batch ids, which the
/// history's reports name) written `<id>`; SHA-256 digests (64 digits) are kept.
fn mask_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        out.push_str(if run.len() == 32 {
            "<id>"
        } else {
            run.as_str()
        });
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_hexdigit() && !c.is_ascii_uppercase() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// The rows of one store, sorted, volatile columns left out and the world's folder (in the
/// history's reports) written `{w}`.
fn dump(db: &Path, world: &Path) -> String {
    let out = dump_store(db, &[], VOLATILE);
    mask_ids(&out.replace(s(world), "{w}"))
}

/// Every file of the world by its path: its bytes, or only its presence for files written
/// afresh each time (bundles, the signed head) and the stores (compared by their rows).
fn files(world: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    for f in files_under(world) {
        let rel = f
            .strip_prefix(world)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if name == "audit.jsonl" {
            continue;
        }
        let volatile = name.ends_with(".courier")
            || name == "history-head.json"
            || name.starts_with("store.sqlite");
        let bytes = (!volatile).then(|| std::fs::read(&f).unwrap());
        out.insert(rel, bytes);
    }
    out
}

/// No temporary file anywhere in the world.
fn no_parts(world: &Path) -> Result<(), String> {
    let parts: Vec<PathBuf> = files_under(world)
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.ends_with(".part") || n.ends_with("-journal")
        })
        .collect();
    if parts.is_empty() {
        Ok(())
    } else {
        Err(format!("left behind: {parts:?}"))
    }
}

/// `history --verify` passes at every site of the world.
fn history_verifies(world: &Path) -> Result<(), String> {
    for home in ["central", "center-a", "center-b", "center-c"] {
        let h = world.join(home);
        if h.join("store.sqlite").exists() {
            let o = courier(&h, &["history", "--verify"]);
            if !o.status.success() {
                return Err(format!("history of {home}: {}", stderr(&o).trim()));
            }
        }
    }
    Ok(())
}

/// What a world looks like after the case ran: its stores and files, then, when the case
/// writes bundles, the recipient's store once it applied them.
fn outcome(world: &Path, case: &Case) -> Outcome {
    let stores_now = stores(world);
    let files_now = files(world);
    let applied = match case.then {
        None => String::new(),
        Some((home, folder)) => {
            let dir = world.join(folder);
            if dir.exists() {
                let o = run(world, home, &["import".into(), s(&dir).into()], None);
                if !o.status.success() {
                    return (stores_now, files_now, format!("refused: {}", stderr(&o)));
                }
            }
            dump(&world.join(home).join("store.sqlite"), world)
        }
    };
    (stores_now, files_now, applied)
}

/// Walk every failpoint of `case` from the world in `template`; returns how many runs failed
/// on purpose, and what differed after them.
fn walk(template: &Path, case: &Case) -> (usize, Vec<String>) {
    let clean = copy_world(template);
    let listed = run(
        clean.path(),
        case.home,
        &case.args(clean.path()),
        Some("list"),
    );
    let listed_ok = listed.status.success();
    assert!(
        listed_ok,
        "{}: clean run failed: {}",
        case.name,
        stderr(&listed)
    );
    let points = reached(&listed);
    assert!(!points.is_empty(), "{}: no failpoint reached", case.name);
    let twice = copy_world(template);
    for _ in 0..2 {
        let o = run(twice.path(), case.home, &case.args(twice.path()), None);
        let archived = stderr(&o).contains("no bundle files");
        assert!(
            o.status.success() || archived,
            "{}: {}",
            case.name,
            stderr(&o)
        );
    }
    let expected = (
        outcome(clean.path(), case),
        Some(outcome(twice.path(), case)),
    );
    let mut walked = 0;
    let mut findings = Vec::new();
    for (name, count) in &points {
        for at in hits_walked(*count) {
            for how in ["error", "exit"] {
                let spec = format!("{name}:{how}@{at}");
                let what = format!("{} with {spec}", case.name);
                let w = copy_world(template);
                if let Err(why) = fail_then_rerun(w.path(), case, &spec, &expected) {
                    findings.push(format!("{}: {why}", what));
                }
                walked += 1;
            }
        }
    }
    eprintln!("{}: {walked} failure(s) walked over {points:?}", case.name);
    (walked, findings)
}

type Outcome = (String, BTreeMap<String, Option<Vec<u8>>>, String);

/// The outcome of one clean run, and of two: a failure after the commit (signing the
/// history's head, archiving the input) leaves the work done, and the re-run then does
/// what a second run does (an `unchanged` history row, say).
type Expected = (Outcome, Option<Outcome>);

/// Run the case with `spec` armed, then cleanly; what differs from `expected`, if anything.
fn fail_then_rerun(w: &Path, case: &Case, spec: &str, expected: &Expected) -> Result<(), String> {
    let args = case.args(w);
    let failed = run(w, case.home, &args, Some(spec));
    let said = format!(
        "failpoint {}",
        spec.replace(":error", "").replace(":exit", "")
    );
    let reported = stdout(&failed).contains(&said) || stderr(&failed).contains(&said);
    if failed.status.success() && !reported {
        return Err(format!("did not fail: {}", stdout(&failed).trim()));
    }
    let again = run(w, case.home, &args, None);
    // A run that failed after its commit had already archived its input: nothing is left
    // for the re-run to read, which says so.
    let archived = stderr(&again).contains("no bundle files");
    if !again.status.success() && !archived {
        return Err(format!("re-run failed: {}", stderr(&again).trim()));
    }
    no_parts(w)?;
    history_verifies(w)?;
    let got = outcome(w, case);
    compare(&got, &expected.0).or_else(|first| match &expected.1 {
        Some(twice) => compare(&got, twice).map_err(|_| first),
        None => Err(first),
    })
}

/// What differs between two outcomes.
fn compare(got: &Outcome, expected: &Outcome) -> Result<(), String> {
    if got.0 != expected.0 {
        return Err(format!("stores differ:\n{}", diff(&expected.0, &got.0)));
    }
    let (names, want): (Vec<_>, Vec<_>) = (got.1.keys().collect(), expected.1.keys().collect());
    if names != want {
        return Err(format!("files differ: {names:?}, expected {want:?}"));
    }
    if got.1 != expected.1 {
        let differ: Vec<_> = want
            .iter()
            .filter(|k| got.1[**k] != expected.1[**k])
            .collect();
        return Err(format!("bytes differ: {differ:?}"));
    }
    if got.2 != expected.2 {
        return Err(format!(
            "bundles applied differently:\n{}",
            diff(&expected.2, &got.2)
        ));
    }
    Ok(())
}

/// The lines of `b` not in `a` and of `a` not in `b`.
fn diff(a: &str, b: &str) -> String {
    let only = |x: &str, y: &str, sign: &str| -> Vec<String> {
        x.lines()
            .filter(|l| !y.lines().any(|m| m == *l))
            .map(|l| format!("{sign} {l}"))
            .collect()
    };
    let mut lines = only(a, b, "-");
    lines.extend(only(b, a, "+"));
    lines.join("\n")
}

/// The worlds the cases start from, built once by the real commands and copied per run.
struct Templates {
    _dir: tempfile::TempDir,
    /// Central and centres A and B enrolled; centre C created, registered at central, its
    /// enrollment file at `enroll-C.json`.
    enrolled: PathBuf,
    /// The fixture data loaded at central.
    loaded: PathBuf,
    /// Central's data bundle for A in `down/`.
    exported: PathBuf,
    /// A applied it (`down/` removed).
    applied: PathBuf,
    /// A's results and logs added.
    synced: PathBuf,
    /// A's upward bundle in `up/`.
    sent_up: PathBuf,
    /// C enrolled: its reply in `replies-C/`.
    replied: PathBuf,
    /// Central's fingerprint, which C's enrollment expects.
    fpr: String,
}

/// `enroll` at centre C, expecting central's fingerprint.
fn enroll_c(fpr: &str) -> Vec<&str> {
    let (file, out) = ("{w}/enroll-C.json", "{w}/replies-C");
    vec!["enroll", file, "--expect-fingerprint", fpr, "--out", out]
}

fn stage(dir: &Path, from: &Path, name: &str, step: impl FnOnce(&Path)) -> PathBuf {
    let to = dir.join(name);
    copy_dir(from, &to);
    step(&to);
    to
}

fn cmd(world: &Path, home: &str, args: &[&str]) {
    let args: Vec<String> = args.iter().map(|a| a.replace("{w}", s(world))).collect();
    ok(run(world, home, &args, None));
}

fn templates() -> Templates {
    let w = World::enrolled();
    let fpr = w.fingerprint(&w.central);
    ok(courier(
        &w.path("center-c"),
        &["init", "center", "--org", "ORG-003"],
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let enrolled = stage(dir.path(), w.dir.path(), "enrolled", |t| {
        let out = format!("{}/enroll-C.json", s(t));
        cmd(
            t,
            "central",
            &["center", "add", "ORG-003", "--label", "C", "--out", &out],
        );
    });
    let data = fixtures().join("data/central.jsonl");
    let loaded = stage(dir.path(), &enrolled, "loaded", |t| {
        cmd(t, "central", &["load", s(&data)]);
    });
    let exported = stage(dir.path(), &loaded, "exported", |t| {
        cmd(
            t,
            "central",
            &["export", "--to", "ORG-001", "--out", "{w}/down"],
        );
    });
    let results = fixtures().join("data/results/ORG-001-day1.jsonl");
    let logs = fixtures().join("data/logs/ORG-001-day1.jsonl");
    let applied = stage(dir.path(), &exported, "applied", |t| {
        cmd(t, "center-a", &["import", "{w}/down"]);
        std::fs::remove_dir_all(t.join("down")).unwrap();
    });
    let synced = stage(dir.path(), &applied, "synced", |t| {
        cmd(t, "center-a", &["results", "add", s(&results)]);
        cmd(t, "center-a", &["logs", "add", s(&logs)]);
    });
    let sent_up = stage(dir.path(), &synced, "sent_up", |t| {
        cmd(t, "center-a", &["export", "--out", "{w}/up"]);
    });
    let replied = stage(dir.path(), &enrolled, "replied", |t| {
        cmd(t, "center-c", &enroll_c(&fpr));
    });
    Templates {
        _dir: dir,
        enrolled,
        loaded,
        exported,
        applied,
        synced,
        sent_up,
        replied,
        fpr,
    }
}

/// Every command that writes, each from the world it needs, and each failpoint it reaches.
#[test]
fn a_failure_or_crash_at_any_write_then_a_clean_rerun_equals_a_run_that_never_failed() {
    let t = templates();
    let data = fixtures().join("data/central.jsonl");
    let results = fixtures().join("data/results/ORG-001-day1.jsonl");
    let logs = fixtures().join("data/logs/ORG-001-day1.jsonl");
    let case = |name, home, args: Vec<&'static str>, then| Case {
        name,
        home,
        args,
        then,
    };
    let leak = |p: &Path| -> &'static str { Box::leak(s(p).to_string().into_boxed_str()) };
    let fpr: &'static str = Box::leak(t.fpr.clone().into_boxed_str());
    let cases: Vec<(&Path, Case)> = vec![
        (
            &t.enrolled,
            case("load", "central", vec!["load", leak(&data)], None),
        ),
        (
            &t.loaded,
            case(
                "export to a centre",
                "central",
                vec!["export", "--to", "ORG-001", "--out", "{w}/down"],
                Some(("center-a", "down")),
            ),
        ),
        (
            &t.exported,
            case(
                "import of a data bundle at a centre",
                "center-a",
                vec!["import", "{w}/down", "--archive", "{w}/done"],
                None,
            ),
        ),
        (
            &t.applied,
            case(
                "results add",
                "center-a",
                vec!["results", "add", leak(&results)],
                None,
            ),
        ),
        (
            &t.applied,
            case(
                "logs add",
                "center-a",
                vec!["logs", "add", leak(&logs)],
                None,
            ),
        ),
        (
            &t.synced,
            case(
                "export to central",
                "center-a",
                vec!["export", "--out", "{w}/up"],
                Some(("central", "up")),
            ),
        ),
        (
            &t.sent_up,
            case(
                "import of results at central",
                "central",
                vec!["import", "{w}/up", "--archive", "{w}/done"],
                None,
            ),
        ),
        (
            &t.enrolled,
            case(
                "enroll",
                "center-c",
                enroll_c(fpr),
                Some(("central", "replies-C")),
            ),
        ),
        (
            &t.replied,
            case(
                "import of an enrollment reply at central",
                "central",
                vec!["import", "{w}/replies-C", "--archive", "{w}/done"],
                None,
            ),
        ),
    ];
    let (mut total, mut findings) = (0, Vec::new());
    for (template, c) in &cases {
        let (walked, found) = walk(template, c);
        total += walked;
        findings.extend(found);
    }
    eprintln!("{total} failure(s) walked over {} command(s)", cases.len());
    assert!(findings.is_empty(), "{}", findings.join("\n"));
}
