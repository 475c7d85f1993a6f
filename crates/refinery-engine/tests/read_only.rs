//! `read-only` never writes to an engine: every kind of drift, under rules that would all act,
//! goes through evaluate and apply against an engine that records every call, and no write call
//! is made. A fake engine is used on purpose: the point is to count the calls a real engine would
//! have received.

use std::sync::Mutex;

use refinery_core::manifest::{Mode, Rule};
use refinery_core::runtime::RuntimeResult;
use refinery_core::testing::{self, manifest, observed_node, spec, stray};
use refinery_core::{
    Action, ContainerRuntime, ContainerState, CreateRequest, EngineEvent, EngineInfo,
    ImageDefaults, LabelSelector, Observed, ObservedContainer, PullProgress, RuntimeError,
};
use refinery_engine::{apply_plan, evaluate};

/// Records the name of every call that would change something.
#[derive(Default)]
struct Recorder {
    writes: Mutex<Vec<String>>,
}

impl Recorder {
    fn write(&self, what: &str) -> RuntimeResult<()> {
        if let Ok(mut w) = self.writes.lock() {
            w.push(what.to_owned());
        }
        Ok(())
    }
}

impl ContainerRuntime for Recorder {
    async fn ensure_network(&self, net: &refinery_core::NetworkSpec) -> RuntimeResult<bool> {
        self.write(&format!("ensure network {}", net.name))?;
        Ok(false)
    }

    async fn ensure_volume(&self, vol: &refinery_core::VolumeSpec) -> RuntimeResult<bool> {
        self.write(&format!("ensure volume {}", vol.name))?;
        Ok(false)
    }

    async fn info(&self) -> RuntimeResult<EngineInfo> {
        Ok(EngineInfo {
            version: "recorder".into(),
            api_version: "1.41".into(),
            endpoint: "recorder://".into(),
        })
    }
    async fn observe(&self, _: Option<&LabelSelector>) -> RuntimeResult<Observed> {
        Ok(Observed::default())
    }
    async fn inspect(&self, id: &str) -> RuntimeResult<ObservedContainer> {
        Err(RuntimeError::NotFound { what: id.into() })
    }
    async fn create(&self, req: &CreateRequest) -> RuntimeResult<String> {
        self.write(&format!("create {}", req.name))?;
        Ok("new".into())
    }
    async fn start(&self, id: &str) -> RuntimeResult<()> {
        self.write(&format!("start {id}"))
    }
    async fn stop(&self, id: &str, _: u32) -> RuntimeResult<()> {
        self.write(&format!("stop {id}"))
    }
    async fn restart(&self, id: &str) -> RuntimeResult<()> {
        self.write(&format!("restart {id}"))
    }
    async fn unpause(&self, id: &str) -> RuntimeResult<()> {
        self.write(&format!("unpause {id}"))
    }
    async fn remove(&self, id: &str) -> RuntimeResult<()> {
        self.write(&format!("remove {id}"))
    }
    async fn rename(&self, id: &str, _: &str) -> RuntimeResult<()> {
        self.write(&format!("rename {id}"))
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
        self.write(&format!("pull {image}"))
    }
}

fn acting(action: Action) -> Option<Rule> {
    Some(Rule {
        action,
        grace_period_secs: 0,
        exceptions: Vec::new(),
    })
}

#[tokio::test]
async fn read_only_node_every_drift_kind_makes_no_write_call() {
    let missing = spec("missing");
    let mut config = spec("config");
    let exited = spec("exited");
    let image = spec("image");
    let mut observed = observed_node(&[&config, &exited, &image], &ImageDefaults::default());
    config
        .env
        .insert("A".into(), refinery_core::Secret::new("declared", false));
    if let Some(c) = observed.containers.iter_mut().find(|c| c.name == "exited") {
        c.state = ContainerState::Exited;
    }
    if let Some(c) = observed.containers.iter_mut().find(|c| c.name == "image") {
        c.image_id = testing::image_id("other:1");
    }
    observed.containers.push(stray("rogue", "busybox:1.36"));

    let mut m = manifest(vec![missing, config, exited, image]);
    m.config.mode = Mode::ReadOnly;
    m.drift_rules.unauthorized_containers = acting(Action::Terminate);
    m.drift_rules.missing_containers = acting(Action::Recreate);
    m.drift_rules.image_drift = acting(Action::Rollback);
    m.drift_rules.config_drift = acting(Action::Recreate);
    m.drift_rules.status_drift = acting(Action::Restart);

    let eval = evaluate(
        &m,
        testing::NODE,
        &observed,
        testing::now(),
        &Default::default(),
        true,
        None,
    );
    assert_eq!(eval.report.drifts.len(), 5, "{:#?}", eval.report);
    assert_eq!(eval.plan.writes().count(), 0, "{:#?}", eval.plan);

    let rt = Recorder::default();
    let results = apply_plan(&rt, &m, &eval.plan.steps, &observed, "rev", &|_| {}).await;
    assert_eq!(results.len(), eval.plan.steps.len());
    let writes = rt.writes.lock().map(|w| w.clone()).unwrap_or_default();
    assert!(writes.is_empty(), "write calls: {writes:?}");
}
