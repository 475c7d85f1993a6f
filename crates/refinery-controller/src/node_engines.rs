//! The Docker adapter of the [`Engine`] port: one `DockerRuntime` client per node (`docker:`
//! `unix://`, `tcp://` with the node's `tls:` files, `ssh://`; else `DOCKER_HOST`), sending this
//! process's registry credentials with its pulls. Also the node selection every command shares
//! (`--node`, `--shard`).

use std::path::Path;

use refinery_core::manifest::NodeSpec;
use refinery_core::{Manifest, RuntimeError};
use refinery_docker::{DockerRuntime, TlsFiles};

use crate::error::ControllerError;
use crate::ports::{Engine, NodeConnector};

impl Engine for DockerRuntime {
    fn endpoint(&self) -> &str {
        DockerRuntime::endpoint(self)
    }

    fn forget_inspections(&self) {
        DockerRuntime::forget_inspections(self);
    }
}

/// Makes Docker clients for the nodes of the repository at `repo` (their `tls:` paths are
/// relative to it): what `refinery run` gives the controller.
#[derive(Debug, Clone)]
pub struct DockerConnector {
    repo: std::path::PathBuf,
}

impl DockerConnector {
    #[must_use]
    pub fn new(repo: &Path) -> DockerConnector {
        DockerConnector {
            repo: repo.to_path_buf(),
        }
    }
}

impl NodeConnector<DockerRuntime> for DockerConnector {
    fn connect(&self, node: &NodeSpec) -> Result<DockerRuntime, RuntimeError> {
        engine_in(node, &self.repo)
    }
}

/// A node selected for this command and its engine (or why it has none).
pub struct NodeEngine<'m> {
    pub node: &'m NodeSpec,
    pub engine: Result<DockerRuntime, RuntimeError>,
}

/// The nodes a command works on, each with its engine client (`tls:` paths relative to
/// `repo`).
pub fn select<'m>(
    manifest: &'m Manifest,
    only: &[String],
    repo: &Path,
) -> Result<Vec<NodeEngine<'m>>, ControllerError> {
    let nodes = selected_nodes(manifest, only)?;
    // A missing or mismatched TLS file is bad input, not an unreachable engine: name it and stop
    // before any node is contacted.
    for node in &nodes {
        if let Some(files) = tls_files(node, repo) {
            files.check().map_err(|message| ControllerError::BadTls {
                node: node.name.clone(),
                message,
            })?;
        }
    }
    Ok(nodes
        .into_iter()
        .map(|node| NodeEngine {
            node,
            engine: engine_in(node, repo),
        })
        .collect())
}

/// The TLS files of a `tcp://` node, relative to `repo`; `None` for any other endpoint.
fn tls_files(node: &NodeSpec, repo: &Path) -> Option<TlsFiles> {
    let ep = node.docker.as_ref()?;
    if !ep.trim().starts_with("tcp://") {
        return None;
    }
    node.tls.as_ref().map(|t| TlsFiles {
        ca: repo.join(&t.ca),
        cert: repo.join(&t.cert),
        key: repo.join(&t.key),
    })
}

/// The nodes a command works on: `--node` filters, disabled nodes are skipped.
pub fn selected_nodes<'m>(
    manifest: &'m Manifest,
    only: &[String],
) -> Result<Vec<&'m NodeSpec>, ControllerError> {
    for name in only {
        if manifest.node(name).is_none() {
            return Err(ControllerError::UnknownNode {
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
        .collect())
}

/// Whether `--shard` (if any) owns node `name`.
#[must_use]
pub fn in_shard(shard: Option<refinery_core::Shard>, name: &str) -> bool {
    shard.is_none_or(|s| s.owns(name))
}

/// A client for a node's engine (`docker:`, else `DOCKER_HOST`); nothing is contacted yet.
/// Relative `tls:` paths are taken from the current directory; see [`engine_in`].
#[allow(dead_code)] // callers use `engine_in`; kept for code that has no repository at hand
pub fn engine_for(node: &NodeSpec) -> Result<DockerRuntime, RuntimeError> {
    engine_in(node, Path::new("."))
}

/// A client for a node's engine, `tls:` paths relative to `repo` (the repository's work tree).
/// TLS files are read and checked here, so a missing or mismatched one fails before anything is
/// contacted; `tls` beside an endpoint other than `tcp://` is unused (validation warns).
pub fn engine_in(node: &NodeSpec, repo: &Path) -> Result<DockerRuntime, RuntimeError> {
    let rt = match &node.docker {
        Some(ep) => DockerRuntime::connect_with_tls(ep, tls_files(node, repo).as_ref()),
        None => DockerRuntime::from_env(),
    }?;
    // Every node pulls through its own engine with this process's registry credentials.
    Ok(rt.with_registry_auth(crate::registries::auth()))
}

/// The id of the container this process runs in, if any (never acted on).
#[must_use]
pub fn self_container_id() -> Option<String> {
    if let Ok(id) = std::env::var("REFINERY_SELF_CONTAINER") {
        return Some(id);
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    container_id_from_mountinfo(&info)
}

/// Inside a container the engine bind-mounts `/var/lib/docker/containers/<id>/hostname` on
/// `/etc/hostname`. Only that mount counts: a host's own mount table lists other containers' paths
/// (their `shm` mounts), which must never make some other container "refinery's own".
fn container_id_from_mountinfo(info: &str) -> Option<String> {
    info.lines().find_map(|line| {
        let mut fields = line.split(' ');
        let root = fields.nth(3)?;
        let mount_point = fields.next()?;
        if mount_point != "/etc/hostname" {
            return None;
        }
        let rest = &root[root.find("/containers/")? + "/containers/".len()..];
        let id: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        (id.len() == 64).then_some(id)
    })
}

#[cfg(test)]
mod tests {
    use super::container_id_from_mountinfo;

    const ID: &str = "4f1c0a3b2d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8";

    #[test]
    fn self_id_inside_a_container_is_read_from_the_hostname_mount() {
        let info = format!(
            "612 600 254:1 /var/lib/docker/containers/{ID}/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw\n"
        );
        assert_eq!(container_id_from_mountinfo(&info).as_deref(), Some(ID));
    }

    #[test]
    fn self_id_on_a_host_ignores_other_containers_shm_mounts() {
        let info = format!(
            "1086 29 0:123 / /var/lib/docker/containers/{ID}/mounts/shm rw,nosuid - tmpfs shm rw\n"
        );
        assert_eq!(container_id_from_mountinfo(&info), None);
    }
}
