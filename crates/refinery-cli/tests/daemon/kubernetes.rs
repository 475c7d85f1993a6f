//! `refinery run` with a `kubernetes:` source against the real test API server: what is missing
//! is applied, an image changed out of band is rolled back like `kubectl rollout undo`, an object
//! removed from git is pruned, all in the ledger, the status page and the metrics.

use refinery_kube::testsupport::{self, TestNamespace};
use refinery_kube::{ObjectRef, revision};
use serde_json::json;

use crate::common::Env;
use crate::harness::{Daemon, eventually, kind, resource};

#[tokio::test]
async fn daemon_kubernetes_missing_applied_and_image_drift_rolled_back() {
    let env = Env::new().await;
    let cluster = testsupport::cluster().await;
    let ns = TestNamespace::new(&cluster, "daemon").await;
    env.commit_file("k8s/app.yaml", testsupport::DEPLOYMENT);
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
    env.commit_file("k8s/app.yaml", testsupport::DEPLOYMENT);
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

#[tokio::test]
async fn daemon_kubernetes_prunes_what_left_git_and_shows_objects_in_status_and_metrics() {
    use crate::observability::{free_port, get, parse_metrics};
    let env = Env::new().await;
    let cluster = testsupport::cluster().await;
    let ns = TestNamespace::new(&cluster, "dprune").await;
    env.commit_file("k8s/app.yaml", &testsupport::app());
    let manifest = format!(
        "containers: []\nkubernetes:\n  - name: app\n    context: {}\n    path: k8s/\n    namespace: {}\n    prune: true\n",
        testsupport::CONTEXT,
        ns.name
    );
    env.commit_manifest(&manifest);
    let kubeconfig = testsupport::kubeconfig();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut d = Daemon::start_with_env(
        env.repo.path(),
        &["--check-interval", "500ms", "--listen", &listen],
        &[("KUBECONFIG", kubeconfig.as_os_str())],
    );
    let base = format!("http://{listen}");
    let settings = format!(
        "k8s/{}/{}/configmap/settings",
        testsupport::CONTEXT,
        ns.name
    );
    let web = format!("k8s/{}/{}/deployment/web", testsupport::CONTEXT, ns.name);
    d.wait_entry("created", |e| {
        resource(e) == settings && e["outcome"] == "created"
    })
    .await;

    // The status page lists the objects under the node `k8s/app`, in sync once applied.
    let status = eventually("objects in sync on the status page", &mut d, || async {
        let (code, body) = get(&format!("{base}/api/v1/status")).await;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let node = v["nodes"]
            .as_array()?
            .iter()
            .find(|n| n["name"] == "k8s/app")?
            .clone();
        let synced = node["resources"]
            .as_array()?
            .iter()
            .all(|r| r["status"] == "in_sync");
        (code == 200 && synced && node["resources"].as_array()?.len() == 2).then_some(node)
    })
    .await;
    let row = |id: &str| {
        status["resources"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["id"] == id).cloned())
            .unwrap_or_default()
    };
    assert_eq!(row(&web)["name"], "deployment/web");
    assert_eq!(row(&web)["image"], "registry.invalid/web:1.0");
    assert_eq!(row(&web)["state"], "present");
    assert_eq!(row(&settings)["declared"], true);
    assert_eq!(status["reachable"], true);

    // The ConfigMap leaves git: an orphan, pruned and on record.
    let cm = ObjectRef {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: ns.name.clone(),
        name: "settings".into(),
    };
    env.commit_file("k8s/app.yaml", testsupport::DEPLOYMENT);
    let pruned = d
        .wait_entry("pruned", |e| {
            resource(e) == settings && e["outcome"] == "removed"
        })
        .await;
    assert_eq!(pruned["node"], "k8s/app", "{pruned}");
    eventually("configmap deleted", &mut d, || async {
        cluster
            .get(&cm)
            .await
            .ok()
            .and_then(|v| v.is_none().then_some(()))
    })
    .await;
    assert!(
        d.entry_values()
            .iter()
            .any(|e| resource(e) == settings && e["drift"] == "orphan"),
        "the orphan drift is on record"
    );

    // The metrics count the source's drifts and actions like a node's.
    let (code, text) = get(&format!("{base}/metrics")).await;
    assert_eq!(code, 200);
    let m = parse_metrics(&text);
    let metric = |k: &str| m.get(k).copied().unwrap_or(-1.0);
    assert_eq!(
        metric("refinery_actions_total{node=\"k8s/app\",outcome=\"removed\"}"),
        1.0,
        "{text}"
    );
    assert!(
        metric("refinery_actions_total{node=\"k8s/app\",outcome=\"created\"}") >= 2.0,
        "{text}"
    );
    assert_eq!(
        metric("refinery_node_reachable{node=\"k8s/app\"}"),
        1.0,
        "{text}"
    );
    for kind in ["orphan", "missing", "config"] {
        assert!(
            m.contains_key(&format!(
                "refinery_drifts{{node=\"k8s/app\",drift=\"{kind}\"}}"
            )),
            "{text}"
        );
    }
    d.stop().await;
}

#[tokio::test]
async fn daemon_kubernetes_stuck_rollout_rolls_the_revision_back() {
    let env = Env::new().await;
    let cluster = testsupport::cluster().await;
    let ns = TestNamespace::new(&cluster, "drevision").await;
    // Status drift is only reported here, so the stuck rollout stays stuck (no restarts).
    let manifest = format!(
        "containers: []\nkubernetes:\n  - name: app\n    context: {}\n    path: k8s/\n    namespace: {}\n\
         drift_rules:\n  status_drift: {{action: alert}}\n",
        testsupport::CONTEXT,
        ns.name
    );
    env.commit_file(
        "refinery.yaml",
        &env.manifest(&manifest)
            .replace("config: {", "config: {health_deadline: 4s, "),
    );
    let commit = |deployment: &str| env.commit_file("k8s/app.yaml", deployment);
    // No Pod ever becomes available without a kubelet: only a rollout of no replicas completes.
    let good = commit(&testsupport::DEPLOYMENT.replace("  replicas: 1\n", "  replicas: 0\n"));
    let kubeconfig = testsupport::kubeconfig();
    let mut d = Daemon::start_with_env(
        env.repo.path(),
        &["--check-interval", "500ms"],
        &[("KUBECONFIG", kubeconfig.as_os_str())],
    );
    let state_file = d.state_dir.join("state.json");
    eventually("good revision healthy", &mut d, || async {
        let state = std::fs::read_to_string(&state_file).ok();
        state.filter(|s| s.contains(&format!("\"last_healthy\": \"{good}\"")))
    })
    .await;

    // A revision with a new image whose rollout cannot finish in time.
    let bad = commit(
        &testsupport::DEPLOYMENT
            .replace(
                "  replicas: 1\n",
                "  replicas: 1\n  progressDeadlineSeconds: 1\n",
            )
            .replace("web:1.0", "web:2.0"),
    );
    let e = d
        .wait_entry("rolled back", |e| {
            kind(e) == "alert"
                && e["message"].as_str().is_some_and(|m| {
                    m.contains("rolled back") && m.contains(&bad[..12]) && m.contains(&good[..12])
                })
        })
        .await;
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("ProgressDeadlineExceeded")),
        "{e}"
    );
    let r = ObjectRef {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: ns.name.clone(),
        name: "web".into(),
    };
    // The good revision is applied again: its image and replicas, and the default deadline (the
    // field it does not declare is dropped by the server-side apply).
    eventually("the good revision applied again", &mut d, || async {
        cluster.get(&r).await.ok().flatten().filter(|v| {
            v["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.invalid/web:1.0"
                && v["spec"]["replicas"] == 0
                && v["spec"]["progressDeadlineSeconds"] == 600
        })
    })
    .await;
    d.stop().await;
}
