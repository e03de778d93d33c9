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
