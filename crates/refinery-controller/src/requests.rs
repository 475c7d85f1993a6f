//! Requests queued in the state directory by `refinery resume`, `refinery rollback`,
//! `refinery alert` and `refinery apply`.

use refinery_core::ResourceId;
use refinery_core::daemon_state::RolledBack;
use refinery_core::ledger::{Event, Record};
use refinery_store::request_queue::{self as requests, Request};

use crate::controller::{Controller, alert};
use crate::ports::Engine;

impl<R: Engine> Controller<R> {
    /// Takes queued `resume`/`rollback` requests; returns whether a pass is due.
    pub(crate) async fn take_requests(&mut self) -> bool {
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
                    let resolved = refinery_git::GitSource::open(&self.options.repo)
                        .and_then(|g| g.resolve(&target));
                    match resolved {
                        Ok(c) => {
                            let rb = RolledBack {
                                from: self.tip.clone(),
                                to: c.id.clone(),
                                at: self.clock.now(),
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
}
