//! `maintenance_windows:`: when drift may be left alone and rollbacks are off.

use serde::Serialize;

use super::reader::Reader;
use crate::suggestion::suggest;
use crate::yaml::Node;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowDay {
    Daily,
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaintenanceWindow {
    pub name: String,
    pub day: WindowDay,
    /// Minutes after midnight.
    pub start_minute: u32,
    pub end_minute: u32,
    pub timezone: String,
    pub disable_auto_rollback: bool,
    pub allow_drift: bool,
}

fn read_time(r: &mut Reader<'_>, node: &Node, path: &str) -> Option<u32> {
    let s = r.string(node, path)?;
    let parsed = s.split_once(':').and_then(|(h, m)| {
        let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
        // `then`, not `then_some`: `h * 60` of an hour out of range overflows.
        ((h < 24 && m < 60) || (h == 24 && m == 0)).then(|| h * 60 + m)
    });
    if parsed.is_none() {
        r.error_hint(
            node.loc,
            path,
            format!("`{s}` is not a time of day"),
            "write `HH:MM` in 24-hour form, like `02:00`",
        );
    }
    parsed
}

pub(super) fn read_windows(r: &mut Reader<'_>, node: &Node) -> Vec<MaintenanceWindow> {
    let mut out = Vec::new();
    let Some(items) = r.seq(node, "maintenance_windows") else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let path = format!("maintenance_windows[{i}]");
        let Some(mut m) = r.map(item, &path) else {
            continue;
        };
        let name = m
            .get("name")
            .and_then(|n| r.string(n, &format!("{path}.name")))
            .unwrap_or_else(|| format!("window {}", i + 1));
        let day = match m.get("day") {
            Some(n) => {
                let p = format!("{path}.day");
                r.string(n, &p).and_then(|s| {
                    let d = match s.to_ascii_lowercase().as_str() {
                        "daily" | "*" | "every day" => WindowDay::Daily,
                        "monday" | "mon" => WindowDay::Monday,
                        "tuesday" | "tue" => WindowDay::Tuesday,
                        "wednesday" | "wed" => WindowDay::Wednesday,
                        "thursday" | "thu" => WindowDay::Thursday,
                        "friday" | "fri" => WindowDay::Friday,
                        "saturday" | "sat" => WindowDay::Saturday,
                        "sunday" | "sun" => WindowDay::Sunday,
                        _ => {
                            let days = [
                                "daily",
                                "monday",
                                "tuesday",
                                "wednesday",
                                "thursday",
                                "friday",
                                "saturday",
                                "sunday",
                            ];
                            let hint = match suggest(&s, days) {
                                Some(d) => format!("did you mean `{d}`?"),
                                None => "write a weekday like `sunday`, or `daily`".to_owned(),
                            };
                            r.error_hint(n.loc, &p, format!("`{s}` is not a day"), hint);
                            return None;
                        }
                    };
                    Some(d)
                })
            }
            None => Some(WindowDay::Daily),
        };
        let start = match m.get("start_time") {
            Some(n) => read_time(r, n, &format!("{path}.start_time")),
            None => {
                r.error(
                    item.loc,
                    &format!("{path}.start_time"),
                    "a maintenance window needs a `start_time`",
                );
                None
            }
        };
        let end = match m.get("end_time") {
            Some(n) => read_time(r, n, &format!("{path}.end_time")),
            None => {
                r.error(
                    item.loc,
                    &format!("{path}.end_time"),
                    "a maintenance window needs an `end_time`",
                );
                None
            }
        };
        // Checked here: a window in an unknown zone would never match, so remediation would run
        // during the hours it was meant to protect.
        let timezone = match m.get("timezone") {
            Some(n) => {
                let p = format!("{path}.timezone");
                r.string(n, &p).and_then(|tz| {
                    r.check(n.loc, &p, super::grammar::timezone(&tz))
                        .map(|()| tz)
                })
            }
            None => Some("UTC".into()),
        };
        let disable_auto_rollback = m
            .get("disable_auto_rollback")
            .and_then(|n| r.bool(n, &format!("{path}.disable_auto_rollback")))
            .unwrap_or(false);
        let allow_drift = m
            .get("allow_drift")
            .and_then(|n| r.bool(n, &format!("{path}.allow_drift")))
            .unwrap_or(false);
        m.finish(r);
        if let (Some(day), Some(start_minute), Some(end_minute), Some(timezone)) =
            (day, start, end, timezone)
        {
            out.push(MaintenanceWindow {
                name,
                day,
                start_minute,
                end_minute,
                timezone,
                disable_auto_rollback,
                allow_drift,
            });
        }
    }
    out
}
