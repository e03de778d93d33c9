//! TAO's own wire shapes where they differ from courier's, one adapter each; the source in
//! TAO of every rule is cited in docs/TAO-SHAPES.md.
//!
//! - Entity details (`fetchEntityDetails`): records `{id|uri, checksum, properties}` with
//!   no entity type of their own: [`EntityDetails`], [`infer_type`].
//! - TAO's entity checksum, md5 over PHP's `serialize()` of the properties: [`checksum`].
//! - TAO's file reference for a delivery's test package (a generis `file://` serial):
//!   [`PackageRef`].
//! - PHP's `json_encode()` text (`/` written `\/`, non-ASCII as `\uXXXX`), in which courier
//!   writes the sync request bodies a TAO central receives: [`write_php_json`].
//!
//! Nothing here touches the store: `entities`, `results` and `downsync` use these.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use md5::{Digest, Md5};
use serde_json::{Map, Value};

/// `rdf:type` of a resource.
pub const RDF_TYPE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";
/// A user's roles.
pub const USER_ROLES: &str = "http://www.tao.lu/Ontologies/generis.rdf#userRoles";
/// A test taker's eligibilities, in every organisation (no `.rdf` in TAO's URI).
pub const USER_ASSIGNMENT: &str = "http://www.tao.lu/Ontologies/TAOTestCenter#UserAssignment";

/// `rdf:type` classes and user roles that tell an entity's sync type.
const TYPE_BY_CLASS: [(&str, &str); 4] = [
    (
        "http://www.tao.lu/Ontologies/TAOTestCenter.rdf#TestCenter",
        "test-center",
    ),
    (
        "http://www.tao.lu/Ontologies/TAOProctor.rdf#DeliveryEligibility",
        "eligibility",
    ),
    (
        "http://www.tao.lu/Ontologies/TAODelivery.rdf#AssembledDelivery",
        "delivery",
    ),
    (
        "http://www.tao.lu/Ontologies/TAOSubject.rdf#Subject",
        "test-taker",
    ),
];
const TYPE_BY_ROLE: [(&str, &str); 3] = [
    (
        "http://www.tao.lu/Ontologies/TAOProctor.rdf#TestCenterAdministratorRole",
        "administrator",
    ),
    (
        "http://www.tao.lu/Ontologies/TAOProctor.rdf#ProctorRole",
        "proctor",
    ),
    (
        "http://www.tao.lu/Ontologies/TAO.rdf#DeliveryRole",
        "test-taker",
    ),
];
/// Properties only one type carries, for resources of a class of TAO's own making.
const TYPE_BY_PROPERTY: [(&str, &str); 3] = [
    (
        "http://www.tao.lu/Ontologies/TAOProctor.rdf#EligibileTestCenter",
        "eligibility",
    ),
    (
        "http://www.taotesting.com/ontologies/synchro.rdf#OriginTestPackage",
        "delivery",
    ),
    (
        "http://www.taotesting.com/ontologies/synchro.rdf#organisationId",
        "test-center",
    ),
];

/// Values of a property as strings (a single string is a list of one).
fn strings<'v>(props: &'v Map<String, Value>, key: &str) -> Vec<&'v str> {
    match props.get(key) {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// The sync type of an entity from its properties: its `rdf:type` class, else its user
/// roles (administrator before proctor before test taker), else a property only that type
/// has. `None` when nothing tells.
pub fn infer_type(props: &Map<String, Value>) -> Option<&'static str> {
    let classes = strings(props, RDF_TYPE);
    let roles = strings(props, USER_ROLES);
    TYPE_BY_CLASS
        .iter()
        .find(|(class, _)| classes.contains(class))
        .or_else(|| TYPE_BY_ROLE.iter().find(|(role, _)| roles.contains(role)))
        .or_else(|| {
            TYPE_BY_PROPERTY
                .iter()
                .find(|(p, _)| props.contains_key(*p))
        })
        .map(|(_, kind)| *kind)
}

/// A record of TAO's entity-details answer, read: its id (`id`, or `uri` in TAO's first
/// client), the checksum TAO sent, and the properties.
#[derive(Debug, Clone)]
pub struct EntityDetails {
    pub id: String,
    pub checksum: Option<String>,
    pub properties: Map<String, Value>,
}

impl EntityDetails {
    /// Read a record in TAO's shape. `Ok(None)`: the record is in courier's own shape
    /// (`type` is one of `types`), to be read as before. A `type` of `resource` or `class`
    /// (TAO's resource kind in some versions) is not an entity type and is ignored.
    pub fn read(v: &Value, types: &[&str]) -> Result<Option<EntityDetails>, String> {
        let Some(obj) = v.as_object() else {
            return Err("not a JSON object".into());
        };
        match obj.get("type") {
            Some(Value::String(t)) if types.contains(&t.as_str()) => return Ok(None),
            Some(Value::String(t)) if t == "resource" || t == "class" => {}
            None => {}
            Some(other) => {
                return Err(format!(
                    "'type' {} is not an entity type ({})",
                    crate::limits::quote(&other.to_string()),
                    types.join(", ")
                ))
            }
        }
        let id = match (obj.get("id"), obj.get("uri")) {
            (Some(Value::String(id)), _) | (None, Some(Value::String(id))) => id.clone(),
            _ => return Err("has no 'id' (or 'uri') string naming the entity".into()),
        };
        let checksum = match obj.get("checksum") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err("'checksum' is not a string".into()),
        };
        let properties = match obj.get("properties") {
            Some(Value::Object(p)) => p.clone(),
            // PHP encodes an empty array as [] (details not requested).
            Some(Value::Array(a)) if a.is_empty() => Map::new(),
            _ => return Err("has no 'properties' object".into()),
        };
        if let Some(extra) = obj
            .keys()
            .find(|k| !["id", "uri", "type", "checksum", "properties"].contains(&k.as_str()))
        {
            return Err(format!(
                "unknown member {} (TAO's entity details carry id, checksum, properties)",
                crate::limits::quote(extra)
            ));
        }
        Ok(Some(EntityDetails {
            id,
            checksum,
            properties,
        }))
    }
}

/// PHP's `serialize()` of a JSON value as TAO's properties hold it (strings, lists of
/// strings, objects); `None` for numbers, booleans and null, which TAO's properties never
/// hold (PHP's own text for them cannot be known from JSON).
fn php_serialize(v: &Value, out: &mut Vec<u8>) -> Option<()> {
    fn string(s: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("s:{}:\"", s.len()).as_bytes());
        out.extend_from_slice(s.as_bytes());
        out.extend_from_slice(b"\";");
    }
    match v {
        Value::String(s) => string(s, out),
        Value::Array(items) => {
            out.extend_from_slice(format!("a:{}:{{", items.len()).as_bytes());
            for (i, x) in items.iter().enumerate() {
                out.extend_from_slice(format!("i:{i};").as_bytes());
                php_serialize(x, out)?;
            }
            out.push(b'}');
        }
        Value::Object(map) => {
            out.extend_from_slice(format!("a:{}:{{", map.len()).as_bytes());
            for (k, x) in map {
                // PHP turns a key written as a decimal integer into an integer key.
                match k.parse::<i64>() {
                    Ok(n) if n.to_string() == *k => {
                        out.extend_from_slice(format!("i:{n};").as_bytes())
                    }
                    _ => string(k, out),
                }
                php_serialize(x, out)?;
            }
            out.push(b'}');
        }
        _ => return None,
    }
    Some(())
}

/// TAO's checksum of an entity: md5 (hex) over PHP's `serialize()` of its properties in the
/// order sent (extension-tao-sync `FormatterService::hashProperties`). `None` when the
/// properties hold values TAO's never do (numbers, booleans, null).
pub fn checksum(properties: &Map<String, Value>) -> Option<String> {
    let mut text = Vec::new();
    php_serialize(&Value::Object(properties.clone()), &mut text)?;
    Some(hex::encode(Md5::digest(&text)))
}

/// What the checksum a TAO record carries says about its properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumCheck {
    /// TAO's computation over the properties gives the same checksum.
    Matches,
    /// It gives another: the properties changed after TAO wrote them, or TAO computed it
    /// otherwise.
    Differs,
    /// Nothing to compare: no checksum, values TAO's properties never hold, or the
    /// constant one TAO version sends whatever the properties (it hashes the `true` that
    /// PHP's `ksort()` returns: md5 of `b:1;`).
    Unverifiable,
}

/// md5 of PHP's `serialize(true)`, the checksum of every entity in the TAO version whose
/// `hashProperties` serialises the return value of `ksort()`.
const CONSTANT_CHECKSUM: &str = "431014e4a761ea216e9a35f20aaec61c";

/// Compare the checksum a record carries with TAO's computation over its properties.
pub fn check_checksum(sent: Option<&str>, properties: &Map<String, Value>) -> ChecksumCheck {
    let Some(sent) = sent else {
        return ChecksumCheck::Unverifiable;
    };
    if sent.eq_ignore_ascii_case(CONSTANT_CHECKSUM) {
        return ChecksumCheck::Unverifiable;
    }
    match checksum(properties) {
        None => ChecksumCheck::Unverifiable,
        Some(c) if c.eq_ignore_ascii_case(sent) => ChecksumCheck::Matches,
        Some(_) => ChecksumCheck::Differs,
    }
}

/// Where a delivery's `OriginTestPackage` points: TAO's file reference (a generis
/// `UrlFileSerializer` serial, `file://<filesystem id>/<url-encoded path>`), or a path as
/// courier's own files give it (relative to the file that names it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageRef {
    /// TAO's reference, decoded: the file system id (`synchronisation`) and the path in it.
    Tao { filesystem: String, path: String },
    /// A plain path.
    Path(String),
}

/// Decode PHP's `urlencode()` (`%XX`, `+` for a space).
fn url_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

impl PackageRef {
    /// Read the property's value. `Err` for a TAO reference that does not decode or whose
    /// path leaves its folder (`..`, an absolute path).
    pub fn parse(value: &str) -> Result<PackageRef, String> {
        let Some(rest) = value.strip_prefix("file://") else {
            return Ok(PackageRef::Path(value.to_string()));
        };
        let bad = |why: &str| format!("TAO file reference {value:?} {why}");
        let (fs, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("has no path after its file system id"))?;
        let filesystem = url_decode(fs).ok_or_else(|| bad("does not URL-decode"))?;
        let path = url_decode(path).ok_or_else(|| bad("does not URL-decode"))?;
        let safe = |p: &str| {
            !p.is_empty()
                && Path::new(p)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)))
        };
        if !safe(&filesystem) || !safe(&path) {
            return Err(bad("names a path outside its folder"));
        }
        Ok(PackageRef::Tao { filesystem, path })
    }

    /// The files it may be, in order: a TAO reference under `tao_root` as
    /// `<filesystem>/<path>`, then as `<path>`; a plain path relative to `file_dir`.
    pub fn candidates(&self, file_dir: &Path, tao_root: &Path) -> Vec<PathBuf> {
        match self {
            PackageRef::Tao { filesystem, path } => {
                vec![tao_root.join(filesystem).join(path), tao_root.join(path)]
            }
            PackageRef::Path(p) => vec![file_dir.join(p)],
        }
    }
}

/// A record filed under a member name (a request body's execution id) must name the same
/// execution itself: `id` is its `deliveryExecutionId` or `delivery_execution_id`.
pub fn filed_under(key: Option<&str>, id: &Value) -> Result<(), String> {
    match key {
        Some(k) if id.as_str() != Some(k) => Err(format!(
            "filed under {:?} but names execution {}",
            crate::limits::quote(k),
            crate::limits::quote(&id.to_string())
        )),
        _ => Ok(()),
    }
}

/// serde_json's compact text with PHP `json_encode()`'s escaping (default flags): `/` as
/// `\/`, every non-ASCII character as `\uXXXX` (UTF-16, lower-case hex).
struct PhpFormatter;

impl serde_json::ser::Formatter for PhpFormatter {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut plain = 0;
        for (i, c) in fragment.char_indices() {
            if c == '/' || !c.is_ascii() {
                writer.write_all(&fragment.as_bytes()[plain..i])?;
                if c == '/' {
                    writer.write_all(b"\\/")?;
                } else {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        write!(writer, "\\u{u:04x}")?;
                    }
                }
                plain = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[plain..])
    }
}

/// Write a value as PHP's `json_encode()` would.
pub fn write_php_json<W: Write + ?Sized>(w: &mut W, v: &Value) -> std::io::Result<()> {
    use serde::Serialize;
    let mut ser = serde_json::Serializer::with_formatter(w, PhpFormatter);
    v.serialize(&mut ser).map_err(std::io::Error::other)
}

/// Write a string as a PHP-encoded JSON string.
pub fn write_php_string<W: Write + ?Sized>(w: &mut W, s: &str) -> std::io::Result<()> {
    write_php_json(w, &Value::String(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn php_serialize_is_what_php_writes() {
        let mut out = Vec::new();
        php_serialize(&json!({"a": "é", "7": ["x", "y"]}), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"a:2:{s:1:"a";s:2:"é";i:7;a:2:{i:0;s:1:"x";i:1;s:1:"y";}}"#
        );
        let mut t = Vec::new();
        php_serialize(&json!(true), &mut t);
        assert!(t.is_empty());
        assert_eq!(hex::encode(Md5::digest(b"b:1;")), CONSTANT_CHECKSUM);
    }

    #[test]
    fn php_json_escapes_slashes_and_non_ascii() {
        let mut out = Vec::new();
        write_php_json(&mut out, &json!({"u": "https://x/é😀", "n": 0.0})).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"u":"https:\/\/x\/\u00e9\ud83d\ude00","n":0.0}"#
        );
    }

    #[test]
    fn a_tao_file_reference_is_decoded_and_kept_inside_its_folder() {
        assert_eq!(
            PackageRef::parse("file://synchronisation/del-basic%2Fexport.zip").unwrap(),
            PackageRef::Tao {
                filesystem: "synchronisation".into(),
                path: "del-basic/export.zip".into()
            }
        );
        assert!(PackageRef::parse("file://synchronisation/..%2F..%2Fetc").is_err());
        assert_eq!(
            PackageRef::parse("packages/a.zip").unwrap(),
            PackageRef::Path("packages/a.zip".into())
        );
    }

    #[test]
    fn types_are_told_by_class_then_role_then_property() {
        let p = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            infer_type(&p(
                json!({RDF_TYPE: "http://www.tao.lu/Ontologies/TAO.rdf#User",
                USER_ROLES: ["http://www.tao.lu/Ontologies/TAOProctor.rdf#ProctorRole"]})
            )),
            Some("proctor")
        );
        assert_eq!(
            infer_type(&p(json!({RDF_TYPE: "urn:custom#Class",
                "http://www.taotesting.com/ontologies/synchro.rdf#OriginTestPackage": "x"}))),
            Some("delivery")
        );
        assert_eq!(infer_type(&p(json!({RDF_TYPE: "urn:custom#Class"}))), None);
    }
}
