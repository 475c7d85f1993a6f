//! The self-healing benchmark: `cargo bench -p refinery-cli --bench heal`.
//!
//! Every figure is measured in this run next to its baseline on the same engine, and printed as a
//! ratio, so the table holds on any machine:
//! - engine floor: SIGKILL → `die` event; kill → `start` event when a program restarts it on the
//!   `die` event at once (what any controller must pay); create+start of a container;
//! - heal latency: SIGKILL → `start` event under `refinery run`, against that floor (target ≤ 1.1×);
//! - detection of a rogue container: its `start` event → the daemon's drift log line (p95 ≤ 100 ms);
//! - a no-op pass over N running containers against one `GET /containers/json` (≤ 1.2×);
//! - the daemon's resident memory idle and with N containers (≤ 25 MB), CPU while idle (≤ 0.1 %).
//!
//! Knobs (environment): `REFINERY_BENCH_RUNS` (default 20), `REFINERY_BENCH_CONTAINERS` (500),
//! `REFINERY_BENCH_IDLE_SECS` (60). Everything it creates carries a run label and is removed at the
//! end. `cargo test` builds this target but runs nothing: it only measures under `cargo bench`.

mod common;
use common::{DaemonProc, env_num, ms, pct};

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use refinery_core::{ContainerRuntime, ContainerState, EngineEvent};
use refinery_docker::DockerRuntime;
use refinery_docker::testsupport::{self, TestRun, minimal_spec};
use refinery_git::TestRepo;
use tokio::sync::mpsc;

const IMAGE: &str = "refinery-test-busybox:latest";

struct Row {
    figure: String,
    value: String,
    baseline: String,
    ratio: String,
    target: String,
    met: &'static str,
}

fn row(
    figure: &str,
    value: f64,
    unit: &str,
    baseline: Option<f64>,
    target: Option<(f64, bool)>,
) -> Row {
    let ratio = baseline.map(|b| value / b);
    let (target_s, met) = match (target, ratio) {
        (Some((t, true)), Some(r)) => (format!("≤ {t}×"), if r <= t { "yes" } else { "no" }),
        (Some((t, false)), _) => (
            format!("≤ {t} {unit}"),
            if value <= t { "yes" } else { "no" },
        ),
        _ => ("-".to_owned(), "-"),
    };
    Row {
        figure: figure.to_owned(),
        value: format!("{value:.1} {unit}"),
        baseline: baseline.map_or("-".into(), |b| format!("{b:.1} {unit}")),
        ratio: ratio.map_or("-".into(), |r| format!("{r:.2}×")),
        target: target_s,
        met,
    }
}

/// Follows container events of one run; each item is (action, name, when received).
fn follow(rt: &DockerRuntime, run: &TestRun) -> mpsc::UnboundedReceiver<(String, String, Instant)> {
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

async fn wait_event(
    rx: &mut mpsc::UnboundedReceiver<(String, String, Instant)>,
    action: &str,
    name: &str,
) -> Instant {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some((a, n, at))) if a == action && n == name => return at,
            Ok(Some(_)) => {}
            _ => panic!("no `{action}` event for `{name}` within 30 s"),
        }
    }
}

fn drain(rx: &mut mpsc::UnboundedReceiver<(String, String, Instant)>) {
    while rx.try_recv().is_ok() {}
}

fn manifest(run: &TestRun, names: &[String]) -> String {
    let mut s = format!(
        "config: {{selector: \"{}={}\", check_interval: 3600}}\ndrift_rules:\n  flapping: {{max_actions: 100000, window: 1m}}\ncontainers:\n",
        testsupport::RUN_LABEL,
        run.id()
    );
    for n in names {
        s.push_str(&format!("  - {{name: {n}, image: {IMAGE}}}\n"));
    }
    s
}

async fn wait_running(rt: &DockerRuntime, run: &TestRun, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let o = rt.observe(Some(&run.selector())).await.expect("observe");
        let running = o
            .containers
            .iter()
            .filter(|c| c.state == ContainerState::Running)
            .count();
        if running >= count {
            return;
        }
        assert!(Instant::now() < deadline, "only {running}/{count} running");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        // Built by `cargo test --all-targets`; measures only under `cargo bench`.
        return;
    }
    let runs = env_num("REFINERY_BENCH_RUNS", 20) as usize;
    let many = env_num("REFINERY_BENCH_CONTAINERS", 500) as usize;
    let idle_secs = env_num("REFINERY_BENCH_IDLE_SECS", 60);
    let rt = DockerRuntime::from_env().expect("DOCKER_HOST");
    rt.info().await.expect("a running Docker engine");
    testsupport::build_busybox_image(&rt, IMAGE)
        .await
        .expect("build the test image");
    let run = TestRun::new(&rt);
    let mut rows = Vec::new();
    eprintln!("bench: {runs} runs, {many} containers, {idle_secs}s idle");

    // --- Engine floor ---
    let mut rx = follow(&rt, &run);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let floor_name = run.name("floor");
    let req = run.request("floor", minimal_spec(&floor_name, IMAGE));
    let mut create_start = Vec::new();
    let mut kill_die = Vec::new();
    let mut kill_restart = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let id = rt.create(&req).await.expect("create");
        rt.start(&id).await.expect("start");
        create_start.push(ms(t0.elapsed()));
        wait_event(&mut rx, "start", &floor_name).await;
        drain(&mut rx);
        // A controller restarting the container as soon as its `die` event arrives.
        let t0 = Instant::now();
        rt.kill(&id, "SIGKILL").await.expect("kill");
        let died = wait_event(&mut rx, "die", &floor_name).await;
        kill_die.push(ms(died - t0));
        rt.start(&id).await.expect("start again");
        let started = wait_event(&mut rx, "start", &floor_name).await;
        kill_restart.push(ms(started - t0));
        rt.remove(&id).await.expect("remove");
        wait_event(&mut rx, "destroy", &floor_name).await;
    }
    let floor = pct(&kill_restart, 50);
    rows.push(row(
        "floor: SIGKILL → die event (p50)",
        pct(&kill_die, 50),
        "ms",
        None,
        None,
    ));
    rows.push(row(
        "floor: SIGKILL → start event, restarted on die (p50)",
        floor,
        "ms",
        None,
        None,
    ));
    rows.push(row(
        "floor: create + start (p50)",
        pct(&create_start, 50),
        "ms",
        None,
        None,
    ));

    // --- Heal latency and rogue detection under `refinery run` ---
    let repo = TestRepo::new();
    let web = run.name("web");
    repo.write("refinery.yaml", manifest(&run, std::slice::from_ref(&web)));
    repo.commit("one container");
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = DaemonProc::start(repo.path(), dir.path(), &[], "info,refinery=debug");
    wait_running(&rt, &run, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut heal = Vec::new();
    for _ in 0..runs {
        drain(&mut rx);
        let c = rt.inspect(&web).await.expect("inspect web");
        let t0 = Instant::now();
        rt.kill(&c.id, "SIGKILL").await.expect("kill web");
        let started = wait_event(&mut rx, "start", &web).await;
        heal.push(ms(started - t0));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let heal_p50 = pct(&heal, 50);
    rows.push(row(
        "heal: SIGKILL → running again under refinery run (min)",
        heal.iter().copied().fold(f64::INFINITY, f64::min),
        "ms",
        None,
        None,
    ));
    rows.push(row(
        "heal: … (p50) vs floor",
        heal_p50,
        "ms",
        Some(floor),
        Some((1.1, true)),
    ));
    rows.push(row(
        "heal: … (p95) vs floor",
        pct(&heal, 95),
        "ms",
        Some(pct(&kill_restart, 95)),
        None,
    ));

    let mut detect = Vec::new();
    for i in 0..runs {
        let name = run.name(&format!("rogue{i}"));
        let req = run.request(&format!("rogue{i}"), minimal_spec(&name, IMAGE));
        drain(&mut rx);
        let id = rt.create(&req).await.expect("create rogue");
        rt.start(&id).await.expect("start rogue");
        let started_wall = jiff::Timestamp::now();
        let _ = wait_event(&mut rx, "start", &name).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        let seen = loop {
            let found = daemon.lines().into_iter().find_map(|l| {
                (l["drift"] == "unauthorized"
                    && l["resource"].as_str().is_some_and(|r| r.ends_with(&name)))
                .then(|| {
                    l["timestamp"]
                        .as_str()
                        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                })
                .flatten()
            });
            if let Some(t) = found {
                break Some(t);
            }
            if Instant::now() > deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        if let Some(t) = seen {
            detect.push(t.duration_since(started_wall).as_secs_f64() * 1000.0);
        }
        rt.remove(&id).await.expect("remove rogue");
    }
    rows.push(row(
        "detect: rogue start → drift logged (p50)",
        pct(&detect, 50),
        "ms",
        None,
        None,
    ));
    rows.push(row(
        "detect: rogue start → drift logged (p95)",
        pct(&detect, 95),
        "ms",
        None,
        Some((100.0, false)),
    ));
    let rss_idle = daemon.rss_kib() / 1024.0;
    rows.push(row(
        "daemon RSS, 1 container",
        rss_idle,
        "MB",
        None,
        Some((25.0, false)),
    ));
    let t0 = daemon.cpu_ticks();
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let cpu = (daemon.cpu_ticks() - t0) / (idle_secs as f64 * 100.0) * 100.0;
    rows.push(row(
        &format!("daemon CPU idle over {idle_secs}s"),
        cpu,
        "%",
        None,
        Some((0.1, false)),
    ));
    drop(daemon);

    // --- A no-op pass over many containers ---
    eprintln!("bench: creating {many} containers…");
    let names: Vec<String> = (0..many).map(|i| run.name(&format!("m{i}"))).collect();
    futures_util::stream::iter(names.iter().enumerate())
        .for_each_concurrent(8, |(i, n)| {
            let rt = &rt;
            let req = run.request(&format!("m{i}"), minimal_spec(n, IMAGE));
            async move {
                if let Ok(id) = rt.create(&req).await {
                    let _ = rt.start(&id).await;
                }
            }
        })
        .await;
    repo.write("refinery.yaml", manifest(&run, &names));
    repo.commit("many");
    let mut list = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let _ = rt.list_ids(Some(&run.selector())).await.expect("list");
        list.push(ms(t0.elapsed()));
    }
    // Periodic passes every 500 ms: with everything in sync, each is a no-op pass.
    let daemon = DaemonProc::start(
        repo.path(),
        dir.path(),
        &["--check-interval", "500ms"],
        "info,refinery=debug",
    );
    wait_running(&rt, &run, many).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let from = daemon.pass_ms(0).len();
    tokio::time::sleep(Duration::from_millis(500 * runs as u64 + 500)).await;
    let passes = daemon.pass_ms(from);
    let list_p50 = pct(&list, 50);
    let pass_p50 = pct(&passes, 50);
    rows.push(row(
        &format!("pass over {many} containers (p50) vs one list call"),
        pass_p50,
        "ms",
        Some(list_p50),
        Some((1.2, true)),
    ));
    rows.push(row(
        &format!("daemon RSS, {many} containers"),
        daemon.rss_kib() / 1024.0,
        "MB",
        None,
        Some((25.0, false)),
    ));
    drop(daemon);

    print_table(&rows);
    drop(run);
}

fn print_table(rows: &[Row]) {
    let w = |f: fn(&Row) -> &str, h: &str| {
        rows.iter()
            .map(|r| f(r).chars().count())
            .max()
            .unwrap_or(0)
            .max(h.len())
    };
    let (a, b, c, d, e) = (
        w(|r| &r.figure, "FIGURE"),
        w(|r| &r.value, "VALUE"),
        w(|r| &r.baseline, "BASELINE"),
        w(|r| &r.ratio, "RATIO"),
        w(|r| &r.target, "TARGET"),
    );
    println!(
        "{:<a$}  {:>b$}  {:>c$}  {:>d$}  {:<e$}  MET",
        "FIGURE", "VALUE", "BASELINE", "RATIO", "TARGET"
    );
    for r in rows {
        println!(
            "{:<a$}  {:>b$}  {:>c$}  {:>d$}  {:<e$}  {}",
            r.figure, r.value, r.baseline, r.ratio, r.target, r.met
        );
    }
}
