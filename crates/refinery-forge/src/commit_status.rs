//! A commit status: what the daemon says about a commit on the forge.

use std::fmt;

use refinery_core::manifest::Forge;

/// Descriptions are cut to this many characters (GitHub refuses longer ones with 422).
pub const DESCRIPTION_MAX_CHARS: usize = 140;

/// The state of a deploy, as the daemon knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommitState {
    /// The daemon started enforcing the commit.
    Pending,
    /// The commit's revision was judged healthy.
    Success,
    /// It was rolled back, or an action for it failed.
    Failure,
}

impl CommitState {
    /// The word `forge`'s API takes: GitLab says `failed`, the others `failure`.
    #[must_use]
    pub fn wire(self, forge: Forge) -> &'static str {
        match (self, forge) {
            (CommitState::Pending, _) => "pending",
            (CommitState::Success, _) => "success",
            (CommitState::Failure, Forge::Gitlab) => "failed",
            (CommitState::Failure, Forge::Github | Forge::Gitea) => "failure",
        }
    }
}

impl fmt::Display for CommitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CommitState::Pending => "pending",
            CommitState::Success => "success",
            CommitState::Failure => "failure",
        })
    }
}

/// A status to put on a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    /// The full commit id (lower-case hex).
    pub sha: String,
    pub state: CommitState,
    /// What happened, at most [`DESCRIPTION_MAX_CHARS`] characters.
    pub description: String,
    /// A link to more (the daemon's status page), when it has a public URL.
    pub target_url: Option<String>,
    /// Which daemon says it: `refinery/<host or shard>`. One status per context per commit: a
    /// later one replaces an earlier one with the same context.
    pub context: String,
}

/// A commit status that cannot be built or sent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StatusError {
    /// Not a full hex commit id: it would name some other path of the forge's API.
    #[error("failed to use `{sha}` as a commit id for a commit status")]
    InvalidSha { sha: String },

    /// `commit_status.token_env` names a variable the daemon does not have.
    #[error("failed to read the forge token: `{var}` is not set")]
    MissingToken { var: String },
}

impl StatusError {
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            StatusError::InvalidSha { .. } => Vec::new(),
            StatusError::MissingToken { var } => vec![format!(
                "export `{var}` with a token that may write commit statuses to the daemon's environment, or set `commit_status.token_env`"
            )],
        }
    }
}

impl CommitStatus {
    /// A status for the full commit id `sha`; `description` is cut to
    /// [`DESCRIPTION_MAX_CHARS`] (ending in `…`).
    pub fn new(
        sha: &str,
        state: CommitState,
        description: &str,
        context: &str,
    ) -> Result<CommitStatus, StatusError> {
        if !matches!(sha.len(), 40 | 64) || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StatusError::InvalidSha {
                sha: sha.chars().take(80).collect(),
            });
        }
        Ok(CommitStatus {
            sha: sha.to_ascii_lowercase(),
            state,
            description: truncate(description, DESCRIPTION_MAX_CHARS),
            target_url: None,
            context: context.to_owned(),
        })
    }

    /// With a link to more.
    #[must_use]
    pub fn with_target_url(mut self, url: impl Into<String>) -> CommitStatus {
        self.target_url = Some(url.into());
        self
    }
}

fn truncate(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn commit_state_gitlab_says_failed() {
        assert_eq!(CommitState::Failure.wire(Forge::Gitlab), "failed");
        assert_eq!(CommitState::Failure.wire(Forge::Github), "failure");
        assert_eq!(CommitState::Failure.wire(Forge::Gitea), "failure");
        assert_eq!(CommitState::Pending.wire(Forge::Gitlab), "pending");
        assert_eq!(CommitState::Success.wire(Forge::Gitea), "success");
    }

    #[test]
    fn commit_status_long_description_is_cut_at_140_chars() {
        let long = "é".repeat(300);
        let s = CommitStatus::new(SHA, CommitState::Pending, &long, "refinery/a").expect("ok");
        assert_eq!(s.description.chars().count(), DESCRIPTION_MAX_CHARS);
        assert!(s.description.ends_with('…'));
        let short = CommitStatus::new(SHA, CommitState::Pending, " deploying ", "c").expect("ok");
        assert_eq!(short.description, "deploying");
    }

    #[test]
    fn commit_status_sha_must_be_a_full_hex_id() {
        for bad in ["", "abc", "../../../user", &"g".repeat(40)] {
            assert!(
                CommitStatus::new(bad, CommitState::Success, "", "c").is_err(),
                "{bad}"
            );
        }
        let upper = SHA.to_ascii_uppercase();
        let s = CommitStatus::new(&upper, CommitState::Success, "", "c").expect("ok");
        assert_eq!(s.sha, SHA);
    }
}
