//! A receiver on 127.0.0.1 standing in for each service: records every request (method, path,
//! query, headers, body, and when it arrived on tokio's clock, which tests pause) and answers
//! what the test set for the path, else 200 with `{"ok":true}` (Telegram's success shape).

#![allow(dead_code)]

pub mod smtp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HashMap<String, String>,
    pub body: String,
    pub at: tokio::time::Instant,
}

impl Request {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

#[derive(Default)]
struct Inner {
    got: Vec<Request>,
    answers: HashMap<String, (u16, String)>,
}

#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Mutex<Inner>>,
    pub addr: SocketAddr,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let inner: Arc<Mutex<Inner>> = Arc::default();
        let app = Router::new().fallback(take).with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let addr = listener.local_addr().expect("receiver address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { inner, addr }
    }

    /// `http://127.0.0.1:PORT<path>`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers `status` and `body` to every request on `path`.
    pub fn answer(&self, path: &str, status: u16, body: &str) {
        if let Ok(mut i) = self.inner.lock() {
            i.answers.insert(path.to_owned(), (status, body.to_owned()));
        }
    }

    pub fn got(&self) -> Vec<Request> {
        self.inner.lock().map(|i| i.got.clone()).unwrap_or_default()
    }
}

async fn take(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let Ok(mut i) = inner.lock() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, String::new());
    };
    let path = uri.path().to_owned();
    i.got.push(Request {
        method: method.to_string(),
        path: path.clone(),
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        at: tokio::time::Instant::now(),
    });
    let (status, body) = i
        .answers
        .get(&path)
        .cloned()
        .unwrap_or((200, r#"{"ok":true}"#.to_owned()));
    (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body)
}
