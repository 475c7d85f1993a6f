use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gix::bstr::ByteSlice;
use gix::objs::tree::EntryKind;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix::refs::{FullName, Target};
use gix::{ObjectId, Repository, ThreadSafeRepository};

use crate::commit_info::CommitInfo;
use crate::git_error::{GitError, Result};
use crate::repo_path;

/// A git repository the desired state is read from, always at a commit (never from the work tree),
/// and the ledger is committed to, always on a ref that is not checked out.
///
/// `Send + Sync`: share it behind an `Arc`. Every call sees the current refs, including those a
/// [`fetch_upstream`](GitSource::fetch_upstream) moved.
#[derive(Clone)]
pub struct GitSource {
    repo: ThreadSafeRepository,
}

/// How many symbolic refs [`GitSource::head_of`] follows before giving up on a cycle.
const MAX_SYMBOLIC_DEPTH: usize = 5;

/// Message and identity of a commit written by [`GitSource::commit_files_onto`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitMeta<'a> {
    pub message: &'a str,
    pub author_name: &'a str,
    pub author_email: &'a str,
    /// Author and committer time, seconds since the unix epoch (UTC).
    pub time: i64,
}

impl std::fmt::Debug for GitSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitSource")
            .field("git_dir", &self.repo.git_dir())
            .field("workdir", &self.repo.work_dir())
            .finish()
    }
}

impl GitSource {
    /// Open the repository at exactly `path`: a work tree with a `.git` inside, a `.git` directory,
    /// or a bare repository. Parent directories are not searched, and neither the environment
    /// (`GIT_DIR`, …) nor the user's or system's git config is read; the repository's own config is.
    pub fn open(path: &Path) -> Result<GitSource> {
        match ThreadSafeRepository::open_opts(path, gix::open::Options::isolated()) {
            Ok(repo) => Ok(GitSource { repo }),
            Err(source) if source.is_not_found() => Err(GitError::NotARepo {
                path: path.to_owned(),
                source,
            }),
            Err(source) => Err(GitError::Open {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// The work tree, `None` for a bare repository.
    #[must_use]
    pub fn workdir(&self) -> Option<PathBuf> {
        self.repo.work_dir().map(Path::to_owned)
    }

    /// The `.git` directory (or the bare repository itself).
    #[must_use]
    pub fn git_dir(&self) -> PathBuf {
        self.repo.git_dir().to_owned()
    }

    fn local(&self) -> Repository {
        self.repo.to_thread_local()
    }

    /// Resolve `rev` (`HEAD`, a branch, a tag, a short or full id, `HEAD~1`, …) to a commit.
    pub fn resolve(&self, rev: &str) -> Result<CommitInfo> {
        let repo = self.local();
        let commit = find_commit(&repo, rev)?;
        commit_info(&commit)
    }

    /// The content of the file at `path` (repository-relative, `/`-separated) in the commit `rev`.
    /// `None` when nothing is there, or when it is a directory, a symlink or a submodule.
    pub fn read_file(&self, rev: &str, path: &str) -> Result<Option<Vec<u8>>> {
        let path = repo_path::file_path(path)?;
        let repo = self.local();
        let tree = commit_tree(&repo, &find_commit(&repo, rev)?)?;
        read_blob_at(&repo, &tree, &path)
    }

    /// The object id of the file at `path` in the commit `rev`, without reading it: two files
    /// with one id hold the same bytes (compare with [`GitSource::blob_id`]). `None` as for
    /// [`GitSource::read_file`].
    pub fn file_id(&self, rev: &str, path: &str) -> Result<Option<String>> {
        let path = repo_path::file_path(path)?;
        let repo = self.local();
        let tree = commit_tree(&repo, &find_commit(&repo, rev)?)?;
        let entry = tree
            .lookup_entry_by_path(&path)
            .map_err(|source| read_err(format!("tree entry `{path}`"), source))?;
        Ok(entry
            .filter(|e| e.mode().is_blob())
            .map(|e| e.object_id().to_string()))
    }

    /// The id `bytes` would have as a file in this repository (nothing is written).
    pub fn blob_id(&self, bytes: &[u8]) -> Result<String> {
        let repo = self.local();
        gix::objs::compute_hash(repo.object_hash(), gix::objs::Kind::Blob, bytes)
            .map(|id| id.to_string())
            .map_err(|source| read_err("the id of a blob".to_owned(), source))
    }

    /// Every file under `dir` (`""` for the whole tree) in the commit `rev`, keyed by its
    /// repository-relative path. Empty when `dir` is absent or is not a directory. Symlinks and
    /// submodules are left out.
    pub fn read_tree(&self, rev: &str, dir: &str) -> Result<BTreeMap<String, Vec<u8>>> {
        Ok(self
            .read_tree_modes(rev, dir)?
            .into_iter()
            .map(|(k, (data, _))| (k, data))
            .collect())
    }

    /// [`GitSource::read_tree`], each file with whether git records it as executable.
    pub fn read_tree_modes(
        &self,
        rev: &str,
        dir: &str,
    ) -> Result<BTreeMap<String, (Vec<u8>, bool)>> {
        let prefix = repo_path::components(dir)?.join("/");
        let repo = self.local();
        let root = commit_tree(&repo, &find_commit(&repo, rev)?)?;
        let tree = if prefix.is_empty() {
            root
        } else {
            let entry = root
                .lookup_entry_by_path(&prefix)
                .map_err(|source| read_err(format!("tree entry `{prefix}`"), source))?;
            match entry {
                Some(entry) if entry.mode().is_tree() => repo
                    .find_tree(entry.object_id())
                    .map_err(|source| read_err(format!("tree `{prefix}`"), source))?,
                _ => return Ok(BTreeMap::new()),
            }
        };
        let entries = tree
            .traverse()
            .breadthfirst
            .files()
            .map_err(|source| read_err(format!("tree `{}`", tree.id), source))?;
        let mut out = BTreeMap::new();
        for entry in entries.into_iter().filter(|e| e.mode.is_blob()) {
            let rel = entry.filepath.to_str_lossy();
            let key = if prefix.is_empty() {
                rel.into_owned()
            } else {
                format!("{prefix}/{rel}")
            };
            let data = repo
                .find_blob(entry.oid)
                .map_err(|source| read_err(format!("blob `{key}`"), source))?
                .take_data();
            out.insert(key, (data, entry.mode.is_executable()));
        }
        Ok(out)
    }

    /// Which of `paths` differ between the commit `rev` and the file on disk in the work tree:
    /// present on one side only, or different bytes (no filters, line endings or modes are
    /// considered). Returned in the order given. Always empty for a bare repository.
    pub fn worktree_differs(&self, rev: &str, paths: &[&str]) -> Result<Vec<String>> {
        let Some(workdir) = self.workdir() else {
            return Ok(Vec::new());
        };
        let repo = self.local();
        let tree = commit_tree(&repo, &find_commit(&repo, rev)?)?;
        let mut differs = Vec::new();
        for &path in paths {
            let canonical = repo_path::file_path(path)?;
            let committed = read_blob_at(&repo, &tree, &canonical)?;
            let on_disk = read_worktree_file(&workdir.join(&canonical))?;
            if committed != on_disk {
                differs.push(path.to_owned());
            }
        }
        Ok(differs)
    }

    /// The commit id `refname` points to (symbolic refs and tags are followed), `None` when the
    /// ref does not exist. Short names (`main`) are looked up like git does.
    pub fn head_of(&self, refname: &str) -> Result<Option<String>> {
        let repo = self.local();
        let found = repo
            .try_find_reference(refname)
            .map_err(|source| read_err(format!("reference `{refname}`"), source))?;
        let Some(mut reference) = found else {
            return Ok(None);
        };
        // A symbolic ref to a branch without commits (`HEAD` of a fresh repository) points nowhere.
        for _ in 0..MAX_SYMBOLIC_DEPTH {
            let gix::refs::TargetRef::Symbolic(next) = reference.target() else {
                break;
            };
            let next = next.to_owned();
            match repo
                .try_find_reference(next.as_ref())
                .map_err(|source| read_err(format!("reference `{next}`"), source))?
            {
                Some(found) => reference = found,
                None => return Ok(None),
            }
        }
        let id = reference
            .peel_to_id()
            .map_err(|source| read_err(format!("reference `{refname}`"), source))?;
        Ok(Some(id.to_string()))
    }

    /// Commit `files` onto the current tip of `refname` (a full name such as
    /// `refs/heads/refinery/ledger`): the new tree is the tip's tree with these files added or
    /// replaced (paths may contain directories), its parent is the tip, and the ref moves with a
    /// compare-and-swap. The checked-out branch, the index and the work tree are never touched.
    /// Returns the new commit id.
    ///
    /// Errors: [`GitError::RefMoved`] when another writer moved the ref in between,
    /// [`GitError::Locked`] (retryable) when its lock file is held.
    pub fn commit_files_to_ref(
        &self,
        refname: &str,
        files: &[(String, Vec<u8>)],
        message: &str,
        author_name: &str,
        author_email: &str,
        time: i64,
    ) -> Result<String> {
        let name = full_ref_name(refname)?;
        let repo = self.local();
        let tip = direct_tip(&repo, &name)?;
        let meta = CommitMeta {
            message,
            author_name,
            author_email,
            time,
        };
        self.commit_files_onto(
            refname,
            tip.map(|id| id.to_string()).as_deref(),
            files,
            &meta,
        )
    }

    /// Like [`commit_files_to_ref`](Self::commit_files_to_ref), but built on `expected_tip`, the
    /// commit the caller read earlier (`None`: the ref must not exist yet). When the ref no longer
    /// points there the result is [`GitError::RefMoved`] and nothing changes.
    pub fn commit_files_onto(
        &self,
        refname: &str,
        expected_tip: Option<&str>,
        files: &[(String, Vec<u8>)],
        meta: &CommitMeta<'_>,
    ) -> Result<String> {
        let name = full_ref_name(refname)?;
        let repo = self.local();
        let head = repo
            .head_name()
            .map_err(|source| read_err("`HEAD`".to_owned(), source))?;
        if head.as_ref() == Some(&name) {
            return Err(GitError::RefCheckedOut {
                refname: refname.to_owned(),
            });
        }
        let parent = match expected_tip {
            None => None,
            Some(hex) => Some(parse_id(hex)?),
        };
        let base_tree = match parent {
            None => ObjectId::empty_tree(repo.object_hash()),
            Some(id) => repo
                .find_commit(id)
                .and_then(|commit| commit.tree_id())
                .map_err(|source| read_err(format!("commit `{id}`"), source))?
                .detach(),
        };

        let mut editor = repo
            .edit_tree(base_tree)
            .map_err(|source| read_err(format!("tree `{base_tree}`"), source))?;
        for (path, bytes) in files {
            let path = repo_path::file_path(path)?;
            let blob = repo
                .write_blob(bytes)
                .map_err(|source| write_err(format!("blob `{path}`"), source))?;
            editor
                .upsert(&path, EntryKind::Blob, blob)
                .map_err(|source| write_err(format!("tree entry `{path}`"), source))?;
        }
        let tree = editor
            .write()
            .map_err(|source| write_err("tree".to_owned(), source))?
            .detach();
        if tree.is_empty_tree() {
            // The editor does not store the empty tree; git's fsck wants it present.
            repo.write_object(gix::objs::Tree::empty())
                .map_err(|source| write_err("empty tree".to_owned(), source))?;
        }

        let signature = gix::actor::Signature {
            name: meta.author_name.into(),
            email: meta.author_email.into(),
            time: gix::date::Time {
                seconds: meta.time,
                offset: 0,
            },
        };
        let commit = gix::objs::Commit {
            tree,
            parents: parent.into_iter().collect(),
            author: signature.clone(),
            committer: signature.clone(),
            encoding: None,
            message: with_trailing_newline(meta.message).into(),
            extra_headers: Vec::new(),
        };
        let commit_id = repo
            .write_object(&commit)
            .map_err(|source| write_err("commit".to_owned(), source))?
            .detach();

        let expected = match parent {
            Some(id) => PreviousValue::MustExistAndMatch(Target::Object(id)),
            None => PreviousValue::MustNotExist,
        };
        let summary = meta.message.lines().next().unwrap_or_default();
        let edit = RefEdit {
            change: Change::Update {
                log: LogChange {
                    mode: RefLog::AndReference,
                    force_create_reflog: false,
                    message: format!("commit: {summary}").into(),
                },
                expected,
                new: Target::Object(commit_id),
            },
            name: name.clone(),
            deref: false,
        };
        let mut time_buf = gix::date::parse::TimeBuf::default();
        if let Err(source) =
            repo.edit_references_as(Some(edit), Some(signature.to_ref(&mut time_buf)))
        {
            return Err(self.classify_ref_update_error(&repo, &name, parent, source));
        }
        Ok(commit_id.to_string())
    }

    fn classify_ref_update_error(
        &self,
        repo: &Repository,
        name: &FullName,
        expected: Option<ObjectId>,
        source: gix::Error,
    ) -> GitError {
        let refname = name.as_bstr().to_string();
        if source.is_conflict() {
            return GitError::RefMoved {
                refname,
                expected: expected.map(|id| id.to_string()),
                source,
            };
        }
        if source.is_retryable() {
            let mut lock_file = repo.common_dir().join(&refname).into_os_string();
            lock_file.push(".lock");
            return GitError::Locked {
                refname,
                lock_file: lock_file.into(),
                source,
            };
        }
        // A ref that was deleted under us fails as "not found"; anything that is not where we
        // expected it is a moved ref.
        match direct_tip(repo, name) {
            Ok(actual) if actual != expected => GitError::RefMoved {
                refname,
                expected: expected.map(|id| id.to_string()),
                source,
            },
            _ => GitError::Write {
                what: format!("reference `{refname}`"),
                source,
            },
        }
    }
}

pub(crate) fn read_err(what: String, source: gix::Error) -> GitError {
    GitError::Read { what, source }
}

fn write_err(what: String, source: gix::Error) -> GitError {
    GitError::Write { what, source }
}

fn with_trailing_newline(message: &str) -> String {
    if message.ends_with('\n') {
        message.to_owned()
    } else {
        format!("{message}\n")
    }
}

fn parse_id(hex: &str) -> Result<ObjectId> {
    ObjectId::from_hex(hex.as_bytes()).map_err(|err| GitError::RevNotFound {
        rev: hex.to_owned(),
        source: gix::Error::from_error(err),
    })
}

/// A full reference name below `refs/` (`refs/heads/refinery/ledger`).
pub(crate) fn full_ref_name(refname: &str) -> Result<FullName> {
    let name = FullName::try_from(refname).map_err(|err| GitError::InvalidRef {
        refname: refname.to_owned(),
        source: Some(gix::Error::from_error(err)),
    })?;
    if !refname.starts_with("refs/") {
        return Err(GitError::InvalidRef {
            refname: refname.to_owned(),
            source: None,
        });
    }
    Ok(name)
}

/// The object `name` points to directly; symbolic refs are refused (the ledger ref is a plain one).
fn direct_tip(repo: &Repository, name: &FullName) -> Result<Option<ObjectId>> {
    let found = repo
        .try_find_reference(name.as_ref())
        .map_err(|source| read_err(format!("reference `{name}`"), source))?;
    match found {
        None => Ok(None),
        Some(reference) => match reference.target().try_id() {
            Some(id) => Ok(Some(id.to_owned())),
            None => Err(GitError::SymbolicRef {
                refname: name.as_bstr().to_string(),
            }),
        },
    }
}

fn find_commit<'r>(repo: &'r Repository, rev: &str) -> Result<gix::Commit<'r>> {
    let id = match repo.rev_parse_single(rev) {
        Ok(id) => id,
        Err(source) => return Err(unborn_or_not_found(repo, rev, source)),
    };
    let object = id
        .object()
        .map_err(|source| read_err(format!("object `{id}`"), source))?;
    object
        .peel_to_commit()
        .map_err(|source| GitError::NotACommit {
            rev: rev.to_owned(),
            source,
        })
}

/// A failed rev-parse in a repository whose `HEAD` has no commit yet is reported as such when the
/// revision is about `HEAD` (or its branch).
fn unborn_or_not_found(repo: &Repository, rev: &str, source: gix::Error) -> GitError {
    if let Ok(head) = repo.head()
        && head.is_unborn()
    {
        let full = head
            .referent_name()
            .map(|name| name.as_bstr().to_string())
            .unwrap_or_default();
        let branch = full.strip_prefix("refs/heads/").unwrap_or(&full).to_owned();
        let about_head = rev.starts_with("HEAD") || rev.starts_with('@');
        let about_branch = rev == branch || rev == full;
        if about_head || about_branch {
            return GitError::UnbornHead {
                rev: rev.to_owned(),
                branch,
            };
        }
    }
    GitError::RevNotFound {
        rev: rev.to_owned(),
        source,
    }
}

fn commit_tree<'r>(repo: &'r Repository, commit: &gix::Commit<'r>) -> Result<gix::Tree<'r>> {
    let what = || format!("tree of commit `{}`", commit.id);
    let id = commit
        .tree_id()
        .map_err(|source| read_err(what(), source))?;
    repo.find_tree(id)
        .map_err(|source| read_err(what(), source))
}

fn read_blob_at(repo: &Repository, tree: &gix::Tree<'_>, path: &str) -> Result<Option<Vec<u8>>> {
    let entry = tree
        .lookup_entry_by_path(path)
        .map_err(|source| read_err(format!("tree entry `{path}`"), source))?;
    match entry {
        Some(entry) if entry.mode().is_blob() => {
            let data = repo
                .find_blob(entry.object_id())
                .map_err(|source| read_err(format!("blob `{path}`"), source))?
                .take_data();
            Ok(Some(data))
        }
        _ => Ok(None),
    }
}

fn read_worktree_file(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(err)
            if matches!(
                err.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::IsADirectory
                    | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(source) => Err(GitError::Worktree {
            path: path.to_owned(),
            source,
        }),
    }
}

fn commit_info(commit: &gix::Commit<'_>) -> Result<CommitInfo> {
    let what = || format!("commit `{}`", commit.id);
    let author = commit.author().map_err(|source| read_err(what(), source))?;
    let time = author
        .time()
        .map_err(|err| read_err(what(), gix::Error::from_error(err)))?;
    let message = commit
        .message()
        .map_err(|source| read_err(what(), source))?;
    let id = commit.id.to_string();
    Ok(CommitInfo {
        short: CommitInfo::short_of(&id),
        id,
        author: format!("{} <{}>", author.name, author.email),
        time: time.seconds,
        summary: message.summary().to_str_lossy().into_owned(),
    })
}
