//! Where the daemon reports to the outside: alert channels, Prometheus metrics and the status
//! page. The daemon calls [`Hub::on_pass`], [`Hub::on_entries`] and [`Hub::on_event`]; none of
//! them waits on the network (alerts go through bounded per-channel queues, the page reads a
//! `watch` snapshot).

use refinery_core::short_id as short;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use refinery_core::daemon_state::DaemonState;
use refinery_core::ledger::{Actor, Entry, Event};
use refinery_core::manifest::Level;
use refinery_core::{Manifest, Outcome, ResourceId, StepKind};
use refinery_kube::KubeEval;
use tokio::sync::watch;

use crate::metrics::{Metrics, NodeLabels, OutcomeLabels};
use crate::status::{
    AlertLine, DriftView, LedgerLine, NodeView, ResourceView, RevisionView, RolledBackView, Status,
};
use refinery_controller::desired::Desired;
use refinery_controller::kube_sources::KubePass;
use refinery_notify::{self as notify, Notice, NoticeKind, Notifier};

/// Ledger lines and alert messages kept for the status page.
const KEEP_LEDGER: usize = 40;
const KEEP_ALERTS: usize = 25;

/// A drift the channels were told of (or that was open when the daemon started).
struct OpenDrift {
    node: String,
    resource: String,
    kind: String,
    summary: String,
    since: Timestamp,
}

pub struct Hub {
    metrics: Arc<Metrics>,
    notifier: Notifier,
    status: watch::Sender<Arc<Status>>,
    view: Status,
    /// `<resource> <drift>` → the drift, as the daemon's first-seen keys.
    open: BTreeMap<String, OpenDrift>,
    /// The earliest engine event not yet answered by an action.
    pending_event: Option<Instant>,
    /// When watched containers died: a heal is measured from the death.
    deaths: crate::heal_timing::DeathClock,
    /// The last outcome per resource, to say how a drift was resolved.
    last_action: HashMap<String, String>,
    /// Stops what serves the status page (the CLI's HTTP server), at shutdown.
    stop_server: Option<Box<dyn FnOnce() + Send>>,
    /// Run after each pass over every node (the binary hands freed memory back to the kernel).
    after_full_pass: fn(),
    /// A standby (`--ha`): the leader tells the channels, this instance does not.
    muted: bool,
    /// The nodes of the pass under way, as each is done.
    nodes: Vec<NodeSummary>,
}

/// What the status page and the metrics keep of one node's pass. It is made as soon as the
/// node is done, so the node's observation (every container's full inspection) goes then, not
/// at the end of a pass over the whole fleet.
pub struct NodeSummary {
    name: String,
    /// The node's view and its drifts, or why it could not be observed.
    outcome: Result<(NodeView, Vec<refinery_core::Drift>), String>,
}

impl NodeSummary {
    /// The summary of a node's pass; `state` holds the first-seen times of its drifts.
    #[must_use]
    pub fn of(
        manifest: &Manifest,
        node: &str,
        result: &Result<
            (refinery_core::Observed, refinery_engine::Evaluation),
            refinery_core::RuntimeError,
        >,
        state: &DaemonState,
        now: Timestamp,
    ) -> NodeSummary {
        let name = node.to_owned();
        let outcome = match result {
            Ok((observed, eval)) => Ok((
                node_view(manifest, &name, observed, eval, state, now),
                eval.report.drifts.clone(),
            )),
            Err(e) => Err(e.to_string()),
        };
        NodeSummary { name, outcome }
    }
}

impl Hub {
    /// Starts the alert channels of `manifest`. Drifts already open (the daemon's saved
    /// first-seen times) are not announced again. The status page is served by whoever takes
    /// [`Hub::status_feed`] and [`Hub::metrics`].
    #[must_use]
    pub fn new(manifest: &Manifest, state: &DaemonState) -> Hub {
        let metrics = Arc::new(Metrics::new());
        let mut notifier = Notifier::new(Arc::clone(&metrics));
        let channels = notify::channels_of(manifest);
        let mut view = Status {
            channels: channels.len(),
            ..Status::default()
        };
        notifier.configure(channels);
        let (status, _) = watch::channel(Arc::new(view.clone()));
        let mut open = BTreeMap::new();
        for (key, since) in &state.first_seen {
            let Some((resource, kind)) = key.rsplit_once(' ') else {
                continue;
            };
            let Ok(id) = resource.parse::<ResourceId>() else {
                continue;
            };
            open.insert(
                key.clone(),
                OpenDrift {
                    node: id.node().to_owned(),
                    resource: resource.to_owned(),
                    kind: kind.to_owned(),
                    summary: String::new(),
                    since: *since,
                },
            );
        }
        view.revision.in_force = state.revision.clone();
        Hub {
            metrics,
            notifier,
            status,
            view,
            open,
            pending_event: None,
            deaths: crate::heal_timing::DeathClock::default(),
            last_action: HashMap::new(),
            stop_server: None,
            after_full_pass: || {},
            muted: false,
            nodes: Vec::new(),
        }
    }

    /// The status page's model, as it changes.
    #[must_use]
    pub fn status_feed(&self) -> watch::Receiver<Arc<Status>> {
        self.status.subscribe()
    }

    /// The metrics the channels and passes count into.
    #[must_use]
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// `stop` is called at shutdown, after the queued alerts went out.
    pub fn stop_at_shutdown(&mut self, stop: impl FnOnce() + Send + 'static) {
        self.stop_server = Some(Box::new(stop));
    }

    /// `f` is called after each pass over every node.
    pub fn after_full_pass(&mut self, f: fn()) {
        self.after_full_pass = f;
    }

    /// An engine event arrived (it triggers a pass; an action in that pass answers it).
    pub fn on_event(&mut self, received: Instant) {
        self.pending_event.get_or_insert(received);
    }

    /// A node's observation, as soon as it is in (before any action on it).
    pub fn on_observed(&mut self, node: &str, observed: &refinery_core::Observed) {
        self.deaths.observe(node, observed);
    }

    /// Entries just appended to the ledger.
    pub fn on_entries(&mut self, entries: &[Entry]) {
        // Only the last few are shown: a batch of thousands (an event storm, a fleet's first
        // pass) makes no line it would drop at once.
        let shown = entries.len().saturating_sub(KEEP_LEDGER);
        for (i, e) in entries.iter().enumerate() {
            self.metrics.ledger_entries.inc();
            self.metrics
                .ledger_seq
                .set(i64::try_from(e.seq).unwrap_or(i64::MAX));
            if i >= shown {
                self.view.ledger.insert(0, ledger_line(e));
            }
            let resource = e.resource.as_ref().map(ToString::to_string);
            match (&e.event, e.outcome) {
                (
                    Event::Birth(d)
                    | Event::Death(d)
                    | Event::Mutation(d)
                    | Event::Rollback(d)
                    | Event::Action(d),
                    Some(outcome),
                ) if e.actor == Actor::Refinery => {
                    let node = e
                        .node
                        .clone()
                        .or_else(|| e.resource.as_ref().map(|r| r.node().to_owned()))
                        .unwrap_or_default();
                    self.metrics
                        .actions
                        .get_or_create(&OutcomeLabels {
                            node: node.clone(),
                            outcome: outcome.as_str().to_owned(),
                        })
                        .inc();
                    if let Some(r) = &resource {
                        self.last_action.insert(r.clone(), outcome.to_string());
                    }
                    if outcome == Outcome::Failed {
                        let title = format!(
                            "{} failed",
                            resource.clone().unwrap_or_else(|| d.step.clone())
                        );
                        let mut n = Notice::new(NoticeKind::Alert, Level::Critical, title, e.time);
                        n.text = format!(
                            "`{}` failed: {}",
                            d.step,
                            d.message.clone().unwrap_or_default()
                        );
                        n.node = Some(node);
                        n.resource = resource;
                        n.revision = e.revision.clone();
                        self.notify(n);
                    } else if !matches!(outcome, Outcome::Skipped | Outcome::Deferred) {
                        // A heal of a container that died counts from its death, whether the
                        // `die` event or a periodic pass found it first.
                        let since = match resource
                            .as_deref()
                            .and_then(|r| self.deaths.answered(r, e.time))
                        {
                            Some(d) => {
                                self.pending_event = None;
                                Some(d)
                            }
                            None => self.pending_event.take().map(|at| at.elapsed()),
                        };
                        if let Some(d) = since {
                            self.metrics.event_to_action.observe(d.as_secs_f64());
                        }
                    }
                }
                (Event::Alert { level, message }, _) => {
                    let level = match level.as_str() {
                        "error" | "critical" => Level::Critical,
                        "info" => Level::Info,
                        _ => Level::Warning,
                    };
                    // A warning about one resource is the policy answering a drift: the drift's
                    // own message already said it.
                    if level == Level::Warning && resource.is_some() {
                        continue;
                    }
                    let title = match (&resource, &e.node) {
                        (Some(r), _) => r.clone(),
                        (None, Some(n)) => format!("node `{n}`"),
                        (None, None) => "refinery".into(),
                    };
                    let mut n = Notice::new(NoticeKind::Alert, level, title, e.time);
                    n.text.clone_from(message);
                    n.node.clone_from(&e.node);
                    n.resource = resource;
                    n.revision = e.revision.clone();
                    self.notify(n);
                }
                (Event::Revision { from, to }, _) => {
                    let mut n = Notice::new(
                        NoticeKind::Alert,
                        Level::Info,
                        format!("revision `{}` in force", short(to)),
                        e.time,
                    );
                    n.text = match from {
                        Some(f) => format!("was `{}`", short(f)),
                        None => "first revision".into(),
                    };
                    n.revision = Some(to.clone());
                    self.notify(n);
                }
                _ => {}
            }
        }
        self.view.ledger.truncate(KEEP_LEDGER);
        self.publish();
    }

    /// After a pass (and its actions): drift starts and ends go to the channels, metrics and
    /// the status page are brought up to date. `nodes` are the summaries of the nodes the pass
    /// covered ([`NodeSummary::of`]), in the order they were done.
    pub fn on_pass(
        &mut self,
        desired: &Desired,
        passes: Vec<NodeSummary>,
        kube: &[KubePass],
        state: &DaemonState,
        started: Timestamp,
    ) {
        let manifest = &desired.manifest;
        let now = Timestamp::now();
        let rev = desired.commit.id.clone();
        let channels = notify::channels_of(manifest);
        self.view.channels = channels.len();
        self.notifier.configure(channels);
        let mut nodes = Vec::new();
        for p in passes {
            match p.outcome {
                Ok((mut view, drifts)) => {
                    self.observed(&p.name, &drifts, &rev, now);
                    view.last_pass = Some(now);
                    nodes.push(view);
                }
                Err(error) => {
                    let mode = manifest.mode_of(&p.name).as_str();
                    nodes.push(self.unreachable(&p.name, mode, error));
                }
            }
        }
        // Each `kubernetes:` source is a node of its own, `k8s/<source>`, as `refinery status`
        // shows it.
        for p in kube {
            match &p.result {
                Ok(eval) => {
                    self.observed(&p.label, &eval.report.drifts, &rev, now);
                    nodes.push(kube_view(p, eval, state, now));
                }
                Err(e) => nodes.push(self.unreachable(&p.label, p.mode.as_str(), e.to_string())),
            }
        }
        self.metrics
            .pass_duration
            .observe(now.duration_since(started).as_secs_f64().max(0.0));
        self.pending_event = None;
        self.metrics.set_revisions(&[
            ("in_force", Some(rev.as_str())),
            (
                "pending",
                state.pending.as_ref().map(|p| p.revision.as_str()),
            ),
            ("last_healthy", state.last_healthy.as_deref()),
        ]);
        // A pass may cover some nodes only (one caused by engine events): the others keep their
        // last view while the manifest still declares them.
        let mut merged: Vec<NodeView> = std::mem::take(&mut self.view.nodes)
            .into_iter()
            .filter(|old| {
                manifest.node(&old.name).is_some_and(|n| n.docker_enabled)
                    && !nodes.iter().any(|n: &NodeView| n.name == old.name)
            })
            .collect();
        merged.extend(nodes);
        self.view.nodes = merged;
        self.view.ready = true;
        self.view.passes += 1;
        self.view.revision = RevisionView {
            in_force: Some(rev),
            message: Some(desired.commit.summary.clone()),
            pending: state.pending.as_ref().map(|p| p.revision.clone()),
            last_healthy: state.last_healthy.clone(),
            rolled_back: state.rolled_back.as_ref().map(|r| RolledBackView {
                from: r.from.clone(),
                to: r.to.clone(),
                why: r.why.clone(),
            }),
        };
        self.publish();
    }

    /// A node (or Kubernetes source) observed now: reachable, its last pass, the revision in
    /// force there, its drift counts, and the drifts announced or resolved.
    fn observed(&mut self, node: &str, drifts: &[refinery_core::Drift], rev: &str, now: Timestamp) {
        let labels = NodeLabels {
            node: node.to_owned(),
        };
        self.metrics.reachable.get_or_create(&labels).set(1);
        self.metrics
            .last_pass
            .get_or_create(&labels)
            .set(now.as_millisecond() as f64 / 1000.0);
        self.metrics.set_node_revision(node, rev);
        let counts: Vec<(&str, i64)> = drifts.iter().map(|d| (d.kind.as_str(), 1)).collect();
        self.metrics.set_drifts(node, &counts);
        self.track(node, drifts, rev);
    }

    /// A node (or source) that could not be observed: unreachable in the metrics, and a view
    /// keeping its last pass time.
    fn unreachable(&mut self, node: &str, mode: &str, error: String) -> NodeView {
        let labels = NodeLabels {
            node: node.to_owned(),
        };
        self.metrics.reachable.get_or_create(&labels).set(0);
        let last = self
            .view
            .nodes
            .iter()
            .find(|n| n.name == node)
            .and_then(|n| n.last_pass);
        NodeView {
            name: node.to_owned(),
            reachable: false,
            error: Some(error),
            mode: mode.to_owned(),
            last_pass: last,
            drifts: 0,
            resources: Vec::new(),
        }
    }

    /// Announces drifts seen for the first time and drifts now gone on one observed node.
    fn track(&mut self, node: &str, drifts: &[refinery_core::Drift], rev: &str) {
        let now = Timestamp::now();
        let current: BTreeMap<String, &refinery_core::Drift> = drifts
            .iter()
            .map(|d| (refinery_core::policy::drift_key(d), d))
            .collect();
        let gone: Vec<String> = self
            .open
            .iter()
            .filter(|(k, o)| o.node == node && !current.contains_key(*k))
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            let Some(o) = self.open.remove(&key) else {
                continue;
            };
            let mut n = Notice::new(
                NoticeKind::DriftResolved,
                drift_level(&o.kind),
                format!("{}: {} drift resolved", o.resource, o.kind),
                now,
            );
            let lasted = now.duration_since(o.since).as_secs().max(0);
            n.text = match self.last_action.get(&o.resource) {
                Some(outcome) => format!("{outcome}; the drift lasted {lasted}s"),
                None => format!("the drift lasted {lasted}s"),
            };
            if !o.summary.is_empty() {
                n.text = format!("was: {}; {}", o.summary, n.text);
            }
            n.node = Some(o.node);
            n.resource = Some(o.resource);
            n.drift = Some(o.kind);
            n.revision = Some(rev.to_owned());
            self.notify(n);
        }
        for (key, d) in current {
            if let Some(o) = self.open.get_mut(&key) {
                if o.summary.is_empty() {
                    o.summary.clone_from(&d.summary);
                }
                continue;
            }
            let kind = d.kind.as_str().to_owned();
            let resource = d.id.to_string();
            let mut n = Notice::new(
                NoticeKind::DriftStarted,
                drift_level(&kind),
                format!("{resource}: {kind} drift"),
                now,
            );
            n.text.clone_from(&d.summary);
            n.node = Some(node.to_owned());
            n.resource = Some(resource.clone());
            n.drift = Some(kind.clone());
            n.revision = Some(rev.to_owned());
            self.open.insert(
                key,
                OpenDrift {
                    node: node.to_owned(),
                    resource,
                    kind,
                    summary: d.summary.clone(),
                    since: now,
                },
            );
            self.notify(n);
        }
    }

    /// The election changed (`--ha`): shown on the status page; a standby sends no alerts.
    pub fn on_ha(&mut self, ha: refinery_ha::HaStatus, leading: bool) {
        self.muted = !leading;
        self.metrics.ha_leader.set(i64::from(leading));
        self.metrics
            .ha_term
            .set(ha.term.and_then(|t| i64::try_from(t).ok()).unwrap_or(0));
        if self.view.ha.as_ref() != Some(&ha) {
            self.view.ha = Some(ha);
            self.publish();
        }
    }

    fn notify(&mut self, n: Notice) {
        if self.muted {
            return;
        }
        tracing::debug!(kind = n.kind.as_str(), title = %n.title, "alert");
        self.view.alerts.insert(
            0,
            AlertLine {
                time: n.time,
                kind: n.kind.as_str().to_owned(),
                level: notify::notice::level_str(n.level).to_owned(),
                title: n.title.clone(),
                text: n.text.clone(),
            },
        );
        self.view.alerts.truncate(KEEP_ALERTS);
        self.notifier.send(&n);
    }

    fn publish(&mut self) {
        self.view.time = Timestamp::now();
        self.status.send_replace(Arc::new(self.view.clone()));
    }

    /// Lets queued alerts go out (at most a few seconds) and stops the HTTP server.
    pub async fn shutdown(&mut self) {
        self.notifier.shutdown(Duration::from_secs(5)).await;
        if let Some(stop) = self.stop_server.take() {
            stop();
        }
    }
}

/// Drifts are warnings; a container that is gone is critical.
fn drift_level(kind: &str) -> Level {
    match kind {
        "missing" => Level::Critical,
        _ => Level::Warning,
    }
}

fn ledger_line(e: &Entry) -> LedgerLine {
    // The same one-line detail `refinery ledger show` prints.
    let summary = refinery_store::entry_detail(e);
    LedgerLine {
        seq: e.seq,
        time: e.time,
        kind: e.event.kind().as_str().to_owned(),
        node: e.node.clone(),
        resource: e.resource.as_ref().map(ToString::to_string),
        outcome: e.outcome.map(|o| o.to_string()),
        actor: e.actor.as_str().to_owned(),
        summary,
    }
}

/// One `kubernetes:` source's objects as the page shows them: each declared object (`present`
/// or `missing`), and the undeclared ones with drift (`unauthorized` workloads, `orphan`s).
fn kube_view(p: &KubePass, eval: &KubeEval, state: &DaemonState, now: Timestamp) -> NodeView {
    use refinery_core::DriftKind;
    let mut ids: Vec<&ResourceId> = eval.report.in_sync.iter().collect();
    ids.extend(eval.report.drifts.iter().map(|d| &d.id));
    ids.sort();
    ids.dedup();
    let resources = ids
        .into_iter()
        .map(|id| {
            let drifts: Vec<&refinery_core::Drift> =
                eval.report.drifts.iter().filter(|d| d.id == *id).collect();
            let has = |k: DriftKind| drifts.iter().any(|d| d.kind == k);
            let declared = !has(DriftKind::Unauthorized) && !has(DriftKind::Orphan);
            let (kind, name) = match id {
                ResourceId::Kube { kind, name, .. } => (kind.as_str(), name.as_str()),
                other => ("", other.name()),
            };
            let images: Vec<String> = p
                .objects
                .iter()
                .filter(|o| declared && o.kind.to_lowercase() == kind && o.name == name)
                .flat_map(|o| refinery_kube::diff::container_images(&o.body))
                .map(|(_, image)| image)
                .collect();
            let state_word = if has(DriftKind::Missing) {
                "missing"
            } else {
                "present"
            };
            ResourceView {
                id: id.to_string(),
                name: format!("{kind}/{name}"),
                declared,
                status: if drifts.is_empty() {
                    "in_sync"
                } else {
                    "drift"
                },
                image: (!images.is_empty()).then(|| images.join(",")),
                state: Some(state_word.to_owned()),
                health: None,
                drifts: drifts.iter().map(|d| drift_view(d, state)).collect(),
                action: eval
                    .plan
                    .steps
                    .iter()
                    .find(|s| s.id == *id && s.kind != StepKind::Ignore)
                    .map(|s| format!("{}: {}", s.kind, s.reason)),
                degraded: None,
            }
        })
        .collect();
    NodeView {
        name: p.label.clone(),
        reachable: true,
        error: None,
        mode: p.mode.as_str().to_owned(),
        last_pass: Some(now),
        drifts: eval.report.drifts.len(),
        resources,
    }
}

/// A drift as the page shows it, with when it was first seen.
fn drift_view(d: &refinery_core::Drift, state: &DaemonState) -> DriftView {
    DriftView {
        kind: d.kind.as_str().to_owned(),
        summary: d.summary.clone(),
        since: state
            .first_seen
            .get(&refinery_core::policy::drift_key(d))
            .copied(),
    }
}

/// One node's declared containers (and undeclared drifted ones) as the page shows them.
fn node_view(
    manifest: &Manifest,
    node: &str,
    observed: &refinery_core::Observed,
    eval: &refinery_engine::Evaluation,
    state: &DaemonState,
    now: Timestamp,
) -> NodeView {
    let drift_views = |id: &ResourceId| -> Vec<DriftView> {
        eval.report
            .drifts
            .iter()
            .filter(|d| d.id == *id)
            .map(|d| drift_view(d, state))
            .collect()
    };
    let action_of = |id: &ResourceId| {
        eval.plan
            .steps
            .iter()
            .find(|s| s.id == *id && s.kind != StepKind::Ignore)
            .map(|s| format!("{}: {}", s.kind, s.reason))
    };
    let mut resources = Vec::new();
    for c in manifest.containers_on(node) {
        let id = ResourceId::for_spec(node, c);
        let o = refinery_core::drift::declared_container(c, observed);
        let drifts = drift_views(&id);
        let degraded = eval
            .report
            .degraded
            .iter()
            .find(|d| d.id == id)
            .map(ToString::to_string);
        let status = match (drifts.is_empty(), &degraded) {
            (false, _) => "drift",
            (true, Some(_)) => "degraded",
            (true, None) => "in_sync",
        };
        resources.push(ResourceView {
            id: id.to_string(),
            name: c.name.clone(),
            declared: true,
            status,
            image: Some(c.image.clone()),
            state: o.map(|o| o.state.to_string()),
            health: o.map(|o| o.health.to_string()),
            action: if drifts.is_empty() {
                None
            } else {
                action_of(&id)
            },
            drifts,
            degraded,
        });
    }
    for d in &eval.report.drifts {
        if resources.iter().any(|r| r.id == d.id.to_string()) {
            continue;
        }
        let o = observed.container(d.id.name());
        resources.push(ResourceView {
            id: d.id.to_string(),
            name: d.id.name().to_owned(),
            // A stack's network or volume is declared (by its compose file).
            declared: refinery_core::compose::is_network_or_volume(&d.id),
            status: "drift",
            image: o.map(|o| o.image.clone()),
            state: o.map(|o| o.state.to_string()),
            health: o.map(|o| o.health.to_string()),
            drifts: drift_views(&d.id),
            action: action_of(&d.id),
            degraded: None,
        });
    }
    NodeView {
        name: node.to_owned(),
        reachable: true,
        error: None,
        mode: manifest.mode_of(node).as_str().to_owned(),
        last_pass: Some(now),
        drifts: eval.report.drifts.len(),
        resources,
    }
}

/// The controller reports here: alert channels, metrics, the status page.
impl refinery_controller::ports::Reporter for Hub {
    fn on_event(&mut self, received: tokio::time::Instant) {
        Hub::on_event(self, received.into_std());
    }

    fn on_observed(&mut self, node: &str, observed: &refinery_core::Observed) {
        Hub::on_observed(self, node, observed);
    }

    fn on_entries(&mut self, entries: &[Entry]) {
        Hub::on_entries(self, entries);
    }

    fn on_node(
        &mut self,
        manifest: &Manifest,
        node: &str,
        result: &Result<
            (refinery_core::Observed, refinery_engine::Evaluation),
            refinery_core::RuntimeError,
        >,
        state: &DaemonState,
        now: Timestamp,
    ) {
        self.nodes
            .push(NodeSummary::of(manifest, node, result, state, now));
    }

    fn on_pass(
        &mut self,
        desired: &Desired,
        kube: &[KubePass],
        state: &DaemonState,
        started: Timestamp,
        full: bool,
    ) {
        let nodes = std::mem::take(&mut self.nodes);
        Hub::on_pass(self, desired, nodes, kube, state, started);
        if full {
            (self.after_full_pass)();
        }
    }

    fn on_ha(&mut self, status: refinery_ha::HaStatus, leading: bool) {
        Hub::on_ha(self, status, leading);
    }

    fn on_registry_check_failed(&mut self, registry: &str) {
        self.metrics.registry_check_failed(registry);
    }

    fn shutdown(&mut self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(Hub::shutdown(self))
    }
}
