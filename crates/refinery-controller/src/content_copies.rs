//! Content-tracked mounts on this host: where the copies of the committed files live (core's
//! desired state points each mount at its copy, see
//! `refinery_core::desired_state::content_mounts`), and the digests of the copies containers
//! mount, read back for the diff.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use refinery_core::content::{LABEL_DIGEST, materialised_rel_path};
use refinery_core::{Manifest, MountKind, Observed, Outcome, ResourceId};
use refinery_git::GitSource;

/// Where materialised copies live: `REFINERY_CONTENT_DIR`, else `refinery/content/` in the git
/// directory (never in the work tree). Absolute, since the engine mounts it.
#[must_use]
pub fn root(git: &GitSource) -> PathBuf {
    let dir = std::env::var_os("REFINERY_CONTENT_DIR")
        .filter(|v| !v.is_empty())
        .map_or_else(
            || git.git_dir().join("refinery").join("content"),
            PathBuf::from,
        );
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    std::fs::canonicalize(&dir).unwrap_or(dir)
}

/// Fills [`refinery_core::ObservedContainer::content`] for the declared containers of `node`
/// whose copies this host can read: a container Refinery made with content (its labels say so),
/// on an engine of this host. Elsewhere the diff reads the digests from the labels.
pub fn observe_copies(manifest: &Manifest, node: &str, observed: &mut Observed, local: bool) {
    if !local {
        return;
    }
    for spec in manifest
        .containers
        .iter()
        .filter(|s| s.node == node && !s.content.is_empty())
    {
        let Some(o) = observed.containers.iter_mut().find(|c| c.name == spec.name) else {
            continue;
        };
        if !o.labels.contains_key(LABEL_DIGEST) {
            continue;
        }
        let mut seen = BTreeMap::new();
        let recorded = refinery_core::content::digests_from_labels(&o.labels);
        for cm in &spec.content {
            // An env file is not on the host: its digest is the one the container was made with.
            if cm.is_env_file() {
                seen.extend(
                    recorded
                        .iter()
                        .filter(|(p, _)| **p == cm.repo_path)
                        .map(|(p, d)| (p.clone(), d.clone())),
                );
                continue;
            }
            let Some(m) = o
                .mounts
                .iter()
                .find(|m| m.target == cm.target && m.kind == MountKind::Bind)
            else {
                continue;
            };
            if let Some(files) = refinery_docker::content_files::read_copy(Path::new(&m.source), cm)
            {
                seen.extend(files);
            }
        }
        o.content = Some(seen);
    }
}

/// Whether an engine endpoint is on this host (its bind sources are this host's paths).
#[must_use]
pub fn is_local(endpoint: &str) -> bool {
    endpoint.starts_with("unix://") || endpoint.starts_with('/')
}

/// The copies still needed after a pass, as paths below the content root: every bind source of
/// the containers observed on `nodes` (a container this pass replaced or removed no longer counts;
/// a failed attempt keeps the old one), the copies of the containers it created or replaced, and
/// every copy of `manifest` holding no decrypted secret (kept warm for the next create). A
/// secret's clear copy is needed only while a container mounts it.
#[must_use]
pub fn needed(
    manifest: &Manifest,
    root: &Path,
    nodes: &[NodeMounts],
    acted: &[(ResourceId, Outcome)],
) -> BTreeSet<PathBuf> {
    let gone = |node: &str, name: &str| {
        acted.iter().any(|(id, o)| {
            id.node() == node
                && id.name() == name
                && matches!(
                    o,
                    Outcome::Recreated | Outcome::RolledBack | Outcome::Removed
                )
        })
    };
    let mut keep = BTreeSet::new();
    for n in nodes {
        for (name, binds) in &n.containers {
            if !gone(&n.node, name) {
                keep.extend(binds.iter().cloned());
            }
        }
    }
    for spec in &manifest.containers {
        let made = acted.iter().any(|(id, o)| {
            id.node() == spec.node && id.name() == spec.name && *o != Outcome::Removed
        });
        for cm in spec.content.iter().filter(|cm| !cm.is_env_file()) {
            let secret = cm.files.values().any(|f| f.secret);
            if made || !secret {
                keep.insert(root.join(materialised_rel_path(&spec.name, cm)));
            }
        }
    }
    keep
}

/// The bind-mount sources of each container of one node: all that content collection needs of
/// an observation (kept after the observation itself is gone).
#[derive(Debug, Clone)]
pub struct NodeMounts {
    pub node: String,
    /// Container name → its bind sources.
    pub containers: Vec<(String, Vec<PathBuf>)>,
}

impl NodeMounts {
    #[must_use]
    pub fn of(node: &str, observed: &Observed) -> NodeMounts {
        NodeMounts {
            node: node.to_owned(),
            containers: observed
                .containers
                .iter()
                .map(|c| {
                    let binds = c
                        .mounts
                        .iter()
                        .filter(|m| m.kind == MountKind::Bind)
                        .map(|m| PathBuf::from(&m.source))
                        .collect();
                    (c.name.clone(), binds)
                })
                .collect(),
        }
    }
}

/// After a pass that saw `nodes` (every node; `None` when one was not seen, then nothing is
/// removed): removes the copies under `root` that [`needed`] does not keep and returns them.
pub fn collect_after(
    manifest: &Manifest,
    root: &Path,
    nodes: Option<&[NodeMounts]>,
    acted: &[(ResourceId, Outcome)],
) -> Option<std::io::Result<Vec<PathBuf>>> {
    Some(collect_garbage(
        root,
        &needed(manifest, root, nodes?, acted),
    ))
}

/// Removes every copy below `root` (`<container>/<16 hex digits>/`) no path of `needed` lies in,
/// then the container folders left empty; returns the copies removed. Nothing else is touched.
pub fn collect_garbage(root: &Path, needed: &BTreeSet<PathBuf>) -> std::io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let containers = match std::fs::read_dir(root) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(e),
    };
    for container in containers.filter_map(Result::ok) {
        let dir = container.path();
        if !container.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        for copy in std::fs::read_dir(&dir)?.filter_map(Result::ok) {
            let path = copy.path();
            let is_copy = copy.file_type().is_ok_and(|t| t.is_dir())
                && copy
                    .file_name()
                    .to_str()
                    .is_some_and(|n| n.len() == 16 && n.bytes().all(|b| b.is_ascii_hexdigit()));
            if !is_copy || needed.iter().any(|p| p.starts_with(&path)) {
                continue;
            }
            std::fs::remove_dir_all(&path)?;
            removed.push(path);
        }
        // Only an empty folder goes.
        let _ = std::fs::remove_dir(&dir);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collect_garbage_keeps_needed_copies_and_removes_the_rest() {
        let root = tempfile::tempdir().expect("temp dir");
        let r = root.path();
        let kept = r.join("web/0123456789abcdef/conf");
        let old = r.join("web/fedcba9876543210/conf");
        let gone = r.join("old/00000000000000aa/app.yaml");
        let other = r.join("web/not-a-copy/x");
        for p in [&kept, &old, &gone, &other] {
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, b"x").expect("write");
        }
        let needed = BTreeSet::from([kept.clone()]);
        let mut removed = collect_garbage(r, &needed).expect("gc");
        removed.sort();
        assert_eq!(
            removed,
            vec![
                r.join("old/00000000000000aa"),
                r.join("web/fedcba9876543210")
            ]
        );
        assert!(kept.exists() && other.exists());
        assert!(!r.join("old").exists());
        assert!(
            collect_garbage(&r.join("missing"), &needed)
                .expect("gc")
                .is_empty()
        );
    }
}
