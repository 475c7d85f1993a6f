//! `min_duration` and bursts through a running channel (its task, its gate, its rate limit and a
//! real HTTP delivery to a receiver on 127.0.0.1), on paused tokio time: what was sent, and when.

mod support;

use std::sync::Arc;
use std::time::Duration;

use refinery_core::Secret;
use refinery_core::manifest::{Channel, Destination, Level};
use refinery_notify::{NoCounter, Notice, NoticeKind, Notifier};
use support::Receiver;
use tokio::time::Instant;

fn drift(kind: NoticeKind, name: &str) -> Notice {
    let level = Level::Warning;
    let title = format!("docker/lyra/container/{name}: status drift");
    let mut n = Notice::new(kind, level, title, jiff::Timestamp::UNIX_EPOCH);
    n.node = Some("lyra".into());
    n.resource = Some(format!("docker/lyra/container/{name}"));
    n.drift = Some("status".into());
    n.text = "exited (code 137)".into();
    n
}

/// One webhook channel to the receiver, with `set` applied.
fn notifier(rx: &Receiver, set: impl FnOnce(&mut Channel)) -> Notifier {
    let mut ch = Channel::new(Destination::Webhook {
        url: Secret::new(rx.url("/hook"), true),
    });
    set(&mut ch);
    let mut n = Notifier::new(Arc::new(NoCounter));
    n.configure(vec![ch]);
    n
}

/// `(event, resource or title, seconds after t0)` of everything received.
fn seen(rx: &Receiver, t0: Instant) -> Vec<(String, String, u64)> {
    rx.got()
        .iter()
        .map(|r| {
            let b = r.json();
            let what = b["resource"]
                .as_str()
                .or(b["title"].as_str())
                .unwrap_or_default()
                .to_owned();
            (
                b["event"].as_str().unwrap_or_default().to_owned(),
                what,
                r.at.duration_since(t0).as_secs(),
            )
        })
        .collect()
}

/// Lets the channel's task and the receiver run at the current (paused) instant.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// Queues a message and lets the channel take it now (before time moves on).
async fn send(n: &Notifier, notice: Notice) {
    n.send(&notice);
    settle().await;
}

fn s(v: &str) -> String {
    v.to_owned()
}

#[tokio::test(start_paused = true)]
async fn min_duration_counts_a_quick_heal_and_announces_a_lasting_drift_once_it_lasted() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rx = Receiver::start().await;
    let n = notifier(&rx, |c| {
        c.min_duration_ms = 30_000;
        c.group_wait_ms = 0;
    });
    let t0 = Instant::now();
    // `web` dies and is healed within 250 ms: nothing is sent, then or later.
    send(&n, drift(NoticeKind::DriftStarted, "web")).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    send(&n, drift(NoticeKind::DriftResolved, "web")).await;
    // `db` stays down: announced once it has lasted 30 s, its end too.
    send(&n, drift(NoticeKind::DriftStarted, "db")).await;
    tokio::time::sleep(Duration::from_secs(29)).await;
    settle().await;
    assert!(rx.got().is_empty(), "{:?}", seen(&rx, t0));
    tokio::time::sleep(Duration::from_secs(2)).await;
    settle().await;
    assert_eq!(
        seen(&rx, t0),
        [(s("drift_started"), s("docker/lyra/container/db"), 30)]
    );
    assert!(
        rx.got()[0].json()["text"]
            .as_str()
            .is_some_and(|t| t.ends_with("lasting 30s")),
        "{:?}",
        rx.got()[0].body
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    send(&n, drift(NoticeKind::DriftResolved, "db")).await;
    settle().await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    settle().await;
    assert_eq!(
        seen(&rx, t0),
        [
            (s("drift_started"), s("docker/lyra/container/db"), 30),
            (s("drift_resolved"), s("docker/lyra/container/db"), 41),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn burst_of_more_than_burst_starts_is_one_message_and_one_when_all_resolved() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rx = Receiver::start().await;
    let n = notifier(&rx, |c| c.level = Level::Info);
    let t0 = Instant::now();
    // A node reboot: 8 drifts start within 2 s (more than the default burst of 5).
    for i in 0..8 {
        send(&n, drift(NoticeKind::DriftStarted, &format!("c{i}"))).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    settle().await;
    assert!(rx.got().is_empty(), "gathering for group_wait (5 s)");
    tokio::time::sleep(Duration::from_secs(4)).await;
    settle().await;
    let got = rx.got();
    assert_eq!(got.len(), 1, "{:?}", seen(&rx, t0));
    let b = got[0].json();
    assert_eq!(b["event"], "burst_started");
    assert_eq!(b["title"], "8 drifts started on `lyra`");
    assert_eq!(b["drifts"].as_array().map(Vec::len), Some(8));
    assert_eq!(
        got[0].at.duration_since(t0).as_secs(),
        5,
        "group_wait after the first start"
    );
    // They heal one by one; one message when the last is resolved.
    for i in 0..8 {
        send(&n, drift(NoticeKind::DriftResolved, &format!("c{i}"))).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    settle().await;
    assert_eq!(
        seen(&rx, t0),
        [
            (s("burst_started"), s("8 drifts started on `lyra`"), 5),
            (s("burst_resolved"), s("8 drifts on `lyra` resolved"), 13),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn burst_at_most_burst_starts_go_out_each_after_group_wait() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rx = Receiver::start().await;
    let n = notifier(&rx, |c| c.burst = 2);
    let t0 = Instant::now();
    send(&n, drift(NoticeKind::DriftStarted, "a")).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    send(&n, drift(NoticeKind::DriftStarted, "b")).await;
    // `b` ends inside the window: its end follows its start.
    send(&n, drift(NoticeKind::DriftResolved, "b")).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    settle().await;
    assert_eq!(
        seen(&rx, t0),
        [
            (s("drift_started"), s("docker/lyra/container/a"), 5),
            (s("drift_started"), s("docker/lyra/container/b"), 5),
            (s("drift_resolved"), s("docker/lyra/container/b"), 5),
        ]
    );
    // Another start later opens a window of its own.
    send(&n, drift(NoticeKind::DriftStarted, "c")).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    settle().await;
    assert_eq!(seen(&rx, t0).last().map(|e| e.2), Some(11));
}

#[tokio::test(start_paused = true)]
async fn group_wait_zero_sends_at_once_and_other_messages_are_never_held() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rx = Receiver::start().await;
    let n = notifier(&rx, |c| {
        c.group_wait_ms = 0;
        c.min_duration_ms = 60_000;
    });
    let t0 = Instant::now();
    let mut alert = Notice::new(
        NoticeKind::Alert,
        Level::Critical,
        "node `lyra`",
        jiff::Timestamp::UNIX_EPOCH,
    );
    alert.text = "engine unreachable".into();
    send(&n, alert).await;
    settle().await;
    assert_eq!(seen(&rx, t0), [(s("alert"), s("node `lyra`"), 0)]);
}
