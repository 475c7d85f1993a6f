//! `refinery run --ha URL`: leader election, so one of several instances acts and the others
//! stand by, on an engine that already exists, never a home-made consensus:
//! - `etcd://HOST:PORT/PREFIX`: an etcd lease and a create-if-absent key ([`etcd_elector`]),
//!   spoken through etcd's JSON gateway ([`etcd_gateway`]);
//! - `k8s://CONTEXT/NAMESPACE/NAME`: a `coordination.k8s.io` Lease ([`lease_elector`]).
//!
//! Both publish the same [`Leadership`]: the role, the leader, its term (a number that grows with
//! every election) and the standbys; and both fence the same way: a leader acts only while its
//! last renewal that the store accepted was *sent* less than half a lease ago
//! ([`Leadership::acting_term`]), so a leader cut off from the store stops acting at least half a
//! lease before a standby may take over.

mod campaign;
mod etcd_elector;
mod etcd_gateway;
mod etcd_tls;
mod ha_status;
mod ha_url;
mod leadership;
mod lease_elector;

pub use etcd_tls::{EtcdTls, TlsFileError};
pub use ha_status::{HaStatus, Role, summary};
pub use ha_url::HaUrl;
pub use leadership::{Leadership, default_id};

/// Reads who leads and who stands by, for `refinery status --ha`.
pub async fn read_status(url: &HaUrl, tls: Option<EtcdTls>) -> Result<HaStatus, String> {
    match url {
        HaUrl::Etcd { host, prefix } => etcd_elector::read_status(url, host, prefix, tls).await,
        HaUrl::Kube {
            context,
            namespace,
            name,
        } => lease_elector::read_status(url, context, namespace, name).await,
    }
}
