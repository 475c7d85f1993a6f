//! What one ledger line holds: [`Entry`] (sealed, as stored) and [`Record`] (before sealing).

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::masker::Masker;
use crate::outcome::Outcome;
use crate::plan::StepKind;
use crate::resource_id::ResourceId;
use crate::spec::Bloodline;

/// One ledger line, as stored (schema version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Schema version, [`SCHEMA_VERSION`](super::SCHEMA_VERSION).
    pub v: u64,
    /// 1 for the first line, one more for each line after.
    pub seq: u64,
    pub time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceId>,
    /// `kind` and the fields of that kind.
    #[serde(flatten)]
    pub event: Event,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// The git commit in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    pub actor: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bloodline: Option<Bloodline>,
    /// The leader term of the daemon that wrote it, under `refinery run --ha` (absent otherwise;
    /// readers that predate it ignore it, and the hash covers it like any other field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
    /// The registry digest (`name@sha256:…`) of the image the container now in place was created
    /// from, when it came from a registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// The `hash` of the entry before, [`GENESIS_PREV`](super::GENESIS_PREV) for the first.
    pub prev: String,
    /// SHA-256 over the canonical bytes of this entry without `hash`.
    pub hash: String,
}

/// Who caused what an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// Refinery itself: its passes, its actions.
    Refinery,
    /// A change made outside Refinery, seen through engine events.
    Outside,
}

impl Actor {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Refinery => "refinery",
            Actor::Outside => "outside",
        }
    }
}

/// What Refinery did to a resource (the payload of birth, death, mutation, rollback, action).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionDetail {
    /// The plan step: `create`, `recreate`, `remove`, `restart`, `rollback`, …
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The engine id of the container now in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
}

/// What happened, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A resource was created.
    Birth(ActionDetail),
    /// A resource was removed.
    Death(ActionDetail),
    /// A resource was replaced or restarted.
    Mutation(ActionDetail),
    /// A resource was put back on its declared image.
    Rollback(ActionDetail),
    /// Any other action outcome (failed, skipped, deferred).
    Action(ActionDetail),
    /// A resource differs from the commit.
    Drift {
        /// `unauthorized`, `missing`, `image`, `config` or `status`.
        drift: String,
        summary: String,
        /// The differing fields' names (never their values).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        fields: Vec<String>,
    },
    Alert {
        level: String,
        message: String,
    },
    /// The revision in force changed (or was applied again).
    Revision {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        to: String,
    },
    DaemonStart {
        version: String,
    },
    DaemonStop {
        reason: String,
    },
    /// This daemon became the leader (`refinery run --ha`); the entry's `term` is its term, and
    /// every entry it writes until the next `leader_elected` carries it.
    LeaderElected {
        /// The instance id (`--ha-id`, by default `<hostname>-<pid>`).
        holder: String,
    },
    /// A torn last line (a crash mid-write) was cut off when the ledger was opened.
    Repair {
        /// The line that was torn.
        line: u64,
        torn_bytes: u64,
        /// SHA-256 of the bytes cut off.
        torn_sha256: String,
    },
}

/// The `kind` of an [`Event`], without its payload (for filters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    Birth,
    Death,
    Mutation,
    Rollback,
    Action,
    Drift,
    Alert,
    Revision,
    DaemonStart,
    DaemonStop,
    Repair,
    LeaderElected,
}

impl EventKind {
    pub const ALL: [EventKind; 12] = [
        EventKind::Birth,
        EventKind::Death,
        EventKind::Mutation,
        EventKind::Rollback,
        EventKind::Action,
        EventKind::Drift,
        EventKind::Alert,
        EventKind::Revision,
        EventKind::DaemonStart,
        EventKind::DaemonStop,
        EventKind::Repair,
        EventKind::LeaderElected,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Birth => "birth",
            EventKind::Death => "death",
            EventKind::Mutation => "mutation",
            EventKind::Rollback => "rollback",
            EventKind::Action => "action",
            EventKind::Drift => "drift",
            EventKind::Alert => "alert",
            EventKind::Revision => "revision",
            EventKind::DaemonStart => "daemon_start",
            EventKind::DaemonStop => "daemon_stop",
            EventKind::Repair => "repair",
            EventKind::LeaderElected => "leader_elected",
        }
    }

    /// Whether this kind records something Refinery did to a resource (the `action` view holds
    /// births, deaths, mutations, rollbacks and other action outcomes).
    #[must_use]
    pub fn is_action(self) -> bool {
        matches!(
            self,
            EventKind::Birth
                | EventKind::Death
                | EventKind::Mutation
                | EventKind::Rollback
                | EventKind::Action
        )
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.replace('-', "_");
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == wanted)
            .ok_or_else(|| format!("`{s}` is not a ledger entry kind"))
    }
}

impl Event {
    #[must_use]
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Birth(_) => EventKind::Birth,
            Event::Death(_) => EventKind::Death,
            Event::Mutation(_) => EventKind::Mutation,
            Event::Rollback(_) => EventKind::Rollback,
            Event::Action(_) => EventKind::Action,
            Event::Drift { .. } => EventKind::Drift,
            Event::Alert { .. } => EventKind::Alert,
            Event::Revision { .. } => EventKind::Revision,
            Event::DaemonStart { .. } => EventKind::DaemonStart,
            Event::DaemonStop { .. } => EventKind::DaemonStop,
            Event::Repair { .. } => EventKind::Repair,
            Event::LeaderElected { .. } => EventKind::LeaderElected,
        }
    }

    /// The entry for a step's result: a rollback step is `rollback` whatever came of it; else
    /// `created` is a birth, `removed` a death, `recreated`/`restarted`/`rolled back` a mutation,
    /// and anything else (failed, skipped, deferred, unchanged) a plain `action`.
    #[must_use]
    pub fn for_step(
        step: StepKind,
        outcome: Outcome,
        message: Option<String>,
        container_id: Option<String>,
    ) -> Event {
        let detail = ActionDetail {
            step: step.as_str().to_owned(),
            message,
            container_id,
        };
        if step == StepKind::Rollback {
            return Event::Rollback(detail);
        }
        match outcome {
            Outcome::Created => Event::Birth(detail),
            Outcome::Removed => Event::Death(detail),
            Outcome::Recreated | Outcome::Restarted | Outcome::RolledBack => {
                Event::Mutation(detail)
            }
            Outcome::Unchanged | Outcome::Skipped | Outcome::Deferred | Outcome::Failed => {
                Event::Action(detail)
            }
        }
    }

    /// The action payload, for the five action kinds.
    #[must_use]
    pub fn action(&self) -> Option<&ActionDetail> {
        match self {
            Event::Birth(d)
            | Event::Death(d)
            | Event::Mutation(d)
            | Event::Rollback(d)
            | Event::Action(d) => Some(d),
            _ => None,
        }
    }

    fn masked(self, m: &Masker) -> Event {
        let detail = |d: ActionDetail| ActionDetail {
            step: d.step,
            message: d.message.map(|s| m.mask(&s)),
            container_id: d.container_id,
        };
        match self {
            Event::Birth(d) => Event::Birth(detail(d)),
            Event::Death(d) => Event::Death(detail(d)),
            Event::Mutation(d) => Event::Mutation(detail(d)),
            Event::Rollback(d) => Event::Rollback(detail(d)),
            Event::Action(d) => Event::Action(detail(d)),
            Event::Drift {
                drift,
                summary,
                fields,
            } => Event::Drift {
                drift,
                summary: m.mask(&summary),
                fields: fields.iter().map(|f| m.mask(f)).collect(),
            },
            Event::Alert { level, message } => Event::Alert {
                level,
                message: m.mask(&message),
            },
            Event::DaemonStop { reason } => Event::DaemonStop {
                reason: m.mask(&reason),
            },
            e @ (Event::Revision { .. }
            | Event::DaemonStart { .. }
            | Event::Repair { .. }
            | Event::LeaderElected { .. }) => e,
        }
    }
}

/// An entry before it is sealed: no sequence number, time or hashes yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub node: Option<String>,
    pub resource: Option<ResourceId>,
    pub event: Event,
    pub outcome: Option<Outcome>,
    pub revision: Option<String>,
    pub actor: Actor,
    pub bloodline: Option<Bloodline>,
    /// The writer's leader term (`refinery run --ha`).
    pub term: Option<u64>,
    /// The registry digest of the image the container now in place was created from.
    pub image_digest: Option<String>,
}

impl Record {
    /// A record of `event` by Refinery, about nothing in particular yet.
    #[must_use]
    pub fn new(event: Event) -> Record {
        Record {
            node: None,
            resource: None,
            event,
            outcome: None,
            revision: None,
            actor: Actor::Refinery,
            bloodline: None,
            term: None,
            image_digest: None,
        }
    }

    /// The registry digest of the image the container now in place was created from.
    #[must_use]
    pub fn image_digest(mut self, digest: Option<String>) -> Record {
        self.image_digest = digest;
        self
    }

    #[must_use]
    pub fn term(mut self, term: Option<u64>) -> Record {
        self.term = term;
        self
    }

    #[must_use]
    pub fn node(mut self, node: impl Into<String>) -> Record {
        self.node = Some(node.into());
        self
    }

    /// The resource; its node too, unless one was set.
    #[must_use]
    pub fn resource(mut self, id: ResourceId) -> Record {
        if self.node.is_none() {
            self.node = Some(id.node().to_owned());
        }
        self.resource = Some(id);
        self
    }

    #[must_use]
    pub fn outcome(mut self, outcome: Outcome) -> Record {
        self.outcome = Some(outcome);
        self
    }

    #[must_use]
    pub fn revision(mut self, revision: impl Into<String>) -> Record {
        self.revision = Some(revision.into());
        self
    }

    #[must_use]
    pub fn actor(mut self, actor: Actor) -> Record {
        self.actor = actor;
        self
    }

    /// The bloodline; left out when it says nothing.
    #[must_use]
    pub fn bloodline(mut self, bloodline: &Bloodline) -> Record {
        self.bloodline =
            (bloodline.creator.is_some() || bloodline.purpose.is_some()).then(|| bloodline.clone());
        self
    }

    /// Every free-text field with secrets masked.
    #[must_use]
    pub fn masked(self, m: &Masker) -> Record {
        Record {
            event: self.event.masked(m),
            bloodline: self.bloodline.map(|b| Bloodline {
                creator: b.creator.map(|s| m.mask(&s)),
                purpose: b.purpose.map(|s| m.mask(&s)),
            }),
            ..self
        }
    }
}
