//! Reading the desired state from commits of real repositories built with `TestRepo`.

use refinery_git::{
    GitError, GitSource, TEST_AUTHOR_EMAIL, TEST_AUTHOR_NAME, TEST_EPOCH, TEST_TIME_STEP, TestRepo,
};

/// Two commits: c1 with `refinery.yaml` v1 and `manifests/a.yml`; c2 changes the yaml, adds
/// `manifests/sub/b.yml`, removes `manifests/a.yml`.
fn two_commits() -> (TestRepo, String, String) {
    let repo = TestRepo::new();
    repo.write("refinery.yaml", "version: 1\n");
    repo.write("manifests/a.yml", "a\n");
    let c1 = repo.commit("first\n\nbody of the first commit");
    repo.write("refinery.yaml", "version: 2\n");
    repo.write("manifests/sub/b.yml", "b\n");
    repo.remove("manifests/a.yml");
    let c2 = repo.commit("second");
    (repo, c1, c2)
}

#[test]
fn resolve_head_returns_latest_commit_info() {
    let (repo, _c1, c2) = two_commits();
    let info = repo.source().resolve("HEAD").expect("HEAD resolves");
    assert_eq!(info.id, c2);
    assert_eq!(info.id.len(), 40);
    assert_eq!(info.short, c2[..12]);
    assert_eq!(info.summary, "second");
    assert_eq!(
        info.author,
        format!("{TEST_AUTHOR_NAME} <{TEST_AUTHOR_EMAIL}>")
    );
    assert_eq!(info.time, TEST_EPOCH + TEST_TIME_STEP);
}

#[test]
fn resolve_branch_tag_short_sha_and_parent_find_commits() {
    let (repo, c1, c2) = two_commits();
    repo.set_ref("refs/tags/v1", &c1);
    repo.set_ref("refs/heads/release", &c1);
    let source = repo.source();
    let id = |rev: &str| source.resolve(rev).expect(rev).id;
    assert_eq!(id("main"), c2);
    assert_eq!(id("refs/heads/main"), c2);
    assert_eq!(id("release"), c1);
    assert_eq!(id("v1"), c1);
    assert_eq!(id(&c2[..7]), c2);
    assert_eq!(id(&c1), c1);
    assert_eq!(id("HEAD~1"), c1);
    assert_eq!(id("main^"), c1);
    let first = source.resolve(&c1).expect("c1 resolves");
    assert_eq!(first.summary, "first", "summary is the first line only");
    assert_eq!(first.time, TEST_EPOCH);
}

#[test]
fn read_file_at_older_commit_returns_old_content() {
    let (repo, c1, c2) = two_commits();
    // Move the work tree on too: reads must not look at it.
    repo.write("refinery.yaml", "version: 3 (uncommitted)\n");
    let source = repo.source();
    assert_eq!(
        source.read_file(&c1, "refinery.yaml").expect("read"),
        Some(b"version: 1\n".to_vec())
    );
    assert_eq!(
        source.read_file("HEAD", "refinery.yaml").expect("read"),
        Some(b"version: 2\n".to_vec())
    );
    assert_eq!(
        source.read_file(&c1, "manifests/a.yml").expect("read"),
        Some(b"a\n".to_vec())
    );
    assert_eq!(
        source.read_file(&c2, "manifests/a.yml").expect("read"),
        None
    );
    assert_eq!(source.read_file(&c2, "missing.yaml").expect("read"), None);
    assert_eq!(
        source.read_file(&c2, "manifests").expect("read"),
        None,
        "a directory is not a file"
    );
    assert_eq!(
        source
            .read_file(&c2, "./manifests//sub/b.yml")
            .expect("read"),
        Some(b"b\n".to_vec()),
        "sloppy paths are normalized"
    );
}

#[test]
fn read_tree_at_older_commit_returns_old_files() {
    let (repo, c1, c2) = two_commits();
    repo.write("manifests/new.yml", "uncommitted\n");
    let source = repo.source();

    let old = source.read_tree(&c1, "").expect("read_tree");
    let keys: Vec<&str> = old.keys().map(String::as_str).collect();
    assert_eq!(keys, ["manifests/a.yml", "refinery.yaml"]);
    assert_eq!(old["refinery.yaml"], b"version: 1\n");

    let new = source.read_tree(&c2, "manifests").expect("read_tree");
    let keys: Vec<&str> = new.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["manifests/sub/b.yml"],
        "only blobs, keyed by repo path"
    );

    let sub = source.read_tree(&c2, "manifests/sub/").expect("read_tree");
    assert_eq!(sub["manifests/sub/b.yml"], b"b\n");

    assert!(
        source
            .read_tree(&c2, "nowhere")
            .expect("read_tree")
            .is_empty()
    );
    assert!(
        source
            .read_tree(&c2, "refinery.yaml")
            .expect("read_tree")
            .is_empty(),
        "a file is not a directory"
    );
}

#[test]
fn read_file_with_parent_path_is_invalid_path() {
    let (repo, _c1, _c2) = two_commits();
    let err = repo
        .source()
        .read_file("HEAD", "../etc/passwd")
        .expect_err("`..` is refused");
    assert!(matches!(err, GitError::InvalidPath { .. }), "{err:?}");
}

#[test]
fn open_plain_directory_is_not_a_repo() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = GitSource::open(dir.path()).expect_err("no repository there");
    assert!(matches!(err, GitError::NotARepo { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with("failed to find a git repository at `"),
        "{message}"
    );
    assert!(err.hints()[0].contains("git init"), "{:?}", err.hints());
}

#[test]
fn open_subdirectory_of_repo_is_not_a_repo() {
    let (repo, _c1, _c2) = two_commits();
    let err = GitSource::open(&repo.path().join("manifests")).expect_err("no upward search");
    assert!(matches!(err, GitError::NotARepo { .. }), "{err:?}");
}

#[test]
fn open_dot_git_directory_works() {
    let (repo, _c1, c2) = two_commits();
    let source = GitSource::open(&repo.path().join(".git")).expect("open .git");
    assert_eq!(source.resolve("HEAD").expect("HEAD").id, c2);
}

#[test]
fn resolve_unknown_rev_is_rev_not_found() {
    let (repo, _c1, _c2) = two_commits();
    let source = repo.source();
    for rev in ["no-such-branch", "deadbeef", "HEAD~5"] {
        let err = source.resolve(rev).expect_err(rev);
        assert!(
            matches!(&err, GitError::RevNotFound { rev: r, .. } if r == rev),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("failed to resolve revision `{rev}`")
        );
        assert!(!err.hints().is_empty());
    }
}

#[test]
fn resolve_tree_rev_is_not_a_commit() {
    let (repo, _c1, _c2) = two_commits();
    let err = repo
        .source()
        .resolve("HEAD:manifests")
        .expect_err("a tree is not a commit");
    assert!(matches!(err, GitError::NotACommit { .. }), "{err:?}");
}

#[test]
fn resolve_in_empty_repo_is_unborn_head() {
    let repo = TestRepo::new();
    let source = repo.source();
    for rev in ["HEAD", "main"] {
        let err = source.resolve(rev).expect_err("no commits yet");
        assert!(
            matches!(&err, GitError::UnbornHead { branch, .. } if branch == "main"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("failed to resolve `{rev}`: branch `main` has no commits yet")
        );
        assert!(err.hints()[0].contains("commit"), "{:?}", err.hints());
    }
    assert!(matches!(
        source.read_file("HEAD", "refinery.yaml"),
        Err(GitError::UnbornHead { .. })
    ));
    assert_eq!(source.head_of("HEAD").expect("head_of"), None);
}

#[test]
fn worktree_differs_reports_edited_missing_and_new_files() {
    let (repo, _c1, _c2) = two_commits();
    let source = repo.source();
    let paths = ["refinery.yaml", "manifests/sub/b.yml", "untracked.yml"];
    assert_eq!(
        source.worktree_differs("HEAD", &paths).expect("compare"),
        Vec::<String>::new(),
        "a clean work tree differs nowhere"
    );

    repo.write("refinery.yaml", "version: 2-edited\n");
    repo.remove("manifests/sub/b.yml");
    repo.write("untracked.yml", "x\n");
    assert_eq!(
        source.worktree_differs("HEAD", &paths).expect("compare"),
        paths.to_vec(),
        "edited, deleted and new-on-disk files all differ"
    );
}

#[test]
fn worktree_differs_against_older_commit_reports_changed_file() {
    let (repo, c1, _c2) = two_commits();
    let differs = repo
        .source()
        .worktree_differs(&c1, &["refinery.yaml", "manifests/a.yml", "absent.yml"])
        .expect("compare");
    assert_eq!(differs, ["refinery.yaml", "manifests/a.yml"]);
}

#[test]
fn workdir_is_the_work_tree() {
    let repo = TestRepo::new();
    let source = repo.source();
    let workdir = source.workdir().expect("non-bare");
    assert_eq!(
        workdir.canonicalize().expect("canonicalize"),
        repo.path().canonicalize().expect("canonicalize")
    );
}

#[test]
fn git_source_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<GitSource>();
    assert_send_sync::<GitError>();
}
