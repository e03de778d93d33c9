//! What the check says about a package: a summary with warnings when it passes, the first
//! refusal (with the file inside the package at fault) when it does not.

/// What a passing package contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSummary {
    /// Resources of a QTI test type (TAO's test types, QTI 2.1, 2.2, 3.0 and APIP).
    pub tests: usize,
    /// Item resources the tests refer to (each counted once): the items TAO imports.
    pub items: usize,
    /// Files (not folders) in the archive.
    pub files: usize,
    /// What TAO accepts but an operator may want to know, e.g. a declared resource whose files
    /// are missing but which no test reaches.
    pub warnings: Vec<PackageWarning>,
}

/// Why a package was refused: `entry` is the file inside the zip at fault (None when the zip itself is at fault), `reason` a short human sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{reason}", entry.as_ref().map(|e| format!("{e}: ")).unwrap_or_default())]
pub struct PackageProblem {
    pub entry: Option<String>,
    pub reason: String,
}

impl PackageProblem {
    pub(super) fn archive(reason: impl Into<String>) -> Self {
        PackageProblem {
            entry: None,
            reason: reason.into(),
        }
    }

    pub(super) fn entry(entry: &str, reason: impl Into<String>) -> Self {
        PackageProblem {
            entry: Some(entry.to_string()),
            reason: reason.into(),
        }
    }
}

/// Something a passing package does that TAO's importer tolerates: `entry` is the file inside
/// the zip concerned, `message` a short human sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageWarning {
    pub entry: String,
    pub message: String,
}

impl std::fmt::Display for PackageWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.entry, self.message)
    }
}
