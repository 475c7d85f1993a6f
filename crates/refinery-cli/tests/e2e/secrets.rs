//! SOPS secrets on the real engine: a compose service's and a container's `env_file` encrypted
//! to an age key. A
//! secret changed in git recreates the container with the new value, and the clear value shows
//! nowhere: not in `plan`, not in `apply`'s output, not in the ledger. A wrong or missing key stops
//! the pass with exit 2 and leaves the running container as it was.

use refinery_core::sops::SopsFormat;
use refinery_core::sops::encrypt::{encrypt_vars, generate_identity};

use crate::common::{Env, IMAGE};

const LEDGER: &str = "ledger/container_ledger.jsonl";

fn compose_file(env: &Env) -> String {
    format!(
        "services:\n  api:\n    image: {IMAGE}\n    env_file: [secrets.enc.env]\n    environment: {{LOG_LEVEL: info}}\n    labels: {{io.refinery.test: \"{}\"}}\n",
        env.run.id()
    )
}

/// The encrypted env file: `API_URL` has a name that does not look secret, so only its SOPS
/// origin keeps it masked.
fn secrets(recipient: &str, url: &str, password: &str) -> String {
    encrypt_vars(
        &[("API_URL", url), ("DB_PASSWORD", password)],
        SopsFormat::Dotenv,
        &[recipient],
    )
}

/// The container's id and its environment as `KEY=value` lines, as the engine reports them.
async fn inspect(env: &Env, name: &str) -> (String, Vec<String>) {
    use refinery_core::ContainerRuntime as _;
    let c = env
        .rt
        .inspect(name)
        .await
        .unwrap_or_else(|e| panic!("inspect `{name}`: {e}"));
    let vars = c.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    (c.id, vars)
}

fn assert_clean(what: &str, text: &str, values: &[&str]) {
    for v in values {
        assert!(!text.contains(v), "{what} leaks `{v}`:\n{text}");
    }
}

#[tokio::test]
async fn secrets_sops_change_recreates_with_new_value_and_never_leaks() {
    let env = Env::new().await;
    let project = env.name("sec");
    let name = format!("{project}_api_1");
    // A plain `containers:` entry reads the same encrypted file.
    let solo = env.name("solo");
    let (key, recipient) = generate_identity();
    let keys_dir = tempfile::tempdir().expect("tempdir");
    let key_file = keys_dir.path().join("age.txt");
    std::fs::write(&key_file, format!("# test key\n{key}\n")).expect("write the key file");

    let v1 = format!("https://svc:tok-one-{}@api.internal", env.run.id());
    let v2 = format!("https://svc:tok-two-{}@api.internal", env.run.id());
    let p1 = format!("pw-one-{}", env.run.id());
    let p2 = format!("pw-two-{}", env.run.id());
    let values = [v1.as_str(), v2.as_str(), p1.as_str(), p2.as_str()];

    env.commit_file("docker-compose.yml", &compose_file(&env));
    env.commit_file("secrets.enc.env", &secrets(&recipient, &v1, &p1));
    env.commit_manifest(&format!(
        "secrets: {{sops_age_key_file: \"{}\"}}\ncontainers:\n  - name: {solo}\n    image: {IMAGE}\n    env_file: secrets.enc.env\nstacks:\n  - name: {project}\n    files: [docker-compose.yml]\n",
        key_file.display()
    ));

    let apply = env.refinery(&["apply", "--yes"]).await;
    apply.code(0);
    assert_clean("the first apply", &apply.transcript(), &values);
    let c = inspect(&env, &name).await;
    assert!(c.1.contains(&format!("API_URL={v1}")), "{:?}", c.1);
    assert!(c.1.contains(&format!("DB_PASSWORD={p1}")), "{:?}", c.1);
    let s1 = inspect(&env, &solo).await;
    assert!(s1.1.contains(&format!("API_URL={v1}")), "{:?}", s1.1);

    // The secrets change in git: drift on both variables, masked before and after.
    env.commit_file("secrets.enc.env", &secrets(&recipient, &v2, &p2));
    let plan = env.refinery(&["plan"]).await;
    plan.code(3)
        .stdout_has("env.API_URL")
        .stdout_has("env.DB_PASSWORD")
        .stdout_has("*** (before)")
        .stdout_has("*** (after)");
    assert_clean("`plan`", &plan.transcript(), &values);
    let json = env.refinery(&["plan", "--json"]).await;
    json.code(3);
    assert_clean("`plan --json`", &json.transcript(), &values);

    let apply = env.refinery(&["apply", "--yes"]).await;
    apply
        .code(0)
        .stdout_has(&format!("docker/local/stack/{project}/api/1 recreated"))
        .outcome(&solo, "recreated");
    assert_clean("the second apply", &apply.transcript(), &values);
    let after = inspect(&env, &name).await;
    assert_ne!(after.0, c.0, "recreated");
    assert!(after.1.contains(&format!("API_URL={v2}")), "{:?}", after.1);
    assert!(
        after.1.contains(&format!("DB_PASSWORD={p2}")),
        "{:?}",
        after.1
    );
    let s2 = inspect(&env, &solo).await;
    assert!(s2.1.contains(&format!("API_URL={v2}")), "{:?}", s2.1);
    env.refinery(&["plan"]).await.code(0);

    let ledger =
        std::fs::read_to_string(env.repo.path().join(LEDGER)).expect("the ledger file exists");
    assert!(ledger.contains("env.API_URL"), "{ledger}");
    assert_clean("the ledger", &ledger, &values);
    let show = env.refinery(&["ledger", "show", "--json"]).await;
    show.code(0);
    assert_clean("`ledger show`", &show.stdout, &values);
    let status = env.refinery(&["status"]).await;
    assert_clean("`status`", &status.transcript(), &values);

    // A key that is not a recipient: exit 2, the file and the recipient named, nothing touched.
    let (other, _) = generate_identity();
    std::fs::write(&key_file, format!("{other}\n")).expect("write the wrong key");
    env.commit_file(
        "secrets.enc.env",
        &secrets(&recipient, "https://three", "pw-three"),
    );
    let plan = env.refinery(&["plan"]).await;
    plan.code(2)
        .stderr_has("`secrets.enc.env`: failed to decrypt the data key: none of the 1 age key(s) found is a recipient of the file")
        .stderr_has(&recipient)
        .stderr_has("`secrets.sops_age_key_file`");
    env.refinery(&["apply", "--yes"]).await.code(2);

    // No key at all: exit 2, naming where keys are looked for.
    std::fs::write(&key_file, "# no keys here\n").expect("empty the key file");
    env.refinery(&["apply", "--yes"])
        .await
        .code(2)
        .stderr_has("failed to decrypt: no age key found")
        .stderr_has("`SOPS_AGE_KEY` (not set)")
        .stderr_has("`SOPS_AGE_KEY_FILE` (not set)");

    let untouched = inspect(&env, &name).await;
    assert_eq!(untouched.0, after.0, "the running container is left alone");
    assert_eq!(
        inspect(&env, &solo).await.0,
        s2.0,
        "the running container is left alone"
    );
    assert!(
        untouched.1.contains(&format!("API_URL={v2}")),
        "{:?}",
        untouched.1
    );
}

/// A SOPS-encrypted file mounted from the repository: the container's copy holds the clear JSON
/// (mode 0600); a secret changed in git is content drift naming the file, masked, and recreates
/// the container with the new content; the clear value shows nowhere; a wrong key is exit 2.
#[tokio::test]
async fn secrets_sops_file_mount_is_decrypted_and_never_leaks() {
    use std::os::unix::fs::PermissionsExt as _;
    let env = Env::new().await;
    let name = env.name("filesec");
    let (key, recipient) = generate_identity();
    let keys_dir = tempfile::tempdir().expect("tempdir");
    let key_file = keys_dir.path().join("age.txt");
    std::fs::write(&key_file, format!("{key}\n")).expect("write the key file");
    let p1 = format!("file-pw-one-{}", env.run.id());
    let p2 = format!("file-pw-two-{}", env.run.id());
    let values = [p1.as_str(), p2.as_str()];
    let secret = |pw: &str| {
        encrypt_vars(
            &[("password", pw), ("user", "app")],
            SopsFormat::Json,
            &[&recipient],
        )
    };
    let copy_of = |c: &refinery_core::ObservedContainer| {
        c.mounts
            .iter()
            .find(|m| m.target == "/etc/app/secret.json")
            .map(|m| std::path::PathBuf::from(&m.source))
            .unwrap_or_else(|| panic!("no mount at /etc/app/secret.json: {:?}", c.mounts))
    };

    env.commit_file("secrets/app.enc.json", &secret(&p1));
    env.commit_manifest(&format!(
        "secrets: {{sops_age_key_file: \"{}\"}}\ncontainers:\n  - name: {name}\n    image: {IMAGE}\n    volumes: [\"./secrets/app.enc.json:/etc/app/secret.json:ro\"]\n",
        key_file.display()
    ));
    let apply = env.refinery(&["apply", "--yes"]).await;
    apply.code(0);
    assert_clean("the first apply", &apply.transcript(), &values);
    let c = env.existing("filesec").await;
    let copy = copy_of(&c);
    let clear: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&copy).expect("read the copy"))
            .expect("the copy is JSON");
    assert_eq!(
        clear,
        serde_json::json!({"password": p1, "user": "app"}),
        "the clear JSON, without the `sops` section"
    );
    let mode = std::fs::metadata(&copy).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the clear copy is private");
    env.refinery(&["plan"]).await.code(0);

    // The secret changes in git: drift naming the file, recreated with the new content.
    env.commit_file("secrets/app.enc.json", &secret(&p2));
    let plan = env.refinery(&["plan"]).await;
    plan.code(3).stdout_has("content.secrets/app.enc.json");
    assert_clean("`plan`", &plan.transcript(), &values);
    let json = env.refinery(&["plan", "--json"]).await;
    json.code(3);
    assert_clean("`plan --json`", &json.transcript(), &values);
    let apply = env.refinery(&["apply", "--yes"]).await;
    apply.code(0).outcome(&name, "recreated");
    assert_clean("the second apply", &apply.transcript(), &values);
    let c2 = env.existing("filesec").await;
    assert_ne!(c2.id, c.id, "recreated");
    let text = std::fs::read_to_string(copy_of(&c2)).expect("read the new copy");
    assert!(text.contains(&p2), "the new copy holds the new secret");
    env.refinery(&["plan"]).await.code(0);
    let ledger =
        std::fs::read_to_string(env.repo.path().join(LEDGER)).expect("the ledger file exists");
    assert!(ledger.contains("content.secrets/app.enc.json"), "{ledger}");
    assert_clean("the ledger", &ledger, &values);
    for label in c2.labels.values() {
        assert_clean("a label", label, &values);
    }

    // A key that is not a recipient: exit 2 naming the mount, nothing recreated.
    let (other, _) = generate_identity();
    std::fs::write(&key_file, format!("{other}\n")).expect("write the wrong key");
    env.commit_file("secrets/app.enc.json", &secret("pw-three"));
    env.refinery(&["apply", "--yes"])
        .await
        .code(2)
        .stderr_has("refinery.yaml:6:15: `containers[0].volumes[0]`: `./secrets/app.enc.json` (mounted at `/etc/app/secret.json`) is SOPS-encrypted and failed to decrypt")
        .stderr_has(&recipient);
    assert_eq!(env.existing("filesec").await.id, c2.id, "left alone");
}

/// Compose `secrets:`: a SOPS-encrypted file of the repository mounted decrypted at
/// `/run/secrets/NAME`, in sync on the next plan, its clear value nowhere in the output.
#[tokio::test]
async fn secrets_compose_secret_is_mounted_decrypted_under_run_secrets() {
    let env = Env::new().await;
    let project = env.name("csec");
    let (key, recipient) = generate_identity();
    let keys_dir = tempfile::tempdir().expect("tempdir");
    let key_file = keys_dir.path().join("age.txt");
    std::fs::write(&key_file, format!("{key}\n")).expect("write the key file");
    let pw = format!("compose-pw-{}", env.run.id());
    env.commit_file(
        "secrets/db.enc.json",
        &encrypt_vars(
            &[("password", pw.as_str())],
            SopsFormat::Json,
            &[&recipient],
        ),
    );
    env.commit_file(
        "docker-compose.yml",
        &format!(
            "services:\n  db:\n    image: {IMAGE}\n    secrets: [db]\n    labels: {{io.refinery.test: \"{}\"}}\nsecrets:\n  db: {{file: ./secrets/db.enc.json}}\n",
            env.run.id()
        ),
    );
    env.commit_manifest(&format!(
        "secrets: {{sops_age_key_file: \"{}\"}}\nstacks:\n  - name: {project}\n    files: [docker-compose.yml]\n",
        key_file.display()
    ));
    let apply = env.refinery(&["apply", "--yes"]).await;
    apply.code(0);
    assert_clean("apply", &apply.transcript(), &[&pw]);
    use refinery_core::ContainerRuntime as _;
    let c = env
        .rt
        .inspect(&format!("{project}_db_1"))
        .await
        .expect("the service's container");
    let mount = c
        .mounts
        .iter()
        .find(|m| m.target == "/run/secrets/db")
        .unwrap_or_else(|| panic!("no /run/secrets/db: {:?}", c.mounts));
    assert!(mount.read_only);
    let clear = std::fs::read_to_string(&mount.source).expect("read the decrypted copy");
    assert!(clear.contains(&pw), "decrypted for the container");
    env.refinery(&["plan"]).await.code(0);
}
