//! The library's one error type. Every variant renders as a single line that says what
//! failed, for which file, and what to do next; the binary adds nothing but the exit code.

use std::path::PathBuf;

/// Result with the library's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit codes, documented in the README.
pub mod exit {
    /// Everything held.
    pub const OK: u8 = 0;
    /// Input was refused: a bad bundle, record, package or file. Nothing was changed.
    pub const REFUSED: u8 = 1;
    /// The command line was wrong (clap uses 2 as well).
    pub const USAGE: u8 = 2;
    /// Some records were applied and others quarantined or refused; the report says which.
    pub const PARTIAL: u8 = 3;
    /// The site cannot be used as asked: no home, store busy, passphrase missing, wrong role,
    /// not enrolled yet.
    pub const SITE: u8 = 4;
    /// An internal failure (I/O, database, bug). Nothing half-written is left behind.
    pub const INTERNAL: u8 = 5;
}

/// What kind of unexpected store failure [`Error::Store`] is, the same for every backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFailure {
    /// Another writer held the store (or a row) for too long.
    Busy,
    /// A uniqueness, foreign-key or check constraint refused a write.
    Constraint,
    /// Stored data did not have the type or shape the code reads.
    Shape,
    /// Anything else the backend reported (I/O, connection, syntax).
    Other,
}

/// Everything that can go wrong, grouped by what the operator should do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ---- refused input -------------------------------------------------------------
    #[error("{}: not a courier bundle (no 'COURIER-BUNDLE' magic); check that the right file was copied", .path.display())]
    NotABundle { path: PathBuf },
    #[error("{}: unsupported bundle format {found} (this courier reads up to {supported}); upgrade courier", .path.display())]
    UnsupportedFormat {
        path: PathBuf,
        found: u64,
        supported: u64,
    },
    #[error("{}: incomplete bundle: {what}; copy the file again from its source", .path.display())]
    Incomplete { path: PathBuf, what: String },
    #[error("{}: damaged bundle: {what}; copy the file again from its source", .path.display())]
    Damaged { path: PathBuf, what: String },
    #[error("{}: bad signature: {what}; the file was altered or forged, do not use it", .path.display())]
    BadSignature { path: PathBuf, what: String },
    #[error("{}: signed by unknown key {fingerprint}; only bundles from enrolled sites are accepted", .path.display())]
    UnknownSender { path: PathBuf, fingerprint: String },
    #[error("{}: meant for {intended}, not this site ({this}); take it to its recipient", .path.display())]
    WrongRecipient {
        path: PathBuf,
        intended: String,
        this: String,
    },
    #[error("{}: rollback refused: sequence {found} is not newer than {applied} already applied from {sender}, under another bundle id (was {sender} restored from a backup?); pass --allow-rollback to apply it anyway (recorded in the history)", .path.display())]
    Rollback {
        path: PathBuf,
        found: u64,
        applied: u64,
        sender: String,
    },
    #[error("{}: {what}", .path.display())]
    BadPayload { path: PathBuf, what: String },
    #[error("{}: this bundle requires feature '{feature}', which this courier does not know; upgrade courier", .path.display())]
    UnknownFeature { path: PathBuf, feature: String },
    #[error("{}: payload entry '{name}' has an unsafe path; refused", .path.display())]
    UnsafeEntry { path: PathBuf, name: String },
    #[error("{}: payload holds a link or special file; refused", .path.display())]
    SpecialEntry { path: PathBuf },
    #[error("{}: payload is larger than its signed header declares; refused as a possible decompression bomb", .path.display())]
    PayloadOversize { path: PathBuf },
    #[error("{}: payload entry {name} is larger than {cap} bytes; refused", .path.display())]
    EntryOversize {
        path: PathBuf,
        name: String,
        cap: u64,
    },
    #[error("{}: {kind} bundles come from {from} only; refused", .path.display())]
    WrongSenderRole {
        path: PathBuf,
        kind: &'static str,
        from: &'static str,
    },
    #[error("{}: the header says the sender is {claimed}, and its key is pinned for {pinned}; refused", .path.display())]
    PinnedRoleMismatch {
        path: PathBuf,
        claimed: String,
        pinned: String,
    },
    #[error("{}: a {kind} bundle is for a {for_role} site, and this is {this}; refused", .path.display())]
    NotForThisSite {
        path: PathBuf,
        kind: &'static str,
        for_role: &'static str,
        this: String,
    },
    #[error("{}: {what}; refused", .path.display())]
    ReplyCertificate { path: PathBuf, what: &'static str },
    #[error("{}: package name {name} is not a SHA-256; refused", .path.display())]
    PackageName { path: PathBuf, name: String },
    #[error("{}: package {sha} does not match its hash; refused", .path.display())]
    PackageMismatch { path: PathBuf, sha: String },
    #[error("{}: package changed while being loaded; load again", .path.display())]
    ChangedWhileReading { path: PathBuf },
    #[error("{}: record {record}: {reason}", .path.display())]
    BadRecord {
        path: PathBuf,
        record: String,
        reason: String,
    },
    #[error("{}: test package refused: {problem}", .path.display())]
    BadPackage {
        path: PathBuf,
        problem: crate::package::PackageProblem,
    },
    #[error("{}: enrollment refused: {what}", .path.display())]
    Enrollment { path: PathBuf, what: String },
    #[error("{}: cannot read this input: {what}; check the path and try again", .path.display())]
    InputUnreadable { path: PathBuf, what: String },
    #[error("{}: the header claims organisation {claimed}, and the sender's key {fingerprint} is pinned for {pinned}; a centre may only speak for itself, refused", .path.display())]
    OrgMismatch {
        path: PathBuf,
        claimed: String,
        pinned: String,
        fingerprint: String,
    },
    #[error("{}: {what} is {value}, beyond the largest number courier keeps (2^63-1); the file is forged or damaged, refused", .path.display())]
    NumberTooLarge {
        path: PathBuf,
        /// Which number: "header sequence", "results/000001.json revision", ...
        what: String,
        value: String,
    },
    #[error("{}: {record} is {found}, not {expected}; nothing was stored; give this file to '{command}'", .path.display())]
    WrongKindOfFile {
        path: PathBuf,
        record: String,
        found: &'static str,
        expected: &'static str,
        command: &'static str,
    },

    #[error("{}: history archive refused: {what}; nothing was changed", .path.display())]
    BadArchive { path: PathBuf, what: String },

    // ---- the site -------------------------------------------------------------------
    #[error("{}: no courier site here; run 'courier init central --name NAME' or 'courier init center --org ORG_ID', or pass --home", .home.display())]
    NoSite { home: PathBuf },
    #[error("{}: a courier site already exists here; choose another --home or remove it first", .home.display())]
    SiteExists { home: PathBuf },
    #[error("this command is for a {needed} site, and {} is a {actual} site", .home.display())]
    WrongRole {
        home: PathBuf,
        needed: &'static str,
        actual: String,
    },
    /// A centre's store method (results and logs held) asked of central's PostgreSQL store.
    #[error("{method}: a centre's store is SQLite; PostgreSQL holds central only: keep a centre's site on its SQLite store (no --store)")]
    CentreStoreOnly { method: &'static str },
    #[error("{}: the secret key is passphrase-protected; set COURIER_PASSPHRASE or pass --passphrase-file FILE", .home.display())]
    PassphraseNeeded { home: PathBuf },
    #[error("{}: wrong passphrase for the secret key; check COURIER_PASSPHRASE or --passphrase-file", .home.display())]
    WrongPassphrase { home: PathBuf },
    #[error("{}: store busy: another courier command is using this site; wait for it to finish and retry", .path.display())]
    StoreBusy { path: PathBuf },
    #[error("{}: store schema version {found} is newer than this courier ({supported}); upgrade courier (the store was not touched)", .path.display())]
    StoreTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("{url}: cannot connect to the PostgreSQL store: {what}; check that the server runs and that the URL, user and password (--store-password-file, PGPASSWORD or ~/.pgpass) are right")]
    StoreUnreachable { url: String, what: String },
    #[error("{url}: {what}")]
    StoreTlsSetting { url: String, what: String },
    #[error("{url}: the root certificate file {} {what}; sslrootcert must name the PEM file of the CA that signed the PostgreSQL server's certificate (a relative name is read from the home folder)", .path.display())]
    StoreRootCert {
        url: String,
        path: PathBuf,
        what: String,
    },
    #[error("{url}: the PostgreSQL server's certificate is not trusted ({what}), so sslmode={mode} refuses it; check that sslrootcert names the CA that signed it and that the URL's host is a name in it (sslmode=verify-ca does not check the name)")]
    StoreNotTrusted {
        url: String,
        mode: String,
        what: String,
    },
    #[error("{url}: the PostgreSQL server does not offer TLS, which sslmode={mode} requires; turn it on at the server (ssl = on, ssl_cert_file, ssl_key_file in postgresql.conf) or, for a server on this machine only, write sslmode=prefer")]
    StoreWithoutTls { url: String, mode: String },
    #[error("{url}: the store's address holds a password, which would be saved in courier.json; remove it and give the password with --store-password-file, PGPASSWORD or ~/.pgpass")]
    PasswordInStoreUrl { url: String },
    #[error("centre {org} has not enrolled yet; import its enrollment reply first")]
    CenterNotEnrolled { org: String },
    #[error("{site} is not enrolled with a central yet; run 'courier enroll' first")]
    NotEnrolled { site: String },
    #[error("{}: the sync history is not intact: {what}; nothing was changed (see 'courier history --verify')", .path.display())]
    HistoryNotIntact { path: PathBuf, what: String },
    #[error("{url}: the copy was made but does not verify ({what}); courier.json still names store.sqlite, which is unchanged: empty the database (dropdb, createdb) before migrating again")]
    CopyNotVerified { url: String, what: String },
    #[error("{what}")]
    Usage { what: String },
    #[error("{}: the file exists and was left as it is; choose another --out, or pass --force to replace it", .path.display())]
    OutputExists { path: PathBuf },
    #[error("{}: the folder is not empty; the demo keeps its sites in a new or empty folder: choose another --dir", .path.display())]
    DemoFolderNotEmpty { path: PathBuf },
    #[error("{}: {what}", .path.display())]
    Config { path: PathBuf, what: String },

    // ---- internal -------------------------------------------------------------------
    #[error("{}: stored data cannot be read: {what}; the store may be damaged, restore it from a backup", .path.display())]
    StoreDamaged { path: PathBuf, what: String },
    /// A test package kept in the store (PostgreSQL) does not read back as it was stored.
    #[error("test package {sha256} in the store {store}: {what}; nothing was written: load the delivery with its package again ('courier load'), then export again")]
    PackageDamaged {
        store: String,
        sha256: String,
        what: String,
    },
    #[error("{}: no space left on the disk while writing payload entry {name}; nothing was applied: free space in the site's home and import again", .path.display())]
    DiskFull { path: PathBuf, name: String },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A store backend (SQLite, PostgreSQL) failed in a way courier did not expect; `kind`
    /// tells apart what a caller may act on. The message is the backend's own.
    #[error("store: {message}; if this persists, run 'courier history' and report it")]
    Store { kind: StoreFailure, message: String },
    #[error("OpenPGP: {0:#}")]
    Pgp(anyhow::Error),
    #[error("internal error: cannot encode JSON: {0}")]
    Encode(serde_json::Error),
    #[error("{}: came out at {size} bytes, over the limit {max}; nothing was written", .path.display())]
    OutputTooLarge { path: PathBuf, size: u64, max: u64 },
    #[error("certificate {fingerprint} has no encryption key")]
    NoEncryptionKey { fingerprint: String },
    #[error("the secret key cannot be used: {what}")]
    KeyUnusable { what: String },
    #[error("demo: {} was refused: {message}", .file.display())]
    DemoRefused { file: PathBuf, message: String },
    /// A broken invariant of courier itself (a bug), or the system's random source failing.
    #[error("internal error: {0}")]
    Internal(String),

    // ---- revocation (issue 11) --------------------------------------------------------
    #[error("{}: centre {org} was revoked at {at} ({reason}); its bundles are refused, what it sent before stays", .path.display())]
    CenterRevoked {
        path: PathBuf,
        org: String,
        at: String,
        reason: String,
    },
    #[error("centre {org} was revoked at {at} ({reason}); nothing is exported to it")]
    ExportToRevoked {
        org: String,
        at: String,
        reason: String,
    },

    // ---- key rotation (issue 11) ------------------------------------------------------
    /// A bundle signed by a key that was retired here, with a sequence it may no longer sign.
    #[error("{}: signed by key {fingerprint}, which was retired here at {at} ({reason}) from sequence {from_seq} on, and this bundle's sequence is {sequence}; refused: ask the sender to export again with its current key, and check where this file came from", .path.display())]
    KeyRetired {
        path: PathBuf,
        fingerprint: String,
        at: String,
        reason: String,
        from_seq: i64,
        sequence: u64,
    },
    /// A header's key rollover statements do not lead from a key pinned here to its signer.
    #[error("{}: key rollover refused: {what}; nothing was changed, ask the sender (by phone or on paper) which key it uses", .path.display())]
    RolloverRefused { path: PathBuf, what: String },

    // ---- central's own key revoked at a centre (issue 11) ----------------------------
    /// `keys revoke-peer FILE`: the statement is not a revocation of the central key pinned here.
    #[error("{}: revocation statement refused: {what}; nothing was changed", .path.display())]
    RevocationRefused { path: PathBuf, what: String },
    /// A bundle signed by central's key after the centre applied its revocation statement.
    #[error("{}: signed by central's key {fingerprint}, which was revoked here at {at} ({reason}); refused: enroll again with a new enrollment file from central ('courier enroll FILE')", .path.display())]
    CentralKeyRevoked {
        path: PathBuf,
        fingerprint: String,
        at: String,
        reason: String,
    },
    /// A centre whose central key was revoked seals and exports nothing until it enrolls again.
    #[error("central's key {fingerprint} was revoked here at {at} ({reason}); nothing is sealed or exported to it: enroll again with a new enrollment file from central ('courier enroll FILE')")]
    CentralRevoked {
        fingerprint: String,
        at: String,
        reason: String,
    },
}

impl Error {
    /// The process exit code for this error (see [`exit`]).
    pub fn exit_code(&self) -> u8 {
        use Error::*;
        match self {
            NotABundle { .. }
            | UnsupportedFormat { .. }
            | Incomplete { .. }
            | Damaged { .. }
            | BadSignature { .. }
            | UnknownSender { .. }
            | WrongRecipient { .. }
            | Rollback { .. }
            | BadPayload { .. }
            | UnknownFeature { .. }
            | UnsafeEntry { .. }
            | SpecialEntry { .. }
            | PayloadOversize { .. }
            | EntryOversize { .. }
            | WrongSenderRole { .. }
            | PinnedRoleMismatch { .. }
            | NotForThisSite { .. }
            | ReplyCertificate { .. }
            | PackageName { .. }
            | PackageMismatch { .. }
            | ChangedWhileReading { .. }
            | BadRecord { .. }
            | BadPackage { .. }
            | Enrollment { .. }
            | InputUnreadable { .. }
            | NumberTooLarge { .. }
            | OrgMismatch { .. }
            | WrongKindOfFile { .. }
            | CenterRevoked { .. }
            | KeyRetired { .. }
            | RolloverRefused { .. }
            | BadArchive { .. }
            | RevocationRefused { .. }
            | CentralKeyRevoked { .. } => exit::REFUSED,
            NoSite { .. }
            | SiteExists { .. }
            | WrongRole { .. }
            | CentreStoreOnly { .. }
            | PassphraseNeeded { .. }
            | WrongPassphrase { .. }
            | StoreBusy { .. }
            | StoreTooNew { .. }
            | StoreUnreachable { .. }
            | StoreRootCert { .. }
            | StoreNotTrusted { .. }
            | StoreWithoutTls { .. }
            | CenterNotEnrolled { .. }
            | NotEnrolled { .. }
            | Config { .. }
            | HistoryNotIntact { .. }
            | CopyNotVerified { .. }
            | ExportToRevoked { .. }
            | CentralRevoked { .. } => exit::SITE,
            Usage { .. }
            | PasswordInStoreUrl { .. }
            | StoreTlsSetting { .. }
            | OutputExists { .. }
            | DemoFolderNotEmpty { .. } => exit::USAGE,
            Io { .. }
            | DiskFull { .. }
            | StoreDamaged { .. }
            | PackageDamaged { .. }
            | Store { .. }
            | Pgp(_)
            | Encode(_)
            | OutputTooLarge { .. }
            | NoEncryptionKey { .. }
            | KeyUnusable { .. }
            | DemoRefused { .. }
            | Internal(_) => exit::INTERNAL,
        }
    }

    /// Shorthand for an I/O error on a path.
    /// The library's own error that an I/O error carries (a reader of the store failing
    /// inside a writer that only speaks `std::io`), or `self` unchanged.
    pub fn from_wrapped(self) -> Self {
        let Error::Io { path, source } = self else {
            return self;
        };
        if source.get_ref().is_none() {
            return Error::Io { path, source };
        }
        let kind = source.kind();
        let source = match source.into_inner().map(|inner| inner.downcast::<Error>()) {
            Some(Ok(ours)) => return *ours,
            Some(Err(other)) => std::io::Error::new(kind, other),
            None => kind.into(),
        };
        Error::Io { path, source }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An input file or folder named by the user that cannot be read (missing, a folder
    /// where a file is expected, no permission): refused input, not an internal failure.
    pub fn input(path: impl Into<PathBuf>, source: &std::io::Error) -> Self {
        let what = match source.kind() {
            std::io::ErrorKind::IsADirectory => "it is a folder, not a file".to_string(),
            _ => source.to_string(),
        };
        Error::InputUnreadable {
            path: path.into(),
            what,
        }
    }

    /// A payload document (or line, or entry) that is not what the format says.
    pub fn bad_payload(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Error::BadPayload {
            path: path.into(),
            what: what.into(),
        }
    }
}

/// Attach a path to I/O errors.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}

/// Turn Sequoia's errors into ours.
pub fn pgp(e: anyhow::Error) -> Error {
    Error::Pgp(e)
}
