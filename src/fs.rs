//! File helpers shared by every layer: a temporary file beside its destination renamed into
//! place once complete, atomic small writes, and the expansion of folders named on the
//! command line into the files they hold. Knows nothing of bundles, sites or stores.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// A temporary file (`.courier-*.part`) in the folder that will hold `path` (created if
/// needed), to be renamed to `path` once complete: the rename is atomic on one filesystem.
///
/// The file is locked (advisory, `flock`) for as long as it is open, and stale parts left in
/// the folder by a command that was killed (their lock died with the process) are removed
/// first: a crash never leaves litter beyond the next command that writes there.
/// The last component of a path as text (lossy), for reports and the history; the whole
/// path when it has none.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned()
}

/// The files of a command as the history names them: each path as given, at most 20, then
/// how many more.
pub fn files_named(files: &[PathBuf]) -> String {
    let mut named: Vec<String> = files
        .iter()
        .take(20)
        .map(|f| f.display().to_string())
        .collect();
    if files.len() > 20 {
        named.push(format!("and {} more", files.len() - 20));
    }
    if named.is_empty() {
        "no file".into()
    } else {
        named.join(", ")
    }
}

pub fn temp_beside(path: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).at(dir)?;
    remove_stale_parts(dir)?;
    let tmp = tempfile::Builder::new()
        .prefix(PART_PREFIX)
        .suffix(PART_SUFFIX)
        .tempfile_in(dir)
        .at(dir)?;
    tmp.as_file().lock().at(tmp.path())?;
    crate::failpoint::hit("part.create")?;
    Ok(tmp)
}

const PART_PREFIX: &str = ".courier-";
const PART_SUFFIX: &str = ".part";

/// Remove the `.courier-*.part` files of `dir` that no running command holds, and return how
/// many were removed. A part still being written is locked by its writer and kept.
pub fn remove_stale_parts(dir: &Path) -> Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_part = name.starts_with(PART_PREFIX) && name.ends_with(PART_SUFFIX);
        if !is_part || !entry.file_type().at(entry.path())?.is_file() {
            continue;
        }
        let path = entry.path();
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            // Renamed or removed by its writer meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&path, e)),
        };
        match file.try_lock() {
            Ok(()) => match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            },
            Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
    }
    Ok(removed)
}

/// Write `bytes` to `path` through a temporary name in the same folder, flushed to disk
/// before the rename: a crash or a pulled stick never leaves a file that looks whole.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = temp_beside(path)?;
    crate::failpoint::hit("part.write")?;
    tmp.write_all(bytes).at(path)?;
    crate::failpoint::hit("part.fsync")?;
    tmp.as_file().sync_all().at(path)?;
    crate::failpoint::hit("part.rename")?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// One thing found among the paths given on the command line.
#[derive(Debug)]
pub enum Found {
    /// A file to read: named on the command line, or found in a folder with a wanted extension.
    File(PathBuf),
    /// A hidden file found in a folder with a wanted extension (a Mac writes `._NAME.courier`
    /// AppleDouble files beside every bundle on a stick): not read, reported as skipped.
    Hidden(PathBuf),
    /// A path that cannot be read: a missing file, an unreadable subfolder.
    Unreadable(Error),
}

/// Expand folders into the files they hold with one of `exts`, in order (each folder's files
/// sorted); files named are kept whatever their name. Hidden folders (`.Trashes`,
/// `.Spotlight-V100`, ...) are not entered; hidden files are reported as [`Found::Hidden`].
/// Nothing that cannot be read is dropped: it comes back as [`Found::Unreadable`].
pub fn find_paths(paths: &[PathBuf], exts: &[&str]) -> Vec<Found> {
    let mut out = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Err(e) => out.push(Found::Unreadable(Error::input(p, &e))),
            Ok(m) if m.is_dir() => {
                let mut found: Vec<(PathBuf, Found)> = Vec::new();
                let walk = walkdir::WalkDir::new(p)
                    .follow_links(false)
                    .into_iter()
                    .filter_entry(|e| {
                        e.depth() == 0 || !e.file_type().is_dir() || !hidden(e.path())
                    });
                for entry in walk {
                    let entry = match entry {
                        Ok(e) => e,
                        Err(e) => {
                            let at = e.path().unwrap_or(p).to_path_buf();
                            let why = match e.io_error() {
                                Some(io) => io.kind().to_string(),
                                None => e.to_string(),
                            };
                            let err = Error::InputUnreadable {
                                path: at.clone(),
                                what: format!("folder not read ({why}); nothing in it was read"),
                            };
                            found.push((at, Found::Unreadable(err)));
                            continue;
                        }
                    };
                    let path = entry.path();
                    if !entry.file_type().is_file()
                        || !path
                            .extension()
                            .is_some_and(|x| exts.iter().any(|e| x == *e))
                    {
                        continue;
                    }
                    let item = if hidden(path) {
                        Found::Hidden(path.to_path_buf())
                    } else {
                        Found::File(path.to_path_buf())
                    };
                    found.push((path.to_path_buf(), item));
                }
                found.sort_by(|a, b| a.0.cmp(&b.0));
                out.extend(found.into_iter().map(|(_, f)| f));
            }
            Ok(_) => out.push(Found::File(p.clone())),
        }
    }
    out
}

/// A file or folder whose name starts with a dot.
fn hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// The files to read among `paths` (see [`find_paths`]); the first path that cannot be read is
/// the error, for commands that are all or nothing. Hidden files are left out.
pub fn expand_paths(paths: &[PathBuf], exts: &[&str]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for f in find_paths(paths, exts) {
        match f {
            Found::File(p) => files.push(p),
            Found::Hidden(_) => {}
            Found::Unreadable(e) => return Err(e),
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_still_being_written_is_kept_and_a_stale_one_removed() {
        let dir = tempfile::tempdir().unwrap();
        let live = temp_beside(&dir.path().join("out.courier")).unwrap();
        let stale = dir.path().join(".courier-dead01.part");
        fs::write(&stale, b"left by a killed command").unwrap();
        let other = dir.path().join("keep.part");
        fs::write(&other, b"not ours").unwrap();
        assert_eq!(remove_stale_parts(dir.path()).unwrap(), 1);
        assert!(
            live.path().exists(),
            "a locked part is another command's work"
        );
        assert!(!stale.exists());
        assert!(other.exists());
    }
}
