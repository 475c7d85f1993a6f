//! Which engine events are Refinery's own doing: while it acts on a container (and just after),
//! the events its action makes are not outside changes. Events someone else caused become
//! ledger records (birth, death, mutation by an outside actor).

use std::time::Duration;

use refinery_core::ledger::{ActionDetail, Actor, Event, Record};
use refinery_core::{EngineEvent, ResourceId};
use tokio::time::Instant;

use crate::action_marks::Mark;
use crate::controller::Controller;
use crate::ports::Engine;

/// Engine events about a container Refinery acted on, received from when the action started until
/// this long after it ended, are taken as its own.
pub(crate) const OURS_AFTER: Duration = Duration::from_secs(1);

/// How long a container created by someone else counts as just born (its `start` is part of it).
pub(crate) const BIRTH_FOR: Duration = Duration::from_secs(30);

impl<R: Engine> Controller<R> {
    /// Refinery starts acting on these containers (names, ids); its action makes `actions`.
    pub(crate) fn mark_ours(&mut self, keys: &[String], actions: &'static [&'static str]) {
        let start = self.clock.instant();
        for k in keys {
            self.ours.insert(
                k.clone(),
                Mark {
                    start,
                    end: None,
                    actions,
                },
            );
        }
    }

    /// Refinery is done acting on these containers; forgets marks long past.
    pub(crate) fn end_ours(&mut self, keys: &[String]) {
        let now = self.clock.instant();
        for k in keys {
            if let Some(m) = self.ours.get_mut(k) {
                m.end.get_or_insert(now);
            }
        }
        self.ours
            .retain(|_, m| m.end.is_none_or(|e| e.elapsed() < Duration::from_secs(60)));
    }

    /// Whether Refinery's own action made this event: same container, an action word that
    /// action makes, received while it ran or just after.
    pub(crate) fn is_ours(&self, event: &EngineEvent, received: Instant) -> bool {
        let during = |k: &str| {
            self.ours.get(k).is_some_and(|m| {
                m.actions.contains(&event.action.as_str())
                    && received >= m.start
                    && m.end.is_none_or(|e| received <= e + OURS_AFTER)
            })
        };
        during(&event.container_id) || event.name.as_deref().is_some_and(during)
    }

    /// A ledger record for a change someone else made, if the event is one.
    pub(crate) fn outside_record(&mut self, node: &str, e: &EngineEvent) -> Option<Record> {
        let name = e.name.clone()?;
        let now = self.clock.instant();
        self.outside_created.retain(|_, t| t.elapsed() < BIRTH_FOR);
        let detail = |step: &str| ActionDetail {
            step: step.to_owned(),
            message: Some(format!("`{}` by someone other than refinery", e.action)),
            container_id: Some(e.container_id.clone()),
        };
        let event = match e.action.as_str() {
            "create" => {
                self.outside_created.insert(e.container_id.clone(), now);
                Event::Birth(detail("create"))
            }
            "destroy" => Event::Death(detail("remove")),
            "start" if self.outside_created.contains_key(&e.container_id) => return None,
            "start" | "restart" | "kill" | "stop" | "pause" | "unpause" | "update" | "rename" => {
                Event::Mutation(detail(&e.action))
            }
            _ => return None,
        };
        Some(
            Record::new(event)
                .resource(ResourceId::container(node, &name))
                .node(node)
                .actor(Actor::Outside),
        )
    }
}
