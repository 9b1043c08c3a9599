//! A contact's traits in memory: compact JSON objects for the state the engine keeps per
//! contact.
//!
//! Owns: [`Traits`] (the top level of a contact's traits) and [`Fields`] (a small object in two
//! allocations: every key in one string, the values sorted by key in one slice), the trait
//! merge of RUNTIME.md 1 (top-level keys replace, an object `consent` merges key by key),
//! `set contact.a.b = v`, and the serde form, which is exactly that of the
//! `serde_json::Map<String, Value>` the traits were before (a map in key order), so states
//! written by either load in the other.
//! Must not: decide anything (that is the engine) or know how a state is stored.
//!
//! An object-valued trait (`consent`) is held as a [`Fields`] too, not as a
//! `serde_json::Value::Object` (a B-tree node sized for eleven entries and a `String` per key):
//! a contact's first identify costs two allocations for the keys and entries of each level
//! plus one per string value. Objects deeper than that stay `serde_json` values. Code that
//! needs a `serde_json::Map` (templates' context, the server) converts with
//! [`Traits::to_map`].

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::fmt;

/// A JSON object of a few entries: its keys concatenated in one string, its values (each with
/// the end of its key) sorted by key as in a `serde_json::Map`, without duplicates.
#[derive(Debug, Clone, PartialEq)]
pub struct Fields<V> {
    keys: Box<str>,
    entries: Box<[(usize, V)]>,
}

impl<V> Default for Fields<V> {
    fn default() -> Fields<V> {
        Fields {
            keys: Box::default(),
            entries: Box::default(),
        }
    }
}

impl<V> Fields<V> {
    /// Entries whose keys are strictly increasing and add up to `keys_len` bytes (so that
    /// the keys and the entries are one exact allocation each: no growth, no shrinking).
    fn from_sorted<K: AsRef<str>>(
        sorted: impl ExactSizeIterator<Item = (K, V)>,
        keys_len: usize,
    ) -> Fields<V> {
        let mut keys = String::with_capacity(keys_len);
        let mut entries = Vec::with_capacity(sorted.len());
        for (key, value) in sorted {
            keys.push_str(key.as_ref());
            entries.push((keys.len(), value));
        }
        Fields {
            keys: keys.into_boxed_str(),
            entries: entries.into_boxed_slice(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        let mut start = 0;
        self.entries.iter().map(move |(end, value)| {
            let key = self.keys.get(start..*end).unwrap_or_default();
            start = *end;
            (key, value)
        })
    }

    /// The index of `key`, or where it would go.
    fn position(&self, key: &str) -> Result<usize, usize> {
        for (i, (k, _)) in self.iter().enumerate() {
            match k.cmp(key) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return Ok(i),
                std::cmp::Ordering::Greater => return Err(i),
            }
        }
        Err(self.entries.len())
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let i = self.position(key).ok()?;
        self.entries.get_mut(i).map(|(_, v)| v)
    }

    /// Sets `key` to `value` (in place when the key is there, else the object is rebuilt with
    /// the key in its place) and returns the value now held.
    fn insert(&mut self, key: &str, value: V) -> &mut V {
        let i = match self.position(key) {
            Ok(i) => {
                self.entries[i].1 = value;
                i
            }
            Err(i) => {
                let old = std::mem::take(self);
                let mut entries: Vec<(&str, V)> = Vec::with_capacity(old.len() + 1);
                let mut start = 0;
                let mut values = old.entries.into_vec().into_iter();
                for (end, v) in values.by_ref().take(i) {
                    entries.push((old.keys.get(start..end).unwrap_or_default(), v));
                    start = end;
                }
                entries.push((key, value));
                for (end, v) in values {
                    entries.push((old.keys.get(start..end).unwrap_or_default(), v));
                    start = end;
                }
                let keys_len = entries.iter().map(|(k, _)| k.len()).sum();
                *self = Fields::from_sorted(entries.into_iter(), keys_len);
                i
            }
        };
        &mut self.entries[i].1
    }

    /// For every entry of `incoming` (key order): `update` the value held for its key, or
    /// insert `make(value)`. One pass over both objects; in place when no key is new.
    fn upsert_all(
        &mut self,
        incoming: &Map<String, Value>,
        make: impl Fn(&Value) -> V,
        update: impl Fn(&str, &mut V, &Value),
    ) {
        if incoming.keys().all(|k| self.position(k).is_ok()) {
            for (key, x) in incoming {
                if let Some(v) = self.get_mut(key) {
                    update(key, v, x);
                }
            }
            return;
        }
        let old = std::mem::take(self);
        let mut merged: Vec<(&str, V)> = Vec::with_capacity(old.len() + incoming.len());
        let mut start = 0;
        let mut held = old
            .entries
            .into_vec()
            .into_iter()
            .map(|(end, v)| {
                let key = old.keys.get(start..end).unwrap_or_default();
                start = end;
                (key, v)
            })
            .peekable();
        for (key, x) in incoming {
            while let Some((k, v)) = held.next_if(|(k, _)| *k < key.as_str()) {
                merged.push((k, v));
            }
            match held.next_if(|(k, _)| *k == key.as_str()) {
                Some((k, mut v)) => {
                    update(k, &mut v, x);
                    merged.push((k, v));
                }
                None => merged.push((key, make(x))),
            }
        }
        merged.extend(held);
        let keys_len = merged.iter().map(|(k, _)| k.len()).sum();
        *self = Fields::from_sorted(merged.into_iter(), keys_len);
    }

    /// Heap bytes held (for size measurements).
    pub fn heap_bytes(&self) -> usize {
        self.keys.len() + self.entries.len() * std::mem::size_of::<(usize, V)>()
    }
}

impl Fields<Value> {
    /// The entries of `map`, in its (key) order.
    pub fn from_map(map: &Map<String, Value>) -> Fields<Value> {
        Fields::from_sorted(
            map.iter().map(|(k, v)| (k.as_str(), v.clone())),
            keys_len(map),
        )
    }

    /// The same object as a `serde_json::Map`.
    pub fn to_map(&self) -> Map<String, Value> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    /// Equal, as a JSON object, to `map`.
    pub fn eq_map(&self, map: &Map<String, Value>) -> bool {
        self.len() == map.len()
            && self
                .iter()
                .zip(map)
                .all(|((a, x), (b, y))| a == b && x == y)
    }
}

impl<V: Serialize> Serialize for Fields<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The bytes of `map`'s keys.
fn keys_len(map: &Map<String, Value>) -> usize {
    map.keys().map(String::len).sum()
}

/// The value of one trait: a JSON value, or an object held as [`Fields`] (never a
/// `Value::Object`).
#[derive(Debug, Clone, PartialEq)]
pub enum Trait {
    Json(Value),
    Object(Fields<Value>),
}

static NULL: Value = Value::Null;

impl Trait {
    /// The compact form of `value`.
    pub fn from_json(value: Value) -> Trait {
        match value {
            Value::Object(map) => {
                let keys_len = keys_len(&map);
                Trait::Object(Fields::from_sorted(map.into_iter(), keys_len))
            }
            other => Trait::Json(other),
        }
    }

    fn from_ref(value: &Value) -> Trait {
        match value {
            Value::Object(map) => Trait::Object(Fields::from_map(map)),
            other => Trait::Json(other.clone()),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Trait::Json(v) => v.clone(),
            Trait::Object(fields) => Value::Object(fields.to_map()),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Trait::Json(v) => v.as_str(),
            Trait::Object(_) => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Trait::Json(Value::Null))
    }

    /// A member of an object-valued trait (`None` for anything else), as `Value::get`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Trait::Json(v) => v.get(key),
            Trait::Object(fields) => fields.get(key),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Trait::Json(v) => json_heap_bytes(v),
            Trait::Object(fields) => {
                fields.heap_bytes()
                    + fields
                        .iter()
                        .map(|(_, v)| json_heap_bytes(v))
                        .sum::<usize>()
            }
        }
    }
}

/// An approximation of the heap bytes of a JSON value (strings and arrays; an object counts its
/// entries at the size of a B-tree entry).
fn json_heap_bytes(value: &Value) -> usize {
    match value {
        Value::String(s) => s.capacity(),
        Value::Array(items) => {
            items.capacity() * std::mem::size_of::<Value>()
                + items.iter().map(json_heap_bytes).sum::<usize>()
        }
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                k.capacity() + std::mem::size_of::<(String, Value)>() + json_heap_bytes(v)
            })
            .sum(),
        _ => 0,
    }
}

impl std::ops::Index<&str> for Trait {
    type Output = Value;

    /// As `Value`'s index: `null` when missing.
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }
}

impl PartialEq<&str> for Trait {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

impl PartialEq<Value> for Trait {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Trait::Json(a), b) => a == b,
            (Trait::Object(a), Value::Object(b)) => a.eq_map(b),
            (Trait::Object(_), _) => false,
        }
    }
}

impl Serialize for Trait {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Trait::Json(v) => v.serialize(serializer),
            Trait::Object(fields) => fields.serialize(serializer),
        }
    }
}

/// What a path into the traits finds: a JSON value, or an object-valued trait itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Found<'a> {
    Json(&'a Value),
    Object(&'a Fields<Value>),
}

impl<'a> Found<'a> {
    pub fn as_str(self) -> Option<&'a str> {
        match self {
            Found::Json(v) => v.as_str(),
            Found::Object(_) => None,
        }
    }

    pub fn is_null(self) -> bool {
        matches!(self, Found::Json(Value::Null))
    }

    pub fn to_json(self) -> Value {
        match self {
            Found::Json(v) => v.clone(),
            Found::Object(fields) => Value::Object(fields.to_map()),
        }
    }
}

/// A contact's traits (see the module comment).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Traits(Fields<Trait>);

impl Traits {
    pub fn new() -> Traits {
        Traits::default()
    }

    /// The compact form of `map` (a record's traits).
    pub fn from_map(map: &Map<String, Value>) -> Traits {
        Traits(Fields::from_sorted(
            map.iter().map(|(k, v)| (k.as_str(), Trait::from_ref(v))),
            keys_len(map),
        ))
    }

    /// The same traits as a `serde_json::Map` (what templates and the server see).
    pub fn to_map(&self) -> Map<String, Value> {
        self.0
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_json()))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn get(&self, key: &str) -> Option<&Trait> {
        self.0.get(key)
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Trait)> {
        self.0.iter()
    }

    /// Sets a top-level trait (an object value is held compactly), as `Map::insert`.
    pub fn insert(&mut self, key: String, value: Value) {
        self.0.insert(&key, Trait::from_json(value));
    }

    /// Merges an identify's traits (RUNTIME.md 1): each top-level key replaces the one held,
    /// except an object `consent`, which merges key by key into the `consent` held (an object
    /// again if it was something else).
    pub fn merge(&mut self, incoming: &Map<String, Value>) {
        self.0
            .upsert_all(incoming, Trait::from_ref, |key, held, value| {
                match (key, value, &mut *held) {
                    ("consent", Value::Object(consent), Trait::Object(current)) => {
                        current.upsert_all(consent, Value::clone, |_, v, x| v.clone_from(x));
                    }
                    (_, value, held) => *held = Trait::from_ref(value),
                }
            });
    }

    /// `set contact.a.b.c = value`: missing or non-object parents become objects.
    pub fn set_path(&mut self, field: &[String], value: Value) {
        let Some((first, rest)) = field.split_first() else {
            return;
        };
        let Some((second, deeper)) = rest.split_first() else {
            self.0.insert(first, Trait::from_json(value));
            return;
        };
        let held = match self.0.get_mut(first) {
            Some(held) => held,
            None => self.0.insert(first, Trait::Object(Fields::default())),
        };
        if !matches!(held, Trait::Object(_)) {
            *held = Trait::Object(Fields::default());
        }
        let Trait::Object(fields) = held else { return };
        if deeper.is_empty() {
            fields.insert(second, value);
            return;
        }
        let object = match fields.get_mut(second) {
            Some(v) => v,
            None => fields.insert(second, Value::Object(Map::new())),
        };
        if !object.is_object() {
            *object = Value::Object(Map::new());
        }
        if let Value::Object(map) = object {
            set_in_map(map, deeper, value);
        }
    }

    /// Follows `fields` (`contact.a.b`); `None` when a step is missing.
    pub fn lookup(&self, fields: &[String]) -> Option<Found<'_>> {
        let (first, rest) = fields.split_first()?;
        let held = self.get(first)?;
        let Some((second, deeper)) = rest.split_first() else {
            return Some(match held {
                Trait::Json(v) => Found::Json(v),
                Trait::Object(fields) => Found::Object(fields),
            });
        };
        let mut value = held.get(second)?;
        for field in deeper {
            value = value.get(field)?;
        }
        Some(Found::Json(value))
    }

    /// Heap bytes held (for size measurements).
    pub fn heap_bytes(&self) -> usize {
        self.0.heap_bytes() + self.0.iter().map(|(_, t)| t.heap_bytes()).sum::<usize>()
    }
}

/// `set` of a path in plain JSON (below the first two levels of the traits, and on the
/// JSON traits and properties of `changes::verify`): missing or non-object parents become objects.
pub fn set_in_map(map: &mut Map<String, Value>, field: &[String], value: Value) {
    let Some((last, parents)) = field.split_last() else {
        return;
    };
    let mut map = map;
    for name in parents {
        let entry = map
            .entry(name.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(inner) = entry else { return };
        map = inner;
    }
    map.insert(last.clone(), value);
}

impl std::ops::Index<&str> for Traits {
    type Output = Trait;

    /// The trait named `key` (`null` when missing, as `serde_json`'s index).
    fn index(&self, key: &str) -> &Trait {
        static NULL_TRAIT: Trait = Trait::Json(Value::Null);
        self.get(key).unwrap_or(&NULL_TRAIT)
    }
}

impl From<&Map<String, Value>> for Traits {
    fn from(map: &Map<String, Value>) -> Traits {
        Traits::from_map(map)
    }
}

impl Serialize for Traits {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Traits {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Traits, D::Error> {
        struct TraitsVisitor;

        impl<'de> Visitor<'de> for TraitsVisitor {
            type Value = Traits;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of traits")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Traits, A::Error> {
                let mut entries: Vec<(String, Value)> =
                    Vec::with_capacity(access.size_hint().unwrap_or(0).min(64));
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
                    entries.push((key, value));
                }
                // As a `serde_json::Map` reads it: key order, the last of equal keys.
                if entries.windows(2).any(|w| w[0].0 >= w[1].0) {
                    entries.reverse();
                    entries.sort_by(|a, b| a.0.cmp(&b.0));
                    entries.dedup_by(|later, kept| later.0 == kept.0);
                }
                let keys_len = entries.iter().map(|(k, _)| k.len()).sum();
                Ok(Traits(Fields::from_sorted(
                    entries.into_iter().map(|(k, v)| (k, Trait::from_json(v))),
                    keys_len,
                )))
            }
        }

        deserializer.deserialize_map(TraitsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::FlowId;
    use crate::engine::state::{ContactState, Instance, PastEvent};
    use crate::engine::time::Instant;
    use crate::syntax::ast::Channel;
    use serde_json::json;

    /// [`ContactState`] as it was before [`Traits`]: the same fields, the traits a
    /// `serde_json::Map`. States written by either must read in the other, byte for byte.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct OldState {
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        traits: Map<String, Value>,
        #[serde(default, skip_serializing_if = "is_zero")]
        withdrawn: u8,
        #[serde(default, skip_serializing_if = "is_zero")]
        withdrawn_all: u8,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        history: Vec<PastEvent>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        instances: Vec<Instance>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        entries: Vec<(FlowId, Instant)>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sends: Vec<(Channel, Instant)>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        members: Vec<crate::compile::SegmentId>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        goals: Vec<(FlowId, Instant)>,
        #[serde(default)]
        next_instance: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wake: Option<Instant>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        segment_wake: Option<Instant>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        anniversary_wake: Option<Instant>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pending: bool,
    }

    fn is_zero(v: &u8) -> bool {
        *v == 0
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("an object literal"),
        }
    }

    fn samples() -> Vec<Map<String, Value>> {
        [
            json!({}),
            json!({"email": "a@x", "consent": {"email": true, "sms": false, "push": null}}),
            json!({
                "zeta": [1, 2.5, "x", null, {"k": [true]}],
                "consent": {"webhook": {"nested": {"deep": 1}}, "email": true, "": 0},
                "n": -7, "big": 18446744073709551615u64, "f": 0.1, "none": null,
                "timezone": "Europe/Madrid", "": "empty key", "é": "ü", "empty": {},
                "list": [], "birthday": "1990-02-28", "long": "x".repeat(300),
            }),
            json!({"consent": "not an object", "a": {"b": {"c": 1}}, "b": false}),
        ]
        .into_iter()
        .map(object)
        .collect()
    }

    fn old_state(traits: Map<String, Value>) -> OldState {
        OldState {
            traits,
            withdrawn: 2,
            withdrawn_all: 0,
            history: Vec::new(),
            instances: Vec::new(),
            entries: vec![(FlowId(1), 5)],
            sends: Vec::new(),
            members: Vec::new(),
            goals: Vec::new(),
            next_instance: 3,
            wake: Some(100),
            segment_wake: None,
            anniversary_wake: Some(-1),
            pending: true,
        }
    }

    #[test]
    fn states_serialise_as_with_a_map_in_json_and_messagepack() {
        for traits in samples() {
            let old = old_state(traits.clone());
            // Written by the old code, read by the new one.
            let json = serde_json::to_string(&old).unwrap();
            let new: ContactState = serde_json::from_str(&json).unwrap();
            assert_eq!(new.traits.to_map(), traits);
            assert_eq!(new.traits, Traits::from_map(&traits));
            assert_eq!(serde_json::to_string(&new).unwrap(), json);
            let packed = rmp_serde::to_vec_named(&old).unwrap();
            let new: ContactState = rmp_serde::from_slice(&packed).unwrap();
            assert_eq!(new.traits.to_map(), traits);
            assert_eq!(rmp_serde::to_vec_named(&new).unwrap(), packed);
            // Written by the new code, read by the old one.
            let back: OldState =
                rmp_serde::from_slice(&rmp_serde::to_vec_named(&new).unwrap()).unwrap();
            assert_eq!(back, old);
            let back: OldState =
                serde_json::from_str(&serde_json::to_string(&new).unwrap()).unwrap();
            assert_eq!(back, old);
            // The sled store's packed encoding of the two is the same too.
            let mut old_as_new: ContactState = serde_json::from_str(&json).unwrap();
            old_as_new.traits = Traits::from_map(&traits);
            let stored = crate::store::sled::encode_state(&old_as_new).unwrap();
            let read = crate::store::sled::decode_state(&stored).unwrap();
            assert_eq!(read.traits.to_map(), traits);
            assert_eq!(rmp_serde::to_vec_named(&read).unwrap(), packed);
            // `serde_json::to_value` (the server's `traits`) gives the map.
            assert_eq!(
                serde_json::to_value(&new.traits).unwrap(),
                Value::Object(traits.clone())
            );
        }
    }

    #[test]
    fn a_map_with_repeated_keys_reads_as_serde_json_reads_it() {
        let text = r#"{"b": 1, "a": {"x": 1, "x": 2}, "b": 3}"#;
        let map: Map<String, Value> = serde_json::from_str(text).unwrap();
        let traits: Traits = serde_json::from_str(text).unwrap();
        assert_eq!(traits.to_map(), map);
        assert_eq!(traits["b"], json!(3));
    }

    /// The trait merge as the engine did it on a `serde_json::Map` before [`Traits`].
    fn old_merge(state: &mut Map<String, Value>, traits: &Map<String, Value>) {
        for (key, value) in traits {
            if key == "consent" {
                if let Value::Object(consent) = value {
                    let current = state
                        .entry("consent")
                        .or_insert_with(|| Value::Object(Map::new()));
                    if !current.is_object() {
                        *current = Value::Object(Map::new());
                    }
                    if let Value::Object(current) = current {
                        for (channel, given) in consent {
                            current.insert(channel.clone(), given.clone());
                        }
                    }
                    continue;
                }
            }
            state.insert(key.clone(), value.clone());
        }
    }

    /// `set_path` as the engine did it on a `serde_json::Map`.
    fn old_set_path(traits: &mut Map<String, Value>, field: &[String], value: Value) {
        let Some((last, parents)) = field.split_last() else {
            return;
        };
        let mut map = traits;
        for name in parents {
            let entry = map
                .entry(name.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            let Value::Object(inner) = entry else { return };
            map = inner;
        }
        map.insert(last.clone(), value);
    }

    #[test]
    fn merges_and_sets_agree_with_the_map_they_replace() {
        let samples = samples();
        let incoming = [
            json!({"consent": {"sms": true, "email": false, "new": 1}, "email": "b@y", "zz": 1}),
            json!({"consent": {"email": true}}),
            json!({"consent": false, "a": 0}),
            json!({"consent": {"push": true}, "": null, "aa": [1]}),
            json!({"email": null, "empty": {"k": 1}}),
            json!({}),
        ];
        for base in &samples {
            for (i, incoming) in incoming.iter().enumerate() {
                let incoming = object(incoming.clone());
                let mut expected = base.clone();
                old_merge(&mut expected, &incoming);
                let mut traits = Traits::from_map(base);
                traits.merge(&incoming);
                assert_eq!(traits.to_map(), expected, "{base:?} + {i}");
                assert_eq!(traits, Traits::from_map(&expected), "{base:?} + {i}");
            }
            let paths: [(&[&str], Value); 7] = [
                (&["email"], json!("c@z")),
                (&["consent", "email"], json!(true)),
                (&["consent", "webhook", "x", "y"], json!(1)),
                (&["a", "b", "c"], json!([2])),
                (&["b", "c"], json!({"d": 1})),
                (&["new", "deep", "er"], Value::Null),
                (&["obj"], json!({"k": "v"})),
            ];
            for (path, value) in paths {
                let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
                let mut expected = base.clone();
                old_set_path(&mut expected, &path, value.clone());
                let mut traits = Traits::from_map(base);
                traits.set_path(&path, value);
                assert_eq!(traits.to_map(), expected, "{base:?} {path:?}");
                assert_eq!(traits, Traits::from_map(&expected), "{base:?} {path:?}");
            }
        }
    }

    #[test]
    fn lookups_find_what_a_map_holds() {
        let map = samples().swap_remove(2);
        let traits = Traits::from_map(&map);
        let paths: [&[&str]; 9] = [
            &["zeta"],
            &["consent"],
            &["consent", "email"],
            &["consent", "webhook", "nested", "deep"],
            &["consent", "missing"],
            &["n", "x"],
            &["zeta", "0"],
            &["missing"],
            &[""],
        ];
        for path in paths {
            let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
            let expected = crate::engine::eval::lookup(&map, &path).cloned();
            assert_eq!(
                traits.lookup(&path).map(Found::to_json),
                expected,
                "{path:?}"
            );
        }
        assert!(matches!(
            traits.lookup(&["consent".to_string()]),
            Some(Found::Object(_))
        ));
        assert_eq!(traits["consent"]["email"], json!(true));
        assert_eq!(traits["timezone"], "Europe/Madrid");
        assert!(traits["nothing"].is_null());
    }
}
