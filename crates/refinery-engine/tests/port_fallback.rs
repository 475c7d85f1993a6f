//! `apply_plan`'s port fallback against an in-memory engine: the next fallback is tried in order,
//! every failed attempt is removed, the substitution and a container-held primary are labelled,
//! and a spent fallback list fails the resource.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use refinery_core::labels;
use refinery_core::runtime::RuntimeResult;
use refinery_core::testing::{self, image_info, manifest, observed_from_spec, spec};
use refinery_core::{
    ContainerRuntime, ContainerSpec, CreateRequest, EngineInfo, ImageDefaults, LabelSelector,
    Observed, ObservedContainer, Outcome, PortBinding, Protocol, PullProgress, RuntimeError,
};
use refinery_engine::{StepResult, apply_plan};

/// An engine whose host has `host_taken` ports held by other processes.
#[derive(Default)]
struct FakeEngine {
    host_taken: BTreeSet<u16>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next: u32,
    containers: Vec<(ObservedContainer, bool)>,
    creates: u32,
}

impl FakeEngine {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fake engine lock")
    }

    /// A running container, not Refinery's, publishing `port`.
    fn with_container_on(self, port: u16) -> Self {
        let mut s = spec("other");
        s.ports = vec![binding(port)];
        let mut o = observed_from_spec(&s, &ImageDefaults::default());
        o.id = "other-id".into();
        self.state().containers.push((o, true));
        self
    }
}

fn binding(port: u16) -> PortBinding {
    PortBinding {
        host_ip: String::new(),
        host_port: Some(port),
        container_port: 80,
        protocol: Protocol::Tcp,
    }
}

impl ContainerRuntime for FakeEngine {
    async fn ensure_network(&self, _net: &refinery_core::NetworkSpec) -> RuntimeResult<bool> {
        Ok(false)
    }

    async fn ensure_volume(&self, _vol: &refinery_core::VolumeSpec) -> RuntimeResult<bool> {
        Ok(false)
    }

    fn events(
        &self,
        _selector: Option<&LabelSelector>,
    ) -> impl futures_util::Stream<Item = RuntimeResult<refinery_core::EngineEvent>> + Send + 'static
    {
        futures_util::stream::empty()
    }

    async fn info(&self) -> RuntimeResult<EngineInfo> {
        Ok(EngineInfo {
            version: "fake".into(),
            api_version: "1.41".into(),
            endpoint: "fake://".into(),
        })
    }

    async fn observe(&self, _selector: Option<&LabelSelector>) -> RuntimeResult<Observed> {
        Ok(Observed {
            containers: self
                .state()
                .containers
                .iter()
                .map(|c| c.0.clone())
                .collect(),
            ..Observed::default()
        })
    }

    async fn inspect(&self, id: &str) -> RuntimeResult<ObservedContainer> {
        self.state()
            .containers
            .iter()
            .find(|c| c.0.id == id || c.0.name == id)
            .map(|c| c.0.clone())
            .ok_or(RuntimeError::NotFound { what: id.into() })
    }

    async fn create(&self, req: &CreateRequest) -> RuntimeResult<String> {
        let mut st = self.state();
        st.next += 1;
        st.creates += 1;
        let mut o = observed_from_spec(&req.spec, &ImageDefaults::default());
        o.id = format!("c{}", st.next);
        o.labels = req.labels.clone();
        st.containers.push((o.clone(), false));
        Ok(o.id)
    }

    async fn start(&self, id: &str) -> RuntimeResult<()> {
        let mut st = self.state();
        let running: BTreeSet<u16> = st
            .containers
            .iter()
            .filter(|c| c.1)
            .flat_map(|c| c.0.ports.iter().filter_map(|p| p.host_port))
            .collect();
        let Some(c) = st.containers.iter_mut().find(|c| c.0.id == id) else {
            return Err(RuntimeError::NotFound { what: id.into() });
        };
        for p in c.0.ports.iter().filter_map(|p| p.host_port) {
            if self.host_taken.contains(&p) || running.contains(&p) {
                return Err(RuntimeError::PortTaken { port: p });
            }
        }
        c.1 = true;
        Ok(())
    }

    async fn stop(&self, _id: &str, _timeout_secs: u32) -> RuntimeResult<()> {
        Ok(())
    }

    async fn restart(&self, _id: &str) -> RuntimeResult<()> {
        Ok(())
    }

    async fn unpause(&self, _id: &str) -> RuntimeResult<()> {
        Ok(())
    }

    async fn remove(&self, id: &str) -> RuntimeResult<()> {
        self.state().containers.retain(|c| c.0.id != id);
        Ok(())
    }

    async fn rename(&self, _id: &str, _new_name: &str) -> RuntimeResult<()> {
        Ok(())
    }

    async fn pull(
        &self,
        _image: &str,
        _progress: &(dyn Fn(PullProgress) + Send + Sync),
    ) -> RuntimeResult<()> {
        Ok(())
    }
}

fn web() -> ContainerSpec {
    let mut s = spec("web");
    s.ports = vec![binding(8085)];
    s.fallback_ports = BTreeMap::from([(8085, vec![8086, 8087])]);
    s
}

/// Creates `web` (missing) on `rt` through the plan, as `refinery apply` does.
async fn create_web(rt: &FakeEngine) -> StepResult {
    let m = manifest(vec![web()]);
    let mut observed = Observed::default();
    let image = web().image;
    observed.images.insert(
        labels::normalize_image_ref(&image),
        image_info(&image, &ImageDefaults::default()),
    );
    let eval = testing::Pass::default()
        .honor_grace(false)
        .run(&m, &observed);
    let mut results = apply_plan(
        rt,
        &m,
        &eval.plan.steps,
        &observed,
        testing::REVISION,
        &|_| {},
    )
    .await;
    assert_eq!(results.len(), 1);
    results.remove(0)
}

fn web_container(rt: &FakeEngine) -> Vec<ObservedContainer> {
    rt.state()
        .containers
        .iter()
        .filter(|c| c.0.name == "web")
        .map(|c| c.0.clone())
        .collect()
}

#[tokio::test]
async fn apply_free_primary_creates_as_declared() {
    let rt = FakeEngine::default();
    let r = create_web(&rt).await;
    assert_eq!(r.outcome, Outcome::Created);
    assert_eq!(r.message, None);
    let made = web_container(&rt);
    assert_eq!(made[0].ports[0].host_port, Some(8085));
    assert!(!made[0].labels.contains_key(labels::PORT_FALLBACK));
}

#[tokio::test]
async fn apply_taken_primary_and_first_fallback_uses_the_second() {
    let rt = FakeEngine {
        host_taken: BTreeSet::from([8085, 8086]),
        ..FakeEngine::default()
    };
    let r = create_web(&rt).await;
    assert_eq!(r.outcome, Outcome::Created);
    assert_eq!(
        r.message.as_deref(),
        Some("degraded: host port 8085 taken, using 8087")
    );
    let made = web_container(&rt);
    assert_eq!(made.len(), 1, "failed attempts are removed");
    assert_eq!(rt.state().creates, 3);
    assert_eq!(made[0].ports[0].host_port, Some(8087));
    assert_eq!(
        made[0]
            .labels
            .get(labels::PORT_FALLBACK)
            .map(String::as_str),
        Some("8085:8087")
    );
    // A host process held the primary, not a container.
    assert!(!made[0].labels.contains_key(labels::PORT_FALLBACK_HELD));
    // The spec hash is the declared spec's, not the substituted one's.
    assert_eq!(
        made[0].labels.get(labels::SPEC_HASH),
        Some(&labels::spec_hash(&web()))
    );
}

#[tokio::test]
async fn apply_primary_held_by_a_container_is_labelled_held() {
    let rt = FakeEngine::default().with_container_on(8085);
    let r = create_web(&rt).await;
    assert_eq!(r.outcome, Outcome::Created);
    let made = web_container(&rt);
    assert_eq!(made[0].ports[0].host_port, Some(8086));
    assert_eq!(
        made[0]
            .labels
            .get(labels::PORT_FALLBACK_HELD)
            .map(String::as_str),
        Some("8085")
    );
}

#[tokio::test]
async fn apply_every_fallback_taken_fails_and_leaves_nothing() {
    let rt = FakeEngine {
        host_taken: BTreeSet::from([8085, 8086, 8087]),
        ..FakeEngine::default()
    };
    let r = create_web(&rt).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(
        r.message.as_deref(),
        Some(
            "failed to bind host port 8085: it is already taken, and so are its fallback ports \
             8086, 8087"
        )
    );
    assert!(web_container(&rt).is_empty());
}

/// The engine's view of `web` degraded onto 8086, with the primary labelled held by a container
/// when `held`.
fn degraded_web(held: bool) -> Observed {
    let mut o = observed_from_spec(&web(), &ImageDefaults::default());
    o.ports[0].host_port = Some(8086);
    o.labels
        .insert(labels::PORT_FALLBACK.into(), "8085:8086".into());
    if held {
        o.labels
            .insert(labels::PORT_FALLBACK_HELD.into(), "8085".into());
    }
    Observed {
        containers: vec![o],
        ..Observed::default()
    }
}

#[tokio::test]
async fn free_primary_ports_container_list_needs_a_container_that_let_go() {
    use refinery_engine::{PortProbe, free_primary_ports};
    let m = manifest(vec![web()]);
    let probe = PortProbe::ContainerList;
    let free = |rt: FakeEngine, held: bool| {
        let m = &m;
        async move { free_primary_ports(&rt, m, testing::NODE, &degraded_web(held), probe).await }
    };
    // A container held the primary and none publishes it now: free.
    assert_eq!(
        free(FakeEngine::default(), true).await,
        BTreeSet::from([8085])
    );
    // A container still publishes it: taken.
    assert!(
        free(FakeEngine::default().with_container_on(8085), true)
            .await
            .is_empty()
    );
    // Something outside the engine held it: a remote engine never sees it come free.
    assert!(free(FakeEngine::default(), false).await.is_empty());
    // Nothing degraded: nothing to probe.
    let plain = Observed::default();
    assert!(
        free_primary_ports(&FakeEngine::default(), &m, testing::NODE, &plain, probe)
            .await
            .is_empty()
    );
}
