//! The controller's [`GitFollow`] port as the GitOps loop fills it (issue 25): what is followed
//! (a [`Follower`]: the branch, the highest matching tag or a fixed revision, fetched every
//! `--fetch-interval` or at once when a webhook or `POST /api/v1/sync` asks), the wake-ups those
//! requests send, and the commit statuses the revision events become. The HTTP side is
//! `crate::gitops::routes`; the controller's calls are `refinery_controller`'s `gitops.rs`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use refinery_controller::ControllerError;
use refinery_controller::ports::{GitFollow, PortFuture, Wake};
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
    pub fn start(
        settings: &Settings,
        args: &RunArgs,
        shard: Option<refinery_core::Shard>,
    ) -> Result<GitopsHook, CliError> {
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
        let vars = settings.env.vars.clone();
        let env = move |k: &str| vars.get(k).cloned();
        let secret = g.webhook_secret(&env)?;
        let token = crate::web::token_from(args, &settings.env)?;
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
            context_for(&host_name(), shard),
            g.public_url.clone(),
            ReporterOptions::default(),
            Box::new(env),
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
    pub fn tip_blocking(&self) -> Result<Tip, ControllerError> {
        let tip = self.follower.tip(Instant::now())?;
        log_fetch(&tip);
        Ok(tip)
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

/// The controller follows git through the hook.
impl GitFollow for GitopsHook {
    fn label(&self) -> &str {
        GitopsHook::label(self)
    }

    fn tip_blocking(&self) -> Result<String, ControllerError> {
        GitopsHook::tip_blocking(self).map(|t| t.commit)
    }

    fn tip(&self) -> PortFuture<'_, Result<String, ControllerError>> {
        // Only the follower goes into the future: the hook itself is not `Sync`.
        let follower = Arc::clone(&self.follower);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || follower.tip(Instant::now()))
                .await
                .map_err(|e| ControllerError::Io {
                    action: "look for a new commit".into(),
                    source: std::io::Error::other(e),
                })?
                .map_err(ControllerError::from)
                .inspect(log_fetch)
                .map(|t| t.commit)
        })
    }

    fn woken(&mut self) -> PortFuture<'_, Wake> {
        Box::pin(GitopsHook::woken(self))
    }

    fn configure(&mut self, manifest: &refinery_core::Manifest) {
        GitopsHook::configure(self, manifest);
    }

    fn observe(&mut self, nodes: &[String], rolled_back: Option<(String, String)>) {
        GitopsHook::observe(self, nodes, rolled_back);
    }

    fn on_revision(&mut self, event: &RevisionEvent) {
        GitopsHook::on_revision(self, event);
    }

    fn shutdown(&mut self) -> PortFuture<'_, ()> {
        Box::pin(GitopsHook::shutdown(self))
    }
}
