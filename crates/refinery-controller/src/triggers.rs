//! What the loop does with the triggers the followers send (engine events, a lost or returned
//! engine, a resync, a Kubernetes change), and keeping one follower per node.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::controller::{Controller, alert};
use crate::event_watch::{Trigger, follow};
use crate::ports::Engine;
use crate::state_keys::{NodeName, Source, Watch};
use std::borrow::Borrow as _;

impl<R: Engine> Controller<R> {
    /// One event follower per node (restarted when a node's endpoint or the selector changes).
    pub(crate) fn sync_watchers(&mut self) {
        let selector = self.manifest().config.selector.clone();
        let nodes = self.nodes();
        let wanted: BTreeSet<String> = nodes.iter().map(|n| n.name.clone()).collect();
        self.watchers.retain(|watch, (_, handle)| {
            let keep = match watch {
                Watch::Node(name) => wanted.contains(name.borrow() as &str),
                Watch::Kube => true,
            };
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
                .get(&Watch::Node(NodeName::new(&node.name)))
                .is_some_and(|(k, _)| *k == key)
            {
                continue;
            }
            let Some(rt) = self.engine(node) else {
                continue;
            };
            let watch = Watch::Node(NodeName::new(&node.name));
            if let Some((_, old)) = self.watchers.remove(&watch) {
                old.abort();
            }
            let handle = tokio::spawn(follow(
                node.name.clone(),
                rt,
                selector.clone(),
                self.tx.clone(),
                Arc::clone(&self.backlog),
            ));
            self.watchers.insert(watch, (key, handle));
        }
        self.sync_kube_watcher();
    }

    /// Records outside changes and says whether a pass is due.
    pub(crate) fn on_triggers(&mut self, batch: Vec<Trigger>) -> bool {
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
                    self.reporter.on_event(received);
                    if self.is_ours(&event, received) {
                        continue;
                    }
                    if let Some(r) = self.outside_record(&node, &event) {
                        records.push(r.revision(&rev));
                    }
                }
                Trigger::Lost { node, why } => {
                    tracing::warn!(node = %node, reason = %why, "lost the engine; reconnecting with backoff");
                    if self.unreachable.insert(Source::node(&node)) {
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
                    if let Some((_, rt)) = self.engines.get(node.as_str()) {
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
}
