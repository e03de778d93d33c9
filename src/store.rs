//! The site store. Today's SQLite store lives in [`sqlite`]; its items are re-exported here.

mod sqlite;

pub use sqlite::*;
