//! Closing the GitOps loop (issue 25): push webhooks and `POST /api/v1/sync` make the daemon fetch
//! and reconcile now; the deploy result goes back to the forge as a commit status.
//!
//! - [`args`]: the `refinery run` flags (`--webhook-secret-file`, `--follow-tag`,
//!   `--fetch-interval`, `--public-url`).
//! - [`routes`]: the HTTP endpoints, merged into the `--listen` server.
//! - [`commit_statuses`]: revision events → commit statuses.
//! - [`hook`]: the controller's `GitFollow` port: the follower, wake-ups, statuses.

pub mod args;
pub mod commit_statuses;
pub mod hook;
pub mod routes;

pub use args::GitopsArgs;
pub use commit_statuses::{CommitStatuses, RevisionEvent};
pub use hook::GitopsHook;
pub use routes::{DaemonLink, Gitops, router};
