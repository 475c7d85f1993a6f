//! `drift_rules:`: the action and grace period per drift type, and flap protection.

use serde::Serialize;

use super::fields::{read_action, read_globs};
use super::reader::Reader;
use crate::action::Action;
use crate::yaml::Node;

/// The rule for one drift type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub action: Action,
    pub grace_period_secs: u64,
    pub exceptions: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Flapping {
    pub max_actions: u32,
    pub window_secs: u64,
}

/// `drift_rules:`; an absent rule means the default for its type (see `policy`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DriftRules {
    pub unauthorized_containers: Option<Rule>,
    pub missing_containers: Option<Rule>,
    pub image_drift: Option<Rule>,
    pub config_drift: Option<Rule>,
    pub status_drift: Option<Rule>,
    /// `image_update`: the registry moved a declared tag (`alert` by default).
    pub image_update: Option<Rule>,
    pub flapping: Option<Flapping>,
}

fn read_rule(r: &mut Reader<'_>, node: &Node, path: &str, allowed: &[Action]) -> Option<Rule> {
    let mut m = r.map(node, path)?;
    let action = match m.get("action") {
        Some(n) => read_action(r, n, &format!("{path}.action"), allowed),
        None => {
            r.error(
                node.loc,
                &format!("{path}.action"),
                "a drift rule needs an `action`",
            );
            None
        }
    };
    let grace = m
        .get("grace_period")
        .and_then(|n| r.duration_ms(n, &format!("{path}.grace_period")))
        .unwrap_or(0);
    let exceptions = m
        .get("exceptions")
        .map(|n| read_globs(r, n, &format!("{path}.exceptions")))
        .unwrap_or_default();
    m.finish(r);
    Some(Rule {
        action: action?,
        grace_period_secs: grace.div_ceil(1000),
        exceptions,
    })
}

pub(super) fn read_drift_rules(r: &mut Reader<'_>, node: &Node) -> DriftRules {
    use Action::*;
    let mut d = DriftRules::default();
    let Some(mut m) = r.map(node, "drift_rules") else {
        return d;
    };
    if let Some(n) = m.get("unauthorized_containers") {
        d.unauthorized_containers = read_rule(
            r,
            n,
            "drift_rules.unauthorized_containers",
            &[Terminate, Alert, Ignore],
        );
    }
    if let Some(n) = m.get("missing_containers") {
        d.missing_containers = read_rule(
            r,
            n,
            "drift_rules.missing_containers",
            &[Recreate, Alert, Ignore],
        );
    }
    if let Some(n) = m.get("image_drift") {
        d.image_drift = read_rule(
            r,
            n,
            "drift_rules.image_drift",
            &[Rollback, Recreate, Alert, Ignore],
        );
    }
    if let Some(n) = m.get("config_drift") {
        d.config_drift = read_rule(
            r,
            n,
            "drift_rules.config_drift",
            &[Recreate, Restart, Rollback, Alert, Ignore],
        );
    }
    if let Some(n) = m.get("status_drift") {
        d.status_drift = read_rule(
            r,
            n,
            "drift_rules.status_drift",
            &[Restart, Recreate, Alert, Ignore],
        );
    }
    if let Some(n) = m.get("image_update") {
        d.image_update = read_rule(r, n, "drift_rules.image_update", &[Alert, Recreate, Ignore]);
    }
    if let Some(n) = m.get("flapping")
        && let Some(mut f) = r.map(n, "drift_rules.flapping")
    {
        let max = f
            .get("max_actions")
            .and_then(|v| r.u64(v, "drift_rules.flapping.max_actions"))
            .unwrap_or(5);
        let window = f
            .get("window")
            .and_then(|v| r.duration_ms(v, "drift_rules.flapping.window"))
            .unwrap_or(600_000);
        f.finish(r);
        d.flapping = Some(Flapping {
            max_actions: u32::try_from(max).unwrap_or(u32::MAX),
            window_secs: window.div_ceil(1000),
        });
    }
    m.finish(r);
    d
}
