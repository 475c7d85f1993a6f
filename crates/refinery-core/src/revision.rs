//! A revision: the commit a desired state was loaded from, and its one short form.

use serde::{Deserialize, Serialize};

/// How many hex digits the short form of a commit id keeps, everywhere it is printed (logs,
/// alerts, the ledger's commit messages, commit statuses).
pub const SHORT_ID_LEN: usize = 12;

/// The short form of a commit id: its first [`SHORT_ID_LEN`] characters (all of a shorter one).
#[must_use]
pub fn short_id(id: &str) -> &str {
    id.char_indices()
        .nth(SHORT_ID_LEN)
        .map_or(id, |(end, _)| &id[..end])
}

/// A full commit id, as the ledger and the state file hold it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Revision(String);

impl Revision {
    #[must_use]
    pub fn new(id: impl Into<String>) -> Revision {
        Revision(id.into())
    }

    /// The full id.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The short form, as printed (see [`short_id`]).
    #[must_use]
    pub fn short(&self) -> &str {
        short_id(&self.0)
    }
}

impl std::fmt::Display for Revision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Revision {
    fn from(id: String) -> Revision {
        Revision(id)
    }
}

impl AsRef<str> for Revision {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_id_keeps_twelve_characters_or_all_of_a_shorter_id() {
        assert_eq!(short_id("0123456789abcdef0123"), "0123456789ab");
        assert_eq!(short_id("abc"), "abc");
        assert_eq!(short_id(""), "");
        assert_eq!(Revision::new("0123456789abcdef").short(), "0123456789ab");
    }

    #[test]
    fn revision_serializes_as_the_plain_id() {
        let r = Revision::new("0123456789abcdef");
        assert_eq!(
            serde_json::to_string(&r).unwrap_or_default(),
            "\"0123456789abcdef\""
        );
    }
}
