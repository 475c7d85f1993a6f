//! A stand-in for a forge's commit status API on 127.0.0.1 (feature `testing`): it records every
//! request and answers as the forge documents, checking path, credential, headers and body.
//!
//! | forge | API base | path | credential | states | refusals |
//! |---|---|---|---|---|---|
//! | GitHub | `/` | `/repos/{owner}/{repo}/statuses/{sha}` | `Authorization: Bearer` | error, failure, pending, success | 401 bad credentials, 403 no `User-Agent`, 422 bad body |
//! | GitLab | `/api/v4` | `/projects/{id or url-encoded path}/statuses/{sha}` | `PRIVATE-TOKEN` | pending, running, success, failed, canceled, skipped | 401, 400 bad body |
//! | Gitea | `/api/v1` | `/repos/{owner}/{repo}/statuses/{sha}` | `Authorization: token` | pending, success, error, failure, warning | 401, 422 bad body |
//!
//! Anything the documentation does not allow (an unknown body key, a missing `Accept`) is kept in
//! [`Recorded::problems`], so a test can require there are none.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use refinery_core::manifest::Forge;
use tokio::sync::Notify;

/// One request the stand-in received.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub method: String,
    /// As sent, percent-encoding kept.
    pub path: String,
    /// Lower-case names.
    pub headers: BTreeMap<String, String>,
    pub body: serde_json::Value,
    /// What it answered.
    pub answered: u16,
    /// Everything not as the forge documents it; empty for a good request.
    pub problems: Vec<String>,
}

impl Recorded {
    /// The commit id in the path.
    #[must_use]
    pub fn sha(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or_default()
    }

    /// The body's `state`.
    #[must_use]
    pub fn state(&self) -> &str {
        self.body["state"].as_str().unwrap_or_default()
    }
}

struct Shared {
    forge: Forge,
    /// The repository as it must appear in the path (GitLab: URL-encoded).
    repository_path: String,
    token: String,
    recorded: Mutex<Vec<Recorded>>,
    /// Statuses to answer the next requests with, before judging them (to test retries).
    scripted: Mutex<VecDeque<u16>>,
    changed: Notify,
}

/// The running stand-in; stops when dropped.
pub struct StandInForge {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StandInForge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StandInForge {
    /// Serves `forge`'s status API for `repository` (`acme/infra`; GitLab: a path or an id),
    /// accepting only `token`.
    pub async fn start(forge: Forge, repository: &str, token: &str) -> StandInForge {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("failed to bind the stand-in forge on 127.0.0.1");
        let addr = listener.local_addr().expect("the stand-in forge's address");
        let repository_path = match forge {
            Forge::Gitlab => form_urlencoded::byte_serialize(repository.as_bytes()).collect(),
            Forge::Github | Forge::Gitea => repository.to_owned(),
        };
        let shared = Arc::new(Shared {
            forge,
            repository_path,
            token: token.to_owned(),
            recorded: Mutex::new(Vec::new()),
            scripted: Mutex::new(VecDeque::new()),
            changed: Notify::new(),
        });
        let state = shared.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move { handle(&state, &method, &uri, &headers, &body) }
            },
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        StandInForge { addr, shared, task }
    }

    /// The base URL to put in `commit_status.api_url`.
    #[must_use]
    pub fn api_url(&self) -> String {
        let prefix = match self.shared.forge {
            Forge::Github => "",
            Forge::Gitlab => "/api/v4",
            Forge::Gitea => "/api/v1",
        };
        format!("http://{}{prefix}", self.addr)
    }

    /// Answer the next requests with these statuses (one each, in order) without judging them:
    /// `&[502, 502]` makes the next two attempts fail as a broken proxy would.
    pub fn answer_next(&self, statuses: &[u16]) {
        self.shared
            .scripted
            .lock()
            .expect("stand-in lock")
            .extend(statuses);
    }

    /// Every request so far.
    #[must_use]
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.recorded.lock().expect("stand-in lock").clone()
    }

    /// Waits until `pred` holds for the requests so far (at most `within`), and returns them.
    ///
    /// # Panics
    /// When it does not hold in time, naming what was received.
    pub async fn wait_until(
        &self,
        within: Duration,
        what: &str,
        pred: impl Fn(&[Recorded]) -> bool,
    ) -> Vec<Recorded> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.shared.changed.notified();
            let now = self.requests();
            if pred(&now) {
                return now;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let seen: Vec<String> = now
                    .iter()
                    .map(|r| format!("{} {} → {} {:?}", r.path, r.state(), r.answered, r.problems))
                    .collect();
                panic!("the stand-in forge did not see {what} within {within:?}; it saw {seen:#?}");
            }
        }
    }

    /// The `state` of each accepted (2xx) request for `sha`, in order.
    #[must_use]
    pub fn states_of(&self, sha: &str) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| r.sha() == sha && (200..300).contains(&r.answered))
            .map(|r| r.state().to_owned())
            .collect()
    }
}

fn handle(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let headers_map: BTreeMap<String, String> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    let scripted = shared.scripted.lock().expect("stand-in lock").pop_front();
    let (status, answer, problems) = match scripted {
        Some(code) => (code, serde_json::json!({"message": "scripted"}), Vec::new()),
        None => judge(shared, method, uri.path(), &headers_map, &json),
    };
    shared
        .recorded
        .lock()
        .expect("stand-in lock")
        .push(Recorded {
            method: method.to_string(),
            path: uri.path().to_owned(),
            headers: headers_map,
            body: json,
            answered: status,
            problems,
        });
    shared.changed.notify_waiters();
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(answer)).into_response()
}

/// Answers as the forge would, and lists what deviates from its documentation.
fn judge(
    shared: &Shared,
    method: &Method,
    path: &str,
    headers: &BTreeMap<String, String>,
    body: &serde_json::Value,
) -> (u16, serde_json::Value, Vec<String>) {
    let mut problems = Vec::new();
    let refuse = |status: u16, message: &str, mut problems: Vec<String>| {
        problems.push(message.to_owned());
        (status, serde_json::json!({ "message": message }), problems)
    };
    let (prefix, repo_segment, states, label_keys): (&str, &str, &[&str], &[&str]) =
        match shared.forge {
            Forge::Github => (
                "",
                "repos",
                &["error", "failure", "pending", "success"],
                &["context"],
            ),
            Forge::Gitlab => (
                "/api/v4",
                "projects",
                &[
                    "pending", "running", "success", "failed", "canceled", "skipped",
                ],
                &["name", "context"],
            ),
            Forge::Gitea => (
                "/api/v1",
                "repos",
                &["pending", "success", "error", "failure", "warning"],
                &["context"],
            ),
        };
    if *method != Method::POST {
        return refuse(405, "only POST creates a commit status", problems);
    }
    let want_prefix = format!(
        "{prefix}/{repo_segment}/{}/statuses/",
        shared.repository_path
    );
    let Some(sha) = path.strip_prefix(&want_prefix) else {
        return refuse(404, &format!("404 Not Found: {path}"), problems);
    };
    if !(sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit())) {
        return refuse(422, &format!("`{sha}` is not a full commit sha"), problems);
    }
    let credential_ok = match shared.forge {
        Forge::Github => headers.get("authorization") == Some(&format!("Bearer {}", shared.token)),
        Forge::Gitlab => headers.get("private-token") == Some(&shared.token),
        Forge::Gitea => headers.get("authorization") == Some(&format!("token {}", shared.token)),
    };
    if !credential_ok {
        return refuse(401, "Bad credentials", problems);
    }
    if shared.forge == Forge::Github {
        if !headers.contains_key("user-agent") {
            return refuse(403, "a User-Agent header is required", problems);
        }
        if headers.get("accept").map(String::as_str) != Some("application/vnd.github+json") {
            problems.push("GitHub recommends `Accept: application/vnd.github+json`".to_owned());
        }
        if !headers.contains_key("x-github-api-version") {
            problems.push("no `X-GitHub-Api-Version` header".to_owned());
        }
    }
    if !headers
        .get("content-type")
        .is_some_and(|v| v.starts_with("application/json"))
    {
        problems.push("the body is not sent as `application/json`".to_owned());
    }
    let bad_body = if shared.forge == Forge::Gitlab {
        400
    } else {
        422
    };
    let Some(fields) = body.as_object() else {
        return refuse(bad_body, "the body is not a JSON object", problems);
    };
    match fields.get("state").and_then(|s| s.as_str()) {
        Some(s) if states.contains(&s) => {}
        other => {
            return refuse(
                bad_body,
                &format!("state {other:?} is not one of {states:?}"),
                problems,
            );
        }
    }
    let mut allowed = vec!["state", "description", "target_url"];
    allowed.extend(label_keys);
    if shared.forge == Forge::Gitlab {
        allowed.extend(["ref", "pipeline_id", "coverage"]);
    }
    for key in fields.keys() {
        if !allowed.contains(&key.as_str()) {
            problems.push(format!("`{key}` is not a documented field"));
        }
    }
    for (key, value) in fields {
        if !value.is_string() && key != "pipeline_id" && key != "coverage" {
            problems.push(format!("`{key}` is not a string"));
        }
    }
    if !label_keys.iter().any(|k| fields.contains_key(*k)) {
        problems.push(format!("no {label_keys:?}: the forge uses `default`"));
    }
    if shared.forge == Forge::Github
        && fields
            .get("description")
            .and_then(|d| d.as_str())
            .is_some_and(|d| d.chars().count() > 140)
    {
        return refuse(
            422,
            "description is too long (maximum is 140 characters)",
            problems,
        );
    }
    if let Some(url) = fields.get("target_url").and_then(|u| u.as_str())
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        problems.push(format!("target_url `{url}` is not an http(s) URL"));
    }
    (
        201,
        serde_json::json!({"id": 1, "state": fields["state"]}),
        problems,
    )
}

/// The headers `forge` sends with a webhook of `event` (`push`; GitLab: `Push Hook`) whose body
/// is `body`, signed with `secret` as the forge signs (GitLab: the secret as the token).
#[must_use]
pub fn webhook_headers(
    forge: Forge,
    secret: &str,
    event: &str,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let key = crate::WebhookSecret::new(secret).expect("a non-blank test secret");
    let hex = crate::sign_hex(&key, body);
    let delivery = "f6266f16-1bf3-46a5-9ea4-602e06ead473".to_owned();
    let mut headers = vec![("Content-Type", "application/json".to_owned())];
    match forge {
        Forge::Github => headers.extend([
            ("User-Agent", "GitHub-Hookshot/044aadd".to_owned()),
            ("X-GitHub-Event", event.to_owned()),
            ("X-GitHub-Delivery", delivery),
            ("X-GitHub-Hook-ID", "30".to_owned()),
            ("X-Hub-Signature-256", format!("sha256={hex}")),
        ]),
        Forge::Gitlab => headers.extend([
            ("User-Agent", "GitLab/17.6.0".to_owned()),
            ("X-Gitlab-Event", event.to_owned()),
            ("X-Gitlab-Event-UUID", delivery),
            ("X-Gitlab-Instance", "https://gitlab.example".to_owned()),
            ("X-Gitlab-Token", secret.to_owned()),
        ]),
        Forge::Gitea => headers.extend([
            ("X-GitHub-Event", event.to_owned()),
            ("X-GitHub-Delivery", delivery.clone()),
            ("X-Gogs-Event", event.to_owned()),
            ("X-Gogs-Delivery", delivery.clone()),
            ("X-Gitea-Event", event.to_owned()),
            ("X-Gitea-Event-Type", event.to_owned()),
            ("X-Gitea-Delivery", delivery),
            ("X-Gitea-Signature", hex),
        ]),
    }
    headers
}
