//! Conversions between bollard's models and core types, both ways, and the classification of
//! bollard's errors into [`RuntimeError`]. Nothing outside this module builds or reads a bollard
//! model field by field.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bollard::errors::Error as BollardError;
use bollard::models::EventMessage;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, CreateImageInfo,
    DeviceMapping, HealthConfig, HealthStatusEnum, HostConfig, HostConfigCgroupnsModeEnum,
    HostConfigIsolationEnum, ImageConfig, ImageInspect, MountPoint, MountType, PortMap,
    ResourcesBlkioWeightDevice, ResourcesUlimits, RestartPolicyNameEnum, SystemVersion,
    ThrottleDevice,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, EventsOptions, ListContainersOptions,
    ListImagesOptions, RemoveContainerOptions, RenameContainerOptions, StopContainerOptions,
};
use refinery_core::inventory::{EngineImage, EngineNetwork, EngineVolume};
use refinery_core::labels::normalize_image_ref;
use refinery_core::{
    Blkio, ContainerSpec, ContainerState, CreateRequest, Device, EngineEvent, EngineInfo,
    ExtraOptions, Health, Healthcheck, ImageDefaults, ImageInfo, LabelSelector, Mount, MountKind,
    NetworkAttachment, NetworkSpec, ObservedContainer, ObservedNetwork, ObservedVolume,
    PortBinding, Protocol, PullProgress, RestartPolicy, RuntimeError, RuntimeOptions, Ulimit,
    UnreachableCause, VolumeSpec,
};

/// What an engine call was doing, for error messages: `start` + ``container `web` ``.
#[derive(Debug, Clone)]
pub(crate) struct Op<'a> {
    pub endpoint: &'a str,
    pub verb: &'a str,
    pub what: String,
}

impl<'a> Op<'a> {
    pub(crate) fn new(endpoint: &'a str, verb: &'a str, what: impl Into<String>) -> Self {
        Op {
            endpoint,
            verb,
            what: what.into(),
        }
    }

    fn action(&self) -> String {
        format!("{} {}", self.verb, self.what)
    }
}

/// ``container `web` ``
pub(crate) fn container_what(id: &str) -> String {
    format!("container `{id}`")
}

/// ``image `busybox:latest` ``
pub(crate) fn image_what(reference: &str) -> String {
    format!("image `{reference}`")
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Classifies a bollard error: 404 → not found, 409 → conflict, a taken host port → port taken,
/// anything that means the engine could not be reached → unreachable, the rest → other.
pub(crate) fn error(err: BollardError, op: &Op<'_>) -> RuntimeError {
    match err {
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => server_error(status_code, &message, op),
        BollardError::DockerStreamError { error } => match port_taken(&error) {
            Some(port) => RuntimeError::PortTaken { port },
            None => other(op, error),
        },
        BollardError::SocketNotFoundError(path) => unreachable(
            op,
            UnreachableCause::NoSocket,
            format!("no such file or directory: there is no socket at `{path}`"),
        ),
        BollardError::RequestTimeoutError => unreachable(
            op,
            UnreachableCause::Timeout,
            "the engine did not answer in time".to_owned(),
        ),
        BollardError::HyperLegacyError { err } => {
            let (cause, reason) = connection_reason(&err);
            unreachable(op, cause, reason)
        }
        BollardError::IOError { err } if is_connection_io(&err) => {
            let (cause, reason) = io_reason(&err);
            unreachable(op, cause, reason)
        }
        BollardError::HyperResponseError { err }
            if err.is_closed() || err.is_incomplete_message() || err.is_canceled() =>
        {
            unreachable(
                op,
                UnreachableCause::Closed,
                format!(
                    "the connection was closed: {}",
                    lower_first(&err.to_string())
                ),
            )
        }
        other_err => other(op, lower_first(&other_err.to_string())),
    }
}

fn server_error(status_code: u16, message: &str, op: &Op<'_>) -> RuntimeError {
    let message = lower_first(message.trim());
    match status_code {
        404 => RuntimeError::NotFound {
            what: op.what.clone(),
        },
        409 => RuntimeError::Conflict {
            what: op.what.clone(),
            message,
        },
        _ => match port_taken(&message) {
            Some(port) => RuntimeError::PortTaken { port },
            None => other(op, message),
        },
    }
}

fn unreachable(op: &Op<'_>, cause: UnreachableCause, reason: String) -> RuntimeError {
    RuntimeError::Unreachable {
        endpoint: op.endpoint.to_owned(),
        cause,
        reason,
    }
}

pub(crate) fn other(op: &Op<'_>, message: String) -> RuntimeError {
    RuntimeError::Other {
        action: op.action(),
        message,
    }
}

/// A failed pull: unreachable stays unreachable; everything else (no registry, unknown
/// repository, refused login) is `Other` with the engine's own words, naming the image.
pub(crate) fn pull_failure(err: BollardError, op: &Op<'_>) -> RuntimeError {
    let message = match &err {
        BollardError::DockerResponseServerError { message, .. } => lower_first(message.trim()),
        BollardError::DockerStreamError { error } => lower_first(error.trim()),
        other_err => lower_first(&other_err.to_string()),
    };
    match error(err, op) {
        unreachable @ RuntimeError::Unreachable { .. } => unreachable,
        _ => other(op, message),
    }
}

/// Whether the engine's pull error (its message, the registry's words passed on) says the registry wanted credentials it did not get or
/// refused the ones it got.
#[must_use]
fn is_auth_failure(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "no basic auth credentials",
        "unauthorized",
        "authentication required",
        "access denied",
        "denied: ",
        "incorrect username or password",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// A failed pull from a registry: as [`pull_failure`], and when the registry refused for want of
/// credentials (or refused the ones sent, named by `sent`), the message says so and carries
/// `hint:` lines naming `docker login HOST` and `registries:`.
pub(crate) fn registry_pull_failure(
    err: BollardError,
    op: &Op<'_>,
    image: &refinery_core::ImageRef,
    sent: Option<&str>,
) -> RuntimeError {
    match pull_failure(err, op) {
        RuntimeError::Other { action, message } if is_auth_failure(&message) => {
            let mut message = match sent {
                Some(source) => format!(
                    "{message} (registry `{}` refused the credentials from {source})",
                    image.registry()
                ),
                None => format!(
                    "{message} (no credentials for registry `{}` were found)",
                    image.registry()
                ),
            };
            for hint in refinery_core::registry_auth::auth_failure_hints(image.registry()) {
                message.push_str("\nhint: ");
                message.push_str(&hint);
            }
            RuntimeError::Other { action, message }
        }
        e => e,
    }
}

/// The descriptor digest of an answer of `GET /distribution/{name}/json`.
pub(crate) fn distribution_digest(d: &bollard::models::DistributionInspect) -> Option<String> {
    d.descriptor
        .digest
        .clone()
        .filter(|s| s.starts_with("sha256:"))
}

/// Credentials in bollard's form, for the registry `server`.
pub(crate) fn docker_credentials(
    c: &refinery_core::registry_auth::RegistryCredential,
    server: &str,
) -> bollard::auth::DockerCredentials {
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    bollard::auth::DockerCredentials {
        username: non_empty(&c.username),
        password: non_empty(c.password.expose()),
        serveraddress: Some(server.to_owned()),
        identitytoken: c.identity_token.as_ref().map(|t| t.expose().to_owned()),
        ..Default::default()
    }
}

/// Whether a 404 from the engine is about a missing image (`No such image: x`).
pub(crate) fn is_missing_image(err: &BollardError) -> bool {
    matches!(
        err,
        BollardError::DockerResponseServerError { status_code: 404, message }
            if message.to_ascii_lowercase().contains("no such image")
    )
}

/// Whether the error is a 404.
pub(crate) fn is_not_found(err: &BollardError) -> bool {
    matches!(
        err,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// The host port named in a "port is already allocated" / "address already in use" message.
pub(crate) fn port_taken(message: &str) -> Option<u16> {
    let lower = message.to_ascii_lowercase();
    let at = ["port is already allocated", "address already in use"]
        .iter()
        .filter_map(|phrase| lower.find(phrase))
        .min()?;
    let before = &lower[..at];
    // The rightmost `:<digits>` before the phrase: `Bind for 0.0.0.0:8080 failed: port is…`,
    // `listen tcp4 0.0.0.0:8080: bind: address already in use`.
    let mut rest = before;
    while let Some(colon) = rest.rfind(':') {
        let digits: String = rest[colon + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(port) = digits.parse::<u16>()
            && port != 0
        {
            return Some(port);
        }
        rest = &rest[..colon];
    }
    None
}

fn is_connection_io(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::{
        BrokenPipe, ConnectionAborted, ConnectionRefused, ConnectionReset, NotFound,
        PermissionDenied,
    };
    matches!(
        err.kind(),
        NotFound
            | PermissionDenied
            | ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | BrokenPipe
    )
}

/// Why an I/O error kept the request from the engine, and how to say it.
fn io_reason(err: &std::io::Error) -> (UnreachableCause, String) {
    use std::io::ErrorKind;
    if let Some(ssh) = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<crate::ssh::SshFailed>())
    {
        return (UnreachableCause::Ssh, ssh.to_string());
    }
    if err
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
    {
        return (UnreachableCause::Tls, lower_first(&err.to_string()));
    }
    match err.kind() {
        ErrorKind::PermissionDenied => (
            UnreachableCause::PermissionDenied,
            "permission denied".to_owned(),
        ),
        ErrorKind::NotFound => (
            UnreachableCause::NoSocket,
            "no such file or directory".to_owned(),
        ),
        ErrorKind::ConnectionRefused => {
            (UnreachableCause::Refused, "connection refused".to_owned())
        }
        ErrorKind::ConnectionReset => (UnreachableCause::Closed, "connection reset".to_owned()),
        ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => {
            (UnreachableCause::Closed, lower_first(&err.to_string()))
        }
        ErrorKind::TimedOut => (UnreachableCause::Timeout, lower_first(&err.to_string())),
        _ => (UnreachableCause::Other, lower_first(&err.to_string())),
    }
}

/// The most telling reason in a connection error's source chain (the I/O error, if any).
fn connection_reason(err: &(dyn std::error::Error + 'static)) -> (UnreachableCause, String) {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut last = lower_first(&err.to_string());
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return io_reason(io);
        }
        if e.downcast_ref::<rustls::Error>().is_some() {
            return (UnreachableCause::Tls, lower_first(&e.to_string()));
        }
        last = lower_first(&e.to_string());
        current = e.source();
    }
    (UnreachableCause::Other, last)
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first)
            if first.is_ascii_uppercase()
                && !chars.clone().next().is_some_and(|c| c.is_ascii_uppercase()) =>
        {
            let mut out = String::with_capacity(s.len());
            out.push(first.to_ascii_lowercase());
            out.push_str(chars.as_str());
            out
        }
        _ => s.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Query options
// ---------------------------------------------------------------------------------------------

/// Every container, filtered server-side by label when a selector is given.
pub(crate) fn list_containers_options(selector: Option<&LabelSelector>) -> ListContainersOptions {
    let filters = selector.map(|s| HashMap::from([("label".to_owned(), vec![s.to_string()])]));
    ListContainersOptions {
        all: true,
        filters,
        ..Default::default()
    }
}

/// Container events only, filtered server-side by label when a selector is given.
pub(crate) fn events_options(selector: Option<&LabelSelector>) -> EventsOptions {
    let mut filters = HashMap::from([("type".to_owned(), vec!["container".to_owned()])]);
    if let Some(s) = selector {
        filters.insert("label".to_owned(), vec![s.to_string()]);
    }
    EventsOptions {
        filters: Some(filters),
        ..Default::default()
    }
}

/// A container event; `None` for events about anything else or without an actor id.
pub(crate) fn engine_event(msg: EventMessage) -> Option<EngineEvent> {
    let actor = msg.actor?;
    let container_id = actor.id.filter(|id| !id.is_empty())?;
    let raw = msg.action.unwrap_or_default();
    // `health_status: healthy`, `exec_start: sh -c …`
    let (action, detail) = match raw.split_once(':') {
        Some((a, d)) => (a.trim().to_owned(), Some(d.trim().to_owned())),
        None => (raw.trim().to_owned(), None),
    };
    let mut labels: BTreeMap<String, String> =
        actor.attributes.unwrap_or_default().into_iter().collect();
    let name = labels.remove("name");
    let exit_code = labels.remove("exitCode").and_then(|c| c.parse().ok());
    // The engine mixes `image` and `signal` in with the labels.
    labels.remove("image");
    labels.remove("signal");
    Some(EngineEvent {
        action,
        detail,
        container_id,
        name,
        labels,
        exit_code,
        time_nanos: msg.time_nano,
    })
}

/// Top-level images (tagged and dangling), no intermediate layers.
pub(crate) fn list_images_options() -> ListImagesOptions {
    ListImagesOptions {
        all: false,
        ..Default::default()
    }
}

/// The create query: the name, and the platform when the spec asks for one.
pub(crate) fn create_options(name: &str, spec: &ContainerSpec) -> CreateContainerOptions {
    CreateContainerOptions {
        name: Some(name.to_owned()),
        platform: spec.options.extra().platform.clone().unwrap_or_default(),
    }
}

pub(crate) fn stop_options(timeout_secs: u32) -> StopContainerOptions {
    StopContainerOptions {
        t: Some(i32::try_from(timeout_secs).unwrap_or(i32::MAX)),
        ..Default::default()
    }
}

/// Force removal, anonymous volumes included.
pub(crate) fn kill_options(signal: &str) -> bollard::query_parameters::KillContainerOptions {
    bollard::query_parameters::KillContainerOptions {
        signal: signal.to_owned(),
    }
}

pub(crate) fn remove_options() -> RemoveContainerOptions {
    RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    }
}

pub(crate) fn rename_options(new_name: &str) -> RenameContainerOptions {
    RenameContainerOptions {
        name: new_name.to_owned(),
    }
}

/// Pulls exactly one tag (an empty tag would make the engine pull every tag of the repository).
pub(crate) fn pull_options(image: &str) -> CreateImageOptions {
    if let Ok(r) = refinery_core::ImageRef::parse(image) {
        // `repo:tag@digest` pulls the digest.
        return CreateImageOptions {
            from_image: Some(r.name().to_owned()),
            tag: Some(r.pull_tag().to_owned()),
            ..Default::default()
        };
    }
    let (repo, tag) = split_reference(&normalize_image_ref(image));
    CreateImageOptions {
        from_image: Some(repo),
        tag: Some(tag),
        ..Default::default()
    }
}

/// `busybox:1.36` → (`busybox`, `1.36`); `app@sha256:…` → (`app`, `sha256:…`);
/// `localhost:5000/app:1` → (`localhost:5000/app`, `1`).
fn split_reference(reference: &str) -> (String, String) {
    if let Some((repo, digest)) = reference.split_once('@') {
        return (repo.to_owned(), digest.to_owned());
    }
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(i) => {
            let colon = name_start + i;
            (
                reference[..colon].to_owned(),
                reference[colon + 1..].to_owned(),
            )
        }
        None => (reference.to_owned(), "latest".to_owned()),
    }
}

// ---------------------------------------------------------------------------------------------
// Engine → core
// ---------------------------------------------------------------------------------------------

pub(crate) fn engine_info(version: SystemVersion, endpoint: &str) -> EngineInfo {
    EngineInfo {
        version: version.version.unwrap_or_default(),
        api_version: version.api_version.unwrap_or_default(),
        endpoint: endpoint.to_owned(),
    }
}

pub(crate) fn pull_progress(info: &CreateImageInfo) -> PullProgress {
    let detail = info.progress_detail.as_ref();
    let to_u64 = |v: Option<i64>| v.and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
    let status = match (&info.id, &info.status) {
        (Some(id), Some(status)) => format!("{id}: {status}"),
        (None, Some(status)) => status.clone(),
        (Some(id), None) => id.clone(),
        (None, None) => String::new(),
    };
    PullProgress {
        status,
        current: to_u64(detail.and_then(|d| d.current)),
        total: to_u64(detail.and_then(|d| d.total)),
    }
}

/// The id of the image the container runs (`sha256:…`).
pub(crate) fn container_image_id(c: &ContainerInspectResponse) -> Option<&str> {
    c.image.as_deref().filter(|s| !s.is_empty())
}

/// One inspected container in core terms; `image_defaults` are those of the image it runs.
pub(crate) fn observed_container(
    c: ContainerInspectResponse,
    image_defaults: Option<ImageDefaults>,
) -> ObservedContainer {
    let state = c.state.unwrap_or_default();
    let config = c.config.unwrap_or_default();
    let host = c.host_config.unwrap_or_default();

    let container_state = if state.restarting == Some(true) {
        ContainerState::Restarting
    } else {
        match state.status {
            Some(ContainerStateStatusEnum::CREATED) => ContainerState::Created,
            Some(ContainerStateStatusEnum::RUNNING | ContainerStateStatusEnum::STOPPING) => {
                ContainerState::Running
            }
            Some(ContainerStateStatusEnum::PAUSED) => ContainerState::Paused,
            Some(ContainerStateStatusEnum::RESTARTING) => ContainerState::Restarting,
            Some(ContainerStateStatusEnum::REMOVING) => ContainerState::Removing,
            Some(ContainerStateStatusEnum::EXITED) => ContainerState::Exited,
            Some(ContainerStateStatusEnum::DEAD) => ContainerState::Dead,
            Some(ContainerStateStatusEnum::EMPTY) | None => {
                if state.paused == Some(true) {
                    ContainerState::Paused
                } else if state.running == Some(true) {
                    ContainerState::Running
                } else if state.dead == Some(true) {
                    ContainerState::Dead
                } else {
                    ContainerState::Exited
                }
            }
        }
    };

    let health = match state.health.as_ref().and_then(|h| h.status) {
        Some(HealthStatusEnum::STARTING) => Health::Starting,
        Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
        Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
        Some(HealthStatusEnum::NONE | HealthStatusEnum::EMPTY) | None => Health::None,
    };

    let started_at = state
        .started_at
        .filter(|s| !s.is_empty() && !s.starts_with("0001-01-01"));
    let finished_at = state
        .finished_at
        .filter(|s| !s.is_empty() && !s.starts_with("0001-01-01"));

    let mounts = mounts_from_inspect(c.mounts.as_deref().unwrap_or_default(), &host);
    let mut options = runtime_options(&config, &host, c.network_settings.and_then(|n| n.networks));
    observed_mount_extras(
        &mut options,
        c.mounts.as_deref().unwrap_or_default(),
        config.healthcheck.as_ref(),
    );

    ObservedContainer {
        id: c.id.unwrap_or_default(),
        name: c
            .name
            .map(|n| n.strip_prefix('/').map(str::to_owned).unwrap_or(n))
            .unwrap_or_default(),
        image: config.image.clone().unwrap_or_default(),
        image_id: c.image.unwrap_or_default(),
        repo_digest: None,
        state: container_state,
        health,
        exit_code: state.exit_code,
        created: c.created.unwrap_or_default(),
        started_at,
        finished_at,
        ports: ports_from_map(host.port_bindings.as_ref()),
        env: env_map(config.env.as_deref()),
        mounts,
        command: config.cmd,
        entrypoint: config.entrypoint.filter(|e| !e.is_empty()),
        labels: label_map(config.labels),
        restart: restart_policy(&host),
        healthcheck: config.healthcheck.as_ref().map(healthcheck_from),
        image_defaults,
        options,
        content: None,
    }
}

/// The defaults an image gives its containers.
pub(crate) fn image_defaults(config: Option<&ImageConfig>) -> ImageDefaults {
    let Some(config) = config else {
        return ImageDefaults::default();
    };
    let sorted = |v: Option<&Vec<String>>| {
        let mut v = v.cloned().unwrap_or_default();
        v.sort();
        v.dedup();
        v
    };
    ImageDefaults {
        env: env_map(config.env.as_deref()),
        command: config.cmd.clone(),
        entrypoint: config.entrypoint.clone().filter(|e| !e.is_empty()),
        labels: label_map(config.labels.clone()),
        healthcheck: config.healthcheck.as_ref().map(healthcheck_from),
        exposed_ports: sorted(config.exposed_ports.as_ref()),
        volumes: sorted(config.volumes.as_ref()),
    }
}

/// A local image in core terms; `None` when the engine did not report its id.
pub(crate) fn image_info(inspect: &ImageInspect) -> Option<ImageInfo> {
    let id = inspect.id.clone().filter(|id| !id.is_empty())?;
    let tags = inspect
        .repo_tags
        .iter()
        .flatten()
        .filter(|t| !t.is_empty() && t.as_str() != "<none>:<none>")
        .cloned()
        .collect();
    Some(ImageInfo {
        id,
        tags,
        defaults: image_defaults(inspect.config.as_ref()),
        repo_digests: inspect
            .repo_digests
            .iter()
            .flatten()
            .filter(|d| d.contains('@'))
            .cloned()
            .collect(),
    })
}

/// What a container's list entry says about it, as a hash: when this is unchanged (and no event
/// arrived for it), an earlier inspection still holds.
pub(crate) fn summary_fingerprint(s: &bollard::models::ContainerSummary) -> u64 {
    use std::fmt::Write as _;
    use std::hash::Hasher as _;
    /// Hashes what is formatted into it, without building the string.
    struct HashWriter(std::collections::hash_map::DefaultHasher);
    impl std::fmt::Write for HashWriter {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.write(s.as_bytes());
            Ok(())
        }
    }
    let mut h = HashWriter(std::collections::hash_map::DefaultHasher::new());
    // Formatting into a hasher cannot fail.
    let _ = write!(
        h,
        "{:?}|{}|{:?}|{:?}|{:?}|{:?}",
        s.state,
        status_without_age(s.status.as_deref().unwrap_or_default()),
        s.image_id,
        s.names,
        s.created,
        s.ports
    );
    h.0.finish()
}

/// A list entry's status without its age: `Up 5 seconds (healthy)` → `Up (healthy)`,
/// `Exited (137) 2 minutes ago` → `Exited (137)`. The age changes every second for a young
/// container, and the cache must not take that for a change (a young fleet would be inspected
/// whole on every pass); the health, exit code and pause stay.
pub(crate) fn status_without_age(status: &str) -> String {
    let mut out = String::new();
    let mut rest = status.trim();
    if let Some(word) = rest.split_whitespace().next() {
        out.push_str(word);
        rest = &rest[word.len()..];
    }
    while let Some(open) = rest.find('(') {
        let Some(len) = rest[open..].find(')') else {
            break;
        };
        out.push(' ');
        out.push_str(&rest[open..=open + len]);
        rest = &rest[open + len + 1..];
    }
    out
}

/// The tags a list entry gives an image (the list is fresh; a cached inspection may not be).
pub(crate) fn summary_tags(s: &bollard::models::ImageSummary) -> Vec<String> {
    s.repo_tags
        .iter()
        .filter(|t| !t.is_empty() && t.as_str() != "<none>:<none>")
        .cloned()
        .collect()
}

/// The digests a list entry gives an image.
pub(crate) fn summary_digests(s: &bollard::models::ImageSummary) -> Vec<String> {
    s.repo_digests
        .iter()
        .filter(|d| d.contains('@'))
        .cloned()
        .collect()
}

/// The normalized keys an image is found under in `Observed::images`: its tags and its repo
/// digests (`name@sha256:…`, how a digest pin finds it).
pub(crate) fn image_keys(info: &ImageInfo) -> Vec<String> {
    info.tags
        .iter()
        .chain(&info.repo_digests)
        .map(|t| normalize_image_ref(t))
        .collect()
}

/// Of an image's repo digests, the one of the repository `reference` names: an image pushed
/// elsewhere too (or built here and pushed) has digests of other repositories, which say
/// nothing about where this container's image came from.
pub(crate) fn repo_digest_for(reference: &str, repo_digests: &[String]) -> Option<String> {
    let r = refinery_core::ImageRef::parse(reference).ok()?;
    let want = (r.registry().to_owned(), r.repository());
    repo_digests
        .iter()
        .find(|d| {
            d.split_once('@')
                .and_then(|(name, _)| refinery_core::ImageRef::parse(name).ok())
                .is_some_and(|n| (n.registry().to_owned(), n.repository()) == want)
        })
        .cloned()
}

fn env_map(env: Option<&[String]>) -> BTreeMap<String, String> {
    env.unwrap_or_default()
        .iter()
        .map(|entry| match entry.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (entry.clone(), String::new()),
        })
        .collect()
}

fn label_map(labels: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    labels.unwrap_or_default().into_iter().collect()
}

/// `8080/tcp` → (8080, tcp); a missing protocol means tcp.
fn parse_port_key(key: &str) -> Option<(u16, Protocol)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let protocol = match proto {
        "tcp" | "" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        _ => return None,
    };
    Some((port.parse().ok()?, protocol))
}

fn normalize_host_ip(ip: Option<&str>) -> String {
    match ip.unwrap_or_default() {
        "" | "0.0.0.0" => String::new(),
        other => other.to_owned(),
    }
}

/// `""` or `"0"` → any free port; a range (`8000-8010`) reports its first port.
fn parse_host_port(port: Option<&str>) -> Option<u16> {
    let port = port.unwrap_or_default().trim();
    let first = port.split('-').next().unwrap_or_default();
    first.parse::<u16>().ok().filter(|p| *p != 0)
}

/// Configured bindings (`HostConfig.PortBindings`), normalized and sorted.
fn ports_from_map(map: Option<&PortMap>) -> Vec<PortBinding> {
    let mut out = Vec::new();
    for (key, bindings) in map.into_iter().flatten() {
        let Some((container_port, protocol)) = parse_port_key(key) else {
            continue;
        };
        for b in bindings.iter().flatten() {
            out.push(PortBinding {
                host_ip: normalize_host_ip(b.host_ip.as_deref()),
                host_port: parse_host_port(b.host_port.as_deref()),
                container_port,
                protocol,
            });
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The source of a `Binds` entry (`data:/x:ro` → `data`, `/srv:/x` → `/srv`).
fn bind_source(bind: &str) -> Option<&str> {
    bind.split_once(':').map(|(source, _)| source)
}

fn mounts_from_inspect(points: &[MountPoint], host: &HostConfig) -> Vec<Mount> {
    // A volume is named when the container's configuration names it; every other volume was
    // created implicitly (an image `VOLUME` or a target-only spec) and is anonymous.
    let mut named: BTreeSet<&str> = host
        .binds
        .iter()
        .flatten()
        .filter_map(|b| bind_source(b))
        .collect();
    named.extend(
        host.mounts
            .iter()
            .flatten()
            .filter(|m| matches!(m.typ, Some(MountType::VOLUME) | None))
            .filter_map(|m| m.source.as_deref())
            .filter(|s| !s.is_empty()),
    );

    let mut out: Vec<Mount> = points
        .iter()
        .filter_map(|p| {
            let target = p.destination.clone().unwrap_or_default();
            let read_only = !p.rw.unwrap_or(true);
            match p.typ.as_deref() {
                Some("volume") => {
                    let name = p.name.as_deref().unwrap_or_default();
                    if !name.is_empty() && named.contains(name) {
                        Some(Mount {
                            kind: MountKind::Volume,
                            source: name.to_owned(),
                            target,
                            read_only,
                        })
                    } else {
                        Some(Mount {
                            kind: MountKind::Anonymous,
                            source: String::new(),
                            target,
                            read_only,
                        })
                    }
                }
                Some("bind") => Some(Mount {
                    kind: MountKind::Bind,
                    source: p.source.clone().unwrap_or_default(),
                    target,
                    read_only,
                }),
                _ => None,
            }
        })
        .collect();
    out.sort();
    out
}

/// What inspect shows of the settings kept beside the mounts and the healthcheck: a bind's
/// propagation other than the engine's `rprivate`, and a healthcheck's `start_interval` (which
/// engines before API 1.44 drop).
fn observed_mount_extras(
    options: &mut RuntimeOptions,
    points: &[MountPoint],
    hc: Option<&HealthConfig>,
) {
    let propagation: BTreeMap<String, String> = points
        .iter()
        .filter(|p| p.typ.as_deref() == Some("bind"))
        .filter_map(|p| {
            let mode = p
                .propagation
                .clone()
                .filter(|m| !m.is_empty() && m != "rprivate")?;
            Some((p.destination.clone()?, mode))
        })
        .collect();
    let start_interval = hc
        .and_then(|h| h.start_interval)
        .filter(|ns| *ns > 0)
        .map(|ns| ns_to_ms(Some(ns)));
    if propagation.is_empty() && start_interval.is_none() {
        return;
    }
    let extra = options.extra.get_or_insert_with(Default::default);
    extra.bind_propagation = propagation;
    extra.health_start_interval_ms = start_interval;
}

fn restart_policy(host: &HostConfig) -> RestartPolicy {
    let Some(policy) = &host.restart_policy else {
        return RestartPolicy::No;
    };
    match policy.name {
        Some(RestartPolicyNameEnum::ALWAYS) => RestartPolicy::Always,
        Some(RestartPolicyNameEnum::UNLESS_STOPPED) => RestartPolicy::UnlessStopped,
        Some(RestartPolicyNameEnum::ON_FAILURE) => RestartPolicy::OnFailure(
            policy
                .maximum_retry_count
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
        ),
        Some(RestartPolicyNameEnum::NO | RestartPolicyNameEnum::EMPTY) | None => RestartPolicy::No,
    }
}

const NS_PER_MS: i64 = 1_000_000;

fn ns_to_ms(ns: Option<i64>) -> u64 {
    ns.and_then(|n| u64::try_from(n / NS_PER_MS).ok())
        .unwrap_or(0)
}

fn ms_to_ns(ms: u64) -> Option<i64> {
    if ms == 0 {
        return None;
    }
    Some(
        i64::try_from(ms)
            .ok()
            .and_then(|ms| ms.checked_mul(NS_PER_MS))
            .unwrap_or(i64::MAX),
    )
}

fn healthcheck_from(hc: &HealthConfig) -> Healthcheck {
    Healthcheck {
        test: hc.test.clone().unwrap_or_default(),
        interval_ms: ns_to_ms(hc.interval),
        timeout_ms: ns_to_ms(hc.timeout),
        start_period_ms: ns_to_ms(hc.start_period),
        retries: hc.retries.and_then(|r| u32::try_from(r).ok()).unwrap_or(0),
    }
}

fn healthcheck_to(hc: &Healthcheck) -> HealthConfig {
    HealthConfig {
        test: Some(hc.test.clone()),
        interval: ms_to_ns(hc.interval_ms),
        timeout: ms_to_ns(hc.timeout_ms),
        start_period: ms_to_ns(hc.start_period_ms),
        retries: (hc.retries != 0).then_some(i64::from(hc.retries)),
        start_interval: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Core → engine
// ---------------------------------------------------------------------------------------------

fn port_key(p: &PortBinding) -> String {
    format!("{}/{}", p.container_port, p.protocol)
}

fn mount_bind(m: &Mount, propagation: Option<&String>) -> String {
    let mut s = format!("{}:{}", m.source, m.target);
    match (m.read_only, propagation) {
        (true, Some(p)) if m.kind == MountKind::Bind => s.push_str(&format!(":ro,{p}")),
        (false, Some(p)) if m.kind == MountKind::Bind => s.push_str(&format!(":{p}")),
        (true, _) => s.push_str(":ro"),
        (false, _) => {}
    }
    s
}

/// The create body for a request: `req.labels` is the full label set.
pub(crate) fn create_body(req: &CreateRequest) -> ContainerCreateBody {
    let spec = &req.spec;

    let env: Vec<String> = spec
        .env
        .iter()
        .map(|(k, v)| format!("{k}={}", v.expose()))
        .collect();

    let x = spec.options.extra();
    let mut exposed: Vec<String> = spec.ports.iter().map(port_key).collect();
    exposed.extend(x.expose.iter().cloned());
    exposed.sort();
    exposed.dedup();

    let mut port_bindings: PortMap = HashMap::new();
    for p in &spec.ports {
        port_bindings
            .entry(port_key(p))
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(bollard::models::PortBinding {
                host_ip: Some(p.host_ip.clone()),
                host_port: Some(p.host_port.map(|h| h.to_string()).unwrap_or_default()),
            });
    }

    let mut binds = Vec::new();
    let mut anonymous = Vec::new();
    let mut anonymous_ro = Vec::new();
    for m in &spec.mounts {
        match m.kind {
            MountKind::Volume | MountKind::Bind => {
                binds.push(mount_bind(m, x.bind_propagation.get(&m.target)));
            }
            MountKind::Anonymous if m.read_only => anonymous_ro.push(bollard::models::Mount {
                target: Some(m.target.clone()),
                typ: Some(MountType::VOLUME),
                read_only: Some(true),
                ..Default::default()
            }),
            MountKind::Anonymous => anonymous.push(m.target.clone()),
        }
    }

    let restart_policy = bollard::models::RestartPolicy {
        name: Some(match spec.restart {
            RestartPolicy::No => RestartPolicyNameEnum::NO,
            RestartPolicy::Always => RestartPolicyNameEnum::ALWAYS,
            RestartPolicy::UnlessStopped => RestartPolicyNameEnum::UNLESS_STOPPED,
            RestartPolicy::OnFailure(_) => RestartPolicyNameEnum::ON_FAILURE,
        }),
        maximum_retry_count: match spec.restart {
            RestartPolicy::OnFailure(n) => Some(i64::from(n)),
            _ => None,
        },
    };

    let non_empty = |v: Vec<String>| (!v.is_empty()).then_some(v);
    let opts = &spec.options;
    // API 1.41 attaches one network at create; the others are connected before the start.
    let first_network = join_order(spec).first().copied();

    ContainerCreateBody {
        user: opts.user.clone(),
        working_dir: opts.working_dir.clone(),
        hostname: opts.hostname.clone(),
        domainname: x.domainname.clone(),
        tty: x.tty.then_some(true),
        open_stdin: x.stdin_open.then_some(true),
        stop_signal: opts.stop_signal.clone(),
        stop_timeout: opts.stop_timeout_secs,
        networking_config: first_network.map(|n| bollard::models::NetworkingConfig {
            endpoints_config: Some(HashMap::from([(n.name.clone(), endpoint(n, &x.links))])),
        }),
        image: Some(spec.image.clone()),
        env: non_empty(env),
        cmd: spec.command.clone(),
        entrypoint: spec.entrypoint.clone(),
        labels: Some(
            req.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        exposed_ports: non_empty(exposed),
        volumes: non_empty(anonymous),
        healthcheck: spec.healthcheck.as_ref().map(|hc| HealthConfig {
            start_interval: x.health_start_interval_ms.and_then(ms_to_ns),
            ..healthcheck_to(hc)
        }),
        host_config: Some(HostConfig {
            binds: non_empty(binds),
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            mounts: (!anonymous_ro.is_empty()).then_some(anonymous_ro),
            restart_policy: Some(restart_policy),
            network_mode: opts
                .network_mode
                .clone()
                .or_else(|| first_network.map(|n| n.name.clone())),
            readonly_rootfs: opts.read_only.then_some(true),
            security_opt: non_empty(opts.security_opt.clone()),
            privileged: opts.privileged.then_some(true),
            cap_add: non_empty(opts.cap_add.clone()),
            cap_drop: non_empty(opts.cap_drop.clone()),
            init: opts.init,
            tmpfs: (!opts.tmpfs.is_empty()).then(|| {
                opts.tmpfs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            }),
            log_config: opts
                .logging
                .as_ref()
                .map(|l| bollard::models::HostConfigLogConfig {
                    typ: Some(l.driver.clone()),
                    config: Some(
                        l.options
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    ),
                }),
            memory: opts.memory_bytes,
            nano_cpus: opts.nano_cpus,
            extra_hosts: non_empty(opts.extra_hosts.clone()),
            // On the default bridge links are the container's; on a network, the endpoint's.
            links: (first_network.is_none() && opts.network_mode.is_none())
                .then(|| non_empty(x.links.clone()))
                .flatten(),
            ..extra_host_config(x)
        }),
        ..Default::default()
    }
}

fn hash_map(m: &BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    (!m.is_empty()).then(|| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// The host settings of [`ExtraOptions`] as the engine takes them.
fn extra_host_config(x: &ExtraOptions) -> HostConfig {
    let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let throttle = |v: &[(String, i64)]| {
        (!v.is_empty()).then(|| {
            v.iter()
                .map(|(path, rate)| ThrottleDevice {
                    path: Some(path.clone()),
                    rate: Some(*rate),
                })
                .collect()
        })
    };
    HostConfig {
        ulimits: (!x.ulimits.is_empty()).then(|| {
            x.ulimits
                .iter()
                .map(|(name, u)| ResourcesUlimits {
                    name: Some(name.clone()),
                    soft: Some(u.soft),
                    hard: Some(u.hard),
                })
                .collect()
        }),
        runtime: x.runtime.clone(),
        sysctls: hash_map(&x.sysctls),
        shm_size: x.shm_size,
        devices: (!x.devices.is_empty()).then(|| {
            x.devices
                .iter()
                .map(|d| DeviceMapping {
                    path_on_host: Some(d.host.clone()),
                    path_in_container: Some(d.container.clone()),
                    cgroup_permissions: Some(d.permissions.clone()),
                })
                .collect()
        }),
        device_cgroup_rules: non_empty(&x.device_cgroup_rules),
        pid_mode: x.pid.clone(),
        ipc_mode: x.ipc.clone(),
        uts_mode: x.uts.clone(),
        userns_mode: x.userns_mode.clone(),
        cgroupns_mode: x.cgroup.as_deref().map(|m| match m {
            "host" => HostConfigCgroupnsModeEnum::HOST,
            _ => HostConfigCgroupnsModeEnum::PRIVATE,
        }),
        cgroup_parent: x.cgroup_parent.clone(),
        group_add: non_empty(&x.group_add),
        oom_kill_disable: x.oom_kill_disable,
        oom_score_adj: x.oom_score_adj,
        pids_limit: x.pids_limit,
        memory_reservation: x.mem_reservation,
        memory_swap: x.memswap_limit,
        memory_swappiness: x.mem_swappiness,
        cpu_shares: x.cpu_shares,
        cpu_quota: x.cpu_quota,
        cpu_period: x.cpu_period,
        cpuset_cpus: x.cpuset.clone(),
        cpu_realtime_period: x.cpu_rt_period,
        cpu_realtime_runtime: x.cpu_rt_runtime,
        cpu_count: x.cpu_count,
        cpu_percent: x.cpu_percent,
        blkio_weight: x.blkio.weight,
        blkio_weight_device: (!x.blkio.weight_device.is_empty()).then(|| {
            x.blkio
                .weight_device
                .iter()
                .map(|(path, w)| ResourcesBlkioWeightDevice {
                    path: Some(path.clone()),
                    weight: Some(usize::from(*w)),
                })
                .collect()
        }),
        blkio_device_read_bps: throttle(&x.blkio.device_read_bps),
        blkio_device_write_bps: throttle(&x.blkio.device_write_bps),
        blkio_device_read_iops: throttle(&x.blkio.device_read_iops),
        blkio_device_write_iops: throttle(&x.blkio.device_write_iops),
        storage_opt: hash_map(&x.storage_opt),
        dns: non_empty(&x.dns),
        dns_search: non_empty(&x.dns_search),
        dns_options: non_empty(&x.dns_opt),
        isolation: x.isolation.as_deref().map(|i| match i {
            "process" => HostConfigIsolationEnum::PROCESS,
            "hyperv" => HostConfigIsolationEnum::HYPERV,
            _ => HostConfigIsolationEnum::DEFAULT,
        }),
        annotations: hash_map(&x.annotations),
        volumes_from: non_empty(&x.volumes_from),
        device_requests: (!x.device_requests.is_empty()).then(|| {
            x.device_requests
                .iter()
                .map(|d| bollard::models::DeviceRequest {
                    driver: (!d.driver.is_empty()).then(|| d.driver.clone()),
                    count: Some(d.count),
                    device_ids: (!d.device_ids.is_empty()).then(|| d.device_ids.clone()),
                    capabilities: Some(vec![d.capabilities.clone()]),
                    options: hash_map(&d.options),
                })
                .collect()
        }),
        ..Default::default()
    }
}

/// The MAC address a container is created with: the service's `mac_address`, else the one its
/// first network (the one it is created on) declares. API 1.41 takes it only in the container's
/// configuration (`Config.MacAddress`), a field bollard 0.21's model no longer has: see
/// [`create_body_with_mac`].
pub(crate) fn mac_address(spec: &ContainerSpec) -> Option<String> {
    spec.options.extra().mac_address.clone().or_else(|| {
        spec.options
            .networks
            .first()
            .and_then(|n| n.mac_address.clone())
    })
}

/// The create body as JSON with `MacAddress` set, for engines that read it from there.
pub(crate) fn create_body_with_mac(
    body: &ContainerCreateBody,
    mac: &str,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut value = serde_json::to_value(body)?;
    if let Some(map) = value.as_object_mut() {
        map.insert(
            "MacAddress".into(),
            serde_json::Value::String(mac.to_owned()),
        );
    }
    serde_json::to_vec(&value)
}

fn endpoint(n: &NetworkAttachment, links: &[String]) -> bollard::models::EndpointSettings {
    let addresses =
        n.ipv4_address.is_some() || n.ipv6_address.is_some() || !n.link_local_ips.is_empty();
    bollard::models::EndpointSettings {
        aliases: (!n.aliases.is_empty()).then(|| n.aliases.clone()),
        ipam_config: addresses.then(|| bollard::models::EndpointIpamConfig {
            ipv4_address: n.ipv4_address.clone(),
            ipv6_address: n.ipv6_address.clone(),
            link_local_ips: (!n.link_local_ips.is_empty()).then(|| n.link_local_ips.clone()),
        }),
        links: (!links.is_empty()).then(|| links.to_vec()),
        mac_address: n.mac_address.clone(),
        ..Default::default()
    }
}

/// The networks in the order they are joined: highest `priority` first, then by name. The
/// first is the one the container is created on.
fn join_order(spec: &ContainerSpec) -> Vec<&NetworkAttachment> {
    let mut nets: Vec<&NetworkAttachment> = spec.options.networks.iter().collect();
    nets.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| a.name.cmp(&b.name))
    });
    nets
}

/// Takes container `id` off a network (not forced: a container the engine cannot disconnect
/// stays attached, and the caller carries on).
pub(crate) fn network_disconnect(id: &str) -> bollard::models::NetworkDisconnectRequest {
    bollard::models::NetworkDisconnectRequest {
        container: id.to_owned(),
        force: None,
    }
}

/// The networks after the first, to connect between create and start.
pub(crate) fn extra_network_connects(
    container: &str,
    spec: &refinery_core::ContainerSpec,
) -> Vec<(String, bollard::models::NetworkConnectRequest)> {
    network_connects(container, spec)
        .into_iter()
        .skip(1)
        .collect()
}

/// Every declared network of `spec`, in join order, with its aliases and addresses.
pub(crate) fn network_connects(
    container: &str,
    spec: &refinery_core::ContainerSpec,
) -> Vec<(String, bollard::models::NetworkConnectRequest)> {
    let links = &spec.options.extra().links;
    join_order(spec)
        .into_iter()
        .map(|n| {
            (
                n.name.clone(),
                bollard::models::NetworkConnectRequest {
                    container: container.to_owned(),
                    endpoint_config: Some(endpoint(n, links)),
                },
            )
        })
        .collect()
}

/// Engine options as inspect reports them; empty strings and zeros read as unset.
fn runtime_options(
    config: &bollard::models::ContainerConfig,
    host: &HostConfig,
    networks: Option<HashMap<String, bollard::models::EndpointSettings>>,
) -> RuntimeOptions {
    let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    let mut links: Vec<String> = Vec::new();
    let mut nets: Vec<NetworkAttachment> = networks
        .unwrap_or_default()
        .into_iter()
        .map(|(name, e)| {
            let mut aliases = e.aliases.unwrap_or_default();
            aliases.sort();
            aliases.dedup();
            links.extend(e.links.unwrap_or_default());
            let ipam = e.ipam_config.unwrap_or_default();
            let mut link_local_ips = ipam.link_local_ips.unwrap_or_default();
            link_local_ips.sort();
            NetworkAttachment {
                name,
                aliases,
                ipv4_address: ipam.ipv4_address.filter(|a| !a.is_empty()),
                ipv6_address: ipam.ipv6_address.filter(|a| !a.is_empty()),
                link_local_ips,
                mac_address: e.mac_address.filter(|m| !m.is_empty()),
                priority: 0,
            }
        })
        .collect();
    nets.sort();
    // Links on the default bridge read `/db:/web/database`; on a network, `db:database`.
    links.extend(host.links.iter().flatten().map(
        |l| match l.trim_start_matches('/').split_once(':') {
            Some((target, alias)) => {
                format!("{target}:{}", alias.rsplit('/').next().unwrap_or(alias))
            }
            None => l.clone(),
        },
    ));
    let sorted = |v: &Option<Vec<String>>| {
        let mut v = v.clone().unwrap_or_default();
        v.sort();
        v
    };
    RuntimeOptions {
        networks: nets,
        user: nonempty(&config.user),
        working_dir: nonempty(&config.working_dir),
        read_only: host.readonly_rootfs.unwrap_or(false),
        security_opt: sorted(&host.security_opt),
        memory_bytes: host.memory.filter(|m| *m != 0),
        nano_cpus: host.nano_cpus.filter(|n| *n != 0),
        extra_hosts: sorted(&host.extra_hosts),
        privileged: host.privileged.unwrap_or(false),
        cap_add: refinery_core::spec::capabilities(&host.cap_add.clone().unwrap_or_default()),
        cap_drop: refinery_core::spec::capabilities(&host.cap_drop.clone().unwrap_or_default()),
        network_mode: nonempty(&host.network_mode),
        hostname: nonempty(&config.hostname),
        init: host.init,
        stop_signal: nonempty(&config.stop_signal),
        stop_timeout_secs: config.stop_timeout,
        tmpfs: host.tmpfs.clone().unwrap_or_default().into_iter().collect(),
        logging: host.log_config.as_ref().and_then(|l| {
            Some(refinery_core::spec::Logging {
                driver: l.typ.clone().filter(|t| !t.is_empty())?,
                options: l.config.clone().unwrap_or_default().into_iter().collect(),
            })
        }),
        extra: observed_extra(config, host, links).boxed(),
        // What the container follows is the manifest's business; the engine knows no policy.
        image_policy: None,
    }
}

/// The engine's default `/dev/shm` size, read as unset.
const DEFAULT_SHM_SIZE: i64 = 64 << 20;

/// [`ExtraOptions`] as inspect reports them. What the engine fills in on its own reads as unset
/// (an IPC namespace `private` or `shareable`, the cgroup namespace `host` or `private`, the
/// runtime `runc`, a 64 MiB `/dev/shm`, zeros), so a plain container carries none of it.
fn observed_extra(
    config: &bollard::models::ContainerConfig,
    host: &HostConfig,
    mut links: Vec<String>,
) -> ExtraOptions {
    let text = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    let positive = |v: Option<i64>| v.filter(|n| *n > 0);
    let sorted = |v: &Option<Vec<String>>| {
        let mut v = v.clone().unwrap_or_default();
        v.sort();
        v.dedup();
        v
    };
    let map = |m: &Option<HashMap<String, String>>| -> BTreeMap<String, String> {
        m.clone().unwrap_or_default().into_iter().collect()
    };
    let throttle = |v: &Option<Vec<ThrottleDevice>>| -> Vec<(String, i64)> {
        let mut out: Vec<(String, i64)> = v
            .iter()
            .flatten()
            .filter_map(|t| Some((t.path.clone()?, t.rate?)))
            .collect();
        out.sort();
        out
    };
    links.sort();
    links.dedup();
    let mut devices: Vec<Device> = host
        .devices
        .iter()
        .flatten()
        .map(|d| Device {
            host: d.path_on_host.clone().unwrap_or_default(),
            container: d.path_in_container.clone().unwrap_or_default(),
            permissions: d.cgroup_permissions.clone().unwrap_or_default(),
        })
        .collect();
    devices.sort();
    let mut device_requests: Vec<refinery_core::DeviceRequest> = host
        .device_requests
        .iter()
        .flatten()
        .map(|d| {
            let mut capabilities: Vec<String> =
                d.capabilities.iter().flatten().flatten().cloned().collect();
            capabilities.sort();
            refinery_core::DeviceRequest {
                driver: d.driver.clone().unwrap_or_default(),
                count: d.count.unwrap_or(0),
                device_ids: d.device_ids.clone().unwrap_or_default(),
                capabilities,
                options: map(&d.options),
            }
        })
        .collect();
    device_requests.sort();
    let mut weight_device: Vec<(String, u16)> = host
        .blkio_weight_device
        .iter()
        .flatten()
        .filter_map(|w| Some((w.path.clone()?, u16::try_from(w.weight?).ok()?)))
        .collect();
    weight_device.sort();
    ExtraOptions {
        expose: sorted(&config.exposed_ports),
        ulimits: host
            .ulimits
            .iter()
            .flatten()
            .filter_map(|u| {
                Some((
                    u.name.clone()?,
                    Ulimit {
                        soft: u.soft.unwrap_or(0),
                        hard: u.hard.unwrap_or(0),
                    },
                ))
            })
            .collect(),
        platform: None,
        pull_policy: None,
        update_order: None,
        runtime: text(&host.runtime).filter(|r| r != "runc"),
        sysctls: map(&host.sysctls),
        stdin_open: config.open_stdin.unwrap_or(false),
        tty: config.tty.unwrap_or(false),
        shm_size: positive(host.shm_size).filter(|s| *s != DEFAULT_SHM_SIZE),
        devices,
        device_cgroup_rules: host.device_cgroup_rules.clone().unwrap_or_default(),
        pid: text(&host.pid_mode),
        ipc: text(&host.ipc_mode).filter(|m| m != "private" && m != "shareable"),
        uts: text(&host.uts_mode),
        userns_mode: text(&host.userns_mode),
        // `host` or `private` (the engine's default, by cgroup version) read as unset.
        cgroup: None,
        cgroup_parent: text(&host.cgroup_parent),
        group_add: sorted(&host.group_add),
        oom_kill_disable: host.oom_kill_disable.filter(|d| *d),
        oom_score_adj: host.oom_score_adj.filter(|n| *n != 0),
        pids_limit: positive(host.pids_limit),
        mem_reservation: positive(host.memory_reservation),
        memswap_limit: host.memory_swap.filter(|n| *n != 0),
        mem_swappiness: host.memory_swappiness.filter(|n| *n >= 0),
        cpu_shares: positive(host.cpu_shares),
        cpu_quota: positive(host.cpu_quota),
        cpu_period: positive(host.cpu_period),
        cpuset: text(&host.cpuset_cpus),
        cpu_rt_period: positive(host.cpu_realtime_period),
        cpu_rt_runtime: positive(host.cpu_realtime_runtime),
        cpu_count: positive(host.cpu_count),
        cpu_percent: positive(host.cpu_percent),
        blkio: Blkio {
            weight: host.blkio_weight.filter(|w| *w != 0),
            weight_device,
            device_read_bps: throttle(&host.blkio_device_read_bps),
            device_write_bps: throttle(&host.blkio_device_write_bps),
            device_read_iops: throttle(&host.blkio_device_read_iops),
            device_write_iops: throttle(&host.blkio_device_write_iops),
        },
        storage_opt: map(&host.storage_opt),
        dns: host.dns.clone().unwrap_or_default(),
        dns_search: host.dns_search.clone().unwrap_or_default(),
        dns_opt: host.dns_options.clone().unwrap_or_default(),
        domainname: text(&config.domainname),
        // Not in bollard 0.21's model of the configuration: compared on the networks instead.
        mac_address: None,
        links,
        isolation: match host.isolation {
            Some(HostConfigIsolationEnum::PROCESS) => Some("process".to_owned()),
            Some(HostConfigIsolationEnum::HYPERV) => Some("hyperv".to_owned()),
            _ => None,
        },
        annotations: map(&host.annotations),
        volumes_from: host.volumes_from.clone().unwrap_or_default(),
        device_requests,
        // From the mounts and the healthcheck: see `observed_mount_extras`.
        bind_propagation: BTreeMap::new(),
        health_start_interval_ms: None,
    }
}

/// The create request for a stack network, labelled as docker-compose labels its own.
pub(crate) fn network_create_request(net: &NetworkSpec) -> bollard::models::NetworkCreateRequest {
    bollard::models::NetworkCreateRequest {
        name: net.name.clone(),
        driver: Some(net.driver.clone()),
        labels: Some(
            net.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        options: hash_map(&net.options),
        ipam: net.ipam.as_ref().map(|i| bollard::models::Ipam {
            driver: i.driver.clone(),
            config: (!i.pools.is_empty()).then(|| {
                i.pools
                    .iter()
                    .map(|p| bollard::models::IpamConfig {
                        subnet: p.subnet.clone(),
                        ip_range: p.ip_range.clone(),
                        gateway: p.gateway.clone(),
                        auxiliary_addresses: hash_map(&p.aux_addresses),
                    })
                    .collect()
            }),
            options: hash_map(&i.options),
        }),
        internal: net.internal.then_some(true),
        attachable: net.attachable.then_some(true),
        enable_ipv6: net.enable_ipv6.then_some(true),
        ..Default::default()
    }
}

/// The build context of a compose `build:` as an in-memory tar: every committed file, mode 0755
/// when git records it executable, else 0644 (git keeps nothing else of a file's mode).
pub(crate) fn build_context_tar(build: &refinery_core::BuildSpec) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, file) in build.files.iter() {
        let mut header = tar::Header::new_gnu();
        header.set_size(file.data.len() as u64);
        header.set_mode(if file.executable { 0o755 } else { 0o644 });
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path, file.data.as_slice())?;
    }
    tar.into_inner()
}

/// Classic builder, no pull, the context's dockerfile, args and target.
pub(crate) fn build_options(
    tag: &str,
    build: &refinery_core::BuildSpec,
    labels: &BTreeMap<String, String>,
) -> bollard::query_parameters::BuildImageOptions {
    bollard::query_parameters::BuildImageOptions {
        t: Some(tag.to_owned()),
        dockerfile: build.dockerfile.clone(),
        buildargs: (!build.args.is_empty()).then(|| {
            build
                .args
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }),
        target: build.target.clone().unwrap_or_default(),
        labels: {
            // The build's own labels, Refinery's over them.
            let mut all = build.labels.clone();
            all.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            hash_map(&all)
        },
        networkmode: build.network.clone(),
        shmsize: build.shm_size.and_then(|s| i32::try_from(s).ok()),
        // One host here; several are sent one parameter each (see `extra_hosts_query`).
        extrahosts: build.extra_hosts.first().cloned(),
        cachefrom: (!build.cache_from.is_empty()).then(|| build.cache_from.clone()),
        rm: true,
        forcerm: true,
        version: bollard::query_parameters::BuilderVersion::BuilderV1,
        ..Default::default()
    }
}

/// `extrahosts=HOST%3AIP` query parameters, one per extra host, when a build has several
/// (bollard sends one parameter, which the engine reads as one host).
pub(crate) fn extra_hosts_query(build: &refinery_core::BuildSpec) -> Option<String> {
    if build.extra_hosts.len() < 2 {
        return None;
    }
    let encode = |s: &str| {
        let mut out = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    };
    Some(
        build
            .extra_hosts
            .iter()
            .map(|h| format!("extrahosts={}", encode(h)))
            .collect::<Vec<_>>()
            .join("&"),
    )
}

/// Replaces the `extrahosts` parameters of a build request's query with `params`.
pub(crate) fn set_extra_hosts(uri: &mut http::Uri, params: &str) {
    let mut parts = uri.clone().into_parts();
    let Some(pq) = parts.path_and_query.as_ref() else {
        return;
    };
    let path = pq.path().to_owned();
    let mut query: Vec<&str> = pq
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("extrahosts="))
        .collect();
    query.push(params);
    if let Ok(new) = format!("{path}?{}", query.join("&")).parse() {
        parts.path_and_query = Some(new);
        if let Ok(u) = http::Uri::from_parts(parts) {
            *uri = u;
        }
    }
}

/// The create request for a stack's named volume.
pub(crate) fn volume_create_request(vol: &VolumeSpec) -> bollard::models::VolumeCreateRequest {
    bollard::models::VolumeCreateRequest {
        name: Some(vol.name.clone()),
        driver: Some(vol.driver.clone()),
        driver_opts: hash_map(&vol.options),
        labels: Some(
            vol.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Inventory: images, volumes, networks and who uses them
// ---------------------------------------------------------------------------------------------

/// Which containers (any label, running or stopped) use which image id, volume and network.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    pub images: HashMap<String, Vec<String>>,
    pub volumes: HashMap<String, Vec<String>>,
    pub networks: HashMap<String, Vec<String>>,
}

/// Every container on the engine, whatever its labels: usage is never scoped.
pub(crate) fn all_containers_options() -> ListContainersOptions {
    ListContainersOptions {
        all: true,
        ..Default::default()
    }
}

pub(crate) fn usage(summaries: &[bollard::models::ContainerSummary]) -> Usage {
    let mut u = Usage::default();
    for c in summaries {
        let name = c
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_owned())
            .or_else(|| c.id.clone())
            .unwrap_or_default();
        if let Some(image) = &c.image_id {
            u.images
                .entry(image.clone())
                .or_default()
                .push(name.clone());
        }
        for m in c.mounts.iter().flatten() {
            if m.typ.as_deref() == Some("volume")
                && let Some(v) = &m.name
            {
                u.volumes.entry(v.clone()).or_default().push(name.clone());
            }
        }
        if let Some(networks) = c
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
        {
            for net in networks.keys() {
                u.networks
                    .entry(net.clone())
                    .or_default()
                    .push(name.clone());
            }
        }
    }
    for list in u
        .images
        .values_mut()
        .chain(u.volumes.values_mut())
        .chain(u.networks.values_mut())
    {
        list.sort();
        list.dedup();
    }
    u
}

fn label_filters(selector: Option<&LabelSelector>) -> Option<HashMap<String, Vec<String>>> {
    selector.map(|s| HashMap::from([("label".to_owned(), vec![s.to_string()])]))
}

/// Top-level images carrying the selector's label (all without one).
pub(crate) fn list_images_options_for(selector: Option<&LabelSelector>) -> ListImagesOptions {
    ListImagesOptions {
        all: false,
        filters: label_filters(selector),
        ..Default::default()
    }
}

pub(crate) fn list_volumes_options(
    selector: Option<&LabelSelector>,
) -> bollard::query_parameters::ListVolumesOptions {
    bollard::query_parameters::ListVolumesOptions {
        filters: label_filters(selector),
    }
}

pub(crate) fn list_networks_options(
    selector: Option<&LabelSelector>,
) -> bollard::query_parameters::ListNetworksOptions {
    bollard::query_parameters::ListNetworksOptions {
        filters: label_filters(selector),
    }
}

/// Never forced: removing an image a container uses must fail, not untag it from under it.
pub(crate) fn remove_image_options() -> bollard::query_parameters::RemoveImageOptions {
    bollard::query_parameters::RemoveImageOptions {
        force: false,
        noprune: false,
        ..Default::default()
    }
}

/// `docker tag IMAGE reference`: the repository and tag of `reference` (`latest` when it names
/// none).
pub(crate) fn tag_image_options(reference: &str) -> bollard::query_parameters::TagImageOptions {
    let (repo, tag) = match refinery_core::image_ref::ImageRef::parse(reference) {
        Ok(r) => (r.name().to_owned(), r.tag().unwrap_or("latest").to_owned()),
        Err(_) => (reference.to_owned(), "latest".to_owned()),
    };
    bollard::query_parameters::TagImageOptions {
        repo: Some(repo),
        tag: Some(tag),
    }
}

/// Never forced: removing a volume in use must fail.
pub(crate) fn remove_volume_options() -> bollard::query_parameters::RemoveVolumeOptions {
    bollard::query_parameters::RemoveVolumeOptions { force: false }
}

fn timestamp(s: Option<&str>) -> Option<jiff::Timestamp> {
    s.and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .filter(|t| t.as_second() > 0)
}

fn byte_size(n: i64) -> Option<u64> {
    u64::try_from(n).ok()
}

pub(crate) fn engine_image(s: bollard::models::ImageSummary, usage: &Usage) -> EngineImage {
    let tags: Vec<String> = s
        .repo_tags
        .into_iter()
        .filter(|t| t != "<none>:<none>" && !t.is_empty())
        .collect();
    let digests: Vec<String> = s
        .repo_digests
        .into_iter()
        .filter(|d| d != "<none>@<none>" && !d.is_empty())
        .collect();
    EngineImage {
        used_by: usage.images.get(&s.id).cloned().unwrap_or_default(),
        id: s.id,
        tags,
        digests,
        size: byte_size(s.size),
        created: jiff::Timestamp::from_second(s.created)
            .ok()
            .filter(|t| t.as_second() > 0),
        labels: s.labels.into_iter().collect(),
    }
}

pub(crate) fn engine_volume(v: bollard::models::Volume, usage: &Usage) -> EngineVolume {
    EngineVolume {
        used_by: usage.volumes.get(&v.name).cloned().unwrap_or_default(),
        size: v.usage_data.as_ref().and_then(|u| byte_size(u.size)),
        created: timestamp(v.created_at.as_deref()),
        labels: v.labels.into_iter().collect(),
        name: v.name,
    }
}

pub(crate) fn engine_network(n: bollard::models::Network, usage: &Usage) -> Option<EngineNetwork> {
    let name = n.name?;
    Some(EngineNetwork {
        used_by: usage.networks.get(&name).cloned().unwrap_or_default(),
        id: n.id.unwrap_or_else(|| name.clone()),
        created: timestamp(n.created.as_deref()),
        labels: n.labels.unwrap_or_default().into_iter().collect(),
        name,
    })
}

/// A network for comparing a stack's declared one; `None` when the engine gave no name.
pub(crate) fn observed_network(n: bollard::models::Network) -> Option<ObservedNetwork> {
    let ipam = n.ipam.map(|i| refinery_core::spec::Ipam {
        driver: i.driver.filter(|d| !d.is_empty() && d != "default"),
        pools: i
            .config
            .unwrap_or_default()
            .into_iter()
            .map(|c| refinery_core::spec::IpamPool {
                subnet: c.subnet.filter(|s| !s.is_empty()),
                ip_range: c.ip_range.filter(|s| !s.is_empty()),
                gateway: c.gateway.filter(|s| !s.is_empty()),
                aux_addresses: c
                    .auxiliary_addresses
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
            })
            .collect(),
        options: i.options.unwrap_or_default().into_iter().collect(),
    });
    Some(ObservedNetwork {
        name: n.name?,
        driver: n.driver.unwrap_or_default(),
        labels: n.labels.unwrap_or_default().into_iter().collect(),
        options: n.options.unwrap_or_default().into_iter().collect(),
        ipam,
        internal: n.internal.unwrap_or(false),
        attachable: n.attachable.unwrap_or(false),
        enable_ipv6: n.enable_ipv6.unwrap_or(false),
    })
}

/// A volume for comparing a stack's declared one.
pub(crate) fn observed_volume(v: bollard::models::Volume) -> ObservedVolume {
    ObservedVolume {
        name: v.name,
        driver: v.driver,
        labels: v.labels.into_iter().collect(),
        options: v.options.into_iter().collect(),
    }
}

/// ``volume `data` ``
pub(crate) fn volume_what(name: &str) -> String {
    format!("volume `{name}`")
}

/// ``network `tmp-net` ``
pub(crate) fn network_what(name: &str) -> String {
    format!("network `{name}`")
}

#[cfg(test)]
mod tests {
    #[test]
    fn auth_failure_is_recognized_by_the_engine_message() {
        use super::is_auth_failure;
        assert!(is_auth_failure(
            "Head \"http://127.0.0.1:5000/v2/app/manifests/1\": no basic auth credentials"
        ));
        assert!(is_auth_failure("unauthorized: authentication required"));
        assert!(!is_auth_failure(
            "manifest for app:2 not found: manifest unknown"
        ));
    }

    #[test]
    fn repo_digest_for_takes_only_the_containers_repository() {
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let digests = vec![format!("127.0.0.1:5000/app@{d}"), format!("busybox@{d}")];
        assert_eq!(
            super::repo_digest_for("busybox:1.36", &digests),
            Some(format!("busybox@{d}"))
        );
        assert_eq!(
            super::repo_digest_for("docker.io/library/busybox", &digests),
            Some(format!("busybox@{d}"))
        );
        assert_eq!(
            super::repo_digest_for("refinery-test:latest", &digests),
            None
        );
    }

    use super::*;

    #[test]
    fn status_without_age_keeps_health_exit_code_and_pause() {
        for (status, stable) in [
            ("Up Less than a second", "Up"),
            ("Up 5 seconds", "Up"),
            ("Up About a minute (healthy)", "Up (healthy)"),
            ("Up 2 hours (health: starting)", "Up (health: starting)"),
            ("Up 3 minutes (Paused)", "Up (Paused)"),
            ("Exited (137) 2 minutes ago", "Exited (137)"),
            ("Restarting (1) 4 seconds ago", "Restarting (1)"),
            ("Created", "Created"),
            ("", ""),
            ("Up (unclosed", "Up"),
        ] {
            assert_eq!(status_without_age(status), stable, "{status}");
        }
        assert_ne!(
            status_without_age("Up 1 second (healthy)"),
            status_without_age("Up 2 seconds (unhealthy)")
        );
    }

    #[test]
    fn port_taken_bind_for_message_parses_port() {
        let msg = "driver failed programming external connectivity on endpoint rt-x (abc): \
                   Bind for 0.0.0.0:18080 failed: port is already allocated";
        assert_eq!(port_taken(msg), Some(18080));
    }

    #[test]
    fn port_taken_address_in_use_message_parses_port() {
        let msg =
            "Error starting userland proxy: listen tcp4 0.0.0.0:8080: bind: address already in use";
        assert_eq!(port_taken(msg), Some(8080));
        let v6 = "listen tcp6 [::]:9090: bind: address already in use";
        assert_eq!(port_taken(v6), Some(9090));
    }

    #[test]
    fn port_taken_other_message_is_none() {
        assert_eq!(port_taken("No such container: web"), None);
        assert_eq!(port_taken("port is already allocated"), None);
    }

    #[test]
    fn server_error_404_is_not_found() {
        let op = Op::new("unix:///x", "start", container_what("web"));
        let err = error(
            BollardError::DockerResponseServerError {
                status_code: 404,
                message: "No such container: web".into(),
            },
            &op,
        );
        assert_eq!(
            err,
            RuntimeError::NotFound {
                what: "container `web`".into()
            }
        );
    }

    #[test]
    fn server_error_409_is_conflict() {
        let op = Op::new("unix:///x", "create", container_what("web"));
        let err = error(
            BollardError::DockerResponseServerError {
                status_code: 409,
                message: "Conflict. The container name \"/web\" is already in use".into(),
            },
            &op,
        );
        assert!(
            matches!(err, RuntimeError::Conflict { ref what, .. } if what == "container `web`")
        );
    }

    #[test]
    fn server_error_500_port_allocated_is_port_taken() {
        let op = Op::new("unix:///x", "start", container_what("web"));
        let err = error(
            BollardError::DockerResponseServerError {
                status_code: 500,
                message: "driver failed programming external connectivity on endpoint web: \
                          Bind for 0.0.0.0:8081 failed: port is already allocated"
                    .into(),
            },
            &op,
        );
        assert_eq!(err, RuntimeError::PortTaken { port: 8081 });
    }

    #[test]
    fn server_error_other_keeps_action_and_message() {
        let op = Op::new("unix:///x", "start", container_what("web"));
        let err = error(
            BollardError::DockerResponseServerError {
                status_code: 500,
                message: "OCI runtime create failed".into(),
            },
            &op,
        );
        assert_eq!(
            err.to_string(),
            "failed to start container `web`: OCI runtime create failed"
        );
    }

    #[test]
    fn socket_not_found_is_unreachable_no_such_file() {
        let op = Op::new("unix:///nope.sock", "connect to", "the engine");
        let err = error(BollardError::SocketNotFoundError("/nope.sock".into()), &op);
        match err {
            RuntimeError::Unreachable {
                endpoint,
                cause,
                reason,
            } => {
                assert_eq!(endpoint, "unix:///nope.sock");
                assert_eq!(cause, UnreachableCause::NoSocket);
                assert!(reason.contains("no such file"), "{reason}");
            }
            other => panic!("expected unreachable, got {other:?}"),
        }
    }

    #[test]
    fn io_permission_denied_is_unreachable_permission_denied() {
        let op = Op::new("unix:///s.sock", "connect to", "the engine");
        let err = error(
            BollardError::IOError {
                err: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
            },
            &op,
        );
        assert_eq!(
            err,
            RuntimeError::Unreachable {
                endpoint: "unix:///s.sock".into(),
                cause: UnreachableCause::PermissionDenied,
                reason: "permission denied".into()
            }
        );
    }

    #[test]
    fn split_reference_handles_registry_port_and_digest() {
        assert_eq!(
            split_reference("busybox:1.36"),
            ("busybox".into(), "1.36".into())
        );
        assert_eq!(
            split_reference("localhost:5000/app:1"),
            ("localhost:5000/app".into(), "1".into())
        );
        assert_eq!(
            split_reference("localhost:5000/app"),
            ("localhost:5000/app".into(), "latest".into())
        );
        assert_eq!(
            split_reference("app@sha256:ab"),
            ("app".into(), "sha256:ab".into())
        );
    }

    #[test]
    fn env_map_bare_key_has_empty_value() {
        let env = env_map(Some(&[
            "A=1".to_owned(),
            "B".to_owned(),
            "C=x=y".to_owned(),
        ]));
        assert_eq!(env.get("A").map(String::as_str), Some("1"));
        assert_eq!(env.get("B").map(String::as_str), Some(""));
        assert_eq!(env.get("C").map(String::as_str), Some("x=y"));
    }

    #[test]
    fn ports_from_map_normalizes_host_ip_and_empty_port() {
        let map: PortMap = HashMap::from([
            (
                "80/tcp".to_owned(),
                Some(vec![bollard::models::PortBinding {
                    host_ip: Some("0.0.0.0".into()),
                    host_port: Some("8080".into()),
                }]),
            ),
            (
                "53/udp".to_owned(),
                Some(vec![bollard::models::PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(String::new()),
                }]),
            ),
            ("9000/tcp".to_owned(), None),
        ]);
        assert_eq!(
            ports_from_map(Some(&map)),
            vec![
                PortBinding {
                    host_ip: String::new(),
                    host_port: Some(8080),
                    container_port: 80,
                    protocol: Protocol::Tcp
                },
                PortBinding {
                    host_ip: "127.0.0.1".into(),
                    host_port: None,
                    container_port: 53,
                    protocol: Protocol::Udp
                },
            ]
        );
    }

    #[test]
    fn healthcheck_round_trips_through_nanoseconds() {
        let hc = Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            interval_ms: 1500,
            timeout_ms: 0,
            start_period_ms: 10,
            retries: 3,
        };
        let engine = healthcheck_to(&hc);
        assert_eq!(engine.interval, Some(1_500_000_000));
        assert_eq!(engine.timeout, None);
        assert_eq!(healthcheck_from(&engine), hc);
    }

    #[test]
    fn lower_first_keeps_acronyms() {
        assert_eq!(lower_first("No such image"), "no such image");
        assert_eq!(lower_first("OCI runtime"), "OCI runtime");
    }
}
