//! The ledger file: opened with a torn last line repaired, appended to with `fsync`, read back.
//!
//! Every append is one `write` of whole lines followed by `fdatasync`; only then are the entries
//! reported written. On open, bytes after the last newline (a write cut off by a crash) are cut
//! off and a `repair` entry records it; a break anywhere before that is an error, never skipped.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use refinery_core::ledger::{self, Broken, ChainTip, Entry, Event, Masker, Record, SealError};

use crate::exit_code;

/// Errors reading or writing the ledger file.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("failed to {action} ledger `{}`", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to verify ledger `{}` at line {line}", path.display())]
    Broken {
        path: PathBuf,
        line: u64,
        /// Entries before the bad line, all intact.
        intact: u64,
        #[source]
        reason: Broken,
    },
    #[error(transparent)]
    Seal(#[from] SealError),
}

impl LedgerError {
    /// One exhaustive match, no catch-all.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            LedgerError::Broken { .. } => exit_code::LEDGER_BROKEN,
            LedgerError::Io { .. } | LedgerError::Seal(_) => exit_code::UNEXPECTED,
        }
    }

    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            LedgerError::Io { source, path, .. } if source.kind() == std::io::ErrorKind::NotFound => vec![
                format!("no ledger at `{}` yet: `refinery apply` writes one", path.display()),
                "pass --path to read another ledger file".to_owned(),
            ],
            LedgerError::Io { .. } => vec!["check the file's permissions and the disk's free space".to_owned()],
            LedgerError::Broken { intact, .. } => vec![
                format!("the first {intact} entries are intact; nothing is appended until the chain is whole again"),
                "restore the file from the ledger ref, e.g. `git show refinery/ledger:ledger/container_ledger.jsonl`"
                    .to_owned(),
            ],
            LedgerError::Seal(_) => Vec::new(),
        }
    }
}

/// What opening repaired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repaired {
    /// The torn line's number.
    pub line: u64,
    pub torn_bytes: u64,
}

/// A ledger file open for appending, its chain verified.
#[derive(Debug)]
pub struct LedgerFile {
    path: PathBuf,
    file: File,
    /// Bytes known to be complete lines.
    len: u64,
    tip: ChainTip,
    masker: Masker,
    last_revision: Option<String>,
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LedgerError {
    let path = path.to_owned();
    move |source| LedgerError::Io {
        action,
        path,
        source,
    }
}

fn broken(path: &Path, error: ledger::ChainError) -> LedgerError {
    LedgerError::Broken {
        path: path.to_owned(),
        line: error.line,
        intact: error.line.saturating_sub(1),
        reason: error.reason,
    }
}

impl LedgerFile {
    /// Opens (creating it and its directory if needed) and verifies the ledger at `path`. A torn
    /// last line is cut off and recorded as a `repair` entry at `now`; any other break is
    /// [`LedgerError::Broken`] and nothing is written.
    pub fn open(
        path: &Path,
        now: jiff::Timestamp,
        masker: Masker,
    ) -> Result<(LedgerFile, Option<Repaired>), LedgerError> {
        let created = !path.exists();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_err("create the directory of", path))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io_err("open", path))?;
        if created {
            sync_parent_dir(path)?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_err("read", path))?;
        let (complete, torn) = ledger::split_torn(&bytes);
        let (entries, error) = ledger::parse_entries(complete);
        if let Some(error) = error {
            return Err(broken(path, error));
        }
        let tip = match entries.last() {
            Some(e) => ChainTip {
                seq: e.seq,
                hash: e.hash.clone(),
            },
            None => ChainTip::genesis(),
        };
        let last_revision = entries.iter().rev().find_map(|e| match &e.event {
            Event::Revision { to, .. } => Some(to.clone()),
            _ => None,
        });
        let complete_len = complete.len() as u64;
        let mut ledger = LedgerFile {
            path: path.to_owned(),
            file,
            len: complete_len,
            tip,
            masker,
            last_revision,
        };
        let mut repaired = None;
        if !torn.is_empty() {
            let line = ledger.tip.seq + 1;
            let torn_bytes = torn.len() as u64;
            let torn_sha256 = ledger::sha256_hex(torn);
            ledger
                .file
                .set_len(complete_len)
                .map_err(io_err("cut the torn last line of", path))?;
            ledger.file.sync_all().map_err(io_err("sync", path))?;
            ledger.append(
                vec![Record::new(Event::Repair {
                    line,
                    torn_bytes,
                    torn_sha256,
                })],
                now,
            )?;
            repaired = Some(Repaired { line, torn_bytes });
        }
        Ok((ledger, repaired))
    }

    /// Seals `records` at `now`, writes them in one write and `fdatasync`s; only then returns
    /// them. On failure nothing is half-written: the file is cut back to its last complete line.
    pub fn append(
        &mut self,
        records: Vec<Record>,
        now: jiff::Timestamp,
    ) -> Result<Vec<Entry>, LedgerError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let mut tip = self.tip.clone();
        let mut buf = String::new();
        let mut entries = Vec::with_capacity(records.len());
        for record in records {
            let sealed = tip.seal(record, now, &self.masker)?;
            buf.push_str(&sealed.line);
            buf.push('\n');
            entries.push(sealed.entry);
        }
        let written = self
            .file
            .write_all(buf.as_bytes())
            .and_then(|()| self.file.sync_data());
        if let Err(source) = written {
            // Leave no partial line behind for the next append to build on.
            let _ = self.file.set_len(self.len);
            return Err(LedgerError::Io {
                action: "append to",
                path: self.path.clone(),
                source,
            });
        }
        self.len += buf.len() as u64;
        self.tip = tip;
        for e in &entries {
            if let Event::Revision { to, .. } = &e.event {
                self.last_revision = Some(to.clone());
            }
        }
        Ok(entries)
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `to` of the last `revision` entry.
    #[must_use]
    pub fn last_revision(&self) -> Option<&str> {
        self.last_revision.as_deref()
    }
}

/// The ledger's bytes, for verifying and showing (nothing is repaired).
pub fn read(path: &Path) -> Result<Vec<u8>, LedgerError> {
    std::fs::read(path).map_err(io_err("read", path))
}

/// Makes a newly created file's directory entry durable.
fn sync_parent_dir(path: &Path) -> Result<(), LedgerError> {
    #[cfg(unix)]
    if let Some(parent) = path.parent() {
        let dir = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("sync the directory of", path))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
