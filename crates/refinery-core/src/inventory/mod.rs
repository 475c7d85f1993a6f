//! Inventory audit and cleanup (seed 004): every container, image, volume and network on a node is
//! classified as expected, protected, safe to delete or extra, with a reason; cleanup removes only
//! the safe-to-delete set, and never on a read-only node.
//!
//! Everything here is pure: the engine's lists, the manifest, what Refinery last saw in use and
//! `now` come in; classes, reasons, audit-log records and schedule decisions go out.

mod audit_record;
mod classify;
mod engine;
mod kind;
mod usage;

pub use crate::schedule::{ScheduleError, check_schedule, due, next_run};
pub use audit_record::{AuditRecord, DEFAULT_AUDIT_LOG};
pub use classify::{Class, Item, NodeAudit, Snapshot, classify, cleanup_set, format_age};
pub use engine::{EngineImage, EngineNetwork, EngineVolume};
pub use kind::Kind;
pub use usage::{INVENTORY_STATE_VERSION, InventoryState};
