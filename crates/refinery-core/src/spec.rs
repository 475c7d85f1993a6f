//! The desired form of one container, normalized so it compares equal to what the engine reports.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::extra_options::ExtraOptions;
use crate::secret::Secret;

/// Everything Refinery enforces about one declared container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Container name on the engine (no leading slash).
    pub name: String,
    /// Node whose engine runs it.
    pub node: String,
    /// Image reference as declared (`busybox:1.36`, `refinory-ai:latest`).
    pub image: String,
    pub ports: Vec<PortBinding>,
    /// Host ports to try, in order, when a declared host port is taken (keyed by host port).
    pub fallback_ports: BTreeMap<u16, Vec<u16>>,
    pub env: BTreeMap<String, Secret>,
    pub mounts: Vec<Mount>,
    /// `None` keeps the image's default.
    pub command: Option<Vec<String>>,
    /// `None` keeps the image's default.
    pub entrypoint: Option<Vec<String>>,
    pub labels: BTreeMap<String, String>,
    pub restart: RestartPolicy,
    /// `None` keeps the image's default.
    pub healthcheck: Option<Healthcheck>,
    pub bloodline: Bloodline,
    /// Field paths that never count as drift (`env.BUILD_ID`, `labels.com.example.*`).
    pub ignore_differences: Vec<String>,
    /// Per-resource override of the drift rules' actions.
    pub drift_action: Option<crate::action::Action>,
    /// Engine settings beyond the basics (networks, user, limits, …); all unset by default, and
    /// left out of the spec hash when unset.
    #[serde(default, skip_serializing_if = "RuntimeOptions::is_unset")]
    pub options: RuntimeOptions,
    /// The compose service replica this container is, when it comes from a `stacks:` entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<Box<StackMember>>,
    /// Mounts of repository files and folders, desired by content (the matching `mounts` entry's
    /// source is the materialised copy); empty for containers without any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<crate::content::ContentMount>,
}

/// Engine settings a compose service may set. `None`/empty/false means the engine's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeOptions {
    /// Networks to attach, sorted by name; empty means the engine's default network.
    pub networks: Vec<NetworkAttachment>,
    /// `None` keeps the image's user.
    pub user: Option<String>,
    /// `None` keeps the image's working directory.
    pub working_dir: Option<String>,
    pub read_only: bool,
    /// Sorted.
    pub security_opt: Vec<String>,
    /// Memory limit in bytes.
    pub memory_bytes: Option<i64>,
    /// CPU limit in billionths of a CPU (`cpus: 0.5` is 500000000).
    pub nano_cpus: Option<i64>,
    /// `host:ip` entries, sorted.
    pub extra_hosts: Vec<String>,
    /// Every capability and device of the host (`--privileged`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub privileged: bool,
    /// Capabilities added and dropped, in [`capability`] form, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// `None` keeps the engine's (the container's short id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Run an init process as PID 1 (`--init`); `None` keeps the engine's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// The signal that stops the container; `None` keeps the image's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Seconds between the stop signal and SIGKILL; `None` keeps the engine's (10 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout_secs: Option<i64>,
    /// tmpfs mounts: path → mount options (`size=64m,mode=1777`, or empty).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tmpfs: BTreeMap<String, String>,
    /// Log driver and its options; `None` keeps the engine's default driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,
    /// `host`, `none`, `bridge` or `container:NAME` instead of the declared networks; `None`
    /// attaches `networks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    /// The rest of the compose service schema (limits, namespaces, devices, DNS, …); `None` when
    /// all of it is unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Box<ExtraOptions>>,
    /// `image_policy: {semver: …}`: the container follows the newest tag matching a range (see
    /// [`crate::image_policy`]); `None` runs the declared tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_policy: Option<ImagePolicy>,
}

/// A container's log driver (`json-file`, `local`, `none`, …) and its options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logging {
    pub driver: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_false(b: &bool) -> bool {
    !*b
}

/// A stop signal as compared: upper case with the `SIG` prefix (`term`, `TERM`, `SIGTERM` and
/// `15` stay what they are apart from case and prefix).
#[must_use]
pub fn signal(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    if upper.starts_with("SIG") || upper.bytes().all(|b| b.is_ascii_digit()) {
        upper
    } else {
        format!("SIG{upper}")
    }
}

impl RuntimeOptions {
    #[must_use]
    pub fn is_unset(&self) -> bool {
        *self == RuntimeOptions::default()
    }

    /// The extra settings, all unset when there are none.
    #[must_use]
    pub fn extra(&self) -> &ExtraOptions {
        self.extra
            .as_deref()
            .unwrap_or(&crate::extra_options::UNSET)
    }
}

/// A capability as the engine reports it: upper case with the `CAP_` prefix (`net_admin` and
/// `CAP_NET_ADMIN` are the same); `ALL` stays `ALL`.
#[must_use]
pub fn capability(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" || upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// Capabilities in [`capability`] form, sorted and without repeats.
#[must_use]
pub fn capabilities<S: AsRef<str>>(names: &[S]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|n| capability(n.as_ref())).collect();
    v.sort();
    v.dedup();
    v
}

/// One network a container is attached to (engine name), the aliases it answers to there and
/// the addresses it asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NetworkAttachment {
    pub name: String,
    /// Sorted, without duplicates. The engine adds the container's short id on its own.
    pub aliases: Vec<String>,
    /// A static address on this network (`ipv4_address`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    /// Sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link_local_ips: Vec<String>,
    /// The MAC address on this network; the engine picks one when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// Networks are joined highest priority first (the first is the one the container is
    /// created on); not compared.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: i64,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Which compose project, service and replica a container is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackMember {
    /// The compose project name (the `stacks:` entry's name).
    pub project: String,
    pub service: String,
    /// Replica number, from 1 (`com.docker.compose.container-number`).
    pub number: u32,
    /// Absolute directory of the first compose file (`com.docker.compose.project.working_dir`).
    pub working_dir: String,
    /// The compose files, comma-separated, as given (`com.docker.compose.project.config_files`).
    pub config_files: String,
    /// Containers to start first, and what to wait for.
    pub depends_on: Vec<Dependency>,
    /// The image is built from a directory of the commit (`build:`), tagged as the spec's image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildSpec>,
}

/// The container name docker-compose 1.29 gives a replica: `project_service_N`.
#[must_use]
pub fn container_name(project: &str, service: &str, number: u32) -> String {
    format!("{project}_{service}_{number}")
}

/// An image a compose service builds (`build:`) from a directory of the commit, with the classic
/// builder and no pull.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildSpec {
    /// Repository-relative context directory (`""` for the repository root).
    pub context: String,
    /// Dockerfile path inside the context.
    pub dockerfile: String,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    /// The network `RUN` steps use (`host`, `none`, a network name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `/dev/shm` of the build's containers, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<i64>,
    /// Labels of the built image.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `host:ip` entries for the build's containers, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    /// Images the builder may take cached layers from (when they are local).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache_from: Vec<String>,
    /// SHA-256 (hex) over the context's files, the dockerfile path, args, target and the other
    /// build settings: the built image carries it as a label, so a changed context is image drift
    /// and an unchanged one is not rebuilt.
    pub digest: String,
    /// The context's files as committed, keyed by path inside the context (not hashed into the
    /// spec: `digest` stands for them).
    #[serde(skip)]
    pub files: std::sync::Arc<BTreeMap<String, ContextFile>>,
}

/// One file of a build context, as committed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextFile {
    pub data: Vec<u8>,
    /// Git records it as executable (mode 100755).
    pub executable: bool,
}

impl BuildSpec {
    /// The digest's first 12 hex digits.
    #[must_use]
    pub fn short_digest(&self) -> &str {
        self.digest.get(..12).unwrap_or(&self.digest)
    }
}

/// A container that must be up before another starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    /// Engine name of the container depended on.
    pub container: String,
    pub condition: DependencyCondition,
    /// `restart: true`: when the container depended on is recreated or restarted, this one is
    /// restarted after it, as docker compose does.
    #[serde(default, skip_serializing_if = "is_false")]
    pub restart: bool,
    /// `required: false`: a dependency that does not come up is waited for, then passed over.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_true(b: &bool) -> bool {
    *b
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DependencyCondition {
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

/// A network a stack declares, as it is created on the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    pub node: String,
    /// Engine name (`project_backend`).
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    /// Declared `external: true`: must exist, never created.
    pub external: bool,
    /// `driver_opts`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Ipam>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub internal: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub attachable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub enable_ipv6: bool,
    /// Where the compose files declare it (for errors about it).
    #[serde(skip)]
    pub declared: Option<Declared>,
}

/// A network's address management: its driver, pools and options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipam {
    /// `None` is the engine's `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<IpamPool>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

/// One `ipam.config` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IpamPool {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aux_addresses: BTreeMap<String, String>,
}

/// Where a compose file declares a network or volume: `deploy/docker-compose.yml` line 12.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub file: String,
    pub loc: crate::yaml::Loc,
}

/// A named volume a stack declares, as it is created on the engine. Never deleted by Refinery.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    pub node: String,
    /// Engine name (`project_data`).
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    pub external: bool,
    /// `driver_opts`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// Where the compose files declare it (for errors about it).
    #[serde(skip)]
    pub declared: Option<Declared>,
}

/// Who made a container and why (seed 000's "bloodline").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bloodline {
    pub creator: Option<String>,
    pub purpose: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        })
    }
}

/// One published port, normalized: an empty `host_ip` means all addresses (`0.0.0.0`), a `host_port`
/// of `None` means "any free port".
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl fmt::Display for PortBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.host_ip.is_empty() {
            write!(f, "{}:", self.host_ip)?;
        }
        if let Some(p) = self.host_port {
            write!(f, "{p}:")?;
        }
        write!(f, "{}/{}", self.container_port, self.protocol)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// A named volume (`data:/var/lib/api`).
    Volume,
    /// A host path (`/srv/conf:/etc/api`, `./conf:/etc/api` resolved against the checkout).
    Bind,
    /// An anonymous volume (`/cache`).
    Anonymous,
}

/// One volume or bind mount, normalized.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Mount {
    pub kind: MountKind,
    /// Volume name or absolute host path; empty for anonymous volumes.
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

impl fmt::Display for Mount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.source.is_empty() {
            write!(f, "{}:", self.source)?;
        }
        f.write_str(&self.target)?;
        if self.read_only {
            f.write_str(":ro")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    /// `on-failure[:max]`; 0 means no limit.
    OnFailure(u32),
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::UnlessStopped => f.write_str("unless-stopped"),
            RestartPolicy::OnFailure(0) => f.write_str("on-failure"),
            RestartPolicy::OnFailure(n) => write!(f, "on-failure:{n}"),
        }
    }
}

impl std::str::FromStr for RestartPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" | "no" | "none" => Ok(RestartPolicy::No),
            "always" => Ok(RestartPolicy::Always),
            "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
            "on-failure" => Ok(RestartPolicy::OnFailure(0)),
            other => match other.strip_prefix("on-failure:") {
                Some(n) => n
                    .parse()
                    .map(RestartPolicy::OnFailure)
                    .map_err(|_| format!("`{n}` is not a retry count")),
                None => Err(format!(
                    "`{other}` is not a restart policy; use `no`, `always`, `unless-stopped` or `on-failure[:N]`"
                )),
            },
        }
    }
}

/// A container healthcheck, durations in milliseconds (0 = engine default).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Healthcheck {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`.
    pub test: Vec<String>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub start_period_ms: u64,
    pub retries: u32,
}

impl fmt::Display for Healthcheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.test.join(" "))?;
        if self.interval_ms != 0 {
            write!(f, " every {}ms", self.interval_ms)?;
        }
        if self.retries != 0 {
            write!(f, " retries {}", self.retries)?;
        }
        Ok(())
    }
}

/// A container's image policy, as declared (`image_policy: {semver: …}`; what it does is
/// [`crate::image_policy`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagePolicy {
    /// The semver range, as written (`^1.4`, `>=1.2, <2`, `~1.4.0`).
    pub semver: String,
}

impl ImagePolicy {
    /// The range; `None` only for a value the manifest loader did not check.
    #[must_use]
    pub fn range(&self) -> Option<semver::VersionReq> {
        semver::VersionReq::parse(self.semver.trim()).ok()
    }
}
