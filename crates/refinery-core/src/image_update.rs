//! `image_update` drift: the registry's current digest for a declared tag differs from the digest
//! the running container was created from. Pure: the digests are asked by the caller (through the
//! engine's distribution endpoint) on the schedule [`ImageChecks`] keeps — every
//! `config.image_check_interval` per image reference, not per container, backing off while the
//! registry fails or rate-limits.
//!
//! An update carried out (`image_update: {action: recreate}`) is judged like a new revision: see
//! [`crate::image_trials`].

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use crate::backoff::Backoff;
use crate::drift_report::{Drift, DriftKind, FieldChange};
use crate::image_ref::ImageRef;
use crate::observed::ObservedContainer;
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
    let running = running_digest(o)?;
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

/// The registry digest a container was created from (`sha256:…`, of its `repo_digest`).
#[must_use]
pub fn running_digest(o: &ObservedContainer) -> Option<&str> {
    o.repo_digest.as_deref()?.split_once('@').map(|(_, d)| d)
}

/// `sha256:` and the first 12 hex digits.
#[must_use]
pub fn short_digest(d: &str) -> &str {
    d.get(..19).unwrap_or(d)
}

/// How an `image_update` drift's summary starts.
pub(crate) const UPDATE_SUMMARY: &str = "update available for";

/// The field of an `image_update` drift's change: the running digest → the registry's.
pub const DIGEST_FIELD: &str = "image_digest";

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
    use crate::testing::running_on_digest;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn image_update_when_the_tag_moved_names_both_digests() {
        let (spec, o) = running_on_digest("reg:5000/app:stable", A);
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
        let (spec, o) = running_on_digest(&format!("reg:5000/app:stable@{A}"), A);
        let id = ResourceId::for_spec("local", &spec);
        assert_eq!(tracked_reference(&spec), None);
        let digests = BTreeMap::from([("reg:5000/app:stable".to_owned(), B.to_owned())]);
        assert!(image_update(&id, &spec, &o, &digests).is_none());
        // A container whose image came from no registry has no digest to compare.
        let (spec, mut o) = running_on_digest("app", A);
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
}
