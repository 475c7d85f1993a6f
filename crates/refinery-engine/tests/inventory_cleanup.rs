//! Cleanup through the port, against an engine that records every call: a read-only node gets
//! no write call at all; an enforcing one gets exactly one removal per safe-to-delete item. A
//! fake is used on purpose: the point is to count the calls a real engine would have received.

use std::collections::BTreeMap;
use std::sync::Mutex;

use refinery_core::inventory::{
    Class, EngineImage, EngineNetwork, EngineVolume, InventoryState, classify,
};
use refinery_core::manifest::Mode;
use refinery_core::runtime::RuntimeResult;
use refinery_core::testing::{NODE, manifest, node, now, stray, ts};
use refinery_core::{
    ContainerRuntime, ContainerState, CreateRequest, EngineEvent, EngineInfo, LabelSelector,
    Observed, ObservedContainer, Outcome, PullProgress, RuntimeError,
};
use refinery_engine::inventory::{cleanup, collect};

#[derive(Default)]
struct Recorder {
    writes: Mutex<Vec<String>>,
}

impl Recorder {
    fn write(&self, what: String) -> RuntimeResult<()> {
        if let Ok(mut w) = self.writes.lock() {
            w.push(what);
        }
        Ok(())
    }

    fn writes(&self) -> Vec<String> {
        self.writes.lock().map(|w| w.clone()).unwrap_or_default()
    }
}

impl ContainerRuntime for Recorder {
    async fn info(&self) -> RuntimeResult<EngineInfo> {
        Ok(EngineInfo {
            version: "recorder".into(),
            api_version: "1.41".into(),
            endpoint: "recorder://".into(),
        })
    }
    async fn observe(&self, _: Option<&LabelSelector>) -> RuntimeResult<Observed> {
        let mut stopped = stray("tmp-debug", "busybox:latest");
        stopped.state = ContainerState::Exited;
        Ok(Observed {
            containers: vec![stopped, stray("prod-api", "prod-api:1")],
            images: BTreeMap::new(),
        })
    }
    async fn inspect(&self, id: &str) -> RuntimeResult<ObservedContainer> {
        Err(RuntimeError::NotFound { what: id.into() })
    }
    async fn create(&self, req: &CreateRequest) -> RuntimeResult<String> {
        self.write(format!("create {}", req.name))?;
        Ok("new".into())
    }
    async fn start(&self, id: &str) -> RuntimeResult<()> {
        self.write(format!("start {id}"))
    }
    async fn stop(&self, id: &str, _: u32) -> RuntimeResult<()> {
        self.write(format!("stop {id}"))
    }
    async fn restart(&self, id: &str) -> RuntimeResult<()> {
        self.write(format!("restart {id}"))
    }
    async fn unpause(&self, id: &str) -> RuntimeResult<()> {
        self.write(format!("unpause {id}"))
    }
    async fn remove(&self, id: &str) -> RuntimeResult<()> {
        self.write(format!("remove {id}"))
    }
    async fn rename(&self, id: &str, _: &str) -> RuntimeResult<()> {
        self.write(format!("rename {id}"))
    }
    fn events(
        &self,
        _: Option<&LabelSelector>,
    ) -> impl futures_util::Stream<Item = RuntimeResult<EngineEvent>> + Send + 'static {
        futures_util::stream::empty()
    }
    async fn pull(
        &self,
        image: &str,
        _: &(dyn Fn(PullProgress) + Send + Sync),
    ) -> RuntimeResult<()> {
        self.write(format!("pull {image}"))
    }
    async fn list_images(&self, _: Option<&LabelSelector>) -> RuntimeResult<Vec<EngineImage>> {
        let image = |id: &str, tag: &str, used_by: &[&str]| EngineImage {
            id: id.into(),
            tags: vec![tag.into()],
            digests: Vec::new(),
            size: Some(10),
            created: Some(ts("2024-01-01T00:00:00Z")),
            labels: BTreeMap::new(),
            used_by: used_by.iter().map(|u| (*u).to_owned()).collect(),
        };
        Ok(vec![
            image("sha256:1", "mcp/helper:latest", &[]),
            image("sha256:2", "prod-api:1", &["prod-api"]),
            image("sha256:3", "old:1", &[]),
        ])
    }
    async fn list_volumes(&self, _: Option<&LabelSelector>) -> RuntimeResult<Vec<EngineVolume>> {
        Ok(vec![EngineVolume {
            name: "tmp-scratch".into(),
            size: None,
            created: None,
            labels: BTreeMap::new(),
            used_by: Vec::new(),
        }])
    }
    async fn list_networks(&self, _: Option<&LabelSelector>) -> RuntimeResult<Vec<EngineNetwork>> {
        Ok(vec![EngineNetwork {
            id: "n1".into(),
            name: "tmp-net".into(),
            created: None,
            labels: BTreeMap::new(),
            used_by: Vec::new(),
        }])
    }
    async fn remove_image(&self, reference: &str) -> RuntimeResult<()> {
        self.write(format!("remove_image {reference}"))
    }
    async fn remove_volume(&self, name: &str) -> RuntimeResult<()> {
        self.write(format!("remove_volume {name}"))
    }
    async fn remove_network(&self, id: &str) -> RuntimeResult<()> {
        self.write(format!("remove_network {id}"))
    }
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
    let engine = Recorder::default();
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
    let engine = Recorder::default();
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
