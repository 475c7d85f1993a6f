//! The daemon's state file (`state.json` in the state directory): written whole to a temporary
//! file, fsynced and renamed over the old one, so a crash leaves the old or the new state, never
//! half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use refinery_core::daemon_state::{DaemonState, STATE_VERSION};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Errors reading or writing the state file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("failed to {action} state file `{}`", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read state file `{}`: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

impl StateError {
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            StateError::Io { .. } => {
                vec!["check the state directory's permissions and the disk's free space".into()]
            }
            StateError::Invalid { path, .. } => vec![format!(
                "move `{}` away to start with a fresh state (grace periods and flap counters restart)",
                path.display()
            )],
        }
    }
}

/// The state file in `dir`.
#[must_use]
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

/// Reads the state; a missing file is a fresh state.
pub fn load(path: &Path) -> Result<DaemonState, StateError> {
    load_versioned(path, STATE_VERSION)
}

/// Writes the state atomically (temporary file, fsync, rename, fsync of the directory).
pub fn save(path: &Path, state: &DaemonState) -> Result<(), StateError> {
    save_json(path, state)
}

/// Reads a JSON state file whose schema version `v` must be `version`; a missing file is
/// `T::default()`.
pub fn load_versioned<T: DeserializeOwned + Default>(
    path: &Path,
    version: u32,
) -> Result<T, StateError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
        Err(source) => {
            return Err(StateError::Io {
                action: "read",
                path: path.to_owned(),
                source,
            });
        }
    };
    let invalid = |message: String| StateError::Invalid {
        path: path.to_owned(),
        message,
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    match value.get("v").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(version) => {}
        Some(v) => {
            return Err(invalid(format!(
                "schema version {v} is not supported (this refinery writes {version})"
            )));
        }
        None => return Err(invalid("it has no schema version `v`".into())),
    }
    serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
}

/// Writes `value` as pretty JSON atomically: a temporary file, fsync, rename over `path`, fsync
/// of the directory. A crash leaves the old or the new file, never half of one.
pub fn save_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    write_json(path, value).map_err(|failure| match failure {
        WriteFailure::Io(action, source) => StateError::Io {
            action,
            path: path.to_owned(),
            source,
        },
        WriteFailure::Encode(e) => StateError::Invalid {
            path: path.to_owned(),
            message: e.to_string(),
        },
    })
}

/// [`save_json`] for the files that report a plain I/O error (the running daemons' registry,
/// the request queue): the same atomic, fsynced write.
pub(crate) fn save_json_io<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    write_json(path, value).map_err(|failure| match failure {
        WriteFailure::Io(_, source) => source,
        WriteFailure::Encode(e) => std::io::Error::other(e),
    })
}

/// Which step of an atomic write failed.
enum WriteFailure {
    Io(&'static str, std::io::Error),
    Encode(serde_json::Error),
}

/// The one atomic JSON write: pretty JSON and a newline to `<path>.tmp` (`x.json` →
/// `x.json.tmp`), fsync, rename over `path`, fsync of the directory.
fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), WriteFailure> {
    let io = |action: &'static str| move |source| WriteFailure::Io(action, source);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io("create the directory of"))?;
    let tmp = path.with_extension("json.tmp");
    let mut bytes = serde_json::to_vec_pretty(value).map_err(WriteFailure::Encode)?;
    bytes.push(b'\n');
    let mut f = std::fs::File::create(&tmp).map_err(io("create"))?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .map_err(io("write"))?;
    std::fs::rename(&tmp, path).map_err(io("replace"))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_file_missing_is_fresh_and_saved_state_reads_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = path_in(dir.path());
        assert_eq!(load(&p).ok(), Some(DaemonState::default()));
        let s = DaemonState {
            revision: Some("abc".into()),
            ..DaemonState::default()
        };
        save(&p, &s).expect("save");
        assert_eq!(load(&p).ok(), Some(s));
    }

    #[test]
    fn state_file_of_another_version_is_refused_with_a_hint() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = path_in(dir.path());
        std::fs::write(&p, r#"{"v": 99}"#).expect("write");
        let e = load(&p).expect_err("refused");
        assert!(e.to_string().contains("schema version 99"), "{e}");
        assert!(!e.hints().is_empty());
    }
}
