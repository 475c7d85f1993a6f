//! The queue of requests to a running daemon (`refinery resume`, `refinery rollback`,
//! `refinery apply` while the daemon holds the ledger): one small JSON file each in
//! `<state dir>/requests/`, written whole (fsynced) and renamed into place; the daemon takes them on its next poll (every
//! `--poll-interval`) and deletes them. A request that wants an answer (`apply`) names a file
//! in `<state dir>/answers/` the daemon writes the same way: [`Answer::Taken`] at once, then
//! [`Answer::Done`] or [`Answer::Refused`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What a request asks the daemon to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// Lift flap protection from a resource.
    Resume { resource: String },
    /// Put a note in the ledger (as an `alert` entry), e.g. a chaos run's summary.
    Note { level: String, message: String },
    /// Enforce `to` (default: the last healthy revision) until a newer commit arrives.
    Rollback {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// `refinery apply`: a full pass now (grace periods not waited for) of `revision`, which
    /// must be the one the daemon enforces; answered in `answers/<id>.json`.
    Apply { id: String, revision: String },
}

/// The outcome of one step, as `refinery apply` prints it (the shape of
/// `refinery_engine::StepResult` in `--json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepOutcome {
    pub id: String,
    pub step: String,
    pub outcome: refinery_core::Outcome,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub container_id: Option<String>,
}

/// A step's name as `--json` writes it (`recreate`, `protected`).
#[must_use]
pub fn step_name(kind: refinery_core::StepKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| kind.to_string())
}

impl StepOutcome {
    /// The outcome of step `step` on `id` (the fields of `refinery_engine::StepResult`).
    #[must_use]
    pub fn new(
        id: &refinery_core::ResourceId,
        step: refinery_core::StepKind,
        outcome: refinery_core::Outcome,
        message: Option<String>,
        container_id: Option<String>,
    ) -> Self {
        StepOutcome {
            id: id.to_string(),
            step: step_name(step),
            outcome,
            message,
            container_id,
        }
    }
}

/// The daemon's answer to [`Request::Apply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    /// Taken: the pass runs next.
    Taken { pid: u32 },
    /// The pass ran: what it did, what was in sync, the nodes not reached.
    Done {
        revision: String,
        results: Vec<StepOutcome>,
        unchanged: Vec<String>,
        unreachable: Vec<String>,
    },
    /// Not done, and why (another revision in force, not leading).
    Refused {
        reason: String,
        /// The revision the daemon enforces.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        revision: Option<String>,
    },
}

fn answers_of(state_dir: &Path) -> PathBuf {
    state_dir.join("answers")
}

/// The file the answer to request `id` goes to.
#[must_use]
pub fn answer_path(state_dir: &Path, id: &str) -> PathBuf {
    answers_of(state_dir).join(format!("{id}.json"))
}

/// A fresh request id: unique on this host.
#[must_use]
pub fn new_id() -> String {
    let nanos = jiff::Timestamp::now().as_nanosecond();
    format!("{nanos:020}-{}", std::process::id())
}

/// Writes the answer to request `id` (whole, fsynced, renamed into place).
pub fn answer(state_dir: &Path, id: &str, answer: &Answer) -> std::io::Result<()> {
    crate::state_file::save_json_io(&answer_path(state_dir, id), answer)
}

/// The answer to request `id` so far, if any (a file being replaced reads as none).
#[must_use]
pub fn read_answer(state_dir: &Path, id: &str) -> Option<Answer> {
    let bytes = std::fs::read(answer_path(state_dir, id)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn dir_of(state_dir: &Path) -> PathBuf {
    state_dir.join("requests")
}

/// Queues `request` for the daemon using `state_dir` (whole, fsynced, renamed into place; the
/// temporary `<id>.json.tmp` is never taken); returns the file written.
pub fn submit(state_dir: &Path, request: &Request) -> std::io::Result<PathBuf> {
    let path = dir_of(state_dir).join(format!("{}.json", new_id()));
    crate::state_file::save_json_io(&path, request)?;
    Ok(path)
}

/// Takes every queued request, oldest first; a file that does not parse is removed and
/// reported as `Err` with its name.
pub fn take(state_dir: &Path) -> Vec<Result<Request, String>> {
    let Ok(entries) = std::fs::read_dir(dir_of(state_dir)) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let parsed = std::fs::read(&p)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
                .map_err(|e| format!("`{}`: {e}", p.display()));
            let _ = std::fs::remove_file(&p);
            parsed
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_taken_once_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = Request::Resume {
            resource: "docker/n/container/web".into(),
        };
        let b = Request::Rollback { to: None };
        submit(dir.path(), &a).expect("submit");
        submit(dir.path(), &b).expect("submit");
        // A request still being written is not taken.
        std::fs::write(dir.path().join("requests").join("0.json.tmp"), "{").expect("write");
        let got: Vec<_> = take(dir.path()).into_iter().flatten().collect();
        assert_eq!(got, vec![a, b]);
        assert!(take(dir.path()).is_empty());
    }

    #[test]
    fn answer_written_twice_reads_the_last() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(read_answer(dir.path(), "x"), None);
        answer(dir.path(), "x", &Answer::Taken { pid: 7 }).expect("answer");
        let done = Answer::Done {
            revision: "abc".into(),
            results: vec![StepOutcome {
                id: "docker/n/container/web".into(),
                step: "start".into(),
                outcome: refinery_core::Outcome::Restarted,
                message: None,
                container_id: None,
            }],
            unchanged: vec![],
            unreachable: vec![],
        };
        answer(dir.path(), "x", &done).expect("answer");
        assert_eq!(read_answer(dir.path(), "x"), Some(done));
    }
}
