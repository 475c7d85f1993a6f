//! Against a real API server (etcd + kube-apiserver + kube-controller-manager, no kubelet):
//! apply, drift and its answers. Each test works in its own namespace.

use std::collections::BTreeMap;
use std::time::Duration;

use refinery_core::manifest::KubeSpec;
use refinery_core::{
    DriftKind, LoadOptions, Manifest, Mode, Outcome, PolicyContext, StepKind, load_manifest,
};
use refinery_kube::testsupport::{self, TestNamespace};
use refinery_kube::{KubeCluster, KubeEval, ObjectRef, execute, load_source, observe, revision};
use serde_json::{Value, json};

fn manifest(rules: &str) -> Manifest {
    let text = format!("kubernetes:\n  - name: app\n    path: k8s/\n{rules}");
    let env = |_: &str| None;
    load_manifest(
        "refinery.yaml",
        &text,
        &LoadOptions {
            env: &env,
            base_dir: None,
        },
    )
    .expect("valid manifest")
    .manifest
}

fn spec(ns: &str) -> KubeSpec {
    source(ns, "app", false)
}

/// The source `name` with its manifests in `k8s/`, its namespace `ns`.
fn source(ns: &str, name: &str, prune: bool) -> KubeSpec {
    KubeSpec {
        name: name.into(),
        context: Some(testsupport::CONTEXT.into()),
        path: "k8s/".into(),
        namespace: Some(ns.into()),
        prune,
    }
}

fn files(app: &str) -> BTreeMap<String, Vec<u8>> {
    [("k8s/app.yaml".to_owned(), app.as_bytes().to_vec())].into()
}

fn ctx<'a>(
    m: &'a Manifest,
    first_seen: &'a BTreeMap<String, jiff::Timestamp>,
) -> PolicyContext<'a> {
    PolicyContext {
        manifest: m,
        mode: Mode::Enforce,
        now: jiff::Timestamp::now(),
        first_seen,
        honor_grace: false,
        self_container_id: None,
        prune: false,
    }
}

/// One reconcile of the source in `ns` with `app` as the committed manifests, nothing seen
/// drifting before (grace periods start now); `act` carries the plan out.
async fn reconcile_app(
    cluster: &KubeCluster,
    ns: &str,
    app: &str,
    m: &Manifest,
    act: bool,
) -> refinery_kube::Result<(refinery_kube::KubeEval, Vec<refinery_kube::KubeChange>)> {
    reconcile_source(cluster, &spec(ns), app, m, act).await
}

/// [`reconcile_app`] for any source.
async fn reconcile_source(
    cluster: &KubeCluster,
    source: &KubeSpec,
    app: &str,
    m: &Manifest,
    act: bool,
) -> refinery_kube::Result<(refinery_kube::KubeEval, Vec<refinery_kube::KubeChange>)> {
    let first_seen = BTreeMap::new();
    let ctx = ctx(m, &first_seen);
    let objects = load_source(source, &files(app))?;
    let observation = observe(cluster, &source.name, &objects, &m.ignore_differences).await?;
    let source_ctx = PolicyContext {
        prune: source.prune,
        ..ctx
    };
    let (decisions, plan) = refinery_engine::decide_and_plan(
        &observation.report,
        refinery_engine::Subject::Source,
        &source_ctx,
        &refinery_engine::nothing_held,
    );
    let eval = KubeEval {
        report: observation.report,
        rolling_out: observation.rolling_out,
        decisions,
        plan,
    };
    let changes = if act {
        execute(cluster, &source.name, &objects, &eval.plan, ctx.now).await?
    } else {
        Vec::new()
    };
    Ok((eval, changes))
}

fn deployment(ns: &str, name: &str) -> ObjectRef {
    ObjectRef {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: ns.into(),
        name: name.into(),
    }
}

async fn apply_app(cluster: &KubeCluster, ns: &str) {
    let objects = load_source(&spec(ns), &files(&testsupport::app())).unwrap();
    let changes = refinery_kube::apply_all(cluster, &objects).await.unwrap();
    assert!(
        changes.iter().all(|c| c.outcome == Outcome::Created),
        "{changes:?}"
    );
}

/// Waits until `f` holds for the live object (the controller manager works asynchronously).
async fn wait_for(
    cluster: &KubeCluster,
    r: &ObjectRef,
    what: &str,
    f: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..100 {
        if let Some(v) = cluster.get(r).await.unwrap()
            && f(&v)
        {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn manifests_applied_are_in_sync_and_reapplying_changes_nothing() {
    let cluster = testsupport::cluster().await;
    let ns = TestNamespace::new(&cluster, "apply").await;
    apply_app(&cluster, &ns.name).await;
    let m = manifest("");
    let (eval, _) = reconcile_app(&cluster, &ns.name, &testsupport::app(), &m, false)
        .await
        .unwrap();
    assert!(eval.report.drifts.is_empty(), "{:?}", eval.report.drifts);
    let ids: Vec<String> = eval
        .report
        .in_sync
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        ids,
        [
            format!("k8s/refinery-test/{}/configmap/settings", ns.name),
            format!("k8s/refinery-test/{}/deployment/web", ns.name),
        ]
    );
    let live = cluster
        .get(&deployment(&ns.name, "web"))
        .await
        .unwrap()
        .unwrap();
    let managers: Vec<&str> = live["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["manager"].as_str())
        .collect();
    assert!(managers.contains(&"refinery"), "{managers:?}");
    let objects = load_source(&spec(&ns.name), &files(&testsupport::app())).unwrap();
    let again = refinery_kube::apply_all(&cluster, &objects).await.unwrap();
    assert!(
        again.iter().all(|c| c.outcome == Outcome::Unchanged),
        "{again:?}"
    );
}

#[tokio::test]
async fn field_changed_with_a_patch_is_detected_and_restored() {
    let cluster = testsupport::cluster().await;
    let ns = TestNamespace::new(&cluster, "patch").await;
    apply_app(&cluster, &ns.name).await;
    let cm = ObjectRef {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: ns.name.clone(),
        name: "settings".into(),
    };
    cluster
        .merge_patch(&cm, &json!({"data": {"mode": "debug"}}))
        .await
        .unwrap();
    cluster
        .merge_patch(
            &deployment(&ns.name, "web"),
            &json!({"spec": {"replicas": 3}}),
        )
        .await
        .unwrap();
    let m = manifest("");
    let (eval, changes) = reconcile_app(&cluster, &ns.name, &testsupport::app(), &m, true)
        .await
        .unwrap();
    let drifts: Vec<(String, DriftKind, Vec<String>)> = eval
        .report
        .drifts
        .iter()
        .map(|d| {
            (
                d.id.to_string(),
                d.kind,
                d.changes
                    .iter()
                    .map(|c| format!("{}: {} -> {}", c.field, c.observed, c.desired))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        drifts,
        [
            (
                format!("k8s/refinery-test/{}/configmap/settings", ns.name),
                DriftKind::Config,
                vec!["data.mode: debug -> production".to_owned()]
            ),
            (
                format!("k8s/refinery-test/{}/deployment/web", ns.name),
                DriftKind::Config,
                vec!["spec.replicas: 3 -> 1".to_owned()]
            ),
        ]
    );
    assert!(eval.plan.steps.iter().all(|s| s.kind == StepKind::Recreate));
    assert!(
        changes.iter().all(|c| c.outcome == Outcome::Recreated),
        "{changes:?}"
    );
    let live = cluster.get(&cm).await.unwrap().unwrap();
    assert_eq!(live["data"]["mode"], "production");
    let (after, _) = reconcile_app(&cluster, &ns.name, &testsupport::app(), &m, false)
        .await
        .unwrap();
    assert!(after.report.drifts.is_empty(), "{:?}", after.report.drifts);
}

fn stray(ns: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "stray", "namespace": ns},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "stray"}},
                    "template": {"metadata": {"labels": {"app": "stray"}},
                                 "spec": {"containers": [{"name": "x", "image": "registry.invalid/x:1"}]}}}})
}

#[tokio::test]
async fn unauthorized_deployment_is_reported_and_removed_only_under_terminate() {
    let cluster = testsupport::cluster().await;
    let ns = TestNamespace::new(&cluster, "unauth").await;
    apply_app(&cluster, &ns.name).await;
    let r = deployment(&ns.name, "stray");
    cluster.create(&r, &stray(&ns.name)).await.unwrap();
    let id = format!("k8s/refinery-test/{}/deployment/stray", ns.name);

    // Default rule: reported, not removed.
    let m = manifest("");
    let (eval, changes) = reconcile_app(&cluster, &ns.name, &testsupport::app(), &m, true)
        .await
        .unwrap();
    let d = &eval.report.drifts;
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(
        (d[0].id.to_string(), d[0].kind),
        (id.clone(), DriftKind::Unauthorized)
    );
    assert_eq!(eval.plan.steps[0].kind, StepKind::Alert);
    assert!(changes.is_empty());
    // The ReplicaSet the controller made for it, and its Pods, are not workloads of their own.
    assert!(cluster.get(&r).await.unwrap().is_some());

    // An explicit terminate rule removes it.
    let m = manifest("drift_rules:\n  unauthorized_containers: {action: terminate}\n");
    let (eval, changes) = reconcile_app(&cluster, &ns.name, &testsupport::app(), &m, true)
        .await
        .unwrap();
    assert_eq!(eval.plan.steps[0].kind, StepKind::Remove);
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].id.to_string(), changes[0].outcome),
        (id, Outcome::Removed)
    );
    for _ in 0..50 {
        match cluster.get(&r).await.unwrap() {
            None => break,
            Some(v) if v["metadata"]["deletionTimestamp"].is_string() => break,
            Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let (after, _) = reconcile_app(&cluster, &ns.name, &testsupport::app(), &m, false)
        .await
        .unwrap();
    assert!(after.report.drifts.is_empty(), "{:?}", after.report.drifts);
}

#[tokio::test]
async fn image_changed_out_of_band_is_rolled_back_like_rollout_undo() {
    let cluster = testsupport::cluster().await;
    let ns = TestNamespace::new(&cluster, "image").await;
    apply_app(&cluster, &ns.name).await;
    let r = deployment(&ns.name, "web");
    wait_for(&cluster, &r, "revision 1", |v| revision(v) == Some(1)).await;
    // `kubectl set image` out of band: a new revision with another image.
    cluster
        .merge_patch(
            &r,
            &json!({"spec": {"template": {"spec": {"containers": [
                {"name": "web", "image": "registry.invalid/web:evil"}]}}}}),
        )
        .await
        .unwrap();
    wait_for(&cluster, &r, "revision 2", |v| revision(v) == Some(2)).await;

    let m = manifest("drift_rules:\n  image_drift: {action: rollback}\n");
    let (eval, changes) = reconcile_app(&cluster, &ns.name, &testsupport::app(), &m, true)
        .await
        .unwrap();
    let image: Vec<_> = eval
        .report
        .drifts
        .iter()
        .filter(|d| d.kind == DriftKind::Image)
        .collect();
    assert_eq!(image.len(), 1, "{:?}", eval.report.drifts);
    assert_eq!(
        image[0].summary,
        "registry.invalid/web:evil instead of registry.invalid/web:1.0"
    );
    assert_eq!(eval.plan.steps[0].kind, StepKind::Rollback);
    assert_eq!(changes[0].outcome, Outcome::RolledBack, "{changes:?}");
    assert_eq!(changes[0].detail, "rolled back to revision 1");
    // As `rollout undo`: revision 1's template becomes revision 3.
    let live = wait_for(&cluster, &r, "revision 3", |v| revision(v) == Some(3)).await;
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.invalid/web:1.0"
    );
    let (after, _) = reconcile_app(&cluster, &ns.name, &testsupport::app(), &m, false)
        .await
        .unwrap();
    assert!(after.report.drifts.is_empty(), "{:?}", after.report.drifts);
}

#[tokio::test]
async fn manifest_error_removes_nothing() {
    let cluster = testsupport::cluster().await;
    let ns = TestNamespace::new(&cluster, "broken").await;
    apply_app(&cluster, &ns.name).await;
    let r = deployment(&ns.name, "stray");
    cluster.create(&r, &stray(&ns.name)).await.unwrap();
    let m = manifest("drift_rules:\n  unauthorized_containers: {action: terminate}\n");
    // The commit's manifests lose a name: the whole source is invalid.
    let broken = testsupport::app().replace("  name: web\n", "");
    let e = reconcile_app(&cluster, &ns.name, &broken, &m, true)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("k8s/app.yaml (document 2)"), "{e}");
    assert!(e.to_string().contains("metadata.name"), "{e}");
    assert!(!e.hints().is_empty());
    // Nothing was removed: not the undeclared Deployment, not the declared ones.
    for name in ["stray", "web"] {
        let live = cluster.get(&deployment(&ns.name, name)).await.unwrap();
        assert!(
            live.is_some_and(|v| v["metadata"]["deletionTimestamp"].is_null()),
            "{name}"
        );
    }
}

#[tokio::test]
async fn stuck_rollout_is_status_drift_and_restart_starts_it_again() {
    let cluster = testsupport::cluster().await;
    let ns = TestNamespace::new(&cluster, "stuck").await;
    // Without a kubelet no Pod ever becomes available: with a 1 s deadline the controller
    // declares the rollout stuck.
    let app = testsupport::app().replace(
        "  replicas: 1\n",
        "  replicas: 1\n  progressDeadlineSeconds: 1\n",
    );
    let objects = load_source(&spec(&ns.name), &files(&app)).unwrap();
    refinery_kube::apply_all(&cluster, &objects).await.unwrap();
    let r = deployment(&ns.name, "web");
    wait_for(&cluster, &r, "ProgressDeadlineExceeded", |v| {
        refinery_kube::diff::status_problem(v).is_some()
    })
    .await;
    let m = manifest("");
    let (eval, changes) = reconcile_app(&cluster, &ns.name, &app, &m, true)
        .await
        .unwrap();
    let d = &eval.report.drifts;
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].kind, DriftKind::Status);
    assert!(
        d[0].summary
            .starts_with("rollout not progressing (ProgressDeadlineExceeded)"),
        "{}",
        d[0].summary
    );
    assert_eq!(eval.plan.steps[0].kind, StepKind::Restart);
    assert_eq!(changes[0].outcome, Outcome::Restarted, "{changes:?}");
    let live = cluster.get(&r).await.unwrap().unwrap();
    assert!(
        live["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string(),
        "{live}"
    );
}

fn config_map(ns: &str, name: &str) -> ObjectRef {
    ObjectRef {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: ns.into(),
        name: name.into(),
    }
}

/// Whether the object is gone or going.
async fn gone(cluster: &KubeCluster, r: &ObjectRef) -> bool {
    for _ in 0..50 {
        match cluster.get(r).await.unwrap() {
            None => return true,
            Some(v) if v["metadata"]["deletionTimestamp"].is_string() => return true,
            Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    false
}

fn kinds_of(eval: &refinery_kube::KubeEval) -> Vec<(String, DriftKind, StepKind)> {
    eval.plan
        .steps
        .iter()
        .flat_map(|s| s.drifts.iter().map(|d| (s.id.to_string(), *d, s.kind)))
        .collect()
}

#[tokio::test]
async fn object_removed_from_git_is_an_orphan_pruned_only_under_prune() {
    let cluster = testsupport::cluster().await;
    let ns = TestNamespace::new(&cluster, "prune").await;
    apply_app(&cluster, &ns.name).await;
    let cm = config_map(&ns.name, "settings");
    let live = cluster.get(&cm).await.unwrap().unwrap();
    assert_eq!(live["metadata"]["labels"]["refinery.io/source"], "app");
    assert_eq!(
        live["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "refinery"
    );
    let id = format!("k8s/refinery-test/{}/configmap/settings", ns.name);
    let m = manifest("");

    // The ConfigMap leaves git; the source does not prune: reported, kept.
    let (eval, changes) = reconcile_source(
        &cluster,
        &source(&ns.name, "app", false),
        testsupport::DEPLOYMENT,
        &m,
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        kinds_of(&eval),
        [(id.clone(), DriftKind::Orphan, StepKind::Alert)]
    );
    assert_eq!(
        eval.report.drifts[0].summary,
        "applied from source `app`, no longer declared in git"
    );
    assert!(eval.plan.steps[0].reason.contains("`prune: true`"));
    assert!(changes.is_empty(), "{changes:?}");
    assert!(cluster.get(&cm).await.unwrap().is_some());

    // `prune: true`: deleted, the Deployment still declared is left alone.
    let pruning = source(&ns.name, "app", true);
    let (eval, changes) = reconcile_source(&cluster, &pruning, testsupport::DEPLOYMENT, &m, true)
        .await
        .unwrap();
    assert_eq!(
        kinds_of(&eval),
        [(id.clone(), DriftKind::Orphan, StepKind::Remove)]
    );
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.id.to_string(), c.outcome))
            .collect::<Vec<_>>(),
        [(id, Outcome::Removed)]
    );
    assert!(changes[0].detail.starts_with("pruned"), "{changes:?}");
    assert!(gone(&cluster, &cm).await);
    assert!(
        cluster
            .get(&deployment(&ns.name, "web"))
            .await
            .unwrap()
            .is_some()
    );
    let (after, _) = reconcile_source(&cluster, &pruning, testsupport::DEPLOYMENT, &m, false)
        .await
        .unwrap();
    assert!(after.report.drifts.is_empty(), "{:?}", after.report.drifts);
}

#[tokio::test]
async fn prune_never_touches_what_refinery_did_not_apply_nor_a_namespace() {
    let cluster = testsupport::cluster().await;
    let ns = TestNamespace::new(&cluster, "pruneown").await;
    // The source declares its Namespace too (Refinery takes it over) and the app.
    let namespace_doc = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {}\n",
        ns.name
    );
    let with_ns = format!("{namespace_doc}---\n{}", testsupport::app());
    // A source name of its own: its Namespace is cluster-scoped, searched cluster-wide.
    let name = format!("own-{}", ns.run_id);
    let pruning = source(&ns.name, &name, true);
    let m = manifest("");
    reconcile_source(&cluster, &pruning, &with_ns, &m, true)
        .await
        .unwrap();
    // Another source applies its own ConfigMap and Deployment in the same namespace.
    let theirs = testsupport::app()
        .replace("name: settings", "name: theirs")
        .replace("name: web\n", "name: their-web\n");
    reconcile_source(
        &cluster,
        &source(&ns.name, "other", false),
        &theirs,
        &m,
        true,
    )
    .await
    .unwrap();
    // A copy of Refinery's ConfigMap, label and all, made by another tool.
    cluster
        .create(
            &config_map(&ns.name, "copy"),
            &json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "copy", "namespace": ns.name,
                                 "labels": {"refinery.io/source": name}},
                    "data": {"mode": "production"}}),
        )
        .await
        .unwrap();

    // Nothing is an orphan yet: not the copy, not the other source's objects (nor unauthorized).
    let (eval, _) = reconcile_source(&cluster, &pruning, &with_ns, &m, false)
        .await
        .unwrap();
    assert!(eval.report.drifts.is_empty(), "{:?}", eval.report.drifts);

    // The Namespace leaves git: an orphan that is never pruned.
    let (eval, changes) = reconcile_source(&cluster, &pruning, &testsupport::app(), &m, true)
        .await
        .unwrap();
    assert_eq!(
        kinds_of(&eval),
        [(
            format!("k8s/refinery-test//namespace/{}", ns.name),
            DriftKind::Orphan,
            StepKind::Alert
        )]
    );
    assert!(
        eval.plan.steps[0].reason.contains("never pruned"),
        "{}",
        eval.plan.steps[0].reason
    );
    assert!(changes.is_empty(), "{changes:?}");

    // Manifests that fail to load, or declare nothing, prune nothing.
    let broken = testsupport::app().replace("  name: web\n", "");
    let e = reconcile_source(&cluster, &pruning, &broken, &m, true)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("metadata.name"), "{e}");
    let e = reconcile_source(&cluster, &pruning, "---\n", &m, true)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no manifests"), "{e}");
    for r in [
        config_map(&ns.name, "settings"),
        config_map(&ns.name, "theirs"),
        config_map(&ns.name, "copy"),
        deployment(&ns.name, "web"),
        deployment(&ns.name, "their-web"),
    ] {
        let live = cluster.get(&r).await.unwrap();
        assert!(
            live.is_some_and(|v| v["metadata"]["deletionTimestamp"].is_null()),
            "{r:?}"
        );
    }
    let live_ns = cluster
        .get(&ObjectRef {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            namespace: String::new(),
            name: ns.name.clone(),
        })
        .await
        .unwrap();
    assert!(live_ns.is_some_and(|v| v["metadata"]["deletionTimestamp"].is_null()));
}
