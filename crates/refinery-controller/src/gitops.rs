//! The controller's calls into its [`GitFollow`](crate::ports::GitFollow) port (the GitOps loop,
//! issue 25), at the points of the loop where git or a revision changes: commit statuses,
//! webhook and sync wake-ups, what the endpoints must know of the controller.

use crate::controller::Controller;
use crate::ports::Engine;
use crate::ports::{RevisionEvent, Wake};

impl<R: Engine> Controller<R> {
    /// At the start: the revision's `commit_status:`, and `pending` when a deploy is under way.
    pub(crate) fn gitops_started(&mut self) {
        self.git.configure(&self.desired.manifest);
        self.gitops_observe();
        // A standby (`--ha`) writes nothing to the forge: the leader reports.
        if !self.may_act() {
            return;
        }
        if let Some(p) = &self.state.pending {
            let event = RevisionEvent::Enforcing {
                revision: p.revision.clone(),
            };
            self.git.on_revision(&event);
        }
    }

    /// A webhook or a sync request: look at git now (the fetch was asked for), then a pass —
    /// over every node, or over the nodes asked for when the revision stays.
    pub(crate) async fn on_gitops_wake(&mut self, wake: Wake) {
        let switched = self.poll_git().await;
        tracing::debug!(switched, "woken by a webhook or a sync request");
        self.scope = match wake {
            Wake::Nodes(nodes) if !switched && !nodes.is_empty() => Some(nodes),
            _ => None,
        };
    }

    /// A new revision is in force (`rolled_back`: because of a rollback).
    pub(crate) fn gitops_switched(
        &mut self,
        to: &str,
        rolled_back: Option<&refinery_core::daemon_state::RolledBack>,
    ) {
        self.git.configure(&self.desired.manifest);
        if !self.may_act() {
            return;
        }
        let event = match rolled_back {
            Some(rb) => RevisionEvent::RolledBack {
                from: rb.from.clone(),
                to: to.to_owned(),
                why: rb.why.clone(),
            },
            None => RevisionEvent::Enforcing {
                revision: to.to_owned(),
            },
        };
        self.git.on_revision(&event);
    }

    /// What the endpoints must know: the nodes, the rollback in force.
    pub(crate) fn gitops_observe(&mut self) {
        let nodes: Vec<String> = self.nodes().into_iter().map(|n| n.name).collect();
        let rolled_back = self
            .state
            .rolled_back
            .as_ref()
            .map(|rb| (rb.from.clone(), rb.to.clone()));
        self.git.observe(&nodes, rolled_back);
    }

    /// Actions failed on `node` while `rev` is being deployed: its commit fails.
    pub(crate) fn gitops_failed(&mut self, rev: &str, node: &str, failed: &[(String, String)]) {
        let deploying = self
            .state
            .pending
            .as_ref()
            .is_some_and(|p| p.revision == rev)
            && self.may_act();
        if let (true, Some((name, why))) = (deploying, failed.first()) {
            self.git.on_revision(&RevisionEvent::ActionFailed {
                revision: rev.to_owned(),
                resource: refinery_core::ResourceId::container(node, name).to_string(),
                why: why.clone(),
            });
        }
    }
}
