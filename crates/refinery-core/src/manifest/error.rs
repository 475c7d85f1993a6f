//! Problems found while loading a manifest: every one names file, line, column and field.

use std::fmt;

use serde::Serialize;

use crate::yaml::Loc;

/// One problem in a manifest (or a warning about it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// Dotted path of the field (`containers[0].ports[1]`).
    pub field: String,
    pub message: String,
    pub hint: Option<String>,
}

impl Issue {
    #[must_use]
    pub fn new(file: &str, loc: Loc, field: &str, message: impl Into<String>) -> Self {
        Issue {
            file: file.to_owned(),
            line: loc.line,
            column: loc.column,
            field: field.to_owned(),
            message: message.into(),
            hint: None,
        }
    }

    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "`{}`: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a manifest could not be loaded. Nothing is ever acted on from a manifest that fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("failed to load `{file}`: {} problem{} found", issues.len(), if issues.len() == 1 { "" } else { "s" })]
    Invalid { file: String, issues: Vec<Issue> },
    #[error(
        "failed to find a manifest: neither `refinery.yaml` nor `bloodline_manifest.yaml` is in commit `{commit}`"
    )]
    NotFound { commit: String },
    /// The manifest loads, but a network or volume its stacks declare `external` is not on the
    /// node: nothing that uses it could be created, so nothing is done.
    #[error("failed to use `{file}`: {} external network{} or volume{} missing on the engine", issues.len(), if issues.len() == 1 { " is" } else { "s are" }, if issues.len() == 1 { "" } else { "s" })]
    MissingExternal { file: String, issues: Vec<Issue> },
}

impl ManifestError {
    #[must_use]
    pub fn issues(&self) -> &[Issue] {
        match self {
            ManifestError::Invalid { issues, .. }
            | ManifestError::MissingExternal { issues, .. } => issues,
            ManifestError::NotFound { .. } => &[],
        }
    }

    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            ManifestError::Invalid { .. } => {
                vec!["fix the problems above, commit, and run `refinery validate` again".into()]
            }
            ManifestError::NotFound { .. } => vec![
                "commit a `refinery.yaml` at the repository root (see `examples/quickstart`)"
                    .into(),
            ],
            ManifestError::MissingExternal { .. } => vec![
                "Refinery never creates an external network or volume: create it on the node, then run the command again".into(),
            ],
        }
    }
}
