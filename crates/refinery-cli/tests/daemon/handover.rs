//! `refinery apply` while the daemon runs: the daemon holds the ledger, so `apply` hands the work
//! to it and prints what its pass did; an apply of another revision is refused. And content
//! copies no container uses any more are removed, a decrypted secret's at once.

use refinery_core::sops::SopsFormat;
use refinery_core::sops::encrypt::{encrypt_vars, generate_identity};
use refinery_core::{ContainerRuntime, ContainerState};

use crate::common::{Env, IMAGE, Run};
use crate::harness::{Daemon, eventually, kind, resource};

#[tokio::test]
async fn daemon_apply_while_running_is_done_by_the_daemon_and_another_revision_refused() {
    let env = Env::new().await;
    let name = env.name("web");
    // A missing container waits an hour: only the handed-over apply (grace not honoured, as any
    // apply) creates it.
    let body = |mode: &str| {
        format!(
            "containers:\n  - name: {name}\n    image: {IMAGE}\n    env: {{MODE: {mode}}}\ndrift_rules:\n  missing_containers: {{action: recreate, grace_period: 1h}}\n"
        )
    };
    let old = env.commit_manifest(&body("old"));
    env.commit_manifest(&body("new"));
    let mut d = Daemon::start(&env, &[]);
    d.wait_entry("daemon start", |e| kind(e) == "daemon_start")
        .await;
    let state_dir = d.state_dir.to_string_lossy().into_owned();

    let first = apply(&env, &state_dir, None).await;
    first
        .code(0)
        .outcome(&name, "created")
        .stderr_has("handing the apply over");
    let c = env.existing("web").await;
    assert_eq!(c.state, ContainerState::Running);

    // Removed by hand: the daemon sees it and waits out the grace period; apply heals it now.
    // (After the window in which engine events are taken as the create's own.)
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    env.rt.remove(&c.id).await.expect("remove by hand");
    d.wait_entry("outside removal", |e| {
        kind(e) == "death" && e["actor"] == "outside" && resource(e).ends_with(&name)
    })
    .await;
    apply(&env, &state_dir, None)
        .await
        .code(0)
        .outcome(&name, "created");
    let again = env.existing("web").await;
    assert_ne!(again.id, c.id);
    assert_eq!(again.env.get("MODE").map(String::as_str), Some("new"));

    // Another revision than the daemon's: refused, nothing done.
    apply(&env, &state_dir, Some(&old))
        .await
        .code(2)
        .stderr_has("it enforces")
        .stderr_has("--rev");
    assert_eq!(env.existing("web").await.id, again.id);

    d.stop().await;
    let creates = d_entries_creates(&env, &name);
    assert_eq!(creates, 2, "one `birth` entry per handed-over apply");
    env.refinery(&["ledger", "verify"]).await.code(0);
}

/// `refinery apply --yes` with the daemon's state directory.
async fn apply(env: &Env, state_dir: &str, rev: Option<&str>) -> Run {
    let mut args = vec!["apply", "--yes", "--state-dir", state_dir];
    if let Some(r) = rev {
        args.extend(["--rev", r]);
    }
    env.refinery(&args).await
}

/// Containers `name` Refinery created, per the ledger.
fn d_entries_creates(env: &Env, name: &str) -> usize {
    std::fs::read_to_string(env.repo.path().join("ledger/container_ledger.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| kind(e) == "birth" && e["actor"] == "refinery" && resource(e).ends_with(name))
        .count()
}

/// The folder of the copy `suffix`'s container mounts at `target`.
async fn copy_dir(env: &Env, suffix: &str, target: &str) -> Option<std::path::PathBuf> {
    let c = env.container(suffix).await?;
    if c.state != ContainerState::Running {
        return None;
    }
    let m = c.mounts.iter().find(|m| m.target == target)?;
    std::path::Path::new(&m.source)
        .parent()
        .map(ToOwned::to_owned)
}

#[tokio::test]
async fn daemon_content_copies_no_container_uses_are_removed_a_secret_at_once() {
    let env = Env::new().await;
    let web = env.name("web");
    let vault = env.name("vault");
    let (key, recipient) = generate_identity();
    let keys_dir = tempfile::tempdir().expect("tempdir");
    let key_file = keys_dir.path().join("age.txt");
    std::fs::write(&key_file, format!("{key}\n")).expect("write the key file");
    let enc = |v: &str| encrypt_vars(&[("TOKEN", v)], SopsFormat::Dotenv, &[&recipient]);
    env.repo.write("conf/app.conf", "level=1\n");
    env.repo.write("secret.enc.env", enc("one"));
    // A missing container waits an hour: one removed by hand stays away.
    env.commit_manifest(&format!(
        "secrets: {{sops_age_key_file: \"{}\"}}\ncontainers:\n  - name: {web}\n    image: {IMAGE}\n    volumes: [\"./conf/app.conf:/etc/app.conf:ro\"]\n  - name: {vault}\n    image: {IMAGE}\n    volumes: [\"./secret.enc.env:/etc/secret.env:ro\"]\ndrift_rules:\n  missing_containers: {{action: recreate, grace_period: 1h}}\n",
        key_file.display()
    ));
    // A copy left by an older revision.
    let root = env.repo.path().join(".git/refinery/content");
    let stale = root.join(&web).join("00000000000000aa");
    std::fs::create_dir_all(&stale).expect("stale copy");
    std::fs::write(stale.join("app.conf"), "level=0\n").expect("stale copy");

    // `apply` creates both and collects the stale copy.
    env.refinery(&["apply", "--yes"])
        .await
        .code(0)
        .outcome(&web, "created")
        .outcome(&vault, "created")
        .stderr_has("removed 1 content copy");
    assert!(!stale.exists(), "the stale copy is removed");
    let web1 = copy_dir(&env, "web", "/etc/app.conf")
        .await
        .expect("web copy");
    let vault1 = copy_dir(&env, "vault", "/etc/secret.env")
        .await
        .expect("vault copy");
    assert!(web1.exists() && vault1.exists(), "copies in use are kept");

    let mut d = Daemon::start(&env, &["--check-interval", "1s"]);
    env.repo.write("conf/app.conf", "level=2\n");
    env.repo.write("secret.enc.env", enc("two"));
    env.repo.commit("level 2, token two");
    let web2 = eventually("web on the new copy", &mut d, || async {
        copy_dir(&env, "web", "/etc/app.conf")
            .await
            .filter(|p| *p != web1)
    })
    .await;
    let vault2 = eventually("vault on the new copy", &mut d, || async {
        copy_dir(&env, "vault", "/etc/secret.env")
            .await
            .filter(|p| *p != vault1)
    })
    .await;
    eventually("the old copies removed", &mut d, || async {
        (!web1.exists() && !vault1.exists()).then_some(())
    })
    .await;
    assert!(web2.exists() && vault2.exists(), "copies in use are kept");

    // The secret's container is removed by hand (and waits out its grace period): its clear
    // copy goes, though the revision declares it; the plain copy stays for the next create.
    let v = env.existing("vault").await;
    env.rt.remove(&v.id).await.expect("remove by hand");
    eventually("the unused secret copy removed", &mut d, || async {
        (!vault2.exists()).then_some(())
    })
    .await;
    assert!(web2.exists(), "the copy a container mounts is kept");
    d.stop().await;
    env.refinery(&["ledger", "verify"]).await.code(0);
}

#[tokio::test]
async fn daemon_cleanup_apply_beside_it_stops_before_asking_and_names_it() {
    let env = Env::new().await;
    let scratch = format!("tmp-{}-scratch", env.run.id());
    env.run
        .create_volume(&env.rt, &scratch, &std::collections::BTreeMap::new())
        .await
        .expect("volume");
    env.commit_manifest(&format!(
        "containers:\n  - name: {}\n    image: {IMAGE}\ninventory:\n  safe_to_delete: [\"tmp-*\"]\n",
        env.name("web")
    ));
    let mut d = Daemon::start(&env, &[]);
    d.wait_entry("daemon start", |e| kind(e) == "daemon_start")
        .await;
    let presence = d.state_dir.join("daemons");
    eventually("presence published", &mut d, || {
        let presence = presence.clone();
        async move { std::fs::read_dir(&presence).ok()?.next().map(|_| ()) }
    })
    .await;
    let state_dir = d.state_dir.to_string_lossy().into_owned();
    // A dry run works beside the daemon.
    env.refinery(&["cleanup", "--state-dir", &state_dir])
        .await
        .code(0)
        .stdout_has(&scratch);
    env.refinery(&["cleanup", "--apply", "--yes", "--state-dir", &state_dir])
        .await
        .code(1)
        .stderr_has("the running daemon (pid")
        .stderr_has("kill -TERM");
    let volumes = env.rt.list_volumes(None).await.expect("volumes");
    assert!(volumes.iter().any(|v| v.name == scratch), "nothing removed");
    d.stop().await;
}
