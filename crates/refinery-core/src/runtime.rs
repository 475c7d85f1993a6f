//! The port every container engine adapter implements. The engine crate sees only this.

use std::collections::BTreeMap;
use std::future::Future;

use futures_core::Stream;

use crate::inventory::{EngineImage, EngineNetwork, EngineVolume};
use crate::observed::{Observed, ObservedContainer, ObservedNetwork, ObservedVolume};
use crate::spec::{BuildSpec, ContainerSpec, NetworkSpec, VolumeSpec};

/// Restricts what a node's engine shows to containers carrying one label (`key` or `key=value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSelector {
    pub key: String,
    pub value: Option<String>,
}

impl LabelSelector {
    /// Parses `key` or `key=value`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let (key, value) = match s.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().to_owned())),
            None => (s.trim(), None),
        };
        if key.is_empty() {
            return None;
        }
        Some(LabelSelector {
            key: key.to_owned(),
            value,
        })
    }

    /// The label a container needs to be selected (`key=value`, or `key=` for a bare key).
    #[must_use]
    pub fn label(&self) -> (String, String) {
        (self.key.clone(), self.value.clone().unwrap_or_default())
    }

    #[must_use]
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match (labels.get(&self.key), &self.value) {
            (Some(v), Some(want)) => v == want,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

impl std::fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={v}", self.key),
            None => f.write_str(&self.key),
        }
    }
}

/// A container to create: the spec as it should run (ports already chosen), its engine name and
/// every label it carries, Refinery's own included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    pub name: String,
    pub spec: ContainerSpec,
    pub labels: BTreeMap<String, String>,
}

/// Engine name and API version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EngineInfo {
    pub version: String,
    pub api_version: String,
    pub endpoint: String,
}

/// Progress of an image pull, for a progress bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullProgress {
    pub status: String,
    pub current: u64,
    pub total: u64,
}

/// One engine event about a container (`start`, `die`, `destroy`, `health_status`, …). Events only
/// trigger a pass; the pass decides on a complete snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineEvent {
    /// The engine's action word, without detail: `health_status: healthy` is `health_status`.
    pub action: String,
    /// What follows the action word, if anything (`healthy`).
    pub detail: Option<String>,
    pub container_id: String,
    /// The container's name at the time of the event, if the engine said.
    pub name: Option<String>,
    /// The container's labels, as the engine attached them to the event.
    pub labels: BTreeMap<String, String>,
    /// `die` events carry the exit code.
    pub exit_code: Option<i64>,
    /// When the engine saw it, in nanoseconds since the epoch.
    pub time_nanos: Option<i64>,
}

impl EngineEvent {
    /// The actions that say something about a container's life, which the daemon reacts to.
    pub const TRIGGERS: [&'static str; 12] = [
        "create",
        "start",
        "restart",
        "die",
        "kill",
        "stop",
        "destroy",
        "rename",
        "update",
        "pause",
        "unpause",
        "health_status",
    ];

    /// Whether the daemon should run a pass for this event.
    #[must_use]
    pub fn triggers(&self) -> bool {
        Self::TRIGGERS.contains(&self.action.as_str())
    }
}

/// Errors an adapter maps engine failures into, so nothing above it knows HTTP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    #[error("failed to find {what}")]
    NotFound { what: String },
    #[error("failed to change {what}: {message}")]
    Conflict { what: String, message: String },
    #[error("failed to bind host port {port}: it is already taken")]
    PortTaken { port: u16 },
    /// The engine did not answer: `cause` says why in a way callers can match on (to choose a
    /// hint), `reason` in the engine's or the operating system's words.
    #[error("failed to reach the engine at `{endpoint}`: {reason}")]
    Unreachable {
        endpoint: String,
        cause: UnreachableCause,
        reason: String,
    },
    #[error("failed to {action}: {message}")]
    Other { action: String, message: String },
}

/// Why an engine could not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnreachableCause {
    /// No socket at the endpoint's path.
    NoSocket,
    /// The socket exists, but this user may not open it.
    PermissionDenied,
    /// Nothing listens there (connection refused).
    Refused,
    /// The connection was reset, aborted or closed mid-request.
    Closed,
    /// The engine did not answer in time.
    Timeout,
    /// The `ssh` transport failed (login, host key, no `docker` on the remote).
    Ssh,
    /// The TLS handshake failed (certificates, or plain HTTP on a TLS port).
    Tls,
    /// Anything else that kept the request from the engine.
    Other,
}

impl RuntimeError {
    #[must_use]
    pub fn is_unreachable(&self) -> bool {
        matches!(self, RuntimeError::Unreachable { .. })
    }

    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, RuntimeError::NotFound { .. })
    }
}

pub type RuntimeResult<T> = Result<T, RuntimeError>;

/// One node's container engine.
pub trait ContainerRuntime: Send + Sync {
    /// Engine version; also the reachability probe.
    fn info(&self) -> impl Future<Output = RuntimeResult<EngineInfo>> + Send;

    /// All containers (running and stopped) matching `selector`, and all local images.
    fn observe(
        &self,
        selector: Option<&LabelSelector>,
    ) -> impl Future<Output = RuntimeResult<Observed>> + Send;

    /// One container by id or name.
    fn inspect(&self, id: &str) -> impl Future<Output = RuntimeResult<ObservedContainer>> + Send;

    /// Creates (does not start) a container; returns its id.
    fn create(&self, req: &CreateRequest) -> impl Future<Output = RuntimeResult<String>> + Send;

    /// Starts a container; starting a running one is not an error.
    fn start(&self, id: &str) -> impl Future<Output = RuntimeResult<()>> + Send;

    /// Stops a container, waiting at most `timeout_secs` before killing it.
    fn stop(&self, id: &str, timeout_secs: u32) -> impl Future<Output = RuntimeResult<()>> + Send;

    fn restart(&self, id: &str) -> impl Future<Output = RuntimeResult<()>> + Send;

    fn unpause(&self, id: &str) -> impl Future<Output = RuntimeResult<()>> + Send;

    /// Force-removes a container (and its anonymous volumes); removing what is gone is not an error.
    fn remove(&self, id: &str) -> impl Future<Output = RuntimeResult<()>> + Send;

    fn rename(&self, id: &str, new_name: &str) -> impl Future<Output = RuntimeResult<()>> + Send;

    /// Attaches container `id` to every network `spec` declares, with its aliases and
    /// addresses, as a create does (a start-first replacement joins them once it is healthy).
    fn connect(
        &self,
        id: &str,
        spec: &ContainerSpec,
    ) -> impl Future<Output = RuntimeResult<()>> + Send {
        let _ = spec;
        let action = format!("connect container `{id}` to its networks");
        async move { Err(unsupported(action)) }
    }

    /// Takes a container off a network, so its names and aliases there stop resolving
    /// to it (a start-first replacement does this to the old container before stopping it, and
    /// to the new one until it is healthy).
    fn disconnect(
        &self,
        id: &str,
        network: &str,
    ) -> impl Future<Output = RuntimeResult<()>> + Send {
        let action = format!("disconnect container `{id}` from network `{network}`");
        async move { Err(unsupported(action)) }
    }

    /// Container events from now on, for containers matching `selector`. The stream ends (or
    /// yields an error) when the connection to the engine is lost; the caller reconnects.
    fn events(
        &self,
        selector: Option<&LabelSelector>,
    ) -> impl Stream<Item = RuntimeResult<EngineEvent>> + Send + 'static;

    /// Pulls an image, reporting progress.
    fn pull(
        &self,
        image: &str,
        progress: &(dyn Fn(PullProgress) + Send + Sync),
    ) -> impl Future<Output = RuntimeResult<()>> + Send;

    /// The registry's current digest (`sha256:…`) for a tag reference, asked through the
    /// engine (its registry settings, mirrors and certificates apply) with the credentials pulls
    /// send; nothing is pulled. For a multi-platform image it is the digest of the index, the
    /// one a pull records.
    fn registry_digest(
        &self,
        reference: &str,
    ) -> impl Future<Output = RuntimeResult<String>> + Send {
        let action = format!("ask the registry about `{reference}`");
        async move { Err(unsupported(action)) }
    }

    /// The id of the image a pull of `reference` would give this engine now (the config digest
    /// of the registry's manifest for the engine's platform: of a multi-platform index, its entry
    /// for the engine's OS and architecture), with the credentials pulls send; nothing is
    /// pulled. `Ok(None)` when the runtime cannot tell. It tells whether a new index digest
    /// changes anything for this engine (an index also moves when only another platform's image
    /// changed).
    fn registry_image_id(
        &self,
        reference: &str,
    ) -> impl Future<Output = RuntimeResult<Option<String>>> + Send {
        let _ = reference;
        async move { Ok(None) }
    }

    /// Every tag of the repository `name` (a reference; its tag, if any, is not looked at),
    /// asked of the registry itself (the engine has no tags endpoint) with the credentials pulls
    /// send. For `image_policy: {semver: …}`.
    fn registry_tags(&self, name: &str) -> impl Future<Output = RuntimeResult<Vec<String>>> + Send {
        let action = format!("list the tags of `{name}`");
        async move { Err(unsupported(action)) }
    }

    /// Builds the image `tag` from `build`'s context (its files as committed) with the classic
    /// builder, never pulling a base image; the image carries `labels`.
    fn build_image(
        &self,
        tag: &str,
        build: &BuildSpec,
        labels: &BTreeMap<String, String>,
    ) -> impl Future<Output = RuntimeResult<()>> + Send {
        let _ = (build, labels);
        let action = format!("build image `{tag}`");
        async move { Err(unsupported(action)) }
    }

    /// Every network and volume on the engine (name, driver, labels), to compare a stack's with.
    fn networks_and_volumes(
        &self,
    ) -> impl Future<Output = RuntimeResult<(Vec<ObservedNetwork>, Vec<ObservedVolume>)>> + Send
    {
        async { Err(unsupported("list networks and volumes".to_owned())) }
    }

    /// Makes each host path hold exactly the committed files of its content-tracked mount (a
    /// file rewritten in place, a folder's extra files removed), before a container that mounts
    /// it is created or restarted. An engine that cannot reach the files does nothing.
    fn write_content(
        &self,
        writes: &[(String, crate::content::ContentMount)],
    ) -> impl Future<Output = RuntimeResult<()>> + Send {
        let _ = writes;
        async { Ok(()) }
    }

    /// Creates the network unless one of that name exists (an `external` one must exist);
    /// returns whether it was created. Containers attach to it when they are created.
    fn ensure_network(
        &self,
        net: &NetworkSpec,
    ) -> impl Future<Output = RuntimeResult<bool>> + Send {
        let action = format!("create network `{}`", net.name);
        async move { Err(unsupported(action)) }
    }

    /// Creates the named volume unless it exists (an `external` one must exist); returns
    /// whether it was created. Refinery never removes volumes.
    fn ensure_volume(&self, vol: &VolumeSpec) -> impl Future<Output = RuntimeResult<bool>> + Send {
        let action = format!("create volume `{}`", vol.name);
        async move { Err(unsupported(action)) }
    }
    /// Local images carrying `selector`'s label (all of them without one), each with the
    /// containers (running or stopped, any label) created from it. An engine that cannot list
    /// images reports none.
    fn list_images(
        &self,
        selector: Option<&LabelSelector>,
    ) -> impl Future<Output = RuntimeResult<Vec<EngineImage>>> + Send {
        let _ = selector;
        async { Ok(Vec::new()) }
    }

    /// Volumes carrying `selector`'s label (all without one), each with the containers (running
    /// or stopped, any label) that mount it.
    fn list_volumes(
        &self,
        selector: Option<&LabelSelector>,
    ) -> impl Future<Output = RuntimeResult<Vec<EngineVolume>>> + Send {
        let _ = selector;
        async { Ok(Vec::new()) }
    }

    /// Networks carrying `selector`'s label (all without one), each with the containers attached.
    fn list_networks(
        &self,
        selector: Option<&LabelSelector>,
    ) -> impl Future<Output = RuntimeResult<Vec<EngineNetwork>>> + Send {
        let _ = selector;
        async { Ok(Vec::new()) }
    }

    /// Removes an image reference (untags it; the image goes with its last tag) or a dangling
    /// image by id, never by force: an image a container uses is a conflict. Gone is not an error.
    fn remove_image(&self, reference: &str) -> impl Future<Output = RuntimeResult<()>> + Send {
        let action = format!("remove image `{reference}`");
        async move { Err(unsupported(action)) }
    }

    /// Points the tag `reference` (`name:tag`) at the local image `image` (an id or a
    /// reference), as `docker tag` does; the image it pointed at before keeps its other tags.
    fn tag_image(
        &self,
        image: &str,
        reference: &str,
    ) -> impl Future<Output = RuntimeResult<()>> + Send {
        let action = format!("tag image `{image}` as `{reference}`");
        async move { Err(unsupported(action)) }
    }

    /// Removes a volume, never by force: a volume in use is a conflict. Gone is not an error.
    fn remove_volume(&self, name: &str) -> impl Future<Output = RuntimeResult<()>> + Send {
        let action = format!("remove volume `{name}`");
        async move { Err(unsupported(action)) }
    }

    /// Removes a network; one with containers attached is a conflict. Gone is not an error.
    fn remove_network(&self, id: &str) -> impl Future<Output = RuntimeResult<()>> + Send {
        let action = format!("remove network `{id}`");
        async move { Err(unsupported(action)) }
    }
}

fn unsupported(action: String) -> RuntimeError {
    RuntimeError::Other {
        action,
        message: "this engine does not support it".to_owned(),
    }
}
