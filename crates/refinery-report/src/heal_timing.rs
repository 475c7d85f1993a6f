//! When watched containers died, so `refinery_event_to_action_seconds` measures a heal from the
//! death (`State.FinishedAt`), whichever pass answered it: the one the `die` event triggered, or a
//! periodic pass that saw the crash before the event was read.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use jiff::Timestamp;
use refinery_core::{ContainerState, Observed, ResourceId};

#[derive(Debug, Default)]
pub struct DeathClock {
    /// Per node, the containers (by name) last seen running and not seen stopped since. Replaced
    /// by each observation of the node, so a container removed meanwhile is forgotten.
    running: HashMap<String, HashSet<String>>,
    /// Containers seen stopped after running, not yet acted on: when they stopped.
    died: HashMap<String, Timestamp>,
}

impl DeathClock {
    /// A node's observation: a container seen running before and stopped now died at its
    /// `finished_at`.
    pub fn observe(&mut self, node: &str, observed: &Observed) {
        let was = self.running.remove(node).unwrap_or_default();
        let mut running = HashSet::new();
        for c in &observed.containers {
            match c.state {
                ContainerState::Running => {
                    if !self.died.is_empty() {
                        self.died
                            .remove(&ResourceId::container(node, &c.name).to_string());
                    }
                    running.insert(c.name.clone());
                }
                ContainerState::Exited | ContainerState::Dead if was.contains(&c.name) => {
                    if let Some(at) = c
                        .finished_at
                        .as_deref()
                        .and_then(|s| s.parse::<Timestamp>().ok())
                    {
                        self.died
                            .insert(ResourceId::container(node, &c.name).to_string(), at);
                    }
                }
                // Paused, restarting, …: still counts as running until seen stopped.
                ContainerState::Exited | ContainerState::Dead => {}
                _ if was.contains(&c.name) => {
                    running.insert(c.name.clone());
                }
                _ => {}
            }
        }
        self.running.insert(node.to_owned(), running);
    }

    /// An action on `resource` was recorded at `now`: how long after its death, if it answers one.
    pub fn answered(&mut self, resource: &str, now: Timestamp) -> Option<Duration> {
        let at = self.died.remove(resource)?;
        Some(Duration::try_from(now.duration_since(at)).unwrap_or(Duration::ZERO))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(state: ContainerState, finished_at: Option<&str>) -> Observed {
        let mut c = refinery_core::testing::stray("web", "busybox");
        c.state = state;
        c.finished_at = finished_at.map(str::to_owned);
        Observed {
            containers: vec![c],
            ..Observed::default()
        }
    }

    #[test]
    fn death_clock_heal_of_a_crash_counts_from_finished_at() {
        let mut clock = DeathClock::default();
        let id = "docker/n/container/web";
        let now: Timestamp = "2026-01-01T00:00:10Z".parse().expect("time");
        // Stopped, never seen running: not a death the daemon watched.
        clock.observe(
            "n",
            &seen(ContainerState::Exited, Some("2026-01-01T00:00:00Z")),
        );
        assert_eq!(clock.answered(id, now), None);
        clock.observe("n", &seen(ContainerState::Running, None));
        clock.observe(
            "n",
            &seen(ContainerState::Exited, Some("2026-01-01T00:00:08.5Z")),
        );
        assert_eq!(clock.answered(id, now), Some(Duration::from_millis(1500)));
        // Answered once.
        assert_eq!(clock.answered(id, now), None);
    }

    #[test]
    fn death_clock_forgets_a_container_removed_while_running() {
        let mut clock = DeathClock::default();
        let id = "docker/n/container/web";
        let now: Timestamp = "2026-01-01T00:00:10Z".parse().expect("time");
        clock.observe("n", &seen(ContainerState::Running, None));
        clock.observe("n", &Observed::default());
        assert!(clock.running.get("n").is_some_and(HashSet::is_empty));
        // A container of that name stopped later is not a death the clock watched.
        clock.observe(
            "n",
            &seen(ContainerState::Exited, Some("2026-01-01T00:00:08Z")),
        );
        assert_eq!(clock.answered(id, now), None);
    }
}
