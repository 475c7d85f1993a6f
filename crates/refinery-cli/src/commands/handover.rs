//! `refinery apply` while `refinery run` holds the ledger: the work goes to the daemon (one
//! writer), which answers what it did (see `daemon/handover.rs`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use refinery_store::request_queue::{self as requests, Answer, Request, StepOutcome};
use refinery_store::running_daemons::{self, RunningDaemon};
use refinery_store::{LedgerError, LedgerFile};

use crate::commands::ledger;
use crate::error::CliError;
use crate::settings::Settings;
use refinery_controller::desired::Desired;

/// How often the answer file is looked at.
const LOOK_EVERY: Duration = Duration::from_millis(200);
/// How often "still waiting" is said.
const SAY_EVERY: Duration = Duration::from_secs(10);

/// Who writes the ledger for this command.
pub enum Writer {
    /// This process: it holds the writer lock.
    Own(LedgerFile),
    /// The daemon holding the lock, which takes requests in `state_dir`.
    Daemon {
        daemon: RunningDaemon,
        state_dir: PathBuf,
    },
}

/// What the daemon's pass did.
pub struct Done {
    pub results: Vec<StepOutcome>,
    pub unchanged: Vec<String>,
    pub unreachable: Vec<String>,
}

/// Opens the ledger for `apply`; when a `refinery run` using `state_dir` holds it, that daemon
/// is the writer, provided it enforces the revision `desired` is (or is about to). A standby
/// (`--ha`) running here refuses: the leader acts.
pub fn open_or_daemon(
    settings: &Settings,
    desired: &Desired,
    state_dir: Option<&Path>,
) -> Result<Writer, CliError> {
    let dir = crate::commands::resume::state_dir(settings, state_dir)?;
    let daemons = running_daemons::list(&dir);
    let acting = |d: &&RunningDaemon| d.ha.as_ref().is_none_or(|h| h.acting);
    let standby = |d: &RunningDaemon| CliError::DaemonStandby {
        pid: d.pid,
        leader: d.ha.as_ref().and_then(|h| h.leader.clone()),
    };
    match ledger::open_for_apply(settings, desired) {
        Ok(file) => match daemons.iter().find(|d| !acting(d)) {
            Some(d) => Err(standby(d)),
            None => Ok(Writer::Own(file)),
        },
        Err(CliError::Ledger(locked @ LedgerError::Locked { .. })) => {
            let Some(daemon) = daemons.iter().find(acting) else {
                return Err(daemons.first().map_or(CliError::Ledger(locked), standby));
            };
            let wanted = &desired.commit.id;
            // A daemon that has not seen a new commit on its branch yet switches on its next poll.
            let soon = || {
                refinery_git::GitSource::open(&settings.repo)
                    .and_then(|g| g.resolve(&daemon.follow))
                    .is_ok_and(|c| c.id == *wanted)
            };
            if daemon.revision != *wanted && !soon() {
                return Err(CliError::DaemonRevision {
                    pid: daemon.pid,
                    enforcing: refinery_core::short_id(&daemon.revision).to_owned(),
                    follow: daemon.follow.clone(),
                    wanted: refinery_core::short_id(wanted).to_owned(),
                });
            }
            Ok(Writer::Daemon {
                daemon: daemon.clone(),
                state_dir: dir,
            })
        }
        Err(e) => Err(e),
    }
}

/// Opens the ledger for a command the daemon cannot do for it (`cleanup --apply`): a running
/// `refinery run` holding it is named, with what to do.
pub fn open_beside_daemon(
    settings: &Settings,
    desired: &Desired,
    state_dir: Option<&Path>,
) -> Result<LedgerFile, CliError> {
    match ledger::open_for_apply(settings, desired) {
        Err(CliError::Ledger(locked @ LedgerError::Locked { .. })) => {
            let dir = crate::commands::resume::state_dir(settings, state_dir)?;
            Err(running_daemons::list(&dir)
                .first()
                .map_or(CliError::Ledger(locked), |d| CliError::DaemonHoldsLedger {
                    pid: d.pid,
                }))
        }
        other => other,
    }
}

/// Asks the daemon for a full pass of `revision` and waits (at most `timeout`) for its answer,
/// saying on stderr what it waits for.
pub async fn hand_over(
    settings: &Settings,
    daemon: &RunningDaemon,
    state_dir: &Path,
    revision: &str,
    timeout: Duration,
) -> Result<Done, CliError> {
    let id = requests::new_id();
    let request = Request::Apply {
        id: id.clone(),
        revision: revision.to_owned(),
    };
    let queued = requests::submit(state_dir, &request).map_err(|source| CliError::Io {
        action: format!("queue the request in `{}`", state_dir.display()),
        source,
    })?;
    let say = |line: String| {
        if !settings.quiet {
            eprintln!("{line}");
        }
    };
    say(format!(
        "the running daemon (pid {}) holds the ledger: handing the apply over to it",
        daemon.pid
    ));
    let started = Instant::now();
    let mut said = Instant::now();
    let mut taken = false;
    let no_answer = |what: String| CliError::DaemonNoAnswer {
        pid: daemon.pid,
        what,
    };
    loop {
        match requests::read_answer(state_dir, &id) {
            Some(Answer::Taken { .. }) if !taken => {
                taken = true;
                say("the daemon took it: its pass runs now".to_owned());
            }
            Some(Answer::Done {
                results,
                unchanged,
                unreachable,
                ..
            }) => {
                let _ = std::fs::remove_file(requests::answer_path(state_dir, &id));
                return Ok(Done {
                    results,
                    unchanged,
                    unreachable,
                });
            }
            Some(Answer::Refused { reason, .. }) => {
                let _ = std::fs::remove_file(requests::answer_path(state_dir, &id));
                return Err(CliError::DaemonRefused {
                    pid: daemon.pid,
                    reason,
                });
            }
            _ => {}
        }
        if started.elapsed() >= timeout {
            // Not taken yet: it is not carried out later either.
            let left = std::fs::remove_file(&queued).is_err();
            let what = if taken || left {
                format!("its pass did not end within {}s", timeout.as_secs())
            } else {
                format!(
                    "it did not take the request within {}s (withdrawn)",
                    timeout.as_secs()
                )
            };
            return Err(no_answer(what));
        }
        if !running_daemons::list(state_dir)
            .iter()
            .any(|d| d.pid == daemon.pid)
            && matches!(
                requests::read_answer(state_dir, &id),
                None | Some(Answer::Taken { .. })
            )
        {
            return Err(no_answer("it stopped before answering".to_owned()));
        }
        if said.elapsed() >= SAY_EVERY {
            said = Instant::now();
            say(format!(
                "still waiting for the daemon (pid {}) to {} ({}s)",
                daemon.pid,
                if taken {
                    "finish its pass"
                } else {
                    "take the request"
                },
                started.elapsed().as_secs()
            ));
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
}
