//! The ledger file: opened with a torn last line repaired, appended to with `fsync`, rotated by
//! size, read back.
//!
//! Every append is one `write` of whole lines followed by `fdatasync`; only then are the entries
//! reported written. On open, bytes after the last newline (a write cut off by a crash) are cut
//! off and a `repair` entry records it; a break anywhere before that is an error, never skipped.
//!
//! One writer at a time: opening takes an exclusive `flock` on `<ledger>.lock` (never deleted),
//! released when the [`LedgerFile`] is dropped or its process dies. Readers take no lock.
//!
//! Rotation: with [`LedgerOptions::max_size`], an append that would grow the active file past it
//! first renames the file to `<stem>.<first_seq>-<last_seq>.<ext>` (six digits at least, so names
//! sort) in the same directory; the new active file continues the chain (seq and `prev`).
//! [`read_chain`] walks the rotated files in seq order, then the active one.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use refinery_core::ledger::{self, Broken, ChainTip, Entry, Event, Masker, Record, SealError};

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
    #[error("failed to lock ledger `{}`: another refinery is writing it", path.display())]
    Locked {
        path: PathBuf,
        /// The lock file held.
        lock: PathBuf,
    },
    #[error(transparent)]
    Seal(#[from] SealError),
}

impl LedgerError {
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            LedgerError::Io { source, path, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                vec![
                    format!(
                        "no ledger at `{}` yet: `refinery apply` writes one",
                        path.display()
                    ),
                    "pass --path to read another ledger file".to_owned(),
                ]
            }
            LedgerError::Io { .. } => {
                vec!["check the file's permissions and the disk's free space".to_owned()]
            }
            LedgerError::Broken {
                path,
                intact,
                line,
                reason,
            } => {
                let mut hints = vec![format!(
                    "the first {intact} entries are intact; nothing is appended until the chain is whole again"
                )];
                if let (1, Broken::SequenceGap { expected, found }) = (line, reason)
                    && found > expected
                {
                    hints.push(format!(
                        "entries {expected}-{} are missing before this file: was a rotated ledger file deleted?",
                        found - 1
                    ));
                }
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                hints.push(format!(
                    "restore the file from the ledger ref, e.g. `git show refinery/ledger:ledger/{name}`"
                ));
                hints
            }
            LedgerError::Locked { lock, .. } => vec![
                format!(
                    "wait for the other `refinery apply` or daemon to finish, or stop it; its lock is on `{}`",
                    lock.display()
                ),
                "`refinery ledger verify` and `show` read the ledger without the lock".to_owned(),
                "`refinery apply` hands its work to a `refinery run` holding the lock when it finds it: pass it the daemon's `--state-dir`".to_owned(),
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

/// How a ledger is written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerOptions {
    /// Rotate the active file before an append would grow it past this many bytes (`None`:
    /// never). A batch bigger than this still goes whole into one file.
    pub max_size: Option<u64>,
}

impl LedgerOptions {
    #[must_use]
    pub fn max_size(mut self, bytes: Option<u64>) -> Self {
        self.max_size = bytes;
        self
    }
}

/// A rotated ledger file and the seq range its name says it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub path: PathBuf,
    pub first_seq: u64,
    pub last_seq: u64,
}

/// A ledger file open for appending, its chain verified.
#[derive(Debug)]
pub struct LedgerFile {
    path: PathBuf,
    file: File,
    /// Held for as long as this value lives: the exclusive writer lock.
    _lock: File,
    /// Bytes known to be complete lines.
    len: u64,
    /// The seq of the active file's first entry (`None` while it is empty).
    first_seq: Option<u64>,
    tip: ChainTip,
    masker: Masker,
    last_revision: Option<String>,
    options: LedgerOptions,
}

impl LedgerFile {
    /// Also masks `masker`'s secrets from now on (those of a new revision), keeping the ones
    /// known before.
    pub fn learn_secrets(&mut self, masker: &Masker) {
        self.masker = self.masker.union(masker);
    }
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LedgerError {
    let path = path.to_owned();
    move |source| LedgerError::Io {
        action,
        path,
        source,
    }
}

/// A break at `error.line` of the file at `path`, whose first line follows entry `before`.
fn broken(path: &Path, before: u64, error: ledger::ChainError) -> LedgerError {
    LedgerError::Broken {
        path: path.to_owned(),
        line: error.line,
        intact: before.saturating_add(error.line.saturating_sub(1)),
        reason: error.reason,
    }
}

/// `<ledger>.lock`, next to the ledger.
#[must_use]
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".lock");
    path.with_file_name(name)
}

/// Where the active file at `path` is renamed to when it holds seqs `first..=last`:
/// `container_ledger.jsonl` → `container_ledger.000001-004211.jsonl`.
#[must_use]
pub fn rotated_path(path: &Path, first: u64, last: u64) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.{first:06}-{last:06}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{first:06}-{last:06}"),
    };
    path.with_file_name(name)
}

/// The seq range in a rotated file's name, if `name` is one of `path`'s rotated files.
fn parse_rotated_name(path: &Path, name: &str) -> Option<(u64, u64)> {
    let stem = path.file_stem()?.to_str()?;
    let rest = name.strip_prefix(stem)?.strip_prefix('.')?;
    let range = match path.extension() {
        Some(ext) => rest.strip_suffix(ext.to_str()?)?.strip_suffix('.')?,
        None => rest,
    };
    let (first, last) = range.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(first) || !digits(last) {
        return None;
    }
    let (first, last) = (first.parse().ok()?, last.parse().ok()?);
    (first <= last).then_some((first, last))
}

/// The rotated files of the ledger at `path`, oldest (lowest seq) first.
pub fn rotated_files(path: &Path) -> Result<Vec<Rotated>, LedgerError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let listing = match std::fs::read_dir(dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("list the directory of", path)(e)),
    };
    let mut out = Vec::new();
    for item in listing {
        let item = item.map_err(io_err("list the directory of", path))?;
        let name = item.file_name();
        if let Some((first_seq, last_seq)) = name.to_str().and_then(|n| parse_rotated_name(path, n))
        {
            out.push(Rotated {
                path: path.with_file_name(&name),
                first_seq,
                last_seq,
            });
        }
    }
    out.sort_by_key(|r| (r.first_seq, r.last_seq));
    Ok(out)
}

/// The chain tip a rotated file ends at and the last `revision` in it, checking every line in
/// it. Its first line is trusted to follow the file before (only `ledger verify` reads those).
fn rotated_tip(r: &Rotated) -> Result<(ChainTip, Option<String>), LedgerError> {
    let bytes = std::fs::read(&r.path).map_err(io_err("read", &r.path))?;
    let first_prev = bytes
        .split(|&b| b == b'\n')
        .next()
        .and_then(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
        .and_then(|v| v.get("prev").and_then(|p| p.as_str()).map(str::to_owned))
        .unwrap_or_default();
    let start = ChainTip {
        seq: r.first_seq.saturating_sub(1),
        hash: first_prev,
    };
    let (entries, tip, error) = ledger::parse_entries_from(&bytes, &start);
    if let Some(error) = error {
        return Err(broken(&r.path, start.seq, error));
    }
    Ok((tip, last_revision_in(&entries)))
}

fn last_revision_in(entries: &[Entry]) -> Option<String> {
    entries.iter().rev().find_map(|e| match &e.event {
        Event::Revision { to, .. } => Some(to.clone()),
        _ => None,
    })
}

impl LedgerFile {
    /// Opens (creating it and its directory if needed) and verifies the ledger at `path`. A torn
    /// last line is cut off and recorded as a `repair` entry at `now`; any other break is
    /// [`LedgerError::Broken`] and nothing is written. Never rotates.
    #[allow(
        dead_code,
        reason = "the API for callers that never rotate (the daemon)"
    )]
    pub fn open(
        path: &Path,
        now: jiff::Timestamp,
        masker: Masker,
    ) -> Result<(LedgerFile, Option<Repaired>), LedgerError> {
        LedgerFile::open_with(path, now, masker, LedgerOptions::default())
    }

    /// Like [`open`](Self::open), with `options` (rotation by size). Takes the writer lock
    /// first: a second writer gets [`LedgerError::Locked`]. With rotated files present, the
    /// active file must continue the newest of them, which is checked line by line; the older
    /// ones must have contiguous names (`refinery ledger verify` checks their every line).
    pub fn open_with(
        path: &Path,
        now: jiff::Timestamp,
        masker: Masker,
        options: LedgerOptions,
    ) -> Result<(LedgerFile, Option<Repaired>), LedgerError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_err("create the directory of", path))?;
        }
        let lock = lock(path)?;
        let rotated = rotated_files(path)?;
        let mut expected = 1_u64;
        for r in &rotated {
            if r.first_seq != expected {
                return Err(LedgerError::Broken {
                    path: r.path.clone(),
                    line: 1,
                    intact: expected - 1,
                    reason: Broken::SequenceGap {
                        expected,
                        found: r.first_seq,
                    },
                });
            }
            expected = r.last_seq.saturating_add(1);
        }
        let (start, rotated_revision) = match rotated.last() {
            Some(r) => rotated_tip(r)?,
            None => (ChainTip::genesis(), None),
        };
        let created = !path.exists();
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
        let (entries, tip, error) = ledger::parse_entries_from(complete, &start);
        if let Some(error) = error {
            return Err(broken(path, start.seq, error));
        }
        let mut last_revision = last_revision_in(&entries).or(rotated_revision);
        // Older rotated files, newest first, only until a revision is found.
        for r in rotated.iter().rev().skip(1) {
            if last_revision.is_some() {
                break;
            }
            last_revision = rotated_tip(r)?.1;
        }
        let complete_len = complete.len() as u64;
        let mut ledger = LedgerFile {
            path: path.to_owned(),
            file,
            _lock: lock,
            len: complete_len,
            first_seq: entries.first().map(|e| e.seq),
            tip,
            masker,
            last_revision,
            options,
        };
        let mut repaired = None;
        if !torn.is_empty() {
            // The torn line's number in the active file.
            let line = entries.len() as u64 + 1;
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
        self.append_with(records, now, true)
    }

    /// Like [`append`](Self::append) but without waiting for the disk: the entries reach it
    /// with the next `append` (or the OS's own write-back). For records that must not delay an
    /// action (the drift an action answers); the action's own entry is appended with `append`,
    /// which makes both durable before the action is reported done.
    pub fn append_unsynced(
        &mut self,
        records: Vec<Record>,
        now: jiff::Timestamp,
    ) -> Result<Vec<Entry>, LedgerError> {
        self.append_with(records, now, false)
    }

    fn append_with(
        &mut self,
        records: Vec<Record>,
        now: jiff::Timestamp,
        sync: bool,
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
        if let Some(max) = self.options.max_size
            && self.len > 0
            && self.len.saturating_add(buf.len() as u64) > max
        {
            self.rotate()?;
        }
        let written = self
            .file
            .write_all(buf.as_bytes())
            .and_then(|()| if sync { self.file.sync_data() } else { Ok(()) });
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
        if self.first_seq.is_none() {
            self.first_seq = entries.first().map(|e| e.seq);
        }
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

    /// Renames the active file to its rotated name and starts an empty one; the chain goes on
    /// in it (the tip is kept). Both directory entries are fsynced before anything is written.
    fn rotate(&mut self) -> Result<(), LedgerError> {
        let Some(first) = self.first_seq else {
            return Ok(());
        };
        let to = rotated_path(&self.path, first, self.tip.seq);
        if to.exists() {
            return Err(LedgerError::Io {
                action: "rotate",
                path: self.path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("`{}` already exists", to.display()),
                ),
            });
        }
        std::fs::rename(&self.path, &to).map_err(io_err("rotate", &self.path))?;
        let fresh = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(&self.path);
        let fresh = match fresh {
            Ok(f) => f,
            Err(source) => {
                // Put it back: the active file stays the one to append to.
                let _ = std::fs::rename(&to, &self.path);
                return Err(LedgerError::Io {
                    action: "start a new file for",
                    path: self.path.clone(),
                    source,
                });
            }
        };
        self.file = fresh;
        self.len = 0;
        self.first_seq = None;
        sync_parent_dir(&self.path)
    }
}

/// Takes the exclusive writer lock on `<path>.lock`, without waiting.
fn lock(path: &Path) -> Result<File, LedgerError> {
    let lock_path = lock_path(path);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io_err("create the lock file of", path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(LedgerError::Locked {
            path: path.to_owned(),
            lock: lock_path,
        }),
        Err(TryLockError::Error(source)) => Err(LedgerError::Io {
            action: "lock",
            path: path.to_owned(),
            source,
        }),
    }
}

/// A ledger read across its files, for verifying and showing (nothing is repaired or locked).
#[derive(Debug)]
pub struct ChainRead {
    /// Every file read, rotated ones first, the active one last.
    pub files: Vec<PathBuf>,
    /// Every intact entry, in order (empty unless asked for).
    pub entries: Vec<Entry>,
    /// How many entries are intact.
    pub intact: u64,
    /// The tip after the last intact entry.
    pub tip: ChainTip,
    /// The first break: [`LedgerError::Broken`] naming its file and line.
    pub error: Option<LedgerError>,
}

/// Reads the ledger at `path` and its rotated files, checking the chain across all of them
/// from the first line of the oldest file; keeps the entries when `keep_entries`. A missing
/// rotated file shows as a sequence gap at line 1 of the file after it. The active file may be
/// absent only when rotated files exist (a crash right after a rotation).
///
/// A writer may be appending meanwhile (readers take no lock): a break it can cause for a
/// moment (a torn last line, a gap at a file's first line during a rotation) is read again,
/// twice at most, 50 ms apart, before it is reported.
pub fn read_chain(path: &Path, keep_entries: bool) -> Result<ChainRead, LedgerError> {
    let mut attempt = 0;
    loop {
        let chain = read_chain_once(path, keep_entries)?;
        let transient = match &chain.error {
            Some(LedgerError::Broken { line, reason, .. }) => {
                *line == 1 || matches!(reason, Broken::TornLine)
            }
            _ => false,
        };
        if !transient || attempt == 2 {
            return Ok(chain);
        }
        attempt += 1;
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn read_chain_once(path: &Path, keep_entries: bool) -> Result<ChainRead, LedgerError> {
    let mut out = ChainRead {
        files: Vec::new(),
        entries: Vec::new(),
        intact: 0,
        tip: ChainTip::genesis(),
        error: None,
    };
    // The last seq in the names of the rotated files read so far.
    let mut read_upto = 0_u64;
    // A writer may rotate while we read, and a directory listing taken meanwhile may miss a
    // file: the next file is the one whose name continues the chain, listed again when it is
    // not there. A file further on means a gap, reported at its first line. When the active
    // file no longer follows, it was rotated meanwhile: read on, a bounded number of times.
    for pass in 0..64 {
        let mut listing = rotated_files(path)?;
        let mut relisted = false;
        loop {
            let want = out.tip.seq.saturating_add(1);
            let unread = |r: &&Rotated| r.first_seq > read_upto;
            let next = match listing.iter().filter(unread).find(|r| r.first_seq == want) {
                Some(r) => Some(r.clone()),
                None if !relisted => {
                    listing = rotated_files(path)?;
                    relisted = true;
                    continue;
                }
                None => listing.iter().find(unread).cloned(),
            };
            let Some(r) = next else { break };
            relisted = false;
            read_upto = r.last_seq;
            if !read_one(&r.path, &mut out, keep_entries)? {
                return Ok(out);
            }
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            // Absent only between a rotation's rename and the new file's creation.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && read_upto > 0 => {
                if pass < 63 && rotated_files(path)?.iter().any(|r| r.first_seq > read_upto) {
                    continue;
                }
                return Ok(out);
            }
            Err(e) => return Err(io_err("read", path)(e)),
        };
        let (entries, tip, error) = ledger::parse_entries_from(&bytes, &out.tip);
        let rotated_meanwhile = matches!(
            &error,
            Some(ledger::ChainError {
                line: 1,
                reason: Broken::SequenceGap { expected, found },
            }) if found > expected
        ) && rotated_files(path)?.iter().any(|r| r.first_seq > read_upto);
        if rotated_meanwhile && pass < 63 {
            continue;
        }
        out.files.push(path.to_owned());
        let before = out.intact;
        out.intact += entries.len() as u64;
        out.tip = tip;
        if keep_entries {
            out.entries.extend(entries);
        }
        out.error = error.map(|e| broken(path, before, e));
        return Ok(out);
    }
    Ok(out)
}

/// Reads one rotated file into `out`, continuing its chain; `false` when it breaks it.
fn read_one(file: &Path, out: &mut ChainRead, keep_entries: bool) -> Result<bool, LedgerError> {
    let bytes = read(file)?;
    out.files.push(file.to_owned());
    let before = out.intact;
    let (entries, tip, error) = ledger::parse_entries_from(&bytes, &out.tip);
    out.intact += entries.len() as u64;
    out.tip = tip;
    if keep_entries {
        out.entries.extend(entries);
    }
    match error {
        Some(e) => {
            out.error = Some(broken(file, before, e));
            Ok(false)
        }
        None => Ok(true),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_700_000_000).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    fn alert(i: usize) -> Record {
        Record::new(Event::Alert {
            level: "info".into(),
            message: format!("entry {i}"),
        })
    }

    fn revision(to: &str) -> Record {
        Record::new(Event::Revision {
            from: None,
            to: to.to_owned(),
        })
    }

    #[test]
    fn rotated_path_round_trips_and_sorts() {
        let active = Path::new("/x/ledger/container_ledger.jsonl");
        let rotated = rotated_path(active, 1, 4211);
        assert_eq!(
            rotated,
            Path::new("/x/ledger/container_ledger.000001-004211.jsonl")
        );
        assert_eq!(
            parse_rotated_name(active, "container_ledger.000001-004211.jsonl"),
            Some((1, 4211))
        );
        assert_eq!(
            parse_rotated_name(active, "container_ledger.1234567-1234568.jsonl"),
            Some((1_234_567, 1_234_568))
        );
        for other in [
            "container_ledger.jsonl",
            "container_ledger.jsonl.lock",
            "container_ledger.000001-00000x.jsonl",
            "container_ledger.000009-000001.jsonl",
            "container_ledger.000001-000002.json",
            "other.000001-000002.jsonl",
            "container_ledger.-000002.jsonl",
        ] {
            assert_eq!(parse_rotated_name(active, other), None, "{other}");
        }
        let bare = Path::new("ledger");
        assert_eq!(rotated_path(bare, 3, 9), Path::new("ledger.000003-000009"));
        assert_eq!(
            parse_rotated_name(bare, "ledger.000003-000009"),
            Some((3, 9))
        );
        assert_eq!(
            lock_path(active),
            Path::new("/x/ledger/container_ledger.jsonl.lock")
        );
    }

    #[test]
    fn ledger_learned_secrets_are_masked_from_then_on_and_old_ones_kept() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("l.jsonl");
        let (mut l, _) =
            LedgerFile::open(&path, now(), Masker::new(["old-s3cret".to_owned()])).expect("open");
        let say = |m: &str| {
            Record::new(Event::Alert {
                level: "info".into(),
                message: m.to_owned(),
            })
        };
        let before = l.append(vec![say("new-s3cret")], now()).expect("append");
        l.learn_secrets(&Masker::new(["new-s3cret".to_owned()]));
        let after = l
            .append(vec![say("new-s3cret old-s3cret")], now())
            .expect("append");
        let text = |e: &[Entry]| serde_json::to_string(&e[0]).unwrap_or_default();
        assert!(text(&before).contains("new-s3cret"), "{}", text(&before));
        assert!(!text(&after).contains("s3cret"), "{}", text(&after));
    }

    #[test]
    fn ledger_open_second_writer_is_locked_until_the_first_drops() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("l.jsonl");
        let (first, _) = LedgerFile::open(&path, now(), Masker::default()).expect("open");
        let second = LedgerFile::open(&path, now(), Masker::default());
        let Err(e) = second else {
            panic!("a second writer must not open the ledger")
        };
        assert!(matches!(e, LedgerError::Locked { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "failed to lock ledger `{}`: another refinery is writing it",
                path.display()
            )
        );
        assert!(e.hints()[0].contains("l.jsonl.lock"), "{:?}", e.hints());
        // Readers need no lock.
        assert!(read_chain(&path, true).expect("read").error.is_none());
        drop(first);
        assert!(LedgerFile::open(&path, now(), Masker::default()).is_ok());
    }

    #[test]
    fn ledger_append_past_max_size_rotates_and_keeps_chain() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("l.jsonl");
        let options = LedgerOptions::default().max_size(Some(600));
        let (mut file, _) =
            LedgerFile::open_with(&path, now(), Masker::default(), options.clone()).expect("open");
        file.append(vec![revision("abc")], now()).expect("append");
        for i in 0..9 {
            file.append(vec![alert(i)], now()).expect("append");
        }
        // A batch bigger than the limit goes whole into one file.
        file.append((0..5).map(alert).collect(), now())
            .expect("append a big batch");
        drop(file);

        let rotated = rotated_files(&path).expect("list");
        assert!(rotated.len() >= 3, "{rotated:?}");
        let mut expected = 1;
        for r in &rotated {
            assert_eq!(r.first_seq, expected, "{rotated:?}");
            let size = std::fs::metadata(&r.path).expect("stat").len();
            assert!(size <= 600 || r.first_seq == r.last_seq, "{r:?}: {size}");
            expected = r.last_seq + 1;
        }
        let chain = read_chain(&path, true).expect("read");
        assert!(chain.error.is_none(), "{:?}", chain.error);
        assert_eq!(chain.intact, 15);
        assert_eq!(chain.files.len(), rotated.len() + 1);
        let seqs: Vec<u64> = chain.entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=15).collect::<Vec<_>>());
        // The big batch is the whole active file.
        let active = std::fs::read_to_string(&path).expect("read");
        assert_eq!(active.lines().count(), 5);

        // Reopened, it continues; the last revision is found in a rotated file.
        let (mut file, repaired) =
            LedgerFile::open_with(&path, now(), Masker::default(), options).expect("reopen");
        assert_eq!(repaired, None);
        assert_eq!(file.last_revision(), Some("abc"));
        let next = file.append(vec![alert(99)], now()).expect("append");
        assert_eq!(next[0].seq, 16);
        assert_eq!(next[0].prev, chain.tip.hash);
    }

    #[test]
    fn ledger_open_after_crash_between_rename_and_create_continues() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("l.jsonl");
        let (mut file, _) = LedgerFile::open(&path, now(), Masker::default()).expect("open");
        file.append((0..3).map(alert).collect(), now())
            .expect("append");
        drop(file);
        std::fs::rename(&path, rotated_path(&path, 1, 3)).expect("rotate by hand");
        let (mut file, _) = LedgerFile::open(&path, now(), Masker::default()).expect("reopen");
        let next = file.append(vec![alert(3)], now()).expect("append");
        assert_eq!(next[0].seq, 4);
        let chain = read_chain(&path, false).expect("read");
        assert!(chain.error.is_none(), "{:?}", chain.error);
        assert_eq!(chain.intact, 4);
    }

    #[test]
    fn ledger_open_rotated_name_gap_is_broken_at_the_next_file() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("l.jsonl");
        let options = LedgerOptions::default().max_size(Some(1));
        let (mut file, _) =
            LedgerFile::open_with(&path, now(), Masker::default(), options).expect("open");
        for i in 0..4 {
            file.append(vec![alert(i)], now()).expect("append");
        }
        drop(file);
        std::fs::remove_file(rotated_path(&path, 2, 2)).expect("delete a rotated file");
        let Err(e) = LedgerFile::open(&path, now(), Masker::default()) else {
            panic!("a missing rotated file must stop the writer")
        };
        let LedgerError::Broken {
            path: bad, line, ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!((bad.clone(), *line), (rotated_path(&path, 3, 3), 1));
        assert!(
            e.hints()
                .iter()
                .any(|h| h.contains("entries 2-2 are missing")),
            "{:?}",
            e.hints()
        );
    }
}
