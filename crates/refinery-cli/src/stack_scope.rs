//! `apply --stack NAME`: keep only the steps and drifts of one compose stack's services.

use refinery_core::{Manifest, ResourceId};

use crate::error::CliError;
use crate::pass::NodePass;

/// Whether `id` is a service replica of `stack` (by id, or by the declared spec's membership).
fn in_stack(manifest: &Manifest, id: &ResourceId, stack: &str) -> bool {
    if let ResourceId::Service { project, .. } = id {
        return project == stack;
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
    passes: &mut [NodePass<'_>],
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
