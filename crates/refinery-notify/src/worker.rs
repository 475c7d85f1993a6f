//! One channel's task: its filters, `min_duration` and bursts ([`Gate`]), its rate limit, its
//! reminders, and delivery with retries. Each channel has its own task and bounded queue, so a
//! slow or failing channel delays no other channel and never the daemon.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use refinery_core::manifest::{Channel, Level};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::gate::{Gate, Out};
use crate::metrics::AlertCounter;
use crate::notice::{Notice, NoticeKind};
use crate::rate_window::{Admit, RateWindow};
use crate::send::{Retry, post};
use crate::target::Target;

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

/// A drift (or burst) the channel was told of, for reminders.
struct Open {
    notice: Notice,
    last: Instant,
}

/// The channel's state between messages.
struct Worker {
    target: Target,
    client: reqwest::Client,
    metrics: Arc<dyn AlertCounter>,
    retry: Retry,
    gate: Gate,
    window: RateWindow,
    remind: Option<Duration>,
    open: HashMap<String, Open>,
}

/// The channel's task: takes messages from its queue until the queue closes, then lets out
/// what it gathered for a burst.
pub async fn run(
    target: Target,
    client: reqwest::Client,
    mut rx: mpsc::Receiver<Notice>,
    metrics: Arc<dyn AlertCounter>,
    retry: Retry,
) {
    let mut w = Worker {
        gate: Gate::new(&target.channel),
        window: RateWindow::new(target.channel.rate_limit),
        remind: target.channel.remind_every_ms.map(Duration::from_millis),
        open: HashMap::new(),
        target,
        client,
        metrics,
        retry,
    };
    loop {
        let wake = [w.next_reminder(), w.window.flush_at(), w.gate.next_wake()]
            .into_iter()
            .flatten()
            .min();
        let received = match wake {
            Some(at) => tokio::select! {
                n = rx.recv() => Some(n),
                () = tokio::time::sleep_until(at) => None,
            },
            None => Some(rx.recv().await),
        };
        let now = Instant::now();
        match received {
            Some(None) => break,
            Some(Some(n)) => {
                if !wants(&w.target.channel, &n) {
                    w.metrics.alert(w.target.metric_name(), "filtered");
                    continue;
                }
                let out = w.gate.on(n, now);
                w.let_out(out).await;
            }
            None => {
                let out = w.gate.tick(now);
                w.let_out(out).await;
                let held = w.window.flush(now);
                if held > 0 {
                    let s = suppressed(held, now_ts());
                    w.deliver(&s).await;
                }
                w.remind_due(now).await;
            }
        }
    }
    let (out, dropped) = w.gate.drain();
    if dropped > 0 {
        tracing::debug!(channel = %w.target.label, dropped, "drifts shorter than `min_duration` so far were not announced before the channel stopped");
    }
    w.let_out(out).await;
}

impl Worker {
    fn next_reminder(&self) -> Option<Instant> {
        let every = self.remind?;
        self.open.values().map(|o| o.last + every).min()
    }

    /// What the gate let out: sent (through the rate limit) or counted.
    async fn let_out(&mut self, out: Vec<Out>) {
        for o in out {
            match o {
                Out::Send(n) => {
                    self.track(&n);
                    self.send_limited(n).await;
                }
                Out::Quiet(n) => {
                    self.metrics
                        .alert(self.target.metric_name(), "under_min_duration");
                    tracing::debug!(channel = %self.target.label, title = %n.title, "drift ended before `min_duration`: not announced");
                }
            }
        }
    }

    /// Keeps what was announced for reminders.
    fn track(&mut self, n: &Notice) {
        let now = Instant::now();
        match n.kind {
            NoticeKind::DriftStarted => {
                if let Some(key) = n.drift_key() {
                    self.open.insert(
                        key,
                        Open {
                            notice: n.clone(),
                            last: now,
                        },
                    );
                }
            }
            NoticeKind::DriftResolved => {
                if let Some(key) = n.drift_key() {
                    self.open.remove(&key);
                }
            }
            NoticeKind::BurstStarted => {
                if let Some(key) = Gate::burst_key(n) {
                    self.open.insert(
                        key,
                        Open {
                            notice: n.clone(),
                            last: now,
                        },
                    );
                }
            }
            NoticeKind::BurstResolved => {
                // The closing message carries the burst's title with `resolved`: find the burst by
                // its drifts.
                let ended: Vec<String> = n.drifts.iter().map(|d| d.resource.clone()).collect();
                self.open.retain(|_, o| {
                    o.notice.kind != NoticeKind::BurstStarted
                        || !o.notice.drifts.iter().all(|d| ended.contains(&d.resource))
                });
            }
            _ => {}
        }
    }

    async fn remind_due(&mut self, now: Instant) {
        let Some(every) = self.remind else {
            return;
        };
        let due: Vec<Notice> = self
            .open
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
            self.send_limited(r).await;
        }
    }

    async fn send_limited(&mut self, n: Notice) {
        match self.window.admit(Instant::now()) {
            Admit::Hold => {
                self.metrics
                    .alert(self.target.metric_name(), "rate_limited");
                tracing::debug!(channel = %self.target.label, title = %n.title, "alert held back by the rate limit");
            }
            Admit::Send { held_before } => {
                if held_before > 0 {
                    self.deliver(&suppressed(held_before, now_ts())).await;
                }
                self.deliver(&n).await;
            }
        }
    }

    async fn deliver(&self, n: &Notice) {
        let m: &dyn AlertCounter = self.metrics.as_ref();
        match post(&self.client, &self.target, n, self.retry, Some(m)).await {
            Ok(()) => {
                m.alert(self.target.metric_name(), "sent");
                tracing::debug!(channel = %self.target.label, kind = n.kind.as_str(), title = %n.title, "alert sent");
            }
            Err(e) => {
                m.alert(self.target.metric_name(), "failed");
                let cause = std::error::Error::source(&e)
                    .map(|c| self.target.redact(&c.to_string()))
                    .unwrap_or_default();
                tracing::warn!(channel = %self.target.label, error = %e, cause = %cause, title = %n.title, "alert not delivered");
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
        Level::Warning,
        format!("{count} alerts held back by the rate limit"),
        time,
    );
    n.text = "see `refinery ledger show` or the status page for what happened".into();
    n
}

#[cfg(test)]
mod tests {
    use refinery_core::Secret;
    use refinery_core::manifest::Destination;

    use super::*;

    fn channel() -> Channel {
        Channel {
            nodes: vec!["lyra".into()],
            drift_types: vec!["missing".into()],
            ..Channel::new(Destination::Slack {
                url: Secret::new("https://hooks.slack.com/services/T0/B0/secret", true),
            })
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
}
