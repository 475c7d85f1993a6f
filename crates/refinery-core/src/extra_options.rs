//! The rest of the single-engine service schema of the Compose Specification, beyond
//! [`crate::spec::RuntimeOptions`]: exposed ports, limits, namespaces, devices, DNS, links, …
//! Every field is unset (empty, `None`, `false`) by default, and a container whose settings are
//! all unset carries none of this (`RuntimeOptions::extra` stays `None`: no allocation for the
//! common container, on the declared side as on the observed one).
//!
//! Values are normalized so a declared one compares equal to what the engine reports for it
//! (sizes in bytes, ports as `3000/tcp`, devices with both paths and their permissions); what the
//! engine fills in on its own (`shm_size` 64 MiB, `ipc: private`, the runtime `runc`, …) is read
//! as unset by the adapter.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `pull_policy`: when the image of a container is pulled before it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PullPolicy {
    /// Pulled when it is not local (the default).
    Missing,
    /// Pulled before every create.
    Always,
    /// Never pulled: a missing image fails the create.
    Never,
    /// Built from `build:` (and never pulled).
    Build,
    /// `daily`, `weekly`, `every_12h`: pulled when missing, else at most this often (milliseconds).
    Refresh { every_ms: u64 },
}

impl PullPolicy {
    /// `always`, `never`, `missing` (or `if_not_present`), `build`, `daily`, `weekly`,
    /// `every_<duration>`.
    #[must_use]
    pub fn parse(s: &str) -> Option<PullPolicy> {
        Some(match s {
            "missing" | "if_not_present" => PullPolicy::Missing,
            "always" => PullPolicy::Always,
            "never" => PullPolicy::Never,
            "build" => PullPolicy::Build,
            "daily" => PullPolicy::Refresh {
                every_ms: 86_400_000,
            },
            "weekly" => PullPolicy::Refresh {
                every_ms: 7 * 86_400_000,
            },
            other => {
                let d = other.strip_prefix("every_")?;
                let every_ms = crate::duration::parse_duration_ms(d).ok()?;
                if every_ms == 0 {
                    return None;
                }
                PullPolicy::Refresh { every_ms }
            }
        })
    }
}

/// `update_order` (compose: `deploy.update_config.order`): how a container is replaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    /// Stop the old container, then create and start the new one (the default).
    #[default]
    StopFirst,
    /// Start the new container beside the old one, wait until it is healthy, then remove the
    /// old one: no gap on the container's network aliases.
    StartFirst,
}

impl UpdateOrder {
    /// The values, as written.
    pub const NAMES: [&'static str; 2] = ["stop-first", "start-first"];

    /// `stop-first` or `start-first`.
    #[must_use]
    pub fn parse(s: &str) -> Option<UpdateOrder> {
        match s {
            "stop-first" => Some(UpdateOrder::StopFirst),
            "start-first" => Some(UpdateOrder::StartFirst),
            _ => None,
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateOrder::StopFirst => "stop-first",
            UpdateOrder::StartFirst => "start-first",
        }
    }
}

impl std::fmt::Display for UpdateOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PullPolicy::Missing => f.write_str("missing"),
            PullPolicy::Always => f.write_str("always"),
            PullPolicy::Never => f.write_str("never"),
            PullPolicy::Build => f.write_str("build"),
            PullPolicy::Refresh { every_ms } => write!(f, "every {}s", every_ms / 1000),
        }
    }
}

/// One `ulimits:` entry: the soft and hard limit (`nproc: 65535` sets both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

/// One `devices:` entry: `/dev/ttyUSB0:/dev/ttyUSB0:rwm`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Device {
    pub host: String,
    /// The host path when not given.
    pub container: String,
    /// `rwm` when not given.
    pub permissions: String,
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.host, self.container, self.permissions)
    }
}

/// A device request (`deploy.resources.reservations.devices`, `gpus`): GPUs and the like, as
/// `docker run --gpus` makes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeviceRequest {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// `-1` for all.
    pub count: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_ids: Vec<String>,
    /// Sorted.
    pub capabilities: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

impl std::fmt::Display for DeviceRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = if self.count < 0 {
            "all".to_owned()
        } else {
            self.count.to_string()
        };
        write!(f, "{} × [{}]", count, self.capabilities.join(","))?;
        if !self.driver.is_empty() {
            write!(f, " driver {}", self.driver)?;
        }
        if !self.device_ids.is_empty() {
            write!(f, " ids {}", self.device_ids.join(","))?;
        }
        Ok(())
    }
}

/// `blkio_config`: block I/O weights and limits. Rates are bytes (or operations) per second.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blkio {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    /// Device path → weight, sorted by path (so for every list below).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weight_device: Vec<(String, u16)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_read_bps: Vec<(String, i64)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_write_bps: Vec<(String, i64)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_read_iops: Vec<(String, i64)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_write_iops: Vec<(String, i64)>,
}

impl Blkio {
    #[must_use]
    pub fn is_unset(&self) -> bool {
        *self == Blkio::default()
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_false(b: &bool) -> bool {
    !*b
}

/// See the module documentation. Field names are the compose keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraOptions {
    /// `expose`: ports exposed without publishing, as `3000/tcp`, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<String, Ulimit>,
    /// `linux/arm64`: the platform the image is pulled and the container created for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// When the image is pulled; `None` is `missing`. Not a setting of the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<PullPolicy>,
    /// How the container is replaced; `None` is `stop-first`. Not a setting of the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_order: Option<UpdateOrder>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub stdin_open: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub tty: bool,
    /// Bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<i64>,
    /// Sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Device>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_cgroup_rules: Vec<String>,
    /// `host`, `container:NAME` (a `service:NAME` is resolved to its first container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uts: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns_mode: Option<String>,
    /// The cgroup namespace: `host` or `private`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_parent: Option<String>,
    /// Sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_kill_disable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    /// Bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_reservation: Option<i64>,
    /// Bytes of memory plus swap; `-1` is unlimited swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memswap_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_swappiness: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<i64>,
    /// Microseconds per `cpu_period`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<i64>,
    /// Microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_period: Option<i64>,
    /// `0-3`, `0,1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset: Option<String>,
    /// Microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_rt_period: Option<i64>,
    /// Microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_rt_runtime: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<i64>,
    #[serde(default, skip_serializing_if = "Blkio::is_unset")]
    pub blkio: Blkio,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub storage_opt: BTreeMap<String, String>,
    /// In order (the resolver tries them in order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_opt: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// `container:alias` (`links` resolved to container names, and `external_links`), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// `container[:ro]` (a `service` is resolved to its first container), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes_from: Vec<String>,
    /// Sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_requests: Vec<DeviceRequest>,
    /// A bind mount's propagation other than the engine's `rprivate`, by container path
    /// (`/host` → `rslave`): `volumes: ["/:/host:ro,rslave"]` or `bind: {propagation: rslave}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bind_propagation: BTreeMap<String, String>,
    /// `healthcheck.start_interval`, milliseconds (Docker API 1.44+; older engines drop it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_start_interval_ms: Option<u64>,
}

/// The empty settings, for reading through an absent [`ExtraOptions`].
pub static UNSET: ExtraOptions = ExtraOptions {
    expose: Vec::new(),
    ulimits: BTreeMap::new(),
    platform: None,
    pull_policy: None,
    update_order: None,
    runtime: None,
    sysctls: BTreeMap::new(),
    stdin_open: false,
    tty: false,
    shm_size: None,
    devices: Vec::new(),
    device_cgroup_rules: Vec::new(),
    pid: None,
    ipc: None,
    uts: None,
    userns_mode: None,
    cgroup: None,
    cgroup_parent: None,
    group_add: Vec::new(),
    oom_kill_disable: None,
    oom_score_adj: None,
    pids_limit: None,
    mem_reservation: None,
    memswap_limit: None,
    mem_swappiness: None,
    cpu_shares: None,
    cpu_quota: None,
    cpu_period: None,
    cpuset: None,
    cpu_rt_period: None,
    cpu_rt_runtime: None,
    cpu_count: None,
    cpu_percent: None,
    blkio: Blkio {
        weight: None,
        weight_device: Vec::new(),
        device_read_bps: Vec::new(),
        device_write_bps: Vec::new(),
        device_read_iops: Vec::new(),
        device_write_iops: Vec::new(),
    },
    storage_opt: BTreeMap::new(),
    dns: Vec::new(),
    dns_search: Vec::new(),
    dns_opt: Vec::new(),
    domainname: None,
    mac_address: None,
    links: Vec::new(),
    isolation: None,
    annotations: BTreeMap::new(),
    volumes_from: Vec::new(),
    device_requests: Vec::new(),
    bind_propagation: BTreeMap::new(),
    health_start_interval_ms: None,
};

impl ExtraOptions {
    #[must_use]
    pub fn is_unset(&self) -> bool {
        *self == UNSET
    }

    /// `Some(Box)` unless every setting is unset.
    #[must_use]
    pub fn boxed(self) -> Option<Box<ExtraOptions>> {
        (!self.is_unset()).then(|| Box::new(self))
    }
}

/// `3000`, `3000/udp`, `8000-8002` → `3000/tcp`, … (a range expands); `None` when it is not a
/// port or a range of ports.
#[must_use]
pub fn expose_ports(spec: &str) -> Option<Vec<String>> {
    let (ports, proto) = match spec.trim().split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec.trim(), "tcp".to_owned()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return None;
    }
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?),
        None => {
            let p = ports.parse::<u16>().ok()?;
            (p, p)
        }
    };
    if lo == 0 || hi < lo {
        return None;
    }
    Some((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expose_ports_normalizes_and_expands() {
        assert_eq!(expose_ports("3000"), Some(vec!["3000/tcp".to_owned()]));
        assert_eq!(expose_ports("53/UDP"), Some(vec!["53/udp".to_owned()]));
        assert_eq!(
            expose_ports("8000-8002"),
            Some(vec![
                "8000/tcp".into(),
                "8001/tcp".into(),
                "8002/tcp".into()
            ])
        );
        for bad in ["", "x", "0", "9-1", "80/xyz", "70000"] {
            assert_eq!(expose_ports(bad), None, "{bad}");
        }
    }

    #[test]
    fn unset_is_the_default() {
        assert_eq!(UNSET, ExtraOptions::default());
        assert!(ExtraOptions::default().boxed().is_none());
    }
}
