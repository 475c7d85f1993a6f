//! The desired state: the manifest as committed at a revision.

use std::path::Path;

use refinery_core::manifest::MANIFEST_FILES;
use refinery_core::{Issue, LoadOptions, Manifest, ManifestError, load_manifest};
use refinery_git::{CommitInfo, GitSource};

use crate::error::ControllerError;

/// A manifest loaded from a commit.
pub struct Desired {
    pub commit: CommitInfo,
    pub manifest: Manifest,
    pub warnings: Vec<Issue>,
    /// Manifest files whose work-tree copy differs from the commit.
    pub uncommitted: Vec<String>,
    /// Where content-tracked mounts are materialised on this host (see `content.rs`).
    pub content_root: std::path::PathBuf,
}

/// Loads the manifest at `rev` of the repository at `repo`.
pub fn load(repo: &Path, rev: &str) -> Result<Desired, ControllerError> {
    let git = GitSource::open(repo)?;
    let commit = git.resolve(rev)?;
    let mut found = None;
    for name in MANIFEST_FILES {
        if let Some(bytes) = git.read_file(&commit.id, name)? {
            found = Some((name, bytes));
            break;
        }
    }
    let Some((file, bytes)) = found else {
        return Err(ManifestError::NotFound {
            commit: commit.short.clone(),
        }
        .into());
    };
    let source = String::from_utf8(bytes).map_err(|_| ControllerError::NotUtf8 {
        path: file.to_owned(),
        commit: commit.short.clone(),
    })?;
    let base_dir = git
        .workdir()
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
        .map(|p| p.to_string_lossy().into_owned());
    let env = |name: &str| std::env::var(name).ok();
    let loaded = load_manifest(
        file,
        &source,
        &LoadOptions {
            env: &env,
            base_dir,
        },
    )?;
    let mut manifest = loaded.manifest;
    let mut warnings = loaded.warnings;
    crate::registries::use_manifest(&manifest);
    // Age keys for SOPS-encrypted env files and mounted files, read fresh for every load.
    let keys = crate::age_keys::gather(repo, manifest.secrets.sops_age_key_file.as_deref(), &env);
    if !manifest.stacks.is_empty() || !manifest.env_files.is_empty() {
        let read = |path: &str| {
            git.read_file(&commit.id, path)
                .ok()
                .flatten()
                .and_then(|b| String::from_utf8(b).ok())
        };
        refinery_core::manifest::resolve_env_files(&mut manifest, &read, &keys)?;
        if !manifest.stacks.is_empty() {
            let read_tree = |dir: &str| {
                git.read_tree_modes(&commit.id, dir)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(path, (data, executable))| {
                        (path, refinery_core::ContextFile { data, executable })
                    })
                    .collect()
            };
            let checkout = base_dir_of(&git);
            let mut stack_warnings = refinery_core::compose::expand_stacks(
                &mut manifest,
                &refinery_core::compose::StackSource {
                    read: &read,
                    read_tree: &read_tree,
                    env: &env,
                    base_dir: checkout.as_deref(),
                    manifest_file: file,
                    keys: &keys,
                },
            )?;
            warnings.append(&mut stack_warnings);
        }
    }
    let root = crate::content_copies::root(&git);
    warnings.append(&mut crate::content_copies::resolve(
        &git,
        &commit.id,
        &mut manifest,
        &root,
        &keys,
    )?);
    let uncommitted = git.worktree_differs(&commit.id, &[file])?;
    // A daemon holds this for as long as the revision is in force: a fleet declares one spec per
    // container and node (10,000 for 500 nodes of 20), so no spare capacity.
    manifest.containers.shrink_to_fit();
    Ok(Desired {
        commit,
        manifest,
        warnings,
        uncommitted,
        content_root: root,
    })
}

/// Absolute path of the checkout, symlinks resolved.
fn base_dir_of(git: &GitSource) -> Option<String> {
    git.workdir()
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
        .map(|p| p.to_string_lossy().into_owned())
}
