//! Any bytes as the payload of a bundle that verifies: each run builds a genuine bundle
//! (central → ORG-001, signed and encrypted with the fixture keys) around the input, then
//! reads it back with ORG-001's key as an import does — decrypt, inner signature, zstd,
//! tar, entry names, and each entry read the way its importer reads it.
//!
//! The first byte picks the layer the input stands for:
//! 0. the tar archive (compressed here, so the fuzzer works on tar and entries)
//! 1. the zstd stream (the decompressor and the declared content size)
//! 2. the OpenPGP message itself (not encrypted here; the header still signs its hash)
//!
//! Bit 0x80 declares a content size smaller than the real one (the decompression-bomb check).
#![no_main]

use std::io::{Read, Write};
use std::sync::OnceLock;

use courier::bundle::{read_small, Bundle, Header};
use courier::crypto::{self, SecretKey};
use courier::limits::{self, Limits, Records, Split};
use courier::site::openpgp_cert::Cert;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sha2::{Digest, Sha256};

mod common;

struct Keys {
    central: SecretKey,
    central_cert: Cert,
    center: SecretKey,
    center_cert: Cert,
    header: Header,
}

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let template = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/vectors/ok_data.courier"
        );
        let header = Bundle::open(std::path::Path::new(template))
            .expect("fixtures/vectors/ok_data.courier opens")
            .header;
        Keys {
            central: common::secret(common::CENTRAL),
            central_cert: common::cert(common::CENTRAL).strip_secret_key_material(),
            center: common::secret(common::CENTER_1),
            center_cert: common::cert(common::CENTER_1).strip_secret_key_material(),
            header,
        }
    })
}

/// The bundle file format (docs/FORMAT.md), written here around any payload.
fn bundle_file(k: &Keys, message: &[u8], content_size: u64) -> Vec<u8> {
    let line = b"COURIER-BUNDLE 1\n";
    let mut header = k.header.clone();
    header.payload.offset = line.len() as u64;
    header.payload.length = message.len() as u64;
    header.payload.sha256 = hex::encode(Sha256::digest(message));
    header.payload.content_size = content_size;
    let header_bytes = serde_json::to_vec(&header).expect("header serialises");
    let sig = crypto::sign_detached(&k.central, &header_bytes).expect("header signed");
    let mut out = Vec::with_capacity(message.len() + header_bytes.len() + 512);
    out.extend_from_slice(line);
    out.extend_from_slice(message);
    out.extend_from_slice(&header_bytes);
    out.extend_from_slice(&sig);
    out.extend_from_slice(b"CRB-TAIL");
    out.extend_from_slice(&(header_bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(&(sig.len() as u64).to_be_bytes());
    out
}

fn seal(k: &Keys, plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w =
        crypto::sign_encrypt_writer(&mut out, &k.central, &k.center_cert).expect("message writer");
    w.write_all(plain).expect("message written");
    w.finalize().expect("message finished");
    out
}

/// Read one entry as the data-bundle importer does (downsync.rs), without a store.
fn visit(path: &std::path::Path, name: &str, r: &mut dyn Read) -> courier::Result<()> {
    let lim = Limits::default();
    if name.ends_with(".jsonl") {
        let mut records = Records::new(std::io::BufReader::new(r), lim);
        while let Some((_loc, split)) = records.next_record().map_err(|e| courier::Error::Io {
            path: path.into(),
            source: e,
        })? {
            if let Split::Record(bytes) = split {
                if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                    let _ = courier::schema::check("data-entity", &v);
                }
            }
        }
    } else if name.ends_with(".json") {
        let bytes = read_small(path, name, r, 1 << 20)?;
        if let Ok(v) = limits::parse(&bytes, &lim) {
            let _ = courier::schema::check("data-acks", &v);
        }
    } else {
        std::io::copy(r, &mut std::io::sink()).map_err(|e| courier::Error::Io {
            path: path.into(),
            source: e,
        })?;
    }
    Ok(())
}

fuzz_target!(|input: &[u8]| {
    let Some((&pick, data)) = input.split_first() else {
        return;
    };
    let k = keys();
    let (message, real_size) = match pick & 0x7f {
        0 => {
            let z = zstd::bulk::compress(data, 1).expect("zstd compresses");
            (seal(k, &z), data.len() as u64)
        }
        1 => (seal(k, data), 1 << 20),
        _ => (data.to_vec(), 1 << 20),
    };
    let content_size = if pick & 0x80 != 0 {
        real_size / 2
    } else {
        real_size
    };
    if message.is_empty() {
        return;
    }
    let file = bundle_file(k, &message, content_size);
    let path = common::scratch("payload.courier", &file);
    let bundle = Bundle::open(&path).expect("a bundle written here opens");
    bundle
        .verify(&k.central_cert)
        .expect("a bundle written here verifies");
    let _ = bundle.read_payload(&k.center, &k.central_cert, |name, r| visit(&path, name, r));
});
