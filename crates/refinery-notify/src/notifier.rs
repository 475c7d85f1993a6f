//! The running channels. The daemon hands messages to [`Notifier::send`], which never waits:
//! each channel has a task with a bounded queue, and a full queue drops the message (counted in
//! `refinery_alerts_total{result="dropped"}`).

use std::sync::Arc;
use std::time::Duration;

use refinery_core::manifest::Channel;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::metrics::AlertCounter;
use crate::notice::{Notice, level_str};
use crate::send::Retry;
use crate::target::Target;
use crate::worker;

/// Messages waiting per channel before new ones are dropped.
const QUEUE: usize = 256;

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
    metrics: Arc<dyn AlertCounter>,
    retry: Retry,
}

impl Notifier {
    #[must_use]
    pub fn new<M: AlertCounter + 'static>(metrics: Arc<M>) -> Self {
        let metrics: Arc<dyn AlertCounter> = metrics;
        let client = match crate::client() {
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

    /// How often and how long each message is tried (tests shorten it).
    #[must_use]
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
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
            let task = tokio::spawn(worker::run(
                target.clone(),
                client.clone(),
                rx,
                Arc::clone(&self.metrics),
                self.retry,
            ));
            tracing::info!(channel = %target.label, level = level_str(ch.level), "alert channel ready");
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
        self.channels.clear();
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
