//! Content-tracked mounts (every `./path` bind and compose config): their committed files are
//! read from the commit (never the work tree), SOPS files decrypted, and each bind mount pointed
//! at the copy the host keeps under the content root.

use std::collections::BTreeMap;
use std::path::Path;

use super::{CommitFiles, DesiredError};
use crate::content::{ContentFile, materialised_rel_path};
use crate::manifest::{Issue, ManifestError};
use crate::sops::AgeKeys;
use crate::spec::{ContainerSpec, MountKind};
use crate::yaml::Loc;

/// The containers with their mounts pointed at the copies, and the warnings.
pub type Resolved = (Vec<ContainerSpec>, Vec<Issue>);

/// Reads every content-tracked mount's files from `commit` and points its bind mount at the copy
/// below `root` (one folder per content digest, so an old and a new version never mix). A path
/// the commit does not hold stays a plain bind of the checkout, with a warning. A SOPS-encrypted
/// file is decrypted with `keys` and its copy holds the clear bytes; one that cannot be decrypted
/// fails the whole load (nothing is recreated).
pub fn resolve<F: CommitFiles>(
    files: &F,
    commit: &str,
    manifest_file: &str,
    mut containers: Vec<ContainerSpec>,
    root: &Path,
    keys: &AgeKeys,
) -> Result<Resolved, DesiredError<F::Error>> {
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    let file = manifest_file.to_owned();
    for spec in &mut containers {
        let mut kept = Vec::new();
        for mut cm in std::mem::take(&mut spec.content) {
            let single = if cm.repo_path.is_empty() {
                None
            } else {
                files.read(&cm.repo_path).map_err(DesiredError::Read)?
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
                cm.files = files
                    .read_tree(&cm.repo_path)
                    .map_err(DesiredError::Read)?
                    .into_iter()
                    .map(|(path, f)| {
                        let rel = path.strip_prefix(&prefix).unwrap_or(&path).to_owned();
                        (rel, ContentFile::new(f.data))
                    })
                    .collect();
            }
            // Where the mount is declared: its compose file or the manifest.
            let (at_file, at_loc, at_field) = match &cm.declared {
                Some((loc, field)) if cm.declared_file.is_empty() => {
                    (file.clone(), *loc, field.clone())
                }
                Some((loc, field)) => (cm.declared_file.clone(), *loc, field.clone()),
                None => (
                    file.clone(),
                    Loc { line: 1, column: 1 },
                    format!("containers.{}.volumes", spec.name),
                ),
            };
            if cm.files.is_empty() {
                warnings.push(
                    Issue::new(
                        &at_file,
                        at_loc,
                        &at_field,
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
                match crate::sops::decrypt_file(&path, &f.bytes, keys) {
                    Ok(None) => {}
                    Ok(Some(clear)) => *f = ContentFile::decrypted(&f.bytes, clear),
                    Err(e) => {
                        let mut issue = Issue::new(
                            &at_file,
                            at_loc,
                            &at_field,
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
    // File by file, top to bottom; a mount several replicas share is reported once.
    for list in [&mut warnings, &mut errors] {
        list.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        list.dedup();
    }
    if !errors.is_empty() {
        return Err(ManifestError::Invalid {
            file,
            issues: errors,
        }
        .into());
    }
    Ok((containers, warnings))
}
