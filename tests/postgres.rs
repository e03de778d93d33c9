//! Central on PostgreSQL (issue 15). Ignored by a plain `cargo test`: they need PostgreSQL's
//! server programs (`initdb`, `pg_ctl`, `psql`). Run them with
//! `cargo test --release --test integration -- --ignored postgres::`; each test starts its own
//! throwaway cluster ([`PgCluster`]) and says on stderr when it skipped and why.

use crate::common::*;

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
/// columns where SQLite orders by its implicit one, package contents and the audit trail
/// (files in a SQLite central's home).
const PG_ONLY: &[&str] = &[
    "courier_schema.*",
    "audit.*",
    "bundles.rowid",
    "entity_history.rowid",
    "own_keys.rowid",
    "packages.content",
    "peers.rowid",
    "rollovers_out.rowid",
];

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
    let schema = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/postgres/schema-1.sql"),
    )
    .unwrap();
    pg.psql("courier", &schema).expect("the schema applies");
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
        pg.psql("courier", "SELECT version FROM courier_schema")
            .unwrap()
    };
    drop(courier::store::Store::connect(&pg.url(), None).expect("first connection migrates"));
    assert_eq!(versions().trim(), "1");
    drop(courier::store::Store::connect(&pg.url(), None).expect("second connection"));
    assert_eq!(versions().trim(), "1", "applied once");
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
                supported: 1,
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(versions().lines().count(), 2, "nothing changed");
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
        "1",
        "the schema is applied"
    );
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
        "meta",
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
    let results = fixtures().join("data/results/ORG-001-day1.jsonl");
    for (home, org) in [(&w.a, "ORG-001"), (&w.b, "ORG-002")] {
        for f in w.export_down(org, &format!("down-{org}")) {
            ok(courier(home, &["import", s(&f)]));
        }
        ok(courier(home, &["results", "add", s(&results)]));
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
        ("5".into(), "5".into())
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
        said.matches("already applied").count(),
        1,
        "one worker found it applied:\n{said}"
    );
    assert_eq!(
        sql("SELECT COUNT(*) FROM bundles WHERE direction = 'in' AND kind = 'results'"),
        "3"
    );
    assert_eq!(
        per_centre("ORG-001"),
        "5",
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
