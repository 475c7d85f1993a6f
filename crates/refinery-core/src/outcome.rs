//! The closed vocabulary of what happened to a resource.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Recreated,
    Restarted,
    Removed,
    RolledBack,
    Unchanged,
    Skipped,
    Deferred,
    Failed,
}

impl Outcome {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Recreated => "recreated",
            Outcome::Restarted => "restarted",
            Outcome::Removed => "removed",
            Outcome::RolledBack => "rolled back",
            Outcome::Unchanged => "unchanged",
            Outcome::Skipped => "skipped",
            Outcome::Deferred => "deferred",
            Outcome::Failed => "failed",
        }
    }

    #[must_use]
    pub fn is_failure(self) -> bool {
        self == Outcome::Failed
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
