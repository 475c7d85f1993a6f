//! `kubernetes:` sources beside containers: `plan`, `apply` and `status` against the real test
//! API server (see `refinery_kube::testsupport`), each test in its own namespace.

use refinery_kube::ObjectRef;
use refinery_kube::testsupport::{self, TestNamespace};
use serde_json::json;

use crate::common::{Env, Run};

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

/// The id and the place of the fixture's ConfigMap `settings` in `ns`.
fn settings_config_map(ns: &TestNamespace) -> (String, ObjectRef) {
    (
        format!(
            "k8s/{}/{}/configmap/settings",
            testsupport::CONTEXT,
            ns.name
        ),
        ObjectRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: ns.name.clone(),
            name: "settings".into(),
        },
    )
}

#[tokio::test]
async fn kubernetes_source_plan_apply_status_and_patched_field_restored() {
    let env = Env::new().await;
    let cluster = testsupport::cluster().await;
    let ns = TestNamespace::new(&cluster, "cli").await;
    env.commit_file("k8s/app.yaml", &testsupport::app());
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

    // On record under the source, as the daemon records it.
    let ledger = std::fs::read_to_string(env.repo.path().join("ledger/container_ledger.jsonl"))
        .expect("the ledger");
    let about_web: Vec<serde_json::Value> = ledger
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["resource"] == web.as_str())
        .collect();
    assert!(about_web.len() >= 3, "{ledger}");
    assert!(
        about_web.iter().all(|e| e["node"] == "k8s/app"),
        "{about_web:#?}"
    );
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

#[tokio::test]
async fn kubernetes_source_object_removed_from_git_is_pruned_only_with_prune() {
    let env = Env::new().await;
    let cluster = testsupport::cluster().await;
    let ns = TestNamespace::new(&cluster, "cliprune").await;
    let source = |prune: bool| {
        format!(
            "containers: []\nkubernetes:\n  - name: app\n    context: {}\n    path: k8s/\n    namespace: {}\n    prune: {prune}\n",
            testsupport::CONTEXT,
            ns.name
        )
    };
    env.commit_file("k8s/app.yaml", &testsupport::app());
    env.commit_manifest(&source(false));
    refinery(&env, &["apply", "--yes"]).await.code(0);
    let (settings, cm) = settings_config_map(&ns);

    // The ConfigMap leaves git: an orphan, reported but kept without `prune`.
    env.commit_file("k8s/app.yaml", testsupport::DEPLOYMENT);
    refinery(&env, &["plan"])
        .await
        .code(3)
        .row(&[&settings, "orphan", "alert"]);
    refinery(&env, &["status"]).await.code(3).row(&[
        "k8s/app",
        "configmap/settings",
        "-",
        "orphan",
    ]);
    refinery(&env, &["apply", "--yes"]).await.code(0);
    assert!(cluster.get(&cm).await.unwrap().is_some());

    // `prune: true`, but the manifest is in audit mode: still kept.
    env.commit_file(
        "refinery.yaml",
        &format!(
            "config: {{selector: \"{}\", mode: audit}}\n{}",
            env.selector(),
            source(true)
        ),
    );
    refinery(&env, &["plan"])
        .await
        .code(3)
        .row(&[&settings, "orphan", "alert"]);

    // `prune: true` in enforce mode: deleted.
    env.commit_manifest(&source(true));
    refinery(&env, &["plan"])
        .await
        .code(3)
        .row(&[&settings, "orphan", "remove"]);
    refinery(&env, &["apply", "--yes"])
        .await
        .code(0)
        .stdout_has(&format!("{settings} removed"));
    for _ in 0..50 {
        if cluster.get(&cm).await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(cluster.get(&cm).await.unwrap().is_none());
    refinery(&env, &["plan"]).await.code(0);
}

#[tokio::test]
async fn kubernetes_object_moved_to_another_source_is_not_pruned() {
    let env = Env::new().await;
    let cluster = testsupport::cluster().await;
    let ns = TestNamespace::new(&cluster, "climove").await;
    env.commit_file("k8s/app.yaml", &testsupport::app());
    env.commit_file(
        "k8s-more/extra.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n",
    );
    env.commit_manifest(&format!(
        "containers: []\nkubernetes:\n\
         \x20 - {{name: app, context: {ctx}, path: k8s/, namespace: {ns}, prune: true}}\n\
         \x20 - {{name: more, context: {ctx}, path: k8s-more/, namespace: {ns}, prune: true}}\n",
        ctx = testsupport::CONTEXT,
        ns = ns.name
    ));
    refinery(&env, &["apply", "--yes"]).await.code(0);
    let (settings, cm) = settings_config_map(&ns);

    // The ConfigMap moves from `app` to `more` in one commit: `more` takes it over, nobody
    // prunes it.
    env.commit_file("k8s/app.yaml", testsupport::DEPLOYMENT);
    env.commit_file("k8s-more/settings.yaml", testsupport::CONFIG_MAP);
    let plan = refinery(&env, &["plan"]).await;
    plan.code(3).row(&[&settings, "config", "recreate"]);
    assert!(!plan.stdout.contains("orphan"), "{}", plan.stdout);
    refinery(&env, &["apply", "--yes"])
        .await
        .code(0)
        .stdout_has(&format!("{settings} recreated"));
    let live = cluster.get(&cm).await.unwrap().unwrap();
    assert_eq!(live["metadata"]["labels"]["refinery.io/source"], "more");
    refinery(&env, &["plan"]).await.code(0);

    // `more` drops it again while `app` is broken: reported, not pruned (what `app` declares is
    // unknown).
    env.commit_file("k8s-more/settings.yaml", "");
    env.commit_file(
        "k8s/app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
    );
    refinery(&env, &["apply", "--yes"]).await.code(2);
    refinery(&env, &["plan"])
        .await
        .code(2)
        .row(&[&settings, "orphan", "alert"]);
    assert!(cluster.get(&cm).await.unwrap().is_some());
}
