//! Small helpers of the PostgreSQL backend: one statement at a time on the transaction (the
//! `RefCell` borrowed for that statement only, so a callback may run statements of its own),
//! and columns read without panicking on a type the code does not expect.

use postgres::types::{FromSql, ToSql};
use postgres::Row;

use super::PgTx;
use crate::error::{Error, Result, StoreFailure};

/// Statement parameters, as the `postgres` crate takes them.
pub(super) type Params<'p> = [&'p (dyn ToSql + Sync)];

impl PgTx<'_> {
    /// Every row of a query (for answers that are small by nature).
    pub(super) fn all_rows(&self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>> {
        Ok(self.tx.borrow_mut().query(sql, params)?)
    }

    /// The one row of a query, if any.
    pub(super) fn one_row(&self, sql: &str, params: &Params<'_>) -> Result<Option<Row>> {
        Ok(self.tx.borrow_mut().query_opt(sql, params)?)
    }

    /// Whether a query finds a row.
    pub(super) fn exists(&self, sql: &str, params: &Params<'_>) -> Result<bool> {
        Ok(self.one_row(sql, params)?.is_some())
    }

    /// Column 0 of every row of a query.
    pub(super) fn column<T: for<'a> FromSql<'a>>(
        &self,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Vec<T>> {
        self.all_rows(sql, params)?
            .iter()
            .map(|r| get(r, 0))
            .collect()
    }

    /// Column 0 of the one row of a query, if any.
    pub(super) fn opt_value<T: for<'a> FromSql<'a>>(
        &self,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Option<T>> {
        self.one_row(sql, params)?.map(|r| get(&r, 0)).transpose()
    }

    /// Call `each` with the rows of a query, fetched `batch` at a time through a portal:
    /// never more than a batch in memory, and the transaction free for other statements
    /// (`each`'s own) between fetches. Returns how many rows there were.
    pub(super) fn each_batch(
        &self,
        sql: &str,
        params: &Params<'_>,
        batch: i32,
        each: &mut dyn FnMut(Vec<Row>) -> Result<()>,
    ) -> Result<u64> {
        let portal = self.tx.borrow_mut().bind(sql, params)?;
        let mut count = 0;
        loop {
            let rows = self.tx.borrow_mut().query_portal(&portal, batch)?;
            let last = rows.len() < batch as usize;
            count += rows.len() as u64;
            if !rows.is_empty() {
                each(rows)?;
            }
            if last {
                return Ok(count);
            }
        }
    }
}

/// A column of a row; a type other than the code reads is [`StoreFailure::Shape`], not a panic.
pub(super) fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T> {
    row.try_get(index)
        .map_err(|e| shape(format!("column {index}: {e}")))
}

/// Stored data not in the shape the code reads.
pub(super) fn shape(message: String) -> Error {
    Error::Store {
        kind: StoreFailure::Shape,
        message,
    }
}
