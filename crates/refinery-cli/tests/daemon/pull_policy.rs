//! `pull_policy: every_2s` against a real registry (Debian's `docker-registry` on loopback, with
//! credentials from `registries:`): the daemon pulls the compose service's tag again once the
//! period is over, even while the container runs, and a tag moved in the registry (with its HTTP
//! API, so nothing becomes local by accident) moves the running service to the new image, as
//! `image` drift. `image_update` is `ignore` here, so nothing but the refresh can notice the move.

use std::ffi::OsStr;
use std::time::Instant;

use refinery_core::{ContainerRuntime, ContainerState};
use refinery_docker::testsupport::TestRegistry;

use crate::common::Env;
use crate::harness::{Daemon, eventually, kind, resource};

const PASSWORD: &str = "pw-pullpolicy-7d41aa";

#[tokio::test]
async fn daemon_pull_policy_every_moves_the_running_service_to_the_tag_moved_in_the_registry() {
    let env = Env::new().await;
    let registry = TestRegistry::start("deploy", PASSWORD).expect("start the registry");
    let a = registry
        .push_new(&env.rt, &env.run, "pp-a", "app", &["a"])
        .await
        .expect("push a");
    let b = registry
        .push_new(&env.rt, &env.run, "pp-b", "app", &["b"])
        .await
        .expect("push b");
    registry
        .move_tag("app", "a", "stable")
        .expect("app:stable → a");
    let image = registry.reference("app", "stable");
    env.run.track_image(&image);

    let project = env.name("pp");
    env.commit_file(
        "docker-compose.yml",
        &format!("services:\n  web:\n    image: {image}\n    pull_policy: every_2s\n"),
    );
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
    let web = format!("{project}_web_1");
    let web_id = format!("docker/local/stack/{project}/web/1");
    let token = [("REG_TOKEN", OsStr::new(PASSWORD))];
    // The periodic pass stays at its default 60 s: the refresh wakes the loop on its own.
    let mut d = Daemon::start_with_env(env.repo.path(), &[], &token);
    let runs = |id: String| {
        let (env, web) = (&env, &web);
        async move {
            env.rt
                .inspect(web)
                .await
                .ok()
                .filter(|c| c.image_id == id && c.state == ContainerState::Running)
        }
    };
    let first = eventually("web created on a", &mut d, || runs(a.id.clone())).await;

    // The tag moves in the registry: within a period or two the daemon pulls it again and
    // replaces the running container.
    registry
        .move_tag("app", "b", "stable")
        .expect("app:stable → b");
    let moved = Instant::now();
    let second = eventually("web moved to b", &mut d, || runs(b.id.clone())).await;
    let took = moved.elapsed();
    assert_ne!(first.id, second.id, "a new container");
    assert!(
        took.as_secs_f64() < 15.0,
        "moved {took:?} after the tag, far below the 60 s periodic pass"
    );
    let recreate = d
        .wait_entry("the recreate on record", |e| {
            kind(e) == "mutation" && resource(e) == web_id
        })
        .await;
    assert_eq!(recreate["outcome"], "recreated", "{recreate}");
    assert!(
        recreate["image_digest"]
            .as_str()
            .is_some_and(|d| d.ends_with(&format!("@{}", b.digest))),
        "{recreate}"
    );

    // The time of the last pull is in the state file (saved after each pass), for the next
    // daemon.
    let state_file = refinery_store::state_file::path_in(&d.state_dir);
    eventually("the pull time saved", &mut d, || async {
        refinery_store::state_file::load(&state_file)
            .ok()
            .filter(|s| {
                s.pulled
                    .get("local")
                    .is_some_and(|m| m.contains_key(&image))
            })
    })
    .await;
    d.stop().await;
}
