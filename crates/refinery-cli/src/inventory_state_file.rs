//! The inventory's state file (`inventory-state.json` in the state directory, beside the
//! daemon's `state.json`): when Refinery last saw each image and volume in use, and when the
//! daemon last ran the scheduled audit. A file of its own, so `refinery audit` and `cleanup` can
//! update it while the daemon owns `state.json`. Written whole to a temporary file, fsynced and
//! renamed, like `state.json`.

use std::io::Write;
use std::path::{Path, PathBuf};

use refinery_core::inventory::{INVENTORY_STATE_VERSION, InventoryState};

use crate::state_file::StateError;

/// The inventory state file in `dir`.
#[must_use]
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join("inventory-state.json")
}

/// Reads the state; a missing file is a fresh state.
pub fn load(path: &Path) -> Result<InventoryState, StateError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(InventoryState::default());
        }
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
        Some(v) if v == u64::from(INVENTORY_STATE_VERSION) => {}
        Some(v) => {
            return Err(invalid(format!(
                "schema version {v} is not supported (this refinery writes {INVENTORY_STATE_VERSION})"
            )));
        }
        None => return Err(invalid("it has no schema version `v`".into())),
    }
    serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
}

/// Writes the state atomically (temporary file, fsync, rename, fsync of the directory).
pub fn save(path: &Path, state: &InventoryState) -> Result<(), StateError> {
    let io = |action: &'static str| {
        let path = path.to_owned();
        move |source| StateError::Io {
            action,
            path,
            source,
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io("create the directory of"))?;
    let tmp = path.with_extension("json.tmp");
    let mut bytes = serde_json::to_vec_pretty(state).map_err(|e| StateError::Invalid {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
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
    fn inventory_state_missing_is_fresh_and_saved_state_reads_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = path_in(dir.path());
        assert_eq!(load(&p).ok(), Some(InventoryState::default()));
        let mut s = InventoryState::default();
        s.last_in_use.insert(
            "docker/local/image/sha256:1".into(),
            "2026-01-16T05:53:32Z".parse().expect("timestamp"),
        );
        save(&p, &s).expect("save");
        assert_eq!(load(&p).ok(), Some(s));
    }

    #[test]
    fn inventory_state_of_another_version_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = path_in(dir.path());
        std::fs::write(&p, r#"{"v": 7}"#).expect("write");
        let e = load(&p).expect_err("refused");
        assert!(e.to_string().contains("failed to read state file"), "{e}");
    }
}
