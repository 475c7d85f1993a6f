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

/// [`Service::merge`] for the extra settings.
fn merge_extra(a: &mut ExtraOptions, b: ExtraOptions) {
    append(&mut a.expose, b.expose);
    a.ulimits.extend(b.ulimits);
    over(&mut a.platform, b.platform);
    over(&mut a.pull_policy, b.pull_policy);
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
