//! The nodes' container engines as the controller sees them: the [`ContainerRuntime`] port of
//! each node, and how a node's client is made. The real adapter (Docker: `unix://`, `tcp://`
//! with TLS files, `ssh://`, registry credentials) is [`crate::node_engines`]; tests use the
//! fake runtime of `refinery_core::testing`.

use refinery_core::manifest::NodeSpec;
use refinery_core::{ContainerRuntime, RuntimeError};

/// One node's engine client as the loop uses it: the [`ContainerRuntime`] port, cheap to clone
/// (one client per node is kept across passes and handed to its event follower), and the little
/// the loop needs of a client beyond the port.
pub trait Engine: ContainerRuntime + Clone + Send + Sync + 'static {
    /// The endpoint the client talks to (`unix:///var/run/docker.sock`, `tcp://…`, `ssh://…`):
    /// whether content-tracked copies and host ports can be looked at from this process.
    fn endpoint(&self) -> &str;

    /// Forgets what the client cached of containers, so the next observation inspects every
    /// container afresh (after engine events were dropped).
    fn forget_inspections(&self) {}
}

/// Makes the engine client of a node; nothing is contacted yet. An error is bad input (a TLS file
/// that cannot be read, an endpoint that cannot be parsed): the node is reported unreachable
/// with it.
pub trait NodeConnector<R>: Send + Sync {
    fn connect(&self, node: &NodeSpec) -> Result<R, RuntimeError>;
}

impl<R, F> NodeConnector<R> for F
where
    F: Fn(&NodeSpec) -> Result<R, RuntimeError> + Send + Sync,
{
    fn connect(&self, node: &NodeSpec) -> Result<R, RuntimeError> {
        self(node)
    }
}
