//! The daemon's Prometheus metrics (prometheus-client), served as text at `GET /metrics`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// The drift types, so each node always shows all six series (0 when in sync); `orphan` is a
/// Kubernetes object a source applied and no longer declares.
pub use refinery_core::drift::DRIFT_TYPES;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabels {
    pub node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DriftLabels {
    pub node: String,
    pub drift: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub node: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeRevisionLabels {
    pub node: String,
    pub revision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RevisionLabels {
    /// `in_force`, `pending`, `last_healthy`.
    pub role: String,
    pub revision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabels {
    pub channel: String,
    /// `sent`, `failed`, `retried`, `filtered`, `rate_limited`, `dropped`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RegistryLabels {
    /// The registry host (`docker.io`, `ghcr.io`, `127.0.0.1:5000`).
    pub registry: String,
}

/// Every metric, registered once. Cloned handles update the same values.
pub struct Metrics {
    registry: Registry,
    pub drifts: Family<DriftLabels, Gauge>,
    pub actions: Family<OutcomeLabels, Counter>,
    pub pass_duration: Histogram,
    pub event_to_action: Histogram,
    pub last_pass: Family<NodeLabels, Gauge<f64, AtomicU64>>,
    pub node_revision: Family<NodeRevisionLabels, Gauge>,
    pub reachable: Family<NodeLabels, Gauge>,
    pub ledger_entries: Counter,
    pub ledger_seq: Gauge,
    pub revision: Family<RevisionLabels, Gauge>,
    pub alerts: Family<AlertLabels, Counter>,
    /// Registry checks that failed (update digests, tag listings, pulls again), by registry host.
    pub registry_check_failures: Family<RegistryLabels, Counter>,
    /// `--ha`: 1 while this instance leads and may act, else 0.
    pub ha_leader: Gauge,
    /// `--ha`: the leader's term as this instance last saw it.
    pub ha_term: Gauge,
    /// The process's resident memory, read at each scrape.
    pub resident: Gauge,
    node_revs: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            registry: Registry::default(),
            drifts: Family::default(),
            actions: Family::default(),
            // 10 ms … ~82 s
            pass_duration: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            // 5 ms … ~41 s
            event_to_action: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            last_pass: Family::default(),
            node_revision: Family::default(),
            reachable: Family::default(),
            ledger_entries: Counter::default(),
            ledger_seq: Gauge::default(),
            revision: Family::default(),
            alerts: Family::default(),
            registry_check_failures: Family::default(),
            ha_leader: Gauge::default(),
            ha_term: Gauge::default(),
            resident: Gauge::default(),
            node_revs: std::sync::Mutex::default(),
        };
        registry.register(
            "refinery_build",
            "The refinery version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register(
            "refinery_drifts",
            "Drifted resources now, by node and drift type",
            m.drifts.clone(),
        );
        registry.register(
            "refinery_actions",
            "Actions carried out, by node and outcome",
            m.actions.clone(),
        );
        registry.register(
            "refinery_pass_duration_seconds",
            "How long one full pass (observe, decide, act) took",
            m.pass_duration.clone(),
        );
        registry.register(
            "refinery_event_to_action_seconds",
            "From an engine event (a container died, say) to the action that answered it being recorded",
            m.event_to_action.clone(),
        );
        registry.register(
            "refinery_last_successful_pass_timestamp_seconds",
            "When a pass last observed the node (Unix time)",
            m.last_pass.clone(),
        );
        registry.register(
            "refinery_node_revision_info",
            "The git revision last enforced on the node (value 1)",
            m.node_revision.clone(),
        );
        registry.register(
            "refinery_node_reachable",
            "1 when the node's engine answered the last pass, else 0",
            m.reachable.clone(),
        );
        registry.register(
            "refinery_ledger_entries",
            "Ledger entries appended since the daemon started",
            m.ledger_entries.clone(),
        );
        registry.register(
            "refinery_ledger_seq",
            "The sequence number of the last ledger entry",
            m.ledger_seq.clone(),
        );
        registry.register(
            "refinery_revision_info",
            "Git revisions by role: in_force, pending (not yet healthy), last_healthy (value 1)",
            m.revision.clone(),
        );
        registry.register(
            "refinery_alerts",
            "Alert messages by channel and result",
            m.alerts.clone(),
        );
        registry.register(
            "refinery_registry_check_failures",
            "Registry checks that failed (image update digests, image_policy tag listings, pull_policy pulls again; outage, refused, rate-limited), by registry",
            m.registry_check_failures.clone(),
        );
        registry.register(
            "refinery_ha_leader",
            "Under --ha: 1 while this instance leads and may act, else 0",
            m.ha_leader.clone(),
        );
        registry.register(
            "refinery_ha_term",
            "Under --ha: the leader's term (the create revision of the etcd leader key)",
            m.ha_term.clone(),
        );
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of the refinery process in bytes (VmRSS), read at each scrape",
            m.resident.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts one failed registry check.
    pub fn registry_check_failed(&self, registry: &str) {
        self.registry_check_failures
            .get_or_create(&RegistryLabels {
                registry: registry.to_owned(),
            })
            .inc();
    }

    /// Counts one alert result on a channel.
    pub fn alert(&self, channel: &str, result: &str) {
        self.alerts
            .get_or_create(&AlertLabels {
                channel: channel.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Sets one node's drift counts (every type, 0 when absent).
    pub fn set_drifts(&self, node: &str, counts: &[(&str, i64)]) {
        for t in DRIFT_TYPES {
            let n = counts
                .iter()
                .filter(|(k, _)| *k == t)
                .map(|(_, v)| *v)
                .sum();
            self.drifts
                .get_or_create(&DriftLabels {
                    node: node.to_owned(),
                    drift: t.to_owned(),
                })
                .set(n);
        }
    }

    /// The revision last enforced on a node: one series per node, the old one removed.
    pub fn set_node_revision(&self, node: &str, revision: &str) {
        let labels = NodeRevisionLabels {
            node: node.to_owned(),
            revision: revision.to_owned(),
        };
        if let Ok(mut last) = self.node_revs.lock()
            && let Some(old) = last.insert(node.to_owned(), revision.to_owned())
            && old != revision
        {
            self.node_revision.remove(&NodeRevisionLabels {
                node: node.to_owned(),
                revision: old,
            });
        }
        self.node_revision.get_or_create(&labels).set(1);
    }

    /// The revisions by role; a role without a revision has no series.
    pub fn set_revisions(&self, roles: &[(&str, Option<&str>)]) {
        self.revision.clear();
        for (role, rev) in roles {
            if let Some(rev) = rev {
                self.revision
                    .get_or_create(&RevisionLabels {
                        role: (*role).to_owned(),
                        revision: (*rev).to_owned(),
                    })
                    .set(1);
            }
        }
    }

    /// The Prometheus text exposition (OpenMetrics-compatible).
    #[must_use]
    pub fn encode(&self) -> String {
        if let Some(bytes) = resident_bytes() {
            self.resident.set(bytes);
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "failed to encode the metrics");
        }
        out
    }
}

/// This process's resident memory (`VmRSS` in `/proc/self/status`); `None` off Linux.
fn resident_bytes() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: i64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_lists_every_family_with_help_and_eof() {
        let m = Metrics::new();
        m.set_drifts("lyra", &[("missing", 2)]);
        m.actions
            .get_or_create(&OutcomeLabels {
                node: "lyra".into(),
                outcome: "restarted".into(),
            })
            .inc();
        m.alert("discord#0", "sent");
        m.registry_check_failed("127.0.0.1:5000");
        m.registry_check_failed("127.0.0.1:5000");
        m.set_revisions(&[("in_force", Some("abc")), ("pending", None)]);
        let text = m.encode();
        assert!(
            text.contains("refinery_drifts{node=\"lyra\",drift=\"missing\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("refinery_drifts{node=\"lyra\",drift=\"status\"} 0"),
            "{text}"
        );
        assert!(text.contains("refinery_actions_total{node=\"lyra\",outcome=\"restarted\"} 1"));
        assert!(text.contains("refinery_alerts_total{channel=\"discord#0\",result=\"sent\"} 1"));
        assert!(
            text.contains("refinery_registry_check_failures_total{registry=\"127.0.0.1:5000\"} 2"),
            "{text}"
        );
        assert!(text.contains("refinery_revision_info{role=\"in_force\",revision=\"abc\"} 1"));
        assert!(text.contains("refinery_build_info{version="));
        assert!(text.contains("# TYPE refinery_pass_duration_seconds histogram"));
        let rss = text
            .lines()
            .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
            .and_then(|v| v.parse::<i64>().ok());
        assert!(rss.is_some_and(|b| b > 1 << 20), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
