//! `refinery audit`: classify every node's containers, images, volumes and networks, print them,
//! and append one seed-004 record per node to the audit log. Never writes to an engine.

use std::path::{Path, PathBuf};

use refinery_core::RuntimeError;
use refinery_core::inventory::{
    AuditRecord, Class, InventoryState, Item, Kind, NodeAudit, classify,
};
use refinery_core::manifest::NodeSpec;
use refinery_store::{audit_log, inventory_state_file};
use serde::Serialize;

use crate::args::AuditArgs;
use crate::commands::load_desired;
use crate::error::{CliError, unreachable_hints};
use crate::exit_code;
use crate::output;
use crate::render::{self, Styles};
use crate::settings::Settings;
use refinery_controller::desired::Desired;
use refinery_controller::node_engines as engines;

/// One node's audit, or why there is none.
pub struct NodeResult<'m> {
    pub node: &'m NodeSpec,
    pub engine: Option<refinery_docker::DockerRuntime>,
    pub audit: Result<NodeAudit, RuntimeError>,
}

/// The state directory: `--state-dir`, else `refinery/` in the git directory.
pub fn state_dir(settings: &Settings, given: Option<&Path>) -> Result<PathBuf, CliError> {
    match given {
        Some(d) => Ok(d.to_owned()),
        None => Ok(refinery_controller::default_state_dir(&settings.repo)?),
    }
}

/// Collects and classifies every selected node (a node that does not answer does not stop the
/// others), then remembers what was in use in the inventory state file.
pub async fn audit_nodes<'m>(
    settings: &Settings,
    desired: &'m Desired,
    state_dir: &Path,
) -> Result<Vec<NodeResult<'m>>, CliError> {
    let manifest = &desired.manifest;
    let state_path = inventory_state_file::path_in(state_dir);
    let mut state: InventoryState = inventory_state_file::load(&state_path)?;
    let selector = refinery_engine::node_selector(manifest);
    // The images a daemon here needs to put an image update on trial back.
    let updates = refinery_controller::daemon_image_updates(&settings.repo, Some(state_dir));
    let mut out = Vec::new();
    for ne in engines::select(manifest, &settings.nodes, &settings.repo)? {
        let (engine, audit) = match ne.engine {
            Ok(engine) => {
                let audit = match refinery_engine::inventory_actions::collect(&engine, selector)
                    .await
                {
                    Ok(c) => {
                        let mut audit =
                            classify(manifest, &ne.node.name, c.snapshot(), &state, settings.now);
                        refinery_controller::keep_trial_images(&mut audit, &updates);
                        state.record(&ne.node.name, &c.images, &c.volumes, settings.now);
                        Ok(audit)
                    }
                    Err(e) => Err(e),
                };
                (Some(engine), audit)
            }
            Err(e) => (None, Err(e)),
        };
        out.push(NodeResult {
            node: ne.node,
            engine,
            audit,
        });
    }
    if let Err(e) = inventory_state_file::save(&state_path, &state)
        && !settings.quiet
    {
        eprintln!("warning: {e}; unused ages keep counting from the last saved state");
    }
    Ok(out)
}

/// Prints every unreachable node's error with its hints (stderr).
pub fn report_unreachable(results: &[NodeResult<'_>]) {
    for r in results {
        if let Err(e) = &r.audit {
            let err = CliError::Unreachable {
                node: r.node.name.clone(),
                source: e.clone(),
            };
            eprint!("{}", render::error(&err, &unreachable_hints(e)));
        }
    }
}

/// `1.5 MB`, `820 kB`, `12 B`; `-` when unknown.
#[must_use]
pub fn human_bytes(n: Option<u64>) -> String {
    let Some(n) = n else {
        return "-".to_owned();
    };
    let units = ["B", "kB", "MB", "GB", "TB"];
    #[allow(clippy::cast_precision_loss)]
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < units.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[unit])
    }
}

/// One node in `audit`'s report.
#[derive(Debug, Serialize)]
pub struct NodeReport<'a> {
    node: &'a str,
    mode: &'a str,
    reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    items: Vec<&'a Item>,
    /// Bytes a cleanup would free.
    reclaimable_bytes: u64,
}

/// What `audit` found on every node.
#[derive(Debug, Serialize)]
pub struct AuditReport<'a> {
    revision: &'a str,
    audit_log: String,
    nodes: Vec<NodeReport<'a>>,
}

impl<'a> AuditReport<'a> {
    fn new(desired: &'a Desired, audit_log: &Path, results: &'a [NodeResult<'_>]) -> Self {
        AuditReport {
            revision: &desired.commit.id,
            audit_log: audit_log.display().to_string(),
            nodes: results
                .iter()
                .map(|r| match &r.audit {
                    Ok(a) => NodeReport {
                        node: &r.node.name,
                        mode: a.mode.as_str(),
                        reachable: true,
                        error: None,
                        items: a.items.iter().collect(),
                        reclaimable_bytes: a
                            .items
                            .iter()
                            .filter(|i| i.class == Class::SafeToDelete)
                            .map(|i| i.frees)
                            .sum(),
                    },
                    Err(e) => NodeReport {
                        node: &r.node.name,
                        mode: desired.manifest.mode_of(&r.node.name).as_str(),
                        reachable: false,
                        error: Some(e.to_string()),
                        items: Vec::new(),
                        reclaimable_bytes: 0,
                    },
                })
                .collect(),
        }
    }
}

/// The item table (one row per resource), a blank line, and the counts per node and kind with
/// what a cleanup would free.
#[must_use]
pub fn render_audit(r: &AuditReport<'_>, _styles: &Styles) -> String {
    let mut items = Vec::new();
    for n in r.nodes.iter().filter(|n| n.reachable) {
        for i in &n.items {
            items.push(vec![
                n.node.to_owned(),
                i.kind.to_string(),
                i.name.clone(),
                i.class.as_str().to_owned(),
                human_bytes(i.size),
                i.reason.clone(),
            ]);
        }
    }
    let mut counts = Vec::new();
    for n in &r.nodes {
        if !n.reachable {
            counts.push(vec![
                n.node.to_owned(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "unreachable".into(),
            ]);
            continue;
        }
        for kind in Kind::ALL {
            let of_kind = || n.items.iter().filter(move |i| i.kind == kind);
            let freed: u64 = of_kind()
                .filter(|i| i.class == Class::SafeToDelete)
                .map(|i| i.frees)
                .sum();
            let mut row = vec![n.node.to_owned(), kind.plural().to_owned()];
            row.extend(Class::ALL.map(|c| of_kind().filter(|i| i.class == c).count().to_string()));
            row.push(if freed > 0 {
                human_bytes(Some(freed))
            } else {
                "-".into()
            });
            counts.push(row);
        }
    }
    let mut out = render::table(&["NODE", "KIND", "NAME", "CLASS", "SIZE", "WHY"], items);
    out.push('\n');
    out.push_str(&render::table(
        &[
            "NODE",
            "KIND",
            "EXPECTED",
            "PROTECTED",
            "SAFE_TO_DELETE",
            "EXTRA",
            "RECLAIMABLE",
        ],
        counts,
    ));
    out
}

pub async fn run(settings: &Settings, args: &AuditArgs) -> Result<u8, CliError> {
    let desired = load_desired(settings)?;
    let dir = state_dir(settings, args.state_dir.as_deref())?;
    let results = audit_nodes(settings, &desired, &dir).await?;
    report_unreachable(&results);
    let log = audit_log::path(&settings.repo, &desired.manifest);
    let lines: Vec<String> = results
        .iter()
        .filter_map(|r| {
            r.audit
                .as_ref()
                .ok()
                .map(|a| AuditRecord::new(a, r.node, settings.now).to_line())
        })
        .collect();
    audit_log::append(&log, &lines)?;
    let report = AuditReport::new(&desired, &log, &results);
    if settings.json {
        output::json(&report)?;
    } else {
        output::print(&render_audit(&report, &settings.styles()))?;
        if !settings.quiet {
            eprintln!(
                "audit: {} record{} appended to `{}`",
                lines.len(),
                if lines.len() == 1 { "" } else { "s" },
                log.display()
            );
        }
    }
    let unreachable = results.iter().any(|r| r.audit.is_err());
    let extras = results
        .iter()
        .any(|r| r.audit.as_ref().is_ok_and(NodeAudit::has_extras));
    Ok(if unreachable {
        exit_code::UNREACHABLE
    } else if extras {
        exit_code::DRIFT
    } else {
        exit_code::OK
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: Kind, name: &str, class: Class, size: Option<u64>, frees: u64) -> Item {
        Item {
            kind,
            name: name.into(),
            id: None,
            class,
            reason: format!("{} rule", class.as_str()),
            size,
            frees,
            used_by: Vec::new(),
            unused_since: None,
        }
    }

    #[test]
    fn audit_renders_items_then_counts_and_unreachable_nodes() {
        let items = [
            item(Kind::Container, "web", Class::Expected, None, 0),
            item(
                Kind::Image,
                "tmp-build:1",
                Class::SafeToDelete,
                Some(1_500_000),
                1_500_000,
            ),
            item(Kind::Volume, "scratch", Class::Extra, Some(12), 0),
        ];
        let report = AuditReport {
            revision: "1ff767bb0c6e2a9d4f5b8c7e1a2b3c4d5e6f7a8b",
            audit_log: "ledger/inventory_audit.jsonl".into(),
            nodes: vec![
                NodeReport {
                    node: "lyra",
                    mode: "enforce",
                    reachable: true,
                    error: None,
                    items: items.iter().collect(),
                    reclaimable_bytes: 1_500_000,
                },
                NodeReport {
                    node: "vega",
                    mode: "enforce",
                    reachable: false,
                    error: Some("failed to reach".into()),
                    items: Vec::new(),
                    reclaimable_bytes: 0,
                },
            ],
        };
        insta::assert_snapshot!(render_audit(&report, &Styles { color: false }));
    }
}
