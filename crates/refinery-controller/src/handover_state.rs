//! What a pass keeps for its end (the answer to `refinery apply`, content collection) and the
//! apply requests waiting for it; the controller's use of them is `apply_handover.rs`.

use refinery_core::{Outcome, ResourceId};
use refinery_store::request_queue::StepOutcome;
use refinery_store::running_daemons::RunningDaemon;

use crate::node_pass::NodePass;

/// What the end of a pass needs of one node once its observation is gone: the containers'
/// bind mounts (content collection), what was in sync and the steps planned (the answer to
/// `apply`); `None` when the node was not observed. Each part is kept only when the pass's end
/// will use it ([`Keep`]), so a big fleet's pass holds nothing per container.
pub(crate) struct NodeAfter {
    pub(crate) node: String,
    pub(crate) seen: Option<(
        crate::content_copies::NodeMounts,
        Vec<String>,
        Vec<refinery_core::Step>,
    )>,
}

/// Which parts of a node's pass its end needs.
#[derive(Clone, Copy)]
pub(crate) struct Keep {
    pub(crate) mounts: bool,
    pub(crate) answer: bool,
}

impl NodeAfter {
    pub(crate) fn of<R>(p: &NodePass<'_, R>, keep: Keep) -> NodeAfter {
        NodeAfter {
            node: p.node.name.clone(),
            seen: p.result.as_ref().ok().map(|(observed, eval)| {
                let mounts = if keep.mounts {
                    crate::content_copies::NodeMounts::of(&p.node.name, observed)
                } else {
                    crate::content_copies::NodeMounts {
                        node: p.node.name.clone(),
                        containers: Vec::new(),
                    }
                };
                let (in_sync, steps) = if keep.answer {
                    (
                        eval.report
                            .in_sync
                            .iter()
                            .map(ToString::to_string)
                            .collect(),
                        eval.plan.steps.clone(),
                    )
                } else {
                    (Vec::new(), Vec::new())
                };
                (mounts, in_sync, steps)
            }),
        }
    }
}

/// Apply requests taken and the pass answering them; what the pass did.
#[derive(Default)]
pub(crate) struct Handover {
    /// What the current pass's actions did (for the content garbage collection).
    pub(crate) acted: Vec<(ResourceId, Outcome)>,
    /// Requests the next full pass answers.
    pub(crate) waiting: Vec<String>,
    /// What the answering pass did so far.
    pub(crate) results: Vec<StepOutcome>,
    /// The registry entry last published.
    pub(crate) published: Option<RunningDaemon>,
}

impl Handover {
    /// Whether a pass must answer apply requests (it is then a full pass, grace not honoured).
    pub(crate) fn waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Keeps what a node's actions did, for the answer.
    pub(crate) fn collect(&mut self, results: &[refinery_engine::StepResult]) {
        self.acted
            .extend(results.iter().map(|r| (r.id.clone(), r.outcome)));
        if self.waiting() {
            self.results
                .extend(results.iter().map(crate::ledger_records::step_outcome));
        }
    }
}
