//! A webhook receiver on 127.0.0.1 for alert tests: records every POST per path, and answers
//! HTTP 500 to the first `fail_first` requests of a path (to prove retries) or always answers a
//! fixed status.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub body: serde_json::Value,
    /// What the receiver answered.
    pub status: u16,
}

#[derive(Default)]
struct Inner {
    got: Vec<Received>,
    /// path → how many more requests get 500.
    fail_first: HashMap<String, usize>,
    /// path → status always answered.
    always: HashMap<String, u16>,
}

#[derive(Clone, Default)]
pub struct Receiver {
    inner: Arc<Mutex<Inner>>,
    pub addr: Option<SocketAddr>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let mut r = Receiver::default();
        let app = Router::new()
            .route("/hook/{name}", post(take))
            .with_state(r.inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        r.addr = Some(listener.local_addr().expect("receiver address"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        r
    }

    /// `http://127.0.0.1:PORT/hook/<name>`
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/hook/{name}", self.addr.expect("started"))
    }

    pub fn fail_first(&self, name: &str, n: usize) {
        if let Ok(mut i) = self.inner.lock() {
            i.fail_first.insert(name.to_owned(), n);
        }
    }

    pub fn always(&self, name: &str, status: u16) {
        if let Ok(mut i) = self.inner.lock() {
            i.always.insert(name.to_owned(), status);
        }
    }

    pub fn got(&self, name: &str) -> Vec<Received> {
        self.inner
            .lock()
            .map(|i| i.got.iter().filter(|r| r.path == name).cloned().collect())
            .unwrap_or_default()
    }
}

async fn take(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(name): Path<String>,
    body: String,
) -> StatusCode {
    let body = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
    let Ok(mut i) = inner.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    let status = if let Some(s) = i.always.get(&name) {
        *s
    } else if let Some(n) = i.fail_first.get_mut(&name).filter(|n| **n > 0) {
        *n -= 1;
        500
    } else {
        200
    };
    i.got.push(Received {
        path: name,
        body,
        status,
    });
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}
