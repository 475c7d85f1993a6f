//! Containers the selector shows but no manifest declares: alerted by default, removed only under
//! a `terminate` rule, never when excepted or protected, never from an empty or broken manifest.

use refinery_core::ContainerState;

use crate::common::{Env, IMAGE};

fn declared_web(env: &Env) -> String {
    format!(
        "containers:\n  - name: {}\n    image: {IMAGE}\n",
        env.name("web")
    )
}

#[tokio::test]
async fn unauthorized_default_rule_alerts_and_apply_keeps_it() {
    let env = Env::new().await;
    env.commit_manifest(&declared_web(&env));
    let rogue = env.name("rogue");
    let rogue_id = env.create_by_hand("rogue", env.spec("rogue")).await;

    env.refinery(&["plan"])
        .await
        .code(3)
        .row(&[
            &format!("docker/local/container/{rogue}"),
            "unauthorized",
            "alert",
        ])
        .stdout_has("declared nowhere");
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .outcome(&env.name("web"), "created")
        .outcome(&rogue, "skipped")
        .stdout_has("(`unauthorized` rule says alert)");

    let still = env.existing("rogue").await;
    assert_eq!(still.id, rogue_id);
    assert_eq!(still.state, ContainerState::Running);
    // Still reported: an alert is drift a human has to look at.
    env.refinery(&["plan"])
        .await
        .code(3)
        .stdout_has("unauthorized");
}

#[tokio::test]
async fn unauthorized_terminate_removes_it_but_not_exceptions_or_protected() {
    let env = Env::new().await;
    env.commit_manifest(&format!(
        "{}inventory:\n  protected: [\"*-guarded\"]\n\
         drift_rules:\n  unauthorized_containers: {{action: terminate, exceptions: [\"*-excepted\"]}}\n",
        declared_web(&env)
    ));
    for suffix in ["rogue", "excepted", "guarded"] {
        env.create_by_hand(suffix, env.spec(suffix)).await;
    }

    let plan = env.refinery(&["plan"]).await;
    plan.code(3).row(&[
        &format!("docker/local/container/{}", env.name("rogue")),
        "unauthorized",
        "remove",
    ]);
    for known in ["excepted", "guarded"] {
        assert!(
            !plan.stdout.contains(&env.name(known)),
            "an exception or a protected container is not drift\n{}",
            plan.transcript()
        );
    }

    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .outcome(&env.name("rogue"), "removed")
        .outcome(&env.name("web"), "created");

    assert!(env.container("rogue").await.is_none(), "rogue was removed");
    assert_eq!(
        env.existing("excepted").await.state,
        ContainerState::Running
    );
    assert_eq!(env.existing("guarded").await.state, ContainerState::Running);

    let after = env.refinery(&["plan"]).await;
    assert!(
        !after.stdout.contains(&env.name("rogue")),
        "{}",
        after.transcript()
    );
    // Removing again finds nothing to remove.
    let again = env.refinery(&["apply", "--yes"]).await;
    again.code(0).outcome(&env.name("web"), "unchanged");
    assert!(!again.stdout.contains("removed"), "{}", again.transcript());
}

#[tokio::test]
async fn empty_manifest_is_refused_and_removes_nothing_unless_allow_empty() {
    let env = Env::new().await;
    let rules = "drift_rules:\n  unauthorized_containers: {action: terminate}\n";
    env.commit_manifest(&format!("containers: []\n{rules}"));
    let rogue = env.name("rogue");
    env.create_by_hand("rogue", env.spec("rogue")).await;

    // Declaring nothing is an error at validate, plan and apply (issue 27): nothing is done.
    for args in [&["validate"][..], &["plan"], &["apply", "--yes"]] {
        let run = env.refinery(args).await;
        run.code(2)
            .stderr_has("error: refinery.yaml:")
            .stderr_has("`containers`: the manifest declares nothing: no containers, stacks or kubernetes sources")
            .stderr_has("set `allow_empty: true`");
        assert!(!run.stdout.contains("removed"), "{}", run.transcript());
    }
    assert!(env.container("rogue").await.is_some(), "nothing removed");

    env.commit_manifest(&format!("containers: []\nallow_empty: true\n{rules}"));
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .outcome(&rogue, "removed");
    assert!(env.container("rogue").await.is_none());
    env.refinery(&["plan"])
        .await
        .code(0)
        .stdout_has("in sync with");
}

#[tokio::test]
async fn invalid_manifest_with_terminate_rule_removes_nothing() {
    let env = Env::new().await;
    let rules = "drift_rules:\n  unauthorized_containers: {action: terminate}\n";
    let rogue_id = env.create_by_hand("rogue", env.spec("rogue")).await;

    // Broken YAML.
    env.commit_manifest(&format!(
        "containers:\n  - name: [{}\n{rules}",
        env.name("web")
    ));
    env.refinery(&["apply", "--yes"])
        .await
        .code(2)
        .stderr_has("error: refinery.yaml:4:12: invalid YAML")
        .stderr_has("hint: check indentation, quoting and unclosed `[`");
    // Valid YAML, invalid manifest.
    env.commit_manifest(&format!(
        "containers:\n  - name: {}\n    image: {IMAGE}\n    restart: allways\n{rules}",
        env.name("web")
    ));
    let apply = env.refinery(&["apply", "--yes"]).await;
    apply
        .code(2)
        .stderr_has("refinery.yaml:5:14: `containers[0].restart`")
        .stderr_has("did you mean `always`?");
    assert!(apply.stdout.is_empty(), "{}", apply.transcript());

    assert_eq!(env.existing("rogue").await.id, rogue_id, "nothing removed");
    assert!(env.container("web").await.is_none(), "nothing created");
}
