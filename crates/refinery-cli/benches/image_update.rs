//! The image-update benchmark: `cargo bench -p refinery-cli --bench image_update`.
//!
//! How long after a tag moves in the registry the container following it runs the new image and
//! is healthy, under `refinery run` with `drift_rules.image_update: {action: recreate}`, against
//! a baseline measured in the same run on the same engine: the check interval (the longest a
//! tag move can wait to be seen) plus one pull of the new digest through the engine (removed
//! locally first, with credentials) plus creating and starting a container with the same
//! healthcheck until its `healthy` event.
//!
//! A real registry on loopback (`TestRegistry`: Debian's `docker-registry`, htpasswd) holds two
//! tiny distinct images as `app:a` and `app:b`; `app:stable` points at `a`. The daemon follows
//! `app:stable` with the credentials in `registries:` (`${ENV}`); each run moves the tag to the
//! other image (through the registry's HTTP API, so nothing becomes local) after removing that
//! image locally, so every update pulls, and waits for the new container's
//! `health_status: healthy` event. Knobs: `REFINERY_BENCH_RUNS` (default 5),
//! `REFINERY_BENCH_CHECK_SECS` (default 2: `config.image_check_interval` and the daemon's check
//! interval). Everything it creates carries the run id and is removed at the end, on a panic too.
//! `cargo test` builds this target but runs nothing.

// Shared with the other benchmarks; this one reads only the log, not memory or CPU.
#[allow(dead_code)]
mod common;
use common::{DaemonProc, env_num, ms, pct};

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use refinery_core::{ContainerRuntime, EngineEvent, Healthcheck};
use refinery_docker::testsupport::{self, TestRegistry, TestRun, minimal_spec};
use refinery_docker::{DockerRuntime, RegistryAuth};
use refinery_git::TestRepo;
use tokio::sync::mpsc;

const PASSWORD: &str = "bench-pw-7e21c9";
const TOKEN_VAR: &str = "REFINERY_BENCH_REG_TOKEN";

/// (action, detail, container id, name, when received)
type Event = (String, String, String, String, Instant);
type Events = mpsc::UnboundedReceiver<Event>;

/// Follows container events of one run.
fn follow(rt: &DockerRuntime, run: &TestRun) -> Events {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut events = Box::pin(rt.events(Some(&run.selector())));
    tokio::spawn(async move {
        while let Some(Ok(EngineEvent {
            action,
            detail,
            container_id,
            name,
            ..
        })) = events.next().await
        {
            let item = (
                action,
                detail.unwrap_or_default(),
                container_id,
                name.unwrap_or_default(),
                Instant::now(),
            );
            if tx.send(item).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits for the first event of `name` that `pred` accepts; returns the container id and when,
/// or `None` after `within`.
async fn wait_event(
    rx: &mut Events,
    name: &str,
    within: Duration,
    pred: impl Fn(&str, &str, &str) -> bool,
) -> Option<(String, Instant)> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((a, d, id, n, at))) if n == name && pred(&a, &d, &id) => {
                return Some((id, at));
            }
            Ok(Some(_)) => {}
            _ => return None,
        }
    }
}

/// Waits for the first `healthy` event of `name` from a container other than `previous`;
/// panics after `within` with the daemon's last log lines.
async fn wait_healthy(
    rx: &mut Events,
    name: &str,
    previous: &str,
    within: Duration,
    daemon: &DaemonProc,
) -> (String, Instant) {
    let found = wait_event(rx, name, within, |a, d, c| healthy(a, d) && c != previous).await;
    found.unwrap_or_else(|| {
        let log = std::fs::read_to_string(daemon.log()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        panic!(
            "no new healthy container `{name}` within {within:?}; the daemon's log ends:\n{tail}"
        )
    })
}

fn healthy(action: &str, detail: &str) -> bool {
    action == "health_status" && detail == "healthy"
}

/// The healthcheck both sides run: passes at once, checked every second.
const HEALTH_MANIFEST: &str = "{test: [\"CMD\", \"true\"], interval: 1s, timeout: 1s, retries: 1}";

fn healthcheck() -> Healthcheck {
    Healthcheck {
        test: vec!["CMD".into(), "true".into()],
        interval_ms: 1000,
        timeout_ms: 1000,
        start_period_ms: 0,
        retries: 1,
    }
}

/// Seconds spread over [0, 1) from the clock, so tag moves fall at all phases of the daemon's
/// check schedule rather than always at the same one.
fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    f64::from(nanos) / 1e9
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runs = env_num("REFINERY_BENCH_RUNS", 5).max(1) as usize;
    let check_secs = env_num("REFINERY_BENCH_CHECK_SECS", 2).max(1);
    let interval = Duration::from_secs(check_secs);
    let rt = DockerRuntime::from_env().expect("DOCKER_HOST");
    rt.info().await.expect("a running Docker engine");
    let run = TestRun::new(&rt);
    let registry = TestRegistry::start("bench", PASSWORD).expect("start the test registry");
    eprintln!(
        "bench image_update: run {}, {runs} runs, check interval {check_secs}s, registry {}",
        run.id(),
        registry.host
    );

    // Two distinct images in the registry, nothing of them left locally (so every pull is real).
    let mut images = Vec::new();
    for tag in ["a", "b"] {
        let pushed = registry
            .push_new(&rt, &run, &format!("img-{tag}"), "app", &[tag])
            .await
            .expect("build and push a test image");
        testsupport::remove_image(&rt, &pushed.local)
            .await
            .expect("remove the local build");
        images.push((tag, pushed));
    }
    let by_digest = |digest: &str| format!("{}/app@{digest}", registry.host);
    let mut rx = follow(&rt, &run);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // --- Baseline: one pull (credentials, removed locally first) + create + start → healthy ---
    let config = registry.docker_config(&run).expect("docker login");
    let puller = rt
        .clone()
        .with_registry_auth(RegistryAuth::new(Some(config)));
    let floor_name = run.name("floor");
    let mut pulls = Vec::new();
    let mut creates = Vec::new();
    for i in 0..runs {
        let (_, pushed) = &images[i % 2];
        let image = by_digest(&pushed.digest);
        testsupport::remove_image(&rt, &image)
            .await
            .expect("remove the image");
        let t0 = Instant::now();
        puller.pull(&image, &|_| {}).await.expect("pull");
        pulls.push(ms(t0.elapsed()));
        let mut spec = minimal_spec(&floor_name, &image);
        spec.healthcheck = Some(healthcheck());
        let req = run.request("floor", spec);
        let t0 = Instant::now();
        let id = rt.create(&req).await.expect("create");
        rt.start(&id).await.expect("start");
        let (_, at) = wait_event(&mut rx, &floor_name, Duration::from_secs(30), |a, d, c| {
            healthy(a, d) && c == id
        })
        .await
        .expect("a healthy event within 30 s");
        creates.push(ms(at - t0));
        rt.remove(&id).await.expect("remove");
        wait_event(&mut rx, &floor_name, Duration::from_secs(30), |a, _, c| {
            a == "destroy" && c == id
        })
        .await
        .expect("a `destroy` event within 30 s");
    }
    for (_, pushed) in &images {
        testsupport::remove_image(&rt, &by_digest(&pushed.digest))
            .await
            .expect("remove the image");
    }

    // --- Tag move → new container healthy under `refinery run` ---
    registry
        .move_tag("app", "a", "stable")
        .expect("app:stable → a");
    let stable = registry.reference("app", "stable");
    run.track_image(&stable);
    let app = run.name("app");
    let repo = TestRepo::new();
    repo.write(
        "refinery.yaml",
        format!(
            "config: {{selector: \"{label}={id}\", image_check_interval: {check_secs}s}}\n\
             {registries}\
             drift_rules:\n  image_update: {{action: recreate}}\n  flapping: {{max_actions: {max_actions}, window: 10m}}\n\
             containers:\n  - name: {app}\n    image: {stable}\n    healthcheck: {HEALTH_MANIFEST}\n",
            label = testsupport::RUN_LABEL,
            id = run.id(),
            registries = registry.manifest_registries(TOKEN_VAR),
            // Every run recreates the one container: flap protection must not stop it.
            max_actions = 2 * runs + 10,
        ),
    );
    repo.commit("follow app:stable");
    let dir = tempfile::tempdir().expect("temp dir");
    // Credentials from `registries:` only, not from the docker CLI of the user running this.
    let no_docker_config = run.temp_dir("no-docker-config").expect("temp dir");
    let check = format!("{check_secs}s");
    let daemon = DaemonProc::start_with_env(
        repo.path(),
        dir.path(),
        &["--check-interval", &check],
        "info",
        &[
            (TOKEN_VAR, OsStr::new(PASSWORD)),
            ("DOCKER_CONFIG", no_docker_config.as_os_str()),
        ],
    );
    let within = interval * 3 + Duration::from_secs(60);
    let (mut current, _) = wait_healthy(&mut rx, &app, "", within, &daemon).await;
    let mut measured = Vec::new();
    for i in 1..=runs {
        let (tag, pushed) = &images[i % 2];
        // Settle: the previous update's trial is judged, then the next move falls at a random
        // phase of the check schedule.
        tokio::time::sleep(interval.mul_f64(1.0 + jitter())).await;
        // What the tag moves to is not local: the update pulls it, as the baseline did.
        testsupport::remove_image(&rt, &by_digest(&pushed.digest))
            .await
            .expect("remove the image");
        registry
            .move_tag("app", tag, "stable")
            .expect("move app:stable");
        let t0 = Instant::now();
        let (id, at) = wait_healthy(&mut rx, &app, &current, within, &daemon).await;
        measured.push(ms(at - t0));
        let c = rt.inspect(&app).await.expect("inspect the new container");
        assert_eq!(c.id, id, "the healthy container is the one named `{app}`");
        assert_eq!(c.image_id, pushed.id, "the new container runs `app:{tag}`");
        current = id;
        eprintln!("run {i}: app:stable → {tag}: {:.1} ms", measured[i - 1]);
    }
    drop(daemon);

    let interval_ms = ms(interval);
    let pull_p50 = pct(&pulls, 50);
    let create_p50 = pct(&creates, 50);
    let baseline = interval_ms + pull_p50 + create_p50;
    println!(
        "image_update bench, run {}: {runs} runs, check interval {check_secs}s",
        run.id()
    );
    println!(
        "{:<58} {:>10} {:>10} {:>7}",
        "FIGURE", "VALUE", "BASELINE", "RATIO"
    );
    let part = |label: &str, v: f64| {
        println!("{label:<58} {v:>7.1} ms {:>10} {:>7}", "-", "-");
    };
    part("baseline: check interval", interval_ms);
    part("baseline: pull of the new digest (p50)", pull_p50);
    part("baseline: create + start → healthy event (p50)", create_p50);
    part("baseline: interval + pull + create → healthy", baseline);
    for (label, p) in [
        ("tag move → new container healthy (p50)", 50),
        ("tag move → new container healthy (p90)", 90),
        ("tag move → new container healthy (max)", 100),
    ] {
        let v = pct(&measured, p);
        println!(
            "{label:<58} {v:>7.1} ms {baseline:>7.1} ms {:>6.2}×",
            v / baseline
        );
    }
    drop(registry);
    drop(run);
}
