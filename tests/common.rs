//! Test harness: run the real `courier` binary against temporary homes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A path as a command-line argument (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The fixtures folder of the project.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Without a terminal, progress lines come every few seconds; tests count records
/// instead (a line every this many), so what stderr holds never depends on speed.
const PROGRESS_EVERY: (&str, &str) = ("COURIER_PROGRESS_EVERY", "1000000000");

/// Run `courier --home HOME ARGS...`.
pub fn courier(home: &Path, args: &[&str]) -> Output {
    courier_env(home, args, &[])
}

/// Run courier with extra environment variables.
pub fn courier_env(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_courier"));
    c.arg("--home")
        .arg(home)
        .args(args)
        .env_remove("COURIER_HOME")
        .env_remove("COURIER_PASSPHRASE")
        .env(PROGRESS_EVERY.0, PROGRESS_EVERY.1);
    for (k, v) in env {
        c.env(k, v);
    }
    if args.starts_with(&["init", "central"]) && !args.contains(&"--store") {
        if let Some(url) = central_store_url() {
            c.args(["--store", &url]);
        }
    }
    c.output().expect("courier runs")
}

/// With `COURIER_TEST_CENTRAL_STORE=postgres`, every central the tests create keeps its store
/// in a fresh database (`t_N`) of one PostgreSQL cluster shared by the test process: the
/// scenarios run against both backends. The cluster is started on first use and, since a
/// static is never dropped, a watcher process stops it and removes its folder once the test
/// process has exited ([`PgCluster::stop_after_exit`]).
pub fn central_on_postgres() -> bool {
    std::env::var("COURIER_TEST_CENTRAL_STORE").as_deref() == Ok("postgres")
}

static CENTRAL_CLUSTER: std::sync::OnceLock<PgCluster> = std::sync::OnceLock::new();

/// The store URL for a new central: a new database when centrals run on PostgreSQL.
fn central_store_url() -> Option<String> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    if !central_on_postgres() {
        return None;
    }
    let pg = CENTRAL_CLUSTER.get_or_init(|| {
        let pg = PgCluster::start()
            .unwrap_or_else(|why| panic!("COURIER_TEST_CENTRAL_STORE=postgres: {why}"));
        pg.stop_after_exit();
        pg
    });
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    pg.psql("postgres", &format!("CREATE DATABASE t_{n}"))
        .expect("a database for a central");
    Some(format!("postgres://courier@127.0.0.1:{}/t_{n}", pg.port))
}

/// SQL on the PostgreSQL database a central's courier.json names, if it names one.
pub fn central_psql(home: &Path, sql: &str) -> Option<String> {
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.join("courier.json")).ok()?).ok()?;
    let url = config["settings"]["store"].as_str()?;
    let db = url.rsplit('/').next()?;
    Some(CENTRAL_CLUSTER.get()?.psql(db, sql).expect("psql"))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Assert success and return stdout.
#[track_caller]
pub fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "courier failed ({:?}):\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// Assert a refusal with exit code `code` whose stderr contains `needle`; returns stderr.
#[track_caller]
pub fn refused(o: Output, code: i32, needle: &str) -> String {
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(code),
        "expected exit {code}, got {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(&o),
        err
    );
    assert!(
        err.contains(needle),
        "stderr does not mention {needle:?}:\n{err}"
    );
    err
}

/// A central and two enrolled centres (ORG-001, ORG-002) in a temporary folder.
pub struct World {
    pub dir: tempfile::TempDir,
    pub central: PathBuf,
    pub a: PathBuf,
    pub b: PathBuf,
}

impl World {
    /// Sites created, not enrolled.
    pub fn new() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let central = dir.path().join("central");
        let a = dir.path().join("center-a");
        let b = dir.path().join("center-b");
        ok(courier(&central, &["init", "central", "--name", "Central"]));
        ok(courier(&a, &["init", "center", "--org", "ORG-001"]));
        ok(courier(&b, &["init", "center", "--org", "ORG-002"]));
        World { dir, central, a, b }
    }

    /// Sites created and both centres enrolled.
    pub fn enrolled() -> World {
        let w = World::new();
        w.enroll(&w.a, "ORG-001");
        w.enroll(&w.b, "ORG-002");
        w
    }

    /// Both centres enrolled, the fixture data loaded at central, exported to each centre
    /// and applied there: the state of an exam day's morning.
    pub fn synced() -> World {
        let w = World::enrolled();
        w.load_fixtures();
        for (home, org) in [(&w.a, "ORG-001"), (&w.b, "ORG-002")] {
            let files = w.export_down(org, &format!("down-{org}"));
            assert_eq!(files.len(), 1, "{org}: one data bundle: {files:?}");
            for f in files {
                ok(courier(home, &["import", f.to_str().unwrap()]));
            }
        }
        w
    }

    /// A path inside the world's folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Fingerprint of a site.
    pub fn fingerprint(&self, home: &Path) -> String {
        let out = ok(courier(home, &["keys", "show", "--json"]));
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        v["fingerprint"].as_str().expect("fingerprint").to_string()
    }

    /// Run the whole handshake for one centre.
    pub fn enroll(&self, center: &Path, org: &str) {
        handshake(&self.central, center, org, self.dir.path());
    }

    /// Load the fixture data set at central.
    pub fn load_fixtures(&self) {
        let f = fixtures().join("data/central.jsonl");
        ok(courier(&self.central, &["load", f.to_str().unwrap()]));
    }

    /// Central exports for `org` into a fresh folder; returns the files written.
    pub fn export_down(&self, org: &str, folder: &str) -> Vec<PathBuf> {
        let dir = self.path(folder);
        ok(courier(
            &self.central,
            &["export", "--to", org, "--out", dir.to_str().unwrap()],
        ));
        bundles_in(&dir)
    }

    /// A centre exports for central into a fresh folder; returns the files written.
    pub fn export_up(&self, center: &Path, folder: &str, extra: &[&str]) -> Vec<PathBuf> {
        let dir = self.path(folder);
        let mut args = vec!["export", "--out", dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        ok(courier(center, &args));
        bundles_in(&dir)
    }
}

/// The bundle files in a folder, sorted.
pub fn bundles_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "courier"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Every row of every table of a site's store, as sorted text: equal snapshots mean an
/// unchanged store. `history` is left out only when `with_history` is false.
pub fn snapshot(home: &Path, with_history: bool) -> String {
    let skip: &[&str] = if with_history {
        &[]
    } else {
        &["history", "entity_history"]
    };
    if let Some(tables) = central_psql(
        home,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    ) {
        // A central on PostgreSQL: every table's rows, in a stable order, as psql shows them.
        let mut dump = String::new();
        for t in tables.lines().filter(|t| !skip.contains(t)) {
            let rows = central_psql(home, &format!("SELECT * FROM {t} ORDER BY {t}::text"));
            dump.push_str(&format!("== {t}\n{}", rows.unwrap_or_default()));
        }
        return dump;
    }
    dump_store(&home.join("store.sqlite"), skip, &[])
}

/// Every row of every table of the store at `db` but `skip_tables`, sorted, each value
/// named by its column, columns in `skip_columns` left out.
pub fn dump_store(db: &Path, skip_tables: &[&str], skip_columns: &[&str]) -> String {
    let conn = rusqlite::Connection::open(db).expect("store opens");
    let mut tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables.retain(|t| !skip_tables.contains(&t.as_str()));
    let mut out = String::new();
    for t in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let names: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                let mut line = String::new();
                for (i, c) in names.iter().enumerate() {
                    if !skip_columns.contains(&c.as_str()) {
                        let v: rusqlite::types::Value = r.get(i)?;
                        line.push_str(&format!("{c}={v:?}|"));
                    }
                }
                Ok(line)
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.sort();
        out.push_str(&format!("== {t}\n{}\n", rows.join("\n")));
    }
    out
}

/// Number of rows in a table of a site's store.
pub fn count(home: &Path, table: &str) -> i64 {
    if let Some(n) = central_psql(home, &format!("SELECT COUNT(*) FROM {table}")) {
        return n.trim().parse().expect("a count");
    }
    let conn = rusqlite::Connection::open(home.join("store.sqlite")).expect("store opens");
    conn.query_row(&format!("SELECT COUNT(*) FROM \"{table}\""), [], |r| {
        r.get(0)
    })
    .unwrap()
}

/// Parse `list --json` of a site.
pub fn list(home: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let mut a = vec!["list", "--json"];
    a.extend_from_slice(args);
    serde_json::from_str(&ok(courier(home, &a))).expect("list json")
}

/// Parse `results list --json` of a centre.
pub fn results_list(home: &Path) -> Vec<serde_json::Value> {
    serde_json::from_str(&ok(courier(home, &["results", "list", "--json"]))).expect("results json")
}

/// The enrollment handshake between two homes, with files in `work`: `center add`, `enroll`
/// with central's fingerprint, the reply imported at central.
pub fn handshake(central: &Path, center: &Path, org: &str, work: &Path) {
    let file = work.join(format!("enroll-{org}.json"));
    let replies = work.join(format!("replies-{org}"));
    ok(courier(
        central,
        &[
            "center",
            "add",
            org,
            "--label",
            org,
            "--out",
            file.to_str().unwrap(),
        ],
    ));
    let v: serde_json::Value =
        serde_json::from_str(&ok(courier(central, &["keys", "show", "--json"]))).unwrap();
    let fpr = v["fingerprint"].as_str().expect("fingerprint");
    ok(courier(
        center,
        &[
            "enroll",
            file.to_str().unwrap(),
            "--expect-fingerprint",
            fpr,
            "--out",
            replies.to_str().unwrap(),
        ],
    ));
    ok(courier(central, &["import", replies.to_str().unwrap()]));
}

/// Every file under a folder, recursively, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A dishonest enrolled centre: it holds its own keys and central's certificate, and signs
/// and seals whatever payload it likes. The bundles it writes pass every envelope check, so
/// what they *say* is what central must judge.
pub struct Forger {
    site: courier::site::Site,
    central: courier::site::openpgp_cert::Cert,
    central_fpr: String,
}

/// What a forged results bundle claims in its header.
pub struct Claim {
    pub bundle_id: String,
    pub org_id: String,
    pub sequence: u64,
}

impl Forger {
    /// The centre at `home`, enrolled with a central.
    pub fn new(home: &Path) -> Forger {
        let site = courier::site::Site::open(home, courier::site::Passphrase::none())
            .expect("centre site opens");
        let (central_fpr, armored) = {
            let mut store = site.store().expect("store");
            let tx = store.read().expect("read");
            tx.peer_by_role("central")
                .map(|p| p.map(|p| (p.fingerprint, p.cert)))
                .expect("peers")
                .expect("the centre is enrolled")
        };
        let central = courier::crypto::parse_cert(armored.as_bytes()).expect("central cert");
        Forger {
            site,
            central,
            central_fpr,
        }
    }

    /// The header a centre would honestly write next (fresh id, its own org).
    pub fn claim(&self, sequence: u64) -> Claim {
        Claim {
            bundle_id: courier::bundle::new_id(),
            org_id: self.site.config.org_id.clone().expect("a centre"),
            sequence,
        }
    }

    /// A result sealed to central, as a centre keeps it: (meta JSON, sealed bytes).
    pub fn seal_result(
        &self,
        result: &serde_json::Value,
        revision: i64,
        resync: bool,
    ) -> (serde_json::Value, Vec<u8>) {
        let plain = serde_json::to_vec(result).unwrap();
        self.seal_result_bytes(result, &plain, revision, resync)
    }

    /// Like [`Forger::seal_result`] with any plaintext (ids taken from `result`).
    pub fn seal_result_bytes(
        &self,
        result: &serde_json::Value,
        plain: &[u8],
        revision: i64,
        resync: bool,
    ) -> (serde_json::Value, Vec<u8>) {
        use sha2::Digest;
        let meta = serde_json::json!({
            "execution_id": result["deliveryExecutionId"],
            "delivery_id": result["deliveryId"],
            "test_taker": result["details"]["test-taker"],
            "state": result["details"]["state"],
            "revision": revision,
            "content_sha256": hex::encode(sha2::Sha256::digest(plain)),
            "size": plain.len(),
            "resync": resync,
        });
        let sealed = courier::results::seal_for_central(&self.central, plain).expect("seal");
        (meta, sealed)
    }

    /// Logs sealed to central: (meta JSON, sealed bytes).
    pub fn seal_logs(
        &self,
        batch_id: &str,
        execution_id: &str,
        logs: &[serde_json::Value],
    ) -> (serde_json::Value, Vec<u8>) {
        let plain = serde_json::to_vec(logs).unwrap();
        let meta = serde_json::json!({
            "batch_id": batch_id,
            "execution_id": execution_id,
            "count": logs.len(),
            "size": plain.len(),
        });
        let sealed = courier::results::seal_for_central(&self.central, &plain).expect("seal");
        (meta, sealed)
    }

    /// Write a results bundle with exactly these payload entries into `out` (a file path).
    pub fn results_bundle(&self, out: &Path, claim: &Claim, entries: &[(String, Vec<u8>)]) {
        let key = self.site.secret_key().expect("secret key");
        self.results_bundle_signed(out, claim, &key, Vec::new(), entries);
    }

    /// Like [`Forger::results_bundle`], signed by `key` (whatever key it is), with these
    /// rollover statements in the header.
    pub fn results_bundle_signed(
        &self,
        out: &Path,
        claim: &Claim,
        key: &courier::crypto::SecretKey,
        rollover: Vec<courier::bundle::RolloverStatement>,
        entries: &[(String, Vec<u8>)],
    ) {
        use courier::bundle::{self, SetRef, Spec};
        let spec = Spec {
            bundle_id: claim.bundle_id.clone(),
            rollover,
            ..Spec::results(
                &key.fingerprint(),
                &self.central_fpr,
                &claim.org_id,
                claim.sequence,
                SetRef::single(),
            )
        };
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        let (w, ()) = bundle::write(out, spec, key, &self.central, |p| {
            for (name, bytes) in entries {
                p.add_bytes(name, bytes)?;
            }
            Ok(())
        })
        .expect("bundle written");
        w.persist().expect("persisted");
    }

    /// Results entries for `results_bundle`: meta then sealed blob, numbered from 0.
    pub fn result_entries(sealed: &[(serde_json::Value, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for (k, (meta, blob)) in sealed.iter().enumerate() {
            out.push((
                format!("results/{k:06}.json"),
                serde_json::to_vec(meta).unwrap(),
            ));
            out.push((format!("results/{k:06}.pgp"), blob.clone()));
        }
        out
    }
}

/// Copy a folder tree (a site's home, a stick of bundles).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// Every bundle (`*.courier`) under `dir`, at any depth, sorted.
pub fn bundles_under(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "courier"))
        .collect()
}

/// `courier import FILE` at `home` is refused with exit 1, one line naming the file and
/// mentioning `needle`, and the store is unchanged (history included).
pub fn import_refused(home: &Path, file: &Path, needle: &str) -> String {
    let before = snapshot(home, true);
    let err = refused(courier(home, &["import", s(file)]), 1, needle);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains(file.file_name().unwrap().to_str().unwrap()),
        "names the file: {err}"
    );
    assert_eq!(
        snapshot(home, true),
        before,
        "store changed by a refused import"
    );
    err
}

/// `center reenroll ORG --label "new PC" --out FILE` at central: its output.
pub fn reenroll(central: &Path, org: &str, out: &Path) -> String {
    ok(courier(
        central,
        &[
            "center",
            "reenroll",
            org,
            "--label",
            "new PC",
            "--out",
            s(out),
        ],
    ))
}

/// A throwaway PostgreSQL cluster for the `postgres::` tests: `initdb` and `pg_ctl` on a free
/// port under a temporary folder, run as `nobody` when the tests run as root (initdb refuses
/// root). Stopped and removed when dropped, also when a test panics.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Who runs the server: `None` for the current user.
    as_user: Option<&'static str>,
    pub port: u16,
}

/// The folder holding PostgreSQL's programs (initdb, pg_ctl and psql side by side): `PG_BIN`,
/// then the PATH, then Debian's /usr/lib/postgresql/VERSION/bin (newest first). An `initdb` on the
/// PATH that is a link (some images link initdb and pg_ctl into /usr/local/bin, without psql)
/// stands for the folder it points into. `None` when PostgreSQL is not installed.
fn pg_bin() -> Option<PathBuf> {
    let programs = ["initdb", "pg_ctl", "psql"];
    let has = |d: &Path| programs.iter().all(|p| d.join(p).is_file());
    if let Some(d) = std::env::var_os("PG_BIN").map(PathBuf::from) {
        return has(&d).then_some(d);
    }
    let real = |d: PathBuf| {
        std::fs::canonicalize(d.join("initdb"))
            .ok()
            .and_then(|f| f.parent().map(Path::to_path_buf))
            .unwrap_or(d)
    };
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(real).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    debian.sort_by_key(|d| {
        std::cmp::Reverse(
            d.parent()
                .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok()),
        )
    });
    on_path.into_iter().chain(debian).find(|d| has(d))
}

/// A server certificate (with its chain, PEM) and its private key (PEM), for a cluster that
/// speaks TLS.
pub struct ServerTls {
    pub cert_pem: String,
    pub key_pem: String,
}

impl PgCluster {
    /// Start a cluster with a database `courier` owned by the user `courier` (trust
    /// authentication on 127.0.0.1), or say why it cannot: PostgreSQL is not installed.
    pub fn start() -> Result<PgCluster, String> {
        PgCluster::start_with(None)
    }

    /// [`PgCluster::start`], and with `tls` the server speaks TLS with that certificate
    /// (`ssl = on`): connections over TCP must then use it (`hostssl`), except to the
    /// database `plain`, which takes only connections without it (`hostnossl`).
    pub fn start_with(tls: Option<&ServerTls>) -> Result<PgCluster, String> {
        let bin = pg_bin().ok_or(
            "PostgreSQL is not installed (no initdb, pg_ctl and psql on the PATH, \
             in PG_BIN or under /usr/lib/postgresql); .ci/run installs Debian's postgresql",
        )?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let as_user = is_root().then_some("nobody");
        if as_user.is_some() {
            std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534))
                .map_err(|e| format!("cannot hand {} to nobody: {e}", dir.path().display()))?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let cluster = PgCluster {
            dir,
            bin,
            as_user,
            port,
        };
        let data = cluster.dir.path().join("data");
        cluster.run(
            "initdb",
            &[
                "-D",
                s(&data),
                "-A",
                "trust",
                "-U",
                "courier",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )?;
        let mut opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            s(cluster.dir.path())
        );
        if let Some(tls) = tls {
            opts.push_str(&cluster.tls_files(tls)?);
        }
        let log = cluster.dir.path().join("server.log");
        cluster.run(
            "pg_ctl",
            &["-D", s(&data), "-o", &opts, "-l", s(&log), "-w", "start"],
        )?;
        cluster.psql("postgres", "CREATE DATABASE courier")?;
        if tls.is_some() {
            cluster.psql("postgres", "CREATE DATABASE plain")?;
        }
        Ok(cluster)
    }

    /// Write the server's certificate and key beside the data folder, and a pg_hba.conf that
    /// wants TLS over TCP (but for the database `plain`); the server's options that use them.
    fn tls_files(&self, tls: &ServerTls) -> Result<String, String> {
        use std::os::unix::fs::PermissionsExt;
        let cert = self.dir.path().join("server.crt");
        let key = self.dir.path().join("server.key");
        let hba = self.dir.path().join("data/pg_hba.conf");
        let rules = "local all all trust\n\
                     hostssl all all 127.0.0.1/32 trust\n\
                     hostnossl plain all 127.0.0.1/32 trust\n";
        for (file, text) in [
            (&cert, &tls.cert_pem),
            (&key, &tls.key_pem),
            (&hba, &rules.into()),
        ] {
            std::fs::write(file, text).map_err(|e| format!("{}: {e}", file.display()))?;
            // The server refuses a key others may read; it runs as nobody when we are root.
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| e.to_string())?;
            if self.as_user.is_some() {
                std::os::unix::fs::chown(file, Some(65534), Some(65534))
                    .map_err(|e| format!("cannot hand {} to nobody: {e}", file.display()))?;
            }
        }
        Ok(format!(
            " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            s(&cert),
            s(&key)
        ))
    }

    /// The cluster's folder (data, socket, server log).
    pub fn dir_path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// The connection string of the cluster's `courier` database.
    pub fn url(&self) -> String {
        format!("postgres://courier@127.0.0.1:{}/courier", self.port)
    }

    /// Run one SQL command with psql on database `db`; its output (unaligned, no headers).
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let port = self.port.to_string();
        self.run(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "courier",
                "-d",
                db,
                "-XAtq",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        )
    }

    /// Run one of PostgreSQL's programs as the cluster's user; its stdout, or what failed.
    fn run(&self, program: &str, args: &[&str]) -> Result<String, String> {
        let exe = self.bin.join(program);
        let mut c = match self.as_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let out = c
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .map_err(|e| format!("{program} does not run: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{program} {args:?} failed: {}{}",
                stdout(&out),
                stderr(&out)
            ));
        }
        Ok(stdout(&out))
    }
}

impl PgCluster {
    /// For a cluster kept in a static (never dropped): a watcher process waits for this
    /// process to end, then stops the server and removes its folder.
    fn stop_after_exit(&self) {
        let data = self.dir.path().join("data");
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = match self.as_user {
            Some(user) => format!("runuser -u {user} -- '{}'", pg_ctl.display()),
            None => format!("'{}'", pg_ctl.display()),
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} -D '{data}' -m immediate -w stop; rm -rf '{dir}'",
            pid = std::process::id(),
            data = data.display(),
            dir = self.dir.path().display(),
        );
        // Never waited for: it outlives this process on purpose.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the cluster's watcher starts");
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = self.run("pg_ctl", &["-D", s(&data), "-m", "immediate", "-w", "stop"]);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A PostgreSQL cluster for a `postgres::` test, or `None` after saying on stderr why the test is
/// skipped. Under CI (`CI=true`, where .ci/run installs PostgreSQL) a missing server fails.
pub fn pg_cluster(test: &str) -> Option<PgCluster> {
    pg_cluster_with(test, None)
}

/// [`pg_cluster`], speaking TLS with `tls` ([`PgCluster::start_with`]).
pub fn pg_cluster_with(test: &str, tls: Option<&ServerTls>) -> Option<PgCluster> {
    match PgCluster::start_with(tls) {
        Ok(c) => Some(c),
        Err(why) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("SKIPPED {test}: {why}");
            None
        }
        Err(why) => panic!("{test}: {why}"),
    }
}

/// Central's id for a centre's execution, computed here as docs/FORMAT.md states it (the
/// first 32 hex digits of SHA-256 of `org LF execution id`), not by courier's own function.
pub fn central_execution_id(org: &str, execution: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{org}\n{execution}").as_bytes());
    format!("urn:courier:execution:{}", &hex::encode(digest)[..32])
}
