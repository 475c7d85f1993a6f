//! [`SimEngine`]: a Docker Engine API simulator for tests and benchmarks that need more engines
//! than fit on a machine. It speaks the subset of API 1.41 that [`DockerRuntime`] uses, over plain
//! HTTP on `127.0.0.2`, with dockerd's wire format, status codes and event sequences:
//!
//! - `GET /version`, `/_ping`, `/info`;
//! - containers: list (`all`, `filters` by `label`, `name`, `id`, `status`), inspect, create,
//!   start, stop, kill, restart, pause, unpause, rename, remove (`force`);
//! - `GET /events` (streamed; `filters` by `type`, `label`, `container`, `event`; `since`
//!   replays what happened since then);
//! - images: list, inspect (by id, tag or short name); `POST /images/create` (pull) fails like an
//!   engine without a registry: images exist only when the test registers them
//!   ([`SimEngine::add_image`], [`SimEngine::copy_image_from`]);
//! - networks and volumes: inspect, create, list, remove; network connect.
//!
//! The container state machine is dockerd's: `created → running ⇄ paused`, `running → exited`
//! (stop, kill, crash), `exited → running` (start, restart), removal from any state (running only
//! with `force`). Each transition emits what dockerd emits: `create`, `start`, `kill` + `die` +
//! `stop` for a stop, `kill` + `die` for a kill, `die` alone for a crash, `restart`, `pause`,
//! `unpause`, `rename`, `destroy`. Nothing runs: a stop returns at once with exit code 0 (like the
//! test image, which traps TERM), a healthcheck reports `healthy` while running, and restart
//! policies are recorded but never acted on (a [`SimEngine::crash`] stays down), so the
//! controller under test is the only thing that heals.
//!
//! Everything lives in memory and goes with the value.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{Body, Bytes};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, watch};

use crate::DockerRuntime;

/// The API version the simulator answers with (the engine on this machine speaks 1.41).
pub const SIM_API_VERSION: &str = "1.41";
/// The engine version it reports.
pub const SIM_ENGINE_VERSION: &str = "20.10.24-sim";
/// How many past events `since` can replay.
const HISTORY: usize = 10_000;

/// The runtime serving every simulator of the process.
fn sim_runtime() -> std::io::Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sim-engine")
        .enable_all()
        .build()?;
    Ok(RUNTIME.get_or_init(|| rt))
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn new_id(salt: &str) -> String {
    use sha2::Digest;
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let digest = sha2::Sha256::digest(format!("{salt}/{n}/{}", std::process::id()));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn now_nanos() -> i64 {
    jiff::Timestamp::now()
        .as_nanosecond()
        .try_into()
        .unwrap_or(i64::MAX)
}

fn rfc3339(nanos: i64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(nanos))
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Zero time as dockerd reports it for "never".
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Created,
    Running,
    Paused,
    Exited,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Exited => "exited",
        }
    }
}

#[derive(Debug, Clone)]
struct SimContainer {
    id: String,
    name: String,
    created: i64,
    image_ref: String,
    image_id: String,
    /// `Config` as inspect shows it: the create body merged with the image's config.
    config: Value,
    host_config: Value,
    /// Network name → endpoint settings as given at create or connect.
    networks: BTreeMap<String, Value>,
    /// Anonymous volume names by target, chosen at create.
    anonymous: BTreeMap<String, String>,
    status: Status,
    exit_code: i64,
    pid: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    restart_count: i64,
}

impl SimContainer {
    fn labels(&self) -> Map<String, Value> {
        self.config
            .get("Labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    fn running(&self) -> bool {
        matches!(self.status, Status::Running | Status::Paused)
    }
}

#[derive(Debug, Clone)]
struct SimImage {
    id: String,
    tags: Vec<String>,
    created: i64,
    /// `Config` of the image (`Cmd`, `Env`, `Labels`, …), in the engine's JSON.
    config: Value,
}

#[derive(Debug, Default)]
struct State {
    containers: Vec<SimContainer>,
    images: Vec<SimImage>,
    networks: BTreeMap<String, Value>,
    volumes: BTreeMap<String, Value>,
    history: VecDeque<Value>,
    next_pid: i64,
}

struct Inner {
    state: Mutex<State>,
    events: broadcast::Sender<Value>,
    shutdown: watch::Receiver<bool>,
    requests: AtomicU64,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One simulated engine, listening on `127.0.0.2:<port>` until dropped.
pub struct SimEngine {
    inner: Arc<Inner>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for SimEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimEngine")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for SimEngine {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.server.abort();
    }
}

/// Where simulators listen (a free port of a loopback address no dockerd of the tests uses).
const SIM_ADDRESS: &str = "127.0.0.2:0";

impl SimEngine {
    /// Starts an empty engine (no containers, no images, the `bridge`, `host` and `none`
    /// networks) on a free port of `127.0.0.2`. It is served by a runtime of its own (shared by
    /// every simulator of the process), so a test blocking its own runtime (a guard's cleanup on
    /// drop) cannot starve it.
    ///
    /// Not `127.0.0.1`: the test dockerds listen there, and one a test stops leaves its port free
    /// while that test's daemon keeps reconnecting to it; a simulator of another test given that
    /// port would then be acted on by a daemon that is not its test's.
    pub async fn start() -> std::io::Result<SimEngine> {
        let runtime = sim_runtime()?;
        let _entered = runtime.enter();
        let listener = std::net::TcpListener::bind(SIM_ADDRESS)?;
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        let (stop, shutdown) = watch::channel(false);
        let (events, _) = broadcast::channel(4096);
        let mut state = State {
            next_pid: 10_000,
            ..State::default()
        };
        for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
            state.networks.insert(
                name.to_owned(),
                json!({"Name": name, "Id": new_id(name), "Driver": driver, "Scope": "local",
                       "Labels": {}, "Created": rfc3339(now_nanos())}),
            );
        }
        let inner = Arc::new(Inner {
            state: Mutex::new(state),
            events,
            shutdown,
            requests: AtomicU64::new(0),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&inner));
        let mut stopped = stop.subscribe();
        let server = runtime.spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        });
        Ok(SimEngine {
            inner,
            addr,
            stop,
            server,
        })
    }

    /// `tcp://127.0.0.2:<port>`.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    /// A runtime connected to this engine.
    ///
    /// # Panics
    /// Never: a `tcp://` endpoint is always accepted.
    #[must_use]
    pub fn runtime(&self) -> DockerRuntime {
        DockerRuntime::connect(&self.endpoint()).expect("a tcp endpoint is always accepted")
    }

    /// HTTP requests answered so far (event streams count once).
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// Makes an image exist under `tags` with `config` (the engine's `Config` JSON: `Cmd`,
    /// `Env`, `Labels`, `Entrypoint`, …). Returns its id (`sha256:…`).
    pub fn add_image(&self, tags: &[&str], config: Value) -> String {
        let id = format!("sha256:{}", new_id(&tags.join(",")));
        let mut state = self.inner.lock();
        let tags: Vec<String> = tags.iter().map(|t| normalize_ref(t)).collect();
        for image in &mut state.images {
            image.tags.retain(|t| !tags.contains(t));
        }
        state.images.push(SimImage {
            id: id.clone(),
            tags,
            created: now_nanos() / 1_000_000_000,
            config,
        });
        id
    }

    /// An image like the test image (`refinery-test-busybox`): the shell command that exits on
    /// TERM, `PATH`, its tag label. Returns its id.
    pub fn add_busybox_image(&self, tag: &str) -> String {
        self.add_image(
            &[tag],
            json!({
                "Cmd": super::DEFAULT_CMD,
                "Env": [format!("PATH={}", super::IMAGE_PATH)],
                "Labels": {super::TEST_IMAGE_LABEL: tag},
            }),
        )
    }

    /// Registers the image `reference` of the engine behind `rt` here, with the same config (so
    /// both engines give containers the same defaults). Returns its id here.
    pub async fn copy_image_from(
        &self,
        rt: &DockerRuntime,
        reference: &str,
    ) -> refinery_core::runtime::RuntimeResult<String> {
        let inspect = rt
            .docker()
            .await?
            .inspect_image(reference)
            .await
            .map_err(|e| {
                crate::convert::error(e, &rt.op("inspect", crate::convert::image_what(reference)))
            })?;
        let config = serde_json::to_value(inspect.config.unwrap_or_default()).unwrap_or_default();
        Ok(self.add_image(&[reference], strip_nulls(config)))
    }

    /// A crash: a running container's process dies with exit code 137 (`die`, no `kill`), as
    /// when its process is SIGKILLed on the host. Returns whether it was running.
    pub fn crash(&self, name_or_id: &str) -> bool {
        let mut state = self.inner.lock();
        self.die(&mut state, name_or_id, 137).is_some()
    }

    /// A running container's process dies with `code` (`die`); its index, `None` when it was
    /// not running.
    fn die(&self, state: &mut State, name_or_id: &str, code: i64) -> Option<usize> {
        let i = find_container(state, name_or_id)?;
        if !state.containers[i].running() {
            return None;
        }
        let now = now_nanos();
        let c = &mut state.containers[i];
        c.status = Status::Exited;
        c.exit_code = code;
        c.pid = 0;
        c.finished_at = Some(now);
        let c = c.clone();
        self.inner
            .emit(state, &c, "die", &[("exitCode", code.to_string())]);
        Some(i)
    }

    /// A crash the engine's restart policy answers at once: a running container's process dies
    /// (`die`, exit code 1) and the engine starts it again (`start`), as a crash-looping
    /// container with `restart: always` does. It ends running; an event storm is many of these.
    /// Returns whether it was running.
    pub fn flap(&self, name_or_id: &str) -> bool {
        let mut state = self.inner.lock();
        let Some(i) = self.die(&mut state, name_or_id, 1) else {
            return false;
        };
        let started = start_container(&self.inner, &mut state, i).is_ok();
        if started {
            state.containers[i].restart_count += 1;
        }
        started
    }

    /// Names and states (`running`, `exited`, …) of every container, sorted by name.
    #[must_use]
    pub fn containers(&self) -> Vec<(String, String)> {
        let state = self.inner.lock();
        let mut out: Vec<_> = state
            .containers
            .iter()
            .map(|c| (c.name.clone(), c.status.as_str().to_owned()))
            .collect();
        out.sort();
        out
    }
}

fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

/// `busybox` → `busybox:latest`; a reference with a tag or digest stays.
fn normalize_ref(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if last.contains(':') || reference.contains('@') || reference.starts_with("sha256:") {
        reference.to_owned()
    } else {
        format!("{reference}:latest")
    }
}

fn find_container(state: &State, key: &str) -> Option<usize> {
    let key = key.strip_prefix('/').unwrap_or(key);
    if key.is_empty() {
        return None;
    }
    if let Some(i) = state
        .containers
        .iter()
        .position(|c| c.id == key || c.name == key)
    {
        return Some(i);
    }
    let mut hits = state
        .containers
        .iter()
        .enumerate()
        .filter(|(_, c)| c.id.starts_with(key));
    match (hits.next(), hits.next()) {
        (Some((i, _)), None) => Some(i),
        _ => None,
    }
}

fn find_image(state: &State, key: &str) -> Option<usize> {
    let wanted = normalize_ref(key);
    state.images.iter().position(|i| {
        i.id == key
            || i.tags.contains(&wanted)
            || (key.len() >= 12 && i.id.trim_start_matches("sha256:").starts_with(key))
    })
}

impl Inner {
    /// Records and broadcasts a container event as dockerd 20.10 writes it.
    fn emit(&self, state: &mut State, c: &SimContainer, action: &str, extra: &[(&str, String)]) {
        let now = now_nanos();
        let mut attributes: Map<String, Value> = c.labels();
        attributes.insert("image".into(), Value::String(c.image_ref.clone()));
        attributes.insert("name".into(), Value::String(c.name.clone()));
        for (k, v) in extra {
            attributes.insert((*k).to_owned(), Value::String(v.clone()));
        }
        let event = json!({
            "status": action,
            "id": c.id,
            "from": c.image_ref,
            "Type": "container",
            "Action": action,
            "Actor": {"ID": c.id, "Attributes": attributes},
            "scope": "local",
            "time": now / 1_000_000_000,
            "timeNano": now,
        });
        if state.history.len() >= HISTORY {
            state.history.pop_front();
        }
        state.history.push_back(event.clone());
        let _ = self.events.send(event);
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"message": message.into()}))).into_response()
}

fn ok_json(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn query(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .map(|q| {
            q.split('&')
                .filter_map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    Some((decode(k)?, decode(v)?))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// `filters` as dockerd reads it: `{"k":["v"]}` or the older `{"k":{"v":true}}`.
fn filters(q: &HashMap<String, String>) -> Result<HashMap<String, Vec<String>>, Box<Response>> {
    let Some(raw) = q.get("filters").filter(|f| !f.is_empty()) else {
        return Ok(HashMap::new());
    };
    let value: Value = serde_json::from_str(raw).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("invalid filter: {e}"),
        ))
    })?;
    let Some(map) = value.as_object() else {
        return Err(Box::new(error(StatusCode::BAD_REQUEST, "invalid filter")));
    };
    Ok(map
        .iter()
        .map(|(k, v)| {
            let values = match v {
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect(),
                Value::Object(o) => o.keys().cloned().collect(),
                _ => Vec::new(),
            };
            (k.clone(), values)
        })
        .collect())
}

fn labels_match(labels: &Map<String, Value>, wanted: &[String]) -> bool {
    wanted.iter().all(|w| match w.split_once('=') {
        Some((k, v)) => labels.get(k).and_then(Value::as_str) == Some(v),
        None => labels.contains_key(w.as_str()),
    })
}

async fn handle(
    axum::extract::State(inner): axum::extract::State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    inner.requests.fetch_add(1, Ordering::Relaxed);
    let path = uri.path();
    // `/v1.41/containers/json` and `/containers/json` are the same call.
    let path = match path.strip_prefix("/v1.") {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => path,
    };
    let q = query(&uri);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (&method, segments.as_slice()) {
        (&Method::GET | &Method::HEAD, ["_ping"]) => "OK".into_response(),
        (&Method::GET, ["version"]) => ok_json(
            StatusCode::OK,
            json!({"Version": SIM_ENGINE_VERSION, "ApiVersion": SIM_API_VERSION,
                   "MinAPIVersion": "1.12", "Os": "linux", "Arch": "amd64",
                   "KernelVersion": "sim", "GoVersion": "sim"}),
        ),
        (&Method::GET, ["info"]) => {
            let state = inner.lock();
            ok_json(
                StatusCode::OK,
                json!({"Containers": state.containers.len(), "Images": state.images.len(),
                       "ServerVersion": SIM_ENGINE_VERSION, "Name": "sim"}),
            )
        }
        (&Method::GET, ["events"]) => events(&inner, &q),
        (&Method::GET, ["containers", "json"]) => list_containers(&inner, &q),
        (&Method::POST, ["containers", "create"]) => create(&inner, &q, &body),
        (&Method::GET, ["containers", id, "json"]) => {
            let state = inner.lock();
            match find_container(&state, id) {
                Some(i) => ok_json(StatusCode::OK, inspect(&state, &state.containers[i])),
                None => no_such_container(id),
            }
        }
        (&Method::POST, ["containers", id, action]) => {
            container_action(&inner, id, action, &q, &body)
        }
        (&Method::DELETE, ["containers", id]) => remove(&inner, id, &q),
        (&Method::GET, ["images", "json"]) => list_images(&inner),
        (&Method::POST, ["images", "create"]) => {
            let image = q.get("fromImage").cloned().unwrap_or_default();
            error(
                StatusCode::NOT_FOUND,
                format!(
                    "pull access denied for {image}, repository does not exist or may require \
                     'docker login': the simulator has no registry"
                ),
            )
        }
        (&Method::GET, ["images", rest @ .., "json"]) if !rest.is_empty() => {
            let name = rest.join("/");
            let state = inner.lock();
            match find_image(&state, &name) {
                Some(i) => ok_json(StatusCode::OK, image_inspect(&state.images[i])),
                None => error(StatusCode::NOT_FOUND, format!("No such image: {name}")),
            }
        }
        (&Method::DELETE, ["images", rest @ ..]) if !rest.is_empty() => {
            let name = rest.join("/");
            let mut state = inner.lock();
            match find_image(&state, &name) {
                Some(i) => {
                    let image = state.images.remove(i);
                    ok_json(StatusCode::OK, json!([{"Deleted": image.id}]))
                }
                None => error(StatusCode::NOT_FOUND, format!("No such image: {name}")),
            }
        }
        (&Method::GET, ["networks"]) => {
            let state = inner.lock();
            ok_json(
                StatusCode::OK,
                Value::Array(state.networks.values().cloned().collect()),
            )
        }
        (&Method::POST, ["networks", "create"]) => {
            create_named(&inner, &body, |s| &mut s.networks, "network")
        }
        (&Method::POST, ["networks", net, "connect"]) => connect(&inner, net, &body),
        (&Method::GET, ["networks", name]) => {
            let state = inner.lock();
            match state.networks.get(*name) {
                Some(n) => ok_json(StatusCode::OK, n.clone()),
                None => error(StatusCode::NOT_FOUND, format!("network {name} not found")),
            }
        }
        (&Method::DELETE, ["networks", name]) => {
            let mut state = inner.lock();
            match state.networks.remove(*name) {
                Some(_) => no_content(),
                None => error(StatusCode::NOT_FOUND, format!("network {name} not found")),
            }
        }
        (&Method::GET, ["volumes"]) => {
            let state = inner.lock();
            let volumes: Vec<Value> = state.volumes.values().cloned().collect();
            ok_json(
                StatusCode::OK,
                json!({"Volumes": volumes, "Warnings": null}),
            )
        }
        (&Method::POST, ["volumes", "create"]) => {
            create_named(&inner, &body, |s| &mut s.volumes, "volume")
        }
        (&Method::GET, ["volumes", name]) => {
            let state = inner.lock();
            match state.volumes.get(*name) {
                Some(v) => ok_json(StatusCode::OK, v.clone()),
                None => error(StatusCode::NOT_FOUND, format!("get {name}: no such volume")),
            }
        }
        (&Method::DELETE, ["volumes", name]) => {
            let mut state = inner.lock();
            match state.volumes.remove(*name) {
                Some(_) => no_content(),
                None => error(StatusCode::NOT_FOUND, format!("get {name}: no such volume")),
            }
        }
        _ => error(
            StatusCode::NOT_FOUND,
            format!("page not found: the simulator does not serve {method} {path}"),
        ),
    }
}

fn no_such_container(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, format!("No such container: {id}"))
}

fn human(seconds: i64) -> String {
    match seconds {
        s if s < 1 => "Less than a second".to_owned(),
        1 => "1 second".to_owned(),
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "About a minute".to_owned(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 7200 => "About an hour".to_owned(),
        s => format!("{} hours", s / 3600),
    }
}

fn summary_status(c: &SimContainer, now: i64) -> String {
    let since = |t: Option<i64>| human((now - t.unwrap_or(now)) / 1_000_000_000);
    match c.status {
        Status::Created => "Created".to_owned(),
        Status::Running => format!("Up {}", since(c.started_at)),
        Status::Paused => format!("Up {} (Paused)", since(c.started_at)),
        Status::Exited => format!("Exited ({}) {} ago", c.exit_code, since(c.finished_at)),
    }
}

fn port_list(c: &SimContainer) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(map) = c.host_config.get("PortBindings").and_then(Value::as_object) {
        for (key, bindings) in map {
            let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
            let private: i64 = port.parse().unwrap_or(0);
            for b in bindings.as_array().into_iter().flatten() {
                let ip = b.get("HostIp").and_then(Value::as_str).unwrap_or("");
                let public: Option<i64> = b
                    .get("HostPort")
                    .and_then(Value::as_str)
                    .and_then(|p| p.parse().ok());
                if c.running() {
                    out.push(json!({"IP": if ip.is_empty() { "0.0.0.0" } else { ip },
                                    "PrivatePort": private, "PublicPort": public, "Type": proto}));
                }
            }
        }
    }
    out
}

fn list_containers(inner: &Inner, q: &HashMap<String, String>) -> Response {
    let filters = match filters(q) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let all = matches!(q.get("all").map(String::as_str), Some("true" | "1"));
    let now = now_nanos();
    let state = inner.lock();
    let mut list: Vec<&SimContainer> = state
        .containers
        .iter()
        .filter(|c| all || c.running())
        .filter(|c| labels_match(&c.labels(), filters.get("label").map_or(&[], Vec::as_slice)))
        .filter(|c| {
            filters.get("name").is_none_or(|names| {
                names
                    .iter()
                    .any(|n| c.name.contains(n.trim_start_matches('/')))
            })
        })
        .filter(|c| {
            filters
                .get("id")
                .is_none_or(|ids| ids.iter().any(|i| c.id.starts_with(i.as_str())))
        })
        .filter(|c| {
            filters
                .get("status")
                .is_none_or(|s| s.iter().any(|s| s == c.status.as_str()))
        })
        .collect();
    // Newest first, as dockerd lists.
    list.sort_by_key(|c| std::cmp::Reverse(c.created));
    let body: Vec<Value> = list
        .into_iter()
        .map(|c| {
            let command = [c.config.get("Entrypoint"), c.config.get("Cmd")]
                .into_iter()
                .flatten()
                .filter_map(Value::as_array)
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ");
            json!({
                "Id": c.id,
                "Names": [format!("/{}", c.name)],
                "Image": c.image_ref,
                "ImageID": c.image_id,
                "Command": command,
                "Created": c.created / 1_000_000_000,
                "Ports": port_list(c),
                "Labels": c.labels(),
                "State": c.status.as_str(),
                "Status": summary_status(c, now),
                "HostConfig": {"NetworkMode": c.host_config.get("NetworkMode").cloned().unwrap_or(json!("default"))},
                "Mounts": [],
            })
        })
        .collect();
    ok_json(StatusCode::OK, Value::Array(body))
}

/// The image's config under the container's, as dockerd merges them at create.
fn merge_config(body: &Value, image: &Value, image_ref: &str, short_id: &str) -> Value {
    let mut config = body.as_object().cloned().unwrap_or_default();
    config.remove("HostConfig");
    config.remove("NetworkingConfig");
    config.retain(|_, v| !v.is_null());
    let image = image.as_object().cloned().unwrap_or_default();
    // Env: the image's, then the container's (same key: the container wins).
    let mut env: Vec<String> = Vec::new();
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_owned();
    for e in image
        .get("Env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            config
                .get("Env")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .filter_map(Value::as_str)
    {
        let k = key(e);
        env.retain(|x| key(x) != k);
        env.push(e.to_owned());
    }
    config.insert("Env".into(), json!(env));
    // Labels: union, the container's win.
    let mut labels = image
        .get("Labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(own) = config.get("Labels").and_then(Value::as_object) {
        labels.extend(own.clone());
    }
    config.insert("Labels".into(), Value::Object(labels));
    // Entrypoint and Cmd: an entrypoint given at create drops the image's Cmd.
    let has = |m: &Map<String, Value>, k: &str| m.get(k).is_some_and(|v| !v.is_null());
    if !has(&config, "Entrypoint") {
        if let Some(ep) = image.get("Entrypoint") {
            config.insert("Entrypoint".into(), ep.clone());
        }
        if !has(&config, "Cmd")
            && let Some(cmd) = image.get("Cmd")
        {
            config.insert("Cmd".into(), cmd.clone());
        }
    }
    for k in ["WorkingDir", "User", "Healthcheck", "StopSignal"] {
        let empty = config
            .get(k)
            .is_none_or(|v| v.is_null() || v.as_str() == Some(""));
        if empty && let Some(v) = image.get(k) {
            config.insert(k.into(), v.clone());
        }
    }
    for k in ["ExposedPorts", "Volumes"] {
        let mut merged = image
            .get(k)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(own) = config.get(k).and_then(Value::as_object) {
            merged.extend(own.clone());
        }
        if merged.is_empty() {
            config.remove(k);
        } else {
            config.insert(k.into(), Value::Object(merged));
        }
    }
    config.insert("Image".into(), json!(image_ref));
    if config
        .get("Hostname")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        config.insert("Hostname".into(), json!(short_id));
    }
    Value::Object(config)
}

fn host_ports(host_config: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(map) = host_config.get("PortBindings").and_then(Value::as_object) {
        for (key, bindings) in map {
            let proto = key.split_once('/').map_or("tcp", |(_, p)| p);
            for b in bindings.as_array().into_iter().flatten() {
                if let Some(p) = b
                    .get("HostPort")
                    .and_then(Value::as_str)
                    .filter(|p| !p.is_empty())
                {
                    out.push((p.to_owned(), proto.to_owned()));
                }
            }
        }
    }
    out
}

fn create(inner: &Inner, q: &HashMap<String, String>, body: &Bytes) -> Response {
    let body: Value = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")),
    };
    let name = q.get("name").cloned().unwrap_or_default();
    let name = name.trim_start_matches('/').to_owned();
    let image_ref = body
        .get("Image")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut state = inner.lock();
    if !name.is_empty() && state.containers.iter().any(|c| c.name == name) {
        let other = state
            .containers
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.id.clone())
            .unwrap_or_default();
        return error(
            StatusCode::CONFLICT,
            format!(
                "Conflict. The container name \"/{name}\" is already in use by container \
                 \"{other}\". You have to remove (or rename) that container to be able to reuse \
                 that name."
            ),
        );
    }
    let Some(image_index) = find_image(&state, &image_ref) else {
        return error(StatusCode::NOT_FOUND, format!("No such image: {image_ref}"));
    };
    let host_config = body.get("HostConfig").cloned().unwrap_or_else(|| json!({}));
    if let Some(mounts) = host_config.get("Mounts").and_then(Value::as_array) {
        for m in mounts {
            let anonymous = m
                .get("Source")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            if anonymous && m.get("ReadOnly").and_then(Value::as_bool) == Some(true) {
                // dockerd's own words for what it cannot do.
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid mount config for type \"volume\": must not set ReadOnly mode when \
                     using anonymous volumes",
                );
            }
        }
    }
    let id = new_id(&name);
    let short = id[..12].to_owned();
    let name = if name.is_empty() {
        format!("sim_{short}")
    } else {
        name
    };
    let image = &state.images[image_index];
    let config = merge_config(&body, &image.config, &image_ref, &short);
    let image_id = image.id.clone();
    let mut networks = BTreeMap::new();
    let mode = host_config
        .get("NetworkMode")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty() && *m != "default")
        .unwrap_or("bridge")
        .to_owned();
    let endpoint = body
        .pointer("/NetworkingConfig/EndpointsConfig")
        .and_then(|e| e.get(&mode))
        .cloned()
        .unwrap_or_else(|| json!({}));
    if mode != "host" && mode != "none" && !state.networks.contains_key(&mode) {
        return error(StatusCode::NOT_FOUND, format!("network {mode} not found"));
    }
    networks.insert(mode, endpoint);
    let mut anonymous = BTreeMap::new();
    let mut anon_targets: Vec<String> = config
        .get("Volumes")
        .and_then(Value::as_object)
        .map(|v| v.keys().cloned().collect())
        .unwrap_or_default();
    for m in host_config
        .get("Mounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if m.get("Source")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
            && let Some(t) = m.get("Target").and_then(Value::as_str)
        {
            anon_targets.push(t.to_owned());
        }
    }
    for t in anon_targets {
        anonymous.insert(t, new_id("volume"));
    }
    let c = SimContainer {
        id: id.clone(),
        name,
        created: now_nanos(),
        image_ref,
        image_id,
        config,
        host_config,
        networks,
        anonymous,
        status: Status::Created,
        exit_code: 0,
        pid: 0,
        started_at: None,
        finished_at: None,
        restart_count: 0,
    };
    state.containers.push(c.clone());
    inner.emit(&mut state, &c, "create", &[]);
    ok_json(StatusCode::CREATED, json!({"Id": id, "Warnings": []}))
}

fn connect(inner: &Inner, net: &str, body: &Bytes) -> Response {
    let body: Value = serde_json::from_slice(body).unwrap_or_default();
    let container = body
        .get("Container")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut state = inner.lock();
    if !state.networks.contains_key(net) {
        return error(StatusCode::NOT_FOUND, format!("network {net} not found"));
    }
    let Some(i) = find_container(&state, container) else {
        return no_such_container(container);
    };
    let endpoint = body
        .get("EndpointConfig")
        .cloned()
        .unwrap_or_else(|| json!({}));
    state.containers[i]
        .networks
        .insert(net.to_owned(), endpoint);
    StatusCode::OK.into_response()
}

fn create_named(
    inner: &Inner,
    body: &Bytes,
    table: impl Fn(&mut State) -> &mut BTreeMap<String, Value>,
    kind: &str,
) -> Response {
    let body: Value = serde_json::from_slice(body).unwrap_or_default();
    let name = body
        .get("Name")
        .and_then(Value::as_str)
        .map_or_else(|| new_id(kind), str::to_owned);
    let mut state = inner.lock();
    let id = new_id(&name);
    let entry = json!({
        "Name": name, "Id": id,
        "Driver": body.get("Driver").cloned().unwrap_or(json!("local")),
        "Labels": body.get("Labels").cloned().unwrap_or(json!({})),
        "Scope": "local", "Mountpoint": format!("/sim/{kind}s/{name}/_data"),
        "CreatedAt": rfc3339(now_nanos()), "Created": rfc3339(now_nanos()),
    });
    let existing = table(&mut state).get(&name).cloned();
    if let Some(e) = existing {
        return if kind == "volume" {
            ok_json(StatusCode::CREATED, e)
        } else {
            error(
                StatusCode::CONFLICT,
                format!("network with name {name} already exists"),
            )
        };
    }
    table(&mut state).insert(name, entry.clone());
    if kind == "volume" {
        ok_json(StatusCode::CREATED, entry)
    } else {
        ok_json(StatusCode::CREATED, json!({"Id": id, "Warning": ""}))
    }
}

fn start_container(inner: &Inner, state: &mut State, i: usize) -> Result<(), Box<Response>> {
    let ports = host_ports(&state.containers[i].host_config);
    for (port, proto) in &ports {
        let taken = state.containers.iter().enumerate().any(|(j, o)| {
            j != i
                && o.running()
                && host_ports(&o.host_config).contains(&(port.clone(), proto.clone()))
        });
        if taken {
            return Err(Box::new(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "driver failed programming external connectivity on endpoint {}: Bind for \
                     0.0.0.0:{port} failed: port is already allocated",
                    state.containers[i].name
                ),
            )));
        }
    }
    state.next_pid += 1;
    let pid = state.next_pid;
    let c = &mut state.containers[i];
    c.status = Status::Running;
    c.pid = pid;
    c.exit_code = 0;
    c.started_at = Some(now_nanos());
    let c = c.clone();
    inner.emit(state, &c, "start", &[]);
    Ok(())
}

/// A running container's process ends after `signal`: `kill`, then `die`.
fn end_process(inner: &Inner, state: &mut State, i: usize, signal: &str, exit_code: i64) {
    let c = state.containers[i].clone();
    inner.emit(state, &c, "kill", &[("signal", signal.to_owned())]);
    let c = &mut state.containers[i];
    c.status = Status::Exited;
    c.exit_code = exit_code;
    c.pid = 0;
    c.finished_at = Some(now_nanos());
    let c = c.clone();
    inner.emit(state, &c, "die", &[("exitCode", exit_code.to_string())]);
}

fn container_action(
    inner: &Inner,
    id: &str,
    action: &str,
    q: &HashMap<String, String>,
    _body: &Bytes,
) -> Response {
    let mut state = inner.lock();
    let Some(i) = find_container(&state, id) else {
        return no_such_container(id);
    };
    let status = state.containers[i].status;
    let name = state.containers[i].name.clone();
    match action {
        "start" => match status {
            Status::Running | Status::Paused => StatusCode::NOT_MODIFIED.into_response(),
            Status::Created | Status::Exited => match start_container(inner, &mut state, i) {
                Ok(()) => no_content(),
                Err(r) => *r,
            },
        },
        "stop" => match status {
            Status::Created | Status::Exited => StatusCode::NOT_MODIFIED.into_response(),
            Status::Running | Status::Paused => {
                end_process(inner, &mut state, i, "15", 0);
                let c = state.containers[i].clone();
                inner.emit(&mut state, &c, "stop", &[]);
                no_content()
            }
        },
        "kill" => match status {
            Status::Created | Status::Exited => error(
                StatusCode::CONFLICT,
                format!(
                    "Cannot kill container: {id}: Container {} is not running",
                    state.containers[i].id
                ),
            ),
            Status::Running | Status::Paused => {
                let signal = q.get("signal").cloned().unwrap_or_else(|| "SIGKILL".into());
                let numeric = match signal.trim_start_matches("SIG") {
                    "KILL" | "9" => "9",
                    "TERM" | "15" => "15",
                    "INT" | "2" => "2",
                    "HUP" | "1" => "1",
                    other => other,
                }
                .to_owned();
                let code = numeric.parse::<i64>().map_or(137, |n| 128 + n);
                end_process(inner, &mut state, i, &numeric, code);
                no_content()
            }
        },
        "restart" => {
            if matches!(status, Status::Running | Status::Paused) {
                end_process(inner, &mut state, i, "15", 0);
                let c = state.containers[i].clone();
                inner.emit(&mut state, &c, "stop", &[]);
            }
            if let Err(r) = start_container(inner, &mut state, i) {
                return *r;
            }
            state.containers[i].restart_count += 1;
            let c = state.containers[i].clone();
            inner.emit(&mut state, &c, "restart", &[]);
            no_content()
        }
        "pause" => match status {
            Status::Running => {
                state.containers[i].status = Status::Paused;
                let c = state.containers[i].clone();
                inner.emit(&mut state, &c, "pause", &[]);
                no_content()
            }
            Status::Paused => error(
                StatusCode::CONFLICT,
                format!("Container {} is already paused", state.containers[i].id),
            ),
            _ => error(
                StatusCode::CONFLICT,
                format!("Container {} is not running", state.containers[i].id),
            ),
        },
        "unpause" => match status {
            Status::Paused => {
                state.containers[i].status = Status::Running;
                let c = state.containers[i].clone();
                inner.emit(&mut state, &c, "unpause", &[]);
                no_content()
            }
            _ => error(
                StatusCode::CONFLICT,
                format!("Container {} is not paused", state.containers[i].id),
            ),
        },
        "rename" => {
            let new = q.get("name").cloned().unwrap_or_default();
            let new = new.trim_start_matches('/').to_owned();
            if new.is_empty() {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Neither old nor new names may be empty",
                );
            }
            if state.containers.iter().any(|c| c.name == new) {
                return error(
                    StatusCode::CONFLICT,
                    format!(
                        "Error when allocating new name: Conflict. The container name \"/{new}\" is already in use"
                    ),
                );
            }
            state.containers[i].name.clone_from(&new);
            let c = state.containers[i].clone();
            inner.emit(&mut state, &c, "rename", &[("oldName", format!("/{name}"))]);
            no_content()
        }
        "wait" | "attach" | "exec" | "update" | "resize" => error(
            StatusCode::NOT_IMPLEMENTED,
            format!("the simulator does not implement `{action}`"),
        ),
        _ => error(StatusCode::NOT_FOUND, format!("page not found: {action}")),
    }
}

fn remove(inner: &Inner, id: &str, q: &HashMap<String, String>) -> Response {
    let force = matches!(q.get("force").map(String::as_str), Some("true" | "1"));
    let mut state = inner.lock();
    let Some(i) = find_container(&state, id) else {
        return no_such_container(id);
    };
    if state.containers[i].running() {
        if !force {
            return error(
                StatusCode::CONFLICT,
                format!(
                    "You cannot remove a running container {}. Stop the container before \
                     attempting removal or force remove",
                    state.containers[i].id
                ),
            );
        }
        end_process(inner, &mut state, i, "9", 137);
    }
    let c = state.containers.remove(i);
    inner.emit(&mut state, &c, "destroy", &[]);
    no_content()
}

fn inspect(state: &State, c: &SimContainer) -> Value {
    let short = &c.id[..12];
    let healthcheck = c
        .config
        .get("Healthcheck")
        .and_then(|h| h.get("Test"))
        .and_then(Value::as_array)
        .is_some_and(|t| t.first().and_then(Value::as_str) != Some("NONE") && !t.is_empty());
    let mut state_json = json!({
        "Status": c.status.as_str(),
        "Running": c.running(),
        "Paused": c.status == Status::Paused,
        "Restarting": false,
        "OOMKilled": false,
        "Dead": false,
        "Pid": c.pid,
        "ExitCode": c.exit_code,
        "Error": "",
        "StartedAt": c.started_at.map_or_else(|| ZERO_TIME.to_owned(), rfc3339),
        "FinishedAt": c.finished_at.map_or_else(|| ZERO_TIME.to_owned(), rfc3339),
    });
    if healthcheck {
        let status = if c.running() { "healthy" } else { "unhealthy" };
        state_json["Health"] = json!({"Status": status, "FailingStreak": 0, "Log": []});
    }
    // Mount points: binds (`src:dst[:ro]`), mounts, anonymous volumes.
    let mut mounts = Vec::new();
    for b in c
        .host_config
        .get("Binds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let parts: Vec<&str> = b.split(':').collect();
        let (source, target) = (
            parts.first().copied().unwrap_or(""),
            parts.get(1).copied().unwrap_or(""),
        );
        let ro = parts
            .get(2)
            .is_some_and(|o| o.split(',').any(|x| x == "ro"));
        if source.starts_with('/') {
            mounts.push(json!({"Type": "bind", "Source": source, "Destination": target,
                               "Mode": parts.get(2).copied().unwrap_or(""), "RW": !ro, "Propagation": "rprivate"}));
        } else {
            mounts.push(json!({"Type": "volume", "Name": source,
                               "Source": format!("/sim/volumes/{source}/_data"), "Destination": target,
                               "Driver": "local", "Mode": parts.get(2).copied().unwrap_or("z"), "RW": !ro, "Propagation": ""}));
        }
    }
    for (target, name) in &c.anonymous {
        mounts.push(json!({"Type": "volume", "Name": name,
                           "Source": format!("/sim/volumes/{name}/_data"), "Destination": target,
                           "Driver": "local", "Mode": "", "RW": true, "Propagation": ""}));
    }
    let mut networks = Map::new();
    for (net, endpoint) in &c.networks {
        let mut aliases: Vec<Value> = endpoint
            .get("Aliases")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        // On user-defined networks dockerd adds the short id as an alias.
        let user_defined = !matches!(net.as_str(), "bridge" | "host" | "none");
        if user_defined {
            aliases.push(json!(short));
        }
        let net_id = state
            .networks
            .get(net)
            .and_then(|n| n.get("Id"))
            .cloned()
            .unwrap_or(Value::Null);
        networks.insert(
            net.clone(),
            json!({"Aliases": if aliases.is_empty() { Value::Null } else { Value::Array(aliases) },
                   "NetworkID": net_id, "EndpointID": if c.running() { new_id("ep") } else { String::new() }}),
        );
    }
    let mut host_config = c.host_config.clone();
    if host_config.get("NetworkMode").is_none_or(Value::is_null) {
        host_config["NetworkMode"] = json!("default");
    }
    let mut ports = Map::new();
    if c.running()
        && let Some(map) = c.host_config.get("PortBindings").and_then(Value::as_object)
    {
        for (k, v) in map {
            ports.insert(k.clone(), v.clone());
        }
    }
    json!({
        "Id": c.id,
        "Created": rfc3339(c.created),
        "Path": c.config.get("Entrypoint").and_then(|e| e.get(0)).or_else(|| c.config.get("Cmd").and_then(|e| e.get(0))).cloned().unwrap_or(json!("")),
        "Args": [],
        "State": state_json,
        "Image": c.image_id,
        "Name": format!("/{}", c.name),
        "RestartCount": c.restart_count,
        "Driver": "sim",
        "Platform": "linux",
        "HostConfig": host_config,
        "Mounts": mounts,
        "Config": c.config,
        "NetworkSettings": {"Networks": networks, "Ports": ports},
    })
}

fn image_inspect(i: &SimImage) -> Value {
    json!({
        "Id": i.id,
        "RepoTags": i.tags,
        "RepoDigests": [],
        "Parent": "",
        "Created": rfc3339(i.created * 1_000_000_000),
        "Config": i.config,
        "Architecture": "amd64",
        "Os": "linux",
        "Size": 1_000_000,
    })
}

fn list_images(inner: &Inner) -> Response {
    let state = inner.lock();
    let body: Vec<Value> = state
        .images
        .iter()
        .map(|i| {
            let used = state.containers.iter().filter(|c| c.image_id == i.id).count();
            json!({
                "Id": i.id,
                "ParentId": "",
                "RepoTags": if i.tags.is_empty() { vec!["<none>:<none>".to_owned()] } else { i.tags.clone() },
                "RepoDigests": [],
                "Created": i.created,
                "Size": 1_000_000,
                "SharedSize": -1,
                "VirtualSize": 1_000_000,
                "Labels": i.config.get("Labels").cloned().unwrap_or(json!({})),
                "Containers": if used == 0 { -1 } else { i64::try_from(used).unwrap_or(i64::MAX) },
            })
        })
        .collect();
    ok_json(StatusCode::OK, Value::Array(body))
}

fn event_matches(event: &Value, filters: &HashMap<String, Vec<String>>) -> bool {
    let attributes = event
        .pointer("/Actor/Attributes")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let get = |p: &str| event.pointer(p).and_then(Value::as_str).unwrap_or_default();
    filters.iter().all(|(k, wanted)| match k.as_str() {
        "type" => wanted.iter().any(|w| w == get("/Type")),
        "event" => wanted.iter().any(|w| w == get("/Action")),
        "container" => wanted.iter().any(|w| {
            get("/Actor/ID").starts_with(w.as_str())
                || attributes.get("name").and_then(Value::as_str) == Some(w.as_str())
        }),
        "label" => labels_match(&attributes, wanted),
        _ => true,
    })
}

fn events(inner: &Arc<Inner>, q: &HashMap<String, String>) -> Response {
    let filters = match filters(q) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let since: Option<i64> = q.get("since").and_then(|s| {
        let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
        let secs: i64 = secs.parse().ok()?;
        let frac = format!("{frac:0<9}");
        let nanos: i64 = frac.get(..9)?.parse().ok()?;
        Some(secs * 1_000_000_000 + nanos)
    });
    // Subscribe before reading the history, so nothing falls in between.
    let rx = inner.events.subscribe();
    let replay: Vec<Value> = match since {
        Some(t) => inner
            .lock()
            .history
            .iter()
            .filter(|e| e.get("timeNano").and_then(Value::as_i64).unwrap_or(0) >= t)
            .cloned()
            .collect(),
        None => Vec::new(),
    };
    let shutdown = inner.shutdown.clone();
    let replay = futures_util::stream::iter(replay);
    let live = futures_util::stream::unfold((rx, shutdown), |(mut rx, mut shutdown)| async move {
        loop {
            let next = tokio::select! {
                r = rx.recv() => r,
                _ = shutdown.wait_for(|s| *s) => return None,
            };
            match next {
                Ok(e) => return Some((e, (rx, shutdown))),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    use futures_util::StreamExt;
    let stream = replay
        .chain(live)
        .filter(move |e| std::future::ready(event_matches(e, &filters)))
        .map(|e| {
            let mut line = serde_json::to_vec(&e).unwrap_or_default();
            line.push(b'\n');
            Ok::<_, std::convert::Infallible>(Bytes::from(line))
        });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_ref_adds_latest_only_without_a_tag() {
        assert_eq!(normalize_ref("busybox"), "busybox:latest");
        assert_eq!(normalize_ref("busybox:1"), "busybox:1");
        assert_eq!(
            normalize_ref("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(normalize_ref("mcp/x:1"), "mcp/x:1");
    }

    #[test]
    fn decode_handles_percent_and_plus() {
        assert_eq!(decode("a%3Db+c").as_deref(), Some("a=b c"));
        assert_eq!(decode("%7B%22x%22%7D").as_deref(), Some("{\"x\"}"));
        assert_eq!(decode("%G1"), None);
    }
}
