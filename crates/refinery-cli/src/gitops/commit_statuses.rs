//! The deploy result written back on the commit: `pending` when the daemon starts enforcing a
//! revision, `success` when it is judged healthy, `failure` when it is rolled back, given up on, or
//! an action for it failed. Sending is the reporter's task: nothing here waits on the forge.

use refinery_core::short_id as short;
use std::time::Duration;

use refinery_core::Shard;
use refinery_core::manifest::CommitStatusConfig;
use refinery_forge::{
    CommitState, CommitStatus, ReporterOptions, StatusError, StatusReporter, StatusTarget,
};

/// What happened to a revision, as the controller tells it.
pub use refinery_controller::ports::RevisionEvent;

/// The commit an event is about, and the status it puts there.
fn status_of<'e>(event: &'e RevisionEvent, nodes: &str) -> (&'e str, CommitState, String) {
    {
        match event {
            RevisionEvent::Enforcing { revision } => (
                revision,
                CommitState::Pending,
                format!("deploying to {nodes}"),
            ),
            RevisionEvent::Healthy { revision } => (
                revision,
                CommitState::Success,
                format!("deployed and healthy on {nodes}"),
            ),
            RevisionEvent::RolledBack { from, to, why } => (
                from,
                CommitState::Failure,
                format!("rolled back to {}: {why}", short(to)),
            ),
            RevisionEvent::GaveUp { revision, why } => (
                revision,
                CommitState::Failure,
                format!("not healthy: {why}"),
            ),
            RevisionEvent::ActionFailed {
                revision,
                resource,
                why,
            } => (
                revision,
                CommitState::Failure,
                format!("{resource} failed: {why}"),
            ),
        }
    }
}

/// The context of this daemon's statuses: `refinery/<shard>` for a shard (its successive
/// leaders replace each other's statuses), else `refinery/<host>`.
#[must_use]
pub fn context_for(host: &str, shard: Option<Shard>) -> String {
    match shard {
        Some(s) => format!("refinery/{}", s.suffix()),
        None => format!("refinery/{host}"),
    }
}

/// This machine's name, for the context.
#[must_use]
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Reads an environment variable (the forge token's).
pub type EnvLookup = Box<dyn Fn(&str) -> Option<String> + Send>;

/// Commit statuses of one daemon, following the `commit_status:` of the revision in force.
pub struct CommitStatuses {
    context: String,
    public_url: Option<String>,
    /// What the status says it deployed to (`lyra and 2 other nodes`).
    nodes: String,
    options: ReporterOptions,
    env: EnvLookup,
    /// The configuration in use and its reporter; `None` without `commit_status:` (or without a
    /// token).
    current: Option<(CommitStatusConfig, Option<StatusReporter>)>,
    /// The state last sent per commit: an action failing on every pass is one `failure`.
    sent: Vec<(String, CommitState)>,
}

/// How many commits' last states are remembered.
const REMEMBER: usize = 32;

impl CommitStatuses {
    #[must_use]
    pub fn new(
        context: String,
        public_url: Option<String>,
        options: ReporterOptions,
        env: EnvLookup,
    ) -> CommitStatuses {
        CommitStatuses {
            context,
            public_url,
            nodes: "its nodes".to_owned(),
            options,
            env,
            current: None,
            sent: Vec::new(),
        }
    }

    /// The nodes deployed to, as the descriptions name them.
    pub fn set_nodes(&mut self, nodes: &[String]) {
        self.nodes = match nodes {
            [] => "no node".to_owned(),
            [one] => format!("`{one}`"),
            [first, rest @ ..] => format!(
                "`{first}` and {} other node{}",
                rest.len(),
                if rest.len() == 1 { "" } else { "s" }
            ),
        };
    }

    /// Takes the `commit_status:` of the revision in force: starts, restarts or stops the
    /// reporter when it changed. A missing token is logged once per configuration; nothing is
    /// sent then.
    pub fn configure(&mut self, config: Option<&CommitStatusConfig>) {
        if self.current.as_ref().map(|(c, _)| c) == config {
            return;
        }
        // The old reporter finishes what it queued on its own task.
        if let Some((_, Some(old))) = self.current.take() {
            tokio::spawn(old.close(Duration::from_secs(30)));
        }
        let Some(config) = config else {
            return;
        };
        let reporter = match StatusTarget::from_env(config, &*self.env) {
            Ok(target) => {
                tracing::info!(forge = %target.label(), context = %self.context, "commit statuses go to the forge");
                Some(StatusReporter::start(target, self.options.clone()))
            }
            Err(e @ StatusError::MissingToken { .. }) => {
                tracing::warn!(error = %e, hint = %e.hints().join("; "), "no commit statuses will be sent");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "no commit statuses will be sent");
                None
            }
        };
        self.current = Some((config.clone(), reporter));
    }

    /// Sends the status `event` puts on its commit (queued; never waits).
    pub fn on_revision(&mut self, event: &RevisionEvent) {
        if !matches!(&self.current, Some((_, Some(_)))) {
            return;
        }
        let (sha, state, description) = status_of(event, &self.nodes);
        // A new deploy of a commit (`Enforcing`) always goes out; an outcome only once.
        let last = self.sent.iter().find(|(s, _)| s == sha).map(|(_, st)| *st);
        if last == Some(state) && state != CommitState::Pending {
            return;
        }
        self.sent.retain(|(s, _)| s != sha);
        self.sent.push((sha.to_owned(), state));
        if self.sent.len() > REMEMBER {
            self.sent.remove(0);
        }
        let status = CommitStatus::new(sha, state, &description, &self.context);
        let Some((_, Some(reporter))) = &self.current else {
            return;
        };
        match status {
            Ok(status) => {
                let status = match &self.public_url {
                    Some(url) => status.with_target_url(url.clone()),
                    None => status,
                };
                reporter.report(status);
            }
            Err(e) => tracing::warn!(error = %e, "no commit status for this revision"),
        }
    }

    /// Gives queued statuses up to `within` to go out.
    pub async fn shutdown(&mut self, within: Duration) {
        if let Some((_, Some(reporter))) = self.current.take() {
            reporter.close(within).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5";
    const B: &str = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";

    #[test]
    fn revision_event_statuses_say_what_happened() {
        let n = "`lyra`";
        let cases = [
            (
                RevisionEvent::Enforcing { revision: A.into() },
                (A, CommitState::Pending, "deploying to `lyra`"),
            ),
            (
                RevisionEvent::Healthy { revision: A.into() },
                (A, CommitState::Success, "deployed and healthy on `lyra`"),
            ),
            (
                RevisionEvent::RolledBack {
                    from: A.into(),
                    to: B.into(),
                    why: "not healthy within 60s: `web` exited".into(),
                },
                (
                    A,
                    CommitState::Failure,
                    "rolled back to da1560886d4f: not healthy within 60s: `web` exited",
                ),
            ),
            (
                RevisionEvent::ActionFailed {
                    revision: A.into(),
                    resource: "docker/lyra/container/web".into(),
                    why: "failed to pull image `nope:1`".into(),
                },
                (
                    A,
                    CommitState::Failure,
                    "docker/lyra/container/web failed: failed to pull image `nope:1`",
                ),
            ),
        ];
        for (event, (sha, state, text)) in cases {
            let (s, st, d) = status_of(&event, n);
            assert_eq!((s, st, d.as_str()), (sha, state, text));
        }
    }

    #[test]
    fn context_is_the_shard_or_the_host() {
        assert_eq!(context_for("lyra", None), "refinery/lyra");
        assert_eq!(
            context_for("lyra", Shard::new(2, 3)),
            "refinery/shard-2-of-3"
        );
    }

    #[test]
    fn set_nodes_names_them_briefly() {
        let mut s = CommitStatuses::new(
            "c".into(),
            None,
            ReporterOptions::default(),
            Box::new(|_| None),
        );
        s.set_nodes(&["lyra".into()]);
        assert_eq!(s.nodes, "`lyra`");
        s.set_nodes(&["a".into(), "b".into(), "c".into()]);
        assert_eq!(s.nodes, "`a` and 2 other nodes");
    }
}
