//! The e-mail channel against a real SMTP server on 127.0.0.1: Debian's `python3-aiosmtpd`
//! (`scripts/test.sh` installs it), plain, offering STARTTLS, and TLS from the first byte, with a
//! CA and a server certificate made by `openssl` for the test.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use refinery_core::Secret;
use refinery_core::manifest::{Channel, Destination, EmailDestination, Level};
use refinery_notify::email::{self, EmailError};
use refinery_notify::{Notice, NoticeKind, SendError, Target};
use support::smtp::Smtp;

/// A CA, and a certificate for 127.0.0.1 it signed.
struct Certs {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn certs(dir: &Path) -> Certs {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=refinery test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write ext.cnf");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ],
    );
    Certs {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}

fn dest(smtp: String) -> EmailDestination {
    EmailDestination {
        smtp: Secret::new(smtp, true),
        from: "Refinery <refinery@example.com>".into(),
        to: vec!["ops@example.com".into(), "oncall@example.com".into()],
        username: None,
        password: None,
    }
}

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

fn install_ring() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[tokio::test]
async fn email_plain_smtp_delivers_subject_sender_recipients_and_text() {
    install_ring();
    let dir = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start(dir.path(), "plain", None);
    email::send(&dest(format!("smtp://127.0.0.1:{}", smtp.port)), &notice())
        .await
        .expect("sent");
    let got = smtp.received();
    assert_eq!(got.len(), 1, "{got:#?}");
    let m = &got[0];
    assert_eq!(m["peer_tls"], false, "the server offered no STARTTLS");
    assert_eq!(m["mail_from"], "refinery@example.com");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["ops@example.com", "oncall@example.com"])
    );
    let data = m["data"].as_str().unwrap_or_default();
    assert!(
        data.contains("Subject: [refinery] drift: docker/lyra/container/web: missing drift"),
        "{data}"
    );
    assert!(data.contains("Content-Type: text/plain"), "{data}");
    assert!(data.contains("container `web` not found"), "{data}");
    assert!(data.contains("node: lyra"), "{data}");
}

#[tokio::test]
async fn email_smtp_upgrades_with_starttls_when_offered_and_authenticates() {
    install_ring();
    let dir = tempfile::tempdir().expect("temp dir");
    let c = certs(dir.path());
    let smtp = Smtp::start(
        dir.path(),
        "starttls",
        Some((c.cert.as_path(), c.key.as_path())),
    );
    let mut d = dest(format!("smtp://127.0.0.1:{}", smtp.port));
    d.username = Some("refinery".into());
    d.password = Some(Secret::new("s3cret", true));
    let ca = std::fs::read(&c.ca).expect("read CA");
    email::send_trusting(&d, &notice(), &[ca])
        .await
        .expect("sent over STARTTLS");
    let got = smtp.received();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["peer_tls"], true, "upgraded with STARTTLS");
    assert_eq!(got[0]["authenticated"], true, "{got:#?}");
}

#[tokio::test]
async fn email_starttls_with_an_untrusted_certificate_fails_and_sends_nothing() {
    install_ring();
    let dir = tempfile::tempdir().expect("temp dir");
    let c = certs(dir.path());
    let smtp = Smtp::start(
        dir.path(),
        "starttls",
        Some((c.cert.as_path(), c.key.as_path())),
    );
    let mut d = dest(format!("smtp://127.0.0.1:{}", smtp.port));
    d.username = Some("refinery".into());
    d.password = Some(Secret::new("s3cret", true));
    // Not trusting the test CA: the upgrade fails, and nothing goes out in plain text.
    let err = email::send(&d, &notice()).await.expect_err("untrusted");
    assert!(
        matches!(err, EmailError::Server { tls: true, .. }),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert!(err.hints()[0].contains("certificate"), "{:?}", err.hints());
    assert!(smtp.received().is_empty());
}

#[tokio::test]
async fn email_smtps_speaks_tls_from_the_first_byte() {
    install_ring();
    let dir = tempfile::tempdir().expect("temp dir");
    let c = certs(dir.path());
    let smtp = Smtp::start(
        dir.path(),
        "smtps",
        Some((c.cert.as_path(), c.key.as_path())),
    );
    let d = dest(format!("smtps://127.0.0.1:{}", smtp.port));
    let ca = std::fs::read(&c.ca).expect("read CA");
    email::send_trusting(&d, &notice(), &[ca])
        .await
        .expect("sent over TLS");
    let got = smtp.received();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["peer_tls"], true);
}

#[tokio::test]
async fn email_channel_failure_names_the_channel_masked_and_never_the_password() {
    install_ring();
    let dir = tempfile::tempdir().expect("temp dir");
    let c = certs(dir.path());
    let smtp = Smtp::start(
        dir.path(),
        "smtps",
        Some((c.cert.as_path(), c.key.as_path())),
    );
    let mut d = dest(format!("smtps://127.0.0.1:{}", smtp.port));
    d.username = Some("refinery".into());
    d.password = Some(Secret::new("wrong-password-xyz", true));
    // Through the channel's sender, which redacts: the certificate is not trusted here.
    let target = Target::new(0, Channel::new(Destination::Email(d)));
    assert_eq!(
        target.label,
        format!("email#0 (smtps://127.0.0.1:{}/***)", smtp.port)
    );
    let client = refinery_notify::client().expect("client");
    let err = refinery_notify::send::post_once(&client, &target, &notice())
        .await
        .expect_err("refused");
    let text = format!("{err}: {:?}", std::error::Error::source(&err));
    assert!(matches!(err, SendError::Smtp { .. }), "{text}");
    assert!(text.contains("email#0"), "{text}");
    assert!(!text.contains("wrong-password-xyz"), "{text}");
    assert!(smtp.received().is_empty());
}
