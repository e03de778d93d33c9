//! Inputs found by the fuzz targets (fuzz/, fuzz/README.md), kept in fixtures/fuzz/ as
//! regression tests: each must be refused with a one-line error, never a panic.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::common::{courier, refused};

fn found(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/fuzz")
        .join(name)
}

/// Found by the `package` target: a central-directory entry whose extended-timestamp extra
/// field (0x5455) has length 0. zip 4.6 subtracts before checking that length, an overflow
/// panic in any build with overflow checks (`cargo test`, the fuzz build); Cargo.toml turns
/// them off for zip, so the field is refused as in release. Under `cargo test --release`
/// this passes with or without that fix; under `cargo test` it fails without it.
#[test]
fn a_package_with_an_empty_extended_timestamp_field_is_refused_not_a_panic() {
    let path = found("package_empty_extended_timestamp.zip");
    let file = BufReader::new(File::open(&path).expect("fixture opens"));
    let problem = courier::package::check_package(file)
        .expect_err("a package whose zip directory is broken is refused");
    assert!(
        problem.reason.contains("not a readable zip archive"),
        "unexpected reason: {problem}"
    );
    // In memory, as the fuzz target read it (the zip reader takes another path there).
    let bytes = std::fs::read(&path).expect("fixture reads");
    let problem = courier::package::check_package(std::io::Cursor::new(bytes))
        .expect_err("refused from memory too");
    assert!(
        problem.reason.contains("not a readable zip archive"),
        "unexpected reason: {problem}"
    );

    let home = tempfile::tempdir().expect("tempdir");
    let err = refused(
        courier(
            home.path(),
            &["package", "check", path.to_str().expect("utf-8 path")],
        ),
        1,
        "package_empty_extended_timestamp.zip",
    );
    assert!(err.contains("not a readable zip archive"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}
