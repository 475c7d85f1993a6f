//! Image updates on trial (`image_update: {action: recreate}`): an update carried out is judged
//! like a new revision. The container must run healthy within `config.health_deadline`, else it
//! is put back on the digest it ran before, and the digest it failed on is not tried again until
//! the tag moves to another one. (The drift itself and the registry checks are
//! [`crate::image_update`].)

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::drift_report::{DriftKind, DriftReport, FieldChange};
use crate::image_update::{DIGEST_FIELD, UPDATE_SUMMARY, short_digest};
use crate::plan::{Plan, StepKind};
use crate::resource_id::ResourceId;
use crate::revision_health::RevisionHealth;

/// An image update on trial: the container was recreated on the tag's new digest and must run
/// healthy within `config.health_deadline`, else it goes back to the digest it ran before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateTrial {
    /// The tag followed (`name:tag`).
    pub reference: String,
    /// The digest (`sha256:…`) the container ran before the update.
    pub from_digest: String,
    /// The id of that image: kept locally, the tag is pointed back at it on a rollback.
    pub from_image: String,
    /// The digest the container was recreated on.
    pub to_digest: String,
    pub since: Timestamp,
}

/// An update that was rolled back: its digest is not tried again on this container while the
/// registry's tag still points at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedUpdate {
    /// The tag followed (`name:tag`).
    pub reference: String,
    /// The digest that failed.
    pub digest: String,
    /// The digest the container was put back on.
    pub back_on: String,
    pub at: Timestamp,
    pub why: String,
}

impl RejectedUpdate {
    /// What `plan`, `status` and the status page say about the update held back.
    #[must_use]
    pub fn describe(&self) -> String {
        format!(
            "update to {} rolled back, waiting for the tag to move",
            short_digest(&self.digest)
        )
    }
}

/// How an update on trial is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrialVerdict {
    /// Running and healthy: the update stays.
    Healthy,
    /// Not there yet, and its deadline has not passed.
    Waiting,
    /// Not running and healthy within the deadline: roll it back, for this reason.
    RollBack(String),
}

/// Image updates on trial and those rolled back, by resource id (in the daemon's state file).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageUpdates {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub trials: BTreeMap<String, UpdateTrial>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rejected: BTreeMap<String, RejectedUpdate>,
}

impl ImageUpdates {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.trials.is_empty() && self.rejected.is_empty()
    }

    /// `id` was recreated on a new digest: it is on trial, and a digest rejected earlier is
    /// forgotten (the tag moved since).
    pub fn start(&mut self, id: &str, trial: UpdateTrial) {
        self.rejected.remove(id);
        self.trials.insert(id.to_owned(), trial);
    }

    /// The trial of `id` failed and was rolled back: its digest is rejected.
    pub fn reject(&mut self, id: &str, at: Timestamp, why: String) -> Option<RejectedUpdate> {
        let t = self.trials.remove(id)?;
        let r = RejectedUpdate {
            reference: t.reference,
            digest: t.to_digest,
            back_on: t.from_digest,
            at,
            why,
        };
        self.rejected.insert(id.to_owned(), r.clone());
        Some(r)
    }

    /// When the earliest trial's deadline passes.
    #[must_use]
    pub fn next_deadline(&self, deadline_secs: u64) -> Option<Timestamp> {
        self.trials
            .values()
            .filter_map(|t| t.since.checked_add(secs(deadline_secs)).ok())
            .min()
    }

    /// Forgets what is about resources `keep` says are no longer declared.
    pub fn retain(&mut self, keep: &dyn Fn(&str) -> bool) {
        self.trials.retain(|id, _| keep(id));
        self.rejected.retain(|id, _| keep(id));
    }
}

/// Judges an update on trial by its container's health (as a revision's, see
/// [`crate::revision_health::revision_health`]) at `now`.
#[must_use]
pub fn judge_trial(
    trial: &UpdateTrial,
    health: &RevisionHealth,
    now: Timestamp,
    deadline_secs: u64,
) -> TrialVerdict {
    match health {
        RevisionHealth::Healthy => TrialVerdict::Healthy,
        _ if now.duration_since(trial.since) < secs(deadline_secs) => TrialVerdict::Waiting,
        RevisionHealth::Failing(why) => TrialVerdict::RollBack(why.clone()),
        RevisionHealth::Progressing => TrialVerdict::RollBack("still starting".into()),
    }
}

/// Holds back updates to a rejected digest: the `image_update` drift of a resource to the digest
/// rejected for it says so (its summary, the step's detail), and is not acted on: a step with
/// nothing else to do becomes an alert; other drifts of the resource are still acted on, from
/// the image it runs (the tag's new digest is not pulled).
pub fn hold_rejected(
    report: &mut DriftReport,
    plan: &mut Plan,
    rejected: &BTreeMap<String, RejectedUpdate>,
) {
    if rejected.is_empty() {
        return;
    }
    let held = |id: &ResourceId, changes: &[FieldChange]| {
        rejected.get(&id.to_string()).filter(|r| {
            changes
                .iter()
                .any(|c| c.field == DIGEST_FIELD && c.desired == r.digest)
        })
    };
    for d in &mut report.drifts {
        if d.kind == DriftKind::ImageUpdate
            && let Some(r) = held(&d.id, &d.changes)
        {
            d.summary = format!("{} ({})", d.summary, r.describe());
        }
    }
    for step in &mut plan.steps {
        if !step.drifts.contains(&DriftKind::ImageUpdate) {
            continue;
        }
        let Some(r) = held(&step.id, &step.changes) else {
            continue;
        };
        for d in &mut step.details {
            if d.contains(UPDATE_SUMMARY) {
                *d = format!("{d} ({})", r.describe());
            }
        }
        if step.drifts.iter().all(|k| *k == DriftKind::ImageUpdate) {
            if step.kind.writes() {
                step.kind = StepKind::Alert;
            }
            step.reason = HELD.to_owned();
        } else {
            // The other drifts are acted on without pulling the tag's new digest.
            step.drifts.retain(|k| *k != DriftKind::ImageUpdate);
        }
    }
}

/// Why a rejected update is not acted on.
pub const HELD: &str = "not tried again until the tag moves";

fn secs(n: u64) -> SignedDuration {
    SignedDuration::from_secs(i64::try_from(n).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_update::image_update;
    use crate::testing::running_on_digest;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn trial(since: Timestamp) -> UpdateTrial {
        UpdateTrial {
            reference: "reg:5000/app:stable".into(),
            from_digest: A.into(),
            from_image: "sha256:1111".into(),
            to_digest: B.into(),
            since,
        }
    }

    #[test]
    fn a_trial_is_judged_at_its_deadline_like_a_revision() {
        let t0: Timestamp = "2026-12-06T00:00:00Z".parse().expect("time");
        let at = |s: i64| t0.checked_add(SignedDuration::from_secs(s)).expect("time");
        let t = trial(t0);
        let failing = RevisionHealth::Failing("`web` is unhealthy".into());
        assert_eq!(judge_trial(&t, &failing, at(59), 60), TrialVerdict::Waiting);
        assert_eq!(
            judge_trial(&t, &failing, at(60), 60),
            TrialVerdict::RollBack("`web` is unhealthy".into())
        );
        assert!(matches!(
            judge_trial(&t, &RevisionHealth::Progressing, at(60), 60),
            TrialVerdict::RollBack(_)
        ));
        assert_eq!(
            judge_trial(&t, &RevisionHealth::Healthy, at(1), 60),
            TrialVerdict::Healthy
        );
        let mut u = ImageUpdates::default();
        u.start("docker/local/container/web", t.clone());
        assert_eq!(u.next_deadline(60), Some(at(60)));
        let r = u
            .reject("docker/local/container/web", at(60), "unhealthy".into())
            .expect("rejected");
        assert_eq!((r.digest.as_str(), r.back_on.as_str()), (B, A));
        assert!(u.trials.is_empty());
        // The tag moved and a new update started: the rejection is forgotten.
        u.start("docker/local/container/web", t);
        assert!(u.rejected.is_empty());
    }

    #[test]
    fn a_rejected_digest_is_held_back_until_the_tag_moves() {
        let (spec, o) = running_on_digest("reg:5000/app:stable", A);
        let id = ResourceId::for_spec("local", &spec);
        let rejected = BTreeMap::from([(
            id.to_string(),
            RejectedUpdate {
                reference: "reg:5000/app:stable".into(),
                digest: B.into(),
                back_on: A.into(),
                at: "2026-12-06T00:00:00Z".parse().expect("time"),
                why: "unhealthy".into(),
            },
        )]);
        let plan_for = |latest: &str| {
            let digests = BTreeMap::from([("reg:5000/app:stable".to_owned(), latest.to_owned())]);
            let d = image_update(&id, &spec, &o, &digests).expect("drift");
            let step = crate::plan::Step {
                id: id.clone(),
                kind: StepKind::Recreate,
                container_id: Some(o.id.clone()),
                drifts: vec![DriftKind::ImageUpdate],
                details: vec![format!("image_update: {}", d.summary)],
                changes: d.changes.clone(),
                reason: "recreate".into(),
            };
            let mut report = DriftReport {
                drifts: vec![d],
                ..DriftReport::default()
            };
            let mut plan = Plan { steps: vec![step] };
            hold_rejected(&mut report, &mut plan, &rejected);
            (report, plan)
        };
        let (report, plan) = plan_for(B);
        assert_eq!(plan.steps[0].kind, StepKind::Alert);
        assert_eq!(plan.steps[0].reason, HELD);
        assert!(plan.steps[0].details[0].contains("rolled back, waiting for the tag to move"));
        assert!(report.drifts[0].summary.contains(short_digest(B)));
        // The tag moved on to another digest: acted on as usual.
        const C: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
        let (_, plan) = plan_for(C);
        assert_eq!(plan.steps[0].kind, StepKind::Recreate);
    }
}
