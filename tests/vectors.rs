//! Test vectors: bundle files under fixtures/vectors/, written by fixed keys
//! (fixtures/vectors/keys/, test-only). `ok_*` must apply (and apply again as a no-op);
//! `fail_*` must be refused with the message in the `.expect` file beside it, leaving the
//! recipient's store unchanged. See fixtures/README.md.
//!
//! `cargo test --release --test integration vectors::regenerate -- --ignored` rewrites the
//! vectors from the keys (and creates the keys if they are missing).

use std::io::Write;
use std::path::{Path, PathBuf};

use courier::bundle::{Bundle, Header};
use courier::crypto::{self, SecretKey};

use crate::common::{courier, fixtures, ok, snapshot};

fn vectors() -> PathBuf {
    fixtures().join("vectors")
}

fn key_file(name: &str) -> PathBuf {
    vectors().join("keys").join(format!("{name}.asc"))
}

/// Homes built from the fixed keys: central, ORG-001 and ORG-002, both centres enrolled.
struct Homes {
    _dir: tempfile::TempDir,
    central: PathBuf,
    a: PathBuf,
    _b: PathBuf,
}

fn homes() -> Homes {
    let dir = tempfile::tempdir().unwrap();
    let central = dir.path().join("central");
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let k = |n: &str| key_file(n).to_string_lossy().into_owned();
    ok(courier(
        &central,
        &[
            "init",
            "central",
            "--name",
            "Vectors",
            "--key",
            &k("central"),
        ],
    ));
    ok(courier(
        &a,
        &[
            "init",
            "center",
            "--org",
            "ORG-001",
            "--key",
            &k("center-ORG-001"),
        ],
    ));
    ok(courier(
        &b,
        &[
            "init",
            "center",
            "--org",
            "ORG-002",
            "--key",
            &k("center-ORG-002"),
        ],
    ));
    for (home, org) in [(&a, "ORG-001"), (&b, "ORG-002")] {
        crate::common::handshake(&central, home, org, dir.path());
    }
    Homes {
        _dir: dir,
        central,
        a,
        _b: b,
    }
}

/// The home a vector is meant for (by its header; not-a-bundle files go to centre A).
fn recipient_home<'h>(h: &'h Homes, file: &Path) -> &'h Path {
    match Bundle::open(file) {
        Ok(b) if b.header.recipient.role == courier::site::Role::Central => &h.central,
        _ => &h.a,
    }
}

fn vector_files(prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(vectors())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with(prefix) && name.ends_with(".courier")
        })
        .collect();
    v.sort();
    v
}

/// Central loads the fixture data and exports ORG-001's scope: the results vectors speak
/// for ORG-001's deliveries and test takers, which central accepts only once it has sent
/// them to ORG-001 (issue 7, scope of results).
fn send_scope(h: &Homes) {
    let fixture_data = fixtures().join("data/central.jsonl");
    ok(courier(
        &h.central,
        &["load", fixture_data.to_str().unwrap()],
    ));
    let down = h._dir.path().join("down-ORG-001");
    ok(courier(
        &h.central,
        &["export", "--to", "ORG-001", "--out", down.to_str().unwrap()],
    ));
}

/// Every `ok_*` vector applies, and applies again as a no-op.
#[test]
fn ok_vectors_apply() {
    let files = vector_files("ok_");
    assert!(
        files.len() >= 2,
        "ok_ vectors missing: run the regenerate test"
    );
    let h = homes();
    send_scope(&h);
    for f in &files {
        let home = recipient_home(&h, f);
        let out = ok(courier(home, &["import", f.to_str().unwrap()]));
        assert!(out.contains("applied"), "{}: {out}", f.display());
        let before = snapshot(home, true);
        let again = ok(courier(home, &["import", f.to_str().unwrap()]));
        assert!(
            again.contains("already applied"),
            "{}: {again}",
            f.display()
        );
        assert_eq!(
            before,
            snapshot(home, true),
            "{}: a replay changed the store",
            f.display()
        );
    }
}

/// Every `fail_*` vector is refused by `verify` and `import` with its stated error, and the
/// store is unchanged.
#[test]
fn fail_vectors_are_refused() {
    let files = vector_files("fail_");
    assert!(
        files.len() >= 10,
        "fail_ vectors missing: run the regenerate test"
    );
    let h = homes();
    // The data vectors need the state of a centre that already applied ok_data; the
    // central ones, of a central that sent ORG-001 its scope and applied ok_results.
    ok(courier(
        &h.a,
        &[
            "import",
            vectors().join("ok_data.courier").to_str().unwrap(),
        ],
    ));
    send_scope(&h);
    let ok_results = vectors().join("ok_results.courier");
    ok(courier(
        &h.central,
        &["import", ok_results.to_str().unwrap()],
    ));
    let (mut at_central, mut at_center) = (0, 0);
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let roles = if f.with_extension("setup").exists() {
            // A vector that needs a state of its own (a key pinned, a centre revoked).
            let fresh = homes();
            run_setup(&fresh, f);
            assert_refused(&fresh, f)
        } else {
            assert_refused(&h, f)
        };
        // A vector named for central is aimed at central (by its header, when it has one).
        if name.starts_with("fail_central_") {
            assert!(roles.contains(&"central"), "{name}: refused at {roles:?}");
        }
        at_central += usize::from(roles.contains(&"central"));
        at_center += usize::from(roles.contains(&"center"));
    }
    assert!(
        at_central >= 15 && at_center >= 20,
        "refused at central {at_central}, at a centre {at_center}"
    );
    assert!(!h.a.join("..").join("evil").exists() && !Path::new("/tmp/courier-evil").exists());
}

/// `verify` and `import` refuse vector `f` at its recipient in `h` (at central and at a
/// centre when its header cannot be read) with the error its `.expect` file states, on one
/// line naming the file, and leave the store unchanged. Returns the roles it was tried at.
fn assert_refused(h: &Homes, f: &Path) -> Vec<&'static str> {
    let expect_file = f.with_extension("expect");
    let expected = std::fs::read_to_string(&expect_file)
        .unwrap_or_else(|_| panic!("{} has no .expect file", f.display()));
    let expected = expected.trim();
    let targets: Vec<(&'static str, &Path)> = match Bundle::open(f) {
        Ok(_) if recipient_home(h, f) == h.central => vec![("central", &h.central)],
        Ok(_) => vec![("center", &h.a)],
        Err(_) => vec![("central", &h.central), ("center", &h.a)],
    };
    for (_, home) in &targets {
        assert_refused_at(home, f, expected);
    }
    targets.into_iter().map(|(role, _)| role).collect()
}

/// `verify` and `import` at `home` refuse `f` with `expected` (see [`assert_refused`]).
fn assert_refused_at(home: &Path, f: &Path, expected: &str) {
    let before = snapshot(home, true);
    for verb in ["verify", "import"] {
        let o = courier(home, &[verb, f.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        if verb == "verify" && expected.starts_with("(import)") {
            continue; // only decryption reveals this one
        }
        assert_eq!(
            o.status.code(),
            Some(1),
            "{verb} {}: exit {:?}\n{err}",
            f.display(),
            o.status.code()
        );
        let needle = expected.trim_start_matches("(import)").trim();
        assert!(
            err.contains(needle),
            "{verb} {}: expected {needle:?} in:\n{err}",
            f.display()
        );
        assert!(
            err.contains(&*f.file_name().unwrap().to_string_lossy()),
            "{verb}: the error names the file:\n{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one-line error:\n{err}");
    }
    assert_eq!(
        before,
        snapshot(home, true),
        "{}: refused, yet the store changed",
        f.display()
    );
}

/// Run the `.setup` file beside vector `f`: one command per line, `HOME ARGS...` with HOME
/// `central`, `a` or `b`; an argument ending in `.courier` or `.asc` names a file of
/// fixtures/vectors.
fn run_setup(h: &Homes, f: &Path) {
    let text = std::fs::read_to_string(f.with_extension("setup")).unwrap();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut words = line.split_whitespace();
        let home = match words.next() {
            Some("central") => &h.central,
            Some("a") => &h.a,
            Some("b") => &h._b,
            other => panic!("{}: unknown home {other:?}", f.display()),
        };
        let args: Vec<String> = words
            .map(|w| match w.ends_with(".courier") || w.ends_with(".asc") {
                true => vectors().join(w).to_string_lossy().into_owned(),
                false => w.to_string(),
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(courier(home, &args));
    }
}

/// Called as a library, each refusal is the variant that says what happened.
#[test]
fn the_library_names_each_refusal() {
    use courier::error::Error;
    let h = homes();
    ok(courier(
        &h.a,
        &[
            "import",
            vectors().join("ok_data.courier").to_str().unwrap(),
        ],
    ));
    let import = |name: &str| {
        let f = vectors().join(format!("{name}.courier"));
        let site =
            courier::site::Site::open(recipient_home(&h, &f), courier::site::Passphrase::none())
                .unwrap();
        courier::import::import_file(&site, &f, &Default::default()).err()
    };
    let e = import("fail_unknown_required_feature");
    assert!(matches!(e, Some(Error::UnknownFeature { .. })), "{e:?}");
    let e = import("fail_unsafe_path");
    assert!(matches!(e, Some(Error::UnsafeEntry { .. })), "{e:?}");
    let e = import("fail_oversize_content");
    assert!(matches!(e, Some(Error::PayloadOversize { .. })), "{e:?}");
    let e = import("fail_rollback");
    assert!(matches!(e, Some(Error::Rollback { .. })), "{e:?}");
    let e = import("fail_unknown_sender");
    assert!(matches!(e, Some(Error::UnknownSender { .. })), "{e:?}");
    let e = import("fail_rollover_forged");
    assert!(matches!(e, Some(Error::RolloverRefused { .. })), "{e:?}");
    let e = import("fail_rollover_new_key_only");
    assert!(matches!(e, Some(Error::RolloverRefused { .. })), "{e:?}");
}

// ---- generation -------------------------------------------------------------------------

fn secret(name: &str) -> SecretKey {
    let cert = crypto::parse_cert(&std::fs::read(key_file(name)).unwrap()).unwrap();
    SecretKey::unlock(cert, None).unwrap()
}

/// Assemble a bundle file from a header and an already encrypted payload, signed by `key`.
fn assemble(mut header: Header, payload: &[u8], key: &SecretKey) -> Vec<u8> {
    header.payload.offset = 17;
    header.payload.length = payload.len() as u64;
    header.payload.sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(payload))
    };
    let header_bytes = serde_json::to_vec(&header).unwrap();
    let sig = crypto::sign_detached(key, &header_bytes).unwrap();
    let mut out = b"COURIER-BUNDLE 1\n".to_vec();
    out.extend_from_slice(payload);
    out.extend_from_slice(&header_bytes);
    out.extend_from_slice(&sig);
    out.extend_from_slice(b"CRB-TAIL");
    out.extend_from_slice(&(header_bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(&(sig.len() as u64).to_be_bytes());
    out
}

/// Sign with `key`, encrypt to `to`: the payload of a tar archive given as raw bytes.
fn seal_payload(
    tar_bytes: &[u8],
    key: &SecretKey,
    to: &courier::site::openpgp_cert::Cert,
) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = crypto::sign_encrypt_writer(&mut out, key, to).unwrap();
        let compressed = zstd_compress(tar_bytes);
        w.write_all(&compressed).unwrap();
        w.finalize().unwrap();
    }
    out
}

fn zstd_compress(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// A raw tar archive with one regular entry whose name is written verbatim.
fn raw_tar(name: &str, body: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", body.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(body);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn write(name: &str, bytes: &[u8], expect: Option<&str>) {
    std::fs::write(vectors().join(name), bytes).unwrap();
    if let Some(e) = expect {
        std::fs::write(
            vectors().join(name).with_extension("expect"),
            format!("{e}\n"),
        )
        .unwrap();
    }
}

/// Create the fixed test key `name` when it is missing.
fn ensure_key(name: &str) {
    if !key_file(name).exists() {
        let cert = crypto::generate(&format!("courier test vector key {name}"), None).unwrap();
        std::fs::write(key_file(name), crypto::armor_secret(&cert).unwrap()).unwrap();
    }
}

/// Rewrite fixtures/vectors from the fixed keys.
#[test]
#[ignore = "rewrites fixtures/vectors; run by hand"]
fn regenerate() {
    std::fs::create_dir_all(vectors().join("keys")).unwrap();
    for name in [
        "central",
        "central-new",
        "center-ORG-001",
        "center-ORG-002",
        "intruder",
    ] {
        ensure_key(name);
    }
    let h = homes();
    let tmp = tempfile::tempdir().unwrap();
    let f = |n: &str| tmp.path().join(n).to_string_lossy().into_owned();
    ok(courier(
        &h.central,
        &[
            "load",
            fixtures().join("data/central.jsonl").to_str().unwrap(),
        ],
    ));
    ok(courier(
        &h.central,
        &["export", "--to", "ORG-001", "--out", &f("a")],
    ));
    ok(courier(
        &h.central,
        &["export", "--to", "ORG-002", "--out", &f("b")],
    ));
    let data_a = std::fs::read(tmp.path().join("a/ORG-001-data-000001.courier")).unwrap();
    let data_b = std::fs::read(tmp.path().join("b/ORG-002-data-000001.courier")).unwrap();
    ok(courier(&h.a, &["import", &f("a")]));
    ok(courier(
        &h.a,
        &[
            "results",
            "add",
            fixtures()
                .join("data/results/ORG-001-day1.jsonl")
                .to_str()
                .unwrap(),
        ],
    ));
    ok(courier(
        &h.a,
        &[
            "logs",
            "add",
            fixtures()
                .join("data/logs/ORG-001-day1.jsonl")
                .to_str()
                .unwrap(),
        ],
    ));
    ok(courier(&h.a, &["export", "--out", &f("up")]));
    let up = crate::common::bundles_in(&tmp.path().join("up"));
    assert_eq!(up.len(), 1);
    let results = std::fs::read(&up[0]).unwrap();

    for old in std::fs::read_dir(vectors()).unwrap() {
        let p = old.unwrap().path();
        if p.is_file()
            && p.extension()
                .is_some_and(|e| e == "courier" || e == "expect")
        {
            std::fs::remove_file(p).unwrap();
        }
    }
    write("ok_data.courier", &data_a, None);
    write("ok_results.courier", &results, None);

    let header_start = {
        let b = Bundle::open(&tmp.path().join("a/ORG-001-data-000001.courier")).unwrap();
        17 + b.header.payload.length as usize
    };
    let mut t = data_a.clone();
    t[17 + 100] ^= 0x01;
    write(
        "fail_tampered_payload.courier",
        &t,
        Some("payload hash does not match the signed header"),
    );
    let mut t = data_a.clone();
    let pos = header_start
        + data_a[header_start..]
            .windows(8)
            .position(|w| w == b"ORG-001\"")
            .unwrap()
        + 6;
    t[pos] = b'9';
    write("fail_tampered_header.courier", &t, Some("bad signature"));
    let mut t = data_a.clone();
    t[data_a.len() - 30] ^= 0x40;
    write("fail_tampered_signature.courier", &t, Some("bad signature"));
    write(
        "fail_truncated.courier",
        &data_a[..data_a.len() / 2],
        Some("incomplete bundle"),
    );
    write(
        "fail_truncated_trailer.courier",
        &data_a[..data_a.len() - 3],
        Some("incomplete bundle"),
    );
    let mut t = data_a.clone();
    t.push(b'\n');
    write("fail_trailing_byte.courier", &t, Some("incomplete bundle"));
    let mut t = data_a.clone();
    t[15] = b'2';
    write(
        "fail_version_2.courier",
        &t,
        Some("unsupported bundle format 2 (this courier reads up to 1)"),
    );
    write(
        "fail_not_a_bundle.courier",
        b"PK\x03\x04 this is a zip file, not a bundle",
        Some("not a courier bundle"),
    );
    write(
        "fail_wrong_recipient.courier",
        &data_b,
        Some("meant for centre ORG-002"),
    );
    // Mixed parts: ORG-001's payload under another bundle's header, signature and trailer.
    let b_header_start = {
        let b = Bundle::open(&tmp.path().join("b/ORG-002-data-000001.courier")).unwrap();
        17 + b.header.payload.length as usize
    };
    let mut t = data_a[..header_start].to_vec();
    t.extend_from_slice(&data_b[b_header_start..]);
    write("fail_mixed_parts.courier", &t, Some("damaged bundle"));

    let central = secret("central");
    let intruder = secret("intruder");
    let a_cert = crypto::parse_cert(&std::fs::read(key_file("center-ORG-001")).unwrap())
        .unwrap()
        .strip_secret_key_material();
    let base = Bundle::open(&tmp.path().join("a/ORG-001-data-000001.courier"))
        .unwrap()
        .header;
    let mut hdr = base.clone();
    hdr.bundle_id = "00000000000000000000000000000001".into();
    hdr.sender.fingerprint = intruder.fingerprint();
    let payload = seal_payload(
        &raw_tar("acks.json", br#"{"results":[],"logs":[]}"#),
        &intruder,
        &a_cert,
    );
    hdr.payload.content_size = raw_tar("acks.json", br#"{"results":[],"logs":[]}"#).len() as u64;
    write(
        "fail_unknown_sender.courier",
        &assemble(hdr, &payload, &intruder),
        Some("signed by unknown key"),
    );
    let mut hdr = base.clone();
    hdr.bundle_id = "00000000000000000000000000000002".into();
    hdr.payload.content_size = raw_tar("acks.json", br#"{"results":[],"logs":[]}"#).len() as u64;
    write(
        "fail_forged_sender.courier",
        &assemble(hdr, &payload, &intruder),
        Some("bad signature"),
    );

    let evil = raw_tar("../courier-evil", b"owned");
    let mut hdr = base.clone();
    hdr.bundle_id = "00000000000000000000000000000003".into();
    hdr.sequence = 7;
    hdr.payload.content_size = evil.len() as u64;
    write(
        "fail_unsafe_path.courier",
        &assemble(hdr, &seal_payload(&evil, &central, &a_cert), &central),
        Some("(import) unsafe path"),
    );
    let abs = raw_tar("/tmp/courier-evil", b"owned");
    let mut hdr = base.clone();
    hdr.bundle_id = "00000000000000000000000000000004".into();
    hdr.sequence = 8;
    hdr.payload.content_size = abs.len() as u64;
    write(
        "fail_absolute_path.courier",
        &assemble(hdr, &seal_payload(&abs, &central, &a_cert), &central),
        Some("(import) unsafe path"),
    );
    let big = raw_tar("acks.json", &[b' '; 100_000]);
    let mut hdr = base.clone();
    hdr.bundle_id = "00000000000000000000000000000005".into();
    hdr.sequence = 9;
    hdr.payload.content_size = 4096;
    write(
        "fail_oversize_content.courier",
        &assemble(hdr, &seal_payload(&big, &central, &a_cert), &central),
        Some("(import) larger than its signed header declares"),
    );
    let mut hdr = base.clone();
    hdr.bundle_id = "00000000000000000000000000000006".into();
    hdr.sequence = 1;
    let acks = raw_tar("acks.json", br#"{"results":[],"logs":[]}"#);
    hdr.payload.content_size = acks.len() as u64;
    let rollback = assemble(hdr, &seal_payload(&acks, &central, &a_cert), &central);
    write(
        "fail_rollback.courier",
        &rollback,
        Some("(import) rollback refused"),
    );
    // Mixed parts for the same recipient: ok_data's payload under another bundle's header.
    let r_header_start = 17
        + Bundle::open(&vectors().join("fail_rollback.courier"))
            .unwrap()
            .header
            .payload
            .length as usize;
    let mut t = data_a[..header_start].to_vec();
    t.extend_from_slice(&rollback[r_header_start..]);
    write(
        "fail_mixed_parts_same_recipient.courier",
        &t,
        Some("damaged bundle"),
    );

    // A feature this reader does not know is required: refused before decryption.
    let mut hdr = base.clone();
    hdr.bundle_id = "00000000000000000000000000000007".into();
    hdr.sequence = 10;
    hdr.requires = vec!["key-rotation".into()];
    hdr.payload.content_size = acks.len() as u64;
    write(
        "fail_unknown_required_feature.courier",
        &assemble(hdr, &seal_payload(&acks, &central, &a_cert), &central),
        Some("requires feature 'key-rotation'"),
    );
    // An extension entry nobody requires is skipped; the rest applies (sequence 2: after ok_data).
    let mut tar = raw_tar("ext/operator-note.txt", b"exam day moved to Thursday");
    tar.truncate(tar.len() - 1024);
    tar.extend_from_slice(&raw_tar("acks.json", br#"{"results":[],"logs":[]}"#));
    let mut hdr = base.clone();
    hdr.bundle_id = "00000000000000000000000000000008".into();
    hdr.sequence = 2;
    hdr.payload.content_size = tar.len() as u64;
    write(
        "ok_data_extension.courier",
        &assemble(hdr, &seal_payload(&tar, &central, &a_cert), &central),
        None,
    );
    regenerate_rollover();
}

/// A rollover statement for ORG-001 handing `old`'s key over to `new`, signed by the keys
/// given (normally `old` then `new`).
fn statement(
    old_fpr: &str,
    new: &SecretKey,
    signers: (&SecretKey, &SecretKey),
) -> courier::bundle::RolloverStatement {
    let body = courier::rollover::RolloverBody {
        kind: "courier-rollover".into(),
        role: courier::site::Role::Central,
        org_id: "ORG-001".into(),
        old_fingerprint: old_fpr.to_string(),
        new_fingerprint: new.fingerprint(),
        new_certificate: crypto::armor_public(&new.public()).unwrap(),
        from_sequence: 3,
        created: "2026-11-27T00:00:00Z".into(),
    };
    courier::rollover::sign_statement(signers.0, signers.1, &body).unwrap()
}

/// Rewrite the key-lifecycle vectors (issue 11) only: ok_rollover, fail_rollover_*,
/// fail_rotated_out_key, fail_revoked_center (the others stay as they are).
#[test]
#[ignore = "rewrites fixtures/vectors; run by hand"]
fn regenerate_rollover() {
    ensure_key("central-new");
    let central = secret("central");
    let central_new = secret("central-new");
    let good = statement(
        &central.fingerprint(),
        &central_new,
        (&central, &central_new),
    );
    write(
        "ok_rollover.courier",
        &data_bundle("11", 3, &central_new, Some(good)),
        None,
    );
    // After ok_rollover: central's old key signs sequence 4.
    write(
        "fail_rotated_out_key.courier",
        &data_bundle("12", 4, &central, None),
        Some("retired here"),
    );
    std::fs::write(
        vectors().join("fail_rotated_out_key.setup"),
        "a import ok_rollover.courier\n",
    )
    .unwrap();
    let stranger = SecretKey::unlock(crypto::generate("stranger", None).unwrap(), None).unwrap();
    let only_new = statement(&central.fingerprint(), &stranger, (&stranger, &stranger));
    write(
        "fail_rollover_new_key_only.courier",
        &data_bundle("13", 3, &stranger, Some(only_new)),
        Some("not signed by the old key"),
    );
    let intruder = secret("intruder");
    let forged = statement(&intruder.fingerprint(), &stranger, (&intruder, &stranger));
    write(
        "fail_rollover_forged.courier",
        &data_bundle("14", 3, &stranger, Some(forged)),
        Some("is not pinned here"),
    );
    write_revoked_center();
    regenerate_revoked_central();
    regenerate_central();
}

/// A data bundle to ORG-001 at `sequence`, signed by `key`, with these rollover statements:
/// acknowledgements only, on ok_data's header.
fn data_bundle(
    id: &str,
    sequence: u64,
    key: &SecretKey,
    rollover: Option<courier::bundle::RolloverStatement>,
) -> Vec<u8> {
    let a_cert = crypto::parse_cert(&std::fs::read(key_file("center-ORG-001")).unwrap())
        .unwrap()
        .strip_secret_key_material();
    let mut hdr = Bundle::open(&vectors().join("ok_data.courier"))
        .unwrap()
        .header;
    let acks = raw_tar("acks.json", br#"{"results":[],"logs":[]}"#);
    hdr.bundle_id = format!("{id:0>32}");
    hdr.sequence = sequence;
    hdr.sender.fingerprint = key.fingerprint();
    hdr.requires = match &rollover {
        Some(_) => vec!["rollover".into()],
        None => vec![],
    };
    hdr.rollover = rollover.into_iter().collect();
    hdr.payload.content_size = acks.len() as u64;
    hdr.counts = Default::default();
    assemble(hdr, &seal_payload(&acks, key, &a_cert), key)
}

/// A data bundle signed by central's key, refused once ORG-001 applied central's revocation
/// certificate (its `.setup`; the certificate is `central-revocation.asc`).
#[test]
#[ignore = "rewrites fixtures/vectors; run by hand"]
fn regenerate_revoked_central() {
    let central = secret("central");
    let comment = format!(
        "Revocation certificate for courier central key {}",
        central.fingerprint()
    );
    let revocation =
        crypto::revocation_certificate(&central, "vector: central's key leaked", &comment).unwrap();
    std::fs::write(vectors().join("central-revocation.asc"), revocation).unwrap();
    write(
        "fail_revoked_central_key.courier",
        &data_bundle("16", 3, &central, None),
        Some("was revoked here"),
    );
    std::fs::write(
        vectors().join("fail_revoked_central_key.setup"),
        "a keys revoke-peer central-revocation.asc\n",
    )
    .unwrap();
}

/// A results bundle from ORG-002, refused once central revoked it (its `.setup`).
fn write_revoked_center() {
    let b_key = secret("center-ORG-002");
    let central_cert = crypto::parse_cert(&std::fs::read(key_file("central")).unwrap())
        .unwrap()
        .strip_secret_key_material();
    let mut hdr = Bundle::open(&vectors().join("ok_results.courier"))
        .unwrap()
        .header;
    hdr.bundle_id = format!("{:0>32}", "15");
    hdr.sequence = 1;
    hdr.sender = courier::bundle::Party::center(&b_key.fingerprint(), "ORG-002");
    hdr.org_id = "ORG-002".into();
    hdr.counts = Default::default();
    let ack = br#"{"applied":[],"last_seq":null,"inventory_sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","packages":[]}"#;
    let tar = raw_tar("ack.json", ack);
    hdr.payload.content_size = tar.len() as u64;
    write(
        "fail_revoked_center.courier",
        &assemble(hdr, &seal_payload(&tar, &b_key, &central_cert), &b_key),
        Some("was revoked"),
    );
    std::fs::write(
        vectors().join("fail_revoked_center.setup"),
        "central center revoke ORG-002 --reason stolen\n",
    )
    .unwrap();
}

/// A results bundle from ORG-001 to central on ok_results' header: bundle id `id`,
/// `sequence`, this tar archive as payload, signed by `key` (its fingerprint in the header
/// unless `claim` names another), sealed to central's key.
fn to_central(
    id: &str,
    sequence: u64,
    tar: &[u8],
    key: &SecretKey,
    claim: Option<&str>,
) -> Vec<u8> {
    let central_cert = crypto::parse_cert(&std::fs::read(key_file("central")).unwrap())
        .unwrap()
        .strip_secret_key_material();
    let mut hdr = Bundle::open(&vectors().join("ok_results.courier"))
        .unwrap()
        .header;
    hdr.bundle_id = format!("{id:0>32}");
    hdr.sequence = sequence;
    hdr.sender.fingerprint = claim.map_or_else(|| key.fingerprint(), str::to_string);
    hdr.counts = Default::default();
    hdr.payload.content_size = tar.len() as u64;
    assemble(hdr, &seal_payload(tar, key, &central_cert), key)
}

/// Rewrite the vectors aimed at central (`fail_central_*`, issue 13): results bundles from
/// ORG-001 built on ok_results, each refused at central for one reason.
#[test]
#[ignore = "rewrites fixtures/vectors; run by hand"]
fn regenerate_central() {
    let ok_results = std::fs::read(vectors().join("ok_results.courier")).unwrap();
    let header_start = 17
        + Bundle::open(&vectors().join("ok_results.courier"))
            .unwrap()
            .header
            .payload
            .length as usize;
    let a = secret("center-ORG-001");
    let intruder = secret("intruder");
    let ack = raw_tar(
        "ack.json",
        br#"{"applied":[],"last_seq":null,"inventory_sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","packages":[]}"#,
    );
    let mut t = ok_results.clone();
    t[17 + 100] ^= 0x01;
    let hash = "payload hash does not match the signed header";
    write("fail_central_tampered_payload.courier", &t, Some(hash));
    let mut t = ok_results.clone();
    let pos = header_start
        + ok_results[header_start..]
            .windows(11)
            .position(|w| w == b"\"created\":\"")
            .unwrap()
        + 12;
    t[pos] = if t[pos] == b'1' { b'2' } else { b'1' };
    write(
        "fail_central_tampered_header.courier",
        &t,
        Some("bad signature"),
    );
    let mut t = ok_results.clone();
    t[ok_results.len() - 30] ^= 0x40;
    write(
        "fail_central_tampered_signature.courier",
        &t,
        Some("bad signature"),
    );
    let half = &ok_results[..ok_results.len() / 2];
    write(
        "fail_central_truncated.courier",
        half,
        Some("incomplete bundle"),
    );
    write(
        "fail_central_unknown_sender.courier",
        &to_central("21", 7, &ack, &intruder, None),
        Some("signed by unknown key"),
    );
    let a_fpr = a.fingerprint();
    write(
        "fail_central_forged_sender.courier",
        &to_central("22", 7, &ack, &intruder, Some(&a_fpr)),
        Some("bad signature"),
    );
    let evil = raw_tar("../courier-evil", b"owned");
    write(
        "fail_central_unsafe_path.courier",
        &to_central("23", 7, &evil, &a, None),
        Some("(import) unsafe path"),
    );
    let abs = raw_tar("/tmp/courier-evil", b"owned");
    write(
        "fail_central_absolute_path.courier",
        &to_central("24", 8, &abs, &a, None),
        Some("(import) unsafe path"),
    );
    write_central_headers(&a, &ack);
    // ORG-001's key speaking for ORG-002.
    let other_org = {
        let central_cert = crypto::parse_cert(&std::fs::read(key_file("central")).unwrap())
            .unwrap()
            .strip_secret_key_material();
        let mut hdr = Bundle::open(&vectors().join("ok_results.courier"))
            .unwrap()
            .header;
        hdr.bundle_id = format!("{:0>32}", "27");
        hdr.sequence = 13;
        hdr.org_id = "ORG-002".into();
        hdr.sender.org_id = Some("ORG-002".into());
        hdr.counts = Default::default();
        hdr.payload.content_size = ack.len() as u64;
        assemble(hdr, &seal_payload(&ack, &a, &central_cert), &a)
    };
    write(
        "fail_central_other_org.courier",
        &other_org,
        Some("the header claims organisation ORG-002"),
    );
    // ok_results' payload under the header, signature and trailer of another bundle from
    // ORG-001 to central (results files are not refused for their sequence: §6).
    let other = to_central("30", 14, &ack, &a, None);
    let o_start = other.len() - tail_len(&other);
    let mut t = ok_results[..header_start].to_vec();
    t.extend_from_slice(&other[o_start..]);
    write(
        "fail_central_mixed_parts.courier",
        &t,
        Some("damaged bundle"),
    );
}

/// The length of what follows the payload in a bundle file: header, signature, trailer.
fn tail_len(bytes: &[u8]) -> usize {
    let n = bytes.len();
    let len = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    len(n - 16) + len(n - 8) + 24
}

/// The central vectors whose header says what is wrong: a size, a feature, a recipient, a
/// kind.
fn write_central_headers(a: &SecretKey, ack: &[u8]) {
    let central_cert = crypto::parse_cert(&std::fs::read(key_file("central")).unwrap())
        .unwrap()
        .strip_secret_key_material();
    let base = Bundle::open(&vectors().join("ok_results.courier"))
        .unwrap()
        .header;
    let sealed = |hdr: Header, tar: &[u8]| assemble(hdr, &seal_payload(tar, a, &central_cert), a);
    let big = raw_tar("ack.json", &[b' '; 100_000]);
    let mut hdr = base.clone();
    hdr.bundle_id = format!("{:0>32}", "25");
    hdr.sequence = 9;
    hdr.counts = Default::default();
    hdr.payload.content_size = 4096;
    write(
        "fail_central_oversize_content.courier",
        &sealed(hdr, &big),
        Some("(import) larger than its signed header declares"),
    );
    let mut hdr = base.clone();
    hdr.bundle_id = format!("{:0>32}", "26");
    hdr.sequence = 10;
    hdr.counts = Default::default();
    hdr.requires = vec!["key-rotation".into()];
    hdr.payload.content_size = ack.len() as u64;
    write(
        "fail_central_unknown_required_feature.courier",
        &sealed(hdr, ack),
        Some("requires feature 'key-rotation'"),
    );
    // Addressed to another central (the intruder's key), sealed to this one's.
    let mut hdr = base.clone();
    hdr.bundle_id = format!("{:0>32}", "28");
    hdr.sequence = 11;
    hdr.counts = Default::default();
    hdr.recipient.fingerprint = secret("intruder").fingerprint();
    hdr.payload.content_size = ack.len() as u64;
    write(
        "fail_central_wrong_recipient.courier",
        &sealed(hdr, ack),
        Some("meant for central"),
    );
    // A data bundle (central's kind of file for a centre) addressed to central.
    let mut hdr = base;
    hdr.bundle_id = format!("{:0>32}", "29");
    hdr.kind = courier::bundle::Kind::Data;
    hdr.sequence = 12;
    hdr.counts = Default::default();
    hdr.payload.content_size = ack.len() as u64;
    write(
        "fail_central_data_kind.courier",
        &sealed(hdr, ack),
        Some("a data bundle is for a center site"),
    );
}
