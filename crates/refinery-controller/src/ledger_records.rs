//! Ledger records for what a pass found and did, shared by `apply` and the daemon.

use refinery_core::ledger::{Event, Record};
use refinery_core::{Drift, Manifest, ResourceId};
use refinery_engine::StepResult;
use refinery_store::request_queue::StepOutcome;

fn with_bloodline(record: Record, manifest: &Manifest, id: &ResourceId) -> Record {
    match manifest
        .containers
        .iter()
        .find(|c| c.node == id.node() && c.name == id.name())
    {
        Some(c) => record.bloodline(&c.bloodline),
        None => record,
    }
}

/// A `drift` entry: kind, summary and the differing fields' names (never their values).
#[must_use]
pub fn drift(manifest: &Manifest, drift: &Drift, revision: &str) -> Record {
    let record = Record::new(Event::Drift {
        drift: drift.kind.as_str().to_owned(),
        summary: drift.summary.clone(),
        fields: drift
            .changes
            .iter()
            .filter(|c| !c.ignored)
            .map(|c| c.field.clone())
            .collect(),
    })
    .resource(drift.id.clone())
    .revision(revision);
    with_bloodline(record, manifest, &drift.id)
}

/// The entry for one step's outcome (birth, death, mutation, rollback or action).
#[must_use]
pub fn step(manifest: &Manifest, r: &StepResult, revision: &str) -> Record {
    let record = Record::new(Event::for_step(
        r.step,
        r.outcome,
        r.message.clone(),
        r.container_id.clone(),
    ))
    .resource(r.id.clone())
    .outcome(r.outcome)
    .revision(revision)
    .image_digest(r.image_digest.clone());
    with_bloodline(record, manifest, &r.id)
}

/// A step's outcome as `refinery apply` prints it and a handed-over apply's answer carries it.
#[must_use]
pub fn step_outcome(r: &StepResult) -> StepOutcome {
    StepOutcome::new(
        &r.id,
        r.step,
        r.outcome,
        r.message.clone(),
        r.container_id.clone(),
    )
}
