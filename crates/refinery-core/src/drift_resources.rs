//! Diff of a stack's networks and named volumes against what the engine has: a missing one is `missing`
//! drift (created again), one whose driver or declared labels differ is `config` drift (reported,
//! never recreated: a network has containers on it, a volume holds data).

use std::collections::BTreeMap;

use crate::drift_report::{Drift, DriftKind, DriftReport, FieldChange};
use crate::manifest::Issue;
use crate::observed::{ObservedNetwork, ObservedVolume};
use crate::resource_id::{DockerKind, ResourceId};
use crate::spec::{Declared, IpamPool, NetworkSpec, VolumeSpec};
use crate::yaml::Loc;

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

fn field(field: &str, desired: String, observed: String) -> FieldChange {
    FieldChange {
        field: field.to_owned(),
        desired,
        observed,
        ignored: false,
    }
}

fn pairs(m: &BTreeMap<String, String>) -> String {
    let v: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if v.is_empty() {
        "(none)".to_owned()
    } else {
        v.join(", ")
    }
}

/// The driver, the declared labels (the compose version label aside: another docker compose
/// release writes its own) and the declared driver options that differ. Labels and options the
/// engine has beyond the declared ones do not count (a driver fills in its own).
fn changes(
    driver: &str,
    labels: &BTreeMap<String, String>,
    options: &BTreeMap<String, String>,
    observed_driver: &str,
    observed_labels: &BTreeMap<String, String>,
    observed_options: &BTreeMap<String, String>,
) -> Vec<FieldChange> {
    let mut out = Vec::new();
    if driver != observed_driver {
        out.push(field(
            "driver",
            driver.to_owned(),
            observed_driver.to_owned(),
        ));
    }
    for (k, v) in labels {
        if k == LABEL_VERSION {
            continue;
        }
        let seen = observed_labels.get(k);
        if seen != Some(v) {
            out.push(field(
                &format!("labels.{k}"),
                v.clone(),
                seen.cloned().unwrap_or_default(),
            ));
        }
    }
    if options
        .iter()
        .any(|(k, v)| observed_options.get(k) != Some(v))
    {
        out.push(field(
            "driver_opts",
            pairs(options),
            pairs(observed_options),
        ));
    }
    out
}

/// A network's settings beyond driver, labels and options: `internal`, `enable_ipv6`,
/// `attachable` where declared, and the declared parts of `ipam` (the engine picks a subnet when
/// none is declared).
fn network_changes(net: &NetworkSpec, o: &ObservedNetwork) -> Vec<FieldChange> {
    let mut out = Vec::new();
    for (key, d, h) in [
        ("internal", net.internal, o.internal),
        ("enable_ipv6", net.enable_ipv6, o.enable_ipv6),
    ] {
        if d != h {
            out.push(field(key, d.to_string(), h.to_string()));
        }
    }
    // docker-compose 1.29 makes every network of its own attachable: compared where declared.
    if net.attachable && !o.attachable {
        out.push(field("attachable", "true".into(), "false".into()));
    }
    if let Some(ipam) = &net.ipam {
        let seen = o.ipam.clone().unwrap_or_default();
        let driver = |d: &Option<String>| d.clone().unwrap_or_else(|| "default".to_owned());
        if ipam.driver.is_some() && driver(&ipam.driver) != driver(&seen.driver) {
            out.push(field(
                "ipam.driver",
                driver(&ipam.driver),
                driver(&seen.driver),
            ));
        }
        let show = |pools: &[IpamPool]| -> String {
            let v: Vec<String> = pools
                .iter()
                .map(|p| {
                    [
                        ("subnet", &p.subnet),
                        ("ip_range", &p.ip_range),
                        ("gateway", &p.gateway),
                    ]
                    .iter()
                    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
                    .collect::<Vec<_>>()
                    .join(" ")
                })
                .collect();
            if v.is_empty() {
                "(none)".to_owned()
            } else {
                v.join(", ")
            }
        };
        // Each declared pool must be there, with what it declares.
        let found = |p: &IpamPool| {
            seen.pools.iter().any(|s| {
                (p.subnet.is_none() || p.subnet == s.subnet)
                    && (p.ip_range.is_none() || p.ip_range == s.ip_range)
                    && (p.gateway.is_none() || p.gateway == s.gateway)
            })
        };
        if !ipam.pools.iter().all(found) {
            out.push(field("ipam.config", show(&ipam.pools), show(&seen.pools)));
        }
    }
    out
}

/// Where an external network or volume is declared, for the problem of its absence.
fn declared_at(d: Option<&Declared>) -> String {
    d.map_or_else(String::new, |d| {
        format!(" (declared at {}:{})", d.file, d.loc)
    })
}

/// Every external network and volume of `manifest` the report finds missing on `node`, as a
/// problem at its declaration: Refinery never creates one, and nothing that uses it can be
/// created.
#[must_use]
pub fn missing_externals(
    manifest: &crate::manifest::Manifest,
    node: &str,
    report: &DriftReport,
) -> Vec<Issue> {
    let missing = |id: &ResourceId| {
        report
            .drifts
            .iter()
            .any(|d| d.kind == DriftKind::Missing && d.id == *id)
    };
    let mut out = Vec::new();
    let mut push = |what: &str, name: &str, declared: Option<&Declared>, command: &str| {
        let (file, loc) = declared.map_or((manifest.file.as_str(), Loc::default()), |d| {
            (d.file.as_str(), d.loc)
        });
        out.push(
            Issue::new(
                file,
                loc,
                &format!("{what}s.{name}"),
                format!("external {what} `{name}` does not exist on node `{node}`"),
            )
            .with_hint(format!(
                "an external {what} is made outside Refinery: `{command} {name}` on the node, or drop `external: true` to have it created"
            )),
        );
    };
    for net in manifest
        .stack_networks
        .iter()
        .filter(|n| n.node == node && n.external)
    {
        if missing(&network_id(node, &net.name)) {
            push(
                "network",
                &net.name,
                net.declared.as_ref(),
                "docker network create",
            );
        }
    }
    for vol in manifest
        .stack_volumes
        .iter()
        .filter(|v| v.node == node && v.external)
    {
        if missing(&volume_id(node, &vol.name)) {
            push(
                "volume",
                &vol.name,
                vol.declared.as_ref(),
                "docker volume create",
            );
        }
    }
    out
}

/// Whether `id` is an external network or volume `manifest` declares on its node.
#[must_use]
pub fn is_external(manifest: &crate::manifest::Manifest, id: &ResourceId) -> bool {
    let (node, name) = (id.node(), id.name());
    match id {
        ResourceId::Docker {
            kind: DockerKind::Network,
            ..
        } => manifest
            .stack_networks
            .iter()
            .any(|n| n.node == node && n.name == name && n.external),
        ResourceId::Docker {
            kind: DockerKind::Volume,
            ..
        } => manifest
            .stack_volumes
            .iter()
            .any(|v| v.node == node && v.name == name && v.external),
        _ => false,
    }
}

fn push(
    report: &mut DriftReport,
    id: ResourceId,
    what: &str,
    external: bool,
    declared: &str,
    found: Option<Vec<FieldChange>>,
) {
    match found {
        None => report.drifts.push(Drift {
            id,
            kind: DriftKind::Missing,
            container_id: None,
            summary: if external {
                format!("external {what} not on the engine{declared}; Refinery never creates it")
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
                    let mut c = changes(
                        &net.driver,
                        &net.labels,
                        &net.options,
                        &o.driver,
                        &o.labels,
                        &o.options,
                    );
                    c.extend(network_changes(net, o));
                    c
                }
            });
        push(
            report,
            network_id(node, &net.name),
            "network",
            net.external,
            &declared_at(net.declared.as_ref()),
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
                    changes(
                        &vol.driver,
                        &vol.labels,
                        &vol.options,
                        &o.driver,
                        &o.labels,
                        &o.options,
                    )
                }
            });
        push(
            report,
            volume_id(node, &vol.name),
            "volume",
            vol.external,
            &declared_at(vol.declared.as_ref()),
            found,
        );
    }
}
