//! Report-only per resource: `drift_action: alert` on one compose service (its `x-refinery`
//! block) overrides the drift rules, so when it is killed the daemon alerts and leaves it down,
//! while its neighbour is healed.

use std::time::Duration;

use refinery_core::{ContainerRuntime, ContainerState};
use refinery_docker::testsupport;

use crate::common::{Env, IMAGE};
use crate::harness::{Daemon, eventually, kind, resource};
use crate::receiver::Receiver;

#[tokio::test]
async fn daemon_report_only_service_killed_is_alerted_not_healed() {
    let env = Env::new().await;
    let rx = Receiver::start().await;
    let project = env.name("ro");
    // Deployed first; then made report-only (a report-only resource is never written to, not
    // even created).
    let compose = |extra: &str| {
        format!("services:\n  watched:\n    image: {IMAGE}\n{extra}  healed:\n    image: {IMAGE}\n")
    };
    env.commit_file("docker-compose.yml", &compose(""));
    env.commit_manifest(&format!(
        "stacks:\n  - name: {project}\n    files: [docker-compose.yml]\n\
         alerting:\n  channels:\n    - {{type: webhook, url: \"{}\"}}\n",
        rx.url("hook")
    ));
    let watched = format!("{project}_watched_1");
    let healed = format!("{project}_healed_1");
    let mut d = Daemon::start(&env, &[]);
    let running = |name: String| {
        let env = &env;
        async move {
            env.rt
                .inspect(&name)
                .await
                .ok()
                .filter(|c| c.state == ContainerState::Running)
        }
    };
    let w = eventually("watched created", &mut d, || running(watched.clone())).await;
    let h = eventually("healed created", &mut d, || running(healed.clone())).await;
    env.commit_file(
        "docker-compose.yml",
        &compose("    x-refinery: {drift_action: alert}\n"),
    );
    d.wait_entry("revision", |e| {
        kind(e) == "revision" && !e["from"].is_null()
    })
    .await;
    // Engine events within a second of Refinery's own action count as its own: kill later.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    testsupport::crash_container(&env.rt, &w.id)
        .await
        .expect("kill watched");
    testsupport::crash_container(&env.rt, &h.id)
        .await
        .expect("kill healed");

    // The neighbour is healed …
    eventually("healed runs again", &mut d, || async {
        env.rt
            .inspect(&healed)
            .await
            .ok()
            .filter(|c| c.state == ContainerState::Running && c.started_at != h.started_at)
    })
    .await;
    // … the report-only one is alerted, with the reason, on the ledger and the webhook.
    let id = format!("docker/local/stack/{project}/watched/1");
    let alert = d
        .wait_entry("report-only alert", |e| {
            kind(e) == "alert" && resource(e) == id
        })
        .await;
    assert!(
        alert["message"]
            .as_str()
            .is_some_and(|m| m.contains("drift_action: alert")),
        "{alert}"
    );
    eventually("webhook told", &mut d, || async {
        rx.got("hook")
            .iter()
            .any(|r| r.body.to_string().contains(&id))
            .then_some(())
    })
    .await;
    // The alert is the pass's decision (a restart would have been planned instead).
    let still = env.rt.inspect(&watched).await.expect("inspect watched");
    assert_eq!(
        still.state,
        ContainerState::Exited,
        "report-only: not healed"
    );
    assert_eq!(still.id, w.id, "report-only: not replaced");
    d.stop().await;
}
