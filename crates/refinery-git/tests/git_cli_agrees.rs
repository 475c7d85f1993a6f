//! Cross-check with the real git CLI when it is installed. The crate never runs git itself; these
//! tests only confirm that what gix wrote is what git reads. Skipped where `/usr/bin/git` is absent.

use std::path::Path;
use std::process::Command;

use refinery_git::TestRepo;

const GIT: &str = "/usr/bin/git";

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    if !Path::new(GIT).exists() {
        eprintln!("skipped: `{GIT}` is not installed");
        return None;
    }
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
    Some(String::from_utf8(out.stdout).expect("utf-8 output"))
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

    let Some(log) = git(repo.path(), &["log", "--format=%H %s", "refinery/ledger"]) else {
        return;
    };
    assert_eq!(log, format!("{l2} ledger: two\n{l1} ledger: one\n"));
    let Some(shown) = git(
        repo.path(),
        &["show", "refinery/ledger:ledger/container_ledger.jsonl"],
    ) else {
        return;
    };
    assert_eq!(shown, "1\n2\n");
    let Some(branch) = git(repo.path(), &["symbolic-ref", "HEAD"]) else {
        return;
    };
    assert_eq!(branch, "refs/heads/main\n");
    let Some(main) = git(repo.path(), &["rev-parse", "HEAD"]) else {
        return;
    };
    assert_eq!(main.trim(), head);
    let Some(status) = git(repo.path(), &["status", "--porcelain"]) else {
        return;
    };
    assert_eq!(status, "", "TestRepo leaves the index matching the commit");
    let Some(reflog) = git(repo.path(), &["reflog", "--format=%H", "refinery/ledger"]) else {
        return;
    };
    assert_eq!(reflog, format!("{l2}\n{l1}\n"), "ref updates are logged");
    let Some(_) = git(repo.path(), &["fsck", "--strict", "--no-progress"]) else {
        return;
    };
}

#[test]
fn git_cli_accepts_empty_trees() {
    let repo = TestRepo::new();
    let empty = repo.commit("nothing yet");
    let ledger = repo
        .source()
        .commit_files_to_ref("refs/heads/refinery/ledger", &[], "empty", "R", "r@x", 1)
        .expect("empty ledger commit");
    let Some(tree) = git(repo.path(), &["rev-parse", &format!("{empty}^{{tree}}")]) else {
        return;
    };
    assert_eq!(tree.trim(), "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
    let Some(log) = git(repo.path(), &["log", "--format=%H", "refinery/ledger"]) else {
        return;
    };
    assert_eq!(log.trim(), ledger);
    let Some(_) = git(repo.path(), &["fsck", "--strict", "--no-progress"]) else {
        return;
    };
}
