//! Committing the ledger's files (the active one and those rotated since the last commit) to
//! its git ref (not checked out), in batches, retrying a locked ref.

use std::path::Path;
use std::time::Duration;

use refinery_core::ledger;
use refinery_git::{CommitMeta, GitError, GitSource};

/// The identity ledger commits are authored and committed by.
pub const AUTHOR_NAME: &str = "Container Refinery";
pub const AUTHOR_EMAIL: &str = "refinery@localhost";

/// Waits before each retry of a locked or moved ref; after the last one the error is returned
/// (nothing is lost: the next commit carries every entry the ref lacks).
const RETRY_DELAYS_MS: [u64; 5] = [25, 50, 100, 200, 400];

/// A ledger commit that was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerCommit {
    pub id: String,
    /// How many entries are new in this commit, and their seq range.
    pub entries: u64,
    pub first_seq: u64,
    pub last_seq: u64,
}

/// Commits the ledger `files`, each `(path in the ref's tree, bytes)`, onto `git_ref` of the
/// repository at `repo`, unless the ref already holds them all. The active file comes last,
/// any rotated files before it; only the active file's complete lines are committed. The
/// message says which entries are new: those after the last one the ref's active file held.
pub fn commit(
    repo: &Path,
    git_ref: &str,
    files: Vec<(String, Vec<u8>)>,
    revision: &str,
    now: i64,
) -> Result<Option<LedgerCommit>, GitError> {
    let git = GitSource::open(repo)?;
    // The files are taken as they are (no copy: a ledger can be megabytes), the active one
    // without a torn last line.
    let mut to_write = files;
    let Some((active_path, active_bytes)) = to_write.last_mut() else {
        return Ok(None);
    };
    let complete = ledger::split_torn(active_bytes).0.len();
    active_bytes.truncate(complete);
    let active_path = active_path.clone();
    let last_seq = to_write
        .iter()
        .rev()
        .find_map(|(_, bytes)| last_seq_in(bytes))
        .unwrap_or(0);
    let mut attempt = 0;
    loop {
        let tip = git.head_of(git_ref)?;
        let mut committed_active = None;
        let mut unchanged = true;
        if let Some(id) = &tip {
            for (path, bytes) in &to_write {
                let committed = git.read_file(id, path)?;
                unchanged &= committed.as_deref() == Some(bytes.as_slice());
                if *path == active_path {
                    committed_active = committed;
                }
            }
        } else {
            unchanged = false;
        }
        if unchanged {
            return Ok(None);
        }
        let committed_seq = committed_active.as_deref().map_or(0, last_seq_or_count);
        let first_seq = committed_seq.saturating_add(1).min(last_seq);
        let entries = last_seq.saturating_sub(committed_seq);
        let message = message(entries, first_seq, last_seq, revision);
        let meta = CommitMeta {
            message: &message,
            author_name: AUTHOR_NAME,
            author_email: AUTHOR_EMAIL,
            time: now,
        };
        match git.commit_files_onto(git_ref, tip.as_deref(), &to_write, &meta) {
            Ok(id) => {
                return Ok(Some(LedgerCommit {
                    id,
                    entries,
                    first_seq,
                    last_seq,
                }));
            }
            Err(e) if e.is_retryable() || e.is_conflict() => match RETRY_DELAYS_MS.get(attempt) {
                Some(ms) => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(*ms));
                }
                None => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
}

/// The seq of the first entry of the ref's copy of the ledger file at `path` (`None`: no ref,
/// no file or an empty one). Rotated files ending before it were committed before.
pub fn committed_first_seq(
    repo: &Path,
    git_ref: &str,
    path: &str,
) -> Result<Option<u64>, GitError> {
    let git = GitSource::open(repo)?;
    let Some(tip) = git.head_of(git_ref)? else {
        return Ok(None);
    };
    Ok(git
        .read_file(&tip, path)?
        .and_then(|bytes| bytes.split(|&b| b == b'\n').next().and_then(seq_of)))
}

/// The `seq` of one ledger line.
fn seq_of(line: &[u8]) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(line)
        .ok()?
        .get("seq")?
        .as_u64()
}

/// The seq of the last complete line.
fn last_seq_in(bytes: &[u8]) -> Option<u64> {
    let (complete, _) = ledger::split_torn(bytes);
    complete
        .strip_suffix(b"\n")?
        .rsplit(|&b| b == b'\n')
        .next()
        .and_then(seq_of)
}

/// The last seq, or for a file that does not parse, its line count (the seq it would have).
fn last_seq_or_count(bytes: &[u8]) -> u64 {
    last_seq_in(bytes).unwrap_or_else(|| count_lines(ledger::split_torn(bytes).0))
}

fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// `ledger: 5 entries (seq 12-16) at rev abc1234`, then what the ref is.
#[must_use]
pub fn message(entries: u64, first_seq: u64, last_seq: u64, revision: &str) -> String {
    let short: String = revision.chars().take(refinery_git::SHORT_ID_LEN).collect();
    let noun = if entries == 1 { "entry" } else { "entries" };
    let range = if first_seq == last_seq {
        format!("seq {last_seq}")
    } else {
        format!("seq {first_seq}-{last_seq}")
    };
    format!(
        "ledger: {entries} {noun} ({range}) at rev {short}\n\nAppended by refinery {}; verify with `refinery ledger verify`.",
        env!("CARGO_PKG_VERSION")
    )
}
