//! Policy in the daemon: unauthorized containers, grace periods, exceptions, protected patterns,
//! audit mode, maintenance windows and flap protection.

use refinery_core::{ContainerRuntime, ContainerState};

use crate::common::{Env, IMAGE};
use crate::harness::{Daemon, eventually, kind, resource};

#[tokio::test]
async fn daemon_rogue_container_is_alerted_by_default_and_removed_only_by_terminate_after_grace() {
    let env = Env::new().await;
    let web = env.name("web");
    let decl = format!("containers:\n  - name: {web}\n    image: {IMAGE}\n");
    env.commit_manifest(&decl);
    let mut d = Daemon::start(&env, &[]);

    // Default rule: a rogue `docker run` is reported, not removed.
    let rogue = env.name("rogue");
    let born = jiff::Timestamp::now();
    env.create_by_hand("rogue", env.spec("rogue")).await;
    d.wait_entry("unauthorized drift", |e| {
        kind(e) == "drift" && e["drift"] == "unauthorized" && resource(e).ends_with(&rogue)
    })
    .await;
    d.wait_entry("alert", |e| {
        kind(e) == "alert" && resource(e).ends_with(&rogue)
    })
    .await;
    // The alert is the pass's decision: a removal would have been recorded instead.
    assert!(env.container("rogue").await.is_some(), "alert only: kept");

    // An explicit terminate rule with a grace period: removed once the grace has passed, but
    // never an excepted or protected one.
    env.commit_manifest(&format!(
        "{decl}drift_rules:\n  unauthorized_containers: {{action: terminate, grace_period: 2s, exceptions: [\"*-keep\"]}}\ninventory:\n  protected: [\"*-prot\"]\n"
    ));
    env.create_by_hand("keep", env.spec("keep")).await;
    env.create_by_hand("prot", env.spec("prot")).await;
    let removed = d
        .wait_entry("rogue removed", |e| {
            kind(e) == "death" && e["actor"] == "refinery" && resource(e).ends_with(&rogue)
        })
        .await;
    // Grace is counted from when the drift was first seen: never less than 2 s after the rogue
    // appeared.
    let seen = born;
    let gone: jiff::Timestamp = removed["time"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .expect("time");
    assert!(
        gone.duration_since(seen) >= jiff::SignedDuration::from_secs(2),
        "removed at {gone}, first seen at {seen}\nledger:\n{}",
        std::fs::read_to_string(&d.ledger).unwrap_or_default()
    );
    assert!(env.container("rogue").await.is_none());
    // That excepted and protected ones are kept past their grace is proven on paused time
    // (refinery-controller loop_tests.rs), not by sleeping here and seeing nothing happen.
    d.stop().await;
}

#[tokio::test]
async fn daemon_audit_mode_and_maintenance_window_take_no_action() {
    let env = Env::new().await;
    let web = env.name("web");
    let decl = format!("containers:\n  - name: {web}\n    image: {IMAGE}\n");
    env.commit_manifest(&decl);
    let mut d = Daemon::start(&env, &[]);
    let c = eventually("created", &mut d, || async {
        env.container("web")
            .await
            .filter(|c| c.state == ContainerState::Running)
    })
    .await;

    // Two windows that together cover the whole day, allowing drift.
    env.commit_manifest(&format!(
        "{decl}maintenance_windows:\n  - {{name: am, day: daily, start_time: \"00:00\", end_time: \"12:00\", timezone: UTC, allow_drift: true}}\n  - {{name: pm, day: daily, start_time: \"12:00\", end_time: \"00:00\", timezone: UTC, allow_drift: true}}\n"
    ));
    d.wait_entry("revision", |e| {
        kind(e) == "revision" && !e["from"].is_null()
    })
    .await;
    env.rt.stop(&c.id, 5).await.expect("stop");
    d.wait_entry("status drift alerted", |e| {
        kind(e) == "alert"
            && resource(e).ends_with(&web)
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("maintenance window"))
    })
    .await;
    // The alert is the pass's decision (an action would have been recorded instead).
    assert_eq!(env.existing("web").await.state, ContainerState::Exited);

    // Audit mode: still no action.
    let audit = env
        .manifest(&decl)
        .replace("config: {", "config: {mode: audit, ");
    env.commit_file("refinery.yaml", &audit);
    d.wait_entry("audit alert", |e| {
        kind(e) == "alert"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("audit mode"))
    })
    .await;
    // The alert is the pass's decision (an action would have been recorded instead).
    assert_eq!(env.existing("web").await.state, ContainerState::Exited);
    d.stop().await;
}

#[tokio::test]
async fn daemon_crash_loop_stops_acting_until_resumed() {
    let env = Env::new().await;
    let bad = env.name("bad");
    let id = format!("docker/local/container/{bad}");
    env.commit_manifest(&format!(
        "containers:\n  - name: {bad}\n    image: {IMAGE}\n    command: [\"sh\", \"-c\", \"exit 3\"]\ndrift_rules:\n  flapping: {{max_actions: 3, window: 1m}}\n"
    ));
    let mut d = Daemon::start(&env, &[]);
    d.wait_entry("flap protection alert", |e| {
        kind(e) == "alert"
            && resource(e) == id
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("flap protection"))
    })
    .await;
    let ledger = d.ledger.clone();
    let acted = || {
        std::fs::read_to_string(&ledger)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| resource(e) == id && e["actor"] == "refinery" && e.get("outcome").is_some())
            .count()
    };
    let before = acted();
    assert_eq!(before, 3, "three actions, then it stops");
    // A later pass finds it exited again and holds back: its alert is the proof it was decided on.
    d.wait_entry("not acting while suspended", |e| {
        kind(e) == "alert"
            && resource(e) == id
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("flap protection: not acting"))
    })
    .await;
    assert_eq!(acted(), before, "no action while suspended");
    let not_acting = d
        .entry_values()
        .iter()
        .filter(|e| {
            kind(e) == "alert"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("flap protection: not acting"))
        })
        .count();
    assert!(
        not_acting <= 1,
        "alerted once, not every pass: {not_acting}"
    );

    env.refinery(&["resume", &id, "--state-dir", &d.state_dir.to_string_lossy()])
        .await
        .code(0);
    eventually("acts again after resume", &mut d, || {
        let n = acted();
        async move { (n > before).then_some(()) }
    })
    .await;
    d.stop().await;
}
