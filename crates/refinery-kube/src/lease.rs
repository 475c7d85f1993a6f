//! `coordination.k8s.io/v1` Leases, the record `refinery run --ha k8s://…` elects its leader on.
//!
//! Only the reads and the optimistic writes an election needs: every write carries the
//! `resourceVersion` it was decided on, so of two instances racing for the same record exactly one
//! wins and the other is told [`Write::Lost`].

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, DeleteParams, ListParams, PostParams};

use crate::KubeCluster;
use crate::convert::classify;
use crate::kube_error::{KubeError, Result};

/// What a Lease says, as the election reads and writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The object's name (filled in by reads).
    pub name: String,
    /// Who holds it; empty when released.
    pub holder: String,
    pub duration_secs: i32,
    /// How many times it changed hands: the election's term.
    pub transitions: i32,
    pub acquired: Option<Timestamp>,
    pub renewed: Option<Timestamp>,
    /// The version read (the precondition of the next write; empty to create).
    pub resource_version: String,
}

impl LeaseRecord {
    fn from_lease(l: Lease) -> LeaseRecord {
        let spec = l.spec.unwrap_or_default();
        LeaseRecord {
            name: l.metadata.name.unwrap_or_default(),
            holder: spec.holder_identity.unwrap_or_default(),
            duration_secs: spec.lease_duration_seconds.unwrap_or(0),
            transitions: spec.lease_transitions.unwrap_or(0),
            acquired: spec.acquire_time.map(|t| t.0),
            renewed: spec.renew_time.map(|t| t.0),
            resource_version: l.metadata.resource_version.unwrap_or_default(),
        }
    }

    fn to_lease(&self, name: &str, labels: &BTreeMap<String, String>) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: (!labels.is_empty()).then(|| labels.clone()),
                resource_version: (!self.resource_version.is_empty())
                    .then(|| self.resource_version.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: (!self.holder.is_empty()).then(|| self.holder.clone()),
                lease_duration_seconds: Some(self.duration_secs),
                lease_transitions: Some(self.transitions),
                acquire_time: self.acquired.map(MicroTime),
                renew_time: self.renewed.map(MicroTime),
                ..LeaseSpec::default()
            }),
        }
    }
}

/// How an optimistic write ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Written: the record as stored (with its new version).
    Done(LeaseRecord),
    /// Somebody wrote (or created) it first.
    Lost,
}

/// The Leases of one namespace.
pub struct Leases {
    api: Api<Lease>,
    namespace: String,
}

impl KubeCluster {
    /// The Leases of `namespace`.
    #[must_use]
    pub fn leases(&self, namespace: &str) -> Leases {
        Leases {
            api: Api::namespaced(self.client(), namespace),
            namespace: namespace.to_owned(),
        }
    }
}

impl Leases {
    fn what(&self, name: &str) -> String {
        format!("{}/Lease/{name}", self.namespace)
    }

    /// The Lease `name`, `None` when there is none.
    pub async fn get(&self, name: &str) -> Result<Option<LeaseRecord>> {
        self.api
            .get_opt(name)
            .await
            .map(|l| l.map(LeaseRecord::from_lease))
            .map_err(|e| classify(e, "get", &self.what(name)))
    }

    /// Every Lease carrying `label=value`.
    pub async fn list(&self, label: &str, value: &str) -> Result<Vec<LeaseRecord>> {
        let lp = ListParams::default().labels(&format!("{label}={value}"));
        self.api
            .list(&lp)
            .await
            .map(|l| l.items.into_iter().map(LeaseRecord::from_lease).collect())
            .map_err(|e| classify(e, "list", &format!("{}/Lease", self.namespace)))
    }

    /// Creates `name` as `rec` says (when `rec` has no version) or replaces the version `rec`
    /// was read at; [`Write::Lost`] when another writer got there first.
    pub async fn write(
        &self,
        name: &str,
        rec: &LeaseRecord,
        labels: &BTreeMap<String, String>,
    ) -> Result<Write> {
        let lease = rec.to_lease(name, labels);
        let pp = PostParams::default();
        let (action, res) = if rec.resource_version.is_empty() {
            ("create", self.api.create(&pp, &lease).await)
        } else {
            ("replace", self.api.replace(name, &pp, &lease).await)
        };
        match res {
            Ok(l) => Ok(Write::Done(LeaseRecord::from_lease(l))),
            Err(e) => match classify(e, action, &self.what(name)) {
                // 409: created meanwhile, or replaced since it was read; 404: deleted since.
                KubeError::Conflict { .. } | KubeError::NotFound { .. } => Ok(Write::Lost),
                e => Err(e),
            },
        }
    }

    /// Deletes `name`; gone already is fine.
    pub async fn delete(&self, name: &str) -> Result<()> {
        match self.api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(e) => match classify(e, "delete", &self.what(name)) {
                KubeError::NotFound { .. } => Ok(()),
                e => Err(e),
            },
        }
    }
}
