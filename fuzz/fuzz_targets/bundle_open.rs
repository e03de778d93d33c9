//! Any bytes as a bundle file: open (structure, header JSON and schema), then verify the
//! signature and payload hash against the fixture key the header names (no secret key).
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let path = common::scratch("input.courier", data);
    let Ok(bundle) = courier::bundle::Bundle::open(&path) else {
        return;
    };
    let certs = common::certs();
    let sender = certs
        .iter()
        .find(|c| courier::crypto::fingerprint(c) == bundle.header.sender.fingerprint)
        .unwrap_or(&certs[0]);
    let _ = bundle.verify(sender);
});
