//! Putting a rejected image update back: the rollback step recreates the container from the
//! image its tag was pointed back at (kept locally) and never pulls, even under
//! `pull_policy: always`, which would fetch the rejected digest again. An engine that records
//! every write call is used on purpose: the point is which calls a real engine would receive.

use refinery_core::image_update::DIGEST_FIELD;
use refinery_core::testing::{Recorder, manifest, observed_node, spec};
use refinery_core::{
    DriftKind, ExtraOptions, FieldChange, ImageDefaults, Outcome, PullPolicy, ResourceId, Step,
    StepKind,
};
use refinery_engine::apply_plan;

fn step(kind: StepKind, drift: DriftKind, changes: Vec<FieldChange>) -> Step {
    Step {
        id: ResourceId::container(refinery_core::testing::NODE, "web"),
        kind,
        container_id: Some(refinery_core::testing::container_id("web")),
        drifts: vec![drift],
        details: Vec::new(),
        changes,
        reason: "test".into(),
    }
}

#[tokio::test]
async fn putting_an_image_update_back_never_pulls_even_under_pull_policy_always() {
    let mut web = spec("web");
    web.options.extra = ExtraOptions {
        pull_policy: Some(PullPolicy::Always),
        ..Default::default()
    }
    .boxed();
    let observed = observed_node(&[&web], &ImageDefaults::default());
    let m = manifest(vec![web]);
    let back = step(
        StepKind::Rollback,
        DriftKind::Image,
        vec![FieldChange {
            field: DIGEST_FIELD.into(),
            desired: "sha256:old".into(),
            observed: "sha256:rejected".into(),
            ignored: false,
        }],
    );

    let rt = Recorder::default();
    let results = apply_plan(&rt, &m, &[back], &observed, "rev", &|_| {}).await;
    assert_eq!(results[0].outcome, Outcome::RolledBack, "{results:?}");
    let writes = rt.writes();
    assert!(
        !writes.iter().any(|w| w.starts_with("pull ")),
        "no pull: {writes:?}"
    );
    assert!(
        writes.iter().any(|w| w.starts_with("create ")),
        "{writes:?}"
    );

    // The same policy on any other recreate pulls first (what the rollback must not do).
    let rt = Recorder::default();
    let recreate = step(StepKind::Recreate, DriftKind::Config, Vec::new());
    apply_plan(&rt, &m, &[recreate], &observed, "rev", &|_| {}).await;
    let writes = rt.writes();
    assert!(
        writes.first().is_some_and(|w| w.starts_with("pull ")),
        "pulled first: {writes:?}"
    );
}
