//! What the compose fixture tests share: loading a fixture directory as a repository.

use std::collections::BTreeMap;
use std::path::Path;

use refinery_core::compose::{StackSource, expand_stacks};
use refinery_core::sops::AgeKeys;
use refinery_core::{ContextFile, Issue, LoadOptions, Manifest, ManifestError, load_manifest};

pub const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/compose");

/// Every file under `dir`, keyed by its path relative to `dir`.
pub fn files_of(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read fixture dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .expect("inside the fixture")
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&path).expect("read fixture file"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// What a fixture loads into: the manifest with its stacks expanded (and the warnings), or
/// the problems.
pub fn load_fixture(name: &str) -> Result<(Manifest, Vec<Issue>), ManifestError> {
    let dir = Path::new(DIR).join(name);
    let files = files_of(&dir);
    let text = |p: &str| {
        files
            .get(p)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let env = |_: &str| None;
    let manifest_text = text("refinery.yaml").expect("every fixture has a refinery.yaml");
    let opts = LoadOptions {
        env: &env,
        base_dir: Some("/repo".into()),
    };
    let loaded = load_manifest("refinery.yaml", &manifest_text, &opts)?;
    let mut manifest = loaded.manifest;
    let mut warnings = loaded.warnings;
    let read_tree = |dir: &str| {
        files
            .iter()
            .filter(|(k, _)| dir.is_empty() || k.starts_with(&format!("{dir}/")))
            .map(|(k, v)| {
                (
                    k.clone(),
                    ContextFile {
                        data: v.clone(),
                        executable: k.ends_with(".sh"),
                    },
                )
            })
            .collect()
    };
    let keys = AgeKeys::new();
    let src = StackSource {
        read: &text,
        read_tree: &read_tree,
        env: &env,
        base_dir: Some("/repo"),
        manifest_file: "refinery.yaml",
        keys: &keys,
    };
    let expanded = expand_stacks(&manifest, &src)?;
    warnings.extend(expanded.warnings);
    manifest.stacks = expanded.stacks;
    manifest.containers.extend(expanded.containers);
    manifest.stack_networks.extend(expanded.networks);
    manifest.stack_volumes.extend(expanded.volumes);
    Ok((manifest, warnings))
}

pub fn fixture_names(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(DIR)
        .expect("fixture dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}
