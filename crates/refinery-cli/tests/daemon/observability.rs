//! Alerts, metrics and the status page of `refinery run`, end to end: a real webhook receiver on
//! 127.0.0.1, the real engine, `/metrics` scraped and parsed, the status page followed over
//! server-sent events and rendered by headless Chromium.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use refinery_core::ContainerState;
use refinery_docker::testsupport;

use crate::common::{Env, IMAGE};
use crate::harness::{Daemon, PATIENCE, eventually};
use crate::receiver::{Received, Receiver};

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}

/// A port nothing listens on right now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The headline of a message, whatever the channel's format.
fn headline(channel: &str, body: &serde_json::Value) -> String {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    match channel {
        "discord" => s(&body["content"]),
        "slack" | "mattermost" => s(&body["text"]),
        _ => format!(
            "{} {} {}",
            s(&body["event"]),
            s(&body["drift"]),
            s(&body["resource"])
        ),
    }
}

/// Messages a channel answered 200 to, by headline.
fn delivered(rx: &Receiver, channel: &str) -> Vec<String> {
    rx.got(channel)
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| headline(channel, &r.body))
        .collect()
}

fn count(lines: &[String], needle: &str) -> usize {
    lines.iter().filter(|l| l.contains(needle)).count()
}

/// `name{labels}` → value, from the Prometheus text format.
pub(crate) fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

pub(crate) async fn get(url: &str) -> (u16, String) {
    match client().get(url).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

/// The status of one resource in `/api/v1/status`.
fn resource_status(status: &serde_json::Value, id_suffix: &str) -> Option<String> {
    status["nodes"].as_array()?.iter().find_map(|n| {
        n["resources"].as_array()?.iter().find_map(|r| {
            r["id"]
                .as_str()?
                .ends_with(id_suffix)
                .then(|| r["status"].as_str().unwrap_or_default().to_owned())
        })
    })
}

#[tokio::test]
async fn daemon_alerts_once_per_drift_start_and_end_on_every_channel_and_serves_metrics() {
    let env = Env::new().await;
    let rx = Receiver::start().await;
    rx.fail_first("slack", 1);
    let name = env.name("web");
    let commit = env.commit_manifest(&format!(
        "containers:\n  - name: {name}\n    image: {IMAGE}\n\
         alerting:\n  channels:\n\
         \x20   - {{type: discord, webhook_url: \"{}\"}}\n\
         \x20   - {{type: slack, webhook_url: \"{}\"}}\n\
         \x20   - {{type: mattermost, webhook_url: \"{}\"}}\n\
         \x20   - {{type: webhook, url: \"{}\", level: info}}\n\
         \x20   - {{type: webhook, url: \"{}\", drift_types: [missing]}}\n",
        rx.url("discord"),
        rx.url("slack"),
        rx.url("mattermost"),
        rx.url("webhook"),
        rx.url("missing-only"),
    ));
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut d = Daemon::start(&env, &["--check-interval", "2s", "--listen", &listen]);
    let base = format!("http://{listen}");

    // Missing at start: created. Then a real crash: started again.
    let c = eventually("container running", &mut d, || async {
        env.container("web")
            .await
            .filter(|c| c.state == ContainerState::Running)
    })
    .await;
    let resolved_missing = format!("[resolved] docker/local/container/{name}: missing drift");
    eventually("missing drift resolved on discord", &mut d, || async {
        (count(&delivered(&rx, "discord"), &resolved_missing) > 0).then_some(())
    })
    .await;
    // Engine events within a second of Refinery's own action count as its own: crash later. The
    // heal counts in the event-to-action metric from the death (`State.FinishedAt`), whether the
    // pass its `die` event starts or a periodic pass finds the crash first.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    testsupport::crash_container(&env.rt, &c.id)
        .await
        .expect("crash");
    let resolved_status = format!("[resolved] docker/local/container/{name}: status drift");
    eventually(
        "every channel told of the status drift's end",
        &mut d,
        || async {
            let all = ["discord", "slack", "mattermost"]
                .iter()
                .all(|ch| count(&delivered(&rx, ch), &resolved_status) == 1)
                && count(&delivered(&rx, "webhook"), "drift_resolved status") == 1;
            all.then_some(())
        },
    )
    .await;

    // Several passes later: still one message per start and per end (not one per pass).
    tokio::time::sleep(Duration::from_millis(4500)).await;
    for ch in ["discord", "slack", "mattermost"] {
        let got = delivered(&rx, ch);
        for needle in [
            format!("[drift] docker/local/container/{name}: missing drift"),
            resolved_missing.clone(),
            format!("[drift] docker/local/container/{name}: status drift"),
            resolved_status.clone(),
        ] {
            assert_eq!(count(&got, &needle), 1, "{ch}: `{needle}` once in {got:#?}");
        }
    }
    let hook = delivered(&rx, "webhook");
    for needle in [
        "drift_started missing",
        "drift_resolved missing",
        "drift_started status",
        "drift_resolved status",
    ] {
        assert_eq!(
            count(&hook, needle),
            1,
            "webhook: `{needle}` once in {hook:#?}"
        );
    }
    // The info-level channel also hears of the revision; the warning-level ones do not.
    assert!(count(&hook, "alert") >= 1, "{hook:#?}");
    assert_eq!(count(&delivered(&rx, "discord"), "revision"), 0);
    // The drift type filter: only the missing drift.
    let only = delivered(&rx, "missing-only");
    assert_eq!(count(&only, "missing"), 2, "{only:#?}");
    assert_eq!(count(&only, "status"), 0, "{only:#?}");

    // Each channel's own format.
    let first = |ch: &str| -> Received {
        rx.got(ch)
            .into_iter()
            .find(|r| r.status == 200)
            .expect("a message")
    };
    let discord = first("discord").body;
    assert!(discord["embeds"][0]["color"].is_u64(), "{discord}");
    assert!(discord["embeds"][0]["fields"].is_array(), "{discord}");
    let slack = first("slack").body;
    assert_eq!(slack["blocks"][0]["type"], "header", "{slack}");
    let mm = first("mattermost").body;
    assert!(
        mm["attachments"][0]["color"]
            .as_str()
            .is_some_and(|c| c.starts_with('#')),
        "{mm}"
    );
    let wh = first("webhook").body;
    assert_eq!(wh["version"], 1, "{wh}");
    assert_eq!(wh["source"], "refinery", "{wh}");

    // Slack's first request got HTTP 500: the same message came again and went through.
    let slack_all = rx.got("slack");
    assert_eq!(slack_all[0].status, 500);
    assert_eq!(
        headline("slack", &slack_all[0].body),
        headline("slack", &slack_all[1].body),
        "retried the same message"
    );

    // Metrics.
    let (code, text) = get(&format!("{base}/metrics")).await;
    assert_eq!(code, 200, "{text}");
    let m = parse_metrics(&text);
    let val = |k: &str| {
        *m.get(k)
            .unwrap_or_else(|| panic!("metric `{k}` in\n{text}"))
    };
    assert_eq!(val("refinery_node_reachable{node=\"local\"}"), 1.0);
    assert_eq!(val("refinery_drifts{node=\"local\",drift=\"status\"}"), 0.0);
    assert_eq!(
        val("refinery_drifts{node=\"local\",drift=\"missing\"}"),
        0.0
    );
    assert!(val("refinery_actions_total{node=\"local\",outcome=\"created\"}") >= 1.0);
    assert!(val("refinery_pass_duration_seconds_count") >= 3.0);
    assert!(
        val("refinery_event_to_action_seconds_count") >= 1.0,
        "{text}\nlog:\n{}",
        d.log_text()
    );
    assert!(val("refinery_last_successful_pass_timestamp_seconds{node=\"local\"}") > 1.7e9);
    assert_eq!(
        val(&format!(
            "refinery_node_revision_info{{node=\"local\",revision=\"{commit}\"}}"
        )),
        1.0
    );
    assert_eq!(
        val(&format!(
            "refinery_revision_info{{role=\"in_force\",revision=\"{commit}\"}}"
        )),
        1.0
    );
    assert!(val("refinery_ledger_entries_total") >= 5.0);
    assert!(val("refinery_ledger_seq") >= 5.0);
    assert_eq!(
        val("refinery_alerts_total{channel=\"slack#1\",result=\"retried\"}"),
        1.0
    );
    assert!(val("refinery_alerts_total{channel=\"discord#0\",result=\"sent\"}") >= 4.0);
    assert!(text.contains("refinery_build_info{version="), "{text}");

    // JSON status, health, readiness.
    let (code, body) = get(&format!("{base}/api/v1/status")).await;
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&body).expect("status JSON");
    assert_eq!(status["revision"]["in_force"], commit.as_str());
    assert!(status["alerts"].as_array().is_some_and(|a| !a.is_empty()));
    assert!(status["ledger"].as_array().is_some_and(|a| !a.is_empty()));
    assert_eq!(get(&format!("{base}/healthz")).await.0, 200);
    assert_eq!(get(&format!("{base}/readyz")).await.0, 200);

    let log = d.stop().await;
    // Webhook URLs are masked in the log and never reach the ledger.
    assert!(!log.contains("/hook/"), "a webhook path in the log:\n{log}");
    assert!(log.contains(&format!(
        "http://127.0.0.1:{}/***",
        rx.addr.expect("addr").port()
    )));
    let ledger = std::fs::read_to_string(d_ledger(&env)).unwrap_or_default();
    assert!(!ledger.contains("/hook/"));
}

fn d_ledger(env: &Env) -> std::path::PathBuf {
    env.repo.path().join("ledger/container_ledger.jsonl")
}

/// Reads `status` events from `/api/v1/events` into a channel.
fn follow_events(url: String) -> tokio::sync::mpsc::UnboundedReceiver<serde_json::Value> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let Ok(mut resp) = reqwest::Client::new().get(&url).send().await else {
            return;
        };
        let mut buf = String::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                let data: String = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if let Ok(v) = serde_json::from_str(&data) {
                    let _ = tx.send(v);
                }
            }
        }
    });
    rx
}

#[tokio::test]
async fn daemon_status_page_shows_drift_then_heal_live() {
    let env = Env::new().await;
    let name = env.name("web");
    // A grace period keeps the drift on screen for a moment before it is healed.
    env.commit_manifest(&format!(
        "containers:\n  - name: {name}\n    image: {IMAGE}\n\
         drift_rules:\n  status_drift: {{action: restart, grace_period: 3}}\n"
    ));
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut d = Daemon::start(&env, &["--listen", &listen]);
    let base = format!("http://{listen}");
    eventually("in sync on the status API", &mut d, || async {
        let (code, body) = get(&format!("{base}/api/v1/status")).await;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (code == 200 && resource_status(&v, &name).as_deref() == Some("in_sync")).then_some(())
    })
    .await;
    let running = env.existing("web").await;

    // A browser loads the page once and stays on it while the container is killed and healed.
    let page = crate::chromium::Page::open(&format!("{base}/"), free_port());
    eventually("the page loaded and in sync", &mut d, || async {
        page.title().await.filter(|t| t == "Refinery: in sync")
    })
    .await;
    let mut events = follow_events(format!("{base}/api/v1/events"));
    // The first event is the picture now.
    let first = tokio::time::timeout(PATIENCE, events.recv())
        .await
        .ok()
        .flatten()
        .expect("a first status event");
    assert_eq!(resource_status(&first, &name).as_deref(), Some("in_sync"));

    testsupport::crash_container(&env.rt, &running.id)
        .await
        .expect("crash");
    // The page shows the drift, then the heal, without a reload.
    eventually("the page shows the drift", &mut d, || async {
        page.title().await.filter(|t| t == "Refinery: 1 drift")
    })
    .await;
    eventually("the page shows the heal", &mut d, || async {
        page.title().await.filter(|t| t == "Refinery: in sync")
    })
    .await;

    // The same, over server-sent events.
    let mut seen = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while !(seen.contains(&"drift".to_owned())
        && seen.last().map(String::as_str) == Some("in_sync"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(v)) = tokio::time::timeout(left, events.recv()).await else {
            panic!(
                "no drift then heal over SSE; seen {seen:?}\nlog:\n{}",
                d.log_text()
            );
        };
        if let Some(s) = resource_status(&v, &name)
            && seen.last() != Some(&s)
        {
            seen.push(s);
        }
    }
    assert_eq!(seen.iter().filter(|s| *s == "drift").count(), 1, "{seen:?}");
    assert!(
        seen.ends_with(&["drift".to_owned(), "in_sync".to_owned()]),
        "{seen:?}"
    );
    d.stop().await;
}

#[tokio::test]
async fn daemon_listen_elsewhere_without_a_token_is_refused_and_with_one_needs_it() {
    let env = Env::new().await;
    let name = env.name("web");
    env.commit_manifest(&format!(
        "containers:\n  - name: {name}\n    image: {IMAGE}\n"
    ));
    let port = free_port();
    let run = env
        .refinery(&["run", "--listen", &format!("0.0.0.0:{port}")])
        .await;
    run.code(2)
        .stderr_has("is not a loopback address and no bearer token is set")
        .stderr_has("hint: set `REFINERY_STATUS_TOKEN`");

    let dir = tempfile::tempdir().expect("temp dir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-token\n").expect("token file");
    let listen = format!("0.0.0.0:{port}");
    let token_arg = token_file.display().to_string();
    let mut d = Daemon::start(&env, &["--listen", &listen, "--token-file", &token_arg]);
    let base = format!("http://127.0.0.1:{port}");
    eventually("ready", &mut d, || async {
        (get(&format!("{base}/readyz")).await.0 == 200).then_some(())
    })
    .await;
    assert_eq!(get(&format!("{base}/healthz")).await.0, 200);
    assert_eq!(get(&format!("{base}/api/v1/status")).await.0, 401);
    assert_eq!(get(&format!("{base}/metrics")).await.0, 401);
    assert_eq!(get(&format!("{base}/?token=wrong")).await.0, 401);
    assert_eq!(get(&format!("{base}/?token=s3cret-token")).await.0, 200);
    let authed = client()
        .get(format!("{base}/api/v1/status"))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .expect("request");
    assert_eq!(authed.status().as_u16(), 200);
    d.stop().await;
}

#[tokio::test]
async fn alert_test_sends_to_each_channel_and_reports_failures_masked() {
    let env = Env::new().await;
    let rx = Receiver::start().await;
    rx.always("gone", 404);
    env.commit_file(
        "refinery.yaml",
        &format!(
            "config: {{selector: \"{}\", discord_webhook: \"{}\"}}\nallow_empty: true\n\
             alerting:\n  channels:\n    - {{type: webhook, url: \"{}\"}}\n    - {{type: slack, url: \"{}\"}}\n",
            env.selector(),
            rx.url("discord"),
            rx.url("gone"),
            rx.url("slack"),
        ),
    );
    let run = env.refinery(&["alert", "test"]).await;
    let port = rx.addr.expect("addr").port();
    run.code(1)
        .stdout_has(&format!("webhook#0 (http://127.0.0.1:{port}/***) failed"))
        .stdout_has("it answered HTTP 404")
        .stdout_has("hint: the webhook URL may have been revoked")
        .stdout_has(&format!("slack#1 (http://127.0.0.1:{port}/***) sent"))
        .stdout_has(&format!("discord#2 (http://127.0.0.1:{port}/***) sent"));
    assert!(!run.stdout.contains("/hook/") && !run.stderr.contains("/hook/"));
    // 404 is final: one request, no retry.
    assert_eq!(rx.got("gone").len(), 1);
    let discord = rx.got("discord");
    assert_eq!(discord.len(), 1);
    assert!(
        discord[0].body["content"]
            .as_str()
            .is_some_and(|c| c.contains("[test]"))
    );
    assert_eq!(rx.got("slack").len(), 1);

    // Without any channel: a usage error with a hint.
    env.commit_file(
        "refinery.yaml",
        &format!(
            "config: {{selector: \"{}\"}}\nallow_empty: true\n",
            env.selector()
        ),
    );
    env.refinery(&["alert", "test"])
        .await
        .code(2)
        .stderr_has("failed to find an alert channel")
        .stderr_has("hint: add `alerting.channels`");
}

/// `min_duration` and bursts through the real daemon: three containers missing at start are
/// created within a second. A channel with `burst: 2` gets one message listing the three and one
/// when they are all resolved; a channel with `min_duration: 1h` gets nothing, and its quick
/// heals are counted in `/metrics` as `under_min_duration` (the positive proof that it saw them).
#[tokio::test]
async fn daemon_sends_a_burst_as_one_message_and_counts_heals_under_min_duration() {
    let env = Env::new().await;
    let rx = Receiver::start().await;
    let names: Vec<String> = ["a", "b", "c"].iter().map(|s| env.name(s)).collect();
    let containers: String = names
        .iter()
        .map(|n| format!("  - name: {n}\n    image: {IMAGE}\n"))
        .collect();
    env.commit_manifest(&format!(
        "containers:\n{containers}\
         alerting:\n  channels:\n\
         \x20   - {{type: webhook, url: \"{}\", min_duration: 1h}}\n\
         \x20   - {{type: webhook, url: \"{}\", burst: 2, group_wait: 1s}}\n",
        rx.url("quick"),
        rx.url("burst"),
    ));
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut d = Daemon::start(&env, &["--check-interval", "2s", "--listen", &listen]);

    let events = |ch: &str| -> Vec<serde_json::Value> {
        rx.got(ch)
            .into_iter()
            .filter(|r| r.status == 200)
            .map(|r| r.body)
            .collect()
    };
    let burst_resolved = eventually("the burst resolved", &mut d, || async {
        events("burst")
            .into_iter()
            .find(|b| b["event"] == "burst_resolved")
    })
    .await;
    let got = events("burst");
    let started: Vec<_> = got
        .iter()
        .filter(|b| b["event"] == "burst_started")
        .collect();
    assert_eq!(started.len(), 1, "one burst message: {got:#?}");
    let listed = |b: &serde_json::Value| -> Vec<String> {
        b["drifts"]
            .as_array()
            .map(|a| a.iter().map(|d| d.to_string()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    for n in &names {
        assert!(
            listed(started[0]).iter().any(|d| d.contains(n.as_str())),
            "`{n}` listed in the burst: {:#}",
            started[0]
        );
        assert!(
            listed(&burst_resolved)
                .iter()
                .any(|d| d.contains(n.as_str())),
            "`{n}` listed as resolved: {burst_resolved:#}"
        );
    }
    assert_eq!(
        got.iter()
            .filter(|b| b["event"] == "drift_started" || b["event"] == "drift_resolved")
            .count(),
        0,
        "no message per drift on the burst channel: {got:#?}"
    );

    let base = format!("http://{listen}");
    let counted = eventually("quick heals counted under min_duration", &mut d, || async {
        let (_, text) = get(&format!("{base}/metrics")).await;
        parse_metrics(&text)
            .get("refinery_alerts_total{channel=\"webhook#0\",result=\"under_min_duration\"}")
            .copied()
            .filter(|v| *v >= 3.0)
    })
    .await;
    assert_eq!(
        counted, 3.0,
        "one count per drift healed within min_duration"
    );
    let quick = events("quick");
    assert!(
        quick
            .iter()
            .all(|b| !b["event"].as_str().unwrap_or_default().contains("drift")),
        "nothing about the quick drifts was sent on the min_duration channel: {quick:#?}"
    );
}
