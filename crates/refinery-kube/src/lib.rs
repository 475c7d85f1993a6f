//! Refinery's Kubernetes adapter: the manifests of a `kubernetes:` source (read from a commit),
//! server-side apply under the field manager `refinery`, drift as core `Drift`s with ids
//! `k8s/CONTEXT/NS/KIND/NAME`, and the actions (re-apply, rollout undo, rollout restart, delete
//! of unauthorized workloads). kube-rs types stay in `convert` and `kube_cluster`.

mod convert;
pub mod desired;
pub mod diff;
mod kube_cluster;
mod kube_error;
mod kube_pass;

#[cfg(any(test, feature = "testing"))]
pub mod testsupport;

pub use desired::{KubeObject, load_source};
pub use kube_cluster::{FIELD_MANAGER, KubeCluster, ObjectRef};
pub use kube_error::{KubeError, Result};
pub use kube_pass::{
    KubeChange, KubeEval, apply_all, evaluate, execute, observe, reconcile, resource_id, revision,
    rollout_undo, watch_source,
};
