//! Sending commit statuses from a task of their own: a bounded queue, retries with backoff, and
//! nothing that waits on the forge in the caller.

use refinery_core::short_id as short;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::commit_status::{CommitState, CommitStatus};
use crate::retry::{Retry, RetryVerdict};
use crate::status_target::StatusTarget;

/// Told of every status's fate.
pub type DeliveryHook = Arc<dyn Fn(&Delivery) + Send + Sync>;

/// How the reporter behaves. `Default`: [`Retry::default`], a queue of 256, 10 s per request.
#[derive(Clone)]
pub struct ReporterOptions {
    pub retry: Retry,
    /// Statuses waiting to be sent; past this, new ones are dropped (and said so).
    pub queue: usize,
    /// Per request, connecting included.
    pub timeout: Duration,
    /// Told of every status's fate (metrics, tests); called on the reporter's task.
    pub on_delivery: Option<DeliveryHook>,
}

impl Default for ReporterOptions {
    fn default() -> Self {
        ReporterOptions {
            retry: Retry::default(),
            queue: 256,
            timeout: Duration::from_secs(10),
            on_delivery: None,
        }
    }
}

impl ReporterOptions {
    #[must_use]
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    #[must_use]
    pub fn on_delivery(mut self, f: impl Fn(&Delivery) + Send + Sync + 'static) -> Self {
        self.on_delivery = Some(Arc::new(f));
        self
    }
}

/// What became of one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub sha: String,
    pub state: CommitState,
    pub context: String,
    /// Requests made for it (0 when it was never sent).
    pub attempts: u32,
    pub result: DeliveryResult,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryResult {
    /// The forge took it (HTTP 2xx).
    Sent { status: u16 },
    /// The forge refused it for good (401, 403, 404, 422, …), with the start of its answer.
    Rejected { status: u16, message: String },
    /// Every attempt failed for reasons worth retrying (no answer, 429, 5xx).
    GaveUp { reason: String },
    /// A newer status for the same commit and context came while this one was being retried:
    /// only the newer one is sent.
    Superseded,
    /// The queue was full.
    Dropped,
}

/// The sender of commit statuses. [`report`](StatusReporter::report) never waits; a task sends
/// in order, one at a time.
pub struct StatusReporter {
    tx: mpsc::Sender<CommitStatus>,
    task: tokio::task::JoinHandle<()>,
    label: String,
    on_delivery: Option<DeliveryHook>,
}

impl StatusReporter {
    /// Starts the sending task (on the current tokio runtime).
    #[must_use]
    pub fn start(target: StatusTarget, options: ReporterOptions) -> StatusReporter {
        // reqwest is built without a crypto provider of its own: ring is the process's one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            .build()
            .unwrap_or_default();
        let (tx, rx) = mpsc::channel(options.queue.max(1));
        let label = target.label();
        let on_delivery = options.on_delivery.clone();
        let worker = Worker {
            target,
            client,
            retry: options.retry,
            on_delivery: options.on_delivery,
            rx,
            queue: VecDeque::new(),
        };
        let task = tokio::spawn(worker.run());
        StatusReporter {
            tx,
            task,
            label,
            on_delivery,
        }
    }

    /// `github acme/infra (https://api.github.com)`.
    #[must_use]
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Queues `status`; never waits. A full queue drops it (logged, and told as
    /// [`DeliveryResult::Dropped`]).
    pub fn report(&self, status: CommitStatus) {
        if let Err(err) = self.tx.try_send(status) {
            let status = match err {
                mpsc::error::TrySendError::Full(s) | mpsc::error::TrySendError::Closed(s) => s,
            };
            tracing::warn!(forge = %self.label, commit = %short(&status.sha), state = %status.state, "commit status dropped: the queue is full");
            if let Some(f) = &self.on_delivery {
                f(&Delivery {
                    sha: status.sha,
                    state: status.state,
                    context: status.context,
                    attempts: 0,
                    result: DeliveryResult::Dropped,
                });
            }
        }
    }

    /// Sends what is queued, for at most `within`, then stops.
    pub async fn close(self, within: Duration) {
        drop(self.tx);
        let mut task = self.task;
        if tokio::time::timeout(within, &mut task).await.is_err() {
            task.abort();
        }
    }
}

struct Worker {
    target: StatusTarget,
    client: reqwest::Client,
    retry: Retry,
    on_delivery: Option<DeliveryHook>,
    rx: mpsc::Receiver<CommitStatus>,
    /// Statuses received and not yet sent, oldest first.
    queue: VecDeque<CommitStatus>,
}

/// How one attempt went.
enum Attempt {
    Answer {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    NoAnswer(String),
}

impl Worker {
    async fn run(mut self) {
        loop {
            if self.queue.is_empty() {
                match self.rx.recv().await {
                    Some(s) => self.queue.push_back(s),
                    None => return,
                }
            }
            while let Ok(s) = self.rx.try_recv() {
                self.queue.push_back(s);
            }
            if let Some(status) = self.queue.pop_front() {
                let delivery = self.deliver(status).await;
                self.tell(&delivery);
            }
        }
    }

    fn tell(&self, d: &Delivery) {
        let commit = short(&d.sha);
        match &d.result {
            DeliveryResult::Sent { status } => {
                tracing::info!(forge = %self.target.label(), commit, state = %d.state, context = %d.context, http = status, attempts = d.attempts, "commit status sent");
            }
            DeliveryResult::Rejected { status, message } => {
                tracing::warn!(forge = %self.target.label(), commit, state = %d.state, http = status, answer = %message, "the forge refused the commit status");
            }
            DeliveryResult::GaveUp { reason } => {
                tracing::warn!(forge = %self.target.label(), commit, state = %d.state, attempts = d.attempts, reason = %reason, "failed to send the commit status; giving up");
            }
            DeliveryResult::Superseded => {
                tracing::debug!(forge = %self.target.label(), commit, state = %d.state, "commit status superseded by a newer one");
            }
            DeliveryResult::Dropped => {}
        }
        if let Some(f) = &self.on_delivery {
            f(d);
        }
    }

    async fn deliver(&mut self, status: CommitStatus) -> Delivery {
        let request = self.target.request(&status);
        let mut delays = self.retry.delays();
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            let attempt = self.send(&request).await;
            let (verdict, retry_after, reason) = match &attempt {
                Attempt::Answer {
                    status,
                    retry_after,
                    message,
                } => (
                    Retry::verdict(Some(*status)),
                    *retry_after,
                    format!("HTTP {status}: {message}"),
                ),
                Attempt::NoAnswer(reason) => (Retry::verdict(None), None, reason.clone()),
            };
            match (verdict, attempt) {
                (RetryVerdict::Done, Attempt::Answer { status, .. }) => {
                    break DeliveryResult::Sent { status };
                }
                (
                    RetryVerdict::Final,
                    Attempt::Answer {
                        status, message, ..
                    },
                ) => break DeliveryResult::Rejected { status, message },
                _ => {}
            }
            if attempts >= self.retry.attempts {
                break DeliveryResult::GaveUp { reason };
            }
            let wait = Retry::wait(delays.next().unwrap_or(self.retry.max_delay), retry_after);
            tracing::debug!(forge = %self.target.label(), commit = short(&status.sha), reason = %reason, "commit status not sent; again in {wait:?}");
            if self.wait_or_superseded(&status, wait).await {
                break DeliveryResult::Superseded;
            }
        };
        Delivery {
            sha: status.sha,
            state: status.state,
            context: status.context,
            attempts,
            result,
        }
    }

    /// Waits `wait`, taking in statuses that arrive meanwhile; true as soon as one of them is for
    /// the same commit and context as `status` (it replaces `status` on the forge anyway).
    async fn wait_or_superseded(&mut self, status: &CommitStatus, wait: Duration) -> bool {
        let same = |s: &CommitStatus| s.sha == status.sha && s.context == status.context;
        if self.queue.iter().any(same) {
            return true;
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return false,
                next = self.rx.recv() => match next {
                    Some(s) => {
                        let newer = same(&s);
                        self.queue.push_back(s);
                        if newer {
                            return true;
                        }
                    }
                    // Closing: finish the retries of this one.
                    None => {
                        tokio::time::sleep_until(deadline).await;
                        return false;
                    }
                },
            }
        }
    }

    async fn send(&self, request: &crate::status_request::StatusRequest) -> Attempt {
        let mut builder = self.client.post(&request.url).json(&request.body);
        for (name, value) in &request.headers {
            if name.eq_ignore_ascii_case("content-type") {
                continue; // `.json` sets it
            }
            builder = builder.header(*name, value);
        }
        match builder.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let text = resp.text().await.unwrap_or_default();
                Attempt::Answer {
                    status,
                    message: text.chars().take(200).collect::<String>().trim().to_owned(),
                    retry_after,
                }
            }
            // reqwest's message names the URL, which holds no secret (the token is a header).
            Err(e) => Attempt::NoAnswer(refinery_core::error_text::error_chain(&e)),
        }
    }
}
