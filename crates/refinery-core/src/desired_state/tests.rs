//! The desired state resolved from files in memory: no git, no disk.

use std::collections::BTreeMap;
use std::path::Path;

use super::{CommitFiles, DesiredError, Inputs, resolve};
use crate::sops::encrypt::{encrypt_vars, generate_identity};
use crate::sops::{AgeKeys, SopsFormat};
use crate::spec::{ContextFile, MountKind};

/// A commit held in memory.
struct Files(BTreeMap<String, String>);

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
                (k.clone(), f)
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
    let files: Vec<(&str, String)> = files.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    resolve_with(&files, &|_| None, &AgeKeys::new())
}

/// `files` resolved with the environment `env` and the age keys `keys`.
fn resolve_with(
    files: &[(&str, String)],
    env: &dyn Fn(&str) -> Option<String>,
    keys: &AgeKeys,
) -> Result<super::DesiredState, DesiredError<String>> {
    let age_keys = |_: Option<&str>| keys.clone();
    resolve(
        &Files(
            files
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        ),
        "abc1234",
        &Inputs {
            commit: "abc1234def5678",
            env,
            age_keys: &age_keys,
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

/// A manifest whose first registry takes its login from `env_file` (and the process environment),
/// the second one plain.
fn registry_manifest(username: &str, password: &str, env_file: &str) -> String {
    format!(
        "registries:\n  - host: 127.0.0.1:5000\n    username: \"{username}\"\n    password: \"{password}\"\n    env_file: {env_file}\n  - host: ghcr.io\n    username: bot\n    password: plain-pw\nallow_empty: true\n"
    )
}

fn keys_with(secret: &str) -> AgeKeys {
    let mut keys = AgeKeys::new();
    keys.add_text(secret, "`SOPS_AGE_KEY`");
    keys
}

fn manifest_issues(r: Result<super::DesiredState, DesiredError<String>>) -> Vec<crate::Issue> {
    match r {
        Err(DesiredError::Manifest(e)) => e.issues().to_vec(),
        other => panic!("expected a manifest error, got {other:?}"),
    }
}

#[test]
fn registry_env_file_sops_password_reaches_the_login_masked() {
    let (key, recipient) = generate_identity();
    let sops = encrypt_vars(
        &[("REG_USER", "deploy"), ("REG_TOKEN", "pw-from-sops-7731")],
        SopsFormat::Dotenv,
        &[&recipient],
    );
    let files = [
        (
            "refinery.yaml",
            registry_manifest("${REG_USER}", "${REG_TOKEN}", "secrets/registry.enc.env"),
        ),
        ("secrets/registry.enc.env", sops),
    ];
    let state = resolve_with(&files, &|_| None, &keys_with(&key)).expect("resolves");
    let m = &state.manifest;
    let hosts: Vec<&str> = m.registries.iter().map(|r| r.host.as_str()).collect();
    assert_eq!(hosts, ["127.0.0.1:5000", "ghcr.io"], "in manifest order");
    let login = &m.registries[0];
    assert_eq!(login.username, "deploy");
    assert_eq!(login.password.expose(), "pw-from-sops-7731");
    assert!(m.registry_env.is_empty(), "resolved once");
    let shown = format!("{m:?} {}", serde_json::to_string(m).expect("json"));
    assert!(!shown.contains("pw-from-sops-7731"), "{shown}");

    // The environment of refinery wins over the file, as for a stack's variables file.
    let env = |name: &str| (name == "REG_USER").then(|| "from-env".to_owned());
    let state = resolve_with(&files, &env, &keys_with(&key)).expect("resolves");
    assert_eq!(state.manifest.registries[0].username, "from-env");
    assert_eq!(
        state.manifest.registries[0].password.expose(),
        "pw-from-sops-7731"
    );
}

#[test]
fn registry_env_file_list_later_file_wins_and_plain_files_work() {
    let files = [
        (
            "refinery.yaml",
            registry_manifest("u-${SUFFIX}", "${TOKEN}", "[a.env, b.env]"),
        ),
        ("a.env", "SUFFIX=a\nTOKEN=from-a\n".to_owned()),
        ("b.env", "TOKEN=from-b\n".to_owned()),
    ];
    let state = resolve_with(&files, &|_| None, &AgeKeys::new()).expect("resolves");
    let login = &state.manifest.registries[0];
    assert_eq!(login.username, "u-a");
    assert_eq!(login.password.expose(), "from-b");
    assert!(login.password.is_sensitive());
}

#[test]
fn registry_env_file_wrong_key_names_the_file_the_field_and_the_recipient() {
    let (_, recipient) = generate_identity();
    let (other, _) = generate_identity();
    let sops = encrypt_vars(&[("REG_TOKEN", "pw")], SopsFormat::Dotenv, &[&recipient]);
    let files = [
        (
            "refinery.yaml",
            registry_manifest("bot", "${REG_TOKEN}", "secrets/registry.enc.env"),
        ),
        ("secrets/registry.enc.env", sops),
    ];
    let issues = manifest_issues(resolve_with(&files, &|_| None, &keys_with(&other)));
    assert_eq!(issues.len(), 1, "{issues:?}");
    let i = &issues[0];
    assert_eq!(
        (i.field.as_str(), i.line, i.column),
        ("registries[0].env_file", 5, 15),
        "{i:?}"
    );
    assert_eq!(
        i.message,
        "`secrets/registry.enc.env`: failed to decrypt the data key: none of the 1 age key(s) found is a recipient of the file"
    );
    let hint = i.hint.clone().unwrap_or_default();
    assert!(hint.contains(&recipient), "{hint}");
    assert!(hint.contains("`SOPS_AGE_KEY` (1 key)"), "{hint}");

    // No key at all, and a file missing from the commit.
    let issues = manifest_issues(resolve_with(&files, &|_| None, &AgeKeys::new()));
    assert!(issues[0].message.contains("no age key found"), "{issues:?}");
    let issues = manifest_issues(resolve_with(&files[..1], &|_| None, &AgeKeys::new()));
    assert_eq!(issues[0].field, "registries[0].env_file");
    assert_eq!(
        issues[0].message,
        "failed to find env file `secrets/registry.enc.env` in the commit"
    );
}

#[test]
fn registry_env_file_undefined_variable_is_an_error_at_the_field() {
    let (key, recipient) = generate_identity();
    let sops = encrypt_vars(&[("OTHER", "x")], SopsFormat::Dotenv, &[&recipient]);
    let files = [
        (
            "refinery.yaml",
            registry_manifest("bot", "${REG_TOKEN}", "secrets/registry.enc.env"),
        ),
        ("secrets/registry.enc.env", sops),
    ];
    let issues = manifest_issues(resolve_with(&files, &|_| None, &keys_with(&key)));
    assert_eq!(issues.len(), 1, "{issues:?}");
    let i = &issues[0];
    assert_eq!(
        (i.field.as_str(), i.line, i.column),
        ("registries[0].password", 4, 15),
        "{i:?}"
    );
    assert_eq!(
        i.to_string(),
        "refinery.yaml:4:15: `registries[0].password`: variable `REG_TOKEN` is set neither in the environment nor in `secrets/registry.enc.env`"
    );
    assert_eq!(
        i.hint.as_deref(),
        Some(
            "add `REG_TOKEN=…` to `secrets/registry.enc.env` (`sops edit secrets/registry.enc.env` when it is encrypted), or set `REG_TOKEN` in the environment of refinery"
        )
    );
}

#[test]
fn registry_and_container_env_file_problems_are_reported_together() {
    let files = [(
        "refinery.yaml",
        "registries:\n  - {host: r.example, username: u, password: \"${T}\", env_file: reg.env}\ncontainers:\n  - name: api\n    image: busybox:1.36\n    env_file: api.env\n".to_owned(),
    )];
    let issues = manifest_issues(resolve_with(&files, &|_| None, &AgeKeys::new()));
    let fields: Vec<&str> = issues.iter().map(|i| i.field.as_str()).collect();
    assert_eq!(
        fields,
        ["registries[0].env_file", "containers[0].env_file"],
        "{issues:?}"
    );
}
