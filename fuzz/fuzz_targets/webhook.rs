//! The push webhook reader: whatever a forge (or anyone) sends, verifying and parsing answers an
//! event or an error, never a panic. The first byte picks the forge and the event header; the
//! rest is the body, signed with the test secret half of the time so the parser is reached.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use refinery_forge::{Forge, WebhookEvent, WebhookSecret, parse, sign_hex, verify};

const EVENTS: [&str; 8] = [
    "push", "Push Hook", "Tag Push Hook", "System Hook", "create", "ping", "issues", "",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let forge = Forge::ALL[usize::from(pick % 3)];
    let event = EVENTS[usize::from((pick / 3) % 8)];
    let secret = WebhookSecret::new("fuzz-secret").expect("secret");
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(event) {
        for name in ["x-github-event", "x-gitlab-event", "x-gitea-event"] {
            headers.insert(name, v.clone());
        }
    }
    if pick & 0x80 != 0 {
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
    }
    let signed = pick & 0x40 != 0;
    let hex = if signed { sign_hex(&secret, body) } else { "00".repeat(32) };
    headers.insert(
        "x-hub-signature-256",
        HeaderValue::from_str(&format!("sha256={hex}")).expect("hex is a header value"),
    );
    headers.insert("x-gitea-signature", HeaderValue::from_str(&hex).expect("hex"));
    headers.insert(
        "x-gitlab-token",
        HeaderValue::from_static(if signed { "fuzz-secret" } else { "nope" }),
    );
    let verified = verify(forge, &headers, body, &secret);
    assert_eq!(
        verified.is_ok(),
        signed && body.len() <= refinery_forge::MAX_BODY_BYTES
    );
    if let Ok(WebhookEvent::Push(p)) = parse(forge, &headers, body) {
        if let Some(after) = &p.after {
            assert!(matches!(after.len(), 40 | 64));
            assert!(after.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
});
