//! The inventory's state file (`inventory-state.json` in the state directory, beside the
//! daemon's `state.json`): when Refinery last saw each image and volume in use, and when the
//! daemon last ran the scheduled audit. A file of its own, so `refinery audit` and `cleanup` can
//! update it while the daemon owns `state.json`. Written whole to a temporary file, fsynced and
//! renamed, like `state.json`.

use std::path::{Path, PathBuf};

use refinery_core::inventory::{INVENTORY_STATE_VERSION, InventoryState};

use crate::state_file::{self, StateError};

/// The inventory state file in `dir`.
#[must_use]
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join("inventory-state.json")
}

/// Reads the state; a missing file is a fresh state.
pub fn load(path: &Path) -> Result<InventoryState, StateError> {
    state_file::load_versioned(path, INVENTORY_STATE_VERSION)
}

/// Writes the state atomically, like `state.json`.
pub fn save(path: &Path, state: &InventoryState) -> Result<(), StateError> {
    state_file::save_json(path, state)
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
