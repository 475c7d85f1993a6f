//! Fault injection on the real engine: `refinery run` against faults it cannot prevent. For each,
//! once the fault is gone: no declared container is lost, nothing is removed that was not proven
//! unauthorized (no test here declares a `terminate` rule, so nothing may be removed at all),
//! `refinery ledger verify` passes, and the host converges.
//!
//! Covered elsewhere, not repeated here: an engine stopped and started while the daemon runs
//! (`nodes::three_nodes_converge_survive_a_dead_node_and_heal`), the daemon starting on what an
//! interrupted recreate set aside (`daemon::heal::daemon_start_puts_back_a_container_an_interrupted_recreate_set_aside`),
//! a broken, empty or deleted revision (`daemon::revisions::daemon_new_commit_converges_and_broken_or_empty_commit_removes_nothing`,
//! `daemon_deleted_branch_keeps_the_last_revision_and_removes_nothing`), appends killed mid-write
//! (`ledger::ledger_append_killed_50_times_verify_passes_nothing_reported_lost`).

#[path = "../common/mod.rs"]
mod common;
#[path = "../daemon/harness.rs"]
#[allow(dead_code)] // shared with the daemon tests, which use all of it
mod harness;

use std::path::{Path, PathBuf};
use std::time::Duration;

use refinery_core::{ContainerRuntime, ContainerState, ObservedContainer};
use refinery_docker::DockerRuntime;
use refinery_docker::testsupport::engines::{Engines, Listen};
use refinery_docker::testsupport::{self, minimal_spec};

use crate::common::{Env, IMAGE, run_refinery};
use crate::harness::{Daemon, eventually, kind};

/// A container whose main process ignores SIGTERM: stopping it takes Refinery's whole stop
/// timeout (10 s), which holds a recreate open long enough to break something in its middle.
fn slow_stop(name: &str, node: Option<&str>, v: &str) -> String {
    let node = node.map(|n| format!("    node: {n}\n")).unwrap_or_default();
    format!(
        "  - name: {name}\n    image: {IMAGE}\n{node}    command: [\"sh\", \"-c\", \"trap '' TERM; while true; do sleep 1; done\"]\n    env: {{V: \"{v}\"}}\n"
    )
}

async fn inspect(rt: &DockerRuntime, name: &str) -> Option<ObservedContainer> {
    rt.inspect(name).await.ok()
}

/// `name` running on `rt` with `V=v`.
async fn running_with(rt: &DockerRuntime, name: &str, v: &str) -> Option<ObservedContainer> {
    inspect(rt, name).await.filter(|c| {
        c.state == ContainerState::Running
            && c.env.get("V").map(String::as_str) == Some(v).filter(|v| !v.is_empty())
    })
}

/// Creates and starts an undeclared container on `rt`, labelled for this run.
async fn pet(env: &Env, rt: &DockerRuntime, suffix: &str) -> String {
    let req = env
        .run
        .request(suffix, minimal_spec(&env.name(suffix), IMAGE));
    let id = rt.create(&req).await.expect("create the pet");
    rt.start(&id).await.expect("start the pet");
    id
}

/// The promises every test checks once its fault is gone and the host has converged: each of
/// `declared` runs with its `V`, nothing is left set aside, each of `undeclared` still exists,
/// no entry records a removal, and `refinery ledger verify` passes.
async fn assert_promises_kept(
    d: &mut Daemon,
    rt: &DockerRuntime,
    declared: &[(&str, &str)],
    undeclared: &[&str],
) {
    for (name, v) in declared {
        eventually(&format!("`{name}` running with V={v}"), d, || async {
            running_with(rt, name, v).await
        })
        .await;
        let aside = format!("{name}.refinery-old");
        eventually(
            &format!("nothing left set aside for `{name}`"),
            d,
            || async { inspect(rt, &aside).await.is_none().then_some(()) },
        )
        .await;
    }
    for name in undeclared {
        assert!(
            inspect(rt, name).await.is_some(),
            "`{name}` was never proven unauthorized, so it is still there"
        );
    }
    for e in d.entry_values() {
        assert!(
            !(e["step"] == "remove" || e["outcome"] == "removed"),
            "nothing is removed: {e}"
        );
    }
    let out = run_refinery(vec![
        "ledger".into(),
        "verify".into(),
        "--path".into(),
        d.ledger.to_string_lossy().into_owned(),
    ])
    .await;
    assert_eq!(out.code, 0, "ledger verify\n{}", out.transcript());
}

// ---- the engine ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_engine_stopped_mid_recreate_loses_nothing_and_converges() {
    let env = Env::new().await;
    // A private engine: stopping it harms no other test.
    let engines = Engines::start(&[("n1", Listen::Unix)]).await;
    let engine = engines.get("n1");
    let rt = engine.runtime();
    testsupport::build_busybox_image(&rt, IMAGE)
        .await
        .expect("build the test image on the private engine");
    let web = env.name("web");
    let manifest = |v: &str| {
        format!(
            "nodes:\n  - {}\ncontainers:\n{}",
            engine.node_yaml("n1"),
            slow_stop(&web, Some("n1"), v)
        )
    };
    env.commit_manifest(&manifest("1"));
    let stray = env.name("pet");
    pet(&env, &rt, "pet").await;
    let mut d = Daemon::start(&env, &["--check-interval", "2s"]);
    eventually("web running", &mut d, || async {
        running_with(&rt, &web, "1").await
    })
    .await;

    // A new spec: the daemon starts recreating `web` (its stop takes 10 s) and the engine stops
    // in the middle of it, taking every container down with it.
    env.commit_manifest(&manifest("2"));
    d.wait_entry("config drift on web", |e| {
        kind(e) == "drift"
            && e["drift"] == "config"
            && e["resource"].as_str().is_some_and(|r| r.ends_with(&web))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    engine.stop().await;
    d.wait_entry("the lost engine reported", |e| {
        kind(e) == "alert"
            && e["message"].as_str().is_some_and(|m| {
                m.contains("n1") && (m.contains("lost") || m.contains("unreachable"))
            })
    })
    .await;

    engine.restart().await;
    assert_promises_kept(&mut d, &rt, &[(&web, "2")], &[&stray]).await;
    d.stop().await;
}

/// A unix-socket proxy between the daemon and the engine whose connections the test can cut
/// (the engine itself cannot be told to drop one client's event stream).
struct Proxy {
    path: PathBuf,
    target: PathBuf,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    fn start(path: PathBuf, target: PathBuf) -> Proxy {
        let mut p = Proxy {
            path,
            target,
            task: None,
        };
        p.open();
        p
    }

    /// Listens again.
    fn open(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let listener = tokio::net::UnixListener::bind(&self.path).expect("bind the proxy socket");
        let target = self.target.clone();
        self.task = Some(tokio::spawn(async move {
            // Dropped with this task: every connection is cut with it.
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                conns.spawn(async move {
                    if let Ok(mut out) = tokio::net::UnixStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        }));
    }

    /// Cuts every connection (the event stream included) and stops listening.
    fn cut(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

fn main_engine_socket(rt: &DockerRuntime) -> PathBuf {
    let endpoint = rt.endpoint();
    PathBuf::from(endpoint.strip_prefix("unix://").unwrap_or(endpoint))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_event_stream_cut_a_crash_meanwhile_is_healed_once_it_is_back() {
    let env = Env::new().await;
    let dir = env.run.temp_dir("proxy").expect("temp dir");
    let sock = dir.join("docker.sock");
    let mut proxy = Proxy::start(sock.clone(), main_engine_socket(&env.rt));
    let web = env.name("web");
    env.commit_manifest(&format!(
        "nodes:\n  - {{name: lyra, docker: \"unix://{}\"}}\ncontainers:\n  - {{name: {web}, image: {IMAGE}, node: lyra}}\n",
        sock.display()
    ));
    let stray = env.name("pet");
    pet(&env, &env.rt, "pet").await;
    // No periodic pass within the test: only the event stream, and its reconnection, wake it.
    let mut d = Daemon::start(&env, &["--check-interval", "1h"]);
    let c = eventually("web running", &mut d, || async {
        env.container("web")
            .await
            .filter(|c| c.state == ContainerState::Running)
    })
    .await;

    proxy.cut();
    // Reported once, by whichever notices first: the event follower ("lost the engine") or a
    // pass already under way when the cut came ("is unreachable").
    d.wait_entry("the lost engine reported", |e| {
        kind(e) == "alert"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("lost the engine") || m.contains("is unreachable"))
    })
    .await;
    // What happens while the stream is cut is missed by it ...
    testsupport::crash_container(&env.rt, &c.id)
        .await
        .expect("crash web");
    env.wait_state("web", ContainerState::Exited).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        env.existing("web").await.state,
        ContainerState::Exited,
        "nothing acts while the engine cannot be reached"
    );
    // ... and caught by the full pass when it is back.
    proxy.open();
    assert_promises_kept(&mut d, &env.rt, &[], &[&stray]).await;
    eventually("web running again", &mut d, || async {
        env.container("web")
            .await
            .filter(|w| w.state == ContainerState::Running && w.id == c.id)
    })
    .await;
    d.stop().await;
}

// ---- the daemon ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_sigkill_mid_recreate_then_restart_loses_nothing_and_converges() {
    let env = Env::new().await;
    let web = env.name("web");
    let api = env.name("api");
    let manifest = |v: &str| {
        format!(
            "containers:\n{}  - {{name: {api}, image: {IMAGE}}}\n",
            slow_stop(&web, None, v)
        )
    };
    env.commit_manifest(&manifest("1"));
    let stray = env.name("pet");
    pet(&env, &env.rt, "pet").await;
    let mut d = Daemon::start(&env, &[]);
    let old = eventually("web running", &mut d, || async {
        running_with(&env.rt, &web, "1").await
    })
    .await;

    env.commit_manifest(&manifest("2"));
    d.wait_entry("config drift on web", |e| {
        kind(e) == "drift"
            && e["drift"] == "config"
            && e["resource"].as_str().is_some_and(|r| r.ends_with(&web))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Mid-recreate: the old container is still being stopped.
    let now = env.existing("web").await;
    assert_eq!(now.id, old.id, "the recreate is still in its first half");
    let mut d = d.kill_and_restart(env.repo.path(), &[]);

    assert_promises_kept(&mut d, &env.rt, &[(&web, "2"), (&api, "")], &[&stray]).await;
    d.stop().await;
}

// ---- the disk ----

/// A tmpfs mounted for one test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).expect("create the mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("run `mount` (these tests run as root)");
        assert!(status.success(), "mount a tmpfs on `{}`", at.display());
        Tmpfs(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Fills the file system holding `path` until a write fails.
fn fill(path: &Path) {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path).expect("create the filler");
    let block = [0u8; 1024];
    while f.write_all(&block).and_then(|()| f.sync_data()).is_ok() {}
}

/// Crashes `web` and waits until the daemon has it running again.
async fn heal_a_crash(env: &Env, d: &mut Daemon) {
    // Past the second after its own action in which the daemon takes the container's events
    // for its own (`OURS_AFTER`): a crash then is only seen by the next periodic pass.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let c = env.existing("web").await;
    testsupport::crash_container(&env.rt, &c.id)
        .await
        .expect("crash web");
    eventually("web healed", d, || async {
        env.container("web")
            .await
            .filter(|w| w.state == ContainerState::Running && w.started_at != c.started_at)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_disk_full_under_the_ledger_loses_no_entry_chain_and_heals() {
    let env = Env::new().await;
    let web = env.name("web");
    // Crashed many times on purpose: flap protection must not stop the healing.
    env.commit_manifest(&format!(
        "containers:\n  - {{name: {web}, image: {IMAGE}}}\ndrift_rules:\n  flapping: {{max_actions: 100, window: 1m}}\n"
    ));
    let ledger_dir = env.repo.path().join("ledger");
    let _disk = Tmpfs::mount(&ledger_dir, "256k");
    let mut d = Daemon::start(&env, &["--check-interval", "5s"]);
    eventually("web running", &mut d, || async {
        env.container("web")
            .await
            .filter(|c| c.state == ContainerState::Running)
    })
    .await;

    // The disk fills up (tmpfs gives space by the page: the ledger's last page still takes a
    // few lines): the daemon keeps healing, and its appends start failing whole.
    let filler = ledger_dir.join("filler");
    fill(&filler);
    let log = d.log.clone();
    let append_failed = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("failed to append to the ledger")
    };
    let mut heals = 0;
    loop {
        let full = append_failed();
        let before = d.entries().len();
        heal_a_crash(&env, &mut d).await;
        heals += 1;
        if full {
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(d.entries().len(), before, "no entry fits on the full disk");
            break;
        }
        assert!(
            heals < 12,
            "an append failed on the full disk\n{}",
            d.log_text()
        );
    }
    assert_promises_kept(&mut d, &env.rt, &[], &[]).await;

    // Space again: the next entries are appended on the intact chain.
    std::fs::remove_file(&filler).expect("remove the filler");
    let seq = d.entries().last().map_or(0, |e| e.seq);
    heal_a_crash(&env, &mut d).await;
    d.wait_entry("entries appended again", |e| {
        e["seq"].as_u64().is_some_and(|s| s > seq) && e["actor"] == "refinery"
    })
    .await;
    assert_promises_kept(&mut d, &env.rt, &[], &[]).await;
    d.stop().await;
}

// ---- the git repository ----

/// The loose objects of the repository at `git_dir`.
fn loose_objects(git_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(git_dir.join("objects"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = dir.file_name();
        if name.len() != 2 {
            continue;
        }
        for f in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(f.path());
        }
    }
    out.sort();
    out
}

fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("run `kill`");
    assert!(status.success(), "kill {sig} {pid}");
}

/// Takes a git lock file the way git does, creating it only when nobody holds it: the daemon's
/// own ledger commit may hold that lock for a moment, and overwriting it would let the daemon's
/// rename consume our lock.
async fn take_lock(path: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(_) => return,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{} stays held",
                    path.display()
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => panic!("take the git lock {}: {e}", path.display()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_git_locked_or_corrupt_keeps_the_last_revision_and_removes_nothing() {
    let env = Env::new().await;
    let web = env.name("web");
    let db = env.name("db");
    let git = env.repo.path().join(".git");
    let good = env.commit_manifest(&format!(
        "containers:\n  - {{name: {web}, image: {IMAGE}}}\n"
    ));
    let stray = env.name("pet");
    pet(&env, &env.rt, "pet").await;
    let mut d = Daemon::start(&env, &[]);
    eventually("web running", &mut d, || async {
        env.container("web")
            .await
            .filter(|c| c.state == ContainerState::Running)
    })
    .await;

    // Locked: every lock a git writer would take is held. The ledger's commit to its ref cannot
    // happen; the daemon goes on healing and recording.
    std::fs::create_dir_all(git.join("refs/heads/refinery")).expect("refs dir");
    let locks = [
        git.join("index.lock"),
        git.join("HEAD.lock"),
        git.join("refs/heads/main.lock"),
        git.join("refs/heads/refinery/ledger.lock"),
    ];
    for l in &locks {
        take_lock(l).await;
    }
    heal_a_crash(&env, &mut d).await;
    // The ledger is committed to its ref every 5 s: held past one attempt, which fails.
    let log = d.log.clone();
    eventually("the locked ledger commit reported", &mut d, || async {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|l| l.contains("failed to commit the ledger"))
    })
    .await;
    heal_a_crash(&env, &mut d).await;
    assert_promises_kept(&mut d, &env.rt, &[], &[&stray]).await;
    for l in &locks {
        std::fs::remove_file(l).expect("release a git lock");
    }

    // Corrupt objects: a revision that would remove everything but `db`, whose objects are
    // garbage by the time the daemon reads them.
    let pid = d.pid().expect("the daemon runs");
    signal(pid, "-STOP");
    let before = loose_objects(&git);
    env.commit_manifest(&format!(
        "containers:\n  - {{name: {db}, image: {IMAGE}}}\ndrift_rules:\n  unauthorized_containers: {{action: terminate}}\n"
    ));
    for obj in loose_objects(&git) {
        if !before.contains(&obj) {
            let _ =
                std::fs::set_permissions(&obj, std::os::unix::fs::PermissionsExt::from_mode(0o644));
            std::fs::write(&obj, b"garbage, not a zlib stream").expect("corrupt an object");
        }
    }
    let seq = d.entries().last().map_or(0, |e| e.seq);
    signal(pid, "-CONT");
    let alert = d
        .wait_entry("the unreadable revision reported", |e| {
            kind(e) == "alert" && e["seq"].as_u64().is_some_and(|s| s > seq)
        })
        .await;
    assert!(
        alert["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("still enforcing `{}`", &good[..12]))),
        "{alert}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        env.container("db").await.is_none(),
        "the corrupt revision is not applied"
    );
    assert_promises_kept(&mut d, &env.rt, &[], &[&web, &stray]).await;

    // A garbage ref: the branch names no object at all.
    env.repo.set_ref("refs/heads/main", &good);
    std::fs::write(git.join("refs/heads/main"), "this is not an object id\n").expect("garbage ref");
    tokio::time::sleep(Duration::from_secs(1)).await;
    d.assert_alive();
    assert_promises_kept(&mut d, &env.rt, &[], &[&web, &stray]).await;

    // Repaired: the branch points at a good commit again, and a new one converges.
    env.repo.set_ref("refs/heads/main", &good);
    env.commit_manifest(&format!(
        "containers:\n  - {{name: {web}, image: {IMAGE}}}\n  - {{name: {db}, image: {IMAGE}}}\n"
    ));
    eventually("db deployed", &mut d, || async {
        env.container("db")
            .await
            .filter(|c| c.state == ContainerState::Running)
    })
    .await;
    assert_promises_kept(&mut d, &env.rt, &[], &[&web, &stray]).await;
    d.stop().await;
}
