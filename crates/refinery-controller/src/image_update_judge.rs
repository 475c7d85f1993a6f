//! Health-gated image updates: a container recreated for `image_update` drift (`image_update:
//! {action: recreate}`) goes on trial, judged like a new revision (see [`crate::revision_judge`]):
//! running and healthy within `config.health_deadline` → the update stays; else the tag is
//! pointed back at the image it ran before (kept locally by its id), the container is recreated
//! from it (a `rollback` ledger entry), a critical alert goes out, and the digest it failed on is
//! held back (an alert in `plan`, never acted on) until the tag moves to another digest. Trials
//! and rejected digests live in the daemon's state file, so a restart remembers them.

use jiff::Timestamp;
use refinery_core::daemon_state::revision_health;
use refinery_core::image_trials::{TrialVerdict, UpdateTrial, judge_trial};
use refinery_core::image_update::{short_digest, tracked_reference};
use refinery_core::{
    DriftKind, FieldChange, Manifest, Observed, Outcome, ResourceId, Step, StepKind,
};
use refinery_engine::{StepResult, apply_plan, recreate_temp_name};

use crate::action_marks::events_of;
use crate::controller::{Controller, alert};
use crate::ports::Engine;
use crate::revision_judge::SETTLE_SECS;

/// The image updates of the daemon whose state is in `state_dir` (else the default state
/// directory of `repo`): those on trial and those rolled back. Empty when no daemon ever ran
/// there or its state cannot be read.
#[must_use]
pub fn daemon_image_updates(
    repo: &std::path::Path,
    state_dir: Option<&std::path::Path>,
) -> refinery_core::image_trials::ImageUpdates {
    crate::controller::daemon_state(repo, state_dir)
        .map(|s| s.image_updates)
        .unwrap_or_default()
}

/// The image updates that daemon rolled back, by resource id, held back until their tag moves:
/// `refinery plan` and `apply` leave them as the daemon would (an alert).
#[must_use]
pub fn daemon_rejected_updates(
    repo: &std::path::Path,
    state_dir: Option<&std::path::Path>,
) -> std::collections::BTreeMap<String, refinery_core::image_trials::RejectedUpdate> {
    daemon_image_updates(repo, state_dir).rejected
}

/// Marks the images a rollback of an update on trial needs as protected, so a cleanup (the
/// daemon's, or `refinery cleanup` beside it) leaves them.
pub fn keep_trial_images(
    audit: &mut refinery_core::inventory::NodeAudit,
    updates: &refinery_core::image_trials::ImageUpdates,
) {
    for item in &mut audit.items {
        let needed = item.kind == refinery_core::inventory::Kind::Image
            && item
                .id
                .as_ref()
                .is_some_and(|id| updates.trials.values().any(|t| t.from_image == *id));
        if needed {
            item.class = refinery_core::inventory::Class::Protected;
            item.reason = "kept for the rollback of an image update on trial".to_owned();
        }
    }
}

/// The digest part (`sha256:…`) of a repo digest (`name@sha256:…`).
fn digest_of(repo_digest: &str) -> Option<&str> {
    repo_digest.split_once('@').map(|(_, d)| d)
}

impl<R: Engine> Controller<R> {
    /// After a node's actions: each container recreated for an `image_update` goes on trial, with
    /// the digest and image id it ran before.
    pub(crate) fn start_update_trials(
        &mut self,
        manifest: &Manifest,
        node: &str,
        observed: &Observed,
        steps: &[Step],
        results: &[StepResult],
    ) {
        let now = self.clock.now();
        for r in results.iter().filter(|r| r.outcome == Outcome::Recreated) {
            let Some(step) = steps.iter().find(|s| s.id == r.id) else {
                continue;
            };
            if !step.drifts.contains(&DriftKind::ImageUpdate) {
                continue;
            }
            let before = observed
                .containers
                .iter()
                .find(|c| step.container_id.as_deref() == Some(c.id.as_str()));
            let spec = crate::node_pass::spec_of(manifest, &r.id);
            let (Some(before), Some(reference)) = (before, spec.and_then(tracked_reference)) else {
                continue;
            };
            let from = before.repo_digest.as_deref().and_then(digest_of);
            let to = r.image_digest.as_deref().and_then(digest_of);
            let (Some(from), Some(to)) = (from, to) else {
                continue;
            };
            if from == to {
                continue;
            }
            tracing::info!(node, resource = %r.id, image = %reference, from = %short_digest(from), to = %short_digest(to), "image update on trial: it must run healthy within the health deadline");
            self.state.image_updates.start(
                &r.id.to_string(),
                UpdateTrial {
                    reference,
                    from_digest: from.to_owned(),
                    from_image: before.image_id.clone(),
                    to_digest: to.to_owned(),
                    since: now,
                },
            );
        }
    }

    /// When a node's observation is in: judges its image updates on trial. A healthy one ends
    /// its trial; one past `config.health_deadline` and not running healthy is rolled back.
    /// Returns whether it rolled back any (the node's pass ends there; another follows at once).
    pub(crate) async fn judge_update_trials(
        &mut self,
        manifest: &Manifest,
        node: &str,
        rt: &R,
        observed: &Observed,
        rev: &str,
        now: Timestamp,
    ) -> bool {
        let prefix = format!("docker/{node}/");
        let trials: Vec<(String, UpdateTrial)> = self
            .state
            .image_updates
            .trials
            .iter()
            .filter(|(id, _)| id.starts_with(&prefix))
            .map(|(id, t)| (id.clone(), t.clone()))
            .collect();
        if trials.is_empty() || !self.may_act() {
            return false;
        }
        let deadline = manifest.config.health_deadline_secs;
        let settle = SETTLE_SECS.min(deadline / 2);
        let mut rolled_back = false;
        for (key, trial) in trials {
            let spec = manifest
                .containers_on(node)
                .into_iter()
                .find(|c| ResourceId::for_spec(node, c).to_string() == key);
            // Git changed the container's image since: the trial is moot.
            let Some(spec) =
                spec.filter(|s| tracked_reference(s).as_ref() == Some(&trial.reference))
            else {
                self.state.image_updates.trials.remove(&key);
                continue;
            };
            let running = refinery_core::drift::declared_container(spec, observed);
            // Something else replaced it (a new revision, a hand): not this update's to judge.
            if running
                .and_then(|o| o.repo_digest.as_deref())
                .and_then(digest_of)
                .is_some_and(|d| d != trial.to_digest)
            {
                self.state.image_updates.trials.remove(&key);
                continue;
            }
            let health = revision_health(&[spec], observed, &[], now, settle);
            match judge_trial(&trial, &health, now, deadline) {
                TrialVerdict::Waiting => {}
                TrialVerdict::Healthy => {
                    tracing::info!(node, resource = %key, image = %trial.reference, digest = %short_digest(&trial.to_digest), "image update is healthy");
                    self.state.image_updates.trials.remove(&key);
                }
                TrialVerdict::RollBack(why) => {
                    let id = ResourceId::for_spec(node, spec);
                    let container = running.map(|o| o.id.clone());
                    self.roll_back_update(
                        manifest, rt, observed, &id, container, &trial, &why, rev,
                    )
                    .await;
                    rolled_back = true;
                }
            }
        }
        rolled_back
    }

    /// Puts `id` back on the image it ran before the update on trial: the tag is pointed back at
    /// that image (by id), the container recreated from it (`rollback` entry), a critical alert
    /// sent, and the digest rejected until the tag moves.
    #[allow(clippy::too_many_arguments)]
    async fn roll_back_update(
        &mut self,
        manifest: &Manifest,
        rt: &R,
        observed: &Observed,
        id: &ResourceId,
        container: Option<String>,
        trial: &UpdateTrial,
        why: &str,
        rev: &str,
    ) {
        let deadline = manifest.config.health_deadline_secs;
        let (to, from) = (
            short_digest(&trial.to_digest),
            short_digest(&trial.from_digest),
        );
        let what = format!(
            "image update of `{}` to {to} is not running and healthy within {deadline}s ({why})",
            trial.reference
        );
        let mut records = Vec::new();
        let message = match rt.tag_image(&trial.from_image, &trial.reference).await {
            Err(e) => {
                tracing::error!(resource = %id, error = %e, "{what}; the image it ran before is gone, so it cannot be put back");
                format!(
                    "{what}; it cannot be put back on {from}: {e}; {to} is not tried again until the tag moves"
                )
            }
            Ok(()) => {
                let step = Step {
                    id: id.clone(),
                    kind: StepKind::Rollback,
                    container_id: container.clone(),
                    drifts: vec![DriftKind::Image],
                    details: vec![format!("{what}; back on {from}")],
                    changes: vec![FieldChange {
                        field: refinery_core::image_update::DIGEST_FIELD.into(),
                        desired: trial.from_digest.clone(),
                        observed: trial.to_digest.clone(),
                        ignored: false,
                    }],
                    reason: format!("{what}; back on {from}"),
                };
                let mut touched = vec![id.name().to_owned(), recreate_temp_name(id.name())];
                touched.extend(container);
                self.mark_ours(&touched, events_of(step.kind));
                let results = apply_plan(
                    rt,
                    manifest,
                    std::slice::from_ref(&step),
                    observed,
                    rev,
                    &|_| {},
                )
                .await;
                self.end_ours(&touched);
                let mut failed = None;
                for mut r in results {
                    if r.outcome == Outcome::Failed {
                        failed = r.message.clone();
                    } else if r.message.is_none() {
                        r.message = Some(step.reason.clone());
                    }
                    records.push(crate::ledger_records::step(manifest, &r, rev));
                }
                match failed {
                    Some(e) => {
                        tracing::error!(resource = %id, error = %e, "{what}; failed to put it back on {from}");
                        format!(
                            "{what}; failed to put it back on {from}: {e}; {to} is not tried again until the tag moves"
                        )
                    }
                    None => {
                        tracing::error!(resource = %id, "{what}; rolled back to {from}");
                        format!(
                            "{what}: rolled back to {from}; {to} is not tried again until the tag moves"
                        )
                    }
                }
            }
        };
        records.push(
            alert("critical", message)
                .resource(id.clone())
                .node(id.node())
                .revision(rev),
        );
        self.append(records);
        let key = id.to_string();
        self.state
            .image_updates
            .reject(&key, self.clock.now(), why.to_owned());
        // What the failed image made Refinery do (restarts) says nothing about the image it is
        // back on: flap protection starts afresh.
        self.state.resume(&key);
    }

    /// Forgets trials and rejected digests of containers no longer declared.
    pub(crate) fn forget_undeclared_updates(&mut self, manifest: &Manifest) {
        let declared: std::collections::BTreeSet<String> = manifest
            .containers
            .iter()
            .map(|c| ResourceId::for_spec(&c.node, c).to_string())
            .collect();
        self.state.image_updates.retain(&|id| declared.contains(id));
    }
}
