//! The writing half of a pass: carry out a plan's steps on one node's engine.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use refinery_core::labels::{self, ownership_labels};
use refinery_core::port_fallback::{self, Substitution};
use refinery_core::{
    ContainerRuntime, ContainerSpec, CreateRequest, DockerKind, DriftKind, Manifest, Observed,
    Outcome, PullProgress, ResourceId, RuntimeError, Step, StepKind, UpdateOrder,
};
use serde::Serialize;

/// Progress reported while a plan runs (the CLI turns these into bars and lines).
#[derive(Debug, Clone)]
pub enum ApplyEvent {
    Pulling {
        image: String,
        progress: PullProgress,
    },
    Started {
        id: ResourceId,
        kind: StepKind,
    },
    Finished(StepResult),
}

/// What happened to one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepResult {
    pub id: ResourceId,
    pub step: StepKind,
    pub outcome: Outcome,
    /// Why it failed, or what else is worth saying.
    pub message: Option<String>,
    /// The engine id of the container now in place, if one was created.
    pub container_id: Option<String>,
    /// The registry digest (`name@sha256:…`) of the image that container was created from, when
    /// its image came from a registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
}

/// How many steps run at once on one node.
const CONCURRENCY: usize = 4;

/// The name an old container carries while its replacement starts.
#[must_use]
pub fn recreate_temp_name(name: &str) -> String {
    format!("{name}.refinery-old")
}

/// The name a start-first replacement carries until the old container is gone.
#[must_use]
pub fn start_first_temp_name(name: &str) -> String {
    format!("{name}.refinery-new")
}

/// How long a start-first replacement without a healthcheck must stay running (and not restart)
/// before it counts as up.
pub const START_FIRST_SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

/// How often a start-first replacement's state is read while Refinery waits for it.
const START_FIRST_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Carries out every writing step of `steps`; the others become skipped/deferred/unchanged
/// outcomes. Steps on different containers run concurrently (bounded); results come back in plan
/// order. A failed step does not stop the others.
pub async fn apply_plan<R: ContainerRuntime>(
    rt: &R,
    manifest: &Manifest,
    steps: &[Step],
    observed: &Observed,
    revision: &str,
    on_event: &(dyn Fn(ApplyEvent) + Send + Sync),
) -> Vec<StepResult> {
    let mut build_failures = BTreeMap::new();
    if steps.iter().any(|s| s.kind.writes()) {
        for problem in crate::stack_order::prepare_stack_resources(rt, manifest, steps).await {
            tracing::warn!("{problem}");
        }
        build_failures = crate::stack_order::prepare_builds(rt, manifest, steps, observed).await;
    }
    // Containers whose create failed in this pass, so their dependants fail at once instead of
    // waiting for them.
    let failed_here: std::sync::Mutex<BTreeMap<String, String>> = std::sync::Mutex::default();
    let failed_here = &failed_here;
    let failures = &PassFailures {
        builds: &build_failures,
        creates: failed_here,
    };
    // Dependencies first (compose `depends_on`); results still come back in plan order.
    let order = crate::stack_order::dependency_order(manifest, steps);
    let futures = order
        .iter()
        .map(|&i| (i, &steps[i]))
        .map(|(i, step)| async move {
            let result = if step.kind.writes() {
                on_event(ApplyEvent::Started {
                    id: step.id.clone(),
                    kind: step.kind,
                });
                let r = run_step(rt, manifest, step, observed, revision, failures, on_event).await;
                if r.outcome == Outcome::Failed
                    && let Some(spec) = spec_of(manifest, step)
                    && let Ok(mut m) = failed_here.lock()
                {
                    m.insert(spec.name.clone(), r.message.clone().unwrap_or_default());
                }
                r
            } else {
                StepResult {
                    id: step.id.clone(),
                    step: step.kind,
                    outcome: match step.kind {
                        StepKind::Defer => Outcome::Deferred,
                        StepKind::Ignore => Outcome::Unchanged,
                        _ => Outcome::Skipped,
                    },
                    message: Some(step.reason.clone()),
                    container_id: step.container_id.clone(),
                    image_digest: None,
                }
            };
            on_event(ApplyEvent::Finished(result.clone()));
            (i, result)
        });
    let mut results: Vec<(usize, StepResult)> = futures_util::stream::iter(futures)
        .buffered(CONCURRENCY)
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

fn failed(step: &Step, message: String) -> StepResult {
    StepResult {
        id: step.id.clone(),
        step: step.kind,
        outcome: Outcome::Failed,
        message: Some(message),
        container_id: step.container_id.clone(),
        image_digest: None,
    }
}

/// What the steps of one pass learn from each other's failures.
struct PassFailures<'a> {
    /// Images whose build failed, with why.
    builds: &'a BTreeMap<String, String>,
    /// Containers whose create failed, with why.
    creates: &'a std::sync::Mutex<BTreeMap<String, String>>,
}

async fn run_step<R: ContainerRuntime>(
    rt: &R,
    manifest: &Manifest,
    step: &Step,
    observed: &Observed,
    revision: &str,
    failures: &PassFailures<'_>,
    on_event: &(dyn Fn(ApplyEvent) + Send + Sync),
) -> StepResult {
    let build_failures = failures.builds;
    let failed_dep = |name: &str| {
        failures
            .creates
            .lock()
            .ok()
            .and_then(|m| m.get(name).cloned())
    };
    let done = |outcome: Outcome, container_id: Option<String>| StepResult {
        id: step.id.clone(),
        step: step.kind,
        outcome,
        message: None,
        container_id,
        image_digest: None,
    };
    if refinery_core::compose::is_network_or_volume(&step.id) {
        return create_stack_resource(rt, manifest, step).await;
    }
    let existing = step.container_id.clone();
    let simple = |r: Result<(), RuntimeError>, outcome: Outcome| match r {
        Ok(()) => done(outcome, existing.clone()),
        Err(e) => failed(step, e.to_string()),
    };
    match step.kind {
        StepKind::Remove => {
            let Some(id) = existing.as_deref() else {
                return done(Outcome::Removed, None);
            };
            simple(rt.remove(id).await, Outcome::Removed)
        }
        StepKind::Restart | StepKind::Start | StepKind::Unpause => {
            let Some(id) = existing.as_deref() else {
                return failed(step, "failed to find the container to restart".into());
            };
            // Content-tracked files are rewritten in place, in the copy the container mounts.
            // Only into a copy Refinery made (its labels say so), never into a path it does not own.
            if let Some(spec) = spec_of(manifest, step)
                && let Some(o) = observed.containers.iter().find(|c| c.id == id)
            {
                let writes = content_writes(spec, &o.mounts);
                let ours = o.labels.contains_key(refinery_core::content::LABEL_DIGEST);
                if !writes.is_empty() && !ours && step.drifts.contains(&DriftKind::Config) {
                    return failed(
                        step,
                        "the container mounts no copy made by Refinery, so its files cannot be rewritten in place; recreate it".into(),
                    );
                }
                if ours && let Err(e) = rt.write_content(&writes).await {
                    return failed(step, e.to_string());
                }
            }
            let r = match step.kind {
                StepKind::Unpause => rt.unpause(id).await,
                StepKind::Start => rt.start(id).await,
                _ => rt.restart(id).await,
            };
            simple(r, Outcome::Restarted)
        }
        StepKind::Create | StepKind::Recreate | StepKind::Rollback => {
            let Some(spec) = spec_of(manifest, step) else {
                return failed(step, "failed to find the declared spec".into());
            };
            // `image_policy`: the version tag this create uses (the plan's target, or the tag a
            // recreate for another reason keeps).
            let running = existing
                .as_deref()
                .and_then(|id| observed.containers.iter().find(|c| c.id == id));
            let versioned;
            let spec = match refinery_core::image_policy::image_to_create(
                spec,
                &step.changes,
                running,
                None,
            ) {
                Ok(None) => spec,
                Ok(Some(image)) => {
                    versioned = ContainerSpec {
                        image,
                        ..spec.clone()
                    };
                    &versioned
                }
                Err(e) => return failed(step, e),
            };
            // An `image_update` pulls the tag's new digest even though the tag is local.
            let update = step.drifts.contains(&DriftKind::ImageUpdate);
            // A rejected image update is put back on the image its tag was just pointed back at
            // (kept locally): a pull, even under `pull_policy: always`, would fetch the rejected
            // digest again.
            let put_back = step.kind == StepKind::Rollback
                && step
                    .changes
                    .iter()
                    .any(|c| c.field == refinery_core::image_update::DIGEST_FIELD);
            if !put_back
                && let Err(e) =
                    ensure_image(rt, spec, observed, update, build_failures, on_event).await
            {
                return failed(step, e);
            }
            if let Err(e) = rt.write_content(&content_writes(spec, &spec.mounts)).await {
                return failed(step, e.to_string());
            }
            if let Err(e) = crate::stack_order::wait_for_dependencies(rt, spec, &failed_dep).await {
                return failed(step, e);
            }
            let labels = labels_for(manifest, spec, revision);
            let result = match existing
                .as_deref()
                .filter(|_| step.kind != StepKind::Create)
            {
                None => create_and_start(rt, spec, &spec.name, labels).await,
                Some(old) => {
                    let deadline =
                        std::time::Duration::from_secs(manifest.config.health_deadline_secs.max(1));
                    let start_first =
                        spec.options.extra().update_order == Some(UpdateOrder::StartFirst);
                    match start_first.then(|| start_first_blocker(spec)) {
                        Some(None) => {
                            replace_start_first(rt, spec, labels, old, observed, deadline).await
                        }
                        Some(Some(why)) => {
                            tracing::warn!(container = %spec.name, "`update_order: start-first` cannot apply: {why}; replacing stop-first");
                            replace(rt, spec, labels, old, observed).await
                        }
                        None => replace(rt, spec, labels, old, observed).await,
                    }
                }
            };
            match result {
                Ok(made) => StepResult {
                    // What the ledger records: the registry digest the new container runs.
                    image_digest: rt.inspect(&made.id).await.ok().and_then(|o| o.repo_digest),
                    message: port_fallback::degraded_message(&made.fallbacks),
                    ..done(
                        match step.kind {
                            StepKind::Create => Outcome::Created,
                            StepKind::Rollback => Outcome::RolledBack,
                            _ => Outcome::Recreated,
                        },
                        Some(made.id),
                    )
                },
                Err(e) => failed(step, e),
            }
        }
        StepKind::Alert | StepKind::Defer | StepKind::Protected | StepKind::Ignore => {
            done(Outcome::Skipped, existing)
        }
    }
}

/// A stack's network or volume step: only a missing one is acted on (created); one that differs
/// is reported and never recreated, and nothing here removes a volume.
async fn create_stack_resource<R: ContainerRuntime>(
    rt: &R,
    manifest: &Manifest,
    step: &Step,
) -> StepResult {
    let outcome = |outcome: Outcome, message: Option<String>| StepResult {
        id: step.id.clone(),
        step: step.kind,
        outcome,
        message,
        container_id: None,
        image_digest: None,
    };
    if step.kind != StepKind::Create {
        return outcome(Outcome::Skipped, Some(step.reason.clone()));
    }
    let ResourceId::Docker { node, kind, name } = &step.id else {
        return failed(step, "failed to find the declared network or volume".into());
    };
    let network = manifest
        .stack_networks
        .iter()
        .find(|n| *kind == DockerKind::Network && &n.node == node && &n.name == name);
    let volume = manifest
        .stack_volumes
        .iter()
        .find(|v| *kind == DockerKind::Volume && &v.node == node && &v.name == name);
    let result = match (network, volume) {
        (Some(net), _) => rt.ensure_network(net).await,
        (None, Some(vol)) => rt.ensure_volume(vol).await,
        (None, None) => {
            return failed(step, "failed to find the declared network or volume".into());
        }
    };
    match result {
        Ok(_) => outcome(Outcome::Created, None),
        Err(e) => failed(step, e.to_string()),
    }
}

fn spec_of<'m>(manifest: &'m Manifest, step: &Step) -> Option<&'m ContainerSpec> {
    manifest
        .containers
        .iter()
        .find(|c| c.node == step.id.node() && c.name == step.id.name())
}

/// The host path each content-tracked mount of `spec` is written to: the bind source `mounts`
/// (the spec's own, or a running container's) gives its target.
fn content_writes(
    spec: &ContainerSpec,
    mounts: &[refinery_core::Mount],
) -> Vec<(String, refinery_core::ContentMount)> {
    // Unresolved mounts (no files read from the commit) still point into the checkout: skip.
    spec.content
        .iter()
        .filter(|c| !c.files.is_empty() && !c.is_env_file())
        .filter_map(|c| {
            mounts
                .iter()
                .find(|m| m.target == c.target && m.kind == refinery_core::MountKind::Bind)
                .map(|m| (m.source.clone(), c.clone()))
        })
        .collect()
}

fn labels_for(
    manifest: &Manifest,
    spec: &ContainerSpec,
    revision: &str,
) -> BTreeMap<String, String> {
    let mut labels = ownership_labels(spec, revision);
    if let Some(sel) = &manifest.config.selector {
        labels.extend([sel.label()]);
    }
    labels
}

async fn ensure_image<R: ContainerRuntime>(
    rt: &R,
    spec: &ContainerSpec,
    observed: &Observed,
    update: bool,
    build_failures: &BTreeMap<String, String>,
    on_event: &(dyn Fn(ApplyEvent) + Send + Sync),
) -> Result<(), String> {
    // A service that builds its image never pulls it: the build ran before the steps.
    if spec.stack.as_ref().is_some_and(|m| m.build.is_some()) {
        return match build_failures.get(&spec.image) {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        };
    }
    // `pull_policy`: `always` pulls even a local image, `never` never pulls; the rest pull only
    // a missing one. `daily`, `weekly` and `every_…` are refreshed before the steps run (by the
    // daemon's pass when their period has elapsed, by `apply` before it creates or replaces a
    // container: see `refinery_controller::pull_refresh`), so here they too pull only a missing
    // image, and a registry that fails the refresh leaves the local image in use.
    let policy = spec.options.extra().pull_policy;
    let present = observed.image(&spec.image).is_some();
    match policy {
        _ if update => {}
        Some(refinery_core::PullPolicy::Always) => {}
        Some(refinery_core::PullPolicy::Never) if !present => {
            return Err(format!(
                "image `{}` is not present locally, and `pull_policy: never` forbids pulling it",
                spec.image
            ));
        }
        _ if present => return Ok(()),
        _ => {}
    }
    let image = spec.image.clone();
    let report = |progress: PullProgress| {
        on_event(ApplyEvent::Pulling {
            image: image.clone(),
            progress,
        });
    };
    rt.pull(&spec.image, &report).await.map_err(|e| {
        format!(
            "image `{}` is not present locally and could not be pulled: {e}",
            spec.image
        )
    })
}

/// A container made from a spec: its engine id and the declared fallback host ports it had to
/// use (empty when it runs exactly as declared).
struct Made {
    id: String,
    fallbacks: Vec<Substitution>,
}

/// Creates and starts `spec`. When a declared host port is taken, it tries again with that port's
/// `fallback_ports` in order, and labels the container with the substitution
/// ([`labels::PORT_FALLBACK`]).
async fn create_and_start<R: ContainerRuntime>(
    rt: &R,
    spec: &ContainerSpec,
    name: &str,
    labels: BTreeMap<String, String>,
) -> Result<Made, String> {
    let mut subs: Vec<Substitution> = Vec::new();
    let mut held: Vec<u16> = Vec::new();
    loop {
        let mut req = CreateRequest {
            name: name.to_owned(),
            spec: port_fallback::with_fallbacks(spec, &subs),
            labels: labels.clone(),
        };
        if !subs.is_empty() {
            req.labels.insert(
                labels::PORT_FALLBACK.to_owned(),
                port_fallback::format_label(&subs),
            );
        }
        if !held.is_empty() {
            let list: Vec<String> = held.iter().map(ToString::to_string).collect();
            req.labels
                .insert(labels::PORT_FALLBACK_HELD.to_owned(), list.join(","));
        }
        match create_and_start_once(rt, &req).await {
            Ok(id) => {
                return Ok(Made {
                    id,
                    fallbacks: subs,
                });
            }
            Err(RuntimeError::PortTaken { port }) => {
                let Some(next) = port_fallback::next_substitution(spec, &subs, port) else {
                    return Err(port_taken_message(spec, port, &subs));
                };
                tracing::info!(container = %spec.name, port, "host port taken, trying a fallback");
                if spec.fallback_ports.contains_key(&port) && held_by_container(rt, port).await {
                    held.push(port);
                }
                subs = next;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// One attempt: create, start, and never leave a half-made container behind.
async fn create_and_start_once<R: ContainerRuntime>(
    rt: &R,
    req: &CreateRequest,
) -> Result<String, RuntimeError> {
    let id = rt.create(req).await?;
    if let Err(e) = rt.start(&id).await {
        let _ = rt.remove(&id).await;
        return Err(e);
    }
    Ok(id)
}

/// Whether a container on this engine (any container, not only the selected ones) publishes
/// host port `port`.
async fn held_by_container<R: ContainerRuntime>(rt: &R, port: u16) -> bool {
    rt.observe(None)
        .await
        .is_ok_and(|all| port_fallback::published_host_ports(&all.containers).contains_key(&port))
}

/// `failed to bind host port 8085: it is already taken`, naming the fallbacks tried too.
fn port_taken_message(spec: &ContainerSpec, port: u16, subs: &[Substitution]) -> String {
    let base = RuntimeError::PortTaken { port }.to_string();
    let primary = subs
        .iter()
        .find(|s| s.fallback == port)
        .map_or(port, |s| s.primary);
    match spec.fallback_ports.get(&primary) {
        Some(list) if !list.is_empty() => {
            let list: Vec<String> = list.iter().map(ToString::to_string).collect();
            format!(
                "{}, and so are its fallback ports {}",
                RuntimeError::PortTaken { port: primary },
                list.join(", ")
            )
        }
        _ => base,
    }
}

/// Replaces `old` by a new container from `spec`: stop and set the old one aside, create and start
/// the new one, then remove the old one. If the new one cannot start, it is removed and the old
/// one is put back as it was.
async fn replace<R: ContainerRuntime>(
    rt: &R,
    spec: &ContainerSpec,
    labels: BTreeMap<String, String>,
    old: &str,
    observed: &Observed,
) -> Result<Made, String> {
    let was_running = observed
        .containers
        .iter()
        .find(|c| c.id == old)
        .is_some_and(|c| c.state == refinery_core::ContainerState::Running);
    let aside = recreate_temp_name(&spec.name);
    // A leftover from an interrupted recreate would block the rename.
    if let Ok(stale) = rt.inspect(&aside).await {
        let _ = rt.remove(&stale.id).await;
    }
    rt.stop(old, 10).await.map_err(|e| e.to_string())?;
    if let Err(e) = rt.rename(old, &aside).await {
        if was_running {
            let _ = rt.start(old).await;
        }
        return Err(e.to_string());
    }
    match create_and_start(rt, spec, &spec.name, labels).await {
        Ok(made) => {
            if let Err(e) = rt.remove(old).await {
                tracing::warn!(container = old, error = %e, "failed to remove the replaced container");
            }
            Ok(made)
        }
        Err(e) => {
            let _ = rt.rename(old, &spec.name).await;
            if was_running {
                let _ = rt.start(old).await;
            }
            Err(format!("{e}; the previous container was put back"))
        }
    }
}

/// Why two copies of `spec` cannot run at once (a fixed host port, a fixed address on a
/// network), so a start-first replacement falls back to stop-first; `None` when they can.
fn start_first_blocker(spec: &ContainerSpec) -> Option<String> {
    if let Some(port) = spec.ports.iter().find_map(|p| p.host_port) {
        return Some(format!(
            "it publishes host port {port}, which two containers cannot hold at once"
        ));
    }
    if spec.options.network_mode.as_deref() == Some("host") {
        return Some(
            "it uses the host's network (`network_mode: host`), where two copies cannot listen on the same ports".into(),
        );
    }
    if let Some(n) =
        spec.options.networks.iter().find(|n| {
            n.ipv4_address.is_some() || n.ipv6_address.is_some() || n.mac_address.is_some()
        })
    {
        return Some(format!(
            "it asks for a fixed address on network `{}`, which two containers cannot hold at once",
            n.name
        ));
    }
    if spec.options.extra().mac_address.is_some() {
        return Some("it asks for a fixed MAC address".into());
    }
    None
}

/// Replaces `old` start-first. The new container is created as `NAME.refinery-new` and kept
/// off its declared networks while it starts, so none of its aliases resolves to it before it
/// is up: running and healthy (its healthcheck, else [`START_FIRST_SETTLE`] running). Then it
/// joins its networks with their aliases, the old container is taken off its networks, stopped
/// and removed, and the new one renamed `NAME`. A new container that is not up within
/// `deadline` is removed, and the old one keeps running untouched.
async fn replace_start_first<R: ContainerRuntime>(
    rt: &R,
    spec: &ContainerSpec,
    labels: BTreeMap<String, String>,
    old: &str,
    observed: &Observed,
    deadline: std::time::Duration,
) -> Result<Made, String> {
    let temp = start_first_temp_name(&spec.name);
    // A leftover from an interrupted start-first replacement would block the create.
    if let Ok(stale) = rt.inspect(&temp).await {
        let _ = rt.remove(&stale.id).await;
    }
    let req = CreateRequest {
        name: temp.clone(),
        spec: spec.clone(),
        labels,
    };
    let id = rt.create(&req).await.map_err(|e| e.to_string())?;
    let networks: Vec<&str> = match spec.options.network_mode {
        Some(_) => Vec::new(),
        None => spec
            .options
            .networks
            .iter()
            .map(|n| n.name.as_str())
            .collect(),
    };
    let started = async {
        for net in &networks {
            rt.disconnect(&id, net).await?;
        }
        rt.start(&id).await
    };
    if let Err(e) = started.await {
        let _ = rt.remove(&id).await;
        return Err(e.to_string());
    }
    let up = match wait_until_up(rt, &id, deadline).await {
        Ok(()) if networks.is_empty() => Ok(()),
        Ok(()) => rt
            .connect(&id, spec)
            .await
            .map_err(|e| format!("could not join its networks: {e}")),
        Err(why) => Err(why),
    };
    if let Err(why) = up {
        let _ = rt.remove(&id).await;
        return Err(format!(
            "the new container {why}; it was removed and the previous container keeps running (`update_order: start-first`)"
        ));
    }
    // Off its networks first, so no new request resolves to the old container, then stopped.
    let old_networks: Vec<String> = observed
        .containers
        .iter()
        .find(|c| c.id == old)
        .map(|c| c.options.networks.iter().map(|n| n.name.clone()).collect())
        .unwrap_or_default();
    for net in &old_networks {
        if let Err(e) = rt.disconnect(old, net).await {
            tracing::debug!(container = old, network = %net, error = %e, "failed to take the replaced container off its network");
        }
    }
    if let Err(e) = rt.stop(old, 10).await {
        tracing::warn!(container = old, error = %e, "failed to stop the replaced container");
    }
    if let Err(e) = rt.remove(old).await {
        return Err(format!(
            "the new container runs as `{temp}`, but the previous one could not be removed: {e}"
        ));
    }
    if let Err(e) = rt.rename(&id, &spec.name).await {
        return Err(format!(
            "the new container runs as `{temp}`, but could not be renamed `{}`: {e}",
            spec.name
        ));
    }
    Ok(Made {
        id,
        fallbacks: Vec::new(),
    })
}

/// Waits until container `id` is running and healthy: healthy by its healthcheck when it has
/// one, else running for [`START_FIRST_SETTLE`] without restarting. `Err` says what it was
/// instead (exited, unhealthy, restarting, or still starting at the deadline).
async fn wait_until_up<R: ContainerRuntime>(
    rt: &R,
    id: &str,
    deadline: std::time::Duration,
) -> Result<(), String> {
    use refinery_core::{ContainerState, Health};
    let begun = tokio::time::Instant::now();
    let mut first_start: Option<(Option<String>, tokio::time::Instant)> = None;
    loop {
        let o = rt
            .inspect(id)
            .await
            .map_err(|e| format!("could not be inspected: {e}"))?;
        match (o.state, o.health) {
            (ContainerState::Running, Health::Healthy) => return Ok(()),
            (ContainerState::Running, Health::Unhealthy) => {
                return Err("became unhealthy".into());
            }
            (ContainerState::Running, Health::None) => {
                let now = tokio::time::Instant::now();
                match &first_start {
                    None => first_start = Some((o.started_at.clone(), now)),
                    Some((started, _)) if *started != o.started_at => {
                        return Err("restarted while Refinery waited for it".into());
                    }
                    Some((_, since)) if now.duration_since(*since) >= START_FIRST_SETTLE => {
                        return Ok(());
                    }
                    Some(_) => {}
                }
            }
            (ContainerState::Running | ContainerState::Created, _) => {}
            (state, _) => {
                let code = o
                    .exit_code
                    .map(|c| format!(" (exit code {c})"))
                    .unwrap_or_default();
                return Err(format!("is {state}{code} instead of running"));
            }
        }
        if begun.elapsed() >= deadline {
            let health = match o.health {
                Health::None => String::new(),
                h => format!(", {h}"),
            };
            return Err(format!(
                "was not running and healthy within {}s (`config.health_deadline`; it was {}{health})",
                deadline.as_secs(),
                o.state
            ));
        }
        tokio::time::sleep(START_FIRST_POLL).await;
    }
}
