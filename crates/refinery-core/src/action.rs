//! What a drift rule may ask for: the one action vocabulary of rules, overrides and decisions.

use serde::{Deserialize, Serialize};

/// What a drift rule may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Terminate,
    Recreate,
    Restart,
    Rollback,
    Alert,
    Ignore,
}

impl Action {
    pub const ALL: [&'static str; 6] = [
        "terminate",
        "recreate",
        "restart",
        "rollback",
        "alert",
        "ignore",
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Terminate => "terminate",
            Action::Recreate => "recreate",
            Action::Restart => "restart",
            Action::Rollback => "rollback",
            Action::Alert => "alert",
            Action::Ignore => "ignore",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "terminate" => Action::Terminate,
            "recreate" => Action::Recreate,
            "restart" => Action::Restart,
            "rollback" => Action::Rollback,
            "alert" => Action::Alert,
            "ignore" => Action::Ignore,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
