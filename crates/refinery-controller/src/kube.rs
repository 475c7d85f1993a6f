//! The `kubernetes:` sources in the daemon: the same drift tracking, grace periods, alerts, flap
//! protection, ledger entries and revision health as for containers; each source is the node
//! `k8s/<source>` in its ledger entries, the status page and the metrics. Watches (kube-runtime) on the namespaces a
//! source manages trigger a full pass on every change; the periodic pass
//! (`config.check_interval`) covers a cluster that could not be watched.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::sync::mpsc::UnboundedSender;

use jiff::Timestamp;
use refinery_core::daemon_state::RevisionHealth;
use refinery_core::policy::drift_key;
use refinery_core::{DriftKind, Outcome, Plan};

use crate::controller::{Controller, PassAcc, alert};
use crate::desired::Desired;
use crate::event_watch::Trigger;
use crate::kube_sources::KubePass;
use crate::ports::Engine;
use crate::state_keys::{Source, Watch};

/// Follows every source's changes until the receiver is gone.
async fn follow(desired: Arc<Desired>, repo: PathBuf, tx: UnboundedSender<Trigger>) {
    let mut streams = Vec::new();
    for (label, res) in crate::kube_sources::connect_all(&desired, &repo).await {
        let watched = match res {
            Ok((cluster, objects)) => refinery_kube::watch_source(&cluster, &objects).await,
            Err(e) => Err(e),
        };
        match watched {
            Ok(s) => streams.push(s.map(move |what| (label.clone(), what)).boxed()),
            Err(e) => {
                tracing::warn!(source = %label, error = %e, "not watching kubernetes source; the periodic pass still checks it");
            }
        }
    }
    let mut all = futures_util::stream::select_all(streams);
    while let Some((source, what)) = all.next().await {
        if tx.send(Trigger::Kube { source, what }).is_err() {
            return;
        }
    }
}

/// How a pending revision is doing on the `kubernetes:` sources: failing when a declared
/// Deployment's rollout is stuck (`ProgressDeadlineExceeded`, a `status` drift); progressing
/// while a source cannot be observed, a declared object is still missing or differs (what this
/// pass just applied) or a declared Deployment's rollout is not complete (every replica updated
/// and available, as `kubectl rollout status` waits for); else healthy.
fn revision_health(passes: &[KubePass]) -> RevisionHealth {
    let mut health = RevisionHealth::Healthy;
    for p in passes {
        let Ok(eval) = &p.result else {
            health = RevisionHealth::Progressing;
            continue;
        };
        if !eval.rolling_out.is_empty() {
            health = RevisionHealth::Progressing;
        }
        let drifts = eval.report.drifts.iter().filter(|d| d.counts());
        for d in drifts {
            match d.kind {
                DriftKind::Status => {
                    return RevisionHealth::Failing(format!("`{}`: {}", d.id, d.summary));
                }
                DriftKind::Missing | DriftKind::Config | DriftKind::Image => {
                    health = RevisionHealth::Progressing;
                }
                DriftKind::Unauthorized | DriftKind::Orphan | DriftKind::ImageUpdate => {}
            }
        }
    }
    health
}

impl<R: Engine> Controller<R> {
    /// (Re)starts the watch task when the revision changed; stops it when there are no sources.
    pub(crate) fn sync_kube_watcher(&mut self) {
        let desired = Arc::clone(&self.desired);
        if desired.manifest.kubernetes.is_empty() {
            if let Some((_, h)) = self.watchers.remove(&Watch::Kube) {
                h.abort();
            }
            return;
        }
        let key = desired.commit.id.clone();
        if self
            .watchers
            .get(&Watch::Kube)
            .is_some_and(|(k, _)| *k == key)
        {
            return;
        }
        if let Some((_, h)) = self.watchers.remove(&Watch::Kube) {
            h.abort();
        }
        let handle = tokio::spawn(follow(desired, self.options.repo.clone(), self.tx.clone()));
        self.watchers.insert(Watch::Kube, (key, handle));
    }

    /// Observes, decides and acts on every `kubernetes:` source; records go to `acc`. Returns
    /// what each source's observation found (for the status page and metrics).
    pub(crate) async fn kube_pass(
        &mut self,
        desired: &Desired,
        rev: &str,
        now: Timestamp,
        flapping: refinery_core::manifest::Flapping,
        acc: &mut PassAcc,
    ) -> Vec<crate::kube_sources::KubePass> {
        let manifest = &desired.manifest;
        if manifest.kubernetes.is_empty() {
            return Vec::new();
        }
        let first_seen = self.state.first_seen.clone();
        let suspended = self.state.suspended.clone();
        let passes = crate::kube_sources::observe_all(
            desired,
            &self.options.repo,
            now,
            &first_seen,
            true,
            &suspended,
        )
        .await;
        // Drifts that are gone are forgotten (a reachable source's only).
        let current: BTreeSet<String> = passes
            .iter()
            .filter_map(|p| p.result.as_ref().ok())
            .flat_map(|e| e.report.drifts.iter().map(drift_key))
            .collect();
        let failed_contexts: BTreeSet<String> = passes
            .iter()
            .filter(|p| p.result.is_err())
            .filter_map(|p| p.context.clone())
            .collect();
        self.state.first_seen.retain(|k, _| {
            !k.starts_with("k8s/")
                || current.contains(k)
                || failed_contexts
                    .iter()
                    .any(|c| k.starts_with(&format!("k8s/{c}/")))
        });
        if self.state.pending.is_some() {
            acc.health = crate::controller::worse(acc.health.clone(), revision_health(&passes));
        }
        for p in &passes {
            let eval = match &p.result {
                Ok(e) => e,
                Err(e) => {
                    if self.unreachable.insert(Source::Kube(p.label.clone())) {
                        tracing::warn!(source = %p.label, error = %e, "kubernetes source failed");
                        acc.records.push(
                            alert(
                                "error",
                                format!("kubernetes source `{}` failed: {e}", p.label),
                            )
                            .node(&p.label)
                            .revision(rev),
                        );
                    }
                    continue;
                }
            };
            self.unreachable.remove(&Source::Kube(p.label.clone()));
            let new: Vec<_> = self
                .state
                .track_drifts(&p.label, &eval.report.drifts, now)
                .into_iter()
                .cloned()
                .collect();
            for d in &new {
                tracing::info!(resource = %d.id, drift = %d.kind, "{}", d.summary);
                acc.records
                    .push(crate::ledger_records::drift(manifest, d, rev).node(&p.label));
            }
            let mut steps = Vec::new();
            for step in &eval.plan.steps {
                let hash = crate::kube_sources::spec_hash_of(p, &step.id);
                let is_new = new.iter().any(|d| d.id == step.id);
                let Some(step) =
                    self.gate_step(step, &eval.decisions, hash.as_deref(), is_new, rev, acc)
                else {
                    continue;
                };
                if step.kind.writes() {
                    steps.push(step);
                }
            }
            // Fencing (`--ha`): a standby, or a leader whose lease went stale, changes nothing;
            // checked right before the actions, as for a node's.
            if steps.is_empty() || !self.may_act() {
                continue;
            }
            self.append_unsynced(std::mem::take(&mut acc.records));
            let results = crate::kube_sources::execute_plan(p, &Plan { steps }, now).await;
            for r in &results {
                acc.records
                    .push(crate::ledger_records::step(manifest, r, rev).node(&p.label));
                match r.outcome {
                    Outcome::Failed => tracing::error!(
                        resource = %r.id, step = %r.step,
                        "failed: {}", r.message.clone().unwrap_or_default()
                    ),
                    outcome => tracing::info!(resource = %r.id, step = %r.step, "{outcome}"),
                }
                if r.outcome != Outcome::Skipped {
                    let hash = crate::kube_sources::spec_hash_of(p, &r.id);
                    self.count_action(&r.id, hash.as_deref(), &p.label, rev, now, flapping, acc);
                }
            }
            self.append(std::mem::take(&mut acc.records));
        }
        passes
    }
}
