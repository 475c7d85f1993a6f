//! `kubernetes:` sources beside containers: `plan`, `apply` and `status` against the real test
//! API server (see `refinery_kube::testsupport`), each test in its own namespace.

use refinery_kube::ObjectRef;
use refinery_kube::testsupport::{self, TestNamespace};
use serde_json::json;

use crate::common::{Env, Run};

const APP: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: production}
---
apiVersion: apps/v1
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

/// `refinery <args> --repo <repo>` with the test control plane's kubeconfig.
async fn refinery(env: &Env, args: &[&str]) -> Run {
    let mut full: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    full.push("--repo".into());
    full.push(env.repo.path().to_string_lossy().into_owned());
    let kubeconfig = testsupport::kubeconfig();
    tokio::task::spawn_blocking(move || {
        let output = assert_cmd::Command::cargo_bin("refinery")
            .expect("the `refinery` binary is built for integration tests")
            .args(&full)
            .env("NO_COLOR", "1")
            .env("CI", "1")
            .env("KUBECONFIG", kubeconfig)
            .env_remove("REFINERY_REPO")
            .env_remove("REFINERY_REV")
            .write_stdin("")
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .expect("run `refinery`");
        Run {
            args: full,
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .expect("the `refinery` runner thread panicked")
}

#[tokio::test]
async fn kubernetes_source_plan_apply_status_and_patched_field_restored() {
    let env = Env::new().await;
    let cluster = testsupport::cluster().await;
    let ns = TestNamespace::new(&cluster, "cli").await;
    env.commit_file("k8s/app.yaml", APP);
    env.commit_manifest(&format!(
        "containers: []\nkubernetes:\n  - name: app\n    context: {}\n    path: k8s/\n    namespace: {}\n",
        testsupport::CONTEXT,
        ns.name
    ));
    let web = format!("k8s/{}/{}/deployment/web", testsupport::CONTEXT, ns.name);
    let settings = format!(
        "k8s/{}/{}/configmap/settings",
        testsupport::CONTEXT,
        ns.name
    );

    refinery(&env, &["plan"])
        .await
        .code(3)
        .row(&[&web, "missing", "create"])
        .row(&[&settings, "missing", "create"]);
    refinery(&env, &["apply", "--yes"])
        .await
        .code(0)
        .stdout_has(&format!("{web} created"))
        .stdout_has(&format!("{settings} created"));
    refinery(&env, &["plan"])
        .await
        .code(0)
        .stdout_has("in sync");
    refinery(&env, &["status"]).await.code(0).row(&[
        "k8s/app",
        "deployment/web",
        "registry.invalid/web:1.0",
        "present",
    ]);

    // A field Refinery manages, changed by hand.
    let r = ObjectRef {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: ns.name.clone(),
        name: "web".into(),
    };
    cluster
        .merge_patch(&r, &json!({"spec": {"replicas": 4}}))
        .await
        .unwrap();
    refinery(&env, &["plan"])
        .await
        .code(3)
        .row(&[&web, "config", "recreate"])
        .stdout_has("spec.replicas: 4 → 1");
    refinery(&env, &["apply", "--yes"])
        .await
        .code(0)
        .stdout_has(&format!("{web} recreated"));
    let live = cluster.get(&r).await.unwrap().unwrap();
    assert_eq!(live["spec"]["replicas"], 1);
    refinery(&env, &["plan"]).await.code(0);
}

#[tokio::test]
async fn kubernetes_source_with_a_broken_manifest_changes_nothing() {
    let env = Env::new().await;
    let cluster = testsupport::cluster().await;
    let ns = TestNamespace::new(&cluster, "clibad").await;
    env.commit_file(
        "k8s/app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
    );
    env.commit_manifest(&format!(
        "containers: []\nkubernetes:\n  - name: app\n    context: {}\n    path: k8s/\n    namespace: {}\n",
        testsupport::CONTEXT,
        ns.name
    ));
    refinery(&env, &["apply", "--yes"])
        .await
        .code(2)
        .stderr_has("invalid kubernetes manifest `k8s/app.yaml (document 1)`: `metadata.name` is missing or not a string")
        .stderr_has("hint: fix the manifest in git");
    refinery(&env, &["plan"])
        .await
        .code(2)
        .stdout_has("kubernetes source `k8s/app` failed");
}
