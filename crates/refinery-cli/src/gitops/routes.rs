//! The endpoints that make the daemon fetch and reconcile now.
//!
//! | request | who may | answers |
//! |---|---|---|
//! | `POST /api/v1/webhooks/github` | signed: `X-Hub-Signature-256` | 202 (a fetch is queued, or the event is not about what is followed), 401 bad or missing signature, 413 over 1 MiB, 400 signed but unreadable, 404 webhooks are off (no secret) |
//! | `POST /api/v1/webhooks/gitlab` | `X-Gitlab-Token` | the same |
//! | `POST /api/v1/webhooks/gitea` | signed: `X-Gitea-Signature` (Forgejo too) | the same |
//! | `POST /api/v1/sync[?node=NAME]` | `Authorization: Bearer <token>` always, loopback too | 202 with the revision it will enforce, 401 without the token (or when none is set), 404 unknown node, 502 the fetch failed |
//!
//! Webhook paths are authenticated by their signature, not the bearer token, so a forge can reach
//! them on a non-loopback `--listen`. A webhook never waits for the fetch: it asks for one and
//! wakes the daemon, and asks that pile up while a fetch runs are answered by one more fetch.

use refinery_core::short_id as short;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use refinery_forge::{Forge, GitRef, MAX_BODY_BYTES, WebhookEvent, WebhookSecret};
use refinery_git::{Follow, Follower};
use serde_json::json;

/// What the endpoints need of the running daemon.
pub trait DaemonLink: Send + Sync + 'static {
    /// Look at git now (a fetch has been asked for), then run a full pass — or, with `node`, a
    /// pass over that node. Never waits; wakes coalesce.
    fn wake(&self, node: Option<&str>);
    /// Whether `node` is one of the daemon's nodes (`?node=NAME`).
    fn has_node(&self, node: &str) -> bool;
    /// The revision the daemon will enforce when what it follows points at `tip`: `tip`, unless
    /// it rolled back from `tip` and stays on an older one until a newer commit arrives.
    fn will_enforce(&self, tip: &str) -> String;
}

/// The state of the endpoints.
pub struct Gitops {
    pub follower: Arc<Follower>,
    /// `None`: webhooks are off.
    pub secret: Option<WebhookSecret>,
    /// The bearer token of `--listen`; the sync API is refused without one.
    pub token: Option<Arc<str>>,
    pub daemon: Arc<dyn DaemonLink>,
}

/// `POST /api/v1/webhooks/{github,gitlab,gitea}` and `POST /api/v1/sync`, to merge into the
/// `--listen` server outside its bearer-token guard (each does its own authentication).
pub fn router(gitops: Arc<Gitops>) -> Router {
    Router::new()
        .route("/api/v1/webhooks/{forge}", post(webhook))
        .route("/api/v1/sync", post(sync))
        // Over this, axum answers 413 before the body is read.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(gitops)
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn webhook(
    State(g): State<Arc<Gitops>>,
    Path(forge): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(forge) = Forge::parse(&forge).filter(|f| f.as_str() == forge) else {
        return answer(
            StatusCode::NOT_FOUND,
            json!({"error": format!("no webhook `{forge}`: the paths are /api/v1/webhooks/github, /gitlab and /gitea")}),
        );
    };
    let Some(secret) = &g.secret else {
        return answer(
            StatusCode::NOT_FOUND,
            json!({
                "error": "webhooks are off: no secret is set",
                "hint": "start `refinery run` with `--webhook-secret-file PATH` or `REFINERY_WEBHOOK_SECRET`, and give the forge the same secret",
            }),
        );
    };
    let event = refinery_forge::verify(forge, &headers, &body, secret)
        .and_then(|()| refinery_forge::parse(forge, &headers, &body));
    let event = match event {
        Ok(event) => event,
        Err(e) => {
            let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            if status == StatusCode::UNAUTHORIZED {
                tracing::warn!(forge = %forge, error = %e, "webhook refused");
            } else {
                tracing::warn!(forge = %forge, error = %e, "webhook not understood");
            }
            return answer(status, json!({"error": e.to_string(), "hints": e.hints()}));
        }
    };
    match event {
        WebhookEvent::Push(push) => {
            let followed = match g.follower.follow() {
                Follow::Branch(b) => push.git_ref == GitRef::Branch(b.clone()),
                Follow::Tag(p) => matches!(&push.git_ref, GitRef::Tag(t) if p.matches(t)),
                Follow::Rev(_) => false,
            };
            if !followed {
                tracing::debug!(forge = %forge, git_ref = %push.git_ref, "push webhook about a ref not followed");
                return answer(
                    StatusCode::ACCEPTED,
                    json!({"result": "ignored", "ref": push.git_ref.full(),
                           "reason": format!("the daemon follows {}", g.follower.follow())}),
                );
            }
            tracing::info!(forge = %forge, git_ref = %push.git_ref, after = push.after.as_deref().unwrap_or("(deleted)"), delivery = push.delivery.as_deref().unwrap_or("-"), "push webhook: fetching");
            g.follower.ask_fetch();
            g.daemon.wake(None);
            answer(
                StatusCode::ACCEPTED,
                json!({"result": "fetch queued", "ref": push.git_ref.full(), "after": push.after}),
            )
        }
        WebhookEvent::Ping => {
            tracing::info!(forge = %forge, "webhook ping: the secret matches");
            answer(StatusCode::ACCEPTED, json!({"result": "pong"}))
        }
        WebhookEvent::Other { event } => answer(
            StatusCode::ACCEPTED,
            json!({"result": "ignored", "event": event, "reason": "only push events are acted on"}),
        ),
    }
}

#[derive(serde::Deserialize)]
struct SyncQuery {
    node: Option<String>,
    token: Option<String>,
}

async fn sync(
    State(g): State<Arc<Gitops>>,
    Query(q): Query<SyncQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(token) = &g.token else {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"refinery\"")],
            axum::Json(json!({
                "error": "the sync API needs a bearer token, and none is set",
                "hint": "start `refinery run` with `--token-file PATH` or `REFINERY_STATUS_TOKEN`, then send `Authorization: Bearer <token>`",
            })),
        )
            .into_response();
    };
    if !crate::web::bearer_matches(&headers, q.token.as_deref(), token) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"refinery\"")],
            axum::Json(
                json!({"error": "a bearer token is required: `Authorization: Bearer <token>`"}),
            ),
        )
            .into_response();
    }
    if let Some(node) = &q.node
        && !g.daemon.has_node(node)
    {
        return answer(
            StatusCode::NOT_FOUND,
            json!({"error": format!("no node `{node}` in this daemon")}),
        );
    }
    let follower = Arc::clone(&g.follower);
    let fetched = tokio::task::spawn_blocking(move || follower.fetch_now(Instant::now())).await;
    let tip = match fetched {
        Ok(Ok(tip)) => {
            if tip.fetched {
                tracing::info!(commit = %tip.commit, from = %tip.source, "fetched from the remote");
            }
            tip
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "sync: the fetch failed");
            return answer(
                StatusCode::BAD_GATEWAY,
                json!({"error": e.to_string(), "hints": e.hints()}),
            );
        }
        Err(e) => {
            return answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": format!("failed to fetch: {e}")}),
            );
        }
    };
    let revision = g.daemon.will_enforce(&tip.commit);
    g.daemon.wake(q.node.as_deref());
    tracing::info!(revision = %short(&revision), node = q.node.as_deref().unwrap_or("all"), "sync asked: a pass runs now");
    answer(
        StatusCode::ACCEPTED,
        json!({
            "revision": revision,
            "tip": tip.commit,
            "from": tip.source,
            "fetched": tip.fetched,
            "node": q.node,
        }),
    )
}

#[cfg(test)]
mod tests {
    //! Real HTTP on loopback against the router, with a real repository behind the follower and
    //! a daemon stand-in that counts its wake-ups.

    use std::sync::Mutex;
    use std::time::Duration;

    use refinery_forge::testing::webhook_headers;
    use refinery_git::{TagPattern, TestRepo};

    use super::*;

    const SECRET: &str = "s3cr3t-0f-the-h00k";
    const TOKEN: &str = "status-token";

    #[derive(Default)]
    struct Daemon {
        wakes: Mutex<Vec<Option<String>>>,
    }

    impl DaemonLink for Daemon {
        fn wake(&self, node: Option<&str>) {
            self.wakes
                .lock()
                .expect("lock")
                .push(node.map(str::to_owned));
        }
        fn has_node(&self, node: &str) -> bool {
            node == "lyra"
        }
        fn will_enforce(&self, tip: &str) -> String {
            tip.to_owned()
        }
    }

    struct Served {
        base: String,
        daemon: Arc<Daemon>,
        follower: Arc<Follower>,
        remote: TestRepo,
        _clone: TestRepo,
        client: reqwest::Client,
        _task: tokio::task::JoinHandle<()>,
    }

    async fn serve(follow: impl FnOnce() -> Follow, secret: bool, token: bool) -> Served {
        let remote = TestRepo::bare();
        remote.write("refinery.yaml", "version: 1\n");
        let c1 = remote.commit("one");
        remote.tag("v1.0.0", &c1);
        let clone = TestRepo::clone_of(&remote);
        let follower = Arc::new(Follower::new(
            clone.source(),
            follow(),
            Duration::from_secs(3600),
        ));
        // The daemon's first look fetched.
        follower.tip(Instant::now()).expect("first tip");
        let daemon = Arc::new(Daemon::default());
        let gitops = Arc::new(Gitops {
            follower: Arc::clone(&follower),
            secret: secret.then(|| WebhookSecret::new(SECRET).expect("secret")),
            token: token.then(|| Arc::from(TOKEN)),
            daemon: daemon.clone(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = router(gitops);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let _ = rustls::crypto::ring::default_provider().install_default();
        Served {
            base: format!("http://{addr}"),
            daemon,
            follower,
            remote,
            _clone: clone,
            client: reqwest::Client::new(),
            _task: task,
        }
    }

    impl Served {
        async fn webhook(
            &self,
            forge: Forge,
            headers: Vec<(&'static str, String)>,
            body: Vec<u8>,
        ) -> (u16, serde_json::Value) {
            let mut req = self
                .client
                .post(format!("{}/api/v1/webhooks/{forge}", self.base))
                .body(body);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let resp = req.send().await.expect("request");
            let status = resp.status().as_u16();
            (status, resp.json().await.unwrap_or(serde_json::Value::Null))
        }

        fn wakes(&self) -> usize {
            self.daemon.wakes.lock().expect("lock").len()
        }
    }

    fn push_body(forge: Forge, git_ref: &str, after: &str) -> (Vec<u8>, &'static str) {
        match forge {
            Forge::Gitlab => (
                json!({"object_kind": "push", "event_name": "push", "ref": git_ref,
                       "before": "0".repeat(40), "after": after, "checkout_sha": after,
                       "project_id": 15, "project": {"path_with_namespace": "ops/infra"}})
                .to_string()
                .into_bytes(),
                "Push Hook",
            ),
            Forge::Github | Forge::Gitea => (
                json!({"ref": git_ref, "before": "0".repeat(40), "after": after,
                       "repository": {"full_name": "acme/infra"}})
                .to_string()
                .into_bytes(),
                "push",
            ),
        }
    }

    #[tokio::test]
    async fn webhook_signed_push_to_followed_branch_asks_a_fetch_per_forge() {
        let s = serve(|| Follow::Branch("main".into()), true, false).await;
        let c2 = {
            s.remote.write("refinery.yaml", "version: 2\n");
            s.remote.commit("two")
        };
        for (i, forge) in Forge::ALL.into_iter().enumerate() {
            let (body, event) = push_body(forge, "refs/heads/main", &c2);
            let (status, json) = s
                .webhook(forge, webhook_headers(forge, SECRET, event, &body), body)
                .await;
            assert_eq!(status, 202, "{forge}: {json}");
            assert_eq!(json["result"], "fetch queued", "{forge}");
            assert_eq!(s.wakes(), i + 1);
        }
        // The daemon's next look fetches once for the three webhooks.
        let before = s.follower.fetches();
        let tip = s.follower.tip(Instant::now()).expect("tip");
        assert_eq!((tip.commit.as_str(), tip.fetched), (c2.as_str(), true));
        assert_eq!(s.follower.fetches(), before + 1);
    }

    #[tokio::test]
    async fn webhook_other_branch_or_event_is_202_and_does_nothing() {
        let s = serve(|| Follow::Branch("main".into()), true, false).await;
        let sha = "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5";
        let (body, event) = push_body(Forge::Github, "refs/heads/feature", sha);
        let (status, json) = s
            .webhook(
                Forge::Github,
                webhook_headers(Forge::Github, SECRET, event, &body),
                body,
            )
            .await;
        assert_eq!(
            (status, json["result"].as_str()),
            (202, Some("ignored")),
            "{json}"
        );
        let body = br#"{"action":"opened","issue":{"number":1}}"#.to_vec();
        let (status, json) = s
            .webhook(
                Forge::Github,
                webhook_headers(Forge::Github, SECRET, "issues", &body),
                body,
            )
            .await;
        assert_eq!(
            (status, json["event"].as_str()),
            (202, Some("issues")),
            "{json}"
        );
        assert_eq!(s.wakes(), 0);
        assert_eq!(s.follower.fetches(), 1, "only the first look fetched");
    }

    #[tokio::test]
    async fn webhook_wrong_or_missing_signature_is_401_and_does_nothing() {
        let s = serve(|| Follow::Branch("main".into()), true, false).await;
        let sha = "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5";
        for forge in Forge::ALL {
            let (body, event) = push_body(forge, "refs/heads/main", sha);
            let wrong = webhook_headers(forge, "not the secret", event, &body);
            let (status, json) = s.webhook(forge, wrong, body.clone()).await;
            assert_eq!(status, 401, "{forge}: {json}");
            assert!(!json.to_string().contains(SECRET));
            let sig = refinery_forge::signature_header(forge);
            let missing = webhook_headers(forge, SECRET, event, &body)
                .into_iter()
                .filter(|(k, _)| *k != sig)
                .collect();
            let (status, _) = s.webhook(forge, missing, body).await;
            assert_eq!(status, 401, "{forge}");
        }
        assert_eq!(s.wakes(), 0);
    }

    #[tokio::test]
    async fn webhook_over_one_mib_is_413_and_without_secret_404() {
        let s = serve(|| Follow::Branch("main".into()), true, false).await;
        let body = vec![b' '; MAX_BODY_BYTES + 1];
        let headers = webhook_headers(Forge::Github, SECRET, "push", &body);
        let (status, _) = s.webhook(Forge::Github, headers, body).await;
        assert_eq!(status, 413);
        let (status, _) = s.webhook(Forge::Github, vec![], b"{}".to_vec()).await;
        assert_eq!(status, 401, "no signature");
        let resp = s
            .client
            .post(format!("{}/api/v1/webhooks/bitbucket", s.base))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 404);

        let off = serve(|| Follow::Branch("main".into()), false, false).await;
        let (status, json) = off.webhook(Forge::Github, vec![], b"{}".to_vec()).await;
        assert_eq!(status, 404);
        assert!(
            json["hint"]
                .as_str()
                .is_some_and(|h| h.contains("--webhook-secret-file"))
        );
        assert_eq!(s.wakes() + off.wakes(), 0);
    }

    #[tokio::test]
    async fn webhook_flood_is_one_fetch() {
        let s = serve(|| Follow::Branch("main".into()), true, false).await;
        let c2 = {
            s.remote.write("refinery.yaml", "version: 2\n");
            s.remote.commit("two")
        };
        let (body, event) = push_body(Forge::Gitea, "refs/heads/main", &c2);
        let headers = webhook_headers(Forge::Gitea, SECRET, event, &body);
        let sends = (0..50).map(|_| s.webhook(Forge::Gitea, headers.clone(), body.clone()));
        for (status, _) in futures_util::future::join_all(sends).await {
            assert_eq!(status, 202);
        }
        assert_eq!(
            s.wakes(),
            50,
            "each one wakes the daemon; its wake-ups coalesce"
        );
        let before = s.follower.fetches();
        assert_eq!(s.follower.tip(Instant::now()).expect("tip").commit, c2);
        assert!(!s.follower.tip(Instant::now()).expect("tip").fetched);
        assert_eq!(
            s.follower.fetches(),
            before + 1,
            "fifty webhooks, one fetch"
        );
    }

    #[tokio::test]
    async fn webhook_tag_push_matching_follow_tag_asks_a_fetch() {
        let s = serve(
            || Follow::Tag(TagPattern::new("v*").expect("glob")),
            true,
            false,
        )
        .await;
        let sha = "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5";
        let (body, event) = push_body(Forge::Github, "refs/tags/v1.2.0", sha);
        let (status, json) = s
            .webhook(
                Forge::Github,
                webhook_headers(Forge::Github, SECRET, event, &body),
                body,
            )
            .await;
        assert_eq!(
            (status, json["result"].as_str()),
            (202, Some("fetch queued"))
        );
        let (body, event) = push_body(Forge::Github, "refs/tags/nightly", sha);
        let (_, json) = s
            .webhook(
                Forge::Github,
                webhook_headers(Forge::Github, SECRET, event, &body),
                body,
            )
            .await;
        assert_eq!(json["result"], "ignored");
        let (body, event) = push_body(Forge::Github, "refs/heads/main", sha);
        let (_, json) = s
            .webhook(
                Forge::Github,
                webhook_headers(Forge::Github, SECRET, event, &body),
                body,
            )
            .await;
        assert_eq!(
            json["result"], "ignored",
            "a branch push when following tags"
        );
        assert_eq!(s.wakes(), 1);
    }

    #[tokio::test]
    async fn sync_needs_the_token_fetches_and_answers_the_revision() {
        let s = serve(|| Follow::Branch("main".into()), false, true).await;
        let c2 = {
            s.remote.write("refinery.yaml", "version: 2\n");
            s.remote.commit("two")
        };
        let url = format!("{}/api/v1/sync", s.base);
        let resp = s.client.post(&url).send().await.expect("request");
        assert_eq!(resp.status().as_u16(), 401);
        let resp = s
            .client
            .post(&url)
            .bearer_auth("wrong")
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 401);
        assert_eq!(s.wakes(), 0);

        let resp = s
            .client
            .post(&url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 202);
        let json: serde_json::Value = resp.json().await.expect("json");
        assert_eq!(json["revision"], c2.as_str(), "{json}");
        assert_eq!(json["from"], "refs/remotes/origin/main");
        assert_eq!(json["fetched"], true);
        assert_eq!(*s.daemon.wakes.lock().expect("lock"), [None]);

        let resp = s
            .client
            .post(format!("{url}?node=lyra"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 202);
        let resp = s
            .client
            .post(format!("{url}?node=nope"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 404);
        assert_eq!(
            *s.daemon.wakes.lock().expect("lock"),
            [None, Some("lyra".to_owned())]
        );
    }

    #[tokio::test]
    async fn sync_without_a_configured_token_is_401_even_on_loopback() {
        let s = serve(|| Follow::Branch("main".into()), false, false).await;
        let resp = s
            .client
            .post(format!("{}/api/v1/sync", s.base))
            .bearer_auth("anything")
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 401);
        let json: serde_json::Value = resp.json().await.expect("json");
        assert!(
            json["hint"]
                .as_str()
                .is_some_and(|h| h.contains("--token-file"))
        );
        assert_eq!(s.wakes(), 0);
    }

    #[tokio::test]
    async fn sync_fetch_failure_is_502_with_hints() {
        let s = serve(|| Follow::Branch("main".into()), false, true).await;
        let gone = s.remote.path().to_owned();
        std::fs::remove_dir_all(&gone).expect("remove the remote");
        let resp = s
            .client
            .post(format!("{}/api/v1/sync", s.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 502);
        let json: serde_json::Value = resp.json().await.expect("json");
        assert!(
            json["error"]
                .as_str()
                .is_some_and(|e| e.contains("failed to reach remote `origin`")),
            "{json}"
        );
        assert_eq!(s.wakes(), 0);
    }
}
