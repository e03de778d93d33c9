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
