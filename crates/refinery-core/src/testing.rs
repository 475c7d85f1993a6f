//! Builders and fixtures for tests: fixed timestamps, specs, manifests, and a model of what Docker
//! reports for a container created from a spec. Compiled only for tests and the `testing` feature.
//!
//! [`observed_from_spec`] is written from Docker's behaviour (the daemon's `merge` of image config
//! into container config), not from the diff, so a test comparing the two proves something.

use std::collections::BTreeMap;

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::drift::{DiffContext, DriftReport, diff_node};
use crate::inventory::{EngineImage, EngineNetwork, EngineVolume};
use crate::labels::{hex, normalize_image_ref, ownership_labels};
use crate::manifest::{
    Alerting, Config, DriftRules, Inventory, LedgerConfig, Manifest, NodeSpec, SecretsConfig,
};
use crate::observed::{
    ContainerState, Health, ImageDefaults, ImageInfo, Observed, ObservedContainer,
};
use crate::plan::{Plan, plan};
use crate::policy::{Decision, PolicyContext, decide};
use crate::runtime::{
    ContainerRuntime, CreateRequest, EngineEvent, EngineInfo, LabelSelector, PullProgress,
    RuntimeError, RuntimeResult,
};
use crate::spec::{
    Bloodline, ContainerSpec, Healthcheck, Mount, MountKind, NetworkSpec, RestartPolicy, VolumeSpec,
};

/// The node every builder puts things on.
pub const NODE: &str = "lyra";
/// The git revision containers are labelled with.
pub const REVISION: &str = "0123456789abcdef0123456789abcdef01234567";
/// When every modelled container was created.
pub const CREATED: &str = "2025-01-01T00:00:00Z";
/// When every modelled container last started.
pub const STARTED: &str = "2025-01-01T00:00:01Z";
/// "Now" in tests: Sunday 2025-01-05 12:00 UTC.
pub const NOW: &str = "2025-01-05T12:00:00Z";

/// Parses an RFC 3339 timestamp; panics on a typo in a test.
#[must_use]
pub fn ts(s: &str) -> Timestamp {
    s.parse()
        .unwrap_or_else(|e| panic!("`{s}` is not a timestamp: {e}"))
}

/// The fixed "now" of tests ([`NOW`]).
#[must_use]
pub fn now() -> Timestamp {
    ts(NOW)
}

fn sha(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

/// A stable fake image id for a reference (`busybox` and `busybox:latest` share one).
#[must_use]
pub fn image_id(reference: &str) -> String {
    format!("sha256:{}", sha(&normalize_image_ref(reference)))
}

/// A stable fake container id for a name.
#[must_use]
pub fn container_id(name: &str) -> String {
    sha(&format!("container/{name}"))
}

/// A minimal declared container on [`NODE`]: `busybox:1.36`, nothing else set.
#[must_use]
pub fn spec(name: &str) -> ContainerSpec {
    ContainerSpec {
        name: name.to_owned(),
        node: NODE.to_owned(),
        image: "busybox:1.36".to_owned(),
        ports: Vec::new(),
        fallback_ports: BTreeMap::new(),
        env: BTreeMap::new(),
        mounts: Vec::new(),
        command: None,
        entrypoint: None,
        labels: BTreeMap::new(),
        restart: RestartPolicy::No,
        healthcheck: None,
        bloodline: Bloodline::default(),
        ignore_differences: Vec::new(),
        drift_action: None,
        options: Default::default(),
        stack: None,
        content: Vec::new(),
    }
}

/// A node on its local socket.
#[must_use]
pub fn node(name: &str) -> NodeSpec {
    NodeSpec::local(name)
}

/// A manifest declaring `containers` on [`NODE`], every other section at its default.
#[must_use]
pub fn manifest(containers: Vec<ContainerSpec>) -> Manifest {
    Manifest {
        file: "refinery.yaml".to_owned(),
        config: Config::default(),
        nodes: vec![node(NODE)],
        containers,
        stacks: Vec::new(),
        stack_networks: Vec::new(),
        stack_volumes: Vec::new(),
        kubernetes: Vec::new(),
        inventory: Inventory::default(),
        drift_rules: DriftRules::default(),
        maintenance_windows: Vec::new(),
        alerting: Alerting::default(),
        commit_status: None,
        ledger: LedgerConfig::default(),
        secrets: SecretsConfig::default(),
        env_files: Vec::new(),
        registries: Vec::new(),
        registry_env: Vec::new(),
        allow_empty: false,
        ignore_differences: Vec::new(),
    }
}

/// Docker's merge of an image healthcheck under a container's: unset fields come from the image.
fn merged_healthcheck(
    own: Option<&Healthcheck>,
    image: Option<&Healthcheck>,
) -> Option<Healthcheck> {
    match (own, image) {
        (None, image) => image.cloned(),
        (Some(own), None) => Some(own.clone()),
        (Some(own), Some(image)) => {
            let pick = |a: u64, b: u64| if a == 0 { b } else { a };
            Some(Healthcheck {
                test: if own.test.is_empty() {
                    image.test.clone()
                } else {
                    own.test.clone()
                },
                interval_ms: pick(own.interval_ms, image.interval_ms),
                timeout_ms: pick(own.timeout_ms, image.timeout_ms),
                start_period_ms: pick(own.start_period_ms, image.start_period_ms),
                retries: if own.retries == 0 {
                    image.retries
                } else {
                    own.retries
                },
            })
        }
    }
}

/// What Docker reports (after the adapter's conversion) for a container created by Refinery from
/// `spec` on an image with `image` defaults, running and, with a healthcheck, healthy:
/// - env: the image's, overridden by the spec's;
/// - command: the spec's when non-empty; else none when the spec gives a non-empty entrypoint; else
///   the image's (Docker's `merge`);
/// - entrypoint: the spec's when given (`[]` clears it), else the image's;
/// - labels: the image's, overridden by the spec's, plus Refinery's ownership labels;
/// - mounts: the spec's plus an anonymous volume for every image `VOLUME` no mount covers;
/// - healthcheck: the spec's with unset fields taken from the image's, or the image's.
#[must_use]
pub fn observed_from_spec(spec: &ContainerSpec, image: &ImageDefaults) -> ObservedContainer {
    let mut env = image.env.clone();
    for (k, v) in &spec.env {
        env.insert(k.clone(), v.expose().to_owned());
    }

    let entrypoint_given = spec.entrypoint.as_ref().is_some_and(|e| !e.is_empty());
    let command = match &spec.command {
        Some(c) if !c.is_empty() => Some(c.clone()),
        own if entrypoint_given => own.clone(),
        _ => image.command.clone(),
    };
    let entrypoint = match &spec.entrypoint {
        Some(e) => Some(e.clone()),
        None => image.entrypoint.clone(),
    }
    .filter(|e| !e.is_empty());

    let mut labels = image.labels.clone();
    labels.extend(ownership_labels(spec, REVISION));

    let mut mounts = spec.mounts.clone();
    for v in &image.volumes {
        if !mounts.iter().any(|m| &m.target == v) {
            mounts.push(Mount {
                kind: MountKind::Anonymous,
                source: String::new(),
                target: v.clone(),
                read_only: false,
            });
        }
    }
    mounts.sort();

    let mut ports = spec.ports.clone();
    ports.sort();
    ports.dedup();

    let healthcheck = merged_healthcheck(spec.healthcheck.as_ref(), image.healthcheck.as_ref());
    let health = match &healthcheck {
        Some(h) if h.test.first().is_some_and(|t| t != "NONE") => Health::Healthy,
        _ => Health::None,
    };

    ObservedContainer {
        id: container_id(&spec.name),
        name: spec.name.clone(),
        image: spec.image.clone(),
        image_id: image_id(&spec.image),
        repo_digest: None,
        state: ContainerState::Running,
        health,
        exit_code: None,
        created: CREATED.to_owned(),
        started_at: Some(STARTED.to_owned()),
        finished_at: None,
        ports,
        env,
        mounts,
        command,
        entrypoint,
        labels,
        restart: spec.restart,
        healthcheck,
        image_defaults: Some(image.clone()),
        options: {
            let mut options = observed_options(spec);
            let exposed = crate::drift_options::exposed(spec, image);
            if !exposed.is_empty() {
                let mut extra = options.extra().clone();
                extra.expose = exposed;
                options.extra = extra.boxed();
            }
            options
        },
        content: None,
    }
}

/// The options the engine reports for a container created with `spec`'s: every network gets the
/// container's short id as one more alias.
#[must_use]
pub fn observed_options(spec: &ContainerSpec) -> crate::spec::RuntimeOptions {
    let mut options = spec.options.clone();
    let short = container_id(&spec.name)
        .chars()
        .take(12)
        .collect::<String>();
    for n in &mut options.networks {
        n.aliases.push(short.clone());
        n.aliases.sort();
    }
    options
}

/// A local image for `reference` with `defaults`.
#[must_use]
pub fn image_info(reference: &str, defaults: &ImageDefaults) -> ImageInfo {
    ImageInfo {
        id: image_id(reference),
        tags: vec![normalize_image_ref(reference)],
        defaults: defaults.clone(),
        repo_digests: Vec::new(),
    }
}

/// A running container nobody declared (created by hand: no Refinery labels).
#[must_use]
pub fn stray(name: &str, image: &str) -> ObservedContainer {
    let mut o = observed_from_spec(
        &ContainerSpec {
            image: image.to_owned(),
            ..spec(name)
        },
        &ImageDefaults::default(),
    );
    o.labels.clear();
    o
}

/// A node's engine holding, for every spec, the container Refinery would have created and its
/// image (all with the same image defaults).
#[must_use]
pub fn observed_node(specs: &[&ContainerSpec], image: &ImageDefaults) -> Observed {
    let mut observed = Observed::default();
    for s in specs {
        observed.containers.push(observed_from_spec(s, image));
        observed
            .images
            .insert(normalize_image_ref(&s.image), image_info(&s.image, image));
    }
    observed
}

/// Inputs of one evaluated pass besides the manifest and the observed state.
#[derive(Debug, Clone)]
pub struct Pass {
    pub node: String,
    pub now: Timestamp,
    pub first_seen: BTreeMap<String, Timestamp>,
    pub honor_grace: bool,
    pub self_container_id: Option<String>,
}

impl Default for Pass {
    fn default() -> Self {
        Pass {
            node: NODE.to_owned(),
            now: now(),
            first_seen: BTreeMap::new(),
            honor_grace: true,
            self_container_id: None,
        }
    }
}

impl Pass {
    #[must_use]
    pub fn now(mut self, now: Timestamp) -> Self {
        self.now = now;
        self
    }

    #[must_use]
    pub fn node(mut self, node: &str) -> Self {
        node.clone_into(&mut self.node);
        self
    }

    /// Records that drift `key` (`<id> <kind>`, see `policy::drift_key`) was first seen at `at`.
    #[must_use]
    pub fn first_seen(mut self, key: &str, at: Timestamp) -> Self {
        self.first_seen.insert(key.to_owned(), at);
        self
    }

    #[must_use]
    pub fn honor_grace(mut self, honor: bool) -> Self {
        self.honor_grace = honor;
        self
    }

    #[must_use]
    pub fn self_container_id(mut self, id: &str) -> Self {
        self.self_container_id = Some(id.to_owned());
        self
    }

    /// Diff, decide and plan, composed as the engine composes them.
    #[must_use]
    pub fn run(&self, manifest: &Manifest, observed: &Observed) -> Evaluated {
        let report = diff_node(
            &manifest.containers_on(&self.node),
            observed,
            &DiffContext::for_node(manifest, &self.node),
        );
        let pctx = PolicyContext {
            manifest,
            mode: manifest.mode_of(&self.node),
            now: self.now,
            first_seen: &self.first_seen,
            honor_grace: self.honor_grace,
            self_container_id: self.self_container_id.as_deref(),
            prune: false,
        };
        let decisions = decide(&report, observed, &pctx);
        let mut plan = plan(&decisions, observed);
        crate::compose::restart_dependants(manifest, &self.node, observed, &mut plan);
        Evaluated {
            report,
            decisions,
            plan,
        }
    }
}

/// What one evaluated pass found and would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluated {
    pub report: DriftReport,
    pub decisions: Vec<Decision>,
    pub plan: Plan,
}

/// An engine that answers reads from what a test gives it and records every write call it
/// receives as a line (`create NAME`, `start ID`, `remove_image REF`, …) instead of doing it:
/// for the tests whose point is to count the calls a real engine would have received (a
/// read-only node gets none, a cleanup exactly one removal per item).
#[derive(Default)]
pub struct Recorder {
    /// What `observe` reports.
    pub observed: Observed,
    /// What the inventory listings report.
    pub images: Vec<EngineImage>,
    pub volumes: Vec<EngineVolume>,
    pub networks: Vec<EngineNetwork>,
    writes: std::sync::Mutex<Vec<String>>,
}

impl Recorder {
    fn write(&self, what: String) -> RuntimeResult<()> {
        if let Ok(mut w) = self.writes.lock() {
            w.push(what);
        }
        Ok(())
    }

    /// Every write call so far, in order.
    #[must_use]
    pub fn writes(&self) -> Vec<String> {
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
        Ok(self.observed.clone())
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
    ) -> impl futures_core::Stream<Item = RuntimeResult<EngineEvent>> + Send + 'static {
        Nothing
    }
    async fn pull(
        &self,
        image: &str,
        _: &(dyn Fn(PullProgress) + Send + Sync),
    ) -> RuntimeResult<()> {
        self.write(format!("pull {image}"))
    }
    async fn ensure_network(&self, net: &NetworkSpec) -> RuntimeResult<bool> {
        self.write(format!("ensure network {}", net.name))?;
        Ok(false)
    }
    async fn ensure_volume(&self, vol: &VolumeSpec) -> RuntimeResult<bool> {
        self.write(format!("ensure volume {}", vol.name))?;
        Ok(false)
    }
    async fn list_images(&self, _: Option<&LabelSelector>) -> RuntimeResult<Vec<EngineImage>> {
        Ok(self.images.clone())
    }
    async fn list_volumes(&self, _: Option<&LabelSelector>) -> RuntimeResult<Vec<EngineVolume>> {
        Ok(self.volumes.clone())
    }
    async fn list_networks(&self, _: Option<&LabelSelector>) -> RuntimeResult<Vec<EngineNetwork>> {
        Ok(self.networks.clone())
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

/// A stream that ends at once (core has no `futures-util` for `stream::empty`).
struct Nothing;

impl futures_core::Stream for Nothing {
    type Item = RuntimeResult<EngineEvent>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(None)
    }
}

/// How a [`FakeRuntime`]'s engine answers: normally, not at all (every call and the event stream
/// wait until it answers again, as a host gone without a reset), or refusing (every call fails
/// as unreachable and every event stream ends, as a stopped dockerd).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Up,
    Hung,
    Gone,
}

/// A stateful stand-in for one node's engine, for the controller's tests: its containers and
/// images live in memory; `create`, `start`, `stop`, `restart`, `remove`, `rename` change them and
/// send the engine events Docker would (`create`, `start`, `die`, `stop`, `destroy`, `rename`,
/// `restart`) to every open [`ContainerRuntime::events`] stream. Test knobs: [`crash`] a
/// container (exited, `die`), start a container by hand ([`run_outside`]), make the engine hang
/// ([`set_reach`] `Hung`: calls never resolve until it is `Up` again) or go away (`Gone`: calls fail
/// as unreachable, event streams end) and come back. A container created from an image marked
/// with [`unhealthy_image`] runs but reports `unhealthy`.
///
/// It is a model, not Docker: what a container reports is [`observed_from_spec`] of the spec it
/// was created with, carrying the labels it was created with. Times come from the clock it is
/// given (the controller's, paused in tests). Clones share one engine.
///
/// [`crash`]: FakeRuntime::crash
/// [`run_outside`]: FakeRuntime::run_outside
/// [`set_reach`]: FakeRuntime::set_reach
/// [`unhealthy_image`]: FakeRuntime::unhealthy_image
#[derive(Clone)]
pub struct FakeRuntime {
    endpoint: String,
    clock: std::sync::Arc<dyn Fn() -> Timestamp + Send + Sync>,
    engine: std::sync::Arc<std::sync::Mutex<FakeEngine>>,
}

struct FakeEngine {
    reach: Reach,
    containers: Vec<ObservedContainer>,
    images: BTreeMap<String, ImageInfo>,
    unhealthy: std::collections::BTreeSet<String>,
    /// Open event streams (with their selectors).
    streams: Vec<(
        Option<LabelSelector>,
        std::sync::Arc<std::sync::Mutex<EventQueue>>,
    )>,
    /// Calls waiting for a hung engine.
    waiting: Vec<std::task::Waker>,
    calls: Vec<String>,
    observations: usize,
    /// `observe` hangs (the engine still answers everything else).
    observe_hangs: bool,
    next_id: u64,
    /// What a pull of a reference fetches (normalized reference → image id): its registry's
    /// tag. A reference not here is pulled as [`FakeRuntime::add_image`] adds it.
    registry: BTreeMap<String, String>,
    /// The registry's digest of each tag in `registry` (what a pull records, and what
    /// `registry_digest` answers).
    registry_digests: BTreeMap<String, String>,
    /// Every pull and registry question fails (the registry is down).
    registry_down: bool,
}

#[derive(Default)]
struct EventQueue {
    events: std::collections::VecDeque<EngineEvent>,
    ended: bool,
    waker: Option<std::task::Waker>,
}

impl EventQueue {
    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

impl FakeRuntime {
    /// An engine at `endpoint` (say `fake://n1`) with nothing on it; its times are `clock`'s.
    #[must_use]
    pub fn new(
        endpoint: &str,
        clock: impl Fn() -> Timestamp + Send + Sync + 'static,
    ) -> FakeRuntime {
        FakeRuntime {
            endpoint: endpoint.to_owned(),
            clock: std::sync::Arc::new(clock),
            engine: std::sync::Arc::new(std::sync::Mutex::new(FakeEngine {
                reach: Reach::Up,
                containers: Vec::new(),
                images: BTreeMap::new(),
                unhealthy: std::collections::BTreeSet::new(),
                streams: Vec::new(),
                waiting: Vec::new(),
                calls: Vec::new(),
                observations: 0,
                observe_hangs: false,
                next_id: 0,
                registry: BTreeMap::new(),
                registry_digests: BTreeMap::new(),
                registry_down: false,
            })),
        }
    }

    /// The endpoint it was made with.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeEngine> {
        self.engine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now(&self) -> String {
        (self.clock)().to_string()
    }

    /// Makes the engine answer (`Up`), hang (`Hung`) or refuse (`Gone`).
    pub fn set_reach(&self, reach: Reach) {
        let mut e = self.lock();
        e.reach = reach;
        if reach != Reach::Hung {
            for w in e.waiting.drain(..) {
                w.wake();
            }
        }
        if reach == Reach::Gone {
            for (_, q) in e.streams.drain(..) {
                let mut q = q.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                q.ended = true;
                q.wake();
            }
        }
    }

    /// Makes `observe` (listing the containers) hang while the engine still answers its version
    /// and everything else, as dockerd does with a container stuck in the kernel; `false` lets
    /// the waiting calls go on.
    pub fn hang_observe(&self, hang: bool) {
        let mut e = self.lock();
        e.observe_hangs = hang;
        if !hang {
            for w in e.waiting.drain(..) {
                w.wake();
            }
        }
    }

    /// Has the image `reference` locally (as if pulled).
    pub fn add_image(&self, reference: &str) {
        self.lock().images.insert(
            normalize_image_ref(reference),
            image_info(reference, &ImageDefaults::default()),
        );
    }

    /// Moves the tag `reference` in the registry to a new image (its id made from `content`):
    /// the next pull of `reference` makes the local tag name that image; until then nothing
    /// local changes. Returns the new image id.
    pub fn move_tag(&self, reference: &str, content: &str) -> String {
        let id = image_id(&format!("{reference}#{content}"));
        let key = normalize_image_ref(reference);
        let mut e = self.lock();
        e.registry.insert(key.clone(), id.clone());
        e.registry_digests
            .insert(key, image_id(&format!("manifest {reference}#{content}")));
        id
    }

    /// Moves the tag `reference` to a new multi-platform index whose entry for this engine's
    /// platform is still the image it names (`other` changes another platform's image): a new
    /// registry digest, the same image here.
    pub fn move_index(&self, reference: &str, other: &str) {
        let key = normalize_image_ref(reference);
        let mut e = self.lock();
        let current = e.registry.get(&key).cloned().unwrap_or_default();
        e.registry_digests
            .insert(key, image_id(&format!("index {current} {other}")));
    }

    /// The registry's digest of the tag `reference` (see [`FakeRuntime::move_tag`]).
    #[must_use]
    pub fn registry_digest_of(&self, reference: &str) -> Option<String> {
        self.lock()
            .registry_digests
            .get(&normalize_image_ref(reference))
            .cloned()
    }

    /// Makes every pull fail as a registry outage would (`true`), or work again.
    pub fn set_registry_down(&self, down: bool) {
        self.lock().registry_down = down;
    }

    /// The id of the local image `reference` names, if it is local.
    #[must_use]
    pub fn local_image_id(&self, reference: &str) -> Option<String> {
        self.lock()
            .images
            .get(&normalize_image_ref(reference))
            .map(|i| i.id.clone())
    }

    /// Containers created from `image` from now on run but report `unhealthy`.
    pub fn unhealthy_image(&self, image: &str) {
        self.lock().unhealthy.insert(normalize_image_ref(image));
    }

    /// Starts a container nobody declared, as someone running `docker run` on the host
    /// (`create` and `start` events).
    pub fn run_outside(&self, name: &str, image: &str) {
        let mut c = stray(name, image);
        let now = self.now();
        let mut e = self.lock();
        c.id = e.new_id(name);
        c.created.clone_from(&now);
        c.started_at = Some(now);
        e.containers.push(c.clone());
        e.emit(&c, "create", None);
        e.emit(&c, "start", None);
    }

    /// The container `name`'s process dies with exit code 137 (state `exited`, a `die` event).
    /// Returns whether there was such a running container.
    pub fn crash(&self, name: &str) -> bool {
        let now = self.now();
        let mut e = self.lock();
        let Some(i) = e.index(name) else { return false };
        if e.containers[i].state != ContainerState::Running {
            return false;
        }
        let c = &mut e.containers[i];
        c.state = ContainerState::Exited;
        c.exit_code = Some(137);
        c.finished_at = Some(now);
        let c = c.clone();
        e.emit(&c, "die", Some(137));
        true
    }

    /// Removes container `name` as someone running `docker rm -f` on the host (`die` if it
    /// ran, `destroy`). Returns whether there was one.
    pub fn remove_outside(&self, name: &str) -> bool {
        let now = self.now();
        let mut e = self.lock();
        let Some(i) = e.index(name) else { return false };
        e.halt(i, &now, 137);
        let c = e.containers.remove(i);
        e.emit(&c, "destroy", None);
        true
    }

    /// How many times the engine was observed (`observe` answered).
    #[must_use]
    pub fn observations(&self) -> usize {
        self.lock().observations
    }

    /// The container named `name` (or with that id), as `inspect` would report it.
    #[must_use]
    pub fn container(&self, name: &str) -> Option<ObservedContainer> {
        let e = self.lock();
        e.index(name).map(|i| e.containers[i].clone())
    }

    /// The names of the containers on the engine, sorted.
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .lock()
            .containers
            .iter()
            .map(|c| c.name.clone())
            .collect();
        names.sort();
        names
    }

    /// Every write call so far, in order, by container name: `create web`, `start web`,
    /// `remove rogue`, `pull busybox:1.36`, ….
    #[must_use]
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// Waits while the engine hangs; fails while it is gone.
    fn answer(&self) -> Answer {
        Answer {
            engine: std::sync::Arc::clone(&self.engine),
            endpoint: self.endpoint.clone(),
        }
    }

    /// Applies `f` to container `id` (id or name) after the engine answered, logging `call NAME`.
    async fn change(
        &self,
        call: &str,
        id: &str,
        f: impl FnOnce(&mut FakeEngine, usize, &str),
    ) -> RuntimeResult<()> {
        self.answer().await?;
        let now = self.now();
        let mut e = self.lock();
        let i = e.index(id).ok_or_else(|| RuntimeError::NotFound {
            what: format!("container `{id}`"),
        })?;
        let name = e.containers[i].name.clone();
        e.calls.push(format!("{call} {name}"));
        f(&mut e, i, &now);
        Ok(())
    }
}

impl FakeEngine {
    /// What the registry says of the tag `reference` (`answer` reads it off), or the failure
    /// an outage or an unknown tag is.
    fn registry_answer(
        &self,
        reference: &str,
        answer: impl FnOnce(&FakeEngine, &str) -> Option<String>,
    ) -> RuntimeResult<String> {
        if self.registry_down {
            return Err(RuntimeError::Other {
                action: format!("ask the registry about `{reference}`"),
                message: "the registry is down".to_owned(),
            });
        }
        answer(self, &normalize_image_ref(reference)).ok_or_else(|| RuntimeError::NotFound {
            what: format!("manifest of `{reference}` in the registry"),
        })
    }

    fn index(&self, id_or_name: &str) -> Option<usize> {
        self.containers
            .iter()
            .position(|c| c.id == id_or_name || c.name == id_or_name)
    }

    fn new_id(&mut self, name: &str) -> String {
        self.next_id += 1;
        sha(&format!("fake/{name}/{}", self.next_id))
    }

    /// Sends an event about `c` to every stream whose selector it matches.
    fn emit(&mut self, c: &ObservedContainer, action: &str, exit_code: Option<i64>) {
        self.streams
            .retain(|(_, q)| std::sync::Arc::strong_count(q) > 1);
        for (selector, q) in &self.streams {
            if selector.as_ref().is_some_and(|s| !s.matches(&c.labels)) {
                continue;
            }
            let mut q = q.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            q.events.push_back(EngineEvent {
                action: action.to_owned(),
                detail: None,
                container_id: c.id.clone(),
                name: Some(c.name.clone()),
                labels: c.labels.clone(),
                exit_code,
                time_nanos: None,
            });
            q.wake();
        }
    }

    fn run(&mut self, i: usize, now: &str) {
        let unhealthy = self
            .unhealthy
            .contains(&normalize_image_ref(&self.containers[i].image));
        let c = &mut self.containers[i];
        c.state = ContainerState::Running;
        c.exit_code = None;
        c.started_at = Some(now.to_owned());
        if unhealthy {
            c.health = Health::Unhealthy;
        }
        let c = c.clone();
        self.emit(&c, "start", None);
    }

    fn halt(&mut self, i: usize, now: &str, code: i64) {
        if self.containers[i].state != ContainerState::Running {
            return;
        }
        let c = &mut self.containers[i];
        c.state = ContainerState::Exited;
        c.exit_code = Some(code);
        c.finished_at = Some(now.to_owned());
        let c = c.clone();
        self.emit(&c, "die", Some(code));
    }
}

/// A call to a [`FakeRuntime`] waiting for its engine to answer.
struct Answer {
    engine: std::sync::Arc<std::sync::Mutex<FakeEngine>>,
    endpoint: String,
}

impl std::future::Future for Answer {
    type Output = RuntimeResult<()>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<RuntimeResult<()>> {
        let mut e = self
            .engine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match e.reach {
            Reach::Up => std::task::Poll::Ready(Ok(())),
            Reach::Gone => std::task::Poll::Ready(Err(RuntimeError::Unreachable {
                endpoint: self.endpoint.clone(),
                cause: crate::runtime::UnreachableCause::Refused,
                reason: "connection refused (the fake engine is gone)".to_owned(),
            })),
            Reach::Hung => {
                e.waiting.push(cx.waker().clone());
                std::task::Poll::Pending
            }
        }
    }
}

/// An `observe` waiting while [`FakeRuntime::hang_observe`] holds it.
struct ObserveGate {
    engine: std::sync::Arc<std::sync::Mutex<FakeEngine>>,
}

impl std::future::Future for ObserveGate {
    type Output = ();

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        let mut e = self
            .engine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if e.observe_hangs {
            e.waiting.push(cx.waker().clone());
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    }
}

/// A [`FakeRuntime`]'s event stream: what its engine sends, until the engine goes away.
struct FakeEvents {
    queue: std::sync::Arc<std::sync::Mutex<EventQueue>>,
}

impl futures_core::Stream for FakeEvents {
    type Item = RuntimeResult<EngineEvent>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let mut q = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(e) = q.events.pop_front() {
            return std::task::Poll::Ready(Some(Ok(e)));
        }
        if q.ended {
            return std::task::Poll::Ready(None);
        }
        q.waker = Some(cx.waker().clone());
        std::task::Poll::Pending
    }
}

impl ContainerRuntime for FakeRuntime {
    async fn info(&self) -> RuntimeResult<EngineInfo> {
        self.answer().await?;
        Ok(EngineInfo {
            version: "fake".into(),
            api_version: "1.41".into(),
            endpoint: self.endpoint.clone(),
        })
    }

    async fn observe(&self, selector: Option<&LabelSelector>) -> RuntimeResult<Observed> {
        self.answer().await?;
        ObserveGate {
            engine: std::sync::Arc::clone(&self.engine),
        }
        .await;
        let mut e = self.lock();
        e.observations += 1;
        Ok(Observed {
            containers: e
                .containers
                .iter()
                .filter(|c| selector.is_none_or(|s| s.matches(&c.labels)))
                .cloned()
                .collect(),
            images: e.images.clone(),
        })
    }

    async fn inspect(&self, id: &str) -> RuntimeResult<ObservedContainer> {
        self.answer().await?;
        self.container(id).ok_or_else(|| RuntimeError::NotFound {
            what: format!("container `{id}`"),
        })
    }

    async fn create(&self, req: &CreateRequest) -> RuntimeResult<String> {
        self.answer().await?;
        let now = self.now();
        let mut e = self.lock();
        e.calls.push(format!("create {}", req.name));
        if e.index(&req.name).is_some() {
            return Err(RuntimeError::Conflict {
                what: format!("container `{}`", req.name),
                message: "the name is already in use".to_owned(),
            });
        }
        let Some(image) = e.images.get(&normalize_image_ref(&req.spec.image)).cloned() else {
            return Err(RuntimeError::NotFound {
                what: format!("image `{}`", req.spec.image),
            });
        };
        let mut c = observed_from_spec(&req.spec, &image.defaults);
        c.id = e.new_id(&req.name);
        c.name.clone_from(&req.name);
        c.image_id.clone_from(&image.id);
        c.repo_digest = image.repo_digests.first().cloned();
        c.labels = image.defaults.labels.clone();
        c.labels.extend(req.labels.clone());
        c.state = ContainerState::Created;
        c.health = match c.health {
            Health::None => Health::None,
            _ => Health::Starting,
        };
        c.created = now;
        c.started_at = None;
        let id = c.id.clone();
        e.containers.push(c.clone());
        e.emit(&c, "create", None);
        Ok(id)
    }

    async fn start(&self, id: &str) -> RuntimeResult<()> {
        self.change("start", id, |e, i, now| {
            if e.containers[i].state != ContainerState::Running {
                e.run(i, now);
            }
        })
        .await
    }

    async fn stop(&self, id: &str, _: u32) -> RuntimeResult<()> {
        self.change("stop", id, |e, i, now| {
            if e.containers[i].state == ContainerState::Running {
                e.halt(i, now, 143);
                let c = e.containers[i].clone();
                e.emit(&c, "stop", None);
            }
        })
        .await
    }

    async fn restart(&self, id: &str) -> RuntimeResult<()> {
        self.change("restart", id, |e, i, now| {
            e.halt(i, now, 143);
            e.run(i, now);
            let c = e.containers[i].clone();
            e.emit(&c, "restart", None);
        })
        .await
    }

    async fn unpause(&self, id: &str) -> RuntimeResult<()> {
        self.change("unpause", id, |e, i, _| {
            if e.containers[i].state == ContainerState::Paused {
                e.containers[i].state = ContainerState::Running;
                let c = e.containers[i].clone();
                e.emit(&c, "unpause", None);
            }
        })
        .await
    }

    async fn remove(&self, id: &str) -> RuntimeResult<()> {
        match self
            .change("remove", id, |e, i, now| {
                e.halt(i, now, 137);
                let c = e.containers.remove(i);
                e.emit(&c, "destroy", None);
            })
            .await
        {
            // Removing what is gone is not an error.
            Err(RuntimeError::NotFound { .. }) => Ok(()),
            other => other,
        }
    }

    async fn rename(&self, id: &str, new_name: &str) -> RuntimeResult<()> {
        let new_name = new_name.to_owned();
        self.change("rename", id, move |e, i, _| {
            e.containers[i].name = new_name;
            let c = e.containers[i].clone();
            e.emit(&c, "rename", None);
        })
        .await
    }

    fn events(
        &self,
        selector: Option<&LabelSelector>,
    ) -> impl futures_core::Stream<Item = RuntimeResult<EngineEvent>> + Send + 'static {
        let queue = std::sync::Arc::new(std::sync::Mutex::new(EventQueue::default()));
        let mut e = self.lock();
        if e.reach == Reach::Gone {
            if let Ok(mut q) = queue.lock() {
                q.ended = true;
            }
        } else {
            e.streams
                .push((selector.cloned(), std::sync::Arc::clone(&queue)));
        }
        FakeEvents { queue }
    }

    async fn pull(
        &self,
        image: &str,
        _: &(dyn Fn(PullProgress) + Send + Sync),
    ) -> RuntimeResult<()> {
        self.answer().await?;
        let mut e = self.lock();
        e.calls.push(format!("pull {image}"));
        if e.registry_down {
            return Err(RuntimeError::Other {
                action: format!("pull `{image}`"),
                message: "the registry is down".to_owned(),
            });
        }
        let key = normalize_image_ref(image);
        let mut info = image_info(image, &ImageDefaults::default());
        if let Some(id) = e.registry.get(&key) {
            info.id.clone_from(id);
        }
        if let (Some(digest), Ok(r)) = (
            e.registry_digests.get(&key),
            crate::image_ref::ImageRef::parse(image),
        ) {
            info.repo_digests = vec![format!("{}@{digest}", r.name())];
        }
        e.images.insert(key, info);
        Ok(())
    }

    async fn registry_digest(&self, reference: &str) -> RuntimeResult<String> {
        self.answer().await?;
        let mut e = self.lock();
        e.calls.push(format!("registry_digest {reference}"));
        e.registry_answer(reference, |e, key| e.registry_digests.get(key).cloned())
    }

    async fn registry_image_id(&self, reference: &str) -> RuntimeResult<Option<String>> {
        self.answer().await?;
        let mut e = self.lock();
        e.calls.push(format!("registry_image_id {reference}"));
        e.registry_answer(reference, |e, key| e.registry.get(key).cloned())
            .map(Some)
    }
}

/// A running container `web` declared with `image` and created from the registry digest `digest`
/// (what `repo_digest` holds after a pull): for tests of `image_update` drift and its trials.
#[must_use]
pub fn running_on_digest(image: &str, digest: &str) -> (ContainerSpec, ObservedContainer) {
    let mut spec = spec("web");
    spec.image = image.to_owned();
    let mut o = observed_from_spec(&spec, &ImageDefaults::default());
    let name = crate::image_ref::ImageRef::parse(image)
        .expect("valid image reference")
        .name()
        .to_owned();
    o.repo_digest = Some(format!("{name}@{digest}"));
    (spec, o)
}
