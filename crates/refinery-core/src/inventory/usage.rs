//! What Refinery last saw in use, so an image's or volume's unused age counts from then rather
//! than from its creation. Kept by the CLI in `inventory-state.json` in the state directory.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::engine::{EngineImage, EngineVolume};
use super::kind::Kind;
use crate::resource_id::ResourceId;

/// Version of the persisted form; readers refuse newer ones.
pub const INVENTORY_STATE_VERSION: u32 = 1;

/// The persisted inventory state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryState {
    /// Schema version (`v`, as in the daemon's `state.json`).
    #[serde(rename = "v")]
    pub version: u32,
    /// `docker/<node>/image/<image id>` or `docker/<node>/volume/<name>` → last seen in use.
    #[serde(default)]
    pub last_in_use: BTreeMap<String, Timestamp>,
    /// When the daemon last ran the scheduled audit, per node.
    #[serde(default)]
    pub last_scheduled: BTreeMap<String, Timestamp>,
}

impl Default for InventoryState {
    fn default() -> Self {
        InventoryState {
            version: INVENTORY_STATE_VERSION,
            last_in_use: BTreeMap::new(),
            last_scheduled: BTreeMap::new(),
        }
    }
}

fn key(node: &str, kind: Kind, name: &str) -> String {
    ResourceId::docker(node, kind, name).to_string()
}

impl InventoryState {
    /// When `name` (an image id or a volume name) was last seen in use on `node`.
    #[must_use]
    pub fn last_in_use(&self, node: &str, kind: Kind, name: &str) -> Option<Timestamp> {
        self.last_in_use.get(&key(node, kind, name)).copied()
    }

    /// Marks what is in use now as seen at `now`, and forgets images and volumes of `node` that
    /// are gone.
    pub fn record(
        &mut self,
        node: &str,
        images: &[EngineImage],
        volumes: &[EngineVolume],
        now: Timestamp,
    ) {
        let present: std::collections::BTreeSet<String> = images
            .iter()
            .map(|i| key(node, Kind::Image, &i.id))
            .chain(volumes.iter().map(|v| key(node, Kind::Volume, &v.name)))
            .collect();
        let prefix = format!("docker/{node}/");
        self.last_in_use
            .retain(|k, _| !k.starts_with(&prefix) || present.contains(k));
        for i in images.iter().filter(|i| !i.used_by.is_empty()) {
            self.last_in_use.insert(key(node, Kind::Image, &i.id), now);
        }
        for v in volumes.iter().filter(|v| !v.used_by.is_empty()) {
            self.last_in_use
                .insert(key(node, Kind::Volume, &v.name), now);
        }
    }
}
