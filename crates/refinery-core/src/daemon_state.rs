//! What the daemon remembers between passes and across restarts: when each drift was first seen
//! (grace periods), recent actions per resource (flap protection), the revision in force and the
//! last healthy one (rollback). Pure: time is passed in; the CLI persists it as a small versioned
//! JSON file.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::drift::Drift;
use crate::image_trials::ImageUpdates;
use crate::manifest::Flapping;
use crate::policy::drift_key;
pub use crate::revision_health::{RevisionHealth, revision_health};

/// The state file's schema version.
pub const STATE_VERSION: u32 = 1;

/// Flap protection when `drift_rules.flapping` is absent: 5 actions on one resource within 10 min.
pub const DEFAULT_FLAPPING: Flapping = Flapping {
    max_actions: 5,
    window_secs: 600,
};

/// A resource Refinery stopped acting on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspension {
    pub since: Timestamp,
    /// How many actions tripped it, within how many seconds.
    pub actions: u32,
    pub window_secs: u64,
    /// The declared spec's hash when it was suspended: a new spec in git lifts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<String>,
}

/// A revision applied but not yet proven healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub revision: String,
    pub since: Timestamp,
}

/// A revision the daemon left because it did not become healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolledBack {
    /// The revision that failed.
    pub from: String,
    /// The revision enforced instead.
    pub to: String,
    pub at: Timestamp,
    pub why: String,
    /// Asked for with `refinery rollback`, rather than decided by the daemon.
    #[serde(default)]
    pub by_hand: bool,
}

/// The daemon's memory (schema [`STATE_VERSION`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonState {
    pub v: u32,
    /// `<resource id> <drift kind>` → when first seen.
    #[serde(default)]
    pub first_seen: BTreeMap<String, Timestamp>,
    /// Resource id → times Refinery acted on it, within the flapping window.
    #[serde(default)]
    pub actions: BTreeMap<String, Vec<Timestamp>>,
    /// Resource id → why Refinery stopped acting on it.
    #[serde(default)]
    pub suspended: BTreeMap<String, Suspension>,
    /// The revision in force.
    #[serde(default)]
    pub revision: Option<String>,
    /// The last revision every declared container ran healthy on.
    #[serde(default)]
    pub last_healthy: Option<String>,
    #[serde(default)]
    pub pending: Option<Pending>,
    /// Set while the daemon holds a revision older than the branch's tip.
    #[serde(default)]
    pub rolled_back: Option<RolledBack>,
    /// Image updates on trial and those rolled back (`image_update: {action: recreate}`).
    #[serde(default, skip_serializing_if = "ImageUpdates::is_empty")]
    pub image_updates: ImageUpdates,
    /// Node → image reference → when Refinery last pulled it there, for `pull_policy: daily`,
    /// `weekly` and `every_…` (the engine keeps no such time; see [`crate::pull_refresh`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pulled: crate::pull_refresh::PulledTimes,
}

impl Default for DaemonState {
    fn default() -> Self {
        DaemonState {
            v: STATE_VERSION,
            first_seen: BTreeMap::new(),
            actions: BTreeMap::new(),
            suspended: BTreeMap::new(),
            revision: None,
            last_healthy: None,
            pending: None,
            rolled_back: None,
            image_updates: ImageUpdates::default(),
            pulled: BTreeMap::new(),
        }
    }
}

fn secs(n: u64) -> SignedDuration {
    SignedDuration::from_secs(i64::try_from(n).unwrap_or(i64::MAX))
}

impl DaemonState {
    /// Remembers when each of `drifts` (all of one node's) was first seen; forgets drifts of
    /// that node that are gone. Returns the drifts seen for the first time.
    pub fn track_drifts<'d>(
        &mut self,
        node: &str,
        drifts: &'d [Drift],
        now: Timestamp,
    ) -> Vec<&'d Drift> {
        let current: BTreeSet<String> = drifts.iter().map(drift_key).collect();
        let prefix = format!("docker/{node}/");
        self.first_seen
            .retain(|k, _| !k.starts_with(&prefix) || current.contains(k));
        let mut new = Vec::new();
        for d in drifts {
            if let std::collections::btree_map::Entry::Vacant(e) =
                self.first_seen.entry(drift_key(d))
            {
                e.insert(now);
                new.push(d);
            }
        }
        new
    }

    /// Whether Refinery must not act on `id`. A suspension whose spec hash differs from
    /// `spec_hash` (the spec changed in git) is lifted here.
    pub fn is_suspended(&mut self, id: &str, spec_hash: Option<&str>) -> bool {
        let Some(s) = self.suspended.get(id) else {
            return false;
        };
        if s.spec_hash.as_deref() != spec_hash {
            self.suspended.remove(id);
            self.actions.remove(id);
            return false;
        }
        true
    }

    /// Records an action on `id` at `now`; returns the suspension if this one reached the limit.
    pub fn record_action(
        &mut self,
        id: &str,
        spec_hash: Option<&str>,
        now: Timestamp,
        rule: Flapping,
    ) -> Option<Suspension> {
        let window = secs(rule.window_secs);
        let times = self.actions.entry(id.to_owned()).or_default();
        times.retain(|t| now.duration_since(*t) < window);
        times.push(now);
        let count = u32::try_from(times.len()).unwrap_or(u32::MAX);
        if rule.max_actions == 0 || count < rule.max_actions {
            return None;
        }
        let s = Suspension {
            since: now,
            actions: count,
            window_secs: rule.window_secs,
            spec_hash: spec_hash.map(str::to_owned),
        };
        self.suspended.insert(id.to_owned(), s.clone());
        Some(s)
    }

    /// Lifts a suspension (`refinery resume`); `false` if `id` was not suspended.
    pub fn resume(&mut self, id: &str) -> bool {
        self.actions.remove(id);
        self.suspended.remove(id).is_some()
    }

    /// Drops action times older than the window, so the file does not grow.
    pub fn forget_old_actions(&mut self, now: Timestamp, rule: Flapping) {
        let window = secs(rule.window_secs);
        for times in self.actions.values_mut() {
            times.retain(|t| now.duration_since(*t) < window);
        }
        self.actions.retain(|_, t| !t.is_empty());
    }

    /// Whether the pending revision has outlived `deadline_secs`.
    #[must_use]
    pub fn pending_overdue(&self, now: Timestamp, deadline_secs: u64) -> bool {
        self.pending
            .as_ref()
            .is_some_and(|p| now.duration_since(p.since) >= secs(deadline_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    const RULE: Flapping = Flapping {
        max_actions: 3,
        window_secs: 60,
    };

    #[test]
    fn flapping_third_action_within_window_suspends() {
        let mut s = DaemonState::default();
        assert!(s.record_action("a", Some("h1"), t(0), RULE).is_none());
        assert!(s.record_action("a", Some("h1"), t(10), RULE).is_none());
        let got = s.record_action("a", Some("h1"), t(20), RULE);
        assert_eq!(got.map(|s| s.actions), Some(3));
        assert!(s.is_suspended("a", Some("h1")));
    }

    #[test]
    fn flapping_actions_outside_window_do_not_count() {
        let mut s = DaemonState::default();
        assert!(s.record_action("a", None, t(0), RULE).is_none());
        assert!(s.record_action("a", None, t(50), RULE).is_none());
        assert!(s.record_action("a", None, t(120), RULE).is_none());
        assert!(!s.is_suspended("a", None));
    }

    #[test]
    fn flapping_new_spec_in_git_lifts_suspension() {
        let mut s = DaemonState::default();
        for i in 0..3 {
            s.record_action("a", Some("h1"), t(i), RULE);
        }
        assert!(s.is_suspended("a", Some("h1")));
        assert!(!s.is_suspended("a", Some("h2")));
        assert!(!s.is_suspended("a", Some("h1")), "lifted for good");
    }

    #[test]
    fn flapping_resume_lifts_suspension() {
        let mut s = DaemonState::default();
        for i in 0..3 {
            s.record_action("a", None, t(i), RULE);
        }
        assert!(s.resume("a"));
        assert!(!s.is_suspended("a", None));
        assert!(!s.resume("a"));
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut s = DaemonState::default();
        s.first_seen
            .insert("docker/n/container/a missing".into(), t(1));
        s.record_action("a", Some("h"), t(2), RULE);
        s.pending = Some(Pending {
            revision: "abc".into(),
            since: t(3),
        });
        let json = serde_json::to_string(&s).unwrap_or_default();
        let back: DaemonState = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back, s);
    }

    #[test]
    fn pending_is_overdue_after_the_deadline() {
        let mut s = DaemonState::default();
        assert!(!s.pending_overdue(t(100), 60));
        s.pending = Some(Pending {
            revision: "r".into(),
            since: t(0),
        });
        assert!(!s.pending_overdue(t(59), 60));
        assert!(s.pending_overdue(t(60), 60));
    }
}
