//! The manifest (`refinery.yaml`, or seed 000's `bloodline_manifest.yaml`) as typed values.

mod channel;
mod env_files;
mod error;
pub(crate) mod load;
pub mod reader;
pub mod specs;

use serde::Serialize;

pub use channel::{
    Channel, ChannelKind, DEFAULT_BURST, DEFAULT_GROUP_WAIT_MS, Destination, EmailDestination,
    TELEGRAM_API,
};
pub use env_files::{EnvFileRef, resolve_env_files};
pub use error::{Issue, ManifestError};
pub use load::{LoadOptions, Loaded, MANIFEST_FILES, load_manifest};

use crate::policy::Action;
use crate::runtime::LabelSelector;
use crate::secret::Secret;
use crate::spec::ContainerSpec;

/// How much a node (or the whole manifest) lets Refinery do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Detect and act.
    #[default]
    Enforce,
    /// Detect and alert only.
    Audit,
    /// Observe only; never write to the engine.
    ReadOnly,
}

impl Mode {
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "enforce" => Some(Mode::Enforce),
            "audit" => Some(Mode::Audit),
            "read-only" | "readonly" | "read_only" => Some(Mode::ReadOnly),
            _ => None,
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
            Mode::ReadOnly => "read-only",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    pub check_interval_secs: u64,
    /// How long a newly committed revision has to become healthy before the daemon rolls back to
    /// the last healthy one.
    pub health_deadline_secs: u64,
    pub drift_detection: bool,
    pub git_auto_commit: bool,
    pub mode: Mode,
    pub discord_webhook: Option<Secret>,
    /// Only containers carrying this label are Refinery's concern (the rest of the engine is
    /// invisible to it); containers it creates carry the label too.
    #[serde(skip)]
    pub selector: Option<LabelSelector>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            check_interval_secs: 60,
            health_deadline_secs: 60,
            drift_detection: true,
            git_auto_commit: true,
            mode: Mode::Enforce,
            discord_webhook: None,
            selector: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsFiles {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

/// A machine whose engine Refinery keeps honest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeSpec {
    pub name: String,
    pub role: Option<String>,
    pub hostname: Option<String>,
    /// Engine endpoint; `None` means `DOCKER_HOST`, else the local socket.
    pub docker: Option<String>,
    pub tls: Option<TlsFiles>,
    pub docker_enabled: bool,
    pub k8s_enabled: bool,
    pub kube_context: Option<String>,
    /// Per-node override of `config.mode`.
    pub mode: Option<Mode>,
}

impl NodeSpec {
    /// A node on the default engine (`DOCKER_HOST`, else the local socket), every option at its
    /// default: what a manifest without `nodes:` gets.
    #[must_use]
    pub fn local(name: impl Into<String>) -> Self {
        NodeSpec {
            name: name.into(),
            role: None,
            hostname: None,
            docker: None,
            tls: None,
            docker_enabled: true,
            k8s_enabled: false,
            kube_context: None,
            mode: None,
        }
    }
}

/// The node name used when a manifest declares none.
pub const DEFAULT_NODE: &str = "local";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackSpec {
    pub name: String,
    pub node: String,
    pub files: Vec<String>,
    pub profiles: Vec<String>,
    pub env_file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KubeSpec {
    pub name: String,
    pub context: Option<String>,
    pub path: String,
    pub namespace: Option<String>,
    /// Delete the objects this source applied that the commit no longer declares (`orphan`
    /// drift); off by default.
    pub prune: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Allowed {
    pub containers: Vec<String>,
    pub images: Vec<String>,
    pub volumes: Vec<String>,
    pub networks: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cleanup {
    pub max_unused_image_age_ms: Option<u64>,
    pub max_unused_volume_age_ms: Option<u64>,
    pub protected_tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Schedule {
    pub cron: String,
    pub timezone: String,
}

/// What may exist beside the declared containers (seed 004).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Inventory {
    pub allowed: Allowed,
    /// Never touched, whatever else says.
    pub protected: Vec<String>,
    pub safe_to_delete: Vec<String>,
    pub cleanup: Cleanup,
    pub schedule: Option<Schedule>,
    /// Where `refinery audit` appends its JSONL records, relative to the work tree (default
    /// `ledger/inventory_audit.jsonl`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_log: Option<String>,
}

/// The rule for one drift type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub action: Action,
    pub grace_period_secs: u64,
    pub exceptions: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Flapping {
    pub max_actions: u32,
    pub window_secs: u64,
}

/// `drift_rules:`; an absent rule means the default for its type (see `policy`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DriftRules {
    pub unauthorized_containers: Option<Rule>,
    pub missing_containers: Option<Rule>,
    pub image_drift: Option<Rule>,
    pub config_drift: Option<Rule>,
    pub status_drift: Option<Rule>,
    pub flapping: Option<Flapping>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowDay {
    Daily,
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaintenanceWindow {
    pub name: String,
    pub day: WindowDay,
    /// Minutes after midnight.
    pub start_minute: u32,
    pub end_minute: u32,
    pub timezone: String,
    pub disable_auto_rollback: bool,
    pub allow_drift: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warning,
    Critical,
}

/// At most `max` messages per `per_ms` on one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    pub max: u32,
    pub per_ms: u64,
}

impl Default for RateLimit {
    /// 20 messages a minute.
    fn default() -> Self {
        RateLimit {
            max: 20,
            per_ms: 60_000,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Alerting {
    pub channels: Vec<Channel>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerConfig {
    pub path: String,
    pub git_ref: String,
    /// `ledger.max_size` in bytes: an append that would grow the file past it first rotates
    /// it. `None`: never rotate.
    pub max_size: Option<u64>,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            path: "ledger/container_ledger.jsonl".into(),
            git_ref: "refs/heads/refinery/ledger".into(),
            max_size: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SecretsConfig {
    pub sops_age_key_file: Option<String>,
}

/// A whole manifest, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// The file it was read from.
    pub file: String,
    pub config: Config,
    /// Always at least one: a manifest without `nodes:` gets the implicit `local` node.
    pub nodes: Vec<NodeSpec>,
    /// Docker containers, one per (node, name).
    pub containers: Vec<ContainerSpec>,
    pub stacks: Vec<StackSpec>,
    /// Networks the stacks declare (filled when the stacks are expanded).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stack_networks: Vec<crate::spec::NetworkSpec>,
    /// Named volumes the stacks declare (filled when the stacks are expanded).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stack_volumes: Vec<crate::spec::VolumeSpec>,
    pub kubernetes: Vec<KubeSpec>,
    pub inventory: Inventory,
    pub drift_rules: DriftRules,
    pub maintenance_windows: Vec<MaintenanceWindow>,
    pub alerting: Alerting,
    pub ledger: LedgerConfig,
    pub secrets: SecretsConfig,
    pub allow_empty: bool,
    /// Field paths ignored for every resource.
    pub ignore_differences: Vec<String>,
    /// `env_file:` entries of `containers:`, read from the commit by [`resolve_env_files`].
    #[serde(skip)]
    pub env_files: Vec<EnvFileRef>,
}

impl Manifest {
    #[must_use]
    pub fn node(&self, name: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The containers declared on a node.
    #[must_use]
    pub fn containers_on(&self, node: &str) -> Vec<&ContainerSpec> {
        self.containers.iter().filter(|c| c.node == node).collect()
    }

    /// The mode in force on a node: its own, else the global one.
    #[must_use]
    pub fn mode_of(&self, node: &str) -> Mode {
        self.node(node)
            .and_then(|n| n.mode)
            .unwrap_or(self.config.mode)
    }

    /// Whether the manifest declares nothing to run.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.stacks.is_empty() && self.kubernetes.is_empty()
    }
}
