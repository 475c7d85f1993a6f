//! What Refinery marks while it acts on a container: when, and which engine events its action
//! makes (see `own_events.rs`).

use refinery_core::StepKind;
use tokio::time::Instant;

/// When Refinery acted on a container.
pub(crate) struct Mark {
    pub(crate) start: Instant,
    /// `None` while acting.
    pub(crate) end: Option<Instant>,
    pub(crate) actions: &'static [&'static str],
}

/// What a recreate (or its recovery) makes the engine report.
pub(crate) const REPLACE_EVENTS: &[&str] = &[
    "create", "start", "kill", "die", "stop", "rename", "destroy",
];

/// The engine events a step makes.
pub(crate) fn events_of(kind: StepKind) -> &'static [&'static str] {
    match kind {
        StepKind::Restart => &["kill", "die", "stop", "start", "restart"],
        StepKind::Start => &["start"],
        StepKind::Unpause => &["unpause"],
        StepKind::Remove => &["kill", "die", "stop", "destroy"],
        StepKind::Create | StepKind::Recreate | StepKind::Rollback => REPLACE_EVENTS,
        StepKind::Alert | StepKind::Defer | StepKind::Protected | StepKind::Ignore => &[],
    }
}
