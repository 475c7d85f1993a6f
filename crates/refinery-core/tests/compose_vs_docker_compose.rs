//! Refinery reads each `valid-*` compose fixture as docker compose does: the same files go
//! through `docker-compose config` (Debian's 1.29, installed by the test script) and what it
//! resolves is compared, service by service and field by field, with the specs Refinery
//! expands them into.
//!
//! docker-compose 1.29 predates a few keys of the Compose Specification that the fixtures use
//! (`depends_on` with `restart`/`required`, a top-level `name`, …): those are taken out of its
//! copy of the files (listed in [`NEWER_THAN_1_29`]), and only for it.

mod compose_common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use compose_common::{DIR, files_of, fixture_names, load_fixture};
use refinery_core::compose::{parse_bytes, parse_cpus};
use refinery_core::duration::parse_duration_ms;
use refinery_core::manifest::reader::split_words;
use refinery_core::manifest::specs::{parse_port, parse_volume};
use refinery_core::yaml::{self, Node, Value};
use refinery_core::{ContainerSpec, Manifest, MountKind};

/// Keys docker-compose 1.29 refuses that the Compose Specification has since added, as paths
/// (`*` is any key): removed from its copy of the files.
const NEWER_THAN_1_29: [&[&str]; 8] = [
    &["services", "*", "healthcheck", "start_interval"],
    &["services", "*", "deploy", "resources", "limits", "pids"],
    &["name"],
    &["services", "*", "depends_on", "*", "restart"],
    &["services", "*", "depends_on", "*", "required"],
    &["services", "*", "pull_policy"],
    &["services", "*", "label_file"],
    &["services", "*", "gpus"],
];

/// Fixtures written in what docker-compose 1.29 cannot read at all, with why: not compared here
/// (their own snapshot and unit tests hold them).
const NOT_FOR_1_29: [(&str, &str); 1] = [(
    "valid-override-reset-and-override-tags",
    "the `!reset`/`!override` tags came with docker compose 2.24",
)];

/// A YAML tree as JSON, scalars typed as PyYAML (YAML 1.1, docker-compose's parser) types them.
fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &node.value {
        Value::Scalar { text, plain: false } => J::String(text.clone()),
        Value::Scalar { text, plain: true } => match text.as_str() {
            "" | "~" | "null" | "Null" | "NULL" => J::Null,
            "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => J::Bool(true),
            "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
                J::Bool(false)
            }
            t => {
                if let Ok(i) = t.parse::<i64>() {
                    J::from(i)
                } else if let Ok(f) = t.parse::<f64>()
                    && t.contains('.')
                    && f.is_finite()
                {
                    J::from(f)
                } else {
                    J::String(t.to_owned())
                }
            }
        },
        Value::Seq(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .filter_map(|(k, v)| Some((k.scalar()?.to_owned(), to_json(v))))
                .collect(),
        ),
    }
}

fn drop_path(v: &mut serde_json::Value, path: &[&str]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let Some(obj) = v.as_object_mut() else {
        return;
    };
    if rest.is_empty() {
        obj.remove(*first);
        return;
    }
    for (k, child) in obj.iter_mut() {
        if *first == "*" || k == first {
            drop_path(child, rest);
        }
    }
}

/// A temporary copy of a fixture for docker-compose, removed on drop.
struct Copy(PathBuf);

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `docker-compose config` on a copy of the fixture, the compose files made 1.29's size;
/// returns its output, parsed, and the copy's directory.
fn docker_compose_config(name: &str, m: &Manifest) -> (Node, Copy) {
    let stack = &m.stacks[0];
    let copy =
        Copy(std::env::temp_dir().join(format!("refinery-compose-{}-{name}", std::process::id())));
    for (rel, data) in files_of(&Path::new(DIR).join(name)) {
        let path = copy.0.join(&rel);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        let data = if stack.files.contains(&rel) {
            let text = String::from_utf8(data).expect("utf-8 compose file");
            let mut json = to_json(&yaml::parse(&text).expect("the fixture parses"));
            // A dependency `required: false` on a service no file declares: 1.29 refuses it,
            // compose since 2.20 passes it over, as Refinery does.
            if let Some(services) = json.get_mut("services").and_then(|s| s.as_object_mut()) {
                let declared: Vec<String> = services.keys().cloned().collect();
                for svc in services.values_mut() {
                    if let Some(deps) = svc.get_mut("depends_on").and_then(|d| d.as_object_mut()) {
                        deps.retain(|k, v| {
                            declared.contains(k)
                                || v.get("required") != Some(&serde_json::Value::Bool(false))
                        });
                    }
                }
            }
            for p in NEWER_THAN_1_29 {
                drop_path(&mut json, p);
            }
            serde_json::to_vec_pretty(&json).expect("json")
        } else {
            data
        };
        std::fs::write(&path, data).expect("write the copy");
    }
    let mut cmd = Command::new("docker-compose");
    cmd.current_dir(&copy.0)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &copy.0)
        .arg("-p")
        .arg(&stack.name);
    for f in &stack.files {
        cmd.arg("-f").arg(f);
    }
    for p in &stack.profiles {
        cmd.arg("--profile").arg(p);
    }
    cmd.arg("config");
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("run docker-compose (the test script installs Debian's 1.29): {e}")
    });
    assert!(
        out.status.success(),
        "docker-compose config refuses {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        yaml::parse(&text).expect("docker-compose prints YAML"),
        copy,
    )
}

fn text(n: &Node) -> String {
    n.scalar().unwrap_or_default().to_owned()
}

/// A command as docker-compose prints it (`$$` is its escape of a literal `$`).
fn words(n: &Node) -> Vec<String> {
    let w = match &n.value {
        Value::Seq(items) => items.iter().map(text).collect(),
        _ => split_words(&text(n)).expect("balanced quotes"),
    };
    w.into_iter().map(|w| w.replace("$$", "$")).collect()
}

/// Field-by-field differences between what docker-compose resolved for one service and the
/// spec Refinery made for its first replica.
#[allow(clippy::too_many_lines)]
fn compare_service(
    svc: &Node,
    spec: &ContainerSpec,
    copy_dir: &str,
    named: &BTreeMap<String, String>,
    networks: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut differ = |what: &str, theirs: String, ours: String| {
        if theirs != ours {
            diffs.push(format!("{what}: docker-compose {theirs} / refinery {ours}"));
        }
    };
    let building = spec.stack.as_ref().is_some_and(|m| m.build.is_some());
    if let Some(i) = svc.get("image")
        && !(building && svc.get("build").is_some() && text(i) != spec.image)
    {
        differ("image", text(i), spec.image.clone());
    }
    for (key, ours) in [("command", &spec.command), ("entrypoint", &spec.entrypoint)] {
        let theirs = svc.get(key).map(words);
        differ(key, format!("{theirs:?}"), format!("{ours:?}"));
    }
    let theirs_env: BTreeMap<String, String> = match svc.get("environment").map(|e| &e.value) {
        Some(Value::Map(entries)) => entries
            .iter()
            // `KEY: null` passes the variable through when it is set where compose runs, and
            // leaves it out when it is not (it is not, here); `$$` is a literal `$`.
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (text(k), text(v).replace("$$", "$")))
            .collect(),
        _ => BTreeMap::new(),
    };
    let ours_env: BTreeMap<String, String> = spec
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.expose().to_owned()))
        .collect();
    differ(
        "environment",
        format!("{theirs_env:?}"),
        format!("{ours_env:?}"),
    );

    let mut theirs_ports = Vec::new();
    if let Some(Value::Seq(items)) = svc.get("ports").map(|p| &p.value) {
        for p in items {
            let spec_text = match &p.value {
                Value::Map(_) => {
                    let mut s = String::new();
                    if let Some(ip) = p.get("host_ip") {
                        s.push_str(&format!("{}:", text(ip)));
                    }
                    match p.get("published") {
                        Some(pb) => s.push_str(&format!("{}:", text(pb))),
                        None if !s.is_empty() => s.push(':'),
                        None => {}
                    }
                    s.push_str(&text(p.get("target").expect("a target")));
                    if let Some(pr) = p.get("protocol") {
                        s.push_str(&format!("/{}", text(pr)));
                    }
                    s
                }
                _ => text(p),
            };
            theirs_ports.extend(parse_port(&spec_text).expect("docker-compose's port parses"));
        }
    }
    theirs_ports.sort();
    theirs_ports.dedup();
    if spec.options.network_mode.as_deref() != Some("host") {
        differ(
            "ports",
            format!("{theirs_ports:?}"),
            format!("{:?}", spec.ports),
        );
    }

    // Volumes by target: kind, source (named volumes by their engine name) and read-only.
    let mut theirs_mounts = BTreeSet::new();
    // A bind's propagation other than `rprivate`, by target.
    let mut theirs_propagation = BTreeMap::new();
    if let Some(Value::Seq(items)) = svc.get("volumes").map(|v| &v.value) {
        for v in items {
            let (kind, source, target, ro) = match &v.value {
                Value::Map(_) => {
                    let target = v.get("target").map(text).unwrap_or_default();
                    if let Some(p) = v.get("bind").and_then(|b| b.get("propagation")) {
                        theirs_propagation.insert(target.clone(), text(p));
                    }
                    (
                        v.get("type").map(text).unwrap_or_default(),
                        v.get("source").map(text).unwrap_or_default(),
                        target,
                        v.get("read_only").map(text).as_deref() == Some("true"),
                    )
                }
                _ => {
                    // docker-compose prints `SOURCE:TARGET:ro,rslave`; the propagation is kept
                    // apart (not a mount option of `parse_volume`).
                    let t = text(v);
                    let mut parts: Vec<String> = t.split(':').map(str::to_owned).collect();
                    if parts.len() == 3 {
                        let (props, rest): (Vec<&str>, Vec<&str>) =
                            parts[2].split(',').partition(|o| {
                                o.ends_with("private")
                                    || o.ends_with("shared")
                                    || o.ends_with("slave")
                            });
                        if let Some(p) = props.last() {
                            theirs_propagation.insert(parts[1].clone(), (*p).to_owned());
                        }
                        parts[2] = rest.join(",");
                    }
                    let m = parse_volume(parts.join(":").trim_end_matches(':'), Some(copy_dir))
                        .expect("docker-compose's volume parses");
                    let kind = match m.kind {
                        MountKind::Volume => "volume",
                        MountKind::Bind => "bind",
                        MountKind::Anonymous => "volume",
                    };
                    (kind.to_owned(), m.source, m.target, m.read_only)
                }
            };
            if kind == "tmpfs" {
                continue;
            }
            let source = match kind.as_str() {
                "bind" => source.replacen(copy_dir, "/repo", 1),
                _ => named.get(&source).cloned().unwrap_or(source),
            };
            theirs_mounts.insert(format!("{kind} {source}:{target} ro={ro}"));
        }
    }
    theirs_propagation.retain(|_, p| p != "rprivate");
    differ(
        "volumes.propagation",
        format!("{theirs_propagation:?}"),
        format!("{:?}", spec.options.extra().bind_propagation),
    );
    let ours_mounts: BTreeSet<String> = spec
        .mounts
        .iter()
        .filter(|m| {
            // Configs and secrets are mounted from the repository by Refinery; docker-compose
            // 1.29 lists them under `configs:`/`secrets:`.
            !spec.content.iter().any(|c| c.target == m.target && !c.is_env_file())
                || !m.source.starts_with("/repo/")
                || svc.get("volumes").is_some_and(|v| {
                    matches!(&v.value, Value::Seq(items) if items.iter().any(|i| i.get("target").map(text).as_deref() == Some(m.target.as_str()) || text(i).contains(&format!(":{}", m.target))))
                })
        })
        .map(|m| {
            let kind = match m.kind {
                MountKind::Bind => "bind",
                _ => "volume",
            };
            format!("{kind} {}:{} ro={}", m.source, m.target, m.read_only)
        })
        .collect();
    differ(
        "volumes",
        format!("{theirs_mounts:?}"),
        format!("{ours_mounts:?}"),
    );

    let restart = svc.get("restart").map(text).unwrap_or_else(|| "no".into());
    let restart = if restart == "on-failure" {
        "on-failure".into()
    } else {
        restart
    };
    if svc
        .get("deploy")
        .and_then(|d| d.get("restart_policy"))
        .is_none()
    {
        differ("restart", restart, spec.restart.to_string());
    }

    if let Some(h) = svc.get("healthcheck") {
        let ours = spec.healthcheck.clone().unwrap_or_default();
        let test = h.get("test").map(|t| match &t.value {
            Value::Seq(_) => words(t),
            _ => vec!["CMD-SHELL".to_owned(), text(t).replace("$$", "$")],
        });
        differ(
            "healthcheck.test",
            format!(
                "{:?}",
                test.map(|t| t.iter().map(|w| w.replace("$$", "$")).collect::<Vec<_>>())
            ),
            format!("{:?}", Some(ours.test.clone()).filter(|t| !t.is_empty())),
        );
        for (key, value) in [
            ("interval", ours.interval_ms),
            ("timeout", ours.timeout_ms),
            ("start_period", ours.start_period_ms),
        ] {
            let theirs = h
                .get(key)
                .map(|d| parse_duration_ms(&text(d)).expect("a duration"))
                .unwrap_or(0);
            differ(
                &format!("healthcheck.{key}"),
                theirs.to_string(),
                value.to_string(),
            );
        }
        let retries = h.get("retries").map(text).unwrap_or_else(|| "0".into());
        differ("healthcheck.retries", retries, ours.retries.to_string());
    }

    let extra = spec.options.extra();
    let mut theirs_ulimits = BTreeMap::new();
    if let Some(Value::Map(entries)) = svc.get("ulimits").map(|u| &u.value) {
        for (k, v) in entries {
            let (soft, hard) = match &v.value {
                Value::Map(_) => (
                    v.get("soft").map(text).unwrap_or_default(),
                    v.get("hard").map(text).unwrap_or_default(),
                ),
                _ => (text(v), text(v)),
            };
            theirs_ulimits.insert(text(k), format!("{soft}:{hard}"));
        }
    }
    let ours_ulimits: BTreeMap<String, String> = extra
        .ulimits
        .iter()
        .map(|(k, u)| (k.clone(), format!("{}:{}", u.soft, u.hard)))
        .collect();
    differ(
        "ulimits",
        format!("{theirs_ulimits:?}"),
        format!("{ours_ulimits:?}"),
    );

    let mut theirs_expose: Vec<String> = match svc.get("expose").map(|e| &e.value) {
        Some(Value::Seq(items)) => items
            .iter()
            .flat_map(|i| refinery_core::extra_options::expose_ports(&text(i)).unwrap_or_default())
            .collect(),
        _ => Vec::new(),
    };
    theirs_expose.sort();
    differ(
        "expose",
        format!("{theirs_expose:?}"),
        format!("{:?}", extra.expose),
    );

    // Dependencies: names and conditions.
    let theirs_deps: BTreeSet<String> = match svc.get("depends_on").map(|d| &d.value) {
        Some(Value::Map(entries)) => entries
            .iter()
            .map(|(k, v)| {
                format!(
                    "{} {}",
                    text(k),
                    v.get("condition")
                        .map(text)
                        .unwrap_or_else(|| "service_started".into())
                )
            })
            .collect(),
        Some(Value::Seq(items)) => items
            .iter()
            .map(|i| format!("{} service_started", text(i)))
            .collect(),
        _ => BTreeSet::new(),
    };
    let project = spec
        .stack
        .as_ref()
        .map(|m| m.project.clone())
        .unwrap_or_default();
    let ours_deps: BTreeSet<String> = spec
        .stack
        .as_ref()
        .map(|m| {
            m.depends_on
                .iter()
                .filter(|d| {
                    d.container.ends_with("_1") || !d.container.starts_with(&format!("{project}_"))
                })
                .map(|d| {
                    let service = d
                        .container
                        .strip_prefix(&format!("{project}_"))
                        .and_then(|s| s.strip_suffix("_1"))
                        .unwrap_or(&d.container)
                        .to_owned();
                    let condition = serde_json::to_value(d.condition)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    format!("{service} {condition}")
                })
                .collect()
        })
        .unwrap_or_default();
    // Refinery adds the containers a service names (`network_mode: service:…`, `links`, …).
    if !theirs_deps.is_subset(&ours_deps) {
        differ(
            "depends_on",
            format!("{theirs_deps:?}"),
            format!("{ours_deps:?}"),
        );
    }

    for (key, ours) in [
        ("user", spec.options.user.clone()),
        ("working_dir", spec.options.working_dir.clone()),
        ("hostname", spec.options.hostname.clone()),
        ("stop_signal", spec.options.stop_signal.clone()),
        ("domainname", extra.domainname.clone()),
        ("ipc", extra.ipc.clone()),
        ("pid", extra.pid.clone()),
    ] {
        differ(
            key,
            format!("{:?}", svc.get(key).map(text)),
            format!("{ours:?}"),
        );
    }
    for (key, ours) in [
        ("privileged", spec.options.privileged),
        ("read_only", spec.options.read_only),
        ("tty", extra.tty),
        ("stdin_open", extra.stdin_open),
    ] {
        let theirs = svc.get(key).map(text).as_deref() == Some("true");
        differ(key, theirs.to_string(), ours.to_string());
    }
    let caps = |key: &str| -> Vec<String> {
        let mut v: Vec<String> = match svc.get(key).map(|c| &c.value) {
            Some(Value::Seq(items)) => items
                .iter()
                .map(|i| refinery_core::spec::capability(&text(i)))
                .collect(),
            _ => Vec::new(),
        };
        v.sort();
        v
    };
    differ(
        "cap_add",
        format!("{:?}", caps("cap_add")),
        format!("{:?}", spec.options.cap_add),
    );
    differ(
        "cap_drop",
        format!("{:?}", caps("cap_drop")),
        format!("{:?}", spec.options.cap_drop),
    );
    // Networks: engine names, static addresses and the aliases declared.
    if spec.options.network_mode.is_none() {
        let mut theirs_nets = BTreeSet::new();
        match svc.get("networks").map(|n| &n.value) {
            Some(Value::Map(entries)) => {
                for (k, v) in entries {
                    let net = networks.get(&text(k)).cloned().unwrap_or_else(|| text(k));
                    let mut aliases: Vec<String> = match v.get("aliases").map(|a| &a.value) {
                        Some(Value::Seq(items)) => items.iter().map(text).collect(),
                        _ => Vec::new(),
                    };
                    aliases.sort();
                    let ip = v.get("ipv4_address").map(text);
                    theirs_nets.insert(format!("{net} {aliases:?} {ip:?}"));
                }
            }
            Some(Value::Seq(items)) => {
                for i in items {
                    let net = networks.get(&text(i)).cloned().unwrap_or_else(|| text(i));
                    theirs_nets.insert(format!("{net} [] None"));
                }
            }
            _ => {
                let net = networks.get("default").cloned().unwrap_or_default();
                theirs_nets.insert(format!("{net} [] None"));
            }
        }
        let service = spec
            .stack
            .as_ref()
            .map(|m| m.service.clone())
            .unwrap_or_default();
        let ours_nets: BTreeSet<String> = spec
            .options
            .networks
            .iter()
            .map(|n| {
                // Refinery adds the service name as an alias, as docker compose does at `up`.
                let aliases: Vec<&String> = n.aliases.iter().filter(|a| **a != service).collect();
                format!("{} {aliases:?} {:?}", n.name, n.ipv4_address)
            })
            .collect();
        differ(
            "networks",
            format!("{theirs_nets:?}"),
            format!("{ours_nets:?}"),
        );
    }
    // The rest of the schema, each as docker-compose prints it.
    let size = |k: &str| svc.get(k).map(|v| parse_bytes(&text(v)).expect("a size"));
    let int = |k: &str| {
        svc.get(k)
            .map(|v| text(v).parse::<i64>().expect("a number"))
    };
    let list = |n: Option<&Node>| -> Vec<String> {
        match n.map(|v| &v.value) {
            Some(Value::Seq(items)) => items.iter().map(text).collect(),
            Some(_) => vec![n.map(text).unwrap_or_default()],
            None => Vec::new(),
        }
    };
    let deploy = |path: &[&str]| {
        let mut n = svc.get("deploy");
        for p in path {
            n = n.and_then(|x| x.get(p));
        }
        n.map(text)
    };
    let memory = deploy(&["resources", "limits", "memory"])
        .map(|m| parse_bytes(&m).expect("a size"))
        .or_else(|| size("mem_limit"));
    differ(
        "mem_limit",
        format!("{memory:?}"),
        format!("{:?}", spec.options.memory_bytes),
    );
    let cpus = deploy(&["resources", "limits", "cpus"])
        .or_else(|| svc.get("cpus").map(text))
        .map(|c| parse_cpus(&c).expect("cpus"));
    differ(
        "cpus",
        format!("{cpus:?}"),
        format!("{:?}", spec.options.nano_cpus),
    );
    let reservation = deploy(&["resources", "reservations", "memory"])
        .map(|m| parse_bytes(&m).expect("a size"))
        .or_else(|| size("mem_reservation"));
    differ(
        "mem_reservation",
        format!("{reservation:?}"),
        format!("{:?}", extra.mem_reservation),
    );
    for (key, theirs, ours) in [
        ("shm_size", size("shm_size"), extra.shm_size),
        ("memswap_limit", size("memswap_limit"), extra.memswap_limit),
        (
            "mem_swappiness",
            int("mem_swappiness"),
            extra.mem_swappiness,
        ),
        ("oom_score_adj", int("oom_score_adj"), extra.oom_score_adj),
        ("pids_limit", int("pids_limit"), extra.pids_limit),
        ("cpu_shares", int("cpu_shares"), extra.cpu_shares),
        ("cpu_quota", int("cpu_quota"), extra.cpu_quota),
        ("cpu_period", int("cpu_period"), extra.cpu_period),
    ] {
        differ(key, format!("{theirs:?}"), format!("{ours:?}"));
    }
    for (key, ours) in [
        ("cpuset", extra.cpuset.clone()),
        ("cgroup_parent", extra.cgroup_parent.clone()),
        ("userns_mode", extra.userns_mode.clone()),
        ("runtime", extra.runtime.clone()),
        ("platform", extra.platform.clone()),
        ("isolation", extra.isolation.clone()),
        ("mac_address", extra.mac_address.clone()),
    ] {
        // An empty value (`platform: ${DOCKER_PLATFORM:-}`) is none.
        let theirs = svc.get(key).map(text).filter(|t| !t.is_empty());
        differ(key, format!("{theirs:?}"), format!("{ours:?}"));
    }
    differ(
        "oom_kill_disable",
        format!(
            "{:?}",
            svc.get("oom_kill_disable").map(|v| text(v) == "true")
        ),
        format!("{:?}", extra.oom_kill_disable),
    );
    for (key, ours) in [
        ("dns", &extra.dns),
        ("dns_search", &extra.dns_search),
        ("dns_opt", &extra.dns_opt),
        ("device_cgroup_rules", &extra.device_cgroup_rules),
    ] {
        differ(
            key,
            format!("{:?}", list(svc.get(key))),
            format!("{ours:?}"),
        );
    }
    let mut groups = list(svc.get("group_add"));
    groups.sort();
    differ(
        "group_add",
        format!("{groups:?}"),
        format!("{:?}", extra.group_add),
    );
    let mut devices: Vec<String> = list(svc.get("devices"))
        .iter()
        .map(|d| {
            let p: Vec<&str> = d.split(':').collect();
            match p.as_slice() {
                [h] => format!("{h}:{h}:rwm"),
                [h, c] => format!("{h}:{c}:rwm"),
                _ => d.clone(),
            }
        })
        .collect();
    devices.sort();
    let ours_devices: Vec<String> = extra.devices.iter().map(ToString::to_string).collect();
    differ(
        "devices",
        format!("{devices:?}"),
        format!("{ours_devices:?}"),
    );
    let map_of = |k: &str| -> BTreeMap<String, String> {
        match svc.get(k).map(|v| &v.value) {
            Some(Value::Map(entries)) => entries.iter().map(|(k, v)| (text(k), text(v))).collect(),
            Some(Value::Seq(items)) => items
                .iter()
                .map(|i| {
                    let t = text(i);
                    let (k, v) = t.split_once('=').unwrap_or((&t, ""));
                    (k.to_owned(), v.to_owned())
                })
                .collect(),
            _ => BTreeMap::new(),
        }
    };
    differ(
        "sysctls",
        format!("{:?}", map_of("sysctls")),
        format!("{:?}", extra.sysctls),
    );
    differ(
        "storage_opt",
        format!("{:?}", map_of("storage_opt")),
        format!("{:?}", extra.storage_opt),
    );
    // Links and `volumes_from` name services; Refinery names their first containers.
    let container_of = |service: &str| format!("{project}_{service}_1");
    let mut links: Vec<String> = list(svc.get("links"))
        .iter()
        .map(|l| {
            let (s, a) = l.split_once(':').unwrap_or((l, l));
            format!("{}:{a}", container_of(s))
        })
        .chain(list(svc.get("external_links")).iter().map(|l| {
            let (c, a) = l.split_once(':').unwrap_or((l, l));
            format!("{c}:{a}")
        }))
        .collect();
    links.sort();
    differ("links", format!("{links:?}"), format!("{:?}", extra.links));
    let volumes_from: Vec<String> = list(svc.get("volumes_from"))
        .iter()
        .map(|v| {
            let (target, rest) = match v.strip_prefix("service:") {
                Some(r) => {
                    let (s, mode) = r.split_once(':').unwrap_or((r, ""));
                    (container_of(s), mode.to_owned())
                }
                None => {
                    let r = v.strip_prefix("container:").unwrap_or(v);
                    let (c, mode) = r.split_once(':').unwrap_or((r, ""));
                    (c.to_owned(), mode.to_owned())
                }
            };
            if rest == "ro" {
                format!("{target}:ro")
            } else {
                target
            }
        })
        .collect();
    differ(
        "volumes_from",
        format!("{volumes_from:?}"),
        format!("{:?}", extra.volumes_from),
    );
    if let Some(w) = svc.get("blkio_config").and_then(|b| b.get("weight")) {
        differ(
            "blkio_config.weight",
            text(w),
            format!("{}", extra.blkio.weight.unwrap_or(0)),
        );
    }
    if let Some(c) = deploy(&["restart_policy", "condition"]) {
        let attempts = deploy(&["restart_policy", "max_attempts"]).unwrap_or_else(|| "0".into());
        let want = match c.as_str() {
            "on-failure" if attempts != "0" => format!("on-failure:{attempts}"),
            "on-failure" => "on-failure".to_owned(),
            "none" => "no".to_owned(),
            _ => "always".to_owned(),
        };
        differ("deploy.restart_policy", want, spec.restart.to_string());
    }
    let theirs_labels: BTreeMap<String, String> = match svc.get("labels").map(|l| &l.value) {
        Some(Value::Map(entries)) => entries.iter().map(|(k, v)| (text(k), text(v))).collect(),
        _ => BTreeMap::new(),
    };
    differ(
        "labels",
        format!("{theirs_labels:?}"),
        format!("{:?}", spec.labels),
    );
    diffs
}

#[test]
fn compose_fixtures_resolve_as_docker_compose_resolves_them() {
    let mut failures = Vec::new();
    let mut compared = 0;
    for name in fixture_names("valid-") {
        if NOT_FOR_1_29.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let (m, _) = load_fixture(&name).unwrap_or_else(|e| panic!("{name} loads: {e}"));
        let (config, copy) = docker_compose_config(&name, &m);
        let copy_dir = copy.0.to_string_lossy().into_owned();
        let stack = &m.stacks[0];
        // Named volumes: the key docker-compose shows → the engine name.
        let mut named = BTreeMap::new();
        if let Some(Value::Map(vols)) = config.get("volumes").map(|v| &v.value) {
            for (k, v) in vols {
                let key = text(k);
                let engine = v
                    .get("name")
                    .map(text)
                    .unwrap_or_else(|| format!("{}_{key}", stack.name));
                named.insert(key, engine);
            }
        }
        // Networks: the key → the engine name (`default` is the project's own).
        let mut networks =
            BTreeMap::from([("default".to_owned(), format!("{}_default", stack.name))]);
        if let Some(Value::Map(nets)) = config.get("networks").map(|v| &v.value) {
            for (k, v) in nets {
                let key = text(k);
                let external = v.get("external").map(text).as_deref() == Some("true");
                let engine = v.get("name").map(text).unwrap_or_else(|| {
                    if external {
                        key.clone()
                    } else {
                        format!("{}_{key}", stack.name)
                    }
                });
                networks.insert(key, engine);
            }
        }
        let Some(Value::Map(services)) = config.get("services").map(|s| &s.value) else {
            panic!("{name}: docker-compose resolved no services");
        };
        // Every volume Refinery plans is one docker-compose resolves, external alike.
        let mut theirs_volumes = BTreeMap::new();
        if let Some(Value::Map(vols)) = config.get("volumes").map(|v| &v.value) {
            for (k, v) in vols {
                let external = v.get("external").map(text).as_deref() == Some("true");
                theirs_volumes.insert(named[&text(k)].clone(), external);
            }
        }
        for v in &m.stack_volumes {
            if theirs_volumes.get(&v.name) != Some(&v.external) {
                failures.push(format!(
                    "{name}: volume {} (external: {}): docker-compose {:?}",
                    v.name,
                    v.external,
                    theirs_volumes.get(&v.name)
                ));
            }
        }
        let theirs: BTreeSet<String> = services.iter().map(|(k, _)| text(k)).collect();
        let ours: BTreeSet<String> = m
            .containers
            .iter()
            .filter_map(|c| c.stack.as_ref().map(|s| s.service.clone()))
            .collect();
        if theirs != ours {
            failures.push(format!(
                "{name}: services: docker-compose {theirs:?} / refinery {ours:?}"
            ));
            continue;
        }
        for (k, svc) in services {
            let service = text(k);
            let spec = m
                .containers
                .iter()
                .find(|c| {
                    c.stack
                        .as_ref()
                        .is_some_and(|s| s.service == service && s.number == 1)
                })
                .expect("a first replica");
            if let Some(cn) = svc.get("container_name")
                && text(cn) != spec.name
            {
                failures.push(format!(
                    "{name}: {service}: container_name {} / {}",
                    text(cn),
                    spec.name
                ));
            }
            for d in compare_service(svc, spec, &copy_dir, &named, &networks) {
                failures.push(format!("{name}: {service}: {d}"));
            }
            compared += 1;
        }
    }
    assert!(compared > 0);
    let shown: Vec<String> = failures
        .iter()
        .take(30)
        .map(|f| f.chars().take(600).collect())
        .collect();
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        shown.join("\n")
    );
}
