//! `refinery chaos` against a running daemon: every fault is injected, detected and healed.

use crate::common::{Env, IMAGE};
use crate::harness::{Daemon, eventually, kind};

#[tokio::test]
async fn chaos_every_fault_heals_under_the_daemon() {
    let env = Env::new().await;
    let a = env.name("a");
    let b = env.name("b");
    env.commit_manifest(&format!(
        "containers:\n  - name: {a}\n    image: {IMAGE}\n  - name: {b}\n    image: {IMAGE}\ndrift_rules:\n  unauthorized_containers: {{action: terminate}}\n  flapping: {{max_actions: 100, window: 10m}}\n"
    ));
    // Flap protection is raised: a fast run injects enough faults into one container (5 in
    // 5 s) to trip the default of 5 actions in 10 minutes, which would rightly stop the heals.
    let mut d = Daemon::start(&env, &[]);
    eventually("both running", &mut d, || async {
        let ra = env
            .container("a")
            .await
            .is_some_and(|c| c.state == refinery_core::ContainerState::Running);
        let rb = env
            .container("b")
            .await
            .is_some_and(|c| c.state == refinery_core::ContainerState::Running);
        (ra && rb).then_some(())
    })
    .await;

    let state_dir = d.state_dir.to_string_lossy().into_owned();
    let run = env
        .refinery(&[
            "chaos",
            // Long enough for four faults and their heals on a loaded two-core machine (a heal
            // there takes up to 2 s).
            "--duration",
            "9s",
            "--seed",
            "7",
            "--faults",
            "kill,stop,pause,remove,rogue,env",
            "--heal-timeout",
            "20s",
            "--pause",
            "100ms",
            "--state-dir",
            &state_dir,
            "--json",
        ])
        .await;
    assert_eq!(
        run.code,
        0,
        "{}\ndaemon log:\n{}",
        run.transcript(),
        d.log_text()
    );
    let report = run.json();
    let samples = report["samples"].as_array().cloned().unwrap_or_default();
    assert!(samples.len() >= 4, "{}", run.transcript());
    for s in &samples {
        assert_eq!(s["healed"], true, "{}", run.transcript());
        assert!(s["detect_ms"].as_u64().is_some(), "detected: {s}");
    }
    // The run is recorded in the daemon's ledger.
    d.wait_entry("chaos note", |e| {
        kind(e) == "alert"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("chaos run (seed 7)"))
    })
    .await;
    d.stop().await;
}
