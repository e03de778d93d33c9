//! An item's stylesheets and shared stimuli, decided as TAO decides them.
//!
//! TAO's item import (extension-tao-itemqti `ImportService::importQtiItem` with its
//! `AssetManager`) copies only the files the manifest lists for the item (its `<file>`s and
//! those of the resources it depends on); it never resolves a `<stylesheet href>` of the item
//! against the package. A stylesheet that is missing or not listed is therefore imported as a
//! dangling reference: a warning here. A listed file that an `<xi:include>` of the item names is
//! handed to `SharedStimulusAssetHandler`, which loads it as a QTI document and refuses it when it
//! holds interactions, feedback or templates (taoMediaManager
//! `SharedStimulusImporter::isValidSharedStimulus`); an include that names no listed file is kept
//! as written, and publishing the delivery then fails (`QtiItemAssetCompiler` →
//! `XIncludeLoader::load`: "The file referenced by href does not exist"). Both are refusals here.

use std::collections::BTreeSet;
use std::io::{Read, Seek};

use super::archive::Package;
use super::href::{resolved_note, Target};
use super::manifest::Manifest;
use super::qti::{Asset, AssetKind};
use super::report::{PackageProblem, PackageWarning};
use super::xml::{walk_xml, Node};

/// The package paths the manifest lists for an item resource: its own `href` and `<file>`s,
/// then those of every resource it depends on, transitively.
pub(super) fn listed_for(manifest: &Manifest, item: usize) -> BTreeSet<String> {
    let mut listed = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut pending = vec![item];
    while let Some(next) = pending.pop() {
        if !seen.insert(next) {
            continue;
        }
        let resource = &manifest.resources[next];
        for (href, _) in resource.listed() {
            if let Target::Local(path) = &href.target {
                listed.insert(path.clone());
            }
        }
        pending.extend(
            resource
                .dependencies
                .iter()
                .filter_map(|d| manifest.by_identifier(d)),
        );
    }
    listed
}

/// What is checked of one item's assets.
pub(super) struct ItemAssets<'a> {
    /// The item's document inside the package.
    pub document: &'a str,
    /// The item resource's identifier.
    pub resource: &'a str,
    /// What [`listed_for`] gives for it.
    pub listed: &'a BTreeSet<String>,
}

impl ItemAssets<'_> {
    /// Warn about stylesheets TAO would not import; refuse shared stimuli TAO would not
    /// import or publish. `stimuli` holds the stimulus files already checked.
    pub fn check<R: Read + Seek>(
        &self,
        package: &mut Package<R>,
        assets: &[Asset],
        stimuli: &mut BTreeSet<String>,
        warnings: &mut Vec<PackageWarning>,
    ) -> Result<(), PackageProblem> {
        for asset in assets {
            match asset.kind {
                AssetKind::Stylesheet => warnings.extend(self.stylesheet(package, asset)),
                AssetKind::SharedStimulus => {
                    let path = self.stimulus_path(package, asset)?;
                    if let Some(path) = path {
                        if stimuli.insert(path.to_string()) {
                            check_stimulus(package, path, self.document)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Why TAO would drop a stylesheet, if it would.
    fn stylesheet<R>(&self, package: &Package<R>, asset: &Asset) -> Option<PackageWarning> {
        let written = &asset.href.written;
        let why = match &asset.href.target {
            Target::External => return None,
            Target::Outside => "points outside the package".to_string(),
            Target::Local(path) if !package.is_file(path) => {
                format!("{}is not in the package", resolved_prefix(written, path))
            }
            Target::Local(path) if !self.listed.contains(path) => format!(
                "{}is in the package but listed neither by resource `{}` nor by a resource it \
                 depends on",
                resolved_prefix(written, path),
                self.resource
            ),
            Target::Local(_) => return None,
        };
        Some(PackageWarning {
            entry: self.document.to_string(),
            message: format!(
                "stylesheet `{written}` {why}; accepted, as TAO imports the item without it (its \
                 importer copies only the files the manifest lists)"
            ),
        })
    }

    /// The package path of a shared stimulus TAO imports, or the refusal; `None` for an
    /// include of an absolute URL (not a file of the package).
    fn stimulus_path<'s, R>(
        &self,
        package: &Package<R>,
        asset: &'s Asset,
    ) -> Result<Option<&'s str>, PackageProblem> {
        let written = &asset.href.written;
        let why = match &asset.href.target {
            Target::External => return Ok(None),
            Target::Local(path) if package.is_file(path) && self.listed.contains(path) => {
                return Ok(Some(path))
            }
            Target::Outside => "points outside the package".to_string(),
            Target::Local(path) if !package.is_file(path) => {
                format!("{}is not in the package", resolved_prefix(written, path))
            }
            Target::Local(path) => format!(
                "{}is listed neither by resource `{}` nor by a resource it depends on, so TAO \
                 does not import it",
                resolved_prefix(written, path),
                self.resource
            ),
        };
        Err(PackageProblem::entry(
            self.document,
            format!(
                "shared stimulus (xi:include) `{written}` {why}; TAO keeps the reference and \
                 publishing the delivery fails: \"The file referenced by href does not exist : \
                 {written}\""
            ),
        ))
    }
}

/// "(resolved to `…`) " when the path reads differently from what was written.
fn resolved_prefix(written: &str, path: &str) -> String {
    let note = resolved_note(written, path);
    if note.is_empty() {
        String::new()
    } else {
        format!("{} ", note.trim_start())
    }
}

/// A shared stimulus is a well-formed XML document without interactions, feedback or
/// templates (taoMediaManager `SharedStimulusImporter::isValidSharedStimulus`).
fn check_stimulus<R: Read + Seek>(
    package: &mut Package<R>,
    path: &str,
    item: &str,
) -> Result<(), PackageProblem> {
    let bytes = package
        .read(path)
        .unwrap_or_else(|| Err(PackageProblem::entry(path, "is not a file of the package")))?;
    let outcome = walk_xml(
        path,
        &bytes,
        &super::href::Base::of_document(path),
        |node| {
            let Node::Open { element, .. } = node else {
                return Ok(());
            };
            let local = String::from_utf8_lossy(element.local_name().as_ref()).into_owned();
            match forbidden_in_stimulus(&local) {
                Some(what) => Err(PackageProblem::entry(
                    path,
                    format!(
                        "is a shared stimulus but contains <{local}>; TAO: \"The shared stimulus \
                     contains {what} QTI components.\""
                    ),
                )),
                None => Ok(()),
            }
        },
    );
    outcome.map(|_| ()).map_err(|mut problem| {
        problem
            .reason
            .push_str(&format!(" (it is included by `{item}`)"));
        problem
    })
}

/// The kind of QTI component a shared stimulus may not hold, by element name (QTI 2.x and 3).
fn forbidden_in_stimulus(local: &str) -> Option<&'static str> {
    let name = local
        .strip_prefix("qti-")
        .unwrap_or(local)
        .to_ascii_lowercase();
    let name = name.replace('-', "");
    if name.ends_with("interaction") {
        Some("interactions")
    } else if matches!(
        name.as_str(),
        "feedbackblock" | "feedbackinline" | "modalfeedback"
    ) {
        Some("feedback")
    } else if matches!(name.as_str(), "templateblock" | "templateinline") {
        Some("template")
    } else {
        None
    }
}
