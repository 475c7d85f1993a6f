//! Self-healing: a stopped, killed or crashed declared container runs again; a container changed
//! by hand is put back as declared.

use refinery_core::{ContainerRuntime, ContainerSpec, ContainerState, Secret};
use refinery_docker::testsupport;

use crate::common::{Env, IMAGE};
use crate::harness::{Daemon, eventually, kind, resource};

fn web(name: &str, extra: &str) -> String {
    format!("containers:\n  - name: {name}\n    image: {IMAGE}\n{extra}")
}

/// Waits until the container runs and is not `old_id`; returns the new state.
async fn running(env: &Env, d: &mut Daemon, suffix: &str) -> refinery_core::ObservedContainer {
    eventually("container running", d, || async {
        env.container(suffix)
            .await
            .filter(|c| c.state == ContainerState::Running)
    })
    .await
}

#[tokio::test]
async fn daemon_stopped_killed_and_crashed_containers_run_again() {
    let env = Env::new().await;
    let name = env.name("web");
    env.commit_manifest(&web(&name, ""));
    let mut d = Daemon::start(&env, &[]);

    // Missing at start: created.
    let c = running(&env, &mut d, "web").await;

    // Stopped by hand: started again, and the stop is in the ledger as an outside change.
    env.rt.stop(&c.id, 5).await.expect("stop by hand");
    let c2 = running(&env, &mut d, "web").await;
    assert_eq!(c2.id, c.id, "a stopped container is started, not replaced");
    d.wait_entry("outside stop", |e| {
        kind(e) == "mutation"
            && e["actor"] == "outside"
            && e["step"] == "stop"
            && resource(e).ends_with(&name)
    })
    .await;

    // Crashed (SIGKILL to its process from the host): running again.
    testsupport::crash_container(&env.rt, &c.id)
        .await
        .expect("crash");
    eventually("restarted after crash", &mut d, || async {
        env.container("web")
            .await
            .filter(|c| c.state == ContainerState::Running && c.started_at != c2.started_at)
    })
    .await;

    // Removed by hand: created again.
    env.rt.remove(&c.id).await.expect("remove by hand");
    let c3 = running(&env, &mut d, "web").await;
    assert_ne!(c3.id, c.id);
    d.wait_entry("outside removal", |e| {
        kind(e) == "death" && e["actor"] == "outside" && resource(e).ends_with(&name)
    })
    .await;
    d.stop().await;
    env.refinery(&["ledger", "verify"]).await.code(0);
}

#[tokio::test]
async fn daemon_container_recreated_by_hand_with_other_env_or_image_is_put_back() {
    let env = Env::new().await;
    let name = env.name("web");
    env.commit_manifest(&web(
        &name,
        // A grace period on `missing`: replacing a container by hand (remove, then create) must
        // not race the daemon recreating it in between.
        "    env: {MODE: declared}\ndrift_rules:\n  image_drift: {action: rollback}\n  missing_containers: {action: recreate, grace_period: 3s}\n",
    ));
    let mut d = Daemon::start(&env, &[]);
    let c = running(&env, &mut d, "web").await;

    // Someone replaces it with another environment.
    env.rt.remove(&c.id).await.expect("remove");
    let mut spec: ContainerSpec = env.spec("web");
    spec.env
        .insert("MODE".into(), Secret::new("by-hand", false));
    env.create_by_hand("web", spec).await;
    eventually("env put back", &mut d, || async {
        env.container("web").await.filter(|c| {
            c.state == ContainerState::Running
                && c.env.get("MODE").map(String::as_str) == Some("declared")
        })
    })
    .await;

    // Someone replaces it with another image: rolled back to the declared one.
    let (other_tag, other_id) = env
        .run
        .own_image(&env.rt, "other")
        .await
        .expect("own image");
    assert_ne!(other_id, env.image_id);
    let current = env.existing("web").await;
    env.rt.remove(&current.id).await.expect("remove");
    let mut spec: ContainerSpec = env.spec("web");
    spec.image = other_tag;
    spec.env
        .insert("MODE".into(), Secret::new("declared", false));
    env.create_by_hand("web", spec).await;
    eventually("image rolled back", &mut d, || async {
        env.container("web")
            .await
            .filter(|c| c.state == ContainerState::Running && c.image_id == env.image_id)
    })
    .await;
    d.wait_entry("rollback entry", |e| {
        kind(e) == "rollback" && resource(e).ends_with(&name)
    })
    .await;
    d.stop().await;
}

#[tokio::test]
async fn daemon_start_puts_back_a_container_an_interrupted_recreate_set_aside() {
    let env = Env::new().await;
    let name = env.name("web");
    env.commit_manifest(&web(&name, ""));
    // What a crash between "set the old container aside" and "start the new one" leaves.
    let aside = env
        .create_by_hand("web.refinery-old", env.spec("web"))
        .await;
    let mut d = Daemon::start(&env, &[]);
    let c = running(&env, &mut d, "web").await;
    assert_eq!(
        c.id, aside,
        "the set-aside container is renamed back, not replaced"
    );
    assert!(env.container("web.refinery-old").await.is_none());
    d.wait_entry("recover entry", |e| {
        kind(e) == "action" && e["step"] == "recover" && resource(e).ends_with(&name)
    })
    .await;
    d.stop().await;
}
