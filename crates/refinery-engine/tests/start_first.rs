//! `update_order: start-first` against an in-memory engine on paused time: the order of the
//! engine calls (new one created off its networks, up, joined, then the old one taken off,
//! stopped, removed, the new one renamed), the health gate and its deadline, the fallback to
//! stop-first for a fixed host port, and the recovery of an interrupted start-first replacement.

use std::sync::Mutex;

use refinery_core::runtime::RuntimeResult;
use refinery_core::testing::{self, manifest, observed_from_spec, spec};
use refinery_core::{
    ContainerRuntime, ContainerSpec, ContainerState, CreateRequest, DriftKind, EngineInfo, Health,
    ImageDefaults, LabelSelector, NetworkAttachment, Observed, ObservedContainer, Outcome,
    PortBinding, Protocol, PullProgress, ResourceId, RuntimeError, Step, StepKind, UpdateOrder,
};
use refinery_engine::{Recovered, START_FIRST_SETTLE, StepResult, apply_plan, recover_interrupted};
use tokio::time::{Duration, Instant};

/// An engine that keeps containers in memory and records every write as a line. A container
/// it creates reports `health` once started.
struct FakeEngine {
    health: Health,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next: u32,
    containers: Vec<ObservedContainer>,
    calls: Vec<String>,
}

impl FakeEngine {
    fn new(health: Health, containers: Vec<ObservedContainer>) -> FakeEngine {
        FakeEngine {
            health,
            state: Mutex::new(State {
                containers,
                ..State::default()
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fake engine lock")
    }

    fn calls(&self) -> Vec<String> {
        self.state().calls.clone()
    }

    fn names(&self) -> Vec<(String, ContainerState)> {
        self.state()
            .containers
            .iter()
            .map(|c| (c.name.clone(), c.state))
            .collect()
    }

    fn call(&self, line: String) {
        self.state().calls.push(line);
    }

    fn with<T>(&self, id: &str, f: impl FnOnce(&mut ObservedContainer) -> T) -> RuntimeResult<T> {
        let mut st = self.state();
        let c = st
            .containers
            .iter_mut()
            .find(|c| c.id == id || c.name == id)
            .ok_or(RuntimeError::NotFound { what: id.into() })?;
        Ok(f(c))
    }

    fn name_of(&self, id: &str) -> String {
        self.with(id, |c| c.name.clone())
            .unwrap_or_else(|_| id.to_owned())
    }
}

impl ContainerRuntime for FakeEngine {
    async fn info(&self) -> RuntimeResult<EngineInfo> {
        Ok(EngineInfo {
            version: "fake".into(),
            api_version: "1.41".into(),
            endpoint: "fake://".into(),
        })
    }

    async fn observe(&self, _: Option<&LabelSelector>) -> RuntimeResult<Observed> {
        Ok(Observed {
            containers: self.state().containers.clone(),
            ..Observed::default()
        })
    }

    async fn inspect(&self, id: &str) -> RuntimeResult<ObservedContainer> {
        self.with(id, |c| c.clone())
    }

    async fn create(&self, req: &CreateRequest) -> RuntimeResult<String> {
        let mut st = self.state();
        st.next += 1;
        let mut o = observed_from_spec(&req.spec, &ImageDefaults::default());
        o.id = format!("c{}", st.next);
        o.name.clone_from(&req.name);
        o.state = ContainerState::Created;
        o.health = Health::None;
        st.calls.push(format!("create {}", req.name));
        st.containers.push(o.clone());
        Ok(o.id)
    }

    async fn start(&self, id: &str) -> RuntimeResult<()> {
        let health = self.health;
        let name = self.with(id, |c| {
            if c.state != ContainerState::Running {
                c.state = ContainerState::Running;
                c.started_at = Some("2026-12-07T00:00:00Z".into());
                if c.id.starts_with('c') {
                    c.health = health;
                }
            }
            c.name.clone()
        })?;
        self.call(format!("start {name}"));
        Ok(())
    }

    async fn stop(&self, id: &str, _: u32) -> RuntimeResult<()> {
        let name = self.with(id, |c| {
            c.state = ContainerState::Exited;
            c.name.clone()
        })?;
        self.call(format!("stop {name}"));
        Ok(())
    }

    async fn restart(&self, id: &str) -> RuntimeResult<()> {
        self.call(format!("restart {id}"));
        Ok(())
    }

    async fn unpause(&self, id: &str) -> RuntimeResult<()> {
        self.call(format!("unpause {id}"));
        Ok(())
    }

    async fn remove(&self, id: &str) -> RuntimeResult<()> {
        let name = self.name_of(id);
        self.state()
            .containers
            .retain(|c| c.id != id && c.name != id);
        self.call(format!("remove {name}"));
        Ok(())
    }

    async fn rename(&self, id: &str, new_name: &str) -> RuntimeResult<()> {
        let old = self.with(id, |c| std::mem::replace(&mut c.name, new_name.to_owned()))?;
        self.call(format!("rename {old} {new_name}"));
        Ok(())
    }

    async fn connect(&self, id: &str, _spec: &ContainerSpec) -> RuntimeResult<()> {
        let name = self.name_of(id);
        self.call(format!("connect {name}"));
        Ok(())
    }

    async fn disconnect(&self, id: &str, network: &str) -> RuntimeResult<()> {
        let name = self.name_of(id);
        self.call(format!("disconnect {name} {network}"));
        Ok(())
    }

    fn events(
        &self,
        _: Option<&LabelSelector>,
    ) -> impl futures_util::Stream<Item = RuntimeResult<refinery_core::EngineEvent>> + Send + 'static
    {
        futures_util::stream::empty()
    }

    async fn pull(&self, _: &str, _: &(dyn Fn(PullProgress) + Send + Sync)) -> RuntimeResult<()> {
        Ok(())
    }
}

/// `web` on network `front` with alias `www`, replaced start-first.
fn web() -> ContainerSpec {
    let mut s = spec("web");
    s.options.networks = vec![NetworkAttachment {
        name: "front".into(),
        aliases: vec!["www".into()],
        ..NetworkAttachment::default()
    }];
    s.options.extra = refinery_core::ExtraOptions {
        update_order: Some(UpdateOrder::StartFirst),
        ..Default::default()
    }
    .boxed();
    s
}

/// The running container `spec` was before the change: id `old`.
fn old_container(spec: &ContainerSpec) -> ObservedContainer {
    let mut o = observed_from_spec(spec, &ImageDefaults::default());
    o.id = "old".into();
    o.state = ContainerState::Running;
    o
}

/// Recreates `spec` over the container `old` through `apply_plan` (a config drift), with
/// `config.health_deadline: 30s`; returns the result and how long it took.
async fn recreate(rt: &FakeEngine, spec: &ContainerSpec) -> (StepResult, Duration) {
    let mut m = manifest(vec![spec.clone()]);
    m.config.health_deadline_secs = 30;
    let observed = rt.observe(None).await.expect("observe");
    let step = Step {
        id: ResourceId::container(testing::NODE, &spec.name),
        kind: StepKind::Recreate,
        container_id: Some("old".into()),
        drifts: vec![DriftKind::Config],
        details: Vec::new(),
        changes: Vec::new(),
        reason: "config drift".into(),
    };
    let began = Instant::now();
    let mut results = apply_plan(rt, &m, &[step], &observed, testing::REVISION, &|_| {}).await;
    assert_eq!(results.len(), 1);
    (results.remove(0), began.elapsed())
}

fn strings(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|l| (*l).to_owned()).collect()
}

#[tokio::test(start_paused = true)]
async fn start_first_without_healthcheck_runs_both_then_removes_the_old_one() {
    let rt = FakeEngine::new(Health::None, vec![old_container(&web())]);
    let (result, took) = recreate(&rt, &web()).await;
    assert_eq!(result.outcome, Outcome::Recreated, "{result:?}");
    assert_eq!(
        rt.calls(),
        strings(&[
            "create web.refinery-new",
            "disconnect web.refinery-new front",
            "start web.refinery-new",
            "connect web.refinery-new",
            "disconnect web front",
            "stop web",
            "remove web",
            "rename web.refinery-new web",
        ])
    );
    assert!(took >= START_FIRST_SETTLE, "settled for {took:?}");
    assert_eq!(
        rt.names(),
        [("web".to_owned(), ContainerState::Running)],
        "only the new one is left, under the real name"
    );
    assert_eq!(result.container_id.as_deref(), Some("c1"));
}

#[tokio::test(start_paused = true)]
async fn start_first_new_container_unhealthy_is_removed_and_the_old_one_kept() {
    let rt = FakeEngine::new(Health::Unhealthy, vec![old_container(&web())]);
    let (result, took) = recreate(&rt, &web()).await;
    assert_eq!(result.outcome, Outcome::Failed);
    let message = result.message.unwrap_or_default();
    assert!(
        message.contains("the new container became unhealthy; it was removed and the previous container keeps running"),
        "{message}"
    );
    assert!(took < Duration::from_secs(1), "failed at once: {took:?}");
    assert_eq!(
        rt.calls(),
        strings(&[
            "create web.refinery-new",
            "disconnect web.refinery-new front",
            "start web.refinery-new",
            "remove web.refinery-new",
        ])
    );
    assert_eq!(rt.names(), [("web".to_owned(), ContainerState::Running)]);
}

#[tokio::test(start_paused = true)]
async fn start_first_new_container_never_healthy_fails_at_the_health_deadline() {
    let rt = FakeEngine::new(Health::Starting, vec![old_container(&web())]);
    let (result, took) = recreate(&rt, &web()).await;
    assert_eq!(result.outcome, Outcome::Failed);
    let message = result.message.unwrap_or_default();
    assert!(
        message.contains("was not running and healthy within 30s (`config.health_deadline`; it was running, starting)"),
        "{message}"
    );
    assert!(
        took >= Duration::from_secs(30) && took < Duration::from_secs(32),
        "{took:?}"
    );
    assert_eq!(rt.names(), [("web".to_owned(), ContainerState::Running)]);
}

#[tokio::test(start_paused = true)]
async fn start_first_with_a_fixed_host_port_is_replaced_stop_first() {
    let mut s = web();
    s.ports = vec![PortBinding {
        host_ip: String::new(),
        host_port: Some(8080),
        container_port: 80,
        protocol: Protocol::Tcp,
    }];
    let rt = FakeEngine::new(Health::None, vec![old_container(&s)]);
    let (result, _) = recreate(&rt, &s).await;
    assert_eq!(result.outcome, Outcome::Recreated, "{result:?}");
    let calls = rt.calls();
    assert_eq!(
        calls.first().map(String::as_str),
        Some("stop web"),
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c.contains("refinery-new")),
        "{calls:?}"
    );
}

/// The containers an interrupted start-first replacement can leave: the old `web` (if any) and
/// the new `web.refinery-new`.
fn interrupted(old: Option<ContainerState>, new: ContainerState) -> Vec<ObservedContainer> {
    let mut out = Vec::new();
    if let Some(state) = old {
        let mut o = old_container(&web());
        o.state = state;
        out.push(o);
    }
    let mut n = observed_from_spec(&web(), &ImageDefaults::default());
    n.id = "new".into();
    n.name = "web.refinery-new".into();
    n.state = new;
    out.push(n);
    out
}

#[tokio::test]
async fn recover_start_first_interrupted_while_the_old_one_runs_removes_the_new_one() {
    let rt = FakeEngine::new(
        Health::None,
        interrupted(Some(ContainerState::Running), ContainerState::Running),
    );
    let observed = rt.observe(None).await.expect("observe");
    let done = recover_interrupted(&rt, &observed).await;
    assert_eq!(done, [Recovered::Undone { name: "web".into() }]);
    assert_eq!(rt.names(), [("web".to_owned(), ContainerState::Running)]);
    assert_eq!(rt.state().containers[0].id, "old");
}

#[tokio::test]
async fn recover_start_first_interrupted_after_the_old_one_went_finishes_it() {
    for old in [None, Some(ContainerState::Exited)] {
        let rt = FakeEngine::new(Health::None, interrupted(old, ContainerState::Running));
        let observed = rt.observe(None).await.expect("observe");
        let done = recover_interrupted(&rt, &observed).await;
        assert_eq!(
            done,
            [Recovered::Finished { name: "web".into() }],
            "{old:?}"
        );
        assert_eq!(
            rt.names(),
            [("web".to_owned(), ContainerState::Running)],
            "{old:?}"
        );
        assert_eq!(rt.state().containers[0].id, "new", "{old:?}");
    }
}
