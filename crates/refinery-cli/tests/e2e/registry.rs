//! Images from a real registry (Debian's `docker-registry` with htpasswd authentication, started
//! on loopback by the test): `apply` pulls a private image with the docker CLI's credentials or
//! the manifest's `registries:`; without credentials the container fails (exit 6) with hints
//! naming `docker login HOST` and `registries:`; the password shows nowhere. The same registry
//! with token authentication (`TestRegistry::start_token`): tags listed and the image pulled
//! through the `Bearer` flow with `registries:`.

use std::ffi::OsString;
use std::path::PathBuf;

use refinery_docker::testsupport::{self, TestRegistry};

use crate::common::Env;

const LEDGER: &str = "ledger/container_ledger.jsonl";

/// A registry holding `app:1` (an image of this test's own; nothing of it left locally: the
/// shared test image is never pushed, so it keeps no digest of a registry).
pub(super) async fn registry(env: &Env) -> (TestRegistry, String) {
    let registry = TestRegistry::start("deploy", "pw-9f3c1e77").expect("start the registry");
    registry
        .push_new(&env.rt, &env.run, "app1", "app", &["1"])
        .await
        .expect("push the test image");
    let image = registry.reference("app", "1");
    (registry, image)
}

pub(super) fn container(env: &Env, image: &str) -> String {
    format!(
        "containers:\n  - name: {}\n    image: {image}\n",
        env.name("web")
    )
}

pub(super) fn vars(
    docker_config: &std::path::Path,
    extra: &[(&str, &str)],
) -> Vec<(String, OsString)> {
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
    // What `docker login 127.0.0.1:PORT` writes.
    let config = login(&env, &registry);
    env.commit_manifest(&container(&env, &image));
    env.refinery_env(&["apply", "--yes"], vars(&config, &[]))
        .await
        .code(0)
        .outcome(&env.name("web"), "created");
    testsupport::remove_image(&env.rt, &image).await.ok();
}

/// `docker login` for `registry`, in a fresh `DOCKER_CONFIG` of this test's own.
fn login(env: &Env, registry: &TestRegistry) -> PathBuf {
    registry.docker_config(&env.run).expect("docker login")
}

#[tokio::test]
async fn registry_digest_pin_runs_that_digest_and_another_pin_is_image_drift() {
    let env = Env::new().await;
    let (registry, _) = registry(&env).await;
    let first = registry.digest("app", "1").expect("digest");
    let second = registry
        .push_new(&env.rt, &env.run, "pin2", "app", &["2"])
        .await
        .expect("push app:2")
        .digest;
    // The tag moves on; the pin holds.
    registry.move_tag("app", "2", "1").expect("move app:1");
    let config = login(&env, &registry);
    let v = || vars(&config, &[]);

    let pin = format!("{}/app:1@{first}", registry.host);
    env.commit_manifest(&container(&env, &pin));
    env.refinery_env(&["apply", "--yes"], v())
        .await
        .code(0)
        .outcome(&env.name("web"), "created");
    env.refinery_env(&["plan"], v()).await.code(0);
    // The ledger records the registry digest the container was created from.
    let ledger = std::fs::read_to_string(env.repo.path().join(LEDGER)).expect("the ledger");
    let pinned_field = format!("\"image_digest\":\"{}/app@{first}\"", registry.host);
    assert!(
        ledger
            .lines()
            .any(|l| l.contains("\"kind\":\"birth\"") && l.contains(&pinned_field)),
        "{ledger}"
    );
    let status = env.refinery_env(&["status", "--json"], v()).await;
    let rows = status.code(0).json();
    let pinned = format!("{}/app@{first}", registry.host);
    assert_eq!(rows[0]["digest"], serde_json::json!(pinned), "{rows}");
    env.refinery_env(&["status"], v())
        .await
        .code(0)
        .stdout_has(&format!("({})", &first[..19]));

    // Pinned to the other digest: the running container is image drift, and apply replaces it.
    let repin = format!("{}/app:1@{second}", registry.host);
    env.commit_manifest(&container(&env, &repin));
    env.refinery_env(&["plan"], v())
        .await
        .code(3)
        .stdout_has("image");
    env.refinery_env(&["apply", "--yes"], v())
        .await
        .code(0)
        .outcome(&env.name("web"), "recreated");
    let rows = env
        .refinery_env(&["status", "--json"], v())
        .await
        .code(0)
        .json();
    assert_eq!(
        rows[0]["digest"],
        serde_json::json!(format!("{}/app@{second}", registry.host))
    );
}

#[tokio::test]
async fn registry_tag_moved_is_image_update_alerted_then_recreated() {
    let env = Env::new().await;
    let (registry, image) = registry(&env).await;
    let first = registry.digest("app", "1").expect("digest");
    let second = registry
        .push_new(&env.rt, &env.run, "upd2", "app", &["2"])
        .await
        .expect("push app:2")
        .digest;
    let config = login(&env, &registry);
    let v = || vars(&config, &[]);
    env.commit_manifest(&container(&env, &image));
    env.refinery_env(&["apply", "--yes"], v())
        .await
        .code(0)
        .outcome(&env.name("web"), "created");
    env.refinery_env(&["plan"], v()).await.code(0);
    let before = env.existing("web").await.id;

    // The tag moves in the registry (nothing local changes).
    registry.move_tag("app", "2", "1").expect("move app:1");
    let plan = env.refinery_env(&["plan"], v()).await;
    plan.code(3)
        .stdout_has("image_update")
        .stdout_has(&first[..19])
        .stdout_has(&second[..19]);
    let json = env.refinery_env(&["plan", "--json"], v()).await;
    assert!(
        json.stdout.contains("\"image_update\""),
        "{}",
        json.transcript()
    );
    env.refinery_env(&["status"], v())
        .await
        .stdout_has("image_update");
    // `alert` (the default) changes nothing.
    env.refinery_env(&["apply", "--yes"], v()).await.code(0);
    assert_eq!(env.existing("web").await.id, before);

    // `recreate` pulls the new digest and replaces the container.
    env.commit_manifest(&format!(
        "drift_rules:\n  image_update: {{action: recreate}}\n{}",
        container(&env, &image)
    ));
    env.refinery_env(&["apply", "--yes"], v())
        .await
        .code(0)
        .outcome(&env.name("web"), "recreated");
    let rows = env
        .refinery_env(&["status", "--json"], v())
        .await
        .code(0)
        .json();
    assert_eq!(
        rows[0]["digest"],
        serde_json::json!(format!("{}/app@{second}", registry.host))
    );
    env.refinery_env(&["plan"], v()).await.code(0);
}

#[tokio::test]
async fn registry_multi_platform_tag_is_an_update_only_when_this_platform_image_changes() {
    // A multi-platform tag is an index: its digest moves when any platform's image changes. The
    // node pulls (and runs) only its own platform's image, so only a change of that one is an
    // update for it.
    const OTHER: &str = "linux/s390x";
    let env = Env::new().await;
    let (registry, _) = registry(&env).await;
    let here = TestRegistry::engine_platform(&env.rt)
        .await
        .expect("platform");
    let mut pushed = Vec::new();
    for marker in ["mp-a", "mp-b", "mp-c"] {
        let p = registry
            .push_new(&env.rt, &env.run, marker, "app", &[marker])
            .await
            .expect("push");
        // Nothing of it stays local: the node gets it only by pulling the index.
        testsupport::remove_image(&env.rt, &p.local)
            .await
            .expect("remove the local image");
        pushed.push(p);
    }
    let [a, b, c] = &pushed[..] else {
        unreachable!("three images were pushed")
    };
    let image = registry.reference("app", "multi");
    let index = |entries: &[(&str, &str)]| {
        let digest = registry
            .push_index("app", "multi", entries)
            .expect("push the index");
        env.run
            .track_image(&format!("{}/app@{digest}", registry.host));
        digest
    };
    env.run.track_image(&image);
    let first = index(&[(&here, &a.digest), (OTHER, &b.digest)]);
    let config = login(&env, &registry);
    let v = || vars(&config, &[]);
    env.commit_manifest(&container(&env, &image));
    let applied = |outcome: &'static str, id: String, digest: String| {
        let v = v();
        let (env, registry) = (&env, &registry);
        async move {
            env.refinery_env(&["apply", "--yes"], v)
                .await
                .code(0)
                .outcome(&env.name("web"), outcome);
            let web = env.existing("web").await;
            assert_eq!(web.image_id, id, "runs this platform's image");
            assert_eq!(
                web.repo_digest,
                Some(format!("{}/app@{digest}", registry.host)),
                "created from the index's digest"
            );
        }
    };
    applied("created", a.id.clone(), first.clone()).await;
    env.refinery_env(&["plan"], v()).await.code(0);

    // Only the other platform's image changes: a new index digest, nothing new for this node.
    let second = index(&[(&here, &a.digest), (OTHER, &c.digest)]);
    assert_ne!(second, first);
    let plan = env.refinery_env(&["plan"], v()).await;
    plan.code(0);
    assert!(
        !plan.stdout.contains("image_update"),
        "{}",
        plan.transcript()
    );

    // This platform's image changes: an update, shown with the index digests.
    let third = index(&[(&here, &c.digest), (OTHER, &b.digest)]);
    env.refinery_env(&["plan"], v())
        .await
        .code(3)
        .stdout_has("image_update")
        .stdout_has(&first[..19])
        .stdout_has(&third[..19]);
    env.commit_manifest(&format!(
        "drift_rules:\n  image_update: {{action: recreate}}\n{}",
        container(&env, &image)
    ));
    applied("recreated", c.id.clone(), third).await;
    env.refinery_env(&["plan"], v()).await.code(0);
}

#[tokio::test]
async fn registry_outage_removes_nothing_and_a_missing_container_is_recreated_from_the_local_image()
{
    use refinery_core::ContainerRuntime as _;
    let env = Env::new().await;
    let (registry, image) = registry(&env).await;
    let config = login(&env, &registry);
    let v = || vars(&config, &[]);
    let body = format!(
        "containers:\n  - name: {web}\n    image: {image}\n  - name: {worker}\n    image: {image}\n",
        web = env.name("web"),
        worker = env.name("worker"),
    );
    env.commit_manifest(&body);
    env.refinery_env(&["apply", "--yes"], v()).await.code(0);
    let web = env.existing("web").await.id;
    let worker = env.existing("worker").await.id;

    // The registry goes away; one container goes missing.
    drop(registry);
    env.rt.remove(&worker).await.expect("remove the worker");
    let plan = env.refinery_env(&["plan"], v()).await;
    plan.code(3)
        .row(&[
            &format!("docker/local/container/{}", env.name("worker")),
            "missing",
        ])
        .stderr_has("failed to check the registry");
    assert!(
        !plan.stdout.contains("image_update"),
        "{}",
        plan.transcript()
    );
    env.refinery_env(&["apply", "--yes"], v())
        .await
        .code(0)
        .outcome(&env.name("worker"), "created");
    assert_eq!(
        env.existing("web").await.id,
        web,
        "the running container was kept"
    );
    env.refinery_env(&["plan"], v()).await.code(0);
}

/// The registry with token authentication (`auth: token`, as GHCR, Docker Hub, GitLab and Harbor
/// authenticate; `TestRegistry::start_token`): `apply` with the manifest's `registries:` lists
/// the tags through the `Bearer` flow (`image_policy`) and the engine pulls through its own
/// token flow with the same credentials; the password shows nowhere.
#[tokio::test]
async fn registry_token_auth_lists_tags_and_pulls_with_registries_section() {
    use std::sync::atomic::Ordering;

    let env = Env::new().await;
    let registry = TestRegistry::start_token("deploy", "pw-tok-6d2e41").expect("start");
    registry
        .push_new(
            &env.rt,
            &env.run,
            "tok",
            "app",
            &["1.4.0", "1.5.0", "2.0.0"],
        )
        .await
        .expect("push through the token flow");
    let counts = registry.token_counts().expect("a token registry");
    let empty = tempfile::tempdir().expect("tempdir");
    env.commit_manifest(&format!(
        "{}containers:\n  - name: {}\n    image: {}\n    image_policy: {{semver: \"^1.4\"}}\n",
        registry.manifest_registries("REG_TOKEN"),
        env.name("web"),
        registry.reference("app", "1.4.0")
    ));
    let secret = registry.password.as_str();
    let v = || vars(empty.path(), &[("REG_TOKEN", secret)]);
    let before = counts.password.load(Ordering::SeqCst);
    let run = env.refinery_env(&["apply", "--yes"], v()).await;
    run.code(0).outcome(&env.name("web"), "created");
    assert_eq!(
        env.existing("web").await.image,
        registry.reference("app", "1.5.0"),
        "created on the newest tag matching ^1.4"
    );
    assert!(
        counts.password.load(Ordering::SeqCst) >= before + 2,
        "tokens for the tag listing and for the engine's pull"
    );
    let plan = env.refinery_env(&["plan"], v()).await;
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
