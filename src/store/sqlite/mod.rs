//! The site store: SQLite, behind a narrow interface.
//!
//! Only this module and its submodules speak SQL: the rest of courier calls domain-level
//! methods on [`SqliteTx`] (`put_entity`, `results_to_send`, `put_central_result`, `owe_ack`, ...),
//! grouped by concern in `centers`, `entities` and `results`. A PostgreSQL store for very
//! large centrals implements the same methods; nothing outside `store/` changes. Migrations are an append-only list
//! applied by `PRAGMA user_version`; a store newer than this program is refused untouched.
//! Every change an import makes happens in one [`SqliteTx`] (`BEGIN IMMEDIATE`), so a power cut
//! leaves all of a bundle or none of it, and a second writer gets "store busy".

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::error::{Error, Result, StoreFailure};
use crate::progress::{self, Reporter};
use crate::store::prelude::*;
use crate::store::{AppliedBundle, HistoryHead, OtherSender, Peer, PinnedPeer, Transaction};

mod centers;
mod entities;
mod history;
mod keys;
mod results;

pub(crate) use centers::CENTER_COLUMNS;
pub use centers::{Center, CenterFigures, LastBundle, ReceivedBundle};
pub use entities::{ScopeItem, StoredEntity};
pub use keys::{OwnKey, PeerKey, Retired};
pub use results::{
    CentralResult, HeldLogBatch, HeldResult, ItemKind, OwedAck, Quarantined, SentItem,
    StoredVariable, SyncStatus, Unsent,
};

/// The fixed words of the format and the store are stored as their text.
macro_rules! sql_text {
    ($($t:ty),+) => {$(
        impl rusqlite::types::ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }
        impl rusqlite::types::FromSql for $t {
            fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                let text = v.as_str()?;
                Self::parse(text).ok_or_else(|| {
                    rusqlite::types::FromSqlError::Other(format!("unknown value {text:?}").into())
                })
            }
        }
    )+};
}
sql_text!(
    SyncStatus,
    crate::wire::AckStatus,
    crate::wire::LogAckStatus
);

/// Append-only. Never edit or remove an entry; add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
    -- Site-wide counters and small facts (next upward sequence number, ...).
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    -- Certificates pinned at enrollment: central's at a centre, each centre's at central.
    CREATE TABLE peers (
        fingerprint TEXT PRIMARY KEY, role TEXT NOT NULL, org_id TEXT,
        cert TEXT NOT NULL, pinned_at TEXT NOT NULL);
    -- Central: test centres registered with `center add`, their enrollment and sync state.
    CREATE TABLE centers (
        org_id TEXT PRIMARY KEY, label TEXT NOT NULL,
        token_sha256 TEXT NOT NULL, fingerprint TEXT, enrolled_at TEXT, created_at TEXT NOT NULL,
        next_seq INTEGER NOT NULL DEFAULT 1,
        acked_seq INTEGER,
        ack_upseq INTEGER NOT NULL DEFAULT 0,
        packages_held TEXT NOT NULL DEFAULT '[]');
    -- Entities in TAO's wire shape (both roles). `properties` holds what may be read here;
    -- `sealed` the personal properties sealed to the centre's key (centre only).
    CREATE TABLE entities (
        id TEXT PRIMARY KEY, type TEXT NOT NULL, checksum TEXT NOT NULL,
        properties TEXT NOT NULL, sealed BLOB, sealed_names TEXT, package TEXT,
        updated_at TEXT NOT NULL);
    CREATE INDEX entities_by_type ON entities(type);
    -- Test packages held, content-addressed: the file is packages/<sha256>.zip.
    CREATE TABLE packages (
        sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, name TEXT NOT NULL, added_at TEXT NOT NULL);
    -- Central: the scope list (id, checksum) of each data bundle written to a centre.
    CREATE TABLE export_scope (
        org_id TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, type TEXT NOT NULL,
        checksum TEXT NOT NULL, PRIMARY KEY (org_id, seq, id)) WITHOUT ROWID;
    -- Every bundle written or applied: replay and rollback detection.
    CREATE TABLE bundles (
        bundle_id TEXT PRIMARY KEY, direction TEXT NOT NULL, kind TEXT NOT NULL,
        sender TEXT NOT NULL, recipient TEXT NOT NULL, org_id TEXT, seq INTEGER NOT NULL,
        set_id TEXT, set_index INTEGER, set_count INTEGER, file_name TEXT, at TEXT NOT NULL);
    -- The sync history, one row per sync, hash-chained (hash = sha256(prev_hash, row)).
    CREATE TABLE history (
        n INTEGER PRIMARY KEY, at TEXT NOT NULL, action TEXT NOT NULL, org_id TEXT,
        bundle_id TEXT, kind TEXT, seq INTEGER, status TEXT NOT NULL, counts TEXT NOT NULL,
        report TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
    -- Per entity, what each sync did to it (created, updated, touched, deleted).
    CREATE TABLE entity_history (
        history_n INTEGER NOT NULL, entity_id TEXT NOT NULL, type TEXT NOT NULL,
        action TEXT NOT NULL);
    CREATE INDEX entity_history_by_sync ON entity_history(history_n);
    -- Centre: results, sealed to central's key as soon as they are stored.
    CREATE TABLE results (
        execution_id TEXT PRIMARY KEY, delivery_id TEXT NOT NULL, test_taker TEXT NOT NULL,
        state TEXT NOT NULL, revision INTEGER NOT NULL, content_sha256 TEXT NOT NULL,
        size INTEGER NOT NULL, sealed BLOB, sync_status TEXT NOT NULL, reason TEXT,
        added_at TEXT NOT NULL, updated_at TEXT NOT NULL);
    -- Centre: delivery logs, sealed to central per (ingested file, execution) batch.
    CREATE TABLE log_batches (
        batch_id TEXT PRIMARY KEY, execution_id TEXT NOT NULL, count INTEGER NOT NULL,
        size INTEGER NOT NULL, sealed BLOB, sync_status TEXT NOT NULL, added_at TEXT NOT NULL);
    -- Centre: every log id ingested, so a log added twice is stored once.
    CREATE TABLE log_ids (log_id TEXT PRIMARY KEY, batch_id TEXT NOT NULL) WITHOUT ROWID;
    -- Central: results received, keyed by central's execution id, mapped from the centre's.
    -- `rid` orders results as they arrive, so their variables are appended, not scattered.
    CREATE TABLE central_results (
        rid INTEGER PRIMARY KEY, central_id TEXT NOT NULL UNIQUE, org_id TEXT NOT NULL, execution_id TEXT NOT NULL,
        delivery_id TEXT NOT NULL, test_taker TEXT NOT NULL, state TEXT NOT NULL,
        details TEXT NOT NULL, revision INTEGER NOT NULL, content_sha256 TEXT NOT NULL,
        bundle_id TEXT NOT NULL, stored_at TEXT NOT NULL, UNIQUE (org_id, execution_id));
    -- Central: result variables, in their original order.
    CREATE TABLE variables (
        rid INTEGER NOT NULL, n INTEGER NOT NULL, call_id_test TEXT, call_id_item TEXT,
        test TEXT, item TEXT, data TEXT NOT NULL, PRIMARY KEY (rid, n)) WITHOUT ROWID;
    -- Central: results kept aside (same id, different content, not a re-sync).
    CREATE TABLE quarantine (
        n INTEGER PRIMARY KEY, org_id TEXT NOT NULL, execution_id TEXT NOT NULL,
        revision INTEGER NOT NULL, content_sha256 TEXT NOT NULL, reason TEXT NOT NULL,
        bundle_id TEXT NOT NULL, content TEXT NOT NULL, at TEXT NOT NULL,
        UNIQUE (org_id, execution_id, content_sha256));
    -- Central: delivery logs, stored against central's execution id.
    CREATE TABLE central_logs (
        org_id TEXT NOT NULL, log_id TEXT NOT NULL, central_id TEXT NOT NULL,
        execution_id TEXT NOT NULL, event_id TEXT NOT NULL, data TEXT NOT NULL,
        created_at TEXT NOT NULL, created_by TEXT NOT NULL, PRIMARY KEY (org_id, log_id));
    -- Central: log batches that arrived before their result; applied when it arrives.
    CREATE TABLE waiting_logs (
        org_id TEXT NOT NULL, batch_id TEXT NOT NULL, execution_id TEXT NOT NULL,
        content TEXT NOT NULL, PRIMARY KEY (org_id, batch_id));
    -- Central: acknowledgements owed to each centre, resent until the centre confirms
    -- applying a data bundle with sequence >= first_seq.
    CREATE TABLE acks_out (
        org_id TEXT NOT NULL, item TEXT NOT NULL, ref TEXT NOT NULL, revision INTEGER,
        content_sha256 TEXT, status TEXT NOT NULL, reason TEXT, first_seq INTEGER,
        PRIMARY KEY (org_id, item, ref));
    "#,
    // 2: the scope of results (issue 7). Central remembers every (delivery, test taker) pair it
    // ever sent to a centre as eligible, durably (export_scope rows are forgotten once the
    // centre acknowledges); log batches kept aside; the finish time of a centre's result.
    r#"
    -- Central: (org, delivery, test taker) pairs ever sent to a centre in a data bundle: an
    -- eligibility naming the delivery and the test taker, sent with both. A result is in
    -- the sender's scope only when its pair is here. `first_seq` is the first bundle that sent it.
    CREATE TABLE sent_pairs (
        org_id TEXT NOT NULL, delivery_id TEXT NOT NULL, test_taker TEXT NOT NULL,
        first_seq INTEGER NOT NULL, PRIMARY KEY (org_id, delivery_id, test_taker)) WITHOUT ROWID;
    -- Backfill from the scope lists still remembered (at least the one the centre confirmed
    -- last, and any sent after it), with the eligibility as central holds it, when central
    -- still holds it at the checksum that was sent. Pairs of bundles whose scope list was
    -- already forgotten cannot be recovered.
    INSERT OR IGNORE INTO sent_pairs (org_id, delivery_id, test_taker, first_seq)
    SELECT s.org_id, d.value, t.value, MIN(s.seq)
    FROM export_scope s
    JOIN entities e ON e.id = s.id AND e.type = 'eligibility' AND e.checksum = s.checksum,
         json_each(e.properties, '$."http://www.tao.lu/Ontologies/TAOProctor.rdf#EligibileDelivery"') d,
         json_each(e.properties, '$."http://www.tao.lu/Ontologies/TAOProctor.rdf#EligibileTestTaker"') t
    WHERE s.type = 'eligibility'
      AND EXISTS (SELECT 1 FROM export_scope x WHERE x.org_id = s.org_id AND x.seq = s.seq
                  AND x.id = d.value AND x.type = 'delivery')
      AND EXISTS (SELECT 1 FROM export_scope x WHERE x.org_id = s.org_id AND x.seq = s.seq
                  AND x.id = t.value AND x.type = 'test-taker')
    GROUP BY s.org_id, d.value, t.value;
    -- Central: log batches kept aside (their result is out of the sender's scope or was
    -- kept aside, or their waiting content could not be read back), with why.
    CREATE TABLE quarantined_logs (
        org_id TEXT NOT NULL, batch_id TEXT NOT NULL, execution_id TEXT NOT NULL,
        reason TEXT NOT NULL, bundle_id TEXT, content TEXT NOT NULL, at TEXT NOT NULL,
        PRIMARY KEY (org_id, batch_id));
    -- Centre: the result's finishtime (TAO microtime) as ingested; NULL when unfinished or
    -- ingested before this column existed. An older copy never replaces a newer one.
    ALTER TABLE results ADD COLUMN finishtime TEXT;
    "#,
    // 3: bundle ids are unique per sender only. A bundle id travels in the clear header, so
    // an enrolled centre can copy another's into a bundle of its own; keyed by id alone, the
    // copy made the real file look "already applied" (issue 7).
    r#"
    -- Every bundle written or applied: replay and rollback detection, per (sender, id).
    CREATE TABLE bundles_per_sender (
        bundle_id TEXT NOT NULL, direction TEXT NOT NULL, kind TEXT NOT NULL,
        sender TEXT NOT NULL, recipient TEXT NOT NULL, org_id TEXT, seq INTEGER NOT NULL,
        set_id TEXT, set_index INTEGER, set_count INTEGER, file_name TEXT, at TEXT NOT NULL,
        PRIMARY KEY (sender, bundle_id));
    -- rowid kept: "applied last" is read in rowid order.
    INSERT INTO bundles_per_sender (rowid, bundle_id, direction, kind, sender, recipient, org_id,
        seq, set_id, set_index, set_count, file_name, at)
        SELECT rowid, bundle_id, direction, kind, sender, recipient, org_id, seq, set_id,
            set_index, set_count, file_name, at FROM bundles;
    DROP TABLE bundles;
    ALTER TABLE bundles_per_sender RENAME TO bundles;
    -- The same id from another sender is flagged as suspicious.
    CREATE INDEX bundles_by_id ON bundles(bundle_id);
    "#,
    // 4: one key, one centre: central may pin a centre's key up front (`center add
    // --expect-fingerprint`), and then only a reply with that key enrolls it (issue 7).
    r#"
    ALTER TABLE centers ADD COLUMN expected_fingerprint TEXT;
    "#,
    // 5: central may revoke a centre (`center revoke ORG --reason TEXT`, issue 11): from then
    // on its bundles are refused with the reason, and nothing is exported to it.
    r#"
    ALTER TABLE centers ADD COLUMN revoked_at TEXT;
    ALTER TABLE centers ADD COLUMN revoked_reason TEXT;
    "#,
    // 6: keys rotate (`keys rotate`, `center reenroll`, issue 11). A pinned key may be retired:
    // replaced by another (a rollover) or revoked when its centre re-enrolled; bundles it signs
    // with a sequence from `retired_from_seq` on are refused.
    r#"
    ALTER TABLE peers ADD COLUMN replaced_by TEXT;
    ALTER TABLE peers ADD COLUMN retired_from_seq INTEGER;
    ALTER TABLE peers ADD COLUMN retired_at TEXT;
    ALTER TABLE peers ADD COLUMN retired_reason TEXT;
    -- Rollover statements this site owes a peer (an org id, or 'central'): carried in every
    -- bundle to it until it addresses a bundle to the new key (`acked_at`).
    CREATE TABLE rollovers_out (
        peer TEXT NOT NULL, new_fingerprint TEXT NOT NULL, from_seq INTEGER NOT NULL,
        statement TEXT NOT NULL, created_at TEXT NOT NULL, acked_at TEXT,
        PRIMARY KEY (peer, new_fingerprint));
    "#,
    // 7: each result and log batch is sent once (issue 12): the centre remembers the upward
    // file (its sequence) an item last went in, and when, so that it sends again only what
    // central is known to miss. Rows sent before this column existed have NULL: unknown.
    r#"
    ALTER TABLE results ADD COLUMN sent_seq INTEGER;
    ALTER TABLE results ADD COLUMN sent_at TEXT;
    ALTER TABLE log_batches ADD COLUMN sent_seq INTEGER;
    ALTER TABLE log_batches ADD COLUMN sent_at TEXT;
    "#,
    // 8: history archived and pruned (`history prune`, issue 12). The chain then starts
    // after the newest prune: its row's hash is the first kept row's prev_hash.
    r#"
    -- One row per prune: the last history row dropped (n), its chain hash, how many rows
    -- were dropped, and the SHA-256 of the manifest of the verified archive that holds them.
    CREATE TABLE history_prunes (
        n INTEGER PRIMARY KEY, hash TEXT NOT NULL, rows INTEGER NOT NULL,
        archive_manifest_sha256 TEXT NOT NULL, at TEXT NOT NULL);
    "#,
    // 9: key history (issue 11). The site's own keys, each with when it was made and, once
    // `keys rotate` replaced it, by which key and when; backfilled from the history rows of
    // rotations already done ("key OLD replaced by NEW; ..."). A site's first key has no row
    // until it is replaced (its creation is the config's `created`).
    r#"
    CREATE TABLE own_keys (
        fingerprint TEXT PRIMARY KEY, created_at TEXT, replaced_by TEXT, retired_at TEXT);
    INSERT OR IGNORE INTO own_keys (fingerprint, created_at)
        SELECT substr(report, 5, 40), NULL FROM history WHERE action = 'keys-rotate'
        AND substr(report, 45, 13) = ' replaced by ' ORDER BY n;
    INSERT OR IGNORE INTO own_keys (fingerprint, created_at)
        SELECT substr(report, 58, 40), at FROM history WHERE action = 'keys-rotate'
        AND substr(report, 45, 13) = ' replaced by ' ORDER BY n;
    UPDATE own_keys SET
        replaced_by = (SELECT substr(h.report, 58, 40) FROM history h
                       WHERE h.action = 'keys-rotate' AND substr(h.report, 5, 40) = own_keys.fingerprint),
        retired_at = (SELECT h.at FROM history h
                      WHERE h.action = 'keys-rotate' AND substr(h.report, 5, 40) = own_keys.fingerprint);
    "#,
    // 10: the size of each bundle written or applied (issue 12, the exam-day report): the
    // payload's length as its signed header states it (the file adds its header, signature
    // and trailer, a few KiB). Rows recorded before this column existed have NULL.
    r#"
    ALTER TABLE bundles ADD COLUMN payload_size INTEGER;
    "#,
];

/// Bundles applied before a centre enrolled again after revoking central's key (`keys
/// revoke-peer`) no longer count for its order, acknowledgements or rollback checks: the new
/// central numbers its own bundles. `meta.bundles_floor` holds the last rowid before it.
pub(crate) const SINCE_FLOOR: &str = "AND rowid > (SELECT COALESCE(MAX(CAST(value AS INTEGER)), 0) FROM meta WHERE key = 'bundles_floor')";

/// The newest schema version this program knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// An open store.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Open (creating when absent) and migrate.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        SqliteStore::open_reporting(path, progress::silent())
    }

    /// Open and migrate; a wait of more than a second for another command holding the
    /// store is told to `progress` once ([`Progress::notice`](crate::progress::Progress)).
    pub fn open_reporting(path: &Path, progress: Reporter) -> Result<SqliteStore> {
        let conn = Connection::open(path)?;
        // How long a second writer waits before "store busy" (COURIER_BUSY_TIMEOUT_MS).
        let wait = match std::env::var("COURIER_BUSY_TIMEOUT_MS") {
            Err(_) => 10_000,
            Ok(v) => v.trim().parse().map_err(|_| Error::Usage {
                what: format!("COURIER_BUSY_TIMEOUT_MS={v:?} is not a number of milliseconds"),
            })?,
        };
        WAITING.with_borrow_mut(|w| {
            *w = Some(Waiting {
                path: path.to_path_buf(),
                timeout: Duration::from_millis(wait),
                since: Instant::now(),
                told: false,
                progress,
            })
        });
        conn.busy_handler(Some(wait_while_busy))?;
        // A rollback journal, synced fully at commit: an import is one large transaction that
        // mostly appends, which a rollback journal writes once, where WAL writes it twice (log,
        // then checkpoint); measured 17% faster on 800k variables. Power cuts at centres are
        // expected, hence FULL. Readers wait for an import like a second writer does.
        conn.pragma_update(None, "journal_mode", "DELETE")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // 32 MiB of page cache: large imports touch big indexes; still well inside the
        // 150 MiB an exam-day import may use.
        conn.pragma_update(None, "cache_size", -32_000)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = SqliteStore {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<()> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(Error::StoreTooNew {
                path: self.path.clone(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Exclusive)
            .map_err(|e| busy(e, &self.path))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Start the one write transaction of a command. Fails with "store busy" when another
    /// courier holds the store for longer than the busy timeout.
    pub fn begin(&mut self) -> Result<SqliteTx<'_>> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| busy(e, &path))?;
        crate::failpoint::hit("store.begin")?;
        Ok(SqliteTx { tx, path })
    }

    /// Read-only access for queries outside a write.
    pub fn read(&mut self) -> Result<SqliteTx<'_>> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Deferred)?;
        Ok(SqliteTx { tx, path })
    }
}

/// How long a command waits for a busy store before it says so.
const NOTICE_AFTER: Duration = Duration::from_secs(1);

/// What the busy handler needs: rusqlite takes a plain `fn`, which cannot capture, so the
/// store opened last on this thread leaves it here (a command uses one store at a time, and
/// SQLite calls the handler on the thread that is waiting).
struct Waiting {
    path: PathBuf,
    timeout: Duration,
    /// When the current wait began (the handler's first call of a wait has count 0).
    since: Instant,
    /// The notice is given once per store opened, however many waits follow.
    told: bool,
    progress: Reporter,
}

thread_local! {
    static WAITING: RefCell<Option<Waiting>> = const { RefCell::new(None) };
}

/// SQLite's busy handler: sleep and retry until the busy timeout, saying after a second
/// that another courier command holds the store. `false` gives up ("store busy").
fn wait_while_busy(count: i32) -> bool {
    WAITING.with_borrow_mut(|w| {
        let Some(w) = w.as_mut() else {
            return false;
        };
        if count == 0 {
            w.since = Instant::now();
        }
        let waited = w.since.elapsed();
        if waited >= w.timeout {
            return false;
        }
        if waited >= NOTICE_AFTER && !w.told {
            w.told = true;
            w.progress.notice(&format!(
                "waiting for another courier command using {} (up to {} s in all)...",
                w.path.display(),
                w.timeout.as_secs_f64().ceil()
            ));
        }
        // Short sleeps first (most waits are brief), then 50 ms steps.
        let step = Duration::from_millis(if count < 10 { 5 } else { 50 });
        std::thread::sleep(step.min(w.timeout - waited));
        true
    })
}

fn busy(e: rusqlite::Error, path: &Path) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked) => {
            Error::StoreBusy {
                path: path.to_path_buf(),
            }
        }
        _ => Error::from(e),
    }
}

/// SQLite's errors become the backend-neutral [`Error::Store`], with their kind.
impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        use rusqlite::ErrorCode as Code;
        let kind = match e.sqlite_error_code() {
            Some(Code::DatabaseBusy | Code::DatabaseLocked) => StoreFailure::Busy,
            Some(Code::ConstraintViolation) => StoreFailure::Constraint,
            _ => match e {
                rusqlite::Error::FromSqlConversionFailure(..)
                | rusqlite::Error::InvalidColumnType(..)
                | rusqlite::Error::IntegralValueOutOfRange(..) => StoreFailure::Shape,
                _ => StoreFailure::Other,
            },
        };
        Error::Store {
            kind,
            message: e.to_string(),
        }
    }
}

/// A write (or read) transaction. Dropped without [`SqliteTx::commit`], it changes nothing.
pub struct SqliteTx<'a> {
    pub(crate) tx: rusqlite::Transaction<'a>,
    path: PathBuf,
}

/// One row of the sync history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryEntry {
    pub n: i64,
    pub at: String,
    pub action: String,
    pub org_id: Option<String>,
    pub bundle_id: Option<String>,
    pub kind: Option<String>,
    pub seq: Option<i64>,
    pub status: String,
    pub counts: serde_json::Value,
    pub report: String,
    pub hash: String,
}

/// What one sync did to one entity (`history --entity`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct EntityAction {
    /// The history row of the sync.
    pub sync: i64,
    pub at: String,
    pub bundle_id: Option<String>,
    pub seq: Option<i64>,
    #[serde(rename = "type")]
    pub kind: String,
    /// `created`, `updated`, `touched` or `deleted`.
    pub action: String,
}

/// A bundle as the `bundles` table records it: the store takes its own record, never a
/// bundle header (the store and the bundle format do not know each other; `site` converts).
#[derive(Debug, Clone)]
pub struct BundleRecord<'a> {
    pub bundle_id: &'a str,
    pub kind: &'a str,
    pub sender: &'a str,
    pub recipient: &'a str,
    pub org_id: &'a str,
    pub sequence: u64,
    pub set_id: &'a str,
    pub set_index: u64,
    pub set_count: u64,
    /// Bytes of the encrypted payload (the header's `payload.length`).
    pub payload_size: u64,
}

/// What a new history row says.
#[derive(Debug, Clone, Default)]
pub struct NewHistory<'s> {
    pub action: &'s str,
    pub org_id: Option<&'s str>,
    pub bundle_id: Option<&'s str>,
    pub kind: Option<&'s str>,
    pub seq: Option<i64>,
    pub status: &'s str,
    pub counts: serde_json::Value,
    pub report: String,
}

impl Transaction for SqliteTx<'_> {
    fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().map_err(|e| busy(e, &self.path))
    }

    fn rollback(self: Box<Self>) -> Result<()> {
        Ok(self.tx.rollback()?)
    }
}

impl Ledger for SqliteTx<'_> {
    fn meta_get(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .tx
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    fn meta_set(&self, key: &str, value: &str) -> Result<()> {
        self.tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    fn next_counter(&self, key: &str) -> Result<i64> {
        crate::store::chain::next_counter(self, key, &self.path)
    }

    // ---- peers ------------------------------------------------------------------------

    fn pin_peer(
        &self,
        fingerprint: &str,
        role: &str,
        org_id: Option<&str>,
        cert: &str,
    ) -> Result<()> {
        self.tx.execute(
            "INSERT INTO peers (fingerprint, role, org_id, cert, pinned_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (fingerprint) DO NOTHING",
            params![fingerprint, role, org_id, cert, crate::time::now_rfc3339()],
        )?;
        Ok(())
    }

    fn peer(&self, fingerprint: &str) -> Result<Option<Peer>> {
        Ok(self
            .tx
            .query_row(
                "SELECT role, org_id, cert FROM peers WHERE fingerprint = ?1",
                [fingerprint],
                |r| {
                    Ok(Peer {
                        role: r.get(0)?,
                        org_id: r.get(1)?,
                        cert: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    fn peer_by_role(&self, role: &str) -> Result<Option<PinnedPeer>> {
        Ok(self
            .tx
            .query_row(
                "SELECT fingerprint, cert FROM peers WHERE role = ?1 AND retired_from_seq IS NULL
                 ORDER BY pinned_at LIMIT 1",
                [role],
                |r| {
                    Ok(PinnedPeer {
                        fingerprint: r.get(0)?,
                        cert: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    // ---- bundles ----------------------------------------------------------------------

    fn bundle_seen(&self, sender: &str, bundle_id: &str) -> Result<bool> {
        Ok(self
            .tx
            .query_row(
                "SELECT 1 FROM bundles WHERE sender = ?1 AND bundle_id = ?2",
                [sender, bundle_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn bundle_id_other_senders(&self, sender: &str, bundle_id: &str) -> Result<Vec<OtherSender>> {
        let mut stmt = self.tx.prepare(
            "SELECT b.sender, p.org_id FROM bundles b LEFT JOIN peers p ON p.fingerprint = b.sender
             WHERE b.bundle_id = ?1 AND b.sender <> ?2 ORDER BY b.rowid",
        )?;
        let rows = stmt.query_map([bundle_id, sender], |r| {
            Ok(OtherSender {
                fingerprint: r.get(0)?,
                org_id: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn last_seq_in(&self, sender: &str, kind: &str) -> Result<Option<i64>> {
        Ok(self.tx.query_row(
            "SELECT MAX(seq) FROM bundles WHERE direction = 'in' AND sender = ?1 AND kind = ?2",
            params![sender, kind],
            |r| r.get(0),
        )?)
    }

    fn applied_bundles(&self, kind: &str, limit: i64) -> Result<Vec<AppliedBundle>> {
        let mut stmt = self.tx.prepare(
            &format!("SELECT bundle_id, seq FROM bundles WHERE direction = 'in' AND kind = ?1 {SINCE_FLOOR} ORDER BY seq DESC, at DESC LIMIT ?2"),
        )?;
        let rows = stmt.query_map(params![kind, limit], |r| {
            Ok(AppliedBundle {
                bundle_id: r.get(0)?,
                seq: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn last_applied_seq(&self, kind: &str) -> Result<Option<i64>> {
        Ok(self
            .tx
            .query_row(
                &format!("SELECT seq FROM bundles WHERE direction = 'in' AND kind = ?1 {SINCE_FLOOR} ORDER BY rowid DESC LIMIT 1"),
                [kind],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn set_parts_received(&self, set_id: &str) -> Result<Vec<u64>> {
        let mut st = self.tx.prepare(
            "SELECT set_index FROM bundles WHERE direction = 'in' AND set_id = ?1 ORDER BY set_index",
        )?;
        let rows = st.query_map(params![set_id], |r| r.get::<_, i64>(0))?;
        let mut parts = Vec::new();
        for r in rows {
            parts.push(r? as u64);
        }
        Ok(parts)
    }

    fn record_bundle(&self, direction: &str, r: &BundleRecord<'_>, file_name: &str) -> Result<()> {
        self.tx.execute(
            "INSERT OR IGNORE INTO bundles (bundle_id, direction, kind, sender, recipient, org_id, seq,
                set_id, set_index, set_count, file_name, at, payload_size)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                r.bundle_id,
                direction,
                r.kind,
                r.sender,
                r.recipient,
                r.org_id,
                r.sequence as i64,
                r.set_id,
                r.set_index as i64,
                r.set_count as i64,
                file_name,
                crate::time::now_rfc3339(),
                r.payload_size as i64
            ],
        )?;
        Ok(())
    }

    // ---- history ----------------------------------------------------------------------

    fn add_history(&self, h: NewHistory<'_>) -> Result<i64> {
        let row = crate::store::chain::next_row(self, h)?;
        self.tx.execute(
            "INSERT INTO history (n, at, action, org_id, bundle_id, kind, seq, status, counts, report, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![row.n, row.at, row.action, row.org_id, row.bundle_id, row.kind, row.seq, row.status, row.counts, row.report, row.prev_hash, row.hash],
        )?;
        Ok(row.n)
    }

    fn history(&self, org: Option<&str>, limit: i64) -> Result<Vec<HistoryEntry>> {
        let mut stmt = self.tx.prepare(
            "SELECT n, at, action, org_id, bundle_id, kind, seq, status, counts, report, hash FROM history
             WHERE (?1 IS NULL OR org_id = ?1) ORDER BY n DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![org, limit], |r| {
            let counts: String = r.get(8)?;
            Ok(HistoryEntry {
                n: r.get(0)?,
                at: r.get(1)?,
                action: r.get(2)?,
                org_id: r.get(3)?,
                bundle_id: r.get(4)?,
                kind: r.get(5)?,
                seq: r.get(6)?,
                status: r.get(7)?,
                counts: serde_json::from_str(&counts).unwrap_or(serde_json::Value::Null),
                report: r.get(9)?,
                hash: r.get(10)?,
            })
        })?;
        let mut out: Vec<HistoryEntry> = rows.collect::<rusqlite::Result<_>>()?;
        out.reverse();
        Ok(out)
    }

    fn history_head(&self) -> Result<Option<HistoryHead>> {
        Ok(self
            .tx
            .query_row(
                "SELECT n, hash FROM history ORDER BY n DESC LIMIT 1",
                [],
                |r| {
                    Ok(HistoryHead {
                        n: r.get(0)?,
                        hash: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    fn history_hash(&self, n: i64) -> Result<Option<String>> {
        let stored = self
            .tx
            .query_row("SELECT hash FROM history WHERE n = ?1", [n], |r| r.get(0))
            .optional()?;
        crate::store::chain::hash_of(self, n, stored)
    }

    fn verify_history(&self) -> Result<Option<i64>> {
        crate::store::chain::verify(self)
    }

    fn entity_actions(&self, entity_id: &str) -> Result<Vec<EntityAction>> {
        let mut stmt = self.tx.prepare(
            "SELECT h.n, h.at, h.bundle_id, h.seq, e.type, e.action FROM entity_history e
             JOIN history h ON h.n = e.history_n WHERE e.entity_id = ?1 ORDER BY h.n",
        )?;
        let rows = stmt.query_map([entity_id], |r| {
            Ok(EntityAction {
                sync: r.get(0)?,
                at: r.get(1)?,
                bundle_id: r.get(2)?,
                seq: r.get(3)?,
                kind: r.get(4)?,
                action: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn entity_history(
        &self,
        history_n: i64,
        entity_id: &str,
        kind: &str,
        action: &str,
    ) -> Result<()> {
        self.tx.execute(
            "INSERT INTO entity_history (history_n, entity_id, type, action) VALUES (?1, ?2, ?3, ?4)",
            params![history_n, entity_id, kind, action],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store written by the first schema keeps its bundles, in order, once ids are keyed
    /// per sender; afterwards two senders may hold the same id.
    #[test]
    fn an_old_store_keeps_its_bundles_when_ids_become_per_sender() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            for (id, sender, seq) in [("b1", "A", 2), ("b2", "B", 1)] {
                conn.execute(
                    "INSERT INTO bundles (bundle_id, direction, kind, sender, recipient, seq, at)
                     VALUES (?1, 'in', 'data', ?2, 'C', ?3, 'then')",
                    params![id, sender, seq],
                )
                .unwrap();
            }
        }
        let mut store = SqliteStore::open(&path).unwrap();
        let tx = store.begin().unwrap();
        assert!(tx.bundle_seen("A", "b1").unwrap());
        assert!(!tx.bundle_seen("B", "b1").unwrap());
        assert_eq!(tx.last_applied_seq("data").unwrap(), Some(1));
        tx.tx
            .execute(
                "INSERT INTO bundles (bundle_id, direction, kind, sender, recipient, seq, at)
                 VALUES ('b1', 'in', 'data', 'B', 'C', 3, 'now')",
                [],
            )
            .unwrap();
        assert!(tx.bundle_seen("B", "b1").unwrap());
        let others = tx.bundle_id_other_senders("B", "b1").unwrap();
        assert_eq!(
            others,
            vec![OtherSender {
                fingerprint: "A".to_string(),
                org_id: None
            }]
        );
    }
}
