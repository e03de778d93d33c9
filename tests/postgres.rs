//! Central on PostgreSQL (issue 15). Ignored by a plain `cargo test`: they need PostgreSQL's
//! server programs (`initdb`, `pg_ctl`, `psql`). Run them with
//! `cargo test --release --test integration -- --ignored postgres::`; each test starts its own
//! throwaway cluster ([`PgCluster`]) and says on stderr when it skipped and why.

use courier::store::{
    CentralResult, OwedAck, Quarantined, ScopeItem, Store, StoredEntity, StoredVariable, Tx,
};
use courier::wire::{AckStatus, LogAck, LogAckStatus, ResultAck};
use serde_json::{json, Value};

use crate::common::{self, *};

/// The harness itself: a cluster starts on a free port, takes SQL in the `courier`
/// database, and is gone (server stopped, folder removed) once dropped.
#[test]
#[ignore = "needs PostgreSQL"]
fn a_throwaway_cluster_starts_takes_sql_and_is_removed() {
    let Some(pg) = pg_cluster("postgres::a_throwaway_cluster_starts_takes_sql_and_is_removed")
    else {
        return;
    };
    assert!(pg.url().starts_with("postgres://courier@127.0.0.1:"));
    pg.psql("courier", "CREATE TABLE t (n INTEGER)").unwrap();
    pg.psql("courier", "INSERT INTO t VALUES (1), (2)").unwrap();
    assert_eq!(
        pg.psql("courier", "SELECT SUM(n) FROM t").unwrap().trim(),
        "3"
    );
    let port = pg.port;
    let folder = pg.dir_path();
    drop(pg);
    assert!(!folder.exists(), "the cluster's folder is removed");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the server is stopped"
    );
}

/// A centre's own tables, which a PostgreSQL central does not have.
const CENTER_ONLY: &[&str] = &["results", "log_batches", "log_ids"];

/// What the PostgreSQL schema has beyond SQLite's: the version table, explicit `rowid`
/// columns where SQLite orders by its implicit one, test packages' content in chunks and the
/// audit trail (files in a SQLite central's home).
const PG_ONLY: &[&str] = &[
    "courier_schema.*",
    "audit.*",
    "bundles.rowid",
    "entity_history.rowid",
    "own_keys.rowid",
    "package_chunks.*",
    "peers.rowid",
    "rollovers_out.rowid",
];

/// The PostgreSQL schema's versions, oldest first: src/store/postgres/schema-N.sql.
fn pg_schema_files() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/postgres");
    let mut found = Vec::new();
    for n in 1.. {
        match std::fs::read_to_string(dir.join(format!("schema-{n}.sql"))) {
            Ok(sql) => found.push(sql),
            Err(_) => return found,
        }
    }
    found
}

/// Every (table.column) of a fresh SQLite central, centre-only tables left out.
fn sqlite_central_columns(home: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(home.join("store.sqlite")).unwrap();
    let mut st = conn
        .prepare(
            "SELECT m.name || '.' || p.name FROM sqlite_master m, pragma_table_info(m.name) p
             WHERE m.type = 'table' ORDER BY 1",
        )
        .unwrap();
    let rows = st.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(Result::unwrap)
        .filter(|c| !CENTER_ONLY.contains(&c.split('.').next().unwrap()))
        .collect()
}

/// The PostgreSQL schema of central (src/store/postgres/schema-1.sql) applies to an empty
/// database, and holds every table and column a SQLite central has, nothing else but what
/// `PG_ONLY` names: the two backends cannot drift apart unnoticed.
#[test]
#[ignore = "needs PostgreSQL"]
fn the_postgres_schema_holds_every_column_of_a_sqlite_central() {
    let Some(pg) =
        pg_cluster("postgres::the_postgres_schema_holds_every_column_of_a_sqlite_central")
    else {
        return;
    };
    for schema in pg_schema_files() {
        pg.psql("courier", &schema).expect("the schema applies");
    }
    let listed = pg
        .psql(
            "courier",
            "SELECT table_name || '.' || column_name FROM information_schema.columns
             WHERE table_schema = 'public' ORDER BY 1",
        )
        .unwrap();
    let mut on_pg: Vec<String> = listed
        .lines()
        .filter(|c| {
            let table_any = format!("{}.*", c.split('.').next().unwrap());
            !PG_ONLY.contains(c) && !PG_ONLY.contains(&table_any.as_str())
        })
        .map(str::to_string)
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let central = dir.path().join("central");
    ok(courier(&central, &["init", "central", "--name", "Central"]));
    let mut on_sqlite = sqlite_central_columns(&central);
    on_sqlite.sort();
    on_pg.sort();
    assert_eq!(
        on_pg, on_sqlite,
        "PostgreSQL's columns (left) against SQLite's (right)"
    );
}

/// `Store::connect` applies central's schema to an empty database once (a second connection
/// finds it current), and refuses, untouched, a database whose schema is newer than this
/// program's.
#[test]
#[ignore = "needs PostgreSQL"]
fn the_schema_is_applied_once_and_a_newer_one_is_refused() {
    let Some(pg) = pg_cluster("postgres::the_schema_is_applied_once_and_a_newer_one_is_refused")
    else {
        return;
    };
    let versions = || {
        pg.psql("courier", "SELECT version FROM courier_schema ORDER BY 1")
            .unwrap()
    };
    let newest = pg_schema_files().len() as i64;
    let every: Vec<String> = (1..=newest).map(|v| v.to_string()).collect();
    drop(courier::store::Store::connect(&pg.url(), None).expect("first connection migrates"));
    assert_eq!(versions().trim(), every.join("\n"));
    drop(courier::store::Store::connect(&pg.url(), None).expect("second connection"));
    assert_eq!(versions().trim(), every.join("\n"), "applied once");
    pg.psql(
        "courier",
        "INSERT INTO courier_schema (version, applied_at) VALUES (99, 'later')",
    )
    .unwrap();
    let refused = courier::store::Store::connect(&pg.url(), None).err();
    assert!(
        matches!(
            refused,
            Some(courier::Error::StoreTooNew {
                found: 99,
                supported,
                ..
            }) if supported == newest
        ),
        "{refused:?}"
    );
    assert_eq!(
        versions().lines().count() as i64,
        newest + 1,
        "nothing changed"
    );
}

/// `init central --store URL` keeps central's store in PostgreSQL: the URL (and never a
/// password) is in courier.json's settings, which the config schema accepts, the schema is
/// applied to the database, and no store.sqlite is created in the home.
#[test]
#[ignore = "needs PostgreSQL"]
fn init_central_with_a_postgres_store_writes_the_url_and_no_sqlite_file() {
    let Some(pg) = pg_cluster(
        "postgres::init_central_with_a_postgres_store_writes_the_url_and_no_sqlite_file",
    ) else {
        return;
    };
    let (_dir, central) = central_on(&pg);
    let url = pg.url();
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(central.join("courier.json")).unwrap()).unwrap();
    assert_eq!(config["settings"]["store"], url.as_str());
    courier::schema::check("config", &config).expect("courier.json matches its schema");
    assert!(!central.join("store.sqlite").exists(), "no SQLite store");
    assert_eq!(
        pg.psql("courier", "SELECT MAX(version) FROM courier_schema")
            .unwrap()
            .trim(),
        pg_schema_files().len().to_string(),
        "the schema is applied"
    );
}

/// `init central --store` on a database that already holds a central (here one with a
/// centre registered) is refused with one line saying so, and writes no courier.json: two
/// centrals never share one store.
#[test]
#[ignore = "needs PostgreSQL"]
fn init_central_refuses_a_database_already_holding_a_central() {
    let Some(pg) =
        pg_cluster("postgres::init_central_refuses_a_database_already_holding_a_central")
    else {
        return;
    };
    let (dir, central) = central_on(&pg);
    ok(courier(
        &central,
        &[
            "center",
            "add",
            "ORG-001",
            "--label",
            "A",
            "--out",
            s(&dir.path().join("e.json")),
        ],
    ));
    let second = dir.path().join("second");
    let err = refused(
        courier(
            &second,
            &["init", "central", "--name", "Other", "--store", &pg.url()],
        ),
        2,
        "already holds a central's store",
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!second.join("courier.json").exists(), "no site was made");
}

/// A store URL holding a password is refused before anything is created (courier.json is
/// copied from host to host: a password belongs in a file, PGPASSWORD or .pgpass), and so
/// are a URL that is not PostgreSQL's and `--store` at a centre. No server is needed.
#[test]
fn init_refuses_a_store_url_with_a_password_and_a_store_at_a_centre() {
    let dir = tempfile::tempdir().unwrap();
    let central = dir.path().join("central");
    for (url, needle) in [
        (
            "postgres://courier:secret@127.0.0.1/courier",
            "--store holds a password",
        ),
        (
            "postgres://courier@127.0.0.1/courier?password=secret",
            "--store holds a password",
        ),
        ("mysql://courier@127.0.0.1/courier", "not a PostgreSQL URL"),
        ("postgres://courier@127.0.0.1", "names no database"),
    ] {
        let err = refused(
            courier(
                &central,
                &["init", "central", "--name", "Central", "--store", url],
            ),
            2,
            needle,
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(!err.contains("secret"), "the password is not echoed: {err}");
        assert!(!central.join("courier.json").exists(), "{url}: no site");
        assert!(!central.join("store.sqlite").exists(), "{url}: no store");
    }
    let box_ = dir.path().join("box");
    refused(
        courier(
            &box_,
            &[
                "init",
                "center",
                "--org",
                "ORG-001",
                "--store",
                "postgres://courier@127.0.0.1/courier",
            ],
        ),
        2,
        "--store",
    );
    assert!(!box_.join("courier.json").exists());
}

/// `store migrate --to URL` copies a SQLite central that went through a sync (centres
/// enrolled, data sent, results and logs received) into an empty database: every table's
/// rows equal (the JSON summary, checked against its schema, and counted again with psql),
/// the history verifies with the source's head; without `--switch` courier.json is unchanged,
/// a second migrate into the now full database is refused, and with `--switch` into a fresh
/// one the central runs on PostgreSQL (`history --verify`).
#[test]
#[ignore = "needs PostgreSQL"]
fn store_migrate_copies_a_sqlite_central_and_switches_only_when_asked() {
    let Some(pg) =
        pg_cluster("postgres::store_migrate_copies_a_sqlite_central_and_switches_only_when_asked")
    else {
        return;
    };
    let w = World::synced();
    let results = fixtures().join("data/results/ORG-001-day1.jsonl");
    let logs = fixtures().join("data/logs/ORG-001-day1.jsonl");
    ok(courier(&w.a, &["results", "add", s(&results)]));
    ok(courier(&w.a, &["logs", "add", s(&logs)]));
    for f in w.export_up(&w.a, "up-a", &[]) {
        ok(courier(&w.central, &["import", s(&f)]));
    }
    let config_before = std::fs::read(w.central.join("courier.json")).unwrap();
    let url = pg.url();
    let out = ok(courier(
        &w.central,
        &["store", "migrate", "--to", &url, "--json"],
    ));
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    courier::schema::check("store-migrate", &summary).expect("the summary matches its schema");
    assert_eq!(summary["switched"], false);
    let tables = summary["tables"].as_array().unwrap();
    for t in [
        "peers",
        "centers",
        "entities",
        "bundles",
        "history",
        "central_results",
        "variables",
        "central_logs",
    ] {
        let row = tables
            .iter()
            .find(|r| r["table"] == t)
            .unwrap_or_else(|| panic!("{t} listed"));
        let n = count(&w.central, t);
        assert!(n > 0, "{t}: the scenario filled it");
        assert_eq!(row["sqlite_rows"], n, "{t}");
        assert_eq!(row["postgres_rows"], n, "{t}");
        let on_pg = pg
            .psql("courier", &format!("SELECT COUNT(*) FROM {t}"))
            .unwrap();
        assert_eq!(on_pg.trim(), n.to_string(), "{t} on PostgreSQL");
    }
    assert_eq!(
        summary["history_head"],
        count(&w.central, "history"),
        "the head is the source's"
    );
    assert_eq!(
        std::fs::read(w.central.join("courier.json")).unwrap(),
        config_before
    );
    refused(
        courier(&w.central, &["store", "migrate", "--to", &url]),
        2,
        "already holds data",
    );
    pg.psql("postgres", "CREATE DATABASE moved").unwrap();
    let moved = format!("postgres://courier@127.0.0.1:{}/moved", pg.port);
    ok(courier(
        &w.central,
        &["store", "migrate", "--to", &moved, "--switch"],
    ));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.central.join("courier.json")).unwrap()).unwrap();
    assert_eq!(config["settings"]["store"], moved.as_str());
    ok(courier(&w.central, &["history", "--verify"]));
}

/// Run `courier import FILE` at `home` in two processes at once; their outputs.
fn two_imports_at_once(
    home: &std::path::Path,
    a: &std::path::Path,
    b: &std::path::Path,
) -> [std::process::Output; 2] {
    let start = |f: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_courier"))
            .args(["--home", s(home), "import", s(f)])
            .env_remove("COURIER_HOME")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("courier starts")
    };
    let (pa, pb) = (start(a), start(b));
    [
        pa.wait_with_output().unwrap(),
        pb.wait_with_output().unwrap(),
    ]
}

/// Two import workers against one PostgreSQL central: two centres' results files imported at
/// the same time both apply, and leave what a sequential import leaves (every result once,
/// the history verifying); the same centre's file imported by two workers at once is applied
/// by one, the other finds it already applied (the per-centre lock), nothing doubled.
#[test]
#[ignore = "needs PostgreSQL"]
fn two_workers_import_different_centres_at_once() {
    let Some(pg) = pg_cluster("postgres::two_workers_import_different_centres_at_once") else {
        return;
    };
    let (dir, central) = central_on(&pg);
    let (a, b) = (dir.path().join("center-a"), dir.path().join("center-b"));
    ok(courier(&a, &["init", "center", "--org", "ORG-001"]));
    ok(courier(&b, &["init", "center", "--org", "ORG-002"]));
    let w = World { dir, central, a, b };
    w.enroll(&w.a, "ORG-001");
    w.enroll(&w.b, "ORG-002");
    w.load_fixtures();
    // ORG-002's day: ORG-001's fixture moved to ORG-002's deliveries, test takers and ids.
    let results = fixtures().join("data/results/ORG-001-day1.jsonl");
    let theirs = w.path("ORG-002-day1.jsonl");
    let text = std::fs::read_to_string(&results).unwrap();
    std::fs::write(
        &theirs,
        text.replace("del-basic", "del-sumscore")
            .replace("#tt-001", "#tt-002")
            .replace("centre-001.example", "centre-002.example"),
    )
    .unwrap();
    for (home, org, day) in [(&w.a, "ORG-001", &results), (&w.b, "ORG-002", &theirs)] {
        for f in w.export_down(org, &format!("down-{org}")) {
            ok(courier(home, &["import", s(&f)]));
        }
        ok(courier(home, &["results", "add", s(day)]));
    }
    let up_a = w.export_up(&w.a, "up-a", &[]);
    let up_b = w.export_up(&w.b, "up-b", &[]);
    assert_eq!((up_a.len(), up_b.len()), (1, 1));
    let sql = |q: &str| pg.psql("courier", q).unwrap().trim().to_string();
    let [ra, rb] = two_imports_at_once(&w.central, &up_a[0], &up_b[0]);
    ok(ra);
    ok(rb);
    let per_centre = |org: &str| {
        sql(&format!(
            "SELECT COUNT(*) FROM central_results WHERE org_id = '{org}'"
        ))
    };
    assert_eq!(
        (per_centre("ORG-001"), per_centre("ORG-002")),
        ("4".into(), "4".into()),
        "each centre's four finished results (the fifth is still running)"
    );
    assert_eq!(
        sql("SELECT COUNT(*) FROM bundles WHERE direction = 'in' AND kind = 'results'"),
        "2"
    );
    ok(courier(&w.central, &["history", "--verify"]));

    // The same centre's next file, imported by two workers at once.
    let reopened = fixtures().join("data/results/ORG-001-reopened.jsonl");
    ok(courier(&w.a, &["results", "add", s(&reopened)]));
    let next = w.export_up(&w.a, "up-a2", &[]);
    let copy = w.path("copy-of-next.courier");
    std::fs::copy(&next[0], &copy).unwrap();
    let variables = sql("SELECT COUNT(*) FROM variables");
    let [r1, r2] = two_imports_at_once(&w.central, &next[0], &copy);
    let said = format!("{}{}", stdout(&r1), stdout(&r2));
    ok(r1);
    ok(r2);
    assert_eq!(
        said.matches("already applied; nothing changed").count(),
        1,
        "one worker found it applied:\n{said}"
    );
    assert_eq!(
        sql("SELECT COUNT(*) FROM bundles WHERE direction = 'in' AND kind = 'results'"),
        "3"
    );
    assert_eq!(
        per_centre("ORG-001"),
        "4",
        "a reopened result replaces its copy"
    );
    assert!(
        sql("SELECT COUNT(*) FROM variables")
            .parse::<i64>()
            .unwrap()
            >= variables.parse::<i64>().unwrap()
    );
    ok(courier(&w.central, &["history", "--verify"]));
}

/// A temporary folder holding `central`, created on the cluster's `courier` database.
fn central_on(pg: &PgCluster) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let central = dir.path().join("central");
    ok(courier(
        &central,
        &["init", "central", "--name", "Central", "--store", &pg.url()],
    ));
    (dir, central)
}

// ---- Ledger, HistoryArchive, Keyring and CenterRegistry on both backends ------------------

use courier::store::{BundleRecord, NewHistory};

/// Times (`YYYY-MM-DDTHH:MM:SSZ`) and 64-digit hashes (which cover a time) replaced by
/// `<time>` and `<hash>`: the two walks run a moment apart.
fn masked(text: &str) -> String {
    let b = text.as_bytes();
    let is_time = |s: &[u8]| {
        s.len() >= 20
            && s.iter().take(20).enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                10 => *c == b'T',
                13 | 16 => *c == b':',
                19 => *c == b'Z',
                _ => c.is_ascii_digit(),
            })
    };
    let hex_run = |s: &[u8]| {
        s.iter()
            .take_while(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
            .count()
    };
    let (mut out, mut i) = (String::new(), 0);
    while i < b.len() {
        if is_time(&b[i..]) {
            out.push_str("<time>");
            i += 20;
        } else if hex_run(&b[i..]) == 64 {
            out.push_str("<hash>");
            i += 64;
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn bundle<'a>(
    id: &'a str,
    kind: &'a str,
    sender: &'a str,
    org: &'a str,
    seq: u64,
) -> BundleRecord<'a> {
    BundleRecord {
        bundle_id: id,
        kind,
        sender,
        recipient: "CENTRAL",
        org_id: org,
        sequence: seq,
        set_id: "set-1",
        set_index: seq,
        set_count: 3,
        payload_size: 100 * seq,
    }
}

fn sync<'a>(action: &'a str, org: Option<&'a str>, seq: i64) -> NewHistory<'a> {
    NewHistory {
        action,
        org_id: org,
        bundle_id: Some("b"),
        kind: Some("results"),
        seq: Some(seq),
        status: "applied",
        counts: serde_json::json!({"results": seq, "note": "ü"}),
        report: format!("sync {seq}"),
    }
}

/// Record `expr = {:?}` (times and hashes masked) in the walk's transcript.
macro_rules! note {
    ($out:ident, $e:expr) => {
        $out.push(masked(&format!("{} = {:?}", stringify!($e), $e)))
    };
}

/// Meta, counters, peers and bundles: what the ledger answers.
fn walk_ledger(tx: &Tx<'_>, out: &mut Vec<String>) {
    tx.meta_set("site_name", "Central").unwrap();
    tx.meta_set("site_name", "Central (renamed)").unwrap();
    note!(out, tx.meta_get("site_name").unwrap());
    note!(out, tx.meta_get("absent").unwrap());
    for _ in 0..3 {
        note!(out, tx.next_counter("up_seq").unwrap());
    }
    tx.meta_set("bad", "x").unwrap();
    note!(
        out,
        matches!(
            tx.next_counter("bad"),
            Err(courier::Error::StoreDamaged { .. })
        )
    );
    tx.pin_peer("FA", "center", Some("org-1"), "cert A")
        .unwrap();
    tx.pin_peer("FB", "center", Some("org-2"), "cert B")
        .unwrap();
    tx.pin_peer("FC", "central", None, "cert C").unwrap();
    tx.pin_peer("FA", "center", Some("org-9"), "ignored")
        .unwrap();
    note!(out, tx.peer("FA").unwrap());
    note!(out, tx.peer("FZ").unwrap());
    note!(out, tx.peer_by_role("central").unwrap());
    for (id, kind, sender, org, seq) in [
        ("b1", "results", "FA", "org-1", 1),
        ("b2", "results", "FA", "org-1", 2),
        ("b3", "results", "FB", "org-2", 1),
        ("b1", "results", "FB", "org-2", 2),
        ("b4", "data", "FC", "", 1),
    ] {
        tx.record_bundle(
            "in",
            &bundle(id, kind, sender, org, seq),
            &format!("{id}.bundle"),
        )
        .unwrap();
    }
    tx.record_bundle("in", &bundle("b2", "results", "FA", "org-1", 7), "dup")
        .unwrap();
    tx.record_bundle("out", &bundle("d1", "data", "ME", "org-1", 1), "d1.bundle")
        .unwrap();
    tx.record_bundle("out", &bundle("d2", "data", "ME", "org-1", 2), "d2.bundle")
        .unwrap();
    note!(out, tx.bundle_seen("FA", "b1").unwrap());
    note!(out, tx.bundle_seen("FA", "b3").unwrap());
    note!(out, tx.bundle_id_other_senders("FA", "b1").unwrap());
    note!(out, tx.last_seq_in("FA", "results").unwrap());
    note!(out, tx.last_seq_in("FZ", "results").unwrap());
    note!(out, tx.applied_bundles("results", 3).unwrap());
    note!(out, tx.last_applied_seq("results").unwrap());
    note!(out, tx.set_parts_received("set-1").unwrap());
}

/// The hash-chained history, its archive reads and a prune.
fn walk_history(tx: &Tx<'_>, out: &mut Vec<String>) {
    for seq in 1..=4 {
        let org = ["org-1", "org-2"][seq as usize % 2];
        let n = tx.add_history(sync("import", Some(org), seq)).unwrap();
        tx.entity_history(n, "e1", "delivery", "updated").unwrap();
        tx.entity_history(n, &format!("e{seq}"), "test-taker", "created")
            .unwrap();
    }
    note!(out, tx.history(None, 3).unwrap());
    note!(out, tx.history(Some("org-1"), 10).unwrap());
    note!(out, tx.history_head().unwrap());
    note!(out, tx.history_hash(2).unwrap().is_some());
    note!(out, tx.history_hash(9).unwrap());
    note!(out, tx.verify_history().unwrap());
    note!(out, tx.entity_actions("e1").unwrap());
    note!(out, tx.history_start().unwrap());
    note!(
        out,
        tx.history_prefix_before("9999-01-01T00:00:00Z").unwrap()
    );
    note!(
        out,
        tx.history_prefix_before("1999-01-01T00:00:00Z").unwrap()
    );
    let mut rows = Vec::new();
    tx.each_history_row(Some(3), &mut |r| {
        rows.push(r);
        Ok(rows.len() < 2)
    })
    .unwrap();
    note!(out, rows);
    let mut actions = Vec::new();
    tx.each_archived_action(2, &mut |a| {
        actions.push(a);
        Ok(())
    })
    .unwrap();
    note!(out, actions);
    let hash_2 = tx.history_hash(2).unwrap();
    note!(out, tx.prune_history(2, "manifest").unwrap());
    note!(out, tx.history_start().unwrap().row);
    note!(out, tx.history_hash(2).unwrap() == hash_2);
    note!(out, tx.verify_history().unwrap());
    note!(out, tx.add_history(sync("export", None, 5)).unwrap());
    note!(out, tx.verify_history().unwrap());
    note!(out, tx.entity_actions("e1").unwrap());
}

/// Keys retired and replaced, rollovers owed and acknowledged, own keys, the bundles floor.
fn walk_keys(tx: &Tx<'_>, out: &mut Vec<String>) {
    tx.pin_peer("FA2", "center", Some("org-1"), "cert A2")
        .unwrap();
    tx.retire_peer("FA", Some("FA2"), 3, "rollover").unwrap();
    tx.record_bundle("in", &bundle("b5", "results", "FA2", "org-1", 3), "b5")
        .unwrap();
    note!(out, tx.peer_retired("FA").unwrap());
    note!(out, tx.peer_retired("FB").unwrap());
    tx.owe_rollover("org-1", "K2", 4, "{\"to\":\"K2\"}")
        .unwrap();
    tx.owe_rollover("org-1", "K3", 5, "{\"to\":\"K3\"}")
        .unwrap();
    tx.owe_rollover("org-2", "K3", 5, "{\"to\":\"K3\"}")
        .unwrap();
    note!(out, tx.rollovers_owed("org-1").unwrap());
    note!(out, tx.rollovers_acked("org-1", "K2").unwrap());
    note!(out, tx.rollovers_owed("org-1").unwrap());
    note!(out, tx.rollovers_acked("org-2", "K9").unwrap());
    note!(out, tx.max_seq_in("results").unwrap());
    note!(out, tx.revoked_central().unwrap());
    tx.retire_peer("FC", None, 2, "revoked by the centre")
        .unwrap();
    note!(out, tx.revoked_central().unwrap());
    note!(out, tx.peer_by_role("central").unwrap());
    tx.own_key_replaced("K1", "2020-01-01T00:00:00Z", "K2")
        .unwrap();
    tx.own_key_replaced("K2", "ignored", "K3").unwrap();
    note!(out, tx.own_keys().unwrap());
    note!(out, tx.peer_keys(None).unwrap());
    note!(out, tx.peer_keys(Some("org-1")).unwrap());
    tx.set_bundles_floor().unwrap();
    // A rowid: PostgreSQL's identity may skip values (an insert ignored as a duplicate takes
    // one), so only what the floor does is compared.
    note!(out, tx.meta_get("bundles_floor").unwrap().is_some());
    note!(out, tx.max_seq_in("results").unwrap());
    note!(out, tx.last_applied_seq("results").unwrap());
    note!(out, tx.applied_bundles("results", 9).unwrap());
}

/// Centres added, enrolled, rekeyed, revoked and reset, and the figures `status` shows.
fn walk_centers(tx: &Tx<'_>, out: &mut Vec<String>) {
    tx.add_center("org-2", "Second", "t2", Some("FB")).unwrap();
    tx.add_center("org-1", "First", "t1", None).unwrap();
    tx.lock_center("org-1").unwrap();
    tx.lock_center("org-1").unwrap();
    tx.set_center_enrolled("org-1", "FA").unwrap();
    tx.set_center_key("org-1", "FA2").unwrap();
    tx.set_center_next_seq("org-1", 3).unwrap();
    tx.set_center_ack("org-1", Some(2), 5, &["p1".to_string(), "p2".to_string()])
        .unwrap();
    tx.set_center_enrolled("org-2", "FB").unwrap();
    note!(
        out,
        tx.revoke_center("org-2", "stolen laptop").unwrap().len()
    );
    let file = std::path::Path::new("in/b9.bundle");
    note!(out, tx.refuse_if_revoked(file, "org-1").is_ok());
    note!(
        out,
        tx.refuse_if_revoked(file, "org-2")
            .map_err(|e| e.to_string())
    );
    note!(out, tx.centers().unwrap());
    tx.reset_center_for_reenrollment("org-2", "Second, new PC", "t3")
        .unwrap();
    note!(out, tx.center("org-2").unwrap());
    note!(out, tx.center("org-3").unwrap());
    note!(out, tx.center_figures("org-1", Some("FA2")).unwrap());
    note!(out, tx.center_figures("org-2", None).unwrap());
    note!(out, tx.received_seqs("FA2").unwrap());
    note!(out, tx.received_seqs("FB").unwrap());
    note!(out, tx.bundle_by_seq("out", "data", 2).unwrap());
    note!(out, tx.bundle_by_seq("in", "data", 9).unwrap());
    note!(out, tx.last_applied("results").unwrap());
    note!(out, tx.arrivals(13).unwrap());
    note!(out, tx.received_bundles().unwrap());
}

/// The whole walk on one store: one transaction committed, then read again in another; a
/// centre added twice is refused as a constraint.
fn walk(store: &mut Store) -> Vec<String> {
    let mut out = Vec::new();
    let tx = store.begin().unwrap();
    walk_ledger(&tx, &mut out);
    walk_history(&tx, &mut out);
    walk_keys(&tx, &mut out);
    walk_centers(&tx, &mut out);
    tx.commit().unwrap();
    let tx = store.read().unwrap();
    note!(out, tx.history(None, 100).unwrap());
    note!(out, tx.verify_history().unwrap());
    note!(out, tx.centers().unwrap());
    drop(tx);
    let tx = store.begin().unwrap();
    let again = tx.add_center("org-1", "again", "t", None);
    note!(
        out,
        matches!(
            again,
            Err(courier::Error::Store {
                kind: courier::error::StoreFailure::Constraint,
                ..
            })
        )
    );
    out
}

/// The same calls of Ledger, HistoryArchive, Keyring and CenterRegistry on a SQLite store and
/// on a PostgreSQL store answer the same (times and the hashes covering them aside), and the
/// history written on PostgreSQL verifies.
#[test]
#[ignore = "needs PostgreSQL (.ci/run installs it)"]
fn ledger_keys_and_centres_answer_as_on_sqlite() {
    let Some(pg) = pg_cluster("postgres::ledger_keys_and_centres_answer_as_on_sqlite") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let on_sqlite = walk(&mut Store::open(&dir.path().join("store.sqlite")).unwrap());
    let on_pg = walk(&mut Store::connect(&pg.url(), None).unwrap());
    assert!(on_sqlite.len() > 60, "{}", on_sqlite.len());
    for (s, p) in on_sqlite.iter().zip(&on_pg) {
        assert_eq!(p, s, "PostgreSQL (left) against SQLite (right)");
    }
    assert_eq!(on_pg.len(), on_sqlite.len());
}

/// The address of the cluster's database, with a lock timeout for the session: a lock held
/// elsewhere makes the call fail ("busy") instead of waiting.
fn quick_url(pg: &PgCluster) -> String {
    format!("{}?options=-c%20lock_timeout%3D200", pg.url())
}

fn is_busy<T: std::fmt::Debug>(r: courier::Result<T>) -> bool {
    matches!(
        r,
        Err(courier::Error::Store {
            kind: courier::error::StoreFailure::Busy,
            ..
        })
    )
}

/// A centre's lock is held until its transaction ends: another importer taking the same
/// centre's lock waits (here: a short lock timeout says "busy"), one taking another centre's
/// does not, and one waiting gets the lock once the holder commits, seeing what it wrote.
#[test]
#[ignore = "needs PostgreSQL (.ci/run installs it)"]
fn a_centres_lock_serialises_its_imports_only() {
    let Some(pg) = pg_cluster("postgres::a_centres_lock_serialises_its_imports_only") else {
        return;
    };
    let mut holder = Store::connect(&pg.url(), None).unwrap();
    let tx = holder.begin().unwrap();
    tx.lock_center("org-1").unwrap();
    let quick = quick_url(&pg);
    let (same, other) = std::thread::spawn(move || {
        let mut store = Store::connect(&quick, None).unwrap();
        let same = is_busy(store.begin().unwrap().lock_center("org-1"));
        let other = store.begin().unwrap().lock_center("org-2").is_ok();
        (same, other)
    })
    .join()
    .unwrap();
    assert!(same, "the same centre's lock is held: busy");
    assert!(other, "another centre's lock is free");

    let url = pg.url();
    let waiter = std::thread::spawn(move || {
        let mut store = Store::connect(&url, None).unwrap();
        let tx = store.begin().unwrap();
        tx.lock_center("org-1").unwrap();
        let seen = tx.meta_get("written_by").unwrap();
        tx.meta_set("written_by", "waiter").unwrap();
        tx.commit().unwrap();
        seen
    });
    let waiting = "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted";
    while pg.psql("courier", waiting).unwrap().trim() != "1" {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    tx.meta_set("written_by", "holder").unwrap();
    tx.commit().unwrap();
    assert_eq!(
        waiter.join().unwrap().as_deref(),
        Some("holder"),
        "the waiter ran after the holder committed"
    );
}

/// Several transactions appending to the history and taking counters at once: every row
/// gets its own number, the chain verifies, no counter value is taken twice.
#[test]
#[ignore = "needs PostgreSQL (.ci/run installs it)"]
fn concurrent_writers_keep_one_history_chain_and_distinct_counters() {
    let Some(pg) =
        pg_cluster("postgres::concurrent_writers_keep_one_history_chain_and_distinct_counters")
    else {
        return;
    };
    drop(Store::connect(&pg.url(), None).unwrap());
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let url = pg.url();
            std::thread::spawn(move || {
                let mut store = Store::connect(&url, None).unwrap();
                let mut taken = Vec::new();
                for i in 0..10 {
                    let tx = store.begin().unwrap();
                    taken.push(tx.next_counter("up_seq").unwrap());
                    tx.add_history(sync("import", Some(&format!("org-{w}")), i))
                        .unwrap();
                    tx.commit().unwrap();
                }
                taken
            })
        })
        .collect();
    let mut taken: Vec<i64> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    taken.sort();
    assert_eq!(taken, (1..=40).collect::<Vec<_>>());
    let mut store = Store::connect(&pg.url(), None).unwrap();
    let tx = store.read().unwrap();
    assert_eq!(tx.history_head().unwrap().map(|h| h.n), Some(40));
    assert_eq!(tx.verify_history().unwrap(), None);
}

/// A database whose schema is newer than this program's is refused before anything is
/// created in it.
#[test]
#[ignore = "needs PostgreSQL (.ci/run installs it)"]
fn a_newer_schema_is_refused_before_any_table_is_made() {
    let Some(pg) = pg_cluster("postgres::a_newer_schema_is_refused_before_any_table_is_made")
    else {
        return;
    };
    pg.psql(
        "courier",
        "CREATE TABLE courier_schema (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);
         INSERT INTO courier_schema VALUES (99, 'later')",
    )
    .unwrap();
    let refused = Store::connect(&pg.url(), None).err();
    assert!(
        matches!(
            refused,
            Some(courier::Error::StoreTooNew {
                found: 99,
                supported,
                ..
            }) if supported == pg_schema_files().len() as i64
        ),
        "{refused:?}"
    );
    let tables = "SELECT string_agg(table_name, ',') FROM information_schema.tables
                  WHERE table_schema = 'public'";
    assert_eq!(pg.psql("courier", tables).unwrap().trim(), "courier_schema");
}

/// A store address holding a password is refused without showing it, and a server that does
/// not answer is one line naming the address and what to check (no server needed).
#[test]
fn a_password_in_the_address_or_an_unreachable_server_is_one_clear_line() {
    let e = Store::connect("postgres://courier:s3cret@127.0.0.1:1/courier", None)
        .err()
        .unwrap();
    assert!(
        matches!(e, courier::Error::PasswordInStoreUrl { .. }),
        "{e}"
    );
    assert!(!e.to_string().contains("s3cret"), "{e}");
    assert_eq!(e.exit_code(), 2);
    let url = "postgres://courier@127.0.0.1:1/courier";
    let e = Store::connect(url, None).err().unwrap();
    let line = e.to_string();
    assert!(
        matches!(e, courier::Error::StoreUnreachable { .. }),
        "{line}"
    );
    assert!(line.starts_with(url) && !line.contains('\n'), "{line}");
    assert!(line.contains("check that the server runs"), "{line}");
    assert!(courier::store::password_for(url, None).is_ok());
}

// ---- the domain traits on both backends (issue 15, pgB) -----------------------------------

/// What one walk over a store answered, one line per answer (`{:?}`), to compare backends.
type Answers = Vec<String>;

/// Run `walk` on a fresh SQLite store and on the cluster's PostgreSQL store, each in one
/// transaction (committed), and assert that both answered the same; returns the answers.
fn on_both_stores(pg: &PgCluster, walk: impl Fn(&Tx<'_>) -> Answers) -> Answers {
    let dir = tempfile::tempdir().unwrap();
    let run = |mut store: Store| {
        let tx = store.begin().unwrap();
        let answers = walk(&tx);
        tx.commit().unwrap();
        answers
    };
    let on_sqlite = run(Store::open(&dir.path().join("store.sqlite")).unwrap());
    let on_pg = run(Store::connect(&pg.url(), None).unwrap());
    assert_eq!(on_sqlite.len(), on_pg.len(), "as many answers");
    for (s, p) in on_sqlite.iter().zip(&on_pg) {
        assert_eq!(
            s, p,
            "SQLite (left) and PostgreSQL (right) answered differently"
        );
    }
    on_pg
}

/// Keep an answer.
fn note(a: &mut Answers, answer: impl std::fmt::Debug) {
    a.push(format!("{answer:?}"));
}

/// Ids whose byte order is not a natural language's: both backends sort them byte-wise.
const IDS: &[&str] = &["b", "B", "a_1", "a-1", "é", "Z9"];

fn entity(id: &str, kind: &str, n: u32, package: Option<&str>) -> StoredEntity {
    let mut properties = serde_json::Map::new();
    properties.insert("label".into(), json!(format!("{id} ünïcode {n}")));
    properties.insert("n".into(), json!(n));
    StoredEntity {
        id: id.into(),
        kind: kind.into(),
        checksum: format!("sum-{id}-{n}"),
        properties,
        sealed: n.is_multiple_of(2).then(|| vec![0, 1, 2, 255, n as u8]),
        sealed_names: if n.is_multiple_of(2) {
            vec!["name".into(), "mail".into()]
        } else {
            vec![]
        },
        package: package.map(str::to_string),
    }
}

/// Entities put, replaced and deleted, read back every way; packages known, added, unused
/// dropped; scope lists recorded, read since a sequence and forgotten; (delivery, test
/// taker) pairs sent.
fn entities_walk(tx: &Tx<'_>) -> Answers {
    let mut a = Answers::new();
    let kinds = [
        "delivery",
        "test-taker",
        "eligibility",
        "test-center",
        "proctor",
        "administrator",
    ];
    for (i, id) in IDS.iter().enumerate() {
        let package = (kinds[i] == "delivery").then_some("p1");
        tx.put_entity(&entity(id, kinds[i], i as u32, package))
            .unwrap();
    }
    tx.put_entity(&entity("d2", "delivery", 8, Some("p-missing")))
        .unwrap();
    tx.put_entity(&entity("B", "test-taker", 7, None)).unwrap(); // replaced
    note(&mut a, tx.delete_entity("Z9").unwrap());
    note(&mut a, tx.delete_entity("Z9").unwrap());
    for id in ["b", "B", "é", "Z9", "none"] {
        note(&mut a, tx.entity(id).unwrap());
        note(&mut a, tx.entity_checksum(id).unwrap());
        note(&mut a, tx.entity_kind(id).unwrap());
        note(&mut a, tx.holds(id, "test-taker").unwrap());
    }
    for kind in kinds {
        note(&mut a, tx.entities_of_type(kind).unwrap());
    }
    note(&mut a, tx.all_entities().unwrap());
    let mut inventory = tx.inventory().unwrap();
    inventory.sort_by(|x, y| x.id.cmp(&y.id));
    a.push(format!("{inventory:?}"));

    for (sha, name) in [
        ("p1", "one.zip"),
        ("p0", "zero.zip"),
        ("p1", "again.zip"),
        ("p2", "two.zip"),
    ] {
        tx.add_package(sha, 10, name).unwrap();
    }
    note(&mut a, tx.package_known("p1").unwrap());
    note(&mut a, tx.package_known("p9").unwrap());
    note(&mut a, tx.package_hashes().unwrap());
    note(&mut a, tx.deliveries_without_package().unwrap());
    let mut dropped = tx.drop_unused_packages().unwrap();
    dropped.sort();
    a.push(format!("{dropped:?}"));
    note(&mut a, tx.package_hashes().unwrap());

    let item = |id: &str, seq: i64| ScopeItem {
        id: id.into(),
        kind: "test-taker".into(),
        checksum: format!("c{seq}"),
    };
    for seq in 1..=3 {
        let items: Vec<ScopeItem> = IDS.iter().map(|id| item(id, seq)).collect();
        tx.record_scope("org-1", seq, &items).unwrap();
    }
    tx.record_scope("org-2", 1, &[item("x", 1)]).unwrap();
    note(&mut a, tx.scopes_since("org-1", 2).unwrap());
    tx.forget_scopes_before("org-1", 3).unwrap();
    note(&mut a, tx.scopes_since("org-1", 0).unwrap());
    note(&mut a, tx.scopes_since("org-2", 0).unwrap());

    tx.record_sent_pairs("org-1", 1, &[("d1", "t1"), ("d1", "t2")])
        .unwrap();
    tx.record_sent_pairs("org-1", 2, &[("d1", "t1"), ("d2", "t1"), ("d2", "t1")])
        .unwrap();
    for (org, d, t) in [
        ("org-1", "d1", "t1"),
        ("org-1", "d2", "t2"),
        ("org-2", "d1", "t1"),
    ] {
        note(&mut a, tx.pair_sent(org, d, t).unwrap());
        note(&mut a, tx.delivery_sent(org, d).unwrap());
    }
    a
}

/// EntityStore answers the same on PostgreSQL as on SQLite, in the same order (text byte-wise).
#[test]
#[ignore = "needs PostgreSQL (.ci/run installs it)"]
fn entities_packages_scopes_and_pairs_answer_as_on_sqlite() {
    let Some(pg) =
        common::pg_cluster("postgres::entities_packages_scopes_and_pairs_answer_as_on_sqlite")
    else {
        return;
    };
    let answers = on_both_stores(&pg, entities_walk);
    assert_eq!(answers[0..2], ["true", "false"], "deleted once");
    assert!(
        answers.iter().any(|a| a == r#"["p0", "p2"]"#),
        "unused packages dropped: {answers:?}"
    );
    let first_seq = pg
        .psql(
            "courier",
            "SELECT first_seq FROM sent_pairs WHERE delivery_id = 'd1' AND test_taker = 't1'",
        )
        .unwrap();
    assert_eq!(
        first_seq.trim(),
        "1",
        "a pair sent before keeps its first sequence"
    );
}

/// `n` variables of a result, as the import stores them: a few query fields (some absent),
/// and the JSON text as received.
fn variable_texts(seed: usize, n: usize) -> Vec<(Option<String>, Option<String>, String)> {
    (0..n)
        .map(|i| {
            let item = (i % 3 != 0).then(|| format!("item-{}", i % 7));
            let test = (i % 5 != 0).then(|| format!("test-{seed}"));
            let json = json!({"identifier": format!("v{i}"), "value": format!("{seed}·{i} \"q\" \\ ✓"), "n": i})
                .to_string();
            (test, item, json)
        })
        .collect()
}

fn central_result(org: &str, exec: &str, revision: i64, finishtime: Value) -> CentralResult {
    CentralResult {
        central_id: format!("urn:central:{org}:{exec}"),
        org_id: org.into(),
        execution_id: exec.into(),
        delivery_id: "d1".into(),
        test_taker: "t1".into(),
        state: "finished".into(),
        details: json!({"finishtime": finishtime, "score": revision}),
        revision,
        content_sha256: format!("sha-{exec}-{revision}"),
    }
}

fn put_result(tx: &Tx<'_>, r: &CentralResult, vars: &[(Option<String>, Option<String>, String)]) {
    let stored: Vec<StoredVariable<'_>> = vars
        .iter()
        .map(|(test, item, json)| StoredVariable {
            call_id_test: test.as_deref().map(|_| "call-test"),
            call_id_item: item.as_deref(),
            test: test.as_deref(),
            item: item.as_deref(),
            json,
        })
        .collect();
    tx.put_central_result(r, "bundle-1", &stored).unwrap();
}

/// Results put (one with a few hundred variables, replaced by a shorter copy), read back by
/// version and held, kept aside, and streamed back in (org, execution) order, more than one
/// fetch of them, with the transaction used inside the callback.
fn results_walk(tx: &Tx<'_>) -> Answers {
    let mut a = Answers::new();
    put_result(
        tx,
        &central_result("org-1", "big", 1, json!("1700000000.5 x")),
        &variable_texts(1, 400),
    );
    put_result(
        tx,
        &central_result("org-1", "big", 2, json!("1700000001.5 x")),
        &variable_texts(2, 320),
    );
    for (i, exec) in IDS.iter().enumerate() {
        put_result(
            tx,
            &central_result("org-2", exec, 1, json!(i)),
            &variable_texts(i, i * 3),
        );
    }
    for i in 0..150 {
        put_result(
            tx,
            &central_result("org-3", &format!("e{i:03}"), 1, Value::Null),
            &variable_texts(i, 2),
        );
    }
    for id in [
        "urn:central:org-1:big",
        "urn:central:org-2:é",
        "urn:central:none",
    ] {
        note(&mut a, tx.central_result_version(id).unwrap());
        note(&mut a, tx.central_result_held(id).unwrap());
    }
    for (sha, reason) in [("s1", "first"), ("s2", "second"), ("s1", "first again")] {
        let q = Quarantined {
            org_id: "org-1",
            execution_id: "big",
            revision: 3,
            content_sha256: sha,
            reason,
            bundle_id: "bundle-2",
            content: "{}",
        };
        tx.quarantine(&q).unwrap();
    }
    note(&mut a, tx.quarantine_reason("org-1", "big").unwrap());
    note(&mut a, tx.quarantine_reason("org-1", "none").unwrap());
    tx.quarantine_logs("org-1", "batch-q", "big", "out of scope", None, "[]")
        .unwrap();
    tx.quarantine_logs(
        "org-1",
        "batch-q",
        "big",
        "kept aside",
        Some("bundle-3"),
        "[1]",
    )
    .unwrap();
    let mut streamed = Vec::new();
    let count = tx
        .for_each_central_result(&mut |r, vars| {
            let again = tx.central_result_version(&r.central_id)?;
            let texts: Vec<String> = vars.iter().map(Value::to_string).collect();
            streamed.push(format!("{r:?} {again:?} {texts:?}"));
            Ok(())
        })
        .unwrap();
    a.push(format!("{count}"));
    a.extend(streamed);
    a
}

/// CentralResults' results half answers the same on PostgreSQL as on SQLite; variables come
/// back byte for byte, in order; the quarantine keeps a copy once, its latest reason first.
#[test]
#[ignore = "needs PostgreSQL (.ci/run installs it)"]
fn central_results_put_held_quarantined_and_streamed_as_on_sqlite() {
    let Some(pg) = common::pg_cluster(
        "postgres::central_results_put_held_quarantined_and_streamed_as_on_sqlite",
    ) else {
        return;
    };
    let answers = on_both_stores(&pg, results_walk);
    assert_eq!(answers[0], r#"Some((2, "sha-big-2"))"#);
    assert_eq!(
        answers[1],
        r#"Some((2, "sha-big-2", Some("1700000001.5 x")))"#
    );
    assert_eq!(
        answers[3], r#"Some((1, "sha-é-1", None))"#,
        "a number is no finishtime"
    );
    assert_eq!(answers[6], r#"Some("second")"#);
    assert_eq!(
        answers[8],
        (1 + IDS.len() + 150).to_string(),
        "every result streamed"
    );
    let stored = pg
        .psql(
            "courier",
            "SELECT string_agg(v.data, E'\\n' ORDER BY v.n) FROM variables v
             JOIN central_results r USING (rid) WHERE r.execution_id = 'big'",
        )
        .unwrap();
    let sent: Vec<String> = variable_texts(2, 320).into_iter().map(|v| v.2).collect();
    assert_eq!(
        stored.trim_end(),
        sent.join("\n"),
        "variables byte for byte, in order"
    );
    let kept = pg
        .psql("courier", "SELECT count(*) FROM quarantine")
        .unwrap();
    assert_eq!(kept.trim(), "2", "a copy kept aside is kept once");
}

fn log(id: Value, exec: &str, at: &str) -> Value {
    json!({"id": id, "event_id": format!("ev-{exec}"), "created_at": at, "created_by": "proctor ✓",
           "data": {"text": "a \"quoted\" line"}})
}

/// Logs put (more than a fetch of them, a log id twice in a batch and a batch twice: kept
/// once), waiting logs added and taken, acknowledgements owed, carried and delivered.
fn logs_and_acks_walk(tx: &Tx<'_>) -> Answers {
    let mut a = Answers::new();
    let many: Vec<Value> = (0..1500)
        .map(|i| {
            log(
                json!(format!("l{:04}", (i * 7) % 1500)),
                "big",
                &format!("t{:03}", i % 400),
            )
        })
        .collect();
    tx.put_central_logs("org-1", "urn:central:org-1:big", "big", &many)
        .unwrap();
    let mut batch = vec![log(json!(17), "é", "t1"), log(json!("x"), "é", "t0")];
    batch.push(log(json!(17), "é", "t9")); // the same id: the first is kept
    tx.put_central_logs("org-2", "urn:central:org-2:é", "é", &batch)
        .unwrap();
    tx.put_central_logs("org-2", "urn:central:org-2:é", "é", &batch)
        .unwrap();
    tx.put_central_logs("org-2", "urn:central:org-2:é", "é", &[])
        .unwrap();
    let mut streamed = Vec::new();
    let count = tx
        .for_each_central_log(&mut |org, central, exec, l| {
            let known = tx.central_result_version(central)?;
            streamed.push(format!("{org} {central} {exec} {l} {known:?}"));
            Ok(())
        })
        .unwrap();
    a.push(format!("{count}"));
    a.extend(streamed);

    tx.add_waiting_logs("org-1", "w2", "later", &batch).unwrap();
    tx.add_waiting_logs("org-1", "w1", "later", &many[..3])
        .unwrap();
    tx.add_waiting_logs("org-1", "w1", "later", &[]).unwrap(); // kept once
    tx.add_waiting_logs("org-2", "w3", "later", &[]).unwrap();
    note(&mut a, tx.take_waiting_logs("org-1", "later").unwrap());
    note(&mut a, tx.take_waiting_logs("org-1", "later").unwrap());
    note(&mut a, tx.take_waiting_logs("org-2", "later").unwrap());

    let result = |exec: &str, status| {
        OwedAck::Result(ResultAck {
            execution_id: exec.into(),
            revision: 2,
            content_sha256: format!("sha-{exec}"),
            status,
            reason: None,
        })
    };
    let logs = |batch: &str, status| {
        OwedAck::Logs(LogAck {
            batch_id: batch.into(),
            status,
            reason: Some("why".into()),
        })
    };
    tx.owe_ack("org-1", &result("b", AckStatus::Stored))
        .unwrap();
    tx.owe_ack("org-1", &logs("B", LogAckStatus::Waiting))
        .unwrap();
    tx.owe_ack_unless_owed("org-1", &result("b", AckStatus::Stale))
        .unwrap(); // already owed
    tx.owe_ack_unless_owed("org-1", &result("a", AckStatus::Conflict))
        .unwrap();
    tx.owe_ack("org-2", &result("b", AckStatus::OutOfScope))
        .unwrap();
    note(&mut a, tx.owed_acks("org-1").unwrap());
    tx.acks_carried_by("org-1", 5).unwrap();
    tx.owe_ack("org-1", &logs("B", LogAckStatus::Stored))
        .unwrap(); // updated: not carried yet
    tx.acks_carried_by("org-1", 6).unwrap();
    tx.owe_ack("org-1", &result("c", AckStatus::Unchanged))
        .unwrap();
    tx.acks_delivered("org-1", 5).unwrap();
    note(&mut a, tx.owed_acks("org-1").unwrap());
    tx.acks_delivered("org-1", 6).unwrap();
    note(&mut a, tx.owed_acks("org-1").unwrap());
    note(&mut a, tx.owed_acks("org-2").unwrap());
    a
}

/// CentralResults' logs and acknowledgements answer the same on PostgreSQL as on SQLite.
#[test]
#[ignore = "needs PostgreSQL (.ci/run installs it)"]
fn central_logs_waiting_logs_and_acks_as_on_sqlite() {
    let Some(pg) = common::pg_cluster("postgres::central_logs_waiting_logs_and_acks_as_on_sqlite")
    else {
        return;
    };
    let answers = on_both_stores(&pg, logs_and_acks_walk);
    assert_eq!(answers[0], (1500 + 2).to_string(), "a log id is kept once");
    assert!(answers
        .iter()
        .any(|l| l.contains(r#""created_at":"t1""#) && l.contains("org-2")));
    assert!(
        !answers.iter().any(|l| l.contains(r#""created_at":"t9""#)),
        "the first copy kept"
    );
    let tail = &answers[answers.len() - 4..];
    assert_eq!(
        tail[1].matches("Result(").count() + tail[1].matches("Logs(").count(),
        2
    );
    assert_eq!(
        tail[2].matches("Result(").count(),
        1,
        "only the ack owed since: {tail:?}"
    );
}

/// A centre's methods on central's PostgreSQL store refuse, naming the method, with the
/// site exit code; they change nothing and the transaction goes on.
#[test]
#[ignore = "needs PostgreSQL (.ci/run installs it)"]
fn a_centres_held_results_are_refused_on_postgres() {
    let Some(pg) = common::pg_cluster("postgres::a_centres_held_results_are_refused_on_postgres")
    else {
        return;
    };
    let mut store = Store::connect(&pg.url(), None).unwrap();
    let tx = store.begin().unwrap();
    let refusals = [
        tx.result_version("e1").err(),
        tx.held_results().err(),
        tx.log_known("l1").err(),
        tx.mark_log_batch_kept_aside("b1").err(),
    ];
    for e in refusals {
        let e: courier::Error = e.expect("refused");
        assert!(matches!(e, courier::Error::CentreStoreOnly { .. }), "{e:?}");
        assert_eq!(e.exit_code(), courier::error::exit::SITE);
        assert!(e.to_string().contains("a centre's store is SQLite"), "{e}");
    }
    assert_eq!(
        tx.result_version("e1")
            .unwrap_err()
            .to_string()
            .split(':')
            .next(),
        Some("result_version")
    );
    tx.put_entity(&entity("after", "delivery", 1, None))
        .unwrap();
    tx.commit().unwrap();
    let held = pg.psql("courier", "SELECT count(*) FROM entities").unwrap();
    assert_eq!(held.trim(), "1", "the transaction went on");
}

/// Figures, not a check: how fast central's bulk writes go on each backend (results of 400
/// variables put in one transaction, then streamed back). Runs only with
/// `COURIER_PG_FIGURES=RESULTS` (how many results); prints one line per backend.
#[test]
#[ignore = "needs PostgreSQL (.ci/run installs it)"]
fn bulk_write_figures() {
    let Ok(Ok(results)) = std::env::var("COURIER_PG_FIGURES").map(|n| n.parse::<usize>()) else {
        eprintln!(
            "SKIPPED postgres::bulk_write_figures: set COURIER_PG_FIGURES=RESULTS to measure"
        );
        return;
    };
    let Some(pg) = common::pg_cluster("postgres::bulk_write_figures") else {
        return;
    };
    let vars = variable_texts(0, 400);
    let dir = tempfile::tempdir().unwrap();
    let stores = [
        (
            "sqlite",
            Store::open(&dir.path().join("store.sqlite")).unwrap(),
        ),
        ("postgres", Store::connect(&pg.url(), None).unwrap()),
    ];
    for (name, mut store) in stores {
        let started = std::time::Instant::now();
        let tx = store.begin().unwrap();
        for i in 0..results {
            put_result(
                &tx,
                &central_result("org-1", &format!("e{i:06}"), 1, json!("1")),
                &vars,
            );
        }
        tx.commit().unwrap();
        let put = started.elapsed().as_secs_f64();
        let started = std::time::Instant::now();
        let tx = store.read().unwrap();
        let mut rows = 0;
        tx.for_each_central_result(&mut |_, v| {
            rows += v.len();
            Ok(())
        })
        .unwrap();
        let read = started.elapsed().as_secs_f64();
        let n = (results * vars.len()) as f64;
        eprintln!(
            "{name}: {results} results x 400 variables put in {put:.2} s ({:.0} variables/s), streamed back in {read:.2} s ({:.0} variables/s)",
            n / put,
            rows as f64 / read
        );
    }
}

// ---- test packages kept in the database -----------------------------------------------------

const DELIVERY_NS: &str = "https://central.example/tao.rdf#";
const PACKAGE_PROPERTY: &str = "http://www.taotesting.com/ontologies/synchro.rdf#OriginTestPackage";

/// A fixture package's bytes (fixtures/qti/valid/NAME) and its SHA-256.
fn fixture_zip(name: &str) -> (Vec<u8>, String) {
    use sha2::Digest;
    let bytes = std::fs::read(fixtures().join("qti/valid").join(name)).unwrap();
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    (bytes, sha)
}

/// The zip files a site's home holds under packages/ (none when the folder is absent).
fn package_files(home: &std::path::Path) -> Vec<Vec<u8>> {
    let dir = home.join("packages");
    if !dir.exists() {
        return vec![];
    }
    let mut found: Vec<Vec<u8>> = files_under(&dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "zip"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    found.sort();
    found
}

fn sorted(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    v.sort();
    v
}

/// A PostgreSQL central with ORG-001 and ORG-002 enrolled, its packages/ folder removed
/// before anything is loaded.
fn postgres_world(pg: &PgCluster) -> World {
    let (dir, central) = central_on(pg);
    std::fs::remove_dir_all(central.join("packages")).unwrap();
    let (a, b) = (dir.path().join("center-a"), dir.path().join("center-b"));
    ok(courier(&a, &["init", "center", "--org", "ORG-001"]));
    ok(courier(&b, &["init", "center", "--org", "ORG-002"]));
    let w = World { dir, central, a, b };
    w.enroll(&w.a, "ORG-001");
    w.enroll(&w.b, "ORG-002");
    w
}

/// A central on PostgreSQL keeps its test packages in the database, not in its home: with no
/// packages/ folder it loads the fixture deliveries, `list` names each package by its hash in
/// the database, and a centre receives byte-identical zips. A second host holding only a copy
/// of the key and courier.json (a fresh folder) is the same central: it exports to the other
/// centre from the same database, packages included. Removing a delivery removes the
/// content no delivery uses any more.
#[test]
#[ignore = "needs PostgreSQL (.ci/run installs it)"]
fn packages_live_in_the_database_and_a_second_host_exports_them() {
    let Some(pg) =
        pg_cluster("postgres::packages_live_in_the_database_and_a_second_host_exports_them")
    else {
        return;
    };
    let w = postgres_world(&pg);
    w.load_fixtures();
    assert!(
        !w.central.join("packages").exists(),
        "load made no packages folder"
    );
    let sql = |q: &str| pg.psql("courier", q).unwrap().trim().to_string();
    let (basic, basic_sha) = fixture_zip("2.1-basic-Basic.zip");
    let (label, label_sha) = fixture_zip("2.2-test_label_is_persisted.zip");
    let (sumscore, sumscore_sha) = fixture_zip("2.1-outcomeProcessing-SumScore.zip");
    let mut kept = [basic_sha.clone(), label_sha.clone(), sumscore_sha.clone()];
    kept.sort();
    assert_eq!(
        sql("SELECT string_agg(DISTINCT sha256, ',' ORDER BY sha256) FROM package_chunks"),
        kept.join(",")
    );
    let shown: Vec<String> = list(&w.central, &["delivery"])
        .iter()
        .map(|d| {
            d["properties"][PACKAGE_PROPERTY]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        shown.contains(&format!("postgres:sha256:{basic_sha}")),
        "{shown:?}"
    );

    for f in w.export_down("ORG-001", "down-a") {
        ok(courier(&w.a, &["import", s(&f)]));
    }
    assert!(package_files(&w.a) == sorted(vec![basic, label.clone()]));

    let host2 = w.path("host2").join("central");
    std::fs::create_dir_all(&host2).unwrap();
    for f in ["courier.json", "secret-key.asc"] {
        std::fs::copy(w.central.join(f), host2.join(f)).unwrap();
    }
    let out = w.path("down-b");
    ok(courier(
        &host2,
        &["export", "--to", "ORG-002", "--out", s(&out)],
    ));
    for f in bundles_in(&out) {
        ok(courier(&w.b, &["import", s(&f)]));
    }
    assert!(package_files(&w.b) == sorted(vec![sumscore, label]));
    assert!(package_files(&host2).is_empty());
    assert!(package_files(&w.central).is_empty());

    ok(courier(
        &host2,
        &["remove", &format!("{DELIVERY_NS}del-sumscore")],
    ));
    let left = sql("SELECT string_agg(DISTINCT sha256, ',' ORDER BY sha256) FROM package_chunks");
    assert!(!left.contains(&sumscore_sha), "{left}");
    assert!(
        left.contains(&basic_sha) && left.contains(&label_sha),
        "{left}"
    );
    assert_eq!(
        sql("SELECT COUNT(*) FROM packages"),
        "2",
        "the record goes with its content"
    );
    ok(courier(&w.central, &["history", "--verify"]));
}

/// `store migrate` moves a SQLite central's package files into the database, counted in
/// chunks; the migrated central exports byte-identical packages without its packages/ folder.
#[test]
#[ignore = "needs PostgreSQL (.ci/run installs it)"]
fn a_migrated_central_keeps_its_packages_in_the_database() {
    let Some(pg) = pg_cluster("postgres::a_migrated_central_keeps_its_packages_in_the_database")
    else {
        return;
    };
    let w = World::enrolled();
    w.load_fixtures();
    let out = ok(courier(
        &w.central,
        &["store", "migrate", "--to", &pg.url(), "--switch", "--json"],
    ));
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    courier::schema::check("store-migrate", &summary).unwrap();
    let chunks = summary["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "package_chunks")
        .expect("package_chunks listed")
        .clone();
    assert_eq!(
        (
            chunks["sqlite_rows"].as_i64(),
            chunks["postgres_rows"].as_i64()
        ),
        (Some(3), Some(3)),
        "three fixture packages, one chunk each: {chunks}"
    );
    std::fs::remove_dir_all(w.central.join("packages")).unwrap();
    for f in w.export_down("ORG-002", "down-b") {
        ok(courier(&w.b, &["import", s(&f)]));
    }
    let (label, _) = fixture_zip("2.2-test_label_is_persisted.zip");
    let (sumscore, _) = fixture_zip("2.1-outcomeProcessing-SumScore.zip");
    assert!(package_files(&w.b) == sorted(vec![sumscore, label]));
}

/// A package file missing from a SQLite central's home stops `store migrate`, naming the
/// file; nothing is kept in the database.
#[test]
#[ignore = "needs PostgreSQL (.ci/run installs it)"]
fn store_migrate_refuses_a_central_missing_a_package_file() {
    let Some(pg) = pg_cluster("postgres::store_migrate_refuses_a_central_missing_a_package_file")
    else {
        return;
    };
    let w = World::enrolled();
    w.load_fixtures();
    let (_, basic_sha) = fixture_zip("2.1-basic-Basic.zip");
    std::fs::remove_file(w.central.join(format!("packages/{basic_sha}.zip"))).unwrap();
    refused(
        courier(&w.central, &["store", "migrate", "--to", &pg.url()]),
        5,
        &format!("{basic_sha}.zip"),
    );
    assert_eq!(
        pg.psql("courier", "SELECT COUNT(*) FROM entities")
            .unwrap()
            .trim(),
        "0"
    );
}

/// A chunk altered in the database never travels: the export fails with one line naming the
/// package, and no bundle (nor a part of one) is left in the output folder; so does a chunk
/// missing. Loading the delivery with its package again, as the message says, repairs it.
#[test]
#[ignore = "needs PostgreSQL (.ci/run installs it)"]
fn a_tampered_chunk_fails_the_export_and_writes_no_bundle() {
    let Some(pg) = pg_cluster("postgres::a_tampered_chunk_fails_the_export_and_writes_no_bundle")
    else {
        return;
    };
    let w = postgres_world(&pg);
    w.load_fixtures();
    let (_, basic_sha) = fixture_zip("2.1-basic-Basic.zip");
    pg.psql(
        "courier",
        &format!(
            "UPDATE package_chunks SET bytes = set_byte(bytes, 100, 255 - get_byte(bytes, 100))
             WHERE sha256 = '{basic_sha}'"
        ),
    )
    .unwrap();
    let out = w.path("down-a");
    let err = refused(
        courier(&w.central, &["export", "--to", "ORG-001", "--out", s(&out)]),
        5,
        &basic_sha,
    );
    assert!(err.contains("does not match its SHA-256"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        !out.exists() || files_under(&out).is_empty(),
        "{:?}",
        files_under(&out)
    );
    pg.psql(
        "courier",
        &format!("DELETE FROM package_chunks WHERE sha256 = '{basic_sha}'"),
    )
    .unwrap();
    refused(
        courier(&w.central, &["export", "--to", "ORG-001", "--out", s(&out)]),
        5,
        "chunk 0 is missing",
    );
    w.load_fixtures();
    for f in w.export_down("ORG-001", "down-a-again") {
        ok(courier(&w.a, &["import", s(&f)]));
    }
    let (basic, _) = fixture_zip("2.1-basic-Basic.zip");
    let (label, _) = fixture_zip("2.2-test_label_is_persisted.zip");
    assert!(
        package_files(&w.a) == sorted(vec![basic, label]),
        "loading the package again repaired it"
    );
}

/// At the store's level: a package of several chunks reads back byte for byte, is counted
/// in 1 MiB chunks, is not rewritten when kept already, refuses content that is not what its
/// hash says; a middle chunk altered is an error before the last byte is read, and storing
/// the package again replaces the damaged content.
#[test]
#[ignore = "needs PostgreSQL (.ci/run installs it)"]
fn package_content_is_chunked_checked_and_streamed_back() {
    use sha2::Digest;
    use std::io::Read;
    let Some(pg) = pg_cluster("postgres::package_content_is_chunked_checked_and_streamed_back")
    else {
        return;
    };
    let content: Vec<u8> = (0..(5u32 << 19) + 7)
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    let sha = hex::encode(sha2::Sha256::digest(&content));
    let origin = std::path::Path::new("big.zip");
    let mut store = Store::connect(&pg.url(), None).unwrap();
    let tx = store.begin().unwrap();
    assert!(tx.keeps_package_content());
    let wrong = tx.put_package_content(&"0".repeat(64), &mut &content[..], origin);
    assert!(
        matches!(wrong, Err(courier::Error::ChangedWhileReading { .. })),
        "{wrong:?}"
    );
    drop(tx);

    let tx = store.begin().unwrap();
    let size = tx
        .put_package_content(&sha, &mut &content[..], origin)
        .unwrap();
    assert_eq!(size, content.len() as u64);
    tx.add_package(&sha, size, "big.zip").unwrap();
    let again = tx
        .put_package_content(&sha, &mut std::io::empty(), origin)
        .unwrap();
    assert_eq!(again, size, "kept already: not read again");
    tx.commit().unwrap();
    assert_eq!(
        pg.psql("courier", "SELECT COUNT(*) FROM package_chunks")
            .unwrap()
            .trim(),
        "3",
        "2.5 MiB in chunks of 1 MiB"
    );

    let read_back = |store: &mut Store| {
        let tx = store.read().unwrap();
        let found = tx.package_content(&sha).unwrap().expect("recorded");
        assert_eq!(found.size, content.len() as u64);
        let mut reader = found.reader;
        let mut got = Vec::new();
        let result = reader.read_to_end(&mut got);
        (result.map(drop), got)
    };
    let (result, got) = read_back(&mut store);
    result.unwrap();
    assert!(got == content, "byte for byte");
    assert!(store
        .read()
        .unwrap()
        .package_content(&"f".repeat(64))
        .unwrap()
        .is_none());

    pg.psql(
        "courier",
        "UPDATE package_chunks SET bytes = set_byte(bytes, 5, 255 - get_byte(bytes, 5)) WHERE n = 1",
    )
    .unwrap();
    let (result, got) = read_back(&mut store);
    let err = result.expect_err("an altered chunk is an error");
    assert!(
        got.len() < content.len(),
        "the last chunk is not handed out: {} bytes read",
        got.len()
    );
    let inner = err
        .into_inner()
        .and_then(|e| e.downcast::<courier::Error>().ok())
        .expect("the library's error inside");
    assert!(
        matches!(&*inner, courier::Error::PackageDamaged { sha256, .. } if *sha256 == sha),
        "{inner:?}"
    );

    let tx = store.begin().unwrap();
    let size = tx
        .put_package_content(&sha, &mut &content[..], origin)
        .unwrap();
    assert_eq!(size, content.len() as u64);
    tx.commit().unwrap();
    let (result, got) = read_back(&mut store);
    result.unwrap();
    assert!(
        got == content,
        "stored again, the damaged content is replaced"
    );
}

// ---- TLS to the server (rustls) -------------------------------------------------------

/// A certificate authority of the tests' own: its certificate (PEM) and what it signs with.
struct TestCa {
    pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let pem = params.self_signed(&key).unwrap().pem();
        TestCa {
            pem,
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A server certificate for `names` (host names or addresses), signed by this CA.
    fn server(&self, names: &[&str]) -> ServerTls {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "courier test server");
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        ServerTls {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// `init central` on a store address; its output.
fn init_central_on(home: &std::path::Path, url: &str) -> std::process::Output {
    courier(
        home,
        &["init", "central", "--name", "Central", "--store", url],
    )
}

/// A central on a server with TLS, `sslmode=verify-full` and a root file in its home
/// (`sslrootcert=ca.pem`, relative): init, enrollment, load, a data bundle out, results and
/// logs in and exported, all over TLS (the server takes TCP connections to that database with
/// TLS only). A root file of another CA is refused, one line naming the address; a host name
/// the certificate does not hold is refused by verify-full and accepted by verify-ca; and
/// sslmode=disable reaches only the database that takes connections without TLS.
#[test]
#[ignore = "needs PostgreSQL (.ci/run installs it)"]
fn a_central_over_verified_tls_runs_a_cycle_and_another_ca_is_refused() {
    let ca = TestCa::new("courier test CA");
    let tls = ca.server(&["127.0.0.1"]);
    let Some(pg) = pg_cluster_with(
        "postgres::a_central_over_verified_tls_runs_a_cycle_and_another_ca_is_refused",
        Some(&tls),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let central = dir.path().join("central");
    std::fs::create_dir(&central).unwrap();
    std::fs::write(central.join("ca.pem"), &ca.pem).unwrap();
    let url = format!("{}?sslmode=verify-full&sslrootcert=ca.pem", pg.url());
    ok(init_central_on(&central, &url));
    let config: Value =
        serde_json::from_slice(&std::fs::read(central.join("courier.json")).unwrap()).unwrap();
    assert_eq!(config["settings"]["store"], url.as_str(), "as written");

    let center = dir.path().join("box");
    ok(courier(&center, &["init", "center", "--org", "ORG-001"]));
    handshake(&central, &center, "ORG-001", dir.path());
    ok(courier(
        &central,
        &["load", s(&fixtures().join("data/central.jsonl"))],
    ));
    let down = dir.path().join("down");
    ok(courier(
        &central,
        &["export", "--to", "ORG-001", "--out", s(&down)],
    ));
    for f in bundles_in(&down) {
        ok(courier(&center, &["import", s(&f)]));
    }
    let results = fixtures().join("data/results/ORG-001-day1.jsonl");
    ok(courier(&center, &["results", "add", s(&results)]));
    let up = dir.path().join("up");
    ok(courier(&center, &["export", "--out", s(&up)]));
    for f in bundles_in(&up) {
        ok(courier(&central, &["import", s(&f)]));
    }
    let csv = dir.path().join("results.csv");
    ok(courier(
        &central,
        &["results", "export", "--format", "csv", "--out", s(&csv)],
    ));
    assert!(std::fs::read_to_string(&csv).unwrap().lines().count() > 1);
    ok(courier(&central, &["history", "--verify"]));
    let stored: i64 = pg
        .psql("courier", "SELECT COUNT(*) FROM central_results")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(stored > 0, "the results are in the database");

    // Another CA's root: refused before anything is read or written.
    let other = TestCa::new("another CA");
    let stranger = dir.path().join("stranger");
    std::fs::create_dir(&stranger).unwrap();
    std::fs::write(stranger.join("ca.pem"), &other.pem).unwrap();
    let err = refused(init_central_on(&stranger, &url), 4, "is not trusted");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("sslmode=verify-full refuses it"), "{err}");
    assert!(!stranger.join("courier.json").exists(), "no site");

    // The certificate names 127.0.0.1, not localhost: verify-full refuses, verify-ca takes it.
    let root = dir.path().join("ca.pem");
    std::fs::write(&root, &ca.pem).unwrap();
    let by_name = |mode: &str| {
        format!(
            "postgres://courier@localhost:{}/courier?sslmode={mode}&sslrootcert={}",
            pg.port,
            s(&root)
        )
    };
    let e = Store::connect(&by_name("verify-full"), None).err().unwrap();
    assert!(matches!(e, courier::Error::StoreNotTrusted { .. }), "{e}");
    assert!(e.to_string().contains("NotValidForName"), "{e}");
    Store::connect(&by_name("verify-ca"), None).expect("verify-ca checks no name");

    // Without TLS: only the database that takes plain connections answers.
    let plain = |db: &str| {
        format!(
            "postgres://courier@127.0.0.1:{}/{db}?sslmode=disable",
            pg.port
        )
    };
    Store::connect(&plain("plain"), None).expect("sslmode=disable connects plain");
    let e = Store::connect(&plain("courier"), None).err().unwrap();
    assert!(matches!(e, courier::Error::StoreUnreachable { .. }), "{e}");
    assert!(
        e.to_string().contains("no encryption"),
        "the server's refusal: {e}"
    );
}

/// `sslmode=require` (or verify-*) against a server without TLS is refused, one line that
/// says what to turn on; `sslmode=disable` and the local default (`prefer`) connect.
#[test]
#[ignore = "needs PostgreSQL (.ci/run installs it)"]
fn tls_required_from_a_server_without_it_is_refused() {
    let Some(pg) = pg_cluster("postgres::tls_required_from_a_server_without_it_is_refused") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let central = dir.path().join("central");
    let required = format!("{}?sslmode=require", pg.url());
    let err = refused(
        init_central_on(&central, &required),
        4,
        "the PostgreSQL server does not offer TLS, which sslmode=require requires",
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains(&required), "names the address: {err}");
    assert!(!central.join("courier.json").exists(), "no site");
    let e = Store::connect(&required, None).err().unwrap();
    assert!(matches!(e, courier::Error::StoreWithoutTls { .. }), "{e}");
    Store::connect(&format!("{}?sslmode=disable", pg.url()), None).expect("plain");
    Store::connect(&pg.url(), None).expect("prefer, the local default, falls back to plain");
}

/// A root file that cannot be read or holds no certificate, and an unknown sslmode, are one
/// line each, before any connection is tried (no server needed).
#[test]
fn a_bad_root_file_or_sslmode_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "this is no certificate\n").unwrap();
    let broken = dir.path().join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    for (file, needle) in [
        (&missing, "cannot be read"),
        (&not_pem, "holds no PEM certificate"),
        (&broken, "PEM"),
    ] {
        let url = format!(
            "postgres://courier@127.0.0.1:1/courier?sslmode=verify-full&sslrootcert={}",
            s(file)
        );
        let e = Store::connect(&url, None).err().unwrap();
        assert!(matches!(e, courier::Error::StoreRootCert { .. }), "{e}");
        let line = e.to_string();
        assert!(line.starts_with(&url) && line.contains(needle), "{line}");
        assert!(line.contains(s(file)) && !line.contains('\n'), "{line}");
    }
    let central = dir.path().join("central");
    let err = refused(
        init_central_on(
            &central,
            "postgres://courier@127.0.0.1:1/courier?sslmode=verify",
        ),
        2,
        "sslmode=verify is not a mode courier knows",
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(!central.exists(), "nothing created");
}
