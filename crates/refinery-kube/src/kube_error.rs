//! Errors of the Kubernetes adapter, classified so nothing above it knows HTTP.

/// A boxed cause.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// A manifest in git cannot be read: nothing is applied or removed.
    #[error("invalid kubernetes manifest `{origin}`: {message}")]
    Manifest { origin: String, message: String },
    /// The kubeconfig or its context cannot be used.
    #[error("failed to load kubeconfig context `{context}`")]
    Config {
        context: String,
        #[source]
        source: Cause,
    },
    #[error("failed to {action} `{what}`: not found")]
    NotFound { action: String, what: String },
    #[error("failed to {action} `{what}`: conflict: {message}")]
    Conflict {
        action: String,
        what: String,
        message: String,
    },
    /// The API server does not answer.
    #[error("failed to {action} `{what}`: the API server is unreachable")]
    Unreachable {
        action: String,
        what: String,
        #[source]
        source: Cause,
    },
    /// The API server refused (invalid object, forbidden, …).
    #[error("failed to {action} `{what}`: {message}")]
    Other {
        action: String,
        what: String,
        message: String,
    },
}

impl KubeError {
    /// `hint:` lines for the CLI.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            KubeError::Manifest { .. } => vec![
                "fix the manifest in git; nothing was applied or removed for this source".into(),
            ],
            KubeError::Config { .. } => vec![
                "check KUBECONFIG and the `context` of the `kubernetes:` entry (or the node's `kube_context`)".into(),
            ],
            KubeError::Unreachable { .. } => {
                vec!["is the API server running? `kubectl get --raw /readyz`".into()]
            }
            _ => Vec::new(),
        }
    }
}

pub type Result<T, E = KubeError> = std::result::Result<T, E>;
