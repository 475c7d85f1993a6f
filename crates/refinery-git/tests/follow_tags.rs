//! `--follow-tag`: the remote's tags are fetched and the highest matching one, in version order,
//! is what the daemon enforces. A bare `TestRepo` plays the remote.

use refinery_git::{GitError, GitSource, TagFetch, TagPattern, TagTip, TestRepo};

fn pattern(p: &str) -> TagPattern {
    TagPattern::new(p).expect("a valid pattern")
}

fn fetch(source: &GitSource, p: &str) -> TagFetch {
    source
        .fetch_tags(&pattern(p))
        .expect("fetch succeeds")
        .expect("the repository has a remote")
}

fn tip(name: &str, commit: &str) -> Option<TagTip> {
    Some(TagTip {
        name: name.to_owned(),
        commit: commit.to_owned(),
    })
}

/// A remote with three commits, and a clone made after the first.
fn remote_with_commits() -> (TestRepo, TestRepo, [String; 3]) {
    let remote = TestRepo::bare();
    remote.write("refinery.yaml", "version: 1\n");
    let c1 = remote.commit("one");
    let clone = TestRepo::clone_of(&remote);
    remote.write("refinery.yaml", "version: 2\n");
    let c2 = remote.commit("two");
    remote.write("refinery.yaml", "version: 3\n");
    let c3 = remote.commit("three");
    (remote, clone, [c1, c2, c3])
}

#[test]
fn fetch_tags_highest_by_version_not_by_string() {
    let (remote, clone, [c1, c2, c3]) = remote_with_commits();
    remote.tag("v1.2.0", &c1);
    remote.tag("v1.10.0", &c3);
    remote.tag("v1.9.0", &c2);
    remote.tag("other-9.9.9", &c2);
    let source = clone.source();
    let got = fetch(&source, "v*");
    assert_eq!(got.remote, "origin");
    assert_eq!(got.matching, 3);
    assert_eq!(got.highest, tip("v1.10.0", &c3));
    // The commit came with the fetch and can be read.
    assert_eq!(
        source
            .read_file(&c3, "refinery.yaml")
            .expect("read")
            .as_deref(),
        Some(&b"version: 3\n"[..])
    );
    // Branches are not touched.
    assert_eq!(source.head_of("refs/heads/main").expect("read"), Some(c1));
}

#[test]
fn fetch_tags_annotated_tag_resolves_to_its_commit() {
    let (remote, clone, [_, c2, _]) = remote_with_commits();
    remote.tag_annotated("v2.0.0", &c2, "release 2.0.0");
    let got = fetch(&clone.source(), "v*");
    assert_eq!(got.highest, tip("v2.0.0", &c2));
}

#[test]
fn fetch_tags_new_moved_and_deleted_tags_are_followed() {
    let (remote, clone, [c1, c2, c3]) = remote_with_commits();
    let source = clone.source();
    assert_eq!(fetch(&source, "v*").highest, None, "no tags yet");

    remote.tag("v1.0.0", &c1);
    assert_eq!(fetch(&source, "v*").highest, tip("v1.0.0", &c1));

    remote.tag("v1.1.0", &c2);
    assert_eq!(fetch(&source, "v*").highest, tip("v1.1.0", &c2));

    // Moved on the remote (force-pushed): followed.
    remote.tag("v1.1.0", &c3);
    assert_eq!(fetch(&source, "v*").highest, tip("v1.1.0", &c3));

    // Deleted on the remote: the one below it again, though the clone still has the old tag.
    remote.delete_ref("refs/tags/v1.1.0");
    let got = fetch(&source, "v*");
    assert_eq!(got.highest, tip("v1.0.0", &c1));
    assert_eq!(got.matching, 1);
}

#[test]
fn fetch_tags_pre_release_counts_below_its_release() {
    let (remote, clone, [c1, c2, c3]) = remote_with_commits();
    remote.tag("v1.0.0", &c1);
    remote.tag("v2.0.0-rc.1", &c2);
    let source = clone.source();
    assert_eq!(fetch(&source, "v*").highest, tip("v2.0.0-rc.1", &c2));
    remote.tag("v2.0.0", &c3);
    assert_eq!(fetch(&source, "v*").highest, tip("v2.0.0", &c3));
    // A narrower pattern keeps to one line of releases.
    assert_eq!(fetch(&source, "v1.*").highest, tip("v1.0.0", &c1));
}

#[test]
fn fetch_tags_without_remote_is_none_and_local_tags_resolve() {
    let repo = TestRepo::new();
    repo.write("refinery.yaml", "version: 1\n");
    let c1 = repo.commit("one");
    repo.write("refinery.yaml", "version: 2\n");
    let c2 = repo.commit("two");
    repo.tag("v0.9.0", &c2);
    repo.tag_annotated("v0.10.0", &c1, "ten");
    let source = repo.source();
    assert_eq!(source.fetch_tags(&pattern("v*")).expect("no error"), None);
    assert_eq!(
        source.highest_tag(&pattern("v*")).expect("read"),
        tip("v0.10.0", &c1)
    );
    assert_eq!(source.highest_tag(&pattern("x*")).expect("read"), None);
}

#[test]
fn fetch_tags_unreachable_remote_is_an_error_naming_it() {
    let repo = TestRepo::new();
    repo.write("refinery.yaml", "version: 1\n");
    repo.commit("one");
    repo.add_remote("origin", "/nonexistent/refinery-remote.git");
    let err = repo
        .source()
        .fetch_tags(&pattern("v*"))
        .expect_err("unreachable");
    assert!(
        matches!(err, GitError::RemoteUnreachable { ref remote, .. } if remote == "origin"),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

#[test]
fn fetch_tags_several_remotes_without_origin_is_ambiguous() {
    let remote = TestRepo::bare();
    remote.write("refinery.yaml", "version: 1\n");
    remote.commit("one");
    let repo = TestRepo::new();
    let url = remote.path().display().to_string();
    repo.add_remote("a", &url);
    repo.add_remote("b", &url);
    let err = repo
        .source()
        .fetch_tags(&pattern("v*"))
        .expect_err("ambiguous");
    assert!(
        matches!(err, GitError::TagRemoteAmbiguous { .. }),
        "{err:?}"
    );
    assert!(err.hints()[0].contains("`a`, `b`"), "{:?}", err.hints());
}
