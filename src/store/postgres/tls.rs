//! TLS between courier and central's PostgreSQL server: rustls on ring (no OpenSSL).
//!
//! The store's address carries libpq's `sslmode` and `sslrootcert`, which the `postgres` crate
//! does not read in full: they are taken out of the address ([`split`]) before it is parsed,
//! and decide the connector ([`connect`]). Modes, as libpq:
//!
//! - `disable`: plain TCP.
//! - `prefer`: TLS when the server offers it, else plain.
//! - `require`: TLS or nothing; the certificate is checked against `sslrootcert` when one is
//!   given (as libpq does with a root file), else not at all.
//! - `verify-ca`: TLS, the server's certificate chains to `sslrootcert`.
//! - `verify-full`: `verify-ca`, and the URL's host is a name (or address) in the certificate.
//!
//! Courier's default differs from libpq's `prefer`: `verify-full` for a server on another
//! host, `prefer` for one on this machine (`localhost`, a loopback address; a Unix socket never
//! has TLS). docs/DESIGN.md says why.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use postgres::config::{Host, SslMode as PgSslMode};
use postgres::{Client, NoTls};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, Result};

crate::text::text_enum!(
    /// How the connection is protected (libpq's `sslmode`).
    pub enum SslMode {
        Disable = "disable",
        Prefer = "prefer",
        Require = "require",
        VerifyCa = "verify-ca",
        VerifyFull = "verify-full",
    }
);

/// The TLS options of a store's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsChoice {
    /// The mode in force: the address's `sslmode`, else courier's default for its hosts.
    pub mode: SslMode,
    /// `sslrootcert`: the PEM file of the certificates the server's must chain to.
    pub root: Option<PathBuf>,
}

/// The address without its `sslmode` and `sslrootcert`, and their values (raw, unchecked).
pub(super) struct Split {
    pub rest: String,
    pub mode: Option<String>,
    pub root: Option<String>,
}

/// Take `sslmode` and `sslrootcert` out of a store's address, in either of libpq's forms: a
/// URL's query (`postgres://...?sslmode=verify-full&sslrootcert=ca.pem`, values
/// percent-decoded) or `key=value` words (values may be quoted with `'`). An address that does
/// not split cleanly is returned whole, for the `postgres` crate to say what is wrong with it.
pub(super) fn split(url: &str) -> Split {
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let split = match is_url {
        true => split_query(url),
        false => split_words(url),
    };
    split.unwrap_or(Split {
        rest: url.to_string(),
        mode: None,
        root: None,
    })
}

fn split_query(url: &str) -> Option<Split> {
    let Some((base, query)) = url.split_once('?') else {
        return Some(Split {
            rest: url.to_string(),
            mode: None,
            root: None,
        });
    };
    let (mut mode, mut root, mut kept) = (None, None, Vec::new());
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("sslmode", v)) => mode = Some(percent_decode(v)?),
            Some(("sslrootcert", v)) => root = Some(percent_decode(v)?),
            _ => kept.push(pair),
        }
    }
    let rest = match kept.is_empty() {
        true => base.to_string(),
        false => format!("{base}?{}", kept.join("&")),
    };
    Some(Split { rest, mode, root })
}

/// `url` with a relative `sslrootcert` made relative to `home` (the folder of the courier.json
/// that holds the address, so a copy of the home carries its root file along); an address
/// without one, with an absolute one, or in `key=value` form is returned as it is.
pub fn root_cert_in(url: &str, home: &Path) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("sslrootcert", v)) => match percent_decode(v) {
                Some(file)
                    if !file.is_empty() && file != "system" && Path::new(&file).is_relative() =>
                {
                    format!(
                        "sslrootcert={}",
                        percent_encode(&home.join(file).to_string_lossy())
                    )
                }
                _ => pair.to_string(),
            },
            _ => pair.to_string(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

/// `text` with every byte but letters, digits and `-._~/` written `%XX`, for a URL's query.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `%XX` escapes decoded; `None` for a broken escape or text that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `key = value` words, as libpq reads them: spaces around `=` allowed, a value quoted with
/// `'` may hold spaces, `\` escapes the next character.
fn split_words(text: &str) -> Option<Split> {
    let (mut mode, mut root, mut kept) = (None, None, Vec::new());
    let mut chars = text.char_indices().peekable();
    let skip_spaces = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_spaces(&mut chars);
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        skip_spaces(&mut chars);
        chars.next_if(|(_, c)| *c == '=')?;
        skip_spaces(&mut chars);
        let quoted = chars.next_if(|(_, c)| *c == '\'').is_some();
        let mut value = String::new();
        let mut closed = !quoted;
        while let Some((_, c)) = chars.next() {
            match c {
                '\\' => value.push(chars.next()?.1),
                '\'' if quoted => {
                    closed = true;
                    break;
                }
                c if c.is_whitespace() && !quoted => break,
                c => value.push(c),
            }
        }
        if !closed {
            return None;
        }
        let end = chars.peek().map_or(text.len(), |&(i, _)| i);
        match key.as_str() {
            "sslmode" => mode = Some(value),
            "sslrootcert" => root = Some(value),
            _ => kept.push(text[start..end].trim_end()),
        }
    }
    Some(Split {
        rest: kept.join(" "),
        mode,
        root,
    })
}

/// The TLS options of an address whose other parts parsed into `config`: `sslmode` checked,
/// courier's default when absent. `shown` names the address in errors.
pub(super) fn choose(
    shown: &str,
    config: &postgres::Config,
    mode: Option<&str>,
    root: Option<&str>,
) -> Result<TlsChoice> {
    let setting = |what: String| Error::StoreTlsSetting {
        url: shown.to_string(),
        what,
    };
    let mode = match mode {
        Some(m) => SslMode::parse(m).ok_or_else(|| {
            setting(format!(
                "sslmode={m} is not a mode courier knows; write sslmode=disable, prefer, require, verify-ca or verify-full"
            ))
        })?,
        None if config.get_hosts().iter().all(is_local) => SslMode::Prefer,
        None => SslMode::VerifyFull,
    };
    let root = match root {
        Some("system") => {
            return Err(setting(
                "sslrootcert=system: courier reads no system certificate store; name the PEM file of the CA that signed the server's certificate".into(),
            ))
        }
        Some("") | None => None,
        Some(r) => Some(PathBuf::from(r)),
    };
    if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) && root.is_none() {
        return Err(setting(format!(
            "sslmode={mode} checks the server's certificate, and no root certificate is given; add sslrootcert=FILE (the PEM file of the CA that signed it) to the address{}",
            match config.get_hosts().iter().all(is_local) {
                true => "",
                false => " (verify-full is courier's default for a server on another host)",
            }
        )));
    }
    let sockets = config.get_hosts().iter().filter(|h| !is_tcp(h)).count();
    if sockets > 0 && sockets < config.get_hosts().len() && mode != SslMode::Disable {
        return Err(setting(
            "the address mixes Unix sockets, which have no TLS, with TCP hosts; give one kind, or sslmode=disable".into(),
        ));
    }
    Ok(TlsChoice { mode, root })
}

fn is_tcp(host: &Host) -> bool {
    matches!(host, Host::Tcp(_))
}

/// A host on this machine: a Unix socket, `localhost` or a loopback address.
fn is_local(host: &Host) -> bool {
    match host {
        Host::Tcp(name) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        _ => true,
    }
}

/// Connect with `config` as `tls` says. Unix sockets (where PostgreSQL has no TLS) connect
/// plain whatever the mode, as libpq does. A refusal is one line naming `shown`.
pub(super) fn connect(
    shown: &str,
    mut config: postgres::Config,
    tls: &TlsChoice,
) -> Result<Client> {
    let all_sockets = config.get_hosts().iter().all(|h| !is_tcp(h));
    let connected = match tls.mode {
        _ if all_sockets && !config.get_hosts().is_empty() => {
            config.ssl_mode(PgSslMode::Disable).connect(NoTls)
        }
        SslMode::Disable => config.ssl_mode(PgSslMode::Disable).connect(NoTls),
        mode => {
            let rustls = client_config(shown, tls)?;
            let connector = postgres_rustls::MakeTlsConnector::new(Arc::new(rustls).into());
            let pg_mode = match mode {
                SslMode::Prefer => PgSslMode::Prefer,
                _ => PgSslMode::Require,
            };
            config.ssl_mode(pg_mode).connect(connector)
        }
    };
    connected.map_err(|e| refusal(shown, tls, &e))
}

/// The rustls configuration for `tls` (a mode that uses TLS).
fn client_config(shown: &str, tls: &TlsChoice) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let roots = tls
        .root
        .as_deref()
        .map(|f| read_roots(shown, f))
        .transpose()?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(format!("rustls on ring: {e}")))?;
    let mut config = match (tls.mode, roots) {
        (SslMode::VerifyFull, Some(roots)) => builder.with_root_certificates(roots),
        (_, roots) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly {
                roots: roots.map(Arc::new),
                algorithms,
            })),
    }
    .with_no_client_auth();
    postgres_rustls::set_postgresql_alpn(&mut config);
    Ok(config)
}

/// The certificates of a PEM file, as trust anchors.
fn read_roots(shown: &str, file: &Path) -> Result<RootCertStore> {
    let refused = |what: String| Error::StoreRootCert {
        url: shown.to_string(),
        path: file.to_path_buf(),
        what,
    };
    let pem = std::fs::read(file).map_err(|e| refused(format!("cannot be read ({e})")))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| refused(format!("is not valid PEM ({e})")))?;
        roots
            .add(cert)
            .map_err(|e| refused(format!("holds a certificate that cannot be used ({e})")))?;
    }
    if roots.is_empty() {
        return Err(refused(
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(roots)
}

/// The server's certificate chains to `roots` (none: anything goes, for `prefer`/`require`
/// without a root file); its name is not checked (`verify-ca`). The handshake's signatures
/// are always checked, by the certificate's key.
#[derive(Debug)]
struct ChainOnly {
    roots: Option<Arc<RootCertStore>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A failed connection as one line: the server's certificate refused, TLS required and not
/// offered, or else the server unreachable.
fn refusal(shown: &str, tls: &TlsChoice, e: &postgres::Error) -> Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        // tokio-rustls hands rustls's error inside an io::Error, whose source() skips it.
        let inner = s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|e| e.downcast_ref::<rustls::Error>());
        if let Some(rustls::Error::InvalidCertificate(why)) =
            inner.or_else(|| s.downcast_ref::<rustls::Error>())
        {
            return Error::StoreNotTrusted {
                url: shown.to_string(),
                mode: tls.mode.as_str().to_string(),
                what: format!("{why:?}"),
            };
        }
        if s.source().is_none() && s.to_string() == "server does not support TLS" {
            return Error::StoreWithoutTls {
                url: shown.to_string(),
                mode: tls.mode.as_str().to_string(),
            };
        }
        source = s.source();
    }
    Error::StoreUnreachable {
        url: shown.to_string(),
        what: super::one_line(e),
    }
}
