//! `refinery status`

use refinery_core::labels;
use serde::Serialize;

use crate::commands::load_desired;
use crate::commands::plan::report_unreachable;
use crate::error::CliError;
use crate::exit_code;
use crate::render;
use crate::settings::Settings;
use refinery_controller::node_pass as pass;

#[derive(Serialize)]
struct Row {
    node: String,
    container: String,
    id: String,
    image: String,
    state: String,
    health: String,
    drift: Vec<String>,
    /// `port 8086 instead of 8085`: running on a declared fallback host port.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    degraded: Vec<String>,
    revision: Option<String>,
    /// The registry digest the container runs (`name@sha256:…`), when its image came from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    /// The `image_update` drift's summary: `update available: app:1.4.2 → 1.5.0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    update: Option<String>,
}

/// A row per stack network and named volume on `node`: present or missing, and its drift.
fn stack_resource_rows(
    manifest: &refinery_core::Manifest,
    node: &str,
    eval: &refinery_engine::Evaluation,
) -> Vec<Row> {
    use refinery_core::compose::{network_id, volume_id};
    let networks = manifest
        .stack_networks
        .iter()
        .filter(|n| n.node == node)
        .map(|n| (network_id(node, &n.name), &n.name, "network", &n.driver));
    let volumes = manifest
        .stack_volumes
        .iter()
        .filter(|v| v.node == node)
        .map(|v| (volume_id(node, &v.name), &v.name, "volume", &v.driver));
    networks
        .chain(volumes)
        .map(|(id, name, kind, driver)| {
            let steps: Vec<&refinery_core::Step> = eval
                .plan
                .steps
                .iter()
                .filter(|s| s.id == id && s.kind != refinery_core::StepKind::Ignore)
                .collect();
            let missing = steps
                .iter()
                .any(|s| s.drifts.contains(&refinery_core::DriftKind::Missing));
            Row {
                node: node.to_owned(),
                container: name.clone(),
                id: id.to_string(),
                image: format!("({kind}, {driver})"),
                state: if missing { "missing" } else { "present" }.into(),
                health: "-".into(),
                drift: steps
                    .iter()
                    .flat_map(|s| s.drifts.iter().map(ToString::to_string))
                    .collect(),
                degraded: Vec::new(),
                digest: None,
                update: None,
                revision: None,
            }
        })
        .collect()
}

pub async fn run(settings: &Settings, args: &crate::args::StatusArgs) -> Result<u8, CliError> {
    let mut settings = settings.clone();
    settings.shard = args.shard;
    let settings = &settings;
    let tls = match &args.ha {
        Some(url) => crate::settings::etcd_tls(&args.tls, url)?,
        None => None,
    };
    let desired = load_desired(settings)?;
    let passes = pass::run(&desired, &settings.selection()).await?;
    report_unreachable(&passes);
    let mut rows = Vec::new();
    let mut unauthorized = 0usize;
    for p in &passes {
        let declared = desired.manifest.containers_on(&p.node.name);
        match &p.result {
            Ok((observed, eval)) => {
                unauthorized += eval
                    .plan
                    .steps
                    .iter()
                    .filter(|s| s.drifts.contains(&refinery_core::DriftKind::Unauthorized))
                    .count();
                for spec in declared {
                    let id = refinery_core::ResourceId::for_spec(&p.node.name, spec);
                    let o = refinery_core::drift::declared_container(spec, observed);
                    let drift: Vec<String> = eval
                        .plan
                        .steps
                        .iter()
                        .filter(|s| s.id == id && s.kind != refinery_core::StepKind::Ignore)
                        .flat_map(|s| s.drifts.iter().map(ToString::to_string))
                        .collect();
                    rows.push(Row {
                        node: p.node.name.clone(),
                        container: spec.name.clone(),
                        id: id.to_string(),
                        image: o.map_or_else(|| spec.image.clone(), |o| o.image.clone()),
                        state: o.map_or_else(|| "missing".into(), |o| o.state.to_string()),
                        health: o.map_or_else(|| "-".into(), |o| o.health.to_string()),
                        drift,
                        degraded: eval
                            .report
                            .degraded
                            .iter()
                            .filter(|d| d.id == id)
                            .map(ToString::to_string)
                            .collect(),
                        digest: o.and_then(|o| o.repo_digest.clone()),
                        update: eval
                            .plan
                            .steps
                            .iter()
                            .filter(|s| s.id == id && s.kind != refinery_core::StepKind::Ignore)
                            .flat_map(|s| s.details.iter())
                            .find_map(|d| d.strip_prefix("image_update: "))
                            .map(str::to_owned),
                        revision: o
                            .and_then(|o| o.labels.get(labels::REVISION))
                            .map(|r| r.get(..12).unwrap_or(r).to_owned()),
                    });
                }
                rows.extend(stack_resource_rows(&desired.manifest, &p.node.name, eval));
            }
            Err(_) => {
                for spec in declared {
                    rows.push(Row {
                        node: p.node.name.clone(),
                        container: spec.name.clone(),
                        id: refinery_core::ResourceId::for_spec(&p.node.name, spec).to_string(),
                        image: spec.image.clone(),
                        state: "unknown".into(),
                        health: "-".into(),
                        drift: vec!["node unreachable".into()],
                        degraded: Vec::new(),
                        digest: None,
                        update: None,
                        revision: None,
                    });
                }
            }
        }
    }
    let kube = refinery_controller::kube_sources::run(
        &desired,
        &settings.repo,
        settings.now,
        &refinery_controller::node_pass::NOTHING_SUSPENDED,
    )
    .await;
    refinery_controller::kube_sources::report_errors(&kube);
    for p in &kube {
        unauthorized += kube_rows(p, &mut rows);
    }
    let drifted = rows.iter().any(|r| !r.drift.is_empty()) || unauthorized > 0;
    let ha = match &args.ha {
        Some(url) => match refinery_ha::read_status(&url.for_shard(args.shard), tls).await {
            Ok(s) => Some(s),
            Err(e) => {
                eprint!(
                    "{}",
                    render::error(
                        &CliError::Ha {
                            url: url.to_string(),
                            message: e
                        },
                        &[]
                    )
                );
                None
            }
        },
        None => None,
    };
    if settings.json {
        let json = match (&args.ha, &ha) {
            (Some(_), ha) => serde_json::json!({"ha": ha, "containers": rows}),
            (None, _) => serde_json::to_value(&rows).unwrap_or_default(),
        };
        crate::output::json(&json)?;
    } else {
        crate::output::print(&render_status(&rows, unauthorized, ha.as_ref()))?;
    }
    Ok(
        if passes.iter().any(|p| p.result.is_err()) || kube.iter().any(|p| p.result.is_err()) {
            exit_code::UNREACHABLE
        } else if drifted {
            exit_code::DRIFT
        } else {
            exit_code::OK
        },
    )
}

/// One row per declared object of a `kubernetes:` source (`KIND/NAME` in the container column),
/// and per `orphan` (state `orphan`); returns how many undeclared workloads it found.
fn kube_rows(p: &refinery_controller::kube_sources::KubePass, rows: &mut Vec<Row>) -> usize {
    use refinery_core::{DriftKind, ResourceId, StepKind};
    let Ok(eval) = &p.result else {
        rows.push(Row {
            node: p.label.clone(),
            container: "-".into(),
            id: p.label.clone(),
            image: "-".into(),
            state: "unknown".into(),
            health: "-".into(),
            drift: vec!["source failed (see above)".into()],
            degraded: Vec::new(),
            digest: None,
            update: None,
            revision: None,
        });
        return 0;
    };
    let mut ids: Vec<&ResourceId> = eval.report.in_sync.iter().collect();
    ids.extend(
        eval.report
            .drifts
            .iter()
            .filter(|d| d.kind != DriftKind::Unauthorized)
            .map(|d| &d.id),
    );
    ids.sort();
    ids.dedup();
    for id in ids {
        let ResourceId::Kube { kind, name, .. } = id else {
            continue;
        };
        let declared = p
            .objects
            .iter()
            .find(|o| o.kind.to_lowercase() == *kind && o.name == *name);
        let images: Vec<String> = declared
            .map(|o| refinery_kube::diff::container_images(&o.body))
            .unwrap_or_default()
            .into_iter()
            .map(|(_, i)| i)
            .collect();
        let missing = eval
            .report
            .drifts
            .iter()
            .any(|d| &d.id == id && d.kind == DriftKind::Missing);
        rows.push(Row {
            node: p.label.clone(),
            container: format!("{kind}/{name}"),
            id: id.to_string(),
            image: if images.is_empty() {
                "-".into()
            } else {
                images.join(",")
            },
            state: if missing {
                "missing".into()
            } else if declared.is_none() {
                // Applied from this source earlier, no longer declared.
                "orphan".into()
            } else {
                "present".into()
            },
            health: "-".into(),
            drift: eval
                .plan
                .steps
                .iter()
                .filter(|s| &s.id == id && s.kind != StepKind::Ignore)
                .flat_map(|s| s.drifts.iter().map(ToString::to_string))
                .collect(),
            degraded: Vec::new(),
            digest: None,
            update: None,
            revision: None,
        });
    }
    eval.plan
        .steps
        .iter()
        .filter(|s| s.drifts.contains(&DriftKind::Unauthorized))
        .count()
}

/// The `status` table, then the count of undeclared containers and the election's summary.
fn render_status(rows: &[Row], unauthorized: usize, ha: Option<&refinery_ha::HaStatus>) -> String {
    let table_rows = rows
        .iter()
        .map(|r| {
            vec![
                r.node.clone(),
                r.container.clone(),
                match r.digest.as_deref().and_then(|d| d.split_once('@')) {
                    // The digest it runs, shortened: `app:1 (sha256:0123456789ab)`.
                    Some((_, d)) => format!("{} ({})", r.image, d.get(..19).unwrap_or(d)),
                    None => r.image.clone(),
                },
                r.state.clone(),
                r.health.clone(),
                match (r.drift.is_empty(), r.degraded.is_empty()) {
                    (true, true) => "in sync".into(),
                    (true, false) => format!("degraded ({})", r.degraded.join("; ")),
                    (false, _) => match &r.update {
                        // `image_update (update available: app:1.4.2 → 1.5.0)`
                        Some(u) => format!("{} ({u})", r.drift.join(",")),
                        None => r.drift.join(","),
                    },
                },
                r.revision.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut text = render::table(
        &[
            "NODE",
            "CONTAINER",
            "IMAGE",
            "STATE",
            "HEALTH",
            "DRIFT",
            "REVISION",
        ],
        table_rows,
    );
    if unauthorized > 0 {
        text.push_str(&format!(
            "\n{unauthorized} container{} not declared anywhere (see `refinery plan`)\n",
            if unauthorized == 1 { " is" } else { "s are" }
        ));
    }
    if let Some(h) = ha {
        text.push_str(&format!("\n{}\n", refinery_ha::summary(h)));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(container: &str, drift: &[&str], degraded: &[&str]) -> Row {
        Row {
            node: "lyra".into(),
            container: container.into(),
            id: "0123456789ab".into(),
            image: "app:1".into(),
            state: "running".into(),
            health: "healthy".into(),
            drift: drift.iter().map(|d| (*d).to_owned()).collect(),
            degraded: degraded.iter().map(|d| (*d).to_owned()).collect(),
            revision: Some("89abcdef0123".into()),
            digest: None,
            update: None,
        }
    }

    #[test]
    fn status_table_names_the_update_available() {
        let mut r = row("app", &["image_update"], &[]);
        r.update = Some("update available: reg/app:1.4.2 → 1.5.0".into());
        let text = render_status(&[r], 0, None);
        assert!(
            text.contains("image_update (update available: reg/app:1.4.2 → 1.5.0)"),
            "{text}"
        );
    }

    #[test]
    fn status_table_in_sync_degraded_drifted_pinned_and_unauthorized() {
        let mut pinned = row("db", &[], &[]);
        pinned.digest = Some(
            "app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
        );
        pinned.revision = None;
        let rows = [
            row("web", &[], &[]),
            row("api", &[], &["port 8086 instead of 8085"]),
            row("worker", &["image", "config"], &[]),
            pinned,
        ];
        insta::assert_snapshot!(render_status(&rows, 2, None));
        insta::assert_snapshot!(
            "status_one_unauthorized",
            render_status(&rows[..1], 1, None)
        );
    }
}
