//! `nodes:`: the engines Refinery keeps, and the `node:`/`nodes:` references of containers,
//! stacks and alert channels to them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::config::{Mode, read_mode};
use super::fields::{list_of, name_ok, read_name};
use super::reader::{MapView, Reader};
use crate::suggestion::suggest;
use crate::yaml::{self, Loc, Node};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsFiles {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

/// A machine whose engine Refinery keeps honest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeSpec {
    pub name: String,
    pub role: Option<String>,
    pub hostname: Option<String>,
    /// Engine endpoint; `None` means `DOCKER_HOST`, else the local socket.
    pub docker: Option<String>,
    pub tls: Option<TlsFiles>,
    pub docker_enabled: bool,
    pub k8s_enabled: bool,
    pub kube_context: Option<String>,
    /// Per-node override of `config.mode`.
    pub mode: Option<Mode>,
}

impl NodeSpec {
    /// A node on the default engine (`DOCKER_HOST`, else the local socket), every option at its
    /// default: what a manifest without `nodes:` gets.
    #[must_use]
    pub fn local(name: impl Into<String>) -> Self {
        NodeSpec {
            name: name.into(),
            role: None,
            hostname: None,
            docker: None,
            tls: None,
            docker_enabled: true,
            k8s_enabled: false,
            kube_context: None,
            mode: None,
        }
    }
}

/// The node name used when a manifest declares none.
pub const DEFAULT_NODE: &str = "local";

/// The declared node names, and whether they are the implicit one (no `nodes:` in the manifest).
pub(super) struct NodeNames {
    pub(super) names: Vec<String>,
    pub(super) implicit: bool,
}

/// Whether a `nodes:` value declares anything (an empty list or null declares nothing).
pub(super) fn has_items(node: &Node) -> bool {
    match &node.value {
        yaml::Value::Seq(items) => !items.is_empty(),
        _ => !node.is_null(),
    }
}

/// The name of the implicit node of a manifest without `nodes:`: `local`, or the one node name its
/// containers and stacks refer to (seed 000 writes `node: lyra` without declaring `lyra`). When they
/// refer to several, it stays `local` and each reference is reported as undeclared.
pub(super) fn implicit_node(
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

pub(super) fn read_nodes(r: &mut Reader<'_>, node: &Node) -> Vec<NodeSpec> {
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
pub(super) fn read_node_refs(
    r: &mut Reader<'_>,
    m: &mut MapView<'_>,
    nodes: &NodeNames,
) -> Vec<String> {
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
