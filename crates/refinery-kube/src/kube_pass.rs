//! One pass over a `kubernetes:` source: observe into a core `DriftReport`, decide with the core
//! policy, plan with the core planner, and act (apply, rollout undo, rollout restart, delete).

use std::collections::{BTreeMap, BTreeSet};

use refinery_core::policy::Decision;
use refinery_core::{Drift, DriftKind, DriftReport, Outcome, Plan, ResourceId, Step, StepKind};
use serde_json::{Value, json};

use crate::diff::{self, WORKLOAD_KINDS};
use crate::kube_cluster::{KubeCluster, ObjectRef};
use crate::kube_error::{KubeError, Result};
use crate::source_manifests::KubeObject;

/// The id of an object: `k8s/CONTEXT/NS/KIND/NAME` (kind lowercased, as Docker kinds are).
#[must_use]
pub fn resource_id(context: &str, r: &ObjectRef) -> ResourceId {
    ResourceId::Kube {
        context: context.to_owned(),
        namespace: r.namespace.clone(),
        kind: r.kind.to_lowercase(),
        name: r.name.clone(),
    }
}

/// What observing one source found: its drifts, and the declared Deployments whose rollout is
/// not complete yet (with why), which keep a new revision from being judged healthy.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub report: DriftReport,
    pub rolling_out: Vec<(ResourceId, String)>,
}

/// What a pass over one source found and decided.
#[derive(Debug, Clone, Default)]
pub struct KubeEval {
    pub report: DriftReport,
    /// Declared Deployments still rolling out (see [`diff::rollout_pending`]).
    pub rolling_out: Vec<(ResourceId, String)>,
    pub decisions: Vec<Decision>,
    pub plan: Plan,
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeChange {
    pub id: ResourceId,
    pub outcome: Outcome,
    pub detail: String,
}

/// Declared objects with where they live; Namespaces first, then the rest in file order.
async fn locate_all(
    cluster: &KubeCluster,
    objects: &[KubeObject],
) -> Result<Vec<(ObjectRef, KubeObject)>> {
    let mut out = Vec::new();
    for o in objects {
        out.push((cluster.locate(o).await?, o.clone()));
    }
    out.sort_by_key(|(_, o)| u8::from(o.kind != "Namespace"));
    Ok(out)
}

/// What the source declares: the live uids of its declared objects, and their
/// `(kind, namespace, name)` (the API group left out, so an object served by two groups, like an
/// Ingress, is matched either way).
#[derive(Debug, Default)]
struct DeclaredSet {
    uids: BTreeSet<String>,
    keys: BTreeSet<(String, String, String)>,
    /// The namespaces of the declared objects.
    namespaces: BTreeSet<String>,
}

impl DeclaredSet {
    fn add(&mut self, r: &ObjectRef, live: Option<&Value>) {
        self.keys
            .insert((r.kind.clone(), r.namespace.clone(), r.name.clone()));
        if !r.namespace.is_empty() {
            self.namespaces.insert(r.namespace.clone());
        }
        if let Some(uid) = live
            .and_then(|v| v.pointer("/metadata/uid"))
            .and_then(Value::as_str)
        {
            self.uids.insert(uid.to_owned());
        }
    }

    fn contains(&self, r: &ObjectRef, live: &Value) -> bool {
        live.pointer("/metadata/uid")
            .and_then(Value::as_str)
            .is_some_and(|u| self.uids.contains(u))
            || self
                .keys
                .contains(&(r.kind.clone(), r.namespace.clone(), r.name.clone()))
    }

    async fn of(cluster: &KubeCluster, located: &[(ObjectRef, KubeObject)]) -> Result<Self> {
        let mut set = DeclaredSet::default();
        for (r, _) in located {
            set.add(r, cluster.get(r).await?.as_ref());
        }
        Ok(set)
    }
}

/// The objects Refinery applied from the source named `source` (label `refinery.io/source` and a
/// server-side apply by the field manager `refinery` in their managed fields, no controller owner:
/// [`diff::applied_by`]) that it no longer declares: what `prune: true` deletes. Every listable
/// kind is searched by that label: cluster-scoped ones everywhere, namespaced ones in the
/// namespaces the source manages (those of its declared objects, and the Namespaces it applied),
/// so a namesake source of another repository working elsewhere in the cluster is not seen. A
/// kind the server refuses to list (forbidden), or a failed discovery, finds nothing: what
/// cannot be seen is never pruned.
async fn orphans(
    cluster: &KubeCluster,
    source: &str,
    declared: &DeclaredSet,
) -> Result<Vec<(ObjectRef, Value)>> {
    let kinds = match cluster.listable_kinds().await {
        Ok(k) => k,
        Err(e @ KubeError::Unreachable { .. }) => return Err(e),
        Err(e) => {
            tracing::warn!(source, error = %e, "not looking for objects to prune");
            return Ok(Vec::new());
        }
    };
    let selector = format!("{}={source}", crate::source_manifests::SOURCE_LABEL);
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut namespaces = declared.namespaces.clone();
    // Cluster-scoped kinds first: the Namespaces the source applied are searched too.
    let mut kinds = kinds;
    kinds.sort_by_key(|k| k.namespaced);
    for k in &kinds {
        let items = match cluster.list_labelled(k, &selector).await {
            Ok(items) => items,
            Err(e @ KubeError::Unreachable { .. }) => return Err(e),
            Err(e) => {
                tracing::debug!(kind = %k.kind, error = %e, "not looking for objects to prune");
                continue;
            }
        };
        for live in items {
            if diff::applied_by(&live, crate::FIELD_MANAGER).as_deref() != Some(source)
                || live.pointer("/metadata/deletionTimestamp").is_some()
            {
                continue;
            }
            let meta = |k: &str| {
                live.pointer(&format!("/metadata/{k}"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let r = ObjectRef {
                api_version: k.api_version.clone(),
                kind: k.kind.clone(),
                namespace: if k.namespaced {
                    meta("namespace")
                } else {
                    String::new()
                },
                name: meta("name"),
            };
            if k.namespaced && !namespaces.contains(&r.namespace) {
                continue;
            }
            if !k.namespaced && k.kind == "Namespace" && k.api_version == "v1" {
                namespaces.insert(r.name.clone());
            }
            // One object may be served by two groups (extensions and networking.k8s.io).
            if declared.contains(&r, &live) || !seen.insert(meta("uid")) {
                continue;
            }
            out.push((r, live));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Observes the cluster against the declared objects of the source named `source`: missing
/// objects, drift on the fields Refinery manages (found with a server-side dry-run apply), image
/// drift on workloads, stuck rollouts, objects it applied earlier and no longer declares
/// (`orphan`), and undeclared workloads in the namespaces it manages (`unauthorized`; not those
/// Refinery applied, from this source or another).
pub async fn observe(
    cluster: &KubeCluster,
    source: &str,
    objects: &[KubeObject],
    ignore: &[String],
) -> Result<Observation> {
    let ctx = cluster.context();
    let mut rolling_out = Vec::new();
    let located = locate_all(cluster, objects).await?;
    let mut report = DriftReport::default();
    let mut declared: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut declared_set = DeclaredSet::default();
    for (r, o) in &located {
        if !r.namespace.is_empty() {
            declared
                .entry((r.namespace.clone(), r.kind.clone()))
                .or_default()
                .insert(r.name.clone());
        }
        let id = resource_id(ctx, r);
        let live = cluster.get(r).await?;
        declared_set.add(r, live.as_ref());
        let Some(live) = live else {
            report.drifts.push(Drift {
                id,
                kind: DriftKind::Missing,
                container_id: None,
                summary: format!("declared in `{}`, absent", o.origin),
                changes: Vec::new(),
            });
            continue;
        };
        let would_be = cluster.apply(o, true).await?;
        let changes = diff::field_changes(&o.body, &would_be, &live, ignore);
        let (image, config): (Vec<_>, Vec<_>) = changes
            .into_iter()
            .partition(|c| diff::is_workload(&o.kind) && diff::is_image_field(&c.field));
        let uid = live
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut clean = true;
        if !image.is_empty() {
            clean = false;
            let summary = image
                .iter()
                .map(|c| format!("{} instead of {}", c.observed, c.desired))
                .collect::<Vec<_>>()
                .join(", ");
            report.drifts.push(Drift {
                id: id.clone(),
                kind: DriftKind::Image,
                container_id: uid.clone(),
                summary,
                changes: image,
            });
        }
        if !config.is_empty() {
            clean = false;
            let n = config.len();
            report.drifts.push(Drift {
                id: id.clone(),
                kind: DriftKind::Config,
                container_id: uid.clone(),
                summary: format!(
                    "{n} field{} differ{}",
                    if n == 1 { "" } else { "s" },
                    if n == 1 { "s" } else { "" }
                ),
                changes: config,
            });
        }
        if let Some(why) = diff::rollout_pending(&live) {
            rolling_out.push((id.clone(), why));
        }
        if let Some(why) = diff::status_problem(&live) {
            clean = false;
            report.drifts.push(Drift {
                id: id.clone(),
                kind: DriftKind::Status,
                container_id: uid,
                summary: why,
                changes: Vec::new(),
            });
        }
        if clean {
            report.in_sync.push(id);
        }
    }
    for (r, live) in orphans(cluster, source, &declared_set).await? {
        report.drifts.push(Drift {
            id: resource_id(ctx, &r),
            kind: DriftKind::Orphan,
            container_id: live
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .map(str::to_owned),
            summary: format!("applied from source `{source}`, no longer declared in git"),
            changes: Vec::new(),
        });
    }
    for ns in &declared_set.namespaces {
        for (api_version, kind) in WORKLOAD_KINDS {
            let mut live = cluster.list(api_version, kind, ns).await?;
            // Refinery's own (an orphan of this source, or another source's) are not unauthorized.
            live.retain(|o| diff::applied_by(o, crate::FIELD_MANAGER).is_none());
            let names = declared
                .get(&(ns.clone(), kind.to_owned()))
                .cloned()
                .unwrap_or_default();
            for name in diff::undeclared(&live, &names) {
                let r = ObjectRef {
                    api_version: api_version.to_owned(),
                    kind: kind.to_owned(),
                    namespace: ns.clone(),
                    name: name.to_owned(),
                };
                report.drifts.push(Drift {
                    id: resource_id(ctx, &r),
                    kind: DriftKind::Unauthorized,
                    container_id: None,
                    summary: format!("{kind} in managed namespace `{ns}`, declared nowhere"),
                    changes: Vec::new(),
                });
            }
        }
    }
    report
        .drifts
        .sort_by(|a, b| (&a.id, a.kind).cmp(&(&b.id, b.kind)));
    report.in_sync.sort();
    Ok(Observation {
        report,
        rolling_out,
    })
}

fn find<'a>(
    located: &'a [(ObjectRef, KubeObject)],
    context: &str,
    id: &ResourceId,
) -> Option<&'a (ObjectRef, KubeObject)> {
    located.iter().find(|(r, _)| &resource_id(context, r) == id)
}

fn parse_id(id: &ResourceId) -> Option<ObjectRef> {
    let ResourceId::Kube {
        namespace,
        kind,
        name,
        ..
    } = id
    else {
        return None;
    };
    let (api_version, kind) = WORKLOAD_KINDS
        .iter()
        .find(|(_, k)| k.to_lowercase() == *kind)
        .map(|(a, k)| ((*a).to_owned(), (*k).to_owned()))?;
    Some(ObjectRef {
        api_version,
        kind,
        namespace: namespace.clone(),
        name: name.clone(),
    })
}

/// Carries out the plan's writing steps of the source named `source`; a failed step does not
/// stop the others. Deletions come last (what replaces a pruned object is applied first).
/// `now` marks a rollout restart (`kubectl.kubernetes.io/restartedAt`).
pub async fn execute(
    cluster: &KubeCluster,
    source: &str,
    objects: &[KubeObject],
    plan: &Plan,
    now: jiff::Timestamp,
) -> Result<Vec<KubeChange>> {
    let located = locate_all(cluster, objects).await?;
    let ctx = cluster.context().to_owned();
    let mut writes: Vec<&Step> = plan.writes().collect();
    writes.sort_by_key(|s| s.kind == StepKind::Remove);
    let mut found: Option<Vec<(ObjectRef, Value)>> = None;
    let mut out = Vec::new();
    for step in writes {
        let res = if step.kind == StepKind::Remove && step.drifts.contains(&DriftKind::Orphan) {
            prune(cluster, source, &located, &mut found, &ctx, step).await
        } else {
            run_step(cluster, &located, &ctx, step, now).await
        };
        out.push(match res {
            Ok((outcome, detail)) => KubeChange {
                id: step.id.clone(),
                outcome,
                detail,
            },
            Err(e) => KubeChange {
                id: step.id.clone(),
                outcome: Outcome::Failed,
                detail: e.to_string(),
            },
        });
    }
    Ok(out)
}

/// Deletes one orphan, once it is found again (still applied from `source` by Refinery, still
/// undeclared, the same object: the delete is conditional on its uid).
async fn prune(
    cluster: &KubeCluster,
    source: &str,
    located: &[(ObjectRef, KubeObject)],
    found: &mut Option<Vec<(ObjectRef, Value)>>,
    ctx: &str,
    step: &Step,
) -> Result<(Outcome, String)> {
    if found.is_none() {
        let declared = DeclaredSet::of(cluster, located).await?;
        *found = Some(orphans(cluster, source, &declared).await?);
    }
    let hit = found
        .as_ref()
        .and_then(|f| f.iter().find(|(r, _)| resource_id(ctx, r) == step.id));
    let Some((r, live)) = hit else {
        return Ok((
            Outcome::Skipped,
            format!("no longer an object source `{source}` applied and dropped; not deleted"),
        ));
    };
    let uid = live
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    cluster.delete_exact(r, uid).await?;
    Ok((
        Outcome::Removed,
        format!("pruned (applied from source `{source}`, no longer declared in git)"),
    ))
}

async fn run_step(
    cluster: &KubeCluster,
    located: &[(ObjectRef, KubeObject)],
    ctx: &str,
    step: &Step,
    now: jiff::Timestamp,
) -> Result<(Outcome, String)> {
    let declared = find(located, ctx, &step.id);
    match (step.kind, declared) {
        (StepKind::Remove, None) => {
            let Some(r) = parse_id(&step.id) else {
                return Ok((
                    Outcome::Skipped,
                    "not a workload kind Refinery removes".into(),
                ));
            };
            cluster.delete(&r).await?;
            Ok((Outcome::Removed, "deleted (unauthorized)".into()))
        }
        (StepKind::Remove, Some(_)) => {
            Ok((Outcome::Skipped, "declared in git; not removed".into()))
        }
        (StepKind::Create, Some((_, o))) => {
            cluster.apply(o, false).await?;
            Ok((
                Outcome::Created,
                "applied (server-side, field manager `refinery`)".into(),
            ))
        }
        (StepKind::Rollback, Some((r, o))) if o.kind == "Deployment" => {
            match rollout_undo(cluster, r, &diff::container_images(&o.body)).await? {
                Some(rev) => Ok((
                    Outcome::RolledBack,
                    format!("rolled back to revision {rev}"),
                )),
                None => {
                    cluster.apply(o, false).await?;
                    Ok((
                        Outcome::Recreated,
                        "no earlier revision runs the declared images; re-applied".into(),
                    ))
                }
            }
        }
        (StepKind::Restart | StepKind::Start | StepKind::Unpause, Some((r, o)))
            if o.kind == "Deployment" =>
        {
            let patch = json!({"spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": now.to_string()}}}}});
            cluster.merge_patch(r, &patch).await?;
            Ok((Outcome::Restarted, "rollout restarted".into()))
        }
        (StepKind::Restart | StepKind::Start | StepKind::Unpause, Some(_)) => Ok((
            Outcome::Skipped,
            "only a Deployment can be restarted".into(),
        )),
        (_, Some((_, o))) => {
            cluster.apply(o, false).await?;
            Ok((
                Outcome::Recreated,
                "re-applied (server-side, field manager `refinery`)".into(),
            ))
        }
        (_, None) => Ok((Outcome::Skipped, "not declared".into())),
    }
}

/// Rolls a Deployment back as `kubectl rollout undo` does: the pod template of an earlier
/// revision's ReplicaSet (without its `pod-template-hash` label) replaces the Deployment's, which
/// makes a new revision. The earlier revision taken is the newest one whose containers run
/// `images` (what git declares), so an out-of-band change is undone and never a second one
/// restored. `None` when no earlier revision qualifies.
pub async fn rollout_undo(
    cluster: &KubeCluster,
    deployment: &ObjectRef,
    images: &[(String, String)],
) -> Result<Option<i64>> {
    let live = observed_by_its_controller(cluster, deployment).await?;
    let uid = live
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let current = revision(&live).unwrap_or(0);
    let sets = cluster
        .list("apps/v1", "ReplicaSet", &deployment.namespace)
        .await?;
    let mut candidates: Vec<(i64, &Value)> = sets
        .iter()
        .filter(|rs| {
            rs.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
                })
        })
        .filter_map(|rs| revision(rs).map(|n| (n, rs)))
        .filter(|(n, _)| *n < current)
        .collect();
    candidates.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    let Some((rev, rs)) = candidates.into_iter().find(|(_, rs)| {
        let mut wanted = images.to_vec();
        let mut have = diff::container_images(rs);
        wanted.sort();
        have.sort();
        wanted == have
    }) else {
        return Ok(None);
    };
    let mut template = rs.pointer("/spec/template").cloned().unwrap_or(Value::Null);
    if let Some(labels) = template
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove("pod-template-hash");
    }
    cluster
        .json_patch(
            deployment,
            json!([{"op": "replace", "path": "/spec/template", "value": template}]),
        )
        .await?;
    Ok(Some(rev))
}

/// How long a rollback waits for the deployment controller to catch up with a change.
const CONTROLLER_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// The Deployment once its controller has seen its latest generation (its revision annotation
/// and ReplicaSets then say where the change went), or as it is after [`CONTROLLER_PATIENCE`].
/// A change made by hand is often seen (through a watch) before the controller made a
/// ReplicaSet of it; deciding then would find no earlier revision to go back to.
async fn observed_by_its_controller(
    cluster: &KubeCluster,
    deployment: &ObjectRef,
) -> Result<Value> {
    let deadline = std::time::Instant::now() + CONTROLLER_PATIENCE;
    loop {
        let Some(live) = cluster.get(deployment).await? else {
            return Err(KubeError::NotFound {
                action: "roll back".into(),
                what: format!("{}/Deployment/{}", deployment.namespace, deployment.name),
            });
        };
        let generation = live.pointer("/metadata/generation").and_then(Value::as_i64);
        let observed = live
            .pointer("/status/observedGeneration")
            .and_then(Value::as_i64);
        if observed >= generation || std::time::Instant::now() >= deadline {
            return Ok(live);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `deployment.kubernetes.io/revision` of a Deployment or ReplicaSet.
#[must_use]
pub fn revision(obj: &Value) -> Option<i64> {
    obj.pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

/// Applies every declared object (server-side, forced, field manager `refinery`), Namespaces
/// first: `created` when it was absent, `unchanged` when nothing moved, else `recreated`
/// (re-applied).
pub async fn apply_all(cluster: &KubeCluster, objects: &[KubeObject]) -> Result<Vec<KubeChange>> {
    let located = locate_all(cluster, objects).await?;
    let ctx = cluster.context().to_owned();
    let mut out = Vec::new();
    for (r, o) in &located {
        let id = resource_id(&ctx, r);
        let before = cluster.get(r).await;
        let res = cluster.apply(o, false).await;
        let change = match (before, res) {
            (_, Err(e)) => KubeChange {
                id,
                outcome: Outcome::Failed,
                detail: e.to_string(),
            },
            (Ok(None), Ok(_)) => KubeChange {
                id,
                outcome: Outcome::Created,
                detail: "applied".into(),
            },
            (Ok(Some(b)), Ok(a))
                if b.pointer("/metadata/resourceVersion")
                    == a.pointer("/metadata/resourceVersion") =>
            {
                KubeChange {
                    id,
                    outcome: Outcome::Unchanged,
                    detail: "already as declared".into(),
                }
            }
            (_, Ok(_)) => KubeChange {
                id,
                outcome: Outcome::Recreated,
                detail: "re-applied".into(),
            },
        };
        out.push(change);
    }
    Ok(out)
}

/// Changes that may be drift for a source, as they happen: its declared kinds and the workload
/// kinds (not Pods: they churn) in the namespaces it manages. Each item names what changed.
pub async fn watch_source(
    cluster: &KubeCluster,
    objects: &[KubeObject],
) -> Result<futures_util::stream::BoxStream<'static, String>> {
    let located = locate_all(cluster, objects).await?;
    let namespaces: Vec<String> = located
        .iter()
        .map(|(r, _)| r.namespace.clone())
        .filter(|n| !n.is_empty())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut kinds: BTreeSet<(String, String)> = located
        .iter()
        .map(|(r, _)| (r.api_version.clone(), r.kind.clone()))
        .collect();
    kinds.extend(
        WORKLOAD_KINDS
            .iter()
            .filter(|(_, k)| *k != "Pod")
            .map(|(a, k)| ((*a).to_owned(), (*k).to_owned())),
    );
    let kinds: Vec<_> = kinds.into_iter().collect();
    Ok(cluster.watch_changes(&kinds, &namespaces).await)
}
