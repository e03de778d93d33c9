//! QTI documents: tests, sections and items, each well-formed with the right root element
//! (QTI 2.x or 3.0 names), and the references of a test once its `assessmentSectionRef`s are
//! followed.
//!
//! Section references follow qti-sdk (`XmlDocument::includeAssessmentSectionRefs`): a section
//! file replaces its reference and the references inside it keep pointing where they pointed
//! from that file's folder; a leading `/` is dropped, as qti-sdk's `Url::ltrim` does. qti-sdk has
//! no depth limit and never ends on a cycle; here both are refused.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::rc::Rc;

use super::archive::Package;
use super::href::{resolve, resolved_note, Base, Href, Target};
use super::report::PackageProblem;
use quick_xml::events::BytesStart;

use super::dialect::{self, root_namespace, Declared};
use super::xml::{attribute, walk_xml, Node};

/// Deepest nesting of section references followed (a test's own references are level 1).
pub(super) const MAX_SECTION_DEPTH: usize = 16;
/// Most references (item and section) one test may expand to.
const MAX_REFERENCES: usize = 100_000;

/// The kinds of QTI document, by what their root element must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Test,
    Section,
    Item,
}

impl Kind {
    /// Root element names: QTI 2.x first, then QTI 3.0.
    fn roots(self) -> [&'static str; 2] {
        match self {
            Kind::Test => ["assessmentTest", "qti-assessment-test"],
            Kind::Section => ["assessmentSection", "qti-assessment-section"],
            Kind::Item => ["assessmentItem", "qti-assessment-item"],
        }
    }
}

/// A reference written in a test or section file.
#[derive(Debug, Clone)]
enum Reference {
    Item { identifier: String, href: Href },
    Section { href: Href },
}

/// An `assessmentItemRef` of a test, found in the test or in a section it includes.
#[derive(Debug, Clone)]
pub(super) struct ItemRef {
    pub identifier: String,
    pub href: Href,
    /// The file it is written in (the test, or a section file).
    pub document: String,
}

/// Read the document at `path` (known to be a file) and check it is well-formed, with a root
/// element of `kind` in the QTI generation its resource declares; `visit` sees every element.
fn walk_document<R: Read + Seek, F>(
    package: &mut Package<R>,
    path: &str,
    kind: Kind,
    declared: Declared<'_>,
    mut visit: F,
) -> Result<(), PackageProblem>
where
    F: FnMut(&BytesStart<'_>, &Base) -> Result<(), PackageProblem>,
{
    let bytes = package
        .read(path)
        .unwrap_or_else(|| Err(PackageProblem::entry(path, "is not a file of the package")))?;
    let mut namespace: Option<Option<String>> = None;
    let root = walk_xml(path, &bytes, &Base::of_document(path), |node| {
        let Node::Open { element, base } = node else {
            return Ok(());
        };
        if namespace.is_none() {
            namespace = Some(root_namespace(path, element)?);
        }
        visit(element, base)
    })?;
    check_root(path, &root, kind)?;
    dialect::check(path, &root, namespace.flatten().as_deref(), declared)
}

/// Check a test or section document and return its item and section references in document
/// order.
fn read_document<R: Read + Seek>(
    package: &mut Package<R>,
    path: &str,
    kind: Kind,
    declared: Declared<'_>,
) -> Result<Vec<Reference>, PackageProblem> {
    let mut references = Vec::new();
    walk_document(package, path, kind, declared, |element, base| {
        let (is_item, what) = match element.local_name().as_ref() {
            b"assessmentItemRef" | b"qti-assessment-item-ref" => (true, "assessmentItemRef"),
            b"assessmentSectionRef" | b"qti-assessment-section-ref" => {
                (false, "assessmentSectionRef")
            }
            _ => return Ok(()),
        };
        let Some(written) = attribute(path, element, b"href")? else {
            return Err(PackageProblem::entry(
                path,
                format!("has an {what} without href"),
            ));
        };
        let href = reference(base, written);
        references.push(if is_item {
            let identifier = attribute(path, element, b"identifier")?.unwrap_or_default();
            Reference::Item { identifier, href }
        } else {
            Reference::Section { href }
        });
        Ok(())
    })?;
    Ok(references)
}

/// A reference resolved as TAO resolves it: leading slashes dropped, then relative to `base`.
fn reference(base: &Base, written: String) -> Href {
    let target = resolve(base, written.trim().trim_start_matches(['/', '\\']));
    Href { written, target }
}

/// What an item's markup draws on from the package besides the manifest's lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AssetKind {
    /// `<stylesheet href>` (QTI 3: `<qti-stylesheet href>`).
    Stylesheet,
    /// `<xi:include href>`: a shared stimulus.
    SharedStimulus,
}

/// A stylesheet or shared stimulus an item refers to.
#[derive(Debug, Clone)]
pub(super) struct Asset {
    pub kind: AssetKind,
    pub href: Href,
}

/// Check an item document (well-formed, an item root) and return the stylesheets and shared
/// stimuli it refers to, in document order, resolved against the item's folder and `xml:base`.
pub(super) fn item_assets<R: Read + Seek>(
    package: &mut Package<R>,
    path: &str,
    declared: Declared<'_>,
) -> Result<Vec<Asset>, PackageProblem> {
    let mut assets = Vec::new();
    walk_document(package, path, Kind::Item, declared, |element, base| {
        let kind = match element.local_name().as_ref() {
            b"stylesheet" | b"qti-stylesheet" => AssetKind::Stylesheet,
            b"include" => AssetKind::SharedStimulus,
            _ => return Ok(()),
        };
        if let Some(written) = attribute(path, element, b"href")?.filter(|h| !h.trim().is_empty()) {
            assets.push(Asset {
                kind,
                href: Href::resolve(base, written),
            });
        }
        Ok(())
    })?;
    Ok(assets)
}

/// The root element of a document of `kind` must be one of its names.
fn check_root(path: &str, root: &str, kind: Kind) -> Result<(), PackageProblem> {
    let roots = kind.roots();
    if roots.contains(&root) {
        return Ok(());
    }
    Err(PackageProblem::entry(
        path,
        format!(
            "root element is <{root}>, not <{}> (or <{}>)",
            roots[0], roots[1]
        ),
    ))
}

/// Check a test document and the section files it includes; return every item reference of the
/// test, in document order, once section references are followed.
pub(super) fn test_item_refs<R: Read + Seek>(
    package: &mut Package<R>,
    test: &str,
    declared: Declared<'_>,
) -> Result<Vec<ItemRef>, PackageProblem> {
    let references = read_document(package, test, Kind::Test, declared)?;
    let mut expansion = Expansion {
        package,
        declared,
        chain: vec![test.to_string()],
        sections: HashMap::new(),
        found: Vec::new(),
        budget: MAX_REFERENCES,
    };
    expansion.follow(test, &references)?;
    Ok(expansion.found)
}

/// Section references followed depth first, each section file read and checked once.
struct Expansion<'p, 'd, R> {
    package: &'p mut Package<R>,
    /// The test's resource: its sections are read as the same QTI generation.
    declared: Declared<'d>,
    /// The test, then the section files being expanded, outermost first.
    chain: Vec<String>,
    /// Section files already read, with their references.
    sections: HashMap<String, Rc<[Reference]>>,
    found: Vec<ItemRef>,
    budget: usize,
}

impl<R: Read + Seek> Expansion<'_, '_, R> {
    fn follow(&mut self, document: &str, references: &[Reference]) -> Result<(), PackageProblem> {
        for reference in references {
            self.budget = self.budget.checked_sub(1).ok_or_else(|| {
                PackageProblem::entry(
                    &self.chain[0],
                    format!(
                        "has more than {MAX_REFERENCES} item and section references once its \
                         assessmentSectionRefs are followed"
                    ),
                )
            })?;
            match reference {
                Reference::Item { identifier, href } => self.found.push(ItemRef {
                    identifier: identifier.clone(),
                    href: href.clone(),
                    document: document.to_string(),
                }),
                Reference::Section { href } => self.include(document, href)?,
            }
        }
        Ok(())
    }

    fn include(&mut self, document: &str, href: &Href) -> Result<(), PackageProblem> {
        let written = &href.written;
        let path = match &href.target {
            Target::Local(path) => path,
            Target::Outside | Target::External => {
                return Err(PackageProblem::entry(
                    document,
                    format!(
                        "assessmentSectionRef `{written}` refers to a section outside the package"
                    ),
                ))
            }
        };
        if let Some(at) = self.chain.iter().position(|p| p == path) {
            let cycle: Vec<&str> = self.chain[at..].iter().map(String::as_str).collect();
            return Err(PackageProblem::entry(
                document,
                format!(
                    "assessmentSectionRef `{written}`{} closes a cycle of section references \
                     ({} → {path}); TAO's importer would include them forever",
                    resolved_note(written, path),
                    cycle.join(" → ")
                ),
            ));
        }
        if self.chain.len() > MAX_SECTION_DEPTH {
            return Err(PackageProblem::entry(
                document,
                format!(
                    "assessmentSectionRef `{written}`{}: section references nest more than \
                     {MAX_SECTION_DEPTH} deep",
                    resolved_note(written, path)
                ),
            ));
        }
        let references = match self.sections.get(path) {
            Some(references) => Rc::clone(references),
            None => {
                if !self.package.is_file(path) {
                    return Err(PackageProblem::entry(
                        document,
                        format!(
                            "assessmentSectionRef `{written}`{} refers to a section that is not \
                             in the package",
                            resolved_note(written, path)
                        ),
                    ));
                }
                let references: Rc<[Reference]> =
                    read_document(self.package, path, Kind::Section, self.declared)
                        .map_err(|mut problem| {
                            problem.reason.push_str(&format!(
                                " (it is the target of an assessmentSectionRef of `{document}`)"
                            ));
                            problem
                        })?
                        .into();
                self.sections.insert(path.clone(), Rc::clone(&references));
                references
            }
        };
        self.chain.push(path.clone());
        self.follow(path, &references)?;
        self.chain.pop();
        Ok(())
    }
}
