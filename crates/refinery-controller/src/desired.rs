//! The desired state at a revision of the repository: the commit, and the manifest resolved by
//! core ([`refinery_core::desired_state::resolve`]) from the commit's files, this process's
//! environment and the age keys found on this host.

use std::path::Path;

use refinery_core::desired_state::{self, DesiredError, Inputs};
use refinery_core::{Issue, Manifest};
use refinery_git::{CommitInfo, GitSource};

use crate::error::ControllerError;

/// A manifest resolved at a commit.
pub struct Desired {
    pub commit: CommitInfo,
    pub manifest: Manifest,
    pub warnings: Vec<Issue>,
    /// Manifest files whose work-tree copy differs from the commit.
    pub uncommitted: Vec<String>,
    /// Where content-tracked mounts are materialised on this host (see `content_copies.rs`).
    pub content_root: std::path::PathBuf,
}

/// Resolves the desired state at `rev` of the repository at `repo`. Nothing else changes: the
/// registry logins pulls send are the caller's to switch ([`crate::registries::use_manifest`]).
pub fn load(repo: &Path, rev: &str) -> Result<Desired, ControllerError> {
    let git = GitSource::open(repo)?;
    let commit = git.resolve(rev)?;
    let env = |name: &str| std::env::var(name).ok();
    // Age keys for SOPS-encrypted env files and mounted files, read fresh for every load.
    let age_keys = |key_file: Option<&str>| crate::age_keys::gather(repo, key_file, &env);
    let content_root = crate::content_copies::root(&git);
    let state = desired_state::resolve(
        &git.commit_files(&commit.id),
        &commit.short,
        &Inputs {
            commit: &commit.id,
            env: &env,
            age_keys: &age_keys,
            content_root: &content_root,
        },
    )
    .map_err(|e| match e {
        DesiredError::Manifest(e) => ControllerError::Manifest(e),
        DesiredError::NotUtf8 { path } => ControllerError::NotUtf8 {
            path: path.to_owned(),
            commit: commit.short.clone(),
        },
        DesiredError::Read(e) => ControllerError::Git(e),
    })?;
    let uncommitted = git.worktree_differs(&commit.id, &[state.file])?;
    Ok(Desired {
        commit,
        manifest: state.manifest,
        warnings: state.warnings,
        uncommitted,
        content_root,
    })
}
