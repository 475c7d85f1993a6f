//! `apply --stack NAME`: keep only the steps and drifts of one compose stack's services.

use refinery_core::{Manifest, ResourceId};

use crate::error::CliError;
use refinery_controller::node_pass::NodePass;
use refinery_docker::DockerRuntime;

/// Whether `id` is a service replica of `stack` (by id, or by the declared spec's membership).
fn in_stack(manifest: &Manifest, id: &ResourceId, stack: &str) -> bool {
    if let ResourceId::Service { project, .. } = id {
        return project == stack;
    }
    if refinery_core::compose::is_network_or_volume(id) {
        let of_stack =
            |node: &str, name: &str, labels: &std::collections::BTreeMap<String, String>| {
                node == id.node()
                    && name == id.name()
                    && labels
                        .get(refinery_core::compose::LABEL_PROJECT)
                        .map(String::as_str)
                        == Some(stack)
            };
        return manifest
            .stack_networks
            .iter()
            .any(|n| of_stack(&n.node, &n.name, &n.labels))
            || manifest
                .stack_volumes
                .iter()
                .any(|v| of_stack(&v.node, &v.name, &v.labels));
    }
    manifest
        .containers
        .iter()
        .find(|c| c.node == id.node() && c.name == id.name())
        .and_then(|c| c.stack.as_ref())
        .is_some_and(|m| m.project == stack)
}

/// Narrows every node's evaluation to `stack`; an unknown stack name is an error.
pub fn retain_stack(
    passes: &mut [NodePass<'_, DockerRuntime>],
    manifest: &Manifest,
    stack: &str,
) -> Result<(), CliError> {
    if !manifest.stacks.iter().any(|s| s.name == stack) {
        return Err(CliError::UnknownStack {
            stack: stack.to_owned(),
            known: manifest.stacks.iter().map(|s| s.name.clone()).collect(),
        });
    }
    for p in passes {
        if let Ok((_, eval)) = &mut p.result {
            eval.plan.steps.retain(|s| in_stack(manifest, &s.id, stack));
            eval.report
                .drifts
                .retain(|d| in_stack(manifest, &d.id, stack));
            eval.report
                .in_sync
                .retain(|id| in_stack(manifest, id, stack));
            eval.decisions
                .retain(|d| in_stack(manifest, &d.drift.id, stack));
        }
    }
    Ok(())
}
