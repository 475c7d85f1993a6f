//! Bad input: each a clear error with the documented exit code, and nothing done on the engine.

use refinery_git::TestRepo;

use crate::common::{Env, IMAGE, run_refinery};

#[tokio::test]
async fn repo_not_git_exits_2_with_hint() {
    let env = Env::offline();
    let dir = env.run.temp_dir("not-git").expect("make a temp dir");
    let path = dir.to_string_lossy().into_owned();
    for cmd in ["validate", "plan", "apply", "status"] {
        let mut args = vec![cmd.to_owned(), "--repo".into(), path.clone()];
        if cmd == "apply" {
            args.push("--yes".into());
        }
        let run = run_refinery(args).await;
        run.code(2)
            .stderr_has(&format!(
                "error: failed to find a git repository at `{path}`"
            ))
            .stderr_has("hint: run `git init`");
        assert!(run.stdout.is_empty(), "{}", run.transcript());
    }
}

#[tokio::test]
async fn rev_that_does_not_exist_exits_2() {
    let env = Env::offline();
    env.commit_manifest("containers: []\n");
    for args in [
        &["validate"][..],
        &["plan"],
        &["apply", "--yes"],
        &["status"],
    ] {
        let mut args = args.to_vec();
        args.extend(["--rev", "no-such-branch"]);
        env.refinery(&args)
            .await
            .code(2)
            .stderr_has("error: failed to resolve revision `no-such-branch`")
            .stderr_has("hint: pass a branch, a tag, a commit id");
    }
}

#[tokio::test]
async fn commit_without_manifest_exits_2() {
    let env = Env::offline();
    env.commit_file("README.md", "no manifest here\n");
    env.refinery(&["plan"])
        .await
        .code(2)
        .stderr_has("failed to find a manifest: neither `refinery.yaml` nor `bloodline_manifest.yaml` is in commit")
        .stderr_has("hint: commit a `refinery.yaml`");
}

#[tokio::test]
async fn unborn_branch_exits_2() {
    // `git init` and nothing committed yet.
    let repo = TestRepo::new();
    let run = run_refinery(vec![
        "validate".into(),
        "--repo".into(),
        repo.path().to_string_lossy().into_owned(),
    ])
    .await;
    run.code(2)
        .stderr_has("error: failed to resolve `HEAD`: branch `main` has no commits yet")
        .stderr_has("hint: commit the manifests first");
}

#[tokio::test]
async fn malformed_manifest_exits_2_naming_file_line_col() {
    let env = Env::offline();
    env.commit_manifest(&format!(
        "containers:\n  - name: {}\n    image: {IMAGE}\n    ports: [\"abc\"]\n    foo: 1\n",
        env.name("web")
    ));
    let run = env.refinery(&["validate"]).await;
    run.code(2)
        .stderr_has(
            "error: refinery.yaml:5:13: `containers[0].ports[0]`: `abc` is not a port number",
        )
        .stderr_has("error: refinery.yaml:6:5: `containers[0].foo`: unknown key `foo`")
        .stderr_has("error: failed to load `refinery.yaml`: 2 problems found");
    assert!(run.stdout.is_empty(), "{}", run.transcript());
}

#[tokio::test]
async fn apply_without_yes_and_no_terminal_exits_2_and_does_nothing() {
    let env = Env::new().await;
    env.commit_manifest(&format!(
        "containers:\n  - name: {}\n    image: {IMAGE}\n",
        env.name("web")
    ));
    env.refinery(&["apply"])
        .await
        .code(2)
        .stderr_has("standard input is not a terminal")
        .stderr_has("hint: pass `--yes`");
    assert!(env.container("web").await.is_none());
}

#[tokio::test]
async fn docker_socket_down_exits_4_with_hint() {
    let env = Env::offline();
    env.commit_manifest(&format!(
        "nodes:\n  - name: local\n    docker: unix:///nonexistent.sock\n\
         containers:\n  - name: {}\n    image: {IMAGE}\n",
        env.name("web")
    ));
    for args in [&["plan"][..], &["apply", "--yes"], &["status"]] {
        env.refinery(args)
            .await
            .code(4)
            .stderr_has("error: failed to reach node `local`")
            .stderr_has("failed to reach the engine at `unix:///nonexistent.sock`")
            .stderr_has("hint: is the Docker daemon running? try `docker info`");
    }
    // JSON still says which node is unreachable.
    let json = env.refinery(&["plan", "--json"]).await;
    json.code(4);
    let v = json.json();
    assert_eq!(v["in_sync"], false);
    assert_eq!(v["nodes"][0]["reachable"], false);
    assert!(
        v["nodes"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("nonexistent.sock"))
    );
}

#[tokio::test]
async fn values_the_engine_would_refuse_fail_validate_with_place_and_hint() {
    // Issue 27: each of these used to validate and only fail (or be ignored) later.
    let env = Env::offline();
    let long = "x".repeat(300);
    env.commit_manifest(&format!(
        "containers:\n  - name: {}\n    image: \"UPPER::case@@\"\n    cap_add: [NET_ADMN]\n  - name: {long}\n    image: {IMAGE}\n\
         maintenance_windows:\n  - {{name: w, day: sunday, start_time: \"02:00\", end_time: \"04:00\", timezone: Europe/Berln}}\n",
        env.name("web")
    ));
    for args in [&["validate"][..], &["plan"]] {
        let run = env.refinery(args).await;
        run.code(2)
            .stderr_has("error: refinery.yaml:4:12: `containers[0].image`: `UPPER::case@@` is not an image reference: it has more than one `@`")
            .stderr_has("hint: write `[REGISTRY[:PORT]/]NAME[:TAG][@sha256:DIGEST]`")
            .stderr_has("error: refinery.yaml:5:15: `containers[0].cap_add[0]`: `NET_ADMN` is not a capability")
            .stderr_has("hint: did you mean `NET_ADMIN`?")
            .stderr_has("error: refinery.yaml:6:11: `containers[1].name`: the container name `xxxxxxxxxxxxxxxx")
            .stderr_has("is 300 characters long; the limit is 255")
            .stderr_has("`maintenance_windows[0].timezone`: `Europe/Berln` is not a time zone")
            .stderr_has("hint: did you mean `Europe/Berlin`?")
            .stderr_has("error: failed to load `refinery.yaml`: 4 problems found");
        assert!(
            !run.stderr.contains(&long),
            "the long name is not echoed whole"
        );
        assert!(run.stdout.is_empty(), "{}", run.transcript());
    }
}

#[tokio::test]
async fn manifest_declaring_nothing_fails_unless_allow_empty() {
    let env = Env::offline();
    for (body, at) in [
        ("", "refinery.yaml:1:1"),
        (
            "# containers:\n#   - {name: web, image: busybox}\n",
            "refinery.yaml:1:1",
        ),
        (
            "nodes: [{name: lyra}]\ncontainers: null\n",
            "refinery.yaml:2:1",
        ),
    ] {
        // Committed as is (no selector line), so the file really is empty.
        env.commit_file("refinery.yaml", body);
        for args in [&["validate"][..], &["plan"], &["apply", "--yes"]] {
            let run = env.refinery(args).await;
            run.code(2)
                .stderr_has(&format!("error: {at}: `containers`: the manifest declares nothing: no containers, stacks or kubernetes sources"))
                .stderr_has("hint: declare what should run under `containers:`, `stacks:` or `kubernetes:`; to enforce an empty desired state on purpose, set `allow_empty: true`");
            assert!(run.stdout.is_empty(), "{body:?}: {}", run.transcript());
        }
    }
    env.commit_manifest("containers: null\nallow_empty: true\n");
    env.refinery(&["validate"])
        .await
        .code(0)
        .stdout_has("is valid: 0 containers on 1 node");
}
