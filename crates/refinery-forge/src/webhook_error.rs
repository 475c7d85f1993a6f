//! Why a webhook request was refused.

use refinery_core::manifest::Forge;

/// A webhook request that is not acted on. [`WebhookError::http_status`] is the answer the
/// server gives; messages never contain the secret or the body.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No signature (or token) header at all.
    #[error("failed to authenticate the {forge} webhook: the `{header}` header is missing")]
    MissingSignature { forge: Forge, header: &'static str },

    /// A signature that does not match the body under the secret (or is not even hex).
    #[error("failed to authenticate the {forge} webhook: `{header}` does not match the secret")]
    WrongSignature { forge: Forge, header: &'static str },

    /// The body is larger than [`MAX_BODY_BYTES`](crate::MAX_BODY_BYTES).
    #[error("failed to read the {forge} webhook: its body is over {limit} bytes")]
    TooLarge { forge: Forge, limit: usize },

    /// Signed, but without the header naming the event.
    #[error("failed to read the {forge} webhook: the `{header}` header is missing")]
    MissingEvent { forge: Forge, header: &'static str },

    /// Signed, but the body is not the forge's documented payload for its event.
    #[error("failed to read the {forge} `{event}` webhook: {reason}")]
    Payload {
        forge: Forge,
        event: String,
        reason: String,
    },
}

impl WebhookError {
    /// The HTTP status to answer with: 401 when not authenticated, 413 when too large, 400 when
    /// authenticated but unreadable.
    #[must_use]
    pub fn http_status(&self) -> u16 {
        match self {
            WebhookError::MissingSignature { .. } | WebhookError::WrongSignature { .. } => 401,
            WebhookError::TooLarge { .. } => 413,
            WebhookError::MissingEvent { .. } | WebhookError::Payload { .. } => 400,
        }
    }

    /// What the sender (or whoever configures it) can do about it.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            WebhookError::MissingSignature { forge, .. }
            | WebhookError::WrongSignature { forge, .. } => {
                vec![format!(
                    "set the {forge} webhook's secret to the daemon's `--webhook-secret-file` (or `REFINERY_WEBHOOK_SECRET`)"
                )]
            }
            WebhookError::TooLarge { .. } => {
                vec!["subscribe the webhook to push events only".to_owned()]
            }
            WebhookError::MissingEvent { .. } | WebhookError::Payload { .. } => {
                vec!["point only this forge's webhooks at this path, with content type `application/json`".to_owned()]
            }
        }
    }
}
