//! `image_policy: {semver: "^1.4"}` against a real registry (Debian's `docker-registry` with
//! htpasswd authentication, on loopback; the docker CLI's credentials): a missing container is
//! created on the newest matching tag, a newer matching tag is `image_update` drift naming the
//! tag (reported under `alert`, moved to under `recreate`), and a tag outside the range is never
//! chosen.

use std::ffi::OsString;

use refinery_docker::testsupport::TestRegistry;

use crate::common::Env;

#[tokio::test]
async fn image_policy_follows_the_newest_matching_tag_of_the_registry() {
    let env = Env::new().await;
    let registry = TestRegistry::start("deploy", "pw-51d0a2c8").expect("start the registry");
    let local = registry
        .push_new(
            &env.rt,
            &env.run,
            "semver",
            "app",
            &["1.4.0", "1.4.2", "1.5.0", "2.0.0"],
        )
        .await
        .expect("push")
        .local;
    let config = registry.docker_config(&env.run).expect("docker login");
    let v = || -> Vec<(String, OsString)> {
        vec![("DOCKER_CONFIG".to_owned(), config.as_os_str().to_owned())]
    };
    let manifest = |rules: &str| {
        format!(
            "{rules}containers:\n  - name: {}\n    image: {}\n    image_policy: {{semver: \"^1.4\"}}\n",
            env.name("web"),
            registry.reference("app", "1.4.2")
        )
    };
    env.commit_manifest(&manifest(""));
    env.refinery_env(&["validate"], v()).await.code(0);

    // Missing: created on the newest tag matching ^1.4 (1.5.0; never 2.0.0).
    env.refinery_env(&["plan"], v())
        .await
        .code(3)
        .stdout_has(&format!(
            "will be created on `{}`",
            registry.reference("app", "1.5.0")
        ));
    env.refinery_env(&["apply", "--yes"], v())
        .await
        .code(0)
        .outcome(&env.name("web"), "created");
    let web = env.existing("web").await;
    assert_eq!(web.image, registry.reference("app", "1.5.0"));
    env.refinery_env(&["plan"], v()).await.code(0);

    // 1.6.0 appears: `image_update` naming the tag, reported (alert) and nothing changed.
    registry
        .push_as(&env.rt, &env.run, &local, "app", &["1.6.0"])
        .await
        .expect("push 1.6.0");
    let update = format!(
        "update available: {} → 1.6.0",
        registry.reference("app", "1.5.0")
    );
    env.refinery_env(&["plan"], v())
        .await
        .code(3)
        .stdout_has("image_update")
        .stdout_has(&update)
        .stdout_has(&registry.reference("app", "1.6.0"));
    let json = env.refinery_env(&["plan", "--json"], v()).await;
    assert!(
        json.stdout.contains("\"image_update\"") && json.stdout.contains("1.6.0"),
        "{}",
        json.transcript()
    );
    env.refinery_env(&["status"], v()).await.stdout_has(&update);
    let rows = env.refinery_env(&["status", "--json"], v()).await.json();
    assert_eq!(
        rows[0]["update"],
        serde_json::json!(format!(
            "{update} (running {})",
            &registry.digest("app", "1.5.0").expect("digest")[..19]
        ))
    );
    env.refinery_env(&["apply", "--yes"], v()).await.code(0);
    assert_eq!(
        env.existing("web").await.id,
        web.id,
        "alert changes nothing"
    );

    // `recreate`: moved to 1.6.0, then in sync; 2.0.0 is never chosen.
    env.commit_manifest(&manifest(
        "drift_rules:\n  image_update: {action: recreate}\n",
    ));
    env.refinery_env(&["apply", "--yes"], v())
        .await
        .code(0)
        .outcome(&env.name("web"), "recreated");
    assert_eq!(
        env.existing("web").await.image,
        registry.reference("app", "1.6.0")
    );
    env.refinery_env(&["plan"], v()).await.code(0);
}
