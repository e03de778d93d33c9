//! The README's walkthrough ("A sync, step by step") runs as written: its commands are read
//! from README.md and run in order, in a folder holding a copy of examples/, so the README
//! cannot drift from what courier does.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::*;

fn project() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The lines of the first ```sh block after the heading `heading` in README.md.
fn sh_block(readme: &str, heading: &str) -> Vec<String> {
    let at = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README.md has no section {heading:?}"));
    let rest = &readme[at..];
    let start = rest.find("```sh\n").expect("a ```sh block in the section") + 6;
    let end = rest[start..].find("```").expect("the block ends") + start;
    rest[start..end].lines().map(str::to_string).collect()
}

/// Split a shell command line into words: double and single quotes group words, an unquoted
/// `#` starts a comment. Anything fancier (variables, pipes) is refused, so the walkthrough
/// stays copy-and-paste simple.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '#') if !in_word => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '$' | '|' | '&' | ';' | '`') => {
                panic!("README walkthrough line uses shell syntax tests/readme.rs does not run: {line}")
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    assert!(quote.is_none(), "unbalanced quote in README line: {line}");
    if in_word {
        out.push(cur);
    }
    for w in &out {
        let placeholder = w.len() > 2
            && w.starts_with('<')
            && w.ends_with('>')
            && w[1..w.len() - 1]
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_');
        assert!(
            placeholder || !w.contains(['<', '>']),
            "README walkthrough line redirects, which tests/readme.rs does not run: {line}"
        );
    }
    out
}

/// Run the courier binary with `args` in `cwd`, exactly as a shell would.
fn run_in(cwd: &Path, args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(args)
        .current_dir(cwd)
        .env_remove("COURIER_HOME")
        .env_remove("COURIER_PASSPHRASE")
        .output()
        .expect("courier runs")
}

/// Lines of a JSON Lines file that hold a record.
fn records(file: &Path) -> usize {
    std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

/// Every command of the walkthrough succeeds without a warning, in order; afterwards central
/// holds every example result and log, decrypted, and the centre holds the example's test
/// takers with their names readable.
#[test]
fn the_readme_walkthrough_runs_as_written_with_the_example_data() {
    let readme = std::fs::read_to_string(project().join("README.md")).unwrap();
    let lines = sh_block(&readme, "## A sync, step by step");
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    copy_dir(&project().join("examples"), &cwd.join("examples"));

    let mut ran = 0;
    let mut listed = String::new();
    for line in &lines {
        let mut args = words(line);
        if args.is_empty() {
            continue;
        }
        assert_eq!(
            args[0], "courier",
            "README walkthrough line is not a courier command: {line}"
        );
        args.remove(0);
        // Placeholders a person fills in from an earlier command's output.
        for a in args.iter_mut() {
            if a.starts_with('<') && a.ends_with('>') {
                let site = match a.as_str() {
                    "<FPR>" | "<CENTRAL_FPR>" => "central",
                    "<CENTRE_FPR>" | "<CENTER_FPR>" => "box",
                    other => panic!("README placeholder {other} unknown to tests/readme.rs"),
                };
                *a = fingerprint_of(&cwd.join(site));
            }
        }
        let o = run_in(cwd, &args);
        let out = ok_in(o, line);
        if args.iter().any(|a| a == "list") {
            listed = out;
        }
        ran += 1;
    }
    assert!(ran >= 15, "only {ran} commands found in the walkthrough");

    // The centre holds the example's test takers, their names decrypted.
    let entities = std::fs::read_to_string(cwd.join("examples/entities.jsonl")).unwrap();
    let takers: Vec<Value> = entities
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "test-taker")
        .collect();
    assert!(!takers.is_empty());
    for t in &takers {
        let label = t["properties"]["http://www.w3.org/2000/01/rdf-schema#label"]
            .as_str()
            .unwrap();
        assert!(listed.contains(label), "{label} not listed:\n{listed}");
    }

    // Central holds every example result and log: one CSV row per variable, each execution.
    let want_results = records(&cwd.join("examples/results.jsonl"));
    let want_logs = records(&cwd.join("examples/delivery-logs.jsonl"));
    let central = cwd.join("central");
    let r = cwd.join("check-results.jsonl");
    let l = cwd.join("check-logs.jsonl");
    ok(courier(
        &central,
        &[
            "results",
            "export",
            "--format",
            "jsonl",
            "--out",
            r.to_str().unwrap(),
        ],
    ));
    ok(courier(
        &central,
        &[
            "logs",
            "export",
            "--format",
            "jsonl",
            "--out",
            l.to_str().unwrap(),
        ],
    ));
    assert_eq!(records(&r), want_results);
    assert_eq!(records(&l), want_logs);
    let csv = std::fs::read_to_string(cwd.join("results.csv")).unwrap();
    for line in std::fs::read_to_string(cwd.join("examples/results.jsonl"))
        .unwrap()
        .lines()
    {
        let v: Value = serde_json::from_str(line).unwrap();
        let id = v["deliveryExecutionId"].as_str().unwrap();
        assert!(csv.contains(id), "{id} not in results.csv");
    }

    // The last down bundle carries the acknowledgements: applied, every result is synchronized.
    ok(run_in(
        cwd,
        &["--home", "box", "import", "stick/down/"].map(String::from),
    ));
    let rows: Value = serde_json::from_str(&ok(run_in(
        cwd,
        &["--home", "box", "results", "list", "--json"].map(String::from),
    )))
    .unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), want_results);
    assert!(
        rows.iter().all(|r| r["syncStatus"] == "synchronized"),
        "{rows:?}"
    );
}

fn fingerprint_of(home: &Path) -> String {
    let v: Value = serde_json::from_str(&ok(courier(home, &["keys", "show", "--json"]))).unwrap();
    v["fingerprint"].as_str().unwrap().to_string()
}

/// Assert a README command succeeded without a warning; returns stdout.
#[track_caller]
fn ok_in(o: Output, line: &str) -> String {
    let err = stderr(&o);
    assert!(
        o.status.success(),
        "README command failed ({:?}): {line}\nstdout: {}\nstderr: {err}",
        o.status.code(),
        stdout(&o)
    );
    assert!(
        !err.contains("warning"),
        "README command warned: {line}\n{err}"
    );
    stdout(&o)
}

#[test]
fn readme_command_lines_split_like_a_shell() {
    assert_eq!(
        words(r#"courier --home central init central --name "Central" # note"#),
        ["courier", "--home", "central", "init", "central", "--name", "Central"]
    );
    assert_eq!(
        words("courier center add ORG-042 --label \"Lycée X\" --out e.json"),
        ["courier", "center", "add", "ORG-042", "--label", "Lycée X", "--out", "e.json"]
    );
    assert!(words("#   prints central's fingerprint").is_empty());
    assert_eq!(
        words("courier enroll f --expect-fingerprint <FPR> --out up/"),
        [
            "courier",
            "enroll",
            "f",
            "--expect-fingerprint",
            "<FPR>",
            "--out",
            "up/"
        ]
    );
}
