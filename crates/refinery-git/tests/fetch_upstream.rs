//! Fetching the deployed branch from a remote: a bare `TestRepo` plays the remote, a clone of it
//! (or a repository given a remote by hand) the daemon's repository. File remotes make gix run
//! `git-upload-pack`, as git does.

use std::io::{Read, Write};
use std::net::TcpListener;

use refinery_git::{FetchOutcome, GitError, GitSource, TestRepo};

/// A bare remote with one commit on `main` and a clone of it.
fn remote_and_clone() -> (TestRepo, TestRepo, String) {
    let remote = TestRepo::bare();
    remote.write("refinery.yaml", "version: 1\n");
    let c1 = remote.commit("first");
    let clone = TestRepo::clone_of(&remote);
    (remote, clone, c1)
}

fn fetch(source: &GitSource, branch: &str) -> FetchOutcome {
    source
        .fetch_upstream(branch)
        .expect("fetch succeeds")
        .expect("the repository has a remote")
}

#[test]
fn fetch_upstream_new_remote_commit_moves_tracking_ref() {
    let (remote, clone, c1) = remote_and_clone();
    // One long-lived source, as the daemon holds it, with its caches warm before the fetch.
    let source = clone.source();
    let tracking = source.tracking_ref("main").expect("tracking ref");
    assert_eq!(tracking, "refs/remotes/origin/main");
    assert_eq!(source.resolve(&tracking).expect("resolves").id, c1);

    remote.write("refinery.yaml", "version: 2\n");
    remote.write("manifests/web.yml", "web\n");
    let c2 = remote.commit("second");
    let outcome = fetch(&source, "main");

    assert_eq!(
        outcome,
        FetchOutcome {
            remote: "origin".to_owned(),
            branch: "main".to_owned(),
            before: Some(c1.clone()),
            after: Some(c2.clone()),
        }
    );
    assert!(outcome.changed());
    assert_eq!(outcome.tracking_ref(), tracking);
    let info = source
        .resolve(&tracking)
        .expect("the fetched commit resolves");
    assert_eq!(info.id, c2);
    assert_eq!(info.summary, "second");
    assert_eq!(
        source
            .read_file(&tracking, "refinery.yaml")
            .expect("read")
            .as_deref(),
        Some(&b"version: 2\n"[..])
    );
    let tree = source.read_tree(&tracking, "manifests").expect("tree");
    assert_eq!(
        tree.get("manifests/web.yml").map(Vec::as_slice),
        Some(&b"web\n"[..])
    );
    // Fetching never moves the local branch or HEAD.
    assert_eq!(
        source.head_of("refs/heads/main").expect("read"),
        Some(c1.clone())
    );
    assert_eq!(source.resolve("HEAD").expect("HEAD").id, c1);
}

#[test]
fn fetch_upstream_seen_by_another_source_opened_before() {
    let (remote, clone, c1) = remote_and_clone();
    let daemon = clone.source();
    assert_eq!(daemon.resolve("origin/main").expect("resolves").id, c1);
    let c2 = {
        remote.write("refinery.yaml", "version: 2\n");
        remote.commit("second")
    };
    let fetcher = clone.source();
    assert!(fetch(&fetcher, "main").changed());
    assert_eq!(daemon.resolve("origin/main").expect("resolves").id, c2);
}

#[test]
fn fetch_upstream_twice_without_new_commit_is_unchanged() {
    let (remote, clone, _c1) = remote_and_clone();
    remote.write("refinery.yaml", "version: 2\n");
    let c2 = remote.commit("second");
    let source = clone.source();
    assert!(fetch(&source, "main").changed());

    let again = fetch(&source, "main");
    assert!(!again.changed(), "{again:?}");
    assert_eq!(again.before.as_deref(), Some(c2.as_str()));
    assert_eq!(again.after.as_deref(), Some(c2.as_str()));
}

#[test]
fn fetch_upstream_first_fetch_creates_tracking_ref() {
    let remote = TestRepo::bare();
    remote.write("refinery.yaml", "version: 1\n");
    let c1 = remote.commit("first");
    let local = TestRepo::new();
    local.write("refinery.yaml", "local\n");
    local.commit("local only");
    local.add_remote("origin", &remote.path().display().to_string());

    let source = local.source();
    let outcome = fetch(&source, "main");
    assert_eq!(outcome.before, None);
    assert_eq!(outcome.after.as_deref(), Some(c1.as_str()));
    assert!(outcome.changed());
    assert_eq!(
        source
            .resolve(&source.tracking_ref("main").expect("tracking ref"))
            .expect("resolves")
            .id,
        c1
    );
}

#[test]
fn fetch_upstream_file_url_works() {
    let (remote, clone, _c1) = remote_and_clone();
    clone.set_config(
        "remote.origin.url",
        &format!("file://{}", remote.path().display()),
    );
    let c2 = {
        remote.write("refinery.yaml", "version: 2\n");
        remote.commit("second")
    };
    let outcome = fetch(&clone.source(), "main");
    assert_eq!(outcome.after, Some(c2));
}

#[test]
fn fetch_upstream_force_pushed_branch_follows_remote() {
    let (remote, clone, c1) = remote_and_clone();
    remote.write("refinery.yaml", "version: 2\n");
    let c2 = remote.commit("second");
    let source = clone.source();
    assert_eq!(fetch(&source, "main").after.as_deref(), Some(c2.as_str()));

    // `git push --force` of an older commit: the tracking ref follows, the remote is the truth.
    remote.set_ref("refs/heads/main", &c1);
    let outcome = fetch(&source, "main");
    assert_eq!(outcome.before.as_deref(), Some(c2.as_str()));
    assert_eq!(outcome.after.as_deref(), Some(c1.as_str()));
}

#[test]
fn fetch_upstream_other_branch_fetches_only_that_branch() {
    let (remote, clone, c1) = remote_and_clone();
    remote.set_ref("refs/heads/production", &c1);
    remote.set_ref("refs/tags/v1", &c1);
    let source = clone.source();
    let outcome = fetch(&source, "production");
    assert_eq!(outcome.after.as_deref(), Some(c1.as_str()));
    assert_eq!(
        source
            .head_of("refs/remotes/origin/production")
            .expect("read"),
        Some(c1)
    );
    assert_eq!(
        source.head_of("refs/tags/v1").expect("read"),
        None,
        "no tags"
    );
}

#[test]
fn fetch_upstream_without_remote_is_none() {
    let repo = TestRepo::new();
    repo.write("refinery.yaml", "version: 1\n");
    repo.commit("first");
    let source = repo.source();
    assert_eq!(source.fetch_upstream("main").expect("no error"), None);
    assert_eq!(
        source.tracking_ref("main").expect("tracking ref"),
        "refs/heads/main"
    );
}

#[test]
fn fetch_upstream_unreachable_path_is_remote_unreachable_with_hint() {
    let (_remote, clone, c1) = remote_and_clone();
    let gone = clone.path().join("no-such-remote.git");
    let gone = gone.display().to_string();
    clone.set_config("remote.origin.url", &gone);
    let source = clone.source();

    let err = source.fetch_upstream("main").expect_err("nothing there");
    let GitError::RemoteUnreachable { remote, url, .. } = &err else {
        panic!("expected RemoteUnreachable, got {err:?}");
    };
    assert_eq!(remote, "origin");
    assert_eq!(url, &gone);
    assert_eq!(
        err.to_string(),
        format!("failed to reach remote `origin` at `{gone}`")
    );
    let hints = err.hints();
    assert!(
        hints[0].contains(&format!("`{gone}` exists and is a git repository")),
        "{hints:?}"
    );
    assert!(err.is_retryable());
    // The local repository is as it was.
    assert_eq!(
        source
            .resolve("refs/remotes/origin/main")
            .expect("resolves")
            .id,
        c1
    );
    assert_eq!(source.resolve("HEAD").expect("resolves").id, c1);
}

#[test]
fn fetch_upstream_branch_missing_on_remote_is_branch_not_found() {
    let (_remote, clone, _c1) = remote_and_clone();
    let err = clone
        .source()
        .fetch_upstream("release")
        .expect_err("no such branch");
    assert!(
        matches!(&err, GitError::RemoteBranchNotFound { branch, remote, .. }
            if branch == "release" && remote == "origin"),
        "{err:?}"
    );
    assert!(
        err.hints()[0].contains("git push origin release"),
        "{:?}",
        err.hints()
    );
}

#[test]
fn fetch_upstream_invalid_branch_name_is_invalid_ref() {
    let (_remote, clone, _c1) = remote_and_clone();
    let source = clone.source();
    for branch in ["", "a..b", "main~1", "-x lock"] {
        let err = source.fetch_upstream(branch).expect_err(branch);
        assert!(
            matches!(err, GitError::InvalidRef { .. }),
            "{branch}: {err:?}"
        );
    }
}

#[test]
fn fetch_upstream_branch_upstream_remote_is_used() {
    let a = TestRepo::bare();
    a.write("f", "a\n");
    let ca = a.commit("from a");
    let b = TestRepo::bare();
    b.write("f", "b\n");
    let cb = b.commit("from b");
    let local = TestRepo::new();
    local.add_remote("a", &a.path().display().to_string());
    local.add_remote("b", &b.path().display().to_string());

    // Two remotes, none named `origin`, no upstream: no guessing.
    let err = local
        .source()
        .fetch_upstream("main")
        .expect_err("ambiguous");
    assert!(
        matches!(&err, GitError::RemoteAmbiguous { remotes, .. } if remotes == &["a", "b"]),
        "{err:?}"
    );
    assert!(!err.hints().is_empty());

    local.set_config("branch.main.remote", "b");
    local.set_config("branch.main.merge", "refs/heads/main");
    let source = local.source();
    let outcome = fetch(&source, "main");
    assert_eq!(outcome.remote, "b");
    assert_eq!(outcome.after, Some(cb));
    assert_eq!(
        source.tracking_ref("main").expect("tracking ref"),
        "refs/remotes/b/main"
    );

    // `origin` wins over the others when the branch has no upstream.
    let other = TestRepo::new();
    other.add_remote("mirror", &b.path().display().to_string());
    other.add_remote("origin", &a.path().display().to_string());
    let outcome = fetch(&other.source(), "main");
    assert_eq!(outcome.remote, "origin");
    assert_eq!(outcome.after, Some(ca.clone()));

    // A single remote is used whatever its name.
    let single = TestRepo::new();
    single.add_remote("upstream", &a.path().display().to_string());
    let outcome = fetch(&single.source(), "main");
    assert_eq!(outcome.remote, "upstream");
    assert_eq!(outcome.after, Some(ca));
}

#[test]
fn fetch_upstream_remote_added_after_open_is_used() {
    let remote = TestRepo::bare();
    remote.write("f", "x\n");
    let c1 = remote.commit("first");
    let local = TestRepo::new();
    let source = local.source();
    assert_eq!(source.fetch_upstream("main").expect("no error"), None);

    local.add_remote("origin", &remote.path().display().to_string());
    assert_eq!(
        source.tracking_ref("main").expect("tracking ref"),
        "refs/remotes/origin/main"
    );
    assert_eq!(fetch(&source, "main").after, Some(c1));
}

#[test]
fn fetch_upstream_ssh_connection_refused_is_unreachable() {
    let (_remote, clone, _c1) = remote_and_clone();
    // Nothing listens on port 1; `ssh` fails to connect before any authentication.
    let url = "ssh://git@127.0.0.1:1/infra.git";
    clone.set_config("remote.origin.url", url);
    let err = clone.source().fetch_upstream("main").expect_err("refused");
    assert!(
        matches!(&err, GitError::RemoteUnreachable { url: u, .. } if u == url),
        "{err:?}"
    );
    assert!(err.hints()[0].contains("network"), "{:?}", err.hints());
}

/// `core.sshCommand` stands in for an ssh whose key the server refuses: it prints what OpenSSH
/// prints and exits 255.
#[cfg(unix)]
#[test]
fn fetch_upstream_ssh_permission_denied_is_auth_error_with_ssh_hint() {
    use std::os::unix::fs::PermissionsExt;

    let (_remote, clone, _c1) = remote_and_clone();
    let fake_ssh = clone.path().join("fake-ssh");
    std::fs::write(
        &fake_ssh,
        // The pause keeps stdout open until gix has read the message on stderr: on a loaded
        // machine an immediate exit can reach gix as a bare EOF first ("failed to fill whole
        // buffer"), which no classification can tell from a dropped connection.
        "#!/bin/sh\necho 'git@example.com: Permission denied (publickey).' >&2\nsleep 0.3\nexit 255\n",
    )
    .expect("write fake ssh");
    std::fs::set_permissions(&fake_ssh, std::fs::Permissions::from_mode(0o755))
        .expect("make fake ssh executable");
    clone.set_config("core.sshCommand", &fake_ssh.display().to_string());
    clone.set_config("remote.origin.url", "git@example.com:infra.git");

    let err = clone.source().fetch_upstream("main").expect_err("denied");
    assert!(
        matches!(&err, GitError::RemoteAuth { remote, .. } if remote == "origin"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "failed to authenticate to remote `origin` at `git@example.com:infra.git`"
    );
    assert!(
        err.hints()[0].contains("`ssh -T git@example.com`"),
        "{:?}",
        err.hints()
    );
}

#[test]
fn fetch_upstream_https_without_credentials_in_url_hides_password() {
    let (_remote, clone, _c1) = remote_and_clone();
    clone.set_config(
        "remote.origin.url",
        "https://bot:s3cret@127.0.0.1:1/infra.git",
    );
    let err = clone.source().fetch_upstream("main").expect_err("refused");
    let GitError::RemoteUnreachable { url, .. } = &err else {
        panic!("expected RemoteUnreachable, got {err:?}");
    };
    assert!(!url.contains("s3cret"), "{url}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

/// A server that answers the TLS handshake with plain text: rustls (on ring) runs and fails
/// cleanly, which proves https is compiled in with a working crypto provider.
#[test]
fn fetch_upstream_https_tls_failure_is_unreachable_not_panic() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        // One connection is enough: gix gives up after the first failure.
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0u8; 512];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\nnot tls\n");
        }
    });
    let (_remote, clone, _c1) = remote_and_clone();
    let url = format!("https://127.0.0.1:{port}/infra.git");
    clone.set_config("remote.origin.url", &url);
    let err = clone.source().fetch_upstream("main").expect_err("not tls");
    assert!(
        matches!(&err, GitError::RemoteUnreachable { url: u, .. } if u == &url),
        "{err:?}"
    );
    let _ = server.join();
}
