//! Refinery's Kubernetes adapter: the manifests of a `kubernetes:` source (read from a commit),
//! server-side apply under the field manager `refinery`, drift as core `Drift`s with ids
//! `k8s/CONTEXT/NS/KIND/NAME`, and the actions (re-apply, rollout undo, rollout restart, delete
//! of unauthorized workloads, pruning of what a source applied and no longer declares), and the
//! Leases `refinery run --ha k8s://…` elects on. kube-rs types stay in `convert`, `kube_cluster`
//! and `lease`.

mod convert;
pub mod diff;
mod kube_cluster;
mod kube_error;
mod kube_pass;
pub mod lease;
pub mod source_manifests;

#[cfg(any(test, feature = "testing"))]
pub mod testsupport;

pub use kube_cluster::{FIELD_MANAGER, KindRef, KubeCluster, ObjectRef};
pub use kube_error::{KubeError, Result};
pub use kube_pass::{
    KubeChange, KubeEval, Observation, apply_all, execute, observe, resource_id, revision,
    rollout_undo, watch_source,
};
pub use source_manifests::{KubeObject, MANAGED_BY_LABEL, SOURCE_LABEL, load_source};
