//! Any bytes as a QTI test package: zip structure, duplicate names, sizes, manifest and
//! every XML file it references.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = courier::package::check_package(std::io::Cursor::new(data));
});
