//! Where the controller reports to the outside besides the ledger.

use std::future::Future;
use std::pin::Pin;

use jiff::Timestamp;
use refinery_core::daemon_state::DaemonState;
use refinery_core::ledger::Entry;
use refinery_core::{Manifest, Observed, RuntimeError};
use refinery_engine::Evaluation;
use tokio::time::Instant;

use crate::desired::Desired;
use crate::kube_sources::KubePass;

/// Alert channels, metrics and the status page (the CLI's hub). None of these may wait on the
/// network: the loop calls them between and during passes.
pub trait Reporter: Send {
    /// An engine event arrived at `received` (it triggers a pass).
    fn on_event(&mut self, received: Instant);

    /// A node's observation, as soon as it is in (before any action on it).
    fn on_observed(&mut self, node: &str, observed: &Observed);

    /// Entries just appended to the ledger.
    fn on_entries(&mut self, entries: &[Entry]);

    /// A node's pass is done (its actions too): what was observed and evaluated at its start,
    /// or why the node could not be observed; `state` holds the first-seen times of drifts.
    fn on_node(
        &mut self,
        manifest: &Manifest,
        node: &str,
        result: &Result<(Observed, Evaluation), RuntimeError>,
        state: &DaemonState,
        now: Timestamp,
    );

    /// A pass is done: the nodes reported by [`Reporter::on_node`] since the last call, and the
    /// `kubernetes:` sources. `full`: it covered every node.
    fn on_pass(
        &mut self,
        desired: &Desired,
        kube: &[KubePass],
        state: &DaemonState,
        started: Timestamp,
        full: bool,
    );

    /// The election changed (`--ha`).
    fn on_ha(&mut self, status: refinery_ha::HaStatus, leading: bool);

    /// A registry check failed (an `image_update` digest, an `image_policy` tag listing, a
    /// `pull_policy` pull again; an outage, a refusal, a 429) for an image of `registry` (its
    /// host): counted in `/metrics`. The first failure in a row is also an alert entry in the
    /// ledger.
    fn on_registry_check_failed(&mut self, registry: &str) {
        let _ = registry;
    }

    /// The controller stops: lets queued reports go out.
    fn shutdown(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// A reporter that reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReporter;

impl Reporter for NoReporter {
    fn on_event(&mut self, _: Instant) {}
    fn on_observed(&mut self, _: &str, _: &Observed) {}
    fn on_entries(&mut self, _: &[Entry]) {}
    fn on_node(
        &mut self,
        _: &Manifest,
        _: &str,
        _: &Result<(Observed, Evaluation), RuntimeError>,
        _: &DaemonState,
        _: Timestamp,
    ) {
    }
    fn on_pass(&mut self, _: &Desired, _: &[KubePass], _: &DaemonState, _: Timestamp, _: bool) {}
    fn on_ha(&mut self, _: refinery_ha::HaStatus, _: bool) {}
    fn shutdown(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(std::future::ready(()))
    }
}
