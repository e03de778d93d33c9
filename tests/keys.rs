//! Key lifecycle (issue 11): `keys passwd` adds, changes and removes the passphrase of a
//! site's secret keys, never prompting; a wrong current passphrase leaves the key file as it
//! was.

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
