//! The API token commit statuses are written with.

use std::fmt;

/// A forge API token (GitHub/Gitea personal or app token, GitLab access token). Never printed:
/// `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct ForgeToken(String);

impl ForgeToken {
    /// The token from an environment variable's value, trimmed; `None` when blank.
    #[must_use]
    pub fn new(value: &str) -> Option<ForgeToken> {
        let trimmed = value.trim();
        (!trimmed.is_empty()).then(|| ForgeToken(trimmed.to_owned()))
    }

    /// The token itself, for the one header that carries it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ForgeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ForgeToken(***)")
    }
}

impl fmt::Display for ForgeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
