//! `env_file:` on a container: files in the repository whose `KEY=value` lines (or SOPS-encrypted
//! values) join the container's environment, under its own `env:`. Read from the commit after
//! the manifest loads, since a SOPS file needs the age keys the manifest's `secrets:` points to.
//! A `registries:` entry's `env_file` is read the same way ([`read_env_file`]; see
//! `registry_env.rs`).

use std::collections::BTreeMap;

use super::reader::Reader;
use super::{Issue, Manifest, ManifestError};
use crate::secret::Secret;
use crate::sops::{AgeKeys, env_file_values};
use crate::spec::ContainerSpec;
use crate::yaml::{Loc, Node};

/// One `env_file` entry of one declared container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFileRef {
    pub node: String,
    pub container: String,
    /// Repository-relative path.
    pub path: String,
    pub loc: Loc,
    /// `containers[0].env_file[1]`.
    pub field: String,
}

/// The entries of `env_file:` (one path or a list), repository-relative.
pub(super) fn read_refs(r: &mut Reader<'_>, node: &Node, path: &str) -> Vec<EnvFileRef> {
    let mut out = Vec::new();
    for item in r.strings_at(node, path).unwrap_or_default() {
        let rel = item.value.trim_start_matches("./").to_owned();
        if rel.is_empty() || item.value.starts_with('/') || rel.split('/').any(|seg| seg == "..") {
            r.error_hint(
                item.loc,
                &item.field,
                format!("`{}` is not a file in the repository", item.value),
                "give a path relative to the repository root, like `secrets/api.enc.env`",
            );
            continue;
        }
        out.push(EnvFileRef {
            node: String::new(),
            container: String::new(),
            path: rel,
            loc: item.loc,
            field: item.field,
        });
    }
    out
}

/// What the `env_file`s of each declared container hold: (node, container) → variables, later
/// files over earlier ones. Merged under the containers' own `env:` by [`EnvFileValues::merge_into`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvFileValues(BTreeMap<(String, String), BTreeMap<String, Secret>>);

impl EnvFileValues {
    /// Joins each container's variables to its environment, under its own `env:`.
    #[must_use]
    pub fn merge_into(mut self, mut containers: Vec<ContainerSpec>) -> Vec<ContainerSpec> {
        for c in &mut containers {
            if let Some(vars) = self.0.remove(&(c.node.clone(), c.name.clone())) {
                for (k, v) in vars {
                    c.env.entry(k).or_insert(v);
                }
            }
        }
        containers
    }
}

/// Reads every container's `env_file`s with `read` (from the commit), decrypting SOPS files with
/// `keys`. Every file that cannot be read or decrypted is an error at its `env_file` entry.
pub fn read_env_files(
    manifest: &Manifest,
    read: &dyn Fn(&str) -> Option<String>,
    keys: &AgeKeys,
) -> Result<EnvFileValues, ManifestError> {
    let mut issues = Vec::new();
    let mut per_container: BTreeMap<(String, String), BTreeMap<String, Secret>> = BTreeMap::new();
    // Each file once, even when it serves several nodes.
    let mut cache: BTreeMap<String, Option<BTreeMap<String, Secret>>> = BTreeMap::new();
    for f in &manifest.env_files {
        let vars = cache.entry(f.path.clone()).or_insert_with(|| {
            match read_env_file(&manifest.file, f, read, keys) {
                Ok(v) => Some(v),
                Err(i) => {
                    issues.push(i);
                    None
                }
            }
        });
        if let Some(vars) = vars {
            per_container
                .entry((f.node.clone(), f.container.clone()))
                .or_default()
                .extend(vars.clone());
        }
    }
    if !issues.is_empty() {
        issues.dedup();
        return Err(ManifestError::Invalid {
            file: manifest.file.clone(),
            issues,
        });
    }
    Ok(EnvFileValues(per_container))
}

/// The variables of one `env_file` entry of the manifest `file`, read with `read` (from the
/// commit) and decrypted with `keys` when SOPS; a file that cannot be read or decrypted is an
/// issue at the entry, with its hint.
pub(super) fn read_env_file(
    file: &str,
    f: &EnvFileRef,
    read: &dyn Fn(&str) -> Option<String>,
    keys: &AgeKeys,
) -> Result<BTreeMap<String, Secret>, Issue> {
    let issue = |message: String| Issue::new(file, f.loc, &f.field, message);
    let Some(text) = read(&f.path) else {
        return Err(issue(format!(
            "failed to find env file `{}` in the commit",
            f.path
        ))
        .with_hint("commit the file, or fix the path (relative to the repository root)"));
    };
    env_file_values(&f.path, &text, keys).map_err(|e| {
        let i = issue(e.message(&f.path));
        match e.hint() {
            Some(h) => i.with_hint(h),
            None => i,
        }
    })
}
