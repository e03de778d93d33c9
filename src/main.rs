//! The `courier` binary: parse arguments, call the library, print, exit.
#![forbid(unsafe_code)]

mod cli;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Mutex;

use clap::Parser;
use serde::Serialize;

use cli::{Cli, Command};
use courier::error::{exit, Error, Result};
use courier::site::{resolve_home, InitOptions, Passphrase, Role, Site};
use courier::{downsync, enroll, entities, import, results, upsync};

/// Print a line on stdout (escaped; see [`print_line`]).
macro_rules! out {
    () => {
        print_line("")
    };
    ($($arg:tt)*) => {
        print_line(&format!($($arg)*))
    };
}

/// Print a line on stderr, escaped like [`out!`].
macro_rules! err {
    ($($arg:tt)*) => {
        eprintln!("{}", courier::text::escape(&format!($($arg)*)))
    };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            err!("courier: {e}");
            e.exit_code()
        }
    };
    stdout_result(std::io::stdout().flush());
    report_peak_rss();
    let failed = STDOUT_FAILED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    match failed {
        Some(e) => {
            err!("courier: standard output: write failed ({e}); what was printed is incomplete");
            ExitCode::from(code.max(exit::INTERNAL))
        }
        None => ExitCode::from(code),
    }
}

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

/// With COURIER_REPORT_PEAK_RSS=1, print the process's peak resident memory on stderr
/// (`peak RSS: N KiB`, from VmHWM in /proc/self/status; Linux only): how tests and
/// bench/hostile-memory.sh measure the memory bound of an import.
fn report_peak_rss() {
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
fn print_line(line: &str) {
    let mut o = std::io::stdout().lock();
    let r = o
        .write_all(courier::text::escape(line).as_bytes())
        .and_then(|()| o.write_all(b"\n"));
    stdout_result(r);
}

/// Warnings go to stderr, one line each (escaped), whether or not --json is given.
fn warn(warnings: &[String]) {
    for w in warnings {
        err!("courier: warning: {w}");
    }
}

/// JSON on stdout: serde escapes control characters in strings itself.
fn print_json(v: &impl Serialize) {
    let mut o = std::io::stdout().lock();
    let r = serde_json::to_writer_pretty(&mut o, v)
        .map_err(std::io::Error::from)
        .and_then(|()| o.write_all(b"\n"));
    stdout_result(r);
}

/// Warn (one line on stderr) when other local users can read the site.
fn warn_if_exposed(site: &Site) {
    if let Some((path, mode)) = site.exposed() {
        err!(
            "courier: warning: {} can be read by other users (mode {mode:o}); run 'chmod -R go-rwx {}'",
            path.display(),
            site.home.display()
        );
    }
}

fn run(cli: Cli) -> Result<u8> {
    let home = resolve_home(cli.home.clone());
    let pass = Passphrase::from_sources(cli.passphrase_file.as_deref())?;
    let open = || -> Result<Site> {
        let site = Site::open(&home, pass.clone())?;
        warn_if_exposed(&site);
        Ok(site)
    };
    match cli.command {
        Command::Init(init) => {
            let (opts, json) = match init {
                cli::InitCommand::Central { name, protect } => (
                    InitOptions {
                        role: Role::Central,
                        name: Some(name),
                        org_id: None,
                        protect: protect.protect,
                        key: read_key(&protect)?,
                    },
                    protect.json,
                ),
                cli::InitCommand::Center { org, protect } => (
                    InitOptions {
                        role: Role::Center,
                        name: None,
                        org_id: Some(org),
                        protect: protect.protect,
                        key: read_key(&protect)?,
                    },
                    protect.json,
                ),
            };
            let site = Site::init(&home, opts, pass)?;
            if json {
                print_json(&key_info(&site)?);
            } else {
                out!("created {} in {}", site.describe(), home.display());
                out!(
                    "fingerprint {}",
                    courier::crypto::grouped(&site.config.fingerprint)
                );
            }
        }
        Command::Keys(cli::KeysCommand::Show { json }) => {
            let site = open()?;
            let info = key_info(&site)?;
            if json {
                print_json(&info);
            } else {
                out!(
                    "fingerprint {}",
                    courier::crypto::grouped(&info.fingerprint)
                );
                out!("role        {}", info.role);
                if let Some(o) = &info.org_id {
                    out!("org         {o}");
                }
                if let Some(n) = &info.name {
                    out!("name        {n}");
                }
                out!("protected   {}", if info.protected { "yes" } else { "no" });
            }
        }
        Command::Keys(cli::KeysCommand::Export { out, secret, force }) => {
            courier::site::check_output(&out, force)?;
            let site = open()?;
            let bytes = if secret {
                site.secret_key_armored()?
            } else {
                courier::crypto::armor_public(&site.certificate()?)?.into_bytes()
            };
            courier::site::write_atomic(&out, &bytes)?;
            out!(
                "wrote {} key of {} to {}",
                if secret { "secret" } else { "public" },
                site.describe(),
                out.display()
            );
        }
        Command::Center(cli::CenterCommand::Add {
            org,
            label,
            out,
            expect_fingerprint,
        }) => {
            let site = open()?;
            let fpr = enroll::add_center(&site, &org, &label, expect_fingerprint.as_deref(), &out)?;
            out!("registered centre {org}; enrollment file {}", out.display());
            if let Some(f) = expect_fingerprint {
                out!(
                    "only a reply with key {} will enroll it",
                    enroll::normalize_fingerprint(&f)
                );
            }
            out!("central's fingerprint (confirm by phone or on paper): {fpr}");
        }
        Command::Center(cli::CenterCommand::List { json }) => {
            let site = open()?;
            let rows = enroll::list_centers(&site)?;
            if json {
                print_json(&rows);
            } else {
                for r in rows {
                    out!(
                        "{:<12} {:<30} {} next data bundle {}, confirmed {}",
                        r.org_id,
                        r.label,
                        match (&r.fingerprint, &r.expected_fingerprint) {
                            (Some(f), _) => courier::crypto::grouped(f),
                            (None, Some(f)) => format!(
                                "(not enrolled, expects key {})",
                                courier::crypto::grouped(f)
                            ),
                            (None, None) => "(not enrolled)".into(),
                        },
                        r.next_seq,
                        r.acked_seq
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| "none".into())
                    );
                }
            }
        }
        Command::Enroll(a) => {
            let site = open()?;
            let mut confirm = |body: &enroll::EnrollmentBody| -> bool {
                if !std::io::stdin().is_terminal() {
                    return false;
                }
                err!(
                    "central '{}' fingerprint: {}",
                    body.central_name,
                    courier::crypto::grouped(&body.central_fingerprint)
                );
                eprint!("Does this match the fingerprint central gave you? [y/N] ");
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).is_ok()
                    && line.trim().eq_ignore_ascii_case("y")
            };
            let reply = enroll::enroll(
                &site,
                &a.file,
                a.expect_fingerprint.as_deref(),
                &a.out,
                &mut confirm,
            )?;
            out!(
                "pinned central's key; reply for central: {}",
                reply.display()
            );
            out!(
                "this centre's fingerprint (give it to central by phone or on paper): {}",
                site.config.fingerprint
            );
        }
        Command::Import(a) => {
            let site = open()?;
            let opts = import::ImportOptions {
                allow_rollback: a.allow_rollback,
                dry_run: a.dry_run,
                archive: a.archive.clone(),
            };
            let json = a.json;
            let reports = import::import_all(&site, &a.paths, &opts, |i, n, r| {
                if !json {
                    print_report(r, (n > 1).then_some((i, n)));
                }
            });
            return Ok(finish_reports(&reports, json, &a.paths)
                .unwrap_or_else(|| import::batch_exit_code(&reports)));
        }
        Command::Verify(a) => {
            let site = open()?;
            let reports = import::verify_all(&site, &a.paths);
            if !a.json {
                reports.iter().for_each(|r| print_report(r, None));
            }
            // Nothing is applied by verify: any file refused makes it fail.
            return Ok(
                finish_reports(&reports, a.json, &a.paths).unwrap_or_else(|| {
                    reports
                        .iter()
                        .map(|r| r.exit_code)
                        .max()
                        .unwrap_or(exit::OK)
                }),
            );
        }
        Command::Inspect(a) => {
            // No key needed: the store, when there is one here, only names the sender.
            let site = open().ok();
            let mut all = Vec::new();
            for p in &a.paths {
                all.push(import::inspect(site.as_ref(), p)?);
            }
            if a.json {
                if all.len() == 1 {
                    print_json(&all[0]);
                } else {
                    print_json(&all);
                }
            } else {
                for i in &all {
                    out!("file        {}", i.file.display());
                    out!("format      {}", i.format);
                    out!("kind        {}", i.kind);
                    out!("bundle      {}", i.bundle_id);
                    out!(
                        "sender      {} {}",
                        i.sender.role,
                        courier::crypto::grouped(&i.sender.fingerprint)
                    );
                    out!(
                        "recipient   {} {}{}",
                        i.recipient.role,
                        courier::crypto::grouped(&i.recipient.fingerprint),
                        i.recipient
                            .org_id
                            .as_ref()
                            .map(|o| format!(" ({o})"))
                            .unwrap_or_default()
                    );
                    out!(
                        "org         {}{}",
                        i.org_id,
                        if i.org_source == "pinned-key" {
                            " (from the sender's pinned key)"
                        } else {
                            " (as claimed, unverified)"
                        }
                    );
                    out!("sequence    {}", i.sequence);
                    out!("created     {}", i.created);
                    out!(
                        "size        {} bytes (payload {} encrypted, {} unpacked)",
                        i.file_size,
                        i.payload_size,
                        i.content_size
                    );
                    out!("part        {} of {} (set {})", i.part, i.parts, i.set_id);
                    let counts: Vec<String> =
                        i.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
                    out!("carries     {}", counts.join(", "));
                    out!();
                }
            }
        }
        Command::Load(a) => {
            let site = open()?;
            let r = entities::load(&site, &a.paths)?;
            warn(&r.warnings);
            if a.json {
                print_json(&r);
            } else {
                let sum = |m: &std::collections::BTreeMap<String, u64>| m.values().sum::<u64>();
                out!(
                    "loaded: {} created, {} updated, {} unchanged, {} new package(s)",
                    sum(&r.created),
                    sum(&r.updated),
                    sum(&r.unchanged),
                    r.packages
                );
            }
        }
        Command::Remove(a) => {
            let site = open()?;
            let n = entities::remove(&site, &a.ids)?;
            out!("removed {n} entit{}", if n == 1 { "y" } else { "ies" });
        }
        Command::Package(cli::PackageCommand::Check { files, json }) => {
            return Ok(package_check(&files, json));
        }
        Command::Export(a) => {
            let site = open()?;
            let report = match site.role() {
                Role::Central => {
                    let org = a.to.as_deref().ok_or_else(|| Error::Usage {
                        what: "central exports need --to ORG_ID".into(),
                    })?;
                    if a.max_file_size.is_some() {
                        return Err(Error::Usage {
                            what: "--max-file-size applies to centre exports".into(),
                        });
                    }
                    downsync::export(&site, org, &a.out)?
                }
                Role::Center => {
                    if a.to.is_some() {
                        return Err(Error::Usage {
                            what: "a centre exports to its central only; drop --to".into(),
                        });
                    }
                    let max = a
                        .max_file_size
                        .as_deref()
                        .map(courier::site::parse_size)
                        .transpose()?;
                    if let Some(w) = max.and_then(courier::site::max_file_size_warning) {
                        warn(&[w]);
                    }
                    upsync::export(&site, &a.out, max)?
                }
            };
            warn(&report.warnings);
            if a.json {
                print_json(&report);
            } else {
                out!("{}", report.message);
                for f in &report.files {
                    out!("  {}", f.display());
                }
            }
        }
        Command::List(a) => {
            let site = open()?;
            let list = entities::list(&site, &a.types, a.decrypt)?;
            if a.json {
                print_json(&list);
            } else {
                for line in entities::table(&list) {
                    out!("{line}");
                }
            }
        }
        Command::Results(cli::ResultsCommand::Add { files, json }) => {
            let site = open()?;
            let r = results::add_results(&site, &files)?;
            return Ok(print_add(&r, json, "result"));
        }
        Command::Results(cli::ResultsCommand::List { json }) => {
            let site = open()?;
            let rows = results::list_results(&site)?;
            if json {
                print_json(&rows);
            } else {
                for r in rows {
                    out!(
                        "{:<15} {:>8} B  rev {}  {}  {}  {}{}",
                        r.sync_status,
                        r.size,
                        r.revision,
                        r.delivery_execution_id,
                        short_state(&r.state),
                        r.test_taker,
                        r.reason
                            .as_deref()
                            .map(|why| format!("  ({why})"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        Command::Results(cli::ResultsCommand::Export { format, out, force }) => {
            courier::site::check_output(&out, force)?;
            let site = open()?;
            let n = results::export_results(&site, fmt(format), &out)?;
            out!("wrote {n} result(s) to {}", out.display());
            if n == 0 {
                warn(&[results::nothing_exported_warning(&out, "results")]);
            }
        }
        Command::Logs(cli::LogsCommand::Add { files, json }) => {
            let site = open()?;
            let r = results::add_logs(&site, &files)?;
            return Ok(print_add(&r, json, "log"));
        }
        Command::Logs(cli::LogsCommand::Export { format, out, force }) => {
            courier::site::check_output(&out, force)?;
            let site = open()?;
            let n = results::export_logs(&site, fmt(format), &out)?;
            out!("wrote {n} log(s) to {}", out.display());
            if n == 0 {
                warn(&[results::nothing_exported_warning(&out, "delivery logs")]);
            }
        }
        Command::History(a) => {
            let site = open()?;
            let mut store = site.store()?;
            let tx = store.read()?;
            if a.verify {
                return Ok(match tx.verify_history()? {
                    None => {
                        out!("history chain intact");
                        exit::OK
                    }
                    Some(n) => {
                        err!("courier: {}: history row {n} does not match its hash chain; the store was altered", site.store_path().display());
                        exit::REFUSED
                    }
                });
            }
            if let Some(id) = &a.entity {
                let rows = tx.entity_actions(id)?;
                if a.json {
                    print_json(&rows);
                } else if rows.is_empty() {
                    out!("no sync touched {id}");
                } else {
                    for r in rows {
                        out!(
                            "{:>4} {} {:<8} {} sequence {}",
                            r.sync,
                            r.at,
                            r.action,
                            r.kind,
                            r.seq.map(|s| s.to_string()).unwrap_or_else(|| "-".into())
                        );
                    }
                }
                return Ok(exit::OK);
            }
            let rows = tx.history(a.org.as_deref(), a.limit)?;
            if a.json {
                print_json(&rows);
            } else {
                for h in rows {
                    out!(
                        "{:>4} {} {:<12} {:<16} {:<8} {:<11} {}",
                        h.n,
                        h.at,
                        h.action,
                        h.kind.as_deref().unwrap_or("-"),
                        h.org_id.as_deref().unwrap_or("-"),
                        h.status,
                        h.report
                    );
                }
            }
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let shell = match shell {
                cli::CompletionShell::Bash => clap_complete::Shell::Bash,
                cli::CompletionShell::Zsh => clap_complete::Shell::Zsh,
                cli::CompletionShell::Fish => clap_complete::Shell::Fish,
                cli::CompletionShell::Powershell => clap_complete::Shell::PowerShell,
            };
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "courier",
                &mut std::io::stdout(),
            );
        }
        Command::Man { out } => {
            use clap::CommandFactory;
            std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
            clap_mangen::generate_to(Cli::command(), &out).map_err(|e| Error::io(&out, e))?;
            out!("wrote man pages to {}", out.display());
        }
        Command::Demo(a) => {
            let (dir, _keep) = match a.dir {
                Some(d) => (d, None),
                None => {
                    let t = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
                    (t.path().to_path_buf(), Some(t))
                }
            };
            courier::demo::run(&dir, &mut std::io::stdout())?;
        }
    }
    Ok(exit::OK)
}

fn read_key(p: &cli::Protect) -> Result<Option<Vec<u8>>> {
    p.key
        .as_ref()
        .map(|f| std::fs::read(f).map_err(|e| Error::input(f, &e)))
        .transpose()
}

#[derive(Serialize)]
struct KeyInfo {
    fingerprint: String,
    role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    org_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    protected: bool,
    home: String,
}

fn key_info(site: &Site) -> Result<KeyInfo> {
    let key = courier::crypto::parse_cert(&site.secret_key_armored()?)?;
    let protected = courier::crypto::SecretKey::is_protected(&key);
    Ok(KeyInfo {
        fingerprint: site.config.fingerprint.clone(),
        role: site.role().to_string(),
        org_id: site.config.org_id.clone(),
        name: site.config.name.clone(),
        protected,
        home: site.home.display().to_string(),
    })
}

fn fmt(f: cli::OutputFormat) -> results::Format {
    match f {
        cli::OutputFormat::Jsonl => results::Format::Jsonl,
        cli::OutputFormat::Csv => results::Format::Csv,
    }
}

fn short_state(s: &str) -> &str {
    s.rsplit("DeliveryExecutionStatus").next().unwrap_or(s)
}

/// Print per-file reports; the exit code is the worst one.
/// One file's outcome: refusals on stderr (one line), the rest on stdout.
fn print_report(r: &import::FileReport, progress: Option<(usize, usize)>) {
    let at = progress
        .map(|(i, n)| format!("[{i}/{n}] "))
        .unwrap_or_default();
    if r.status == "refused" {
        err!("courier: {at}{}", r.message);
    } else {
        out!("{at}{}: {}: {}", r.file.display(), r.status, r.message);
    }
}

/// After per-file lines: JSON, notes about incomplete sets. Returns an exit code only when
/// there was nothing to do (no bundle file found); the caller decides the batch's code.
fn finish_reports(
    reports: &[import::FileReport],
    json: bool,
    paths: &[std::path::PathBuf],
) -> Option<u8> {
    if reports.iter().all(|r| r.status == "skipped") {
        err!(
            "courier: no bundle files (*.courier) found in the paths given ({} hidden file(s) skipped)",
            reports.len()
        );
        return Some(exit::USAGE);
    }
    if json {
        print_json(&reports);
    } else {
        let files: Vec<std::path::PathBuf> = import::find_paths(paths, &["courier"])
            .into_iter()
            .filter_map(|f| match f {
                import::Found::File(p) => Some(p),
                _ => None,
            })
            .collect();
        for note in upsync::describe_sets(&files) {
            out!("note: {note}");
        }
    }
    None
}

fn print_add(r: &results::AddReport, json: bool, what: &str) -> u8 {
    warn(&r.warnings);
    if json {
        print_json(r);
    } else {
        let mut line = format!(
            "{what}s: {} added, {} replaced, {} unchanged, {} refused",
            r.added,
            r.replaced,
            r.unchanged,
            r.refused.len()
        );
        if !r.stale.is_empty() || !r.conflicts.is_empty() {
            line.push_str(&format!(
                ", {} stale, {} conflict(s)",
                r.stale.len(),
                r.conflicts.len()
            ));
        }
        out!("{line}");
        for f in &r.stale {
            out!(
                "stale: {}: record {}: {}",
                f.file.display(),
                f.record,
                f.reason
            );
        }
        for f in &r.conflicts {
            eprintln!(
                "courier: conflict: {}: record {}: {}",
                f.file.display(),
                f.record,
                f.reason
            );
        }
        for f in &r.refused {
            err!(
                "courier: {}: record {}: {}; it was not stored",
                f.file.display(),
                f.record,
                f.reason
            );
        }
    }
    if r.refused.is_empty() && r.conflicts.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    }
}

#[derive(Serialize)]
struct PackageReport {
    file: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    entry: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tests: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    items: Option<usize>,
}

fn package_check(files: &[std::path::PathBuf], json: bool) -> u8 {
    let mut code = exit::OK;
    let mut reports = Vec::new();
    for f in files {
        let r = match std::fs::File::open(f) {
            Err(e) => PackageReport {
                file: f.display().to_string(),
                ok: false,
                entry: None,
                reason: Some(e.to_string()),
                tests: None,
                items: None,
            },
            Ok(file) => match courier::package::check_package(std::io::BufReader::new(file)) {
                Ok(s) => PackageReport {
                    file: f.display().to_string(),
                    ok: true,
                    entry: None,
                    reason: None,
                    tests: Some(s.tests),
                    items: Some(s.items),
                },
                Err(p) => PackageReport {
                    file: f.display().to_string(),
                    ok: false,
                    entry: p.entry.clone(),
                    reason: Some(p.reason.clone()),
                    tests: None,
                    items: None,
                },
            },
        };
        if !r.ok {
            code = exit::REFUSED;
        }
        if !json {
            if r.ok {
                out!(
                    "{}: ok ({} test(s), {} item(s))",
                    r.file,
                    r.tests.unwrap_or(0),
                    r.items.unwrap_or(0)
                );
            } else {
                err!(
                    "courier: {}: test package refused: {}{}; fix the package and check it again",
                    r.file,
                    r.entry
                        .as_ref()
                        .map(|e| format!("{e}: "))
                        .unwrap_or_default(),
                    r.reason.as_deref().unwrap_or("")
                );
            }
        }
        reports.push(r);
    }
    if json {
        print_json(&reports);
    }
    code
}
