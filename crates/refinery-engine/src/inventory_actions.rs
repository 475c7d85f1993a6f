//! Inventory on one node: collect what the engine holds, and carry out a cleanup. Classification
//! is the core's ([`refinery_core::inventory::classify`]); this only talks to the engine.

use refinery_core::inventory::{
    EngineImage, EngineNetwork, EngineVolume, Item, Kind, NodeAudit, Snapshot, cleanup_set,
};
use refinery_core::runtime::RuntimeResult;
use refinery_core::{ContainerRuntime, LabelSelector, Observed, Outcome};
use serde::Serialize;

/// Everything one node's engine holds, as listed (never written to).
#[derive(Debug, Clone, Default)]
pub struct Collected {
    /// Containers the selector shows.
    pub observed: Observed,
    pub images: Vec<EngineImage>,
    pub volumes: Vec<EngineVolume>,
    pub networks: Vec<EngineNetwork>,
}

impl Collected {
    #[must_use]
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            containers: &self.observed.containers,
            images: &self.images,
            volumes: &self.volumes,
            networks: &self.networks,
        }
    }
}

/// Lists containers, images, volumes and networks carrying `selector`'s label (everything
/// without one). Read calls only.
pub async fn collect<R: ContainerRuntime>(
    engine: &R,
    selector: Option<&LabelSelector>,
) -> RuntimeResult<Collected> {
    let observed = engine.observe(selector).await?;
    let images = engine.list_images(selector).await?;
    let volumes = engine.list_volumes(selector).await?;
    let networks = engine.list_networks(selector).await?;
    Ok(Collected {
        observed,
        images,
        volumes,
        networks,
    })
}

/// What happened to one item of a cleanup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removal {
    pub item: Item,
    /// `removed` or `failed`.
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Removes exactly [`cleanup_set`]`(audit)`, in its order (containers, images, volumes,
/// networks); nothing at all on a read-only node. Images and volumes are never removed by force,
/// so one that came into use since the audit fails rather than going. A failure does not stop
/// the rest. `on_done` sees each result as it happens (progress bars).
pub async fn cleanup<R: ContainerRuntime>(
    engine: &R,
    audit: &NodeAudit,
    on_done: &(dyn Fn(&Removal) + Send + Sync),
) -> Vec<Removal> {
    let mut out = Vec::new();
    for item in cleanup_set(audit) {
        let target = item.target();
        let result = match item.kind {
            Kind::Container => engine.remove(target).await,
            Kind::Image => engine.remove_image(target).await,
            Kind::Volume => engine.remove_volume(target).await,
            Kind::Network => engine.remove_network(target).await,
        };
        let removal = match result {
            Ok(()) => Removal {
                item: item.clone(),
                outcome: Outcome::Removed,
                message: None,
            },
            Err(e) => Removal {
                item: item.clone(),
                outcome: Outcome::Failed,
                message: Some(e.to_string()),
            },
        };
        on_done(&removal);
        out.push(removal);
    }
    out
}
