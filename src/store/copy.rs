//! `courier store migrate`: copy a SQLite central, table by table, into an empty PostgreSQL
//! database (issue 15).
//!
//! The PostgreSQL schema (schema-1.sql) is applied first by [`PgStore::connect`]; then, in
//! one PostgreSQL transaction, every table of that schema gets the rows of SQLite's table of
//! the same name, streamed one row at a time through `COPY ... FROM STDIN` (text format),
//! with SQLite's `rowid`s kept where PostgreSQL has an explicit `rowid` column. The SQLite
//! store is held with a write lock for the whole copy, so no import slips in between. Before
//! the commit the row counts of each table are compared; a database already holding rows
//! is refused, untouched. Test packages, files in a SQLite central's home, go into the
//! database too (`package_chunks`), counted in chunks.

use std::io::Write;
use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use serde::Serialize;

use super::postgres::PgStore;
use crate::error::{Error, Result, StoreFailure};

/// One table copied: its rows in SQLite, and in PostgreSQL after the copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableCopy {
    pub table: String,
    pub sqlite_rows: i64,
    pub postgres_rows: i64,
}

/// Copy the SQLite store at `sqlite` into the empty PostgreSQL database at `url`, and the
/// test packages it records from the files in `packages` (the home's packages/) into
/// `package_chunks`; the tables copied with their counts (equal, or nothing is committed).
pub fn sqlite_to_postgres(
    sqlite: &Path,
    packages: &Path,
    url: &str,
    password: Option<&str>,
) -> Result<Vec<TableCopy>> {
    drop(PgStore::connect(url, password)?);
    // A client of its own for the copy (the store's connection sits inside `PgStore`).
    let mut client = super::postgres::open_client(url, password)?;
    let mut src = Connection::open_with_flags(sqlite, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    src.busy_timeout(std::time::Duration::from_secs(30))?;
    // A write lock on the source: nothing is imported there while it is copied.
    let src = src.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut tx = client.transaction()?;
    let tables: Vec<String> = tx
        .query(
            "SELECT table_name::TEXT FROM information_schema.tables
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
               AND table_name <> 'courier_schema' ORDER BY 1",
            &[],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for t in &tables {
        let holds: bool = tx
            .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {t})"), &[])?
            .get(0);
        if holds {
            return Err(Error::Usage {
                what: format!("{url}: the database already holds data (table {t}); store migrate copies into an empty database only: create a new one"),
            });
        }
    }
    refuse_tables_left_behind(&src, &tables, sqlite)?;
    let mut copied = Vec::new();
    for t in &tables {
        copied.push(if t == "package_chunks" {
            copy_package_files(&src, &mut tx, packages, sqlite)?
        } else {
            copy_table(&src, &mut tx, t, sqlite)?
        });
    }
    if let Some(c) = copied.iter().find(|c| c.sqlite_rows != c.postgres_rows) {
        return Err(Error::Store {
            kind: StoreFailure::Other,
            message: format!(
                "{url}: table {} has {} rows after the copy, {} in {}; nothing was kept",
                c.table,
                c.postgres_rows,
                c.sqlite_rows,
                sqlite.display()
            ),
        });
    }
    tx.commit()?;
    Ok(copied)
}

/// A SQLite table with rows that PostgreSQL's schema has no table for (a centre's own
/// tables, which a central never fills) would be lost: refused.
fn refuse_tables_left_behind(src: &Connection, tables: &[String], path: &Path) -> Result<()> {
    let mut st = src.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )?;
    let names: Vec<String> = st
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for name in names.iter().filter(|n| !tables.contains(n)) {
        let rows = count_sqlite(src, name)?;
        if rows > 0 {
            return Err(Error::StoreDamaged {
                path: path.to_path_buf(),
                what: format!("table {name} holds {rows} rows, and a central on PostgreSQL has no such table; is this a centre's store?"),
            });
        }
    }
    Ok(())
}

fn count_sqlite(src: &Connection, table: &str) -> Result<i64> {
    Ok(
        src.query_row(&format!("SELECT COUNT(*) FROM \"{table}\""), [], |r| {
            r.get(0)
        })?,
    )
}

/// Copy one table: the columns both have (SQLite's implicit `rowid` included), streamed
/// through COPY; identity sequences continue after the highest value copied.
fn copy_table(
    src: &Connection,
    tx: &mut postgres::Transaction<'_>,
    table: &str,
    path: &Path,
) -> Result<TableCopy> {
    let on_sqlite: Vec<String> = {
        let mut st = src.prepare("SELECT name FROM pragma_table_info(?1)")?;
        let names = st.query_map([table], |r| r.get(0))?;
        names.collect::<rusqlite::Result<_>>()?
    };
    let sqlite_rows = if on_sqlite.is_empty() {
        0
    } else {
        count_sqlite(src, table)?
    };
    let columns: Vec<(String, bool, bool)> = tx
        .query(
            "SELECT column_name::TEXT, data_type = 'bytea', is_identity = 'YES'
             FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .filter(|(c, _, _): &(String, bool, bool)| c == "rowid" || on_sqlite.contains(c))
        .collect();
    if sqlite_rows > 0 {
        stream_rows(src, tx, table, &columns, path)?;
    }
    for (c, _, _) in columns.iter().filter(|(_, _, identity)| *identity) {
        tx.execute(
            &format!("SELECT setval(pg_get_serial_sequence('{table}', '{c}'), COALESCE(MAX({c}), 0) + 1, false) FROM {table}"),
            &[],
        )?;
    }
    let postgres_rows: i64 = tx
        .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])?
        .get(0);
    Ok(TableCopy {
        table: table.to_string(),
        sqlite_rows,
        postgres_rows,
    })
}

/// The content of every package the SQLite store records, from its file in `packages`,
/// into `package_chunks` (its SHA-256 checked on the way, its size against the record).
/// Counted as a table: `sqlite_rows` is the number of chunks the files make, `postgres_rows`
/// the rows the table holds after.
fn copy_package_files(
    src: &Connection,
    tx: &mut postgres::Transaction<'_>,
    packages: &Path,
    sqlite: &Path,
) -> Result<TableCopy> {
    let mut st = src.prepare("SELECT sha256, size FROM packages ORDER BY sha256")?;
    let recorded: Vec<(String, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut chunks = 0;
    for (sha, size) in recorded {
        let file = packages.join(format!("{sha}.zip"));
        let mut from = std::fs::File::open(&file).map_err(|e| Error::StoreDamaged {
            path: sqlite.to_path_buf(),
            what: format!(
                "it records test package {sha}, but its file {} cannot be read ({e}); restore the file from a backup, then migrate again",
                file.display()
            ),
        })?;
        let copied = super::postgres::write_chunks(tx, &sha, &mut from, &file)?;
        if copied != size as u64 {
            return Err(Error::StoreDamaged {
                path: sqlite.to_path_buf(),
                what: format!(
                    "test package {sha} is recorded with {size} bytes, its file {} has {copied}",
                    file.display()
                ),
            });
        }
        chunks += copied.div_ceil(super::postgres::CHUNK).max(1) as i64;
    }
    let postgres_rows: i64 = tx
        .query_one("SELECT COUNT(*) FROM package_chunks", &[])?
        .get(0);
    Ok(TableCopy {
        table: "package_chunks".into(),
        sqlite_rows: chunks,
        postgres_rows,
    })
}

/// Every row of `table`, one COPY line each.
fn stream_rows(
    src: &Connection,
    tx: &mut postgres::Transaction<'_>,
    table: &str,
    columns: &[(String, bool, bool)],
    path: &Path,
) -> Result<()> {
    let names: Vec<&str> = columns.iter().map(|(c, _, _)| c.as_str()).collect();
    let list = names.join(", ");
    let mut st = src.prepare(&format!("SELECT {list} FROM \"{table}\""))?;
    let mut rows = st.query([])?;
    let mut out = tx.copy_in(&format!("COPY {table} ({list}) FROM STDIN"))?;
    let mut line = Vec::new();
    while let Some(row) = rows.next()? {
        line.clear();
        for (i, (c, bytea, _)) in columns.iter().enumerate() {
            if i > 0 {
                line.push(b'\t');
            }
            copy_field(&mut line, row.get_ref(i)?, *bytea).map_err(|what| Error::StoreDamaged {
                path: path.to_path_buf(),
                what: format!("{table}.{c}: {what}"),
            })?;
        }
        line.push(b'\n');
        out.write_all(&line).map_err(copy_failed)?;
    }
    out.finish()?;
    Ok(())
}

fn copy_failed(e: std::io::Error) -> Error {
    Error::Store {
        kind: StoreFailure::Other,
        message: format!("COPY to PostgreSQL failed: {e}"),
    }
}

/// One value in COPY's text format: `\N` for NULL, backslash escapes for text, `\\x` and hex
/// digits for a `bytea` column.
fn copy_field(line: &mut Vec<u8>, v: ValueRef<'_>, bytea: bool) -> std::result::Result<(), String> {
    match v {
        ValueRef::Null => line.extend_from_slice(b"\\N"),
        ValueRef::Integer(i) => line.extend_from_slice(i.to_string().as_bytes()),
        ValueRef::Real(f) => line.extend_from_slice(f.to_string().as_bytes()),
        ValueRef::Text(b) | ValueRef::Blob(b) if bytea => {
            line.extend_from_slice(b"\\\\x");
            line.extend_from_slice(hex::encode(b).as_bytes());
        }
        ValueRef::Text(b) => {
            for &c in b {
                match c {
                    b'\\' => line.extend_from_slice(b"\\\\"),
                    b'\t' => line.extend_from_slice(b"\\t"),
                    b'\n' => line.extend_from_slice(b"\\n"),
                    b'\r' => line.extend_from_slice(b"\\r"),
                    0 => return Err("text holds a NUL byte, which PostgreSQL refuses".into()),
                    c => line.push(c),
                }
            }
        }
        ValueRef::Blob(_) => return Err("binary data where text is expected".into()),
    }
    Ok(())
}
