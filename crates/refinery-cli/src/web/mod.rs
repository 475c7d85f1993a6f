//! The read-only HTTP server of `refinery run --listen`: the status page (live through
//! server-sent events), `/api/v1/status`, `/metrics`, `/healthz` and `/readyz`.
//!
//! It listens on loopback unless a bearer token is set; with a token every path but `/healthz`
//! and `/readyz` needs `Authorization: Bearer <token>` (or `?token=<token>`, for browsers and
//! `EventSource`, which cannot set headers).

pub mod page;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures_util::Stream;
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;

use crate::args::RunArgs;
use crate::error::CliError;
use crate::settings::{Environment, Settings};
use refinery_report::{Hub, Metrics, Status};

#[derive(Clone)]
struct AppState {
    status: watch::Receiver<Arc<Status>>,
    metrics: Arc<Metrics>,
    token: Option<Arc<str>>,
}

/// The running server.
pub struct Server {
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub fn stop(self) {
        self.task.abort();
    }
}

/// The bearer token: `--token-file`, else `REFINERY_STATUS_TOKEN` (`env`); blank means none.
pub fn token_from(args: &RunArgs, env: &Environment) -> Result<Option<String>, CliError> {
    let raw = match &args.token_file {
        Some(path) => std::fs::read_to_string(path).map_err(|source| CliError::Io {
            action: format!("read the token file `{}`", path.display()),
            source,
        })?,
        None => env.status_token.clone().unwrap_or_default(),
    };
    let token = raw.trim().to_owned();
    Ok((!token.is_empty()).then_some(token))
}

/// The controller's reporter (alert channels, metrics, the status page's model) for `manifest`
/// and `state`; with `--listen`, the HTTP server serving it, with the GitOps `routes`.
pub async fn start_reporter(
    settings: &Settings,
    args: &RunArgs,
    manifest: &refinery_core::Manifest,
    state: &refinery_core::daemon_state::DaemonState,
    routes: Option<Router>,
) -> Result<Hub, CliError> {
    let mut hub = Hub::new(manifest, state);
    if let Some(addr) = args.listen {
        let server = serve(
            addr,
            token_from(args, &settings.env)?,
            hub.status_feed(),
            hub.metrics(),
            routes,
        )
        .await?;
        hub.stop_at_shutdown(move || server.stop());
    }
    // What a pass over every node freed goes back to the kernel.
    hub.after_full_pass(crate::allocator::give_back);
    Ok(hub)
}

/// Binds `addr` and serves in the background. Refuses a non-loopback address without a token.
pub async fn serve(
    addr: SocketAddr,
    token: Option<String>,
    status: watch::Receiver<Arc<Status>>,
    metrics: Arc<Metrics>,
    routes: Option<Router>,
) -> Result<Server, CliError> {
    if !addr.ip().is_loopback() && token.is_none() {
        return Err(CliError::ListenNeedsToken { addr });
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| CliError::Listen { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    let state = AppState {
        status,
        metrics,
        token: token.map(Into::into),
    };
    // The webhook and sync endpoints authenticate each request themselves (a signature, or the
    // bearer token on loopback too), so they sit outside the token guard.
    let app = match routes {
        Some(extra) => router(state).merge(extra),
        None => router(state),
    };
    tracing::info!(addr = %bound, auth = if bound.ip().is_loopback() { "loopback" } else { "bearer token" }, "status page on http://{bound}/");
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the status server stopped");
        }
    });
    Ok(Server { task })
}

fn router(state: AppState) -> Router {
    let guarded = Router::new()
        .route("/", get(page_handler))
        .route("/api/v1/status", get(status_handler))
        .route("/api/v1/events", get(events_handler))
        .route("/metrics", get(metrics_handler))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready_handler))
        .merge(guarded)
        .with_state(state)
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Whether the request carries `token`: as `Authorization: Bearer <token>`, else as `?token=`
/// (`query`). Shared by the status page's guard and the sync API.
pub(crate) fn bearer_matches(headers: &HeaderMap, query: Option<&str>, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or(query)
        .is_some_and(|given| same(given, token))
}

/// Compares without stopping at the first differing byte.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

async fn auth(
    State(state): State<AppState>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    let Some(token) = &state.token else {
        return next.run(req).await;
    };
    if bearer_matches(&headers, q.token.as_deref(), token) {
        return next.run(req).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"refinery\"")],
        "a bearer token is required: `Authorization: Bearer <token>` or `?token=<token>`\n",
    )
        .into_response()
}

async fn page_handler(State(state): State<AppState>) -> Response {
    let status = state.status.borrow().clone();
    match page::render(&status, state.token.is_some()) {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "failed to render the status page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "failed to render the page\n",
            )
                .into_response()
        }
    }
}

async fn status_handler(State(state): State<AppState>) -> Response {
    let status = state.status.borrow().clone();
    axum::Json(status.as_ref().clone()).into_response()
}

async fn ready_handler(State(state): State<AppState>) -> Response {
    if state.status.borrow().ready {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "no pass has finished yet\n",
        )
            .into_response()
    }
}

async fn metrics_handler(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// One `status` event with the whole picture now, then one after every change.
async fn events_handler(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = WatchStream::new(state.status.clone()).map(|s| {
        Ok(Event::default()
            .event("status")
            .json_data(s.as_ref())
            .unwrap_or_else(|_| Event::default().event("error").data("failed to encode")))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_compares_whole_strings() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }
}
