//! Refinery's alert channels: Discord, Slack, Mattermost, generic webhooks, ntfy, Gotify,
//! Telegram, Microsoft Teams, Apprise and e-mail. The daemon hands [`Notice`]s to a
//! [`Notifier`]; each channel filters them, keeps quiet about short drifts (`min_duration`) and
//! groups bursts ([`gate`]), rate-limits, reminds, and delivers with retries. Secrets (URLs,
//! tokens, passwords) never leave this crate unmasked.

pub mod email;
pub mod gate;
pub mod metrics;
pub mod notice;
pub mod notifier;
pub mod payload;
pub mod rate_window;
pub mod send;
pub mod target;
pub mod worker;

use std::time::Duration;

use refinery_core::Manifest;
use refinery_core::manifest::{Channel, Destination};

pub use metrics::{AlertCounter, NoCounter};
pub use notice::{DriftRef, Notice, NoticeKind};
pub use notifier::Notifier;
pub use send::{Retry, SendError, post};
pub use target::Target;

/// Every channel of a manifest: `alerting.channels`, plus `config.discord_webhook` as one Discord
/// channel at level `warning` (unless the same URL is already a channel).
#[must_use]
pub fn channels_of(manifest: &Manifest) -> Vec<Channel> {
    let mut out = manifest.alerting.channels.clone();
    if let Some(url) = &manifest.config.discord_webhook
        && !out
            .iter()
            .any(|c| c.destination.address().expose() == url.expose())
    {
        out.push(Channel::new(Destination::Discord {
            url: refinery_core::Secret::new(url.expose(), true),
        }));
    }
    out
}

/// The HTTP client for the channels: rustls on ring, a timeout per request.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("refinery/", env!("CARGO_PKG_VERSION")))
        .build()
}
