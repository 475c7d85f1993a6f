//! `refinery chaos`: inject faults into the containers Refinery manages and measure how fast the
//! running daemon detects and heals each, from its ledger and the engine.
//!
//! Only declared, running containers on nodes in `enforce` mode are touched, never a protected
//! one, never anything else (a rogue container is one chaos creates itself, and removes). Faults
//! run one at a time, so each measurement is clean.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use refinery_core::manifest::Mode;
use refinery_core::policy::{matches_any, rule_for};
use refinery_core::{
    Action, ContainerRuntime, ContainerSpec, ContainerState, CreateRequest, DriftKind, ResourceId,
    Secret,
};
use refinery_docker::DockerRuntime;
use refinery_store::request_queue::{self as requests, Request};
use serde::Serialize;

use crate::args::{ChaosArgs, Fault};
use crate::commands::load_desired;
use crate::error::CliError;
use crate::exit_code;
use crate::render;
use crate::settings::Settings;
use refinery_controller::node_engines as engines;

/// splitmix64: a small reproducible generator (the same `--seed` makes the same run).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        let i = usize::try_from(self.next() % items.len() as u64).unwrap_or(0);
        items.get(i)
    }
}

/// One injected fault and what came of it.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub fault: Fault,
    pub resource: String,
    /// From the fault to the daemon's `drift` ledger entry about it.
    pub detect_ms: Option<u64>,
    /// From the fault to the resource being as declared again (`None` for a rogue container
    /// that the rules only alert on).
    pub heal_ms: Option<u64>,
    pub healed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Per fault kind: counts and percentiles.
#[derive(Debug, Clone, Serialize)]
pub struct FaultStats {
    pub fault: Fault,
    pub count: usize,
    pub detect_p50_ms: Option<u64>,
    pub detect_p95_ms: Option<u64>,
    pub heal_p50_ms: Option<u64>,
    pub heal_p95_ms: Option<u64>,
    pub failures: usize,
}

#[derive(Debug, Serialize)]
struct ChaosReport {
    seed: u64,
    stats: Vec<FaultStats>,
    samples: Vec<Sample>,
    skipped: Vec<String>,
}

/// A container chaos may hurt: declared, running, on an enforce node, not protected.
struct Target {
    node: String,
    rt: DockerRuntime,
    spec: ContainerSpec,
    id: ResourceId,
}

/// The `p`th percentile (nearest rank) of `values`.
#[must_use]
pub fn percentile(values: &[u64], p: u32) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = (u64::from(p) * v.len() as u64).div_ceil(100).max(1);
    v.get(usize::try_from(rank - 1).unwrap_or(0)).copied()
}

/// Follows the ledger file from where it ended when chaos started.
struct LedgerTail {
    path: PathBuf,
    offset: u64,
    entries: Vec<serde_json::Value>,
}

impl LedgerTail {
    fn new(path: &Path) -> LedgerTail {
        let offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        LedgerTail {
            path: path.to_owned(),
            offset,
            entries: Vec::new(),
        }
    }

    /// Reads whatever complete lines were appended since the last call.
    fn poll(&mut self) {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            // Rotated: start over on the new active file.
            self.offset = 0;
        }
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return;
        }
        let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        for line in buf[..complete].split(|&b| b == b'\n') {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) {
                self.entries.push(v);
            }
        }
        self.offset += complete as u64;
    }

    /// The time of the first `drift` entry about `resource` at or after `since`.
    fn drift_time(&self, resource: &str, since: Timestamp) -> Option<Timestamp> {
        self.entries.iter().find_map(|e| {
            let t: Timestamp = e.get("time")?.as_str()?.parse().ok()?;
            (e.get("kind")?.as_str()? == "drift"
                && e.get("resource")?.as_str()? == resource
                && t >= since)
                .then_some(t)
        })
    }
}

fn ms_between(a: Timestamp, b: Timestamp) -> u64 {
    u64::try_from(b.duration_since(a).as_millis().max(0)).unwrap_or(0)
}

pub async fn run(settings: &Settings, args: &ChaosArgs) -> Result<u8, CliError> {
    let desired = load_desired(settings)?;
    let m = &desired.manifest;
    let seed = args.seed.unwrap_or_else(|| {
        u64::try_from(
            Timestamp::now()
                .as_nanosecond()
                .rem_euclid(i128::from(u64::MAX)),
        )
        .unwrap_or(1)
    });
    let mut rng = Rng(seed);
    let ledger_path = settings.repo.join(&m.ledger.path);
    let mut tail = LedgerTail::new(&ledger_path);

    let mut targets = Vec::new();
    for ne in engines::select(m, &settings.nodes, &settings.repo)? {
        if m.mode_of(&ne.node.name) != Mode::Enforce {
            continue;
        }
        let Ok(rt) = ne.engine else { continue };
        let Ok(observed) = rt.observe(m.config.selector.as_ref()).await else {
            continue;
        };
        for spec in m.containers_on(&ne.node.name) {
            let running = observed
                .container(&spec.name)
                .is_some_and(|c| c.state == ContainerState::Running);
            if running && !matches_any(&spec.name, &m.inventory.protected) {
                targets.push(Target {
                    node: ne.node.name.clone(),
                    rt: rt.clone(),
                    spec: spec.clone(),
                    id: ResourceId::container(&ne.node.name, &spec.name),
                });
            }
        }
    }
    if targets.is_empty() {
        return Err(CliError::NothingToHurt);
    }
    if !settings.quiet {
        eprintln!(
            "chaos: seed {seed}, {} target{}, faults {}, for {}s; heal bound {}s",
            targets.len(),
            if targets.len() == 1 { "" } else { "s" },
            args.faults
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(","),
            args.duration / 1000,
            args.heal_timeout / 1000
        );
    }
    let terminate_rogues = rule_for(m, DriftKind::Unauthorized).action == Action::Terminate;
    let mut samples = Vec::new();
    let mut skipped = Vec::new();
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_millis(args.duration) {
        let Some(&fault) = rng.pick(&args.faults) else {
            break;
        };
        let Some(target) = rng.pick(&targets) else {
            break;
        };
        n += 1;
        let sample = match fault {
            Fault::Rogue => {
                inject_rogue(target, m, seed, n, terminate_rogues, args, &mut tail).await
            }
            _ => inject(target, m, fault, n, args, &mut tail).await,
        };
        match sample {
            Ok(s) => {
                if !settings.quiet {
                    eprintln!(
                        "  {:<6} {} detect {} heal {}{}",
                        s.fault.as_str(),
                        s.resource,
                        s.detect_ms.map_or("-".into(), |v| format!("{v}ms")),
                        s.heal_ms.map_or("-".into(), |v| format!("{v}ms")),
                        if s.healed { "" } else { "  NOT HEALED" }
                    );
                }
                samples.push(s);
            }
            Err(why) => {
                let line = format!("{} on {}: {why}", fault.as_str(), target.id);
                if !skipped.contains(&line) {
                    skipped.push(line);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(args.pause)).await;
    }
    let stats = stats_of(&samples);
    let failures: usize = stats.iter().map(|s| s.failures).sum();
    let summary = format!(
        "chaos run (seed {seed}): {} faults, {failures} not healed within {}s",
        samples.len(),
        args.heal_timeout / 1000
    );
    // Recorded by the daemon (it holds the ledger), if one is running on this repository.
    if let Ok(dir) = refinery_controller::default_state_dir(&settings.repo) {
        let dir = args.state_dir.clone().unwrap_or(dir);
        let level = if failures > 0 { "error" } else { "info" };
        let _ = requests::submit(
            &dir,
            &Request::Note {
                level: level.into(),
                message: summary.clone(),
            },
        );
    }
    let report = ChaosReport {
        seed,
        stats,
        samples,
        skipped,
    };
    if settings.json {
        crate::output::json(&report)?;
    } else {
        let mut text = render_stats(&report.stats);
        for s in &report.skipped {
            text.push_str(&format!("skipped: {s}\n"));
        }
        text.push_str(&format!("{summary}\n"));
        crate::output::print(&text)?;
    }
    Ok(if failures > 0 || report.samples.is_empty() {
        exit_code::CHAOS_UNHEALED
    } else {
        exit_code::OK
    })
}

fn stats_of(samples: &[Sample]) -> Vec<FaultStats> {
    let mut by: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        by.entry(s.fault.as_str()).or_default().push(s);
    }
    by.into_values()
        .filter_map(|list| {
            let fault = list.first()?.fault;
            let detect: Vec<u64> = list.iter().filter_map(|s| s.detect_ms).collect();
            let heal: Vec<u64> = list.iter().filter_map(|s| s.heal_ms).collect();
            Some(FaultStats {
                fault,
                count: list.len(),
                detect_p50_ms: percentile(&detect, 50),
                detect_p95_ms: percentile(&detect, 95),
                heal_p50_ms: percentile(&heal, 50),
                heal_p95_ms: percentile(&heal, 95),
                failures: list.iter().filter(|s| !s.healed).count(),
            })
        })
        .collect()
}

/// `FAULT COUNT DETECT_P50 DETECT_P95 HEAL_P50 HEAL_P95 FAILED`
#[must_use]
pub fn render_stats(stats: &[FaultStats]) -> String {
    let ms = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v}ms"));
    render::table(
        &[
            "FAULT",
            "COUNT",
            "DETECT P50",
            "DETECT P95",
            "HEAL P50",
            "HEAL P95",
            "FAILED",
        ],
        stats
            .iter()
            .map(|s| {
                vec![
                    s.fault.as_str().to_owned(),
                    s.count.to_string(),
                    ms(s.detect_p50_ms),
                    ms(s.detect_p95_ms),
                    ms(s.heal_p50_ms),
                    ms(s.heal_p95_ms),
                    s.failures.to_string(),
                ]
            })
            .collect(),
    )
}

/// The labels a container made by hand needs to stay visible to a selector-scoped Refinery.
fn selector_labels(m: &refinery_core::Manifest) -> BTreeMap<String, String> {
    m.config
        .selector
        .iter()
        .map(refinery_core::LabelSelector::label)
        .collect()
}

/// Injects one fault into a declared container and waits for the daemon to put it back.
async fn inject(
    t: &Target,
    m: &refinery_core::Manifest,
    fault: Fault,
    n: u64,
    args: &ChaosArgs,
    tail: &mut LedgerTail,
) -> Result<Sample, String> {
    let rt = &t.rt;
    let before = rt.inspect(&t.spec.name).await.map_err(|e| e.to_string())?;
    if before.state != ContainerState::Running {
        return Err("not running".into());
    }
    let mut _held = None;
    let at = Timestamp::now();
    let injected = match fault {
        Fault::Kill => rt.kill(&before.id, "SIGKILL").await,
        Fault::Stop => rt.stop(&before.id, 10).await,
        Fault::Pause => rt.pause(&before.id).await,
        Fault::Remove => rt.remove(&before.id).await,
        Fault::Env => {
            let mut spec = t.spec.clone();
            spec.env
                .insert("REFINERY_CHAOS".into(), Secret::new(n.to_string(), false));
            let mut labels = spec.labels.clone();
            labels.extend(outside_labels(&before.labels));
            labels.extend(selector_labels(m));
            let req = CreateRequest {
                name: spec.name.clone(),
                spec,
                labels,
            };
            match rt.remove(&before.id).await {
                Ok(()) => match rt.create(&req).await {
                    Ok(id) => rt.start(&id).await,
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            }
        }
        Fault::Port => {
            let Some((&port, _)) = t.spec.fallback_ports.iter().next() else {
                return Err("declares no `fallback_ports`".into());
            };
            match rt.remove(&before.id).await {
                Ok(()) => {
                    // Hold the declared host port, as another program would.
                    match std::net::TcpListener::bind(("0.0.0.0", port)) {
                        Ok(l) => {
                            _held = Some(l);
                            Ok(())
                        }
                        Err(e) => {
                            return Err(format!("failed to hold host port {port}: {e}"));
                        }
                    }
                }
                Err(e) => Err(e),
            }
        }
        Fault::Image => {
            return Err("an image fault needs a second image; not injected".into());
        }
        Fault::Rogue => return Err("internal: rogue handled apart".into()),
    };
    injected.map_err(|e| e.to_string())?;
    let resource = t.id.to_string();
    let (detect_ms, heal_ms) = measure(tail, &resource, at, args, true, || async {
        match rt.inspect(&t.spec.name).await {
            Ok(c) => {
                c.state == ContainerState::Running
                    && (fault != Fault::Env || !c.env.contains_key("REFINERY_CHAOS"))
                    && (fault != Fault::Kill && fault != Fault::Stop
                        || c.started_at != before.started_at
                        || c.id != before.id)
            }
            Err(_) => false,
        }
    })
    .await;
    Ok(Sample {
        fault,
        resource,
        detect_ms,
        heal_ms,
        healed: heal_ms.is_some(),
        note: None,
    })
}

/// Waits (at most `--heal-timeout`) for the daemon's drift entry about `resource` and, when
/// `heals`, for `healed()` to hold; returns both times from `at`, in ms.
async fn measure<F, Fut>(
    tail: &mut LedgerTail,
    resource: &str,
    at: Timestamp,
    args: &ChaosArgs,
    heals: bool,
    mut healed: F,
) -> (Option<u64>, Option<u64>)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_millis(args.heal_timeout);
    let mut detect_ms = None;
    let mut heal_ms = None;
    while Instant::now() < deadline {
        tail.poll();
        if detect_ms.is_none() {
            detect_ms = tail.drift_time(resource, at).map(|d| ms_between(at, d));
        }
        if heals && heal_ms.is_none() && healed().await {
            heal_ms = Some(ms_between(at, Timestamp::now()));
        }
        if detect_ms.is_some() && (!heals || heal_ms.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (detect_ms, heal_ms)
}

/// Every label but Refinery's own: a copy made by hand must not claim to be Refinery's.
fn outside_labels(observed: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    observed
        .iter()
        .filter(|(k, _)| !k.starts_with(refinery_core::labels::PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Starts an undeclared container next to a target; it is healed when the daemon removes it
/// (under a `terminate` rule); otherwise detection is all there is, and chaos removes it.
async fn inject_rogue(
    t: &Target,
    m: &refinery_core::Manifest,
    seed: u64,
    n: u64,
    terminate: bool,
    args: &ChaosArgs,
    tail: &mut LedgerTail,
) -> Result<Sample, String> {
    let rt = &t.rt;
    let name = format!("chaos-rogue-{}-{n}", seed % 100_000);
    let mut spec = t.spec.clone();
    spec.name.clone_from(&name);
    spec.ports.clear();
    spec.mounts.clear();
    let req = CreateRequest {
        name: name.clone(),
        labels: selector_labels(m),
        spec,
    };
    let at = Timestamp::now();
    let id = rt.create(&req).await.map_err(|e| e.to_string())?;
    rt.start(&id).await.map_err(|e| e.to_string())?;
    let resource = ResourceId::container(&t.node, &name).to_string();
    let (detect_ms, heal_ms) = measure(tail, &resource, at, args, terminate, || async {
        rt.inspect(&id).await.is_err()
    })
    .await;
    let _ = rt.remove(&id).await;
    Ok(Sample {
        fault: Fault::Rogue,
        resource,
        detect_ms,
        heal_ms,
        healed: if terminate {
            heal_ms.is_some()
        } else {
            detect_ms.is_some()
        },
        note: (!terminate).then(|| "alert-only rule: detected, removed by chaos".to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_nearest_rank() {
        let v = [5, 1, 4, 2, 3];
        assert_eq!(percentile(&v, 50), Some(3));
        assert_eq!(percentile(&v, 95), Some(5));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn chaos_stats_render_as_a_table_with_dashes_for_no_sample() {
        let stat = |fault, count, detect, heal, failures| FaultStats {
            fault,
            count,
            detect_p50_ms: detect,
            detect_p95_ms: detect.map(|v| v * 2),
            heal_p50_ms: heal,
            heal_p95_ms: heal.map(|v| v * 3),
            failures,
        };
        insta::assert_snapshot!(render_stats(&[
            stat(Fault::Kill, 12, Some(4), Some(310), 0),
            stat(Fault::Rogue, 3, Some(7), Some(52), 1),
            stat(Fault::Image, 2, None, None, 2),
        ]));
    }

    #[test]
    fn rng_same_seed_same_picks() {
        let items = [1, 2, 3, 4, 5, 6, 7];
        let mut a = Rng(42);
        let mut b = Rng(42);
        let pa: Vec<_> = (0..20).filter_map(|_| a.pick(&items).copied()).collect();
        let pb: Vec<_> = (0..20).filter_map(|_| b.pick(&items).copied()).collect();
        assert_eq!(pa, pb);
    }
}
