//! The manifest (`refinery.yaml`, or seed 000's `bloodline_manifest.yaml`) as typed values: one
//! module per top-level section, holding its types and its reader; [`load`] reads the top level
//! and hands each section to its reader; [`fields`] holds the field readers several sections (and
//! compose services) share.

mod alerting;
mod channel;
mod commit_status;
mod config;
mod containers;
mod drift_rules;
mod env_files;
mod error;
pub(crate) mod fields;
pub mod grammar;
pub(crate) mod image_policy;
mod inventory;
mod kubernetes;
mod ledger;
mod load;
mod maintenance_windows;
mod nodes;
pub mod reader;
mod registries;
mod registry_env;
mod secrets;
pub mod specs;
mod stacks;

use serde::Serialize;

pub use alerting::Alerting;
pub use channel::{
    Channel, ChannelKind, DEFAULT_BURST, DEFAULT_GROUP_WAIT_MS, Destination, EmailDestination,
    Level, RateLimit, TELEGRAM_API,
};
pub use commit_status::{CommitStatusConfig, DEFAULT_TOKEN_ENV, Forge};
pub use config::{Config, Mode};
pub use drift_rules::{DriftRules, Flapping, Rule};
pub use env_files::{EnvFileRef, EnvFileValues, read_env_files};
pub use error::{Issue, ManifestError};
pub use inventory::{Allowed, Cleanup, Inventory};
pub use kubernetes::KubeSpec;
pub use ledger::LedgerConfig;
pub use load::{LoadOptions, Loaded, MANIFEST_FILES, load_manifest};
pub use maintenance_windows::{MaintenanceWindow, WindowDay};
pub use nodes::{DEFAULT_NODE, NodeSpec, TlsFiles};
pub use registries::RegistryLogin;
pub use registry_env::{LoginField, RegistryEnv, resolve_registries};
pub use secrets::SecretsConfig;
pub use stacks::{StackPositions, StackSpec};

pub use crate::schedule::Schedule;

use crate::spec::ContainerSpec;

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
    /// `commit_status:`: the forge each revision's deploy result is written back to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_status: Option<CommitStatusConfig>,
    pub ledger: LedgerConfig,
    pub secrets: SecretsConfig,
    /// `registries:`: credentials sent with pulls from each host (passwords masked). The entries
    /// with `env_file:` join once [`resolve_registries`] has read their files (the desired-state
    /// step does).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub registries: Vec<RegistryLogin>,
    /// `registries:` entries with `env_file:`, not yet resolved (empty once they are).
    #[serde(skip)]
    pub registry_env: Vec<RegistryEnv>,
    pub allow_empty: bool,
    /// Field paths ignored for every resource.
    pub ignore_differences: Vec<String>,
    /// `env_file:` entries of `containers:`, read from the commit by [`read_env_files`].
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
