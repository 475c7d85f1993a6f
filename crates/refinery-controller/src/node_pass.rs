//! Observe and evaluate a node: the shared start of a daemon's pass and of `plan`, `apply`,
//! `status`. Generic over the node's engine client ([`Engine`]); [`run`] observes the nodes a
//! command selected through the Docker adapter ([`crate::node_engines`]).

use std::collections::BTreeMap;

use refinery_core::DiffContext;
use refinery_core::daemon_state::Suspension;
use refinery_core::image_trials::RejectedUpdate;
use refinery_core::labels::spec_hash;
use refinery_core::manifest::NodeSpec;
use refinery_core::{Manifest, Observed, RuntimeError};
use refinery_engine::{
    EvalInputs, Evaluation, PortProbe, evaluate_in, free_primary_ports, node_selector,
};

use crate::desired::Desired;
use crate::error::ControllerError;
use crate::node_engines::{self, NodeEngine};
use crate::ports::Engine;

/// One node after observation, with its engine client (none when it could not be made).
pub struct NodePass<'m, R> {
    pub node: &'m NodeSpec,
    pub engine: Option<R>,
    pub result: Result<(Observed, Evaluation), RuntimeError>,
}

/// Observes every selected node at once and evaluates each. Grace periods are not honoured: a
/// command run by hand acts at once.
pub async fn run<'m>(
    desired: &'m Desired,
    selection: &Selection<'_>,
) -> Result<Vec<NodePass<'m, refinery_docker::DockerRuntime>>, ControllerError> {
    let manifest = &desired.manifest;
    let selected = node_engines::select(manifest, selection.nodes, selection.repo)?;
    let self_id = node_engines::self_container_id();
    let nodes = selected
        .into_iter()
        .filter(|ne| node_engines::in_shard(selection.shard, &ne.node.name))
        .map(|NodeEngine { node, engine }| (node, engine))
        .collect();
    let first_seen = BTreeMap::new();
    let ctx = PassContext {
        now: selection.now,
        first_seen: &first_seen,
        honor_grace: false,
        self_id: self_id.as_deref(),
        suspended: selection.suspended,
        rejected: selection.rejected,
        checks: &crate::registries::RegistryChecks::default(),
        refresh: None,
    };
    Ok(evaluate_nodes(manifest, nodes, &ctx).await)
}

/// The nodes a command works on: `--node` (empty: all), `--shard`, the repository their `tls:`
/// paths are relative to, and the time decisions are made at.
pub struct Selection<'a> {
    pub repo: &'a std::path::Path,
    pub nodes: &'a [String],
    pub shard: Option<refinery_core::Shard>,
    pub now: jiff::Timestamp,
    /// What flap protection holds back (a daemon's, for `refinery plan`; else nothing).
    pub suspended: &'a BTreeMap<String, Suspension>,
    /// Image updates the daemon rolled back (by resource id): held back until the tag moves.
    pub rejected: &'a BTreeMap<String, RejectedUpdate>,
}

/// No suspensions.
pub static NOTHING_SUSPENDED: BTreeMap<String, Suspension> = BTreeMap::new();

/// No image update rolled back.
pub static NOTHING_REJECTED: BTreeMap<String, RejectedUpdate> = BTreeMap::new();

/// What a pass decides with besides the manifest and the engines.
pub struct PassContext<'a> {
    pub now: jiff::Timestamp,
    pub first_seen: &'a BTreeMap<String, jiff::Timestamp>,
    pub honor_grace: bool,
    pub self_id: Option<&'a str>,
    /// What flap protection holds back: a write on a suspended resource whose declared spec
    /// did not change since is an alert.
    pub suspended: &'a BTreeMap<String, Suspension>,
    /// Image updates rolled back: held back until the tag moves.
    pub rejected: &'a BTreeMap<String, RejectedUpdate>,
    /// When each followed tag is next asked of its registry, and the checks that failed.
    pub checks: &'a crate::registries::RegistryChecks,
    /// The daemon's `pull_policy` refreshes, when it acts: due images are pulled before the
    /// node is observed. `None` for commands (`apply` refreshes before its steps instead).
    pub refresh: Option<&'a crate::pull_refresh::PullRefreshes>,
}

/// The declared container `id` names, if any.
#[must_use]
pub fn spec_of<'m>(
    manifest: &'m Manifest,
    id: &refinery_core::ResourceId,
) -> Option<&'m refinery_core::ContainerSpec> {
    manifest
        .containers
        .iter()
        .find(|c| c.node == id.node() && c.name == id.name())
}

/// Observes the given nodes at once (each with its engine, or why it has none) and evaluates
/// each.
pub async fn evaluate_nodes<'m, R: Engine>(
    manifest: &'m Manifest,
    nodes: Vec<(&'m NodeSpec, Result<R, RuntimeError>)>,
    ctx: &PassContext<'_>,
) -> Vec<NodePass<'m, R>> {
    let futures = nodes
        .into_iter()
        .map(|(node, engine)| evaluate_node(manifest, node, engine, ctx));
    futures_util::future::join_all(futures).await
}

/// Observes one node and evaluates it.
pub async fn evaluate_node<'m, R: Engine>(
    manifest: &'m Manifest,
    node: &'m NodeSpec,
    engine: Result<R, RuntimeError>,
    ctx: &PassContext<'_>,
) -> NodePass<'m, R> {
    let engine = match engine {
        Ok(e) => e,
        Err(e) => {
            return NodePass {
                node,
                engine: None,
                result: Err(e),
            };
        }
    };
    let result = async {
        probe(&engine).await?;
        // `pull_policy: daily | weekly | every_…`: a pull that moves a tag shows as image drift.
        if let Some(refreshes) = ctx.refresh {
            crate::pull_refresh::refresh_node(
                &engine,
                refreshes,
                ctx.checks,
                manifest,
                &node.name,
                ctx.now,
            )
            .await;
        }
        let mut observed = bounded(
            &engine,
            OBSERVE_TIMEOUT,
            "listing and inspecting its containers",
            engine.observe(node_selector(manifest)),
        )
        .await?;
        // What the content-tracked copies on this host hold now (an edit by hand is drift).
        crate::content_copies::observe_copies(
            manifest,
            &node.name,
            &mut observed,
            crate::content_copies::is_local(engine.endpoint()),
        );
        // Degraded containers (on a fallback host port) move back once the primary is free.
        let probe = PortProbe::for_endpoint(engine.endpoint(), ctx.self_id.is_some());
        let free = free_primary_ports(&engine, manifest, &node.name, &observed, probe).await;
        let mut dctx = DiffContext::for_node(manifest, &node.name).with_free_ports(free);
        // `image_update`: the registry's digest of each followed tag, on its own schedule.
        dctx.registry_digests =
            crate::registries::registry_digests(&engine, ctx.checks, manifest, &node.name, &observed, ctx.now)
                .await;
        // `image_policy`: the newest tag matching each range, from the registry's tags.
        dctx.image_targets =
            crate::registry_tags::image_targets(&engine, ctx.checks, manifest, &node.name, &observed, ctx.now)
                .await;
        // A stack's networks and volumes are compared only on nodes that declare some.
        let declares = |n: &str| n == node.name;
        if manifest.stack_networks.iter().any(|n| declares(&n.node))
            || manifest.stack_volumes.iter().any(|v| declares(&v.node))
        {
            match engine.networks_and_volumes().await {
                Ok((networks, volumes)) => {
                    dctx = dctx.with_stack_resources(manifest, networks, volumes);
                }
                Err(e) => tracing::warn!(node = %node.name, error = %e, "failed to list networks and volumes"),
            }
        }
        let held = |id: &refinery_core::ResourceId| {
            ctx.suspended.get(&id.to_string()).is_some_and(|s| {
                s.spec_hash.as_deref() == spec_of(manifest, id).map(spec_hash).as_deref()
            })
        };
        let inputs = EvalInputs {
            now: ctx.now,
            first_seen: ctx.first_seen,
            honor_grace: ctx.honor_grace,
            self_container_id: ctx.self_id,
            held: &held,
        };
        let mut eval = evaluate_in(&dctx, manifest, &observed, &inputs);
        // An update rolled back is not tried again until the tag moves.
        refinery_core::image_trials::hold_rejected(&mut eval.report, &mut eval.plan, ctx.rejected);
        Ok((observed, eval))
    }
    .await;
    NodePass {
        node,
        engine: Some(engine),
        result,
    }
}

/// How long a node's engine has to answer the version query that starts its pass: an engine that
/// hangs (a host gone without a reset) is reported unreachable instead of holding up the others.
pub const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a node's engine has to list and inspect its containers once it answered the probe:
/// an engine that answers its version but hangs listing containers (a container stuck in the
/// kernel can do that) is reported unreachable instead of holding up the pass, and with it every
/// other node's next pass, for ever. Generous: a first observation inspects every container.
pub const OBSERVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The engine's version query, bounded by [`PROBE_TIMEOUT`].
pub async fn probe<R: Engine>(engine: &R) -> Result<refinery_core::EngineInfo, RuntimeError> {
    bounded(engine, PROBE_TIMEOUT, "", engine.info()).await
}

/// `call` on `engine`, given up on after `limit` as unreachable (a timeout) while `doing` what.
async fn bounded<R: Engine, T>(
    engine: &R,
    limit: std::time::Duration,
    doing: &str,
    call: impl std::future::Future<Output = Result<T, RuntimeError>>,
) -> Result<T, RuntimeError> {
    match tokio::time::timeout(limit, call).await {
        Ok(r) => r,
        Err(_) => Err(RuntimeError::Unreachable {
            endpoint: engine.endpoint().to_owned(),
            cause: refinery_core::UnreachableCause::Timeout,
            reason: if doing.is_empty() {
                format!("the engine did not answer within {}s", limit.as_secs())
            } else {
                format!(
                    "the engine did not answer within {}s {doing}",
                    limit.as_secs()
                )
            },
        }),
    }
}

/// Every node's bind mounts, or `None` when a node was not seen (it may still mount anything).
#[must_use]
pub fn mounts_of<R>(passes: &[NodePass<'_, R>]) -> Option<Vec<crate::content_copies::NodeMounts>> {
    passes
        .iter()
        .map(|p| {
            p.result
                .as_ref()
                .ok()
                .map(|(observed, _)| crate::content_copies::NodeMounts::of(&p.node.name, observed))
        })
        .collect()
}
