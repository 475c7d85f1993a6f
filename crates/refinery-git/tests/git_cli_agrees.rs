//! Cross-check with the real git CLI. The crate never runs git itself; these tests only confirm
//! that what gix wrote is what git reads. They need `/usr/bin/git` and fail without it (never
//! skip): `scripts/test.sh` installs it.

use std::path::Path;
use std::process::Command;

use refinery_git::TestRepo;

const GIT: &str = "/usr/bin/git";

fn git(dir: &Path, args: &[&str]) -> String {
    assert!(
        Path::new(GIT).exists(),
        "`{GIT}` is not installed: these tests check gix's commits with git (`apt-get install git`; scripts/test.sh does it)"
    );
    let out = Command::new(GIT)
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[test]
fn git_cli_reads_ledger_commits_and_a_clean_work_tree() {
    let repo = TestRepo::new();
    repo.write("refinery.yaml", "containers: []\n");
    repo.write("manifests/docker/compose.yml", "services: {}\n");
    let head = repo.commit("desired state");
    let source = repo.source();
    let l1 = source
        .commit_files_to_ref(
            "refs/heads/refinery/ledger",
            &[("ledger/container_ledger.jsonl".to_owned(), b"1\n".to_vec())],
            "ledger: one",
            "Refinery",
            "refinery@lyra",
            1_800_000_000,
        )
        .expect("first");
    let l2 = source
        .commit_files_to_ref(
            "refs/heads/refinery/ledger",
            &[(
                "ledger/container_ledger.jsonl".to_owned(),
                b"1\n2\n".to_vec(),
            )],
            "ledger: two",
            "Refinery",
            "refinery@lyra",
            1_800_000_060,
        )
        .expect("second");

    let log = git(repo.path(), &["log", "--format=%H %s", "refinery/ledger"]);
    assert_eq!(log, format!("{l2} ledger: two\n{l1} ledger: one\n"));
    let shown = git(
        repo.path(),
        &["show", "refinery/ledger:ledger/container_ledger.jsonl"],
    );
    assert_eq!(shown, "1\n2\n");
    let branch = git(repo.path(), &["symbolic-ref", "HEAD"]);
    assert_eq!(branch, "refs/heads/main\n");
    let main = git(repo.path(), &["rev-parse", "HEAD"]);
    assert_eq!(main.trim(), head);
    let status = git(repo.path(), &["status", "--porcelain"]);
    assert_eq!(status, "", "TestRepo leaves the index matching the commit");
    let reflog = git(repo.path(), &["reflog", "--format=%H", "refinery/ledger"]);
    assert_eq!(reflog, format!("{l2}\n{l1}\n"), "ref updates are logged");
    git(repo.path(), &["fsck", "--strict", "--no-progress"]);
}

#[test]
fn git_cli_accepts_empty_trees() {
    let repo = TestRepo::new();
    let empty = repo.commit("nothing yet");
    let ledger = repo
        .source()
        .commit_files_to_ref("refs/heads/refinery/ledger", &[], "empty", "R", "r@x", 1)
        .expect("empty ledger commit");
    let tree = git(repo.path(), &["rev-parse", &format!("{empty}^{{tree}}")]);
    assert_eq!(tree.trim(), "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
    let log = git(repo.path(), &["log", "--format=%H", "refinery/ledger"]);
    assert_eq!(log.trim(), ledger);
    git(repo.path(), &["fsck", "--strict", "--no-progress"]);
}
