//! How a revision (or an image update on trial) is doing on a node: healthy once its
//! declared containers run steadily (and healthy, if they have a healthcheck).

use jiff::{SignedDuration, Timestamp};

use crate::observed::{ContainerState, Health, Observed};
use crate::spec::ContainerSpec;

/// How a revision is doing on the nodes that could be observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevisionHealth {
    /// Every declared container runs, and is healthy if it has a healthcheck.
    Healthy,
    /// Not there yet (starting, health pending).
    Progressing,
    /// Something cannot run: the first reason.
    Failing(String),
}

/// How the declared containers of one node are doing at `now`. `failed` names containers whose
/// last action failed in this pass. A container counts as healthy only once it has been running
/// for `settle_secs` without a restart (a crash loop is never healthy at the instant it runs).
#[must_use]
pub fn revision_health(
    declared: &[&ContainerSpec],
    observed: &Observed,
    failed: &[(String, String)],
    now: Timestamp,
    settle_secs: u64,
) -> RevisionHealth {
    if let Some((name, why)) = failed.first() {
        return RevisionHealth::Failing(format!("`{name}` could not be started: {why}"));
    }
    let mut progressing = false;
    for spec in declared {
        let Some(c) = crate::drift::declared_container(spec, observed) else {
            progressing = true;
            continue;
        };
        match (c.state, c.health) {
            (ContainerState::Running, Health::Unhealthy) => {
                return RevisionHealth::Failing(format!("`{}` is unhealthy", spec.name));
            }
            (ContainerState::Running, Health::Starting) => progressing = true,
            (ContainerState::Running, _) => {
                let started: Option<Timestamp> =
                    c.started_at.as_deref().and_then(|s| s.parse().ok());
                if started.is_none_or(|t| now.duration_since(t) < secs(settle_secs)) {
                    progressing = true;
                }
            }
            (ContainerState::Exited | ContainerState::Dead | ContainerState::Restarting, _) => {
                let code = c
                    .exit_code
                    .map(|c| format!(" (exit code {c})"))
                    .unwrap_or_default();
                return RevisionHealth::Failing(format!("`{}` is {}{code}", spec.name, c.state));
            }
            _ => progressing = true,
        }
    }
    if progressing {
        RevisionHealth::Progressing
    } else {
        RevisionHealth::Healthy
    }
}

fn secs(n: u64) -> SignedDuration {
    SignedDuration::from_secs(i64::try_from(n).unwrap_or(i64::MAX))
}
