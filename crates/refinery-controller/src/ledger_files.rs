//! The ledger file this process writes, and opening it for writing.

use std::path::Path;

use jiff::Timestamp;
use refinery_store::{LedgerError, LedgerFile, LedgerOptions, masker_for};

/// Opens the ledger for writing (its writer lock first).
pub(crate) fn open_ledger(
    path: &Path,
    manifest: &refinery_core::Manifest,
    now: Timestamp,
) -> Result<LedgerFile, LedgerError> {
    let (ledger, repaired) = LedgerFile::open_with(
        path,
        now,
        masker_for(manifest),
        LedgerOptions::default().max_size(manifest.ledger.max_size),
    )?;
    if let Some(r) = repaired {
        tracing::warn!(line = r.line, bytes = r.torn_bytes, ledger = %path.display(), "torn last ledger line cut off and recorded");
    }
    Ok(ledger)
}

/// The ledger file (relative to the repository) this process writes: a shard has its own.
pub(crate) fn ledger_rel(path: &str, shard: Option<refinery_core::Shard>) -> String {
    shard.map_or_else(|| path.to_owned(), |s| s.ledger_path(path))
}
