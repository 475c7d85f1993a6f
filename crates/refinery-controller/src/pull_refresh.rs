//! `pull_policy: daily | weekly | every_<duration>` (compose): images pulled again once their
//! period has elapsed since Refinery last pulled them (the schedule and its rules are
//! `refinery_core::pull_refresh`).
//!
//! - The daemon ([`refresh_node`], before each pass observes a node it acts on, in enforce mode)
//!   pulls every such image that is due, even while its containers run; a pull that moves the
//!   local tag is `image` drift in the same pass, acted on by `drift_rules.image`. A pull that
//!   fails (registry down, refused) changes nothing, is retried with backoff, and is a failed
//!   registry check: counted in `/metrics`, the first of a streak alerted once. The pull times
//!   go to the state file.
//! - `refinery apply` ([`refresh_for_steps`]) pulls such an image before it creates or replaces
//!   a container from it, unless the daemon's state file says the daemon pulled it within the
//!   period (a one-shot command keeps no times of its own: it pulls then); it does not pull
//!   for containers it leaves alone. A failed pull leaves the local image in use, with a warning.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use jiff::Timestamp;
use refinery_core::pull_refresh::{self as refresh, PulledTimes};
use refinery_core::{ContainerRuntime, Manifest, Mode, Observed, Step, StepKind};
use refinery_engine::ApplyEvent;

/// The daemon's refresh schedule, shared by the nodes of a pass (see
/// [`refinery_core::pull_refresh::PullRefreshes`]).
#[derive(Debug, Default)]
pub struct PullRefreshes {
    inner: Mutex<refresh::PullRefreshes>,
}

impl PullRefreshes {
    /// The schedule the state file left (the times of the last pulls).
    #[must_use]
    pub fn from_pulled(pulled: &PulledTimes) -> PullRefreshes {
        PullRefreshes {
            inner: Mutex::new(refresh::PullRefreshes::from_pulled(pulled)),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut refresh::PullRefreshes) -> T) -> T {
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut g)
    }

    /// What the state file keeps.
    #[must_use]
    pub fn pulled_times(&self) -> PulledTimes {
        self.with(|r| r.pulled_times())
    }

    /// The earliest pull after `now` that `nodes` need (the loop wakes for it), forgetting the
    /// nodes no longer selected.
    #[must_use]
    pub fn next_pull(
        &self,
        manifest: &Manifest,
        nodes: &[String],
        now: Timestamp,
    ) -> Option<Timestamp> {
        self.with(|r| {
            r.retain_nodes(&|n| nodes.iter().any(|x| x == n));
            nodes
                .iter()
                .filter(|n| manifest.mode_of(n) == Mode::Enforce)
                .flat_map(|n| {
                    refresh::refreshed_on(manifest, n)
                        .into_values()
                        .filter_map(|x| r.next_pull(n, &x.image, x.every))
                        .collect::<Vec<_>>()
                })
                // A pull already due waits for the node's next pass (it was unreachable, or
                // the pass covered other nodes): no wake-up for it.
                .filter(|t| *t > now)
                .min()
        })
    }
}

/// Pulls, on `node`, the images whose refresh period has elapsed (never pulled by this daemon,
/// or last pulled a period ago or longer). Only in enforce mode: a read-only or audit node gets
/// no pull.
pub async fn refresh_node<R: ContainerRuntime>(
    engine: &R,
    refreshes: &PullRefreshes,
    checks: &crate::registries::RegistryChecks,
    manifest: &Manifest,
    node: &str,
    now: Timestamp,
) {
    if manifest.mode_of(node) != Mode::Enforce {
        return;
    }
    let refreshed = refresh::refreshed_on(manifest, node);
    let due = refreshes.with(|r| {
        r.retain_node(node, &refreshed);
        r.due(node, &refreshed, now)
    });
    for r in due {
        match engine.pull(&r.image, &|_| {}).await {
            Ok(()) => {
                tracing::debug!(node, image = %r.image, "pulled the image again (`pull_policy`)");
                refreshes.with(|s| s.pulled(node, &r.image, now));
            }
            Err(e) => {
                let failure = refreshes.with(|s| s.failed(node, &r.image, r.every, now));
                if checks.record_failure(
                    node,
                    crate::registries::CheckKind::Pull,
                    &r.image,
                    e.to_string(),
                    failure,
                ) {
                    tracing::warn!(node, image = %r.image, error = %e, "failed to pull the image again (`pull_policy: every_{}`); its containers keep the local image; trying again later, backing off", refresh::period_text(r.every));
                }
            }
        }
    }
}

/// The pull times the daemon whose state is in `state_dir` (else the default state directory
/// of `repo`) recorded; empty when none ran there, or its state cannot be read.
#[must_use]
pub fn daemon_pulled_times(
    repo: &std::path::Path,
    state_dir: Option<&std::path::Path>,
) -> PulledTimes {
    crate::controller::daemon_state(repo, state_dir)
        .map(|s| s.pulled)
        .unwrap_or_default()
}

/// `refinery apply`: before `steps` (of one node) run, pulls the image of each container they create
/// or replace whose `pull_policy` is a refresh, when it is local and `pulled` (the daemon's
/// record) has no pull of it within the period. A missing image is left to the create (which
/// pulls it); a failed pull leaves the local image in use, with a warning. Returns the images
/// pulled.
pub async fn refresh_for_steps<R: ContainerRuntime>(
    engine: &R,
    manifest: &Manifest,
    steps: &[Step],
    observed: &Observed,
    pulled: &PulledTimes,
    now: Timestamp,
    on_event: &(dyn Fn(ApplyEvent) + Send + Sync),
) -> Vec<String> {
    let record = refresh::PullRefreshes::from_pulled(pulled);
    let mut done: BTreeSet<String> = BTreeSet::new();
    let Some(node) = steps.first().map(|s| s.id.node()) else {
        return Vec::new();
    };
    let creates = steps
        .iter()
        .filter(|s| matches!(s.kind, StepKind::Create | StepKind::Recreate))
        .filter_map(|s| crate::node_pass::spec_of(manifest, &s.id));
    let mut wanted: BTreeMap<String, String> = BTreeMap::new();
    for spec in creates {
        let Some(every) = refresh::refresh_period(spec) else {
            continue;
        };
        let fresh = record
            .next_pull(node, &spec.image, every)
            .is_some_and(|at| at > now);
        if observed.image(&spec.image).is_some() && !fresh {
            wanted.insert(
                refinery_core::labels::normalize_image_ref(&spec.image),
                spec.image.clone(),
            );
        }
    }
    for image in wanted.into_values() {
        let report = |progress| {
            on_event(ApplyEvent::Pulling {
                image: image.clone(),
                progress,
            });
        };
        match engine.pull(&image, &report).await {
            Ok(()) => {
                done.insert(image);
            }
            Err(e) => {
                tracing::warn!(node, image = %image, error = %e, "failed to pull the image again (`pull_policy`); the local image is used");
            }
        }
    }
    done.into_iter().collect()
}
