//! Push webhooks: is the request from the forge ([`verify`]), and what does it say ([`parse`]).
//!
//! | forge | authenticated by | event header |
//! |---|---|---|
//! | GitHub | `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` | `X-GitHub-Event` |
//! | GitLab | `X-Gitlab-Token: <the secret>` | `X-Gitlab-Event` |
//! | Gitea, Forgejo | `X-Gitea-Signature: <hex HMAC-SHA256 of the body>` (Forgejo: also `X-Forgejo-Signature`) | `X-Gitea-Event` (`X-Forgejo-Event`) |
//!
//! Verify first, parse after: an unauthenticated body is never read.

use http::HeaderMap;
use refinery_core::manifest::Forge;
use serde::Deserialize;

use crate::git_ref::GitRef;
use crate::webhook_error::WebhookError;
use crate::webhook_secret::WebhookSecret;

/// Bodies over this size (1 MiB) are refused before anything else is done with them.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What a verified webhook says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEvent {
    /// A ref was pushed (created, moved or deleted): a branch or a tag.
    Push(PushEvent),
    /// The forge checking that the hook works (GitHub's `ping`).
    Ping,
    /// Any other event, by the name the forge gave it (`issues`, `Merge Request Hook`).
    Other { event: String },
}

/// One push, whichever forge sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEvent {
    pub forge: Forge,
    /// The ref pushed.
    pub git_ref: GitRef,
    /// The commit (or, for an annotated tag on some forges, the tag object) the ref points to
    /// now; `None` when the push deleted the ref or the forge did not say.
    pub after: Option<String>,
    /// The repository as the forge names it (`acme/infra`), when the payload says.
    pub repository: Option<String>,
    /// The forge's id for this delivery (`X-GitHub-Delivery`, …), for logs.
    pub delivery: Option<String>,
}

/// The header that authenticates a webhook from `forge` (the first of its names, for messages).
#[must_use]
pub fn signature_header(forge: Forge) -> &'static str {
    match forge {
        Forge::Github => "X-Hub-Signature-256",
        Forge::Gitlab => "X-Gitlab-Token",
        Forge::Gitea => "X-Gitea-Signature",
    }
}

/// The lower-case hex HMAC-SHA256 of `body` under `secret`: what GitHub sends after `sha256=` and
/// Gitea sends as is (for tests and for a sender of test webhooks).
#[must_use]
pub fn sign_hex(secret: &WebhookSecret, body: &[u8]) -> String {
    refinery_core::hex::hex(&secret.sign(body))
}

/// Checks that the request comes from a forge that knows `secret`. Constant-time.
///
/// Errors: [`WebhookError::TooLarge`], [`WebhookError::MissingSignature`],
/// [`WebhookError::WrongSignature`].
pub fn verify(
    forge: Forge,
    headers: &HeaderMap,
    body: &[u8],
    secret: &WebhookSecret,
) -> Result<(), WebhookError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(WebhookError::TooLarge {
            forge,
            limit: MAX_BODY_BYTES,
        });
    }
    let header = signature_header(forge);
    let missing = || WebhookError::MissingSignature { forge, header };
    let wrong = || WebhookError::WrongSignature { forge, header };
    let ok = match forge {
        Forge::Github => {
            let value = headers.get("x-hub-signature-256").ok_or_else(missing)?;
            let hex = value
                .as_bytes()
                .strip_prefix(b"sha256=")
                .ok_or_else(wrong)?;
            let tag = decode_hex(hex).ok_or_else(wrong)?;
            secret.verify_hmac(body, &tag)
        }
        Forge::Gitlab => {
            let value = headers.get("x-gitlab-token").ok_or_else(missing)?;
            secret.equals(value.as_bytes())
        }
        Forge::Gitea => {
            let value = headers
                .get("x-gitea-signature")
                .or_else(|| headers.get("x-forgejo-signature"))
                .ok_or_else(missing)?;
            let tag = decode_hex(value.as_bytes()).ok_or_else(wrong)?;
            secret.verify_hmac(body, &tag)
        }
    };
    if ok { Ok(()) } else { Err(wrong()) }
}

/// Reads a verified webhook into an event. Only push events (and a tag's creation, which Gitea and
/// GitHub also announce as `create`) are read in depth; other events are named and left alone.
///
/// Errors: [`WebhookError::MissingEvent`] without the event header, [`WebhookError::Payload`] when
/// a push event's body is not what the forge documents.
pub fn parse(forge: Forge, headers: &HeaderMap, body: &[u8]) -> Result<WebhookEvent, WebhookError> {
    let (event_header, names): (&'static str, &[&str]) = match forge {
        Forge::Github => ("X-GitHub-Event", &["x-github-event"]),
        Forge::Gitlab => ("X-Gitlab-Event", &["x-gitlab-event"]),
        Forge::Gitea => (
            "X-Gitea-Event",
            &["x-gitea-event", "x-forgejo-event", "x-gogs-event"],
        ),
    };
    let event = names
        .iter()
        .find_map(|name| headers.get(*name))
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or(WebhookError::MissingEvent {
            forge,
            header: event_header,
        })?;
    let delivery = delivery_id(forge, headers);
    let payload_err = |reason: String| WebhookError::Payload {
        forge,
        event: event.clone(),
        reason,
    };
    match (forge, event.as_str()) {
        (Forge::Github, "ping") => Ok(WebhookEvent::Ping),
        (Forge::Github | Forge::Gitea, "push") => {
            let json = json_body(headers, body).map_err(payload_err)?;
            let push: HubPush = serde_json::from_slice(&json)
                .map_err(|e| payload_err(format!("not a push payload: {e}")))?;
            Ok(WebhookEvent::Push(PushEvent {
                forge,
                git_ref: GitRef::from_full(&push.git_ref),
                after: commit_id(push.after.as_deref(), &payload_err)?,
                repository: push.repository.and_then(|r| r.full_name),
                delivery,
            }))
        }
        (Forge::Github | Forge::Gitea, "create") => {
            let json = json_body(headers, body).map_err(payload_err)?;
            let create: HubCreate = serde_json::from_slice(&json)
                .map_err(|e| payload_err(format!("not a create payload: {e}")))?;
            if create.ref_type != "tag" {
                return Ok(WebhookEvent::Other { event });
            }
            Ok(WebhookEvent::Push(PushEvent {
                forge,
                git_ref: GitRef::Tag(create.git_ref),
                after: commit_id(create.sha.as_deref(), &payload_err)?,
                repository: create.repository.and_then(|r| r.full_name),
                delivery,
            }))
        }
        (Forge::Gitlab, "Push Hook" | "Tag Push Hook" | "System Hook") => {
            let push: LabPush = serde_json::from_slice(body)
                .map_err(|e| payload_err(format!("not a push payload: {e}")))?;
            let kind = push
                .event_name
                .as_deref()
                .or(push.object_kind.as_deref())
                .unwrap_or_default();
            if !matches!(kind, "push" | "tag_push") {
                // A system hook about something else (`project_create`, `repository_update`, …).
                return Ok(WebhookEvent::Other {
                    event: format!("{event}: {kind}"),
                });
            }
            let git_ref = push
                .git_ref
                .ok_or_else(|| payload_err("it has no `ref`".to_owned()))?;
            let after = commit_id(push.checkout_sha.as_deref(), &payload_err)?
                .or(commit_id(push.after.as_deref(), &payload_err)?);
            Ok(WebhookEvent::Push(PushEvent {
                forge,
                git_ref: GitRef::from_full(&git_ref),
                after,
                repository: push
                    .project
                    .and_then(|p| p.path_with_namespace)
                    .or_else(|| push.project_id.map(|id| id.to_string())),
                delivery,
            }))
        }
        _ => Ok(WebhookEvent::Other { event }),
    }
}

/// GitHub's and Gitea's `push` payload, the fields read.
#[derive(Deserialize)]
struct HubPush {
    #[serde(rename = "ref")]
    git_ref: String,
    after: Option<String>,
    repository: Option<HubRepository>,
}

/// GitHub's and Gitea's `create` payload: `ref` is the short name, `ref_type` `tag` or `branch`.
#[derive(Deserialize)]
struct HubCreate {
    #[serde(rename = "ref")]
    git_ref: String,
    ref_type: String,
    /// Gitea says which commit; GitHub does not.
    sha: Option<String>,
    repository: Option<HubRepository>,
}

#[derive(Deserialize)]
struct HubRepository {
    full_name: Option<String>,
}

/// GitLab's push and tag push payloads (project hooks: `object_kind`; system hooks: `event_name`).
#[derive(Deserialize)]
struct LabPush {
    object_kind: Option<String>,
    event_name: Option<String>,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    after: Option<String>,
    /// The commit to check out: for an annotated tag, the commit rather than the tag object;
    /// `null` when the ref was deleted.
    checkout_sha: Option<String>,
    project_id: Option<u64>,
    project: Option<LabProject>,
}

#[derive(Deserialize)]
struct LabProject {
    path_with_namespace: Option<String>,
}

/// The JSON of a GitHub or Gitea webhook: the body, or with content type
/// `application/x-www-form-urlencoded` its `payload` field.
fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, String> {
    let form = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !form {
        return Ok(body.to_vec());
    }
    form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned().into_bytes())
        .ok_or_else(|| "a form body without a `payload` field".to_owned())
}

/// A commit id from a payload: `None` when absent or all zeros (a deleted ref); an error when it
/// is not a hex object id.
fn commit_id(
    id: Option<&str>,
    payload_err: &dyn Fn(String) -> WebhookError,
) -> Result<Option<String>, WebhookError> {
    let Some(id) = id else { return Ok(None) };
    let hex_ok = matches!(id.len(), 40 | 64) && id.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex_ok {
        return Err(payload_err(format!(
            "`{}` is not a commit id",
            id.chars().take(80).collect::<String>()
        )));
    }
    if id.bytes().all(|b| b == b'0') {
        return Ok(None);
    }
    Ok(Some(id.to_ascii_lowercase()))
}

fn delivery_id(forge: Forge, headers: &HeaderMap) -> Option<String> {
    let names: &[&str] = match forge {
        Forge::Github => &["x-github-delivery"],
        Forge::Gitlab => &["x-gitlab-event-uuid", "x-gitlab-webhook-uuid"],
        Forge::Gitea => &["x-gitea-delivery", "x-forgejo-delivery", "x-gogs-delivery"],
    };
    names
        .iter()
        .find_map(|n| headers.get(*n))
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(100).collect())
}

fn decode_hex(hex: &[u8]) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_hex_reads_both_cases_and_refuses_junk() {
        assert_eq!(decode_hex(b"00ffAB"), Some(vec![0, 255, 171]));
        assert_eq!(decode_hex(b"0"), None);
        assert_eq!(decode_hex(b"zz"), None);
        assert_eq!(decode_hex(b""), Some(vec![]));
    }

    /// GitHub's documented test values ("Validating webhook deliveries"): secret
    /// `It's a Secret to Everybody`, payload `Hello, World!`.
    #[test]
    fn sign_hex_matches_githubs_documented_example() {
        let secret = WebhookSecret::new("It's a Secret to Everybody").expect("secret");
        assert_eq!(
            sign_hex(&secret, b"Hello, World!"),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
