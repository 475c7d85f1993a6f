//! The desired state resolved from files in memory: no git, no disk.

use std::collections::BTreeMap;
use std::path::Path;

use super::{CommitFiles, DesiredError, Inputs, resolve};
use crate::sops::AgeKeys;
use crate::spec::{ContextFile, MountKind};

/// A commit held in memory.
struct Files(BTreeMap<&'static str, &'static str>);

impl CommitFiles for Files {
    type Error = String;

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.0.get(path).map(|t| t.as_bytes().to_vec()))
    }

    fn read_tree(&self, dir: &str) -> Result<BTreeMap<String, ContextFile>, String> {
        Ok(self
            .0
            .iter()
            .filter(|(k, _)| dir.is_empty() || k.starts_with(&format!("{dir}/")))
            .map(|(k, v)| {
                let f = ContextFile {
                    data: v.as_bytes().to_vec(),
                    executable: false,
                };
                ((*k).to_owned(), f)
            })
            .collect())
    }

    fn checkout_dir(&self) -> Option<String> {
        Some("/repo".to_owned())
    }
}

fn resolve_files(
    files: &[(&'static str, &'static str)],
) -> Result<super::DesiredState, DesiredError<String>> {
    let env = |_: &str| None;
    let keys = |_: Option<&str>| AgeKeys::new();
    resolve(
        &Files(files.iter().copied().collect()),
        "abc1234",
        &Inputs {
            commit: "abc1234def5678",
            env: &env,
            age_keys: &keys,
            content_root: Path::new("/content"),
        },
    )
}

#[test]
fn env_files_stacks_and_content_mounts_resolve_into_one_manifest() {
    let state = resolve_files(&[
        (
            "refinery.yaml",
            "containers:\n  - name: api\n    image: busybox:1.36\n    env: {A: own}\n    env_file: common.env\n    volumes: ['./conf/app.conf:/etc/app.conf:ro']\nstacks:\n  - name: shop\n    files: [shop/compose.yaml]\n",
        ),
        ("common.env", "A=from-file\nB=from-file\n"),
        ("conf/app.conf", "x=1\n"),
        ("shop/compose.yaml", "services:\n  web:\n    image: busybox:1.36\n"),
    ])
    .expect("resolves");
    assert_eq!(state.file, "refinery.yaml");
    let m = &state.manifest;
    let api = m.containers.iter().find(|c| c.name == "api").expect("api");
    assert_eq!(api.env["A"].expose(), "own", "env: wins over the env file");
    assert_eq!(api.env["B"].expose(), "from-file");
    let bind = api
        .mounts
        .iter()
        .find(|b| b.kind == MountKind::Bind)
        .expect("bind");
    assert!(bind.source.starts_with("/content/"), "{}", bind.source);
    assert!(
        m.containers.iter().any(|c| c.name == "shop_web_1"),
        "{:?}",
        m.containers
    );
    assert_eq!(m.stacks[0].files, ["shop/compose.yaml"]);
}

#[test]
fn no_manifest_names_the_commit_and_a_bad_env_file_its_line() {
    match resolve_files(&[]) {
        Err(DesiredError::Manifest(e)) => assert!(e.to_string().contains("abc1234"), "{e}"),
        other => panic!("{other:?}"),
    }
    match resolve_files(&[(
        "refinery.yaml",
        "containers:\n  - name: api\n    image: busybox:1.36\n    env_file: missing.env\n",
    )]) {
        Err(DesiredError::Manifest(e)) => {
            let text = format!("{e} {:?}", e.issues());
            assert!(text.contains("missing.env"), "{text}");
            assert_eq!(e.issues()[0].line, 4, "{text}");
        }
        other => panic!("{other:?}"),
    }
}
