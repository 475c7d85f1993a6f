//! Against a real API server (etcd + kube-apiserver + kube-controller-manager, no kubelet):
//! apply, drift and its answers. Each test works in its own namespace.

use std::collections::BTreeMap;
use std::time::Duration;

use refinery_core::manifest::KubeSpec;
use refinery_core::{
    DriftKind, LoadOptions, Manifest, Mode, Outcome, PolicyContext, StepKind, load_manifest,
};
use refinery_kube::testsupport::{self, TestNamespace};
use refinery_kube::{KubeCluster, ObjectRef, load_source, reconcile, revision};
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
    KubeSpec {
        name: "app".into(),
        context: Some(testsupport::CONTEXT.into()),
        path: "k8s/".into(),
        namespace: Some(ns.into()),
    }
}

const APP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: production
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: registry.invalid/web:1.0
";

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
    reconcile(
        cluster,
        &spec(ns),
        &files(app),
        &ctx(m, &BTreeMap::new()),
        act,
    )
    .await
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
    let objects = load_source(&spec(ns), &files(APP)).unwrap();
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
    let (eval, _) = reconcile_app(&cluster, &ns.name, APP, &m, false)
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
    let objects = load_source(&spec(&ns.name), &files(APP)).unwrap();
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
    let (eval, changes) = reconcile_app(&cluster, &ns.name, APP, &m, true)
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
    let (after, _) = reconcile_app(&cluster, &ns.name, APP, &m, false)
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
    let (eval, changes) = reconcile_app(&cluster, &ns.name, APP, &m, true)
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
    let (eval, changes) = reconcile_app(&cluster, &ns.name, APP, &m, true)
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
    let (after, _) = reconcile_app(&cluster, &ns.name, APP, &m, false)
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
    let (eval, changes) = reconcile_app(&cluster, &ns.name, APP, &m, true)
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
    let (after, _) = reconcile_app(&cluster, &ns.name, APP, &m, false)
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
    let broken = APP.replace("  name: web\n", "");
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
    let app = APP.replace(
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
