//! What importing a file did, and the options of an import: shared by the import dispatch
//! and the two sync directions below it, so neither direction reaches up to the dispatcher.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::bundle::Kind;
use crate::error::Error;
use crate::text::text_enum;

/// Options of `courier import`.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Apply a data bundle older than one already applied (recorded in the history).
    pub allow_rollback: bool,
    /// Verify, decrypt and apply inside the transaction, report, then roll back: nothing
    /// is kept, no package file is written, no refusal is recorded.
    pub dry_run: bool,
    /// Move every file applied (or already applied) into this folder; refused files stay.
    pub archive: Option<PathBuf>,
}

text_enum! {
    /// What became of one file (schemas/file-reports.schema.json).
    pub enum FileStatus {
        /// Imported now.
        Applied = "applied",
        /// Imported before; nothing changed.
        AlreadyApplied = "already-applied",
        /// Imported, but something is missing or was kept aside.
        Partial = "partial",
        /// Checked and applied inside the transaction, then rolled back.
        DryRun = "dry-run",
        /// Nothing applied; the message says why.
        Refused = "refused",
        /// `verify`: every check short of decryption passed.
        Ok = "ok",
        /// A hidden file found in a folder; not read.
        Skipped = "skipped",
    }
}

/// What happened to one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub file: PathBuf,
    pub status: FileStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_id: Option<String>,
    pub message: String,
    /// Set when this bundle's id was also seen from another sender: one of them copied it.
    /// The file is judged on its own merits all the same (ids are per sender).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspicious: Option<String>,
    #[serde(skip)]
    pub exit_code: u8,
}

impl FileReport {
    /// The report of a refused file: the one-line error and its exit code.
    pub(crate) fn refused(file: &Path, e: &Error) -> Self {
        FileReport {
            file: file.to_path_buf(),
            status: FileStatus::Refused,
            kind: None,
            bundle_id: None,
            message: e.to_string(),
            suspicious: None,
            exit_code: e.exit_code(),
        }
    }

    /// The report of a hidden file that was not read.
    pub(crate) fn skipped(file: &Path) -> Self {
        FileReport {
            file: file.to_path_buf(),
            status: FileStatus::Skipped,
            kind: None,
            bundle_id: None,
            message:
                "hidden file (a Mac writes ._NAME files beside every file on a stick); not read"
                    .into(),
            suspicious: None,
            exit_code: crate::error::exit::OK,
        }
    }

    /// The report of a path that could not be read.
    pub(crate) fn unreadable(e: &Error) -> Self {
        let file = match e {
            Error::InputUnreadable { path, .. } | Error::Io { path, .. } => path.clone(),
            _ => PathBuf::new(),
        };
        FileReport::refused(&file, e)
    }
}

/// What applying one bundle did.
pub struct Outcome {
    pub already: bool,
    pub partial: bool,
    pub message: String,
}

impl Outcome {
    pub fn applied(message: String) -> Self {
        Outcome {
            already: false,
            partial: false,
            message,
        }
    }
    /// A data bundle older than one applied (a stick found later): nothing to do.
    pub fn superseded(seq: u64, applied: i64) -> Self {
        Outcome {
            already: true,
            partial: false,
            message: format!(
                "data bundle {seq} is superseded by bundle {applied}, already applied: everything it carried is in the newer one, nothing needs doing (--allow-rollback applies it anyway, for a central restored from a backup)"
            ),
        }
    }
    pub fn already() -> Self {
        Outcome {
            already: true,
            partial: false,
            message: "already applied; nothing changed".into(),
        }
    }
}
