//! Several nodes from one controller, end to end: three real extra `dockerd`s (two on unix
//! sockets, one on `tcp://` with TLS certificates made by the test), one manifest declaring a
//! container on each, `refinery apply`, `refinery nodes`/`status`, and `refinery run` surviving one
//! engine going away and healing it when it comes back.
//!
//! The engines are started once for this binary's main test and stopped (data roots and bridges
//! removed) when it ends, panics included.

#[path = "../common/mod.rs"]
mod common;
#[path = "../daemon/harness.rs"]
#[allow(dead_code)] // shared with the daemon tests, which use all of it
mod harness;

use refinery_core::{ContainerRuntime, ContainerState};
use refinery_docker::DockerRuntime;
use refinery_docker::testsupport;
use refinery_docker::testsupport::engines::{Engines, Listen};

use crate::common::{Env, IMAGE};
use crate::harness::{Daemon, eventually, kind};

const NODES: [&str; 3] = ["a", "b", "c"];

fn manifest(engines: &Engines, containers: &[&str]) -> String {
    let mut m = String::from("nodes:\n");
    for n in NODES {
        m.push_str(&format!("  - {}\n", engines.get(n).node_yaml(n)));
    }
    m.push_str("containers:\n");
    for c in containers {
        m.push_str(&format!(
            "  - {{name: {c}, image: {IMAGE}, nodes: [a, b, c]}}\n"
        ));
    }
    m
}

async fn start_engines() -> Engines {
    let engines =
        Engines::start(&[("a", Listen::Unix), ("b", Listen::Unix), ("c", Listen::Tls)]).await;
    for e in engines.iter() {
        testsupport::build_busybox_image(&e.runtime(), IMAGE)
            .await
            .unwrap_or_else(|err| panic!("build the test image on `{}`: {err}", e.name));
    }
    engines
}

/// The state of container `name` on one engine, if it exists.
async fn state_on(rt: &DockerRuntime, name: &str) -> Option<(String, ContainerState)> {
    rt.inspect(name).await.ok().map(|c| (c.id, c.state))
}

async fn count_on(rt: &DockerRuntime, env: &Env) -> usize {
    rt.observe(Some(&env.run.selector()))
        .await
        .map(|o| o.containers.len())
        .unwrap_or(usize::MAX)
}

#[tokio::test]
async fn three_nodes_converge_survive_a_dead_node_and_heal() {
    let env = Env::new().await;
    let engines = start_engines().await;
    let web = env.name("web");
    env.commit_manifest(&manifest(&engines, &[&web]));

    // `apply` converges all three, the TLS one included.
    env.refinery(&["apply", "--yes"]).await.code(0);
    for n in NODES {
        let rt = engines.get(n).runtime();
        let (_, state) = state_on(&rt, &web)
            .await
            .unwrap_or_else(|| panic!("`{web}` exists on node `{n}`"));
        assert_eq!(state, ContainerState::Running, "on node `{n}`");
    }
    env.refinery(&["plan"]).await.code(0);

    // `nodes` lists endpoint, engine version, mode, reachability, counts and drift.
    let run = env.refinery(&["nodes", "--json"]).await;
    run.code(0);
    let rows = run.json();
    let rows = rows.as_array().expect("a list of nodes");
    assert_eq!(rows.len(), 3, "{rows:?}");
    for (row, n) in rows.iter().zip(NODES) {
        assert_eq!(row["node"], n);
        assert_eq!(row["endpoint"], engines.get(n).endpoint.as_str());
        assert_eq!(row["reachability"], "reachable");
        assert_eq!(row["mode"], "enforce");
        assert!(
            row["engine_version"]
                .as_str()
                .is_some_and(|v| !v.is_empty())
        );
        assert_eq!(row["declared"], 1);
        assert_eq!(row["running"], 1);
        assert_eq!(row["drifted"], 0);
    }
    env.refinery(&["nodes"])
        .await
        .code(0)
        .stdout_has("REACHABILITY")
        .stdout_has(&engines.get("c").endpoint);

    // The daemon converges a new revision on all three.
    let db = env.name("db");
    env.commit_manifest(&manifest(&engines, &[&web, &db]));
    let mut d = Daemon::start(&env, &["--check-interval", "3s"]);
    for n in NODES {
        let rt = engines.get(n).runtime();
        eventually(&format!("`{db}` running on node `{n}`"), &mut d, || async {
            state_on(&rt, &db)
                .await
                .filter(|(_, s)| *s == ContainerState::Running)
        })
        .await;
    }

    // The ledger is written after the actions: wait for the births too, so that none of this
    // convergence is counted as done while `c` is down.
    for n in NODES {
        d.wait_entry(&format!("the birth of `{db}` on node `{n}`"), |e| {
            kind(e) == "birth"
                && e["node"] == n
                && e["resource"]
                    .as_str()
                    .is_some_and(|r| r.ends_with(&format!("/{db}")))
        })
        .await;
    }

    // Node `c` goes away: reported unreachable, nothing done in its place; `a` and `b` stay
    // reconciled (a crash on `a` is healed while `c` is down).
    let before_a = count_on(&engines.get("a").runtime(), &env).await;
    let before_b = count_on(&engines.get("b").runtime(), &env).await;
    let seq_before = d.entries().last().map_or(0, |e| e.seq);
    engines.get("c").stop().await;
    d.wait_entry("an alert naming node `c`", |e| {
        kind(e) == "alert" && e["node"] == "c"
    })
    .await;
    let rt_a = engines.get("a").runtime();
    let (id_a, _) = state_on(&rt_a, &web).await.expect("web on a");
    let started = rt_a.inspect(&id_a).await.expect("inspect").started_at;
    testsupport::crash_container(&rt_a, &id_a)
        .await
        .expect("crash web on a");
    eventually("web on `a` running again", &mut d, || async {
        rt_a.inspect(&id_a)
            .await
            .ok()
            .filter(|c| c.state == ContainerState::Running && c.started_at != started)
    })
    .await;
    let status = env.refinery(&["status", "--json"]).await;
    status.code(4).stderr_has("failed to reach node `c`");
    let rows = status.json();
    for row in rows.as_array().expect("rows") {
        if row["node"] == "c" {
            assert_eq!(row["state"], "unknown", "{row}");
            assert_eq!(row["drift"][0], "node unreachable", "{row}");
        } else {
            assert_eq!(row["state"], "running", "{row}");
        }
    }
    let nodes = env.refinery(&["nodes", "--json"]).await;
    nodes.code(4);
    let c_row = nodes.json()[2].clone();
    assert_eq!(c_row["reachability"], "unreachable", "{c_row}");
    assert_eq!(count_on(&engines.get("a").runtime(), &env).await, before_a);
    assert_eq!(count_on(&engines.get("b").runtime(), &env).await, before_b);
    for e in d.entry_values() {
        if e["seq"].as_u64().unwrap_or(0) <= seq_before {
            continue;
        }
        let on_c = e["resource"]
            .as_str()
            .is_some_and(|r| r.starts_with("docker/c/"));
        assert!(
            !(on_c
                && matches!(
                    kind(&e),
                    "birth" | "death" | "mutation" | "rollback" | "drift"
                )
                && e["actor"] != "outside"),
            "nothing is done about node `c` while it is down: {e}"
        );
    }

    // `c` comes back (its containers were stopped with it): a full pass heals it.
    engines.get("c").restart().await;
    let rt_c = engines.get("c").runtime();
    for name in [&web, &db] {
        eventually(
            &format!("`{name}` running on `c` again"),
            &mut d,
            || async {
                state_on(&rt_c, name)
                    .await
                    .filter(|(_, s)| *s == ContainerState::Running)
            },
        )
        .await;
    }
    // Healed by refinery (the engine stopped them when it went down; none has a restart policy).
    d.wait_entry("refinery acting on node `c`", |e| {
        kind(e) == "mutation"
            && e["actor"] == "refinery"
            && e["resource"]
                .as_str()
                .is_some_and(|r| r.starts_with("docker/c/"))
    })
    .await;
    d.stop().await;
    env.refinery(&["status"]).await.code(0);
}

#[tokio::test]
async fn tls_files_missing_name_the_node_and_the_file() {
    let env = Env::offline();
    let body = format!(
        "nodes:\n  - {{name: vega, docker: \"tcp://127.0.0.1:1\", tls: {{ca: certs/ca.pem, cert: certs/cert.pem, key: certs/key.pem}}}}\ncontainers:\n  - {{name: {}, image: {IMAGE}, node: vega}}\n",
        env.name("web")
    );
    env.commit_manifest(&body);
    env.refinery(&["plan"])
        .await
        .code(2)
        .stderr_has("failed to use the TLS files of node `vega`")
        .stderr_has("certs/ca.pem")
        .stderr_has("no such file");
}

#[tokio::test]
async fn duplicate_node_endpoint_is_an_invalid_manifest() {
    let env = Env::offline();
    env.commit_manifest(
        "nodes:\n  - {name: a, docker: \"unix:///run/x.sock\"}\n  - {name: b, docker: \"unix:///run/x.sock\"}\n",
    );
    env.refinery(&["validate"])
        .await
        .code(2)
        .stderr_has("node `b` has the same endpoint `unix:///run/x.sock` as node `a`");
}

/// Four simulated engines (`SimEngine`: the adapter's tests hold it to the real engine), one
/// container declared on each; two daemons, `--shard 1/2` and `--shard 2/2`, split them by the
/// hash of the node name, each with its own ledger file and state directory.
#[tokio::test]
async fn shards_split_nodes_by_name_each_with_its_own_ledger_and_state() {
    use refinery_core::Shard;
    use refinery_docker::testsupport::SimEngine;

    let env = Env::offline();
    let names = ["lyra", "vega", "node-001", "node-002"];
    let mut sims = Vec::new();
    for _ in names {
        let sim = SimEngine::start().await.expect("start a simulated engine");
        sim.add_busybox_image(IMAGE);
        sims.push(sim);
    }
    let owner = |n: &str| Shard::owner_of(n, 2).index();
    assert!(
        names.iter().any(|n| owner(n) == 1) && names.iter().any(|n| owner(n) == 2),
        "both shards own a node"
    );
    let web = env.name("web");
    let mut m = String::from("nodes:\n");
    for (n, sim) in names.iter().zip(&sims) {
        m.push_str(&format!(
            "  - {{name: {n}, docker: \"{}\"}}\n",
            sim.endpoint()
        ));
    }
    m.push_str(&format!(
        "containers:\n  - {{name: {web}, image: {IMAGE}, nodes: [{}]}}\n",
        names.join(", ")
    ));
    env.commit_manifest(&m);

    // `nodes --shards 2` names each node's owner; `--shard 2/2` lists only its own.
    let run = env.refinery(&["nodes", "--shards", "2", "--json"]).await;
    let rows = run.json();
    let rows = rows.as_array().expect("a list of nodes");
    assert_eq!(rows.len(), names.len(), "{rows:?}");
    for row in rows {
        let node = row["node"].as_str().expect("node name");
        assert_eq!(row["shard"], format!("{}/2", owner(node)), "{row}");
        assert_eq!(row["reachability"], "reachable", "{row}");
    }
    let run = env.refinery(&["nodes", "--shard", "2/2", "--json"]).await;
    let listed: Vec<String> = run
        .json()
        .as_array()
        .expect("a list of nodes")
        .iter()
        .filter_map(|r| r["node"].as_str().map(str::to_owned))
        .collect();
    let mut want: Vec<String> = names
        .iter()
        .filter(|n| owner(n) == 2)
        .map(|n| (*n).to_owned())
        .collect();
    want.sort();
    let mut got = listed.clone();
    got.sort();
    assert_eq!(got, want);
    env.refinery(&["nodes", "--shards", "2"])
        .await
        .stdout_has("SHARD");

    // Shard 1 alone: its nodes converge, the others are never touched.
    let ledger_of = |shard: u32| {
        env.repo
            .path()
            .join(format!("ledger/container_ledger.shard-{shard}-of-2.jsonl"))
    };
    let mut first = Daemon::start(&env, &["--shard", "1/2", "--check-interval", "2s"]);
    first.ledger = ledger_of(1);
    for (n, sim) in names.iter().zip(&sims).filter(|(n, _)| owner(n) == 1) {
        eventually(&format!("`{web}` running on `{n}`"), &mut first, || async {
            sim.containers()
                .into_iter()
                .find(|(name, state)| *name == web && state == "running")
        })
        .await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    for (n, sim) in names.iter().zip(&sims).filter(|(n, _)| owner(n) == 2) {
        assert!(sim.containers().is_empty(), "shard 1 touched `{n}`");
    }

    // Shard 2 joins: everything converges, each daemon heals only its own nodes.
    let mut second = Daemon::start(&env, &["--shard", "2/2", "--check-interval", "2s"]);
    second.ledger = ledger_of(2);
    for (n, sim) in names.iter().zip(&sims).filter(|(n, _)| owner(n) == 2) {
        eventually(
            &format!("`{web}` running on `{n}`"),
            &mut second,
            || async {
                sim.containers()
                    .into_iter()
                    .find(|(name, state)| *name == web && state == "running")
            },
        )
        .await;
    }
    for (n, sim) in names.iter().zip(&sims) {
        assert!(sim.crash(&web), "`{web}` was running on `{n}`");
    }
    for (n, sim) in names.iter().zip(&sims) {
        let d = if owner(n) == 1 {
            &mut first
        } else {
            &mut second
        };
        eventually(&format!("`{web}` healed on `{n}`"), d, || async {
            sim.containers()
                .into_iter()
                .find(|(name, state)| *name == web && state == "running")
        })
        .await;
    }

    // Separate ledgers (each naming only its own nodes) and state directories.
    for shard in [1, 2] {
        let path = ledger_of(shard);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("shard {shard} ledger {}: {e}", path.display()));
        for line in text.lines() {
            let e: serde_json::Value = serde_json::from_str(line).expect("a JSON ledger line");
            if let Some(node) = e["node"].as_str() {
                assert_eq!(
                    owner(node),
                    shard,
                    "shard {shard} wrote about `{node}`: {e}"
                );
            }
        }
        assert!(
            text.lines()
                .any(|l| l.contains("\"restarted\"") || l.contains("restart")),
            "shard {shard} recorded its heal:\n{text}"
        );
    }
    assert!(
        !env.repo
            .path()
            .join("ledger/container_ledger.jsonl")
            .exists(),
        "no shard writes the unsharded ledger"
    );
    assert!(first.state_dir.join("shard-1-of-2").is_dir());
    assert!(second.state_dir.join("shard-2-of-2").is_dir());
    first.stop().await;
    second.stop().await;
}

/// An event storm: on three simulated engines, crashing containers are restarted by their engine
/// at once (`die` + `start`) thousands of times a second while the daemon may keep only 8 events
/// waiting. Containers that crash for good meanwhile are healed all the same — their nodes'
/// events were dropped, so those nodes are observed afresh — with no periodic pass to fall back
/// on, and the ledger says events were dropped.
#[tokio::test]
async fn event_storm_overflowing_the_backlog_resyncs_and_loses_no_crash() {
    use refinery_docker::testsupport::SimEngine;
    use std::time::{Duration, Instant};

    let env = Env::offline();
    let names = ["storm-a", "storm-b", "storm-c"];
    let mut sims = Vec::new();
    for _ in names {
        let sim = SimEngine::start().await.expect("start a simulated engine");
        sim.add_busybox_image(IMAGE);
        sims.push(sim);
    }
    // c0-c5 flap; d0, d1 crash for good during the storm.
    let flapping: Vec<String> = (0..6).map(|i| env.name(&format!("c{i}"))).collect();
    let doomed: Vec<String> = (0..2).map(|i| env.name(&format!("d{i}"))).collect();
    let mut m = String::from("drift_rules:\n  flapping: {max_actions: 1000, window: 1m}\nnodes:\n");
    for (n, sim) in names.iter().zip(&sims) {
        m.push_str(&format!(
            "  - {{name: {n}, docker: \"{}\"}}\n",
            sim.endpoint()
        ));
    }
    m.push_str("containers:\n");
    for c in flapping.iter().chain(&doomed) {
        m.push_str(&format!(
            "  - {{name: {c}, image: {IMAGE}, nodes: [{}]}}\n",
            names.join(", ")
        ));
    }
    env.commit_manifest(&m);
    let mut d = Daemon::start(&env, &["--check-interval", "3600s", "--event-backlog", "8"]);
    let all_running = |sims: &[SimEngine]| {
        sims.iter().all(|s| {
            let cs = s.containers();
            flapping
                .iter()
                .chain(&doomed)
                .all(|c| cs.iter().any(|(n, st)| n == c && st == "running"))
        })
    };
    eventually("every container running", &mut d, || async {
        all_running(&sims).then_some(())
    })
    .await;

    // Two seconds of storm; the doomed containers crash in the middle of it.
    let t0 = Instant::now();
    let mut flaps = 0u32;
    let mut crashed = false;
    while t0.elapsed() < Duration::from_secs(2) {
        for sim in &sims {
            for c in &flapping {
                flaps += u32::from(sim.flap(c));
            }
        }
        if !crashed && t0.elapsed() > Duration::from_millis(800) {
            for sim in &sims {
                for c in &doomed {
                    assert!(sim.crash(c), "`{c}` was running");
                }
            }
            crashed = true;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(flaps > 1000, "a storm: {flaps} flaps");

    eventually("every crashed container healed", &mut d, || async {
        all_running(&sims).then_some(())
    })
    .await;
    let alert = d
        .wait_entry("saying events were dropped", |e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("dropped") && m.contains("observed afresh"))
        })
        .await;
    assert_eq!(alert["level"], "warning", "{alert}");
    for (n, sim) in names.iter().zip(&sims) {
        for c in &doomed {
            assert!(
                sim.containers()
                    .iter()
                    .any(|(name, s)| name == c && s == "running"),
                "`{c}` healed on `{n}`"
            );
        }
    }
    d.stop().await;
}

#[tokio::test]
async fn bad_shard_is_a_usage_error_saying_what_to_write() {
    let env = Env::offline();
    env.commit_manifest("containers: []\n");
    for (args, why) in [
        (&["run", "--shard", "0/0"][..], "at least one shard"),
        (&["run", "--shard", "3/2"][..], "only 2 shards"),
        (&["run", "--shard", "junk"][..], "write `I/N`"),
        (&["nodes", "--shard", "0/3"][..], "numbered from 1"),
        (&["nodes", "--shards", "0"][..], "--shards"),
    ] {
        env.refinery(args).await.code(2).stderr_has(why);
    }
}
