//! Entities (both roles), test packages held, and central's record of the scope lists it
//! sent to each centre.

use rusqlite::{params, OptionalExtension};
use serde_json::{Map, Value};

use std::io::Read;
use std::path::Path;

use super::SqliteTx;
use crate::error::{Error, Result, StoreFailure};
use crate::store::prelude::*;
use crate::store::{
    entity_json, entity_json_columns, PackageContent, ENTITY_COLUMNS, ENTITY_FLOW_ORDER,
};

/// Asked of a SQLite store for a package's content: the home keeps it as a file.
fn files_not_store() -> Error {
    Error::Store {
        kind: StoreFailure::Other,
        message: "a SQLite store keeps no test package content: it is the file packages/<sha256>.zip in the home".into(),
    }
}

/// An entity as stored.
#[derive(Debug, Clone)]
pub struct StoredEntity {
    pub id: String,
    pub kind: String,
    pub checksum: String,
    /// The properties readable at this site.
    pub properties: Map<String, Value>,
    /// Personal properties sealed to this centre's key (centre only).
    pub sealed: Option<Vec<u8>>,
    pub sealed_names: Vec<String>,
    /// A delivery's test package (SHA-256).
    pub package: Option<String>,
}

/// One (id, type, checksum) of a scope list or an inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeItem {
    pub id: String,
    pub kind: String,
    pub checksum: String,
}

fn stored_entity(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEntity> {
    let id: String = r.get(0)?;
    let props: String = r.get(3)?;
    let names: Option<String> = r.get(5)?;
    Ok(StoredEntity {
        properties: json_column(&id, 3, "properties", &props)?,
        sealed_names: match names {
            Some(n) => json_column(&id, 5, "sealed_names", &n)?,
            None => Default::default(),
        },
        id,
        kind: r.get(1)?,
        checksum: r.get(2)?,
        sealed: r.get(4)?,
        package: r.get(6)?,
    })
}

/// A JSON column of an entity ([`entity_json`]), as SQLite's conversion error.
fn json_column<T: serde::de::DeserializeOwned>(
    id: &str,
    index: usize,
    column: &str,
    text: &str,
) -> rusqlite::Result<T> {
    entity_json(id, column, text).map_err(|message| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            message.into(),
        )
    })
}

impl EntityStore for SqliteTx<'_> {
    fn entity(&self, id: &str) -> Result<Option<StoredEntity>> {
        Ok(self
            .tx
            .query_row(
                &format!("SELECT {ENTITY_COLUMNS} FROM entities WHERE id = ?1"),
                [id],
                stored_entity,
            )
            .optional()?)
    }

    fn entity_checksum(&self, id: &str) -> Result<Option<String>> {
        Ok(self
            .tx
            .query_row("SELECT checksum FROM entities WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?)
    }

    fn entity_kind(&self, id: &str) -> Result<Option<String>> {
        Ok(self
            .tx
            .query_row("SELECT type FROM entities WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?)
    }

    fn holds(&self, id: &str, kind: &str) -> Result<bool> {
        Ok(self
            .tx
            .query_row(
                "SELECT 1 FROM entities WHERE id = ?1 AND type = ?2",
                params![id, kind],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn entities_of_type(&self, kind: &str) -> Result<Vec<StoredEntity>> {
        let mut stmt = self.tx.prepare(&format!(
            "SELECT {ENTITY_COLUMNS} FROM entities WHERE type = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([kind], stored_entity)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn all_entities(&self) -> Result<Vec<StoredEntity>> {
        let mut stmt = self.tx.prepare(&format!(
            "SELECT {ENTITY_COLUMNS} FROM entities ORDER BY {ENTITY_FLOW_ORDER}, id"
        ))?;
        let rows = stmt.query_map([], stored_entity)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn inventory(&self) -> Result<Vec<ScopeItem>> {
        let mut stmt = self.tx.prepare("SELECT id, type, checksum FROM entities")?;
        let rows = stmt.query_map([], |r| {
            Ok(ScopeItem {
                id: r.get(0)?,
                kind: r.get(1)?,
                checksum: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn put_entity(&self, e: &StoredEntity) -> Result<()> {
        crate::failpoint::hit("store.entity")?;
        let (properties, sealed_names) = entity_json_columns(e);
        self.tx.execute(
            "INSERT INTO entities (id, type, checksum, properties, sealed, sealed_names, package, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO UPDATE SET type = excluded.type, checksum = excluded.checksum,
               properties = excluded.properties, sealed = excluded.sealed, sealed_names = excluded.sealed_names,
               package = excluded.package, updated_at = excluded.updated_at",
            params![
                e.id,
                e.kind,
                e.checksum,
                properties,
                e.sealed,
                sealed_names,
                e.package,
                crate::time::now_rfc3339()
            ],
        )?;
        Ok(())
    }

    fn delete_entity(&self, id: &str) -> Result<bool> {
        Ok(self
            .tx
            .execute("DELETE FROM entities WHERE id = ?1", [id])?
            > 0)
    }

    // ---- packages ---------------------------------------------------------------------

    fn package_known(&self, sha256: &str) -> Result<bool> {
        Ok(self
            .tx
            .query_row("SELECT 1 FROM packages WHERE sha256 = ?1", [sha256], |_| {
                Ok(())
            })
            .optional()?
            .is_some())
    }

    fn add_package(&self, sha256: &str, size: u64, name: &str) -> Result<()> {
        crate::failpoint::hit("store.package")?;
        self.tx.execute(
            "INSERT OR IGNORE INTO packages (sha256, size, name, added_at) VALUES (?1, ?2, ?3, ?4)",
            params![sha256, size as i64, name, crate::time::now_rfc3339()],
        )?;
        Ok(())
    }

    fn keeps_package_content(&self) -> bool {
        false
    }

    fn put_package_content(&self, _: &str, _: &mut dyn Read, _: &Path) -> Result<u64> {
        Err(files_not_store())
    }

    fn package_content(&self, _: &str) -> Result<Option<PackageContent<'_>>> {
        Err(files_not_store())
    }

    fn package_hashes(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .tx
            .prepare("SELECT sha256 FROM packages ORDER BY sha256")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn drop_unused_packages(&self) -> Result<Vec<String>> {
        let mut stmt = self.tx.prepare(
            "SELECT sha256 FROM packages WHERE sha256 NOT IN (SELECT package FROM entities WHERE package IS NOT NULL)",
        )?;
        let unused: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for sha in &unused {
            self.tx
                .execute("DELETE FROM packages WHERE sha256 = ?1", [sha])?;
        }
        Ok(unused)
    }

    fn deliveries_without_package(&self) -> Result<Vec<String>> {
        let mut stmt = self.tx.prepare(
            "SELECT e.id FROM entities e LEFT JOIN packages p ON p.sha256 = e.package
             WHERE e.type = 'delivery' AND e.package IS NOT NULL AND p.sha256 IS NULL ORDER BY e.id",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- central: scope lists sent ------------------------------------------------------

    fn record_scope(&self, org: &str, seq: i64, items: &[ScopeItem]) -> Result<()> {
        let mut ins = self.tx.prepare_cached(
            "INSERT INTO export_scope (org_id, seq, id, type, checksum) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for i in items {
            ins.execute(params![org, seq, i.id, i.kind, i.checksum])?;
        }
        Ok(())
    }

    fn scopes_since(&self, org: &str, from_seq: i64) -> Result<Vec<(i64, ScopeItem)>> {
        let mut stmt = self.tx.prepare(
            "SELECT seq, id, type, checksum FROM export_scope WHERE org_id = ?1 AND seq >= ?2 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![org, from_seq], |r| {
            Ok((
                r.get(0)?,
                ScopeItem {
                    id: r.get(1)?,
                    kind: r.get(2)?,
                    checksum: r.get(3)?,
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn record_sent_pairs(&self, org: &str, seq: i64, pairs: &[(&str, &str)]) -> Result<()> {
        let mut ins = self.tx.prepare_cached(
            "INSERT OR IGNORE INTO sent_pairs (org_id, delivery_id, test_taker, first_seq) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (delivery, taker) in pairs {
            ins.execute(params![org, delivery, taker, seq])?;
        }
        Ok(())
    }

    fn pair_sent(&self, org: &str, delivery: &str, taker: &str) -> Result<bool> {
        Ok(self
            .tx
            .query_row(
                "SELECT 1 FROM sent_pairs WHERE org_id = ?1 AND delivery_id = ?2 AND test_taker = ?3",
                params![org, delivery, taker],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn delivery_sent(&self, org: &str, delivery: &str) -> Result<bool> {
        Ok(self
            .tx
            .query_row(
                "SELECT 1 FROM sent_pairs WHERE org_id = ?1 AND delivery_id = ?2 LIMIT 1",
                params![org, delivery],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn forget_scopes_before(&self, org: &str, seq: i64) -> Result<()> {
        self.tx.execute(
            "DELETE FROM export_scope WHERE org_id = ?1 AND seq < ?2",
            params![org, seq],
        )?;
        Ok(())
    }
}
