//! Revisions: a new commit converges, a broken or empty one removes nothing, an unhealthy one is
//! rolled back to the last healthy revision.

use std::time::Duration;

use refinery_core::ContainerState;

use crate::common::{Env, IMAGE};
use crate::harness::{Daemon, eventually, kind};

fn two(a: &str, b: &str) -> String {
    format!(
        "containers:\n  - name: {a}\n    image: {IMAGE}\n  - name: {b}\n    image: {IMAGE}\n    env: {{V: \"2\"}}\n"
    )
}

#[tokio::test]
async fn daemon_new_commit_converges_and_broken_or_empty_commit_removes_nothing() {
    let env = Env::new().await;
    let web = env.name("web");
    let api = env.name("api");
    let rules = "drift_rules:\n  unauthorized_containers: {action: terminate}\n";
    env.commit_manifest(&format!(
        "containers:\n  - name: {web}\n    image: {IMAGE}\n{rules}"
    ));
    let mut d = Daemon::start(&env, &[]);
    eventually("web running", &mut d, || async {
        env.container("web")
            .await
            .filter(|c| c.state == ContainerState::Running)
    })
    .await;

    // A new commit adds a container: the daemon deploys it.
    let second = env.commit_manifest(&format!("{}{rules}", two(&web, &api)));
    eventually("api deployed", &mut d, || async {
        env.container("api").await.filter(|c| {
            c.state == ContainerState::Running
                && c.labels.get("io.refinery.revision") == Some(&second)
        })
    })
    .await;

    // A broken manifest: reported, the last good revision stays, nothing is removed.
    let broken = env.commit_file("refinery.yaml", "containers: [\n  - name: x\n");
    d.wait_entry("load failure alert", |e| {
        kind(e) == "alert"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("failed to load revision") && m.contains(&broken[..12]))
    })
    .await;
    // A manifest that declares nothing, with a terminate rule: still nothing removed.
    env.commit_manifest(rules);
    d.wait_entry("empty revision", |e| {
        kind(e) == "revision" && e["to"].as_str() != Some(second.as_str()) && !e["from"].is_null()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        env.container("web").await.is_some(),
        "empty manifest: nothing removed"
    );
    assert!(
        env.container("api").await.is_some(),
        "empty manifest: nothing removed"
    );

    // A good commit again, changing an env value: the container is recreated as declared.
    env.commit_manifest(&format!(
        "{}{rules}",
        two(&web, &api).replace("\"2\"", "\"3\"")
    ));
    eventually("api recreated with V=3", &mut d, || async {
        env.container("api").await.filter(|c| {
            c.state == ContainerState::Running && c.env.get("V").map(String::as_str) == Some("3")
        })
    })
    .await;
    d.stop().await;
}

#[tokio::test]
async fn daemon_unhealthy_revision_is_rolled_back_to_the_last_healthy_one() {
    let env = Env::new().await;
    let web = env.name("web");
    let cfg = |cmd: &str| {
        env.manifest(&format!(
            "containers:\n  - name: {web}\n    image: {IMAGE}\n{cmd}drift_rules:\n  flapping: {{max_actions: 100, window: 1m}}\n"
        ))
        .replace("config: {", "config: {health_deadline: 4s, ")
    };
    let good = env.commit_file("refinery.yaml", &cfg(""));
    let mut d = Daemon::start(&env, &[]);
    let state_file = d.state_dir.join("state.json");
    // Healthy once it has run for the settle time (half the deadline here).
    eventually("good revision healthy", &mut d, || async {
        let state = std::fs::read_to_string(&state_file).ok();
        state.filter(|s| s.contains(&format!("\"last_healthy\": \"{good}\"")))
    })
    .await;

    let bad = env.commit_file(
        "refinery.yaml",
        &cfg("    command: [\"sh\", \"-c\", \"exit 7\"]\n"),
    );
    d.wait_entry("rolled back", |e| {
        kind(e) == "alert"
            && e["message"].as_str().is_some_and(|m| {
                m.contains("rolled back") && m.contains(&bad[..12]) && m.contains(&good[..12])
            })
    })
    .await;
    eventually("good revision running again", &mut d, || async {
        env.container("web").await.filter(|c| {
            c.state == ContainerState::Running
                && c.labels.get("io.refinery.revision") == Some(&good)
        })
    })
    .await;
    // It stays on the good revision while the bad one is the branch's tip.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let c = env.existing("web").await;
    assert_eq!(c.labels.get("io.refinery.revision"), Some(&good));
    assert_eq!(c.state, ContainerState::Running);
    d.stop().await;
}
