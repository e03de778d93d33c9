//! The address of central's PostgreSQL store ([`parse_url`]; its TLS options are
//! [`super::tls`]'s), and where its password comes from. Never from the store's
//! address: that is saved in courier.json, so an address holding a password is refused. In
//! order: the first line of `--store-password-file`, then `PGPASSWORD`, then the line of the
//! password file (`PGPASSFILE`, else `~/.pgpass`) that matches the address, as libpq reads
//! it; no password at all is fine for servers that trust or use peer authentication.

use std::path::{Path, PathBuf};

use postgres::config::Host;

use super::tls::{self, TlsChoice};
use crate::error::{Error, Result};

/// libpq's default port, and the host name a password file uses for a local socket.
const DEFAULT_PORT: u16 = 5432;
const LOCAL: &str = "localhost";
/// Debian's (and libpq's usual) socket folders: a connection through one of them matches the
/// password file's `localhost`.
const DEFAULT_SOCKET_DIRS: &[&str] = &["/var/run/postgresql", "/run/postgresql", "/tmp"];

/// The password for the store at `url`: `password_file`'s first line when given, else
/// `PGPASSWORD`, else the matching line of `PGPASSFILE` or `~/.pgpass` (ignored unless only
/// its owner may read it, as libpq does). `None`: connect without one. An address holding a
/// password is refused.
pub fn password_for(url: &str, password_file: Option<&Path>) -> Result<Option<String>> {
    let config = parse_url(url)?.config;
    let env_password = std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty());
    let pgpass = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pgpass")));
    password_from(&config, password_file, env_password, pgpass.as_deref())
}

/// [`password_for`] with the environment read by the caller.
fn password_from(
    config: &postgres::Config,
    password_file: Option<&Path>,
    env_password: Option<String>,
    pgpass: Option<&Path>,
) -> Result<Option<String>> {
    if let Some(file) = password_file {
        return first_line(file).map(Some);
    }
    if env_password.is_some() {
        return Ok(env_password);
    }
    let Some(pgpass) = pgpass.filter(|f| owner_only(f)) else {
        return Ok(None);
    };
    match std::fs::read_to_string(pgpass) {
        Ok(text) => Ok(pgpass_lookup(&text, &Target::of(config))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::input(pgpass, &e)),
    }
}

/// A store's address, parsed: what the `postgres` crate connects with, and how the
/// connection is protected.
#[derive(Debug)]
pub(super) struct Address {
    pub config: postgres::Config,
    pub tls: TlsChoice,
}

/// Parse a store's address (`postgres://USER@HOST[:PORT]/DB[?sslmode=..&sslrootcert=..]`, or
/// libpq's `key=value` form), refusing one that holds a password. `sslmode` and
/// `sslrootcert` are courier's to read ([`super::tls`]); the rest is the `postgres` crate's.
pub(super) fn parse_url(url: &str) -> Result<Address> {
    let tls::Split { rest, mode, root } = tls::split(url);
    let config: postgres::Config = rest.parse().map_err(|e| Error::Usage {
        what: format!(
            "{}: not a PostgreSQL address ({e}); write it as postgres://USER@HOST[:PORT]/DATABASE",
            redact(url)
        ),
    })?;
    if config.get_password().is_some() {
        return Err(Error::PasswordInStoreUrl { url: redact(url) });
    }
    let tls = tls::choose(url, &config, mode.as_deref(), root.as_deref())?;
    Ok(Address { config, tls })
}

/// The address with any password in it replaced by `***`, for messages.
fn redact(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme) = out.find("://") {
        let from = scheme + 3;
        let to = out[from..].find(['/', '?']).map_or(out.len(), |i| from + i);
        if let Some(at) = out[from..to].rfind('@') {
            if let Some(colon) = out[from..from + at].find(':') {
                out.replace_range(from + colon + 1..from + at, "***");
            }
        }
    }
    if let Some(key) = out.find("password=") {
        let from = key + "password=".len();
        let to = out[from..].find(['&', ' ']).map_or(out.len(), |i| from + i);
        out.replace_range(from..to, "***");
    }
    out
}

/// The first line of a password file, without its line end; an empty one is refused.
fn first_line(file: &Path) -> Result<String> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::input(file, &e))?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        return Err(Error::Config {
            path: file.to_path_buf(),
            what: "the first line is empty; write the store's password on it".to_string(),
        });
    }
    Ok(line.to_string())
}

/// Whether only the file's owner may read or write it (mode 0600 or stricter): libpq ignores
/// a password file others may read, and so does courier.
fn owner_only(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(file).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o077 == 0)
}

/// What a password file's line is matched against.
#[derive(Debug)]
struct Target {
    host: String,
    port: u16,
    database: String,
    user: String,
}

impl Target {
    /// The first host and port of the address (a default socket folder counts as
    /// `localhost`), its database (default: the user's name) and user (default: `USER`).
    fn of(config: &postgres::Config) -> Target {
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(dir)) => {
                let dir = dir.to_string_lossy();
                match DEFAULT_SOCKET_DIRS.contains(&dir.as_ref()) {
                    true => LOCAL.to_string(),
                    false => dir.into_owned(),
                }
            }
            None => LOCAL.to_string(),
        };
        let user = config
            .get_user()
            .map(str::to_string)
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_default();
        Target {
            host,
            port: config.get_ports().first().copied().unwrap_or(DEFAULT_PORT),
            database: config.get_dbname().unwrap_or(&user).to_string(),
            user,
        }
    }
}

/// The password of the first line of a password file that matches `target`: lines are
/// `host:port:database:user:password`, `*` matches anything in the first four fields, `\:`
/// and `\\` stand for `:` and `\`; empty lines and lines starting with `#` are skipped.
fn pgpass_lookup(text: &str, target: &Target) -> Option<String> {
    let port = target.port.to_string();
    let wanted = [
        target.host.as_str(),
        port.as_str(),
        target.database.as_str(),
        target.user.as_str(),
    ];
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(split_fields)
        .find(|(fields, _)| {
            fields
                .iter()
                .zip(wanted)
                .all(|((raw, value), want)| raw == "*" || value == want)
        })
        .map(|(_, password)| password)
}

/// A password file's line: its four (raw, unescaped) fields and its password; `None` for a
/// line with fewer than five fields.
fn split_fields(line: &str) -> Option<([(String, String); 4], String)> {
    let mut fields: Vec<(String, String)> = Vec::with_capacity(5);
    let (mut raw, mut value) = (String::new(), String::new());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                raw.push(c);
                if let Some(next) = chars.next() {
                    raw.push(next);
                    value.push(next);
                }
            }
            ':' if fields.len() < 4 => {
                fields.push((std::mem::take(&mut raw), std::mem::take(&mut value)));
            }
            _ => {
                raw.push(c);
                value.push(c);
            }
        }
    }
    let four: [(String, String); 4] = fields.try_into().ok()?;
    Some((four, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The password file's view of `url` (TLS off: no root file needed for these hosts).
    fn target(url: &str) -> Target {
        let plain = match url.contains("://") {
            true => format!("{url}?sslmode=disable"),
            false => format!("{url} sslmode=disable"),
        };
        Target::of(&parse_url(&plain).unwrap().config)
    }

    const FILE: &str = "\
# comment: host:port:database:user:password
db.example:5432:exams:courier:first
db.example:*:*:courier:second
*:6000:exams:*:third\\:with\\\\colon
localhost:5432:courier:courier:local
";

    #[test]
    fn the_first_matching_line_gives_the_password() {
        let found = |url: &str| pgpass_lookup(FILE, &target(url));
        assert_eq!(
            found("postgres://courier@db.example/exams").as_deref(),
            Some("first")
        );
        assert_eq!(
            found("postgres://courier@db.example:7000/other").as_deref(),
            Some("second"),
            "wildcards on port and database"
        );
        assert_eq!(
            found("postgres://anyone@elsewhere:6000/exams").as_deref(),
            Some("third:with\\colon"),
            "escaped colon and backslash"
        );
        assert_eq!(found("postgres://nobody@db.example/exams"), None);
    }

    #[test]
    fn defaults_fill_the_port_and_database_and_a_socket_is_localhost() {
        let t = target("host=/var/run/postgresql user=courier");
        assert_eq!((t.host.as_str(), t.port), ("localhost", 5432));
        assert_eq!(t.database, "courier", "the database defaults to the user");
        assert_eq!(pgpass_lookup(FILE, &t).as_deref(), Some("local"));
    }

    #[test]
    fn a_short_line_or_an_escaped_star_matches_nothing() {
        let t = target("postgres://courier@db.example/exams");
        assert_eq!(pgpass_lookup("db.example:5432:exams:courier", &t), None);
        assert_eq!(pgpass_lookup("\\*:5432:exams:courier:x", &t), None);
        assert_eq!(
            pgpass_lookup("db.example:5432:exams:courier:a:b", &t).as_deref(),
            Some("a:b"),
            "the password is the rest of the line"
        );
    }

    #[test]
    fn a_password_in_the_address_is_refused_and_not_shown() {
        for url in [
            "postgres://courier:s3cret@db.example/exams",
            "postgres://courier@db.example/exams?password=s3cret",
            "host=db.example user=courier password=s3cret",
        ] {
            let e = parse_url(url).unwrap_err();
            assert!(matches!(e, Error::PasswordInStoreUrl { .. }), "{url}: {e}");
            assert!(!e.to_string().contains("s3cret"), "{e}");
        }
    }

    #[test]
    fn sources_are_taken_in_order_and_a_readable_pgpass_is_ignored() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let config = parse_url("postgres://courier@db.example/exams?sslmode=disable")
            .unwrap()
            .config;
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\nsecond line\n").unwrap();
        let pgpass = dir.path().join("pgpass");
        std::fs::write(&pgpass, "*:*:*:*:from-pgpass\n").unwrap();
        let env = || Some("from-env".to_string());
        let got = |f: Option<&Path>, e: Option<String>| password_from(&config, f, e, Some(&pgpass));
        assert_eq!(
            got(Some(&file), env()).unwrap().as_deref(),
            Some("from-file")
        );
        assert_eq!(got(None, env()).unwrap().as_deref(), Some("from-env"));
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(got(None, None).unwrap(), None, "others may read it");
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(got(None, None).unwrap().as_deref(), Some("from-pgpass"));
        std::fs::write(&file, "\n").unwrap();
        assert!(matches!(got(Some(&file), None), Err(Error::Config { .. })));
    }

    // ---- TLS options of the address (tls.rs) -----------------------------------------

    use super::super::tls::{root_cert_in, SslMode};

    fn tls_of(url: &str) -> (SslMode, Option<String>) {
        let t = parse_url(url).unwrap_or_else(|e| panic!("{url}: {e}")).tls;
        (t.mode, t.root.map(|r| r.to_string_lossy().into_owned()))
    }

    #[test]
    fn without_sslmode_a_remote_server_is_verified_and_a_local_one_preferred() {
        assert_eq!(
            tls_of("postgres://courier@db.example/exams?sslrootcert=ca.pem"),
            (SslMode::VerifyFull, Some("ca.pem".into()))
        );
        for local in [
            "postgres://courier@127.0.0.1:5433/exams",
            "postgres://courier@localhost/exams",
            "postgres://courier@[::1]/exams",
            "host=/var/run/postgresql user=courier",
        ] {
            assert_eq!(tls_of(local), (SslMode::Prefer, None), "{local}");
        }
        let e = parse_url("postgres://courier@db.example/exams").unwrap_err();
        assert!(matches!(e, Error::StoreTlsSetting { .. }), "{e}");
        let line = e.to_string();
        assert!(
            line.starts_with("postgres://courier@db.example/exams: "),
            "{line}"
        );
        assert!(
            line.contains("add sslrootcert=FILE") && !line.contains('\n'),
            "{line}"
        );
    }

    #[test]
    fn every_libpq_mode_is_read_and_the_other_options_are_kept() {
        for mode in SslMode::ALL {
            let url = format!(
                "postgres://courier@db.example/exams?connect_timeout=7&sslmode={mode}&sslrootcert=%2Fetc%2Fmy%20ca.pem&application_name=courier"
            );
            let address = parse_url(&url).unwrap();
            assert_eq!(address.tls.mode, *mode);
            assert_eq!(
                address.tls.root.as_deref(),
                Some(Path::new("/etc/my ca.pem")),
                "percent-decoded"
            );
            assert_eq!(
                address.config.get_connect_timeout(),
                Some(&std::time::Duration::from_secs(7))
            );
            assert_eq!(address.config.get_application_name(), Some("courier"));
        }
        assert_eq!(
            tls_of("host=db.example user=courier sslmode = 'verify-ca' sslrootcert='/etc/my ca.pem' dbname=exams"),
            (SslMode::VerifyCa, Some("/etc/my ca.pem".into())),
            "key=value words, quoted, spaces around ="
        );
        assert_eq!(
            tls_of("postgres://courier@db.example/exams?sslmode=require"),
            (SslMode::Require, None),
            "require needs no root file"
        );
    }

    #[test]
    fn an_unknown_sslmode_or_the_system_store_is_one_clear_line() {
        for (url, needle) in [
            (
                "postgres://courier@db.example/exams?sslmode=allow",
                "sslmode=allow is not a mode courier knows; write sslmode=disable, prefer, require, verify-ca or verify-full",
            ),
            (
                "postgres://courier@db.example/exams?sslmode=verify-full&sslrootcert=system",
                "courier reads no system certificate store",
            ),
            (
                "postgres://courier@127.0.0.1/exams?sslmode=verify-ca",
                "sslmode=verify-ca checks the server's certificate, and no root certificate is given",
            ),
        ] {
            let e = parse_url(url).unwrap_err();
            assert!(matches!(e, Error::StoreTlsSetting { .. }), "{e}");
            assert_eq!(e.exit_code(), 2);
            let line = e.to_string();
            assert!(line.starts_with(url) && line.contains(needle), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
        let e = parse_url("postgres://courier:s3cret@db.example/exams?sslmode=bogus").unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[test]
    fn a_relative_root_file_is_read_from_the_home() {
        let home = Path::new("/srv/central home");
        let url = root_cert_in(
            "postgres://courier@db.example/exams?sslmode=verify-full&sslrootcert=ca.pem",
            home,
        );
        assert_eq!(
            url,
            "postgres://courier@db.example/exams?sslmode=verify-full&sslrootcert=/srv/central%20home/ca.pem"
        );
        assert_eq!(
            tls_of(&url),
            (SslMode::VerifyFull, Some("/srv/central home/ca.pem".into()))
        );
        for unchanged in [
            "postgres://courier@db.example/exams?sslrootcert=/etc/ca.pem",
            "postgres://courier@db.example/exams",
            "host=db.example sslrootcert=ca.pem",
        ] {
            assert_eq!(root_cert_in(unchanged, home), unchanged);
        }
    }
}
