//! Refinery and git forges (GitHub, GitLab, Gitea and Forgejo).
//!
//! In: a push webhook is checked against the shared secret ([`verify`]) and read into one typed
//! event whatever forge sent it ([`parse`] → [`WebhookEvent::Push`]). Pure: no I/O, no clock.
//!
//! Out: the result of deploying a commit goes back to the forge as a commit status. A
//! [`StatusTarget`] turns a [`CommitStatus`] into the request the forge documents (pure,
//! [`StatusTarget::request`]); with feature `client` (the default), a [`StatusReporter`] sends them
//! from a task of its own with retries, so a slow or absent forge never holds anything up.

mod commit_status;
mod forge_token;
mod git_ref;
mod retry;
mod status_request;
mod status_target;
mod webhook;
mod webhook_error;
mod webhook_secret;

#[cfg(feature = "client")]
mod reporter;
#[cfg(feature = "testing")]
pub mod testing;

pub use commit_status::{CommitState, CommitStatus, DESCRIPTION_MAX_CHARS, StatusError};
pub use forge_token::ForgeToken;
pub use git_ref::GitRef;
pub use refinery_core::manifest::Forge;
pub use retry::{Retry, RetryVerdict};
pub use status_request::StatusRequest;
pub use status_target::StatusTarget;
pub use webhook::{
    MAX_BODY_BYTES, PushEvent, WebhookEvent, parse, sign_hex, signature_header, verify,
};
pub use webhook_error::WebhookError;
pub use webhook_secret::WebhookSecret;

#[cfg(feature = "client")]
pub use reporter::{Delivery, DeliveryHook, DeliveryResult, ReporterOptions, StatusReporter};
