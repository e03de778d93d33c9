//! GnuPG reads what courier writes: the payload of a bundle is a standard OpenPGP message
//! (signed by the sender, encrypted to the recipient) holding a zstd stream of a tar archive,
//! and the header's signature is a standard detached signature. Needs `gpg`, `zstd` and
//! `tar` on the PATH (CI installs them); without them these tests fail, they do not skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::common::*;

/// Fail clearly when a tool is missing (the tests were asked for explicitly).
fn require(tool: &str) {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|st| st.success());
    assert!(
        found,
        "`{tool}` is not installed or does not run: the GnuPG interoperability tests need \
         gpg (GnuPG 2.2+) on the PATH; install it (`apt-get install gnupg`; .ci/run does)"
    );
}

/// A throw-away GnuPG home; its agent is stopped when dropped.
struct GnuPg {
    dir: tempfile::TempDir,
}

impl GnuPg {
    fn new() -> GnuPg {
        require("gpg");
        let dir = tempfile::Builder::new()
            .prefix("gpg")
            .tempdir()
            .expect("tempdir");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        GnuPg { dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("gpg")
            .env("GNUPGHOME", self.dir.path())
            .args(["--batch", "--no-tty", "--status-fd", "1"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("gpg runs")
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "gpg {args:?} failed ({:?})\nstdout: {}\nstderr: {}",
            o.status.code(),
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }
}

impl Drop for GnuPg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.dir.path())
            .args(["--kill", "gpg-agent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Export a site's key: secret (`--secret`) or public certificate.
fn export_key(home: &Path, out: &Path, secret: bool) {
    let mut args = vec!["keys", "export", "--out", s(out)];
    if secret {
        args.push("--secret");
    }
    ok(courier(home, &args));
}

/// Cut `len` bytes at `offset` out of `file` into `out`.
fn cut(file: &Path, offset: usize, len: usize, out: &Path) -> PathBuf {
    let bytes = std::fs::read(file).unwrap();
    std::fs::write(out, &bytes[offset..offset + len]).unwrap();
    out.to_path_buf()
}

/// The names in a zstd-compressed tar stream, read with the `zstd` and `tar` crates (not the
/// programs, which a fresh machine may lack).
fn tar_names(zst: &Path) -> Vec<String> {
    let file = std::fs::File::open(zst).unwrap();
    let decoder = zstd::stream::read::Decoder::new(file).expect("a zstd stream");
    let mut archive = tar::Archive::new(decoder);
    archive
        .entries()
        .expect("a tar archive")
        .map(|e| {
            let e = e.expect("a tar entry");
            e.path()
                .expect("an entry path")
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// A status line `[GNUPG:] KEYWORD ...` from gpg's --status-fd output, if present.
fn status<'a>(out: &'a str, keyword: &str) -> Option<&'a str> {
    let tag = format!("[GNUPG:] {keyword} ");
    out.lines()
        .find(|l| l.starts_with(&tag) || *l == tag.trim_end())
}

/// THREATS "a stolen centre machine or stick" (results readable only with the recipient's
/// key) and the format's promise that the payload is standard OpenPGP: GnuPG, given only the
/// centre's secret key and central's certificate, decrypts a data bundle's payload with a
/// good signature by central, and the plaintext is a zstd tar stream of the payload entries.
#[test]
#[ignore = "needs gpg"]
fn gnupg_decrypts_and_verifies_a_data_bundle() {
    let gpg = GnuPg::new();
    let w = World::enrolled();
    w.load_fixtures();
    let files = w.export_down("ORG-001", "down");
    let f = &files[0];
    let central_fpr = w.fingerprint(&w.central);

    let work = w.path("gpg-work");
    std::fs::create_dir_all(&work).unwrap();
    let secret = work.join("center-a-secret.asc");
    let public = work.join("central.asc");
    export_key(&w.a, &secret, true);
    export_key(&w.central, &public, false);
    gpg.ok(&["--import", s(&secret)]);
    gpg.ok(&["--import", s(&public)]);

    let v: Value = serde_json::from_str(&ok(courier(&w.a, &["inspect", "--json", s(f)]))).unwrap();
    let offset = v["payload_offset"].as_u64().unwrap() as usize;
    let size = v["payload_size"].as_u64().unwrap() as usize;
    let payload = cut(f, offset, size, &work.join("payload.pgp"));

    let plain = work.join("payload.zst");
    let out = gpg.ok(&["--output", s(&plain), "--decrypt", s(&payload)]);
    assert!(status(&out, "DECRYPTION_OKAY").is_some(), "{out}");
    let good = status(&out, "GOODSIG").unwrap_or_else(|| panic!("no GOODSIG:\n{out}"));
    assert!(good.contains("courier central Central"), "{good}");
    let valid = status(&out, "VALIDSIG").unwrap_or_else(|| panic!("no VALIDSIG:\n{out}"));
    assert!(
        valid.trim_end().ends_with(&central_fpr),
        "signed by a key of central {central_fpr}: {valid}"
    );

    let names = tar_names(&plain);
    for want in ["scope-000001.jsonl", "entities-000001.jsonl", "acks.json"] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    let packages = names.iter().filter(|n| n.starts_with("packages/")).count();
    assert_eq!(packages, 2, "{names:?}");
}

/// The header's detached signature is standard OpenPGP too: GnuPG verifies it over the
/// header bytes as central's good signature, and refuses it over a changed header.
#[test]
#[ignore = "needs gpg"]
fn gnupg_verifies_the_header_signature() {
    let gpg = GnuPg::new();
    let w = World::enrolled();
    let f = &w.export_down("ORG-001", "down")[0];
    let central_fpr = w.fingerprint(&w.central);
    let work = w.path("gpg-work");
    std::fs::create_dir_all(&work).unwrap();
    let public = work.join("central.asc");
    export_key(&w.central, &public, false);
    gpg.ok(&["--import", s(&public)]);

    let bytes = std::fs::read(f).unwrap();
    let len = bytes.len();
    let hl = u64::from_be_bytes(bytes[len - 16..len - 8].try_into().unwrap()) as usize;
    let sl = u64::from_be_bytes(bytes[len - 8..].try_into().unwrap()) as usize;
    let sig_at = len - 24 - sl;
    let header = cut(f, sig_at - hl, hl, &work.join("header.json"));
    let sig = cut(f, sig_at, sl, &work.join("header.sig"));
    let out = gpg.ok(&["--verify", s(&sig), s(&header)]);
    let valid = status(&out, "VALIDSIG").unwrap_or_else(|| panic!("no VALIDSIG:\n{out}"));
    assert!(valid.trim_end().ends_with(&central_fpr), "{valid}");

    let mut changed = std::fs::read(&header).unwrap();
    let at = changed.iter().position(|&b| b == b'Z').unwrap() - 1; // last digit of `created`
    changed[at] ^= 1;
    std::fs::write(&header, &changed).unwrap();
    let o = gpg.run(&["--verify", s(&sig), s(&header)]);
    assert!(!o.status.success(), "gpg accepted a changed header");
    assert!(status(&stdout(&o), "BADSIG").is_some(), "{}", stdout(&o));
}

/// GnuPG reads central's revocation certificate (`keys export --revocation`): imported into
/// a keyring holding central's public key, the key lists as revoked.
#[test]
#[ignore = "needs gpg"]
fn gnupg_reads_the_revocation_certificate() {
    let gpg = GnuPg::new();
    let w = World::new();
    let public = w.path("central.asc");
    export_key(&w.central, &public, false);
    gpg.ok(&["--import", s(&public)]);
    let revocation = w.path("central-revocation.asc");
    ok(courier(
        &w.central,
        &["keys", "export", "--revocation", "--out", s(&revocation)],
    ));
    gpg.ok(&["--import", s(&revocation)]);
    let fpr = w.fingerprint(&w.central);
    let listed = gpg.ok(&["--with-colons", "--list-keys", &fpr]);
    let pub_line = listed
        .lines()
        .find(|l| l.starts_with("pub:"))
        .unwrap_or_else(|| panic!("no pub line:\n{listed}"));
    assert!(pub_line.starts_with("pub:r:"), "not revoked: {listed}");
}
