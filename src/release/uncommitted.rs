//! The `_uncommitted_` suffix: a digest of the content of the uncommitted change, tracked
//! ([`uncommitted_digest`]) and untracked ([`UntrackedContent`]).
//!
//! Kamal appends 16 *random* hex characters, so every process computes a different version (see
//! the reference, §4.3). Here the 16 hex characters are the start of a SHA-256 over the content
//! of the change (see [`uncommitted_digest`]): the same tree gives the same version in any
//! process, and any edit gives another. Nothing here is random or time-dependent except
//! `recorded_at`.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::error::ReleaseError;

/// What an untracked path holds, as far as the `_uncommitted_` digest is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UntrackedContent {
    /// A regular file: the SHA-256 of its bytes.
    File([u8; 32]),
    /// A symbolic link: its target.
    Symlink(Vec<u8>),
    /// A directory (git lists a nested repository as `dir/`).
    Directory,
    /// Gone between listing and reading.
    Missing,
}

impl UntrackedContent {
    /// The content of a regular file given as bytes.
    pub fn file(bytes: &[u8]) -> UntrackedContent {
        UntrackedContent::File(Sha256::digest(bytes).into())
    }
}

/// Reads one untracked path without following symbolic links; regular files are streamed into
/// the hash, so large files are not held in memory.
pub(super) fn read_untracked(path: &Path) -> Result<UntrackedContent, ReleaseError> {
    let read_error = |source| ReleaseError::ReadUntracked {
        path: path.to_owned(),
        source,
    };
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(UntrackedContent::Missing),
        Err(err) => return Err(read_error(err)),
    };
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path).map_err(read_error)?;
        Ok(UntrackedContent::Symlink(
            target.as_os_str().as_bytes().to_vec(),
        ))
    } else if meta.is_dir() {
        Ok(UntrackedContent::Directory)
    } else {
        let mut file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Ok(UntrackedContent::Missing)
            }
            Err(err) => return Err(read_error(err)),
        };
        let mut hasher = Sha256::new();
        io::copy(&mut file, &mut hasher).map_err(read_error)?;
        Ok(UntrackedContent::File(hasher.finalize().into()))
    }
}

/// The 16 hex characters of the `_uncommitted_` suffix: the start of a SHA-256 over
///
/// - a format label (`dray-uncommitted-v1`), so a future change of the inputs cannot collide;
/// - the tracked change, `git diff HEAD --binary` (staged and unstaged), length-prefixed;
/// - the number of untracked, non-ignored paths, then for each, sorted by its bytes: the
///   length-prefixed path (relative to the repository root) and a kind byte followed by the
///   content's SHA-256 (file), the length-prefixed target (symbolic link) or nothing
///   (directory, missing).
///
/// Lengths are 8-byte little-endian. The result depends on nothing but these bytes.
pub fn uncommitted_digest(diff: &[u8], mut untracked: Vec<(Vec<u8>, UntrackedContent)>) -> String {
    fn framed(hasher: &mut Sha256, bytes: &[u8]) {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    untracked.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hasher = Sha256::new();
    framed(&mut hasher, b"dray-uncommitted-v1");
    framed(&mut hasher, diff);
    hasher.update((untracked.len() as u64).to_le_bytes());
    for (path, content) in &untracked {
        framed(&mut hasher, path);
        match content {
            UntrackedContent::File(digest) => {
                hasher.update([0]);
                hasher.update(digest);
            }
            UntrackedContent::Symlink(target) => {
                hasher.update([1]);
                framed(&mut hasher, target);
            }
            UntrackedContent::Directory => hasher.update([2]),
            UntrackedContent::Missing => hasher.update([3]),
        }
    }
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_deterministic_and_order_independent() {
        let a = (b"a.txt".to_vec(), UntrackedContent::file(b"one"));
        let b = (b"b.txt".to_vec(), UntrackedContent::file(b"two"));
        let first = uncommitted_digest(b"diff", vec![a.clone(), b.clone()]);
        assert_eq!(first.len(), 16);
        assert!(first
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(
            first,
            uncommitted_digest(b"diff", vec![b.clone(), a.clone()])
        );
        // Every input matters.
        assert_ne!(
            first,
            uncommitted_digest(b"diff2", vec![a.clone(), b.clone()])
        );
        assert_ne!(first, uncommitted_digest(b"diff", vec![a.clone()]));
        let b_edited = (b"b.txt".to_vec(), UntrackedContent::file(b"two!"));
        assert_ne!(
            first,
            uncommitted_digest(b"diff", vec![a.clone(), b_edited])
        );
        let b_moved = (b"c.txt".to_vec(), UntrackedContent::file(b"two"));
        assert_ne!(first, uncommitted_digest(b"diff", vec![a, b_moved]));
        // Framing: moving bytes between the path and the diff changes the digest.
        let x = (b"ab".to_vec(), UntrackedContent::Directory);
        let y = (b"b".to_vec(), UntrackedContent::Directory);
        assert_ne!(
            uncommitted_digest(b"", vec![x]),
            uncommitted_digest(b"a", vec![y])
        );
        // A symlink is not a file with the same bytes.
        assert_ne!(
            uncommitted_digest(
                b"",
                vec![(b"l".to_vec(), UntrackedContent::Symlink(b"t".to_vec()))]
            ),
            uncommitted_digest(b"", vec![(b"l".to_vec(), UntrackedContent::file(b"t"))])
        );
    }
}
