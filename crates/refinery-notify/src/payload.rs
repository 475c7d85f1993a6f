//! Each channel's body for a [`Notice`], as each service documents it: Discord embeds, Slack
//! blocks, Mattermost attachments, the generic webhook's flat JSON (schema version 1), ntfy's
//! headers, Gotify's and Apprise's JSON, Telegram's `sendMessage`, Teams' Adaptive Card (or
//! legacy MessageCard) and the e-mail's subject and plain text.

use refinery_core::manifest::Level;
use serde_json::{Value, json};

use super::notice::{Notice, NoticeKind, level_str};

/// Schema version of the generic webhook body.
pub const WEBHOOK_VERSION: u32 = 1;

/// Whether the message says something ended (green, `success`).
fn is_resolved(n: &Notice) -> bool {
    matches!(
        n.kind,
        NoticeKind::DriftResolved | NoticeKind::BurstResolved
    )
}

/// RGB color: red for critical, amber for warnings, green for resolved, blue otherwise.
fn color(n: &Notice) -> u32 {
    match (n.kind, n.level) {
        (NoticeKind::DriftResolved | NoticeKind::BurstResolved, _) => 0x2e_a0_43,
        (_, Level::Critical) => 0xd0_30_30,
        (_, Level::Warning) => 0xe0_a0_00,
        (_, Level::Info) => 0x30_70_d0,
    }
}

fn hex(c: u32) -> String {
    format!("#{c:06x}")
}

/// The one-line headline: `[drift] docker/lyra/container/web: status drift`.
#[must_use]
pub fn headline(n: &Notice) -> String {
    let what = match n.kind {
        NoticeKind::DriftStarted | NoticeKind::BurstStarted => "drift",
        NoticeKind::DriftResolved | NoticeKind::BurstResolved => "resolved",
        NoticeKind::Reminder => "still drifting",
        NoticeKind::Alert => level_str(n.level),
        NoticeKind::Suppressed => "rate limited",
        NoticeKind::Test => "test",
    };
    format!("[{what}] {}", n.title)
}

/// `(name, value)` pairs shown beside the text.
fn fields(n: &Notice) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(v) = &n.node {
        out.push(("node", v.clone()));
    }
    if let Some(v) = &n.resource {
        out.push(("resource", v.clone()));
    }
    if let Some(v) = &n.drift {
        out.push(("drift", v.clone()));
    }
    if let Some(v) = &n.revision {
        out.push(("revision", v.chars().take(12).collect()));
    }
    out.push(("level", level_str(n.level).to_owned()));
    out
}

/// Cuts `s` to at most `max` characters (Discord and Slack reject longer fields).
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The text and its fields as plain text, for the services that show text only (ntfy, Gotify,
/// Telegram, Apprise, e-mail).
#[must_use]
pub fn plain(n: &Notice) -> String {
    let mut out = n.text.clone();
    let fields = fields(n)
        .into_iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("\n");
    if !out.is_empty() {
        out.push_str("\n\n");
    }
    out.push_str(&fields);
    out
}

pub fn discord(n: &Notice) -> Value {
    let fields: Vec<Value> = fields(n)
        .into_iter()
        .map(|(k, v)| json!({"name": k, "value": cut(&v, 1024), "inline": true}))
        .collect();
    json!({
        "username": "Refinery",
        "content": cut(&headline(n), 2000),
        "embeds": [{
            "title": cut(&n.title, 256),
            "description": cut(&n.text, 4096),
            "color": color(n),
            "timestamp": n.time.to_string(),
            "fields": fields,
            "footer": {"text": format!("refinery · {}", n.kind.as_str())},
        }],
    })
}

pub fn slack(n: &Notice) -> Value {
    let context = fields(n)
        .into_iter()
        .map(|(k, v)| format!("*{k}:* `{v}`"))
        .collect::<Vec<_>>()
        .join("  ");
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": cut(&headline(n), 150)},
    })];
    if !n.text.is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": cut(&n.text, 3000)},
        }));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": cut(&context, 3000)}],
    }));
    json!({
        "text": cut(&headline(n), 3000),
        "blocks": blocks,
    })
}

pub fn mattermost(n: &Notice) -> Value {
    let fields: Vec<Value> = fields(n)
        .into_iter()
        .map(|(k, v)| json!({"short": true, "title": k, "value": v}))
        .collect();
    json!({
        "username": "Refinery",
        "text": headline(n),
        "attachments": [{
            "fallback": headline(n),
            "color": hex(color(n)),
            "title": n.title,
            "text": n.text,
            "fields": fields,
        }],
    })
}

pub fn webhook(n: &Notice) -> Value {
    let mut body = json!({
        "version": WEBHOOK_VERSION,
        "source": "refinery",
        "event": n.kind.as_str(),
        "level": level_str(n.level),
        "title": n.title,
        "text": n.text,
        "node": n.node,
        "resource": n.resource,
        "drift": n.drift,
        "revision": n.revision,
        "time": n.time.to_string(),
    });
    if !n.drifts.is_empty()
        && let Some(map) = body.as_object_mut()
    {
        map.insert("drifts".into(), json!(n.drifts));
    }
    body
}

/// ntfy's `Priority` header: 5 (urgent) for critical, 4 (high) for warnings, 3 (default)
/// otherwise.
#[must_use]
pub fn ntfy_priority(n: &Notice) -> u8 {
    match n.level {
        _ if is_resolved(n) => 3,
        Level::Critical => 5,
        Level::Warning => 4,
        Level::Info => 3,
    }
}

/// ntfy's `Tags` header: an emoji short code first (ntfy shows it before the title), then
/// `refinery` and the drift type.
#[must_use]
pub fn ntfy_tags(n: &Notice) -> String {
    let emoji = match n.level {
        _ if is_resolved(n) => "white_check_mark",
        Level::Critical => "rotating_light",
        Level::Warning => "warning",
        Level::Info => "information_source",
    };
    let mut tags = vec![emoji, "refinery"];
    tags.extend(n.drift.as_deref());
    tags.join(",")
}

/// Gotify's `POST /message` body. Priorities: 8 (pops up) for critical, 5 for warnings, 2
/// otherwise.
#[must_use]
pub fn gotify(n: &Notice) -> Value {
    let priority = match n.level {
        _ if is_resolved(n) => 2,
        Level::Critical => 8,
        Level::Warning => 5,
        Level::Info => 2,
    };
    json!({
        "title": headline(n),
        "message": plain(n),
        "priority": priority,
        "extras": {"client::display": {"contentType": "text/plain"}},
    })
}

/// Telegram's `sendMessage`: plain text (no `parse_mode`, so nothing needs escaping), at most
/// 4096 characters. A numeric `chat_id` is sent as a number, `@channel` as a string.
#[must_use]
pub fn telegram(chat_id: &str, n: &Notice) -> Value {
    let chat: Value = chat_id
        .parse::<i64>()
        .map_or_else(|_| json!(chat_id), |id| json!(id));
    json!({
        "chat_id": chat,
        "text": cut(&format!("{}\n\n{}", headline(n), plain(n)), 4096),
        "link_preview_options": {"is_disabled": true},
    })
}

/// Apprise API's body: `title`, `body`, `type` (`info`, `success`, `warning`, `failure`),
/// `format`, and for the stateless `/notify` the Apprise `urls`.
#[must_use]
pub fn apprise(n: &Notice, urls: &[&str]) -> Value {
    let kind = match n.level {
        _ if is_resolved(n) => "success",
        Level::Critical => "failure",
        Level::Warning => "warning",
        Level::Info => "info",
    };
    let mut body = json!({
        "title": headline(n),
        "body": plain(n),
        "type": kind,
        "format": "text",
    });
    if !urls.is_empty()
        && let Some(map) = body.as_object_mut()
    {
        map.insert("urls".into(), json!(urls.join(", ")));
    }
    body
}

/// Teams through a Workflows URL (or an incoming webhook): a message with one Adaptive Card.
#[must_use]
pub fn teams_adaptive(n: &Notice) -> Value {
    let color = match n.level {
        _ if is_resolved(n) => "Good",
        Level::Critical => "Attention",
        Level::Warning => "Warning",
        Level::Info => "Accent",
    };
    let facts: Vec<Value> = fields(n)
        .into_iter()
        .map(|(k, v)| json!({"title": k, "value": v}))
        .collect();
    let mut body = vec![json!({
        "type": "TextBlock",
        "text": headline(n),
        "weight": "Bolder",
        "size": "Medium",
        "color": color,
        "wrap": true,
    })];
    if !n.text.is_empty() {
        body.push(json!({"type": "TextBlock", "text": n.text, "wrap": true}));
    }
    body.push(json!({"type": "FactSet", "facts": facts}));
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "msteams": {"width": "Full"},
                "body": body,
            },
        }],
    })
}

/// Teams through a legacy Office 365 connector URL: a MessageCard.
#[must_use]
pub fn teams_message_card(n: &Notice) -> Value {
    let facts: Vec<Value> = fields(n)
        .into_iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    json!({
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": headline(n),
        "themeColor": format!("{:06x}", color(n)),
        "title": headline(n),
        "text": n.text,
        "sections": [{"facts": facts}],
    })
}

/// The e-mail's subject: `[refinery] ` and the headline.
#[must_use]
pub fn email_subject(n: &Notice) -> String {
    let what = match n.kind {
        NoticeKind::DriftStarted | NoticeKind::BurstStarted => "drift",
        NoticeKind::DriftResolved | NoticeKind::BurstResolved => "resolved",
        NoticeKind::Reminder => "still drifting",
        NoticeKind::Alert => level_str(n.level),
        NoticeKind::Suppressed => "rate limited",
        NoticeKind::Test => "test",
    };
    cut(&format!("[refinery] {what}: {}", n.title), 200)
}

/// The e-mail's plain-text body.
#[must_use]
pub fn email_body(n: &Notice) -> String {
    format!(
        "{}\n\n{}\n\ntime: {}\nevent: {}\n",
        headline(n),
        plain(n),
        n.time,
        n.kind.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> Notice {
        let mut n = Notice::new(
            NoticeKind::DriftStarted,
            Level::Warning,
            "docker/lyra/container/web: status drift",
            "2026-11-22T19:29:18Z".parse().expect("time"),
        );
        n.text = "exited (code 137)".into();
        n.node = Some("lyra".into());
        n.resource = Some("docker/lyra/container/web".into());
        n.drift = Some("status".into());
        n
    }

    #[test]
    fn discord_body_has_content_and_one_colored_embed() {
        let b = discord(&notice());
        assert_eq!(
            b["content"],
            "[drift] docker/lyra/container/web: status drift"
        );
        assert_eq!(b["embeds"][0]["color"], 0xe0_a0_00);
        assert_eq!(b["embeds"][0]["description"], "exited (code 137)");
        assert_eq!(b["embeds"][0]["fields"][0]["name"], "node");
    }

    #[test]
    fn slack_body_has_fallback_text_and_blocks() {
        let b = slack(&notice());
        assert_eq!(b["text"], "[drift] docker/lyra/container/web: status drift");
        assert_eq!(b["blocks"][0]["type"], "header");
        assert_eq!(b["blocks"][1]["text"]["text"], "exited (code 137)");
    }

    #[test]
    fn mattermost_body_has_text_and_an_attachment() {
        let mut n = notice();
        n.kind = NoticeKind::DriftResolved;
        let b = mattermost(&n);
        assert_eq!(b["attachments"][0]["color"], "#2ea043");
        assert_eq!(
            b["text"],
            "[resolved] docker/lyra/container/web: status drift"
        );
    }

    #[test]
    fn webhook_body_is_flat_and_versioned() {
        let b = webhook(&notice());
        assert_eq!(b["version"], 1);
        assert_eq!(b["event"], "drift_started");
        assert_eq!(b["drift"], "status");
        assert_eq!(b["time"], "2026-11-22T19:29:18Z");
    }

    #[test]
    fn cut_long_text_ends_with_an_ellipsis() {
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
    }
}
