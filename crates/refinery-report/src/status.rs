//! What the status page and `GET /api/v1/status` show (JSON, snake_case, only ever extended).

use jiff::Timestamp;
use serde::Serialize;

/// Schema version of `/api/v1/status`.
pub const STATUS_VERSION: u32 = 1;

/// The whole picture, rebuilt after every pass and ledger append.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub v: u32,
    pub version: &'static str,
    /// When this picture was made.
    pub time: Timestamp,
    /// At least one pass has finished.
    pub ready: bool,
    pub passes: u64,
    pub revision: RevisionView,
    pub nodes: Vec<NodeView>,
    /// Newest first.
    pub ledger: Vec<LedgerLine>,
    /// Alert messages handed to the channels, newest first.
    pub alerts: Vec<AlertLine>,
    /// How many alert channels are configured.
    pub channels: usize,
    /// The election, under `refinery run --ha`: this instance's role, the leader, its term, the
    /// standbys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ha: Option<refinery_ha::HaStatus>,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            v: STATUS_VERSION,
            version: env!("CARGO_PKG_VERSION"),
            time: Timestamp::now(),
            ready: false,
            passes: 0,
            revision: RevisionView::default(),
            nodes: Vec::new(),
            ledger: Vec::new(),
            alerts: Vec::new(),
            channels: 0,
            ha: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RevisionView {
    /// The commit enforced now.
    pub in_force: Option<String>,
    /// `subject` line of that commit.
    pub message: Option<String>,
    /// Applied, not yet proven healthy.
    pub pending: Option<String>,
    pub last_healthy: Option<String>,
    /// Set while an older revision is held after a rollback.
    pub rolled_back: Option<RolledBackView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RolledBackView {
    pub from: String,
    pub to: String,
    pub why: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    pub name: String,
    pub reachable: bool,
    /// Why the node could not be observed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub mode: String,
    pub last_pass: Option<Timestamp>,
    pub drifts: usize,
    pub resources: Vec<ResourceView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResourceView {
    pub id: String,
    pub name: String,
    /// Declared in the manifest (an unauthorized container is not).
    pub declared: bool,
    /// `in_sync`, `drift`, `degraded`.
    pub status: &'static str,
    pub image: Option<String>,
    /// Observed state (`running`, `exited`, …), `None` when there is no container.
    pub state: Option<String>,
    pub health: Option<String>,
    pub drifts: Vec<DriftView>,
    /// What the daemon decided: `restart`, `defer`, `alert`, …, with why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DriftView {
    pub kind: String,
    pub summary: String,
    pub since: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LedgerLine {
    pub seq: u64,
    pub time: Timestamp,
    pub kind: String,
    pub node: Option<String>,
    pub resource: Option<String>,
    pub outcome: Option<String>,
    pub actor: String,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertLine {
    pub time: Timestamp,
    /// `drift_started`, `drift_resolved`, `alert`, …
    pub kind: String,
    pub level: String,
    pub title: String,
    pub text: String,
}
