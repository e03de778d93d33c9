//! One file per command family; each function maps a parsed command to library calls and
//! prints the result, returning the exit code.

pub mod bundles;
pub mod center;
pub mod demo;
pub mod docs;
pub mod entities;
pub mod history;
pub mod package;
pub mod results;
pub mod site;
pub mod status;

use std::path::{Path, PathBuf};

use courier::error::Result;
use courier::progress::Reporter;
use courier::site::{resolve_home, Passphrase, Site};

use crate::output::err;

/// What every command needs: the site's home folder and how to unlock its key.
///
/// When a command opened the site and succeeded, the history's head is signed
/// ([`Ctx::anchor_history`], `courier::anchor`): every command leaves its history anchored.
pub struct Ctx {
    pub home: PathBuf,
    pub pass: Passphrase,
    /// Where the site reports long work and waits (see progress.rs).
    pub progress: Reporter,
    /// `--store-password-file`: a PostgreSQL store's password.
    pub store_password_file: Option<PathBuf>,
    opened: std::cell::Cell<bool>,
}

impl Ctx {
    pub fn new(
        home: Option<PathBuf>,
        passphrase_file: Option<&Path>,
        store_password_file: Option<PathBuf>,
        quiet: bool,
    ) -> Result<Ctx> {
        Ok(Ctx {
            home: resolve_home(home),
            pass: Passphrase::from_sources(passphrase_file)?,
            progress: crate::progress::reporter(quiet)?,
            store_password_file,
            opened: std::cell::Cell::new(false),
        })
    }

    /// Open the site to read only: the history's head is not signed afterwards (`history`).
    pub fn open_read_only(&self) -> Result<Site> {
        let site = self.open()?;
        self.opened.set(false);
        Ok(site)
    }

    /// Open the site, warning (one line on stderr) when other local users can read it.
    pub fn open(&self) -> Result<Site> {
        let site = Site::open(&self.home, self.pass.clone())?
            .with_progress(self.progress.clone())
            .with_store_password_file(self.store_password_file.clone());
        self.opened.set(true);
        if let Some((path, mode)) = site.exposed() {
            err!(
                "courier: warning: {} can be read by other users (mode {mode:o}); run 'chmod -R go-rwx {}'",
                path.display(),
                site.home.display()
            );
        }
        Ok(site)
    }
}

impl Ctx {
    /// After a command that may have changed the history (exit 0 or 3): sign its head if
    /// the command opened the site.
    pub fn anchor_history(&self) {
        if !self.opened.get() {
            return;
        }
        use courier::anchor::{anchor, Anchored, Mode};
        let site = Site::open(&self.home, self.pass.clone())
            .map(|s| s.with_store_password_file(self.store_password_file.clone()));
        match site.and_then(|site| anchor(&site, Mode::Extend)) {
            Ok(Anchored::Refused(problem)) => err!(
                "courier: warning: the sync history was not signed: {problem}; see `courier history --verify`"
            ),
            Ok(_) => {}
            Err(e) => err!("courier: warning: the sync history's head could not be signed ({e})"),
        }
    }
}
