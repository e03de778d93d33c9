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

use std::path::{Path, PathBuf};

use courier::error::Result;
use courier::progress::Reporter;
use courier::site::{resolve_home, Passphrase, Site};

use crate::output::err;

/// What every command needs: the site's home folder and how to unlock its key.
pub struct Ctx {
    pub home: PathBuf,
    pub pass: Passphrase,
    /// Where the site reports long work and waits (see progress.rs).
    pub progress: Reporter,
}

impl Ctx {
    pub fn new(home: Option<PathBuf>, passphrase_file: Option<&Path>, quiet: bool) -> Result<Ctx> {
        Ok(Ctx {
            home: resolve_home(home),
            pass: Passphrase::from_sources(passphrase_file)?,
            progress: crate::progress::reporter(quiet)?,
        })
    }

    /// Open the site, warning (one line on stderr) when other local users can read it.
    pub fn open(&self) -> Result<Site> {
        let site = Site::open(&self.home, self.pass.clone())?.with_progress(self.progress.clone());
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
