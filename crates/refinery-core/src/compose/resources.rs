//! Readers of a service's resources: `deploy` (replicas, limits, reservations, restart policy,
//! and the swarm settings docker compose ignores), `ulimits`, `blkio_config`, `devices`, `gpus`,
//! and the numbers they are written in (sizes, CPUs, microseconds).

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use crate::extra_options::{Blkio, Device, DeviceRequest, Ulimit};
use crate::manifest::reader::Reader;
use crate::spec::RestartPolicy;
use crate::yaml::{Node, Value};

use super::service::{Service, SwarmKey};

/// `64m`, `1g`, `512mb`, `1024` (bytes).
pub fn parse_bytes(s: &str) -> Option<i64> {
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
pub fn parse_cpus(s: &str) -> Option<i64> {
    let n: f64 = s.trim().parse().ok()?;
    if !(n.is_finite() && n > 0.0 && n < 1.0e6) {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)]
    let nano = (n * 1e9).round() as i64;
    Some(nano)
}

/// `100000`, `100ms`, `1s`, `1400us` → microseconds.
pub fn parse_micros(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return (n >= 0).then_some(n);
    }
    let digits = s.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (num, unit) = s.split_at(digits);
    let n: f64 = num.parse().ok()?;
    let per: f64 = match unit.trim() {
        "us" | "µs" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    let us = n * per;
    #[allow(clippy::cast_possible_truncation)]
    (0.0..9.0e18).contains(&us).then(|| us.round() as i64)
}

pub(super) fn read_count(r: &mut Reader<'_>, node: &Node, path: &str) -> Option<u32> {
    let n = r.u64(node, path)?;
    match u32::try_from(n) {
        Ok(n) => Some(n),
        Err(_) => {
            r.error(node.loc, path, format!("`{n}` replicas is too many"));
            None
        }
    }
}

/// A size in bytes; `-1` (unlimited, for `memswap_limit`) passes as is.
pub(super) fn read_bytes(r: &mut Reader<'_>, node: &Node, path: &str) -> Option<i64> {
    let t = r.string(node, path)?;
    if t.trim() == "-1" {
        return Some(-1);
    }
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

pub(super) fn read_cpus(r: &mut Reader<'_>, node: &Node, path: &str) -> Option<i64> {
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

/// A whole number within `range`.
pub(super) fn read_i64(
    r: &mut Reader<'_>,
    node: &Node,
    path: &str,
    range: RangeInclusive<i64>,
) -> Option<i64> {
    let t = r.string(node, path)?;
    match t.trim().parse::<i64>() {
        Ok(n) if range.contains(&n) => Some(n),
        Ok(n) => {
            r.error(
                node.loc,
                path,
                format!("`{n}` is out of range ({}..{})", range.start(), range.end()),
            );
            None
        }
        Err(_) => {
            r.error(
                node.loc,
                path,
                format!("expected a whole number, found `{t}`"),
            );
            None
        }
    }
}

/// Microseconds: a whole number, or a duration like `100ms` or `1400us`.
pub(super) fn read_micros(r: &mut Reader<'_>, node: &Node, path: &str) -> Option<i64> {
    let t = r.string(node, path)?;
    let us = parse_micros(&t);
    if us.is_none() {
        r.error_hint(
            node.loc,
            path,
            format!("`{t}` is not a number of microseconds"),
            "write microseconds (`100000`) or a duration (`100ms`, `1400us`)",
        );
    }
    us
}

/// `ulimits: {nproc: 65535, nofile: {soft: 20000, hard: 40000}}`.
pub(super) fn read_ulimits(
    r: &mut Reader<'_>,
    node: &Node,
    path: &str,
) -> BTreeMap<String, Ulimit> {
    let mut out = BTreeMap::new();
    if r.map(node, path).is_none() {
        return out;
    }
    let Value::Map(entries) = &node.value else {
        return out;
    };
    for (k, v) in entries {
        let Some(name) = k.scalar() else { continue };
        let f = format!("{path}.{name}");
        let limit = if let Value::Map(_) = &v.value {
            let Some(mut m) = r.map(v, &f) else { continue };
            let soft = m
                .get("soft")
                .and_then(|n| read_i64(r, n, &format!("{f}.soft"), -1..=i64::MAX));
            let hard = m
                .get("hard")
                .and_then(|n| read_i64(r, n, &format!("{f}.hard"), -1..=i64::MAX));
            m.with_extensions().finish(r);
            match (soft, hard) {
                (Some(soft), Some(hard)) => Ulimit { soft, hard },
                _ => {
                    r.error_hint(
                        v.loc,
                        &f,
                        format!("ulimit `{name}` needs `soft` and `hard`"),
                        format!("write `{name}: {{soft: 1024, hard: 2048}}` or `{name}: 1024`"),
                    );
                    continue;
                }
            }
        } else {
            let Some(n) = read_i64(r, v, &f, -1..=i64::MAX) else {
                continue;
            };
            Ulimit { soft: n, hard: n }
        };
        if limit.hard >= 0 && limit.soft > limit.hard {
            r.error(
                v.loc,
                &f,
                format!(
                    "ulimit `{name}`: the soft limit {} is above the hard limit {}",
                    limit.soft, limit.hard
                ),
            );
            continue;
        }
        out.insert(name.to_owned(), limit);
    }
    out
}

/// `blkio_config: {weight, weight_device, device_read_bps, device_write_bps, device_read_iops,
/// device_write_iops}`.
pub(super) fn read_blkio(r: &mut Reader<'_>, node: &Node, path: &str) -> Blkio {
    let mut b = Blkio::default();
    let Some(mut m) = r.map(node, path) else {
        return b;
    };
    if let Some(n) = m.get("weight") {
        b.weight = read_i64(r, n, &format!("{path}.weight"), 10..=1000)
            .and_then(|w| u16::try_from(w).ok());
    }
    if let Some(n) = m.get("weight_device") {
        for (dev, w) in read_rates(r, n, &format!("{path}.weight_device"), "weight", false) {
            match u16::try_from(w) {
                Ok(w) if (10..=1000).contains(&w) => b.weight_device.push((dev, w)),
                _ => r.error(
                    n.loc,
                    &format!("{path}.weight_device"),
                    format!("weight `{w}` of `{dev}` is out of range (10..1000)"),
                ),
            }
        }
    }
    for (key, bytes) in [
        ("device_read_bps", true),
        ("device_write_bps", true),
        ("device_read_iops", false),
        ("device_write_iops", false),
    ] {
        if let Some(n) = m.get(key) {
            let rates = read_rates(r, n, &format!("{path}.{key}"), "rate", bytes);
            let slot = match key {
                "device_read_bps" => &mut b.device_read_bps,
                "device_write_bps" => &mut b.device_write_bps,
                "device_read_iops" => &mut b.device_read_iops,
                _ => &mut b.device_write_iops,
            };
            *slot = rates;
        }
    }
    m.with_extensions().finish(r);
    b.weight_device.sort();
    for list in [
        &mut b.device_read_bps,
        &mut b.device_write_bps,
        &mut b.device_read_iops,
        &mut b.device_write_iops,
    ] {
        list.sort();
    }
    b
}

/// `[{path: /dev/sda, rate: 20mb}]` (or `weight:`): (path, number).
fn read_rates(
    r: &mut Reader<'_>,
    node: &Node,
    path: &str,
    value_key: &'static str,
    bytes: bool,
) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    let Some(items) = r.seq(node, path) else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let f = format!("{path}[{i}]");
        let Some(mut m) = r.map(item, &f) else {
            continue;
        };
        let dev = m
            .get("path")
            .and_then(|n| r.string(n, &format!("{f}.path")));
        let value = m.get(value_key).and_then(|n| {
            let vf = format!("{f}.{value_key}");
            if bytes {
                read_bytes(r, n, &vf)
            } else {
                read_i64(r, n, &vf, 0..=i64::MAX)
            }
        });
        m.with_extensions().finish(r);
        match (dev, value) {
            (Some(d), Some(v)) => out.push((d, v)),
            _ => r.error(
                item.loc,
                &f,
                format!("each entry needs a `path` and a `{value_key}`"),
            ),
        }
    }
    out
}

/// `devices: ["/dev/ttyUSB0", "/dev/sda:/dev/xvda:rwm"]` or the long form `{source, target,
/// permissions}`.
pub(super) fn read_devices(r: &mut Reader<'_>, node: &Node, path: &str) -> Vec<Device> {
    let mut out = Vec::new();
    let Some(items) = r.seq(node, path) else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let f = format!("{path}[{i}]");
        let (host, container, perms) = if let Value::Map(_) = &item.value {
            let Some(mut m) = r.map(item, &f) else {
                continue;
            };
            let host = m
                .get("source")
                .and_then(|n| r.string(n, &format!("{f}.source")));
            let container = m
                .get("target")
                .and_then(|n| r.string(n, &format!("{f}.target")));
            let perms = m
                .get("permissions")
                .and_then(|n| r.string(n, &format!("{f}.permissions")));
            m.with_extensions().finish(r);
            let Some(host) = host else {
                r.error(item.loc, &f, "a device needs a `source`");
                continue;
            };
            (host, container, perms)
        } else {
            let Some(s) = r.string(item, &f) else {
                continue;
            };
            let parts: Vec<&str> = s.split(':').collect();
            match parts.as_slice() {
                [h] => ((*h).to_owned(), None, None),
                [h, c] if c.starts_with('/') => ((*h).to_owned(), Some((*c).to_owned()), None),
                [h, p] => ((*h).to_owned(), None, Some((*p).to_owned())),
                [h, c, p] => (
                    (*h).to_owned(),
                    Some((*c).to_owned()),
                    Some((*p).to_owned()),
                ),
                _ => {
                    r.error(item.loc, &f, format!("`{s}` is not a device"));
                    continue;
                }
            }
        };
        if !host.starts_with('/') {
            r.error_hint(
                item.loc,
                &f,
                format!("`{host}` is not a device path"),
                "write a path under `/dev`; CDI device names need Docker API 1.44 or later",
            );
            continue;
        }
        let permissions = perms.unwrap_or_else(|| "rwm".to_owned());
        if permissions.is_empty() || !permissions.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
            r.error_hint(
                item.loc,
                &f,
                format!("`{permissions}` are not device permissions"),
                "write a combination of `r`, `w` and `m`, like `rwm`",
            );
            continue;
        }
        out.push(Device {
            container: container.unwrap_or_else(|| host.clone()),
            host,
            permissions,
        });
    }
    out
}

/// `gpus: all`, or a list of device requests like `deploy.resources.reservations.devices`.
pub(super) fn read_gpus(r: &mut Reader<'_>, node: &Node, path: &str) -> Vec<DeviceRequest> {
    if node.scalar().is_some() {
        return match r.string(node, path).as_deref() {
            Some("all") => vec![DeviceRequest {
                count: -1,
                capabilities: vec!["gpu".into()],
                ..DeviceRequest::default()
            }],
            Some(other) => {
                r.error_hint(
                    node.loc,
                    path,
                    format!("`{other}` is not a GPU request"),
                    "write `gpus: all`, or a list like `[{driver: nvidia, count: 1}]`",
                );
                Vec::new()
            }
            None => Vec::new(),
        };
    }
    read_device_requests(r, node, path, true)
}

/// `devices:` of `deploy.resources.reservations`: `[{capabilities: [gpu], count: 1, driver:
/// nvidia, device_ids, options}]`.
fn read_device_requests(
    r: &mut Reader<'_>,
    node: &Node,
    path: &str,
    gpu: bool,
) -> Vec<DeviceRequest> {
    let mut out = Vec::new();
    let Some(items) = r.seq(node, path) else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let f = format!("{path}[{i}]");
        let Some(mut m) = r.map(item, &f) else {
            continue;
        };
        let mut d = DeviceRequest::default();
        if let Some(n) = m.get("capabilities") {
            d.capabilities = r
                .strings(n, &format!("{f}.capabilities"))
                .unwrap_or_default();
        }
        if let Some(n) = m.get("driver") {
            d.driver = r.string(n, &format!("{f}.driver")).unwrap_or_default();
        }
        if let Some(n) = m.get("device_ids") {
            d.device_ids = r.strings(n, &format!("{f}.device_ids")).unwrap_or_default();
        }
        if let Some(n) = m.get("options") {
            d.options = r.string_map(n, &format!("{f}.options")).unwrap_or_default();
        }
        d.count = match m.get("count") {
            Some(n) if n.scalar() == Some("all") => -1,
            Some(n) => read_i64(r, n, &format!("{f}.count"), 0..=i64::MAX).unwrap_or(0),
            // Compose asks for all of them when neither a count nor ids are given.
            None if d.device_ids.is_empty() => -1,
            None => 0,
        };
        m.with_extensions().finish(r);
        if gpu && d.capabilities.is_empty() {
            d.capabilities = vec!["gpu".into()];
        }
        if d.capabilities.is_empty() {
            r.error_hint(
                item.loc,
                &f,
                "a device request needs `capabilities`",
                "write `capabilities: [gpu]`",
            );
            continue;
        }
        d.capabilities.sort();
        out.push(d);
    }
    out
}

/// Keys of `deploy` that only a swarm acts on: accepted with one warning, as docker compose
/// does on a single engine.
const SWARM_ONLY: [&str; 4] = ["placement", "rollback_config", "endpoint_mode", "labels"];

fn swarm(s: &mut Service, key: &str, loc: crate::yaml::Loc) {
    s.swarm_keys.push(SwarmKey {
        key: key.to_owned(),
        service: s.name.clone(),
        loc,
        file: s.file.clone(),
    });
}

/// `deploy:` of a service.
pub(super) fn read_deploy(r: &mut Reader<'_>, node: &Node, path: &str, s: &mut Service) {
    if r.map(node, path).is_none() {
        return;
    }
    let Value::Map(entries) = &node.value else {
        return;
    };
    for (k, v) in entries {
        let Some(key) = k.scalar() else { continue };
        let p = format!("{path}.{key}");
        if v.is_null() {
            continue;
        }
        match key {
            "replicas" => s.replicas = read_count(r, v, &p),
            "mode" => match r.string(v, &p).as_deref() {
                Some("replicated") | None => {}
                // One container per node of a swarm: one here; a job runs like a service.
                Some(m @ ("global" | "replicated-job" | "global-job")) => {
                    swarm(s, &format!("deploy.mode: {m}"), k.loc);
                    if m.starts_with("global") {
                        s.replicas = Some(1);
                    }
                }
                Some(other) => r.error_hint(
                    v.loc,
                    &p,
                    format!("`{other}` is not a deploy mode"),
                    "write `replicated` or `global`",
                ),
            },
            "resources" => read_deploy_resources(r, v, &p, s),
            "restart_policy" => read_restart_policy(r, v, &p, s),
            "update_config" => read_update_config(r, v, &p, s),
            other if SWARM_ONLY.contains(&other) => swarm(s, &format!("deploy.{other}"), k.loc),
            other if other.starts_with("x-") => {}
            other => r.error_hint(
                k.loc,
                &p,
                format!("unknown key `{other}` of `deploy`"),
                "known here: replicas, mode, resources, restart_policy, placement, update_config, rollback_config, endpoint_mode, labels",
            ),
        }
    }
}

/// `deploy.update_config`: its `order` is how Refinery replaces the service's containers
/// (`start-first` or `stop-first`); the rest (`parallelism`, `delay`, `failure_action`,
/// `monitor`, `max_failure_ratio`) only a swarm acts on.
fn read_update_config(r: &mut Reader<'_>, node: &Node, path: &str, s: &mut Service) {
    if r.map(node, path).is_none() {
        return;
    }
    let Value::Map(entries) = &node.value else {
        return;
    };
    for (k, v) in entries {
        let Some(key) = k.scalar() else { continue };
        let p = format!("{path}.{key}");
        if v.is_null() {
            continue;
        }
        match key {
            "order" => read_update_order(r, v, &p, s),
            "parallelism" | "delay" | "failure_action" | "monitor" | "max_failure_ratio" => {
                swarm(s, &format!("deploy.update_config.{key}"), k.loc);
            }
            other if other.starts_with("x-") => {}
            other => {
                let known = [
                    "order",
                    "parallelism",
                    "delay",
                    "failure_action",
                    "monitor",
                    "max_failure_ratio",
                ];
                let hint = match crate::suggestion::suggest(other, known) {
                    Some(sug) => format!("did you mean `{sug}`?"),
                    None => format!("known here: {}", known.join(", ")),
                };
                r.error_hint(
                    k.loc,
                    &p,
                    format!("unknown key `{other}` of `deploy.update_config`"),
                    hint,
                );
            }
        }
    }
}

/// `update_order: start-first` (`deploy.update_config.order`, `x-refinery.update_order`): kept
/// with where it was written, for the warning about fixed host ports.
pub(super) fn read_update_order(r: &mut Reader<'_>, node: &Node, path: &str, s: &mut Service) {
    let Some(text) = r.string(node, path) else {
        return;
    };
    match crate::extra_options::UpdateOrder::parse(&text) {
        Some(order) => {
            s.extra.update_order = Some(order);
            s.update_order_at = Some(super::service::Written {
                file: s.file.clone(),
                loc: node.loc,
                field: path.to_owned(),
            });
        }
        None => {
            let names = crate::extra_options::UpdateOrder::NAMES;
            let hint = match crate::suggestion::suggest(&text, names) {
                Some(sug) => format!("did you mean `{sug}`?"),
                None => format!("write `{}` or `{}`", names[0], names[1]),
            };
            r.error_hint(
                node.loc,
                path,
                format!("`{text}` is not an update order"),
                hint,
            );
        }
    }
}

/// `deploy.resources: {limits: {cpus, memory, pids}, reservations: {memory, devices, cpus}}`.
fn read_deploy_resources(r: &mut Reader<'_>, node: &Node, path: &str, s: &mut Service) {
    let Some(mut m) = r.map(node, path) else {
        return;
    };
    if let Some(n) = m.get("limits") {
        let lp = format!("{path}.limits");
        if let Some(mut l) = r.map(n, &lp) {
            if let Some(v) = l.get("memory") {
                let mp = format!("{lp}.memory");
                s.memory_bytes = read_bytes(r, v, &mp).inspect(|b| {
                    let _ = r.check(v.loc, &mp, crate::manifest::grammar::memory_limit(*b));
                });
            }
            if let Some(v) = l.get("cpus") {
                s.nano_cpus = read_cpus(r, v, &format!("{lp}.cpus"));
            }
            if let Some(v) = l.get("pids") {
                s.extra.pids_limit = read_i64(r, v, &format!("{lp}.pids"), -1..=i64::MAX);
            }
            l.with_extensions().finish(r);
        }
    }
    if let Some(n) = m.get("reservations") {
        let rp = format!("{path}.reservations");
        if let Some(mut res) = r.map(n, &rp) {
            if let Some(v) = res.get("memory") {
                s.extra.mem_reservation = read_bytes(r, v, &format!("{rp}.memory"));
            }
            if let Some(v) = res.get("devices") {
                s.extra.device_requests =
                    read_device_requests(r, v, &format!("{rp}.devices"), false);
            }
            // A CPU reservation is for a swarm's scheduler; one engine has nothing to reserve.
            for key in ["cpus", "generic_resources"] {
                if res.get(key).is_some() {
                    let loc = res.key_loc(key).unwrap_or(n.loc);
                    swarm(s, &format!("deploy.resources.reservations.{key}"), loc);
                }
            }
            res.with_extensions().finish(r);
        }
    }
    m.with_extensions().finish(r);
}

/// `deploy.restart_policy: {condition, max_attempts, delay, window}`: docker compose makes it the
/// container's restart policy (over `restart`); `delay` and `window` are a swarm's.
fn read_restart_policy(r: &mut Reader<'_>, node: &Node, path: &str, s: &mut Service) {
    let Some(mut m) = r.map(node, path) else {
        return;
    };
    let condition = m.get("condition").and_then(|n| {
        r.string(n, &format!("{path}.condition"))
            .map(|c| (c, n.loc))
    });
    let attempts = m
        .get("max_attempts")
        .and_then(|n| {
            read_i64(
                r,
                n,
                &format!("{path}.max_attempts"),
                0..=i64::from(u32::MAX),
            )
        })
        .and_then(|n| u32::try_from(n).ok());
    for key in ["delay", "window"] {
        if m.get(key).is_some() {
            let loc = m.key_loc(key).unwrap_or(node.loc);
            swarm(s, &format!("deploy.restart_policy.{key}"), loc);
        }
    }
    m.with_extensions().finish(r);
    let policy = match condition {
        None => RestartPolicy::Always,
        Some((c, loc)) => match c.as_str() {
            "any" | "always" => RestartPolicy::Always,
            "on-failure" => RestartPolicy::OnFailure(attempts.unwrap_or(0)),
            "none" | "no" => RestartPolicy::No,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            other => {
                r.error_hint(
                    loc,
                    &format!("{path}.condition"),
                    format!("`{other}` is not a restart condition"),
                    "write `none`, `on-failure` or `any`",
                );
                return;
            }
        },
    };
    s.deploy_restart = Some(policy);
}
