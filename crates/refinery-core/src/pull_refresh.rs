//! `pull_policy: daily | weekly | every_<duration>` (compose): the image is pulled again when the
//! local copy was last pulled longer ago than the period, and the service then moves to the new
//! image if the pull changed it. Pure: the pulls are made by the caller on the schedule
//! [`PullRefreshes`] keeps, per node and image reference (a reference two containers share is
//! pulled once).
//!
//! The engine keeps no time of a pull (measured on Docker 20.10, API 1.41: a pull leaves the
//! image's `Metadata.LastTagTime` at `0001-01-01T00:00:00Z`; only `docker tag` and builds set
//! it), so the times are Refinery's own: the daemon keeps them in its state file. A pull that
//! moves the local tag is then `image` drift (the container runs another image id than the tag
//! names), acted on by `drift_rules.image`.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use crate::backoff::Backoff;
use crate::extra_options::PullPolicy;
use crate::image_ref::ImageRef;
use crate::image_update::CheckFailure;
use crate::labels::normalize_image_ref;
use crate::manifest::Manifest;
use crate::spec::ContainerSpec;

/// The first wait after a failed pull (shorter when the period is): doubled while the
/// registry keeps failing, up to the period (at most [`crate::image_update::MAX_BACKOFF`]).
pub const FIRST_RETRY: Duration = Duration::from_secs(30);

/// The refresh period of a spec's image: `pull_policy` is `daily`, `weekly` or `every_…`, and the
/// image can move (not a digest pin, not built here, not chosen by `image_policy`).
#[must_use]
pub fn refresh_period(spec: &ContainerSpec) -> Option<Duration> {
    let Some(PullPolicy::Refresh { every_ms }) = spec.options.extra().pull_policy else {
        return None;
    };
    if spec.stack.as_ref().is_some_and(|m| m.build.is_some()) || spec.options.image_policy.is_some()
    {
        return None;
    }
    let r = ImageRef::parse(&spec.image).ok()?;
    if r.digest().is_some() {
        return None;
    }
    Some(Duration::from_millis(every_ms))
}

/// The images to refresh on `node`: reference as declared → the shortest period any container
/// declares for it (keyed by its normalized form, `busybox` → `busybox:latest`).
#[must_use]
pub fn refreshed_on(manifest: &Manifest, node: &str) -> BTreeMap<String, Refresh> {
    let mut out: BTreeMap<String, Refresh> = BTreeMap::new();
    for spec in manifest.containers_on(node) {
        let Some(every) = refresh_period(spec) else {
            continue;
        };
        let key = normalize_image_ref(&spec.image);
        out.entry(key)
            .and_modify(|r| r.every = r.every.min(every))
            .or_insert_with(|| Refresh {
                image: spec.image.clone(),
                every,
            });
    }
    out
}

/// One image to keep fresh: the reference to pull, and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh {
    pub image: String,
    pub every: Duration,
}

/// When each (node, image) was last pulled by Refinery, and the retries of those that failed.
#[derive(Debug, Clone, Default)]
pub struct PullRefreshes {
    /// node → normalized reference → state.
    by_node: BTreeMap<String, BTreeMap<String, RefreshState>>,
}

#[derive(Debug, Clone, Default)]
struct RefreshState {
    pulled: Option<Timestamp>,
    /// While failing: when to try again.
    retry_at: Option<Timestamp>,
    backoff: Option<Backoff>,
    failures: u32,
}

/// What the state file keeps: node → normalized reference → when Refinery last pulled it there.
pub type PulledTimes = BTreeMap<String, BTreeMap<String, Timestamp>>;

impl PullRefreshes {
    /// The schedule as the state file left it (no failures remembered: a restart tries at once).
    #[must_use]
    pub fn from_pulled(pulled: &PulledTimes) -> PullRefreshes {
        let by_node = pulled
            .iter()
            .map(|(node, refs)| {
                let refs = refs
                    .iter()
                    .map(|(r, t)| {
                        (
                            r.clone(),
                            RefreshState {
                                pulled: Some(*t),
                                ..RefreshState::default()
                            },
                        )
                    })
                    .collect();
                (node.clone(), refs)
            })
            .collect();
        PullRefreshes { by_node }
    }

    /// When Refinery last pulled `reference` on `node`, if it knows.
    #[must_use]
    pub fn last_pulled(&self, node: &str, reference: &str) -> Option<Timestamp> {
        self.state(node, reference).and_then(|s| s.pulled)
    }

    fn state(&self, node: &str, reference: &str) -> Option<&RefreshState> {
        self.by_node.get(node)?.get(&normalize_image_ref(reference))
    }

    fn state_mut(&mut self, node: &str, reference: &str) -> &mut RefreshState {
        self.by_node
            .entry(node.to_owned())
            .or_default()
            .entry(normalize_image_ref(reference))
            .or_default()
    }

    /// When `reference` is next to be pulled on `node`: at once if never pulled, else one period
    /// after the last pull, or at the retry time while the registry fails.
    #[must_use]
    pub fn next_pull(&self, node: &str, reference: &str, every: Duration) -> Option<Timestamp> {
        let s = self.state(node, reference)?;
        if let Some(retry) = s.retry_at {
            return Some(retry);
        }
        s.pulled.map(|t| later(t, every))
    }

    /// Of `refreshed` (see [`refreshed_on`]), the images due for a pull on `node` at `now`:
    /// never pulled by Refinery, or last pulled a period ago or longer (and not waiting for a
    /// retry). Sorted by reference.
    #[must_use]
    pub fn due(
        &self,
        node: &str,
        refreshed: &BTreeMap<String, Refresh>,
        now: Timestamp,
    ) -> Vec<Refresh> {
        refreshed
            .values()
            .filter(|r| {
                self.next_pull(node, &r.image, r.every)
                    .is_none_or(|at| at <= now)
            })
            .cloned()
            .collect()
    }

    /// `reference` was pulled on `node` at `now`: the next pull is one period later.
    pub fn pulled(&mut self, node: &str, reference: &str, now: Timestamp) {
        *self.state_mut(node, reference) = RefreshState {
            pulled: Some(now),
            ..RefreshState::default()
        };
    }

    /// The pull failed (registry down, refused): nothing else changes; the next try backs off,
    /// from [`FIRST_RETRY`] (or the period, if shorter) doubling up to the period.
    pub fn failed(
        &mut self,
        node: &str,
        reference: &str,
        every: Duration,
        now: Timestamp,
    ) -> CheckFailure {
        let s = self.state_mut(node, reference);
        let first = FIRST_RETRY.min(every);
        let cap = every.min(crate::image_update::MAX_BACKOFF).max(first);
        let delay = s
            .backoff
            .get_or_insert_with(|| Backoff::new(first, cap))
            .next()
            .unwrap_or(cap);
        s.retry_at = Some(later(now, delay));
        s.failures = s.failures.saturating_add(1);
        if s.failures == 1 {
            CheckFailure::First
        } else {
            CheckFailure::Again
        }
    }

    /// Forgets the images `node` no longer refreshes (see [`refreshed_on`]).
    pub fn retain_node(&mut self, node: &str, refreshed: &BTreeMap<String, Refresh>) {
        if let Some(refs) = self.by_node.get_mut(node) {
            refs.retain(|r, _| refreshed.contains_key(r));
            if refs.is_empty() {
                self.by_node.remove(node);
            }
        }
    }

    /// Forgets the nodes `keep` says no longer exist.
    pub fn retain_nodes(&mut self, keep: &dyn Fn(&str) -> bool) {
        self.by_node.retain(|n, _| keep(n));
    }

    /// What the state file keeps: the time of each image's last pull.
    #[must_use]
    pub fn pulled_times(&self) -> PulledTimes {
        self.by_node
            .iter()
            .map(|(node, refs)| {
                let times: BTreeMap<String, Timestamp> = refs
                    .iter()
                    .filter_map(|(r, s)| s.pulled.map(|t| (r.clone(), t)))
                    .collect();
                (node.clone(), times)
            })
            .filter(|(_, times)| !times.is_empty())
            .collect()
    }
}

/// `daily`, `weekly`, `every_90s` as a short period: `1d`, `7d`, `90s`.
#[must_use]
pub fn period_text(every: Duration) -> String {
    let ms = every.as_millis();
    for (unit, len) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms >= len && ms.is_multiple_of(len) {
            return format!("{}{unit}", ms / len);
        }
    }
    format!("{ms}ms")
}

fn later(t: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        let t0: Timestamp = "2026-12-07T00:00:00Z".parse().expect("time");
        t0.checked_add(jiff::SignedDuration::from_secs(s))
            .expect("time")
    }

    fn refresh(image: &str, secs: u64) -> (String, Refresh) {
        (
            normalize_image_ref(image),
            Refresh {
                image: image.to_owned(),
                every: Duration::from_secs(secs),
            },
        )
    }

    fn images(due: &[Refresh]) -> Vec<&str> {
        due.iter().map(|r| r.image.as_str()).collect()
    }

    #[test]
    fn pull_refresh_never_pulled_is_due_then_once_per_period() {
        let declared = BTreeMap::from([refresh("app", 60), refresh("reg:5000/db:1", 3600)]);
        let mut s = PullRefreshes::default();
        assert_eq!(
            images(&s.due("n1", &declared, at(0))),
            ["app", "reg:5000/db:1"]
        );
        s.pulled("n1", "app", at(0));
        s.pulled("n1", "reg:5000/db:1", at(0));
        assert!(s.due("n1", &declared, at(59)).is_empty());
        assert_eq!(images(&s.due("n1", &declared, at(60))), ["app"]);
        // Per node: another node's engine has its own copy.
        assert_eq!(s.due("n2", &declared, at(1)).len(), 2);
        // `app` and `app:latest` are one image.
        assert_eq!(s.last_pulled("n1", "app:latest"), Some(at(0)));
        assert_eq!(
            s.next_pull("n1", "app", Duration::from_secs(60)),
            Some(at(60))
        );
    }

    #[test]
    fn pull_refresh_failure_backs_off_to_the_period_and_reports_once() {
        let declared = BTreeMap::from([refresh("app", 300)]);
        let every = Duration::from_secs(300);
        let mut s = PullRefreshes::default();
        s.pulled("n1", "app", at(0));
        // 30 s, 60 s, 120 s, 240 s, then the period (300 s).
        assert_eq!(s.failed("n1", "app", every, at(300)), CheckFailure::First);
        assert!(s.due("n1", &declared, at(329)).is_empty());
        assert_eq!(s.due("n1", &declared, at(330)).len(), 1);
        assert_eq!(s.failed("n1", "app", every, at(330)), CheckFailure::Again);
        assert_eq!(s.next_pull("n1", "app", every), Some(at(390)));
        assert_eq!(s.failed("n1", "app", every, at(390)), CheckFailure::Again);
        assert_eq!(s.next_pull("n1", "app", every), Some(at(510)));
        s.failed("n1", "app", every, at(510));
        s.failed("n1", "app", every, at(750));
        assert_eq!(s.next_pull("n1", "app", every), Some(at(1050)));
        // The last good pull is kept (and saved) meanwhile.
        assert_eq!(s.last_pulled("n1", "app"), Some(at(0)));
        // A success starts over: the next failure is a new streak, retried after 30 s.
        s.pulled("n1", "app", at(1050));
        assert_eq!(s.failed("n1", "app", every, at(1350)), CheckFailure::First);
        assert_eq!(s.next_pull("n1", "app", every), Some(at(1380)));
        // A period shorter than 30 s retries after one period.
        let mut quick = PullRefreshes::default();
        quick.failed("n1", "app", Duration::from_secs(2), at(0));
        assert_eq!(
            quick.next_pull("n1", "app", Duration::from_secs(2)),
            Some(at(2))
        );
    }

    #[test]
    fn pull_refresh_times_round_trip_and_forget_undeclared_images() {
        let mut s = PullRefreshes::default();
        s.pulled("n1", "app", at(5));
        s.pulled("n1", "old:1", at(6));
        s.failed("n2", "never-pulled:1", Duration::from_secs(60), at(7));
        let times = s.pulled_times();
        assert_eq!(
            times,
            BTreeMap::from([(
                "n1".to_owned(),
                BTreeMap::from([
                    ("app:latest".to_owned(), at(5)),
                    ("old:1".to_owned(), at(6))
                ])
            )])
        );
        let mut back = PullRefreshes::from_pulled(&times);
        assert_eq!(back.last_pulled("n1", "app"), Some(at(5)));
        back.retain_node("n1", &BTreeMap::from([refresh("app", 60)]));
        assert_eq!(back.last_pulled("n1", "old:1"), None);
        back.retain_nodes(&|n| n != "n1");
        assert!(back.pulled_times().is_empty());
    }

    #[test]
    fn pull_refresh_period_only_for_refresh_kinds_of_images_that_can_move() {
        let mut spec = crate::testing::spec("web");
        spec.image = "reg:5000/app:stable".into();
        assert_eq!(refresh_period(&spec), None, "no pull_policy");
        let policy = |p| {
            Some(Box::new(crate::ExtraOptions {
                pull_policy: Some(p),
                ..crate::ExtraOptions::default()
            }))
        };
        spec.options.extra = policy(PullPolicy::Refresh { every_ms: 2000 });
        assert_eq!(refresh_period(&spec), Some(Duration::from_secs(2)));
        let digest = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        spec.image = format!("reg:5000/app:stable@{digest}");
        assert_eq!(refresh_period(&spec), None, "a digest pin never moves");
        spec.image = "reg:5000/app:stable".into();
        spec.options.extra = policy(PullPolicy::Always);
        assert_eq!(refresh_period(&spec), None);
        // `plan` says so of a container about to be created from a local image.
        spec.options.extra = policy(PullPolicy::Refresh {
            every_ms: 86_400_000,
        });
        let mut observed = crate::observed::Observed::default();
        assert!(
            crate::drift::image_note(&spec, &observed).is_some_and(|n| n.contains("not present")),
            "absent: pulled as any missing image"
        );
        observed.images.insert(
            spec.image.clone(),
            crate::testing::image_info(&spec.image, &crate::observed::ImageDefaults::default()),
        );
        assert_eq!(
            crate::drift::image_note(&spec, &observed).as_deref(),
            Some(
                "image `reg:5000/app:stable` is pulled again first if Refinery last pulled it over 1d ago (`pull_policy`)"
            )
        );
        assert_eq!(period_text(Duration::from_secs(86_400)), "1d");
        assert_eq!(period_text(Duration::from_secs(5400)), "90m");
        assert_eq!(period_text(Duration::from_millis(2500)), "2500ms");
    }
}
