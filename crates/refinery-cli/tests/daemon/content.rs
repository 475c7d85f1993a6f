//! Content drift in the daemon: a copy of a committed config file edited on the host is found by
//! the periodic pass (no engine event says so) and put back from git; a new commit changing the
//! file recreates the container on the new content.

use refinery_core::ContainerState;

use crate::common::{Env, IMAGE};
use crate::harness::{Daemon, eventually, kind, resource};

#[tokio::test]
async fn daemon_content_edited_on_the_host_is_restored_and_a_commit_recreates() {
    let env = Env::new().await;
    let name = env.name("web");
    env.repo.write("conf/app.conf", "level=1\n");
    env.commit_manifest(&format!(
        "containers:\n  - name: {name}\n    image: {IMAGE}\n    volumes: [\"./conf/app.conf:/etc/app.conf:ro\"]\n"
    ));
    let mut d = Daemon::start(&env, &["--check-interval", "1s"]);
    let c = eventually("created", &mut d, || async {
        env.container("web")
            .await
            .filter(|c| c.state == ContainerState::Running)
    })
    .await;
    let copy = c
        .mounts
        .iter()
        .find(|m| m.target == "/etc/app.conf")
        .map(|m| std::path::PathBuf::from(&m.source))
        .expect("the copy is mounted");
    std::fs::write(&copy, "hacked\n").expect("edit the copy");
    d.wait_entry("content drift", |e| {
        kind(e) == "drift"
            && resource(e).ends_with(&name)
            && e["fields"]
                .as_array()
                .is_some_and(|f| f.iter().any(|x| x == "content.conf/app.conf"))
    })
    .await;
    eventually("restored from git", &mut d, || async {
        (std::fs::read_to_string(&copy).ok().as_deref() == Some("level=1\n")).then_some(())
    })
    .await;

    env.repo.write("conf/app.conf", "level=2\n");
    env.repo.commit("level 2");
    eventually("recreated on the new content", &mut d, || async {
        let now = env.container("web").await?;
        let src = now
            .mounts
            .iter()
            .find(|m| m.target == "/etc/app.conf")?
            .source
            .clone();
        (now.state == ContainerState::Running
            && std::fs::read_to_string(src).ok().as_deref() == Some("level=2\n"))
        .then_some(())
    })
    .await;
    d.stop().await;
}
