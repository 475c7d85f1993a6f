//! Plan: decisions into one step per resource, strongest first, ordered by resource id.

use jiff::Timestamp;
use refinery_core::drift::{Drift, DriftKind, FieldChange};
use refinery_core::plan::{StepKind, plan};
use refinery_core::policy::{Action, Decision, Verdict};
use refinery_core::testing::{self, observed_node, spec};
use refinery_core::{ContainerState, ImageDefaults, Observed, ResourceId};

fn drift(name: &str, kind: DriftKind, field: &str) -> Drift {
    Drift {
        id: ResourceId::container(testing::NODE, name),
        kind,
        container_id: Some(testing::container_id(name)),
        summary: format!("{field} differs"),
        changes: vec![FieldChange {
            field: field.into(),
            desired: "a".into(),
            observed: "b".into(),
            ignored: false,
        }],
    }
}

fn act(d: Drift, action: Action) -> Decision {
    Decision {
        drift: d,
        verdict: Verdict::Act { action },
    }
}

fn with(d: Drift, verdict: Verdict) -> Decision {
    Decision { drift: d, verdict }
}

fn observed(state: ContainerState) -> Observed {
    let mut o = observed_node(&[&spec("web")], &ImageDefaults::default());
    o.containers[0].state = state;
    o
}

fn later() -> Timestamp {
    testing::ts("2025-01-05T12:05:00Z")
}

#[test]
fn plan_several_drifts_of_one_resource_make_one_step_strongest_wins() {
    let decisions = [
        act(drift("web", DriftKind::Status, "status"), Action::Restart),
        act(drift("web", DriftKind::Config, "env.A"), Action::Recreate),
    ];
    let p = plan(&decisions, &observed(ContainerState::Exited));
    assert_eq!(p.steps.len(), 1);
    let s = &p.steps[0];
    assert_eq!(s.kind, StepKind::Recreate);
    assert_eq!(s.drifts, [DriftKind::Status, DriftKind::Config]);
    assert_eq!(
        s.details,
        ["status: status differs", "config: env.A differs"]
    );
    assert_eq!(s.changes.len(), 2);
    assert_eq!(s.reason, "`config` rule: recreate");
}

#[test]
fn plan_act_beats_alert_beats_defer_beats_ignore() {
    let o = observed(ContainerState::Running);
    let cases = [
        (
            Verdict::Ignore { why: "i".into() },
            Verdict::Defer { until: later() },
            StepKind::Defer,
        ),
        (
            Verdict::Defer { until: later() },
            Verdict::Alert { why: "a".into() },
            StepKind::Alert,
        ),
        (
            Verdict::Alert { why: "a".into() },
            Verdict::Act {
                action: Action::Restart,
            },
            StepKind::Restart,
        ),
    ];
    for (first, second, want) in cases {
        for (a, b) in [
            (first.clone(), second.clone()),
            (second.clone(), first.clone()),
        ] {
            let decisions = [
                with(drift("web", DriftKind::Image, "image"), a),
                with(drift("web", DriftKind::Status, "status"), b),
            ];
            assert_eq!(
                plan(&decisions, &o).steps[0].kind,
                want,
                "{first:?} + {second:?}"
            );
        }
    }
}

#[test]
fn plan_defer_reason_names_deadline() {
    let decisions = [with(
        drift("web", DriftKind::Config, "env.A"),
        Verdict::Defer { until: later() },
    )];
    let p = plan(&decisions, &observed(ContainerState::Running));
    assert_eq!(p.steps[0].reason, "grace period until 2025-01-05T12:05:00Z");
    assert!(p.writes().next().is_none());
}

#[test]
fn plan_steps_are_ordered_by_resource_id() {
    let decisions = [
        act(drift("web", DriftKind::Config, "env.A"), Action::Recreate),
        act(drift("api", DriftKind::Missing, "-"), Action::Recreate),
        act(
            drift("cache", DriftKind::Unauthorized, "-"),
            Action::Terminate,
        ),
    ];
    let p = plan(&decisions, &observed(ContainerState::Running));
    let got: Vec<(&str, StepKind)> = p.steps.iter().map(|s| (s.id.name(), s.kind)).collect();
    assert_eq!(
        got,
        [
            ("api", StepKind::Create),
            ("cache", StepKind::Remove),
            ("web", StepKind::Recreate)
        ]
    );
}

#[test]
fn plan_unauthorized_acted_on_without_terminate_is_not_removed() {
    for action in [Action::Recreate, Action::Restart, Action::Rollback] {
        let decisions = [act(drift("stray", DriftKind::Unauthorized, "-"), action)];
        let p = plan(&decisions, &Observed::default());
        assert_eq!(p.steps[0].kind, StepKind::Alert, "{action}");
    }
}

#[test]
fn plan_act_maps_action_and_drift_to_step() {
    for (kind, action, state, want) in [
        (
            DriftKind::Missing,
            Action::Recreate,
            ContainerState::Running,
            StepKind::Create,
        ),
        (
            DriftKind::Image,
            Action::Rollback,
            ContainerState::Running,
            StepKind::Rollback,
        ),
        (
            DriftKind::Image,
            Action::Recreate,
            ContainerState::Running,
            StepKind::Recreate,
        ),
        (
            DriftKind::Config,
            Action::Rollback,
            ContainerState::Running,
            StepKind::Rollback,
        ),
        (
            DriftKind::Status,
            Action::Recreate,
            ContainerState::Exited,
            StepKind::Recreate,
        ),
        (
            DriftKind::Status,
            Action::Restart,
            ContainerState::Exited,
            StepKind::Start,
        ),
        (
            DriftKind::Status,
            Action::Restart,
            ContainerState::Paused,
            StepKind::Unpause,
        ),
        (
            DriftKind::Status,
            Action::Restart,
            ContainerState::Running,
            StepKind::Restart,
        ),
    ] {
        let p = plan(&[act(drift("web", kind, "x"), action)], &observed(state));
        assert_eq!(p.steps[0].kind, want, "{kind} {action} {state}");
    }
}

#[test]
fn plan_no_decisions_is_empty() {
    assert!(plan(&[], &Observed::default()).steps.is_empty());
}

#[test]
fn step_kind_writes_only_engine_changes() {
    use StepKind::*;
    for kind in [Recreate, Rollback, Create, Remove, Restart, Start, Unpause] {
        assert!(kind.writes(), "{kind}");
    }
    for kind in [Alert, Defer, Protected, Ignore] {
        assert!(!kind.writes(), "{kind}");
    }
}

#[test]
fn plan_serializes_tagged_snake_case() {
    let decisions = [act(
        drift("web", DriftKind::Config, "env.A"),
        Action::Recreate,
    )];
    let json =
        serde_json::to_value(plan(&decisions, &observed(ContainerState::Running))).expect("json");
    assert_eq!(json["steps"][0]["kind"], "recreate");
    assert_eq!(json["steps"][0]["drifts"][0], "config");
    assert_eq!(json["steps"][0]["id"], "docker/lyra/container/web");
}
