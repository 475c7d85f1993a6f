//! Recreates an earlier run left half-done (a container set aside under its temporary name),
//! finished or undone on a node's first observation.

use refinery_core::ledger::{ActionDetail, Event, Record};
use refinery_core::{Outcome, ResourceId};
use refinery_engine::{Recovered, recover_interrupted, recreate_temp_name};

use crate::action_marks::REPLACE_EVENTS;
use crate::controller::Controller;
use crate::ports::Engine;

impl<R: Engine> Controller<R> {
    /// Finishes or undoes recreates an earlier run left half-done.
    /// On a node's first observation since the daemon started: finishes or undoes recreates an
    /// earlier run left half-done. Returns whether it changed anything (the observation is then
    /// stale, and another pass is due at once).
    pub(crate) async fn recover(
        &mut self,
        node: &str,
        rt: &R,
        observed: &refinery_core::Observed,
    ) -> bool {
        if !self.may_act()
            || !self
                .recovered
                .insert(crate::state_keys::NodeName::new(node))
        {
            return false;
        }
        let aside = recreate_temp_name("");
        let keys: Vec<String> = observed
            .containers
            .iter()
            .filter_map(|c| c.name.strip_suffix(&aside))
            .flat_map(|base| [base.to_owned(), recreate_temp_name(base)])
            .collect();
        if keys.is_empty() {
            return false;
        }
        self.mark_ours(&keys, REPLACE_EVENTS);
        let recovered = recover_interrupted(rt, observed).await;
        self.end_ours(&keys);
        let mut records = Vec::new();
        for r in recovered {
            let (name, outcome, message) = match &r {
                Recovered::Finished { name } => (
                    name,
                    Outcome::Recreated,
                    "finished an interrupted recreate".to_owned(),
                ),
                Recovered::Undone { name } => (
                    name,
                    Outcome::RolledBack,
                    "undid an interrupted recreate: the previous container is back".to_owned(),
                ),
                Recovered::Failed { name, error } => (
                    name,
                    Outcome::Failed,
                    format!("failed to recover an interrupted recreate: {error}"),
                ),
            };
            tracing::warn!(node, container = %name, "{message}");
            records.push(
                Record::new(Event::Action(ActionDetail {
                    step: "recover".into(),
                    message: Some(message),
                    container_id: None,
                }))
                .resource(ResourceId::container(node, name))
                .outcome(outcome)
                .revision(self.rev()),
            );
        }
        self.append(records);
        true
    }
}
