//! Reading a manifest file into a validated [`Manifest`], every problem reported at once: the
//! top level, each section handed to its own reader.

use super::alerting::read_alerting;
use super::commit_status::read_commit_status;
use super::config::read_config;
use super::containers::read_containers;
use super::drift_rules::read_drift_rules;
use super::fields::read_ignore_list;
use super::inventory::read_inventory;
use super::kubernetes::read_kubernetes;
use super::ledger::read_ledger;
use super::maintenance_windows::read_windows;
use super::nodes::{NodeNames, has_items, implicit_node, read_nodes};
use super::reader::Reader;
use super::registries::read_registries;
use super::secrets::read_secrets;
use super::stacks::read_stacks;
use super::{Issue, Manifest, ManifestError};
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
    let commit_status = top
        .get("commit_status")
        .and_then(|n| read_commit_status(r, n));
    let ledger = top
        .get("ledger")
        .map(|n| read_ledger(r, n))
        .unwrap_or_default();
    let secrets = top
        .get("secrets")
        .map(|n| read_secrets(r, n))
        .unwrap_or_default();
    let (registries, registry_env) = top
        .get("registries")
        .map(|n| read_registries(r, n))
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
    let declares_something =
        containers_node.is_some_and(has_items) || !stacks.is_empty() || !kubernetes.is_empty();
    top.finish(r);
    // Reported only when nothing else is wrong: a manifest whose sections failed to read is
    // refused already, and saying it declares nothing as well would mislead.
    if !declares_something && !allow_empty && r.issues.is_empty() {
        let loc = top_key_loc(root, "containers").unwrap_or(root.loc);
        r.error_hint(
            loc,
            "containers",
            "the manifest declares nothing: no containers, stacks or kubernetes sources",
            "declare what should run under `containers:`, `stacks:` or `kubernetes:`; to enforce an empty desired state on purpose, set `allow_empty: true`",
        );
    }
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
        commit_status,
        ledger,
        secrets,
        registries,
        registry_env,
        allow_empty,
        ignore_differences,
        env_files,
    })
}

/// Where a top-level key is written, if it is.
fn top_key_loc(root: &Node, key: &str) -> Option<Loc> {
    match &root.value {
        yaml::Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.scalar() == Some(key))
            .map(|(k, _)| k.loc),
        _ => None,
    }
}
