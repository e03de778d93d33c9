//! Central → test centre: scope, property-by-property round trips, encryption at rest,
//! packages, the "next bundle" update, replay, rollback, misdirected bundles, all-or-nothing
//! loads and the change-detection checksum (fixtures/data/README.md).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::common::*;

const NS: &str = "https://central.example/tao.rdf#";
const LABEL: &str = "http://www.w3.org/2000/01/rdf-schema#label";
const FIRST_NAME: &str = "http://www.tao.lu/Ontologies/generis.rdf#userFirstName";
const LAST_NAME: &str = "http://www.tao.lu/Ontologies/generis.rdf#userLastName";
const MAIL: &str = "http://www.tao.lu/Ontologies/generis.rdf#userMail";
const PERSONAL: [&str; 4] = [LABEL, FIRST_NAME, LAST_NAME, MAIL];
const USER_TYPES: [&str; 3] = ["administrator", "proctor", "test-taker"];
const ORIGIN_PACKAGE: &str = "http://www.taotesting.com/ontologies/synchro.rdf#OriginTestPackage";
const CREATED_AT: &str = "http://www.taotesting.com/Ontologies/TAO.rdf#CreatedAt";
const UPDATED_AT: &str = "http://www.tao.lu/Ontologies/TAO.rdf#UpdatedAt";
const AUTHORIZED_PROCTOR: &str = "http://www.tao.lu/Ontologies/TAOTestCenter.rdf#authorizedProctor";
const ELIG_TAKER: &str = "http://www.tao.lu/Ontologies/TAOProctor.rdf#EligibileTestTaker";
const TYPES: [&str; 6] = [
    "test-center",
    "administrator",
    "proctor",
    "test-taker",
    "eligibility",
    "delivery",
];

/// Excluded properties per type, as DOMAIN.md lists TAO's defaults.
fn excluded(kind: &str) -> Vec<String> {
    let mut v = vec![CREATED_AT.to_string(), UPDATED_AT.to_string()];
    match kind {
        "delivery" => v.extend(
            [
                "AssembledDeliveryOrigin",
                "AssembledDeliveryCompilationDirectory",
                "AssembledDeliveryCompilationTime",
                "AssembledDeliveryRuntime",
                "AssembledDeliveryContainer",
            ]
            .iter()
            .map(|p| format!("http://www.tao.lu/Ontologies/TAODelivery.rdf#{p}")),
        ),
        "proctor" => v.push(AUTHORIZED_PROCTOR.to_string()),
        _ => {}
    }
    v
}

fn full(short: &str) -> String {
    format!("{NS}{short}")
}

fn short(id: &str) -> &str {
    id.strip_prefix(NS).unwrap_or(id)
}

/// Expected ids per type, from a table of (type, short ids).
fn expect(table: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
    table
        .iter()
        .map(|(k, ids)| (k.to_string(), ids.iter().map(|s| s.to_string()).collect()))
        .collect()
}

/// ORG-001's scope after loading central.jsonl (fixtures/data/README.md).
fn org1_scope() -> BTreeMap<String, BTreeSet<String>> {
    expect(&[
        ("test-center", &["tc-org-001"]),
        ("administrator", &["admin-001"]),
        ("proctor", &["proctor-001a", "proctor-001b"]),
        (
            "test-taker",
            &["tt-001a", "tt-001b", "tt-001c", "tt-shared"],
        ),
        ("eligibility", &["elig-001-basic", "elig-001-label"]),
        ("delivery", &["del-basic", "del-label"]),
    ])
}

/// ORG-002's scope after loading central.jsonl.
fn org2_scope() -> BTreeMap<String, BTreeSet<String>> {
    expect(&[
        ("test-center", &["tc-org-002"]),
        ("administrator", &["admin-002"]),
        ("proctor", &["proctor-002a", "proctor-002b"]),
        (
            "test-taker",
            &["tt-002a", "tt-002b", "tt-002c", "tt-shared"],
        ),
        ("eligibility", &["elig-002-label", "elig-002-sumscore"]),
        ("delivery", &["del-label", "del-sumscore"]),
    ])
}

/// ORG-001's scope after update.jsonl and the removal of elig-001-label.
fn org1_scope_after_update() -> BTreeMap<String, BTreeSet<String>> {
    expect(&[
        ("test-center", &["tc-org-001"]),
        ("administrator", &["admin-001"]),
        ("proctor", &["proctor-001a", "proctor-001b"]),
        (
            "test-taker",
            &["tt-001a", "tt-001b", "tt-001c", "tt-shared"],
        ),
        ("eligibility", &["elig-001-basic", "elig-001-tables"]),
        ("delivery", &["del-basic", "del-tables"]),
    ])
}

/// The ids a `list --json` shows, per type (short form).
fn ids_by_type(list: &[Value]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in list {
        out.entry(e["type"].as_str().expect("type").to_string())
            .or_default()
            .insert(short(e["id"].as_str().expect("id")).to_string());
    }
    out
}

/// Records of a fixture entity file.
fn fixture_records(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join("data").join(name)).expect("fixture");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("fixture line is JSON"))
        .collect()
}

/// Bytes of the fixture zip a delivery record names (its path is relative to data/).
fn fixture_package(record: &Value) -> Vec<u8> {
    let rel = record["properties"][ORIGIN_PACKAGE]
        .as_str()
        .expect("package path");
    std::fs::read(fixtures().join("data").join(rel)).expect("fixture package")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// An OpenPGP armored file (the secret key) as the bytes it encodes: its base64 text holds
/// any three letters now and then (a first name such as "Luc" appeared in one run), which is
/// not plaintext; other files as they are.
fn dearmored(bytes: Vec<u8>) -> Vec<u8> {
    use base64::Engine;
    if !bytes.starts_with(b"-----BEGIN PGP") {
        return bytes;
    }
    let text = String::from_utf8(bytes).expect("armor is text");
    let body: String = text
        .lines()
        .skip(1)
        .skip_while(|l| !l.trim().is_empty())
        .filter(|l| !l.starts_with('=') && !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("armor body is base64")
}

/// The contents of the files in a site's packages folder.
fn package_files(home: &Path) -> Vec<Vec<u8>> {
    files_under(&home.join("packages"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "zip"))
        .map(|p| std::fs::read(p).expect("package file"))
        .collect()
}

fn sorted(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    v.sort();
    v
}

fn read_valid_zip(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("qti/valid").join(name)).expect("fixture zip")
}

/// `inspect --json` of one bundle.
fn inspect(home: &Path, file: &Path) -> Value {
    serde_json::from_str(&ok(courier(
        home,
        &["inspect", "--json", file.to_str().unwrap()],
    )))
    .expect("inspect json")
}

fn counted(inspection: &Value, what: &str) -> u64 {
    inspection["counts"]
        .get(what)
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// Import one file at a site and require success.
fn import(home: &Path, file: &Path) -> String {
    ok(courier(home, &["import", file.to_str().unwrap()]))
}

/// Central exports for `org`, the centre imports; returns the bundle written.
fn sync_down(w: &World, org: &str, center: &Path, folder: &str) -> PathBuf {
    let files = w.export_down(org, folder);
    assert_eq!(files.len(), 1, "one data bundle for {org}: {files:?}");
    import(center, &files[0]);
    files[0].clone()
}

/// The centre sends its acknowledgement; central imports it.
fn ack_cycle(w: &World, center: &Path, folder: &str) {
    let files = w.export_up(center, folder, &[]);
    assert!(!files.is_empty(), "the centre writes its acknowledgement");
    for f in &files {
        import(&w.central, f);
    }
}

/// The centre's `history --json`, oldest first.
fn history(home: &Path) -> Vec<Value> {
    serde_json::from_str(&ok(courier(
        home,
        &["history", "--json", "--limit", "1000"],
    )))
    .expect("history json")
}

/// What the centre's last data import did to each entity (entity_history of that sync).
fn last_entity_actions(home: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let conn = rusqlite::Connection::open(home.join("store.sqlite")).expect("store");
    let mut stmt = conn
        .prepare(
            "SELECT action, entity_id FROM entity_history
             WHERE history_n = (SELECT MAX(history_n) FROM entity_history)",
        )
        .unwrap();
    let rows: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (action, id) in rows {
        out.entry(action)
            .or_default()
            .insert(short(&id).to_string());
    }
    out
}

/// The world with central's data loaded and both centres holding their first bundle.
fn synced_world() -> World {
    let w = World::enrolled();
    w.load_fixtures();
    sync_down(&w, "ORG-001", &w.a, "down-a-1");
    sync_down(&w, "ORG-002", &w.b, "down-b-1");
    w
}

/// Each centre holds exactly its organisation's scope, type by type and id by id: the
/// shared test taker at both, the out-of-scope one at neither, no delivery of the other org.
#[test]
fn each_centre_holds_exactly_its_scope() {
    let w = synced_world();
    let central = ids_by_type(&list(&w.central, &[]));
    assert!(
        central["test-taker"].contains("tt-orphan"),
        "central holds the out-of-scope test taker"
    );
    let a = ids_by_type(&list(&w.a, &[]));
    let b = ids_by_type(&list(&w.b, &[]));
    assert_eq!(a, org1_scope(), "ORG-001's centre");
    assert_eq!(b, org2_scope(), "ORG-002's centre");
    for (home, org, other, other_delivery) in [
        (&w.a, "ORG-001", "002", "del-sumscore"),
        (&w.b, "ORG-002", "001", "del-basic"),
    ] {
        let held: Vec<String> = list(home, &[])
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(held.len(), 12, "{org} holds 12 entities");
        assert!(
            held.contains(&full("tt-shared")),
            "{org}: shared test taker"
        );
        assert!(
            !held.contains(&full("tt-orphan")),
            "{org}: tt-orphan leaked"
        );
        assert!(
            !held.iter().any(|id| id.contains(other)),
            "{org}: an id of the other organisation leaked: {held:?}"
        );
        assert!(
            !held.contains(&full(other_delivery)),
            "{org}: {other_delivery} leaked"
        );
    }
}

/// Property for property, what a centre lists equals central's record minus the excluded
/// properties (personal ones shown with --decrypt); the test package is shown as a path to
/// a file byte-identical to the fixture zip. Without --decrypt, personal properties are
/// absent and named in `encryptedProperties`.
#[test]
fn centre_entities_equal_central_records_minus_excluded_properties() {
    let w = synced_world();
    let central: BTreeMap<String, Value> = list(&w.central, &[])
        .into_iter()
        .map(|e| (e["id"].as_str().unwrap().to_string(), e))
        .collect();
    let fixture: BTreeMap<String, Value> = fixture_records("central.jsonl")
        .into_iter()
        .map(|e| (e["id"].as_str().unwrap().to_string(), e))
        .collect();
    for home in [&w.a, &w.b] {
        let decrypted = list(home, &["--decrypt"]);
        let sealed = list(home, &[]);
        assert_eq!(decrypted.len(), 12);
        assert_eq!(sealed.len(), 12);
        for (got, plain) in decrypted.iter().zip(&sealed) {
            let id = got["id"].as_str().unwrap();
            assert_eq!(
                plain["id"], got["id"],
                "same order with and without --decrypt"
            );
            let kind = got["type"].as_str().unwrap();
            let want = &central[id];
            assert_eq!(want["type"], got["type"], "{id}: type");
            let mut want_props = want["properties"].as_object().unwrap().clone();
            for p in excluded(kind) {
                want_props.remove(&p);
            }
            let mut got_props = got["properties"].as_object().unwrap().clone();
            for p in excluded(kind) {
                assert!(
                    !got_props.contains_key(&p),
                    "{id}: excluded {p} reached the centre"
                );
            }
            if kind == "delivery" {
                let path = got_props
                    .remove(ORIGIN_PACKAGE)
                    .expect("delivery has its package");
                let path = PathBuf::from(path.as_str().expect("package path"));
                assert!(
                    path.starts_with(home),
                    "{id}: package {path:?} is in the centre's home"
                );
                let bytes = std::fs::read(&path).expect("package file exists");
                assert!(
                    bytes == fixture_package(&fixture[id]),
                    "{id}: package differs from the fixture zip"
                );
                want_props.remove(ORIGIN_PACKAGE);
            }
            let want_sorted: BTreeMap<_, _> = want_props.into_iter().collect();
            let got_sorted: BTreeMap<_, _> = got_props.into_iter().collect();
            assert_eq!(got_sorted, want_sorted, "{id}: properties with --decrypt");

            // Without --decrypt.
            let props = plain["properties"].as_object().unwrap();
            if USER_TYPES.contains(&kind) {
                let listed: BTreeSet<&str> = plain["encryptedProperties"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{id}: no encryptedProperties"))
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                assert_eq!(
                    listed,
                    PERSONAL.into_iter().collect(),
                    "{id}: encryptedProperties"
                );
                for p in PERSONAL {
                    assert!(!props.contains_key(p), "{id}: {p} shown without --decrypt");
                }
                let mut expected = got["properties"].as_object().unwrap().clone();
                for p in PERSONAL {
                    expected.remove(p);
                }
                let expected: BTreeMap<_, _> = expected.into_iter().collect();
                let props: BTreeMap<_, _> = props.clone().into_iter().collect();
                assert_eq!(
                    props, expected,
                    "{id}: non-personal properties stay readable"
                );
            } else {
                assert!(
                    plain.get("encryptedProperties").is_none(),
                    "{id}: a {kind} has nothing encrypted"
                );
                assert_eq!(plain["properties"], got["properties"], "{id}");
            }
        }
    }
}

/// No file under a centre's home (store, WAL, packages, config) holds a personal value in
/// plaintext once the commands have exited; central's store does (so the search works).
#[test]
fn no_personal_value_in_plaintext_at_the_centre() {
    let w = synced_world();
    let mut needles: BTreeSet<String> = BTreeSet::new();
    let mut users = 0;
    for r in fixture_records("central.jsonl")
        .iter()
        .chain(&fixture_records("update.jsonl"))
    {
        if !USER_TYPES.contains(&r["type"].as_str().unwrap()) {
            continue;
        }
        users += 1;
        for p in PERSONAL {
            needles.insert(
                r["properties"][p]
                    .as_str()
                    .expect("personal value")
                    .to_string(),
            );
        }
    }
    // Every personal property of every user: label, first name, last name, mail.
    assert_eq!(users, 15, "the fixture's users");
    for name in ["Ada", "Lovelace", "Katherine Johnson", "Edsger"] {
        assert!(needles.contains(name), "{name} among the needles");
    }
    for home in [&w.a, &w.b] {
        let files = files_under(home);
        assert!(
            files.iter().any(|f| f.ends_with("store.sqlite")),
            "the store is among the files: {files:?}"
        );
        for f in &files {
            let bytes = dearmored(std::fs::read(f).expect("read"));
            for n in &needles {
                assert!(
                    !contains(&bytes, n.as_bytes()),
                    "{} holds {n:?} in plaintext",
                    f.display()
                );
            }
        }
    }
    let store = std::fs::read(w.central.join("store.sqlite")).expect("central store");
    for name in ["Lovelace", "Edsger"] {
        assert!(
            contains(&store, name.as_bytes()),
            "central's store holds {name}: the search is sound"
        );
    }
}

/// A centre's packages are byte-identical to the fixture zips; the delivery both orgs use
/// (del-label) travels to both, each other delivery's package only to its org.
#[test]
fn packages_arrive_byte_identical_and_shared_delivery_travels_to_both() {
    let w = World::enrolled();
    w.load_fixtures();
    let a_file = sync_down(&w, "ORG-001", &w.a, "down-a");
    let b_file = sync_down(&w, "ORG-002", &w.b, "down-b");
    assert_eq!(counted(&inspect(&w.central, &a_file), "packages"), 2);
    assert_eq!(counted(&inspect(&w.central, &b_file), "packages"), 2);
    let basic = read_valid_zip("2.1-basic-Basic.zip");
    let label = read_valid_zip("2.2-test_label_is_persisted.zip");
    let sumscore = read_valid_zip("2.1-outcomeProcessing-SumScore.zip");
    assert!(
        sorted(package_files(&w.a)) == sorted(vec![basic, label.clone()]),
        "ORG-001 holds exactly the basic and label packages, byte for byte"
    );
    assert!(
        sorted(package_files(&w.b)) == sorted(vec![sumscore, label]),
        "ORG-002 holds exactly the sumscore and label packages, byte for byte"
    );
}

/// The README's update scenario: after an ack cycle, the next bundle for ORG-001 carries
/// exactly the new delivery and eligibility, the edited test taker, deletes the removed
/// eligibility and the delivery that left scope, and only the new package; ORG-002 gets
/// nothing.
#[test]
fn next_bundle_carries_exactly_the_update() {
    let w = synced_world();
    ack_cycle(&w, &w.a, "up-a-1");
    ack_cycle(&w, &w.b, "up-b-1");
    let update = fixtures().join("data/update.jsonl");
    ok(courier(&w.central, &["load", update.to_str().unwrap()]));
    ok(courier(&w.central, &["remove", &full("elig-001-label")]));

    let files = w.export_down("ORG-001", "down-a-2");
    assert_eq!(files.len(), 1);
    let i = inspect(&w.central, &files[0]);
    let per_type: BTreeMap<&str, u64> = TYPES.iter().map(|t| (*t, counted(&i, t))).collect();
    let want: BTreeMap<&str, u64> = [
        ("test-center", 0),
        ("administrator", 0),
        ("proctor", 0),
        ("test-taker", 1),
        ("eligibility", 1),
        ("delivery", 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(per_type, want, "entities carried: {i}");
    assert_eq!(counted(&i, "packages"), 1, "only the new package travels");
    assert_eq!(counted(&i, "scope"), 12, "the full scope list");

    import(&w.a, &files[0]);
    let h = history(&w.a);
    let last = h.last().expect("history");
    assert_eq!(last["action"], "import");
    assert_eq!(last["kind"], "data");
    assert_eq!(last["status"], "success");
    assert_eq!(
        last["counts"]["created"],
        json!({"delivery": 1, "eligibility": 1})
    );
    assert_eq!(last["counts"]["updated"], json!({"test-taker": 1}));
    assert_eq!(
        last["counts"]["deleted"],
        json!({"delivery": 1, "eligibility": 1})
    );
    let actions = last_entity_actions(&w.a);
    let set = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(actions["created"], set(&["elig-001-tables", "del-tables"]));
    assert_eq!(actions["updated"], set(&["tt-001a"]));
    assert_eq!(actions["deleted"], set(&["elig-001-label", "del-label"]));
    assert_eq!(
        actions["touched"],
        set(&[
            "tc-org-001",
            "admin-001",
            "proctor-001a",
            "proctor-001b",
            "tt-001b",
            "tt-001c",
            "tt-shared",
            "elig-001-basic",
            "del-basic"
        ])
    );

    // Entity state at the centre.
    assert_eq!(ids_by_type(&list(&w.a, &[])), org1_scope_after_update());
    let taker = list(&w.a, &["test-taker", "--decrypt"])
        .into_iter()
        .find(|e| e["id"] == full("tt-001a"))
        .expect("tt-001a");
    assert_eq!(taker["properties"][LAST_NAME], "King");
    assert_eq!(taker["properties"][LABEL], "Ada King");
    let elig = list(&w.a, &["eligibility"])
        .into_iter()
        .find(|e| e["id"] == full("elig-001-tables"))
        .expect("elig-001-tables");
    assert_eq!(
        elig["properties"][ELIG_TAKER],
        json!([full("tt-001a"), full("tt-001c")])
    );
    assert!(
        sorted(package_files(&w.a))
            == sorted(vec![
                read_valid_zip("2.1-basic-Basic.zip"),
                read_valid_zip("2.1-tables-Basic.zip")
            ]),
        "ORG-001 holds the basic and tables packages; label's was dropped"
    );
    // ORG-002 still holds del-label and its package: another centre's deletion is not its.
    assert!(ids_by_type(&list(&w.b, &[]))["delivery"].contains("del-label"));

    // ORG-002: nothing changed.
    let out = w.path("down-b-2");
    let o = ok(courier(
        &w.central,
        &["export", "--to", "ORG-002", "--out", out.to_str().unwrap()],
    ));
    assert!(o.contains("nothing changed"), "{o}");
    assert!(bundles_in(&out).is_empty(), "no file for ORG-002");
}

/// Changes to excluded properties only (timestamps, AssembledDelivery*, authorizedProctor)
/// are not changes: a reload reports every entity unchanged and the next export says
/// nothing changed.
#[test]
fn excluded_property_changes_do_not_travel() {
    let w = World::enrolled();
    w.load_fixtures();
    sync_down(&w, "ORG-001", &w.a, "down-1");
    ack_cycle(&w, &w.a, "up-1");
    let mut lines = Vec::new();
    for mut r in fixture_records("central.jsonl") {
        let kind = r["type"].as_str().unwrap().to_string();
        let props = r["properties"].as_object_mut().unwrap();
        for p in excluded(&kind) {
            if props.contains_key(&p) {
                props.insert(p, json!("1799999999"));
            }
        }
        if let Some(rel) = props.get(ORIGIN_PACKAGE).and_then(Value::as_str) {
            let abs = fixtures().join("data").join(rel);
            props.insert(ORIGIN_PACKAGE.into(), json!(abs.to_str().unwrap()));
        }
        lines.push(r.to_string());
    }
    let file = w.path("touched.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let report: Value = serde_json::from_str(&ok(courier(
        &w.central,
        &["load", "--json", file.to_str().unwrap()],
    )))
    .unwrap();
    let total = |k: &str| -> u64 {
        report[k]
            .as_object()
            .map(|m| m.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0)
    };
    assert_eq!(
        (total("created"), total("updated"), total("unchanged")),
        (0, 0, 23),
        "{report}"
    );
    let out = w.path("down-2");
    let o = ok(courier(
        &w.central,
        &["export", "--to", "ORG-001", "--out", out.to_str().unwrap()],
    ));
    assert!(o.contains("nothing changed"), "{o}");
    assert!(bundles_in(&out).is_empty());
}

/// When a centre applied a bundle central has not seen acknowledged yet, a later change
/// that returns the scope to the last acknowledged state must still reach it: removing
/// elig-001-label (bundle 2, applied, not acknowledged) then loading it again must produce
/// a bundle that gives the centre back elig-001-label, del-label and tt-001c.
#[test]
fn change_undone_before_the_ack_still_reaches_the_centre() {
    let w = World::enrolled();
    w.load_fixtures();
    sync_down(&w, "ORG-001", &w.a, "down-1");
    ack_cycle(&w, &w.a, "up-1");
    ok(courier(&w.central, &["remove", &full("elig-001-label")]));
    sync_down(&w, "ORG-001", &w.a, "down-2");
    let held = ids_by_type(&list(&w.a, &[]));
    assert!(!held["eligibility"].contains("elig-001-label"));
    assert!(!held["delivery"].contains("del-label"));

    let back: Vec<String> = fixture_records("central.jsonl")
        .into_iter()
        .filter(|r| r["id"] == full("elig-001-label"))
        .map(|r| r.to_string())
        .collect();
    let file = w.path("back.jsonl");
    std::fs::write(&file, back.join("\n")).unwrap();
    ok(courier(&w.central, &["load", file.to_str().unwrap()]));
    let files = w.export_down("ORG-001", "down-3");
    assert_eq!(files.len(), 1, "the centre is out of date: a bundle is due");
    import(&w.a, &files[0]);
    assert_eq!(ids_by_type(&list(&w.a, &[])), org1_scope());
}

/// Right after an ack cycle, exporting for the centre exits 0, says nothing changed and
/// writes no file.
#[test]
fn nothing_changed_writes_no_file() {
    let w = World::enrolled();
    w.load_fixtures();
    sync_down(&w, "ORG-001", &w.a, "down-1");
    ack_cycle(&w, &w.a, "up-1");
    let out = w.path("down-2");
    let o = courier(
        &w.central,
        &["export", "--to", "ORG-001", "--out", out.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("nothing changed"), "{}", stdout(&o));
    assert!(
        !out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(),
        "no file written"
    );
}

/// The same data bundle imported twice: the second time exits 0, says "already applied"
/// and changes nothing, not even the history.
#[test]
fn replayed_data_bundle_changes_nothing() {
    let w = World::enrolled();
    w.load_fixtures();
    let file = sync_down(&w, "ORG-001", &w.a, "down-1");
    let before = snapshot(&w.a, true);
    let o = courier(&w.a, &["import", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("already applied"), "{}", stdout(&o));
    assert_eq!(snapshot(&w.a, true), before);
}

/// An older data bundle after a newer one (a stick found later) is superseded: exit 0,
/// "nothing needs doing", nothing changes; with --allow-rollback (a central restored from a
/// backup) it is applied and the history says so.
#[test]
fn an_older_data_bundle_is_superseded_unless_a_rollback_is_allowed() {
    let w = World::enrolled();
    w.load_fixtures();
    let old = w.export_down("ORG-001", "down-1");
    let update = fixtures().join("data/update.jsonl");
    ok(courier(&w.central, &["load", update.to_str().unwrap()]));
    ok(courier(&w.central, &["remove", &full("elig-001-label")]));
    let new = w.export_down("ORG-001", "down-2");
    import(&w.a, &new[0]);
    assert_eq!(ids_by_type(&list(&w.a, &[])), org1_scope_after_update());

    let before = snapshot(&w.a, true);
    let out = ok(courier(
        &w.a,
        &["import", "--json", old[0].to_str().unwrap()],
    ));
    let v: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["status"], "already-applied", "{out}");
    assert!(
        v[0]["message"]
            .as_str()
            .unwrap()
            .contains("superseded by bundle 2, already applied"),
        "{out}"
    );
    assert_eq!(
        snapshot(&w.a, true),
        before,
        "a superseded bundle changes nothing"
    );

    ok(courier(
        &w.a,
        &["import", "--allow-rollback", old[0].to_str().unwrap()],
    ));
    assert_eq!(
        ids_by_type(&list(&w.a, &[])),
        org1_scope(),
        "the older bundle's scope is back"
    );
    let h = history(&w.a);
    let last = h.last().unwrap();
    assert_eq!(last["seq"], 1);
    assert!(
        last["report"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("rollback"),
        "history records the rollback: {last}"
    );
}

/// ORG-001's bundle taken to ORG-002's centre is refused, the message names ORG-001, and
/// the store is unchanged. The file is renamed first so that no org id is in its name:
/// the intended recipient can only come from the header.
#[test]
fn misdirected_bundle_refused() {
    let w = World::enrolled();
    w.load_fixtures();
    let files = w.export_down("ORG-001", "down-1");
    assert_eq!(files.len(), 1);
    let renamed = w.path("stick/from-central.courier");
    std::fs::create_dir_all(renamed.parent().unwrap()).unwrap();
    std::fs::rename(&files[0], &renamed).unwrap();
    assert!(!renamed.to_str().unwrap().contains("ORG-"), "{renamed:?}");
    let before = snapshot(&w.b, true);
    let err = refused(
        courier(&w.b, &["import", renamed.to_str().unwrap()]),
        1,
        "meant for centre ORG-001",
    );
    assert!(
        err.contains("from-central.courier"),
        "names the file: {err}"
    );
    assert!(err.contains("ORG-002"), "says which site this is: {err}");
    assert_eq!(snapshot(&w.b, true), before);
    assert!(list(&w.b, &[]).is_empty());
}

/// Each bad entity file is refused whole (exit 1) with one line naming the file, the
/// record and the reason; central's store and packages are unchanged, even when a good
/// file is loaded in the same command.
#[test]
fn bad_entity_files_are_refused_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let central = dir.path().join("central");
    ok(courier(&central, &["init", "central", "--name", "Central"]));
    let cases: [(&str, &str, &[&str]); 4] = [
        ("fail_schema.jsonl", "line 3", &["\"id\""]),
        ("fail_json.jsonl", "line 3", &["not JSON"]),
        (
            "fail_package.jsonl",
            "line 2",
            &["test.xml", "not well-formed"],
        ),
        (
            "fail_missing_package.jsonl",
            "line 2",
            &["does-not-exist.zip", "No such file"],
        ),
    ];
    for (file, record, reasons) in cases {
        let before = snapshot(&central, true);
        let packages_before = package_files(&central);
        let path = fixtures().join("data/bad").join(file);
        let err = refused(
            courier(&central, &["load", path.to_str().unwrap()]),
            1,
            file,
        );
        assert_eq!(err.trim().lines().count(), 1, "{file}: one line: {err}");
        assert!(err.contains(record), "{file}: names {record}: {err}");
        for reason in reasons {
            assert!(err.contains(reason), "{file}: says {reason}: {err}");
        }
        assert_eq!(snapshot(&central, true), before, "{file}: store unchanged");
        assert!(
            package_files(&central) == packages_before,
            "{file}: no package stored"
        );
        assert_eq!(count(&central, "entities"), 0, "{file}: nothing loaded");
    }
    // A good file and a bad one in the same load: nothing at all is loaded.
    let before = snapshot(&central, true);
    let good = fixtures().join("data/central.jsonl");
    let bad = fixtures().join("data/bad/fail_package.jsonl");
    refused(
        courier(
            &central,
            &["load", good.to_str().unwrap(), bad.to_str().unwrap()],
        ),
        1,
        "fail_package.jsonl",
    );
    assert_eq!(
        snapshot(&central, true),
        before,
        "good file not loaded either"
    );
    assert!(package_files(&central).is_empty(), "no package stored");
}

/// `package check` exits 1 on the invalid fixture packages and names the entry at fault
/// (none for an unreadable zip; NotValidableXmlItem.zip passes, as documented), 0 on every
/// valid one.
#[test]
fn package_check_cli_on_fixture_packages() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let invalid = [
        ("InvalidArchive.zip", "not a readable zip archive"),
        ("MalformedXMLTest.zip", "test.xml: is not well-formed XML"),
        (
            "MalformedXMLItemInTheMiddle.zip",
            "Q02/qti.xml: is not well-formed XML",
        ),
        (
            "MultipleMalformedXMLItem.zip",
            "Q02/qti.xml: is not well-formed XML",
        ),
        ("MissingItemDependency.zip", "test.xml: assessmentItemRef"),
        ("NotValidableXMLTest.zip", "test.xml: assessmentItemRef"),
        (
            "WrongManifestFileItemAssetHref.zip",
            "imsmanifest.xml: resource `Q01` lists file",
        ),
        (
            "WrongManifestFileItemHref.zip",
            "imsmanifest.xml: resource `Q01` points at",
        ),
        (
            "WrongManifestFileTestAssetHref.zip",
            "imsmanifest.xml: resource `T01` lists file",
        ),
        (
            "WrongManifestFileTestHref.zip",
            "imsmanifest.xml: resource `T01` points at",
        ),
    ];
    let mut seen = BTreeSet::new();
    for (name, needle) in invalid {
        let path = fixtures().join("qti/invalid").join(name);
        assert!(path.exists(), "{name}");
        let err = refused(
            courier(home, &["package", "check", path.to_str().unwrap()]),
            1,
            needle,
        );
        assert!(err.contains(name), "{name}: names the file: {err}");
        seen.insert(name.to_string());
    }
    let passes = fixtures().join("qti/invalid/NotValidableXmlItem.zip");
    ok(courier(
        home,
        &["package", "check", passes.to_str().unwrap()],
    ));
    seen.insert("NotValidableXmlItem.zip".into());
    let all: BTreeSet<String> = std::fs::read_dir(fixtures().join("qti/invalid"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".zip"))
        .collect();
    assert_eq!(seen, all, "every invalid fixture is covered");

    let valid: Vec<PathBuf> = files_under(&fixtures().join("qti/valid"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "zip"))
        .collect();
    assert_eq!(valid.len(), 14);
    for p in valid {
        let out = ok(courier(home, &["package", "check", p.to_str().unwrap()]));
        assert!(out.contains(": ok"), "{}: {out}", p.display());
    }
}

fn props(v: Value) -> Map<String, Value> {
    v.as_object().expect("object").clone()
}

fn sum(props: &Map<String, Value>, kind: &str) -> String {
    let settings = courier::site::Settings::default();
    courier::entities::checksum(props, &courier::entities::excluded_set(&settings, kind))
}

/// The checksum ignores key order and multi-value order, follows every value, and ignores
/// excluded properties.
#[test]
fn checksum_is_canonical_and_sensitive() {
    let a = props(json!({
        LABEL: "Ada Lovelace",
        ELIG_TAKER: [full("tt-001a"), full("tt-001b"), full("tt-shared")],
        "http://www.tao.lu/Ontologies/TAOProctor.rdf#ByPassProctor": "false",
        UPDATED_AT: "1764000100",
        AUTHORIZED_PROCTOR: full("tc-org-001"),
    }));
    let reordered = props(json!({
        AUTHORIZED_PROCTOR: full("tc-org-001"),
        UPDATED_AT: "1764000100",
        "http://www.tao.lu/Ontologies/TAOProctor.rdf#ByPassProctor": "false",
        ELIG_TAKER: [full("tt-shared"), full("tt-001a"), full("tt-001b")],
        LABEL: "Ada Lovelace",
    }));
    for kind in ["eligibility", "proctor"] {
        assert_eq!(
            sum(&a, kind),
            sum(&reordered, kind),
            "{kind}: order does not count"
        );
        assert_eq!(sum(&a, kind).len(), 64, "a SHA-256 in hex");
    }

    let mut changed = a.clone();
    changed.insert(LABEL.into(), json!("Ada King"));
    assert_ne!(
        sum(&a, "eligibility"),
        sum(&changed, "eligibility"),
        "a changed value"
    );

    let mut changed = a.clone();
    changed.insert(ELIG_TAKER.into(), json!([full("tt-001a"), full("tt-001b")]));
    assert_ne!(
        sum(&a, "eligibility"),
        sum(&changed, "eligibility"),
        "a removed value"
    );

    let mut changed = a.clone();
    changed.insert(
        "http://www.tao.lu/Ontologies/TAOProctor.rdf#ByPassProctor".into(),
        json!("true"),
    );
    assert_ne!(
        sum(&a, "eligibility"),
        sum(&changed, "eligibility"),
        "a changed flag"
    );

    let mut changed = a.clone();
    changed.remove(LABEL);
    assert_ne!(
        sum(&a, "eligibility"),
        sum(&changed, "eligibility"),
        "a removed property"
    );

    let mut changed = a.clone();
    changed.insert(UPDATED_AT.into(), json!("1799999999"));
    changed.insert(CREATED_AT.into(), json!("1700000000"));
    assert_eq!(
        sum(&a, "eligibility"),
        sum(&changed, "eligibility"),
        "timestamps are excluded"
    );

    // authorizedProctor is excluded for proctors only.
    let mut changed = a.clone();
    changed.insert(AUTHORIZED_PROCTOR.into(), json!(full("tc-org-002")));
    assert_eq!(
        sum(&a, "proctor"),
        sum(&changed, "proctor"),
        "excluded for a proctor"
    );
    assert_ne!(
        sum(&a, "eligibility"),
        sum(&changed, "eligibility"),
        "counted elsewhere"
    );

    // The AssembledDelivery* properties are excluded for deliveries.
    let d = props(json!({LABEL: "Basic", ORIGIN_PACKAGE: "package:sha256:00"}));
    let mut changed = d.clone();
    changed.insert(
        "http://www.tao.lu/Ontologies/TAODelivery.rdf#AssembledDeliveryCompilationTime".into(),
        json!("1764000999"),
    );
    assert_eq!(sum(&d, "delivery"), sum(&changed, "delivery"));
}

/// No two entities of the fixture set share a checksum (TAO once made them all equal), both
/// computed by the library and as stored at central after loading; the edited tt-001a
/// differs from its first version while its UpdatedAt-only change would not.
#[test]
fn fixture_checksums_are_all_distinct() {
    let records = fixture_records("central.jsonl");
    assert_eq!(records.len(), 23);
    let sums: BTreeMap<String, String> = records
        .iter()
        .map(|r| {
            (
                sum(
                    r["properties"].as_object().unwrap(),
                    r["type"].as_str().unwrap(),
                ),
                r["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(sums.len(), 23, "23 entities, 23 checksums");

    let edited = fixture_records("update.jsonl")
        .into_iter()
        .find(|r| r["id"] == full("tt-001a"))
        .unwrap();
    let original = records.iter().find(|r| r["id"] == full("tt-001a")).unwrap();
    let o = original["properties"].as_object().unwrap();
    let e = edited["properties"].as_object().unwrap();
    assert_ne!(
        sum(o, "test-taker"),
        sum(e, "test-taker"),
        "the edit is seen"
    );
    let mut only_time = o.clone();
    only_time.insert(UPDATED_AT.into(), e[UPDATED_AT].clone());
    assert_ne!(o[UPDATED_AT], e[UPDATED_AT], "the update changes UpdatedAt");
    assert_eq!(sum(o, "test-taker"), sum(&only_time, "test-taker"));

    let dir = tempfile::tempdir().unwrap();
    let central = dir.path().join("central");
    ok(courier(&central, &["init", "central", "--name", "Central"]));
    let f = fixtures().join("data/central.jsonl");
    ok(courier(&central, &["load", f.to_str().unwrap()]));
    let conn = rusqlite::Connection::open(central.join("store.sqlite")).unwrap();
    let (n, distinct): (i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), COUNT(DISTINCT checksum) FROM entities",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((n, distinct), (23, 23), "stored checksums are distinct");
}

/// `import --dry-run` verifies, decrypts and applies inside the transaction, reports what
/// would happen, and keeps nothing: not a row, not a package file. The real import then
/// applies the same bundle.
#[test]
fn dry_run_reports_and_keeps_nothing() {
    let w = World::enrolled();
    w.load_fixtures();
    let files = w.export_down("ORG-001", "down");
    let before = snapshot(&w.a, true);
    let out = ok(courier(
        &w.a,
        &["import", "--dry-run", files[0].to_str().unwrap()],
    ));
    assert!(
        out.contains("dry-run") && out.contains("would apply: 12 created"),
        "{out}"
    );
    assert_eq!(before, snapshot(&w.a, true), "a dry run changed the store");
    let packages: Vec<_> = std::fs::read_dir(w.a.join("packages")).unwrap().collect();
    assert!(packages.is_empty(), "a dry run wrote package files");
    let out = ok(courier(&w.a, &["import", files[0].to_str().unwrap()]));
    assert!(out.contains("applied: 12 created"), "{out}");
    assert_eq!(list(&w.a, &[]).len(), 12);
}

/// `history --entity ID` at a centre answers "what happened to this person": created by the
/// first bundle, updated by the one carrying the edit, and the JSON matches its schema.
#[test]
fn history_of_one_entity() {
    let w = World::enrolled();
    w.load_fixtures();
    let first = w.export_down("ORG-001", "down-1");
    ok(courier(&w.a, &["import", first[0].to_str().unwrap()]));
    let update = fixtures().join("data/update.jsonl");
    ok(courier(&w.central, &["load", update.to_str().unwrap()]));
    let second = w.export_down("ORG-001", "down-2");
    ok(courier(&w.a, &["import", second[0].to_str().unwrap()]));
    let id = "https://central.example/tao.rdf#tt-001a";
    let out = ok(courier(&w.a, &["history", "--entity", id, "--json"]));
    let v: Value = serde_json::from_str(&out).unwrap();
    courier::schema::check("entity-history", &v).unwrap();
    let actions: Vec<(&str, i64)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["action"].as_str().unwrap(), r["seq"].as_i64().unwrap()))
        .collect();
    assert_eq!(actions, vec![("created", 1), ("updated", 2)]);
    let text = ok(courier(
        &w.a,
        &[
            "history",
            "--entity",
            "https://central.example/tao.rdf#nobody",
        ],
    ));
    assert!(text.contains("no sync touched"), "{text}");
}
