//! Issue 25 end to end: a real `refinery run` on a clone of a real remote and the real engine.
//! Signed push webhooks (bodies from the forge fixtures) deploy at once while `--fetch-interval`
//! is an hour; refused ones fetch nothing; `POST /api/v1/sync` needs the token; the deploy result
//! goes back to a stand-in forge as commit statuses; `--follow-tag` enforces the highest tag.
//!
//! "Nothing happened" is always proven by something that did: the daemon ran two more passes
//! (`--check-interval 1s`), its log shows no fetch since, and a later valid request is applied.

use std::path::Path;
use std::time::{Duration, Instant};

use refinery_core::ContainerState;
use refinery_forge::Forge;
use refinery_forge::testing::{StandInForge, webhook_headers};
use refinery_git::TestRepo;

use crate::common::{Env, IMAGE};
use crate::harness::{Daemon, PATIENCE, eventually};

const SECRET: &str = "e2e-webhook-secret";
const TOKEN: &str = "e2e-status-token";

/// A manifest declaring `names`, all running [`IMAGE`].
fn manifest(env: &Env, names: &[String]) -> String {
    let mut body = String::from("containers:\n");
    for n in names {
        body.push_str(&format!("  - name: {n}\n    image: {IMAGE}\n"));
    }
    env.manifest(&body)
}

/// A push webhook body as `forge` documents it (the fixtures of `refinery-forge`), about
/// `git_ref` now at `after`, and the event header's value.
fn push_body(forge: Forge, git_ref: &str, after: &str) -> (Vec<u8>, &'static str) {
    let tag = git_ref.starts_with("refs/tags/");
    let (file, event) = match (forge, tag) {
        (Forge::Github, false) => ("github-push-branch.json", "push"),
        (Forge::Github, true) => ("github-push-tag.json", "push"),
        (Forge::Gitlab, false) => ("gitlab-push.json", "Push Hook"),
        (Forge::Gitlab, true) => ("gitlab-tag-push.json", "Tag Push Hook"),
        (Forge::Gitea, _) => ("gitea-push.json", "push"),
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../refinery-forge/tests/fixtures/webhooks")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("webhook fixture");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("fixture is JSON");
    v["ref"] = git_ref.into();
    v["after"] = after.into();
    if forge == Forge::Gitlab {
        v["checkout_sha"] = after.into();
    }
    (serde_json::to_vec(&v).expect("encode"), event)
}

/// How often the log says the daemon fetched from the remote.
fn fetches(d: &Daemon) -> usize {
    d.log_text().matches("fetched from the remote").count()
}

fn passes(d: &Daemon) -> usize {
    d.log_text().matches("pass done").count()
}

/// Waits until the daemon's log gives `Some`, for at most [`PATIENCE`].
async fn from_log<T>(d: &mut Daemon, what: &str, f: impl Fn(&str) -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f(&d.log_text()) {
            return v;
        }
        d.assert_alive();
        assert!(
            Instant::now() < deadline,
            "{what}: not within {PATIENCE:?}\nlog:\n{}",
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The `--listen 127.0.0.1:0` address, as the daemon logs it.
async fn listen_base(d: &mut Daemon) -> String {
    from_log(d, "the status server listening", |log| {
        let at = log.find("status page on http://")?;
        let rest = &log[at + "status page on ".len()..];
        let end = rest[7..].find('/')? + 7;
        Some(rest[..end].to_owned())
    })
    .await
}

/// Waits for two more passes: the loop ran on after whatever came before.
async fn two_more_passes(d: &mut Daemon) {
    let before = passes(d);
    from_log(d, "two more passes", |log| {
        (log.matches("pass done").count() >= before + 2).then_some(())
    })
    .await;
}

async fn running_at(env: &Env, d: &mut Daemon, suffix: &str, revision: &str) {
    eventually(&format!("`{suffix}` running at {revision}"), d, || async {
        env.container(suffix).await.filter(|c| {
            c.state == ContainerState::Running
                && c.labels.get("io.refinery.revision").map(String::as_str) == Some(revision)
        })
    })
    .await;
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&'static str, String)],
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let mut req = client.post(url).body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.expect("request to the daemon");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// A remote with `web`, and the daemon on a clone of it, told of pushes only by webhooks.
struct Hooked {
    remote: TestRepo,
    _clone: TestRepo,
    _dir: tempfile::TempDir,
    d: Daemon,
    base: String,
}

async fn hooked(env: &Env, extra: &[&str], first: &[String]) -> Hooked {
    let remote = TestRepo::bare();
    remote.write("refinery.yaml", manifest(env, first));
    remote.commit("first");
    let clone = TestRepo::clone_of(&remote);
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("webhook-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).expect("write the secret");
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).expect("write the token");
    let secret = secret.to_string_lossy().into_owned();
    let token = token.to_string_lossy().into_owned();
    let mut args: Vec<&str> = vec![
        "--branch",
        "main",
        "--fetch-interval",
        "1h",
        "--check-interval",
        "1s",
        "--listen",
        "127.0.0.1:0",
    ];
    for a in extra {
        match *a {
            "SECRET" => args.extend(["--webhook-secret-file", secret.as_str()]),
            "TOKEN" => args.extend(["--token-file", token.as_str()]),
            other => args.push(other),
        }
    }
    let mut d = Daemon::start_in(clone.path(), &args);
    let base = listen_base(&mut d).await;
    Hooked {
        remote,
        _clone: clone,
        _dir: dir,
        d,
        base,
    }
}

#[tokio::test]
async fn daemon_signed_webhook_per_forge_deploys_at_once_and_refused_ones_do_nothing() {
    let env = Env::new().await;
    let mut names = vec![env.name("web")];
    let mut h = hooked(&env, &["SECRET"], &names).await;
    eventually("web running", &mut h.d, || async {
        env.container("web")
            .await
            .filter(|c| c.state == ContainerState::Running)
    })
    .await;
    let http = client();
    for forge in Forge::ALL {
        let suffix = format!("api-{forge}");
        names.push(env.name(&suffix));
        h.remote.write("refinery.yaml", manifest(&env, &names));
        let pushed = h.remote.commit(&format!("add {suffix}"));
        let url = format!("{}/api/v1/webhooks/{forge}", h.base);
        let (body, event) = push_body(forge, "refs/heads/main", &pushed);
        let fetched = fetches(&h.d);

        // A wrong and a missing signature: 401, and nothing is fetched or deployed.
        let wrong = webhook_headers(forge, "not-the-secret", event, &body);
        let (status, json) = post(&http, &url, &wrong, body.clone()).await;
        assert_eq!(status, 401, "{forge} wrong signature: {json}");
        let sig = refinery_forge::signature_header(forge);
        let missing: Vec<_> = webhook_headers(forge, SECRET, event, &body)
            .into_iter()
            .filter(|(k, _)| *k != sig)
            .collect();
        let (status, json) = post(&http, &url, &missing, body.clone()).await;
        assert_eq!(status, 401, "{forge} missing signature: {json}");
        two_more_passes(&mut h.d).await;
        assert_eq!(fetches(&h.d), fetched, "{forge}: a refused webhook fetched");
        assert!(
            env.container(&suffix).await.is_none(),
            "{forge}: deployed without a valid webhook"
        );

        // The signed one: fetched and deployed at once (the fetch interval is an hour).
        let signed = webhook_headers(forge, SECRET, event, &body);
        let (status, json) = post(&http, &url, &signed, body).await;
        assert_eq!(
            (status, json["result"].as_str()),
            (202, Some("fetch queued")),
            "{forge}: {json}"
        );
        running_at(&env, &mut h.d, &suffix, &pushed).await;
        assert_eq!(fetches(&h.d), fetched + 1, "{forge}: one fetch per push");
    }

    // Another branch, and another event: 202, nothing fetched.
    let fetched = fetches(&h.d);
    let (body, event) = push_body(Forge::Github, "refs/heads/feature", &"1".repeat(40));
    let url = format!("{}/api/v1/webhooks/github", h.base);
    let (status, json) = post(
        &http,
        &url,
        &webhook_headers(Forge::Github, SECRET, event, &body),
        body,
    )
    .await;
    assert_eq!((status, json["result"].as_str()), (202, Some("ignored")));

    // A flood of valid webhooks for one push: one fetch (two at most, when one was running as
    // the flood began), and the push is deployed.
    names.push(env.name("flood"));
    h.remote.write("refinery.yaml", manifest(&env, &names));
    let pushed = h.remote.commit("add flood");
    let (body, event) = push_body(Forge::Github, "refs/heads/main", &pushed);
    let headers = webhook_headers(Forge::Github, SECRET, event, &body);
    let sends = (0..30).map(|_| post(&http, &url, &headers, body.clone()));
    for (status, _) in futures_util::future::join_all(sends).await {
        assert_eq!(status, 202);
    }
    running_at(&env, &mut h.d, "flood", &pushed).await;
    two_more_passes(&mut h.d).await;
    let flood_fetches = fetches(&h.d) - fetched;
    assert!(
        (1..=2).contains(&flood_fetches),
        "30 webhooks made {flood_fetches} fetches"
    );

    // This daemon has no bearer token: the sync API refuses, even on loopback.
    let (status, json) = post(
        &http,
        &format!("{}/api/v1/sync", h.base),
        &[("Authorization", format!("Bearer {TOKEN}"))],
        Vec::new(),
    )
    .await;
    assert_eq!(status, 401, "{json}");
    let log = h.d.stop().await;
    assert!(!log.contains(SECRET), "the secret never appears in the log");
}

#[tokio::test]
async fn daemon_sync_api_needs_the_token_and_answers_the_revision_it_enforces() {
    let env = Env::new().await;
    let mut names = vec![env.name("web")];
    let mut h = hooked(&env, &["TOKEN"], &names).await;
    eventually("web running", &mut h.d, || async {
        env.container("web")
            .await
            .filter(|c| c.state == ContainerState::Running)
    })
    .await;
    let http = client();
    names.push(env.name("api"));
    h.remote.write("refinery.yaml", manifest(&env, &names));
    let pushed = h.remote.commit("add api");
    let url = format!("{}/api/v1/sync", h.base);
    let fetched = fetches(&h.d);
    let (status, _) = post(&http, &url, &[], Vec::new()).await;
    assert_eq!(status, 401, "no token");
    let (status, _) = post(
        &http,
        &url,
        &[("Authorization", "Bearer wrong".to_owned())],
        Vec::new(),
    )
    .await;
    assert_eq!(status, 401, "wrong token");
    two_more_passes(&mut h.d).await;
    assert_eq!(fetches(&h.d), fetched, "a refused sync fetched");
    assert!(env.container("api").await.is_none());

    let auth = [("Authorization", format!("Bearer {TOKEN}"))];
    let (status, json) = post(&http, &url, &auth, Vec::new()).await;
    assert_eq!(status, 202, "{json}");
    assert_eq!(json["revision"], pushed.as_str(), "{json}");
    assert_eq!(json["from"], "refs/remotes/origin/main");
    running_at(&env, &mut h.d, "api", &pushed).await;
    let (status, _) = post(&http, &format!("{url}?node=nope"), &auth, Vec::new()).await;
    assert_eq!(status, 404, "an unknown node");

    // Webhooks are off without a secret; the page offers "Sync now" with a token.
    let (status, json) = post(
        &http,
        &format!("{}/api/v1/webhooks/github", h.base),
        &[],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 404, "{json}");
    let page = http
        .get(format!("{}/?token={TOKEN}", h.base))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("page text");
    assert!(page.contains("Sync now"), "the page has the sync button");
    h.d.stop().await;
}

#[tokio::test]
async fn daemon_follow_tag_enforces_the_highest_version_on_a_tag_push_webhook() {
    let env = Env::new().await;
    let mut names = vec![env.name("web")];
    let remote = TestRepo::bare();
    remote.write("refinery.yaml", manifest(&env, &names));
    let v1 = remote.commit("first");
    remote.tag("v1.9.0", &v1);
    // A newer commit on the branch, not tagged: not enforced.
    names.push(env.name("untagged"));
    remote.write("refinery.yaml", manifest(&env, &names));
    remote.commit("untagged");
    let clone = TestRepo::clone_of(&remote);
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).expect("write the secret");
    let mut d = Daemon::start_in(
        clone.path(),
        &[
            "--follow-tag",
            "v*",
            "--fetch-interval",
            "1h",
            "--check-interval",
            "1s",
            "--listen",
            "127.0.0.1:0",
            "--webhook-secret-file",
            &secret.to_string_lossy(),
        ],
    );
    let base = listen_base(&mut d).await;
    running_at(&env, &mut d, "web", &v1).await;
    assert!(env.container("untagged").await.is_none());

    // v1.10.0 is higher than v1.9.0 in version order (not in text order); `nightly` does not
    // match the pattern.
    names.retain(|n| !n.ends_with("untagged"));
    names.push(env.name("api"));
    remote.write("refinery.yaml", manifest(&env, &names));
    let v110 = remote.commit("api");
    remote.tag("v1.10.0", &v110);
    names.push(env.name("nightly"));
    remote.write("refinery.yaml", manifest(&env, &names));
    let nightly = remote.commit("nightly");
    remote.tag("nightly", &nightly);
    let http = client();
    let (body, event) = push_body(Forge::Gitlab, "refs/tags/v1.10.0", &v110);
    let (status, json) = post(
        &http,
        &format!("{base}/api/v1/webhooks/gitlab"),
        &webhook_headers(Forge::Gitlab, SECRET, event, &body),
        body,
    )
    .await;
    assert_eq!(
        (status, json["result"].as_str()),
        (202, Some("fetch queued")),
        "{json}"
    );
    running_at(&env, &mut d, "api", &v110).await;
    assert!(env.container("nightly").await.is_none());
    assert!(env.container("untagged").await.is_none());
    d.stop().await;
}

/// The stand-in's repository for `forge` (GitLab: a project path).
fn repository(forge: Forge) -> &'static str {
    match forge {
        Forge::Gitlab => "ops/infra",
        Forge::Github | Forge::Gitea => "acme/infra",
    }
}

/// pending → success for a healthy commit, pending → failure for one whose image cannot be
/// pulled; path, credential, body as `forge` documents them.
async fn commit_statuses_reach_the_forge(forge: Forge) {
    let env = Env::new().await;
    let token = format!("forge-token-{forge}");
    let stand_in = StandInForge::start(forge, repository(forge), &token).await;
    let web = env.name("web");
    let doc = |image: &str| {
        env.manifest(&format!(
            "containers:\n  - name: {web}\n    image: {image}\ncommit_status:\n  provider: {forge}\n  api_url: {}\n  repository: {}\n",
            stand_in.api_url(),
            repository(forge)
        ))
        .replace("config: {", "config: {health_deadline: 4s, ")
    };
    let good = env.commit_file("refinery.yaml", &doc(IMAGE));
    let public = "https://refinery.example:9470";
    let mut d = Daemon::start_with_env(
        env.repo.path(),
        &["--public-url", public],
        &[("REFINERY_FORGE_TOKEN", std::ffi::OsStr::new(&token))],
    );
    stand_in
        .wait_until(PATIENCE, "pending then success", |_| {
            stand_in.states_of(&good) == ["pending", "success"]
        })
        .await;
    d.assert_alive();

    // An image that cannot be pulled (nothing listens on port 9).
    let bad = env.commit_file("refinery.yaml", &doc("127.0.0.1:9/refinery-missing:1"));
    let failure = if forge == Forge::Gitlab {
        "failed"
    } else {
        "failure"
    };
    stand_in
        .wait_until(PATIENCE, "pending then failure", |_| {
            stand_in.states_of(&bad) == ["pending", failure]
        })
        .await;
    d.stop().await;

    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .expect("hostname");
    let requests = stand_in.requests();
    let prefix = match forge {
        Forge::Github => format!("/repos/{}/statuses/", repository(forge)),
        Forge::Gitlab => "/api/v4/projects/ops%2Finfra/statuses/".to_owned(),
        Forge::Gitea => format!("/api/v1/repos/{}/statuses/", repository(forge)),
    };
    let (header, value) = match forge {
        Forge::Github => ("authorization", format!("Bearer {token}")),
        Forge::Gitlab => ("private-token", token.clone()),
        Forge::Gitea => ("authorization", format!("token {token}")),
    };
    let context_key = if forge == Forge::Gitlab {
        "name"
    } else {
        "context"
    };
    for r in &requests {
        assert!(r.problems.is_empty(), "{forge}: {r:?}");
        assert_eq!((r.method.as_str(), r.answered), ("POST", 201), "{r:?}");
        assert!(r.path.starts_with(&prefix), "{forge}: {}", r.path);
        assert_eq!(r.headers.get(header), Some(&value), "{forge}: {r:?}");
        assert_eq!(r.body[context_key], format!("refinery/{host}"), "{r:?}");
        assert_eq!(r.body["target_url"], public, "{r:?}");
    }
    let described = |sha: &str, state: &str| {
        requests
            .iter()
            .find(|r| r.sha() == sha && r.state() == state)
            .and_then(|r| r.body["description"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(described(&good, "success").contains("healthy"));
    let why = described(&bad, failure);
    assert!(why.contains("failed"), "{forge}: {why}");
    assert_eq!(stand_in.states_of(&good), ["pending", "success"]);
}

#[tokio::test]
async fn daemon_commit_status_github() {
    commit_statuses_reach_the_forge(Forge::Github).await;
}

#[tokio::test]
async fn daemon_commit_status_gitlab() {
    commit_statuses_reach_the_forge(Forge::Gitlab).await;
}

#[tokio::test]
async fn daemon_commit_status_gitea() {
    commit_statuses_reach_the_forge(Forge::Gitea).await;
}
