//! Ledger commits: object-level writes to a ref that is not checked out.

use refinery_git::{CommitMeta, GitError, GitSource, TestRepo};

const LEDGER_REF: &str = "refs/heads/refinery/ledger";
const LEDGER_FILE: &str = "ledger/container_ledger.jsonl";

fn file(path: &str, contents: &str) -> (String, Vec<u8>) {
    (path.to_owned(), contents.as_bytes().to_vec())
}

fn meta(message: &str) -> CommitMeta<'_> {
    CommitMeta {
        message,
        author_name: "Refinery",
        author_email: "refinery@lyra",
        time: 1_800_000_000,
    }
}

/// The parents of `tip`, first-parent walk, newest first, read with gix directly.
fn first_parent_chain(repo: &TestRepo, tip: &str) -> Vec<(String, String)> {
    let repo = gix::open(repo.path()).expect("gix opens the test repo");
    let tip = gix::ObjectId::from_hex(tip.as_bytes()).expect("hex id");
    let walk = repo
        .rev_walk([tip])
        .first_parent_only()
        .all()
        .expect("walk starts");
    walk.map(|info| {
        let info = info.expect("walk step");
        let commit = info.object().expect("commit object");
        let summary = commit.message().expect("message").summary().to_string();
        (info.id.to_string(), summary)
    })
    .collect()
}

#[test]
fn commit_files_to_ref_twice_chains_two_commits_and_leaves_head_alone() {
    let repo = TestRepo::new();
    repo.write("refinery.yaml", "containers: []\n");
    let head = repo.commit("desired state");
    let source = repo.source();

    assert_eq!(source.head_of(LEDGER_REF).expect("head_of"), None);
    let l1 = source
        .commit_files_to_ref(
            LEDGER_REF,
            &[file(LEDGER_FILE, "{\"seq\":1}\n")],
            "ledger: 1 record",
            "Refinery",
            "refinery@lyra",
            1_800_000_000,
        )
        .expect("first ledger commit");
    let l2 = source
        .commit_files_to_ref(
            LEDGER_REF,
            &[file(LEDGER_FILE, "{\"seq\":1}\n{\"seq\":2}\n")],
            "ledger: 2 records",
            "Refinery",
            "refinery@lyra",
            1_800_000_060,
        )
        .expect("second ledger commit");
    assert_ne!(l1, l2);

    // The ref moved; HEAD, its branch and the work tree did not.
    assert_eq!(
        source.head_of(LEDGER_REF).expect("head_of"),
        Some(l2.clone())
    );
    assert_eq!(source.head_of("HEAD").expect("head_of"), Some(head.clone()));
    assert_eq!(
        source.head_of("refs/heads/main").expect("head_of"),
        Some(head.clone())
    );
    assert_eq!(source.resolve("HEAD").expect("HEAD").id, head);
    assert!(!repo.path().join("ledger").exists(), "work tree untouched");
    assert_eq!(
        source.read_file("HEAD", LEDGER_FILE).expect("read"),
        None,
        "the checked-out branch has no ledger"
    );

    // The file is readable at the tip, and at the first commit in its old form.
    assert_eq!(
        source.read_file(LEDGER_REF, LEDGER_FILE).expect("read"),
        Some(b"{\"seq\":1}\n{\"seq\":2}\n".to_vec())
    );
    assert_eq!(
        source.read_file(&l1, LEDGER_FILE).expect("read"),
        Some(b"{\"seq\":1}\n".to_vec())
    );

    // gix sees the chain: l2 → l1, and l1 is a root commit (the ledger is its own history).
    assert_eq!(
        first_parent_chain(&repo, &l2),
        [
            (l2.clone(), "ledger: 2 records".to_owned()),
            (l1.clone(), "ledger: 1 record".to_owned()),
        ]
    );
    let info = source.resolve(&l2).expect("resolve ledger tip");
    assert_eq!(info.author, "Refinery <refinery@lyra>");
    assert_eq!(info.time, 1_800_000_060);
}

#[test]
fn commit_files_to_ref_keeps_other_files_of_the_tip() {
    let repo = TestRepo::new();
    let source = repo.source();
    source
        .commit_files_to_ref(
            LEDGER_REF,
            &[file(LEDGER_FILE, "a\n"), file("README", "ledger branch\n")],
            "one",
            "Refinery",
            "refinery@lyra",
            1,
        )
        .expect("first");
    source
        .commit_files_to_ref(
            LEDGER_REF,
            &[file("ledger/other.jsonl", "b\n")],
            "two",
            "Refinery",
            "refinery@lyra",
            2,
        )
        .expect("second");
    let tree = source.read_tree(LEDGER_REF, "").expect("read_tree");
    let keys: Vec<&str> = tree.keys().map(String::as_str).collect();
    assert_eq!(keys, ["README", LEDGER_FILE, "ledger/other.jsonl"]);
}

#[test]
fn commit_files_onto_stale_tip_is_ref_moved() {
    let repo = TestRepo::new();
    let source = repo.source();
    let l1 = source
        .commit_files_onto(LEDGER_REF, None, &[file(LEDGER_FILE, "1\n")], &meta("one"))
        .expect("first");
    let l2 = source
        .commit_files_onto(
            LEDGER_REF,
            Some(&l1),
            &[file(LEDGER_FILE, "2\n")],
            &meta("two"),
        )
        .expect("second");

    // A writer that still believes the tip is l1 loses the race.
    let err = source
        .commit_files_onto(
            LEDGER_REF,
            Some(&l1),
            &[file(LEDGER_FILE, "x\n")],
            &meta("stale"),
        )
        .expect_err("the ref moved");
    assert!(
        matches!(&err, GitError::RefMoved { expected: Some(e), .. } if *e == l1),
        "{err:?}"
    );
    assert!(err.is_conflict());
    assert_eq!(
        err.to_string(),
        format!("failed to update `{LEDGER_REF}`: it moved since it was read")
    );

    // A writer that believes the ref does not exist yet loses too.
    let err = source
        .commit_files_onto(
            LEDGER_REF,
            None,
            &[file(LEDGER_FILE, "y\n")],
            &meta("fresh"),
        )
        .expect_err("the ref exists");
    assert!(
        matches!(err, GitError::RefMoved { expected: None, .. }),
        "{err:?}"
    );

    assert_eq!(source.head_of(LEDGER_REF).expect("head_of"), Some(l2));
}

#[test]
fn commit_files_to_locked_ref_is_locked_and_retryable() {
    let repo = TestRepo::new();
    let source = repo.source();
    let lock = repo.path().join(".git/refs/heads/refinery/ledger.lock");
    std::fs::create_dir_all(lock.parent().expect("parent")).expect("mkdir");
    std::fs::write(&lock, "").expect("hold the lock");

    let err = source
        .commit_files_to_ref(
            LEDGER_REF,
            &[file(LEDGER_FILE, "1\n")],
            "one",
            "R",
            "r@x",
            1,
        )
        .expect_err("the ref is locked");
    assert!(matches!(&err, GitError::Locked { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(
        err.hints().iter().any(|h| h.contains("ledger.lock")),
        "{:?}",
        err.hints()
    );
    assert_eq!(source.head_of(LEDGER_REF).expect("head_of"), None);

    std::fs::remove_file(&lock).expect("release the lock");
    source
        .commit_files_to_ref(
            LEDGER_REF,
            &[file(LEDGER_FILE, "1\n")],
            "one",
            "R",
            "r@x",
            1,
        )
        .expect("works once the lock is gone");
}

#[test]
fn commit_files_to_checked_out_branch_is_refused() {
    let repo = TestRepo::new();
    repo.write("refinery.yaml", "x\n");
    let head = repo.commit("first");
    let source = repo.source();
    let err = source
        .commit_files_to_ref("refs/heads/main", &[file("a", "b")], "m", "R", "r@x", 1)
        .expect_err("HEAD's branch is off limits");
    assert!(matches!(err, GitError::RefCheckedOut { .. }), "{err:?}");
    assert_eq!(source.head_of("HEAD").expect("head_of"), Some(head));
}

#[test]
fn commit_files_with_bad_names_are_refused() {
    let repo = TestRepo::new();
    let source = repo.source();
    for refname in [
        "HEAD",
        "refinery/ledger",
        "refs/heads/a..b",
        "refs/heads/x.lock",
    ] {
        let err = source
            .commit_files_to_ref(refname, &[file("a", "b")], "m", "R", "r@x", 1)
            .expect_err(refname);
        assert!(
            matches!(err, GitError::InvalidRef { .. }),
            "{refname}: {err:?}"
        );
    }
    for path in ["../escape", ".git/config", "", "/"] {
        let err = source
            .commit_files_to_ref(LEDGER_REF, &[file(path, "b")], "m", "R", "r@x", 1)
            .expect_err(path);
        assert!(
            matches!(err, GitError::InvalidPath { .. }),
            "{path}: {err:?}"
        );
    }
    assert_eq!(source.head_of(LEDGER_REF).expect("head_of"), None);
}

#[test]
fn ledger_in_bare_repo_works_and_worktree_differs_is_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    gix::init_bare(dir.path()).expect("init bare");
    let source = GitSource::open(dir.path()).expect("open bare");
    assert_eq!(source.workdir(), None);
    let l1 = source
        .commit_files_to_ref(
            LEDGER_REF,
            &[file(LEDGER_FILE, "1\n")],
            "one",
            "R",
            "r@x",
            1,
        )
        .expect("commit in a bare repo");
    assert_eq!(
        source
            .worktree_differs(&l1, &[LEDGER_FILE])
            .expect("bare compare"),
        Vec::<String>::new()
    );
    assert_eq!(
        source.read_file(&l1, LEDGER_FILE).expect("read"),
        Some(b"1\n".to_vec())
    );
}
