//! The bundle envelope against the envelope-level rows of ../shared/THREATS.md: every
//! hostile file is refused with exit 1 and a one-line message naming it, and the centre's
//! store (history included) is exactly as it was.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use courier::bundle::{self, Bundle, Header, Kind, Party, PayloadInfo, SetRef, Spec};
use courier::crypto::{self, SecretKey};
use courier::site::openpgp_cert::Cert;
use courier::site::{Passphrase, Role, Site};
use serde_json::Value;

use crate::common::*;

// ---- helpers ------------------------------------------------------------------------------

/// An enrolled world with the fixtures loaded and ORG-001's first data bundle written.
fn world_with_bundle() -> (World, PathBuf) {
    let w = World::enrolled();
    w.load_fixtures();
    let files = w.export_down("ORG-001", "down");
    assert_eq!(files.len(), 1, "one data bundle: {files:?}");
    let f = files[0].clone();
    (w, f)
}

fn write(path: &Path, bytes: &[u8]) -> PathBuf {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write variant");
    path.to_path_buf()
}

/// Where the regions of a bundle file are: (header start, signature start, file length).
fn regions(bytes: &[u8]) -> (usize, usize, usize) {
    let len = bytes.len();
    let trailer = &bytes[len - 24..];
    assert_eq!(&trailer[..8], b"CRB-TAIL");
    let hl = u64::from_be_bytes(trailer[8..16].try_into().unwrap()) as usize;
    let sl = u64::from_be_bytes(trailer[16..24].try_into().unwrap()) as usize;
    let sig = len - 24 - sl;
    (sig - hl, sig, len)
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present")
}

/// What any refusal of a hostile bundle says (the message names the check that failed).
const REFUSALS: &[&str] = &[
    "not a courier bundle",
    "unsupported bundle format",
    "incomplete bundle",
    "damaged bundle",
    "bad signature",
    "signed by unknown key",
    "meant for",
];

/// Run `courier CMD --json DIR` at `home`: every one of `n` files must be refused with exit 1,
/// each message naming its file and one of `fragments`.
#[track_caller]
fn all_refused(home: &Path, cmd: &str, dir: &Path, n: usize, fragments: &[&str]) {
    let o = courier(home, &[cmd, "--json", s(dir)]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{cmd}: expected exit 1\nstdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    let reports: Vec<Value> = serde_json::from_str(&stdout(&o)).expect("json reports");
    assert_eq!(reports.len(), n, "{cmd}: one report per file");
    for r in &reports {
        let file = r["file"].as_str().expect("file");
        let name = Path::new(file).file_name().unwrap().to_str().unwrap();
        let msg = r["message"].as_str().expect("message");
        assert_eq!(r["status"], "refused", "{cmd} accepted {file}: {r}");
        assert!(
            msg.contains(name),
            "{cmd}: message does not name {name}: {msg}"
        );
        assert!(
            fragments.iter().any(|f| msg.contains(f)),
            "{cmd}: {name}: message says none of {fragments:?}: {msg}"
        );
        assert!(!msg.contains('\n'), "one line: {msg}");
    }
}

/// Import one file at `home`: refused with exit 1, one line naming the file and saying `needle`,
/// and the store (history included) unchanged.
#[track_caller]
fn open(home: &Path) -> Site {
    Site::open(home, Passphrase::none()).expect("site opens")
}

/// SHA-256 (FIPS 180-4), for headers of hand-made bundles (no hash crate among the
/// dev-dependencies).
fn sha256_hex(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for chunk in msg.chunks(64) {
        let mut w = [0u32; 64];
        for (wi, b) in w.iter_mut().zip(chunk.chunks(4)) {
            *wi = u32::from_be_bytes(b.try_into().unwrap());
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let mut v = h;
        for (k, wi) in K.iter().zip(w.iter()) {
            let [a, b, c, d, e, f, g, hh] = v;
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(*k)
                .wrapping_add(*wi);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            v = [
                t1.wrapping_add(s0.wrapping_add(maj)),
                a,
                b,
                c,
                d.wrapping_add(t1),
                e,
                f,
                g,
            ];
        }
        for (x, y) in h.iter_mut().zip(v) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

/// One tar entry (GNU header, raw name bytes: nothing is sanitised), data padded to 512.
fn tar_entry(name: &[u8], typeflag: u8, link: &[u8], data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..265].copy_from_slice(b"ustar  \0");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// A whole tar archive: the entries, then the two zero blocks that end it.
fn tar(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = entries.concat();
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// A zstd frame of raw (stored) blocks holding `data` (RFC 8878).
fn zstd_raw(data: &[u8]) -> Vec<u8> {
    // Magic, frame header descriptor (no content size, no checksum), window 128 KiB.
    let mut out = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x38];
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[][..]]
    } else {
        data.chunks(1 << 17).collect()
    };
    for (i, c) in chunks.iter().enumerate() {
        let last = u32::from(i + 1 == chunks.len());
        let block_header = ((c.len() as u32) << 3) | last; // block type 0: raw
        out.extend_from_slice(&block_header.to_le_bytes()[..3]);
        out.extend_from_slice(c);
    }
    out
}

/// The payload of a bundle: `tar` compressed, signed by `key` and encrypted to `to`.
fn signed_payload(tar: &[u8], key: &SecretKey, to: &Cert) -> Vec<u8> {
    let mut payload = Vec::new();
    {
        let mut m = crypto::sign_encrypt_writer(&mut payload, key, to).expect("writer");
        m.write_all(&zstd_raw(tar)).expect("payload");
        m.finalize().expect("finalize");
    }
    payload
}

/// Write a bundle by hand, byte for byte as format 1 says, around an arbitrary tar archive:
/// signed by `key`, encrypted to `to`, with the header of `template` (fresh ids) declaring
/// `content_size` (default: the true size). For what `bundle::write` cannot express.
fn craft(
    out: &Path,
    template: &Header,
    tar: &[u8],
    content_size: Option<u64>,
    key: &SecretKey,
    to: &Cert,
) -> PathBuf {
    let payload = signed_payload(tar, key, to);
    let size = content_size.unwrap_or(tar.len() as u64);
    craft_around(out, template, &payload, size, key)
}

/// Write a bundle file around a ready payload, its header signed by `key`.
fn craft_around(
    out: &Path,
    template: &Header,
    payload: &[u8],
    content_size: u64,
    key: &SecretKey,
) -> PathBuf {
    let mut h = template.clone();
    h.bundle_id = bundle::new_id();
    h.set.id = bundle::new_id();
    h.payload = PayloadInfo {
        offset: 17,
        length: payload.len() as u64,
        sha256: sha256_hex(payload),
        content_size,
    };
    let hb = serde_json::to_vec(&h).expect("header json");
    let sig = crypto::sign_detached(key, &hb).expect("signature");
    let mut f = b"COURIER-BUNDLE 1\n".to_vec();
    f.extend_from_slice(payload);
    f.extend_from_slice(&hb);
    f.extend_from_slice(&sig);
    f.extend_from_slice(b"CRB-TAIL");
    f.extend_from_slice(&(hb.len() as u64).to_be_bytes());
    f.extend_from_slice(&(sig.len() as u64).to_be_bytes());
    write(out, &f)
}

/// Every file below `dir`, recursively.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_below(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

// ---- a byte changed anywhere ---------------------------------------------------------------

/// THREATS "a byte changed anywhere (payload, manifest, header)": one flipped byte in every
/// region (first line, payload start/middle/end, header, signature, each field of the
/// trailer) and at every k-th byte of the file is refused by `verify` and `import` alike,
/// and nothing is applied.
#[test]
fn a_byte_changed_anywhere_is_refused() {
    let (w, f) = world_with_bundle();
    let orig = std::fs::read(&f).unwrap();
    let (hs, ss, len) = regions(&orig);
    let mut positions: Vec<usize> = vec![
        0,
        7,
        14,
        15,
        16, // first line: magic, space, version, newline
        17,
        18,
        17 + (hs - 17) / 2,
        hs - 1, // payload
        hs,
        hs + (ss - hs) / 2,
        ss - 1, // header
        ss,
        ss + (len - 24 - ss) / 2,
        len - 25, // signature
        len - 24,
        len - 17, // trailer magic
        len - 16,
        len - 9, // header length (high and low byte)
        len - 8,
        len - 1, // signature length
    ];
    let k = len / 60;
    positions.extend((0..len).step_by(k));
    positions.sort();
    positions.dedup();
    let dir = w.path("flipped");
    for (i, &p) in positions.iter().enumerate() {
        let mut b = orig.clone();
        b[p] ^= 1 << (i % 8);
        write(&dir.join(format!("flip-{p:07}.courier")), &b);
    }
    let before = snapshot(&w.a, true);
    all_refused(&w.a, "verify", &dir, positions.len(), REFUSALS);
    all_refused(&w.a, "import", &dir, positions.len(), REFUSALS);
    assert_eq!(snapshot(&w.a, true), before, "store changed");

    // One per region on its own, with the check it must fail.
    let one = |p: usize, needle: &str| {
        let mut b = orig.clone();
        b[p] ^= 0x01;
        let file = write(&w.path(&format!("one/at-{p}.courier")), &b);
        refused(courier(&w.a, &["verify", s(&file)]), 1, needle);
        import_refused(&w.a, &file, needle);
    };
    one(0, "not a courier bundle");
    one(15, "damaged bundle");
    one(
        17 + (hs - 17) / 2,
        "payload hash does not match the signed header",
    );
    // The last digit of the header's `created` seconds: still a valid header, so only the
    // signature can catch it.
    let created = hs + find(&orig[hs..ss], b"\"created\":\"") + 11 + 18;
    one(created, "bad signature");
    one(ss + (len - 24 - ss) / 2, "bad signature");
    one(len - 20, "incomplete bundle");
    one(len - 9, "damaged bundle");

    // The untouched bundle still imports: the refusals were the flips' doing.
    ok(courier(&w.a, &["import", s(&f)]));
}

/// THREATS "a byte changed anywhere": nothing may follow the trailer (a trailing byte, or a
/// second trailer appended).
#[test]
fn bytes_after_the_trailer_are_refused() {
    let (w, f) = world_with_bundle();
    let orig = std::fs::read(&f).unwrap();
    let mut one = orig.clone();
    one.push(b'\n');
    let one = write(&w.path("extra/one-byte.courier"), &one);
    import_refused(&w.a, &one, "incomplete bundle");
    let mut again = orig.clone();
    again.extend_from_slice(&orig[orig.len() - 24..]);
    let again = write(&w.path("extra/two-trailers.courier"), &again);
    import_refused(&w.a, &again, "damaged bundle");
    all_refused(&w.a, "verify", &w.path("extra"), 2, REFUSALS);
}

// ---- cut short -----------------------------------------------------------------------------

/// THREATS "cut short (stick pulled, partial upload)": a bundle truncated at any length is
/// refused as incomplete or damaged, by `verify` and `import`, and nothing is applied.
#[test]
fn a_bundle_cut_short_is_refused() {
    let (w, f) = world_with_bundle();
    let orig = std::fs::read(&f).unwrap();
    let len = orig.len();
    let mut cuts = vec![0, 1, 10, 16, 17, len / 2, len - 24, len - 1];
    cuts.extend((1..=40).map(|i| i * len / 41));
    cuts.sort();
    cuts.dedup();
    let dir = w.path("cut");
    for &c in &cuts {
        write(&dir.join(format!("cut-{c:07}.courier")), &orig[..c]);
    }
    let before = snapshot(&w.a, true);
    let said = &["incomplete bundle", "damaged bundle"];
    all_refused(&w.a, "verify", &dir, cuts.len(), said);
    all_refused(&w.a, "import", &dir, cuts.len(), said);
    assert_eq!(snapshot(&w.a, true), before, "store changed");
    // A copy that lost its last bytes says it is incomplete and what is missing.
    let err = import_refused(
        &w.a,
        &dir.join(format!("cut-{:07}.courier", len - 1)),
        "incomplete bundle",
    );
    assert!(err.contains("no trailer"), "{err}");
    let err = import_refused(
        &w.a,
        &dir.join(format!("cut-{:07}.courier", 0)),
        "incomplete bundle",
    );
    assert!(err.contains("0 bytes"), "{err}");
}

// ---- forged --------------------------------------------------------------------------------

/// A data bundle for centre A written by `bundle::write` with `key`, naming `sender`.
fn forged(w: &World, name: &str, key: &SecretKey, sender_fpr: &str) -> PathBuf {
    let a = open(&w.a);
    let a_cert = a.certificate().unwrap();
    let spec = Spec::data(sender_fpr, &a.config.fingerprint, "ORG-001", 7);
    let out = w.path(&format!("forged/{name}.courier"));
    let (written, ()) = bundle::write(&out, spec, key, &a_cert, |p| {
        p.count("scope", 0);
        p.add_bytes("scope-000001.jsonl", b"")
    })
    .expect("forged bundle written");
    written.persist().expect("persist")
}

/// THREATS "forged by someone who only knows the recipient's public key" and "signed by a
/// key nobody enrolled": a bundle encrypted to A's real certificate but signed by another
/// key is refused, whether it claims central's fingerprint (bad signature) or names its own
/// (unknown key).
#[test]
fn a_bundle_signed_by_another_key_is_refused() {
    let w = World::enrolled();
    let evil = crypto::generate("courier central Evil", None).unwrap();
    let evil_fpr = crypto::fingerprint(&evil);
    let evil_key = SecretKey::unlock(evil, None).unwrap();
    let central_fpr = w.fingerprint(&w.central);

    let claims_central = forged(&w, "claims-central", &evil_key, &central_fpr);
    refused(
        courier(&w.a, &["verify", s(&claims_central)]),
        1,
        "bad signature",
    );
    import_refused(&w.a, &claims_central, "bad signature");

    let names_itself = forged(&w, "names-itself", &evil_key, &evil_fpr);
    refused(
        courier(&w.a, &["verify", s(&names_itself)]),
        1,
        "signed by unknown key",
    );
    let err = import_refused(&w.a, &names_itself, "signed by unknown key");
    assert!(err.contains(&evil_fpr), "names the key: {err}");

    // Control: the same construction signed by central's own key is accepted.
    let central_key = open(&w.central).secret_key().unwrap();
    let genuine = forged(&w, "genuine", &central_key, &central_fpr);
    ok(courier(&w.a, &["import", s(&genuine)]));
}

/// Hand-made data bundles for centre A whose header is validly signed by the pinned central
/// key around a payload central did not sign (signed by another key; not signed at all) or
/// encrypted to another site; then a control with central's own payload. The payload holds a
/// test-centre entity, then more than the decryptor's 64 KiB look-ahead, so the entity is
/// read before the inner signature's end. Returns (name, file) pairs and the control.
fn unsigned_payloads(w: &World) -> (Vec<(&'static str, PathBuf)>, PathBuf, &'static str) {
    let real = &w.export_down("ORG-001", "down")[0];
    let template = Bundle::open(real).unwrap().header;
    let key = open(&w.central).secret_key().unwrap();
    let a_cert = open(&w.a).certificate().unwrap();
    let b_cert = open(&w.b).certificate().unwrap();
    let evil = SecretKey::unlock(
        crypto::generate("courier central Evil", None).unwrap(),
        None,
    )
    .unwrap();
    let id = "https://central.example/tao.rdf#tc-forged";
    let sum = "f".repeat(64);
    let scope = format!("{{\"id\":\"{id}\",\"type\":\"test-center\",\"checksum\":\"{sum}\"}}\n");
    let entity = format!(
        "{{\"type\":\"test-center\",\"id\":\"{id}\",\"checksum\":\"{sum}\",\"properties\":{{}}}}\n"
    );
    let t = tar(&[
        tar_entry(b"scope-000001.jsonl", b'0', b"", scope.as_bytes()),
        tar_entry(b"entities-000001.jsonl", b'0', b"", entity.as_bytes()),
        tar_entry(b"scope-000002.jsonl", b'0', b"", &vec![b'\n'; 256 << 10]),
    ]);
    let size = t.len() as u64;
    let cases = [
        ("signed-by-another-key", signed_payload(&t, &evil, &a_cert)),
        ("not-signed", crypto::seal(&a_cert, &zstd_raw(&t)).unwrap()),
        ("for-another-site", signed_payload(&t, &key, &b_cert)),
    ];
    let files = cases
        .into_iter()
        .map(|(name, payload)| {
            let out = w.path(&format!("inner/{name}.courier"));
            (name, craft_around(&out, &template, &payload, size, &key))
        })
        .collect();
    let genuine = signed_payload(&t, &key, &a_cert);
    let control = craft_around(
        &w.path("inner/genuine.courier"),
        &template,
        &genuine,
        size,
        &key,
    );
    (files, control, id)
}

/// THREATS "unverified plaintext acted upon" and "forged": a header validly signed by the
/// pinned central key around a payload central did not sign, or encrypted to another site,
/// is refused and nothing of the payload is kept, though part of it was read before the
/// inner signature's end; the same envelope around central's own payload is applied.
#[test]
fn a_payload_not_signed_by_the_sender_is_not_applied() {
    let w = World::enrolled();
    let (files, control, id) = unsigned_payloads(&w);
    for (name, f) in &files {
        // The envelope is sound: only the inner message is wrong.
        ok(courier(&w.a, &["verify", s(f)]));
        let before = snapshot(&w.a, true);
        let o = courier(&w.a, &["import", s(f)]);
        let err = stderr(&o);
        assert!(!o.status.success(), "{name} was applied");
        assert!(
            err.contains("bad signature") || err.contains("not signed by the sender"),
            "{name}: {err}"
        );
        assert_eq!(snapshot(&w.a, true), before, "{name}: store changed");
    }
    ok(courier(&w.a, &["import", s(&control)]));
    let held = list(&w.a, &["test-center"]);
    assert!(held.iter().any(|e| e.to_string().contains(id)), "{held:?}");
}

/// THREATS "forged": a payload not signed by the sender is refused input like any other
/// forgery: exit 1 and "bad signature", not an internal failure.
#[test]
fn a_payload_not_signed_by_the_sender_is_refused_as_input() {
    let w = World::enrolled();
    let (files, _, _) = unsigned_payloads(&w);
    for (_, f) in &files {
        import_refused(&w.a, f, "bad signature");
    }
}

/// THREATS "unverified plaintext acted upon" and "the importer killed mid-way" (all of a
/// bundle or none of it): a test package received from a payload that is then refused (its
/// inner signature is not central's, or a later entry is refused) leaves no file in the
/// site's packages folder.
#[test]
fn a_refused_payload_leaves_no_package_file() {
    let w = World::enrolled();
    let real = &w.export_down("ORG-001", "down")[0];
    let template = Bundle::open(real).unwrap().header;
    let key = open(&w.central).secret_key().unwrap();
    let a_cert = open(&w.a).certificate().unwrap();
    let evil = SecretKey::unlock(
        crypto::generate("courier central Evil", None).unwrap(),
        None,
    )
    .unwrap();
    let zip = std::fs::read(fixtures().join("qti/valid/2.1-basic-Basic.zip")).unwrap();
    let name = format!("packages/{}.zip", sha256_hex(&zip));
    let package = tar_entry(name.as_bytes(), b'0', b"", &zip);
    let padding = tar_entry(b"scope-000001.jsonl", b'0', b"", &vec![b'\n'; 256 << 10]);
    let unexpected = tar_entry(b"notes.txt", b'0', b"", b"hello");
    let by_evil = tar(&[package.clone(), padding]);
    let then_refused = tar(&[package, unexpected]);
    let cases = [
        (
            "inner-signature",
            signed_payload(&by_evil, &evil, &a_cert),
            by_evil.len(),
        ),
        (
            "later-entry",
            signed_payload(&then_refused, &key, &a_cert),
            then_refused.len(),
        ),
    ];
    let packages = w.a.join("packages");
    let mut leftovers = Vec::new();
    for (case, payload, size) in cases {
        let out = w.path(&format!("pkg/{case}.courier"));
        let f = craft_around(&out, &template, &payload, size as u64, &key);
        let before = files_below(&packages);
        let snap = snapshot(&w.a, true);
        let o = courier(&w.a, &["import", s(&f)]);
        assert!(!o.status.success(), "{case}: applied");
        assert_eq!(snapshot(&w.a, true), snap, "{case}: store changed");
        for left in files_below(&packages) {
            if !before.contains(&left) {
                std::fs::remove_file(&left).unwrap(); // so the next case starts clean
                leftovers.push(format!(
                    "{case}: {} ({})",
                    left.display(),
                    stderr(&o).trim()
                ));
            }
        }
    }
    assert!(
        leftovers.is_empty(),
        "files left behind:\n{}",
        leftovers.join("\n")
    );
}

/// A bundle of kind `kind` from `sender` (fingerprint filled in) to the site at `to`, which
/// carries its own certificate, signed by a key nobody enrolled, with one payload entry.
fn self_certified_bundle(
    w: &World,
    kind: Kind,
    mut sender: Party,
    to: &Path,
    entry: (&str, &[u8]),
) -> PathBuf {
    let evil = crypto::generate("courier center ORG-001", None).unwrap();
    sender.fingerprint = crypto::fingerprint(&evil);
    let evil_key = SecretKey::unlock(evil.clone(), None).unwrap();
    let site = open(to);
    let spec = Spec {
        kind,
        bundle_id: bundle::new_id(),
        set: SetRef {
            id: bundle::new_id(),
            index: 1,
            count: 1,
        },
        sender,
        recipient: Party {
            fingerprint: site.config.fingerprint.clone(),
            role: site.role(),
            org_id: site.config.org_id.clone(),
        },
        org_id: "ORG-001".into(),
        sequence: 1,
        sender_certificate: Some(crypto::armor_public(&evil).unwrap()),
        rollover: Vec::new(),
    };
    let out = w.path(&format!("self/{}.courier", kind.as_str()));
    let (written, ()) = bundle::write(&out, spec, &evil_key, &site.certificate().unwrap(), |p| {
        p.add_bytes(entry.0, entry.1)
    })
    .unwrap();
    written.persist().unwrap()
}

/// An enrollment reply (the kind that carries its own certificate) addressed to centre A.
fn self_certified(w: &World) -> PathBuf {
    let sender = Party {
        fingerprint: String::new(),
        role: Role::Center,
        org_id: Some("ORG-001".into()),
    };
    self_certified_bundle(
        w,
        Kind::EnrollmentReply,
        sender,
        &w.a,
        ("enrollment.json", b"{}"),
    )
}

/// THREATS "signed by a key nobody enrolled": a bundle that carries its own certificate (the
/// enrollment-reply kind) is not trusted at a centre: not applied, nothing changes.
#[test]
fn a_self_certified_bundle_is_not_applied_at_a_centre() {
    let w = World::enrolled();
    let f = self_certified(&w);
    let before = snapshot(&w.a, true);
    let o = courier(&w.a, &["import", s(&f)]);
    assert!(!o.status.success(), "applied: {}", stdout(&o));
    assert_eq!(snapshot(&w.a, true), before);
}

/// THREATS "signed by a key nobody enrolled": ... and `verify` and `import` refuse it as
/// input (exit 1) in a message naming the file, not "good signature" or a wrong-role error.
#[test]
fn a_self_certified_bundle_is_refused_at_a_centre() {
    let w = World::enrolled();
    let f = self_certified(&w);
    let o = courier(&w.a, &["verify", s(&f)]);
    assert_eq!(o.status.code(), Some(1), "verify: {}", stdout(&o));
    import_refused(&w.a, &f, "refused");
}

/// THREATS "signed by a key nobody enrolled", past the role check: a bundle of the kind each
/// site takes (data at a centre, results at central) that carries its own certificate is
/// judged by the key pinned at enrollment, never by the certificate it brings: refused as
/// signed by an unknown key, naming that key, and nothing changes.
#[test]
fn a_self_certified_bundle_of_the_right_kind_is_refused_by_key_pinning() {
    let w = World::enrolled();
    let as_central = Party {
        fingerprint: String::new(),
        role: Role::Central,
        org_id: None,
    };
    let as_center = Party {
        fingerprint: String::new(),
        role: Role::Center,
        org_id: Some("ORG-001".into()),
    };
    let acks = br#"{"results":[],"logs":[]}"#.as_slice();
    let cases = [
        (Kind::Data, as_central, &w.a, ("acks.json", acks)),
        (Kind::Results, as_center, &w.central, ("ack.json", acks)),
    ];
    let mut refusals = 0;
    for (kind, sender, home, entry) in cases {
        let f = self_certified_bundle(&w, kind, sender, home, entry);
        let fpr = Bundle::open(&f).unwrap().header.sender.fingerprint;
        for verb in ["verify", "import"] {
            let before = snapshot(home, true);
            let err = refused(courier(home, &[verb, s(&f)]), 1, "signed by unknown key");
            assert!(err.contains(&fpr), "{kind:?} {verb}: names the key: {err}");
            assert!(
                !err.contains("bundle is for a"),
                "{kind:?}: not a role refusal: {err}"
            );
            assert_eq!(snapshot(home, true), before, "{kind:?} {verb}");
            refusals += 1;
        }
    }
    assert_eq!(refusals, 4);
}

// ---- wrong recipient -----------------------------------------------------------------------

/// THREATS "a bundle meant for centre A imported at centre B": refused, naming the intended
/// recipient; nothing changes at B (nor at central, where it does not belong either).
#[test]
fn a_bundle_for_another_centre_is_refused_naming_it() {
    let (w, f) = world_with_bundle();
    let err = import_refused(&w.b, &f, "meant for centre ORG-001");
    assert!(err.contains("ORG-002"), "says which site this is: {err}");
    refused(
        courier(&w.b, &["verify", s(&f)]),
        1,
        "meant for centre ORG-001",
    );
    import_refused(&w.central, &f, "meant for centre ORG-001");
}

// ---- mixed parts ---------------------------------------------------------------------------

/// Two data bundles for ORG-001 with a change at central in between.
fn two_bundles(w: &World) -> (PathBuf, PathBuf) {
    w.load_fixtures();
    let one = w.export_down("ORG-001", "down1");
    let update = fixtures().join("data/update.jsonl");
    ok(courier(&w.central, &["load", s(&update)]));
    let two = w.export_down("ORG-001", "down2");
    assert_eq!((one.len(), two.len()), (1, 1));
    (one[0].clone(), two[0].clone())
}

/// THREATS "parts of two bundles mixed together": the payload of one bundle with the header,
/// signature and trailer of another is refused, both ways round.
#[test]
fn parts_of_two_bundles_mixed_are_refused() {
    let w = World::enrolled();
    let (one, two) = two_bundles(&w);
    let b1 = std::fs::read(&one).unwrap();
    let b2 = std::fs::read(&two).unwrap();
    let (h1, _, _) = regions(&b1);
    let (h2, _, _) = regions(&b2);
    let splice = |name: &str, payload_of: &[u8], hp: usize, tail_of: &[u8], ht: usize| {
        let mut v = payload_of[..hp].to_vec();
        v.extend_from_slice(&tail_of[ht..]);
        write(&w.path(&format!("mixed/{name}.courier")), &v)
    };
    let a = splice("payload1-header2", &b1, h1, &b2, h2);
    let b = splice("payload2-header1", &b2, h2, &b1, h1);
    for f in [&a, &b] {
        refused(courier(&w.a, &["verify", s(f)]), 1, "bundle");
        import_refused(&w.a, f, "bundle");
    }
    all_refused(
        &w.a,
        "import",
        &w.path("mixed"),
        2,
        &["incomplete bundle", "damaged bundle"],
    );
}

/// THREATS "parts of two bundles mixed together: every part is bound to its bundle id, index
/// and count". Two genuine multi-file sets of one sender with the same content (the centre's
/// home copied before its export), so that part i of each has a payload of the same length:
/// part i's payload of one set under part i's header of the other passes every length check
/// and is refused by the binding alone, the error naming the bundle, set and part the signed
/// header claims; central's store is unchanged. The genuine files then apply.
#[test]
fn parts_of_two_sets_of_one_sender_mixed_are_refused_by_the_set_binding() {
    let w = World::synced();
    let results = fixtures().join("data/results/ORG-001-day1.jsonl");
    let logs = fixtures().join("data/logs/ORG-001-day1.jsonl");
    ok(courier(&w.a, &["results", "add", s(&results)]));
    ok(courier(&w.a, &["logs", "add", s(&logs)]));
    let twin = w.path("center-a-twin");
    copy_dir(&w.a, &twin);
    let x = w.export_up(&w.a, "up-x", &["--max-file-size", "32K"]);
    // The random ids inside a payload compress a few bytes differently now and then: export
    // the twin again (from a fresh copy) until each part has had the length of x's in some
    // export (each part is matched on its own: all at once is rarer).
    let length = |f: &PathBuf| regions(&std::fs::read(f).unwrap()).0;
    let mut twins: Vec<Option<PathBuf>> = vec![None; x.len()];
    for attempt in 0..40 {
        let home = w.path(&format!("center-a-twin-{attempt}"));
        copy_dir(&twin, &home);
        let y = w.export_up(
            &home,
            &format!("up-y-{attempt}"),
            &["--max-file-size", "32K"],
        );
        assert_eq!(x.len(), y.len(), "{x:?} {y:?}");
        for (i, fy) in y.iter().enumerate() {
            if twins[i].is_none() && length(fy) == length(&x[i]) {
                twins[i] = Some(fy.clone());
            }
        }
        if twins.iter().all(Option::is_some) {
            break;
        }
    }
    assert!(x.len() >= 2, "{x:?}");
    let y: Vec<PathBuf> = twins
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            t.unwrap_or_else(|| panic!("no twin export gave part {} the length of x's", i + 1))
        })
        .collect();
    let mut refusals = 0;
    for (i, (fx, fy)) in x.iter().zip(&y).enumerate() {
        let (bx, by) = (std::fs::read(fx).unwrap(), std::fs::read(fy).unwrap());
        let (hx, _, _) = regions(&bx);
        let (hy, _, _) = regions(&by);
        assert_eq!(hx, hy, "part {}: payloads of the same length", i + 1);
        let header = Bundle::open(fy).unwrap().header;
        assert_ne!(header.set.id, Bundle::open(fx).unwrap().header.set.id);
        let mut mixed = bx[..hx].to_vec();
        mixed.extend_from_slice(&by[hy..]);
        let f = write(
            &w.path(&format!("mixed-sets/part{}.courier", i + 1)),
            &mixed,
        );
        let binding = format!(
            "payload hash does not match the signed header (bundle {}, set {} part {} of {})",
            header.bundle_id,
            header.set.id,
            i + 1,
            y.len()
        );
        refused(courier(&w.central, &["verify", s(&f)]), 1, &binding);
        import_refused(&w.central, &f, &binding);
        refusals += 1;
    }
    assert_eq!(refusals, x.len());
    for f in &x {
        assert!(ok(courier(&w.central, &["import", s(f)])).contains("applied"));
    }
}

// ---- unknown version -----------------------------------------------------------------------

/// THREATS "a newer format version than this program knows": refused with "unsupported
/// format N, this program reads up to M"; a file that is not a bundle at all says so.
#[test]
fn a_newer_format_or_no_bundle_at_all_is_refused() {
    let (w, f) = world_with_bundle();
    let orig = std::fs::read(&f).unwrap();
    let mut v2 = orig.clone();
    v2[..17].copy_from_slice(b"COURIER-BUNDLE 2\n");
    let v2 = write(&w.path("v/format-2.courier"), &v2);
    let needle = "unsupported bundle format 2 (this courier reads up to 1)";
    import_refused(&w.a, &v2, needle);
    refused(courier(&w.a, &["verify", s(&v2)]), 1, needle);
    refused(courier(&w.a, &["inspect", s(&v2)]), 1, needle);

    let mut v10 = b"COURIER-BUNDLE 10\n".to_vec();
    v10.extend_from_slice(&orig[17..]);
    let v10 = write(&w.path("v/format-10.courier"), &v10);
    import_refused(
        &w.a,
        &v10,
        "unsupported bundle format 10 (this courier reads up to 1)",
    );

    let mut x: u32 = 0x9E37_79B9;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    assert_ne!(noise[0], b'C');
    let noise = write(&w.path("v/noise.courier"), &noise);
    import_refused(&w.a, &noise, "not a courier bundle");
    refused(
        courier(&w.a, &["verify", s(&noise)]),
        1,
        "not a courier bundle",
    );
}

// ---- unsafe paths and links ----------------------------------------------------------------

/// THREATS "paths in the bundle (`../`, absolute, links)": a bundle validly signed by the
/// pinned central key whose tar payload holds `../evil`, `/etc/evil`, a path that climbs out
/// of a folder, or a link, is refused; nothing is written outside the home (nor anywhere).
#[test]
fn unsafe_paths_and_links_in_the_payload_are_refused() {
    let w = World::enrolled();
    let template = Bundle::open(&w.export_down("ORG-001", "down")[0])
        .unwrap()
        .header;
    let key = open(&w.central).secret_key().unwrap();
    let a_cert = open(&w.a).certificate().unwrap();
    let evil = b"{\"id\":\"https://central.example/tao.rdf#x\"}\n".as_slice();
    let scope = tar_entry(b"scope-000001.jsonl", b'0', b"", b"");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot",
            tar(&[tar_entry(b"../evil", b'0', b"", evil)]),
            "payload entry '../evil' has an unsafe path",
        ),
        (
            "absolute",
            tar(&[tar_entry(b"/etc/evil", b'0', b"", evil)]),
            "payload entry '/etc/evil' has an unsafe path",
        ),
        (
            "climbs",
            tar(&[
                scope.clone(),
                tar_entry(b"packages/../../evil", b'0', b"", evil),
            ]),
            "unsafe path",
        ),
        (
            "backslash",
            tar(&[tar_entry(b"..\\..\\evil", b'0', b"", evil)]),
            "unsafe path",
        ),
        (
            "symlink",
            tar(&[tar_entry(b"scope-000001.jsonl", b'2', b"/etc/passwd", b"")]),
            "link or special file",
        ),
        (
            "hardlink",
            tar(&[
                scope.clone(),
                tar_entry(b"evil", b'1', b"../../../etc/passwd", b""),
            ]),
            "link or special file",
        ),
    ];
    let cwd = std::env::current_dir().unwrap();
    let outside_before = files_below(w.dir.path());
    let packages_before = files_below(&w.a.join("packages"));
    for (name, t, needle) in &cases {
        let f = craft(
            &w.path(&format!("unsafe/deep/{name}.courier")),
            &template,
            t,
            None,
            &key,
            &a_cert,
        );
        // The envelope is sound (signature and hash good): only the content is hostile.
        ok(courier(&w.a, &["verify", s(&f)]));
        import_refused(&w.a, &f, needle);
    }
    let mut after: Vec<PathBuf> = files_below(w.dir.path());
    after.retain(|p| !p.starts_with(w.path("unsafe")));
    // The refusals are recorded in the centre's audit trail; nothing else may appear.
    after.retain(|p| *p != w.a.join("audit.jsonl"));
    assert_eq!(after, outside_before, "files appeared or vanished");
    assert_eq!(files_below(&w.a.join("packages")), packages_before);
    for p in [
        PathBuf::from("/etc/evil"),
        cwd.join("../evil"),
        cwd.join("evil"),
        w.path("evil"),
        w.path("unsafe/evil"),
    ] {
        assert!(!p.exists(), "{} was written", p.display());
    }

    // Control: the same hand-made bundle with a safe name is accepted.
    let f = craft(
        &w.path("unsafe/safe.courier"),
        &template,
        &tar(&[scope]),
        None,
        &key,
        &a_cert,
    );
    ok(courier(&w.a, &["import", s(&f)]));
}

// ---- size caps -----------------------------------------------------------------------------

/// THREATS "decompression bomb, endless data": a payload whose tar archive is larger than the
/// `content_size` its signed header declares is refused (exit 1) while reading, whether the
/// excess is in the archive's end blocks or inside an entry; nothing is applied.
#[test]
fn a_payload_larger_than_declared_is_refused() {
    let w = World::enrolled();
    let template = Bundle::open(&w.export_down("ORG-001", "down")[0])
        .unwrap()
        .header;
    let key = open(&w.central).secret_key().unwrap();
    let a_cert = open(&w.a).certificate().unwrap();
    // An entry of 1 MiB of empty lines: valid content, just large.
    let t = tar(&[tar_entry(
        b"scope-000001.jsonl",
        b'0',
        b"",
        &vec![b'\n'; 1 << 20],
    )]);
    let real = t.len() as u64;
    let cases = [("end-blocks", real - 1), ("inside-entry", 16 << 10)];
    for (name, declared) in cases {
        let f = craft(
            &w.path(&format!("caps/{name}.courier")),
            &template,
            &t,
            Some(declared),
            &key,
            &a_cert,
        );
        let before = snapshot(&w.a, true);
        let o = courier(&w.a, &["import", s(&f)]);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{name}: declared {declared} of {real}: {}",
            stderr(&o)
        );
        let err = stderr(&o);
        assert!(
            err.contains("larger than") && err.contains("declare"),
            "{name}: {err}"
        );
        assert_eq!(snapshot(&w.a, true), before, "{name}: store changed");
    }
    // Control: declaring the true size, the same payload is accepted.
    let f = craft(
        &w.path("caps/exact.courier"),
        &template,
        &t,
        None,
        &key,
        &a_cert,
    );
    ok(courier(&w.a, &["import", s(&f)]));
}

// ---- replay and rollback -------------------------------------------------------------------

/// THREATS "the same bundle imported twice": the second import exits 0, says already
/// applied, and changes nothing (history included).
#[test]
fn the_same_bundle_twice_is_already_applied() {
    let (w, f) = world_with_bundle();
    ok(courier(&w.a, &["import", s(&f)]));
    let before = snapshot(&w.a, true);
    let out = ok(courier(&w.a, &["import", s(&f)]));
    assert!(out.contains("already applied"), "{out}");
    assert_eq!(snapshot(&w.a, true), before);
    // A copy under another name is the same bundle.
    let copy = w.path("copy/again.courier");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(&f, &copy).unwrap();
    let out = ok(courier(&w.a, &["import", "--json", s(&copy)]));
    let v: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["status"], "already-applied", "{out}");
    assert_eq!(snapshot(&w.a, true), before);
}

/// THREATS "an older bundle after a newer one from the same sender (rollback)": never
/// applied unless `--allow-rollback`, which applies it and records ROLLBACK in the history.
/// Older than the one applied (a stick found later), it is superseded: exit 0, nothing
/// changes, and the message says nothing needs doing.
#[test]
fn an_older_bundle_after_a_newer_one_is_superseded_and_changes_nothing() {
    let w = World::enrolled();
    let (one, two) = two_bundles(&w);
    ok(courier(&w.a, &["import", s(&two)]));
    let before = snapshot(&w.a, true);
    let out = ok(courier(&w.a, &["import", s(&one)]));
    assert!(
        out.contains("data bundle 1 is superseded by bundle 2, already applied")
            && out.contains("nothing needs doing"),
        "{out}"
    );
    assert!(!out.contains("rollback refused"), "{out}");
    assert_eq!(
        snapshot(&w.a, true),
        before,
        "a superseded bundle changes nothing"
    );

    let out = ok(courier(&w.a, &["import", "--allow-rollback", s(&one)]));
    assert!(out.contains("applied"), "{out}");
    let history: Vec<Value> =
        serde_json::from_str(&ok(courier(&w.a, &["history", "--json"]))).unwrap();
    let last = history.last().expect("history rows");
    assert_eq!(last["seq"], 1, "{last}");
    assert!(
        last["report"].as_str().unwrap().contains("ROLLBACK"),
        "the override is recorded: {last}"
    );
    ok(courier(&w.a, &["history", "--verify"]));
}

// ---- two imports at once -------------------------------------------------------------------

/// THREATS "two imports at once on one store": while another writer holds the store, import
/// gives up after the busy timeout with exit 4 "store busy" and writes nothing; once the
/// store is free the same file imports.
#[test]
fn an_import_while_the_store_is_held_says_store_busy() {
    let (w, f) = world_with_bundle();
    let before = snapshot(&w.a, true);
    let conn = rusqlite::Connection::open(w.a.join("store.sqlite")).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let o = courier_env(
        &w.a,
        &["import", s(&f)],
        &[("COURIER_BUSY_TIMEOUT_MS", "200")],
    );
    let err = refused(o, 4, "store busy");
    assert!(err.contains("store.sqlite"), "names the store: {err}");
    conn.execute_batch("ROLLBACK").unwrap();
    drop(conn);
    assert_eq!(snapshot(&w.a, true), before);
    ok(courier(&w.a, &["import", s(&f)]));
}

/// THREATS "two imports at once on one store", courier against courier: while a second
/// courier command is inside its write (a long `results add`, kept there by not reading its
/// progress lines: its stderr pipe fills and it waits, holding the store), `import` gives up
/// with exit 4 "store busy" and applies nothing; once the first command ends, the first
/// command's work is all there and the same file imports.
#[test]
fn an_import_while_another_courier_writes_says_store_busy() {
    use std::io::BufRead;
    let w = World::synced();
    ok(courier(
        &w.central,
        &["load", s(&fixtures().join("data/update.jsonl"))],
    ));
    let f = w.export_down("ORG-001", "down-2");
    assert_eq!(f.len(), 1);
    let fixture =
        std::fs::read_to_string(fixtures().join("data/results/ORG-001-day1.jsonl")).unwrap();
    let first = fixture.lines().next().unwrap();
    let n = 2000;
    let lines: Vec<String> = (0..n)
        .map(|i| first.replace("i1764144000001", &format!("busy{i:06}")))
        .collect();
    let many = write(&w.path("many.jsonl"), (lines.join("\n") + "\n").as_bytes());
    let before = count(&w.a, "bundles");
    let mut holder = std::process::Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(["--home", s(&w.a), "results", "add", s(&many)])
        .env_remove("COURIER_HOME")
        .env("COURIER_PROGRESS_EVERY", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The first progress line: the holder is inside its write, which lasts until its last
    // line is read (n lines are far more than a pipe holds).
    let mut progress = std::io::BufReader::new(holder.stderr.take().unwrap()).lines();
    let line = progress.next().expect("a progress line").unwrap();
    assert!(line.contains("1 record(s)"), "{line}");
    let o = courier_env(
        &w.a,
        &["import", s(&f[0])],
        &[("COURIER_BUSY_TIMEOUT_MS", "200")],
    );
    let err = refused(o, 4, "store busy");
    assert!(err.contains("store.sqlite"), "names the store: {err}");
    let rest = progress.count();
    let done = holder.wait_with_output().unwrap();
    assert!(done.status.success(), "the holder: {}", stdout(&done));
    assert_eq!(rest + 1, n, "one progress line per record");
    assert!(
        stdout(&done).contains(&format!("{n} added")),
        "{}",
        stdout(&done)
    );
    assert_eq!(
        count(&w.a, "bundles"),
        before,
        "the refused import recorded nothing"
    );
    let out = ok(courier(&w.a, &["import", s(&f[0])]));
    assert!(
        out.contains("ORG-001-data-000002.courier: applied"),
        "{out}"
    );
}

// ---- inspect -------------------------------------------------------------------------------

/// `inspect --json` shows what a bundle is without any key or site: format, kind, sender,
/// recipient, sequence, created, sizes, part i of n.
#[test]
fn inspect_shows_the_header_without_a_key() {
    let (w, f) = world_with_bundle();
    let nowhere = w.path("no-such-home");
    let out = ok(courier(&nowhere, &["inspect", "--json", s(&f)]));
    assert!(!nowhere.exists(), "inspect created a home");
    let v: Value = serde_json::from_str(&out).unwrap();
    let len = std::fs::metadata(&f).unwrap().len();
    assert_eq!(v["format"], 1);
    assert_eq!(v["kind"], "data");
    assert_eq!(v["sender"]["role"], "central");
    assert_eq!(v["sender"]["fingerprint"], w.fingerprint(&w.central));
    assert_eq!(v["recipient"]["role"], "center");
    assert_eq!(v["recipient"]["org_id"], "ORG-001");
    assert_eq!(v["recipient"]["fingerprint"], w.fingerprint(&w.a));
    assert_eq!(v["org_id"], "ORG-001");
    assert_eq!(v["sequence"], 1);
    assert!(v["created"].as_str().is_some_and(|c| c.len() >= 20), "{v}");
    assert_eq!(v["file_size"], len);
    assert_eq!(v["payload_offset"], 17);
    let payload = v["payload_size"].as_u64().unwrap();
    assert!(payload > 0 && payload < len, "{v}");
    assert!(v["content_size"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(
        (v["part"].clone(), v["parts"].clone()),
        (1.into(), 1.into())
    );
    let counts: BTreeMap<String, u64> = serde_json::from_value(v["counts"].clone()).unwrap();
    assert_eq!(counts.get("scope"), Some(&12), "{v}");
    // The human form says the same.
    let text = ok(courier(&nowhere, &["inspect", s(&f)]));
    assert!(text.contains("part        1 of 1"), "{text}");
    assert!(text.contains("ORG-001"), "{text}");
}
