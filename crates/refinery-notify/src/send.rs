//! Delivering one message to one channel, as its service documents it, with retries.

use std::time::Duration;

use refinery_core::backoff::Backoff;
use refinery_core::manifest::{Destination, TELEGRAM_API};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use crate::email;
use crate::metrics::AlertCounter;
use crate::notice::Notice;
use crate::payload;
use crate::target::Target;

/// Why a message did not arrive. Nothing here holds a secret: channels are named by their
/// masked label, and causes are redacted.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("failed to send to alert channel `{channel}`: it answered HTTP {status}{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Status {
        channel: String,
        status: u16,
        /// What the service said, when it says it in a documented field (Telegram's
        /// `description`), redacted.
        detail: Option<String>,
        /// What a 401-404 answer says is wrong: `webhook URL` for services addressed by a secret
        /// URL alone, `URL or token` for the others.
        credential: &'static str,
    },
    #[error("failed to reach alert channel `{channel}`")]
    Transport {
        channel: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("failed to send to alert channel `{channel}`: {reason}")]
    Refused { channel: String, reason: String },
    #[error("failed to send e-mail through alert channel `{channel}`")]
    Smtp {
        channel: String,
        #[source]
        source: email::EmailError,
    },
}

impl SendError {
    /// Worth another try: the network, a timeout, 429 or a server error, an SMTP server's
    /// transient (4xx) answer. Other 4xx answers mean the request itself is wrong (a revoked
    /// webhook, a wrong token), and trying again will not help.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            SendError::Status { status, .. } => *status == 429 || *status >= 500,
            SendError::Transport { .. } => true,
            SendError::Refused { .. } => false,
            SendError::Smtp { source, .. } => source.is_transient(),
        }
    }

    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            SendError::Status {
                status: 401..=404,
                credential,
                ..
            } => {
                vec![format!(
                    "the {credential} may have been revoked or mistyped: check it in the channel's settings"
                )]
            }
            SendError::Status { .. } => Vec::new(),
            SendError::Transport { .. } => {
                vec!["check the network and the channel URL's host".into()]
            }
            SendError::Refused { .. } => Vec::new(),
            SendError::Smtp { source, .. } => source.hints(),
        }
    }
}

/// How often and how long to try one message.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for Retry {
    /// 5 attempts, waiting 0.5 s, 1 s, 2 s, 4 s in between.
    fn default() -> Self {
        Retry {
            attempts: 5,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

/// Whether a Teams URL is a legacy Office 365 connector's (which takes a MessageCard); any
/// other (a Workflows URL) takes an Adaptive Card.
#[must_use]
pub fn teams_wants_message_card(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    let host = u.host_str().unwrap_or_default();
    host.ends_with("webhook.office.com")
        || host.ends_with("outlook.office.com")
        || host.ends_with("outlook.office365.com")
        || u.path_segments()
            .is_some_and(|mut s| s.any(|seg| seg == "webhookb2" || seg == "IncomingWebhook"))
}

/// `base` with `path` appended (one `/` between them).
fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// A header value; a non-ASCII one is RFC 2047-encoded (ntfy decodes it).
fn header_text(s: &str) -> HeaderValue {
    use base64::Engine as _;
    if let Ok(v) = HeaderValue::from_str(s)
        && s.is_ascii()
    {
        return v;
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(s);
    HeaderValue::from_str(&format!("=?UTF-8?B?{b64}?=")).unwrap_or(HeaderValue::from_static(""))
}

fn bearer(token: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// Sends one message once.
pub async fn post_once(
    client: &reqwest::Client,
    target: &Target,
    n: &Notice,
) -> Result<(), SendError> {
    let label = || target.label.clone();
    let request = match &target.channel.destination {
        Destination::Discord { url } => client.post(url.expose()).json(&payload::discord(n)),
        Destination::Slack { url } => client.post(url.expose()).json(&payload::slack(n)),
        Destination::Mattermost { url } => client.post(url.expose()).json(&payload::mattermost(n)),
        Destination::Webhook { url } => client.post(url.expose()).json(&payload::webhook(n)),
        Destination::Ntfy { url, token } => {
            let mut headers = HeaderMap::new();
            headers.insert(
                HeaderName::from_static("title"),
                header_text(&payload::headline(n)),
            );
            headers.insert(
                HeaderName::from_static("priority"),
                HeaderValue::from(u16::from(payload::ntfy_priority(n))),
            );
            headers.insert(
                HeaderName::from_static("tags"),
                header_text(&payload::ntfy_tags(n)),
            );
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            if let Some(v) = token.as_ref().and_then(|t| bearer(t.expose())) {
                headers.insert(AUTHORIZATION, v);
            }
            client
                .post(url.expose())
                .headers(headers)
                .body(payload::plain(n))
        }
        Destination::Gotify { url, token } => {
            let mut key =
                HeaderValue::from_str(token.expose()).map_err(|_| SendError::Refused {
                    channel: label(),
                    reason: "its `token` is not a valid header value".into(),
                })?;
            key.set_sensitive(true);
            client
                .post(join(url.expose(), "message"))
                .header("X-Gotify-Key", key)
                .json(&payload::gotify(n))
        }
        Destination::Telegram {
            bot_token,
            chat_id,
            api_url,
        } => {
            let base = api_url.as_deref().unwrap_or(TELEGRAM_API);
            client
                .post(join(
                    base,
                    &format!("bot{}/sendMessage", bot_token.expose()),
                ))
                .json(&payload::telegram(chat_id, n))
        }
        Destination::Teams { url } => {
            let body = if teams_wants_message_card(url.expose()) {
                payload::teams_message_card(n)
            } else {
                payload::teams_adaptive(n)
            };
            client.post(url.expose()).json(&body)
        }
        Destination::Apprise { url, urls } => {
            let urls: Vec<&str> = urls.iter().map(|u| u.expose()).collect();
            client
                .post(url.expose())
                .header("Accept", "application/json")
                .json(&payload::apprise(n, &urls))
        }
        Destination::Email(e) => {
            return email::send(e, n).await.map_err(|source| SendError::Smtp {
                channel: label(),
                source: source.redacted(target),
            });
        }
    };
    let resp = request.send().await.map_err(|e| SendError::Transport {
        channel: label(),
        source: e.without_url(),
    })?;
    let status = resp.status();
    if status.is_success() {
        // Apprise API answers 204 when no configuration is stored under the key: nothing was
        // sent anywhere.
        if matches!(target.channel.destination, Destination::Apprise { .. })
            && status == reqwest::StatusCode::NO_CONTENT
        {
            return Err(SendError::Refused {
                channel: label(),
                reason: "the Apprise server has no configuration under this key (HTTP 204)".into(),
            });
        }
        return Ok(());
    }
    // Telegram says why in `description` (`Bad Request: chat not found`).
    let detail = if matches!(target.channel.destination, Destination::Telegram { .. }) {
        resp.json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v["description"].as_str().map(|d| target.redact(d)))
    } else {
        None
    };
    Err(SendError::Status {
        channel: label(),
        status: status.as_u16(),
        detail,
        credential: credential_of(&target.channel.destination),
    })
}

/// What a refused request (401-404) most likely means is wrong with the channel's settings.
fn credential_of(destination: &Destination) -> &'static str {
    match destination {
        Destination::Discord { .. }
        | Destination::Slack { .. }
        | Destination::Mattermost { .. }
        | Destination::Webhook { .. }
        | Destination::Teams { .. } => "webhook URL",
        Destination::Ntfy { .. }
        | Destination::Gotify { .. }
        | Destination::Telegram { .. }
        | Destination::Apprise { .. }
        | Destination::Email(_) => "URL or token",
    }
}

/// Sends one message, trying again with backoff while the failure is transient.
pub async fn post(
    client: &reqwest::Client,
    target: &Target,
    n: &Notice,
    retry: Retry,
    metrics: Option<&dyn AlertCounter>,
) -> Result<(), SendError> {
    let mut backoff = Backoff::new(retry.first_delay, retry.max_delay);
    let mut attempt = 1;
    loop {
        match post_once(client, target, n).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_transient() && attempt < retry.attempts => {
                let delay = backoff.next().unwrap_or(retry.max_delay);
                tracing::debug!(channel = %target.label, attempt, error = %e, "alert not delivered; trying again in {delay:?}");
                if let Some(m) = metrics {
                    m.alert(target.metric_name(), "retried");
                }
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teams_legacy_connector_urls_take_a_message_card() {
        assert!(teams_wants_message_card(
            "https://contoso.webhook.office.com/webhookb2/a@b/IncomingWebhook/c/d"
        ));
        assert!(teams_wants_message_card(
            "http://127.0.0.1:9/webhookb2/a@b/IncomingWebhook/c/d"
        ));
        assert!(!teams_wants_message_card(
            "https://prod-01.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=x"
        ));
    }

    #[test]
    fn send_error_4xx_is_final_5xx_and_429_are_transient() {
        let s = |status| SendError::Status {
            channel: "c".into(),
            status,
            detail: None,
            credential: "webhook URL",
        };
        assert!(s(500).is_transient());
        assert!(s(429).is_transient());
        assert!(!s(404).is_transient());
        assert_eq!(
            s(404).hints(),
            [
                "the webhook URL may have been revoked or mistyped: check it in the channel's settings"
            ]
        );
    }

    #[test]
    fn header_text_encodes_non_ascii() {
        assert_eq!(header_text("web down"), "web down");
        assert_eq!(header_text("é"), "=?UTF-8?B?w6k=?=");
    }
}
