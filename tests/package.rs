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
