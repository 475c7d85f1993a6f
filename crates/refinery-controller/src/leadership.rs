//! `refinery run --ha`: what leading and standing by mean for the daemon.
//!
//! A standby observes every node on the same triggers as the leader and keeps its caches warm
//! (first-seen times, drifts, the status page), but writes nothing: no engine action, no ledger
//! entry, no state-changing request, no alert. On being elected it opens the ledger (taking the
//! writer lock the old leader let go), records `leader_elected` with its term, and runs a pass at
//! once. Every entry it writes carries its term. It stops acting the moment
//! [`Leadership::acting_term`] says its lease is not fresh, and closes the ledger.

use refinery_core::ledger::{Event, Record};

use crate::controller::Controller;
use crate::ledger_files::open_ledger;
use crate::ports::Engine;

impl<R: Engine> Controller<R> {
    /// Whether this daemon may write now: always without `--ha`; with it, only as a leader whose
    /// lease is fresh and whose ledger is open.
    pub(crate) fn may_act(&self) -> bool {
        match &self.ha {
            None => self.ledger.is_some(),
            Some(h) => self.ledger.is_some() && self.term.is_some() && h.acting_term() == self.term,
        }
    }

    /// Takes over or steps down as the election says; returns whether a pass is due at once.
    pub(crate) fn on_leadership(&mut self) -> bool {
        let Some(h) = &self.ha else {
            return false;
        };
        let acting = h.acting_term();
        let status = h.status();
        let id = h.id();
        self.reporter.on_ha(status, acting.is_some());
        match acting {
            Some(term) if self.term != Some(term) || self.ledger.is_none() => {
                let now = self.clock.now();
                let ledger = match open_ledger(&self.ledger_path, self.manifest(), now) {
                    Ok(l) => l,
                    Err(e) => {
                        // Another writer still holds the lock (the old leader closing it):
                        // tried again on the next poll, acting on nothing meanwhile.
                        tracing::warn!(error = %e, "elected, but the ledger cannot be opened yet; not acting");
                        return false;
                    }
                };
                let rev = self.rev();
                let from = ledger.last_revision().map(str::to_owned);
                self.ledger = Some(ledger);
                self.term = Some(term);
                // Leftovers of the old leader's interrupted recreates are looked at again, and
                // alerts are said again under this term.
                self.recovered.clear();
                self.alerted.clear();
                let mut records = vec![
                    Record::new(Event::LeaderElected { holder: id.clone() }),
                    Record::new(Event::DaemonStart {
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                    }),
                ];
                if from.as_deref() != Some(rev.as_str()) {
                    records.push(
                        Record::new(Event::Revision {
                            from,
                            to: rev.clone(),
                        })
                        .revision(&rev),
                    );
                }
                self.append(records);
                // Logged once the election is on record.
                tracing::warn!(term, id = %id, "leading: acting from now on");
                // The forge hears of a deploy under way from the new leader.
                self.gitops_started();
                true
            }
            None if self.ledger.is_some() => {
                tracing::error!(term = ?self.term, "no longer leading (lease lost or not renewed in time): stopped acting");
                self.ledger = None;
                self.term = None;
                false
            }
            _ => false,
        }
    }
}
