//! A registry password from a SOPS-encrypted env file under the daemon: the private image is
//! pulled with it, and a later revision whose login fails to resolve (a variable the file does
//! not set) is alerted and never enforced: the daemon keeps the last good revision and its login,
//! so a container removed meanwhile is pulled again and recreated with that login.

use refinery_core::ContainerState;
use refinery_core::sops::SopsFormat;
use refinery_core::sops::encrypt::{encrypt_vars, generate_identity};
use refinery_docker::testsupport::{self, TestRegistry};

use crate::common::Env;
use crate::harness::{Daemon, eventually, kind};

const PASSWORD: &str = "pw-sops-daemon-4be1";
const SECRETS: &str = "secrets/registry.enc.env";

fn manifest(
    env: &Env,
    key_file: &std::path::Path,
    registry: &TestRegistry,
    password: &str,
    image: &str,
) -> String {
    env.manifest(&format!(
        "secrets: {{sops_age_key_file: \"{}\"}}\nregistries:\n  - host: \"{}\"\n    username: {}\n    password: \"{password}\"\n    env_file: {SECRETS}\ncontainers:\n  - name: {}\n    image: {image}\n",
        key_file.display(),
        registry.host,
        registry.user,
        env.name("web"),
    ))
}

#[tokio::test]
async fn daemon_registry_sops_password_pulls_and_a_bad_revision_keeps_the_login() {
    let env = Env::new().await;
    let registry = TestRegistry::start("deploy", PASSWORD).expect("start the registry");
    registry
        .push_new(&env.rt, &env.run, "sops1", "app", &["1"])
        .await
        .expect("push the test image");
    let image = registry.reference("app", "1");
    let (key, recipient) = generate_identity();
    let keys_dir = tempfile::tempdir().expect("tempdir");
    let key_file = keys_dir.path().join("age.txt");
    std::fs::write(&key_file, format!("{key}\n")).expect("write the key file");
    env.commit_file(
        SECRETS,
        &encrypt_vars(
            &[("REG_TOKEN", PASSWORD)],
            SopsFormat::Dotenv,
            &[&recipient],
        ),
    );
    env.commit_file(
        "refinery.yaml",
        &manifest(&env, &key_file, &registry, "${REG_TOKEN}", &image),
    );
    // No `docker login`, nothing in the environment: only the encrypted file holds the password.
    let no_login = tempfile::tempdir().expect("tempdir");
    let vars = [("DOCKER_CONFIG", no_login.path().as_os_str())];
    let mut d = Daemon::start_with_env(env.repo.path(), &[], &vars);
    let running = || {
        let env = &env;
        async move {
            env.container("web")
                .await
                .filter(|c| c.state == ContainerState::Running)
        }
    };
    let first = eventually("web pulled and running", &mut d, running).await;

    // A revision whose password names a variable the file does not set: alerted, not enforced.
    let bad = env.commit_file(
        "refinery.yaml",
        &manifest(&env, &key_file, &registry, "${REG_TOKN}", &image),
    );
    let alert = d
        .wait_entry("load failure alert", |e| {
            kind(e) == "alert"
                && e["message"].as_str().is_some_and(|m| {
                    m.contains("failed to load revision") && m.contains(&bad[..12])
                })
        })
        .await;
    let message = alert["message"].as_str().unwrap_or_default();
    assert!(message.contains("registries[0].password"), "{message}");

    // The image goes from the engine and the container with it: recreating it needs a pull,
    // which the last good revision's login still authorizes.
    testsupport::remove_image(&env.rt, &image)
        .await
        .expect("untag the image");
    {
        use refinery_core::ContainerRuntime as _;
        env.rt.remove(&first.id).await.expect("remove web");
    }
    let second = eventually("web pulled again and running", &mut d, running).await;
    assert_ne!(second.id, first.id, "recreated");
    assert_eq!(second.image, image);

    let ledger = std::fs::read_to_string(&d.ledger).unwrap_or_default();
    assert!(
        !ledger.contains(PASSWORD),
        "the ledger leaks the password:\n{ledger}"
    );
    let log = d.stop().await;
    assert!(
        !log.contains(PASSWORD),
        "the log leaks the password:\n{log}"
    );
    assert!(!log.contains("no basic auth credentials"), "{log}");
}
