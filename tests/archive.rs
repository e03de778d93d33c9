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
    let text = ok(courier(
        &w.path("no-such-home"),
        &[
            "history",
            "verify-archive",
            s(&file),
            "--certificate",
            s(&cert),
        ],
    ));
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
