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

/// An enum whose values are fixed words of the format or the store: one list gives each
/// variant its text, used as its serde name, by `as_str` and `Display`, and by the store
/// for its SQL text value, so the three can never disagree.
macro_rules! text_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text of this value on the wire and in the store.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The value written as `text`, if any.
            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == text)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;

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
