//! The push-to-running benchmark: `cargo bench -p refinery-cli --bench gitops`.
//!
//! How long after a `git push` the pushed container runs, when the forge's push webhook tells
//! `refinery run` while its `--fetch-interval` is an hour (so only the webhook can explain a fast
//! deploy), against the floor measured in the same run on the same engine: creating and starting
//! one container through the API until its `start` event. Target: within 1 s of the floor.
//!
//! Each run commits a manifest declaring one new container to a bare remote (the push), sends a
//! signed GitHub push webhook, and waits for that container's `start` event. Knob:
//! `REFINERY_BENCH_RUNS` (default 20). Everything it creates carries a run label and is removed at
//! the end. `cargo test` builds this target but runs nothing.

// Shared with the other benchmarks; this one reads only the log, not memory or CPU.
#[allow(dead_code)]
mod common;
use common::{DaemonProc, env_num, ms, pct};

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use refinery_core::{ContainerRuntime, EngineEvent};
use refinery_docker::DockerRuntime;
use refinery_docker::testsupport::{self, TestRun, minimal_spec};
use refinery_forge::Forge;
use refinery_forge::testing::webhook_headers;
use refinery_git::TestRepo;
use tokio::sync::mpsc;

const IMAGE: &str = "refinery-test-busybox:latest";
const SECRET: &str = "bench-webhook-secret";

type Events = mpsc::UnboundedReceiver<(String, String, Instant)>;

/// Follows container events of one run; each item is (action, name, when received).
fn follow(rt: &DockerRuntime, run: &TestRun) -> Events {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut events = Box::pin(rt.events(Some(&run.selector())));
    tokio::spawn(async move {
        while let Some(Ok(EngineEvent { action, name, .. })) = events.next().await {
            if tx
                .send((action, name.unwrap_or_default(), Instant::now()))
                .is_err()
            {
                return;
            }
        }
    });
    rx
}

async fn wait_event(rx: &mut Events, action: &str, name: &str) -> Instant {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some((a, n, at))) if a == action && n == name => return at,
            Ok(Some(_)) => {}
            _ => panic!("no `{action}` event for `{name}` within 30 s"),
        }
    }
}

fn manifest(run: &TestRun, name: &str) -> String {
    format!(
        "config: {{selector: \"{}={}\", check_interval: 3600}}\ncontainers:\n  - {{name: {name}, image: {IMAGE}}}\n",
        testsupport::RUN_LABEL,
        run.id()
    )
}

/// The `--listen 127.0.0.1:0` address the daemon logged.
async fn listen_base(daemon: &DaemonProc) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(daemon.log()).unwrap_or_default();
        if let Some(at) = text.find("status page on http://") {
            let rest = &text[at + "status page on ".len()..];
            if let Some(end) = rest[7..].find('/') {
                return rest[..end + 7].to_owned();
            }
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not listen within 30 s:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runs = env_num("REFINERY_BENCH_RUNS", 20) as usize;
    let rt = DockerRuntime::from_env().expect("DOCKER_HOST");
    rt.info().await.expect("a running Docker engine");
    testsupport::build_busybox_image(&rt, IMAGE)
        .await
        .expect("build the test image");
    let run = TestRun::new(&rt);
    eprintln!("bench: {runs} runs");
    let mut rx = follow(&rt, &run);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // --- Floor: create + start one container, until its `start` event ---
    let floor_name = run.name("floor");
    let req = run.request("floor", minimal_spec(&floor_name, IMAGE));
    let mut floor = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let id = rt.create(&req).await.expect("create");
        rt.start(&id).await.expect("start");
        let started = wait_event(&mut rx, "start", &floor_name).await;
        floor.push(ms(started - t0));
        rt.remove(&id).await.expect("remove");
        wait_event(&mut rx, "destroy", &floor_name).await;
    }

    // --- Push → running under `refinery run --fetch-interval 1h`, told by a webhook ---
    let remote = TestRepo::bare();
    let first = run.name("push-0");
    remote.write("refinery.yaml", manifest(&run, &first));
    remote.commit("first");
    let clone = TestRepo::clone_of(&remote);
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).expect("write the secret");
    let daemon = DaemonProc::start(
        clone.path(),
        dir.path(),
        &[
            "--branch",
            "main",
            "--fetch-interval",
            "1h",
            "--listen",
            "127.0.0.1:0",
            "--webhook-secret-file",
            &secret.to_string_lossy(),
        ],
        "info",
    );
    let base = listen_base(&daemon).await;
    wait_event(&mut rx, "start", &first).await;
    let http = reqwest::Client::new();
    let url = format!("{base}/api/v1/webhooks/github");
    let mut push = Vec::new();
    let mut previous = first;
    for i in 1..=runs {
        let name = run.name(&format!("push-{i}"));
        remote.write("refinery.yaml", manifest(&run, &name));
        let t0 = Instant::now();
        let sha = remote.commit(&format!("push {i}"));
        let body = serde_json::json!({
            "ref": "refs/heads/main", "before": "0".repeat(40), "after": sha,
            "repository": {"full_name": "acme/infra"},
        })
        .to_string()
        .into_bytes();
        let mut req = http.post(&url).body(body.clone());
        for (k, v) in webhook_headers(Forge::Github, SECRET, "push", &body) {
            req = req.header(k, v);
        }
        let status = req.send().await.expect("webhook").status().as_u16();
        assert_eq!(status, 202, "the webhook was not taken");
        let started = wait_event(&mut rx, "start", &name).await;
        push.push(ms(started - t0));
        // The previous container is no longer declared (the default rule only alerts): out of
        // the way before the next push.
        if let Ok(c) = rt.inspect(&previous).await {
            let _ = rt.remove(&c.id).await;
        }
        previous = name;
    }
    let fetched = std::fs::read_to_string(daemon.log())
        .unwrap_or_default()
        .matches("fetched from the remote")
        .count();
    drop(daemon);

    let floor_p50 = pct(&floor, 50);
    let push_p50 = pct(&push, 50);
    let push_p95 = pct(&push, 95);
    let over = push_p50 - floor_p50;
    println!(
        "{:<58} {:>10} {:>10} {:>7} {:>10} {:>4}",
        "FIGURE", "VALUE", "BASELINE", "RATIO", "TARGET", "MET"
    );
    println!(
        "{:<58} {:>7.1} ms {:>10} {:>7} {:>10} {:>4}",
        "floor: create + start → start event (p50)", floor_p50, "-", "-", "-", "-"
    );
    println!(
        "{:<58} {:>7.1} ms {:>7.1} ms {:>6.2}× {:>10} {:>4}",
        "push → running, webhook, --fetch-interval 1h (p50)",
        push_p50,
        floor_p50,
        push_p50 / floor_p50,
        "≤ +1000 ms",
        if over <= 1000.0 { "yes" } else { "no" }
    );
    println!(
        "{:<58} {:>7.1} ms {:>7.1} ms {:>6.2}× {:>10} {:>4}",
        "push → running (p95)",
        push_p95,
        pct(&floor, 95),
        push_p95 / pct(&floor, 95),
        "-",
        "-"
    );
    println!(
        "{:<58} {:>10} {:>10} {:>7} {:>10} {:>4}",
        "fetches from the remote (start + one per webhook)",
        fetched,
        runs + 1,
        "-",
        "= runs+1",
        if fetched == runs + 1 { "yes" } else { "no" }
    );
    drop(run);
}
