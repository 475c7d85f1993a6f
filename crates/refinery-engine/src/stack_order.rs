//! What compose stacks add to applying a plan: their networks and volumes exist before any
//! container is created, dependencies start before their dependents, and a dependent waits for
//! `condition: service_healthy` (or `service_completed_successfully`) before it is created.

use std::collections::BTreeMap;
use std::time::Duration;

use refinery_core::compose::LABEL_BUILD_DIGEST;
use refinery_core::{
    ContainerRuntime, ContainerSpec, ContainerState, DependencyCondition, Health, Manifest,
    MountKind, Observed, Step, StepKind,
};

/// How often a dependency's state is looked at while waiting.
pub const DEPENDENCY_POLL: Duration = Duration::from_millis(500);
/// How many looks before giving up (two minutes at [`DEPENDENCY_POLL`]).
pub const DEPENDENCY_POLLS: u32 = 240;

/// The declared spec a step acts on.
pub fn spec_for<'m>(manifest: &'m Manifest, step: &Step) -> Option<&'m ContainerSpec> {
    manifest
        .containers
        .iter()
        .find(|c| c.node == step.id.node() && c.name == step.id.name())
}

/// Creates the stack networks and volumes that the writing steps' containers use and that are
/// missing. Runs before any step so two replicas never race to create the same network.
/// Returns the problems (the containers' creation then fails and says why).
pub async fn prepare_stack_resources<R: ContainerRuntime>(
    rt: &R,
    manifest: &Manifest,
    steps: &[Step],
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut networks = Vec::new();
    let mut volumes = Vec::new();
    for step in steps.iter().filter(|s| s.kind.writes()) {
        let Some(spec) = spec_for(manifest, step) else {
            continue;
        };
        for n in &spec.options.networks {
            if let Some(net) = manifest
                .stack_networks
                .iter()
                .find(|x| x.node == spec.node && x.name == n.name)
                && !networks.contains(&net)
            {
                networks.push(net);
            }
        }
        for m in spec.mounts.iter().filter(|m| m.kind == MountKind::Volume) {
            if let Some(vol) = manifest
                .stack_volumes
                .iter()
                .find(|x| x.node == spec.node && x.name == m.source)
                && !volumes.contains(&vol)
            {
                volumes.push(vol);
            }
        }
    }
    for net in networks {
        match rt.ensure_network(net).await {
            Ok(true) => tracing::info!(network = %net.name, "created network"),
            Ok(false) => {}
            Err(e) => problems.push(e.to_string()),
        }
    }
    for vol in volumes {
        match rt.ensure_volume(vol).await {
            Ok(true) => tracing::info!(volume = %vol.name, "created volume"),
            Ok(false) => {}
            Err(e) => problems.push(e.to_string()),
        }
    }
    problems
}

/// Builds, once each, the images of compose services (`build:`) that the plan's create and
/// recreate steps need and that are absent or were built from another context. Runs before any
/// step, so replicas of one service share one build. Returns the failures by image tag.
pub async fn prepare_builds<R: ContainerRuntime>(
    rt: &R,
    manifest: &Manifest,
    steps: &[Step],
    observed: &Observed,
) -> BTreeMap<String, String> {
    let mut failures = BTreeMap::new();
    let mut done: Vec<&str> = Vec::new();
    for step in steps.iter().filter(|s| {
        matches!(
            s.kind,
            StepKind::Create | StepKind::Recreate | StepKind::Rollback
        )
    }) {
        let Some(spec) = spec_for(manifest, step) else {
            continue;
        };
        let Some(build) = refinery_core::drift::needs_build(spec, observed) else {
            continue;
        };
        if done.contains(&spec.image.as_str()) {
            continue;
        }
        done.push(&spec.image);
        let mut labels = BTreeMap::from([(LABEL_BUILD_DIGEST.to_owned(), build.digest.clone())]);
        if let Some(sel) = &manifest.config.selector {
            labels.extend([sel.label()]);
        }
        tracing::info!(image = %spec.image, context = %build.context, "building image");
        if let Err(e) = rt.build_image(&spec.image, build, &labels).await {
            failures.insert(spec.image.clone(), e.to_string());
        }
    }
    failures
}

/// Step indices in an order where every container comes after those it depends on (plan order
/// otherwise). A cycle (rejected when the stack is loaded) falls back to plan order.
#[must_use]
pub fn dependency_order(manifest: &Manifest, steps: &[Step]) -> Vec<usize> {
    let index: BTreeMap<(&str, &str), usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| ((s.id.node(), s.id.name()), i))
        .collect();
    let deps: Vec<Vec<usize>> = steps
        .iter()
        .map(|s| {
            spec_for(manifest, s)
                .and_then(|spec| spec.stack.as_ref())
                .map(|m| {
                    m.depends_on
                        .iter()
                        .filter_map(|d| index.get(&(s.id.node(), d.container.as_str())).copied())
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    let mut order = Vec::with_capacity(steps.len());
    let mut state = vec![0u8; steps.len()];
    fn visit(i: usize, deps: &[Vec<usize>], state: &mut [u8], order: &mut Vec<usize>) {
        if state[i] != 0 {
            return;
        }
        state[i] = 1;
        for &d in &deps[i] {
            visit(d, deps, state, order);
        }
        state[i] = 2;
        order.push(i);
    }
    for i in 0..steps.len() {
        visit(i, &deps, &mut state, &mut order);
    }
    order
}

/// Waits until every container `spec` depends on meets its condition; `Err` says which did not.
/// A dependency `failed` names (its create failed in this pass, with why) is not waited for.
pub async fn wait_for_dependencies<R: ContainerRuntime>(
    rt: &R,
    spec: &ContainerSpec,
    failed: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<(), String> {
    let Some(member) = &spec.stack else {
        return Ok(());
    };
    for dep in &member.depends_on {
        let mut last = String::from("not created");
        let mut met = false;
        for attempt in 0..DEPENDENCY_POLLS {
            if attempt > 0 {
                tokio::time::sleep(DEPENDENCY_POLL).await;
            }
            if let Some(why) = failed(&dep.container) {
                last = format!("not created: its step failed ({why})");
                break;
            }
            let Ok(o) = rt.inspect(&dep.container).await else {
                continue;
            };
            last = match (o.state, o.health) {
                (s, Health::None) => s.to_string(),
                (s, h) => format!("{s}, {h}"),
            };
            met = match dep.condition {
                DependencyCondition::ServiceStarted => o.state == ContainerState::Running,
                DependencyCondition::ServiceHealthy => {
                    o.state == ContainerState::Running && o.health == Health::Healthy
                }
                DependencyCondition::ServiceCompletedSuccessfully => {
                    o.state == ContainerState::Exited && o.exit_code == Some(0)
                }
            };
            if met {
                break;
            }
            // A dependency that is not running and will not restart never becomes healthy.
            if dep.condition == DependencyCondition::ServiceHealthy
                && matches!(o.state, ContainerState::Exited | ContainerState::Dead)
                && attempt > 4
            {
                break;
            }
        }
        // `required: false`: waited for, then passed over, as docker compose does.
        if !met && !dep.required {
            tracing::warn!(
                container = %spec.name,
                dependency = %dep.container,
                "dependency did not come up ({last}); starting anyway (`required: false`)"
            );
            continue;
        }
        if !met {
            let want = match dep.condition {
                DependencyCondition::ServiceStarted => "running",
                DependencyCondition::ServiceHealthy => "healthy",
                DependencyCondition::ServiceCompletedSuccessfully => "completed successfully",
            };
            return Err(format!(
                "failed to start after `{}`: it is {last}, not {want}",
                dep.container
            ));
        }
    }
    Ok(())
}
