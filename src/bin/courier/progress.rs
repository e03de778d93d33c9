//! How long work looks: a bar on a terminal (indicatif), a plain line now and then when
//! stderr is not a terminal (a log file, a pipe), nothing with --quiet. The library reports
//! through `courier::progress::Progress`; this file only draws. Lines printed while a bar is
//! shown go through [`suspend`], so they never mix with it.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use courier::progress::{Progress, Reporter};
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::err;

/// Without a terminal, a line every N records instead of every few seconds (tests set it,
/// so that what is printed does not depend on speed).
const EVERY_ENV: &str = "COURIER_PROGRESS_EVERY";
/// Without a terminal, a line this often.
const LINE_INTERVAL: Duration = Duration::from_secs(5);
/// How often the bar's text is recomputed.
const REDRAW: Duration = Duration::from_millis(100);

/// The bar on screen, if any: printing suspends it.
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

fn bar_slot() -> MutexGuard<'static, Option<ProgressBar>> {
    BAR.lock().unwrap_or_else(|p| p.into_inner())
}

/// Run `f` (which prints) with the bar taken off the screen, then redraw it.
pub fn suspend<T>(f: impl FnOnce() -> T) -> T {
    let bar = bar_slot().clone();
    match bar {
        Some(b) => b.suspend(f),
        None => f(),
    }
}

/// Take the bar off the screen for good (the command's work is done).
pub fn clear() {
    if let Some(b) = bar_slot().take() {
        b.finish_and_clear();
    }
}

/// The reporter for this run: nothing with `quiet`, else a bar or plain lines on stderr.
pub fn reporter(quiet: bool) -> courier::Result<Reporter> {
    if quiet {
        return Ok(courier::progress::silent());
    }
    let every = match std::env::var(EVERY_ENV) {
        Err(_) => None,
        Ok(v) => Some(
            v.trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| courier::Error::Usage {
                    what: format!("{EVERY_ENV}={v:?} is not a positive number of records"),
                })?,
        ),
    };
    let now = Instant::now();
    Ok(Arc::new(Display {
        terminal: std::io::stderr().is_terminal(),
        every,
        state: Mutex::new(State {
            started: now,
            files_total: 0,
            files: 0,
            file: String::new(),
            size: None,
            records: 0,
            bytes: 0,
            file_bytes: 0,
            last: now,
            next_line_at: every.unwrap_or(0),
        }),
    }))
}

struct Display {
    terminal: bool,
    every: Option<u64>,
    state: Mutex<State>,
}

struct State {
    started: Instant,
    files_total: u64,
    files: u64,
    /// The current file's name (its last component: lines stay short).
    file: String,
    size: Option<u64>,
    records: u64,
    bytes: u64,
    file_bytes: u64,
    /// The last line printed or the last redraw of the bar.
    last: Instant,
    /// With EVERY_ENV: the record count at which the next line is due.
    next_line_at: u64,
}

impl State {
    fn which_file(&self) -> String {
        if self.files_total > 1 {
            format!("[{}/{}] {}", self.files, self.files_total, self.file)
        } else {
            self.file.clone()
        }
    }

    fn rate(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64();
        if secs < 0.5 {
            return String::new();
        }
        format!(", {:.0} records/s", self.records as f64 / secs)
    }

    /// The bar's text beside the bytes: records and rate.
    fn message(&self) -> String {
        format!("{} record(s){}", self.records, self.rate())
    }

    /// One plain line: file, records, bytes (of the size when known), rate.
    fn line(&self) -> String {
        let of = self
            .size
            .map(|s| format!(" of {}", HumanBytes(s)))
            .unwrap_or_default();
        format!(
            "courier: progress: {}: {} record(s), {}{of}{}",
            self.which_file(),
            self.records,
            HumanBytes(self.file_bytes),
            self.rate()
        )
    }
}

impl Display {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Show the bar for the file starting now (a new bar if printing took the last one off).
    fn restyle(&self, s: &State) {
        let template = if s.size.is_some() {
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {msg}"
        } else {
            "{prefix} {spinner} {bytes} {msg}"
        };
        let style = ProgressStyle::with_template(template)
            .map(|st| st.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let mut slot = bar_slot();
        let new = slot.is_none();
        let bar = slot.get_or_insert_with(|| {
            ProgressBar::with_draw_target(s.size, ProgressDrawTarget::hidden())
        });
        bar.set_style(style);
        match s.size {
            Some(n) => bar.set_length(n),
            None => bar.unset_length(),
        }
        bar.set_position(s.file_bytes);
        bar.set_prefix(s.which_file());
        bar.set_message(s.message());
        if new {
            // Drawn from here on: its first frame already has its name.
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(200));
        }
    }
}

impl Progress for Display {
    fn files(&self, total: u64) {
        self.state().files_total = total;
    }

    fn file(&self, path: &Path, size: Option<u64>) {
        let mut s = self.state();
        s.files += 1;
        s.file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        s.size = size;
        s.file_bytes = 0;
        if self.terminal {
            self.restyle(&s);
        }
    }

    fn advance(&self, records: u64, bytes: u64) {
        let mut s = self.state();
        s.records += records;
        s.bytes += bytes;
        s.file_bytes += bytes;
        if self.terminal {
            // No bar once a result was printed: the work it showed is done.
            if let Some(bar) = bar_slot().as_ref() {
                bar.set_position(s.file_bytes);
                if s.last.elapsed() >= REDRAW {
                    s.last = Instant::now();
                    bar.set_message(s.message());
                }
            }
            return;
        }
        let due = match self.every {
            Some(n) => {
                let due = records > 0 && s.records >= s.next_line_at;
                while s.next_line_at <= s.records {
                    s.next_line_at += n;
                }
                due
            }
            None => s.last.elapsed() >= LINE_INTERVAL,
        };
        if due {
            s.last = Instant::now();
            let line = s.line();
            drop(s);
            err!("{line}");
        }
    }

    fn notice(&self, message: &str) {
        err!("courier: {message}");
    }
}
