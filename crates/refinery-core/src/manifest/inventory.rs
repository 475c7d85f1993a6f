//! `inventory:`: what may exist beside the declared containers, cleanup ages and the audit's
//! schedule.

use serde::Serialize;

use super::fields::read_globs;
use super::reader::Reader;
use crate::schedule::Schedule;
use crate::yaml::Node;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Allowed {
    pub containers: Vec<String>,
    pub images: Vec<String>,
    pub volumes: Vec<String>,
    pub networks: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cleanup {
    pub max_unused_image_age_ms: Option<u64>,
    pub max_unused_volume_age_ms: Option<u64>,
    pub protected_tags: Vec<String>,
}

/// What may exist beside the declared containers (seed 004).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Inventory {
    pub allowed: Allowed,
    /// Never touched, whatever else says.
    pub protected: Vec<String>,
    pub safe_to_delete: Vec<String>,
    pub cleanup: Cleanup,
    pub schedule: Option<Schedule>,
    /// Where `refinery audit` appends its JSONL records, relative to the work tree (default
    /// `ledger/inventory_audit.jsonl`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_log: Option<String>,
}

pub(super) fn read_inventory(r: &mut Reader<'_>, node: &Node) -> Inventory {
    let mut inv = Inventory::default();
    let Some(mut m) = r.map(node, "inventory") else {
        return inv;
    };
    if let Some(n) = m.get("allowed")
        && let Some(mut a) = r.map(n, "inventory.allowed")
    {
        for (key, slot) in [
            ("containers", &mut inv.allowed.containers),
            ("images", &mut inv.allowed.images),
            ("volumes", &mut inv.allowed.volumes),
            ("networks", &mut inv.allowed.networks),
        ] {
            if let Some(v) = a.get(key) {
                *slot = read_globs(r, v, &format!("inventory.allowed.{key}"));
            }
        }
        a.finish(r);
    }
    if let Some(n) = m.get("protected") {
        inv.protected = read_globs(r, n, "inventory.protected");
    }
    if let Some(n) = m.get("safe_to_delete") {
        inv.safe_to_delete = read_globs(r, n, "inventory.safe_to_delete");
    }
    if let Some(n) = m.get("cleanup")
        && let Some(mut c) = r.map(n, "inventory.cleanup")
    {
        if let Some(v) = c.get("max_unused_image_age") {
            inv.cleanup.max_unused_image_age_ms =
                r.duration_ms(v, "inventory.cleanup.max_unused_image_age");
        }
        if let Some(v) = c.get("max_unused_volume_age") {
            inv.cleanup.max_unused_volume_age_ms =
                r.duration_ms(v, "inventory.cleanup.max_unused_volume_age");
        }
        if let Some(v) = c.get("protected_tags") {
            inv.cleanup.protected_tags = read_globs(r, v, "inventory.cleanup.protected_tags");
        }
        c.finish(r);
    }
    if let Some(n) = m.get("schedule")
        && let Some(mut s) = r.map(n, "inventory.schedule")
    {
        let cron = match s.get("cron") {
            Some(v) => r.string(v, "inventory.schedule.cron").and_then(|c| {
                r.check(v.loc, "inventory.schedule.cron", super::grammar::cron(&c))
                    .map(|()| c)
            }),
            None => {
                r.error(
                    n.loc,
                    "inventory.schedule.cron",
                    "a schedule needs a `cron` expression",
                );
                None
            }
        };
        let timezone = match s.get("timezone") {
            Some(v) => r.string(v, "inventory.schedule.timezone").and_then(|tz| {
                r.check(
                    v.loc,
                    "inventory.schedule.timezone",
                    super::grammar::timezone(&tz),
                )
                .map(|()| tz)
            }),
            None => Some("UTC".into()),
        };
        s.finish(r);
        inv.schedule = cron
            .zip(timezone)
            .map(|(cron, timezone)| Schedule { cron, timezone });
        if let Some(sched) = &inv.schedule
            && let Err(e) = crate::schedule::check_schedule(sched)
        {
            let field = match e {
                crate::schedule::ScheduleError::BadTimezone { .. } => "inventory.schedule.timezone",
                _ => "inventory.schedule.cron",
            };
            let hint = e.hints().join("; ");
            r.error_hint(n.loc, field, e.to_string(), hint);
        }
    }
    if let Some(v) = m.get("audit_log") {
        inv.audit_log = r.string(v, "inventory.audit_log");
    }
    m.finish(r);
    inv
}
