//! Central on PostgreSQL (issue 15). Ignored by a plain `cargo test`: they need PostgreSQL's
//! server programs (`initdb`, `pg_ctl`, `psql`). Run them with
//! `cargo test --release --test integration -- --ignored postgres::`; each test starts its own
//! throwaway cluster ([`PgCluster`]) and says on stderr when it skipped and why.

use courier::store::{ScopeItem, Store, StoredEntity, Tx};
use serde_json::json;

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
