//! One line of the audit log, in seed 004's JSONL schema (same field names, same order), with
//! the volume and network classes it lacked appended.

use serde::Serialize;

use super::classify::{Class, NodeAudit};
use super::kind::Kind;
use crate::manifest::NodeSpec;

/// Where the audit log goes when `inventory.audit_log` is not set (relative to the repository's
/// work tree, beside the ledger).
pub const DEFAULT_AUDIT_LOG: &str = "ledger/inventory_audit.jsonl";

/// One node's audit, as one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// `2026-01-16T05:53:32Z`
    pub timestamp: String,
    /// The node's `hostname`, else its name.
    pub host: String,
    /// The engine's address for a `tcp://` endpoint, else null.
    pub ip: Option<String>,
    /// The node's `role`, else its name.
    pub env: String,
    pub containers_expected: Vec<String>,
    pub containers_extra: Vec<String>,
    pub containers_protected: Vec<String>,
    pub containers_safe_delete: Vec<String>,
    pub images_expected: Vec<String>,
    pub images_extra: Vec<String>,
    pub images_protected: Vec<String>,
    pub images_safe_delete: Vec<String>,
    pub volumes_expected: Vec<String>,
    pub volumes_extra: Vec<String>,
    pub volumes_protected: Vec<String>,
    pub volumes_safe_delete: Vec<String>,
    pub networks_expected: Vec<String>,
    pub networks_extra: Vec<String>,
    pub networks_protected: Vec<String>,
    pub networks_safe_delete: Vec<String>,
    pub node: String,
    pub mode: String,
}

impl AuditRecord {
    #[must_use]
    pub fn new(audit: &NodeAudit, node: &NodeSpec, now: jiff::Timestamp) -> AuditRecord {
        let n = |kind, class| audit.names(kind, class);
        AuditRecord {
            timestamp: now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            host: node.hostname.clone().unwrap_or_else(|| node.name.clone()),
            ip: node.docker.as_deref().and_then(endpoint_host),
            env: node.role.clone().unwrap_or_else(|| node.name.clone()),
            containers_expected: n(Kind::Container, Class::Expected),
            containers_extra: n(Kind::Container, Class::Extra),
            containers_protected: n(Kind::Container, Class::Protected),
            containers_safe_delete: n(Kind::Container, Class::SafeToDelete),
            images_expected: n(Kind::Image, Class::Expected),
            images_extra: n(Kind::Image, Class::Extra),
            images_protected: n(Kind::Image, Class::Protected),
            images_safe_delete: n(Kind::Image, Class::SafeToDelete),
            volumes_expected: n(Kind::Volume, Class::Expected),
            volumes_extra: n(Kind::Volume, Class::Extra),
            volumes_protected: n(Kind::Volume, Class::Protected),
            volumes_safe_delete: n(Kind::Volume, Class::SafeToDelete),
            networks_expected: n(Kind::Network, Class::Expected),
            networks_extra: n(Kind::Network, Class::Extra),
            networks_protected: n(Kind::Network, Class::Protected),
            networks_safe_delete: n(Kind::Network, Class::SafeToDelete),
            node: audit.node.clone(),
            mode: audit.mode.as_str().to_owned(),
        }
    }

    /// The JSON line, without the newline.
    #[must_use]
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `tcp://178.128.112.214:2376` → `178.128.112.214`; `ssh://root@host` → `host`.
fn endpoint_host(endpoint: &str) -> Option<String> {
    let (scheme, rest) = endpoint.split_once("://")?;
    if scheme == "unix" || scheme == "npipe" {
        return None;
    }
    let authority = rest.split('/').next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::endpoint_host;

    #[test]
    fn endpoint_host_of_tcp_ssh_and_unix() {
        assert_eq!(
            endpoint_host("tcp://178.128.112.214:2376").as_deref(),
            Some("178.128.112.214")
        );
        assert_eq!(
            endpoint_host("ssh://root@droplet").as_deref(),
            Some("droplet")
        );
        assert_eq!(endpoint_host("unix:///var/run/docker.sock"), None);
    }
}
