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
    /// What a results bundle did to results (not part of the per-file JSON; summed in
    /// [`BatchSummary`]).
    #[serde(skip)]
    pub results: ResultCounts,
}

/// Results a results bundle stored (new or replacing an older copy) and kept aside
/// (quarantined, or out of the centre's scope).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ResultCounts {
    pub stored: u64,
    pub kept_aside: u64,
}

/// The totals of one `import` of many files (schemas/file-reports.schema.json, the object
/// form): files by what became of them, and the results stored and kept aside.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BatchSummary {
    pub files: u64,
    /// Applied now, completely or partly (`partial` counts the latter again).
    pub applied: u64,
    pub partial: u64,
    pub already_applied: u64,
    pub dry_run: u64,
    pub refused: u64,
    pub skipped: u64,
    pub results_stored: u64,
    pub results_kept_aside: u64,
}

impl BatchSummary {
    /// Count the reports of a batch.
    pub fn of(reports: &[FileReport]) -> Self {
        let mut s = BatchSummary {
            files: reports.len() as u64,
            ..Default::default()
        };
        for r in reports {
            let slot = match r.status {
                FileStatus::Applied => &mut s.applied,
                FileStatus::Partial => {
                    s.partial += 1;
                    &mut s.applied
                }
                FileStatus::AlreadyApplied => &mut s.already_applied,
                FileStatus::DryRun => &mut s.dry_run,
                FileStatus::Refused => &mut s.refused,
                FileStatus::Skipped | FileStatus::Ok => &mut s.skipped,
            };
            *slot += 1;
            s.results_stored += r.results.stored;
            s.results_kept_aside += r.results.kept_aside;
        }
        s
    }

    /// The summary as the last line of `import`'s text output.
    pub fn line(&self) -> String {
        let partly = match self.partial {
            0 => String::new(),
            n => format!(" ({n} partly)"),
        };
        let dry = match self.dry_run {
            0 => String::new(),
            n => format!(", {n} dry run (nothing kept; the result counts are what would be)"),
        };
        format!(
            "summary: {} file(s): {} applied{partly}, {} already applied, {} refused, {} skipped{dry}; {} result(s) stored, {} kept aside",
            self.files,
            self.applied,
            self.already_applied,
            self.refused,
            self.skipped,
            self.results_stored,
            self.results_kept_aside
        )
    }
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
            results: ResultCounts::default(),
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
            results: ResultCounts::default(),
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
    /// Results stored and kept aside (results bundles only).
    pub results: ResultCounts,
}

impl Outcome {
    pub fn applied(message: String) -> Self {
        Outcome {
            already: false,
            partial: false,
            results: ResultCounts::default(),
            message,
        }
    }
    /// A data bundle older than one applied (a stick found later): nothing to do.
    pub fn superseded(seq: u64, applied: i64) -> Self {
        Outcome {
            already: true,
            partial: false,
            results: ResultCounts::default(),
            message: format!(
                "data bundle {seq} is superseded by bundle {applied}, already applied: everything it carried is in the newer one, nothing needs doing (--allow-rollback applies it anyway, for a central restored from a backup)"
            ),
        }
    }
    pub fn already() -> Self {
        Outcome {
            already: true,
            partial: false,
            results: ResultCounts::default(),
            message: "already applied; nothing changed".into(),
        }
    }
}
