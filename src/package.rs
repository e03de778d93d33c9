//! Structural check of IMS QTI 2.x test packages (IMS Content Packaging zips).
//!
//! The check follows what TAO's importer looks at before it accepts a package, without XSD
//! validation: the archive is readable and safe to unpack, `imsmanifest.xml` sits at its root and
//! is well-formed, the manifest declares at least one QTI test, every file the manifest lists is in
//! the archive, every test and item document is well-formed XML with the expected root element, and
//! every `assessmentItemRef` of every test points at a file in the package.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Seek, Write};

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use zip::ZipArchive;

/// What a passing package contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSummary {
    /// Resources of a QTI test type (`imsqti_test_xmlv2p*`).
    pub tests: usize,
    /// Resources of a QTI item type (`imsqti_item_xmlv2p*`).
    pub items: usize,
    /// Files (not folders) in the archive.
    pub files: usize,
}

/// Why a package was refused: `entry` is the file inside the zip at fault (None when the zip itself is at fault), `reason` a short human sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{reason}", entry.as_ref().map(|e| format!("{e}: ")).unwrap_or_default())]
pub struct PackageProblem {
    pub entry: Option<String>,
    pub reason: String,
}

impl PackageProblem {
    fn archive(reason: impl Into<String>) -> Self {
        PackageProblem {
            entry: None,
            reason: reason.into(),
        }
    }

    fn entry(entry: &str, reason: impl Into<String>) -> Self {
        PackageProblem {
            entry: Some(entry.to_string()),
            reason: reason.into(),
        }
    }
}

/// Name of the manifest, which must sit at the root of the archive.
const MANIFEST: &str = "imsmanifest.xml";
const MIB: u64 = 1024 * 1024;

/// Caps against zip bombs and absurd archives.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Largest uncompressed size of one entry.
    entry_bytes: u64,
    /// Largest uncompressed size of all entries together.
    total_bytes: u64,
    /// Largest number of entries (files and folders).
    entries: usize,
}

const LIMITS: Limits = Limits {
    entry_bytes: 512 * MIB,
    total_bytes: 2048 * MIB,
    entries: 100_000,
};

/// Check a QTI test package read from any seekable reader.
pub fn check_package<R: std::io::Read + std::io::Seek>(
    reader: R,
) -> Result<PackageSummary, PackageProblem> {
    check_with_limits(reader, LIMITS)
}

fn check_with_limits<R: Read + Seek>(
    reader: R,
    limits: Limits,
) -> Result<PackageSummary, PackageProblem> {
    let unreadable = |e: zip::result::ZipError| {
        PackageProblem::archive(format!("not a readable zip archive ({e})"))
    };
    let archive = ZipArchive::new(reader).map_err(unreadable)?;
    // The zip crate keeps one entry per name (the last), so a second copy of a file would hide
    // from the check below while a consumer that reads the first match gets the other one:
    // the central directory is read here, entry by entry, to refuse any name seen twice.
    let start = archive.central_directory_start();
    let mut reader = archive.into_inner();
    refuse_duplicate_names(&mut reader, start, limits.entries)?;
    let mut archive = ZipArchive::new(reader).map_err(unreadable)?;
    let contents = survey(&mut archive, limits)?;
    read_everything(&mut archive, &contents, limits)?;

    let manifest_index = *contents.files.get(MANIFEST).ok_or_else(|| {
        PackageProblem::archive(format!("no {MANIFEST} at the root of the archive"))
    })?;
    let manifest_bytes = read_entry(&mut archive, manifest_index, MANIFEST, limits)?;
    let resources = parse_manifest(&manifest_bytes)?;

    let tests: Vec<&Resource> = resources.iter().filter(|r| r.is_test()).collect();
    let items: Vec<&Resource> = resources.iter().filter(|r| r.is_item()).collect();
    if tests.is_empty() {
        return Err(PackageProblem::entry(
            MANIFEST,
            "declares no QTI test resource (type imsqti_test_xmlv2p1 or imsqti_test_xmlv2p2)",
        ));
    }

    // Every file the manifest lists must be in the archive (tests first, then items, then the
    // other resources, so the first complaint is about the most important one).
    let mut by_rank: Vec<&Resource> = resources.iter().collect();
    by_rank.sort_by_key(|r| (!r.is_test(), !r.is_item()));
    for resource in by_rank {
        let listed = resource
            .href
            .iter()
            .map(|h| (h, "points at"))
            .chain(resource.files.iter().map(|h| (h, "lists file")));
        for (href, verb) in listed {
            match &href.target {
                Target::Local(path) if !contents.has(path) => {
                    return Err(PackageProblem::entry(
                        MANIFEST,
                        format!(
                            "resource `{}` {verb} `{}`{}, which is not in the package",
                            resource.identifier,
                            href.written,
                            resolved_note(&href.written, path)
                        ),
                    ));
                }
                Target::Outside => {
                    return Err(PackageProblem::entry(
                        MANIFEST,
                        format!(
                            "resource `{}` {verb} `{}`, which is outside the package",
                            resource.identifier, href.written
                        ),
                    ));
                }
                Target::Local(_) | Target::External => {}
            }
        }
    }

    // Test and item documents are well-formed, with the right root element.
    let mut item_refs: Vec<(String, Href)> = Vec::new();
    let mut parsed: HashSet<String> = HashSet::new();
    for test in &tests {
        let (path, index) = document(test, "test", &contents)?;
        if !parsed.insert(path.to_string()) {
            continue;
        }
        let bytes = read_entry(&mut archive, index, path, limits)?;
        let mut refs = Vec::new();
        let root = walk_xml(path, &bytes, &Base::of_document(path), |node| {
            if let Node::Open { element, base } = node {
                if element.local_name().as_ref() == b"assessmentItemRef" {
                    match attribute(path, element, b"href")? {
                        Some(written) => refs.push(Href::resolve(base, written)),
                        None => {
                            return Err(PackageProblem::entry(
                                path,
                                "has an assessmentItemRef without href",
                            ))
                        }
                    }
                }
            }
            Ok(())
        })?;
        if root != "assessmentTest" {
            return Err(PackageProblem::entry(
                path,
                format!("root element is <{root}>, not <assessmentTest>"),
            ));
        }
        item_refs.extend(refs.into_iter().map(|r| (path.to_string(), r)));
    }
    for item in &items {
        let (path, index) = document(item, "item", &contents)?;
        if !parsed.insert(path.to_string()) {
            continue;
        }
        let bytes = read_entry(&mut archive, index, path, limits)?;
        let root = walk_xml(path, &bytes, &Base::of_document(path), |_| Ok(()))?;
        if root != "assessmentItem" {
            return Err(PackageProblem::entry(
                path,
                format!("root element is <{root}>, not <assessmentItem>"),
            ));
        }
    }

    // Every item a test refers to is in the package.
    for (test, href) in &item_refs {
        match &href.target {
            Target::Local(path) if contents.files.contains_key(path.as_str()) => {}
            Target::Local(path) => {
                return Err(PackageProblem::entry(
                    test,
                    format!(
                        "assessmentItemRef `{}`{} refers to an item that is not in the package",
                        href.written,
                        resolved_note(&href.written, path)
                    ),
                ));
            }
            Target::Outside | Target::External => {
                return Err(PackageProblem::entry(
                    test,
                    format!(
                        "assessmentItemRef `{}` refers to an item outside the package",
                        href.written
                    ),
                ));
            }
        }
    }

    Ok(PackageSummary {
        tests: tests.len(),
        items: items.len(),
        files: contents.files.len(),
    })
}

/// " (resolved to `…`)" when the resolved path reads differently from what was written.
fn resolved_note(written: &str, resolved: &str) -> String {
    if written == resolved {
        String::new()
    } else {
        format!(" (resolved to `{resolved}`)")
    }
}

/// The package path of a test or item resource's document, and its index in the archive.
fn document<'r>(
    resource: &'r Resource,
    kind: &str,
    contents: &Contents,
) -> Result<(&'r str, usize), PackageProblem> {
    let refuse = |what: &str| {
        PackageProblem::entry(
            MANIFEST,
            format!("{kind} resource `{}` {what}", resource.identifier),
        )
    };
    match resource.href.as_ref().map(|h| &h.target) {
        Some(Target::Local(path)) => match contents.files.get(path.as_str()) {
            Some(index) => Ok((path, *index)),
            None => Err(refuse(&format!("points at `{path}`, which is not a file"))),
        },
        Some(_) => Err(refuse("points outside the package")),
        None => Err(refuse("has no href")),
    }
}

// ---------------------------------------------------------------------------------------------
// The archive: names, sizes, reading under caps.
// ---------------------------------------------------------------------------------------------

/// What the archive holds, by normalised path.
struct Contents {
    /// Files (not folders), with their index in the archive.
    files: HashMap<String, usize>,
    /// Folders, whether stored as entries or implied by file paths.
    folders: HashSet<String>,
}

impl Contents {
    fn has(&self, path: &str) -> bool {
        self.files.contains_key(path) || self.folders.contains(path.trim_end_matches('/'))
    }
}

/// Check every entry's name, type and declared size, and index the files.
fn survey<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    limits: Limits,
) -> Result<Contents, PackageProblem> {
    if archive.len() > limits.entries {
        return Err(PackageProblem::archive(format!(
            "has {} entries, more than the {} allowed",
            archive.len(),
            limits.entries
        )));
    }
    let mut files = HashMap::new();
    let mut folders = HashSet::new();
    let mut declared_total: u64 = 0;
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).map_err(|e| {
            PackageProblem::archive(format!("not a readable zip archive (entry {index}: {e})"))
        })?;
        let name = entry.name().to_string();
        if entry.name_raw().contains(&0) || name.contains('\0') {
            return Err(PackageProblem::entry(
                &name.replace('\0', "\\0"),
                "entry name contains a NUL character",
            ));
        }
        check_entry_name(&name)?;
        if entry
            .unix_mode()
            .is_some_and(|mode| mode & 0o170_000 == 0o120_000)
        {
            return Err(PackageProblem::entry(
                &name,
                "is a symbolic link, which a package may not contain",
            ));
        }
        if entry.encrypted() {
            return Err(PackageProblem::entry(&name, "is encrypted"));
        }
        let size = entry.size();
        if size > limits.entry_bytes {
            return Err(PackageProblem::entry(
                &name,
                format!(
                    "declares {size} bytes uncompressed, more than the {} allowed per file",
                    limits.entry_bytes
                ),
            ));
        }
        declared_total = declared_total.saturating_add(size);
        if declared_total > limits.total_bytes {
            return Err(PackageProblem::archive(format!(
                "declares more than {} bytes uncompressed in total",
                limits.total_bytes
            )));
        }
        let path = normalise_entry_name(&name);
        if entry.is_dir() || path.is_empty() {
            if !path.is_empty() {
                folders.insert(path);
            }
            continue;
        }
        let mut parent = path.as_str();
        while let Some(cut) = parent.rfind('/') {
            parent = &parent[..cut];
            folders.insert(parent.to_string());
        }
        if files.insert(path, index).is_some() {
            return Err(PackageProblem::entry(
                &name,
                "appears more than once in the archive",
            ));
        }
    }
    Ok(Contents { files, folders })
}

/// Walk the central directory from `start` (its absolute offset) and refuse the package when
/// two entries have the same name once normalised (`a/b`, `a//b`, `./a/b` and `a\b` are one
/// file to an unpacker). Reads only the fixed 46-byte headers and the names.
fn refuse_duplicate_names<R: Read + Seek>(
    reader: &mut R,
    start: u64,
    max_entries: usize,
) -> Result<(), PackageProblem> {
    const SIGNATURE: u32 = 0x0201_4b50;
    let broken =
        |e: io::Error| PackageProblem::archive(format!("not a readable zip archive ({e})"));
    reader.seek(io::SeekFrom::Start(start)).map_err(broken)?;
    let mut seen = HashSet::new();
    let mut header = [0u8; 46];
    for _ in 0..=max_entries {
        match reader.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(broken(e)),
        }
        if u32::from_le_bytes([header[0], header[1], header[2], header[3]]) != SIGNATURE {
            break;
        }
        let field = |at: usize| u64::from(u16::from_le_bytes([header[at], header[at + 1]]));
        let (name_len, extra_len, comment_len) = (field(28), field(30), field(32));
        let mut name = vec![0u8; name_len as usize];
        reader.read_exact(&mut name).map_err(broken)?;
        reader
            .seek(io::SeekFrom::Current((extra_len + comment_len) as i64))
            .map_err(broken)?;
        let written = String::from_utf8_lossy(&name).into_owned();
        let normalised = normalise_entry_name(&written);
        if !normalised.is_empty() && !seen.insert(normalised) {
            return Err(PackageProblem::entry(
                &written,
                "appears more than once in the archive; a package may hold each file once",
            ));
        }
    }
    Ok(())
}

/// Refuse names that could escape the folder a package is unpacked into.
fn check_entry_name(name: &str) -> Result<(), PackageProblem> {
    if name.starts_with('/') || name.starts_with('\\') || has_drive_letter(name) {
        return Err(PackageProblem::entry(
            name,
            "entry name is an absolute path",
        ));
    }
    if name.split(['/', '\\']).any(|part| part == "..") {
        return Err(PackageProblem::entry(
            name,
            "entry name climbs out of the package with `..`",
        ));
    }
    Ok(())
}

fn has_drive_letter(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

/// `a\b//./c` → `a/b/c` (names are already known to hold no `..` and no leading separator).
fn normalise_entry_name(name: &str) -> String {
    name.split(['/', '\\'])
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Decompress every file once, enforcing the caps on what actually comes out and letting the
/// zip reader verify each checksum.
fn read_everything<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    contents: &Contents,
    limits: Limits,
) -> Result<(), PackageProblem> {
    let mut indexed: Vec<(&String, usize)> = contents.files.iter().map(|(p, i)| (p, *i)).collect();
    indexed.sort_by_key(|(_, index)| *index);
    let mut total: u64 = 0;
    for (path, index) in indexed {
        let cap = limits
            .entry_bytes
            .min(limits.total_bytes.saturating_sub(total));
        let read = copy_capped(archive, index, path, cap, &mut io::sink())?;
        if read > cap {
            return Err(if cap < limits.entry_bytes {
                PackageProblem::archive(format!(
                    "holds more than {} bytes uncompressed in total",
                    limits.total_bytes
                ))
            } else {
                PackageProblem::entry(
                    path,
                    format!(
                        "decompresses to more than the {} bytes allowed per file",
                        limits.entry_bytes
                    ),
                )
            });
        }
        total += read;
    }
    Ok(())
}

/// Read one file into memory, never more than the per-file cap.
fn read_entry<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    index: usize,
    path: &str,
    limits: Limits,
) -> Result<Vec<u8>, PackageProblem> {
    let mut bytes = Vec::new();
    let read = copy_capped(archive, index, path, limits.entry_bytes, &mut bytes)?;
    if read > limits.entry_bytes {
        return Err(PackageProblem::entry(
            path,
            format!(
                "decompresses to more than the {} bytes allowed per file",
                limits.entry_bytes
            ),
        ));
    }
    Ok(bytes)
}

/// Copy at most `cap + 1` decompressed bytes of an entry into `out`; returns how many came.
fn copy_capped<R: Read + Seek, W: Write>(
    archive: &mut ZipArchive<R>,
    index: usize,
    path: &str,
    cap: u64,
    out: &mut W,
) -> Result<u64, PackageProblem> {
    let entry = archive
        .by_index(index)
        .map_err(|e| PackageProblem::entry(path, format!("cannot be read ({e})")))?;
    io::copy(&mut entry.take(cap.saturating_add(1)), out)
        .map_err(|e| PackageProblem::entry(path, format!("is damaged ({e})")))
}

// ---------------------------------------------------------------------------------------------
// References: hrefs and xml:base, resolved to paths inside the package.
// ---------------------------------------------------------------------------------------------

/// The folder relative references are resolved against.
#[derive(Debug, Clone)]
enum Base {
    /// A folder inside the package: empty for the root, else ending with `/`.
    Local(String),
    /// An absolute URL: references under it are not files of the package.
    External,
}

impl Base {
    /// The folder of a document at `path` inside the package.
    fn of_document(path: &str) -> Base {
        Base::Local(match path.rfind('/') {
            Some(cut) => path[..=cut].to_string(),
            None => String::new(),
        })
    }
}

/// Where a reference leads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A normalised path inside the package (no leading `/`, no `.` or `..`).
    Local(String),
    /// An absolute URL (`http:`, `https:`, `data:`, …).
    External,
    /// An absolute path, or a relative one that climbs above the package root.
    Outside,
}

/// A reference as written and where it leads.
#[derive(Debug, Clone)]
struct Href {
    written: String,
    target: Target,
}

impl Href {
    fn resolve(base: &Base, written: String) -> Href {
        let target = resolve(base, &written);
        Href { written, target }
    }
}

/// Resolve a URI reference against a base folder: drop query and fragment, percent-decode, and
/// normalise `.` and `..` segments.
fn resolve(base: &Base, reference: &str) -> Target {
    let reference = reference.trim();
    if has_scheme(reference) {
        return Target::External;
    }
    let reference = reference
        .split(['#', '?'])
        .next()
        .unwrap_or_default()
        .replace('\\', "/");
    let decoded = percent_decode(&reference);
    if decoded.starts_with('/') || has_drive_letter(&decoded) {
        return Target::Outside;
    }
    let Base::Local(folder) = base else {
        return Target::External;
    };
    let mut segments: Vec<&str> = Vec::new();
    for segment in folder.split('/').chain(decoded.split('/')) {
        match segment {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Target::Outside;
                }
            }
            other => segments.push(other),
        }
    }
    Target::Local(segments.join("/"))
}

/// `scheme:` at the start, with a scheme of two letters or more (one letter is a drive).
fn has_scheme(reference: &str) -> bool {
    match reference.find(':') {
        Some(colon) if colon >= 2 => {
            let scheme = &reference[..colon];
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        _ => false,
    }
}

/// Decode `%XX` escapes; malformed escapes stay as written, and byte sequences that are not
/// UTF-8 are replaced (such a path matches no entry name).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            out.push(hex_value(bytes[i + 1]) * 16 + hex_value(bytes[i + 2]));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

// ---------------------------------------------------------------------------------------------
// The manifest.
// ---------------------------------------------------------------------------------------------

/// One `<resource>` of the manifest.
#[derive(Debug)]
struct Resource {
    identifier: String,
    kind: String,
    href: Option<Href>,
    files: Vec<Href>,
}

impl Resource {
    fn is_test(&self) -> bool {
        self.kind.starts_with("imsqti_test_xmlv2p")
    }

    fn is_item(&self) -> bool {
        self.kind.starts_with("imsqti_item_xmlv2p")
    }
}

fn parse_manifest(bytes: &[u8]) -> Result<Vec<Resource>, PackageProblem> {
    let mut resources: Vec<Resource> = Vec::new();
    // Depth of open <resource> elements: <file> counts only inside one.
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
    Ok(resources)
}

// ---------------------------------------------------------------------------------------------
// XML well-formedness.
// ---------------------------------------------------------------------------------------------

/// What `walk_xml` reports to its visitor.
enum Node<'e, 'b> {
    /// A start tag or an empty-element tag, with the base that applies to it.
    Open {
        element: &'e BytesStart<'b>,
        base: &'e Base,
    },
    /// The end of an element opened by a start tag.
    Close { local_name: &'e [u8] },
}

/// The value of an attribute, entity references replaced.
fn attribute(
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
fn walk_xml<F>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::Cursor;
    use std::path::PathBuf;
    use zip::write::SimpleFileOptions;
    use zip::ZipWriter;

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
        assert_eq!(
            summary("2.1-basic-Basic.zip"),
            PackageSummary {
                tests: 1,
                items: 3,
                files: 5
            }
        );
        assert_eq!(
            summary("2.1-basic-BasicMultipleTestsSameItems.zip"),
            PackageSummary {
                tests: 2,
                items: 3,
                files: 6
            }
        );
        // The test sits in path/to/test/ and refers to ../../../Q01/qti.xml and so on.
        assert_eq!(
            summary("2.1-misc-TestDefinitionInSubFolders.zip"),
            PackageSummary {
                tests: 1,
                items: 3,
                files: 5
            }
        );
        // __MACOSX and .DS_Store files are files of the package too.
        assert_eq!(
            summary("2.2-exportWithoutLongPaths-qtiItemDependency.zip"),
            PackageSummary {
                tests: 1,
                items: 2,
                files: 31
            }
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
            Ok(PackageSummary {
                tests: 1,
                items: 1,
                files: 3
            })
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
        assert_eq!(
            check_bytes(zip_of(&good_files())),
            Ok(PackageSummary {
                tests: 1,
                items: 1,
                files: 3
            })
        );
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
        let problem =
            check_bytes(writer.finish().expect("finish").into_inner()).expect_err("refused");
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

    /// Damaged copies of a valid sample are refused or pass, but never panic.
    #[test]
    fn damaged_archives_do_not_panic() {
        let original = std::fs::read(samples("valid").join("2.1-basic-Basic.zip")).expect("sample");
        for position in (0..original.len()).step_by(5) {
            let mut flipped = original.clone();
            flipped[position] ^= 0x5A;
            let _ = check_bytes(flipped);
            let _ = check_bytes(original[..position].to_vec());
        }
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
}
