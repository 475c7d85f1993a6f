//! Declared containers that are missing, stopped, paused, on another image, or blocked by a taken
//! port; and what is enforced when the work tree holds uncommitted changes.

use refinery_core::{ContainerRuntime, ContainerState, PortBinding, Protocol, Secret};
use refinery_docker::testsupport;

use crate::common::{Env, IMAGE};

/// A manifest declaring one container `name` on the shared image, plus `extra` lines (indented
/// under the container).
fn one_container(name: &str, extra: &str) -> String {
    format!("containers:\n  - name: {name}\n    image: {IMAGE}\n{extra}")
}

#[tokio::test]
async fn missing_container_apply_creates_and_rerun_is_noop() {
    let env = Env::new().await;
    let web = env.name("web");
    let commit = env.commit_manifest(&one_container(&web, "    env: {LOG_LEVEL: info}\n"));

    env.refinery(&["plan"]).await.code(3).row(&[
        &format!("docker/local/container/{web}"),
        "missing",
        "create",
    ]);
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .outcome(&web, "created");

    let c = env.existing("web").await;
    assert_eq!(c.state, ContainerState::Running);
    assert_eq!(c.image_id, env.image_id);
    assert_eq!(c.env.get("LOG_LEVEL").map(String::as_str), Some("info"));
    assert_eq!(c.labels.get("io.refinery.revision"), Some(&commit));
    assert_eq!(
        c.labels.get("io.refinery.managed").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        c.labels.get("io.refinery.test"),
        Some(&env.run.id().to_owned()),
        "what Refinery creates carries the selector label"
    );

    env.refinery(&["plan"])
        .await
        .code(0)
        .stdout_has("in sync with");

    // Re-running is a no-op: everything unchanged, the container untouched.
    let again = env.refinery(&["apply", "--yes"]).await;
    again.code(0).outcome(&web, "unchanged");
    assert_eq!(again.stdout.lines().count(), 1, "{}", again.transcript());
    assert_eq!(env.existing("web").await.id, c.id);
}

#[tokio::test]
async fn crashed_container_plan_shows_status_and_apply_restarts() {
    let env = Env::new().await;
    let web = env.name("web");
    env.commit_manifest(&one_container(&web, ""));
    env.refinery(&["apply", "--yes"]).await.code(0);
    let before = env.existing("web").await;

    testsupport::crash_container(&env.rt, &before.id)
        .await
        .expect("crash the container");
    env.wait_state("web", ContainerState::Exited).await;

    env.refinery(&["plan"])
        .await
        .code(3)
        .stdout_has("status")
        .stdout_has("exited (code 137)")
        .stdout_has("status: exited (code 137) → running");
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .outcome(&web, "restarted");

    let after = env.existing("web").await;
    assert_eq!(after.state, ContainerState::Running);
    assert_eq!(after.id, before.id, "restarted in place, not recreated");
    env.refinery(&["plan"])
        .await
        .code(0)
        .stdout_has("in sync with");

    // Stopped by hand through the API (SIGTERM; the image exits 0 on it): the same drift.
    env.rt.stop(&after.id, 5).await.expect("stop the container");
    env.wait_state("web", ContainerState::Exited).await;
    env.refinery(&["plan"]).await.code(3).row(&[
        &format!("docker/local/container/{web}"),
        "status",
        "start",
        "exited (code 0)",
    ]);
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .outcome(&web, "restarted");
    assert_eq!(env.existing("web").await.state, ContainerState::Running);
    env.refinery(&["plan"]).await.code(0);
}

#[tokio::test]
async fn paused_container_plan_shows_status_and_apply_unpauses() {
    let env = Env::new().await;
    let web = env.name("web");
    env.commit_manifest(&one_container(&web, ""));
    env.refinery(&["apply", "--yes"]).await.code(0);
    let before = env.existing("web").await;

    testsupport::pause(&env.rt, &before.id)
        .await
        .expect("pause the container");

    env.refinery(&["plan"]).await.code(3).row(&[
        &format!("docker/local/container/{web}"),
        "status",
        "unpause",
        "paused",
    ]);
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .outcome(&web, "restarted");

    let after = env.existing("web").await;
    assert_eq!(after.state, ContainerState::Running);
    assert_eq!(after.id, before.id);
    env.refinery(&["plan"]).await.code(0);
}

/// Creates `web` by hand from this run's own image (another image id) where the manifest says
/// the shared image; returns the hand-made container's id.
async fn web_on_other_image(env: &Env) -> String {
    let (tag, other_id) = env
        .run
        .own_image(&env.rt, "other")
        .await
        .expect("build this run's own image");
    assert_ne!(
        other_id, env.image_id,
        "the run's image is a distinct image id"
    );
    let mut spec = env.spec("web");
    spec.image = tag;
    env.create_by_hand("web", spec).await
}

#[tokio::test]
async fn image_drift_apply_recreates_from_declared_image() {
    let env = Env::new().await;
    let web = env.name("web");
    env.commit_manifest(&one_container(&web, ""));
    let by_hand = web_on_other_image(&env).await;

    env.refinery(&["plan"]).await.code(3).row(&[
        &format!("docker/local/container/{web}"),
        "image",
        "recreate",
    ]);
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .outcome(&web, "recreated");

    let after = env.existing("web").await;
    assert_ne!(after.id, by_hand);
    assert_eq!(after.image_id, env.image_id);
    assert_eq!(after.state, ContainerState::Running);
    env.refinery(&["plan"]).await.code(0);
}

#[tokio::test]
async fn image_drift_rollback_rule_outcome_is_rolled_back() {
    let env = Env::new().await;
    let web = env.name("web");
    env.commit_manifest(&format!(
        "{}drift_rules:\n  image_drift: {{action: rollback}}\n",
        one_container(&web, "")
    ));
    web_on_other_image(&env).await;

    env.refinery(&["plan"]).await.code(3).row(&[
        &format!("docker/local/container/{web}"),
        "image",
        "rollback",
    ]);
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .outcome(&web, "rolled back");
    assert_eq!(env.existing("web").await.image_id, env.image_id);
    env.refinery(&["plan"]).await.code(0);
}

#[tokio::test]
async fn uncommitted_change_warns_and_committed_version_is_enforced() {
    let env = Env::new().await;
    let web = env.name("web");
    env.commit_manifest(&one_container(&web, "    env: {LOG_LEVEL: info}\n"));
    // Changed in the work tree, never committed.
    env.repo.write(
        "refinery.yaml",
        env.manifest(&one_container(&web, "    env: {LOG_LEVEL: debug}\n")),
    );

    let warning = "uncommitted changes are not enforced";
    env.refinery(&["plan"]).await.code(3).stderr_has(warning);
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .stderr_has(warning)
        .stderr_has("`refinery.yaml` in the work tree differs from commit")
        .outcome(&web, "created");

    let c = env.existing("web").await;
    assert_eq!(c.env.get("LOG_LEVEL").map(String::as_str), Some("info"));
    env.refinery(&["plan"]).await.code(0).stderr_has(warning);
}

/// A host port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

#[tokio::test]
async fn port_taken_at_create_fails_that_resource_and_applies_the_rest() {
    let env = Env::new().await;
    let port = free_port();
    // Another container, declared nowhere, holds the port.
    let mut holder = env.spec("holder");
    holder.ports = vec![PortBinding {
        host_ip: "127.0.0.1".into(),
        host_port: Some(port),
        container_port: 8080,
        protocol: Protocol::Tcp,
    }];
    holder
        .env
        .insert("ROLE".into(), Secret::new("holder", false));
    env.create_by_hand("holder", holder).await;

    let web = env.name("web");
    let worker = env.name("worker");
    env.commit_manifest(&format!(
        "containers:\n\
         \x20 - name: {web}\n    image: {IMAGE}\n    ports: [\"127.0.0.1:{port}:8080\"]\n\
         \x20 - name: {worker}\n    image: {IMAGE}\n"
    ));

    let apply = env.refinery(&["apply", "--yes"]).await;
    apply
        .code(6)
        .outcome(&web, "failed")
        .stdout_has(&format!("failed to bind host port {port}"))
        .outcome(&worker, "created")
        .outcome(&env.name("holder"), "skipped");

    assert!(
        env.container("web").await.is_none(),
        "no half-made container is left"
    );
    assert_eq!(env.existing("worker").await.state, ContainerState::Running);
    assert_eq!(env.existing("holder").await.state, ContainerState::Running);
    env.refinery(&["plan"]).await.code(3).row(&[
        &format!("docker/local/container/{web}"),
        "missing",
        "create",
    ]);
}

#[tokio::test]
async fn image_absent_locally_fails_with_a_clear_pull_error_and_applies_the_rest() {
    let env = Env::new().await;
    let web = env.name("web");
    let worker = env.name("worker");
    // No registry is reachable here, so the pull path can only be tested for its error.
    let absent = format!("refinery-absent-{}:1", env.name("img"));
    env.commit_manifest(&format!(
        "containers:\n\
         \x20 - name: {web}\n    image: {absent}\n\
         \x20 - name: {worker}\n    image: {IMAGE}\n"
    ));
    env.refinery(&["apply", "--yes"])
        .await
        .code(6)
        .outcome(&web, "failed")
        .stdout_has(&format!(
            "image `{absent}` is not present locally and could not be pulled"
        ))
        .outcome(&worker, "created");
    assert!(env.container("web").await.is_none(), "nothing half-made");
}

#[tokio::test]
async fn stopped_container_the_daemon_holds_back_is_planned_as_its_alert() {
    let env = Env::new().await;
    let web = env.name("web");
    let id = format!("docker/local/container/{web}");
    env.commit_manifest(&one_container(&web, ""));
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .outcome(&web, "created");
    let c = env.existing("web").await;
    env.rt.stop(&c.id, 5).await.expect("stop the container");
    env.wait_state("web", ContainerState::Exited).await;
    env.refinery(&["plan"])
        .await
        .code(3)
        .row(&[&id, "status", "start"]);

    // The daemon's state (default state directory): flap protection stopped acting on it under
    // this very spec. `plan` says what the daemon would do: alert, not start.
    let mut state = refinery_core::daemon_state::DaemonState::default();
    state.suspended.insert(
        id.clone(),
        refinery_core::daemon_state::Suspension {
            since: jiff::Timestamp::now(),
            actions: 5,
            window_secs: 600,
            spec_hash: c.labels.get(refinery_core::labels::SPEC_HASH).cloned(),
        },
    );
    let dir = refinery_controller::default_state_dir(env.repo.path()).expect("state dir");
    refinery_store::state_file::save(&refinery_store::state_file::path_in(&dir), &state)
        .expect("save the daemon state");
    env.refinery(&["plan"])
        .await
        .code(3)
        .row(&[&id, "status", "alert"])
        .stdout_has("apply would change 0");
}
