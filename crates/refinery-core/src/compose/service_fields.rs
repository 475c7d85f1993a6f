//! Readers of the service keys that take more than a line: `build`, `environment`, `ports`,
//! `volumes`, `tmpfs`, `logging`, `configs`/`secrets`, `networks`, `depends_on` and Refinery's
//! own `x-refinery`.

use std::collections::BTreeMap;

use crate::action::Action;
use crate::content::{ContentMount, repo_relative};
use crate::manifest::fields::{check_ignore_path, read_action};
use crate::manifest::reader::{MapView, Reader};
use crate::manifest::specs::{parse_port, parse_volume};
use crate::secret::Secret;
use crate::spec::{DependencyCondition, Logging, MountKind, PortBinding};
use crate::yaml::{Loc, Node, Value};

use super::service::{
    BuildDecl, ConfigUse, DependsOn, FileContext, FileKind, Service, ServiceNetwork,
};

/// `build: ./dir` or `build: {context, dockerfile, args, target}`.
pub(super) fn read_build(
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
                    "network" => b.network = r.string(v, &f),
                    "shm_size" => b.shm_size = super::resources::read_bytes(r, v, &f),
                    "labels" => {
                        for kv in r.key_values_at(v, &f).unwrap_or_default() {
                            b.labels.insert(kv.key, kv.value);
                        }
                    }
                    "extra_hosts" => {
                        for kv in r.key_values_at(v, &f).unwrap_or_default() {
                            let entry = if kv.value.is_empty() {
                                kv.key
                            } else {
                                format!("{}:{}", kv.key, kv.value)
                            };
                            b.extra_hosts.push(entry);
                        }
                    }
                    "cache_from" => b.cache_from = r.strings(v, &f).unwrap_or_default(),
                    // Settings of BuildKit and of multi-platform builds, which the engine's
                    // classic builder has no use for: the image is the same without them.
                    "cache_to" | "no_cache" | "pull" | "platforms" | "tags" | "isolation"
                    | "privileged" | "provenance" | "sbom" | "entitlements" => {
                        b.ignored.push((key.to_owned(), k.loc));
                    }
                    other if other.starts_with("x-") => {}
                    other => r.error_hint(
                        k.loc,
                        &f,
                        format!("service `{service}`: key `{other}` of `build` is not supported by Refinery"),
                        match other {
                            "ssh" | "secrets" | "additional_contexts" | "dockerfile_inline" | "ulimits" => "it needs BuildKit, and Refinery builds with the engine's classic builder; build the image elsewhere and give the service an `image:`",
                            _ => "supported: build.context, dockerfile, args, target, network, shm_size, labels, extra_hosts, cache_from",
                        },
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
pub(super) fn read_build_args(
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

pub(super) fn read_environment(
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

pub(super) fn read_ports(r: &mut Reader<'_>, node: &Node, path: &str, out: &mut Vec<PortBinding>) {
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

pub(super) fn read_volumes(
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
        let mut propagation: Option<String> = None;
        let spec = match &item.value {
            Value::Map(entries) => {
                if r.map(item, &field).is_none() {
                    continue;
                }
                let (mut source, mut target, mut ro, mut typ) = (None, None, false, None);
                let mut tmpfs_opts: Vec<String> = Vec::new();
                for (k, v) in entries {
                    let Some(key) = k.scalar() else { continue };
                    let f = format!("{field}.{key}");
                    match key {
                        "type" => typ = r.string(v, &f),
                        "source" => source = r.string(v, &f),
                        "target" => target = r.string(v, &f),
                        "read_only" => ro = r.bool(v, &f).unwrap_or(false),
                        "consistency" => {}
                        "bind" => propagation = read_bind_options(r, v, &f),
                        "volume" => read_volume_options(r, v, &f),
                        "tmpfs" => tmpfs_opts = read_tmpfs_options(r, v, &f),
                        other => r.error(
                            k.loc,
                            &f,
                            format!("key `{other}` is not supported in a volume"),
                        ),
                    }
                }
                if let Some(t) = typ.as_deref()
                    && !matches!(t, "volume" | "bind" | "tmpfs")
                {
                    r.error_hint(
                        item.loc,
                        &field,
                        format!("volume type `{t}` is not supported by Refinery"),
                        "use `volume`, `bind` or `tmpfs` (`npipe` is for Windows engines, `cluster` for Swarm, `image` needs Docker API 1.47)",
                    );
                    continue;
                }
                let Some(target) = target else {
                    r.error(item.loc, &field, "a volume needs a `target`");
                    continue;
                };
                if typ.as_deref() == Some("tmpfs") {
                    if !target.starts_with('/') {
                        r.error(
                            item.loc,
                            &field,
                            format!("tmpfs `{target}` is not an absolute path"),
                        );
                        continue;
                    }
                    if ro {
                        tmpfs_opts.insert(0, "ro".to_owned());
                    }
                    s.mounts.retain(|x| x.target != target);
                    s.tmpfs.insert(target, tmpfs_opts.join(","));
                    continue;
                }
                let mut out = source.map(|src| format!("{src}:")).unwrap_or_default();
                out.push_str(&target);
                if ro {
                    out.push_str(":ro");
                }
                out
            }
            _ => match r.string(item, &field) {
                Some(x) => {
                    let (spec, p) = split_propagation(&x);
                    propagation = p;
                    spec
                }
                None => continue,
            },
        };
        match parse_volume(&spec, Some(ctx.abs_dir)) {
            Ok(m) => {
                s.extra.bind_propagation.remove(&m.target);
                match propagation.filter(|p| p != "rprivate") {
                    Some(p) if m.kind == MountKind::Bind => {
                        s.extra.bind_propagation.insert(m.target.clone(), p);
                    }
                    Some(p) => r.error_hint(
                        item.loc,
                        &field,
                        format!("propagation `{p}` applies to bind mounts only"),
                        "leave it out, or mount a host path",
                    ),
                    None => {}
                }
                if m.kind == MountKind::Volume {
                    s.named_volumes.push((m.source.clone(), item.loc));
                }
                s.content.retain(|x| x.target != m.target);
                let source = spec.split(':').next().unwrap_or_default();
                if m.kind == MountKind::Bind
                    && source.starts_with('.')
                    && let Some(rel) = repo_relative(ctx.project_dir, source)
                {
                    let mut cm = ContentMount::new(&m.target, &rel);
                    cm.declared = Some((item.loc, field.clone()));
                    cm.declared_file = ctx.file.to_owned();
                    s.content.push(cm);
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
pub(super) fn read_tmpfs(r: &mut Reader<'_>, node: &Node, path: &str) -> BTreeMap<String, String> {
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
pub(super) fn read_logging(r: &mut Reader<'_>, node: &Node, path: &str) -> Option<Logging> {
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
pub(super) fn read_config_uses(
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

/// `x-refinery: {ignore_differences: [...], drift_action: alert, image_policy: {semver: …},
/// update_order: start-first}`: Refinery's per-service settings, in the compose file's extension
/// field (docker-compose ignores `x-` keys).
pub(super) fn read_x_refinery(r: &mut Reader<'_>, node: &Node, path: &str, s: &mut Service) {
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
            "image_policy" => {
                s.image_policy = crate::manifest::image_policy::read_image_policy(r, v, &f, None)
                    .map(|(policy, loc)| (policy, s.file.clone(), loc));
            }
            "update_order" => super::resources::read_update_order(r, v, &f, s),
            other => {
                let mut hint =
                    "supported: ignore_differences, drift_action, image_policy, update_order"
                        .to_owned();
                if let Some(sug) = crate::suggestion::suggest(
                    other,
                    [
                        "ignore_differences",
                        "drift_action",
                        "image_policy",
                        "update_order",
                    ],
                ) {
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

/// A service's `networks:`: a list of names, or a mapping of name → `{aliases, ipv4_address,
/// ipv6_address, link_local_ips, mac_address, priority}` (or nothing).
pub(super) fn read_networks(
    r: &mut Reader<'_>,
    node: &Node,
    path: &str,
) -> Option<BTreeMap<String, ServiceNetwork>> {
    let mut out = BTreeMap::new();
    match &node.value {
        Value::Seq(_) => {
            for item in r.strings_at(node, path)? {
                out.insert(
                    item.value,
                    ServiceNetwork {
                        loc: item.loc,
                        ..ServiceNetwork::default()
                    },
                );
            }
        }
        Value::Map(entries) => {
            r.map(node, path)?;
            for (k, v) in entries {
                let Some(name) = k.scalar() else { continue };
                let f = format!("{path}.{name}");
                let mut net = ServiceNetwork {
                    loc: k.loc,
                    ..ServiceNetwork::default()
                };
                if !v.is_null() {
                    let mut m = r.map(v, &f)?;
                    if let Some(n) = m.get("aliases") {
                        net.aliases = r.strings(n, &format!("{f}.aliases")).unwrap_or_default();
                    }
                    for (key, slot) in [
                        ("ipv4_address", &mut net.ipv4_address),
                        ("ipv6_address", &mut net.ipv6_address),
                        ("mac_address", &mut net.mac_address),
                    ] {
                        if let Some(n) = m.get(key) {
                            *slot = r.string(n, &format!("{f}.{key}"));
                        }
                    }
                    for (key, v6) in [("ipv4_address", false), ("ipv6_address", true)] {
                        let slot = if v6 {
                            &net.ipv6_address
                        } else {
                            &net.ipv4_address
                        };
                        if let (Some(ip), Some(n)) = (slot, m.get(key))
                            && ip.parse::<std::net::IpAddr>().map(|a| a.is_ipv6()) != Ok(v6)
                        {
                            r.error(
                                n.loc,
                                &format!("{f}.{key}"),
                                format!(
                                    "`{ip}` is not an {} address",
                                    if v6 { "IPv6" } else { "IPv4" }
                                ),
                            );
                        }
                    }
                    if let Some(n) = m.get("link_local_ips") {
                        net.link_local_ips = r
                            .strings(n, &format!("{f}.link_local_ips"))
                            .unwrap_or_default();
                        net.link_local_ips.sort();
                    }
                    if let Some(n) = m.get("priority") {
                        net.priority = super::resources::read_i64(
                            r,
                            n,
                            &format!("{f}.priority"),
                            i64::MIN..=i64::MAX,
                        )
                        .unwrap_or(0);
                    }
                    for key in ["gw_priority", "interface_name", "driver_opts"] {
                        if let Some(n) = m.get(key) {
                            r.error_hint(
                                n.loc,
                                &format!("{f}.{key}"),
                                format!(
                                    "key `{key}` of a service network is not supported by Refinery"
                                ),
                                "it needs Docker API 1.48 or later; this engine family speaks 1.41",
                            );
                        }
                    }
                    finish_with_extensions(m, r);
                }
                out.insert(name.to_owned(), net);
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

pub(super) fn read_depends_on(
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
                    restart: false,
                    required: true,
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
                let (mut restart, mut required) = (false, true);
                if !v.is_null()
                    && r.map(v, &f).is_some()
                    && let Value::Map(opts) = &v.value
                {
                    for (ok, ov) in opts {
                        match ok.scalar() {
                            Some("condition") => match ov.scalar() {
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
                            Some("restart") => {
                                restart = r.bool(ov, &format!("{f}.restart")).unwrap_or(false);
                            }
                            Some("required") => {
                                required = r.bool(ov, &format!("{f}.required")).unwrap_or(true);
                            }
                            Some(x) if x.starts_with("x-") => {}
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
                    restart,
                    required,
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

/// Reports the unknown keys of a mapping, `x-` extensions aside.
fn finish_with_extensions(m: MapView<'_>, r: &mut Reader<'_>) {
    m.with_extensions().finish(r);
}

/// Bind propagation modes; `rprivate` is the engine's default.
const PROPAGATION: [&str; 6] = [
    "rprivate", "private", "rshared", "shared", "rslave", "slave",
];

/// Splits the propagation option off a short-form volume (`/:/host:ro,rslave` → `/:/host:ro` and
/// `rslave`), which [`parse_volume`] does not read.
fn split_propagation(spec: &str) -> (String, Option<String>) {
    let parts: Vec<&str> = spec.split(':').collect();
    let [source, target, mode] = parts.as_slice() else {
        return (spec.to_owned(), None);
    };
    let (props, rest): (Vec<&str>, Vec<&str>) = mode
        .split(',')
        .filter(|o| !o.is_empty())
        .partition(|o| PROPAGATION.contains(o));
    let Some(p) = props.last() else {
        return (spec.to_owned(), None);
    };
    let mut out = format!("{source}:{target}");
    if !rest.is_empty() {
        out.push(':');
        out.push_str(&rest.join(","));
    }
    (out, Some((*p).to_owned()))
}

/// `bind:` of a long-form volume: its `propagation`; `create_host_path` and `selinux` change
/// nothing for a source in the repository.
fn read_bind_options(r: &mut Reader<'_>, node: &Node, path: &str) -> Option<String> {
    let mut m = r.map(node, path)?;
    let mut propagation = None;
    if let Some(n) = m.get("propagation") {
        let f = format!("{path}.propagation");
        if let Some(p) = r.string(n, &f) {
            if PROPAGATION.contains(&p.as_str()) {
                propagation = Some(p);
            } else {
                r.error_hint(
                    n.loc,
                    &f,
                    format!("`{p}` is not a bind propagation"),
                    format!("write one of {}", PROPAGATION.join(", ")),
                );
            }
        }
    }
    let _ = m.get("create_host_path");
    let _ = m.get("selinux");
    finish_with_extensions(m, r);
    propagation
}

/// `volume:` of a long-form volume: `nocopy` is accepted as in the short form; `subpath` is
/// refused.
fn read_volume_options(r: &mut Reader<'_>, node: &Node, path: &str) {
    let Some(mut m) = r.map(node, path) else {
        return;
    };
    let _ = m.get("nocopy");
    if let Some(n) = m.get("subpath") {
        r.error_hint(
            n.loc,
            &format!("{path}.subpath"),
            "volume `subpath` is not supported by Refinery",
            "it needs Docker API 1.45 or later; mount the whole volume",
        );
    }
    finish_with_extensions(m, r);
}

/// `tmpfs: {size, mode}` of a long-form volume, as tmpfs mount options.
fn read_tmpfs_options(r: &mut Reader<'_>, node: &Node, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Some(mut m) = r.map(node, path) else {
        return out;
    };
    if let Some(n) = m.get("size")
        && let Some(b) = super::resources::read_bytes(r, n, &format!("{path}.size"))
    {
        out.push(format!("size={b}"));
    }
    if let Some(n) = m.get("mode")
        && let Some(mode) = r.string(n, &format!("{path}.mode"))
    {
        // YAML reads `1777` as a number; compose means octal either way.
        out.push(format!("mode={mode}"));
    }
    finish_with_extensions(m, r);
    out
}
