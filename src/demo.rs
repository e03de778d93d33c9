//! The main job, `courier demo`: a central and two test centres in one folder, taken
//! through a whole exam cycle with the fixture data set (fixtures/, embedded in the binary):
//! enrollment → users, eligibilities and deliveries down → results and logs up in several
//! small files, imported in scrambled order and twice → acknowledgements down → a
//! reopened result and a late log → central's decrypted export.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::import::{import_all, ImportOptions};
use crate::site::{InitOptions, Passphrase, Role, Site};

fn say(out: &mut dyn Write, line: impl AsRef<str>) -> Result<()> {
    writeln!(out, "{}", line.as_ref()).map_err(|e| Error::io("stdout", e))
}

/// Where a step's line happened: `[central]` or the centre's `[ORG-001]`.
fn at(site: &Site) -> String {
    format!("[{}]", site.config.org_id.as_deref().unwrap_or("central"))
}

fn import(out: &mut dyn Write, site: &Site, paths: &[PathBuf]) -> Result<()> {
    for r in import_all(site, paths, &ImportOptions::default(), |_, _, _| {}) {
        let name = r
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        say(
            out,
            format!(
                "    {} import {name}: {} — {}",
                at(site),
                r.status,
                r.message
            ),
        )?;
        if r.status == crate::outcome::FileStatus::Refused {
            return Err(Error::DemoRefused {
                file: r.file.clone(),
                message: r.message.clone(),
            });
        }
    }
    Ok(())
}

fn holdings(out: &mut dyn Write, site: &Site) -> Result<()> {
    let list = crate::entities::list(site, &[], false)?;
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for e in &list {
        *counts
            .entry(e["type"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    let parts: Vec<String> = crate::entities::TYPES
        .iter()
        .map(|t| format!("{} {t}", counts.get(*t).unwrap_or(&0)))
        .collect();
    say(out, format!("    {} holds: {}", at(site), parts.join(", ")))
}

/// The demo's data set, compiled into the binary so that an installed `courier demo` needs
/// no clone of the project: paths under fixtures/ (as the data set's own relative package
/// references expect them) and contents.
const DATA_SET: &[(&str, &[u8])] = &[
    (
        "data/central.jsonl",
        include_bytes!("../fixtures/data/central.jsonl"),
    ),
    (
        "data/results/ORG-001-day1.jsonl",
        include_bytes!("../fixtures/data/results/ORG-001-day1.jsonl"),
    ),
    (
        "data/results/ORG-001-reopened.jsonl",
        include_bytes!("../fixtures/data/results/ORG-001-reopened.jsonl"),
    ),
    (
        "data/logs/ORG-001-day1.jsonl",
        include_bytes!("../fixtures/data/logs/ORG-001-day1.jsonl"),
    ),
    (
        "data/logs/ORG-001-late.jsonl",
        include_bytes!("../fixtures/data/logs/ORG-001-late.jsonl"),
    ),
    (
        "qti/valid/2.1-basic-Basic.zip",
        include_bytes!("../fixtures/qti/valid/2.1-basic-Basic.zip"),
    ),
    (
        "qti/valid/2.1-outcomeProcessing-SumScore.zip",
        include_bytes!("../fixtures/qti/valid/2.1-outcomeProcessing-SumScore.zip"),
    ),
    (
        "qti/valid/2.2-test_label_is_persisted.zip",
        include_bytes!("../fixtures/qti/valid/2.2-test_label_is_persisted.zip"),
    ),
];

/// Write the embedded data set under `fixtures` (a folder inside the demo's own folder).
fn write_data_set(fixtures: &Path) -> Result<()> {
    for (rel, bytes) in DATA_SET {
        let path = fixtures.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).at(parent)?;
        }
        std::fs::write(&path, bytes).at(&path)?;
    }
    Ok(())
}

/// The folders the demo's steps work in: the demo's own folder, the data set written from the
/// binary, and the "USB stick" where bundles travel between sites.
struct Folders {
    dir: PathBuf,
    data: PathBuf,
    transfer: PathBuf,
}

/// Run the demo in `dir` (created if needed; an existing folder must be empty, and is
/// refused before anything is written). The data set comes from the binary itself and is
/// written to `dir/fixtures/`.
pub fn run(dir: &Path, out: &mut dyn Write) -> Result<()> {
    let folders = prepare_folder(dir)?;
    say(out, format!("courier demo in {}", dir.display()))?;
    say(
        out,
        "Words used below: a bundle is one signed, encrypted file; a set is the files of one \
         export, which may be split in parts to fit a stick; created/updated/deleted/touched say \
         what a data bundle did to an entity (touched: already held and confirmed unchanged); a log batch is the \
         delivery logs of one execution, sealed together. Each line says at which site it \
         happens: [central] or a centre's organisation id, such as [ORG-001].",
    )?;
    let (central, centers) = create_sites(out, dir)?;
    enroll_centers(out, &folders, &central, &centers)?;
    load_central_data(out, &folders, &central)?;
    downsync_shares(out, &folders, &central, &centers)?;
    let a = &centers[0];
    exam_day(out, &folders, a)?;
    upsync_in_small_files(out, &folders, &central, a)?;
    acknowledge(out, &folders, &central, a)?;
    reopen_and_report_late(out, &folders, &central, a)?;
    export_decrypted(out, &folders, &central)?;
    settle_and_verify(out, &folders, &central, &centers)?;
    say(out, "demo complete")
}

/// Refuse a non-empty `dir`, create it and write the embedded data set into it; returns the
/// folders the later steps use.
fn prepare_folder(dir: &Path) -> Result<Folders> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).at(dir)?;
        if entries.next().is_some() {
            return Err(Error::DemoFolderNotEmpty {
                path: dir.to_path_buf(),
            });
        }
    }
    std::fs::create_dir_all(dir).at(dir)?;
    let fixtures = dir.join("fixtures");
    write_data_set(&fixtures)?;
    Ok(Folders {
        dir: dir.to_path_buf(),
        data: fixtures.join("data"),
        transfer: dir.join("usb-stick"),
    })
}

/// Step 1: create central and the two test centres (unprotected keys) and print their keys.
fn create_sites(out: &mut dyn Write, dir: &Path) -> Result<(Site, Vec<Site>)> {
    say(out, "1. Sites: one central, two test centres")?;
    let central = Site::init(
        &dir.join("central"),
        InitOptions {
            role: Role::Central,
            name: Some("Central (demo)".into()),
            org_id: None,
            protect: false,
            key: None,
            store: None,
            store_password_file: None,
        },
        Passphrase::none(),
    )?;
    say(
        out,
        format!("    {} key {}", at(&central), central.config.fingerprint),
    )?;
    let mut centers = Vec::new();
    for org in ["ORG-001", "ORG-002"] {
        let c = Site::init(
            &dir.join(format!("center-{org}")),
            InitOptions {
                role: Role::Center,
                name: None,
                org_id: Some(org.into()),
                protect: false,
                key: None,
                store: None,
                store_password_file: None,
            },
            Passphrase::none(),
        )?;
        say(out, format!("    {} key {}", at(&c), c.config.fingerprint))?;
        centers.push(c);
    }
    Ok((central, centers))
}

/// Step 2: enroll each centre over files — central writes an enrollment file, the centre
/// checks it against the fingerprint and replies, central imports the reply.
fn enroll_centers(
    out: &mut dyn Write,
    f: &Folders,
    central: &Site,
    centers: &[Site],
) -> Result<()> {
    say(
        out,
        "2. Enrollment over files (fingerprint confirmed out of band)",
    )?;
    for c in centers {
        let org = c.org_id()?.to_string();
        let file = f.transfer.join(format!("enroll-{org}.json"));
        let fpr =
            crate::enroll::add_center(central, &org, &format!("Test centre {org}"), None, &file)?;
        let reply = crate::enroll::enroll(
            c,
            &file,
            Some(&fpr),
            &f.transfer.join("replies"),
            &mut |_| false,
        )?;
        say(
            out,
            format!(
                "    {} enrollment file from central checked against {fpr}; reply {}",
                at(c),
                reply.file_name().unwrap_or_default().to_string_lossy()
            ),
        )?;
        import(out, central, &[reply])?;
    }
    Ok(())
}

/// Step 3: central loads the data set's users, eligibilities and deliveries.
fn load_central_data(out: &mut dyn Write, f: &Folders, central: &Site) -> Result<()> {
    say(
        out,
        "3. Central loads users, eligibilities and deliveries (with their QTI packages)",
    )?;
    let r = crate::entities::load(central, &[f.data.join("central.jsonl")])?;
    say(
        out,
        format!(
            "    {} {} entities created, {} new test package(s)",
            at(central),
            r.created.values().sum::<u64>(),
            r.packages
        ),
    )
}

/// Step 4: down-sync each centre's share and show what each centre then holds.
fn downsync_shares(
    out: &mut dyn Write,
    f: &Folders,
    central: &Site,
    centers: &[Site],
) -> Result<()> {
    say(
        out,
        "4. Down-sync: each centre receives exactly its own share",
    )?;
    for c in centers {
        let org = c.org_id()?.to_string();
        let rep = crate::downsync::export(central, &org, &f.transfer.join("down"))?;
        say(out, format!("    {} {}", at(central), rep.message))?;
        import(out, c, &rep.files)?;
        holdings(out, c)?;
    }
    Ok(())
}

/// Step 5: the first centre stores a day's results and delivery logs.
fn exam_day(out: &mut dyn Write, f: &Folders, a: &Site) -> Result<()> {
    say(
        out,
        "5. Exam day at ORG-001: results and delivery logs, sealed to central's key on arrival",
    )?;
    let rr = crate::results::add_results(a, &[f.data.join("results/ORG-001-day1.jsonl")])?;
    let lr = crate::results::add_logs(a, &[f.data.join("logs/ORG-001-day1.jsonl")])?;
    say(
        out,
        format!(
            "    {} {} result(s) and {} log(s) stored",
            at(a),
            rr.added,
            lr.added
        ),
    )
}

/// Step 6: up-sync in 32 KiB files, imported at central backwards and one of them twice.
fn upsync_in_small_files(out: &mut dyn Write, f: &Folders, central: &Site, a: &Site) -> Result<()> {
    say(
        out,
        "6. Up-sync in small files (--max-file-size 32K), imported in scrambled order, some twice",
    )?;
    let up = crate::upsync::export(
        a,
        &f.transfer.join("up-1"),
        Some(32 * 1024),
        Default::default(),
    )?;
    say(out, format!("    {} {}", at(a), up.message))?;
    let mut order = up.files.clone();
    order.reverse();
    order.push(up.files[0].clone());
    import(out, central, &order)
}

/// Step 7: central's acknowledgement goes down and the centre marks its results synchronized.
fn acknowledge(out: &mut dyn Write, f: &Folders, central: &Site, a: &Site) -> Result<()> {
    say(
        out,
        "7. Central acknowledges; the centre marks results synchronized",
    )?;
    let ack = crate::downsync::export(central, "ORG-001", &f.transfer.join("down"))?;
    say(out, format!("    {} {}", at(central), ack.message))?;
    import(out, a, &ack.files)
}

/// Step 8: a reopened result and a late log go up and are acknowledged; the centre's results
/// are listed with their sync status and revision.
fn reopen_and_report_late(
    out: &mut dyn Write,
    f: &Folders,
    central: &Site,
    a: &Site,
) -> Result<()> {
    say(
        out,
        "8. A result is reopened and finished again; a proctor reports an irregularity afterwards",
    )?;
    crate::results::add_results(a, &[f.data.join("results/ORG-001-reopened.jsonl")])?;
    crate::results::add_logs(a, &[f.data.join("logs/ORG-001-late.jsonl")])?;
    let up2 = crate::upsync::export(a, &f.transfer.join("up-2"), None, Default::default())?;
    import(out, central, &up2.files)?;
    let ack2 = crate::downsync::export(central, "ORG-001", &f.transfer.join("down"))?;
    import(out, a, &ack2.files)?;
    for row in crate::results::list_results(a)? {
        say(
            out,
            format!(
                "    {} {:<13} rev {} {} ({})",
                at(a),
                row.sync_status,
                row.revision,
                row.delivery_execution_id,
                row.state.rsplit("Status").next().unwrap_or("")
            ),
        )?;
    }
    Ok(())
}

/// Step 9: central exports the results and logs it holds, decrypted, as JSON Lines.
fn export_decrypted(out: &mut dyn Write, f: &Folders, central: &Site) -> Result<()> {
    say(out, "9. Central's decrypted export")?;
    let results = f.dir.join("results.jsonl");
    let logs = f.dir.join("logs.jsonl");
    let n = crate::results::export_results(central, crate::results::Format::Jsonl, &results)?;
    let m = crate::results::export_logs(central, crate::results::Format::Jsonl, &logs)?;
    say(
        out,
        format!("    {} {n} result(s) → {}", at(central), results.display()),
    )?;
    say(
        out,
        format!("    {} {m} log(s) → {}", at(central), logs.display()),
    )
}

/// Step 10: the second centre sends its data, every site then has nothing left to send, and
/// central anchors and verifies its sync history.
fn settle_and_verify(
    out: &mut dyn Write,
    f: &Folders,
    central: &Site,
    centers: &[Site],
) -> Result<()> {
    say(
        out,
        "10. ORG-002 acknowledges its data; then nothing is left to send",
    )?;
    let up3 = crate::upsync::export(
        &centers[1],
        &f.transfer.join("up-3"),
        None,
        Default::default(),
    )?;
    import(out, central, &up3.files)?;
    for c in centers {
        say(
            out,
            format!(
                "    {} {}",
                at(central),
                crate::downsync::export(central, c.org_id()?, &f.transfer.join("down"))?.message
            ),
        )?;
        say(
            out,
            format!(
                "    {} {}",
                at(c),
                crate::upsync::export(c, &f.transfer.join("up-4"), None, Default::default())?
                    .message
            ),
        )?;
    }
    crate::anchor::anchor(central, crate::anchor::Mode::Start)?;
    let check = crate::anchor::verify(central)?;
    say(
        out,
        format!(
            "    {} sync history: {} entries, hash chain {} and signed by central's key",
            at(central),
            check.rows,
            if check.intact { "intact" } else { "BROKEN" }
        ),
    )
}
