//! Plan: decisions into one concrete step per resource.

use std::fmt;

use serde::Serialize;

use crate::drift::{DriftKind, FieldChange};
use crate::observed::{ContainerState, Observed};
use crate::policy::{Action, Decision, Verdict};
use crate::resource_id::ResourceId;

/// What will be done to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Replace with the declared spec (config drift, or status under a recreate rule).
    Recreate,
    /// Replace with the declared image (image drift under a rollback rule).
    Rollback,
    /// Create what is missing.
    Create,
    /// Remove an unauthorized container, or prune an orphaned Kubernetes object.
    Remove,
    Restart,
    Start,
    Unpause,
    /// Report only.
    Alert,
    /// Wait for the grace period.
    Defer,
    /// Never touched.
    Protected,
    /// Nothing to do.
    Ignore,
}

impl StepKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Recreate => "recreate",
            StepKind::Rollback => "rollback",
            StepKind::Create => "create",
            StepKind::Remove => "remove",
            StepKind::Restart => "restart",
            StepKind::Start => "start",
            StepKind::Unpause => "unpause",
            StepKind::Alert => "alert",
            StepKind::Defer => "defer",
            StepKind::Protected => "none (protected)",
            StepKind::Ignore => "ignore",
        }
    }

    /// Whether this step writes to the engine.
    #[must_use]
    pub fn writes(self) -> bool {
        matches!(
            self,
            StepKind::Recreate
                | StepKind::Rollback
                | StepKind::Create
                | StepKind::Remove
                | StepKind::Restart
                | StepKind::Start
                | StepKind::Unpause
        )
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One resource's drifts and the single step that answers them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub id: ResourceId,
    pub kind: StepKind,
    pub container_id: Option<String>,
    pub drifts: Vec<DriftKind>,
    /// One line per drift.
    pub details: Vec<String>,
    pub changes: Vec<FieldChange>,
    /// Why this step (the verdict's reason, or the deferral deadline).
    pub reason: String,
}

/// Every step for one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    /// Steps that write to the engine.
    pub fn writes(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| s.kind.writes())
    }
}

fn step_for(decision: &Decision, observed: &Observed) -> (StepKind, String) {
    match &decision.verdict {
        Verdict::Alert { why } => (StepKind::Alert, why.clone()),
        Verdict::Ignore { why } => (StepKind::Ignore, why.clone()),
        Verdict::Protected { why } => (StepKind::Protected, why.clone()),
        Verdict::Defer { until } => (StepKind::Defer, format!("grace period until {until}")),
        Verdict::Act { action } => {
            let kind = match (decision.drift.kind, action) {
                // Only an explicit `terminate` removes what nobody declared.
                (DriftKind::Unauthorized | DriftKind::Orphan, Action::Terminate) => {
                    StepKind::Remove
                }
                (DriftKind::Unauthorized | DriftKind::Orphan, _) => StepKind::Alert,
                (DriftKind::Missing, _) => StepKind::Create,
                (_, Action::Rollback) => StepKind::Rollback,
                (_, Action::Recreate | Action::Terminate) => StepKind::Recreate,
                (_, _) => match decision
                    .drift
                    .container_id
                    .as_deref()
                    .and_then(|id| observed.containers.iter().find(|c| c.id == id))
                    .or_else(|| observed.container(decision.drift.id.name()))
                    .map(|c| c.state)
                {
                    Some(ContainerState::Paused) => StepKind::Unpause,
                    Some(
                        ContainerState::Created | ContainerState::Exited | ContainerState::Dead,
                    ) => StepKind::Start,
                    _ => StepKind::Restart,
                },
            };
            (kind, format!("`{}` rule: {}", decision.drift.kind, action))
        }
    }
}

/// Groups decisions per resource into one step each, strongest step first wins
/// (recreate > restart > alert > defer > ignore). Deterministic: ordered by resource id.
#[must_use]
pub fn plan(decisions: &[Decision], observed: &Observed) -> Plan {
    let mut steps: Vec<Step> = Vec::new();
    for d in decisions {
        let (kind, reason) = step_for(d, observed);
        let detail = format!("{}: {}", d.drift.kind, d.drift.summary);
        match steps.iter_mut().find(|s| s.id == d.drift.id) {
            Some(s) => {
                s.drifts.push(d.drift.kind);
                s.details.push(detail);
                s.changes.extend(d.drift.changes.iter().cloned());
                if kind < s.kind {
                    s.kind = kind;
                    s.reason = reason;
                }
            }
            None => steps.push(Step {
                id: d.drift.id.clone(),
                kind,
                container_id: d.drift.container_id.clone(),
                drifts: vec![d.drift.kind],
                details: vec![detail],
                changes: d.drift.changes.clone(),
                reason,
            }),
        }
    }
    steps.sort_by(|a, b| a.id.cmp(&b.id));
    Plan { steps }
}
