//! Policy: defaults, grace periods, exceptions, protection, modes, empty manifests, maintenance
//! windows and per-resource overrides, checked through diff → decide → plan on built states.

use refinery_core::drift::DriftKind;
use refinery_core::labels;
use refinery_core::manifest::{Allowed, MaintenanceWindow, Manifest, Mode, Rule, WindowDay};
use refinery_core::plan::StepKind;
use refinery_core::policy::{Action, Verdict, drift_key, rule_for, window_active};
use refinery_core::testing::{self, Evaluated, Pass, manifest, observed_node, spec, stray, ts};
use refinery_core::{ContainerSpec, ContainerState, Health, ImageDefaults, Observed, ResourceId};

fn id(name: &str) -> ResourceId {
    ResourceId::container(testing::NODE, name)
}

fn rule(action: Action, grace_secs: u64) -> Rule {
    Rule {
        action,
        grace_period_secs: grace_secs,
        exceptions: Vec::new(),
    }
}

/// `web` declared and running exactly as created.
fn web_in_sync() -> (Manifest, Observed) {
    let web = spec("web");
    let observed = observed_node(&[&web], &ImageDefaults::default());
    (manifest(vec![web]), observed)
}

/// `web` declared, its env changed on the engine.
fn web_config_drift() -> (Manifest, Observed) {
    let (m, mut o) = web_in_sync();
    o.containers[0]
        .env
        .insert("LOG_LEVEL".into(), "debug".into());
    (m, o)
}

/// `web` declared, running another image.
fn web_image_drift() -> (Manifest, Observed) {
    let (m, mut o) = web_in_sync();
    o.containers[0].image = "busybox:1.35".into();
    o.containers[0].image_id = testing::image_id("busybox:1.35");
    (m, o)
}

/// `web` in sync plus an undeclared `name`.
fn with_stray(name: &str) -> (Manifest, Observed) {
    let (m, mut o) = web_in_sync();
    o.containers.push(stray(name, "adminer:4"));
    (m, o)
}

fn steps(e: &Evaluated) -> Vec<(String, StepKind)> {
    e.plan
        .steps
        .iter()
        .map(|s| (s.id.name().to_owned(), s.kind))
        .collect()
}

fn step_of(e: &Evaluated, name: &str) -> Option<StepKind> {
    e.plan
        .steps
        .iter()
        .find(|s| s.id == id(name))
        .map(|s| s.kind)
}

fn verdicts(e: &Evaluated) -> Vec<(DriftKind, Verdict)> {
    e.decisions
        .iter()
        .map(|d| (d.drift.kind, d.verdict.clone()))
        .collect()
}

fn alert_why(e: &Evaluated) -> String {
    match &e.decisions[0].verdict {
        Verdict::Alert { why } => why.clone(),
        other => panic!("expected an alert, got {other:?}"),
    }
}

// ---- defaults ----

#[test]
fn rule_for_absent_rules_uses_documented_defaults() {
    let m = manifest(Vec::new());
    for (kind, action) in [
        (DriftKind::Missing, Action::Recreate),
        (DriftKind::Status, Action::Restart),
        (DriftKind::Image, Action::Recreate),
        (DriftKind::Config, Action::Recreate),
        (DriftKind::Unauthorized, Action::Alert),
    ] {
        assert_eq!(rule_for(&m, kind), rule(action, 0), "{kind}");
    }
}

#[test]
fn policy_missing_default_creates() {
    let (m, _) = web_in_sync();
    let e = Pass::default().run(&m, &Observed::default());
    assert_eq!(steps(&e), [("web".to_owned(), StepKind::Create)]);
    assert_eq!(e.plan.steps[0].reason, "`missing` rule: recreate");
}

#[test]
fn policy_status_default_restarts_by_state() {
    for (state, health, step) in [
        (ContainerState::Exited, Health::None, StepKind::Start),
        (ContainerState::Dead, Health::None, StepKind::Start),
        (ContainerState::Created, Health::None, StepKind::Start),
        (ContainerState::Paused, Health::None, StepKind::Unpause),
        (ContainerState::Restarting, Health::None, StepKind::Restart),
        (
            ContainerState::Running,
            Health::Unhealthy,
            StepKind::Restart,
        ),
    ] {
        let (m, mut o) = web_in_sync();
        o.containers[0].state = state;
        o.containers[0].health = health;
        let e = Pass::default().run(&m, &o);
        assert_eq!(steps(&e), [("web".to_owned(), step)], "{state} {health}");
    }
}

#[test]
fn policy_running_starting_and_removing_are_no_status_drift() {
    for (state, health) in [
        (ContainerState::Running, Health::Starting),
        (ContainerState::Running, Health::Healthy),
        (ContainerState::Removing, Health::None),
    ] {
        let (m, mut o) = web_in_sync();
        o.containers[0].state = state;
        o.containers[0].health = health;
        assert!(
            Pass::default().run(&m, &o).plan.steps.is_empty(),
            "{state} {health}"
        );
    }
}

#[test]
fn policy_image_and_config_default_recreate() {
    for (m, o) in [web_image_drift(), web_config_drift()] {
        let e = Pass::default().run(&m, &o);
        assert_eq!(steps(&e), [("web".to_owned(), StepKind::Recreate)]);
    }
}

#[test]
fn policy_image_drift_rollback_rule_rolls_back() {
    let (mut m, o) = web_image_drift();
    m.drift_rules.image_drift = Some(rule(Action::Rollback, 0));
    assert_eq!(
        step_of(&Pass::default().run(&m, &o), "web"),
        Some(StepKind::Rollback)
    );
}

#[test]
fn policy_unauthorized_default_alerts() {
    let (m, o) = with_stray("adminer");
    let e = Pass::default().run(&m, &o);
    assert_eq!(steps(&e), [("adminer".to_owned(), StepKind::Alert)]);
    assert_eq!(alert_why(&e), "`unauthorized` rule says alert");
}

#[test]
fn policy_unauthorized_only_terminate_removes() {
    // The parser only accepts terminate/alert/ignore here; a built manifest may hold anything,
    // and nothing but an explicit `terminate` may remove a container.
    for action in [Action::Recreate, Action::Restart, Action::Rollback] {
        let (mut m, o) = with_stray("adminer");
        m.drift_rules.unauthorized_containers = Some(rule(action, 0));
        let e = Pass::default().run(&m, &o);
        assert!(
            e.plan.writes().next().is_none(),
            "{action}: {:?}",
            steps(&e)
        );
    }
}

#[test]
fn policy_rule_ignore_plans_ignore_step() {
    let (mut m, o) = web_config_drift();
    m.drift_rules.config_drift = Some(rule(Action::Ignore, 0));
    let e = Pass::default().run(&m, &o);
    assert_eq!(steps(&e), [("web".to_owned(), StepKind::Ignore)]);
}

// ---- grace periods ----

#[test]
fn policy_terminate_within_grace_defers_until_first_seen_plus_grace() {
    let (mut m, o) = with_stray("adminer");
    m.drift_rules.unauthorized_containers = Some(rule(Action::Terminate, 60));
    let key = format!("{} unauthorized", id("adminer"));
    let first = ts("2025-01-05T11:59:30Z");
    let e = Pass::default().first_seen(&key, first).run(&m, &o);
    assert_eq!(drift_key(&e.decisions[0].drift), key);
    assert_eq!(
        verdicts(&e),
        [(
            DriftKind::Unauthorized,
            Verdict::Defer {
                until: ts("2025-01-05T12:00:30Z")
            }
        )]
    );
    assert_eq!(steps(&e), [("adminer".to_owned(), StepKind::Defer)]);
    assert_eq!(
        e.plan.steps[0].reason,
        "grace period until 2025-01-05T12:00:30Z"
    );
}

#[test]
fn policy_terminate_after_grace_removes() {
    let (mut m, o) = with_stray("adminer");
    m.drift_rules.unauthorized_containers = Some(rule(Action::Terminate, 60));
    let key = format!("{} unauthorized", id("adminer"));
    for first in ["2025-01-05T11:59:00Z", "2025-01-05T11:00:00Z"] {
        let e = Pass::default().first_seen(&key, ts(first)).run(&m, &o);
        assert_eq!(
            verdicts(&e),
            [(
                DriftKind::Unauthorized,
                Verdict::Act {
                    action: Action::Terminate
                }
            )],
            "first seen {first}"
        );
        assert_eq!(steps(&e), [("adminer".to_owned(), StepKind::Remove)]);
        assert_eq!(
            e.plan.steps[0].container_id,
            Some(testing::container_id("adminer"))
        );
    }
}

#[test]
fn policy_grace_first_sighting_defers_from_now() {
    let (mut m, o) = web_config_drift();
    m.drift_rules.config_drift = Some(rule(Action::Recreate, 300));
    let e = Pass::default().run(&m, &o);
    assert_eq!(
        verdicts(&e),
        [(
            DriftKind::Config,
            Verdict::Defer {
                until: ts("2025-01-05T12:05:00Z")
            }
        )]
    );
}

#[test]
fn policy_manual_apply_ignores_grace() {
    let (mut m, o) = web_config_drift();
    m.drift_rules.config_drift = Some(rule(Action::Recreate, 300));
    let e = Pass::default().honor_grace(false).run(&m, &o);
    assert_eq!(steps(&e), [("web".to_owned(), StepKind::Recreate)]);
}

// ---- exceptions, allowed, protected, self ----

#[test]
fn policy_unauthorized_exception_or_allowed_has_no_decision() {
    let (mut m, mut o) = with_stray("dev-shell");
    o.containers.push(stray("odoo-dev-1", "odoo:17"));
    m.drift_rules.unauthorized_containers = Some(Rule {
        exceptions: vec!["dev-*".into()],
        ..rule(Action::Terminate, 0)
    });
    m.inventory.allowed = Allowed {
        containers: vec!["odoo-dev*".into()],
        ..Allowed::default()
    };
    let e = Pass::default().run(&m, &o);
    assert_eq!(e.report.drifts.len(), 2, "both still show as drift");
    assert!(e.decisions.is_empty(), "{:?}", verdicts(&e));
    assert!(e.plan.steps.is_empty());
}

#[test]
fn policy_protected_unauthorized_with_terminate_is_known_inventory() {
    let (mut m, o) = with_stray("prod-cache");
    m.inventory.protected = vec!["prod-*".into()];
    m.drift_rules.unauthorized_containers = Some(rule(Action::Terminate, 0));
    let e = Pass::default().honor_grace(false).run(&m, &o);
    // Never touched, and not drift either: `plan` stays in sync beside protected containers.
    assert!(e.decisions.is_empty(), "{:?}", verdicts(&e));
    assert!(e.plan.steps.is_empty());
}

#[test]
fn policy_protected_declared_container_is_never_touched() {
    let db = ContainerSpec {
        image: "postgres:16".into(),
        ..spec("prod-db")
    };
    let mut o = observed_node(&[&db], &ImageDefaults::default());
    o.containers[0].env.insert("X".into(), "1".into());
    o.containers[0].state = ContainerState::Exited;
    let mut m = manifest(vec![db.clone()]);
    m.inventory.protected = vec!["prod-*".into()];
    let e = Pass::default().honor_grace(false).run(&m, &o);
    assert_eq!(steps(&e), [("prod-db".to_owned(), StepKind::Protected)]);
    assert!(
        e.decisions
            .iter()
            .all(|d| matches!(d.verdict, Verdict::Protected { .. }))
    );
    // Missing: not even created.
    let e = Pass::default()
        .honor_grace(false)
        .run(&m, &Observed::default());
    assert_eq!(steps(&e), [("prod-db".to_owned(), StepKind::Protected)]);
}

#[test]
fn policy_refinery_controller_label_is_never_a_step() {
    let (mut m, mut o) = with_stray("refinery");
    o.containers[1]
        .labels
        .insert(labels::CONTROLLER.into(), "true".into());
    m.drift_rules.unauthorized_containers = Some(rule(Action::Terminate, 0));
    let e = Pass::default().honor_grace(false).run(&m, &o);
    assert!(e.decisions.is_empty(), "{:?}", verdicts(&e));
    assert!(e.plan.steps.is_empty());
}

#[test]
fn policy_self_container_id_prefix_is_never_a_step() {
    let (mut m, o) = with_stray("agent");
    m.drift_rules.unauthorized_containers = Some(rule(Action::Terminate, 0));
    let short = &testing::container_id("agent")[..12];
    let e = Pass::default()
        .honor_grace(false)
        .self_container_id(short)
        .run(&m, &o);
    assert!(
        e.plan.steps.is_empty(),
        "refinery's own container is never a step"
    );
    // An empty self id protects nothing.
    let e = Pass::default()
        .honor_grace(false)
        .self_container_id("")
        .run(&m, &o);
    assert_eq!(steps(&e), [("agent".to_owned(), StepKind::Remove)]);
}

#[test]
fn policy_declared_self_container_is_protected_even_when_drifted() {
    let (m, mut o) = web_config_drift();
    o.containers[0]
        .labels
        .insert(labels::CONTROLLER.into(), "true".into());
    let e = Pass::default().run(&m, &o);
    assert_eq!(steps(&e), [("web".to_owned(), StepKind::Protected)]);
}

// ---- modes ----

#[test]
fn policy_audit_mode_alerts_instead_of_acting() {
    let (mut m, mut o) = web_config_drift();
    o.containers.push(stray("adminer", "adminer:4"));
    m.drift_rules.unauthorized_containers = Some(rule(Action::Terminate, 0));
    m.config.mode = Mode::Audit;
    let e = Pass::default().run(&m, &o);
    assert_eq!(
        steps(&e),
        [
            ("adminer".to_owned(), StepKind::Alert),
            ("web".to_owned(), StepKind::Alert)
        ]
    );
    assert!(e.decisions.iter().all(|d| d.verdict
        == Verdict::Alert {
            why: "audit mode".into()
        }));
}

#[test]
fn policy_read_only_node_alerts_and_plans_no_write() {
    let (mut m, mut o) = web_config_drift();
    o.containers[0].state = ContainerState::Exited;
    o.containers.push(stray("adminer", "adminer:4"));
    m.drift_rules.unauthorized_containers = Some(rule(Action::Terminate, 0));
    m.nodes[0].mode = Some(Mode::ReadOnly);
    let e = Pass::default().run(&m, &o);
    assert!(e.plan.writes().next().is_none(), "{:?}", steps(&e));
    assert!(e.decisions.iter().all(|d| d.verdict
        == Verdict::Alert {
            why: "node is read-only".into()
        }));
    // Missing too.
    let e = Pass::default().run(&m, &Observed::default());
    assert_eq!(steps(&e), [("web".to_owned(), StepKind::Alert)]);
}

#[test]
fn policy_node_enforce_overrides_global_read_only() {
    let (mut m, o) = web_config_drift();
    m.config.mode = Mode::ReadOnly;
    m.nodes[0].mode = Some(Mode::Enforce);
    assert_eq!(
        step_of(&Pass::default().run(&m, &o), "web"),
        Some(StepKind::Recreate)
    );
}

// ---- empty manifests ----

#[test]
fn policy_empty_manifest_never_removes() {
    let mut m = manifest(Vec::new());
    m.drift_rules.unauthorized_containers = Some(rule(Action::Terminate, 0));
    let o = Observed {
        containers: vec![stray("web", "nginx:1.25")],
        ..Observed::default()
    };
    let e = Pass::default().run(&m, &o);
    assert_eq!(steps(&e), [("web".to_owned(), StepKind::Alert)]);
    assert!(alert_why(&e).contains("allow_empty: true"));
}

#[test]
fn policy_empty_manifest_with_allow_empty_removes() {
    let mut m = manifest(Vec::new());
    m.drift_rules.unauthorized_containers = Some(rule(Action::Terminate, 0));
    m.allow_empty = true;
    let o = Observed {
        containers: vec![stray("web", "nginx:1.25")],
        ..Observed::default()
    };
    assert_eq!(
        steps(&Pass::default().run(&m, &o)),
        [("web".to_owned(), StepKind::Remove)]
    );
}

#[test]
fn policy_empty_manifest_ignore_rule_still_ignores() {
    let mut m = manifest(Vec::new());
    m.drift_rules.unauthorized_containers = Some(rule(Action::Ignore, 0));
    let o = Observed {
        containers: vec![stray("web", "nginx:1.25")],
        ..Observed::default()
    };
    assert_eq!(
        steps(&Pass::default().run(&m, &o)),
        [("web".to_owned(), StepKind::Ignore)]
    );
}

// ---- maintenance windows ----

fn window(day: WindowDay, start: &str, end: &str, tz: &str) -> MaintenanceWindow {
    let minute = |s: &str| {
        let (h, m) = s.split_once(':').expect("HH:MM");
        h.parse::<u32>().expect("hour") * 60 + m.parse::<u32>().expect("minute")
    };
    MaintenanceWindow {
        name: "Weekly Maintenance".into(),
        day,
        start_minute: minute(start),
        end_minute: minute(end),
        timezone: tz.into(),
        disable_auto_rollback: false,
        allow_drift: false,
    }
}

#[test]
fn window_active_within_hours_on_its_day() {
    let w = window(WindowDay::Sunday, "02:00", "04:00", "UTC");
    for (at, active) in [
        ("2025-01-05T01:59:59Z", false),
        ("2025-01-05T02:00:00Z", true),
        ("2025-01-05T03:59:00Z", true),
        ("2025-01-05T04:00:00Z", false),
        ("2025-01-06T02:30:00Z", false), // Monday
        ("2025-01-04T02:30:00Z", false), // Saturday
    ] {
        assert_eq!(window_active(&w, ts(at)), active, "{at}");
    }
}

#[test]
fn window_active_crossing_midnight_belongs_to_its_start_day() {
    let w = window(WindowDay::Sunday, "23:00", "01:00", "UTC");
    for (at, active) in [
        ("2025-01-05T22:59:00Z", false), // Sunday, before
        ("2025-01-05T23:30:00Z", true),  // Sunday night
        ("2025-01-06T00:30:00Z", true),  // Monday, small hours: still Sunday's window
        ("2025-01-06T01:00:00Z", false), // end is exclusive
        ("2025-01-05T00:30:00Z", false), // Sunday small hours belong to Saturday's night
        ("2025-01-06T23:30:00Z", false), // Monday night
    ] {
        assert_eq!(window_active(&w, ts(at)), active, "{at}");
    }
}

#[test]
fn window_active_daily_crossing_midnight_every_night() {
    let w = window(WindowDay::Daily, "22:00", "02:00", "UTC");
    for (at, active) in [
        ("2025-01-01T23:00:00Z", true),
        ("2025-01-02T01:00:00Z", true),
        ("2025-01-02T12:00:00Z", false),
    ] {
        assert_eq!(window_active(&w, ts(at)), active, "{at}");
    }
}

#[test]
fn window_active_in_asia_singapore_uses_local_day_and_time() {
    // Sunday 02:00–04:00 in Singapore (UTC+8) is Saturday 18:00–20:00 UTC.
    let w = window(WindowDay::Sunday, "02:00", "04:00", "Asia/Singapore");
    for (at, active) in [
        ("2025-01-04T18:30:00Z", true),
        ("2025-01-04T17:59:00Z", false),
        ("2025-01-04T20:00:00Z", false),
        ("2025-01-05T02:30:00Z", false), // 10:30 local
    ] {
        assert_eq!(window_active(&w, ts(at)), active, "{at}");
    }
}

#[test]
fn window_active_unknown_timezone_never() {
    let w = window(WindowDay::Daily, "00:00", "24:00", "Mars/Olympus_Mons");
    assert!(!window_active(&w, testing::now()));
    let w = window(WindowDay::Daily, "00:00", "24:00", "UTC");
    assert!(window_active(&w, ts("2025-01-05T23:59:59Z")));
}

#[test]
fn policy_allow_drift_window_alerts_then_acts_after() {
    let (mut m, o) = web_config_drift();
    m.maintenance_windows = vec![MaintenanceWindow {
        allow_drift: true,
        ..window(WindowDay::Sunday, "11:00", "13:00", "UTC")
    }];
    let e = Pass::default().run(&m, &o);
    assert_eq!(steps(&e), [("web".to_owned(), StepKind::Alert)]);
    assert_eq!(
        alert_why(&e),
        "maintenance window `Weekly Maintenance` allows drift"
    );
    let e = Pass::default().now(ts("2025-01-05T13:00:00Z")).run(&m, &o);
    assert_eq!(steps(&e), [("web".to_owned(), StepKind::Recreate)]);
}

#[test]
fn policy_disable_auto_rollback_window_stops_only_rollbacks() {
    let w = MaintenanceWindow {
        disable_auto_rollback: true,
        ..window(WindowDay::Sunday, "11:00", "13:00", "UTC")
    };
    let (mut m, o) = web_image_drift();
    m.drift_rules.image_drift = Some(rule(Action::Rollback, 0));
    m.maintenance_windows = vec![w.clone()];
    let e = Pass::default().run(&m, &o);
    assert_eq!(steps(&e), [("web".to_owned(), StepKind::Alert)]);
    assert_eq!(
        alert_why(&e),
        "maintenance window `Weekly Maintenance` disables rollback"
    );

    let (mut m, o) = web_config_drift();
    m.maintenance_windows = vec![w];
    assert_eq!(
        step_of(&Pass::default().run(&m, &o), "web"),
        Some(StepKind::Recreate)
    );
}

// ---- per-resource drift_action ----

#[test]
fn policy_drift_action_alert_overrides_rule() {
    let (mut m, o) = web_config_drift();
    m.containers[0].drift_action = Some(Action::Alert);
    let e = Pass::default().run(&m, &o);
    assert_eq!(steps(&e), [("web".to_owned(), StepKind::Alert)]);
    assert_eq!(alert_why(&e), "`drift_action: alert` on this resource");
}

#[test]
fn policy_drift_action_ignore_overrides_rule() {
    let (mut m, o) = web_config_drift();
    m.containers[0].drift_action = Some(Action::Ignore);
    let e = Pass::default().run(&m, &o);
    assert_eq!(steps(&e), [("web".to_owned(), StepKind::Ignore)]);
    assert_eq!(
        e.plan.steps[0].reason,
        "`drift_action: ignore` on this resource"
    );
}

#[test]
fn policy_drift_action_recreate_answers_status_drift() {
    let (mut m, mut o) = web_in_sync();
    o.containers[0].state = ContainerState::Exited;
    m.containers[0].drift_action = Some(Action::Recreate);
    assert_eq!(
        step_of(&Pass::default().run(&m, &o), "web"),
        Some(StepKind::Recreate)
    );
}

#[test]
fn policy_drift_action_of_other_node_does_not_apply() {
    let (mut m, o) = web_config_drift();
    let mut elsewhere = m.containers[0].clone();
    elsewhere.node = "vega".into();
    elsewhere.drift_action = Some(Action::Alert);
    m.nodes.push(testing::node("vega"));
    m.containers.push(elsewhere);
    assert_eq!(
        step_of(&Pass::default().run(&m, &o), "web"),
        Some(StepKind::Recreate)
    );
}

#[test]
fn policy_restart_cannot_answer_config_or_image_drift() {
    // A restart keeps the container's configuration: planning one for config or image drift
    // would restart it every pass and never converge.
    let (mut m, o) = web_config_drift();
    m.drift_rules.config_drift = Some(rule(Action::Restart, 0));
    let e = Pass::default().run(&m, &o);
    assert_eq!(steps(&e), [("web".to_owned(), StepKind::Alert)]);

    let (mut m, o) = web_image_drift();
    m.containers[0].drift_action = Some(Action::Restart);
    let e = Pass::default().run(&m, &o);
    assert_eq!(steps(&e), [("web".to_owned(), StepKind::Alert)]);

    // It still answers status drift.
    let (mut m, mut o) = web_in_sync();
    o.containers[0].state = ContainerState::Exited;
    m.containers[0].drift_action = Some(Action::Restart);
    assert_eq!(
        step_of(&Pass::default().run(&m, &o), "web"),
        Some(StepKind::Start)
    );
}

/// One `orphan` drift (an object a `kubernetes:` source applied, no longer declared) decided
/// under `prune`, `mode` and the manifest's windows and protection.
fn orphan_step(
    kind: &str,
    name: &str,
    prune: bool,
    mode: Mode,
    m: &Manifest,
) -> (StepKind, String) {
    use refinery_core::policy::{PolicyContext, decide};
    use refinery_core::{Drift, DriftReport};
    let report = DriftReport {
        drifts: vec![Drift {
            id: ResourceId::Kube {
                context: "lyra".into(),
                namespace: if kind == "namespace" {
                    String::new()
                } else {
                    "shop".into()
                },
                kind: kind.into(),
                name: name.into(),
            },
            kind: DriftKind::Orphan,
            container_id: None,
            summary: "applied by source `app`, no longer declared".into(),
            changes: Vec::new(),
        }],
        ..DriftReport::default()
    };
    let first_seen = std::collections::BTreeMap::new();
    let ctx = PolicyContext {
        manifest: m,
        mode,
        now: ts("2026-06-01T12:00:00Z"),
        first_seen: &first_seen,
        honor_grace: true,
        self_container_id: None,
        prune,
    };
    let observed = Observed::default();
    let plan = refinery_core::plan(&decide(&report, &observed, &ctx), &observed);
    (plan.steps[0].kind, plan.steps[0].reason.clone())
}

#[test]
fn policy_orphan_is_pruned_only_under_prune_in_enforce_mode() {
    let (mut m, _) = web_in_sync();
    m.inventory.protected = vec!["prod-*".into()];
    let cases: [(&str, &str, bool, Mode, StepKind, &str); 7] = [
        (
            "configmap",
            "old",
            true,
            Mode::Enforce,
            StepKind::Remove,
            "`orphan` rule: terminate",
        ),
        (
            "configmap",
            "old",
            false,
            Mode::Enforce,
            StepKind::Alert,
            "`prune: true`",
        ),
        (
            "configmap",
            "old",
            true,
            Mode::Audit,
            StepKind::Alert,
            "audit mode",
        ),
        (
            "configmap",
            "old",
            true,
            Mode::ReadOnly,
            StepKind::Alert,
            "read-only",
        ),
        (
            "configmap",
            "prod-db",
            true,
            Mode::Enforce,
            StepKind::Protected,
            "inventory.protected",
        ),
        (
            "namespace",
            "shop",
            true,
            Mode::Enforce,
            StepKind::Alert,
            "never pruned",
        ),
        (
            "customresourcedefinition",
            "x.example.com",
            true,
            Mode::Enforce,
            StepKind::Alert,
            "never pruned",
        ),
    ];
    for (kind, name, prune, mode, want, why) in cases {
        let (got, reason) = orphan_step(kind, name, prune, mode, &m);
        assert_eq!(got, want, "{kind}/{name} prune={prune} {mode:?}: {reason}");
        assert!(reason.contains(why), "{kind}/{name}: {reason}");
    }
}

#[test]
fn policy_orphan_in_a_window_allowing_drift_is_reported() {
    let (mut m, _) = web_in_sync();
    m.maintenance_windows.push(MaintenanceWindow {
        name: "always".into(),
        day: WindowDay::Daily,
        start_minute: 0,
        end_minute: 24 * 60 - 1,
        timezone: "UTC".into(),
        disable_auto_rollback: false,
        allow_drift: true,
    });
    let (got, reason) = orphan_step("configmap", "old", true, Mode::Enforce, &m);
    assert_eq!(got, StepKind::Alert);
    assert!(reason.contains("allows drift"), "{reason}");
}
