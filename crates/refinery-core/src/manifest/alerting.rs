//! `alerting:`: the channels drift and actions are sent to.

use serde::Serialize;

use super::channel::{
    Channel, ChannelKind, DEFAULT_BURST, DEFAULT_GROUP_WAIT_MS, Destination, EmailDestination,
    Level, RateLimit,
};
use super::nodes::NodeNames;
use super::reader::{MapView, Reader};
use crate::drift_report::DRIFT_TYPES;
use crate::secret::Secret;
use crate::suggestion::suggest;
use crate::yaml::Node;

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
            let kind = read_kind(r, &mut c, item, &path);
            let destination = kind.and_then(|k| read_destination(r, &mut c, item, &path, k));
            if kind.is_none() {
                // Which keys belong is unknown: none of them is reported as unknown.
                for key in ALL_KEYS {
                    let _ = c.get(key);
                }
            }
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
            let timing = read_timing(r, &mut c, &path);
            c.finish(r);
            if let Some(destination) = destination {
                a.channels.push(Channel {
                    level: level.unwrap_or(Level::Warning),
                    nodes,
                    drift_types,
                    remind_every_ms,
                    rate_limit,
                    min_duration_ms: timing.min_duration_ms,
                    burst: timing.burst,
                    group_wait_ms: timing.group_wait_ms,
                    ..Channel::new(destination)
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

/// Every per-type key, so a channel without a valid `type` reports none of them as unknown.
const ALL_KEYS: [&str; 12] = [
    "webhook_url",
    "url",
    "token",
    "bot_token",
    "chat_id",
    "api_url",
    "urls",
    "smtp",
    "from",
    "to",
    "username",
    "password",
];

fn read_kind(
    r: &mut Reader<'_>,
    c: &mut MapView<'_>,
    item: &Node,
    path: &str,
) -> Option<ChannelKind> {
    let field = format!("{path}.type");
    let Some(n) = c.get("type") else {
        r.error_hint(
            item.loc,
            &field,
            "a channel needs a `type`",
            format!("types: {}", kind_list()),
        );
        return None;
    };
    let word = r.string(n, &field)?;
    if let Some(k) = ChannelKind::parse(&word) {
        return Some(k);
    }
    let hint = match suggest(&word, ChannelKind::ALL.iter().map(|k| k.as_str())) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("use one of {}", kind_list()),
    };
    r.error_hint(
        n.loc,
        &field,
        format!("`{word}` is not a channel type"),
        hint,
    );
    None
}

fn kind_list() -> String {
    ChannelKind::ALL
        .iter()
        .map(|k| format!("`{}`", k.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A key the channel's type requires, as a non-empty string (`${VAR}` interpolated). Missing or
/// empty: an error at the channel naming the key, with what to write.
fn required(
    r: &mut Reader<'_>,
    c: &mut MapView<'_>,
    item: &Node,
    path: &str,
    kind: ChannelKind,
    key: &'static str,
    hint: &str,
) -> Option<String> {
    let field = format!("{path}.{key}");
    let Some(n) = c.get(key) else {
        r.error_hint(
            item.loc,
            &field,
            format!("a channel of type `{}` needs `{key}`", kind.as_str()),
            hint,
        );
        return None;
    };
    non_empty(r, n, &field, key, hint)
}

/// The value, which must not be written empty. One that is empty because a `${VAR}` it names is
/// unset only warns (the reader says so): `validate` runs where the secrets are not.
fn non_empty(r: &mut Reader<'_>, n: &Node, field: &str, key: &str, hint: &str) -> Option<String> {
    let v = r.string(n, field)?;
    let written_empty = match &n.value {
        crate::yaml::Value::Scalar { text, .. } => text.trim().is_empty(),
        _ => false,
    };
    if written_empty {
        r.error_hint(n.loc, field, format!("`{key}` is empty"), hint);
        return None;
    }
    Some(v)
}

/// An optional key; present but empty is an error (an unset `${VAR}`, most likely).
fn optional(
    r: &mut Reader<'_>,
    c: &mut MapView<'_>,
    path: &str,
    key: &'static str,
    hint: &str,
) -> Option<String> {
    let n = c.get(key)?;
    non_empty(r, n, &format!("{path}.{key}"), key, hint)
}

/// `value` must be an `http://` or `https://` URL.
fn http_url(
    r: &mut Reader<'_>,
    loc: crate::yaml::Loc,
    field: &str,
    value: String,
) -> Option<String> {
    let lower = value.to_ascii_lowercase();
    // Empty: an unset `${VAR}`, already warned about.
    if value.is_empty() || lower.starts_with("http://") || lower.starts_with("https://") {
        return Some(value);
    }
    r.error_hint(
        loc,
        field,
        "expected an `http://` or `https://` URL",
        "write the whole URL, scheme included",
    );
    None
}

fn secret(v: String) -> Secret {
    Secret::new(v, true)
}

/// `webhook_url` or its other name `url`, required, an HTTP URL.
fn webhook_url(
    r: &mut Reader<'_>,
    c: &mut MapView<'_>,
    item: &Node,
    path: &str,
    kind: ChannelKind,
    hint: &str,
) -> Option<Secret> {
    let (key, n) = match (c.get("webhook_url"), c.get("url")) {
        (Some(_), Some(_)) => {
            let loc = c.key_loc("url").unwrap_or(item.loc);
            r.error_hint(
                loc,
                &format!("{path}.url"),
                "set either `webhook_url` or `url`, not both",
                "`url` is another name for `webhook_url`",
            );
            return None;
        }
        (Some(n), None) => ("webhook_url", n),
        (None, Some(n)) => ("url", n),
        (None, None) => {
            r.error_hint(
                item.loc,
                &format!("{path}.webhook_url"),
                format!("a channel of type `{}` needs `webhook_url`", kind.as_str()),
                hint,
            );
            return None;
        }
    };
    let field = format!("{path}.{key}");
    let v = non_empty(r, n, &field, key, hint)?;
    http_url(r, n.loc, &field, v).map(secret)
}

/// `url`, required, an HTTP URL.
fn url(
    r: &mut Reader<'_>,
    c: &mut MapView<'_>,
    item: &Node,
    path: &str,
    kind: ChannelKind,
    hint: &str,
) -> Option<Secret> {
    let v = required(r, c, item, path, kind, "url", hint)?;
    let loc = c.get("url").map_or(item.loc, |n| n.loc);
    http_url(r, loc, &format!("{path}.url"), v).map(secret)
}

/// The keys of the channel's type: where it delivers and with which credentials.
fn read_destination(
    r: &mut Reader<'_>,
    c: &mut MapView<'_>,
    item: &Node,
    path: &str,
    kind: ChannelKind,
) -> Option<Destination> {
    match kind {
        ChannelKind::Discord => {
            let url = webhook_url(
                r,
                c,
                item,
                path,
                kind,
                "a channel's Integrations → Webhooks → Copy Webhook URL",
            )?;
            Some(Destination::Discord { url })
        }
        ChannelKind::Slack => {
            let url = webhook_url(
                r,
                c,
                item,
                path,
                kind,
                "an incoming webhook's URL, `https://hooks.slack.com/services/…`",
            )?;
            Some(Destination::Slack { url })
        }
        ChannelKind::Mattermost => {
            let url = webhook_url(
                r,
                c,
                item,
                path,
                kind,
                "an incoming webhook's URL, `https://chat.example/hooks/…`",
            )?;
            Some(Destination::Mattermost { url })
        }
        ChannelKind::Webhook => {
            let url = webhook_url(r, c, item, path, kind, "the URL Refinery posts its JSON to")?;
            Some(Destination::Webhook { url })
        }
        ChannelKind::Teams => {
            let url = webhook_url(
                r,
                c,
                item,
                path,
                kind,
                "a Workflows URL (\"When a Teams webhook request is received\") or an incoming webhook's URL",
            )?;
            Some(Destination::Teams { url })
        }
        ChannelKind::Ntfy => {
            let url = url(
                r,
                c,
                item,
                path,
                kind,
                "the topic's URL, `https://ntfy.sh/<topic>`",
            );
            let token = optional(r, c, path, "token", "an access token, `tk_…`").map(secret);
            Some(Destination::Ntfy { url: url?, token })
        }
        ChannelKind::Gotify => {
            let url = url(
                r,
                c,
                item,
                path,
                kind,
                "the Gotify server's URL, `https://gotify.example`",
            );
            let token = required(
                r,
                c,
                item,
                path,
                kind,
                "token",
                "an application's token (Apps → Create Application): `token: ${GOTIFY_TOKEN}`",
            );
            Some(Destination::Gotify {
                url: url?,
                token: secret(token?),
            })
        }
        ChannelKind::Telegram => {
            let bot_token = required(
                r,
                c,
                item,
                path,
                kind,
                "bot_token",
                "the token @BotFather gave the bot: `bot_token: ${TELEGRAM_BOT_TOKEN}`",
            );
            let chat_id = required(
                r,
                c,
                item,
                path,
                kind,
                "chat_id",
                "the chat's id (`-1001234567890`) or a channel's `@name`",
            );
            let api_url = c.get("api_url").and_then(|n| {
                let field = format!("{path}.api_url");
                let v = non_empty(
                    r,
                    n,
                    &field,
                    "api_url",
                    "a self-hosted Bot API server's URL",
                )?;
                http_url(r, n.loc, &field, v)
            });
            Some(Destination::Telegram {
                bot_token: secret(bot_token?),
                chat_id: chat_id?,
                api_url,
            })
        }
        ChannelKind::Apprise => {
            let url = url(
                r,
                c,
                item,
                path,
                kind,
                "an Apprise API server's `…/notify/<KEY>`, or `…/notify` with `urls`",
            );
            let urls = c
                .get("urls")
                .and_then(|n| r.strings_at(n, &format!("{path}.urls")))
                .unwrap_or_default()
                .into_iter()
                .map(|u| secret(u.value))
                .collect();
            Some(Destination::Apprise { url: url?, urls })
        }
        ChannelKind::Email => read_email(r, c, item, path),
    }
}

fn read_email(
    r: &mut Reader<'_>,
    c: &mut MapView<'_>,
    item: &Node,
    path: &str,
) -> Option<Destination> {
    let kind = ChannelKind::Email;
    let smtp = required(
        r,
        c,
        item,
        path,
        kind,
        "smtp",
        "`smtp://mail.example:587` (STARTTLS when offered) or `smtps://mail.example:465`",
    )
    .and_then(|v| {
        let lower = v.to_ascii_lowercase();
        if v.is_empty() || lower.starts_with("smtp://") || lower.starts_with("smtps://") {
            return Some(v);
        }
        let loc = c.get("smtp").map_or(item.loc, |n| n.loc);
        r.error_hint(
            loc,
            &format!("{path}.smtp"),
            "expected an `smtp://` or `smtps://` URL",
            "`smtp://mail.example:587` (STARTTLS when offered) or `smtps://mail.example:465`",
        );
        None
    });
    let from = required(
        r,
        c,
        item,
        path,
        kind,
        "from",
        "the sender: `refinery@example.com` or `Refinery <refinery@example.com>`",
    );
    let to = match c.get("to") {
        Some(n) => {
            let field = format!("{path}.to");
            let to = r.strings(n, &field);
            if to.as_ref().is_some_and(Vec::is_empty) {
                r.error_hint(
                    n.loc,
                    &field,
                    "`to` names nobody",
                    "list at least one address",
                );
                None
            } else {
                to
            }
        }
        None => {
            r.error_hint(
                item.loc,
                &format!("{path}.to"),
                "a channel of type `email` needs `to`",
                "the recipients: `to: [ops@example.com]`",
            );
            None
        }
    };
    let username = optional(r, c, path, "username", "the SMTP login");
    let password = optional(
        r,
        c,
        path,
        "password",
        "the SMTP password: `password: ${SMTP_PASSWORD}`",
    );
    if password.is_some() && username.is_none() {
        let loc = c.key_loc("password").unwrap_or(item.loc);
        r.error_hint(
            loc,
            &format!("{path}.password"),
            "a `password` without a `username`",
            "add `username`, the SMTP login",
        );
        return None;
    }
    Some(Destination::Email(EmailDestination {
        smtp: secret(smtp?),
        from: from?,
        to: to?,
        username,
        password: password.map(secret),
    }))
}

/// `min_duration`, `burst`, `group_wait`.
struct Timing {
    min_duration_ms: u64,
    burst: u32,
    group_wait_ms: u64,
}

fn read_timing(r: &mut Reader<'_>, c: &mut MapView<'_>, path: &str) -> Timing {
    let min_duration_ms = c
        .get("min_duration")
        .and_then(|n| r.duration_ms(n, &format!("{path}.min_duration")))
        .unwrap_or(0);
    let group_wait_ms = c
        .get("group_wait")
        .and_then(|n| r.duration_ms(n, &format!("{path}.group_wait")))
        .unwrap_or(DEFAULT_GROUP_WAIT_MS);
    let burst = c
        .get("burst")
        .and_then(|n| {
            let field = format!("{path}.burst");
            match r.u64(n, &field)? {
                0 => {
                    r.error_hint(
                        n.loc,
                        &field,
                        "a burst of 0 would group every drift",
                        "use 1 or more (more drifts than this within `group_wait` are sent as one message)",
                    );
                    None
                }
                v => Some(u32::try_from(v).unwrap_or(u32::MAX)),
            }
        })
        .unwrap_or(DEFAULT_BURST);
    Timing {
        min_duration_ms,
        burst,
        group_wait_ms,
    }
}
