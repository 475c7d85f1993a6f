//! The few etcd v3 calls an election needs, through etcd's JSON gateway: the same RPCs as its gRPC
//! API, as `POST /v3/<service>/<method>` with a JSON body on the client port (served by etcd 3.4
//! and later). Keys and values travel as base64, 64-bit integers as strings, and fields holding
//! their default value (0, `false`, empty) are left out. A watch is one long response carrying
//! one JSON object per line.
//!
//! Why not a gRPC client: the Rust ones generate their code from etcd's `.proto` files at build
//! time and need `protoc`, so a plain `cargo build` failed on a machine with only a Rust
//! toolchain. The gateway needs only the HTTP client the rest of Refinery already has.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::EtcdTls;

/// A call to etcd that failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GatewayError {
    #[error("failed to reach etcd at `{url}`")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("failed to {call}: etcd answered {status}: {message}")]
    Refused {
        call: &'static str,
        status: u16,
        message: String,
    },
    #[error("failed to read etcd's answer to {call}: {message}")]
    Decode { call: &'static str, message: String },
}

/// One etcd key and what etcd knows about it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct KeyValue {
    #[serde(default, deserialize_with = "bytes")]
    pub key: Vec<u8>,
    #[serde(default, deserialize_with = "bytes")]
    pub value: Vec<u8>,
    /// The revision that created the key (0: absent).
    #[serde(default, deserialize_with = "int")]
    pub create_revision: i64,
    /// The lease the key is bound to (0: none).
    #[serde(default, deserialize_with = "int")]
    pub lease: i64,
}

impl KeyValue {
    /// The value as text (ids are UTF-8; anything else is shown lossily).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.value).into_owned()
    }
}

/// What happened to a watched key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WatchEvent {
    Put(KeyValue),
    Delete,
}

/// The outcome of a create-if-absent transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Campaigned {
    /// The key was created, bound to the lease.
    pub created: bool,
    /// The store's revision after the transaction.
    pub revision: i64,
    /// When not created: the key as it is (`None`: gone between the compare and the read).
    pub holder: Option<KeyValue>,
}

/// A connection to one etcd member's gateway.
pub(crate) struct Gateway {
    http: reqwest::Client,
    /// `http://HOST:PORT`, or `https://` with TLS.
    base: String,
}

impl Gateway {
    /// A client for etcd at `host` (`HOST:PORT`): `https://` with `tls`, else `http://`.
    /// `connect` bounds establishing a connection; calls are bounded by their caller.
    pub fn new(
        host: &str,
        tls: Option<&EtcdTls>,
        connect: Duration,
    ) -> Result<Gateway, GatewayError> {
        let mut builder = reqwest::Client::builder()
            .http1_only()
            .connect_timeout(connect)
            .pool_idle_timeout(Duration::from_secs(30));
        let scheme = match tls {
            Some(tls) => {
                let ca = reqwest::Certificate::from_pem(&tls.ca).map_err(|source| {
                    GatewayError::Http {
                        url: host.to_owned(),
                        source,
                    }
                })?;
                builder = builder.tls_certs_only([ca]);
                if let Some((cert, key)) = &tls.identity {
                    let mut pem = cert.clone();
                    pem.push(b'\n');
                    pem.extend_from_slice(key);
                    let identity =
                        reqwest::Identity::from_pem(&pem).map_err(|source| GatewayError::Http {
                            url: host.to_owned(),
                            source,
                        })?;
                    builder = builder.identity(identity);
                }
                "https"
            }
            None => "http",
        };
        let http = builder.build().map_err(|source| GatewayError::Http {
            url: host.to_owned(),
            source,
        })?;
        Ok(Gateway {
            http,
            base: format!("{scheme}://{host}"),
        })
    }

    /// `POST /v3/<path>` with `body`; the answer, or why not.
    async fn send(
        &self,
        call: &'static str,
        path: &str,
        body: &Value,
    ) -> Result<reqwest::Response, GatewayError> {
        let url = format!("{}/v3/{path}", self.base);
        let response = self
            .http
            .post(&url)
            .json(body)
            .send()
            .await
            .map_err(|source| GatewayError::Http { url, source })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        Err(GatewayError::Refused {
            call,
            status: status.as_u16(),
            message: error_message(&text),
        })
    }

    /// A unary call: its JSON answer.
    async fn call<T: DeserializeOwned>(
        &self,
        call: &'static str,
        path: &str,
        body: &Value,
    ) -> Result<T, GatewayError> {
        let response = self.send(call, path, body).await?;
        let url = response.url().to_string();
        let bytes = response
            .bytes()
            .await
            .map_err(|source| GatewayError::Http { url, source })?;
        serde_json::from_slice(&bytes).map_err(|e| GatewayError::Decode {
            call,
            message: e.to_string(),
        })
    }

    /// Grants a lease of `ttl` seconds; its id.
    pub async fn lease_grant(&self, ttl: i64) -> Result<i64, GatewayError> {
        #[derive(Deserialize)]
        struct Granted {
            #[serde(rename = "ID", default, deserialize_with = "int")]
            id: i64,
            #[serde(default)]
            error: Option<String>,
        }
        let g: Granted = self
            .call(
                "grant a lease",
                "lease/grant",
                &json!({"TTL": ttl.to_string()}),
            )
            .await?;
        match (g.id, g.error) {
            (_, Some(message)) if !message.is_empty() => Err(GatewayError::Refused {
                call: "grant a lease",
                status: 200,
                message,
            }),
            (0, _) => Err(GatewayError::Decode {
                call: "grant a lease",
                message: "no lease id".into(),
            }),
            (id, _) => Ok(id),
        }
    }

    /// Renews lease `id`; the seconds it has left (0 or less: it expired, or never was).
    pub async fn lease_keep_alive(&self, id: i64) -> Result<i64, GatewayError> {
        #[derive(Deserialize)]
        struct Renewed {
            #[serde(rename = "TTL", default, deserialize_with = "int")]
            ttl: i64,
        }
        let answer: StreamItem<Renewed> = self
            .call(
                "keep the lease alive",
                "lease/keepalive",
                &json!({"ID": id.to_string()}),
            )
            .await?;
        answer
            .into_result("keep the lease alive")
            .map(|r| r.map_or(0, |r| r.ttl))
    }

    /// Revokes lease `id`, deleting every key bound to it.
    pub async fn lease_revoke(&self, id: i64) -> Result<(), GatewayError> {
        self.call::<Value>(
            "revoke the lease",
            "lease/revoke",
            &json!({"ID": id.to_string()}),
        )
        .await
        .map(drop)
    }

    /// Writes `key` = `value`, bound to `lease`.
    pub async fn put(&self, key: &str, value: &str, lease: i64) -> Result<(), GatewayError> {
        self.call::<Value>(
            "write a key",
            "kv/put",
            &json!({
                "key": BASE64.encode(key),
                "value": BASE64.encode(value),
                "lease": lease.to_string(),
            }),
        )
        .await
        .map(drop)
    }

    /// Creates `key` = `value` bound to `lease` if nobody holds it (its create revision is 0);
    /// else reads it, in the same transaction.
    pub async fn create_if_absent(
        &self,
        key: &str,
        value: &str,
        lease: i64,
    ) -> Result<Campaigned, GatewayError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            header: Header,
            #[serde(default)]
            succeeded: bool,
            #[serde(default)]
            responses: Vec<OpResponse>,
        }
        #[derive(Deserialize)]
        struct OpResponse {
            #[serde(default)]
            response_range: Option<Range>,
        }
        let k = BASE64.encode(key);
        let body = json!({
            "compare": [{"key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
            "success": [{"request_put": {"key": k, "value": BASE64.encode(value), "lease": lease.to_string()}}],
            "failure": [{"request_range": {"key": k}}],
        });
        let a: Answer = self.call("campaign", "kv/txn", &body).await?;
        let holder = a
            .responses
            .into_iter()
            .find_map(|r| r.response_range)
            .and_then(|r| r.kvs.into_iter().next());
        Ok(Campaigned {
            created: a.succeeded,
            revision: a.header.revision,
            holder,
        })
    }

    /// `key`, if it exists.
    pub async fn get(&self, key: &str) -> Result<Option<KeyValue>, GatewayError> {
        let r: Range = self
            .call(
                "read a key",
                "kv/range",
                &json!({"key": BASE64.encode(key)}),
            )
            .await?;
        Ok(r.kvs.into_iter().next())
    }

    /// Every key starting with `prefix`.
    pub async fn get_prefix(&self, prefix: &str) -> Result<Vec<KeyValue>, GatewayError> {
        let r: Range = self
            .call(
                "list keys",
                "kv/range",
                &json!({
                    "key": BASE64.encode(prefix),
                    "range_end": BASE64.encode(prefix_end(prefix.as_bytes())),
                }),
            )
            .await?;
        Ok(r.kvs)
    }

    /// Watches `key` from revision `start` on.
    pub async fn watch(&self, key: &str, start: i64) -> Result<Watch, GatewayError> {
        let body = json!({"create_request": {"key": BASE64.encode(key), "start_revision": start.to_string()}});
        let response = self.send("watch a key", "watch", &body).await?;
        Ok(Watch {
            response,
            buffer: Vec::new(),
        })
    }
}

/// A watch on one key: its events, in order, as etcd streams them.
pub(crate) struct Watch {
    response: reqwest::Response,
    /// Bytes received and not yet parsed (a line cut between two chunks).
    buffer: Vec<u8>,
}

impl Watch {
    /// The next batch of events (possibly empty: the watch's creation, progress); `None` when
    /// etcd closed the stream. Cancel-safe: a batch not yet complete stays buffered.
    pub async fn next(&mut self) -> Result<Option<Vec<WatchEvent>>, GatewayError> {
        #[derive(Deserialize)]
        struct Batch {
            #[serde(default)]
            events: Vec<Event>,
            #[serde(default)]
            canceled: bool,
            #[serde(default)]
            cancel_reason: String,
        }
        #[derive(Deserialize)]
        struct Event {
            /// `PUT` is the default, and left out.
            #[serde(default, rename = "type")]
            kind: Option<String>,
            #[serde(default)]
            kv: KeyValue,
        }
        const CALL: &str = "watch a key";
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let item: StreamItem<Batch> =
                    serde_json::from_slice(&line).map_err(|e| GatewayError::Decode {
                        call: CALL,
                        message: e.to_string(),
                    })?;
                let Some(batch) = item.into_result(CALL)? else {
                    continue;
                };
                if batch.canceled {
                    return Err(GatewayError::Refused {
                        call: CALL,
                        status: 200,
                        message: format!("the watch was canceled: {}", batch.cancel_reason),
                    });
                }
                return Ok(Some(
                    batch
                        .events
                        .into_iter()
                        .map(|e| match e.kind.as_deref() {
                            Some("DELETE") => WatchEvent::Delete,
                            _ => WatchEvent::Put(e.kv),
                        })
                        .collect(),
                ));
            }
            let url = self.response.url().to_string();
            match self
                .response
                .chunk()
                .await
                .map_err(|source| GatewayError::Http { url, source })?
            {
                Some(chunk) => self.buffer.extend_from_slice(&chunk),
                None => return Ok(None),
            }
        }
    }
}

/// The response header: the store's revision.
#[derive(Debug, Default, Deserialize)]
struct Header {
    #[serde(default, deserialize_with = "int")]
    revision: i64,
}

/// A range's keys.
#[derive(Debug, Default, Deserialize)]
struct Range {
    #[serde(default)]
    kvs: Vec<KeyValue>,
}

/// One message of a streaming RPC: `{"result": …}` or `{"error": …}`.
#[derive(Deserialize)]
struct StreamItem<T> {
    #[serde(default = "none")]
    result: Option<T>,
    #[serde(default)]
    error: Option<Value>,
}

fn none<T>() -> Option<T> {
    None
}

impl<T> StreamItem<T> {
    fn into_result(self, call: &'static str) -> Result<Option<T>, GatewayError> {
        match self.error {
            Some(e) => Err(GatewayError::Refused {
                call,
                status: 200,
                message: error_message(&e.to_string()),
            }),
            None => Ok(self.result),
        }
    }
}

/// The message of a gateway error body (`{"error": "…", "message": "…", "code": N}`, or inside a
/// stream `{"grpc_code": N, "message": "…"}`), else the body itself.
fn error_message(body: &str) -> String {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let message = value
        .get("message")
        .or_else(|| value.get("error"))
        .and_then(Value::as_str);
    match message {
        Some(m) if !m.is_empty() => m.to_owned(),
        _ => body.trim().to_owned(),
    }
}

/// The end of the range holding every key that starts with `prefix`: the prefix with its last
/// byte below 0xff incremented (and what follows it dropped), as etcd's clients compute it;
/// `\0` (to the end of the keyspace) when every byte is 0xff.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A 64-bit integer, which the gateway writes as a string (a number is taken too).
fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int {
        Text(String),
        Number(i64),
    }
    match Int::deserialize(d)? {
        Int::Number(n) => Ok(n),
        Int::Text(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

/// Bytes, which the gateway writes as base64.
fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = String::deserialize(d)?;
    BASE64.decode(s).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte_below_ff() {
        assert_eq!(prefix_end(b"/r/members/"), b"/r/members0");
        assert_eq!(prefix_end(b"a\xff\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), b"\0");
    }

    #[test]
    fn key_values_decode_from_the_gateways_json() {
        // As etcd 3.4 writes them: int64 as strings, bytes as base64, defaults left out.
        let kv: KeyValue = serde_json::from_str(
            r#"{"key":"L3gvbGVhZGVy","create_revision":"2","mod_revision":"2","version":"1","value":"bWU=","lease":"4111120486057554439"}"#,
        )
        .expect("decode");
        assert_eq!(kv.key, b"/x/leader");
        assert_eq!(kv.text(), "me");
        assert_eq!(kv.create_revision, 2);
        assert_eq!(kv.lease, 4_111_120_486_057_554_439);
        let deleted: KeyValue =
            serde_json::from_str(r#"{"key":"L3gvbGVhZGVy","mod_revision":"3"}"#).expect("decode");
        assert_eq!((deleted.create_revision, deleted.lease), (0, 0));
    }

    #[test]
    fn stream_errors_are_errors_and_results_are_results() {
        let ok: StreamItem<Value> =
            serde_json::from_str(r#"{"result":{"TTL":"3"}}"#).expect("decode");
        assert!(matches!(ok.into_result("x"), Ok(Some(_))));
        let bad: StreamItem<Value> = serde_json::from_str(
            r#"{"error":{"grpc_code":5,"http_code":404,"message":"etcdserver: requested lease not found"}}"#,
        )
        .expect("decode");
        let e = bad.into_result("x").expect_err("an error");
        assert!(e.to_string().contains("requested lease not found"), "{e}");
        assert_eq!(
            error_message(
                r#"{"error":"unexpected end of JSON input","message":"unexpected end of JSON input","code":3}"#
            ),
            "unexpected end of JSON input"
        );
    }
}
