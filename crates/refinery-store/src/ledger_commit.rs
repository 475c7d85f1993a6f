//! Committing the ledger's files (the active one and those rotated since the last commit) to
//! its git ref (not checked out), in batches, retrying a locked ref.

use std::path::Path;
use std::time::Duration;

use refinery_core::ledger;
use refinery_git::{CommitMeta, GitError, GitSource};

use crate::ledger_file::{self, LedgerError};

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

/// Commits the ledger at `disk_path` (`tree_path` in the ref's tree) to `git_ref`: the active
/// file and every rotated file the ref may lack (those from the ref's copy of the active file
/// on; older ones went with earlier commits), next to it in the tree.
pub fn commit_ledger(
    repo: &Path,
    git_ref: &str,
    tree_path: &str,
    disk_path: &Path,
    revision: &str,
    now: i64,
) -> Result<Option<LedgerCommit>, String> {
    let committed_first = committed_first_seq(repo, git_ref, tree_path)
        .map_err(|e| e.to_string())?
        .unwrap_or(1);
    let tree_dir = tree_path.rsplit_once('/').map(|(dir, _)| dir);
    let mut files = Vec::new();
    for r in ledger_file::rotated_files(disk_path).map_err(|e| e.to_string())? {
        if r.last_seq < committed_first {
            continue;
        }
        let name = r
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let in_tree = match tree_dir {
            Some(dir) => format!("{dir}/{name}"),
            None => name,
        };
        let bytes = ledger_file::read(&r.path).map_err(|e| e.to_string())?;
        files.push((in_tree, bytes));
    }
    let active = match ledger_file::read(disk_path) {
        Ok(bytes) => bytes,
        Err(LedgerError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Vec::new()
        }
        Err(e) => return Err(e.to_string()),
    };
    files.push((tree_path.to_owned(), active));
    commit(repo, git_ref, files, revision, now).map_err(|e| e.to_string())
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
        // Compared by blob id: the ref's copies are not read (each can be megabytes).
        let unchanged = match &tip {
            Some(id) => {
                let mut same = true;
                for (path, bytes) in &to_write {
                    if git.file_id(id, path)? != Some(git.blob_id(bytes)?) {
                        same = false;
                        break;
                    }
                }
                same
            }
            None => false,
        };
        if unchanged {
            return Ok(None);
        }
        let committed_seq = match &tip {
            Some(id) => committed_last_seq(&git, id, &active_path)?,
            None => 0,
        };
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

/// The last entry the ledger commit `tip` holds: what its message says (`… (seq 4-9) …`, as
/// [`message`] writes it), or else the last entry of its copy of the active file at `path`.
fn committed_last_seq(git: &GitSource, tip: &str, path: &str) -> Result<u64, GitError> {
    if let Some(seq) = seq_in_message(&git.resolve(tip)?.summary) {
        return Ok(seq);
    }
    Ok(git
        .read_file(tip, path)?
        .as_deref()
        .map_or(0, last_seq_or_count))
}

/// The last seq a ledger commit's summary names (`(seq 9)` or `(seq 4-9)`).
fn seq_in_message(summary: &str) -> Option<u64> {
    let range = summary
        .strip_prefix("ledger: ")?
        .split_once("(seq ")?
        .1
        .split_once(')')?
        .0;
    range.rsplit('-').next()?.parse().ok()
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
    let short = refinery_core::short_id(revision);
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

#[cfg(test)]
mod tests {
    use refinery_core::ledger::{Event, Masker, Record};

    use super::*;
    use crate::ledger_file::{LedgerFile, LedgerOptions};

    const REF: &str = "refs/heads/refinery/ledger";
    const TREE_PATH: &str = "ledger/container_ledger.jsonl";

    fn now() -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_700_000_000).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    fn append(file: &mut LedgerFile, n: usize) {
        for i in 0..n {
            let record = Record::new(Event::Alert {
                level: "info".into(),
                message: format!("entry {i}"),
            });
            file.append(vec![record], now()).expect("append");
        }
    }

    /// The ledger files in the ref's tree, by name, and their contents.
    fn committed(repo: &refinery_git::TestRepo) -> std::collections::BTreeMap<String, Vec<u8>> {
        let git = repo.source();
        let tip = git
            .head_of(REF)
            .expect("read the ref")
            .expect("the ref exists");
        git.read_tree(&tip, "ledger").expect("read the tree")
    }

    #[test]
    fn commit_ledger_commits_rotated_files_including_missed_ones() {
        let repo = refinery_git::TestRepo::new();
        repo.write("refinery.yaml", "containers: []\n");
        let rev = repo.commit("init");
        let disk = repo.path().join(TREE_PATH);
        let options = LedgerOptions::default().max_size(Some(1200));
        let (mut file, _) =
            LedgerFile::open_with(&disk, now(), Masker::default(), options).expect("open");
        append(&mut file, 7);
        let first = commit_ledger(repo.path(), REF, TREE_PATH, &disk, &rev, 1)
            .expect("commit")
            .expect("a new commit");
        assert_eq!((first.entries, first.first_seq, first.last_seq), (7, 1, 7));

        // Two rotations without a commit (as if it failed), then one commit carries both.
        append(&mut file, 9);
        let second = commit_ledger(repo.path(), REF, TREE_PATH, &disk, &rev, 2)
            .expect("commit")
            .expect("a new commit");
        assert_eq!(
            (second.entries, second.first_seq, second.last_seq),
            (9, 8, 16)
        );
        let tree = committed(&repo);
        let rotated = ledger_file::rotated_files(&disk).expect("list");
        assert!(rotated.len() >= 3, "{rotated:?}");
        for r in &rotated {
            let name = r.path.file_name().expect("a name").to_string_lossy();
            let on_disk = std::fs::read(&r.path).expect("read");
            assert_eq!(
                tree.get(&format!("ledger/{name}")),
                Some(&on_disk),
                "{name} in {:?}",
                tree.keys()
            );
        }
        assert_eq!(
            tree.get(TREE_PATH),
            Some(&std::fs::read(&disk).expect("read"))
        );
        assert_eq!(tree.len(), rotated.len() + 1);

        // Nothing new: no commit.
        assert_eq!(
            commit_ledger(repo.path(), REF, TREE_PATH, &disk, &rev, 3).expect("commit"),
            None
        );
    }

    #[test]
    fn the_last_seq_is_read_back_from_the_message_it_writes() {
        let rev = "0123456789abcdef0123456789abcdef01234567";
        let first_line = |m: String| m.lines().next().map(str::to_owned).unwrap_or_default();
        assert_eq!(seq_in_message(&first_line(message(6, 4, 9, rev))), Some(9));
        assert_eq!(seq_in_message(&first_line(message(1, 9, 9, rev))), Some(9));
        assert_eq!(seq_in_message("ledger: fixed by hand"), None);
        assert_eq!(seq_in_message("Merge branch 'x' (seq 3)"), None);
    }
}
