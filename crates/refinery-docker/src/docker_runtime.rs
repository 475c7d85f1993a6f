//! [`DockerRuntime`]: the [`ContainerRuntime`] port over one Docker engine, through bollard.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::{API_DEFAULT_VERSION, Docker};
use futures_util::{Stream, StreamExt, TryStreamExt, stream};
use refinery_core::inventory::{EngineImage, EngineNetwork, EngineVolume};
use refinery_core::runtime::RuntimeResult;
use refinery_core::{
    ContainerRuntime, CreateRequest, EngineEvent, EngineInfo, ImageDefaults, ImageInfo,
    LabelSelector, Observed, ObservedContainer, PullProgress, RuntimeError,
};
use tokio::sync::OnceCell;

use crate::convert::{self, Op, container_what, image_what};

/// Where `from_env` connects when `DOCKER_HOST` is unset.
pub const DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";

/// How many inspections run at once during `observe`.
const INSPECT_CONCURRENCY: usize = 8;

/// Seconds the client waits for an engine's answer (headers), on top of a stop's own timeout.
const REQUEST_TIMEOUT_SECS: u64 = 120;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// Path of a unix socket.
    Unix(String),
    /// `tcp://host:port`, plain HTTP.
    Http(String),
}

/// One Docker engine. Connecting is lazy: the first call opens the client and negotiates the API
/// version (the engine here speaks 1.41, bollard models 1.53); a failed attempt is retried on the
/// next call. Clones share the connection.
#[derive(Clone)]
pub struct DockerRuntime {
    endpoint: String,
    target: Target,
    client: OnceCell<Docker>,
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
        } else if endpoint.is_empty() {
            return Err(unsupported("the endpoint is empty".to_owned()));
        } else {
            let scheme = endpoint.split_once("://").map_or(endpoint, |(s, _)| s);
            return Err(unsupported(format!(
                "the `{scheme}` scheme is not supported yet; use `unix://` or `tcp://`"
            )));
        };
        Ok(DockerRuntime {
            endpoint: normalized,
            target,
            client: OnceCell::new(),
        })
    }

    /// A runtime for `DOCKER_HOST`, else [`DEFAULT_ENDPOINT`]. `DOCKER_TLS_VERIFY` with a
    /// `tcp://` host is refused until TLS is supported (rather than speaking plain HTTP).
    pub fn from_env() -> RuntimeResult<DockerRuntime> {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.trim().is_empty());
        let Some(host) = host else {
            return DockerRuntime::connect(DEFAULT_ENDPOINT);
        };
        let tls = std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty() && v != "0");
        if tls && host.trim().starts_with("tcp://") {
            return Err(RuntimeError::Other {
                action: format!("connect to `{}`", host.trim()),
                message: "`DOCKER_TLS_VERIFY` is set but TLS is not supported yet".to_owned(),
            });
        }
        DockerRuntime::connect(&host)
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

    /// Every local image, inspected once, by id.
    async fn images_by_id(&self, docker: &Docker) -> RuntimeResult<HashMap<String, ImageInfo>> {
        let summaries = docker
            .list_images(Some(convert::list_images_options()))
            .await
            .map_err(|e| convert::error(e, &self.op("list", "images")))?;
        let infos: Vec<Option<ImageInfo>> = stream::iter(summaries)
            .map(|summary| async move {
                match docker.inspect_image(&summary.id).await {
                    Ok(inspect) => Ok(convert::image_info(&inspect)),
                    // Removed between list and inspect.
                    Err(e) if convert::is_not_found(&e) => Ok(None),
                    Err(e) => Err(convert::error(
                        e,
                        &self.op("inspect", image_what(&summary.id)),
                    )),
                }
            })
            .buffer_unordered(INSPECT_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(infos
            .into_iter()
            .flatten()
            .map(|info| (info.id.clone(), info))
            .collect())
    }

    /// Defaults of one image by id; `None` when it is gone.
    async fn image_defaults(
        &self,
        docker: &Docker,
        image_id: &str,
    ) -> RuntimeResult<Option<ImageDefaults>> {
        match docker.inspect_image(image_id).await {
            Ok(inspect) => Ok(convert::image_info(&inspect).map(|i| i.defaults)),
            Err(e) if convert::is_not_found(&e) => Ok(None),
            Err(e) => Err(convert::error(e, &self.op("inspect", image_what(image_id)))),
        }
    }
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
            docker
                .events(Some(options))
                .filter_map(move |r| {
                    let item = match r {
                        Ok(msg) => convert::engine_event(msg).map(Ok),
                        Err(e) => Some(Err(convert::error(
                            e,
                            &Op::new(&endpoint, "follow", "the engine's events"),
                        ))),
                    };
                    std::future::ready(item)
                })
                .right_stream()
        })
        .flatten()
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
        let summaries = docker
            .list_containers(Some(convert::list_containers_options(selector)))
            .await
            .map_err(|e| convert::error(e, &self.op("list", "containers")))?;
        let ids: Vec<String> = summaries.into_iter().filter_map(|s| s.id).collect();

        let inspected: Vec<_> = stream::iter(ids)
            .map(|id| async move {
                match docker.inspect_container(&id, None).await {
                    Ok(c) => Ok(Some(c)),
                    // Removed between list and inspect: it is simply not there any more.
                    Err(e) if convert::is_not_found(&e) => Ok(None),
                    Err(e) => Err(convert::error(e, &self.op("inspect", container_what(&id)))),
                }
            })
            .buffer_unordered(INSPECT_CONCURRENCY)
            .try_collect()
            .await?;

        let by_id = self.images_by_id(docker).await?;
        let mut missing: HashMap<String, Option<ImageDefaults>> = HashMap::new();
        let mut containers = Vec::with_capacity(inspected.len());
        for c in inspected.into_iter().flatten() {
            let image_id = convert::container_image_id(&c).map(str::to_owned);
            let defaults = match image_id {
                Some(id) => match by_id.get(&id) {
                    Some(info) => Some(info.defaults.clone()),
                    None => {
                        if !missing.contains_key(&id) {
                            let d = self.image_defaults(docker, &id).await?;
                            missing.insert(id.clone(), d);
                        }
                        missing.get(&id).cloned().flatten()
                    }
                },
                None => None,
            };
            containers.push(convert::observed_container(c, defaults));
        }
        containers.sort_by(|a, b| a.name.cmp(&b.name));

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
        let defaults = match convert::container_image_id(&c) {
            Some(image_id) => self.image_defaults(docker, image_id).await?,
            None => None,
        };
        Ok(convert::observed_container(c, defaults))
    }

    async fn create(&self, req: &CreateRequest) -> RuntimeResult<String> {
        let docker = self.docker().await?;
        let created = docker
            .create_container(
                Some(convert::create_options(&req.name)),
                convert::create_body(req),
            )
            .await
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

    async fn pull(
        &self,
        image: &str,
        progress: &(dyn Fn(PullProgress) + Send + Sync),
    ) -> RuntimeResult<()> {
        let docker = self.docker().await?;
        let op = self.op("pull", image_what(image));
        let mut items = docker.create_image(Some(convert::pull_options(image)), None, None);
        while let Some(item) = items.next().await {
            let info = item.map_err(|e| convert::pull_failure(e, &op))?;
            progress(convert::pull_progress(&info));
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
    fn connect_ssh_is_other_naming_the_scheme() {
        let err = DockerRuntime::connect("ssh://me@host").expect_err("ssh is not supported yet");
        assert!(matches!(err, RuntimeError::Other { .. }));
        assert!(err.to_string().contains("`ssh` scheme"), "{err}");
    }

    #[test]
    fn runtime_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<DockerRuntime>();
    }
}
