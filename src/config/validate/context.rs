//! What every check shares: [`Ctx`], which turns a key path written as `a.b[2].c` into an
//! error at that key's file position, and the small readers of raw scalars, lists and maps.

use crate::config::de::{KeyPath, Segment};
use crate::config::error::{ConfigError, Position};
use crate::config::model::OptionValue;
use crate::config::node::Node;
use crate::config::raw::{OrderedMap, Scalar};
use crate::config::sources::{locate, Sources};

/// What every check needs to point an error at the offending key.
pub(super) struct Ctx<'a> {
    /// The merged tree, for finding a key's node.
    pub(super) tree: &'a Node,
    /// The files read, for turning a node into a file position.
    pub(super) sources: &'a Sources,
}

impl Ctx<'_> {
    /// An error at the key path written as `a.b[2].c`.
    pub(super) fn err(&self, path: &str, message: impl Into<String>) -> ConfigError {
        let key_path = parse_path(path);
        let position = locate(self.tree, &key_path).and_then(|n| self.sources.position(n.loc));
        ConfigError::new(message)
            .key(path)
            .at(position.or_else(|| self.file_only()))
    }

    /// The first file, without a line: for errors about something missing.
    pub(super) fn file_only(&self) -> Option<Position> {
        self.sources.files.first().map(|f| Position {
            file: f.clone(),
            line: 0,
            column: 0,
        })
    }
}

fn parse_path(path: &str) -> KeyPath {
    let mut segs = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            segs.push(Segment::Key(rest[..open].to_string()));
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let close = stripped.find(']').unwrap_or(stripped.len());
                if let Ok(i) = stripped[..close].parse() {
                    segs.push(Segment::Index(i));
                }
                rest = stripped.get(close + 1..).unwrap_or("");
            }
        } else {
            segs.push(Segment::Key(rest.to_string()));
        }
    }
    KeyPath(segs)
}

/// The text of an optional scalar.
pub(super) fn s(v: &Option<Scalar>) -> Option<String> {
    v.as_ref().map(|s| s.0.clone())
}

/// The texts of an optional list of scalars.
pub(super) fn strings(v: &Option<Vec<Scalar>>) -> Vec<String> {
    v.iter().flatten().map(|s| s.0.clone()).collect()
}

/// The pairs of an optional map of scalars, in file order.
pub(super) fn pairs(v: &Option<OrderedMap<Scalar>>) -> Vec<(String, String)> {
    v.iter()
        .flat_map(|m| m.iter())
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect()
}

/// The pairs of an optional map of Docker options, in file order.
pub(super) fn options(v: &Option<OrderedMap<OptionValue>>) -> Vec<(String, OptionValue)> {
    v.iter()
        .flat_map(|m| m.iter())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_parse() {
        assert_eq!(
            parse_path("servers.web.hosts[1]").to_string(),
            "servers.web.hosts[1]"
        );
    }
}
