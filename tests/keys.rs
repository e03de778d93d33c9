//! Key lifecycle (issue 11): `keys passwd` adds, changes and removes the passphrase of a
//! site's secret keys, never prompting; a wrong current passphrase leaves the key file as it
//! was. `center revoke` makes central refuse a centre's bundles and exports to it.

use std::path::Path;

use serde_json::Value;

use crate::common::*;

const KEY_FILE: &str = "secret-key.asc";

fn protected(home: &Path) -> bool {
    let info: Value = serde_json::from_str(&ok(courier(home, &["keys", "show", "--json"])))
        .expect("keys show --json");
    info["protected"].as_bool().expect("protected")
}

/// A centre exports (signs with its key) into a fresh folder `dir` with extra leading args
/// and environment; returns the process output.
fn export_up(home: &Path, dir: &Path, pre: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut args = pre.to_vec();
    args.extend_from_slice(&["export", "--out", s(dir)]);
    courier_env(home, &args, env)
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Add a passphrase to an unprotected centre key: the key then needs it (exit 4 without it,
/// never a prompt) and works with it; change it (the old one no longer works); remove it
/// (the key works with no passphrase). Each change is in the history, with no secret in it,
/// and the key file stays readable by its owner only.
#[test]
fn passwd_adds_changes_and_removes_the_passphrase() {
    let w = World::enrolled();
    let a = &w.a;
    assert!(!protected(a));
    let fpr = w.fingerprint(a);
    let old = w.path("old.txt");
    let new = w.path("new.txt");
    std::fs::write(&old, "first secret\n").unwrap();
    std::fs::write(&new, "second secret\nignored line\n").unwrap();

    // Add.
    let said = ok(courier(
        a,
        &["keys", "passwd", "--new-passphrase-file", s(&old)],
    ));
    assert!(said.contains("passphrase added"), "{said}");
    assert!(protected(a));
    #[cfg(unix)]
    assert_eq!(mode(&a.join(KEY_FILE)), 0o600);
    let o = export_up(a, &w.path("up1"), &[], &[]);
    assert!(stdout(&o).is_empty(), "prompted: {}", stdout(&o));
    refused(o, 4, "passphrase-protected");
    ok(export_up(
        a,
        &w.path("up1"),
        &[],
        &[("COURIER_PASSPHRASE", "first secret")],
    ));

    // Change: the current one from --passphrase-file, the new one from the environment.
    let said = ok(courier_env(
        a,
        &["--passphrase-file", s(&old), "keys", "passwd"],
        &[("COURIER_NEW_PASSPHRASE", "third secret")],
    ));
    assert!(said.contains("changed"), "{said}");
    refused(
        export_up(a, &w.path("up2"), &["--passphrase-file", s(&old)], &[]),
        4,
        "wrong passphrase",
    );
    ok(export_up(
        a,
        &w.path("up2"),
        &[],
        &[("COURIER_PASSPHRASE", "third secret")],
    ));

    // Change again, from a file whose first line is the passphrase.
    ok(courier_env(
        a,
        &["keys", "passwd", "--new-passphrase-file", s(&new)],
        &[("COURIER_PASSPHRASE", "third secret")],
    ));
    ok(export_up(
        a,
        &w.path("up3"),
        &[],
        &[("COURIER_PASSPHRASE", "second secret")],
    ));

    // Remove.
    let said = ok(courier(
        a,
        &["--passphrase-file", s(&new), "keys", "passwd", "--remove"],
    ));
    assert!(said.contains("removed"), "{said}");
    assert!(!protected(a));
    ok(export_up(a, &w.path("up4"), &[], &[]));
    #[cfg(unix)]
    assert_eq!(mode(&a.join(KEY_FILE)), 0o600);

    // The fingerprint never changed: central still takes the centre's bundles (a later
    // export with nothing new writes no file, but it unlocked the key first).
    assert_eq!(w.fingerprint(a), fpr);
    ok(courier(&w.central, &["import", s(&w.path("up1"))]));

    // The history has the four changes and none of the secrets.
    let history = ok(courier(a, &["history", "--json"]));
    let doc: Value = serde_json::from_str(&history).expect("history --json");
    courier::schema::check("history", &doc).expect("history matches its schema");
    assert_eq!(history.matches("keys-passwd").count(), 4, "{history}");
    for secret in ["first secret", "second secret", "third secret"] {
        assert!(!history.contains(secret), "{history}");
    }
}

/// A wrong or missing current passphrase is refused (exit 4) and the key file stays
/// byte-identical; so does a usage error (no new passphrase, or --remove with one).
#[test]
fn passwd_with_a_wrong_passphrase_leaves_the_key_file_as_it_was() {
    let w = World::new();
    let a = &w.a;
    let pass = w.path("pass.txt");
    std::fs::write(&pass, "right one\n").unwrap();
    ok(courier(
        a,
        &["keys", "passwd", "--new-passphrase-file", s(&pass)],
    ));
    let key = std::fs::read(a.join(KEY_FILE)).unwrap();
    let store = snapshot(a, true);
    let new = [("COURIER_NEW_PASSPHRASE", "another")];

    let err = refused(
        courier_env(
            a,
            &["keys", "passwd"],
            &[("COURIER_PASSPHRASE", "wrong one"), new[0]],
        ),
        4,
        "wrong passphrase",
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    refused(
        courier_env(a, &["keys", "passwd"], &new),
        4,
        "passphrase-protected",
    );
    refused(
        courier_env(
            a,
            &["keys", "passwd", "--remove"],
            &[("COURIER_PASSPHRASE", "wrong one")],
        ),
        4,
        "wrong passphrase",
    );
    refused(
        courier_env(
            a,
            &["keys", "passwd"],
            &[("COURIER_PASSPHRASE", "right one")],
        ),
        2,
        "--new-passphrase-file",
    );
    refused(
        courier_env(
            a,
            &["keys", "passwd", "--remove"],
            &[("COURIER_PASSPHRASE", "right one"), new[0]],
        ),
        2,
        "--remove",
    );
    assert_eq!(std::fs::read(a.join(KEY_FILE)).unwrap(), key);
    assert_eq!(snapshot(a, true), store);
    assert!(protected(a));
}

/// `center revoke ORG --reason TEXT` (central): the revoked centre's next results bundle is
/// refused naming the file, the centre and the reason (exit 1, store unchanged, the refusal in
/// the audit trail); what it sent before stays; `export --to` it refuses (exit 4); the other
/// centre is unaffected; `center list` shows the revocation; the history records it.
#[test]
fn a_revoked_centre_is_refused_and_the_others_are_not() {
    let w = World::synced();
    let results = fixtures().join("data/results");
    ok(courier(
        &w.a,
        &["results", "add", s(&results.join("ORG-001-day1.jsonl"))],
    ));
    for f in w.export_up(&w.a, "up-a1", &[]) {
        ok(courier(&w.central, &["import", s(&f)]));
    }
    let held = count(&w.central, "central_results");
    assert!(held > 0);
    ok(courier(
        &w.a,
        &["results", "add", s(&results.join("ORG-001-reopened.jsonl"))],
    ));
    let later = w.export_up(&w.a, "up-a2", &[]);
    let from_b = w.export_up(&w.b, "up-b", &[]);
    assert!(!later.is_empty() && !from_b.is_empty());

    let reason = "machine stolen on 2026-11-26";
    let said = ok(courier(
        &w.central,
        &["center", "revoke", "ORG-001", "--reason", reason],
    ));
    assert!(said.contains("revoked centre ORG-001"), "{said}");

    // Its new bundle is refused with the reason; `verify` says the same.
    let err = import_refused(&w.central, &later[0], reason);
    assert!(err.contains("ORG-001") && err.contains("revoked"), "{err}");
    refused(courier(&w.central, &["verify", s(&later[0])]), 1, "revoked");
    let audit = std::fs::read_to_string(w.central.join("audit.jsonl")).unwrap();
    assert!(audit.contains(reason), "{audit}");
    // What it sent before stays.
    assert_eq!(count(&w.central, "central_results"), held);

    // The other centre is unaffected, both ways.
    for f in &from_b {
        ok(courier(&w.central, &["import", s(f)]));
    }
    ok(courier(
        &w.central,
        &["export", "--to", "ORG-002", "--out", s(&w.path("down-b2"))],
    ));

    // Nothing is exported to the revoked centre.
    let before = snapshot(&w.central, true);
    let err = refused(
        courier(
            &w.central,
            &["export", "--to", "ORG-001", "--out", s(&w.path("down-a2"))],
        ),
        4,
        reason,
    );
    assert!(err.contains("revoked"), "{err}");
    assert!(bundles_in(&w.path("down-a2")).is_empty());
    assert_eq!(snapshot(&w.central, true), before);

    // `center list` shows it, text and JSON.
    let text = ok(courier(&w.central, &["center", "list"]));
    let line = text.lines().find(|l| l.starts_with("ORG-001")).unwrap();
    assert!(line.contains("REVOKED") && line.contains(reason), "{text}");
    let rows: Value =
        serde_json::from_str(&ok(courier(&w.central, &["center", "list", "--json"]))).unwrap();
    courier::schema::check("center-list", &rows).expect("center list matches its schema");
    assert_eq!(rows[0]["org_id"], "ORG-001");
    assert_eq!(rows[0]["status"], "revoked");
    assert_eq!(rows[0]["revoked_reason"], reason);
    assert!(rows[0]["revoked_at"].is_string(), "{rows}");
    assert_eq!(rows[1]["status"], "enrolled");
    assert!(rows[1]["revoked_at"].is_null(), "{rows}");

    // The history records it.
    let history: Value =
        serde_json::from_str(&ok(courier(&w.central, &["history", "--json"]))).unwrap();
    courier::schema::check("history", &history).expect("history matches its schema");
    let row = history
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "center-revoke")
        .expect("a center-revoke row");
    assert_eq!(row["org_id"], "ORG-001");
    assert!(row["report"].as_str().unwrap().contains(reason), "{row}");
}

/// Revoking is refused, changing nothing, when it cannot mean anything: an unknown or
/// already revoked centre, an empty or multi-line reason (exit 2), at a centre (exit 4).
#[test]
fn center_revoke_refuses_what_it_cannot_do() {
    let w = World::enrolled();
    let revoke = |home: &Path, org: &str, reason: &str| {
        courier(home, &["center", "revoke", org, "--reason", reason])
    };
    let before = snapshot(&w.central, true);
    refused(
        revoke(&w.central, "ORG-999", "gone"),
        2,
        "unknown centre ORG-999",
    );
    refused(revoke(&w.central, "ORG-001", "  "), 2, "--reason");
    refused(revoke(&w.central, "ORG-001", "two\nlines"), 2, "--reason");
    assert_eq!(snapshot(&w.central, true), before);
    refused(revoke(&w.a, "ORG-001", "gone"), 4, "central");
    ok(revoke(&w.central, "ORG-001", "retired"));
    let before = snapshot(&w.central, true);
    refused(revoke(&w.central, "ORG-001", "again"), 2, "already revoked");
    assert_eq!(snapshot(&w.central, true), before);
}
