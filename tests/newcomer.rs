//! A newcomer's first hour: warnings instead of silently empty results, help that teaches,
//! the things people expect from a command-line tool.

use std::path::{Path, PathBuf};

use crate::common::*;

fn data(rel: &str) -> PathBuf {
    fixtures().join("data").join(rel)
}

/// Write `text` to a file in the world's folder.
fn write(w: &World, name: &str, text: &str) -> PathBuf {
    let p = w.path(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Assert success with exactly one warning line on stderr containing every needle.
#[track_caller]
fn warned(o: std::process::Output, needles: &[&str]) -> String {
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "expected exit 0 with a warning\nstdout: {}\nstderr: {err}",
        stdout(&o)
    );
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("courier: warning: "))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning line expected:\n{err}");
    for n in needles {
        assert!(
            warnings[0].contains(n),
            "warning lacks {n:?}: {}",
            warnings[0]
        );
    }
    stdout(&o)
}

// ---- the wrong kind of file ------------------------------------------------------------

#[test]
fn a_results_file_given_to_logs_add_is_refused_and_the_store_is_unchanged() {
    let w = World::synced();
    let before = snapshot(&w.a, false);
    let f = data("results/ORG-001-day1.jsonl");
    let err = refused(
        courier(&w.a, &["logs", "add", s(&f)]),
        1,
        "ORG-001-day1.jsonl",
    );
    assert!(err.contains("is a result"), "{err}");
    assert!(err.contains("courier results add"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(snapshot(&w.a, false), before);
}

#[test]
fn a_log_file_given_to_results_add_is_refused_and_the_store_is_unchanged() {
    let w = World::synced();
    let before = snapshot(&w.a, false);
    let f = data("logs/ORG-001-day1.jsonl");
    let err = refused(
        courier(&w.a, &["results", "add", s(&f)]),
        1,
        "ORG-001-day1.jsonl",
    );
    assert!(err.contains("is a delivery log"), "{err}");
    assert!(err.contains("courier logs add"), "{err}");
    assert_eq!(snapshot(&w.a, false), before);
    assert_eq!(count(&w.a, "results"), 0);
}

#[test]
fn a_good_file_before_a_wrong_kind_of_file_is_not_stored_either() {
    let w = World::synced();
    let before = snapshot(&w.a, false);
    let good = data("results/ORG-001-day1.jsonl");
    let logs = data("logs/ORG-001-day1.jsonl");
    refused(
        courier(&w.a, &["results", "add", s(&good), s(&logs)]),
        1,
        "courier logs add",
    );
    assert_eq!(snapshot(&w.a, false), before);
}

#[test]
fn a_results_file_given_to_load_is_refused_and_nothing_is_loaded() {
    let w = World::enrolled();
    let before = snapshot(&w.central, false);
    let f = data("results/ORG-001-day1.jsonl");
    let err = refused(
        courier(&w.central, &["load", s(&f)]),
        1,
        "ORG-001-day1.jsonl",
    );
    assert!(err.contains("courier results add"), "{err}");
    assert_eq!(snapshot(&w.central, false), before);
}

// ---- zero records ------------------------------------------------------------------------

#[test]
fn loading_an_empty_file_warns_and_loads_nothing() {
    let w = World::enrolled();
    let empty = write(&w, "empty.jsonl", "\n\n");
    let before = count(&w.central, "entities");
    warned(
        courier(&w.central, &["load", s(&empty)]),
        &["empty.jsonl", "no records"],
    );
    assert_eq!(count(&w.central, "entities"), before);
}

#[test]
fn loading_a_folder_without_entity_files_warns() {
    let w = World::enrolled();
    let dir = w.path("nothing-here");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "not data").unwrap();
    warned(
        courier(&w.central, &["load", s(&dir)]),
        &["nothing-here", "no entity files"],
    );
}

#[test]
fn adding_an_empty_results_file_or_logs_file_warns_and_stores_nothing() {
    let w = World::synced();
    let empty = write(&w, "day2.jsonl", "");
    let before = snapshot(&w.a, false);
    warned(
        courier(&w.a, &["results", "add", s(&empty)]),
        &["day2.jsonl", "no records"],
    );
    warned(
        courier(&w.a, &["logs", "add", "--json", s(&empty)]),
        &["day2.jsonl", "no records"],
    );
    assert_eq!(snapshot(&w.a, false), before);
}

#[test]
fn an_empty_json_array_of_results_warns_like_an_empty_file() {
    let w = World::synced();
    let empty = write(&w, "none.json", "[]");
    let out = warned(
        courier(&w.a, &["results", "add", "--json", s(&empty)]),
        &["none.json"],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["added"], 0);
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(1), "{v}");
}

#[test]
fn exporting_results_or_logs_before_any_arrived_warns() {
    let w = World::synced();
    let r = w.path("results.csv");
    let l = w.path("logs.jsonl");
    warned(
        courier(
            &w.central,
            &["results", "export", "--format", "csv", "--out", s(&r)],
        ),
        &["results.csv", "no results", "courier import"],
    );
    warned(
        courier(
            &w.central,
            &["logs", "export", "--format", "jsonl", "--out", s(&l)],
        ),
        &["logs.jsonl", "no delivery logs"],
    );
}

#[test]
fn adding_real_results_does_not_warn() {
    let w = World::synced();
    let o = courier(
        &w.a,
        &["results", "add", s(&data("results/ORG-001-day1.jsonl"))],
    );
    ok_quiet(o);
}

/// Assert success with nothing on stderr.
#[track_caller]
fn ok_quiet(o: std::process::Output) -> String {
    let err = stderr(&o);
    assert!(err.is_empty(), "unexpected stderr:\n{err}");
    ok(o)
}

// ---- nothing in scope, dangling references -------------------------------------------------

#[test]
fn exporting_for_a_centre_whose_org_id_matches_no_test_centre_warns() {
    let w = World::new();
    let c = w.dir.path().join("center-x");
    ok(courier(&c, &["init", "center", "--org", "ORG-042"]));
    w.enroll(&c, "ORG-042");
    w.load_fixtures();
    let out = w.path("down");
    let o = courier(&w.central, &["export", "--to", "ORG-042", "--out", s(&out)]);
    warned(o, &["ORG-042", "nothing in scope", "organisationId"]);
    // A centre whose org matches is not warned about.
    w.enroll(&w.a, "ORG-001");
    ok_quiet(courier(
        &w.central,
        &["export", "--to", "ORG-001", "--out", s(&out)],
    ));
}

#[test]
fn an_eligibility_naming_an_unknown_delivery_or_test_taker_is_reported_at_load() {
    let w = World::enrolled();
    w.load_fixtures();
    let elig = std::fs::read_to_string(data("central.jsonl"))
        .unwrap()
        .lines()
        .find(|l| l.contains("\"id\":\"https://central.example/tao.rdf#elig-001-basic\""))
        .unwrap()
        .replace("#del-basic\"", "#del-nowhere\"")
        .replace("#tt-001a\"", "#tt-nobody\"");
    let f = write(&w, "elig.jsonl", &elig);
    let o = courier(&w.central, &["load", s(&f)]);
    warned(
        o,
        &[
            "elig-001-basic",
            "delivery https://central.example/tao.rdf#del-nowhere",
            "test-taker https://central.example/tao.rdf#tt-nobody",
        ],
    );
    // The fixture data set, whose references are all loaded, loads without a warning.
    ok_quiet(courier(&w.central, &["load", s(&data("central.jsonl"))]));
}

// ---- help that teaches ---------------------------------------------------------------------

/// The run of the binary without a home (help needs none).
fn help(path: &[String]) -> String {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(path)
        .arg("--help")
        .output()
        .expect("courier runs");
    ok(o)
}

/// The names listed under `Commands:` in a help text (without `help`).
fn subcommands(text: &str) -> Vec<String> {
    let Some(at) = text.find("\nCommands:\n") else {
        return vec![];
    };
    text[at + 11..]
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_string)
        .collect()
}

/// Every command reachable from `courier --help`, as argument paths.
fn all_commands() -> Vec<Vec<String>> {
    let mut todo = vec![vec![]];
    let mut all = vec![];
    while let Some(path) = todo.pop() {
        let text = help(&path);
        for sub in subcommands(&text) {
            let mut p = path.clone();
            p.push(sub);
            todo.push(p);
        }
        all.push(path);
    }
    all
}

/// Argument and option lines of a help text that carry no description, on the same line
/// ("  --json  Print ...") or, in long help, on the more indented lines below.
fn undescribed(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut bad = vec![];
    let mut in_args = false;
    for (i, line) in lines.iter().enumerate() {
        if line.ends_with(':') && !line.starts_with(' ') {
            in_args = matches!(*line, "Arguments:" | "Options:" | "Site options:");
            continue;
        }
        let item = line.trim_start();
        // Items are indented 2 (6 for long-only options); deeper lines are descriptions.
        let is_item = indent(line) <= 6
            && (item.starts_with('-') || item.starts_with('<') || item.starts_with('['));
        if !in_args || !is_item {
            continue;
        }
        let same_line = item
            .split_once("  ")
            .is_some_and(|(_, rest)| !rest.trim().is_empty());
        let next_line = lines
            .get(i + 1)
            .is_some_and(|n| !n.trim().is_empty() && indent(n) > indent(line));
        if !same_line && !next_line {
            bad.push(line.to_string());
        }
    }
    bad
}

#[test]
fn every_command_help_has_an_example_and_every_argument_a_description() {
    let commands = all_commands();
    assert!(commands.len() > 20, "{commands:?}");
    for path in &commands {
        let text = help(path);
        let name = format!("courier {}", path.join(" "));
        assert!(
            text.contains("\nExamples:\n  courier "),
            "{name} --help has no example:\n{text}"
        );
        let bad = undescribed(&text);
        assert!(bad.is_empty(), "{name} --help: undescribed {bad:?}\n{text}");
    }
}

#[test]
fn history_help_documents_the_default_limit() {
    let text = help(&["history".to_string()]);
    let line = text.lines().find(|l| l.contains("--limit")).unwrap();
    assert!(line.contains("default: 50"), "{line}");
}

#[test]
fn site_options_are_grouped_apart_from_a_command_own_options() {
    let text = help(&["import".to_string()]);
    let (own, site) = text
        .split_once("Site options:")
        .expect("a Site options section");
    assert!(!own.contains("--home"), "{text}");
    assert!(
        site.contains("--home") && site.contains("--passphrase-file"),
        "{text}"
    );
}

// ---- things people expect ------------------------------------------------------------------

#[test]
fn completions_are_printed_for_each_shell_and_name_the_commands() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_courier"))
            .args(["completions", shell])
            .output()
            .unwrap();
        let out = ok(o);
        for word in ["import", "export", "results", "home"] {
            assert!(out.contains(word), "{shell} completion lacks {word}");
        }
    }
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn man_writes_a_page_for_courier_and_each_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(["man", "--out", s(&out)])
        .output()
        .unwrap();
    ok(o);
    let page = std::fs::read_to_string(out.join("courier.1")).unwrap();
    assert!(page.contains(".TH courier"), "{page}");
    let import = std::fs::read_to_string(out.join("courier-import.1")).unwrap();
    assert!(import.contains("archive"), "{import}");
    assert!(out.join("courier-results-export.1").exists());
}

#[test]
fn an_existing_output_file_is_not_replaced_without_force() {
    let w = World::synced();
    ok(courier(
        &w.a,
        &["results", "add", s(&data("results/ORG-001-day1.jsonl"))],
    ));
    for f in w.export_up(&w.a, "up", &[]) {
        ok(courier(&w.central, &["import", s(&f)]));
    }
    // An enrollment file someone keeps beside the exports.
    let precious = write(&w, "enroll-ORG-009.json", "{\"keep\": true}\n");
    for what in ["results", "logs"] {
        let err = refused(
            courier(
                &w.central,
                &[what, "export", "--format", "csv", "--out", s(&precious)],
            ),
            2,
            "enroll-ORG-009.json",
        );
        assert!(err.contains("--force"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert_eq!(
            std::fs::read_to_string(&precious).unwrap(),
            "{\"keep\": true}\n"
        );
    }
    let key = w.path("central.asc");
    ok(courier(&w.central, &["keys", "export", "--out", s(&key)]));
    refused(
        courier(&w.central, &["keys", "export", "--out", s(&key)]),
        2,
        "--force",
    );
    // With --force the file is replaced: 4 results, one CSV row per variable (10 each).
    let out = ok(courier(
        &w.central,
        &[
            "results",
            "export",
            "--format",
            "csv",
            "--out",
            s(&precious),
            "--force",
        ],
    ));
    assert!(out.contains("wrote 4 result(s)"), "{out}");
    let csv = std::fs::read_to_string(&precious).unwrap();
    assert_eq!(csv.lines().count(), 1 + 40, "{csv}");
}

#[test]
fn a_max_file_size_above_the_fat32_limit_warns_and_still_exports() {
    let w = World::synced();
    ok(courier(
        &w.a,
        &["results", "add", s(&data("results/ORG-001-day1.jsonl"))],
    ));
    let out = w.path("up");
    let o = courier(&w.a, &["export", "--out", s(&out), "--max-file-size", "5G"]);
    warned(o, &["FAT32", "4000M"]);
    assert_eq!(bundles_in(&out).len(), 1);
    // Within the limit: no warning.
    ok_quiet(courier(
        &w.a,
        &[
            "export",
            "--out",
            s(&w.path("up2")),
            "--max-file-size",
            "4000M",
        ],
    ));
}

#[test]
fn the_demo_refuses_a_non_empty_folder_before_doing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("thesis.odt");
    std::fs::write(&keep, "years of work").unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(["demo", "--dir", s(dir.path())])
        .output()
        .unwrap();
    let err = refused(o, 2, "not empty");
    assert!(err.contains(s(dir.path())), "{err}");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["thesis.odt"]);
}

#[test]
fn the_demo_brings_its_own_data_set_and_runs_from_any_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(["demo", "--dir", s(&demo)])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    let text = ok(o);
    assert!(text.trim_end().ends_with("demo complete"), "{text}");
    // Its words are explained once, and every detail line under a numbered step names the
    // site it happens at.
    for word in ["touched:", "a log batch is", "a set is"] {
        assert_eq!(text.matches(word).count(), 1, "{word}: {text}");
    }
    let details: Vec<&str> = text.lines().filter(|l| l.starts_with("    ")).collect();
    assert!(details.len() > 20, "{text}");
    for l in &details {
        let site = l.trim_start();
        assert!(
            site.starts_with("[central] ") || site.starts_with("[ORG-00"),
            "no site on: {l}"
        );
    }
    // The data set was written out of the binary, byte for byte, not read from the clone.
    let written = std::fs::read(demo.join("fixtures/data/central.jsonl")).unwrap();
    let original =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/data/central.jsonl"))
            .unwrap();
    assert_eq!(written, original);
    assert!(demo
        .join("fixtures/qti/valid/2.1-basic-Basic.zip")
        .is_file());
}

#[test]
fn list_prints_a_readable_table_by_default_and_the_wire_shape_with_json() {
    let w = World::synced();
    let text = ok(courier(&w.a, &["list", "test-taker"]));
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("TYPE") && lines[0].contains("LABEL"),
        "{text}"
    );
    assert_eq!(lines.len(), 1 + 4, "ORG-001 holds 4 test takers:\n{text}");
    assert!(lines.iter().any(|l| l.contains(" tt-001a ")), "{text}");
    assert!(!text.contains("https://"), "ids are shortened:\n{text}");
    assert!(text.contains("(encrypted: add --decrypt)"), "{text}");
    let decrypted = ok(courier(&w.a, &["list", "test-taker", "--decrypt"]));
    assert!(decrypted.contains("Katherine Johnson"), "{decrypted}");
    let json = list(&w.a, &["test-taker"]);
    assert_eq!(json.len(), 4);
    assert!(json
        .iter()
        .all(|e| e["id"].as_str().unwrap().starts_with("https://")));
}

#[test]
fn fingerprints_are_printed_in_groups_of_four_and_read_in_either_form() {
    let w = World::new();
    let fpr = w.fingerprint(&w.central);
    let text = ok(courier(&w.central, &["keys", "show"]));
    let line = text.lines().find(|l| l.starts_with("fingerprint")).unwrap();
    let shown = line.trim_start_matches("fingerprint").trim();
    assert_eq!(shown.split_whitespace().count(), 10, "{line}");
    assert_eq!(shown.split_whitespace().collect::<String>(), fpr, "{line}");
    assert!(
        shown.contains("  "),
        "a wider gap in the middle, as GnuPG: {line}"
    );
    // The grouped form, as read out, is accepted by enroll.
    let file = w.path("enroll.json");
    ok(courier(
        &w.central,
        &[
            "center",
            "add",
            "ORG-001",
            "--label",
            "A",
            "--out",
            s(&file),
        ],
    ));
    ok(courier(
        &w.a,
        &[
            "enroll",
            s(&file),
            "--expect-fingerprint",
            shown,
            "--out",
            s(&w.path("reply")),
        ],
    ));
}

// ---- feedback on long work -----------------------------------------------------------------

/// A results file of `n` results for ORG-001: the fixture's first result under new
/// execution ids.
fn many_results(w: &World, name: &str, n: usize) -> PathBuf {
    let fixture = std::fs::read_to_string(data("results/ORG-001-day1.jsonl")).unwrap();
    let first = fixture.lines().next().unwrap();
    let lines: Vec<String> = (0..n)
        .map(|i| first.replace("i1764144000001", &format!("progress{i:06}")))
        .collect();
    write(w, name, &(lines.join("\n") + "\n"))
}

/// The plain progress lines on stderr.
fn progress_lines(o: &std::process::Output) -> Vec<String> {
    stderr(o)
        .lines()
        .filter(|l| l.starts_with("courier: progress:"))
        .map(String::from)
        .collect()
}

/// Without a terminal, long work prints a plain line now and then (here every 100 records,
/// set by COURIER_PROGRESS_EVERY so that the count does not depend on speed): results add,
/// the centre's export, central's import and results export; --quiet prints none.
#[test]
fn long_work_prints_progress_lines_without_a_terminal_and_none_with_quiet() {
    let w = World::synced();
    let every = [("COURIER_PROGRESS_EVERY", "100")];
    let f = many_results(&w, "many.jsonl", 250);
    let o = courier_env(&w.a, &["results", "add", s(&f)], &every);
    let lines = progress_lines(&o);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("many.jsonl: 100 record(s)"), "{lines:?}");
    assert!(lines[1].contains("many.jsonl: 200 record(s)"), "{lines:?}");
    assert!(ok(o).contains("250 added"));

    let up = w.path("up");
    let o = courier_env(&w.a, &["export", "--out", s(&up)], &every);
    assert_eq!(progress_lines(&o).len(), 2, "{}", stderr(&o));
    ok(o);
    let o = courier_env(&w.central, &["import", s(&up)], &every);
    assert_eq!(progress_lines(&o).len(), 2, "{}", stderr(&o));
    ok(o);
    let out = w.path("results.jsonl");
    let o = courier_env(
        &w.central,
        &["results", "export", "--format", "jsonl", "--out", s(&out)],
        &every,
    );
    let lines = progress_lines(&o);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[1].contains("results.jsonl: 200 record(s)"),
        "{lines:?}"
    );
    ok(o);

    // --quiet: the same work, no progress at all.
    let g = many_results(&w, "again.jsonl", 250);
    let o = courier_env(&w.a, &["--quiet", "results", "add", s(&g)], &every);
    assert_eq!(progress_lines(&o), Vec::<String>::new());
    ok_quiet(o);
}

/// A command that finds the store held by another courier command says so after a second,
/// keeps waiting, and succeeds once the store is free.
#[test]
fn a_command_waiting_for_a_busy_store_says_so_and_goes_on_when_it_is_free() {
    use std::io::BufRead;
    let w = World::synced();
    let f = many_results(&w, "few.jsonl", 3);
    let holder = rusqlite::Connection::open(w.a.join("store.sqlite")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(["--home", s(&w.a), "results", "add", s(&f)])
        .env_remove("COURIER_HOME")
        .env("COURIER_BUSY_TIMEOUT_MS", "300000")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read stderr until the notice: the command is now waiting, the store still held.
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let notice = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|l| l.contains("waiting for another courier command"))
        .expect("a notice before the command ends");
    assert!(notice.contains("store.sqlite"), "names the store: {notice}");
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{rest:?}");
    assert!(stdout(&o).contains("3 added"), "{}", stdout(&o));
    assert!(
        !rest.iter().any(|l| l.contains("waiting")),
        "said once: {rest:?}"
    );
}
