//! One message to the alert channels, before it is shaped for a channel.

use jiff::Timestamp;
use refinery_core::manifest::Level;
use serde::Serialize;

/// Why a message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// A drift was seen for the first time.
    DriftStarted,
    /// A drift seen earlier is gone.
    DriftResolved,
    /// A drift still lasts (`remind_every`).
    Reminder,
    /// More than `burst` drifts started within `group_wait`: one message listing them.
    BurstStarted,
    /// Every drift of a burst is resolved.
    BurstResolved,
    /// Something else worth telling: an action failed, a node is unreachable, a bad revision,
    /// flap protection, a rollback.
    Alert,
    /// Messages were held back by the channel's rate limit.
    Suppressed,
    /// `refinery alert test`.
    Test,
}

impl NoticeKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::DriftStarted => "drift_started",
            NoticeKind::DriftResolved => "drift_resolved",
            NoticeKind::Reminder => "reminder",
            NoticeKind::BurstStarted => "burst_started",
            NoticeKind::BurstResolved => "burst_resolved",
            NoticeKind::Alert => "alert",
            NoticeKind::Suppressed => "suppressed",
            NoticeKind::Test => "test",
        }
    }
}

/// A message for the channels. `level` decides which channels get it (a resolved drift keeps
/// the level its start had, so a channel that was told of the start hears of the end).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub kind: NoticeKind,
    pub level: Level,
    pub title: String,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// `missing`, `status`, … for drift messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    pub time: Timestamp,
    /// A burst's drifts (empty for any other message).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drifts: Vec<DriftRef>,
}

/// One drift of a burst.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriftRef {
    pub node: Option<String>,
    pub resource: String,
    pub drift: String,
    /// What the drift's own message said (its start), or how it ended.
    pub text: String,
}

impl Notice {
    #[must_use]
    pub fn new(kind: NoticeKind, level: Level, title: impl Into<String>, time: Timestamp) -> Self {
        Notice {
            kind,
            level,
            title: title.into(),
            text: String::new(),
            node: None,
            resource: None,
            drift: None,
            revision: None,
            time,
            drifts: Vec::new(),
        }
    }

    /// The drift this message is about, as `<resource> <drift>` (the daemon's first-seen key).
    #[must_use]
    pub fn drift_key(&self) -> Option<String> {
        Some(format!(
            "{} {}",
            self.resource.as_ref()?,
            self.drift.as_ref()?
        ))
    }
}

#[must_use]
pub fn level_str(level: Level) -> &'static str {
    match level {
        Level::Info => "info",
        Level::Warning => "warning",
        Level::Critical => "critical",
    }
}
