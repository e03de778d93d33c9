//! A result record (schemas/result.schema.json) read straight into typed structs, for
//! central's import: no `Value` tree per variable, only what central keeps of each
//! (its call ids, test and item; the variable's text is taken from the limit scan's spans).
//!
//! The typed read accepts only what the schema accepts: every string is parsed (escapes,
//! UTF-8) and every value the schema leaves open is walked as serde's `Value` would be
//! (numbers beyond `f64` refused), so a record it accepts is one the `Value` path accepts
//! too. It may refuse more (a member named twice, where `Value` keeps the last): the caller
//! then reads the record again as a `Value` and checks it with the schema, whose message is
//! the one reported. `tests/schemas.rs` checks that both agree on the fixtures' records and
//! on generated bad ones.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

/// What central keeps of a result record that passed the schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRecord {
    pub delivery_id: String,
    pub execution_id: String,
    /// `details` as sent (TAO's further fields included), stored as an object.
    pub details: Value,
    pub variables: Vec<VariableKeys>,
}

/// Where one variable was recorded; `None` for JSON `null`.
#[derive(Debug, Clone, PartialEq)]
pub struct VariableKeys {
    pub call_id_test: Option<String>,
    pub call_id_item: Option<String>,
    pub test: Option<String>,
    pub item: Option<String>,
}

impl ResultRecord {
    /// `details.test-taker` (present: the schema requires it).
    pub fn test_taker(&self) -> &str {
        self.details["test-taker"].as_str().unwrap_or_default()
    }

    /// `details.state`.
    pub fn state(&self) -> &str {
        self.details["state"].as_str().unwrap_or_default()
    }

    /// `details.finishtime` when it is a non-empty string.
    pub fn finishtime(&self) -> Option<&str> {
        self.details["finishtime"]
            .as_str()
            .filter(|t| !t.is_empty())
    }
}

/// The typed read of a record's text: `None` when it refuses (read it with
/// [`from_value`] then, for the schema's own message).
pub fn read(text: &[u8]) -> Option<ResultRecord> {
    let (w, details) = read_wire(text)?;
    let variables: Option<Vec<_>> = w.variables.into_iter().map(|v| v.0.keys()).collect();
    Some(ResultRecord {
        delivery_id: w.delivery_id.0.into_owned(),
        execution_id: w.execution_id.0.into_owned(),
        details,
        variables: variables?,
    })
}

/// What a centre keeps beside a result it seals: the record checked as [`read`] checks it,
/// without keeping anything of its variables.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultHead {
    pub delivery_id: String,
    pub execution_id: String,
    pub test_taker: String,
    pub state: String,
    /// `details.finishtime` when it is a non-empty string.
    pub finishtime: Option<String>,
}

/// The typed check of a record's text for a centre: `None` when it refuses, as [`read`].
pub fn read_head(text: &[u8]) -> Option<ResultHead> {
    let (w, details) = read_wire(text)?;
    if !w.variables.iter().all(|v| v.0.kind_ok()) {
        return None;
    }
    let text = |k: &str| details[k].as_str().unwrap_or_default().to_string();
    Some(ResultHead {
        delivery_id: w.delivery_id.0.into_owned(),
        execution_id: w.execution_id.0.into_owned(),
        test_taker: text("test-taker"),
        state: text("state"),
        finishtime: details["finishtime"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(String::from),
    })
}

/// The record read and checked (all but each variable's `type`), with its `details`.
fn read_wire(text: &[u8]) -> Option<(WireResult<'_>, Value)> {
    let wire: Object<WireResult<'_>> = serde_json::from_slice(text).ok()?;
    let mut w = wire.0;
    if w.delivery_id.0.is_empty() || w.execution_id.0.is_empty() {
        return None;
    }
    let details = Value::Object(std::mem::take(&mut w.details));
    let d = Details::deserialize(&details).ok()?;
    if d.test_taker.is_empty() || !STATES.contains(&d.state) {
        return None;
    }
    Some((w, details))
}

/// A record already parsed as a `Value`, checked against the result schema: `Err` is the
/// schema's one-line reason.
pub fn from_value(v: Value) -> Result<ResultRecord, String> {
    super::check("result", &v)?;
    let text = |v: &Value| v.as_str().map(String::from);
    let variables = v["variables"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let variables = variables
        .iter()
        .map(|var| VariableKeys {
            call_id_test: text(&var["callIdTest"]),
            call_id_item: text(&var["callIdItem"]),
            test: text(&var["test"]),
            item: text(&var["item"]),
        })
        .collect();
    Ok(ResultRecord {
        delivery_id: text(&v["deliveryId"]).unwrap_or_default(),
        execution_id: text(&v["deliveryExecutionId"]).unwrap_or_default(),
        details: v["details"].clone(),
        variables,
    })
}

/// The schema's `details.state`.
const STATES: &[&str] = &[
    "http://www.tao.lu/Ontologies/TAODelivery.rdf#DeliveryExecutionStatusActive",
    "http://www.tao.lu/Ontologies/TAODelivery.rdf#DeliveryExecutionStatusPaused",
    "http://www.tao.lu/Ontologies/TAODelivery.rdf#DeliveryExecutionStatusFinished",
    "http://www.tao.lu/Ontologies/TAODelivery.rdf#DeliveryExecutionStatusTerminated",
    "http://www.tao.lu/Ontologies/TAODelivery.rdf#DeliveryExecutionStatusCanceled",
];
/// The schema's `variableData.cardinality`.
const CARDINALITIES: &[&str] = &["single", "multiple", "ordered", "record"];
/// The schema's `variableData.type`.
const DATA_TYPES: &[&str] = &[
    "responseVariable",
    "outcomeVariable",
    "traceVariable",
    "taoResultServer_models_classes_ResponseVariable",
    "taoResultServer_models_classes_OutcomeVariable",
    "taoResultServer_models_classes_TraceVariable",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireResult<'a> {
    #[serde(rename = "deliveryId", borrow)]
    delivery_id: Text<'a>,
    #[serde(rename = "deliveryExecutionId", borrow)]
    execution_id: Text<'a>,
    details: Map<String, Value>,
    #[serde(borrow)]
    variables: Vec<Object<WireVariable<'a>>>,
}

/// `details`, checked from its `Value` (small; stored whole). Further fields are allowed.
#[derive(Deserialize)]
struct Details<'a> {
    #[serde(default, deserialize_with = "present")]
    #[allow(dead_code)]
    identifier: Option<&'a str>,
    #[serde(default, deserialize_with = "present")]
    #[allow(dead_code)]
    label: Option<&'a str>,
    #[serde(rename = "test-taker")]
    test_taker: &'a str,
    #[serde(default, deserialize_with = "present")]
    #[allow(dead_code)]
    starttime: Option<&'a str>,
    #[allow(dead_code)]
    finishtime: Option<&'a str>,
    state: &'a str,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireVariable<'a> {
    #[serde(rename = "type", default, deserialize_with = "present", borrow)]
    kind: Option<Text<'a>>,
    #[serde(rename = "callIdTest", deserialize_with = "nullable", borrow)]
    call_id_test: Option<Text<'a>>,
    #[serde(rename = "callIdItem", deserialize_with = "nullable", borrow)]
    call_id_item: Option<Text<'a>>,
    #[serde(borrow)]
    test: Text<'a>,
    #[serde(deserialize_with = "nullable", borrow)]
    item: Option<Text<'a>>,
    #[allow(dead_code)]
    data: VariableData,
}

impl WireVariable<'_> {
    /// `type`, when present, is not empty (the schema's `minLength`).
    fn kind_ok(&self) -> bool {
        !self.kind.as_ref().is_some_and(|k| k.0.is_empty())
    }

    /// The keys central stores, or `None` when `type` is empty.
    fn keys(self) -> Option<VariableKeys> {
        if !self.kind_ok() {
            return None;
        }
        let own = |t: Option<Text<'_>>| t.map(|t| t.0.into_owned());
        Some(VariableKeys {
            call_id_test: own(self.call_id_test),
            call_id_item: own(self.call_id_item),
            test: Some(self.test.0.into_owned()),
            item: own(self.item),
        })
    }
}

/// An optional member that, when present, must not be `null`.
pub(super) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A required member that may be `null` (`deserialize_with` makes serde refuse it missing).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

/// A JSON string, borrowed from the record when it has no escapes.
pub(super) struct Text<'a>(pub(super) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(s))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(s.to_owned()))
            }
        }
        d.deserialize_str(V).map(Text)
    }
}

/// A JSON object only (serde's derived structs also take arrays), read as `T`.
pub(super) struct Object<T>(pub(super) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(V(PhantomData)).map(Object)
    }
}

/// Any JSON value, walked as serde's `Value` would parse it and dropped.
pub(super) struct AnyJson;

impl<'de> Deserialize<'de> for AnyJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AnyVisitor { scalar_only: false })
    }
}

/// A string, a number or `null` (`normalMinimum`, `normalMaximum`).
struct Scalar;

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AnyVisitor { scalar_only: true })
            .map(|_| Scalar)
    }
}

struct AnyVisitor {
    scalar_only: bool,
}

impl<'de> Visitor<'de> for AnyVisitor {
    type Value = AnyJson;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(if self.scalar_only {
            "a string, a number or null"
        } else {
            "any JSON value"
        })
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<AnyJson, E> {
        if self.scalar_only {
            return Err(E::invalid_type(de::Unexpected::Bool(b), &self));
        }
        Ok(AnyJson)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }
    fn visit_unit<E: de::Error>(self) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AnyJson, A::Error> {
        if self.scalar_only {
            return Err(de::Error::invalid_type(de::Unexpected::Seq, &self));
        }
        while seq.next_element::<AnyJson>()?.is_some() {}
        Ok(AnyJson)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyJson, A::Error> {
        if self.scalar_only {
            return Err(de::Error::invalid_type(de::Unexpected::Map, &self));
        }
        while map.next_key::<Text<'de>>()?.is_some() {
            map.next_value::<AnyJson>()?;
        }
        Ok(AnyJson)
    }
}

/// A variable's `data` (`variableData`), checked and dropped: central stores the
/// variable's text as sent. TAO's further members are allowed (any JSON).
struct VariableData;

impl<'de> Deserialize<'de> for VariableData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(DataVisitor)
    }
}

struct DataVisitor;

impl<'de> Visitor<'de> for DataVisitor {
    type Value = VariableData;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a variable's data object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<VariableData, A::Error> {
        let one_of = |what: &str, s: Text<'_>, list: &[&str]| -> Result<(), A::Error> {
            match list.contains(&s.0.as_ref()) {
                true => Ok(()),
                false => Err(de::Error::custom(format!("{what} not in its enum"))),
            }
        };
        let (mut identifier, mut cardinality) = (0, 0);
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match key.0.as_ref() {
                "identifier" => {
                    identifier += 1;
                    if map.next_value::<Text<'_>>()?.0.is_empty() {
                        return Err(de::Error::custom("empty identifier"));
                    }
                }
                "cardinality" => {
                    cardinality += 1;
                    one_of("cardinality", map.next_value()?, CARDINALITIES)?;
                }
                "type" => one_of("type", map.next_value()?, DATA_TYPES)?,
                "baseType" | "epoch" | "candidateResponse" | "value" | "trace" => {
                    map.next_value::<Option<Text<'_>>>()?;
                }
                "normalMinimum" | "normalMaximum" => {
                    map.next_value::<Scalar>()?;
                }
                _ => {
                    map.next_value::<AnyJson>()?;
                }
            }
        }
        if identifier != 1 || cardinality != 1 {
            return Err(de::Error::custom(
                "identifier or cardinality missing or repeated",
            ));
        }
        Ok(VariableData)
    }
}
