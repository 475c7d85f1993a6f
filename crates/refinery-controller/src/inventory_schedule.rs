//! The daemon's scheduled inventory (`inventory.schedule`): when the schedule is due, audit every
//! node (one audit-log line each), alert in the ledger when extras are found, and clean up the
//! safe-to-delete set on nodes in `enforce` mode. The last run is kept in `inventory-state.json`,
//! so a restart neither repeats nor skips a run.

use jiff::Timestamp;
use refinery_core::Outcome;
use refinery_core::inventory::{AuditRecord, Class, classify, due, next_run};
use refinery_core::ledger::{ActionDetail, Event, Record};
use refinery_core::manifest::Mode;
use refinery_store::{audit_log, inventory_state_file};

use crate::controller::Controller;
use crate::ports::Engine;

/// Key of the schedule's last run in the state file.
const LAST_RUN: &str = "all";

impl<R: Engine> Controller<R> {
    /// Runs the scheduled audit (and cleanup) when it is due; cheap otherwise (a comparison).
    pub(crate) async fn scheduled_inventory(&mut self) {
        let Some(schedule) = self.manifest().inventory.schedule.clone() else {
            return;
        };
        let now = self.clock.now();
        // Cheap until the next run, unless a new commit changed the schedule.
        if self
            .inventory_next
            .as_ref()
            .is_some_and(|(s, next)| *s == schedule && now < *next)
        {
            return;
        }
        let path = inventory_state_file::path_in(&self.state_dir);
        let mut state = match inventory_state_file::load(&path) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "failed to read the inventory state");
                return;
            }
        };
        let last = state.last_scheduled.get(LAST_RUN).copied();
        let run_now = match due(&schedule, last, now) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "failed to use `inventory.schedule`");
                self.inventory_next = now
                    .checked_add(jiff::SignedDuration::from_hours(1))
                    .ok()
                    .map(|t| (schedule.clone(), t));
                return;
            }
        };
        if last.is_none() || run_now {
            state.last_scheduled.insert(LAST_RUN.to_owned(), now);
        }
        self.inventory_next = next_run(&schedule, now).ok().map(|t| (schedule.clone(), t));
        if run_now {
            self.run_inventory(&mut state, now).await;
        }
        if let Err(e) = inventory_state_file::save(&path, &state) {
            tracing::error!(error = %e, "failed to save the inventory state");
        }
    }

    async fn run_inventory(
        &mut self,
        state: &mut refinery_core::inventory::InventoryState,
        now: Timestamp,
    ) {
        let desired = self.desired.clone();
        let manifest = &desired.manifest;
        let selector = refinery_engine::node_selector(manifest);
        let mut lines = Vec::new();
        let mut records = Vec::new();
        for node in self.nodes() {
            let Some(engine) = self.engine(&node) else {
                continue;
            };
            let collected = match refinery_engine::inventory_actions::collect(&engine, selector)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(node = %node.name, error = %e, "scheduled audit: node unreachable");
                    continue;
                }
            };
            let mut audit = classify(manifest, &node.name, collected.snapshot(), state, now);
            // The image a container ran before its image update on trial is what a rollback
            // needs: never cleaned up meanwhile.
            crate::image_update_judge::keep_trial_images(&mut audit, &self.state.image_updates);
            state.record(&node.name, &collected.images, &collected.volumes, now);
            lines.push(AuditRecord::new(&audit, &node, now).to_line());
            let extras = audit
                .items
                .iter()
                .filter(|i| i.class == Class::Extra)
                .count();
            tracing::info!(node = %node.name, extras, "scheduled audit");
            if extras > 0 {
                records.push(
                    Record::new(Event::Alert {
                        level: "warning".into(),
                        message: format!(
                            "inventory: {extras} extra resource{} on node `{}` (run `refinery audit`)",
                            if extras == 1 { "" } else { "s" },
                            node.name
                        ),
                    })
                    .node(node.name.clone()),
                );
            }
            if manifest.mode_of(&node.name) != Mode::Enforce {
                continue;
            }
            for r in refinery_engine::inventory_actions::cleanup(&engine, &audit, &|_| {}).await {
                let detail = ActionDetail {
                    step: "cleanup".into(),
                    message: Some(r.message.clone().unwrap_or_else(|| r.item.reason.clone())),
                    container_id: None,
                };
                let event = match r.outcome {
                    Outcome::Removed => Event::Death(detail),
                    _ => Event::Action(detail),
                };
                records.push(
                    Record::new(event)
                        .resource(r.item.resource_id(&node.name))
                        .node(node.name.clone())
                        .outcome(r.outcome)
                        .revision(desired.commit.id.clone()),
                );
            }
        }
        let log = audit_log::path(&self.options.repo, &desired.manifest);
        if let Err(e) = audit_log::append(&log, &lines) {
            tracing::error!(error = %e, "failed to append to the audit log");
        }
        self.append(records);
    }
}
