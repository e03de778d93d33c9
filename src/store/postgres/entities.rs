//! PostgreSQL: [`EntityStore`], ported from SQLite's (src/store/sqlite/entities.rs): the same
//! rows, order and answers. Text is ordered byte-wise (`COLLATE "C"`), as SQLite orders it,
//! whatever the database's collation; lists of rows go in as arrays (`UNNEST`), one statement.

use std::io::Read;
use std::path::Path;

use ::postgres::Row;
use sha2::{Digest, Sha256};

use super::rows::{get, shape};
use super::PgTx;
use crate::error::{Error, Result};
use crate::store::*;

/// Bytes of content in one row of `package_chunks` (the last row of a package holds less).
pub(in crate::store) const CHUNK: u64 = 1 << 20;

/// Keep the content of package `sha256` in `package_chunks`, read from `from` (named
/// `origin` in errors) one chunk at a time, its SHA-256 checked against `sha256`
/// ([`Error::ChangedWhileReading`] otherwise: the caller's transaction rolls back). Content
/// kept already and intact is not read again; damaged (see [`ChunkReader`]), it is replaced,
/// so loading a package again repairs it. Returns the size. Used by the store and by
/// `store migrate`'s copy.
pub(in crate::store) fn write_chunks(
    db: &mut ::postgres::Transaction<'_>,
    sha256: &str,
    from: &mut dyn Read,
    origin: &Path,
) -> Result<u64> {
    if let Some(size) = intact_size(db, sha256)? {
        return Ok(size);
    }
    db.execute("DELETE FROM package_chunks WHERE sha256 = $1", &[&sha256])?;
    let insert = db.prepare("INSERT INTO package_chunks (sha256, n, bytes) VALUES ($1, $2, $3)")?;
    let (mut hash, mut size, mut n) = (Sha256::new(), 0u64, 0i32);
    let mut part = Vec::with_capacity(CHUNK as usize);
    loop {
        part.clear();
        from.take(CHUNK)
            .read_to_end(&mut part)
            .map_err(|e| Error::io(origin, e))?;
        if part.is_empty() && n > 0 {
            break;
        }
        hash.update(&part);
        size += part.len() as u64;
        db.execute(&insert, &[&sha256, &n, &part])?;
        n += 1;
        if (part.len() as u64) < CHUNK {
            break;
        }
    }
    if hex::encode(hash.finalize()) != sha256 {
        return Err(Error::ChangedWhileReading {
            path: origin.to_path_buf(),
        });
    }
    Ok(size)
}

/// The size of the content kept for `sha256`, when there is some and its chunks, read one at
/// a time, hash to `sha256`.
fn intact_size(db: &mut ::postgres::Transaction<'_>, sha256: &str) -> Result<Option<u64>> {
    let select = db.prepare("SELECT bytes FROM package_chunks WHERE sha256 = $1 AND n = $2")?;
    let (mut hash, mut size) = (Sha256::new(), 0u64);
    for n in 0i32.. {
        let Some(row) = db.query_opt(&select, &[&sha256, &n])? else {
            return Ok((n > 0 && hex::encode(hash.finalize()) == sha256).then_some(size));
        };
        let bytes: &[u8] = row.try_get(0)?;
        hash.update(bytes);
        size += bytes.len() as u64;
    }
    Ok(None)
}

/// A package's content read back chunk by chunk (one chunk in memory), hashed on the way:
/// a missing, extra or altered chunk is an error before the last byte is handed out.
struct ChunkReader<'t, 'a> {
    tx: &'t PgTx<'a>,
    sha256: String,
    /// The size recorded in `packages`.
    size: u64,
    /// The next chunk's number.
    next: i32,
    /// Bytes fetched so far.
    read: u64,
    chunk: Vec<u8>,
    /// Bytes of `chunk` handed out.
    at: usize,
    hash: Sha256,
    /// Every chunk fetched and the hash checked.
    done: bool,
}

impl ChunkReader<'_, '_> {
    fn damaged(&self, what: String) -> std::io::Error {
        std::io::Error::other(Error::PackageDamaged {
            store: self.tx.shown.display().to_string(),
            sha256: self.sha256.clone(),
            what,
        })
    }

    /// Fetch the next chunk that holds bytes; false at the end of the content.
    fn refill(&mut self) -> std::io::Result<bool> {
        while !self.done {
            let bytes: Option<Vec<u8>> = self
                .tx
                .opt_value(
                    "SELECT bytes FROM package_chunks WHERE sha256 = $1 AND n = $2",
                    &[&self.sha256, &self.next],
                )
                .map_err(std::io::Error::other)?;
            let Some(bytes) = bytes else {
                return Err(self.damaged(format!(
                    "chunk {} is missing ({} of {} bytes found)",
                    self.next, self.read, self.size
                )));
            };
            self.read += bytes.len() as u64;
            if self.read > self.size {
                return Err(self.damaged(format!(
                    "its chunks hold more than the {} bytes recorded",
                    self.size
                )));
            }
            self.hash.update(&bytes);
            self.next += 1;
            if self.read == self.size {
                self.done = true;
                if hex::encode(self.hash.clone().finalize()) != self.sha256 {
                    return Err(self.damaged("its content does not match its SHA-256".into()));
                }
            }
            self.chunk = bytes;
            self.at = 0;
            if !self.chunk.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl Read for ChunkReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.chunk.len() && !self.refill()? {
            return Ok(0);
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn stored_entity(r: &Row) -> Result<StoredEntity> {
    let id: String = get(r, 0)?;
    let props: String = get(r, 3)?;
    let names: Option<String> = get(r, 5)?;
    Ok(StoredEntity {
        properties: entity_json(&id, "properties", &props).map_err(shape)?,
        sealed_names: match names {
            Some(n) => entity_json(&id, "sealed_names", &n).map_err(shape)?,
            None => Default::default(),
        },
        kind: get(r, 1)?,
        checksum: get(r, 2)?,
        sealed: get(r, 4)?,
        package: get(r, 6)?,
        id,
    })
}

fn scope_item(r: &Row, first: usize) -> Result<ScopeItem> {
    Ok(ScopeItem {
        id: get(r, first)?,
        kind: get(r, first + 1)?,
        checksum: get(r, first + 2)?,
    })
}

impl PgTx<'_> {
    fn entities(&self, sql: &str, params: &super::rows::Params<'_>) -> Result<Vec<StoredEntity>> {
        self.all_rows(sql, params)?
            .iter()
            .map(stored_entity)
            .collect()
    }
}

impl EntityStore for PgTx<'_> {
    fn entity(&self, id: &str) -> Result<Option<StoredEntity>> {
        self.one_row(
            &format!("SELECT {ENTITY_COLUMNS} FROM entities WHERE id = $1"),
            &[&id],
        )?
        .map(|r| stored_entity(&r))
        .transpose()
    }

    fn entity_checksum(&self, id: &str) -> Result<Option<String>> {
        self.opt_value("SELECT checksum FROM entities WHERE id = $1", &[&id])
    }

    fn entity_kind(&self, id: &str) -> Result<Option<String>> {
        self.opt_value("SELECT type FROM entities WHERE id = $1", &[&id])
    }

    fn holds(&self, id: &str, kind: &str) -> Result<bool> {
        self.exists(
            "SELECT 1 FROM entities WHERE id = $1 AND type = $2",
            &[&id, &kind],
        )
    }

    fn entities_of_type(&self, kind: &str) -> Result<Vec<StoredEntity>> {
        self.entities(
            &format!(
                "SELECT {ENTITY_COLUMNS} FROM entities WHERE type = $1 ORDER BY id COLLATE \"C\""
            ),
            &[&kind],
        )
    }

    fn all_entities(&self) -> Result<Vec<StoredEntity>> {
        self.entities(
            &format!(
                "SELECT {ENTITY_COLUMNS} FROM entities ORDER BY {ENTITY_FLOW_ORDER}, id COLLATE \"C\""
            ),
            &[],
        )
    }

    fn inventory(&self) -> Result<Vec<ScopeItem>> {
        self.all_rows(
            "SELECT id, type, checksum FROM entities ORDER BY id COLLATE \"C\"",
            &[],
        )?
        .iter()
        .map(|r| scope_item(r, 0))
        .collect()
    }

    fn put_entity(&self, e: &StoredEntity) -> Result<()> {
        crate::failpoint::hit("store.entity")?;
        let (properties, sealed_names) = entity_json_columns(e);
        self.exec(
            "INSERT INTO entities (id, type, checksum, properties, sealed, sealed_names, package, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO UPDATE SET type = excluded.type, checksum = excluded.checksum,
               properties = excluded.properties, sealed = excluded.sealed, sealed_names = excluded.sealed_names,
               package = excluded.package, updated_at = excluded.updated_at",
            &[
                &e.id,
                &e.kind,
                &e.checksum,
                &properties,
                &e.sealed,
                &sealed_names,
                &e.package,
                &crate::time::now_rfc3339(),
            ],
        )?;
        Ok(())
    }

    fn delete_entity(&self, id: &str) -> Result<bool> {
        Ok(self.exec("DELETE FROM entities WHERE id = $1", &[&id])? > 0)
    }

    // ---- packages ---------------------------------------------------------------------

    fn package_known(&self, sha256: &str) -> Result<bool> {
        self.exists("SELECT 1 FROM packages WHERE sha256 = $1", &[&sha256])
    }

    fn add_package(&self, sha256: &str, size: u64, name: &str) -> Result<()> {
        crate::failpoint::hit("store.package")?;
        self.exec(
            "INSERT INTO packages (sha256, size, name, added_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (sha256) DO NOTHING",
            &[&sha256, &(size as i64), &name, &crate::time::now_rfc3339()],
        )?;
        Ok(())
    }

    fn keeps_package_content(&self) -> bool {
        true
    }

    fn put_package_content(&self, sha256: &str, from: &mut dyn Read, origin: &Path) -> Result<u64> {
        write_chunks(&mut self.tx.borrow_mut(), sha256, from, origin)
    }

    fn package_content(&self, sha256: &str) -> Result<Option<PackageContent<'_>>> {
        let size: Option<i64> =
            self.opt_value("SELECT size FROM packages WHERE sha256 = $1", &[&sha256])?;
        Ok(size.map(|size| PackageContent {
            size: size as u64,
            reader: Box::new(ChunkReader {
                tx: self,
                sha256: sha256.to_string(),
                size: size as u64,
                next: 0,
                read: 0,
                chunk: Vec::new(),
                at: 0,
                hash: Sha256::new(),
                done: false,
            }),
        }))
    }

    fn package_hashes(&self) -> Result<Vec<String>> {
        self.column(
            "SELECT sha256 FROM packages ORDER BY sha256 COLLATE \"C\"",
            &[],
        )
    }

    fn drop_unused_packages(&self) -> Result<Vec<String>> {
        let mut dropped: Vec<String> = self.column(
            "DELETE FROM packages
             WHERE sha256 NOT IN (SELECT package FROM entities WHERE package IS NOT NULL)
             RETURNING sha256",
            &[],
        )?;
        dropped.sort();
        self.exec(
            "DELETE FROM package_chunks WHERE sha256 = ANY($1)",
            &[&dropped],
        )?;
        Ok(dropped)
    }

    fn deliveries_without_package(&self) -> Result<Vec<String>> {
        self.column(
            "SELECT e.id FROM entities e LEFT JOIN packages p ON p.sha256 = e.package
             WHERE e.type = 'delivery' AND e.package IS NOT NULL AND p.sha256 IS NULL
             ORDER BY e.id COLLATE \"C\"",
            &[],
        )
    }

    // ---- central: scope lists sent ------------------------------------------------------

    fn record_scope(&self, org: &str, seq: i64, items: &[ScopeItem]) -> Result<()> {
        let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
        let kinds: Vec<&str> = items.iter().map(|i| i.kind.as_str()).collect();
        let sums: Vec<&str> = items.iter().map(|i| i.checksum.as_str()).collect();
        self.exec(
            "INSERT INTO export_scope (org_id, seq, id, type, checksum)
             SELECT $1, $2, i.id, i.type, i.checksum
             FROM UNNEST($3::TEXT[], $4::TEXT[], $5::TEXT[]) AS i (id, type, checksum)",
            &[&org, &seq, &ids, &kinds, &sums],
        )?;
        Ok(())
    }

    fn scopes_since(&self, org: &str, from_seq: i64) -> Result<Vec<(i64, ScopeItem)>> {
        self.all_rows(
            "SELECT seq, id, type, checksum FROM export_scope WHERE org_id = $1 AND seq >= $2
             ORDER BY seq, id COLLATE \"C\"",
            &[&org, &from_seq],
        )?
        .iter()
        .map(|r| Ok((get(r, 0)?, scope_item(r, 1)?)))
        .collect()
    }

    fn record_sent_pairs(&self, org: &str, seq: i64, pairs: &[(&str, &str)]) -> Result<()> {
        let deliveries: Vec<&str> = pairs.iter().map(|p| p.0).collect();
        let takers: Vec<&str> = pairs.iter().map(|p| p.1).collect();
        self.exec(
            "INSERT INTO sent_pairs (org_id, delivery_id, test_taker, first_seq)
             SELECT $1, p.delivery_id, p.test_taker, $2
             FROM UNNEST($3::TEXT[], $4::TEXT[]) AS p (delivery_id, test_taker)
             ON CONFLICT (org_id, delivery_id, test_taker) DO NOTHING",
            &[&org, &seq, &deliveries, &takers],
        )?;
        Ok(())
    }

    fn pair_sent(&self, org: &str, delivery: &str, taker: &str) -> Result<bool> {
        self.exists(
            "SELECT 1 FROM sent_pairs WHERE org_id = $1 AND delivery_id = $2 AND test_taker = $3",
            &[&org, &delivery, &taker],
        )
    }

    fn delivery_sent(&self, org: &str, delivery: &str) -> Result<bool> {
        self.exists(
            "SELECT 1 FROM sent_pairs WHERE org_id = $1 AND delivery_id = $2 LIMIT 1",
            &[&org, &delivery],
        )
    }

    fn forget_scopes_before(&self, org: &str, seq: i64) -> Result<()> {
        self.exec(
            "DELETE FROM export_scope WHERE org_id = $1 AND seq < $2",
            &[&org, &seq],
        )?;
        Ok(())
    }
}
