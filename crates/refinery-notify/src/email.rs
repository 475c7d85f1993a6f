//! `type: email`: one plain-text message over SMTP with lettre, on rustls with ring.
//! `smtp://host:port` speaks plain SMTP and upgrades with STARTTLS whenever the server offers it;
//! `smtps://host:port` is TLS from the first byte. Certificates are checked against the system's
//! roots (`SSL_CERT_FILE` is honoured).

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use refinery_core::error_text::error_chain;
use refinery_core::manifest::EmailDestination;

use crate::notice::Notice;
use crate::payload;
use crate::target::Target;

/// SMTP's port when `smtp://` names none (the submission port is 587: say it in the URL).
const SMTP_PORT: u16 = 25;
/// SMTP over TLS's port when `smtps://` names none.
const SMTPS_PORT: u16 = 465;
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why an e-mail was not sent. Messages are redacted by [`EmailError::redacted`] before they
/// leave this crate.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("`smtp` must be `smtp://HOST[:PORT]` or `smtps://HOST[:PORT]`: {reason}")]
    Url { reason: String },
    #[error("`{address}` is not an e-mail address")]
    Address { address: String },
    #[error("the SMTP exchange failed: {message}")]
    Server {
        message: String,
        transient: bool,
        tls: bool,
    },
}

impl EmailError {
    /// A server's 4xx answer, a timeout or a lost connection: worth another try.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            EmailError::Server {
                transient: true,
                ..
            }
        )
    }

    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            EmailError::Url { .. } => {
                vec!["write `smtp: smtp://mail.example:587` (STARTTLS when offered) or `smtps://mail.example:465`".into()]
            }
            EmailError::Address { .. } => vec!["write addresses as `ops@example.com` or `Ops <ops@example.com>`".into()],
            EmailError::Server { tls: true, .. } => vec![
                "the server's certificate must be valid for its host name and signed by a CA this machine trusts (`SSL_CERT_FILE` names extra roots)".into(),
            ],
            EmailError::Server { .. } => {
                vec!["check `smtp`, `username` and `password`, and that the server accepts mail from `from`".into()]
            }
        }
    }

    /// The same error with every secret of the channel replaced by `***`.
    #[must_use]
    pub fn redacted(self, target: &Target) -> EmailError {
        match self {
            EmailError::Url { reason } => EmailError::Url {
                reason: target.redact(&reason),
            },
            EmailError::Address { address } => EmailError::Address { address },
            EmailError::Server {
                message,
                transient,
                tls,
            } => EmailError::Server {
                message: target.redact(&message),
                transient,
                tls,
            },
        }
    }
}

/// Whether the failure is TLS refusing the server (its certificate, the handshake): lettre
/// reports a certificate rejected during the handshake as a connection error.
fn is_tls_failure(e: &lettre::transport::smtp::Error) -> bool {
    if e.is_tls() {
        return true;
    }
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.downcast_ref::<rustls::Error>().is_some()
            || c.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
        {
            return true;
        }
        cause = c.source();
    }
    false
}

fn server_error(e: &lettre::transport::smtp::Error) -> EmailError {
    let tls = is_tls_failure(e);
    EmailError::Server {
        message: error_chain(e),
        transient: !tls && (e.is_transient() || e.is_timeout() || !e.is_permanent()),
        tls,
    }
}

fn mailbox(address: &str) -> Result<Mailbox, EmailError> {
    address.parse().map_err(|_| EmailError::Address {
        address: address.to_owned(),
    })
}

/// The transport `smtp` describes: host, port, TLS, credentials.
fn transport(
    e: &EmailDestination,
    extra_roots_pem: &[Vec<u8>],
) -> Result<AsyncSmtpTransport<Tokio1Executor>, EmailError> {
    let url = url::Url::parse(e.smtp.expose()).map_err(|err| EmailError::Url {
        reason: err.to_string(),
    })?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| EmailError::Url {
            reason: "it names no host".into(),
        })?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let tls = |host: &str| {
        let mut b = TlsParameters::builder(host.to_owned());
        for pem in extra_roots_pem {
            let cert = Certificate::from_pem(pem).map_err(|err| server_error(&err))?;
            b = b.add_root_certificate(cert);
        }
        b.build_rustls().map_err(|err| server_error(&err))
    };
    let (port, tls) = match url.scheme() {
        "smtp" => (
            url.port().unwrap_or(SMTP_PORT),
            Tls::Opportunistic(tls(&host)?),
        ),
        "smtps" => (url.port().unwrap_or(SMTPS_PORT), Tls::Wrapper(tls(&host)?)),
        other => {
            return Err(EmailError::Url {
                reason: format!("`{other}://` is not SMTP"),
            });
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .tls(tls)
        .timeout(Some(TIMEOUT));
    if let Some(user) = &e.username {
        let password = e
            .password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default();
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    Ok(builder.build())
}

/// The message: from, to, a subject starting `[refinery]`, a plain-text body.
pub fn message(e: &EmailDestination, n: &Notice) -> Result<Message, EmailError> {
    let mut builder = Message::builder()
        .from(mailbox(&e.from)?)
        .subject(payload::email_subject(n))
        .header(ContentType::TEXT_PLAIN);
    for to in &e.to {
        builder = builder.to(mailbox(to)?);
    }
    builder
        .body(payload::email_body(n))
        .map_err(|err| EmailError::Server {
            message: err.to_string(),
            transient: false,
            tls: false,
        })
}

/// Sends one message once.
pub async fn send(e: &EmailDestination, n: &Notice) -> Result<(), EmailError> {
    send_trusting(e, n, &[]).await
}

/// [`send`], trusting these CA certificates (PEM) besides the system's: for tests with a CA of
/// their own.
pub async fn send_trusting(
    e: &EmailDestination,
    n: &Notice,
    extra_roots_pem: &[Vec<u8>],
) -> Result<(), EmailError> {
    let message = message(e, n)?;
    let transport = transport(e, extra_roots_pem)?;
    transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|err| server_error(&err))
}

#[cfg(test)]
mod tests {
    use refinery_core::Secret;
    use refinery_core::manifest::Level;

    use super::*;
    use crate::notice::NoticeKind;

    fn dest(smtp: &str) -> EmailDestination {
        EmailDestination {
            smtp: Secret::new(smtp, true),
            from: "Refinery <refinery@example.com>".into(),
            to: vec!["ops@example.com".into(), "oncall@example.com".into()],
            username: None,
            password: None,
        }
    }

    #[test]
    fn message_has_subject_from_and_every_recipient() {
        let mut n = Notice::new(
            NoticeKind::DriftStarted,
            Level::Critical,
            "docker/lyra/container/web: missing drift",
            jiff::Timestamp::UNIX_EPOCH,
        );
        n.text = "not found".into();
        let m = message(&dest("smtp://127.0.0.1:2525"), &n).expect("message");
        let text = String::from_utf8(m.formatted()).expect("utf-8");
        assert!(
            text.contains("Subject: [refinery] drift: docker/lyra/container/web: missing drift"),
            "{text}"
        );
        assert!(
            text.contains("To: ops@example.com, oncall@example.com"),
            "{text}"
        );
        assert!(text.contains("Content-Type: text/plain"), "{text}");
        assert!(text.contains("not found"), "{text}");
    }

    #[test]
    fn transport_rejects_other_schemes_and_bad_addresses() {
        assert!(matches!(
            transport(&dest("imap://mail.example"), &[]),
            Err(EmailError::Url { .. })
        ));
        let mut d = dest("smtp://mail.example");
        d.from = "not an address".into();
        let n = Notice::new(
            NoticeKind::Test,
            Level::Info,
            "t",
            jiff::Timestamp::UNIX_EPOCH,
        );
        assert!(matches!(message(&d, &n), Err(EmailError::Address { .. })));
    }
}
