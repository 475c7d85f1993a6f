//! Listing a repository's tags (`image_policy`) from a real registry (Debian's `docker-registry`
//! with htpasswd authentication, on loopback): with the docker CLI's credentials, and refused
//! without credentials.
//!
//! Two things are tested on a stand-in HTTP server on 127.0.0.1 (a mock, said so here): `Link`
//! pagination (distribution 2.8 answers every tag at once, whatever `n` asks; the test checks
//! that on the real one too) and a token server's answer to a request without credentials (the
//! stand-in plays registry and token server, checking every parameter the client sends). The
//! `Bearer` flow against the real registry with `auth: token` is in `registry_token.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use refinery_core::ContainerRuntime as _;
use refinery_docker::testsupport::{self, TestRegistry, TestRun};
use refinery_docker::{DockerRuntime, RegistryAuth};

const TAGS: [&str; 5] = ["1.4.0", "1.4.2", "1.5.0", "2.0.0", "latest"];

/// A registry holding `app` under [`TAGS`] (one image pushed under each), and the engine.
async fn registry_with_tags() -> (DockerRuntime, TestRun, TestRegistry) {
    let rt = DockerRuntime::from_env().expect("DOCKER_HOST must name a supported endpoint");
    rt.info()
        .await
        .unwrap_or_else(|e| panic!("these tests need a running Docker engine: {e}"));
    let run = TestRun::new(&rt);
    let registry = TestRegistry::start("deploy", "s3cret-pw").expect("start the registry");
    registry
        .push_new(&rt, &run, "tags", "app", &TAGS)
        .await
        .expect("push the test image");
    (rt, run, registry)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn registry_tags_are_listed_with_docker_login_credentials() {
    let (rt, run, registry) = registry_with_tags().await;
    let config = registry.docker_config(&run).expect("docker login");
    let rt = rt.with_registry_auth(RegistryAuth::new(Some(config)));
    let name = format!("{}/app", registry.host);
    let all = rt.registry_tags(&name).await.expect("list the tags");
    assert_eq!(sorted(all), TAGS);
    // The tag in the reference does not matter: the repository's tags are listed.
    let all = rt
        .registry_tags(&format!("{name}:1.4.2"))
        .await
        .expect("list the tags");
    assert_eq!(sorted(all), TAGS);

    // Debian's registry (distribution 2.8) answers every tag at once, whatever `n` asks: the
    // same listing in pages of two is one page here (pagination is proven on the stand-in below).
    let (status, headers, _) = registry
        .get("/v2/app/tags/list?n=2")
        .expect("ask the registry");
    assert_eq!(status, 200);
    assert!(!headers.iter().any(|(k, _)| k == "link"), "{headers:?}");
    let paged = rt
        .registry_tags_paged(&name, Some(2))
        .await
        .expect("list the tags in pages");
    assert_eq!(sorted(paged), TAGS);
}

#[tokio::test]
async fn registry_tags_without_credentials_are_refused_naming_the_registry() {
    let (rt, _run, registry) = registry_with_tags().await;
    let empty = tempfile::tempdir().expect("tempdir");
    let rt = rt.with_registry_auth(RegistryAuth::new(Some(empty.path().to_owned())));
    let e = rt
        .registry_tags(&format!("{}/app", registry.host))
        .await
        .expect_err("no credentials")
        .to_string();
    assert!(
        e.contains("list the tags of")
            && e.contains(&format!("none for `{}` were found", registry.host)),
        "{e}"
    );
    // Wrong credentials: refused, and the password shows nowhere.
    let dir = tempfile::tempdir().expect("tempdir");
    testsupport::write_docker_login(dir.path(), &registry.host, "deploy", "wrong-pw-5521")
        .expect("write config.json");
    let rt = rt.with_registry_auth(RegistryAuth::new(Some(dir.path().to_owned())));
    let e = rt
        .registry_tags(&format!("{}/app", registry.host))
        .await
        .expect_err("wrong credentials")
        .to_string();
    assert!(e.contains("HTTP 401") && e.contains("were refused"), "{e}");
    assert!(!e.contains("wrong-pw-5521"), "{e}");
}

/// The stand-in's state: its own address and how many tag pages it served.
struct StandIn {
    base: String,
    pages: AtomicUsize,
    tokens: AtomicUsize,
}

const STAND_IN_TAGS: [&str; 5] = ["1.0.0", "1.1.0", "1.2.0", "2.0.0", "latest"];
const TOKEN: &str = "tok-7c1d";

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.replace("%3A", ":").replace("%2F", "/"))
    })
}

/// `GET /v2/app/tags/list`: a `Bearer` challenge without the token; with it, two tags per page
/// and a `Link` to the next.
async fn stand_in_tags(
    axum::extract::State(s): axum::extract::State<Arc<StandIn>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {TOKEN}")) {
        let challenge = format!(
            r#"Bearer realm="{}/token",service="stand-in.test",scope="repository:app:pull""#,
            s.base
        );
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, challenge)],
            "{}",
        )
            .into_response();
    }
    s.pages.fetch_add(1, Ordering::SeqCst);
    let start = query_param(&uri, "last")
        .and_then(|last| STAND_IN_TAGS.iter().position(|t| *t == last))
        .map_or(0, |i| i + 1);
    let page: Vec<&str> = STAND_IN_TAGS.iter().skip(start).take(2).copied().collect();
    let body = serde_json::json!({"name": "app", "tags": page}).to_string();
    match page.last() {
        Some(last) if start + 2 < STAND_IN_TAGS.len() => (
            StatusCode::OK,
            [(
                header::LINK,
                format!(r#"</v2/app/tags/list?n=2&last={last}>; rel="next""#),
            )],
            body,
        )
            .into_response(),
        _ => (StatusCode::OK, body).into_response(),
    }
}

/// `GET /token?service=…&scope=…` with the basic credentials: the token.
async fn stand_in_token(
    axum::extract::State(s): axum::extract::State<Arc<StandIn>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let want = format!(
        "Basic {}",
        testsupport::docker_auth_field("deploy", "tok-pw-3391")
    );
    if basic != Some(want.as_str())
        || query_param(&uri, "service").as_deref() != Some("stand-in.test")
        || query_param(&uri, "scope").as_deref() != Some("repository:app:pull")
    {
        return (StatusCode::UNAUTHORIZED, format!("bad token request {uri}")).into_response();
    }
    s.tokens.fetch_add(1, Ordering::SeqCst);
    (
        StatusCode::OK,
        serde_json::json!({"token": TOKEN}).to_string(),
    )
        .into_response()
}

#[tokio::test]
async fn registry_tags_follow_the_bearer_token_flow_and_every_page() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the stand-in");
    let host = listener.local_addr().expect("address").to_string();
    let state = Arc::new(StandIn {
        base: format!("http://{host}"),
        pages: AtomicUsize::new(0),
        tokens: AtomicUsize::new(0),
    });
    let app = axum::Router::new()
        .route("/v2/app/tags/list", axum::routing::get(stand_in_tags))
        .route("/token", axum::routing::get(stand_in_token))
        .with_state(state.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let dir = tempfile::tempdir().expect("tempdir");
    testsupport::write_docker_login(dir.path(), &host, "deploy", "tok-pw-3391")
        .expect("write config.json");
    // No engine is asked: listing tags goes to the registry only.
    let rt = DockerRuntime::connect("/nonexistent/docker.sock")
        .expect("runtime")
        .with_registry_auth(RegistryAuth::new(Some(dir.path().to_owned())));
    let tags = rt
        .registry_tags(&format!("{host}/app:1.0.0"))
        .await
        .expect("list the tags");
    assert_eq!(tags, STAND_IN_TAGS);
    assert_eq!(state.pages.load(Ordering::SeqCst), 3, "three pages of two");
    assert_eq!(state.tokens.load(Ordering::SeqCst), 1, "one token");

    // Without credentials the token server refuses, and the error says none were found.
    let empty = tempfile::tempdir().expect("tempdir");
    let rt = rt.with_registry_auth(RegistryAuth::new(Some(empty.path().to_owned())));
    let e = rt
        .registry_tags(&format!("{host}/app"))
        .await
        .expect_err("no credentials")
        .to_string();
    assert!(
        e.contains("answered HTTP 401") && e.contains(&format!("no credentials for `{host}`")),
        "{e}"
    );
    server.abort();
}
