//! Real repositories with real commits, for tests (feature `testing`). Panics on failure.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};

use gix::objs::tree::EntryKind;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix::refs::{FullName, Target};
use gix::{ObjectId, Repository};

use crate::git_source::GitSource;

/// Name of the identity every [`TestRepo`] commit is authored and committed by.
pub const TEST_AUTHOR_NAME: &str = "Refinery Test";
/// Email of the identity every [`TestRepo`] commit is authored and committed by.
pub const TEST_AUTHOR_EMAIL: &str = "test@refinery.invalid";
/// Time of the first [`TestRepo`] commit; each further commit is [`TEST_TIME_STEP`] later.
pub const TEST_EPOCH: i64 = 1_700_000_000;
/// Seconds between two [`TestRepo`] commits.
pub const TEST_TIME_STEP: i64 = 60;

/// A fresh non-bare repository in a temporary directory (removed on drop), `HEAD` on an unborn
/// `main`. Built with gix only, never the git CLI.
///
/// ```
/// use refinery_git::TestRepo;
///
/// let repo = TestRepo::new();
/// repo.write("refinery.yaml", "containers: []\n");
/// let c1 = repo.commit("first");
/// let source = repo.source();
/// assert_eq!(source.resolve("HEAD").unwrap().id, c1);
/// assert_eq!(source.read_file(&c1, "refinery.yaml").unwrap().unwrap(), b"containers: []\n");
/// ```
///
/// [`TestRepo::bare`] makes a bare repository to serve as a remote, [`TestRepo::clone_of`] a clone
/// of one (its `origin`):
///
/// ```
/// use refinery_git::TestRepo;
///
/// let remote = TestRepo::bare();
/// remote.write("refinery.yaml", "containers: []\n");
/// let c1 = remote.commit("first");
/// let clone = TestRepo::clone_of(&remote);
/// assert_eq!(clone.source().resolve("refs/remotes/origin/main").unwrap().id, c1);
/// ```
#[derive(Debug)]
pub struct TestRepo {
    /// Removed on drop.
    _dir: tempfile::TempDir,
    /// What [`TestRepo::path`] returns and [`TestRepo::source`] opens: the work tree, or the bare
    /// repository.
    repo: PathBuf,
    /// Where [`TestRepo::write`] puts files and [`TestRepo::commit`] takes them from: the work
    /// tree, or for a bare repository a scratch directory beside it.
    files: PathBuf,
    bare: bool,
    commits: AtomicI64,
}

impl Default for TestRepo {
    fn default() -> Self {
        Self::new()
    }
}

impl TestRepo {
    /// `git init` with `HEAD` → `refs/heads/main`, whatever the machine's git config says.
    #[must_use]
    pub fn new() -> TestRepo {
        let dir = temp_dir();
        let repo = gix::init(dir.path()).expect("failed to init a test repository");
        point_head_at_main(&repo);
        TestRepo {
            repo: dir.path().to_owned(),
            files: dir.path().to_owned(),
            _dir: dir,
            bare: false,
            commits: AtomicI64::new(0),
        }
    }

    /// `git init --bare` with `HEAD` → `refs/heads/main`, to serve as a remote. [`write`](Self::write)
    /// and [`commit`](Self::commit) work as for [`TestRepo::new`], through a scratch directory that
    /// stands in for a work tree; commits go to `main`.
    #[must_use]
    pub fn bare() -> TestRepo {
        let dir = temp_dir();
        let path = dir.path().join("remote.git");
        let files = dir.path().join("scratch");
        std::fs::create_dir(&files).expect("failed to create the scratch directory");
        let repo = gix::init_bare(&path).expect("failed to init a bare test repository");
        point_head_at_main(&repo);
        TestRepo {
            repo: path,
            files,
            _dir: dir,
            bare: true,
            commits: AtomicI64::new(0),
        }
    }

    /// A clone of `upstream` (through gix, from its path), whose `origin` is `upstream`: `main`
    /// and `refs/remotes/origin/main` point where `upstream`'s `main` does, and `main` tracks
    /// `origin/main`. Nothing is checked out: the work tree is empty.
    #[must_use]
    pub fn clone_of(upstream: &TestRepo) -> TestRepo {
        let dir = temp_dir();
        let mut prepare = gix::clone::PrepareFetch::new(
            upstream.path(),
            dir.path(),
            gix::create::Kind::WithWorktree,
            gix::create::Options::default(),
            gix::open::Options::isolated(),
        )
        .expect("failed to prepare the clone");
        let never = std::sync::atomic::AtomicBool::new(false);
        prepare
            .fetch_only(gix::progress::Discard, &never)
            .expect("failed to clone");
        TestRepo {
            repo: dir.path().to_owned(),
            files: dir.path().to_owned(),
            _dir: dir,
            bare: false,
            // Later commits in the clone get later times than the upstream's so far.
            commits: AtomicI64::new(upstream.commits.load(Ordering::SeqCst)),
        }
    }

    /// The work tree (the `.git` directory is inside it), or the bare repository itself.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.repo
    }

    /// Set `key` (`remote.origin.url`, `branch.main.remote`, …) to `value` in the repository's own
    /// config file, as `git config key value` does.
    pub fn set_config(&self, key: &str, value: &str) {
        let path = self.open().git_dir().join("config");
        let mut config =
            gix::config::File::from_path_no_includes(path.clone(), gix::config::Source::Local)
                .unwrap_or_else(|e| panic!("failed to read `{}`: {e}", path.display()));
        config
            .set_raw_value(key, value)
            .unwrap_or_else(|e| panic!("failed to set `{key}`: {e}"));
        std::fs::write(&path, config.to_bstring())
            .unwrap_or_else(|e| panic!("failed to write `{}`: {e}", path.display()));
    }

    /// Add the remote `name` at `url` with git's default fetch refspec, as `git remote add` does.
    pub fn add_remote(&self, name: &str, url: &str) {
        self.set_config(&format!("remote.{name}.url"), url);
        self.set_config(
            &format!("remote.{name}.fetch"),
            &format!("+refs/heads/*:refs/remotes/{name}/*"),
        );
    }

    /// Open it as the code under test would.
    #[must_use]
    pub fn source(&self) -> GitSource {
        GitSource::open(self.path()).expect("failed to open the test repository")
    }

    /// Write `contents` to `path` (repository-relative, `/`-separated) in the work tree, creating
    /// directories as needed. Nothing is committed.
    pub fn write(&self, path: &str, contents: impl AsRef<[u8]>) {
        let file = self.files.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("failed to create `{}`: {e}", parent.display()));
        }
        std::fs::write(&file, contents)
            .unwrap_or_else(|e| panic!("failed to write `{}`: {e}", file.display()));
    }

    /// Remove the file or directory at `path` from the work tree. Nothing is committed.
    pub fn remove(&self, path: &str) {
        let target = self.files.join(path);
        let result = if target.is_dir() {
            std::fs::remove_dir_all(&target)
        } else {
            std::fs::remove_file(&target)
        };
        result.unwrap_or_else(|e| panic!("failed to remove `{}`: {e}", target.display()));
    }

    /// Commit the whole current work tree (every file, recursively, except `.git`; symlinks are
    /// skipped) as a new commit on `HEAD`'s branch, and make the index match it (a bare
    /// repository has none). Returns the full
    /// commit id. Author and committer are [`TEST_AUTHOR_NAME`] `<`[`TEST_AUTHOR_EMAIL`]`>`, the
    /// n-th commit is dated `TEST_EPOCH + n * TEST_TIME_STEP` (n from 0).
    pub fn commit(&self, message: &str) -> String {
        let repo = self.open();
        let mut files = Vec::new();
        collect_files(&self.files, "", &mut files);

        let mut editor = repo
            .edit_tree(ObjectId::empty_tree(repo.object_hash()))
            .expect("failed to start a tree");
        for (rel, file, executable) in &files {
            let bytes = std::fs::read(file)
                .unwrap_or_else(|e| panic!("failed to read `{}`: {e}", file.display()));
            let blob = repo.write_blob(&bytes).expect("failed to write a blob");
            let kind = if *executable {
                EntryKind::BlobExecutable
            } else {
                EntryKind::Blob
            };
            editor
                .upsert(rel, kind, blob)
                .unwrap_or_else(|e| panic!("failed to add `{rel}` to the tree: {e}"));
        }
        let tree = editor.write().expect("failed to write the tree").detach();
        if tree.is_empty_tree() {
            repo.write_object(gix::objs::Tree::empty())
                .expect("failed to write the empty tree");
        }

        let n = self.commits.fetch_add(1, Ordering::SeqCst);
        let signature = gix::actor::Signature {
            name: TEST_AUTHOR_NAME.into(),
            email: TEST_AUTHOR_EMAIL.into(),
            time: gix::date::Time {
                seconds: TEST_EPOCH + n * TEST_TIME_STEP,
                offset: 0,
            },
        };
        let parents: Vec<ObjectId> = repo
            .head()
            .expect("failed to read `HEAD`")
            .id()
            .map(|id| id.detach())
            .into_iter()
            .collect();
        let mut committer_buf = gix::date::parse::TimeBuf::default();
        let mut author_buf = gix::date::parse::TimeBuf::default();
        let id = repo
            .commit_as(
                signature.to_ref(&mut committer_buf),
                signature.to_ref(&mut author_buf),
                "HEAD",
                message,
                tree,
                parents,
            )
            .expect("failed to commit")
            .detach();

        if !self.bare {
            let mut index = repo
                .index_from_tree(&tree)
                .expect("failed to build the index from the tree");
            index
                .write(Default::default())
                .expect("failed to write the index");
        }
        id.to_string()
    }

    /// Point `refname` (`refs/heads/x`, `refs/tags/v1`, …) at `commit`, creating or moving it.
    pub fn set_ref(&self, refname: &str, commit: &str) {
        let repo = self.open();
        let id = ObjectId::from_hex(commit.as_bytes()).expect("`commit` is a full hex id");
        let edit = RefEdit {
            change: Change::Update {
                log: LogChange {
                    mode: RefLog::AndReference,
                    force_create_reflog: false,
                    message: "set by test".into(),
                },
                expected: PreviousValue::Any,
                new: Target::Object(id),
            },
            name: FullName::try_from(refname).expect("`refname` is a full reference name"),
            deref: false,
        };
        let mut time_buf = gix::date::parse::TimeBuf::default();
        let signature = gix::actor::Signature {
            name: TEST_AUTHOR_NAME.into(),
            email: TEST_AUTHOR_EMAIL.into(),
            time: gix::date::Time {
                seconds: TEST_EPOCH,
                offset: 0,
            },
        };
        repo.edit_references_as(Some(edit), Some(signature.to_ref(&mut time_buf)))
            .unwrap_or_else(|e| panic!("failed to set `{refname}`: {e}"));
    }

    /// A lightweight tag `name` on `commit` (moved if it exists), as `git tag -f name commit`.
    pub fn tag(&self, name: &str, commit: &str) {
        self.set_ref(&format!("refs/tags/{name}"), commit);
    }

    /// An annotated tag `name` on `commit` (a tag object with `message`), as
    /// `git tag -a -f name commit -m message`.
    pub fn tag_annotated(&self, name: &str, commit: &str, message: &str) {
        let repo = self.open();
        let id = ObjectId::from_hex(commit.as_bytes()).expect("`commit` is a full hex id");
        let tagger = gix::actor::Signature {
            name: TEST_AUTHOR_NAME.into(),
            email: TEST_AUTHOR_EMAIL.into(),
            time: gix::date::Time {
                seconds: TEST_EPOCH,
                offset: 0,
            },
        };
        let mut time_buf = gix::date::parse::TimeBuf::default();
        repo.tag(
            name,
            id,
            gix::objs::Kind::Commit,
            Some(tagger.to_ref(&mut time_buf)),
            message,
            PreviousValue::Any,
        )
        .unwrap_or_else(|e| panic!("failed to tag `{name}`: {e}"));
    }

    /// Delete `refname` (`refs/tags/v1`), as `git update-ref -d`.
    pub fn delete_ref(&self, refname: &str) {
        let repo = self.open();
        let edit = RefEdit {
            change: Change::Delete {
                expected: PreviousValue::Any,
                log: RefLog::AndReference,
            },
            name: FullName::try_from(refname).expect("`refname` is a full reference name"),
            deref: false,
        };
        repo.edit_references(Some(edit))
            .unwrap_or_else(|e| panic!("failed to delete `{refname}`: {e}"));
    }

    fn open(&self) -> Repository {
        gix::open_opts(self.path(), gix::open::Options::isolated())
            .expect("failed to open the test repository")
    }
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("refinery-git-test-")
        .tempdir()
        .expect("failed to create a temporary directory")
}

/// Point `HEAD` at `refs/heads/main`, whatever `init.defaultBranch` says.
fn point_head_at_main(repo: &Repository) {
    let head = RefEdit {
        change: Change::Update {
            log: LogChange {
                mode: RefLog::AndReference,
                force_create_reflog: false,
                message: "init".into(),
            },
            expected: PreviousValue::Any,
            new: Target::Symbolic(
                FullName::try_from("refs/heads/main").expect("`refs/heads/main` is valid"),
            ),
        },
        name: FullName::try_from("HEAD").expect("`HEAD` is valid"),
        deref: false,
    };
    repo.edit_references_as(Some(head), None)
        .expect("failed to point `HEAD` at `refs/heads/main`");
}

/// Every regular file below `dir`, as (repository path, file, executable), skipping `.git` at the
/// root and symlinks.
fn collect_files(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf, bool)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("failed to list `{}`: {e}", dir.display()))
        .map(|entry| entry.expect("failed to read a directory entry"))
        .collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name();
        let name = name
            .to_str()
            .unwrap_or_else(|| panic!("non-UTF-8 file name {name:?} in a test repository"));
        if prefix.is_empty() && name == ".git" {
            continue;
        }
        let rel = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        };
        let file_type = entry.file_type().expect("failed to read a file type");
        if file_type.is_dir() {
            collect_files(&entry.path(), &rel, out);
        } else if file_type.is_file() {
            out.push((rel, entry.path(), is_executable(&entry)));
        }
    }
}

#[cfg(unix)]
fn is_executable(entry: &std::fs::DirEntry) -> bool {
    use std::os::unix::fs::PermissionsExt;
    entry
        .metadata()
        .map(|m| m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn is_executable(_entry: &std::fs::DirEntry) -> bool {
    false
}
