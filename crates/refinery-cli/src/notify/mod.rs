//! Alert delivery: Discord, Slack, Mattermost and generic webhooks. The daemon hands messages to
//! [`Notifier::send`], which never waits: each channel has a task with a bounded queue, and a
//! full queue drops the message (counted in `refinery_alerts_total{result="dropped"}`).

pub mod channel;
pub mod notice;
pub mod payload;

use std::sync::Arc;
use std::time::Duration;

use refinery_core::manifest::{Channel, ChannelKind, Level, RateLimit};
use refinery_core::{Manifest, Secret};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use channel::{Retry, Target};
pub use notice::{Notice, NoticeKind};

use crate::metrics::Metrics;

/// Messages waiting per channel before new ones are dropped.
const QUEUE: usize = 256;

/// Every channel of a manifest: `alerting.channels`, plus `config.discord_webhook` as one Discord
/// channel at level `warning` (unless the same URL is already a channel).
#[must_use]
pub fn channels_of(manifest: &Manifest) -> Vec<Channel> {
    let mut out = manifest.alerting.channels.clone();
    if let Some(url) = &manifest.config.discord_webhook
        && !out.iter().any(|c| c.url.expose() == url.expose())
    {
        out.push(Channel {
            kind: ChannelKind::Discord,
            url: Secret::new(url.expose(), true),
            level: Level::Warning,
            nodes: Vec::new(),
            drift_types: Vec::new(),
            remind_every_ms: None,
            rate_limit: RateLimit::default(),
        });
    }
    out
}

/// The HTTP client for webhooks: rustls on ring, a timeout per request.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("refinery/", env!("CARGO_PKG_VERSION")))
        .build()
}

struct Worker {
    target: Target,
    tx: mpsc::Sender<Notice>,
    task: JoinHandle<()>,
}

/// The running channels.
pub struct Notifier {
    client: Option<reqwest::Client>,
    channels: Vec<Channel>,
    workers: Vec<Worker>,
    metrics: Arc<Metrics>,
    retry: Retry,
}

impl Notifier {
    #[must_use]
    pub fn new(metrics: Arc<Metrics>) -> Self {
        let client = match client() {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "failed to set up the HTTP client; alerts are not sent");
                None
            }
        };
        Notifier {
            client,
            channels: Vec::new(),
            workers: Vec::new(),
            metrics,
            retry: Retry::default(),
        }
    }

    /// Starts, keeps or replaces the channel tasks so they match `channels` (a new revision may
    /// change them). Replaced tasks finish what they hold.
    pub fn configure(&mut self, channels: Vec<Channel>) {
        if channels == self.channels {
            return;
        }
        let Some(client) = self.client.clone() else {
            return;
        };
        self.workers.clear();
        for (i, ch) in channels.iter().enumerate() {
            let target = Target::new(i, ch.clone());
            let (tx, rx) = mpsc::channel(QUEUE);
            let task = tokio::spawn(channel::run(
                target.clone(),
                client.clone(),
                rx,
                Arc::clone(&self.metrics),
                self.retry,
            ));
            tracing::info!(channel = %target.label, level = notice::level_str(ch.level), "alert channel ready");
            self.workers.push(Worker { target, tx, task });
        }
        self.channels = channels;
    }

    /// Queues a message for every channel; never waits.
    pub fn send(&self, n: &Notice) {
        for w in &self.workers {
            if let Err(e) = w.tx.try_send(n.clone()) {
                self.metrics.alert(w.target.metric_name(), "dropped");
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "its queue is full",
                    mpsc::error::TrySendError::Closed(_) => "its task ended",
                };
                tracing::warn!(channel = %w.target.label, title = %n.title, "alert dropped: {why}");
            }
        }
    }

    /// Lets queued messages go out, for at most `grace`.
    pub async fn shutdown(&mut self, grace: Duration) {
        let workers = std::mem::take(&mut self.workers);
        let tasks: Vec<JoinHandle<()>> = workers
            .into_iter()
            .map(|w| {
                drop(w.tx);
                w.task
            })
            .collect();
        let all = futures_util::future::join_all(tasks);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("some alerts were still being sent at shutdown");
        }
    }
}
