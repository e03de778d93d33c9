//! A full disk at a centre (issue 13): a data bundle whose package does not fit is imported
//! into a home on a small tmpfs. The import is refused with a message that says the disk is
//! full, the store and the packages folder are as before, and once there is space the same
//! file imports. Mounting needs root (or a user namespace); where it is not possible the
//! test says why on stderr and returns, as a skip, never as a silent pass.

use std::io::Write;

use sha2::Digest;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", s(at)])
            .output()
            .map_err(|e| format!("mount not run: {e}"))?;
        if !o.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
        Ok(Tmpfs(at.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let o = Command::new("mount")
            .args(["-o", &format!("remount,size={size}"), s(&self.0)])
            .output()
            .expect("mount runs");
        assert!(o.status.success(), "remount: {}", stderr(&o));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}

/// A copy of a valid QTI package with an incompressible, unreferenced file of `size` bytes
/// added (stored, not deflated), so the package is large in the bundle and on disk.
fn large_package(out: &Path, size: usize) {
    let src = fixtures().join("qti/valid/2.1-basic-Basic.zip");
    let mut from = zip::ZipArchive::new(std::fs::File::open(&src).unwrap()).unwrap();
    let mut to = zip::ZipWriter::new(std::fs::File::create(out).unwrap());
    for i in 0..from.len() {
        let entry = from.by_index_raw(i).unwrap();
        to.raw_copy_file(entry).unwrap();
    }
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    to.start_file("media/filler.bin", opts).unwrap();
    // xorshift: bytes zstd cannot shrink, the same on every run.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = Vec::with_capacity(size);
    while buf.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf.extend_from_slice(&x.to_le_bytes());
    }
    to.write_all(&buf[..size]).unwrap();
    to.finish().unwrap();
}

/// The fixture data set with the basic test's package replaced by `package`, and the other
/// packages named by absolute path.
fn data_with(package: &Path, out: &Path) {
    let text = std::fs::read_to_string(fixtures().join("data/central.jsonl")).unwrap();
    let qti = fixtures().join("qti");
    let text = text
        .replace("../qti/valid/2.1-basic-Basic.zip", s(package))
        .replace("../qti/", &format!("{}/", s(&qti)));
    std::fs::write(out, text).unwrap();
}

fn listing(dir: &Path) -> Vec<(String, u64)> {
    if !dir.exists() {
        return vec![];
    }
    files_under(dir)
        .into_iter()
        .map(|p| {
            let len = std::fs::metadata(&p).unwrap().len();
            (p.strip_prefix(dir).unwrap().display().to_string(), len)
        })
        .collect()
}

#[test]
fn a_full_disk_at_a_centre_refuses_the_import_and_changes_nothing_until_there_is_space() {
    let w = World::enrolled();
    let big = w.path("big.zip");
    large_package(&big, 3 << 20);
    let data = w.path("data.jsonl");
    data_with(&big, &data);
    ok(courier(&w.central, &["load", s(&data)]));
    let files = w.export_down("ORG-001", "down");
    assert_eq!(files.len(), 1, "{files:?}");

    let disk = w.path("disk");
    let mounted = match Tmpfs::mount(&disk, "1m") {
        Ok(m) => m,
        Err(why) => {
            eprintln!("SKIPPED full-disk test: cannot mount a tmpfs here ({why}); run as root");
            return;
        }
    };
    let home = disk.join("center-a");
    copy_dir(&w.a, &home);
    let store_before = snapshot(&home, true);
    let packages_before = listing(&home.join("packages"));

    let o = courier(&home, &["import", s(&files[0])]);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(5),
        "refused as a failure of the site: {err}"
    );
    assert!(
        err.contains("no space left"),
        "says the disk is full: {err}"
    );
    let name = files[0].file_name().unwrap().to_str().unwrap();
    assert!(err.contains(name), "names the bundle: {err}");
    assert_eq!(snapshot(&home, true), store_before, "store changed");
    assert_eq!(listing(&home.join("packages")), packages_before);

    mounted.resize("16m");
    ok(courier(&home, &["import", s(&files[0])]));
    let big_sha = hex::encode(sha2::Sha256::digest(std::fs::read(&big).unwrap()));
    let placed = listing(&home.join("packages"));
    assert!(
        placed.iter().any(|(n, _)| n.contains(&big_sha)),
        "the large package is in place: {placed:?}"
    );
}
