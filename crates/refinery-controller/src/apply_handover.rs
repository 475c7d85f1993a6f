//! `refinery apply` while the daemon runs: the daemon holds the ledger's writer lock, so `apply`
//! hands the work over (a [`Request::Apply`](refinery_store::request_queue::Request::Apply))
//! and waits for the answer. The daemon takes it on its next poll, runs a full pass at once
//! (grace periods not waited for, as a command run by hand), and answers what that pass did per
//! resource. Its entries go to the ledger like any pass's: one writer.
//!
//! The daemon also says it runs (see [`refinery_store::running_daemons`]), so `apply` knows
//! whom it talks to.
//!
//! After a full pass, copies of content-tracked mounts nothing needs any more are removed (see
//! [`crate::content_copies::collect_garbage`]).

use refinery_core::{Outcome, ResourceId, StepKind};
use refinery_store::request_queue::{self as requests, Answer, StepOutcome};
use refinery_store::running_daemons::{self, HaStanding, RunningDaemon};

use crate::controller::{Controller, short};
use crate::handover_state::{Keep, NodeAfter};
use crate::ports::Engine;

impl<R: Engine> Controller<R> {
    /// Says (again, if something changed) that this daemon runs, what it enforces and whether it
    /// acts.
    pub(crate) fn publish_presence(&mut self) {
        let ha = self.ha.as_ref().map(|h| {
            let status = h.status();
            HaStanding {
                id: status.id,
                acting: self.may_act(),
                leader: status.leader,
            }
        });
        let now = RunningDaemon {
            pid: std::process::id(),
            revision: self.rev(),
            follow: self.follow.clone(),
            ha,
        };
        if self.handover.published.as_ref() == Some(&now) {
            return;
        }
        match running_daemons::publish(&self.state_dir, &now) {
            Ok(()) => self.handover.published = Some(now),
            Err(e) => {
                tracing::warn!(error = %e, state_dir = %self.state_dir.display(), "failed to publish the daemon's presence; `refinery apply` cannot hand work over")
            }
        }
    }

    /// Takes `refinery apply`'s request: a full pass now, if `revision` is the one in force.
    /// Returns whether a pass is due.
    pub(crate) fn on_apply_request(&mut self, id: &str, revision: &str) -> bool {
        let rev = self.rev();
        if revision != rev {
            tracing::warn!(request = %id, asked = %short(revision), enforcing = %short(&rev), "apply requested for another revision: refused");
            let reason = format!(
                "the daemon enforces `{}` (following `{}`), not `{}`",
                short(&rev),
                self.follow,
                short(revision)
            );
            self.answer(
                id,
                &Answer::Refused {
                    reason,
                    revision: Some(rev),
                },
            );
            return false;
        }
        tracing::info!(request = %id, revision = %short(&rev), "apply requested: full pass now");
        self.answer(
            id,
            &Answer::Taken {
                pid: std::process::id(),
            },
        );
        self.handover.waiting.push(id.to_owned());
        true
    }

    /// What the end of a pass (`full`: over every node) will need of each node: mounts when it
    /// collects content copies, in-sync ids and steps when it answers an `apply`.
    pub(crate) fn after_needs(&self, full: bool) -> Keep {
        Keep {
            mounts: self.collects_content(full),
            answer: self.handover.waiting(),
        }
    }

    /// Whether a pass collects content copies: a full pass over every node this host manages
    /// (not with `--node` or `--shard`: other daemons may use the others), while acting.
    fn collects_content(&self, full: bool) -> bool {
        full && self.may_act() && self.options.shard.is_none() && self.options.nodes.is_empty()
    }

    /// After a pass: answers the apply requests it was run for, and removes the content copies
    /// nothing needs any more. A pass that skipped a node (to recover an interrupted recreate)
    /// leaves both to the next one, due at once.
    pub(crate) fn after_pass(&mut self, passes: &[NodeAfter], rev: &str, again: bool, full: bool) {
        if again {
            return;
        }
        self.answer_applies(passes, rev);
        let acted = std::mem::take(&mut self.handover.acted);
        self.collect_content(passes, &acted, full);
    }

    /// Removes the copies of content-tracked mounts no container observed mounts (see
    /// [`crate::content_copies::needed`]): only after a full pass that saw every node this host manages
    /// (not with `--node` or `--shard`: other daemons may use the others), and only while acting.
    fn collect_content(
        &mut self,
        passes: &[NodeAfter],
        acted: &[(ResourceId, Outcome)],
        full: bool,
    ) {
        if !self.collects_content(full) {
            return;
        }
        let root = &self.desired.content_root;
        let seen: Option<Vec<_>> = passes
            .iter()
            .map(|p| p.seen.as_ref().map(|s| s.0.clone()))
            .collect();
        match crate::content_copies::collect_after(self.manifest(), root, seen.as_deref(), acted) {
            None => {}
            Some(Ok(removed)) => {
                for path in removed {
                    tracing::info!(copy = %path.display(), "removed a content copy no container uses");
                }
            }
            Some(Err(e)) => {
                tracing::warn!(root = %root.display(), error = %e, "failed to remove unused content copies");
            }
        }
    }

    fn answer_applies(&mut self, passes: &[NodeAfter], rev: &str) {
        if !self.handover.waiting() {
            return;
        }
        let waiting = std::mem::take(&mut self.handover.waiting);
        let mut results = std::mem::take(&mut self.handover.results);
        let answer = if self.may_act() {
            let mut unchanged = Vec::new();
            let mut unreachable = Vec::new();
            for p in passes {
                let Some((_, in_sync, steps)) = &p.seen else {
                    unreachable.push(p.node.clone());
                    continue;
                };
                unchanged.extend(in_sync.iter().cloned());
                // Steps not carried out (alerts, deferrals, flap protection) say why.
                for step in steps {
                    let id = step.id.to_string();
                    if step.kind == StepKind::Ignore || results.iter().any(|r| r.id == id) {
                        continue;
                    }
                    results.push(StepOutcome {
                        id,
                        step: requests::step_name(step.kind),
                        outcome: if step.kind == StepKind::Defer {
                            Outcome::Deferred
                        } else {
                            Outcome::Skipped
                        },
                        message: Some(step.reason.clone()),
                        container_id: step.container_id.clone(),
                    });
                }
            }
            Answer::Done {
                revision: rev.to_owned(),
                results,
                unchanged,
                unreachable,
            }
        } else {
            Answer::Refused {
                reason: "this daemon stopped leading during the pass; the leader acts".into(),
                revision: Some(rev.to_owned()),
            }
        };
        for id in &waiting {
            self.answer(id, &answer);
        }
    }

    fn answer(&self, id: &str, answer: &Answer) {
        if let Err(e) = requests::answer(&self.state_dir, id, answer) {
            tracing::error!(request = %id, error = %e, "failed to answer `refinery apply`");
        }
    }
}
