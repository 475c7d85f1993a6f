//! One compose service as one file declares it, and the merge of several files' declarations.

use std::collections::BTreeMap;

use crate::action::Action;
use crate::content::{ContentMount, repo_relative};
use crate::manifest::fields::{check_ignore_path, read_action, read_healthcheck};
use crate::manifest::reader::{Reader, split_words};
use crate::manifest::specs::{parse_port, parse_volume};
use crate::secret::Secret;
use crate::spec::{
    DependencyCondition, Healthcheck, Logging, Mount, MountKind, PortBinding, RestartPolicy,
};
use crate::yaml::{Loc, Node, Value};

use super::join_rel;
use crate::sops::{AgeKeys, env_file_values};

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
    pub keys: &'a AgeKeys,
}

#[derive(Debug, Clone)]
pub(super) struct DependsOn {
    pub service: String,
    pub condition: DependencyCondition,
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
    /// Where the `build` key is, and in which file.
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
    /// Network key → (aliases, where).
    pub networks: Option<BTreeMap<String, (Vec<String>, Loc)>>,
    /// `network_mode`, and where.
    pub network_mode: Option<(String, Loc)>,
    pub depends_on: Vec<DependsOn>,
    pub healthcheck: Option<Healthcheck>,
    pub restart: Option<RestartPolicy>,
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
    fn dir(self) -> &'static str {
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

impl Service {
    /// Overlays a later file's declaration: scalars are replaced, maps merged key by key, ports
    /// and extra hosts appended, mounts replaced by target, dependencies joined.
    pub fn merge(&mut self, o: Service) {
        fn over<T>(a: &mut Option<T>, b: Option<T>) {
            if b.is_some() {
                *a = b;
            }
        }
        over(&mut self.image, o.image);
        over(&mut self.build, o.build);
        over(&mut self.container_name, o.container_name);
        over(&mut self.command, o.command);
        over(&mut self.entrypoint, o.entrypoint);
        self.env.extend(o.env);
        self.ports.extend(o.ports);
        for m in o.mounts {
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
        self.labels.extend(o.labels);
        over(&mut self.replicas, o.replicas);
        if !o.profiles.is_empty() {
            self.profiles = o.profiles;
        }
        self.security_opt.extend(o.security_opt);
        over(&mut self.privileged, o.privileged);
        self.cap_add.extend(o.cap_add);
        self.cap_drop.extend(o.cap_drop);
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
        self.extra_hosts.extend(o.extra_hosts);
    }
}

/// Keys of the Compose Specification Refinery does not act on yet: reported by name.
const UNSUPPORTED_HINT: &str = "supported service keys: image, build, command, entrypoint, environment, env_file, ports, volumes, networks, depends_on, healthcheck, restart, labels, container_name, deploy (replicas, resources.limits), scale, profiles, security_opt, privileged, cap_add, cap_drop, hostname, network_mode, init, stop_signal, stop_grace_period, tmpfs, logging (driver, options), read_only, user, working_dir, mem_limit, cpus, extra_hosts";

/// `64m`, `1g`, `512mb`, `1024` (bytes).
pub(super) fn parse_bytes(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1i64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: f64 = num.trim().parse().ok()?;
    if !(n.is_finite() && n > 0.0) {
        return None;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let bytes = (n * mult as f64) as i64;
    Some(bytes)
}

/// `0.5` → 500000000 billionths of a CPU.
pub(super) fn parse_cpus(s: &str) -> Option<i64> {
    let n: f64 = s.trim().parse().ok()?;
    if !(n.is_finite() && n > 0.0 && n < 1.0e6) {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)]
    let nano = (n * 1e9).round() as i64;
    Some(nano)
}

fn scalar_text(n: &Node) -> Option<&str> {
    n.scalar()
}

/// Reads `services.<name>` of one file; `None` if it is not a mapping.
pub(super) fn read_service(
    r: &mut Reader<'_>,
    ctx: &FileContext<'_>,
    name: &str,
    loc: Loc,
    node: &Node,
) -> Option<Service> {
    let base = format!("services.{name}");
    r.map(node, &base)?;
    let mut s = Service {
        name: name.to_owned(),
        file: ctx.file.to_owned(),
        loc,
        ..Service::default()
    };
    let Value::Map(entries) = &node.value else {
        return Some(s);
    };
    // env_file first, `environment` over it, whatever the order in the file.
    let mut file_env: BTreeMap<String, Secret> = BTreeMap::new();
    for (k, v) in entries {
        let Some(key) = k.scalar() else { continue };
        let p = format!("{base}.{key}");
        if v.is_null() {
            continue;
        }
        match key {
            "image" => s.image = r.string(v, &p),
            "container_name" => s.container_name = r.string(v, &p),
            "command" | "entrypoint" => {
                let words = if v.scalar().is_some() {
                    r.string(v, &p).and_then(|t| {
                        let w = split_words(&t);
                        if w.is_none() {
                            r.error(
                                v.loc,
                                &p,
                                format!("failed to split `{t}` into words: unclosed quote"),
                            );
                        }
                        w
                    })
                } else {
                    r.strings(v, &p)
                };
                if key == "command" {
                    s.command = words;
                } else {
                    s.entrypoint = words;
                }
            }
            "environment" => read_environment(r, v, &p, &mut s.env),
            "env_file" => {
                for item in r.strings_at(v, &p).unwrap_or_default() {
                    let path = join_rel(ctx.project_dir, &item.value);
                    // Desired by content too: a changed file is drift naming it.
                    s.content.push(ContentMount::env_file(&path));
                    match (ctx.read)(&path) {
                        // SOPS-encrypted env files are decrypted here, in memory.
                        Some(text) => match env_file_values(&path, &text, ctx.keys) {
                            Ok(vars) => file_env.extend(vars),
                            Err(e) => match e.hint() {
                                Some(h) => {
                                    r.error_hint(item.loc, &item.field, e.message(&path), h);
                                }
                                None => r.error(item.loc, &item.field, e.message(&path)),
                            },
                        },
                        None => r.error(
                            item.loc,
                            &item.field,
                            format!("failed to find env file `{path}` in the commit"),
                        ),
                    }
                }
            }
            "ports" => read_ports(r, v, &p, &mut s.ports),
            "volumes" => read_volumes(r, ctx, v, &p, &mut s),
            "networks" => s.networks = read_networks(r, v, &p),
            "network_mode" => s.network_mode = r.string(v, &p).map(|m| (m, v.loc)),
            "depends_on" => s.depends_on = read_depends_on(r, ctx, v, &p),
            "healthcheck" => s.healthcheck = read_healthcheck(r, v, &p),
            "restart" => {
                if let Some(t) = r.string(v, &p) {
                    match t.parse::<RestartPolicy>() {
                        Ok(rp) => s.restart = Some(rp),
                        Err(e) => r.error(v.loc, &p, e),
                    }
                }
            }
            "labels" => {
                for kv in r.key_values_at(v, &p).unwrap_or_default() {
                    s.labels.insert(kv.key, kv.value);
                }
            }
            "scale" => s.replicas = read_count(r, v, &p),
            "deploy" => read_deploy(r, v, &p, &mut s),
            "profiles" => s.profiles = r.strings(v, &p).unwrap_or_default(),
            "security_opt" => s.security_opt = r.strings(v, &p).unwrap_or_default(),
            "privileged" => s.privileged = r.bool(v, &p),
            "cap_add" => s.cap_add = r.strings(v, &p).unwrap_or_default(),
            "cap_drop" => s.cap_drop = r.strings(v, &p).unwrap_or_default(),
            "hostname" => s.hostname = r.string(v, &p),
            "init" => s.init = r.bool(v, &p),
            "stop_signal" => s.stop_signal = r.string(v, &p),
            "stop_grace_period" => {
                s.stop_timeout_secs = r
                    .duration_ms(v, &p)
                    .map(|ms| i64::try_from(ms.div_ceil(1000)).unwrap_or(i64::MAX));
            }
            "tmpfs" => s.tmpfs = read_tmpfs(r, v, &p),
            "logging" => s.logging = read_logging(r, v, &p),
            "read_only" => s.read_only = r.bool(v, &p),
            "user" => s.user = r.string(v, &p),
            "working_dir" => s.working_dir = r.string(v, &p),
            "mem_limit" => s.memory_bytes = read_bytes(r, v, &p),
            "cpus" => s.nano_cpus = read_cpus(r, v, &p),
            "extra_hosts" => {
                for kv in r.key_values_at(v, &p).unwrap_or_default() {
                    // The list form is `host:ip` (split at the first `:`), the map form host → ip.
                    let entry = if matches!(v.value, Value::Map(_)) {
                        format!("{}:{}", kv.key, kv.value)
                    } else if kv.value.is_empty() {
                        kv.key.clone()
                    } else {
                        format!("{}={}", kv.key, kv.value)
                    };
                    if !entry.contains(':') || entry.starts_with(':') {
                        r.error(kv.loc, &kv.field, format!("`{entry}` is not `host:ip`"));
                        continue;
                    }
                    s.extra_hosts.push(entry);
                }
            }
            "build" => s.build = read_build(r, ctx, name, k.loc, v, &p),
            "configs" | "secrets" => {
                let kind = if key == "configs" {
                    FileKind::Config
                } else {
                    FileKind::Secret
                };
                s.configs.retain(|c| c.kind != kind);
                s.configs.extend(read_config_uses(r, ctx, v, &p, kind));
            }
            "x-refinery" => read_x_refinery(r, v, &p, &mut s),
            other if other.starts_with("x-") => {}
            other => r.error_hint(
                k.loc,
                &p,
                format!("service `{name}`: key `{other}` is not supported by Refinery"),
                UNSUPPORTED_HINT,
            ),
        }
    }
    for (k, v) in file_env {
        s.env.entry(k).or_insert(v);
    }
    Some(s)
}

/// `build: ./dir` or `build: {context, dockerfile, args, target}`.
fn read_build(
    r: &mut Reader<'_>,
    ctx: &FileContext<'_>,
    service: &str,
    loc: Loc,
    node: &Node,
    path: &str,
) -> Option<BuildDecl> {
    let mut b = BuildDecl {
        context: ".".into(),
        loc,
        file: ctx.file.to_owned(),
        ..BuildDecl::default()
    };
    match &node.value {
        Value::Map(entries) => {
            r.map(node, path)?;
            for (k, v) in entries {
                let Some(key) = k.scalar() else { continue };
                let f = format!("{path}.{key}");
                match key {
                    "context" => b.context = r.string(v, &f)?,
                    "dockerfile" => b.dockerfile = r.string(v, &f),
                    "target" => b.target = r.string(v, &f),
                    "args" => read_build_args(r, v, &f, &mut b.args),
                    other if other.starts_with("x-") => {}
                    other => r.error_hint(
                        k.loc,
                        &f,
                        format!("service `{service}`: key `{other}` of `build` is not supported by Refinery"),
                        "supported: build.context, build.dockerfile, build.args, build.target",
                    ),
                }
            }
        }
        _ => b.context = r.string(node, path)?,
    }
    Some(b)
}

/// `args:` as a map or a `KEY=value` list. A bare `KEY` (list) or `KEY:` (map) takes the
/// variable's value, or is left out when it is unset, as docker compose does.
fn read_build_args(
    r: &mut Reader<'_>,
    node: &Node,
    path: &str,
    out: &mut BTreeMap<String, String>,
) {
    let mut env = BTreeMap::new();
    read_environment(r, node, path, &mut env);
    for (k, v) in env {
        out.insert(k, v.expose().to_owned());
    }
}

fn read_environment(
    r: &mut Reader<'_>,
    node: &Node,
    path: &str,
    env: &mut BTreeMap<String, Secret>,
) {
    // A bare `KEY` (list) or `KEY:` with no value (map) takes the variable's value from the
    // environment, or is left out when it is unset.
    match &node.value {
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                let field = format!("{path}[{i}]");
                let Some(text) = r.string(item, &field) else {
                    continue;
                };
                match text.split_once('=') {
                    Some((k, v)) => {
                        env.insert(k.to_owned(), Secret::for_name(k, v));
                    }
                    None => {
                        if let Some(v) = r.lookup(&text) {
                            env.insert(text.clone(), Secret::for_name(&text, v));
                        }
                    }
                }
            }
        }
        Value::Map(entries) => {
            if r.map(node, path).is_none() {
                return;
            }
            for (k, v) in entries {
                let Some(key) = k.scalar() else { continue };
                let field = format!("{path}.{key}");
                if v.is_null() {
                    if let Some(val) = r.lookup(key) {
                        env.insert(key.to_owned(), Secret::for_name(key, val));
                    }
                    continue;
                }
                if let Some(val) = r.string(v, &field) {
                    env.insert(key.to_owned(), Secret::for_name(key, val));
                }
            }
        }
        _ => r.error(
            node.loc,
            path,
            format!(
                "expected a mapping or a list of KEY=value, found {}",
                node.kind_name()
            ),
        ),
    }
}

fn read_ports(r: &mut Reader<'_>, node: &Node, path: &str, out: &mut Vec<PortBinding>) {
    let Some(items) = r.seq(node, path) else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let field = format!("{path}[{i}]");
        let spec = match &item.value {
            Value::Map(entries) => {
                if r.map(item, &field).is_none() {
                    continue;
                }
                let mut target = None;
                let mut published = None;
                let mut protocol = None;
                let mut host_ip = None;
                for (k, v) in entries {
                    let Some(key) = k.scalar() else { continue };
                    let f = format!("{field}.{key}");
                    match key {
                        "target" => target = r.string(v, &f),
                        "published" => published = r.string(v, &f),
                        "protocol" => protocol = r.string(v, &f),
                        "host_ip" => host_ip = r.string(v, &f),
                        "mode" | "name" | "app_protocol" => {}
                        other => r.error(
                            k.loc,
                            &f,
                            format!("key `{other}` is not supported in a port"),
                        ),
                    }
                }
                let Some(target) = target else {
                    r.error(item.loc, &field, "a port needs a `target`");
                    continue;
                };
                let mut s = String::new();
                if let Some(ip) = host_ip {
                    s.push_str(&ip);
                    s.push(':');
                }
                if let Some(p) = published {
                    s.push_str(&p);
                    s.push(':');
                } else if !s.is_empty() {
                    s.push(':');
                }
                s.push_str(&target);
                if let Some(p) = protocol {
                    s.push('/');
                    s.push_str(&p);
                }
                s
            }
            _ => match r.string(item, &field) {
                Some(s) => s,
                None => continue,
            },
        };
        match parse_port(&spec) {
            Ok(mut v) => out.append(&mut v),
            Err(e) => r.error_hint(
                item.loc,
                &field,
                format!("failed to parse port `{spec}`: {e}"),
                "write `HOST:CONTAINER`, `IP:HOST:CONTAINER[/udp]`, a range like `8000-8002:8000-8002`, or the long form with `target:`",
            ),
        }
    }
}

fn read_volumes(
    r: &mut Reader<'_>,
    ctx: &FileContext<'_>,
    node: &Node,
    path: &str,
    s: &mut Service,
) {
    let Some(items) = r.seq(node, path) else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let field = format!("{path}[{i}]");
        let spec = match &item.value {
            Value::Map(entries) => {
                if r.map(item, &field).is_none() {
                    continue;
                }
                let (mut source, mut target, mut ro, mut typ) = (None, None, false, None);
                for (k, v) in entries {
                    let Some(key) = k.scalar() else { continue };
                    let f = format!("{field}.{key}");
                    match key {
                        "type" => typ = r.string(v, &f),
                        "source" => source = r.string(v, &f),
                        "target" => target = r.string(v, &f),
                        "read_only" => ro = r.bool(v, &f).unwrap_or(false),
                        "consistency" => {}
                        other => r.error(
                            k.loc,
                            &f,
                            format!("key `{other}` is not supported in a volume"),
                        ),
                    }
                }
                if let Some(t) = typ.as_deref()
                    && !matches!(t, "volume" | "bind")
                {
                    r.error(
                        item.loc,
                        &field,
                        format!("volume type `{t}` is not supported; use `volume` or `bind`"),
                    );
                    continue;
                }
                let Some(target) = target else {
                    r.error(item.loc, &field, "a volume needs a `target`");
                    continue;
                };
                let mut out = source.map(|src| format!("{src}:")).unwrap_or_default();
                out.push_str(&target);
                if ro {
                    out.push_str(":ro");
                }
                out
            }
            _ => match r.string(item, &field) {
                Some(x) => x,
                None => continue,
            },
        };
        match parse_volume(&spec, Some(ctx.abs_dir)) {
            Ok(m) => {
                if m.kind == MountKind::Volume {
                    s.named_volumes.push((m.source.clone(), item.loc));
                }
                s.content.retain(|x| x.target != m.target);
                let source = spec.split(':').next().unwrap_or_default();
                if m.kind == MountKind::Bind
                    && source.starts_with('.')
                    && let Some(rel) = repo_relative(ctx.project_dir, source)
                {
                    s.content.push(ContentMount::new(&m.target, &rel));
                }
                s.mounts.retain(|x| x.target != m.target);
                s.mounts.push(m);
            }
            Err(e) => r.error(
                item.loc,
                &field,
                format!("failed to parse volume `{spec}`: {e}"),
            ),
        }
    }
}

/// `tmpfs: /run` or `[/run, "/tmp:size=64m,mode=1777"]`: absolute paths, each with its mount
/// options after a `:`.
fn read_tmpfs(r: &mut Reader<'_>, node: &Node, path: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for item in r.strings_at(node, path).unwrap_or_default() {
        let (target, options) = item.value.split_once(':').unwrap_or((&item.value, ""));
        if !target.starts_with('/') {
            r.error_hint(
                item.loc,
                &item.field,
                format!("tmpfs `{}` is not an absolute path", item.value),
                "write `/run` or `/tmp:size=64m,mode=1777`",
            );
            continue;
        }
        out.insert(target.to_owned(), options.to_owned());
    }
    out
}

/// `logging: {driver: json-file, options: {max-size: 10m}}`.
fn read_logging(r: &mut Reader<'_>, node: &Node, path: &str) -> Option<Logging> {
    let mut m = r.map(node, path)?;
    let driver = m
        .get("driver")
        .and_then(|n| r.string(n, &format!("{path}.driver")));
    let options = m
        .get("options")
        .and_then(|n| r.string_map(n, &format!("{path}.options")))
        .unwrap_or_default();
    m.finish(r);
    match driver {
        Some(driver) => Some(Logging { driver, options }),
        None => {
            r.error_hint(
                node.loc,
                path,
                "`logging` needs a `driver`",
                "write `logging: {driver: json-file, options: {max-size: 10m}}`",
            );
            None
        }
    }
}

/// `configs: [name]` or `[{source: name, target: /etc/app.conf}]` (and the same for `secrets:`).
fn read_config_uses(
    r: &mut Reader<'_>,
    ctx: &FileContext<'_>,
    node: &Node,
    path: &str,
    kind: FileKind,
) -> Vec<ConfigUse> {
    let mut out = Vec::new();
    let Some(items) = r.seq(node, path) else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let field = format!("{path}[{i}]");
        let (name, target) = match &item.value {
            Value::Map(entries) => {
                if r.map(item, &field).is_none() {
                    continue;
                }
                let (mut source, mut target) = (None, None);
                for (k, v) in entries {
                    let Some(key) = k.scalar() else { continue };
                    let f = format!("{field}.{key}");
                    match key {
                        "source" => source = r.string(v, &f),
                        "target" => target = r.string(v, &f),
                        "uid" | "gid" | "mode" => {}
                        other => r.error_hint(
                            k.loc,
                            &f,
                            format!(
                                "key `{other}` is not supported in a service {}",
                                kind.word()
                            ),
                            "supported: source, target, uid, gid, mode",
                        ),
                    }
                }
                let Some(source) = source else {
                    r.error(
                        item.loc,
                        &field,
                        format!("a {} needs a `source`", kind.word()),
                    );
                    continue;
                };
                (source, target)
            }
            _ => match r.string(item, &field) {
                Some(x) => (x, None),
                None => continue,
            },
        };
        let target = match target {
            Some(t) if t.starts_with('/') => t,
            Some(t) => format!("{}/{t}", kind.dir()),
            None => format!("{}/{name}", kind.dir()),
        };
        out.push(ConfigUse {
            kind,
            name,
            target,
            loc: item.loc,
            file: ctx.file.to_owned(),
        });
    }
    out
}

/// `x-refinery: {ignore_differences: [...], drift_action: alert}`: Refinery's per-service
/// settings, in the compose file's extension field (docker-compose ignores `x-` keys).
fn read_x_refinery(r: &mut Reader<'_>, node: &Node, path: &str, s: &mut Service) {
    if r.map(node, path).is_none() {
        return;
    }
    let Value::Map(entries) = &node.value else {
        return;
    };
    for (k, v) in entries {
        let Some(key) = k.scalar() else { continue };
        let f = format!("{path}.{key}");
        match key {
            "ignore_differences" => {
                for item in r.strings_at(v, &f).unwrap_or_default() {
                    check_ignore_path(r, item.loc, &item.field, &item.value);
                    s.ignore_differences.push(item.value);
                }
            }
            "drift_action" => {
                s.drift_action = read_action(
                    r,
                    v,
                    &f,
                    &[
                        Action::Alert,
                        Action::Ignore,
                        Action::Recreate,
                        Action::Restart,
                    ],
                );
            }
            other => {
                let mut hint = "supported: ignore_differences, drift_action".to_owned();
                if let Some(sug) =
                    crate::suggestion::suggest(other, ["ignore_differences", "drift_action"])
                {
                    hint = format!("did you mean `{sug}`?");
                }
                r.error_hint(
                    k.loc,
                    &f,
                    format!("key `{other}` is not supported under `x-refinery`"),
                    hint,
                );
            }
        }
    }
}

fn read_networks(
    r: &mut Reader<'_>,
    node: &Node,
    path: &str,
) -> Option<BTreeMap<String, (Vec<String>, Loc)>> {
    let mut out = BTreeMap::new();
    match &node.value {
        Value::Seq(_) => {
            for item in r.strings_at(node, path)? {
                out.insert(item.value, (Vec::new(), item.loc));
            }
        }
        Value::Map(entries) => {
            r.map(node, path)?;
            for (k, v) in entries {
                let Some(name) = k.scalar() else { continue };
                let f = format!("{path}.{name}");
                let mut aliases = Vec::new();
                if !v.is_null() {
                    r.map(v, &f)?;
                    if let Value::Map(opts) = &v.value {
                        for (ok, ov) in opts {
                            match ok.scalar() {
                                Some("aliases") => {
                                    aliases = r.strings(ov, &format!("{f}.aliases")).unwrap_or_default();
                                }
                                Some(other) => r.error(
                                    ok.loc,
                                    &format!("{f}.{other}"),
                                    format!("key `{other}` is not supported for a service network; only `aliases`"),
                                ),
                                None => {}
                            }
                        }
                    }
                }
                out.insert(name.to_owned(), (aliases, k.loc));
            }
        }
        _ => {
            r.error(
                node.loc,
                path,
                format!("expected a list or a mapping, found {}", node.kind_name()),
            );
            return None;
        }
    }
    Some(out)
}

fn read_depends_on(
    r: &mut Reader<'_>,
    ctx: &FileContext<'_>,
    node: &Node,
    path: &str,
) -> Vec<DependsOn> {
    let mut out = Vec::new();
    match &node.value {
        Value::Seq(_) => {
            for item in r.strings_at(node, path).unwrap_or_default() {
                out.push(DependsOn {
                    service: item.value,
                    condition: DependencyCondition::ServiceStarted,
                    loc: item.loc,
                    file: ctx.file.to_owned(),
                });
            }
        }
        Value::Map(entries) => {
            if r.map(node, path).is_none() {
                return out;
            }
            for (k, v) in entries {
                let Some(name) = k.scalar() else { continue };
                let f = format!("{path}.{name}");
                let mut condition = DependencyCondition::ServiceStarted;
                if !v.is_null()
                    && r.map(v, &f).is_some()
                    && let Value::Map(opts) = &v.value
                {
                    for (ok, ov) in opts {
                        match ok.scalar() {
                            Some("condition") => match scalar_text(ov) {
                                Some("service_started") => {}
                                Some("service_healthy") => {
                                    condition = DependencyCondition::ServiceHealthy;
                                }
                                Some("service_completed_successfully") => {
                                    condition = DependencyCondition::ServiceCompletedSuccessfully;
                                }
                                other => r.error_hint(
                                    ov.loc,
                                    &format!("{f}.condition"),
                                    format!("`{}` is not a depends_on condition", other.unwrap_or("")),
                                    "use `service_started`, `service_healthy` or `service_completed_successfully`",
                                ),
                            },
                            Some("restart" | "required") => {}
                            Some(other) => r.error(
                                ok.loc,
                                &format!("{f}.{other}"),
                                format!("key `{other}` is not supported in depends_on"),
                            ),
                            None => {}
                        }
                    }
                }
                out.push(DependsOn {
                    service: name.to_owned(),
                    condition,
                    loc: k.loc,
                    file: ctx.file.to_owned(),
                });
            }
        }
        _ => r.error(
            node.loc,
            path,
            format!("expected a list or a mapping, found {}", node.kind_name()),
        ),
    }
    out
}

fn read_count(r: &mut Reader<'_>, node: &Node, path: &str) -> Option<u32> {
    let n = r.u64(node, path)?;
    match u32::try_from(n) {
        Ok(n) => Some(n),
        Err(_) => {
            r.error(node.loc, path, format!("`{n}` replicas is too many"));
            None
        }
    }
}

fn read_bytes(r: &mut Reader<'_>, node: &Node, path: &str) -> Option<i64> {
    let t = r.string(node, path)?;
    let b = parse_bytes(&t);
    if b.is_none() {
        r.error_hint(
            node.loc,
            path,
            format!("`{t}` is not a size"),
            "write bytes or a size like `512m` or `1g`",
        );
    }
    b
}

fn read_cpus(r: &mut Reader<'_>, node: &Node, path: &str) -> Option<i64> {
    let t = r.string(node, path)?;
    let c = parse_cpus(&t);
    if c.is_none() {
        r.error_hint(
            node.loc,
            path,
            format!("`{t}` is not a number of CPUs"),
            "write a positive number like `0.5` or `2`",
        );
    }
    c
}

fn read_deploy(r: &mut Reader<'_>, node: &Node, path: &str, s: &mut Service) {
    if r.map(node, path).is_none() {
        return;
    }
    let Value::Map(entries) = &node.value else {
        return;
    };
    for (k, v) in entries {
        let Some(key) = k.scalar() else { continue };
        let p = format!("{path}.{key}");
        match key {
            "replicas" => s.replicas = read_count(r, v, &p),
            "resources" => {
                if r.map(v, &p).is_none() {
                    continue;
                }
                let Value::Map(res) = &v.value else { continue };
                for (rk, rv) in res {
                    let Some(rkey) = rk.scalar() else { continue };
                    let rp = format!("{p}.{rkey}");
                    match rkey {
                        "limits" => {
                            if r.map(rv, &rp).is_none() {
                                continue;
                            }
                            let Value::Map(lims) = &rv.value else {
                                continue;
                            };
                            for (lk, lv) in lims {
                                let Some(lkey) = lk.scalar() else { continue };
                                let lp = format!("{rp}.{lkey}");
                                match lkey {
                                    "memory" => s.memory_bytes = read_bytes(r, lv, &lp),
                                    "cpus" => s.nano_cpus = read_cpus(r, lv, &lp),
                                    other => r.error(lk.loc, &lp, format!("key `{other}` is not supported in resource limits; only `memory` and `cpus`")),
                                }
                            }
                        }
                        // Reservations are a scheduler's business; a single engine ignores them.
                        "reservations" => {}
                        other => r.error(
                            rk.loc,
                            &rp,
                            format!("key `{other}` is not supported in `deploy.resources`"),
                        ),
                    }
                }
            }
            other => r.error_hint(
                k.loc,
                &p,
                format!("key `{other}` of `deploy` is not supported by Refinery"),
                "supported: deploy.replicas, deploy.resources.limits.{memory,cpus}",
            ),
        }
    }
}
