//! Shared by the targets: the fixed test-vector keys and a scratch file per process.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use courier::crypto::{self, SecretKey};
use courier::site::openpgp_cert::Cert;

/// The fixture keys (fixtures/vectors/keys/, unprotected, test-only).
pub const CENTRAL: &[u8] = include_bytes!("../../fixtures/vectors/keys/central.asc");
pub const CENTER_1: &[u8] = include_bytes!("../../fixtures/vectors/keys/center-ORG-001.asc");
pub const CENTER_2: &[u8] = include_bytes!("../../fixtures/vectors/keys/center-ORG-002.asc");
pub const INTRUDER: &[u8] = include_bytes!("../../fixtures/vectors/keys/intruder.asc");

pub fn cert(armored: &[u8]) -> Cert {
    crypto::parse_cert(armored).expect("fixture key parses")
}

pub fn secret(armored: &[u8]) -> SecretKey {
    SecretKey::unlock(cert(armored), None).expect("fixture key is unprotected")
}

/// Public certificates of every fixture key.
pub fn certs() -> &'static [Cert] {
    static C: OnceLock<Vec<Cert>> = OnceLock::new();
    C.get_or_init(|| {
        [CENTRAL, CENTER_1, CENTER_2, INTRUDER]
            .iter()
            .map(|k| cert(k).strip_secret_key_material())
            .collect()
    })
}

/// A file in a temporary folder kept for the life of the process, rewritten on every run
/// (the parsers under test take paths).
pub fn scratch(name: &str, data: &[u8]) -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("temporary folder"));
    let path = dir.path().join(name);
    std::fs::write(&path, data).expect("scratch file written");
    path
}
