//! Central's store on PostgreSQL (issue 15): the same domain traits as [`super::sqlite`], for a
//! central too large for one SQLite file, imported by several workers at once.
//!
//! The schema is `schema-1.sql` (central's tables as SQLite's migrations leave them, same
//! column names), applied in one transaction and recorded in `courier_schema`; a database
//! holding a newer version than this program knows is refused untouched. A centre's store stays
//! SQLite: [`HeldResults`](crate::store::HeldResults) is refused here.

use std::cell::RefCell;

use postgres::{Client, NoTls};

use crate::error::{Error, Result, StoreFailure};
use crate::store::Transaction;

mod centers;
mod entities;
mod held;
mod keys;
mod ledger;
mod results;
mod rows;

/// The schema versions, oldest first: each is applied once, in one transaction.
const MIGRATIONS: &[&str] = &[include_str!("schema-1.sql")];

/// The newest PostgreSQL schema version this program knows.
pub const PG_SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// An open connection to central's PostgreSQL database.
pub struct PgStore {
    client: Client,
    /// The connection string without its password, for messages.
    shown: String,
}

impl PgStore {
    /// Connect to `url` (`postgres://USER@HOST[:PORT]/DB`), with `password` when given, and
    /// apply the migrations this database lacks.
    pub fn connect(url: &str, password: Option<&str>) -> Result<PgStore> {
        let mut config: postgres::Config = url.parse().map_err(|e| Error::Usage {
            what: format!("{url:?} is not a PostgreSQL connection string: {e}"),
        })?;
        if let Some(p) = password {
            config.password(p);
        }
        let client = config.connect(NoTls)?;
        let mut store = PgStore {
            client,
            shown: url.to_string(),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<()> {
        let mut tx = self.client.transaction()?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS courier_schema
                 (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);
             LOCK TABLE courier_schema IN EXCLUSIVE MODE;",
        )?;
        let found: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0)::BIGINT FROM courier_schema",
                &[],
            )?
            .get(0);
        if found > PG_SCHEMA_VERSION {
            return Err(Error::StoreTooNew {
                path: self.shown.clone().into(),
                found,
                supported: PG_SCHEMA_VERSION,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            tx.batch_execute(sql)?;
            tx.execute(
                "INSERT INTO courier_schema (version, applied_at) VALUES ($1, $2)",
                &[&((i + 1) as i32), &crate::time::now_rfc3339()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Start the one write transaction of a command.
    pub fn begin(&mut self) -> Result<PgTx<'_>> {
        let tx = self.client.transaction()?;
        crate::failpoint::hit("store.begin")?;
        Ok(PgTx {
            tx: RefCell::new(tx),
        })
    }

    /// Read-only access for queries outside a write.
    pub fn read(&mut self) -> Result<PgTx<'_>> {
        let tx = self.client.build_transaction().read_only(true).start()?;
        Ok(PgTx {
            tx: RefCell::new(tx),
        })
    }
}

/// A transaction on central's PostgreSQL database. The domain traits take `&self`, the
/// `postgres` crate `&mut`: the transaction sits in a `RefCell`, borrowed for one statement.
pub struct PgTx<'a> {
    tx: RefCell<postgres::Transaction<'a>>,
}

impl Transaction for PgTx<'_> {
    fn commit(self: Box<Self>) -> Result<()> {
        Ok(self.tx.into_inner().commit()?)
    }

    fn rollback(self: Box<Self>) -> Result<()> {
        Ok(self.tx.into_inner().rollback()?)
    }
}

/// A method this backend does not offer yet.
fn not_yet(method: &str) -> Error {
    Error::Store {
        kind: StoreFailure::Other,
        message: format!("{method} is not yet available on a PostgreSQL store"),
    }
}

/// PostgreSQL's errors become the backend-neutral [`Error::Store`], with their kind.
impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Error {
        use postgres::error::SqlState;
        let kind = match e.code() {
            Some(c)
                if *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::FOREIGN_KEY_VIOLATION =>
            {
                StoreFailure::Constraint
            }
            Some(c)
                if *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::LOCK_NOT_AVAILABLE =>
            {
                StoreFailure::Busy
            }
            _ => StoreFailure::Other,
        };
        Error::Store {
            kind,
            message: e.to_string(),
        }
    }
}
