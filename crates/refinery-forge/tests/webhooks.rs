//! Webhooks as each forge documents them: signed bodies in, one typed event out; anything not
//! signed with the secret is refused before its body is read.

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use refinery_forge::testing::webhook_headers;
use refinery_forge::{
    Forge, GitRef, MAX_BODY_BYTES, PushEvent, WebhookError, WebhookEvent, WebhookSecret, parse,
    verify,
};

const SECRET: &str = "It's a Secret to Everybody";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/webhooks/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("failed to read `{path}`: {e}"))
}

fn header_map(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_static(leak_lower(k)),
            HeaderValue::from_str(v).expect("a valid header value"),
        );
    }
    map
}

fn leak_lower(name: &str) -> &'static str {
    Box::leak(name.to_ascii_lowercase().into_boxed_str())
}

fn secret() -> WebhookSecret {
    WebhookSecret::new(SECRET).expect("secret")
}

/// Verifies and parses as the server does.
fn receive(forge: Forge, headers: &HeaderMap, body: &[u8]) -> Result<WebhookEvent, WebhookError> {
    verify(forge, headers, body, &secret())?;
    parse(forge, headers, body)
}

fn push(forge: Forge, git_ref: GitRef, after: Option<&str>, repo: &str) -> WebhookEvent {
    WebhookEvent::Push(PushEvent {
        forge,
        git_ref,
        after: after.map(str::to_owned),
        repository: Some(repo.to_owned()),
        delivery: Some("f6266f16-1bf3-46a5-9ea4-602e06ead473".to_owned()),
    })
}

#[test]
fn webhook_documented_bodies_signed_are_read_into_one_event() {
    let gh = "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5";
    let gl = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";
    let gt = "bffeb74224043ba2feb48d137756c8a9331c449a";
    let cases: Vec<(Forge, &str, &str, WebhookEvent)> = vec![
        (
            Forge::Github,
            "push",
            "github-push-branch",
            push(
                Forge::Github,
                GitRef::Branch("main".into()),
                Some(gh),
                "acme/infra",
            ),
        ),
        (
            Forge::Github,
            "push",
            "github-push-tag",
            push(
                Forge::Github,
                GitRef::Tag("v1.4.0".into()),
                Some(gh),
                "acme/infra",
            ),
        ),
        (
            Forge::Github,
            "push",
            "github-push-delete",
            push(
                Forge::Github,
                GitRef::Branch("main".into()),
                None,
                "acme/infra",
            ),
        ),
        (Forge::Github, "ping", "github-ping", WebhookEvent::Ping),
        (
            Forge::Github,
            "issues",
            "github-issues",
            WebhookEvent::Other {
                event: "issues".into(),
            },
        ),
        (
            Forge::Gitlab,
            "Push Hook",
            "gitlab-push",
            push(
                Forge::Gitlab,
                GitRef::Branch("main".into()),
                Some(gl),
                "ops/platform/infra",
            ),
        ),
        // An annotated tag: `after` is the tag object, `checkout_sha` the commit.
        (
            Forge::Gitlab,
            "Tag Push Hook",
            "gitlab-tag-push",
            push(
                Forge::Gitlab,
                GitRef::Tag("v1.4.0".into()),
                Some(gl),
                "ops/platform/infra",
            ),
        ),
        (
            Forge::Gitlab,
            "System Hook",
            "gitlab-system-push",
            push(
                Forge::Gitlab,
                GitRef::Branch("main".into()),
                Some(gl),
                "ops/platform/infra",
            ),
        ),
        (
            Forge::Gitlab,
            "System Hook",
            "gitlab-system-project-create",
            WebhookEvent::Other {
                event: "System Hook: project_create".into(),
            },
        ),
        (
            Forge::Gitlab,
            "Merge Request Hook",
            "gitlab-merge-request",
            WebhookEvent::Other {
                event: "Merge Request Hook".into(),
            },
        ),
        (
            Forge::Gitea,
            "push",
            "gitea-push",
            push(
                Forge::Gitea,
                GitRef::Branch("main".into()),
                Some(gt),
                "acme/infra",
            ),
        ),
        (
            Forge::Gitea,
            "create",
            "gitea-create-tag",
            push(
                Forge::Gitea,
                GitRef::Tag("v1.4.0".into()),
                Some(gt),
                "acme/infra",
            ),
        ),
        (
            Forge::Gitea,
            "create",
            "gitea-create-branch",
            WebhookEvent::Other {
                event: "create".into(),
            },
        ),
    ];
    for (forge, event, name, want) in cases {
        let body = fixture(name);
        let headers = header_map(&webhook_headers(forge, SECRET, event, &body));
        let got = receive(forge, &headers, &body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn webhook_forgejo_signature_header_is_accepted() {
    let body = fixture("gitea-push");
    let sig = refinery_forge::sign_hex(&secret(), &body);
    let headers = header_map(&[
        ("content-type", "application/json".to_owned()),
        ("x-forgejo-event", "push".to_owned()),
        ("x-forgejo-delivery", "1".to_owned()),
        ("x-forgejo-signature", sig),
    ]);
    let got = receive(Forge::Gitea, &headers, &body).expect("forgejo");
    assert!(matches!(got, WebhookEvent::Push(p) if p.git_ref == GitRef::Branch("main".into())));
}

#[test]
fn webhook_github_form_encoded_payload_is_read() {
    let json = fixture("github-push-branch");
    let body: String = form_body(&json);
    let mut pairs = webhook_headers(Forge::Github, SECRET, "push", body.as_bytes());
    pairs[0].1 = "application/x-www-form-urlencoded".to_owned();
    let got = receive(Forge::Github, &header_map(&pairs), body.as_bytes()).expect("form");
    assert!(matches!(got, WebhookEvent::Push(p) if p.repository.as_deref() == Some("acme/infra")));
}

fn form_body(json: &[u8]) -> String {
    let encoded: String = url_encode(json);
    format!("payload={encoded}")
}

fn url_encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn webhook_missing_or_wrong_signature_is_401_per_forge() {
    for (forge, event, name) in [
        (Forge::Github, "push", "github-push-branch"),
        (Forge::Gitlab, "Push Hook", "gitlab-push"),
        (Forge::Gitea, "push", "gitea-push"),
    ] {
        let body = fixture(name);
        let good = webhook_headers(forge, SECRET, event, &body);
        let sig = refinery_forge::signature_header(forge).to_ascii_lowercase();

        let missing: Vec<_> = good
            .iter()
            .filter(|(k, _)| k.to_ascii_lowercase() != sig)
            .cloned()
            .collect();
        let err = receive(forge, &header_map(&missing), &body).expect_err("missing");
        assert!(
            matches!(err, WebhookError::MissingSignature { .. }),
            "{name}: {err}"
        );
        assert_eq!(err.http_status(), 401);

        let other_secret = webhook_headers(forge, "another secret", event, &body);
        let err = receive(forge, &header_map(&other_secret), &body).expect_err("wrong secret");
        assert!(
            matches!(err, WebhookError::WrongSignature { .. }),
            "{name}: {err}"
        );
        assert_eq!(err.http_status(), 401);
        assert!(!err.to_string().contains(SECRET), "{err}");

        // The body changed after signing.
        let mut tampered = body.clone();
        tampered.extend_from_slice(b" ");
        let err = receive(forge, &header_map(&good), &tampered);
        match forge {
            // GitLab's token does not cover the body: that is GitLab's design.
            Forge::Gitlab => assert!(err.is_ok()),
            _ => assert!(
                matches!(err, Err(WebhookError::WrongSignature { .. })),
                "{name}"
            ),
        }
    }
}

#[test]
fn webhook_malformed_signatures_are_401_not_a_panic() {
    let body = fixture("github-push-branch");
    for bad in [
        "",
        "sha256=",
        "sha256=zz",
        "sha1=abc",
        "sha256=0",
        &format!("sha256={}", "a".repeat(64)),
    ] {
        let headers = header_map(&[
            ("x-github-event", "push".to_owned()),
            ("x-hub-signature-256", bad.to_owned()),
        ]);
        let err = receive(Forge::Github, &headers, &body).expect_err(bad);
        assert_eq!(err.http_status(), 401, "{bad}: {err}");
    }
}

#[test]
fn webhook_over_one_mib_is_refused_before_the_signature() {
    let body = vec![b' '; MAX_BODY_BYTES + 1];
    let headers = header_map(&webhook_headers(Forge::Github, SECRET, "push", &body));
    let err = receive(Forge::Github, &headers, &body).expect_err("too large");
    assert!(matches!(err, WebhookError::TooLarge { .. }), "{err}");
    assert_eq!(err.http_status(), 413);
}

#[test]
fn webhook_signed_garbage_push_is_400_and_missing_event_is_400() {
    let body = b"{\"ref\": 42}".to_vec();
    let headers = header_map(&webhook_headers(Forge::Github, SECRET, "push", &body));
    let err = receive(Forge::Github, &headers, &body).expect_err("bad payload");
    assert!(matches!(err, WebhookError::Payload { .. }), "{err}");
    assert_eq!(err.http_status(), 400);

    let body = fixture("gitea-push");
    let pairs: Vec<_> = webhook_headers(Forge::Gitea, SECRET, "push", &body)
        .into_iter()
        .filter(|(k, _)| !k.ends_with("Event") && !k.ends_with("Event-Type"))
        .collect();
    let err = receive(Forge::Gitea, &header_map(&pairs), &body).expect_err("no event");
    assert_eq!(
        err.to_string(),
        "failed to read the gitea webhook: the `X-Gitea-Event` header is missing"
    );
    assert_eq!(err.http_status(), 400);
}

#[test]
fn webhook_push_with_a_bad_commit_id_is_400() {
    let body = br#"{"ref":"refs/heads/main","after":"not-a-sha","repository":{"full_name":"a/b"}}"#;
    let headers = header_map(&webhook_headers(Forge::Gitea, SECRET, "push", body));
    let err = receive(Forge::Gitea, &headers, body).expect_err("bad sha");
    assert_eq!(err.http_status(), 400);
    assert!(
        err.to_string().contains("`not-a-sha` is not a commit id"),
        "{err}"
    );
}

proptest! {
    #[test]
    fn webhook_any_body_signed_verifies_and_any_flip_does_not(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        flip in any::<prop::sample::Index>(),
    ) {
        for forge in [Forge::Github, Forge::Gitea] {
            let headers = header_map(&webhook_headers(forge, SECRET, "push", &body));
            prop_assert!(verify(forge, &headers, &body, &secret()).is_ok());
            // Whatever the body, parsing a verified request never panics.
            let _ = parse(forge, &headers, &body);
            if !body.is_empty() {
                let mut changed = body.clone();
                let i = flip.index(changed.len());
                changed[i] ^= 1;
                prop_assert!(verify(forge, &headers, &changed, &secret()).is_err());
            }
        }
    }
}
