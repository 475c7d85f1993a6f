//! Images from a real registry (Debian's `docker-registry` with htpasswd authentication, started
//! on loopback by the test): `apply` pulls a private image with the docker CLI's credentials or
//! the manifest's `registries:`; without credentials the container fails (exit 6) with hints
//! naming `docker login HOST` and `registries:`; the password shows nowhere.

use std::ffi::OsString;

use refinery_docker::testsupport::{self, TestRegistry};

use crate::common::{Env, IMAGE};

const LEDGER: &str = "ledger/container_ledger.jsonl";

/// A registry holding `app:1` (the test image; nothing of it left locally).
async fn registry(env: &Env) -> (TestRegistry, String) {
    let registry = TestRegistry::start("deploy", "pw-9f3c1e77").expect("start the registry");
    registry
        .push(&env.rt, IMAGE, "app", "1")
        .await
        .expect("push the test image");
    let image = registry.reference("app", "1");
    env.run.track_image(&image);
    (registry, image)
}

fn container(env: &Env, image: &str) -> String {
    format!(
        "containers:\n  - name: {}\n    image: {image}\n",
        env.name("web")
    )
}

fn vars(docker_config: &std::path::Path, extra: &[(&str, &str)]) -> Vec<(String, OsString)> {
    let mut v = vec![(
        "DOCKER_CONFIG".to_owned(),
        docker_config.as_os_str().to_owned(),
    )];
    v.extend(
        extra
            .iter()
            .map(|(k, x)| ((*k).to_owned(), OsString::from(x))),
    );
    v
}

#[tokio::test]
async fn registry_pull_without_credentials_fails_then_registries_section_pulls() {
    let env = Env::new().await;
    let (registry, image) = registry(&env).await;
    let empty = tempfile::tempdir().expect("tempdir");
    env.commit_manifest(&container(&env, &image));

    let run = env
        .refinery_env(&["apply", "--yes"], vars(empty.path(), &[]))
        .await;
    run.code(6)
        .outcome(&env.name("web"), "failed")
        .stdout_has("no basic auth credentials")
        .stderr_has(&format!("hint: run `docker login {}`", registry.host))
        .stderr_has("registries:");
    assert!(env.container("web").await.is_none());

    let body = format!(
        "registries:\n  - host: {}\n    username: {}\n    password: \"${{REG_TOKEN}}\"\n{}",
        registry.host,
        registry.user,
        container(&env, &image)
    );
    env.commit_manifest(&body);
    let secret = registry.password.as_str();
    let run = env
        .refinery_env(
            &["apply", "--yes"],
            vars(empty.path(), &[("REG_TOKEN", secret)]),
        )
        .await;
    run.code(0).outcome(&env.name("web"), "created");
    let c = env.existing("web").await;
    assert_eq!(c.image, image);
    let plan = env
        .refinery_env(
            &["plan", "--json"],
            vars(empty.path(), &[("REG_TOKEN", secret)]),
        )
        .await;
    plan.code(0);
    let ledger = std::fs::read_to_string(env.repo.path().join(LEDGER)).unwrap_or_default();
    for (what, text) in [
        ("apply stdout", &run.stdout),
        ("apply stderr", &run.stderr),
        ("plan", &plan.stdout),
        ("ledger", &ledger),
    ] {
        assert!(!text.contains(secret), "{what} leaks the password:\n{text}");
    }
}

#[tokio::test]
async fn registry_pull_with_docker_login_config_succeeds() {
    let env = Env::new().await;
    let (registry, image) = registry(&env).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // What `docker login 127.0.0.1:PORT` writes.
    std::fs::write(
        dir.path().join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
            registry.host,
            registry.auth_field()
        ),
    )
    .expect("write config.json");
    env.commit_manifest(&container(&env, &image));
    env.refinery_env(&["apply", "--yes"], vars(dir.path(), &[]))
        .await
        .code(0)
        .outcome(&env.name("web"), "created");
    testsupport::remove_image(&env.rt, &image).await.ok();
}
