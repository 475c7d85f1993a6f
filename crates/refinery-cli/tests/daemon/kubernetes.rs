//! `refinery run` with a `kubernetes:` source against the real test API server: what is missing
//! is applied, an image changed out of band is rolled back like `kubectl rollout undo`, and both
//! are in the ledger.

use refinery_kube::testsupport::{self, TestNamespace};
use refinery_kube::{ObjectRef, revision};
use serde_json::json;

use crate::common::Env;
use crate::harness::{Daemon, eventually, resource};

const APP: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - {name: web, image: registry.invalid/web:1.0}
";

#[tokio::test]
async fn daemon_kubernetes_missing_applied_and_image_drift_rolled_back() {
    let env = Env::new().await;
    let cluster = testsupport::cluster().await;
    let ns = TestNamespace::new(&cluster, "daemon").await;
    env.commit_file("k8s/app.yaml", APP);
    env.commit_manifest(&format!(
        "containers: []\nkubernetes:\n  - name: app\n    context: {}\n    path: k8s/\n    namespace: {}\n\
         drift_rules:\n  image_drift: {{action: rollback}}\n",
        testsupport::CONTEXT,
        ns.name
    ));
    let kubeconfig = testsupport::kubeconfig();
    let mut d = Daemon::start_with_env(
        env.repo.path(),
        &["--check-interval", "500ms"],
        &[("KUBECONFIG", kubeconfig.as_os_str())],
    );
    let id = format!("k8s/{}/{}/deployment/web", testsupport::CONTEXT, ns.name);
    let r = ObjectRef {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: ns.name.clone(),
        name: "web".into(),
    };

    // Missing at start: applied, and on record.
    eventually("deployment revision 1", &mut d, || async {
        cluster
            .get(&r)
            .await
            .ok()
            .flatten()
            .filter(|v| revision(v) == Some(1))
    })
    .await;
    d.wait_entry("created", |e| {
        resource(e) == id && e["outcome"] == "created"
    })
    .await;

    // `kubectl set image` by hand: revision 2 runs another image.
    cluster
        .merge_patch(
            &r,
            &json!({"spec": {"template": {"spec": {"containers": [
                {"name": "web", "image": "registry.invalid/web:evil"}]}}}}),
        )
        .await
        .unwrap();
    let live = eventually("rolled back to the declared image", &mut d, || async {
        cluster.get(&r).await.ok().flatten().filter(|v| {
            revision(v) == Some(3)
                && v["spec"]["template"]["spec"]["containers"][0]["image"]
                    == "registry.invalid/web:1.0"
        })
    })
    .await;
    assert_eq!(revision(&live), Some(3));
    d.wait_entry("rolled back", |e| {
        resource(e) == id && e["outcome"] == "rolled_back"
    })
    .await;
    d.stop().await;
}

#[tokio::test]
async fn daemon_kubernetes_watch_restores_patched_field_before_the_periodic_pass() {
    let env = Env::new().await;
    let cluster = testsupport::cluster().await;
    let ns = TestNamespace::new(&cluster, "watch").await;
    env.commit_file("k8s/app.yaml", APP);
    env.commit_manifest(&format!(
        "containers: []\nkubernetes:\n  - name: app\n    context: {}\n    path: k8s/\n    namespace: {}\n",
        testsupport::CONTEXT,
        ns.name
    ));
    let kubeconfig = testsupport::kubeconfig();
    // A full pass only every 10 minutes: what happens sooner comes from the watch.
    let mut d = Daemon::start_with_env(
        env.repo.path(),
        &["--check-interval", "10m"],
        &[("KUBECONFIG", kubeconfig.as_os_str())],
    );
    let r = ObjectRef {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: ns.name.clone(),
        name: "web".into(),
    };
    eventually("deployment applied", &mut d, || async {
        cluster.get(&r).await.ok().flatten()
    })
    .await;
    // Give the watch its initial list, then change a field by hand.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    cluster
        .merge_patch(&r, &json!({"spec": {"replicas": 5}}))
        .await
        .unwrap();
    eventually("replicas restored", &mut d, || async {
        cluster
            .get(&r)
            .await
            .ok()
            .flatten()
            .filter(|v| v["spec"]["replicas"] == 1)
    })
    .await;
    assert!(
        d.log_text().contains("kubernetes change"),
        "the pass came from the watch\n{}",
        d.log_text()
    );
    let id = format!("k8s/{}/{}/deployment/web", testsupport::CONTEXT, ns.name);
    d.wait_entry("recreated", |e| {
        resource(e) == id && e["outcome"] == "recreated"
    })
    .await;
    d.stop().await;
}
