//! The desired state at a commit, resolved once: the manifest, its `env_file`s, its compose
//! stacks expanded, and its content-tracked mounts pointed at their copies. Pure: the commit's
//! files come through the [`CommitFiles`] port (the git adapter fills it), the environment and the
//! age keys as functions, and nothing is written anywhere.
//!
//! Each step returns a value the next one reads: the manifest loads; the age keys its `secrets:`
//! points to are gathered; the `env_file`s are read ([`read_env_files`]), and those of
//! `registries:` entries fill in their logins ([`resolve_registries`]); the stacks expand
//! ([`expand_stacks`]); the content-tracked mounts are read ([`content_mounts::resolve`]); the
//! resolved manifest is put together from those values.

pub mod content_mounts;

use std::collections::BTreeMap;
use std::path::Path;

use crate::compose::{ExpandedStacks, StackSource, expand_stacks};
use crate::manifest::{
    EnvFileValues, Issue, LoadOptions, MANIFEST_FILES, Manifest, ManifestError, load_manifest,
    read_env_files, resolve_registries,
};
use crate::sops::AgeKeys;
use crate::spec::ContextFile;

/// The files of one commit, as the desired state reads them.
pub trait CommitFiles {
    /// Why the commit could not be read (not: a file is absent).
    type Error;

    /// The file at `path` (repository-relative, `/`-separated); `None` when the commit has no
    /// file there (a directory, a symlink or a submodule is no file).
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, Self::Error>;

    /// Every file under the directory `dir` (`""` for the whole tree), keyed by its
    /// repository-relative path, with whether git records it as executable; empty when `dir` is
    /// not a directory of the commit.
    fn read_tree(&self, dir: &str) -> Result<BTreeMap<String, ContextFile>, Self::Error>;

    /// The absolute path of the checkout, symlinks resolved; `None` for a bare repository.
    /// Relative bind mounts and compose's working-dir label use it.
    fn checkout_dir(&self) -> Option<String>;
}

/// What the desired state is resolved with, besides the commit's files.
pub struct Inputs<'a> {
    /// The commit's full id (named in warnings about files it does not hold).
    pub commit: &'a str,
    /// The process environment (`${VAR}`, `COMPOSE_*`).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// The age keys SOPS files are decrypted with, given the manifest's
    /// `secrets.sops_age_key_file`.
    pub age_keys: &'a dyn Fn(Option<&str>) -> AgeKeys,
    /// Where the copies of content-tracked mounts live on this host (absolute).
    pub content_root: &'a Path,
}

/// The manifest at a commit with everything it refers to resolved.
#[derive(Debug, Clone)]
pub struct DesiredState {
    /// The manifest file read (one of [`MANIFEST_FILES`]).
    pub file: &'static str,
    /// Every declared container (the stacks' included, `env_file`s merged, content-tracked
    /// mounts pointed at their copies), network and volume.
    pub manifest: Manifest,
    /// Problems that do not stop the revision, file by file.
    pub warnings: Vec<Issue>,
}

/// Why the desired state could not be resolved.
#[derive(Debug)]
pub enum DesiredError<E> {
    /// The manifest, an `env_file`, a stack or a content-tracked file is wrong or missing.
    Manifest(ManifestError),
    /// The manifest file is not UTF-8.
    NotUtf8 { path: &'static str },
    /// The commit could not be read.
    Read(E),
}

impl<E> From<ManifestError> for DesiredError<E> {
    fn from(e: ManifestError) -> Self {
        DesiredError::Manifest(e)
    }
}

/// Resolves the desired state of the commit `files` holds; `short` names the commit when it has
/// no manifest.
pub fn resolve<F: CommitFiles>(
    files: &F,
    short: &str,
    inputs: &Inputs<'_>,
) -> Result<DesiredState, DesiredError<F::Error>> {
    let (file, source) = manifest_file(files, short)?;
    let checkout = files.checkout_dir();
    let loaded = load_manifest(
        file,
        &source,
        &LoadOptions {
            env: inputs.env,
            base_dir: checkout.clone(),
        },
    )?;
    let manifest = loaded.manifest;
    let mut warnings = loaded.warnings;
    let keys = (inputs.age_keys)(manifest.secrets.sops_age_key_file.as_deref());
    // Files the env files and the stacks read: what cannot be read counts as absent.
    let read_text = |path: &str| {
        files
            .read(path)
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8(b).ok())
    };
    let env_values = if manifest.env_files.is_empty() {
        Ok(EnvFileValues::default())
    } else {
        read_env_files(&manifest, &read_text, &keys)
    };
    // The logins of `registries:` entries with `env_file:`; a file or variable that fails stops
    // the load like a container's env file, so the logins in force are never switched to it.
    let registries = if manifest.registry_env.is_empty() {
        Ok(manifest.registries.clone())
    } else {
        resolve_registries(&manifest, &read_text, &keys, inputs.env)
    };
    let (env_values, registries) = both(env_values, registries)?;
    let stacks = if manifest.stacks.is_empty() {
        ExpandedStacks {
            stacks: manifest.stacks.clone(),
            ..ExpandedStacks::default()
        }
    } else {
        let read_tree = |dir: &str| files.read_tree(dir).unwrap_or_default();
        expand_stacks(
            &manifest,
            &StackSource {
                read: &read_text,
                read_tree: &read_tree,
                env: inputs.env,
                base_dir: checkout.as_deref(),
                manifest_file: file,
                keys: &keys,
            },
        )?
    };
    warnings.extend(stacks.warnings);
    let mut containers = env_values.merge_into(manifest.containers);
    containers.extend(stacks.containers);
    let (mut containers, content_warnings) = content_mounts::resolve(
        files,
        inputs.commit,
        &manifest.file,
        containers,
        inputs.content_root,
        &keys,
    )?;
    warnings.extend(content_warnings);
    // A daemon holds this for as long as the revision is in force: a fleet declares one spec per
    // container and node (10,000 for 500 nodes of 20), so no spare capacity.
    containers.shrink_to_fit();
    let mut stack_networks = manifest.stack_networks;
    stack_networks.extend(stacks.networks);
    let mut stack_volumes = manifest.stack_volumes;
    stack_volumes.extend(stacks.volumes);
    Ok(DesiredState {
        file,
        manifest: Manifest {
            containers,
            stacks: stacks.stacks,
            stack_networks,
            stack_volumes,
            registries,
            registry_env: Vec::new(),
            ..manifest
        },
        warnings,
    })
}

/// Both values, or every problem of both.
fn both<A, B>(
    a: Result<A, ManifestError>,
    b: Result<B, ManifestError>,
) -> Result<(A, B), ManifestError> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (
            Err(ManifestError::Invalid { file, mut issues }),
            Err(ManifestError::Invalid { issues: more, .. }),
        ) => {
            issues.extend(more);
            issues.sort_by_key(|i| (i.line, i.column));
            Err(ManifestError::Invalid { file, issues })
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// The first of [`MANIFEST_FILES`] the commit holds, and its text.
fn manifest_file<F: CommitFiles>(
    files: &F,
    short: &str,
) -> Result<(&'static str, String), DesiredError<F::Error>> {
    for name in MANIFEST_FILES {
        if let Some(bytes) = files.read(name).map_err(DesiredError::Read)? {
            let text =
                String::from_utf8(bytes).map_err(|_| DesiredError::NotUtf8 { path: name })?;
            return Ok((name, text));
        }
    }
    Err(ManifestError::NotFound {
        commit: short.to_owned(),
    }
    .into())
}

#[cfg(test)]
mod tests;
