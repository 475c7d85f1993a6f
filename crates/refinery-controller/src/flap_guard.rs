//! Flap protection and alert dedup: a resource acted on too often within the window is
//! suspended (its writes become alerts) until its spec changes or `refinery resume`; an alert is
//! recorded once per reason.

use jiff::Timestamp;
use refinery_core::{ResourceId, Step, StepKind};

use crate::controller::{Controller, PassAcc, alert};
use crate::ports::Engine;

impl<R: Engine> Controller<R> {
    /// Readies one planned step of a pass, for a node or a Kubernetes source: `None` for an
    /// ignore step; a deferred one brings the next pass forward to when it is due; a write on a
    /// resource flap protection has suspended becomes an alert; an alert is recorded once per
    /// reason, and again when its drift is new.
    pub(crate) fn gate_step(
        &mut self,
        step: &Step,
        decisions: &[refinery_core::Decision],
        spec_hash: Option<&str>,
        drift_is_new: bool,
        rev: &str,
        acc: &mut PassAcc,
    ) -> Option<Step> {
        let mut step = step.clone();
        match step.kind {
            StepKind::Ignore => return None,
            StepKind::Defer => {
                if let Some(until) =
                    decisions
                        .iter()
                        .filter(|d| d.drift.id == step.id)
                        .find_map(|d| match d.verdict {
                            refinery_core::Verdict::Defer { until } => Some(until),
                            _ => None,
                        })
                {
                    acc.next_due = Some(acc.next_due.map_or(until, |n| n.min(until)));
                }
            }
            _ => {}
        }
        // The pass's evaluation held it back already (the same suspension was its input); a
        // new spec in git lifts the suspension here.
        if step.kind.writes() && self.state.is_suspended(&step.id.to_string(), spec_hash) {
            let mut one = refinery_core::Plan { steps: vec![step] };
            refinery_engine::hold_back(&mut one, &|_| true);
            step = one.steps.remove(0);
        }
        if step.kind == StepKind::Alert
            && (drift_is_new || self.alerted.get(&step.id) != Some(&step.reason))
        {
            self.alerted.insert(step.id.clone(), step.reason.clone());
            tracing::warn!(resource = %step.id, "{}", step.reason);
            acc.records.push(
                alert(
                    "warning",
                    format!("{}: {}", step.details.join("; "), step.reason),
                )
                .resource(step.id.clone())
                .node(step.id.node())
                .revision(rev),
            );
        }
        Some(step)
    }

    /// Counts an action toward flap protection; the one that trips it is alerted and on record.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn count_action(
        &mut self,
        id: &ResourceId,
        spec_hash: Option<&str>,
        node: &str,
        rev: &str,
        now: Timestamp,
        flapping: refinery_core::manifest::Flapping,
        acc: &mut PassAcc,
    ) {
        let Some(s) = self
            .state
            .record_action(&id.to_string(), spec_hash, now, flapping)
        else {
            return;
        };
        let message = format!(
            "flap protection: {} actions within {}s; refinery stops acting on it until its spec changes in git or `refinery resume {id}` is run",
            s.actions, s.window_secs
        );
        tracing::warn!(resource = %id, "{message}");
        acc.records.push(
            alert("error", message)
                .resource(id.clone())
                .node(node)
                .revision(rev),
        );
    }
}
