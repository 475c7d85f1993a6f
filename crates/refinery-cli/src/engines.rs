//! One engine client per node.

use refinery_core::manifest::NodeSpec;
use refinery_core::{Manifest, RuntimeError};
use refinery_docker::DockerRuntime;

use crate::error::CliError;

/// A node selected for this command and its engine (or why it has none).
pub struct NodeEngine<'m> {
    pub node: &'m NodeSpec,
    pub engine: Result<DockerRuntime, RuntimeError>,
}

/// The nodes a command works on: `--node` filters, disabled nodes are skipped.
pub fn select<'m>(
    manifest: &'m Manifest,
    only: &[String],
) -> Result<Vec<NodeEngine<'m>>, CliError> {
    for name in only {
        if manifest.node(name).is_none() {
            return Err(CliError::UnknownNode {
                node: name.clone(),
                known: manifest.nodes.iter().map(|n| n.name.clone()).collect(),
            });
        }
    }
    Ok(manifest
        .nodes
        .iter()
        .filter(|n| n.docker_enabled)
        .filter(|n| only.is_empty() || only.contains(&n.name))
        .map(|node| NodeEngine {
            node,
            engine: match &node.docker {
                Some(ep) => DockerRuntime::connect(ep),
                None => DockerRuntime::from_env(),
            },
        })
        .collect())
}

/// The id of the container this process runs in, if any (never acted on).
#[must_use]
pub fn self_container_id() -> Option<String> {
    if let Ok(id) = std::env::var("REFINERY_SELF_CONTAINER") {
        return Some(id);
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        let idx = line.find("/containers/")?;
        let rest = &line[idx + "/containers/".len()..];
        let id: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        (id.len() == 64).then_some(id)
    })
}
