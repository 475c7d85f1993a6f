//! The order `depends_on` (and the containers a service names) imposes on starting a stack's
//! containers, for `plan` to show.

use std::collections::{BTreeMap, BTreeSet};

use crate::manifest::Manifest;

/// The containers named in `containers` (engine names, on `node`), in start order: each layer
/// starts once every container of the layers before it is up (and healthy, where a dependant
/// asks for it). Empty when none of them depends on another of them.
#[must_use]
pub fn start_order(manifest: &Manifest, node: &str, containers: &[&str]) -> Vec<Vec<String>> {
    let wanted: BTreeSet<&str> = containers.iter().copied().collect();
    let deps: BTreeMap<&str, BTreeSet<&str>> = manifest
        .containers_on(node)
        .into_iter()
        .filter(|c| wanted.contains(c.name.as_str()))
        .map(|c| {
            let on: BTreeSet<&str> = c
                .stack
                .iter()
                .flat_map(|m| m.depends_on.iter().map(|d| d.container.as_str()))
                .filter(|d| wanted.contains(d))
                .collect();
            (c.name.as_str(), on)
        })
        .collect();
    if deps.values().all(BTreeSet::is_empty) {
        return Vec::new();
    }
    let mut layers: Vec<Vec<String>> = Vec::new();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    while done.len() < deps.len() {
        let layer: Vec<&str> = deps
            .iter()
            .filter(|(n, on)| !done.contains(*n) && on.iter().all(|d| done.contains(d)))
            .map(|(n, _)| *n)
            .collect();
        // A cycle is refused when the stack loads; stop rather than loop should one remain.
        if layer.is_empty() {
            break;
        }
        done.extend(layer.iter().copied());
        layers.push(layer.into_iter().map(str::to_owned).collect());
    }
    layers
}
