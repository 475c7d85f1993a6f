//! The ref a push moved.

use std::fmt;

/// A pushed ref, by kind: a push webhook names it in full (`refs/heads/main`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GitRef {
    /// `refs/heads/<name>`.
    Branch(String),
    /// `refs/tags/<name>`.
    Tag(String),
    /// Anything else (`refs/notes/commits`, `refs/merge-requests/1/head`), in full.
    Other(String),
}

impl GitRef {
    /// Classifies a full ref name.
    #[must_use]
    pub fn from_full(name: &str) -> GitRef {
        if let Some(branch) = name.strip_prefix("refs/heads/") {
            GitRef::Branch(branch.to_owned())
        } else if let Some(tag) = name.strip_prefix("refs/tags/") {
            GitRef::Tag(tag.to_owned())
        } else {
            GitRef::Other(name.to_owned())
        }
    }

    /// The full ref name (`refs/heads/main`).
    #[must_use]
    pub fn full(&self) -> String {
        match self {
            GitRef::Branch(b) => format!("refs/heads/{b}"),
            GitRef::Tag(t) => format!("refs/tags/{t}"),
            GitRef::Other(o) => o.clone(),
        }
    }
}

impl fmt::Display for GitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_ref_classifies_and_round_trips() {
        for (full, want) in [
            ("refs/heads/main", GitRef::Branch("main".into())),
            ("refs/heads/feature/x", GitRef::Branch("feature/x".into())),
            ("refs/tags/v1.2.0", GitRef::Tag("v1.2.0".into())),
            (
                "refs/notes/commits",
                GitRef::Other("refs/notes/commits".into()),
            ),
            ("main", GitRef::Other("main".into())),
        ] {
            let got = GitRef::from_full(full);
            assert_eq!(got, want, "{full}");
            assert_eq!(got.full(), full);
        }
    }
}
