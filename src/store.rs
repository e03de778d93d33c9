//! The site store, behind an interface named for the domain.
//!
//! Only this module and its submodules speak SQL: the rest of courier calls domain-level
//! methods of the traits below on a transaction ([`Tx`]): [`Ledger`] (site facts, peers,
//! bundles, history), [`HistoryArchive`], [`Keyring`], [`CenterRegistry`] and
//! [`CentralResults`] (central), [`HeldResults`] (a centre), [`EntityStore`] (both). Bring
//! them into scope with `use crate::store::prelude::*`. Today's backend is SQLite
//! ([`sqlite`], one file per site); a PostgreSQL backend for very large centrals implements
//! the same traits (docs/DESIGN.md, "The store"). Errors are backend-neutral
//! ([`Error::Store`](crate::error::Error::Store) with a [`StoreFailure`](crate::error::StoreFailure) kind).

use std::io::Read;
use std::ops::Deref;
use std::path::Path;

use serde_json::Value;

use crate::error::Result;
use crate::wire::ReceivedFiles;

mod chain;
#[cfg(feature = "postgres")]
pub mod copy;
#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;

pub use chain::{ArchivedAction, HistoryRow, HistoryStart, NO_HASH};
#[cfg(feature = "postgres")]
pub use postgres::{password_for, root_cert_in};
pub use sqlite::*;

/// The traits of a store transaction, for `use crate::store::prelude::*`.
pub mod prelude {
    pub use super::{
        CenterRegistry, CentralResults, EntityStore, HeldResults, HistoryArchive, Keyring, Ledger,
    };
}

/// A transaction of one backend: every domain trait, and its end. Commands never name a
/// backend: they hold a [`Tx`], which derefs to this.
pub trait Transaction:
    Ledger + HistoryArchive + Keyring + CenterRegistry + EntityStore + HeldResults + CentralResults
{
    /// Make every change durable, or fail and change nothing.
    fn commit(self: Box<Self>) -> Result<()>;

    /// Drop every change.
    fn rollback(self: Box<Self>) -> Result<()>;
}

/// The one transaction of a command, whichever backend holds the store. Dropped without
/// [`Tx::commit`], it changes nothing.
pub struct Tx<'a> {
    inner: Box<dyn Transaction + 'a>,
}

impl<'a> Tx<'a> {
    /// Wrap a backend's transaction.
    fn new(inner: impl Transaction + 'a) -> Tx<'a> {
        Tx {
            inner: Box::new(inner),
        }
    }

    pub fn commit(self) -> Result<()> {
        crate::failpoint::hit("store.commit")?;
        self.inner.commit()
    }

    /// Commit, or for a dry run roll back everything this transaction did.
    pub fn finish(self, dry_run: bool) -> Result<()> {
        if dry_run {
            self.inner.rollback()
        } else {
            self.commit()
        }
    }
}

impl<'a> Deref for Tx<'a> {
    type Target = dyn Transaction + 'a;

    fn deref(&self) -> &Self::Target {
        &*self.inner
    }
}

/// A site's store: one SQLite file ([`SqliteStore`]), or for a large central a PostgreSQL
/// database (feature `postgres`).
pub struct Store {
    backend: Backend,
}

enum Backend {
    Sqlite(SqliteStore),
    #[cfg(feature = "postgres")]
    Postgres(postgres::PgStore),
}

impl Store {
    /// Open the SQLite store at `path` (creating it when absent) and migrate.
    pub fn open(path: &Path) -> Result<Store> {
        Store::open_reporting(path, crate::progress::silent())
    }

    /// Open and migrate; a wait of more than a second for another command holding the
    /// store is told to `progress` once.
    pub fn open_reporting(path: &Path, progress: crate::progress::Reporter) -> Result<Store> {
        Ok(Store {
            backend: Backend::Sqlite(SqliteStore::open_reporting(path, progress)?),
        })
    }

    /// Connect to central's PostgreSQL database at `url` (no password inside) and migrate.
    #[cfg(feature = "postgres")]
    pub fn connect(url: &str, password: Option<&str>) -> Result<Store> {
        Ok(Store {
            backend: Backend::Postgres(postgres::PgStore::connect(url, password)?),
        })
    }

    /// Connect to central's PostgreSQL database at `url`, its password read as
    /// [`store_password`] finds it. Without the `postgres` feature, a usage error.
    pub fn connect_with_password_file(url: &str, password_file: Option<&Path>) -> Result<Store> {
        #[cfg(feature = "postgres")]
        {
            let password = password_for(url, password_file)?;
            Store::connect(url, password.as_deref())
        }
        #[cfg(not(feature = "postgres"))]
        {
            let _ = password_file;
            Err(crate::error::Error::Usage {
                what: format!("the store {url} is on PostgreSQL, but this courier was built without the 'postgres' feature"),
            })
        }
    }

    /// Start the one write transaction of a command. Fails with "store busy" when another
    /// courier holds the store for longer than the busy timeout.
    pub fn begin(&mut self) -> Result<Tx<'_>> {
        match &mut self.backend {
            Backend::Sqlite(s) => Ok(Tx::new(s.begin()?)),
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => Ok(Tx::new(p.begin()?)),
        }
    }

    /// Read-only access for queries outside a write.
    pub fn read(&mut self) -> Result<Tx<'_>> {
        match &mut self.backend {
            Backend::Sqlite(s) => Ok(Tx::new(s.read()?)),
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => Ok(Tx::new(p.read()?)),
        }
    }
}

/// Check a PostgreSQL store's address for courier.json: `postgres://USER@HOST[:PORT]/DB`
/// (or `postgresql://`; `?sslmode=...&sslrootcert=FILE` for TLS), with no password in it: the config is copied from host to host, a
/// password belongs in a file (`--store-password-file`), `PGPASSWORD` or `.pgpass`.
pub fn check_store_url(url: &str) -> Result<()> {
    let usage = |what: String| crate::error::Error::Usage { what };
    let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    else {
        return Err(usage(format!(
            "--store {url:?} is not a PostgreSQL URL: give postgres://USER@HOST[:PORT]/DB"
        )));
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let user = authority.rsplit_once('@').map(|(u, _)| u);
    let query = rest.split_once('?').map(|(_, q)| q).unwrap_or("");
    if user.is_some_and(|u| u.contains(':'))
        || query.split('&').any(|kv| kv.starts_with("password="))
    {
        return Err(usage(
            "--store holds a password: courier.json never does; give postgres://USER@HOST[:PORT]/DB and the password with --store-password-file FILE, COURIER_STORE_PASSWORD_FILE, PGPASSWORD or ~/.pgpass".into(),
        ));
    }
    if !rest.contains('/') || rest.ends_with('/') {
        return Err(usage(format!(
            "--store {url:?} names no database: give postgres://USER@HOST[:PORT]/DB"
        )));
    }
    // The rest (`sslmode`, `sslrootcert`, the `postgres` crate's options) before anything
    // is created.
    #[cfg(feature = "postgres")]
    postgres::check_address(url)?;
    Ok(())
}

/// [`CenterRegistry::refuse_if_revoked`], once the centre was read: refuse the bundle at
/// `path` when central revoked centre `org`.
pub(crate) fn refuse_revoked(center: Option<Center>, path: &Path, org: &str) -> Result<()> {
    match center {
        Some(Center {
            revoked_at: Some(at),
            revoked_reason,
            ..
        }) => Err(crate::error::Error::CenterRevoked {
            path: path.to_path_buf(),
            org: org.to_string(),
            at,
            reason: revoked_reason.unwrap_or_default(),
        }),
        _ => Ok(()),
    }
}

/// A pinned peer ([`Ledger::peer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// `central` or `center`.
    pub role: String,
    /// The centre's org id; none for central.
    pub org_id: Option<String>,
    /// The armored certificate.
    pub cert: String,
}

/// The current pinned key of a role ([`Ledger::peer_by_role`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedPeer {
    pub fingerprint: String,
    /// The armored certificate.
    pub cert: String,
}

/// Another sender of a bundle id ([`Ledger::bundle_id_other_senders`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherSender {
    pub fingerprint: String,
    /// The org id of the pinned centre; none for central or this site.
    pub org_id: Option<String>,
}

/// A bundle applied here ([`Ledger::applied_bundles`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedBundle {
    pub bundle_id: String,
    pub seq: i64,
}

/// The newest history row ([`Ledger::history_head`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryHead {
    pub n: i64,
    pub hash: String,
}

/// A package's content streamed from the store ([`EntityStore::package_content`]).
pub struct PackageContent<'a> {
    /// The size recorded when it was stored.
    pub size: u64,
    pub reader: Box<dyn Read + 'a>,
}

/// Site-wide facts, pinned peers, every bundle written or applied, and the hash-chained
/// sync history (both roles).
pub trait Ledger {
    fn meta_get(&self, key: &str) -> Result<Option<String>>;

    fn meta_set(&self, key: &str, value: &str) -> Result<()>;

    /// Take the next value of a counter kept in `meta` (starting at 1). A counter that is
    /// present but unreadable is an error: restarting it at 1 would reuse sequence numbers.
    fn next_counter(&self, key: &str) -> Result<i64>;

    // ---- peers ------------------------------------------------------------------------
    fn pin_peer(
        &self,
        fingerprint: &str,
        role: &str,
        org_id: Option<&str>,
        cert: &str,
    ) -> Result<()>;

    /// A pinned peer's (role, org id, armored certificate).
    fn peer(&self, fingerprint: &str) -> Result<Option<Peer>>;

    /// The current pinned peer of a role (a centre has exactly one: central); keys replaced
    /// by a rollover or revoked are left out.
    fn peer_by_role(&self, role: &str) -> Result<Option<PinnedPeer>>;

    // ---- bundles ----------------------------------------------------------------------
    /// Whether this sender's bundle `bundle_id` was applied (or written) here already.
    fn bundle_seen(&self, sender: &str, bundle_id: &str) -> Result<bool>;

    /// The other senders a bundle with this id came from (or was written by): (fingerprint,
    /// org id of the pinned centre, none for central or this site). Ids are random, so any answer means someone copied one.
    fn bundle_id_other_senders(&self, sender: &str, bundle_id: &str) -> Result<Vec<OtherSender>>;

    /// Highest sequence applied from `sender` for bundles of `kind`.
    fn last_seq_in(&self, sender: &str, kind: &str) -> Result<Option<i64>>;

    /// The most recent bundles of `kind` applied here, newest first: (bundle id, sequence).
    fn applied_bundles(&self, kind: &str, limit: i64) -> Result<Vec<AppliedBundle>>;

    /// Sequence of the bundle of `kind` applied last in time (a recorded rollback counts).
    fn last_applied_seq(&self, kind: &str) -> Result<Option<i64>>;

    /// The parts of set `set_id` applied here (by part index).
    fn set_parts_received(&self, set_id: &str) -> Result<Vec<u64>>;

    fn record_bundle(&self, direction: &str, r: &BundleRecord<'_>, file_name: &str) -> Result<()>;

    // ---- history ----------------------------------------------------------------------
    /// Append a row to the hash-chained history; returns its number. The first row after
    /// a prune that dropped every row continues from the prune point.
    fn add_history(&self, h: NewHistory<'_>) -> Result<i64>;

    fn history(&self, org: Option<&str>, limit: i64) -> Result<Vec<HistoryEntry>>;

    /// The newest history row: (number, hash), or `None` for an empty history.
    fn history_head(&self) -> Result<Option<HistoryHead>>;

    /// The stored hash of history row `n`, if the row exists (or is the prune point the
    /// chain starts after).
    fn history_hash(&self, n: i64) -> Result<Option<String>>;

    /// Recompute the hash chain from its start (the newest prune point, else the
    /// beginning); returns the number of the first broken row, if any.
    fn verify_history(&self) -> Result<Option<i64>>;

    /// What each sync did to one entity, oldest first.
    fn entity_actions(&self, entity_id: &str) -> Result<Vec<EntityAction>>;

    fn entity_history(
        &self,
        history_n: i64,
        entity_id: &str,
        kind: &str,
        action: &str,
    ) -> Result<()>;
}

/// The history's prune points and archive reads (`history archive`, `history prune`).
pub trait HistoryArchive {
    /// Where the chain starts (see [`HistoryStart`]).
    fn history_start(&self) -> Result<HistoryStart>;

    /// Call `f` with every history row up to row `through` (all rows: `None`), oldest
    /// first, one at a time; `f` returns `false` to stop.
    fn each_history_row(
        &self,
        through: Option<i64>,
        f: &mut dyn FnMut(HistoryRow) -> Result<bool>,
    ) -> Result<()>;

    /// Call `f` with what each sync up to row `through` did to each entity, in row order.
    fn each_archived_action(
        &self,
        through: i64,
        f: &mut dyn FnMut(ArchivedAction) -> Result<()>,
    ) -> Result<()>;

    /// The newest row of the longest run of rows, from the start, written before `date`
    /// (RFC 3339 text, compared as text): `None` when the first row is not. A prefix,
    /// because only a prefix can be cut from a chain (clocks at centres go back and forth).
    fn history_prefix_before(&self, date: &str) -> Result<Option<i64>>;

    /// Drop the rows up to `through` (and what they did to entities) and make row
    /// `through` the chain's start; returns how many rows were dropped.
    fn prune_history(&self, through: i64, archive_manifest_sha256: &str) -> Result<i64>;
}

/// Keys: pinned peers retired or replaced, rollover statements owed, this site's own keys.
pub trait Keyring {
    /// Whether (and how) a pinned key was retired.
    fn peer_retired(&self, fingerprint: &str) -> Result<Option<Retired>>;

    /// Retire a pinned key from sequence `from_seq` on, replaced by `replaced_by` (or revoked).
    fn retire_peer(
        &self,
        fingerprint: &str,
        replaced_by: Option<&str>,
        from_seq: i64,
        reason: &str,
    ) -> Result<()>;

    /// Owe `peer` (an org id, or `central`) a rollover statement until it acknowledges it.
    fn owe_rollover(
        &self,
        peer: &str,
        new_fingerprint: &str,
        from_seq: i64,
        statement: &str,
    ) -> Result<()>;

    /// The rollover statements `peer` has not acknowledged, oldest first (JSON text).
    fn rollovers_owed(&self, peer: &str) -> Result<Vec<String>>;

    /// `peer` addressed a bundle to this site's key `fingerprint`: every rollover up to that
    /// key is acknowledged. Returns how many were.
    fn rollovers_acked(&self, peer: &str, fingerprint: &str) -> Result<usize>;

    /// Highest sequence of a bundle of `kind` applied here from any sender (a centre's data
    /// bundles come from its central under each of its keys in turn).
    fn max_seq_in(&self, kind: &str) -> Result<Option<i64>>;

    /// The central key this centre revoked last (`keys revoke-peer`), if any.
    fn revoked_central(&self) -> Result<Option<(String, Retired)>>;

    /// From now on, the bundles applied so far no longer count (see [`SINCE_FLOOR`]).
    fn set_bundles_floor(&self) -> Result<()>;

    /// `keys rotate`: key `old` (made at `old_created` when it has no row yet) is replaced by
    /// `new`, made now.
    fn own_key_replaced(&self, old: &str, old_created: &str, new: &str) -> Result<()>;

    /// This site's own keys with a row, oldest first.
    fn own_keys(&self) -> Result<Vec<OwnKey>>;

    /// The keys pinned here (for centre `org` only, when given), in the order they were pinned.
    fn peer_keys(&self, org: Option<&str>) -> Result<Vec<PeerKey>>;
}

/// Central: the test centres registered, their enrollment, sequence and acknowledgement
/// state, and the figures `status` shows about them.
pub trait CenterRegistry {
    /// Imports of one centre's files are serialised: take centre `org`'s lock, held until this
    /// transaction ends (another transaction holding it is waited for, up to the store's lock
    /// timeout, then "busy"). Imports of different centres do not wait for each other. Take
    /// it before reading anything of the centre's. On SQLite, where one writer holds the whole
    /// store, there is nothing to take.
    fn lock_center(&self, org: &str) -> Result<()>;

    /// Results held at central counted by when their stored copy arrived, in time order:
    /// `stored_at` cut to its first `prefix_len` characters (13: the hour, 10: the day).
    fn arrivals(&self, prefix_len: usize) -> Result<Vec<(String, i64)>>;

    /// The results bundles central applied, by centre and sequence.
    fn received_bundles(&self) -> Result<Vec<ReceivedBundle>>;

    fn center(&self, org: &str) -> Result<Option<Center>>;

    fn centers(&self) -> Result<Vec<Center>>;

    /// Register a centre with the SHA-256 of its one-time token, and the fingerprint of the
    /// key its reply must carry when central was given it up front.
    fn add_center(
        &self,
        org: &str,
        label: &str,
        token_sha256: &str,
        expected_fingerprint: Option<&str>,
    ) -> Result<()>;

    /// The centre's reply was accepted: its key is the one for the org.
    fn set_center_enrolled(&self, org: &str, fingerprint: &str) -> Result<()>;

    /// A centre's key rolled over: its bundles are now addressed to and checked with `fingerprint`.
    fn set_center_key(&self, org: &str, fingerprint: &str) -> Result<()>;

    /// `center reenroll`: the centre waits for a new enrollment reply (new token, no key), and
    /// central forgets what the old machine confirmed holding, so the next data bundle carries
    /// the whole scope and every package. Its data sequence goes on; a revocation is lifted.
    fn reset_center_for_reenrollment(
        &self,
        org: &str,
        label: &str,
        token_sha256: &str,
    ) -> Result<()>;

    /// Central revokes a centre, with the reason; returns when (RFC 3339).
    fn revoke_center(&self, org: &str, reason: &str) -> Result<String>;

    /// Refuse the bundle at `path` when it comes from centre `org` and central revoked it.
    fn refuse_if_revoked(&self, path: &Path, org: &str) -> Result<()>;

    fn set_center_next_seq(&self, org: &str, next_seq: i64) -> Result<()>;

    /// Record what the centre confirmed with the acknowledgement of upward sequence `upseq`.
    fn set_center_ack(
        &self,
        org: &str,
        acked_seq: Option<i64>,
        upseq: i64,
        packages: &[String],
    ) -> Result<()>;

    /// What central holds from and owes to centre `org` (key `fingerprint`, when enrolled).
    fn center_figures(&self, org: &str, fingerprint: Option<&str>) -> Result<CenterFigures>;

    /// Sequences of the results bundles applied from `sender` and from the keys it replaced
    /// by rollovers (a rotation keeps numbering; a re-enrolled machine starts again, so a
    /// key revoked without a replacement is not followed), ascending.
    fn received_seqs(&self, sender: &str) -> Result<Vec<i64>>;

    /// The bundle of `kind` this site wrote (`out`) or applied (`in`) with sequence `seq`
    /// (the newest such row).
    fn bundle_by_seq(&self, direction: &str, kind: &str, seq: i64) -> Result<Option<LastBundle>>;

    /// The bundle of `kind` applied here last in time.
    fn last_applied(&self, kind: &str) -> Result<Option<LastBundle>>;
}

/// Entities in TAO's wire shape, test packages (content-addressed), and the scope lists and
/// (delivery, test taker) pairs central sent to each centre.
pub trait EntityStore {
    /// One entity by id.
    fn entity(&self, id: &str) -> Result<Option<StoredEntity>>;

    /// The checksum of a held entity.
    fn entity_checksum(&self, id: &str) -> Result<Option<String>>;

    /// The type of a held entity.
    fn entity_kind(&self, id: &str) -> Result<Option<String>>;

    /// Whether an entity of that type is held.
    fn holds(&self, id: &str, kind: &str) -> Result<bool>;

    /// Every entity of one type.
    fn entities_of_type(&self, kind: &str) -> Result<Vec<StoredEntity>>;

    /// Every entity, in flow order (test-center, administrator, ..., delivery), then by id.
    fn all_entities(&self) -> Result<Vec<StoredEntity>>;

    /// (id, type, checksum) of every entity held.
    fn inventory(&self) -> Result<Vec<ScopeItem>>;

    /// Create or replace an entity.
    fn put_entity(&self, e: &StoredEntity) -> Result<()>;

    /// Delete an entity; returns whether it existed.
    fn delete_entity(&self, id: &str) -> Result<bool>;

    // ---- packages ---------------------------------------------------------------------
    /// Whether a package is recorded as held.
    fn package_known(&self, sha256: &str) -> Result<bool>;

    /// Record a package held (its content is packages/<sha256>.zip in the home, or in the
    /// store itself when [`EntityStore::keeps_package_content`]).
    fn add_package(&self, sha256: &str, size: u64, name: &str) -> Result<()>;

    /// Whether the store keeps test packages' content itself (PostgreSQL: in chunks, so
    /// every host holding a copy of the home sees them), rather than the home keeping them
    /// as files packages/<sha256>.zip (SQLite).
    fn keeps_package_content(&self) -> bool;

    /// Keep the content of package `sha256`, streamed from `from` (named `origin` in
    /// errors) and never held whole, in this transaction; its SHA-256 is checked on the way
    /// ([`Error::ChangedWhileReading`](crate::error::Error::ChangedWhileReading) when it
    /// differs). Content already kept is not read again. Returns its size.
    fn put_package_content(&self, sha256: &str, from: &mut dyn Read, origin: &Path) -> Result<u64>;

    /// The content of package `sha256` as kept by the store: its recorded size and a reader
    /// that streams it, failing with an I/O error wrapping
    /// [`Error::PackageDamaged`](crate::error::Error::PackageDamaged) before it yields a
    /// last byte that would not match the hash. `None` when the package is not recorded.
    fn package_content(&self, sha256: &str) -> Result<Option<PackageContent<'_>>>;

    /// Every package held, by SHA-256, sorted.
    fn package_hashes(&self) -> Result<Vec<String>>;

    /// Forget the packages no delivery uses any more, with the content the store keeps of
    /// them; returns their hashes (files are the caller's to remove after commit).
    fn drop_unused_packages(&self) -> Result<Vec<String>>;

    /// Deliveries whose package is not held.
    fn deliveries_without_package(&self) -> Result<Vec<String>>;

    // ---- central: scope lists sent ------------------------------------------------------
    /// Remember the scope list of data bundle `seq` for a centre.
    fn record_scope(&self, org: &str, seq: i64, items: &[ScopeItem]) -> Result<()>;

    /// The scope lists sent to a centre from bundle `from_seq` on: (seq, item), by seq.
    fn scopes_since(&self, org: &str, from_seq: i64) -> Result<Vec<(i64, ScopeItem)>>;

    /// Remember, durably, the (delivery, test taker) pairs data bundle `seq` sent to a
    /// centre as eligible; a pair sent before keeps its first sequence.
    fn record_sent_pairs(&self, org: &str, seq: i64, pairs: &[(&str, &str)]) -> Result<()>;

    /// Whether any data bundle sent to a centre named this delivery with this test taker
    /// eligible for it.
    fn pair_sent(&self, org: &str, delivery: &str, taker: &str) -> Result<bool>;

    /// Whether any data bundle sent to a centre named this delivery (with some test taker).
    fn delivery_sent(&self, org: &str, delivery: &str) -> Result<bool>;

    /// Forget scope lists older than `seq` (the centre confirmed `seq`).
    fn forget_scopes_before(&self, org: &str, seq: i64) -> Result<()>;
}

/// A centre: the results and delivery logs it holds, sealed to central, and what it sent.
pub trait HeldResults {
    // ---- centre: results ------------------------------------------------------------
    /// Revision, content hash and sync status of a held result.
    fn result_version(&self, execution_id: &str) -> Result<Option<(i64, String, SyncStatus)>>;

    /// The finish time (TAO microtime) of a held result, when known.
    fn result_finishtime(&self, execution_id: &str) -> Result<Option<String>>;

    /// Store (or replace) a result with its sealed content.
    fn put_result(&self, r: &HeldResult, sealed: &[u8]) -> Result<()>;

    /// Every held result, oldest first.
    fn held_results(&self) -> Result<Vec<HeldResult>>;

    /// Results never sent (or replaced since), in the given execution states, that still
    /// have their sealed content: (execution id, sealed size).
    fn results_to_send(&self, states: &[String]) -> Result<Vec<(String, u64)>>;

    /// Results and log batches sent and not acknowledged, that still have their sealed
    /// content, in the given execution states: the candidates for sending again.
    fn sent_unacknowledged(&self, states: &[String]) -> Result<Vec<SentItem>>;

    /// What waits to be sent for the first time (in the given states): results, log
    /// batches and the logs in them.
    fn waiting_to_send(&self, states: &[String]) -> Result<Unsent>;

    /// One held result with its sealed content.
    fn sealed_result(&self, execution_id: &str) -> Result<(HeldResult, Vec<u8>)>;

    /// After an export: results written are `sent` (re-synced ones too), in upward file
    /// `seq`, now.
    fn mark_result_sent(&self, execution_id: &str, seq: i64) -> Result<()>;

    /// Central acknowledged a result: `synchronized`, its content dropped when asked.
    fn mark_result_synchronized(&self, execution_id: &str, drop_content: bool) -> Result<()>;

    /// Central kept a result aside: `conflict`, with its reason.
    fn mark_result_conflict(&self, execution_id: &str, reason: &str) -> Result<()>;

    /// Central answered about a result without storing it (`stale`, `out_of_scope`): the
    /// status and its reason are shown in `results list`, and it is not sent again.
    fn mark_result_kept(&self, execution_id: &str, status: SyncStatus, reason: &str) -> Result<()>;

    /// What central said, in the newest data bundle applied, about the upward files it
    /// applied; `None` when no data bundle said so yet.
    fn central_received(&self) -> Result<Option<ReceivedFiles>>;

    fn set_central_received(&self, received: &ReceivedFiles) -> Result<()>;

    /// Results and log batches sent and not acknowledged, by the upward file they went in:
    /// (file sequence, when, execution ids of its results, log batches, logs).
    #[allow(clippy::type_complexity)]
    fn sent_by_file(&self) -> Result<Vec<(Option<i64>, Option<String>, Vec<String>, i64, i64)>>;

    /// How many results the centre holds in each sync status.
    fn results_by_status(&self) -> Result<Vec<(SyncStatus, i64)>>;

    // ---- centre: delivery logs --------------------------------------------------------
    /// Whether a log id was ingested before.
    fn log_known(&self, log_id: &str) -> Result<bool>;

    /// Store a sealed batch of logs of one execution, and its log ids.
    fn add_log_batch(&self, batch: &HeldLogBatch, sealed: &[u8], log_ids: &[String]) -> Result<()>;

    /// Log batches never sent whose result is in one of the given states:
    /// (batch id, sealed size).
    fn log_batches_to_send(&self, states: &[String]) -> Result<Vec<(String, u64)>>;

    /// One log batch with its sealed content.
    fn sealed_log_batch(&self, batch_id: &str) -> Result<(HeldLogBatch, Vec<u8>)>;

    /// After an export: a log batch written is `sent`, in upward file `seq`, now.
    fn mark_log_batch_sent(&self, batch_id: &str, seq: i64) -> Result<()>;

    /// Central stored a log batch; returns whether the batch is held here.
    fn mark_log_batch_synchronized(&self, batch_id: &str, drop_content: bool) -> Result<bool>;

    /// Central kept a log batch aside: it is not sent again.
    fn mark_log_batch_kept_aside(&self, batch_id: &str) -> Result<bool>;
}

/// Central: results and logs received, quarantine, logs waiting for their result, and the
/// acknowledgements owed to each centre.
pub trait CentralResults {
    // ---- central: results -------------------------------------------------------------
    /// Revision and content hash of a result stored at central.
    fn central_result_version(&self, central_id: &str) -> Result<Option<(i64, String)>>;

    /// Revision, content hash and `details.finishtime` (when a string) of a result stored
    /// at central.
    fn central_result_held(
        &self,
        central_id: &str,
    ) -> Result<Option<(i64, String, Option<String>)>>;

    /// Why a centre's execution was kept aside at central, the latest reason first met, if
    /// it was.
    fn quarantine_reason(&self, org: &str, execution_id: &str) -> Result<Option<String>>;

    /// Keep a log batch aside with its reason (its content as received, or as it was found).
    fn quarantine_logs(
        &self,
        org: &str,
        batch_id: &str,
        execution_id: &str,
        reason: &str,
        bundle_id: Option<&str>,
        content: &str,
    ) -> Result<()>;

    /// Store a result and its variables (replacing an earlier copy), in this transaction:
    /// the id mapping and the variables are written together or not at all.
    fn put_central_result(
        &self,
        r: &CentralResult,
        bundle_id: &str,
        variables: &[StoredVariable<'_>],
    ) -> Result<()>;

    /// Keep a copy aside (same id, other content); a copy already kept is kept once.
    fn quarantine(&self, q: &Quarantined<'_>) -> Result<()>;

    /// Visit every result at central with its variables, one at a time, in (org, id) order.
    fn for_each_central_result(
        &self,
        each: &mut dyn FnMut(CentralResult, Vec<Value>) -> Result<()>,
    ) -> Result<u64>;

    // ---- central: logs ----------------------------------------------------------------
    /// Store logs against central's execution id (a log id already stored is kept once).
    fn put_central_logs(
        &self,
        org: &str,
        central_id: &str,
        execution_id: &str,
        logs: &[Value],
    ) -> Result<()>;

    /// Keep a log batch until its result arrives.
    fn add_waiting_logs(
        &self,
        org: &str,
        batch_id: &str,
        execution_id: &str,
        logs: &[Value],
    ) -> Result<()>;

    /// Take the log batches that waited for an execution's result: (batch id, logs, or the
    /// text found and why it cannot be read back). Nothing is dropped here: a batch that
    /// cannot be read is the caller's to keep aside.
    #[allow(clippy::type_complexity)]
    fn take_waiting_logs(
        &self,
        org: &str,
        execution_id: &str,
    ) -> Result<Vec<(String, std::result::Result<Vec<Value>, (String, String)>)>>;

    /// Visit every log at central: (org, central execution id, centre execution id, log),
    /// grouped by organisation and the centre's execution id, in the order they happened.
    fn for_each_central_log(
        &self,
        each: &mut dyn FnMut(&str, &str, &str, Value) -> Result<()>,
    ) -> Result<u64>;

    // ---- central: acknowledgements owed -----------------------------------------------
    /// Record (or update) an acknowledgement owed to a centre; it travels in every data
    /// bundle until the centre confirms one that carried it.
    fn owe_ack(&self, org: &str, ack: &OwedAck) -> Result<()>;

    /// Record an acknowledgement owed to a centre unless one about the same item is already
    /// owed (a stale copy's answer never hides the answer about the newer one).
    fn owe_ack_unless_owed(&self, org: &str, ack: &OwedAck) -> Result<()>;

    /// Every acknowledgement owed to a centre.
    fn owed_acks(&self, org: &str) -> Result<Vec<OwedAck>>;

    /// The acknowledgements not yet carried by any bundle are carried by bundle `seq`.
    fn acks_carried_by(&self, org: &str, seq: i64) -> Result<()>;

    /// The centre applied bundle `seq`: the acknowledgements it carried are delivered.
    fn acks_delivered(&self, org: &str, seq: i64) -> Result<()>;
}

// ---- shared by the backends ------------------------------------------------------------

/// The columns of an entity row, in the order both backends read them.
const ENTITY_COLUMNS: &str = "id, type, checksum, properties, sealed, sealed_names, package";

/// Entity types in flow order (test-center, administrator, ..., delivery last), as an SQL
/// expression both backends sort by.
const ENTITY_FLOW_ORDER: &str = "CASE type WHEN 'test-center' THEN 0 WHEN 'administrator' THEN 1
    WHEN 'proctor' THEN 2 WHEN 'test-taker' THEN 3 WHEN 'eligibility' THEN 4 ELSE 5 END";

/// A JSON column of entity `id`, parsed; one that does not parse is an error naming the
/// entity, never an empty value (which would be sent on, or compared, as if the entity had
/// no properties). The backend wraps the message in its own error.
fn entity_json<T: serde::de::DeserializeOwned>(
    id: &str,
    column: &str,
    text: &str,
) -> std::result::Result<T, String> {
    serde_json::from_str(text)
        .map_err(|e| format!("entity {id}: stored {column} are not valid JSON ({e})"))
}

/// How an entity's properties and sealed property names are stored: JSON text, the names
/// `None` when there are none.
fn entity_json_columns(e: &StoredEntity) -> (String, Option<String>) {
    (
        Value::Object(e.properties.clone()).to_string(),
        (!e.sealed_names.is_empty())
            .then(|| serde_json::to_string(&e.sealed_names).unwrap_or_default()),
    )
}
