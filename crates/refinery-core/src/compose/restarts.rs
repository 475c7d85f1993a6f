//! `depends_on: {NAME: {restart: true}}`: when a plan recreates (or creates) a container that
//! others depend on with `restart: true`, those are restarted after it, as docker compose does.

use crate::manifest::Manifest;
use crate::observed::Observed;
use crate::plan::{Plan, Step, StepKind};
use crate::resource_id::ResourceId;

/// Adds a restart step for every running container on `node` that depends with `restart: true`
/// on one the plan recreates, rolls back or creates, unless the plan already writes to it.
/// Nothing is added on a node whose mode does not act.
pub fn restart_dependants(manifest: &Manifest, node: &str, observed: &Observed, plan: &mut Plan) {
    if manifest.mode_of(node) != crate::manifest::Mode::Enforce {
        return;
    }
    let replaced: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| {
            matches!(
                s.kind,
                StepKind::Recreate | StepKind::Rollback | StepKind::Create
            )
        })
        .map(|s| s.id.name().to_owned())
        .collect();
    if replaced.is_empty() {
        return;
    }
    let mut added = Vec::new();
    for spec in manifest.containers_on(node) {
        let Some(member) = &spec.stack else { continue };
        let because: Vec<&str> = member
            .depends_on
            .iter()
            .filter(|d| d.restart && replaced.contains(&d.container))
            .map(|d| d.container.as_str())
            .collect();
        if because.is_empty() {
            continue;
        }
        let id = ResourceId::for_spec(node, spec);
        if plan.steps.iter().any(|s| s.id == id && s.kind.writes()) {
            continue;
        }
        // Only a container that is there can be restarted (a missing one is created anyway).
        let Some(o) = crate::drift::declared_container(spec, observed) else {
            continue;
        };
        let names: Vec<String> = because.iter().map(|c| format!("`{c}`")).collect();
        let why = format!(
            "its dependency {} is replaced, and `depends_on` says `restart: true`",
            names.join(", ")
        );
        plan.steps.retain(|s| s.id != id);
        added.push(Step {
            id,
            kind: StepKind::Restart,
            container_id: Some(o.id.clone()),
            drifts: Vec::new(),
            details: vec![format!("dependency: {why}")],
            changes: Vec::new(),
            reason: why,
        });
    }
    plan.steps.extend(added);
    plan.steps.sort_by(|a, b| a.id.cmp(&b.id));
}
