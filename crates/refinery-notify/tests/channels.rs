//! Each new channel type against a receiver on 127.0.0.1 that checks what the service documents:
//! ntfy's publish (body, `Title`, `Priority`, `Tags`, Bearer token), Gotify's `POST /message`
//! (`X-Gotify-Key`), Telegram's `sendMessage`, Teams' Workflows Adaptive Card and legacy
//! MessageCard, and Apprise API's `/notify/KEY` and stateless `/notify` with `urls`.

mod support;

use refinery_core::Secret;
use refinery_core::manifest::{Channel, Destination, Level};
use refinery_notify::send::post_once;
use refinery_notify::{Notice, NoticeKind, SendError, Target};
use support::Receiver;

fn notice() -> Notice {
    let mut n = Notice::new(
        NoticeKind::DriftStarted,
        Level::Critical,
        "docker/lyra/container/web: missing drift",
        "2026-11-22T19:29:18Z".parse().expect("time"),
    );
    n.text = "container `web` not found".into();
    n.node = Some("lyra".into());
    n.resource = Some("docker/lyra/container/web".into());
    n.drift = Some("missing".into());
    n
}

fn target(d: Destination) -> Target {
    Target::new(0, Channel::new(d))
}

fn secret(s: impl Into<String>) -> Secret {
    Secret::new(s, true)
}

async fn send(d: Destination, n: &Notice) -> Result<(), SendError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = refinery_notify::client().expect("client");
    post_once(&client, &target(d), n).await
}

const HEADLINE: &str = "[drift] docker/lyra/container/web: missing drift";

#[tokio::test]
async fn ntfy_posts_the_text_with_title_priority_tags_and_bearer_token() {
    let rx = Receiver::start().await;
    send(
        Destination::Ntfy {
            url: secret(rx.url("/refinery-ops")),
            token: Some(secret("tk_0123456789abcdef")),
        },
        &notice(),
    )
    .await
    .expect("sent");
    let [r] = rx.got().try_into().expect("one request");
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/refinery-ops")
    );
    assert_eq!(r.header("Title"), Some(HEADLINE));
    assert_eq!(r.header("Priority"), Some("5"), "critical is ntfy's max");
    assert_eq!(r.header("Tags"), Some("rotating_light,refinery,missing"));
    assert_eq!(
        r.header("Authorization"),
        Some("Bearer tk_0123456789abcdef")
    );
    assert!(
        r.header("Content-Type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{r:?}"
    );
    assert!(
        r.body.starts_with("container `web` not found"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("resource: docker/lyra/container/web"),
        "{}",
        r.body
    );

    // A resolved drift at default priority with a check mark; no token, no Authorization.
    let mut n = notice();
    n.kind = NoticeKind::DriftResolved;
    send(
        Destination::Ntfy {
            url: secret(rx.url("/open-topic")),
            token: None,
        },
        &n,
    )
    .await
    .expect("sent");
    let r = rx.got().pop().expect("second request");
    assert_eq!(r.header("Priority"), Some("3"));
    assert_eq!(r.header("Tags"), Some("white_check_mark,refinery,missing"));
    assert_eq!(r.header("Authorization"), None);
}

#[tokio::test]
async fn gotify_posts_message_with_the_application_token() {
    let rx = Receiver::start().await;
    send(
        Destination::Gotify {
            url: secret(rx.url("/gotify/")),
            token: secret("AbCdEf.gotify-app"),
        },
        &notice(),
    )
    .await
    .expect("sent");
    let [r] = rx.got().try_into().expect("one request");
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/gotify/message")
    );
    assert_eq!(r.header("X-Gotify-Key"), Some("AbCdEf.gotify-app"));
    let b = r.json();
    assert_eq!(b["title"], HEADLINE);
    assert_eq!(b["priority"], 8, "critical pops up");
    assert!(
        b["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("container `web` not found")),
        "{b}"
    );
    assert_eq!(b["extras"]["client::display"]["contentType"], "text/plain");
}

#[tokio::test]
async fn telegram_calls_send_message_on_the_bot_api_and_reports_its_description_masked() {
    let rx = Receiver::start().await;
    let token = "123456:ABC-DEF1234ghIkl";
    let d = |chat: &str| Destination::Telegram {
        bot_token: secret(token),
        chat_id: chat.into(),
        api_url: Some(rx.url("/")),
    };
    send(d("-1001234567890"), &notice()).await.expect("sent");
    let [r] = rx.got().try_into().expect("one request");
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, format!("/bot{token}/sendMessage"));
    let b = r.json();
    assert_eq!(
        b["chat_id"], -1_001_234_567_890_i64,
        "a numeric id as a number"
    );
    let text = b["text"].as_str().unwrap_or_default();
    assert!(text.starts_with(HEADLINE), "{text}");
    assert!(text.contains("container `web` not found"), "{text}");
    assert!(
        b.get("parse_mode").is_none(),
        "plain text: nothing to escape"
    );

    // A channel name stays a string; Telegram's error says why, without the token.
    rx.answer(
        &format!("/bot{token}/sendMessage"),
        400,
        r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#,
    );
    let err = send(d("@refinery_ops"), &notice())
        .await
        .expect_err("chat not found");
    assert_eq!(
        rx.got().pop().expect("request").json()["chat_id"],
        "@refinery_ops"
    );
    let text = err.to_string();
    assert!(
        text.contains("HTTP 400 (Bad Request: chat not found)"),
        "{text}"
    );
    assert!(text.contains("telegram#0 (http://127.0.0.1:"), "{text}");
    assert!(!text.contains(token), "{text}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn teams_workflows_url_gets_an_adaptive_card_and_a_connector_url_a_message_card() {
    let rx = Receiver::start().await;
    send(
        Destination::Teams {
            url: secret(rx.url("/workflows/abc/triggers/manual/paths/invoke")),
        },
        &notice(),
    )
    .await
    .expect("sent");
    let [r] = rx.got().try_into().expect("one request");
    let b = r.json();
    assert_eq!(b["type"], "message");
    let a = &b["attachments"][0];
    assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(a["content"]["type"], "AdaptiveCard");
    assert_eq!(
        a["content"]["$schema"],
        "http://adaptivecards.io/schemas/adaptive-card.json"
    );
    assert!(a["content"]["version"].is_string(), "{b}");
    assert_eq!(a["content"]["body"][0]["type"], "TextBlock");
    assert_eq!(a["content"]["body"][0]["text"], HEADLINE);
    assert_eq!(a["content"]["body"][0]["color"], "Attention");
    assert_eq!(a["content"]["body"][2]["type"], "FactSet");

    send(
        Destination::Teams {
            url: secret(rx.url("/webhookb2/1f2e@3d4c/IncomingWebhook/5b6a/7988")),
        },
        &notice(),
    )
    .await
    .expect("sent");
    let b = rx.got().pop().expect("second request").json();
    assert_eq!(b["@type"], "MessageCard");
    assert_eq!(b["@context"], "https://schema.org/extensions");
    assert_eq!(b["summary"], HEADLINE);
    assert_eq!(b["themeColor"], "d03030");
    assert_eq!(b["sections"][0]["facts"][0]["name"], "node");
}

#[tokio::test]
async fn apprise_notifies_a_stored_key_or_stateless_urls_and_refuses_an_empty_key() {
    let rx = Receiver::start().await;
    send(
        Destination::Apprise {
            url: secret(rx.url("/notify/refinery")),
            urls: Vec::new(),
        },
        &notice(),
    )
    .await
    .expect("sent");
    let [r] = rx.got().try_into().expect("one request");
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/notify/refinery")
    );
    assert!(
        r.header("Content-Type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    let b = r.json();
    assert_eq!(b["title"], HEADLINE);
    assert_eq!(b["type"], "failure", "critical");
    assert_eq!(b["format"], "text");
    assert!(b.get("urls").is_none(), "{b}");

    send(
        Destination::Apprise {
            url: secret(rx.url("/notify")),
            urls: vec![secret("tgram://123:abc/456"), secret("ntfys://topic")],
        },
        &notice(),
    )
    .await
    .expect("sent");
    let b = rx.got().pop().expect("second request").json();
    assert_eq!(b["urls"], "tgram://123:abc/456, ntfys://topic");

    // 204: no configuration under the key, nothing went anywhere.
    rx.answer("/notify/empty", 204, "");
    let err = send(
        Destination::Apprise {
            url: secret(rx.url("/notify/empty")),
            urls: Vec::new(),
        },
        &notice(),
    )
    .await
    .expect_err("no configuration");
    assert!(err.to_string().contains("no configuration"), "{err}");
    // 424: Apprise could not deliver: a final answer, not retried.
    rx.answer("/notify/broken", 424, "");
    let err = send(
        Destination::Apprise {
            url: secret(rx.url("/notify/broken")),
            urls: Vec::new(),
        },
        &notice(),
    )
    .await
    .expect_err("424");
    assert!(!err.is_transient());
}
