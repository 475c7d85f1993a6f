//! `env_file:` on a container: files in the repository whose `KEY=value` lines (or SOPS-encrypted
//! values) join the container's environment, under its own `env:`. Read from the commit after
//! the manifest loads, since a SOPS file needs the age keys the manifest's `secrets:` points to.

use std::collections::BTreeMap;

use super::reader::Reader;
use super::{Issue, Manifest, ManifestError};
use crate::secret::Secret;
use crate::sops::{AgeKeys, env_file_values};
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

/// Reads every container's `env_file`s with `read` (from the commit), decrypting SOPS files with
/// `keys`, and merges them into the containers' environments: later files over earlier ones,
/// `env:` over all. Nothing changes unless every file reads.
pub fn resolve_env_files(
    manifest: &mut Manifest,
    read: &dyn Fn(&str) -> Option<String>,
    keys: &AgeKeys,
) -> Result<(), ManifestError> {
    let mut issues = Vec::new();
    let mut per_container: BTreeMap<(String, String), BTreeMap<String, Secret>> = BTreeMap::new();
    // Each file once, even when it serves several nodes.
    let mut cache: BTreeMap<String, Option<BTreeMap<String, Secret>>> = BTreeMap::new();
    for f in &manifest.env_files {
        let vars = cache.entry(f.path.clone()).or_insert_with(|| {
            let issue = |message: String| Issue::new(&manifest.file, f.loc, &f.field, message);
            match read(&f.path) {
                None => {
                    issues.push(
                        issue(format!(
                            "failed to find env file `{}` in the commit",
                            f.path
                        ))
                        .with_hint(
                            "commit the file, or fix the path (relative to the repository root)",
                        ),
                    );
                    None
                }
                Some(text) => match env_file_values(&f.path, &text, keys) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        let mut i = issue(e.message(&f.path));
                        if let Some(h) = e.hint() {
                            i = i.with_hint(h);
                        }
                        issues.push(i);
                        None
                    }
                },
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
    for c in &mut manifest.containers {
        if let Some(vars) = per_container.remove(&(c.node.clone(), c.name.clone())) {
            for (k, v) in vars {
                c.env.entry(k).or_insert(v);
            }
        }
    }
    Ok(())
}
