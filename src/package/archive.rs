//! The zip archive: refused when unsafe or absurd (duplicate names, `..` or absolute names,
//! symbolic links, encrypted entries, caps on entries and on declared and actual sizes), then
//! read one document at a time, never more than the per-file cap.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Seek, Write};

use zip::ZipArchive;

use super::report::PackageProblem;

const MIB: u64 = 1024 * 1024;

/// Caps against zip bombs and absurd archives.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Largest uncompressed size of one entry.
    pub entry_bytes: u64,
    /// Largest uncompressed size of all entries together.
    pub total_bytes: u64,
    /// Largest number of entries (files and folders).
    pub entries: usize,
}

pub(super) const LIMITS: Limits = Limits {
    entry_bytes: 512 * MIB,
    total_bytes: 2048 * MIB,
    entries: 100_000,
};

/// An archive that passed every archive-level check, ready to have its documents read.
pub(super) struct Package<R> {
    archive: ZipArchive<R>,
    contents: Contents,
    limits: Limits,
}

impl<R: Read + Seek> Package<R> {
    /// Open the archive and run every archive-level check: duplicate names, entry names and
    /// types, declared sizes, then one decompression of every file under the caps (the zip
    /// reader verifies each checksum on the way).
    pub fn open(reader: R, limits: Limits) -> Result<Self, PackageProblem> {
        let unreadable = |e: zip::result::ZipError| {
            PackageProblem::archive(format!("not a readable zip archive ({e})"))
        };
        let archive = ZipArchive::new(reader).map_err(unreadable)?;
        // The zip crate keeps one entry per name (the last), so a second copy of a file would
        // hide from the check below while a consumer that reads the first match gets the other
        // one: the central directory is read here, entry by entry, to refuse any name seen twice.
        let start = archive.central_directory_start();
        let mut reader = archive.into_inner();
        refuse_duplicate_names(&mut reader, start, limits.entries)?;
        let mut archive = ZipArchive::new(reader).map_err(unreadable)?;
        let contents = survey(&mut archive, limits)?;
        read_everything(&mut archive, &contents, limits)?;
        Ok(Package {
            archive,
            contents,
            limits,
        })
    }

    /// Read the file at `path` (a normalised package path) into memory, never more than the
    /// per-file cap; None when the package has no such file.
    pub fn read(&mut self, path: &str) -> Option<Result<Vec<u8>, PackageProblem>> {
        let index = *self.contents.files.get(path)?;
        Some(read_entry(&mut self.archive, index, path, self.limits))
    }
}

impl<R> Package<R> {
    /// Whether `path` is a file of the package.
    pub fn is_file(&self, path: &str) -> bool {
        self.contents.files.contains_key(path)
    }

    /// Whether `path` is a file or a folder of the package.
    pub fn has(&self, path: &str) -> bool {
        self.contents.has(path)
    }

    /// How many files (not folders) the archive holds.
    pub fn files(&self) -> usize {
        self.contents.files.len()
    }
}

/// What the archive holds, by normalised path.
struct Contents {
    /// Files (not folders), with their index in the archive.
    files: HashMap<String, usize>,
    /// Folders, whether stored as entries or implied by file paths.
    folders: HashSet<String>,
}

impl Contents {
    fn has(&self, path: &str) -> bool {
        self.files.contains_key(path) || self.folders.contains(path.trim_end_matches('/'))
    }
}

/// Check every entry's name, type and declared size, and index the files.
fn survey<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    limits: Limits,
) -> Result<Contents, PackageProblem> {
    if archive.len() > limits.entries {
        return Err(PackageProblem::archive(format!(
            "has {} entries, more than the {} allowed",
            archive.len(),
            limits.entries
        )));
    }
    let mut files = HashMap::new();
    let mut folders = HashSet::new();
    let mut declared_total: u64 = 0;
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).map_err(|e| {
            PackageProblem::archive(format!("not a readable zip archive (entry {index}: {e})"))
        })?;
        let (name, size) = check_entry(&entry, limits)?;
        declared_total = declared_total.saturating_add(size);
        if declared_total > limits.total_bytes {
            return Err(PackageProblem::archive(format!(
                "declares more than {} bytes uncompressed in total",
                limits.total_bytes
            )));
        }
        let path = normalise_entry_name(&name);
        if entry.is_dir() || path.is_empty() {
            if !path.is_empty() {
                folders.insert(path);
            }
            continue;
        }
        let mut parent = path.as_str();
        while let Some(cut) = parent.rfind('/') {
            parent = &parent[..cut];
            folders.insert(parent.to_string());
        }
        if files.insert(path, index).is_some() {
            return Err(PackageProblem::entry(
                &name,
                "appears more than once in the archive",
            ));
        }
    }
    Ok(Contents { files, folders })
}

/// One entry as the central directory describes it: a safe name without NUL, not a symbolic
/// link, not encrypted, within the size allowed per file. Returns its name and declared size.
fn check_entry<R: Read>(
    entry: &zip::read::ZipFile<'_, R>,
    limits: Limits,
) -> Result<(String, u64), PackageProblem> {
    let name = entry.name().to_string();
    if entry.name_raw().contains(&0) || name.contains('\0') {
        return Err(PackageProblem::entry(
            &name.replace('\0', "\\0"),
            "entry name contains a NUL character",
        ));
    }
    check_entry_name(&name)?;
    if entry
        .unix_mode()
        .is_some_and(|mode| mode & 0o170_000 == 0o120_000)
    {
        return Err(PackageProblem::entry(
            &name,
            "is a symbolic link, which a package may not contain",
        ));
    }
    if entry.encrypted() {
        return Err(PackageProblem::entry(&name, "is encrypted"));
    }
    let size = entry.size();
    if size > limits.entry_bytes {
        return Err(PackageProblem::entry(
            &name,
            format!(
                "declares {size} bytes uncompressed, more than the {} allowed per file",
                limits.entry_bytes
            ),
        ));
    }
    Ok((name, size))
}

/// Walk the central directory from `start` (its absolute offset) and refuse the package when
/// two entries have the same name once normalised (`a/b`, `a//b`, `./a/b` and `a\b` are one
/// file to an unpacker). Reads only the fixed 46-byte headers and the names.
fn refuse_duplicate_names<R: Read + Seek>(
    reader: &mut R,
    start: u64,
    max_entries: usize,
) -> Result<(), PackageProblem> {
    const SIGNATURE: u32 = 0x0201_4b50;
    let broken =
        |e: io::Error| PackageProblem::archive(format!("not a readable zip archive ({e})"));
    reader.seek(io::SeekFrom::Start(start)).map_err(broken)?;
    let mut seen = HashSet::new();
    let mut header = [0u8; 46];
    for _ in 0..=max_entries {
        match reader.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(broken(e)),
        }
        if u32::from_le_bytes([header[0], header[1], header[2], header[3]]) != SIGNATURE {
            break;
        }
        let field = |at: usize| u64::from(u16::from_le_bytes([header[at], header[at + 1]]));
        let (name_len, extra_len, comment_len) = (field(28), field(30), field(32));
        let mut name = vec![0u8; name_len as usize];
        reader.read_exact(&mut name).map_err(broken)?;
        reader
            .seek(io::SeekFrom::Current((extra_len + comment_len) as i64))
            .map_err(broken)?;
        let written = String::from_utf8_lossy(&name).into_owned();
        let normalised = normalise_entry_name(&written);
        if !normalised.is_empty() && !seen.insert(normalised) {
            return Err(PackageProblem::entry(
                &written,
                "appears more than once in the archive; a package may hold each file once",
            ));
        }
    }
    Ok(())
}

/// Refuse names that could escape the folder a package is unpacked into.
fn check_entry_name(name: &str) -> Result<(), PackageProblem> {
    if name.starts_with('/') || name.starts_with('\\') || has_drive_letter(name) {
        return Err(PackageProblem::entry(
            name,
            "entry name is an absolute path",
        ));
    }
    if name.split(['/', '\\']).any(|part| part == "..") {
        return Err(PackageProblem::entry(
            name,
            "entry name climbs out of the package with `..`",
        ));
    }
    Ok(())
}

pub(super) fn has_drive_letter(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

/// `a\b//./c` → `a/b/c` (names are already known to hold no `..` and no leading separator).
fn normalise_entry_name(name: &str) -> String {
    name.split(['/', '\\'])
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Decompress every file once, enforcing the caps on what actually comes out and letting the
/// zip reader verify each checksum.
fn read_everything<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    contents: &Contents,
    limits: Limits,
) -> Result<(), PackageProblem> {
    let mut indexed: Vec<(&String, usize)> = contents.files.iter().map(|(p, i)| (p, *i)).collect();
    indexed.sort_by_key(|(_, index)| *index);
    let mut total: u64 = 0;
    for (path, index) in indexed {
        let cap = limits
            .entry_bytes
            .min(limits.total_bytes.saturating_sub(total));
        let read = copy_capped(archive, index, path, cap, &mut io::sink())?;
        if read > cap {
            return Err(if cap < limits.entry_bytes {
                PackageProblem::archive(format!(
                    "holds more than {} bytes uncompressed in total",
                    limits.total_bytes
                ))
            } else {
                PackageProblem::entry(
                    path,
                    format!(
                        "decompresses to more than the {} bytes allowed per file",
                        limits.entry_bytes
                    ),
                )
            });
        }
        total += read;
    }
    Ok(())
}

/// Read one file into memory, never more than the per-file cap.
fn read_entry<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    index: usize,
    path: &str,
    limits: Limits,
) -> Result<Vec<u8>, PackageProblem> {
    let mut bytes = Vec::new();
    let read = copy_capped(archive, index, path, limits.entry_bytes, &mut bytes)?;
    if read > limits.entry_bytes {
        return Err(PackageProblem::entry(
            path,
            format!(
                "decompresses to more than the {} bytes allowed per file",
                limits.entry_bytes
            ),
        ));
    }
    Ok(bytes)
}

/// Copy at most `cap + 1` decompressed bytes of an entry into `out`; returns how many came.
fn copy_capped<R: Read + Seek, W: Write>(
    archive: &mut ZipArchive<R>,
    index: usize,
    path: &str,
    cap: u64,
    out: &mut W,
) -> Result<u64, PackageProblem> {
    let entry = archive
        .by_index(index)
        .map_err(|e| PackageProblem::entry(path, format!("cannot be read ({e})")))?;
    io::copy(&mut entry.take(cap.saturating_add(1)), out)
        .map_err(|e| PackageProblem::entry(path, format!("is damaged ({e})")))
}
