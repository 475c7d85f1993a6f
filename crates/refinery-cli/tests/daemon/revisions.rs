//! Revisions: a new commit converges, a broken or empty one removes nothing, an unhealthy one is
//! rolled back to the last healthy revision.

use refinery_core::{ContainerRuntime, ContainerState};

use crate::common::{Env, IMAGE};
use crate::harness::{Daemon, eventually, kind};

fn two(a: &str, b: &str) -> String {
    format!(
        "containers:\n  - name: {a}\n    image: {IMAGE}\n  - name: {b}\n    image: {IMAGE}\n    env: {{V: \"2\"}}\n"
    )
}

#[tokio::test]
async fn daemon_new_commit_converges_and_broken_or_empty_commit_removes_nothing() {
    let env = Env::new().await;
    let web = env.name("web");
    let api = env.name("api");
    let rules = "drift_rules:\n  unauthorized_containers: {action: terminate}\n";
    env.commit_manifest(&format!(
        "containers:\n  - name: {web}\n    image: {IMAGE}\n{rules}"
    ));
    let mut d = Daemon::start(&env, &[]);
    eventually("web running", &mut d, || async {
        env.container("web")
            .await
            .filter(|c| c.state == ContainerState::Running)
    })
    .await;

    // A new commit adds a container: the daemon deploys it.
    let second = env.commit_manifest(&format!("{}{rules}", two(&web, &api)));
    eventually("api deployed", &mut d, || async {
        env.container("api").await.filter(|c| {
            c.state == ContainerState::Running
                && c.labels.get("io.refinery.revision") == Some(&second)
        })
    })
    .await;

    // A broken manifest: reported, the last good revision stays, nothing is removed.
    let broken = env.commit_file("refinery.yaml", "containers: [\n  - name: x\n");
    d.wait_entry("load failure alert", |e| {
        kind(e) == "alert"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("failed to load revision") && m.contains(&broken[..12]))
    })
    .await;
    // A manifest that declares nothing, with a terminate rule: refused like a broken one (issue
    // 27), alerted, the last good revision stays, nothing removed.
    let empty = env.commit_manifest(rules);
    d.wait_entry("empty manifest alert", |e| {
        kind(e) == "alert"
            && e["message"].as_str().is_some_and(|m| {
                m.contains("failed to load revision")
                    && m.contains(&empty[..12])
                    && m.contains("the manifest declares nothing")
                    && m.contains(&format!("still enforcing `{}`", &second[..12]))
            })
    })
    .await;
    // The refusal alert is the decision (it names the revision still enforced); what that
    // revision declares is still there.
    assert!(
        env.container("web").await.is_some(),
        "empty manifest: nothing removed"
    );
    assert!(
        env.container("api").await.is_some(),
        "empty manifest: nothing removed"
    );

    // A good commit again, changing an env value: the container is recreated as declared.
    env.commit_manifest(&format!(
        "{}{rules}",
        two(&web, &api).replace("\"2\"", "\"3\"")
    ));
    eventually("api recreated with V=3", &mut d, || async {
        env.container("api").await.filter(|c| {
            c.state == ContainerState::Running && c.env.get("V").map(String::as_str) == Some("3")
        })
    })
    .await;
    d.stop().await;
}

#[tokio::test]
async fn daemon_unhealthy_revision_is_rolled_back_to_the_last_healthy_one() {
    let env = Env::new().await;
    let web = env.name("web");
    let cfg = |cmd: &str| {
        env.manifest(&format!(
            "containers:\n  - name: {web}\n    image: {IMAGE}\n{cmd}drift_rules:\n  flapping: {{max_actions: 100, window: 1m}}\n"
        ))
        .replace("config: {", "config: {health_deadline: 4s, ")
    };
    let good = env.commit_file("refinery.yaml", &cfg(""));
    let mut d = Daemon::start(&env, &[]);
    let state_file = d.state_dir.join("state.json");
    // Healthy once it has run for the settle time (half the deadline here).
    eventually("good revision healthy", &mut d, || async {
        let state = std::fs::read_to_string(&state_file).ok();
        state.filter(|s| s.contains(&format!("\"last_healthy\": \"{good}\"")))
    })
    .await;

    let bad = env.commit_file(
        "refinery.yaml",
        &cfg("    command: [\"sh\", \"-c\", \"exit 7\"]\n"),
    );
    d.wait_entry("rolled back", |e| {
        kind(e) == "alert"
            && e["message"].as_str().is_some_and(|m| {
                m.contains("rolled back") && m.contains(&bad[..12]) && m.contains(&good[..12])
            })
    })
    .await;
    eventually("good revision running again", &mut d, || async {
        env.container("web").await.filter(|c| {
            c.state == ContainerState::Running
                && c.labels.get("io.refinery.revision") == Some(&good)
        })
    })
    .await;
    // That it stays on the good revision while the bad one is the branch's tip is the
    // controller's unit test `revision_failing_past_its_deadline_rolls_back_to_the_last_healthy_one`
    // (paused time), not a wait here for nothing to happen.
    d.stop().await;
}

#[tokio::test]
async fn daemon_following_a_branch_deploys_what_is_pushed_to_the_remote() {
    let env = Env::new().await;
    let web = env.name("web");
    let api = env.name("api");
    // The remote (a bare repository) is where users push; the daemon runs on a clone of it.
    let remote = refinery_git::TestRepo::bare();
    remote.write(
        "refinery.yaml",
        env.manifest(&format!(
            "containers:\n  - name: {web}\n    image: {IMAGE}\n"
        )),
    );
    remote.commit("first");
    let clone = refinery_git::TestRepo::clone_of(&remote);
    // Fetched every second here; by default every minute, or at once on a webhook.
    let mut d = Daemon::start_in(
        clone.path(),
        &["--branch", "main", "--fetch-interval", "1s"],
    );
    eventually("web running", &mut d, || async {
        env.container("web")
            .await
            .filter(|c| c.state == ContainerState::Running)
    })
    .await;

    // A push to the remote is a deployment.
    remote.write("refinery.yaml", env.manifest(&two(&web, &api)));
    let pushed = remote.commit("add api");
    eventually("api deployed from the remote", &mut d, || async {
        env.container("api").await.filter(|c| {
            c.state == ContainerState::Running
                && c.labels.get("io.refinery.revision") == Some(&pushed)
        })
    })
    .await;
    d.stop().await;
}

#[tokio::test]
async fn daemon_rollback_by_hand_holds_the_older_revision_until_a_newer_commit() {
    let env = Env::new().await;
    let web = env.name("web");
    let api = env.name("api");
    let first = env.commit_manifest(&format!(
        "containers:\n  - name: {web}\n    image: {IMAGE}\n"
    ));
    let second = env.commit_manifest(&two(&web, &api));
    let mut d = Daemon::start(&env, &[]);
    eventually("second revision deployed", &mut d, || async {
        env.container("api")
            .await
            .filter(|c| c.labels.get("io.refinery.revision") == Some(&second))
    })
    .await;

    env.refinery(&[
        "rollback",
        "--to",
        &first[..12],
        "--state-dir",
        &d.state_dir.to_string_lossy(),
    ])
    .await
    .code(0)
    .stderr_has("requested");
    d.wait_entry("rollback alert", |e| {
        kind(e) == "alert"
            && e["message"].as_str().is_some_and(|m| {
                m.contains("rolled back") && m.contains("requested with `refinery rollback`")
            })
    })
    .await;
    d.wait_entry("revision back to the first", |e| {
        kind(e) == "revision" && e["to"].as_str() == Some(first.as_str())
    })
    .await;
    // The first revision does not declare `api`: it is reported as unauthorized (the default
    // rule only alerts), never removed.
    d.wait_entry("api unauthorized", |e| {
        kind(e) == "drift"
            && e["drift"] == "unauthorized"
            && e["resource"].as_str().is_some_and(|r| r.ends_with(&api))
    })
    .await;
    assert!(env.container("api").await.is_some());

    // A newer commit ends the rollback.
    let third = env.commit_manifest(&two(&web, &api).replace("\"2\"", "\"3\""));
    eventually("third revision deployed", &mut d, || async {
        env.container("api")
            .await
            .filter(|c| c.labels.get("io.refinery.revision") == Some(&third))
    })
    .await;
    d.stop().await;
}

#[tokio::test]
async fn daemon_deleted_branch_keeps_the_last_revision_and_removes_nothing() {
    let env = Env::new().await;
    let web = env.name("web");
    let head = env.commit_manifest(&format!(
        "containers:\n  - name: {web}\n    image: {IMAGE}\ndrift_rules:\n  unauthorized_containers: {{action: terminate}}\n"
    ));
    let mut d = Daemon::start(&env, &["--branch", "main"]);
    let c = eventually("web running", &mut d, || async {
        env.container("web")
            .await
            .filter(|c| c.state == ContainerState::Running)
    })
    .await;
    // The branch disappears (a loose ref in this fresh repository).
    let branch = env.repo.path().join(".git/refs/heads/main");
    std::fs::remove_file(&branch).expect("delete the branch");
    d.wait_entry("branch alert", |e| {
        kind(e) == "alert"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("failed to read `main`"))
    })
    .await;
    // The alert comes from the look at the branch; passes go on enforcing what was loaded.
    let still = env.existing("web").await;
    assert_eq!(still.id, c.id, "nothing removed or replaced");
    // The branch comes back: the daemon carries on with it.
    std::fs::write(&branch, format!("{head}\n")).expect("restore the branch");
    env.rt.stop(&c.id, 5).await.expect("stop");
    eventually("healed again", &mut d, || async {
        env.container("web")
            .await
            .filter(|c| c.state == ContainerState::Running)
    })
    .await;
    d.stop().await;
}

#[tokio::test]
async fn daemon_slow_node_does_not_hold_up_another_node() {
    use std::os::unix::net::UnixListener;
    let env = Env::new().await;
    let web = env.name("web");
    // An engine that accepts connections and never answers (a host gone without a reset): its
    // probe only gives up after 10 s.
    let dir = tempfile::tempdir().expect("temp dir");
    let sock = dir.path().join("hung.sock");
    let listener = UnixListener::bind(&sock).expect("bind the hung socket");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    env.commit_manifest(&format!(
        "nodes:\n  - {{name: fast, docker: \"{}\"}}\n  - {{name: slow, docker: \"unix://{}\"}}\ncontainers:\n  - {{name: {web}, image: {IMAGE}, node: fast}}\n  - {{name: {web}-s, image: {IMAGE}, node: slow}}\n",
        env.rt.endpoint(),
        sock.display()
    ));
    let mut d = Daemon::start(&env, &[]);
    eventually("web running on the fast node", &mut d, || async {
        env.container("web")
            .await
            .filter(|c| c.state == ContainerState::Running)
    })
    .await;
    // The fast node was acted on before the slow one's probe even gave up.
    let slow_reported = d.entry_values().iter().any(|e| {
        kind(e) == "alert"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("node `slow` is unreachable"))
    });
    assert!(!slow_reported, "the fast node waited for the slow one");
    d.wait_entry("slow node reported", |e| {
        kind(e) == "alert"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("node `slow` is unreachable"))
    })
    .await;
    d.stop().await;
}
