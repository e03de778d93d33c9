//! What a long command reports while it works: files started, records and bytes done, and a
//! one-line notice (a busy store). The library only calls a [`Progress`]; the binary decides
//! how it looks (a bar on a terminal, a plain line now and then otherwise, nothing with
//! `--quiet`). A site carries its reporter (`Site::with_progress`); [`Silent`] by default.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

/// Receives progress from the library. Every method has a do-nothing default.
pub trait Progress: Send + Sync {
    /// A batch of `total` files starts (import, load, results add).
    fn files(&self, _total: u64) {}
    /// Work on one file starts: an input read or an output written; `size` in bytes when
    /// known in advance.
    fn file(&self, _path: &Path, _size: Option<u64>) {}
    /// `records` more records done, `bytes` more bytes read or written.
    fn advance(&self, _records: u64, _bytes: u64) {}
    /// Something the person waiting should know now, one line (e.g. the store is busy).
    fn notice(&self, _message: &str) {}
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {}

/// A shared reporter, as a site carries it.
pub type Reporter = Arc<dyn Progress>;

/// The reporter that reports nothing.
pub fn silent() -> Reporter {
    Arc::new(Silent)
}

/// A reader that reports every byte read through it (records are counted by its user).
pub struct Reading<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
}

impl<'p, R> Reading<'p, R> {
    pub fn new(inner: R, progress: &'p dyn Progress) -> Self {
        Reading { inner, progress }
    }
}

impl<R: Read> Read for Reading<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(0, n as u64);
        Ok(n)
    }
}

/// A writer that reports every byte written through it.
pub struct Writing<'p, W> {
    inner: W,
    progress: &'p dyn Progress,
}

impl<'p, W> Writing<'p, W> {
    pub fn new(inner: W, progress: &'p dyn Progress) -> Self {
        Writing { inner, progress }
    }
}

impl<W: Write> Write for Writing<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.advance(0, n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
