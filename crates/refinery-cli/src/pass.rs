//! Observe and evaluate every selected node concurrently: the shared start of plan, apply, status.

use std::collections::BTreeMap;

use refinery_core::DiffContext;
use refinery_core::manifest::NodeSpec;
use refinery_core::{ContainerRuntime, Observed, RuntimeError};
use refinery_docker::DockerRuntime;
use refinery_engine::{Evaluation, PortProbe, evaluate_in, free_primary_ports, node_selector};

use crate::desired::Desired;
use crate::engines::{self, NodeEngine};
use crate::error::CliError;
use crate::settings::Settings;

/// One node after observation.
pub struct NodePass<'m> {
    pub node: &'m NodeSpec,
    pub engine: Option<DockerRuntime>,
    pub result: Result<(Observed, Evaluation), RuntimeError>,
}

/// Observes every selected node at once and evaluates each. Grace periods are not honoured: a
/// command run by hand acts at once.
pub async fn run<'m>(
    desired: &'m Desired,
    settings: &Settings,
) -> Result<Vec<NodePass<'m>>, CliError> {
    let manifest = &desired.manifest;
    let selected = engines::select(manifest, &settings.nodes)?;
    let self_id = engines::self_container_id();
    let first_seen = BTreeMap::new();
    let futures = selected.into_iter().map(|NodeEngine { node, engine }| {
        let self_id = self_id.clone();
        let first_seen = &first_seen;
        async move {
            let engine = match engine {
                Ok(e) => e,
                Err(e) => {
                    return NodePass {
                        node,
                        engine: None,
                        result: Err(e),
                    };
                }
            };
            let result = async {
                engine.info().await?;
                let observed = engine.observe(node_selector(manifest)).await?;
                // Degraded containers (on a fallback host port) move back once the primary is free.
                let probe = PortProbe::for_endpoint(engine.endpoint(), self_id.is_some());
                let free =
                    free_primary_ports(&engine, manifest, &node.name, &observed, probe).await;
                let ctx = DiffContext::for_node(manifest, &node.name).with_free_ports(free);
                let eval = evaluate_in(
                    &ctx,
                    manifest,
                    &observed,
                    settings.now,
                    first_seen,
                    false,
                    self_id.as_deref(),
                );
                Ok((observed, eval))
            }
            .await;
            NodePass {
                node,
                engine: Some(engine),
                result,
            }
        }
    });
    Ok(futures_util::future::join_all(futures).await)
}
