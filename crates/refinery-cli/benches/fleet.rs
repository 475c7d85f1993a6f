//! The fleet-scale benchmark: `cargo bench -p refinery-cli --bench fleet`.
//!
//! Starts N simulated engines (`SimEngine`, the Docker Engine API simulator of the docker test
//! support, held to the real engine by the adapter's tests) in this process, each with C
//! containers declared, runs one `refinery run` over all of them, and measures at each size:
//! - convergence: the first pass creates and starts N × C containers;
//! - full passes while idle (the periodic timer): p50/p95 wall time, and per node;
//! - event-to-action latency: a container crashes on one node (`die`, as a host SIGKILL) → it is
//!   running again, p50/p95;
//! - engine requests per heal: HTTP requests all engines together answered for one crash and its
//!   heal — the work one event causes, which should not grow with the fleet;
//! - RSS of the `refinery` process, and its CPU while idle (timer passes only).
//!
//! Every figure is also printed as a ratio to the smallest size measured in the same run.
//! Knobs (environment): `REFINERY_FLEET_SIZES` (`10,100,500`), `REFINERY_FLEET_CONTAINERS`
//! (20 per node), `REFINERY_FLEET_RUNS` (10 crashes per size), `REFINERY_FLEET_IDLE_SECS` (15),
//! `REFINERY_FLEET_CHECK_SECS` (5: the full-pass interval). `cargo test` builds this target but
//! runs nothing: it only measures under `cargo bench`.

mod common;
use common::{DaemonProc, env_num, ms, pct};

use std::time::{Duration, Instant};

use refinery_docker::testsupport::SimEngine;
use refinery_git::TestRepo;

const IMAGE: &str = "refinery-test-busybox:latest";

fn node_name(i: usize) -> String {
    format!("n{i:04}")
}

fn manifest(sims: &[SimEngine], containers: usize) -> String {
    let mut s = String::from(
        "config: {check_interval: 3600}\ndrift_rules:\n  flapping: {max_actions: 100000, window: 1m}\nnodes:\n",
    );
    for (i, sim) in sims.iter().enumerate() {
        s.push_str(&format!(
            "  - {{name: {}, docker: \"{}\"}}\n",
            node_name(i),
            sim.endpoint()
        ));
    }
    let all: Vec<String> = (0..sims.len()).map(node_name).collect();
    s.push_str("containers:\n");
    for c in 0..containers {
        s.push_str(&format!(
            "  - {{name: app-{c:03}, image: {IMAGE}, nodes: [{}]}}\n",
            all.join(", ")
        ));
    }
    s
}

fn running(sim: &SimEngine) -> usize {
    sim.containers()
        .iter()
        .filter(|(_, state)| state == "running")
        .count()
}

fn requests(sims: &[SimEngine]) -> u64 {
    sims.iter().map(SimEngine::requests).sum()
}

struct Figures {
    nodes: usize,
    containers: usize,
    converge_s: f64,
    pass_p50: f64,
    pass_p95: f64,
    heal_p50: f64,
    heal_p95: f64,
    requests_per_heal: f64,
    rss_mib: f64,
    cpu_idle_pct: f64,
}

async fn measure(nodes: usize, per_node: usize, runs: usize, idle: u64, check: u64) -> Figures {
    let mut sims = Vec::with_capacity(nodes);
    for _ in 0..nodes {
        let sim = SimEngine::start().await.expect("start a simulated engine");
        sim.add_busybox_image(IMAGE);
        sims.push(sim);
    }
    let repo = TestRepo::new();
    repo.write("refinery.yaml", manifest(&sims, per_node));
    repo.commit("fleet");
    let dir = tempfile::tempdir().expect("temp dir");
    let t0 = Instant::now();
    let daemon = DaemonProc::start(
        repo.path(),
        dir.path(),
        &["--check-interval", &format!("{check}s")],
        "warn,refinery=debug",
    );
    let total = nodes * per_node;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let up: usize = sims.iter().map(running).sum();
        if up >= total {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {up}/{total} running; log: {}",
            daemon.log().display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let converge_s = t0.elapsed().as_secs_f64();
    // Let the creation's events and the passes they trigger settle.
    tokio::time::sleep(Duration::from_secs(check.max(2))).await;

    // Idle: timer passes only.
    let passes_before = daemon.pass_ms(0).len();
    let cpu0 = daemon.cpu_ticks();
    let w0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(idle)).await;
    let cpu_idle_pct = (daemon.cpu_ticks() - cpu0) / w0.elapsed().as_secs_f64();
    let idle_passes: Vec<f64> = daemon.pass_ms(passes_before);
    let rss_mib = daemon.rss_kib() / 1024.0;

    // Crashes: one container on one node at a time.
    let mut heal = Vec::new();
    let mut per_heal = Vec::new();
    for r in 0..runs {
        let node = (r * 7919) % nodes;
        let name = format!("app-{:03}", (r * 31) % per_node);
        let sim = &sims[node];
        let req0 = requests(&sims);
        let t = Instant::now();
        assert!(sim.crash(&name), "`{name}` runs on node {node}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if sim
                .containers()
                .iter()
                .any(|(n, s)| *n == name && s == "running")
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "`{name}` not healed on node {node}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        heal.push(ms(t.elapsed()));
        // The pass the event triggered ends after the start.
        tokio::time::sleep(Duration::from_millis(300)).await;
        per_heal.push((requests(&sims) - req0) as f64);
    }
    drop(daemon);
    Figures {
        nodes,
        containers: total,
        converge_s,
        pass_p50: pct(&idle_passes, 50),
        pass_p95: pct(&idle_passes, 95),
        heal_p50: pct(&heal, 50),
        heal_p95: pct(&heal, 95),
        requests_per_heal: pct(&per_heal, 50),
        rss_mib,
        cpu_idle_pct,
    }
}

fn print_tables(all: &[Figures]) {
    println!(
        "{:>6} {:>7} {:>10} {:>10} {:>10} {:>12} {:>10} {:>10} {:>10} {:>8} {:>9}",
        "NODES",
        "CONTS",
        "CONVERGE_S",
        "PASS_P50",
        "PASS_P95",
        "P95/NODE_MS",
        "HEAL_P50",
        "HEAL_P95",
        "REQ/HEAL",
        "RSS_MIB",
        "CPU_IDLE%"
    );
    for f in all {
        println!(
            "{:>6} {:>7} {:>10.1} {:>10.1} {:>10.1} {:>12.3} {:>10.1} {:>10.1} {:>10.0} {:>8.1} {:>9.1}",
            f.nodes,
            f.containers,
            f.converge_s,
            f.pass_p50,
            f.pass_p95,
            f.pass_p95 / f.nodes as f64,
            f.heal_p50,
            f.heal_p95,
            f.requests_per_heal,
            f.rss_mib,
            f.cpu_idle_pct
        );
    }
    let Some(base) = all.first() else { return };
    println!("\nratios to the {}-node run:", base.nodes);
    println!(
        "{:>6} {:>7} {:>10} {:>10} {:>10} {:>10} {:>8} {:>9}",
        "NODES", "×NODES", "PASS_P95", "HEAL_P50", "HEAL_P95", "REQ/HEAL", "RSS", "CPU_IDLE"
    );
    for f in all {
        println!(
            "{:>6} {:>7.0} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>8.2} {:>9.2}",
            f.nodes,
            f.nodes as f64 / base.nodes as f64,
            f.pass_p95 / base.pass_p95,
            f.heal_p50 / base.heal_p50,
            f.heal_p95 / base.heal_p95,
            f.requests_per_heal / base.requests_per_heal,
            f.rss_mib / base.rss_mib,
            f.cpu_idle_pct / base.cpu_idle_pct
        );
    }
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        // Built by `cargo test --all-targets`; measures only under `cargo bench`.
        return;
    }
    let sizes: Vec<usize> = std::env::var("REFINERY_FLEET_SIZES")
        .unwrap_or_else(|_| "10,100,500".to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let per_node = env_num("REFINERY_FLEET_CONTAINERS", 20) as usize;
    let runs = env_num("REFINERY_FLEET_RUNS", 10) as usize;
    let idle = env_num("REFINERY_FLEET_IDLE_SECS", 15);
    let check = env_num("REFINERY_FLEET_CHECK_SECS", 5);
    let mut all = Vec::new();
    for nodes in sizes {
        eprintln!("fleet: {nodes} nodes × {per_node} containers");
        let f = measure(nodes, per_node, runs, idle, check).await;
        eprintln!(
            "fleet: {nodes} nodes converged in {:.1}s; pass p95 {:.1} ms; heal p50 {:.1} ms",
            f.converge_s, f.pass_p95, f.heal_p50
        );
        all.push(f);
    }
    print_tables(&all);
}
