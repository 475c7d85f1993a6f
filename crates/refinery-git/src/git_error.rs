use std::path::PathBuf;

/// Everything that can go wrong at the git boundary.
///
/// Messages are lowercase `failed to …` with names in backticks; the cause, when there is one, is the
/// [`source`](std::error::Error::source) and is not repeated in the message. Hints are data: see
/// [`GitError::hints`].
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The path holds no git repository (neither a `.git` directory below it nor a bare repository).
    #[error("failed to find a git repository at `{}`", path.display())]
    NotARepo {
        path: PathBuf,
        #[source]
        source: gix::Error,
    },

    /// The path looks like a repository but could not be opened (permissions, broken config, …).
    #[error("failed to open the git repository at `{}`", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: gix::Error,
    },

    /// `HEAD` points to a branch that has no commit yet (a fresh `git init`).
    #[error("failed to resolve `{rev}`: branch `{branch}` has no commits yet")]
    UnbornHead { rev: String, branch: String },

    /// The revision does not name anything in the repository (or is ambiguous, see the source).
    #[error("failed to resolve revision `{rev}`")]
    RevNotFound {
        rev: String,
        #[source]
        source: gix::Error,
    },

    /// The revision names an object that is not a commit and does not peel to one (a tree or a blob).
    #[error("failed to resolve `{rev}` to a commit")]
    NotACommit {
        rev: String,
        #[source]
        source: gix::Error,
    },

    /// A repository path is not a plain relative `/`-separated path.
    #[error("failed to use `{path}` as a path in the repository: {reason}")]
    InvalidPath { path: String, reason: &'static str },

    /// The reference name is not a valid full reference name below `refs/`.
    #[error("failed to use `{refname}` as a reference name")]
    InvalidRef {
        refname: String,
        #[source]
        source: Option<gix::Error>,
    },

    /// The ledger ref must point to a commit directly, not to another ref.
    #[error("failed to commit to `{refname}`: it is a symbolic reference")]
    SymbolicRef { refname: String },

    /// Writing to the branch that is checked out would change the work tree under the user's feet.
    #[error("failed to commit to `{refname}`: it is the checked-out branch")]
    RefCheckedOut { refname: String },

    /// The reference moved between reading its tip and updating it (compare-and-swap failed).
    #[error("failed to update `{refname}`: it moved since it was read")]
    RefMoved {
        refname: String,
        /// The tip this update was built on (`None`: the reference did not exist).
        expected: Option<String>,
        #[source]
        source: gix::Error,
    },

    /// Another process holds the reference's lock file. Retryable.
    #[error("failed to lock `{refname}`")]
    Locked {
        refname: String,
        lock_file: PathBuf,
        #[source]
        source: gix::Error,
    },

    /// Reading objects or references failed.
    #[error("failed to read {what}")]
    Read {
        what: String,
        #[source]
        source: gix::Error,
    },

    /// Writing objects or references failed.
    #[error("failed to write {what}")]
    Write {
        what: String,
        #[source]
        source: gix::Error,
    },

    /// Reading a file of the work tree failed (other than it being absent).
    #[error("failed to read work tree file `{}`", path.display())]
    Worktree {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Results at the git boundary.
pub type Result<T, E = GitError> = std::result::Result<T, E>;

impl GitError {
    /// What the user can do about it, one line each (printed as `hint: …`).
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            GitError::NotARepo { path, .. } => vec![format!(
                "run `git init` in `{}`, or pass --repo PATH",
                path.display()
            )],
            GitError::Open { .. } => {
                vec!["check that the repository's files are readable by this user".to_owned()]
            }
            GitError::UnbornHead { .. } => vec![
                "commit the manifests first, e.g. `git add refinery.yaml && git commit -m 'desired state'`"
                    .to_owned(),
            ],
            GitError::RevNotFound { .. } => vec![
                "pass a branch, a tag, a commit id (at least 4 hex digits) or `HEAD~N`; list them with `git log --oneline --all`"
                    .to_owned(),
            ],
            GitError::NotACommit { .. } => {
                vec!["pass a branch, a tag or a commit id, not a tree or a file".to_owned()]
            }
            GitError::InvalidPath { .. } => vec![
                "use a path relative to the repository root, separated by `/`, without `..`"
                    .to_owned(),
            ],
            GitError::InvalidRef { .. } => {
                vec!["use a full reference name such as `refs/heads/refinery/ledger`".to_owned()]
            }
            GitError::SymbolicRef { refname } => vec![format!(
                "point `{refname}` at a commit, or choose another ref such as `refs/heads/refinery/ledger`"
            )],
            GitError::RefCheckedOut { .. } => vec![
                "choose a ref that is not checked out, such as `refs/heads/refinery/ledger`"
                    .to_owned(),
            ],
            GitError::RefMoved { .. } => vec![
                "another writer updated the ref first; read its new tip and try again".to_owned(),
            ],
            GitError::Locked { lock_file, .. } => vec![
                "another git process is updating the ref; try again".to_owned(),
                format!(
                    "if no git process is running, delete `{}`",
                    lock_file.display()
                ),
            ],
            GitError::Read { .. } | GitError::Write { .. } => vec![
                "check the repository with `git fsck` and the disk for free space".to_owned(),
            ],
            GitError::Worktree { .. } => {
                vec!["check that the work tree's files are readable by this user".to_owned()]
            }
        }
    }

    /// Trying the same thing again later may succeed without anything else changing.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, GitError::Locked { .. })
    }

    /// The state changed under us: re-read and rebuild before trying again.
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        matches!(self, GitError::RefMoved { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_every_variant_has_at_least_one() {
        let err = GitError::RefCheckedOut {
            refname: "refs/heads/main".to_owned(),
        };
        assert_eq!(
            err.to_string(),
            "failed to commit to `refs/heads/main`: it is the checked-out branch"
        );
        assert!(!err.hints().is_empty());
    }
}
