//! A token server for [`TestRegistry::start_token`]: the registry's `auth: token` sends clients
//! to it (`realm`), as GHCR, Docker Hub, GitLab and Harbor do with theirs. It speaks Docker's
//! token protocol on 127.0.0.1, on a thread and runtime of its own (so blocking test helpers
//! never starve it):
//! - `GET /token?service=…&scope=…` with basic credentials: the user's password must match
//!   (wrong → 401, as a real token server answers); without credentials an anonymous token
//!   granting nothing (Docker Hub's answer for a private repository); with `offline_token=true`
//!   the answer also holds a refresh token;
//! - `POST /token` (OAuth 2): `grant_type=refresh_token` with the user's refresh token (what
//!   `config.json`'s `identitytoken` holds), or `grant_type=password`.
//!
//! A token is an ES256 JWT (header `x5c`: the DER certificate the registry's `rootcertbundle`
//! holds; claims `iss`, `sub`, `aud` = the service, `exp`, `nbf`, `iat`, `jti`, `access`), the
//! user granted `pull` and `push` on every `repository:NAME:…` scope asked for. The key and the
//! self-signed certificate are made with the `openssl` CLI; signing is ring's.
//!
//! [`TestRegistry::start_token`]: super::TestRegistry::start_token

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use refinery_core::RuntimeError;
use refinery_core::runtime::RuntimeResult;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

/// The registry's `auth.token.service` (the tokens' audience).
pub const TOKEN_SERVICE: &str = "refinery-test-registry";
/// The registry's `auth.token.issuer`.
pub const TOKEN_ISSUER: &str = "refinery-test-token-server";

/// What the token server counted, for tests that must see the token flow was taken.
#[derive(Debug, Default)]
pub struct TokenCounts {
    /// Tokens given to the user for their password (`GET` with basic auth, or the password grant).
    pub password: AtomicUsize,
    /// Tokens given for the user's refresh token (`POST`, `grant_type=refresh_token`).
    pub refresh: AtomicUsize,
    /// Anonymous tokens (granting nothing).
    pub anonymous: AtomicUsize,
    /// Requests refused (wrong password or refresh token, wrong service).
    pub refused: AtomicUsize,
}

pub(super) struct Issuer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    /// base64 (standard, padded) of the certificate's DER, the header's `x5c`.
    cert: String,
    user: String,
    password: String,
    refresh_token: String,
    jti: AtomicUsize,
    pub(super) counts: TokenCounts,
}

fn fail(message: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Other {
        action: "start the test token server".to_owned(),
        message: message.to_string(),
    }
}

/// The DER inside the first PEM block of `text`.
fn pem_der(text: &str) -> Option<Vec<u8>> {
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

impl Issuer {
    /// Makes a P-256 key and a self-signed certificate for it in `dir` (`key.pem`, `cert.pem`,
    /// the latter the registry's `rootcertbundle`).
    pub(super) fn new(
        dir: &Path,
        user: &str,
        password: &str,
        refresh_token: String,
    ) -> RuntimeResult<Issuer> {
        let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
        let output = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec"])
            .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-days", "2", "-subj", "/CN=refinery-test-token-server"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| {
                fail(format!(
                    "failed to run `openssl` ({e}): install Debian's `openssl`"
                ))
            })?;
        if !output.status.success() {
            return Err(fail(format!(
                "`openssl req` failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let read = |p: &Path| std::fs::read_to_string(p).map_err(fail);
        let key_der = pem_der(&read(&key)?).ok_or_else(|| fail("`key.pem` holds no PEM"))?;
        let cert_der = pem_der(&read(&cert)?).ok_or_else(|| fail("`cert.pem` holds no PEM"))?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key_der, &rng)
            .map_err(|e| fail(format!("ring refused the key: {e}")))?;
        Ok(Issuer {
            key,
            rng,
            cert: base64::engine::general_purpose::STANDARD.encode(cert_der),
            user: user.to_owned(),
            password: password.to_owned(),
            refresh_token,
            jti: AtomicUsize::new(0),
            counts: TokenCounts::default(),
        })
    }

    pub(super) fn refresh_token(&self) -> &str {
        &self.refresh_token
    }

    /// A signed token for `subject` granting `access` (`[{type, name, actions}]`).
    pub(super) fn mint(&self, subject: &str, access: &serde_json::Value) -> RuntimeResult<String> {
        let now = jiff::Timestamp::now().as_second();
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [self.cert]});
        let claims = serde_json::json!({
            "iss": TOKEN_ISSUER,
            "sub": subject,
            "aud": TOKEN_SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": format!("{}-{}", std::process::id(), self.jti.fetch_add(1, Ordering::Relaxed)),
            "access": access,
        });
        let signed = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let signature = self
            .key
            .sign(&self.rng, signed.as_bytes())
            .map_err(|e| fail(format!("failed to sign a token: {e}")))?;
        Ok(format!("{signed}.{}", b64url(signature.as_ref())))
    }

    /// What `scopes` grant the user: `pull` and `push` of each `repository:NAME:ACTIONS`.
    pub(super) fn grant(scopes: &[String]) -> serde_json::Value {
        let access: Vec<serde_json::Value> = scopes
            .iter()
            .flat_map(|s| s.split(' '))
            .filter_map(|scope| {
                let (kind, rest) = scope.split_once(':')?;
                let (name, actions) = rest.rsplit_once(':')?;
                let actions: Vec<&str> = actions
                    .split(',')
                    .filter(|a| matches!(*a, "pull" | "push"))
                    .collect();
                (kind == "repository" && !actions.is_empty()).then(
                    || serde_json::json!({"type": "repository", "name": name, "actions": actions}),
                )
            })
            .collect();
        serde_json::Value::Array(access)
    }
}

/// Docker's error body.
fn refuse(issuer: &Issuer, status: StatusCode, message: &str) -> Response {
    issuer.counts.refused.fetch_add(1, Ordering::SeqCst);
    let body = serde_json::json!({"errors": [{"code": "UNAUTHORIZED", "message": message}]});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `GET` or `POST /token`.
async fn token(
    axum::extract::State(issuer): axum::extract::State<Arc<Issuer>>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    body: axum::body::Bytes,
) -> Response {
    let form = if method == Method::POST {
        body.to_vec()
    } else {
        uri.query().unwrap_or_default().as_bytes().to_vec()
    };
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&form)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect();
    if param("service") != Some(TOKEN_SERVICE) {
        return refuse(&issuer, StatusCode::BAD_REQUEST, "unknown service");
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let user_ok = |u: &str, p: &str| u == issuer.user && p == issuer.password;
    // Who asks: Some(counter) for the user, None for anonymous; refused on a wrong secret.
    let who = if method == Method::POST {
        match param("grant_type") {
            Some("refresh_token") if param("refresh_token") == Some(&issuer.refresh_token) => {
                Some(&issuer.counts.refresh)
            }
            Some("password")
                if user_ok(
                    param("username").unwrap_or_default(),
                    param("password").unwrap_or_default(),
                ) =>
            {
                Some(&issuer.counts.password)
            }
            _ => return refuse(&issuer, StatusCode::UNAUTHORIZED, "invalid grant"),
        }
    } else {
        match basic
            .as_deref()
            .map(|b| b.split_once(':').unwrap_or((b, "")))
        {
            Some((u, p)) if user_ok(u, p) => Some(&issuer.counts.password),
            Some(_) => {
                return refuse(&issuer, StatusCode::UNAUTHORIZED, "authentication failed");
            }
            None => None,
        }
    };
    let (subject, access) = match who {
        Some(_) => (issuer.user.as_str(), Issuer::grant(&scopes)),
        None => ("", serde_json::Value::Array(Vec::new())),
    };
    let token = match issuer.mint(subject, &access) {
        Ok(t) => t,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    who.unwrap_or(&issuer.counts.anonymous)
        .fetch_add(1, Ordering::SeqCst);
    let mut answer = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": 300,
        "issued_at": jiff::Timestamp::now().to_string(),
    });
    let offline = method == Method::POST || param("offline_token") == Some("true");
    if who.is_some() && offline {
        answer["refresh_token"] = serde_json::Value::String(issuer.refresh_token.clone());
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        answer.to_string(),
    )
        .into_response()
}

/// The running server: stopped (its runtime and connections dropped) on drop.
pub(super) struct TokenServer {
    pub(super) realm: String,
    pub(super) issuer: Arc<Issuer>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenServer {
    pub(super) fn start(issuer: Issuer) -> RuntimeResult<TokenServer> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(fail)?;
        listener.set_nonblocking(true).map_err(fail)?;
        let realm = format!("http://{}/token", listener.local_addr().map_err(fail)?);
        let issuer = Arc::new(issuer);
        let app = axum::Router::new()
            .route("/token", axum::routing::get(token).post(token))
            .with_state(issuer.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(fail)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("test-token-server".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = stopped => {}
                    }
                });
            })
            .map_err(fail)?;
        Ok(TokenServer {
            realm,
            issuer,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
