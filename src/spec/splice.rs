//! A JSON tree read back into a typed value, with one node of it read from RON
//! text instead: how `--set path=VALUE` parses VALUE against the type of the field
//! at `path`. The tree says where things are; the type being built says what the
//! RON text must be (`None`, `Some(3)`, `File("a.txt")`, `[1, 2]`, `{"k": 1}`).
//!
//! Contract: reading a tree with no spliced node gives what `serde_json::from_value`
//! gives for the types the spec uses (externally tagged enums, structs, options,
//! sequences, tuples, string-keyed maps).

use std::fmt;

use serde::de::{self, DeserializeSeed, Visitor};
use serde_json::Value;

use super::load::ron_options;

/// Why a spliced read failed: in the RON text (`in_value`) or elsewhere in the tree.
#[derive(Debug)]
pub(crate) struct SpliceError {
    pub message: String,
    /// True when the RON text itself did not fit the field's type.
    pub in_value: bool,
}

impl fmt::Display for SpliceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SpliceError {}

impl de::Error for SpliceError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self {
            message: msg.to_string(),
            in_value: false,
        }
    }
}

impl SpliceError {
    fn value(message: String) -> Self {
        Self {
            message,
            in_value: true,
        }
    }
}

/// Reads `T` from `tree`, with the node at address `target` read from `raw` (RON).
pub(crate) fn read_spliced<T: de::DeserializeOwned>(
    tree: &Value,
    target: *const Value,
    raw: &str,
) -> Result<T, SpliceError> {
    T::deserialize(Node {
        v: tree,
        target,
        raw,
    })
}

/// One node of the tree; `target` marks the node whose value comes from `raw`.
#[derive(Clone, Copy)]
struct Node<'de> {
    v: &'de Value,
    target: *const Value,
    raw: &'de str,
}

impl<'de> Node<'de> {
    fn is_target(&self) -> bool {
        std::ptr::eq(self.v, self.target)
    }

    fn child(&self, v: &'de Value) -> Self {
        Self { v, ..*self }
    }

    /// Reads the RON text with `read`, which calls the typed method asked for.
    fn ron<T>(
        &self,
        read: impl FnOnce(&mut ron::Deserializer<'de>) -> Result<T, ron::Error>,
    ) -> Result<T, SpliceError> {
        let options = ron_options();
        let mut de = ron::Deserializer::from_str_with_options(self.raw, &options)
            .map_err(|e| SpliceError::value(e.code.to_string()))?;
        let out = read(&mut de).map_err(|e| SpliceError::value(e.to_string()))?;
        de.end().map_err(|e| SpliceError::value(e.to_string()))?;
        Ok(out)
    }

    /// Any node that is not the target, read by what it holds.
    fn any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SpliceError> {
        match self.v {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(_) => {
                de::Deserializer::deserialize_any(self.v, visitor).map_err(de::Error::custom)
            }
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => visitor.visit_seq(Seq {
                node: self,
                items: items.iter(),
            }),
            Value::Object(map) => visitor.visit_map(Map {
                node: self,
                entries: map.iter(),
                value: None,
            }),
        }
    }
}

/// Every typed method: the target reads its RON text with the same method, any
/// other node what it holds.
macro_rules! typed {
    ($($method:ident $(($($arg:ident: $ty:ty),*))?;)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($($arg: $ty,)*)? visitor: V) -> Result<V::Value, SpliceError> {
            if self.is_target() {
                return self.ron(|de| de::Deserializer::$method(de, $($($arg,)*)? visitor));
            }
            self.any(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Node<'de> {
    type Error = SpliceError;

    typed! {
        deserialize_any; deserialize_bool; deserialize_i8; deserialize_i16; deserialize_i32;
        deserialize_i64; deserialize_u8; deserialize_u16; deserialize_u32; deserialize_u64;
        deserialize_f32; deserialize_f64; deserialize_char; deserialize_str; deserialize_string;
        deserialize_bytes; deserialize_byte_buf; deserialize_unit; deserialize_seq;
        deserialize_map; deserialize_identifier; deserialize_ignored_any;
        deserialize_unit_struct(name: &'static str);
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SpliceError> {
        if self.is_target() {
            return self.ron(|de| de::Deserializer::deserialize_option(de, visitor));
        }
        match self.v {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, SpliceError> {
        if self.is_target() {
            return self.ron(|de| de::Deserializer::deserialize_newtype_struct(de, name, visitor));
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, SpliceError> {
        if self.is_target() {
            return self.ron(|de| de::Deserializer::deserialize_enum(de, name, variants, visitor));
        }
        match self.v {
            // A unit variant.
            Value::String(s) => {
                let unit = de::value::BorrowedStrDeserializer::<SpliceError>::new(s);
                visitor.visit_enum(unit)
            }
            // `{ "Variant": inner }`.
            Value::Object(map) if map.len() == 1 => match map.iter().next() {
                Some((variant, inner)) => visitor.visit_enum(Variant {
                    node: self.child(inner),
                    name: variant,
                }),
                None => Err(de::Error::custom("an empty variant")),
            },
            _ => Err(de::Error::invalid_type(unexpected(self.v), &visitor)),
        }
    }
}

fn unexpected(v: &Value) -> de::Unexpected<'_> {
    match v {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(n) => n
            .as_f64()
            .map_or(de::Unexpected::Other("number"), de::Unexpected::Float),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

struct Seq<'de> {
    node: Node<'de>,
    items: std::slice::Iter<'de, Value>,
}

impl<'de> de::SeqAccess<'de> for Seq<'de> {
    type Error = SpliceError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, SpliceError> {
        self.items
            .next()
            .map(|v| seed.deserialize(self.node.child(v)))
            .transpose()
    }
}

struct Map<'de> {
    node: Node<'de>,
    entries: serde_json::map::Iter<'de>,
    value: Option<&'de Value>,
}

impl<'de> de::MapAccess<'de> for Map<'de> {
    type Error = SpliceError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, SpliceError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        let key = de::value::BorrowedStrDeserializer::<SpliceError>::new(key);
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, SpliceError> {
        let value = self
            .value
            .take()
            .ok_or_else(|| <SpliceError as de::Error>::custom("a value without a key"))?;
        seed.deserialize(self.node.child(value))
    }
}

/// The inside of `{ "Variant": inner }`.
struct Variant<'de> {
    node: Node<'de>,
    name: &'de str,
}

impl<'de> de::EnumAccess<'de> for Variant<'de> {
    type Error = SpliceError;
    type Variant = Node<'de>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Node<'de>), SpliceError> {
        let name = de::value::BorrowedStrDeserializer::<SpliceError>::new(self.name);
        Ok((seed.deserialize(name)?, self.node))
    }
}

impl<'de> de::VariantAccess<'de> for Node<'de> {
    type Error = SpliceError;

    fn unit_variant(self) -> Result<(), SpliceError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, SpliceError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, SpliceError> {
        de::Deserializer::deserialize_tuple(self, len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, SpliceError> {
        de::Deserializer::deserialize_struct(self, "", fields, visitor)
    }
}
