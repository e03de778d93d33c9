//! Key rotation and re-enrollment (issue 11): `keys rotate` at either role, the rollover
//! statement carried by the next bundle to each peer (docs/FORMAT.md §9.1), the old key
//! refused from the rollover's sequence on, forged rollovers refused, results sealed to
//! central's old key still readable, and `center reenroll` for a reinstalled centre.

use std::path::{Path, PathBuf};

use serde_json::Value;

use courier::crypto::{self, SecretKey};
use courier::rollover::{sign_statement, RolloverBody};
use courier::site::{Passphrase, Role, Site};

use crate::common::*;

fn results_file(name: &str) -> PathBuf {
    fixtures().join("data/results").join(name)
}

/// Import every file, each must apply; returns the combined output.
fn import_all(home: &Path, files: &[PathBuf]) -> String {
    assert!(!files.is_empty(), "no files to import");
    files
        .iter()
        .map(|f| ok(courier(home, &["import", s(f)])))
        .collect()
}

fn rotate(home: &Path) -> Value {
    serde_json::from_str(&ok(courier(home, &["keys", "rotate", "--json"]))).expect("rotate json")
}

fn center_key(central: &Path, org: &str) -> String {
    let rows: Value =
        serde_json::from_str(&ok(courier(central, &["center", "list", "--json"]))).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["org_id"] == org)
        .and_then(|r| r["fingerprint"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn history_intact(home: &Path) {
    let v: Value = serde_json::from_str(&ok(courier(home, &["history", "--verify", "--json"])))
        .expect("history --verify --json");
    assert_eq!(v["intact"], true, "{v}");
}

/// Central and centre A rotate; the next down- and up-syncs carry the statements and work
/// with no step at the other side; afterwards each side addresses the other's new key and
/// stops carrying statements; centre B (which did not rotate) learns central's key too.
#[test]
fn both_roles_rotate_and_a_full_sync_afterwards_works() {
    let w = World::synced();
    ok(courier(
        &w.a,
        &["results", "add", s(&results_file("ORG-001-day1.jsonl"))],
    ));
    let (central_old, a_old) = (w.fingerprint(&w.central), w.fingerprint(&w.a));
    let c = rotate(&w.central);
    assert_eq!(c["old_fingerprint"], central_old.as_str());
    assert_eq!(c["peers"].as_array().unwrap().len(), 2, "{c}");
    let a = rotate(&w.a);
    let (central_new, a_new) = (w.fingerprint(&w.central), w.fingerprint(&w.a));
    assert_ne!(central_new, central_old);
    assert_ne!(a_new, a_old);
    assert_eq!(a["new_fingerprint"], a_new.as_str());
    history_intact(&w.central);
    history_intact(&w.a);

    // Up: A's new key signs, central's old key is still the one A knows.
    let up = w.export_up(&w.a, "up1", &[]);
    let h = inspect(&w.a, &up[0]);
    assert_eq!(h["sender"]["fingerprint"], a_new.as_str());
    assert_eq!(h["recipient"]["fingerprint"], central_old.as_str());
    let said = import_all(&w.central, &up);
    assert!(said.contains("pinned centre ORG-001's new key"), "{said}");
    assert_eq!(center_key(&w.central, "ORG-001"), a_new);
    let stored = count(&w.central, "central_results");
    assert!(stored > 0);

    // Down: to A's new key, signed by central's new key; A pins it.
    let down = w.export_down("ORG-001", "down1");
    let h = inspect(&w.a, &down[0]);
    assert_eq!(h["recipient"]["fingerprint"], a_new.as_str());
    assert_eq!(h["requires"][0], "rollover");
    let said = import_all(&w.a, &down);
    assert!(said.contains("pinned central's new key"), "{said}");

    // Each side now addresses the other's new key, and no statement travels any more.
    ok(courier(
        &w.a,
        &["results", "add", s(&results_file("ORG-001-reopened.jsonl"))],
    ));
    let up = w.export_up(&w.a, "up2", &[]);
    let h = inspect(&w.a, &up[0]);
    assert_eq!(h["recipient"]["fingerprint"], central_new.as_str());
    assert!(h.get("requires").is_none(), "{h}");
    import_all(&w.central, &up);
    assert!(count(&w.central, "central_results") >= stored);
    let down = w.export_down("ORG-001", "down2");
    assert!(inspect(&w.a, &down[0]).get("requires").is_none());
    import_all(&w.a, &down);

    // Centre B did not rotate: it learns central's new key from its next data bundle.
    import_all(&w.b, &w.export_down("ORG-002", "down-b"));
    let up = w.export_up(&w.b, "up-b", &[]);
    assert_eq!(
        inspect(&w.b, &up[0])["recipient"]["fingerprint"],
        central_new.as_str()
    );
    import_all(&w.central, &up);
    for home in [&w.central, &w.a, &w.b] {
        history_intact(home);
    }
    let history = ok(courier(&w.central, &["history"]));
    assert!(
        history.contains("keys-rotate") && history.contains("key-rollover"),
        "{history}"
    );
}

/// `inspect --json` of a bundle.
fn inspect(home: &Path, file: &Path) -> Value {
    serde_json::from_str(&ok(courier(home, &["inspect", "--json", s(file)]))).expect("inspect")
}

/// Bundles in transit with a sequence before the rollover still apply; a bundle signed by the
/// old key with a later sequence is refused (exit 1, one line, store unchanged), at central
/// and at a centre.
#[test]
fn the_old_key_is_refused_from_the_rollover_on_and_accepted_before() {
    let w = World::synced();
    ok(courier(
        &w.a,
        &["results", "add", s(&results_file("ORG-001-day1.jsonl"))],
    ));
    let in_transit = w.export_up(&w.a, "up-before", &[]);
    let old_a = w.path("a-old");
    copy_dir(&w.a, &old_a);
    let old_central = w.path("central-old");
    copy_dir(&w.central, &old_central);

    rotate(&w.a);
    ok(courier(
        &w.a,
        &["results", "add", s(&results_file("ORG-001-reopened.jsonl"))],
    ));
    import_all(&w.central, &w.export_up(&w.a, "up-after", &[]));
    // Written before the rotation, arriving after the new key was pinned: applied.
    import_all(&w.central, &in_transit);

    // The old machine's key signs a later sequence: refused.
    let forger = Forger::new(&old_a);
    let claim = forger.claim(50);
    let late = w.path("late/ORG-001-results-000050-1of1.courier");
    forger.results_bundle(&late, &claim, &[]);
    let err = import_refused(&w.central, &late, "retired");
    assert!(err.contains("replaced by key"), "{err}");
    refused(courier(&w.central, &["verify", s(&late)]), 1, "retired");

    // Central's old key, copied before its rotation, writes the same sequence as the new
    // one: refused at the centre once the new key is pinned.
    rotate(&w.central);
    import_all(&w.a, &w.export_down("ORG-001", "down-new"));
    let stale = w.path("stale");
    ok(courier(
        &old_central,
        &["export", "--to", "ORG-001", "--out", s(&stale)],
    ));
    let files = bundles_in(&stale);
    import_refused(&w.a, &files[0], "retired");
}

/// A rollover signed only by the new key, or claiming to replace a key not pinned here, is
/// refused with the store unchanged; the key is not pinned.
#[test]
fn a_forged_rollover_is_refused() {
    let w = World::synced();
    let forger = Forger::new(&w.a);
    let a_fpr = w.fingerprint(&w.a);
    let attacker = SecretKey::unlock(crypto::generate("attacker", None).unwrap(), None).unwrap();
    let intruder = SecretKey::unlock(crypto::generate("intruder", None).unwrap(), None).unwrap();
    let body = |old: &str| RolloverBody {
        kind: "courier-rollover".into(),
        role: Role::Center,
        org_id: "ORG-001".into(),
        old_fingerprint: old.to_string(),
        new_fingerprint: attacker.fingerprint(),
        new_certificate: crypto::armor_public(&attacker.public()).unwrap(),
        from_sequence: 1,
        created: "2026-11-27T00:00:00Z".into(),
    };
    let cases = [
        // Signed only by the new key (both signatures are the attacker's).
        (
            sign_statement(&attacker, &attacker, &body(&a_fpr)).unwrap(),
            "not signed by the old key",
        ),
        // A good statement from a key that is not pinned here.
        (
            sign_statement(&intruder, &attacker, &body(&intruder.fingerprint())).unwrap(),
            "is not pinned here",
        ),
    ];
    for (i, (statement, needle)) in cases.into_iter().enumerate() {
        let out = w.path(&format!("forged{i}/ORG-001-results-000009-1of1.courier"));
        forger.results_bundle_signed(&out, &forger.claim(9), &attacker, vec![statement], &[]);
        let err = import_refused(&w.central, &out, needle);
        assert!(err.contains("rollover refused"), "{err}");
    }
    assert_eq!(center_key(&w.central, "ORG-001"), a_fpr);
}

/// Results sealed at the centre to central's old key (before central rotated, or before the
/// centre learnt the new key) are decrypted at central after its rotation and exported.
#[test]
fn results_sealed_before_central_rotated_are_exported_decrypted() {
    let w = World::synced();
    ok(courier(
        &w.a,
        &["results", "add", s(&results_file("ORG-001-day1.jsonl"))],
    ));
    let up = w.export_up(&w.a, "up", &[]);
    rotate(&w.central);
    import_all(&w.central, &up);
    let out = w.path("results.jsonl");
    ok(courier(
        &w.central,
        &["results", "export", "--format", "jsonl", "--out", s(&out)],
    ));
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty());
    assert_eq!(lines.len() as i64, count(&w.central, "central_results"));
    assert!(
        lines.iter().all(|r| r["deliveryExecutionId"].is_string()),
        "{text}"
    );
}

/// A reinstalled centre: `center add` points to `center reenroll`; re-enrolled, the new
/// machine enrolls as the first time and receives its whole scope; the old machine's later
/// bundles are refused, its earlier ones still count.
#[test]
fn a_reinstalled_centre_is_reenrolled_and_receives_its_whole_scope() {
    let w = World::synced();
    ok(courier(
        &w.a,
        &["results", "add", s(&results_file("ORG-001-day1.jsonl"))],
    ));
    import_all(&w.central, &w.export_up(&w.a, "up1", &[]));
    ok(courier(
        &w.a,
        &["results", "add", s(&results_file("ORG-001-reopened.jsonl"))],
    ));
    let late = w.export_up(&w.a, "up2", &[]); // still on the old machine

    let file = w.path("reenroll-ORG-001.json");
    let err = refused(
        courier(
            &w.central,
            &[
                "center",
                "add",
                "ORG-001",
                "--label",
                "x",
                "--out",
                s(&file),
            ],
        ),
        2,
        "center reenroll ORG-001",
    );
    assert!(err.contains("already enrolled"), "{err}");
    let said = reenroll(&w.central, "ORG-001", &file);
    assert!(said.contains("revoked key"), "{said}");

    let a2 = w.path("center-a2");
    ok(courier(&a2, &["init", "center", "--org", "ORG-001"]));
    let central_fpr = w.fingerprint(&w.central);
    let replies = w.path("replies-a2");
    ok(courier(
        &a2,
        &[
            "enroll",
            s(&file),
            "--expect-fingerprint",
            &central_fpr,
            "--out",
            s(&replies),
        ],
    ));
    import_all(&w.central, &bundles_in(&replies));
    assert_eq!(center_key(&w.central, "ORG-001"), w.fingerprint(&a2));

    import_all(&a2, &w.export_down("ORG-001", "down-a2"));
    assert_eq!(list(&a2, &[]).len(), list(&w.a, &[]).len());
    assert!(!list(&a2, &[]).is_empty());
    assert_eq!(count(&a2, "packages"), count(&w.a, "packages"));

    // The old machine's next file: signed after the revocation, refused.
    import_refused(&w.central, &late[0], "retired");
    // The new machine's results go through.
    ok(courier(
        &a2,
        &["results", "add", s(&results_file("ORG-001-day1.jsonl"))],
    ));
    import_all(&w.central, &w.export_up(&a2, "up-a2", &[]));
    let _ = Site::open(&a2, Passphrase::none()).unwrap();
}

/// `keys revoke-peer FILE` at centre `home`: the output.
fn revoke_peer(home: &Path, file: &Path) -> String {
    ok(courier(home, &["keys", "revoke-peer", s(file)]))
}

/// Central's own compromise: central's revocation certificate (written beforehand) applied at
/// a centre makes it refuse central's next bundle with the store unchanged, seal and export
/// nothing, and refuse an enrollment file from the revoked key; it then enrolls with a new
/// central and syncs both ways (the new central's sequence starts again at 1).
#[test]
fn a_revoked_central_key_is_refused_until_the_centre_enrolls_again() {
    let w = World::synced();
    let revocation = w.path("central-revocation.asc");
    let said = ok(courier(
        &w.central,
        &["keys", "export", "--revocation", "--out", s(&revocation)],
    ));
    assert!(said.contains("revocation certificate"), "{said}");
    let text = std::fs::read_to_string(&revocation).unwrap();
    assert!(
        text.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"),
        "{text}"
    );
    let next = w.export_down("ORG-001", "down-next");
    let old_file = w.path("old-central-enroll.json");
    reenroll(&w.central, "ORG-001", &old_file);

    let said = revoke_peer(&w.a, &revocation);
    assert!(said.contains("revoked central's key"), "{said}");
    let err = import_refused(&w.a, &next[0], "was revoked here");
    assert!(err.contains("enroll again"), "{err}");
    refused(
        courier(&w.a, &["export", "--out", s(&w.path("up-x"))]),
        4,
        "was revoked here",
    );
    refused(
        courier(
            &w.a,
            &["results", "add", s(&results_file("ORG-001-day1.jsonl"))],
        ),
        4,
        "enroll again",
    );
    refused(
        courier(&w.a, &["keys", "revoke-peer", s(&revocation)]),
        2,
        "already revoked",
    );
    // An enrollment file signed by the revoked key (a thief's) is refused, store unchanged.
    let before = snapshot(&w.a, true);
    let central_fpr = w.fingerprint(&w.central);
    let replies = w.path("replies-old");
    let enroll = |file: &Path, fpr: &str| {
        courier(
            &w.a,
            &[
                "enroll",
                s(file),
                "--expect-fingerprint",
                fpr,
                "--out",
                s(&replies),
            ],
        )
    };
    refused(enroll(&old_file, &central_fpr), 1, "retired here");
    assert_eq!(snapshot(&w.a, true), before);
    let history = ok(courier(&w.a, &["history"]));
    assert!(history.contains("key-revoke-peer"), "{history}");
    let shown: Value =
        serde_json::from_str(&ok(courier(&w.a, &["keys", "show", "--json"]))).unwrap();
    assert_eq!(
        shown["peers"][0]["fingerprint"],
        central_fpr.as_str(),
        "{shown}"
    );
    assert_eq!(shown["peers"][0]["status"], "revoked");
    assert_eq!(shown["peers"][0]["retired_from_seq"], 0);

    // A new central: the centre enrolls with its enrollment file, both ways work again.
    let central2 = w.path("central2");
    ok(courier(
        &central2,
        &["init", "central", "--name", "Central 2"],
    ));
    ok(courier(
        &central2,
        &["load", s(&fixtures().join("data/central.jsonl"))],
    ));
    let work = w.path("work2");
    std::fs::create_dir_all(&work).unwrap();
    handshake(&central2, &w.a, "ORG-001", &work);
    let dir = w.path("down2");
    ok(courier(
        &central2,
        &["export", "--to", "ORG-001", "--out", s(&dir)],
    ));
    import_all(&w.a, &bundles_in(&dir));
    ok(courier(
        &w.a,
        &["results", "add", s(&results_file("ORG-001-day1.jsonl"))],
    ));
    import_all(&central2, &w.export_up(&w.a, "up2", &[]));
    assert!(count(&central2, "central_results") > 0);
    history_intact(&w.a);
}

/// A revocation certificate of another key, one signed by another key, or a file that is no
/// revocation at all is refused (exit 1, one line naming the file) with the store unchanged.
#[test]
fn a_revocation_of_another_key_or_a_forged_one_is_refused() {
    let w = World::enrolled();
    let other = w.path("central-other");
    ok(courier(&other, &["init", "central", "--name", "Other"]));
    let other_rev = w.path("other-revocation.asc");
    ok(courier(
        &other,
        &["keys", "export", "--revocation", "--out", s(&other_rev)],
    ));
    let public = w.path("central-public.asc");
    ok(courier(
        &w.central,
        &["keys", "export", "--out", s(&public)],
    ));
    let forged = w.path("forged-revocation.asc");
    std::fs::write(&forged, forged_revocation(&w.central)).unwrap();
    for (file, needle) in [
        (&other_rev, "it revokes key"),
        (&public, "no key revocation signature"),
        (&forged, "signed by another key"),
    ] {
        let before = snapshot(&w.a, true);
        let err = refused(courier(&w.a, &["keys", "revoke-peer", s(file)]), 1, needle);
        assert!(err.contains("revocation statement refused"), "{err}");
        assert!(
            err.contains(file.file_name().unwrap().to_str().unwrap()),
            "{err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert_eq!(snapshot(&w.a, true), before, "{}", file.display());
    }
    // The centre still takes central's bundles.
    w.load_fixtures();
    import_all(&w.a, &w.export_down("ORG-001", "down"));
}

/// Central's public certificate with a key revocation signature over its primary key made by
/// another (an attacker's) key.
fn forged_revocation(central: &Path) -> Vec<u8> {
    use sequoia_openpgp::packet::signature::SignatureBuilder;
    use sequoia_openpgp::serialize::SerializeInto;
    use sequoia_openpgp::types::{ReasonForRevocation, SignatureType};
    let site = Site::open(central, Passphrase::none()).unwrap();
    let cert = site.certificate().unwrap();
    let attacker = crypto::generate("attacker", None).unwrap();
    let mut signer = attacker
        .primary_key()
        .key()
        .clone()
        .parts_into_secret()
        .unwrap()
        .into_keypair()
        .unwrap();
    let sig = SignatureBuilder::new(SignatureType::KeyRevocation)
        .set_reason_for_revocation(ReasonForRevocation::KeyCompromised, b"forged")
        .unwrap()
        .sign_direct_key(&mut signer, Some(cert.primary_key().key()))
        .unwrap();
    let (cert, _) = cert
        .insert_packets(std::iter::once(sequoia_openpgp::Packet::from(sig)))
        .unwrap();
    let bytes = cert.armored().to_vec().unwrap();
    bytes
}

/// `keys show --json` lists the site's own keys after `keys rotate` and the pinned peers'
/// keys; `center list` shows each centre's earlier keys: replaced by a rollover, or revoked
/// by a re-enrollment with the reason.
#[test]
fn keys_show_and_center_list_give_the_key_history() {
    let w = World::synced();
    let a_old = w.fingerprint(&w.a);
    let a_new = rotate(&w.a)["new_fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    import_all(&w.central, &w.export_up(&w.a, "up", &[]));
    let shown: Value =
        serde_json::from_str(&ok(courier(&w.a, &["keys", "show", "--json"]))).unwrap();
    let keys = shown["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{shown}");
    assert_eq!(keys[0]["fingerprint"], a_old.as_str());
    assert_eq!(keys[0]["status"], "replaced");
    assert_eq!(keys[0]["replaced_by"], a_new.as_str());
    assert_eq!(keys[1]["fingerprint"], a_new.as_str());
    assert_eq!(keys[1]["status"], "current");
    assert!(keys[1]["created_at"].is_string());
    assert_eq!(shown["peers"][0]["role"], "central", "{shown}");
    assert_eq!(shown["peers"][0]["status"], "current");
    let text = ok(courier(&w.a, &["keys", "show"]));
    assert!(
        text.contains("replaced by") && text.contains("pinned keys:"),
        "{text}"
    );

    let file = w.path("reenroll-ORG-002.json");
    let b_key = w.fingerprint(&w.b);
    reenroll(&w.central, "ORG-002", &file);
    let rows: Value =
        serde_json::from_str(&ok(courier(&w.central, &["center", "list", "--json"]))).unwrap();
    let row = |org: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["org_id"] == org)
            .unwrap()
            .clone()
    };
    let a = row("ORG-001");
    assert_eq!(a["fingerprint"], a_new.as_str());
    assert_eq!(a["earlier_keys"][0]["fingerprint"], a_old.as_str(), "{a}");
    assert_eq!(a["earlier_keys"][0]["status"], "replaced");
    let b = row("ORG-002");
    assert_eq!(b["earlier_keys"][0]["fingerprint"], b_key.as_str(), "{b}");
    assert_eq!(b["earlier_keys"][0]["status"], "revoked");
    assert!(
        b["earlier_keys"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("re-enrolled"),
        "{b}"
    );
    let text = ok(courier(&w.central, &["center", "list"]));
    assert!(
        text.contains("earlier key") && text.contains("REVOKED"),
        "{text}"
    );
}

/// A centre rotates twice before central hears of it: its next bundle carries both
/// statements, oldest first, and central follows the chain to the newest key; both old keys
/// are retired there.
#[test]
fn rotating_twice_before_the_peer_catches_up() {
    let w = World::synced();
    let first = w.fingerprint(&w.a);
    let second = rotate(&w.a)["new_fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let third = rotate(&w.a)["new_fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    ok(courier(
        &w.a,
        &["results", "add", s(&results_file("ORG-001-day1.jsonl"))],
    ));
    let up = w.export_up(&w.a, "up", &[]);
    assert_eq!(
        inspect(&w.a, &up[0])["rollover_keys"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    import_all(&w.central, &up);
    assert_eq!(center_key(&w.central, "ORG-001"), third);
    let rows: Value =
        serde_json::from_str(&ok(courier(&w.central, &["center", "list", "--json"]))).unwrap();
    let earlier = rows[0]["earlier_keys"].as_array().unwrap();
    let replaced: Vec<(&str, &str)> = earlier
        .iter()
        .map(|k| {
            (
                k["fingerprint"].as_str().unwrap(),
                k["replaced_by"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        replaced,
        [
            (first.as_str(), second.as_str()),
            (second.as_str(), third.as_str())
        ]
    );
    import_all(&w.a, &w.export_down("ORG-001", "down"));
    history_intact(&w.a);
}

/// A rotation keeps a centre's upward numbering: the files central applied under the
/// centre's old key still count as received, so central's status lists none of them as
/// missing.
#[test]
fn files_applied_under_a_rotated_out_key_still_count_as_received() {
    let w = World::synced();
    ok(courier(
        &w.a,
        &["results", "add", s(&results_file("ORG-001-day1.jsonl"))],
    ));
    import_all(&w.central, &w.export_up(&w.a, "up-old", &[]));
    rotate(&w.a);
    ok(courier(
        &w.a,
        &["results", "add", s(&results_file("ORG-001-reopened.jsonl"))],
    ));
    import_all(&w.central, &w.export_up(&w.a, "up-new", &[]));
    let status: Value =
        serde_json::from_str(&ok(courier(&w.central, &["status", "--json"]))).unwrap();
    let row = status["centers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["org_id"] == "ORG-001")
        .expect("ORG-001 in status")
        .clone();
    assert_eq!(row["missing_files"], serde_json::json!([]), "{row:#}");
}
