//! Diff of a stack's networks and named volumes against what the engine has: a missing one is `missing`
//! drift (created again), one whose driver or declared labels differ is `config` drift (reported,
//! never recreated: a network has containers on it, a volume holds data).

use crate::drift_report::{Drift, DriftKind, DriftReport, FieldChange};
use crate::observed::{ObservedNetwork, ObservedVolume};
use crate::resource_id::{DockerKind, ResourceId};
use crate::spec::{NetworkSpec, VolumeSpec};

use crate::labels::LABEL_VERSION;

/// A node's declared stack networks and volumes, and every network and volume its engine has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackResources {
    pub networks: Vec<NetworkSpec>,
    pub volumes: Vec<VolumeSpec>,
    pub observed_networks: Vec<ObservedNetwork>,
    pub observed_volumes: Vec<ObservedVolume>,
}

/// `docker/<node>/network/<name>`.
#[must_use]
pub fn network_id(node: &str, name: &str) -> ResourceId {
    ResourceId::docker(node, DockerKind::Network, name)
}

/// `docker/<node>/volume/<name>`.
#[must_use]
pub fn volume_id(node: &str, name: &str) -> ResourceId {
    ResourceId::docker(node, DockerKind::Volume, name)
}

/// Whether `id` is a network or a volume (a stack's, when it is declared).
#[must_use]
pub fn is_network_or_volume(id: &ResourceId) -> bool {
    matches!(
        id,
        ResourceId::Docker {
            kind: DockerKind::Network | DockerKind::Volume,
            ..
        }
    )
}

/// The driver and the declared labels (the compose version label aside: another docker compose
/// release writes its own) that differ. Labels the engine has beyond the declared ones do not
/// count.
fn changes(
    driver: &str,
    labels: &std::collections::BTreeMap<String, String>,
    observed_driver: &str,
    observed_labels: &std::collections::BTreeMap<String, String>,
) -> Vec<FieldChange> {
    let mut out = Vec::new();
    if driver != observed_driver {
        out.push(FieldChange {
            field: "driver".into(),
            desired: driver.to_owned(),
            observed: observed_driver.to_owned(),
            ignored: false,
        });
    }
    for (k, v) in labels {
        if k == LABEL_VERSION {
            continue;
        }
        let seen = observed_labels.get(k);
        if seen != Some(v) {
            out.push(FieldChange {
                field: format!("labels.{k}"),
                desired: v.clone(),
                observed: seen.cloned().unwrap_or_default(),
                ignored: false,
            });
        }
    }
    out
}

fn push(
    report: &mut DriftReport,
    id: ResourceId,
    what: &str,
    external: bool,
    found: Option<Vec<FieldChange>>,
) {
    match found {
        None => report.drifts.push(Drift {
            id,
            kind: DriftKind::Missing,
            container_id: None,
            summary: if external {
                format!("external {what} not on the engine")
            } else {
                "not on the engine".into()
            },
            changes: Vec::new(),
        }),
        Some(changes) if changes.is_empty() => report.in_sync.push(id),
        Some(changes) => {
            let summary = match changes.as_slice() {
                [one] => format!("{} differs", one.field),
                many => format!("{} fields differ", many.len()),
            };
            report.drifts.push(Drift {
                id,
                kind: DriftKind::Config,
                container_id: None,
                summary,
                changes,
            });
        }
    }
}

/// Appends the drift (or in-sync entry) of every declared network and volume on `node`.
pub fn diff_stack_resources(node: &str, r: &StackResources, report: &mut DriftReport) {
    for net in r.networks.iter().filter(|n| n.node == node) {
        let found = r
            .observed_networks
            .iter()
            .find(|o| o.name == net.name)
            .map(|o| {
                if net.external {
                    Vec::new()
                } else {
                    changes(&net.driver, &net.labels, &o.driver, &o.labels)
                }
            });
        push(
            report,
            network_id(node, &net.name),
            "network",
            net.external,
            found,
        );
    }
    for vol in r.volumes.iter().filter(|v| v.node == node) {
        let found = r
            .observed_volumes
            .iter()
            .find(|o| o.name == vol.name)
            .map(|o| {
                if vol.external {
                    Vec::new()
                } else {
                    changes(&vol.driver, &vol.labels, &o.driver, &o.labels)
                }
            });
        push(
            report,
            volume_id(node, &vol.name),
            "volume",
            vol.external,
            found,
        );
    }
}
