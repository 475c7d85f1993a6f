//! SOPS decryption: against files the real `sops` wrote (fixtures from Flux) and against the test
//! encryptor, in every format; wrong, missing and tampered inputs give clear errors.

use refinery_core::sops::encrypt::{encrypt_vars, generate_identity};
use refinery_core::sops::{AgeKeys, SopsError, SopsFormat, decrypt, decrypt_env, is_sops};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/sops/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn flux_keys() -> AgeKeys {
    let mut keys = AgeKeys::new();
    assert_eq!(keys.add_text(&fixture("flux-age.txt"), "`flux-age.txt`"), 1);
    keys
}

fn keys_for(secret: &str) -> AgeKeys {
    let mut keys = AgeKeys::new();
    keys.add_text(secret, "`SOPS_AGE_KEY`");
    keys
}

#[test]
fn sops_real_dotenv_decrypts() {
    let text = fixture("flux-year.env");
    assert!(is_sops(&text, SopsFormat::Dotenv));
    let env = decrypt_env(&text, SopsFormat::Dotenv, &flux_keys()).expect("decrypts");
    assert_eq!(env.len(), 1);
    assert_eq!(env.get("year").map(String::as_str), Some("2017"));
}

#[test]
fn sops_real_yaml_with_plain_values_decrypts_and_mac_checks() {
    let text = fixture("flux-secret.age.yaml");
    assert!(is_sops(&text, SopsFormat::Yaml));
    let leaves = decrypt(&text, SopsFormat::Yaml, &flux_keys()).expect("decrypts");
    let paths: Vec<String> = leaves.iter().map(|l| l.path.join(".")).collect();
    assert_eq!(
        paths,
        ["apiVersion", "kind", "metadata.name", "stringData.secret"]
    );
    assert_eq!(leaves[3].value.len(), 18);
    // A plain value is part of the MAC too.
    let tampered = text.replace("name: sops-age", "name: sops-agf");
    assert_eq!(
        decrypt(&tampered, SopsFormat::Yaml, &flux_keys()),
        Err(SopsError::Mac)
    );
    // Nested values are no environment.
    let err = decrypt_env(&text, SopsFormat::Yaml, &flux_keys()).expect_err("nested");
    assert!(matches!(err, SopsError::NotEnv { ref path, .. } if path == "metadata.name"));
}

#[test]
fn sops_own_encryptor_every_format_round_trips() {
    let (secret, recipient) = generate_identity();
    let vars = [
        ("DB_PASSWORD", "hunter2"),
        ("API_URL", "https://x/y?a=b,c"),
        ("EMPTY", ""),
    ];
    for format in [SopsFormat::Dotenv, SopsFormat::Yaml, SopsFormat::Json] {
        let text = encrypt_vars(&vars, format, &[&recipient]);
        assert!(is_sops(&text, format), "{format:?}:\n{text}");
        assert!(!text.contains("hunter2"), "{format:?} leaks:\n{text}");
        let env = decrypt_env(&text, format, &keys_for(&secret))
            .unwrap_or_else(|e| panic!("{format:?}: {e}\n{text}"));
        assert_eq!(env.get("DB_PASSWORD").map(String::as_str), Some("hunter2"));
        assert_eq!(
            env.get("API_URL").map(String::as_str),
            Some("https://x/y?a=b,c")
        );
        assert_eq!(env.get("EMPTY").map(String::as_str), Some(""));
    }
}

#[test]
fn sops_second_recipient_key_decrypts() {
    let (_, r1) = generate_identity();
    let (s2, r2) = generate_identity();
    let text = encrypt_vars(&[("A", "1")], SopsFormat::Dotenv, &[&r1, &r2]);
    let env = decrypt_env(&text, SopsFormat::Dotenv, &keys_for(&s2)).expect("decrypts");
    assert_eq!(env.get("A").map(String::as_str), Some("1"));
}

#[test]
fn sops_wrong_key_names_recipients_and_places() {
    let (_, recipient) = generate_identity();
    let (other, _) = generate_identity();
    let text = encrypt_vars(&[("A", "1")], SopsFormat::Dotenv, &[&recipient]);
    let err = decrypt_env(&text, SopsFormat::Dotenv, &keys_for(&other)).expect_err("wrong key");
    let SopsError::WrongKey {
        count,
        recipients,
        looked,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*count, 1);
    assert_eq!(recipients, &[format!("`{recipient}`")]);
    assert_eq!(looked, &["`SOPS_AGE_KEY` (1 key)".to_owned()]);
    assert!(err.hints().iter().any(|h| h.contains(&recipient)));
}

#[test]
fn sops_missing_key_names_where_keys_are_looked_for() {
    let text = fixture("flux-year.env");
    let mut keys = AgeKeys::new();
    keys.note("`SOPS_AGE_KEY` (not set)");
    keys.note("`SOPS_AGE_KEY_FILE` (not set)");
    let err = decrypt_env(&text, SopsFormat::Dotenv, &keys).expect_err("no key");
    assert!(matches!(err, SopsError::NoKeys { .. }));
    assert_eq!(err.to_string(), "failed to decrypt: no age key found");
    let hints = err.hints().join("\n");
    assert!(
        hints.contains("`SOPS_AGE_KEY` (not set); `SOPS_AGE_KEY_FILE` (not set)"),
        "{hints}"
    );
    assert!(hints.contains("SOPS_AGE_KEY_FILE"), "{hints}");
}

#[test]
fn sops_tampered_value_fails_authentication() {
    let (secret, recipient) = generate_identity();
    let text = encrypt_vars(
        &[("A", "one"), ("B", "two")],
        SopsFormat::Dotenv,
        &[&recipient],
    );
    // Swap the two encrypted values: each is bound to its key path.
    let lines: Vec<&str> = text.lines().collect();
    let a = lines[0].trim_start_matches("A=");
    let b = lines[1].trim_start_matches("B=");
    let swapped = text
        .replacen(&format!("A={a}"), &format!("A={b}"), 1)
        .replacen(&format!("B={b}"), &format!("B={a}"), 1);
    let err = decrypt_env(&swapped, SopsFormat::Dotenv, &keys_for(&secret)).expect_err("swapped");
    assert_eq!(err, SopsError::Value { path: "A".into() });
    // Dropping a value leaves every other one intact but breaks the MAC.
    let dropped: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    assert_eq!(
        decrypt_env(&dropped, SopsFormat::Dotenv, &keys_for(&secret)),
        Err(SopsError::Mac)
    );
    // A plain value slipped in is caught by the MAC too.
    let added = format!("C=plain\n{text}");
    assert_eq!(
        decrypt_env(&added, SopsFormat::Dotenv, &keys_for(&secret)),
        Err(SopsError::Mac)
    );
}

#[test]
fn sops_plain_env_file_is_not_sops() {
    assert!(!is_sops("A=1\nB=2\n", SopsFormat::Dotenv));
    assert!(!is_sops("A: 1\n", SopsFormat::Yaml));
    let err = decrypt_env("A=1\n", SopsFormat::Dotenv, &flux_keys()).expect_err("plain");
    assert!(matches!(err, SopsError::Malformed(_)), "{err:?}");
}

#[test]
fn sops_key_file_with_bad_line_is_noted_without_its_content() {
    let mut keys = AgeKeys::new();
    let n = keys.add_text("# c\nAGE-SECRET-KEY-1NOTAKEY\n", "`keys.txt`");
    assert_eq!(n, 0);
    assert_eq!(
        keys.looked(),
        ["`keys.txt` (0 keys); line 2 is not an `AGE-SECRET-KEY-1…` key"]
    );
}

#[test]
fn sops_format_follows_file_name() {
    assert_eq!(SopsFormat::for_path("secrets.sops.yaml"), SopsFormat::Yaml);
    assert_eq!(SopsFormat::for_path("a/b.enc.json"), SopsFormat::Json);
    assert_eq!(SopsFormat::for_path("secrets.enc.env"), SopsFormat::Dotenv);
    assert_eq!(SopsFormat::for_path(".env.production"), SopsFormat::Dotenv);
}

/// Loads `manifest` and resolves its containers' `env_file`s from `files`.
fn load_with_files(
    manifest: &str,
    files: &[(&str, &str)],
    keys: &AgeKeys,
) -> Result<refinery_core::Manifest, refinery_core::ManifestError> {
    let env = |_: &str| None;
    let m = refinery_core::load_manifest(
        "refinery.yaml",
        manifest,
        &refinery_core::LoadOptions {
            env: &env,
            base_dir: None,
        },
    )?
    .manifest;
    let read = |p: &str| {
        files
            .iter()
            .find(|(n, _)| *n == p)
            .map(|(_, t)| (*t).to_owned())
    };
    let values = refinery_core::manifest::read_env_files(&m, &read, keys)?;
    let containers = values.merge_into(m.containers.clone());
    Ok(refinery_core::Manifest { containers, ..m })
}

const CONTAINER: &str = "containers:\n  - name: api\n    image: busybox:1.36\n    env: {LOG_LEVEL: debug}\n    env_file: [common.env, ./secrets/api.sops.yaml]\n";

#[test]
fn container_env_file_plain_and_sops_merge_under_env() {
    let (secret, recipient) = generate_identity();
    let enc = encrypt_vars(
        &[("API_URL", "https://tok@x"), ("LOG_LEVEL", "trace")],
        SopsFormat::Yaml,
        &[&recipient],
    );
    let m = load_with_files(
        CONTAINER,
        &[
            ("common.env", "REGION=eu\nAPI_URL=plain\n"),
            ("secrets/api.sops.yaml", &enc),
        ],
        &keys_for(&secret),
    )
    .expect("loads");
    let env = &m.containers[0].env;
    assert_eq!(env["REGION"].expose(), "eu");
    assert!(!env["REGION"].is_sensitive());
    // The later file wins over the earlier one; `env:` wins over both.
    assert_eq!(env["API_URL"].expose(), "https://tok@x");
    assert!(env["API_URL"].is_sensitive());
    assert_eq!(env["LOG_LEVEL"].expose(), "debug");
}

#[test]
fn container_env_file_wrong_key_is_an_issue_at_the_entry() {
    let (_, recipient) = generate_identity();
    let (other, _) = generate_identity();
    let enc = encrypt_vars(&[("API_URL", "x")], SopsFormat::Yaml, &[&recipient]);
    let err = load_with_files(
        CONTAINER,
        &[("common.env", "A=1\n"), ("secrets/api.sops.yaml", &enc)],
        &keys_for(&other),
    )
    .expect_err("wrong key");
    let refinery_core::ManifestError::Invalid { issues, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(issues.len(), 1, "{issues:?}");
    let i = &issues[0];
    assert_eq!((i.line, i.field.as_str()), (5, "containers[0].env_file[1]"));
    assert!(
        i.message
            .starts_with("`secrets/api.sops.yaml`: failed to decrypt the data key"),
        "{}",
        i.message
    );
    assert!(
        i.hint.as_deref().is_some_and(|h| h.contains(&recipient)),
        "{i:?}"
    );
}

#[test]
fn container_env_file_missing_or_outside_repo_is_an_issue() {
    let err = load_with_files(CONTAINER, &[], &AgeKeys::new()).expect_err("missing");
    assert!(
        err.to_string().contains("refinery.yaml")
            || format!("{err:?}").contains("failed to find env file `common.env` in the commit"),
        "{err:?}"
    );
    let outside = "containers:\n  - name: api\n    image: busybox:1.36\n    env_file: ../x.env\n";
    let err = load_with_files(outside, &[], &AgeKeys::new()).expect_err("outside");
    assert!(
        format!("{err:?}").contains("`../x.env` is not a file in the repository"),
        "{err:?}"
    );
}

#[test]
fn secret_env_removed_from_sops_file_stays_masked_in_drift() {
    use refinery_core::drift::{DiffContext, diff_node};
    use refinery_core::testing::{self, observed_node, spec};
    use refinery_core::{ImageDefaults, Secret, labels};

    let mut created = spec("api");
    created
        .env
        .insert("API_URL".into(), Secret::new("https://tok@x", true));
    let mut observed = observed_node(&[&created], &ImageDefaults::default());
    // What `apply` puts on the container it creates.
    observed.containers[0].labels = labels::ownership_labels(&created, "rev");
    assert_eq!(
        observed.containers[0]
            .labels
            .get(labels::SECRET_ENV)
            .map(String::as_str),
        Some("API_URL")
    );
    // The variable is gone from the SOPS file: the old value still prints masked.
    let now = spec("api");
    let ctx = DiffContext {
        node: testing::NODE.into(),
        ..DiffContext::default()
    };
    let report = diff_node(&[&now], &observed, &ctx);
    let change = report
        .drifts
        .iter()
        .flat_map(|d| &d.changes)
        .find(|c| c.field == "env.API_URL")
        .expect("env.API_URL drifts");
    assert_eq!(change.observed, "*** (before)");
    assert_eq!(change.desired, "(unset)");
}

#[test]
fn sops_real_files_decrypt_to_clear_mounted_files() {
    let yaml = refinery_core::sops::decrypt_file(
        "secret.age.yaml",
        fixture("flux-secret.age.yaml").as_bytes(),
        &flux_keys(),
    )
    .expect("decrypts")
    .expect("is sops");
    let tree: serde_json::Value = serde_json::from_slice(&yaml).expect("clear JSON");
    assert_eq!(tree["apiVersion"], "v1");
    assert_eq!(tree["metadata"]["name"], "sops-age");
    assert_eq!(
        tree["stringData"]["secret"].as_str().map(str::len),
        Some(18)
    );
    assert!(tree.get("sops").is_none(), "{tree}");
    let env = refinery_core::sops::decrypt_file(
        "year.env",
        fixture("flux-year.env").as_bytes(),
        &flux_keys(),
    )
    .expect("decrypts")
    .expect("is sops");
    assert_eq!(env, b"year=2017\n");
}
