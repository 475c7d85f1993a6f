//! Errors of the controller and of the shared start of every pass (loading the desired state,
//! choosing nodes and their engines). The CLI maps each to its exit code.

use refinery_core::ManifestError;
use refinery_git::GitError;
use refinery_store::LedgerError;

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    State(#[from] refinery_store::StateError),
    #[error("failed to read `{path}` from commit `{commit}`: it is not valid UTF-8")]
    NotUtf8 { path: String, commit: String },
    #[error("failed to use the TLS files of node `{node}`: {message}")]
    BadTls { node: String, message: String },
    #[error("failed to find node `{node}` in the manifest")]
    UnknownNode { node: String, known: Vec<String> },
    #[error("failed to {action}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
}

/// A `Result` whose error is a [`ControllerError`].
pub type Result<T, E = ControllerError> = std::result::Result<T, E>;

impl ControllerError {
    /// What the user can do about it.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            ControllerError::Git(e) => e.hints(),
            ControllerError::Manifest(e) => e.hints(),
            ControllerError::Ledger(e) => e.hints(),
            ControllerError::State(e) => e.hints(),
            ControllerError::NotUtf8 { .. } => {
                vec!["save the manifest as UTF-8 and commit it".into()]
            }
            ControllerError::BadTls { .. } => vec![
                "`tls:` paths are relative to the repository; commit the CA, certificate and key the engine expects".into(),
            ],
            ControllerError::UnknownNode { node, known } => {
                match refinery_core::suggestion::suggest(node, known.iter().map(String::as_str)) {
                    Some(s) => vec![format!("did you mean `{s}`?")],
                    None => vec![format!("declared nodes: {}", known.join(", "))],
                }
            }
            ControllerError::Io { .. } => Vec::new(),
        }
    }

    /// The manifest's issues, one line, for a log line or a ledger alert; empty for other errors.
    #[must_use]
    pub fn issues_line(&self) -> String {
        match self {
            ControllerError::Manifest(m) => m
                .issues()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
            _ => String::new(),
        }
    }
}
