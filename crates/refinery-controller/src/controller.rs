//! The reconcile loop of `refinery run`: [`Controller`] owns it and its state.
//!
//! Engine events, a new commit on the branch, a request file and the periodic timer only
//! *trigger* a pass; every pass observes every node completely and decides on that snapshot.
//! Triggers that arrive while a pass runs are coalesced into the next one. Actions run to the end:
//! the shutdown future is looked at between passes.
//!
//! Where things happen: the loop and one pass are here ([`Controller::run`], `pass`); what a
//! drift rule decides is `refinery_engine::evaluate` (policy in `refinery_core::policy`); flap
//! protection and alert dedup are [`crate::flap_guard`]; actions are carried out by
//! `refinery_engine::apply_plan`; revision health and rollback are [`crate::revision_judge`];
//! new commits are [`crate::revision_follow`]; engine events and what is Refinery's own are
//! [`crate::event_watch`] and [`crate::own_events`]; the ledger and state file are
//! [`crate::ledger_writer`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use jiff::Timestamp;
use refinery_core::daemon_state::{DEFAULT_FLAPPING, DaemonState, Pending, RevisionHealth};
use refinery_core::labels::spec_hash;
use refinery_core::ledger::{Event, Record};
use refinery_core::{DriftKind, Outcome, ResourceId, Step, StepKind};
use refinery_engine::{apply_plan, recreate_temp_name, start_first_temp_name};
use refinery_ha::Leadership;
use refinery_store::LedgerFile;
use refinery_store::state_file;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::action_marks::{Mark, events_of};
use crate::desired::{self, Desired};
use crate::error::ControllerError;
use crate::event_watch::{self, Trigger};
use crate::handover_state::{self, Keep, NodeAfter};
use crate::ledger_files::{ledger_rel, open_ledger};
use crate::node_engines;
use crate::node_pass::{NodePass, PassContext, evaluate_node, spec_of};
use crate::ports::{Clock, Engine, GitFollow, NodeConnector, Reporter};
use crate::requeue::{PassOutcome, Requeue};
use crate::state_keys::{NodeName, Source, Watch};

/// The state directory when `--state-dir` is not given: `refinery/` in the git directory (never
/// in the work tree, never committed).
pub fn default_state_dir(repo: &Path) -> Result<PathBuf, ControllerError> {
    let git = refinery_git::GitSource::open(repo)?;
    Ok(git.git_dir().join("refinery"))
}

/// The state file of the daemon whose state is in `state_dir` (else the default state directory
/// of `repo`), as a one-shot command beside it reads it; `None` when no daemon ever ran there or
/// its state cannot be read.
#[must_use]
pub fn daemon_state(
    repo: &Path,
    state_dir: Option<&Path>,
) -> Option<refinery_core::daemon_state::DaemonState> {
    state_dir
        .map(Path::to_path_buf)
        .or_else(|| default_state_dir(repo).ok())
        .map(|dir| state_file::path_in(&dir))
        .filter(|p| p.exists())
        .and_then(|p| state_file::load(&p).ok())
}

/// What flap protection holds back in the daemon whose state is in the default state directory
/// of `repo` (none when no daemon ever ran there, or its state cannot be read).
#[must_use]
pub fn daemon_suspensions(
    repo: &Path,
) -> BTreeMap<String, refinery_core::daemon_state::Suspension> {
    daemon_state(repo, None)
        .map(|s| s.suspended)
        .unwrap_or_default()
}

/// What `refinery run` was asked to do, resolved by the CLI.
#[derive(Debug, Clone, Default)]
pub struct ControllerOptions {
    /// The repository (its work tree, or a bare repository).
    pub repo: PathBuf,
    /// `--node`: only these nodes (empty: every node).
    pub nodes: Vec<String>,
    /// `--shard I/N`: only the nodes this shard owns.
    pub shard: Option<refinery_core::Shard>,
    /// `--max-concurrent-nodes`.
    pub max_concurrent_nodes: usize,
    /// `--state-dir`; else `refinery/` in the git directory.
    pub state_dir: Option<PathBuf>,
    /// `--check-interval` in milliseconds; else the manifest's `config.check_interval`.
    pub check_interval_ms: Option<u64>,
    /// `--poll-interval` in milliseconds: how often the branch, requests and schedules are looked at.
    pub poll_interval_ms: u64,
    /// `--event-backlog`: how many engine events may wait.
    pub event_backlog: u64,
}

/// A controller loaded but not yet running: the state file read, the revision to start with
/// loaded, the ledger opened (without `--ha`). The CLI starts its reporter with what it holds.
pub struct Boot {
    options: ControllerOptions,
    git: Box<dyn GitFollow>,
    state_dir: PathBuf,
    state: DaemonState,
    desired: Desired,
    tip: String,
    follow: String,
    start_alert: Option<String>,
    ledger_path: PathBuf,
    ledger: Option<LedgerFile>,
}

impl Boot {
    /// Reads the state, resolves what `git` follows and loads the revision to start with: the
    /// tip, unless the daemon rolled back from it; the last good revision when the tip does not
    /// load.
    pub fn load(
        options: ControllerOptions,
        git: Box<dyn GitFollow>,
    ) -> Result<Boot, ControllerError> {
        let state_dir = match &options.state_dir {
            Some(d) => d.clone(),
            None => default_state_dir(&options.repo)?,
        };
        // A shard keeps its own state beside the others: `<state dir>/shard-2-of-3`.
        let state_dir = match options.shard {
            Some(shard) => state_dir.join(shard.suffix()),
            None => state_dir,
        };
        let state = state_file::load(&state_file::path_in(&state_dir))?;
        let follow = git.label().to_owned();
        let tip = git.tip_blocking()?;
        let wanted = match &state.rolled_back {
            Some(rb) if rb.from == tip => rb.to.clone(),
            _ => tip.clone(),
        };
        let mut start_alert = None;
        let desired = match desired::load(&options.repo, &wanted) {
            Ok(d) => d,
            Err(e) => match state.revision.clone().filter(|r| *r != wanted) {
                Some(last) => {
                    tracing::error!(revision = %short(&wanted), error = %e, "failed to load the manifest; enforcing the last good revision {}", short(&last));
                    start_alert = Some(format!(
                        "failed to load revision `{}`: {e}; enforcing the last good revision `{}`",
                        short(&wanted),
                        short(&last)
                    ));
                    desired::load(&options.repo, &last)?
                }
                None => return Err(e),
            },
        };
        // Pulls send the registry logins of the revision in force.
        crate::registries::use_manifest(&desired.manifest);
        let ledger_path = options
            .repo
            .join(ledger_rel(&desired.manifest.ledger.path, options.shard));
        Ok(Boot {
            options,
            git,
            state_dir,
            state,
            desired,
            tip,
            follow,
            start_alert,
            ledger_path,
            ledger: None,
        })
    }

    /// Opens the ledger for writing (its writer lock first). Not with `--ha`: a leader opens it
    /// on being elected.
    pub fn open_ledger(mut self, now: Timestamp) -> Result<Boot, ControllerError> {
        self.ledger = Some(open_ledger(&self.ledger_path, &self.desired.manifest, now)?);
        Ok(self)
    }

    /// The desired state the controller starts with.
    #[must_use]
    pub fn desired(&self) -> &Desired {
        &self.desired
    }

    /// The state as the state file held it.
    #[must_use]
    pub fn state(&self) -> &DaemonState {
        &self.state
    }

    /// The state directory in use (a shard's own below the given one).
    #[must_use]
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }
}

/// The reconcile loop and its state. Built from a [`Boot`] with the ports the caller fills; `R`
/// is the nodes' engine client (the Docker adapter in `refinery run`, a fake runtime in tests).
pub struct Controller<R: Engine> {
    pub(crate) options: ControllerOptions,
    /// What is followed in git; wake-ups and commit statuses (the GitOps loop).
    pub(crate) git: Box<dyn GitFollow>,
    pub(crate) clock: Arc<dyn Clock>,
    /// The branch or revision followed.
    pub(crate) follow: String,
    pub(crate) state_dir: PathBuf,
    pub(crate) state: DaemonState,
    /// What the state file holds.
    pub(crate) saved: Option<DaemonState>,
    pub(crate) desired: Arc<Desired>,
    /// The tip of the followed branch last seen.
    pub(crate) tip: String,
    /// A tip that failed to load, already reported.
    pub(crate) bad_tip: Option<String>,
    /// The last error resolving the branch, already reported.
    pub(crate) branch_error: Option<String>,
    /// The ledger, open for writing: always without `--ha`; with it, only while leading.
    pub(crate) ledger: Option<LedgerFile>,
    pub(crate) ledger_path: PathBuf,
    /// `--ha`: the election; only its leader acts.
    pub(crate) ha: Option<refinery_ha::Leadership>,
    /// The leader term the ledger is being written under (`--ha`).
    pub(crate) term: Option<u64>,
    pub(crate) appended_seq: u64,
    pub(crate) committed_seq: u64,
    pub(crate) last_commit: Option<Instant>,
    pub(crate) commit_task: Option<tokio::task::JoinHandle<()>>,
    /// Makes a node's engine client.
    pub(crate) connector: Box<dyn NodeConnector<R>>,
    /// Each node's engine client and the endpoint it was made for.
    pub(crate) engines: BTreeMap<NodeName, (String, R)>,
    /// The follower tasks and what each was started for (endpoint and selector, or revision).
    pub(crate) watchers: BTreeMap<Watch, (String, tokio::task::JoinHandle<()>)>,
    pub(crate) tx: mpsc::UnboundedSender<Trigger>,
    rx: mpsc::UnboundedReceiver<Trigger>,
    /// The engine events waiting for the loop, bounded (`--event-backlog`).
    pub(crate) backlog: Arc<event_watch::Backlog>,
    /// Container names and ids Refinery acted on, and the engine events its action makes.
    pub(crate) ours: HashMap<String, Mark>,
    /// What was last alerted per resource, so an alert is repeated only when its reason changes.
    pub(crate) alerted: HashMap<ResourceId, String>,
    /// Containers created recently by someone else (their `start` is part of the birth).
    pub(crate) outside_created: HashMap<String, Instant>,
    /// The nodes and `kubernetes:` sources found unreachable (alerted once until they are back).
    pub(crate) unreachable: BTreeSet<Source>,
    /// Nodes whose leftovers of interrupted recreates were dealt with since the start.
    pub(crate) recovered: BTreeSet<NodeName>,
    pub(crate) self_id: Option<String>,
    pub(crate) check_interval: Duration,
    pub(crate) next_full: Instant,
    /// The earliest grace-period or health deadline, if any.
    pub(crate) next_due: Option<Timestamp>,
    /// When `inventory.schedule` (as it was then) runs next (see `inventory_schedule.rs`).
    pub(crate) inventory_next: Option<(refinery_core::manifest::Schedule, Timestamp)>,
    /// Alerts, metrics and the status page.
    pub(crate) reporter: Box<dyn Reporter>,
    /// When the pass about to run was caused only by engine events: the nodes they came from.
    /// Such a pass observes just those nodes (work per event does not grow with the fleet);
    /// every other cause makes a full pass.
    pub(crate) scope: Option<BTreeSet<String>>,
    /// `refinery apply` handing work over (see `apply_handover.rs`).
    pub(crate) handover: handover_state::Handover,
    /// The registry checks of `image_update` drift (when each tag is next asked, what failed).
    pub(crate) registry_checks: Arc<crate::registries::RegistryChecks>,
    /// `pull_policy` refreshes: when each image was last pulled on each node (saved in the
    /// state file) and the retries of those failing.
    pub(crate) pull_refreshes: Arc<crate::pull_refresh::PullRefreshes>,
    pending_start: Vec<Record>,
}

impl<R: Engine> Controller<R> {
    /// A controller ready to run: records its start (and a new revision) for the ledger.
    /// `connector` makes each node's engine client.
    #[must_use]
    pub fn new(
        boot: Boot,
        connector: Box<dyn NodeConnector<R>>,
        ha: Option<refinery_ha::Leadership>,
        reporter: Box<dyn Reporter>,
        clock: Arc<dyn Clock>,
    ) -> Controller<R> {
        let Boot {
            options,
            git,
            state_dir,
            mut state,
            desired,
            tip,
            follow,
            start_alert,
            ledger_path,
            ledger,
        } = boot;
        let now = clock.now();
        let check_interval = Duration::from_millis(
            options.check_interval_ms.unwrap_or(
                desired
                    .manifest
                    .config
                    .check_interval_secs
                    .saturating_mul(1000),
            ),
        );
        let (tx, rx) = mpsc::unbounded_channel();
        let rev = desired.commit.id.clone();
        let mut records = vec![Record::new(Event::DaemonStart {
            version: env!("CARGO_PKG_VERSION").to_owned(),
        })];
        if state.revision.as_deref() != Some(rev.as_str()) {
            records.push(
                Record::new(Event::Revision {
                    from: state.revision.clone(),
                    to: rev.clone(),
                })
                .revision(&rev),
            );
            state.pending = Some(Pending {
                revision: rev.clone(),
                since: now,
            });
            state.revision = Some(rev.clone());
        }
        if let Some(message) = start_alert {
            records.push(alert("error", message).revision(&rev));
        }
        let backlog = Arc::new(event_watch::Backlog::new(
            usize::try_from(options.event_backlog).unwrap_or(usize::MAX),
        ));
        let next_full = clock.instant();
        let pull_refreshes = Arc::new(crate::pull_refresh::PullRefreshes::from_pulled(
            &state.pulled,
        ));
        Controller {
            options,
            git,
            clock,
            follow,
            state_dir,
            state,
            saved: None,
            desired: Arc::new(desired),
            tip,
            bad_tip: None,
            branch_error: None,
            ledger,
            ledger_path,
            ha,
            term: None,
            appended_seq: 0,
            committed_seq: 0,
            last_commit: None,
            commit_task: None,
            connector,
            engines: BTreeMap::new(),
            watchers: BTreeMap::new(),
            tx,
            rx,
            backlog,
            ours: HashMap::new(),
            alerted: HashMap::new(),
            outside_created: HashMap::new(),
            unreachable: BTreeSet::new(),
            recovered: BTreeSet::new(),
            self_id: node_engines::self_container_id(),
            check_interval,
            next_full,
            next_due: None,
            inventory_next: None,
            reporter,
            scope: None,
            handover: handover_state::Handover::default(),
            registry_checks: Arc::default(),
            pull_refreshes,
            pending_start: records,
        }
    }

    /// What wakes the loop besides its timers: send a [`Trigger`] to make it look now (a
    /// webhook, say).
    #[must_use]
    pub fn triggers(&self) -> mpsc::UnboundedSender<Trigger> {
        self.tx.clone()
    }

    /// Runs until `shutdown` resolves (with the reason logged and recorded, e.g. `SIGTERM`),
    /// then records the stop, saves the state, commits the ledger and lets go of the lease.
    pub async fn run(mut self, shutdown: impl Future<Output = &'static str>) {
        let records = std::mem::take(&mut self.pending_start);
        self.append(records);
        self.gitops_started();
        let rev = self.rev();
        tracing::info!(
            revision = %short(&rev),
            follow = %self.follow,
            state_dir = %self.state_dir.display(),
            "refinery {} started",
            env!("CARGO_PKG_VERSION")
        );
        self.sync_watchers();
        self.publish_presence();

        let poll_every = Duration::from_millis(self.options.poll_interval_ms.max(50));
        let mut poll = tokio::time::interval(poll_every);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut due_pass = true;
        let mut shutdown = std::pin::pin!(shutdown);
        let reason = loop {
            if due_pass {
                due_pass = self.pass().await.requeue == Requeue::Now;
                continue;
            }
            let wake = self.next_wake();
            tokio::select! {
                reason = &mut shutdown => break reason,
                () = ha_changed(&mut self.ha) => due_pass = self.on_leadership(),
                wake = self.git.woken() => {
                    self.on_leadership();
                    self.on_gitops_wake(wake).await;
                    due_pass = true;
                }
                trigger = self.rx.recv() => {
                    let Some(first) = trigger else { break "event channel closed" };
                    let mut batch = vec![first];
                    while let Ok(t) = self.rx.try_recv() {
                        batch.push(t);
                    }
                    due_pass = self.on_leadership();
                    due_pass |= self.on_triggers(batch);
                }
                _ = poll.tick() => {
                    due_pass = self.on_leadership();
                    due_pass |= self.poll_git().await;
                    due_pass |= self.take_requests().await;
                    self.scheduled_inventory().await;
                    self.maybe_commit_ledger(false);
                    self.publish_presence();
                }
                () = tokio::time::sleep_until(wake) => due_pass = true,
            }
        };
        tracing::info!(reason, "shutting down");
        refinery_store::running_daemons::withdraw(&self.state_dir, std::process::id());
        self.append(vec![Record::new(Event::DaemonStop {
            reason: reason.to_owned(),
        })]);
        for (_, (_, handle)) in std::mem::take(&mut self.watchers) {
            handle.abort();
        }
        self.save_state();
        if let Some(task) = self.commit_task.take() {
            let _ = task.await;
        }
        self.maybe_commit_ledger(true);
        if let Some(task) = self.commit_task.take() {
            let _ = task.await;
        }
        // The writer lock goes before the lease: the standby that takes over can open the ledger.
        self.ledger = None;
        if let Some(h) = self.ha.take() {
            h.resign().await;
        }
        self.reporter.shutdown().await;
        self.git.shutdown().await;
    }
}

/// A revision's short form, as logs and alerts print it.
pub(crate) use refinery_core::short_id as short;

pub(crate) fn alert(level: &str, message: String) -> Record {
    Record::new(Event::Alert {
        level: level.to_owned(),
        message,
    })
}

impl<R: Engine> Controller<R> {
    pub(crate) fn manifest(&self) -> &refinery_core::Manifest {
        &self.desired.manifest
    }

    pub(crate) fn rev(&self) -> String {
        self.desired.commit.id.clone()
    }

    /// The engine client of a node, reused across passes while its endpoint stays the same
    /// (`None` when it cannot be made; that is logged).
    pub(crate) fn engine(&mut self, node: &refinery_core::manifest::NodeSpec) -> Option<R> {
        self.engine_or_why(node)
            .inspect_err(|e| tracing::error!(node = %node.name, error = %e, "failed to set up the engine client"))
            .ok()
    }

    /// The engine client of a node, or why it cannot be made.
    pub(crate) fn engine_or_why(
        &mut self,
        node: &refinery_core::manifest::NodeSpec,
    ) -> Result<R, refinery_core::RuntimeError> {
        let endpoint = node.docker.clone().unwrap_or_default();
        if let Some((ep, rt)) = self.engines.get(node.name.as_str())
            && *ep == endpoint
        {
            return Ok(rt.clone());
        }
        let rt = self.connector.connect(node)?;
        self.engines
            .insert(NodeName::new(&node.name), (endpoint, rt.clone()));
        Ok(rt)
    }

    pub(crate) fn nodes(&self) -> Vec<refinery_core::manifest::NodeSpec> {
        node_engines::selected_nodes(self.manifest(), &self.options.nodes)
            .map(|v| {
                v.into_iter()
                    .filter(|n| node_engines::in_shard(self.options.shard, &n.name))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// When the loop must wake at the latest: the periodic pass or a deadline.
    pub(crate) fn next_wake(&self) -> Instant {
        let mut wake = self.next_full;
        if let Some(due) = self.next_due {
            let ms = due.duration_since(self.clock.now()).as_millis().max(0);
            let at =
                self.clock.instant() + Duration::from_millis(u64::try_from(ms).unwrap_or(0) + 20);
            wake = wake.min(at);
        }
        wake
    }

    /// One pass over every node (or, caused only by engine events, over their nodes): what it
    /// did, and when to look again ([`Requeue::Now`] after a rollback or a recovered recreate).
    pub(crate) async fn pass(&mut self) -> PassOutcome {
        // Take over or step down first (`--ha`): a pass is about to run anyway.
        let _ = self.on_leadership();
        let started = self.clock.instant();
        let now = self.clock.now();
        // An event-only pass covers the nodes the events came from and leaves the timer alone.
        // A pass answering `refinery apply` is a full one.
        let scope = self.scope.take().filter(|_| !self.handover.waiting());
        if scope.is_none() {
            self.next_full = self.clock.instant() + self.check_interval;
        }
        let desired = Arc::clone(&self.desired);
        let manifest = &desired.manifest;
        let rev = desired.commit.id.clone();
        let Ok(selected) = node_engines::selected_nodes(manifest, &self.options.nodes) else {
            return PassOutcome {
                full: scope.is_none(),
                nodes: 0,
                unreachable: Vec::new(),
                actions: 0,
                failed: 0,
                requeue: Requeue::After(self.next_wake().saturating_duration_since(started)),
            };
        };
        let shard = self.options.shard;
        let nodes: Vec<_> = selected
            .into_iter()
            .filter(|n| node_engines::in_shard(shard, &n.name))
            .filter(|n| scope.as_ref().is_none_or(|s| s.contains(&n.name)))
            .map(|n| {
                let rt = self.engine_or_why(n);
                (n, rt)
            })
            .collect();
        let first_seen = self.state.first_seen.clone();
        let suspended = self.state.suspended.clone();
        let rejected = self.state.image_updates.rejected.clone();
        let checks = Arc::clone(&self.registry_checks);
        let refreshes = Arc::clone(&self.pull_refreshes);
        let self_id = self.self_id.clone();
        let ctx = PassContext {
            now,
            first_seen: &first_seen,
            honor_grace: !self.handover.waiting(),
            self_id: self_id.as_deref(),
            suspended: &suspended,
            rejected: &rejected,
            checks: &checks,
            refresh: self.may_act().then_some(&*refreshes),
        };
        let flapping = manifest.drift_rules.flapping.unwrap_or(DEFAULT_FLAPPING);
        let mut acc = PassAcc::new();
        // Each node is acted on as soon as its own observation is in: a slow node holds up
        // nobody, and actions on different nodes run at the same time.
        // At most `--max-concurrent-nodes` observed or acted on at once: a big fleet does not
        // open connections to every engine at the same moment, nor hold every node's
        // observation while their actions run.
        let limit = self.options.max_concurrent_nodes.max(1);
        let node_count = nodes.len();
        let mut waiting = nodes.into_iter();
        let mut observing = FuturesUnordered::new();
        let mut applying = FuturesUnordered::new();
        // What the status page keeps of each node: a node's observation goes as soon as it is
        // done, so a pass over a big fleet never holds every node's at once.
        let mut passes = Vec::new();
        let mut recovered_any = false;
        // What the pass's end will need of each node (nothing, on most passes).
        let keep = self.after_needs(scope.is_none());
        loop {
            while observing.len() + applying.len() < limit {
                let Some((n, rt)) = waiting.next() else { break };
                observing.push(evaluate_node(manifest, n, rt, &ctx));
            }
            tokio::select! {
                Some(p) = observing.next() => {
                    if let Ok((observed, _)) = &p.result {
                        self.reporter.on_observed(&p.node.name, observed);
                    }
                    if let (Some(rt), Ok((observed, _))) = (&p.engine, &p.result)
                        && self.recover(&p.node.name, rt, observed).await
                    {
                        recovered_any = true;
                        passes.push(self.keep_of(manifest, &p, now, keep));
                        continue;
                    }
                    // An image update past its health deadline is rolled back first.
                    if let (Some(rt), Ok((observed, _))) = (&p.engine, &p.result)
                        && self
                            .judge_update_trials(manifest, &p.node.name, rt, observed, &rev, now)
                            .await
                    {
                        recovered_any = true;
                        passes.push(self.keep_of(manifest, &p, now, keep));
                        continue;
                    }
                    let (steps, keys) = self.plan_node(&p, manifest, &rev, now, &mut acc);
                    if steps.is_empty() {
                        passes.push(self.keep_of(manifest, &p, now, keep));
                        continue;
                    }
                    // Fencing: leadership is checked again right before each node's actions.
                    if !self.may_act() {
                        self.end_ours(&keys);
                        passes.push(self.keep_of(manifest, &p, now, keep));
                        continue;
                    }
                    // What was found is on record before anything is done about it; it reaches
                    // the disk with the actions' entries, so writing it never delays an action.
                    self.append_unsynced(std::mem::take(&mut acc.records));
                    let rev = rev.as_str();
                    applying.push(async move {
                        let results = match (&p.engine, &p.result) {
                            (Some(engine), Ok((observed, _))) => {
                                apply_plan(engine, manifest, &steps, observed, rev, &|_| {}).await
                            }
                            _ => Vec::new(),
                        };
                        (p, keys, results)
                    });
                }
                Some((p, keys, results)) = applying.next() => {
                    self.end_ours(&keys);
                    self.handover.collect(&results);
                    self.finish_node(&p, manifest, &rev, now, flapping, &results, &mut acc);
                    passes.push(self.keep_of(manifest, &p, now, keep));
                }
                else => break,
            }
        }
        let kube = self
            .kube_pass(&desired, &rev, now, flapping, &mut acc)
            .await;
        let PassAcc {
            records,
            mut next_due,
            mut health,
            unreachable,
            actions,
            failed,
        } = acc;
        if recovered_any {
            // A node skipped this pass: nothing can be judged healthy on it yet.
            health = worse(health, RevisionHealth::Progressing);
        }
        self.state.forget_old_actions(now, flapping);
        self.append(records);
        self.registry_check_failures(&rev);
        self.after_pass(&passes, &rev, recovered_any, scope.is_none());
        self.reporter
            .on_pass(&desired, &kube, &self.state, now, scope.is_none());
        // An event-only pass keeps the other nodes' deadlines. It can find a pending revision
        // failing or still progressing (then so is the whole), but only a full pass can find it
        // healthy everywhere: one follows at once.
        if scope.is_some()
            && let Some(old) = self.next_due
        {
            next_due = Some(next_due.map_or(old, |n| n.min(old)));
        }
        let again = match (&scope, &health) {
            (Some(_), RevisionHealth::Healthy) => self.state.pending.is_some(),
            _ => self.judge_revision(health, now).await,
        };
        if let Some(p) = &self.state.pending {
            let deadline = p.since.checked_add(jiff::SignedDuration::from_secs(
                i64::try_from(manifest.config.health_deadline_secs).unwrap_or(i64::MAX),
            ));
            if let Ok(d) = deadline {
                next_due = Some(next_due.map_or(d, |n| n.min(d)));
            }
        }
        // Image updates on trial are judged at their deadline at the latest.
        self.forget_undeclared_updates(manifest);
        if let Some(d) = self
            .state
            .image_updates
            .next_deadline(manifest.config.health_deadline_secs)
        {
            next_due = Some(next_due.map_or(d, |n| n.min(d)));
        }
        // `pull_policy` refreshes: their times are saved; the loop wakes for the next one.
        self.state.pulled = self.pull_refreshes.pulled_times();
        let selected: Vec<String> = self.nodes().into_iter().map(|n| n.name).collect();
        if let Some(t) = self.pull_refreshes.next_pull(manifest, &selected, now) {
            next_due = Some(next_due.map_or(t, |n| n.min(t)));
        }
        self.next_due = next_due;
        self.save_state();
        self.maybe_commit_ledger(false);
        tracing::debug!(
            micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            nodes = node_count,
            backlog_peak = self.backlog.take_peak(),
            "pass done"
        );
        let requeue = if again || recovered_any {
            Requeue::Now
        } else {
            Requeue::After(
                self.next_wake()
                    .saturating_duration_since(self.clock.instant()),
            )
        };
        PassOutcome {
            full: scope.is_none(),
            nodes: node_count,
            unreachable,
            actions,
            failed,
            requeue,
        }
    }

    /// The first half of a node's pass, as soon as its observation is in: records new drifts,
    /// alerts, holds back flapping resources, and returns the steps to carry out with the
    /// container names and ids they touch (marked as Refinery's own until they are done).
    fn plan_node(
        &mut self,
        p: &NodePass<'_, R>,
        manifest: &refinery_core::Manifest,
        rev: &str,
        now: Timestamp,
        acc: &mut PassAcc,
    ) -> (Vec<Step>, Vec<String>) {
        let node = p.node.name.as_str();
        let (Some(_), Ok((observed, eval))) = (&p.engine, &p.result) else {
            if let Err(e) = &p.result {
                acc.unreachable.push(node.to_owned());
                acc.health = worse(acc.health.clone(), RevisionHealth::Progressing);
                if self.unreachable.insert(Source::node(node)) {
                    tracing::warn!(node, error = %e, "node unreachable");
                    acc.records.push(
                        alert("error", format!("node `{node}` is unreachable: {e}"))
                            .node(node)
                            .revision(rev),
                    );
                }
            }
            return (Vec::new(), Vec::new());
        };
        self.unreachable.remove(&Source::node(node));
        let new: Vec<_> = self
            .state
            .track_drifts(node, &eval.report.drifts, now)
            .into_iter()
            .cloned()
            .collect();
        // A drift of ignored fields only (`ignore_differences`) never counts: no ledger entry.
        for d in new.iter().filter(|d| d.counts()) {
            tracing::info!(resource = %d.id, drift = %d.kind, "{}", d.summary);
            acc.records
                .push(crate::ledger_records::drift(manifest, d, rev));
        }
        let is_new = |s: &Step| new.iter().any(|d| d.id == s.id);
        let mut steps = Vec::new();
        let mut keys = Vec::new();
        let mut alerting = BTreeSet::new();
        for step in &eval.plan.steps {
            let hash = spec_of(manifest, &step.id).map(spec_hash);
            let Some(step) = self.gate_step(
                step,
                &eval.decisions,
                hash.as_deref(),
                is_new(step),
                rev,
                acc,
            ) else {
                continue;
            };
            if step.kind == StepKind::Alert {
                alerting.insert(step.id.clone());
            }
            if step.kind.writes() {
                let mut touched = vec![
                    step.id.name().to_owned(),
                    recreate_temp_name(step.id.name()),
                    start_first_temp_name(step.id.name()),
                ];
                touched.extend(step.container_id.clone());
                self.mark_ours(&touched, events_of(step.kind));
                keys.extend(touched);
                steps.push(step);
            }
        }
        self.alerted
            .retain(|id, _| id.node() != node || alerting.contains(id));
        if steps.is_empty()
            && let Some(h) = self.node_health(manifest, eval, observed, &[], now)
        {
            acc.health = worse(acc.health.clone(), h);
        }
        (steps, keys)
    }

    /// What a pass keeps of a node once it is done: its summary goes to the reporter; what
    /// comes after the pass is returned.
    fn keep_of(
        &mut self,
        manifest: &refinery_core::manifest::Manifest,
        p: &NodePass<'_, R>,
        now: Timestamp,
        keep: Keep,
    ) -> NodeAfter {
        self.reporter
            .on_node(manifest, &p.node.name, &p.result, &self.state, now);
        NodeAfter::of(p, keep)
    }

    /// The second half of a node's pass, once its actions are done: records each outcome,
    /// counts actions for flap protection, judges the node's health.
    #[allow(clippy::too_many_arguments)]
    fn finish_node(
        &mut self,
        p: &NodePass<'_, R>,
        manifest: &refinery_core::Manifest,
        rev: &str,
        now: Timestamp,
        flapping: refinery_core::manifest::Flapping,
        results: &[refinery_engine::StepResult],
        acc: &mut PassAcc,
    ) {
        let node = p.node.name.as_str();
        let Ok((observed, eval)) = &p.result else {
            return;
        };
        let mut failed = Vec::new();
        for r in results {
            acc.records
                .push(crate::ledger_records::step(manifest, r, rev));
            if r.outcome != Outcome::Skipped {
                acc.actions += 1;
            }
            match r.outcome {
                Outcome::Failed => {
                    acc.failed += 1;
                    let why = r.message.clone().unwrap_or_default();
                    tracing::error!(resource = %r.id, step = %r.step, "failed: {why}");
                    failed.push((r.id.name().to_owned(), why));
                }
                outcome => {
                    tracing::info!(resource = %r.id, step = %r.step, "{outcome}");
                }
            }
            // An image update is the registry's move, paced by `image_check_interval` and
            // judged by its trial, not a fight over the container: it is no flapping.
            let update_only = eval.plan.steps.iter().any(|s| {
                s.id == r.id
                    && !s.drifts.is_empty()
                    && s.drifts.iter().all(|d| *d == DriftKind::ImageUpdate)
            });
            if r.outcome != Outcome::Skipped && !update_only {
                let hash = spec_of(manifest, &r.id).map(spec_hash);
                self.count_action(&r.id, hash.as_deref(), node, rev, now, flapping, acc);
            }
        }
        // The node's actions are on the disk before anything else happens to it.
        self.append(std::mem::take(&mut acc.records));
        self.start_update_trials(manifest, node, observed, &eval.plan.steps, results);
        self.gitops_failed(rev, node, &failed);
        if let Some(h) = self.node_health(manifest, eval, observed, &failed, now) {
            // What was observed is what the actions just replaced.
            let h = match h {
                RevisionHealth::Healthy => RevisionHealth::Progressing,
                other => other,
            };
            acc.health = worse(acc.health.clone(), h);
        }
    }
}

/// What the halves of a pass gather across nodes.
pub(crate) struct PassAcc {
    pub(crate) records: Vec<Record>,
    /// The earliest grace-period end.
    pub(crate) next_due: Option<Timestamp>,
    pub(crate) health: RevisionHealth,
    /// What the pass returns besides (see [`PassOutcome`]).
    pub(crate) unreachable: Vec<String>,
    pub(crate) actions: usize,
    pub(crate) failed: usize,
}

impl PassAcc {
    /// Nothing gathered yet: no records, no deadline, healthy until a node says otherwise.
    pub(crate) fn new() -> PassAcc {
        PassAcc {
            records: Vec::new(),
            next_due: None,
            health: RevisionHealth::Healthy,
            unreachable: Vec::new(),
            actions: 0,
            failed: 0,
        }
    }
}

/// Resolves when the election changed; never without `--ha`.
async fn ha_changed(ha: &mut Option<Leadership>) {
    match ha {
        Some(h) => h.changed().await,
        None => std::future::pending().await,
    }
}

/// The worse of two healths: failing over progressing over healthy.
pub(crate) fn worse(a: RevisionHealth, b: RevisionHealth) -> RevisionHealth {
    match (a, b) {
        (f @ RevisionHealth::Failing(_), _) | (_, f @ RevisionHealth::Failing(_)) => f,
        (RevisionHealth::Progressing, _) | (_, RevisionHealth::Progressing) => {
            RevisionHealth::Progressing
        }
        _ => RevisionHealth::Healthy,
    }
}
