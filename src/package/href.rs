//! References (`href`, `xml:base`) resolved to normalised paths inside the package.

use super::archive::has_drive_letter;

/// The folder relative references are resolved against.
#[derive(Debug, Clone)]
pub(super) enum Base {
    /// A folder inside the package: empty for the root, else ending with `/`.
    Local(String),
    /// An absolute URL: references under it are not files of the package.
    External,
}

impl Base {
    /// The folder of a document at `path` inside the package.
    pub fn of_document(path: &str) -> Base {
        Base::Local(match path.rfind('/') {
            Some(cut) => path[..=cut].to_string(),
            None => String::new(),
        })
    }
}

/// Where a reference leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// A normalised path inside the package (no leading `/`, no `.` or `..`).
    Local(String),
    /// An absolute URL (`http:`, `https:`, `data:`, …).
    External,
    /// An absolute path, or a relative one that climbs above the package root.
    Outside,
}

/// A reference as written and where it leads.
#[derive(Debug, Clone)]
pub(super) struct Href {
    pub written: String,
    pub target: Target,
}

impl Href {
    pub fn resolve(base: &Base, written: String) -> Href {
        let target = resolve(base, &written);
        Href { written, target }
    }
}

/// Resolve a URI reference against a base folder: drop query and fragment, percent-decode, and
/// normalise `.` and `..` segments.
pub(super) fn resolve(base: &Base, reference: &str) -> Target {
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

/// " (resolved to `…`)" when the resolved path reads differently from what was written.
pub(super) fn resolved_note(written: &str, resolved: &str) -> String {
    if written == resolved {
        String::new()
    } else {
        format!(" (resolved to `{resolved}`)")
    }
}
