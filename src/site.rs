//! A site is a home folder: its config (`courier.json`), its secret key
//! (`secret-key.asc`), its store (`store.sqlite`) and the test packages it holds
//! (`packages/<sha256>.zip`). Every path inside is relative to the home, so a copy of the
//! folder elsewhere is a working site (backup and restore).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::crypto::{self, SecretKey, UnlockError};
use crate::error::{Error, IoContext, Result};
use crate::progress::{self, Progress};
use crate::store::Store;

pub use crate::bundle::Role;

pub use crate::fs::{remove_stale_parts, temp_beside, write_atomic};

/// `courier.json` (schema: schemas/config.schema.json).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Version of this config document.
    pub format: u32,
    pub role: Role,
    /// Central's display name (central only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The test centre's organisation id (centre only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// The site key's fingerprint.
    pub fingerprint: String,
    pub created: String,
    #[serde(default)]
    pub settings: Settings,
}

/// Tunables, with TAO's defaults where TAO has one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Properties that never leave central, per entity type (`*` applies to every type).
    pub excluded_properties: BTreeMap<String, Vec<String>>,
    /// Properties sent sealed to the centre's key, per entity type.
    pub personal_properties: BTreeMap<String, Vec<String>>,
    /// Results per up-sync file (TAO's chunkSize was 10; files are not HTTP requests).
    pub results_per_file: u64,
    /// Largest bundle file written, in bytes (default just under 4 GiB for FAT32).
    pub max_file_size: u64,
    /// Execution states whose results are sent to central.
    pub status_executions_to_sync: Vec<String>,
    /// Delete a result's sealed content at the centre once central acknowledged it.
    pub delete_after_ack: bool,
    /// Limits on one untrusted JSON record (results, logs, entities).
    pub limits: crate::limits::Limits,
    /// Central: a centre not heard from for more than this many days (since its last
    /// results bundle, or since enrollment when it never sent one) is late in `status`.
    pub late_after_days: u64,
    /// Centre: what central has not acknowledged is sent again by `export` once this many
    /// hours have passed since it was sent (`--resend`: at once for what central is known
    /// to miss, a file it never applied while it applied later ones).
    pub resend_after_hours: u64,
    /// Central: its store on PostgreSQL, `postgres://USER@HOST[:PORT]/DB` (never a
    /// password); absent: `store.sqlite` in the home.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
}

pub const RDFS_LABEL: &str = "http://www.w3.org/2000/01/rdf-schema#label";
pub const GENERIS: &str = "http://www.tao.lu/Ontologies/generis.rdf#";
pub const STATE_PREFIX: &str =
    "http://www.tao.lu/Ontologies/TAODelivery.rdf#DeliveryExecutionStatus";
/// FAT32's limit is 4 GiB - 1 byte; stay 1 MiB under it.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 4 * 1024 * 1024 * 1024 - 1024 * 1024;

impl Default for Settings {
    fn default() -> Self {
        let mut excluded = BTreeMap::new();
        excluded.insert(
            "*".to_string(),
            vec![
                "http://www.taotesting.com/Ontologies/TAO.rdf#CreatedAt".to_string(),
                "http://www.tao.lu/Ontologies/TAO.rdf#UpdatedAt".to_string(),
            ],
        );
        excluded.insert(
            "delivery".to_string(),
            [
                "AssembledDeliveryOrigin",
                "AssembledDeliveryCompilationDirectory",
                "AssembledDeliveryCompilationTime",
                "AssembledDeliveryRuntime",
                "AssembledDeliveryContainer",
            ]
            .iter()
            .map(|p| format!("http://www.tao.lu/Ontologies/TAODelivery.rdf#{p}"))
            .collect(),
        );
        excluded.insert(
            "proctor".to_string(),
            vec!["http://www.tao.lu/Ontologies/TAOTestCenter.rdf#authorizedProctor".to_string()],
        );
        let personal: Vec<String> = std::iter::once(RDFS_LABEL.to_string())
            .chain(
                ["userFirstName", "userLastName", "userMail"]
                    .iter()
                    .map(|p| format!("{GENERIS}{p}")),
            )
            .collect();
        let personal_properties = ["administrator", "proctor", "test-taker"]
            .iter()
            .map(|t| (t.to_string(), personal.clone()))
            .collect();
        Settings {
            excluded_properties: excluded,
            personal_properties,
            results_per_file: 5000,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            status_executions_to_sync: vec![format!("{STATE_PREFIX}Finished")],
            delete_after_ack: false,
            limits: crate::limits::Limits::default(),
            late_after_days: 3,
            resend_after_hours: 48,
            store: None,
        }
    }
}

impl Settings {
    /// Excluded properties for one entity type.
    pub fn excluded(&self, kind: &str) -> impl Iterator<Item = &String> {
        self.excluded_properties
            .get("*")
            .into_iter()
            .chain(self.excluded_properties.get(kind))
            .flatten()
    }

    /// Personal (sealed) properties for one entity type.
    pub fn personal(&self, kind: &str) -> &[String] {
        self.personal_properties
            .get(kind)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

const CONFIG_FILE: &str = "courier.json";
const KEY_FILE: &str = "secret-key.asc";
/// Keys this site replaced (`keys rotate`), one `<FINGERPRINT>.asc` each: decryption only.
const RETIRED_DIR: &str = "retired-keys";
const STORE_FILE: &str = "store.sqlite";

/// Where the home is: `--home`, else `$COURIER_HOME`, else a per-user default.
pub fn resolve_home(explicit: Option<PathBuf>) -> PathBuf {
    if let Some(h) = explicit {
        return h;
    }
    if let Some(h) = std::env::var_os("COURIER_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(d).join("courier");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/courier"),
        None => PathBuf::from(".courier"),
    }
}

/// How the secret key's passphrase is obtained.
#[derive(Debug, Clone, Default)]
pub struct Passphrase(Option<String>);

impl Passphrase {
    /// From `--passphrase-file` when given, else `$COURIER_PASSPHRASE`.
    pub fn from_sources(file: Option<&Path>) -> Result<Self> {
        Self::from_file_or_env(file, "COURIER_PASSPHRASE", "--passphrase-file")
    }

    /// `keys passwd`: the new passphrase, from `--new-passphrase-file` when given, else
    /// `$COURIER_NEW_PASSPHRASE`; `None` with `remove` (store the key unprotected). Both or
    /// neither, or an empty new passphrase, is a usage error: courier never prompts.
    pub fn new_from_sources(file: Option<&Path>, remove: bool) -> Result<Option<String>> {
        let new = Self::from_file_or_env(file, "COURIER_NEW_PASSPHRASE", "--new-passphrase-file")?;
        match (new.0, remove) {
            (Some(_), true) => Err(Error::Usage {
                what: "--remove stores the key unprotected: do not give a new passphrase with it (--new-passphrase-file or COURIER_NEW_PASSPHRASE)".into(),
            }),
            (None, true) => Ok(None),
            (Some(p), false) if !p.is_empty() => Ok(Some(p)),
            (Some(_), false) => Err(Error::Usage {
                what: "the new passphrase is empty; to store the key unprotected use --remove".into(),
            }),
            (None, false) => Err(Error::Usage {
                what: "keys passwd needs the new passphrase: --new-passphrase-file FILE (first line) or COURIER_NEW_PASSPHRASE, or --remove to store the key unprotected".into(),
            }),
        }
    }

    /// The first line of `file` when given, else the environment variable `var` (unset or
    /// empty: none).
    fn from_file_or_env(file: Option<&Path>, var: &str, flag: &str) -> Result<Self> {
        if let Some(f) = file {
            let text = fs::read_to_string(f).map_err(|e| Error::input(f, &e))?;
            let line = text.lines().next().unwrap_or("").to_string();
            return Ok(Passphrase(Some(line)));
        }
        match std::env::var(var) {
            Ok(p) => Ok(Passphrase(Some(p).filter(|p| !p.is_empty()))),
            Err(std::env::VarError::NotPresent) => Ok(Passphrase(None)),
            Err(std::env::VarError::NotUnicode(_)) => Err(Error::Usage {
                what: format!("{var} is not valid UTF-8; use {flag} FILE"),
            }),
        }
    }

    pub fn given(p: impl Into<String>) -> Self {
        Passphrase(Some(p.into()))
    }

    pub fn none() -> Self {
        Passphrase(None)
    }

    pub fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// An opened site.
pub struct Site {
    pub home: PathBuf,
    pub config: Config,
    passphrase: Passphrase,
    /// Where long work reports its progress and a busy store its wait ([`progress::Silent`]
    /// unless the binary sets one with [`Site::with_progress`]).
    progress: progress::Reporter,
    /// A PostgreSQL store's password file (first line): `--store-password-file`, else
    /// `$COURIER_STORE_PASSWORD_FILE`.
    store_password_file: Option<PathBuf>,
}

/// `$COURIER_STORE_PASSWORD_FILE`, when set and not empty.
fn store_password_file_from_env() -> Option<PathBuf> {
    std::env::var_os("COURIER_STORE_PASSWORD_FILE")
        .filter(|f| !f.is_empty())
        .map(PathBuf::from)
}

/// What `init` needs to know.
pub struct InitOptions {
    pub role: Role,
    pub name: Option<String>,
    pub org_id: Option<String>,
    pub protect: bool,
    /// Restore this secret key (as written by `keys export --secret`) instead of generating one.
    pub key: Option<Vec<u8>>,
    /// Central: keep the store in this PostgreSQL database (`postgres://USER@HOST[:PORT]/DB`,
    /// no password) instead of `store.sqlite`. A centre refuses it.
    pub store: Option<String>,
    /// The PostgreSQL password's file (else `$COURIER_STORE_PASSWORD_FILE`, `PGPASSWORD`, `.pgpass`).
    pub store_password_file: Option<PathBuf>,
}

/// The user id of a new site's key, from what `init` was told: central's name, a centre's
/// organisation id (checked).
fn user_id(opts: &InitOptions) -> Result<String> {
    match opts.role {
        Role::Central => {
            let name = opts
                .name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .ok_or_else(|| Error::Usage {
                    what: "init central needs --name NAME".into(),
                })?;
            Ok(userid(Role::Central, Some(&name), None))
        }
        Role::Center => {
            let org = opts.org_id.clone().ok_or_else(|| Error::Usage {
                what: "init center needs --org ORG_ID".into(),
            })?;
            check_org_id(&org)?;
            Ok(userid(Role::Center, None, Some(&org)))
        }
    }
}

/// The secret key `init --key` restores: an OpenPGP key with its secret parts, proven to
/// unlock with `passphrase` before anything is created in `home`.
fn restored_key(home: &Path, bytes: &[u8], passphrase: &Passphrase) -> Result<crypto::Cert> {
    let cert = crypto::parse_cert(bytes).map_err(|_| Error::Usage {
        what: "the --key file is not an OpenPGP secret key".into(),
    })?;
    if !cert.is_tsk() {
        return Err(Error::Usage {
            what: "the --key file holds no secret key (use 'keys export --secret')".into(),
        });
    }
    SecretKey::unlock(cert.clone(), passphrase.get()).map_err(|e| match e {
        UnlockError::PassphraseNeeded => Error::PassphraseNeeded {
            home: home.to_path_buf(),
        },
        UnlockError::WrongPassphrase => Error::WrongPassphrase {
            home: home.to_path_buf(),
        },
        UnlockError::Other(o) => Error::Usage {
            what: format!("the --key file cannot be used: {o}"),
        },
    })?;
    Ok(cert)
}

impl Site {
    /// Create a new site in `home` (which may exist but must not hold a site).
    pub fn init(home: &Path, opts: InitOptions, passphrase: Passphrase) -> Result<Site> {
        if home.join(CONFIG_FILE).exists() || home.join(STORE_FILE).exists() {
            return Err(Error::SiteExists {
                home: home.to_path_buf(),
            });
        }
        let userid = user_id(&opts)?;
        if let Some(url) = &opts.store {
            if opts.role != Role::Central {
                return Err(Error::Usage {
                    what:
                        "a centre keeps its store in its home: --store is for 'init central' only"
                            .into(),
                });
            }
            crate::store::check_store_url(url)?;
        }
        let pass = if opts.protect {
            Some(passphrase.get().ok_or(Error::PassphraseNeeded {
                home: home.to_path_buf(),
            })?)
        } else {
            None
        };
        let cert = match &opts.key {
            Some(bytes) => restored_key(home, bytes, &passphrase)?,
            None => crypto::generate(&userid, pass)?,
        };
        private_dir(home)?;
        private_dir(&home.join("packages"))?;
        write_atomic(&home.join(KEY_FILE), &crypto::armor_secret(&cert)?)?;
        let config = Config {
            format: 1,
            role: opts.role,
            name: opts.name,
            org_id: opts.org_id,
            fingerprint: crypto::fingerprint(&cert),
            created: crate::time::now_rfc3339(),
            settings: Settings {
                store: opts.store,
                ..Settings::default()
            },
        };
        let site = Site {
            home: home.to_path_buf(),
            config,
            passphrase,
            progress: progress::silent(),
            store_password_file: opts
                .store_password_file
                .or_else(store_password_file_from_env),
        };
        // The store is created (or connected to and migrated) before the config: a site
        // exists once its config does.
        let mut store = site.store()?;
        if let Some(url) = &site.config.settings.store {
            refuse_database_in_use(&mut store, url)?;
        }
        drop(store);
        if site.config.settings.store.is_none() {
            private_file(&site.store_path())?;
        }
        let json = serde_json::to_vec_pretty(&site.config).map_err(Error::Encode)?;
        write_atomic(&home.join(CONFIG_FILE), &json)?;
        Ok(site)
    }

    /// Open an existing site.
    pub fn open(home: &Path, passphrase: Passphrase) -> Result<Site> {
        let path = home.join(CONFIG_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoSite {
                    home: home.to_path_buf(),
                })
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| Error::Config {
                path: path.clone(),
                what: format!("not JSON: {}", crate::limits::quote(&e.to_string())),
            })?;
        crate::schema::check("config", &value).map_err(|what| Error::Config {
            path: path.clone(),
            what,
        })?;
        let config: Config = serde_json::from_value(value).map_err(|e| Error::Config {
            path: path.clone(),
            what: crate::limits::quote(&e.to_string()),
        })?;
        // A command killed while writing the signed history head (or the config) leaves its
        // part in the home; the next command may have nothing to write there (failpoint walk).
        remove_stale_parts(home)?;
        Ok(Site {
            home: home.to_path_buf(),
            config,
            passphrase,
            progress: progress::silent(),
            store_password_file: store_password_file_from_env(),
        })
    }

    pub fn role(&self) -> Role {
        self.config.role
    }

    /// Refuse unless this site has `role`.
    pub fn require(&self, role: Role) -> Result<()> {
        if self.config.role == role {
            Ok(())
        } else {
            Err(Error::WrongRole {
                home: self.home.clone(),
                needed: role.label(),
                actual: self.config.role.label().to_string(),
            })
        }
    }

    /// The centre's organisation id (centre sites only).
    pub fn org_id(&self) -> Result<&str> {
        self.config
            .org_id
            .as_deref()
            .ok_or_else(|| Error::WrongRole {
                home: self.home.clone(),
                needed: Role::Center.label(),
                actual: self.config.role.label().to_string(),
            })
    }

    /// A short name for this site in messages: `central NAME` or `centre ORG`.
    pub fn describe(&self) -> String {
        match self.config.role {
            Role::Central => format!("central {}", self.config.name.as_deref().unwrap_or("")),
            Role::Center => format!("centre {}", self.config.org_id.as_deref().unwrap_or("")),
        }
    }

    /// The first part of the home that other local users can read or enter (the home, the
    /// store, the secret key, the config), with its mode: central's store holds personal data
    /// and decrypted results. `None` when all is private (or on systems without modes).
    pub fn exposed(&self) -> Option<(PathBuf, u32)> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let parts = [
                self.home.clone(),
                self.store_path(),
                self.home.join(KEY_FILE),
                self.home.join(CONFIG_FILE),
                self.packages_dir(),
            ];
            for p in parts {
                if let Ok(m) = fs::metadata(&p) {
                    let mode = m.permissions().mode() & 0o7777;
                    if mode & 0o077 != 0 {
                        return Some((p, mode));
                    }
                }
            }
        }
        None
    }

    /// Where the store is, for messages: `store.sqlite` in the home, or the PostgreSQL URL.
    pub fn store_path(&self) -> PathBuf {
        match &self.config.settings.store {
            Some(url) => PathBuf::from(url),
            None => self.home.join(STORE_FILE),
        }
    }

    /// Open the store (applying migrations): the PostgreSQL database `settings.store` names,
    /// else `store.sqlite`. A wait for a busy SQLite store is reported to the site's progress
    /// reporter.
    pub fn store(&self) -> Result<Store> {
        match &self.config.settings.store {
            Some(url) => {
                Store::connect_with_password_file(&self.store_url(url), self.store_password_file())
            }
            None => Store::open_reporting(&self.store_path(), self.progress.clone()),
        }
    }

    /// A PostgreSQL store's address as this home reads it: a relative `sslrootcert` names a
    /// file in the home (which a copy of the home carries along).
    pub fn store_url(&self, url: &str) -> String {
        #[cfg(feature = "postgres")]
        {
            crate::store::root_cert_in(url, &self.home)
        }
        #[cfg(not(feature = "postgres"))]
        {
            url.to_string()
        }
    }

    /// Read a PostgreSQL store's password from `file` (first line) from now on.
    pub fn with_store_password_file(mut self, file: Option<PathBuf>) -> Site {
        if file.is_some() {
            self.store_password_file = file;
        }
        self
    }

    /// From now on this central's store is the PostgreSQL database at `url` (courier.json
    /// rewritten; `store migrate --switch`). The SQLite file stays where it is.
    pub fn switch_store(&mut self, url: &str) -> Result<()> {
        crate::store::check_store_url(url)?;
        let mut config = self.config.clone();
        config.settings.store = Some(url.to_string());
        let json = serde_json::to_vec_pretty(&config).map_err(Error::Encode)?;
        write_atomic(&self.home.join(CONFIG_FILE), &json)?;
        self.config = config;
        Ok(())
    }

    /// The PostgreSQL password's file this site was told about, if any.
    pub fn store_password_file(&self) -> Option<&Path> {
        self.store_password_file.as_deref()
    }

    /// Report long work and waits to `progress` from now on.
    pub fn with_progress(mut self, progress: progress::Reporter) -> Site {
        self.progress = progress;
        self
    }

    /// The site's progress reporter.
    pub fn progress(&self) -> &dyn Progress {
        &*self.progress
    }

    pub fn packages_dir(&self) -> PathBuf {
        self.home.join("packages")
    }

    /// The stored file of a package held by content hash.
    pub fn package_path(&self, sha256: &str) -> PathBuf {
        self.packages_dir().join(format!("{sha256}.zip"))
    }

    fn stored_key(&self) -> Result<openpgp_cert::Cert> {
        let path = self.home.join(KEY_FILE);
        let bytes = fs::read(&path).at(&path)?;
        crypto::parse_cert(&bytes)
    }

    /// The site's public certificate.
    pub fn certificate(&self) -> Result<openpgp_cert::Cert> {
        Ok(self.stored_key()?.strip_secret_key_material())
    }

    /// The site's secret key, unlocked with the passphrase when it is protected; it decrypts
    /// also with the keys it replaced (`keys rotate`).
    pub fn secret_key(&self) -> Result<SecretKey> {
        let cert = self.stored_key()?;
        let key =
            SecretKey::unlock(cert, self.passphrase.get()).map_err(|e| self.unlock_error(e))?;
        let retired = self
            .retired_key_files()?
            .iter()
            .map(|p| crypto::parse_cert(&fs::read(p).at(p)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(key.with_retired(retired))
    }

    /// The files of the keys this site replaced, sorted.
    fn retired_key_files(&self) -> Result<Vec<PathBuf>> {
        let dir = self.home.join(RETIRED_DIR);
        let entries = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        let mut files = Vec::new();
        for e in entries {
            let p = e.at(&dir)?.path();
            if p.extension().is_some_and(|x| x == "asc") {
                files.push(p);
            }
        }
        files.sort();
        Ok(files)
    }

    /// Fingerprints of the keys this site replaced: bundles still in transit to one of
    /// them are for this site.
    pub fn retired_fingerprints(&self) -> Result<Vec<String>> {
        Ok(self
            .retired_key_files()?
            .iter()
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect())
    }

    /// The public certificate of a key this site replaced, by fingerprint.
    pub fn retired_certificate(&self, fingerprint: &str) -> Result<Option<openpgp_cert::Cert>> {
        if fingerprint.len() != 40 || !fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None); // never a path from what a file says
        }
        let path = self
            .home
            .join(RETIRED_DIR)
            .join(format!("{fingerprint}.asc"));
        match fs::read(&path) {
            Ok(b) => Ok(Some(crypto::parse_cert(&b)?.strip_secret_key_material())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// The user id of a new key of this site (as `init` makes it).
    pub fn userid(&self) -> String {
        userid(
            self.config.role,
            self.config.name.as_deref(),
            self.config.org_id.as_deref(),
        )
    }

    /// `keys rotate`, the files: the current key is kept under `retired-keys/` (decryption
    /// only), `new` becomes the site's key and its fingerprint the config's. The caller
    /// commits the store's part after this returns.
    pub fn install_new_key(&mut self, new: &crypto::Cert) -> Result<()> {
        let old = self.stored_key()?;
        let dir = self.home.join(RETIRED_DIR);
        private_dir(&dir)?;
        let kept = dir.join(format!("{}.asc", crypto::fingerprint(&old)));
        write_atomic(&kept, &crypto::armor_secret(&old)?)?;
        private_file(&kept)?;
        write_atomic(&self.home.join(KEY_FILE), &crypto::armor_secret(new)?)?;
        private_file(&self.home.join(KEY_FILE))?;
        let mut config = self.config.clone();
        config.fingerprint = crypto::fingerprint(new);
        let json = serde_json::to_vec_pretty(&config).map_err(Error::Encode)?;
        write_atomic(&self.home.join(CONFIG_FILE), &json)?;
        self.config = config;
        Ok(())
    }

    /// The passphrase this site was opened with.
    pub fn passphrase(&self) -> Option<&str> {
        self.passphrase.get()
    }

    /// `keys passwd`: re-protect every secret key with `new` (or store it unprotected when
    /// `None`), unlocking it with the site's current passphrase. The key file is replaced
    /// atomically and the change is recorded in the history (no secret in it); on any
    /// refusal (passphrase needed or wrong) the key file is left as it was.
    pub fn change_passphrase(&self, new: Option<&str>) -> Result<PassphraseChange> {
        let cert = self.stored_key()?;
        let was = SecretKey::is_protected(&cert);
        let cert = crypto::reprotect(cert, self.passphrase.get(), new)
            .map_err(|e| self.unlock_error(e))?;
        let now = SecretKey::is_protected(&cert);
        // Prove the rewritten key opens with the new passphrase before replacing the old one.
        SecretKey::unlock(cert.clone(), new).map_err(|e| self.unlock_error(e))?;
        let change = PassphraseChange { was, now };
        // The keys it replaced are protected alike (they were, with the same passphrase).
        let mut retired = Vec::new();
        for p in self.retired_key_files()? {
            let old = crypto::parse_cert(&fs::read(&p).at(&p)?)?;
            let old = crypto::reprotect(old, self.passphrase.get(), new)
                .map_err(|e| self.unlock_error(e))?;
            retired.push((p, old));
        }
        let mut store = self.store()?;
        let tx = store.begin()?;
        tx.add_history(crate::store::NewHistory {
            action: "keys-passwd",
            org_id: self.config.org_id.as_deref(),
            bundle_id: None,
            kind: None,
            seq: None,
            status: "success",
            counts: serde_json::json!({}),
            report: change.describe(),
        })?;
        write_atomic(&self.home.join(KEY_FILE), &crypto::armor_secret(&cert)?)?;
        private_file(&self.home.join(KEY_FILE))?;
        for (p, old) in retired {
            write_atomic(&p, &crypto::armor_secret(&old)?)?;
            private_file(&p)?;
        }
        tx.commit()?;
        Ok(change)
    }

    fn unlock_error(&self, e: UnlockError) -> Error {
        match e {
            UnlockError::PassphraseNeeded => Error::PassphraseNeeded {
                home: self.home.clone(),
            },
            UnlockError::WrongPassphrase => Error::WrongPassphrase {
                home: self.home.clone(),
            },
            UnlockError::Other(what) => Error::KeyUnusable { what },
        }
    }

    /// The stored secret key as written (still passphrase-protected when it is).
    pub fn secret_key_armored(&self) -> Result<Vec<u8>> {
        crypto::armor_secret(&self.stored_key()?)
    }
}

/// What `keys passwd` did: whether the secret key was protected before, and is now.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PassphraseChange {
    pub was: bool,
    pub now: bool,
}

impl PassphraseChange {
    /// One line for the history and the operator.
    pub fn describe(&self) -> String {
        match (self.was, self.now) {
            (false, true) => "passphrase added to the secret key",
            (true, true) => "passphrase of the secret key changed",
            (true, false) => "passphrase removed: the secret key is stored unprotected",
            (false, false) => "the secret key is stored unprotected (it was already)",
        }
        .to_string()
    }
}

/// The user id of a site's key: `courier central NAME` or `courier center ORG`.
fn userid(role: Role, name: Option<&str>, org: Option<&str>) -> String {
    match role {
        Role::Central => format!("courier central {}", name.unwrap_or("")),
        Role::Center => format!("courier center {}", org.unwrap_or("")),
    }
}

/// Re-export so callers need not name sequoia.
pub mod openpgp_cert {
    pub use crate::crypto::Cert;
}

/// Create `dir` (and missing parents) readable by its owner only; an existing folder is left
/// as it is (`Site::exposed` reports it when others can read it).
fn private_dir(dir: &Path) -> Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).at(dir)
}

/// Make a file of the home readable and writable by its owner only.
pub(crate) fn private_file(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).at(path)?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Refuse to replace an existing output file unless `force` is given: output files are
/// never overwritten silently.
pub fn check_output(path: &Path, force: bool) -> Result<()> {
    if !force && path.exists() {
        return Err(Error::OutputExists {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// The largest file FAT32 can hold (4 GiB − 1 byte).
pub const FAT32_MAX_FILE: u64 = (4 << 30) - 1;

/// A warning when a `--max-file-size` would not fit on a FAT32 stick.
pub fn max_file_size_warning(size: u64) -> Option<String> {
    (size > FAT32_MAX_FILE).then(|| {
        format!(
            "--max-file-size {size} bytes is above FAT32's limit of 4 GiB - 1 byte: a FAT32 stick (the usual format) cannot hold such files; use 4000M or less, unless the stick is exFAT or NTFS"
        )
    })
}

/// Parse a size such as `65536`, `64K`, `10M`, `4G` (binary multiples; `KiB`, `MB` also read).
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| Error::Usage {
        what: format!("'{s}' is not a size (e.g. 64K, 10M, 4G)"),
    })?;
    let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => {
            return Err(Error::Usage {
                what: format!("'{s}' is not a size (e.g. 64K, 10M, 4G)"),
            })
        }
    };
    n.checked_mul(mult).ok_or_else(|| Error::Usage {
        what: format!("'{s}' is too large"),
    })
}
/// Check an organisation id: short, alphanumeric with `.`, `_`, `-`.
pub fn check_org_id(org: &str) -> Result<()> {
    let ok = !org.is_empty()
        && org.len() <= 64
        && org
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && org
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage {
            what: format!(
                "'{org}' is not an organisation id (letters, digits, '.', '_', '-'; at most 64)"
            ),
        })
    }
}
/// The store's record of a bundle, from its header: `site` is the one room that knows both
/// the bundle format and the store.
pub fn bundle_record(h: &crate::bundle::Header) -> crate::store::BundleRecord<'_> {
    crate::store::BundleRecord {
        bundle_id: &h.bundle_id,
        kind: h.kind.as_str(),
        sender: &h.sender.fingerprint,
        recipient: &h.recipient.fingerprint,
        org_id: &h.org_id,
        sequence: h.sequence,
        set_id: &h.set.id,
        set_index: h.set.index,
        set_count: h.set.count,
        payload_size: h.payload.length,
    }
}

/// `init central --store URL` starts a new central: a database already holding one (its
/// history, centres or entities) is refused, so two centrals never share one store. Another
/// host joins an existing central by copying its home's key and courier.json instead.
fn refuse_database_in_use(store: &mut Store, url: &str) -> Result<()> {
    let tx = store.read()?;
    let holds = if let Some(head) = tx.history_head()? {
        Some(format!("a history up to row {}", head.n))
    } else if !tx.centers()?.is_empty() {
        Some("registered centres".to_string())
    } else if !tx.inventory()?.is_empty() {
        Some("entities".to_string())
    } else {
        None
    };
    match holds {
        Some(what) => Err(Error::Usage {
            what: format!(
                "{url}: the database already holds a central's store ({what}); init central needs an empty database (create one, e.g. createdb), and another host joins an existing central by copying its home's courier.json and key"
            ),
        }),
        None => Ok(()),
    }
}
