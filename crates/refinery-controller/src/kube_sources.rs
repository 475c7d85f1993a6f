//! The `kubernetes:` sources of a manifest in `plan`, `apply` and `status`: each source's
//! manifests read from the commit, observed and decided on its cluster with the same policy as
//! containers, and acted on by `apply`.

use std::path::PathBuf;

use refinery_core::daemon_state::Suspension;
use refinery_core::manifest::KubeSpec;
use refinery_core::{Manifest, Mode, PolicyContext};
use refinery_engine::StepResult;
use refinery_git::GitSource;
use refinery_kube::{KubeChange, KubeCluster, KubeError, KubeEval, KubeObject};

use crate::desired::Desired;

/// One source after observation.
pub struct KubePass {
    /// `k8s/<source name>`, where a node name goes in reports.
    pub label: String,
    /// The source's `name` (the `refinery.io/source` label on what it applies).
    pub source: String,
    /// The mode in force for it (its context's node's, else the manifest's).
    pub mode: Mode,
    pub context: Option<String>,
    pub cluster: Option<KubeCluster>,
    pub objects: Vec<KubeObject>,
    pub result: Result<KubeEval, KubeError>,
}

/// The kubeconfig context of a source: its `context`, through the node of that name's
/// `kube_context` when there is one; else the first `k8s_enabled` node's `kube_context`; else the
/// kubeconfig's current context.
#[must_use]
pub fn context_of(manifest: &Manifest, spec: &KubeSpec) -> Option<String> {
    match &spec.context {
        Some(c) => Some(
            manifest
                .nodes
                .iter()
                .find(|n| &n.name == c)
                .and_then(|n| n.kube_context.clone())
                .unwrap_or_else(|| c.clone()),
        ),
        None => manifest
            .nodes
            .iter()
            .find(|n| n.k8s_enabled)
            .and_then(|n| n.kube_context.clone()),
    }
}

fn kubeconfig_path() -> Option<PathBuf> {
    let v = std::env::var_os("KUBECONFIG")?;
    std::env::split_paths(&v).next()
}

/// Each source's cluster and declared objects (for the daemon's watches).
pub async fn connect_all(
    desired: &Desired,
    repo: &std::path::Path,
) -> Vec<(String, Result<(KubeCluster, Vec<KubeObject>), KubeError>)> {
    let manifest = &desired.manifest;
    let mut out = Vec::new();
    let Ok(git) = GitSource::open(repo) else {
        return out;
    };
    for spec in &manifest.kubernetes {
        let label = format!("k8s/{}", spec.name);
        let objects = git
            .read_tree(&desired.commit.id, &spec.path)
            .map_err(|e| KubeError::Manifest {
                origin: spec.path.clone(),
                message: format!("failed to read from commit: {e}"),
            })
            .and_then(|f| refinery_kube::load_source(spec, &f));
        let res = match objects {
            Ok(objects) => {
                let context = context_of(manifest, spec);
                KubeCluster::connect(kubeconfig_path().as_deref(), context.as_deref())
                    .await
                    .map(|c| (c, objects))
            }
            Err(e) => Err(e),
        };
        out.push((label, res));
    }
    out
}

/// Observes and evaluates every `kubernetes:` source for a command run by hand (grace periods
/// not honoured: it acts at once).
pub async fn run(
    desired: &Desired,
    repo: &std::path::Path,
    now: jiff::Timestamp,
    suspended: &std::collections::BTreeMap<String, Suspension>,
) -> Vec<KubePass> {
    let first_seen = std::collections::BTreeMap::new();
    observe_all(desired, repo, now, &first_seen, false, suspended).await
}

/// Observes and evaluates every `kubernetes:` source (none: an empty list, no connection made).
pub async fn observe_all(
    desired: &Desired,
    repo: &std::path::Path,
    now: jiff::Timestamp,
    first_seen: &std::collections::BTreeMap<String, jiff::Timestamp>,
    honor_grace: bool,
    suspended: &std::collections::BTreeMap<String, Suspension>,
) -> Vec<KubePass> {
    let manifest = &desired.manifest;
    if manifest.kubernetes.is_empty() {
        return Vec::new();
    }
    let git = GitSource::open(repo);
    let loaded: Vec<Result<Vec<KubeObject>, KubeError>> = manifest
        .kubernetes
        .iter()
        .map(|spec| {
            let files = match &git {
                Ok(g) => {
                    g.read_tree(&desired.commit.id, &spec.path)
                        .map_err(|e| KubeError::Manifest {
                            origin: spec.path.clone(),
                            message: format!("failed to read from commit: {e}"),
                        })
                }
                Err(e) => Err(KubeError::Manifest {
                    origin: spec.path.clone(),
                    message: format!("failed to open the repository: {e}"),
                }),
            };
            files.and_then(|f| refinery_kube::load_source(spec, &f))
        })
        .collect();
    // Objects moving between sources in one commit: what another source declares is never an
    // orphan; and while a source fails to load, what it declares is unknown: nothing is pruned.
    let all_loaded = loaded.iter().all(Result::is_ok);
    let declared: Vec<Vec<ObjectKey>> = loaded
        .iter()
        .map(|l| {
            l.as_ref()
                .map(|objects| objects.iter().map(ObjectKey::of).collect())
                .unwrap_or_default()
        })
        .collect();
    let mut out = Vec::new();
    for (i, (spec, objects)) in manifest.kubernetes.iter().zip(loaded).enumerate() {
        let context = context_of(manifest, spec);
        let label = format!("k8s/{}", spec.name);
        let mut mode = manifest.mode_of(spec.context.as_deref().unwrap_or_default());
        let others: Vec<&ObjectKey> = declared
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .flat_map(|(_, keys)| keys)
            .collect();
        // A source that cannot be loaded or reached: its objects (if any) and why.
        let failed = |objects: Vec<KubeObject>, e: KubeError| KubePass {
            label: label.clone(),
            source: spec.name.clone(),
            mode,
            context: context.clone(),
            cluster: None,
            objects,
            result: Err(e),
        };
        let objects = match objects {
            Ok(o) => o,
            Err(e) => {
                out.push(failed(Vec::new(), e));
                continue;
            }
        };
        let cluster =
            match KubeCluster::connect(kubeconfig_path().as_deref(), context.as_deref()).await {
                Ok(c) => c,
                Err(e) => {
                    out.push(failed(objects, e));
                    continue;
                }
            };
        mode = manifest.mode_of(spec.context.as_deref().unwrap_or(cluster.context()));
        let ctx = PolicyContext {
            manifest,
            mode,
            now,
            first_seen,
            honor_grace,
            self_container_id: None,
            prune: spec.prune && all_loaded,
        };
        let result =
            refinery_kube::observe(&cluster, &spec.name, &objects, &manifest.ignore_differences)
                .await
                .map(|mut observation| {
                    observation.report.drifts.retain(|d| {
                        d.kind != refinery_core::DriftKind::Orphan || !declared_by(&others, &d.id)
                    });
                    // The one pipeline, as for a Docker node: the adapter only observed.
                    let held = |id: &refinery_core::ResourceId| {
                        suspended
                            .get(&id.to_string())
                            .is_some_and(|s| s.spec_hash == hash_in(&objects, id))
                    };
                    let (decisions, plan) = refinery_engine::decide_and_plan(
                        &observation.report,
                        refinery_engine::Subject::Source,
                        &ctx,
                        &held,
                    );
                    KubeEval {
                        report: observation.report,
                        rolling_out: observation.rolling_out,
                        decisions,
                        plan,
                    }
                });
        out.push(KubePass {
            label,
            source: spec.name.clone(),
            mode,
            context,
            cluster: Some(cluster),
            objects,
            result,
        });
    }
    out
}

/// What names a declared object: kind (lower case), namespace (if any), name.
struct ObjectKey {
    kind: String,
    namespace: Option<String>,
    name: String,
}

impl ObjectKey {
    fn of(o: &KubeObject) -> Self {
        ObjectKey {
            kind: o.kind.to_lowercase(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
        }
    }
}

/// Whether one of `keys` is the object `id` names (same kind and name; same namespace, or
/// either has none): then it is not an orphan, whichever source applied it last.
fn declared_by(keys: &[&ObjectKey], id: &refinery_core::ResourceId) -> bool {
    let refinery_core::ResourceId::Kube {
        namespace,
        kind,
        name,
        ..
    } = id
    else {
        return false;
    };
    keys.iter().any(|k| {
        k.kind == *kind
            && k.name == *name
            && (namespace.is_empty() || k.namespace.as_deref().is_none_or(|n| n == namespace))
    })
}

/// The label (`k8s/<source>`) of the source whose pass found or planned `id`.
#[must_use]
pub fn label_of<'a>(passes: &'a [KubePass], id: &refinery_core::ResourceId) -> Option<&'a str> {
    passes
        .iter()
        .find(|p| {
            p.result.as_ref().is_ok_and(|eval| {
                eval.report.drifts.iter().any(|d| d.id == *id)
                    || eval.plan.steps.iter().any(|s| s.id == *id)
            })
        })
        .map(|p| p.label.as_str())
}

/// Carries out every source's plan; the results in the shape the ledger and reports take.
pub async fn execute(passes: &[KubePass], now: jiff::Timestamp) -> Vec<StepResult> {
    let mut out = Vec::new();
    for p in passes {
        if let Ok(eval) = &p.result {
            out.extend(execute_plan(p, &eval.plan, now).await);
        }
    }
    out
}

/// Carries out `plan` (a source's plan, or the part of it the daemon acts on).
pub async fn execute_plan(
    p: &KubePass,
    plan: &refinery_core::Plan,
    now: jiff::Timestamp,
) -> Vec<StepResult> {
    let mut out = Vec::new();
    let Some(cluster) = &p.cluster else {
        return out;
    };
    {
        let eval_plan = plan;
        let changes =
            match refinery_kube::execute(cluster, &p.source, &p.objects, eval_plan, now).await {
                Ok(c) => c,
                Err(e) => eval_plan
                    .writes()
                    .map(|s| KubeChange {
                        id: s.id.clone(),
                        outcome: refinery_core::Outcome::Failed,
                        detail: e.to_string(),
                    })
                    .collect(),
            };
        for c in changes {
            let step = eval_plan
                .steps
                .iter()
                .find(|s| s.id == c.id)
                .map_or(refinery_core::StepKind::Recreate, |s| s.kind);
            out.push(StepResult {
                id: c.id,
                step,
                outcome: c.outcome,
                message: Some(c.detail),
                container_id: None,
                image_digest: None,
            });
        }
    }
    out
}

/// The spec hash of the declared object behind `id` (flap protection lifts when it changes).
#[must_use]
pub fn spec_hash_of(p: &KubePass, id: &refinery_core::ResourceId) -> Option<String> {
    hash_in(&p.objects, id)
}

/// The spec hash of the declared object `id` names among `objects`.
fn hash_in(objects: &[KubeObject], id: &refinery_core::ResourceId) -> Option<String> {
    let refinery_core::ResourceId::Kube { kind, name, .. } = id else {
        return None;
    };
    objects
        .iter()
        .find(|o| o.kind.to_lowercase() == *kind && o.name == *name)
        .map(KubeObject::spec_hash)
}

/// Whether a source failed on its manifests: bad input in git, exit 2 as for `refinery.yaml`
/// (nothing of that source was observed, applied or removed).
#[must_use]
pub fn any_invalid(passes: &[KubePass]) -> bool {
    passes
        .iter()
        .any(|p| matches!(p.result, Err(KubeError::Manifest { .. })))
}

/// Prints each source's error on stderr with its hints.
pub fn report_errors(passes: &[KubePass]) {
    for p in passes {
        if let Err(e) = &p.result {
            eprintln!("error: kubernetes source `{}`: {e}", p.label);
            let mut src = std::error::Error::source(e);
            while let Some(s) = src {
                eprintln!("  caused by: {s}");
                src = s.source();
            }
            for h in e.hints() {
                eprintln!("hint: {h}");
            }
        }
    }
}
