//! The command line as an operator meets it: help, usage errors (exit 2), sites that cannot
//! be used (exit 4: missing, existing, protected, too new, wrong role), keys, and a home
//! folder copied elsewhere.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::common::*;

/// Run courier without --home and with stdin closed.
fn bare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(args)
        .env_remove("COURIER_HOME")
        .env_remove("COURIER_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .expect("courier runs")
}

/// The subcommands a help text lists (without `help`), with their one-line descriptions.
fn subcommands(help: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in help.lines() {
        if line.trim_end() == "Commands:" {
            inside = true;
            continue;
        }
        if inside {
            if !line.starts_with("  ") {
                break;
            }
            let line = line.trim();
            let (name, desc) = line.split_once(' ').unwrap_or((line, ""));
            if name != "help" {
                out.push((name.to_string(), desc.trim().to_string()));
            }
        }
    }
    out
}

/// `--help` of the main command and, recursively, of every subcommand exits 0, shows its
/// usage line, and explains what it does; every command is listed with a description.
#[test]
fn help_of_every_command_exits_0_and_explains() {
    let mut queue: Vec<Vec<String>> = vec![vec![]];
    let mut seen = 0;
    while let Some(path) = queue.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let o = bare(&args);
        let help = stdout(&o);
        let shown = format!("courier {}", path.join(" "));
        assert_eq!(o.status.code(), Some(0), "{shown} --help: {}", stderr(&o));
        assert!(
            help.contains(&format!("Usage: {}", shown.trim_end())),
            "{shown}: no usage line:\n{help}"
        );
        let first = help.lines().next().unwrap_or("");
        assert!(
            first.len() > 10 && !first.starts_with("Usage"),
            "{shown}: no description first:\n{help}"
        );
        for (name, desc) in subcommands(&help) {
            assert!(
                !desc.is_empty(),
                "{shown} lists {name} without a description"
            );
            let mut next = path.clone();
            next.push(name);
            queue.push(next);
        }
        seen += 1;
    }
    assert!(seen >= 28, "only {seen} help texts found");

    let main = ok(bare(&["--help"]));
    for word in [
        "Exit codes",
        "--home",
        "init",
        "enroll",
        "import",
        "verify",
        "inspect",
        "export",
    ] {
        assert!(
            main.contains(word),
            "main help does not mention {word}:\n{main}"
        );
    }
    assert!(ok(bare(&["enroll", "--help"])).contains("--expect-fingerprint"));
    assert!(ok(bare(&["import", "--help"])).contains("--allow-rollback"));
    assert!(ok(bare(&["export", "--help"])).contains("--max-file-size"));
}

/// Usage errors exit 2 with a message on stderr, before and after a site is opened, and
/// change nothing.
#[test]
fn usage_errors_exit_2() {
    let w = World::new();
    let empty = w.path("empty-folder");
    std::fs::create_dir_all(&empty).unwrap();
    let central_before = snapshot(&w.central, true);
    let a_before = snapshot(&w.a, true);
    let cases: Vec<(&Path, Vec<&str>, &str)> = vec![
        (&w.a, vec![], "Usage"),
        (&w.a, vec!["frobnicate"], "frobnicate"),
        (&w.a, vec!["import"], "<PATHS>"),
        (&w.a, vec!["import", "--bogus", "x"], "--bogus"),
        (&w.central, vec!["init", "central"], "--name"),
        (&w.a, vec!["history", "--limit", "many"], "many"),
        (
            &w.central,
            vec!["results", "export", "--format", "xml", "--out", "x"],
            "xml",
        ),
        (&w.central, vec!["export", "--out", s(&empty)], "--to"),
        (
            &w.central,
            vec![
                "export",
                "--to",
                "ORG-001",
                "--out",
                s(&empty),
                "--max-file-size",
                "1M",
            ],
            "--max-file-size",
        ),
        (
            &w.a,
            vec!["export", "--out", s(&empty), "--max-file-size", "12Q"],
            "not a size",
        ),
        (
            &w.a,
            vec!["export", "--to", "ORG-002", "--out", s(&empty)],
            "--to",
        ),
        (&w.a, vec!["import", s(&empty)], "no bundle files"),
    ];
    for (home, args, needle) in cases {
        let err = refused(courier(home, &args), 2, needle);
        assert!(!err.trim().is_empty(), "{args:?}");
    }
    ok(courier(
        &w.central,
        &[
            "center",
            "add",
            "ORG-001",
            "--label",
            "x",
            "--out",
            s(&w.path("e1.json")),
        ],
    ));
    let central_before_twice = snapshot(&w.central, true);
    refused(
        courier(
            &w.central,
            &[
                "center",
                "add",
                "ORG-001",
                "--label",
                "x",
                "--out",
                s(&w.path("e2.json")),
            ],
        ),
        2,
        "already registered",
    );
    assert!(!w.path("e2.json").exists());
    assert_eq!(snapshot(&w.central, true), central_before_twice);
    assert_ne!(central_before, central_before_twice);
    assert_eq!(snapshot(&w.a, true), a_before);
    assert!(bundles_in(&empty).is_empty());
}

/// A home without a site: a one-line error naming the folder and saying to run init (exit
/// 4), for every command that needs a site; nothing is created there.
#[test]
fn a_home_without_a_site_says_to_run_init() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("nothing-here");
    std::fs::create_dir_all(&home).unwrap();
    let bundle = dir.path().join("x.courier");
    std::fs::write(&bundle, b"COURIER-BUNDLE 1\n").unwrap();
    for args in [
        vec!["keys", "show"],
        vec!["history"],
        vec!["list"],
        vec!["import", s(&bundle)],
        vec!["export", "--out", s(&dir.path().join("out"))],
        vec!["center", "list"],
    ] {
        let err = refused(courier(&home, &args), 4, "courier init");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains(s(&home)),
            "{args:?} does not name the folder: {err}"
        );
        assert!(err.contains("no courier site"), "{err}");
    }
    assert_eq!(
        std::fs::read_dir(&home).unwrap().count(),
        0,
        "files created"
    );
}

/// `init` over an existing site is refused (exit 4) and leaves the site as it was: the same
/// key, config and store.
#[test]
fn init_over_an_existing_site_is_refused() {
    let w = World::new();
    let read = |h: &Path| {
        ["courier.json", "secret-key.asc", "store.sqlite"]
            .iter()
            .map(|f| std::fs::read(h.join(f)).unwrap())
            .collect::<Vec<_>>()
    };
    let before = read(&w.a);
    let fpr = w.fingerprint(&w.a);
    refused(
        courier(&w.a, &["init", "center", "--org", "ORG-001"]),
        4,
        "already exists",
    );
    refused(
        courier(&w.a, &["init", "central", "--name", "Other"]),
        4,
        "already exists",
    );
    assert_eq!(read(&w.a), before);
    assert_eq!(w.fingerprint(&w.a), fpr);
}

/// THREATS "a stolen centre machine": a secret key can be passphrase-protected. `--protect`
/// without a passphrase is refused; with one the key is protected; operations that need the
/// key refuse without it (exit 4, never prompting), say "wrong passphrase" for a wrong one,
/// and work with $COURIER_PASSPHRASE or --passphrase-file.
#[test]
fn a_protected_key_needs_its_passphrase() {
    let w = World::new();
    let p = w.path("protected");
    let err = refused(
        courier(&p, &["init", "center", "--org", "ORG-001", "--protect"]),
        4,
        "passphrase",
    );
    assert!(err.contains("COURIER_PASSPHRASE"), "says how: {err}");
    refused(courier(&p, &["keys", "show"]), 4, "no courier site");

    let pass = [("COURIER_PASSPHRASE", "correct horse")];
    let wrong = [("COURIER_PASSPHRASE", "battery staple")];
    ok(courier_env(
        &p,
        &["init", "center", "--org", "ORG-001", "--protect"],
        &pass,
    ));
    let info: Value = serde_json::from_str(&ok(courier(&p, &["keys", "show", "--json"]))).unwrap();
    assert_eq!(info["protected"], true, "{info}");
    let secret = w.path("protected-secret.asc");
    ok(courier(
        &p,
        &["keys", "export", "--secret", "--out", s(&secret)],
    ));
    let exported = courier::crypto::parse_cert(&std::fs::read(&secret).unwrap()).unwrap();
    assert!(
        courier::crypto::SecretKey::is_protected(&exported),
        "the exported secret key is still protected"
    );

    // Enrollment signs the reply: it needs the key.
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
    let fpr = w.fingerprint(&w.central);
    let replies = w.path("replies");
    let enroll = [
        "enroll",
        s(&file),
        "--expect-fingerprint",
        &fpr,
        "--out",
        s(&replies),
    ];
    let before = snapshot(&p, true);
    let o = courier(&p, &enroll);
    assert!(stdout(&o).is_empty(), "prompted: {}", stdout(&o));
    let err = refused(o, 4, "passphrase-protected");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    refused(courier_env(&p, &enroll, &wrong), 4, "wrong passphrase");
    assert!(bundles_in(&replies).is_empty());
    assert_eq!(snapshot(&p, true), before);
    let pass_file = w.path("pass.txt");
    std::fs::write(&pass_file, "correct horse\n").unwrap();
    let mut with_file = vec!["--passphrase-file", s(&pass_file)];
    with_file.extend_from_slice(&enroll);
    ok(courier(&p, &with_file));
    ok(courier(&w.central, &["import", s(&replies)]));

    // Export (signing) and import (decrypting) need it too.
    let up = w.path("up");
    let before = snapshot(&p, true);
    refused(
        courier(&p, &["export", "--out", s(&up)]),
        4,
        "passphrase-protected",
    );
    refused(
        courier_env(&p, &["export", "--out", s(&up)], &wrong),
        4,
        "wrong passphrase",
    );
    assert!(bundles_in(&up).is_empty());
    assert_eq!(snapshot(&p, true), before);
    ok(courier_env(&p, &["export", "--out", s(&up)], &pass));
    assert_eq!(bundles_in(&up).len(), 1);

    let down = w.export_down("ORG-001", "down");
    let before = snapshot(&p, true);
    refused(
        courier(&p, &["import", s(&down[0])]),
        4,
        "passphrase-protected",
    );
    assert_eq!(snapshot(&p, true), before);
    ok(courier(
        &p,
        &["--passphrase-file", s(&pass_file), "import", s(&down[0])],
    ));
}

/// `keys show --json` names the key (40 hex digits), role and org; `keys export --out`
/// writes the public certificate (no secret), `--secret` the secret key.
#[test]
fn keys_show_and_export() {
    let w = World::new();
    let a: Value = serde_json::from_str(&ok(courier(&w.a, &["keys", "show", "--json"]))).unwrap();
    let fpr = a["fingerprint"].as_str().unwrap();
    assert_eq!(fpr.len(), 40, "{a}");
    assert!(fpr.bytes().all(|b| b.is_ascii_hexdigit()), "{a}");
    assert_eq!(a["role"], "center");
    assert_eq!(a["org_id"], "ORG-001");
    assert_eq!(a["protected"], false);
    let c: Value =
        serde_json::from_str(&ok(courier(&w.central, &["keys", "show", "--json"]))).unwrap();
    assert_eq!(c["role"], "central");
    assert_eq!(c["name"], "Central");
    assert!(c.get("org_id").is_none() || c["org_id"].is_null(), "{c}");
    assert_ne!(c["fingerprint"], a["fingerprint"]);
    let text = ok(courier(&w.a, &["keys", "show"]));
    assert!(
        text.contains(&courier::crypto::grouped(fpr)) && text.contains("ORG-001"),
        "{text}"
    );

    let public = w.path("a.asc");
    ok(courier(&w.a, &["keys", "export", "--out", s(&public)]));
    let armored = std::fs::read_to_string(&public).unwrap();
    assert!(
        armored.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"),
        "{armored}"
    );
    assert!(!armored.contains("PRIVATE"), "secret material exported");
    let cert = courier::crypto::parse_cert(armored.as_bytes()).unwrap();
    assert_eq!(courier::crypto::fingerprint(&cert), fpr);
    assert!(!cert.is_tsk(), "the public certificate holds secret keys");

    let secret = w.path("a-secret.asc");
    ok(courier(
        &w.a,
        &["keys", "export", "--secret", "--out", s(&secret)],
    ));
    let armored = std::fs::read_to_string(&secret).unwrap();
    assert!(
        armored.starts_with("-----BEGIN PGP PRIVATE KEY BLOCK-----"),
        "{armored}"
    );
}

/// A home folder copied elsewhere (backup and restore) is a working site: the copy of an
/// enrolled centre imports a data bundle; the original is untouched by it.
#[test]
fn a_copied_home_is_a_working_site() {
    let w = World::enrolled();
    w.load_fixtures();
    let files = w.export_down("ORG-001", "down");
    let copy: PathBuf = w.path("restored/elsewhere/center-a");
    copy_dir(&w.a, &copy);
    let original = snapshot(&w.a, true);
    assert_eq!(w.fingerprint(&copy), w.fingerprint(&w.a));
    let out = ok(courier(&copy, &["import", s(&files[0])]));
    assert!(out.contains("applied"), "{out}");
    assert_eq!(list(&copy, &[]).len(), 12);
    assert_eq!(snapshot(&w.a, true), original, "the original changed");
    let info: Value =
        serde_json::from_str(&ok(courier(&copy, &["keys", "show", "--json"]))).unwrap();
    assert_eq!(info["home"], s(&copy));
}

/// A store written by a newer courier (`PRAGMA user_version` 99) is refused with "newer than
/// this courier" (exit 4) and not touched: same bytes, same version.
#[test]
fn a_store_from_a_newer_courier_is_refused_untouched() {
    let w = World::enrolled();
    let f = &w.export_down("ORG-001", "down")[0];
    let store = w.a.join("store.sqlite");
    {
        let conn = rusqlite::Connection::open(&store).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let bytes = std::fs::read(&store).unwrap();
    for args in [
        vec!["history"],
        vec!["list"],
        vec!["import", s(f)],
        vec!["export", "--out", s(&w.path("up"))],
    ] {
        let err = refused(courier(&w.a, &args), 4, "newer than this courier");
        assert!(err.contains("99"), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    assert_eq!(std::fs::read(&store).unwrap(), bytes, "store bytes changed");
    let conn = rusqlite::Connection::open(&store).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 99);
    assert!(bundles_in(&w.path("up")).is_empty());
}

/// Centre-only commands at central, and central-only commands at a centre, say which role
/// the command is for (exit 4) and change nothing.
#[test]
fn commands_for_the_other_role_say_so() {
    let w = World::new();
    let results = fixtures().join("data/results/ORG-001-day1.jsonl");
    let logs = fixtures().join("data/logs/ORG-001-day1.jsonl");
    let data = fixtures().join("data/central.jsonl");
    let enroll = w.path("enroll.json");
    ok(courier(
        &w.central,
        &[
            "center",
            "add",
            "ORG-001",
            "--label",
            "A",
            "--out",
            s(&enroll),
        ],
    ));
    let fpr = w.fingerprint(&w.central);
    let out = w.path("out");
    let at_central: Vec<Vec<&str>> = vec![
        vec![
            "enroll",
            s(&enroll),
            "--expect-fingerprint",
            &fpr,
            "--out",
            s(&out),
        ],
        vec!["results", "add", s(&results)],
        vec!["results", "list"],
        vec!["logs", "add", s(&logs)],
    ];
    let at_center: Vec<Vec<&str>> = vec![
        vec!["center", "add", "ORG-009", "--label", "x", "--out", s(&out)],
        vec!["center", "list"],
        vec!["load", s(&data)],
        vec!["remove", "https://central.example/tao.rdf#tt-001a"],
        vec!["results", "export", "--format", "jsonl", "--out", s(&out)],
        vec!["logs", "export", "--format", "csv", "--out", s(&out)],
    ];
    for (home, cmds, needed, actual) in [
        (&w.central, at_central, "a centre site", "a central site"),
        (&w.a, at_center, "a central site", "a centre site"),
    ] {
        let before = snapshot(home, true);
        for args in cmds {
            let err = refused(courier(home, &args), 4, "this command is for");
            assert!(
                err.contains(needed) && err.contains(actual),
                "{args:?}: {err}"
            );
            assert!(err.contains(s(home)), "names the site: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        }
        assert_eq!(snapshot(home, true), before);
    }
    assert!(!out.exists(), "something was written");
}
