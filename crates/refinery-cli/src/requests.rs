//! Requests to a running daemon (`refinery resume`, `refinery rollback`): one small JSON file
//! each in `<state dir>/requests/`, written whole and renamed into place; the daemon takes them
//! on its next poll (every `--poll-interval`) and deletes them.

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
}

fn dir_of(state_dir: &Path) -> PathBuf {
    state_dir.join("requests")
}

/// Queues `request` for the daemon using `state_dir`; returns the file written.
pub fn submit(state_dir: &Path, request: &Request) -> std::io::Result<PathBuf> {
    let dir = dir_of(state_dir);
    std::fs::create_dir_all(&dir)?;
    let nanos = jiff::Timestamp::now().as_nanosecond();
    let name = format!("{nanos:020}-{}.json", std::process::id());
    let tmp = dir.join(format!(".{name}.tmp"));
    let bytes = serde_json::to_vec(request).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, bytes)?;
    let path = dir.join(name);
    std::fs::rename(&tmp, &path)?;
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
        let got: Vec<_> = take(dir.path()).into_iter().flatten().collect();
        assert_eq!(got, vec![a, b]);
        assert!(take(dir.path()).is_empty());
    }
}
