//! Human and JSON printing: escaped lines (`out!`, `err!`), JSON, warnings, and tracking of
//! a failed write to stdout (kept for the exit code).

use std::io::Write;
use std::sync::Mutex;

use serde::Serialize;

/// Print a line on stdout (escaped; see [`print_line`]).
macro_rules! out {
    () => {
        $crate::output::print_line("")
    };
    ($($arg:tt)*) => {
        $crate::output::print_line(&format!($($arg)*))
    };
}

/// Print a line on stderr, escaped like [`out!`].
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::output::print_err(&format!($($arg)*))
    };
}

pub(crate) use {err, out};

/// The first failure to write to stdout (a full disk, a device error). A closed pipe
/// (`| head`) is benign and not kept: the reader has seen what it wanted.
static STDOUT_FAILED: Mutex<Option<std::io::Error>> = Mutex::new(None);

fn stdout_result(r: std::io::Result<()>) {
    if let Err(e) = r {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            STDOUT_FAILED
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(e);
        }
    };
}

/// Flush stdout and return the first failure to write to it, if any.
pub fn finish_stdout() -> Option<std::io::Error> {
    stdout_result(std::io::stdout().flush());
    STDOUT_FAILED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
}

/// With COURIER_REPORT_PEAK_RSS=1, print the process's peak resident memory on stderr
/// (`peak RSS: N KiB`, from VmHWM in /proc/self/status; Linux only): how tests and
/// bench/hostile-memory.sh measure the memory bound of an import.
pub fn report_peak_rss() {
    if std::env::var("COURIER_REPORT_PEAK_RSS").as_deref() != Ok("1") {
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    match status.lines().find_map(|l| l.strip_prefix("VmHWM:")) {
        Some(v) => eprintln!("peak RSS: {} KiB", v.trim().trim_end_matches("kB").trim()),
        None => eprintln!("peak RSS: unknown (no /proc/self/status)"),
    }
}

/// Print one human-readable line, with anything that came from input escaped
/// (`courier::text::escape`); a write failure is kept for the exit code.
/// A progress bar is taken off the screen first: what is printed on stdout is a result, the
/// work it reports on is done (import starts a new bar with its next file).
pub fn print_line(line: &str) {
    crate::progress::clear();
    let mut o = std::io::stdout().lock();
    let r = o
        .write_all(courier::text::escape(line).as_bytes())
        .and_then(|()| o.write_all(b"\n"));
    stdout_result(r);
}

/// Print one line on stderr, escaped, with a progress bar taken off the screen meanwhile.
pub fn print_err(line: &str) {
    crate::progress::suspend(|| eprintln!("{}", courier::text::escape(line)))
}

/// Warnings go to stderr, one line each (escaped), whether or not --json is given.
pub fn warn(warnings: &[String]) {
    for w in warnings {
        err!("courier: warning: {w}");
    }
}

/// JSON on stdout: serde escapes control characters in strings itself.
pub fn print_json(v: &impl Serialize) {
    crate::progress::clear();
    let mut o = std::io::stdout().lock();
    let r = serde_json::to_writer_pretty(&mut o, v)
        .map_err(std::io::Error::from)
        .and_then(|()| o.write_all(b"\n"));
    stdout_result(r);
}
