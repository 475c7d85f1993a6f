//! One alert channel of `alerting.channels`: where it delivers, what it takes, how it keeps quiet.

use serde::Serialize;

use crate::secret::Secret;

/// How serious a message is; a channel takes messages from its `min_level` up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warning,
    Critical,
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

/// The channel types (`type:`), one per service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Discord,
    Slack,
    Mattermost,
    Webhook,
    Ntfy,
    Gotify,
    Telegram,
    Teams,
    Apprise,
    Email,
}

impl ChannelKind {
    /// Every type, in the order the README lists them.
    pub const ALL: [ChannelKind; 10] = [
        ChannelKind::Discord,
        ChannelKind::Slack,
        ChannelKind::Mattermost,
        ChannelKind::Webhook,
        ChannelKind::Ntfy,
        ChannelKind::Gotify,
        ChannelKind::Telegram,
        ChannelKind::Teams,
        ChannelKind::Apprise,
        ChannelKind::Email,
    ];

    /// The `type:` word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Discord => "discord",
            ChannelKind::Slack => "slack",
            ChannelKind::Mattermost => "mattermost",
            ChannelKind::Webhook => "webhook",
            ChannelKind::Ntfy => "ntfy",
            ChannelKind::Gotify => "gotify",
            ChannelKind::Telegram => "telegram",
            ChannelKind::Teams => "teams",
            ChannelKind::Apprise => "apprise",
            ChannelKind::Email => "email",
        }
    }

    /// The type named by a `type:` word.
    #[must_use]
    pub fn parse(word: &str) -> Option<ChannelKind> {
        ChannelKind::ALL.into_iter().find(|k| k.as_str() == word)
    }
}

/// Where a channel delivers, with what each service needs. Every URL and token is a
/// [`Secret`]: webhook URLs carry their token in the path, so they print as `***`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Destination {
    /// `webhook_url` (or `url`): a Discord webhook.
    Discord { url: Secret },
    /// `webhook_url` (or `url`): a Slack incoming webhook.
    Slack { url: Secret },
    /// `webhook_url` (or `url`): a Mattermost incoming webhook.
    Mattermost { url: Secret },
    /// `url` (or `webhook_url`): Refinery's own flat JSON, schema version 1.
    Webhook { url: Secret },
    /// `url` is the topic URL (`https://ntfy.sh/ops`); `token` an access token (Bearer).
    Ntfy { url: Secret, token: Option<Secret> },
    /// `url` is the server (`https://gotify.example`); `token` the application token.
    Gotify { url: Secret, token: Secret },
    /// `bot_token` and `chat_id`; `api_url` a self-hosted Bot API server (default
    /// `https://api.telegram.org`).
    Telegram {
        bot_token: Secret,
        chat_id: String,
        api_url: Option<String>,
    },
    /// `webhook_url` (or `url`): an Office 365 connector's incoming webhook (legacy
    /// MessageCard) or a Power Automate Workflows URL (Adaptive Card).
    Teams { url: Secret },
    /// `url` of an Apprise API server: `…/notify/KEY` (a stored configuration), or `…/notify`
    /// with `urls` (Apprise URLs, each a secret: they hold the services' tokens).
    Apprise { url: Secret, urls: Vec<Secret> },
    /// E-mail over SMTP.
    Email(EmailDestination),
}

/// `type: email`: `smtp: smtp://host:port` (STARTTLS when offered) or `smtps://host:port`
/// (TLS from the first byte), `from`, `to`, optional `username`/`password`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmailDestination {
    pub smtp: Secret,
    pub from: String,
    pub to: Vec<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

impl Destination {
    #[must_use]
    pub fn kind(&self) -> ChannelKind {
        match self {
            Destination::Discord { .. } => ChannelKind::Discord,
            Destination::Slack { .. } => ChannelKind::Slack,
            Destination::Mattermost { .. } => ChannelKind::Mattermost,
            Destination::Webhook { .. } => ChannelKind::Webhook,
            Destination::Ntfy { .. } => ChannelKind::Ntfy,
            Destination::Gotify { .. } => ChannelKind::Gotify,
            Destination::Telegram { .. } => ChannelKind::Telegram,
            Destination::Teams { .. } => ChannelKind::Teams,
            Destination::Apprise { .. } => ChannelKind::Apprise,
            Destination::Email(_) => ChannelKind::Email,
        }
    }

    /// The address messages go to, as configured (`url`, `webhook_url`, `api_url`, `smtp`).
    /// Telegram's default API carries the token only in the request path, never here.
    #[must_use]
    pub fn address(&self) -> Secret {
        match self {
            Destination::Discord { url }
            | Destination::Slack { url }
            | Destination::Mattermost { url }
            | Destination::Webhook { url }
            | Destination::Ntfy { url, .. }
            | Destination::Gotify { url, .. }
            | Destination::Teams { url }
            | Destination::Apprise { url, .. } => url.clone(),
            Destination::Telegram { api_url, .. } => {
                Secret::new(api_url.as_deref().unwrap_or(TELEGRAM_API).to_owned(), false)
            }
            Destination::Email(e) => e.smtp.clone(),
        }
    }

    /// Every secret value of the destination: whatever prints about the channel (a log line, an
    /// error's cause, `alert test`) has these replaced by `***`.
    #[must_use]
    pub fn secrets(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        match self {
            Destination::Discord { url }
            | Destination::Slack { url }
            | Destination::Mattermost { url }
            | Destination::Webhook { url }
            | Destination::Teams { url } => out.push(url.expose()),
            Destination::Ntfy { url, token } => {
                out.push(url.expose());
                out.extend(token.as_ref().map(Secret::expose));
            }
            Destination::Gotify { url, token } => {
                out.push(url.expose());
                out.push(token.expose());
            }
            Destination::Telegram { bot_token, .. } => out.push(bot_token.expose()),
            Destination::Apprise { url, urls } => {
                out.push(url.expose());
                out.extend(urls.iter().map(Secret::expose));
            }
            Destination::Email(e) => {
                out.push(e.smtp.expose());
                out.extend(e.password.as_ref().map(Secret::expose));
            }
        }
        out.retain(|s| !s.is_empty());
        out
    }
}

/// Telegram's public Bot API.
pub const TELEGRAM_API: &str = "https://api.telegram.org";

/// `burst` when absent: more drifts than this starting together are sent as one message.
pub const DEFAULT_BURST: u32 = 5;
/// `group_wait` when absent, in milliseconds.
pub const DEFAULT_GROUP_WAIT_MS: u64 = 5_000;

/// One channel: its destination, its filters and how it keeps quiet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Channel {
    pub destination: Destination,
    /// The least level it sends.
    pub level: Level,
    /// Only about these nodes (empty: all).
    pub nodes: Vec<String>,
    /// Only these drift types (empty: all).
    pub drift_types: Vec<String>,
    /// `remind_every`: while a drift lasts, send it again this often (milliseconds).
    pub remind_every_ms: Option<u64>,
    /// `rate_limit`: at most this many messages per window; the rest are counted and summed up
    /// in one message when the window ends.
    pub rate_limit: RateLimit,
    /// `min_duration`: a drift is announced only once it has lasted this long (milliseconds);
    /// its end only if its start was.
    pub min_duration_ms: u64,
    /// `burst`: more drift starts than this within `group_wait` go out as one message.
    pub burst: u32,
    /// `group_wait` (milliseconds): how long a drift start waits for others to form a burst.
    /// 0 sends each at once and never groups.
    pub group_wait_ms: u64,
}

impl Channel {
    /// A channel with the defaults: level `warning`, no filters, no reminders, 20 messages a
    /// minute, no `min_duration`, bursts of more than 5 within 5 s grouped.
    #[must_use]
    pub fn new(destination: Destination) -> Channel {
        Channel {
            destination,
            level: Level::Warning,
            nodes: Vec::new(),
            drift_types: Vec::new(),
            remind_every_ms: None,
            rate_limit: RateLimit::default(),
            min_duration_ms: 0,
            burst: DEFAULT_BURST,
            group_wait_ms: DEFAULT_GROUP_WAIT_MS,
        }
    }

    #[must_use]
    pub fn kind(&self) -> ChannelKind {
        self.destination.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_kind_words_round_trip() {
        for k in ChannelKind::ALL {
            assert_eq!(ChannelKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ChannelKind::parse("pager"), None);
    }

    #[test]
    fn destination_secrets_serialize_masked() {
        let d = Destination::Gotify {
            url: Secret::new("https://gotify.example", true),
            token: Secret::new("AbCdEf", true),
        };
        let json = serde_json::to_string(&d).unwrap_or_default();
        assert!(
            !json.contains("AbCdEf") && !json.contains("gotify.example"),
            "{json}"
        );
        assert_eq!(d.secrets(), ["https://gotify.example", "AbCdEf"]);
    }
}
