//! The whole reconcile loop ([`Controller::run`]) on the fake runtime of
//! `refinery_core::testing` with tokio's clock paused: every node's engine is a
//! [`FakeRuntime`] whose containers, images and events live in memory, the repository and ledger
//! are real, and time moves only when every task waits (the controller's [`TokioClock`] follows
//! it). Each test says what happened and when, asking before and after the moment it matters.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use refinery_core::testing::{FakeRuntime, Reach};
use refinery_core::{ContainerState, RuntimeError};
use refinery_git::TestRepo;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::time::{Instant, sleep};

use crate::ports::{Clock, Engine, NoReporter, PlainFollow, TokioClock};
use crate::{Boot, Controller, ControllerOptions};

const START: &str = "2026-03-01T10:00:00Z";

impl Engine for FakeRuntime {
    fn endpoint(&self) -> &str {
        FakeRuntime::endpoint(self)
    }
}

/// `nodes` (each on its own fake engine) and the rest of the manifest.
fn manifest(nodes: &[&str], rest: &str) -> String {
    let mut m = String::from("nodes:\n");
    for n in nodes {
        m.push_str(&format!(
            "  - name: {n}\n    docker: unix:///nonexistent/{n}.sock\n"
        ));
    }
    m.push_str(rest);
    m
}

/// A declared container `name` on `node` running `image`.
fn container(name: &str, node: &str, image: &str) -> String {
    format!("  - name: {name}\n    image: {image}\n    node: {node}\n")
}

/// A controller running its loop on fake engines, stopped (and its task awaited) on drop.
struct Fleet {
    repo: TestRepo,
    state: tempfile::TempDir,
    clock: TokioClock,
    engines: BTreeMap<String, FakeRuntime>,
    ledger: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Fleet {
    /// Commits `body`, starts the loop and lets its first pass run.
    async fn start(nodes: &[&str], body: &str) -> Fleet {
        Fleet::start_with(nodes, body, &[], |_| {}).await
    }

    /// [`Fleet::start`] with more files in the first commit (compose files), and each node's
    /// engine prepared by `prepare` before the loop starts.
    async fn start_with(
        nodes: &[&str],
        body: &str,
        files: &[(&str, &str)],
        prepare: impl Fn(&FakeRuntime),
    ) -> Fleet {
        let repo = TestRepo::new();
        repo.write("refinery.yaml", body);
        for (path, contents) in files {
            repo.write(path, contents);
        }
        repo.commit("first");
        let state = tempfile::tempdir().expect("temp dir");
        let clock = TokioClock::starting_at(START.parse().expect("time"));
        let engines: BTreeMap<String, FakeRuntime> = nodes
            .iter()
            .map(|n| {
                let rt = FakeRuntime::new(&format!("fake://{n}"), move || clock.now());
                for image in ["busybox:1", "busybox:2"] {
                    rt.add_image(image);
                }
                prepare(&rt);
                ((*n).to_owned(), rt)
            })
            .collect();
        let options = ControllerOptions {
            repo: repo.path().to_path_buf(),
            state_dir: Some(state.path().to_path_buf()),
            max_concurrent_nodes: 4,
            poll_interval_ms: 100,
            event_backlog: 100,
            ..ControllerOptions::default()
        };
        let follow = PlainFollow::new(repo.path().to_path_buf(), "HEAD", None);
        let boot = Boot::load(options, Box::new(follow))
            .expect("boot")
            .open_ledger(clock.now())
            .expect("ledger");
        let by_node = engines.clone();
        let connect = move |node: &refinery_core::manifest::NodeSpec| {
            by_node
                .get(&node.name)
                .cloned()
                .ok_or_else(|| RuntimeError::Other {
                    action: format!("connect to node `{}`", node.name),
                    message: "no fake engine".into(),
                })
        };
        let c = Controller::new(
            boot,
            Box::new(connect),
            None,
            Box::new(NoReporter),
            Arc::new(clock),
        );
        let ledger = c.ledger_path.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        // `spawn_local`: the loop's future is not `Send` (the CLI awaits it on its main task).
        let task = tokio::task::spawn_local(c.run(async move {
            let _ = stopped.await;
            "test over"
        }));
        let fleet = Fleet {
            repo,
            state,
            clock,
            engines,
            ledger,
            stop: Some(stop),
            task: Some(task),
        };
        sleep(Duration::from_millis(50)).await;
        fleet
    }

    fn engine(&self, node: &str) -> &FakeRuntime {
        &self.engines[node]
    }

    /// Time since the start of the test's clock.
    fn elapsed(&self) -> Duration {
        let start: Timestamp = START.parse().expect("time");
        Duration::try_from(self.clock.now().duration_since(start)).unwrap_or_default()
    }

    fn entries(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.ledger)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The ledger, one line per entry (for failure messages).
    fn log(&self) -> String {
        self.entries()
            .iter()
            .map(|e| {
                format!(
                    "{:.1}s {} {} {} {}",
                    self.at(e),
                    e["kind"],
                    e["resource"],
                    e["outcome"],
                    e["message"]
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn alerts(&self, containing: &str) -> Vec<Value> {
        self.entries()
            .into_iter()
            .filter(|e| {
                e["kind"] == "alert"
                    && e["message"]
                        .as_str()
                        .is_some_and(|m| m.contains(containing))
            })
            .collect()
    }

    /// The entries about `name` of `kind` (`birth`, `death`, `mutation`, `drift`, …).
    fn about(&self, kind: &str, name: &str) -> Vec<Value> {
        self.entries()
            .into_iter()
            .filter(|e| {
                e["kind"] == kind
                    && e["resource"]
                        .as_str()
                        .is_some_and(|r| r.ends_with(&format!("/container/{name}")))
            })
            .collect()
    }

    /// Seconds after the start at which an entry was written.
    fn at(&self, entry: &Value) -> f64 {
        let start: Timestamp = START.parse().expect("time");
        let t: Timestamp = entry["time"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .expect("entry time");
        t.duration_since(start).as_secs_f64()
    }

    fn state_file(&self) -> refinery_core::daemon_state::DaemonState {
        refinery_store::state_file::load(&refinery_store::state_file::path_in(self.state.path()))
            .expect("state file")
    }

    /// The revision the loop started with.
    fn rev(&self) -> String {
        self.entries()
            .iter()
            .find_map(|e| e["revision"].as_str().map(str::to_owned))
            .expect("a revision on record")
    }

    /// Commits a new manifest; returns its revision.
    fn commit(&self, body: &str) -> String {
        self.repo.write("refinery.yaml", body);
        self.repo.commit("next")
    }

    /// Stops the loop and waits for it to save its state.
    async fn stop(mut self) -> Fleet {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("the loop ends cleanly");
        }
        self
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Runs a test where the loop can be spawned next to it (`spawn_local`).
async fn on_one_task(test: impl std::future::Future<Output = ()>) {
    tokio::task::LocalSet::new().run_until(test).await;
}

fn running(rt: &FakeRuntime, name: &str) -> bool {
    rt.container(name)
        .is_some_and(|c| c.state == ContainerState::Running)
}

fn count(calls: &[String], call: &str) -> usize {
    calls.iter().filter(|c| *c == call).count()
}

#[tokio::test(start_paused = true)]
async fn unauthorized_container_is_removed_exactly_after_its_grace_period() {
    on_one_task(async {
        let body = manifest(
            &["n1"],
            &format!(
                "drift_rules:\n  unauthorized_containers: {{action: terminate, grace_period: 30}}\ncontainers:\n{}",
                container("web", "n1", "busybox:1")
            ),
        );
        let f = Fleet::start(&["n1"], &body).await;
        let n1 = f.engine("n1");
        assert!(running(n1, "web"), "the first pass created web: {:?}", n1.calls());
        let t0 = f.elapsed();
        n1.run_outside("rogue", "busybox:1");

        sleep(Duration::from_millis(29_500)).await;
        assert!(
            n1.container("rogue").is_some(),
            "29.5 s after it started, within its grace: still there ({:?})",
            n1.calls()
        );
        assert_eq!(f.about("drift", "rogue").len(), 1, "but recorded as drift at once");
        assert!(f.at(&f.about("drift", "rogue")[0]) - t0.as_secs_f64() < 1.0);

        sleep(Duration::from_secs(1)).await;
        assert_eq!(n1.container("rogue"), None, "removed once its grace ended");
        let removed = f.about("death", "rogue");
        assert_eq!(removed.len(), 1, "{}", f.log());
        let after = f.at(&removed[0]) - t0.as_secs_f64();
        assert!(
            (30.0..30.5).contains(&after),
            "removed {after} s after it started: at the end of its grace, not at the next periodic pass"
        );
        assert_eq!(count(&n1.calls(), "remove web"), 0, "the declared one is left alone");
        f.stop().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn excepted_and_protected_unauthorized_containers_outlive_the_grace_period() {
    on_one_task(async {
        let body = manifest(
            &["n1"],
            &format!(
                "drift_rules:\n  unauthorized_containers: {{action: terminate, grace_period: 2s, exceptions: [\"*-keep\"]}}\ninventory:\n  protected: [\"*-prot\"]\ncontainers:\n{}",
                container("web", "n1", "busybox:1")
            ),
        );
        let f = Fleet::start(&["n1"], &body).await;
        let n1 = f.engine("n1");
        for name in ["rogue", "x-keep", "x-prot"] {
            n1.run_outside(name, "busybox:1");
        }
        sleep(Duration::from_millis(1_500)).await;
        assert_eq!(n1.names(), ["rogue", "web", "x-keep", "x-prot"], "within the grace");
        sleep(Duration::from_millis(1_000)).await;
        assert_eq!(
            n1.names(),
            ["web", "x-keep", "x-prot"],
            "at its end only the rogue one is removed: {}",
            f.log()
        );
        // Long after, still kept: passes ran (the periodic one, 30 s) and left them alone.
        sleep(Duration::from_secs(120)).await;
        assert_eq!(n1.names(), ["web", "x-keep", "x-prot"]);
        assert!(n1.observations() >= 4, "passes ran meanwhile");
        assert_eq!(count(&n1.calls(), "remove x-keep") + count(&n1.calls(), "remove x-prot"), 0);
        f.stop().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn die_event_restarts_the_container_in_a_pass_over_that_node_only() {
    on_one_task(async {
        let body = manifest(
            &["n1", "n2"],
            &format!(
                "config: {{check_interval: 1h}}\ndrift_rules:\n  status_drift: {{action: restart, grace_period: 0}}\ncontainers:\n{}{}",
                container("web", "n1", "busybox:1"),
                container("web", "n2", "busybox:1")
            ),
        );
        let f = Fleet::start(&["n1", "n2"], &body).await;
        let (n1, n2) = (f.engine("n1"), f.engine("n2"));
        assert!(running(n1, "web") && running(n2, "web"));
        let (reads1, reads2) = (n1.observations(), n2.observations());

        let crashed = Instant::now();
        assert!(n1.crash("web"));
        sleep(Duration::from_millis(500)).await;
        assert!(running(n1, "web"), "restarted on its die event: {:?}", n1.calls());
        assert_eq!(count(&n1.calls(), "restart web") + count(&n1.calls(), "start web"), 2,
            "one start at creation, one after the crash: {:?}", n1.calls());
        assert!(n1.observations() > reads1, "n1 observed for its event");
        assert_eq!(
            n2.observations(),
            reads2,
            "n2 is not observed for n1's event"
        );
        let restarted = f.about("mutation", "web");
        let heal = restarted.last().expect("restart on record");
        assert!(f.at(heal) - (f.elapsed() - crashed.elapsed()).as_secs_f64() < 0.5);
        f.stop().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn flapping_container_is_suspended_after_max_actions_and_alerted() {
    on_one_task(async {
        let body = manifest(
            &["n1"],
            &format!(
                "config: {{check_interval: 1h}}\ndrift_rules:\n  status_drift: {{action: restart, grace_period: 0}}\n  flapping: {{max_actions: 3, window: 1m}}\ncontainers:\n{}",
                container("web", "n1", "busybox:1")
            ),
        );
        let f = Fleet::start(&["n1"], &body).await;
        let n1 = f.engine("n1");
        // Its creation counts as an action too: the crashes come once it left the window.
        sleep(Duration::from_secs(61)).await;
        let heals = |calls: &[String]| count(calls, "start web") + count(calls, "restart web") - 1;
        for i in 1..=3 {
            assert!(n1.crash("web"));
            sleep(Duration::from_secs(5)).await;
            assert!(running(n1, "web"), "crash {i} healed");
            assert_eq!(heals(&n1.calls()), i);
        }
        let alerts = f.alerts("flap protection");
        assert_eq!(alerts.len(), 1, "the third action trips it: {alerts:?}");

        // Suspended: a fourth crash is alerted, never acted on, however long it waits.
        assert!(n1.crash("web"));
        sleep(Duration::from_secs(120)).await;
        assert!(!running(n1, "web"), "left exited: {:?}", n1.calls());
        assert_eq!(heals(&n1.calls()), 3, "no more actions");
        assert!(
            !f.alerts("web").is_empty(),
            "the held-back restart is alerted"
        );
        let f = f.stop().await;
        assert!(
            f.state_file().suspended.keys().any(|k| k.ends_with("/container/web")),
            "the suspension is saved"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn revision_that_never_gets_healthy_is_rolled_back_after_its_deadline() {
    on_one_task(async {
        let rest = |image: &str| {
            format!(
                "config: {{health_deadline: 30s, check_interval: 5s}}\ndrift_rules:\n  config_drift: {{action: recreate, grace_period: 0}}\n  image_drift: {{action: recreate, grace_period: 0}}\ncontainers:\n{}",
                container("web", "n1", image)
            )
        };
        let good = manifest(&["n1"], &rest("busybox:1"));
        let f = Fleet::start(&["n1"], &good).await;
        let first = f.rev();

        // The first revision runs steadily: it becomes the last healthy one (the state file is
        // saved after each pass).
        assert_eq!(f.state_file().last_healthy, None, "not judged at its first pass");
        sleep(Duration::from_secs(20)).await;
        assert_eq!(f.state_file().last_healthy.as_deref(), Some(first.as_str()));

        // A new commit whose container never gets healthy.
        f.engine("n1").unhealthy_image("busybox:2");
        let t0 = f.elapsed();
        let second = f.commit(&manifest(&["n1"], &rest("busybox:2")));
        sleep(Duration::from_secs(2)).await;
        let web = f.engine("n1").container("web").expect("web");
        assert_eq!(web.image, "busybox:2", "the new revision is applied");
        sleep(Duration::from_secs(25)).await;
        assert!(f.alerts("rolled back").is_empty(), "not before its deadline");
        sleep(Duration::from_secs(10)).await;
        let rolled = f.alerts("rolled back from");
        assert_eq!(rolled.len(), 1, "{:?}", f.entries());
        let at = f.at(&rolled[0]) - t0.as_secs_f64();
        assert!((30.0..36.0).contains(&at), "rolled back {at} s after the commit");
        assert_eq!(
            f.engine("n1").container("web").map(|c| c.image).as_deref(),
            Some("busybox:1"),
            "the previous revision's container is back"
        );
        let f = f.stop().await;
        let state = f.state_file();
        let rb = state.rolled_back.expect("rolled back");
        assert_eq!((rb.from.as_str(), rb.to.as_str()), (second.as_str(), first.as_str()));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn hung_node_does_not_hold_up_the_others() {
    on_one_task(async {
        let body = manifest(
            &["n1", "n2"],
            &format!(
                "config: {{check_interval: 1h}}\ndrift_rules:\n  missing_containers: {{action: recreate, grace_period: 0}}\ncontainers:\n{}{}",
                container("web", "n1", "busybox:1"),
                container("web", "n2", "busybox:1")
            ),
        );
        let f = Fleet::start(&["n1", "n2"], &body).await;
        let (n1, n2) = (f.engine("n1"), f.engine("n2"));
        n1.set_reach(Reach::Hung);
        // Someone removes web on n2: healed at once, while n1 does not answer at all.
        n2.remove_outside("web");
        sleep(Duration::from_millis(500)).await;
        assert!(running(n2, "web"), "n2 healed while n1 hangs: {:?}", n2.calls());

        // A full pass over both: n2 healed again at once, n1 given up on after the probe timeout.
        let before = f.elapsed();
        f.engine("n2").remove_outside("web");
        f.repo.write("other.txt", "x");
        f.repo.commit("wake");
        sleep(Duration::from_millis(500)).await;
        assert!(running(n2, "web"));
        sleep(crate::node_pass::PROBE_TIMEOUT).await;
        let unreachable = f.alerts("node `n1` is unreachable");
        assert_eq!(unreachable.len(), 1, "{:?}", f.entries());
        let at = f.at(&unreachable[0]) - before.as_secs_f64();
        assert!(at <= crate::node_pass::PROBE_TIMEOUT.as_secs_f64() + 1.0, "reported {at} s later");

        // It answers again: the loop is still running and heals it.
        n1.set_reach(Reach::Up);
        n1.remove_outside("web");
        sleep(Duration::from_secs(2)).await;
        assert!(running(n1, "web"), "{:?}", n1.calls());
        f.stop().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn node_whose_container_list_hangs_is_given_up_on_and_the_loop_goes_on() {
    on_one_task(async {
        let body = manifest(
            &["n1", "n2"],
            &format!(
                "config: {{check_interval: 1h}}\ndrift_rules:\n  missing_containers: {{action: recreate, grace_period: 0}}\ncontainers:\n{}{}",
                container("web", "n1", "busybox:1"),
                container("web", "n2", "busybox:1")
            ),
        );
        let f = Fleet::start(&["n1", "n2"], &body).await;
        let (n1, n2) = (f.engine("n1"), f.engine("n2"));
        // n1 answers its version but never lists its containers.
        n1.hang_observe(true);
        let before = f.elapsed();
        f.repo.write("other.txt", "x");
        f.repo.commit("a full pass");
        n2.remove_outside("web");
        sleep(Duration::from_millis(500)).await;
        assert!(running(n2, "web"), "n2 healed at once: {:?}", n2.calls());

        sleep(crate::node_pass::OBSERVE_TIMEOUT).await;
        let unreachable = f.alerts("node `n1` is unreachable");
        assert_eq!(unreachable.len(), 1, "{}", f.log());
        let at = f.at(&unreachable[0]) - before.as_secs_f64();
        let limit = crate::node_pass::OBSERVE_TIMEOUT.as_secs_f64();
        assert!(
            (limit..limit + 1.0).contains(&at),
            "given up on {at} s into the pass"
        );

        // The pass ended and the loop goes on: n2 is healed again while n1 still hangs. Not at
        // once: a full pass (the new revision's deadline is due) waits for n1 again, and the
        // event waits for that pass to end.
        n2.remove_outside("web");
        let removed = f.elapsed();
        sleep(crate::node_pass::OBSERVE_TIMEOUT + Duration::from_secs(1)).await;
        assert!(running(n2, "web"), "{:?}\n{}", n2.calls(), f.log());
        let births = f.about("birth", "web");
        let healed = f.at(births.last().expect("birth")) - removed.as_secs_f64();
        assert!(healed <= limit + 0.5, "healed {healed} s after its removal");
        n1.hang_observe(false);
        f.stop().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn dockerd_loss_is_alerted_once_and_healed_when_it_returns() {
    on_one_task(async {
        let body = manifest(
            &["n1"],
            &format!(
                "config: {{check_interval: 5s}}\ndrift_rules:\n  status_drift: {{action: restart, grace_period: 0}}\ncontainers:\n{}",
                container("web", "n1", "busybox:1")
            ),
        );
        let f = Fleet::start(&["n1"], &body).await;
        let n1 = f.engine("n1");
        assert!(running(n1, "web"));
        n1.set_reach(Reach::Gone);
        // The engine's restart takes its containers down with it.
        n1.crash("web");
        sleep(Duration::from_secs(60)).await;
        let said: Vec<Value> = f
            .entries()
            .into_iter()
            .filter(|e| e["kind"] == "alert" && e["message"].as_str().is_some_and(|m| m.contains("n1")))
            .collect();
        assert_eq!(said.len(), 1, "one alert over a minute of periodic passes: {said:?}");

        let back = f.elapsed();
        n1.set_reach(Reach::Up);
        sleep(Duration::from_secs(11)).await;
        assert!(running(n1, "web"), "healed once the engine is back: {:?}", n1.calls());
        let restart = f.about("mutation", "web");
        assert!(!restart.is_empty(), "{}", f.log());
        let at = f.at(restart.last().expect("restart on record")) - back.as_secs_f64();
        assert!(at <= 10.5, "healed {at} s after the engine returned (reconnect backoff ≤ 10 s)");
        f.stop().await;
    })
    .await;
}

/// `image_policy`: a registry whose tags cannot be listed (the fake engine has no registry, as
/// an outage) is alerted once for its streak, not at every pass, and nothing is removed: once a
/// matching tag is present locally, the container is created from it and kept.
#[tokio::test(start_paused = true)]
async fn failed_tag_listings_are_alerted_once_and_change_nothing() {
    on_one_task(async {
        let body = manifest(
            &["n1"],
            "config: {check_interval: 2s, image_check_interval: 1s}\ncontainers:\n  - name: web\n    image: busybox\n    node: n1\n    image_policy: {semver: \"^1\"}\n",
        );
        let f = Fleet::start(&["n1"], &body).await;
        let n1 = f.engine("n1");
        assert!(n1.container("web").is_none(), "no version tag known yet");
        n1.add_image("busybox:1.2.0");
        sleep(Duration::from_secs(60)).await;
        assert_eq!(
            n1.container("web").map(|c| c.image),
            Some("busybox:1.2.0".to_owned()),
            "created from the local tag: {}",
            f.log()
        );
        let alerts = f.alerts("failed to list the tags of `busybox`");
        assert_eq!(alerts.len(), 1, "one alert for the streak: {}", f.log());
        assert!(
            n1.observations() >= 10,
            "passes (and listings, backing off) went on meanwhile: {}",
            n1.observations()
        );
        assert!(running(n1, "web"));
        assert_eq!(count(&n1.calls(), "remove web"), 0, "{:?}", n1.calls());
        f.stop().await;
    })
    .await;
}

/// A compose stack `shop` on `n1` whose service `web` runs `image` under `pull_policy`.
fn pull_policy_stack(image: &str, policy: &str, mode: &str) -> (String, String) {
    let body = manifest(
        &["n1"],
        &format!(
            "config:\n  mode: {mode}\nstacks:\n  - name: shop\n    node: n1\n    files: [compose.yml]\n"
        ),
    );
    let compose = format!("services:\n  web:\n    image: {image}\n    pull_policy: {policy}\n");
    (body, compose)
}

#[tokio::test(start_paused = true)]
async fn pull_policy_every_pulls_again_each_period_and_moves_the_running_service_to_the_new_image()
{
    on_one_task(async {
        const IMAGE: &str = "reg.test:5000/app:stable";
        let (body, compose) = pull_policy_stack(IMAGE, "every_10s", "enforce");
        let v1 = std::sync::Mutex::new(String::new());
        let f = Fleet::start_with(&["n1"], &body, &[("compose.yml", &compose)], |rt| {
            if let Ok(mut v) = v1.lock() {
                *v = rt.move_tag(IMAGE, "v1");
            }
        })
        .await;
        let v1 = v1.into_inner().expect("v1");
        let n1 = f.engine("n1");
        let pulls = || count(&n1.calls(), &format!("pull {IMAGE}"));
        let web = || n1.container("shop_web_1").map(|c| c.image_id);
        assert_eq!(
            web(),
            Some(v1.clone()),
            "created on the pulled image: {:?}",
            n1.calls()
        );
        assert_eq!(
            pulls(),
            1,
            "pulled once, not again by the create: {:?}",
            n1.calls()
        );

        // The tag moves in the registry: nothing local changes before the period is over.
        let v2 = n1.move_tag(IMAGE, "v2");
        sleep(Duration::from_millis(9_000)).await;
        assert_eq!(
            (pulls(), web()),
            (1, Some(v1.clone())),
            "within the period: {}",
            f.log()
        );
        sleep(Duration::from_millis(1_500)).await;
        assert_eq!(
            pulls(),
            2,
            "pulled again once the period was over, without waiting for the 60 s pass"
        );
        assert_eq!(
            web(),
            Some(v2.clone()),
            "the running service moved to the new image: {}",
            f.log()
        );
        let recreated: Vec<Value> = f
            .entries()
            .into_iter()
            .filter(|e| e["kind"] == "mutation" && e["resource"] == "docker/n1/stack/shop/web/1")
            .collect();
        assert_eq!(
            recreated.len(),
            1,
            "one recreate, as image drift: {}",
            f.log()
        );
        assert!((10.0..10.5).contains(&f.at(&recreated[0])), "{}", f.log());

        // The registry goes down: the service keeps running on its image; the pull is retried
        // (once per period here, the period being shorter than the first backoff) and nothing
        // is removed.
        n1.set_registry_down(true);
        let v3 = n1.move_tag(IMAGE, "v3");
        sleep(Duration::from_secs(35)).await;
        let failing = pulls() - 2;
        assert!(
            (3..=4).contains(&failing),
            "retried each period, no faster: {failing} pulls in 35 s"
        );
        assert_eq!(
            web(),
            Some(v2.clone()),
            "nothing removed or replaced meanwhile"
        );
        assert!(running(n1, "shop_web_1"));
        assert_eq!(
            n1.local_image_id(IMAGE),
            Some(v2.clone()),
            "the local image is kept"
        );
        let alerts = f.alerts(&format!("failed to pull `{IMAGE}` again (pull_policy)"));
        assert_eq!(
            alerts.len(),
            1,
            "one alert for the streak of failed pulls: {}",
            f.log()
        );

        // Back up: the next try pulls and the service moves.
        n1.set_registry_down(false);
        sleep(Duration::from_secs(11)).await;
        assert_eq!(
            web(),
            Some(v3),
            "on the newest image once the registry answers: {}",
            f.log()
        );

        let f = f.stop().await;
        let saved = f.state_file().pulled;
        assert!(
            saved.get("n1").is_some_and(|m| m.contains_key(IMAGE)),
            "the last pull is in the state file: {saved:?}"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn pull_policy_every_on_a_read_only_node_pulls_nothing() {
    on_one_task(async {
        const IMAGE: &str = "reg.test:5000/app:stable";
        let (body, compose) = pull_policy_stack(IMAGE, "every_2s", "read-only");
        let f = Fleet::start_with(&["n1"], &body, &[("compose.yml", &compose)], |rt| {
            rt.add_image(IMAGE);
            rt.move_tag(IMAGE, "v2");
        })
        .await;
        let n1 = f.engine("n1");
        sleep(Duration::from_secs(130)).await;
        assert!(n1.observations() >= 2, "passes ran");
        assert_eq!(
            count(&n1.calls(), &format!("pull {IMAGE}")),
            0,
            "{:?}",
            n1.calls()
        );
        f.stop().await;
    })
    .await;
}

/// A fleet of `n1` whose container `web` follows the tag `image` under `image_update:
/// {action}`, the registry checked every 30 s; the tag is at `v1` in the registry, so `web` is
/// created by pulling it. Returns the fleet and the id of `v1`'s image.
async fn image_update_fleet(image: &str, action: &str) -> (Fleet, String) {
    let body = manifest(
        &["n1"],
        &format!(
            "config: {{check_interval: 10s, image_check_interval: 30s}}\ndrift_rules:\n  image_update: {{action: {action}}}\ncontainers:\n{}",
            container("web", "n1", image)
        ),
    );
    let v1 = std::sync::Mutex::new(String::new());
    let f = Fleet::start_with(&["n1"], &body, &[], |rt| {
        if let Ok(mut v) = v1.lock() {
            *v = rt.move_tag(image, "v1");
        }
    })
    .await;
    (f, v1.into_inner().expect("v1"))
}

#[tokio::test(start_paused = true)]
async fn index_moved_for_another_platform_is_no_update_and_is_asked_about_once() {
    on_one_task(async {
        const IMAGE: &str = "reg.test:5000/app:stable";
        let (f, v1) = image_update_fleet(IMAGE, "recreate").await;
        let n1 = f.engine("n1");
        let web = n1.container("web").expect("web created");
        assert_eq!(web.image_id, v1, "created on the pulled image");
        assert_eq!(
            web.repo_digest,
            n1.registry_digest_of(IMAGE)
                .map(|d| format!("reg.test:5000/app@{d}")),
            "created from the tag's digest"
        );
        let asked = || count(&n1.calls(), &format!("registry_image_id {IMAGE}"));

        // The index moves for another platform: a new digest, the same image here. (The
        // first check is at the second pass, 10 s in: the first pass created `web`.)
        n1.move_index(IMAGE, "arm64-2");
        sleep(Duration::from_secs(95)).await;
        assert_eq!(
            count(&n1.calls(), &format!("registry_digest {IMAGE}")),
            3,
            "checked at 10, 40 and 70 s: {:?}",
            n1.calls()
        );
        assert_eq!(asked(), 1, "asked once for that digest: {:?}", n1.calls());
        assert_eq!(
            n1.container("web").map(|c| c.id),
            Some(web.id.clone()),
            "not replaced: {}",
            f.log()
        );
        assert!(f.about("mutation", "web").is_empty(), "{}", f.log());

        // This platform's image changes: an update, carried out.
        let v2 = n1.move_tag(IMAGE, "v2");
        sleep(Duration::from_secs(45)).await;
        assert_eq!(
            n1.container("web").map(|c| c.image_id),
            Some(v2),
            "moved to the new image: {}",
            f.log()
        );
        assert_eq!(asked(), 2, "asked once more, for the new digest");
        f.stop().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn registry_checks_back_off_while_the_registry_is_down_and_alert_once() {
    on_one_task(async {
        const IMAGE: &str = "reg.test:5000/app:stable";
        let (f, _) = image_update_fleet(IMAGE, "alert").await;
        let n1 = f.engine("n1");
        let web = n1.container("web").expect("web created");
        let checks = || count(&n1.calls(), &format!("registry_digest {IMAGE}"));
        sleep(Duration::from_secs(15)).await;
        assert_eq!(checks(), 1, "checked at the second pass (10 s)");

        n1.set_registry_down(true);
        // Due at 40 s; failing there, then asked after 30 s, 60 s, 120 s: at 70, 130, 250.
        sleep(Duration::from_secs(230)).await;
        assert_eq!(
            checks(),
            1 + 3,
            "backing off (every 30 s would be 7): {:?}",
            n1.calls()
        );
        let failed = f.alerts("failed to check registry `reg.test:5000`");
        assert_eq!(failed.len(), 1, "alerted once: {}", f.log());
        assert_eq!(n1.container("web").map(|c| c.id), Some(web.id.clone()));
        assert!(running(n1, "web"));

        // Back, and the tag moved meanwhile: the next check (at 250 s) sees the update,
        // reported and not acted on.
        n1.set_registry_down(false);
        n1.move_tag(IMAGE, "v2");
        sleep(Duration::from_secs(10)).await;
        assert_eq!(checks(), 1 + 4);
        let update = f.alerts("update available for `reg.test:5000/app:stable`");
        assert!(!update.is_empty(), "{}", f.log());
        assert_eq!(n1.container("web").map(|c| c.id), Some(web.id));
        f.stop().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_tag_moving_often_is_followed_without_tripping_flap_protection() {
    on_one_task(async {
        const IMAGE: &str = "reg.test:5000/app:latest";
        let (f, _) = image_update_fleet(IMAGE, "recreate").await;
        let n1 = f.engine("n1");
        // Seven moves within the 10-minute window (flap protection stops at 5 actions).
        for i in 2..=8 {
            let last = n1.move_tag(IMAGE, &format!("v{i}"));
            sleep(Duration::from_secs(40)).await;
            assert_eq!(
                n1.container("web").map(|c| c.image_id),
                Some(last),
                "move {i} followed: {}",
                f.log()
            );
        }
        assert_eq!(f.about("mutation", "web").len(), 7, "{}", f.log());
        // (A fight over a container still trips it: see
        // `flapping_container_is_suspended_after_max_actions_and_alerted`.)
        assert!(f.alerts("flap protection").is_empty(), "{}", f.log());
        f.stop().await;
    })
    .await;
}
