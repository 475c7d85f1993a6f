//! `pull_policy: every_…` under a one-shot `refinery apply`, against a real registry: `apply`
//! keeps no pull times of its own (and no daemon ran here), so it pulls the tag again before it
//! replaces a container made from it, and not for a container it leaves alone.

use refinery_core::ContainerRuntime;
use refinery_docker::testsupport::TestRegistry;

use crate::common::Env;

const PASSWORD: &str = "pw-pullpolicy-apply-2b9e";

#[tokio::test]
async fn apply_pull_policy_every_pulls_again_before_a_recreate_and_not_for_a_container_left_alone()
{
    let env = Env::new().await;
    let registry = TestRegistry::start("deploy", PASSWORD).expect("start the registry");
    let a = registry
        .push_new(&env.rt, &env.run, "ppa-a", "app", &["a"])
        .await
        .expect("push a");
    let b = registry
        .push_new(&env.rt, &env.run, "ppa-b", "app", &["b"])
        .await
        .expect("push b");
    registry
        .move_tag("app", "a", "stable")
        .expect("app:stable → a");
    let image = registry.reference("app", "stable");
    env.run.track_image(&image);
    let project = env.name("ppa");
    let compose = |version: &str| {
        format!(
            "services:\n  web:\n    image: {image}\n    pull_policy: every_1s\n    environment: [VERSION={version}]\n"
        )
    };
    env.commit_file("docker-compose.yml", &compose("1"));
    env.commit_file(
        "refinery.yaml",
        &format!(
            "config: {{selector: \"{selector}\"}}\n\
             {registries}\
             drift_rules:\n  image_update: {{action: ignore}}\n\
             stacks:\n  - name: {project}\n    files: [docker-compose.yml]\n",
            selector = env.selector(),
            registries = registry.manifest_registries("REG_TOKEN"),
        ),
    );
    let docker_config = tempfile::tempdir().expect("temp dir");
    let vars = || {
        vec![
            ("REG_TOKEN".to_owned(), PASSWORD.into()),
            (
                "DOCKER_CONFIG".to_owned(),
                docker_config.path().as_os_str().to_owned(),
            ),
        ]
    };
    let web = format!("{project}_web_1");
    let web_id = format!("docker/local/stack/{project}/web/1");
    let image_of = || async { env.rt.inspect(&web).await.map(|c| c.image_id).ok() };

    env.refinery_env(&["apply", "--yes"], vars())
        .await
        .code(0)
        .stdout_has(&format!("{web_id} created"));
    assert_eq!(image_of().await, Some(a.id.clone()), "created on a");

    // The tag moves; the period (1 s) passes. Nothing about `web` changed: `apply` leaves it
    // alone and does not pull (the daemon would).
    registry
        .move_tag("app", "b", "stable")
        .expect("app:stable → b");
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let run = env.refinery_env(&["apply", "--yes"], vars()).await;
    run.code(0).stdout_has(&format!("{web_id} unchanged"));
    assert!(!run.stderr.contains("pulling"), "{}", run.transcript());
    assert_eq!(image_of().await, Some(a.id.clone()), "left alone on a");

    // A change that replaces it: the tag is pulled first, so the new container runs b.
    env.commit_file("docker-compose.yml", &compose("2"));
    env.refinery_env(&["apply", "--yes"], vars())
        .await
        .code(0)
        .stderr_has(&format!("pulling `{image}`"))
        .stdout_has(&format!("{web_id} recreated"));
    assert_eq!(
        image_of().await,
        Some(b.id.clone()),
        "recreated on the tag's new image"
    );
}
