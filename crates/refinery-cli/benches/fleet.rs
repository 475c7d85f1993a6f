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
//! - RSS of the `refinery` process, and its CPU while idle (timer passes only);
//! - an event storm: containers all over the fleet crash and are restarted at once by their
//!   engine (`die` + `start`, as `restart: always` does) at a given rate of events per second,
//!   while a few others crash for good; it reports the events offered, the passes the daemon ran
//!   meanwhile (coalesced, not one per event), the most events that waited at once, events
//!   dropped (each dropping node observed afresh), the peak RSS, and the time from the storm's
//!   end until every container runs again (heals: crashed ones running again / crashed).
//!
//! Every figure is also printed as a ratio to the first size measured in the same run.
//! Knobs (environment): `REFINERY_FLEET_SIZES` (`10,100,500,100x100`: nodes, or nodes×containers
//! per node), `REFINERY_FLEET_CONTAINERS` (20 per node when a size does not say),
//! `REFINERY_FLEET_RUNS` (10 crashes per size), `REFINERY_FLEET_IDLE_SECS` (15),
//! `REFINERY_FLEET_CHECK_SECS` (5: the full-pass interval), `REFINERY_FLEET_STORM_RATE` (1000
//! events/s), `REFINERY_FLEET_STORM_SECS` (10), `REFINERY_FLEET_STORM_CRASHES` (10).
//! `cargo test` builds this target but runs nothing: it only measures under `cargo bench`.

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
    storm: Storm,
}

/// What an event storm did.
struct Storm {
    /// Events the engines emitted per second, measured.
    offered_eps: f64,
    passes: usize,
    /// The most events that waited for the daemon at once.
    backlog_peak: f64,
    /// Events dropped (their nodes resynced).
    dropped: f64,
    rss_peak_mib: f64,
    /// From the storm's end until every container runs.
    converge_s: f64,
    healed: usize,
    crashed: usize,
}

struct Knobs {
    runs: usize,
    idle: u64,
    check: u64,
    storm_rate: u64,
    storm_secs: u64,
    storm_crashes: usize,
}

async fn measure(nodes: usize, per_node: usize, k: &Knobs) -> Figures {
    let (runs, idle, check) = (k.runs, k.idle, k.check);
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
    let converge_dropped = daemon
        .lines()
        .iter()
        .filter_map(|l| l["dropped"].as_f64())
        .fold(0.0, |a, b| a + b);
    if converge_dropped > 0.0 {
        eprintln!(
            "fleet: {converge_dropped} engine events dropped while converging (their nodes resynced)"
        );
    }

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
    let storm = storm(&sims, per_node, &daemon, k).await;
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
        storm,
    }
}

/// The storm phase: flaps at `storm_rate` events/s all over the fleet for `storm_secs`, with
/// `storm_crashes` containers crashing for good along the way; then waits for every container
/// to run again.
async fn storm(sims: &[SimEngine], per_node: usize, daemon: &DaemonProc, k: &Knobs) -> Storm {
    let lines_before = daemon.lines().len();
    let total = sims.len() * per_node;
    let tick = Duration::from_millis(10);
    // Two events per flap; the flaps due are counted from the clock, so a tick that sleeps
    // longer than 10 ms (it does) is made up on the next one and the rate is the one asked for.
    let flaps_per_sec = k.storm_rate as f64 / 2.0;
    let secs = k.storm_secs.max(1) as f64;
    let crash_every = secs / (k.storm_crashes.max(1) as f64 + 1.0);
    let mut crashed: Vec<(usize, String)> = Vec::new();
    let mut flaps = 0u64;
    let mut tried = 0u64;
    let mut next = 0usize;
    let mut rss_peak = daemon.rss_kib();
    let t0 = Instant::now();
    let mut last_rss = t0;
    while t0.elapsed().as_secs_f64() < secs {
        let due = (t0.elapsed().as_secs_f64() * flaps_per_sec) as u64;
        while tried < due {
            tried += 1;
            // A different container each time, spread over every node.
            let i = next % total;
            next = next.wrapping_add(7919);
            let (node, c) = (i % sims.len(), i / sims.len());
            let name = format!("app-{c:03}");
            if crashed.iter().any(|(n, x)| *n == node && *x == name) {
                continue;
            }
            if sims[node].flap(&name) {
                flaps += 1;
            }
        }
        if crashed.len() < k.storm_crashes
            && t0.elapsed().as_secs_f64() >= crash_every * (crashed.len() + 1) as f64
        {
            let node = (crashed.len() * 104_729 + 13) % sims.len();
            let name = format!("app-{:03}", (crashed.len() * 17 + 5) % per_node);
            if sims[node].crash(&name) {
                crashed.push((node, name));
            }
        }
        if last_rss.elapsed() >= Duration::from_millis(200) {
            rss_peak = rss_peak.max(daemon.rss_kib());
            last_rss = Instant::now();
        }
        tokio::time::sleep(tick).await;
    }
    let offered_eps = (flaps * 2 + crashed.len() as u64) as f64 / t0.elapsed().as_secs_f64();
    let end = Instant::now();
    let deadline = end + Duration::from_secs(120);
    loop {
        rss_peak = rss_peak.max(daemon.rss_kib());
        let up: usize = sims.iter().map(running).sum();
        if up >= total || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let converge_s = end.elapsed().as_secs_f64();
    let healed = crashed
        .iter()
        .filter(|(n, name)| {
            sims[*n]
                .containers()
                .iter()
                .any(|(x, s)| x == name && s == "running")
        })
        .count();
    // Let the passes the last events caused end before counting them.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let lines = daemon.lines();
    let during = &lines[lines_before.min(lines.len())..];
    let passes: Vec<&serde_json::Value> = during
        .iter()
        .filter(|l| l["message"] == "pass done")
        .collect();
    let backlog_peak = passes
        .iter()
        .filter_map(|l| l["backlog_peak"].as_f64())
        .fold(0.0, f64::max);
    let dropped = during
        .iter()
        .filter_map(|l| l["dropped"].as_f64())
        .fold(0.0, |a, b| a + b);
    Storm {
        offered_eps,
        passes: passes.len(),
        backlog_peak,
        dropped,
        rss_peak_mib: rss_peak / 1024.0,
        converge_s,
        healed,
        crashed: crashed.len(),
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
    println!(
        "\nevent storm (engines restarting crashed containers at once, a few crashing for good):"
    );
    println!(
        "{:>6} {:>7} {:>10} {:>8} {:>10} {:>8} {:>12} {:>12} {:>8}",
        "NODES",
        "CONTS",
        "EVENTS/S",
        "PASSES",
        "BACKLOG",
        "DROPPED",
        "RSS_PEAK_MIB",
        "CONVERGE_S",
        "HEALED"
    );
    for f in all {
        let s = &f.storm;
        println!(
            "{:>6} {:>7} {:>10.0} {:>8} {:>10.0} {:>8.0} {:>12.1} {:>12.2} {:>8}",
            f.nodes,
            f.containers,
            s.offered_eps,
            s.passes,
            s.backlog_peak,
            s.dropped,
            s.rss_peak_mib,
            s.converge_s,
            format!("{}/{}", s.healed, s.crashed)
        );
    }
    let Some(base) = all.first() else { return };
    println!(
        "\nratios to the {}-node run ({} containers):",
        base.nodes, base.containers
    );
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
    let per_node = env_num("REFINERY_FLEET_CONTAINERS", 20) as usize;
    // `N` nodes (of `per_node` containers), or `NxC`.
    let sizes: Vec<(usize, usize)> = std::env::var("REFINERY_FLEET_SIZES")
        .unwrap_or_else(|_| "10,100,500,100x100".to_owned())
        .split(',')
        .filter_map(|s| match s.trim().split_once('x') {
            Some((n, c)) => Some((n.parse().ok()?, c.parse().ok()?)),
            None => Some((s.trim().parse().ok()?, per_node)),
        })
        .collect();
    let knobs = Knobs {
        runs: env_num("REFINERY_FLEET_RUNS", 10) as usize,
        idle: env_num("REFINERY_FLEET_IDLE_SECS", 15),
        check: env_num("REFINERY_FLEET_CHECK_SECS", 5),
        storm_rate: env_num("REFINERY_FLEET_STORM_RATE", 1000),
        storm_secs: env_num("REFINERY_FLEET_STORM_SECS", 10),
        storm_crashes: env_num("REFINERY_FLEET_STORM_CRASHES", 10) as usize,
    };
    let mut all = Vec::new();
    for (nodes, per_node) in sizes {
        eprintln!("fleet: {nodes} nodes × {per_node} containers");
        let f = measure(nodes, per_node, &knobs).await;
        eprintln!(
            "fleet: {nodes} nodes converged in {:.1}s; pass p95 {:.1} ms; heal p50 {:.1} ms; storm healed {}/{}",
            f.converge_s, f.pass_p95, f.heal_p50, f.storm.healed, f.storm.crashed
        );
        all.push(f);
    }
    print_tables(&all);
}
