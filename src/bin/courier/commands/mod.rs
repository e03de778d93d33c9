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
use courier::site::{resolve_home, Passphrase, Site};

use crate::output::err;

/// What every command needs: the site's home folder and how to unlock its key.
///
/// When a command opened the site, the history's head is signed as the context goes
/// (`courier::anchor`): every command that changed the history leaves it anchored.
pub struct Ctx {
    pub home: PathBuf,
    pub pass: Passphrase,
    opened: std::cell::Cell<bool>,
}

impl Ctx {
    pub fn new(home: Option<PathBuf>, passphrase_file: Option<&Path>) -> Result<Ctx> {
        Ok(Ctx {
            home: resolve_home(home),
            pass: Passphrase::from_sources(passphrase_file)?,
            opened: std::cell::Cell::new(false),
        })
    }

    /// Open the site, warning (one line on stderr) when other local users can read it.
    pub fn open(&self) -> Result<Site> {
        let site = Site::open(&self.home, self.pass.clone())?;
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

impl Drop for Ctx {
    fn drop(&mut self) {
        if !self.opened.get() {
            return;
        }
        let signed = Site::open(&self.home, self.pass.clone())
            .and_then(|site| courier::anchor::anchor(&site));
        if let Err(e) = signed {
            err!("courier: warning: the history's head could not be signed ({e})");
        }
    }
}
