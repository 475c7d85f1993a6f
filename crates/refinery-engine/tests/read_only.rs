//! `read-only` never writes to an engine: every kind of drift, under rules that would all act,
//! goes through evaluate and apply against an engine that records every call, and no write call
//! is made. A fake engine is used on purpose: the point is to count the calls a real engine would
//! have received.

use refinery_core::manifest::{Mode, Rule};
use refinery_core::testing::{self, Recorder, manifest, observed_node, spec, stray};
use refinery_core::{Action, ContainerState, ImageDefaults};
use refinery_engine::{apply_plan, evaluate};

fn acting(action: Action) -> Option<Rule> {
    Some(Rule {
        action,
        grace_period_secs: 0,
        exceptions: Vec::new(),
    })
}

#[tokio::test]
async fn read_only_node_every_drift_kind_makes_no_write_call() {
    let missing = spec("missing");
    let mut config = spec("config");
    let exited = spec("exited");
    let image = spec("image");
    let mut observed = observed_node(&[&config, &exited, &image], &ImageDefaults::default());
    config
        .env
        .insert("A".into(), refinery_core::Secret::new("declared", false));
    if let Some(c) = observed.containers.iter_mut().find(|c| c.name == "exited") {
        c.state = ContainerState::Exited;
    }
    if let Some(c) = observed.containers.iter_mut().find(|c| c.name == "image") {
        c.image_id = testing::image_id("other:1");
    }
    observed.containers.push(stray("rogue", "busybox:1.36"));

    let mut m = manifest(vec![missing, config, exited, image]);
    m.config.mode = Mode::ReadOnly;
    m.drift_rules.unauthorized_containers = acting(Action::Terminate);
    m.drift_rules.missing_containers = acting(Action::Recreate);
    m.drift_rules.image_drift = acting(Action::Rollback);
    m.drift_rules.config_drift = acting(Action::Recreate);
    m.drift_rules.status_drift = acting(Action::Restart);

    let eval = evaluate(
        &m,
        testing::NODE,
        &observed,
        testing::now(),
        &Default::default(),
        true,
        None,
    );
    assert_eq!(eval.report.drifts.len(), 5, "{:#?}", eval.report);
    assert_eq!(eval.plan.writes().count(), 0, "{:#?}", eval.plan);

    let rt = Recorder::default();
    let results = apply_plan(&rt, &m, &eval.plan.steps, &observed, "rev", &|_| {}).await;
    assert_eq!(results.len(), eval.plan.steps.len());
    let writes = rt.writes();
    assert!(writes.is_empty(), "write calls: {writes:?}");
}
