//! A serde `Deserializer` over [`Node`] trees, so the raw structs (`raw.rs`) are filled by serde
//! while every error keeps the key path and the file location of the node that caused it.
//!
//! Scalars are lenient the way Kamal's validator is: where a string is expected, any scalar is
//! accepted and converted as Ruby's `to_s` would (`8080` → `"8080"`, `true` → `"true"`).

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use super::node::{Loc, Node, Value};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A map key.
    Key(String),
    /// A list index.
    Index(usize),
}

/// A key path such as `servers.web.hosts[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Segment>);

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// An error from deserializing a node tree: message, key path, location.
#[derive(Debug, Clone)]
pub struct DeError {
    /// The message, without location or path.
    pub message: String,
    /// Where in the document.
    pub path: KeyPath,
    /// The location of the offending node.
    pub loc: Option<Loc>,
    /// For unknown keys: the key and the keys that are allowed there.
    pub unknown: Option<(String, Vec<&'static str>)>,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            path: KeyPath::default(),
            loc: None,
            unknown: None,
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError {
            message: format!("unknown key `{field}`"),
            path: KeyPath::default(),
            loc: None,
            unknown: Some((field.to_string(), expected.to_vec())),
        }
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::custom(format!("missing required key `{field}`"))
    }

    fn invalid_type(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        DeError::custom(format!("expected {exp}, found {}", describe(unexp)))
    }
}

fn describe(unexp: de::Unexpected) -> String {
    match unexp {
        de::Unexpected::Map => "a map".into(),
        de::Unexpected::Seq => "a list".into(),
        de::Unexpected::Str(s) => format!("the string {s:?}"),
        de::Unexpected::Bool(b) => format!("the boolean {b}"),
        de::Unexpected::Signed(i) => format!("the integer {i}"),
        de::Unexpected::Unsigned(i) => format!("the integer {i}"),
        de::Unexpected::Float(f) => format!("the number {f}"),
        de::Unexpected::Unit => "nothing".into(),
        other => other.to_string(),
    }
}

impl DeError {
    fn at(mut self, loc: Loc) -> Self {
        if self.loc.is_none() {
            self.loc = Some(loc);
        }
        self
    }

    fn under(mut self, segment: Segment) -> Self {
        self.path.0.insert(0, segment);
        self
    }
}

/// Deserialize `T` from a node tree.
pub fn from_node<'a, T: serde::Deserialize<'a>>(node: &'a Node) -> Result<T, DeError> {
    T::deserialize(NodeDe(node))
}

/// A deserializer borrowing one node.
#[derive(Clone, Copy)]
pub struct NodeDe<'a>(pub &'a Node);

impl<'a> NodeDe<'a> {
    fn unexpected(&self) -> de::Unexpected<'a> {
        match &self.0.value {
            Value::Null => de::Unexpected::Unit,
            Value::Bool(b) => de::Unexpected::Bool(*b),
            Value::Int(i) => de::Unexpected::Signed(*i),
            Value::Float(f) => de::Unexpected::Float(*f),
            Value::Str(s) => de::Unexpected::Str(s),
            Value::Seq(_) => de::Unexpected::Seq,
            Value::Map(_) => de::Unexpected::Map,
        }
    }

    fn type_error(&self, exp: &dyn de::Expected) -> DeError {
        <DeError as de::Error>::invalid_type(self.unexpected(), exp).at(self.0.loc)
    }
}

macro_rules! forward_to_any {
    ($($name:ident)*) => {
        $(
            fn $name<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
                self.deserialize_any(visitor)
            }
        )*
    };
}

impl<'a> de::Deserializer<'a> for NodeDe<'a> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        let loc = self.0.loc;
        let result = match &self.0.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_borrowed_str(s),
            Value::Seq(items) => visitor.visit_seq(SeqDe {
                items: items.iter(),
                index: 0,
            }),
            Value::Map(entries) => visitor.visit_map(MapDe {
                entries: entries.iter(),
                value: None,
            }),
        };
        result.map_err(|e| e.at(loc))
    }

    fn deserialize_str<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Str(s) => visitor.visit_borrowed_str(s),
            Value::Seq(_) | Value::Map(_) | Value::Null => Err(self.type_error(&visitor)),
            other => match other.scalar_string() {
                Some(s) => visitor
                    .visit_string(s)
                    .map_err(|e: DeError| e.at(self.0.loc)),
                None => Err(self.type_error(&visitor)),
            },
        }
    }

    fn deserialize_string<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_bool<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Bool(b) => visitor.visit_bool(*b),
            _ => Err(self.type_error(&"true or false")),
        }
    }

    fn deserialize_u64<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Int(i) if *i >= 0 => visitor.visit_u64(*i as u64),
            _ => Err(self.type_error(&"a whole number")),
        }
    }

    fn deserialize_u32<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_u64(visitor)
    }

    fn deserialize_i64<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Int(i) => visitor.visit_i64(*i),
            _ => Err(self.type_error(&"a whole number")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Str(s) => visitor
                .visit_enum(s.as_str().into_deserializer())
                .map_err(|e: DeError| e.at(self.0.loc)),
            _ => Err(self.type_error(&visitor)),
        }
    }

    forward_to_any! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u128
        deserialize_f32 deserialize_f64 deserialize_char deserialize_bytes deserialize_byte_buf
        deserialize_unit deserialize_seq deserialize_map deserialize_identifier
        deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_tuple<V: Visitor<'a>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Map(_) => self.deserialize_any(visitor),
            // An empty section (`builder:` with nothing under it) is an empty map.
            Value::Null => visitor
                .visit_map(MapDe {
                    entries: [].iter(),
                    value: None,
                })
                .map_err(|e| e.at(self.0.loc)),
            _ => Err(self.type_error(&"a map")),
        }
    }
}

struct SeqDe<'a> {
    items: std::slice::Iter<'a, Node>,
    index: usize,
}

impl<'a> SeqAccess<'a> for SeqDe<'a> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        let index = self.index;
        self.index += 1;
        seed.deserialize(NodeDe(item))
            .map(Some)
            .map_err(|e| e.at(item.loc).under(Segment::Index(index)))
    }
}

struct MapDe<'a> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    value: Option<(&'a Node, &'a Node)>,
}

impl<'a> MapAccess<'a> for MapDe<'a> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some((key, value));
        let name = key.as_key().unwrap_or_default();
        seed.deserialize(NodeDe(key))
            .map(Some)
            .map_err(|e| e.at(key.loc).under(Segment::Key(name)))
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((key, value)) = self.value.take() else {
            return Err(<DeError as de::Error>::custom(
                "value asked for before its key",
            ));
        };
        let name = key.as_key().unwrap_or_default();
        seed.deserialize(NodeDe(value))
            .map_err(|e| e.at(value.loc).under(Segment::Key(name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::node::parse;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        service: String,
        #[serde(default)]
        servers: BTreeMap<String, Vec<String>>,
        #[serde(default)]
        retain: Option<u32>,
    }

    fn err_of(text: &str) -> DeError {
        let node = parse(text).expect("parses");
        match from_node::<Doc>(&node) {
            Ok(doc) => panic!("expected an error, got {doc:?}"),
            Err(err) => err,
        }
    }

    #[test]
    fn scalars_become_strings() {
        let node = parse("service: 123\nservers:\n  web: [1, true]\n").expect("parses");
        let doc: Doc = from_node(&node).expect("deserializes");
        assert_eq!(doc.service, "123");
        assert_eq!(doc.servers["web"], vec!["1", "true"]);
    }

    #[test]
    fn unknown_key_has_path_location_and_candidates() {
        let err = err_of("service: app\nretian: 3\n");
        assert_eq!(err.path.to_string(), "retian");
        let loc = err.loc.expect("location");
        assert_eq!((loc.line, loc.column), (2, 1));
        let (key, expected) = err.unknown.expect("unknown");
        assert_eq!(key, "retian");
        assert!(expected.contains(&"retain"));
    }

    #[test]
    fn wrong_type_points_at_the_item() {
        let err = err_of("service: app\nservers:\n  web:\n    - a\n    - {b: c}\n");
        assert_eq!(err.path.to_string(), "servers.web[1]");
        let loc = err.loc.expect("location");
        assert_eq!((loc.line, loc.column), (5, 7));
        assert!(err.message.contains("found a map"), "{}", err.message);
    }

    #[test]
    fn missing_key_points_at_the_map() {
        let err = err_of("servers: {}\n");
        assert!(err.message.contains("missing required key `service`"));
        assert_eq!(err.path.to_string(), "");
    }
}
