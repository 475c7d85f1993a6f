//! [`DockerRuntime`]: the [`ContainerRuntime`] port over one Docker engine, through bollard.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::{API_DEFAULT_VERSION, Docker};
use futures_util::{Stream, StreamExt, TryStreamExt, stream};
use refinery_core::inventory::{EngineImage, EngineNetwork, EngineVolume};
use refinery_core::runtime::RuntimeResult;
use refinery_core::{
    BuildSpec, ContainerRuntime, CreateRequest, EngineEvent, EngineInfo, ImageDefaults, ImageInfo,
    LabelSelector, NetworkSpec, Observed, ObservedContainer, ObservedNetwork, ObservedVolume,
    PullProgress, RuntimeError, VolumeSpec,
};
use tokio::sync::OnceCell;

use crate::convert::{self, Op, container_what, image_what};
use crate::registry_auth::RegistryAuth;
use crate::ssh::{SshConnector, SshTarget};
use crate::tls::TlsFiles;

/// Where `from_env` connects when `DOCKER_HOST` is unset.
pub const DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";

/// How many inspections run at once during `observe`.
const INSPECT_CONCURRENCY: usize = 8;

/// Seconds the client waits for an engine's answer (headers), on top of a stop's own timeout.
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// How long a pull may go without a word of progress from the engine before it is abandoned: a
/// registry that stops sending mid-download would otherwise hold the pull (and the pass that
/// waits for it) for as long as the connection stays open. A pull that moves, however slowly,
/// reports progress far more often.
pub const PULL_STALL_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// Path of a unix socket.
    Unix(String),
    /// `tcp://host:port`, plain HTTP.
    Http(String),
    /// `tcp://host:port` with TLS client certificates (`docker --tlsverify`).
    Tls(String, TlsFiles),
    /// `ssh://[user@]host[:port]`, through `ssh … docker system dial-stdio`.
    Ssh(SshTarget),
}

/// One Docker engine. Connecting is lazy: the first call opens the client and negotiates the API
/// version (the engine here speaks 1.41, bollard models 1.53); a failed attempt is retried on the
/// next call. Clones share the connection.
#[derive(Clone)]
pub struct DockerRuntime {
    endpoint: String,
    target: Target,
    /// Shared by clones, so a clone made before the first call still connects once.
    client: Arc<OnceCell<Docker>>,
    cache: Arc<ObserveCache>,
    /// Credentials sent with pulls (the docker CLI's config of this user by default).
    auth: RegistryAuth,
    /// See [`PULL_STALL_TIMEOUT`].
    pull_stall: Duration,
}

/// Inspections kept between `observe` calls while an event stream follows the engine: a
/// container is inspected again only when its list entry changed or an event named it; an image
/// (its id is its content) is inspected once. Without a live event stream nothing is cached.
#[derive(Default)]
struct ObserveCache {
    /// Live event streams of this runtime (clones share it).
    followers: AtomicUsize,
    containers: Mutex<ContainerCache>,
    images: Mutex<HashMap<String, ImageInfo>>,
}

/// How many forgotten container ids the cache remembers, so an observation that ran while
/// events arrived does not store what they made stale.
const FORGOTTEN_KEPT: usize = 1024;

/// Each container's last inspection, keyed by id, with the fingerprint of the list entry it was
/// made for. It is kept as compact JSON: a fleet's cache holds every container of every node
/// (10,000 for 500 nodes of 20), and the struct with its maps is about three times the size;
/// an observation decodes the few it uses.
#[derive(Default)]
struct ContainerCache {
    entries: HashMap<String, (u64, Box<[u8]>)>,
    /// Bumped by every forget and clear.
    generation: u64,
    /// The last [`FORGOTTEN_KEPT`] ids an event named (their [`id_hash`]: a storm fills this on
    /// every node, and a full id is six times the size), with the generation that forgot them.
    forgotten: VecDeque<(u64, u64)>,
    /// Up to this generation, what was forgotten is no longer known (cleared, or dropped from
    /// `forgotten`).
    horizon: u64,
}

impl ContainerCache {
    fn forget(&mut self, id: &str) {
        self.generation += 1;
        self.entries.remove(id);
        self.forgotten.push_back((self.generation, id_hash(id)));
        if self.forgotten.len() > FORGOTTEN_KEPT
            && let Some((g, _)) = self.forgotten.pop_front()
        {
            self.horizon = g;
        }
    }

    fn clear(&mut self) {
        self.generation += 1;
        self.entries = HashMap::new();
        self.forgotten.clear();
        self.horizon = self.generation;
    }

    /// After an observation that started at generation `since` and listed `listed`: forgets
    /// the containers no longer listed and keeps the new inspections, except those an event
    /// named meanwhile (all of them when that is no longer known).
    fn store(
        &mut self,
        since: u64,
        listed: &HashSet<&str>,
        inspected: Vec<(String, u64, Box<[u8]>)>,
    ) {
        self.entries.retain(|id, _| listed.contains(id.as_str()));
        if self.horizon > since {
            return;
        }
        let stale: HashSet<u64> = self
            .forgotten
            .iter()
            .filter(|(g, _)| *g > since)
            .map(|(_, id)| *id)
            .collect();
        for (id, fingerprint, c) in inspected {
            if !stale.contains(&id_hash(&id)) {
                self.entries.insert(id, (fingerprint, c));
            }
        }
    }
}

/// A container id as the cache remembers a forgotten one. Two ids with one hash only cost an
/// inspection: the other is taken as stale too and inspected again by the next observation.
fn id_hash(id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

/// One container's inspection during an observation.
// The large variant is the common one; boxing it would cost an allocation per container.
#[allow(clippy::large_enum_variant)]
enum Inspected {
    /// Converted at once: its image was listed (or it has none).
    Done(u64, ObservedContainer),
    /// Its image was not in the listing (created meanwhile): converted once that is looked up.
    ImageUnlisted(u64, Box<bollard::models::ContainerInspectResponse>),
}

impl ObserveCache {
    fn live(&self) -> bool {
        self.followers.load(Ordering::SeqCst) > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ContainerCache> {
        self.containers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn forget(&self, container_id: &str) {
        self.lock().forget(container_id);
    }

    fn clear(&self) {
        self.lock().clear();
    }
}

/// Counts a live event stream while it exists; when it goes, the cache can no longer be trusted.
struct Following(Arc<ObserveCache>);

impl Following {
    fn new(cache: Arc<ObserveCache>) -> Following {
        cache.followers.fetch_add(1, Ordering::SeqCst);
        Following(cache)
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        self.0.followers.fetch_sub(1, Ordering::SeqCst);
        self.0.clear();
    }
}

impl std::fmt::Debug for DockerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerRuntime")
            .field("endpoint", &self.endpoint)
            .field("connected", &self.client.initialized())
            .finish()
    }
}

impl DockerRuntime {
    /// A runtime for `endpoint`: `unix:///path/to.sock`, a bare socket path, or `tcp://host:port`
    /// (plain HTTP). Nothing is contacted yet; unsupported schemes (`ssh://`, TLS) fail here.
    pub fn connect(endpoint: &str) -> RuntimeResult<DockerRuntime> {
        let endpoint = endpoint.trim();
        let unsupported = |message: String| RuntimeError::Other {
            action: format!("connect to `{endpoint}`"),
            message,
        };
        let (target, normalized) = if let Some(path) = endpoint.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(unsupported("the socket path is empty".to_owned()));
            }
            (Target::Unix(path.to_owned()), endpoint.to_owned())
        } else if endpoint.starts_with('/') {
            (
                Target::Unix(endpoint.to_owned()),
                format!("unix://{endpoint}"),
            )
        } else if let Some(addr) = endpoint
            .strip_prefix("tcp://")
            .or_else(|| endpoint.strip_prefix("http://"))
        {
            if addr.is_empty() {
                return Err(unsupported("the address is empty".to_owned()));
            }
            (
                Target::Http(format!("tcp://{addr}")),
                format!("tcp://{addr}"),
            )
        } else if let Some(rest) = endpoint.strip_prefix("ssh://") {
            let target = SshTarget::parse(rest).map_err(unsupported)?;
            (Target::Ssh(target), endpoint.to_owned())
        } else if endpoint.is_empty() {
            return Err(unsupported("the endpoint is empty".to_owned()));
        } else {
            let scheme = endpoint.split_once("://").map_or(endpoint, |(s, _)| s);
            return Err(unsupported(format!(
                "the `{scheme}` scheme is not supported; use `unix://`, `tcp://` or `ssh://`"
            )));
        };
        Ok(DockerRuntime {
            endpoint: normalized,
            target,
            client: Arc::default(),
            cache: Arc::default(),
            auth: RegistryAuth::new(RegistryAuth::config_dir_from_env()),
            pull_stall: PULL_STALL_TIMEOUT,
        })
    }

    /// A runtime for `endpoint` with TLS client certificates (`tcp://` only): the files are
    /// read and checked here (present, PEM, key belongs to the certificate), so a bad set fails
    /// before anything is contacted. Without `tls` this is [`DockerRuntime::connect`].
    pub fn connect_with_tls(
        endpoint: &str,
        tls: Option<&TlsFiles>,
    ) -> RuntimeResult<DockerRuntime> {
        let mut rt = DockerRuntime::connect(endpoint)?;
        let Some(tls) = tls else {
            return Ok(rt);
        };
        let refused = |message: String| RuntimeError::Other {
            action: format!("connect to `{}`", rt.endpoint),
            message,
        };
        let Target::Http(addr) = &rt.target else {
            return Err(refused(
                "TLS files are only used with a `tcp://` endpoint".to_owned(),
            ));
        };
        tls.check().map_err(refused)?;
        rt.target = Target::Tls(addr.clone(), tls.clone());
        Ok(rt)
    }

    /// A runtime for `DOCKER_HOST`, else [`DEFAULT_ENDPOINT`]. `DOCKER_TLS_VERIFY` with a
    /// `tcp://` host uses `ca.pem`, `cert.pem`, `key.pem` in `DOCKER_CERT_PATH` (default
    /// `~/.docker`), as the docker CLI does.
    pub fn from_env() -> RuntimeResult<DockerRuntime> {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.trim().is_empty());
        let Some(host) = host else {
            return DockerRuntime::connect(DEFAULT_ENDPOINT);
        };
        let tls = std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty() && v != "0");
        if tls && host.trim().starts_with("tcp://") {
            let dir = std::env::var_os("DOCKER_CERT_PATH")
                .filter(|d| !d.is_empty())
                .map(std::path::PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".docker"))
                })
                .unwrap_or_else(|| std::path::PathBuf::from(".docker"));
            return DockerRuntime::connect_with_tls(&host, Some(&TlsFiles::in_dir(&dir)));
        }
        DockerRuntime::connect(&host)
    }

    /// Pulls send credentials from `auth` (shared with its other clones).
    #[must_use]
    pub fn with_registry_auth(mut self, auth: RegistryAuth) -> DockerRuntime {
        self.auth = auth;
        self
    }

    /// Abandons a pull after `stall` without progress (default [`PULL_STALL_TIMEOUT`]).
    #[must_use]
    pub fn with_pull_stall_timeout(mut self, stall: Duration) -> DockerRuntime {
        self.pull_stall = stall;
        self
    }

    /// For an `ssh://` endpoint: run `program` instead of `ssh` (a wrapper adding options, say).
    /// Other endpoints are unchanged.
    #[must_use]
    pub fn with_ssh_program(mut self, program: impl Into<String>) -> DockerRuntime {
        if let Target::Ssh(t) = &mut self.target {
            t.program = program.into();
        }
        self
    }

    /// Drops every cached inspection: the next `observe` inspects each container again (a full
    /// resync, for when events about this engine were lost).
    pub fn forget_inspections(&self) {
        self.cache.clear();
    }

    /// The endpoint, normalized (`unix:///var/run/docker.sock`).
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The connected, version-negotiated client.
    pub(crate) async fn docker(&self) -> RuntimeResult<&Docker> {
        self.client
            .get_or_try_init(|| async {
                let op = Op::new(&self.endpoint, "connect to", "the engine");
                let docker = match &self.target {
                    Target::Unix(path) => {
                        Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
                    }
                    Target::Http(addr) => {
                        Docker::connect_with_http(addr, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
                    }
                    Target::Tls(addr, tls) => Docker::connect_with_ssl(
                        addr,
                        &tls.key,
                        &tls.cert,
                        &tls.ca,
                        REQUEST_TIMEOUT_SECS,
                        API_DEFAULT_VERSION,
                    ),
                    Target::Ssh(target) => ssh_docker(target),
                }
                .map_err(|e| convert::error(e, &op))?;
                let docker = docker
                    .negotiate_version()
                    .await
                    .map_err(|e| convert::error(e, &op))?;
                tracing::debug!(
                    endpoint = %self.endpoint,
                    api = %docker.client_version(),
                    "connected to the docker engine"
                );
                Ok(docker)
            })
            .await
    }

    pub(crate) fn op<'a>(&'a self, verb: &'a str, what: impl Into<String>) -> Op<'a> {
        Op::new(&self.endpoint, verb, what)
    }

    /// Every local image by id, inspected once per id (an image id is its content).
    async fn images_by_id(&self, docker: &Docker) -> RuntimeResult<HashMap<String, ImageInfo>> {
        let summaries = docker
            .list_images(Some(convert::list_images_options()))
            .await
            .map_err(|e| convert::error(e, &self.op("list", "images")))?;
        let cached: HashMap<String, ImageInfo> = self
            .cache
            .images
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default();
        let infos: Vec<Option<ImageInfo>> = stream::iter(summaries)
            .map(|summary| {
                let hit = cached.get(&summary.id).cloned();
                async move {
                    if let Some(mut info) = hit {
                        info.tags = convert::summary_tags(&summary);
                        info.repo_digests = convert::summary_digests(&summary);
                        return Ok(Some(info));
                    }
                    match docker.inspect_image(&summary.id).await {
                        Ok(inspect) => Ok(convert::image_info(&inspect)),
                        // Removed between list and inspect.
                        Err(e) if convert::is_not_found(&e) => Ok(None),
                        Err(e) => Err(convert::error(
                            e,
                            &self.op("inspect", image_what(&summary.id)),
                        )),
                    }
                }
            })
            .buffer_unordered(INSPECT_CONCURRENCY)
            .try_collect()
            .await?;
        let by_id: HashMap<String, ImageInfo> = infos
            .into_iter()
            .flatten()
            .map(|info| (info.id.clone(), info))
            .collect();
        if let Ok(mut c) = self.cache.images.lock() {
            c.clone_from(&by_id);
        }
        Ok(by_id)
    }

    /// Defaults of one image by id; `None` when it is gone.
    async fn image_defaults(
        &self,
        docker: &Docker,
        image_id: &str,
    ) -> RuntimeResult<Option<ImageDefaults>> {
        Ok(self.image_info(docker, image_id).await?.map(|i| i.defaults))
    }

    /// One image by id; `None` when it is gone.
    async fn image_info(
        &self,
        docker: &Docker,
        image_id: &str,
    ) -> RuntimeResult<Option<ImageInfo>> {
        match docker.inspect_image(image_id).await {
            Ok(inspect) => Ok(convert::image_info(&inspect)),
            Err(e) if convert::is_not_found(&e) => Ok(None),
            Err(e) => Err(convert::error(e, &self.op("inspect", image_what(image_id)))),
        }
    }
}

/// A client whose connections are `ssh … docker system dial-stdio` processes; when ssh fails,
/// what it printed on stderr becomes the error's reason.
fn ssh_docker(target: &SshTarget) -> Result<Docker, bollard::errors::Error> {
    let connector = SshConnector {
        target: std::sync::Arc::new(target.clone()),
        stderr: std::sync::Arc::default(),
    };
    let stderr = std::sync::Arc::clone(&connector.stderr);
    let host = target.host.clone();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector);
    let transport = move |req: bollard::BollardRequest| {
        let client = client.clone();
        let stderr = std::sync::Arc::clone(&stderr);
        let host = host.clone();
        async move {
            client.request(req).await.map_err(|err| {
                let said = stderr
                    .lock()
                    .map(|mut s| std::mem::take(&mut *s))
                    .unwrap_or_default();
                if said.is_empty() {
                    bollard::errors::Error::HyperLegacyError { err }
                } else {
                    bollard::errors::Error::IOError {
                        err: std::io::Error::new(
                            std::io::ErrorKind::ConnectionAborted,
                            crate::ssh::SshFailed { host, said },
                        ),
                    }
                }
            })
        }
    };
    Docker::connect_with_custom_transport(
        transport,
        Some("http://docker.ssh"),
        REQUEST_TIMEOUT_SECS,
        API_DEFAULT_VERSION,
    )
}

impl ContainerRuntime for DockerRuntime {
    fn events(
        &self,
        selector: Option<&LabelSelector>,
    ) -> impl Stream<Item = RuntimeResult<EngineEvent>> + Send + 'static {
        let this = self.clone();
        let options = convert::events_options(selector);
        stream::once(async move {
            let docker = match this.docker().await {
                Ok(d) => d.clone(),
                Err(e) => return stream::iter(vec![Err(e)]).left_stream(),
            };
            let endpoint = this.endpoint.clone();
            let following = Following::new(Arc::clone(&this.cache));
            docker
                .events(Some(options))
                .filter_map(move |r| {
                    let item = match r {
                        Ok(msg) => convert::engine_event(msg).map(|e| {
                            following.0.forget(&e.container_id);
                            Ok(e)
                        }),
                        Err(e) => {
                            following.0.clear();
                            Some(Err(convert::error(
                                e,
                                &Op::new(&endpoint, "follow", "the engine's events"),
                            )))
                        }
                    };
                    std::future::ready(item)
                })
                .right_stream()
        })
        .flatten()
    }

    async fn ensure_network(&self, net: &NetworkSpec) -> RuntimeResult<bool> {
        let docker = self.docker().await?;
        let what = format!("network `{}`", net.name);
        match docker.inspect_network(&net.name, None).await {
            Ok(_) => return Ok(false),
            Err(e) if convert::is_not_found(&e) => {}
            Err(e) => return Err(convert::error(e, &self.op("inspect", what))),
        }
        if net.external {
            return Err(RuntimeError::NotFound {
                what: format!("external {what}"),
            });
        }
        docker
            .create_network(convert::network_create_request(net))
            .await
            .map_err(|e| convert::error(e, &self.op("create", what)))?;
        Ok(true)
    }

    async fn ensure_volume(&self, vol: &VolumeSpec) -> RuntimeResult<bool> {
        let docker = self.docker().await?;
        let what = format!("volume `{}`", vol.name);
        match docker.inspect_volume(&vol.name).await {
            Ok(_) => return Ok(false),
            Err(e) if convert::is_not_found(&e) => {}
            Err(e) => return Err(convert::error(e, &self.op("inspect", what))),
        }
        if vol.external {
            return Err(RuntimeError::NotFound {
                what: format!("external {what}"),
            });
        }
        docker
            .create_volume(convert::volume_create_request(vol))
            .await
            .map_err(|e| convert::error(e, &self.op("create", what)))?;
        Ok(true)
    }

    async fn info(&self) -> RuntimeResult<EngineInfo> {
        let docker = self.docker().await?;
        let version = docker
            .version()
            .await
            .map_err(|e| convert::error(e, &self.op("query", "the engine version")))?;
        Ok(convert::engine_info(version, &self.endpoint))
    }

    async fn observe(&self, selector: Option<&LabelSelector>) -> RuntimeResult<Observed> {
        let docker = self.docker().await?;
        let live = self.cache.live();
        // The listing is dropped as soon as the cache has answered from it: a fleet observes
        // dozens of nodes at once, and each holds only what it still needs.
        let (mut containers, to_inspect, listed, since) = {
            let summaries = docker
                .list_containers(Some(convert::list_containers_options(selector)))
                .await
                .map_err(|e| convert::error(e, &self.op("list", "containers")))?;
            let mut containers = Vec::with_capacity(summaries.len());
            let mut to_inspect = Vec::new();
            let mut listed = Vec::with_capacity(summaries.len());
            let cache = self.cache.lock();
            for s in summaries {
                let Some(id) = s.id.clone() else { continue };
                let fingerprint = convert::summary_fingerprint(&s);
                let hit = cache
                    .entries
                    .get(&id)
                    .filter(|(f, _)| live && *f == fingerprint)
                    .and_then(|(_, json)| serde_json::from_slice(json).ok());
                match hit {
                    Some(c) => containers.push(c),
                    None => to_inspect.push((id.clone(), fingerprint)),
                }
                listed.push(id);
            }
            (containers, to_inspect, listed, cache.generation)
        };

        // Each inspection becomes an observed container as it arrives (the engine's answer is
        // several times its size), except when its image was not listed: that image is looked
        // up below, once.
        let by_id = self.images_by_id(docker).await?;
        let by_id_ref = &by_id;
        let inspected: Vec<_> = stream::iter(to_inspect)
            .map(|(id, fingerprint)| async move {
                match docker.inspect_container(&id, None).await {
                    Ok(c) => Ok(Some(match convert::container_image_id(&c) {
                        Some(image) if !by_id_ref.contains_key(image) => {
                            Inspected::ImageUnlisted(fingerprint, Box::new(c))
                        }
                        image => {
                            let defaults = image
                                .and_then(|i| by_id_ref.get(i))
                                .map(|info| info.defaults.clone());
                            Inspected::Done(fingerprint, convert::observed_container(c, defaults))
                        }
                    })),
                    // Removed between list and inspect: it is simply not there any more.
                    Err(e) if convert::is_not_found(&e) => Ok(None),
                    Err(e) => Err(convert::error(e, &self.op("inspect", container_what(&id)))),
                }
            })
            .buffer_unordered(INSPECT_CONCURRENCY)
            .try_collect()
            .await?;

        let mut unlisted: HashMap<String, Option<ImageDefaults>> = HashMap::new();
        let mut fresh = Vec::new();
        for inspection in inspected.into_iter().flatten() {
            let (fingerprint, observed) = match inspection {
                Inspected::Done(fingerprint, observed) => (fingerprint, observed),
                Inspected::ImageUnlisted(fingerprint, c) => {
                    let image = convert::container_image_id(&c).map(str::to_owned);
                    let defaults = match image {
                        Some(id) => {
                            if !unlisted.contains_key(&id) {
                                let d = self.image_defaults(docker, &id).await?;
                                unlisted.insert(id.clone(), d);
                            }
                            unlisted.get(&id).cloned().flatten()
                        }
                        None => None,
                    };
                    (fingerprint, convert::observed_container(*c, defaults))
                }
            };
            if live && let Ok(json) = serde_json::to_vec(&observed) {
                fresh.push((observed.id.clone(), fingerprint, json.into_boxed_slice()));
            }
            containers.push(observed);
        }
        containers.sort_by(|a, b| a.name.cmp(&b.name));
        for c in &mut containers {
            c.repo_digest = by_id
                .get(&c.image_id)
                .and_then(|i| convert::repo_digest_for(&c.image, &i.repo_digests));
        }
        if live {
            let listed: HashSet<&str> = listed.iter().map(String::as_str).collect();
            self.cache.lock().store(since, &listed, fresh);
        }

        let mut images = BTreeMap::new();
        for info in by_id.into_values() {
            for key in convert::image_keys(&info) {
                images.insert(key, info.clone());
            }
        }
        Ok(Observed { containers, images })
    }

    async fn inspect(&self, id: &str) -> RuntimeResult<ObservedContainer> {
        let docker = self.docker().await?;
        let c = docker
            .inspect_container(id, None)
            .await
            .map_err(|e| convert::error(e, &self.op("inspect", container_what(id))))?;
        let info = match convert::container_image_id(&c) {
            Some(image_id) => self.image_info(docker, image_id).await?,
            None => None,
        };
        let reference = c.config.as_ref().and_then(|cfg| cfg.image.clone());
        let mut observed =
            convert::observed_container(c, info.as_ref().map(|i| i.defaults.clone()));
        observed.repo_digest = match (info, reference) {
            (Some(i), Some(r)) => convert::repo_digest_for(&r, &i.repo_digests),
            _ => None,
        };
        Ok(observed)
    }

    async fn create(&self, req: &CreateRequest) -> RuntimeResult<String> {
        let docker = self.docker().await?;
        let body = convert::create_body(req);
        let options = Some(convert::create_options(&req.name, &req.spec));
        let created = match convert::mac_address(&req.spec) {
            None => docker.create_container(options, body).await,
            // API 1.41 takes a MAC address only in `Config.MacAddress`, which bollard's model
            // lacks: this one request goes out as the body with it added.
            Some(mac) => {
                let bytes = convert::create_body_with_mac(&body, &mac).map_err(|e| {
                    convert::other(
                        &self.op("create", container_what(&req.name)),
                        format!("failed to encode the create request: {e}"),
                    )
                })?;
                let bytes = hyper::body::Bytes::from(bytes);
                docker
                    .clone()
                    .with_request_modifier(move |mut r| {
                        *r.body_mut() = bollard::body_full(bytes.clone());
                        r
                    })
                    .create_container(options, body)
                    .await
            }
        }
        .map_err(|e| {
            if convert::is_missing_image(&e) {
                RuntimeError::NotFound {
                    what: image_what(&req.spec.image),
                }
            } else {
                convert::error(e, &self.op("create", container_what(&req.name)))
            }
        })?;
        for warning in &created.warnings {
            tracing::warn!(container = %req.name, "{warning}");
        }
        for (network, connect) in convert::extra_network_connects(&created.id, &req.spec) {
            if let Err(e) = docker.connect_network(&network, connect).await {
                let _ = self.remove(&created.id).await;
                return Err(convert::error(
                    e,
                    &self.op(
                        "connect",
                        format!("container `{}` to network `{network}`", req.name),
                    ),
                ));
            }
        }
        Ok(created.id)
    }

    async fn start(&self, id: &str) -> RuntimeResult<()> {
        // bollard treats 304 (already started) as success.
        self.docker()
            .await?
            .start_container(id, None)
            .await
            .map_err(|e| convert::error(e, &self.op("start", container_what(id))))
    }

    async fn stop(&self, id: &str, timeout_secs: u32) -> RuntimeResult<()> {
        let docker = self
            .docker()
            .await?
            .clone()
            .with_timeout(Duration::from_secs(
                REQUEST_TIMEOUT_SECS.saturating_add(u64::from(timeout_secs)),
            ));
        docker
            .stop_container(id, Some(convert::stop_options(timeout_secs)))
            .await
            .map_err(|e| convert::error(e, &self.op("stop", container_what(id))))
    }

    async fn write_content(
        &self,
        writes: &[(String, refinery_core::content::ContentMount)],
    ) -> RuntimeResult<()> {
        // The files are written on this host: an engine elsewhere sees them only through a
        // shared path (see the README, "Content drift").
        for (path, m) in writes {
            crate::content_files::write_copy(std::path::Path::new(path), m).map_err(|e| {
                RuntimeError::Other {
                    action: format!("write `{}` to `{path}`", m.repo_path),
                    message: e.to_string(),
                }
            })?;
        }
        Ok(())
    }

    async fn restart(&self, id: &str) -> RuntimeResult<()> {
        self.docker()
            .await?
            .restart_container(id, None)
            .await
            .map_err(|e| convert::error(e, &self.op("restart", container_what(id))))
    }

    async fn unpause(&self, id: &str) -> RuntimeResult<()> {
        self.docker()
            .await?
            .unpause_container(id)
            .await
            .map_err(|e| convert::error(e, &self.op("unpause", container_what(id))))
    }

    async fn remove(&self, id: &str) -> RuntimeResult<()> {
        match self
            .docker()
            .await?
            .remove_container(id, Some(convert::remove_options()))
            .await
        {
            Ok(()) => Ok(()),
            // Removing what is gone is success.
            Err(e) if convert::is_not_found(&e) => Ok(()),
            Err(e) => Err(convert::error(e, &self.op("remove", container_what(id)))),
        }
    }

    async fn rename(&self, id: &str, new_name: &str) -> RuntimeResult<()> {
        self.docker()
            .await?
            .rename_container(id, convert::rename_options(new_name))
            .await
            .map_err(|e| convert::error(e, &self.op("rename", container_what(id))))
    }

    async fn connect(&self, id: &str, spec: &refinery_core::ContainerSpec) -> RuntimeResult<()> {
        let docker = self.docker().await?;
        for (network, connect) in convert::network_connects(id, spec) {
            docker
                .connect_network(&network, connect)
                .await
                .map_err(|e| {
                    convert::error(
                        e,
                        &self.op(
                            "connect",
                            format!("container `{id}` to network `{network}`"),
                        ),
                    )
                })?;
        }
        Ok(())
    }

    async fn disconnect(&self, id: &str, network: &str) -> RuntimeResult<()> {
        self.docker()
            .await?
            .disconnect_network(network, convert::network_disconnect(id))
            .await
            .map_err(|e| {
                convert::error(
                    e,
                    &self.op(
                        "disconnect",
                        format!("container `{id}` from network `{network}`"),
                    ),
                )
            })
    }

    async fn pull(
        &self,
        image: &str,
        progress: &(dyn Fn(PullProgress) + Send + Sync),
    ) -> RuntimeResult<()> {
        let docker = self.docker().await?;
        let op = self.op("pull", image_what(image));
        let parsed = refinery_core::ImageRef::parse(image).ok();
        let found = match &parsed {
            Some(r) => self
                .auth
                .credentials_for(r)
                .await
                .map_err(|m| convert::other(&op, m))?,
            None => None,
        };
        let credentials = match (&parsed, &found) {
            (Some(r), Some(f)) => Some(convert::docker_credentials(&f.credential, r.auth_server())),
            _ => None,
        };
        let mut items = docker.create_image(Some(convert::pull_options(image)), None, credentials);
        // Dropping the stream closes the connection; the engine may still hold a stalled
        // download on its side (Docker 20.10 does, until the registry lets go).
        while let Some(item) = tokio::time::timeout(self.pull_stall, items.next())
            .await
            .map_err(|_| {
                convert::other(
                    &op,
                    format!(
                        "the engine reported no progress for {} s (did the registry stop sending?); the pull was abandoned",
                        self.pull_stall.as_secs()
                    ),
                )
            })?
        {
            let info = item.map_err(|e| match &parsed {
                Some(r) => convert::registry_pull_failure(
                    e,
                    &op,
                    r,
                    found.as_ref().map(|f| f.source.as_str()),
                ),
                None => convert::pull_failure(e, &op),
            })?;
            progress(convert::pull_progress(&info));
        }
        Ok(())
    }

    async fn registry_digest(&self, reference: &str) -> RuntimeResult<String> {
        let docker = self.docker().await?;
        let op = self.op("ask the registry about", image_what(reference));
        let parsed = refinery_core::ImageRef::parse(reference)
            .map_err(|e| convert::other(&op, e.to_string()))?;
        let found = self
            .auth
            .credentials_for(&parsed)
            .await
            .map_err(|m| convert::other(&op, m))?;
        let credentials = found
            .as_ref()
            .map(|f| convert::docker_credentials(&f.credential, parsed.auth_server()));
        let inspect = docker
            .inspect_registry_image(reference, credentials)
            .await
            .map_err(|e| {
                convert::registry_pull_failure(
                    e,
                    &op,
                    &parsed,
                    found.as_ref().map(|f| f.source.as_str()),
                )
            })?;
        convert::distribution_digest(&inspect)
            .ok_or_else(|| convert::other(&op, "the engine's answer holds no digest".to_owned()))
    }

    async fn registry_tags(&self, name: &str) -> RuntimeResult<Vec<String>> {
        self.registry_tags_paged(name, None).await
    }

    async fn registry_image_id(&self, reference: &str) -> RuntimeResult<Option<String>> {
        let op = self.op("ask the registry about", image_what(reference));
        let parsed = refinery_core::ImageRef::parse(reference)
            .map_err(|e| convert::other(&op, e.to_string()))?;
        let Some(platform) = self.platform().await? else {
            return Ok(None);
        };
        crate::registry_http::platform_image_id(&self.auth, &parsed, &platform)
            .await
            .map(Some)
            .map_err(|m| convert::other(&op, m))
    }

    async fn build_image(
        &self,
        tag: &str,
        build: &BuildSpec,
        labels: &BTreeMap<String, String>,
    ) -> RuntimeResult<()> {
        let op = self.op("build", image_what(tag));
        let tar = convert::build_context_tar(build)
            .map_err(|e| convert::other(&op, format!("failed to pack the build context: {e}")))?;
        let docker = self.docker().await?;
        // The engine reads one `extrahosts` query parameter per host, where bollard sends one:
        // several hosts go out as one parameter each.
        let docker = match convert::extra_hosts_query(build) {
            Some(params) => docker.clone().with_request_modifier(move |mut r| {
                convert::set_extra_hosts(r.uri_mut(), &params);
                r
            }),
            None => docker.clone(),
        };
        let mut output = docker.build_image(
            convert::build_options(tag, build, labels),
            None,
            Some(bollard::body_full(tar.into())),
        );
        while let Some(item) = output.next().await {
            let info = item.map_err(|e| convert::pull_failure(e, &op))?;
            if let Some(message) = info.error_detail.and_then(|d| d.message) {
                return Err(convert::other(&op, message.trim().to_owned()));
            }
        }
        Ok(())
    }

    async fn list_images(
        &self,
        selector: Option<&LabelSelector>,
    ) -> RuntimeResult<Vec<EngineImage>> {
        let docker = self.docker().await?;
        let usage = self.usage(docker).await?;
        let summaries = docker
            .list_images(Some(convert::list_images_options_for(selector)))
            .await
            .map_err(|e| convert::error(e, &self.op("list", "images")))?;
        Ok(summaries
            .into_iter()
            .map(|s| convert::engine_image(s, &usage))
            .collect())
    }

    async fn list_volumes(
        &self,
        selector: Option<&LabelSelector>,
    ) -> RuntimeResult<Vec<EngineVolume>> {
        let docker = self.docker().await?;
        let usage = self.usage(docker).await?;
        let list = docker
            .list_volumes(Some(convert::list_volumes_options(selector)))
            .await
            .map_err(|e| convert::error(e, &self.op("list", "volumes")))?;
        Ok(list
            .volumes
            .into_iter()
            .flatten()
            .map(|v| convert::engine_volume(v, &usage))
            .collect())
    }

    async fn networks_and_volumes(
        &self,
    ) -> RuntimeResult<(Vec<ObservedNetwork>, Vec<ObservedVolume>)> {
        let docker = self.docker().await?;
        let networks = docker
            .list_networks(Some(convert::list_networks_options(None)))
            .await
            .map_err(|e| convert::error(e, &self.op("list", "networks")))?;
        let volumes = docker
            .list_volumes(Some(convert::list_volumes_options(None)))
            .await
            .map_err(|e| convert::error(e, &self.op("list", "volumes")))?;
        Ok((
            networks
                .into_iter()
                .filter_map(convert::observed_network)
                .collect(),
            volumes
                .volumes
                .unwrap_or_default()
                .into_iter()
                .map(convert::observed_volume)
                .collect(),
        ))
    }

    async fn list_networks(
        &self,
        selector: Option<&LabelSelector>,
    ) -> RuntimeResult<Vec<EngineNetwork>> {
        let docker = self.docker().await?;
        let usage = self.usage(docker).await?;
        let list = docker
            .list_networks(Some(convert::list_networks_options(selector)))
            .await
            .map_err(|e| convert::error(e, &self.op("list", "networks")))?;
        Ok(list
            .into_iter()
            .filter_map(|n| convert::engine_network(n, &usage))
            .collect())
    }

    async fn remove_image(&self, reference: &str) -> RuntimeResult<()> {
        match self
            .docker()
            .await?
            .remove_image(reference, Some(convert::remove_image_options()), None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if convert::is_not_found(&e) => Ok(()),
            Err(e) => Err(convert::error(e, &self.op("remove", image_what(reference)))),
        }
    }

    async fn tag_image(&self, image: &str, reference: &str) -> RuntimeResult<()> {
        self.docker()
            .await?
            .tag_image(image, Some(convert::tag_image_options(reference)))
            .await
            .map_err(|e| convert::error(e, &self.op("tag", image_what(image))))
    }

    async fn remove_volume(&self, name: &str) -> RuntimeResult<()> {
        match self
            .docker()
            .await?
            .remove_volume(name, Some(convert::remove_volume_options()))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if convert::is_not_found(&e) => Ok(()),
            Err(e) => Err(convert::error(
                e,
                &self.op("remove", convert::volume_what(name)),
            )),
        }
    }

    async fn remove_network(&self, id: &str) -> RuntimeResult<()> {
        match self.docker().await?.remove_network(id).await {
            Ok(()) => Ok(()),
            Err(e) if convert::is_not_found(&e) => Ok(()),
            Err(e) => Err(convert::error(
                e,
                &self.op("remove", convert::network_what(id)),
            )),
        }
    }
}

impl DockerRuntime {
    /// Which containers (every one on the engine, whatever its labels) use what.
    async fn usage(&self, docker: &Docker) -> RuntimeResult<convert::Usage> {
        let all = docker
            .list_containers(Some(convert::all_containers_options()))
            .await
            .map_err(|e| convert::error(e, &self.op("list", "containers")))?;
        Ok(convert::usage(&all))
    }

    /// The engine's platform as an index names it (`linux`, `amd64`; no variant: the engine
    /// does not say it); `None` when the engine does not say its OS or architecture.
    ///
    /// # Errors
    /// The engine not answering.
    pub async fn platform(&self) -> RuntimeResult<Option<crate::Platform>> {
        let version = self
            .docker()
            .await?
            .version()
            .await
            .map_err(|e| convert::error(e, &self.op("query", "the engine version")))?;
        Ok(match (version.os, version.arch) {
            (Some(os), Some(architecture)) => Some(crate::Platform {
                os,
                architecture,
                variant: None,
            }),
            _ => None,
        })
    }

    /// Every tag of the repository `name`, asked of its registry (see `registry_http.rs`), in
    /// pages of at most `page_size` tags when given (tests use it to see pagination followed).
    ///
    /// # Errors
    /// The registry unreachable or refusing, with what it said.
    pub async fn registry_tags_paged(
        &self,
        name: &str,
        page_size: Option<u32>,
    ) -> RuntimeResult<Vec<String>> {
        let op = self.op("list the tags of", image_what(name));
        let parsed =
            refinery_core::ImageRef::parse(name).map_err(|e| convert::other(&op, e.to_string()))?;
        crate::registry_http::list_tags(&self.auth, &parsed, page_size)
            .await
            .map_err(|m| convert::other(&op, m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_bare_path_normalizes_to_unix_url() {
        let rt = DockerRuntime::connect("/var/run/docker.sock").expect("bare path is accepted");
        assert_eq!(rt.endpoint(), "unix:///var/run/docker.sock");
    }

    #[test]
    fn connect_tcp_is_accepted() {
        let rt = DockerRuntime::connect("tcp://127.0.0.1:2375").expect("tcp is accepted");
        assert_eq!(rt.endpoint(), "tcp://127.0.0.1:2375");
    }

    #[test]
    fn connect_ssh_is_accepted() {
        let rt = DockerRuntime::connect("ssh://me@host:2222").expect("ssh is accepted");
        assert_eq!(rt.endpoint(), "ssh://me@host:2222");
    }

    #[test]
    fn connect_unknown_scheme_is_other_naming_the_scheme() {
        let err = DockerRuntime::connect("npipe:////./pipe/x").expect_err("not supported");
        assert!(matches!(err, RuntimeError::Other { .. }));
        assert!(err.to_string().contains("`npipe` scheme"), "{err}");
    }

    #[test]
    fn connect_tls_with_missing_files_names_the_file() {
        let tls = TlsFiles::in_dir(std::path::Path::new("/nonexistent-refinery-certs"));
        let err = DockerRuntime::connect_with_tls("tcp://127.0.0.1:2376", Some(&tls))
            .expect_err("missing files fail");
        let text = err.to_string();
        assert!(
            text.contains("/nonexistent-refinery-certs/ca.pem"),
            "{text}"
        );
        assert!(text.contains("no such file"), "{text}");
    }

    #[test]
    fn connect_tls_on_a_unix_socket_is_refused() {
        let tls = TlsFiles::in_dir(std::path::Path::new("/tmp"));
        let err = DockerRuntime::connect_with_tls("unix:///var/run/docker.sock", Some(&tls))
            .expect_err("tls needs tcp");
        assert!(err.to_string().contains("`tcp://`"), "{err}");
    }

    #[test]
    fn cache_keeps_an_inspection_as_it_was_and_not_what_an_event_named_meanwhile() {
        use refinery_core::testing::{observed_from_spec, spec};
        let mut web = spec("web");
        web.labels.insert("team".into(), "x".into());
        let defaults = ImageDefaults {
            command: Some(vec!["sh".into()]),
            ..ImageDefaults::default()
        };
        let c = observed_from_spec(&web, &defaults);
        let json = |c: &ObservedContainer| {
            serde_json::to_vec(c)
                .expect("an observation serializes")
                .into_boxed_slice()
        };
        let mut cache = ContainerCache::default();
        let since = cache.generation;
        let listed: HashSet<&str> = ["a", "b"].into();
        cache.forget("b");
        cache.store(
            since,
            &listed,
            vec![("a".into(), 1, json(&c)), ("b".into(), 2, json(&c))],
        );
        let (f, kept) = cache.entries.get("a").expect("`a` is kept");
        assert_eq!(*f, 1);
        let back: ObservedContainer = serde_json::from_slice(kept).expect("it decodes");
        assert_eq!(back, c, "the round trip is exact");
        assert!(
            !cache.entries.contains_key("b"),
            "an event named `b` meanwhile"
        );

        // Not listed any more: gone. Forgotten beyond what is remembered: nothing stored.
        cache.store(cache.generation, &HashSet::new(), Vec::new());
        assert!(cache.entries.is_empty());
        let since = cache.generation;
        for i in 0..=FORGOTTEN_KEPT {
            cache.forget(&format!("x{i}"));
        }
        cache.store(since, &listed, vec![("a".into(), 1, json(&c))]);
        assert!(
            cache.entries.is_empty(),
            "what was forgotten is no longer known"
        );
    }

    #[test]
    fn runtime_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<DockerRuntime>();
    }
}
