//! The `services:` section of one compose file: each service's keys, one reader per key (the
//! readers of the bigger keys live in `service_fields` and `resources`).

use crate::manifest::grammar;
use std::collections::BTreeMap;

use crate::content::ContentMount;
use crate::extra_options::{PullPolicy, expose_ports};
use crate::manifest::fields::read_healthcheck;
use crate::manifest::reader::{Reader, split_words};
use crate::secret::Secret;
use crate::sops::env_file_values;
use crate::spec::RestartPolicy;
use crate::yaml::{self, Loc, Node, Value};

use super::join_rel;
use super::resources::{
    read_blkio, read_bytes, read_count, read_cpus, read_deploy, read_devices, read_gpus, read_i64,
    read_micros, read_ulimits,
};
use super::service::{FileContext, FileKind, RESETTABLE, Service, ServiceRef, Written};
use super::service_fields::{
    read_build, read_config_uses, read_depends_on, read_environment, read_logging, read_networks,
    read_ports, read_tmpfs, read_volumes, read_x_refinery,
};

/// Keys of the Compose Specification that Refinery refuses, with why and what to do instead.
const REFUSED: [(&str, &str); 7] = [
    (
        "credential_spec",
        "`credential_spec` configures Windows containers (gMSA); a Linux engine has no use for it: remove it",
    ),
    (
        "post_start",
        "lifecycle hooks run commands in the container from the client; run the command from the image's entrypoint instead",
    ),
    (
        "pre_stop",
        "lifecycle hooks run commands in the container from the client; handle the stop signal in the container instead",
    ),
    (
        "models",
        "AI models are served by Docker Model Runner, not by the engine; run the model as a service of its own",
    ),
    (
        "provider",
        "a provider service is run by a compose plugin, not by the engine; declare the resource it provides another way",
    ),
    (
        "use_api_socket",
        "it mounts the engine's socket and the client's credentials into the container; mount `/var/run/docker.sock` explicitly if the service needs the engine",
    ),
    (
        "pull_refresh_after",
        "write the refresh into `pull_policy` (`daily`, `weekly` or `every_12h`)",
    ),
];

/// Every service key Refinery reads, for suggestions.
const KNOWN: [&str; 86] = [
    "annotations",
    "attach",
    "blkio_config",
    "build",
    "cap_add",
    "cap_drop",
    "cgroup",
    "cgroup_parent",
    "command",
    "configs",
    "container_name",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpus",
    "cpuset",
    "depends_on",
    "deploy",
    "develop",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "entrypoint",
    "env_file",
    "environment",
    "expose",
    "extends",
    "external_links",
    "extra_hosts",
    "gpus",
    "group_add",
    "healthcheck",
    "hostname",
    "image",
    "init",
    "ipc",
    "isolation",
    "label_file",
    "labels",
    "links",
    "logging",
    "mac_address",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "network_mode",
    "networks",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "ports",
    "privileged",
    "profiles",
    "pull_policy",
    "read_only",
    "restart",
    "runtime",
    "scale",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "user",
    "userns_mode",
    "uts",
    "volumes",
    "volumes_from",
    "working_dir",
    "x-refinery",
];

/// How deep `extends` may chain.
const MAX_EXTENDS: usize = 8;

/// Reads `services.<name>` of one file; `None` if it is not a mapping.
pub(super) fn read_service(
    r: &mut Reader<'_>,
    ctx: &FileContext<'_>,
    name: &str,
    loc: Loc,
    node: &Node,
) -> Option<Service> {
    read_service_at(r, ctx, name, loc, node, 0)
}

fn read_service_at(
    r: &mut Reader<'_>,
    ctx: &FileContext<'_>,
    name: &str,
    loc: Loc,
    node: &Node,
    depth: usize,
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
    // `extends` first: this declaration is merged over the one it extends.
    if let Some((k, v)) = entries.iter().find(|(k, _)| k.scalar() == Some("extends"))
        && let Some(mut from) = read_extends(r, ctx, name, k.loc, v, depth)
    {
        from.name = name.to_owned();
        from.file = ctx.file.to_owned();
        from.loc = loc;
        s = from;
        let own = read_service_keys(r, ctx, name, loc, entries)?;
        s.merge(own);
        return Some(s);
    }
    read_service_keys(r, ctx, name, loc, entries)
}

fn read_service_keys(
    r: &mut Reader<'_>,
    ctx: &FileContext<'_>,
    name: &str,
    loc: Loc,
    entries: &[(Node, Node)],
) -> Option<Service> {
    let base = format!("services.{name}");
    let mut s = Service {
        name: name.to_owned(),
        file: ctx.file.to_owned(),
        loc,
        ..Service::default()
    };
    // env_file first, `environment` over it, whatever the order in the file.
    let mut file_env: BTreeMap<String, Secret> = BTreeMap::new();
    let mut file_labels: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in entries {
        let Some(key) = k.scalar() else { continue };
        let p = format!("{base}.{key}");
        // `!reset` / `!override` (Compose Specification): earlier files' value is dropped.
        if let Some(tag) = ctx.tags.get(&(v.loc.line, v.loc.column))
            && matches!(tag.as_str(), "reset" | "override")
        {
            if RESETTABLE.contains(&key) {
                s.resets.push(key.to_owned());
            } else {
                r.error_hint(
                    v.loc,
                    &p,
                    format!("`!{tag}` on `{key}` is not supported by Refinery"),
                    "drop the key from the earlier file instead, or write its whole value there",
                );
            }
        }
        if v.is_null() {
            continue;
        }
        let x = &mut s.extra;
        match key {
            "image" => s.image = r.string_checked(v, &p, grammar::image_reference),
            "container_name" => {
                s.container_name = text(r, v, &p).inspect(|n| {
                    let _ = r.check(v.loc, &p, grammar::object_name("container", n));
                });
            }
            "command" => s.command = read_words(r, v, &p),
            "entrypoint" => s.entrypoint = read_words(r, v, &p),
            "environment" => read_environment(r, v, &p, &mut s.env),
            "env_file" => read_env_files(r, ctx, v, &p, &mut s, &mut file_env),
            "label_file" => read_label_files(r, ctx, v, &p, &mut file_labels),
            "ports" => read_ports(r, v, &p, &mut s.ports),
            "expose" => read_expose(r, v, &p, &mut x.expose),
            "volumes" => read_volumes(r, ctx, v, &p, &mut s),
            "volumes_from" => read_volumes_from(r, ctx, v, &p, &mut s),
            "networks" => s.networks = read_networks(r, v, &p),
            "network_mode" => s.network_mode = r.string(v, &p).map(|m| (m, v.loc)),
            "links" => read_links(r, ctx, v, &p, &mut s),
            "external_links" => {
                for item in r.strings_at(v, &p).unwrap_or_default() {
                    let (c, alias) = item
                        .value
                        .split_once(':')
                        .map_or((item.value.as_str(), item.value.as_str()), |(c, a)| (c, a));
                    x.links.push(format!("{c}:{alias}"));
                }
            }
            "depends_on" => s.depends_on = read_depends_on(r, ctx, v, &p),
            "healthcheck" => {
                let (hc, start_interval) = read_compose_healthcheck(r, v, &p);
                s.healthcheck = hc;
                x.health_start_interval_ms = start_interval;
            }
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
            "annotations" => {
                for kv in r.key_values_at(v, &p).unwrap_or_default() {
                    x.annotations.insert(kv.key, kv.value);
                }
            }
            "scale" => s.replicas = read_count(r, v, &p),
            "deploy" => read_deploy(r, v, &p, &mut s),
            "profiles" => s.profiles = r.strings(v, &p).unwrap_or_default(),
            "security_opt" => s.security_opt = r.strings(v, &p).unwrap_or_default(),
            "privileged" => s.privileged = r.bool(v, &p),
            "cap_add" => s.cap_add = r.strings(v, &p).unwrap_or_default(),
            "cap_drop" => s.cap_drop = r.strings(v, &p).unwrap_or_default(),
            "hostname" => s.hostname = text(r, v, &p),
            "domainname" => x.domainname = text(r, v, &p),
            "init" => s.init = r.bool(v, &p),
            "stop_signal" => s.stop_signal = text(r, v, &p),
            "stop_grace_period" => {
                s.stop_timeout_secs = r
                    .duration_ms(v, &p)
                    .map(|ms| i64::try_from(ms.div_ceil(1000)).unwrap_or(i64::MAX));
            }
            "tmpfs" => s.tmpfs.extend(read_tmpfs(r, v, &p)),
            "logging" => s.logging = read_logging(r, v, &p),
            "read_only" => s.read_only = r.bool(v, &p),
            "user" => s.user = text(r, v, &p),
            "working_dir" => s.working_dir = text(r, v, &p),
            "mem_limit" => {
                s.memory_bytes = read_bytes(r, v, &p).inspect(|b| {
                    let _ = r.check(v.loc, &p, grammar::memory_limit(*b));
                });
            }
            "mem_reservation" => x.mem_reservation = read_bytes(r, v, &p),
            "memswap_limit" => x.memswap_limit = read_bytes(r, v, &p),
            "mem_swappiness" => x.mem_swappiness = read_i64(r, v, &p, 0..=100),
            "oom_kill_disable" => x.oom_kill_disable = r.bool(v, &p),
            "oom_score_adj" => x.oom_score_adj = read_i64(r, v, &p, -1000..=1000),
            "pids_limit" => x.pids_limit = read_i64(r, v, &p, -1..=i64::MAX),
            "shm_size" => x.shm_size = read_bytes(r, v, &p),
            "cpus" => s.nano_cpus = read_cpus(r, v, &p),
            "cpu_shares" => x.cpu_shares = read_i64(r, v, &p, 0..=262_144),
            "cpu_quota" => x.cpu_quota = read_micros(r, v, &p),
            "cpu_period" => x.cpu_period = read_micros(r, v, &p),
            "cpu_rt_period" => x.cpu_rt_period = read_micros(r, v, &p),
            "cpu_rt_runtime" => x.cpu_rt_runtime = read_micros(r, v, &p),
            "cpu_count" => x.cpu_count = read_i64(r, v, &p, 0..=i64::MAX),
            "cpu_percent" => x.cpu_percent = read_i64(r, v, &p, 0..=100),
            "cpuset" => x.cpuset = text(r, v, &p),
            "blkio_config" => x.blkio = read_blkio(r, v, &p),
            "ulimits" => x.ulimits.extend(read_ulimits(r, v, &p)),
            "sysctls" => {
                for kv in r.key_values_at(v, &p).unwrap_or_default() {
                    x.sysctls.insert(kv.key, kv.value);
                }
            }
            "storage_opt" => {
                for kv in r.key_values_at(v, &p).unwrap_or_default() {
                    x.storage_opt.insert(kv.key, kv.value);
                }
            }
            "devices" => x.devices.extend(read_devices(r, v, &p)),
            "device_cgroup_rules" => x.device_cgroup_rules = r.strings(v, &p).unwrap_or_default(),
            "gpus" => x.device_requests.extend(read_gpus(r, v, &p)),
            "group_add" => x.group_add = r.strings(v, &p).unwrap_or_default(),
            "dns" => x.dns = r.strings(v, &p).unwrap_or_default(),
            "dns_search" => x.dns_search = r.strings(v, &p).unwrap_or_default(),
            "dns_opt" => x.dns_opt = r.strings(v, &p).unwrap_or_default(),
            "mac_address" => x.mac_address = text(r, v, &p),
            "pid" | "ipc" => {
                if let Some(mode) = r.string(v, &p) {
                    match mode.strip_prefix("service:") {
                        Some(svc) => s.refs.push(ServiceRef {
                            key: if key == "pid" { "pid" } else { "ipc" },
                            service: svc.to_owned(),
                            detail: String::new(),
                            loc: v.loc,
                            file: ctx.file.to_owned(),
                        }),
                        None if key == "pid" => x.pid = Some(mode),
                        None => x.ipc = Some(mode),
                    }
                }
            }
            "uts" => x.uts = text(r, v, &p),
            "userns_mode" => x.userns_mode = text(r, v, &p),
            "cgroup" => {
                x.cgroup = r.string(v, &p).filter(|m| {
                    let ok = matches!(m.as_str(), "host" | "private");
                    if !ok {
                        r.error_hint(
                            v.loc,
                            &p,
                            format!("`{m}` is not a cgroup namespace mode"),
                            "write `host` or `private`",
                        );
                    }
                    ok
                });
            }
            "cgroup_parent" => x.cgroup_parent = text(r, v, &p),
            "isolation" => x.isolation = text(r, v, &p),
            "runtime" => x.runtime = text(r, v, &p),
            "platform" => x.platform = text(r, v, &p),
            "pull_policy" => {
                if let Some(t) = r.string(v, &p) {
                    match PullPolicy::parse(&t) {
                        Some(pp) => {
                            x.pull_policy = Some(pp);
                            s.pull_policy_at = Some(Written {
                                file: ctx.file.to_owned(),
                                loc: v.loc,
                                field: p.clone(),
                            });
                        }
                        None => r.error_hint(
                            v.loc,
                            &p,
                            format!("`{t}` is not a pull policy"),
                            "write `always`, `missing`, `never`, `build`, `daily`, `weekly` or `every_<duration>` (`every_12h`)",
                        ),
                    }
                }
            }
            "stdin_open" => s.stdin_open = r.bool(v, &p),
            "tty" => s.tty = r.bool(v, &p),
            "extra_hosts" => {
                for kv in r.key_values_at(v, &p).unwrap_or_default() {
                    // The list form is `host:ip` (split at the first `:`) or `host=ip`, the map
                    // form host → ip.
                    let entry = if matches!(v.value, Value::Map(_)) || !kv.value.is_empty() {
                        format!("{}:{}", kv.key, kv.value)
                    } else {
                        kv.key.clone()
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
            // Read first (see `read_service_at`); client-side settings with no effect on the
            // containers: which services' output `up` attaches to, `docker compose watch`.
            "extends" | "attach" | "develop" => {}
            other if other.starts_with("x-") => {}
            other => match REFUSED.iter().find(|(k, _)| *k == other) {
                Some((_, why)) => r.error_hint(
                    k.loc,
                    &p,
                    format!("service `{name}`: key `{other}` is not supported by Refinery"),
                    *why,
                ),
                None => {
                    let hint = match crate::suggestion::suggest(other, KNOWN) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "see \"What is read\" in the README for the service keys".into(),
                    };
                    r.error_hint(
                        k.loc,
                        &p,
                        format!("service `{name}`: unknown key `{other}`"),
                        hint,
                    );
                }
            },
        }
    }
    for (k, v) in file_env {
        s.env.entry(k).or_insert(v);
    }
    for (k, v) in file_labels {
        s.labels.entry(k).or_insert(v);
    }
    Some(s)
}

/// A service's `healthcheck`: `start_interval` (Compose Specification, Docker API 1.44) is read
/// here, the rest as `refinery.yaml` reads a healthcheck. Unset for a disabled healthcheck.
fn read_compose_healthcheck(
    r: &mut Reader<'_>,
    v: &Node,
    p: &str,
) -> (Option<crate::spec::Healthcheck>, Option<u64>) {
    let mut node = v.clone();
    let mut start_interval = None;
    if let Value::Map(entries) = &mut node.value
        && let Some(i) = entries
            .iter()
            .position(|(k, _)| k.scalar() == Some("start_interval"))
    {
        let (_, n) = entries.remove(i);
        start_interval = r
            .duration_ms(&n, &format!("{p}.start_interval"))
            .filter(|ms| *ms > 0);
    }
    let hc = read_healthcheck(r, &node, p);
    if hc
        .as_ref()
        .is_none_or(|h| h.test.first().map(String::as_str) == Some("NONE"))
    {
        start_interval = None;
    }
    (hc, start_interval)
}

/// A scalar that is unset when empty, as docker compose reads `hostname: ${HOST:-}`.
fn text(r: &mut Reader<'_>, v: &Node, p: &str) -> Option<String> {
    r.string(v, p).filter(|t| !t.is_empty())
}

/// `command`/`entrypoint`: a list of words, or one string split like a shell would.
fn read_words(r: &mut Reader<'_>, v: &Node, p: &str) -> Option<Vec<String>> {
    if v.scalar().is_some() {
        r.string(v, p).and_then(|t| {
            let w = split_words(&t);
            if w.is_none() {
                r.error(
                    v.loc,
                    p,
                    format!("failed to split `{t}` into words: unclosed quote"),
                );
            }
            w
        })
    } else {
        r.strings(v, p)
    }
}

/// `env_file: a.env`, `[a.env, b.env]` or `[{path: a.env, required: false}]`.
fn read_env_files(
    r: &mut Reader<'_>,
    ctx: &FileContext<'_>,
    v: &Node,
    p: &str,
    s: &mut Service,
    file_env: &mut BTreeMap<String, Secret>,
) {
    for (path_written, required, loc, field) in read_file_list(r, v, p) {
        let path = join_rel(ctx.project_dir, &path_written);
        match (ctx.read)(&path) {
            // SOPS-encrypted env files are decrypted here, in memory.
            Some(text) => {
                // Desired by content too: a changed file is drift naming it.
                s.content.push(ContentMount::env_file(&path));
                match env_file_values(&path, &text, ctx.keys) {
                    Ok(vars) => file_env.extend(vars),
                    Err(e) => match e.hint() {
                        Some(h) => r.error_hint(loc, &field, e.message(&path), h),
                        None => r.error(loc, &field, e.message(&path)),
                    },
                }
            }
            None if !required => {}
            None => r.error(
                loc,
                &field,
                format!("failed to find env file `{path}` in the commit"),
            ),
        }
    }
}

/// `label_file`: files of `KEY=value` lines whose labels the service's own `labels` override.
fn read_label_files(
    r: &mut Reader<'_>,
    ctx: &FileContext<'_>,
    v: &Node,
    p: &str,
    out: &mut BTreeMap<String, String>,
) {
    for (path_written, required, loc, field) in read_file_list(r, v, p) {
        let path = join_rel(ctx.project_dir, &path_written);
        match (ctx.read)(&path) {
            Some(text) => match crate::dotenv::parse_env_file(&text) {
                Ok(vars) => out.extend(vars),
                Err((line, message)) => r.error(
                    loc,
                    &field,
                    format!("failed to read label file `{path}`: line {line}: {message}"),
                ),
            },
            None if !required => {}
            None => r.error(
                loc,
                &field,
                format!("failed to find label file `{path}` in the commit"),
            ),
        }
    }
}

/// A file or a list of files, each a path or `{path, required}`: (path, required, where, field).
fn read_file_list(r: &mut Reader<'_>, v: &Node, p: &str) -> Vec<(String, bool, Loc, String)> {
    let mut out = Vec::new();
    let items: Vec<(usize, &Node)> = match &v.value {
        Value::Seq(items) => items.iter().enumerate().collect(),
        _ => {
            if let Some(s) = r.string(v, p) {
                out.push((s, true, v.loc, p.to_owned()));
            }
            return out;
        }
    };
    for (i, item) in items {
        let field = format!("{p}[{i}]");
        if matches!(item.value, Value::Map(_)) {
            let Some(mut m) = r.map(item, &field) else {
                continue;
            };
            let path = m
                .get("path")
                .and_then(|n| r.string(n, &format!("{field}.path")));
            let required = m
                .get("required")
                .and_then(|n| r.bool(n, &format!("{field}.required")))
                .unwrap_or(true);
            // `format: raw` only changes how values are read by compose v2's own parser.
            let _ = m.get("format");
            m.finish(r);
            match path {
                Some(path) => out.push((path, required, item.loc, field)),
                None => r.error(item.loc, &field, "an env file entry needs a `path`"),
            }
        } else if let Some(s) = r.string(item, &field) {
            out.push((s, true, item.loc, field));
        }
    }
    out
}

/// `expose: ["3000", "8000-8002", "53/udp"]`.
fn read_expose(r: &mut Reader<'_>, v: &Node, p: &str, out: &mut Vec<String>) {
    for item in r.strings_at(v, p).unwrap_or_default() {
        match expose_ports(&item.value) {
            Some(ports) => {
                for port in ports {
                    if !out.contains(&port) {
                        out.push(port);
                    }
                }
            }
            None => r.error_hint(
                item.loc,
                &item.field,
                format!("`{}` is not a port to expose", item.value),
                "write a port, a range (`8000-8002`), optionally with `/udp`",
            ),
        }
    }
}

/// `links: [db, "db:database"]`: a service of this project, and the alias it is known by.
fn read_links(r: &mut Reader<'_>, ctx: &FileContext<'_>, v: &Node, p: &str, s: &mut Service) {
    for item in r.strings_at(v, p).unwrap_or_default() {
        let (service, alias) = match item.value.split_once(':') {
            Some((svc, alias)) => (svc.to_owned(), alias.to_owned()),
            None => (item.value.clone(), item.value.clone()),
        };
        s.refs.retain(|x| x.key != "links" || x.service != service);
        s.refs.push(ServiceRef {
            key: "links",
            service,
            detail: alias,
            loc: item.loc,
            file: ctx.file.to_owned(),
        });
    }
}

/// `volumes_from: [service, "service:ro", "container:NAME:rw"]`.
fn read_volumes_from(
    r: &mut Reader<'_>,
    ctx: &FileContext<'_>,
    v: &Node,
    p: &str,
    s: &mut Service,
) {
    for item in r.strings_at(v, p).unwrap_or_default() {
        let mut parts: Vec<&str> = item.value.split(':').collect();
        let mode = match parts.last().copied() {
            Some(m @ ("ro" | "rw")) if parts.len() > 1 => {
                parts.pop();
                m.to_owned()
            }
            _ => "rw".to_owned(),
        };
        match parts.as_slice() {
            ["container", name] if !name.is_empty() => {
                let entry = if mode == "ro" {
                    format!("{name}:ro")
                } else {
                    (*name).to_owned()
                };
                s.extra.volumes_from.push(entry);
            }
            [service] if !service.is_empty() => s.refs.push(ServiceRef {
                key: "volumes_from",
                service: (*service).to_owned(),
                detail: mode,
                loc: item.loc,
                file: ctx.file.to_owned(),
            }),
            _ => r.error_hint(
                item.loc,
                &item.field,
                format!("`{}` is not a `volumes_from` entry", item.value),
                "write `SERVICE`, `SERVICE:ro` or `container:NAME[:ro]`",
            ),
        }
    }
}

/// `extends: base` or `extends: {service: base, file: common.yml}`: the declaration extended,
/// read from this file or another one of the commit.
fn read_extends(
    r: &mut Reader<'_>,
    ctx: &FileContext<'_>,
    name: &str,
    loc: Loc,
    v: &Node,
    depth: usize,
) -> Option<Service> {
    let p = format!("services.{name}.extends");
    let (service, file) = match &v.value {
        Value::Map(_) => {
            let mut m = r.map(v, &p)?;
            let service = m
                .get("service")
                .and_then(|n| r.string(n, &format!("{p}.service")));
            let file = m
                .get("file")
                .and_then(|n| r.string(n, &format!("{p}.file")));
            m.finish(r);
            let Some(service) = service else {
                r.error(v.loc, &p, "`extends` needs a `service`");
                return None;
            };
            (service, file)
        }
        _ => (r.string(v, &p)?, None),
    };
    if depth >= MAX_EXTENDS {
        r.error_hint(
            loc,
            &p,
            format!("service `{name}`: `extends` goes deeper than {MAX_EXTENDS} levels"),
            "check that the services do not extend each other in a loop",
        );
        return None;
    }
    let (path, text) = match &file {
        Some(f) => {
            let path = join_rel(ctx.project_dir, f);
            match (ctx.read)(&path) {
                Some(t) => (path, t),
                None => {
                    r.error(
                        v.loc,
                        &p,
                        format!(
                            "failed to find `{path}` (extended by service `{name}`) in the commit"
                        ),
                    );
                    return None;
                }
            }
        }
        None => (ctx.file.to_owned(), (ctx.read)(ctx.file)?),
    };
    let root = match yaml::parse(&text) {
        Ok(n) => n,
        Err(e) => {
            r.issues.push(crate::manifest::Issue::new(
                &path,
                e.loc,
                "",
                format!("invalid YAML: {}", e.message),
            ));
            return None;
        }
    };
    let Some((key, node)) = root.get("services").and_then(|s| s.entry(&service)) else {
        r.error(
            v.loc,
            &p,
            format!("service `{name}` extends `{service}`, which `{path}` does not declare"),
        );
        return None;
    };
    let tags = yaml::local_tags(&text);
    let sub = FileContext {
        file: &path,
        tags: &tags,
        abs_dir: ctx.abs_dir,
        project_dir: ctx.project_dir,
        read: ctx.read,
        keys: ctx.keys,
    };
    let (base, mut issues, mut warnings) = {
        let env = |n: &str| r.lookup(n);
        let mut sub_reader = Reader::new(&path, &env, true).with_strict_dollars();
        let base = read_service_at(&mut sub_reader, &sub, &service, key.loc, node, depth + 1);
        (base, sub_reader.issues, sub_reader.warnings)
    };
    // A declaration of this file is read (and its problems reported) as a service of its own.
    if path != ctx.file {
        r.issues.append(&mut issues);
        r.warnings.append(&mut warnings);
    }
    base
}
