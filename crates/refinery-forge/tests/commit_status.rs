//! Commit statuses sent to a stand-in forge on 127.0.0.1 that checks each request as the forge
//! documents it (path, credential, headers, body) and answers as the forge would.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use refinery_core::manifest::CommitStatusConfig;
use refinery_forge::testing::StandInForge;
use refinery_forge::{
    CommitState, CommitStatus, Delivery, DeliveryResult, Forge, ForgeToken, ReporterOptions, Retry,
    StatusReporter, StatusTarget,
};

const SHA: &str = "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5";
const SHA2: &str = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";
const TOKEN: &str = "forge-token-123";
const WAIT: Duration = Duration::from_secs(10);

fn repository(forge: Forge) -> &'static str {
    match forge {
        Forge::Gitlab => "ops/platform/infra",
        Forge::Github | Forge::Gitea => "acme/infra",
    }
}

fn target(forge: Forge, stand_in: &StandInForge, token: &str) -> StatusTarget {
    StatusTarget::new(
        &CommitStatusConfig {
            provider: forge,
            api_url: stand_in.api_url(),
            repository: repository(forge).to_owned(),
            token_env: "REFINERY_FORGE_TOKEN".to_owned(),
        },
        ForgeToken::new(token).expect("token"),
    )
}

/// Quick retries, and every delivery collected.
fn options() -> (ReporterOptions, Arc<Mutex<Vec<Delivery>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let options = ReporterOptions::default()
        .retry(Retry {
            attempts: 4,
            first_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(80),
        })
        .timeout(Duration::from_secs(5))
        .on_delivery(move |d| sink.lock().expect("lock").push(d.clone()));
    (options, seen)
}

fn status(sha: &str, state: CommitState, description: &str) -> CommitStatus {
    CommitStatus::new(sha, state, description, "refinery/lyra")
        .expect("status")
        .with_target_url("https://refinery.example:9470/")
}

async fn deliveries(seen: &Arc<Mutex<Vec<Delivery>>>, n: usize) -> Vec<Delivery> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = seen.lock().expect("lock").clone();
        if now.len() >= n {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {n} deliveries, got {now:#?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn reporter_pending_then_success_reaches_each_forge_as_documented() {
    for forge in Forge::ALL {
        let stand_in = StandInForge::start(forge, repository(forge), TOKEN).await;
        let (options, seen) = options();
        let reporter = StatusReporter::start(target(forge, &stand_in, TOKEN), options);
        reporter.report(status(SHA, CommitState::Pending, "enforcing 59b20b8d5c6f"));
        reporter.report(status(
            SHA,
            CommitState::Success,
            "healthy: 3 containers running",
        ));
        reporter.close(WAIT).await;

        let requests = stand_in.requests();
        assert_eq!(requests.len(), 2, "{forge}: {requests:#?}");
        for r in &requests {
            assert_eq!(r.answered, 201, "{forge}: {r:#?}");
            assert!(r.problems.is_empty(), "{forge}: {:?}", r.problems);
            assert_eq!(r.method, "POST");
            assert_eq!(r.sha(), SHA);
            assert_eq!(r.body["target_url"], "https://refinery.example:9470/");
        }
        assert_eq!(stand_in.states_of(SHA), ["pending", "success"], "{forge}");
        let (path, credential) = match forge {
            Forge::Github => (
                format!("/repos/acme/infra/statuses/{SHA}"),
                ("authorization", format!("Bearer {TOKEN}")),
            ),
            Forge::Gitlab => (
                format!("/api/v4/projects/ops%2Fplatform%2Finfra/statuses/{SHA}"),
                ("private-token", TOKEN.to_owned()),
            ),
            Forge::Gitea => (
                format!("/api/v1/repos/acme/infra/statuses/{SHA}"),
                ("authorization", format!("token {TOKEN}")),
            ),
        };
        assert_eq!(requests[0].path, path);
        assert_eq!(requests[0].headers.get(credential.0), Some(&credential.1));
        let label_key = if forge == Forge::Gitlab {
            "name"
        } else {
            "context"
        };
        assert_eq!(requests[1].body[label_key], "refinery/lyra");
        assert_eq!(
            requests[1].body["description"],
            "healthy: 3 containers running"
        );
        let results: Vec<_> = seen
            .lock()
            .expect("lock")
            .iter()
            .map(|d| d.result.clone())
            .collect();
        assert_eq!(
            results,
            [
                DeliveryResult::Sent { status: 201 },
                DeliveryResult::Sent { status: 201 }
            ]
        );
    }
}

#[tokio::test]
async fn reporter_failure_is_failed_on_gitlab_and_failure_elsewhere() {
    for (forge, word) in [
        (Forge::Gitlab, "failed"),
        (Forge::Github, "failure"),
        (Forge::Gitea, "failure"),
    ] {
        let stand_in = StandInForge::start(forge, repository(forge), TOKEN).await;
        let (options, _seen) = options();
        let reporter = StatusReporter::start(target(forge, &stand_in, TOKEN), options);
        reporter.report(status(
            SHA,
            CommitState::Failure,
            "rolled back: `web` failed to pull image `nope:1`",
        ));
        reporter.close(WAIT).await;
        let requests = stand_in.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(
            requests[0].answered, 201,
            "{forge}: {:?}",
            requests[0].problems
        );
        assert_eq!(requests[0].state(), word);
    }
}

#[tokio::test]
async fn reporter_retries_5xx_with_backoff_then_sends() {
    let stand_in = StandInForge::start(Forge::Github, "acme/infra", TOKEN).await;
    stand_in.answer_next(&[502, 503]);
    let (options, seen) = options();
    let reporter = StatusReporter::start(target(Forge::Github, &stand_in, TOKEN), options);
    reporter.report(status(SHA, CommitState::Pending, "enforcing"));
    let got = deliveries(&seen, 1).await;
    assert_eq!(got[0].result, DeliveryResult::Sent { status: 201 });
    assert_eq!(got[0].attempts, 3);
    let answered: Vec<u16> = stand_in.requests().iter().map(|r| r.answered).collect();
    assert_eq!(answered, [502, 503, 201]);
    reporter.close(WAIT).await;
}

#[tokio::test]
async fn reporter_bad_token_is_rejected_once_not_retried() {
    let stand_in = StandInForge::start(Forge::Gitea, "acme/infra", TOKEN).await;
    let (options, seen) = options();
    let reporter = StatusReporter::start(target(Forge::Gitea, &stand_in, "wrong"), options);
    reporter.report(status(SHA, CommitState::Pending, "enforcing"));
    reporter.close(WAIT).await;
    let got = deliveries(&seen, 1).await;
    assert!(
        matches!(&got[0].result, DeliveryResult::Rejected { status: 401, message } if message.contains("Bad credentials")),
        "{got:#?}"
    );
    assert_eq!(got[0].attempts, 1);
    assert_eq!(stand_in.requests().len(), 1);
}

#[tokio::test]
async fn reporter_newer_status_for_the_commit_supersedes_one_being_retried() {
    let stand_in = StandInForge::start(Forge::Github, "acme/infra", TOKEN).await;
    // The forge is down for the pending status's first attempts.
    stand_in.answer_next(&[503, 503]);
    let (options, seen) = options();
    let options = options.retry(Retry {
        attempts: 5,
        first_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(1),
    });
    let reporter = StatusReporter::start(target(Forge::Github, &stand_in, TOKEN), options);
    reporter.report(status(SHA, CommitState::Pending, "enforcing"));
    // Once the first attempt failed, the result is known: the pending one is obsolete.
    stand_in
        .wait_until(WAIT, "a first attempt", |r| !r.is_empty())
        .await;
    reporter.report(status(SHA, CommitState::Success, "healthy"));
    reporter.report(status(SHA2, CommitState::Pending, "enforcing the next one"));
    let got = deliveries(&seen, 3).await;
    let summary: Vec<(String, CommitState, DeliveryResult)> = got
        .iter()
        .map(|d| (d.sha.clone(), d.state, d.result.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                SHA.to_owned(),
                CommitState::Pending,
                DeliveryResult::Superseded
            ),
            (
                SHA.to_owned(),
                CommitState::Success,
                DeliveryResult::Sent { status: 201 }
            ),
            (
                SHA2.to_owned(),
                CommitState::Pending,
                DeliveryResult::Sent { status: 201 }
            ),
        ]
    );
    assert_eq!(stand_in.states_of(SHA), ["success"]);
    reporter.close(WAIT).await;
}

#[tokio::test]
async fn reporter_unreachable_forge_gives_up_after_its_attempts() {
    // A port nothing listens on: bind, learn it, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let config = CommitStatusConfig {
        provider: Forge::Github,
        api_url: format!("http://127.0.0.1:{port}"),
        repository: "acme/infra".to_owned(),
        token_env: "T".to_owned(),
    };
    let (options, seen) = options();
    let reporter = StatusReporter::start(
        StatusTarget::new(&config, ForgeToken::new(TOKEN).expect("token")),
        options,
    );
    reporter.report(status(SHA, CommitState::Pending, "enforcing"));
    let got = deliveries(&seen, 1).await;
    assert_eq!(got[0].attempts, 4);
    match &got[0].result {
        DeliveryResult::GaveUp { reason } => assert!(!reason.contains(TOKEN), "{reason}"),
        other => panic!("{other:?}"),
    }
    reporter.close(WAIT).await;
}
