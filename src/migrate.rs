//! `courier store migrate --to postgres://...`: a SQLite central moves into PostgreSQL, so
//! it can grow without starting over (issue 15). The copy itself is [`crate::store::copy`];
//! here: what is refused first, what is verified after, and the switch of courier.json.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::site::{Role, Site};
use crate::store::HistoryHead;

/// What `store migrate` did (schema: schemas/store-migrate.schema.json).
#[derive(Debug, Clone, Serialize)]
pub struct Migrated {
    /// The database copied into.
    pub to: String,
    /// Every table of central's PostgreSQL schema with its rows on both sides.
    pub tables: Vec<crate::store::copy::TableCopy>,
    /// The newest history row, the same in both stores (none for an empty history).
    pub history_head: Option<i64>,
    /// Whether courier.json now names the database (`--switch`).
    pub switched: bool,
}

/// Copy this central's SQLite store into the empty PostgreSQL database at `url`, verify the
/// copy (counts table by table, and the history chain intact with the source's head), and
/// with `switch` make courier.json name the database from now on.
pub fn to_postgres(site: &mut Site, url: &str, switch: bool) -> Result<Migrated> {
    site.require(Role::Central)?;
    if let Some(current) = &site.config.settings.store {
        return Err(Error::Usage {
            what: format!("this central's store is already on PostgreSQL ({current}); store migrate copies a SQLite central"),
        });
    }
    crate::store::check_store_url(url)?;
    let source = intact_head(site.store_path(), &site.store()?.read()?)?;
    let password = crate::store::password_for(url, site.store_password_file())?;
    let at_home = site.store_url(url);
    let tables = crate::store::copy::sqlite_to_postgres(
        &site.store_path(),
        &site.packages_dir(),
        &at_home,
        password.as_deref(),
    )?;
    // After the copy's commit: a copy that does not verify stays in the database, unused.
    let verified =
        crate::store::Store::connect(&at_home, password.as_deref()).and_then(|mut copy| {
            let copied = intact_head(url.into(), &copy.read()?)?;
            match copied == source {
                true => Ok(()),
                false => Err(Error::Usage {
                    what: format!(
                        "its history ends at {:?}, the source's at {:?}",
                        copied.map(|h| h.n),
                        source.as_ref().map(|h| h.n)
                    ),
                }),
            }
        });
    if let Err(e) = verified {
        return Err(Error::CopyNotVerified {
            url: url.to_string(),
            what: e.to_string(),
        });
    }
    if switch {
        site.switch_store(url)?;
    }
    Ok(Migrated {
        to: url.to_string(),
        tables,
        history_head: source.map(|h| h.n),
        switched: switch,
    })
}

/// The history's newest row, once the chain verifies.
fn intact_head(path: PathBuf, tx: &crate::store::Tx<'_>) -> Result<Option<HistoryHead>> {
    if let Some(n) = tx.verify_history()? {
        return Err(Error::HistoryNotIntact {
            path,
            what: format!("row {n} does not match the chain; run 'courier history --verify'"),
        });
    }
    tx.history_head()
}
