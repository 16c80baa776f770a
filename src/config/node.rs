//! A YAML document as a tree of nodes that remember where they were written (file, line,
//! column), so that errors found after merging the base file with a destination overlay still
//! point at the line the user wrote.
//!
//! Parsing uses `serde-saphyr` (anchors, aliases and `<<:` merge keys resolved, with a budget
//! against alias bombs); merging follows ActiveSupport's `deep_merge!` as Kamal uses it: hashes
//! merge recursively, arrays and scalars are replaced by the overlay.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Where a node was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loc {
    /// Index of the file in [`super::sources::Sources`].
    pub file: usize,
    /// 1-based line (0 when unknown).
    pub line: u32,
    /// 1-based column (0 when unknown).
    pub column: u32,
}

/// One node of the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where it was written.
    pub loc: Loc,
}

/// The value of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order.
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// A short name of the kind of value, for messages: "a string", "a map", …
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a map",
        }
    }

    /// The scalar as Kamal's `to_s` would print it; `None` for lists and maps.
    pub fn scalar_string(&self) -> Option<String> {
        match self {
            Value::Null => Some(String::new()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(format_float(*f)),
            Value::Str(s) => Some(s.clone()),
            Value::Seq(_) | Value::Map(_) => None,
        }
    }
}

/// Format a float as Ruby's `Float#to_s` does for ordinary values (`1.0`, `1.5`).
pub fn format_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

impl Node {
    /// A node without a location (used for defaults).
    pub fn new(value: Value) -> Node {
        Node {
            value,
            loc: Loc::default(),
        }
    }

    /// The value under `key` when this node is a map.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| k.as_key().as_deref() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The key node for `key` when this node is a map.
    pub fn get_key(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| k.as_key().as_deref() == Some(key))
                .map(|(k, _)| k),
            _ => None,
        }
    }

    /// This node used as a map key: scalars as text.
    pub fn as_key(&self) -> Option<String> {
        self.value.scalar_string()
    }

    /// Remove every top-level `x-*` key (Kamal's extension keys) but `x-dray`, dray's own
    /// settings (which Kamal ignores as it ignores every `x-*` key).
    pub fn strip_extension_keys(&mut self) {
        if let Value::Map(entries) = &mut self.value {
            entries.retain(|(k, _)| {
                !k.as_key()
                    .is_some_and(|k| k.starts_with("x-") && k != "x-dray")
            });
        }
    }

    /// Merge `overlay` into `self` as ActiveSupport's `deep_merge!`: maps merge recursively,
    /// everything else is replaced by the overlay.
    pub fn deep_merge(&mut self, overlay: Node) {
        match (&mut self.value, overlay.value) {
            (Value::Map(base), Value::Map(over)) => {
                for (key, value) in over {
                    let name = key.as_key();
                    let existing = base
                        .iter_mut()
                        .find(|(k, _)| name.is_some() && k.as_key() == name);
                    match existing {
                        Some((_, base_value)) => base_value.deep_merge(value),
                        None => base.push((key, value)),
                    }
                }
            }
            (_, value) => {
                self.value = value;
                self.loc = overlay.loc;
            }
        }
    }

    /// Set the file index of this node and all below it.
    pub fn set_file(&mut self, file: usize) {
        self.loc.file = file;
        match &mut self.value {
            Value::Seq(items) => items.iter_mut().for_each(|n| n.set_file(file)),
            Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                k.set_file(file);
                v.set_file(file);
            }),
            _ => {}
        }
    }
}

/// Why a document could not be parsed.
#[derive(Debug, Clone)]
pub struct ParseError {
    /// 1-based line, 0 when unknown.
    pub line: u32,
    /// 1-based column, 0 when unknown.
    pub column: u32,
    /// The parser's message.
    pub message: String,
}

/// The largest configuration file accepted, in bytes.
pub const MAX_INPUT_BYTES: usize = 1024 * 1024;

/// A key written twice in one mapping: the last one wins, as in Psych (Kamal's YAML parser).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    /// The key, as text.
    pub key: String,
    /// Where it was first written (its value is dropped).
    pub first: Loc,
    /// Where it was written again (this value is kept).
    pub last: Loc,
}

/// Parse one YAML document into a tree. An empty document is an empty map.
pub fn parse(text: &str) -> Result<Node, ParseError> {
    parse_with_duplicates(text).map(|(node, _)| node)
}

/// [`parse`], with the keys written twice in a mapping (the last one wins, in the position
/// of the first, as a Ruby hash keeps it), in document order.
pub fn parse_with_duplicates(text: &str) -> Result<(Node, Vec<DuplicateKey>), ParseError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(ParseError {
            line: 0,
            column: 0,
            message: format!(
                "the file is {} bytes, more than the {} bytes a configuration may have",
                text.len(),
                MAX_INPUT_BYTES
            ),
        });
    }
    if text.trim().is_empty() {
        return Ok((Node::new(Value::Map(Vec::new())), Vec::new()));
    }
    let mut options = serde_saphyr::Options::default();
    if let Some(budget) = options.budget.as_mut() {
        budget.max_events = 100_000;
        budget.max_nodes = 100_000;
        budget.max_aliases = 10_000;
        budget.max_anchors = 10_000;
        budget.max_depth = 48;
        budget.max_recorded_anchor_events = 50_000;
        budget.max_total_scalar_bytes = 8 * MAX_INPUT_BYTES;
        budget.max_documents = 1;
    }
    options.alias_limits.max_total_replayed_events = 50_000;
    options.alias_limits.max_replay_stack_depth = 32;
    options.with_snippet = false;
    // YAML 1.1 as Psych reads it: the last of duplicate keys wins, `0600` is octal.
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::LastWins;
    options.legacy_octal_numbers = true;
    let root: Option<Spanned<RawNode>> = serde_saphyr::from_str_with_options(text, options)
        .map_err(|err| {
            let (line, column) = err
                .location()
                .map(|l| (l.line() as u32, l.column() as u32))
                .unwrap_or((0, 0));
            ParseError {
                line,
                column,
                message: first_line(&err.to_string()),
            }
        })?;
    let mut duplicates = Vec::new();
    let node = match root {
        Some(root) => into_node(root, &mut duplicates),
        None => Node::new(Value::Map(Vec::new())),
    };
    // An anchored mapping is replayed at each alias (its nodes then all at the alias): report
    // each duplicate once, where it was written.
    let mut seen = std::collections::HashSet::new();
    duplicates.retain(|d: &DuplicateKey| {
        d.first != d.last && seen.insert((d.first.line, d.first.column, d.last.line, d.last.column))
    });
    Ok((node, duplicates))
}

fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or(message).trim();
    // serde-saphyr prefixes messages with the location; ours is printed separately.
    match line.split_once(" at line ") {
        Some((head, _)) if !head.is_empty() => head.to_string(),
        _ => line.to_string(),
    }
}

/// The identity of a scalar key, as Ruby's `Hash` compares keys (`1` and `"1"` differ);
/// `None` for lists and maps, which are never merged.
fn key_identity(value: &Value) -> Option<(u8, String)> {
    match value {
        Value::Null => Some((0, String::new())),
        Value::Bool(b) => Some((1, b.to_string())),
        Value::Int(i) => Some((2, i.to_string())),
        Value::Float(f) => Some((3, f.to_bits().to_string())),
        Value::Str(s) => Some((4, s.clone())),
        Value::Seq(_) | Value::Map(_) => None,
    }
}

fn into_node(spanned: Spanned<RawNode>, duplicates: &mut Vec<DuplicateKey>) -> Node {
    let loc = Loc {
        file: 0,
        line: spanned.referenced.line() as u32,
        column: spanned.referenced.column() as u32,
    };
    let value = match spanned.value.0 {
        RawValue::Null => Value::Null,
        RawValue::Bool(b) => Value::Bool(b),
        RawValue::Int(i) => Value::Int(i),
        RawValue::Float(f) => Value::Float(f),
        RawValue::Str(s) => Value::Str(s),
        RawValue::Seq(items) => Value::Seq(
            items
                .into_iter()
                .map(|item| into_node(item, duplicates))
                .collect(),
        ),
        RawValue::Map(entries) => {
            let mut out: Vec<(Node, Node)> = Vec::with_capacity(entries.len());
            let mut index = std::collections::HashMap::new();
            for (k, v) in entries {
                let key = into_node(k, duplicates);
                let value = into_node(v, duplicates);
                let identity = key_identity(&key.value);
                match identity.as_ref().and_then(|id| index.get(id)) {
                    Some(&i) => {
                        let slot: &mut (Node, Node) = &mut out[i];
                        duplicates.push(DuplicateKey {
                            key: key.as_key().unwrap_or_default(),
                            first: slot.0.loc,
                            last: key.loc,
                        });
                        *slot = (key, value);
                    }
                    None => {
                        if let Some(id) = identity {
                            index.insert(id, out.len());
                        }
                        out.push((key, value));
                    }
                }
            }
            Value::Map(out)
        }
    };
    Node { value, loc }
}

/// The parser-facing tree: every child wrapped in `Spanned` to keep its location.
struct RawNode(RawValue);

enum RawValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawNode>>),
    Map(Vec<(Spanned<RawNode>, Spanned<RawNode>)>),
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor).map(RawNode)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawValue, D::Error> {
        d.deserialize_any(RawVisitor)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawValue, E> {
        Ok(RawValue::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawValue, E> {
        Ok(RawValue::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawValue, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => RawValue::Int(i),
            Err(_) => RawValue::Str(v.to_string()),
        })
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<RawValue, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => RawValue::Int(i),
            Err(_) => RawValue::Str(v.to_string()),
        })
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<RawValue, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => RawValue::Int(i),
            Err(_) => RawValue::Str(v.to_string()),
        })
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawValue, E> {
        Ok(RawValue::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawValue, E> {
        Ok(RawValue::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<RawValue, E> {
        Ok(RawValue::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<RawValue, E> {
        Ok(RawValue::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<RawNode>>()? {
            items.push(item);
        }
        Ok(RawValue::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<RawNode>>()? {
            let value = map.next_value::<Spanned<RawNode>>()?;
            entries.push((key, value));
        }
        Ok(RawValue::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Node {
        match parse(text) {
            Ok(node) => node,
            Err(err) => panic!("parse failed: {}:{} {}", err.line, err.column, err.message),
        }
    }

    #[test]
    fn locations_are_kept() {
        let node = parse_ok("service: app\nservers:\n  web:\n    - 1.1.1.1\n");
        let web = node.get("servers").and_then(|s| s.get("web"));
        let first = match web.map(|w| &w.value) {
            Some(Value::Seq(items)) => items[0].clone(),
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(first.value, Value::Str("1.1.1.1".into()));
        assert_eq!((first.loc.line, first.loc.column), (4, 7));
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let node = parse_ok(
            "base: &b\n  a: 1\n  b: 2\nother:\n  <<: *b\n  b: 3\nlist: &l [1, 2]\nagain: *l\n",
        );
        let other = node.get("other").map(|n| n.value.clone());
        let Some(Value::Map(entries)) = other else {
            panic!("other is not a map")
        };
        let keys: Vec<_> = entries.iter().filter_map(|(k, _)| k.as_key()).collect();
        assert!(keys.contains(&"a".to_string()));
        assert_eq!(
            node.get("other").and_then(|o| o.get("b")).map(|n| &n.value),
            Some(&Value::Int(3))
        );
        assert!(matches!(node.get("again").map(|n| &n.value), Some(Value::Seq(s)) if s.len() == 2));
    }

    #[test]
    fn deep_merge_merges_maps_and_replaces_lists() {
        let mut base = parse_ok("env:\n  clear:\n    A: 1\n    B: 2\nhosts: [a, b]\n");
        let overlay = parse_ok("env:\n  clear:\n    B: 3\n    C: 4\nhosts: [c]\n");
        base.deep_merge(overlay);
        let clear = base.get("env").and_then(|e| e.get("clear")).cloned();
        let clear = clear.map(|c| c.value);
        let Some(Value::Map(entries)) = clear else {
            panic!("no clear map")
        };
        assert_eq!(entries.len(), 3);
        assert_eq!(
            base.get("hosts").map(|h| &h.value),
            Some(&Value::Seq(vec![Node {
                value: Value::Str("c".into()),
                loc: Loc {
                    file: 0,
                    line: 5,
                    column: 9
                }
            }]))
        );
    }

    #[test]
    fn alias_bomb_is_refused_quickly() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let started = std::time::Instant::now();
        assert!(parse(&text).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn empty_document_is_an_empty_map() {
        assert_eq!(parse_ok("").value, Value::Map(Vec::new()));
        assert_eq!(parse_ok("# only a comment\n").value, Value::Map(Vec::new()));
    }

    #[test]
    fn duplicate_keys_last_wins_in_the_first_position_like_psych() {
        let (node, dups) = match parse_with_duplicates(
            "service: a\nimage: x\nservice: b\nservers:\n  web: [1]\n  web: [2]\n  '1': s\n  1: i\n",
        ) {
            Ok(parsed) => parsed,
            Err(e) => panic!("{}", e.message),
        };
        let Value::Map(entries) = &node.value else {
            panic!("not a map")
        };
        let keys: Vec<_> = entries.iter().filter_map(|(k, _)| k.as_key()).collect();
        assert_eq!(keys, ["service", "image", "servers"]);
        assert_eq!(
            node.get("service").map(|n| &n.value),
            Some(&Value::Str("b".into()))
        );
        let servers = node.get("servers").map(|n| n.value.clone());
        let Some(Value::Map(roles)) = servers else {
            panic!("servers")
        };
        // `'1'` and `1` are different keys in Ruby
        assert_eq!(roles.len(), 3);
        let found: Vec<_> = dups
            .iter()
            .map(|d| (d.key.as_str(), d.first.line, d.last.line, d.last.column))
            .collect();
        assert_eq!(found, [("service", 1, 3, 1), ("web", 5, 6, 3)]);
    }

    #[test]
    fn an_anchored_duplicate_is_reported_once_and_merge_overrides_are_not_duplicates() {
        let text = "x: &a {k: 1, k: 2}\ny: *a\nz: *a\nbase: &b {p: 1}\nother:\n  <<: *b\n  p: 2\n";
        let (node, dups) = match parse_with_duplicates(text) {
            Ok(parsed) => parsed,
            Err(e) => panic!("{}", e.message),
        };
        assert_eq!(dups.len(), 1, "{dups:?}");
        assert_eq!(
            node.get("z").and_then(|z| z.get("k")).map(|n| &n.value),
            Some(&Value::Int(2))
        );
        assert_eq!(
            node.get("other").and_then(|o| o.get("p")).map(|n| &n.value),
            Some(&Value::Int(2))
        );
    }
}
