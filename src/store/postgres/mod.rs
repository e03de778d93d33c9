//! Central's store on PostgreSQL (issue 15): the same domain traits as [`super::sqlite`], for a
//! central too large for one SQLite file, imported by several workers at once.
//!
//! The schema is `schema-1.sql` (central's tables as SQLite's migrations leave them, same
//! column names) and what later versions add (`schema-2.sql`: test packages' content in
//! chunks), each applied in one transaction and recorded in `courier_schema`; a database
//! holding a newer version than this program knows is refused untouched. A centre's store stays
//! SQLite: [`HeldResults`](crate::store::HeldResults) is refused here.
//!
//! Several importers may write at once (each its own connection and transaction, READ
//! COMMITTED). What they share is guarded by transaction-scoped advisory locks, held until
//! commit or rollback ([`Lock`]): the history's chain head, the counters in `meta`, and one
//! lock per centre ([`CenterRegistry::lock_center`](crate::store::CenterRegistry::lock_center)).
//! Text is compared and sorted byte for byte (`COLLATE "C"`), as SQLite does, whatever the
//! database's collation; NULLs sort as in SQLite (first in ascending order).

use std::cell::{RefCell, RefMut};
use std::path::PathBuf;

use postgres::types::ToSql;
use postgres::{Client, Row};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result, StoreFailure};
use crate::store::Transaction;

mod centers;
mod entities;
mod held;
mod keys;
mod ledger;
mod password;
mod results;
mod rows;
mod tls;

pub(in crate::store) use entities::{write_chunks, CHUNK};
pub use password::password_for;
pub use tls::root_cert_in;

/// The schema versions, oldest first: each is applied once, in one transaction.
const MIGRATIONS: &[&str] = &[include_str!("schema-1.sql"), include_str!("schema-2.sql")];

/// The newest PostgreSQL schema version this program knows.
pub const PG_SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// An open connection to central's PostgreSQL database.
pub struct PgStore {
    client: Client,
    /// The connection string without its password, for messages.
    shown: String,
}

impl PgStore {
    /// Connect to `url` (`postgres://USER@HOST[:PORT]/DB`, TLS as its `sslmode` says), with
    /// `password` when given, and apply the migrations this database lacks.
    pub fn connect(url: &str, password: Option<&str>) -> Result<PgStore> {
        let client = open_client(url, password)?;
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
            shown: self.shown.clone().into(),
        })
    }

    /// Read-only access for queries outside a write.
    pub fn read(&mut self) -> Result<PgTx<'_>> {
        let tx = self.client.build_transaction().read_only(true).start()?;
        Ok(PgTx {
            tx: RefCell::new(tx),
            shown: self.shown.clone().into(),
        })
    }
}

/// A transaction on central's PostgreSQL database. The domain traits take `&self`, the
/// `postgres` crate `&mut`: the transaction sits in a `RefCell`, borrowed for one statement.
pub struct PgTx<'a> {
    tx: RefCell<postgres::Transaction<'a>>,
    /// The connection string (no password), naming the store in errors.
    shown: PathBuf,
}

/// Statement parameters, as the `postgres` crate takes them.
type Params<'p> = [&'p (dyn ToSql + Sync)];

/// Rows fetched at a time by [`PgTx::each`].
const BATCH: i32 = 1000;

/// What an advisory lock guards. Courier's locks are transaction-scoped
/// (`pg_advisory_xact_lock`): taken before the guarded rows are read, released by commit or
/// rollback, waited for (up to the session's `lock_timeout`, then "busy").
pub(super) enum Lock<'k> {
    /// The history's chain head: `add_history` reads it and appends after it.
    History,
    /// The counters kept in `meta` (`next_counter`).
    Counters,
    /// One centre's state: its imports are serialised, different centres' run in parallel.
    Center(&'k str),
}

/// The first of the two 32-bit keys of courier's fixed locks (`'c' 'o' 'u' 'r'`); the second
/// says which. PostgreSQL keeps two-key locks apart from one-key (64-bit) locks.
const FIXED_LOCK_CLASS: i32 = 0x636f_7572;

impl Lock<'_> {
    /// A centre's lock key: the first 8 bytes, big-endian, of SHA-256 of
    /// `courier center lock` LF org id, as a signed 64-bit key. Stable across programs and
    /// versions (any tool may take it to pause one centre's imports); a collision between two
    /// org ids would only serialise their imports.
    pub(super) fn center_key(org: &str) -> i64 {
        let digest = Sha256::new()
            .chain_update(b"courier center lock\n")
            .chain_update(org.as_bytes())
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(first)
    }
}

impl<'a> PgTx<'a> {
    /// Take `lock` until this transaction ends (waiting for another transaction holding it).
    pub(super) fn lock(&self, lock: Lock<'_>) -> Result<()> {
        match lock {
            Lock::History => self.exec(
                "SELECT pg_advisory_xact_lock($1, 1)::TEXT",
                &[&FIXED_LOCK_CLASS],
            ),
            Lock::Counters => self.exec(
                "SELECT pg_advisory_xact_lock($1, 2)::TEXT",
                &[&FIXED_LOCK_CLASS],
            ),
            Lock::Center(org) => self.exec(
                "SELECT pg_advisory_xact_lock($1)::TEXT",
                &[&Lock::center_key(org)],
            ),
        }
        .map(drop)
    }

    fn db(&self) -> RefMut<'_, postgres::Transaction<'a>> {
        self.tx.borrow_mut()
    }

    /// Run a statement; how many rows it changed.
    pub(super) fn exec(&self, sql: &str, params: &Params<'_>) -> Result<u64> {
        Ok(self.db().execute(sql, params)?)
    }

    /// The first row of a query, read by `read`, if there is one.
    pub(super) fn row<T>(
        &self,
        sql: &str,
        params: &Params<'_>,
        read: impl FnOnce(&Row) -> std::result::Result<T, postgres::Error>,
    ) -> Result<Option<T>> {
        let found = self.db().query_opt(sql, params)?;
        Ok(found.as_ref().map(read).transpose()?)
    }

    /// The one value of a query that always returns one row (`SELECT MAX(..)`, `COUNT(*)`).
    pub(super) fn value<T>(&self, sql: &str, params: &Params<'_>) -> Result<T>
    where
        T: for<'r> postgres::types::FromSql<'r>,
    {
        Ok(self.db().query_one(sql, params)?.try_get(0)?)
    }

    /// Every row of a small query (a few per centre or key), read by `read`.
    pub(super) fn rows<T>(
        &self,
        sql: &str,
        params: &Params<'_>,
        read: impl Fn(&Row) -> std::result::Result<T, postgres::Error>,
    ) -> Result<Vec<T>> {
        let found = self.db().query(sql, params)?;
        Ok(found
            .iter()
            .map(read)
            .collect::<std::result::Result<_, _>>()?)
    }

    /// Call `f` with each row of a query, [`BATCH`] rows fetched at a time (never the whole
    /// result in memory); `f` returns `false` to stop. `f` may use this transaction.
    pub(super) fn each(
        &self,
        sql: &str,
        params: &Params<'_>,
        f: &mut dyn FnMut(&Row) -> Result<bool>,
    ) -> Result<()> {
        let portal = self.db().bind(sql, params)?;
        loop {
            let batch = self.db().query_portal(&portal, BATCH)?;
            for r in &batch {
                if !f(r)? {
                    return Ok(());
                }
            }
            if batch.len() < BATCH as usize {
                return Ok(());
            }
        }
    }
}

/// A connection to the database at `url` (no password inside; TLS as its `sslmode` and
/// `sslrootcert` say, [`tls`]), with `password` when given.
pub(in crate::store) fn open_client(url: &str, password: Option<&str>) -> Result<Client> {
    let password::Address { mut config, tls } = password::parse_url(url)?;
    if let Some(p) = password {
        config.password(p);
    }
    tls::connect(url, config, &tls)
}

/// Check a store's address as [`PgStore::connect`] reads it (options, `sslmode`), connecting
/// nowhere.
pub(in crate::store) fn check_address(url: &str) -> Result<()> {
    password::parse_url(url).map(drop)
}

/// An error of the `postgres` crate as one line (its source chain joined), for messages.
fn one_line(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = s.source();
    }
    text.replace('\n', " ")
}

impl Transaction for PgTx<'_> {
    fn commit(self: Box<Self>) -> Result<()> {
        Ok(self.tx.into_inner().commit()?)
    }

    fn rollback(self: Box<Self>) -> Result<()> {
        Ok(self.tx.into_inner().rollback()?)
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
