//! Text that came from input, made safe for a terminal.
//!
//! Ids, names and messages inside bundles, records and file names are chosen by whoever wrote
//! them. Printed raw, a newline forges a second report line ("…: applied") and an escape
//! sequence rewrites or hides what the operator sees. Every human-readable line courier prints
//! passes through [`escape`] at the output edge (git and ripgrep do the same with bytes from a
//! repository). JSON output needs nothing: serde escapes control characters itself.

use std::borrow::Cow;

/// `s` with every control character (C0, DEL, C1), and every Unicode bidirectional override
/// that could reorder what is shown, written as a visible escape: `\n`, `\r`, `\t`, `\e`, else
/// `\u{XX}`. Text without such characters is returned as it is.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{1b}' => out.push_str("\\e"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn plain_text_is_kept_as_it_is() {
        assert_eq!(
            escape("ORG-001 Lycée X: applied"),
            "ORG-001 Lycée X: applied"
        );
    }

    #[test]
    fn control_characters_become_visible() {
        assert_eq!(
            escape("id\n[2/2] x: applied\r\u{1b}[2J\u{7}\u{9b}\u{202e}"),
            "id\\n[2/2] x: applied\\r\\e[2J\\u{7}\\u{9b}\\u{202e}"
        );
    }
}
