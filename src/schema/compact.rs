//! The compact text serde_json writes for a `Value` read from some JSON text
//! (`serde_json::to_vec(&from_slice::<Value>(text)?)`, members in their order as read), written
//! straight from the text: no tree of `Value`s, no map per object.
//!
//! It is the form a centre hashes and seals a result in, so it must be byte for byte what the
//! `Value` round trip gives: every scalar goes through serde_json's own writer (its string
//! escaping, its integer and float formatting), and the parse is serde_json's (its escapes,
//! UTF-8 checks, number rules and nesting limit). A `Value` keeps one member of a name given
//! twice (the last value, in the first place); this writer refuses such an object instead
//! (`None`), and the caller takes the `Value` path for it. `tests/schemas.rs` checks both give
//! the same bytes.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::result::Text;

/// Appends the compact form of `text` to `out`; `None` (with `out` as it was) when `text` is
/// not one JSON value or names a member twice.
pub fn write(text: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let start = out.len();
    let mut de = serde_json::Deserializer::from_slice(text);
    let done = Compact { out: &mut *out }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if done.is_err() {
        out.truncate(start);
        return None;
    }
    Some(())
}

/// Writes the value it is given to `out`.
struct Compact<'o> {
    out: &'o mut Vec<u8>,
}

impl Compact<'_> {
    fn scalar<T: serde::Serialize + ?Sized, E: de::Error>(self, v: &T) -> Result<(), E> {
        serde_json::to_writer(&mut *self.out, v).map_err(E::custom)
    }
}

impl<'de> DeserializeSeed<'de> for Compact<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Compact<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<(), E> {
        self.scalar(&b)
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<(), E> {
        self.scalar(&n)
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<(), E> {
        self.scalar(&n)
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<(), E> {
        // What `Value` does with it: a finite float is kept, anything else becomes null.
        match serde_json::Number::from_f64(n) {
            Some(n) => self.scalar(&n),
            None => self.scalar(&()),
        }
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        self.scalar(s)
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar(&())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let out = self.out;
        out.push(b'[');
        let mut first = true;
        loop {
            // The separator goes before an element and is taken back when none came.
            let mark = out.len();
            if !first {
                out.push(b',');
            }
            if seq.next_element_seed(Compact { out: &mut *out })?.is_none() {
                out.truncate(mark);
                break;
            }
            first = false;
        }
        out.push(b']');
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let out = self.out;
        out.push(b'{');
        let mut names = Names::default();
        while let Some(name) = map.next_key::<Text<'de>>()? {
            let first = names.is_empty();
            if !names.insert(name.0.clone()) {
                return Err(de::Error::custom("a member named twice"));
            }
            if !first {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, name.0.as_ref()).map_err(de::Error::custom)?;
            out.push(b':');
            map.next_value_seed(Compact { out: &mut *out })?;
        }
        out.push(b'}');
        Ok(())
    }
}

/// The member names of one object seen so far: a list while short, a set beyond that (an
/// object of many members costs no more than a hash per member).
#[derive(Default)]
struct Names<'de> {
    list: Vec<Cow<'de, str>>,
    set: HashSet<Cow<'de, str>>,
}

impl<'de> Names<'de> {
    const LIST: usize = 16;

    /// `false` when the name was seen before.
    fn insert(&mut self, name: Cow<'de, str>) -> bool {
        if self.list.len() < Self::LIST {
            if self.list.contains(&name) {
                return false;
            }
            self.list.push(name);
            return true;
        }
        if self.set.is_empty() {
            self.set.extend(self.list.iter().cloned());
        }
        self.set.insert(name)
    }

    fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}
