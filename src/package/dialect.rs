//! Which QTI a document is written in, against what its manifest resource declares.
//!
//! qti-sdk decides a document's QTI version by the namespace of its root element alone
//! (`qtism\data\storage\xml\versions\QtiVersion::infer` / `findVersionInDocument`):
//! `…/imsqti_v2p0`, `…/imsqti_v2p1`, `…/imsqti_v2p2`, and `…/imsqtiasi_v3p0` for QTI 3.0, whose
//! elements are the `qti-*` names. TAO reads a resource typed `…_xmlv3p0` as QTI 3 (converted to
//! 2.2 by extension-tao-itemqti's converters) and any other QTI type as QTI 2.x, so a QTI 3
//! resource holding 2.x markup, or a 2.x resource holding QTI 3 markup, is refused here naming
//! the file, its declared type and what the document says.

use quick_xml::events::BytesStart;

use super::report::PackageProblem;
use super::xml::attribute;

/// The QTI 3.0 namespace (qti-sdk `QtiVersion300::XMLNS`).
pub(super) const QTI3_NAMESPACE: &str = "http://www.imsglobal.org/xsd/imsqtiasi_v3p0";

/// QTI 2.x namespaces, by version (qti-sdk `QtiVersion200/210/220::XMLNS`).
const QTI2_NAMESPACES: &[(&str, &str)] = &[
    ("http://www.imsglobal.org/xsd/imsqti_v2p0", "QTI 2.0"),
    ("http://www.imsglobal.org/xsd/imsqti_v2p1", "QTI 2.1"),
    ("http://www.imsglobal.org/xsd/imsqti_v2p2", "QTI 2.2"),
];

/// The manifest resource a document belongs to (a section: its test's resource).
#[derive(Debug, Clone, Copy)]
pub(super) struct Declared<'a> {
    pub resource: &'a str,
    pub resource_type: &'a str,
}

impl Declared<'_> {
    fn is_qti3(&self) -> bool {
        self.resource_type.ends_with("_xmlv3p0")
    }
}

/// The namespace the root element's name is in: `xmlns` (or `xmlns:prefix` for a prefixed
/// name) declared on the root itself.
pub(super) fn root_namespace(
    path: &str,
    root: &BytesStart<'_>,
) -> Result<Option<String>, PackageProblem> {
    let name = root.name();
    let declaration = match name.prefix() {
        Some(prefix) => [b"xmlns:".as_slice(), prefix.as_ref()].concat(),
        None => b"xmlns".to_vec(),
    };
    attribute(path, root, &declaration)
}

/// What a namespace says, in words.
fn describe(namespace: Option<&str>) -> String {
    match namespace {
        None => "no namespace".to_string(),
        Some(QTI3_NAMESPACE) => format!("namespace `{QTI3_NAMESPACE}` (QTI 3.0)"),
        Some(ns) => match QTI2_NAMESPACES.iter().find(|(known, _)| *known == ns) {
            Some((_, version)) => format!("namespace `{ns}` ({version})"),
            None => format!("namespace `{ns}`"),
        },
    }
}

/// Refuse a document whose root element or namespace is of the other QTI generation than its
/// resource type. A QTI 2.x resource in an unknown namespace (APIP, none) is left to the XSD
/// validation this check does not do.
pub(super) fn check(
    path: &str,
    root: &str,
    namespace: Option<&str>,
    declared: Declared<'_>,
) -> Result<(), PackageProblem> {
    let qti3_root = root.starts_with("qti-");
    let qti3_namespace = namespace == Some(QTI3_NAMESPACE);
    let agrees = if declared.is_qti3() {
        qti3_root && qti3_namespace
    } else {
        !qti3_root && !qti3_namespace
    };
    if agrees {
        return Ok(());
    }
    let expected = if declared.is_qti3() {
        format!("QTI 3.0 (root `qti-…` in namespace `{QTI3_NAMESPACE}`)")
    } else {
        "QTI 2.x (root without `qti-`, namespace `http://www.imsglobal.org/xsd/imsqti_v2p…`)"
            .to_string()
    };
    Err(PackageProblem::entry(
        path,
        format!(
            "is declared by resource `{}` as `{}`, which TAO reads as {expected}, but its root \
             <{root}> is in {}; fix the resource type or the document",
            declared.resource,
            declared.resource_type,
            describe(namespace)
        ),
    ))
}
