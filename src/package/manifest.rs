//! `imsmanifest.xml`: its resources, their types, files and dependencies.
//!
//! Resource types are TAO's (extension-tao-itemqti `model/qti/Resource.php`, with the QTI 3.0
//! types its `ManifestConverter` maps onto QTI 2.2): only these make a resource a test or an item.

use super::href::{Base, Href};
use super::report::PackageProblem;
use super::xml::{attribute, walk_xml, Node};

/// Name of the manifest, which must sit at the root of the archive.
pub(super) const MANIFEST: &str = "imsmanifest.xml";

/// Resource types TAO imports as QTI tests.
pub(super) const TEST_TYPES: &[&str] = &[
    "imsqti_test_xmlv2p1",
    "imsqti_test_xmlv2p2",
    "imsqti_test_xmlv3p0",
    "imsqti_assessment_xmlv2p1",
    "imsqti_apiptestroot_xmlv2p1",
];

/// Resource types an `assessmentItemRef` may bind to.
pub(super) const ITEM_TYPES: &[&str] = &[
    "imsqti_item_xmlv2p0",
    "imsqti_item_xmlv2p1",
    "imsqti_item_xmlv2p2",
    "imsqti_item_xmlv3p0",
    "imsqti_apipitemroot_xmlv2p1",
    "imsqti_apipitem_xmlv2p1",
    "imsqti_apipitem_xmlv2p2",
];

/// One `<resource>` of the manifest.
#[derive(Debug)]
pub(super) struct Resource {
    pub identifier: String,
    pub kind: String,
    pub href: Option<Href>,
    pub files: Vec<Href>,
    /// `identifierref` of each `<dependency>`, in order.
    pub dependencies: Vec<String>,
}

impl Resource {
    pub fn is_test(&self) -> bool {
        TEST_TYPES.contains(&self.kind.as_str())
    }

    pub fn is_item(&self) -> bool {
        ITEM_TYPES.contains(&self.kind.as_str())
    }

    /// The resource's `href` and each `<file>`, with the verb that introduces it in messages.
    pub fn listed(&self) -> impl Iterator<Item = (&Href, &'static str)> {
        self.href
            .iter()
            .map(|h| (h, "points at"))
            .chain(self.files.iter().map(|h| (h, "lists file")))
    }
}

/// What the manifest declares.
pub(super) struct Manifest {
    pub resources: Vec<Resource>,
}

impl Manifest {
    /// The first resource with this identifier.
    pub fn by_identifier(&self, identifier: &str) -> Option<usize> {
        self.resources
            .iter()
            .position(|r| r.identifier == identifier)
    }
}

pub(super) fn parse_manifest(bytes: &[u8]) -> Result<Manifest, PackageProblem> {
    let mut resources: Vec<Resource> = Vec::new();
    // Depth of open <resource> elements: <file> and <dependency> count only inside one.
    let mut open_resources = 0usize;
    let root = walk_xml(MANIFEST, bytes, &Base::Local(String::new()), |node| {
        match node {
            Node::Open { element, base } => match element.local_name().as_ref() {
                b"resource" => {
                    let identifier =
                        attribute(MANIFEST, element, b"identifier")?.unwrap_or_default();
                    let kind = attribute(MANIFEST, element, b"type")?.unwrap_or_default();
                    let href = attribute(MANIFEST, element, b"href")?
                        .filter(|h| !h.trim().is_empty())
                        .map(|h| Href::resolve(base, h));
                    resources.push(Resource {
                        identifier,
                        kind,
                        href,
                        files: Vec::new(),
                        dependencies: Vec::new(),
                    });
                    // An empty <resource/> is followed by its Close at once.
                    open_resources += 1;
                }
                b"file" if open_resources > 0 => {
                    let resource = resources.last_mut().expect("a resource is open");
                    match attribute(MANIFEST, element, b"href")?.filter(|h| !h.trim().is_empty()) {
                        Some(href) => resource.files.push(Href::resolve(base, href)),
                        None => {
                            return Err(PackageProblem::entry(
                                MANIFEST,
                                format!(
                                    "resource `{}` has a <file> without href",
                                    resource.identifier
                                ),
                            ))
                        }
                    }
                }
                b"dependency" if open_resources > 0 => {
                    let resource = resources.last_mut().expect("a resource is open");
                    if let Some(id) = attribute(MANIFEST, element, b"identifierref")? {
                        resource.dependencies.push(id.trim().to_string());
                    }
                }
                _ => {}
            },
            Node::Close { local_name } => {
                if local_name == b"resource" {
                    open_resources = open_resources.saturating_sub(1);
                }
            }
        }
        Ok(())
    })?;
    if root != "manifest" {
        return Err(PackageProblem::entry(
            MANIFEST,
            format!("root element is <{root}>, not <manifest>"),
        ));
    }
    Ok(Manifest { resources })
}
