//! What a diff finds: drift of a kind, field by field, per resource. Below the diff that makes
//! it, the manifest that names its kinds and the policy that decides on it.

use std::fmt;

use serde::Serialize;

use crate::port_fallback::Degraded;
use crate::resource_id::ResourceId;

/// The kinds of drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// Exists on the engine, declared nowhere.
    Unauthorized,
    /// Declared, absent.
    Missing,
    /// Runs another image than declared.
    Image,
    /// A field differs (env, ports, mounts, command, entrypoint, labels, restart, healthcheck).
    Config,
    /// Not running (exited, paused, restarting) or unhealthy.
    Status,
    /// The registry's current digest for the declared tag differs from the digest the running
    /// container was created from: an update is available.
    ImageUpdate,
    /// A Kubernetes object Refinery applied from a `kubernetes:` source that the commit no
    /// longer declares (deleted only under the source's `prune: true`).
    Orphan,
}

/// Every drift kind's name, in [`DriftKind`]'s order: the metrics' series and what an alert
/// channel's `drift_types` may name.
pub const DRIFT_TYPES: [&str; 7] = [
    "unauthorized",
    "missing",
    "image",
    "config",
    "status",
    "image_update",
    "orphan",
];

impl DriftKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::Unauthorized => "unauthorized",
            DriftKind::Missing => "missing",
            DriftKind::Image => "image",
            DriftKind::Config => "config",
            DriftKind::Status => "status",
            DriftKind::ImageUpdate => "image_update",
            DriftKind::Orphan => "orphan",
        }
    }
}

impl fmt::Display for DriftKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One differing field: what git says, what the engine has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// `env.LOG_LEVEL`, `ports`, `labels.team`, `restart`, …
    pub field: String,
    pub desired: String,
    pub observed: String,
    /// Matched an `ignore_differences` path: shown on request, never acted on.
    pub ignored: bool,
}

/// One drift of one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub id: ResourceId,
    pub kind: DriftKind,
    /// Engine id of the container, when there is one.
    pub container_id: Option<String>,
    /// One line for tables (`exited (code 137)`, `3 fields differ`).
    pub summary: String,
    pub changes: Vec<FieldChange>,
}

impl Drift {
    /// Whether it counts as drift: some change is not under `ignore_differences` (a drift without
    /// field changes, like `missing`, always counts).
    #[must_use]
    pub fn counts(&self) -> bool {
        self.changes.is_empty() || self.changes.iter().any(|c| !c.ignored)
    }
}

/// What a node's diff found: drifts and the declared resources that are in sync.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DriftReport {
    pub drifts: Vec<Drift>,
    pub in_sync: Vec<ResourceId>,
    /// Declared containers running on a declared fallback host port: not drift while the primary
    /// is taken (they may be in `in_sync`), config drift on `ports` once it is free again.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub degraded: Vec<Degraded>,
}

impl DriftReport {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.drifts.is_empty()
    }
}
