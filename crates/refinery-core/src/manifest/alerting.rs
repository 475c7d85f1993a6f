//! `alerting:`: the channels drift and actions are sent to.

use serde::Serialize;

use super::nodes::NodeNames;
use super::reader::Reader;
use crate::drift_report::DRIFT_TYPES;
use crate::secret::Secret;
use crate::suggestion::suggest;
use crate::yaml::Node;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warning,
    Critical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Discord,
    Slack,
    Mattermost,
    Webhook,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Channel {
    pub kind: ChannelKind,
    pub url: Secret,
    pub level: Level,
    pub nodes: Vec<String>,
    pub drift_types: Vec<String>,
    /// `remind_every`: while a drift lasts, send it again this often (milliseconds).
    pub remind_every_ms: Option<u64>,
    /// `rate_limit`: at most this many messages per window; the rest are counted and summed up
    /// in one message when the window ends.
    pub rate_limit: RateLimit,
}

/// At most `max` messages per `per_ms` on one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    pub max: u32,
    pub per_ms: u64,
}

impl Default for RateLimit {
    /// 20 messages a minute.
    fn default() -> Self {
        RateLimit {
            max: 20,
            per_ms: 60_000,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Alerting {
    pub channels: Vec<Channel>,
}

pub(super) fn read_alerting(r: &mut Reader<'_>, node: &Node, node_names: &NodeNames) -> Alerting {
    let mut a = Alerting::default();
    let Some(mut m) = r.map(node, "alerting") else {
        return a;
    };
    if let Some(n) = m.get("channels")
        && let Some(items) = r.seq(n, "alerting.channels")
    {
        for (i, item) in items.iter().enumerate() {
            let path = format!("alerting.channels[{i}]");
            let Some(mut c) = r.map(item, &path) else {
                continue;
            };
            let kind = match c.get("type") {
                Some(n) => r
                    .string(n, &format!("{path}.type"))
                    .and_then(|s| match s.as_str() {
                        "discord" => Some(ChannelKind::Discord),
                        "slack" => Some(ChannelKind::Slack),
                        "mattermost" => Some(ChannelKind::Mattermost),
                        "webhook" => Some(ChannelKind::Webhook),
                        _ => {
                            r.error_hint(
                                n.loc,
                                &format!("{path}.type"),
                                format!("`{s}` is not a channel type"),
                                "use `discord`, `slack`, `mattermost` or `webhook`",
                            );
                            None
                        }
                    }),
                None => {
                    r.error(
                        item.loc,
                        &format!("{path}.type"),
                        "a channel needs a `type`",
                    );
                    None
                }
            };
            let url = match (c.get("webhook_url"), c.get("url")) {
                (Some(_), Some(_)) => {
                    let loc = c.key_loc("url").unwrap_or(item.loc);
                    r.error_hint(
                        loc,
                        &format!("{path}.url"),
                        "set either `webhook_url` or `url`, not both",
                        "`url` is another name for `webhook_url`",
                    );
                    None
                }
                (Some(n), None) => r.string(n, &format!("{path}.webhook_url")),
                (None, Some(n)) => r.string(n, &format!("{path}.url")),
                (None, None) => {
                    r.error(
                        item.loc,
                        &format!("{path}.webhook_url"),
                        "a channel needs a `webhook_url`",
                    );
                    None
                }
            };
            let level = c.get("level").and_then(|n| {
                r.string(n, &format!("{path}.level"))
                    .and_then(|s| match s.as_str() {
                        "info" => Some(Level::Info),
                        "warning" => Some(Level::Warning),
                        "critical" => Some(Level::Critical),
                        _ => {
                            r.error_hint(
                                n.loc,
                                &format!("{path}.level"),
                                format!("`{s}` is not a level"),
                                "use `info`, `warning` or `critical`",
                            );
                            None
                        }
                    })
            });
            let nodes: Vec<String> = c
                .get("nodes")
                .and_then(|n| r.strings_at(n, &format!("{path}.nodes")))
                .unwrap_or_default()
                .into_iter()
                .filter_map(|n| {
                    if node_names.names.contains(&n.value) {
                        return Some(n.value);
                    }
                    let msg = format!("node `{}` is not declared under `nodes`", n.value);
                    match suggest(&n.value, node_names.names.iter().map(String::as_str)) {
                        Some(s) => {
                            r.error_hint(n.loc, &n.field, msg, format!("did you mean `{s}`?"))
                        }
                        None => r.error_hint(
                            n.loc,
                            &n.field,
                            msg,
                            format!("declared nodes: {}", node_names.names.join(", ")),
                        ),
                    }
                    None
                })
                .collect();
            let drift_types = c
                .get("drift_types")
                .and_then(|n| r.strings_at(n, &format!("{path}.drift_types")))
                .unwrap_or_default()
                .into_iter()
                .filter_map(|t| {
                    if DRIFT_TYPES.contains(&t.value.as_str()) {
                        return Some(t.value);
                    }
                    let msg = format!("`{}` is not a drift type", t.value);
                    match suggest(&t.value, DRIFT_TYPES.iter().copied()) {
                        Some(s) => {
                            r.error_hint(t.loc, &t.field, msg, format!("did you mean `{s}`?"))
                        }
                        None => r.error_hint(
                            t.loc,
                            &t.field,
                            msg,
                            format!("drift types: {}", DRIFT_TYPES.join(", ")),
                        ),
                    }
                    None
                })
                .collect();
            let remind_every_ms = c.get("remind_every").and_then(|n| {
                let field = format!("{path}.remind_every");
                let ms = r.duration_ms(n, &field)?;
                if ms == 0 {
                    r.error_hint(
                        n.loc,
                        &field,
                        "a reminder interval of 0 would remind on every pass",
                        "use a duration such as `4h`, or leave `remind_every` out",
                    );
                    return None;
                }
                Some(ms)
            });
            let rate_limit = c
                .get("rate_limit")
                .map(|n| read_rate_limit(r, n, &format!("{path}.rate_limit")))
                .unwrap_or_default();
            c.finish(r);
            if let (Some(kind), Some(url)) = (kind, url) {
                a.channels.push(Channel {
                    kind,
                    url: Secret::new(url, true),
                    level: level.unwrap_or(Level::Warning),
                    nodes,
                    drift_types,
                    remind_every_ms,
                    rate_limit,
                });
            }
        }
    }
    m.finish(r);
    a
}

/// `rate_limit: {max: 20, per: 1m}`.
fn read_rate_limit(r: &mut Reader<'_>, node: &Node, path: &str) -> RateLimit {
    let mut limit = RateLimit::default();
    let Some(mut m) = r.map(node, path) else {
        return limit;
    };
    if let Some(n) = m.get("max") {
        match r.u64(n, &format!("{path}.max")) {
            Some(0) => r.error_hint(
                n.loc,
                &format!("{path}.max"),
                "a rate limit of 0 would send nothing",
                "remove the channel to silence it",
            ),
            Some(v) => limit.max = u32::try_from(v).unwrap_or(u32::MAX),
            None => {}
        }
    }
    if let Some(n) = m.get("per") {
        match r.duration_ms(n, &format!("{path}.per")) {
            Some(0) => r.error_hint(
                n.loc,
                &format!("{path}.per"),
                "a rate limit window of 0 limits nothing",
                "use a duration such as `1m` or `1h`",
            ),
            Some(v) => limit.per_ms = v,
            None => {}
        }
    }
    m.finish(r);
    limit
}
