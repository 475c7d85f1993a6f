//! Cleanup through the port, against an engine that records every call: a read-only node gets
//! no write call at all; an enforcing one gets exactly one removal per safe-to-delete item. A
//! fake is used on purpose: the point is to count the calls a real engine would have received.

use std::collections::BTreeMap;

use refinery_core::inventory::{
    Class, EngineImage, EngineNetwork, EngineVolume, InventoryState, classify,
};
use refinery_core::manifest::Mode;
use refinery_core::testing::{NODE, Recorder, manifest, node, now, stray, ts};
use refinery_core::{ContainerState, Observed, Outcome};
use refinery_engine::inventory_actions::{cleanup, collect};

/// The engine of these tests: a stopped stray and a running one, three images (one in use), a
/// volume and a network nobody uses.
fn engine() -> Recorder {
    let mut stopped = stray("tmp-debug", "busybox:latest");
    stopped.state = ContainerState::Exited;
    let image = |id: &str, tag: &str, used_by: &[&str]| EngineImage {
        id: id.into(),
        tags: vec![tag.into()],
        digests: Vec::new(),
        size: Some(10),
        created: Some(ts("2024-01-01T00:00:00Z")),
        labels: BTreeMap::new(),
        used_by: used_by.iter().map(|u| (*u).to_owned()).collect(),
    };
    let mut engine = Recorder::default();
    engine.observed = Observed {
        containers: vec![stopped, stray("prod-api", "prod-api:1")],
        images: BTreeMap::new(),
    };
    engine.images = vec![
        image("sha256:1", "mcp/helper:latest", &[]),
        image("sha256:2", "prod-api:1", &["prod-api"]),
        image("sha256:3", "old:1", &[]),
    ];
    engine.volumes = vec![EngineVolume {
        name: "tmp-scratch".into(),
        size: None,
        created: None,
        labels: BTreeMap::new(),
        used_by: Vec::new(),
    }];
    engine.networks = vec![EngineNetwork {
        id: "n1".into(),
        name: "tmp-net".into(),
        created: None,
        labels: BTreeMap::new(),
        used_by: Vec::new(),
    }];
    engine
}

fn seed_manifest(mode: Mode) -> refinery_core::Manifest {
    let mut m = manifest(Vec::new());
    let mut n = node(NODE);
    n.mode = Some(mode);
    m.nodes = vec![n];
    m.inventory.protected = vec!["prod-*".into()];
    m.inventory.safe_to_delete = vec!["tmp-*".into(), "mcp/*".into()];
    m.inventory.cleanup.max_unused_image_age_ms = Some(14 * 24 * 3_600_000);
    m
}

#[tokio::test]
async fn cleanup_on_read_only_node_makes_no_write_call() {
    let engine = engine();
    let m = seed_manifest(Mode::ReadOnly);
    let collected = collect(&engine, None).await.expect("lists");
    let audit = classify(
        &m,
        NODE,
        collected.snapshot(),
        &InventoryState::default(),
        now(),
    );
    assert!(
        audit
            .items
            .iter()
            .filter(|i| i.class == Class::SafeToDelete)
            .count()
            >= 4,
        "{:#?}",
        audit.items
    );
    let removals = cleanup(&engine, &audit, &|_| {}).await;
    assert!(removals.is_empty());
    assert_eq!(engine.writes(), Vec::<String>::new());
}

#[tokio::test]
async fn cleanup_on_enforcing_node_removes_exactly_the_safe_set() {
    let engine = engine();
    let m = seed_manifest(Mode::Enforce);
    let collected = collect(&engine, None).await.expect("lists");
    let audit = classify(
        &m,
        NODE,
        collected.snapshot(),
        &InventoryState::default(),
        now(),
    );
    let removals = cleanup(&engine, &audit, &|_| {}).await;
    assert!(removals.iter().all(|r| r.outcome == Outcome::Removed));
    let container_id = refinery_core::testing::container_id("tmp-debug");
    assert_eq!(
        engine.writes(),
        vec![
            format!("remove {container_id}"),
            "remove_image mcp/helper:latest".to_owned(),
            "remove_image old:1".to_owned(),
            "remove_volume tmp-scratch".to_owned(),
            "remove_network n1".to_owned(),
        ]
    );
}
