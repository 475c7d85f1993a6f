//! Content-tracked mounts on this host: the committed files of every `./path` bind and compose
//! config, read from the commit (never the work tree), and the digests of the copies containers
//! mount, read back for the diff.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use refinery_core::content::{ContentFile, LABEL_DIGEST, materialised_rel_path};
use refinery_core::sops::AgeKeys;
use refinery_core::yaml::Loc;
use refinery_core::{Issue, Manifest, ManifestError, MountKind, Observed};
use refinery_git::GitSource;

use crate::error::CliError;

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

/// Reads every content-tracked mount's files from `commit` and points its bind mount at the copy
/// below `root` (one folder per content digest, so an old and a new version never mix). A path
/// the commit does not hold stays a plain bind of the checkout, with a warning. A SOPS-encrypted
/// file is decrypted with `keys` and its copy holds the clear bytes; one that cannot be decrypted
/// fails the whole load (nothing is recreated).
pub fn resolve(
    git: &GitSource,
    commit: &str,
    manifest: &mut Manifest,
    root: &Path,
    keys: &AgeKeys,
) -> Result<Vec<Issue>, CliError> {
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    let file = manifest.file.clone();
    for spec in &mut manifest.containers {
        let mut kept = Vec::new();
        for mut cm in std::mem::take(&mut spec.content) {
            let single = if cm.repo_path.is_empty() {
                None
            } else {
                git.read_file(commit, &cm.repo_path)?
            };
            if let Some(bytes) = single {
                cm.dir = false;
                cm.files = BTreeMap::from([(String::new(), ContentFile::new(bytes))]);
            } else {
                let prefix = if cm.repo_path.is_empty() {
                    String::new()
                } else {
                    format!("{}/", cm.repo_path)
                };
                cm.dir = true;
                cm.files = git
                    .read_tree(commit, &cm.repo_path)?
                    .into_iter()
                    .map(|(path, bytes)| {
                        let rel = path.strip_prefix(&prefix).unwrap_or(&path).to_owned();
                        (rel, ContentFile::new(bytes))
                    })
                    .collect();
            }
            if cm.files.is_empty() {
                warnings.push(
                    Issue::new(
                        &file,
                        Loc { line: 1, column: 1 },
                        &format!("containers.{}.volumes", spec.name),
                        format!(
                            "`./{}` (mounted at `{}`) is not in commit {}: it is mounted from the checkout as it is, not tracked by content",
                            cm.repo_path,
                            cm.target,
                            &commit[..commit.len().min(12)]
                        ),
                    )
                    .with_hint("commit the file or folder, or mount an absolute host path"),
                );
                continue;
            }
            if cm.is_env_file() {
                kept.push(cm);
                continue;
            }
            for (rel, f) in &mut cm.files {
                let path = if rel.is_empty() {
                    cm.repo_path.clone()
                } else {
                    format!("{}/{rel}", cm.repo_path)
                };
                match refinery_core::sops::decrypt_file(&path, &f.bytes, keys) {
                    Ok(None) => {}
                    Ok(Some(clear)) => *f = ContentFile::decrypted(&f.bytes, clear),
                    Err(e) => {
                        let (loc, field) = cm.declared.clone().unwrap_or_else(|| {
                            (
                                Loc { line: 1, column: 1 },
                                format!("containers.{}.volumes", spec.name),
                            )
                        });
                        let mut issue = Issue::new(
                            &file,
                            loc,
                            &field,
                            format!(
                                "`./{path}` (mounted at `{}`) is SOPS-encrypted and failed to decrypt: {e}",
                                cm.target
                            ),
                        );
                        let hints = e.hints();
                        if !hints.is_empty() {
                            issue = issue.with_hint(hints.join("\n  hint: "));
                        }
                        errors.push(issue);
                    }
                }
            }
            let copy = root.join(materialised_rel_path(&spec.name, &cm));
            for m in &mut spec.mounts {
                if m.target == cm.target && m.kind == MountKind::Bind {
                    m.source = copy.to_string_lossy().into_owned();
                }
            }
            kept.push(cm);
        }
        spec.content = kept;
    }
    if !errors.is_empty() {
        return Err(ManifestError::Invalid {
            file,
            issues: errors,
        }
        .into());
    }
    Ok(warnings)
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
