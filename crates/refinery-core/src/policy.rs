//! Policy: what to do about each drift, given rules, modes, windows and time.

use serde::Serialize;

pub use crate::action::Action;

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::drift::{Drift, DriftKind, DriftReport};
use crate::labels;
use crate::manifest::{MaintenanceWindow, Manifest, Mode, Rule, WindowDay};
use crate::observed::Observed;

/// What policy says about one drift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Act now.
    Act { action: Action },
    /// Report, do not act (audit mode, an `alert` rule, a window forbidding it, an empty manifest).
    Alert { why: String },
    /// Not acted on, not reported as a problem.
    Ignore { why: String },
    /// Drift younger than its grace period.
    Defer { until: Timestamp },
    /// Matches `inventory.protected` or is Refinery itself: never touched.
    Protected { why: String },
}

/// One drift and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub drift: Drift,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// Everything policy needs besides the drift report; time is passed in.
pub struct PolicyContext<'a> {
    pub manifest: &'a Manifest,
    /// The mode in force on the node.
    pub mode: Mode,
    pub now: Timestamp,
    /// When each drift (`<id> <kind>`) was first seen; missing entries count as seen `now`.
    pub first_seen: &'a BTreeMap<String, Timestamp>,
    /// `false` for a manual `apply`, which acts at once.
    pub honor_grace: bool,
    /// The engine id of Refinery's own container, if it runs in one.
    pub self_container_id: Option<&'a str>,
    /// `prune: true` on the `kubernetes:` source being decided: its `orphan` objects are
    /// deleted. Always `false` for a node.
    pub prune: bool,
}

/// The key of a drift in `first_seen`.
#[must_use]
pub fn drift_key(d: &Drift) -> String {
    format!("{} {}", d.id, d.kind)
}

/// The rule in force for a drift kind: the manifest's, or the default.
#[must_use]
pub fn rule_for(manifest: &Manifest, kind: DriftKind) -> Rule {
    let r = &manifest.drift_rules;
    let (set, default) = match kind {
        DriftKind::Unauthorized => (&r.unauthorized_containers, Action::Alert),
        DriftKind::Missing => (&r.missing_containers, Action::Recreate),
        DriftKind::Image => (&r.image_drift, Action::Recreate),
        DriftKind::Config => (&r.config_drift, Action::Recreate),
        DriftKind::Status => (&r.status_drift, Action::Restart),
        // An update available is reported, not acted on, unless asked.
        DriftKind::ImageUpdate => (&r.image_update, Action::Alert),
        // Pruning is asked for per source (`prune: true`), not by a drift rule.
        DriftKind::Orphan => (&None, Action::Alert),
    };
    set.clone().unwrap_or(Rule {
        action: default,
        grace_period_secs: 0,
        exceptions: Vec::new(),
    })
}

/// Whether `name` matches any glob in `patterns`.
#[must_use]
pub fn matches_any(name: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| {
        globset::Glob::new(p)
            .map(|g| g.compile_matcher().is_match(name))
            .unwrap_or(false)
    })
}

fn weekday_matches(day: WindowDay, wd: jiff::civil::Weekday) -> bool {
    use jiff::civil::Weekday as W;
    match day {
        WindowDay::Daily => true,
        WindowDay::Monday => wd == W::Monday,
        WindowDay::Tuesday => wd == W::Tuesday,
        WindowDay::Wednesday => wd == W::Wednesday,
        WindowDay::Thursday => wd == W::Thursday,
        WindowDay::Friday => wd == W::Friday,
        WindowDay::Saturday => wd == W::Saturday,
        WindowDay::Sunday => wd == W::Sunday,
    }
}

/// Whether `now` falls inside the window (a window whose end is before its start crosses midnight
/// into the next day). An unknown time zone never matches.
#[must_use]
pub fn window_active(w: &MaintenanceWindow, now: Timestamp) -> bool {
    let Ok(tz) = jiff::tz::TimeZone::get(&w.timezone) else {
        return false;
    };
    let local = now.to_zoned(tz);
    let minute =
        u32::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute())).unwrap_or(0);
    let today = local.weekday();
    if w.start_minute <= w.end_minute {
        weekday_matches(w.day, today) && (w.start_minute..w.end_minute).contains(&minute)
    } else {
        (weekday_matches(w.day, today) && minute >= w.start_minute)
            || (weekday_matches(w.day, today.previous()) && minute < w.end_minute)
    }
}

/// Decides what to do about every drift of one node. Pure: same inputs, same decisions.
#[must_use]
pub fn decide(report: &DriftReport, observed: &Observed, ctx: &PolicyContext<'_>) -> Vec<Decision> {
    let m = ctx.manifest;
    let active: Vec<&MaintenanceWindow> = m
        .maintenance_windows
        .iter()
        .filter(|w| window_active(w, ctx.now))
        .collect();
    report
        .drifts
        .iter()
        .filter_map(|drift| {
            let verdict = verdict_for(drift, observed, ctx, &active)?;
            Some(Decision {
                drift: drift.clone(),
                verdict,
            })
        })
        .collect()
}

fn verdict_for(
    drift: &Drift,
    observed: &Observed,
    ctx: &PolicyContext<'_>,
    active: &[&MaintenanceWindow],
) -> Option<Verdict> {
    let m = ctx.manifest;
    let name = drift.id.name();
    let observed_c = observed.container(name);
    let is_self = observed_c.is_some_and(|c| {
        c.labels.contains_key(labels::CONTROLLER)
            || ctx
                .self_container_id
                .is_some_and(|s| !s.is_empty() && c.id.starts_with(s))
    });
    // Undeclared containers that are protected, or Refinery itself, are known inventory: not drift.
    if drift.kind == DriftKind::Unauthorized
        && (is_self || matches_any(name, &m.inventory.protected))
    {
        return None;
    }
    if is_self {
        return Some(Verdict::Protected {
            why: "refinery's own container".into(),
        });
    }
    if matches_any(name, &m.inventory.protected) {
        return Some(Verdict::Protected {
            why: "matches `inventory.protected`".into(),
        });
    }
    // A stack's network or volume that differs is reported, never recreated: a network has
    // containers on it, a volume holds data. A missing one is created under the `missing` rule.
    // An external one is made outside Refinery: never created, even when it is missing.
    if drift.kind == DriftKind::Missing && crate::drift_resources::is_external(m, &drift.id) {
        return Some(Verdict::Alert {
            why: "an external network or volume is made outside Refinery, never by it".into(),
        });
    }
    if crate::drift_resources::is_network_or_volume(&drift.id) && drift.kind != DriftKind::Missing {
        return Some(Verdict::Alert {
            why: "a stack's networks and volumes are reported, not recreated".into(),
        });
    }
    if drift.kind == DriftKind::Orphan {
        return Some(orphan_verdict(drift, ctx, active));
    }
    // Only ignored fields differ: nothing to do, nothing to report (`plan --show-ignored` still
    // shows them).
    if !drift.changes.is_empty() && drift.changes.iter().all(|c| c.ignored) {
        return Some(Verdict::Ignore {
            why: "only fields listed under `ignore_differences` differ".into(),
        });
    }
    let rule = rule_for(m, drift.kind);
    if drift.kind == DriftKind::Unauthorized
        && (matches_any(name, &rule.exceptions)
            || matches_any(name, &m.inventory.allowed.containers))
    {
        return None;
    }
    let overridden = m
        .containers
        .iter()
        .find(|c| c.node == drift.id.node() && c.name == name)
        .and_then(|s| s.drift_action);
    let action = overridden.unwrap_or(rule.action);
    let said = if overridden.is_some() {
        format!("`drift_action: {action}` on this resource")
    } else {
        format!("`{}` rule says {action}", drift.kind)
    };
    match action {
        Action::Ignore => return Some(Verdict::Ignore { why: said }),
        Action::Alert => return Some(Verdict::Alert { why: said }),
        _ => {}
    }
    if drift.kind == DriftKind::Unauthorized {
        // Removing what nobody declared takes an explicit `terminate`, and a manifest that declares
        // something.
        if action != Action::Terminate {
            return Some(Verdict::Alert {
                why: format!("{said}; only `terminate` removes an undeclared container"),
            });
        }
        if m.is_empty() && !m.allow_empty {
            return Some(Verdict::Alert {
                why: "the manifest declares nothing; nothing is removed unless `allow_empty: true`"
                    .into(),
            });
        }
    }
    // A restart applies content-only config drift: the copy is rewritten in place first.
    if action == Action::Restart
        && (drift.kind == DriftKind::Image
            || (drift.kind == DriftKind::Config && !crate::drift::only_content_changed(drift)))
    {
        // A restart keeps the container's image and configuration: it would run every pass and
        // never converge.
        return Some(Verdict::Alert {
            why: format!(
                "{said}, but a restart cannot apply `{}` drift; use `recreate`",
                drift.kind
            ),
        });
    }
    match ctx.mode {
        Mode::ReadOnly => {
            return Some(Verdict::Alert {
                why: "node is read-only".into(),
            });
        }
        Mode::Audit => {
            return Some(Verdict::Alert {
                why: "audit mode".into(),
            });
        }
        Mode::Enforce => {}
    }
    if let Some(w) = active.iter().find(|w| w.allow_drift) {
        return Some(Verdict::Alert {
            why: format!("maintenance window `{}` allows drift", w.name),
        });
    }
    if action == Action::Rollback
        && let Some(w) = active.iter().find(|w| w.disable_auto_rollback)
    {
        return Some(Verdict::Alert {
            why: format!("maintenance window `{}` disables rollback", w.name),
        });
    }
    if ctx.honor_grace && rule.grace_period_secs > 0 {
        let seen = ctx
            .first_seen
            .get(&drift_key(drift))
            .copied()
            .unwrap_or(ctx.now);
        let grace = jiff::SignedDuration::from_secs(
            i64::try_from(rule.grace_period_secs).unwrap_or(i64::MAX),
        );
        if let Ok(until) = seen.checked_add(grace)
            && until > ctx.now
        {
            return Some(Verdict::Defer { until });
        }
    }
    Some(Verdict::Act { action })
}

/// An object a `kubernetes:` source applied and no longer declares: deleted (`terminate`) only
/// under the source's `prune: true`, in enforce mode, outside a maintenance window allowing
/// drift. A Namespace or a CustomResourceDefinition is never pruned: deleting it deletes every
/// object in it (or of it), Refinery's or not.
fn orphan_verdict(
    drift: &Drift,
    ctx: &PolicyContext<'_>,
    active: &[&MaintenanceWindow],
) -> Verdict {
    let alert = |why: String| Verdict::Alert { why };
    if let crate::resource_id::ResourceId::Kube { kind, .. } = &drift.id
        && matches!(kind.as_str(), "namespace" | "customresourcedefinition")
    {
        return alert(format!(
            "a {kind} is never pruned: deleting it deletes everything in it; delete it by hand"
        ));
    }
    if !ctx.prune {
        return alert(
            "no longer declared; `prune: true` on the `kubernetes:` source deletes it".into(),
        );
    }
    if ctx.manifest.is_empty() && !ctx.manifest.allow_empty {
        return alert(
            "the manifest declares nothing; nothing is removed unless `allow_empty: true`".into(),
        );
    }
    match ctx.mode {
        Mode::ReadOnly => return alert("node is read-only".into()),
        Mode::Audit => return alert("audit mode".into()),
        Mode::Enforce => {}
    }
    if let Some(w) = active.iter().find(|w| w.allow_drift) {
        return alert(format!("maintenance window `{}` allows drift", w.name));
    }
    Verdict::Act {
        action: Action::Terminate,
    }
}
