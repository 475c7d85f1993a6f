//! Following the branch: a new commit is loaded and made the revision in force; one that does
//! not load is reported and the last good revision stays enforced.

use std::sync::Arc;

use refinery_core::daemon_state::{Pending, RolledBack};
use refinery_core::ledger::{Event, Record};

use crate::controller::{Controller, alert, short};
use crate::desired;
use crate::error::ControllerError;
use crate::ports::Engine;

impl<R: Engine> Controller<R> {
    /// Looks for a new commit on the branch (fetching it first when the repository has a
    /// remote); returns whether a pass is due.
    pub(crate) async fn poll_git(&mut self) -> bool {
        let resolved = self.git.tip().await;
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
    pub(crate) async fn switch_to(&mut self, rev: &str, rolled_back: Option<RolledBack>) -> bool {
        if *rev == self.rev() {
            return false;
        }
        let loaded = desired::load(&self.options.repo, rev);
        let desired = match loaded {
            Ok(d) => d,
            Err(e) => {
                if self.bad_tip.as_deref() != Some(rev) {
                    let hints = e.hints().join("; ");
                    let issues = match &e {
                        ControllerError::Manifest(m) => m
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
        let now = self.clock.now();
        let warnings = desired.warnings.len();
        // Pulls send the new revision's registry logins.
        crate::registries::use_manifest(&desired.manifest);
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
}
