//! Reading a manifest file into a validated [`Manifest`], every problem reported at once.

use std::collections::{BTreeMap, BTreeSet};

use super::env_files::{self, EnvFileRef};
use super::reader::{self, MapView, Reader};
use super::specs::{parse_port, parse_volume};
use super::*;
use crate::drift::DRIFT_TYPES;
use crate::policy::Action;
use crate::secret::Secret;
use crate::spec::{Bloodline, ContainerSpec, Healthcheck, RestartPolicy};
use crate::suggestion::suggest;
use crate::yaml::{self, Loc, Node};

/// File names a manifest may have, in order of preference.
pub const MANIFEST_FILES: [&str; 2] = ["refinery.yaml", "bloodline_manifest.yaml"];

/// Inputs besides the file: the environment for `${VAR}`, and where relative bind mounts resolve.
pub struct LoadOptions<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Absolute path of the checkout; `./x` bind sources resolve against it.
    pub base_dir: Option<String>,
}

/// A manifest and the warnings found while loading it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub manifest: Manifest,
    pub warnings: Vec<Issue>,
}

/// Parses and validates `source` (the contents of `file`).
pub fn load_manifest(
    file: &str,
    source: &str,
    opts: &LoadOptions<'_>,
) -> Result<Loaded, ManifestError> {
    let mut docs = match yaml::parse_documents(source) {
        Ok(d) => d.into_iter(),
        Err(e) => {
            return Err(ManifestError::Invalid {
                file: file.to_owned(),
                issues: vec![
                    Issue::new(file, e.loc, "", format!("invalid YAML: {}", e.message))
                        .with_hint("check indentation, quoting and unclosed `[` or `{` on this line and the lines above it"),
                ],
            });
        }
    };
    let mut r = Reader::new(file, opts.env, true);
    let root = docs.next().unwrap_or(Node {
        value: yaml::Value::Scalar {
            text: String::new(),
            plain: true,
        },
        loc: Loc { line: 1, column: 1 },
    });
    for extra in docs.filter(|d| !d.is_null()) {
        r.error_hint(
            extra.loc,
            "",
            "a manifest is one YAML document; found another after `---`",
            "merge the documents into one, or remove the `---` line",
        );
    }
    let manifest = read_manifest(&mut r, &root, file, opts);
    if r.issues.is_empty()
        && let Some(manifest) = manifest
    {
        return Ok(Loaded {
            manifest,
            warnings: r.warnings,
        });
    }
    let mut issues = r.issues;
    issues.sort_by_key(|i| (i.line, i.column));
    issues.dedup();
    Err(ManifestError::Invalid {
        file: file.to_owned(),
        issues,
    })
}

fn read_manifest(
    r: &mut Reader<'_>,
    root: &Node,
    file: &str,
    opts: &LoadOptions<'_>,
) -> Option<Manifest> {
    if !root.is_null() && !matches!(root.value, yaml::Value::Map(_)) {
        r.error_hint(
            root.loc,
            "",
            format!("expected a mapping, found {}", root.kind_name()),
            "a manifest is a mapping of sections like `containers:`, `nodes:` and `drift_rules:`",
        );
        return None;
    }
    let mut top = r.map(root, "")?;
    let config = top
        .get("config")
        .map(|n| read_config(r, n))
        .unwrap_or_default();
    let nodes_node = top.get("nodes").filter(|n| has_items(n));
    let nodes = match nodes_node {
        Some(n) => read_nodes(r, n),
        None => vec![implicit_node(r, &top, opts.env)],
    };
    let node_names = NodeNames {
        names: nodes.iter().map(|n| n.name.clone()).collect(),
        implicit: nodes_node.is_none(),
    };
    let containers_node = top.get("containers");
    let stacks = top
        .get("stacks")
        .map(|n| read_stacks(r, n, &node_names))
        .unwrap_or_default();
    let kubernetes = top
        .get("kubernetes")
        .map(|n| read_kubernetes(r, n))
        .unwrap_or_default();
    let inventory = top
        .get("inventory")
        .map(|n| read_inventory(r, n))
        .unwrap_or_default();
    let drift_rules = top
        .get("drift_rules")
        .map(|n| read_drift_rules(r, n))
        .unwrap_or_default();
    let maintenance_windows = top
        .get("maintenance_windows")
        .map(|n| read_windows(r, n))
        .unwrap_or_default();
    // A channel's `nodes` may name a `kubernetes:` source as the node it is shown as.
    let alert_nodes = NodeNames {
        names: node_names
            .names
            .iter()
            .cloned()
            .chain(kubernetes.iter().map(|k| format!("k8s/{}", k.name)))
            .collect(),
        implicit: node_names.implicit,
    };
    let alerting = top
        .get("alerting")
        .map(|n| read_alerting(r, n, &alert_nodes))
        .unwrap_or_default();
    let ledger = top
        .get("ledger")
        .map(|n| read_ledger(r, n))
        .unwrap_or_default();
    let secrets = top
        .get("secrets")
        .map(|n| read_secrets(r, n))
        .unwrap_or_default();
    let allow_empty = top
        .get("allow_empty")
        .and_then(|n| r.bool(n, "allow_empty"))
        .unwrap_or(false);
    let ignore_differences = top
        .get("ignore_differences")
        .map(|n| read_ignore_list(r, n, "ignore_differences"))
        .unwrap_or_default();
    let mut env_files = Vec::new();
    let containers = containers_node
        .map(|n| read_containers(r, n, &node_names, opts.base_dir.as_deref(), &mut env_files))
        .unwrap_or_default();
    top.finish(r);
    Some(Manifest {
        file: file.to_owned(),
        config,
        nodes,
        containers,
        stacks,
        stack_networks: Vec::new(),
        stack_volumes: Vec::new(),
        kubernetes,
        inventory,
        drift_rules,
        maintenance_windows,
        alerting,
        ledger,
        secrets,
        allow_empty,
        ignore_differences,
        env_files,
    })
}

fn read_mode(r: &mut Reader<'_>, node: &Node, path: &str) -> Option<Mode> {
    let s = r.string(node, path)?;
    match Mode::parse(&s) {
        Some(m) => Some(m),
        None => {
            let hint = match suggest(&s, ["enforce", "audit", "read-only"]) {
                Some(m) => format!("did you mean `{m}`? use `enforce`, `audit` or `read-only`"),
                None => "use `enforce`, `audit` or `read-only`".to_owned(),
            };
            r.error_hint(node.loc, path, format!("`{s}` is not a mode"), hint);
            None
        }
    }
}

fn read_config(r: &mut Reader<'_>, node: &Node) -> Config {
    let mut c = Config::default();
    let Some(mut m) = r.map(node, "config") else {
        return c;
    };
    if let Some(n) = m.get("check_interval") {
        match r.duration_ms(n, "config.check_interval") {
            Some(0) => r.error(
                n.loc,
                "config.check_interval",
                "the check interval must be at least 1 second",
            ),
            Some(ms) => c.check_interval_secs = ms.div_ceil(1000),
            None => {}
        }
    }
    if let Some(n) = m.get("health_deadline") {
        match r.duration_ms(n, "config.health_deadline") {
            Some(0) => r.error(
                n.loc,
                "config.health_deadline",
                "the health deadline must be at least 1 second",
            ),
            Some(ms) => c.health_deadline_secs = ms.div_ceil(1000),
            None => {}
        }
    }
    if let Some(n) = m.get("drift_detection") {
        c.drift_detection = r.bool(n, "config.drift_detection").unwrap_or(true);
    }
    if let Some(n) = m.get("git_auto_commit") {
        c.git_auto_commit = r.bool(n, "config.git_auto_commit").unwrap_or(true);
    }
    if let Some(n) = m.get("mode") {
        c.mode = read_mode(r, n, "config.mode").unwrap_or_default();
    }
    if let Some(n) = m.get("discord_webhook") {
        c.discord_webhook = r
            .string(n, "config.discord_webhook")
            .filter(|s| !s.is_empty())
            .map(|s| Secret::new(s, true));
    }
    if let Some(n) = m.get("selector")
        && let Some(s) = r.string(n, "config.selector")
    {
        match LabelSelector::parse(&s) {
            Some(sel) => c.selector = Some(sel),
            None => r.error_hint(
                n.loc,
                "config.selector",
                format!("`{s}` is not a label selector"),
                "write `key` or `key=value`",
            ),
        }
    }
    m.finish(r);
    c
}

fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

fn read_name(r: &mut Reader<'_>, m: &mut MapView<'_>, what: &str) -> Option<(String, Loc)> {
    let path = m.path_of("name");
    match m.get("name") {
        Some(n) => {
            let s = r.string(n, &path)?;
            if name_ok(&s) {
                Some((s, n.loc))
            } else {
                r.error_hint(
                    n.loc,
                    &path,
                    format!("`{s}` is not a valid {what} name"),
                    "use letters, digits, `_`, `.` and `-`, starting with a letter or digit",
                );
                None
            }
        }
        None => {
            r.error(m.node.loc, &path, format!("every {what} needs a `name`"));
            None
        }
    }
}

/// The declared node names, and whether they are the implicit one (no `nodes:` in the manifest).
struct NodeNames {
    names: Vec<String>,
    implicit: bool,
}

/// Whether a `nodes:` value declares anything (an empty list or null declares nothing).
fn has_items(node: &Node) -> bool {
    match &node.value {
        yaml::Value::Seq(items) => !items.is_empty(),
        _ => !node.is_null(),
    }
}

/// The name of the implicit node of a manifest without `nodes:`: `local`, or the one node name its
/// containers and stacks refer to (seed 000 writes `node: lyra` without declaring `lyra`). When they
/// refer to several, it stays `local` and each reference is reported as undeclared.
fn implicit_node(
    r: &mut Reader<'_>,
    top: &MapView<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> NodeSpec {
    let mut refs: Vec<(String, Loc, String)> = Vec::new();
    for section in ["containers", "stacks"] {
        let Some(yaml::Value::Seq(items)) = top.node.get(section).map(|n| &n.value) else {
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            let path = format!("{section}[{i}]");
            if let Some(n) = item.get("node") {
                refs.push((
                    n.scalar().unwrap_or_default().to_owned(),
                    n.loc,
                    format!("{path}.node"),
                ));
            }
            match item.get("nodes").map(|n| &n.value) {
                Some(yaml::Value::Seq(list)) => {
                    for (j, n) in list.iter().enumerate() {
                        refs.push((
                            n.scalar().unwrap_or_default().to_owned(),
                            n.loc,
                            format!("{path}.nodes[{j}]"),
                        ));
                    }
                }
                Some(yaml::Value::Scalar { text, .. }) => {
                    if let Some(n) = item.get("nodes") {
                        refs.push((text.clone(), n.loc, format!("{path}.nodes")));
                    }
                }
                _ => {}
            }
        }
    }
    let mut distinct: Vec<(String, Loc, String)> = Vec::new();
    for (raw, loc, path) in refs {
        // Interpolated like every other value; a bad `${…}` is reported when the field is read.
        let name = crate::interpolate::interpolate(&raw, env).map_or(raw, |i| i.value);
        if !name.is_empty() && !distinct.iter().any(|(d, ..)| *d == name) {
            distinct.push((name, loc, path));
        }
    }
    let name = match distinct.as_slice() {
        [(name, loc, path)] if name_ok(name) && name != DEFAULT_NODE => {
            r.warn(*loc, path, format!("node `{name}` is not declared under `nodes`; it is taken to be the one local engine (`DOCKER_HOST`, else the default socket)"));
            name.clone()
        }
        _ => DEFAULT_NODE.into(),
    };
    NodeSpec::local(name)
}

fn read_nodes(r: &mut Reader<'_>, node: &Node) -> Vec<NodeSpec> {
    let mut out: Vec<NodeSpec> = Vec::new();
    let mut endpoints: BTreeMap<String, String> = BTreeMap::new();
    let Some(items) = list_of(r, node, "nodes", "nodes: [{name: lyra}]") else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let path = format!("nodes[{i}]");
        if let Some(name) = item.scalar().filter(|_| !item.is_null()) {
            r.error_hint(
                item.loc,
                &path,
                "expected a mapping, found a scalar",
                format!("declare a node as a mapping: `- name: {name}`"),
            );
            continue;
        }
        let Some(mut m) = r.map(item, &path) else {
            continue;
        };
        let name = read_name(r, &mut m, "node");
        let role = m
            .get("role")
            .and_then(|n| r.string(n, &format!("{path}.role")));
        let hostname = m
            .get("hostname")
            .and_then(|n| r.string(n, &format!("{path}.hostname")));
        let docker = m.get("docker").and_then(|n| {
            let p = format!("{path}.docker");
            let s = r.string(n, &p)?;
            if s.starts_with("unix://")
                || s.starts_with("tcp://")
                || s.starts_with("ssh://")
                || s.starts_with("npipe://")
            {
                Some((s, n.loc))
            } else {
                r.error_hint(
                    n.loc,
                    &p,
                    format!("`{s}` is not a Docker endpoint"),
                    "write `unix:///var/run/docker.sock`, `tcp://HOST:2376` or `ssh://USER@HOST`",
                );
                None
            }
        });
        let tls = m.get("tls").and_then(|n| {
            let p = format!("{path}.tls");
            let mut t = r.map(n, &p)?;
            let mut f = |k: &'static str, r: &mut Reader<'_>| -> Option<String> {
                let kp = t.path_of(k);
                match t.get(k) {
                    Some(v) => r.string(v, &kp),
                    None => {
                        r.error(n.loc, &kp, format!("`tls` needs `{k}`"));
                        None
                    }
                }
            };
            let ca = f("ca", r);
            let cert = f("cert", r);
            let key = f("key", r);
            t.finish(r);
            Some(TlsFiles {
                ca: ca?,
                cert: cert?,
                key: key?,
            })
        });
        let docker_enabled = m
            .get("docker_enabled")
            .and_then(|n| r.bool(n, &format!("{path}.docker_enabled")))
            .unwrap_or(true);
        let k8s_enabled = m
            .get("k8s_enabled")
            .and_then(|n| r.bool(n, &format!("{path}.k8s_enabled")))
            .unwrap_or(false);
        let kube_context = m
            .get("kube_context")
            .and_then(|n| r.string(n, &format!("{path}.kube_context")));
        let mode = m
            .get("mode")
            .and_then(|n| read_mode(r, n, &format!("{path}.mode")));
        let node_loc = m.node.loc;
        m.finish(r);
        let Some((name, loc)) = name else { continue };
        if out.iter().any(|n| n.name == name) {
            r.error(
                loc,
                &format!("{path}.name"),
                format!("node `{name}` is declared twice"),
            );
            continue;
        }
        if let Some((ep, ep_loc)) = &docker {
            match endpoints.get(ep) {
                Some(other) => r.error_hint(
                    *ep_loc,
                    &format!("{path}.docker"),
                    format!("node `{name}` has the same endpoint `{ep}` as node `{other}`"),
                    "one engine is one node; give each node its own endpoint",
                ),
                None => {
                    endpoints.insert(ep.clone(), name.clone());
                }
            }
        }
        if let Some((ep, ep_loc)) = &docker
            && let Some((message, hint)) = endpoint_problem(&name, ep)
        {
            r.error_hint(*ep_loc, &format!("{path}.docker"), message, hint);
        }
        if let Some((ep, ep_loc)) = &docker
            && tls.is_some()
            && !ep.starts_with("tcp://")
        {
            r.warn(
                *ep_loc,
                &format!("{path}.docker"),
                format!("node `{name}` has `tls` files, but they are used only with `tcp://`, not with `{ep}`"),
            );
        }
        if docker.is_none() && tls.is_some() {
            r.error_hint(
                node_loc,
                &format!("{path}.tls"),
                format!("node `{name}` has `tls` but no `docker:` endpoint"),
                "set `docker: tcp://HOST:2376` for a TLS-protected engine",
            );
        }
        let docker = docker.map(|(ep, _)| ep);
        out.push(NodeSpec {
            name,
            role,
            hostname,
            docker,
            tls,
            docker_enabled,
            k8s_enabled,
            kube_context,
            mode,
        });
    }
    out
}

/// What is wrong with node `name`'s endpoint `ep` beyond its scheme (checked above): an empty
/// address, a `tcp://` without port.
fn endpoint_problem(name: &str, ep: &str) -> Option<(String, String)> {
    let (scheme, rest) = ep.split_once("://")?;
    let host = rest.split('/').next().unwrap_or_default();
    let empty = match scheme {
        "unix" | "npipe" => rest.is_empty(),
        _ => host.is_empty() || host.ends_with('@'),
    };
    if empty {
        return Some((
            format!("node `{name}` has an endpoint without an address: `{ep}`"),
            match scheme {
                "unix" => "write the socket path: `unix:///var/run/docker.sock`".to_owned(),
                "ssh" => "write the host: `ssh://deploy@10.0.0.5`".to_owned(),
                _ => format!(
                    "write `{scheme}://` followed by the address, e.g. `tcp://10.0.0.5:2376`"
                ),
            },
        ));
    }
    let port = host.rsplit_once(':').map(|(_, p)| p.parse::<u16>());
    if scheme == "tcp" && !matches!(port, Some(Ok(_))) {
        return Some((
            format!("node `{name}` has no port in its endpoint `{ep}`"),
            "Docker listens on 2376 with TLS and 2375 without: `tcp://HOST:2376`".to_owned(),
        ));
    }
    None
}

/// Resolves `node:`/`nodes:` of a container or stack to declared node names.
fn read_node_refs(r: &mut Reader<'_>, m: &mut MapView<'_>, nodes: &NodeNames) -> Vec<String> {
    let node_names = nodes.names.as_slice();
    let single = m.get("node");
    let multi = m.get("nodes");
    let mut refs: Vec<(String, Loc, String)> = Vec::new();
    if let Some(n) = single {
        let p = m.path_of("node");
        if let Some(s) = r.string(n, &p) {
            refs.push((s, n.loc, p));
        }
    }
    if let Some(n) = multi {
        let p = m.path_of("nodes");
        for item in r.strings_at(n, &p).unwrap_or_default() {
            refs.push((item.value, item.loc, item.field));
        }
    }
    if single.is_some() && multi.is_some() {
        let loc = m.key_loc("nodes").unwrap_or(m.node.loc);
        r.error_hint(
            loc,
            &m.path_of("nodes"),
            "set either `node` or `nodes`, not both",
            "use `nodes: [a, b]` alone to run it on several nodes",
        );
    }
    if refs.is_empty() {
        return match node_names {
            [only] => vec![only.clone()],
            [] => Vec::new(),
            _ => {
                r.error_hint(
                    m.node.loc,
                    &m.path_of("node"),
                    "several nodes are declared; say which one runs this",
                    format!(
                        "add `node: {}`, or `nodes: [...]` for several",
                        node_names[0]
                    ),
                );
                Vec::new()
            }
        };
    }
    let mut out = Vec::new();
    for (name, loc, path) in refs {
        if node_names.contains(&name) {
            if !out.contains(&name) {
                out.push(name);
            }
        } else if nodes.implicit {
            r.error_hint(loc, &path, format!("node `{name}` is not declared under `nodes`"), "without `nodes:` everything runs on one local node; declare each node under `nodes:` with its `docker:` endpoint");
        } else {
            let msg = format!("node `{name}` is not declared under `nodes`");
            match suggest(&name, node_names.iter().map(String::as_str)) {
                Some(s) => r.error_hint(loc, &path, msg, format!("did you mean `{s}`?")),
                None => r.error_hint(
                    loc,
                    &path,
                    msg,
                    format!("declared nodes: {}", node_names.join(", ")),
                ),
            }
        }
    }
    out
}

pub(crate) fn read_action(
    r: &mut Reader<'_>,
    node: &Node,
    path: &str,
    allowed: &[Action],
) -> Option<Action> {
    let s = r.string(node, path)?;
    let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
    match Action::parse(&s) {
        Some(a) if allowed.contains(&a) => Some(a),
        Some(_) => {
            r.error_hint(
                node.loc,
                path,
                format!("`{s}` is not an action for this rule"),
                format!("allowed here: {}", names.join(", ")),
            );
            None
        }
        None => {
            let hint = match suggest(&s, names.iter().copied()) {
                Some(sug) => format!("did you mean `{sug}`? allowed here: {}", names.join(", ")),
                None => format!("allowed here: {}", names.join(", ")),
            };
            r.error_hint(node.loc, path, format!("`{s}` is not an action"), hint);
            None
        }
    }
}

/// The fields a drift can name, for `ignore_differences` (`env`, `labels` and `content` take a
/// `.KEY` too).
pub const DRIFT_FIELDS: [&str; 29] = [
    "image",
    "status",
    "env",
    "labels",
    "ports",
    "volumes",
    "content",
    "command",
    "entrypoint",
    "restart",
    "healthcheck",
    "networks",
    "user",
    "working_dir",
    "read_only",
    "security_opt",
    "privileged",
    "cap_add",
    "cap_drop",
    "hostname",
    "init",
    "stop_signal",
    "stop_grace_period",
    "tmpfs",
    "logging",
    "network_mode",
    "mem_limit",
    "cpus",
    "extra_hosts",
];

/// Warns when an `ignore_differences` path can match no drift field, suggesting the closest.
pub(crate) fn check_ignore_path(r: &mut Reader<'_>, loc: Loc, field: &str, pattern: &str) {
    let head = pattern
        .split(['.', '*', '?', '[', '{'])
        .next()
        .unwrap_or_default();
    // A pattern starting with a glob (`*`, `{env,labels}.X`) may match anything.
    if head.is_empty() || DRIFT_FIELDS.contains(&head) {
        return;
    }
    let mut issue = Issue::new(
        &r.file,
        loc,
        field,
        format!("`{pattern}` matches no field Refinery compares; it ignores nothing"),
    );
    // Other tools' names for the same fields, so `environment.X` suggests `env.X`.
    const ALIASES: [(&str, &str); 9] = [
        ("environment", "env"),
        ("label", "labels"),
        ("port", "ports"),
        ("volume", "volumes"),
        ("mounts", "volumes"),
        ("cmd", "command"),
        ("health", "healthcheck"),
        ("memory", "mem_limit"),
        ("files", "content"),
    ];
    let candidates = DRIFT_FIELDS
        .iter()
        .copied()
        .chain(ALIASES.iter().map(|(a, _)| *a));
    let found = suggest(head, candidates)
        .map(|s| ALIASES.iter().find(|(a, _)| *a == s).map_or(s, |(_, f)| *f));
    issue = match found {
        Some(s) => issue.with_hint(format!("did you mean `{}`?", pattern.replacen(head, s, 1))),
        None => issue.with_hint(format!("fields: {}", DRIFT_FIELDS.join(", "))),
    };
    r.warnings.push(issue);
}

/// An `ignore_differences` list, every path checked against the drift fields.
fn read_ignore_list(r: &mut Reader<'_>, node: &Node, path: &str) -> Vec<String> {
    let items = r.strings_at(node, path).unwrap_or_default();
    for item in &items {
        check_ignore_path(r, item.loc, &item.field, &item.value);
    }
    items.into_iter().map(|i| i.value).collect()
}

/// A list at `path`; a scalar or mapping is an error whose hint shows the list form `example`.
fn list_of<'n>(
    r: &mut Reader<'_>,
    node: &'n Node,
    path: &str,
    example: &str,
) -> Option<&'n [Node]> {
    match &node.value {
        yaml::Value::Seq(items) => Some(items),
        _ if node.is_null() => Some(&[]),
        _ => {
            r.error_hint(
                node.loc,
                path,
                format!("expected a list, found {}", node.kind_name()),
                format!("write a list, like `{example}`"),
            );
            None
        }
    }
}

/// Reports every item that is not a valid glob pattern, at the item.
fn check_globs(r: &mut Reader<'_>, items: &[reader::Located]) {
    for item in items {
        if let Err(e) = globset::Glob::new(&item.value) {
            r.error_hint(item.loc, &item.field, format!("`{}` is not a valid pattern: {}", item.value, e.kind()), "patterns use `*`, `?`, `[abc]` and `{a,b}`; escape a literal `[` or `{` as `[[]` or `[{]`");
        }
    }
}

/// A list of glob patterns, each checked.
fn read_globs(r: &mut Reader<'_>, node: &Node, path: &str) -> Vec<String> {
    let items = r.strings_at(node, path).unwrap_or_default();
    check_globs(r, &items);
    items.into_iter().map(|i| i.value).collect()
}

fn read_containers(
    r: &mut Reader<'_>,
    node: &Node,
    node_names: &NodeNames,
    base_dir: Option<&str>,
    env_files: &mut Vec<EnvFileRef>,
) -> Vec<ContainerSpec> {
    let mut out: Vec<ContainerSpec> = Vec::new();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let Some(items) = list_of(
        r,
        node,
        "containers",
        "containers: [{name: web, image: \"nginx:1.27\"}]",
    ) else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let path = format!("containers[{i}]");
        let Some(mut m) = r.map(item, &path) else {
            continue;
        };
        let name = read_name(r, &mut m, "container");
        let kind = m.get("type").and_then(|n| {
            let p = format!("{path}.type");
            let s = r.string(n, &p)?;
            if s == "docker" || s == "k8s" {
                Some(s)
            } else {
                r.error_hint(
                    n.loc,
                    &p,
                    format!("`{s}` is not a container type"),
                    "use `docker` or `k8s`",
                );
                None
            }
        });
        let image = match m.get("image") {
            Some(n) => r.string(n, &format!("{path}.image")).filter(|s| {
                if s.trim().is_empty() || s.contains(char::is_whitespace) {
                    r.error(
                        n.loc,
                        &format!("{path}.image"),
                        format!("`{s}` is not an image reference"),
                    );
                    false
                } else {
                    true
                }
            }),
            None => {
                r.error(
                    item.loc,
                    &format!("{path}.image"),
                    "every container needs an `image`",
                );
                None
            }
        };
        let nodes = read_node_refs(r, &mut m, node_names);
        let mut ports = Vec::new();
        if let Some(n) = m.get("ports") {
            let p = format!("{path}.ports");
            let mut published: BTreeMap<(String, u16, crate::spec::Protocol), String> =
                BTreeMap::new();
            if let Some(items) = list_of(r, n, &p, "ports: [\"8080:80\"]") {
                for (j, pn) in items.iter().enumerate() {
                    let pp = format!("{p}[{j}]");
                    let Some(s) = r.string(pn, &pp) else { continue };
                    match parse_port(&s) {
                        Ok(v) => {
                            for pb in v {
                                if let Some(hp) = pb.host_port {
                                    let key = (pb.host_ip.clone(), hp, pb.protocol);
                                    if let Some(first) = published.get(&key) {
                                        r.error(pn.loc, &pp, format!("host port {hp}/{} is published twice (first at `{first}`)", pb.protocol));
                                        continue;
                                    }
                                    published.insert(key, pp.clone());
                                }
                                ports.push(pb);
                            }
                        }
                        Err(e) => r.error_hint(pn.loc, &pp, e, "write `HOST:CONTAINER`, `IP:HOST:CONTAINER` or `CONTAINER`, optionally with `/tcp` or `/udp`"),
                    }
                }
            }
        }
        let mut fallback_ports = BTreeMap::new();
        if let Some(n) = m.get("fallback_ports") {
            let p = format!("{path}.fallback_ports");
            if let Some(mut fm) = r.map(n, &p) {
                if let crate::yaml::Value::Map(entries) = &n.value {
                    for (k, v) in entries {
                        let key = k.scalar().unwrap_or_default();
                        let kp = format!("{p}.{key}");
                        let Ok(hp) = key.parse::<u16>() else {
                            r.error(k.loc, &kp, format!("`{key}` is not a port number"));
                            continue;
                        };
                        if !ports.iter().any(|pb| pb.host_port == Some(hp)) {
                            r.error_hint(
                                k.loc,
                                &kp,
                                format!("port {hp} is not a published host port of this container"),
                                "key fallbacks by a host port listed under `ports`",
                            );
                        }
                        let mut alts = Vec::new();
                        for alt in r.strings_at(v, &kp).unwrap_or_default() {
                            match alt.value.parse::<u16>() {
                                Ok(p) if p > 0 => alts.push(p),
                                _ => r.error(
                                    alt.loc,
                                    &alt.field,
                                    format!("`{}` is not a port number (1-65535)", alt.value),
                                ),
                            }
                        }
                        fallback_ports.insert(hp, alts);
                    }
                }
                // Keys are ports, not fields: nothing is unknown here.
                let _ = &mut fm;
            }
        }
        let mut env = BTreeMap::new();
        let env_node = match (m.get("env"), m.get("environment")) {
            (Some(_), Some(_)) => {
                let loc = m.key_loc("environment").unwrap_or(item.loc);
                r.error_hint(
                    loc,
                    &format!("{path}.environment"),
                    "set either `env` or `environment`, not both",
                    "`environment` is another name for `env`; merge the two",
                );
                None
            }
            (Some(n), None) => Some((n, "env")),
            (None, Some(n)) => Some((n, "environment")),
            (None, None) => None,
        };
        if let Some((n, key)) = env_node {
            let p = format!("{path}.{key}");
            for e in r.key_values_at(n, &p).unwrap_or_default() {
                if e.key.is_empty() || e.key.contains(|c: char| c.is_whitespace() || c == '=') {
                    r.error(
                        e.loc,
                        &e.field,
                        format!("`{}` is not an environment variable name", e.key),
                    );
                    continue;
                }
                env.insert(e.key.clone(), Secret::for_name(&e.key, e.value));
            }
        }
        // Read from the commit (and decrypted when SOPS) by `resolve_env_files`.
        let env_file = m
            .get("env_file")
            .map(|n| env_files::read_refs(r, n, &format!("{path}.env_file")))
            .unwrap_or_default();
        let mut mounts = Vec::new();
        let mut content = Vec::new();
        if let Some(n) = m.get("volumes") {
            let p = format!("{path}.volumes");
            if let Some(items) = list_of(r, n, &p, "volumes: [\"data:/var/lib/data\"]") {
                for (j, vn) in items.iter().enumerate() {
                    let vp = format!("{p}[{j}]");
                    if let Some(s) = r.string(vn, &vp) {
                        match parse_volume(&s, base_dir) {
                            Ok(mnt) => {
                                if mounts.iter().any(|x: &crate::spec::Mount| x.target == mnt.target) {
                                    r.error(vn.loc, &vp, format!("`{}` is mounted twice", mnt.target));
                                }
                                // A `./` source is a repository file or folder: desired by content.
                                if s.starts_with('.')
                                    && let Some(rel) = crate::content::repo_relative("", s.split(':').next().unwrap_or_default())
                                {
                                    let mut cm = crate::content::ContentMount::new(&mnt.target, &rel);
                                    cm.declared = Some((vn.loc, vp.clone()));
                                    content.push(cm);
                                }
                                mounts.push(mnt);
                            }
                            Err(e) => r.error_hint(vn.loc, &vp, e, "write `VOLUME:/path`, `/host/path:/path[:ro]`, `./in/repo:/path[:ro]` or `/path`"),
                        }
                    }
                }
            }
        }
        mounts.sort();
        let command = m
            .get("command")
            .and_then(|n| r.command(n, &format!("{path}.command")));
        let entrypoint = m
            .get("entrypoint")
            .and_then(|n| r.command(n, &format!("{path}.entrypoint")));
        let mut labels = BTreeMap::new();
        if let Some(n) = m.get("labels") {
            for e in r
                .key_values_at(n, &format!("{path}.labels"))
                .unwrap_or_default()
            {
                if e.key.starts_with(crate::labels::PREFIX) {
                    r.error_hint(
                        e.loc,
                        &e.field,
                        format!("label `{}` is reserved for Refinery", e.key),
                        format!(
                            "Refinery sets the `{}*` labels itself; choose another prefix",
                            crate::labels::PREFIX
                        ),
                    );
                } else if e.key.is_empty() {
                    r.error(e.loc, &e.field, "a label needs a name");
                } else {
                    labels.insert(e.key, e.value);
                }
            }
        }
        let restart = m.get("restart").and_then(|n| {
            let p = format!("{path}.restart");
            let s = r.string(n, &p)?;
            match s.parse::<RestartPolicy>() {
                Ok(rp) => Some(rp),
                Err(e) => {
                    match suggest(&s, ["no", "always", "unless-stopped", "on-failure"]) {
                        Some(sug) => r.error_hint(n.loc, &p, e, format!("did you mean `{sug}`?")),
                        None => r.error(n.loc, &p, e),
                    }
                    None
                }
            }
        });
        let healthcheck = m
            .get("healthcheck")
            .and_then(|n| read_healthcheck(r, n, &format!("{path}.healthcheck")));
        let bloodline = m
            .get("bloodline")
            .and_then(|n| {
                let p = format!("{path}.bloodline");
                let mut b = r.map(n, &p)?;
                let creator = b
                    .get("creator")
                    .and_then(|v| r.string(v, &format!("{p}.creator")));
                let purpose = b
                    .get("purpose")
                    .and_then(|v| r.string(v, &format!("{p}.purpose")));
                b.finish(r);
                Some(Bloodline { creator, purpose })
            })
            .unwrap_or_default();
        let ignore_differences = m
            .get("ignore_differences")
            .map(|n| read_ignore_list(r, n, &format!("{path}.ignore_differences")))
            .unwrap_or_default();
        let drift_action = m.get("drift_action").and_then(|n| {
            read_action(
                r,
                n,
                &format!("{path}.drift_action"),
                &[
                    Action::Alert,
                    Action::Ignore,
                    Action::Recreate,
                    Action::Restart,
                ],
            )
        });
        let options = crate::spec::RuntimeOptions {
            privileged: m
                .get("privileged")
                .and_then(|n| r.bool(n, &format!("{path}.privileged")))
                .unwrap_or(false),
            cap_add: read_capabilities(r, &mut m, &path, "cap_add"),
            cap_drop: read_capabilities(r, &mut m, &path, "cap_drop"),
            ..Default::default()
        };
        m.finish(r);
        let (Some((name, name_loc)), Some(image)) = (name, image) else {
            continue;
        };
        if kind.as_deref() == Some("k8s") {
            r.warn(item.loc, &path, "containers of `type: k8s` are managed through `kubernetes:` entries; this one is not enforced on Docker");
            continue;
        }
        for node_name in nodes {
            env_files.extend(env_file.iter().map(|f| EnvFileRef {
                node: node_name.clone(),
                container: name.clone(),
                ..f.clone()
            }));
            if !seen.insert((node_name.clone(), name.clone())) {
                r.error(
                    name_loc,
                    &format!("{path}.name"),
                    format!("container `{name}` is declared twice on node `{node_name}`"),
                );
                continue;
            }
            out.push(ContainerSpec {
                name: name.clone(),
                node: node_name,
                image: image.clone(),
                ports: ports.clone(),
                fallback_ports: fallback_ports.clone(),
                env: env.clone(),
                mounts: mounts.clone(),
                command: command.clone(),
                entrypoint: entrypoint.clone(),
                labels: labels.clone(),
                restart: restart.unwrap_or_default(),
                healthcheck: healthcheck.clone(),
                bloodline: bloodline.clone(),
                ignore_differences: ignore_differences.clone(),
                drift_action,
                options: options.clone(),
                stack: None,
                content: content.clone(),
            });
        }
    }
    out
}

/// `cap_add: [NET_ADMIN]` of a container, in the form the engine reports.
fn read_capabilities(
    r: &mut Reader<'_>,
    m: &mut MapView<'_>,
    path: &str,
    key: &'static str,
) -> Vec<String> {
    m.get(key)
        .and_then(|n| r.strings(n, &format!("{path}.{key}")))
        .map(|v| crate::spec::capabilities(&v))
        .unwrap_or_default()
}

pub(crate) fn read_healthcheck(r: &mut Reader<'_>, node: &Node, path: &str) -> Option<Healthcheck> {
    let mut m = r.map(node, path)?;
    let mut h = Healthcheck::default();
    let disable = m
        .get("disable")
        .and_then(|n| r.bool(n, &format!("{path}.disable")))
        .unwrap_or(false);
    if let Some(n) = m.get("test") {
        let p = format!("{path}.test");
        if n.scalar().is_some() {
            if let Some(s) = r.string(n, &p) {
                h.test = vec!["CMD-SHELL".into(), s];
            }
        } else if let Some(list) = r.strings(n, &p) {
            match list.first().map(String::as_str) {
                Some("CMD" | "CMD-SHELL" | "NONE") => h.test = list,
                _ => r.error_hint(n.loc, &p, "a healthcheck test list must start with `CMD`, `CMD-SHELL` or `NONE`", "write `[\"CMD\", \"wget\", \"-q\", \"localhost\"]` or a plain string for a shell command"),
            }
        }
    } else if !disable {
        r.error(
            node.loc,
            &format!("{path}.test"),
            "a healthcheck needs a `test`",
        );
    }
    for (key, slot) in [
        ("interval", &mut h.interval_ms),
        ("timeout", &mut h.timeout_ms),
        ("start_period", &mut h.start_period_ms),
    ] {
        if let Some(n) = m.get(key) {
            *slot = r.duration_ms(n, &format!("{path}.{key}")).unwrap_or(0);
        }
    }
    if let Some(n) = m.get("retries") {
        h.retries = r
            .u64(n, &format!("{path}.retries"))
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0);
    }
    m.finish(r);
    if disable {
        h = Healthcheck {
            test: vec!["NONE".into()],
            ..Healthcheck::default()
        };
    }
    Some(h)
}

fn read_stacks(r: &mut Reader<'_>, node: &Node, node_names: &NodeNames) -> Vec<StackSpec> {
    let mut out: Vec<StackSpec> = Vec::new();
    let Some(items) = r.seq(node, "stacks") else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let path = format!("stacks[{i}]");
        let Some(mut m) = r.map(item, &path) else {
            continue;
        };
        let name = read_name(r, &mut m, "stack");
        let nodes = read_node_refs(r, &mut m, node_names);
        let files = match m.get("files") {
            Some(n) => r.strings(n, &format!("{path}.files")).unwrap_or_default(),
            None => vec!["docker-compose.yml".into()],
        };
        let profiles = m
            .get("profiles")
            .and_then(|n| r.strings(n, &format!("{path}.profiles")))
            .unwrap_or_default();
        let env_file = m
            .get("env_file")
            .and_then(|n| r.string(n, &format!("{path}.env_file")));
        m.finish(r);
        let Some((name, loc)) = name else { continue };
        if out.iter().any(|s| s.name == name) {
            r.error(
                loc,
                &format!("{path}.name"),
                format!("stack `{name}` is declared twice"),
            );
            continue;
        }
        for node in nodes {
            out.push(StackSpec {
                name: name.clone(),
                node,
                files: files.clone(),
                profiles: profiles.clone(),
                env_file: env_file.clone(),
            });
        }
    }
    out
}

fn read_kubernetes(r: &mut Reader<'_>, node: &Node) -> Vec<KubeSpec> {
    let mut out = Vec::new();
    let Some(items) = r.seq(node, "kubernetes") else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let path = format!("kubernetes[{i}]");
        let Some(mut m) = r.map(item, &path) else {
            continue;
        };
        let name = read_name(r, &mut m, "kubernetes source");
        let context = m
            .get("context")
            .and_then(|n| r.string(n, &format!("{path}.context")));
        let kpath = match m.get("path") {
            Some(n) => r.string(n, &format!("{path}.path")),
            None => {
                r.error(
                    item.loc,
                    &format!("{path}.path"),
                    "every kubernetes source needs a `path` to its manifests",
                );
                None
            }
        };
        let namespace = m
            .get("namespace")
            .and_then(|n| r.string(n, &format!("{path}.namespace")));
        let prune = m
            .get("prune")
            .and_then(|n| r.bool(n, &format!("{path}.prune")))
            .unwrap_or(false);
        m.finish(r);
        if let (Some((name, loc)), Some(p)) = (name, kpath) {
            // The name is the value of the `refinery.io/source` label on what it applies.
            if name.len() > 63 || !name.ends_with(|c: char| c.is_ascii_alphanumeric()) {
                r.error_hint(
                    loc,
                    &format!("{path}.name"),
                    format!("`{name}` is not a valid kubernetes source name"),
                    "it labels what the source applies: at most 63 characters, ending with a letter or digit",
                );
                continue;
            }
            if out.iter().any(|k: &KubeSpec| k.name == name) {
                r.error(
                    loc,
                    &format!("{path}.name"),
                    format!("kubernetes source `{name}` is declared twice"),
                );
                continue;
            }
            out.push(KubeSpec {
                name,
                context,
                path: p,
                namespace,
                prune,
            });
        }
    }
    out
}

fn read_inventory(r: &mut Reader<'_>, node: &Node) -> Inventory {
    let mut inv = Inventory::default();
    let Some(mut m) = r.map(node, "inventory") else {
        return inv;
    };
    if let Some(n) = m.get("allowed")
        && let Some(mut a) = r.map(n, "inventory.allowed")
    {
        for (key, slot) in [
            ("containers", &mut inv.allowed.containers),
            ("images", &mut inv.allowed.images),
            ("volumes", &mut inv.allowed.volumes),
            ("networks", &mut inv.allowed.networks),
        ] {
            if let Some(v) = a.get(key) {
                *slot = read_globs(r, v, &format!("inventory.allowed.{key}"));
            }
        }
        a.finish(r);
    }
    if let Some(n) = m.get("protected") {
        inv.protected = read_globs(r, n, "inventory.protected");
    }
    if let Some(n) = m.get("safe_to_delete") {
        inv.safe_to_delete = read_globs(r, n, "inventory.safe_to_delete");
    }
    if let Some(n) = m.get("cleanup")
        && let Some(mut c) = r.map(n, "inventory.cleanup")
    {
        if let Some(v) = c.get("max_unused_image_age") {
            inv.cleanup.max_unused_image_age_ms =
                r.duration_ms(v, "inventory.cleanup.max_unused_image_age");
        }
        if let Some(v) = c.get("max_unused_volume_age") {
            inv.cleanup.max_unused_volume_age_ms =
                r.duration_ms(v, "inventory.cleanup.max_unused_volume_age");
        }
        if let Some(v) = c.get("protected_tags") {
            inv.cleanup.protected_tags = read_globs(r, v, "inventory.cleanup.protected_tags");
        }
        c.finish(r);
    }
    if let Some(n) = m.get("schedule")
        && let Some(mut s) = r.map(n, "inventory.schedule")
    {
        let cron = match s.get("cron") {
            Some(v) => r.string(v, "inventory.schedule.cron").filter(|c| {
                let fields = c.split_whitespace().count();
                if (5..=7).contains(&fields) {
                    true
                } else {
                    r.error_hint(v.loc, "inventory.schedule.cron", format!("`{c}` is not a cron expression"), "write five fields: minute hour day-of-month month day-of-week, like `0 2 * * *`");
                    false
                }
            }),
            None => {
                r.error(n.loc, "inventory.schedule.cron", "a schedule needs a `cron` expression");
                None
            }
        };
        let timezone = s
            .get("timezone")
            .and_then(|v| r.string(v, "inventory.schedule.timezone"))
            .unwrap_or_else(|| "UTC".into());
        s.finish(r);
        inv.schedule = cron.map(|cron| Schedule { cron, timezone });
        if let Some(sched) = &inv.schedule
            && let Err(e) = crate::inventory::check_schedule(sched)
        {
            let field = match e {
                crate::inventory::ScheduleError::BadTimezone { .. } => {
                    "inventory.schedule.timezone"
                }
                _ => "inventory.schedule.cron",
            };
            let hint = e.hints().join("; ");
            r.error_hint(n.loc, field, e.to_string(), hint);
        }
    }
    if let Some(v) = m.get("audit_log") {
        inv.audit_log = r.string(v, "inventory.audit_log");
    }
    m.finish(r);
    inv
}

fn read_rule(r: &mut Reader<'_>, node: &Node, path: &str, allowed: &[Action]) -> Option<Rule> {
    let mut m = r.map(node, path)?;
    let action = match m.get("action") {
        Some(n) => read_action(r, n, &format!("{path}.action"), allowed),
        None => {
            r.error(
                node.loc,
                &format!("{path}.action"),
                "a drift rule needs an `action`",
            );
            None
        }
    };
    let grace = m
        .get("grace_period")
        .and_then(|n| r.duration_ms(n, &format!("{path}.grace_period")))
        .unwrap_or(0);
    let exceptions = m
        .get("exceptions")
        .map(|n| read_globs(r, n, &format!("{path}.exceptions")))
        .unwrap_or_default();
    m.finish(r);
    Some(Rule {
        action: action?,
        grace_period_secs: grace.div_ceil(1000),
        exceptions,
    })
}

fn read_drift_rules(r: &mut Reader<'_>, node: &Node) -> DriftRules {
    use Action::*;
    let mut d = DriftRules::default();
    let Some(mut m) = r.map(node, "drift_rules") else {
        return d;
    };
    if let Some(n) = m.get("unauthorized_containers") {
        d.unauthorized_containers = read_rule(
            r,
            n,
            "drift_rules.unauthorized_containers",
            &[Terminate, Alert, Ignore],
        );
    }
    if let Some(n) = m.get("missing_containers") {
        d.missing_containers = read_rule(
            r,
            n,
            "drift_rules.missing_containers",
            &[Recreate, Alert, Ignore],
        );
    }
    if let Some(n) = m.get("image_drift") {
        d.image_drift = read_rule(
            r,
            n,
            "drift_rules.image_drift",
            &[Rollback, Recreate, Alert, Ignore],
        );
    }
    if let Some(n) = m.get("config_drift") {
        d.config_drift = read_rule(
            r,
            n,
            "drift_rules.config_drift",
            &[Recreate, Restart, Rollback, Alert, Ignore],
        );
    }
    if let Some(n) = m.get("status_drift") {
        d.status_drift = read_rule(
            r,
            n,
            "drift_rules.status_drift",
            &[Restart, Recreate, Alert, Ignore],
        );
    }
    if let Some(n) = m.get("flapping")
        && let Some(mut f) = r.map(n, "drift_rules.flapping")
    {
        let max = f
            .get("max_actions")
            .and_then(|v| r.u64(v, "drift_rules.flapping.max_actions"))
            .unwrap_or(5);
        let window = f
            .get("window")
            .and_then(|v| r.duration_ms(v, "drift_rules.flapping.window"))
            .unwrap_or(600_000);
        f.finish(r);
        d.flapping = Some(Flapping {
            max_actions: u32::try_from(max).unwrap_or(u32::MAX),
            window_secs: window.div_ceil(1000),
        });
    }
    m.finish(r);
    d
}

fn read_time(r: &mut Reader<'_>, node: &Node, path: &str) -> Option<u32> {
    let s = r.string(node, path)?;
    let parsed = s.split_once(':').and_then(|(h, m)| {
        let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
        // `then`, not `then_some`: `h * 60` of an hour out of range overflows.
        ((h < 24 && m < 60) || (h == 24 && m == 0)).then(|| h * 60 + m)
    });
    if parsed.is_none() {
        r.error_hint(
            node.loc,
            path,
            format!("`{s}` is not a time of day"),
            "write `HH:MM` in 24-hour form, like `02:00`",
        );
    }
    parsed
}

fn read_windows(r: &mut Reader<'_>, node: &Node) -> Vec<MaintenanceWindow> {
    let mut out = Vec::new();
    let Some(items) = r.seq(node, "maintenance_windows") else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let path = format!("maintenance_windows[{i}]");
        let Some(mut m) = r.map(item, &path) else {
            continue;
        };
        let name = m
            .get("name")
            .and_then(|n| r.string(n, &format!("{path}.name")))
            .unwrap_or_else(|| format!("window {}", i + 1));
        let day = match m.get("day") {
            Some(n) => {
                let p = format!("{path}.day");
                r.string(n, &p).and_then(|s| {
                    let d = match s.to_ascii_lowercase().as_str() {
                        "daily" | "*" | "every day" => WindowDay::Daily,
                        "monday" | "mon" => WindowDay::Monday,
                        "tuesday" | "tue" => WindowDay::Tuesday,
                        "wednesday" | "wed" => WindowDay::Wednesday,
                        "thursday" | "thu" => WindowDay::Thursday,
                        "friday" | "fri" => WindowDay::Friday,
                        "saturday" | "sat" => WindowDay::Saturday,
                        "sunday" | "sun" => WindowDay::Sunday,
                        _ => {
                            let days = [
                                "daily",
                                "monday",
                                "tuesday",
                                "wednesday",
                                "thursday",
                                "friday",
                                "saturday",
                                "sunday",
                            ];
                            let hint = match suggest(&s, days) {
                                Some(d) => format!("did you mean `{d}`?"),
                                None => "write a weekday like `sunday`, or `daily`".to_owned(),
                            };
                            r.error_hint(n.loc, &p, format!("`{s}` is not a day"), hint);
                            return None;
                        }
                    };
                    Some(d)
                })
            }
            None => Some(WindowDay::Daily),
        };
        let start = match m.get("start_time") {
            Some(n) => read_time(r, n, &format!("{path}.start_time")),
            None => {
                r.error(
                    item.loc,
                    &format!("{path}.start_time"),
                    "a maintenance window needs a `start_time`",
                );
                None
            }
        };
        let end = match m.get("end_time") {
            Some(n) => read_time(r, n, &format!("{path}.end_time")),
            None => {
                r.error(
                    item.loc,
                    &format!("{path}.end_time"),
                    "a maintenance window needs an `end_time`",
                );
                None
            }
        };
        let timezone = m
            .get("timezone")
            .and_then(|n| r.string(n, &format!("{path}.timezone")))
            .unwrap_or_else(|| "UTC".into());
        let disable_auto_rollback = m
            .get("disable_auto_rollback")
            .and_then(|n| r.bool(n, &format!("{path}.disable_auto_rollback")))
            .unwrap_or(false);
        let allow_drift = m
            .get("allow_drift")
            .and_then(|n| r.bool(n, &format!("{path}.allow_drift")))
            .unwrap_or(false);
        m.finish(r);
        if let (Some(day), Some(start_minute), Some(end_minute)) = (day, start, end) {
            out.push(MaintenanceWindow {
                name,
                day,
                start_minute,
                end_minute,
                timezone,
                disable_auto_rollback,
                allow_drift,
            });
        }
    }
    out
}

fn read_alerting(r: &mut Reader<'_>, node: &Node, node_names: &NodeNames) -> Alerting {
    let mut a = Alerting::default();
    let Some(mut m) = r.map(node, "alerting") else {
        return a;
    };
    if let Some(n) = m.get("channels")
        && let Some(items) = r.seq(n, "alerting.channels")
    {
        for (i, item) in items.iter().enumerate() {
            let path = format!("alerting.channels[{i}]");
            let Some(mut c) = r.map(item, &path) else {
                continue;
            };
            let kind = match c.get("type") {
                Some(n) => r
                    .string(n, &format!("{path}.type"))
                    .and_then(|s| match s.as_str() {
                        "discord" => Some(ChannelKind::Discord),
                        "slack" => Some(ChannelKind::Slack),
                        "mattermost" => Some(ChannelKind::Mattermost),
                        "webhook" => Some(ChannelKind::Webhook),
                        _ => {
                            r.error_hint(
                                n.loc,
                                &format!("{path}.type"),
                                format!("`{s}` is not a channel type"),
                                "use `discord`, `slack`, `mattermost` or `webhook`",
                            );
                            None
                        }
                    }),
                None => {
                    r.error(
                        item.loc,
                        &format!("{path}.type"),
                        "a channel needs a `type`",
                    );
                    None
                }
            };
            let url = match (c.get("webhook_url"), c.get("url")) {
                (Some(_), Some(_)) => {
                    let loc = c.key_loc("url").unwrap_or(item.loc);
                    r.error_hint(
                        loc,
                        &format!("{path}.url"),
                        "set either `webhook_url` or `url`, not both",
                        "`url` is another name for `webhook_url`",
                    );
                    None
                }
                (Some(n), None) => r.string(n, &format!("{path}.webhook_url")),
                (None, Some(n)) => r.string(n, &format!("{path}.url")),
                (None, None) => {
                    r.error(
                        item.loc,
                        &format!("{path}.webhook_url"),
                        "a channel needs a `webhook_url`",
                    );
                    None
                }
            };
            let level = c.get("level").and_then(|n| {
                r.string(n, &format!("{path}.level"))
                    .and_then(|s| match s.as_str() {
                        "info" => Some(Level::Info),
                        "warning" => Some(Level::Warning),
                        "critical" => Some(Level::Critical),
                        _ => {
                            r.error_hint(
                                n.loc,
                                &format!("{path}.level"),
                                format!("`{s}` is not a level"),
                                "use `info`, `warning` or `critical`",
                            );
                            None
                        }
                    })
            });
            let nodes: Vec<String> = c
                .get("nodes")
                .and_then(|n| r.strings_at(n, &format!("{path}.nodes")))
                .unwrap_or_default()
                .into_iter()
                .filter_map(|n| {
                    if node_names.names.contains(&n.value) {
                        return Some(n.value);
                    }
                    let msg = format!("node `{}` is not declared under `nodes`", n.value);
                    match suggest(&n.value, node_names.names.iter().map(String::as_str)) {
                        Some(s) => {
                            r.error_hint(n.loc, &n.field, msg, format!("did you mean `{s}`?"))
                        }
                        None => r.error_hint(
                            n.loc,
                            &n.field,
                            msg,
                            format!("declared nodes: {}", node_names.names.join(", ")),
                        ),
                    }
                    None
                })
                .collect();
            let drift_types = c
                .get("drift_types")
                .and_then(|n| r.strings_at(n, &format!("{path}.drift_types")))
                .unwrap_or_default()
                .into_iter()
                .filter_map(|t| {
                    if DRIFT_TYPES.contains(&t.value.as_str()) {
                        return Some(t.value);
                    }
                    let msg = format!("`{}` is not a drift type", t.value);
                    match suggest(&t.value, DRIFT_TYPES.iter().copied()) {
                        Some(s) => {
                            r.error_hint(t.loc, &t.field, msg, format!("did you mean `{s}`?"))
                        }
                        None => r.error_hint(
                            t.loc,
                            &t.field,
                            msg,
                            format!("drift types: {}", DRIFT_TYPES.join(", ")),
                        ),
                    }
                    None
                })
                .collect();
            let remind_every_ms = c.get("remind_every").and_then(|n| {
                let field = format!("{path}.remind_every");
                let ms = r.duration_ms(n, &field)?;
                if ms == 0 {
                    r.error_hint(
                        n.loc,
                        &field,
                        "a reminder interval of 0 would remind on every pass",
                        "use a duration such as `4h`, or leave `remind_every` out",
                    );
                    return None;
                }
                Some(ms)
            });
            let rate_limit = c
                .get("rate_limit")
                .map(|n| read_rate_limit(r, n, &format!("{path}.rate_limit")))
                .unwrap_or_default();
            c.finish(r);
            if let (Some(kind), Some(url)) = (kind, url) {
                let url = Secret::new(url, true);
                let destination = match kind {
                    ChannelKind::Slack => Destination::Slack { url },
                    ChannelKind::Mattermost => Destination::Mattermost { url },
                    ChannelKind::Webhook => Destination::Webhook { url },
                    _ => Destination::Discord { url },
                };
                a.channels.push(Channel {
                    level: level.unwrap_or(Level::Warning),
                    nodes,
                    drift_types,
                    remind_every_ms,
                    rate_limit,
                    ..Channel::new(destination)
                });
            }
        }
    }
    m.finish(r);
    a
}

/// `rate_limit: {max: 20, per: 1m}`.
fn read_rate_limit(r: &mut Reader<'_>, node: &Node, path: &str) -> RateLimit {
    let mut limit = RateLimit::default();
    let Some(mut m) = r.map(node, path) else {
        return limit;
    };
    if let Some(n) = m.get("max") {
        match r.u64(n, &format!("{path}.max")) {
            Some(0) => r.error_hint(
                n.loc,
                &format!("{path}.max"),
                "a rate limit of 0 would send nothing",
                "remove the channel to silence it",
            ),
            Some(v) => limit.max = u32::try_from(v).unwrap_or(u32::MAX),
            None => {}
        }
    }
    if let Some(n) = m.get("per") {
        match r.duration_ms(n, &format!("{path}.per")) {
            Some(0) => r.error_hint(
                n.loc,
                &format!("{path}.per"),
                "a rate limit window of 0 limits nothing",
                "use a duration such as `1m` or `1h`",
            ),
            Some(v) => limit.per_ms = v,
            None => {}
        }
    }
    m.finish(r);
    limit
}

fn read_ledger(r: &mut Reader<'_>, node: &Node) -> LedgerConfig {
    let mut l = LedgerConfig::default();
    let Some(mut m) = r.map(node, "ledger") else {
        return l;
    };
    if let Some(n) = m.get("path")
        && let Some(s) = r.string(n, "ledger.path")
    {
        if s.is_empty() || s.starts_with('/') || s.split(['/', '\\']).any(|seg| seg == "..") {
            r.error_hint(
                n.loc,
                "ledger.path",
                format!("`{s}` is not a path inside the repository"),
                "write a relative path like `ledger/container_ledger.jsonl`",
            );
        } else {
            l.path = s;
        }
    }
    if let Some(n) = m.get("ref")
        && let Some(s) = r.string(n, "ledger.ref")
    {
        if s.starts_with("refs/") {
            l.git_ref = s;
        } else {
            r.error_hint(
                n.loc,
                "ledger.ref",
                format!("`{s}` is not a full ref name"),
                "write a ref like `refs/heads/refinery/ledger`",
            );
        }
    }
    if let Some(n) = m.get("max_size")
        && let Some(s) = r.string(n, "ledger.max_size")
    {
        match crate::ledger::parse_size(&s) {
            Ok(0) => r.error_hint(
                n.loc,
                "ledger.max_size",
                "the ledger's maximum size must be at least 1 byte",
                crate::ledger::SIZE_HINT,
            ),
            Ok(bytes) => l.max_size = Some(bytes),
            Err(e) => r.error_hint(n.loc, "ledger.max_size", e, crate::ledger::SIZE_HINT),
        }
    }
    m.finish(r);
    l
}

fn read_secrets(r: &mut Reader<'_>, node: &Node) -> SecretsConfig {
    let mut s = SecretsConfig::default();
    let Some(mut m) = r.map(node, "secrets") else {
        return s;
    };
    if let Some(n) = m.get("sops_age_key_file") {
        s.sops_age_key_file = r
            .string(n, "secrets.sops_age_key_file")
            .filter(|v| !v.is_empty());
    }
    m.finish(r);
    s
}
