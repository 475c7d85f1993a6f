//! Repository-relative paths: `/`-separated, relative to the root of the tree.

use crate::git_error::{GitError, Result};

/// The components of `path`, with empty and `.` components dropped (so `""`, `"."` and `"/"` are
/// the root). `..`, `.git` and NUL bytes are refused: they cannot name anything inside a tree.
pub(crate) fn components(path: &str) -> Result<Vec<&str>> {
    let invalid = |reason| GitError::InvalidPath {
        path: path.to_owned(),
        reason,
    };
    if path.contains('\0') {
        return Err(invalid("it contains a NUL byte"));
    }
    let mut out = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err(invalid("`..` leaves the repository")),
            c if c.eq_ignore_ascii_case(".git") => {
                return Err(invalid("`.git` is not part of any commit"));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// `path` in canonical form (`a/b`), or an error when it is the root.
pub(crate) fn file_path(path: &str) -> Result<String> {
    let parts = components(path)?;
    if parts.is_empty() {
        return Err(GitError::InvalidPath {
            path: path.to_owned(),
            reason: "it names the root, not a file",
        });
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_plain_and_sloppy_paths_normalize() {
        assert_eq!(components("").ok(), Some(vec![]));
        assert_eq!(components("./").ok(), Some(vec![]));
        assert_eq!(components("a/b").ok(), Some(vec!["a", "b"]));
        assert_eq!(components("/a//./b/").ok(), Some(vec!["a", "b"]));
    }

    #[test]
    fn components_parent_or_git_dir_is_refused() {
        assert!(components("a/../b").is_err());
        assert!(components(".git/config").is_err());
        assert!(components("a/.GIT").is_err());
        assert!(file_path("/").is_err());
    }
}
