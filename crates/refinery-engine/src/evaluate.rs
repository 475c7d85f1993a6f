//! The pure half of a pass, the one pipeline after observation: diff → policy → plan → flap
//! protection. `refinery plan`, `refinery apply`, the controller and the `kubernetes:` sources
//! all decide here ([`evaluate_in`] for a Docker node, [`decide_and_plan`] for a drift report a
//! source's adapter observed); what a decision depends on besides the report comes in as values:
//! time, grace clocks, mode and maintenance windows (the manifest's), what flap protection holds
//! back.

use std::collections::BTreeMap;

use jiff::Timestamp;
use refinery_core::{
    DiffContext, DriftReport, LabelSelector, Manifest, Observed, Plan, PolicyContext, ResourceId,
    StepKind, decide, diff_node, plan,
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

/// Which resources flap protection holds back: a write on one becomes an alert.
pub type Held<'a> = &'a (dyn Fn(&ResourceId) -> bool + Sync);

/// Nothing held back.
#[must_use]
pub fn nothing_held(_: &ResourceId) -> bool {
    false
}

/// What a pass decides with besides the manifest and the observation.
#[derive(Clone, Copy)]
pub struct EvalInputs<'a> {
    pub now: Timestamp,
    /// When each drift was first seen (`<id> <kind>`): the grace clocks.
    pub first_seen: &'a BTreeMap<String, Timestamp>,
    /// Grace periods are waited for (not by a command run by hand).
    pub honor_grace: bool,
    /// The container Refinery runs in: never acted on.
    pub self_container_id: Option<&'a str>,
    /// What flap protection holds back.
    pub held: Held<'a>,
}

/// What a drift report is about: a Docker node's containers as observed, or a source that runs
/// none (a `kubernetes:` source).
#[derive(Clone, Copy)]
pub enum Subject<'a> {
    Node {
        name: &'a str,
        observed: &'a Observed,
    },
    Source,
}

/// Decides and plans on a drift report, then holds back what flap protection suspended. The
/// policy's inputs are in `ctx` (mode, time, grace clocks, the manifest's maintenance windows and
/// rules, prune).
#[must_use]
pub fn decide_and_plan(
    report: &DriftReport,
    subject: Subject<'_>,
    ctx: &PolicyContext<'_>,
    held: Held<'_>,
) -> (Vec<refinery_core::Decision>, Plan) {
    let none = Observed::default();
    let observed = match subject {
        Subject::Node { observed, .. } => observed,
        Subject::Source => &none,
    };
    let decisions = decide(report, observed, ctx);
    let mut plan = plan(&decisions, observed);
    if let Subject::Node { name, observed } = subject {
        // Dependants with `depends_on: {…: {restart: true}}` restart after what they depend on.
        refinery_core::compose::restart_dependants(ctx.manifest, name, observed, &mut plan);
    }
    hold_back(&mut plan, held);
    (decisions, plan)
}

/// Flap protection: each write on a resource `held` says is suspended becomes an alert saying
/// how to lift it.
pub fn hold_back(plan: &mut Plan, held: Held<'_>) {
    for step in &mut plan.steps {
        if step.kind.writes() && held(&step.id) {
            step.kind = StepKind::Alert;
            step.reason = format!(
                "flap protection: not acting on it; run `refinery resume {}` or change its spec in git",
                step.id
            );
        }
    }
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
        &EvalInputs {
            now,
            first_seen,
            honor_grace,
            self_container_id,
            held: &nothing_held,
        },
    )
}

/// [`evaluate`] with a diff context the caller built (`ctx.node` is the node), e.g. one carrying
/// the primary host ports [`crate::free_primary_ports`] found free.
#[must_use]
pub fn evaluate_in(
    ctx: &DiffContext,
    manifest: &Manifest,
    observed: &Observed,
    inputs: &EvalInputs<'_>,
) -> Evaluation {
    let node = ctx.node.as_str();
    let report = diff_node(&manifest.containers_on(node), observed, ctx);
    let pctx = PolicyContext {
        manifest,
        mode: manifest.mode_of(node),
        now: inputs.now,
        first_seen: inputs.first_seen,
        honor_grace: inputs.honor_grace,
        self_container_id: inputs.self_container_id,
        prune: false,
    };
    let (decisions, plan) = decide_and_plan(
        &report,
        Subject::Node {
            name: node,
            observed,
        },
        &pctx,
        inputs.held,
    );
    Evaluation {
        node: node.to_owned(),
        report,
        decisions,
        plan,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use refinery_core::testing::{self, NODE};

    fn eval(held: Held<'_>) -> Evaluation {
        let manifest = testing::manifest(vec![testing::spec("web")]);
        let first_seen = BTreeMap::new();
        evaluate_in(
            &DiffContext::for_node(&manifest, NODE),
            &manifest,
            &Observed::default(),
            &EvalInputs {
                now: testing::now(),
                first_seen: &first_seen,
                honor_grace: false,
                self_container_id: None,
                held,
            },
        )
    }

    #[test]
    fn evaluate_suspended_resource_is_an_alert_naming_resume() {
        let acting = eval(&nothing_held);
        assert!(
            acting.plan.steps.iter().any(|s| s.kind.writes()),
            "{:?}",
            acting.plan
        );
        let held = eval(&|id: &ResourceId| id.name() == "web");
        let step = held.plan.steps.first().expect("a step");
        assert_eq!(step.kind, StepKind::Alert);
        assert!(
            step.reason.contains(
                "flap protection: not acting on it; run `refinery resume docker/lyra/container/web`"
            ),
            "{}",
            step.reason
        );
        assert_eq!(
            held.decisions, acting.decisions,
            "the decision stays; only the step is held"
        );
    }
}
