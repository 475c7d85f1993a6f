//! One compose service as the files declare it, and the merge of several files' declarations
//! (compose's rules: a later file's scalars replace, mappings merge key by key, sequences
//! append, mounts, devices, configs and secrets are unique by their target).

use std::collections::BTreeMap;

use crate::action::Action;
use crate::content::ContentMount;
use crate::extra_options::ExtraOptions;
use crate::secret::Secret;
use crate::spec::{DependencyCondition, Healthcheck, Logging, Mount, PortBinding, RestartPolicy};
use crate::yaml::Loc;

/// Where the file being read lives.
pub(super) struct FileContext<'a> {
    /// Repository-relative path of the compose file.
    pub file: &'a str,
    /// Absolute project directory (relative bind sources resolve against it).
    pub abs_dir: &'a str,
    /// Repository-relative project directory.
    pub project_dir: &'a str,
    pub read: &'a dyn Fn(&str) -> Option<String>,
    /// The file's `!reset`/`!override` tags (see [`crate::yaml::local_tags`]).
    pub tags: &'a std::collections::HashMap<(u32, u32), String>,
    /// Age keys for SOPS-encrypted `env_file`s.
    pub keys: &'a crate::sops::AgeKeys,
}

#[derive(Debug, Clone)]
pub(super) struct DependsOn {
    pub service: String,
    pub condition: DependencyCondition,
    /// `restart: true`: restart this service when that one is recreated or restarted.
    pub restart: bool,
    /// `required: false`: a dependency that is not declared, not enabled or not coming up is
    /// passed over.
    pub required: bool,
    pub loc: Loc,
    pub file: String,
}

/// A service's `build:` as declared: the context as written, resolved against the project
/// directory when the stack is expanded.
#[derive(Debug, Clone, Default)]
pub(super) struct BuildDecl {
    /// As written (`./api`, `.`), relative to the project directory.
    pub context: String,
    pub dockerfile: Option<String>,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub network: Option<String>,
    pub shm_size: Option<i64>,
    pub labels: BTreeMap<String, String>,
    pub extra_hosts: Vec<String>,
    pub cache_from: Vec<String>,
    /// BuildKit settings the classic builder does without, for a warning.
    pub ignored: Vec<(String, Loc)>,
    /// Where the `build` key is, and in which file.
    pub loc: Loc,
    pub file: String,
}

/// One network a service joins (`networks:` of the service), as declared.
#[derive(Debug, Clone, Default)]
pub(super) struct ServiceNetwork {
    pub aliases: Vec<String>,
    pub ipv4_address: Option<String>,
    pub ipv6_address: Option<String>,
    pub link_local_ips: Vec<String>,
    pub mac_address: Option<String>,
    pub priority: i64,
    pub loc: Loc,
}

/// A reference from one service to another service's container (`links`, `volumes_from`,
/// `pid: service:NAME`, `ipc: service:NAME`), resolved when the stack is expanded.
#[derive(Debug, Clone)]
pub(super) struct ServiceRef {
    /// `links`, `volumes_from`, `pid`, `ipc`.
    pub key: &'static str,
    pub service: String,
    /// The link alias, or `ro`/`rw` of `volumes_from`.
    pub detail: String,
    pub loc: Loc,
    pub file: String,
}

/// Where a value was written: file, line and column, field.
#[derive(Debug, Clone)]
pub(super) struct Written {
    pub file: String,
    pub loc: Loc,
    pub field: String,
}

/// A key docker compose ignores on a single engine (a swarm setting), with where it was.
#[derive(Debug, Clone)]
pub(super) struct SwarmKey {
    pub key: String,
    pub service: String,
    pub loc: Loc,
    pub file: String,
}

/// A service as merged so far.
#[derive(Debug, Clone, Default)]
pub(super) struct Service {
    pub name: String,
    /// Where it was first declared.
    pub file: String,
    pub loc: Loc,
    pub image: Option<String>,
    pub build: Option<BuildDecl>,
    pub container_name: Option<String>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: BTreeMap<String, Secret>,
    pub ports: Vec<PortBinding>,
    pub mounts: Vec<Mount>,
    /// Named volumes mounted (top-level keys), with where.
    pub named_volumes: Vec<(String, Loc)>,
    pub networks: Option<BTreeMap<String, ServiceNetwork>>,
    /// `network_mode`, and where.
    pub network_mode: Option<(String, Loc)>,
    pub depends_on: Vec<DependsOn>,
    pub healthcheck: Option<Healthcheck>,
    pub restart: Option<RestartPolicy>,
    /// `deploy.restart_policy`, used when `restart` is not set.
    pub deploy_restart: Option<RestartPolicy>,
    pub labels: BTreeMap<String, String>,
    pub replicas: Option<u32>,
    pub profiles: Vec<String>,
    pub security_opt: Vec<String>,
    pub privileged: Option<bool>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub hostname: Option<String>,
    pub init: Option<bool>,
    pub stop_signal: Option<String>,
    pub stop_timeout_secs: Option<i64>,
    /// path → mount options.
    pub tmpfs: BTreeMap<String, String>,
    pub logging: Option<Logging>,
    pub read_only: Option<bool>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub memory_bytes: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub extra_hosts: Vec<String>,
    pub stdin_open: Option<bool>,
    pub tty: Option<bool>,
    /// The rest of the schema, as the container gets it (`stdin_open` and `tty` aside).
    pub extra: ExtraOptions,
    /// Other services' containers this one names.
    pub refs: Vec<ServiceRef>,
    /// Swarm settings docker compose ignores here, for the stack's one warning.
    pub swarm_keys: Vec<SwarmKey>,
    /// Repository files and folders mounted (`./conf:/etc/app`), desired by content.
    pub content: Vec<ContentMount>,
    /// `configs:` and `secrets:` used: top-level name, target, where.
    pub configs: Vec<ConfigUse>,
    /// `x-refinery.ignore_differences`.
    pub ignore_differences: Vec<String>,
    /// `x-refinery.drift_action`.
    pub drift_action: Option<Action>,
    /// Where `update_order` (`extra.update_order`) was set, for the fixed host port warning.
    pub update_order_at: Option<Written>,
    /// Where `pull_policy` (`extra.pull_policy`) was set, for the check that `build` has a
    /// `build:` section once the files are merged.
    pub pull_policy_at: Option<Written>,
    /// `x-refinery.image_policy`, with the file and place its `semver` is written (the declared
    /// image is checked against it once the files are merged).
    pub image_policy: Option<(crate::image_policy::ImagePolicy, String, crate::yaml::Loc)>,
    /// Keys tagged `!reset` or `!override`: what earlier files said of them is dropped before
    /// this declaration is merged over it.
    pub resets: Vec<String>,
}

/// A file a service mounts by name: a top-level `configs:` or `secrets:` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum FileKind {
    Config,
    Secret,
}

impl FileKind {
    /// `config`, `secret`.
    pub fn word(self) -> &'static str {
        match self {
            FileKind::Config => "config",
            FileKind::Secret => "secret",
        }
    }

    /// Where a relative target goes, as compose puts it: `/NAME` for a config,
    /// `/run/secrets/NAME` for a secret.
    pub fn dir(self) -> &'static str {
        match self {
            FileKind::Config => "",
            FileKind::Secret => "/run/secrets",
        }
    }
}

/// A service's use of a top-level `configs:` or `secrets:` entry.
#[derive(Debug, Clone)]
pub(super) struct ConfigUse {
    pub kind: FileKind,
    pub name: String,
    /// Absolute path in the container (default `/<name>`, a secret's `/run/secrets/<name>`).
    pub target: String,
    pub loc: Loc,
    pub file: String,
}

fn over<T>(a: &mut Option<T>, b: Option<T>) {
    if b.is_some() {
        *a = b;
    }
}

/// Appends the items of `b` that `a` lacks.
fn append<T: PartialEq>(a: &mut Vec<T>, b: Vec<T>) {
    for x in b {
        if !a.contains(&x) {
            a.push(x);
        }
    }
}

impl Service {
    /// Overlays a later file's declaration (see the module documentation).
    pub fn merge(&mut self, o: Service) {
        for key in &o.resets {
            self.reset(key);
        }
        // A later healthcheck replaces the whole one, its `start_interval` included.
        if o.healthcheck.is_some() {
            self.extra.health_start_interval_ms = o.extra.health_start_interval_ms;
        }
        over(&mut self.image, o.image);
        over(&mut self.build, o.build);
        over(&mut self.container_name, o.container_name);
        over(&mut self.command, o.command);
        over(&mut self.entrypoint, o.entrypoint);
        self.env.extend(o.env);
        append(&mut self.ports, o.ports);
        for m in o.mounts {
            // A mount redeclared at the same path keeps only the later declaration's propagation.
            self.extra.bind_propagation.remove(&m.target);
            self.mounts.retain(|x| x.target != m.target);
            self.content.retain(|x| x.target != m.target);
            self.mounts.push(m);
        }
        self.content.extend(o.content);
        for c in o.configs {
            self.configs.retain(|x| x.target != c.target);
            self.configs.push(c);
        }
        if !o.ignore_differences.is_empty() {
            self.ignore_differences = o.ignore_differences;
        }
        over(&mut self.drift_action, o.drift_action);
        over(&mut self.update_order_at, o.update_order_at);
        over(&mut self.pull_policy_at, o.pull_policy_at);
        over(&mut self.image_policy, o.image_policy);
        self.named_volumes.extend(o.named_volumes);
        match (&mut self.networks, o.networks) {
            (Some(a), Some(b)) => a.extend(b),
            (a, b) => over(a, b),
        }
        for d in o.depends_on {
            self.depends_on.retain(|x| x.service != d.service);
            self.depends_on.push(d);
        }
        over(&mut self.healthcheck, o.healthcheck);
        over(&mut self.restart, o.restart);
        over(&mut self.deploy_restart, o.deploy_restart);
        self.labels.extend(o.labels);
        over(&mut self.replicas, o.replicas);
        if !o.profiles.is_empty() {
            self.profiles = o.profiles;
        }
        append(&mut self.security_opt, o.security_opt);
        over(&mut self.privileged, o.privileged);
        append(&mut self.cap_add, o.cap_add);
        append(&mut self.cap_drop, o.cap_drop);
        over(&mut self.hostname, o.hostname);
        over(&mut self.network_mode, o.network_mode);
        over(&mut self.init, o.init);
        over(&mut self.stop_signal, o.stop_signal);
        over(&mut self.stop_timeout_secs, o.stop_timeout_secs);
        self.tmpfs.extend(o.tmpfs);
        over(&mut self.logging, o.logging);
        over(&mut self.read_only, o.read_only);
        over(&mut self.user, o.user);
        over(&mut self.working_dir, o.working_dir);
        over(&mut self.memory_bytes, o.memory_bytes);
        over(&mut self.nano_cpus, o.nano_cpus);
        append(&mut self.extra_hosts, o.extra_hosts);
        over(&mut self.stdin_open, o.stdin_open);
        over(&mut self.tty, o.tty);
        merge_extra(&mut self.extra, o.extra);
        for r in o.refs {
            // A later `links`/`volumes_from` entry for the same service, or a later `pid`/`ipc`,
            // replaces the earlier one.
            self.refs.retain(|x| {
                x.key != r.key
                    || (matches!(r.key, "links" | "volumes_from") && x.service != r.service)
            });
            self.refs.push(r);
        }
        self.swarm_keys.extend(o.swarm_keys);
    }
}

/// The service keys `!reset` and `!override` work on (every other is refused with a hint).
pub(super) const RESETTABLE: [&str; 80] = [
    "image",
    "build",
    "container_name",
    "command",
    "entrypoint",
    "environment",
    "ports",
    "expose",
    "volumes",
    "networks",
    "depends_on",
    "healthcheck",
    "restart",
    "labels",
    "profiles",
    "security_opt",
    "cap_add",
    "cap_drop",
    "hostname",
    "init",
    "stop_signal",
    "stop_grace_period",
    "logging",
    "read_only",
    "user",
    "working_dir",
    "mem_limit",
    "cpus",
    "stdin_open",
    "tty",
    "extra_hosts",
    "tmpfs",
    "dns",
    "dns_search",
    "dns_opt",
    "devices",
    "device_cgroup_rules",
    "group_add",
    "sysctls",
    "ulimits",
    "annotations",
    "storage_opt",
    "links",
    "volumes_from",
    "configs",
    "secrets",
    "platform",
    "runtime",
    "pid",
    "ipc",
    "uts",
    "userns_mode",
    "cgroup",
    "cgroup_parent",
    "oom_kill_disable",
    "oom_score_adj",
    "pids_limit",
    "mem_reservation",
    "memswap_limit",
    "mem_swappiness",
    "cpu_shares",
    "cpu_quota",
    "cpu_period",
    "cpuset",
    "domainname",
    "mac_address",
    "isolation",
    "shm_size",
    "pull_policy",
    "blkio_config",
    "network_mode",
    "privileged",
    "scale",
    "gpus",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_count",
    "cpu_percent",
    "attach",
    "develop",
];

impl Service {
    /// Drops what the files so far say of `key` (one of [`RESETTABLE`]).
    fn reset(&mut self, key: &str) {
        let x = &mut self.extra;
        match key {
            "image" => self.image = None,
            "build" => self.build = None,
            "container_name" => self.container_name = None,
            "command" => self.command = None,
            "entrypoint" => self.entrypoint = None,
            "environment" => self.env.clear(),
            "ports" => self.ports.clear(),
            "expose" => x.expose.clear(),
            "volumes" => {
                self.mounts.clear();
                self.named_volumes.clear();
                self.content.retain(ContentMount::is_env_file);
                x.bind_propagation.clear();
            }
            "networks" => self.networks = None,
            "network_mode" => self.network_mode = None,
            "depends_on" => self.depends_on.clear(),
            "healthcheck" => {
                self.healthcheck = None;
                x.health_start_interval_ms = None;
            }
            "restart" => self.restart = None,
            "labels" => self.labels.clear(),
            "profiles" => self.profiles.clear(),
            "security_opt" => self.security_opt.clear(),
            "cap_add" => self.cap_add.clear(),
            "cap_drop" => self.cap_drop.clear(),
            "hostname" => self.hostname = None,
            "init" => self.init = None,
            "stop_signal" => self.stop_signal = None,
            "stop_grace_period" => self.stop_timeout_secs = None,
            "logging" => self.logging = None,
            "read_only" => self.read_only = None,
            "user" => self.user = None,
            "working_dir" => self.working_dir = None,
            "mem_limit" => self.memory_bytes = None,
            "cpus" => self.nano_cpus = None,
            "stdin_open" => self.stdin_open = None,
            "tty" => self.tty = None,
            "extra_hosts" => self.extra_hosts.clear(),
            "tmpfs" => self.tmpfs.clear(),
            "dns" => x.dns.clear(),
            "dns_search" => x.dns_search.clear(),
            "dns_opt" => x.dns_opt.clear(),
            "devices" => x.devices.clear(),
            "device_cgroup_rules" => x.device_cgroup_rules.clear(),
            "group_add" => x.group_add.clear(),
            "sysctls" => x.sysctls.clear(),
            "ulimits" => x.ulimits.clear(),
            "annotations" => x.annotations.clear(),
            "storage_opt" => x.storage_opt.clear(),
            "links" | "volumes_from" | "pid" | "ipc" => {
                self.refs.retain(|r| r.key != key);
                match key {
                    "links" => x.links.clear(),
                    "volumes_from" => x.volumes_from.clear(),
                    "pid" => x.pid = None,
                    _ => x.ipc = None,
                }
            }
            "configs" => self.configs.retain(|c| c.kind != FileKind::Config),
            "secrets" => self.configs.retain(|c| c.kind != FileKind::Secret),
            "platform" => x.platform = None,
            "runtime" => x.runtime = None,
            "uts" => x.uts = None,
            "userns_mode" => x.userns_mode = None,
            "cgroup" => x.cgroup = None,
            "cgroup_parent" => x.cgroup_parent = None,
            "oom_kill_disable" => x.oom_kill_disable = None,
            "oom_score_adj" => x.oom_score_adj = None,
            "pids_limit" => x.pids_limit = None,
            "mem_reservation" => x.mem_reservation = None,
            "memswap_limit" => x.memswap_limit = None,
            "mem_swappiness" => x.mem_swappiness = None,
            "cpu_shares" => x.cpu_shares = None,
            "cpu_quota" => x.cpu_quota = None,
            "cpu_period" => x.cpu_period = None,
            "cpuset" => x.cpuset = None,
            "domainname" => x.domainname = None,
            "mac_address" => x.mac_address = None,
            "isolation" => x.isolation = None,
            "shm_size" => x.shm_size = None,
            "pull_policy" => {
                x.pull_policy = None;
                self.pull_policy_at = None;
            }
            "blkio_config" => x.blkio = crate::extra_options::Blkio::default(),
            "privileged" => self.privileged = None,
            "scale" => self.replicas = None,
            "gpus" => x.device_requests.clear(),
            "cpu_rt_period" => x.cpu_rt_period = None,
            "cpu_rt_runtime" => x.cpu_rt_runtime = None,
            "cpu_count" => x.cpu_count = None,
            "cpu_percent" => x.cpu_percent = None,
            // `attach`, `develop`: client-side, nothing kept.
            _ => {}
        }
    }
}

/// [`Service::merge`] for the extra settings.
fn merge_extra(a: &mut ExtraOptions, b: ExtraOptions) {
    append(&mut a.expose, b.expose);
    a.ulimits.extend(b.ulimits);
    over(&mut a.platform, b.platform);
    over(&mut a.pull_policy, b.pull_policy);
    over(&mut a.update_order, b.update_order);
    over(&mut a.runtime, b.runtime);
    a.sysctls.extend(b.sysctls);
    over(&mut a.shm_size, b.shm_size);
    for d in b.devices {
        a.devices.retain(|x| x.container != d.container);
        a.devices.push(d);
    }
    append(&mut a.device_cgroup_rules, b.device_cgroup_rules);
    over(&mut a.pid, b.pid);
    over(&mut a.ipc, b.ipc);
    over(&mut a.uts, b.uts);
    over(&mut a.userns_mode, b.userns_mode);
    over(&mut a.cgroup, b.cgroup);
    over(&mut a.cgroup_parent, b.cgroup_parent);
    append(&mut a.group_add, b.group_add);
    over(&mut a.oom_kill_disable, b.oom_kill_disable);
    over(&mut a.oom_score_adj, b.oom_score_adj);
    over(&mut a.pids_limit, b.pids_limit);
    over(&mut a.mem_reservation, b.mem_reservation);
    over(&mut a.memswap_limit, b.memswap_limit);
    over(&mut a.mem_swappiness, b.mem_swappiness);
    over(&mut a.cpu_shares, b.cpu_shares);
    over(&mut a.cpu_quota, b.cpu_quota);
    over(&mut a.cpu_period, b.cpu_period);
    over(&mut a.cpuset, b.cpuset);
    over(&mut a.cpu_rt_period, b.cpu_rt_period);
    over(&mut a.cpu_rt_runtime, b.cpu_rt_runtime);
    over(&mut a.cpu_count, b.cpu_count);
    over(&mut a.cpu_percent, b.cpu_percent);
    over(&mut a.blkio.weight, b.blkio.weight);
    for (list, more) in [
        (&mut a.blkio.device_read_bps, b.blkio.device_read_bps),
        (&mut a.blkio.device_write_bps, b.blkio.device_write_bps),
        (&mut a.blkio.device_read_iops, b.blkio.device_read_iops),
        (&mut a.blkio.device_write_iops, b.blkio.device_write_iops),
    ] {
        for (path, rate) in more {
            list.retain(|(p, _)| *p != path);
            list.push((path, rate));
        }
    }
    for (path, w) in b.blkio.weight_device {
        a.blkio.weight_device.retain(|(p, _)| *p != path);
        a.blkio.weight_device.push((path, w));
    }
    a.storage_opt.extend(b.storage_opt);
    append(&mut a.dns, b.dns);
    append(&mut a.dns_search, b.dns_search);
    append(&mut a.dns_opt, b.dns_opt);
    over(&mut a.domainname, b.domainname);
    over(&mut a.mac_address, b.mac_address);
    append(&mut a.links, b.links);
    over(&mut a.isolation, b.isolation);
    a.annotations.extend(b.annotations);
    append(&mut a.volumes_from, b.volumes_from);
    a.bind_propagation.extend(b.bind_propagation);
    over(&mut a.health_start_interval_ms, b.health_start_interval_ms);
    if !b.device_requests.is_empty() {
        a.device_requests = b.device_requests;
    }
}
