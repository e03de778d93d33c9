//! History archives (issue 12): `history export` writes the sync history as one signed tar
//! file, `history verify-archive` checks it anywhere with only the site's public certificate,
//! and `history prune` drops the archived rows while `history --verify` keeps passing.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

/// `history export --out NAME` at `home` into the world's folder; returns the file.
fn export(w: &World, home: &Path, name: &str) -> PathBuf {
    let out = w.path(name);
    ok(courier(home, &["history", "export", "--out", s(&out)]));
    out
}

/// The site's public certificate, as `keys export` writes it.
fn certificate(w: &World, home: &Path, name: &str) -> PathBuf {
    let out = w.path(name);
    ok(courier(home, &["keys", "export", "--out", s(&out)]));
    out
}

/// `history verify-archive` with a home that does not exist: what a stranger can run.
fn verify_archive(w: &World, file: &Path, cert: &Path) -> std::process::Output {
    let nowhere = w.path("no-such-home");
    let o = courier(
        &nowhere,
        &[
            "history",
            "verify-archive",
            s(file),
            "--certificate",
            s(cert),
            "--json",
        ],
    );
    assert!(!nowhere.exists(), "verify-archive created a home");
    o
}

/// `history verify-archive` without `--json` and without a home: its output (exit 0).
fn verify_text(w: &World, file: &Path, cert: &Path) -> String {
    let args = [
        "history",
        "verify-archive",
        s(file),
        "--certificate",
        s(cert),
    ];
    ok(courier(&w.path("no-such-home"), &args))
}

/// The checked archive's report, validated against its schema.
fn verified(w: &World, file: &Path, cert: &Path) -> Value {
    let v: Value = serde_json::from_str(&ok(verify_archive(w, file, cert))).expect("JSON");
    courier::schema::check("history-archive-check", &v).expect("history-archive-check");
    v
}

/// `history --verify --json`: (exit code, document).
fn history_verify(home: &Path) -> (i32, Value) {
    let o = courier(home, &["history", "--verify", "--json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    courier::schema::check("history-verify", &v).expect("history-verify");
    (o.status.code().unwrap(), v)
}

fn history_rows(home: &Path) -> Vec<Value> {
    let out = ok(courier(home, &["history", "--json", "--limit", "100000"]));
    let v: Value = serde_json::from_str(&out).unwrap();
    courier::schema::check("history", &v).expect("history");
    v.as_array().unwrap().clone()
}

/// The entries of the archive, read with the tar crate as any tar reader would.
fn entries(file: &Path) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(std::fs::File::open(file).unwrap());
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

#[test]
fn an_archive_verifies_with_only_the_public_certificate() {
    let w = World::synced();
    let file = export(&w, &w.a, "a-history.tar");
    let cert = certificate(&w, &w.a, "a.asc");
    let v = verified(&w, &file, &cert);
    let rows = history_rows(&w.a);
    assert_eq!(v["history"]["first_row"], 1);
    assert_eq!(v["history"]["rows"], rows.len());
    assert_eq!(v["history"]["end_hash"], rows.last().unwrap()["hash"]);
    assert_eq!(v["site"]["org_id"], "ORG-001");
    assert!(v["entity_actions"].as_u64().unwrap() > 0, "{v}");
    // A standard tar: the entries in order, each document as its schema says.
    let e = entries(&file);
    let names: Vec<&str> = e.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "history.jsonl",
            "entity-history.jsonl",
            "manifest.json",
            "manifest.json.sig"
        ]
    );
    let entity_actions = v["entity_actions"].as_u64().unwrap() as usize;
    for (entry, schema, rows) in [
        (0, "history-archive-row", rows.len()),
        (1, "history-archive-entity", entity_actions),
    ] {
        let text = String::from_utf8(e[entry].1.clone()).unwrap();
        let mut checked = 0;
        for line in text.lines() {
            let doc: Value = serde_json::from_str(line).unwrap();
            courier::schema::check(schema, &doc).unwrap_or_else(|m| panic!("{schema}: {m}"));
            checked += 1;
        }
        assert_eq!(
            checked, rows,
            "{schema}: every row of {} checked",
            e[entry].0
        );
    }
    let manifest: Value = serde_json::from_slice(&e[2].1).unwrap();
    courier::schema::check("history-archive-manifest", &manifest).unwrap();
    assert_eq!(manifest["history"], v["history"]);
    // Text output too, exit 0.
    let text = verify_text(&w, &file, &cert);
    assert!(text.contains("history archive intact"), "{text}");
}

/// Byte offsets worth flipping: headers, contents, padding, manifest, the whole signature,
/// the end.
fn offsets(file: &Path) -> Vec<usize> {
    let len = std::fs::metadata(file).unwrap().len() as usize;
    let e = entries(file);
    let history = e[0].1.len();
    // Where each entry's content starts: after its 512-byte header and the padded entries before.
    let mut starts = Vec::new();
    let mut pos = 0;
    for (_, bytes) in &e {
        starts.push(pos + 512);
        pos += 512 + bytes.len().div_ceil(512) * 512;
    }
    let (manifest_at, sig_at) = (starts[2], starts[3]);
    let mut at = vec![
        0,                  // the first header's name
        148,                // its checksum
        124,                // its size
        512,                // the first row
        512 + history / 2,  // a row in the middle
        512 + history - 2,  // the last row's end
        512 + history,      // the history's padding (or the next header)
        starts[1] - 512,    // the entity-history header
        manifest_at - 512,  // the manifest's header
        manifest_at + 40,   // the manifest
        sig_at - 512 + 100, // the signature's header
        len - 1024,         // the end-of-archive blocks
        len - 1,            // the last byte
    ];
    // Every byte of the signature, its two digest-prefix bytes (which the signature does
    // not cover) among them.
    at.extend(sig_at..sig_at + e[3].1.len());
    at.retain(|o| *o < len);
    at
}

#[test]
fn an_archive_with_any_byte_changed_is_refused() {
    let w = World::synced();
    let file = export(&w, &w.central, "central-history.tar");
    let cert = certificate(&w, &w.central, "central.asc");
    verified(&w, &file, &cert);
    let good = std::fs::read(&file).unwrap();
    let copy = w.path("altered.tar");
    for at in offsets(&file) {
        let mut bytes = good.clone();
        bytes[at] ^= 0x01;
        std::fs::write(&copy, &bytes).unwrap();
        let err = refused(
            verify_archive(&w, &copy, &cert),
            1,
            "history archive refused",
        );
        assert_eq!(err.trim_end().lines().count(), 1, "byte {at}: {err}");
        assert!(err.contains("altered.tar"), "names the file: {err}");
    }
    // Cut short anywhere, or with bytes after its end.
    for cut in [1, 511, good.len() / 2, good.len() - 512, good.len() - 1] {
        std::fs::write(&copy, &good[..cut]).unwrap();
        refused(
            verify_archive(&w, &copy, &cert),
            1,
            "history archive refused",
        );
    }
    let mut longer = good.clone();
    longer.extend_from_slice(&[0u8; 512]);
    std::fs::write(&copy, &longer).unwrap();
    refused(
        verify_archive(&w, &copy, &cert),
        1,
        "history archive refused",
    );
}

#[test]
fn another_sites_certificate_does_not_verify_an_archive() {
    let w = World::enrolled();
    let file = export(&w, &w.central, "central-history.tar");
    let other = certificate(&w, &w.a, "a.asc");
    refused(
        verify_archive(&w, &file, &other),
        1,
        "not signed by the certificate given",
    );
    // Not a certificate at all: the file is named, exit 1.
    refused(verify_archive(&w, &file, &file), 1, "central-history.tar");
}

#[test]
fn prune_keeps_the_history_verifiable_and_the_rows_after_the_cut() {
    let w = World::synced();
    let first = export(&w, &w.central, "first.tar");
    let cert = certificate(&w, &w.central, "central.asc");
    let archived = verified(&w, &first, &cert)["history"].clone();
    let last = archived["last_row"].as_i64().unwrap();
    // Rows written after the archive: they stay.
    w.export_down("ORG-001", "down-later");
    let after: Vec<Value> = history_rows(&w.central)
        .into_iter()
        .filter(|r| r["n"].as_i64().unwrap() > last)
        .collect();
    assert!(!after.is_empty());
    // A date before every row: nothing to drop.
    let out = ok(prune(&w.central, "2000-01-01", &first));
    assert!(out.contains("nothing to prune"), "{out}");
    let out = ok(prune(&w.central, "2999-01-01", &first));
    assert!(out.contains(&format!("rows 1-{last} dropped")), "{out}");
    let (code, v) = history_verify(&w.central);
    assert_eq!((code, &v["intact"]), (0, &Value::Bool(true)), "{v}");
    let rows = history_rows(&w.central);
    assert_eq!(
        &rows[..after.len()],
        &after[..],
        "rows after the cut are kept as they were"
    );
    assert_eq!(rows.len(), after.len() + 1, "one row records the prune");
    assert_eq!(rows.last().unwrap()["action"], "history-prune");
    // The history goes on, still verifiable, and the next archive continues the first.
    w.export_down("ORG-002", "down-later-2");
    assert_eq!(history_verify(&w.central).0, 0);
    let second = export(&w, &w.central, "second.tar");
    let next = verified(&w, &second, &cert)["history"].clone();
    assert_eq!(next["first_row"], last + 1);
    assert_eq!(next["start_hash"], archived["end_hash"]);
    // Pruning again with the first archive finds nothing left that it holds.
    let out = ok(prune(&w.central, "2999-01-01", &first));
    assert!(out.contains("nothing to prune"), "{out}");
    // The second prune drops everything; the chain starts after it and still verifies.
    ok(prune(&w.central, "2999-01-01", &second));
    assert_eq!(history_verify(&w.central).0, 0);
    assert_eq!(count(&w.central, "history"), 1);
    assert_eq!(count(&w.central, "history_prunes"), 2);
}

/// `history prune` signs the history's new start with the site's key: with a protected key
/// and no passphrase it is refused before anything is dropped (store and signed head
/// unchanged); with the passphrase it prunes and the history verifies.
#[test]
fn prune_with_a_protected_key_needs_its_passphrase() {
    let w = World::new();
    let p = w.path("protected");
    let pass = [("COURIER_PASSPHRASE", "correct horse")];
    ok(courier_env(
        &p,
        &["init", "central", "--name", "Central", "--protect"],
        &pass,
    ));
    let data = fixtures().join("data/central.jsonl");
    ok(courier_env(&p, &["load", s(&data)], &pass));
    let out = w.path("protected.tar");
    ok(courier_env(
        &p,
        &["history", "export", "--out", s(&out)],
        &pass,
    ));
    prune_refused(&p, &out, 4, "passphrase");
    let args = [
        "history",
        "prune",
        "--before",
        "2999-01-01",
        "--archived",
        s(&out),
    ];
    let said = ok(courier_env(&p, &args, &pass));
    assert!(said.contains("dropped"), "{said}");
    let (code, v) = history_verify(&p);
    assert_eq!((code, &v["intact"]), (0, &Value::Bool(true)), "{v}");
    assert_eq!(v["unanchored"], 0, "the prune's own row is signed: {v}");
}

/// `history prune --before DATE --archived ARCHIVE` at `home`.
fn prune(home: &Path, date: &str, archive: &Path) -> std::process::Output {
    courier(
        home,
        &[
            "history",
            "prune",
            "--before",
            date,
            "--archived",
            s(archive),
        ],
    )
}

/// `history prune ARCHIVE` at `home` is refused with `code`, naming `needle`; the store
/// and the signed head are unchanged.
fn prune_refused(home: &Path, archive: &Path, code: i32, needle: &str) {
    let before = snapshot(home, true);
    let head = std::fs::read(home.join("history-head.json")).unwrap();
    let err = refused(prune(home, "2999-01-01", archive), code, needle);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert_eq!(
        snapshot(home, true),
        before,
        "store changed by a refused prune"
    );
    assert_eq!(std::fs::read(home.join("history-head.json")).unwrap(), head);
}

#[test]
fn prune_refuses_another_sites_or_a_tampered_archive() {
    let w = World::synced();
    let theirs = export(&w, &w.b, "b-history.tar");
    prune_refused(&w.a, &theirs, 1, "not signed by the certificate given");
    let ours = export(&w, &w.a, "a-history.tar");
    let mut bytes = std::fs::read(&ours).unwrap();
    bytes[600] ^= 0x20;
    let tampered = w.path("a-tampered.tar");
    std::fs::write(&tampered, &bytes).unwrap();
    prune_refused(&w.a, &tampered, 1, "a-tampered.tar");
    // An archive of this site that does not reach back to the store's first row (made from
    // a copy of the site pruned meanwhile): the rows between would be in no archive.
    let copy = w.path("center-a-copy");
    copy_dir(&w.a, &copy);
    ok(prune(&copy, "2999-01-01", &ours));
    ok(courier(&copy, &["export", "--out", s(&w.path("up-copy"))]));
    let later = export(&w, &copy, "a-later.tar");
    prune_refused(&w.a, &later, 1, "in no archive given");
    // A tampered store is not pruned over.
    let conn = rusqlite::Connection::open(w.a.join("store.sqlite")).unwrap();
    conn.execute("UPDATE history SET report = 'edited' WHERE n = 2", [])
        .unwrap();
    drop(conn);
    prune_refused(&w.a, &ours, 4, "not intact");
}

#[test]
fn export_needs_rows_and_leaves_no_file_behind() {
    let w = World::enrolled();
    let out = w.path("old.tar");
    for (before, needle) in [
        ("2000-01-01", "nothing to archive"),
        ("yesterday", "YYYY-MM-DD"),
    ] {
        let args = ["history", "export", "--out", s(&out), "--before", before];
        refused(courier(&w.central, &args), 2, needle);
    }
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(w.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty());
    // An existing file is left alone without --force.
    export(&w, &w.central, "h.tar");
    refused(
        courier(
            &w.central,
            &["history", "export", "--out", s(&w.path("h.tar"))],
        ),
        2,
        "--force",
    );
}

// ---- bundles archived by `import --archive` ------------------------------------------

/// A clock past every row the real one writes: rows written under it fall after `LATER_THAN`.
const LATER: (&str, &str) = ("COURIER_NOW", "2030-01-01T00:00:00Z");
const LATER_THAN: &str = "2029-01-01";

/// `import FOLDER --archive DIR` at `home` (under the clock `env`).
fn import_archived(home: &Path, folder: &Path, dir: &Path, env: &[(&str, &str)]) {
    let args = ["import", s(folder), "--archive", s(dir)];
    ok(courier_env(home, &args, env));
}

/// The files of a folder by name, with their bytes.
fn folder_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    v.sort();
    v
}

/// The `bundles/NAME` entries of an archive (name without `bundles/`), sorted by name.
fn bundle_entries(file: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = entries(file)
        .into_iter()
        .filter_map(|(n, b)| Some((n.strip_prefix("bundles/")?.to_string(), b)))
        .collect();
    v.sort();
    v
}

/// `history export` with extra arguments; returns the file and stderr.
fn export_with(home: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["history", "export", "--out", s(out)];
    args.extend_from_slice(extra);
    let o = courier(home, &args);
    ok(o.clone());
    stderr(&o)
}

/// Two rounds of sync, each file imported with `--archive`: the centre's data bundles into
/// `a-done`, central's results parts into `central-done`; the second round under the clock
/// [`LATER`]. Returns the world, the two folders and the first round's file names
/// (centre's, central's).
fn archived_world() -> (World, PathBuf, PathBuf, Vec<String>, Vec<String>) {
    let w = World::enrolled();
    w.load_fixtures();
    let (a_done, c_done) = (w.path("a-done"), w.path("central-done"));
    let names = |files: Vec<PathBuf>| -> Vec<String> {
        let mut v: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let down1 = names(w.export_down("ORG-001", "down-1"));
    import_archived(&w.a, &w.path("down-1"), &a_done, &[]);
    let results = fixtures().join("data/results/ORG-001-day1.jsonl");
    ok(courier(&w.a, &["results", "add", s(&results)]));
    let up1 = names(w.export_up(&w.a, "up-1", &["--max-file-size", "32K"]));
    assert!(up1.len() >= 2, "a set of parts: {up1:?}");
    import_archived(&w.central, &w.path("up-1"), &c_done, &[]);
    // The second round, later.
    let (down2, up2) = (w.path("down-2"), w.path("up-2"));
    let export = ["export", "--to", "ORG-001", "--out", s(&down2)];
    ok(courier_env(&w.central, &export, &[LATER]));
    import_archived(&w.a, &down2, &a_done, &[LATER]);
    ok(courier_env(&w.a, &["export", "--out", s(&up2)], &[LATER]));
    import_archived(&w.central, &up2, &c_done, &[LATER]);
    (w, a_done, c_done, down1, up1)
}

#[test]
fn an_archive_holds_the_bundles_archived_by_import() {
    let (w, a_done, c_done, down1, up1) = archived_world();
    assert_eq!(folder_files(&a_done).len(), down1.len() + 1);
    for (home, done, first, name) in [
        (&w.a, &a_done, &down1, "a"),
        (&w.central, &c_done, &up1, "c"),
    ] {
        let cert = certificate(&w, home, &format!("{name}.asc"));
        // Everything: exactly the files the archive folder holds, byte for byte.
        let all = w.path(&format!("{name}-all.tar"));
        assert_eq!(export_with(home, &all, &[]), "", "no warning");
        assert_eq!(bundle_entries(&all), folder_files(done));
        let v = verified(&w, &all, &cert);
        assert_eq!(v["bundles"], folder_files(done).len());
        // The same again: the same entries in the same order.
        let again = w.path(&format!("{name}-again.tar"));
        export_with(home, &again, &[]);
        let order = |f: &Path| -> Vec<String> { entries(f).into_iter().map(|e| e.0).collect() };
        assert_eq!(order(&all), order(&again));
        // --before: the bundles of the first round only.
        let early = w.path(&format!("{name}-early.tar"));
        export_with(home, &early, &["--before", LATER_THAN]);
        let held: Vec<String> = bundle_entries(&early).into_iter().map(|e| e.0).collect();
        assert_eq!(&held, first);
        assert_eq!(verified(&w, &early, &cert)["bundles"], first.len());
        let text = verify_text(&w, &early, &cert);
        assert!(text.contains(&format!("{} bundles", first.len())), "{text}");
    }
}

#[test]
fn bundles_given_with_bundles_dir_and_missing_folders() {
    let (w, a_done, c_done, _, _) = archived_world();
    // Central's own data bundles, now in the centre's folder: named by central's export rows.
    let out = w.path("c-with-a.tar");
    let warned = export_with(&w.central, &out, &["--bundles", s(&a_done)]);
    assert_eq!(warned, "");
    let mut both = folder_files(&c_done);
    both.extend(folder_files(&a_done));
    both.sort();
    assert_eq!(bundle_entries(&out), both);
    // A file that is no bundle, and a folder gone: warnings naming them, the export goes on.
    std::fs::write(a_done.join("notes.txt"), "not a bundle").unwrap();
    let gone = w.path("gone");
    let out = w.path("c-warned.tar");
    let warned = export_with(
        &w.central,
        &out,
        &["--bundles", s(&a_done), "--bundles", s(&gone)],
    );
    assert!(
        warned.contains("notes.txt") && warned.contains("gone"),
        "{warned}"
    );
    assert_eq!(warned.lines().count(), 2, "{warned}");
    assert_eq!(bundle_entries(&out), both);
    // The centre's folder moved away: a warning, exit 0, the archive without its bundles.
    std::fs::rename(&a_done, w.path("a-done-moved")).unwrap();
    let out = w.path("a-moved.tar");
    let warned = export_with(&w.a, &out, &[]);
    assert!(
        warned.contains("a-done") && warned.contains("not read"),
        "{warned}"
    );
    assert!(bundle_entries(&out).is_empty());
    let cert = certificate(&w, &w.a, "a.asc");
    assert_eq!(verified(&w, &out, &cert)["bundles"], 0);
}

/// The archive's entries rebuilt as courier writes them, with `extra` inserted before the
/// manifest and listed in it; signed again with the site's key at `resign`, or keeping
/// the old signature.
fn with_entry(file: &Path, extra: (&str, &[u8]), resign: Option<&Path>) -> Vec<u8> {
    let mut e = entries(file);
    let signature = e.pop().unwrap().1;
    let mut manifest: Value = serde_json::from_slice(&e.pop().unwrap().1).unwrap();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(extra.1));
    manifest["entries"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": extra.0, "size": extra.1.len(), "sha256": digest}));
    let manifest = serde_json::to_vec_pretty(&manifest).unwrap();
    let signature = match resign {
        Some(home) => {
            let site = courier::site::Site::open(home, courier::site::Passphrase::none()).unwrap();
            courier::crypto::sign_detached(&site.secret_key().unwrap(), &manifest).unwrap()
        }
        None => signature,
    };
    e.push((extra.0.to_string(), extra.1.to_vec()));
    e.push(("manifest.json".into(), manifest));
    e.push(("manifest.json.sig".into(), signature));
    let mut tar = tar::Builder::new(Vec::new());
    for (name, bytes) in &e {
        let h = courier::archive::entry_header(name, bytes.len() as u64).unwrap();
        tar.append(&h, &bytes[..]).unwrap();
    }
    tar.into_inner().unwrap()
}

#[test]
fn altered_or_foreign_bundles_in_an_archive_are_refused_and_prune_still_verifies() {
    let (w, _, c_done, _, _) = archived_world();
    let file = export(&w, &w.central, "c.tar");
    let cert = certificate(&w, &w.central, "c.asc");
    verified(&w, &file, &cert);
    // A byte flipped inside a bundle entry's content: its hash is not the manifest's.
    let good = std::fs::read(&file).unwrap();
    let first = &bundle_entries(&file)[0].1;
    let at = good
        .windows(first.len())
        .position(|w| w == &first[..])
        .unwrap()
        + first.len() / 2;
    let mut bytes = good.clone();
    bytes[at] ^= 0x01;
    let copy = w.path("altered.tar");
    std::fs::write(&copy, &bytes).unwrap();
    refused(verify_archive(&w, &copy, &cert), 1, "SHA-256 differ");
    // The same entry name twice (a rebuild signed with the site's key): refused by name.
    let (name, bytes) = &bundle_entries(&file)[0];
    let twice = format!("bundles/{name}");
    let rebuilt = with_entry(&file, (&twice, bytes), Some(&w.central));
    std::fs::write(&copy, rebuilt).unwrap();
    refused(
        verify_archive(&w, &copy, &cert),
        1,
        &format!("entry {twice} comes twice"),
    );
    // A bundle no row names (centre B's data bundle), listed in a manifest re-written: the
    // manifest is no longer the one the site signed.
    let foreign = std::fs::read(&w.export_down("ORG-002", "down-b")[0]).unwrap();
    let a_file = export(&w, &w.a, "a.tar");
    let a_cert = certificate(&w, &w.a, "a.asc");
    let entry = ("bundles/ORG-002-data.courier", &foreign[..]);
    std::fs::write(&copy, with_entry(&a_file, entry, None)).unwrap();
    let err = refused(
        verify_archive(&w, &copy, &a_cert),
        1,
        "not signed by the certificate given",
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    // Signed by the site's own key (a holder of it forging, or a bug): the bundle itself is
    // refused, naming the entry.
    std::fs::write(&copy, with_entry(&a_file, entry, Some(&w.a))).unwrap();
    refused(
        verify_archive(&w, &copy, &a_cert),
        1,
        "entry bundles/ORG-002-data.courier is bundle",
    );
    // Not a bundle at all.
    std::fs::write(
        &copy,
        with_entry(&a_file, ("bundles/x", b"hello"), Some(&w.a)),
    )
    .unwrap();
    refused(
        verify_archive(&w, &copy, &a_cert),
        1,
        "entry bundles/x is not a bundle file",
    );
    // Pruned after the archive: the chain still verifies, the archived files stay.
    let before = folder_files(&c_done);
    ok(prune(&w.central, "2999-01-01", &file));
    let (code, v) = history_verify(&w.central);
    assert_eq!((code, &v["intact"]), (0, &Value::Bool(true)), "{v}");
    assert_eq!(folder_files(&c_done), before);
    // --delete-bundles: the files the archive holds go, a file it does not hold stays.
    std::fs::write(c_done.join("other.courier"), b"not in the archive").unwrap();
    let args = [
        "history",
        "prune",
        "--before",
        "2999-01-01",
        "--archived",
        s(&file),
        "--delete-bundles",
    ];
    let out = ok(courier(&w.central, &args));
    assert!(
        out.contains(&format!("{} archived bundle file(s) deleted", before.len())),
        "{out}"
    );
    let left: Vec<String> = folder_files(&c_done).into_iter().map(|e| e.0).collect();
    assert_eq!(left, ["other.courier"]);
    assert_eq!(history_verify(&w.central).0, 0);
}
