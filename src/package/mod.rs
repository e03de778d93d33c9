//! Structural check of IMS QTI test packages (IMS Content Packaging zips), deciding as TAO's
//! importer decides (extension-tao-testqti `taoQtiTest_models_classes_QtiTestService::importTest`
//! and the helpers it calls), without XSD validation:
//!
//! 1. the archive is readable and safe to unpack, within caps ([`archive`]);
//! 2. `imsmanifest.xml` sits at its root and is well-formed ([`manifest`]);
//! 3. the manifest declares at least one resource of one of TAO's test types;
//! 4. for each test: its resource's files are in the package, its document is a well-formed
//!    test, its `assessmentSectionRef`s lead to well-formed sections ([`qti`]), and every
//!    `assessmentItemRef` binds to a **declared item resource** whose file is in the package
//!    (TAO's `QtiTestUtils::buildAssessmentItemRefsTestMap`);
//! 5. each bound item: its files and those of its dependencies are in the package and its
//!    document is a well-formed item.
//!
//! Resources no test reaches are not opened, as TAO imports only what the tests refer to: a
//! missing file there is a warning in the [`PackageSummary`], not a refusal.

mod archive;
mod assets;
mod dialect;
mod href;
mod manifest;
mod qti;
mod report;
mod xml;

use std::collections::BTreeSet;
use std::io::{Read, Seek};

pub use report::{PackageProblem, PackageSummary, PackageWarning};

use archive::{Limits, Package, LIMITS};
use assets::{listed_for, ItemAssets};
use dialect::Declared;
use href::{resolved_note, Target};
use manifest::{parse_manifest, Manifest, Resource, MANIFEST, TEST_TYPES};
use qti::ItemRef;

/// Most warnings listed for one package; the last one says how many more there were.
const MAX_WARNINGS: usize = 50;

/// Check a QTI test package read from any seekable reader.
pub fn check_package<R: Read + Seek>(reader: R) -> Result<PackageSummary, PackageProblem> {
    check_with_limits(reader, LIMITS)
}

fn check_with_limits<R: Read + Seek>(
    reader: R,
    limits: Limits,
) -> Result<PackageSummary, PackageProblem> {
    let mut package = Package::open(reader, limits)?;
    let manifest_bytes = package.read(MANIFEST).unwrap_or_else(|| {
        Err(PackageProblem::archive(format!(
            "no {MANIFEST} at the root of the archive"
        )))
    })?;
    let manifest = parse_manifest(&manifest_bytes)?;
    drop(manifest_bytes);

    let tests: Vec<usize> = (0..manifest.resources.len())
        .filter(|&i| manifest.resources[i].is_test())
        .collect();
    if tests.is_empty() {
        // A resource that looks like a test but has a type TAO does not import as one.
        let near = manifest
            .resources
            .iter()
            .find(|r| r.kind.contains("test"))
            .map(|r| format!(" (resource `{}` has type `{}`)", r.identifier, r.kind))
            .unwrap_or_default();
        return Err(PackageProblem::entry(
            MANIFEST,
            format!(
                "declares no QTI test resource{near}; TAO imports tests of types {}: \"Package \
                 is valid but no tests were found\"",
                TEST_TYPES.join(", ")
            ),
        ));
    }

    let mut walk = Walk {
        package: &mut package,
        manifest: &manifest,
        reached: vec![false; manifest.resources.len()],
        items: BTreeSet::new(),
        stimuli: BTreeSet::new(),
        warnings: Vec::new(),
    };
    for &test in &tests {
        walk.test(test)?;
    }
    let (reached, items, found) = (walk.reached, walk.items.len(), walk.warnings);
    let warnings = capped(
        found
            .into_iter()
            .chain(unreached_warnings(&package, &manifest, &reached)),
    );
    Ok(PackageSummary {
        tests: tests.len(),
        items,
        files: package.files(),
        warnings,
    })
}

/// The resources reached from the tests, as TAO's importer reaches them.
struct Walk<'a, R> {
    package: &'a mut Package<R>,
    manifest: &'a Manifest,
    /// By resource index: its files were checked.
    reached: Vec<bool>,
    /// Item resources bound to an item reference (their documents were checked).
    items: BTreeSet<usize>,
    /// Shared stimulus files checked.
    stimuli: BTreeSet<String>,
    /// What TAO tolerates in the items reached (stylesheets it would not import).
    warnings: Vec<PackageWarning>,
}

impl<R: Read + Seek> Walk<'_, R> {
    /// One test: its resource's files, its document and sections, then each item reference in
    /// document order, bound and its item checked (TAO's order within `importTest`).
    fn test(&mut self, index: usize) -> Result<(), PackageProblem> {
        let resource = &self.manifest.resources[index];
        self.reach(index)?;
        let path = document(resource, "test", self.package)?;
        let refs = qti::test_item_refs(self.package, path, declared(resource))?;
        for item_ref in &refs {
            let item = self.bind(item_ref)?;
            if self.items.insert(item) {
                self.reach_with_dependencies(item)?;
                self.item(item)?;
            }
        }
        Ok(())
    }

    /// A bound item's document, then the stylesheets and shared stimuli it refers to.
    fn item(&mut self, index: usize) -> Result<(), PackageProblem> {
        let resource = &self.manifest.resources[index];
        let path = document(resource, "item", self.package)?;
        let assets = qti::item_assets(self.package, path, declared(resource))?;
        let listed = listed_for(self.manifest, index);
        let checked = ItemAssets {
            document: path,
            resource: &resource.identifier,
            listed: &listed,
        };
        checked.check(self.package, &assets, &mut self.stimuli, &mut self.warnings)
    }

    /// Every file a resource lists must be in the package.
    fn reach(&mut self, index: usize) -> Result<(), PackageProblem> {
        if !self.reached[index] {
            if let Some(problem) = missing_file(&self.manifest.resources[index], self.package) {
                return Err(PackageProblem::entry(MANIFEST, problem));
            }
            self.reached[index] = true;
        }
        Ok(())
    }

    /// An item resource and, transitively, the resources it depends on (shared stimuli,
    /// stylesheets, media). A dependency naming no resource binds nothing, as in TAO.
    fn reach_with_dependencies(&mut self, index: usize) -> Result<(), PackageProblem> {
        let mut pending = vec![index];
        while let Some(next) = pending.pop() {
            if self.reached[next] && next != index {
                continue;
            }
            self.reach(next)?;
            for dependency in &self.manifest.resources[next].dependencies {
                if let Some(found) = self.manifest.by_identifier(dependency) {
                    if !self.reached[found] {
                        pending.push(found);
                    }
                }
            }
        }
        Ok(())
    }

    /// The item resource an `assessmentItemRef` binds to: the first resource of an item type
    /// whose href is the same path as the reference's and names a file of the package.
    fn bind(&self, item_ref: &ItemRef) -> Result<usize, PackageProblem> {
        let ItemRef {
            identifier,
            href,
            document,
        } = item_ref;
        let written = &href.written;
        let unresolved = format!(
            "TAO: \"The dependency to the IMS QTI AssessmentItemRef \"{identifier}\" in the IMS \
             Manifest file could not be resolved\""
        );
        let Target::Local(path) = &href.target else {
            return Err(PackageProblem::entry(
                document,
                format!(
                    "assessmentItemRef `{written}` refers to an item outside the package; \
                     {unresolved}"
                ),
            ));
        };
        let resources = &self.manifest.resources;
        let points_at = |r: &Resource| matches!(&r.href, Some(h) if h.target == href.target);
        if let Some(found) = resources
            .iter()
            .position(|r| r.is_item() && points_at(r) && self.package.is_file(path))
        {
            return Ok(found);
        }
        // Not bound. Say why, pointing at the manifest when an item resource is meant for
        // this reference (same path, or same identifier) and its file is missing.
        let meant = resources
            .iter()
            .find(|r| r.is_item() && points_at(r))
            .or_else(|| {
                resources
                    .iter()
                    .find(|r| r.is_item() && r.identifier == *identifier)
            });
        if let Some(problem) = meant.and_then(|r| missing_file(r, self.package)) {
            return Err(PackageProblem::entry(
                MANIFEST,
                format!(
                    "{problem}, so the assessmentItemRef `{identifier}` (`{written}`) of \
                     `{document}` cannot be resolved; {unresolved}"
                ),
            ));
        }
        let why = if !self.package.is_file(path) {
            "refers to an item that is not in the package".to_string()
        } else if let Some(other) = resources.iter().find(|r| points_at(r)) {
            format!(
                "refers to a file the manifest declares as resource `{}` of type `{}`, which is \
                 not a QTI item type",
                other.identifier, other.kind
            )
        } else {
            format!("refers to a file that no item resource of {MANIFEST} declares")
        };
        Err(PackageProblem::entry(
            document,
            format!(
                "assessmentItemRef `{written}`{} {why}; {unresolved}",
                resolved_note(written, path)
            ),
        ))
    }
}

/// What a resource declares its document to be.
fn declared(resource: &Resource) -> Declared<'_> {
    Declared {
        resource: &resource.identifier,
        resource_type: &resource.kind,
    }
}

/// The first file a resource lists that is not in the package, as a sentence.
fn missing_file<R>(resource: &Resource, package: &Package<R>) -> Option<String> {
    resource
        .listed()
        .find_map(|(href, verb)| match &href.target {
            Target::Local(path) if !package.has(path) => Some(format!(
                "resource `{}` {verb} `{}`{}, which is not in the package",
                resource.identifier,
                href.written,
                resolved_note(&href.written, path)
            )),
            Target::Outside => Some(format!(
                "resource `{}` {verb} `{}`, which is outside the package",
                resource.identifier, href.written
            )),
            Target::Local(_) | Target::External => None,
        })
}

/// The package path of a test or item resource's document.
fn document<'r, R>(
    resource: &'r Resource,
    kind: &str,
    package: &Package<R>,
) -> Result<&'r str, PackageProblem> {
    let refuse = |what: &str| {
        PackageProblem::entry(
            MANIFEST,
            format!("{kind} resource `{}` {what}", resource.identifier),
        )
    };
    match resource.href.as_ref().map(|h| &h.target) {
        Some(Target::Local(path)) if package.is_file(path) => Ok(path),
        Some(Target::Local(path)) => {
            Err(refuse(&format!("points at `{path}`, which is not a file")))
        }
        Some(_) => Err(refuse("points outside the package")),
        None => Err(refuse("has no href")),
    }
}

/// A warning for each resource no test reaches whose files are not all in the package.
fn unreached_warnings<'a, R>(
    package: &'a Package<R>,
    manifest: &'a Manifest,
    reached: &'a [bool],
) -> impl Iterator<Item = PackageWarning> + 'a {
    manifest
        .resources
        .iter()
        .zip(reached)
        .filter(|(_, reached)| !**reached)
        .filter_map(|(resource, _)| missing_file(resource, package))
        .map(|problem| PackageWarning {
            entry: MANIFEST.to_string(),
            message: format!(
                "{problem}; accepted, since no test refers to it (TAO imports only what the \
                 tests refer to)"
            ),
        })
}

/// At most [`MAX_WARNINGS`] warnings, then one saying how many more there were.
fn capped(mut all: impl Iterator<Item = PackageWarning>) -> Vec<PackageWarning> {
    let mut warnings: Vec<PackageWarning> = all.by_ref().take(MAX_WARNINGS).collect();
    let more = all.count();
    if more > 0 {
        warnings.push(PackageWarning {
            entry: MANIFEST.to_string(),
            message: format!("{more} more warnings"),
        });
    }
    warnings
}

#[cfg(test)]
mod tests;
