//! XML well-formedness, checked while streaming over a document's events, with `xml:base`
//! tracked for the references the visitor collects.

use quick_xml::events::{BytesDecl, BytesEnd, BytesRef, BytesStart, Event};
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
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = strict_reader(bytes);
    let mut walk = Walk {
        path,
        bytes,
        document_base,
        open: Vec::new(),
        root: None,
        seen_anything: false,
        doctype: false,
        other_encoding: false,
    };
    loop {
        let position = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| walk.ill_formed(format!("{e}, {}", at(bytes, reader.error_position()))))?;
        let first = !walk.seen_anything;
        walk.seen_anything = true;
        match event {
            Event::Decl(decl) => walk.declaration(&decl, first, position)?,
            Event::DocType(_) => walk.doctype(position)?,
            Event::Start(ref element) => walk.open_element(element, true, position, &mut visit)?,
            Event::Empty(ref element) => walk.open_element(element, false, position, &mut visit)?,
            Event::End(element) => walk.close_element(&element, position, &mut visit)?,
            Event::Text(text) => {
                if !text.iter().all(u8::is_ascii_whitespace) {
                    walk.inside_root("text", position)?;
                }
            }
            Event::CData(_) => walk.inside_root("CDATA", position)?,
            Event::GeneralRef(reference) => walk.reference(&reference, position)?,
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    walk.finish()
}

/// A reader that checks what XML requires and quick-xml does not check by default: matching
/// end names, well-formed comments, no stray ends or bare ampersands; empty elements stay
/// visible as such.
fn strict_reader(bytes: &[u8]) -> Reader<&[u8]> {
    let mut reader = Reader::from_reader(bytes);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;
    config.allow_unmatched_ends = false;
    config.allow_dangling_amp = false;
    config.expand_empty_elements = false;
    reader
}

/// Where a walk over one document stands: the elements open (name and the base inside each),
/// the root element once seen, and what the prolog declared.
struct Walk<'a> {
    path: &'a str,
    bytes: &'a [u8],
    document_base: &'a Base,
    open: Vec<(Vec<u8>, Base)>,
    root: Option<String>,
    seen_anything: bool,
    doctype: bool,
    /// The declaration names an encoding other than UTF-8 (the bytes are then not checked
    /// as UTF-8, nor attribute values unescaped).
    other_encoding: bool,
}

impl Walk<'_> {
    /// The problem "not well-formed XML" for this document, with `reason`.
    fn ill_formed(&self, reason: String) -> PackageProblem {
        PackageProblem::entry(self.path, format!("is not well-formed XML ({reason})"))
    }

    /// The problem `what` at the byte offset `position`.
    fn ill_formed_at(&self, what: &str, position: u64) -> PackageProblem {
        self.ill_formed(format!("{what}, {}", at(self.bytes, position)))
    }

    /// The XML declaration: only as the very first thing; note a non-UTF-8 encoding.
    fn declaration(
        &mut self,
        decl: &BytesDecl<'_>,
        first: bool,
        position: u64,
    ) -> Result<(), PackageProblem> {
        if !first || position != 0 {
            return Err(self.ill_formed_at("XML declaration not at the start", position));
        }
        let encoding = decl
            .encoding()
            .transpose()
            .map_err(|e| self.ill_formed(e.to_string()))?;
        self.other_encoding = encoding
            .is_some_and(|e| !e.eq_ignore_ascii_case(b"utf-8") && !e.eq_ignore_ascii_case(b"utf8"));
        Ok(())
    }

    /// A DOCTYPE: at most one, before the root element.
    fn doctype(&mut self, position: u64) -> Result<(), PackageProblem> {
        if self.doctype || self.root.is_some() {
            return Err(self.ill_formed_at("misplaced DOCTYPE", position));
        }
        self.doctype = true;
        Ok(())
    }

    /// A start tag (`has_content`) or an empty-element tag: one root only, well-formed
    /// attributes, the element's base from `xml:base`; the visitor sees it opened (and, when
    /// empty, closed at once).
    fn open_element<F>(
        &mut self,
        element: &BytesStart<'_>,
        has_content: bool,
        position: u64,
        visit: &mut F,
    ) -> Result<(), PackageProblem>
    where
        F: FnMut(Node<'_, '_>) -> Result<(), PackageProblem>,
    {
        let local = String::from_utf8_lossy(element.local_name().as_ref()).into_owned();
        if self.open.is_empty() {
            if self.root.is_some() {
                return Err(
                    self.ill_formed_at(&format!("a second root element <{local}>"), position)
                );
            }
            self.root = Some(local);
        }
        self.check_attributes(element, position)?;
        let parent = self.open.last().map_or(self.document_base, |(_, b)| b);
        let base = match attribute(self.path, element, b"xml:base")? {
            Some(value) => xml_base(self.path, parent, &value)?,
            None => parent.clone(),
        };
        visit(Node::Open {
            element,
            base: &base,
        })?;
        if has_content {
            self.open.push((element.name().as_ref().to_vec(), base));
        } else {
            visit(Node::Close {
                local_name: element.local_name().as_ref(),
            })?;
        }
        Ok(())
    }

    /// Attributes are well-formed (no duplicates, quoted) and, unless a DOCTYPE may define
    /// entities or the encoding is not UTF-8, their values unescape.
    fn check_attributes(
        &self,
        element: &BytesStart<'_>,
        position: u64,
    ) -> Result<(), PackageProblem> {
        let in_element = || format!("in the element {}", at(self.bytes, position));
        for attr in element.attributes().with_checks(true) {
            let attr = attr.map_err(|e| self.ill_formed(format!("{e}, {}", in_element())))?;
            if !self.doctype && !self.other_encoding {
                attr.unescape_value()
                    .map_err(|e| self.ill_formed(format!("{e}, {}", in_element())))?;
            }
        }
        Ok(())
    }

    /// An end tag: something must be open (quick-xml checks the name); the visitor sees it.
    fn close_element<F>(
        &mut self,
        element: &BytesEnd<'_>,
        position: u64,
        visit: &mut F,
    ) -> Result<(), PackageProblem>
    where
        F: FnMut(Node<'_, '_>) -> Result<(), PackageProblem>,
    {
        if self.open.pop().is_none() {
            return Err(self.ill_formed_at("closing tag with nothing open", position));
        }
        visit(Node::Close {
            local_name: element.local_name().as_ref(),
        })
    }

    /// Content (`what`: text, CDATA, an entity reference) is allowed only inside the root.
    fn inside_root(&self, what: &str, position: u64) -> Result<(), PackageProblem> {
        if self.open.is_empty() {
            return Err(self.ill_formed_at(&format!("{what} outside the root element"), position));
        }
        Ok(())
    }

    /// An entity or character reference: inside the root; a character reference must name a
    /// character, and without a DOCTYPE only the five predefined entities exist.
    fn reference(&self, reference: &BytesRef<'_>, position: u64) -> Result<(), PackageProblem> {
        self.inside_root("entity reference", position)?;
        if reference.is_char_ref() {
            if !matches!(reference.resolve_char_ref(), Ok(Some(_))) {
                return Err(self.ill_formed_at("invalid character reference", position));
            }
        } else if !self.doctype
            && !matches!(
                reference.as_ref(),
                b"lt" | b"gt" | b"amp" | b"apos" | b"quot"
            )
        {
            let name = String::from_utf8_lossy(reference);
            return Err(self.ill_formed_at(&format!("undefined entity &{name};"), position));
        }
        Ok(())
    }

    /// At the end of the document: UTF-8 unless another encoding was declared, nothing left
    /// open, and a root element seen; returns the root's local name.
    fn finish(self) -> Result<String, PackageProblem> {
        if !self.other_encoding {
            // Without an encoding declaration (or with UTF-8 declared) the bytes must be UTF-8.
            check_utf8(self.path, self.bytes)?;
        }
        if let Some((name, _)) = self.open.last() {
            return Err(self.ill_formed(format!(
                "the document ends before <{}> is closed",
                String::from_utf8_lossy(name)
            )));
        }
        let root = self.root.clone();
        root.ok_or_else(|| self.ill_formed("no root element".to_string()))
    }
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
