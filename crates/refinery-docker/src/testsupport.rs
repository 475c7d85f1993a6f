//! Test support against the real engine (feature `testing`): a busybox test image built from an
//! in-memory context, a [`TestRun`] guard that owns and cleans up everything a test creates, and
//! [`crash`] to kill a container the way a real crash does.
//!
//! Tests run in parallel: everything here touches only what carries the run's label or name.

pub mod engines;
mod registry;
mod sim_engine;
mod token_server;

pub use registry::{Pushed, TestRegistry, docker_auth_field, write_docker_login};
pub use token_server::{TOKEN_ISSUER, TOKEN_SERVICE, TokenCounts};

pub use sim_engine::{SIM_API_VERSION, SIM_ENGINE_VERSION, SimEngine};

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bollard::query_parameters::{
    BuildImageOptions, BuilderVersion, ListContainersOptions, ListVolumesOptions,
    RemoveContainerOptions, RemoveImageOptions, RemoveVolumeOptions, TagImageOptions,
};
use futures_util::StreamExt;
use refinery_core::runtime::RuntimeResult;
use refinery_core::{
    Bloodline, ContainerSpec, CreateRequest, LabelSelector, RestartPolicy, RuntimeError,
};

use crate::DockerRuntime;
use crate::convert::{self, container_what, image_what};

/// Where Debian's `busybox-static` puts its binary.
pub const BUSYBOX_PATH: &str = "/usr/bin/busybox";
/// Repository of the test images (`refinery-test-busybox:<tag>`).
pub const TEST_IMAGE_REPO: &str = "refinery-test-busybox";
/// Label on every test image; its value is the tag the image was built for.
pub const TEST_IMAGE_LABEL: &str = "io.refinery.test-image";
/// Label holding a hash of the test image's content, so an unchanged image is not rebuilt.
pub const TEST_IMAGE_CONTENT_LABEL: &str = "io.refinery.test-image.content";
/// Label every container of a [`TestRun`] carries; its value is the run id.
pub const RUN_LABEL: &str = "io.refinery.test";
/// The test image's default command: a shell that exits at once on SIGTERM.
pub const DEFAULT_CMD: [&str; 3] = [
    "sh",
    "-c",
    "trap 'exit 0' TERM; while true; do sleep 1 & wait $!; done",
];
/// `PATH` the test image sets.
pub const IMAGE_PATH: &str = "/bin:/usr/bin";

const APPLETS: &[&str] = &[
    "sh", "ash", "sleep", "httpd", "wget", "echo", "cat", "true", "false", "kill", "ls", "env",
    "ps", "nc", "touch", "mkdir", "rm", "test", "[", "grep", "id", "hostname", "date", "printf",
    "head", "tail", "wc", "pwd", "ln", "cp", "mv", "chmod", "sed", "awk", "timeout", "uname",
    "whoami", "yes", "seq", "sync", "stat",
];

/// Builds are serialized within a process so parallel tests asking for the same tag share one.
static BUILD_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn other(action: impl Into<String>, message: impl Into<String>) -> RuntimeError {
    RuntimeError::Other {
        action: action.into(),
        message: message.into(),
    }
}

fn dockerfile(tag: &str, content: &str) -> String {
    let cmd = DEFAULT_CMD
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "FROM scratch\n\
         COPY rootfs/ /\n\
         ENV PATH={IMAGE_PATH}\n\
         LABEL {TEST_IMAGE_LABEL}={tag:?} {TEST_IMAGE_CONTENT_LABEL}={content:?}\n\
         CMD [{cmd}]\n"
    )
}

fn content_hash(busybox: &[u8]) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    busybox.hash(&mut h);
    dockerfile("", "").hash(&mut h);
    APPLETS.hash(&mut h);
    format!("{:016x}", h.finish())
}

fn context_tar(dockerfile: &str, busybox: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut file = |path: &str, mode: u32, data: &[u8]| -> std::io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        tar.append_data(&mut header, path, data)
    };
    file("Dockerfile", 0o644, dockerfile.as_bytes())?;
    file("rootfs/usr/bin/busybox", 0o755, busybox)?;
    let mut dir = |path: &str, mode: u32| -> std::io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_mode(mode);
        header.set_entry_type(tar::EntryType::Directory);
        header.set_cksum();
        tar.append_data(&mut header, path, std::io::empty())
    };
    dir("rootfs/tmp/", 0o1777)?;
    dir("rootfs/bin/", 0o755)?;
    for applet in APPLETS {
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_mode(0o777);
        header.set_entry_type(tar::EntryType::Symlink);
        tar.append_link(&mut header, format!("rootfs/bin/{applet}"), BUSYBOX_PATH)?;
    }
    tar.into_inner()
}

/// The id of the local image `reference` when it carries `content` in its content label.
async fn existing_image(
    rt: &DockerRuntime,
    reference: &str,
    content: &str,
) -> RuntimeResult<Option<String>> {
    let docker = rt.docker().await?;
    match docker.inspect_image(reference).await {
        Ok(inspect) => {
            let same = inspect
                .config
                .as_ref()
                .and_then(|c| c.labels.as_ref())
                .and_then(|l| l.get(TEST_IMAGE_CONTENT_LABEL))
                .is_some_and(|c| c == content);
            Ok(if same { inspect.id } else { None })
        }
        Err(e) if convert::is_not_found(&e) => Ok(None),
        Err(e) => Err(convert::error(e, &rt.op("inspect", image_what(reference)))),
    }
}

/// Builds (or finds) the busybox test image `tag` (`refinery-test-busybox:x`, or any reference)
/// from `FROM scratch` + [`BUSYBOX_PATH`], with the classic builder and no pull; returns its id.
/// The tag is part of the image's labels, so distinct tags give distinct image ids, and building
/// the same tag again is a lookup.
pub async fn build_busybox_image(rt: &DockerRuntime, tag: &str) -> RuntimeResult<String> {
    build_busybox_image_labelled(rt, tag, &BTreeMap::new()).await
}

/// [`build_busybox_image`] with extra image labels (such as a run label, so a selector finds
/// the image). An existing image with the same content at `tag` is reused as it is.
pub async fn build_busybox_image_labelled(
    rt: &DockerRuntime,
    tag: &str,
    labels: &BTreeMap<String, String>,
) -> RuntimeResult<String> {
    build_busybox_image_with(rt, tag, labels, "").await
}

/// The test image whose healthcheck always fails (every second, one retry): a container of it
/// runs but turns `unhealthy` within about two seconds.
pub async fn build_unhealthy_busybox_image(rt: &DockerRuntime, tag: &str) -> RuntimeResult<String> {
    build_busybox_image_with(
        rt,
        tag,
        &BTreeMap::new(),
        "HEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD [\"false\"]\n",
    )
    .await
}

/// [`build_busybox_image_labelled`] with `extra` Dockerfile lines after the standard ones.
async fn build_busybox_image_with(
    rt: &DockerRuntime,
    tag: &str,
    labels: &BTreeMap<String, String>,
    extra: &str,
) -> RuntimeResult<String> {
    let busybox = tokio::fs::read(BUSYBOX_PATH).await.map_err(|e| {
        other(
            format!("read `{BUSYBOX_PATH}`"),
            format!("{e} (install Debian's `busybox-static`)"),
        )
    })?;
    let mut content = content_hash(&busybox);
    if !extra.is_empty() {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (content.as_str(), extra).hash(&mut h);
        content = format!("{:016x}", h.finish());
    }
    if let Some(id) = existing_image(rt, tag, &content).await? {
        return Ok(id);
    }
    let _guard = BUILD_LOCK.lock().await;
    if let Some(id) = existing_image(rt, tag, &content).await? {
        return Ok(id);
    }

    let action = format!("build image `{tag}`");
    let tar = context_tar(&format!("{}{extra}", dockerfile(tag, &content)), &busybox)
        .map_err(|e| other(action.clone(), format!("failed to pack the context: {e}")))?;
    let docker = rt.docker().await?;
    let options = BuildImageOptions {
        t: Some(tag.to_owned()),
        rm: true,
        forcerm: true,
        version: BuilderVersion::BuilderV1,
        labels: (!labels.is_empty()).then(|| labels.clone().into_iter().collect()),
        ..Default::default()
    };
    let op = rt.op("build", image_what(tag));
    let mut output = docker.build_image(options, None, Some(bollard::body_full(tar.into())));
    while let Some(item) = output.next().await {
        let info = item.map_err(|e| convert::pull_failure(e, &op))?;
        if let Some(message) = info.error_detail.and_then(|d| d.message) {
            return Err(other(action, message));
        }
    }
    existing_image(rt, tag, &content)
        .await?
        .ok_or_else(|| other(action, "the build finished but the tag is missing"))
}

/// Tags `source` (a reference or id) as `new_tag` (`repo:tag`).
pub async fn tag_image(rt: &DockerRuntime, source: &str, new_tag: &str) -> RuntimeResult<()> {
    let (repo, tag) = new_tag
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .unwrap_or((new_tag, "latest"));
    let options = TagImageOptions {
        repo: Some(repo.to_owned()),
        tag: Some(tag.to_owned()),
    };
    rt.docker()
        .await?
        .tag_image(source, Some(options))
        .await
        .map_err(|e| convert::error(e, &rt.op("tag", image_what(source))))
}

/// Removes an image tag (the image too when nothing else holds it); a missing one is fine.
pub async fn remove_image(rt: &DockerRuntime, reference: &str) -> RuntimeResult<()> {
    let options = RemoveImageOptions {
        force: true,
        ..Default::default()
    };
    match rt
        .docker()
        .await?
        .remove_image(reference, Some(options), None)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if convert::is_not_found(&e) => Ok(()),
        Err(e) => Err(convert::error(e, &rt.op("remove", image_what(reference)))),
    }
}

/// Pauses a container (the runtime port has no pause: Refinery never pauses anything).
pub async fn pause(rt: &DockerRuntime, id: &str) -> RuntimeResult<()> {
    rt.pause(id).await
}

/// The host pid of a container's main process (`State.Pid`; 0 when it is not running).
pub async fn container_pid(rt: &DockerRuntime, id: &str) -> RuntimeResult<i64> {
    let c = rt
        .docker()
        .await?
        .inspect_container(id, None)
        .await
        .map_err(|e| convert::error(e, &rt.op("inspect", container_what(id))))?;
    Ok(c.state.and_then(|s| s.pid).unwrap_or(0))
}

/// Simulates a real crash: SIGKILL to a host pid (a kill through the API would count as a
/// manual stop and defeat the restart policy). Refuses pids below 2.
pub fn crash(pid: i64) -> std::io::Result<()> {
    if pid < 2 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("refusing to signal pid {pid}"),
        ));
    }
    let status = std::process::Command::new("kill")
        .arg("-9")
        .arg(pid.to_string())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "`kill -9 {pid}` failed: {status}"
        )))
    }
}

/// Crashes a running container: [`crash`] on its `State.Pid`.
pub async fn crash_container(rt: &DockerRuntime, id: &str) -> RuntimeResult<()> {
    let pid = container_pid(rt, id).await?;
    crash(pid).map_err(|e| other(format!("crash {}", container_what(id)), e.to_string()))
}

/// A minimal spec: `image` with everything else empty or default.
#[must_use]
pub fn minimal_spec(name: &str, image: &str) -> ContainerSpec {
    ContainerSpec {
        name: name.to_owned(),
        node: "test".to_owned(),
        image: image.to_owned(),
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

static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_suffix() -> String {
    new_run_id()
}

fn new_run_id() -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::process::id().hash(&mut h);
    RUN_COUNTER.fetch_add(1, Ordering::Relaxed).hash(&mut h);
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
        .hash(&mut h);
    std::thread::current().id().hash(&mut h);
    format!("{:010x}", h.finish() & 0xff_ffff_ffff)
}

/// One test's footprint on the engine. Everything it names or labels is removed on drop, even
/// when the test panicked: containers carrying its label, images it tagged, volumes and temp
/// directories named after it, networks named after it.
#[derive(Debug)]
pub struct TestRun {
    id: String,
    endpoint: String,
    images: Mutex<Vec<String>>,
    volumes: Mutex<Vec<String>>,
}

impl TestRun {
    /// A new run on `rt`'s engine.
    #[must_use]
    pub fn new(rt: &DockerRuntime) -> TestRun {
        TestRun {
            id: new_run_id(),
            endpoint: rt.endpoint().to_owned(),
            images: Mutex::new(Vec::new()),
            volumes: Mutex::new(Vec::new()),
        }
    }

    /// The run id (10 hex digits).
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `(io.refinery.test, <id>)`.
    #[must_use]
    pub fn label(&self) -> (String, String) {
        (RUN_LABEL.to_owned(), self.id.clone())
    }

    /// The run label as a map, to extend with a test's own labels.
    #[must_use]
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([self.label()])
    }

    /// Selects exactly this run's containers.
    #[must_use]
    pub fn selector(&self) -> LabelSelector {
        LabelSelector {
            key: RUN_LABEL.to_owned(),
            value: Some(self.id.clone()),
        }
    }

    /// A unique name: `rt-<id>-<suffix>`.
    #[must_use]
    pub fn name(&self, suffix: &str) -> String {
        format!("rt-{}-{suffix}", self.id)
    }

    /// A create request for `spec` under `name(suffix)`, labelled with the spec's labels and the
    /// run label.
    #[must_use]
    pub fn request(&self, suffix: &str, mut spec: ContainerSpec) -> CreateRequest {
        let name = self.name(suffix);
        spec.name.clone_from(&name);
        let mut labels = spec.labels.clone();
        labels.extend(self.labels());
        CreateRequest { name, spec, labels }
    }

    /// A directory under the system temp dir named after the run, created, removed on drop.
    pub fn temp_dir(&self, suffix: &str) -> std::io::Result<PathBuf> {
        let dir = std::env::temp_dir().join(self.name(suffix));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Records an image reference to remove on drop.
    pub fn track_image(&self, reference: &str) {
        if let Ok(mut images) = self.images.lock() {
            images.push(reference.to_owned());
        }
    }

    /// Builds this run's own busybox image (`refinery-test-busybox:<id>-<suffix>`, a distinct
    /// image id), removed on drop; returns (tag, id).
    pub async fn own_image(
        &self,
        rt: &DockerRuntime,
        suffix: &str,
    ) -> RuntimeResult<(String, String)> {
        let tag = self.own_tag(suffix);
        let id = build_busybox_image(rt, &tag).await?;
        Ok((tag, id))
    }

    /// `refinery-test-busybox:<id>-<suffix>`, tracked for removal on drop.
    fn own_tag(&self, suffix: &str) -> String {
        let tag = format!("{TEST_IMAGE_REPO}:{}-{suffix}", self.id);
        self.track_image(&tag);
        tag
    }

    /// [`TestRun::own_image`] whose healthcheck always fails ([`build_unhealthy_busybox_image`]).
    pub async fn own_unhealthy_image(
        &self,
        rt: &DockerRuntime,
        suffix: &str,
    ) -> RuntimeResult<(String, String)> {
        let tag = self.own_tag(suffix);
        let id = build_unhealthy_busybox_image(rt, &tag).await?;
        Ok((tag, id))
    }

    /// Records a volume name to remove on drop (names starting with `rt-<id>-` always are).
    pub fn track_volume(&self, name: &str) {
        if let Ok(mut volumes) = self.volumes.lock() {
            volumes.push(name.to_owned());
        }
    }

    /// Creates volume `name` carrying the run label and `labels`, removed on drop.
    pub async fn create_volume(
        &self,
        rt: &DockerRuntime,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> RuntimeResult<()> {
        self.track_volume(name);
        let mut all = labels.clone();
        all.extend(self.labels());
        let body = bollard::models::VolumeCreateRequest {
            name: Some(name.to_owned()),
            labels: Some(all.into_iter().collect()),
            ..Default::default()
        };
        rt.docker()
            .await?
            .create_volume(body)
            .await
            .map(|_| ())
            .map_err(|e| convert::error(e, &rt.op("create", format!("volume `{name}`"))))
    }

    /// Builds a busybox image tagged `reference` (any name, such as `mcp/<id>-helper:1`)
    /// carrying the run label, so this run's selector sees it; removed on drop. Returns its id.
    pub async fn labelled_image(
        &self,
        rt: &DockerRuntime,
        reference: &str,
    ) -> RuntimeResult<String> {
        self.track_image(reference);
        build_busybox_image_labelled(rt, reference, &self.labels()).await
    }

    /// Tags `source` as `new_tag` too, removed on drop.
    pub async fn tag(&self, rt: &DockerRuntime, source: &str, new_tag: &str) -> RuntimeResult<()> {
        self.track_image(new_tag);
        tag_image(rt, source, new_tag).await
    }

    fn cleanup(&self) {
        let endpoint = self.endpoint.clone();
        let id = self.id.clone();
        let prefix = self.name("");
        let images = self
            .images
            .lock()
            .map(|i| i.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone());
        let volumes = self
            .volumes
            .lock()
            .map(|v| v.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone());
        // A thread of its own, with its own runtime: drop may run inside a test's runtime, or
        // during a panic's unwinding.
        let handle = std::thread::Builder::new()
            .name(format!("cleanup-{id}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("test run `{id}`: failed to start a cleanup runtime: {e}");
                        return;
                    }
                };
                runtime.block_on(cleanup_run(&endpoint, &id, &prefix, &images, &volumes));
            });
        match handle {
            Ok(h) => {
                let _ = h.join();
            }
            Err(e) => eprintln!("test run `{}`: failed to start cleanup: {e}", self.id),
        }
        if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&self.name(""))
                {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    }
}

async fn cleanup_run(
    endpoint: &str,
    id: &str,
    prefix: &str,
    images: &[String],
    tracked_volumes: &[String],
) {
    let rt = match DockerRuntime::connect(endpoint) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("test run `{id}`: {e}");
            return;
        }
    };
    let docker = match rt.docker().await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("test run `{id}`: {e}");
            return;
        }
    };
    let list = ListContainersOptions {
        all: true,
        filters: Some(
            [("label".to_owned(), vec![format!("{RUN_LABEL}={id}")])]
                .into_iter()
                .collect(),
        ),
        ..Default::default()
    };
    match docker.list_containers(Some(list)).await {
        Ok(containers) => {
            for c in containers.into_iter().filter_map(|c| c.id) {
                let options = RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                };
                if let Err(e) = docker.remove_container(&c, Some(options)).await
                    && !convert::is_not_found(&e)
                {
                    eprintln!("test run `{id}`: failed to remove container `{c}`: {e}");
                }
            }
        }
        Err(e) => eprintln!("test run `{id}`: failed to list containers: {e}"),
    }
    for image in images {
        if let Err(e) = remove_image(&rt, image).await {
            eprintln!("test run `{id}`: {e}");
        }
    }
    // Networks named after the run (compose stacks `rt-<id>-x` make `rt-<id>-x_default`), after
    // the containers that used them are gone.
    let networks = bollard::query_parameters::ListNetworksOptions {
        filters: Some(
            [("name".to_owned(), vec![prefix.to_owned()])]
                .into_iter()
                .collect(),
        ),
    };
    if let Ok(list) = docker.list_networks(Some(networks)).await {
        for n in list {
            let Some(name) = n.name else { continue };
            if name.starts_with(prefix)
                && let Err(e) = docker.remove_network(&name).await
                && !convert::is_not_found(&e)
            {
                eprintln!("test run `{id}`: failed to remove network `{name}`: {e}");
            }
        }
    }
    for name in tracked_volumes {
        let options = RemoveVolumeOptions { force: true };
        if let Err(e) = docker.remove_volume(name, Some(options)).await
            && !convert::is_not_found(&e)
        {
            eprintln!("test run `{id}`: failed to remove volume `{name}`: {e}");
        }
    }
    let volumes = ListVolumesOptions {
        filters: Some(
            [("name".to_owned(), vec![prefix.to_owned()])]
                .into_iter()
                .collect(),
        ),
    };
    if let Ok(list) = docker.list_volumes(Some(volumes)).await {
        for v in list.volumes.into_iter().flatten() {
            if v.name.starts_with(prefix) {
                let options = RemoveVolumeOptions { force: true };
                if let Err(e) = docker.remove_volume(&v.name, Some(options)).await {
                    eprintln!("test run `{id}`: failed to remove volume `{}`: {e}", v.name);
                }
            }
        }
    }
}

impl Drop for TestRun {
    fn drop(&mut self) {
        self.cleanup();
    }
}
