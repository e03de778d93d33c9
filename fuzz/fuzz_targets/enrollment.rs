//! Any bytes as an enrollment file (`courier enroll`): JSON, schema, body, central's
//! certificate, armored signature and its verification.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let path = common::scratch("enrollment.json", data);
    let _ = courier::enroll::read_enrollment(&path);
});
