//! Property tests of the checksums that decide what flows: courier's change-detection
//! checksum over canonical properties, the inventory digest, and TAO's own md5 checksum.
//!
//! Properties are generated as TAO holds them (DOMAIN.md, schemas/entity.schema.json): keys
//! are property URIs, a value is one string or a list of distinct strings whose order carries
//! no meaning.

use std::collections::BTreeSet;

use courier::entities::{canonical, checksum};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

const EXCLUDED: &str = "http://www.tao.lu/Ontologies/TAO.rdf#UpdatedAt";

/// One property value: a string, or a list of distinct strings.
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-zé #:/.0-9]{0,12}".prop_map(Value::from),
        prop::collection::btree_set("[a-z0-9 ]{0,6}", 0..5)
            .prop_map(|set| Value::from(set.into_iter().collect::<Vec<_>>())),
    ]
}

/// A property key: a short URI (few enough that generated maps share some).
fn key() -> impl Strategy<Value = String> {
    "[a-e]{1,3}".prop_map(|k| format!("http://example.org/p#{k}"))
}

/// Properties as (key, value) pairs in the order they were generated; keys distinct.
fn properties() -> impl Strategy<Value = Vec<(String, Value)>> {
    prop::collection::btree_map(key(), value(), 0..8).prop_map(|m| m.into_iter().collect())
}

fn map(pairs: &[(String, Value)]) -> Map<String, Value> {
    pairs.iter().cloned().collect()
}

fn excluded() -> BTreeSet<&'static str> {
    BTreeSet::from([EXCLUDED])
}

/// Shuffle a slice with a proptest-chosen permutation (each element moved to a chosen slot).
fn permute<T: Clone>(items: &[T], picks: &[Index]) -> Vec<T> {
    let mut rest: Vec<T> = items.to_vec();
    let mut out = Vec::with_capacity(rest.len());
    for p in picks.iter().cycle().take(items.len()) {
        out.push(rest.remove(p.index(rest.len())));
    }
    out
}

/// The same properties in another key order, with every list in another order.
fn reordered(pairs: &[(String, Value)], picks: &[Index]) -> Vec<(String, Value)> {
    permute(pairs, picks)
        .into_iter()
        .map(|(k, v)| match v {
            Value::Array(items) => (k, Value::from(permute(&items, picks))),
            v => (k, v),
        })
        .collect()
}

/// A change of one property that TAO would see as a change of the entity.
#[derive(Debug, Clone)]
enum Change {
    /// A new property, or another value for an existing one.
    Set(String, Value),
    /// A property removed (a no-op when the properties are empty).
    Remove(Index),
    /// One more value in a multi-valued property (a string becomes a list of two).
    AddValue(Index, String),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (key(), value()).prop_map(|(k, v)| Change::Set(k, v)),
        any::<Index>().prop_map(Change::Remove),
        (any::<Index>(), "[a-z0-9 ]{0,6}").prop_map(|(i, s)| Change::AddValue(i, s)),
    ]
}

/// Apply a change; `None` when it changes nothing (same value set again, nothing to remove,
/// a value already present added again).
fn apply(pairs: &[(String, Value)], c: &Change) -> Option<Vec<(String, Value)>> {
    let mut out = pairs.to_vec();
    match c {
        Change::Set(k, v) => match out.iter_mut().find(|(ok, _)| ok == k) {
            Some((_, old)) if old == v => return None,
            Some((_, old)) => *old = v.clone(),
            None => out.push((k.clone(), v.clone())),
        },
        Change::Remove(i) if !out.is_empty() => {
            out.remove(i.index(out.len()));
        }
        Change::Remove(_) => return None,
        Change::AddValue(_, _) if out.is_empty() => return None,
        Change::AddValue(i, s) => {
            let n = out.len();
            let v = &mut out[i.index(n)].1;
            *v = match v.take() {
                Value::Array(items) if items.contains(&Value::from(s.as_str())) => return None,
                Value::Array(mut items) => {
                    items.push(Value::from(s.as_str()));
                    Value::Array(items)
                }
                Value::String(one) if one == *s => return None,
                Value::String(one) => Value::from(vec![one, s.clone()]),
                _ => unreachable!("generated values are strings or lists"),
            };
        }
    }
    Some(out)
}

/// Same values for the same keys, lists compared as sets: what "unchanged" means to TAO.
fn same_entity(a: &[(String, Value)], b: &[(String, Value)]) -> bool {
    let norm = |pairs: &[(String, Value)]| {
        pairs
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::Array(items) => {
                        format!(
                            "{:?}",
                            items.iter().map(|i| i.as_str()).collect::<BTreeSet<_>>()
                        )
                    }
                    v => v.to_string(),
                };
                (k.clone(), v)
            })
            .collect::<BTreeSet<_>>()
    };
    norm(a) == norm(b)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn canonicalisation_is_idempotent(p in properties()) {
        let once = canonical(&map(&p), &excluded());
        let twice = canonical(&once, &excluded());
        prop_assert_eq!(&once, &twice);
        // Key order of the canonical map is visible in its JSON text: compare text too.
        prop_assert_eq!(serde_json::to_string(&once).unwrap(), serde_json::to_string(&twice).unwrap());
        prop_assert_eq!(checksum(&once, &excluded()), checksum(&map(&p), &excluded()));
    }

    #[test]
    fn key_and_list_order_never_change_the_checksum(
        p in properties(),
        picks in prop::collection::vec(any::<Index>(), 1..8),
    ) {
        let other = reordered(&p, &picks);
        prop_assert_eq!(checksum(&map(&p), &excluded()), checksum(&map(&other), &excluded()));
    }

    #[test]
    fn any_property_change_changes_the_checksum(p in properties(), c in change()) {
        let Some(changed) = apply(&p, &c) else { return Ok(()) };
        // A change that only reorders a list is no change (Set may pick a permutation).
        prop_assume!(!same_entity(&p, &changed));
        prop_assert_ne!(checksum(&map(&p), &excluded()), checksum(&map(&changed), &excluded()));
    }

    #[test]
    fn excluded_properties_never_count(p in properties(), v in value(), w in value()) {
        let mut with_v = map(&p);
        with_v.insert(EXCLUDED.to_string(), v);
        let mut with_w = map(&p);
        with_w.insert(EXCLUDED.to_string(), w);
        prop_assert_eq!(checksum(&with_v, &excluded()), checksum(&map(&p), &excluded()));
        prop_assert_eq!(checksum(&with_w, &excluded()), checksum(&map(&p), &excluded()));
    }

    #[test]
    fn inventory_digest_ignores_order_and_sees_every_checksum(
        items in prop::collection::btree_map("[a-z]{1,4}", "[0-9a-f]{4}", 1..10),
        picks in prop::collection::vec(any::<Index>(), 1..8),
        which in any::<Index>(),
    ) {
        let items: Vec<(String, String)> = items.into_iter().collect();
        let digest = |v: &[(String, String)]| {
            courier::wire::inventory_digest(v.iter().map(|(a, b)| (a.as_str(), b.as_str())))
        };
        prop_assert_eq!(digest(&items), digest(&permute(&items, &picks)));
        let mut changed = items.clone();
        changed[which.index(items.len())].1.push('0');
        prop_assert_ne!(digest(&items), digest(&changed));
    }

    #[test]
    fn tao_checksum_sees_every_property_change(p in properties(), c in change()) {
        let Some(changed) = apply(&p, &c) else { return Ok(()) };
        // TAO hashes the properties as sent: a reordered list is a change to it.
        prop_assume!(p != changed);
        let sent = courier::tao::checksum(&map(&p)).expect("strings and lists");
        prop_assert_eq!(
            courier::tao::check_checksum(Some(&sent), &map(&p)),
            courier::tao::ChecksumCheck::Matches
        );
        prop_assert_eq!(
            courier::tao::check_checksum(Some(&sent), &map(&changed)),
            courier::tao::ChecksumCheck::Differs
        );
    }
}

/// The checksum is SHA-256 of the canonical JSON text written here by hand (not computed with
/// the code under test): sorted keys, sorted multi-values, the excluded property gone. A
/// store's checksums were computed this way since the first release: they must not move.
#[test]
fn checksum_is_sha256_of_the_canonical_text() {
    let p: Map<String, Value> = serde_json::from_str(&format!(
        r#"{{"http://example.org/p#b": ["z", "a"], "{EXCLUDED}": "2024", "http://example.org/p#a": "x"}}"#
    ))
    .unwrap();
    let text = r#"{"http://example.org/p#a":"x","http://example.org/p#b":["a","z"]}"#;
    assert_eq!(
        checksum(&p, &excluded()),
        hex::encode(Sha256::digest(text.as_bytes()))
    );
}
