//! XML well-formedness, checked while streaming over a document's events, with `xml:base`
//! tracked for the references the visitor collects.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::href::{resolve, Base, Target};
use super::report::PackageProblem;

/// What `walk_xml` reports to its visitor.
pub(super) enum Node<'e, 'b> {
    /// A start tag or an empty-element tag, with the base that applies to it.
    Open {
        element: &'e BytesStart<'b>,
        base: &'e Base,
    },
    /// The end of an element opened by a start tag.
    Close { local_name: &'e [u8] },
}

/// The value of an attribute, entity references replaced.
pub(super) fn attribute(
    path: &str,
    element: &BytesStart<'_>,
    name: &[u8],
) -> Result<Option<String>, PackageProblem> {
    match element.try_get_attribute(name) {
        Ok(Some(attr)) => match attr.unescape_value() {
            Ok(value) => Ok(Some(value.into_owned())),
            Err(e) => Err(PackageProblem::entry(
                path,
                format!(
                    "is not well-formed XML (attribute {}: {e})",
                    String::from_utf8_lossy(name)
                ),
            )),
        },
        Ok(None) => Ok(None),
        Err(e) => Err(PackageProblem::entry(
            path,
            format!("is not well-formed XML ({e})"),
        )),
    }
}

/// Check that `bytes` is a well-formed XML document, calling `visit` for every element; returns
/// the local name of the root element.
pub(super) fn walk_xml<F>(
    path: &str,
    bytes: &[u8],
    document_base: &Base,
    mut visit: F,
) -> Result<String, PackageProblem>
where
    F: FnMut(Node<'_, '_>) -> Result<(), PackageProblem>,
{
    let ill_formed =
        |reason: String| PackageProblem::entry(path, format!("is not well-formed XML ({reason})"));
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = Reader::from_reader(bytes);
    {
        let config = reader.config_mut();
        config.check_end_names = true;
        config.check_comments = true;
        config.allow_unmatched_ends = false;
        config.allow_dangling_amp = false;
        config.expand_empty_elements = false;
    }

    let mut open: Vec<(Vec<u8>, Base)> = Vec::new();
    let mut root: Option<String> = None;
    let mut seen_anything = false;
    let mut doctype = false;
    let mut other_encoding = false;
    loop {
        let position = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| ill_formed(format!("{e}, {}", at(bytes, reader.error_position()))))?;
        let here = || at(bytes, position);
        let first = !seen_anything;
        seen_anything = true;
        match event {
            Event::Decl(decl) => {
                if !first || position != 0 {
                    return Err(ill_formed(format!(
                        "XML declaration not at the start, {}",
                        here()
                    )));
                }
                let encoding = decl
                    .encoding()
                    .transpose()
                    .map_err(|e| ill_formed(e.to_string()))?;
                other_encoding = encoding.is_some_and(|e| {
                    !e.eq_ignore_ascii_case(b"utf-8") && !e.eq_ignore_ascii_case(b"utf8")
                });
            }
            Event::DocType(_) => {
                if doctype || root.is_some() {
                    return Err(ill_formed(format!("misplaced DOCTYPE, {}", here())));
                }
                doctype = true;
            }
            Event::Start(ref element) | Event::Empty(ref element) => {
                let name = element.name();
                let local = String::from_utf8_lossy(element.local_name().as_ref()).into_owned();
                if open.is_empty() {
                    if root.is_some() {
                        return Err(ill_formed(format!(
                            "a second root element <{local}>, {}",
                            here()
                        )));
                    }
                    root = Some(local);
                }
                for attr in element.attributes().with_checks(true) {
                    let attr =
                        attr.map_err(|e| ill_formed(format!("{e}, in the element {}", here())))?;
                    if !doctype && !other_encoding {
                        attr.unescape_value()
                            .map_err(|e| ill_formed(format!("{e}, in the element {}", here())))?;
                    }
                }
                let parent = open.last().map_or(document_base, |(_, b)| b);
                let base = match attribute(path, element, b"xml:base")? {
                    Some(value) => xml_base(path, parent, &value)?,
                    None => parent.clone(),
                };
                visit(Node::Open {
                    element,
                    base: &base,
                })?;
                if matches!(event, Event::Start(_)) {
                    open.push((name.as_ref().to_vec(), base));
                } else {
                    let local = element.local_name();
                    visit(Node::Close {
                        local_name: local.as_ref(),
                    })?;
                }
            }
            Event::End(element) => {
                if open.pop().is_none() {
                    return Err(ill_formed(format!(
                        "closing tag with nothing open, {}",
                        here()
                    )));
                }
                visit(Node::Close {
                    local_name: element.local_name().as_ref(),
                })?;
            }
            Event::Text(text) => {
                if open.is_empty() && !text.iter().all(u8::is_ascii_whitespace) {
                    return Err(ill_formed(format!(
                        "text outside the root element, {}",
                        here()
                    )));
                }
            }
            Event::CData(_) => {
                if open.is_empty() {
                    return Err(ill_formed(format!(
                        "CDATA outside the root element, {}",
                        here()
                    )));
                }
            }
            Event::GeneralRef(reference) => {
                if open.is_empty() {
                    return Err(ill_formed(format!(
                        "entity reference outside the root element, {}",
                        here()
                    )));
                }
                if reference.is_char_ref() {
                    match reference.resolve_char_ref() {
                        Ok(Some(_)) => {}
                        _ => {
                            return Err(ill_formed(format!(
                                "invalid character reference, {}",
                                here()
                            )))
                        }
                    }
                } else if !doctype
                    && !matches!(
                        reference.as_ref(),
                        b"lt" | b"gt" | b"amp" | b"apos" | b"quot"
                    )
                {
                    return Err(ill_formed(format!(
                        "undefined entity &{};, {}",
                        String::from_utf8_lossy(&reference),
                        here()
                    )));
                }
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !other_encoding {
        // Without an encoding declaration (or with UTF-8 declared) the bytes must be UTF-8.
        check_utf8(path, bytes)?;
    }
    if let Some((name, _)) = open.last() {
        return Err(ill_formed(format!(
            "the document ends before <{}> is closed",
            String::from_utf8_lossy(name)
        )));
    }
    root.ok_or_else(|| ill_formed("no root element".to_string()))
}

/// The base set by an `xml:base` attribute, treated as a folder.
fn xml_base(path: &str, parent: &Base, value: &str) -> Result<Base, PackageProblem> {
    match resolve(parent, value) {
        Target::Local(folder) if folder.is_empty() => Ok(Base::Local(folder)),
        Target::Local(folder) => Ok(Base::Local(format!("{folder}/"))),
        Target::External => Ok(Base::External),
        Target::Outside => Err(PackageProblem::entry(
            path,
            format!("xml:base `{value}` points outside the package"),
        )),
    }
}

/// "line L, column C" of a byte offset (columns count characters).
fn at(bytes: &[u8], position: u64) -> String {
    let end = usize::try_from(position)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let before = &bytes[..end];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    format!("line {line}, column {column}")
}

fn check_utf8(path: &str, bytes: &[u8]) -> Result<(), PackageProblem> {
    std::str::from_utf8(bytes).map(|_| ()).map_err(|e| {
        PackageProblem::entry(
            path,
            format!(
                "is not well-formed XML (not valid UTF-8, {})",
                at(bytes, e.valid_up_to() as u64)
            ),
        )
    })
}
