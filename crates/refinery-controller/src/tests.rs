//! The controller's parts on their own: a real repository and ledger in a temp dir, tokio's clock
//! paused (the controller's [`TokioClock`] follows it), so every "not yet" is proven by the time
//! it is asked at, not by a wall-clock sleep.

use std::sync::Arc;
use std::time::Duration;

use refinery_core::daemon_state::RevisionHealth;
use refinery_core::{EngineEvent, Observed, ResourceId, StepKind};
use refinery_docker::DockerRuntime;
use refinery_git::TestRepo;
use refinery_store::request_queue::{self as requests, Request};
use serde_json::Value;
use tokio::time::{Instant, advance};

use crate::action_marks::events_of;
use crate::controller::PassAcc;
use crate::node_engines::DockerConnector;
use crate::ports::{Clock, NoReporter, PlainFollow, TokioClock};
use crate::{Boot, Controller, ControllerOptions, Trigger};

const START: &str = "2026-03-01T10:00:00Z";

/// A node whose engine is never there, and one declared container `web` on it.
fn manifest(extra: &str) -> String {
    format!(
        "nodes:\n  - name: n1\n    docker: unix:///nonexistent/refinery-controller-test.sock\ncontainers:\n  - name: web\n    image: busybox:latest\n    node: n1\n{extra}"
    )
}

struct Rig {
    repo: TestRepo,
    state: tempfile::TempDir,
    clock: TokioClock,
    c: Controller<DockerRuntime>,
}

fn rig(body: &str) -> Rig {
    let repo = TestRepo::new();
    repo.write("refinery.yaml", body);
    repo.commit("first");
    let state = tempfile::tempdir().expect("temp dir");
    let clock = TokioClock::starting_at(START.parse().expect("time"));
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
    let engines = Box::new(DockerConnector::new(repo.path()));
    let c = Controller::new(boot, engines, None, Box::new(NoReporter), Arc::new(clock));
    Rig {
        repo,
        state,
        clock,
        c,
    }
}

impl Rig {
    /// The ledger's entries so far, as JSON.
    fn entries(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.c.ledger_path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
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

    fn commit(&self, body: &str) -> String {
        self.repo.write("refinery.yaml", body);
        self.repo.commit("next")
    }
}

fn event(action: &str, name: &str) -> Trigger {
    Trigger::Event {
        node: "n1".into(),
        event: EngineEvent {
            action: action.into(),
            detail: None,
            container_id: format!("id-{name}"),
            name: Some(name.into()),
            labels: std::collections::BTreeMap::new(),
            exit_code: None,
            time_nanos: None,
        },
        received: Instant::now(),
    }
}

#[tokio::test(start_paused = true)]
async fn own_events_during_an_action_and_just_after_are_not_outside_changes() {
    let mut r = rig(&manifest(""));
    r.c.mark_ours(&["web".into()], events_of(StepKind::Restart));
    assert!(
        r.c.on_triggers(vec![event("die", "web")]),
        "a die makes a pass due"
    );
    r.c.end_ours(&["web".into()]);
    advance(Duration::from_millis(500)).await;
    assert!(r.c.on_triggers(vec![event("start", "web")]));
    assert!(
        r.entries().iter().all(|e| e["actor"] != "outside"),
        "refinery's own restart is not recorded as an outside change: {:?}",
        r.entries()
    );

    // Past the margin, the same event is someone else's.
    advance(Duration::from_secs(2)).await;
    r.c.on_triggers(vec![event("stop", "web")]);
    let outside: Vec<_> = r
        .entries()
        .into_iter()
        .filter(|e| e["actor"] == "outside")
        .collect();
    assert_eq!(outside.len(), 1, "{outside:?}");
    assert_eq!(outside[0]["kind"], "mutation");
    assert_eq!(outside[0]["resource"], "docker/n1/container/web");
}

#[tokio::test(start_paused = true)]
async fn event_kill_alone_makes_no_pass_due() {
    let mut r = rig(&manifest(""));
    assert!(!r.c.on_triggers(vec![event("kill", "web")]));
    assert!(r.c.on_triggers(vec![event("die", "web")]));
    assert_eq!(
        r.c.scope
            .as_ref()
            .map(|s| s.iter().cloned().collect::<Vec<_>>()),
        Some(vec!["n1".to_owned()]),
        "an event-only pass covers the node the event came from"
    );
}

#[tokio::test(start_paused = true)]
async fn flap_guard_suspends_after_max_actions_until_spec_change_or_resume() {
    let mut r = rig(&manifest(
        "drift_rules:\n  flapping: {max_actions: 3, window: 1m}\n",
    ));
    let id = ResourceId::container("n1", "web");
    let rev = r.c.rev();
    let flapping = r.c.manifest().drift_rules.flapping.expect("flapping");
    let mut acc = PassAcc::new();
    for _ in 0..3 {
        r.c.count_action(
            &id,
            Some("h1"),
            "n1",
            &rev,
            r.clock.now(),
            flapping,
            &mut acc,
        );
        advance(Duration::from_secs(5)).await;
    }
    assert_eq!(acc.records.len(), 1, "the third action trips it, once");

    let restart = refinery_core::Step {
        id: id.clone(),
        kind: StepKind::Restart,
        container_id: Some("id-web".into()),
        drifts: Vec::new(),
        details: vec!["web exited".into()],
        changes: Vec::new(),
        reason: "status drift".into(),
    };
    let mut acc = PassAcc::new();
    let gated =
        r.c.gate_step(&restart, &[], Some("h1"), false, &rev, &mut acc);
    assert_eq!(
        gated.map(|s| s.kind),
        Some(StepKind::Alert),
        "suspended: alert only"
    );
    let again =
        r.c.gate_step(&restart, &[], Some("h1"), false, &rev, &mut acc);
    assert_eq!(again.map(|s| s.kind), Some(StepKind::Alert));
    assert_eq!(
        acc.records.len(),
        1,
        "alerted once per reason, not every pass"
    );

    // Long past the window it stays suspended: only a spec change or `resume` lifts it.
    advance(Duration::from_secs(600)).await;
    let later =
        r.c.gate_step(&restart, &[], Some("h1"), false, &rev, &mut acc);
    assert_eq!(later.map(|s| s.kind), Some(StepKind::Alert));
    let changed =
        r.c.gate_step(&restart, &[], Some("h2"), false, &rev, &mut acc);
    assert_eq!(
        changed.map(|s| s.kind),
        Some(StepKind::Restart),
        "a new spec is acted on"
    );

    // Tripped again, then lifted by `refinery resume` (a request in the state directory).
    for _ in 0..3 {
        r.c.count_action(
            &id,
            Some("h1"),
            "n1",
            &rev,
            r.clock.now(),
            flapping,
            &mut acc,
        );
    }
    let tripped =
        r.c.gate_step(&restart, &[], Some("h1"), false, &rev, &mut acc);
    assert_eq!(tripped.map(|s| s.kind), Some(StepKind::Alert));
    requests::submit(
        r.state.path(),
        &Request::Resume {
            resource: id.to_string(),
        },
    )
    .expect("request");
    assert!(r.c.take_requests().await, "resume makes a pass due");
    let resumed =
        r.c.gate_step(&restart, &[], Some("h1"), false, &rev, &mut acc);
    assert_eq!(resumed.map(|s| s.kind), Some(StepKind::Restart));
    assert_eq!(r.alerts("flap protection lifted").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn grace_period_defers_and_brings_the_next_pass_to_its_end() {
    let r = rig(&manifest(
        "drift_rules:\n  missing_containers: {action: recreate, grace_period: 30}\n",
    ));
    let mut c = r.c;
    let now = r.clock.now();
    let eval = refinery_core::testing::Pass::default()
        .node("n1")
        .now(now)
        .run(c.manifest(), &Observed::default());
    let rev = c.rev();
    let mut acc = PassAcc::new();
    let steps: Vec<_> = eval
        .plan
        .steps
        .iter()
        .filter_map(|s| c.gate_step(s, &eval.decisions, None, true, &rev, &mut acc))
        .collect();
    assert_eq!(
        steps.iter().map(|s| s.kind).collect::<Vec<_>>(),
        vec![StepKind::Defer],
        "missing, within its grace: deferred"
    );
    let due = acc.next_due.expect("a deadline");
    assert_eq!(
        due,
        now.checked_add(jiff::SignedDuration::from_secs(30))
            .expect("time")
    );
    c.next_due = Some(due);
    c.next_full = Instant::now() + Duration::from_secs(3600);
    let wake = c.next_wake();
    assert!(
        wake <= Instant::now() + Duration::from_millis(30_020)
            && wake >= Instant::now() + Duration::from_secs(30),
        "the loop wakes when the grace period ends, not at the periodic pass"
    );
}

#[tokio::test(start_paused = true)]
async fn revision_failing_past_its_deadline_rolls_back_to_the_last_healthy_one() {
    let body = manifest("config: {health_deadline: 30s}\n");
    let mut r = rig(&body);
    let first = r.c.rev();
    assert!(
        !r.c.judge_revision(RevisionHealth::Healthy, r.clock.now())
            .await
    );
    assert_eq!(r.c.state.last_healthy.as_deref(), Some(first.as_str()));

    let second = r.commit(&format!("{body}# a new commit\n"));
    assert!(r.c.poll_git().await, "a new commit makes a pass due");
    assert_eq!(r.c.rev(), second);
    let failing = || RevisionHealth::Failing("`web` exited with code 3".into());

    // Within the deadline: nothing yet.
    advance(Duration::from_secs(29)).await;
    assert!(!r.c.judge_revision(failing(), r.clock.now()).await);
    assert_eq!(r.c.rev(), second);

    advance(Duration::from_secs(2)).await;
    assert!(
        r.c.judge_revision(failing(), r.clock.now()).await,
        "rolled back: a pass is due"
    );
    assert_eq!(r.c.rev(), first);
    let rb = r.c.state.rolled_back.clone().expect("rolled back");
    assert_eq!(
        (rb.from.as_str(), rb.to.as_str()),
        (second.as_str(), first.as_str())
    );
    let alerts = r.alerts("rolled back from");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not healthy within 30s: `web` exited with code 3")),
        "{alerts:?}"
    );
    // The branch still points at the bad commit: it is not taken again.
    assert!(!r.c.poll_git().await);
    assert_eq!(r.c.rev(), first);
}

#[tokio::test(start_paused = true)]
async fn revision_still_progressing_gets_twice_its_deadline() {
    let body = manifest("config: {health_deadline: 30s}\n");
    let mut r = rig(&body);
    let first = r.c.rev();
    r.c.judge_revision(RevisionHealth::Healthy, r.clock.now())
        .await;
    let second = r.commit(&format!("{body}# slow to start\n"));
    assert!(r.c.poll_git().await);
    advance(Duration::from_secs(45)).await;
    assert!(
        !r.c.judge_revision(RevisionHealth::Progressing, r.clock.now())
            .await
    );
    assert_eq!(r.c.rev(), second, "progressing: up to twice the deadline");
    advance(Duration::from_secs(16)).await;
    assert!(
        r.c.judge_revision(RevisionHealth::Progressing, r.clock.now())
            .await
    );
    assert_eq!(r.c.rev(), first);
    assert_eq!(r.alerts("did not run steadily within 60s").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn unreachable_node_is_alerted_once_and_keeps_the_revision_pending() {
    let mut r = rig(&manifest(""));
    let first = r.c.pass().await;
    assert_eq!(first.unreachable, vec!["n1".to_owned()]);
    assert_eq!((first.full, first.nodes, first.actions), (true, 1, 0));
    let check = Duration::from_secs(r.c.manifest().config.check_interval_secs);
    assert!(
        matches!(first.requeue, crate::Requeue::After(d) if d <= check && d > Duration::ZERO),
        "looked at again at the periodic pass: {:?}",
        first.requeue
    );
    r.c.pass().await;
    let alerts = r.alerts("node `n1` is unreachable");
    assert_eq!(alerts.len(), 1, "said once, not every pass: {alerts:?}");
    assert!(
        r.c.state.pending.is_some(),
        "nothing can be judged healthy on it"
    );
    assert!(
        r.c.unreachable
            .contains(&crate::state_keys::Source::node("n1"))
    );
}

#[tokio::test(start_paused = true)]
async fn engine_lost_is_alerted_once_and_its_return_makes_a_full_pass() {
    let mut r = rig(&manifest(""));
    let lost = || Trigger::Lost {
        node: "n1".into(),
        why: "the engine closed the event stream".into(),
    };
    assert!(
        !r.c.on_triggers(vec![lost()]),
        "losing the engine alone runs no pass"
    );
    assert!(!r.c.on_triggers(vec![lost()]));
    let alerts = r.alerts("lost the engine of node `n1`");
    assert_eq!(alerts.len(), 1, "said once while it stays away: {alerts:?}");

    assert!(r.c.on_triggers(vec![
        event("die", "web"),
        Trigger::Back { node: "n1".into() }
    ]));
    assert_eq!(
        r.c.scope, None,
        "the engine is back: a full pass, not an event-only one"
    );
}

#[tokio::test(start_paused = true)]
async fn apply_request_for_another_revision_is_refused_and_runs_no_pass() {
    let mut r = rig(&manifest(""));
    let rev = r.c.rev();
    assert!(!r.c.on_apply_request("req-1", "0000000000000000000000000000000000000000"));
    assert!(!r.c.handover.waiting());
    assert!(
        r.c.on_apply_request("req-2", &rev),
        "the revision in force: a full pass now"
    );
    assert!(r.c.handover.waiting());
}
