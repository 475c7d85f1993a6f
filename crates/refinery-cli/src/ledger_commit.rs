//! Committing the ledger file to its git ref (not checked out), in batches, retrying a locked ref.

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

/// Commits `bytes` (the ledger's complete lines) as `path` onto `git_ref` of the repository at
/// `repo`, unless the ref already holds them. The message says what the batch holds.
pub fn commit(
    repo: &Path,
    git_ref: &str,
    path: &str,
    bytes: &[u8],
    revision: &str,
    now: i64,
) -> Result<Option<LedgerCommit>, GitError> {
    let git = GitSource::open(repo)?;
    let (complete, _) = ledger::split_torn(bytes);
    let last_seq = count_lines(complete);
    let mut attempt = 0;
    loop {
        let tip = git.head_of(git_ref)?;
        let committed = match &tip {
            Some(id) => git.read_file(id, path)?,
            None => None,
        };
        if committed.as_deref() == Some(complete) {
            return Ok(None);
        }
        let committed_seq = committed
            .as_deref()
            .map_or(0, |c| count_lines(ledger::split_torn(c).0));
        let first_seq = committed_seq.saturating_add(1).min(last_seq);
        let entries = last_seq.saturating_sub(committed_seq);
        let message = message(entries, first_seq, last_seq, revision);
        let meta = CommitMeta {
            message: &message,
            author_name: AUTHOR_NAME,
            author_email: AUTHOR_EMAIL,
            time: now,
        };
        match git.commit_files_onto(
            git_ref,
            tip.as_deref(),
            &[(path.to_owned(), complete.to_vec())],
            &meta,
        ) {
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
