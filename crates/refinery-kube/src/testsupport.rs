//! Test support against a real API server: one control plane (etcd, kube-apiserver,
//! kube-controller-manager on 127.0.0.1, started by `scripts/k8s-control-plane.sh` and shared by
//! every test binary), and a namespace per test, labelled `io.refinery.test=<run id>` and deleted
//! on drop. A machine without it fails loudly: the script builds and starts it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::json;

use crate::{KubeCluster, ObjectRef};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cache_bin() -> PathBuf {
    std::env::var_os("REFINERY_K8S_CACHE")
        .map_or_else(|| PathBuf::from("/var/cache/refinery-k8s"), PathBuf::from)
        .join("bin")
}

/// The kubeconfig of the shared test control plane: `REFINERY_K8S_KUBECONFIG` when set, else
/// the one the setup script starts (once; later calls and other test binaries reuse it).
///
/// # Panics
/// When the control plane cannot be built or started: the tests need it.
pub fn kubeconfig() -> PathBuf {
    static KC: OnceLock<PathBuf> = OnceLock::new();
    KC.get_or_init(|| {
        if let Some(p) = std::env::var_os("REFINERY_K8S_KUBECONFIG") {
            return PathBuf::from(p);
        }
        let dir = std::env::temp_dir().join("refinery-k8s-test");
        let lock = std::env::temp_dir().join("refinery-k8s-test.lock");
        let script = repo_root().join("scripts/k8s-control-plane.sh");
        // `-o`: the daemons the script starts must not inherit (and hold) the lock.
        let out = Command::new("flock")
            .arg("-o")
            .arg(&lock)
            .arg("bash")
            .arg(&script)
            .arg("start")
            .arg(&dir)
            .output()
            .expect("run scripts/k8s-control-plane.sh");
        assert!(
            out.status.success(),
            "scripts/k8s-control-plane.sh start failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        PathBuf::from(stdout.lines().last().unwrap_or_default().trim())
    })
    .clone()
}

/// The Deployment `web` the tests declare: one replica of `registry.invalid/web:1.0` (no registry
/// is needed: without a kubelet no Pod ever pulls it).
pub const DEPLOYMENT: &str = "apiVersion: apps/v1
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

/// The ConfigMap `settings` the tests declare (`data.mode: production`).
pub const CONFIG_MAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: production
";

/// [`CONFIG_MAP`] and [`DEPLOYMENT`], as one file of two documents.
#[must_use]
pub fn app() -> String {
    format!("{CONFIG_MAP}---\n{DEPLOYMENT}")
}

/// The context name the setup script writes.
pub const CONTEXT: &str = "refinery-test";

/// A client for the shared control plane.
///
/// # Panics
/// When it cannot connect.
pub async fn cluster() -> KubeCluster {
    let _ = rustls::crypto::ring::default_provider().install_default();
    KubeCluster::connect(Some(&kubeconfig()), Some(CONTEXT))
        .await
        .expect("connect to the test API server")
}

/// A namespace for one test, deleted (with everything in it) on drop.
pub struct TestNamespace {
    pub name: String,
    pub run_id: String,
}

impl TestNamespace {
    /// Creates `rt-<prefix>-<run id>`.
    ///
    /// # Panics
    /// When it cannot be created.
    pub async fn new(cluster: &KubeCluster, prefix: &str) -> TestNamespace {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let run_id = format!(
            "{:x}{:x}{}",
            std::process::id(),
            nanos % 0xfffff,
            N.fetch_add(1, Ordering::Relaxed)
        );
        let name = format!("rt-{prefix}-{run_id}");
        let r = ObjectRef {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            namespace: String::new(),
            name: name.clone(),
        };
        cluster
            .create(
                &r,
                &json!({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": name, "labels": {"io.refinery.test": run_id}}}),
            )
            .await
            .expect("create test namespace");
        TestNamespace { name, run_id }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let _ = Command::new(cache_bin().join("kubectl"))
            .arg("--kubeconfig")
            .arg(kubeconfig())
            .args(["delete", "namespace", &self.name, "--wait=false"])
            .output();
    }
}
