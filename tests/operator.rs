//! A careless operator and a hostile file system: duplicate zip entries, control characters,
//! permissions, litter from crashes, failures that must not pass in silence, batches from Macs.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;

/// The first result of the fixture exam day at ORG-001, as JSON.
fn fixture_result() -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join("data/results/ORG-001-day1.jsonl")).unwrap();
    serde_json::from_str(text.lines().next().unwrap()).unwrap()
}

/// A file that is not a bundle, named `name` in `dir`.
fn junk(dir: &Path, name: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        junk").unwrap();
    p
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

// ---- 1. QTI zips with two entries of the same name -------------------------------------

#[test]
fn a_package_with_two_entries_of_the_same_name_is_refused() {
    let zip = fixtures().join("qti/fail_duplicate_entry.zip");
    let dir = tempfile::tempdir().unwrap();
    let err = refused(
        courier(dir.path(), &["package", "check", p(&zip)]),
        1,
        "Q01/qti.xml: appears more than once in the archive",
    );
    assert!(err.contains("fail_duplicate_entry.zip"), "{err}");
}

#[test]
fn central_refuses_to_load_a_delivery_whose_package_holds_a_duplicate_entry() {
    let w = World::enrolled();
    let before = snapshot(&w.central, false);
    // The fixture delivery, pointing at the zip with the duplicate entry.
    let text = std::fs::read_to_string(fixtures().join("data/central.jsonl")).unwrap();
    let delivery = text
        .lines()
        .find(|l| l.contains("\"type\":\"delivery\""))
        .unwrap()
        .replace(
            "../qti/valid/2.1-basic-Basic.zip",
            p(&fixtures().join("qti/fail_duplicate_entry.zip")),
        );
    let file = w.path("delivery.jsonl");
    std::fs::write(&file, format!("{delivery}\n")).unwrap();
    refused(
        courier(&w.central, &["load", p(&file)]),
        1,
        "appears more than once in the archive",
    );
    assert_eq!(snapshot(&w.central, false), before);
    assert!(
        std::fs::read_dir(w.central.join("packages"))
            .unwrap()
            .next()
            .is_none(),
        "no package file was kept"
    );
}

// ---- 2. Nothing from a bundle reaches a terminal raw ----------------------------------

/// A dishonest centre's execution id that would print a fake progress line and clear the
/// screen if it reached a terminal raw.
const CRAFTED_ID: &str =
    "i1\n[2/2] stick/honest.courier: applied: 9 results stored\u{1b}[2K\r\u{9b}1A";

#[test]
fn a_crafted_execution_id_cannot_forge_a_progress_line_at_central() {
    let w = World::synced();
    let forger = Forger::new(&w.a);
    let honest = fixture_result();
    let plain = serde_json::to_vec(&honest).unwrap();
    let mut crafted = honest.clone();
    crafted["deliveryExecutionId"] = CRAFTED_ID.into();
    // The metadata claims the crafted id; the sealed result keeps the honest one, so central
    // quarantines it and names the id in its report.
    let sealed = forger.seal_result_bytes(&crafted, &plain, 1, false);
    let stick = w.path("stick");
    forger.results_bundle(
        &stick.join("evil.courier"),
        &forger.claim(1),
        &Forger::result_entries(&[sealed]),
    );

    let o = courier(&w.central, &["import", p(&stick)]);
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(3), "quarantined: {out}{err}");
    for text in [&out, &err] {
        assert!(!text.contains('\u{1b}') && !text.contains('\r') && !text.contains('\u{9b}'));
        assert!(
            !text.lines().any(|l| l.starts_with("[2/2]")),
            "a forged progress line was printed: {text}"
        );
    }
    assert_eq!(
        out.lines().count(),
        2,
        "one line for one file, then the summary: {out}"
    );
    assert!(
        out.lines()
            .nth(1)
            .unwrap()
            .starts_with("summary: 1 file(s)"),
        "{out}"
    );
    assert!(out.contains("i1\\n[2/2] stick/honest.courier"), "{out}");
    assert!(out.contains("\\e[2K\\r\\u{9b}1A"), "{out}");

    // The sync history shows the same report, escaped as well.
    let history = ok(courier(&w.central, &["history"]));
    assert!(!history.contains('\u{1b}') && !history.lines().any(|l| l.starts_with("[2/2]")));
    assert!(history.contains("i1\\n[2/2]"), "{history}");

    // JSON output stays JSON: the id comes back exactly as sent.
    let json: serde_json::Value =
        serde_json::from_str(&ok(courier(&w.central, &["history", "--json"]))).unwrap();
    assert!(json.to_string().contains("i1\\n[2/2] stick/honest.courier"));
    assert!(json
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["report"].as_str().unwrap_or("").contains(CRAFTED_ID)));
}

#[test]
fn a_crafted_execution_id_is_escaped_in_the_centres_results_list() {
    let w = World::synced();
    let mut result = fixture_result();
    result["deliveryExecutionId"] = CRAFTED_ID.into();
    result["details"]["identifier"] = CRAFTED_ID.into();
    let file = w.path("results.jsonl");
    std::fs::write(&file, format!("{result}\n")).unwrap();
    let o = courier(&w.a, &["results", "add", p(&file)]);
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!all.contains('\u{1b}'), "{all}");

    let list = courier(&w.a, &["results", "list"]);
    let out = ok(list);
    assert!(!out.contains('\u{1b}') && !out.lines().any(|l| l.starts_with("[2/2]")));
    assert_eq!(out.lines().count(), 1, "{out}");
    let rows = results_list(&w.a);
    assert_eq!(rows[0]["deliveryExecutionId"], CRAFTED_ID);
}

// ---- 3. Files at rest -----------------------------------------------------------------

#[test]
fn homes_are_private_and_every_file_inside_is_readable_by_its_owner_only() {
    let w = World::synced();
    // A refusal writes the audit trail.
    let bad = junk(&w.path("bad"), "bad.courier");
    refused(courier(&w.central, &["import", p(&bad)]), 1, "bad.courier");
    assert!(w.central.join("audit.jsonl").exists());
    for home in [&w.central, &w.a, &w.b] {
        assert_eq!(mode(home), 0o700, "{}", home.display());
        assert_eq!(mode(&home.join("packages")), 0o700);
        let files = files_under(home);
        assert!(files.iter().any(|f| f.starts_with(home.join("packages"))));
        for f in files {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
    }
}

#[test]
fn a_home_or_store_readable_by_others_is_warned_about_on_one_line() {
    let w = World::new();
    let quiet = courier(&w.central, &["keys", "show"]);
    assert!(stderr(&quiet).is_empty(), "{}", stderr(&quiet));

    chmod(&w.central, 0o755);
    let o = courier(&w.central, &["keys", "show"]);
    assert!(o.status.success());
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("warning") && err.contains("can be read by other users"));
    assert!(err.contains(p(&w.central)) && err.contains("755"), "{err}");

    chmod(&w.central, 0o700);
    chmod(&w.central.join("store.sqlite"), 0o644);
    let err = stderr(&courier(&w.central, &["keys", "show"]));
    assert!(err.contains("store.sqlite") && err.contains("644"), "{err}");
}

// ---- 4. A crash never leaves litter ----------------------------------------------------

#[test]
fn stale_part_files_left_by_a_killed_command_are_removed_by_the_next_writer() {
    let w = World::enrolled();
    // A kill during package spooling at central, and during an export onto the stick.
    let spool = w.central.join("packages/.courier-Ab12Cd.part");
    std::fs::write(&spool, vec![7u8; 1 << 20]).unwrap();
    let stick = w.path("down-ORG-001");
    std::fs::create_dir_all(&stick).unwrap();
    let cut = stick.join(".courier-Zz99Yy.part");
    std::fs::write(&cut, b"half a bundle").unwrap();

    w.load_fixtures();
    assert!(!spool.exists(), "the stale spool file is gone");
    let files = w.export_down("ORG-001", "down-ORG-001");
    assert!(!cut.exists(), "the stale part on the stick is gone");
    assert_eq!(files.len(), 1);
    let left: Vec<PathBuf> = files_under(&w.central)
        .into_iter()
        .chain(files_under(&stick))
        .filter(|f| f.to_string_lossy().ends_with(".part"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // At the centre, a kill while the data bundle's packages were spooled.
    let at_centre = w.a.join("packages/.courier-Qq77Rr.part");
    std::fs::write(&at_centre, vec![1u8; 4096]).unwrap();
    ok(courier(&w.a, &["import", p(&files[0])]));
    assert!(!at_centre.exists());
}

// ---- 5. Nothing lost in silence --------------------------------------------------------

#[test]
fn json_output_to_a_full_disk_exits_non_zero() {
    let w = World::new();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(["--home", p(&w.central), "keys", "show", "--json"])
        .stdout(Stdio::from(full))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5));
    let err = stderr(&o);
    assert!(err.contains("standard output: write failed"), "{err}");
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let w = World::synced();
    let mut child = Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(["--home", p(&w.central), "list", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader went away, like `| head -0`
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn an_unreadable_sequence_counter_is_an_error_not_a_restart_at_one() {
    let w = World::synced();
    let center = &w.a;
    ok(courier(
        center,
        &[
            "results",
            "add",
            p(&fixtures().join("data/results/ORG-001-day1.jsonl")),
        ],
    ));
    w.export_up(center, "up-1", &[]);
    {
        let conn = rusqlite::Connection::open(center.join("store.sqlite")).unwrap();
        conn.execute("UPDATE meta SET value = 'garbled' WHERE key = 'up_seq'", [])
            .unwrap();
    }
    let before = snapshot(center, true);
    let out = w.path("up-2");
    let err = refused(
        courier(center, &["export", "--out", p(&out), "--resend-all"]),
        5,
        "counter 'up_seq' holds \"garbled\"",
    );
    assert!(err.contains("store.sqlite"), "{err}");
    assert_eq!(snapshot(center, true), before);
    assert!(bundles_in(&out).is_empty());
}

#[test]
fn stored_properties_that_do_not_parse_are_an_error_naming_the_entity() {
    let w = World::enrolled();
    w.load_fixtures();
    let id = "https://central.example/tao.rdf#del-basic";
    {
        let conn = rusqlite::Connection::open(w.central.join("store.sqlite")).unwrap();
        let n = conn
            .execute(
                "UPDATE entities SET properties = '{not json' WHERE id = ?1",
                [id],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    refused(courier(&w.central, &["list", "delivery"]), 5, id);
    let before = snapshot(&w.central, true);
    let out = w.path("down");
    refused(
        courier(&w.central, &["export", "--to", "ORG-001", "--out", p(&out)]),
        5,
        "properties are not valid JSON",
    );
    assert_eq!(snapshot(&w.central, true), before);
    assert!(
        bundles_in(&out).is_empty(),
        "no bundle with emptied properties"
    );
}

#[test]
fn an_audit_trail_that_cannot_be_written_is_reported() {
    let w = World::enrolled();
    // audit.jsonl is a folder: no line can be appended.
    std::fs::create_dir(w.central.join("audit.jsonl")).unwrap();
    let before = snapshot(&w.central, true);
    let bad = junk(&w.path("stick"), "bad.courier");
    let err = refused(
        courier(&w.central, &["import", p(&bad)]),
        5,
        "not a courier bundle",
    );
    assert!(
        err.contains("could not be written to the audit trail") && err.contains("audit.jsonl"),
        "{err}"
    );
    assert_eq!(snapshot(&w.central, true), before);
}

/// A folder under `root` nested so deep that its full path is longer than PATH_MAX (4096):
/// no one, root included, can list it by its path. Built with short names, then each folder
/// renamed to a long name from the bottom up, so no single call needs a long path.
fn too_deep_to_read(root: &Path) -> PathBuf {
    let levels = 20;
    let short = vec!["d".to_string(); levels];
    let at = |names: &[String]| names.iter().fold(root.to_path_buf(), |p, n| p.join(n));
    std::fs::create_dir_all(at(&short)).unwrap();
    junk(&at(&short), "beyond.courier");
    let mut names = short;
    for level in (0..levels).rev() {
        let from = at(&names[..=level]);
        names[level] = "d".repeat(250);
        std::fs::rename(&from, at(&names[..=level])).unwrap();
    }
    root.join(&names[0])
}

#[test]
fn an_unreadable_subfolder_of_a_batch_is_reported_not_skipped() {
    let w = World::synced();
    let stick = w.path("stick");
    let deep = too_deep_to_read(&stick);
    let files = w.export_up(&w.a, "up", &[]);
    std::fs::copy(&files[0], stick.join("up.courier")).unwrap();
    let o = courier(&w.central, &["import", p(&stick)]);
    assert!(stdout(&o).contains("up.courier: applied"), "{}", stdout(&o));
    let err = refused(o, 3, "folder not read");
    assert!(err.contains(p(&deep)), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

// ---- 6. Batches as operators meet them -------------------------------------------------

#[test]
fn a_stick_written_by_a_mac_imports_with_its_appledouble_files_skipped() {
    let w = World::synced();
    ok(courier(
        &w.a,
        &[
            "results",
            "add",
            p(&fixtures().join("data/results/ORG-001-day1.jsonl")),
        ],
    ));
    let files = w.export_up(&w.a, "stick", &["--max-file-size", "64K"]);
    assert!(!files.is_empty());
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        junk(f.parent().unwrap(), &format!("._{name}"));
    }
    let stick = w.path("stick");
    let checked: serde_json::Value =
        serde_json::from_str(&ok(courier(&w.central, &["verify", p(&stick), "--json"]))).unwrap();
    courier::schema::check("file-reports", &checked).expect("file-reports schema");
    let statuses: Vec<&str> = checked
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "skipped").count(),
        files.len()
    );
    assert_eq!(statuses.iter().filter(|s| **s == "ok").count(), files.len());
    let out = ok(courier(&w.central, &["import", p(&stick)]));
    assert_eq!(
        out.lines().filter(|l| l.contains(": skipped: ")).count(),
        files.len(),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.contains(": applied: ")).count(),
        files.len(),
        "{out}"
    );
    assert_eq!(count(&w.central, "central_results"), 4);
    // Again: everything already applied, still 0.
    let again = ok(courier(&w.central, &["import", p(&stick)]));
    assert!(again.contains("already-applied"), "{again}");
}

#[test]
fn a_batch_exits_3_when_some_files_applied_and_others_were_refused() {
    let w = World::synced();
    let files = w.export_up(&w.a, "stick", &[]);
    junk(&w.path("stick"), "broken.courier");
    let o = courier(&w.central, &["import", p(&w.path("stick"))]);
    let err = refused(o, 3, "broken.courier: not a courier bundle");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(files.len(), 1);
}

#[test]
fn a_batch_exits_1_when_every_file_was_refused() {
    let w = World::synced();
    let stick = w.path("stick");
    junk(&stick, "one.courier");
    junk(&stick, "two.courier");
    let before = snapshot(&w.central, false);
    let err = refused(
        courier(&w.central, &["import", p(&stick)]),
        1,
        "one.courier: not a courier bundle",
    );
    assert!(err.contains("two.courier"), "{err}");
    assert_eq!(snapshot(&w.central, false), before);
}

#[test]
fn a_batch_of_already_applied_files_exits_0() {
    let w = World::synced();
    let files = w.export_up(&w.a, "stick", &[]);
    ok(courier(&w.central, &["import", p(&files[0])]));
    let out = ok(courier(&w.central, &["import", p(&w.path("stick"))]));
    assert!(out.contains("already-applied"), "{out}");
}

// ---- 7. Missing input is bad input, not an internal failure ---------------------------

#[test]
fn a_missing_bundle_file_is_refused_naming_it() {
    let w = World::enrolled();
    let missing = w.path("nowhere/lost.courier");
    let before = snapshot(&w.central, false);
    let err = refused(
        courier(&w.central, &["import", p(&missing)]),
        1,
        "No such file",
    );
    assert!(err.contains(p(&missing)), "{err}");
    refused(
        courier(&w.central, &["verify", p(&missing)]),
        1,
        p(&missing),
    );
    refused(
        courier(&w.central, &["inspect", p(&missing)]),
        1,
        p(&missing),
    );
    assert_eq!(snapshot(&w.central, false), before);
}

#[test]
fn a_folder_given_to_inspect_is_refused_naming_it() {
    let w = World::enrolled();
    let dir = w.path("stick");
    std::fs::create_dir_all(&dir).unwrap();
    let err = refused(
        courier(&w.central, &["inspect", p(&dir)]),
        1,
        "it is a folder",
    );
    assert!(err.contains(p(&dir)), "{err}");
}

#[test]
fn a_missing_passphrase_file_is_refused_naming_it() {
    let w = World::new();
    let missing = w.path("pass.txt");
    let err = refused(
        courier(
            &w.central,
            &["--passphrase-file", p(&missing), "keys", "show"],
        ),
        1,
        "No such file",
    );
    assert!(err.contains(p(&missing)), "{err}");
}

#[test]
fn a_missing_entity_file_is_refused_naming_it() {
    let w = World::enrolled();
    let missing = w.path("entities.jsonl");
    let err = refused(courier(&w.central, &["load", p(&missing)]), 1, p(&missing));
    assert!(err.contains("No such file"), "{err}");
}

#[test]
fn a_missing_results_file_or_enrollment_file_is_refused_naming_it() {
    let w = World::enrolled();
    let missing = w.path("results-day2.jsonl");
    let before = snapshot(&w.a, true);
    let err = refused(
        courier(&w.a, &["results", "add", p(&missing)]),
        1,
        p(&missing),
    );
    assert!(err.contains("No such file"), "{err}");
    assert_eq!(snapshot(&w.a, true), before);

    let fresh = w.path("center-c");
    ok(courier(&fresh, &["init", "center", "--org", "ORG-003"]));
    let gone = w.path("enroll-ORG-003.json");
    refused(
        courier(
            &fresh,
            &[
                "enroll",
                p(&gone),
                "--expect-fingerprint",
                "00",
                "--out",
                p(&w.path("r")),
            ],
        ),
        1,
        p(&gone),
    );
}
