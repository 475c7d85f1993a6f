//! The registry of running daemons: what each `refinery run` says about itself, so other
//! commands can hand it work. One file per process, `<state dir>/daemons/<pid>.json`, rewritten
//! (atomically, fsynced) when something in it changes and removed on a clean stop. A file whose
//! process is gone is stale and ignored (and removed).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One running `refinery run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningDaemon {
    pub pid: u32,
    /// The revision it enforces.
    pub revision: String,
    /// The branch or revision it follows.
    pub follow: String,
    /// `--ha`: its place in the election.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha: Option<HaStanding>,
}

/// A daemon's place in the election (`--ha`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaStanding {
    /// This instance's id.
    pub id: String,
    /// Whether it acts (leads, with a fresh lease and the ledger open).
    pub acting: bool,
    /// The leader's id, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
}

fn dir_of(state_dir: &Path) -> PathBuf {
    state_dir.join("daemons")
}

fn path_of(state_dir: &Path, pid: u32) -> PathBuf {
    dir_of(state_dir).join(format!("{pid}.json"))
}

/// Writes this process's entry (whole, fsynced, renamed into place).
pub fn publish(state_dir: &Path, daemon: &RunningDaemon) -> std::io::Result<()> {
    crate::state_file::save_json_io(&path_of(state_dir, daemon.pid), daemon)
}

/// Removes this process's entry (on a clean stop).
pub fn withdraw(state_dir: &Path, pid: u32) {
    let _ = std::fs::remove_file(path_of(state_dir, pid));
}

/// Whether process `pid` runs and is a `refinery` (a reused pid is not; always `true` where
/// `/proc` is missing).
fn alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    if !proc.is_dir() {
        return true;
    }
    std::fs::read(proc.join(pid.to_string()).join("cmdline"))
        .is_ok_and(|c| c.windows(8).any(|w| w == b"refinery"))
}

/// The daemons running with `state_dir`, by pid; stale files are removed.
#[must_use]
pub fn list(state_dir: &Path) -> Vec<RunningDaemon> {
    let Ok(entries) = std::fs::read_dir(dir_of(state_dir)) else {
        return Vec::new();
    };
    let mut found: Vec<RunningDaemon> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter_map(|p| {
            let daemon: RunningDaemon = serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
            if alive(daemon.pid) {
                Some(daemon)
            } else {
                let _ = std::fs::remove_file(&p);
                None
            }
        })
        .collect();
    found.sort_by_key(|p| p.pid);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_daemon_of_a_gone_process_is_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let me = RunningDaemon {
            pid: std::process::id(),
            revision: "abc".into(),
            follow: "HEAD".into(),
            ha: None,
        };
        publish(dir.path(), &me).expect("publish");
        // Beyond any pid_max.
        let gone = RunningDaemon {
            pid: u32::MAX - 1,
            ..me.clone()
        };
        publish(dir.path(), &gone).expect("publish");
        assert_eq!(list(dir.path()), vec![me.clone()]);
        withdraw(dir.path(), me.pid);
        assert!(list(dir.path()).is_empty());
    }
}
