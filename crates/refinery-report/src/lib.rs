//! What `refinery run` reports to the outside, as the controller's `Reporter` port:
//!
//! - [`reporter`]: the [`Hub`], which the controller tells of events, passes, ledger entries and
//!   leadership; it feeds the alert channels, the metrics and the status page's model;
//! - [`metrics`]: the Prometheus metrics served at `GET /metrics`;
//! - [`status`]: what the status page and `GET /api/v1/status` show (the CLI serves it);
//! - [`heal_timing`]: when watched containers died, so a heal is timed from the death.

pub mod heal_timing;
pub mod metrics;
pub mod reporter;
pub mod status;

pub use metrics::Metrics;
pub use reporter::{Hub, NodeSummary};
pub use status::Status;

/// The alert channels count what they send in the metrics.
impl refinery_notify::AlertCounter for Metrics {
    fn alert(&self, channel: &str, result: &str) {
        Metrics::alert(self, channel, result);
    }
}
