//! The QTI package check against real packages from TAO's QTI test extension
//! (fixtures/qti/, see fixtures/qti/README.md).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use courier::package::{check_package, PackageProblem};

fn fixtures(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/qti")
        .join(kind)
}

/// The zip files of a fixture folder, sorted by name.
fn zips(kind: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures(kind))
        .expect("fixture folder")
        .map(|entry| entry.expect("folder entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "zip"))
        .collect();
    paths.sort();
    paths
}

fn check(path: &Path) -> Result<courier::package::PackageSummary, PackageProblem> {
    check_package(BufReader::new(File::open(path).expect("fixture opens")))
}

fn refusal(name: &str) -> PackageProblem {
    check(&fixtures("invalid").join(name)).expect_err("an invalid fixture is refused")
}

fn assert_refusal(name: &str, entry: Option<&str>, fragment: &str) {
    let problem = refusal(name);
    assert_eq!(problem.entry.as_deref(), entry, "{name}: {problem}");
    assert!(
        problem.reason.contains(fragment),
        "{name}: `{}` does not mention `{fragment}`",
        problem.reason
    );
}

#[test]
fn valid_packages_pass() {
    let paths = zips("valid");
    assert_eq!(paths.len(), 14, "all valid fixtures are present");
    for path in paths {
        let summary = check(&path).unwrap_or_else(|p| panic!("{}: {p}", path.display()));
        assert!(summary.tests >= 1, "{}: {summary:?}", path.display());
        assert!(summary.items >= 1, "{}: {summary:?}", path.display());
        assert!(summary.files >= 2, "{}: {summary:?}", path.display());
    }
}

#[test]
fn invalid_packages_are_refused_except_the_schema_invalid_item() {
    let paths = zips("invalid");
    assert_eq!(paths.len(), 11, "all invalid fixtures are present");
    for path in paths {
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        let result = check(&path);
        if name == "NotValidableXmlItem.zip" {
            // Well-formed and complete: only validation against the QTI schema would refuse it.
            assert!(result.is_ok(), "{name}: {result:?}");
        } else {
            let problem = result.expect_err(name);
            assert!(!problem.reason.is_empty(), "{name}");
        }
    }
}

#[test]
fn test_in_a_sub_folder_resolves_its_items() {
    let summary =
        check(&fixtures("valid").join("2.1-misc-TestDefinitionInSubFolders.zip")).expect("passes");
    assert_eq!((summary.tests, summary.items, summary.files), (1, 3, 5));
}

#[test]
fn refusals_name_the_file_at_fault() {
    assert_refusal("InvalidArchive.zip", None, "not a readable zip archive");
    assert_refusal(
        "MalformedXMLTest.zip",
        Some("test.xml"),
        "is not well-formed XML",
    );
    assert_refusal(
        "MalformedXMLItemInTheMiddle.zip",
        Some("Q02/qti.xml"),
        "is not well-formed XML",
    );
    assert_refusal(
        "MultipleMalformedXMLItem.zip",
        Some("Q02/qti.xml"),
        "is not well-formed XML",
    );
    assert_refusal(
        "MissingItemDependency.zip",
        Some("test.xml"),
        "assessmentItemRef `./Q03/qti.xml`",
    );
    assert_refusal(
        "NotValidableXMLTest.zip",
        Some("test.xml"),
        "assessmentItemRef `./Q02/qti.xml`",
    );
    assert_refusal(
        "WrongManifestFileItemAssetHref.zip",
        Some("imsmanifest.xml"),
        "`Q01/images/wrong/path/to/sign.png`, which is not in the package",
    );
    assert_refusal(
        "WrongManifestFileItemHref.zip",
        Some("imsmanifest.xml"),
        "`Q01/qti.xml`, which is not in the package",
    );
    assert_refusal(
        "WrongManifestFileTestAssetHref.zip",
        Some("imsmanifest.xml"),
        "`path/to/nowhere.png`, which is not in the package",
    );
    assert_refusal(
        "WrongManifestFileTestHref.zip",
        Some("imsmanifest.xml"),
        "`wrong/path/to/test.xml`, which is not in the package",
    );
}

#[test]
fn refusals_display_entry_then_reason() {
    let problem = refusal("MissingItemDependency.zip");
    assert!(
        problem
            .to_string()
            .starts_with("test.xml: assessmentItemRef"),
        "{problem}"
    );
    let problem = refusal("InvalidArchive.zip");
    assert!(
        problem
            .to_string()
            .starts_with("not a readable zip archive"),
        "{problem}"
    );
}

// ---- TAO's import rules (fixtures/tao/qti/, see its README.md) ------------------------------

fn tao(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/tao/qti")
        .join(name)
}

/// Packages TAO's importer accepts: (name, tests, items the tests refer to, warnings).
const TAO_ACCEPTS: &[(&str, usize, usize, usize)] = &[
    ("ok_apip.zip", 1, 2, 0),
    ("ok_assessment_type_v2p1.zip", 1, 1, 0),
    ("ok_extra_declared_item_missing.zip", 1, 2, 1),
    ("ok_itemref_relative_to_test_folder.zip", 1, 1, 0),
    ("ok_qti22.zip", 1, 1, 0),
    ("ok_qti30.zip", 1, 2, 0),
    ("ok_section_ref.zip", 1, 2, 0),
    ("ok_section_ref_nested.zip", 1, 2, 0),
    ("ok_item_stylesheet.zip", 1, 1, 0),
    ("ok_item_stylesheet_missing.zip", 1, 1, 1),
    ("ok_item_stylesheet_not_listed.zip", 1, 1, 1),
    ("ok_shared_stimulus.zip", 1, 1, 0),
    ("ok_shared_stimulus_item_file.zip", 1, 1, 0),
];

/// Packages TAO's importer refuses: (name, file at fault, what the reason says).
const TAO_REFUSES: &[(&str, &str, &str)] = &[
    (
        "fail_itemref_declared_as_webcontent.zip",
        "test.xml",
        "declares as resource `W02` of type `webcontent`, which is not a QTI item type",
    ),
    (
        "fail_itemref_declared_file_missing.zip",
        "imsmanifest.xml",
        "resource `Q02` points at `Q02/qti.xml`, which is not in the package, so the \
         assessmentItemRef `I2`",
    ),
    (
        "fail_itemref_file_not_declared.zip",
        "test.xml",
        "assessmentItemRef `Q02/qti.xml` refers to a file that no item resource",
    ),
    (
        "fail_no_test_resource.zip",
        "imsmanifest.xml",
        "no tests were found",
    ),
    (
        "fail_qti30_itemref_not_declared.zip",
        "test.xml",
        "AssessmentItemRef \"I2\" in the IMS Manifest file could not be resolved",
    ),
    (
        "fail_section_ref_cycle.zip",
        "sections/S02.xml",
        "cycle of section references (sections/S01.xml → sections/S02.xml → sections/S01.xml)",
    ),
    (
        "fail_section_ref_item_not_declared.zip",
        "sections/S01.xml",
        "assessmentItemRef `../items/Q02.xml` (resolved to `items/Q02.xml`) refers to a file \
         that no item resource",
    ),
    (
        "fail_section_ref_malformed.zip",
        "sections/S01.xml",
        "is not well-formed XML",
    ),
    (
        "fail_section_ref_missing.zip",
        "test.xml",
        "assessmentSectionRef `sections/S01.xml` refers to a section that is not in the package",
    ),
    (
        "fail_section_ref_not_a_section.zip",
        "items/Q01.xml",
        "root element is <assessmentItem>, not <assessmentSection>",
    ),
    (
        "fail_qti21_item_written_in_qti30.zip",
        "Q01/qti.xml",
        "is declared by resource `Q01` as `imsqti_item_xmlv2p1`, which TAO reads as QTI 2.x",
    ),
    (
        "fail_qti30_item_in_qti22_namespace.zip",
        "items/Q01.xml",
        "as `imsqti_item_xmlv3p0`, which TAO reads as QTI 3.0 (root `qti-…` in namespace \
         `http://www.imsglobal.org/xsd/imsqtiasi_v3p0`), but its root <qti-assessment-item> is \
         in namespace `http://www.imsglobal.org/xsd/imsqti_v2p2` (QTI 2.2)",
    ),
    (
        "fail_qti30_test_written_in_qti21.zip",
        "test.xml",
        "is declared by resource `T01` as `imsqti_test_xmlv3p0`, which TAO reads as QTI 3.0",
    ),
    (
        "fail_shared_stimulus_interaction.zip",
        "stimuli/S01.xml",
        "is a shared stimulus but contains <textEntryInteraction>; TAO: \"The shared stimulus \
         contains interactions QTI components.\" (it is included by `Q01/qti.xml`)",
    ),
    (
        "fail_shared_stimulus_malformed.zip",
        "stimuli/S01.xml",
        "is not well-formed XML",
    ),
    (
        "fail_shared_stimulus_missing.zip",
        "Q01/qti.xml",
        "shared stimulus (xi:include) `../stimuli/S01.xml` (resolved to `stimuli/S01.xml`) is \
         not in the package; TAO keeps the reference and publishing the delivery fails",
    ),
    (
        "fail_shared_stimulus_not_listed.zip",
        "Q01/qti.xml",
        "is listed neither by resource `Q01` nor by a resource it depends on, so TAO does not \
         import it",
    ),
    (
        "fail_unknown_test_type.zip",
        "imsmanifest.xml",
        "resource `T01` has type `imsqti_test_xmlv2p3`",
    ),
];

#[test]
fn every_tao_rule_fixture_is_covered() {
    let mut names: Vec<String> = std::fs::read_dir(tao(""))
        .expect("fixture folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".zip"))
        .collect();
    names.sort();
    let mut covered: Vec<String> = TAO_ACCEPTS
        .iter()
        .map(|c| c.0.to_string())
        .chain(TAO_REFUSES.iter().map(|c| c.0.to_string()))
        .collect();
    covered.sort();
    assert_eq!(names, covered);
}

#[test]
fn packages_tao_accepts_pass() {
    for &(name, tests, items, warnings) in TAO_ACCEPTS {
        let summary = check(&tao(name)).unwrap_or_else(|p| panic!("{name}: {p}"));
        assert_eq!(
            (summary.tests, summary.items, summary.warnings.len()),
            (tests, items, warnings),
            "{name}: {summary:?}"
        );
    }
}

#[test]
fn packages_tao_refuses_are_refused_naming_the_file_at_fault() {
    for &(name, entry, fragment) in TAO_REFUSES {
        let problem = check(&tao(name)).expect_err(name);
        assert_eq!(problem.entry.as_deref(), Some(entry), "{name}: {problem}");
        assert!(
            problem.reason.contains(fragment),
            "{name}: `{}` does not mention `{fragment}`",
            problem.reason
        );
    }
}

/// TAO imports only the items a test refers to: a declared item whose file is missing, and
/// which no test refers to, is accepted with a warning naming it.
#[test]
fn an_unreferenced_item_with_a_missing_file_is_a_warning() {
    let summary = check(&tao("ok_extra_declared_item_missing.zip")).expect("passes");
    let warning = &summary.warnings[0];
    assert_eq!(warning.entry, "imsmanifest.xml");
    assert!(
        warning
            .message
            .contains("resource `Q99` points at `Q99/qti.xml`, which is not in the package"),
        "{warning}"
    );
    assert!(
        warning.message.contains("no test refers to it"),
        "{warning}"
    );
}

/// The item-ref refusal quotes TAO's own message, with the reference's identifier.
#[test]
fn an_unresolved_item_ref_quotes_tao() {
    let problem = check(&tao("fail_itemref_file_not_declared.zip")).expect_err("refused");
    assert!(
        problem.reason.contains(
            "TAO: \"The dependency to the IMS QTI AssessmentItemRef \"I2\" in the IMS Manifest \
             file could not be resolved\""
        ),
        "{problem}"
    );
}

#[test]
fn package_check_prints_warnings_and_counts() {
    let home = tempfile::tempdir().expect("tempdir");
    let path = tao("ok_extra_declared_item_missing.zip");
    let out = crate::common::courier(
        home.path(),
        &["package", "check", path.to_str().expect("utf-8")],
    );
    assert_eq!(out.status.code(), Some(0));
    let stdout = crate::common::stdout(&out);
    assert!(
        stdout.contains("ok (1 test(s), 2 item(s), 1 warning)"),
        "{stdout}"
    );
    let stderr = crate::common::stderr(&out);
    assert!(
        stderr.contains("warning: imsmanifest.xml: resource `Q99`"),
        "{stderr}"
    );
}

/// A stylesheet an item names is never resolved by TAO's importer: missing, or in the zip but
/// listed by no resource, the item is imported without it. courier says so as a warning naming
/// the item file and the stylesheet.
#[test]
fn an_item_stylesheet_tao_would_not_import_is_a_warning() {
    for (name, why) in [
        (
            "ok_item_stylesheet_missing.zip",
            "stylesheet `style/item.css` (resolved to `Q01/style/item.css`) is not in the package",
        ),
        (
            "ok_item_stylesheet_not_listed.zip",
            "(resolved to `Q01/style/item.css`) is in the package but listed neither by resource \
             `Q01`",
        ),
    ] {
        let summary = check(&tao(name)).unwrap_or_else(|p| panic!("{name}: {p}"));
        let warning = &summary.warnings[0];
        assert_eq!(warning.entry, "Q01/qti.xml", "{name}");
        assert!(warning.message.contains(why), "{name}: {warning}");
        assert!(
            warning.message.contains("TAO imports the item without it"),
            "{name}: {warning}"
        );
    }
}

/// `courier package check` refuses a package whose shared stimulus is missing: exit code 1
/// (bad input), one line naming the package, the item file and the include.
#[test]
fn package_check_refuses_a_missing_shared_stimulus() {
    let home = tempfile::tempdir().expect("tempdir");
    let path = tao("fail_shared_stimulus_missing.zip");
    let out = crate::common::courier(
        home.path(),
        &["package", "check", path.to_str().expect("utf-8")],
    );
    assert_ne!(out.status.code(), Some(0));
    let stderr = crate::common::stderr(&out);
    assert!(
        stderr.contains("fail_shared_stimulus_missing.zip")
            && stderr.contains("Q01/qti.xml: shared stimulus (xi:include) `../stimuli/S01.xml`"),
        "{stderr}"
    );
}

/// A QTI 3.0 resource written in QTI 2.1: the refusal names the file, the resource, its
/// declared type and the namespace the document is in.
#[test]
fn a_resource_type_and_namespace_that_disagree_are_named() {
    let problem = check(&tao("fail_qti30_test_written_in_qti21.zip")).expect_err("refused");
    assert_eq!(problem.entry.as_deref(), Some("test.xml"));
    for part in [
        "resource `T01`",
        "`imsqti_test_xmlv3p0`",
        "<assessmentTest>",
        "namespace `http://www.imsglobal.org/xsd/imsqti_v2p1` (QTI 2.1)",
    ] {
        assert!(problem.reason.contains(part), "{part}: {problem}");
    }
}
