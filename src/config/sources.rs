//! [`Sources`]: the files a configuration was read from, and [`locate`], finding the node at a
//! key path, so that errors can point at a file, line and column.

use std::path::PathBuf;

use super::de::{KeyPath, Segment};
use super::error::Position;
use super::node::{self, Loc, Node};

/// The files read, for turning a node's location into a file position.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Files in load order: base first.
    pub files: Vec<PathBuf>,
    /// What reading them noticed but accepted (keys written twice), for stderr.
    pub warnings: Vec<String>,
}

impl Sources {
    /// The position of `loc`, when it is known.
    pub fn position(&self, loc: Loc) -> Option<Position> {
        let file = self.files.get(loc.file)?;
        Some(Position {
            file: file.clone(),
            line: loc.line,
            column: loc.column,
        })
    }
}

/// The node at `path`, or the deepest node on the way there.
pub fn locate<'a>(tree: &'a Node, path: &KeyPath) -> Option<&'a Node> {
    let mut node = tree;
    for seg in &path.0 {
        let next = match (seg, &node.value) {
            (Segment::Key(k), _) => node.get(k),
            (Segment::Index(i), node::Value::Seq(items)) => items.get(*i),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    Some(node)
}
