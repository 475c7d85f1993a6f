//! The ledger and the state file: appending records (under the leader's term with `--ha`),
//! saving the daemon state when it changed, committing the ledger to git in the background.

use std::time::Duration;

use refinery_core::ledger::Record;
use refinery_store::state_file;

use crate::controller::Controller;
use crate::ledger_files::ledger_rel;
use crate::ports::Engine;

/// At most this often the ledger is committed to git.
pub(crate) const COMMIT_EVERY: Duration = Duration::from_secs(5);

impl<R: Engine> Controller<R> {
    /// Appends to the ledger (written and fsynced before anything is reported done). A failure
    /// is logged; the daemon keeps healing.
    pub(crate) fn append(&mut self, records: Vec<Record>) {
        self.write_records(records, true);
    }

    /// Appends without waiting for the disk (see [`LedgerFile::append_unsynced`]).
    pub(crate) fn append_unsynced(&mut self, records: Vec<Record>) {
        self.write_records(records, false);
    }

    pub(crate) fn write_records(&mut self, records: Vec<Record>, sync: bool) {
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
        let now = self.clock.now();
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
                self.reporter.on_entries(&entries);
            }
            Err(e) => tracing::error!(error = %e, "failed to append to the ledger"),
        }
    }

    /// Writes the state file when it changed since the last write.
    pub(crate) fn save_state(&mut self) {
        // A standby's state stays in memory: the state directory may be the leader's too.
        if self.saved.as_ref() == Some(&self.state) || (self.ha.is_some() && !self.may_act()) {
            return;
        }
        self.saved = Some(self.state.clone());
        if let Err(e) = state_file::save(&state_file::path_in(&self.state_dir), &self.state) {
            tracing::error!(error = %e, "failed to save the daemon state");
        }
    }

    /// Commits the ledger in the background (at most every few seconds; `now` forces it).
    pub(crate) fn maybe_commit_ledger(&mut self, now: bool) {
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
        let bare = refinery_git::GitSource::open(&self.options.repo)
            .map_or(true, |g| g.workdir().is_none());
        if bare {
            return;
        }
        let repo = self.options.repo.clone();
        let git_ref = match self.options.shard {
            Some(shard) => shard.ledger_ref(&m.ledger.git_ref),
            None => m.ledger.git_ref.clone(),
        };
        let rel = ledger_rel(&m.ledger.path, self.options.shard);
        let path = self.ledger_path.clone();
        let rev = self.rev();
        self.last_commit = Some(self.clock.instant());
        let committed_at = self.clock.now().as_second();
        self.committed_seq = self.appended_seq;
        self.commit_task = Some(tokio::task::spawn_blocking(move || {
            let result =
                refinery_store::commit_ledger(&repo, &git_ref, &rel, &path, &rev, committed_at);
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
}
