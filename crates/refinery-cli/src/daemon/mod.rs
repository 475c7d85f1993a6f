//! `refinery run`: the self-healing daemon.
//!
//! Engine events, a new commit on the branch, a request file and the periodic timer only
//! *trigger* a pass; every pass observes every node completely and decides on that snapshot.
//! Triggers that arrive while a pass runs are coalesced into the next one. Actions run to the end:
//! a shutdown signal is handled between passes.

mod gitops;
mod ha;
mod handover;
mod inventory;
mod kube;
mod watch;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use jiff::Timestamp;
use refinery_core::daemon_state::{
    DEFAULT_FLAPPING, DaemonState, Pending, RevisionHealth, RolledBack, revision_health,
};
use refinery_core::labels::spec_hash;
use refinery_core::ledger::{ActionDetail, Actor, Event, Record};
use refinery_core::{EngineEvent, Outcome, ResourceId, Step, StepKind};
use refinery_docker::DockerRuntime;
use refinery_engine::{Recovered, apply_plan, recover_interrupted, recreate_temp_name};
use refinery_store::LedgerFile;
use refinery_store::request_queue::{self as requests, Request};
use refinery_store::state_file;
use tokio::sync::mpsc;

use crate::args::RunArgs;
use crate::desired::{self, Desired};
use crate::engines;
use crate::error::CliError;
use crate::exit_code;
use crate::gitops::RevisionEvent;
use crate::hub::NodeSummary;
use crate::pass::{NodePass, PassContext, evaluate_node};
use crate::settings::Settings;
use ha::open_ledger;
use handover::NodeAfter;

pub use watch::Trigger;

/// Engine events about a container Refinery acted on, received from when the action started until
/// this long after it ended, are taken as its own.
const OURS_AFTER: Duration = Duration::from_secs(1);
/// How long a container created by someone else counts as just born (its `start` is part of it).
const BIRTH_FOR: Duration = Duration::from_secs(30);
/// At most this often the ledger is committed to git.
const COMMIT_EVERY: Duration = Duration::from_secs(5);
/// A container must run this long without a restart (or half the health deadline, if shorter)
/// before its revision counts as healthy.
const SETTLE_SECS: u64 = 10;

/// The state directory when `--state-dir` is not given: `refinery/` in the git directory (never
/// in the work tree, never committed).
pub fn default_state_dir(repo: &Path) -> Result<PathBuf, CliError> {
    let git = refinery_git::GitSource::open(repo)?;
    Ok(git.git_dir().join("refinery"))
}

/// The ledger file (relative to the repository) this process writes: a shard has its own.
fn ledger_rel(path: &str, shard: Option<refinery_core::Shard>) -> String {
    shard.map_or_else(|| path.to_owned(), |s| s.ledger_path(path))
}

struct Daemon {
    settings: Settings,
    /// The branch or revision followed.
    follow: String,
    /// What is followed and fetched, webhooks and sync requests, commit statuses (issue 25).
    gitops: gitops::GitopsHook,
    state_dir: PathBuf,
    state: DaemonState,
    /// What the state file holds.
    saved: Option<DaemonState>,
    desired: Arc<Desired>,
    /// The tip of the followed branch last seen.
    tip: String,
    /// A tip that failed to load, already reported.
    bad_tip: Option<String>,
    /// The last error resolving the branch, already reported.
    branch_error: Option<String>,
    /// The ledger, open for writing: always without `--ha`; with it, only while leading.
    ledger: Option<LedgerFile>,
    ledger_path: PathBuf,
    /// `--ha`: the election; only its leader acts.
    ha: Option<refinery_ha::Leadership>,
    /// The leader term the ledger is being written under (`--ha`).
    term: Option<u64>,
    appended_seq: u64,
    committed_seq: u64,
    last_commit: Option<Instant>,
    commit_task: Option<tokio::task::JoinHandle<()>>,
    engines: BTreeMap<String, (String, DockerRuntime)>,
    watchers: BTreeMap<String, (String, tokio::task::JoinHandle<()>)>,
    tx: mpsc::UnboundedSender<Trigger>,
    /// The engine events waiting for the loop, bounded (`--event-backlog`).
    backlog: Arc<watch::Backlog>,
    /// Container names and ids Refinery acted on, and the engine events its action makes.
    ours: HashMap<String, Mark>,
    /// What was last alerted per resource, so an alert is repeated only when its reason changes.
    alerted: HashMap<ResourceId, String>,
    /// Containers created recently by someone else (their `start` is part of the birth).
    outside_created: HashMap<String, Instant>,
    unreachable: BTreeSet<String>,
    /// Nodes whose leftovers of interrupted recreates were dealt with since the start.
    recovered: BTreeSet<String>,
    self_id: Option<String>,
    check_interval: Duration,
    next_full: Instant,
    /// The earliest grace-period or health deadline, if any.
    next_due: Option<Timestamp>,
    /// When `inventory.schedule` (as it was then) runs next (see `daemon/inventory.rs`).
    inventory_next: Option<(refinery_core::manifest::Schedule, Timestamp)>,
    /// Alerts, metrics and the status page.
    hub: crate::hub::Hub,
    /// When the pass about to run was caused only by engine events: the nodes they came from.
    /// Such a pass observes just those nodes (work per event does not grow with the fleet);
    /// every other cause makes a full pass.
    scope: Option<BTreeSet<String>>,
    /// `refinery apply` handing work over (see `daemon/handover.rs`).
    handover: handover::Handover,
}

/// Runs the daemon until SIGINT or SIGTERM.
pub async fn run(settings: &Settings, args: &RunArgs) -> Result<u8, CliError> {
    let state_dir = match &args.state_dir {
        Some(d) => d.clone(),
        None => default_state_dir(&settings.repo)?,
    };
    // A shard keeps its own state beside the others: `<state dir>/shard-2-of-3`.
    let state_dir = match settings.shard {
        Some(shard) => state_dir.join(shard.suffix()),
        None => state_dir,
    };
    let state_path = state_file::path_in(&state_dir);
    let mut state = state_file::load(&state_path)?;
    let mut gitops = gitops::GitopsHook::start(settings, args)?;
    let follow = gitops.label().to_owned();
    let now = Timestamp::now();

    // The revision to start with: the branch's tip, unless the daemon rolled back from it.
    let tip = gitops.tip_blocking()?.commit;
    let wanted = match &state.rolled_back {
        Some(rb) if rb.from == tip => rb.to.clone(),
        _ => tip.clone(),
    };
    let mut start_alert = None;
    let desired = match desired::load(&settings.repo, &wanted) {
        Ok(d) => d,
        Err(e) => match state.revision.clone().filter(|r| *r != wanted) {
            Some(last) => {
                tracing::error!(revision = %short(&wanted), error = %e, "failed to load the manifest; enforcing the last good revision {}", short(&last));
                start_alert = Some(format!(
                    "failed to load revision `{}`: {e}; enforcing the last good revision `{}`",
                    short(&wanted),
                    short(&last)
                ));
                desired::load(&settings.repo, &last)?
            }
            None => return Err(e),
        },
    };
    let ledger_path = settings
        .repo
        .join(ledger_rel(&desired.manifest.ledger.path, settings.shard));
    // With `--ha`, the ledger (and its writer lock) is opened on being elected.
    let ha = match &args.ha.ha {
        Some(url) => Some(ha::start(&url.for_shard(settings.shard), &args.ha)?),
        None => None,
    };
    let ledger = match ha {
        Some(_) => None,
        None => Some(open_ledger(&ledger_path, &desired.manifest, now)?),
    };
    let check_interval = Duration::from_millis(
        args.check_interval.unwrap_or(
            desired
                .manifest
                .config
                .check_interval_secs
                .saturating_mul(1000),
        ),
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    let hub = crate::hub::Hub::start(args, &desired.manifest, &state, gitops.take_routes()).await?;
    let mut d = Daemon {
        settings: settings.clone(),
        follow,
        gitops,
        state_dir,
        state: DaemonState::default(),
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
        engines: BTreeMap::new(),
        watchers: BTreeMap::new(),
        tx,
        backlog: Arc::new(watch::Backlog::new(
            usize::try_from(args.event_backlog).unwrap_or(usize::MAX),
        )),
        ours: HashMap::new(),
        alerted: HashMap::new(),
        outside_created: HashMap::new(),
        unreachable: BTreeSet::new(),
        recovered: BTreeSet::new(),
        self_id: engines::self_container_id(),
        check_interval,
        next_full: Instant::now(),
        next_due: None,
        inventory_next: None,
        hub,
        scope: None,
        handover: handover::Handover::default(),
    };
    let rev = d.desired.commit.id.clone();
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
    d.state = state;
    d.append(records);
    d.gitops_started();
    tracing::info!(
        revision = %short(&rev),
        follow = %d.follow,
        state_dir = %d.state_dir.display(),
        "refinery {} started",
        env!("CARGO_PKG_VERSION")
    );
    d.sync_watchers();
    d.publish_presence();

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|source| CliError::Io {
            action: "listen for SIGTERM".into(),
            source,
        })?;
    let poll_every = Duration::from_millis(args.poll_interval.max(50));
    let mut poll = tokio::time::interval(poll_every);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut due_pass = true;
    let reason = loop {
        if due_pass {
            due_pass = d.pass().await;
            continue;
        }
        let wake = d.next_wake();
        tokio::select! {
            _ = term.recv() => break "SIGTERM",
            _ = tokio::signal::ctrl_c() => break "SIGINT",
            () = ha::changed(&mut d.ha) => due_pass = d.on_leadership(),
            wake = d.gitops.woken() => {
                d.on_leadership();
                d.on_gitops_wake(wake).await;
                due_pass = true;
            }
            trigger = rx.recv() => {
                let Some(first) = trigger else { break "event channel closed" };
                let mut batch = vec![first];
                while let Ok(t) = rx.try_recv() {
                    batch.push(t);
                }
                due_pass = d.on_leadership();
                due_pass |= d.on_triggers(batch);
            }
            _ = poll.tick() => {
                due_pass = d.on_leadership();
                due_pass |= d.poll_git().await;
                due_pass |= d.take_requests().await;
                d.scheduled_inventory().await;
                d.maybe_commit_ledger(false);
                d.publish_presence();
            }
            () = tokio::time::sleep_until(wake.into()) => due_pass = true,
        }
    };
    tracing::info!(reason, "shutting down");
    refinery_store::running_daemons::withdraw(&d.state_dir, std::process::id());
    d.append(vec![Record::new(Event::DaemonStop {
        reason: reason.to_owned(),
    })]);
    for (_, (_, handle)) in std::mem::take(&mut d.watchers) {
        handle.abort();
    }
    d.save_state();
    if let Some(task) = d.commit_task.take() {
        let _ = task.await;
    }
    d.maybe_commit_ledger(true);
    if let Some(task) = d.commit_task.take() {
        let _ = task.await;
    }
    // The writer lock goes before the lease: the standby that takes over can open the ledger.
    d.ledger = None;
    if let Some(h) = d.ha.take() {
        h.resign().await;
    }
    d.hub.shutdown().await;
    d.gitops.shutdown().await;
    Ok(exit_code::OK)
}

fn short(rev: &str) -> String {
    rev.chars().take(refinery_git::SHORT_ID_LEN).collect()
}

fn alert(level: &str, message: String) -> Record {
    Record::new(Event::Alert {
        level: level.to_owned(),
        message,
    })
}

impl Daemon {
    fn manifest(&self) -> &refinery_core::Manifest {
        &self.desired.manifest
    }

    fn rev(&self) -> String {
        self.desired.commit.id.clone()
    }

    /// Appends to the ledger (written and fsynced before anything is reported done). A failure
    /// is logged; the daemon keeps healing.
    fn append(&mut self, records: Vec<Record>) {
        self.write_records(records, true);
    }

    /// Appends without waiting for the disk (see [`LedgerFile::append_unsynced`]).
    fn append_unsynced(&mut self, records: Vec<Record>) {
        self.write_records(records, false);
    }

    fn write_records(&mut self, records: Vec<Record>, sync: bool) {
        if records.is_empty() {
            return;
        }
        // A standby writes nothing. A leader whose lease went stale mid-pass still records the
        // outcome of actions it had started (under its term, before it lets go of the ledger
        // between passes); it starts no new ones (see `may_act`).
        let Some(ledger) = self.ledger.as_mut() else {
            tracing::debug!(
                records = records.len(),
                "not leading: nothing written to the ledger"
            );
            return;
        };
        let term = self.term;
        let records = records.into_iter().map(|r| r.term(term)).collect();
        let now = Timestamp::now();
        let written = if sync {
            ledger.append(records, now)
        } else {
            ledger.append_unsynced(records, now)
        };
        match written {
            Ok(entries) => {
                if let Some(last) = entries.last() {
                    self.appended_seq = last.seq;
                }
                self.hub.on_entries(&entries);
            }
            Err(e) => tracing::error!(error = %e, "failed to append to the ledger"),
        }
    }

    /// Writes the state file when it changed since the last write.
    fn save_state(&mut self) {
        // A standby's state stays in memory: the state directory may be the leader's too.
        if self.saved.as_ref() == Some(&self.state) || (self.ha.is_some() && !self.may_act()) {
            return;
        }
        self.saved = Some(self.state.clone());
        if let Err(e) = state_file::save(&state_file::path_in(&self.state_dir), &self.state) {
            tracing::error!(error = %e, "failed to save the daemon state");
        }
    }

    /// The engine client of a node, reused across passes while its endpoint stays the same.
    fn engine(&mut self, node: &refinery_core::manifest::NodeSpec) -> Option<DockerRuntime> {
        let endpoint = node.docker.clone().unwrap_or_default();
        if let Some((ep, rt)) = self.engines.get(&node.name)
            && *ep == endpoint
        {
            return Some(rt.clone());
        }
        match engines::engine_in(node, &self.settings.repo) {
            Ok(rt) => {
                self.engines
                    .insert(node.name.clone(), (endpoint, rt.clone()));
                Some(rt)
            }
            Err(e) => {
                tracing::error!(node = %node.name, error = %e, "failed to set up the engine client");
                None
            }
        }
    }

    fn nodes(&self) -> Vec<refinery_core::manifest::NodeSpec> {
        engines::selected_nodes(self.manifest(), &self.settings.nodes)
            .map(|v| {
                v.into_iter()
                    .filter(|n| engines::in_shard(self.settings.shard, &n.name))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One event follower per node (restarted when a node's endpoint or the selector changes).
    fn sync_watchers(&mut self) {
        let selector = self.manifest().config.selector.clone();
        let nodes = self.nodes();
        let wanted: BTreeSet<String> = nodes.iter().map(|n| n.name.clone()).collect();
        self.watchers.retain(|name, (_, handle)| {
            let keep = wanted.contains(name) || name == kube::WATCH_KEY;
            if !keep {
                handle.abort();
            }
            keep
        });
        for node in &nodes {
            let key = format!(
                "{}|{}",
                node.docker.clone().unwrap_or_default(),
                selector
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            );
            if self
                .watchers
                .get(&node.name)
                .is_some_and(|(k, _)| *k == key)
            {
                continue;
            }
            let Some(rt) = self.engine(node) else {
                continue;
            };
            if let Some((_, old)) = self.watchers.remove(&node.name) {
                old.abort();
            }
            let handle = tokio::spawn(watch::follow(
                node.name.clone(),
                rt,
                selector.clone(),
                self.tx.clone(),
                Arc::clone(&self.backlog),
            ));
            self.watchers.insert(node.name.clone(), (key, handle));
        }
        self.sync_kube_watcher();
    }

    /// Finishes or undoes recreates an earlier run left half-done.
    /// On a node's first observation since the daemon started: finishes or undoes recreates an
    /// earlier run left half-done. Returns whether it changed anything (the observation is then
    /// stale, and another pass is due at once).
    async fn recover(
        &mut self,
        node: &str,
        rt: &DockerRuntime,
        observed: &refinery_core::Observed,
    ) -> bool {
        if !self.may_act() || !self.recovered.insert(node.to_owned()) {
            return false;
        }
        let aside = recreate_temp_name("");
        let keys: Vec<String> = observed
            .containers
            .iter()
            .filter_map(|c| c.name.strip_suffix(&aside))
            .flat_map(|base| [base.to_owned(), recreate_temp_name(base)])
            .collect();
        if keys.is_empty() {
            return false;
        }
        self.mark_ours(&keys, REPLACE_EVENTS);
        let recovered = recover_interrupted(rt, observed).await;
        self.end_ours(&keys);
        let mut records = Vec::new();
        for r in recovered {
            let (name, outcome, message) = match &r {
                Recovered::Finished { name } => (
                    name,
                    Outcome::Recreated,
                    "finished an interrupted recreate".to_owned(),
                ),
                Recovered::Undone { name } => (
                    name,
                    Outcome::RolledBack,
                    "undid an interrupted recreate: the previous container is back".to_owned(),
                ),
                Recovered::Failed { name, error } => (
                    name,
                    Outcome::Failed,
                    format!("failed to recover an interrupted recreate: {error}"),
                ),
            };
            tracing::warn!(node, container = %name, "{message}");
            records.push(
                Record::new(Event::Action(ActionDetail {
                    step: "recover".into(),
                    message: Some(message),
                    container_id: None,
                }))
                .resource(ResourceId::container(node, name))
                .outcome(outcome)
                .revision(self.rev()),
            );
        }
        self.append(records);
        true
    }

    /// Refinery starts acting on these containers (names, ids); its action makes `actions`.
    fn mark_ours(&mut self, keys: &[String], actions: &'static [&'static str]) {
        let start = Instant::now();
        for k in keys {
            self.ours.insert(
                k.clone(),
                Mark {
                    start,
                    end: None,
                    actions,
                },
            );
        }
    }

    /// Refinery is done acting on these containers; forgets marks long past.
    fn end_ours(&mut self, keys: &[String]) {
        let now = Instant::now();
        for k in keys {
            if let Some(m) = self.ours.get_mut(k) {
                m.end.get_or_insert(now);
            }
        }
        self.ours
            .retain(|_, m| m.end.is_none_or(|e| e.elapsed() < Duration::from_secs(60)));
    }

    /// Whether Refinery's own action made this event: same container, an action word that
    /// action makes, received while it ran or just after.
    fn is_ours(&self, event: &EngineEvent, received: Instant) -> bool {
        let during = |k: &str| {
            self.ours.get(k).is_some_and(|m| {
                m.actions.contains(&event.action.as_str())
                    && received >= m.start
                    && m.end.is_none_or(|e| received <= e + OURS_AFTER)
            })
        };
        during(&event.container_id) || event.name.as_deref().is_some_and(during)
    }

    /// Records outside changes and says whether a pass is due.
    fn on_triggers(&mut self, batch: Vec<Trigger>) -> bool {
        let mut due = false;
        let mut full = false;
        let mut event_nodes = BTreeSet::new();
        let mut records = Vec::new();
        let rev = self.rev();
        let mut resynced: BTreeMap<String, u64> = BTreeMap::new();
        for t in batch {
            match t {
                Trigger::Event {
                    node,
                    event,
                    received,
                } => {
                    self.backlog.taken();
                    // A `kill` changes nothing by itself: if the process dies, `die` follows
                    // (about 30-60 ms later) and triggers the pass that sees it. A pass on
                    // `kill` would find the container still running and delay that one.
                    if event.action != "kill" {
                        due = true;
                        event_nodes.insert(node.clone());
                    }
                    tracing::debug!(node = %node, action = %event.action, container = ?event.name, "engine event");
                    self.hub.on_event(received);
                    if self.is_ours(&event, received) {
                        continue;
                    }
                    if let Some(r) = self.outside_record(&node, &event) {
                        records.push(r.revision(&rev));
                    }
                }
                Trigger::Lost { node, why } => {
                    tracing::warn!(node = %node, reason = %why, "lost the engine; reconnecting with backoff");
                    if self.unreachable.insert(node.clone()) {
                        records.push(
                            alert("error", format!("lost the engine of node `{node}`: {why}"))
                                .node(node)
                                .revision(&rev),
                        );
                    }
                }
                Trigger::Back { node } => {
                    tracing::info!(node = %node, "the engine is back; full pass");
                    due = true;
                    full = true;
                }
                Trigger::Kube { source, what } => {
                    tracing::debug!(source = %source, object = %what, "kubernetes change");
                    due = true;
                }
                Trigger::Resync { node, overflow } => {
                    // Its events were dropped: the node is observed afresh, every container
                    // inspected again, so what they said is found all the same.
                    *resynced.entry(node.clone()).or_default() += overflow.take();
                    if let Some((_, rt)) = self.engines.get(&node) {
                        rt.forget_inspections();
                    }
                    due = true;
                    event_nodes.insert(node);
                }
            }
        }
        if !resynced.is_empty() {
            let dropped: u64 = resynced.values().sum();
            let mut names: Vec<&str> = resynced.keys().map(String::as_str).take(5).collect();
            if resynced.len() > names.len() {
                names.push("…");
            }
            let message = format!(
                "engine events came faster than refinery takes them (more than {} waiting): {dropped} dropped, not recorded one by one, from {} node(s) ({}); those nodes are observed afresh",
                self.backlog.limit(),
                resynced.len(),
                names.join(", ")
            );
            tracing::warn!(dropped, nodes = resynced.len(), "{message}");
            records.push(alert("warning", message).revision(&rev));
        }
        self.append(records);
        self.scope = (due && !full).then_some(event_nodes);
        due
    }

    /// A ledger record for a change someone else made, if the event is one.
    fn outside_record(&mut self, node: &str, e: &EngineEvent) -> Option<Record> {
        let name = e.name.clone()?;
        let now = Instant::now();
        self.outside_created.retain(|_, t| t.elapsed() < BIRTH_FOR);
        let detail = |step: &str| ActionDetail {
            step: step.to_owned(),
            message: Some(format!("`{}` by someone other than refinery", e.action)),
            container_id: Some(e.container_id.clone()),
        };
        let event = match e.action.as_str() {
            "create" => {
                self.outside_created.insert(e.container_id.clone(), now);
                Event::Birth(detail("create"))
            }
            "destroy" => Event::Death(detail("remove")),
            "start" if self.outside_created.contains_key(&e.container_id) => return None,
            "start" | "restart" | "kill" | "stop" | "pause" | "unpause" | "update" | "rename" => {
                Event::Mutation(detail(&e.action))
            }
            _ => return None,
        };
        Some(
            Record::new(event)
                .resource(ResourceId::container(node, &name))
                .node(node)
                .actor(Actor::Outside),
        )
    }

    /// When the loop must wake at the latest: the periodic pass or a deadline.
    fn next_wake(&self) -> Instant {
        let mut wake = self.next_full;
        if let Some(due) = self.next_due {
            let ms = due.duration_since(Timestamp::now()).as_millis().max(0);
            let at = Instant::now() + Duration::from_millis(u64::try_from(ms).unwrap_or(0) + 20);
            wake = wake.min(at);
        }
        wake
    }

    /// Looks for a new commit on the branch (fetching it first when the repository has a
    /// remote); returns whether a pass is due.
    async fn poll_git(&mut self) -> bool {
        let resolved = self.gitops.tip().await.map(|t| t.commit);
        let tip = match resolved {
            Ok(id) => {
                self.branch_error = None;
                id
            }
            Err(e) => {
                let msg = e.to_string();
                if self.branch_error.as_deref() != Some(msg.as_str()) {
                    tracing::error!(follow = %self.follow, error = %msg, "failed to read the branch; enforcing revision {}", short(&self.rev()));
                    let record = alert(
                        "error",
                        format!(
                            "failed to read `{}`: {msg}; still enforcing `{}`",
                            self.follow,
                            short(&self.rev())
                        ),
                    )
                    .revision(self.rev());
                    self.append(vec![record]);
                    self.branch_error = Some(msg);
                }
                return false;
            }
        };
        if tip == self.tip {
            return false;
        }
        self.tip = tip.clone();
        if self
            .state
            .rolled_back
            .as_ref()
            .is_some_and(|rb| rb.from == tip)
        {
            return false;
        }
        self.switch_to(&tip, None).await
    }

    /// Loads `rev` and makes it the revision in force; a revision that does not load is
    /// reported and the last good one stays. `rolled_back` says why, for a rollback.
    async fn switch_to(&mut self, rev: &str, rolled_back: Option<RolledBack>) -> bool {
        if *rev == self.rev() {
            return false;
        }
        let loaded = desired::load(&self.settings.repo, rev);
        let desired = match loaded {
            Ok(d) => d,
            Err(e) => {
                if self.bad_tip.as_deref() != Some(rev) {
                    let hints = e.hints().join("; ");
                    let issues = match &e {
                        CliError::Manifest(m) => m
                            .issues()
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; "),
                        _ => String::new(),
                    };
                    tracing::error!(revision = %short(rev), error = %e, issues = %issues, hint = %hints, "failed to load the manifest; nothing is removed, still enforcing {}", short(&self.rev()));
                    let record = alert(
                        "error",
                        format!(
                            "failed to load revision `{}`: {e} {issues}; still enforcing `{}`",
                            short(rev),
                            short(&self.rev())
                        ),
                    )
                    .revision(self.rev());
                    self.append(vec![record]);
                    self.bad_tip = Some(rev.to_owned());
                }
                return false;
            }
        };
        let from = self.rev();
        let now = Timestamp::now();
        let warnings = desired.warnings.len();
        self.desired = Arc::new(desired);
        // Secrets the new revision brings are masked from its first entry on.
        let masker = refinery_store::masker_for(self.manifest());
        if let Some(l) = self.ledger.as_mut() {
            l.learn_secrets(&masker);
        }
        let to = self.rev();
        let mut records = vec![
            Record::new(Event::Revision {
                from: Some(from.clone()),
                to: to.clone(),
            })
            .revision(&to),
        ];
        match &rolled_back {
            Some(rb) => {
                tracing::warn!(from = %short(&rb.from), to = %short(&to), why = %rb.why, "rolled back");
                records.push(
                    alert(
                        if rb.by_hand { "warning" } else { "error" },
                        format!(
                            "rolled back from `{}` to `{}`: {}",
                            short(&rb.from),
                            short(&to),
                            rb.why
                        ),
                    )
                    .revision(&to),
                );
                self.state.pending = None;
            }
            None => {
                tracing::info!(from = %short(&from), to = %short(&to), warnings, "new revision");
                self.state.pending = Some(Pending {
                    revision: to.clone(),
                    since: now,
                });
            }
        }
        self.gitops_switched(&to, rolled_back.as_ref());
        self.state.rolled_back = rolled_back;
        self.state.revision = Some(to);
        self.append(records);
        self.sync_watchers();
        self.gitops_observe();
        self.save_state();
        true
    }

    /// Takes queued `resume`/`rollback` requests; returns whether a pass is due.
    async fn take_requests(&mut self) -> bool {
        let mut due = false;
        if !self.may_act() {
            // Requests wait for the leader.
            return false;
        }
        for request in requests::take(&self.state_dir) {
            match request {
                Err(e) => tracing::warn!(error = %e, "ignored an unreadable request"),
                Ok(Request::Resume { resource }) => {
                    let lifted = self.state.resume(&resource);
                    tracing::info!(resource = %resource, lifted, "resume requested");
                    if lifted {
                        let record = Record::new(Event::Alert {
                            level: "info".into(),
                            message: "flap protection lifted by `refinery resume`".into(),
                        })
                        .resource(
                            resource
                                .parse()
                                .unwrap_or_else(|_| ResourceId::container("", &resource)),
                        )
                        .revision(self.rev());
                        self.append(vec![record]);
                        self.save_state();
                        due = true;
                    }
                }
                Ok(Request::Note { level, message }) => {
                    tracing::info!(level = %level, "{message}");
                    let record = alert(&level, message).revision(self.rev());
                    self.append(vec![record]);
                }
                Ok(Request::Rollback { to }) => {
                    let target =
                        to.or_else(|| self.state.last_healthy.clone().filter(|h| *h != self.rev()));
                    let Some(target) = target else {
                        tracing::warn!(
                            "rollback requested, but there is no earlier healthy revision; pass --to"
                        );
                        continue;
                    };
                    let resolved = refinery_git::GitSource::open(&self.settings.repo)
                        .and_then(|g| g.resolve(&target));
                    match resolved {
                        Ok(c) => {
                            let rb = RolledBack {
                                from: self.tip.clone(),
                                to: c.id.clone(),
                                at: Timestamp::now(),
                                why: "requested with `refinery rollback`".into(),
                                by_hand: true,
                            };
                            due |= self.switch_to(&c.id, Some(rb)).await;
                        }
                        Err(e) => {
                            tracing::error!(to = %target, error = %e, "failed to resolve the rollback target");
                        }
                    }
                }
                Ok(Request::Apply { id, revision }) => due |= self.on_apply_request(&id, &revision),
            }
        }
        due
    }

    /// Commits the ledger in the background (at most every few seconds; `now` forces it).
    fn maybe_commit_ledger(&mut self, now: bool) {
        let m = self.manifest();
        if !m.config.git_auto_commit
            || self.appended_seq <= self.committed_seq
            || self.ledger.is_none()
        {
            return;
        }
        if !now && self.last_commit.is_some_and(|t| t.elapsed() < COMMIT_EVERY) {
            return;
        }
        if self.commit_task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let bare = refinery_git::GitSource::open(&self.settings.repo)
            .map_or(true, |g| g.workdir().is_none());
        if bare {
            return;
        }
        let repo = self.settings.repo.clone();
        let git_ref = match self.settings.shard {
            Some(shard) => shard.ledger_ref(&m.ledger.git_ref),
            None => m.ledger.git_ref.clone(),
        };
        let rel = ledger_rel(&m.ledger.path, self.settings.shard);
        let path = self.ledger_path.clone();
        let rev = self.rev();
        self.last_commit = Some(Instant::now());
        self.committed_seq = self.appended_seq;
        self.commit_task = Some(tokio::task::spawn_blocking(move || {
            let result = refinery_store::commit_ledger(
                &repo,
                &git_ref,
                &rel,
                &path,
                &rev,
                Timestamp::now().as_second(),
            );
            match result {
                Ok(Some(c)) => {
                    tracing::debug!(git_ref = %git_ref, entries = c.entries, "ledger committed");
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(git_ref = %git_ref, error = %e, "failed to commit the ledger; the entries go with the next commit");
                }
            }
        }));
    }

    /// One full pass over every node; returns whether another pass is due at once (after a
    /// rollback).
    async fn pass(&mut self) -> bool {
        // Take over or step down first (`--ha`): a pass is about to run anyway.
        let _ = self.on_leadership();
        let started = Instant::now();
        let now = Timestamp::now();
        // An event-only pass covers the nodes the events came from and leaves the timer alone.
        // A pass answering `refinery apply` is a full one.
        let scope = self.scope.take().filter(|_| !self.handover.waiting());
        if scope.is_none() {
            self.next_full = Instant::now() + self.check_interval;
        }
        let desired = Arc::clone(&self.desired);
        let manifest = &desired.manifest;
        let rev = desired.commit.id.clone();
        let Ok(selected) = engines::selected_nodes(manifest, &self.settings.nodes) else {
            return false;
        };
        let shard = self.settings.shard;
        let nodes: Vec<_> = selected
            .into_iter()
            .filter(|n| engines::in_shard(shard, &n.name))
            .filter(|n| scope.as_ref().is_none_or(|s| s.contains(&n.name)))
            .map(|n| {
                // When there is no client, setting it up again says why.
                let rt = self
                    .engine(n)
                    .map_or_else(|| engines::engine_in(n, &self.settings.repo), Ok);
                (n, rt)
            })
            .collect();
        let first_seen = self.state.first_seen.clone();
        let self_id = self.self_id.clone();
        let ctx = PassContext {
            now,
            first_seen: &first_seen,
            honor_grace: !self.handover.waiting(),
            self_id: self_id.as_deref(),
        };
        let flapping = manifest.drift_rules.flapping.unwrap_or(DEFAULT_FLAPPING);
        let mut acc = PassAcc {
            records: Vec::new(),
            next_due: None,
            health: RevisionHealth::Healthy,
        };
        // Each node is acted on as soon as its own observation is in: a slow node holds up
        // nobody, and actions on different nodes run at the same time.
        // At most `--max-concurrent-nodes` observed or acted on at once: a big fleet does not
        // open connections to every engine at the same moment, nor hold every node's
        // observation while their actions run.
        let limit = self.settings.max_concurrent_nodes.max(1);
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
                        self.hub.on_observed(&p.node.name, observed);
                    }
                    if let (Some(rt), Ok((observed, _))) = (&p.engine, &p.result)
                        && self.recover(&p.node.name, rt, observed).await
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
        } = acc;
        if recovered_any {
            // A node skipped this pass: nothing can be judged healthy on it yet.
            health = worse(health, RevisionHealth::Progressing);
        }
        self.state.forget_old_actions(now, flapping);
        self.append(records);
        let (summaries, afters): (Vec<_>, Vec<_>) = passes.into_iter().unzip();
        self.after_pass(&afters, &rev, recovered_any, scope.is_none());
        self.hub
            .on_pass(&desired, summaries, &kube, &self.state, now);
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
        self.next_due = next_due;
        self.save_state();
        self.maybe_commit_ledger(false);
        if scope.is_none() {
            // What a pass over every node freed goes back to the kernel.
            crate::memory::give_back();
        }
        tracing::debug!(
            micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            nodes = node_count,
            backlog_peak = self.backlog.take_peak(),
            "pass done"
        );
        again || recovered_any
    }

    /// The first half of a node's pass, as soon as its observation is in: records new drifts,
    /// alerts, holds back flapping resources, and returns the steps to carry out with the
    /// container names and ids they touch (marked as Refinery's own until they are done).
    fn plan_node(
        &mut self,
        p: &NodePass<'_>,
        manifest: &refinery_core::Manifest,
        rev: &str,
        now: Timestamp,
        acc: &mut PassAcc,
    ) -> (Vec<Step>, Vec<String>) {
        let node = p.node.name.as_str();
        let (Some(_), Ok((observed, eval))) = (&p.engine, &p.result) else {
            if let Err(e) = &p.result {
                acc.health = worse(acc.health.clone(), RevisionHealth::Progressing);
                if self.unreachable.insert(node.to_owned()) {
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
        self.unreachable.remove(node);
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

    /// Counts an action toward flap protection; the one that trips it is alerted and on record.
    #[allow(clippy::too_many_arguments)]
    fn count_action(
        &mut self,
        id: &ResourceId,
        spec_hash: Option<&str>,
        node: &str,
        rev: &str,
        now: Timestamp,
        flapping: refinery_core::manifest::Flapping,
        acc: &mut PassAcc,
    ) {
        let Some(s) = self
            .state
            .record_action(&id.to_string(), spec_hash, now, flapping)
        else {
            return;
        };
        let message = format!(
            "flap protection: {} actions within {}s; refinery stops acting on it until its spec changes in git or `refinery resume {id}` is run",
            s.actions, s.window_secs
        );
        tracing::warn!(resource = %id, "{message}");
        acc.records.push(
            alert("error", message)
                .resource(id.clone())
                .node(node)
                .revision(rev),
        );
    }

    /// What a pass keeps of a node once it is done: its summary, and what comes after the pass.
    fn keep_of(
        &self,
        manifest: &refinery_core::manifest::Manifest,
        p: &NodePass<'_>,
        now: Timestamp,
        keep: handover::Keep,
    ) -> (NodeSummary, NodeAfter) {
        (
            NodeSummary::of(manifest, p, &self.state, now),
            NodeAfter::of(p, keep),
        )
    }

    /// The second half of a node's pass, once its actions are done: records each outcome,
    /// counts actions for flap protection, judges the node's health.
    #[allow(clippy::too_many_arguments)]
    fn finish_node(
        &mut self,
        p: &NodePass<'_>,
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
            match r.outcome {
                Outcome::Failed => {
                    let why = r.message.clone().unwrap_or_default();
                    tracing::error!(resource = %r.id, step = %r.step, "failed: {why}");
                    failed.push((r.id.name().to_owned(), why));
                }
                outcome => {
                    tracing::info!(resource = %r.id, step = %r.step, "{outcome}");
                }
            }
            if r.outcome != Outcome::Skipped {
                let hash = spec_of(manifest, &r.id).map(spec_hash);
                self.count_action(&r.id, hash.as_deref(), node, rev, now, flapping, acc);
            }
        }
        // The node's actions are on the disk before anything else happens to it.
        self.append(std::mem::take(&mut acc.records));
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

    /// How the pending revision is doing on one node, if one is pending. A declared container
    /// that still differs from the revision keeps it from being healthy.
    fn node_health(
        &self,
        manifest: &refinery_core::Manifest,
        eval: &refinery_engine::Evaluation,
        observed: &refinery_core::Observed,
        failed: &[(String, String)],
        now: Timestamp,
    ) -> Option<RevisionHealth> {
        self.state.pending.as_ref()?;
        let settle = SETTLE_SECS.min(manifest.config.health_deadline_secs / 2);
        let declared = manifest.containers_on(&eval.node);
        let h = revision_health(&declared, observed, failed, now, settle);
        let differs = declared.iter().any(|c| {
            !eval
                .report
                .in_sync
                .iter()
                .any(|id| id.node() == eval.node && id.name() == c.name)
        });
        Some(match h {
            RevisionHealth::Healthy if differs => RevisionHealth::Progressing,
            other => other,
        })
    }

    /// Marks the pending revision healthy, or rolls back from it once its deadline passed.
    async fn judge_revision(&mut self, health: RevisionHealth, now: Timestamp) -> bool {
        let Some(pending) = self.state.pending.clone() else {
            return false;
        };
        if !self.may_act() {
            // A standby changes nothing: judging is the leader's.
            return false;
        }
        let deadline = self.manifest().config.health_deadline_secs;
        match &health {
            RevisionHealth::Healthy => {
                tracing::info!(revision = %short(&pending.revision), "revision is healthy");
                self.gitops.on_revision(&RevisionEvent::Healthy {
                    revision: pending.revision.clone(),
                });
                self.state.last_healthy = Some(pending.revision);
                self.state.pending = None;
                false
            }
            RevisionHealth::Progressing if !self.state.pending_overdue(now, deadline * 2) => false,
            RevisionHealth::Progressing | RevisionHealth::Failing(_) => {
                if !self.state.pending_overdue(now, deadline) {
                    return false;
                }
                let why = match health {
                    RevisionHealth::Failing(why) => why.clone(),
                    _ => format!(
                        "its containers did not run steadily within {}s",
                        deadline * 2
                    ),
                };
                let target = self
                    .state
                    .last_healthy
                    .clone()
                    .filter(|h| *h != pending.revision);
                match target {
                    Some(to) => {
                        let rb = RolledBack {
                            from: pending.revision.clone(),
                            to: to.clone(),
                            at: now,
                            why: format!("not healthy within {deadline}s: {why}"),
                            by_hand: false,
                        };
                        self.switch_to(&to, Some(rb)).await
                    }
                    None => {
                        let message = format!(
                            "revision `{}` is not healthy within {deadline}s ({why}) and there is no earlier healthy revision to return to",
                            short(&pending.revision)
                        );
                        tracing::error!("{message}");
                        self.gitops.on_revision(&RevisionEvent::GaveUp {
                            revision: pending.revision.clone(),
                            why: format!("not healthy within {deadline}s: {why}"),
                        });
                        self.append(vec![alert("error", message).revision(&pending.revision)]);
                        self.state.pending = None;
                        false
                    }
                }
            }
        }
    }
}

/// What the halves of a pass gather across nodes.
struct PassAcc {
    records: Vec<Record>,
    /// The earliest grace-period end.
    next_due: Option<Timestamp>,
    health: RevisionHealth,
}

/// When Refinery acted on a container.
struct Mark {
    start: Instant,
    /// `None` while acting.
    end: Option<Instant>,
    actions: &'static [&'static str],
}

/// What a recreate (or its recovery) makes the engine report.
const REPLACE_EVENTS: &[&str] = &[
    "create", "start", "kill", "die", "stop", "rename", "destroy",
];

/// The engine events a step makes.
impl Daemon {
    /// Readies one planned step of a pass, for a node or a Kubernetes source: `None` for an
    /// ignore step; a deferred one brings the next pass forward to when it is due; a write on a
    /// resource flap protection has suspended becomes an alert; an alert is recorded once per
    /// reason, and again when its drift is new.
    fn gate_step(
        &mut self,
        step: &Step,
        decisions: &[refinery_core::Decision],
        spec_hash: Option<&str>,
        drift_is_new: bool,
        rev: &str,
        acc: &mut PassAcc,
    ) -> Option<Step> {
        let mut step = step.clone();
        match step.kind {
            StepKind::Ignore => return None,
            StepKind::Defer => {
                if let Some(until) =
                    decisions
                        .iter()
                        .filter(|d| d.drift.id == step.id)
                        .find_map(|d| match d.verdict {
                            refinery_core::Verdict::Defer { until } => Some(until),
                            _ => None,
                        })
                {
                    acc.next_due = Some(acc.next_due.map_or(until, |n| n.min(until)));
                }
            }
            _ => {}
        }
        if step.kind.writes() && self.state.is_suspended(&step.id.to_string(), spec_hash) {
            step.kind = StepKind::Alert;
            step.reason = format!(
                "flap protection: not acting on it; run `refinery resume {}` or change its spec in git",
                step.id
            );
        }
        if step.kind == StepKind::Alert
            && (drift_is_new || self.alerted.get(&step.id) != Some(&step.reason))
        {
            self.alerted.insert(step.id.clone(), step.reason.clone());
            tracing::warn!(resource = %step.id, "{}", step.reason);
            acc.records.push(
                alert(
                    "warning",
                    format!("{}: {}", step.details.join("; "), step.reason),
                )
                .resource(step.id.clone())
                .node(step.id.node())
                .revision(rev),
            );
        }
        Some(step)
    }
}

fn events_of(kind: StepKind) -> &'static [&'static str] {
    match kind {
        StepKind::Restart => &["kill", "die", "stop", "start", "restart"],
        StepKind::Start => &["start"],
        StepKind::Unpause => &["unpause"],
        StepKind::Remove => &["kill", "die", "stop", "destroy"],
        StepKind::Create | StepKind::Recreate | StepKind::Rollback => REPLACE_EVENTS,
        StepKind::Alert | StepKind::Defer | StepKind::Protected | StepKind::Ignore => &[],
    }
}

fn spec_of<'m>(
    manifest: &'m refinery_core::Manifest,
    id: &ResourceId,
) -> Option<&'m refinery_core::ContainerSpec> {
    manifest
        .containers
        .iter()
        .find(|c| c.node == id.node() && c.name == id.name())
}

fn worse(a: RevisionHealth, b: RevisionHealth) -> RevisionHealth {
    match (a, b) {
        (f @ RevisionHealth::Failing(_), _) | (_, f @ RevisionHealth::Failing(_)) => f,
        (RevisionHealth::Progressing, _) | (_, RevisionHealth::Progressing) => {
            RevisionHealth::Progressing
        }
        _ => RevisionHealth::Healthy,
    }
}
