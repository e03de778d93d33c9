//! A history nobody can rewrite unnoticed (issue 11): the chain's head is signed with the
//! site's key after every command, so `history --verify` fails for rows deleted at the end,
//! a chain recomputed after an edit, a removed or forged head, not only for a plain edit.

use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::*;

/// Central after enrolling both centres and exporting to them: a history of several rows.
fn central_with_history() -> World {
    let w = World::enrolled();
    w.load_fixtures();
    w.export_down("ORG-001", "down-1");
    w
}

/// `history --verify --json` at `home`: (exit code, document checked against its schema).
fn verify(home: &Path) -> (i32, Value) {
    let o = courier(home, &["history", "--verify", "--json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    courier::schema::check("history-verify", &v).expect("matches schemas/history-verify");
    (o.status.code().unwrap(), v)
}

fn store(home: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(home.join("store.sqlite")).unwrap()
}

/// Recompute every row's hash as courier does, from the first row on: what someone who
/// edited a row would do to hide it from the plain chain check.
fn recompute_chain(home: &Path) {
    let conn = store(home);
    let rows: Vec<(i64, String)> = {
        let mut stmt = conn
            .prepare("SELECT n, at, action, org_id, bundle_id, kind, seq, status, counts, report FROM history ORDER BY n")
            .unwrap();
        stmt.query_map([], |r| {
            let row = serde_json::json!([
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<i64>>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, String>(9)?
            ]);
            Ok((r.get(0)?, row.to_string()))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    };
    let mut prev = "0".repeat(64);
    for (n, row) in rows {
        let hash = hex::encode(
            Sha256::new()
                .chain_update(prev.as_bytes())
                .chain_update(row)
                .finalize(),
        );
        conn.execute(
            "UPDATE history SET prev_hash = ?1, hash = ?2 WHERE n = ?3",
            rusqlite::params![prev, hash, n],
        )
        .unwrap();
        prev = hash;
    }
}

#[test]
fn every_command_leaves_the_history_signed() {
    let w = central_with_history();
    let (code, v) = verify(&w.central);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["intact"], true);
    assert_eq!(v["signed_row"], v["rows"], "the newest row is signed: {v}");
    assert_eq!(v["unanchored"], 0);
    let head: Value =
        serde_json::from_slice(&std::fs::read(w.central.join("history-head.json")).unwrap())
            .unwrap();
    courier::schema::check("history-head", &head).expect("matches schemas/history-head");
    assert_eq!(head["site"], w.fingerprint(&w.central).as_str());
    // The centres too.
    let (code, v) = verify(&w.a);
    assert_eq!((code, &v["intact"]), (0, &Value::Bool(true)), "{v}");
    let out = ok(courier(&w.central, &["history", "--verify"]));
    assert!(out.contains("history chain intact"), "{out}");
}

#[test]
fn rows_deleted_at_the_end_are_detected() {
    let w = central_with_history();
    store(&w.central)
        .execute(
            "DELETE FROM history WHERE n = (SELECT MAX(n) FROM history)",
            [],
        )
        .unwrap();
    // The plain chain still holds: only the signed head shows the loss.
    let (code, v) = verify(&w.central);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["intact"], false);
    assert!(
        v["problem"].as_str().unwrap().contains("rows were deleted"),
        "{v}"
    );
    let err = refused(
        courier(&w.central, &["history", "--verify"]),
        1,
        "rows were deleted",
    );
    assert!(err.contains("store.sqlite"), "names the store: {err}");

    // A later command does not sign over it: it warns, and verify still fails.
    let o = courier(
        &w.central,
        &["load", s(&fixtures().join("data/central.jsonl"))],
    );
    assert!(
        stderr(&o).contains("the sync history was not signed"),
        "{}",
        stderr(&o)
    );
    let (code, v) = verify(&w.central);
    assert_eq!(code, 1, "{v}");
}

/// Rows deleted at the start behind a forged prune point (the chain from it still holds,
/// the signed row is still there) are detected: the signed head names where the chain
/// started, and a later command does not sign over it.
#[test]
fn rows_cut_at_the_start_behind_a_forged_prune_point_are_detected() {
    let w = central_with_history();
    let conn = store(&w.central);
    let (cut, hash): (i64, String) = conn
        .query_row(
            "SELECT n, hash FROM history ORDER BY n LIMIT 1 OFFSET 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    conn.execute("DELETE FROM entity_history WHERE history_n <= ?1", [cut])
        .unwrap();
    conn.execute("DELETE FROM history WHERE n <= ?1", [cut])
        .unwrap();
    conn.execute(
        "INSERT INTO history_prunes (n, hash, rows, archive_manifest_sha256, at)
         VALUES (?1, ?2, ?1, ?3, '2026-01-01T00:00:00Z')",
        rusqlite::params![cut, hash, "0".repeat(64)],
    )
    .unwrap();
    drop(conn);
    let (code, v) = verify(&w.central);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["intact"], false);
    let problem = v["problem"].as_str().unwrap();
    assert!(problem.contains("rows were cut after it was signed"), "{v}");
    assert!(
        problem.contains(&format!("starts at row {cut}")),
        "names the start: {v}"
    );
    let o = courier(
        &w.central,
        &["load", s(&fixtures().join("data/central.jsonl"))],
    );
    assert!(
        stderr(&o).contains("the sync history was not signed"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        verify(&w.central).0,
        1,
        "still refused after another command"
    );
}

#[test]
fn an_edit_hidden_by_a_recomputed_chain_is_detected() {
    let w = central_with_history();
    store(&w.central)
        .execute(
            "UPDATE history SET report = 'nothing happened' WHERE n = 2",
            [],
        )
        .unwrap();
    let (code, v) = verify(&w.central);
    assert_eq!(code, 1);
    assert!(
        v["problem"]
            .as_str()
            .unwrap()
            .contains("row 2 does not match"),
        "a plain edit breaks the chain: {v}"
    );
    recompute_chain(&w.central);
    let (code, v) = verify(&w.central);
    assert_eq!(code, 1, "{v}");
    assert!(v["problem"].as_str().unwrap().contains("recomputed"), "{v}");
}

#[test]
fn a_removed_or_forged_head_is_detected() {
    let w = central_with_history();
    let head_path = w.central.join("history-head.json");
    let good = std::fs::read(&head_path).unwrap();

    // Rows deleted and the head rewritten to name the new last row, without the key.
    let mut head: Value = serde_json::from_slice(&good).unwrap();
    let conn = store(&w.central);
    conn.execute(
        "DELETE FROM history WHERE n = (SELECT MAX(n) FROM history)",
        [],
    )
    .unwrap();
    let (n, hash): (i64, String) = conn
        .query_row(
            "SELECT n, hash FROM history ORDER BY n DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    head["row"] = n.into();
    head["hash"] = hash.into();
    std::fs::write(&head_path, serde_json::to_vec(&head).unwrap()).unwrap();
    let (code, v) = verify(&w.central);
    assert_eq!(code, 1, "{v}");
    assert!(
        v["problem"]
            .as_str()
            .unwrap()
            .contains("not signed by this site's key"),
        "{v}"
    );

    std::fs::remove_file(&head_path).unwrap();
    let (code, v) = verify(&w.central);
    assert_eq!(code, 1, "{v}");
    assert!(
        v["problem"]
            .as_str()
            .unwrap()
            .contains("no signed history head"),
        "{v}"
    );
}

/// A protected key and no passphrase (a command run without it, as a centre adding results
/// during the exam would): the new rows wait, counted by verify; `history --anchor` with the
/// passphrase signs them.
#[test]
fn rows_written_without_the_passphrase_wait_for_the_next_signature() {
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
    let (code, v) = verify(&p);
    assert_eq!((code, v["unanchored"].as_i64()), (0, Some(0)), "{v}");
    let signed = v["signed_row"].as_i64().expect("a signed row");

    ok(courier(&p, &["load", s(&data)]));
    let (code, v) = verify(&p);
    assert_eq!(code, 0, "the chain holds: {v}");
    assert_eq!(v["signed_row"].as_i64(), Some(signed), "{v}");
    let waiting = v["unanchored"].as_i64().unwrap();
    assert!(waiting >= 1, "the second load's row waits: {v}");
    let out = ok(courier(&p, &["history", "--verify"]));
    assert!(out.contains("not signed yet"), "{out}");

    refused(courier(&p, &["history", "--anchor"]), 4, "passphrase");
    let out = ok(courier_env(&p, &["history", "--anchor"], &pass));
    assert!(out.contains("signed up to row"), "{out}");
    let (code, v) = verify(&p);
    assert_eq!((code, v["unanchored"].as_i64()), (0, Some(0)), "{v}");
}
