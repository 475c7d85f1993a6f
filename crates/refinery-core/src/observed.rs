//! What an engine reports about its containers, in core terms (adapters convert into these).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::spec::{Healthcheck, Mount, PortBinding, RestartPolicy, RuntimeOptions};

/// Lifecycle state of a container as the engine reports it (`State.Status`, with `Restarting` read
/// first: a container waiting to restart inspects as running with pid 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl fmt::Display for ContainerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Paused => "paused",
            ContainerState::Restarting => "restarting",
            ContainerState::Removing => "removing",
            ContainerState::Exited => "exited",
            ContainerState::Dead => "dead",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// No healthcheck configured.
    None,
    Starting,
    Healthy,
    Unhealthy,
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Health::None => "-",
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        })
    }
}

/// The defaults an image gives every container made from it; a manifest that does not set a field
/// inherits these, and inheriting them is not drift.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageDefaults {
    pub env: BTreeMap<String, String>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub labels: BTreeMap<String, String>,
    pub healthcheck: Option<Healthcheck>,
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
}

/// A local image: its id and the defaults it gives containers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// `sha256:…`
    pub id: String,
    pub tags: Vec<String>,
    pub defaults: ImageDefaults,
    /// `name@sha256:…` for each repository the image was pulled from or pushed to (its
    /// `RepoDigests`); empty for an image only built here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repo_digests: Vec<String>,
}

/// One container as the engine reports it (list + inspect).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedContainer {
    pub id: String,
    /// Without the leading slash.
    pub name: String,
    /// `Config.Image`: the reference the container was created from.
    pub image: String,
    /// `Image`: the id of the image it runs.
    pub image_id: String,
    /// The registry digest of the image it runs (`name@sha256:…`, from the image's
    /// `RepoDigests`, the one of the repository it was created from), when the image came from
    /// a registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_digest: Option<String>,
    pub state: ContainerState,
    pub health: Health,
    pub exit_code: Option<i64>,
    /// RFC 3339, as the engine reports it.
    pub created: String,
    pub started_at: Option<String>,
    /// When it last stopped (`State.FinishedAt`, RFC 3339), if it ever did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    pub ports: Vec<PortBinding>,
    /// Full environment including what the image set.
    pub env: BTreeMap<String, String>,
    pub mounts: Vec<Mount>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub labels: BTreeMap<String, String>,
    pub restart: RestartPolicy,
    pub healthcheck: Option<Healthcheck>,
    /// Defaults of the image the container runs, when the image is still present.
    pub image_defaults: Option<ImageDefaults>,
    /// Networks (with every alias the engine reports), user, limits, …
    #[serde(default)]
    pub options: RuntimeOptions,
    /// Digests of the content-tracked files as found on the host (repository path → digest),
    /// when the materialised copies could be read; `None` reads them from the labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<BTreeMap<String, String>>,
}

/// A network as the engine reports it, for comparing a stack's declared networks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedNetwork {
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    /// Driver options.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<crate::spec::Ipam>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub enable_ipv6: bool,
}

/// A volume as the engine reports it, for comparing a stack's declared named volumes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedVolume {
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    /// Driver options.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

/// Everything one node's engine holds that Refinery compares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    pub containers: Vec<ObservedContainer>,
    /// Local images by every tag they carry (`busybox:latest` → info).
    pub images: BTreeMap<String, ImageInfo>,
}

impl Observed {
    #[must_use]
    pub fn container(&self, name: &str) -> Option<&ObservedContainer> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// The local image a reference resolves to (`busybox` means `busybox:latest`).
    #[must_use]
    pub fn image(&self, reference: &str) -> Option<&ImageInfo> {
        // A digest pin is found by its digest alone (`name:tag@sha256:…` → `name@sha256:…`).
        if let Ok(r) = crate::ImageRef::parse(reference)
            && let Some(pinned) = r.pinned()
        {
            return self
                .images
                .get(&crate::labels::normalize_image_ref(&pinned));
        }
        self.images.get(reference).or_else(|| {
            self.images
                .get(&crate::labels::normalize_image_ref(reference))
        })
    }
}
