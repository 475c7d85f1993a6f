//! Each channel's body for a [`Notice`]: Discord embeds, Slack blocks, Mattermost attachments, and
//! the generic webhook's flat JSON (schema version 1).

use refinery_core::manifest::{ChannelKind, Level};
use serde_json::{Value, json};

use super::notice::{Notice, NoticeKind, level_str};

/// Schema version of the generic webhook body.
pub const WEBHOOK_VERSION: u32 = 1;

/// The body posted to a channel of `kind`.
#[must_use]
pub fn body(kind: ChannelKind, n: &Notice) -> Value {
    match kind {
        ChannelKind::Discord => discord(n),
        ChannelKind::Slack => slack(n),
        ChannelKind::Mattermost => mattermost(n),
        ChannelKind::Webhook => webhook(n),
    }
}

/// RGB color: red for critical, amber for warnings, green for resolved, blue otherwise.
fn color(n: &Notice) -> u32 {
    match (n.kind, n.level) {
        (NoticeKind::DriftResolved, _) => 0x2e_a0_43,
        (_, Level::Critical) => 0xd0_30_30,
        (_, Level::Warning) => 0xe0_a0_00,
        (_, Level::Info) => 0x30_70_d0,
    }
}

fn hex(c: u32) -> String {
    format!("#{c:06x}")
}

/// The one-line headline: `[warning] drift started: …`.
fn headline(n: &Notice) -> String {
    let what = match n.kind {
        NoticeKind::DriftStarted => "drift",
        NoticeKind::DriftResolved => "resolved",
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

fn discord(n: &Notice) -> Value {
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

fn slack(n: &Notice) -> Value {
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

fn mattermost(n: &Notice) -> Value {
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

fn webhook(n: &Notice) -> Value {
    json!({
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
    })
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
        let b = body(ChannelKind::Discord, &notice());
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
        let b = body(ChannelKind::Slack, &notice());
        assert_eq!(b["text"], "[drift] docker/lyra/container/web: status drift");
        assert_eq!(b["blocks"][0]["type"], "header");
        assert_eq!(b["blocks"][1]["text"]["text"], "exited (code 137)");
    }

    #[test]
    fn mattermost_body_has_text_and_an_attachment() {
        let mut n = notice();
        n.kind = NoticeKind::DriftResolved;
        let b = body(ChannelKind::Mattermost, &n);
        assert_eq!(b["attachments"][0]["color"], "#2ea043");
        assert_eq!(
            b["text"],
            "[resolved] docker/lyra/container/web: status drift"
        );
    }

    #[test]
    fn webhook_body_is_flat_and_versioned() {
        let b = body(ChannelKind::Webhook, &notice());
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
