//! The inventory audit log: one JSON line per node and audit (`refinery audit` and the daemon's
//! scheduled audit), appended and fsynced.

use std::io::Write;
use std::path::{Path, PathBuf};

use refinery_core::Manifest;
use refinery_core::inventory::DEFAULT_AUDIT_LOG;

/// A failure to append to the audit log.
#[derive(Debug, thiserror::Error)]
#[error("failed to {action} audit log `{}`", path.display())]
pub struct AuditLogError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Where the audit log is: `inventory.audit_log` (default `ledger/inventory_audit.jsonl`) in the
/// work tree `repo`.
#[must_use]
pub fn path(repo: &Path, manifest: &Manifest) -> PathBuf {
    let rel = manifest
        .inventory
        .audit_log
        .as_deref()
        .unwrap_or(DEFAULT_AUDIT_LOG);
    repo.join(rel)
}

/// Appends `lines` (each one JSON object) to the audit log, creating it, and fsyncs.
pub fn append(path: &Path, lines: &[String]) -> Result<(), AuditLogError> {
    if lines.is_empty() {
        return Ok(());
    }
    let io = |action: &'static str| {
        move |source| AuditLogError {
            action,
            path: path.to_owned(),
            source,
        }
    };
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io("create the directory of"))?;
    }
    let mut text = lines.join("\n");
    text.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io("open"))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_data())
        .map_err(io("append to"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_log_append_creates_the_directory_and_adds_lines() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("ledger").join("audit.jsonl");
        append(&log, &[]).expect("nothing to append");
        assert!(!log.exists());
        append(&log, &["{\"a\":1}".into()]).expect("append");
        append(&log, &["{\"b\":2}".into(), "{\"c\":3}".into()]).expect("append");
        assert_eq!(
            std::fs::read_to_string(&log).expect("read"),
            "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n"
        );
    }

    #[test]
    fn audit_log_in_a_file_says_which_step_failed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("file");
        std::fs::write(&file, "").expect("write");
        let e = append(&file.join("audit.jsonl"), &["{}".into()]).expect_err("not a dir");
        assert!(
            e.to_string()
                .starts_with("failed to create the directory of audit log `"),
            "{e}"
        );
    }
}
