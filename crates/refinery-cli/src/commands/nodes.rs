//! `refinery nodes`: one row per declared node — endpoint, engine version, mode, reachability,
//! container counts and drift.

use std::collections::BTreeSet;

use refinery_core::{ContainerState, StepKind};
use serde::Serialize;

use crate::args::NodesArgs;
use crate::commands::load_desired;
use crate::commands::plan::report_unreachable;
use crate::error::CliError;
use crate::exit_code;
use crate::output;
use crate::render::{self, Styles};
use crate::settings::Settings;
use refinery_controller::node_pass::{self as pass, NodePass};
use refinery_docker::DockerRuntime;

#[derive(Debug, Serialize)]
pub struct NodeRow {
    pub node: String,
    /// The `docker:` endpoint, or `DOCKER_HOST`/the default socket.
    pub endpoint: String,
    /// `enforce`, `audit`, `read-only` (the node's own, else `config.mode`).
    pub mode: &'static str,
    /// `reachable`, `unreachable` or `disabled` (`docker_enabled: false`).
    pub reachability: &'static str,
    pub engine_version: Option<String>,
    pub api_version: Option<String>,
    /// Why the node could not be reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Containers the manifest declares on the node.
    pub declared: usize,
    /// Containers the engine has (within `config.selector`), and how many of them run.
    pub observed: Option<usize>,
    pub running: Option<usize>,
    /// Resources that differ from the manifest (declared or not).
    pub drifted: Option<usize>,
    /// The shard that owns the node (`2/3`), with `--shard` or `--shards`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

pub async fn run(settings: &Settings, args: &NodesArgs) -> Result<u8, CliError> {
    let mut settings = settings.clone();
    settings.shard = args.shard;
    let settings = &settings;
    let shards = args.shard.map(refinery_core::Shard::count).or(args.shards);
    let desired = load_desired(settings)?;
    let manifest = &desired.manifest;
    let passes = pass::run(&desired, &settings.selection()).await?;
    report_unreachable(&passes);
    let mut rows = Vec::new();
    for node in &manifest.nodes {
        if !settings.nodes.is_empty() && !settings.nodes.contains(&node.name) {
            continue;
        }
        if !refinery_controller::node_engines::in_shard(settings.shard, &node.name) {
            continue;
        }
        let endpoint = node
            .docker
            .clone()
            .unwrap_or_else(|| settings.default_docker_endpoint());
        let mut row = NodeRow {
            node: node.name.clone(),
            endpoint,
            mode: manifest.mode_of(&node.name).as_str(),
            reachability: "disabled",
            engine_version: None,
            api_version: None,
            error: None,
            declared: manifest.containers_on(&node.name).len(),
            observed: None,
            running: None,
            drifted: None,
            shard: shards.map(|n| refinery_core::Shard::owner_of(&node.name, n).to_string()),
        };
        if let Some(p) = passes.iter().find(|p| p.node.name == node.name) {
            fill(&mut row, p).await;
        }
        rows.push(row);
    }
    if settings.json {
        output::json(&rows)?;
    } else {
        output::print(&render_nodes(&rows, &settings.styles()))?;
    }
    Ok(if passes.iter().any(|p| p.result.is_err()) {
        exit_code::UNREACHABLE
    } else if rows.iter().any(|r| r.drifted.unwrap_or(0) > 0) {
        exit_code::DRIFT
    } else {
        exit_code::OK
    })
}

async fn fill(row: &mut NodeRow, p: &NodePass<'_, DockerRuntime>) {
    match &p.result {
        Err(e) => {
            row.reachability = "unreachable";
            row.error = Some(e.to_string());
        }
        Ok((observed, eval)) => {
            row.reachability = "reachable";
            if let Some(engine) = &p.engine
                && let Ok(info) = pass::probe(engine).await
            {
                row.engine_version = Some(info.version);
                row.api_version = Some(info.api_version);
            }
            row.observed = Some(observed.containers.len());
            row.running = Some(
                observed
                    .containers
                    .iter()
                    .filter(|c| c.state == ContainerState::Running)
                    .count(),
            );
            let drifted: BTreeSet<_> = eval
                .plan
                .steps
                .iter()
                .filter(|s| s.kind != StepKind::Ignore && !s.drifts.is_empty())
                .map(|s| s.id.to_string())
                .collect();
            row.drifted = Some(drifted.len());
        }
    }
}

/// `NODE ENDPOINT ENGINE MODE REACHABLE DECLARED RUNNING DRIFT`, and `SHARD` when a row has one.
#[must_use]
pub fn render_nodes(rows: &[NodeRow], _styles: &Styles) -> String {
    let dash = || "-".to_owned();
    let sharded = rows.iter().any(|r| r.shard.is_some());
    let cells = rows
        .iter()
        .map(|r| {
            let mut cells = vec![
                r.node.clone(),
                r.endpoint.clone(),
                r.engine_version.clone().unwrap_or_else(dash),
                r.mode.to_owned(),
                r.reachability.to_owned(),
                r.declared.to_string(),
                match (r.running, r.observed) {
                    (Some(run), Some(all)) => format!("{run}/{all}"),
                    _ => dash(),
                },
                r.drifted.map_or_else(dash, |d| d.to_string()),
            ];
            if sharded {
                cells.push(r.shard.clone().unwrap_or_else(dash));
            }
            cells
        })
        .collect();
    let mut header = vec![
        "NODE",
        "ENDPOINT",
        "ENGINE",
        "MODE",
        "REACHABILITY",
        "DECLARED",
        "RUNNING",
        "DRIFT",
    ];
    if sharded {
        header.push("SHARD");
    }
    render::table(&header, cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(node: &str, reachability: &'static str) -> NodeRow {
        NodeRow {
            node: node.to_owned(),
            endpoint: format!("unix:///run/{node}.sock"),
            mode: "enforce",
            reachability,
            engine_version: None,
            api_version: None,
            error: None,
            declared: 2,
            observed: None,
            running: None,
            drifted: None,
            shard: None,
        }
    }

    const STYLES: Styles = Styles { color: false };

    #[test]
    fn nodes_table_shows_counts_and_dashes_for_unreachable() {
        let mut up = row("lyra", "reachable");
        up.engine_version = Some("20.10.24".into());
        up.observed = Some(3);
        up.running = Some(2);
        up.drifted = Some(1);
        insta::assert_snapshot!(render_nodes(&[up, row("vega", "unreachable")], &STYLES), @r"
        NODE  ENDPOINT               ENGINE    MODE     REACHABILITY  DECLARED  RUNNING  DRIFT
        lyra  unix:///run/lyra.sock  20.10.24  enforce  reachable     2         2/3      1
        vega  unix:///run/vega.sock  -         enforce  unreachable   2         -        -
        ");
    }

    #[test]
    fn nodes_table_shows_the_owning_shard_when_known() {
        let mut a = row("lyra", "reachable");
        a.shard = Some("2/3".into());
        insta::assert_snapshot!(render_nodes(&[a, row("vega", "disabled")], &STYLES), @r"
        NODE  ENDPOINT               ENGINE  MODE     REACHABILITY  DECLARED  RUNNING  DRIFT  SHARD
        lyra  unix:///run/lyra.sock  -       enforce  reachable     2         -        -      2/3
        vega  unix:///run/vega.sock  -       enforce  disabled      2         -        -      -
        ");
    }
}
