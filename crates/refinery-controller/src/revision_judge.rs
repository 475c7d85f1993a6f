//! Judging the revision in force after a new commit: healthy once its containers run steadily,
//! else, past its health deadline, rolled back to the last healthy revision (or alerted when
//! there is none).

use jiff::Timestamp;
use refinery_core::daemon_state::{RevisionHealth, RolledBack, revision_health};

use crate::controller::{Controller, alert, short};
use crate::ports::Engine;
use crate::ports::RevisionEvent;

/// A container must run this long without a restart (or half the health deadline, if shorter)
/// before its revision counts as healthy.
pub(crate) const SETTLE_SECS: u64 = 10;

impl<R: Engine> Controller<R> {
    /// How the pending revision is doing on one node, if one is pending. A declared container
    /// that still differs from the revision keeps it from being healthy.
    pub(crate) fn node_health(
        &self,
        manifest: &refinery_core::Manifest,
        eval: &refinery_engine::Evaluation,
        observed: &refinery_core::Observed,
        failed: &[(String, String)],
        now: Timestamp,
    ) -> Option<RevisionHealth> {
        self.state.pending.as_ref()?;
        let settle = SETTLE_SECS.min(manifest.config.health_deadline_secs / 2);
        // A container whose image update is on trial is judged on its own (image_update_judge).
        let declared: Vec<_> = manifest
            .containers_on(&eval.node)
            .into_iter()
            .filter(|c| {
                let id = refinery_core::ResourceId::for_spec(&eval.node, c).to_string();
                !self.state.image_updates.trials.contains_key(&id)
            })
            .collect();
        let h = revision_health(&declared, observed, failed, now, settle);
        let differs = declared.iter().any(|c| {
            !eval
                .report
                .in_sync
                .iter()
                .any(|id| id.node() == eval.node && id.name() == c.name)
        });
        Some(match h {
            RevisionHealth::Healthy if differs => RevisionHealth::Progressing,
            other => other,
        })
    }

    /// Marks the pending revision healthy, or rolls back from it once its deadline passed.
    pub(crate) async fn judge_revision(&mut self, health: RevisionHealth, now: Timestamp) -> bool {
        let Some(pending) = self.state.pending.clone() else {
            return false;
        };
        if !self.may_act() {
            // A standby changes nothing: judging is the leader's.
            return false;
        }
        let deadline = self.manifest().config.health_deadline_secs;
        match &health {
            RevisionHealth::Healthy => {
                tracing::info!(revision = %short(&pending.revision), "revision is healthy");
                self.git.on_revision(&RevisionEvent::Healthy {
                    revision: pending.revision.clone(),
                });
                self.state.last_healthy = Some(pending.revision);
                self.state.pending = None;
                false
            }
            RevisionHealth::Progressing if !self.state.pending_overdue(now, deadline * 2) => false,
            RevisionHealth::Progressing | RevisionHealth::Failing(_) => {
                if !self.state.pending_overdue(now, deadline) {
                    return false;
                }
                let why = match health {
                    RevisionHealth::Failing(why) => why.clone(),
                    _ => format!(
                        "its containers did not run steadily within {}s",
                        deadline * 2
                    ),
                };
                let target = self
                    .state
                    .last_healthy
                    .clone()
                    .filter(|h| *h != pending.revision);
                match target {
                    Some(to) => {
                        let rb = RolledBack {
                            from: pending.revision.clone(),
                            to: to.clone(),
                            at: now,
                            why: format!("not healthy within {deadline}s: {why}"),
                            by_hand: false,
                        };
                        self.switch_to(&to, Some(rb)).await
                    }
                    None => {
                        let message = format!(
                            "revision `{}` is not healthy within {deadline}s ({why}) and there is no earlier healthy revision to return to",
                            short(&pending.revision)
                        );
                        tracing::error!("{message}");
                        self.git.on_revision(&RevisionEvent::GaveUp {
                            revision: pending.revision.clone(),
                            why: format!("not healthy within {deadline}s: {why}"),
                        });
                        self.append(vec![alert("error", message).revision(&pending.revision)]);
                        self.state.pending = None;
                        false
                    }
                }
            }
        }
    }
}
