//! The daemon's side of the GitOps loop (issue 25), kept in one place so the loop itself only
//! calls it: what is followed (a [`Follower`]: the branch, the highest matching tag or a fixed
//! revision, fetched every `--fetch-interval` or at once when a webhook or `POST /api/v1/sync`
//! asks), the wake-ups those requests send, and the commit statuses the revision events become.
//! The HTTP side is `crate::gitops::routes`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use refinery_forge::ReporterOptions;
use refinery_git::{Follow, Follower, TagPattern, Tip};
use tokio::sync::mpsc;

use crate::args::RunArgs;
use crate::error::CliError;
use crate::gitops::commit_statuses::{context_for, host_name};
use crate::gitops::{CommitStatuses, DaemonLink, Gitops, RevisionEvent};
use crate::settings::Settings;

/// What the HTTP handlers see of the daemon.
struct Link {
    wakes: mpsc::UnboundedSender<Option<String>>,
    view: Mutex<LinkView>,
}

#[derive(Default)]
struct LinkView {
    nodes: BTreeSet<String>,
    /// `(from, to)` of the rollback in force: the daemon stays on `to` while `from` is the tip.
    rolled_back: Option<(String, String)>,
}

impl Link {
    fn view(&self) -> std::sync::MutexGuard<'_, LinkView> {
        self.view
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl DaemonLink for Link {
    fn wake(&self, node: Option<&str>) {
        let _ = self.wakes.send(node.map(str::to_owned));
    }

    fn has_node(&self, node: &str) -> bool {
        self.view().nodes.contains(node)
    }

    fn will_enforce(&self, tip: &str) -> String {
        match &self.view().rolled_back {
            Some((from, to)) if from == tip => to.clone(),
            _ => tip.to_owned(),
        }
    }
}

/// What a batch of wake-ups asks for.
pub enum Wake {
    /// A full pass (a push webhook, or `POST /api/v1/sync` without `?node=`).
    Full,
    /// A pass over these nodes only (`POST /api/v1/sync?node=NAME`).
    Nodes(BTreeSet<String>),
}

/// Each fetch from the remote is logged (tests count them: a refused webhook fetches nothing).
fn log_fetch(tip: &Tip) {
    if tip.fetched {
        tracing::info!(commit = %tip.commit, from = %tip.source, "fetched from the remote");
    }
}

/// Owned by the daemon loop.
pub struct GitopsHook {
    follower: Arc<Follower>,
    /// What `follow` reads as in logs: the branch, `tags v*`, or the revision.
    label: String,
    wakes: mpsc::UnboundedReceiver<Option<String>>,
    link: Arc<Link>,
    statuses: CommitStatuses,
    /// The webhook and sync endpoints, until the `--listen` server takes them.
    routes: Option<axum::Router>,
}

impl GitopsHook {
    /// Builds the follower from `--follow-tag`/`--branch`/`--rev` and `--fetch-interval`, the
    /// endpoints from `--webhook-secret-file` (or `REFINERY_WEBHOOK_SECRET`) and the bearer
    /// token, and the commit statuses' context (`refinery/<host or shard>`).
    pub fn start(settings: &Settings, args: &RunArgs) -> Result<GitopsHook, CliError> {
        let g = &args.gitops;
        let (follow, label) = match (&g.follow_tag, &args.branch) {
            (Some(glob), _) => (Follow::Tag(TagPattern::new(glob)?), format!("tags {glob}")),
            (None, Some(branch)) => (Follow::Branch(branch.clone()), branch.clone()),
            (None, None) => (Follow::Rev(settings.rev.clone()), settings.rev.clone()),
        };
        let source = refinery_git::GitSource::open(&settings.repo)?;
        let follower = Arc::new(Follower::new(
            source,
            follow,
            Duration::from_millis(g.fetch_interval),
        ));
        let env = |k: &str| std::env::var(k).ok();
        let secret = g.webhook_secret(&env)?;
        let token = crate::web::token_from(args)?;
        let (tx, wakes) = mpsc::unbounded_channel();
        let link = Arc::new(Link {
            wakes: tx,
            view: Mutex::new(LinkView::default()),
        });
        let routes = crate::gitops::router(Arc::new(Gitops {
            follower: Arc::clone(&follower),
            secret,
            token: token.map(Into::into),
            daemon: Arc::clone(&link) as Arc<dyn DaemonLink>,
        }));
        let statuses = CommitStatuses::new(
            context_for(&host_name(), settings.shard),
            g.public_url.clone(),
            ReporterOptions::default(),
            Box::new(|k: &str| std::env::var(k).ok()),
        );
        Ok(GitopsHook {
            follower,
            label,
            wakes,
            link,
            statuses,
            routes: Some(routes),
        })
    }

    /// The branch, tag pattern or revision followed, for logs.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The endpoints to serve on `--listen` (once).
    pub fn take_routes(&mut self) -> Option<axum::Router> {
        self.routes.take()
    }

    /// The commit to enforce now (fetching first when due or asked; blocks: call at the start or
    /// through [`GitopsHook::tip`]).
    pub fn tip_blocking(&self) -> Result<Tip, CliError> {
        let tip = self.follower.tip(Instant::now())?;
        log_fetch(&tip);
        Ok(tip)
    }

    /// [`GitopsHook::tip_blocking`] off the loop's thread.
    pub async fn tip(&self) -> Result<Tip, CliError> {
        let follower = Arc::clone(&self.follower);
        tokio::task::spawn_blocking(move || follower.tip(Instant::now()))
            .await
            .map_err(|e| CliError::Io {
                action: "look for a new commit".into(),
                source: std::io::Error::other(e),
            })?
            .map_err(CliError::from)
            .inspect(log_fetch)
    }

    /// Waits for webhooks or sync requests; all those waiting are taken as one.
    pub async fn woken(&mut self) -> Wake {
        let Some(first) = self.wakes.recv().await else {
            // The sender lives in `self.link`: never closed while the hook lives.
            return std::future::pending().await;
        };
        let mut nodes = BTreeSet::new();
        let mut full = false;
        for wake in std::iter::once(first).chain(std::iter::from_fn(|| self.wakes.try_recv().ok()))
        {
            match wake {
                Some(node) => {
                    nodes.insert(node);
                }
                None => full = true,
            }
        }
        if full { Wake::Full } else { Wake::Nodes(nodes) }
    }

    /// What the endpoints must know of the daemon: its nodes, and the rollback in force.
    pub fn observe(&mut self, nodes: &[String], rolled_back: Option<(String, String)>) {
        self.statuses.set_nodes(nodes);
        let mut view = self.link.view();
        view.nodes = nodes.iter().cloned().collect();
        view.rolled_back = rolled_back;
    }

    /// The `commit_status:` of the revision in force.
    pub fn configure(&mut self, manifest: &refinery_core::Manifest) {
        self.statuses.configure(manifest.commit_status.as_ref());
    }

    /// A revision event: its commit status goes out (queued, never waited on).
    pub fn on_revision(&mut self, event: &RevisionEvent) {
        self.statuses.on_revision(event);
    }

    /// Gives queued statuses a few seconds to go out.
    pub async fn shutdown(&mut self) {
        self.statuses.shutdown(Duration::from_secs(5)).await;
    }
}

/// The daemon's calls into the hook, at the points of its loop where git or a revision changes.
impl super::Daemon {
    /// At the start: the revision's `commit_status:`, and `pending` when a deploy is under way.
    pub(super) fn gitops_started(&mut self) {
        self.gitops.configure(&self.desired.manifest);
        self.gitops_observe();
        if let Some(p) = &self.state.pending {
            let event = RevisionEvent::Enforcing {
                revision: p.revision.clone(),
            };
            self.gitops.on_revision(&event);
        }
    }

    /// A webhook or a sync request: look at git now (the fetch was asked for), then a pass —
    /// over every node, or over the nodes asked for when the revision stays.
    pub(super) async fn on_gitops_wake(&mut self, wake: Wake) {
        let switched = self.poll_git().await;
        tracing::debug!(switched, "woken by a webhook or a sync request");
        self.scope = match wake {
            Wake::Nodes(nodes) if !switched && !nodes.is_empty() => Some(nodes),
            _ => None,
        };
    }

    /// A new revision is in force (`rolled_back`: because of a rollback).
    pub(super) fn gitops_switched(
        &mut self,
        to: &str,
        rolled_back: Option<&refinery_core::daemon_state::RolledBack>,
    ) {
        self.gitops.configure(&self.desired.manifest);
        let event = match rolled_back {
            Some(rb) => RevisionEvent::RolledBack {
                from: rb.from.clone(),
                to: to.to_owned(),
                why: rb.why.clone(),
            },
            None => RevisionEvent::Enforcing {
                revision: to.to_owned(),
            },
        };
        self.gitops.on_revision(&event);
    }

    /// What the endpoints must know: the nodes, the rollback in force.
    pub(super) fn gitops_observe(&mut self) {
        let nodes: Vec<String> = self.nodes().into_iter().map(|n| n.name).collect();
        let rolled_back = self
            .state
            .rolled_back
            .as_ref()
            .map(|rb| (rb.from.clone(), rb.to.clone()));
        self.gitops.observe(&nodes, rolled_back);
    }

    /// Actions failed on `node` while `rev` is being deployed: its commit fails.
    pub(super) fn gitops_failed(&mut self, rev: &str, node: &str, failed: &[(String, String)]) {
        let deploying = self
            .state
            .pending
            .as_ref()
            .is_some_and(|p| p.revision == rev);
        if let (true, Some((name, why))) = (deploying, failed.first()) {
            self.gitops.on_revision(&RevisionEvent::ActionFailed {
                revision: rev.to_owned(),
                resource: refinery_core::ResourceId::container(node, name).to_string(),
                why: why.clone(),
            });
        }
    }
}
