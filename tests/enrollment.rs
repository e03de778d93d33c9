//! The enrollment handshake over files (issue 2): central registers a centre and prints its
//! fingerprint; the centre checks the file against that fingerprint, pins central and writes
//! a reply; central imports the reply once. Every refusal writes nothing: no reply file, and
//! the stores of the centre and of central exactly as they were.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use courier::bundle::{self, Spec};
use courier::crypto;
use courier::enroll::ReplyBody;
use courier::site::{Passphrase, Site};
use serde_json::Value;

use crate::common::*;

fn open(home: &Path) -> Site {
    Site::open(home, Passphrase::none()).expect("site opens")
}

/// `center add ORG` at central; returns the enrollment file and what central printed.
fn add(w: &World, org: &str) -> (PathBuf, String) {
    let file = w.path(&format!("enroll-{org}.json"));
    let out = ok(courier(
        &w.central,
        &["center", "add", org, "--label", org, "--out", s(&file)],
    ));
    (file, out)
}

/// `enroll` at a centre with stdin closed (no terminal), as a script would run it.
fn enroll_cmd(home: &Path, file: &Path, fpr: Option<&str>, out: &Path) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_courier"));
    c.arg("--home").arg(home).arg("enroll").arg(file);
    if let Some(f) = fpr {
        c.arg("--expect-fingerprint").arg(f);
    }
    c.arg("--out")
        .arg(out)
        .env_remove("COURIER_HOME")
        .env_remove("COURIER_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .expect("courier runs")
}

/// Assert an enrollment at `home` was refused (exit 1, saying `needle`) and wrote nothing.
#[track_caller]
fn enroll_refused(home: &Path, file: &Path, fpr: Option<&str>, out: &Path, needle: &str) {
    let before = snapshot(home, true);
    let err = refused(enroll_cmd(home, file, fpr, out), 1, needle);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(bundles_in(out).is_empty(), "a reply was written: {err}");
    assert_eq!(snapshot(home, true), before, "the centre's store changed");
}

/// Import at central: refused with exit 1 saying `needle`, central's store unchanged.
#[track_caller]
fn centers(w: &World) -> Vec<Value> {
    serde_json::from_str(&ok(courier(&w.central, &["center", "list", "--json"]))).unwrap()
}

/// A reply bundle made with the library: signed by the centre site at `center`, for
/// central, naming `org` and carrying `token`.
fn crafted_reply(w: &World, center: &Path, org: &str, token: &str, name: &str) -> PathBuf {
    let site = open(center);
    let key = site.secret_key().unwrap();
    let cert = site.certificate().unwrap();
    let central = open(&w.central);
    let spec = Spec::enrollment_reply(
        &key.fingerprint(),
        &central.config.fingerprint,
        org,
        crypto::armor_public(&cert).unwrap(),
    );
    let reply = ReplyBody {
        org_id: org.to_string(),
        token: token.to_string(),
        center_fingerprint: key.fingerprint(),
    };
    let out = w.path(&format!("crafted/{name}.courier"));
    let central_cert = central.certificate().unwrap();
    let (written, ()) = bundle::write(&out, spec, &key, &central_cert, |p| {
        p.count("enrollment", 1);
        p.add_json("enrollment.json", &reply)
    })
    .expect("reply written");
    written.persist().expect("persist")
}

/// Issue 2, step 1: `center add` registers the centre, writes its enrollment file and prints
/// central's fingerprint to read out by phone or on paper.
#[test]
fn center_add_prints_centrals_fingerprint() {
    let w = World::new();
    let fpr = w.fingerprint(&w.central);
    let (file, out) = add(&w, "ORG-001");
    assert!(out.contains(&fpr), "fingerprint not printed: {out}");
    assert!(file.is_file());
    let body = courier::enroll::read_enrollment(&file).expect("a valid enrollment file");
    assert_eq!(body.central_fingerprint, fpr);
    assert_eq!(body.org_id, "ORG-001");
    let list = centers(&w);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["org_id"], "ORG-001");
    assert!(
        list[0]["fingerprint"].is_null(),
        "not enrolled yet: {list:?}"
    );
}

/// Issue 2, steps 2 and 3: with the right fingerprint (as read out: grouped, lower case) the
/// centre pins central and writes a reply; central imports it and knows the centre's key.
#[test]
fn enroll_with_the_right_fingerprint_completes_the_handshake() {
    let w = World::new();
    let (file, _) = add(&w, "ORG-001");
    let fpr = w.fingerprint(&w.central);
    let spoken: String = fpr
        .to_lowercase()
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    let replies = w.path("replies");
    let out = ok(enroll_cmd(&w.a, &file, Some(&spoken), &replies));
    let reply = bundles_in(&replies);
    assert_eq!(reply.len(), 1, "{out}");
    assert!(reply[0].ends_with("ORG-001-enrollment-reply.courier"));
    let out = ok(courier(&w.central, &["import", s(&reply[0])]));
    assert!(out.contains("enrolled"), "{out}");
    let list = centers(&w);
    assert_eq!(list[0]["fingerprint"], w.fingerprint(&w.a));
    // Both ends now trust each other: a data bundle goes through.
    let files = w.export_down("ORG-001", "down");
    ok(courier(&w.a, &["import", s(&files[0])]));
}

/// Issue 2: a wrong fingerprint refuses the file and writes nothing (no reply, centre store
/// unchanged), so a swapped enrollment file cannot pin an impostor.
#[test]
fn enroll_with_a_wrong_fingerprint_writes_nothing() {
    let w = World::new();
    let (file, _) = add(&w, "ORG-001");
    let central_before = snapshot(&w.central, true);
    let fpr = w.fingerprint(&w.central);
    let mut wrong = fpr.clone().into_bytes();
    wrong[39] = if wrong[39] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).unwrap();
    let replies = w.path("replies");
    enroll_refused(&w.a, &file, Some(&wrong), &replies, "not the expected");
    enroll_refused(&w.a, &file, Some(&w.fingerprint(&w.a)), &replies, &fpr);
    assert_eq!(snapshot(&w.central, true), central_before);
}

/// Issue 2: without --expect-fingerprint and without a terminal to confirm on, enroll
/// refuses (it never pins a key nobody confirmed) and says how to pass the fingerprint.
#[test]
fn enroll_without_fingerprint_or_terminal_refuses() {
    let w = World::new();
    let (file, _) = add(&w, "ORG-001");
    enroll_refused(
        &w.a,
        &file,
        None,
        &w.path("replies"),
        "--expect-fingerprint",
    );
}

/// Issue 2: an enrollment file whose signed body was changed anywhere (org, token, central's
/// certificate or fingerprint, dates) is refused, even with the right fingerprint.
#[test]
fn an_enrollment_file_with_a_changed_body_is_refused() {
    let w = World::new();
    let (file, _) = add(&w, "ORG-001");
    let fpr = w.fingerprint(&w.central);
    let doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let body = doc["body"].as_str().unwrap().to_string();
    let bytes = body.as_bytes();
    let mut positions: Vec<usize> = (0..24).map(|i| i * bytes.len() / 24).collect();
    // Inside the token and the fingerprint as well.
    for key in ["\"token\":\"", "\"central_fingerprint\":\""] {
        let at = body.find(key).unwrap() + key.len();
        positions.extend([at, at + 20]);
    }
    for (i, p) in positions.into_iter().enumerate() {
        // Next letter or digit; change it into another one, so the file stays valid JSON.
        let p = (p..bytes.len())
            .find(|&q| bytes[q].is_ascii_alphanumeric())
            .unwrap();
        let mut b = bytes.to_vec();
        b[p] = match b[p] {
            b'9' => b'0',
            b'z' => b'a',
            b'Z' => b'A',
            c => c + 1,
        };
        let mut changed = doc.clone();
        changed["body"] = Value::String(String::from_utf8(b).unwrap());
        let f = w.path(&format!("changed/enroll-{i:02}-at-{p}.json"));
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, serde_json::to_vec_pretty(&changed).unwrap()).unwrap();
        enroll_refused(
            &w.a,
            &f,
            Some(&fpr),
            &w.path("replies"),
            "enrollment refused",
        );
    }
    // The file as written still enrolls.
    ok(enroll_cmd(&w.a, &file, Some(&fpr), &w.path("replies")));
}

/// Issue 2: an enrollment file for another organisation is refused by the centre.
#[test]
fn an_enrollment_file_for_another_org_is_refused() {
    let w = World::new();
    let (file, _) = add(&w, "ORG-001");
    let fpr = w.fingerprint(&w.central);
    enroll_refused(
        &w.b,
        &file,
        Some(&fpr),
        &w.path("replies"),
        "enrolls centre ORG-001, and this site is centre ORG-002",
    );
}

/// THREATS "the same bundle imported twice", for replies: the second import exits 0, says
/// already applied and changes nothing at central.
#[test]
fn importing_a_reply_twice_changes_nothing() {
    let w = World::new();
    w.enroll(&w.a, "ORG-001");
    let before = snapshot(&w.central, true);
    let replies = w.path("replies-ORG-001");
    let out = ok(courier(&w.central, &["import", s(&replies)]));
    assert!(out.contains("already applied"), "{out}");
    assert_eq!(snapshot(&w.central, true), before);
}

/// Issue 2: the one-time token cannot enroll a second key. Another site for the same org,
/// enrolled with the same file, has its reply refused as "already used" after the first.
#[test]
fn a_used_token_with_another_key_is_refused() {
    let w = World::new();
    let (file, _) = add(&w, "ORG-001");
    let fpr = w.fingerprint(&w.central);
    let twin = w.path("center-a-twin");
    ok(courier(&twin, &["init", "center", "--org", "ORG-001"]));
    ok(enroll_cmd(&w.a, &file, Some(&fpr), &w.path("r1")));
    ok(enroll_cmd(&twin, &file, Some(&fpr), &w.path("r2")));
    ok(courier(&w.central, &["import", s(&w.path("r1"))]));
    let second = bundles_in(&w.path("r2"));
    let err = import_refused(&w.central, &second[0], "already used");
    assert!(err.contains("ORG-001"), "{err}");
    assert_eq!(centers(&w)[0]["fingerprint"], w.fingerprint(&w.a));
}

/// Issue 2: a reply with a made-up token, or with the token of another centre, is refused
/// and pins nothing; the same reply with the token central issued is accepted.
#[test]
fn a_wrong_or_forged_token_is_refused() {
    let w = World::new();
    let (file3, _) = add(&w, "ORG-003");
    let (file4, _) = add(&w, "ORG-004");
    let c3 = w.path("center-3");
    ok(courier(&c3, &["init", "center", "--org", "ORG-003"]));
    let made_up = crafted_reply(&w, &c3, "ORG-003", &"ab".repeat(32), "made-up");
    let err = import_refused(&w.central, &made_up, "wrong or forged token");
    assert!(err.contains("ORG-003"), "{err}");
    let token4 = courier::enroll::read_enrollment(&file4).unwrap().token;
    let other = crafted_reply(&w, &c3, "ORG-003", &token4, "token-of-004");
    import_refused(&w.central, &other, "wrong or forged token");
    assert!(centers(&w).iter().all(|c| c["fingerprint"].is_null()));

    // Control: the same construction with ORG-003's own token enrolls it.
    let token3 = courier::enroll::read_enrollment(&file3).unwrap().token;
    let good = crafted_reply(&w, &c3, "ORG-003", &token3, "good");
    ok(courier(&w.central, &["import", s(&good)]));
    let list = centers(&w);
    let row = list.iter().find(|c| c["org_id"] == "ORG-003").unwrap();
    assert_eq!(row["fingerprint"], w.fingerprint(&c3));
}

/// Issue 2: a reply for an organisation central never registered is refused.
#[test]
fn a_reply_for_an_unknown_org_is_refused() {
    let w = World::new();
    let stranger = w.path("center-404");
    ok(courier(&stranger, &["init", "center", "--org", "ORG-404"]));
    let reply = crafted_reply(&w, &stranger, "ORG-404", &"0f".repeat(32), "unknown");
    let err = import_refused(&w.central, &reply, "unknown centre ORG-404");
    assert!(err.contains("center add"), "says what to do: {err}");
}

#[test]
fn a_centre_not_yet_enrolled_cannot_export_and_is_told_why() {
    let w = World::new();
    let out = w.path("out");
    refused(
        courier(&w.a, &["export", "--out", out.to_str().unwrap()]),
        4, // site state, not a usage error
        "is not enrolled with a central yet; run 'courier enroll' first",
    );
}
