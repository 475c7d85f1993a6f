//! `image_update` drift: the registry's current digest for a declared tag differs from the digest
//! the running container was created from. Pure: the digests are asked by the caller (through the
//! engine's distribution endpoint) on the schedule [`ImageChecks`] keeps — every
//! `config.image_check_interval` per image reference, not per container, backing off while the
//! registry fails or rate-limits.
//!
//! An update carried out (`image_update: {action: recreate}`) is judged like a new revision
//! ([`ImageUpdates`]): the container must run healthy within `config.health_deadline`, else it is
//! put back on the digest it ran before, and the digest it failed on is not tried again until the
//! tag moves to another one.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::backoff::Backoff;
use crate::daemon_state::RevisionHealth;
use crate::drift_report::{Drift, DriftKind, DriftReport, FieldChange};
use crate::image_ref::ImageRef;
use crate::observed::ObservedContainer;
use crate::plan::{Plan, StepKind};
use crate::resource_id::ResourceId;
use crate::spec::ContainerSpec;

/// The longest a failing registry waits between checks.
pub const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);

/// The tag reference (`name:tag`) whose registry digest a container follows; `None` for a digest
/// pin (it never moves), an image built here, a container following versions (`image_policy`,
/// see [`crate::image_policy`]), or a reference that does not parse.
#[must_use]
pub fn tracked_reference(spec: &ContainerSpec) -> Option<String> {
    if spec.stack.as_ref().is_some_and(|m| m.build.is_some()) || spec.options.image_policy.is_some()
    {
        return None;
    }
    let r = ImageRef::parse(&spec.image).ok()?;
    if r.digest().is_some() {
        return None;
    }
    Some(r.tagged())
}

/// The `image_update` drift of a running container, if the registry's digest for its tag (in
/// `registry_digests`, by [`tracked_reference`]) differs from the one it runs.
#[must_use]
pub fn image_update(
    id: &ResourceId,
    spec: &ContainerSpec,
    o: &ObservedContainer,
    registry_digests: &BTreeMap<String, String>,
) -> Option<Drift> {
    let reference = tracked_reference(spec)?;
    let latest = registry_digests.get(&reference)?;
    let running = o.repo_digest.as_deref()?.split_once('@')?.1;
    if running == latest {
        return None;
    }
    Some(Drift {
        id: id.clone(),
        kind: DriftKind::ImageUpdate,
        container_id: Some(o.id.clone()),
        summary: format!(
            "{UPDATE_SUMMARY} `{reference}`: {} → {}",
            short_digest(running),
            short_digest(latest)
        ),
        changes: vec![FieldChange {
            field: DIGEST_FIELD.into(),
            desired: latest.clone(),
            observed: running.to_owned(),
            ignored: false,
        }],
    })
}

/// `sha256:` and the first 12 hex digits.
#[must_use]
pub fn short_digest(d: &str) -> &str {
    d.get(..19).unwrap_or(d)
}

/// How an `image_update` drift's summary starts.
const UPDATE_SUMMARY: &str = "update available for";

/// The field of an `image_update` drift's change: the running digest → the registry's.
pub const DIGEST_FIELD: &str = "image_digest";

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
/// [`crate::daemon_state::revision_health`]) at `now`.
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

/// When each reference is next asked, and what the registry last said.
#[derive(Debug, Clone, Default)]
pub struct ImageChecks {
    by_reference: BTreeMap<String, CheckState>,
}

#[derive(Debug, Clone)]
struct CheckState {
    next: Timestamp,
    digest: Option<String>,
    backoff: Option<Backoff>,
    /// Failures in a row (the outage is reported once, at the first).
    failures: u32,
}

/// What a failed check means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckFailure {
    /// The first failure in a row: worth one alert.
    First,
    /// The registry is still failing: already reported.
    Again,
}

impl ImageChecks {
    /// Of `references`, those due for a check at `now` (never asked, or their time has come).
    #[must_use]
    pub fn due<'a>(
        &self,
        references: impl IntoIterator<Item = &'a str>,
        now: Timestamp,
    ) -> Vec<String> {
        let mut out: Vec<String> = references
            .into_iter()
            .filter(|r| self.by_reference.get(*r).is_none_or(|s| s.next <= now))
            .map(str::to_owned)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The registry answered `digest` for `reference`: next check one `interval` later.
    pub fn succeeded(
        &mut self,
        reference: &str,
        digest: String,
        now: Timestamp,
        interval: Duration,
    ) {
        self.by_reference.insert(
            reference.to_owned(),
            CheckState {
                next: later(now, interval),
                digest: Some(digest),
                backoff: None,
                failures: 0,
            },
        );
    }

    /// The registry failed (outage, 429, refused): the next check backs off, doubling from one
    /// `interval` up to [`MAX_BACKOFF`]; the last known digest is kept.
    pub fn failed(&mut self, reference: &str, now: Timestamp, interval: Duration) -> CheckFailure {
        let state = self
            .by_reference
            .entry(reference.to_owned())
            .or_insert_with(|| CheckState {
                next: now,
                digest: None,
                backoff: None,
                failures: 0,
            });
        let backoff = state
            .backoff
            .get_or_insert_with(|| Backoff::new(interval, MAX_BACKOFF.max(interval)));
        let delay = backoff.next().unwrap_or(interval);
        state.next = later(now, delay);
        state.failures = state.failures.saturating_add(1);
        if state.failures == 1 {
            CheckFailure::First
        } else {
            CheckFailure::Again
        }
    }

    /// The last digest the registry gave for each reference.
    #[must_use]
    pub fn digests(&self) -> BTreeMap<String, String> {
        self.by_reference
            .iter()
            .filter_map(|(r, s)| s.digest.clone().map(|d| (r.clone(), d)))
            .collect()
    }

    /// Forgets references no longer declared.
    pub fn retain(&mut self, keep: &dyn Fn(&str) -> bool) {
        self.by_reference.retain(|r, _| keep(r));
    }
}

fn later(now: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{observed_from_spec, spec as base_spec};

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn running(image: &str, digest: &str) -> (ContainerSpec, ObservedContainer) {
        let mut spec = base_spec("web");
        spec.image = image.to_owned();
        let mut o = observed_from_spec(&spec, &crate::ImageDefaults::default());
        let name = ImageRef::parse(image).expect("valid").name().to_owned();
        o.repo_digest = Some(format!("{name}@{digest}"));
        (spec, o)
    }

    #[test]
    fn image_update_when_the_tag_moved_names_both_digests() {
        let (spec, o) = running("reg:5000/app:stable", A);
        let id = ResourceId::for_spec("local", &spec);
        let digests = BTreeMap::from([("reg:5000/app:stable".to_owned(), B.to_owned())]);
        let d = image_update(&id, &spec, &o, &digests).expect("drift");
        assert_eq!(d.kind, DriftKind::ImageUpdate);
        assert!(d.summary.contains(short_digest(A)) && d.summary.contains(short_digest(B)));
        assert_eq!(
            (
                d.changes[0].observed.as_str(),
                d.changes[0].desired.as_str()
            ),
            (A, B)
        );
        let same = BTreeMap::from([("reg:5000/app:stable".to_owned(), A.to_owned())]);
        assert!(image_update(&id, &spec, &o, &same).is_none());
    }

    #[test]
    fn image_update_never_for_pins_or_unknown_digests() {
        let (spec, o) = running(&format!("reg:5000/app:stable@{A}"), A);
        let id = ResourceId::for_spec("local", &spec);
        assert_eq!(tracked_reference(&spec), None);
        let digests = BTreeMap::from([("reg:5000/app:stable".to_owned(), B.to_owned())]);
        assert!(image_update(&id, &spec, &o, &digests).is_none());
        // A container whose image came from no registry has no digest to compare.
        let (spec, mut o) = running("app", A);
        o.repo_digest = None;
        let digests = BTreeMap::from([("app:latest".to_owned(), B.to_owned())]);
        assert!(image_update(&id, &spec, &o, &digests).is_none());
    }

    #[test]
    fn image_checks_wait_an_interval_and_back_off_on_failure() {
        let t0: Timestamp = "2026-12-06T00:00:00Z".parse().expect("time");
        let at = |s: i64| {
            t0.checked_add(jiff::SignedDuration::from_secs(s))
                .expect("time")
        };
        let interval = Duration::from_secs(300);
        let mut c = ImageChecks::default();
        assert_eq!(c.due(["a:1", "b:1", "a:1"], t0), ["a:1", "b:1"]);
        c.succeeded("a:1", A.into(), t0, interval);
        assert_eq!(c.due(["a:1"], at(299)), Vec::<String>::new());
        assert_eq!(c.due(["a:1"], at(300)), ["a:1"]);
        // Failures: 300 s, 600 s, 1200 s; the digest is kept; one report.
        assert_eq!(c.failed("a:1", at(300), interval), CheckFailure::First);
        assert!(c.due(["a:1"], at(599)).is_empty());
        assert_eq!(c.failed("a:1", at(600), interval), CheckFailure::Again);
        assert!(c.due(["a:1"], at(1199)).is_empty());
        assert_eq!(c.due(["a:1"], at(1200)), ["a:1"]);
        assert_eq!(c.digests().get("a:1").map(String::as_str), Some(A));
        // A success resets the backoff.
        c.succeeded("a:1", B.into(), at(1200), interval);
        assert_eq!(c.failed("a:1", at(1500), interval), CheckFailure::First);
        assert_eq!(c.due(["a:1"], at(1800)), ["a:1"]);
    }

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
        let (spec, o) = running("reg:5000/app:stable", A);
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
