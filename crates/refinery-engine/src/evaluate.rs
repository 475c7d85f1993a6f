//! The pure half of a pass: diff → policy → plan, for one node.

use std::collections::BTreeMap;

use jiff::Timestamp;
use refinery_core::{
    DiffContext, DriftReport, LabelSelector, Manifest, Observed, Plan, PolicyContext, decide,
    diff_node, plan,
};
use serde::Serialize;

/// What one node's pass found and would do.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub node: String,
    pub report: DriftReport,
    pub decisions: Vec<refinery_core::Decision>,
    pub plan: Plan,
}

/// The selector a node is observed with: the manifest's, if any.
#[must_use]
pub fn node_selector(manifest: &Manifest) -> Option<&LabelSelector> {
    manifest.config.selector.as_ref()
}

/// Diffs, decides and plans one node. `first_seen` and `now` feed the grace periods.
#[must_use]
pub fn evaluate(
    manifest: &Manifest,
    node: &str,
    observed: &Observed,
    now: Timestamp,
    first_seen: &BTreeMap<String, Timestamp>,
    honor_grace: bool,
    self_container_id: Option<&str>,
) -> Evaluation {
    evaluate_in(
        &DiffContext::for_node(manifest, node),
        manifest,
        observed,
        now,
        first_seen,
        honor_grace,
        self_container_id,
    )
}

/// [`evaluate`] with a diff context the caller built (`ctx.node` is the node), e.g. one carrying
/// the primary host ports [`crate::free_primary_ports`] found free.
#[must_use]
pub fn evaluate_in(
    ctx: &DiffContext,
    manifest: &Manifest,
    observed: &Observed,
    now: Timestamp,
    first_seen: &BTreeMap<String, Timestamp>,
    honor_grace: bool,
    self_container_id: Option<&str>,
) -> Evaluation {
    let node = ctx.node.as_str();
    let report = diff_node(&manifest.containers_on(node), observed, ctx);
    let pctx = PolicyContext {
        manifest,
        mode: manifest.mode_of(node),
        now,
        first_seen,
        honor_grace,
        self_container_id,
        prune: false,
    };
    let decisions = decide(&report, observed, &pctx);
    let mut plan = plan(&decisions, observed);
    // Dependants with `depends_on: {…: {restart: true}}` restart after what they depend on.
    refinery_core::compose::restart_dependants(manifest, node, observed, &mut plan);
    Evaluation {
        node: node.to_owned(),
        report,
        decisions,
        plan,
    }
}
