//! A private registry's password kept only in git, SOPS-encrypted to an age key: `registries:`
//! names the encrypted env file with `env_file:`, and `validate` and `apply` decrypt it, so the
//! pull from the real registry (htpasswd, on loopback) succeeds with no `docker login` and nothing
//! in the environment. The password shows nowhere; a wrong key or an undefined variable stops the
//! load with exit 2, naming the field, and leaves the running container alone.

use refinery_core::sops::SopsFormat;
use refinery_core::sops::encrypt::{encrypt_vars, generate_identity};

use super::registry::{container, registry, vars};
use crate::common::Env;

const LEDGER: &str = "ledger/container_ledger.jsonl";
const SECRETS: &str = "secrets/registry.enc.env";

fn manifest(
    key_file: &std::path::Path,
    host: &str,
    user: &str,
    password: &str,
    rest: &str,
) -> String {
    format!(
        "secrets: {{sops_age_key_file: \"{}\"}}\nregistries:\n  - host: {host}\n    username: {user}\n    password: \"{password}\"\n    env_file: {SECRETS}\n{rest}",
        key_file.display()
    )
}

#[tokio::test]
async fn registry_sops_env_file_password_pulls_the_private_image_and_never_leaks() {
    let env = Env::new().await;
    let (registry, image) = registry(&env).await;
    let secret = registry.password.clone();
    let (key, recipient) = generate_identity();
    let keys_dir = tempfile::tempdir().expect("tempdir");
    let key_file = keys_dir.path().join("age.txt");
    std::fs::write(&key_file, format!("{key}\n")).expect("write the key file");
    // No `docker login` anywhere, and nothing in the environment: only the encrypted file.
    let no_login = tempfile::tempdir().expect("tempdir");
    let v = || vars(no_login.path(), &[]);
    env.commit_file(
        SECRETS,
        &encrypt_vars(&[("REG_TOKEN", &secret)], SopsFormat::Dotenv, &[&recipient]),
    );
    env.commit_manifest(&manifest(
        &key_file,
        &registry.host,
        &registry.user,
        "${REG_TOKEN}",
        &container(&env, &image),
    ));

    let validate = env.refinery_env(&["validate"], v()).await;
    validate.code(0);
    let apply = env.refinery_env(&["apply", "--yes"], v()).await;
    apply.code(0).outcome(&env.name("web"), "created");
    assert_eq!(env.existing("web").await.image, image);
    let plan = env.refinery_env(&["plan", "--json"], v()).await;
    plan.code(0);
    let status = env.refinery_env(&["status", "--json"], v()).await;
    status.code(0);
    let ledger = std::fs::read_to_string(env.repo.path().join(LEDGER)).unwrap_or_default();
    for (what, text) in [
        ("validate", validate.transcript()),
        ("apply", apply.transcript()),
        ("plan --json", plan.transcript()),
        ("status --json", status.transcript()),
        ("the ledger", ledger),
    ] {
        assert!(
            !text.contains(&secret),
            "{what} leaks the password:\n{text}"
        );
    }

    // A key that is not a recipient: the load stops (exit 2) at the entry's `env_file`, naming
    // the file and its recipient; the running container is left alone.
    let running = env.existing("web").await.id;
    let (other, _) = generate_identity();
    std::fs::write(&key_file, format!("{other}\n")).expect("write the wrong key");
    let validate = env.refinery_env(&["validate"], v()).await;
    validate
        .code(2)
        .stderr_has("refinery.yaml:7:15: `registries[0].env_file`: `secrets/registry.enc.env`: failed to decrypt the data key: none of the 1 age key(s) found is a recipient of the file")
        .stderr_has(&recipient);
    env.refinery_env(&["apply", "--yes"], v()).await.code(2);
    assert_eq!(env.existing("web").await.id, running, "nothing touched");

    // The right key again, but the password names a variable the file does not set.
    std::fs::write(&key_file, format!("{key}\n")).expect("write the key");
    env.commit_manifest(&manifest(
        &key_file,
        &registry.host,
        &registry.user,
        "${REG_TOKN}",
        &container(&env, &image),
    ));
    let validate = env.refinery_env(&["validate"], v()).await;
    validate
        .code(2)
        .stderr_has("refinery.yaml:6:15: `registries[0].password`: variable `REG_TOKN` is set neither in the environment nor in `secrets/registry.enc.env`")
        .stderr_has("hint: add `REG_TOKN=…` to `secrets/registry.enc.env`");
    env.refinery_env(&["apply", "--yes"], v()).await.code(2);
    assert_eq!(env.existing("web").await.id, running, "nothing touched");
    let text = validate.transcript();
    assert!(
        !text.contains(&secret),
        "validate leaks the password:\n{text}"
    );
}
