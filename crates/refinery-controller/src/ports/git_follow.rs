//! What the controller follows in git, and who hears what happened to its revisions.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use refinery_core::Manifest;

use crate::error::ControllerError;

/// A future the port returns, boxed so the port can be a trait object.
pub type PortFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What happened to a revision, as the controller tells it (commit statuses are made of these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevisionEvent {
    /// The controller started enforcing `revision` (a new commit, or a rollback by hand to it).
    Enforcing { revision: String },
    /// `revision` was judged healthy.
    Healthy { revision: String },
    /// `from` was not healthy in time: the controller went back to `to`.
    RolledBack {
        from: String,
        to: String,
        why: String,
    },
    /// `revision` was not healthy in time, and there was nothing to go back to.
    GaveUp { revision: String, why: String },
    /// An action for `revision` failed while it was being deployed.
    ActionFailed {
        revision: String,
        resource: String,
        why: String,
    },
}

/// What a batch of wake-ups (webhooks, sync requests) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// A full pass.
    Full,
    /// A pass over these nodes only.
    Nodes(BTreeSet<String>),
}

/// The branch, tag pattern or revision followed (the CLI's GitOps hook: fetches every
/// `--fetch-interval` or when a webhook asks, and sends commit statuses).
pub trait GitFollow: Send {
    /// What is followed, for logs and `refinery apply`'s answers.
    fn label(&self) -> &str;

    /// The commit to enforce now (fetching first when due); blocks: called at the start.
    fn tip_blocking(&self) -> Result<String, ControllerError>;

    /// [`GitFollow::tip_blocking`] off the loop's thread.
    fn tip(&self) -> PortFuture<'_, Result<String, ControllerError>>;

    /// Resolves when something asks the controller to look at git now; never, by default.
    fn woken(&mut self) -> PortFuture<'_, Wake> {
        Box::pin(std::future::pending())
    }

    /// The revision in force changed to one with this manifest.
    fn configure(&mut self, _manifest: &Manifest) {}

    /// The controller's nodes, and the rollback in force (`from`, `to`).
    fn observe(&mut self, _nodes: &[String], _rolled_back: Option<(String, String)>) {}

    /// Something happened to a revision.
    fn on_revision(&mut self, _event: &RevisionEvent) {}

    /// The controller stops: lets queued reports go out.
    fn shutdown(&mut self) -> PortFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// Follows a branch (fetched from the repository's remote, if it has one, at every look) or a
/// fixed revision, and tells nobody: the controller without the CLI's GitOps hook.
#[derive(Debug, Clone)]
pub struct PlainFollow {
    repo: PathBuf,
    follow: String,
    branch: Option<String>,
}

impl PlainFollow {
    /// Follows `branch` when given, else `rev` as it resolves.
    #[must_use]
    pub fn new(repo: PathBuf, rev: &str, branch: Option<&str>) -> PlainFollow {
        PlainFollow {
            repo,
            follow: branch.unwrap_or(rev).to_owned(),
            branch: branch.map(str::to_owned),
        }
    }
}

impl GitFollow for PlainFollow {
    fn label(&self) -> &str {
        &self.follow
    }

    fn tip_blocking(&self) -> Result<String, ControllerError> {
        resolve_tip(&self.repo, &self.follow, self.branch.as_deref())
    }

    fn tip(&self) -> PortFuture<'_, Result<String, ControllerError>> {
        let me = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || me.tip_blocking())
                .await
                .map_err(|e| ControllerError::Io {
                    action: "look for a new commit".into(),
                    source: std::io::Error::other(e),
                })?
        })
    }
}

/// The commit to enforce: with `branch`, the remote's branch after a fetch (or the local branch
/// when the repository has no remote); without, `follow` as it resolves locally.
fn resolve_tip(
    repo: &std::path::Path,
    follow: &str,
    branch: Option<&str>,
) -> Result<String, ControllerError> {
    let git = refinery_git::GitSource::open(repo)?;
    let rev = match branch {
        Some(b) => {
            if let Some(f) = git.fetch_upstream(b)?
                && f.changed()
            {
                tracing::info!(remote = %f.remote, branch = %f.branch, "fetched a new commit");
            }
            git.tracking_ref(b)?
        }
        None => follow.to_owned(),
    };
    Ok(git.resolve(&rev)?.id)
}
