//! One alert channel: its filters, its rate limit, its reminders, and delivery with retries.
//! Each channel has its own task and bounded queue, so a slow or failing channel delays no other
//! channel and never the daemon.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use refinery_core::backoff::Backoff;
use refinery_core::manifest::{Channel, ChannelKind, RateLimit};
use tokio::sync::mpsc;

use super::notice::{Notice, NoticeKind};
use super::payload;
use crate::metrics::Metrics;

/// A channel as the notifier knows it: the manifest's entry and a printable, masked name.
#[derive(Debug, Clone)]
pub struct Target {
    pub channel: Channel,
    /// `discord#0 (https://discord.com/***)`: never the whole URL.
    pub label: String,
}

impl Target {
    #[must_use]
    pub fn new(index: usize, channel: Channel) -> Self {
        let kind = kind_str(channel.kind);
        let label = format!("{kind}#{index} ({})", mask_url(channel.url.expose()));
        Target { channel, label }
    }

    /// The short name used as a metric label: `discord#0`.
    #[must_use]
    pub fn metric_name(&self) -> &str {
        self.label.split(' ').next().unwrap_or(&self.label)
    }
}

#[must_use]
pub fn kind_str(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Discord => "discord",
        ChannelKind::Slack => "slack",
        ChannelKind::Mattermost => "mattermost",
        ChannelKind::Webhook => "webhook",
    }
}

/// A webhook URL as it may be printed: scheme and host only (`https://discord.com/***`); the
/// path and any user info carry the secret.
#[must_use]
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".into();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    format!("{scheme}://{host}/***")
}

/// Whether the channel takes this message: its level, and its node and drift type filters.
/// `refinery alert test` messages go everywhere.
#[must_use]
pub fn wants(ch: &Channel, n: &Notice) -> bool {
    if n.kind == NoticeKind::Test {
        return true;
    }
    if n.level < ch.level {
        return false;
    }
    if !ch.nodes.is_empty()
        && let Some(node) = &n.node
        && !ch.nodes.contains(node)
    {
        return false;
    }
    if !ch.drift_types.is_empty()
        && let Some(drift) = &n.drift
        && !ch.drift_types.contains(drift)
    {
        return false;
    }
    true
}

/// A fixed-window rate limit: at most `max` messages per window. Messages over the limit are
/// counted; the count is reported once the next window opens.
#[derive(Debug, Clone)]
pub struct RateWindow {
    limit: RateLimit,
    start: Option<Instant>,
    sent: u32,
    held: u32,
}

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Send it; first report this many held-back messages, if any.
    Send { held_before: u32 },
    /// Over the limit: counted, not sent.
    Hold,
}

impl RateWindow {
    #[must_use]
    pub fn new(limit: RateLimit) -> Self {
        RateWindow {
            limit,
            start: None,
            sent: 0,
            held: 0,
        }
    }

    fn per(&self) -> Duration {
        Duration::from_millis(self.limit.per_ms.max(1))
    }

    /// Opens a new window when the current one has ended; returns the count held in the old one.
    fn roll(&mut self, now: Instant) -> u32 {
        let ended = self
            .start
            .is_none_or(|s| now.saturating_duration_since(s) >= self.per());
        if !ended {
            return 0;
        }
        self.start = Some(now);
        self.sent = 0;
        std::mem::take(&mut self.held)
    }

    pub fn admit(&mut self, now: Instant) -> Admit {
        let held_before = self.roll(now);
        if self.sent >= self.limit.max {
            self.held += 1;
            return Admit::Hold;
        }
        self.sent += 1;
        Admit::Send { held_before }
    }

    /// When held messages should be reported even if nothing else arrives.
    #[must_use]
    pub fn flush_at(&self) -> Option<Instant> {
        if self.held == 0 {
            return None;
        }
        self.start.map(|s| s + self.per())
    }

    /// At `flush_at`: the count held back, and a fresh window (the report counts as one send).
    pub fn flush(&mut self, now: Instant) -> u32 {
        let held = self.roll(now);
        if held > 0 {
            self.sent += 1;
        }
        held
    }
}

/// Why a message did not arrive.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("failed to send to alert channel `{channel}`: it answered HTTP {status}")]
    Status { channel: String, status: u16 },
    #[error("failed to reach alert channel `{channel}`")]
    Transport {
        channel: String,
        #[source]
        source: reqwest::Error,
    },
}

impl SendError {
    /// Worth another try: the network, a timeout, 429 or a server error. Other 4xx answers mean
    /// the request itself is wrong (a revoked webhook), and trying again will not help.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            SendError::Status { status, .. } => *status == 429 || *status >= 500,
            SendError::Transport { .. } => true,
        }
    }

    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            SendError::Status {
                status: 401..=404, ..
            } => {
                vec!["the webhook URL may have been revoked or mistyped: check it in the channel's settings".into()]
            }
            SendError::Status { .. } => Vec::new(),
            SendError::Transport { .. } => {
                vec!["check the network and the webhook URL's host".into()]
            }
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

/// Posts one message once.
pub async fn post_once(
    client: &reqwest::Client,
    target: &Target,
    n: &Notice,
) -> Result<(), SendError> {
    let body = payload::body(target.channel.kind, n);
    let resp = client
        .post(target.channel.url.expose())
        .json(&body)
        .send()
        .await
        .map_err(|e| SendError::Transport {
            channel: target.label.clone(),
            source: e.without_url(),
        })?;
    let status = resp.status().as_u16();
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(SendError::Status {
            channel: target.label.clone(),
            status,
        })
    }
}

/// Posts one message, trying again with backoff while the failure is transient.
pub async fn post(
    client: &reqwest::Client,
    target: &Target,
    n: &Notice,
    retry: Retry,
    metrics: Option<&Metrics>,
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

/// A drift the channel was told of, for reminders.
struct Open {
    notice: Notice,
    last: Instant,
}

/// The channel's task: takes messages from its queue until the queue closes.
pub async fn run(
    target: Target,
    client: reqwest::Client,
    mut rx: mpsc::Receiver<Notice>,
    metrics: Arc<Metrics>,
    retry: Retry,
) {
    let mut window = RateWindow::new(target.channel.rate_limit);
    let remind = target.channel.remind_every_ms.map(Duration::from_millis);
    let mut open: HashMap<String, Open> = HashMap::new();
    loop {
        let next_reminder = remind.and_then(|every| open.values().map(|o| o.last + every).min());
        let wake = [next_reminder, window.flush_at()]
            .into_iter()
            .flatten()
            .min();
        let received = match wake {
            Some(at) => tokio::select! {
                n = rx.recv() => Some(n),
                () = tokio::time::sleep_until(at.into()) => None,
            },
            None => Some(rx.recv().await),
        };
        let now = Instant::now();
        match received {
            Some(None) => break,
            Some(Some(n)) => {
                if !wants(&target.channel, &n) {
                    metrics.alert(target.metric_name(), "filtered");
                    continue;
                }
                if let Some(key) = n.drift_key() {
                    match n.kind {
                        NoticeKind::DriftStarted => {
                            open.insert(
                                key,
                                Open {
                                    notice: n.clone(),
                                    last: now,
                                },
                            );
                        }
                        NoticeKind::DriftResolved => {
                            open.remove(&key);
                        }
                        _ => {}
                    }
                }
                send_limited(&client, &target, &mut window, n, retry, &metrics).await;
            }
            None => {
                let held = window.flush(now);
                if held > 0 {
                    let s = suppressed(held, now_ts());
                    deliver(&client, &target, &s, retry, &metrics).await;
                }
                if let Some(every) = remind {
                    let due: Vec<Notice> = open
                        .values_mut()
                        .filter(|o| o.last + every <= now)
                        .map(|o| {
                            o.last = now;
                            let mut r = o.notice.clone();
                            r.kind = NoticeKind::Reminder;
                            let since = o.notice.time;
                            r.text = format!("{} (since {since})", o.notice.text);
                            r.time = now_ts();
                            r
                        })
                        .collect();
                    for r in due {
                        send_limited(&client, &target, &mut window, r, retry, &metrics).await;
                    }
                }
            }
        }
    }
}

fn now_ts() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

fn suppressed(count: u32, time: jiff::Timestamp) -> Notice {
    let mut n = Notice::new(
        NoticeKind::Suppressed,
        refinery_core::manifest::Level::Warning,
        format!("{count} alerts held back by the rate limit"),
        time,
    );
    n.text = "see `refinery ledger show` or the status page for what happened".into();
    n
}

async fn send_limited(
    client: &reqwest::Client,
    target: &Target,
    window: &mut RateWindow,
    n: Notice,
    retry: Retry,
    metrics: &Metrics,
) {
    match window.admit(Instant::now()) {
        Admit::Hold => {
            metrics.alert(target.metric_name(), "rate_limited");
            tracing::debug!(channel = %target.label, title = %n.title, "alert held back by the rate limit");
        }
        Admit::Send { held_before } => {
            if held_before > 0 {
                deliver(
                    client,
                    target,
                    &suppressed(held_before, now_ts()),
                    retry,
                    metrics,
                )
                .await;
            }
            deliver(client, target, &n, retry, metrics).await;
        }
    }
}

async fn deliver(
    client: &reqwest::Client,
    target: &Target,
    n: &Notice,
    retry: Retry,
    metrics: &Metrics,
) {
    match post(client, target, n, retry, Some(metrics)).await {
        Ok(()) => {
            metrics.alert(target.metric_name(), "sent");
            tracing::debug!(channel = %target.label, kind = n.kind.as_str(), title = %n.title, "alert sent");
        }
        Err(e) => {
            metrics.alert(target.metric_name(), "failed");
            let cause = std::error::Error::source(&e)
                .map(ToString::to_string)
                .unwrap_or_default();
            tracing::warn!(channel = %target.label, error = %e, cause = %cause, title = %n.title, "alert not delivered");
        }
    }
}

#[cfg(test)]
mod tests {
    use refinery_core::Secret;
    use refinery_core::manifest::Level;

    use super::*;

    fn channel() -> Channel {
        Channel {
            kind: ChannelKind::Slack,
            url: Secret::new("https://hooks.slack.com/services/T0/B0/secret", true),
            level: Level::Warning,
            nodes: vec!["lyra".into()],
            drift_types: vec!["missing".into()],
            remind_every_ms: None,
            rate_limit: RateLimit::default(),
        }
    }

    fn notice(level: Level, node: &str, drift: Option<&str>) -> Notice {
        let mut n = Notice::new(
            NoticeKind::DriftStarted,
            level,
            "t",
            jiff::Timestamp::UNIX_EPOCH,
        );
        n.node = Some(node.into());
        n.drift = drift.map(Into::into);
        n
    }

    #[test]
    fn mask_url_keeps_scheme_and_host_only() {
        assert_eq!(
            mask_url("https://user:pw@discord.com:443/api/webhooks/1/abc?x=1"),
            "https://discord.com:443/***"
        );
        assert_eq!(mask_url("not a url"), "***");
        let t = Target::new(2, channel());
        assert_eq!(t.label, "slack#2 (https://hooks.slack.com/***)");
        assert_eq!(t.metric_name(), "slack#2");
    }

    #[test]
    fn wants_filters_by_level_node_and_drift_type() {
        let ch = channel();
        assert!(wants(&ch, &notice(Level::Warning, "lyra", Some("missing"))));
        assert!(!wants(&ch, &notice(Level::Info, "lyra", Some("missing"))));
        assert!(!wants(
            &ch,
            &notice(Level::Critical, "vega", Some("missing"))
        ));
        assert!(!wants(
            &ch,
            &notice(Level::Critical, "lyra", Some("status"))
        ));
        // Not a drift: the drift type filter does not apply.
        assert!(wants(&ch, &notice(Level::Critical, "lyra", None)));
        let mut t = notice(Level::Info, "vega", Some("x"));
        t.kind = NoticeKind::Test;
        assert!(wants(&ch, &t));
    }

    #[test]
    fn rate_window_holds_over_the_limit_and_reports_the_count_next_window() {
        let mut w = RateWindow::new(RateLimit {
            max: 2,
            per_ms: 1000,
        });
        let t0 = Instant::now();
        assert_eq!(w.admit(t0), Admit::Send { held_before: 0 });
        assert_eq!(w.admit(t0), Admit::Send { held_before: 0 });
        assert_eq!(w.admit(t0), Admit::Hold);
        assert_eq!(w.admit(t0 + Duration::from_millis(500)), Admit::Hold);
        assert_eq!(w.flush_at(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(
            w.admit(t0 + Duration::from_millis(1000)),
            Admit::Send { held_before: 2 }
        );
        assert_eq!(w.flush_at(), None);
    }

    #[test]
    fn rate_window_flush_reports_held_messages_without_a_new_one() {
        let mut w = RateWindow::new(RateLimit {
            max: 1,
            per_ms: 100,
        });
        let t0 = Instant::now();
        let _ = w.admit(t0);
        assert_eq!(w.admit(t0), Admit::Hold);
        assert_eq!(w.flush(t0 + Duration::from_millis(50)), 0);
        assert_eq!(w.flush(t0 + Duration::from_millis(100)), 1);
        // The report used the new window's only slot.
        assert_eq!(w.admit(t0 + Duration::from_millis(110)), Admit::Hold);
    }

    /// A receiver on 127.0.0.1 that keeps every body's `event` field (generic webhook format).
    async fn receiver() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
        let got: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let keep = Arc::clone(&got);
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: axum::Json<serde_json::Value>| {
                let keep = Arc::clone(&keep);
                async move {
                    if let Ok(mut g) = keep.lock() {
                        g.push(body["event"].as_str().unwrap_or_default().to_owned());
                    }
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}/hook"), got)
    }

    fn events(got: &Arc<std::sync::Mutex<Vec<String>>>) -> Vec<String> {
        got.lock().map(|g| g.clone()).unwrap_or_default()
    }

    async fn start(ch: Channel) -> mpsc::Sender<Notice> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (tx, rx) = mpsc::channel(16);
        let client = reqwest::Client::new();
        tokio::spawn(run(
            Target::new(0, ch),
            client,
            rx,
            Arc::new(Metrics::new()),
            Retry::default(),
        ));
        tx
    }

    fn hook(url: String) -> Channel {
        Channel {
            kind: ChannelKind::Webhook,
            url: Secret::new(url, true),
            level: Level::Info,
            nodes: Vec::new(),
            drift_types: Vec::new(),
            remind_every_ms: None,
            rate_limit: RateLimit::default(),
        }
    }

    fn drift(kind: NoticeKind) -> Notice {
        let mut n = notice(Level::Warning, "lyra", Some("status"));
        n.kind = kind;
        n.resource = Some("docker/lyra/container/web".into());
        n
    }

    #[tokio::test]
    async fn run_reminds_while_a_drift_lasts_and_stops_when_resolved() {
        let (url, got) = receiver().await;
        let tx = start(Channel {
            remind_every_ms: Some(300),
            ..hook(url)
        })
        .await;
        tx.send(drift(NoticeKind::DriftStarted))
            .await
            .expect("send");
        tokio::time::sleep(Duration::from_millis(1000)).await;
        tx.send(drift(NoticeKind::DriftResolved))
            .await
            .expect("send");
        // Delivered in order; on a loaded machine that may take a while.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while events(&got).last().map(String::as_str) != Some("drift_resolved")
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let seen = events(&got);
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(events(&got), seen, "no reminder after the drift ended");
        assert_eq!(seen.first().map(String::as_str), Some("drift_started"));
        assert_eq!(seen.last().map(String::as_str), Some("drift_resolved"));
        let reminders = seen.iter().filter(|e| *e == "reminder").count();
        assert!((2..=4).contains(&reminders), "{seen:?}");
    }

    #[tokio::test]
    async fn run_holds_messages_over_the_rate_limit_and_sums_them_up() {
        let (url, got) = receiver().await;
        let tx = start(Channel {
            rate_limit: RateLimit {
                max: 2,
                per_ms: 400,
            },
            ..hook(url)
        })
        .await;
        for _ in 0..5 {
            tx.send(notice(Level::Critical, "lyra", None))
                .await
                .expect("send");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(events(&got).len(), 2);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            events(&got),
            ["drift_started", "drift_started", "suppressed"]
        );
    }

    #[test]
    fn send_error_4xx_is_final_5xx_and_429_are_transient() {
        let s = |status| SendError::Status {
            channel: "c".into(),
            status,
        };
        assert!(s(500).is_transient());
        assert!(s(429).is_transient());
        assert!(!s(404).is_transient());
        assert!(!s(404).hints().is_empty());
    }
}
