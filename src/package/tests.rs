//! Unit tests of the package check: TAO's samples (fixtures/qti/) and synthetic packages.

use super::href::{resolve, Base};
use super::report::PackageProblem;
use super::xml::walk_xml;
use super::*;
use std::fs::File;
use std::io::Cursor;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use zip::write::SimpleFileOptions;
use zip::ZipArchive;
use zip::ZipWriter;

/// A summary without warnings.
fn counts(tests: usize, items: usize, files: usize) -> PackageSummary {
    PackageSummary {
        tests,
        items,
        files,
        warnings: vec![],
    }
}

fn samples(kind: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/qti")
        .join(kind)
}

fn check_sample(kind: &str, name: &str) -> Result<PackageSummary, PackageProblem> {
    let file = File::open(samples(kind).join(name)).expect("sample exists");
    check_package(io::BufReader::new(file))
}

fn refusal(name: &str) -> PackageProblem {
    check_sample("invalid", name).expect_err("the sample is refused")
}

fn assert_refused(name: &str, entry: Option<&str>, fragment: &str) {
    let problem = refusal(name);
    assert_eq!(problem.entry.as_deref(), entry, "{name}: {problem}");
    assert!(
        problem.reason.contains(fragment),
        "{name}: `{}` does not mention `{fragment}`",
        problem.reason
    );
}

#[test]
fn every_valid_sample_passes() {
    let mut names: Vec<_> = std::fs::read_dir(samples("valid"))
        .expect("valid samples")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 14);
    for name in names {
        let summary = check_sample("valid", &name).unwrap_or_else(|p| panic!("{name}: {p}"));
        assert!(
            summary.tests >= 1 && summary.items >= 1,
            "{name}: {summary:?}"
        );
    }
}

#[test]
fn valid_sample_summaries() {
    let summary = |name| check_sample("valid", name).expect("passes");
    assert_eq!(summary("2.1-basic-Basic.zip"), counts(1, 3, 5));
    assert_eq!(
        summary("2.1-basic-BasicMultipleTestsSameItems.zip"),
        counts(2, 3, 6)
    );
    // The test sits in path/to/test/ and refers to ../../../Q01/qti.xml and so on.
    assert_eq!(
        summary("2.1-misc-TestDefinitionInSubFolders.zip"),
        counts(1, 3, 5)
    );
    // __MACOSX and .DS_Store files are files of the package too.
    assert_eq!(
        summary("2.2-exportWithoutLongPaths-qtiItemDependency.zip"),
        counts(1, 2, 31)
    );
}

#[test]
fn every_invalid_sample_but_one_is_refused() {
    for entry in std::fs::read_dir(samples("invalid")).expect("invalid samples") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("utf-8");
        let result = check_sample("invalid", &name);
        if name == "NotValidableXmlItem.zip" {
            assert!(result.is_ok(), "{name}: {result:?}");
        } else {
            assert!(result.is_err(), "{name} passed: {result:?}");
        }
    }
}

#[test]
fn invalid_archive() {
    assert_refused("InvalidArchive.zip", None, "not a readable zip archive");
}

#[test]
fn malformed_test() {
    assert_refused(
        "MalformedXMLTest.zip",
        Some("test.xml"),
        "is not well-formed XML",
    );
}

#[test]
fn malformed_items() {
    assert_refused(
        "MalformedXMLItemInTheMiddle.zip",
        Some("Q02/qti.xml"),
        "is not well-formed XML (ill-formed document: expected `</assessmentItem>`",
    );
    assert_refused(
        "MultipleMalformedXMLItem.zip",
        Some("Q02/qti.xml"),
        "is not well-formed XML",
    );
}

/// The checker alone, on each item of the two malformed-item samples: in one only Q02 is
/// broken, in the other Q02 and Q03.
#[test]
fn malformed_items_one_by_one() {
    let broken = |sample: &str| -> Vec<String> {
        let file = File::open(samples("invalid").join(sample)).expect("sample");
        let mut archive = ZipArchive::new(file).expect("zip");
        let mut broken = Vec::new();
        for item in ["Q01/qti.xml", "Q02/qti.xml", "Q03/qti.xml"] {
            let mut bytes = Vec::new();
            archive
                .by_name(item)
                .expect("item")
                .read_to_end(&mut bytes)
                .expect("read");
            if walk_xml(item, &bytes, &Base::of_document(item), |_| Ok(())).is_err() {
                broken.push(item.to_string());
            }
        }
        broken
    };
    assert_eq!(broken("MalformedXMLItemInTheMiddle.zip"), ["Q02/qti.xml"]);
    assert_eq!(
        broken("MultipleMalformedXMLItem.zip"),
        ["Q02/qti.xml", "Q03/qti.xml"]
    );
}

#[test]
fn missing_item_dependency() {
    assert_refused(
        "MissingItemDependency.zip",
        Some("test.xml"),
        "assessmentItemRef `./Q03/qti.xml`",
    );
}

#[test]
fn not_validable_test() {
    assert_refused(
        "NotValidableXMLTest.zip",
        Some("test.xml"),
        "assessmentItemRef `./Q02/qti.xml`",
    );
}

#[test]
fn not_validable_item_passes_the_structural_check() {
    assert_eq!(
        check_sample("invalid", "NotValidableXmlItem.zip"),
        Ok(counts(1, 1, 3))
    );
}

#[test]
fn wrong_manifest_hrefs() {
    assert_refused(
        "WrongManifestFileItemAssetHref.zip",
        Some(MANIFEST),
        "`Q01/images/wrong/path/to/sign.png`, which is not in the package",
    );
    assert_refused(
        "WrongManifestFileItemHref.zip",
        Some(MANIFEST),
        "resource `Q01` points at `Q01/qti.xml`, which is not in the package",
    );
    assert_refused(
        "WrongManifestFileTestAssetHref.zip",
        Some(MANIFEST),
        "resource `T01` lists file `path/to/nowhere.png`",
    );
    assert_refused(
        "WrongManifestFileTestHref.zip",
        Some(MANIFEST),
        "resource `T01` points at `wrong/path/to/test.xml`",
    );
}

// ---- synthetic packages ----

const MANIFEST_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<manifest xmlns="http://www.imsglobal.org/xsd/imscp_v1p1" identifier="M">
  <resources>
<resource identifier="I1" type="imsqti_item_xmlv2p1" href="items/q%201.xml">
  <file href="items/q%201.xml"/>
</resource>
<resource identifier="T1" type="imsqti_test_xmlv2p2" href="./tests/t/test.xml">
  <file href="tests/t/test.xml"/>
</resource>
  </resources>
</manifest>"#;

const TEST_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<qti:assessmentTest xmlns:qti="http://www.imsglobal.org/xsd/imsqti_v2p2" identifier="T" title="T">
  <qti:testPart identifier="P" navigationMode="linear" submissionMode="individual">
<qti:assessmentSection identifier="S" title="S" visible="true">
  <qti:assessmentItemRef identifier="I1" href="../../items/q%201.xml"/>
</qti:assessmentSection>
  </qti:testPart>
</qti:assessmentTest>"#;

const ITEM_XML: &str = r#"<assessmentItem xmlns="http://www.imsglobal.org/xsd/imsqti_v2p1" identifier="I1" title="a &amp; b &#233;" adaptive="false" timeDependent="false"><itemBody/></assessmentItem>"#;

fn good_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("imsmanifest.xml", MANIFEST_XML),
        ("tests/t/test.xml", TEST_XML),
        ("items/q 1.xml", ITEM_XML),
    ]
}

fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in files {
        writer
            .start_file(*name, SimpleFileOptions::default())
            .expect("start file");
        writer.write_all(content.as_bytes()).expect("write");
    }
    writer.finish().expect("finish").into_inner()
}

fn check_bytes(bytes: Vec<u8>) -> Result<PackageSummary, PackageProblem> {
    check_package(Cursor::new(bytes))
}

fn with<'a>(name: &'a str, content: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut files = good_files();
    files.retain(|(n, _)| *n != name);
    files.push((name, content));
    files
}

#[test]
fn synthetic_package_passes() {
    assert_eq!(check_bytes(zip_of(&good_files())), Ok(counts(1, 1, 3)));
}

#[test]
fn parent_dir_entry_is_refused() {
    let mut files = good_files();
    files.push(("../evil.xml", "<x/>"));
    let problem = check_bytes(zip_of(&files)).expect_err("refused");
    assert_eq!(problem.entry.as_deref(), Some("../evil.xml"));
    assert!(problem.reason.contains(".."), "{problem}");

    let mut files = good_files();
    files.push(("items\\..\\..\\evil.xml", "<x/>"));
    let problem = check_bytes(zip_of(&files)).expect_err("refused");
    assert_eq!(problem.entry.as_deref(), Some("items\\..\\..\\evil.xml"));
}

#[test]
fn absolute_entries_are_refused() {
    for name in ["/etc/evil.xml", "\\evil.xml", "C:/evil.xml", "c:\\evil.xml"] {
        let mut files = good_files();
        files.push((name, "<x/>"));
        let problem = check_bytes(zip_of(&files)).expect_err("refused");
        assert_eq!(problem.entry.as_deref(), Some(name));
        assert!(problem.reason.contains("absolute path"), "{problem}");
    }
}

#[test]
fn symlink_entry_is_refused() {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in good_files() {
        writer
            .start_file(name, SimpleFileOptions::default())
            .expect("start");
        writer.write_all(content.as_bytes()).expect("write");
    }
    writer
        .add_symlink(
            "items/link.xml",
            "/etc/passwd",
            SimpleFileOptions::default(),
        )
        .expect("symlink");
    let bytes = writer.finish().expect("finish").into_inner();
    let problem = check_bytes(bytes).expect_err("refused");
    assert_eq!(problem.entry.as_deref(), Some("items/link.xml"));
    assert!(problem.reason.contains("symbolic link"), "{problem}");
}

#[test]
fn nul_in_entry_name_is_refused() {
    let mut files = good_files();
    files.push(("items/a\0b.xml", "<x/>"));
    let problem = check_bytes(zip_of(&files)).expect_err("refused");
    assert_eq!(problem.entry.as_deref(), Some("items/a\\0b.xml"));
    assert!(problem.reason.contains("NUL"), "{problem}");
}

#[test]
fn missing_manifest_is_refused() {
    let mut files = good_files();
    files.retain(|(n, _)| *n != MANIFEST);
    files.push(("sub/imsmanifest.xml", MANIFEST_XML));
    let problem = check_bytes(zip_of(&files)).expect_err("refused");
    assert_eq!(problem.entry, None);
    assert!(problem.reason.contains("no imsmanifest.xml"), "{problem}");
}

#[test]
fn manifest_without_test_is_refused() {
    let manifest = r#"<manifest><resources>
        <resource identifier="I1" type="imsqti_item_xmlv2p1" href="items/q%201.xml"/>
        <resource identifier="W" type="webcontent" href="http://example.org/x.css"/>
      </resources></manifest>"#;
    let problem = check_bytes(zip_of(&with(MANIFEST, manifest))).expect_err("refused");
    assert_eq!(problem.entry.as_deref(), Some(MANIFEST));
    assert!(problem.reason.contains("no QTI test resource"), "{problem}");
}

#[test]
fn malformed_manifests_are_refused() {
    let cases = [
        "<manifest><resources></manifest>",
        "<manifest><resources>",
        "<manifest/><manifest/>",
        "<manifest></resources>",
        "<manifest>",
        "",
        "text <manifest/>",
        "<manifest a='1' a='2'/>",
        "<manifest a=1/>",
        "<manifest>&nbsp;</manifest>",
        "<manifest><!-- a -- b --></manifest>",
        "<manifest/> trailing",
        "\n<?xml version=\"1.0\"?><manifest/>",
    ];
    for manifest in cases {
        let problem = check_bytes(zip_of(&with(MANIFEST, manifest)))
            .expect_err(&format!("{manifest:?} refused"));
        assert_eq!(problem.entry.as_deref(), Some(MANIFEST), "{manifest:?}");
        assert!(
            problem.reason.starts_with("is not well-formed XML"),
            "{manifest:?}: {problem}"
        );
    }
}

#[test]
fn non_utf8_document_is_refused() {
    let mut files: Vec<(&str, Vec<u8>)> = good_files()
        .into_iter()
        .map(|(n, c)| (n, c.as_bytes().to_vec()))
        .collect();
    files[2].1 = b"<assessmentItem title=\"caf\xE9\"/>".to_vec();
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in &files {
        writer
            .start_file(*name, SimpleFileOptions::default())
            .expect("start");
        writer.write_all(content).expect("write");
    }
    let problem = check_bytes(writer.finish().expect("finish").into_inner()).expect_err("refused");
    assert_eq!(problem.entry.as_deref(), Some("items/q 1.xml"));
    assert!(problem.reason.contains("UTF-8"), "{problem}");
}

#[test]
fn wrong_root_elements_are_refused() {
    let problem =
        check_bytes(zip_of(&with("items/q 1.xml", "<assessmentTest/>"))).expect_err("refused");
    assert_eq!(problem.entry.as_deref(), Some("items/q 1.xml"));
    assert!(problem.reason.contains("not <assessmentItem>"), "{problem}");

    let problem = check_bytes(zip_of(&with(
        "tests/t/test.xml",
        "<x:assessmentItem xmlns:x='u'/>",
    )))
    .expect_err("refused");
    assert_eq!(problem.entry.as_deref(), Some("tests/t/test.xml"));
    assert!(problem.reason.contains("not <assessmentTest>"), "{problem}");
}

#[test]
fn missing_item_ref_names_test_and_href() {
    let test = r#"<assessmentTest><testPart><assessmentSection>
        <assessmentItemRef identifier="I1" href="../../items/q%201.xml"/>
        <assessmentItemRef identifier="I2" href="../../items/q2.xml"/>
      </assessmentSection></testPart></assessmentTest>"#;
    let problem = check_bytes(zip_of(&with("tests/t/test.xml", test))).expect_err("refused");
    assert_eq!(problem.entry.as_deref(), Some("tests/t/test.xml"));
    assert!(
        problem
            .reason
            .contains("`../../items/q2.xml` (resolved to `items/q2.xml`)"),
        "{problem}"
    );

    let test = r#"<assessmentTest><assessmentItemRef identifier="I1" href="../../../q.xml"/></assessmentTest>"#;
    let problem = check_bytes(zip_of(&with("tests/t/test.xml", test))).expect_err("refused");
    assert!(problem.reason.contains("outside the package"), "{problem}");
}

#[test]
fn xml_base_is_honoured() {
    let manifest = r#"<manifest><resources xml:base="tests/">
        <resource identifier="T1" type="imsqti_test_xmlv2p1" href="t/test.xml" xml:base="./">
          <file href="t/test.xml"/>
        </resource>
        <resource identifier="I1" type="imsqti_item_xmlv2p1" href="q%201.xml" xml:base="../items">
          <file href="q 1.xml"/>
        </resource>
      </resources></manifest>"#;
    assert!(check_bytes(zip_of(&with(MANIFEST, manifest))).is_ok());

    let manifest = manifest.replace("../items", "items");
    let problem = check_bytes(zip_of(&with(MANIFEST, &manifest))).expect_err("refused");
    assert!(
        problem
            .reason
            .contains("(resolved to `tests/items/q 1.xml`)"),
        "{problem}"
    );
}

#[test]
fn test_resource_pointing_at_a_folder_is_refused() {
    let manifest = MANIFEST_XML.replace(r#"href="./tests/t/test.xml""#, r#"href="tests/t/""#);
    let problem = check_bytes(zip_of(&with(MANIFEST, &manifest))).expect_err("refused");
    assert_eq!(problem.entry.as_deref(), Some(MANIFEST));
    assert!(problem.reason.contains("which is not a file"), "{problem}");
}

#[test]
fn backslash_entry_names_are_found() {
    let mut files = good_files();
    files.retain(|(n, _)| *n != "items/q 1.xml");
    files.push(("items\\q 1.xml", ITEM_XML));
    assert!(check_bytes(zip_of(&files)).is_ok());
}

/// Patch the uncompressed size recorded for every entry (local headers and central
/// directory) of a small zip without data descriptors.
fn patch_declared_sizes(bytes: &mut [u8], name: &str, size: u32) {
    let name = name.as_bytes();
    let mut i = 0;
    while i + 46 <= bytes.len() {
        let (size_at, name_len_at, name_at) = match &bytes[i..i + 4] {
            // Local file header, then central directory header.
            [0x50, 0x4b, 0x03, 0x04] => (22, 26, 30),
            [0x50, 0x4b, 0x01, 0x02] => (24, 28, 46),
            _ => {
                i += 1;
                continue;
            }
        };
        let name_len = usize::from(u16::from_le_bytes([
            bytes[i + name_len_at],
            bytes[i + name_len_at + 1],
        ]));
        if bytes.get(i + name_at..i + name_at + name_len) == Some(name) {
            bytes[i + size_at..i + size_at + 4].copy_from_slice(&size.to_le_bytes());
        }
        i += 4;
    }
}

#[test]
fn bomb_like_declared_size_is_refused() {
    let mut bytes = zip_of(&good_files());
    patch_declared_sizes(&mut bytes, "items/q 1.xml", 0xFFFF_FFF0);
    let problem = check_bytes(bytes).expect_err("refused");
    assert_eq!(problem.entry.as_deref(), Some("items/q 1.xml"));
    assert!(problem.reason.contains("uncompressed"), "{problem}");
}

#[test]
fn declared_total_is_capped() {
    let limits = Limits {
        entry_bytes: 1000,
        total_bytes: 600,
        entries: 10,
    };
    let problem =
        check_with_limits(Cursor::new(zip_of(&good_files())), limits).expect_err("refused");
    assert_eq!(problem.entry, None);
    assert!(problem.reason.contains("in total"), "{problem}");
}

#[test]
fn entry_count_is_capped() {
    let limits = Limits {
        entries: 2,
        ..LIMITS
    };
    let problem =
        check_with_limits(Cursor::new(zip_of(&good_files())), limits).expect_err("refused");
    assert_eq!(problem.entry, None);
    assert!(problem.reason.contains("3 entries"), "{problem}");
}

/// An entry that declares a small size but inflates to much more is stopped while reading.
#[test]
fn lying_declared_size_is_caught_while_reading() {
    let zeros = "0".repeat(100_000);
    let mut files = good_files();
    files.push(("items/blob.bin", zeros.as_str()));
    let mut bytes = zip_of(&files);
    patch_declared_sizes(&mut bytes, "items/blob.bin", 10);
    let limits = Limits {
        entry_bytes: 5_000,
        total_bytes: 20_000,
        entries: 10,
    };
    let problem = check_with_limits(Cursor::new(bytes), limits).expect_err("refused");
    assert_eq!(
        problem.entry.as_deref(),
        Some("items/blob.bin"),
        "{problem}"
    );
}

/// The byte ranges of a zip archive that hold its entries' (compressed) file data.
fn data_ranges(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut archive = ZipArchive::new(Cursor::new(bytes)).expect("zip");
    (0..archive.len())
        .filter_map(|i| {
            let e = archive.by_index_raw(i).expect("entry");
            let start = usize::try_from(e.data_start()).expect("offset");
            let len = usize::try_from(e.compressed_size()).expect("size");
            (len > 0).then_some(start..start + len)
        })
        .collect()
}

/// Damaged copies of a valid sample, and what is decided about each (never a panic): every
/// truncated copy is refused as an unreadable archive; a byte flipped inside an entry's file
/// data is refused (checksum or decompression); a byte flipped anywhere else is refused
/// with a reason, or accepted only as the same package (same tests, items and files).
#[test]
fn damaged_archives_are_refused_or_read_as_the_same_package() {
    let original = std::fs::read(samples("valid").join("2.1-basic-Basic.zip")).expect("sample");
    let summary = check_bytes(original.clone()).expect("the sample passes");
    let data = data_ranges(&original);
    assert!(!data.is_empty());
    let (mut truncated, mut in_data, mut elsewhere_refused, mut elsewhere_same) = (0, 0, 0, 0);
    for position in (0..original.len()).step_by(5) {
        let problem = check_bytes(original[..position].to_vec()).expect_err("truncated");
        assert!(
            problem.reason.contains("not a readable zip archive"),
            "cut at {position}: {problem}"
        );
        truncated += 1;
        let mut flipped = original.clone();
        flipped[position] ^= 0x5A;
        let decision = check_bytes(flipped);
        if data.iter().any(|r| r.contains(&position)) {
            let problem = decision.expect_err("a flip in file data is refused");
            assert!(!problem.reason.is_empty(), "byte {position}: a reason");
            in_data += 1;
        } else {
            match decision {
                Err(problem) => {
                    assert!(!problem.reason.is_empty(), "byte {position}: a reason");
                    elsewhere_refused += 1;
                }
                Ok(s) => {
                    assert_eq!(s, summary, "byte {position}: accepted as another package");
                    elsewhere_same += 1;
                }
            }
        }
    }
    assert_eq!(truncated, original.len().div_ceil(5));
    assert!(in_data > 10, "flips in file data: {in_data}");
    assert!(
        elsewhere_refused > 0 && elsewhere_same > 0,
        "flips elsewhere: {elsewhere_refused} refused, {elsewhere_same} accepted"
    );
}

#[test]
fn resolution() {
    let root = Base::Local(String::new());
    let sub = Base::of_document("a/b/test.xml");
    assert_eq!(
        resolve(&root, "Q01/qti.xml"),
        Target::Local("Q01/qti.xml".into())
    );
    assert_eq!(resolve(&sub, "./c.xml"), Target::Local("a/b/c.xml".into()));
    assert_eq!(
        resolve(&sub, "../../c%20d.xml#x"),
        Target::Local("c d.xml".into())
    );
    assert_eq!(resolve(&sub, "../../../c.xml"), Target::Outside);
    assert_eq!(resolve(&sub, "/c.xml"), Target::Outside);
    assert_eq!(resolve(&sub, "C:\\c.xml"), Target::Outside);
    assert_eq!(resolve(&sub, "https://x.org/c.xml"), Target::External);
    assert_eq!(
        resolve(&sub, "100%.xml"),
        Target::Local("a/b/100%.xml".into())
    );
}

#[test]
fn display() {
    let problem = PackageProblem::entry("test.xml", "is broken");
    assert_eq!(problem.to_string(), "test.xml: is broken");
    assert_eq!(PackageProblem::archive("bad").to_string(), "bad");
}

// ---- references as TAO's importer follows them ----

/// A package whose test (at the root) holds `body` and whose manifest declares `resources`
/// besides the test; `extra` files are added as they are.
fn package_with(body: &str, resources: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let manifest = format!(
        r#"<manifest><resources>
            <resource identifier="T" type="imsqti_test_xmlv2p1" href="test.xml"/>
            {resources}
          </resources></manifest>"#
    );
    let test = format!("<assessmentTest><testPart>{body}</testPart></assessmentTest>");
    let mut files: Vec<(&str, &str)> = vec![(MANIFEST, &manifest), ("test.xml", &test)];
    files.extend_from_slice(extra);
    zip_of(&files)
}

const ITEM_RESOURCE: &str =
    r#"<resource identifier="I1" type="imsqti_item_xmlv2p1" href="items/q%201.xml"/>"#;

fn section(refs: &str) -> String {
    format!("<assessmentSection identifier='S'>{refs}</assessmentSection>")
}

#[test]
fn section_refs_deeper_than_the_limit_are_refused() {
    // s1 → s2 → … → s17, each in its own file; the last refers to the item.
    let depth = qti::MAX_SECTION_DEPTH + 1;
    let bodies: Vec<(String, String)> = (1..=depth)
        .map(|n| {
            let inner = if n == depth {
                "<assessmentItemRef identifier='I1' href='items/q 1.xml'/>".to_string()
            } else {
                format!(
                    "<assessmentSectionRef identifier='S{}' href='s{}.xml'/>",
                    n + 1,
                    n + 1
                )
            };
            (format!("s{n}.xml"), section(&inner))
        })
        .collect();
    let mut extra: Vec<(&str, &str)> = vec![("items/q 1.xml", ITEM_XML)];
    extra.extend(bodies.iter().map(|(n, b)| (n.as_str(), b.as_str())));
    let body = "<assessmentSectionRef identifier='S1' href='s1.xml'/>";
    let problem = check_bytes(package_with(body, ITEM_RESOURCE, &extra)).expect_err("refused");
    assert_eq!(problem.entry.as_deref(), Some("s16.xml"), "{problem}");
    assert!(
        problem.reason.contains("nest more than 16 deep"),
        "{problem}"
    );

    // One level less passes.
    extra.retain(|(n, _)| *n != "s17.xml");
    let last = section("<assessmentItemRef identifier='I1' href='items/q 1.xml'/>");
    extra.retain(|(n, _)| *n != "s16.xml");
    extra.push(("s16.xml", &last));
    let summary = check_bytes(package_with(body, ITEM_RESOURCE, &extra)).expect("passes");
    assert_eq!((summary.tests, summary.items), (1, 1));
}

#[test]
fn a_section_included_twice_is_no_cycle() {
    let body = "<assessmentSectionRef identifier='A' href='s.xml'/>\
                <assessmentSectionRef identifier='B' href='./s.xml'/>";
    let s = section("<assessmentItemRef identifier='I1' href='items/q%201.xml'/>");
    let extra = [("items/q 1.xml", ITEM_XML), ("s.xml", s.as_str())];
    let summary = check_bytes(package_with(body, ITEM_RESOURCE, &extra)).expect("passes");
    assert_eq!(summary.items, 1);
}

#[test]
fn qti3_section_refs_are_followed() {
    let ns = "xmlns='http://www.imsglobal.org/xsd/imsqtiasi_v3p0'";
    let manifest = r#"<manifest><resources>
        <resource identifier="T" type="imsqti_test_xmlv3p0" href="test.xml"/>
        </resources></manifest>"#;
    let test = format!(
        "<qti-assessment-test {ns}><qti-test-part>\
         <qti-assessment-section-ref identifier='A' href='sections/s.xml'/>\
         </qti-test-part></qti-assessment-test>"
    );
    let section = format!(
        "<qti-assessment-section {ns} identifier='S'>\
         <qti-assessment-item-ref identifier='I9' href='../items/missing.xml'/>\
         </qti-assessment-section>"
    );
    let files = [
        (MANIFEST, manifest),
        ("test.xml", test.as_str()),
        ("sections/s.xml", section.as_str()),
    ];
    let problem = check_bytes(zip_of(&files)).expect_err("refused");
    assert_eq!(problem.entry.as_deref(), Some("sections/s.xml"));
    assert!(problem.reason.contains("\"I9\""), "{problem}");
}

/// A section of a QTI 2.x test written in QTI 3.0 is refused: sections are read as their
/// test's QTI generation.
#[test]
fn a_qti3_section_in_a_qti2_test_is_refused() {
    let body = "<assessmentSectionRef identifier='A' href='sections/s.xml'/>";
    let s = "<qti-assessment-section xmlns='http://www.imsglobal.org/xsd/imsqtiasi_v3p0' \
             identifier='S'/>";
    let extra = [("items/q 1.xml", ITEM_XML), ("sections/s.xml", s)];
    let problem = check_bytes(package_with(body, ITEM_RESOURCE, &extra)).expect_err("refused");
    assert_eq!(problem.entry.as_deref(), Some("sections/s.xml"));
    assert!(
        problem
            .reason
            .contains("`imsqti_test_xmlv2p1`, which TAO reads as QTI 2.x"),
        "{problem}"
    );
}

/// TAO drops a leading `/` from an item reference and resolves the rest against the test's
/// folder.
#[test]
fn a_leading_slash_in_an_item_ref_is_dropped() {
    let body = "<assessmentItemRef identifier='I1' href='/items/q%201.xml'/>";
    let extra = [("items/q 1.xml", ITEM_XML)];
    assert!(check_bytes(package_with(body, ITEM_RESOURCE, &extra)).is_ok());
}

#[test]
fn dependencies_of_a_referenced_item_must_be_present() {
    let body = "<assessmentItemRef identifier='I1' href='items/q%201.xml'/>";
    let resources = r#"<resource identifier="I1" type="imsqti_item_xmlv2p1" href="items/q%201.xml">
          <dependency identifierref="STIM"/><dependency identifierref="NOWHERE"/>
        </resource>
        <resource identifier="STIM" type="webcontent" href="shared/stimulus.xml">
          <file href="shared/style.css"/>
        </resource>"#;
    let stimulus = "<assessmentStimulus/>";
    let extra = [
        ("items/q 1.xml", ITEM_XML),
        ("shared/stimulus.xml", stimulus),
    ];
    let problem = check_bytes(package_with(body, resources, &extra)).expect_err("refused");
    assert_eq!(problem.entry.as_deref(), Some(MANIFEST));
    assert!(
        problem
            .reason
            .contains("resource `STIM` lists file `shared/style.css`"),
        "{problem}"
    );

    // With the file there it passes; a dependency naming no resource binds nothing, as in TAO.
    let mut extra = extra.to_vec();
    extra.push(("shared/style.css", "p {}"));
    assert!(check_bytes(package_with(body, resources, &extra)).is_ok());
}

/// Items no test refers to are never opened, as in TAO: a broken one is no refusal.
#[test]
fn unreferenced_items_are_not_opened() {
    let body = "<assessmentItemRef identifier='I1' href='items/q%201.xml'/>";
    let resources = format!(
        r#"{ITEM_RESOURCE}
        <resource identifier="I2" type="imsqti_item_xmlv2p1" href="items/broken.xml"/>"#
    );
    let extra = [
        ("items/q 1.xml", ITEM_XML),
        ("items/broken.xml", "<assessmentItem>"),
    ];
    let summary = check_bytes(package_with(body, &resources, &extra)).expect("passes");
    assert_eq!((summary.items, summary.warnings.len()), (1, 0));
}

#[test]
fn warnings_are_capped() {
    let body = "<assessmentItemRef identifier='I1' href='items/q%201.xml'/>";
    let resources: String = (0..60)
        .map(|n| format!(r#"<resource identifier="X{n}" type="webcontent" href="x{n}.png"/>"#))
        .chain([ITEM_RESOURCE.to_string()])
        .collect();
    let extra = [("items/q 1.xml", ITEM_XML)];
    let summary = check_bytes(package_with(body, &resources, &extra)).expect("passes");
    assert_eq!(summary.warnings.len(), MAX_WARNINGS + 1);
    assert!(summary.warnings[MAX_WARNINGS]
        .message
        .starts_with("10 more"));
}
